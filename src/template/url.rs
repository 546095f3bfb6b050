//! Webhook URLs with variables, e.g. `https://hooks.example/{{$$.Action$$}}?user={{$$.ID$$}}`.
//!
//! Values are percent-encoded (everything but RFC 3986 unreserved characters), so a value can
//! never add a path segment, a query parameter or change the host. The URL text around the
//! variables is kept exactly as written; checking that it is a valid URL is the config's job.
//!
//! In the *path*, encoding is not enough: a value `..` or `.` (or a mix with the literal text
//! around it that makes one) is a dot segment, and URL parsers remove those *also when
//! percent-encoded* (`%2E%2E` is `..` to the WHATWG URL parser that reqwest uses, and to most
//! servers), so `/users/{{$$.ID$$}}/roles` with ID `..` would go to `/roles`. And an empty value
//! collapses a segment (`/hook/{{$$.ID$$}}` to `/hook/`). Rendering therefore refuses both: a
//! path variable that is empty, or whose segment is a dot segment, makes the rendering fail
//! with a [`UrlRenderError`] (the delivery fails visibly: it is dead-lettered with that reason),
//! never a request to another URL. Empty values in the query or fragment render empty.

use std::ops::Range;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::error::TemplateError;
use super::parse::{parse, Parsed};
use super::vars::VarSource;

/// Everything except `A-Z a-z 0-9 - . _ ~` is encoded.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Why a URL cannot be rendered for one event: sending it would reach another URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRenderError {
    /// A variable in the path has no value: the segment would collapse (`/hook/`).
    #[error("{{{{$$.{0}$$}}}} in the URL path has no value for this event; sending would go to a shortened URL, so it is not sent")]
    EmptyPathValue(String),
    /// A variable makes its path segment `.` or `..`, which URL parsers remove.
    #[error("{{{{$$.{0}$$}}}} makes a URL path segment `.` or `..` for this event; sending would go to another path, so it is not sent")]
    DotSegment(String),
    /// The values change how many path segments the URL has, as the URL parser reqwest uses
    /// reads it (a dot segment the text check cannot see, e.g. beside a `\` or a tab in the
    /// template's own text).
    #[error("this event's values change the URL's path as the HTTP client reads it; sending would go to another path, so it is not sent")]
    PathChanged,
}

/// Where in the URL a variable stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Scheme or authority (host, port): encoded, no segment rules.
    Authority,
    /// A path segment: must not be empty or a dot segment.
    Path,
    /// Query or fragment: may be empty.
    Query,
}

/// A URL compiled once per config load and rendered once per delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTemplate {
    parsed: Parsed,
    /// The position of each slot, in slot order.
    positions: Vec<Position>,
    /// Path segments of a sample rendering (every value `x`) as the URL parser reads it
    /// (`Some(None)`: it parses with no path segments); `None` when the sample does not
    /// parse (then attempts report the invalid URL).
    segments: Option<Option<usize>>,
    /// A URL without variables, parsed once: every delivery reuses it (a parse costs more
    /// than the rest of rendering a request), with its loggable form.
    fixed: Option<(url::Url, String)>,
}

/// One delivery's URL as the HTTP client takes it: parsed, or the text that did not parse
/// (the attempt reports it as invalid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderedUrl {
    /// Parsed; sent as it is.
    Valid(url::Url),
    /// Not a URL the client can send to.
    Invalid(String),
}

impl RenderedUrl {
    /// The URL's text, key and all: never log it (see [`RenderedUrl::loggable`]).
    pub fn as_str(&self) -> &str {
        match self {
            RenderedUrl::Valid(u) => u.as_str(),
            RenderedUrl::Invalid(text) => text,
        }
    }

    /// The URL as logs and records show it: no query, fragment or user info, and a robot key
    /// in the path masked.
    pub fn loggable(&self) -> String {
        match self {
            RenderedUrl::Valid(u) => loggable(u),
            RenderedUrl::Invalid(_) => String::from("<invalid URL>"),
        }
    }
}

/// `u` without query, fragment and user info, with a key in its path masked (Feishu and
/// Slack robot URLs carry it there).
fn loggable(u: &url::Url) -> String {
    let mut u = u.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    crate::redact::redact_url(u.as_str())
}

impl UrlTemplate {
    /// Compiles `text`; `known` accepts the custom user fields declared in the config's routes.
    pub fn compile(text: &str, known: &dyn Fn(&str) -> bool) -> Result<Self, TemplateError> {
        let parsed = parse(text, known)?;
        let positions = positions(&parsed);
        let mut template = UrlTemplate {
            parsed,
            positions,
            segments: None,
            fixed: None,
        };
        let sample = template
            .assemble(&|_| Some("x"))
            .ok()
            .and_then(|text| url::Url::parse(&text).ok());
        template.segments = sample.as_ref().map(segment_count);
        if template.is_static() {
            template.fixed = sample.map(|u| {
                let shown = loggable(&u);
                (u, shown)
            });
        }
        Ok(template)
    }

    /// The loggable form of a URL without variables ([`RenderedUrl::loggable`]), made once.
    pub fn fixed_loggable(&self) -> Option<&str> {
        self.fixed.as_ref().map(|(_, shown)| shown.as_str())
    }

    /// Whether the URL has no variables (the dispatcher can then reuse one rendering).
    pub fn is_static(&self) -> bool {
        self.parsed.slots.is_empty()
    }

    /// The URL for one delivery, values percent-encoded; missing values render empty in the
    /// query, and are refused in the path (see the module doc).
    pub fn render(&self, vars: &dyn VarSource) -> Result<String, UrlRenderError> {
        self.rendered(vars).map(|(text, _)| text)
    }

    /// [`UrlTemplate::render`], parsed as the HTTP client takes it (once: a URL without
    /// variables was parsed at compile time).
    pub fn render_url(&self, vars: &dyn VarSource) -> Result<RenderedUrl, UrlRenderError> {
        if let Some((u, _)) = &self.fixed {
            return Ok(RenderedUrl::Valid(u.clone()));
        }
        Ok(match self.rendered(vars)? {
            (_, Some(u)) => RenderedUrl::Valid(u),
            (text, None) => RenderedUrl::Invalid(text),
        })
    }

    /// The rendered text and its parse (`None`: it does not parse).
    fn rendered(&self, vars: &dyn VarSource) -> Result<(String, Option<url::Url>), UrlRenderError> {
        let values: Vec<_> = self
            .parsed
            .slots
            .iter()
            .map(|s| vars.var(&s.name))
            .collect();
        let out = self.assemble(&|i| values.get(i).and_then(|v| v.as_deref()))?;
        // The parser's own reading is the last word, wherever the text check placed the
        // values (it only knows `scheme://` URLs): they must leave the path with as many
        // segments as the sample has. A rendering that does not parse is left to the attempt,
        // which reports the invalid URL.
        let parsed = url::Url::parse(&out).ok();
        if let (Some(want), Some(got)) = (self.segments, parsed.as_ref().map(segment_count)) {
            if want != got {
                return Err(UrlRenderError::PathChanged);
            }
        }
        Ok((out, parsed))
    }

    /// The URL with `value(i)` for slot `i` (`None`: no value); fails on an empty path value
    /// or a dot segment.
    fn assemble<'v>(
        &self,
        value: &dyn Fn(usize) -> Option<&'v str>,
    ) -> Result<String, UrlRenderError> {
        let p = &self.parsed;
        let n = p.slots.len();
        let value = |i: usize| value(i).unwrap_or("");
        let len = p.literal_len() + (0..n).map(|i| encoded_len(value(i))).sum::<usize>();
        let mut out = String::with_capacity(len);
        let mut in_path: Vec<(usize, Range<usize>)> = Vec::new();
        for i in 0..p.literals.len() {
            out.push_str(p.literal(i));
            if i < n {
                let start = out.len();
                out.extend(utf8_percent_encode(value(i), ENCODE));
                if self.positions.get(i) == Some(&Position::Path) {
                    in_path.push((i, start..out.len()));
                }
            }
        }
        for (i, range) in in_path {
            let name = || {
                p.slots
                    .get(i)
                    .map_or_else(String::new, |s| s.name.to_string())
            };
            if range.is_empty() {
                return Err(UrlRenderError::EmptyPathValue(name()));
            }
            if is_dot_segment(segment_around(&out, range)) {
                return Err(UrlRenderError::DotSegment(name()));
            }
        }
        Ok(out)
    }
}

/// Where each slot stands, from the literal text before it (values cannot move the position:
/// `/`, `?` and `#` in them are encoded).
fn positions(p: &Parsed) -> Vec<Position> {
    let mut out = Vec::with_capacity(p.slots.len());
    let mut pos = Position::Authority;
    // The scheme so far, until its `://` is seen (then the authority starts).
    let mut scheme = Some(String::new());
    for i in 0..p.slots.len() {
        for c in p.literal(i).chars() {
            if let Some(s) = scheme.as_mut() {
                s.push(c);
                if s.ends_with("://") {
                    scheme = None;
                }
                continue;
            }
            match (pos, c) {
                (Position::Authority, '/') => pos = Position::Path,
                (Position::Authority | Position::Path, '?' | '#') => pos = Position::Query,
                _ => {}
            }
        }
        out.push(pos);
    }
    out
}

/// How many path segments `url` has as the WHATWG URL parser (reqwest's) reads it (`None`
/// when it has none, e.g. only a host).
fn segment_count(url: &url::Url) -> Option<usize> {
    url.path_segments().map(Iterator::count)
}

/// The path segment of `url` that contains the byte range `value`: from the `/` before it to
/// the next `/`, `?` or `#` after it.
fn segment_around(url: &str, value: Range<usize>) -> &str {
    let start = url
        .get(..value.start)
        .and_then(|before| before.rfind('/'))
        .map_or(0, |i| i + 1);
    let end = url
        .get(value.end..)
        .and_then(|after| after.find(['/', '?', '#']))
        .map_or(url.len(), |i| value.end + i);
    url.get(start..end).unwrap_or("")
}

/// `.` or `..`, in any mix of literal and percent-encoded dots (as the WHATWG URL parser
/// reads them).
fn is_dot_segment(segment: &str) -> bool {
    let s = segment.to_ascii_lowercase();
    matches!(s.as_str(), "." | "%2e" | ".." | ".%2e" | "%2e." | "%2e%2e")
}

/// Bytes `s` takes once percent-encoded.
fn encoded_len(s: &str) -> usize {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                1
            } else {
                3
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn values_are_percent_encoded_and_text_is_kept() {
        let t = UrlTemplate::compile(
            "https://h.example/u/{{$$.Name$$}}?id={{$$.ID$$}}&k=a%20b",
            &|_| false,
        )
        .expect("compiles");
        assert!(!t.is_static());
        let out = t
            .render(&vars(&[("Name", "a/b?c=d&e#f é~._-"), ("ID", "42")]))
            .expect("renders");
        assert_eq!(
            out,
            "https://h.example/u/a%2Fb%3Fc%3Dd%26e%23f%20%C3%A9~._-?id=42&k=a%20b"
        );
        let value = "a/b?c=d&e#f é~._-";
        assert_eq!(
            encoded_len(value),
            utf8_percent_encode(value, ENCODE).to_string().len()
        );
    }

    #[test]
    fn loggable_urls_lose_keys() {
        let shown = |text: &str| match url::Url::parse(text) {
            Ok(u) => RenderedUrl::Valid(u).loggable(),
            Err(_) => RenderedUrl::Invalid(text.to_owned()).loggable(),
        };
        assert_eq!(
            shown("https://u:p@qyapi.example/cgi-bin/send?key=SECRET#frag"),
            "https://qyapi.example/cgi-bin/send"
        );
        assert_eq!(
            shown(
                "https://open.feishu.cn/open-apis/bot/v2/hook/2f1a9c7e-55b1-4d0e-9a3c-7e1f0b2d4c6a"
            ),
            "https://open.feishu.cn/open-apis/bot/v2/hook/<redacted>"
        );
        assert_eq!(shown("not a url"), "<invalid URL>");
    }

    #[test]
    fn a_static_url_is_parsed_once_and_a_template_at_each_rendering() {
        let fixed =
            UrlTemplate::compile("https://u:p@h.example/send?key=K", &|_| false).expect("compiles");
        assert_eq!(fixed.fixed_loggable(), Some("https://h.example/send"));
        assert_eq!(
            fixed.render_url(&vars(&[])).expect("renders").as_str(),
            "https://u:p@h.example/send?key=K"
        );
        let t = UrlTemplate::compile("https://h.example/u/{{$$.ID$$}}?key=K", &|_| false)
            .expect("compiles");
        assert_eq!(t.fixed_loggable(), None);
        let u = t.render_url(&vars(&[("ID", "a b")])).expect("renders");
        assert_eq!(u.as_str(), "https://h.example/u/a%20b?key=K");
        assert_eq!(u.loggable(), "https://h.example/u/a%20b");
        // Text that is no URL is left to the attempt, which reports it.
        let bad = UrlTemplate::compile("http://[::1/{{$$.ID$$}}", &|_| false).expect("compiles");
        assert_eq!(
            bad.render_url(&vars(&[("ID", "7")])),
            Ok(RenderedUrl::Invalid("http://[::1/7".into()))
        );
    }

    #[test]
    fn missing_values_and_static_urls() {
        let t = UrlTemplate::compile("http://x/a?e={{$$.Email$$}}", &|_| false).expect("compiles");
        assert_eq!(t.render(&vars(&[])).as_deref(), Ok("http://x/a?e="));
        let s = UrlTemplate::compile("http://x/?key=abc", &|_| false).expect("compiles");
        assert!(s.is_static());
        assert_eq!(s.render(&vars(&[])).as_deref(), Ok("http://x/?key=abc"));
    }

    #[test]
    fn an_empty_path_value_is_refused_not_collapsed() {
        // The case: an event without an ID went to `/hook/`.
        let t = UrlTemplate::compile("http://r/hook/{{$$.ID$$}}", &|_| false).expect("compiles");
        assert_eq!(
            t.render(&vars(&[])),
            Err(UrlRenderError::EmptyPathValue("ID".into()))
        );
        assert_eq!(
            t.render(&vars(&[("ID", "")])),
            Err(UrlRenderError::EmptyPathValue("ID".into()))
        );
        let mid =
            UrlTemplate::compile("http://r/u/{{$$.ID$$}}/roles", &|_| false).expect("compiles");
        assert!(mid.render(&vars(&[])).is_err());
        assert_eq!(
            mid.render(&vars(&[("ID", "7")])).as_deref(),
            Ok("http://r/u/7/roles")
        );
        let msg = t.render(&vars(&[])).unwrap_err().to_string();
        assert!(
            msg.starts_with("{{$$.ID$$}} in the URL path has no value"),
            "{msg}"
        );
    }

    #[test]
    fn dot_values_cannot_climb_a_path_segment() {
        let t =
            UrlTemplate::compile("http://r/users/{{$$.ID$$}}/roles", &|_| false).expect("compiles");
        for dots in [".", ".."] {
            assert_eq!(
                t.render(&vars(&[("ID", dots)])),
                Err(UrlRenderError::DotSegment("ID".into())),
                "{dots}"
            );
        }
        // With the literal around it: `/u/.{{ID}}` and ID `.` is `..`.
        let glued =
            UrlTemplate::compile("http://r/u/.{{$$.ID$$}}/x", &|_| false).expect("compiles");
        assert!(glued.render(&vars(&[("ID", ".")])).is_err());
        assert_eq!(
            glued.render(&vars(&[("ID", "a")])).as_deref(),
            Ok("http://r/u/.a/x")
        );
        let pair = UrlTemplate::compile("http://r/u/{{$$.ID$$}}{{$$.Name$$}}", &|_| false)
            .expect("compiles");
        assert!(pair.render(&vars(&[("ID", "."), ("Name", ".")])).is_err());
        // `/` is encoded, so a value cannot add segments either, and dots inside a longer
        // value are ordinary.
        for (value, rendered) in [
            ("../../admin", "http://r/users/..%2F..%2Fadmin/roles"),
            ("a/b", "http://r/users/a%2Fb/roles"),
            ("...", "http://r/users/.../roles"),
            ("alice.smith", "http://r/users/alice.smith/roles"),
            ("%2e%2e", "http://r/users/%252e%252e/roles"),
        ] {
            assert_eq!(
                t.render(&vars(&[("ID", value)])).as_deref(),
                Ok(rendered),
                "{value}"
            );
        }
        // Whatever was accepted parses to the path it says (reqwest's parser removes dot
        // segments, so this is the check that matters).
        for value in ["x", "...", "../../admin", "a/b", "%2e%2e", ".x", "x."] {
            let url = t.render(&vars(&[("ID", value)])).expect("renders");
            let parsed = reqwest::Url::parse(&url).expect("valid");
            assert_eq!(parsed.path_segments().map(|s| s.count()), Some(3), "{url}");
            assert!(parsed.path().starts_with("/users/"), "{url}");
        }
    }

    #[test]
    fn what_the_url_parser_reads_as_a_dot_segment_is_refused_too() {
        // Found triaging a template_render fuzz finding (`https:K{{ID}}`: the WHATWG parser reads
        // a host there without `//`): the same parser treats `\` as `/` in
        // http(s) URLs and drops tabs and newlines, so a value `..` next to them climbs
        // although the text around it shows no `/..`. (The config's URL check refuses such
        // templates; rendering does not rely on it.)
        for template in [
            "http://r/u/a\\{{$$.ID$$}}/x",
            "http://r/u/\t{{$$.ID$$}}/x",
            "http://r/u/{{$$.ID$$}}\n/x",
        ] {
            let t = UrlTemplate::compile(template, &|_| false).expect("compiles");
            assert!(t.render(&vars(&[("ID", "7")])).is_ok(), "{template}");
            assert!(t.render(&vars(&[("ID", "..")])).is_err(), "{template}");
        }
        let e = UrlTemplate::compile("http://r/u/a\\{{$$.ID$$}}/x", &|_| false)
            .expect("compiles")
            .render(&vars(&[("ID", "..")]))
            .unwrap_err();
        assert_eq!(e, UrlRenderError::PathChanged);
        // Found by the template_render fuzz target: a scheme without `//` (`htt:/…`, a
        // non-special scheme) hid the path from the text check, and `..` climbed.
        let t = UrlTemplate::compile("htt:/a/u/{{$$.ID$$}}/x", &|_| false).expect("compiles");
        assert_eq!(
            t.render(&vars(&[("ID", "7")])).as_deref(),
            Ok("htt:/a/u/7/x")
        );
        assert_eq!(
            t.render(&vars(&[("ID", "..")])),
            Err(UrlRenderError::PathChanged)
        );
        // Also found by it: there, an empty value turned `:/{{ID}}/tps` into `://tps`, a URL
        // whose path vanished into a host.
        let t = UrlTemplate::compile("hthttps:/{{$$.ID$$}}/tps", &|_| false).expect("compiles");
        assert!(t.render(&vars(&[("ID", "7")])).is_ok());
        assert_eq!(
            t.render(&vars(&[("ID", "")])),
            Err(UrlRenderError::PathChanged)
        );
    }

    #[test]
    fn query_and_authority_positions_have_no_segment_rules() {
        let t = UrlTemplate::compile("http://r/h?id={{$$.ID$$}}#{{$$.Name$$}}", &|_| false)
            .expect("compiles");
        assert_eq!(
            t.render(&vars(&[("ID", "..")])).as_deref(),
            Ok("http://r/h?id=..#")
        );
        let host =
            UrlTemplate::compile("http://{{$$.Name$$}}.example/x", &|_| false).expect("compiles");
        assert_eq!(
            host.render(&vars(&[("Name", "a")])).as_deref(),
            Ok("http://a.example/x")
        );
        assert_eq!(positions(&host.parsed), vec![Position::Authority]);
        let t = UrlTemplate::compile("http://r/{{$$.ID$$}}?q={{$$.Name$$}}", &|_| false)
            .expect("compiles");
        assert_eq!(t.positions, vec![Position::Path, Position::Query]);
    }

    #[test]
    fn unknown_variables_are_rejected() {
        let err = UrlTemplate::compile("http://x/{{$$.Nmae$$}}", &|_| false).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("unknown variable {{$$.Nmae$$}}; known: ID,"));
    }
}
