//! A webhook's health: active, or paused after `pause_after` consecutive failures or a
//! `410 Gone`, and probed with one real pending delivery at a doubling interval until one
//! succeeds. Pausing never discards: the caller keeps every delivery pending, and attempts
//! made while paused do not count toward a delivery's attempts. Pure: the clock is passed in
//! (Unix milliseconds), and the transitions are returned for the caller to log and alert.

use std::time::Duration;

use crate::webhook::HealthPolicy;

/// Why a webhook was paused, for the admin API and the alert.
pub(super) const GONE: &str = "410 Gone";

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Paused: since when, why, and when the next probe may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Paused {
    pub(super) reason: String,
    pub(super) since: u64,
    pub(super) next_probe: u64,
    /// The wait before the next probe after this one fails.
    pub(super) wait: Duration,
    /// A probe is in flight: no other attempt starts.
    pub(super) probing: bool,
}

/// One webhook's health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Health {
    pub(super) consecutive_failures: u32,
    pub(super) last_status: Option<u16>,
    pub(super) last_error: Option<String>,
    pub(super) paused: Option<Paused>,
    /// The pause that ended last (for the "resumed" alert: what it recovered from).
    pub(super) last_pause: Option<Paused>,
}

/// What an outcome did to the webhook's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Transition {
    /// Nothing the operator must hear about.
    None,
    /// It was active and is paused now.
    Paused,
    /// It was paused and is active again.
    Resumed,
}

/// What the scheduler may start for this webhook now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    /// Anything its other limits allow.
    Open,
    /// One probe.
    Probe,
    /// Nothing before this time (`u64::MAX`: not until the probe in flight ends).
    Closed(u64),
}

impl Health {
    /// What may start now.
    pub(super) fn gate(&self, now: u64) -> Gate {
        match &self.paused {
            None => Gate::Open,
            Some(p) if p.probing => Gate::Closed(u64::MAX),
            Some(p) if p.next_probe <= now => Gate::Probe,
            Some(p) => Gate::Closed(p.next_probe),
        }
    }

    /// A probe starts.
    pub(super) fn probe_started(&mut self) {
        if let Some(p) = &mut self.paused {
            p.probing = true;
        }
    }

    /// The target took a message: failures forgotten; a paused webhook resumes.
    pub(super) fn succeeded(&mut self, status: Option<u16>) -> Transition {
        self.consecutive_failures = 0;
        self.last_status = status;
        self.last_error = None;
        self.end_pause()
    }

    /// An attempt failed (`gone`: the target answered 410). Pauses when the policy says so;
    /// a failed probe doubles the wait before the next one.
    pub(super) fn failed(
        &mut self,
        policy: &HealthPolicy,
        gone: bool,
        status: Option<u16>,
        error: &str,
        now: u64,
    ) -> Transition {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.last_status = status;
        self.last_error = Some(error.to_string());
        if let Some(p) = &mut self.paused {
            if p.probing {
                p.probing = false;
                p.next_probe = now.saturating_add(ms(p.wait));
                p.wait = (p.wait * 2).min(policy.probe_max.max(policy.probe_initial));
            }
            return Transition::None;
        }
        let reason = if gone {
            GONE.to_string()
        } else if policy.pause_after > 0 && self.consecutive_failures >= policy.pause_after {
            format!("{} consecutive failures", self.consecutive_failures)
        } else {
            return Transition::None;
        };
        self.paused = Some(Paused {
            reason,
            since: now,
            next_probe: now.saturating_add(ms(policy.probe_initial)),
            wait: (policy.probe_initial * 2).min(policy.probe_max.max(policy.probe_initial)),
            probing: false,
        });
        Transition::Paused
    }

    /// A probe that ended neither way (the robot said "too fast", the attempt was abandoned):
    /// the next probe may start at `at`, the wait unchanged.
    pub(super) fn probe_undecided(&mut self, at: u64) {
        if let Some(p) = &mut self.paused {
            if p.probing {
                p.probing = false;
                p.next_probe = at;
            }
        }
    }

    /// The operator resumed it (admin API, CLI): active, failures forgotten.
    pub(super) fn resume(&mut self) -> Transition {
        self.consecutive_failures = 0;
        self.end_pause()
    }

    fn end_pause(&mut self) -> Transition {
        match self.paused.take() {
            Some(p) => {
                self.last_pause = Some(p);
                Transition::Resumed
            }
            None => Transition::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(pause_after: u32) -> HealthPolicy {
        HealthPolicy {
            pause_after,
            probe_initial: Duration::from_secs(30),
            probe_max: Duration::from_secs(600),
            alert_webhook: None,
        }
    }

    #[test]
    fn n_consecutive_failures_pause_and_a_success_in_between_resets() {
        let p = policy(3);
        let mut h = Health::default();
        assert_eq!(
            h.failed(&p, false, Some(503), "HTTP 503", 0),
            Transition::None
        );
        assert_eq!(
            h.failed(&p, false, Some(503), "HTTP 503", 1),
            Transition::None
        );
        assert_eq!(h.succeeded(Some(200)), Transition::None);
        assert_eq!(h.consecutive_failures, 0);
        for t in 0..2 {
            assert_eq!(h.failed(&p, false, None, "refused", t), Transition::None);
        }
        assert_eq!(h.gate(5), Gate::Open);
        assert_eq!(h.failed(&p, false, None, "refused", 10), Transition::Paused);
        let paused = h.paused.clone().expect("paused");
        assert_eq!(paused.reason, "3 consecutive failures");
        assert_eq!((paused.since, paused.next_probe), (10, 30_010));
        assert_eq!(h.last_error.as_deref(), Some("refused"));
        // Failures of attempts already in flight change nothing more.
        assert_eq!(h.failed(&p, false, None, "refused", 11), Transition::None);
        assert_eq!(h.paused.as_ref().map(|p| p.next_probe), Some(30_010));
    }

    #[test]
    fn gone_pauses_at_once_even_without_a_failure_count() {
        let mut h = Health::default();
        assert_eq!(
            h.failed(&policy(0), true, Some(410), "HTTP 410", 7),
            Transition::Paused
        );
        assert_eq!(h.paused.as_ref().map(|p| p.reason.as_str()), Some(GONE));
        let mut h = Health::default();
        for t in 0..100 {
            assert_eq!(
                h.failed(&policy(0), false, Some(500), "x", t),
                Transition::None
            );
        }
    }

    #[test]
    fn probes_back_off_to_the_max_and_one_success_resumes() {
        let p = policy(1);
        let mut h = Health::default();
        assert_eq!(
            h.failed(&p, false, Some(502), "HTTP 502", 0),
            Transition::Paused
        );
        assert_eq!(h.gate(29_999), Gate::Closed(30_000));
        let mut now = 30_000;
        let mut waits = Vec::new();
        for _ in 0..7 {
            assert_eq!(h.gate(now), Gate::Probe);
            h.probe_started();
            assert_eq!(h.gate(now), Gate::Closed(u64::MAX), "one probe at a time");
            assert_eq!(
                h.failed(&p, false, Some(502), "HTTP 502", now),
                Transition::None
            );
            let next = h.paused.as_ref().map(|p| p.next_probe).expect("paused");
            waits.push((next - now) / 1000);
            now = next;
        }
        assert_eq!(waits, [60, 120, 240, 480, 600, 600, 600]);
        h.probe_started();
        h.probe_undecided(now + 5);
        assert_eq!(h.gate(now + 5), Gate::Probe);
        h.probe_started();
        assert_eq!(h.succeeded(Some(200)), Transition::Resumed);
        assert_eq!(h.gate(now), Gate::Open);
        assert_eq!(h.consecutive_failures, 0);
    }

    #[test]
    fn the_operator_resumes() {
        let mut h = Health::default();
        assert_eq!(h.resume(), Transition::None);
        h.failed(&policy(1), false, None, "x", 0);
        assert!(h.paused.is_some());
        assert_eq!(h.resume(), Transition::Resumed);
        assert!(h.paused.is_none());
    }
}
