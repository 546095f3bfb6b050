//! JWT decoding (src/extract/jwt.rs): `claims` of any text and `bearer` of any header value
//! never panic; claims are always a JSON object, and a token built from an object decodes to
//! exactly that object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use userhook::extract::jwt::{bearer, claims};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(c) = claims(text) {
            assert!(c.is_object());
        }
    }
    if let Ok(value) = http::HeaderValue::from_bytes(data) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, value);
        if let Some(token) = bearer(&headers) {
            assert!(!token.is_empty());
            let _ = claims(token);
        }
    }
    // Round trip: any object serde_json reads, as a token's payload, reads back the same.
    if let Ok(v @ Value::Object(_)) = serde_json::from_slice::<Value>(data) {
        use base64_free::encode;
        let written = v.to_string();
        // As serde_json reads the payload back: its float parsing is not an exact round trip
        // of what it writes (a first run of this target stopped on `5e+104`).
        let want: Value = serde_json::from_str(&written).expect("serde_json reads what it wrote");
        let token = format!("e30.{}.c2ln", encode(written.as_bytes()));
        assert_eq!(claims(&token), Some(want));
    }
});

/// URL-safe base64 without padding, written out so the target needs no crate the fuzz build
/// does not otherwise have.
mod base64_free {
    const ALPHABET: &[u8; 64] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            let chars = chunk.len() + 1;
            for i in 0..chars {
                let idx = (n >> (18 - 6 * i)) & 63;
                out.push(char::from(ALPHABET[idx as usize]));
            }
        }
        out
    }
}
