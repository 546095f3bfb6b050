//! `userhook learn` against each built-in profile's fake IAM: the same recorded traffic (a
//! lifecycle of several users: creates, reads, updates, failed and good logins, logouts,
//! deletes) is replayed three times, each time against a fresh fake:
//!
//! 1. through `userhook learn` (the real binary): the proposal is read from `GET /learn`
//!    while it runs and from `--out` after SIGTERM; `userhook check` must accept the file;
//! 2. through `userhook serve` with the hand-written profile;
//! 3. through `userhook serve` with the learned config instead.
//!
//! Events are compared by action and user ID as a multiset; precision and recall per profile
//! are printed (the README's table) and held to the floor this file records. No canary
//! (passwords, issued tokens and cookies, names) may appear in the proposal, in what
//! `GET /learn` answered, in the learn run's log or in any file it wrote.
//!
//! Waiting is by polling with a deadline: after the traffic a marker call (a rule both serve
//! configs carry) is made; once its event arrived and the spool has nothing pending, every
//! earlier event has been delivered (the extractor handles exchanges in order).

mod support;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use support::iam::{call, Reply};
use support::receiver::WebhookReceiver;
use support::{eventually, Binary, FakeUpstream};

const WAIT: Duration = Duration::from_secs(20);

/// The canary password of user `n`.
fn password(n: u32) -> String {
    format!("CANARY-PW-{n}-7h3Qx9Lm2Vb8")
}

/// A wrong password.
const WRONG: &str = "CANARY-WRONG-PW-5r8Tz1Kq";

/// The canary name of user `n` (a login name; lower case, as IAMs fold them).
fn name(n: u32) -> String {
    format!("canaryname{n}xq7w")
}

/// The canary email of user `n`.
fn email(n: u32) -> String {
    format!("{}@canary-mail.example", name(n))
}

/// A display name.
fn display(n: u32) -> String {
    format!("Canarydisplay{n} Zyxwvut")
}

/// The proxy's address and what the traffic handed out, so credentials can be checked.
struct Traffic {
    base: String,
    calls: AtomicUsize,
    /// Credentials the IAM issued during the run (tokens, cookies), as canaries.
    issued: std::sync::Mutex<Vec<String>>,
}

impl Traffic {
    async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<bytes::Bytes>,
    ) -> Reply {
        self.calls.fetch_add(1, Ordering::Relaxed);
        call(&self.base, method, path, headers, body).await
    }

    async fn json(&self, method: &str, path: &str, extra: &[(&str, &str)], body: Value) -> Reply {
        let mut h = vec![("content-type", "application/json")];
        h.extend_from_slice(extra);
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        self.call(method, path, &h, body).await
    }

    async fn form(&self, path: &str, extra: &[(&str, &str)], body: &str) -> Reply {
        let mut h = vec![("content-type", "application/x-www-form-urlencoded")];
        h.extend_from_slice(extra);
        self.call("POST", path, &h, body.to_owned()).await
    }

    fn issued(&self, v: &str) -> String {
        self.issued.lock().expect("lock").push(v.to_owned());
        v.to_owned()
    }

    /// The value of cookie `name` the reply sets.
    fn cookie(&self, r: &Reply, name: &str) -> String {
        let v = r
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|l| {
                l.split(';')
                    .next()?
                    .strip_prefix(&format!("{name}="))
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("no cookie {name} set"));
        self.issued(&v)
    }

    /// A string of the reply's JSON body at `pointer`.
    fn body(&self, r: &Reply, pointer: &str) -> String {
        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        match v.pointer(pointer) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            other => panic!(
                "no {pointer} in {} ({other:?})",
                String::from_utf8_lossy(&r.body)
            ),
        }
    }
}

type Script = for<'a> fn(&'a Traffic) -> Pin<Box<dyn Future<Output = ()> + 'a>>;
type Fake = fn() -> Pin<Box<dyn Future<Output = FakeUpstream>>>;

/// One profile's case: its fake, its traffic and the floor its figures must reach.
struct Case {
    profile: &'static str,
    fake: Fake,
    script: Script,
    /// (precision, recall) this implementation reaches; a drop fails the test.
    floor: (f64, f64),
}

/// A rule both serve configs have: the marker call's event says the traffic is all examined.
const MARKER: &str = "  - {action: replay_marker, method: POST, path: /userhook-replay-marker, status: [200, 201, 204, 302, 400, 401, 403, 404, 405, 500]}\n";

/// The webhook body: action and user id.
const BODY: &str = r#"{"action":"{{$$.Action$$}}","id":"{{$$.ID$$}}"}"#;

/// Runs the traffic through `userhook learn`; returns the proposal, its text from
/// `GET /learn`, and everything the run wrote or logged (for the canary check).
async fn learn(case: &Case, dir: &Path) -> (String, String, String) {
    let iam = (case.fake)().await;
    let out = dir.join("learned.yaml");
    let upstream = iam.url();
    let out_arg = out.display().to_string();
    let mut bin = Binary::start_args(
        &[
            "learn",
            "--upstream",
            &upstream,
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--out",
            &out_arg,
            "--workers",
            "1",
        ],
        &[("RUST_LOG", "debug")],
    )
    .await;
    let traffic = Traffic {
        base: format!("http://{}", bin.proxy_addr),
        calls: AtomicUsize::new(0),
        issued: Default::default(),
    };
    (case.script)(&traffic).await;
    for seen in iam.requests() {
        assert!(
            seen.headers.get("x-request-id").is_none(),
            "learn changed a request: {}",
            seen.uri
        );
    }
    let calls = traffic.calls.load(Ordering::Relaxed);
    let header = format!("from {calls} exchanges");
    let admin = format!("http://{}", bin.admin_addr);
    let shown = eventually(WAIT, "GET /learn to count every exchange", || async {
        let r = call(&admin, "GET", "/learn", &[], "").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["content-type"], "text/yaml; charset=utf-8");
        let text = String::from_utf8(r.body.to_vec()).expect("utf-8");
        text.contains(&header).then_some(text)
    })
    .await;
    bin.signal("TERM");
    let status = tokio::time::timeout(WAIT, bin.child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert!(status.success(), "userhook learn exited with {status}");
    let proposal = std::fs::read_to_string(&out).expect("the proposal was written");
    assert_eq!(proposal, shown, "the file says what GET /learn showed");
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_userhook"))
        .arg("check")
        .arg(&out)
        .output()
        .expect("userhook check");
    assert!(
        check.status.success(),
        "userhook check refused the proposal:\n{}\n{proposal}",
        String::from_utf8_lossy(&check.stderr)
    );
    let mut canaries: Vec<String> = traffic.issued.lock().expect("lock").clone();
    for n in 0..=6 {
        canaries.extend([password(n), name(n), email(n), display(n)]);
    }
    canaries.push(WRONG.to_owned());
    let log = bin.log_text();
    let mut written = String::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        written.push_str(&String::from_utf8_lossy(
            &std::fs::read(entry.path()).expect("read"),
        ));
    }
    for c in canaries.iter().filter(|c| c.len() >= 8) {
        assert!(
            !proposal.contains(c.as_str()),
            "{}: canary {c} in the proposal:\n{proposal}",
            case.profile
        );
        assert!(
            !log.contains(c.as_str()),
            "{}: canary {c} in the learn log",
            case.profile
        );
        assert!(
            !written.contains(c.as_str()),
            "{}: canary {c} in a file learn wrote",
            case.profile
        );
    }
    (proposal, shown, log)
}

/// Runs the traffic through `userhook serve` with `routes_and_profiles` and returns the
/// events (action, ID) in the order they were delivered, the marker's left out.
async fn serve(case: &Case, dir: &Path, config_body: &str) -> Vec<(String, String)> {
    let iam = (case.fake)().await;
    let recv = WebhookReceiver::fixed(200, "ok").await;
    let spool = dir.join("spool");
    let yaml = format!(
        "listen: 127.0.0.1:0\nupstream: {}\nadmin:\n  listen: 127.0.0.1:0\n\
         delivery: {{spool_dir: '{}'}}\n\
         webhooks:\n  - name: audit\n    actions: ['*']\n    url: '{}'\n    body: '{BODY}'\n{config_body}",
        iam.url(),
        spool.display(),
        recv.url("/audit"),
    );
    let config = dir.join("userhook.yaml");
    std::fs::write(&config, &yaml).expect("config");
    let bin = Binary::start_with_env(
        &config,
        &[
            ("RUST_LOG", "info"),
            (
                "USERHOOK_IDENTITY_SECRET",
                "replay-identity-secret-0123456789abcdef",
            ),
        ],
    )
    .await;
    let traffic = Traffic {
        base: format!("http://{}", bin.proxy_addr),
        calls: AtomicUsize::new(0),
        issued: Default::default(),
    };
    (case.script)(&traffic).await;
    traffic
        .call("POST", "/userhook-replay-marker", &[], "")
        .await;
    let admin = format!("http://{}", bin.admin_addr);
    eventually(WAIT, "the marker event and an empty spool", || async {
        let marker = recv
            .received()
            .iter()
            .any(|r| r.text().contains("replay_marker"));
        let spool = call(&admin, "GET", "/spool", &[], "").await;
        let v: Value = serde_json::from_slice(&spool.body).unwrap_or(Value::Null);
        (marker && v["pending"] == 0).then_some(())
    })
    .await;
    recv.received()
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.body).expect("json");
            (
                v["action"].as_str().unwrap_or("").to_owned(),
                v["id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .filter(|(a, _)| a != "replay_marker")
        .collect()
}

/// The learned proposal as a serve config body: its `routes:` (the marker first), no
/// `upstream:` (the serve run has its own).
fn learned_body(proposal: &str) -> String {
    let mut out = String::new();
    for line in proposal.lines() {
        if line.starts_with("upstream:") {
            continue;
        }
        if line == "routes: []" || line == "routes:" {
            out.push_str("routes:\n");
            out.push_str(MARKER);
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// (true positives, learned events, profile events).
fn compare(profile: &[(String, String)], learned: &[(String, String)]) -> (usize, usize, usize) {
    let mut want: BTreeMap<&(String, String), usize> = BTreeMap::new();
    for e in profile {
        *want.entry(e).or_default() += 1;
    }
    let mut tp = 0;
    for e in learned {
        if let Some(n) = want.get_mut(e).filter(|n| **n > 0) {
            *n -= 1;
            tp += 1;
        }
    }
    (tp, learned.len(), profile.len())
}

async fn run(case: Case) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (learn_dir, a, b) = (
        dir.path().join("learn"),
        dir.path().join("profile"),
        dir.path().join("learned"),
    );
    for d in [&learn_dir, &a, &b] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let (proposal, _, _) = learn(&case, &learn_dir).await;
    let by_profile = serve(
        &case,
        &a,
        &format!("profiles: [{}]\nroutes:\n{MARKER}", case.profile),
    )
    .await;
    let by_learned = serve(&case, &b, &learned_body(&proposal)).await;
    if std::env::var_os("LEARN_REPLAY_SHOW").is_some() {
        println!("{proposal}");
    }
    let (tp, got, want) = compare(&by_profile, &by_learned);
    let precision = if got == 0 {
        0.0
    } else {
        tp as f64 / got as f64
    };
    let recall = if want == 0 {
        0.0
    } else {
        tp as f64 / want as f64
    };
    println!(
        "| {} | {want} | {got} | {tp} | {precision:.2} | {recall:.2} |",
        case.profile
    );
    let missed: Vec<_> = {
        let mut left = by_learned.clone();
        by_profile
            .iter()
            .filter(|e| match left.iter().position(|l| l == *e) {
                Some(i) => {
                    left.remove(i);
                    false
                }
                None => true,
            })
            .collect()
    };
    let extra: Vec<_> = {
        let mut left = by_profile.clone();
        by_learned
            .iter()
            .filter(|e| match left.iter().position(|l| l == *e) {
                Some(i) => {
                    left.remove(i);
                    false
                }
                None => true,
            })
            .collect()
    };
    println!("  missed (profile only): {missed:?}\n  extra (learned only): {extra:?}");
    assert!(
        want > 0 && precision >= case.floor.0 && recall >= case.floor.1,
        "{}: precision {precision:.2} recall {recall:.2} below the floor {:?}\nmissed: {missed:?}\nextra: {extra:?}\nproposal:\n{proposal}",
        case.profile,
        case.floor
    );
}

// ---- the recorded traffic of each profile's IAM ----

fn generic_script(t: &Traffic) -> Pin<Box<dyn Future<Output = ()> + '_>> {
    Box::pin(async move {
        let mut ids = Vec::new();
        for n in 1..=3 {
            let r = t
                .json("POST", "/users", &[], json!({"username": name(n), "email": email(n), "password": password(n), "first_name": display(n)}))
                .await;
            assert_eq!(r.status, 201);
            let id = t.body(&r, "/id");
            ids.push(id.clone());
            assert_eq!(
                t.json("GET", &format!("/users/{id}"), &[], Value::Null)
                    .await
                    .status,
                200
            );
            let r = t
                .json(
                    "PUT",
                    &format!("/users/{id}"),
                    &[],
                    json!({"email": format!("new.{}", email(n))}),
                )
                .await;
            assert_eq!(r.status, 200);
            let r = t
                .json(
                    "POST",
                    "/login",
                    &[],
                    json!({"username": name(n), "password": WRONG}),
                )
                .await;
            assert_eq!(r.status, 401);
            let r = t
                .json(
                    "POST",
                    "/login",
                    &[],
                    json!({"username": name(n), "password": password(n)}),
                )
                .await;
            assert_eq!(r.status, 200);
            let bearer = format!("Bearer {}", t.issued(&t.body(&r, "/access_token")));
            let auth = [("authorization", bearer.as_str())];
            assert_eq!(
                t.json("GET", "/users/me", &auth, Value::Null).await.status,
                200
            );
            assert_eq!(
                t.json("POST", "/logout", &auth, Value::Null).await.status,
                204
            );
            assert_eq!(
                t.json("GET", "/users/me", &auth, Value::Null).await.status,
                401
            );
        }
        // a taken name, then the deletes
        let r = t
            .json(
                "POST",
                "/users",
                &[],
                json!({"username": name(1), "password": password(1)}),
            )
            .await;
        assert_eq!(r.status, 409);
        for id in &ids {
            assert_eq!(
                t.json("DELETE", &format!("/users/{id}"), &[], Value::Null)
                    .await
                    .status,
                204
            );
        }
    })
}

fn keycloak_script(t: &Traffic) -> Pin<Box<dyn Future<Output = ()> + '_>> {
    Box::pin(async move {
        let admin = [("authorization", "Bearer admin-token-not-a-canary")];
        let token = "/realms/acme/protocol/openid-connect/token";
        let mut ids = Vec::new();
        for n in 1..=3 {
            let r = t
                .json("POST", "/admin/realms/acme/users", &admin, json!({"username": name(n), "email": email(n), "firstName": display(n),
                    "enabled": true, "credentials": [{"type": "password", "value": password(n), "temporary": false}]}))
                .await;
            assert_eq!(r.status, 201);
            let location = r.headers["location"].to_str().expect("location");
            let id = location.rsplit('/').next().expect("id").to_owned();
            ids.push(id.clone());
            let one = format!("/admin/realms/acme/users/{id}");
            assert_eq!(t.json("GET", &one, &admin, Value::Null).await.status, 200);
            assert_eq!(
                t.json(
                    "PUT",
                    &one,
                    &admin,
                    json!({"email": format!("new.{}", email(n))})
                )
                .await
                .status,
                204
            );
            let r = t
                .form(
                    token,
                    &[],
                    &format!(
                        "grant_type=password&client_id=app&username={}&password={WRONG}",
                        name(n)
                    ),
                )
                .await;
            assert_eq!(r.status, 401);
            let r = t
                .form(
                    token,
                    &[],
                    &format!(
                        "grant_type=password&client_id=app&username={}&password={}&scope=openid",
                        name(n),
                        password(n)
                    ),
                )
                .await;
            assert_eq!(r.status, 200);
            let refresh = t.issued(&t.body(&r, "/refresh_token"));
            t.issued(&t.body(&r, "/access_token"));
            t.issued(&t.body(&r, "/id_token"));
            let r = t
                .form(
                    "/realms/acme/protocol/openid-connect/logout",
                    &[],
                    &format!("client_id=app&refresh_token={refresh}"),
                )
                .await;
            assert_eq!(r.status, 204);
            let r = t
                .form(
                    token,
                    &[],
                    &format!("grant_type=refresh_token&client_id=app&refresh_token={refresh}"),
                )
                .await;
            assert_eq!(r.status, 400);
        }
        for id in &ids {
            let one = format!("/admin/realms/acme/users/{id}");
            assert_eq!(
                t.json("DELETE", &one, &admin, Value::Null).await.status,
                204
            );
        }
    })
}

fn scim_script(t: &Traffic) -> Pin<Box<dyn Future<Output = ()> + '_>> {
    Box::pin(async move {
        let auth = [("authorization", "Bearer scim-client-token-not-a-canary")];
        let user = |n: u32, mail: String| {
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name(n),
            "name": {"givenName": display(n)}, "emails": [{"value": mail, "primary": true}], "password": password(n), "active": true})
        };
        for n in 1..=3 {
            let r = t
                .json("POST", "/scim/v2/Users", &auth, user(n, email(n)))
                .await;
            assert_eq!(r.status, 201);
            let id = t.body(&r, "/id");
            let one = format!("/scim/v2/Users/{id}");
            assert_eq!(t.json("GET", &one, &auth, Value::Null).await.status, 200);
            assert_eq!(
                t.json("PUT", &one, &auth, user(n, format!("new.{}", email(n))))
                    .await
                    .status,
                200
            );
            let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": false}]});
            assert_eq!(t.json("PATCH", &one, &auth, patch).await.status, 200);
        }
        assert_eq!(
            t.json("POST", "/scim/v2/Users", &auth, user(1, email(1)))
                .await
                .status,
            409
        );
        for n in 1..=3 {
            let one = format!("/scim/v2/Users/{}", support::conventional::scim_id(n));
            assert_eq!(t.json("DELETE", &one, &auth, Value::Null).await.status, 204);
        }
    })
}

fn dce_script(t: &Traffic) -> Pin<Box<dyn Future<Output = ()> + '_>> {
    Box::pin(async move {
        let base = "/apis/ghippo.io/v1alpha1";
        let mut ids = Vec::new();
        for n in 1..=3 {
            let r = t.json("POST", &format!("{base}/users"), &[], json!({"name": name(n), "email": email(n), "password": password(n), "firstname": display(n)})).await;
            assert_eq!(r.status, 200);
            let id = t.body(&r, "/id");
            ids.push(id.clone());
            let one = format!("{base}/users/{id}");
            assert_eq!(t.json("GET", &one, &[], Value::Null).await.status, 200);
            assert_eq!(
                t.json(
                    "PUT",
                    &one,
                    &[],
                    json!({"email": format!("new.{}", email(n))})
                )
                .await
                .status,
                200
            );
            let r = t
                .json(
                    "POST",
                    &format!("{base}/login"),
                    &[],
                    json!({"username": name(n), "password": WRONG}),
                )
                .await;
            assert_eq!(r.status, 401);
            let r = t
                .json(
                    "POST",
                    &format!("{base}/login"),
                    &[],
                    json!({"username": name(n), "password": password(n)}),
                )
                .await;
            assert_eq!(r.status, 200);
            let bearer = format!("Bearer {}", t.issued(&t.body(&r, "/idToken")));
            let auth = [("authorization", bearer.as_str())];
            assert_eq!(
                t.json("DELETE", &format!("{base}/logout"), &auth, Value::Null)
                    .await
                    .status,
                200
            );
        }
        for id in &ids {
            let one = format!("{base}/users/{id}");
            assert_eq!(t.json("DELETE", &one, &[], Value::Null).await.status, 200);
        }
    })
}

fn keystone_script(t: &Traffic) -> Pin<Box<dyn Future<Output = ()> + '_>> {
    use support::keystone::ADMIN_TOKEN;
    Box::pin(async move {
        let admin = [("x-auth-token", ADMIN_TOKEN)];
        for n in 1..=3 {
            let r = t
                .json(
                    "POST",
                    "/v3/users",
                    &admin,
                    json!({"user": {"name": name(n), "domain_id": "default", "enabled": true,
                    "email": email(n), "description": display(n), "password": password(n)}}),
                )
                .await;
            assert_eq!(r.status, 201);
            let id = t.body(&r, "/user/id");
            let one = format!("/v3/users/{id}");
            assert_eq!(t.json("GET", &one, &admin, Value::Null).await.status, 200);
            assert_eq!(
                t.json(
                    "PATCH",
                    &one,
                    &admin,
                    json!({"user": {"email": format!("new.{}", email(n))}})
                )
                .await
                .status,
                200
            );
            let auth = |pw: &str| json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": name(n), "domain": {"id": "default"}, "password": pw}}}}});
            assert_eq!(
                t.json("POST", "/v3/auth/tokens", &[], auth(WRONG))
                    .await
                    .status,
                401
            );
            let r = t
                .json("POST", "/v3/auth/tokens", &[], auth(&password(n)))
                .await;
            assert_eq!(r.status, 201);
            let token = t.issued(r.headers["x-subject-token"].to_str().expect("token"));
            let subject = [
                ("x-auth-token", ADMIN_TOKEN),
                ("x-subject-token", token.as_str()),
            ];
            assert_eq!(
                t.json("GET", "/v3/auth/tokens", &subject, Value::Null)
                    .await
                    .status,
                200
            );
            assert_eq!(
                t.json("DELETE", "/v3/auth/tokens", &subject, Value::Null)
                    .await
                    .status,
                204
            );
            assert_eq!(
                t.json("GET", "/v3/auth/tokens", &subject, Value::Null)
                    .await
                    .status,
                404
            );
        }
        for n in 1..=3 {
            let one = format!("/v3/users/{}", support::keystone::user_id(n));
            assert_eq!(
                t.json("DELETE", &one, &admin, Value::Null).await.status,
                204
            );
        }
    })
}

fn better_auth_script(t: &Traffic) -> Pin<Box<dyn Future<Output = ()> + '_>> {
    Box::pin(async move {
        let cookie_of = |t: &Traffic, r: &Reply| {
            format!(
                "{}={}",
                support::better_auth::SESSION_COOKIE,
                t.cookie(r, support::better_auth::SESSION_COOKIE)
            )
        };
        for n in 1..=3 {
            let r = t
                .json(
                    "POST",
                    "/api/auth/sign-up/email",
                    &[],
                    json!({"name": display(n), "email": email(n), "password": password(n)}),
                )
                .await;
            assert_eq!(r.status, 200);
            t.issued(&t.body(&r, "/token"));
            let r = t
                .json(
                    "POST",
                    "/api/auth/sign-in/email",
                    &[],
                    json!({"email": email(n), "password": WRONG}),
                )
                .await;
            assert_eq!(r.status, 401);
            let r = t
                .json(
                    "POST",
                    "/api/auth/sign-in/email",
                    &[],
                    json!({"email": email(n), "password": password(n), "rememberMe": true}),
                )
                .await;
            assert_eq!(r.status, 200);
            t.issued(&t.body(&r, "/token"));
            let c = cookie_of(t, &r);
            let cookie = [("cookie", c.as_str())];
            assert_eq!(
                t.json("GET", "/api/auth/get-session", &cookie, Value::Null)
                    .await
                    .status,
                200
            );
            assert_eq!(
                t.json(
                    "POST",
                    "/api/auth/update-user",
                    &cookie,
                    json!({"name": format!("{} II", display(n))})
                )
                .await
                .status,
                200
            );
            assert_eq!(
                t.json("POST", "/api/auth/sign-out", &cookie, json!({}))
                    .await
                    .status,
                200
            );
            assert_eq!(
                t.json(
                    "POST",
                    "/api/auth/update-user",
                    &cookie,
                    json!({"name": "x"})
                )
                .await
                .status,
                401
            );
        }
        for n in 1..=3 {
            let r = t
                .json(
                    "POST",
                    "/api/auth/sign-in/email",
                    &[],
                    json!({"email": email(n), "password": password(n)}),
                )
                .await;
            assert_eq!(r.status, 200);
            t.issued(&t.body(&r, "/token"));
            let c = cookie_of(t, &r);
            assert_eq!(
                t.json(
                    "POST",
                    "/api/auth/delete-user",
                    &[("cookie", c.as_str())],
                    json!({})
                )
                .await
                .status,
                200
            );
        }
    })
}

fn fastapi_users_script(t: &Traffic) -> Pin<Box<dyn Future<Output = ()> + '_>> {
    Box::pin(async move {
        let login = |n: u32, pw: String, backend: &'static str| {
            (
                format!("/auth/{backend}/login"),
                format!(
                    "grant_type=password&username={}&password={pw}&scope=",
                    email(n).replace('@', "%40")
                ),
            )
        };
        let r = t
            .json(
                "POST",
                "/auth/register",
                &[],
                json!({"email": "admin@example.com", "password": password(0)}),
            )
            .await;
        assert_eq!(r.status, 201);
        let b = format!(
            "grant_type=password&username=admin%40example.com&password={}&scope=",
            password(0)
        );
        let r = t.form("/auth/jwt/login", &[], &b).await;
        let admin = format!("Bearer {}", t.issued(&t.body(&r, "/access_token")));
        let admin = [("authorization", admin.as_str())];
        for n in 1..=3 {
            let r = t
                .json(
                    "POST",
                    "/auth/register",
                    &[],
                    json!({"email": email(n), "password": password(n)}),
                )
                .await;
            assert_eq!(r.status, 201);
            let (p, b) = login(n, WRONG.to_owned(), "jwt");
            assert_eq!(t.form(&p, &[], &b).await.status, 400);
            let (p, b) = login(n, password(n), "jwt");
            let r = t.form(&p, &[], &b).await;
            assert_eq!(r.status, 200);
            let bearer = format!("Bearer {}", t.issued(&t.body(&r, "/access_token")));
            let auth = [("authorization", bearer.as_str())];
            assert_eq!(
                t.json("GET", "/users/me", &auth, Value::Null).await.status,
                200
            );
            assert_eq!(
                t.json(
                    "PATCH",
                    "/users/me",
                    &auth,
                    json!({"email": format!("new.{}", email(n))})
                )
                .await
                .status,
                200
            );
            assert_eq!(
                t.json("POST", "/auth/jwt/logout", &auth, Value::Null)
                    .await
                    .status,
                204
            );
            assert_eq!(
                t.json("GET", "/users/me", &auth, Value::Null).await.status,
                401
            );
        }
        for n in 1..=3 {
            let one = format!("/users/{}", support::fastapi_users::user_id(n + 1));
            assert_eq!(t.json("GET", &one, &admin, Value::Null).await.status, 200);
            assert_eq!(
                t.json("DELETE", &one, &admin, Value::Null).await.status,
                204
            );
        }
    })
}

fn gitea_script(t: &Traffic) -> Pin<Box<dyn Future<Output = ()> + '_>> {
    Box::pin(async move {
        let admin_h = format!("token {}", support::gitea::ADMIN_TOKEN);
        let admin = [("authorization", admin_h.as_str())];
        let sign_in = |n: u32, pw: String| {
            format!(
                "_csrf=Xk3Jm9Qa2Lr7Tz4Wb8Nc1Vd6Hf3&user_name={}&password={pw}&remember=",
                name(n)
            )
        };
        for n in 1..=3 {
            let r = t
                .json(
                    "POST",
                    "/api/v1/admin/users",
                    &admin,
                    json!({"username": name(n), "email": email(n), "full_name": display(n),
                    "password": password(n), "must_change_password": false, "send_notify": false}),
                )
                .await;
            assert_eq!(r.status, 201);
            let r = t.json("PATCH", &format!("/api/v1/admin/users/{}", name(n)), &admin, json!({"login_name": name(n), "source_id": 0, "full_name": format!("{} II", display(n))})).await;
            assert_eq!(r.status, 200);
            let r = t.form("/user/login", &[], &sign_in(n, password(n))).await;
            assert_eq!(r.status, 303);
            let c = format!("i_like_gitea={}", t.cookie(&r, "i_like_gitea"));
            assert_eq!(
                t.call("POST", "/user/logout", &[("cookie", c.as_str())], "")
                    .await
                    .status,
                200
            );
        }
        for n in 1..=3 {
            let one = format!("/api/v1/admin/users/{}", name(n));
            assert_eq!(
                t.json("DELETE", &one, &admin, Value::Null).await.status,
                204
            );
        }
    })
}

fn casdoor_script(t: &Traffic) -> Pin<Box<dyn Future<Output = ()> + '_>> {
    use support::casdoor::ADMIN_BASIC;
    Box::pin(async move {
        for n in 1..=3 {
            let r = t.json("POST", "/api/signup", &[], json!({"application": "app-built-in", "organization": "built-in",
                "username": name(n), "name": display(n), "email": email(n), "password": password(n)})).await;
            assert_eq!(r.status, 200);
            let c = format!("casdoor_session_id={}", t.cookie(&r, "casdoor_session_id"));
            let cookie = [("cookie", c.as_str())];
            assert_eq!(
                t.json("GET", "/api/get-account", &cookie, Value::Null)
                    .await
                    .status,
                200
            );
            assert_eq!(
                t.json("POST", "/api/logout", &cookie, Value::Null)
                    .await
                    .status,
                200
            );
            let r = t
                .json(
                    "POST",
                    "/api/login",
                    &[],
                    json!({"application": "app-built-in", "organization": "built-in",
                "username": name(n), "password": WRONG, "type": "login"}),
                )
                .await;
            assert_eq!(r.status, 200);
            let c = format!("casdoor_session_id={}", t.cookie(&r, "casdoor_session_id"));
            let cookie = [("cookie", c.as_str())];
            let r = t
                .json(
                    "POST",
                    "/api/login",
                    &cookie,
                    json!({"application": "app-built-in", "organization": "built-in",
                "username": name(n), "password": password(n), "type": "login"}),
                )
                .await;
            assert_eq!(r.status, 200);
            assert_eq!(
                t.json("POST", "/api/logout", &cookie, Value::Null)
                    .await
                    .status,
                200
            );
        }
        for n in 1..=3 {
            let r = t
                .json(
                    "POST",
                    "/api/delete-user",
                    &[("authorization", ADMIN_BASIC)],
                    json!({"owner": "built-in", "name": name(n)}),
                )
                .await;
            assert_eq!(r.status, 200);
        }
    })
}

fn zitadel_script(t: &Traffic) -> Pin<Box<dyn Future<Output = ()> + '_>> {
    use support::zitadel::{ORG, PAT};
    Box::pin(async move {
        let pat = [("authorization", PAT)];
        for n in 1..=3 {
            let r = t
                .json("POST", "/v2/users/human", &pat, json!({"username": name(n), "organization": {"orgId": ORG},
                    "profile": {"givenName": display(n), "familyName": "Liddell", "displayName": display(n)},
                    "email": {"email": email(n), "sendCode": {}}, "password": {"password": password(n), "changeRequired": false}}))
                .await;
            assert_eq!(r.status, 201);
            let id = t.body(&r, "/userId");
            assert_eq!(
                t.json("GET", &format!("/v2/users/{id}"), &pat, Value::Null)
                    .await
                    .status,
                200
            );
            let r = t
                .json(
                    "PUT",
                    &format!("/v2/users/human/{id}"),
                    &pat,
                    json!({"profile": {"givenName": display(n), "familyName": "Hargreaves"}}),
                )
                .await;
            assert_eq!(r.status, 200);
            let check = |pw: &str| json!({"checks": {"user": {"loginName": name(n)}, "password": {"password": pw}}});
            assert_eq!(
                t.json("POST", "/v2/sessions", &pat, check(WRONG))
                    .await
                    .status,
                400
            );
            let r = t
                .json("POST", "/v2/sessions", &pat, check(&password(n)))
                .await;
            assert_eq!(r.status, 201);
            t.issued(&t.body(&r, "/sessionToken"));
            let sid = t.body(&r, "/sessionId");
            assert_eq!(
                t.json("DELETE", &format!("/v2/sessions/{sid}"), &pat, json!({}))
                    .await
                    .status,
                200
            );
        }
        for n in 1..=3 {
            let one = format!("/v2/users/{}", support::zitadel::object_id(n * 3 - 2));
            let _ = t.json("DELETE", &one, &pat, Value::Null).await;
        }
    })
}

macro_rules! case {
    ($test:ident, $profile:literal, $fake:expr, $script:ident, $floor:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            run(Case {
                profile: $profile,
                fake: || Box::pin($fake),
                script: $script,
                floor: $floor,
            })
            .await;
        }
    };
}

case!(
    learns_generic,
    "generic",
    support::conventional::generic(),
    generic_script,
    (1.0, 1.0)
);
case!(
    learns_keycloak,
    "keycloak",
    support::conventional::keycloak(),
    keycloak_script,
    (1.0, 1.0)
);
case!(
    learns_scim,
    "scim",
    support::conventional::scim(),
    scim_script,
    (1.0, 1.0)
);
case!(
    learns_dce,
    "dce",
    support::conventional::dce(),
    dce_script,
    (1.0, 1.0)
);
case!(
    learns_keystone,
    "keystone",
    support::keystone::keystone(),
    keystone_script,
    (1.0, 1.0)
);
case!(
    learns_better_auth,
    "better-auth",
    support::better_auth::better_auth(Default::default()),
    better_auth_script,
    (1.0, 1.0)
);
case!(
    learns_fastapi_users,
    "fastapi-users",
    support::fastapi_users::fastapi_users(),
    fastapi_users_script,
    (1.0, 1.0)
);
case!(
    learns_gitea,
    "gitea",
    support::gitea::gitea(),
    gitea_script,
    (1.0, 1.0)
);
case!(
    learns_casdoor,
    "casdoor",
    support::casdoor::casdoor(),
    casdoor_script,
    (1.0, 1.0)
);
case!(
    learns_zitadel,
    "zitadel",
    support::zitadel::zitadel(),
    zitadel_script,
    (1.0, 1.0)
);
