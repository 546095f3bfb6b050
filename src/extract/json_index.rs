//! The members of a JSON object body, found in one pass without building them.
//!
//! A user body is mostly things no field reads (credentials, attributes, groups...), and
//! turning all of it into a `serde_json::Value` tree costs an allocation per string, key and
//! container. The index instead records where each top-level member's value lies (the whole
//! text is still validated); a source then parses only the member it reads.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

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
    /// Indexes `text` when it is exactly one JSON object (whitespace around it allowed);
    /// `None` for anything else, malformed text included.
    pub fn build(text: &[u8]) -> Option<ObjectIndex> {
        let mut de = serde_json::Deserializer::from_slice(text);
        let members = de
            .deserialize_map(MembersVisitor {
                base: text.as_ptr() as usize,
                len: text.len(),
            })
            .ok()?;
        de.end().ok()?;
        Some(ObjectIndex { members })
    }

    /// The value of member `key` (the last one when a key repeats, as a parsed tree would
    /// keep), parsed on its own.
    pub fn member(&self, text: &[u8], key: &str) -> Option<Value> {
        let found = self.members.iter().rev().find(|m| match &m.key {
            Key::At(r) => text.get(r.clone()) == Some(key.as_bytes()),
            Key::Unescaped(k) => k == key,
        })?;
        serde_json::from_slice(text.get(found.value.clone())?).ok()
    }
}

/// The offset range of `part` inside the text starting at `base`, when it lies inside.
fn range_in(base: usize, len: usize, part: &str) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(base)?;
    let end = start.checked_add(part.len())?;
    (end <= len).then_some(start..end)
}

struct MembersVisitor {
    base: usize,
    len: usize,
}

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Vec<Member>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Member>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let raw: &'de RawValue = map.next_value()?;
            let value = range_in(self.base, self.len, raw.get())
                .ok_or_else(|| de::Error::custom("value outside the text"))?;
            let key = match key {
                Cow::Borrowed(k) => Key::At(
                    range_in(self.base, self.len, k)
                        .ok_or_else(|| de::Error::custom("key outside the text"))?,
                ),
                Cow::Owned(k) => Key::Unescaped(k),
            };
            members.push(Member { key, value });
        }
        Ok(members)
    }
}

/// Reads a key borrowed from the text when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
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
        ] {
            assert!(ObjectIndex::build(text.as_bytes()).is_none(), "{text:?}");
        }
        assert!(ObjectIndex::build(b"{}").is_some());
    }
}
