//! What one exchange adds to what is learned: its endpoint (method + template), status, the
//! shapes of both bodies, the credentials it presents and issues, and whether a credential
//! it presents was accepted before and is refused now (a logout happened in between).
//!
//! Values are read only to classify them and are never kept: credentials are remembered as
//! keyed 64-bit hashes (a per-process random key) for at most [`MAX_CREDENTIALS`] of them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroUsize;
use std::time::SystemTime;

use http::header::{HeaderMap, CONTENT_TYPE, LOCATION, SET_COOKIE};
use serde_json::Value;

use super::paths::{collapse_key, Normalized, Paths, Seg};
use super::segment::{self, Kind};
use super::shape::{self, Keys};
use crate::exchange::Exchange;
use crate::extract::{cookie, decode, jwt, view};

/// Most endpoints (method + template) learned; past it new ones are counted, not kept.
pub const MAX_ENDPOINTS: usize = 512;

/// Most statuses kept per endpoint.
const MAX_STATUSES: usize = 16;

/// Most credential hashes remembered (accepted and issued), least recently used dropped.
pub const MAX_CREDENTIALS: usize = 8192;

/// Most names kept per small map (cookies, headers, JWT claims) of one endpoint and status.
const MAX_NAMES: usize = 24;

/// An endpoint: a method and a path template.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointKey {
    /// The method, as sent.
    pub method: String,
    /// The template's segments.
    pub segs: Vec<Seg>,
}

/// A credential as the request carried it: where to read it from (`request.bearer`,
/// `request.cookie.sid`, `request.header.x-subject-token`).
pub type CredentialSource = String;

/// What was seen of one endpoint answered with one status.
#[derive(Debug, Default, Clone)]
pub struct StatusShape {
    /// Exchanges.
    pub count: u32,
    /// JSON request body key paths.
    pub request_json: Keys,
    /// Form request body names.
    pub request_form: Keys,
    /// JSON response body key paths.
    pub response_json: Keys,
    /// Claims of JWTs in the response body, by key path (`access_token` -> `sub`, `email`).
    pub response_claims: BTreeMap<String, BTreeSet<String>>,
    /// Responses with a `Location` header; of them, ending in an identifier.
    pub location: u32,
    /// Responses whose `Location` ends in an identifier.
    pub location_id: u32,
    /// Cookies set with a value (credential-like names only), by name.
    pub cookies_set: BTreeMap<String, u32>,
    /// Cookies the response deletes (credential-like names only), by name.
    pub cookies_deleted: BTreeMap<String, u32>,
    /// Credential-like response headers (`x-subject-token`), by lower-case name.
    pub token_headers: BTreeMap<String, u32>,
    /// Credentials the request presented, by source.
    pub presented: BTreeMap<CredentialSource, u32>,
    /// Presented credentials that an earlier response issued, by source.
    pub presented_issued: BTreeMap<CredentialSource, u32>,
    /// Outcome words of the JSON answer (`status: ok|error`, `success: true|false`), by key:
    /// only words of [`OUTCOME_WORDS`] are kept, for IAMs that answer 200 to everything.
    pub outcomes: BTreeMap<String, BTreeMap<&'static str, u32>>,
    /// Answer sources that repeat the user the request named (`response.body.data |
    /// last_segment` echoing `request.body.username`), by (source, field): found by comparing
    /// the two bodies of one exchange in memory; only the key names are kept.
    pub echoes: BTreeMap<(String, &'static str), u32>,
}

/// Top-level answer keys that may carry the outcome of a call.
const OUTCOME_KEYS: &[&str] = &["status", "success", "ok", "result", "state", "code"];

/// The only values ever kept: words that say whether a call worked.
pub const OUTCOME_WORDS: &[&str] = &[
    "ok",
    "success",
    "succeeded",
    "true",
    "error",
    "fail",
    "failed",
    "failure",
    "false",
];

/// The outcome words of a JSON answer: (key, word).
fn outcome_words(v: &Value) -> Vec<(String, &'static str)> {
    let Value::Object(map) = v else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for key in OUTCOME_KEYS {
        let text = match map.get(*key) {
            Some(Value::String(s)) => s.to_ascii_lowercase(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => continue,
        };
        if let Some(word) = OUTCOME_WORDS.iter().find(|w| **w == text) {
            out.push(((*key).to_owned(), *word));
        }
    }
    out
}

/// Everything learned about one endpoint.
#[derive(Debug, Default, Clone)]
pub struct Endpoint {
    /// Exchanges.
    pub count: u32,
    /// The kinds each parameter's values had, in parameter order.
    pub param_kinds: Vec<BTreeMap<Kind, u32>>,
    /// By status code.
    pub statuses: BTreeMap<u16, StatusShape>,
    /// Credentials accepted here last and refused by the IAM on their next use, by source.
    pub ended: BTreeMap<CredentialSource, u32>,
}

impl Endpoint {
    fn merge(&mut self, other: Endpoint) {
        self.count += other.count;
        for (i, kinds) in other.param_kinds.into_iter().enumerate() {
            if self.param_kinds.len() <= i {
                self.param_kinds.push(BTreeMap::new());
            }
            for (k, n) in kinds {
                *self.param_kinds[i].entry(k).or_default() += n;
            }
        }
        for (status, s) in other.statuses {
            let into = self.statuses.entry(status).or_default();
            into.count += s.count;
            merge_keys(&mut into.request_json, s.request_json);
            merge_keys(&mut into.request_form, s.request_form);
            merge_keys(&mut into.response_json, s.response_json);
            for (k, v) in s.response_claims {
                into.response_claims.entry(k).or_default().extend(v);
            }
            into.location += s.location;
            into.location_id += s.location_id;
            merge_counts(&mut into.cookies_set, s.cookies_set);
            merge_counts(&mut into.cookies_deleted, s.cookies_deleted);
            merge_counts(&mut into.token_headers, s.token_headers);
            merge_counts(&mut into.presented, s.presented);
            merge_counts(&mut into.presented_issued, s.presented_issued);
            for (k, n) in s.echoes {
                *into.echoes.entry(k).or_default() += n;
            }
            for (k, words) in s.outcomes {
                let e = into.outcomes.entry(k).or_default();
                for (w, n) in words {
                    *e.entry(w).or_default() += n;
                }
            }
        }
        merge_counts(&mut self.ended, other.ended);
    }
}

fn merge_keys(into: &mut Keys, from: Keys) {
    for (k, v) in from {
        let e = into.entry(k).or_default();
        e.types |= v.types;
        e.count += v.count;
    }
}

fn merge_counts(into: &mut BTreeMap<String, u32>, from: BTreeMap<String, u32>) {
    for (k, v) in from {
        *into.entry(k).or_default() += v;
    }
}

fn bump(map: &mut BTreeMap<String, u32>, name: &str) {
    if let Some(n) = map.get_mut(name) {
        *n += 1;
    } else if map.len() < MAX_NAMES {
        map.insert(name.to_owned(), 1);
    }
}

/// Everything learned so far.
#[derive(Debug)]
pub struct Learned {
    paths: Paths,
    /// The endpoints, by key.
    pub endpoints: HashMap<EndpointKey, Endpoint>,
    /// Exchanges seen.
    pub exchanges: u64,
    /// Exchanges whose endpoint was not kept ([`MAX_ENDPOINTS`] reached).
    pub overflow: u64,
    hasher: RandomState,
    /// Credential hash -> where it was last accepted (endpoint and source).
    accepted: lru::LruCache<u64, (EndpointKey, CredentialSource)>,
    /// Hashes of credentials responses issued.
    issued: lru::LruCache<u64, ()>,
}

impl Default for Learned {
    fn default() -> Self {
        let cap = NonZeroUsize::new(MAX_CREDENTIALS).unwrap_or(NonZeroUsize::MIN);
        Learned {
            paths: Paths::default(),
            endpoints: HashMap::new(),
            exchanges: 0,
            overflow: 0,
            hasher: RandomState::new(),
            accepted: lru::LruCache::new(cap),
            issued: lru::LruCache::new(cap),
        }
    }
}

impl Learned {
    /// Adds one exchange; `decode_limit` caps decompressed bodies.
    pub fn observe(&mut self, ex: &Exchange, decode_limit: usize) {
        self.exchanges += 1;
        let Normalized {
            segs,
            kinds,
            collapsed,
        } = self.paths.normalize(ex.uri.path());
        if let Some(at) = collapsed {
            self.rekey(&segs, at);
        }
        let key = EndpointKey {
            method: ex.method.as_str().to_owned(),
            segs,
        };
        let status = ex.status.as_u16();
        let mut presented = presented_credentials(&ex.request_headers);
        presented.extend(body_credentials(ex, decode_limit));
        // A path parameter that is a credential or session id an answer issued (`DELETE
        // /sessions/{id}`): `path#<index>`, named when the proposal is written.
        let raw = ex.uri.path().split('/').filter(|s| !s.is_empty());
        let mut param = 0;
        for (seg, value) in key_segs_zip(&key.segs, raw) {
            if seg == &Seg::Param {
                presented.push((format!("path#{param}"), value.to_owned(), false));
                param += 1;
            }
        }
        self.track_credentials(&key, &mut presented, status);
        self.issued_credentials(ex, decode_limit);
        let Some(endpoint) = self.endpoint(&key) else {
            self.overflow += 1;
            return;
        };
        endpoint.count += 1;
        for (i, kind) in kinds.iter().enumerate() {
            if endpoint.param_kinds.len() <= i {
                endpoint.param_kinds.push(BTreeMap::new());
            }
            *endpoint.param_kinds[i].entry(*kind).or_default() += 1;
        }
        if !endpoint.statuses.contains_key(&status) && endpoint.statuses.len() >= MAX_STATUSES {
            return;
        }
        let shape = endpoint.statuses.entry(status).or_default();
        shape.count += 1;
        read_request_body(shape, ex, decode_limit);
        read_response(shape, ex, decode_limit);
        for echo in echoes(ex, decode_limit) {
            if shape.echoes.len() < MAX_NAMES || shape.echoes.contains_key(&echo) {
                *shape.echoes.entry(echo).or_default() += 1;
            }
        }
        for (source, _, was_issued) in &presented {
            if source.starts_with("path#") && !was_issued {
                continue;
            }
            bump(&mut shape.presented, source);
            if *was_issued {
                bump(&mut shape.presented_issued, source);
            }
        }
    }

    fn endpoint(&mut self, key: &EndpointKey) -> Option<&mut Endpoint> {
        if !self.endpoints.contains_key(key) && self.endpoints.len() >= MAX_ENDPOINTS {
            return None;
        }
        Some(self.endpoints.entry(key.clone()).or_default())
    }

    /// A position collapsed at segment `at` of `segs`: endpoints with a word there move under
    /// the parameter (their stats merged; the word forgotten).
    fn rekey(&mut self, segs: &[Seg], at: usize) {
        let prefix = &segs[..at];
        let moved: Vec<EndpointKey> = self
            .endpoints
            .keys()
            .filter(|k| {
                k.segs.len() > at
                    && k.segs[..at] == *prefix
                    && matches!(k.segs[at], Seg::Literal(_))
            })
            .cloned()
            .collect();
        for key in moved {
            if let Some(mut e) = self.endpoints.remove(&key) {
                let params_before = key.segs[..at].iter().filter(|s| **s == Seg::Param).count();
                // the new parameter's kind: a word, once per exchange seen
                let mut kinds = std::mem::take(&mut e.param_kinds);
                kinds.insert(
                    params_before.min(kinds.len()),
                    BTreeMap::from([(Kind::Word, e.count)]),
                );
                e.param_kinds = kinds;
                let target = EndpointKey {
                    method: key.method.clone(),
                    segs: collapse_key(&key.segs, at),
                };
                self.endpoints.entry(target).or_default().merge(e);
            }
        }
    }

    /// Remembers where each presented credential was accepted; a refused one that was
    /// accepted before credits the endpoint that last accepted it with ending it.
    fn track_credentials(
        &mut self,
        key: &EndpointKey,
        presented: &mut [(CredentialSource, String, bool)],
        status: u16,
    ) {
        for (source, value, was_issued) in presented.iter_mut() {
            let h = self.hasher.hash_one(value.as_bytes());
            *was_issued = self.issued.get(&h).is_some();
            // forget the value itself at once
            value.clear();
            if (200..400).contains(&status) {
                self.accepted.put(h, (key.clone(), source.clone()));
            } else if status == 401 || status == 403 || status == 419 || status == 440 {
                if let Some((ended_at, ended_source)) = self.accepted.pop(&h) {
                    if let Some(e) = self.endpoints.get_mut(&ended_at) {
                        bump(&mut e.ended, &ended_source);
                    }
                }
            }
        }
    }

    /// Remembers the hashes of credentials the response issues (cookies, token headers,
    /// string tokens in the JSON body).
    fn issued_credentials(&mut self, ex: &Exchange, decode_limit: usize) {
        let mut values: Vec<String> = Vec::new();
        let now = SystemTime::now();
        for name in set_cookie_names(&ex.response_headers) {
            if shape::credential_name(&name) {
                if let Some(c) = cookie::response_cookie(&ex.response_headers, &name, now) {
                    values.push(c.value);
                }
            }
        }
        for (name, value) in &ex.response_headers {
            if name != SET_COOKIE && shape::credential_name(name.as_str()) {
                if let Ok(v) = value.to_str() {
                    values.push(v.to_owned());
                }
            }
        }
        if let Some(Value::Object(map)) =
            json_body(&ex.response_body.bytes, &ex.response_headers, decode_limit)
        {
            collect_tokens(&Value::Object(map), 0, &mut values);
        }
        for v in values {
            let h = self.hasher.hash_one(v.as_bytes());
            self.issued.put(h, ());
        }
    }
}

fn collect_tokens(v: &Value, depth: usize, out: &mut Vec<String>) {
    if depth > 3 {
        return;
    }
    if let Value::Object(map) = v {
        for (k, child) in map {
            match child {
                Value::String(s) if shape::meaning(k) == Some(shape::Meaning::Token) => {
                    out.push(s.clone())
                }
                Value::Object(_) => collect_tokens(child, depth + 1, out),
                _ => {}
            }
        }
    }
}

/// The credentials a request presents: (source, value, issued-before flag filled later).
fn presented_credentials(headers: &HeaderMap) -> Vec<(CredentialSource, String, bool)> {
    let mut out = Vec::new();
    if let Some(t) = jwt::api_token(headers) {
        out.push(("request.bearer".to_owned(), t.to_owned(), false));
    }
    for line in headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        for pair in line.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                let k = k.trim();
                if shape::credential_name(k) && !v.trim().is_empty() && cookie_name_ok(k) {
                    out.push((format!("request.cookie.{k}"), v.trim().to_owned(), false));
                }
            }
        }
    }
    for (name, value) in headers {
        let n = name.as_str();
        if n != "cookie" && n.starts_with("x-") && shape::credential_name(n) {
            if let Ok(v) = value.to_str() {
                out.push((format!("request.header.{n}"), v.to_owned(), false));
            }
        }
    }
    out.truncate(MAX_NAMES);
    out
}

/// String leaves of a JSON value with their key paths (depth-limited).
fn leaves(v: &Value, prefix: &mut String, depth: usize, out: &mut Vec<(String, String)>) {
    if depth > 4 || out.len() > 64 {
        return;
    }
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let len = prefix.len();
                if !prefix.is_empty() {
                    prefix.push('.');
                }
                prefix.push_str(k);
                leaves(child, prefix, depth + 1, out);
                prefix.truncate(len);
            }
        }
        Value::String(s) if !s.is_empty() && s.len() <= 256 => {
            out.push((prefix.clone(), s.clone()))
        }
        Value::Number(n) => out.push((prefix.clone(), n.to_string())),
        _ => {}
    }
}

/// Answer sources that repeat the user named in the request: a response leaf equal to a
/// request's name, email or id (or whose last `/` segment is). Values are compared here and
/// dropped; what is returned are key names.
fn echoes(ex: &Exchange, limit: usize) -> Vec<(String, &'static str)> {
    let mut named: Vec<(&'static str, String)> = Vec::new();
    let field = |k: &str| match shape::meaning(k) {
        Some(shape::Meaning::Name) => Some("Name"),
        Some(shape::Meaning::Email) => Some("Email"),
        Some(shape::Meaning::Id) => Some("ID"),
        _ => None,
    };
    if is_form(&ex.request_headers) {
        if let Some(decoded) = decode::decode(&ex.request_body.bytes, &ex.request_headers, limit) {
            for (k, v) in view::parse_urlencoded(&decoded.bytes) {
                if let (Some(k), Some(v)) = (k, v) {
                    if let Some(f) = field(&k).filter(|_| v.len() >= 2) {
                        named.push((f, v));
                    }
                }
            }
        }
    } else if let Some(v) = json_body(&ex.request_body.bytes, &ex.request_headers, limit) {
        let mut out = Vec::new();
        leaves(&v, &mut String::new(), 0, &mut out);
        for (k, v) in out {
            if let Some(f) = field(&k).filter(|_| v.len() >= 2) {
                named.push((f, v));
            }
        }
    }
    if named.is_empty() {
        return Vec::new();
    }
    let Some(resp) = json_body(&ex.response_body.bytes, &ex.response_headers, limit) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    leaves(&resp, &mut String::new(), 0, &mut out);
    let mut found = Vec::new();
    for (path, value) in out {
        if shape::meaning(&path) == Some(shape::Meaning::Token)
            || path.split('.').any(|p| p.parse::<usize>().is_ok())
        {
            continue;
        }
        for (f, v) in &named {
            if value == *v {
                found.push((format!("response.body.{path}"), *f));
            } else if value.contains('/') && value.rsplit('/').next() == Some(v.as_str()) {
                found.push((format!("response.body.{path} | last_segment"), *f));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The template's segments beside the path's raw ones.
fn key_segs_zip<'a>(
    segs: &'a [Seg],
    raw: impl Iterator<Item = &'a str>,
) -> impl Iterator<Item = (&'a Seg, &'a str)> {
    segs.iter().zip(raw)
}

/// Credentials the request body carries (`refresh_token=…` in a form, `{"token": …}`): a
/// logout or refresh that presents what a login issued.
fn body_credentials(ex: &Exchange, limit: usize) -> Vec<(CredentialSource, String, bool)> {
    let mut out = Vec::new();
    let raw = &ex.request_body.bytes;
    if raw.is_empty() {
        return out;
    }
    if is_form(&ex.request_headers) {
        if let Some(decoded) = decode::decode(raw, &ex.request_headers, limit) {
            for (k, v) in view::parse_urlencoded(&decoded.bytes) {
                if let (Some(k), Some(v)) = (k, v) {
                    if shape::meaning(&k) == Some(shape::Meaning::Token)
                        && !v.is_empty()
                        && cookie_name_ok(&k)
                    {
                        out.push((format!("request.form.{k}"), v, false));
                    }
                }
            }
        }
    } else if let Some(Value::Object(map)) = json_body(raw, &ex.request_headers, limit) {
        for (k, v) in map {
            if let Value::String(v) = v {
                if shape::meaning(&k) == Some(shape::Meaning::Token)
                    && !v.is_empty()
                    && cookie_name_ok(&k)
                {
                    out.push((format!("request.body.{k}"), v, false));
                }
            }
        }
    }
    out.truncate(MAX_NAMES);
    out
}

/// A cookie name the rule syntax can name (`request.cookie.<name>` ends at `|` or space).
fn cookie_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The names of the cookies a response sets (deleted ones included).
fn set_cookie_names(headers: &HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|line| {
            line.split(';')
                .next()?
                .split_once('=')
                .map(|(k, _)| k.trim().to_owned())
        })
        .filter(|k| cookie_name_ok(k))
        .collect();
    names.sort();
    names.dedup();
    names.truncate(MAX_NAMES);
    names
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| {
            let ct = ct.to_ascii_lowercase();
            ct.contains("json") || ct.is_empty()
        })
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// The body as JSON, when it is JSON (decoded first).
fn json_body(raw: &[u8], headers: &HeaderMap, limit: usize) -> Option<Value> {
    if raw.is_empty() || !is_json(headers) {
        return None;
    }
    let decoded = decode::decode(raw, headers, limit)?;
    serde_json::from_slice(&decoded.bytes).ok()
}

fn read_request_body(shape: &mut StatusShape, ex: &Exchange, limit: usize) {
    let raw = &ex.request_body.bytes;
    if is_form(&ex.request_headers) {
        if let Some(decoded) = decode::decode(raw, &ex.request_headers, limit) {
            let mut names: Vec<(String, u8)> = view::parse_urlencoded(&decoded.bytes)
                .into_iter()
                .filter_map(|(k, v)| {
                    let t = match v {
                        Some(v) if shape::looks_like_email(&v) => {
                            shape::types::STRING | shape::types::EMAIL
                        }
                        _ => shape::types::STRING,
                    };
                    Some((k?, t))
                })
                .filter(|(k, _)| {
                    k.len() <= 48
                        && k.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
                })
                .collect();
            names.sort();
            names.dedup_by(|a, b| a.0 == b.0);
            for (n, t) in names {
                shape::add_key(&mut shape.request_form, n, t);
            }
        }
    } else if let Some(v) = json_body(raw, &ex.request_headers, limit) {
        shape::add_json(&mut shape.request_json, &v);
    }
}

fn read_response(shape: &mut StatusShape, ex: &Exchange, limit: usize) {
    let headers = &ex.response_headers;
    if let Some(v) = json_body(&ex.response_body.bytes, headers, limit) {
        shape::add_json(&mut shape.response_json, &v);
        for (key, word) in outcome_words(&v) {
            *shape
                .outcomes
                .entry(key)
                .or_default()
                .entry(word)
                .or_default() += 1;
        }
        let mut jwts = Vec::new();
        find_jwts(&v, &mut String::new(), 0, &mut jwts);
        for (path, claims) in jwts {
            if shape.response_claims.len() < MAX_NAMES || shape.response_claims.contains_key(&path)
            {
                let set = shape.response_claims.entry(path).or_default();
                for c in claims.into_iter().take(MAX_NAMES) {
                    set.insert(c);
                }
            }
        }
    }
    if let Some(loc) = headers.get(LOCATION).and_then(|v| v.to_str().ok()) {
        shape.location += 1;
        let last = loc
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .rsplit('/')
            .next()
            .unwrap_or("");
        if segment::classify(last).is_identifier() {
            shape.location_id += 1;
        }
    }
    let now = SystemTime::now();
    for name in set_cookie_names(headers) {
        if !shape::credential_name(&name) {
            continue;
        }
        if cookie::response_cookie(headers, &name, now).is_some() {
            bump(&mut shape.cookies_set, &name);
        } else {
            bump(&mut shape.cookies_deleted, &name);
        }
    }
    for name in headers.keys() {
        let n = name.as_str();
        if n != "set-cookie" && n.starts_with("x-") && shape::credential_name(n) {
            bump(&mut shape.token_headers, n);
        }
    }
}

/// JWT strings in a JSON body: their key path and claim names (never the values).
fn find_jwts(v: &Value, prefix: &mut String, depth: usize, out: &mut Vec<(String, Vec<String>)>) {
    if depth > 3 {
        return;
    }
    if let Value::Object(map) = v {
        for (k, child) in map {
            let len = prefix.len();
            if !prefix.is_empty() {
                prefix.push('.');
            }
            prefix.push_str(k);
            match child {
                Value::String(s) if shape::looks_like_jwt(s) => {
                    if let Some(Value::Object(claims)) = jwt::claims(s) {
                        out.push((prefix.clone(), claims.keys().cloned().collect()));
                    }
                }
                Value::Object(_) => find_jwts(child, prefix, depth + 1, out),
                _ => {}
            }
            prefix.truncate(len);
        }
    }
}
