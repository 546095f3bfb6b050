//! Sinks compiled once per config load: message streams (NATS JetStream) that receive events
//! beside webhooks, with the same delivery promise.
//!
//! Everything that can be wrong with a sink's config is found here, at load time, and reported
//! with its key path (`sinks[0].subject: ...`), so a compiled [`Sink`] can always render a
//! subject. Whether the servers answer or the stream exists cannot be known here: the event
//! path finds out when it connects. This module never opens a socket, and never logs or
//! prints a secret (token, NKey seed, URL userinfo): `Debug` shows none of them.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::config::model::{ConfigFile, SinkSpec};
use crate::config::ConfigError;
use crate::event::{Action, UserEvent};
use crate::redact::redact_url;
use crate::template::{BodyKind, BodyTemplate, EventVars, VarSource};

/// The sink kinds a config may name.
pub const SINK_KINDS: [&str; 1] = ["nats"];

/// How a sink proves who it is to the servers. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub enum SinkAuth {
    /// No credentials (or the userinfo of the URL, which the client reads itself).
    None,
    /// A server token.
    Token(String),
    /// An NKey seed (`SU...`).
    NKey(String),
    /// A `.creds` file: read when connecting, never kept in the config or logs.
    CredsFile(String),
}

/// One sink, ready to render subjects and publish.
pub struct Sink {
    /// Unique among webhooks and sinks: the key deliveries, records and logs refer to it by.
    pub name: String,
    /// A disabled sink receives no new deliveries.
    pub enabled: bool,
    /// The actions published; `None` means all (`["*"]`).
    pub actions: Option<BTreeSet<Action>>,
    /// Server URLs as written (may hold userinfo: log [`Sink::loggable_servers`] instead).
    pub servers: Vec<String>,
    /// The subject template; values are made subject-safe (see [`Sink::subject`]).
    pub subject: BodyTemplate,
    /// The stream that must capture the subjects, checked on connect.
    pub stream: Option<String>,
    /// Create `stream` on connect when it is missing.
    pub create_stream: bool,
    /// Subjects a created stream captures: the subject's literal prefix then `>`.
    pub stream_subjects: Vec<String>,
    /// Credentials.
    pub auth: SinkAuth,
    /// Refuse connections without TLS.
    pub tls_required: bool,
    /// Extra CA certificates to trust.
    pub ca_file: Option<String>,
    /// Time limit for one publish, up to the stream's acknowledgement.
    pub timeout: Duration,
    /// Total attempts including the first.
    pub attempts: u32,
    /// First retry wait ceiling (the webhook backoff's `initial`).
    pub retry_initial: Duration,
    /// Largest retry wait ceiling (the webhook backoff's `max`).
    pub retry_max: Duration,
    /// Parallel publishes at most; `None`: the global limit.
    pub concurrency: Option<usize>,
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sink")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("servers", &self.loggable_servers())
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// Whether events with `action` go to this sink (enabled or not).
    pub fn subscribes(&self, action: &Action) -> bool {
        self.actions.as_ref().is_none_or(|set| set.contains(action))
    }

    /// The subject for `event`. Each value is made one safe token: `.`, whitespace and the
    /// wildcards `*` and `>` become `_`, and an empty value becomes `_`, so a user field can
    /// never add a token, a wildcard or an empty token to the subject.
    pub fn subject(&self, event: &UserEvent) -> String {
        let rendered = self.subject.render(&SubjectVars(EventVars(event)));
        String::from_utf8_lossy(&rendered).into_owned()
    }

    /// The server URLs as logs and `/config` may show them (no userinfo, no query).
    pub fn loggable_servers(&self) -> Vec<String> {
        self.servers.iter().map(|s| redact_url(s)).collect()
    }

    /// What the connection depends on: a reload that changes none of it keeps the client.
    pub fn connection_key(&self) -> (Vec<String>, SinkAuth, bool, Option<String>) {
        (
            self.servers.clone(),
            self.auth.clone(),
            self.tls_required,
            self.ca_file.clone(),
        )
    }
}

/// Event variables with subject-safe values.
struct SubjectVars<'a>(EventVars<'a>);

impl VarSource for SubjectVars<'_> {
    fn var(&self, name: &str) -> Option<Cow<'_, str>> {
        let v = self.0.var(name);
        let raw = v.as_deref().unwrap_or("");
        if raw.is_empty() {
            return Some(Cow::Borrowed("_"));
        }
        let unsafe_char = |c: char| c == '.' || c == '*' || c == '>' || c.is_whitespace();
        if raw.contains(unsafe_char) {
            Some(Cow::Owned(raw.replace(unsafe_char, "_")))
        } else {
            v
        }
    }
}

/// Every sink of one config snapshot.
#[derive(Debug, Default)]
pub struct Sinks {
    list: Vec<Arc<Sink>>,
}

impl Sinks {
    /// Compiles every sink of `file`, collecting every problem with its key path; a name
    /// already used by a webhook or another sink is one of them.
    pub fn compile(file: &ConfigFile) -> Result<Sinks, Vec<ConfigError>> {
        let custom: BTreeSet<String> = file
            .custom_fields()
            .into_iter()
            .map(str::to_owned)
            .collect();
        Self::compile_with(file, &custom)
    }

    /// [`Sinks::compile`] with the custom variables given (see [`Webhooks::compile_with`]:
    /// the profiles' fields and details included).
    ///
    /// [`Webhooks::compile_with`]: crate::webhook::Webhooks::compile_with
    pub fn compile_with(
        file: &ConfigFile,
        custom: &BTreeSet<String>,
    ) -> Result<Sinks, Vec<ConfigError>> {
        let known = |name: &str| custom.contains(name);
        let mut names: BTreeSet<&str> = file.webhooks.iter().map(|w| w.name.as_str()).collect();
        let mut errors = Vec::new();
        let mut out = Sinks::default();
        for (i, spec) in file.sinks.iter().enumerate() {
            let at = format!("sinks[{i}]");
            if !spec.name.trim().is_empty() && !names.insert(spec.name.as_str()) {
                errors.push(ConfigError::new(
                    format!("{at}.name"),
                    format!(
                        "`{}` is already the name of a webhook or sink; names must be unique",
                        spec.name
                    ),
                ));
            }
            match compile_one(spec, &at, &known) {
                Ok(s) => out.list.push(Arc::new(s)),
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// The sink called `name` in this snapshot.
    pub fn get(&self, name: &str) -> Option<&Arc<Sink>> {
        self.list.iter().find(|s| s.name == name)
    }

    /// All sinks, in config order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Sink>> {
        self.list.iter()
    }

    /// Names in config order, for "unknown target; known: ..." messages.
    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(|s| s.name.as_str()).collect()
    }

    /// Number of sinks.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when the config has no sinks.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Whether `name` is a valid JetStream stream name.
fn stream_name_ok(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
}

/// The subjects a created stream captures: the tokens before the first variable, then `>`
/// (`iam.users.{{$$.Action$$}}` → `iam.users.>`); a subject without variables is itself.
fn stream_subjects(subject: &str) -> Vec<String> {
    let Some(first) = subject.find("{{$$.") else {
        return vec![subject.to_string()];
    };
    // The whole tokens before the token holding the first variable.
    match subject[..first].rfind('.') {
        Some(end) => vec![format!("{}.>", &subject[..end])],
        None => vec![">".to_string()],
    }
}

fn compile_one(
    spec: &SinkSpec,
    at: &str,
    known: &dyn Fn(&str) -> bool,
) -> Result<Sink, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut err = |key: &str, message: String| {
        errors.push(ConfigError::new(format!("{at}.{key}"), message));
    };
    if spec.name.trim().is_empty() {
        err(
            "name",
            "is empty; expected a unique name such as fleet".into(),
        );
    }
    if !SINK_KINDS.contains(&spec.kind.as_str()) {
        err(
            "kind",
            format!(
                "`{}` is not supported; expected one of {}",
                spec.kind,
                SINK_KINDS.join(", ")
            ),
        );
    }
    let actions = crate::config::subscription::actions(&spec.object, &spec.actions, &mut err);
    if spec.url.0.is_empty() {
        err("url", "is empty; expected nats://host:4222".into());
    }
    for (j, url) in spec.url.0.iter().enumerate() {
        let ok = ["nats://", "tls://"]
            .iter()
            .any(|s| url.starts_with(s) && url.len() > s.len());
        if !ok {
            err(
                &format!("url[{j}]"),
                format!(
                    "`{}` is not a NATS URL; expected nats://host:4222 or tls://host:4222",
                    redact_url(url)
                ),
            );
        }
    }
    let subject = match BodyTemplate::compile(&spec.subject, BodyKind::Text, known) {
        Ok(t) => Some(t),
        Err(e) => {
            err("subject", e.to_string());
            None
        }
    };
    let literal_bad = spec.subject.is_empty()
        || spec.subject.contains(char::is_whitespace)
        || spec.subject.split('.').any(str::is_empty)
        || spec.subject.split('.').any(|t| t == "*" || t == ">");
    if literal_bad {
        err(
            "subject",
            format!(
                "`{}` is not a publish subject; expected dot-separated tokens without spaces or wildcards, e.g. iam.users.{{{{$$.Action$$}}}}",
                spec.subject
            ),
        );
    }
    if let Some(stream) = &spec.stream {
        if !stream_name_ok(stream) {
            err(
                "stream",
                format!("`{stream}` is not a stream name; expected e.g. USERS (no spaces, dots or wildcards)"),
            );
        }
    } else if spec.create_stream {
        err(
            "create_stream",
            "needs `stream`: the name of the stream to create".into(),
        );
    }
    let mut auths = Vec::new();
    if let Some(t) = &spec.token {
        if t.trim().is_empty() {
            err("token", "is empty; remove it or set the token".into());
        }
        auths.push(SinkAuth::Token(t.clone()));
    }
    if let Some(seed) = &spec.nkey {
        // Name the problem only: the seed is a secret.
        if !seed.starts_with("SU") {
            err(
                "nkey",
                "is not a user NKey seed; expected a seed starting with SU".into(),
            );
        }
        auths.push(SinkAuth::NKey(seed.clone()));
    }
    if let Some(path) = &spec.creds_file {
        if !std::path::Path::new(path).is_file() {
            err(
                "creds_file",
                format!("`{path}` is not a readable file; expected a .creds file"),
            );
        }
        auths.push(SinkAuth::CredsFile(path.clone()));
    }
    if auths.len() > 1 {
        err(
            "token",
            "token, nkey and creds_file are alternatives; set one of them".into(),
        );
    }
    if let Some(ca) = &spec.tls.ca_file {
        if !std::path::Path::new(ca).is_file() {
            err(
                "tls.ca_file",
                format!("`{ca}` is not a readable file; expected PEM certificates"),
            );
        }
    }
    if spec.timeout.0.is_zero() {
        err("timeout", "expected more than 0s, e.g. 10s".into());
    }
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
    match subject {
        Some(subject) if errors.is_empty() => Ok(Sink {
            name: spec.name.clone(),
            enabled: spec.enabled,
            actions,
            servers: spec.url.0.clone(),
            subject,
            stream: spec.stream.clone(),
            create_stream: spec.create_stream,
            stream_subjects: stream_subjects(&spec.subject),
            auth: auths.pop().unwrap_or(SinkAuth::None),
            tls_required: spec.tls.required,
            ca_file: spec.tls.ca_file.clone(),
            timeout: spec.timeout.0,
            attempts: spec.retry.attempts.max(1),
            retry_initial: spec.retry.initial.0,
            retry_max: spec.retry.max.0,
            concurrency: spec.concurrency,
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{RequestInfo, UserFields};

    fn compile(sinks: &str) -> Result<Sinks, Vec<ConfigError>> {
        let text = format!("upstream: http://127.0.0.1:1\nwebhooks:\n  - {{name: hook, actions: ['*'], url: 'http://x/'}}\nsinks:\n{sinks}");
        let file = crate::config::parse_str(&text).unwrap_or_else(|e| panic!("{e}"));
        Sinks::compile(&file)
    }

    #[test]
    fn a_sink_compiles_and_renders_safe_subjects() {
        let sinks = compile("  - {name: fleet, kind: nats, url: 'nats://u:p@127.0.0.1:4222', subject: 'iam.users.{{$$.Action$$}}.{{$$.Email$$}}', actions: ['*'], stream: USERS, create_stream: true}\n").unwrap_or_else(|e| panic!("{e:?}"));
        let s = sinks.get("fleet").expect("fleet");
        let mut f = UserFields::new();
        f.insert("Email".into(), "a.b c*@x".into());
        let ev = UserEvent::new(1, Action::Created, f, RequestInfo::default(), false);
        assert_eq!(s.subject(&ev), "iam.users.created.a_b_c_@x");
        let empty = UserEvent::new(
            2,
            Action::Login,
            UserFields::new(),
            RequestInfo::default(),
            false,
        );
        assert_eq!(s.subject(&empty), "iam.users.login._");
        assert_eq!(s.stream_subjects, ["iam.users.>"]);
        assert!(!format!("{s:?}").contains("u:p"));
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let errs = compile("  - {name: hook, kind: kafka, url: 'http://x', subject: 'a..b', actions: [], create_stream: true, token: t, nkey: SUSECRETSEED, timeout: 0s}\n").expect_err("invalid");
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        let all = text.join("\n");
        for want in [
            "sinks[0].name",
            "sinks[0].kind",
            "sinks[0].actions",
            "sinks[0].url[0]",
            "sinks[0].subject",
            "sinks[0].create_stream",
            "sinks[0].token",
            "sinks[0].timeout",
        ] {
            assert!(all.contains(want), "{want} missing in {all}");
        }
        assert!(!all.contains("SUSECRETSEED"));
    }
}
