//! A `when:` condition as written: a value or a list (the shorthand: equals any of), or a map
//! of operators (`{not: true}`, `{exists: true}`, `{contains: password}`, `{prefix: admin@}`,
//! `{suffix: "@corp.example"}`, `{any: [admin, owner]}`; several in one map must all hold).
//!
//! Only the shape is read here; what the operators mean, and the checks that a condition can
//! hold at all, belong to the condition compiler (`detect::condition`). Kept apart from the
//! route model so a webhook filter can reuse the same spelling later.

use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::one_or_many::OneOrMany;

/// The operator keys a condition map may hold, for error messages.
pub const OPERATORS: &str = "equals, not, exists, contains, prefix, suffix, any";

/// One `when:` entry's right-hand side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ConditionSpec {
    /// `source: value` or `source: [a, b]`: the value equals one of these (for an array
    /// value: some element does).
    Equals(Vec<String>),
    /// `source: {op: operand, ...}`: every operator given must hold.
    Ops(ConditionOps),
}

/// The operators of a map condition; each `None` when not given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConditionOps {
    /// Equals one of these (the shorthand, spelled out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equals: Option<Vec<String>>,
    /// Equals none of these (holds for an absent value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not: Option<Vec<String>>,
    /// `true`: present and non-empty; `false`: absent (missing, null, empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    /// Some element of the array equals this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    /// The value (or some element) starts with one of these.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<Vec<String>>,
    /// The value (or some element) ends with one of these (`@corp.example`: an email domain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suffix: Option<Vec<String>>,
    /// Some element of the array equals one of these.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub any: Option<Vec<String>>,
}

impl ConditionSpec {
    /// How the README's profile tables spell the condition: `` is `a` or `b` ``,
    /// `` contains `password` ``.
    pub fn describe(&self) -> String {
        match self {
            ConditionSpec::Equals(values) => format!("is {}", alternatives(values)),
            ConditionSpec::Ops(ops) => {
                let mut parts = Vec::new();
                if let Some(v) = &ops.equals {
                    parts.push(format!("is {}", alternatives(v)));
                }
                if let Some(v) = &ops.not {
                    parts.push(format!("is not {}", alternatives(v)));
                }
                match ops.exists {
                    Some(true) => parts.push("is present".to_owned()),
                    Some(false) => parts.push("is absent".to_owned()),
                    None => {}
                }
                if let Some(v) = &ops.contains {
                    parts.push(format!("contains `{v}`"));
                }
                if let Some(v) = &ops.prefix {
                    parts.push(format!("starts with {}", alternatives(v)));
                }
                if let Some(v) = &ops.suffix {
                    parts.push(format!("ends with {}", alternatives(v)));
                }
                if let Some(v) = &ops.any {
                    parts.push(format!("has an element {}", alternatives(v)));
                }
                parts.join(" and ")
            }
        }
    }
}

/// `` `a` ``, `` `a` or `b` ``, `` `a`, `b` or `c` ``.
fn alternatives(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

impl<'de> Deserialize<'de> for ConditionSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SpecVisitor)
    }
}

struct SpecVisitor;

impl<'de> Visitor<'de> for SpecVisitor {
    type Value = ConditionSpec;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a value, a list of values (equals any of), or a map of operators ({OPERATORS})"
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(ConditionSpec::Equals(vec![v.to_owned()]))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(ConditionSpec::Equals(vec![v.to_string()]))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(ConditionSpec::Equals(vec![v.to_string()]))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(ConditionSpec::Equals(vec![v.to_string()]))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(ConditionSpec::Equals(vec![v.to_string()]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let list = OneOrMany::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(ConditionSpec::Equals(list.0))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut ops = ConditionOps::default();
        fn once<T, E: de::Error>(slot: &mut Option<T>, key: &str, v: T) -> Result<(), E> {
            if slot.replace(v).is_some() {
                return Err(E::custom(format!("operator `{key}` given twice")));
            }
            Ok(())
        }
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "equals" => once(&mut ops.equals, &key, map.next_value::<OneOrMany>()?.0)?,
                "not" => once(&mut ops.not, &key, map.next_value::<OneOrMany>()?.0)?,
                "prefix" => once(&mut ops.prefix, &key, map.next_value::<OneOrMany>()?.0)?,
                "suffix" => once(&mut ops.suffix, &key, map.next_value::<OneOrMany>()?.0)?,
                "any" => once(&mut ops.any, &key, map.next_value::<OneOrMany>()?.0)?,
                "exists" => {
                    let v = map.next_value::<bool>().map_err(|_| {
                        de::Error::custom("`exists` takes true (present) or false (absent)")
                    })?;
                    once(&mut ops.exists, &key, v)?
                }
                "contains" => {
                    let mut v = map.next_value::<OneOrMany>()?.0;
                    if v.len() != 1 {
                        return Err(de::Error::custom(
                            "`contains` takes one value; for several use `any: [a, b]`",
                        ));
                    }
                    once(&mut ops.contains, &key, v.remove(0))?
                }
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown operator `{other}`; expected one of {OPERATORS}"
                    )))
                }
            }
        }
        Ok(ConditionSpec::Ops(ops))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<ConditionSpec, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn shorthand_and_operator_maps() {
        assert_eq!(
            read(r#""password""#),
            Ok(ConditionSpec::Equals(vec!["password".into()]))
        );
        assert_eq!(read("true"), Ok(ConditionSpec::Equals(vec!["true".into()])));
        assert_eq!(read("7"), Ok(ConditionSpec::Equals(vec!["7".into()])));
        assert_eq!(
            read(r#"["a", 1, false]"#),
            Ok(ConditionSpec::Equals(vec![
                "a".into(),
                "1".into(),
                "false".into()
            ]))
        );
        assert_eq!(
            read(
                r#"{"not": true, "exists": true, "contains": "x", "prefix": "a@", "any": ["p", "q"], "equals": "e"}"#
            ),
            Ok(ConditionSpec::Ops(ConditionOps {
                equals: Some(vec!["e".into()]),
                not: Some(vec!["true".into()]),
                exists: Some(true),
                contains: Some("x".into()),
                prefix: Some(vec!["a@".into()]),
                suffix: None,
                any: Some(vec!["p".into(), "q".into()]),
            }))
        );
    }

    #[test]
    fn bad_maps_say_what_is_expected() {
        for (bad, want) in [
            (
                r#"{"has": 1}"#,
                "unknown operator `has`; expected one of equals, not",
            ),
            (r#"{"exists": "yes"}"#, "`exists` takes true"),
            (r#"{"contains": ["a", "b"]}"#, "`contains` takes one value"),
            (r#"{"not": 1, "not": 2}"#, "given twice"),
            (r#"[{"a": 1}]"#, "expected a string or a list"),
            ("null", "a value, a list of values"),
        ] {
            let e = read(bad).expect_err(bad);
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn describes_like_the_profile_tables() {
        let d = |j: &str| read(j).expect(j).describe();
        assert_eq!(
            d(r#"["password", "authorization_code"]"#),
            "is `password` or `authorization_code`"
        );
        assert_eq!(d(r#"{"contains": "password"}"#), "contains `password`");
        assert_eq!(
            d(r#"{"exists": true, "not": [true]}"#),
            "is not `true` and is present"
        );
        assert_eq!(d(r#"{"exists": false}"#), "is absent");
        assert_eq!(
            d(r#"{"suffix": ["@a.example", "@b.example"]}"#),
            "ends with `@a.example` or `@b.example`"
        );
        assert_eq!(
            d(r#"{"prefix": "a@", "any": ["x", "y", "z"]}"#),
            "starts with `a@` and has an element `x`, `y` or `z`"
        );
    }
}
