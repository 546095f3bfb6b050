//! Every metric userhook exports, by name, with one typed recording function each, so a call
//! site is one line and the names live in one place (the README's table mirrors this file).
//!
//! The recorder is `metrics-exporter-prometheus` installed once, process-wide, without its own
//! HTTP listener: the admin API renders it at `GET /metrics`. Histograms get explicit buckets so
//! they render as Prometheus histograms, not summaries. [`run_upkeep`] must be called on an
//! interval (the app does) to drain histogram samples.
//!
//! The proxied-request counter runs on every request, so it never builds a label or looks a
//! name up per request: [`ProxyCounters`] registers one handle per (route, method, status
//! class) when a config snapshot is compiled, and a request increments a handle it indexes.
//! This module must never take a label value from a request (paths, ids, users): label values
//! are config names and fixed words, so the series count stays bounded.

use std::sync::OnceLock;

use ::metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter, Unit,
};
use http::Method;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::event::Action;

/// Requests proxied, by `rule` ("METHOD /template" of the matched route, "none" when no rule
/// matched) and `status` class (1xx..5xx). Includes 502/504 answers made by userhook itself.
pub const PROXIED_REQUESTS: &str = "userhook_proxied_requests_total";
/// Upstream failures answered with 502/504, by `kind`: unreachable, broken, timeout.
pub const UPSTREAM_ERRORS: &str = "userhook_upstream_errors_total";
/// Requests or connections ended because of the client, by `kind` ([`ClientFault`]); never
/// counted as upstream errors.
pub const CLIENT_ERRORS: &str = "userhook_client_errors_total";
/// Client connections closed on accept because `client.max_connections` were open.
pub const CONNECTIONS_REJECTED: &str = "userhook_client_connections_rejected_total";
/// Client connections open now, over all workers.
pub const CONNECTIONS_OPEN: &str = "userhook_client_connections";
/// `accept` failures (out of file descriptors and the like).
pub const ACCEPT_ERRORS: &str = "userhook_accept_errors_total";
/// User events detected, by `action`.
pub const EVENTS: &str = "userhook_events_total";
/// Events whose user could not be named (`attribution: none`), by `action`: the IAM
/// confirmed the call, nobody owned the credential it carried.
pub const EVENTS_UNATTRIBUTED: &str = "userhook_events_unattributed_total";
/// Users in the identity cache now.
pub const IDENTITY_USERS: &str = "userhook_identity_users";
/// Credentials in the session index now.
pub const IDENTITY_SESSIONS: &str = "userhook_identity_sessions";
/// Signing-key sets (JWKS) fetched from the IAM, by `result`: ok, failed.
pub const JWKS_FETCHES: &str = "userhook_jwks_fetches_total";
/// Events or deliveries lost before reaching the spool, by `reason`; must stay 0.
pub const EVENTS_DROPPED: &str = "userhook_events_dropped_total";
/// Deliveries finished, by `webhook` and `result`: success, dead_letter.
pub const DELIVERIES: &str = "userhook_deliveries_total";
/// Delivery attempts, by `webhook` and `outcome`: success, retry (will be retried), final
/// (failed and not retried again).
pub const ATTEMPTS: &str = "userhook_delivery_attempts_total";
/// Seconds from the event to the successful delivery (retries included), by `webhook`.
pub const DELIVERY_LATENCY: &str = "userhook_delivery_latency_seconds";
/// Deliveries waiting or in flight.
pub const SPOOL_DEPTH: &str = "userhook_spool_depth";
/// Bytes the spool holds on disk (0 while deliveries are held in memory).
pub const SPOOL_BYTES: &str = "userhook_spool_bytes";
/// Events a webhook was subscribed to but its `when:` filter turned away, by `webhook`.
pub const WEBHOOK_FILTERED: &str = "userhook_webhook_filtered_total";
/// Deliveries dead-lettered since start, by `webhook`.
pub const DEAD_LETTERS_TOTAL: &str = "userhook_dead_letters_total";
/// Dead letters currently kept (listable and replayable).
pub const DEAD_LETTERS: &str = "userhook_dead_letters";
/// 1 while a webhook is paused by its health policy, 0 while active, by `webhook`.
pub const WEBHOOK_PAUSED: &str = "userhook_webhook_paused";
/// Replies that said "too many messages" (a robot's errcode, HTTP 429), by `webhook`.
pub const WEBHOOK_RATE_LIMITED: &str = "userhook_webhook_rate_limited_total";
/// Digest messages sent, by `webhook`.
pub const DIGESTS: &str = "userhook_digests_total";
/// Events carried by digest messages, by `webhook`.
pub const DIGEST_EVENTS: &str = "userhook_digest_events_total";
/// Config reload outcomes, by `result`: applied, rejected, unchanged.
pub const CONFIG_RELOADS: &str = "userhook_config_reloads_total";
/// Times the watcher read (and hashed) the config file, by `trigger`: change (a file event
/// that was not one of its own reads), timer (the periodic re-check found the file's metadata
/// changed), sighup. An idle instance reads nothing.
pub const CONFIG_READS: &str = "userhook_config_file_reads_total";
/// Spool commits that failed on an I/O error (a full or failing disk); each is retried.
pub const SPOOL_FAULTS: &str = "userhook_spool_faults_total";
/// 1 while the spool commits, 0 while it is faulted (new deliveries are refused then).
pub const SPOOL_WRITABLE: &str = "userhook_spool_writable";
/// Spool rows that failed their checksum (or no longer parsed): quarantined, never delivered.
pub const SPOOL_ROWS_DAMAGED: &str = "userhook_spool_rows_damaged_total";
/// Spool files that could not be opened and were moved aside for a fresh one (`fast` mode).
pub const SPOOL_RECREATED: &str = "userhook_spool_recreated_total";
/// Idle compactions of the spool file (free pages, and the bytes in them, dropped).
pub const SPOOL_COMPACTIONS: &str = "userhook_spool_compactions_total";
/// `strict` responses whose event was NOT confirmed durable, by `reason` ([`Unconfirmed`]):
/// the client's response was failed instead of released as committed.
pub const STRICT_UNCONFIRMED: &str = "userhook_strict_unconfirmed_total";

/// Delivery latency buckets, seconds: from a direct hit (milliseconds) to a long retry series
/// (the default backoff reaches minutes, 12 attempts about an hour).
const LATENCY_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
    3600.0,
];

/// Status classes in label order; index = status / 100 - 1.
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The `rule` label of requests no route matched.
pub const UNMATCHED_RULE: &str = "none";

mod labels;

pub use labels::{AttemptOutcome, ClientFault, DropReason, ReloadResult, UpstreamFailure};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's metrics recorder, once; later calls
/// return the same handle (an atomic load). `None` when another recorder was installed first
/// (metrics are then recorded there, and `/metrics` says so). Every function here calls it
/// first, because a metric recorded before the recorder exists is lost.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(DELIVERY_LATENCY.into()), &LATENCY_BUCKETS)
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            describe_all();
            Some(handle)
        })
        .as_ref()
}

/// HELP lines, and the series that must show 0 before anything happens (an alert on
/// "dropped > 0" needs the series to exist).
fn describe_all() {
    describe_counter!(
        PROXIED_REQUESTS,
        "Requests proxied, by matched route rule (none: no rule) and status class."
    );
    describe_counter!(
        UPSTREAM_ERRORS,
        "Upstream failures answered with 502/504, by kind."
    );
    describe_counter!(
        CLIENT_ERRORS,
        "Requests or connections ended because of the client, by kind."
    );
    describe_counter!(
        CONNECTIONS_REJECTED,
        "Client connections closed on accept because client.max_connections were open."
    );
    describe_gauge!(CONNECTIONS_OPEN, "Client connections open now.");
    describe_counter!(
        ACCEPT_ERRORS,
        "accept() failures, e.g. out of file descriptors."
    );
    describe_counter!(EVENTS, "User events detected, by action.");
    describe_counter!(
        EVENTS_UNATTRIBUTED,
        "User events whose user could not be named (attribution none), by action."
    );
    describe_gauge!(IDENTITY_USERS, "Users in the identity cache now.");
    describe_gauge!(
        IDENTITY_SESSIONS,
        "Credentials (keyed hashes) in the session index now."
    );
    describe_counter!(
        JWKS_FETCHES,
        "Signing-key sets fetched from the IAM to verify client tokens, by result."
    );
    describe_counter!(
        EVENTS_DROPPED,
        "Events or deliveries lost before the spool, by reason; must stay 0."
    );
    describe_counter!(
        DELIVERIES,
        "Deliveries finished, by webhook and result (success, dead_letter)."
    );
    describe_counter!(
        ATTEMPTS,
        "Delivery attempts, by webhook and outcome (success, retry, final)."
    );
    describe_histogram!(
        DELIVERY_LATENCY,
        Unit::Seconds,
        "Time from the event to its successful delivery, retries included, by webhook."
    );
    describe_gauge!(SPOOL_DEPTH, "Deliveries waiting or in flight.");
    describe_gauge!(
        SPOOL_BYTES,
        Unit::Bytes,
        "Bytes the delivery spool holds on disk."
    );
    describe_counter!(
        DEAD_LETTERS_TOTAL,
        "Deliveries dead-lettered since start, by webhook."
    );
    describe_counter!(
        WEBHOOK_FILTERED,
        "Events a webhook's when: filter turned away (never spooled), by webhook."
    );
    describe_gauge!(DEAD_LETTERS, "Dead letters currently kept.");
    describe_gauge!(
        WEBHOOK_PAUSED,
        "1 while a webhook is paused by its health policy (deliveries kept pending), 0 while active."
    );
    describe_counter!(
        WEBHOOK_RATE_LIMITED,
        "Replies that said too many messages (robot errcode, HTTP 429): the webhook waited."
    );
    describe_counter!(
        DIGESTS,
        "Digest messages sent (several events in one message)."
    );
    describe_counter!(DIGEST_EVENTS, "Events carried by digest messages.");
    describe_counter!(CONFIG_RELOADS, "Config reload outcomes, by result.");
    describe_counter!(
        CONFIG_READS,
        "Config file reads by the watcher, by trigger (change, timer, sighup)."
    );
    for trigger in ["change", "timer", "sighup"] {
        counter!(CONFIG_READS, "trigger" => trigger).absolute(0);
    }
    describe_counter!(
        SPOOL_FAULTS,
        "Spool commits that failed on an I/O error (full or failing disk)."
    );
    describe_gauge!(
        SPOOL_WRITABLE,
        "1 while the spool commits, 0 while faulted (new deliveries refused)."
    );
    describe_counter!(
        SPOOL_ROWS_DAMAGED,
        "Spool rows that failed their checksum: quarantined, never delivered."
    );
    describe_counter!(
        SPOOL_RECREATED,
        "Spool files that could not be opened and were moved aside for a fresh one."
    );
    describe_counter!(SPOOL_COMPACTIONS, "Idle compactions of the spool file.");
    describe_counter!(
        STRICT_UNCONFIRMED,
        "strict responses failed because their event was not confirmed durable, by reason."
    );
    for reason in Unconfirmed::ALL {
        counter!(STRICT_UNCONFIRMED, "reason" => reason.as_str()).absolute(0);
    }
    counter!(SPOOL_FAULTS).absolute(0);
    counter!(SPOOL_ROWS_DAMAGED).absolute(0);
    counter!(SPOOL_RECREATED).absolute(0);
    counter!(SPOOL_COMPACTIONS).absolute(0);
    gauge!(SPOOL_WRITABLE).set(1.0);
    for reason in DropReason::ALL {
        counter!(EVENTS_DROPPED, "reason" => reason.as_str()).absolute(0);
    }
    for result in ReloadResult::ALL {
        counter!(CONFIG_RELOADS, "result" => result.as_str()).absolute(0);
    }
    for kind in ["unreachable", "broken", "timeout"] {
        counter!(UPSTREAM_ERRORS, "kind" => kind).absolute(0);
    }
    for fault in ClientFault::ALL {
        counter!(CLIENT_ERRORS, "kind" => fault.as_str()).absolute(0);
    }
    counter!(CONNECTIONS_REJECTED).absolute(0);
    counter!(ACCEPT_ERRORS).absolute(0);
    gauge!(SPOOL_DEPTH).set(0.0);
    gauge!(SPOOL_BYTES).set(0.0);
    gauge!(DEAD_LETTERS).set(0.0);
}

/// The Prometheus text exposition of every metric, for `GET /metrics`.
pub fn render() -> String {
    match install() {
        Some(handle) => handle.render(),
        None => String::from("# userhook: another metrics recorder is installed in this process\n"),
    }
}

/// Drains histogram samples and similar housekeeping; call every few seconds.
pub fn run_upkeep() {
    if let Some(handle) = install() {
        handle.run_upkeep();
    }
}

/// One counter per status class for one `rule` label: what a request increments.
#[derive(Debug, Clone)]
pub struct StatusCounters([Counter; 5]);

impl StatusCounters {
    /// Registers (or finds) the five series of `rule`. Not for the request path.
    pub fn register(rule: &str) -> Self {
        install();
        StatusCounters(
            STATUS_CLASSES.map(
                |class| counter!(PROXIED_REQUESTS, "rule" => rule.to_owned(), "status" => class),
            ),
        )
    }

    /// Counts one response: an index and an atomic add, no allocation.
    #[inline]
    pub fn record(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        if let Some(c) = self.0.get(class) {
            c.increment(1);
        }
    }
}

/// The proxied-request counters of one compiled route table, registered up front.
#[derive(Debug, Clone)]
pub struct ProxyCounters {
    unmatched: StatusCounters,
    /// Per route-table entry: the methods its rules accept, each with its counters.
    entries: Vec<Vec<(Method, StatusCounters)>>,
}

impl ProxyCounters {
    /// Registers counters for every (entry, method) of a route table, given as each entry's
    /// path template and methods in entry order, plus the unmatched series.
    pub fn register<'a>(entries: impl Iterator<Item = (&'a str, &'a [Method])>) -> Self {
        ProxyCounters {
            unmatched: StatusCounters::register(UNMATCHED_RULE),
            entries: entries
                .map(|(template, methods)| {
                    methods
                        .iter()
                        .map(|m| {
                            let rule = format!("{m} {template}");
                            (m.clone(), StatusCounters::register(&rule))
                        })
                        .collect()
                })
                .collect(),
        }
    }

    /// The counters a request increments: its matched entry's for its method, or the
    /// unmatched ones. A scan of the entry's few methods; no allocation.
    #[inline]
    pub fn select(&self, entry: Option<usize>, method: &Method) -> &StatusCounters {
        entry
            .and_then(|e| self.entries.get(e))
            .and_then(|methods| methods.iter().find(|(m, _)| m == method))
            .map_or(&self.unmatched, |(_, c)| c)
    }
}

/// Counts an upstream failure that became a 502/504.
pub fn upstream_error(kind: UpstreamFailure) {
    install();
    let kind = match kind {
        UpstreamFailure::Unreachable => "unreachable",
        UpstreamFailure::Broken => "broken",
        UpstreamFailure::Timeout => "timeout",
    };
    counter!(UPSTREAM_ERRORS, "kind" => kind).increment(1);
}

/// Counts a request or connection the client's fault ended.
pub fn client_error(fault: ClientFault) {
    install();
    counter!(CLIENT_ERRORS, "kind" => fault.as_str()).increment(1);
}

/// Counts a connection refused at `client.max_connections`.
pub fn connection_rejected() {
    install();
    counter!(CONNECTIONS_REJECTED).increment(1);
}

/// Sets the number of open client connections.
pub fn connections_open(open: usize) {
    install();
    gauge!(CONNECTIONS_OPEN).set(open as f64);
}

/// Counts a failed `accept`.
pub fn accept_error() {
    install();
    counter!(ACCEPT_ERRORS).increment(1);
}

/// Counts a detected user event. Custom actions are counted under their own name (a config
/// name, never request data).
pub fn event_detected(action: &Action) {
    // Registered once: looking the counter up by name costs a hash per event.
    static BY_ACTION: OnceLock<Vec<Counter>> = OnceLock::new();
    let counters = BY_ACTION.get_or_init(|| {
        install();
        Action::ALL
            .iter()
            .map(|a| counter!(EVENTS, "action" => a.as_str()))
            .collect()
    });
    match Action::ALL
        .iter()
        .position(|a| a == action)
        .and_then(|i| counters.get(i))
    {
        Some(c) => c.increment(1),
        None => counter!(EVENTS, "action" => action.as_str().to_owned()).increment(1),
    }
}

/// Counts an event whose user could not be named.
pub fn event_unattributed(action: &Action) {
    install();
    // Action names are config names: the series stay bounded by the config.
    counter!(EVENTS_UNATTRIBUTED, "action" => action.as_str().to_owned()).increment(1);
}

/// Sets the identity gauges: users cached, credentials indexed.
pub fn identity_size(users: usize, sessions: usize) {
    install();
    gauge!(IDENTITY_USERS).set(users as f64);
    gauge!(IDENTITY_SESSIONS).set(sessions as f64);
}

/// Counts a JWKS fetch; `ok` false when it failed or the document was unusable.
pub fn jwks_fetched(ok: bool) {
    install();
    counter!(JWKS_FETCHES, "result" => if ok { "ok" } else { "failed" }).increment(1);
}

/// Counts an event or delivery lost before it reached the spool.
pub fn event_dropped(reason: DropReason) {
    install();
    counter!(EVENTS_DROPPED, "reason" => reason.as_str()).increment(1);
}

/// Counts one delivery attempt's outcome for `webhook`.
pub fn attempt_finished(webhook: &str, outcome: AttemptOutcome) {
    install();
    counter!(ATTEMPTS, "webhook" => webhook.to_owned(), "outcome" => outcome.as_str()).increment(1);
}

/// Counts an event `webhook` is subscribed to but its `when:` filter turned away.
pub fn webhook_filtered(webhook: &str) {
    install();
    counter!(WEBHOOK_FILTERED, "webhook" => webhook.to_owned()).increment(1);
}

/// Counts a successful delivery and its latency from the event (`event_ms`, Unix ms) to now.
pub fn delivery_succeeded(webhook: &str, event_ms: u64, now_ms: u64) {
    install();
    counter!(DELIVERIES, "webhook" => webhook.to_owned(), "result" => "success").increment(1);
    let seconds = now_ms.saturating_sub(event_ms) as f64 / 1000.0;
    histogram!(DELIVERY_LATENCY, "webhook" => webhook.to_owned()).record(seconds);
}

/// Counts a delivery that will not be attempted again (both the result and the dead-letter
/// counter).
pub fn delivery_dead_lettered(webhook: &str) {
    install();
    counter!(DELIVERIES, "webhook" => webhook.to_owned(), "result" => "dead_letter").increment(1);
    counter!(DEAD_LETTERS_TOTAL, "webhook" => webhook.to_owned()).increment(1);
}

/// Sets whether `webhook` is paused by its health policy.
pub fn webhook_paused(webhook: &str, paused: bool) {
    install();
    gauge!(WEBHOOK_PAUSED, "webhook" => webhook.to_owned()).set(if paused { 1.0 } else { 0.0 });
}

/// Counts a reply of `webhook` that said "too many messages".
pub fn webhook_rate_limited(webhook: &str) {
    install();
    counter!(WEBHOOK_RATE_LIMITED, "webhook" => webhook.to_owned()).increment(1);
}

/// Counts a digest message of `webhook` carrying `events` events.
pub fn digest_sent(webhook: &str, events: usize) {
    install();
    counter!(DIGESTS, "webhook" => webhook.to_owned()).increment(1);
    counter!(DIGEST_EVENTS, "webhook" => webhook.to_owned()).increment(events as u64);
}

/// Sets how many dead letters are kept now; the dead-letter store calls it when that changes.
pub fn dead_letters_kept(count: usize) {
    install();
    gauge!(DEAD_LETTERS).set(count as f64);
}

/// Sets the spool's depth (deliveries waiting or in flight) and its stored bytes; read from
/// the spool when `/metrics` is scraped.
pub fn spool_usage(depth: usize, bytes: u64) {
    install();
    gauge!(SPOOL_DEPTH).set(depth as f64);
    gauge!(SPOOL_BYTES).set(bytes as f64);
}

/// Counts one read of the config file by the watcher; `trigger` is change, timer or sighup.
pub fn config_file_read(trigger: &'static str) {
    install();
    counter!(CONFIG_READS, "trigger" => trigger).increment(1);
}

/// Why a `strict` response's event was not confirmed durable: the `reason` label of
/// [`STRICT_UNCONFIRMED`].
pub use crate::exchange::Unconfirmed;

/// Counts a `strict` response failed because its event was not confirmed durable.
pub fn strict_unconfirmed(reason: Unconfirmed) {
    install();
    counter!(STRICT_UNCONFIRMED, "reason" => reason.as_str()).increment(1);
}

/// Counts a spool commit that failed on an I/O error and marks the spool unwritable.
pub fn spool_fault() {
    install();
    counter!(SPOOL_FAULTS).increment(1);
    gauge!(SPOOL_WRITABLE).set(0.0);
}

/// The spool commits again.
pub fn spool_recovered() {
    install();
    gauge!(SPOOL_WRITABLE).set(1.0);
}

/// Counts a spool row that failed its checksum (quarantined).
pub fn spool_row_damaged() {
    install();
    counter!(SPOOL_ROWS_DAMAGED).increment(1);
}

/// Counts a spool file moved aside for a fresh one.
pub fn spool_recreated() {
    install();
    counter!(SPOOL_RECREATED).increment(1);
}

/// Counts an idle compaction of the spool file.
pub fn spool_compacted() {
    install();
    counter!(SPOOL_COMPACTIONS).increment(1);
}

/// Counts a config reload outcome.
pub fn config_reload(result: ReloadResult) {
    install();
    counter!(CONFIG_RELOADS, "result" => result.as_str()).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the one sample of `name` whose labels include every `labels` pair.
    fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .find(|l| {
                labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn status_classes_and_route_selection() {
        let get = Method::GET;
        let post = Method::POST;
        let entries: [(&str, &[Method]); 2] = [
            ("/unit-test/users", &[Method::POST]),
            ("/unit-test/users/{id}", &[Method::PUT, Method::DELETE]),
        ];
        let counters = ProxyCounters::register(entries.into_iter());
        counters.select(Some(0), &post).record(201);
        counters.select(Some(0), &post).record(599);
        counters.select(Some(1), &Method::DELETE).record(404);
        // Method not among the entry's, and an entry index out of range: unmatched.
        counters.select(Some(0), &get).record(200);
        counters.select(Some(7), &get).record(100);
        counters.select(Some(1), &Method::PUT).record(0);
        let text = render();
        let rule =
            |r: &str, s: &str| sample(&text, PROXIED_REQUESTS, &[("rule", r), ("status", s)]);
        assert_eq!(rule("POST /unit-test/users", "2xx"), Some(1.0));
        assert_eq!(rule("POST /unit-test/users", "5xx"), Some(1.0));
        assert_eq!(rule("POST /unit-test/users", "4xx"), Some(0.0));
        assert_eq!(rule("DELETE /unit-test/users/{id}", "4xx"), Some(1.0));
        // A status below 100 (impossible in HTTP) lands in 1xx rather than panicking.
        assert_eq!(rule("PUT /unit-test/users/{id}", "1xx"), Some(1.0));
        assert!(rule("none", "2xx").is_some_and(|v| v >= 1.0), "{text}");
    }

    #[test]
    fn delivery_series_and_histogram_buckets() {
        attempt_finished("unit-hook", AttemptOutcome::Retry);
        attempt_finished("unit-hook", AttemptOutcome::Success);
        delivery_succeeded("unit-hook", 1_000, 1_300);
        delivery_dead_lettered("unit-hook");
        config_reload(ReloadResult::Rejected);
        run_upkeep();
        let text = render();
        let get = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels);
        assert_eq!(
            get(ATTEMPTS, &[("webhook", "unit-hook"), ("outcome", "retry")]),
            Some(1.0)
        );
        assert_eq!(
            get(
                DELIVERIES,
                &[("webhook", "unit-hook"), ("result", "success")]
            ),
            Some(1.0)
        );
        assert_eq!(
            get(
                DELIVERIES,
                &[("webhook", "unit-hook"), ("result", "dead_letter")]
            ),
            Some(1.0)
        );
        assert_eq!(
            get(DEAD_LETTERS_TOTAL, &[("webhook", "unit-hook")]),
            Some(1.0)
        );
        // A histogram (buckets), not a summary: 0.3 s falls in le=0.5 but not le=0.25.
        let bucket = |le: &str| {
            get(
                &format!("{DELIVERY_LATENCY}_bucket"),
                &[("webhook", "unit-hook"), ("le", le)],
            )
        };
        assert_eq!(bucket("0.25"), Some(0.0));
        assert_eq!(bucket("0.5"), Some(1.0));
        assert_eq!(bucket("+Inf"), Some(1.0));
        assert!(
            text.contains(&format!("# TYPE {DELIVERY_LATENCY} histogram")),
            "{text}"
        );
        assert!(
            get(EVENTS_DROPPED, &[("reason", "spool_full")]).is_some(),
            "{text}"
        );
        assert!(get(CONFIG_RELOADS, &[("result", "rejected")]).is_some_and(|v| v >= 1.0));
    }
}
