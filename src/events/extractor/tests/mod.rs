//! Extraction tests: every source and transform through a real rule, and each profile's happy
//! path with the bytes the real IAM sends. A canary password must appear in no event.
//!
//! This file holds the capture builder and the checks every test runs through ([`run`]);
//! `sources` covers sources, transforms and bodies, `keycloak` that profile, `profiles` the
//! SCIM, DCE and generic ones and operator rules.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use serde_json::json;

use super::*;
use crate::event::UserFields;
use crate::exchange::CapturedBody;
use crate::extract::decode::tests::{brotli, gzip, raw_deflate, zlib};
use crate::extract::jwt::tests::token;
use crate::snapshot::Snapshot;

const CANARY: &str = "CANARY-PW-123";

fn runtime(yaml: &str) -> Arc<Snapshot> {
    let text = format!("upstream: http://127.0.0.1:1\n{yaml}");
    Arc::new(Snapshot::from_text(&text, None).expect("valid config"))
}

/// One request/response pair as the proxy would capture it.
struct Call {
    method: Method,
    uri: Uri,
    request_headers: HeaderMap,
    request_body: CapturedBody,
    status: u16,
    response_headers: HeaderMap,
    response_body: CapturedBody,
}

fn call(method: &str, uri: &str) -> Call {
    Call {
        method: method.parse().expect("method"),
        uri: uri.parse().expect("uri"),
        request_headers: HeaderMap::new(),
        request_body: CapturedBody::default(),
        status: 200,
        response_headers: HeaderMap::new(),
        response_body: CapturedBody::default(),
    }
}

fn header(h: &mut HeaderMap, k: &str, v: &str) {
    h.append(
        HeaderName::from_bytes(k.as_bytes()).expect("name"),
        HeaderValue::from_str(v).expect("value"),
    );
}

impl Call {
    fn req_header(mut self, k: &str, v: &str) -> Self {
        header(&mut self.request_headers, k, v);
        self
    }
    fn json(self, body: serde_json::Value) -> Self {
        self.req_header("content-type", "application/json")
            .body(body.to_string())
    }
    fn form(self, body: &str) -> Self {
        self.req_header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
    }
    fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.request_body.bytes = body.into();
        self
    }
    fn status(mut self, s: u16) -> Self {
        self.status = s;
        self
    }
    fn resp_header(mut self, k: &str, v: &str) -> Self {
        header(&mut self.response_headers, k, v);
        self
    }
    fn resp_json(self, body: serde_json::Value) -> Self {
        self.resp_header("content-type", "application/json")
            .resp_body(body.to_string())
    }
    fn resp_body(mut self, body: impl Into<Bytes>) -> Self {
        self.response_body.bytes = body.into();
        self
    }
    fn resp_truncated(mut self) -> Self {
        self.response_body.truncated = true;
        self
    }

    /// The exchange the proxy would hand over; `None` when the route table does not match.
    fn exchange(self, rt: &Arc<Snapshot>) -> Option<Exchange> {
        let route = rt.routes.classify(&self.method, self.uri.path())?;
        Some(Exchange {
            route: Some(route),
            method: self.method,
            uri: self.uri,
            request_headers: self.request_headers,
            request_body: self.request_body,
            status: StatusCode::from_u16(self.status).expect("status"),
            response_headers: self.response_headers,
            response_body: self.response_body,
            remote_ip: Some(HeaderValue::from_static("10.1.2.3")),
            request_id: HeaderValue::from_static("req-1"),
            durable: None,
        })
    }
}

/// Runs `c` through the extractor; asserts the canary never leaks into an event.
fn run(x: &Extractor, rt: &Arc<Snapshot>, c: Call) -> Option<UserEvent> {
    let mut events = run_all(x, rt, c);
    assert!(events.len() <= 1, "one event expected: {events:#?}");
    events.pop()
}

/// Every event `c` makes (one per action of the rule that fired), canary-checked.
fn run_all(x: &Extractor, rt: &Arc<Snapshot>, c: Call) -> Vec<UserEvent> {
    let ex = c.exchange(rt).expect("route must match");
    let events = x.process(rt, &ex);
    for ev in &events {
        let text = serde_json::to_string(ev).expect("serialise");
        assert!(!text.contains(CANARY), "canary leaked: {text}");
    }
    events
}

fn user(pairs: &[(&str, &str)]) -> UserFields {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

mod identity;
mod keycloak;
mod profiles;
mod rules;
mod sources;
