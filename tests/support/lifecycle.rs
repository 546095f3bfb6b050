//! The harness of the profile lifecycle tests: the real `userhook` binary with one built-in
//! profile in front of a fake IAM, one webhook to a real receiver, and exact assertions on
//! every event the receiver gets.
//!
//! Each delivery's body renders every variable a lifecycle test checks (event, user fields,
//! attribution, what changed), so a test compares one whole JSON object per event. Calls are
//! made one at a time and each expected event is awaited before the next call, so the order
//! of events is the order of calls without relying on delivery order.
//!
//! Canaries (passwords, tokens, cookie values the test sent or the IAM issued) are checked
//! in every delivered body, every log line and every byte of every file userhook wrote (the
//! spool and the identity store live in the test's directory).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use super::receiver::{Received, WebhookReceiver};
use super::{config_for, eventually, Binary};

/// How long one event may take from the call to the receiver.
const WAIT: Duration = Duration::from_secs(15);

/// Every key of the webhook body, in the order the template writes them.
pub(crate) const KEYS: [&str; 12] = [
    "event",
    "action",
    "status",
    "id",
    "name",
    "email",
    "first_name",
    "last_name",
    "enabled",
    "created_at",
    "attribution",
    "changed",
];

/// The webhook body: every variable the lifecycle tests assert, as one JSON object.
const BODY: &str = r#"{"event":"{{$$.Event$$}}","action":"{{$$.Action$$}}","status":"{{$$.Status$$}}","id":"{{$$.ID$$}}","name":"{{$$.Name$$}}","email":"{{$$.Email$$}}","first_name":"{{$$.FirstName$$}}","last_name":"{{$$.LastName$$}}","enabled":"{{$$.Enabled$$}}","created_at":"{{$$.CreatedAt$$}}","attribution":"{{$$.Attribution$$}}","changed":"{{$$.Changed$$}}"}"#;

/// The binary, its receiver and how many events the test has checked so far.
pub(crate) struct Lifecycle {
    pub bin: Binary,
    pub recv: WebhookReceiver,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    checked: usize,
}

impl Lifecycle {
    /// Starts the binary with `profiles: [<profile>]` (a name or a `{name, base_path}` map)
    /// in front of `upstream`, `extra` appended to the config.
    pub(crate) async fn start(upstream: &str, profile: &str, extra: &str) -> Lifecycle {
        let recv = WebhookReceiver::fixed(200, "ok").await;
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = dir.path().join("spool");
        let yaml = config_for(
            upstream,
            &format!(
                "profiles: [{profile}]\n\
                 delivery: {{spool_dir: '{}'}}\n\
                 webhooks:\n\
                 \x20 - name: audit\n\
                 \x20   actions: ['*']\n\
                 \x20   url: '{}'\n\
                 \x20   body: '{BODY}'\n\
                 {extra}",
                spool.display(),
                recv.url("/audit"),
            ),
        );
        let config = dir.path().join("userhook.yaml");
        std::fs::write(&config, yaml).expect("write config");
        let bin = Binary::start_with_env(&config, &env()).await;
        Lifecycle {
            bin,
            recv,
            dir,
            config,
            checked: 0,
        }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.bin.proxy_addr)
    }

    /// Stops the binary (SIGTERM, waits for it to exit) and starts it again on the same
    /// config, spool and identity store: what survives is what was persisted.
    pub(crate) async fn restart(&mut self) {
        self.bin.signal("TERM");
        let status = tokio::time::timeout(WAIT, self.bin.child.wait())
            .await
            .expect("userhook exits after SIGTERM")
            .expect("wait for userhook");
        assert!(status.success(), "userhook exited with {status}");
        self.bin = Binary::start_with_env(&self.config, &env()).await;
    }

    /// Waits for the next event and asserts it is exactly `want`: the keys `want` gives, and
    /// every other key of [`KEYS`] empty.
    pub(crate) async fn expect(&mut self, want: Value) {
        let n = self.checked + 1;
        let got = self.delivery(n).await;
        self.checked = n;
        let Value::Object(given) = want else {
            panic!("expect() takes a JSON object")
        };
        for k in given.keys() {
            assert!(
                KEYS.contains(&k.as_str()),
                "no key `{k}` in the webhook body"
            );
        }
        let mut full = Map::new();
        for k in KEYS {
            let v = given
                .get(k)
                .cloned()
                .unwrap_or(Value::String(String::new()));
            full.insert(k.to_owned(), v);
        }
        assert_eq!(got, Value::Object(full), "event #{n}");
    }

    /// Waits for the `n`th delivery (1-based) and returns its body as JSON.
    async fn delivery(&self, n: usize) -> Value {
        let all: Vec<Received> =
            eventually(WAIT, &format!("event #{n} at the receiver"), || async {
                let r = self.recv.received();
                (r.len() >= n).then_some(r)
            })
            .await;
        let r = &all[n - 1];
        assert_eq!(r.method, http::Method::POST);
        assert_eq!(r.uri, "/audit");
        serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("event #{n} is not JSON ({e}): {}", r.text()))
    }

    /// No delivery beyond the ones checked (call it after an event that must come last, so
    /// earlier calls that must not be events have had their chance).
    pub(crate) fn assert_all_checked(&self) {
        let r = self.recv.received();
        assert_eq!(
            r.len(),
            self.checked,
            "unexpected events: {:?}",
            r[self.checked.min(r.len())..]
                .iter()
                .map(Received::text)
                .collect::<Vec<_>>()
        );
    }

    /// None of `canaries` appears in a delivered body, the log, or any file under the test
    /// directory (config excepted: it names no credential).
    pub(crate) fn assert_no_canary(&self, canaries: &[&str]) {
        let bodies: Vec<String> = self.recv.received().iter().map(Received::text).collect();
        let log = self.bin.log_text();
        let mut files = Vec::new();
        collect_files(self.dir.path(), &mut files);
        for c in canaries.iter().filter(|c| !c.is_empty()) {
            for b in &bodies {
                assert!(!b.contains(c), "canary {c} in a delivered event: {b}");
            }
            assert!(!log.contains(c), "canary {c} in the log:\n{log}");
            for f in &files {
                let bytes = std::fs::read(f).expect("read a file userhook wrote");
                assert!(
                    !bytes.windows(c.len()).any(|w| w == c.as_bytes()),
                    "canary {c} in {}",
                    f.display()
                );
            }
        }
        assert!(
            !files.is_empty() || bodies.is_empty(),
            "no spool files found"
        );
    }
}

/// The environment of the binary: info logs, the identity store's secret.
fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("RUST_LOG", "debug"),
        (
            "USERHOOK_IDENTITY_SECRET",
            "lifecycle-test-identity-secret-0123456789",
        ),
    ]
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, out);
        } else if p.file_name().is_some_and(|n| n != "userhook.yaml") {
            out.push(p);
        }
    }
}
