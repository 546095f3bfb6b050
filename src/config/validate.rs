//! Checks on a parsed config that need nothing but the file itself.
//!
//! Every rule runs and every problem is returned, each with its key path and what is
//! expected, so an operator fixes a file in one pass. Route rules and templates are compiled
//! (and their errors added) by [`crate::snapshot::Snapshot::build`]; this module never
//! compiles them. Messages never echo a URL's query, userinfo or a secret.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::str::FromStr;

use super::error::ConfigError;
use super::model::{ConfigFile, WebhookSpec};
use crate::event::Action;
use crate::redact::redact_url;

/// Profiles userhook ships; see DESIGN.md section 2.
pub const PROFILES: [&str; 4] = ["generic", "keycloak", "scim", "dce"];
/// Message presets the delivery side knows.
pub const PRESETS: [&str; 6] = [
    "default",
    "wecom-text",
    "wecom-markdown",
    "dingtalk",
    "feishu",
    "slack",
];
/// Methods a webhook may use.
pub const WEBHOOK_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
/// Largest `capture_limit`: bigger copies would let one request hold too much memory.
pub const MAX_CAPTURE_LIMIT: u64 = 64 << 20;
/// Smallest `delivery.max_spool_bytes`: below this the spool fills on the first burst.
pub const MIN_SPOOL_BYTES: u64 = 1 << 20;

/// Every problem in `file` that can be found without compiling routes or templates.
pub fn validate(file: &ConfigFile) -> Vec<ConfigError> {
    let mut errs = Vec::new();
    socket_addr(&mut errs, "listen", &file.listen);
    socket_addr(&mut errs, "admin.listen", &file.admin.listen);
    upstream(&mut errs, &file.upstream);
    if let Some(ca) = &file.upstream_tls.ca_file {
        readable_file(&mut errs, "upstream_tls.ca_file", ca);
    }
    // Route rules and profiles are checked by the compiler that owns their meaning, so the
    // messages cannot drift apart; compiling here lets `check` report them with the rest.
    if let Err(route_errors) = crate::detect::RouteTable::compile(&file.routes, &file.profiles) {
        errs.extend(route_errors);
    }
    let mut names = HashSet::new();
    for (i, w) in file.webhooks.iter().enumerate() {
        let at = format!("webhooks[{i}]");
        if !w.name.trim().is_empty() && !names.insert(w.name.as_str()) {
            errs.push(ConfigError::new(
                format!("{at}.name"),
                format!(
                    "webhook name `{}` is used twice; names must be unique",
                    w.name
                ),
            ));
        }
        webhook(&mut errs, &at, w);
    }
    let limit = file.capture_limit.0;
    if !(1..=MAX_CAPTURE_LIMIT).contains(&limit) {
        errs.push(ConfigError::new(
            "capture_limit",
            format!("is {}; expected between 1B and 64MiB", file.capture_limit),
        ));
    }
    if file.user_cache.capacity < 1 {
        errs.push(ConfigError::new(
            "user_cache.capacity",
            "expected at least 1",
        ));
    }
    if file.timeouts.connect.0.is_zero() {
        errs.push(ConfigError::new(
            "timeouts.connect",
            "expected more than 0s",
        ));
    }
    if file.timeouts.upstream.0.is_zero() {
        errs.push(ConfigError::new(
            "timeouts.upstream",
            "expected more than 0s",
        ));
    }
    let d = &file.delivery;
    if d.spool_dir.trim().is_empty() {
        errs.push(ConfigError::new(
            "delivery.spool_dir",
            "expected a directory path",
        ));
    }
    if d.concurrency < 1 {
        errs.push(ConfigError::new(
            "delivery.concurrency",
            "expected at least 1",
        ));
    }
    if d.records < 1 {
        errs.push(ConfigError::new("delivery.records", "expected at least 1"));
    }
    one_of(
        &mut errs,
        "delivery.guarantee",
        &d.guarantee,
        &["fast", "strict"],
    );
    if d.max_spool_bytes.0 < MIN_SPOOL_BYTES {
        errs.push(ConfigError::new(
            "delivery.max_spool_bytes",
            format!("is {}; expected at least 1MiB", d.max_spool_bytes),
        ));
    }
    one_of(&mut errs, "log.format", &file.log.format, &["text", "json"]);
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&file.log.level) {
        errs.push(ConfigError::new(
            "log.level",
            format!(
                "`{}` is not a log filter ({e}); expected e.g. info, debug, or userhook=debug,warn",
                file.log.level
            ),
        ));
    }
    errs
}

fn one_of(errs: &mut Vec<ConfigError>, path: &str, value: &str, allowed: &[&str]) {
    if !allowed.contains(&value) {
        errs.push(ConfigError::new(
            path,
            format!(
                "`{value}` is not allowed; expected one of {}",
                allowed.join(", ")
            ),
        ));
    }
}

fn socket_addr(errs: &mut Vec<ConfigError>, path: &str, value: &str) {
    if SocketAddr::from_str(value.trim()).is_err() {
        errs.push(ConfigError::new(
            path,
            format!("`{value}` is not a socket address; expected IP:port, e.g. 0.0.0.0:8080 or [::1]:9090"),
        ));
    }
}

fn readable_file(errs: &mut Vec<ConfigError>, path: &str, file: &str) {
    let problem = match std::fs::metadata(file) {
        Ok(m) if !m.is_file() => Some("is not a regular file".to_string()),
        Ok(_) => std::fs::File::open(file)
            .err()
            .map(|e| format!("cannot be read ({e})")),
        Err(e) => Some(format!("cannot be read ({e})")),
    };
    if let Some(p) = problem {
        errs.push(ConfigError::new(
            path,
            format!("`{file}` {p}; expected a readable PEM file"),
        ));
    }
}

/// What is wrong with an absolute http(s) URL, or None. `allow_query` for webhook targets.
fn http_url_problem(url: &str, allow_query: bool) -> Option<String> {
    if url.contains('#') {
        return Some("must not have a #fragment".into());
    }
    let uri = match http::Uri::from_str(url) {
        Ok(u) => u,
        Err(e) => return Some(format!("is not a URL ({e})")),
    };
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(_) | None => return Some("must start with http:// or https://".into()),
    }
    let Some(authority) = uri.authority() else {
        return Some("has no host".into());
    };
    if authority.host().is_empty() {
        return Some("has no host".into());
    }
    if !allow_query && uri.query().is_some() {
        return Some("must not have a ?query".into());
    }
    None
}

fn upstream(errs: &mut Vec<ConfigError>, url: &str) {
    let problem = http_url_problem(url, false).or_else(|| {
        url.split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or_default())
            .filter(|authority| authority.contains('@'))
            .map(|_| "must not contain user:password@ (credentials are not sent upstream)".into())
    });
    if let Some(p) = problem {
        errs.push(ConfigError::new(
            "upstream",
            format!(
                "`{}` {p}; expected an absolute http:// or https:// URL such as http://127.0.0.1:8081 (a path prefix is allowed)",
                redact_url(url)
            ),
        ));
    }
}

/// Replaces `{{$$.X$$}}` placeholders so a templated URL can be checked as a URL.
fn without_placeholders(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(start) = rest.find("{{$$.") {
        out.push_str(&rest[..start]);
        match rest[start..].find("$$}}") {
            Some(end) => {
                out.push('x');
                rest = &rest[start + end + 4..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn webhook(errs: &mut Vec<ConfigError>, at: &str, w: &WebhookSpec) {
    if w.name.trim().is_empty() {
        errs.push(ConfigError::new(
            format!("{at}.name"),
            "is empty; expected a unique name such as ops-wecom",
        ));
    }
    if w.object != "user" {
        errs.push(ConfigError::new(
            format!("{at}.object"),
            format!("`{}` is not supported; expected user", w.object),
        ));
    }
    if w.actions.is_empty() {
        errs.push(ConfigError::new(
            format!("{at}.actions"),
            "is empty; list actions such as [created, deleted] or [\"*\"]",
        ));
    }
    for (j, a) in w.actions.iter().enumerate() {
        if a != "*" {
            if let Err(e) = Action::from_str(a) {
                errs.push(ConfigError::new(
                    format!("{at}.actions[{j}]"),
                    format!("{e}, or *"),
                ));
            }
        }
    }
    if !WEBHOOK_METHODS.contains(&w.method.to_ascii_uppercase().as_str()) {
        errs.push(ConfigError::new(
            format!("{at}.method"),
            format!(
                "`{}` is not allowed; expected one of {}",
                w.method,
                WEBHOOK_METHODS.join(", ")
            ),
        ));
    }
    if let Some(p) = http_url_problem(&without_placeholders(&w.url), true) {
        errs.push(ConfigError::new(
            format!("{at}.url"),
            format!(
                "`{}` {p}; expected an http:// or https:// URL",
                redact_url(&w.url)
            ),
        ));
    }
    if let Some(p) = &w.preset {
        if !PRESETS.contains(&p.as_str()) {
            errs.push(ConfigError::new(
                format!("{at}.preset"),
                format!(
                    "unknown preset `{p}`; expected one of {}",
                    PRESETS.join(", ")
                ),
            ));
        }
    }
    if let Some(ct) = &w.content_type {
        if http::HeaderValue::from_str(ct).is_err() || ct.trim().is_empty() {
            errs.push(ConfigError::new(
                format!("{at}.content_type"),
                "is not a valid Content-Type value; expected e.g. text/plain",
            ));
        }
    }
    for (name, value) in &w.headers {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            errs.push(ConfigError::new(
                format!("{at}.headers"),
                format!("`{name}` is not a valid header name"),
            ));
        } else if http::HeaderValue::from_str(value).is_err() {
            // The value may be a secret: name the header only.
            errs.push(ConfigError::new(
                format!("{at}.headers.{name}"),
                "value is not a valid header value (control characters or newlines)",
            ));
        }
    }
    if w.secret.as_deref().is_some_and(|s| s.trim().is_empty()) {
        errs.push(ConfigError::new(
            format!("{at}.secret"),
            "is empty; expected a signing secret (whsec_...), or remove the key to send unsigned",
        ));
    }
    if w.timeout.0.is_zero() {
        errs.push(ConfigError::new(
            format!("{at}.timeout"),
            "expected more than 0s, e.g. 10s",
        ));
    }
    if w.retry.attempts < 1 {
        errs.push(ConfigError::new(
            format!("{at}.retry.attempts"),
            "expected at least 1 (the first attempt counts)",
        ));
    }
    if w.retry.initial > w.retry.max {
        errs.push(ConfigError::new(
            format!("{at}.retry.initial"),
            format!(
                "{} is longer than retry.max {}; expected initial <= max",
                w.retry.initial, w.retry.max
            ),
        ));
    }
    if w.concurrency == Some(0) {
        errs.push(ConfigError::new(
            format!("{at}.concurrency"),
            "expected at least 1 (or remove it for the global limit)",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "upstream: http://127.0.0.1:8081\n";
    const HOOK: &str = "webhooks:\n  - {name: a, actions: ['*'], url: 'http://x/'";

    /// The problems of `BASE` plus `extra`, as `path: message` strings.
    fn problems(extra: &str) -> Vec<String> {
        let text = format!("{BASE}{extra}");
        let file: ConfigFile = match serde_saphyr::from_str(&text) {
            Ok(f) => f,
            Err(e) => panic!("test YAML does not parse: {e}"),
        };
        validate(&file).iter().map(|e| e.to_string()).collect()
    }

    fn hook(extra: &str) -> Vec<String> {
        problems(&format!("{HOOK}{extra}}}\n"))
    }

    fn one(found: Vec<String>, path: &str, fragment: &str) {
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with(&format!("{path}: ")), "{found:?}");
        assert!(found[0].contains(fragment), "{found:?}");
    }

    #[test]
    fn minimal_is_valid() {
        assert_eq!(problems(""), Vec::<String>::new());
        assert_eq!(hook(""), Vec::<String>::new());
    }

    #[test]
    fn listen_addresses() {
        one(
            problems("listen: localhost\n"),
            "listen",
            "expected IP:port",
        );
        one(
            problems("admin: {listen: ':9090'}\n"),
            "admin.listen",
            "socket address",
        );
        assert_eq!(problems("listen: '[::]:80'\n"), Vec::<String>::new());
    }

    #[test]
    fn upstream_url() {
        let bad = [
            "ftp://h/",
            "127.0.0.1:8081",
            "/relative",
            "http://h/?q=1",
            "http://h/#frag",
            "http://user:pw@h/",
        ];
        for url in bad {
            let text = format!("upstream: '{url}'\n");
            let file: ConfigFile = serde_saphyr::from_str(&text).unwrap();
            let found: Vec<String> = validate(&file).iter().map(|e| e.to_string()).collect();
            one(found, "upstream", "expected an absolute http://");
        }
        for url in ["https://iam.internal/auth", "http://[::1]:8081"] {
            let text = format!("upstream: '{url}'\n");
            let file: ConfigFile = serde_saphyr::from_str(&text).unwrap();
            assert!(validate(&file).is_empty(), "{url}");
        }
    }

    #[test]
    fn upstream_error_hides_credentials() {
        let file: ConfigFile = serde_saphyr::from_str("upstream: 'http://me:CANARY@h/'\n").unwrap();
        let shown = validate(&file)[0].to_string();
        assert!(!shown.contains("CANARY"), "{shown}");
    }

    #[test]
    fn ca_file_must_be_readable() {
        one(
            problems("upstream_tls: {ca_file: /nonexistent/ca.pem}\n"),
            "upstream_tls.ca_file",
            "readable PEM file",
        );
        let dir = tempfile::tempdir().unwrap();
        one(
            problems(&format!(
                "upstream_tls: {{ca_file: '{}'}}\n",
                dir.path().display()
            )),
            "upstream_tls.ca_file",
            "not a regular file",
        );
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "pem").unwrap();
        assert!(problems(&format!("upstream_tls: {{ca_file: '{}'}}\n", ca.display())).is_empty());
    }

    #[test]
    fn webhook_names() {
        one(
            problems("webhooks:\n  - {name: a, actions: ['*'], url: 'http://x'}\n  - {name: a, actions: ['*'], url: 'http://y'}\n"),
            "webhooks[1].name",
            "used twice",
        );
        one(
            problems("webhooks:\n  - {name: ' ', actions: ['*'], url: 'http://x'}\n"),
            "webhooks[0].name",
            "is empty",
        );
    }

    #[test]
    fn webhook_object_and_actions() {
        one(
            hook(", object: group"),
            "webhooks[0].object",
            "expected user",
        );
        one(
            problems("webhooks:\n  - {name: a, actions: [], url: 'http://x'}\n"),
            "webhooks[0].actions",
            "is empty",
        );
        one(
            problems("webhooks:\n  - {name: a, actions: [created, delete], url: 'http://x'}\n"),
            "webhooks[0].actions[1]",
            "unknown action `delete`",
        );
    }

    #[test]
    fn webhook_method() {
        one(
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
        one(u("mailto:x@y"), "webhooks[0].url", "http:// or https://");
        one(u("https:///path"), "webhooks[0].url", "");
        assert!(u("https://h/users/{{$$.ID$$}}?name={{$$.Name$$}}&key=k").is_empty());
        assert!(u("https://{{$$.Host$$}}/x").is_empty());
        let shown = u("ftp://h/send?key=CANARY");
        assert!(!shown[0].contains("CANARY"), "{shown:?}");
    }

    #[test]
    fn webhook_preset() {
        one(
            hook(", preset: teams"),
            "webhooks[0].preset",
            "expected one of default, wecom-text",
        );
        for p in PRESETS {
            assert!(hook(&format!(", preset: {p}")).is_empty(), "{p}");
        }
    }

    #[test]
    fn webhook_headers_and_content_type() {
        one(
            hook(", headers: {'Bad Name': x}"),
            "webhooks[0].headers",
            "not a valid header name",
        );
        let found = hook(", headers: {X-Token: \"CANARY\\nx\"}");
        one(
            found.clone(),
            "webhooks[0].headers.X-Token",
            "not a valid header value",
        );
        assert!(!found[0].contains("CANARY"));
        one(
            hook(", content_type: ''"),
            "webhooks[0].content_type",
            "Content-Type",
        );
    }

    #[test]
    fn webhook_secret_not_empty() {
        one(hook(", secret: ''"), "webhooks[0].secret", "remove the key");
        assert!(hook(", secret: whsec_abc").is_empty());
    }

    #[test]
    fn webhook_timeout_and_retry() {
        one(hook(", timeout: 0s"), "webhooks[0].timeout", "more than 0s");
        one(
            hook(", retry: {attempts: 0}"),
            "webhooks[0].retry.attempts",
            "at least 1",
        );
        one(
            hook(", retry: {initial: 1m, max: 10s}"),
            "webhooks[0].retry.initial",
            "initial <= max",
        );
        one(
            hook(", concurrency: 0"),
            "webhooks[0].concurrency",
            "at least 1",
        );
        assert!(hook(", concurrency: 4, retry: {attempts: 1, initial: 1s, max: 1s}").is_empty());
    }

    #[test]
    fn capture_limit() {
        one(
            problems("capture_limit: 0\n"),
            "capture_limit",
            "between 1B and 64MiB",
        );
        one(
            problems("capture_limit: 65MiB\n"),
            "capture_limit",
            "between 1B and 64MiB",
        );
        assert!(problems("capture_limit: 64MiB\n").is_empty());
        assert!(problems("capture_limit: 1\n").is_empty());
    }

    #[test]
    fn user_cache_and_timeouts() {
        one(
            problems("user_cache: {capacity: 0}\n"),
            "user_cache.capacity",
            "at least 1",
        );
        one(
            problems("timeouts: {connect: 0}\n"),
            "timeouts.connect",
            "more than 0s",
        );
        one(
            problems("timeouts: {upstream: 0ms}\n"),
            "timeouts.upstream",
            "more than 0s",
        );
    }

    #[test]
    fn delivery() {
        one(
            problems("delivery: {concurrency: 0}\n"),
            "delivery.concurrency",
            "at least 1",
        );
        one(
            problems("delivery: {records: 0}\n"),
            "delivery.records",
            "at least 1",
        );
        one(
            problems("delivery: {guarantee: maybe}\n"),
            "delivery.guarantee",
            "expected one of fast, strict",
        );
        one(
            problems("delivery: {max_spool_bytes: 1000KiB}\n"),
            "delivery.max_spool_bytes",
            "at least 1MiB",
        );
        one(
            problems("delivery: {spool_dir: ''}\n"),
            "delivery.spool_dir",
            "directory",
        );
        assert!(problems("delivery: {guarantee: strict, max_spool_bytes: 1MiB}\n").is_empty());
    }

    #[test]
    fn log() {
        one(
            problems("log: {format: xml}\n"),
            "log.format",
            "expected one of text, json",
        );
        one(
            problems("log: {level: 'userhook=loud'}\n"),
            "log.level",
            "not a log filter",
        );
        assert!(problems("log: {format: json, level: 'userhook=debug,warn'}\n").is_empty());
    }
}
