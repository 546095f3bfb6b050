//! The members of a JSON object body, found in one pass without building them.
//!
//! A user body is mostly things no field reads (credentials, attributes, groups...), and
//! turning all of it into a `serde_json::Value` tree costs an allocation per string, key and
//! container. The index instead records where each top-level member's value lies; a source
//! then parses only the member it reads, with serde_json, which validates it.
//!
//! The scan checks the object's own structure (keys, colons, commas, the closing brace,
//! nothing after it), the tokens of top-level scalars, and that nested containers and strings
//! are closed; the inside of a member nobody reads is not validated further. Anything it
//! does not understand is "not an index", and the caller falls back to a full parse.

use std::ops::Range;

use serde_json::Value;

/// Deeper nesting than this is left to the full parser.
const MAX_DEPTH: usize = 128;

/// Where one member's key and value are, as byte ranges of the indexed text.
#[derive(Debug)]
struct Member {
    key: Key,
    value: Range<usize>,
}

/// A key as written, or unescaped when it had escapes.
#[derive(Debug)]
enum Key {
    At(Range<usize>),
    Unescaped(String),
}

/// The top-level members of one JSON object, in order.
#[derive(Debug)]
pub struct ObjectIndex {
    members: Vec<Member>,
}

impl ObjectIndex {
    /// Indexes `text` when it is one JSON object (whitespace around it allowed); `None` for
    /// anything else, malformed text included.
    pub fn build(text: &[u8]) -> Option<ObjectIndex> {
        let mut scan = Scanner { text, pos: 0 };
        scan.skip_ws();
        scan.expect(b'{')?;
        let mut members = Vec::with_capacity(16);
        scan.skip_ws();
        if scan.peek() == Some(b'}') {
            scan.pos += 1;
        } else {
            loop {
                scan.skip_ws();
                let (key_range, escaped) = scan.string()?;
                let key = if escaped {
                    // Includes the quotes: let serde_json undo the escapes.
                    let quoted = text.get(key_range.start - 1..key_range.end + 1)?;
                    Key::Unescaped(serde_json::from_slice(quoted).ok()?)
                } else {
                    Key::At(key_range)
                };
                scan.skip_ws();
                scan.expect(b':')?;
                scan.skip_ws();
                let start = scan.pos;
                scan.value()?;
                members.push(Member {
                    key,
                    value: start..scan.pos,
                });
                scan.skip_ws();
                match scan.next()? {
                    b',' => continue,
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        scan.skip_ws();
        (scan.pos == text.len()).then_some(ObjectIndex { members })
    }

    /// The value of member `key` (the last one when a key repeats, as a parsed tree would
    /// keep), parsed on its own.
    pub fn member(&self, text: &[u8], key: &str) -> Option<Value> {
        let found = self.members.iter().rev().find(|m| match &m.key {
            Key::At(r) => text.get(r.clone()) == Some(key.as_bytes()),
            Key::Unescaped(k) => k == key,
        })?;
        let raw = text.get(found.value.clone())?;
        // Most members read are plain strings: the scan already found their ends and no
        // escapes or control characters in them; only UTF-8 is left to check.
        if let [b'"', inner @ .., b'"'] = raw {
            if !inner.contains(&b'\\') {
                return std::str::from_utf8(inner)
                    .ok()
                    .map(|s| Value::String(s.to_owned()));
            }
        }
        serde_json::from_slice(raw).ok()
    }
}

/// The bytes a container scan stops at: quotes and brackets.
const CONTAINER_STOP: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'{' as usize] = true;
    t[b'[' as usize] = true;
    t[b'}' as usize] = true;
    t[b']' as usize] = true;
    t
};

/// Where the first byte that ends plain string content is in `s`: a quote, a backslash or a
/// raw control character; `None` when there is none.
///
/// Eight bytes at a time (SWAR): `x - 0x01..` borrows into a byte's high bit only where the
/// byte is zero (after an XOR with the quote or backslash) or below 0x20, and a borrow only
/// ever runs upwards, so the lowest flagged byte is a genuine one.
#[inline(always)]
fn first_string_stop(s: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let zero_at = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = s.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let stops = zero_at(x ^ (ONES * u64::from(b'"')))
            | zero_at(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
        if stops != 0 {
            return Some(offset + (stops.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let tail = chunks.remainder();
    tail.iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| offset + i)
}

/// A cursor over the text; every step is bounds-checked and returns `None` at the end.
struct Scanner<'t> {
    text: &'t [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// A string starting at the cursor: the range of its contents and whether it has escapes.
    #[inline(always)]
    fn string(&mut self) -> Option<(Range<usize>, bool)> {
        self.expect(b'"')?;
        let start = self.pos;
        let mut escaped = false;
        loop {
            // Plain content is skipped eight bytes at a time: most of a user body is string
            // content.
            self.pos += first_string_stop(self.text.get(self.pos..)?)?;
            match self.next()? {
                b'"' => return Some((start..self.pos - 1, escaped)),
                b'\\' => {
                    escaped = true;
                    self.next()?;
                }
                // Raw control characters are not allowed in JSON strings.
                _ => return None,
            }
        }
    }

    /// One value of any kind, leaving the cursor just after it.
    fn value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => self.container(),
            _ => self.scalar(),
        }
    }

    /// A nested object or array: brackets matched (strings skipped), contents not checked.
    fn container(&mut self) -> Option<()> {
        // The closer each open bracket expects, innermost last.
        let mut closers = [0u8; MAX_DEPTH];
        let mut depth = 0;
        loop {
            match self.peek()? {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b @ (b'{' | b'[') => {
                    *closers.get_mut(depth)? = if b == b'{' { b'}' } else { b']' };
                    depth += 1;
                }
                b @ (b'}' | b']') => {
                    depth = depth.checked_sub(1)?;
                    if *closers.get(depth)? != b {
                        return None;
                    }
                    if depth == 0 {
                        self.pos += 1;
                        return Some(());
                    }
                }
                _ => {
                    // Numbers, literals, commas, colons, whitespace: on to the next byte
                    // that opens, closes or quotes.
                    let rest = self.text.get(self.pos..)?;
                    self.pos += rest.iter().position(|&b| CONTAINER_STOP[usize::from(b)])?;
                    continue;
                }
            }
            self.pos += 1;
        }
    }

    /// `true`, `false`, `null` or a number.
    fn scalar(&mut self) -> Option<()> {
        let start = self.pos;
        while matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || b"+-.".contains(&b)) {
            self.pos += 1;
        }
        let token = self.text.get(start..self.pos)?;
        let ok = matches!(token, b"true" | b"false" | b"null")
            || (!token.is_empty() && serde_json::from_slice::<serde_json::Number>(token).is_ok());
        ok.then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn member(text: &str, key: &str) -> Option<Value> {
        ObjectIndex::build(text.as_bytes())?.member(text.as_bytes(), key)
    }

    #[test]
    fn members_parse_alone_and_nested_values_stay_whole() {
        let text = r#" {"id":"u-1","n":42,"on":true,"nil":null,
            "attrs":{"dept":["eng"]},"list":[{"a":1},{"a":2}]} "#;
        assert_eq!(member(text, "id"), Some(json!("u-1")));
        assert_eq!(member(text, "n"), Some(json!(42)));
        assert_eq!(member(text, "on"), Some(json!(true)));
        assert_eq!(member(text, "nil"), Some(Value::Null));
        assert_eq!(member(text, "attrs"), Some(json!({"dept": ["eng"]})));
        assert_eq!(member(text, "list"), Some(json!([{"a": 1}, {"a": 2}])));
        assert_eq!(member(text, "missing"), None);
    }

    #[test]
    fn escaped_keys_and_values_are_unescaped() {
        let text = r#"{"e\u006dail":"a\"b@example.com","plain":"x\ny"}"#;
        assert_eq!(member(text, "email"), Some(json!("a\"b@example.com")));
        assert_eq!(member(text, "plain"), Some(json!("x\ny")));
    }

    #[test]
    fn every_member_reads_as_the_parsed_tree_has_it() {
        let docs = [
            r#"{"s":"a}b]c{d[\"e\\","n":-1.5e3,"z":0,"t":true,"f":false,"x":null}"#,
            r#"{ "nested" : { "a" : [ 1 , { "b" : "}" } ] } , "after" : "ok" }"#,
            r#"{"emails":[{"value":"a@x","primary":true}],"name":{"givenName":"A"}}"#,
            r#"{"k\u00e9y":"caf\u00e9","ключ":"значение","e":"\ud83d\ude00"}"#,
            "\t\r\n{\n\"a\"\n:\n[]\n,\"b\":{}}\n",
        ];
        for doc in docs {
            let tree: Value = serde_json::from_str(doc).expect("valid json");
            let index = ObjectIndex::build(doc.as_bytes()).expect(doc);
            let map = tree.as_object().expect("object");
            for (key, value) in map {
                assert_eq!(
                    index.member(doc.as_bytes(), key).as_ref(),
                    Some(value),
                    "{doc}"
                );
            }
            assert_eq!(index.members.len(), map.len(), "{doc}");
        }
    }

    #[test]
    fn no_input_makes_it_panic() {
        let doc = br#"{"a":"x\"y","b":[1,{"c":null}],"d":-2.5e1,"e\n":"\u0041"}"#;
        for end in 0..=doc.len() {
            assert_eq!(ObjectIndex::build(&doc[..end]).is_some(), end == doc.len());
        }
        let mut x: u32 = 7;
        let mut compared = 0;
        for round in 0..20_000 {
            let mut m = doc.to_vec();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let i = x as usize % m.len();
                // Any byte, or (every other round) printable ASCII, which keeps more of the
                // mutants valid JSON for the comparison below.
                m[i] = if round % 2 == 0 {
                    (x >> 8) as u8
                } else {
                    b' ' + ((x >> 8) % 95) as u8
                };
            }
            let index = ObjectIndex::build(&m);
            if let Some(index) = &index {
                for key in ["a", "b", "d", "e\n"] {
                    let _ = index.member(&m, key);
                }
            }
            // Whatever serde_json reads as an object, the index reads the same.
            if let Ok(Value::Object(tree)) = serde_json::from_slice::<Value>(&m) {
                let index = index.expect("a valid object is indexed");
                for (key, value) in &tree {
                    assert_eq!(index.member(&m, key).as_ref(), Some(value));
                }
                compared += 1;
            }
        }
        // The seed is fixed: 131 of the mutants are valid objects and get compared.
        assert_eq!(compared, 131);
    }

    #[test]
    fn the_word_scan_stops_where_a_byte_scan_does() {
        let slow = |s: &[u8]| s.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
        let mut x: u32 = 11;
        for len in 0..40 {
            for _ in 0..500 {
                let s: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        // Mostly plain bytes (high ones too), sometimes a stop.
                        match x % 16 {
                            0 => b'"',
                            1 => b'\\',
                            2 => (x >> 8) as u8 % 0x20,
                            _ => 0x20 + ((x >> 8) as u8 % 0xe0),
                        }
                    })
                    .collect();
                assert_eq!(first_string_stop(&s), slow(&s), "{s:?}");
            }
        }
        assert_eq!(first_string_stop(b"abcdefgh\"ijk"), Some(8));
        assert_eq!(first_string_stop(b"\xff\xfe!#\x7f\x80\x1f"), Some(6));
    }

    #[test]
    fn a_repeated_key_reads_as_a_parsed_tree_would() {
        let text = r#"{"id":"first","id":"second"}"#;
        let tree: Value = serde_json::from_str(text).expect("json");
        assert_eq!(member(text, "id").as_ref(), tree.get("id"));
    }

    #[test]
    fn anything_but_one_whole_object_is_not_indexed() {
        for text in [
            "[1,2]",
            "\"s\"",
            "42",
            "",
            "{",
            r#"{"a":1"#,
            r#"{"a":1} {"b":2}"#,
            r#"{"a":tru}"#,
            r#"{"a":1,}"#,
            r#"{"a":[}"#,
            r#"{"a":{"b":1]}"#,
            r#"{"a":"unterminated}"#,
            "{\"a\":\"raw\ncontrol\"}",
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            r#"{"a":01}"#,
            r#"{"a":-}"#,
        ] {
            assert!(ObjectIndex::build(text.as_bytes()).is_none(), "{text:?}");
        }
        assert!(ObjectIndex::build(b"{}").is_some());
    }
}
