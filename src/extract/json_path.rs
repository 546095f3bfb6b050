//! JSON paths and scalar text: how a value is found in a parsed body and turned into the
//! text an event carries.
//!
//! `emails.primary.value`, `attributes.department.0`, `Operations.path=active.value`. A lookup
//! never fails or panics: a missing step, a non-scalar or an empty string is "no value".

use serde_json::Value;

use crate::redact::is_credential_name;

/// Why a dotted path cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonPathError {
    /// Nothing after the source's prefix.
    #[error("empty path")]
    Empty,
    /// `a..b` or a trailing dot.
    #[error("empty step in path `{0}`")]
    EmptyStep(String),
}

/// One step of a JSON path: an object key, or an array index when it is a number. On an
/// array, the step `primary` picks the element with `"primary": true`, else the first
/// (SCIM multi-valued attributes such as `emails`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    key: String,
    index: Option<usize>,
}

/// A dotted JSON path, e.g. `emails.primary.value` or `attributes.department.0`. On an
/// array, a number indexes, `primary` picks the primary element, and `key=value` picks the
/// first element whose `key` is `value` (ASCII case ignored), e.g. `Operations.path=active.value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(Vec<Step>);

impl JsonPath {
    /// Parses `a.b.0`; every step must be non-empty.
    pub fn parse(text: &str) -> Result<Self, JsonPathError> {
        if text.is_empty() {
            return Err(JsonPathError::Empty);
        }
        let mut steps = Vec::new();
        for part in text.split('.') {
            if part.is_empty() {
                return Err(JsonPathError::EmptyStep(text.to_owned()));
            }
            steps.push(Step {
                key: part.to_owned(),
                index: part.parse().ok(),
            });
        }
        Ok(JsonPath(steps))
    }

    /// The first step's key (what it reads of an object) and the steps after it.
    pub fn split_first(&self) -> (&str, Steps<'_>) {
        match self.0.split_first() {
            Some((first, rest)) => (first.key.as_str(), Steps(rest)),
            None => ("", Steps(&[])),
        }
    }

    /// The value at this path, if every step exists.
    pub fn lookup<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        Steps(&self.0).lookup(root)
    }

    /// True when the path can lead to a credential: its last step is named like one
    /// (`password`, `client_secret`, `access_token`, ...), or an earlier step is and the last
    /// one is not an identifier of the user the credential belongs to ([`IDENTITY_LEAVES`]:
    /// `token.user.id` in Keystone's token body names the user, `credentials.0.value` is a
    /// password).
    pub fn names_credential(&self) -> bool {
        let Some((leaf, parents)) = self.0.split_last() else {
            return false;
        };
        is_credential_name(&leaf.key)
            || (parents.iter().any(|s| is_credential_name(&s.key))
                && !IDENTITY_LEAVES
                    .iter()
                    .any(|name| leaf.key.eq_ignore_ascii_case(name)))
    }
}

/// Last steps that name who or what a value is about, never a secret, even below a step
/// named like a credential: the user of a token (`token.user.id`, `token.user.name`), the user
/// a password is checked for (`password.user.name`).
const IDENTITY_LEAVES: [&str; 7] = [
    "id", "name", "username", "email", "login", "user_id", "userId",
];

/// Some steps of a [`JsonPath`], applied from a value inside the document.
#[derive(Debug, Clone, Copy)]
pub struct Steps<'p>(&'p [Step]);

impl Steps<'_> {
    /// True when there is no step left: the value itself is wanted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value these steps lead to from `root`, if every step exists.
    pub fn lookup<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        let mut v = root;
        for step in self.0 {
            v = match v {
                Value::Object(map) => map.get(&step.key)?,
                Value::Array(items) if step.key == "primary" => primary(items)?,
                Value::Array(items) => match (step.index, step.key.split_once('=')) {
                    (Some(i), _) => items.get(i)?,
                    // `Operations.path=active`: the first element whose `path` is `active`.
                    (None, Some((key, want))) => items.iter().find(|e| {
                        e.get(key)
                            .and_then(Value::as_str)
                            .is_some_and(|v| v.eq_ignore_ascii_case(want))
                    })?,
                    (None, None) => return None,
                },
                _ => return None,
            };
        }
        Some(v)
    }
}

/// The element marked `primary` (boolean or `"true"`), else the first.
fn primary(items: &[Value]) -> Option<&Value> {
    items
        .iter()
        .find(|e| {
            matches!(e.get("primary"), Some(Value::Bool(true)))
                || e.get("primary").and_then(Value::as_str) == Some("true")
        })
        .or_else(|| items.first())
}

/// JSON scalars as text (`"x"` -> `x`, `42`, `true`); null, objects and arrays are no value.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// [`scalar_text`] of a value parsed just for this field: a string is moved, not copied.
pub fn into_scalar_text(v: Value) -> Option<String> {
    match v {
        Value::String(s) => (!s.is_empty()).then_some(s),
        other => scalar_text(&other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(path: &str) -> bool {
        JsonPath::parse(path).expect("path").names_credential()
    }

    #[test]
    fn a_credential_is_a_credential_named_leaf_or_anything_below_one_but_an_identifier() {
        for path in [
            "password",
            "access_token",
            "user.password",
            "credentials.0.value",
            "credentials.0",
            "auth.identity.password.user.password",
            "token",
            "client_secret.value",
            "sessionToken",
        ] {
            assert!(credential(path), "{path} is a credential");
        }
        for path in [
            "token.user.id",
            "token.user.name",
            "token.user.domain.id",
            "auth.identity.password.user.name",
            "auth.identity.password.user.id",
            "user.id",
            "email",
        ] {
            assert!(!credential(path), "{path} names a user, not a credential");
        }
    }
}
