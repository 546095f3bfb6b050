//! A webhook compiled once per config load: templates parsed, headers checked, signer keyed.
//!
//! Everything that can be wrong with a webhook is found here, at load time, and reported with
//! its key path (`webhooks[1].body: unknown variable ...`), so a compiled [`Webhook`] can
//! always render and send. This module must never log or print a secret, a header value or a
//! URL's query: `Debug` shows none of them.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method};

pub mod backoff;
pub mod sign;

use crate::config::model::{ConfigFile, WebhookSpec};
use crate::config::ConfigError;
use crate::event::Action;
use crate::redact::redact_url;
use crate::template::{preset, BodyKind, BodyTemplate, SuccessCheck, UrlTemplate};
pub use backoff::Backoff;
use sign::Signer;

/// Headers userhook sets itself on every request; a config may not override them.
const RESERVED_HEADERS: [&str; 3] = ["webhook-id", "webhook-timestamp", "webhook-signature"];

/// The content type used when a webhook names none.
pub const DEFAULT_CONTENT_TYPE: &str = "application/json";

/// One webhook, ready to render and send.
pub struct Webhook {
    /// Unique name: the key deliveries, records and logs refer to it by.
    pub name: String,
    /// A disabled webhook receives no new deliveries.
    pub enabled: bool,
    /// The actions delivered; `None` means all (`["*"]`).
    pub actions: Option<BTreeSet<Action>>,
    pub method: Method,
    pub url: UrlTemplate,
    pub body: BodyTemplate,
    /// Sent as `content-type`.
    pub content_type: HeaderValue,
    /// The operator's extra headers (may override `content-type` and `user-agent`).
    pub headers: HeaderMap,
    /// Standard Webhooks signer, when a secret is set.
    pub signer: Option<Signer>,
    /// Time limit for one attempt, connect to last body byte.
    pub timeout: Duration,
    /// Total attempts including the first.
    pub attempts: u32,
    /// Wait between attempts.
    pub backoff: Backoff,
    /// Parallel attempts to this webhook at most; `None`: the global limit.
    pub concurrency: Option<usize>,
    /// How a reply is judged a success.
    pub success: SuccessCheck,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("method", &self.method)
            .field("signed", &self.signer.is_some())
            .field("success", &self.success)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// Whether events with `action` go to this webhook (enabled or not).
    pub fn subscribes(&self, action: Action) -> bool {
        self.actions
            .as_ref()
            .is_none_or(|set| set.contains(&action))
    }
}

/// Every webhook of one config snapshot, by position and by name.
#[derive(Debug, Default)]
pub struct Webhooks {
    list: Vec<Arc<Webhook>>,
    by_name: HashMap<String, usize>,
}

impl Webhooks {
    /// Compiles every webhook of `file`, collecting every problem with its key path.
    pub fn compile(file: &ConfigFile) -> Result<Webhooks, Vec<ConfigError>> {
        let custom: BTreeSet<&str> = file
            .routes
            .iter()
            .flat_map(|r| r.fields.keys().map(String::as_str))
            .collect();
        let known = |name: &str| custom.contains(name);
        let mut errors = Vec::new();
        let mut out = Webhooks::default();
        for (i, spec) in file.webhooks.iter().enumerate() {
            match compile_one(spec, &format!("webhooks[{i}]"), &known) {
                Ok(w) => {
                    out.by_name.insert(w.name.clone(), out.list.len());
                    out.list.push(Arc::new(w));
                }
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// The webhook called `name` in this snapshot.
    pub fn get(&self, name: &str) -> Option<&Arc<Webhook>> {
        self.by_name.get(name).and_then(|&i| self.list.get(i))
    }

    /// All webhooks, in config order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Webhook>> {
        self.list.iter()
    }

    /// Names in config order, for messages such as "unknown webhook; known: ...".
    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(|w| w.name.as_str()).collect()
    }

    /// Number of webhooks.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when the config has no webhooks.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Whether a content type means a JSON document (`application/json`, `application/x+json`).
fn is_json_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

fn compile_one(
    spec: &WebhookSpec,
    at: &str,
    known: &dyn Fn(&str) -> bool,
) -> Result<Webhook, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut err = |key: &str, message: String| {
        errors.push(ConfigError::new(format!("{at}.{key}"), message));
    };

    let actions = if spec.actions.iter().any(|a| a == "*") {
        None
    } else {
        let mut set = BTreeSet::new();
        for (j, a) in spec.actions.iter().enumerate() {
            match a.parse::<Action>() {
                Ok(a) => {
                    set.insert(a);
                }
                Err(e) => err(&format!("actions[{j}]"), format!("{e}, or *")),
            }
        }
        Some(set)
    };
    let method = match Method::from_bytes(spec.method.to_ascii_uppercase().as_bytes()) {
        Ok(m) => Some(m),
        Err(_) => {
            err("method", format!("`{}` is not an HTTP method", spec.method));
            None
        }
    };
    let url = UrlTemplate::compile(&spec.url, known)
        .map_err(|e| err("url", e.to_string()))
        .ok();
    if let Some(u) = &url {
        // A sample rendering must be a URL reqwest accepts, or every attempt would fail.
        let sample = u.render(&std::collections::BTreeMap::<String, String>::new());
        if let Err(e) = reqwest::Url::parse(&sample) {
            err(
                "url",
                format!("`{}` is not a valid URL: {e}", redact_url(&spec.url)),
            );
        }
    }

    let preset = match spec.preset.as_deref() {
        None => None,
        Some(name) => match preset(name) {
            Some(p) => Some(p),
            None => {
                err("preset", format!("unknown preset `{name}`"));
                None
            }
        },
    };
    let content_type = spec
        .content_type
        .as_deref()
        .or(preset.map(|p| p.content_type))
        .unwrap_or(DEFAULT_CONTENT_TYPE);
    let kind = if is_json_type(content_type) {
        BodyKind::Json
    } else {
        BodyKind::Text
    };
    let (body_text, body_key) = match (&spec.body, preset) {
        (Some(b), _) => (b.as_str(), "body"),
        (None, Some(p)) => (p.body, "preset"),
        (None, None) => (crate::template::DCE_DEFAULT_BODY, "body"),
    };
    let body = BodyTemplate::compile(body_text, kind, known)
        .map_err(|e| {
            let hint = if kind == BodyKind::Json && spec.content_type.is_none() {
                " (for a body that is not JSON, set content_type, e.g. text/plain)"
            } else {
                ""
            };
            err(body_key, format!("{e}{hint}"));
        })
        .ok();
    let content_type = HeaderValue::from_str(content_type)
        .map_err(|_| err("content_type", "is not a valid header value".into()))
        .ok();

    let mut headers = HeaderMap::new();
    for (name, value) in &spec.headers {
        let Ok(hn) = HeaderName::from_bytes(name.as_bytes()) else {
            err("headers", format!("`{name}` is not a valid header name"));
            continue;
        };
        if RESERVED_HEADERS.contains(&hn.as_str()) {
            err(
                &format!("headers.{name}"),
                "is set by userhook on every request (Standard Webhooks); remove it".into(),
            );
            continue;
        }
        match HeaderValue::from_str(value) {
            Ok(mut v) => {
                v.set_sensitive(crate::redact::is_sensitive_header(name));
                headers.append(hn, v);
            }
            Err(_) => err(
                &format!("headers.{name}"),
                "value is not a valid header value".into(),
            ),
        }
    }
    let signer = match spec.secret.as_deref() {
        None => None,
        Some(s) => Signer::from_secret(s).map_err(|e| err("secret", e)).ok(),
    };
    let backoff = Backoff::new(spec.retry.initial.0, spec.retry.max.0);
    if spec.retry.attempts == 0 {
        err("retry.attempts", "expected at least 1".into());
    }
    // Robot presets judge the robot's verdict; a custom body keeps its preset's check, and a
    // webhook without a preset is judged on the status alone.
    let success = preset.map_or(SuccessCheck::Http2xx, |p| p.success);

    match (method, url, body, content_type) {
        (Some(method), Some(url), Some(body), Some(content_type)) if errors.is_empty() => {
            Ok(Webhook {
                name: spec.name.clone(),
                enabled: spec.enabled,
                actions,
                method,
                url,
                body,
                content_type,
                headers,
                signer,
                timeout: spec.timeout.0,
                attempts: spec.retry.attempts.max(1),
                backoff,
                concurrency: spec.concurrency,
                success,
            })
        }
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
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
        assert!(w.subscribes(Action::Created));
        assert!(w.subscribes(Action::Deleted));
        assert!(!w.subscribes(Action::Login));
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
        assert!(Action::ALL.iter().all(|a| w.subscribes(*a)));
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
        let err = compile(
            "  - {name: a, actions: ['*'], url: 'http://x/h', body: 'hello {{$$.Name$$}}'}\n",
        )
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
}
