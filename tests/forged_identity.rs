//! Issue 13, forged identities: no event names a user on the strength of a client-presented
//! token alone. The `keycloak` profile in front of a fake Keycloak that signs its tokens with a
//! real RSA key and publishes it at `/realms/{realm}/protocol/openid-connect/certs`: a token it
//! signed names its user (`verified_token`), a made-up one naming someone else names nobody,
//! the 200 logout confirmation page is no event, and a rotated key is fetched again (once).

mod support;

use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::{json, Value};
use support::iam::*;
use support::*;
use userhook::event::Attribution;

const USERS: &str = "/admin/realms/acme/users";
const LOGOUT: &str = "/realms/acme/protocol/openid-connect/logout";
const CERTS: &str = "/realms/acme/protocol/openid-connect/certs";
const ALICE: &str = "8d4a3c1e-5b6f-4e2a-9c7d-1f0e2d3c4b5a";
const BOB: &str = "0b9e6c1d-7a2f-4d3e-8b1c-2e3f4a5b6c7d";

/// The realm's signing keys: an RSA key (Keycloak's default RS256) and, after a rotation, an
/// EC key besides it.
struct Realm {
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
    rotated: Mutex<bool>,
}

impl Realm {
    fn new() -> Realm {
        let rsa = RsaKeyPair::from_der(include_bytes!("fixtures/test-rsa-2048.der")).expect("rsa");
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &SystemRandom::new()).expect("ec keygen");
        let ec = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &SystemRandom::new()).expect("ec");
        Realm {
            rsa,
            ec,
            rotated: Mutex::new(false),
        }
    }

    /// The JWKS document Keycloak serves (an encryption key beside the signing ones, as it does).
    fn jwks(&self) -> Value {
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(self.rsa.public());
        let mut keys = vec![
            json!({"kid": "rsa-sig-1", "kty": "RSA", "alg": "RS256", "use": "sig",
                   "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e),
                   "x5c": ["MIIC..."], "x5t": "abc", "x5t#S256": "def"}),
            json!({"kid": "rsa-enc-1", "kty": "RSA", "alg": "RSA-OAEP", "use": "enc",
                   "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e)}),
        ];
        if *self.rotated.lock().expect("lock") {
            let point = self.ec.public_key().as_ref();
            keys.push(
                json!({"kid": "ec-sig-2", "kty": "EC", "crv": "P-256", "alg": "ES256",
                "use": "sig", "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..])}),
            );
        }
        json!({"keys": keys})
    }

    fn sign(&self, alg: &str, kid: &str, claims: &Value) -> String {
        let header =
            URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT", "kid": kid}).to_string());
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{payload}");
        let rng = SystemRandom::new();
        let sig = match alg {
            "RS256" => {
                let mut sig = vec![0; self.rsa.public().modulus_len()];
                self.rsa
                    .sign(
                        &signature::RSA_PKCS1_SHA256,
                        &rng,
                        signed.as_bytes(),
                        &mut sig,
                    )
                    .expect("sign");
                sig
            }
            _ => self
                .ec
                .sign(&rng, signed.as_bytes())
                .expect("sign")
                .as_ref()
                .to_vec(),
        };
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

fn access_claims(sub: &str, username: &str) -> Value {
    json!({"exp": 4_102_444_800u64, "iat": 1_732_938_000, "iss": "http://kc/realms/acme",
           "aud": "account", "sub": sub, "typ": "Bearer", "azp": "app",
           "preferred_username": username, "scope": "openid email profile"})
}

/// Keycloak: admin create (201 + Location), the certs endpoint, and logout, which answers 204
/// to an API logout and 200 (the confirmation page) to one that has nothing to redirect to.
async fn keycloak(realm: Arc<Realm>) -> FakeUpstream {
    fake_iam(move |r| {
        let path = path_of(r);
        match (r.method.as_str(), path) {
            ("POST", USERS) => {
                let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
                let id = if body["username"] == "alice" {
                    ALICE
                } else {
                    BOB
                };
                Canned::status(201).header("location", &format!("http://kc{USERS}/{id}"))
            }
            ("GET", CERTS) => Canned::status(200).json("application/json", &realm.jwks()),
            ("POST", LOGOUT) if body_text(r).contains("confirm=page") => Canned::status(200)
                .header("content-type", "text/html;charset=utf-8")
                .body("<html><body>Do you want to log out?</body></html>"),
            ("POST", LOGOUT) => Canned::status(204),
            _ => Canned::status(404),
        }
    })
    .await
}

fn certs_fetched(up: &FakeUpstream) -> usize {
    up.requests()
        .iter()
        .filter(|r| r.method == "GET" && path_of(r) == CERTS)
        .count()
}

#[tokio::test]
async fn keycloak_logout_with_a_signed_token_names_its_user_and_a_forged_one_nobody() {
    let realm = Arc::new(Realm::new());
    let up = keycloak(realm.clone()).await;
    let uh = Userhook::start(&config_for(&up.url(), "profiles: [keycloak]\n"), false).await;
    let mut rx = uh.handle.subscribe();
    for (name, email) in [("alice", "alice@example.com"), ("bob", "bob@example.com")] {
        let body = json!({"username": name, "email": email, "enabled": true,
            "credentials": [{"type": "password", "value": CANARY}]});
        call(&uh.url(), "POST", USERS, JSON, body.to_string()).await;
        assert_eq!(next_event(&mut rx).await.event_type, "user.created");
    }
    assert_eq!(
        certs_fetched(&up),
        0,
        "no token checked yet, no key fetched"
    );

    // Alice logs out with a token the realm signed: she is named, verified.
    let signed = realm.sign("RS256", "rsa-sig-1", &access_claims(ALICE, "alice"));
    let bearer = format!("Bearer {signed}");
    let reply = call(&uh.url(), "POST", LOGOUT, &[("authorization", &bearer)], "").await;
    assert_eq!(reply.status, 204);
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.logout",
        ("POST", LOGOUT, 204),
        &[
            ("ID", ALICE),
            ("Name", "alice"),
            ("Email", "alice@example.com"),
            ("Enabled", "true"),
        ],
        false,
    );
    assert_eq!(ev.attribution, Attribution::VerifiedToken);
    assert_eq!(certs_fetched(&up), 1, "the keys came through the upstream");
    assert!(!serde_json::to_string(&ev).expect("json").contains(&signed));

    // A made-up token naming bob (signed with nothing the realm publishes), answered 204: the
    // logout is an event, but it names nobody — no user.logout for bob, none of his fields.
    let forged = {
        let t = realm.sign("RS256", "rsa-sig-1", &access_claims(BOB, "bob"));
        let (head, _) = t.rsplit_once('.').expect("jws");
        format!("{head}.{}", URL_SAFE_NO_PAD.encode([0x5a; 256]))
    };
    let bearer = format!("Bearer {forged}");
    call(&uh.url(), "POST", LOGOUT, &[("authorization", &bearer)], "").await;
    let ev = next_event(&mut rx).await;
    assert_event(&ev, "user.logout", ("POST", LOGOUT, 204), &[], false);
    assert_eq!(ev.attribution, Attribution::None);
    let text = serde_json::to_string(&ev).expect("json");
    assert!(
        !text.contains(BOB) && !text.contains("bob@example.com"),
        "{text}"
    );
    assert!(text.contains(r#""attribution":"none""#), "{text}");

    // The same forgery answered by the confirmation page (nobody was logged out): no event.
    // The next event is the one after it.
    let reply = call(
        &uh.url(),
        "POST",
        LOGOUT,
        &[
            ("authorization", &bearer),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        "confirm=page",
    )
    .await;
    assert_eq!(reply.status, 200);
    // A key rotation: the realm now signs with a new EC key the cached set lacks. One fetch
    // finds it; the forged token above (a known key id) caused none.
    assert_eq!(certs_fetched(&up), 1);
    *realm.rotated.lock().expect("lock") = true;
    let rotated = realm.sign("ES256", "ec-sig-2", &access_claims(BOB, "bob"));
    let bearer = format!("Bearer {rotated}");
    call(&uh.url(), "POST", LOGOUT, &[("authorization", &bearer)], "").await;
    let ev = next_event(&mut rx).await;
    assert_eq!(
        ev.request.status, 204,
        "the 200 confirmation page made no event"
    );
    assert_eq!(ev.attribution, Attribution::VerifiedToken);
    assert_eq!(ev.user["ID"], BOB);
    assert_eq!(ev.user["Email"], "bob@example.com");
    assert_eq!(
        certs_fetched(&up),
        2,
        "the unknown key id fetched the keys once more"
    );

    // Made-up key ids cannot make userhook hammer the IAM: at most one fetch per 10 s.
    for i in 0..3 {
        let t = realm.sign(
            "ES256",
            &format!("made-up-{i}"),
            &access_claims(ALICE, "alice"),
        );
        let bearer = format!("Bearer {t}");
        call(&uh.url(), "POST", LOGOUT, &[("authorization", &bearer)], "").await;
        let ev = next_event(&mut rx).await;
        assert_eq!((ev.attribution, ev.user.len()), (Attribution::None, 0));
    }
    assert_eq!(certs_fetched(&up), 2, "rate-limited");
    uh.handle.stop().await;
}

#[tokio::test]
async fn unverified_mode_uses_the_claims_and_says_so() {
    let realm = Arc::new(Realm::new());
    let up = keycloak(realm.clone()).await;
    let uh = Userhook::start(
        &config_for(
            &up.url(),
            "profiles: [keycloak]\nidentity:\n  client_tokens: unverified\n",
        ),
        false,
    )
    .await;
    let mut rx = uh.handle.subscribe();
    let forged = jwt(&access_claims(BOB, "bob"));
    let bearer = format!("Bearer {forged}");
    call(&uh.url(), "POST", LOGOUT, &[("authorization", &bearer)], "").await;
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.logout",
        ("POST", LOGOUT, 204),
        &[("ID", BOB), ("Name", "bob")],
        false,
    );
    assert_eq!(ev.attribution, Attribution::UnverifiedToken);
    assert_eq!(certs_fetched(&up), 0, "nothing is verified in this mode");
    uh.handle.stop().await;
}
