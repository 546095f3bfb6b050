//! Webhook URLs with variables, e.g. `https://hooks.example/{{$$.Action$$}}?user={{$$.ID$$}}`.
//!
//! Values are percent-encoded (everything but RFC 3986 unreserved characters), so a value can
//! never add a path segment, a query parameter or change the host. The URL text around the
//! variables is kept exactly as written; checking that it is a valid URL is the config's job.

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

/// A URL compiled once per config load and rendered once per delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTemplate {
    parsed: Parsed,
}

impl UrlTemplate {
    /// Compiles `text`; `known` accepts the custom user fields declared in the config's routes.
    pub fn compile(text: &str, known: &dyn Fn(&str) -> bool) -> Result<Self, TemplateError> {
        Ok(UrlTemplate {
            parsed: parse(text, known)?,
        })
    }

    /// Whether the URL has no variables (the dispatcher can then reuse one rendering).
    pub fn is_static(&self) -> bool {
        self.parsed.slots.is_empty()
    }

    /// The URL for one delivery, values percent-encoded; missing values render empty.
    pub fn render(&self, vars: &dyn VarSource) -> String {
        let p = &self.parsed;
        let values: Vec<_> = p.slots.iter().map(|s| vars.var(&s.name)).collect();
        let value = |i: usize| values.get(i).and_then(|v| v.as_deref()).unwrap_or("");
        let len = p.literal_len()
            + (0..values.len())
                .map(|i| encoded_len(value(i)))
                .sum::<usize>();
        let mut out = String::with_capacity(len);
        for i in 0..p.literals.len() {
            out.push_str(p.literal(i));
            if i < values.len() {
                out.extend(utf8_percent_encode(value(i), ENCODE));
            }
        }
        out
    }
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
        let out = t.render(&vars(&[("Name", "a/b?c=d&e#f é~._-"), ("ID", "42")]));
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
    fn missing_values_and_static_urls() {
        let t = UrlTemplate::compile("http://x/{{$$.Email$$}}", &|_| false).expect("compiles");
        assert_eq!(t.render(&vars(&[])), "http://x/");
        let s = UrlTemplate::compile("http://x/?key=abc", &|_| false).expect("compiles");
        assert!(s.is_static());
        assert_eq!(s.render(&vars(&[])), "http://x/?key=abc");
    }

    #[test]
    fn unknown_variables_are_rejected() {
        let err = UrlTemplate::compile("http://x/{{$$.Nmae$$}}", &|_| false).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("unknown variable {{$$.Nmae$$}}; known: ID,"));
    }
}
