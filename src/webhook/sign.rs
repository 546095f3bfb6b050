//! Standard Webhooks request signing (`webhook-signature: v1,<base64 HMAC-SHA256>`).
//!
//! Receivers verify with any Standard Webhooks library, so the signed content and key handling
//! must match the spec byte for byte: `"{webhook-id}.{webhook-timestamp}.{body}"`, keyed with
//! the base64-decoded secret. This module must never print, log or return the key.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The prefix Standard Webhooks secrets carry.
const PREFIX: &str = "whsec_";

/// Signs webhook requests with one secret. Built once per config load; cheap to use per
/// request (the keyed HMAC state is cloned, not re-derived).
#[derive(Clone)]
pub struct Signer {
    mac: HmacSha256,
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
}

impl Signer {
    /// Builds a signer from a configured secret:
    /// - `whsec_<base64>`: the decoded bytes are the key (the spec's form); bad base64 is an
    ///   error.
    /// - no prefix and valid base64: the decoded bytes, exactly as Standard Webhooks libraries
    ///   treat a secret given without its prefix, so both sides agree.
    /// - anything else: the raw UTF-8 bytes, for secrets copied from systems that use plain
    ///   passphrases (the receiver must then key its HMAC with the same raw bytes).
    ///
    /// The error never contains the secret.
    pub fn from_secret(secret: &str) -> Result<Signer, SecretError> {
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
        Ok(Signer { mac })
    }

    /// The `webhook-signature` header value for one attempt: `v1,<base64 signature>`.
    /// `timestamp` is Unix seconds, the same number sent as `webhook-timestamp`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        let tag = mac.finalize().into_bytes();
        let mut out = String::with_capacity(3 + 44);
        out.push_str("v1,");
        STANDARD.encode_string(tag, &mut out);
        out
    }
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

    #[test]
    fn debug_never_shows_the_key() {
        let s = Signer::from_secret(SECRET).expect("valid");
        let shown = format!("{s:?}");
        assert_eq!(shown, "Signer { key: <redacted> }");
        assert!(!shown.contains("MfKQ"));
    }
}
