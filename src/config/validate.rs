//! Checks on the file-level settings of a parsed config: limits, timeouts, delivery, log.
//!
//! Every rule runs and every problem is returned, each with its key path and what is
//! expected, so an operator fixes a file in one pass. Whatever is compiled into something
//! (addresses, the upstream, routes, webhooks) is checked by the code that compiles it, once,
//! and the snapshot compiler gathers all of it; this module never compiles
//! anything. Messages never echo a URL's query, userinfo or a secret.

use super::error::ConfigError;
use super::model::ConfigFile;

/// Largest `capture_limit`: bigger copies would let one request hold too much memory.
pub const MAX_CAPTURE_LIMIT: u64 = 64 << 20;
/// `client.max_header_bytes` bounds: hyper's HTTP/1 read buffer is never smaller than 8 KiB,
/// and above 1 MiB a few thousand unfinished heads would hold gigabytes.
pub const MIN_HEADER_BYTES: u64 = 8 << 10;
/// See [`MIN_HEADER_BYTES`].
pub const MAX_HEADER_BYTES: u64 = 1 << 20;
/// Smallest `client.max_body_bytes`: every body the inline client reads whole must fit.
pub const MIN_BODY_BYTES: u64 = 64 << 10;
/// Smallest `delivery.max_spool_bytes`: below this the spool fills on the first burst.
pub const MIN_SPOOL_BYTES: u64 = 1 << 20;

/// Shortest `identity.secret`: a shorter key makes the credential hashes guessable.
pub const MIN_IDENTITY_SECRET: usize = 16;

/// The `identity:` section's own settings (its JWKS location is checked where it is used).
fn identity(id: &super::model::IdentitySpec) -> Vec<ConfigError> {
    let mut errs = Vec::new();
    if !matches!(
        id.client_tokens.as_str(),
        "verify" | "unverified" | "ignore"
    ) {
        errs.push(ConfigError::new(
            "identity.client_tokens",
            format!(
                "`{}` is not a mode; expected verify, unverified or ignore",
                id.client_tokens
            ),
        ));
    }
    if let Some(secret) = &id.secret {
        if secret.len() < MIN_IDENTITY_SECRET {
            // Never echo the value: say only how long it is.
            errs.push(ConfigError::new(
                "identity.secret",
                format!(
                    "is {} bytes; expected at least {MIN_IDENTITY_SECRET}",
                    secret.len()
                ),
            ));
        }
    }
    if id.max_users == Some(0) {
        errs.push(ConfigError::new(
            "identity.max_users",
            "expected at least 1",
        ));
    }
    if id.session_ttl.0.is_zero() {
        errs.push(ConfigError::new(
            "identity.session_ttl",
            "expected more than 0s",
        ));
    }
    if id.path.as_deref().is_some_and(|p| p.trim().is_empty()) {
        errs.push(ConfigError::new(
            "identity.path",
            "is empty; omit it for `identity.redb` in delivery.spool_dir",
        ));
    }
    if let Some(jwks) = &id.jwks {
        let ok =
            jwks.starts_with('/') || jwks.starts_with("http://") || jwks.starts_with("https://");
        if !ok {
            errs.push(ConfigError::new(
                "identity.jwks",
                "expected a path on the upstream starting with `/`, or an http(s):// URL",
            ));
        }
    }
    errs
}

/// Every problem in the file-level settings of `file`.
pub fn validate(file: &ConfigFile) -> Vec<ConfigError> {
    let mut errs = Vec::new();
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
    errs.extend(identity(&file.identity));
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
    let tls = &file.tls;
    if tls.cert_file.is_some() != tls.key_file.is_some() {
        errs.push(ConfigError::new(
            "tls",
            "expected both cert_file and key_file, or neither",
        ));
    }
    let c = &file.client;
    for (key, value) in [
        ("client.header_timeout", c.header_timeout),
        ("client.idle_timeout", c.idle_timeout),
        ("client.body_timeout", c.body_timeout),
    ] {
        if value.0.is_zero() {
            errs.push(ConfigError::new(key, "expected more than 0s"));
        }
    }
    if c.max_body_bytes.0 < MIN_BODY_BYTES {
        errs.push(ConfigError::new(
            "client.max_body_bytes",
            format!("is {}; expected at least 64KiB", c.max_body_bytes),
        ));
    }
    if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&c.max_header_bytes.0) {
        errs.push(ConfigError::new(
            "client.max_header_bytes",
            format!("is {}; expected between 8KiB and 1MiB", c.max_header_bytes),
        ));
    }
    if c.max_connections < 1 {
        errs.push(ConfigError::new(
            "client.max_connections",
            "expected at least 1",
        ));
    }
    if c.max_concurrent_streams < 1 {
        errs.push(ConfigError::new(
            "client.max_concurrent_streams",
            "expected at least 1",
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
    if d.retain_delivered.count > super::model::MAX_RETAINED {
        errs.push(ConfigError::new(
            "delivery.retain_delivered.count",
            format!(
                "{} is more than {}; expected 0 (keep none) to {}",
                d.retain_delivered.count,
                super::model::MAX_RETAINED,
                super::model::MAX_RETAINED
            ),
        ));
    }
    if d.retain_delivered.count > 0 && d.retain_delivered.max_age.0.is_zero() {
        errs.push(ConfigError::new(
            "delivery.retain_delivered.max_age",
            "expected more than 0s, e.g. 24h (or count: 0 to keep none)",
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

/// Pushes a problem unless `value` is one of `allowed`.
pub fn one_of(errs: &mut Vec<ConfigError>, path: &str, value: &str, allowed: &[&str]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "upstream: http://127.0.0.1:8081\n";

    /// The problems of `BASE` plus `extra`, as `path: message` strings.
    fn problems(extra: &str) -> Vec<String> {
        let text = format!("{BASE}{extra}");
        let file: ConfigFile = match serde_saphyr::from_str(&text) {
            Ok(f) => f,
            Err(e) => panic!("test YAML does not parse: {e}"),
        };
        validate(&file).iter().map(|e| e.to_string()).collect()
    }

    fn one(found: Vec<String>, path: &str, fragment: &str) {
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with(&format!("{path}: ")), "{found:?}");
        assert!(found[0].contains(fragment), "{found:?}");
    }

    #[test]
    fn minimal_is_valid() {
        assert_eq!(problems(""), Vec::<String>::new());
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
    fn identity() {
        one(
            problems("identity: {client_tokens: trust-me}\n"),
            "identity.client_tokens",
            "expected verify, unverified or ignore",
        );
        let short = problems("identity: {secret: abc}\n");
        one(
            short.clone(),
            "identity.secret",
            "is 3 bytes; expected at least 16",
        );
        assert!(
            !short[0].contains("abc"),
            "the secret is never echoed: {short:?}"
        );
        one(
            problems("identity: {max_users: 0}\n"),
            "identity.max_users",
            "at least 1",
        );
        one(
            problems("identity: {session_ttl: 0s}\n"),
            "identity.session_ttl",
            "more than 0s",
        );
        one(
            problems("identity: {path: ' '}\n"),
            "identity.path",
            "is empty",
        );
        one(
            problems("identity: {jwks: certs}\n"),
            "identity.jwks",
            "starting with `/`",
        );
        assert!(problems(
            "identity: {secret: 0123456789abcdef, client_tokens: unverified, max_sessions: 0, \
             jwks: 'https://idp/certs', session_ttl: 1h, max_users: 5}\n"
        )
        .is_empty());
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
