//! Route table tests: templates, base paths, trailing slashes, methods, errors, profiles.

use http::Method;

use super::*;
use crate::config::parse_str;

fn table(yaml: &str) -> RouteTable {
    let file = parse_str(&format!("upstream: http://127.0.0.1:1\n{yaml}")).expect("yaml");
    RouteTable::compile(&file.routes, &file.profiles).expect("compiles")
}

/// Route errors as the operator sees them (`Snapshot::compile` reports them with the rest).
fn errors(yaml: &str) -> Vec<String> {
    let file = parse_str(&format!("upstream: http://127.0.0.1:1\n{yaml}")).expect("yaml");
    RouteTable::compile(&file.routes, &file.profiles)
        .expect_err("must fail")
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn params(m: &RouteMatch) -> Vec<(&str, &str)> {
    m.params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

const ROUTES: &str = r#"
routes:
  - {action: created, method: POST, path: /api/users}
  - {action: updated, method: put, path: "/realms/{realm}/users/{id}"}
  - {action: deleted, method: DELETE, path: "/realms/{r}/users/{uid}/"}
  - {action: updated, method: POST, path: /api/users/me}
"#;

#[test]
fn matches_templates_and_params() {
    let t = table(ROUTES);
    assert_eq!(t.len(), 4);
    let m = t
        .classify(&Method::PUT, "/realms/acme/users/42")
        .expect("match");
    assert_eq!(params(&m), vec![("realm", "acme"), ("id", "42")]);
    // Same template with other parameter names shares the entry (and its first names).
    let d = t
        .classify(&Method::DELETE, "/realms/acme/users/42")
        .expect("match");
    assert_eq!(d.entry, m.entry);
    assert_eq!(params(&d), vec![("realm", "acme"), ("id", "42")]);
    assert!(t.classify(&Method::POST, "/api/users").is_some());
    assert!(t.classify(&Method::POST, "/api/users/me").is_some());
}

#[test]
fn query_and_trailing_slash() {
    let t = table(ROUTES);
    let m = t
        .classify(&Method::PUT, "/realms/acme/users/42/?x=1")
        .expect("match");
    assert_eq!(params(&m), vec![("realm", "acme"), ("id", "42")]);
    assert!(t.classify(&Method::POST, "/api/users?draft=true").is_some());
    assert!(t.classify(&Method::POST, "/api/users/").is_some());
    // Repeated slashes are merged before matching (an IAM that merges them routes it here).
    assert!(t.classify(&Method::POST, "/api/users//").is_some());
    assert!(t.classify(&Method::POST, "/api/users/x").is_none());
}

#[test]
fn every_spelling_of_a_matched_path_matches_with_its_params() {
    let t = table(ROUTES);
    for spelling in [
        "//realms/acme/users/42",
        "/realms/./acme/users/42",
        "/realms/x/../acme/users/42",
        "/realms/ac%6de/users/%34%32",
        "/realms//acme///users/42/.",
    ] {
        let m = t.classify(&Method::PUT, spelling).expect(spelling);
        assert_eq!(
            params(&m),
            vec![("realm", "acme"), ("id", "42")],
            "{spelling}"
        );
    }
    // An encoded slash is part of its segment.
    assert!(t.classify(&Method::POST, "/api%2Fusers").is_none());
}

#[test]
fn no_match_and_method_mismatch() {
    let t = table(ROUTES);
    assert_eq!(t.classify(&Method::GET, "/api/users"), None);
    assert_eq!(t.classify(&Method::POST, "/realms/acme/users/42"), None);
    assert_eq!(t.classify(&Method::POST, "/api/user"), None);
    assert_eq!(t.classify(&Method::POST, "/api/users/x/y"), None);
    assert_eq!(t.classify(&Method::PUT, "/realms/acme/users"), None);
    assert_eq!(t.classify(&Method::GET, "/"), None);
    assert_eq!(t.classify(&Method::GET, ""), None);
    assert_eq!(t.classify(&Method::GET, "no-slash"), None);
    assert!(RouteTable::default().is_empty());
    assert_eq!(RouteTable::default().classify(&Method::GET, "/x"), None);
}

#[test]
fn profiles_with_base_paths() {
    let t = table("profiles: [keycloak, {name: keycloak, base_path: /auth/}, scim, {name: dce, base_path: /v1}]");
    assert!(t.classify(&Method::POST, "/admin/realms/r/users").is_some());
    assert!(t
        .classify(&Method::POST, "/auth/admin/realms/r/users")
        .is_some());
    assert!(t
        .classify(
            &Method::POST,
            "/auth/realms/r/protocol/openid-connect/token"
        )
        .is_some());
    assert!(t.classify(&Method::PATCH, "/scim/v2/Users/abc").is_some());
    assert!(t.classify(&Method::PATCH, "/Users/abc").is_none());
    assert!(t.classify(&Method::DELETE, "/v1/logout").is_some());
    assert!(t
        .classify(&Method::DELETE, "/apis/ghippo.io/v1alpha1/logout")
        .is_none());
    // Unmatched Keycloak traffic.
    assert!(t
        .classify(&Method::GET, "/realms/r/protocol/openid-connect/certs")
        .is_none());
    assert!(t.classify(&Method::GET, "/admin/realms/r/users").is_none());
}

#[test]
fn every_profile_compiles_alone_and_together() {
    let builtins = profiles::all().expect("built-in profiles load");
    for p in &builtins {
        let t = table(&format!("profiles: [{}]", p.name));
        assert_eq!(t.len(), p.routes.len(), "{}", p.name);
        assert!(t
            .rules()
            .iter()
            .all(|r| r.origin == RuleOrigin::Profile(&p.name)));
    }
    let names: Vec<&str> = builtins.iter().map(|p| p.name.as_str()).collect();
    let all = table(&format!("profiles: [{}]", names.join(", ")));
    assert_eq!(
        all.len(),
        builtins.iter().map(|p| p.routes.len()).sum::<usize>()
    );
}

#[test]
fn operator_rules_come_first() {
    let t = table(
        "profiles: [generic]\nroutes:\n  - {action: created, method: POST, path: /users, fields: {ID: response.body.uid}}",
    );
    assert_eq!(t.rules()[0].origin, RuleOrigin::Operator);
    let m = t.classify(&Method::POST, "/users").expect("match");
    assert_eq!(t.entries[m.entry].rules[0], 0);
}

#[test]
fn field_names_include_custom_ones() {
    let t = table(
        "routes:\n  - {action: created, method: POST, path: /u, fields: {Department: request.body.attributes.department.0}}",
    );
    let names: Vec<&str> = t.field_names().iter().map(String::as_str).collect();
    assert_eq!(
        names,
        vec![
            "CreatedAt",
            "Department",
            "Email",
            "Enabled",
            "FirstName",
            "ID",
            "LastName",
            "Name"
        ]
    );
}

#[test]
fn errors_carry_key_paths() {
    let e = errors(
        r#"
profiles: [okta, {name: scim, base_path: "v2"}]
routes:
  - {action: create, method: POST, path: /u}
  - {action: created, method: "PO ST", path: /u}
  - {action: created, method: POST, path: "u/{id"}
  - {action: created, method: POST, path: /u, status: [99, 201]}
  - {action: created, method: POST, path: "/u/{id}", fields: {ID: [body.id], Action: path.id, X: path.nope}}
  - {action: login, method: POST, path: /t, when: {request.form.grant: []}, fields: {Name: "request.body.u | upper"}}
  - {action: created, method: POST, path: "/x/{*a}"}
  - {action: created, method: POST, path: "/x/{b}"}
"#,
    );
    let want = [
        "routes[0].action: unknown action `create`",
        "routes[1].method: `PO ST` is not an HTTP method",
        "routes[2].path: `u/{id` must start with `/`",
        "routes[3].status: 99 is not an HTTP status",
        "routes[4].fields.Action: `Action` is an event variable",
        "routes[4].fields.ID: unknown source `body.id`",
        "routes[4].fields.X: `path.nope`: the path template has no `{nope}`; it has id",
        "routes[5].when.request.form.grant: list at least one accepted value",
        "routes[5].fields.Name: unknown transform `upper`",
        "routes[7].path: `/x/{b}` cannot be matched beside the other paths",
        "profiles[0]: unknown profile `okta`; known: generic, keycloak, scim, dce",
        "profiles[1].base_path: `v2` must be a plain path",
    ];
    for w in want {
        assert!(
            e.iter().any(|x| x.starts_with(w)),
            "missing {w:?} in {e:#?}"
        );
    }
    assert_eq!(e.len(), want.len(), "{e:#?}");
}

#[test]
fn operator_may_name_credentials_explicitly() {
    let t = table("routes:\n  - {action: created, method: POST, path: /u, fields: {Password: request.body.password}}");
    assert_eq!(t.len(), 1);
}

#[test]
fn describe_lists_every_rule() {
    let d = profiles::describe().expect("built-in profiles load");
    for p in profiles::all().expect("built-in profiles load") {
        assert!(d.contains(&format!("### `{}`", p.name)));
        for r in &p.routes {
            let path = profiles::join_base(&p.base_path, &r.path);
            assert!(
                d.contains(&format!(
                    "| {} | {} | `{path}` |",
                    r.action.0.join(", "),
                    r.method
                )),
                "{path}"
            );
        }
    }
    assert!(d.contains("`response.header.location \\| last_segment`"));
}

#[test]
#[ignore = "prints the profile tables (the README's copy: USERHOOK_BLESS=1 cargo test --test profile_docs): cargo test print_profiles -- --ignored --nocapture"]
fn print_profiles() {
    println!("{}", profiles::describe().expect("built-in profiles load"));
}

#[test]
fn details_and_session_blocks_are_checked() {
    let errs = errors(
        r#"
routes:
  - action: login
    method: POST
    path: /login
    fields: {Method: request.body.m}
    details: {Method: request.body.m, "bad name": request.body.x, Via: nowhere.x}
    session: {ends: true}
"#,
    );
    let want = [
        "routes[0].details.Method: is also a user field of this rule",
        "routes[0].details.bad name: `bad name` is not a field name",
        "routes[0].details.Via: unknown source `nowhere.x`",
        "routes[0].session: names no credential",
        "routes[0].session.ends: ends the presented credential, but `presents:` lists none",
    ];
    for w in want {
        assert!(errs.iter().any(|e| e.starts_with(w)), "{w}\nin {errs:#?}");
    }
    let t = table(
        r#"
routes:
  - action: logout
    method: POST
    path: /sign-out
    details: {Agent: request.header.user-agent}
    session: {presents: [request.cookie.sid, request.bearer], ends: true}
"#,
    );
    let rule = &t.rules()[0];
    assert_eq!(rule.details.len(), 1);
    let session = rule.session.as_ref().expect("session");
    assert_eq!((session.presents.len(), session.ends), (2, true));
    assert!(!t.reads_client_tokens(&t.classify(&Method::POST, "/sign-out").expect("match")));
}

#[test]
fn profiles_name_their_keys_and_may_hash_credentials_but_never_show_them() {
    let t = table("profiles: [{name: keycloak, base_path: /auth}]\n");
    let logout = t
        .rules()
        .iter()
        .find(|r| r.template.ends_with("/logout") && r.method == Method::POST)
        .expect("logout rule");
    assert_eq!(
        logout.jwks.as_deref(),
        Some("/auth/realms/{realm}/protocol/openid-connect/certs")
    );
    assert!(logout.session.as_ref().is_some_and(|s| s.ends));
    let m = t
        .classify(
            &Method::POST,
            "/auth/realms/acme/protocol/openid-connect/logout",
        )
        .expect("match");
    assert!(t.reads_client_tokens(&m));
}

/// Warnings of a config that compiles, as `check` prints them.
fn warnings(yaml: &str) -> Vec<String> {
    table(yaml)
        .warnings()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_rule_shadowed_by_an_earlier_one_for_the_same_call_is_a_warning() {
    let w = warnings(
        r#"
routes:
  - {action: created, method: POST, path: /sign-up}
  - {action: login, method: POST, path: /sign-up}
  - {action: login, method: POST, path: /sign-up/}
  - {action: created, method: post, path: "/u/{id}", status: [200, 201]}
  - {action: updated, method: POST, path: "/u/{uid}", status: [201]}
"#,
    );
    assert_eq!(w.len(), 3, "{w:#?}");
    assert!(
        w[0].starts_with(
            "routes[1]: never fires: routes[0] (POST /sign-up -> created) comes first"
        ),
        "{w:#?}"
    );
    assert!(w[0].contains("`action: [created, login]`"), "{w:#?}");
    assert!(
        w[1].starts_with("routes[2]: never fires: routes[0]"),
        "{w:#?}"
    );
    assert!(
        w[2].starts_with("routes[4]: never fires: routes[3] (POST /u/{id} -> created)"),
        "{w:#?}"
    );
}

#[test]
fn rules_that_can_each_fire_are_no_warning() {
    assert_eq!(
        warnings(
            r#"
routes:
  # Conditions tell them apart, in either order.
  - {action: login, method: POST, path: /t, when: {request.form.grant_type: password}}
  - {action: created, method: POST, path: /t}
  - {action: login_failed, method: POST, path: /t}
  # Statuses tell them apart.
  - {action: created, method: POST, path: /u, status: [201]}
  - {action: updated, method: POST, path: /u, status: [200]}
  # Other methods.
  - {action: updated, method: PUT, path: /u}
  # A broader later rule still fires where the earlier one does not.
  - {action: deleted, method: DELETE, path: /u, status: [204]}
  - {action: updated, method: DELETE, path: /u}
  # One rule, two actions: the answer to "a second rule for the same call".
  - {action: [created, login], method: POST, path: /sign-up}
profiles: [keycloak, scim, dce, generic]
"#
        ),
        Vec::<String>::new()
    );
}

#[test]
fn a_profile_rule_overridden_by_an_operator_route_is_no_warning() {
    // Routes come first to override a profile's rule for the same call: that is their job.
    let t = table(
        "routes:\n  - {action: created, method: POST, path: /Users, status: [201], fields: {ID: response.body.id}}\nprofiles: [scim]\n",
    );
    assert!(t.warnings().is_empty(), "{:?}", t.warnings());
}

#[test]
fn the_same_condition_in_the_later_rule_still_shadows() {
    let w = warnings(
        r#"
routes:
  - {action: login, method: POST, path: /t, when: {request.form.grant_type: [password]}}
  - {action: login_failed, method: POST, path: /t, status: [200], when: {request.form.grant_type: [password], request.form.x: y}}
"#,
    );
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(
        w[0].starts_with("routes[1]: never fires: routes[0]"),
        "{w:#?}"
    );
}

#[test]
fn multi_action_rules() {
    let t = table(
        "routes:\n  - {action: [created, login], method: POST, path: /sign-up}\n  - {action: [password_changed, updated], method: POST, path: \"/u/{id}/password\"}\n",
    );
    assert_eq!(
        t.rules()[0].actions(),
        [Action::Created, Action::Login].as_slice()
    );
    assert_eq!(t.rules()[1].actions()[0].as_str(), "password_changed");
    assert!(t.rules()[0].status_matches(200) && !t.rules()[0].status_matches(401));
    let emitted: Vec<&str> = t.actions().iter().map(Action::as_str).collect();
    assert_eq!(emitted, ["created", "updated", "login", "password_changed"]);

    let e = errors(
        r#"
routes:
  - {action: [], method: POST, path: /a}
  - {action: [created, created], method: POST, path: /b}
  - {action: [remember, created], method: POST, path: /c}
  - {action: [login, login_failed], method: POST, path: /d}
  - {action: [login, creatd], method: POST, path: /e}
  - {action: Password-Changed, method: POST, path: /f}
"#,
    );
    let want = [
        "routes[0].action: empty list",
        "routes[1].action[1]: `created` is listed twice",
        "routes[2].action: `remember` emits no event",
        "routes[3].status: missing: `login_failed` fires on 400, 401, 403 by default",
        "routes[4].action[1]: unknown action `creatd`: did you mean `created`?",
        "routes[5].action: unknown action `Password-Changed`; expected one of created",
    ];
    for w in want {
        assert!(
            e.iter().any(|x| x.starts_with(w)),
            "missing {w:?} in {e:#?}"
        );
    }
    assert_eq!(e.len(), want.len(), "{e:#?}");
    // With statuses listed, a login/login_failed pair is fine, and so is login_failed alone.
    let t = table("routes:\n  - {action: [login, login_failed], method: POST, path: /d, status: [200, 401]}\n  - {action: [login_failed], method: POST, path: /e}\n");
    assert!(t.rules()[1].status_matches(403) && !t.rules()[1].status_matches(200));
}

#[test]
fn custom_actions_fire_on_any_2xx_by_default() {
    let t = table("routes:\n  - {action: password_changed, method: POST, path: \"/v3/users/{id}/password\"}\n");
    let r = &t.rules()[0];
    assert!(r.status_matches(204) && r.status_matches(200) && !r.status_matches(401));
    assert_eq!(r.actions()[0].event_type(), "user.password_changed");
}

#[test]
fn conditions_that_can_never_hold_are_errors_with_their_key() {
    let e = errors(
        r#"
routes:
  - {action: login, method: POST, path: /a, when: {request.header.x-kind: {contains: password}}}
  - {action: login, method: POST, path: /b, when: {const.x: y}}
  - {action: login, method: POST, path: /c, when: {request.body.t: {exists: false, prefix: a}}}
"#,
    );
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(
        e[0].starts_with("routes[0].when.request.header.x-kind: can never hold as meant"),
        "{e:#?}"
    );
    assert!(
        e[1].starts_with("routes[1].when.const.x: can never hold"),
        "{e:#?}"
    );
    assert!(
        e[2].starts_with("routes[2].when.request.body.t: can never hold"),
        "{e:#?}"
    );
    // An unknown operator is a YAML shape error, found when the file is read.
    let file = parse_str("upstream: http://127.0.0.1:1\nroutes:\n  - {action: login, method: POST, path: /d, when: {request.body.t: {has: a}}}\n");
    let err = file.expect_err("unknown operator").to_string();
    assert!(
        err.contains("routes[0].when") && err.contains("unknown operator `has`"),
        "{err}"
    );
    let w = warnings("routes:\n  - {action: login, method: POST, path: /a, when: {const.x: x}}\n");
    assert_eq!(w, ["routes[0].when.const.x: always holds: `const.x` is the same for every call; remove the condition"]);
}
