//! "Should we try again?" and "how long do we wait?", kept apart so each is tested alone.
//!
//! [`decide`] turns one attempt's result into a [`RetryDecision`] with a reason; [`Backoff`]
//! computes the wait before the next attempt (exponential, full jitter, honouring
//! `Retry-After`). Neither does I/O or reads a clock it was not given.
//!
//! The table (DESIGN.md section 5):
//! - 2xx and the webhook's success check passes: delivered.
//! - 408, 429, 5xx, timeouts, connection and other transport errors: retry.
//! - 2xx that a chat robot rejects: final, unless the robot says it is rate-limited (WeCom and
//!   DingTalk errcode 45009 / 130101, Feishu code 11232): a retry later will succeed, while a
//!   bad key or a malformed message never will.
//! - every other status (3xx, since redirects are not followed; other 4xx): final.

use std::time::{Duration, SystemTime};

use crate::template::SuccessCheck;

/// Longest `Retry-After` honoured: a target asking for more (or a broken header) must not
/// park a user's deliveries for days.
pub const RETRY_AFTER_CEILING: Duration = Duration::from_secs(3600);

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
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Another attempt would fail the same way: dead-letter it now.
    Final { reason: String },
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
fn robot_rate_limited(body: &[u8]) -> bool {
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

/// Exponential backoff with full jitter: after the n-th failed attempt, wait a uniformly
/// random time in `[0, min(max, initial * 2^(n-1))]`. Full jitter spreads retries of many
/// deliveries that failed together, so a recovering target is not hit by a thundering herd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
}

impl Backoff {
    /// A schedule from `initial` doubling up to `max` (an `initial` above `max` is lowered).
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial: initial.min(max),
            max,
        }
    }

    /// The upper bound of the wait after `failures` failed attempts (1 for the first).
    pub fn ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(63);
        let factor = 1u64 << doublings;
        let nanos = self.initial.as_nanos().saturating_mul(u128::from(factor));
        let max = self.max.as_nanos();
        Duration::from_nanos(u64::try_from(nanos.min(max)).unwrap_or(u64::MAX))
    }

    /// The wait before the next attempt, jittered with a fresh random number.
    pub fn delay(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        self.delay_with(failures, retry_after, fastrand::f64())
    }

    /// [`Backoff::delay`] with the random number given (`unit` in `[0, 1)`), for tests.
    /// A `Retry-After` is a floor: never retry sooner than the target asked, up to
    /// [`RETRY_AFTER_CEILING`].
    pub fn delay_with(&self, failures: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        let jittered = self.ceiling(failures).mul_f64(unit.clamp(0.0, 1.0));
        match retry_after {
            Some(wish) => jittered.max(wish.min(RETRY_AFTER_CEILING)),
            None => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

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

    #[test]
    fn ceiling_doubles_up_to_max() {
        let b = Backoff::new(10 * MS, 100 * MS);
        let ceilings: Vec<_> = (1..=6).map(|n| b.ceiling(n)).collect();
        assert_eq!(
            ceilings,
            [10 * MS, 20 * MS, 40 * MS, 80 * MS, 100 * MS, 100 * MS]
        );
        assert_eq!(b.ceiling(0), 10 * MS);
        assert_eq!(b.ceiling(u32::MAX), 100 * MS, "no overflow");
        let huge = Backoff::new(Duration::from_secs(1), Duration::MAX);
        assert_eq!(huge.ceiling(200), Duration::from_nanos(u64::MAX));
        let inverted = Backoff::new(Duration::from_secs(5), Duration::from_secs(1));
        assert_eq!(inverted.ceiling(1), Duration::from_secs(1));
    }

    #[test]
    fn full_jitter_stays_within_bounds() {
        let b = Backoff::new(10 * MS, 50 * MS);
        assert_eq!(b.delay_with(3, None, 0.0), Duration::ZERO);
        assert_eq!(b.delay_with(3, None, 0.5), 20 * MS);
        assert_eq!(b.delay_with(3, None, 2.0), 40 * MS, "unit is clamped");
        for n in 1..20 {
            for _ in 0..50 {
                let d = b.delay(n, None);
                assert!(d <= b.ceiling(n), "{d:?} > {:?}", b.ceiling(n));
            }
        }
    }

    #[test]
    fn retry_after_is_a_floor_with_a_ceiling() {
        let b = Backoff::new(10 * MS, 50 * MS);
        let second = Duration::from_secs(1);
        assert_eq!(b.delay_with(1, Some(second), 0.9), second);
        assert_eq!(b.delay_with(1, Some(Duration::ZERO), 0.5), 5 * MS);
        assert_eq!(
            b.delay_with(1, Some(Duration::from_secs(86_400)), 0.5),
            RETRY_AFTER_CEILING
        );
        let slow = Backoff::new(Duration::from_secs(10), Duration::from_secs(60));
        assert_eq!(
            slow.delay_with(1, Some(second), 0.5),
            Duration::from_secs(5),
            "our own backoff wins when it is longer"
        );
    }
}
