//! Webhook message bodies: JSON documents (the DCE and chat-robot case) or plain text.
//!
//! A JSON body is checked at load and its literal text is kept byte for byte, so DCE bodies
//! render exactly as DCE would send them. Values are JSON-escaped so they can never close a
//! string, add a key or break the document; they must never be re-expanded or re-parsed.
//!
//! A variable outside a JSON string (`{"id": {{$$.ID$$}}}`) is rendered as a JSON string
//! value (`{"id": "42"}`): always valid, never a way to inject structure. Placements where a
//! string cannot stand (`1{{$$.ID$$}}`, two variables side by side, after a backslash) fail the
//! load-time JSON check.

use std::fmt::Write as _;

use super::error::TemplateError;
use super::parse::{parse, Parsed};
use super::vars::VarSource;

/// How a body's variables are substituted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// A JSON document: validated at load, values JSON-escaped.
    Json,
    /// Any other text: values inserted as they are.
    Text,
}

/// A body compiled once per config load and rendered once per delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyTemplate {
    parsed: Parsed,
    kind: BodyKind,
    /// Per slot, for JSON: true when the variable sits outside a string and gets quotes.
    quoted: Vec<bool>,
}

impl BodyTemplate {
    /// Compiles `text`; `known` accepts the custom user fields declared in the config's routes
    /// (built-in fields and event variables are always known).
    pub fn compile(
        text: &str,
        kind: BodyKind,
        known: &dyn Fn(&str) -> bool,
    ) -> Result<Self, TemplateError> {
        let parsed = parse(text, known)?;
        let quoted = match kind {
            BodyKind::Text => vec![false; parsed.slots.len()],
            BodyKind::Json => {
                let quoted = outside_strings(&parsed);
                check_json(&parsed, &quoted)?;
                quoted
            }
        };
        Ok(BodyTemplate {
            parsed,
            kind,
            quoted,
        })
    }

    /// Whether this body is JSON or text.
    pub fn kind(&self) -> BodyKind {
        self.kind
    }

    /// The variable names used, in order of appearance (repeats included), so callers can
    /// tell which fields a webhook needs.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parsed.slots.iter().map(|s| &*s.name)
    }

    /// The body for one delivery. Each variable is looked up once; the output is allocated
    /// once at its exact size. Missing values render as empty strings.
    pub fn render(&self, vars: &dyn VarSource) -> Vec<u8> {
        let p = &self.parsed;
        let values: Vec<_> = p.slots.iter().map(|s| vars.var(&s.name)).collect();
        let value = |i: usize| values.get(i).and_then(|v| v.as_deref()).unwrap_or("");
        let json = self.kind == BodyKind::Json;
        let quoted = |i: usize| self.quoted.get(i).copied().unwrap_or(false);

        let mut len = p.literal_len();
        for i in 0..values.len() {
            let v = value(i);
            len += if json { json_escaped_len(v) } else { v.len() };
            len += if quoted(i) { 2 } else { 0 };
        }
        let mut out = Vec::with_capacity(len);
        for i in 0..p.literals.len() {
            out.extend_from_slice(p.literal(i).as_bytes());
            if i >= values.len() {
                break;
            }
            let v = value(i);
            if !json {
                out.extend_from_slice(v.as_bytes());
            } else if quoted(i) {
                out.push(b'"');
                push_json_escaped(&mut out, v);
                out.push(b'"');
            } else {
                push_json_escaped(&mut out, v);
            }
        }
        debug_assert_eq!(out.len(), len, "render size estimate must be exact");
        out
    }
}

/// For each slot, whether it sits outside a JSON string, by scanning the literal text the way a
/// JSON lexer would (quotes toggle, a backslash inside a string escapes the next byte).
fn outside_strings(p: &Parsed) -> Vec<bool> {
    let mut in_string = false;
    let mut escaped = false;
    let mut quoted = Vec::with_capacity(p.slots.len());
    for i in 0..p.literals.len() {
        for &b in p.literal(i).as_bytes() {
            if escaped {
                escaped = false;
            } else if in_string && b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = !in_string;
            }
        }
        if i < p.slots.len() {
            quoted.push(!in_string);
            // A value is never a backslash's escaped byte: the JSON check below rejects it.
            escaped = false;
        }
    }
    quoted
}

/// Validates the document with each variable replaced by a same-length stand-in (`xxx` in a
/// string, `"x"` outside), so serde_json's line and column point into the original text.
fn check_json(p: &Parsed, quoted: &[bool]) -> Result<(), TemplateError> {
    let mut probe = String::with_capacity(p.text.len());
    for i in 0..p.literals.len() {
        probe.push_str(p.literal(i));
        let Some(slot) = p.slots.get(i) else { break };
        let n = slot.span.len();
        if quoted.get(i).copied().unwrap_or(false) {
            probe.push('"');
            probe.extend(std::iter::repeat_n('x', n.saturating_sub(2)));
            probe.push('"');
        } else {
            probe.extend(std::iter::repeat_n('x', n));
        }
    }
    serde_json::from_str::<serde::de::IgnoredAny>(&probe)
        .map(|_| ())
        .map_err(|e| {
            let mut message = e.to_string();
            if let Some(slot) = p
                .slots
                .iter()
                .find(|s| near(e.line(), e.column(), &p.text, s))
            {
                let _ = write!(message, " (at variable {{{{$$.{}$$}}}})", slot.name);
            }
            TemplateError::InvalidJson { message }
        })
}

/// Whether serde_json's 1-based (line, column) falls inside or right after `slot`.
fn near(line: usize, column: usize, text: &str, slot: &super::parse::Slot) -> bool {
    let Some(before) = text.get(..slot.span.start) else {
        return false;
    };
    let slot_line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col_start = slot.span.start - line_start + 1;
    slot_line == line && (col_start..=col_start + slot.span.len()).contains(&column)
}

/// Bytes `s` takes once JSON-escaped (without surrounding quotes).
fn json_escaped_len(s: &str) -> usize {
    s.bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0x00..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

/// Appends `s` JSON-escaped: quotes, backslashes and control characters escaped; everything
/// else (all non-ASCII, emoji included) copied unchanged as UTF-8.
fn push_json_escaped(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..i]);
        run = i + 1;
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
    }
    out.extend_from_slice(&bytes[run..]);
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

    fn json(text: &str) -> BodyTemplate {
        BodyTemplate::compile(text, BodyKind::Json, &|_| false).expect("compiles")
    }

    fn render_str(t: &BodyTemplate, v: &BTreeMap<String, String>) -> String {
        String::from_utf8(t.render(v)).expect("utf-8")
    }

    #[test]
    fn wecom_example_renders_exactly() {
        let t = json(r#"{"msgtype":"text","text":{"content":"{{$$.Name$$}} hello world"}}"#);
        assert_eq!(
            render_str(&t, &vars(&[("Name", "alice")])),
            r#"{"msgtype":"text","text":{"content":"alice hello world"}}"#
        );
    }

    #[test]
    fn hostile_values_keep_the_document_and_round_trip() {
        let hostile = [
            r#"a"b"#,
            r"back\slash",
            "line\nbreak\r\n",
            "tab\there",
            "emoji 🎉 and 中文",
            "</script><script>alert(1)</script>",
            "{{$$.ID$$}}",
            r#"", "admin": true, "x": ""#,
            "\u{0}\u{1}\u{1f}\u{8}\u{c}\u{7f}\u{2028}",
            "\\",
            "\"",
        ];
        let t = json(r#"{"name":"{{$$.Name$$}}","id":"{{$$.ID$$}}","both":"<{{$$.Name$$}}>"}"#);
        for value in hostile {
            let out = t.render(&vars(&[("Name", value), ("ID", "42")]));
            let doc: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
            let obj = doc.as_object().expect("object");
            assert_eq!(obj.len(), 3, "structure changed for {value:?}");
            assert_eq!(doc["name"], value);
            assert_eq!(doc["id"], "42");
            assert_eq!(doc["both"], format!("<{value}>"));
        }
    }

    #[test]
    fn escaping_is_exact_and_utf8_is_kept() {
        let t = json(r#"["{{$$.Name$$}}"]"#);
        let out = render_str(&t, &vars(&[("Name", "q\"b\\n\nt\t\u{1}🎉")]));
        assert_eq!(out, r#"["q\"b\\n\nt\t\u0001🎉"]"#);
    }

    #[test]
    fn missing_values_render_empty() {
        let t = json(r#"{"e":"{{$$.Email$$}}","n":{{$$.Name$$}}}"#);
        assert_eq!(render_str(&t, &vars(&[])), r#"{"e":"","n":""}"#);
    }

    #[test]
    fn variables_outside_strings_become_json_strings() {
        let t = json(r#"{"id": {{$$.ID$$}}, "tags": [{{ $$.Name$$ }}]}"#);
        let out = render_str(&t, &vars(&[("ID", "42"), ("Name", r#"x", "y"#)]));
        assert_eq!(out, r#"{"id": "42", "tags": ["x\", \"y"]}"#);
    }

    #[test]
    fn invalid_json_is_rejected_with_a_position() {
        let err = BodyTemplate::compile(r#"{"a": 1,}"#, BodyKind::Json, &|_| false).unwrap_err();
        assert!(
            matches!(&err, TemplateError::InvalidJson { message } if message.contains("line 1 column 9")),
            "{err}"
        );
        for bad in [
            r#"{"n": 1{{$$.ID$$}}}"#,
            r#"{"n": {{$$.ID$$}}{{$$.Name$$}}}"#,
            r#"{"n": "\{{$$.ID$$}}"}"#,
            r#"{"n": "\u00{{$$.ID$$}}41"}"#,
            r#"{"n": "x"}{{$$.ID$$}}"#,
        ] {
            let err = BodyTemplate::compile(bad, BodyKind::Json, &|_| false).unwrap_err();
            assert!(
                matches!(err, TemplateError::InvalidJson { .. }),
                "{bad}: {err}"
            );
        }
        let err = BodyTemplate::compile(r#"{"n": 1{{$$.ID$$}}}"#, BodyKind::Json, &|_| false)
            .unwrap_err();
        assert!(
            err.to_string().contains("(at variable {{$$.ID$$}})"),
            "{err}"
        );
    }

    #[test]
    fn escaped_quotes_in_literals_are_not_string_ends() {
        let t = json(r#"{"a":"say \"{{$$.Name$$}}\" \\","b":{{$$.ID$$}}}"#);
        let out = render_str(&t, &vars(&[("Name", "bob"), ("ID", "7")]));
        assert_eq!(out, r#"{"a":"say \"bob\" \\","b":"7"}"#);
    }

    #[test]
    fn text_bodies_substitute_plainly() {
        let t = BodyTemplate::compile(
            "user {{$$.Name$$}} \"{{$$.Action$$}}\" {{$$.Dept$$}}\n",
            BodyKind::Text,
            &|n| n == "Dept",
        )
        .expect("compiles");
        assert_eq!(t.kind(), BodyKind::Text);
        assert_eq!(
            t.variables().collect::<Vec<_>>(),
            ["Name", "Action", "Dept"]
        );
        let out = render_str(&t, &vars(&[("Name", "a\"b"), ("Action", "created")]));
        assert_eq!(out, "user a\"b \"created\" \n");
    }

    #[test]
    fn a_body_without_variables_renders_as_is() {
        let t = json("{\"a\": [1, 2]}\n");
        assert_eq!(render_str(&t, &vars(&[])), "{\"a\": [1, 2]}\n");
    }
}
