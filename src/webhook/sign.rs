//! Standard Webhooks request signing: `v1,<base64 HMAC-SHA256>` for a symmetric secret
//! (`whsec_...`), `v1a,<base64 ed25519 signature>` for an asymmetric one (`whsk_...`), and
//! several of them, space-separated in one `webhook-signature` header, while secrets rotate.
//!
//! Receivers verify with any Standard Webhooks library, so the signed content and key handling
//! must match the spec byte for byte: `"{webhook-id}.{webhook-timestamp}.{body}"`, keyed with
//! the base64-decoded secret (for `whsk_`: the 32-byte ed25519 seed, or the 64-byte seed and
//! public key). A verifier accepts a request when any one signature checks out, so during a
//! rotation every active secret signs and old and new receivers both verify. This module must
//! never print, log or return a secret key; public keys (`whpk_...`) may be shown.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The prefix Standard Webhooks symmetric secrets carry.
const PREFIX: &str = "whsec_";
/// The prefix of an asymmetric (ed25519) secret key.
const SECRET_KEY_PREFIX: &str = "whsk_";
/// The prefix of an asymmetric public key: what receivers are given to verify `v1a`.
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";

/// Most secrets one webhook signs with (a rotation needs two; a header stays small).
pub const MAX_SECRETS: usize = 8;

/// One signing key.
enum Key {
    /// `v1`: HMAC-SHA256, keyed once (the state is cloned per request, not re-derived).
    Hmac(HmacSha256),
    /// `v1a`: ed25519.
    Ed25519(Box<Ed25519KeyPair>),
}

/// Signs webhook requests with one or more secrets. Built once per config load; cheap to use
/// per request.
pub struct Signer {
    keys: Vec<Key>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer { key: <redacted> }")
    }
}

/// Why a configured signing secret cannot sign. Never carries the secret itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// `whsec_` followed by something that is not base64.
    #[error("signing secret after `whsec_` is not valid base64")]
    NotBase64,
    /// Nothing to key the HMAC with.
    #[error("signing secret is empty")]
    Empty,
    /// HMAC-SHA256 refused the key.
    #[error("signing secret cannot key HMAC-SHA256")]
    Unusable,
    /// `whsk_` followed by something that is not base64.
    #[error("signing key after `whsk_` is not valid base64")]
    SecretKeyNotBase64,
    /// A `whsk_` key of the wrong size or whose public half does not match its seed.
    #[error(
        "signing key after `whsk_` is not an ed25519 key: expected base64 of the 32-byte seed \
         (or of the 64-byte seed and public key)"
    )]
    NotEd25519,
    /// A public key where a secret one belongs.
    #[error(
        "is a public key (whpk_...): it verifies, it cannot sign; give the secret key \
         (whsk_...) here and the public key to the receiver"
    )]
    PublicKey,
}

impl Signer {
    /// Builds a signer from one configured secret:
    /// - `whsec_<base64>`: the decoded bytes are the HMAC key (the spec's form); bad base64 is
    ///   an error.
    /// - `whsk_<base64>`: an ed25519 secret key (32-byte seed, or seed and public key): signs
    ///   `v1a`.
    /// - no prefix and valid base64: the decoded bytes as an HMAC key, exactly as Standard
    ///   Webhooks libraries treat a secret given without its prefix, so both sides agree.
    /// - anything else: the raw UTF-8 bytes, for secrets copied from systems that use plain
    ///   passphrases (the receiver must then key its HMAC with the same raw bytes).
    ///
    /// The error never contains the secret.
    pub fn from_secret(secret: &str) -> Result<Signer, SecretError> {
        Ok(Signer {
            keys: vec![key(secret)?],
        })
    }

    /// A signer with every secret of a rotation, in the order given; `Err` names the position
    /// (0-based) of the first that cannot sign, and why.
    pub fn from_secrets(secrets: &[String]) -> Result<Signer, (usize, SecretError)> {
        let keys = secrets
            .iter()
            .enumerate()
            .map(|(i, s)| key(s).map_err(|e| (i, e)))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err((0, SecretError::Empty));
        }
        Ok(Signer { keys })
    }

    /// The public keys (`whpk_<base64>`) of the ed25519 secrets, in order: what receivers
    /// verify `v1a` with, safe to show.
    pub fn public_keys(&self) -> Vec<String> {
        self.keys
            .iter()
            .filter_map(|k| match k {
                Key::Ed25519(pair) => Some(format!(
                    "{PUBLIC_KEY_PREFIX}{}",
                    STANDARD.encode(pair.public_key().as_ref())
                )),
                Key::Hmac(_) => None,
            })
            .collect()
    }

    /// The `webhook-signature` header value for one attempt: one `v1,<base64>` or
    /// `v1a,<base64>` per secret, space-separated. `timestamp` is Unix seconds, the same
    /// number sent as `webhook-timestamp`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let timestamp = timestamp.to_string();
        let mut out = String::with_capacity(self.keys.len() * 92);
        let mut signed = Vec::new();
        for key in &self.keys {
            if !out.is_empty() {
                out.push(' ');
            }
            match key {
                Key::Hmac(mac) => {
                    let mut mac = mac.clone();
                    mac.update(msg_id.as_bytes());
                    mac.update(b".");
                    mac.update(timestamp.as_bytes());
                    mac.update(b".");
                    mac.update(body);
                    out.push_str("v1,");
                    STANDARD.encode_string(mac.finalize().into_bytes(), &mut out);
                }
                Key::Ed25519(pair) => {
                    if signed.is_empty() {
                        signed.reserve(msg_id.len() + timestamp.len() + body.len() + 2);
                        signed.extend_from_slice(msg_id.as_bytes());
                        signed.push(b'.');
                        signed.extend_from_slice(timestamp.as_bytes());
                        signed.push(b'.');
                        signed.extend_from_slice(body);
                    }
                    out.push_str("v1a,");
                    STANDARD.encode_string(pair.sign(&signed), &mut out);
                }
            }
        }
        out
    }
}

/// One configured secret as a key (see [`Signer::from_secret`]).
fn key(secret: &str) -> Result<Key, SecretError> {
    if secret.starts_with(PUBLIC_KEY_PREFIX) {
        return Err(SecretError::PublicKey);
    }
    if let Some(encoded) = secret.strip_prefix(SECRET_KEY_PREFIX) {
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::SecretKeyNotBase64)?;
        let pair = match bytes.len() {
            32 => Ed25519KeyPair::from_seed_unchecked(&bytes),
            64 => Ed25519KeyPair::from_seed_and_public_key(&bytes[..32], &bytes[32..]),
            _ => return Err(SecretError::NotEd25519),
        }
        .map_err(|_| SecretError::NotEd25519)?;
        return Ok(Key::Ed25519(Box::new(pair)));
    }
    let key = match secret.strip_prefix(PREFIX) {
        Some(encoded) => STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::NotBase64)?,
        None => STANDARD
            .decode(secret)
            .unwrap_or_else(|_| secret.as_bytes().to_vec()),
    };
    if key.is_empty() {
        return Err(SecretError::Empty);
    }
    let mac = HmacSha256::new_from_slice(&key).map_err(|_| SecretError::Unusable)?;
    Ok(Key::Hmac(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;

    #[test]
    fn reproduces_the_standard_webhooks_test_vector() {
        // From the Standard Webhooks / Svix reference libraries' tests.
        let s = Signer::from_secret(SECRET).expect("valid secret");
        assert_eq!(
            s.sign(ID, TS, BODY),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn prefix_is_optional_for_base64_secrets() {
        let bare = Signer::from_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid");
        assert_eq!(
            bare.sign(ID, TS, BODY),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn non_base64_secrets_key_with_raw_bytes() {
        let raw = Signer::from_secret("not base64!").expect("valid");
        let mut mac = HmacSha256::new_from_slice(b"not base64!").expect("any key length");
        mac.update(b"id.5.{}");
        let want = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        assert_eq!(raw.sign("id", 5, b"{}"), want);
    }

    #[test]
    fn signatures_depend_on_every_part() {
        let s = Signer::from_secret(SECRET).expect("valid");
        let base = s.sign(ID, TS, BODY);
        assert_ne!(s.sign("msg_other", TS, BODY), base);
        assert_ne!(s.sign(ID, TS + 1, BODY), base);
        assert_ne!(s.sign(ID, TS, b"{}"), base);
        assert_eq!(s.sign(ID, TS, BODY), base, "signing twice is stable");
    }

    #[test]
    fn bad_secrets_are_rejected_without_echoing_them() {
        let err = Signer::from_secret("whsec_%%%secret%%%").unwrap_err();
        assert_eq!(err, SecretError::NotBase64);
        assert_eq!(
            err.to_string(),
            "signing secret after `whsec_` is not valid base64"
        );
        assert_eq!(Signer::from_secret("").unwrap_err(), SecretError::Empty);
        assert_eq!(
            Signer::from_secret("whsec_").unwrap_err().to_string(),
            "signing secret is empty"
        );
    }

    /// The Standard Webhooks reference libraries' `v1a` vector (the Go library's test).
    const ED_SEED: &str = "VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=";
    const ED_WANT: &str = "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag==";

    #[test]
    fn reproduces_the_standard_webhooks_v1a_vector() {
        let s = Signer::from_secret(&format!("whsk_{ED_SEED}")).expect("valid key");
        assert_eq!(s.sign(ID, TS, BODY), ED_WANT);
        // The 64-byte form (seed then public key) signs the same.
        let public = s.public_keys()[0]
            .strip_prefix("whpk_")
            .map(|p| STANDARD.decode(p).expect("b64"))
            .expect("whpk_");
        let mut both = STANDARD.decode(ED_SEED).expect("seed");
        both.extend_from_slice(&public);
        let s64 = Signer::from_secret(&format!("whsk_{}", STANDARD.encode(&both))).expect("64");
        assert_eq!(s64.sign(ID, TS, BODY), ED_WANT);
    }

    #[test]
    fn every_active_secret_signs_in_order() {
        let s = Signer::from_secrets(&[SECRET.to_owned(), format!("whsk_{ED_SEED}")]).expect("two");
        assert_eq!(
            s.sign(ID, TS, BODY),
            format!("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= {ED_WANT}")
        );
        assert_eq!(s.public_keys().len(), 1);
        assert!(s.public_keys()[0].starts_with("whpk_"));
        assert_eq!(
            Signer::from_secrets(&[SECRET.to_owned(), "whsk_%%".to_owned()]).unwrap_err(),
            (1, SecretError::SecretKeyNotBase64)
        );
        assert_eq!(
            Signer::from_secrets(&[]).unwrap_err(),
            (0, SecretError::Empty)
        );
    }

    #[test]
    fn bad_asymmetric_keys_say_why_without_the_key() {
        let short = format!("whsk_{}", STANDARD.encode([7u8; 16]));
        assert_eq!(
            Signer::from_secret(&short).unwrap_err(),
            SecretError::NotEd25519
        );
        let mut mismatched = STANDARD.decode(ED_SEED).expect("seed");
        mismatched.extend_from_slice(&[1u8; 32]);
        let e = Signer::from_secret(&format!("whsk_{}", STANDARD.encode(&mismatched))).unwrap_err();
        assert_eq!(e, SecretError::NotEd25519);
        let e = Signer::from_secret("whpk_AAAA").unwrap_err();
        assert_eq!(e, SecretError::PublicKey);
        assert!(!e.to_string().contains("AAAA"));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let s = Signer::from_secret(SECRET).expect("valid");
        let shown = format!("{s:?}");
        assert_eq!(shown, "Signer { key: <redacted> }");
        assert!(!shown.contains("MfKQ"));
    }
}
