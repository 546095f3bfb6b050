//! The serde mirror of `userhook.yaml` (every key documented in `config/userhook.yaml`).
//!
//! Every struct denies unknown keys so a typo is an error, never a silently ignored setting.
//! Values here are *as written* (after `${VAR}` interpolation): they are checked and compiled
//! into the compiled snapshot (a layer above this one), never used raw on the request path.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use super::condition_spec::ConditionSpec;
pub use super::env_values::EnvValues;
pub use super::identity_spec::{IdentitySpec, SessionSpec};
pub use super::one_or_many::OneOrMany;
pub use super::pace_spec::{DigestMode, DigestSpec, HealthSpec, ProbeSpec};
pub use super::profile_spec::{ProfileSpec, ProfileWithPath};
use super::units::{ByteSize, Duration};

/// The whole config file. Only `upstream` is required; everything else has a safe default.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Where clients connect (the port the IAM used to own).
    #[serde(default = "defaults::listen")]
    pub listen: String,
    /// Base URL of the IAM (`http://` or `https://`, optionally with a path prefix).
    pub upstream: String,
    /// Keep the client's `Host` header: IAMs build links and issuer URLs from it.
    #[serde(default = "defaults::yes")]
    pub preserve_host: bool,
    /// TLS settings for an `https://` upstream.
    #[serde(default)]
    pub upstream_tls: UpstreamTlsSpec,
    /// TLS on the proxy's own listener (clients connect with `https://`).
    #[serde(default)]
    pub tls: ListenerTlsSpec,
    /// The operator's port: health, readiness, metrics, delivery records.
    #[serde(default)]
    pub admin: AdminSpec,
    /// Built-in rule sets for well-known IAM APIs.
    #[serde(default)]
    pub profiles: Vec<ProfileSpec>,
    /// The operator's own rules; checked before the profiles' rules.
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    /// Where events go.
    #[serde(default)]
    pub webhooks: Vec<WebhookSpec>,
    /// Where events go besides webhooks: message streams (NATS JetStream), same promise.
    #[serde(default)]
    pub sinks: Vec<SinkSpec>,
    /// How much of each body of a matched exchange is kept for extraction.
    #[serde(default = "defaults::capture_limit")]
    pub capture_limit: ByteSize,
    /// Remembers users' last known fields so deletes and logouts can name them.
    #[serde(default)]
    pub user_cache: UserCacheSpec,
    /// Who an event is about: the persisted user cache, the session index and the trust
    /// given to tokens a client presents.
    #[serde(default)]
    pub identity: IdentitySpec,
    /// Time limits for connecting, answering and draining.
    #[serde(default)]
    pub timeouts: TimeoutsSpec,
    /// Limits on what one client, and all of them together, may hold of the proxy.
    #[serde(default)]
    pub client: ClientSpec,
    /// The spool, delivery limits and the durability guarantee.
    #[serde(default)]
    pub delivery: DeliverySpec,
    /// Log format and level.
    #[serde(default)]
    pub log: LogSpec,
    /// Learn mode: watch all traffic and propose `routes:` (written to `learn.out`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learn: Option<LearnSpec>,
    /// Values that came from `${VAR}`, so anything shown to people can put the names back.
    #[serde(skip)]
    pub env_values: EnvValues,
}

impl ConfigFile {
    /// The field names the operator's routes define: the custom template variables a
    /// webhook body, URL or sink subject may use besides the built-in ones.
    pub fn custom_fields(&self) -> BTreeSet<&str> {
        self.routes
            .iter()
            .flat_map(|r| r.fields.keys().chain(r.details.keys()).map(String::as_str))
            .collect()
    }
}

/// TLS to the upstream IAM.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsSpec {
    /// PEM file with extra CA certificates (an internal CA); the system roots are kept.
    #[serde(default)]
    pub ca_file: Option<String>,
}

/// TLS on the proxy's listener: both files or neither (then plain HTTP). The files are
/// watched and a changed pair is used for new connections (certificate rotation).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTlsSpec {
    /// PEM certificate chain, leaf first.
    #[serde(default)]
    pub cert_file: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub key_file: Option<String>,
}

/// Learn mode (`learn:`): every exchange's shapes are kept and a proposed config is written
/// to `out` at shutdown and shown by the admin API's `GET /learn`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LearnSpec {
    /// The file the proposed config is written to (relative paths: to the config file's
    /// directory).
    pub out: String,
}

/// The admin listener.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSpec {
    /// Localhost by default: the admin API shows delivery records and config.
    #[serde(default = "defaults::admin_listen")]
    pub listen: String,
    /// The bearer token every data and mutating admin endpoint requires
    /// (`Authorization: Bearer <token>`); required when `listen` is not loopback-only.
    /// Normally `${USERHOOK_ADMIN_TOKEN}`. Never shown: `/config` and `check` mask it.
    #[serde(default)]
    pub token: Option<String>,
}

impl Default for AdminSpec {
    fn default() -> Self {
        Self {
            listen: defaults::admin_listen(),
            token: None,
        }
    }
}

/// Hand-written so a debug print of the config can never show the token.
impl std::fmt::Debug for AdminSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSpec")
            .field("listen", &self.listen)
            .field(
                "token",
                &self.token.as_ref().map(|_| crate::redact::REDACTED),
            )
            .finish()
    }
}

/// One rule: "this method on this path, answered with this status, means this action".
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// One action or a list (one event per action, in order): created | updated | deleted |
    /// login | logout | login_failed | any snake_case name (a custom action) | remember.
    /// Shown as written: one name as a string, several as a list.
    #[serde(serialize_with = "super::one_or_many::one_or_list")]
    pub action: OneOrMany,
    /// HTTP method, e.g. `POST` (case-insensitive).
    pub method: String,
    /// Path template: `/users/{id}`, `/realms/{realm}/users/{id}`.
    pub path: String,
    /// Statuses that count as the action happening; default any 2xx
    /// (`login_failed`: 400, 401, 403).
    #[serde(default)]
    pub status: Option<Vec<u16>>,
    /// Extra conditions, all of which must hold: field source -> accepted values (one or a
    /// list) or a map of operators (`config::condition_spec`).
    #[serde(default)]
    pub when: BTreeMap<String, ConditionSpec>,
    /// User field name -> field source, or a list of sources (first non-empty wins). User
    /// attributes: they go into the event's user and the identity cache.
    #[serde(default)]
    pub fields: BTreeMap<String, OneOrMany>,
    /// Call attribute name -> field source(s), like `fields:` but for this event only (a
    /// login's method, a status): never cached, so they never leak into later events.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, OneOrMany>,
    /// The credentials this call issues or presents: how the session index learns who owns
    /// a cookie or token, and names the owner on calls that carry only the credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionSpec>,
    /// Why the rule looks the way it does: documentation only, never compiled. The built-in
    /// profiles' notes are shown in the README; an operator may write one too.
    #[serde(default)]
    pub note: String,
}

/// A webhook subscription, as DCE 5.0's "Webhook Message Notification" defines one.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// Unique name, used in logs, metrics, records and `send-test --webhook`.
    pub name: String,
    /// The object watched; `user` is the only object today.
    #[serde(default = "defaults::object")]
    pub object: String,
    /// Actions to deliver, or `["*"]`.
    pub actions: Vec<String>,
    /// Conditions an event must meet to be delivered here, all of them: event value
    /// (`Email`, `Changed`, `Attribution`, `Actor.ClientId`, ...) -> accepted values or a
    /// map of operators, as in `routes[].when`. An event that fails is counted, never spooled.
    #[serde(default)]
    pub when: BTreeMap<String, ConditionSpec>,
    /// Target URL; `{{$$.Var$$}}` variables are URL-encoded.
    pub url: String,
    /// GET, POST, PUT, PATCH or DELETE.
    #[serde(default = "defaults::post")]
    pub method: String,
    /// default | wecom-text | wecom-markdown | dingtalk | feishu | slack
    #[serde(default)]
    pub preset: Option<String>,
    /// Message body template; overrides the preset's.
    #[serde(default)]
    pub body: Option<String>,
    /// `preset: cloudevents`: the CloudEvents `source` (a URI-reference); default: the
    /// upstream IAM's URL without credentials or query.
    #[serde(default)]
    pub source: Option<String>,
    /// Content type of the body; default `application/json` (bodies that are not JSON need one).
    #[serde(default)]
    pub content_type: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Standard Webhooks signing secret (`whsec_...` or raw).
    #[serde(default)]
    pub secret: Option<String>,
    /// Several signing secrets at once (rotation; `whsec_` for `v1`, `whsk_` for `v1a`):
    /// every one signs, all signatures go in one header.
    #[serde(default)]
    pub signing: Option<SigningSpec>,
    /// Time limit for one attempt, connect to last body byte.
    #[serde(default = "defaults::webhook_timeout")]
    pub timeout: Duration,
    /// How often and how patiently a failed delivery is retried.
    #[serde(default)]
    pub retry: RetrySpec,
    /// Parallel deliveries to this webhook at most; default: the global limit.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Messages per window at most (`20/min`, `1/s`, `5/s, 100/min`), or `off`; default: the
    /// robot preset's documented limit, none otherwise.
    #[serde(default)]
    pub rate: Option<String>,
    /// Merging bursts into digest messages (see `pace_spec::DigestSpec`).
    #[serde(default)]
    pub digest: DigestSpec,
    /// Pausing a failing endpoint and probing it (see `pace_spec::HealthSpec`).
    #[serde(default)]
    pub health: HealthSpec,
    /// A disabled webhook stays in the file but receives nothing.
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
}

/// A webhook's signing secrets, all active at once so they can rotate without downtime.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SigningSpec {
    /// `whsec_...` (HMAC-SHA256, `v1`) and/or `whsk_...` (ed25519, `v1a`) secrets, in the
    /// order their signatures are sent. Never shown.
    pub secrets: Vec<String>,
}

/// A message-stream target (`kind: nats`: NATS JetStream), delivered like a webhook: spooled
/// first, removed only after the stream's acknowledgement.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSpec {
    /// Unique among webhooks and sinks: deliveries, records and metrics name it.
    pub name: String,
    /// `nats` (JetStream) is the only kind today.
    pub kind: String,
    /// The object watched; `user` is the only object today.
    #[serde(default = "defaults::object")]
    pub object: String,
    /// Actions to publish, or `["*"]`.
    pub actions: Vec<String>,
    /// Server URL(s), `nats://host:4222` or `tls://host:4222`; several for a cluster.
    pub url: OneOrMany,
    /// Subject template, e.g. `iam.users.{{$$.Action$$}}`; values are used as written.
    pub subject: String,
    /// The stream that must capture the subjects; checked when the sink connects.
    #[serde(default)]
    pub stream: Option<String>,
    /// Create `stream` (file storage, the subject's prefix + `>`) when it is missing.
    #[serde(default)]
    pub create_stream: bool,
    /// Token authentication (secret).
    #[serde(default)]
    pub token: Option<String>,
    /// NKey seed, `SU...` (secret).
    #[serde(default)]
    pub nkey: Option<String>,
    /// A `.creds` file (user JWT and seed); its path is shown, its contents never.
    #[serde(default)]
    pub creds_file: Option<String>,
    /// TLS to the servers.
    #[serde(default)]
    pub tls: SinkTlsSpec,
    /// Time limit for one publish, until the stream's acknowledgement.
    #[serde(default = "defaults::webhook_timeout")]
    pub timeout: Duration,
    /// How often and how patiently a failed publish is retried.
    #[serde(default)]
    pub retry: RetrySpec,
    /// Parallel publishes at most; default: the global limit.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// A disabled sink stays in the file but receives nothing.
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
}

/// TLS for a sink's connections.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SinkTlsSpec {
    /// Refuse a connection without TLS (`tls://` URLs require it anyway).
    #[serde(default)]
    pub required: bool,
    /// Extra CA certificates (PEM) to trust.
    #[serde(default)]
    pub ca_file: Option<String>,
}

/// Retry schedule: exponential backoff with full jitter between `initial` and `max`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Total attempts including the first.
    #[serde(default = "defaults::attempts")]
    pub attempts: u32,
    /// Wait after the first failure (full jitter below it).
    #[serde(default = "defaults::retry_initial")]
    pub initial: Duration,
    /// Longest wait between two attempts.
    #[serde(default = "defaults::retry_max")]
    pub max: Duration,
}

impl Default for RetrySpec {
    fn default() -> Self {
        Self {
            attempts: defaults::attempts(),
            initial: defaults::retry_initial(),
            max: defaults::retry_max(),
        }
    }
}

/// Size of the per-user field cache.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserCacheSpec {
    /// Users whose last fields are kept for deletes and logouts.
    #[serde(default = "defaults::cache_capacity")]
    pub capacity: usize,
}

impl Default for UserCacheSpec {
    fn default() -> Self {
        Self {
            capacity: defaults::cache_capacity(),
        }
    }
}

/// Time limits on the proxy side.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsSpec {
    /// TCP (and TLS) connect to the upstream.
    #[serde(default = "defaults::connect")]
    pub connect: Duration,
    /// From sending the request to the upstream's response headers.
    #[serde(default = "defaults::upstream")]
    pub upstream: Duration,
    /// How long SIGTERM waits for in-flight requests and deliveries.
    #[serde(default = "defaults::shutdown_grace")]
    pub shutdown_grace: Duration,
}

impl Default for TimeoutsSpec {
    fn default() -> Self {
        Self {
            connect: defaults::connect(),
            upstream: defaults::upstream(),
            shutdown_grace: defaults::shutdown_grace(),
        }
    }
}

/// Limits on client connections, as nginx's `client_*` settings: how long a client may take
/// to send its head and its body, how big a head may be, how many connections may be open.
/// Read when the proxy starts (a change needs a restart, like `listen`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// Time to receive a whole request head, counted from its first byte; the connection is
    /// closed past it.
    #[serde(default = "defaults::header_timeout")]
    pub header_timeout: Duration,
    /// Time a connection may sit with no request and no byte (keep-alive between requests,
    /// or never sending one) before it is closed.
    #[serde(default = "defaults::idle_timeout")]
    pub idle_timeout: Duration,
    /// Longest pause in a request body before the request is answered 408.
    #[serde(default = "defaults::body_timeout")]
    pub body_timeout: Duration,
    /// Largest request body forwarded: a larger `Content-Length` is answered 413 before the
    /// IAM is asked, a body that grows past it (chunked) is cut off.
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: ByteSize,
    /// Largest request head (HTTP/1 read buffer, HTTP/2 header list).
    #[serde(default = "defaults::max_header_bytes")]
    pub max_header_bytes: ByteSize,
    /// Client connections open at once over all workers; more are closed at once.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// HTTP/2 streams one connection may have open at once.
    #[serde(default = "defaults::max_concurrent_streams")]
    pub max_concurrent_streams: u32,
}

impl Default for ClientSpec {
    fn default() -> Self {
        Self {
            header_timeout: defaults::header_timeout(),
            idle_timeout: defaults::idle_timeout(),
            body_timeout: defaults::body_timeout(),
            max_body_bytes: defaults::max_body_bytes(),
            max_header_bytes: defaults::max_header_bytes(),
            max_connections: defaults::max_connections(),
            max_concurrent_streams: defaults::max_concurrent_streams(),
        }
    }
}

/// Delivery engine settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySpec {
    /// Where the spool file lives (relative to the config file's directory).
    #[serde(default = "defaults::spool_dir")]
    pub spool_dir: String,
    /// Deliveries in flight at once, over all webhooks.
    #[serde(default = "defaults::concurrency")]
    pub concurrency: usize,
    /// fast | strict
    #[serde(default = "defaults::guarantee")]
    pub guarantee: String,
    /// Stored bytes at which new deliveries are refused (visibly), never blocked.
    #[serde(default = "defaults::max_spool_bytes")]
    pub max_spool_bytes: ByteSize,
    /// Delivery outcomes kept for listing.
    #[serde(default = "defaults::records")]
    pub records: usize,
    /// Successful deliveries kept (with their event) so they can be re-sent by time window;
    /// none by default, because a kept delivery keeps its user's data on disk.
    #[serde(default)]
    pub retain_delivered: RetainSpec,
}

impl Default for DeliverySpec {
    fn default() -> Self {
        Self {
            spool_dir: defaults::spool_dir(),
            concurrency: defaults::concurrency(),
            guarantee: defaults::guarantee(),
            max_spool_bytes: defaults::max_spool_bytes(),
            records: defaults::records(),
            retain_delivered: RetainSpec::default(),
        }
    }
}

/// How many successful deliveries the spool keeps for `userhook deliveries resend`, and for
/// how long: whichever bound is reached first drops the oldest.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetainSpec {
    /// Deliveries kept at most; 0 keeps none (and drops any kept before).
    #[serde(default)]
    pub count: usize,
    /// A kept delivery is dropped this long after it succeeded.
    #[serde(default = "defaults::retain_max_age")]
    pub max_age: Duration,
}

impl Default for RetainSpec {
    fn default() -> Self {
        RetainSpec {
            count: 0,
            max_age: defaults::retain_max_age(),
        }
    }
}

/// Most successful deliveries `delivery.retain_delivered.count` may keep.
pub const MAX_RETAINED: usize = 1_000_000;

/// Logging.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSpec {
    /// text | json
    #[serde(default = "defaults::log_format")]
    pub format: String,
    /// A tracing filter: `info`, `userhook=debug`, ...
    #[serde(default = "defaults::log_level")]
    pub level: String,
}

impl Default for LogSpec {
    fn default() -> Self {
        Self {
            format: defaults::log_format(),
            level: defaults::log_level(),
        }
    }
}

/// Default values, named so the reference docs and the code say the same thing.
mod defaults {
    use super::{ByteSize, Duration};

    pub(super) fn listen() -> String {
        "0.0.0.0:8080".into()
    }
    pub(super) fn admin_listen() -> String {
        "127.0.0.1:9090".into()
    }
    pub(super) fn yes() -> bool {
        true
    }
    pub(super) fn capture_limit() -> ByteSize {
        ByteSize(1024 * 1024)
    }
    pub(super) fn object() -> String {
        "user".into()
    }
    pub(super) fn post() -> String {
        "POST".into()
    }
    pub(super) fn webhook_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub(super) fn attempts() -> u32 {
        12
    }
    pub(super) fn retry_initial() -> Duration {
        Duration::from_secs(1)
    }
    pub(super) fn retry_max() -> Duration {
        Duration::from_secs(600)
    }
    pub(super) fn cache_capacity() -> usize {
        100_000
    }
    pub(super) fn connect() -> Duration {
        Duration::from_secs(2)
    }
    pub(super) fn upstream() -> Duration {
        Duration::from_secs(30)
    }
    pub(super) fn shutdown_grace() -> Duration {
        Duration::from_secs(10)
    }
    pub(super) fn header_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub(super) fn idle_timeout() -> Duration {
        Duration::from_secs(75)
    }
    pub(super) fn body_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub(super) fn max_body_bytes() -> ByteSize {
        ByteSize(64 * 1024 * 1024)
    }
    pub(super) fn max_header_bytes() -> ByteSize {
        ByteSize(16 * 1024)
    }
    pub(super) fn max_connections() -> usize {
        4096
    }
    pub(super) fn max_concurrent_streams() -> u32 {
        128
    }
    pub(super) fn spool_dir() -> String {
        "./data/spool".into()
    }
    pub(super) fn concurrency() -> usize {
        32
    }
    pub(super) fn guarantee() -> String {
        "fast".into()
    }
    pub(super) fn max_spool_bytes() -> ByteSize {
        ByteSize(1024 * 1024 * 1024)
    }
    pub(super) fn records() -> usize {
        10_000
    }
    pub(super) fn retain_max_age() -> Duration {
        Duration(std::time::Duration::from_secs(24 * 3600))
    }
    pub(super) fn log_format() -> String {
        "text".into()
    }
    pub(super) fn log_level() -> String {
        "info".into()
    }
}
