//! `userhook tail`: a running instance's detected events and delivery outcomes, live, one line
//! each (or the feed's JSON with `--json`), from the admin API's `GET /events`.
//!
//! It finds the instance as `userhook deadletter` does (`admin.listen` and `admin.token` of
//! the config) unless `--admin URL` names it, with the token from `USERHOOK_ADMIN_TOKEN` when
//! that is set. When the connection drops (a restart, a proxy's idle timeout, a network blip)
//! it reconnects with `Last-Event-ID`, so the instance resumes where it stopped, after waiting
//! [`FIRST_RETRY`] doubling to [`MAX_RETRY`] while it fails; a stream silent for [`SILENCE`]
//! (no item and no heartbeat) counts as dropped. A refusal that waiting cannot fix (a wrong
//! token, a bad filter, an instance without `/events`) ends it with the instance's reason.
//! Ctrl-C or SIGTERM ends it cleanly (exit 0).
//!
//! It prints only what the feed carries, which has no credential; it never prints the token.

pub mod format;
pub mod sse;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::event::Action;
use crate::events::live::Outcome;
use crate::snapshot::Snapshot;

/// The first wait before reconnecting.
pub const FIRST_RETRY: Duration = Duration::from_millis(250);

/// The longest wait between reconnects.
pub const MAX_RETRY: Duration = Duration::from_secs(10);

/// A stream with neither an item nor a heartbeat (every 15 s) for this long is dead.
pub const SILENCE: Duration = Duration::from_secs(45);

/// How long connecting and the response head may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What to follow and how to print it.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The config file that names the instance's admin listener and token.
    pub config: PathBuf,
    /// `--admin URL`: the admin API's base URL, instead of the config's `admin.listen`.
    pub admin: Option<String>,
    /// `USERHOOK_ADMIN_TOKEN`, when set: the token, instead of the config's `admin.token`.
    pub token: Option<String>,
    /// Only these actions.
    pub actions: Vec<Action>,
    /// Only events about these users (`ID`, `Email` or `Name`).
    pub users: Vec<String>,
    /// Only deliveries to these webhooks, and events dispatched to them.
    pub webhooks: Vec<String>,
    /// Only delivery outcomes of these kinds.
    pub outcomes: Vec<Outcome>,
    /// Start with the last N items the instance kept.
    pub replay: Option<usize>,
    /// The feed's JSON, one object a line, instead of text lines.
    pub json: bool,
}

/// Why tail stopped before it was asked to; the text is for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TailError {
    /// The config could not be read, or names no reachable admin listener.
    #[error("{0}")]
    Config(String),
    /// The instance refused in a way reconnecting cannot fix.
    #[error("{0}")]
    Refused(String),
}

/// Where to connect and with what.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    base: String,
    token: Option<String>,
}

/// Follows the feed until Ctrl-C/SIGTERM (`Ok`) or a refusal (`Err`), writing to `out`
/// and saying connection trouble on `err`.
pub async fn run(
    options: &Options,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> Result<(), TailError> {
    let target = target(options)?;
    tokio::select! {
        r = follow(&target, options, out, err) => r,
        _ = crate::shutdown::termination_signal() => Ok(()),
    }
}

/// The admin API to ask: `--admin`, else the config's `admin.listen`; the token from the
/// environment, else the config's.
fn target(options: &Options) -> Result<Target, TailError> {
    let load = || {
        Snapshot::load(&options.config, None)
            .map_err(|e| TailError::Config(format!("{}: {e}", options.config.display())))
    };
    let (base, config) = match &options.admin {
        Some(url) => (base_url(url)?, None),
        None => {
            let rt = load()?;
            let addr = crate::events::deadletter::admin_address(rt.admin_listen).ok_or_else(|| {
                TailError::Config(format!(
                    "admin.listen ({}) has no fixed port to connect to; give the admin API with --admin http://HOST:PORT",
                    rt.admin_listen
                ))
            })?;
            (format!("http://{addr}"), Some(rt))
        }
    };
    let token = match (&options.token, config) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(rt)) => rt.file.admin.token.clone(),
        // `--admin` without the environment's token: the config's, when it can be read.
        (None, None) => load().ok().and_then(|rt| rt.file.admin.token.clone()),
    };
    Ok(Target { base, token })
}

/// `http://host:port` from `--admin` (a trailing slash or path dropped).
fn base_url(url: &str) -> Result<String, TailError> {
    let parsed = url::Url::parse(url).map_err(|e| {
        TailError::Config(format!(
            "--admin {url}: {e}; expected the admin API's base URL, e.g. http://127.0.0.1:9090"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(TailError::Config(format!(
            "--admin {url}: expected an http:// or https:// URL, e.g. http://127.0.0.1:9090"
        )));
    }
    Ok(parsed.origin().ascii_serialization())
}

/// `/events?...` for the filters; `replay` only when there is no id to resume from.
fn events_url(base: &str, options: &Options, resuming: bool) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    let join = |v: Vec<&str>| v.join(",");
    if !options.actions.is_empty() {
        q.append_pair(
            "action",
            &join(options.actions.iter().map(Action::as_str).collect()),
        );
    }
    if !options.users.is_empty() {
        q.append_pair(
            "user",
            &join(options.users.iter().map(String::as_str).collect()),
        );
    }
    if !options.webhooks.is_empty() {
        q.append_pair(
            "webhook",
            &join(options.webhooks.iter().map(String::as_str).collect()),
        );
    }
    if !options.outcomes.is_empty() {
        q.append_pair(
            "outcome",
            &join(options.outcomes.iter().map(|o| o.as_str()).collect()),
        );
    }
    if let (Some(n), false) = (options.replay, resuming) {
        q.append_pair("replay", &n.to_string());
    }
    let q = q.finish();
    if q.is_empty() {
        format!("{base}/events")
    } else {
        format!("{base}/events?{q}")
    }
}

/// How one connection ended.
enum Ended {
    /// Worth reconnecting; `heard` says the stream had started (the wait starts afresh).
    Dropped { reason: String, heard: bool },
    /// Stop: the instance refused.
    Refused(String),
    /// Stop: our output is gone (a closed pipe).
    OutputClosed,
}

/// Connects, prints, reconnects, until refused.
async fn follow(
    target: &Target,
    options: &Options,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> Result<(), TailError> {
    // The webhook client's TLS provider: `--admin https://…` works like any other client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(|e| TailError::Config(format!("cannot build the HTTP client: {e}")))?;
    let mut last_id: Option<String> = None;
    let mut wait = FIRST_RETRY;
    let mut connected_before = false;
    loop {
        match connect_once(
            &client,
            target,
            options,
            &mut last_id,
            out,
            err,
            connected_before,
        )
        .await
        {
            Ended::Refused(reason) => return Err(TailError::Refused(reason)),
            Ended::OutputClosed => return Ok(()),
            Ended::Dropped { reason, heard } => {
                if heard {
                    wait = FIRST_RETRY;
                    connected_before = true;
                }
                let _ = writeln!(
                    err,
                    "userhook tail: {reason}; reconnecting in {}",
                    humantime::format_duration(wait)
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_RETRY);
            }
        }
    }
}

/// One connection: the request, then items until it ends.
async fn connect_once(
    client: &reqwest::Client,
    target: &Target,
    options: &Options,
    last_id: &mut Option<String>,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
    reconnect: bool,
) -> Ended {
    let url = events_url(&target.base, options, last_id.is_some());
    let mut req = client
        .get(&url)
        .header(reqwest::header::ACCEPT, "text/event-stream");
    if let Some(t) = &target.token {
        req = req.bearer_auth(t);
    }
    if let Some(id) = last_id.as_deref() {
        req = req.header("last-event-id", id);
    }
    let resp = match tokio::time::timeout(CONNECT_TIMEOUT, req.send()).await {
        Err(_) => {
            return Ended::Dropped {
                reason: format!("{} did not answer within {CONNECT_TIMEOUT:?}", target.base),
                heard: false,
            }
        }
        Ok(Err(e)) => {
            return Ended::Dropped {
                reason: format!("cannot reach {}: {}", target.base, error_chain(&e)),
                heard: false,
            }
        }
        Ok(Ok(r)) => r,
    };
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        let reason = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "no reason given".into());
        let said = format!("{} answered {status}: {reason}", target.base);
        return match status.as_u16() {
            401 if target.token.is_none() => Ended::Refused(format!(
                "{said} (set USERHOOK_ADMIN_TOKEN, or admin.token in the config)"
            )),
            404 => Ended::Refused(format!(
                "{said} (this instance has no live feed: is it an older userhook?)"
            )),
            // Too many streams, an instance starting or stopping: worth another try.
            408 | 429 | 500..=599 => Ended::Dropped {
                reason: said,
                heard: false,
            },
            _ => Ended::Refused(said),
        };
    }
    if reconnect {
        let from = last_id
            .as_deref()
            .unwrap_or("now (nothing was received before)");
        let _ = writeln!(
            err,
            "userhook tail: reconnected to {}, resuming after {from}",
            target.base
        );
    }
    let mut resp = resp;
    let mut parser = sse::Parser::new(last_id.clone());
    let mut heard = false;
    loop {
        let chunk = match tokio::time::timeout(SILENCE, resp.chunk()).await {
            Err(_) => {
                return Ended::Dropped {
                    reason: format!("nothing from {} for {SILENCE:?}", target.base),
                    heard,
                }
            }
            Ok(Err(e)) => {
                return Ended::Dropped {
                    reason: format!("the stream from {} broke: {}", target.base, error_chain(&e)),
                    heard,
                }
            }
            Ok(Ok(None)) => {
                return Ended::Dropped {
                    reason: format!("{} closed the stream", target.base),
                    heard,
                }
            }
            Ok(Ok(Some(c))) => c,
        };
        heard = true;
        let events = match parser.feed(&chunk) {
            Ok(evs) => evs,
            Err(e) => return Ended::Refused(format!("{}: {e}", target.base)),
        };
        for ev in events {
            if print(&ev, options.json, out).is_err() {
                return Ended::OutputClosed;
            }
        }
        *last_id = parser.last_id().map(str::to_owned);
    }
}

/// Writes one item (skipping kinds this version does not know); an error means the output
/// is gone.
fn print(ev: &sse::Event, json: bool, out: &mut (dyn Write + Send)) -> std::io::Result<()> {
    let Ok(data) = serde_json::from_str::<serde_json::Value>(&ev.data) else {
        return Ok(());
    };
    let line = if json {
        // One object a line, as the instance sent it (the feed's JSON has no raw newline).
        Some(data.to_string())
    } else {
        format::line(&ev.event, &data)
    };
    if let Some(line) = line {
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    Ok(())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_the_filters_and_replay_only_on_a_fresh_start() {
        let o = Options {
            actions: vec![Action::Created, Action::LoginFailed],
            users: vec!["a+b@x.io".into(), "42".into()],
            webhooks: vec!["ops".into()],
            outcomes: vec![Outcome::Dead],
            replay: Some(20),
            ..Options::default()
        };
        assert_eq!(
            events_url("http://h:1", &o, false),
            "http://h:1/events?action=created%2Clogin_failed&user=a%2Bb%40x.io%2C42&webhook=ops&outcome=dead&replay=20"
        );
        assert!(!events_url("http://h:1", &o, true).contains("replay"));
        assert_eq!(
            events_url("http://h:1", &Options::default(), false),
            "http://h:1/events"
        );
    }

    #[test]
    fn admin_urls() {
        assert_eq!(
            base_url("http://127.0.0.1:9090/").unwrap(),
            "http://127.0.0.1:9090"
        );
        assert_eq!(
            base_url("https://admin.svc:9443/x/y").unwrap(),
            "https://admin.svc:9443"
        );
        for bad in ["127.0.0.1:9090", "ftp://h/", "nonsense"] {
            let e = base_url(bad).unwrap_err().to_string();
            assert!(e.contains("expected"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_environment_token_wins_and_a_missing_config_is_said() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.yaml");
        std::fs::write(
            &path,
            "upstream: http://127.0.0.1:1\nadmin:\n  listen: 0.0.0.0:9191\n  token: from-config-0123456789abcdef\n",
        )
        .unwrap();
        let o = Options {
            config: path.clone(),
            ..Options::default()
        };
        assert_eq!(
            target(&o).unwrap(),
            Target {
                base: "http://127.0.0.1:9191".into(),
                token: Some("from-config-0123456789abcdef".into())
            }
        );
        let o = Options {
            config: path.clone(),
            admin: Some("http://10.1.2.3:1".into()),
            token: Some("from-env".into()),
            ..Options::default()
        };
        assert_eq!(
            target(&o).unwrap(),
            Target {
                base: "http://10.1.2.3:1".into(),
                token: Some("from-env".into())
            }
        );
        let missing = Options {
            config: dir.path().join("nope.yaml"),
            ..Options::default()
        };
        let e = target(&missing).unwrap_err().to_string();
        assert!(e.contains("nope.yaml"), "{e}");
        // --admin works without a readable config (and without a token then).
        let o = Options {
            config: dir.path().join("nope.yaml"),
            admin: Some("http://127.0.0.1:2".into()),
            ..Options::default()
        };
        assert_eq!(target(&o).unwrap().token, None);
    }
}
