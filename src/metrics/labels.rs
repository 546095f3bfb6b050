//! The closed sets of label values userhook's series carry (`reason`, `result`, `outcome`,
//! `kind`): typed, so a recorder cannot be called with a label no series was registered for,
//! and each set listed once for pre-registering its series at 0.

/// Why an event or delivery was dropped (the `reason` label of [`EVENTS_DROPPED`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The proxy's hand-off queue to the extractor was full: a matched exchange was not examined.
    ExtractorQueueFull,
    /// `delivery.max_spool_bytes` reached: the delivery was refused and recorded as failed.
    SpoolFull,
    /// The spool writer fell too far behind the disk: refused and recorded as failed.
    SpoolOverloaded,
    /// Shutting down: refused and recorded as failed.
    Stopping,
    /// The spool could not be written (a full or failing disk): refused and recorded as failed.
    SpoolFault,
    /// The delivery could not be encoded for the spool: recorded as failed.
    Unencodable,
}

impl DropReason {
    /// Every reason, so each series exists (at 0) from the start.
    pub const ALL: [DropReason; 6] = [
        DropReason::ExtractorQueueFull,
        DropReason::SpoolFull,
        DropReason::SpoolOverloaded,
        DropReason::Stopping,
        DropReason::SpoolFault,
        DropReason::Unencodable,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::ExtractorQueueFull => "extractor_queue_full",
            DropReason::SpoolFull => "spool_full",
            DropReason::SpoolOverloaded => "spool_overloaded",
            DropReason::Stopping => "stopping",
            DropReason::SpoolFault => "spool_fault",
            DropReason::Unencodable => "unencodable",
        }
    }
}

/// How one config reload ended (the `result` label of [`CONFIG_RELOADS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    /// A valid change was swapped in.
    Applied,
    /// An invalid file was refused; the running config stays.
    Rejected,
    /// The content matched the running config.
    Unchanged,
}

impl ReloadResult {
    /// Every result, so each series exists (at 0) from the start.
    pub const ALL: [ReloadResult; 3] = [
        ReloadResult::Applied,
        ReloadResult::Rejected,
        ReloadResult::Unchanged,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Applied => "applied",
            ReloadResult::Rejected => "rejected",
            ReloadResult::Unchanged => "unchanged",
        }
    }
}

/// How one delivery attempt ended (the `outcome` label of [`ATTEMPTS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Delivered.
    Success,
    /// Failed; another attempt is scheduled.
    Retry,
    /// Failed and will not be attempted again (the delivery is dead-lettered).
    Final,
}

impl AttemptOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Success => "success",
            AttemptOutcome::Retry => "retry",
            AttemptOutcome::Final => "final",
        }
    }
}

/// How an upstream exchange failed, as the `kind` label of `upstream_errors_total`. Its own
/// type so metrics stay a leaf: the proxy maps its errors onto it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// No connection could be made.
    Unreachable,
    /// Connected, but the exchange failed.
    Broken,
    /// No response headers in time.
    Timeout,
}

/// What a client did wrong, as the `kind` label of `client_errors_total`. Its own type so
/// metrics stay a leaf: the proxy maps its errors onto it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFault {
    /// The request head did not arrive within `client.header_timeout` (or an idle
    /// keep-alive connection reached it).
    HeaderTimeout,
    /// The request head was larger than `client.max_header_bytes`: 431.
    HeadTooLarge,
    /// The request body paused longer than `client.body_timeout`: 408.
    BodyTimeout,
    /// The request body broke its framing (chunked syntax, shorter or longer than its
    /// `Content-Length`), or the client went away in the middle of it: 400.
    BadBody,
    /// The request head breaks the rules at the edge (`Host`, `CONNECT`): 400.
    BadRequest,
    /// The TLS handshake on the `tls:` listener failed (a plain-HTTP client, no shared
    /// protocol version or cipher, a certificate the client refused).
    TlsHandshake,
    /// An HTTP/2 client sent SETTINGS and PING frames past the flood limit: closed.
    ControlFlood,
    /// The request body was larger than `client.max_body_bytes`: 413.
    BodyTooLarge,
}

impl ClientFault {
    /// Every kind, for pre-registering the series at 0.
    pub const ALL: [ClientFault; 8] = [
        ClientFault::HeaderTimeout,
        ClientFault::HeadTooLarge,
        ClientFault::BodyTimeout,
        ClientFault::BadBody,
        ClientFault::BadRequest,
        ClientFault::TlsHandshake,
        ClientFault::ControlFlood,
        ClientFault::BodyTooLarge,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientFault::HeaderTimeout => "header_timeout",
            ClientFault::HeadTooLarge => "head_too_large",
            ClientFault::BodyTimeout => "body_timeout",
            ClientFault::BadBody => "bad_body",
            ClientFault::BadRequest => "bad_request",
            ClientFault::TlsHandshake => "tls_handshake",
            ClientFault::ControlFlood => "h2_control_flood",
            ClientFault::BodyTooLarge => "body_too_large",
        }
    }
}
