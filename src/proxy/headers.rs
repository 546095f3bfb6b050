//! Header rules for a proxy hop (RFC 9110 section 7.6): what must not cross, what is added.
//!
//! Connection-specific ("hop-by-hop") headers describe one TCP connection and are removed in
//! both directions, together with every header the `Connection` header names. `X-Forwarded-*`
//! are appended so the IAM can still see the original client. Nothing here allocates unless a
//! header actually has to be rewritten.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that only describe the connection they arrived on (RFC 9110 7.6.1, plus the
/// historical `Keep-Alive` and `Proxy-Connection`). `TE` is handled apart: `TE: trailers`
/// is passed on so trailers can flow end to end; `Trailer` is end-to-end (it announces the
/// trailer fields, and hyper only sends announced ones).
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TRANSFER_ENCODING,
];

/// `X-Forwarded-For`: the client address chain.
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`: the scheme the client used.
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`: the `Host` the client asked for.
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// True when the request asks to switch protocols (WebSocket and friends) on HTTP/1.1.
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && connection_has_token(headers, "upgrade")
}

fn connection_has_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// True when a header of this name may need removing or rewriting at a hop: one pass over the
/// names instead of a lookup per hop-by-hop header, since most messages carry none.
fn maybe_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "transfer-encoding"
            | "te"
            | "upgrade"
    )
}

/// Removes hop-by-hop headers before a message crosses the proxy.
///
/// With `keep_upgrade`, `Upgrade` and `Connection: upgrade` survive so a protocol switch can
/// be negotiated end to end.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    if !keep_upgrade && !headers.keys().any(maybe_hop_by_hop) {
        return;
    }
    // Headers named by `Connection` are hop-by-hop too. Collect only when there are any.
    if let Some(conn) = headers.get(header::CONNECTION) {
        let named_something_else = conn
            .to_str()
            .map(|v| {
                v.split(',').map(str::trim).any(|t| {
                    !t.is_empty()
                        && !t.eq_ignore_ascii_case("close")
                        && !t.eq_ignore_ascii_case("keep-alive")
                        && !t.eq_ignore_ascii_case("upgrade")
                })
            })
            .unwrap_or(false);
        if named_something_else {
            let named: Vec<HeaderName> = headers
                .get_all(header::CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
                .collect();
            for name in named {
                if keep_upgrade && name == header::UPGRADE {
                    continue;
                }
                headers.remove(&name);
            }
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if let Some(te) = headers.get(header::TE) {
        if !te.as_bytes().eq_ignore_ascii_case(b"trailers") {
            headers.remove(header::TE);
        }
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// Appends the client to `X-Forwarded-For`, the scheme to `X-Forwarded-Proto` and the
/// requested host to `X-Forwarded-Host`.
pub fn append_forwarded(
    headers: &mut HeaderMap,
    client_ip: Option<&HeaderValue>,
    proto: &'static str,
    host: Option<&HeaderValue>,
) {
    if let Some(ip) = client_ip {
        if headers.contains_key(&X_FORWARDED_FOR) {
            append_value(headers, &X_FORWARDED_FOR, ip.as_bytes());
        } else {
            headers.insert(X_FORWARDED_FOR.clone(), ip.clone());
        }
    }
    // The common case (no such header yet) reuses static and shared bytes: no copies.
    if headers.contains_key(&X_FORWARDED_PROTO) {
        append_value(headers, &X_FORWARDED_PROTO, proto.as_bytes());
    } else {
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    }
    if let Some(host) = host {
        if headers.contains_key(&X_FORWARDED_HOST) {
            append_value(headers, &X_FORWARDED_HOST, host.as_bytes());
        } else {
            headers.insert(X_FORWARDED_HOST.clone(), host.clone());
        }
    }
}

/// A client address as header text, made once per connection so requests only share it.
pub fn ip_value(ip: IpAddr) -> Option<HeaderValue> {
    HeaderValue::from_str(&ip.to_string()).ok()
}

/// Appends `value` to a comma-separated list header, creating it when absent.
fn append_value(headers: &mut HeaderMap, name: &HeaderName, value: &[u8]) {
    let new = match headers.get(name) {
        None => HeaderValue::from_bytes(value),
        Some(existing) => {
            let mut joined = Vec::with_capacity(existing.len() + 2 + value.len());
            joined.extend_from_slice(existing.as_bytes());
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(value);
            HeaderValue::from_bytes(&joined)
        }
    };
    if let Ok(v) = new {
        headers.insert(name.clone(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        m
    }

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
        strip_hop_by_hop(&mut h, false);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["content-type"]);
    }

    #[test]
    fn keeps_te_trailers_and_upgrade_when_asked() {
        let mut h = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
        ]);
        assert!(wants_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
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
        append_forwarded(&mut h, ip.as_ref(), "http", host.as_ref());
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
            Some(v6.to_string().as_bytes())
        );
        let mut h = HeaderMap::new();
        let ip = ip_value("::1".parse().expect("ip"));
        append_forwarded(&mut h, ip.as_ref(), "http", None);
        assert_eq!(
            h.get("x-forwarded-for").map(|v| v.as_bytes()),
            Some(&b"::1"[..])
        );
        assert!(h.get("x-forwarded-host").is_none());
    }
}
