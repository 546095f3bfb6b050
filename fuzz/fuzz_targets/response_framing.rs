//! The inline upstream client's reading of a response (src/upstream/direct: head, framing,
//! body decoder) over arbitrary bytes: never a panic; where the socket reads happen to split
//! the bytes never changes the outcome; a `Content-Length` body that completes has exactly
//! that many bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use userhook::upstream::offline::{read_response, Ending};

fuzz_target!(|data: &[u8]| {
    // First byte: the method; next two: where to split the reads; the rest: the response.
    let [m, a, b, input @ ..] = data else {
        return;
    };
    let method = match m % 4 {
        0 => http::Method::GET,
        1 => http::Method::HEAD,
        2 => http::Method::POST,
        _ => http::Method::DELETE,
    };
    let whole = read_response(input, &[], &method);
    let splits = [usize::from(*a) * input.len() / 256, usize::from(*b) % (input.len() + 1)];
    let split = read_response(input, &splits, &method);
    assert_eq!(whole, split, "splitting the reads at {splits:?} changed the outcome");
    let every: Vec<usize> = (0..input.len()).collect();
    if input.len() <= 128 {
        assert_eq!(whole, read_response(input, &every, &method), "byte-by-byte reads");
    }
    if let (Ending::Complete { .. }, Some(len)) = (&whole.ending, whole.headers.get("content-length")) {
        if whole.trailers.is_none() && !whole.headers.contains_key("transfer-encoding") && method != http::Method::HEAD {
            let status = whole.status.map(|s| s.as_u16()).unwrap_or(0);
            if status != 204 && status != 304 {
                let n: usize = len.to_str().unwrap().split(',').next().unwrap().trim().parse().unwrap();
                assert_eq!(whole.body.len(), n);
            }
        }
    }
});
