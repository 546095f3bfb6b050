//! How a config names a built-in profile: `keycloak`, or `{name: scim, base_path: /v2}`.
//!
//! Only the spelling; which profiles exist and what they mean is detection's business. A typo in
//! the long form must be reported as the unknown key it is.

use serde::{Deserialize, Serialize};

/// A profile reference: `keycloak` or `{name: scim, base_path: /v2}`.
///
/// Deserialized by hand (not `untagged`) so a typo in the long form is reported as the
/// unknown key it is, not as "did not match any variant".
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ProfileSpec {
    /// Just the name: the profile's default base path.
    Name(String),
    /// Name and a different base path.
    Full(ProfileWithPath),
}

impl<'de> Deserialize<'de> for ProfileSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = ProfileSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a profile name or {name: ..., base_path: ...}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ProfileSpec, E> {
                Ok(ProfileSpec::Name(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ProfileSpec, A::Error> {
                ProfileWithPath::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(ProfileSpec::Full)
            }
        }
        d.deserialize_any(Visit)
    }
}

/// The long form of a profile reference.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileWithPath {
    /// The built-in profile's name (`generic`, `keycloak`, `scim`, `dce`).
    pub name: String,
    /// Where the profile's paths start instead of its default base path.
    #[serde(default)]
    pub base_path: Option<String>,
}

impl ProfileSpec {
    /// The profile's name, whichever form was written.
    pub fn name(&self) -> &str {
        match self {
            ProfileSpec::Name(n) => n,
            ProfileSpec::Full(p) => &p.name,
        }
    }

    /// The base path the operator asked for, if any.
    pub fn base_path(&self) -> Option<&str> {
        match self {
            ProfileSpec::Name(_) => None,
            ProfileSpec::Full(p) => p.base_path.as_deref(),
        }
    }
}
