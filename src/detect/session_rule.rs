//! A rule's `session:` block, compiled: which credentials a call issues to its user and which
//! the caller presents, and how long an issued one lives.
//!
//! Reading them never fails and never panics; the values read are credentials, so they are
//! handed only to the session index (which keeps a keyed hash of each) and never logged. A
//! built-in profile may name credentials here (that is what the block is for) but never in
//! `fields:` or `details:`.

use std::time::{Duration, SystemTime};

use crate::config::model::SessionSpec;
use crate::config::ConfigError;
use crate::extract::source::FieldSource;
use crate::extract::view::View;

/// A compiled `session:` block.
#[derive(Debug, Clone)]
pub struct SessionRule {
    /// Credentials the IAM hands to the event's user.
    pub issues: Vec<FieldSource>,
    /// The caller's credential(s).
    pub presents: Vec<FieldSource>,
    /// The call ends the presented credential.
    pub ends: bool,
    /// Lifetime of an issued credential that says none.
    pub ttl: Option<Duration>,
    /// Where an issued credential's expiry is (`expires_in` seconds or an RFC 3339 time).
    pub expires: Option<FieldSource>,
}

/// One credential the IAM issued in this exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The raw value (hash it at once; never keep or show it).
    pub value: String,
    /// How long it lives, when the exchange or the rule says so (else the default TTL).
    pub lifetime: Option<Duration>,
}

impl SessionRule {
    /// Compiles the block at `key`; problems go to `errors`. `template_ok`: the path parsed, so
    /// source errors are worth reporting (else they are reported once, at `.path`).
    pub fn compile(
        spec: &SessionSpec,
        key: &str,
        params: &[String],
        template_ok: bool,
        errors: &mut Vec<ConfigError>,
    ) -> Option<SessionRule> {
        let before = errors.len();
        let mut sources = |list: &[String], at: &str| -> Vec<FieldSource> {
            let mut out = Vec::new();
            for text in list {
                match FieldSource::parse(text, params) {
                    Ok(s) => out.push(s),
                    Err(e) if template_ok => {
                        errors.push(ConfigError::new(format!("{key}.{at}"), e.to_string()))
                    }
                    Err(_) => {}
                }
            }
            out
        };
        let issues = sources(&spec.issues.0, "issues");
        let presents = sources(&spec.presents.0, "presents");
        let expires = spec
            .expires
            .as_deref()
            .and_then(|e| sources(&[e.to_owned()], "expires").pop());
        if spec.issues.0.is_empty() && spec.presents.0.is_empty() {
            errors.push(ConfigError::new(
                key,
                "names no credential; list sources under `issues:` or `presents:`",
            ));
        }
        if spec.ends && spec.presents.0.is_empty() {
            errors.push(ConfigError::new(
                format!("{key}.ends"),
                "ends the presented credential, but `presents:` lists none",
            ));
        }
        if spec.issues.0.is_empty() {
            for (set, name) in [
                (spec.ttl.is_some(), "ttl"),
                (spec.expires.is_some(), "expires"),
            ] {
                if set {
                    errors.push(ConfigError::new(
                        format!("{key}.{name}"),
                        "is the lifetime of an issued credential, but `issues:` lists none",
                    ));
                }
            }
        }
        if spec.ttl.is_some_and(|t| t.0.is_zero()) {
            errors.push(ConfigError::new(
                format!("{key}.ttl"),
                "expected more than 0s",
            ));
        }
        (errors.len() == before).then(|| SessionRule {
            issues,
            presents,
            ends: spec.ends,
            ttl: spec.ttl.map(|t| t.0),
            expires,
        })
    }

    /// The credentials issued in this exchange with their lifetimes: a cookie's own
    /// Max-Age/Expires wins, then `expires`, then `ttl`.
    pub fn issued(&self, view: &View<'_>, now: SystemTime) -> Vec<Issued> {
        let expires = self
            .expires
            .as_ref()
            .and_then(|s| s.eval(view))
            .and_then(|v| lifetime_of(&v, now));
        self.issues
            .iter()
            .filter_map(|s| {
                let value = s.eval(view)?;
                let lifetime = s.credential_lifetime(view).or(expires).or(self.ttl);
                Some(Issued { value, lifetime })
            })
            .collect()
    }

    /// The credentials the caller presented, in rule order.
    pub fn presented(&self, view: &View<'_>) -> Vec<String> {
        self.presents.iter().filter_map(|s| s.eval(view)).collect()
    }
}

/// `3600` (seconds from now, as `expires_in`) or `2026-12-09T10:00:00Z` (a time); `None`
/// for anything else or a time already past.
pub fn lifetime_of(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs.min(1e10)));
    }
    let at = humantime::parse_rfc3339_weak(value.trim_end_matches('Z'))
        .ok()
        .filter(|_| value.ends_with('Z') || !value.contains('+'))?;
    at.duration_since(now).ok().filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::OneOrMany;
    use crate::config::units;

    fn spec(issues: &[&str], presents: &[&str], ends: bool) -> SessionSpec {
        SessionSpec {
            issues: OneOrMany(issues.iter().map(|s| (*s).to_owned()).collect()),
            presents: OneOrMany(presents.iter().map(|s| (*s).to_owned()).collect()),
            ends,
            ttl: None,
            expires: None,
        }
    }

    fn compile(spec: &SessionSpec) -> Result<SessionRule, Vec<String>> {
        let mut errors = Vec::new();
        SessionRule::compile(
            spec,
            "routes[0].session",
            &["id".to_owned()],
            true,
            &mut errors,
        )
        .ok_or_else(|| errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn compiles_and_checks_the_block() {
        let ok = compile(&spec(
            &["response.cookie.sid", "response.header.x-subject-token"],
            &["request.cookie.sid"],
            true,
        ))
        .expect("valid");
        assert_eq!((ok.issues.len(), ok.presents.len(), ok.ends), (2, 1, true));
        for (bad, want) in [
            (spec(&[], &[], false), "names no credential"),
            (
                spec(&["response.body.token"], &[], true),
                "`presents:` lists none",
            ),
            (spec(&["nowhere.x"], &[], false), "unknown source"),
            (
                SessionSpec {
                    ttl: Some(units::Duration::from_secs(60)),
                    ..spec(&[], &["request.bearer"], false)
                },
                "`issues:` lists none",
            ),
            (
                SessionSpec {
                    ttl: Some(units::Duration::from_secs(0)),
                    ..spec(&["response.body.token"], &[], false)
                },
                "more than 0s",
            ),
        ] {
            let errors = compile(&bad).expect_err(want);
            assert!(errors.iter().any(|e| e.contains(want)), "{errors:?}");
        }
    }

    #[test]
    fn lifetimes_from_numbers_and_times() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
        assert_eq!(lifetime_of("300", now), Some(Duration::from_secs(300)));
        assert_eq!(lifetime_of("1.5", now), Some(Duration::from_millis(1500)));
        assert_eq!(lifetime_of("0", now), None);
        assert_eq!(lifetime_of("-5", now), None);
        let at = humantime::format_rfc3339(now + Duration::from_secs(3600)).to_string();
        assert_eq!(lifetime_of(&at, now), Some(Duration::from_secs(3600)));
        let past = humantime::format_rfc3339(now - Duration::from_secs(1)).to_string();
        assert_eq!(lifetime_of(&past, now), None);
        assert_eq!(lifetime_of("soon", now), None);
        assert_eq!(lifetime_of("2026-12-09T10:00:00+02:00", now), None);
    }
}
