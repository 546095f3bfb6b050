//! Redaction by type: which names mark a credential, and how a URL is shown without its
//! secrets.
//!
//! Every place that shows a URL, header or key name to a person (logs, `userhook check`, the
//! admin API) goes through here, so masking depends on the kind of value, not on someone
//! remembering. This module must never log or store anything itself.

/// The replacement text for anything hidden.
pub const REDACTED: &str = "<redacted>";

/// Where a credential word counts: header names are short and conventional (`X-Auth`,
/// `X-Api-Key`, `Webhook-Signature`), so broad words are safe there; in body keys they would
/// hide ordinary fields (`keycloak_id`), and short fragments would hide headers such as
/// `X-Footprint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Body keys, form fields, query parameters and headers.
    Everywhere,
    /// Body keys, form fields and query parameters only.
    Names,
    /// Header names only.
    Headers,
}

/// Name fragments that mark a credential: the one list. Extraction refuses these in built-in
/// profiles, and every view of a config or a request masks them.
const CREDENTIAL_WORDS: [(&str, Scope); 16] = [
    ("password", Scope::Everywhere),
    ("secret", Scope::Everywhere),
    ("token", Scope::Everywhere),
    ("credential", Scope::Everywhere),
    ("authorization", Scope::Everywhere),
    ("cookie", Scope::Everywhere),
    ("passwd", Scope::Names),
    ("pwd", Scope::Names),
    ("passcode", Scope::Names),
    ("otp", Scope::Names),
    ("api-key", Scope::Names),
    ("apikey", Scope::Names),
    ("api_key", Scope::Names),
    ("auth", Scope::Headers),
    ("key", Scope::Headers),
    ("signature", Scope::Headers),
];

/// True when `name` contains a credential word that counts outside `excluded`.
fn names_credential(name: &str, excluded: Scope) -> bool {
    let lower = name.to_ascii_lowercase();
    CREDENTIAL_WORDS
        .iter()
        .any(|(w, scope)| *scope != excluded && lower.contains(w))
}

/// True when a key or parameter name looks like a credential (`password`, `client_secret`,
/// `refresh_token`, `credentials`, ...).
pub fn is_credential_name(name: &str) -> bool {
    names_credential(name, Scope::Headers)
}

/// True when a header's value should never be shown (`Authorization`, `X-Api-Key`, ...).
pub fn is_sensitive_header(name: &str) -> bool {
    names_credential(name, Scope::Names)
}

/// A URL with its userinfo, every query value and token-like path segments masked:
/// `https://u:p@h/hook/abcd...?key=K&x=1` -> `https://<redacted>@h/hook/<redacted>?key=<redacted>&x=<redacted>`.
/// `{{$$.X$$}}` placeholders are kept so the operator recognises the template.
pub fn redact_url(url: &str) -> String {
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((b, _)) => (b, Some(REDACTED)),
        None => (url, None),
    };
    let (before_query, query) = match before_fragment.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (before_fragment, None),
    };
    let (scheme, rest) = match before_query.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, before_query),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut out = String::with_capacity(url.len());
    if let Some(s) = scheme {
        out.push_str(s);
        out.push_str("://");
    }
    match authority.rsplit_once('@') {
        Some((_, host)) => {
            out.push_str(REDACTED);
            out.push('@');
            out.push_str(host);
        }
        None => out.push_str(authority),
    }
    let segments: Vec<&str> = path.split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        if looks_like_token(seg) {
            out.push_str(REDACTED);
        } else {
            out.push_str(seg);
        }
    }
    if let Some(q) = query {
        out.push('?');
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) => format!("{k}={REDACTED}"),
                None if pair.is_empty() => String::new(),
                None => REDACTED.to_string(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// A path segment that is probably a key: long, made of token characters, and either with
/// a digit or in one piece (Slack's path keys can be letters only). Template placeholders and
/// ordinary hyphenated words (`notifications-receiver`) are kept.
fn looks_like_token(seg: &str) -> bool {
    seg.len() >= 16
        && !seg.contains("{{")
        && (seg.bytes().any(|b| b.is_ascii_digit())
            || !seg.bytes().any(|b| matches!(b, b'-' | b'_' | b'.')))
        && seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'%'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_paths_are_redacted_too() {
        assert_eq!(
            redact_url("/reset-password/9f8e7d6c5b4a39281706"),
            "/reset-password/<redacted>"
        );
        assert_eq!(
            redact_url("/admin/realms/acme/users"),
            "/admin/realms/acme/users"
        );
    }

    #[test]
    fn slack_keys_without_digits_are_redacted() {
        assert_eq!(
            redact_url(
                "https://hooks.slack.com/services/TABCDEFGHI/BABCDEFGHI/AbCdEfGhIjKlMnOpQrStUvWx"
            ),
            "https://hooks.slack.com/services/TABCDEFGHI/BABCDEFGHI/<redacted>"
        );
    }

    #[test]
    fn redact_url_cases() {
        assert_eq!(redact_url("http://127.0.0.1:8081"), "http://127.0.0.1:8081");
        assert_eq!(
            redact_url("https://h/users/{{$$.ID$$}}?name={{$$.Name$$}}"),
            "https://h/users/{{$$.ID$$}}?name=<redacted>"
        );
        assert_eq!(
            redact_url(
                "https://open.feishu.cn/open-apis/bot/v2/hook/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
            ),
            "https://open.feishu.cn/open-apis/bot/v2/hook/<redacted>"
        );
        assert_eq!(
            redact_url("https://h/x?flag&k=v#frag"),
            "https://h/x?<redacted>&k=<redacted>#<redacted>"
        );
        assert_eq!(
            redact_url("https://h/notifications-receiver"),
            "https://h/notifications-receiver"
        );
    }

    #[test]
    fn sensitive_headers() {
        for h in [
            "Authorization",
            "X-API-KEY",
            "X-Auth-Token",
            "Cookie",
            "X-Secret",
            "Proxy-Authorization",
            "X-Password",
        ] {
            assert!(is_sensitive_header(h), "{h}");
        }
        for h in ["X-Source", "Content-Type", "Accept", "X-Footprint"] {
            assert!(!is_sensitive_header(h), "{h}");
        }
    }

    #[test]
    fn credential_names() {
        for n in [
            "password",
            "client_secret",
            "refresh_token",
            "X-OTP",
            "api_key",
        ] {
            assert!(is_credential_name(n), "{n}");
        }
        for n in ["email", "keycloak_id", "username"] {
            assert!(!is_credential_name(n), "{n}");
        }
    }
}
