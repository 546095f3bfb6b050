//! Property tests over what parses untrusted or operator input: the same surfaces and the same
//! properties as the cargo-fuzz targets in `fuzz/` (README "Fuzzing"), on the stable toolchain
//! with bounded case counts, so a regression fails `cargo test` in seconds:
//! the JSON member index against serde_json; template rendering (JSON stays JSON, URL values
//! cannot change the URL's structure); the inline client's response framing (split-invariant,
//! chunked round trip); config parse and validate; field sources; JWT decoding; urlencoded
//! values.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Map, Value};
use userhook::extract::json_index::ObjectIndex;
use userhook::extract::jwt::claims;
use userhook::extract::source::FieldSource;
use userhook::snapshot::Snapshot;
use userhook::template::{BodyKind, BodyTemplate, UrlRenderError, UrlTemplate};
use userhook::upstream::offline::{read_response, Ending};

/// 256 cases from a fixed seed, so CI is deterministic and quick; `PROPTEST_CASES` and
/// `PROPTEST_RNG_SEED` explore further (e.g. `PROPTEST_CASES=100000 PROPTEST_RNG_SEED=7`).
fn config() -> ProptestConfig {
    let mut c = ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 256;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = proptest::test_runner::RngSeed::Fixed(0x5eed_0013);
    }
    c
}

/// Text with the characters that break parsers: quotes, backslashes, controls, slashes, dots,
/// percent signs, braces, non-ASCII.
fn nasty_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "a",
        "Z",
        "0",
        "9",
        " ",
        "\"",
        "\\",
        "/",
        ".",
        "..",
        "%",
        "%2e",
        "%2F",
        "?",
        "#",
        "&",
        "=",
        "+",
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\n",
        "\r",
        "\t",
        "\u{0}",
        "\u{1f}",
        "é",
        "😀",
        "\u{fffd}",
        "{{$$.ID$$}}",
        "$$",
        "${X}",
        "-",
        "_",
        "~",
        "@",
    ]);
    prop::collection::vec(pieces, 0..12).prop_map(|v| v.concat())
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        nasty_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(nasty_text(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// The object as text, compact or pretty, optionally with whitespace around it.
fn object_text() -> impl Strategy<Value = (Map<String, Value>, Vec<u8>)> {
    (
        prop::collection::btree_map(nasty_text(), json_value(), 0..8),
        any::<bool>(),
        prop::sample::select(vec!["", " ", "\n", "\t\r\n "]),
    )
        .prop_map(|(m, pretty, ws)| {
            let map: Map<String, Value> = m.into_iter().collect();
            let v = Value::Object(map.clone());
            let body = if pretty {
                serde_json::to_string_pretty(&v)
            } else {
                serde_json::to_string(&v)
            }
            .unwrap_or_default();
            (map, format!("{ws}{body}{ws}").into_bytes())
        })
}

proptest! {
    #![proptest_config(config())]

    /// Every member of an object serde_json reads is what the index reads.
    #[test]
    fn json_index_reads_every_member_as_serde_json((map, text) in object_text()) {
        let index = ObjectIndex::build(&text).expect("an object serde_json wrote is indexed");
        // The oracle is serde_json's reading of the text (its float parsing is not an exact
        // round trip of what it wrote, and the index parses members with serde_json).
        let Ok(Value::Object(read)) = serde_json::from_slice::<Value>(&text) else {
            panic!("serde_json cannot read what it wrote");
        };
        prop_assert_eq!(read.len(), map.len());
        for (key, value) in &read {
            prop_assert_eq!(index.member(&text, key), Some(value.clone()));
        }
    }

    /// On arbitrary bytes, the index and serde_json agree wherever serde_json reads an object.
    #[test]
    fn json_index_agrees_with_serde_json_on_any_bytes(
        bytes in prop::collection::vec(
            prop::sample::select(b"{}[]\":,\\ 0123456789.-+eEtrufalsn\xff\xc3\xa9ab\n".to_vec()),
            0..64,
        )
    ) {
        let index = ObjectIndex::build(&bytes);
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&bytes) {
            let index = index.expect("serde_json reads an object the index refuses");
            for (key, value) in &map {
                prop_assert_eq!(index.member(&bytes, key), Some(value.clone()));
            }
        }
    }

    /// A JSON body renders valid JSON whatever the values; each value reads back unchanged.
    #[test]
    fn json_bodies_stay_json(id in nasty_text(), name in nasty_text()) {
        let t = BodyTemplate::compile(
            r#"{"id":"{{$$.ID$$}}","raw":{{$$.Name$$}},"n":[{{$$.ID$$}}]}"#,
            BodyKind::Json,
            &|_| false,
        ).expect("compiles");
        let vars: BTreeMap<String, String> =
            [("ID".to_string(), id.clone()), ("Name".to_string(), name.clone())].into();
        let out = t.render(&vars);
        let v: Value = serde_json::from_slice(&out).expect("valid JSON");
        prop_assert_eq!(&v["id"], &Value::String(id.clone()));
        prop_assert_eq!(&v["raw"], &Value::String(name));
        prop_assert_eq!(&v["n"][0], &Value::String(id));
    }

    /// A URL's values can change neither its host nor its number of path segments; an empty
    /// path value or a dot segment is refused, never sent somewhere else.
    #[test]
    fn url_values_cannot_change_the_url(id in nasty_text(), name in nasty_text()) {
        let t = UrlTemplate::compile(
            "http://receiver.example:8080/users/{{$$.ID$$}}/x.{{$$.Name$$}}/end?u={{$$.Name$$}}#{{$$.ID$$}}",
            &|_| false,
        ).expect("compiles");
        let vars: BTreeMap<String, String> =
            [("ID".to_string(), id.clone()), ("Name".to_string(), name.clone())].into();
        match t.render(&vars) {
            Ok(url) => {
                let parsed = reqwest::Url::parse(&url).expect("a rendered URL parses");
                prop_assert_eq!(parsed.host_str(), Some("receiver.example"));
                prop_assert_eq!(parsed.port(), Some(8080));
                let segments: Vec<&str> = parsed.path_segments().expect("segments").collect();
                prop_assert_eq!(segments.len(), 4, "{}", url);
                prop_assert_eq!(segments[0], "users");
                prop_assert_eq!(segments[3], "end");
                prop_assert!(parsed.query().is_some_and(|q| q.starts_with("u=")));
            }
            Err(UrlRenderError::EmptyPathValue(n)) => {
                prop_assert!(vars.get(&n).is_some_and(String::is_empty), "{}", n);
            }
            Err(UrlRenderError::DotSegment(n)) => {
                prop_assert_eq!(n.as_str(), "ID");
                prop_assert!(id == "." || id == "..", "{:?}", id);
            }
            // The text check catches every dot segment of this template (no `\` or tab in
            // its text): the parser's check must never be what refuses it.
            Err(e @ UrlRenderError::PathChanged) => {
                prop_assert!(false, "{} for ID {:?}, Name {:?}", e, id, name);
            }
        }
    }

    /// A chunked body in any chunking, read in any split, reads back whole with its trailers.
    #[test]
    fn chunked_bodies_round_trip_in_any_split(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..40), 0..6),
        ext in any::<bool>(),
        splits in prop::collection::vec(0usize..400, 0..6),
    ) {
        let mut wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for c in &chunks {
            let size = if ext { format!("{:X};name=v\r\n", c.len()) } else { format!("{:x}\r\n", c.len()) };
            wire.extend_from_slice(size.as_bytes());
            wire.extend_from_slice(c);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\nx-digest: abc\r\n\r\n");
        let whole = read_response(&wire, &[], &http::Method::GET);
        prop_assert_eq!(&whole.body, &chunks.concat());
        prop_assert_eq!(&whole.ending, &Ending::Complete { leftover: 0 });
        prop_assert_eq!(whole.trailers.as_ref().map(|t| t.len()), Some(1));
        prop_assert_eq!(read_response(&wire, &splits, &http::Method::GET), whole);
    }

    /// Any bytes as a response: never a panic, and the read's split never changes the outcome.
    #[test]
    fn response_reading_is_split_invariant(
        head in prop::sample::select(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
            "HTTP/1.0 200 OK\r\n\r\n",
            "HTTP/1.1 204 No Content\r\n\r\n",
            "",
        ]),
        tail in prop::collection::vec(
            prop::sample::select(b"0123456789abcdefABCDEF\r\n;: xX-".to_vec()),
            0..80,
        ),
        splits in prop::collection::vec(0usize..200, 0..6),
        method in prop::sample::select(vec![http::Method::GET, http::Method::HEAD]),
    ) {
        let mut wire = head.as_bytes().to_vec();
        wire.extend_from_slice(&tail);
        let whole = read_response(&wire, &[], &method);
        prop_assert_eq!(read_response(&wire, &splits, &method), whole.clone());
        let every: Vec<usize> = (0..wire.len()).collect();
        prop_assert_eq!(read_response(&wire, &every, &method), whole.clone());
        if head.contains("Content-Length: 7") && method == http::Method::GET {
            if let Ending::Complete { .. } = whole.ending {
                prop_assert_eq!(whole.body.len(), 7);
            }
        }
    }

    /// Any text as a config: a snapshot or a non-empty list of problems, never a panic.
    #[test]
    fn config_text_never_panics(
        lines in prop::collection::vec(
            prop::sample::select(vec![
                "upstream: http://127.0.0.1:1", "upstream: ftp://x", "listen: nowhere",
                "admin: {listen: '0.0.0.0:9090'}", "admin: {token: short}",
                "admin: {listen: '[::1]:1', token: 0123456789abcdef0}",
                "routes:", "  - {action: created, method: POST, path: /users}",
                "  - {action: created, method: POST, path: '/u/{id}', fields: {ID: path.id}}",
                "  - {action: login, method: POST, path: /t, when: {request.form.grant_type: password}}",
                "  - {action: nope, method: '', path: 'x{'}",
                "webhooks:", "  - {name: a, actions: ['*'], url: 'http://r/{{$$.ID$$}}'}",
                "  - {name: b, actions: [created], url: 'http://r/', body: '{{$$.Nmae$$}}'}",
                "  - {name: c, actions: [deleted], url: 'http://r/', preset: wecom-text}",
                "profiles: [keycloak, scim]", "profiles: [{name: dce, base_path: /x}]",
                "capture_limit: 0", "capture_limit: 1MiB", "delivery: {guarantee: strict}",
                "timeouts: {connect: 0s}", "log: {format: xml}", "---", "- [", "{", "\"",
                "key: ${UNSET_VAR_FOR_PROPTEST}", "a: &x 1", "b: *x", "",
            ]),
            0..10,
        )
    ) {
        let text = lines.join("\n");
        match Snapshot::from_text(&text, None) {
            Ok(s) => prop_assert!(!s.file.upstream.is_empty()),
            Err(e) => prop_assert!(!e.0.is_empty()),
        }
    }

    /// Any source text parses or is refused; what parses displays as text that parses back.
    #[test]
    fn field_sources_parse_and_display_back(
        head in prop::sample::select(vec![
            "request.body.", "response.body.", "request.form.", "path.", "query.",
            "request.header.", "response.header.", "request.jwt.", "request.", "body.", "",
        ]),
        rest in nasty_text(),
        transform in prop::sample::select(vec!["", " | lower", " | last_segment", " | jwt.sub", "|jwt.a.b", " | nope", "|"]),
    ) {
        let text = format!("{head}{rest}{transform}");
        let params = vec!["id".to_string(), "realm".to_string()];
        if let Ok(source) = FieldSource::parse(&text, &params) {
            prop_assert_eq!(FieldSource::parse(&source.to_string(), &params), Ok(source));
        }
    }

    /// A token whose payload is any JSON object decodes to that object; any text is safe.
    #[test]
    fn jwt_claims_round_trip(obj in prop::collection::btree_map(nasty_text(), json_value(), 0..6), junk in nasty_text()) {
        use base64::Engine as _;
        let written = Value::Object(obj.into_iter().collect()).to_string();
        // As serde_json reads the payload back (floats are not an exact round trip).
        let v: Value = serde_json::from_str(&written).expect("serde_json reads what it wrote");
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&written);
        prop_assert_eq!(claims(&format!("eyJhbGciOiJub25lIn0.{payload}.sig")), Some(v.clone()));
        prop_assert_eq!(claims(&format!("  x.{payload}.  ")), Some(v));
        let _ = claims(&junk);
        prop_assert_eq!(claims(&format!("a.{payload}.c.d.e")), None);
    }

    /// Urlencoded values decode exactly, or are no value when their bytes are not UTF-8:
    /// never a guess with replacement characters.
    #[test]
    fn urlencoded_values_are_exact_or_absent(value in nasty_text(), raw in prop::collection::vec(any::<u8>(), 0..16)) {
        let encoded: String = percent_encoding::utf8_percent_encode(&value, percent_encoding::NON_ALPHANUMERIC).to_string();
        let pairs = userhook::extract::view::parse_urlencoded(format!("k={encoded}").as_bytes());
        prop_assert_eq!(&pairs, &vec![(Some("k".to_string()), Some(value))]);

        let raw: Vec<u8> = raw.into_iter().filter(|b| !b"&=+".contains(b)).collect();
        let mut text = b"k=".to_vec();
        text.extend_from_slice(&raw);
        let decoded: Vec<u8> = percent_encoding::percent_decode(&raw).collect();
        let want = String::from_utf8(decoded).ok();
        prop_assert_eq!(userhook::extract::view::parse_urlencoded(&text), vec![(Some("k".to_string()), want)]);
    }
}
