//! One webhook's pace at run time: its send budget ([`Bucket`]), a pause the robot asked for
//! ("send too fast", HTTP 429), and its [`Health`]. The scheduler asks [`Pace::may_start`]
//! before it starts an attempt and the outcome reports back through [`Pace::rate_limited`]
//! and the health transitions. State lives in memory, beside the outbox, under its lock:
//! a restart starts every webhook active with a full budget (see README "Endpoint health").

use std::time::Duration;

use super::bucket::Bucket;
use super::health::{Gate, Health};
use crate::config::model::DigestMode;
use crate::webhook::Webhook;

/// The longest a robot's "too fast" pauses a webhook (repeated refusals double the pause).
const MAX_RATE_PAUSE: Duration = Duration::from_secs(600);

/// A rate-limit pause when the webhook has no rate and the robot named no wait.
const DEFAULT_RATE_PAUSE: Duration = Duration::from_secs(1);

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What the scheduler may start for one webhook now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// An ordinary attempt (or digest).
    Normal,
    /// The one probe of a paused webhook.
    Probe,
}

/// One webhook's pace.
#[derive(Debug, Default, Clone)]
pub(super) struct Pace {
    pub(super) bucket: Bucket,
    /// Unix ms; nothing starts before it (the robot said "too fast").
    pub(super) rate_paused_until: u64,
    /// Rate-limit refusals in a row: each doubles the pause.
    pub(super) rate_strikes: u32,
    pub(super) health: Health,
    /// The compiled webhook (its address) it was paused under: a reload compiles a new one,
    /// and a paused webhook whose config was reloaded (a fixed URL or key) resumes at once.
    pub(super) paused_under: usize,
}

impl Pace {
    /// Whether an attempt may start now (`running`: attempts of this webhook in flight,
    /// `first_due`: its earliest waiting delivery), or the time to look again.
    pub(super) fn may_start(
        &mut self,
        w: &Webhook,
        running: usize,
        first_due: u64,
        now: u64,
    ) -> Result<Start, u64> {
        let start = match self.health.gate(now) {
            Gate::Open => Start::Normal,
            // One probe alone: attempts still in flight end first (and wake the scheduler).
            Gate::Probe if running > 0 => return Err(u64::MAX),
            Gate::Probe => Start::Probe,
            Gate::Closed(at) => return Err(at),
        };
        if self.rate_paused_until > now {
            return Err(self.rate_paused_until);
        }
        let rate = w.rate.as_ref();
        if self.bucket.available(rate, now) == 0 {
            return Err(self.bucket.next_free(rate, now));
        }
        if let Some(d) = w.digest.as_ref().filter(|d| d.mode == DigestMode::Always) {
            let ready_at = first_due.saturating_add(ms(d.window));
            if ready_at > now && start == Start::Normal {
                return Err(ready_at);
            }
        }
        Ok(start)
    }

    /// The robot refused as too fast: pause the webhook for the longer of what it asked
    /// (`retry_after`) and the rate's longest window, doubled for each refusal in a row.
    /// Returns when it may send again.
    pub(super) fn rate_limited(
        &mut self,
        w: &Webhook,
        retry_after: Option<Duration>,
        now: u64,
    ) -> u64 {
        self.rate_strikes = self.rate_strikes.saturating_add(1);
        let base = w
            .rate
            .as_ref()
            .map_or(DEFAULT_RATE_PAUSE, |r| r.longest_window());
        let doubled = base.saturating_mul(1u32 << self.rate_strikes.saturating_sub(1).min(10));
        let pause = doubled
            .min(MAX_RATE_PAUSE)
            .max(retry_after.unwrap_or(Duration::ZERO));
        self.rate_paused_until = now.saturating_add(ms(pause));
        // Its budget is spent as far as the robot is concerned.
        self.health.probe_undecided(self.rate_paused_until);
        self.rate_paused_until
    }

    /// A message went through: the robot is not refusing any more.
    pub(super) fn sent_fine(&mut self) {
        self.rate_strikes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(extra: &str) -> std::sync::Arc<Webhook> {
        let text = format!(
            "upstream: http://127.0.0.1:1\nwebhooks:\n  - {{name: a, actions: ['*'], url: 'http://x/hook', {extra}}}\n"
        );
        let file = crate::config::parse_str(&text).unwrap_or_else(|e| panic!("{e}"));
        let hooks = crate::webhook::Webhooks::compile(&file).unwrap_or_else(|e| panic!("{e:?}"));
        hooks.get("a").expect("a").clone()
    }

    #[test]
    fn the_budget_and_a_robot_pause_hold_attempts_back() {
        let w = webhook("rate: 2/10s");
        let mut p = Pace::default();
        assert_eq!(p.may_start(&w, 0, 0, 0), Ok(Start::Normal));
        p.bucket.take(w.rate.as_ref(), 0);
        p.bucket.take(w.rate.as_ref(), 0);
        assert_eq!(p.may_start(&w, 0, 0, 1), Err(10_501));
        // Too fast: 10 s, then 20 s, 40 s ... at most 10 minutes, or what the robot asks.
        assert_eq!(p.rate_limited(&w, None, 100), 10_100);
        assert_eq!(p.may_start(&w, 0, 0, 10_000), Err(10_100));
        assert_eq!(p.rate_limited(&w, None, 100), 20_100);
        assert_eq!(p.rate_limited(&w, Some(Duration::from_secs(90)), 0), 90_000);
        for _ in 0..20 {
            p.rate_limited(&w, None, 0);
        }
        assert_eq!(p.rate_paused_until, 600_000);
        p.sent_fine();
        assert_eq!(p.rate_strikes, 0);
    }

    #[test]
    fn always_digests_gather_for_their_window_and_probes_go_alone() {
        let w = webhook("digest: {mode: always, window: 5s}");
        let mut p = Pace::default();
        assert_eq!(p.may_start(&w, 0, 1_000, 2_000), Err(6_000));
        assert_eq!(p.may_start(&w, 0, 1_000, 6_000), Ok(Start::Normal));
        p.health
            .failed(&w.health, true, Some(410), "HTTP 410", 6_000);
        assert_eq!(p.may_start(&w, 0, 1_000, 7_000), Err(36_000));
        assert_eq!(p.may_start(&w, 1, 1_000, 36_000), Err(u64::MAX));
        // A probe does not wait for the digest window.
        assert_eq!(p.may_start(&w, 0, 35_999, 36_000), Ok(Start::Probe));
    }
}
