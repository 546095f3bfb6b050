//! The front door's limits: how the connection builder bounds each client (head size,
//! HTTP/2 stream and reset limits), how many connections may be open at once, how
//! accept failures back off and are logged, and which request heads are refused at the edge
//! (`Host` rules, `CONNECT`), as nginx and HAProxy refuse them.
//!
//! Everything here runs per connection or per failed `accept`, except [`refusal`], which runs
//! per request and only compares (no allocation, no lock). Never: change a request, or log
//! more than once a second about the same kind of trouble.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{header, request, Method, Version};
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::ClientSpec;
use crate::metrics::ClientFault;

/// HTTP/2 streams a client may reset before they are accepted, and streams userhook may reset
/// for the client's protocol errors, before the connection is closed (the Rapid Reset and
/// "MadeYouReset" floods).
const H2_MAX_PENDING_RESETS: usize = 20;
const H2_MAX_LOCAL_RESETS: usize = 256;
/// HTTP/2 keep-alive: a PING after this much silence, and the connection closed when its
/// answer takes longer than [`H2_KEEPALIVE_TIMEOUT`] (a client that went away).
const H2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
const H2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The connection builders for `client`'s limits, one per protocol (what a connection speaks
/// is known before hyper takes it: `served`).
#[derive(Clone)]
pub struct Builders {
    /// HTTP/1.x connections.
    pub http1: http1::Builder,
    /// HTTP/2 connections.
    pub http2: http2::Builder<TokioExecutor>,
}

/// The connection builders for `client`'s limits. hyper lets an unfinished head grow to
/// ~400 KiB: the limit is set here. The head and idle timeouts are the connection's own
/// clock's (`watch`), not hyper's, whose head timer costs every request a timer of its own.
pub fn builder(client: &ClientSpec) -> Builders {
    let head = usize::try_from(client.max_header_bytes.0).unwrap_or(usize::MAX);
    let mut h1 = http1::Builder::new();
    h1.max_buf_size(head);
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .max_concurrent_streams(client.max_concurrent_streams)
        .max_header_list_size(u32::try_from(head).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(H2_MAX_PENDING_RESETS)
        .max_local_error_reset_streams(H2_MAX_LOCAL_RESETS)
        .keep_alive_interval(H2_KEEPALIVE_INTERVAL)
        .keep_alive_timeout(H2_KEEPALIVE_TIMEOUT);
    Builders {
        http1: h1,
        http2: h2,
    }
}

/// Open client connections over all workers, against `client.max_connections`.
#[derive(Debug, Default)]
pub struct ConnectionCount {
    open: AtomicUsize,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Admitted(Arc<ConnectionCount>);

impl ConnectionCount {
    /// A place for one more connection, or `None` when `max` are open (then counted as
    /// rejected).
    pub fn admit(self: &Arc<Self>, max: usize) -> Option<Admitted> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if before >= max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            crate::metrics::connection_rejected();
            return None;
        }
        crate::metrics::connections_open(before + 1);
        Some(Admitted(self.clone()))
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let before = self.0.open.fetch_sub(1, Ordering::AcqRel);
        crate::metrics::connections_open(before.saturating_sub(1));
    }
}

/// The client's fault a finished connection's error shows, if any: a head that took too long
/// or grew too large (hyper has already answered 431 for the latter).
pub fn connection_fault(error: &(dyn std::error::Error + 'static)) -> Option<ClientFault> {
    let hyper = error.downcast_ref::<hyper::Error>()?;
    if hyper.is_timeout() {
        Some(ClientFault::HeaderTimeout)
    } else if hyper.is_parse_too_large() {
        Some(ClientFault::HeadTooLarge)
    } else {
        None
    }
}

/// Backoff after failed `accept`s (out of file descriptors: retrying at once would spin) and
/// a log line at most once a second saying how many failed since the last one.
#[derive(Debug)]
pub struct AcceptBackoff {
    delay: Duration,
    last_log: Option<Instant>,
    suppressed: u64,
}

/// First and longest pause after a failed `accept`.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// At most one warning per this long about failed accepts.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(1);

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff {
            delay: ACCEPT_BACKOFF_MIN,
            last_log: None,
            suppressed: 0,
        }
    }
}

impl AcceptBackoff {
    /// Counts and (rate-limited) logs a failed accept; returns how long to pause, doubling
    /// while failures go on.
    pub fn failed(&mut self, error: &std::io::Error) -> Duration {
        crate::metrics::accept_error();
        let now = Instant::now();
        if self
            .last_log
            .is_none_or(|at| now.duration_since(at) >= ACCEPT_LOG_EVERY)
        {
            tracing::warn!(error = %error, suppressed = self.suppressed, "accept failed; backing off");
            self.last_log = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        let delay = self.delay;
        self.delay = (self.delay * 2).min(ACCEPT_BACKOFF_MAX);
        delay
    }

    /// An accept succeeded: the next failure starts from the shortest pause.
    pub fn succeeded(&mut self) {
        self.delay = ACCEPT_BACKOFF_MIN;
    }
}

/// Logs a client fault at most once a second per process (a flood of slow clients must not
/// flood the log); the counter in `/metrics` has every one.
pub fn log_client_fault(fault: ClientFault, detail: &dyn std::fmt::Display) {
    static LAST: AtomicU64 = AtomicU64::new(0);
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    let now = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let last = LAST.load(Ordering::Relaxed);
    if (last == 0 || now.saturating_sub(last) >= 1000)
        && LAST
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::info!(
            kind = fault.as_str(),
            detail = %detail,
            "client error (logged at most once a second; see userhook_client_errors_total)"
        );
    }
}

/// Why a request head is refused before anything is sent to the IAM: each would let the
/// IAM and userhook disagree about which host or resource the request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// HTTP/1.1 without `Host` (RFC 9112 §3.2: a server must answer 400).
    #[error("HTTP/1.1 request without Host")]
    MissingHost,
    /// A `Host` with no value.
    #[error("empty Host")]
    EmptyHost,
    /// More than one `Host` field (RFC 9112 §3.2: 400).
    #[error("more than one Host")]
    DuplicateHost,
    /// HTTP/2 `host` differing from `:authority` (RFC 9113 §8.3.1).
    #[error("Host differs from :authority")]
    AuthorityConflict,
    /// `CONNECT`: userhook is a reverse proxy, not a tunnel.
    #[error("CONNECT is not proxied")]
    Connect,
    /// A path that matches a detected call only when its encoded `/` (`%2F`) splits
    /// segments: an IAM that decodes before routing would act on it unseen.
    #[error("an encoded slash makes the path ambiguous")]
    EncodedSlash,
}

/// The refusal `parts` earns, if any: one header lookup and a few comparisons.
pub fn refusal(parts: &request::Parts) -> Option<Refusal> {
    if parts.method == Method::CONNECT {
        return Some(Refusal::Connect);
    }
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Some(Refusal::DuplicateHost);
    }
    let authority = parts.uri.authority();
    match host {
        Some(h) if h.is_empty() => Some(Refusal::EmptyHost),
        Some(h) if parts.version == Version::HTTP_2 => match authority {
            Some(a) if !a.as_str().eq_ignore_ascii_case_bytes(h.as_bytes()) => {
                Some(Refusal::AuthorityConflict)
            }
            _ => None,
        },
        Some(_) => None,
        None if parts.version == Version::HTTP_11 => Some(Refusal::MissingHost),
        None if parts.version == Version::HTTP_2 && authority.is_none() => {
            Some(Refusal::MissingHost)
        }
        None => None,
    }
}

/// Case-insensitive comparison of text with header bytes, without allocating.
trait EqIgnoreCaseBytes {
    fn eq_ignore_ascii_case_bytes(&self, other: &[u8]) -> bool;
}

impl EqIgnoreCaseBytes for str {
    fn eq_ignore_ascii_case_bytes(&self, other: &[u8]) -> bool {
        self.as_bytes().eq_ignore_ascii_case(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_admits_up_to_its_limit_and_frees_on_drop() {
        let count = Arc::new(ConnectionCount::default());
        let a = count.admit(2).expect("first");
        let _b = count.admit(2).expect("second");
        assert!(count.admit(2).is_none(), "third is over the limit");
        assert_eq!(count.open(), 2);
        drop(a);
        assert!(count.admit(2).is_some(), "a freed place is reused");
    }

    #[test]
    fn accept_backoff_doubles_to_its_cap_and_resets() {
        let mut backoff = AcceptBackoff::default();
        let e = std::io::Error::other("EMFILE");
        assert_eq!(backoff.failed(&e), ACCEPT_BACKOFF_MIN);
        assert_eq!(backoff.failed(&e), ACCEPT_BACKOFF_MIN * 2);
        for _ in 0..20 {
            backoff.failed(&e);
        }
        assert_eq!(backoff.failed(&e), ACCEPT_BACKOFF_MAX);
        assert!(backoff.suppressed > 0, "the log line is rate-limited");
        backoff.succeeded();
        assert_eq!(backoff.failed(&e), ACCEPT_BACKOFF_MIN);
    }
}
