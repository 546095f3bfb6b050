//! `userhook deadletter list | show ID | replay [ID|--all|--webhook W --since T --until T] |
//! purge`, `userhook deliveries` and `userhook deliveries resend [--webhook W] [--since T]
//! [--until T]`:
//! the operator's view of the spool, on a running or a stopped instance.
//!
//! A running userhook holds the spool file's exclusive lock, so these commands first ask its
//! admin API (`admin.listen` from the config); when nothing answers there, they open the spool
//! file directly. When neither works they say why, naming both. On a stopped spool, `replay`
//! is [`replay::dead_letters_offline`], the replay the running engine uses too. They never
//! print a secret (the spool stores events, not rendered requests), and they never touch the
//! file of an instance that runs (its lock refuses them; they ask its admin API instead).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::events::clock::now_ms;
use crate::events::records::{DeadLetter, DeliveryRecord, DeliveryStatus};
use crate::events::replay::{self, Replay, ReplayError, Window, WriteBackError};
use crate::events::spool::{self, Spool, SpoolError, Write, SPOOL_FILE};
use crate::snapshot::Snapshot;

/// How long the admin API may take to answer before the file is tried.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Dead letters listed at most.
const LIST_LIMIT: usize = 1000;

/// What to do with the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpoolCommand {
    /// Dead letters, newest first.
    List,
    /// One dead letter in full.
    Show(String),
    /// One dead letter (`Some(id)`), those in a window, or all of them back into pending.
    Replay(Option<String>, WindowArgs),
    /// Kept successful deliveries in a window sent again (`delivery.retain_delivered`).
    Resend(WindowArgs),
    /// Drop every dead letter.
    Purge,
    /// The last delivery outcomes, newest first, optionally of one status.
    Deliveries(Option<DeliveryStatus>),
}

/// A time window as written on the command line: passed on as written to a running instance
/// (its clock reads `24h`), parsed here for a stopped spool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowArgs {
    /// `--webhook`.
    pub webhook: Option<String>,
    /// `--since`: RFC 3339 or a span back from now (`24h`).
    pub since: Option<String>,
    /// `--until`: RFC 3339 or a span back from now.
    pub until: Option<String>,
}

impl WindowArgs {
    /// True when no bound was given.
    pub fn is_empty(&self) -> bool {
        self.webhook.is_none() && self.since.is_none() && self.until.is_none()
    }

    /// The window, read with this machine's clock.
    pub fn parse(&self) -> Result<Window, String> {
        Window::parse(
            self.webhook.as_deref(),
            self.since.as_deref(),
            self.until.as_deref(),
            now_ms(),
        )
    }

    /// `&webhook=..&since=..&until=..` for the admin API (each percent-encoded).
    fn query(&self) -> String {
        let mut out = String::new();
        for (k, v) in [
            ("webhook", &self.webhook),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if let Some(v) = v {
                out.push_str(&format!("&{k}={}", encode(v)));
            }
        }
        out
    }
}

/// Why a command failed; the text is for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError(pub String);

/// Runs `command` against the instance configured in `config`; returns what to print.
pub async fn run(config: &Path, command: &SpoolCommand) -> Result<String, CommandError> {
    if let SpoolCommand::Replay(_, w) | SpoolCommand::Resend(w) = command {
        w.parse().map_err(CommandError)?;
    }
    let rt = Snapshot::load(config, None)
        .map_err(|e| CommandError(format!("{}: {e}", config.display())))?;
    let dir = spool::resolve_dir(config, &rt.file.delivery.spool_dir);
    let admin = admin_address(rt.admin_listen);
    let api_error = match admin {
        Some(addr) => match via_admin(addr, rt.file.admin.token.as_deref(), command).await {
            Ok(text) => return Ok(text),
            Err(Via::Answered(e)) => return Err(CommandError(e)),
            Err(Via::Unreachable(e)) => {
                format!("the admin API at http://{addr} did not answer ({e})")
            }
        },
        None => format!(
            "admin.listen ({}) has no fixed port to ask",
            rt.admin_listen
        ),
    };
    offline(&dir, command).map_err(|e| {
        CommandError(format!(
            "{api_error}, and the spool file cannot be opened: {e}{}",
            if e.is_locked() {
                " (a running userhook holds it; is its admin.listen different from this config's?)"
            } else {
                ""
            }
        ))
    })
}

/// Where to reach the admin API: an unspecified bind address is reached on loopback; port 0
/// cannot be reached at all. (`userhook tail` finds the instance the same way.)
pub fn admin_address(listen: SocketAddr) -> Option<SocketAddr> {
    if listen.port() == 0 {
        return None;
    }
    let ip = if listen.ip().is_unspecified() {
        match listen.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        }
    } else {
        listen.ip()
    };
    Some(SocketAddr::new(ip, listen.port()))
}

enum Via {
    /// Nobody answered: try the file.
    Unreachable(String),
    /// The instance answered with an error: report it.
    Answered(String),
}

/// Asks the admin API; sends `admin.token` when the config has one, and marks changes as
/// JSON requests (the admin API refuses simple, form-like POSTs as cross-site protection).
async fn via_admin(
    addr: SocketAddr,
    token: Option<&str>,
    command: &SpoolCommand,
) -> Result<String, Via> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(ADMIN_TIMEOUT)
        .no_proxy()
        .build()
        .map_err(|e| Via::Unreachable(e.to_string()))?;
    let base = format!("http://{addr}");
    let (post, path) = match command {
        SpoolCommand::List => (false, format!("/deadletters?limit={LIST_LIMIT}")),
        SpoolCommand::Show(id) => (false, format!("/deadletters/{}", encode(id))),
        SpoolCommand::Replay(Some(id), _) => {
            (true, format!("/deadletters/replay?id={}", encode(id)))
        }
        SpoolCommand::Replay(None, w) => (
            true,
            format!("/deadletters/replay?{}", w.query().trim_start_matches('&')),
        ),
        SpoolCommand::Resend(w) => (
            true,
            format!("/deliveries/resend?{}", w.query().trim_start_matches('&')),
        ),
        SpoolCommand::Purge => (true, "/deadletters/purge".to_string()),
        SpoolCommand::Deliveries(None) => (false, "/deliveries".to_string()),
        SpoolCommand::Deliveries(Some(s)) => {
            (false, format!("/deliveries?status={}", status_name(*s)))
        }
    };
    let url = format!("{base}{path}");
    let mut req = if post {
        client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body("{}")
    } else {
        client.get(&url)
    };
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| Via::Unreachable(error_chain(&e)))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| Via::Unreachable(error_chain(&e)))?;
    let body: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        Via::Answered(format!(
            "the admin API at {base} answered {status} with no JSON: {e}"
        ))
    })?;
    if !status.is_success() {
        let msg = body["error"]
            .as_str()
            .unwrap_or("no reason given")
            .to_string();
        // An admin API without these endpoints is not a userhook that has a spool: say so.
        return Err(Via::Answered(format!("{base} answered {status}: {msg}")));
    }
    fn parse<T: serde::de::DeserializeOwned>(v: serde_json::Value, base: &str) -> Result<T, Via> {
        serde_json::from_value(v)
            .map_err(|e| Via::Answered(format!("unexpected answer from {base}: {e}")))
    }
    Ok(match command {
        SpoolCommand::List => {
            let letters: Vec<DeadLetter> = parse(body["dead_letters"].clone(), &base)?;
            format_letters(&letters, "running instance")
        }
        SpoolCommand::Show(_) => {
            let letter: DeadLetter = parse(body, &base)?;
            pretty(&letter)
        }
        SpoolCommand::Replay(..) => format!(
            "{} dead letter(s) replayed by the running instance.\n",
            body["replayed"].as_u64().unwrap_or(0)
        ),
        SpoolCommand::Resend(_) => resent_text(
            body["resent"].as_u64().unwrap_or(0),
            body["retained"].as_bool().unwrap_or(true),
            "by the running instance",
        ),
        SpoolCommand::Purge => format!(
            "{} dead letter(s) purged by the running instance.\n",
            body["purged"].as_u64().unwrap_or(0)
        ),
        SpoolCommand::Deliveries(_) => {
            let records: Vec<DeliveryRecord> = parse(body["deliveries"].clone(), &base)?;
            format_records(&records, "running instance")
        }
    })
}

/// Why the spool file of a stopped instance could not serve a command.
#[derive(Debug, thiserror::Error)]
enum OfflineError {
    /// No spool file where the config says: nothing was ever spooled there.
    #[error("there is no spool at {}", .0.display())]
    NoSpool(PathBuf),
    /// The file could not be opened, read or written.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// `show ID` of an id with no dead letter.
    #[error("no dead letter with id `{id}` in {}", .file.display())]
    NotIn { id: String, file: PathBuf },
    /// `replay ID` of an id with no dead letter.
    #[error("no dead letter with id `{0}`")]
    NotFound(String),
    /// A replayed delivery could not be encoded (plain strings and numbers: a guard).
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
    /// `--since`/`--until` do not make a window.
    #[error("{0}")]
    Window(String),
}

impl From<ReplayError<WriteBackError>> for OfflineError {
    fn from(e: ReplayError<WriteBackError>) -> Self {
        match e {
            ReplayError::NotFound(id) => OfflineError::NotFound(id),
            ReplayError::Read(e)
            | ReplayError::Stopped {
                cause: WriteBackError::Spool(e),
                ..
            } => OfflineError::Spool(e),
            ReplayError::Stopped {
                cause: WriteBackError::Encode(e),
                ..
            } => OfflineError::Encode(e),
        }
    }
}

impl OfflineError {
    /// A running userhook holds the file: worth saying which admin API to ask.
    fn is_locked(&self) -> bool {
        matches!(self, OfflineError::Spool(e) if e.is_locked())
    }
}

/// Works on the spool file of a stopped instance.
fn offline(dir: &Path, command: &SpoolCommand) -> Result<String, OfflineError> {
    let file: PathBuf = dir.join(SPOOL_FILE);
    if !file.exists() {
        return Err(OfflineError::NoSpool(file));
    }
    let spool = Spool::open(dir)?;
    let source = format!("spool file {}", file.display());
    match command {
        SpoolCommand::List => {
            let letters = spool.dead_letters(LIST_LIMIT)?;
            Ok(format_letters(&letters, &source))
        }
        SpoolCommand::Show(id) => match spool.dead_letter(id)? {
            Some(letter) => Ok(pretty(&letter)),
            None => Err(OfflineError::NotIn {
                id: id.clone(),
                file,
            }),
        },
        SpoolCommand::Resend(w) => {
            let window = w.parse().map_err(OfflineError::Window)?;
            let n = replay::delivered_offline(&spool, &window)?;
            Ok(resent_text(
                n,
                true,
                &format!(
                    "into pending in {}; they are sent when userhook starts",
                    file.display()
                ),
            ))
        }
        SpoolCommand::Replay(which, w) => {
            let which = match which {
                Some(id) => Replay::One(id.clone()),
                None if w.is_empty() => Replay::All,
                None => Replay::Window(w.parse().map_err(OfflineError::Window)?),
            };
            let n = replay::dead_letters_offline(&spool, &which)?;
            Ok(format!(
                "{n} dead letter(s) moved back to pending in {}; they are delivered when userhook starts.\n",
                file.display()
            ))
        }
        SpoolCommand::Purge => {
            let purged = spool.apply(&[Write::PurgeDead])?.purged;
            Ok(format!(
                "{purged} dead letter(s) purged from {}.\n",
                file.display()
            ))
        }
        SpoolCommand::Deliveries(status) => {
            let mut records = spool.records(usize::MAX)?;
            records.reverse();
            records.retain(|r| status.is_none_or(|s| r.status == s));
            Ok(format_records(&records, &source))
        }
    }
}

/// What `deliveries resend` says: how many, and why none when nothing is kept.
fn resent_text(n: u64, retained: bool, how: &str) -> String {
    let mut out = format!("{n} delivered deliveries re-sent {how} (same webhook-id).\n");
    if n == 0 && !retained {
        out.push_str(
            "Nothing is kept to re-send: delivery.retain_delivered.count is 0 (set it to keep \
             successful deliveries for a while).\n",
        );
    }
    out
}

fn format_letters(letters: &[DeadLetter], source: &str) -> String {
    let mut out = format!(
        "{} dead letter(s), newest first ({source}):\n",
        letters.len()
    );
    for l in letters {
        let d = &l.delivery;
        out.push_str(&format!(
            "{}  {}  {}  user={}  attempts={}  at={}  {}\n",
            d.id,
            d.webhook,
            d.event.event_type,
            d.user_id().unwrap_or("-"),
            d.attempt,
            l.at,
            l.reason
        ));
    }
    out
}

fn format_records(records: &[DeliveryRecord], source: &str) -> String {
    let mut out = format!(
        "{} delivery record(s), newest first ({source}):\n",
        records.len()
    );
    for r in records {
        out.push_str(&format!(
            "{}  {}  {}  {}  user={}  attempts={}  http={}  updated={}{}\n",
            r.delivery_id,
            status_name(r.status),
            r.webhook,
            r.event_type,
            if r.user_id.is_empty() {
                "-"
            } else {
                &r.user_id
            },
            r.attempts,
            r.last_http_status
                .map_or("-".to_string(), |s| s.to_string()),
            r.updated_at,
            r.last_error
                .as_deref()
                .map(|e| format!("  error: {e}"))
                .unwrap_or_default()
        ));
    }
    out
}

fn pretty<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).map_or_else(|e| format!("cannot show: {e}\n"), |s| s + "\n")
}

fn status_name(s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Successful => "successful",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::Retrying => "retrying",
    }
}

/// What is percent-encoded in an id: all but letters, digits, `-` and `_` (UUIDs pass as
/// they are; nothing else can change the path or query).
const ID_ENCODE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_');

/// An id as a path segment or query value.
pub(crate) fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, ID_ENCODE).to_string()
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
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
    fn admin_address_reaches_loopback_and_skips_port_zero() {
        let parse = |s: &str| s.parse::<SocketAddr>().expect("addr");
        assert_eq!(
            admin_address(parse("0.0.0.0:9090")),
            Some(parse("127.0.0.1:9090"))
        );
        assert_eq!(admin_address(parse("[::]:9090")), Some(parse("[::1]:9090")));
        assert_eq!(
            admin_address(parse("10.0.0.1:9090")),
            Some(parse("10.0.0.1:9090"))
        );
        assert_eq!(admin_address(parse("127.0.0.1:0")), None);
    }

    #[test]
    fn a_spool_held_by_a_running_instance_is_told_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = offline(dir.path(), &SpoolCommand::List).expect_err("no spool yet");
        assert!(!missing.is_locked(), "{missing}");
        assert!(missing.to_string().starts_with("there is no spool at "));
        let held = Spool::open(dir.path()).expect("open");
        let e = offline(dir.path(), &SpoolCommand::List).expect_err("locked");
        assert!(e.is_locked(), "{e}");
        drop(held);
        let listed = offline(dir.path(), &SpoolCommand::List).expect("list");
        assert!(listed.starts_with("0 dead letter(s)"), "{listed}");
    }

    #[test]
    fn ids_cannot_escape_the_path() {
        assert_eq!(encode("0192-ab_c"), "0192-ab_c");
        assert_eq!(encode("../x?y"), "%2E%2E%2Fx%3Fy");
    }
}
