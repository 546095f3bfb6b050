//! The compiled, immutable snapshot of one config: what a request uses from start to end.
//!
//! A reload compiles a new `Snapshot` and swaps it in atomically; requests already in flight
//! keep the `Arc` they started with, so no request ever sees half of two configs.
//! [`Snapshot::compile`] is the one place a config is checked: it reports every problem with
//! its key path at once, and a `Snapshot` that exists is valid. It never opens a socket or
//! starts a task.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::config::{ConfigError, ConfigErrors, ConfigFile};
use crate::detect::RouteTable;
use crate::event::Action;
use crate::redact::redact_url;
use crate::sink::Sinks;
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
    /// Longest pause allowed in a client's request body (`client.body_timeout`).
    pub body_timeout: Duration,
    /// Largest request body forwarded (`client.max_body_bytes`).
    pub max_body_bytes: u64,
    /// The compiled route rules.
    pub routes: RouteTable,
    /// `delivery.guarantee: strict`: hold the end of matched responses until their event is
    /// durable.
    pub strict: bool,
    /// The compiled webhooks (templates, headers, signers); deliveries look theirs up by name
    /// at each attempt.
    pub webhooks: Arc<Webhooks>,
    /// The compiled sinks (NATS JetStream); deliveries to them are looked up by name like
    /// webhooks.
    pub sinks: Arc<Sinks>,
    /// Proxied-request counters registered for these routes (the request path only indexes).
    pub proxy_counters: crate::metrics::ProxyCounters,
    /// What is allowed but most likely a mistake, with its key path: a rule that never fires
    /// (an earlier rule for the same call takes every match), a condition that always holds,
    /// a webhook or sink subscribed to an action nothing emits. `check` prints them, `serve`
    /// and reloads log them.
    pub warnings: Vec<ConfigError>,
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
    /// Compiles a parsed file into a snapshot, checking everything at once: the file-level
    /// settings (`config::validate`), addresses, the upstream and its TLS, route rules and
    /// profiles, and webhooks. Every problem is reported with its key path, none hides
    /// another. `previous` lends its upstream connection pool when the client settings did
    /// not change, so a reload does not drop warm connections.
    pub fn compile(
        file: ConfigFile,
        hash: String,
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, ConfigErrors> {
        let mut errors = Vec::new();
        let listen = socket_addr(&file.listen, "listen", &mut errors);
        let admin_listen = socket_addr(&file.admin.listen, "admin.listen", &mut errors);
        admin_access(&file.admin, admin_listen, &mut errors);
        let upstream = upstream(&file.upstream, &mut errors);
        if let Some(learn) = &file.learn {
            if learn.out.trim().is_empty() {
                errors.push(ConfigError::new(
                    "learn.out",
                    "is empty; expected the file the proposed rules are written to, e.g. learned.yaml",
                ));
            }
        }
        let ca_file = file.upstream_tls.ca_file.as_deref();
        let ca_readable =
            ca_file.is_none_or(|ca| readable_file(ca, "upstream_tls.ca_file", &mut errors));
        // The listener's own certificate is loaded by the proxy at start; a file that cannot
        // be read is reported here, so `check` finds it too.
        for (key, file) in [
            ("tls.cert_file", &file.tls.cert_file),
            ("tls.key_file", &file.tls.key_file),
        ] {
            if let Some(path) = file {
                readable_file(path, key, &mut errors);
            }
        }
        let client_key = ClientKey {
            upstream: file.upstream.clone(),
            connect_timeout: file.timeouts.connect.0,
            ca_file: file.upstream_tls.ca_file.clone(),
        };
        let client = match (previous, &upstream) {
            (Some(prev), _) if prev.client_key == client_key => Some(prev.client.clone()),
            (_, Some(upstream)) if ca_readable => UpstreamConnector::new(
                upstream,
                client_key.connect_timeout,
                client_key.ca_file.as_deref().map(Path::new),
            )
            .map(Arc::new)
            .map_err(|e| errors.push(ConfigError::new("upstream_tls.ca_file", e.to_string())))
            .ok(),
            // The upstream or its CA file is reported above.
            _ => None,
        };
        let routes = RouteTable::compile(&file.routes, &file.profiles)
            .map_err(|e| errors.extend(e))
            .ok();
        // Templates may use every field and detail a rule defines, the profiles' included.
        let mut custom: std::collections::BTreeSet<String> = file
            .custom_fields()
            .into_iter()
            .map(str::to_owned)
            .collect();
        if let Some(routes) = &routes {
            custom.extend(routes.field_names().iter().cloned());
            custom.extend(routes.detail_names().iter().cloned());
        }
        let webhooks = Webhooks::compile_with(&file, &custom)
            .map_err(|e| errors.extend(e))
            .ok();
        let sinks = Sinks::compile_with(&file, &custom)
            .map_err(|e| errors.extend(e))
            .ok();
        // File-level settings last, in the order problems were always listed.
        errors.extend(crate::config::validate::validate(&file));
        let errors: Vec<ConfigError> = errors
            .into_iter()
            .map(|e| file.env_values.scrub_error(e))
            .collect();

        match (
            listen,
            admin_listen,
            upstream,
            client,
            routes,
            webhooks,
            sinks,
        ) {
            (
                Some(listen),
                Some(admin_listen),
                Some(upstream),
                Some(client),
                Some(routes),
                Some(webhooks),
                Some(sinks),
            ) if errors.is_empty() => Ok(Snapshot {
                proxy_counters: crate::metrics::ProxyCounters::register(routes.entries()),
                warnings: warnings(&file, &routes, &webhooks),
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
                body_timeout: file.client.body_timeout.0,
                max_body_bytes: file.client.max_body_bytes.0,
                routes,
                webhooks: Arc::new(webhooks),
                sinks: Arc::new(sinks),
                strict: file.delivery.guarantee == "strict",
                file,
            }),
            _ => Err(ConfigErrors(errors)),
        }
    }

    /// Loads, parses and compiles the file at `path`.
    pub fn load(path: &Path, previous: Option<&Snapshot>) -> Result<Snapshot, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                "",
                format!("cannot read config file {}: {e}", path.display()),
            )
        })?;
        Snapshot::from_text(&text, previous)
    }

    /// Parses and compiles config text.
    pub fn from_text(text: &str, previous: Option<&Snapshot>) -> Result<Snapshot, ConfigErrors> {
        let file = crate::config::read_str(text)?;
        Snapshot::compile(file, content_hash(text), previous)
    }
}

/// Everything `check` points out about a config that compiled: the rules' own warnings, the
/// webhook filters' (a `when:` that always holds), then
/// each webhook or sink action that no route or profile emits (it would never be delivered).
fn warnings(file: &ConfigFile, routes: &RouteTable, webhooks: &Webhooks) -> Vec<ConfigError> {
    let mut out = routes.warnings().to_vec();
    out.extend(webhooks.warnings().iter().cloned());
    let targets = file
        .webhooks
        .iter()
        .enumerate()
        .map(|(i, w)| (format!("webhooks[{i}]"), &w.actions))
        .chain(
            file.sinks
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("sinks[{i}]"), &s.actions)),
        );
    for (at, actions) in targets {
        for (j, name) in actions.iter().enumerate() {
            let Ok(action) = name.parse::<Action>() else {
                continue; // "*", or an error reported by the target's compiler
            };
            if !routes.actions().contains(&action) {
                out.push(ConfigError::new(
                    format!("{at}.actions[{j}]"),
                    format!(
                        "no route or profile emits `{action}`, so this never receives one; add a \
                         rule with `action: {action}` or a profile that detects it"
                    ),
                ));
            }
        }
    }
    out.into_iter()
        .map(|w| file.env_values.scrub_error(w))
        .collect()
}

/// The address at `path`, or a problem saying what is expected.
fn socket_addr(text: &str, path: &str, errors: &mut Vec<ConfigError>) -> Option<SocketAddr> {
    text.parse()
        .map_err(|_| {
            errors.push(ConfigError::new(
                path,
                format!("`{text}` is not a socket address; expected IP:port, e.g. 0.0.0.0:8080 or [::1]:9090"),
            ))
        })
        .ok()
}

/// Shortest `admin.token` accepted: a guessable token would make the admin API public.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// Whether only this host can connect to a listener bound to `addr` (127.0.0.0/8, `::1`, and
/// the IPv4-mapped form of a loopback address). `0.0.0.0` and `::` are not: they accept every
/// interface.
pub fn loopback_only(addr: SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// `admin.token`: well-formed when set, and required when the admin listener can be reached
/// from other hosts (it shows names and emails and can replay or purge deliveries). Never
/// echoes the token.
fn admin_access(
    admin: &crate::config::model::AdminSpec,
    listen: Option<SocketAddr>,
    errors: &mut Vec<ConfigError>,
) {
    match &admin.token {
        Some(token) if token.is_empty() => errors.push(ConfigError::new(
            "admin.token",
            "is empty (is the environment variable set to an empty value?); expected a random value of at least 16 characters, e.g. from `openssl rand -hex 32`",
        )),
        Some(token) if !token.bytes().all(|b| b.is_ascii_graphic()) => {
            errors.push(ConfigError::new(
                "admin.token",
                "contains a space, control or non-ASCII character; expected printable ASCII (it is sent as `Authorization: Bearer <token>`), e.g. from `openssl rand -hex 32`",
            ))
        }
        Some(token) if token.len() < MIN_ADMIN_TOKEN_LEN => errors.push(ConfigError::new(
            "admin.token",
            format!(
                "is {} characters long; expected at least {MIN_ADMIN_TOKEN_LEN} random characters, e.g. from `openssl rand -hex 32`",
                token.len()
            ),
        )),
        Some(_) => {}
        None => {
            if let Some(addr) = listen.filter(|a| !loopback_only(*a)) {
                errors.push(ConfigError::new(
                    "admin.token",
                    format!(
                        "is required because admin.listen ({addr}) accepts connections from other hosts, and the admin API shows delivery records (names, emails) and can replay or purge dead letters; set `admin: {{token: ${{USERHOOK_ADMIN_TOKEN}}}}` or bind admin.listen to 127.0.0.1"
                    ),
                ));
            }
        }
    }
}

/// The `upstream:` URL, checked as text and then split for the request path.
fn upstream(url: &str, errors: &mut Vec<ConfigError>) -> Option<Upstream> {
    if let Some(p) = crate::config::url::upstream_problem(url) {
        errors.push(ConfigError::new(
            "upstream",
            format!(
                "`{}` {p}; expected an absolute http:// or https:// URL such as http://127.0.0.1:8081 (a path prefix is allowed)",
                redact_url(url)
            ),
        ));
        return None;
    }
    // The text check above already refused userinfo and queries, so the URL can be shown.
    Upstream::parse(url)
        .map_err(|e| errors.push(ConfigError::new("upstream", e.to_string())))
        .ok()
}

/// True when `file` is a readable regular file; otherwise a problem is pushed.
fn readable_file(file: &str, key: &str, errors: &mut Vec<ConfigError>) -> bool {
    let problem = match std::fs::metadata(file) {
        Ok(m) if !m.is_file() => Some("is not a regular file".to_string()),
        Ok(_) => std::fs::File::open(file)
            .err()
            .map(|e| format!("cannot be read ({e})")),
        Err(e) => Some(format!("cannot be read ({e})")),
    };
    match problem {
        Some(p) => {
            errors.push(ConfigError::new(
                key,
                format!("`{file}` {p}; expected a readable PEM file"),
            ));
            false
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The problems of a file that is `upstream: ...` plus `extra`, as `path: message` strings.
    fn problems(extra: &str) -> Vec<String> {
        problems_of(parse(&format!("upstream: http://127.0.0.1:8081\n{extra}")))
    }

    fn parse(text: &str) -> ConfigFile {
        match crate::config::read_str_with_env(text, &|_| None) {
            Ok(f) => f,
            Err(e) => panic!("test YAML does not parse: {e}"),
        }
    }

    fn problems_of(file: ConfigFile) -> Vec<String> {
        match Snapshot::compile(file, String::new(), None) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn one(found: Vec<String>, path: &str, fragment: &str) {
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with(&format!("{path}: ")), "{found:?}");
        assert!(found[0].contains(fragment), "{found:?}");
    }

    #[test]
    fn listener_certificate_files_must_be_readable() {
        assert_eq!(
            problems("tls: {cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem}\n"),
            [
                "tls.cert_file: `/nonexistent/c.pem` cannot be read (No such file or directory (os error 2)); expected a readable PEM file",
                "tls.key_file: `/nonexistent/k.pem` cannot be read (No such file or directory (os error 2)); expected a readable PEM file",
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        // An unknown action in a webhook once hid a template typo in another, and a bad
        // address hid every route error: all of them come back together now.
        let found = problems(
            "listen: nowhere\nroutes:\n  - {action: create, method: POST, path: /users}\nwebhooks:\n  - {name: a, actions: [delete], url: 'http://x/'}\n  - {name: b, actions: ['*'], url: 'http://x/', body: '{{$$.Nope$$}}'}\ncapture_limit: 0\n",
        );
        let paths: Vec<&str> = found
            .iter()
            .map(|e| e.split(": ").next().unwrap_or(""))
            .collect();
        assert_eq!(
            paths,
            [
                "listen",
                "routes[0].action",
                "webhooks[0].actions[0]",
                "webhooks[1].body",
                "capture_limit"
            ],
            "{found:#?}"
        );
    }

    #[test]
    fn listen_addresses() {
        one(
            problems("listen: localhost\n"),
            "listen",
            "expected IP:port",
        );
        one(
            problems("admin: {listen: ':9090'}\n"),
            "admin.listen",
            "socket address",
        );
        assert_eq!(problems("listen: '[::]:80'\n"), Vec::<String>::new());
    }

    #[test]
    fn admin_token_required_off_loopback() {
        one(
            problems("admin: {listen: '0.0.0.0:9090'}\n"),
            "admin.token",
            "is required because admin.listen (0.0.0.0:9090) accepts connections from other hosts",
        );
        one(
            problems("admin: {listen: '[::]:9090'}\n"),
            "admin.token",
            "is required",
        );
        one(
            problems("admin: {listen: '10.1.2.3:9090'}\n"),
            "admin.token",
            "is required",
        );
        for loopback in [
            "127.0.0.1:9090",
            "127.9.9.9:1",
            "[::1]:9090",
            "[::ffff:127.0.0.1]:9",
        ] {
            let text = format!("admin: {{listen: '{loopback}'}}\n");
            assert_eq!(problems(&text), Vec::<String>::new(), "{loopback}");
        }
        let token = "0123456789abcdef0123";
        assert_eq!(
            problems(&format!(
                "admin: {{listen: '0.0.0.0:9090', token: {token}}}\n"
            )),
            Vec::<String>::new()
        );
    }

    #[test]
    fn admin_token_must_be_long_printable_and_is_never_echoed() {
        one(problems("admin: {token: ''}\n"), "admin.token", "is empty");
        let short = problems("admin: {token: SHORTCANARY}\n");
        one(
            short.clone(),
            "admin.token",
            "is 11 characters long; expected at least 16",
        );
        assert!(!short[0].contains("SHORTCANARY"), "{short:?}");
        let spaced = problems("admin: {token: 'CANARY with spaces in it'}\n");
        one(spaced.clone(), "admin.token", "printable ASCII");
        assert!(!spaced[0].contains("CANARY"), "{spaced:?}");
    }

    #[test]
    fn admin_spec_debug_hides_the_token() {
        let file = parse("upstream: http://127.0.0.1:8081\nadmin: {token: CANARY0123456789abc}\n");
        let shown = format!("{file:?}");
        assert!(!shown.contains("CANARY"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn upstream_url() {
        let bad = [
            "ftp://h/",
            "127.0.0.1:8081",
            "/relative",
            "http://h/?q=1",
            "http://h/#frag",
            "http://user:pw@h/",
        ];
        for url in bad {
            let text = format!("upstream: '{url}'\n");
            let file: ConfigFile = parse(&text);
            let found: Vec<String> = problems_of(file).iter().map(|e| e.to_string()).collect();
            one(found, "upstream", "expected an absolute http://");
        }
        for url in ["https://iam.internal/auth", "http://[::1]:8081"] {
            let text = format!("upstream: '{url}'\n");
            let file: ConfigFile = parse(&text);
            assert!(problems_of(file).is_empty(), "{url}");
        }
    }

    #[test]
    fn upstream_error_hides_credentials() {
        let file: ConfigFile = parse("upstream: 'http://me:CANARY@h/'\n");
        let shown = problems_of(file)[0].clone();
        assert!(!shown.contains("CANARY"), "{shown}");
    }

    #[test]
    fn ca_file_must_be_readable() {
        one(
            problems("upstream_tls: {ca_file: /nonexistent/ca.pem}\n"),
            "upstream_tls.ca_file",
            "readable PEM file",
        );
        let dir = tempfile::tempdir().unwrap();
        one(
            problems(&format!(
                "upstream_tls: {{ca_file: '{}'}}\n",
                dir.path().display()
            )),
            "upstream_tls.ca_file",
            "not a regular file",
        );
        // Readable but not PEM: one problem, from building the client, not two.
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "pem").unwrap();
        let found = problems(&format!("upstream_tls: {{ca_file: '{}'}}\n", ca.display()));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("upstream_tls.ca_file: "), "{found:?}");
        assert!(!found[0].contains("readable PEM file"), "{found:?}");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["ca.test".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(&ca, cert.pem()).unwrap();
        assert!(problems(&format!("upstream_tls: {{ca_file: '{}'}}\n", ca.display())).is_empty());
    }

    /// Compiles `text` with the environment `pairs`: every error the operator would see.
    fn compile_with_env(text: &str, pairs: &[(&str, &str)]) -> Result<Snapshot, ConfigErrors> {
        let lookup = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let file = crate::config::read_str_with_env(text, &lookup)?;
        Snapshot::compile(file, String::new(), None)
    }

    #[test]
    fn env_values_never_appear_in_errors() {
        let canary = "CANARY-s3cr3t-value";
        let text = "upstream: http://u:1\nwebhooks:\n  - {name: a, actions: ['*'], url: '${URL}', timeout: '${T}'}\n";
        let result = compile_with_env(text, &[("URL", canary), ("T", "1x")]);
        let Err(e) = result else {
            panic!("expected an error")
        };
        let shown = e.to_string();
        assert!(shown.contains("webhooks[0].timeout"), "{shown}");
        assert!(!shown.contains("1x"), "{shown}");
        let text =
            "upstream: http://u:1\nwebhooks:\n  - {name: a, actions: ['*'], url: 'ftp://${URL}'}\n";
        let result = compile_with_env(text, &[("URL", canary)]);
        let Err(e) = result else {
            panic!("expected an error")
        };
        let shown = e.to_string();
        assert!(shown.contains("webhooks[0].url"), "{shown}");
        assert!(!shown.contains(canary), "{shown}");
    }

    #[test]
    fn all_validation_problems_reported_together() {
        let errs = problems_of(parse(
            "listen: nowhere\nupstream: ftp://u\nlog: {format: xml}\n",
        ));
        assert_eq!(errs.len(), 3, "{errs:?}");
    }

    #[test]
    fn warnings_name_actions_nothing_emits_and_dead_rules() {
        let text = "upstream: http://127.0.0.1:8081\nprofiles: [keycloak]\nroutes:\n  - {action: password_changed, method: POST, path: '/u/{id}/password'}\n  - {action: updated, method: POST, path: '/u/{id}/password'}\nwebhooks:\n  - {name: a, actions: [password_changed, login_failed, role_assigned, '*'], url: 'http://x/'}\nsinks:\n  - {name: s, kind: nats, url: 'nats://127.0.0.1:4222', subject: a.b, actions: [mfa_enrolled]}\n";
        let snapshot = Snapshot::compile(parse(text), String::new(), None).expect("valid");
        let shown: Vec<String> = snapshot.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 3, "{shown:#?}");
        assert!(
            shown[0].starts_with(
                "routes[1]: never fires: routes[0] (POST /u/{id}/password -> password_changed)"
            ),
            "{shown:#?}"
        );
        assert!(
            shown[1]
                .starts_with("webhooks[0].actions[2]: no route or profile emits `role_assigned`"),
            "{shown:#?}"
        );
        assert!(
            shown[2].starts_with("sinks[0].actions[0]: no route or profile emits `mfa_enrolled`"),
            "{shown:#?}"
        );
        let clean = Snapshot::compile(parse("upstream: http://127.0.0.1:8081\nprofiles: [scim]\nwebhooks:\n  - {name: a, actions: [created, deleted], url: 'http://x/'}\n"), String::new(), None).expect("valid");
        assert!(clean.warnings.is_empty(), "{:?}", clean.warnings);
    }

    #[test]
    fn templates_may_use_the_profiles_own_fields_and_details() {
        let with = |profiles: &str| {
            problems(&format!(
                "profiles: [{profiles}]\nwebhooks:\n  - {{name: a, actions: ['*'], url: 'http://x/', body: '{{\"why\": \"{{{{$$.Reason$$}}}}\"}}'}}\n"
            ))
        };
        // better-auth's failed sign-in names its `Reason` (a detail); scim defines none.
        assert_eq!(with("better-auth"), Vec::<String>::new());
        let without = with("scim");
        assert_eq!(without.len(), 1, "{without:?}");
        assert!(without[0].contains("Reason"), "{without:?}");
    }
}
