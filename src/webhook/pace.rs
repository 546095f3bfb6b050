//! A webhook's pace, compiled: its rate limit (`20/min`, with the robot presets' documented
//! limits as defaults), its digest policy and its health policy. Data only: the engine keeps
//! the state (sent times, pauses) and makes the decisions.

use std::time::Duration;

use crate::config::model::{DigestMode, DigestSpec, HealthSpec, WebhookSpec};
use crate::config::units::parse_duration;
use crate::template::{
    preset_digest, BodyKind, DigestTemplate, DEFAULT_LINE, DEFAULT_MAX_BYTES, DEFAULT_MAX_ITEMS,
};

/// One limit: at most `count` messages in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Messages per window.
    pub count: u32,
    /// The window.
    pub window: Duration,
}

/// Every limit a webhook keeps at once (`5/s, 100/min`), and the text it was written as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    /// All must allow a send.
    pub limits: Vec<Limit>,
    /// As written (or the preset default), for the admin API.
    pub text: String,
}

impl Rate {
    /// The longest window: how long a robot's "too fast" pauses the webhook at least.
    pub fn longest_window(&self) -> Duration {
        self.limits
            .iter()
            .map(|l| l.window)
            .max()
            .unwrap_or(Duration::ZERO)
    }
}

/// The documented limits of the robot presets: WeCom and DingTalk group robots take 20
/// messages a minute (DingTalk then blocks the robot for 10 minutes), Feishu custom bots 5 a
/// second and 100 a minute, Slack incoming webhooks about one a second.
pub fn preset_rate(preset: &str) -> Option<&'static str> {
    match preset {
        "wecom-text" | "wecom-markdown" | "dingtalk" => Some("20/min"),
        "feishu" => Some("5/s, 100/min"),
        "slack" => Some("1/s"),
        _ => None,
    }
}

/// Parses `20/min`, `1/s`, `1000/h`, `20/10s` (any duration after the slash), or several
/// separated by commas. `off` is handled by the caller.
pub fn parse_rate(text: &str) -> Result<Rate, String> {
    let mut limits = Vec::new();
    for part in text.split(',').map(str::trim) {
        let Some((count, per)) = part.split_once('/') else {
            return Err(format!(
                "`{part}` is not a rate; write messages/period, e.g. 20/min, 1/s, 1000/h or 20/10s"
            ));
        };
        let count: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("`{part}`: the count must be a whole number above 0"))?;
        let window = match per.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => parse_duration(other).map_err(|e| format!("`{part}`: {e}"))?,
        };
        if window.is_zero() {
            return Err(format!("`{part}`: the period must be longer than 0"));
        }
        limits.push(Limit { count, window });
    }
    Ok(Rate {
        limits,
        text: text.trim().to_string(),
    })
}

/// When digests are made, and how.
#[derive(Debug, Clone)]
pub struct DigestPolicy {
    /// auto | always (off compiles to no policy).
    pub mode: DigestMode,
    /// `always` mode: how long events gather before a digest goes.
    pub window: Duration,
    /// The message, bounded.
    pub template: DigestTemplate,
}

/// When a failing endpoint is paused and how it is probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Consecutive failures that pause; 0: only a `410 Gone` pauses.
    pub pause_after: u32,
    /// First wait before a probe.
    pub probe_initial: Duration,
    /// Longest wait between probes.
    pub probe_max: Duration,
    /// The webhook told about pauses and resumes.
    pub alert_webhook: Option<String>,
}

/// The rate of `spec`: as written, `off`, or its preset's default.
pub(super) fn compile_rate(spec: &WebhookSpec, err: &mut dyn FnMut(&str, String)) -> Option<Rate> {
    let text = match spec.rate.as_deref().map(str::trim) {
        Some("off") => return None,
        Some(t) => t,
        None => preset_rate(spec.preset.as_deref().unwrap_or(""))?,
    };
    parse_rate(text).map_err(|e| err("rate", e)).ok()
}

/// The digest policy of `spec`, `None` when digests are off (or never apply).
pub(super) fn compile_digest(
    spec: &WebhookSpec,
    kind: BodyKind,
    known: &dyn Fn(&str) -> bool,
    err: &mut dyn FnMut(&str, String),
) -> Option<DigestPolicy> {
    let d: &DigestSpec = &spec.digest;
    let robot = spec.preset.as_deref().and_then(preset_digest);
    let mode = d.mode.unwrap_or(if robot.is_some() {
        DigestMode::Auto
    } else {
        DigestMode::Off
    });
    if d.max_items == Some(0) {
        err("digest.max_items", "expected at least 1".into());
        return None;
    }
    if d.window.is_some_and(|w| w.0.is_zero()) {
        err("digest.window", "expected more than 0s, e.g. 1m".into());
        return None;
    }
    if mode == DigestMode::Off {
        return None;
    }
    let max_items = d.max_items.unwrap_or(DEFAULT_MAX_ITEMS);
    let max_bytes = d
        .max_bytes
        .map(|b| usize::try_from(b.0).unwrap_or(usize::MAX))
        .or(robot.map(|r| r.max_bytes))
        .unwrap_or(DEFAULT_MAX_BYTES);
    let line = d.line.as_deref().unwrap_or(DEFAULT_LINE);
    let body = d.body.as_deref().or(robot.map(|r| r.body));
    let template = match (body, kind) {
        (Some(body), _) => DigestTemplate::list(body, kind, line, known, max_items, max_bytes),
        (None, BodyKind::Json) => Ok(DigestTemplate::json_array(max_items, max_bytes)),
        (None, BodyKind::Text) => DigestTemplate::list(
            "[userhook] {{$$.DigestCount$$}} events\n{{$$.DigestItems$$}}{{$$.DigestMore$$}}",
            BodyKind::Text,
            line,
            known,
            max_items,
            max_bytes,
        ),
    };
    match template {
        Ok(template) => Some(DigestPolicy {
            mode,
            window: d.window.map_or(Duration::from_secs(60), |w| w.0),
            template,
        }),
        Err(e) => {
            err("digest", e.to_string());
            None
        }
    }
}

/// The health policy of `spec`; the alert webhook's name is checked against the others by
/// the caller.
pub(super) fn compile_health(spec: &HealthSpec, err: &mut dyn FnMut(&str, String)) -> HealthPolicy {
    if spec.probe.initial.0.is_zero() {
        err(
            "health.probe.initial",
            "expected more than 0s, e.g. 30s".into(),
        );
    }
    if spec.probe.initial > spec.probe.max {
        err(
            "health.probe.initial",
            format!(
                "{} is longer than health.probe.max {}; expected initial <= max",
                spec.probe.initial, spec.probe.max
            ),
        );
    }
    HealthPolicy {
        pause_after: spec.pause_after,
        probe_initial: spec.probe.initial.0,
        probe_max: spec.probe.max.0,
        alert_webhook: spec.alert_webhook.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_in_every_spelling() {
        let one = |t: &str| parse_rate(t).map(|r| r.limits);
        let l = |count, secs| Limit {
            count,
            window: Duration::from_secs(secs),
        };
        assert_eq!(one("20/min"), Ok(vec![l(20, 60)]));
        assert_eq!(one(" 1/s "), Ok(vec![l(1, 1)]));
        assert_eq!(one("1000/h"), Ok(vec![l(1000, 3600)]));
        assert_eq!(one("20/10s"), Ok(vec![l(20, 10)]));
        assert_eq!(one("5/s, 100/min"), Ok(vec![l(5, 1), l(100, 60)]));
        assert_eq!(
            one("3/500ms"),
            Ok(vec![Limit {
                count: 3,
                window: Duration::from_millis(500)
            }])
        );
        for bad in ["20", "0/min", "x/min", "20/fortnight", "20/0s", "-1/s", ""] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
        assert!(parse_rate("20").unwrap_err().contains("e.g. 20/min"));
        assert_eq!(
            parse_rate("5/s, 100/min").map(|r| r.longest_window()),
            Ok(Duration::from_secs(60))
        );
    }

    #[test]
    fn robot_presets_have_their_documented_rates() {
        assert_eq!(preset_rate("dingtalk"), Some("20/min"));
        assert_eq!(preset_rate("wecom-text"), Some("20/min"));
        assert_eq!(preset_rate("wecom-markdown"), Some("20/min"));
        assert_eq!(preset_rate("feishu"), Some("5/s, 100/min"));
        assert_eq!(preset_rate("slack"), Some("1/s"));
        assert_eq!(preset_rate("default"), None);
        for p in ["dingtalk", "feishu", "slack"] {
            assert!(parse_rate(preset_rate(p).unwrap_or("")).is_ok(), "{p}");
        }
    }
}
