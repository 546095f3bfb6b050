//! The per-request cost of operations work on the proxy path.
//!
//! - Counting a proxied request (selecting its pre-registered counters and incrementing one)
//!   allocates nothing, matched or not (a counting global allocator, per thread).
//! - An ignored micro-benchmark prints nanoseconds per operation for: counting a request,
//!   classifying an unmatched request (the reference the route table already pays), and what
//!   giving *every* request an `X-Request-Id` would add (a UUIDv7, its text, a header value,
//!   the insert). Run it in release mode:
//!   `cargo test --release --test hot_path -- --ignored --nocapture`.

use std::hint::black_box;
use std::time::Instant;

use http::{HeaderMap, HeaderValue, Method};
use userhook::snapshot::Snapshot;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations_during;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

fn runtime() -> Snapshot {
    Snapshot::from_text(
        "upstream: http://127.0.0.1:1\nprofiles: [generic, keycloak, scim, dce]\n\
         routes:\n  - {action: created, method: POST, path: /api/v1/users}\n",
        None,
    )
    .expect("config")
}

#[test]
fn counting_a_request_does_not_allocate() {
    let rt = runtime();
    let get = Method::GET;
    let post = Method::POST;
    // Warm up: the first increment of a handle may initialise lazily.
    let unmatched = rt.routes.classify(&get, "/static/app.js");
    assert!(unmatched.is_none());
    let matched = rt.routes.classify(&post, "/api/v1/users");
    let entry = matched.as_ref().map(|m| m.entry);
    assert!(entry.is_some());
    rt.proxy_counters.select(None, &get).record(200);
    rt.proxy_counters.select(entry, &post).record(201);

    let n = allocations_during(|| {
        for status in [200, 304, 404, 502] {
            rt.proxy_counters.select(None, &get).record(status);
            rt.proxy_counters.select(entry, &post).record(status);
            // A method the entry does not accept falls back to the unmatched series.
            rt.proxy_counters
                .select(entry, &Method::PATCH)
                .record(status);
        }
    });
    assert_eq!(n, 0, "counting a request allocated {n} times");
}

fn ns_per_op(iterations: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iterations / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(iterations)
}

#[test]
#[ignore = "micro-benchmark; run in release with --ignored --nocapture"]
fn hot_path_costs() {
    let rt = runtime();
    let get = Method::GET;
    let x_request_id = http::header::HeaderName::from_static("x-request-id");
    let mut headers = HeaderMap::new();
    for (k, v) in [
        ("host", "iam.example.com"),
        ("user-agent", "curl/8.5.0"),
        ("accept", "*/*"),
        ("x-forwarded-for", "10.0.0.1"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "iam.example.com"),
    ] {
        headers.insert(k, HeaderValue::from_static(v));
    }
    const N: u32 = 2_000_000;
    let count = ns_per_op(N, || {
        rt.proxy_counters
            .select(black_box(None), black_box(&get))
            .record(black_box(200));
    });
    let classify = ns_per_op(N, || {
        black_box(
            rt.routes
                .classify(black_box(&get), black_box("/static/app.js")),
        );
    });
    let request_id = ns_per_op(N, || {
        let mut h = headers.clone();
        let mut buf = uuid::Uuid::encode_buffer();
        let id = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buf);
        if let Ok(v) = HeaderValue::from_str(id) {
            h.insert(x_request_id.clone(), v);
        }
        black_box(h);
    });
    let clone_only = ns_per_op(N, || {
        black_box(headers.clone());
    });
    let allocs = allocations_during(|| {
        let mut buf = uuid::Uuid::encode_buffer();
        let id = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buf);
        black_box(HeaderValue::from_str(id).ok());
    });
    println!("count a proxied request (select + increment): {count:.1} ns");
    println!("classify an unmatched request (reference):    {classify:.1} ns");
    println!(
        "X-Request-Id for every request (UUIDv7 + header value + insert): {:.1} ns, {allocs} allocation(s)",
        request_id - clone_only
    );
}

/// The bench's user create (bench/proxy.sh, bench/compare.sh): a Keycloak-style body, the
/// IAM's short answer, three fields.
fn create_exchange(rt: &std::sync::Arc<Snapshot>) -> userhook::exchange::Exchange {
    use userhook::exchange::{CapturedBody, Exchange};
    const BODY: &str = r#"{"username":"alice","email":"alice@example.com","firstName":"Alice","lastName":"Liddell","enabled":true,"attributes":{"department":["engineering"],"location":["Shanghai"],"employeeNumber":["000042"]},"credentials":[{"type":"password","value":"not-a-real-password","temporary":false}],"groups":["/staff","/engineering"],"requiredActions":[]}"#;
    let mut request_headers = HeaderMap::new();
    for (k, v) in [
        ("host", "127.0.0.1:18283"),
        ("content-length", "331"),
        ("content-type", "application/json"),
        ("x-request-id", "0192f5d2-6c1e-7b3a-9f00-123456789abc"),
    ] {
        request_headers.insert(k, HeaderValue::from_static(v));
    }
    let mut response_headers = HeaderMap::new();
    for (k, v) in [
        ("server", "nginx"),
        ("date", "Mon, 30 Nov 2026 10:00:00 GMT"),
        ("content-type", "application/json"),
        ("content-length", "31"),
    ] {
        response_headers.insert(k, HeaderValue::from_static(v));
    }
    let route = rt
        .routes
        .classify(&Method::POST, "/api/v1/users")
        .expect("route");
    Exchange {
        route: Some(route),
        method: Method::POST,
        uri: http::Uri::from_static("/api/v1/users"),
        request_headers,
        request_body: CapturedBody {
            bytes: bytes::Bytes::from_static(BODY.as_bytes()),
            truncated: false,
        },
        status: http::StatusCode::CREATED,
        response_headers,
        response_body: CapturedBody {
            bytes: bytes::Bytes::from_static(br#"{"id":"u-1","username":"alice"}"#),
            truncated: false,
        },
        remote_ip: Some(HeaderValue::from_static("127.0.0.1")),
        request_id: HeaderValue::from_static("0192f5d2-6c1e-7b3a-9f00-123456789abc"),
        durable: None,
    }
}

#[test]
#[ignore = "micro-benchmark; run in release with --ignored --nocapture"]
fn extraction_costs() {
    let rt = std::sync::Arc::new(
        Snapshot::from_text(
            "upstream: http://127.0.0.1:1\nroutes:\n  - {action: created, method: POST, path: /api/v1/users, \
             fields: {ID: response.body.id, Name: request.body.username, Email: request.body.email}}\n",
            None,
        )
        .expect("config"),
    );
    let extractor = userhook::events::extractor::Extractor::new(10_000);
    let n: u32 = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let ex = create_exchange(&rt);
    let event = extractor.process(&rt, &ex).pop().expect("a create event");
    assert_eq!(
        (
            event.user.get("ID"),
            event.user.get("Name"),
            event.user.get("Email")
        ),
        (
            Some(&"u-1".to_owned()),
            Some(&"alice".to_owned()),
            Some(&"alice@example.com".to_owned())
        )
    );
    // The extractor loop's way: one buffer reused across exchanges.
    let mut events = Vec::with_capacity(1);
    let process = ns_per_op(n, || {
        extractor.process_into(&rt, black_box(&ex), &mut events);
        black_box(events.drain(..));
    });
    let allocs = allocations_during(|| {
        extractor.process_into(&rt, &ex, &mut events);
        black_box(events.drain(..));
    });
    println!("extract the bench's create event (process, event dropped): {process:.1} ns, {allocs} allocation(s)");
}
