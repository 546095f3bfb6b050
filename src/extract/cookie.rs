//! Cookies: one value out of the request's `Cookie` headers, and one cookie the IAM sets in
//! its `Set-Cookie` headers with the lifetime it gives it.
//!
//! Session cookies are how legacy IAMs know who is calling, so the session index reads them;
//! their values are credentials and leave this module only to be hashed (or because an
//! operator's rule maps them explicitly). Nothing here may panic on any header: a cookie that
//! cannot be read is simply absent.

use std::time::{Duration, SystemTime};

use http::header::{COOKIE, SET_COOKIE};
use http::HeaderMap;

/// A cookie the IAM set, with the lifetime its attributes give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    /// The cookie's value (quotes removed).
    pub value: String,
    /// `Max-Age` (which wins) or `Expires`, from now; `None` for a session cookie.
    pub lifetime: Option<Duration>,
}

/// The value of cookie `name` in the request's `Cookie` headers (HTTP/2 clients may send
/// several); the first non-empty one wins. Names are case-sensitive, as browsers send them.
pub fn request_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == name).then(|| unquote(v.trim()))
        })
        .find(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The cookie `name` the response sets, unless the response deletes it (an empty value,
/// `Max-Age` 0 or less, or an `Expires` in the past): a deleted cookie is no credential.
/// The last `Set-Cookie` for the name wins, as in a browser.
pub fn response_cookie(headers: &HeaderMap, name: &str, now: SystemTime) -> Option<SetCookie> {
    let mut found = None;
    for line in headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        let mut parts = line.split(';');
        let Some((k, v)) = parts.next().and_then(|p| p.split_once('=')) else {
            continue;
        };
        if k.trim() != name {
            continue;
        }
        found = Some(parse_attributes(unquote(v.trim()), parts, now));
    }
    found.flatten()
}

/// The cookie's value and lifetime from its attributes; `None` when they delete it.
fn parse_attributes<'a>(
    value: &str,
    attributes: impl Iterator<Item = &'a str>,
    now: SystemTime,
) -> Option<SetCookie> {
    let mut max_age: Option<i64> = None;
    let mut expires: Option<SystemTime> = None;
    for attr in attributes {
        let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("max-age") {
            // RFC 6265 5.2.2: a leading digit or `-`, then digits; anything else is ignored.
            max_age = v.parse::<i64>().ok().or(max_age);
        } else if k.eq_ignore_ascii_case("expires") {
            expires = parse_cookie_date(v).or(expires);
        }
    }
    let lifetime = match (max_age, expires) {
        (Some(secs), _) if secs <= 0 => return None,
        (Some(secs), _) => Some(Duration::from_secs(secs.unsigned_abs())),
        (None, Some(at)) => Some(at.duration_since(now).ok().filter(|d| !d.is_zero())?),
        (None, None) => None,
    };
    (!value.is_empty()).then(|| SetCookie {
        value: value.to_owned(),
        lifetime,
    })
}

/// `Expires` as IAMs write it: the IMF-fixdate of RFC 7231 (`Wed, 21 Oct 2026 07:28:00 GMT`)
/// or the older `Wed, 21-Oct-2026 07:28:00 GMT`.
fn parse_cookie_date(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(text)
        .ok()
        .or_else(|| httpdate::parse_http_date(&text.replace('-', " ")).ok())
}

/// `"abc"` -> `abc` (RFC 6265 allows a quoted cookie value).
fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: http::HeaderName, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name.clone(), v.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn request_cookies_from_one_or_several_headers() {
        let h = headers(
            COOKIE,
            &[
                "theme=dark; better-auth.session_token=abc.def",
                "sid=\"q1\"",
            ],
        );
        assert_eq!(
            request_cookie(&h, "better-auth.session_token").as_deref(),
            Some("abc.def")
        );
        assert_eq!(request_cookie(&h, "sid").as_deref(), Some("q1"));
        assert_eq!(request_cookie(&h, "theme").as_deref(), Some("dark"));
        assert_eq!(
            request_cookie(&h, "Theme"),
            None,
            "names are case-sensitive"
        );
        assert_eq!(request_cookie(&h, "missing"), None);
        let empty = headers(COOKIE, &["a=; b", "a=2"]);
        assert_eq!(request_cookie(&empty, "a").as_deref(), Some("2"));
        assert_eq!(request_cookie(&HeaderMap::new(), "a"), None);
    }

    #[test]
    fn set_cookie_lifetimes() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(600));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(600));
        let h = headers(
            SET_COOKIE,
            &[
                "other=1; Path=/",
                "s=tok1; Max-Age=3600; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly",
                &format!("e=tok2; Path=/; Expires={later}; Secure"),
                "plain=tok3; HttpOnly; SameSite=Lax",
                "gone=x; Max-Age=0",
                &format!("past=x; Expires={earlier}"),
                "cleared=; Path=/",
                "q=\"quoted\"; max-age=60",
            ],
        );
        let get = |n: &str| response_cookie(&h, n, now);
        assert_eq!(
            get("s"),
            Some(SetCookie {
                value: "tok1".into(),
                lifetime: Some(Duration::from_secs(3600))
            }),
            "Max-Age wins over Expires"
        );
        assert_eq!(
            get("e").and_then(|c| c.lifetime),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            get("plain"),
            Some(SetCookie {
                value: "tok3".into(),
                lifetime: None
            })
        );
        assert_eq!(get("gone"), None, "Max-Age=0 deletes");
        assert_eq!(get("past"), None, "an Expires in the past deletes");
        assert_eq!(get("cleared"), None, "an empty value is no credential");
        assert_eq!(get("q").map(|c| c.value), Some("quoted".into()));
        assert_eq!(get("missing"), None);
    }

    #[test]
    fn the_last_set_cookie_for_a_name_wins_and_garbage_is_ignored() {
        let now = SystemTime::UNIX_EPOCH;
        let h = headers(
            SET_COOKIE,
            &["s=old", "no-equals-sign", "s=new; Max-Age=abc", "=x"],
        );
        assert_eq!(
            response_cookie(&h, "s", now),
            Some(SetCookie {
                value: "new".into(),
                lifetime: None
            })
        );
        let deleted_last = headers(SET_COOKIE, &["s=one", "s=; Max-Age=0"]);
        assert_eq!(response_cookie(&deleted_last, "s", now), None);
        assert_eq!(
            parse_cookie_date("Wed, 21-Oct-2026 07:28:00 GMT"),
            parse_cookie_date("Wed, 21 Oct 2026 07:28:00 GMT")
        );
        assert!(parse_cookie_date("Wed, 21 Oct 2026 07:28:00 GMT").is_some());
    }
}
