//! Header rules for a proxy hop (RFC 9110 section 7.6): what must not cross, what is added.
//!
//! Connection-specific ("hop-by-hop") headers describe one TCP connection and are removed in
//! both directions, together with every header the `Connection` header names. `X-Forwarded-*`
//! are appended so the IAM can still see the original client. Nothing here allocates unless a
//! header actually has to be rewritten. Never: drop an end-to-end header, or touch a body.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// `X-Forwarded-For`: the client address chain.
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`: the scheme the client used.
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`: the `Host` the client asked for.
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// True when the request asks to switch protocols (WebSocket and friends) on HTTP/1.1: then
/// `Upgrade` must cross the proxy and the two connections are joined after a 101.
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && connection_has_token(headers, "upgrade")
}

/// True when a `Connection` field lists `token` (`close`, `upgrade`, ...), which decides
/// whether a connection is kept and a protocol switch is asked for.
pub(crate) fn connection_has_token(headers: &HeaderMap, token: &str) -> bool {
    connection_tokens(headers).any(|t| t.eq_ignore_ascii_case(token))
}

/// The comma-separated options of every `Connection` field, trimmed.
fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Hop-by-hop header names as bits, so one pass over a message's names finds them all.
const CONNECTION_BIT: u16 = 1;
const TE_BIT: u16 = 1 << 1;
const UPGRADE_BIT: u16 = 1 << 2;
const EXPECT_BIT: u16 = 1 << 3;
/// Always removed when present (with [`HOP_BY_HOP`] in the same order from bit 4 on).
const PLAIN_SHIFT: u16 = 4;
const TRANSFER_ENCODING_BIT: u16 = 1 << (PLAIN_SHIFT + 4);

fn hop_bit(name: &HeaderName) -> u16 {
    match name.as_str() {
        "connection" => CONNECTION_BIT,
        "te" => TE_BIT,
        "upgrade" => UPGRADE_BIT,
        "expect" => EXPECT_BIT,
        "keep-alive" => 1 << PLAIN_SHIFT,
        "proxy-connection" => 1 << (PLAIN_SHIFT + 1),
        "proxy-authenticate" => 1 << (PLAIN_SHIFT + 2),
        "proxy-authorization" => 1 << (PLAIN_SHIFT + 3),
        "transfer-encoding" => TRANSFER_ENCODING_BIT,
        _ => 0,
    }
}

/// Headers that only describe the connection they arrived on (RFC 9110 7.6.1, plus the
/// historical `Keep-Alive` and `Proxy-Connection`), after `Connection` itself. `TE` is
/// handled apart: `TE: trailers` is passed on so trailers can flow end to end; `Trailer` is
/// end-to-end (it announces the trailer fields, and hyper only sends announced ones).
const HOP_BY_HOP: [HeaderName; 5] = [
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TRANSFER_ENCODING,
];

/// Which side of the proxy a message is crossing to: the two directions drop slightly
/// different headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// A client request on its way to the IAM: `Expect` is dropped too, because our own
    /// server answers `100-continue` when it starts reading the body.
    Request,
    /// The IAM's response on its way to the client.
    Response,
}

/// Removes hop-by-hop headers before a message crosses the proxy.
///
/// With `keep_upgrade`, `Upgrade` and `Connection: upgrade` survive so a protocol switch can
/// be negotiated end to end. Most messages carry none of these names: one pass over the
/// names, and no lookups, settles that.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, hop: Hop, keep_upgrade: bool) {
    let mut present = 0u16;
    for name in headers.keys() {
        present |= hop_bit(name);
    }
    if hop == Hop::Response {
        present &= !EXPECT_BIT;
    }
    if present == 0 && !keep_upgrade {
        return;
    }
    if present & CONNECTION_BIT != 0 {
        remove_connection_named(headers, keep_upgrade);
        headers.remove(header::CONNECTION);
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << (PLAIN_SHIFT + i as u16)) != 0 {
            headers.remove(name);
        }
    }
    // A message framed by Transfer-Encoding must not pass on a Content-Length it also
    // carried (RFC 9112 6.3): the next hop frames the body afresh.
    if present & TRANSFER_ENCODING_BIT != 0 {
        headers.remove(header::CONTENT_LENGTH);
    }
    if present & TE_BIT != 0 {
        let trailers_only = headers
            .get(header::TE)
            .is_some_and(|te| te.as_bytes().eq_ignore_ascii_case(b"trailers"));
        if !trailers_only {
            headers.remove(header::TE);
        }
    }
    if present & EXPECT_BIT != 0 {
        headers.remove(header::EXPECT);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else if present & UPGRADE_BIT != 0 {
        headers.remove(header::UPGRADE);
    }
}

/// Removes the headers `Connection` names, other than its own keywords and `Host`: a
/// request without `Host` is invalid in HTTP/1.1, so a client naming it gets it forwarded.
fn remove_connection_named(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Empty (no allocation) unless a field is named, which clients rarely do.
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter(|t| {
            !["close", "keep-alive", "upgrade"]
                .iter()
                .any(|k| t.eq_ignore_ascii_case(k))
        })
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .filter(|n| *n != header::HOST && !(keep_upgrade && *n == header::UPGRADE))
        .collect();
    for name in named {
        headers.remove(&name);
    }
}

/// Appends the client to `X-Forwarded-For`, the scheme to `X-Forwarded-Proto` and the
/// requested host to `X-Forwarded-Host`. The common case (none there yet) shares the given
/// bytes: no copies, one lookup per header.
pub fn append_forwarded(
    headers: &mut HeaderMap,
    client_ip: Option<&HeaderValue>,
    proto: &'static HeaderValue,
    host: Option<&HeaderValue>,
) {
    if let Some(ip) = client_ip {
        append_value(headers, &X_FORWARDED_FOR, ip);
    }
    append_value(headers, &X_FORWARDED_PROTO, proto);
    if let Some(host) = host {
        append_value(headers, &X_FORWARDED_HOST, host);
    }
}

/// Joins the `Cookie` fields an HTTP/2 client may send separately into one, as HTTP/1.1
/// servers expect (RFC 9113 8.2.3): the IAM would otherwise see only some of them.
pub fn join_cookies(headers: &mut HeaderMap) {
    let cookies = headers.get_all(header::COOKIE);
    if cookies.iter().nth(1).is_none() {
        return;
    }
    let joined = join_values(cookies.iter(), b"; ");
    if let Ok(v) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, v);
    }
}

/// The values of one header's fields joined with `separator`.
fn join_values<'a>(values: impl Iterator<Item = &'a HeaderValue>, separator: &[u8]) -> Vec<u8> {
    let mut joined = Vec::new();
    for v in values {
        if !joined.is_empty() {
            joined.extend_from_slice(separator);
        }
        joined.extend_from_slice(v.as_bytes());
    }
    joined
}

/// `X-Forwarded-Proto` for a plain-HTTP listener, static so forwarding it copies nothing.
pub static PROTO_HTTP: HeaderValue = HeaderValue::from_static("http");
/// `X-Forwarded-Proto` for the TLS listener.
pub static PROTO_HTTPS: HeaderValue = HeaderValue::from_static("https");

/// A client address as header text, made once per connection so requests only share it.
pub fn ip_value(ip: IpAddr) -> Option<HeaderValue> {
    HeaderValue::from_str(&ip.to_string()).ok()
}

/// Appends `value` to a comma-separated list header, creating it when absent. A list the
/// client split over several fields becomes one field with every element, in order.
fn append_value(headers: &mut HeaderMap, name: &HeaderName, value: &HeaderValue) {
    match headers.entry(name) {
        header::Entry::Vacant(e) => {
            e.insert(value.clone());
        }
        header::Entry::Occupied(mut e) => {
            let joined = join_values(e.iter().chain([value]), b", ");
            if let Ok(v) = HeaderValue::from_bytes(&joined) {
                e.insert(v);
            }
        }
    }
}

/// A header map from name/value pairs (repeats appended), for the proxy's unit tests.
#[cfg(test)]
pub(crate) fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in pairs {
        m.append(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_standard_and_connection_named_headers() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("proxy-authorization", "Basic abc"),
            ("te", "gzip"),
            ("upgrade", "websocket"),
            ("content-type", "application/json"),
        ]);
        strip_hop_by_hop(&mut h, Hop::Request, false);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["content-type"]);
    }

    #[test]
    fn a_host_named_in_connection_is_still_forwarded() {
        let mut h = map(&[
            ("host", "iam.example"),
            ("connection", "Host, x-hop"),
            ("x-hop", "1"),
        ]);
        strip_hop_by_hop(&mut h, Hop::Request, false);
        let left: Vec<(&str, &[u8])> = h.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
        assert_eq!(left, vec![("host", &b"iam.example"[..])]);
    }

    #[test]
    fn a_forwarded_for_list_over_several_fields_keeps_every_element() {
        let mut h = map(&[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-for", "10.0.0.1, 10.0.0.2"),
        ]);
        append_forwarded(
            &mut h,
            Some(&HeaderValue::from_static("127.0.0.1")),
            &PROTO_HTTP,
            None,
        );
        let values: Vec<&[u8]> = h
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        assert_eq!(
            values,
            vec![&b"203.0.113.7, 10.0.0.1, 10.0.0.2, 127.0.0.1"[..]]
        );
    }

    #[test]
    fn expect_is_dropped_only_on_the_way_to_the_iam() {
        let pairs = [
            ("expect", "100-continue"),
            ("connection", "keep-alive"),
            ("content-length", "5"),
        ];
        let mut request = map(&pairs);
        strip_hop_by_hop(&mut request, Hop::Request, false);
        let names: Vec<&str> = request.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["content-length"]);

        let mut response = map(&pairs);
        strip_hop_by_hop(&mut response, Hop::Response, false);
        let names: Vec<&str> = response.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["expect", "content-length"]);
    }

    #[test]
    fn transfer_encoding_drops_a_content_length_beside_it() {
        for hop in [Hop::Request, Hop::Response] {
            let mut h = map(&[
                ("transfer-encoding", "chunked"),
                ("content-length", "3"),
                ("content-type", "text/plain"),
            ]);
            strip_hop_by_hop(&mut h, hop, false);
            let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
            assert_eq!(names, vec!["content-type"]);
        }
    }

    #[test]
    fn http2_cookie_fields_are_joined() {
        let mut h = map(&[("cookie", "a=1"), ("x", "y"), ("cookie", "b=2")]);
        join_cookies(&mut h);
        let cookies: Vec<&[u8]> = h.get_all("cookie").iter().map(|v| v.as_bytes()).collect();
        assert_eq!(cookies, vec![&b"a=1; b=2"[..]]);
        let mut one = map(&[("cookie", "a=1")]);
        join_cookies(&mut one);
        assert_eq!(one.get("cookie").map(|v| v.as_bytes()), Some(&b"a=1"[..]));
    }

    #[test]
    fn messages_without_hop_headers_are_left_alone() {
        let mut h = map(&[("content-type", "text/plain"), ("x-a", "1"), ("x-a", "2")]);
        let before = h.clone();
        strip_hop_by_hop(&mut h, Hop::Response, false);
        assert_eq!(h, before);
    }

    #[test]
    fn keeps_te_trailers_and_upgrade_when_asked() {
        let mut h = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
        ]);
        assert!(wants_upgrade(&h));
        strip_hop_by_hop(&mut h, Hop::Request, true);
        assert_eq!(
            h.get("upgrade").map(|v| v.as_bytes()),
            Some(&b"websocket"[..])
        );
        assert_eq!(
            h.get("connection").map(|v| v.as_bytes()),
            Some(&b"upgrade"[..])
        );
        assert_eq!(h.get("te").map(|v| v.as_bytes()), Some(&b"trailers"[..]));
    }

    #[test]
    fn forwarded_headers_append() {
        let mut h = map(&[("x-forwarded-for", "10.0.0.1"), ("host", "iam.example")]);
        let host = h.get("host").cloned();
        let ip = ip_value("127.0.0.1".parse().expect("ip"));
        append_forwarded(&mut h, ip.as_ref(), &PROTO_HTTP, host.as_ref());
        assert_eq!(
            h.get("x-forwarded-for").map(|v| v.as_bytes()),
            Some(&b"10.0.0.1, 127.0.0.1"[..])
        );
        assert_eq!(
            h.get("x-forwarded-proto").map(|v| v.as_bytes()),
            Some(&b"http"[..])
        );
        assert_eq!(
            h.get("x-forwarded-host").map(|v| v.as_bytes()),
            Some(&b"iam.example"[..])
        );
    }

    #[test]
    fn ipv6_clients_are_forwarded_as_text() {
        let v6: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
            .parse()
            .expect("ip");
        assert_eq!(
            ip_value(v6).as_ref().map(|v| v.as_bytes()),
            Some(&b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"[..])
        );
        let mut h = HeaderMap::new();
        let ip = ip_value("::1".parse().expect("ip"));
        append_forwarded(&mut h, ip.as_ref(), &PROTO_HTTP, None);
        assert_eq!(
            h.get("x-forwarded-for").map(|v| v.as_bytes()),
            Some(&b"::1"[..])
        );
        assert!(h.get("x-forwarded-host").is_none());
    }
}
