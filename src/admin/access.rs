//! Who may use the admin API, decided before any handler runs.
//!
//! The admin API shows delivery records and dead letters (names, emails) and can replay or
//! purge deliveries, so it is guarded in three ways (README "Admin API security"):
//!
//! - **Token.** With `admin.token` set, every endpoint but the probes (`/healthz`, `/readyz`)
//!   and the web console's files (`/`, `/console/…`: the same bytes for everyone, no data;
//!   the page reads its data with the token) needs `Authorization: Bearer <token>`, `/metrics` included (Prometheus sends it with
//!   `authorization: {credentials: …}`). The comparison is constant-time over SHA-256
//!   digests, so neither the content nor the length of the token leaks through timing. A
//!   listener that is not loopback-only without a token is refused by the config check; should
//!   a reload ever remove the token from such a listener, every guarded endpoint is refused
//!   (fail closed) until it is restored.
//! - **Host.** A request without the token (loopback, no token configured) must name the
//!   listener as `localhost` or an IP literal in `Host`: a DNS-rebinding page reaches
//!   127.0.0.1 under its *own* name, so its requests carry that name and are refused. A
//!   request with the right token passes whatever its `Host`: a rebinding page cannot know it.
//! - **Cross-site.** Mutating requests (anything but GET and HEAD) must be non-simple
//!   (`Content-Type: application/json`, which a cross-site form or `fetch` cannot send
//!   without a CORS preflight the admin API never grants), must not say
//!   `Sec-Fetch-Site: cross-site`/`same-site`, and an `Origin` they carry must be the
//!   listener's own.
//!
//! Refusals say what to send; they never echo a token or a header value.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::respond::error;
use crate::snapshot::loopback_only;

/// What an endpoint is, for the checks it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `/healthz`, `/readyz`: open, so kubelets and load balancers can probe without a secret.
    Probe,
    /// GET/HEAD of the console's files (`/`, `/console/…`): open, since they carry no data
    /// and a browser's navigation cannot send a token; the page's own requests are `Read`
    /// and `Mutate` like anyone's.
    Asset,
    /// GET/HEAD of anything else: data (records, dead letters, config, metrics).
    Read,
    /// Any other method: replay, purge, and whatever is added later.
    Mutate,
}

impl Kind {
    /// The kind of a request to `path` with `method`.
    pub(crate) fn of(method: &Method, path: &str) -> Kind {
        let read = method == Method::GET || method == Method::HEAD;
        match path {
            "/healthz" | "/readyz" if read => Kind::Probe,
            p if read && (p == "/" || p.starts_with("/console/")) => Kind::Asset,
            _ if read => Kind::Read,
            _ => Kind::Mutate,
        }
    }
}

/// What the checks compare a request with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy<'a> {
    /// `admin.token` of the running config.
    pub token: Option<&'a str>,
    /// The address the admin listener is bound to (not the config's: a reload cannot move it).
    pub bound: SocketAddr,
}

/// Why a request is refused: the status and the sentence the caller reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// 401, 403 or 415.
    pub status: StatusCode,
    /// What was wrong and what to send instead.
    pub message: &'static str,
}

impl Refusal {
    fn new(status: StatusCode, message: &'static str) -> Self {
        Refusal { status, message }
    }

    /// The refusal as the admin API answers it (401s name the scheme to use).
    pub(crate) fn response(&self) -> Response<Full<Bytes>> {
        let mut resp = error(self.status, self.message);
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"userhook admin\""),
            );
        }
        resp
    }
}

const MISSING_TOKEN: &str =
    "this endpoint needs the admin token: send `Authorization: Bearer <admin.token>`";
const WRONG_TOKEN: &str =
    "the bearer token does not match admin.token: send `Authorization: Bearer <admin.token>`";
const NO_TOKEN_CONFIGURED: &str = "the admin listener accepts connections from other hosts but the running config has no admin.token: set admin.token (and reload) to use this endpoint";
const BAD_HOST: &str = "the Host header must be localhost or an IP address (DNS-rebinding protection); connect to http://127.0.0.1:PORT or send the admin token";
const CROSS_SITE: &str = "cross-site requests may not change anything here (Sec-Fetch-Site); send the request from a command-line client such as curl or `userhook deadletter`";
const FOREIGN_ORIGIN: &str = "the Origin header names another site; requests that change something must come from the admin listener's own origin or carry no Origin (curl, `userhook deadletter`)";
const NOT_JSON: &str = "requests that change something must send `Content-Type: application/json` (a plain form POST is refused: cross-site protection)";

/// Every check for one request; `Ok` means the handler may run.
pub(crate) fn check(
    policy: &Policy<'_>,
    kind: Kind,
    headers: &HeaderMap,
    authority: Option<&str>,
) -> Result<(), Refusal> {
    if matches!(kind, Kind::Probe | Kind::Asset) {
        return Ok(());
    }
    let authenticated = match policy.token {
        Some(token) => match bearer(headers) {
            None => return Err(Refusal::new(StatusCode::UNAUTHORIZED, MISSING_TOKEN)),
            Some(presented) if !token_matches(presented, token) => {
                return Err(Refusal::new(StatusCode::UNAUTHORIZED, WRONG_TOKEN))
            }
            Some(_) => true,
        },
        None if !loopback_only(policy.bound) => {
            return Err(Refusal::new(StatusCode::FORBIDDEN, NO_TOKEN_CONFIGURED))
        }
        None => false,
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(authority);
    if !authenticated && !host.is_some_and(host_is_local_or_ip) {
        return Err(Refusal::new(StatusCode::FORBIDDEN, BAD_HOST));
    }
    if kind == Kind::Mutate {
        if let Some(site) = headers.get("sec-fetch-site") {
            if !matches!(site.as_bytes(), b"same-origin" | b"none") {
                return Err(Refusal::new(StatusCode::FORBIDDEN, CROSS_SITE));
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            if !origin_is(origin.as_bytes(), host) {
                return Err(Refusal::new(StatusCode::FORBIDDEN, FOREIGN_ORIGIN));
            }
        }
        if !is_json(headers) {
            return Err(Refusal::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, NOT_JSON));
        }
    }
    Ok(())
}

/// The credentials of an `Authorization: Bearer …` header (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let start = rest.iter().position(|b| *b != b' ')?;
    Some(rest.get(start..)?.trim_ascii_end())
}

/// Constant-time equality of the presented token and `admin.token`, over their digests so
/// the lengths do not show either.
fn token_matches(presented: &[u8], token: &str) -> bool {
    let a = Sha256::digest(presented);
    let b = Sha256::digest(token.as_bytes());
    a.ct_eq(&b).into()
}

/// `localhost` or an IP literal, with or without a port: names a rebinding page cannot use.
fn host_is_local_or_ip(host: &str) -> bool {
    let name = host_name(host);
    let name = name.strip_suffix('.').unwrap_or(name);
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok()
}

/// The host of a `Host` value without its port; an IPv6 literal without its brackets.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(host, |(ip, _)| ip);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// An `Origin` is the listener's own when it is `http://` plus the request's `Host`.
fn origin_is(origin: &[u8], host: Option<&str>) -> bool {
    let Some(host) = host else {
        return false;
    };
    origin
        .strip_prefix(b"http://")
        .is_some_and(|rest| rest.eq_ignore_ascii_case(host.as_bytes()))
}

/// `Content-Type: application/json`, parameters (a charset) allowed.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "s3cr3t-admin-token-0123456789";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn loopback(token: Option<&str>) -> Policy<'_> {
        Policy {
            token,
            bound: "127.0.0.1:9090".parse().unwrap(),
        }
    }

    fn open(token: Option<&str>) -> Policy<'_> {
        Policy {
            token,
            bound: "0.0.0.0:9090".parse().unwrap(),
        }
    }

    fn status(p: &Policy<'_>, kind: Kind, h: &[(&'static str, &str)]) -> u16 {
        match check(p, kind, &headers(h), None) {
            Ok(()) => 200,
            Err(r) => r.status.as_u16(),
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(Kind::of(&Method::GET, "/healthz"), Kind::Probe);
        assert_eq!(Kind::of(&Method::HEAD, "/readyz"), Kind::Probe);
        assert_eq!(Kind::of(&Method::POST, "/readyz"), Kind::Mutate);
        assert_eq!(Kind::of(&Method::GET, "/metrics"), Kind::Read);
        assert_eq!(Kind::of(&Method::GET, "/deadletters"), Kind::Read);
        assert_eq!(Kind::of(&Method::POST, "/deadletters/purge"), Kind::Mutate);
        assert_eq!(Kind::of(&Method::DELETE, "/deadletters/x"), Kind::Mutate);
        assert_eq!(Kind::of(&Method::OPTIONS, "/deadletters"), Kind::Mutate);
        assert_eq!(Kind::of(&Method::GET, "/"), Kind::Asset);
        assert_eq!(Kind::of(&Method::GET, "/console/console.js"), Kind::Asset);
        assert_eq!(Kind::of(&Method::POST, "/"), Kind::Mutate);
        assert_eq!(Kind::of(&Method::GET, "/consolex"), Kind::Read);
        assert_eq!(Kind::of(&Method::GET, "/events"), Kind::Read);
    }

    #[test]
    fn probes_are_always_open() {
        for p in [
            loopback(None),
            loopback(Some(TOKEN)),
            open(None),
            open(Some(TOKEN)),
        ] {
            assert_eq!(status(&p, Kind::Probe, &[]), 200);
            assert_eq!(status(&p, Kind::Probe, &[("host", "evil.example")]), 200);
        }
    }

    #[test]
    fn a_configured_token_is_required_on_loopback_too() {
        let p = loopback(Some(TOKEN));
        let host = ("host", "127.0.0.1:9090");
        assert_eq!(status(&p, Kind::Read, &[host]), 401);
        let bearer = format!("Bearer {TOKEN}");
        assert_eq!(
            status(&p, Kind::Read, &[host, ("authorization", &bearer)]),
            200
        );
        let lower = format!("bearer   {TOKEN}");
        assert_eq!(
            status(&p, Kind::Read, &[host, ("authorization", &lower)]),
            200
        );
        for wrong in [
            format!("Bearer {TOKEN}x"),
            format!("Bearer {}", &TOKEN[1..]),
            "Bearer ".to_string(),
            format!("Basic {TOKEN}"),
            TOKEN.to_string(),
        ] {
            assert_eq!(
                status(&p, Kind::Read, &[host, ("authorization", &wrong)]),
                401,
                "{wrong}"
            );
        }
        let refused = check(&p, Kind::Read, &headers(&[host]), None).unwrap_err();
        let resp = refused.response();
        assert_eq!(
            resp.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            "Bearer realm=\"userhook admin\""
        );
        assert!(refused
            .message
            .contains("Authorization: Bearer <admin.token>"));
    }

    #[test]
    fn an_open_listener_without_a_token_fails_closed() {
        let p = open(None);
        let r = check(&p, Kind::Read, &headers(&[("host", "127.0.0.1")]), None).unwrap_err();
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.message.contains("set admin.token"), "{}", r.message);
        assert_eq!(status(&p, Kind::Mutate, &[("host", "127.0.0.1")]), 403);
    }

    #[test]
    fn host_must_be_local_or_an_ip_without_the_token() {
        let p = loopback(None);
        for good in [
            "127.0.0.1:9090",
            "localhost:9090",
            "LOCALHOST",
            "localhost.:9090",
            "[::1]:9090",
            "10.0.0.7:9090",
        ] {
            assert_eq!(status(&p, Kind::Read, &[("host", good)]), 200, "{good}");
        }
        for bad in [
            "evil.example:9090",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io:9090",
            "[::1",
        ] {
            assert_eq!(status(&p, Kind::Read, &[("host", bad)]), 403, "{bad}");
        }
        assert_eq!(status(&p, Kind::Read, &[]), 403, "no Host at all");
        // HTTP/2 carries the authority in the URI.
        assert!(check(&p, Kind::Read, &HeaderMap::new(), Some("127.0.0.1:9090")).is_ok());
        // With the token the Host does not matter: a rebinding page cannot know it.
        let t = open(Some(TOKEN));
        let bearer = format!("Bearer {TOKEN}");
        assert_eq!(
            status(
                &t,
                Kind::Read,
                &[("host", "iam-admin.svc"), ("authorization", &bearer)]
            ),
            200
        );
    }

    #[test]
    fn mutations_must_be_same_origin_and_json() {
        let p = loopback(None);
        let host = ("host", "127.0.0.1:9090");
        let json = ("content-type", "application/json");
        assert_eq!(status(&p, Kind::Mutate, &[host, json]), 200);
        assert_eq!(
            status(
                &p,
                Kind::Mutate,
                &[host, ("content-type", "Application/JSON; charset=utf-8")]
            ),
            200
        );
        for simple in [
            "application/x-www-form-urlencoded",
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/jsonx",
        ] {
            assert_eq!(
                status(&p, Kind::Mutate, &[host, ("content-type", simple)]),
                415,
                "{simple}"
            );
        }
        assert_eq!(status(&p, Kind::Mutate, &[host]), 415);
        for site in ["cross-site", "same-site"] {
            assert_eq!(
                status(&p, Kind::Mutate, &[host, json, ("sec-fetch-site", site)]),
                403,
                "{site}"
            );
        }
        for site in ["same-origin", "none"] {
            assert_eq!(
                status(&p, Kind::Mutate, &[host, json, ("sec-fetch-site", site)]),
                200,
                "{site}"
            );
        }
        assert_eq!(
            status(
                &p,
                Kind::Mutate,
                &[host, json, ("origin", "http://127.0.0.1:9090")]
            ),
            200
        );
        for origin in [
            "http://evil.example",
            "null",
            "https://127.0.0.1:9090",
            "http://127.0.0.1:9091",
        ] {
            assert_eq!(
                status(&p, Kind::Mutate, &[host, json, ("origin", origin)]),
                403,
                "{origin}"
            );
        }
        // The token does not excuse a cross-site or simple request.
        let t = loopback(Some(TOKEN));
        let bearer = format!("Bearer {TOKEN}");
        let auth = ("authorization", bearer.as_str());
        assert_eq!(status(&t, Kind::Mutate, &[host, auth, json]), 200);
        assert_eq!(status(&t, Kind::Mutate, &[host, auth]), 415);
        assert_eq!(
            status(
                &t,
                Kind::Mutate,
                &[host, auth, json, ("origin", "http://evil.example")]
            ),
            403
        );
    }

    #[test]
    fn refusals_never_echo_what_was_sent() {
        let p = loopback(Some(TOKEN));
        let r = check(
            &p,
            Kind::Read,
            &headers(&[("authorization", "Bearer CANARY-presented")]),
            None,
        )
        .unwrap_err();
        assert!(!r.message.contains("CANARY"));
        assert!(!r.message.contains(TOKEN));
    }
}
