//! The compiled, immutable snapshot of one config: what a request uses from start to end.
//!
//! A reload builds a new `Snapshot` and swaps it in atomically; requests already in flight
//! keep the `Arc` they started with, so no request ever sees half of two configs. Building
//! checks everything that needs compiling (addresses, upstream, TLS, route rules) and
//! reports every problem with its key path; a `Snapshot` that exists is valid.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::config::{ConfigError, ConfigErrors, ConfigFile};
use crate::detect::RouteTable;
use crate::upstream::{Upstream, UpstreamConnector};
use crate::webhook::Webhooks;

/// The settings that shape the upstream client; when a reload leaves them alone the
/// connection pool is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClientKey {
    upstream: String,
    connect_timeout: Duration,
    ca_file: Option<String>,
}

/// One loaded config, ready for the request path.
pub struct Snapshot {
    /// The file as parsed (interpolated); kept for `/config` and for diffing reloads.
    pub file: ConfigFile,
    /// SHA-256 of the file's text, hex: tells operators which version is running.
    pub hash: String,
    /// When this snapshot was built.
    pub loaded_at: SystemTime,
    /// Where the proxy listens (a change needs a restart).
    pub listen: SocketAddr,
    /// Where the admin API listens (a change needs a restart).
    pub admin_listen: SocketAddr,
    /// The IAM's base URL, pre-split.
    pub upstream: Upstream,
    /// How to reach the IAM; kept from the previous snapshot when its settings did not
    /// change, so every thread keeps its warm connection pool across reloads.
    pub client: Arc<UpstreamConnector>,
    client_key: ClientKey,
    /// Keep the client's `Host` header.
    pub preserve_host: bool,
    /// Bytes of each matched body kept for extraction.
    pub capture_limit: usize,
    /// Time allowed for the upstream's response headers.
    pub upstream_timeout: Duration,
    /// The compiled route rules.
    pub routes: RouteTable,
    /// `delivery.guarantee: strict`: hold the end of matched responses until their event is
    /// durable.
    pub strict: bool,
    /// The compiled webhooks (templates, headers, signers); deliveries look theirs up by name
    /// at each attempt.
    pub webhooks: Arc<Webhooks>,
    /// Proxied-request counters registered for these routes (the request path only indexes).
    pub proxy_counters: crate::metrics::ProxyCounters,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("hash", &self.hash)
            .field("listen", &self.listen)
            .field("upstream", &self.upstream)
            .field("routes", &self.routes.len())
            .field("webhooks", &self.webhooks.len())
            .finish_non_exhaustive()
    }
}

/// Hex SHA-256 of config text.
pub fn content_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Snapshot {
    /// Compiles a parsed file. `previous` lends its upstream connection pool when the
    /// client settings did not change, so a reload does not drop warm connections.
    pub fn build(
        file: ConfigFile,
        hash: String,
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, ConfigErrors> {
        let mut errors = Vec::new();
        let listen = parse_addr(&file.listen, "listen", &mut errors);
        let admin_listen = parse_addr(&file.admin.listen, "admin.listen", &mut errors);
        let upstream = Upstream::parse(&file.upstream)
            .map_err(|e| errors.push(ConfigError::new("upstream", e)))
            .ok();
        let client_key = ClientKey {
            upstream: file.upstream.clone(),
            connect_timeout: file.timeouts.connect.0,
            ca_file: file.upstream_tls.ca_file.clone(),
        };
        let client = match (previous, &upstream) {
            (Some(prev), _) if prev.client_key == client_key => Some(prev.client.clone()),
            (_, Some(upstream)) => UpstreamConnector::new(
                upstream,
                client_key.connect_timeout,
                client_key.ca_file.as_deref().map(Path::new),
            )
            .map(Arc::new)
            .map_err(|e| errors.push(ConfigError::new("upstream_tls.ca_file", e)))
            .ok(),
            // `upstream` itself is reported above.
            (_, None) => None,
        };
        let routes = RouteTable::compile(&file.routes, &file.profiles)
            .map_err(|e| errors.extend(e))
            .ok();
        let webhooks = Webhooks::compile(&file).map_err(|e| errors.extend(e)).ok();

        match (listen, admin_listen, upstream, client, routes, webhooks) {
            (
                Some(listen),
                Some(admin_listen),
                Some(upstream),
                Some(client),
                Some(routes),
                Some(webhooks),
            ) if errors.is_empty() => Ok(Snapshot {
                proxy_counters: crate::metrics::ProxyCounters::register(routes.entries()),
                hash,
                loaded_at: SystemTime::now(),
                listen,
                admin_listen,
                upstream,
                client,
                client_key,
                preserve_host: file.preserve_host,
                capture_limit: usize::try_from(file.capture_limit.0).unwrap_or(usize::MAX),
                upstream_timeout: file.timeouts.upstream.0,
                routes,
                webhooks: Arc::new(webhooks),
                strict: file.delivery.guarantee == "strict",
                file,
            }),
            _ => Err(ConfigErrors(errors)),
        }
    }

    /// Loads, parses, validates and compiles the file at `path`.
    pub fn load(path: &Path, previous: Option<&Snapshot>) -> Result<Snapshot, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                "",
                format!("cannot read config file {}: {e}", path.display()),
            )
        })?;
        Snapshot::from_text(&text, previous)
    }

    /// Parses, validates and compiles config text.
    pub fn from_text(text: &str, previous: Option<&Snapshot>) -> Result<Snapshot, ConfigErrors> {
        let file = crate::config::parse_str(text)?;
        // Compile errors may quote a template or URL; values from `${VAR}` go back to names.
        let env = file.env_values.clone();
        Snapshot::build(file, content_hash(text), previous).map_err(|errors| {
            ConfigErrors(
                errors
                    .0
                    .into_iter()
                    .map(|mut e| {
                        e.message = env.scrub(&e.message);
                        e
                    })
                    .collect(),
            )
        })
    }
}

fn parse_addr(text: &str, path: &str, errors: &mut Vec<ConfigError>) -> Option<SocketAddr> {
    text.parse()
        .map_err(|_| {
            errors.push(ConfigError::new(
                path,
                format!("`{text}` is not an address; expected IP:PORT such as 0.0.0.0:8080"),
            ))
        })
        .ok()
}
