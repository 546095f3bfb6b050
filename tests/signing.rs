//! Standard Webhooks signing through the real binary, checked by implementations of our own:
//! a webhook with two active secrets (an HMAC `whsec_` and an ed25519 `whsk_`) sends both
//! signatures in one `webhook-signature` header; `v1` is verified with a hand-written
//! HMAC-SHA256 check, `v1a` with `ed25519-dalek` (the signer uses `ring`) against the public
//! key `userhook check` prints. `check` and the logs never show a secret. After a rotation
//! (SIGHUP with only the new secret) only its signature is sent.

mod support;

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use hmac::{Hmac, Mac};
use http::{Request, StatusCode};
use sha2::Sha256;
use support::receiver::{Received, WebhookReceiver};
use support::{eventually, full, respond, send, Binary, FakeUpstream};

const WAIT: Duration = Duration::from_secs(20);
/// 32 bytes of HMAC key, and a 32-byte ed25519 seed (test values, never real secrets).
const HMAC_KEY: [u8; 32] = *b"hmac-key-for-userhook-signing-t1";
const ED_SEED: [u8; 32] = *b"ed25519-seed-for-userhook-test-1";

fn config(upstream: &str, hook: &str, spool: &std::path::Path, secrets: &[String]) -> String {
    format!(
        "listen: 127.0.0.1:0\nupstream: {upstream}\nadmin:\n  listen: 127.0.0.1:0\n\
         delivery: {{spool_dir: '{}'}}\n\
         routes:\n  - action: created\n    method: POST\n    path: /users\n    status: [201]\n\
         \x20   fields: {{ID: response.body.id}}\n\
         webhooks:\n  - name: signed\n    actions: [created]\n    url: '{hook}'\n\
         \x20   signing:\n      secrets: [{}]\n",
        spool.display(),
        secrets.join(", ")
    )
}

/// The signed content of a request: `id.timestamp.body`.
fn signed_content(r: &Received) -> Vec<u8> {
    let mut m = format!(
        "{}.{}.",
        r.header("webhook-id"),
        r.header("webhook-timestamp")
    )
    .into_bytes();
    m.extend_from_slice(&r.body);
    m
}

/// `v1,<b64>` is HMAC-SHA256 of the signed content under `key`, compared in constant time.
fn v1_verifies(r: &Received, sig: &str, key: &[u8]) -> bool {
    let Some(b64) = sig.strip_prefix("v1,") else {
        return false;
    };
    let Ok(tag) = STANDARD.decode(b64) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(&signed_content(r));
    mac.verify_slice(&tag).is_ok()
}

/// `v1a,<b64>` is an ed25519 signature of the signed content under `public`.
fn v1a_verifies(r: &Received, sig: &str, public: &VerifyingKey) -> bool {
    let Some(b64) = sig.strip_prefix("v1a,") else {
        return false;
    };
    let Ok(bytes) = STANDARD.decode(b64) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(&bytes) else {
        return false;
    };
    public.verify(&signed_content(r), &sig).is_ok()
}

async fn create(proxy: &str, id: &str) {
    let req = Request::post(format!("{proxy}/users"))
        .header("content-type", "application/json")
        .header("x-user", id)
        .body(full(Bytes::from_static(b"{}")))
        .expect("request");
    assert_eq!(send(req).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn two_secrets_sign_each_request_and_an_independent_verifier_accepts_both() {
    let iam = FakeUpstream::start(|r| async move {
        let id = r
            .headers
            .get("x-user")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("x")
            .to_owned();
        respond(201, format!(r#"{{"id":"{id}"}}"#))
    })
    .await;
    let recv = WebhookReceiver::fixed(204, "").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let whsec = format!("whsec_{}", STANDARD.encode(HMAC_KEY));
    let whsk = format!("whsk_{}", STANDARD.encode(ED_SEED));
    let path = dir.path().join("userhook.yaml");
    let spool = dir.path().join("spool");
    std::fs::write(
        &path,
        config(
            &iam.url(),
            &recv.url("/hook"),
            &spool,
            &[whsec.clone(), whsk.clone()],
        ),
    )
    .expect("write config");

    // `check` prints the public key and no secret.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_userhook"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("check");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("signed with 2 secrets"), "{text}");
    let public_b64 = text
        .lines()
        .find_map(|l| l.split("v1a public key whpk_").nth(1))
        .unwrap_or_else(|| panic!("no public key in:\n{text}"))
        .trim()
        .to_owned();
    for secret in [
        &whsec,
        &whsk,
        &STANDARD.encode(HMAC_KEY),
        &STANDARD.encode(ED_SEED),
    ] {
        assert!(
            !text.contains(secret.as_str()),
            "check shows a secret:\n{text}"
        );
    }
    // The printed key is the seed's public key, derived here by the other implementation.
    let public = ed25519_dalek::SigningKey::from_bytes(&ED_SEED).verifying_key();
    assert_eq!(public_b64, STANDARD.encode(public.as_bytes()));

    let bin = Binary::start(&path).await;
    let proxy = format!("http://{}", bin.proxy_addr);
    create(&proxy, "u1").await;
    let got = eventually(WAIT, "one signed delivery", || async {
        recv.received().first().cloned()
    })
    .await;
    let header = got.header("webhook-signature");
    let sigs: Vec<&str> = header.split(' ').collect();
    assert_eq!(sigs.len(), 2, "{header}");
    assert!(v1_verifies(&got, sigs[0], &HMAC_KEY), "{header}");
    assert!(v1a_verifies(&got, sigs[1], &public), "{header}");
    // Neither verifies with the wrong key, nor over other content.
    assert!(!v1_verifies(&got, sigs[0], b"another key"));
    let mut tampered = got.clone();
    tampered.body = Bytes::from_static(br#"{"id":"u2"}"#);
    assert!(!v1a_verifies(&tampered, sigs[1], &public));
    assert!(!v1_verifies(&tampered, sigs[0], &HMAC_KEY));

    // Rotation: the HMAC secret retires; only `v1a` is sent afterwards.
    std::fs::write(
        &path,
        config(
            &iam.url(),
            &recv.url("/hook"),
            &spool,
            std::slice::from_ref(&whsk),
        ),
    )
    .expect("rewrite config");
    bin.signal("HUP");
    let reloads = format!("http://{}/reloads", bin.admin_addr);
    eventually(WAIT, "the reload to apply", || async {
        let (_, _, body) = support::get(&reloads).await;
        String::from_utf8_lossy(&body)
            .contains(r#""applied":1"#)
            .then_some(())
    })
    .await;
    create(&proxy, "u2").await;
    let got = eventually(WAIT, "a delivery after the rotation", || async {
        recv.received().get(1).cloned()
    })
    .await;
    let header = got.header("webhook-signature");
    assert!(
        !header.contains(' ') && header.starts_with("v1a,"),
        "{header}"
    );
    assert!(v1a_verifies(&got, &header, &public));

    let log = bin.log_text();
    for secret in [&whsec, &whsk] {
        assert!(!log.contains(secret.as_str()), "a secret is logged");
    }
}
