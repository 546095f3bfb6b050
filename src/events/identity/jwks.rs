//! The IAM's signing keys, fetched through the upstream and cached, to verify tokens clients
//! present.
//!
//! A key set is fetched the first time a token needs checking (`GET` on the configured
//! upstream plus the profile's or `identity.jwks`'s path, e.g. Keycloak's
//! `/realms/{realm}/protocol/openid-connect/certs`), kept for [`MAX_AGE`], and fetched again
//! early when a token names a key id the set lacks (a key rotation) — at most once per
//! [`MIN_REFETCH`] per set, so forged tokens with made-up key ids cannot make userhook hammer
//! the IAM. A fetch that fails leaves tokens unverified (their events name nobody); it is
//! counted and logged, never retried in a loop. Runs on the extractor task only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::extract::jws::{KeySet, Verdict};

/// How long a fetched key set is used before it is fetched again.
pub const MAX_AGE: Duration = Duration::from_secs(3600);
/// Shortest time between two fetches of one set (also after a failure).
pub const MIN_REFETCH: Duration = Duration::from_secs(10);
/// Time limit of one fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document read.
const MAX_DOCUMENT: usize = 256 * 1024;
/// Key set URLs remembered (one per realm, usually a handful).
const MAX_SETS: usize = 256;

#[derive(Debug)]
struct Cached {
    set: Option<Arc<KeySet>>,
    fetched_at: Instant,
}

/// The key sets seen so far, by URL.
#[derive(Debug)]
pub struct Jwks {
    client: Option<reqwest::Client>,
    sets: Mutex<HashMap<String, Cached>>,
}

impl Default for Jwks {
    fn default() -> Self {
        Jwks::new()
    }
}

impl Jwks {
    /// A cache with its own HTTP client (no redirects, short timeouts).
    pub fn new() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| tracing::warn!(error = %e, "cannot build the JWKS client; client tokens stay unverified"))
            .ok();
        Jwks {
            client,
            sets: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, url: &str) -> Option<(Option<Arc<KeySet>>, Instant)> {
        let sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        sets.get(url).map(|c| (c.set.clone(), c.fetched_at))
    }

    /// True when `token` is signed by a key of the set at `url`.
    pub async fn verify(&self, url: &str, token: &str) -> bool {
        let now = Instant::now();
        let (set, fetched_at) = match self.cached(url) {
            Some((set, at)) if now.duration_since(at) < MAX_AGE => (set, Some(at)),
            Some((_, at)) => (None, Some(at)),
            None => (None, None),
        };
        let may_fetch = fetched_at.is_none_or(|at| now.duration_since(at) >= MIN_REFETCH);
        let set = match set {
            Some(set) => match set.verifies(token) {
                Verdict::Valid => return true,
                Verdict::Invalid => return false,
                Verdict::UnknownKey(_) if !may_fetch => return false,
                Verdict::UnknownKey(_) => self.fetch(url).await,
            },
            None if may_fetch => self.fetch(url).await,
            None => None,
        };
        set.is_some_and(|s| s.verifies(token) == Verdict::Valid)
    }

    async fn fetch(&self, url: &str) -> Option<Arc<KeySet>> {
        let fetched = match &self.client {
            Some(client) => fetch_set(client, url).await,
            None => Err("no HTTP client".to_owned()),
        };
        crate::metrics::jwks_fetched(fetched.is_ok());
        let set = match fetched {
            Ok(set) => {
                tracing::debug!(url = %crate::redact::redact_url(url), keys = set.len(), "fetched the IAM's signing keys");
                Some(Arc::new(set))
            }
            Err(e) => {
                tracing::warn!(url = %crate::redact::redact_url(url), error = %e, "cannot fetch the IAM's signing keys; client tokens stay unverified until the next try");
                None
            }
        };
        let mut sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        if sets.len() >= MAX_SETS && !sets.contains_key(url) {
            sets.clear();
        }
        let keep = set.clone().or_else(|| sets.get(url).and_then(|c| c.set.clone()));
        sets.insert(
            url.to_owned(),
            Cached {
                set: keep.clone(),
                fetched_at: Instant::now(),
            },
        );
        set.or(keep)
    }
}

async fn fetch_set(client: &reqwest::Client, url: &str) -> Result<KeySet, String> {
    let resp = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("the IAM answered {status}"));
    }
    let bytes = resp.bytes().await.map_err(|e| format!("reading the body: {e}"))?;
    if bytes.len() > MAX_DOCUMENT {
        return Err(format!("the document is {} bytes, more than {MAX_DOCUMENT}", bytes.len()));
    }
    KeySet::parse(&bytes).map_err(|e| e.to_string())
}

/// The key set URL for a call: `template` (`/realms/{realm}/...` on the upstream, or a full
/// `http(s)://` URL) with `{param}`s filled from the call's path parameters (as sent). `None`
/// when a parameter is missing.
pub fn url_for(template: &str, upstream: &str, params: &[(String, String)]) -> Option<String> {
    let mut out = String::with_capacity(template.len() + upstream.len());
    if !(template.starts_with("http://") || template.starts_with("https://")) {
        out.push_str(upstream.trim_end_matches('/'));
    }
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}')? + open;
        let name = &rest[open + 1..close];
        let (_, value) = params.iter().find(|(n, _)| n == name)?;
        // A parameter value never climbs or adds a path segment.
        if value.is_empty() || value.contains(['/', '?', '#']) || value == "." || value == ".." {
            return None;
        }
        out.push_str(value);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_filled_from_the_call() {
        let params = vec![("realm".to_owned(), "acme".to_owned())];
        assert_eq!(
            url_for("/realms/{realm}/protocol/openid-connect/certs", "http://kc:8080/", &params).as_deref(),
            Some("http://kc:8080/realms/acme/protocol/openid-connect/certs")
        );
        assert_eq!(
            url_for("https://idp.example/jwks", "http://kc:8080", &params).as_deref(),
            Some("https://idp.example/jwks")
        );
        assert_eq!(url_for("/realms/{tenant}/certs", "http://kc", &params), None);
        let climbing = vec![("realm".to_owned(), "..".to_owned())];
        assert_eq!(url_for("/realms/{realm}/certs", "http://kc", &climbing), None);
    }

    #[tokio::test]
    async fn an_unreachable_iam_leaves_tokens_unverified_and_is_not_hammered() {
        let jwks = Jwks::new();
        // Port 9 on loopback: nothing listens.
        let url = "http://127.0.0.1:9/certs";
        assert!(!jwks.verify(url, "a.b.c").await);
        let first = jwks.cached(url).expect("the failure is remembered").1;
        assert!(!jwks.verify(url, "a.b.c").await);
        assert_eq!(jwks.cached(url).expect("cached").1, first, "no second fetch within MIN_REFETCH");
    }
}
