//! Reading the claims of a JWT without verifying it.
//!
//! userhook only *identifies* users from tokens (who logged in, who logged out); it never
//! authorizes anything with them, so the signature is not checked. A value that is not a
//! decodable JWS simply yields no claims: it must never become an error or a panic.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use http::HeaderMap;
use serde_json::Value;

/// Tokens larger than this are not decoded: no real access token is this big, and the cap
/// keeps a hostile header or body from costing more than a bounded amount of work.
const MAX_TOKEN_LEN: usize = 64 * 1024;

/// The claims object of a compact JWS (`header.payload.signature`), if it decodes.
pub fn claims(token: &str) -> Option<Value> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        // Five parts: an encrypted JWE, whose payload is not readable claims.
        return None;
    }
    let payload = payload.trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .or_else(|_| STANDARD_NO_PAD.decode(payload))
        .ok()?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ => None,
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme matched case-insensitively).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    authorization_token(headers, &["bearer"])
}

/// The opaque API token of an `Authorization` header with the `Bearer` scheme, or the `token`
/// scheme Gitea and GitHub-style APIs take (`Authorization: token <sha1>`); schemes matched
/// case-insensitively. What `request.bearer` reads.
pub fn api_token(headers: &HeaderMap) -> Option<&str> {
    authorization_token(headers, &["bearer", "token"])
}

/// The credential after one of `schemes` in the `Authorization` header.
fn authorization_token<'h>(headers: &'h HeaderMap, schemes: &[&str]) -> Option<&'h str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !schemes.iter().any(|s| scheme.eq_ignore_ascii_case(s)) {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A JWS with `claims` as payload and a dummy signature (never verified).
    pub(crate) fn token(claims: &Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{header}.{payload}.c2lnbmF0dXJl")
    }

    #[test]
    fn decodes_valid_token() {
        let t = token(&serde_json::json!({"sub": "u-1", "email": "a@b.c"}));
        let c = claims(&t).expect("claims");
        assert_eq!(c["sub"], "u-1");
        assert_eq!(c["email"], "a@b.c");
    }

    #[test]
    fn tolerates_padding_and_standard_alphabet() {
        let payload = STANDARD_NO_PAD.encode(br#"{"sub":"x?>"}"#);
        let t = format!("h.{payload}==.s");
        assert_eq!(claims(&t).expect("claims")["sub"], "x?>");
    }

    #[test]
    fn garbage_yields_nothing() {
        for bad in [
            "",
            "abc",
            "a.b",
            "a.!!!.c",
            "a.e30.c.d.e",                   // JWE shape
            "a.WzEsMl0.c",                   // payload is an array
            "a.bm90IGpzb24.c",               // payload is not JSON
            "\u{1F600}.\u{1F600}.\u{1F600}", // not base64 at all
        ] {
            assert_eq!(claims(bad), None, "{bad:?}");
        }
        assert_eq!(claims(&"a.".repeat(40_000)), None);
    }

    #[test]
    fn api_tokens_take_the_bearer_and_token_schemes() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "token 0123abcd".parse().expect("value"));
        assert_eq!(api_token(&h), Some("0123abcd"));
        assert_eq!(bearer(&h), None, "a `token` credential is no JWT bearer");
        h.insert("authorization", "Bearer xyz".parse().expect("value"));
        assert_eq!(api_token(&h), Some("xyz"));
        h.insert(
            "authorization",
            "Basic dXNlcjpwYXNz".parse().expect("value"),
        );
        assert_eq!(api_token(&h), None);
    }

    #[test]
    fn bearer_header() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert("authorization", "Basic dXNlcjpwdw==".parse().expect("hv"));
        assert_eq!(bearer(&h), None);
        h.insert("authorization", "bearer  tok.en.x ".parse().expect("hv"));
        assert_eq!(bearer(&h), Some("tok.en.x"));
    }
}
