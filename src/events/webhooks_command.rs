//! `userhook webhooks [list]` and `userhook webhooks resume NAME`: each webhook's health and
//! pace, and resuming a paused one, through the running instance's admin API (`admin.listen`
//! of the config, with `admin.token` when it has one). Health lives in the running instance's
//! memory, so unlike `deadletter` there is no offline fallback: with nothing answering, the
//! command says so.

use std::path::Path;
use std::time::Duration;

use crate::events::deadletter::{admin_address, encode, error_chain, CommandError};
use crate::events::engine::WebhookState;
use crate::snapshot::Snapshot;

/// How long the admin API may take to answer.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhooksCommand {
    /// Every webhook's state.
    List,
    /// Resume the named webhook.
    Resume(String),
}

/// Runs `command` against the instance configured in `config`; returns what to print.
pub async fn run(config: &Path, command: &WebhooksCommand) -> Result<String, CommandError> {
    let rt = Snapshot::load(config, None)
        .map_err(|e| CommandError(format!("{}: {e}", config.display())))?;
    let Some(addr) = admin_address(rt.admin_listen) else {
        return Err(CommandError(format!(
            "admin.listen ({}) has no fixed port to ask; webhook health lives in the running instance",
            rt.admin_listen
        )));
    };
    let base = format!("http://{addr}");
    let client = reqwest::Client::builder()
        .timeout(ADMIN_TIMEOUT)
        .no_proxy()
        .build()
        .map_err(|e| CommandError(error_chain(&e)))?;
    let mut req = match command {
        WebhooksCommand::List => client.get(format!("{base}/webhooks")),
        WebhooksCommand::Resume(name) => client
            .post(format!("{base}/webhooks/{}/resume", encode(name)))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body("{}"),
    };
    if let Some(token) = rt.file.admin.token.as_deref() {
        req = req.bearer_auth(token);
    }
    let unreachable = |e: reqwest::Error| {
        CommandError(format!(
            "the admin API at {base} did not answer ({}); is userhook running with this config? Webhook health lives in the running instance",
            error_chain(&e)
        ))
    };
    let resp = req.send().await.map_err(unreachable)?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(unreachable)?;
    let body: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| CommandError(format!("{base} answered {status} with no JSON: {e}")))?;
    if !status.is_success() {
        let msg = body["error"].as_str().unwrap_or("no reason given");
        return Err(CommandError(format!("{base} answered {status}: {msg}")));
    }
    match command {
        WebhooksCommand::List => {
            let states: Vec<WebhookState> = serde_json::from_value(body["webhooks"].clone())
                .map_err(|e| CommandError(format!("unexpected answer from {base}: {e}")))?;
            Ok(format_states(&states))
        }
        WebhooksCommand::Resume(name) => Ok(format!("webhook `{name}` resumed.\n")),
    }
}

/// One line per webhook: name, state, pending, rate, and for a paused one why and since when.
pub fn format_states(states: &[WebhookState]) -> String {
    let mut out = format!("{} webhook(s):\n", states.len());
    for s in states {
        out.push_str(&format!(
            "{}  {}  pending={}  rate={}  failures={}",
            s.name,
            s.state,
            s.pending,
            s.rate.as_deref().unwrap_or("none"),
            s.consecutive_failures
        ));
        if let Some(reason) = &s.reason {
            out.push_str(&format!(
                "  reason=\"{reason}\"  since={}  next_probe={}",
                s.paused_since.as_deref().unwrap_or("?"),
                s.next_probe.as_deref().unwrap_or("?")
            ));
        }
        if let Some(until) = &s.rate_limited_until {
            out.push_str(&format!("  rate_limited_until={until}"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_listed_one_per_line() {
        let paused = WebhookState {
            name: "ops".into(),
            state: "paused".into(),
            reason: Some("410 Gone".into()),
            consecutive_failures: 1,
            paused_since: Some("2026-12-02T12:00:00.000Z".into()),
            next_probe: Some("2026-12-02T12:00:30.000Z".into()),
            rate: None,
            rate_limited_until: None,
            last_status: Some(410),
            last_error: Some("HTTP 410".into()),
            pending: 3,
        };
        let active = WebhookState {
            name: "robot".into(),
            state: "active".into(),
            reason: None,
            consecutive_failures: 0,
            paused_since: None,
            next_probe: None,
            rate: Some("20/min".into()),
            rate_limited_until: None,
            last_status: None,
            last_error: None,
            pending: 0,
        };
        assert_eq!(
            format_states(&[paused, active]),
            "2 webhook(s):\nops  paused  pending=3  rate=none  failures=1  reason=\"410 Gone\"  since=2026-12-02T12:00:00.000Z  next_probe=2026-12-02T12:00:30.000Z\nrobot  active  pending=0  rate=20/min  failures=0\n"
        );
    }
}
