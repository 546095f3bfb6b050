//! Who made a call: the claims of the bearer JWT the client presented and the user name of
//! HTTP basic authentication, read from a matched exchange's request headers.
//!
//! Runs off the request path, only for exchanges that matched a rule: the proxy already keeps
//! a matched call's request headers, so nothing here costs an unmatched request anything. It
//! never reads a password or keeps a token: only the named claims and the basic user name
//! leave this module. Whether the token is genuine is decided by the caller (it owns the key
//! sets and the session index); [`bearer_jwt`] gives it the token to check.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::HeaderMap;
use serde_json::Value;

use super::jwt;
use crate::event::Actor;

/// Longest basic credential decoded (a user name and password never need more).
const MAX_BASIC_LEN: usize = 4096;

/// Longest claim value kept: an actor value is a name, not a document.
const MAX_CLAIM_LEN: usize = 256;

/// The actor of a call whose request carried `headers`, and the bearer JWT its claims came
/// from (the caller checks that one); `verified` is left unset for the caller to decide (and
/// stays `None` when no bearer JWT was presented).
pub fn read(headers: &HeaderMap) -> (Actor, Option<&str>) {
    let mut actor = Actor {
        basic_user: basic_user(headers).unwrap_or_default(),
        ..Actor::default()
    };
    let token = bearer_jwt(headers);
    if let Some(claims) = token.and_then(jwt::claims) {
        actor.sub = claim(&claims, "sub");
        actor.azp = claim(&claims, "azp");
        actor.client_id = ["client_id", "azp", "cid"]
            .iter()
            .map(|k| claim(&claims, k))
            .find(|v| !v.is_empty())
            .unwrap_or_default();
        actor.verified = Some(false);
    }
    (actor, token)
}

/// The bearer token, when it is a JWT (three dot-separated parts): the one whose signature
/// the caller may check before marking the actor verified.
pub fn bearer_jwt(headers: &HeaderMap) -> Option<&str> {
    jwt::bearer(headers).filter(|t| t.split('.').count() == 3)
}

/// A string (or number) claim as text, bounded; empty when missing or another type.
fn claim(claims: &Value, key: &str) -> String {
    let text = match claims.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return String::new(),
    };
    if text.len() > MAX_CLAIM_LEN || text.chars().any(char::is_control) {
        return String::new();
    }
    text
}

/// The user name of `Authorization: Basic base64(user:password)`; the password part is
/// dropped as soon as it is found.
fn basic_user(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || encoded.len() > MAX_BASIC_LEN {
        return None;
    }
    let mut decoded = STANDARD.decode(encoded.trim()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    // Wipe the password bytes before anything else can see the buffer.
    decoded[colon..].fill(0);
    decoded.truncate(colon);
    let user = String::from_utf8(decoded).ok()?;
    (!user.is_empty() && user.len() <= MAX_CLAIM_LEN && !user.chars().any(char::is_control))
        .then_some(user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(authorization: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(authorization).expect("header"),
        );
        h
    }

    #[test]
    fn bearer_claims_name_the_actor_unverified() {
        let t = jwt::tests::token(&serde_json::json!({
            "sub": "7f0c", "azp": "sync-service", "email": "x@y", "preferred_username": "svc"
        }));
        let a = read(&headers(&format!("Bearer {t}"))).0;
        assert_eq!(a.sub, "7f0c");
        assert_eq!(a.azp, "sync-service");
        assert_eq!(a.client_id, "sync-service", "azp stands in for client_id");
        assert_eq!(a.basic_user, "");
        assert_eq!(a.verified, Some(false));
        let t = jwt::tests::token(&serde_json::json!({"sub": 42, "client_id": "c1", "azp": "a"}));
        let a = read(&headers(&format!("bearer {t}"))).0;
        assert_eq!((a.sub.as_str(), a.client_id.as_str()), ("42", "c1"));
        let t = jwt::tests::token(&serde_json::json!({"cid": "okta-app"}));
        assert_eq!(
            read(&headers(&format!("Bearer {t}"))).0.client_id,
            "okta-app"
        );
    }

    #[test]
    fn basic_gives_the_user_never_the_password() {
        let enc = STANDARD.encode("sync-service:CANARY-PW-123");
        let a = read(&headers(&format!("Basic {enc}"))).0;
        assert_eq!(a.basic_user, "sync-service");
        assert_eq!(a.verified, None);
        assert!(!format!("{a:?}").contains("CANARY"));
        let enc = STANDARD.encode("no-colon");
        assert_eq!(read(&headers(&format!("Basic {enc}"))).0.basic_user, "");
        let enc = STANDARD.encode(":pw");
        assert_eq!(read(&headers(&format!("Basic {enc}"))).0.basic_user, "");
    }

    #[test]
    fn anything_else_names_nobody() {
        for bad in [
            "Bearer opaque-token",
            "Bearer a.b.c",
            "Basic %%%",
            "Digest x",
            "Bearer",
            "",
        ] {
            let h = headers(bad);
            let a = read(&h).0;
            assert!(a.sub.is_empty() && a.basic_user.is_empty(), "{bad}: {a:?}");
        }
        assert!(read(&HeaderMap::new()).0.is_empty());
        // Overlong and control-character claims are dropped, not kept.
        let t = jwt::tests::token(&serde_json::json!({"sub": "x".repeat(300), "azp": "a\nb"}));
        let a = read(&headers(&format!("Bearer {t}"))).0;
        assert_eq!((a.sub.as_str(), a.azp.as_str()), ("", ""));
    }
}
