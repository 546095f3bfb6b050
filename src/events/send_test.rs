//! `userhook send-test`: one sample event, rendered for one webhook, sent once (no retry), with
//! the request and the reply shown so an operator can see what the target gets and says. For
//! a sink, the sample is published once to its subject and the stream's verdict shown.
//!
//! The report shows the signature (it proves nothing without the secret) but never a secret:
//! URL query values and sensitive header values are masked.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::attempt::{self, ClientError, RenderedRequest, Reply};
use super::clock::now_ms;
use super::publish::Publishers;
use super::retry::{decide, RetryDecision};
use crate::event::{Action, RequestInfo, UserEvent, UserFields};
use crate::redact::{is_sensitive_header, redact_url};
use crate::sink::Sink;
use crate::snapshot::Snapshot;

/// The most of a reply body printed.
const SHOWN_REPLY_BYTES: usize = 4096;

/// What `send-test` found.
#[derive(Debug)]
pub struct SendTestReport {
    /// The printable request, reply and verdict.
    pub text: String,
    /// Whether the webhook's success check passed.
    pub delivered: bool,
}

/// Why `send-test` could not send at all.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendTestError {
    /// No webhook by that name; carries the known names.
    #[error("no webhook named `{name}`{}", known_names(known))]
    UnknownWebhook {
        /// The name asked for.
        name: String,
        /// The names the config has.
        known: Vec<String>,
    },
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The webhook's URL cannot be rendered for the sample event.
    #[error(transparent)]
    Url(#[from] crate::template::UrlRenderError),
}

/// The tail of an unknown-webhook message: what the operator could have named.
fn known_names(known: &[String]) -> String {
    if known.is_empty() {
        String::from(": the config has no webhooks")
    } else {
        format!("; known: {}", known.join(", "))
    }
}

/// The sample user: ID 42, alice, created now, enabled.
pub fn sample_event(action: Action) -> UserEvent {
    let mut user = UserFields::new();
    for (k, v) in [
        ("ID", "42"),
        ("Name", "alice"),
        ("Email", "alice@example.com"),
        ("FirstName", "Alice"),
        ("LastName", "Liddell"),
        ("Enabled", "true"),
    ] {
        user.insert(k.into(), v.into());
    }
    user.insert(
        "CreatedAt".into(),
        crate::event::rfc3339_millis(std::time::SystemTime::now()),
    );
    let request = RequestInfo {
        method: "POST".into(),
        path: "/userhook/send-test".into(),
        status: 200,
        remote_addr: "127.0.0.1".into(),
        request_id: "send-test".into(),
        user_agent: attempt::USER_AGENT.into(),
    };
    UserEvent::new(0, action, user, request, false)
}

/// Renders the sample event for `webhook_name`, sends it once and reports.
pub async fn send_test(
    rt: &Snapshot,
    webhook_name: &str,
    action: Action,
) -> Result<SendTestReport, SendTestError> {
    if let Some(sink) = rt.sinks.get(webhook_name) {
        return Ok(send_test_sink(sink, action).await);
    }
    let Some(webhook) = rt.webhooks.get(webhook_name) else {
        let mut known: Vec<String> = rt.webhooks.names().into_iter().map(String::from).collect();
        known.extend(rt.sinks.names().into_iter().map(String::from));
        return Err(SendTestError::UnknownWebhook {
            name: webhook_name.to_string(),
            known,
        });
    };
    let client = attempt::build_client()?;
    let event = sample_event(action.clone());
    let delivery = super::outbox::Delivery::new(&webhook.name, event, now_ms());
    let request = attempt::render(webhook, &delivery.id, &delivery.event, attempt::unix_now())?;

    let mut text = String::new();
    if !webhook.enabled {
        text.push_str("note: this webhook is disabled; sending anyway\n");
    }
    if !webhook.subscribes(&action) {
        let _ = writeln!(
            text,
            "note: this webhook does not subscribe to `{action}`; sending anyway"
        );
    }
    show_request(&mut text, &request);
    let sent = attempt::send(&client, request, webhook.timeout).await;
    let result = match sent {
        Ok(reply) => {
            show_reply(&mut text, &reply);
            attempt::result_of(reply)
        }
        Err(e) => {
            text.push_str("\n--- no reply\n");
            e
        }
    };
    let decision = decide(webhook.success, &result);
    let delivered = write_verdict(&mut text, decision, "delivered");
    Ok(SendTestReport { text, delivered })
}

/// Appends the verdict section; true when the target took the message.
fn write_verdict(text: &mut String, decision: RetryDecision, delivered_as: &str) -> bool {
    text.push_str("\n--- verdict\n");
    match decision {
        RetryDecision::Delivered => {
            let _ = writeln!(text, "{delivered_as}");
            true
        }
        RetryDecision::Retry { reason, .. } => {
            let _ = writeln!(text, "failed: {reason} (a real delivery would retry)");
            false
        }
        RetryDecision::Final { reason } => {
            let _ = writeln!(
                text,
                "failed: {reason} (final: a real delivery would not retry)"
            );
            false
        }
    }
}

/// Publishes the sample event once to a sink (its stream checked first) and reports.
async fn send_test_sink(sink: &Sink, action: Action) -> SendTestReport {
    let event = sample_event(action.clone());
    let delivery = super::outbox::Delivery::new(&sink.name, event, now_ms());
    let mut text = String::new();
    if !sink.enabled {
        text.push_str("note: this sink is disabled; publishing anyway\n");
    }
    if !sink.subscribes(&action) {
        let _ = writeln!(
            text,
            "note: this sink does not subscribe to `{action}`; publishing anyway"
        );
    }
    let body = serde_json::to_string(&delivery.event).unwrap_or_default();
    let _ = writeln!(
        text,
        "--- publish\nservers: {}\nsubject: {}\nNats-Msg-Id: {}\n\n{body}",
        sink.loggable_servers().join(","),
        sink.subject(&delivery.event),
        delivery.id
    );
    let publishers = Publishers::new();
    let decision = publishers
        .publish(sink, &delivery.id, &delivery.event)
        .await;
    publishers.flush_all(sink.timeout).await;
    let delivered = write_verdict(
        &mut text,
        decision,
        "delivered (the stream acknowledged it)",
    );
    SendTestReport { text, delivered }
}

fn show_request(out: &mut String, r: &RenderedRequest) {
    let _ = writeln!(
        out,
        "--- request\n{} {}",
        r.method,
        redact_url(r.url.as_str())
    );
    show_headers(out, &r.headers);
    out.push('\n');
    out.push_str(&String::from_utf8_lossy(&r.body));
    if !r.body.ends_with(b"\n") {
        out.push('\n');
    }
}

fn show_reply(out: &mut String, r: &Reply) {
    let _ = writeln!(out, "\n--- reply\nHTTP {}", r.status);
    show_headers(out, &r.headers);
    out.push('\n');
    let shown = &r.body[..r.body.len().min(SHOWN_REPLY_BYTES)];
    out.push_str(&String::from_utf8_lossy(shown));
    if r.body.len() > SHOWN_REPLY_BYTES {
        let _ = write!(out, "\n[... cut at {SHOWN_REPLY_BYTES} bytes]");
    }
    out.push('\n');
}

fn show_headers(out: &mut String, headers: &http::HeaderMap) {
    let mut sorted: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        let shown = if name.as_str() != "webhook-signature" && is_sensitive_header(name.as_str()) {
            "<redacted>".to_string()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        sorted.entry(name.as_str()).or_default().push(shown);
    }
    for (name, values) in sorted {
        for v in values {
            let _ = writeln!(out, "{name}: {v}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_event_is_alice() {
        let ev = sample_event(Action::Deleted);
        assert_eq!(ev.event_type, "user.deleted");
        assert_eq!(ev.user["ID"], "42");
        assert_eq!(ev.user["Name"], "alice");
        assert_eq!(ev.user["Email"], "alice@example.com");
        assert_eq!(ev.user["FirstName"], "Alice");
        assert_eq!(ev.user["LastName"], "Liddell");
        assert_eq!(ev.user["Enabled"], "true");
        assert!(ev.user["CreatedAt"].ends_with('Z'));
    }

    #[test]
    fn headers_are_shown_without_secrets() {
        let mut h = http::HeaderMap::new();
        h.insert("authorization", "Bearer T0K".parse().expect("hv"));
        h.insert("webhook-signature", "v1,abc".parse().expect("hv"));
        h.insert("x-source", "iam".parse().expect("hv"));
        let mut out = String::new();
        show_headers(&mut out, &h);
        assert_eq!(
            out,
            "authorization: <redacted>\nwebhook-signature: v1,abc\nx-source: iam\n"
        );
    }

    #[test]
    fn unknown_webhook_lists_known_names() {
        let e = SendTestError::UnknownWebhook {
            name: "x".into(),
            known: vec!["a".into(), "b".into()],
        };
        assert_eq!(e.to_string(), "no webhook named `x`; known: a, b");
        let none = SendTestError::UnknownWebhook {
            name: "x".into(),
            known: Vec::new(),
        };
        assert_eq!(
            none.to_string(),
            "no webhook named `x`: the config has no webhooks"
        );
    }
}
