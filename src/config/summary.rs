//! What a config says, shown to people: the `userhook check` screen and the admin `/config`.
//!
//! Both views must never show a secret: webhook secrets, URL userinfo, URL query values,
//! sensitive header values, and path segments that look like tokens (Slack and Feishu robot
//! URLs carry their key in the path) are replaced by `<redacted>`. Redaction works on the
//! type of value (URL, header, secret field), not on the operator remembering to mark it.

use std::fmt::Write as _;

use serde_json::Value;

use super::model::{ConfigFile, ProfileSpec};
use crate::redact::{is_sensitive_header, redact_url, REDACTED};

/// The one-screen text `userhook check` prints. Contains no secret.
pub fn summary(file: &ConfigFile) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail; results are ignored with `let _`.
    let _ = writeln!(s, "listen:    {}", file.listen);
    let _ = writeln!(
        s,
        "upstream:  {} (Host {})",
        redact_url(&file.upstream),
        if file.preserve_host {
            "preserved"
        } else {
            "rewritten to the upstream's"
        }
    );
    if let Some(ca) = &file.upstream_tls.ca_file {
        let _ = writeln!(s, "           extra CA certificates from {ca}");
    }
    let _ = writeln!(
        s,
        "admin:     {} ({})",
        file.admin.listen,
        if file.admin.token.is_some() {
            "bearer token required"
        } else {
            "no token: loopback only"
        }
    );
    let profiles: Vec<String> = file
        .profiles
        .iter()
        .map(|p| match p {
            ProfileSpec::Name(n) => n.clone(),
            ProfileSpec::Full(f) => match &f.base_path {
                Some(b) => format!("{} (base path {b})", f.name),
                None => f.name.clone(),
            },
        })
        .collect();
    let _ = writeln!(
        s,
        "profiles:  {}",
        if profiles.is_empty() {
            "none".to_string()
        } else {
            profiles.join(", ")
        }
    );
    let _ = writeln!(s, "routes:    {} custom", file.routes.len());
    for r in &file.routes {
        let status = match &r.status {
            Some(list) => format!(
                " (status {})",
                list.iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "  {} {} -> {}{status}",
            r.method.to_ascii_uppercase(),
            r.path,
            r.action.0.join(", ")
        );
    }
    let _ = writeln!(s, "webhooks:  {}", file.webhooks.len());
    for w in &file.webhooks {
        let mut notes = vec![format!(
            "preset {}",
            w.preset.as_deref().unwrap_or("default")
        )];
        if w.body.is_some() {
            notes.push("custom body".into());
        }
        match w.signing.as_ref().map(|s| s.secrets.len()) {
            Some(n) if n > 1 => notes.push(format!("signed with {n} secrets")),
            Some(_) => notes.push("signed".into()),
            None if w.secret.is_some() => notes.push("signed".into()),
            None => {}
        }
        notes.push(format!(
            "timeout {}, {} attempts",
            w.timeout, w.retry.attempts
        ));
        if !w.enabled {
            notes.push("DISABLED".into());
        }
        let _ = writeln!(
            s,
            "  {}: [{}] -> {} {} ({})",
            w.name,
            w.actions.join(", "),
            w.method.to_ascii_uppercase(),
            redact_url(&w.url),
            notes.join(", ")
        );
    }
    if !file.sinks.is_empty() {
        let _ = writeln!(s, "sinks:     {}", file.sinks.len());
    }
    for k in &file.sinks {
        let urls: Vec<String> = k.url.0.iter().map(|u| redact_url(u)).collect();
        let mut notes = Vec::new();
        match (&k.stream, k.create_stream) {
            (Some(st), true) => notes.push(format!("stream {st}, created if missing")),
            (Some(st), false) => notes.push(format!("stream {st}")),
            (None, _) => {}
        }
        if k.token.is_some() {
            notes.push("token".into());
        }
        if k.nkey.is_some() {
            notes.push("nkey".into());
        }
        if let Some(c) = &k.creds_file {
            notes.push(format!("creds {c}"));
        }
        if k.tls.required || k.tls.ca_file.is_some() {
            notes.push("tls".into());
        }
        notes.push(format!(
            "timeout {}, {} attempts",
            k.timeout, k.retry.attempts
        ));
        if !k.enabled {
            notes.push("DISABLED".into());
        }
        let _ = writeln!(
            s,
            "  {}: [{}] -> {} {} subject {} ({})",
            k.name,
            k.actions.join(", "),
            k.kind,
            urls.join(","),
            k.subject,
            notes.join(", ")
        );
    }
    let d = &file.delivery;
    let _ = writeln!(
        s,
        "delivery:  guarantee {}, concurrency {}, spool {} (max {}), {} records kept",
        d.guarantee, d.concurrency, d.spool_dir, d.max_spool_bytes, d.records
    );
    let id = &file.identity;
    let _ = writeln!(
        s,
        "capture:   {} per body; user cache {} users",
        file.capture_limit,
        id.max_users.unwrap_or(file.user_cache.capacity)
    );
    // The secret itself is never shown, only where it comes from.
    let _ = writeln!(
        s,
        "identity:  {} ({}), {} sessions, ttl {}, client tokens {}{}",
        id.path
            .as_deref()
            .unwrap_or("identity.redb in the spool directory"),
        if id.secret.is_some() {
            "secret from config"
        } else {
            "generated key"
        },
        id.max_sessions,
        id.session_ttl,
        id.client_tokens,
        id.jwks
            .as_deref()
            .map(|j| format!(", keys from {}", redact_url(j)))
            .unwrap_or_default()
    );
    let t = &file.timeouts;
    let _ = writeln!(
        s,
        "timeouts:  connect {}, upstream {}, shutdown grace {}",
        t.connect, t.upstream, t.shutdown_grace
    );
    let _ = writeln!(s, "log:       {}, {}", file.log.format, file.log.level);
    s
}

/// The whole config as JSON for the admin `/config` endpoint, secrets masked.
pub fn redacted(file: &ConfigFile) -> Value {
    let mut v = match serde_json::to_value(file) {
        Ok(v) => v,
        // Serializing plain strings and numbers cannot fail; if it ever did, show nothing
        // rather than something unredacted.
        Err(_) => return Value::Null,
    };
    if let Some(u) = v.get_mut("upstream") {
        redact_url_value(u);
    }
    if let Some(token) = v.get_mut("admin").and_then(|a| a.get_mut("token")) {
        if !token.is_null() {
            *token = Value::String(REDACTED.into());
        }
    }
    if let Some(Value::Array(hooks)) = v.get_mut("webhooks") {
        for w in hooks {
            if let Some(u) = w.get_mut("url") {
                redact_url_value(u);
            }
            if let Some(secret) = w.get_mut("secret") {
                if !secret.is_null() {
                    *secret = Value::String(REDACTED.into());
                }
            }
            if let Some(Value::Array(secrets)) =
                w.get_mut("signing").and_then(|s| s.get_mut("secrets"))
            {
                for secret in secrets {
                    *secret = Value::String(REDACTED.into());
                }
            }
            if let Some(Value::Object(headers)) = w.get_mut("headers") {
                for (name, value) in headers.iter_mut() {
                    if is_sensitive_header(name) {
                        *value = Value::String(REDACTED.into());
                    }
                }
            }
        }
    }
    if let Some(Value::Array(sinks)) = v.get_mut("sinks") {
        for k in sinks {
            if let Some(Value::Array(urls)) = k.get_mut("url") {
                urls.iter_mut().for_each(redact_url_value);
            }
            for key in ["token", "nkey"] {
                if let Some(secret) = k.get_mut(key) {
                    if !secret.is_null() {
                        *secret = Value::String(REDACTED.into());
                    }
                }
            }
        }
    }
    if let Some(identity) = v.get_mut("identity") {
        if let Some(secret) = identity.get_mut("secret").filter(|s| !s.is_null()) {
            *secret = Value::String(REDACTED.into());
        }
        if let Some(jwks) = identity.get_mut("jwks").filter(|j| !j.is_null()) {
            redact_url_value(jwks);
        }
    }
    // Whatever else came from the environment (a key inside a body, a token in a header with
    // an ordinary name) is shown as the variable's name.
    scrub_strings(&mut v, &file.env_values);
    v
}

fn scrub_strings(v: &mut Value, env: &super::model::EnvValues) {
    match v {
        Value::String(s) => *s = env.scrub(s),
        Value::Array(items) => items.iter_mut().for_each(|i| scrub_strings(i, env)),
        Value::Object(map) => map.values_mut().for_each(|i| scrub_strings(i, env)),
        _ => {}
    }
}

fn redact_url_value(v: &mut Value) {
    if let Value::String(s) = v {
        *s = redact_url(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "CANARY7x9secret-value";

    fn canary_config() -> ConfigFile {
        let text = format!(
            r#"
listen: 0.0.0.0:8080
upstream: http://127.0.0.1:8081/iam
admin: {{listen: '0.0.0.0:9090', token: admin-{CANARY}}}
profiles: [keycloak, {{name: scim, base_path: /v2}}]
routes:
  - {{action: created, method: post, path: /api/v1/users, status: [201]}}
  - {{action: deleted, method: DELETE, path: '/api/v1/users/{{id}}'}}
webhooks:
  - name: ops-wecom
    actions: [created, deleted]
    url: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={CANARY}
    preset: wecom-text
    secret: whsec_{CANARY}
    headers: {{Authorization: 'Bearer {CANARY}', X-Api-Key: '{CANARY}', Cookie: 's={CANARY}', X-Source: iam}}
  - name: slack
    actions: ['*']
    url: https://hooks.slack.com/services/T0001/B0002/{CANARY}
  - name: userinfo
    actions: [login]
    url: https://me:{CANARY}@receiver.example/hook?a=1&token={CANARY}
"#
        );
        match super::super::parse_str_with_env(&text, &|_| None) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn values_from_the_environment_show_as_their_names() {
        let text = "upstream: http://127.0.0.1:1\nwebhooks:\n  - name: robot\n    actions: [\"*\"]\n    url: http://127.0.0.1:2/hook\n    headers: {X-Plain: \"${PLAIN_TOKEN}\"}\n    body: '{\"sign\":\"${FEISHU_SIGN}\",\"id\":\"{{$$.ID$$}}\"}'\n";
        let env = |name: &str| match name {
            "FEISHU_SIGN" => Some("CANARY-SIGN-9f8e7d".to_string()),
            "PLAIN_TOKEN" => Some("CANARY-HDR-1a2b3c".to_string()),
            _ => None,
        };
        let file = super::super::parse_str_with_env(text, &env).expect("valid");
        let shown = redacted(&file).to_string();
        assert!(!shown.contains("CANARY"), "{shown}");
        assert!(shown.contains("${FEISHU_SIGN}"), "{shown}");
        assert!(shown.contains("${PLAIN_TOKEN}"), "{shown}");
        assert!(!format!("{:?}", file.env_values).contains("CANARY"));
    }

    #[test]
    fn summary_has_no_secret() {
        let s = summary(&canary_config());
        assert!(!s.contains(CANARY), "{s}");
        assert!(!s.contains("7x9"), "{s}");
    }

    #[test]
    fn summary_lists_everything() {
        let s = summary(&canary_config());
        let expected = [
            "listen:    0.0.0.0:8080",
            "upstream:  http://127.0.0.1:8081/iam (Host preserved)",
            "admin:     0.0.0.0:9090 (bearer token required)",
            "profiles:  keycloak, scim (base path /v2)",
            "routes:    2 custom",
            "  POST /api/v1/users -> created (status 201)",
            "  DELETE /api/v1/users/{id} -> deleted",
            "webhooks:  3",
            "  ops-wecom: [created, deleted] -> POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=<redacted> (preset wecom-text, signed, timeout 10s, 12 attempts)",
            "  slack: [*] -> POST https://hooks.slack.com/services/T0001/B0002/<redacted> (preset default, timeout 10s, 12 attempts)",
            "delivery:  guarantee fast, concurrency 32, spool ./data/spool (max 1GiB), 10000 records kept",
            "capture:   1MiB per body; user cache 100000 users",
            "identity:  identity.redb in the spool directory (generated key), 100000 sessions, ttl 12h, client tokens verify",
            "timeouts:  connect 2s, upstream 30s, shutdown grace 10s",
            "log:       text, info",
        ];
        for line in expected {
            assert!(s.lines().any(|l| l == line), "missing {line:?} in\n{s}");
        }
    }

    #[test]
    fn redacted_json_has_no_secret() {
        let v = redacted(&canary_config());
        let text = v.to_string();
        assert!(!text.contains(CANARY), "{text}");
        let w = &v["webhooks"][0];
        assert_eq!(w["secret"], REDACTED);
        assert_eq!(w["headers"]["Authorization"], REDACTED);
        assert_eq!(w["headers"]["X-Api-Key"], REDACTED);
        assert_eq!(w["headers"]["Cookie"], REDACTED);
        assert_eq!(w["headers"]["X-Source"], "iam");
        assert_eq!(
            v["webhooks"][2]["url"],
            "https://<redacted>@receiver.example/hook?a=<redacted>&token=<redacted>"
        );
        assert_eq!(v["webhooks"][1]["secret"], Value::Null);
        assert_eq!(v["admin"]["token"], REDACTED);
        assert_eq!(v["admin"]["listen"], "0.0.0.0:9090");
    }

    #[test]
    fn the_identity_secret_is_never_shown() {
        let text = format!(
            "upstream: http://127.0.0.1:1\nidentity: {{secret: '{CANARY}-long-enough', jwks: 'https://idp/certs?key={CANARY}'}}\n"
        );
        let file = match super::super::parse_str_with_env(&text, &|_| None) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        let v = redacted(&file);
        assert_eq!(v["identity"]["secret"], REDACTED);
        assert_eq!(v["identity"]["jwks"], "https://idp/certs?key=<redacted>");
        let s = summary(&file);
        for shown in [v.to_string(), s.clone()] {
            assert!(!shown.contains(CANARY), "{shown}");
        }
        assert!(s.contains("(secret from config)"), "{s}");
    }

    #[test]
    fn redacted_json_keeps_the_rest() {
        let v = redacted(&canary_config());
        assert_eq!(v["listen"], "0.0.0.0:8080");
        assert_eq!(v["capture_limit"], "1MiB");
        assert_eq!(v["webhooks"][0]["timeout"], "10s");
        assert_eq!(v["webhooks"][0]["retry"]["max"], "10m");
        assert_eq!(v["routes"][0]["status"][0], 201);
        assert_eq!(v["profiles"][0], "keycloak");
        assert_eq!(v["profiles"][1]["base_path"], "/v2");
        assert_eq!(v["preserve_host"], true);
    }

    #[test]
    fn sinks_show_no_secret() {
        let text = format!(
            "upstream: http://127.0.0.1:1\nsinks:\n  - {{name: fleet, kind: nats, url: ['nats://user:{CANARY}@127.0.0.1:4222', 'nats://127.0.0.1:4223'], subject: 'iam.users.{{{{$$.Action$$}}}}', actions: ['*'], stream: USERS, token: {CANARY}}}\n  - {{name: other, kind: nats, url: 'nats://127.0.0.1:4222', subject: a.b, actions: [created], nkey: SU{CANARY}}}\n"
        );
        let file = crate::config::parse_str(&text).unwrap_or_else(|e| panic!("{e}"));
        let text = summary(&file);
        assert!(!text.contains(CANARY), "{text}");
        assert!(text.contains("fleet: [*] -> nats nats://<redacted>@127.0.0.1:4222,nats://127.0.0.1:4223 subject iam.users.{{$$.Action$$}} (stream USERS, token"), "{text}");
        let v = redacted(&file);
        assert!(!v.to_string().contains(CANARY), "{v}");
        assert_eq!(v["sinks"][0]["token"], REDACTED);
        assert_eq!(v["sinks"][1]["nkey"], REDACTED);
        assert_eq!(v["sinks"][0]["stream"], "USERS");
    }
}
