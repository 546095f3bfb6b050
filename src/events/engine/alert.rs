//! What a webhook's pause or resume tells the operator: a log line, the `userhook_webhook_paused`
//! gauge, and, when `health.alert_webhook` names another webhook, a message to it carrying what
//! failed (webhook, reason, last status and error, since when, deliveries pending).
//!
//! The alert is about state that the admin API and `/metrics` also show, so it is sent
//! directly (a few tries with backoff), not spooled: a lost alert loses no event. It takes the
//! alert webhook's robot shape (a text message for WeCom, DingTalk, Feishu, Slack) or, for
//! plain HTTP, a JSON object; it is signed like any message of that webhook.

use std::sync::Arc;
use std::time::Duration;

use super::health::{Health, Transition};
use super::state::Shared;
use crate::events::attempt;
use crate::events::records::rfc3339;
use crate::webhook::Webhook;

/// Tries per alert.
const ALERT_TRIES: u32 = 3;

/// Wait after the first failed try; doubles.
const ALERT_BACKOFF: Duration = Duration::from_secs(1);

/// What an alert says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(super) struct Alert {
    /// `webhook.paused` or `webhook.resumed`.
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
    pub(super) webhook: String,
    /// Why it was paused (also on resume: what it recovered from).
    pub(super) reason: String,
    pub(super) last_status: Option<u16>,
    pub(super) last_error: Option<String>,
    /// RFC 3339: when it was paused.
    pub(super) since: String,
    /// Deliveries waiting for it.
    pub(super) pending: u64,
}

impl Alert {
    /// One line for people (robots, logs).
    pub(super) fn text(&self) -> String {
        let status = self
            .last_status
            .map_or(String::from("no reply"), |s| format!("HTTP {s}"));
        let error = self.last_error.as_deref().unwrap_or("");
        match self.kind {
            "webhook.paused" => format!(
                "[userhook] webhook `{}` paused: {}; last: {status} {error}; since {}; {} deliveries pending (kept, not dropped; probed with backoff)",
                self.webhook, self.reason, self.since, self.pending
            ),
            _ => format!(
                "[userhook] webhook `{}` resumed (paused since {} for: {}); {} deliveries pending go out now",
                self.webhook, self.since, self.reason, self.pending
            ),
        }
    }

    /// The body for a webhook of `preset`.
    pub(super) fn body(&self, preset: Option<&str>) -> Vec<u8> {
        let text = self.text();
        let doc = match preset {
            Some("wecom-text" | "wecom-markdown" | "dingtalk") => {
                serde_json::json!({"msgtype": "text", "text": {"content": text}})
            }
            Some("feishu") => serde_json::json!({"msg_type": "text", "content": {"text": text}}),
            Some("slack") => serde_json::json!({ "text": text }),
            _ => serde_json::to_value(self).unwrap_or_default(),
        };
        serde_json::to_vec(&doc).unwrap_or_default()
    }
}

/// `w`'s health changed (`transition`, now as `health`): log it, set the gauge, and alert.
pub(super) fn health_changed(
    shared: &Arc<Shared>,
    w: &Webhook,
    health: &Health,
    transition: Transition,
    now: u64,
) {
    let paused = health.paused.as_ref();
    let (kind, reason, since) = match (transition, paused) {
        (Transition::Paused, Some(p)) => ("webhook.paused", p.reason.clone(), p.since),
        (Transition::Resumed, _) => match &health.last_pause {
            Some(p) => ("webhook.resumed", p.reason.clone(), p.since),
            None => ("webhook.resumed", String::from("resumed"), now),
        },
        _ => return,
    };
    crate::metrics::webhook_paused(&w.name, kind == "webhook.paused");
    let pending = pending_of(shared, &w.name);
    let alert = Alert {
        kind,
        webhook: w.name.clone(),
        reason,
        last_status: health.last_status,
        last_error: health.last_error.clone(),
        since: rfc3339(since),
        pending,
    };
    if kind == "webhook.paused" {
        tracing::warn!(
            webhook = %w.name,
            reason = %alert.reason,
            last_status = alert.last_status.unwrap_or(0),
            pending,
            "webhook paused: its deliveries stay pending and one is sent as a probe, with backoff, until it succeeds (or `userhook webhooks resume {}`)",
            w.name
        );
    } else {
        tracing::info!(webhook = %w.name, pending, "webhook resumed");
    }
    if let Some(target) = w.health.alert_webhook.clone() {
        let shared = shared.clone();
        tokio::spawn(async move { send(&shared, &target, &alert).await });
    }
}

/// Pending deliveries of `webhook`: the spool's count, or memory's while the file is busy.
fn pending_of(shared: &Shared, webhook: &str) -> u64 {
    let spool = shared
        .spool
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    match spool {
        Some(s) if !s.is_busy() => s.pending_of(webhook).unwrap_or(0),
        _ => shared.memory.lock().outbox.count_of(webhook) as u64,
    }
}

/// Sends `alert` to the webhook `target` of the current config, a few times with backoff.
async fn send(shared: &Shared, target: &str, alert: &Alert) {
    let mut wait = ALERT_BACKOFF;
    for tried in 1..=ALERT_TRIES {
        let Some(w) = shared.runtime.load().webhooks.get(target).cloned() else {
            tracing::warn!(alert_webhook = %target, "alert webhook is no longer in the config; alert not sent");
            return;
        };
        let id = uuid::Uuid::now_v7().to_string();
        let request =
            match attempt::render_notice(&w, &id, alert.body(w.preset), attempt::unix_now()) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(alert_webhook = %target, error = %e, "alert not sent");
                    return;
                }
            };
        let verdict = match attempt::send(&shared.client, request, w.timeout).await {
            Ok(reply) => w.success.judge(reply.status, &reply.body),
            Err(e) => Err(format!("{e:?}")),
        };
        match verdict {
            Ok(()) => {
                tracing::info!(alert_webhook = %target, webhook = %alert.webhook, kind = alert.kind, "alert sent");
                return;
            }
            Err(e) if tried == ALERT_TRIES => {
                tracing::warn!(alert_webhook = %target, webhook = %alert.webhook, error = %e, "alert not sent after {ALERT_TRIES} tries");
            }
            Err(_) => {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Alert {
        Alert {
            kind: "webhook.paused",
            webhook: "ops".into(),
            reason: "10 consecutive failures".into(),
            last_status: Some(503),
            last_error: Some("HTTP 503: down".into()),
            since: "2026-12-02T12:00:00.000Z".into(),
            pending: 42,
        }
    }

    #[test]
    fn alerts_take_the_shape_of_their_target() {
        let a = alert();
        let plain: serde_json::Value = serde_json::from_slice(&a.body(None)).expect("JSON");
        assert_eq!(
            plain,
            serde_json::json!({"type": "webhook.paused", "webhook": "ops",
                "reason": "10 consecutive failures", "last_status": 503,
                "last_error": "HTTP 503: down", "since": "2026-12-02T12:00:00.000Z",
                "pending": 42})
        );
        let text = "[userhook] webhook `ops` paused: 10 consecutive failures; last: HTTP 503 HTTP 503: down; since 2026-12-02T12:00:00.000Z; 42 deliveries pending (kept, not dropped; probed with backoff)";
        let ding: serde_json::Value =
            serde_json::from_slice(&a.body(Some("dingtalk"))).expect("JSON");
        assert_eq!(ding["text"]["content"], text);
        let feishu: serde_json::Value =
            serde_json::from_slice(&a.body(Some("feishu"))).expect("JSON");
        assert_eq!(feishu["content"]["text"], text);
        let slack: serde_json::Value =
            serde_json::from_slice(&a.body(Some("slack"))).expect("JSON");
        assert_eq!(slack["text"], text);
        let resumed = Alert {
            kind: "webhook.resumed",
            ..alert()
        };
        assert!(resumed
            .text()
            .starts_with("[userhook] webhook `ops` resumed"));
    }
}
