//! The delivery engine: a scheduler task that starts attempts from the [`Outbox`] within the
//! global and per-webhook concurrency limits, and records every outcome.
//!
//! ```text
//! Dispatcher ─enqueue─▶ Outbox ─next_ready─▶ scheduler ─spawn─▶ attempt (render, send, decide)
//!                          ▲                                        │
//!                          └──── retry_later / ack / dead_letter ◀──┘ ─▶ Records, DeadLetters
//! ```
//!
//! Limits and webhooks are read from the current config snapshot at each decision, so a reload
//! applies to pending deliveries too. Enqueueing takes a short lock and never waits for I/O:
//! the request path and the extractor can call it freely. This module never logs a body,
//! header, secret or URL query.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use tokio::sync::{watch, Notify};
use tokio::task::{JoinHandle, JoinSet};

use super::attempt::{self, RenderedRequest};
use super::outbox::{Delivery, Outbox};
use super::records::{rfc3339, DeadLetter, DeadLetters, DeliveryRecord, DeliveryStatus, Records};
use super::retry::{decide, AttemptResult, RetryDecision};
use crate::metrics::AttemptOutcome;
use crate::runtime::Runtime;

/// Deliveries held in memory at most; beyond this new ones are dead-lettered at once rather
/// than let a long outage exhaust memory (the durable spool replaces this bound).
pub const OUTBOX_CAPACITY: usize = 100_000;

/// Longest the scheduler sleeps without looking again (a safety net; wakeups are explicit).
const IDLE_TICK: Duration = Duration::from_secs(1);

/// Handle to the running engine; cheap to clone.
#[derive(Clone)]
pub struct DeliveryEngine {
    shared: Arc<Shared>,
}

struct Shared {
    runtime: Arc<ArcSwap<Runtime>>,
    client: reqwest::Client,
    state: Mutex<State>,
    records: Mutex<Records>,
    dead: Mutex<DeadLetters>,
    wake: Notify,
    /// `Some(grace)` once stopping.
    stop: watch::Sender<Option<Duration>>,
    scheduler: Mutex<Option<JoinHandle<()>>>,
}

struct State {
    outbox: Outbox,
    /// Attempts in flight per webhook name.
    running: HashMap<String, usize>,
    total: usize,
}

/// Locks a mutex, recovering from a panicked holder (the data stays consistent enough to list
/// and deliver; a poisoned engine must not stop delivering).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl DeliveryEngine {
    /// Starts the scheduler; deliveries then flow until [`DeliveryEngine::stop`]. Must be
    /// called inside a tokio runtime.
    pub fn start(runtime: Arc<ArcSwap<Runtime>>) -> Result<DeliveryEngine, String> {
        let client = attempt::build_client()?;
        let records = runtime.load().file.delivery.records;
        let (stop, stop_rx) = watch::channel(None);
        let shared = Arc::new(Shared {
            runtime,
            client,
            state: Mutex::new(State {
                outbox: Outbox::new(OUTBOX_CAPACITY),
                running: HashMap::new(),
                total: 0,
            }),
            records: Mutex::new(Records::new(records)),
            dead: Mutex::new(DeadLetters::new(records)),
            wake: Notify::new(),
            stop,
            scheduler: Mutex::new(None),
        });
        let handle = tokio::spawn(schedule(shared.clone(), stop_rx));
        *lock(&shared.scheduler) = Some(handle);
        Ok(DeliveryEngine { shared })
    }

    /// Queues a delivery for its first attempt. Never waits: a full outbox dead-letters it.
    pub fn enqueue(&self, delivery: Delivery) {
        let refused = lock(&self.shared.state).outbox.enqueue(delivery);
        match refused {
            Ok(()) => self.shared.wake.notify_one(),
            Err(d) => {
                crate::metrics::event_dropped(crate::metrics::DropReason::OutboxFull);
                let mut d = *d;
                d.last_error = Some(format!(
                    "not queued: {OUTBOX_CAPACITY} deliveries are already waiting"
                ));
                finish_dead(&self.shared, d, None, "");
            }
        }
    }

    /// The last outcomes, newest first, optionally of one status.
    pub fn records(&self, status: Option<DeliveryStatus>) -> Vec<DeliveryRecord> {
        lock(&self.shared.records).list(status)
    }

    /// Dead letters, newest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        lock(&self.shared.dead).list()
    }

    /// Deliveries waiting or in flight, in enqueue order.
    pub fn pending(&self) -> Vec<Delivery> {
        lock(&self.shared.state).outbox.pending()
    }

    /// The config cell the engine reads webhooks and limits from.
    pub fn runtime(&self) -> &Arc<ArcSwap<Runtime>> {
        &self.shared.runtime
    }

    /// Stops starting attempts and waits up to `grace` for those in flight; the rest are
    /// abandoned and stay pending (in memory until the durable spool keeps them).
    pub async fn stop(&self, grace: Duration) {
        let _ = self.shared.stop.send(Some(grace));
        let handle = lock(&self.shared.scheduler).take();
        if let Some(h) = handle {
            let _ = h.await;
        }
    }
}

/// The scheduler loop: start every attempt the limits allow, then sleep until the next due
/// time, a new delivery, a finished attempt or shutdown.
async fn schedule(shared: Arc<Shared>, mut stop: watch::Receiver<Option<Duration>>) {
    let mut attempts = JoinSet::new();
    let grace = loop {
        if let Some(grace) = *stop.borrow() {
            break grace;
        }
        start_ready(&shared, &mut attempts);
        crate::metrics::spool_usage(lock(&shared.state).outbox.len(), 0);
        let wait = {
            let now = now_ms();
            match lock(&shared.state).outbox.next_due() {
                Some(due) if due > now => Duration::from_millis(due - now).min(IDLE_TICK),
                // Nothing waiting, or due but held back by a limit: a new delivery or a
                // finished attempt wakes us.
                _ => IDLE_TICK,
            }
        };
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            Some(_) = attempts.join_next(), if !attempts.is_empty() => {}
            _ = stop.changed() => {}
        }
    };
    let drained = tokio::time::timeout(grace, async {
        while attempts.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            in_flight = attempts.len(),
            "delivery grace period over; abandoning attempts in flight (they stay pending)"
        );
        attempts.abort_all();
        while attempts.join_next().await.is_some() {}
        let mut st = lock(&shared.state);
        st.outbox.release_all();
        st.running.clear();
        st.total = 0;
    }
    let pending = lock(&shared.state).outbox.len();
    if pending > 0 {
        tracing::warn!(
            pending,
            "delivery engine stopped with deliveries pending; they are not kept across restarts yet"
        );
    }
}

/// Starts attempts for due deliveries while the global and per-webhook limits allow.
fn start_ready(shared: &Arc<Shared>, attempts: &mut JoinSet<()>) {
    let rt = shared.runtime.load();
    let global = rt.file.delivery.concurrency.max(1);
    let now = now_ms();
    let mut st = lock(&shared.state);
    let State {
        outbox,
        running,
        total,
    } = &mut *st;
    while *total < global {
        let next = outbox.next_ready(now, |name| {
            let limit = rt
                .webhooks
                .get(name)
                .and_then(|w| w.concurrency)
                .unwrap_or(global)
                .max(1);
            running.get(name).copied().unwrap_or(0) < limit
        });
        let Some(delivery) = next else { break };
        *running.entry(delivery.webhook.clone()).or_default() += 1;
        *total += 1;
        attempts.spawn(run_attempt(shared.clone(), delivery));
    }
}

/// One attempt of one delivery, from rendering to recording its outcome.
async fn run_attempt(shared: Arc<Shared>, mut delivery: Delivery) {
    let rt = shared.runtime.load_full();
    let webhook = rt.webhooks.get(&delivery.webhook).cloned();
    delivery.attempt += 1;
    let (decision, http_status, url) = match &webhook {
        None => (
            RetryDecision::Final {
                reason: format!("webhook `{}` is no longer in the config", delivery.webhook),
            },
            None,
            String::new(),
        ),
        Some(w) if !w.enabled => (
            RetryDecision::Final {
                reason: format!("webhook `{}` is disabled in the config", delivery.webhook),
            },
            None,
            String::new(),
        ),
        Some(w) => {
            let request: RenderedRequest =
                attempt::render(w, &delivery.id, &delivery.event, attempt::unix_now());
            let url = loggable_url(&request.url);
            let result = match attempt::send(&shared.client, &request, w.timeout).await {
                Ok(reply) => attempt::result_of(reply),
                Err(e) => e,
            };
            let status = match &result {
                AttemptResult::Reply { status, .. } => Some(*status),
                _ => None,
            };
            (decide(w.success, &result), status, url)
        }
    };
    drop(rt);
    {
        let mut st = lock(&shared.state);
        if let Some(n) = st.running.get_mut(&delivery.webhook) {
            *n = n.saturating_sub(1);
        }
        st.total = st.total.saturating_sub(1);
    }
    let max_attempts = webhook.as_ref().map_or(1, |w| w.attempts);
    match decision {
        RetryDecision::Delivered => {
            delivery.last_error = None;
            lock(&shared.state).outbox.ack(&delivery.id);
            crate::metrics::attempt_finished(&delivery.webhook, AttemptOutcome::Success);
            crate::metrics::delivery_succeeded(&delivery.webhook, delivery.created_at, now_ms());
            tracing::info!(
                webhook = %delivery.webhook,
                delivery_id = %delivery.id,
                event = delivery.event.event_type,
                event_id = %delivery.event.id,
                request_id = %delivery.event.request.request_id,
                attempts = delivery.attempt,
                http_status = http_status.unwrap_or(0),
                url = %url,
                status = "successful",
                "webhook delivered"
            );
            record(&shared, &delivery, DeliveryStatus::Successful, http_status);
        }
        RetryDecision::Retry {
            reason,
            retry_after,
        } if delivery.attempt < max_attempts => {
            let backoff = webhook.as_ref().map(|w| w.backoff);
            let wait = backoff.map_or(Duration::ZERO, |b| b.delay(delivery.attempt, retry_after));
            crate::metrics::attempt_finished(&delivery.webhook, AttemptOutcome::Retry);
            delivery.next_attempt_at =
                now_ms().saturating_add(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
            tracing::debug!(
                webhook = %delivery.webhook,
                delivery_id = %delivery.id,
                request_id = %delivery.event.request.request_id,
                attempts = delivery.attempt,
                wait_ms = wait.as_millis() as u64,
                error = %reason,
                "webhook attempt failed; will retry"
            );
            delivery.last_error = Some(reason);
            record(&shared, &delivery, DeliveryStatus::Retrying, http_status);
            lock(&shared.state).outbox.retry_later(delivery);
        }
        RetryDecision::Retry { reason, .. } => {
            delivery.last_error = Some(format!(
                "gave up after {} attempts: {reason}",
                delivery.attempt
            ));
            lock(&shared.state).outbox.dead_letter(&delivery.id);
            crate::metrics::attempt_finished(&delivery.webhook, AttemptOutcome::Final);
            finish_dead(&shared, delivery, http_status, &url);
        }
        RetryDecision::Final { reason } => {
            delivery.last_error = Some(reason);
            lock(&shared.state).outbox.dead_letter(&delivery.id);
            crate::metrics::attempt_finished(&delivery.webhook, AttemptOutcome::Final);
            finish_dead(&shared, delivery, http_status, &url);
        }
    }
    shared.wake.notify_one();
}

/// Records and keeps a delivery that will not be attempted again.
fn finish_dead(shared: &Shared, delivery: Delivery, http_status: Option<u16>, url: &str) {
    let reason = delivery.last_error.clone().unwrap_or_default();
    tracing::warn!(
        webhook = %delivery.webhook,
        delivery_id = %delivery.id,
        event = delivery.event.event_type,
        event_id = %delivery.event.id,
        request_id = %delivery.event.request.request_id,
        attempts = delivery.attempt,
        http_status = http_status.unwrap_or(0),
        url = %url,
        status = "failed",
        error = %reason,
        "webhook delivery failed; kept as a dead letter"
    );
    record(shared, &delivery, DeliveryStatus::Failed, http_status);
    crate::metrics::delivery_dead_lettered(&delivery.webhook);
    let capacity = shared.runtime.load().file.delivery.records;
    let mut dead = lock(&shared.dead);
    dead.set_capacity(capacity);
    dead.push(DeadLetter {
        delivery,
        reason,
        at: rfc3339(now_ms()),
    });
    crate::metrics::dead_letters_kept(dead.len());
}

fn record(shared: &Shared, delivery: &Delivery, status: DeliveryStatus, http: Option<u16>) {
    let capacity = shared.runtime.load().file.delivery.records;
    let mut records = lock(&shared.records);
    records.set_capacity(capacity);
    records.upsert(DeliveryRecord::of(delivery, status, http, now_ms()));
}

/// The URL as logs may show it: scheme, host, port and path only (no userinfo, query or
/// fragment, where keys live).
pub fn loggable_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => String::from("<invalid URL>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loggable_urls_lose_keys() {
        assert_eq!(
            loggable_url("https://u:p@qyapi.example/cgi-bin/send?key=SECRET#frag"),
            "https://qyapi.example/cgi-bin/send"
        );
        assert_eq!(loggable_url("not a url"), "<invalid URL>");
    }
}
