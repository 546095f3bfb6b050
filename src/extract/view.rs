//! A read-only view of one captured exchange that parses each body at most once.
//!
//! Sources and `when` conditions ask the view for values; decoding (`Content-Encoding`),
//! JSON and form parsing happen lazily on first use and are then reused. Nothing here may
//! panic on any input: unreadable bodies simply have no values.

use std::borrow::Cow;
use std::cell::OnceCell;

use http::{HeaderMap, HeaderName, Method, StatusCode, Uri};
use percent_encoding::percent_decode_str;
use serde_json::Value;

use super::decode::{decode, DecodedBody};
use super::json_index::ObjectIndex;
use super::json_path::JsonPath;
use super::observed::Observed;
use super::partial_json::close_prefix;
use crate::exchange::{CapturedBody, Exchange};

/// Which half of the exchange a body or header source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// What the client sent.
    Request,
    /// What the upstream answered.
    Response,
}

/// One body with its lazily decoded and parsed forms.
struct LazyBody<'a> {
    captured: &'a CapturedBody,
    headers: &'a HeaderMap,
    limit: usize,
    decoded: OnceCell<Option<DecodedBody<'a>>>,
    index: OnceCell<Option<ObjectIndex>>,
    json: OnceCell<Option<Value>>,
    form: OnceCell<Vec<Pair>>,
}

impl<'a> LazyBody<'a> {
    fn new(captured: &'a CapturedBody, headers: &'a HeaderMap, limit: usize) -> Self {
        LazyBody {
            captured,
            headers,
            limit,
            decoded: OnceCell::new(),
            index: OnceCell::new(),
            json: OnceCell::new(),
            form: OnceCell::new(),
        }
    }

    fn decoded(&self) -> Option<&DecodedBody<'a>> {
        self.decoded
            .get_or_init(|| decode(&self.captured.bytes, self.headers, self.limit))
            .as_ref()
    }

    /// Only a prefix is known: the capture stopped early or decoding was cut.
    fn partial(&self) -> bool {
        self.captured.truncated
            || self
                .decoded
                .get()
                .and_then(Option::as_ref)
                .is_some_and(|d| d.cut)
    }

    /// The value at `path` in any shape (a scalar as text, an array's scalar elements). A
    /// whole object body is only indexed, and just the member the path starts with is parsed; anything else (arrays, cut bodies) is parsed
    /// into a tree once. So an object whose structure is sound yields the members read even
    /// when a member nobody reads is malformed inside; a body the index rejects yields
    /// nothing unless it was cut short.
    fn json_observed(&self, path: &JsonPath) -> Observed {
        let Some(decoded) = self.decoded() else {
            return Observed::Absent;
        };
        let bytes = &decoded.bytes;
        let index = self.index.get_or_init(|| ObjectIndex::build(bytes));
        match index {
            Some(index) => {
                let (first, rest) = path.split_first();
                match index.member(bytes, first) {
                    None => Observed::Absent,
                    Some(member) if rest.is_empty() => Observed::from_json_owned(member),
                    Some(member) => rest
                        .lookup(&member)
                        .map_or(Observed::Absent, Observed::from_json),
                }
            }
            None => self
                .json()
                .and_then(|v| path.lookup(v))
                .map_or(Observed::Absent, Observed::from_json),
        }
    }

    fn json(&self) -> Option<&Value> {
        self.json
            .get_or_init(|| {
                let bytes = &self.decoded()?.bytes;
                match serde_json::from_slice(bytes) {
                    Ok(v) => Some(v),
                    // A cut body still yields its complete members; a malformed whole one nothing.
                    Err(_) if self.partial() => serde_json::from_slice(&close_prefix(bytes)?).ok(),
                    Err(_) => None,
                }
            })
            .as_ref()
    }

    fn form(&self) -> &[Pair] {
        self.form.get_or_init(|| match self.decoded() {
            Some(d) => parse_urlencoded(&d.bytes),
            None => Vec::new(),
        })
    }
}

/// What sources read from one exchange.
pub struct View<'a> {
    method: &'a Method,
    uri: &'a Uri,
    status: StatusCode,
    params: &'a [(String, String)],
    request_headers: &'a HeaderMap,
    response_headers: &'a HeaderMap,
    request: LazyBody<'a>,
    response: LazyBody<'a>,
    query: OnceCell<Vec<Pair>>,
    bearer: OnceCell<Option<Value>>,
}

impl<'a> View<'a> {
    /// A view of `ex`; decoded bodies are capped at `decode_limit` bytes each.
    pub fn new(ex: &'a Exchange, decode_limit: usize) -> Self {
        View {
            method: &ex.method,
            uri: &ex.uri,
            status: ex.status,
            params: ex.route.as_ref().map_or(&[][..], |r| &r.params[..]),
            request_headers: &ex.request_headers,
            response_headers: &ex.response_headers,
            request: LazyBody::new(&ex.request_body, &ex.request_headers, decode_limit),
            response: LazyBody::new(&ex.response_body, &ex.response_headers, decode_limit),
            query: OnceCell::new(),
            bearer: OnceCell::new(),
        }
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        self.method
    }

    /// The upstream's response status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// True when some body was only partly captured or decoded (the event says `truncated`).
    pub fn truncated(&self) -> bool {
        self.request.partial() || self.response.partial()
    }

    /// The value at `path` in one side's JSON body, arrays included.
    pub fn json_observed(&self, side: Side, path: &JsonPath) -> Observed {
        self.body(side).json_observed(path)
    }

    /// A field of the urlencoded request body (first occurrence).
    pub fn form_value(&self, name: &str) -> Option<String> {
        find(self.request.form(), name)
    }

    /// A query parameter (first occurrence), decoded.
    pub fn query_value(&self, name: &str) -> Option<String> {
        let pairs = self.query.get_or_init(|| {
            self.uri
                .query()
                .map(|q| parse_urlencoded(q.as_bytes()))
                .unwrap_or_default()
        });
        find(pairs, name)
    }

    /// The path parameter at `index`, percent-decoded; no value when that is not UTF-8.
    pub fn path_param(&self, index: usize) -> Option<String> {
        let (_, raw) = self.params.get(index)?;
        let value = percent_decode_str(raw).decode_utf8().ok()?.into_owned();
        (!value.is_empty()).then_some(value)
    }

    /// A header's first value, if it is text.
    pub fn header(&self, side: Side, name: &HeaderName) -> Option<&str> {
        let headers = match side {
            Side::Request => self.request_headers,
            Side::Response => self.response_headers,
        };
        headers
            .get(name)?
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// A cookie of the request's `Cookie` headers (credentials: read for matched calls only).
    pub fn request_cookie(&self, name: &str) -> Option<String> {
        super::cookie::request_cookie(self.request_headers, name)
    }

    /// A cookie the response sets, with its lifetime; `None` when it is deleted or absent.
    pub fn set_cookie(&self, name: &str) -> Option<super::cookie::SetCookie> {
        super::cookie::response_cookie(self.response_headers, name, std::time::SystemTime::now())
    }

    /// The request's `Authorization: Bearer` (or `token`) credential.
    pub fn bearer_token(&self) -> Option<&str> {
        super::jwt::api_token(self.request_headers)
    }

    /// Claims of the request's bearer token, decoded once.
    pub fn bearer_claims(&self) -> Option<&Value> {
        self.bearer
            .get_or_init(|| super::jwt::claims(super::jwt::bearer(self.request_headers)?))
            .as_ref()
    }

    fn body(&self, side: Side) -> &LazyBody<'a> {
        match side {
            Side::Request => &self.request,
            Side::Response => &self.response,
        }
    }
}

/// One `name=value` of a urlencoded text, decoded; `None` where the decoded bytes are not
/// UTF-8 (so such a value is "no value", never a guess with replacement characters).
pub type Pair = (Option<String>, Option<String>);

fn find(pairs: &[Pair], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k.as_deref() == Some(name))
        .and_then(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

/// `a=1&b=x+y%21` -> `[(a, 1), (b, "x y!")]`; malformed escapes are kept as written, and a
/// name or value whose bytes are not UTF-8 once decoded is `None`.
pub fn parse_urlencoded(text: &[u8]) -> Vec<Pair> {
    let decode = |s: &[u8]| -> Option<String> {
        let spaced: Cow<'_, [u8]> = if s.contains(&b'+') {
            Cow::Owned(
                s.iter()
                    .map(|&b| if b == b'+' { b' ' } else { b })
                    .collect(),
            )
        } else {
            Cow::Borrowed(s)
        };
        let bytes: Cow<'_, [u8]> = percent_encoding::percent_decode(&spaced).into();
        String::from_utf8(bytes.into_owned()).ok()
    };
    text.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (
                    pair.get(..i).unwrap_or_default(),
                    pair.get(i + 1..).unwrap_or_default(),
                ),
                None => (pair, &[][..]),
            };
            (decode(k), decode(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(k: &str, v: &str) -> Pair {
        (Some(k.into()), Some(v.into()))
    }

    #[test]
    fn urlencoded() {
        assert_eq!(
            parse_urlencoded(b"grant_type=password&username=J%C3%B6+Doe&flag&=x&bad=%zz"),
            vec![
                pair("grant_type", "password"),
                pair("username", "Jö Doe"),
                pair("flag", ""),
                pair("", "x"),
                pair("bad", "%zz"),
            ]
        );
        assert!(parse_urlencoded(b"").is_empty());
    }

    #[test]
    fn urlencoded_non_utf8_is_no_value_not_a_replacement_character() {
        let pairs = parse_urlencoded(b"username=%FF%FE&raw=a\xffb&ok=1&%C3=x");
        assert_eq!(
            pairs,
            vec![
                (Some("username".into()), None),
                (Some("raw".into()), None),
                pair("ok", "1"),
                (None, Some("x".into())),
            ]
        );
        assert_eq!(find(&pairs, "username"), None);
        assert_eq!(find(&pairs, "ok").as_deref(), Some("1"));
        assert!(pairs.iter().all(|(k, v)| {
            !k.as_deref().unwrap_or("").contains('\u{fffd}')
                && !v.as_deref().unwrap_or("").contains('\u{fffd}')
        }));
    }
}
