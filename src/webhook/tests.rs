//! Compiling webhooks: defaults, presets, templates, and every problem a config can have.

use super::*;

fn compile(webhooks: &str) -> Result<Webhooks, Vec<String>> {
    let text = format!(
        "upstream: http://127.0.0.1:1\nroutes:\n  - action: created\n    method: POST\n    path: /users\n    fields: {{Department: request.body.dept}}\nwebhooks:\n{webhooks}"
    );
    let file = crate::config::parse_str(&text).map_err(|e| vec![e.to_string()])?;
    Webhooks::compile(&file).map_err(|e| e.iter().map(|e| e.to_string()).collect())
}

fn one(yaml: &str) -> Arc<Webhook> {
    let hooks = compile(yaml).unwrap_or_else(|e| panic!("{e:?}"));
    let first = hooks.iter().next().expect("one webhook").clone();
    first
}

#[test]
fn defaults_are_the_dce_body_json_and_plain_2xx() {
    let w = one("  - {name: a, actions: [created, deleted], url: 'http://x/h'}\n");
    assert_eq!(w.name, "a");
    assert_eq!(w.method, Method::POST);
    assert_eq!(w.content_type, "application/json");
    assert_eq!(w.body.kind(), BodyKind::Json);
    assert_eq!(w.success, SuccessCheck::Http2xx);
    assert_eq!(w.attempts, 12);
    assert!(w.subscribes(&Action::Created));
    assert!(w.subscribes(&Action::Deleted));
    assert!(!w.subscribes(&Action::Login));
    assert_eq!(
        w.body.variables().collect::<Vec<_>>(),
        [
            "ID",
            "Email",
            "Name",
            "LastName",
            "FirstName",
            "CreatedAt",
            "Enabled"
        ]
    );
}

#[test]
fn star_subscribes_to_everything() {
    let w = one("  - {name: a, actions: ['*'], url: 'http://x/h', method: put}\n");
    assert!(Action::ALL.iter().all(|a| w.subscribes(a)));
    assert_eq!(w.method, Method::PUT);
}

#[test]
fn a_custom_body_keeps_its_presets_check() {
    let w = one("  - {name: a, actions: ['*'], url: 'http://x/h', preset: wecom-text, body: '{\"msgtype\":\"text\",\"text\":{\"content\":\"{{$$.Name$$}}\"}}'}\n");
    assert_eq!(w.success, SuccessCheck::ErrCodeZero);
    assert_eq!(w.body.variables().collect::<Vec<_>>(), ["Name"]);
    let p = one("  - {name: a, actions: ['*'], url: 'http://x/h', preset: feishu}\n");
    assert_eq!(p.success, SuccessCheck::FeishuCodeZero);
}

#[test]
fn text_bodies_need_a_non_json_content_type() {
    let err =
        compile("  - {name: a, actions: ['*'], url: 'http://x/h', body: 'hello {{$$.Name$$}}'}\n")
            .unwrap_err();
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(err[0].starts_with("webhooks[0].body: "), "{err:?}");
    assert!(err[0].contains("set content_type"), "{err:?}");
    let w = one("  - {name: a, actions: ['*'], url: 'http://x/h', body: 'hello {{$$.Name$$}}', content_type: text/plain}\n");
    assert_eq!(w.body.kind(), BodyKind::Text);
    assert_eq!(w.content_type, "text/plain");
    let j = one("  - {name: a, actions: ['*'], url: 'http://x/h', body: '{}', content_type: 'application/cloudevents+json; charset=utf-8'}\n");
    assert_eq!(j.body.kind(), BodyKind::Json);
}

#[test]
fn unknown_variables_name_their_key_path() {
    let err = compile(
        "  - {name: a, actions: ['*'], url: 'http://x/h'}\n  - {name: b, actions: ['*'], url: 'http://x/{{$$.Nmae$$}}', body: '{\"e\":\"{{$$.Emial$$}}\"}'}\n",
    )
    .unwrap_err();
    assert_eq!(err.len(), 2, "{err:?}");
    assert!(
        err[0].starts_with("webhooks[1].url: unknown variable {{$$.Nmae$$}}; known: ID, Email"),
        "{err:?}"
    );
    assert!(
        err[1].starts_with("webhooks[1].body: unknown variable {{$$.Emial$$}}; known: ID,"),
        "{err:?}"
    );
}

#[test]
fn custom_fields_from_routes_are_known() {
    let w = one("  - {name: a, actions: ['*'], url: 'http://x/{{$$.Department$$}}', body: '{\"d\":\"{{$$.Department$$}}\"}'}\n");
    assert_eq!(w.body.variables().collect::<Vec<_>>(), ["Department"]);
}

#[test]
fn reserved_headers_and_bad_secrets_are_errors() {
    let err = compile("  - {name: a, actions: ['*'], url: 'http://x/h', headers: {Webhook-Id: x}, secret: 'whsec_%%%'}\n")
        .unwrap_err();
    assert_eq!(err.len(), 2, "{err:?}");
    assert!(
        err[0].starts_with("webhooks[0].headers.Webhook-Id: "),
        "{err:?}"
    );
    assert_eq!(
        err[1],
        "webhooks[0].secret: signing secret after `whsec_` is not valid base64"
    );
}

#[test]
fn debug_hides_secrets_and_headers() {
    let w = one("  - {name: a, actions: ['*'], url: 'http://x/h?key=K3Y', headers: {Authorization: Bearer T0K}, secret: s3cr3t-value}\n");
    let shown = format!("{w:?}");
    assert!(shown.contains("signed: true"), "{shown}");
    for secret in ["K3Y", "T0K", "s3cr3t"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(w.headers["authorization"].is_sensitive());
}

#[test]
fn lookup_by_name() {
    let hooks = compile(
        "  - {name: a, actions: ['*'], url: 'http://x/h'}\n  - {name: b, actions: ['*'], url: 'http://x/h', enabled: false}\n",
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(hooks.names(), ["a", "b"]);
    assert!(!hooks.get("b").expect("b").enabled);
    assert!(hooks.get("c").is_none());
    assert_eq!(hooks.len(), 2);
}

// ------------------------------------------------------------------------------------------
// Every problem a webhook can have, each reported once with its key path.

const HOOK: &str = "webhooks:\n  - {name: a, actions: ['*'], url: 'http://x/'";

/// The problems of a minimal file plus `extra`, as `path: message` strings.
fn problems(extra: &str) -> Vec<String> {
    let text = format!("upstream: http://127.0.0.1:8081\n{extra}");
    let file: ConfigFile = match serde_saphyr::from_str(&text) {
        Ok(f) => f,
        Err(e) => panic!("test YAML does not parse: {e}"),
    };
    match Webhooks::compile(&file) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(|e| e.to_string()).collect(),
    }
}

fn hook(extra: &str) -> Vec<String> {
    problems(&format!("{HOOK}{extra}}}\n"))
}

fn one_problem(found: Vec<String>, path: &str, fragment: &str) {
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with(&format!("{path}: ")), "{found:?}");
    assert!(found[0].contains(fragment), "{found:?}");
}

#[test]
fn a_minimal_webhook_has_no_problem() {
    assert_eq!(hook(""), Vec::<String>::new());
}

#[test]
fn webhook_names() {
    one_problem(
        problems("webhooks:\n  - {name: a, actions: ['*'], url: 'http://x'}\n  - {name: a, actions: ['*'], url: 'http://y'}\n"),
        "webhooks[1].name",
        "used twice",
    );
    one_problem(
        problems("webhooks:\n  - {name: ' ', actions: ['*'], url: 'http://x'}\n"),
        "webhooks[0].name",
        "is empty",
    );
}

#[test]
fn webhook_object_and_actions() {
    one_problem(
        hook(", object: group"),
        "webhooks[0].object",
        "expected user",
    );
    one_problem(
        problems("webhooks:\n  - {name: a, actions: [], url: 'http://x'}\n"),
        "webhooks[0].actions",
        "is empty",
    );
    one_problem(
        problems("webhooks:\n  - {name: a, actions: [created, delete], url: 'http://x'}\n"),
        "webhooks[0].actions[1]",
        "unknown action `delete`",
    );
}

#[test]
fn webhook_method() {
    one_problem(
        hook(", method: HEAD"),
        "webhooks[0].method",
        "expected one of GET, POST",
    );
    assert!(hook(", method: put").is_empty());
}

#[test]
fn webhook_url() {
    let u = |url: &str| {
        problems(&format!(
            "webhooks:\n  - {{name: a, actions: ['*'], url: '{url}'}}\n"
        ))
    };
    one_problem(u("mailto:x@y"), "webhooks[0].url", "http:// or https://");
    one_problem(u("https:///path"), "webhooks[0].url", "");
    assert!(u("https://h/users/{{$$.ID$$}}?name={{$$.Name$$}}&key=k").is_empty());
    let shown = u("ftp://h/send?key=CANARY");
    assert!(!shown[0].contains("CANARY"), "{shown:?}");
}

#[test]
fn webhook_preset() {
    one_problem(
        hook(", preset: teams"),
        "webhooks[0].preset",
        "expected one of default, wecom-text",
    );
    for p in crate::template::PRESETS {
        assert!(
            hook(&format!(", preset: {}", p.name)).is_empty(),
            "{}",
            p.name
        );
    }
}

#[test]
fn webhook_headers_and_content_type() {
    one_problem(
        hook(", headers: {'Bad Name': x}"),
        "webhooks[0].headers",
        "not a valid header name",
    );
    let found = hook(", headers: {X-Token: \"CANARY\\nx\"}");
    one_problem(
        found.clone(),
        "webhooks[0].headers.X-Token",
        "not a valid header value",
    );
    assert!(!found[0].contains("CANARY"));
    one_problem(
        hook(", content_type: ''"),
        "webhooks[0].content_type",
        "Content-Type",
    );
}

#[test]
fn webhook_secret_not_empty() {
    one_problem(hook(", secret: ''"), "webhooks[0].secret", "remove the key");
    assert!(hook(", secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_empty());
}

#[test]
fn webhook_timeout_and_retry() {
    one_problem(hook(", timeout: 0s"), "webhooks[0].timeout", "more than 0s");
    one_problem(
        hook(", retry: {attempts: 0}"),
        "webhooks[0].retry.attempts",
        "at least 1",
    );
    one_problem(
        hook(", retry: {initial: 1m, max: 10s}"),
        "webhooks[0].retry.initial",
        "initial <= max",
    );
    one_problem(
        hook(", concurrency: 0"),
        "webhooks[0].concurrency",
        "at least 1",
    );
    assert!(hook(", concurrency: 4, retry: {attempts: 1, initial: 1s, max: 1s}").is_empty());
}

#[test]
fn pace_defaults_follow_the_preset() {
    let robot = one("  - {name: a, actions: ['*'], url: 'http://x/h', preset: dingtalk}\n");
    assert_eq!(robot.rate.as_ref().map(|r| r.text.as_str()), Some("20/min"));
    let d = robot
        .digest
        .as_ref()
        .expect("robots digest when over their rate");
    assert_eq!(d.mode, crate::config::model::DigestMode::Auto);
    assert_eq!(d.template.max_items(), 50);
    assert_eq!(robot.health.pause_after, 10);
    assert_eq!(robot.health.probe_initial, Duration::from_secs(30));
    assert_eq!(robot.health.probe_max, Duration::from_secs(600));
    let plain = one("  - {name: a, actions: ['*'], url: 'http://x/h'}\n");
    assert!(plain.rate.is_none() && plain.digest.is_none());
    let off = one("  - {name: a, actions: ['*'], url: 'http://x/h', preset: slack, rate: 'off', digest: {mode: 'off'}}\n");
    assert!(off.rate.is_none() && off.digest.is_none());
    let always = one(
        "  - {name: a, actions: ['*'], url: 'http://x/h', digest: {mode: always, max_items: 7}}\n",
    );
    assert_eq!(
        always.digest.as_ref().map(|d| d.template.max_items()),
        Some(7)
    );
}

#[test]
fn pace_problems_are_reported_with_their_keys() {
    let errors = |yaml: &str| compile(yaml).err().unwrap_or_default().join("\n");
    let e = errors("  - {name: a, actions: ['*'], url: 'http://x/h', rate: '20'}\n");
    assert!(e.contains("webhooks[0].rate: `20` is not a rate"), "{e}");
    let e =
        errors("  - {name: a, actions: ['*'], url: 'http://x/h', health: {alert_webhook: b}}\n");
    assert!(
        e.contains("webhooks[0].health.alert_webhook: `b` is not a webhook in this config"),
        "{e}"
    );
    let e =
        errors("  - {name: a, actions: ['*'], url: 'http://x/h', health: {alert_webhook: a}}\n");
    assert!(e.contains("names this webhook itself"), "{e}");
    let e = errors("  - {name: a, actions: ['*'], url: 'http://x/h', health: {probe: {initial: 1h, max: 1m}}}\n");
    assert!(
        e.contains("webhooks[0].health.probe.initial: 1h is longer"),
        "{e}"
    );
    let e = errors(
        "  - {name: a, actions: ['*'], url: 'http://x/u/{{$$.ID$$}}', preset: wecom-text}\n",
    );
    assert!(
        e.contains("webhooks[0].digest: a digest of many events goes to one URL"),
        "{e}"
    );
    let e = errors("  - {name: a, actions: ['*'], url: 'http://x/h', digest: {mode: always, body: '{\"t\":\"{{$$.Name$$}}\"}'}}\n");
    assert!(
        e.contains("webhooks[0].digest: the digest body names {{$$.Name$$}}"),
        "{e}"
    );
    let e = errors("  - {name: a, actions: ['*'], url: 'http://x/h', digest: {max_items: 0}}\n");
    assert!(
        e.contains("webhooks[0].digest.max_items: expected at least 1"),
        "{e}"
    );
    let e = errors("  - {name: a, actions: ['*'], url: 'http://x/h', digest: {mode: sometimes}}\n");
    assert!(e.contains("digest.mode"), "{e}");
    assert!(errors("  - {name: a, actions: ['*'], url: 'http://x/h', health: {alert_webhook: b}}\n  - {name: b, actions: [deleted], url: 'http://y/h'}\n").is_empty());
}
