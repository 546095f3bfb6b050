//! Field sources and conditions (src/extract/source.rs, src/detect): parsing any source text
//! with any path parameters, and any route's `when` conditions, never panics; a source that
//! parses displays as text that parses to the same source; evaluating it against an exchange
//! whose bodies, headers, query and path are the fuzzer's bytes never panics and never yields
//! an empty value (empty is "no value").
#![no_main]

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use libfuzzer_sys::fuzz_target;
use userhook::exchange::{CapturedBody, Exchange, RouteMatch};
use userhook::extract::source::FieldSource;
use userhook::extract::view::View;

fuzz_target!(|data: &[u8]| {
    // source text \0 param names (comma-separated) \0 request body \0 response body \0 query
    let mut parts = data.splitn(6, |b| *b == 0);
    let (Some(source), Some(params)) = (parts.next(), parts.next()) else {
        return;
    };
    let (Ok(source), Ok(params)) = (std::str::from_utf8(source), std::str::from_utf8(params)) else {
        return;
    };
    let request_body = parts.next().unwrap_or_default();
    let response_body = parts.next().unwrap_or_default();
    let query = parts.next().unwrap_or_default();
    let path_value = parts.next().unwrap_or_default();
    let params: Vec<String> = params.split(',').filter(|p| !p.is_empty()).map(str::to_owned).collect();

    // Conditions: a route with this source as its one `when`, compiled as the config does.
    if let Ok(spec) = serde_json::from_value::<userhook::config::model::RouteSpec>(
        serde_json::json!({"action": "created", "method": "POST", "path": "/u/{id}", "when": {source: ["x"]}}),
    ) {
        let _ = userhook::detect::Rule::compile(&spec, "routes[0]", userhook::detect::RuleOrigin::Operator);
    }

    let Ok(parsed) = FieldSource::parse(source, &params) else {
        return;
    };
    let shown = parsed.to_string();
    assert_eq!(FieldSource::parse(&shown, &params).as_ref(), Ok(&parsed), "{shown}");

    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_bytes(response_body) {
        headers.insert("location", v.clone());
        headers.insert("x-user", v);
    }
    let mut request_headers = headers.clone();
    if let Ok(v) = HeaderValue::from_bytes(request_body) {
        request_headers.insert("authorization", v);
    }
    let uri = match std::str::from_utf8(query).ok().and_then(|q| format!("/u/1?{q}").parse::<Uri>().ok()) {
        Some(u) => u,
        None => Uri::from_static("/u/1"),
    };
    let raw_param = String::from_utf8_lossy(path_value).into_owned();
    let exchange = Exchange {
        route: Some(RouteMatch {
            entry: 0,
            params: params.iter().map(|p| (p.clone(), raw_param.clone())).collect(),
        }),
        method: Method::POST,
        uri,
        request_headers,
        request_body: CapturedBody {
            bytes: Bytes::copy_from_slice(request_body),
            truncated: request_body.len() % 2 == 1,
        },
        status: StatusCode::CREATED,
        response_headers: headers,
        response_body: CapturedBody {
            bytes: Bytes::copy_from_slice(response_body),
            truncated: false,
        },
        remote_ip: None,
        request_id: HeaderValue::from_static("req"),
        durable: None,
    };
    let view = View::new(&exchange, 1 << 16);
    if let Some(value) = parsed.eval(&view) {
        assert!(!value.is_empty(), "an empty value is no value");
    }
});
