//! A YAML scalar or a list of scalars, read as text: `a`, `7`, `true` and `[a, b]`.
//!
//! Shared by every key that takes "one or several" (field sources, `when:` values, action
//! lists, sink URLs), so they all accept and refuse the same shapes.

use serde::{Deserialize, Serialize};

/// One value as a scalar, several as a list (`action: created`, `action: [created, login]`).
pub(super) fn one_or_list<S: serde::Serializer>(v: &OneOrMany, s: S) -> Result<S::Ok, S::Error> {
    match v.0.as_slice() {
        [one] => s.serialize_str(one),
        many => many.serialize(s),
    }
}

/// A YAML scalar or a list of them; `a` and `[a, b]` are both accepted.
/// Serialized as the list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(Scalar),
            Many(Vec<Scalar>),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Scalar {
            S(String),
            I(i64),
            B(bool),
            F(f64),
        }
        fn text(s: Scalar) -> String {
            match s {
                Scalar::S(s) => s,
                Scalar::I(i) => i.to_string(),
                Scalar::B(b) => b.to_string(),
                Scalar::F(f) => f.to_string(),
            }
        }
        match Raw::deserialize(d) {
            Ok(Raw::One(s)) => Ok(OneOrMany(vec![text(s)])),
            Ok(Raw::Many(v)) => Ok(OneOrMany(v.into_iter().map(text).collect())),
            Err(_) => Err(serde::de::Error::custom(
                "expected a string or a list of strings",
            )),
        }
    }
}
