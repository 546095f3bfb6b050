//! The IAM's signing keys, fetched through the upstream and cached, to verify tokens clients
//! present.
//!
//! A key set is fetched the first time a token needs checking (`GET` on the configured
//! upstream plus the profile's or `identity.jwks`'s path, e.g. Keycloak's
//! `/realms/{realm}/protocol/openid-connect/certs`), kept for [`MAX_AGE`], and fetched again
//! early when a token names a key id the set lacks (a key rotation) — at most once per
//! [`MIN_REFETCH`] per set, so forged tokens with made-up key ids cannot make userhook hammer
//! the IAM. A fetch that fails leaves tokens unverified (their events name nobody) and is
//! tried again no sooner than [`MIN_REFETCH`]; it is counted and logged. Runs on the extractor
//! task only.

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
    /// The last fetch made because a token named a key id the set lacked.
    refetched_at: Option<Instant>,
}

/// The key sets seen so far, by URL.
#[derive(Debug)]
pub struct Jwks {
    /// One HTTP client per `upstream_tls.ca_file` seen (usually one), so an IAM behind a
    /// private CA is reached as the proxy reaches it.
    clients: Mutex<HashMap<Option<String>, Option<reqwest::Client>>>,
    sets: Mutex<HashMap<String, Cached>>,
}

impl Default for Jwks {
    fn default() -> Self {
        Jwks::new()
    }
}

impl Jwks {
    /// An empty cache; HTTP clients are built on first use.
    pub fn new() -> Self {
        Jwks {
            clients: Mutex::new(HashMap::new()),
            sets: Mutex::new(HashMap::new()),
        }
    }

    /// The client trusting the system roots and `ca_file` (the upstream's private CA).
    fn client(&self, ca_file: Option<&str>) -> Option<reqwest::Client> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(ca_file.map(str::to_owned))
            .or_insert_with(|| match build_client(ca_file) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot build the client that fetches the IAM's signing keys; client tokens stay unverified");
                    None
                }
            })
            .clone()
    }

    fn cached(&self, url: &str) -> Option<(Option<Arc<KeySet>>, Instant, Option<Instant>)> {
        let sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        sets.get(url)
            .map(|c| (c.set.clone(), c.fetched_at, c.refetched_at))
    }

    /// True when `token` is signed by a key of the set at `url` (fetched trusting the system
    /// roots and `ca_file`).
    pub async fn verify(&self, url: &str, ca_file: Option<&str>, token: &str) -> bool {
        if !crate::extract::jws::checkable(token) {
            return false; // no key can help: never fetch for it
        }
        let now = Instant::now();
        let since = |at: Instant| now.duration_since(at);
        let set = match self.cached(url) {
            // Fresh: check; a key id the set lacks fetches it again, at most once per
            // MIN_REFETCH.
            Some((Some(set), at, refetched)) if since(at) < MAX_AGE => match set.verifies(token) {
                Verdict::Valid => return true,
                Verdict::Invalid => return false,
                Verdict::UnknownKey(_) if refetched.is_some_and(|r| since(r) < MIN_REFETCH) => {
                    return false
                }
                Verdict::UnknownKey(_) => self.fetch(url, ca_file, true).await,
            },
            // Failed last time: try again no sooner than MIN_REFETCH.
            Some((_, at, _)) if since(at) < MIN_REFETCH => return false,
            // Stale, failed long enough ago, or never fetched.
            _ => self.fetch(url, ca_file, false).await,
        };
        set.is_some_and(|s| s.verifies(token) == Verdict::Valid)
    }

    async fn fetch(
        &self,
        url: &str,
        ca_file: Option<&str>,
        for_unknown_key: bool,
    ) -> Option<Arc<KeySet>> {
        let fetched = match self.client(ca_file) {
            Some(client) => fetch_set(&client, url).await,
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
        let previous = sets.get(url);
        // A failed fetch keeps the keys known so far (an IAM restarting does not unverify).
        let keep = set.clone().or_else(|| previous.and_then(|c| c.set.clone()));
        let now = Instant::now();
        let refetched_at = if for_unknown_key {
            Some(now)
        } else {
            previous.and_then(|c| c.refetched_at)
        };
        sets.insert(
            url.to_owned(),
            Cached {
                set: keep.clone(),
                fetched_at: now,
                refetched_at,
            },
        );
        set.or(keep)
    }
}

fn build_client(ca_file: Option<&str>) -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(FETCH_TIMEOUT);
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("upstream_tls.ca_file {path}: {e}"))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("upstream_tls.ca_file {path}: {e}"))?;
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|e| e.to_string())
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
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| format!("reading the body: {e}"))?;
    if bytes.len() > MAX_DOCUMENT {
        return Err(format!(
            "the document is {} bytes, more than {MAX_DOCUMENT}",
            bytes.len()
        ));
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
            url_for(
                "/realms/{realm}/protocol/openid-connect/certs",
                "http://kc:8080/",
                &params
            )
            .as_deref(),
            Some("http://kc:8080/realms/acme/protocol/openid-connect/certs")
        );
        assert_eq!(
            url_for("https://idp.example/jwks", "http://kc:8080", &params).as_deref(),
            Some("https://idp.example/jwks")
        );
        assert_eq!(
            url_for("/realms/{tenant}/certs", "http://kc", &params),
            None
        );
        let climbing = vec![("realm".to_owned(), "..".to_owned())];
        assert_eq!(
            url_for("/realms/{realm}/certs", "http://kc", &climbing),
            None
        );
    }

    #[tokio::test]
    async fn an_unreachable_iam_leaves_tokens_unverified_and_is_not_hammered() {
        let jwks = Jwks::new();
        // Port 9 on loopback: nothing listens.
        let url = "http://127.0.0.1:9/certs";
        assert!(!jwks.verify(url, None, "a.b.c").await);
        assert!(jwks.cached(url).is_none(), "garbage is never worth a fetch");
        let claims = serde_json::json!({"sub": "x"});
        let t = crate::extract::jws::tests::signed("RS256", "k", &claims, |_| vec![1; 256]);
        assert!(!jwks.verify(url, None, &t).await);
        let first = jwks.cached(url).expect("the failure is remembered").1;
        assert!(!jwks.verify(url, None, &t).await);
        assert_eq!(
            jwks.cached(url).expect("cached").1,
            first,
            "no second fetch within MIN_REFETCH"
        );
    }
}
