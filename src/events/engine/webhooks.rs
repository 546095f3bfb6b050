//! Each webhook's pace and health as the admin API shows them (`GET /webhooks`), and resuming
//! a paused one by hand (`POST /webhooks/{name}/resume`, `userhook webhooks resume NAME`).

use serde::{Deserialize, Serialize};

use super::alert::health_changed;
use super::health::Transition;
use super::state::DeliveryEngine;
use crate::events::clock::now_ms;
use crate::events::records::rfc3339;

/// One webhook's state for the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookState {
    /// The webhook's name.
    pub name: String,
    /// `active` or `paused`.
    pub state: String,
    /// Why it is paused (`410 Gone`, `10 consecutive failures`), while it is.
    pub reason: Option<String>,
    /// Failed attempts in a row (reset by a success).
    pub consecutive_failures: u32,
    /// RFC 3339: since when it is paused.
    pub paused_since: Option<String>,
    /// RFC 3339: when the next probe may go, while paused.
    pub next_probe: Option<String>,
    /// Its rate limit as configured (or its preset's), if it has one.
    pub rate: Option<String>,
    /// RFC 3339: the robot asked it to wait ("too fast") until then.
    pub rate_limited_until: Option<String>,
    /// The last reply's status.
    pub last_status: Option<u16>,
    /// The last failure's reason, until a success.
    pub last_error: Option<String>,
    /// Deliveries waiting for it.
    pub pending: u64,
}

/// Why a webhook operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhooksError {
    /// No webhook of that name in the running config.
    #[error("no webhook named `{name}`; known: {known}")]
    Unknown {
        /// As asked.
        name: String,
        /// The configured names, comma-separated.
        known: String,
    },
}

impl DeliveryEngine {
    /// Every configured webhook's state, in config order.
    pub fn webhook_states(&self) -> Vec<WebhookState> {
        let rt = self.shared.runtime.load_full();
        let now = now_ms();
        let spool = self
            .shared
            .spool
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut out = Vec::with_capacity(rt.webhooks.len());
        for w in rt.webhooks.iter() {
            let (pace, memory_count) = {
                let st = self.shared.memory.lock();
                (st.pace.get(&w.name).cloned(), st.outbox.count_of(&w.name))
            };
            let pending = match &spool {
                Some(s) if !s.is_busy() => s.pending_of(&w.name).unwrap_or(memory_count as u64),
                _ => memory_count as u64,
            };
            let pace = pace.unwrap_or_default();
            let paused = pace.health.paused.as_ref();
            crate::metrics::webhook_paused(&w.name, paused.is_some());
            out.push(WebhookState {
                name: w.name.clone(),
                state: if paused.is_some() { "paused" } else { "active" }.to_string(),
                reason: paused.map(|p| p.reason.clone()),
                consecutive_failures: pace.health.consecutive_failures,
                paused_since: paused.map(|p| rfc3339(p.since)),
                next_probe: paused.map(|p| rfc3339(p.next_probe.max(now))),
                rate: w.rate.as_ref().map(|r| r.text.clone()),
                rate_limited_until: (pace.rate_paused_until > now)
                    .then(|| rfc3339(pace.rate_paused_until)),
                last_status: pace.health.last_status,
                last_error: pace.health.last_error.clone(),
                pending,
            });
        }
        out
    }

    /// Sets every configured webhook's `userhook_webhook_paused` gauge (at `/metrics` scrape
    /// time, so each webhook has its series from the start).
    pub fn publish_webhook_gauges(&self) {
        let rt = self.shared.runtime.load_full();
        let st = self.shared.memory.lock();
        for w in rt.webhooks.iter() {
            let paused = st
                .pace
                .get(&w.name)
                .is_some_and(|p| p.health.paused.is_some());
            crate::metrics::webhook_paused(&w.name, paused);
        }
    }

    /// Resumes `name` now: active, its failures forgotten, its waiting deliveries due at once.
    /// Resuming an active webhook is not an error (it changes nothing but the due times).
    pub fn resume_webhook(&self, name: &str) -> Result<(), WebhooksError> {
        let rt = self.shared.runtime.load_full();
        let Some(w) = rt.webhooks.get(name).cloned() else {
            return Err(WebhooksError::Unknown {
                name: name.to_string(),
                known: rt.webhooks.names().join(", "),
            });
        };
        let now = now_ms();
        let (transition, health) = {
            let mut st = self.shared.memory.lock();
            let p = st.pace.entry(name.to_string()).or_default();
            let t = p.health.resume();
            let health = p.health.clone();
            st.outbox.due_now(name, now);
            (t, health)
        };
        if transition == Transition::Resumed {
            tracing::info!(webhook = %name, "webhook resumed by the operator");
            health_changed(&self.shared, &w, &health, transition, now);
        }
        self.shared.memory.wake.notify_one();
        Ok(())
    }
}
