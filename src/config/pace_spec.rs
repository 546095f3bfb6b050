//! How fast a webhook may be sent to, how bursts are merged, and when a failing endpoint is
//! paused: the `rate`, `digest` and `health` keys of a webhook, as written. Read as plain data
//! here; `webhook::pace` compiles them (parses `20/min`, applies the robot presets' defaults)
//! and reports problems with their key paths.

use serde::{Deserialize, Serialize};

use super::units::{ByteSize, Duration};

/// `digest.mode`: when pending events of a webhook are merged into one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestMode {
    /// Only while the webhook is over its rate (more due than it may send now).
    Auto,
    /// Every message is a digest of what gathered during `window`.
    Always,
    /// Never: one message per event, paced by the rate.
    Off,
}

/// `webhooks[].digest`: merging a burst into few messages that still name every event.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSpec {
    /// auto | always | off; default `auto` for the robot presets, `off` otherwise (a
    /// machine receiver expects its own schema, not an array).
    #[serde(default)]
    pub mode: Option<DigestMode>,
    /// Events named in one digest message at most (default 50).
    #[serde(default)]
    pub max_items: Option<usize>,
    /// Size of one digest message's body at most (default: the robot's message limit).
    #[serde(default)]
    pub max_bytes: Option<ByteSize>,
    /// `always` mode: how long events gather before a digest goes (default 1m).
    #[serde(default)]
    pub window: Option<Duration>,
    /// The digest message's body; `{{$$.DigestCount$$}}`, `{{$$.DigestItems$$}}`,
    /// `{{$$.DigestMore$$}}` and `{{$$.DigestRest$$}}` (default: the preset's).
    #[serde(default)]
    pub body: Option<String>,
    /// One event's line in `DigestItems`, with the event's variables (default: the preset's).
    #[serde(default)]
    pub line: Option<String>,
}

/// `webhooks[].health.probe`: how often a paused webhook is tried again.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    /// Wait before the first probe after a pause.
    #[serde(default = "defaults::probe_initial")]
    pub initial: Duration,
    /// Longest wait between two probes (the wait doubles after each failed probe).
    #[serde(default = "defaults::probe_max")]
    pub max: Duration,
}

impl Default for ProbeSpec {
    fn default() -> Self {
        ProbeSpec {
            initial: defaults::probe_initial(),
            max: defaults::probe_max(),
        }
    }
}

/// `webhooks[].health`: pause a failing endpoint instead of burning its deliveries.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSpec {
    /// Consecutive failed attempts that pause the webhook; 0 never pauses on failures
    /// (a `410 Gone` always pauses).
    #[serde(default = "defaults::pause_after")]
    pub pause_after: u32,
    /// Backoff between probes while paused.
    #[serde(default)]
    pub probe: ProbeSpec,
    /// Another configured webhook told when this one pauses and resumes.
    #[serde(default)]
    pub alert_webhook: Option<String>,
}

impl Default for HealthSpec {
    fn default() -> Self {
        HealthSpec {
            pause_after: defaults::pause_after(),
            probe: ProbeSpec::default(),
            alert_webhook: None,
        }
    }
}

mod defaults {
    use super::Duration;

    pub(super) fn pause_after() -> u32 {
        10
    }
    pub(super) fn probe_initial() -> Duration {
        Duration::from_secs(30)
    }
    pub(super) fn probe_max() -> Duration {
        Duration::from_secs(600)
    }
}
