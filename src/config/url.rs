//! What is wrong with a URL written in the config, checked as text before anything is built
//! from it.
//!
//! Shared by the upstream check and the webhook compiler (both layers above), so both say the same thing
//! about the same mistake. Messages never echo a URL's query, userinfo or a secret: callers
//! show the URL through `redact::redact_url`.

use std::str::FromStr;

/// What is wrong with an absolute http(s) URL, or None. `allow_query` for webhook targets.
pub fn http_url_problem(url: &str, allow_query: bool) -> Option<String> {
    if url.contains('#') {
        return Some("must not have a #fragment".into());
    }
    let uri = match http::Uri::from_str(url) {
        Ok(u) => u,
        Err(e) => return Some(format!("is not a URL ({e})")),
    };
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(_) | None => return Some("must start with http:// or https://".into()),
    }
    let Some(authority) = uri.authority() else {
        return Some("has no host".into());
    };
    if authority.host().is_empty() {
        return Some("has no host".into());
    }
    if !allow_query && uri.query().is_some() {
        return Some("must not have a ?query".into());
    }
    None
}

/// What is wrong with the `upstream:` URL, or None: an absolute http(s) URL without a query,
/// fragment or credentials (they would never be sent upstream).
pub fn upstream_problem(url: &str) -> Option<String> {
    http_url_problem(url, false).or_else(|| {
        url.split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or_default())
            .filter(|authority| authority.contains('@'))
            .map(|_| "must not contain user:password@ (credentials are not sent upstream)".into())
    })
}

/// Replaces `{{$$.X$$}}` placeholders so a templated URL can be checked as a URL.
pub fn without_placeholders(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(start) = rest.find("{{$$.") {
        out.push_str(&rest[..start]);
        match rest[start..].find("$$}}") {
            Some(end) => {
                out.push('x');
                rest = &rest[start + end + 4..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_checked_as_plain_text() {
        assert_eq!(
            without_placeholders("https://{{$$.Host$$}}/u/{{$$.ID$$}}"),
            "https://x/u/x"
        );
        assert_eq!(
            http_url_problem(&without_placeholders("https://{{$$.Host$$}}/x"), true),
            None
        );
        assert_eq!(
            without_placeholders("https://h/{{$$.ID"),
            "https://h/{{$$.ID"
        );
    }

    #[test]
    fn upstream_problems() {
        assert_eq!(upstream_problem("http://[::1]:8081/auth"), None);
        assert!(upstream_problem("http://u:p@h/").is_some_and(|p| p.contains("user:password@")));
        assert!(upstream_problem("http://h/?q").is_some_and(|p| p.contains("?query")));
        assert!(upstream_problem("http://h/#f").is_some_and(|p| p.contains("#fragment")));
    }
}
