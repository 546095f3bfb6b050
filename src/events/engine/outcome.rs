//! One attempt and its outcome: render and send with the webhook's *current* config (looked up
//! by name at each attempt, so a reload applies to pending deliveries), then deliver, retry
//! later or dead-letter, keeping the spool and the records in step. Never logs a body, a
//! header, a secret or a URL query (see [`crate::template::RenderedUrl::loggable`]).

use std::sync::Arc;
use std::time::Duration;

use super::health::Transition;
use super::record::{record, record_as, record_digested};
use super::state::{forget_resident, lock, Shared};
use crate::events::attempt::{self, RenderedRequest};
use crate::events::clock::now_ms;
use crate::events::live::Outcome;
use crate::events::outbox::Delivery;
use crate::events::records::{rfc3339, DeadLetter, DeliveryStatus};
use crate::events::retry::Backoff;
use crate::events::retry::{decide, AttemptResult, RetryDecision};
use crate::events::spool::{Retain, Write};
use crate::metrics::AttemptOutcome;
use crate::sink::Sink;
use crate::template::{EventVars, VarSource};

/// What the scheduler starts as one attempt: one delivery, or several of one webhook sent as
/// one digest message; `probe` when it tests a paused webhook.
pub(super) struct Batch {
    pub(super) deliveries: Vec<Delivery>,
    pub(super) probe: bool,
    pub(super) digest: bool,
}

/// How the outcome of one message applies to each delivery in it.
enum Plan {
    /// As the retry decision says (delivered, retry with backoff, or dead letter).
    Decide(RetryDecision),
    /// Kept pending until `until`, the attempt not counted: the robot said "too fast", or the
    /// webhook is paused.
    Hold {
        until: u64,
        reason: String,
        paused: bool,
    },
}

/// One attempt (one message: a delivery or a digest), from rendering to recording outcomes.
pub(super) async fn run_attempt(shared: Arc<Shared>, batch: Batch) {
    let Some(name) = batch.deliveries.first().map(|d| d.webhook.clone()) else {
        release_slot(&shared, "");
        return;
    };
    let rt = shared.runtime.load_full();
    if let Some(sink) = rt.sinks.get(&name).cloned() {
        drop(rt);
        for delivery in batch.deliveries {
            // Boxed: a stream publish is a large future (kilobytes), and inline it would make
            // every webhook attempt's task that large too, copied at each spawn and finish.
            Box::pin(run_sink_attempt(shared.clone(), delivery, sink.clone())).await;
        }
        release_slot(&shared, &name);
        shared.memory.wake.notify_one();
        return;
    }
    let webhook = rt.webhooks.get(&name).cloned();
    drop(rt);
    let mut deliveries = batch.deliveries;
    for d in &mut deliveries {
        d.attempt += 1;
    }
    let w = match webhook {
        Some(w) if w.enabled => w,
        other => {
            release_slot(&shared, &name);
            let reason = if other.is_some() {
                format!("webhook `{name}` is disabled in the config")
            } else {
                format!("webhook `{name}` is no longer in the config")
            };
            for d in deliveries {
                let decision = RetryDecision::Final {
                    reason: reason.clone(),
                };
                settle(&shared, d, decision, (None, ""), 1, None, true, None);
            }
            return;
        }
    };
    let ts = attempt::unix_now();
    let rendered = if batch.digest {
        render_digest(&shared, &w, &mut deliveries, ts).map(|(r, id)| (r, Some(id)))
    } else {
        match deliveries.first() {
            Some(d) => attempt::render(&w, &d.id, &d.event, ts)
                .map(|r| (r, None))
                .map_err(|e| e.to_string()),
            None => Err(String::from("nothing to send")),
        }
    };
    let (request, digest_id) = match rendered {
        Ok(r) => r,
        // Nothing is sent to a URL the event does not fill: the delivery fails, with the
        // reason in its dead letter, its record and the log. Not the endpoint's fault: its
        // health is untouched.
        Err(reason) => {
            release_slot(&shared, &name);
            for d in deliveries {
                let decision = RetryDecision::Final {
                    reason: reason.clone(),
                };
                settle(
                    &shared,
                    d,
                    decision,
                    (None, ""),
                    w.attempts,
                    None,
                    false,
                    None,
                );
            }
            return;
        }
    };
    let url = match w.url.fixed_loggable() {
        Some(shown) => shown.to_owned(),
        None => request.url.loggable(),
    };
    let result = match attempt::send(&shared.client, request, w.timeout).await {
        Ok(reply) => attempt::result_of(reply),
        Err(e) => e,
    };
    let (status, retry_after) = match &result {
        AttemptResult::Reply {
            status,
            retry_after,
            ..
        } => (Some(*status), *retry_after),
        _ => (None, None),
    };
    let decision = decide(w.success, &result);
    let now = now_ms();
    let (plan, transition, health) = {
        let mut st = shared.memory.lock();
        let p = st.pace.entry(name.clone()).or_default();
        let (plan, transition) = match decision {
            RetryDecision::Delivered => {
                p.sent_fine();
                (
                    Plan::Decide(RetryDecision::Delivered),
                    p.health.succeeded(status),
                )
            }
            RetryDecision::Retry { reason, .. } | RetryDecision::Final { reason }
                if rate_limited(&result) =>
            {
                let until = p.rate_limited(&w, retry_after, now);
                crate::metrics::webhook_rate_limited(&name);
                let reason =
                    format!("{reason}: the target is rate-limiting; this webhook waits (not counted as an attempt)");
                (
                    Plan::Hold {
                        until,
                        reason,
                        paused: false,
                    },
                    Transition::None,
                )
            }
            decision => {
                let reason = match &decision {
                    RetryDecision::Retry { reason, .. } | RetryDecision::Final { reason } => {
                        reason.clone()
                    }
                    RetryDecision::Delivered => String::new(),
                };
                let t = p
                    .health
                    .failed(&w.health, status == Some(410), status, &reason, now);
                if t == Transition::Paused {
                    p.paused_under = Arc::as_ptr(&w) as usize;
                }
                match &p.health.paused {
                    Some(paused) => (
                        Plan::Hold {
                            until: paused.next_probe,
                            reason: format!(
                                "{reason}: webhook paused ({}), kept pending (not counted as an attempt)",
                                paused.reason
                            ),
                            paused: true,
                        },
                        t,
                    ),
                    None => (Plan::Decide(decision), t),
                }
            }
        };
        let health = p.health.clone();
        (plan, transition, health)
    };
    release_slot(&shared, &name);
    if transition != Transition::None {
        super::alert::health_changed(&shared, &w, &health, transition, now);
    }
    if let Some(id) = &digest_id {
        crate::metrics::digest_sent(&name, deliveries.len());
        tracing::info!(
            webhook = %name,
            digest_id = %id,
            events = deliveries.len(),
            http_status = status.unwrap_or(0),
            url = %url,
            "digest message sent"
        );
    }
    for d in deliveries {
        match &plan {
            Plan::Decide(decision) => settle(
                &shared,
                d,
                decision.clone(),
                (status, &url),
                w.attempts,
                Some(w.backoff),
                false,
                digest_id.as_deref(),
            ),
            Plan::Hold {
                until,
                reason,
                paused,
            } => hold(&shared, d, *until, reason, status, *paused),
        }
    }
    shared.memory.wake.notify_one();
}

/// Whether the target said "too many messages" (HTTP 429, or a robot's rate-limit errcode in
/// a 2xx reply): the webhook waits, and the attempt does not count.
fn rate_limited(result: &AttemptResult) -> bool {
    match result {
        AttemptResult::Reply { status: 429, .. } => true,
        AttemptResult::Reply { status, body, .. } => {
            (200..300).contains(status) && crate::events::retry::robot_rate_limited(body)
        }
        _ => false,
    }
}

/// Renders one digest of `deliveries` (oldest first); those that do not fit the message are
/// put back as they were (they lead the next digest) and removed from `deliveries`. Returns
/// the request and the digest message's id (its `webhook-id`).
fn render_digest(
    shared: &Shared,
    w: &crate::webhook::Webhook,
    deliveries: &mut Vec<Delivery>,
    ts: i64,
) -> Result<(RenderedRequest, String), String> {
    let Some(policy) = &w.digest else {
        return Err(format!("webhook `{}` has no digest", w.name));
    };
    let rest = shared
        .memory
        .lock()
        .outbox
        .count_of(&w.name)
        .saturating_sub(deliveries.len());
    let vars: Vec<EventVars<'_>> = deliveries.iter().map(|d| EventVars(&d.event)).collect();
    let refs: Vec<&dyn VarSource> = vars.iter().map(|v| v as &dyn VarSource).collect();
    let digest = policy
        .template
        .render(&refs, rest, &|v: &dyn VarSource| w.body.render_vars(v));
    drop(refs);
    drop(vars);
    if digest.included < deliveries.len() {
        let extra = deliveries.split_off(digest.included.max(1));
        let mut st = shared.memory.lock();
        for d in extra {
            st.outbox.release(&d.id);
        }
    }
    let id = uuid::Uuid::now_v7().to_string();
    let first = deliveries.first().map(|d| &d.event);
    let request = attempt::render_digest(
        w,
        &id,
        first,
        digest.body,
        deliveries.len(),
        digest.rest,
        ts,
    )
    .map_err(|e| e.to_string())?;
    Ok((request, id))
}

/// One message's attempt ended: its slot in the concurrency limits is free.
fn release_slot(shared: &Shared, webhook: &str) {
    let mut st = shared.memory.lock();
    if let Some(n) = st.running.get_mut(webhook) {
        *n = n.saturating_sub(1);
    }
    st.total = st.total.saturating_sub(1);
}

/// Keeps a delivery pending until `until` without counting the attempt: the robot asked for a
/// pause, or the webhook is paused. Recorded as retrying with the reason; the spool keeps the
/// delivery as it was (its attempts unchanged).
fn hold(
    shared: &Shared,
    mut delivery: Delivery,
    until: u64,
    reason: &str,
    status: Option<u16>,
    paused: bool,
) {
    delivery.attempt = delivery.attempt.saturating_sub(1);
    delivery.next_attempt_at = until;
    delivery.last_error = Some(reason.to_string());
    crate::metrics::attempt_finished(&delivery.webhook, AttemptOutcome::Retry);
    tracing::debug!(
        webhook = %delivery.webhook,
        delivery_id = %delivery.id,
        error = %reason,
        "webhook attempt not counted; delivery kept pending"
    );
    let outcome = if paused {
        Outcome::Paused
    } else {
        Outcome::Retrying
    };
    record_as(shared, &delivery, DeliveryStatus::Retrying, status, outcome);
    shared.memory.lock().outbox.retry_later(delivery);
}

/// One attempt of one delivery to a sink: publish, wait for the stream's acknowledgement.
async fn run_sink_attempt(shared: Arc<Shared>, mut delivery: Delivery, sink: Arc<Sink>) {
    delivery.attempt += 1;
    let decision = if sink.enabled {
        shared
            .publishers
            .publish(&sink, &delivery.id, &delivery.event)
            .await
    } else {
        RetryDecision::Final {
            reason: format!("sink `{}` is disabled in the config", delivery.webhook),
        }
    };
    let servers = sink.loggable_servers().join(",");
    let backoff = Backoff::new(sink.retry_initial, sink.retry_max);
    settle(
        &shared,
        delivery,
        decision,
        (None, &servers),
        sink.attempts,
        Some(backoff),
        !sink.enabled,
        None,
    );
}

/// What `delivery.retain_delivered` keeps of a successful delivery: the delivery itself (for
/// `deliveries resend`), or only the bounds when retention is off (which drops what an
/// earlier config kept).
fn retain(shared: &Shared, delivery: &Delivery) -> Retain {
    let spec = &shared.runtime.load().file.delivery.retain_delivered;
    let row = (spec.count > 0)
        .then(|| {
            serde_json::to_vec(delivery)
                .ok()
                .map(|b| (delivery.id.clone(), b))
        })
        .flatten();
    Retain {
        row,
        keep: spec.count,
        max_age_ms: u64::try_from(spec.max_age.0.as_millis()).unwrap_or(u64::MAX),
        now_ms: now_ms(),
    }
}

/// What an attempt's decision does to the delivery, the spool, the records and the metrics:
/// the same for webhooks and sinks.
/// `orphan`: the target is no longer in the config (or disabled), so the delivery goes to the
/// dead letters counted in a summary line rather than logged one by one. `digest`: the id of
/// the digest message that carried it, kept in its record.
#[allow(clippy::too_many_arguments)]
fn settle(
    shared: &Arc<Shared>,
    mut delivery: Delivery,
    decision: RetryDecision,
    (http_status, url): (Option<u16>, &str),
    max_attempts: u32,
    backoff: Option<Backoff>,
    orphan: bool,
    digest: Option<&str>,
) {
    match decision {
        RetryDecision::Delivered => {
            delivery.last_error = None;
            {
                let mut st = shared.memory.lock();
                st.outbox.ack(&delivery.id);
                forget_resident(&mut st, &delivery.webhook);
            }
            shared.committer.push(Write::Delivered {
                webhook: delivery.webhook.clone(),
                seq: delivery.seq,
                retain: retain(shared, &delivery),
            });
            crate::metrics::attempt_finished(&delivery.webhook, AttemptOutcome::Success);
            crate::metrics::delivery_succeeded(&delivery.webhook, delivery.created_at, now_ms());
            tracing::info!(
                webhook = %delivery.webhook,
                delivery_id = %delivery.id,
                event = delivery.event.event_type.as_ref(),
                event_id = %delivery.event.id,
                request_id = %delivery.event.request.request_id,
                attempts = delivery.attempt,
                http_status = http_status.unwrap_or(0),
                url = %url,
                status = "successful",
                digest_id = digest.unwrap_or(""),
                "webhook delivered"
            );
            record_digested(
                shared,
                &delivery,
                DeliveryStatus::Successful,
                http_status,
                digest,
            );
        }
        RetryDecision::Retry {
            reason,
            retry_after,
        } if delivery.attempt < max_attempts => {
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
            record(shared, &delivery, DeliveryStatus::Retrying, http_status);
            if let Ok(bytes) = serde_json::to_vec(&delivery) {
                shared.committer.push(Write::Put {
                    webhook: delivery.webhook.clone(),
                    seq: delivery.seq,
                    bytes,
                });
            }
            shared.memory.lock().outbox.retry_later(delivery);
        }
        RetryDecision::Retry { reason, .. } => {
            delivery.last_error = Some(format!(
                "gave up after {} attempts: {reason}",
                delivery.attempt
            ));
            crate::metrics::attempt_finished(&delivery.webhook, AttemptOutcome::Final);
            dead_letter(shared, delivery, http_status, url, false);
        }
        RetryDecision::Final { reason } => {
            delivery.last_error = Some(reason);
            crate::metrics::attempt_finished(&delivery.webhook, AttemptOutcome::Final);
            dead_letter(shared, delivery, http_status, url, orphan);
        }
    }
}

/// Moves a delivery that will not be attempted again to the dead letters, and records it. An
/// `orphan` (its webhook left the config) is logged at debug level and counted towards one
/// summary line per webhook (see [`count_orphan`]).
fn dead_letter(
    shared: &Shared,
    delivery: Delivery,
    http_status: Option<u16>,
    url: &str,
    orphan: bool,
) {
    {
        let mut st = shared.memory.lock();
        st.outbox.dead_letter(&delivery.id);
        forget_resident(&mut st, &delivery.webhook);
    }
    let reason = delivery.last_error.clone().unwrap_or_default();
    if orphan {
        tracing::debug!(
            webhook = %delivery.webhook,
            delivery_id = %delivery.id,
            error = %reason,
            "delivery of a webhook no longer in the config kept as a dead letter"
        );
        count_orphan(shared, &delivery.webhook, &reason);
    } else {
        tracing::warn!(
        webhook = %delivery.webhook,
        delivery_id = %delivery.id,
        event = delivery.event.event_type.as_ref(),
        event_id = %delivery.event.id,
        request_id = %delivery.event.request.request_id,
        attempts = delivery.attempt,
        http_status = http_status.unwrap_or(0),
        url = %url,
        status = "failed",
        error = %reason,
        "webhook delivery failed; kept as a dead letter"
        );
    }
    record(shared, &delivery, DeliveryStatus::Failed, http_status);
    crate::metrics::delivery_dead_lettered(&delivery.webhook);
    let (webhook, seq, id) = (delivery.webhook.clone(), delivery.seq, delivery.id.clone());
    let letter = DeadLetter {
        delivery,
        reason,
        at: rfc3339(now_ms()),
    };
    if let Ok(bytes) = serde_json::to_vec(&letter) {
        shared.committer.push(Write::Dead {
            webhook,
            seq,
            id,
            bytes,
        });
    }
}

/// At most one summary line per this interval for the dead-lettered deliveries of webhooks that
/// left the config.
const ORPHAN_LOG_EVERY: Duration = Duration::from_secs(60);

/// Counts a dead-lettered delivery of a webhook no longer in the config. A webhook announced
/// at start (its backlog was summarised in one line then) is not logged again; one removed
/// later by a reload gets one line at once and then at most one per [`ORPHAN_LOG_EVERY`], with
/// the count since the last.
fn count_orphan(shared: &Shared, webhook: &str, reason: &str) {
    let mut o = lock(&shared.orphans);
    if o.announced.contains(webhook) {
        return;
    }
    *o.counts.entry(webhook.to_string()).or_default() += 1;
    let due = o.last_log.is_none_or(|t| t.elapsed() >= ORPHAN_LOG_EVERY);
    if !due {
        return;
    }
    o.last_log = Some(std::time::Instant::now());
    for (name, n) in o.counts.drain() {
        tracing::warn!(
            webhook = %name,
            dead_lettered = n,
            "{reason}: {n} of its deliveries moved to the dead letters (replay them once it is back, or purge); at most one such line a minute"
        );
    }
}

/// At start, one line per webhook whose backlog is in the spool but which is not in the
/// config (or disabled): its pending deliveries are moved to the dead letters as they come up,
/// without a line each.
pub(super) fn announce_orphans(
    shared: &Shared,
    rt: &crate::snapshot::Snapshot,
    spool: &crate::events::spool::Spool,
    on_disk: &[(String, u64, u64)],
) {
    for (name, _, _) in on_disk {
        let known = rt
            .webhooks
            .get(name)
            .map(|w| w.enabled)
            .or_else(|| rt.sinks.get(name).map(|s| s.enabled));
        let state = match known {
            Some(true) => continue,
            Some(false) => "disabled in",
            None => "not in",
        };
        let pending = spool.pending_of(name).unwrap_or(0);
        tracing::warn!(
            webhook = %name,
            pending,
            "webhook `{name}` is {state} the config: its {pending} pending deliveries in the spool are moved to the dead letters (one line for all of them; replay them once it is back with `userhook deadletter replay --all`, or purge)"
        );
        lock(&shared.orphans).announced.insert(name.clone());
    }
}
