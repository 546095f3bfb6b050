//! One attempt and its outcome: render and send with the webhook's *current* config (looked up
//! by name at each attempt, so a reload applies to pending deliveries), then deliver, retry
//! later or dead-letter, keeping the spool and the records in step. Never logs a body, a
//! header, a secret or a URL query ([`loggable_url`]).

use std::sync::Arc;
use std::time::Duration;

use super::state::{forget_resident, lock, Shared};
use crate::events::attempt::{self, RenderedRequest};
use crate::events::clock::now_ms;
use crate::events::live::Outcome;
use crate::events::outbox::Delivery;
use crate::events::records::{rfc3339, DeadLetter, DeliveryRecord, DeliveryStatus};
use crate::events::retry::Backoff;
use crate::events::retry::{decide, AttemptResult, RetryDecision};
use crate::events::spool::{Retain, Write};
use crate::metrics::AttemptOutcome;
use crate::sink::Sink;

/// One attempt of one delivery, from rendering to recording its outcome.
pub(super) async fn run_attempt(shared: Arc<Shared>, mut delivery: Delivery) {
    let rt = shared.runtime.load_full();
    if let Some(sink) = rt.sinks.get(&delivery.webhook).cloned() {
        drop(rt);
        return run_sink_attempt(shared, delivery, sink).await;
    }
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
        Some(w) => match attempt::render(w, &delivery.id, &delivery.event, attempt::unix_now()) {
            // Nothing is sent to a URL the event does not fill: the delivery fails, with the
            // reason in its dead letter, its record and the log.
            Err(e) => (
                RetryDecision::Final {
                    reason: e.to_string(),
                },
                None,
                String::new(),
            ),
            Ok(request) => {
                let request: RenderedRequest = request;
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
        },
    };
    drop(rt);
    let max_attempts = webhook.as_ref().map_or(1, |w| w.attempts);
    let backoff = webhook.as_ref().map(|w| w.backoff);
    let orphan = !webhook.as_ref().is_some_and(|w| w.enabled);
    finish(
        &shared,
        delivery,
        decision,
        (http_status, &url),
        max_attempts,
        backoff,
        orphan,
    );
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
    finish(
        &shared,
        delivery,
        decision,
        (None, &servers),
        sink.attempts,
        Some(backoff),
        !sink.enabled,
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
/// dead letters counted in a summary line rather than logged one by one.
fn finish(
    shared: &Arc<Shared>,
    mut delivery: Delivery,
    decision: RetryDecision,
    (http_status, url): (Option<u16>, &str),
    max_attempts: u32,
    backoff: Option<Backoff>,
    orphan: bool,
) {
    {
        let mut st = shared.memory.lock();
        if let Some(n) = st.running.get_mut(&delivery.webhook) {
            *n = n.saturating_sub(1);
        }
        st.total = st.total.saturating_sub(1);
    }
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
                "webhook delivered"
            );
            record(shared, &delivery, DeliveryStatus::Successful, http_status);
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
    shared.memory.wake.notify_one();
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

/// Keeps the delivery's latest outcome, in memory for listing and in the spool for listing a
/// stopped instance, and publishes it on the live feed.
pub(super) fn record(
    shared: &Shared,
    delivery: &Delivery,
    status: DeliveryStatus,
    http: Option<u16>,
) {
    let outcome = match status {
        DeliveryStatus::Successful => Outcome::Delivered,
        DeliveryStatus::Retrying => Outcome::Retrying,
        DeliveryStatus::Failed => Outcome::Dead,
    };
    record_as(shared, delivery, status, http, outcome);
}

/// [`record`], with the live feed's outcome given (a refusal is recorded as failed but is no
/// dead letter).
pub(super) fn record_as(
    shared: &Shared,
    delivery: &Delivery,
    status: DeliveryStatus,
    http: Option<u16>,
    outcome: Outcome,
) {
    let now = now_ms();
    shared.live.delivery(delivery, outcome, http, now);
    let capacity = shared.runtime.load().file.delivery.records;
    let rec = DeliveryRecord::of(delivery, status, http, now);
    if let Ok(bytes) = serde_json::to_vec(&rec) {
        shared.committer.push(Write::Record {
            id: rec.delivery_id.clone(),
            bytes,
            keep: capacity,
        });
    }
    let mut records = lock(&shared.records);
    records.set_capacity(capacity);
    records.upsert(rec);
}

/// The URL as logs may show it: scheme, host, port and path only (no userinfo, query or
/// fragment, where keys live), with key-like path segments masked.
pub fn loggable_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            let _ = u.set_username("");
            let _ = u.set_password(None);
            // Robot URLs (Feishu, Slack) carry their key in the path: mask it as /config does.
            crate::redact::redact_url(u.as_str())
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
        assert_eq!(
            loggable_url(
                "https://open.feishu.cn/open-apis/bot/v2/hook/2f1a9c7e-55b1-4d0e-9a3c-7e1f0b2d4c6a"
            ),
            "https://open.feishu.cn/open-apis/bot/v2/hook/<redacted>"
        );
        assert_eq!(loggable_url("not a url"), "<invalid URL>");
    }
}
