//! "Should we try again?" and "how long do we wait?", kept apart so each is tested alone.
//!
//! [`decide`] turns one attempt's result into a [`RetryDecision`] with a reason; [`Backoff`]
//! computes the wait before the next attempt (exponential, full jitter, honouring
//! `Retry-After`). Neither does I/O or reads a clock it was not given.
//!
//! The table (README "Delivery", docs/architecture.md "The delivery promise"):
//! - 2xx and the webhook's success check passes: delivered.
//! - 408, 429, 5xx, timeouts, connection and other transport errors: retry.
//! - 2xx that a chat robot rejects: final, unless the robot says it is rate-limited (WeCom and
//!   DingTalk errcode 45009 / 130101, Feishu code 11232): a retry later will succeed, while a
//!   bad key or a malformed message never will.
//! - every other status (3xx, since redirects are not followed; other 4xx): final.

use std::time::{Duration, SystemTime};

use crate::template::SuccessCheck;
pub use crate::webhook::backoff::{Backoff, RETRY_AFTER_CEILING};

/// Robot error codes that mean "too many messages, try later".
const ROBOT_RATE_LIMITS: &[(&str, i64)] = &[
    ("errcode", 45009),  // WeCom: api freq out of limit
    ("errcode", 130101), // DingTalk: send too fast
    ("code", 11232),     // Feishu: frequency limited
];

/// What came back from one attempt, reduced to what the decision needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// The target answered.
    Reply {
        /// The HTTP status.
        status: u16,
        /// Parsed `Retry-After`, if the reply had a valid one.
        retry_after: Option<Duration>,
        /// The reply body (possibly cut at a size limit).
        body: Vec<u8>,
    },
    /// No complete reply within the webhook's timeout.
    TimedOut(Duration),
    /// Could not connect, or the connection broke: the target may be back soon.
    Transport(String),
    /// The request could not even be built; retrying cannot help.
    Invalid(String),
}

/// The verdict on one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryDecision {
    /// The target took it.
    Delivered,
    /// Worth another attempt; `retry_after` is the target's own wish, if it said one.
    Retry {
        /// Why this attempt failed, for the records and the log.
        reason: String,
        /// The target's `Retry-After`, honoured by the backoff.
        retry_after: Option<Duration>,
    },
    /// Another attempt would fail the same way: dead-letter it now.
    Final {
        /// Why, for the dead letter and the log.
        reason: String,
    },
}

/// Judges one attempt with the webhook's success check.
pub fn decide(check: SuccessCheck, result: &AttemptResult) -> RetryDecision {
    match result {
        AttemptResult::Reply {
            status,
            retry_after,
            body,
        } => match check.judge(*status, body) {
            Ok(()) => RetryDecision::Delivered,
            Err(reason) => {
                let retryable = *status == 408
                    || *status == 429
                    || (500..600).contains(status)
                    || ((200..300).contains(status) && robot_rate_limited(body));
                if retryable {
                    RetryDecision::Retry {
                        reason,
                        retry_after: *retry_after,
                    }
                } else {
                    RetryDecision::Final { reason }
                }
            }
        },
        AttemptResult::TimedOut(limit) => RetryDecision::Retry {
            reason: format!(
                "no reply within the timeout of {}",
                humantime::format_duration(*limit)
            ),
            retry_after: None,
        },
        AttemptResult::Transport(e) => RetryDecision::Retry {
            reason: e.clone(),
            retry_after: None,
        },
        AttemptResult::Invalid(e) => RetryDecision::Final { reason: e.clone() },
    }
}

/// Whether a robot's JSON reply carries one of the known rate-limit codes.
pub fn robot_rate_limited(body: &[u8]) -> bool {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) else {
        return false;
    };
    ROBOT_RATE_LIMITS
        .iter()
        .any(|(key, code)| map.get(*key).and_then(|v| v.as_i64()) == Some(*code))
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date (relative to `now`; a date in
/// the past means "now"). Anything else is ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> AttemptResult {
        AttemptResult::Reply {
            status,
            retry_after: None,
            body: body.as_bytes().to_vec(),
        }
    }

    fn kind(d: &RetryDecision) -> &'static str {
        match d {
            RetryDecision::Delivered => "delivered",
            RetryDecision::Retry { .. } => "retry",
            RetryDecision::Final { .. } => "final",
        }
    }

    #[test]
    fn decision_table() {
        use SuccessCheck::*;
        let table: &[(SuccessCheck, AttemptResult, &str)] = &[
            (Http2xx, reply(200, ""), "delivered"),
            (Http2xx, reply(204, ""), "delivered"),
            (Http2xx, reply(408, ""), "retry"),
            (Http2xx, reply(429, ""), "retry"),
            (Http2xx, reply(500, ""), "retry"),
            (Http2xx, reply(502, ""), "retry"),
            (Http2xx, reply(503, ""), "retry"),
            (Http2xx, reply(599, ""), "retry"),
            (Http2xx, reply(301, ""), "final"),
            (Http2xx, reply(400, ""), "final"),
            (Http2xx, reply(401, ""), "final"),
            (Http2xx, reply(404, ""), "final"),
            (Http2xx, reply(410, ""), "final"),
            (Http2xx, reply(422, ""), "final"),
            (ErrCodeZero, reply(200, r#"{"errcode":0}"#), "delivered"),
            (
                ErrCodeZero,
                reply(200, r#"{"errcode":93000,"errmsg":"bad"}"#),
                "final",
            ),
            (
                ErrCodeZero,
                reply(200, r#"{"errcode":45009,"errmsg":"freq"}"#),
                "retry",
            ),
            (ErrCodeZero, reply(200, r#"{"errcode":130101}"#), "retry"),
            (ErrCodeZero, reply(200, "<html>"), "final"),
            (ErrCodeZero, reply(503, r#"{"errcode":0}"#), "retry"),
            (
                FeishuCodeZero,
                reply(200, r#"{"code":11232,"msg":"limited"}"#),
                "retry",
            ),
            (FeishuCodeZero, reply(200, r#"{"code":19021}"#), "final"),
            (SlackOk, reply(200, "ok"), "delivered"),
            (SlackOk, reply(200, r#"{"ok":false,"error":"x"}"#), "final"),
            (
                Http2xx,
                AttemptResult::TimedOut(Duration::from_secs(10)),
                "retry",
            ),
            (
                Http2xx,
                AttemptResult::Transport("connection refused".into()),
                "retry",
            ),
            (
                Http2xx,
                AttemptResult::Invalid("bad header".into()),
                "final",
            ),
        ];
        for (check, result, want) in table {
            assert_eq!(kind(&decide(*check, result)), *want, "{check:?} {result:?}");
        }
    }

    #[test]
    fn reasons_are_specific() {
        assert_eq!(
            decide(
                SuccessCheck::ErrCodeZero,
                &reply(200, r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#)
            ),
            RetryDecision::Final {
                reason: "errcode 93000: invalid webhook url".into()
            }
        );
        let with_wish = AttemptResult::Reply {
            status: 429,
            retry_after: Some(Duration::from_secs(3)),
            body: b"slow down".to_vec(),
        };
        assert_eq!(
            decide(SuccessCheck::Http2xx, &with_wish),
            RetryDecision::Retry {
                reason: "HTTP 429: slow down".into(),
                retry_after: Some(Duration::from_secs(3))
            }
        );
        assert_eq!(
            decide(
                SuccessCheck::Http2xx,
                &AttemptResult::TimedOut(Duration::from_millis(1500))
            ),
            RetryDecision::Retry {
                reason: "no reply within the timeout of 1s 500ms".into(),
                retry_after: None
            }
        );
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").expect("date");
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in ["", "-1", "1.5", "soon", "Wed, 99 Oct 2015"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }
}
