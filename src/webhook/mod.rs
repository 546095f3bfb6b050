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
pub mod filter;
pub mod pace;
pub mod sign;

use crate::config::model::{ConfigFile, WebhookSpec};
use crate::config::url::{http_url_problem, without_placeholders};
use crate::config::ConfigError;
use crate::event::Action;
use crate::redact::redact_url;
use crate::template::{
    preset, source_problem, BodyKind, BodyTemplate, CloudEventBody, MessageBody, SuccessCheck,
    UrlTemplate,
};
pub use backoff::Backoff;
use filter::Filter;
pub use pace::{DigestPolicy, HealthPolicy, Limit, Rate};
use sign::Signer;

/// Headers userhook sets itself on every request; a config may not override them.
const RESERVED_HEADERS: [&str; 3] = ["webhook-id", "webhook-timestamp", "webhook-signature"];

/// Methods a webhook may use.
pub const WEBHOOK_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

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
    /// `when:` conditions an event must meet; empty lets every subscribed event through.
    pub filter: Filter,
    /// The request method.
    pub method: Method,
    /// Where to send, with `{{$$.X$$}}` values percent-encoded at render.
    pub url: UrlTemplate,
    /// The message body, rendered per delivery.
    pub body: MessageBody,
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
    /// Messages per window at most; `None`: as fast as the concurrency allows.
    pub rate: Option<Rate>,
    /// Merging pending events into digest messages; `None`: one message per event.
    pub digest: Option<DigestPolicy>,
    /// When the endpoint is paused and probed.
    pub health: HealthPolicy,
    /// The preset's name, when one is set (alerts to this webhook take its robot's shape).
    pub preset: Option<&'static str>,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("method", &self.method)
            .field("signed", &self.signer.is_some())
            .field("success", &self.success)
            .field("rate", &self.rate.as_ref().map(|r| r.text.as_str()))
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// Whether events with `action` go to this webhook (enabled or not).
    pub fn subscribes(&self, action: &Action) -> bool {
        self.actions.as_ref().is_none_or(|set| set.contains(action))
    }

    /// Whether the filter or the body reads the caller's token claims, so the extractor
    /// should check that token's signature (`Actor.Verified`).
    pub fn reads_actor_claims(&self) -> bool {
        self.filter.reads_actor_claims()
            || self
                .body
                .variables()
                .any(|v| filter::ACTOR_CLAIM_VARIABLES.contains(&v))
    }
}

/// Every webhook of one config snapshot, by position and by name.
#[derive(Debug, Default)]
pub struct Webhooks {
    list: Vec<Arc<Webhook>>,
    by_name: HashMap<String, usize>,
    warnings: Vec<ConfigError>,
    reads_actor_claims: bool,
}

impl Webhooks {
    /// Compiles every webhook of `file`, collecting every problem with its key path; the
    /// custom variables are the operator routes' fields and details.
    pub fn compile(file: &ConfigFile) -> Result<Webhooks, Vec<ConfigError>> {
        let custom: BTreeSet<String> = file
            .custom_fields()
            .into_iter()
            .map(str::to_owned)
            .collect();
        Self::compile_with(file, &custom)
    }

    /// [`Webhooks::compile`] with the custom variables given: the snapshot passes every
    /// field and detail its rules define, the built-in profiles' included.
    pub fn compile_with(
        file: &ConfigFile,
        custom: &BTreeSet<String>,
    ) -> Result<Webhooks, Vec<ConfigError>> {
        let known = |name: &str| custom.contains(name);
        let mut errors = Vec::new();
        let mut out = Webhooks::default();
        let mut names = BTreeSet::new();
        let default_source = default_source(&file.upstream);
        for (i, spec) in file.webhooks.iter().enumerate() {
            let at = format!("webhooks[{i}]");
            if !spec.name.trim().is_empty() && !names.insert(spec.name.as_str()) {
                errors.push(ConfigError::new(
                    format!("{at}.name"),
                    format!(
                        "webhook name `{}` is used twice; names must be unique",
                        spec.name
                    ),
                ));
            }
            match compile_one(spec, &at, &known, &default_source, &mut out.warnings) {
                Ok(w) => {
                    out.reads_actor_claims |= w.enabled && w.reads_actor_claims();
                    out.by_name.insert(w.name.clone(), out.list.len());
                    out.list.push(Arc::new(w));
                }
                Err(e) => errors.extend(e),
            }
        }
        for (i, spec) in file.webhooks.iter().enumerate() {
            let Some(alert) = spec.health.alert_webhook.as_deref() else {
                continue;
            };
            let problem = if alert == spec.name {
                Some("names this webhook itself; an alert about a failing endpoint must go elsewhere")
            } else if !names.contains(alert) {
                Some("is not a webhook in this config")
            } else {
                None
            };
            if let Some(p) = problem {
                errors.push(ConfigError::new(
                    format!("webhooks[{i}].health.alert_webhook"),
                    format!("`{alert}` {p}"),
                ));
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// What `check` points out about webhooks that compiled (a `when:` that always holds).
    pub fn warnings(&self) -> &[ConfigError] {
        &self.warnings
    }

    /// Whether some enabled webhook reads the caller's token claims.
    pub fn reads_actor_claims(&self) -> bool {
        self.reads_actor_claims
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

/// The CloudEvents `source` when a webhook names none: the IAM's URL, without credentials,
/// query or fragment (`http://iam.internal:8080`).
fn default_source(upstream: &str) -> String {
    match url::Url::parse(upstream) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.as_str().trim_end_matches('/').to_owned()
        }
        Err(_) => "urn:userhook".to_owned(),
    }
}

fn compile_one(
    spec: &WebhookSpec,
    at: &str,
    known: &dyn Fn(&str) -> bool,
    default_source: &str,
    warnings: &mut Vec<ConfigError>,
) -> Result<Webhook, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut err = |key: &str, message: String| {
        errors.push(ConfigError::new(format!("{at}.{key}"), message));
    };

    if spec.name.trim().is_empty() {
        err(
            "name",
            "is empty; expected a unique name such as ops-wecom".into(),
        );
    }
    let actions = crate::config::subscription::actions(&spec.object, &spec.actions, &mut err);
    let filter = match Filter::compile(&spec.when, actions.as_ref(), at, known) {
        Ok((filter, found)) => {
            warnings.extend(found);
            Some(filter)
        }
        Err(found) => {
            for e in found {
                let key = e
                    .path
                    .strip_prefix(&format!("{at}."))
                    .unwrap_or(&e.path)
                    .to_owned();
                err(&key, e.message);
            }
            None
        }
    };
    let upper = spec.method.to_ascii_uppercase();
    let method = match Method::from_bytes(upper.as_bytes()) {
        Ok(m) if WEBHOOK_METHODS.contains(&upper.as_str()) => Some(m),
        _ => {
            err(
                "method",
                format!(
                    "`{}` is not allowed; expected one of {}",
                    spec.method,
                    WEBHOOK_METHODS.join(", ")
                ),
            );
            None
        }
    };
    let url = match http_url_problem(&without_placeholders(&spec.url), true) {
        Some(p) => {
            err(
                "url",
                format!(
                    "`{}` {p}; expected an http:// or https:// URL",
                    redact_url(&spec.url)
                ),
            );
            None
        }
        None => UrlTemplate::compile(&spec.url, known)
            .map_err(|e| err("url", e.to_string()))
            .ok(),
    };
    if let Some(u) = &url {
        // A sample rendering (every variable standing for a plain value) must be a URL
        // reqwest accepts, or every attempt would fail.
        let sample = u.render(&SampleVars).unwrap_or_default();
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
                let known: Vec<&str> = crate::template::PRESETS.iter().map(|p| p.name).collect();
                err(
                    "preset",
                    format!(
                        "unknown preset `{name}`; expected one of {}",
                        known.join(", ")
                    ),
                );
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
    let cloudevents = preset.is_some_and(|p| p.cloudevents);
    if let (Some(_), false) = (&spec.source, cloudevents) {
        err(
            "source",
            "is only used by `preset: cloudevents`; remove it or set the preset".into(),
        );
    }
    let body = if cloudevents {
        if spec.body.is_some() {
            err(
                "body",
                "is not used by `preset: cloudevents` (its `data` is the event itself); remove \
                 `body`, or drop the preset to send a template"
                    .into(),
            );
        }
        let source = spec.source.as_deref().unwrap_or(default_source);
        if let Some(p) = source_problem(source) {
            err("source", format!("`{source}` {p}"));
        }
        Some(MessageBody::CloudEvent(CloudEventBody::new(source)))
    } else {
        BodyTemplate::compile(body_text, kind, known)
            .map_err(|e| {
                let hint = if kind == BodyKind::Json && spec.content_type.is_none() {
                    " (for a body that is not JSON, set content_type, e.g. text/plain)"
                } else {
                    ""
                };
                err(body_key, format!("{e}{hint}"));
            })
            .ok()
            .map(MessageBody::Template)
    };
    let content_type = HeaderValue::from_str(content_type)
        .ok()
        .filter(|_| !content_type.trim().is_empty());
    if content_type.is_none() {
        err(
            "content_type",
            "is not a valid Content-Type value; expected e.g. text/plain".into(),
        );
    }

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
            // The value may be a secret: name the header only.
            Err(_) => err(
                &format!("headers.{name}"),
                "value is not a valid header value (control characters or newlines)".into(),
            ),
        }
    }
    let signer = match (spec.secret.as_deref(), &spec.signing) {
        (None, None) => None,
        (Some(_), Some(_)) => {
            err(
                "signing",
                "is given beside `secret`; list every secret under signing.secrets and remove \
                 `secret`"
                    .into(),
            );
            None
        }
        (Some(s), None) if s.trim().is_empty() => {
            err(
                "secret",
                "is empty; expected a signing secret (whsec_... or whsk_...), or remove the key \
                 to send unsigned"
                    .into(),
            );
            None
        }
        (Some(s), None) => Signer::from_secret(s)
            .map_err(|e| err("secret", e.to_string()))
            .ok(),
        (None, Some(signing)) if signing.secrets.is_empty() => {
            err(
                "signing.secrets",
                "is empty; list at least one secret (whsec_... or whsk_...), or remove \
                 `signing` to send unsigned"
                    .into(),
            );
            None
        }
        (None, Some(signing)) if signing.secrets.len() > sign::MAX_SECRETS => {
            err(
                "signing.secrets",
                format!(
                    "lists {} secrets; at most {} sign at once (a rotation needs two)",
                    signing.secrets.len(),
                    sign::MAX_SECRETS
                ),
            );
            None
        }
        (None, Some(signing)) => Signer::from_secrets(&signing.secrets)
            .map_err(|(i, e)| err(&format!("signing.secrets[{i}]"), e.to_string()))
            .ok(),
    };
    if spec.timeout.0.is_zero() {
        err("timeout", "expected more than 0s, e.g. 10s".into());
    }
    let backoff = Backoff::new(spec.retry.initial.0, spec.retry.max.0);
    if spec.retry.attempts == 0 {
        err(
            "retry.attempts",
            "expected at least 1 (the first attempt counts)".into(),
        );
    }
    if spec.retry.initial > spec.retry.max {
        err(
            "retry.initial",
            format!(
                "{} is longer than retry.max {}; expected initial <= max",
                spec.retry.initial, spec.retry.max
            ),
        );
    }
    if spec.concurrency == Some(0) {
        err(
            "concurrency",
            "expected at least 1 (or remove it for the global limit)".into(),
        );
    }
    let rate = pace::compile_rate(spec, &mut err);
    let digest = pace::compile_digest(spec, kind, known, &mut err);
    let health = pace::compile_health(&spec.health, &mut err);
    if digest.is_some() && preset.is_some_and(|p| p.cloudevents) {
        err(
            "digest",
            "a CloudEvent carries one event; set digest.mode: off with preset: cloudevents".into(),
        );
    }
    if digest.is_some() && url.as_ref().is_some_and(|u| !u.is_static()) {
        err(
            "digest",
            "a digest of many events goes to one URL, but url uses per-event variables; use a URL without them or set digest.mode: off".into(),
        );
    }
    // Robot presets judge the robot's verdict; a custom body keeps its preset's check, and a
    // webhook without a preset is judged on the status alone.
    let success = preset.map_or(SuccessCheck::Http2xx, |p| p.success);

    match (method, url, body, content_type, filter) {
        (Some(method), Some(url), Some(body), Some(content_type), Some(filter))
            if errors.is_empty() =>
        {
            Ok(Webhook {
                name: spec.name.clone(),
                enabled: spec.enabled,
                actions,
                filter,
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
                rate,
                digest,
                health,
                preset: preset.map(|p| p.name),
            })
        }
        _ => Err(errors),
    }
}

/// Every variable as `x`: a sample rendering that no value rule refuses, so the URL check at
/// load judges the URL text alone.
struct SampleVars;

impl crate::template::VarSource for SampleVars {
    fn var(&self, _name: &str) -> Option<std::borrow::Cow<'_, str>> {
        Some(std::borrow::Cow::Borrowed("x"))
    }
}

#[cfg(test)]
mod tests;
