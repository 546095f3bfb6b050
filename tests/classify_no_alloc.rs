//! Proves the hot-path promise of the route table: classifying a request that matches no rule
//! allocates nothing (a counting global allocator, per thread, around `classify`).
//!
//! Run: `cargo test --test classify_no_alloc`.

use http::Method;
use userhook::detect::RouteTable;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations_during;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

#[test]
fn unmatched_traffic_does_not_allocate() {
    let file = userhook::config::parse_str(
        "upstream: http://127.0.0.1:1\nprofiles: [generic, keycloak, scim, dce]\n\
         routes:\n  - {action: created, method: POST, path: /api/v1/users}\n",
    )
    .expect("config");
    let table = RouteTable::compile(&file.routes, &file.profiles).expect("routes");
    let unmatched = [
        (Method::GET, "/"),
        (Method::GET, "/realms/acme/protocol/openid-connect/certs"),
        (Method::GET, "/realms/acme/.well-known/openid-configuration"),
        (Method::GET, "/resources/abc/login/keycloak/css/login.css"),
        (Method::GET, "/admin/realms/acme/users?first=0&max=20"),
        (Method::GET, "/admin/realms/acme/users/42/groups"),
        (Method::GET, "/users"),
        (Method::POST, "/users/42"),
        (Method::GET, "/scim/v2/Users?filter=userName%20eq%20%22x%22"),
        (Method::GET, "/apis/ghippo.io/v1alpha1/users"),
        (Method::PUT, "/api/v1/users"),
        (Method::GET, "/favicon.ico/"),
    ];
    for (method, path) in &unmatched {
        let mut hit = None;
        let n = allocations_during(|| hit = Some(table.classify(method, path).is_none()));
        assert_eq!(hit, Some(true), "{method} {path} must not match");
        assert_eq!(n, 0, "{method} {path} allocated {n} times");
    }
    // A match allocates (owned params): the captured path, not the hot one. This also shows
    // the counter works.
    let mut hit = false;
    let n = allocations_during(|| {
        hit = table
            .classify(&Method::DELETE, "/admin/realms/acme/users/42")
            .is_some()
    });
    assert!(hit);
    assert!(n > 0);
}
