//! Checking a JWT's signature against the IAM's published keys (a JWKS).
//!
//! A token the *client* presents can be made up by anyone; only one whose signature verifies
//! against the IAM's own keys may name a user (issue 13). This module holds no keys of its
//! own and fetches nothing: the event path hands it a key set it fetched through the
//! upstream. RS256, ES256 and EdDSA (Ed25519) are accepted; `none`, HMAC and anything else
//! never verify. Nothing here may panic on any token or key set.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;

/// Largest key set accepted: a real JWKS has a handful of keys.
const MAX_KEYS: usize = 64;
/// Tokens larger than this are not checked (as in `jwt::claims`).
const MAX_TOKEN_LEN: usize = 64 * 1024;

/// A signature algorithm userhook can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (Keycloak's default).
    Rs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl Alg {
    fn from_name(name: &str) -> Option<Alg> {
        match name {
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            "EdDSA" | "Ed25519" => Some(Alg::EdDsa),
            _ => None,
        }
    }
}

/// One public key of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    kid: Option<String>,
    alg: Alg,
    /// RSA: (n, e); EC: the uncompressed point; Ed25519: the 32-byte key.
    material: Material,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Material {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Point(Vec<u8>),
}

/// The signing keys an IAM publishes, as parsed from its JWKS document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    keys: Vec<Key>,
}

/// Why a key set document cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    /// Not a JSON object with a `keys` array.
    #[error("not a JWKS document (a JSON object with a `keys` array): {0}")]
    Shape(String),
    /// No key of a supported kind (RSA, EC P-256, Ed25519 signing keys).
    #[error("no signing key of a supported kind (RS256, ES256, EdDSA)")]
    NoUsableKey,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<RawKey>,
}

#[derive(Deserialize)]
struct RawKey {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(rename = "use", default)]
    usage: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

fn b64(text: Option<&str>) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text?.trim_end_matches('=')).ok()
}

impl RawKey {
    fn into_key(self) -> Option<Key> {
        if self.usage.as_deref().is_some_and(|u| u != "sig") {
            return None; // an encryption key never signs
        }
        let (alg, material) = match (self.kty.as_str(), self.crv.as_deref()) {
            ("RSA", _) => (
                Alg::Rs256,
                Material::Rsa {
                    n: b64(self.n.as_deref())?,
                    e: b64(self.e.as_deref())?,
                },
            ),
            ("EC", Some("P-256")) => {
                let (x, y) = (b64(self.x.as_deref())?, b64(self.y.as_deref())?);
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                (Alg::Es256, Material::Point(point))
            }
            ("OKP", Some("Ed25519")) => {
                let x = b64(self.x.as_deref())?;
                if x.len() != 32 {
                    return None;
                }
                (Alg::EdDsa, Material::Point(x))
            }
            _ => return None,
        };
        // A key that names another algorithm (RS512, PS256, ...) is not one of ours.
        if let Some(named) = self.alg.as_deref() {
            if Alg::from_name(named) != Some(alg) {
                return None;
            }
        }
        Some(Key {
            kid: self.kid,
            alg,
            material,
        })
    }
}

impl KeySet {
    /// Parses a JWKS document, keeping the keys that can check RS256, ES256 or EdDSA.
    pub fn parse(bytes: &[u8]) -> Result<KeySet, KeySetError> {
        let raw: RawSet =
            serde_json::from_slice(bytes).map_err(|e| KeySetError::Shape(e.to_string()))?;
        let keys: Vec<Key> = raw
            .keys
            .into_iter()
            .take(MAX_KEYS)
            .filter_map(RawKey::into_key)
            .collect();
        if keys.is_empty() {
            return Err(KeySetError::NoUsableKey);
        }
        Ok(KeySet { keys })
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the set has no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// True when the set has a key with this id (a token naming another one may have been
    /// signed with a key published since the set was fetched).
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Whether `token`'s signature verifies against one of the keys its header allows.
    pub fn verifies(&self, token: &str) -> Verdict {
        let Some(parts) = Parts::split(token) else {
            return Verdict::Invalid;
        };
        let candidates = self.keys.iter().filter(|k| {
            k.alg == parts.alg
                && parts
                    .kid
                    .as_deref()
                    .is_none_or(|kid| k.kid.as_deref() == Some(kid))
        });
        let mut any = false;
        for key in candidates {
            any = true;
            if key.check(parts.signed, &parts.signature) {
                return Verdict::Valid;
            }
        }
        match &parts.kid {
            Some(kid) if !any && !self.has_kid(kid) => Verdict::UnknownKey(kid.clone()),
            _ => Verdict::Invalid,
        }
    }
}

impl Key {
    fn check(&self, message: &[u8], sig: &[u8]) -> bool {
        match (&self.material, self.alg) {
            (Material::Rsa { n, e }, Alg::Rs256) => RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
            (Material::Point(p), Alg::Es256) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, p)
                    .verify(message, sig)
                    .is_ok()
            }
            (Material::Point(p), Alg::EdDsa) => UnparsedPublicKey::new(&signature::ED25519, p)
                .verify(message, sig)
                .is_ok(),
            _ => false,
        }
    }
}

/// What checking one token against a key set found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by one of the keys.
    Valid,
    /// Its header names a key id the set does not have (fetch the set again, rate-limited).
    UnknownKey(String),
    /// Malformed, an algorithm userhook does not accept, or a signature that does not verify.
    Invalid,
}

/// A compact JWS split for checking.
struct Parts<'a> {
    alg: Alg,
    kid: Option<String>,
    /// `header.payload`, the signed bytes.
    signed: &'a [u8],
    signature: Vec<u8>,
}

impl<'a> Parts<'a> {
    fn split(token: &'a str) -> Option<Parts<'a>> {
        let token = token.trim();
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let (signed, signature) = token.rsplit_once('.')?;
        let (header, payload) = signed.split_once('.')?;
        if payload.contains('.') {
            return None;
        }
        #[derive(Deserialize)]
        struct Header {
            alg: String,
            #[serde(default)]
            kid: Option<String>,
        }
        let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        Some(Parts {
            alg: Alg::from_name(&header.alg)?,
            kid: header.kid,
            signed: signed.as_bytes(),
            signature: URL_SAFE_NO_PAD.decode(signature).ok()?,
        })
    }
}

/// True when `token` is a JWS signed with an algorithm userhook checks (so fetching keys for
/// it can help): an HMAC-signed token (Keycloak's refresh tokens) or garbage is not.
pub fn checkable(token: &str) -> bool {
    Parts::split(token).is_some()
}

/// The key id a token's header names, if it is a JWS userhook could check.
pub fn kid(token: &str) -> Option<String> {
    Parts::split(token)?.kid
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};
    use serde_json::json;

    /// A compact JWS signed by `sign` with `alg` and `kid`.
    pub(crate) fn signed(
        alg: &str,
        kid: &str,
        claims: &serde_json::Value,
        sign: impl Fn(&[u8]) -> Vec<u8>,
    ) -> String {
        let header =
            URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT", "kid": kid}).to_string());
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{payload}");
        let sig = URL_SAFE_NO_PAD.encode(sign(signed.as_bytes()));
        format!("{signed}.{sig}")
    }

    /// An ES256 key pair and its JWK.
    pub(crate) fn es256(kid: &str) -> (EcdsaKeyPair, serde_json::Value) {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("keygen");
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("key");
        let point = pair.public_key().as_ref();
        let jwk = json!({"kid": kid, "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])});
        (pair, jwk)
    }

    #[test]
    fn es256_and_eddsa_tokens_verify_and_forgeries_do_not() {
        let rng = SystemRandom::new();
        let (ec, ec_jwk) = es256("ec-1");
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("keygen");
        let ed = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
        let ed_jwk = json!({"kid": "ed-1", "kty": "OKP", "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(ed.public_key().as_ref())});
        let enc = json!({"kid": "enc", "kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"});
        let doc = json!({"keys": [ec_jwk, ed_jwk, enc, {"kty": "oct", "k": "c2VjcmV0"}]});
        let set = KeySet::parse(doc.to_string().as_bytes()).expect("set");
        assert_eq!(set.len(), 2, "the encryption and HMAC keys are left out");
        let claims = json!({"sub": "alice"});
        let t_ec = signed("ES256", "ec-1", &claims, |m| {
            ec.sign(&rng, m).expect("sign").as_ref().to_vec()
        });
        let t_ed = signed("EdDSA", "ed-1", &claims, |m| ed.sign(m).as_ref().to_vec());
        assert_eq!(set.verifies(&t_ec), Verdict::Valid);
        assert_eq!(set.verifies(&t_ed), Verdict::Valid);
        // The same claims with another signature, another payload, another key id, `none`.
        let forged = format!(
            "{}.{}",
            t_ec.rsplit_once('.').expect("jws").0,
            URL_SAFE_NO_PAD.encode([7u8; 64])
        );
        assert_eq!(set.verifies(&forged), Verdict::Invalid);
        let (h, rest) = t_ed.split_once('.').expect("jws");
        let (_, sig) = rest.split_once('.').expect("jws");
        let other = URL_SAFE_NO_PAD.encode(json!({"sub": "bob"}).to_string());
        assert_eq!(
            set.verifies(&format!("{h}.{other}.{sig}")),
            Verdict::Invalid
        );
        let unknown = signed("ES256", "ec-2", &claims, |m| {
            ec.sign(&rng, m).expect("sign").as_ref().to_vec()
        });
        assert_eq!(set.verifies(&unknown), Verdict::UnknownKey("ec-2".into()));
        assert_eq!(kid(&unknown).as_deref(), Some("ec-2"));
        let none = signed("none", "ec-1", &claims, |_| Vec::new());
        assert_eq!(set.verifies(&none), Verdict::Invalid);
        let hs = signed("HS256", "ec-1", &claims, |_| vec![1; 32]);
        assert_eq!(set.verifies(&hs), Verdict::Invalid);
        assert!(!checkable(&hs) && !checkable(&none) && checkable(&t_ec) && checkable(&t_ed));
        // An ES256 token does not verify against the Ed25519 key even without a kid.
        for garbage in ["", "a.b", "a.b.c", "....", "\u{1F600}.x.y"] {
            assert_eq!(set.verifies(garbage), Verdict::Invalid, "{garbage:?}");
        }
    }

    /// The test RSA key (PKCS#1 DER, made with `openssl genpkey`; for tests only).
    pub(crate) const TEST_RSA_DER: &[u8] = include_bytes!("../../tests/fixtures/test-rsa-2048.der");

    #[test]
    fn rs256_tokens_verify() {
        let pair = signature::RsaKeyPair::from_der(TEST_RSA_DER).expect("rsa key");
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
        let jwk = json!({"kid": "rsa-1", "kty": "RSA", "alg": "RS256", "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e)});
        let set = KeySet::parse(json!({"keys": [jwk]}).to_string().as_bytes()).expect("set");
        let rng = SystemRandom::new();
        let sign = |m: &[u8]| {
            let mut sig = vec![0; pair.public().modulus_len()];
            pair.sign(&signature::RSA_PKCS1_SHA256, &rng, m, &mut sig)
                .expect("sign");
            sig
        };
        let token = signed("RS256", "rsa-1", &json!({"sub": "alice"}), sign);
        assert_eq!(set.verifies(&token), Verdict::Valid);
        let as_es = token.replacen(
            &URL_SAFE_NO_PAD
                .encode(json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}).to_string()),
            &URL_SAFE_NO_PAD
                .encode(json!({"alg": "ES256", "typ": "JWT", "kid": "rsa-1"}).to_string()),
            1,
        );
        assert_eq!(
            set.verifies(&as_es),
            Verdict::Invalid,
            "an algorithm switch never verifies"
        );
    }

    #[test]
    fn bad_key_sets_are_refused() {
        assert!(matches!(KeySet::parse(b"[]"), Err(KeySetError::Shape(_))));
        assert!(matches!(
            KeySet::parse(b"not json"),
            Err(KeySetError::Shape(_))
        ));
        assert_eq!(
            KeySet::parse(br#"{"keys": []}"#),
            Err(KeySetError::NoUsableKey)
        );
        let wrong_alg = json!({"keys": [{"kty": "RSA", "alg": "RS512", "n": "AQAB", "e": "AQAB"}]});
        assert_eq!(
            KeySet::parse(wrong_alg.to_string().as_bytes()),
            Err(KeySetError::NoUsableKey)
        );
        let short_ec = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "AQAB", "y": "AQAB"}]});
        assert_eq!(
            KeySet::parse(short_ec.to_string().as_bytes()),
            Err(KeySetError::NoUsableKey)
        );
    }
}
