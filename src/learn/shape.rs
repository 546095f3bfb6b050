//! The shape of a body: its key paths (`user.id`, `emails.0.value`) and the type of value at
//! each, never the value. Also which key names mean what (an id, a user name, an email, a
//! password, an issued token), the vocabulary the proposal is scored with.

use std::collections::BTreeMap;

use serde_json::Value;

/// Most key paths kept per body side of one endpoint and status.
pub const MAX_KEYS: usize = 96;

/// Deepest key path followed (`a.b.c.d`).
const MAX_DEPTH: usize = 6;

/// Value types seen at a key path, as bits.
pub mod types {
    /// A string.
    pub const STRING: u8 = 1;
    /// A number.
    pub const NUMBER: u8 = 2;
    /// `true` / `false`.
    pub const BOOL: u8 = 4;
    /// An object.
    pub const OBJECT: u8 = 8;
    /// An array.
    pub const ARRAY: u8 = 16;
    /// `null`.
    pub const NULL: u8 = 32;
    /// A string shaped like a JWT (three base64url parts).
    pub const JWT: u8 = 64;
    /// A string shaped like an email address.
    pub const EMAIL: u8 = 128;
}

/// What was seen at one key path: the types and how often.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyShape {
    /// [`types`] bits.
    pub types: u8,
    /// Bodies that had the key.
    pub count: u32,
}

/// Key paths of one side of an endpoint's bodies.
pub type Keys = BTreeMap<String, KeyShape>;

/// Adds the key paths of `v` to `keys` (capped at [`MAX_KEYS`]; array elements as `.0`).
pub fn add_json(keys: &mut Keys, v: &Value) {
    let mut seen: Vec<(String, u8)> = Vec::new();
    walk(v, &mut String::new(), 0, &mut seen);
    seen.sort();
    seen.dedup_by(|a, b| {
        if a.0 == b.0 {
            b.1 |= a.1;
            true
        } else {
            false
        }
    });
    for (path, t) in seen {
        add_key(keys, path, t);
    }
}

/// Adds one key path with type bits `t`.
pub fn add_key(keys: &mut Keys, path: String, t: u8) {
    let full = keys.len() >= MAX_KEYS;
    match keys.get_mut(&path) {
        Some(k) => {
            k.types |= t;
            k.count += 1;
        }
        None if !full => {
            keys.insert(path, KeyShape { types: t, count: 1 });
        }
        None => {}
    }
}

fn walk(v: &Value, prefix: &mut String, depth: usize, out: &mut Vec<(String, u8)>) {
    match v {
        Value::Object(map) if depth < MAX_DEPTH => {
            for (k, child) in map.iter().take(MAX_KEYS) {
                if !is_key_word(k) {
                    continue;
                }
                let len = prefix.len();
                if !prefix.is_empty() {
                    prefix.push('.');
                }
                prefix.push_str(k);
                out.push((prefix.clone(), type_of(child)));
                walk(child, prefix, depth + 1, out);
                prefix.truncate(len);
            }
        }
        Value::Array(items) if depth < MAX_DEPTH => {
            if let Some(first) = items.first() {
                let len = prefix.len();
                if !prefix.is_empty() {
                    prefix.push('.');
                }
                prefix.push('0');
                out.push((prefix.clone(), type_of(first)));
                walk(first, prefix, depth + 1, out);
                prefix.truncate(len);
            }
        }
        _ => {}
    }
}

/// A key name worth keeping: an identifier (letters, digits, `_`, `-`, `:`, `$`), at most 48
/// characters. A map keyed by values (`{"ann@example.com": …}`) is a value, not a shape.
fn is_key_word(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 48
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'$'))
        && !k.contains("@")
        && super::segment::classify(k) == super::segment::Kind::Word
}

/// The [`types`] bit of a value (strings that look like a JWT get [`types::JWT`] too).
pub fn type_of(v: &Value) -> u8 {
    match v {
        Value::String(s) if looks_like_jwt(s) => types::STRING | types::JWT,
        Value::String(s) if looks_like_email(s) => types::STRING | types::EMAIL,
        Value::String(_) => types::STRING,
        Value::Number(_) => types::NUMBER,
        Value::Bool(_) => types::BOOL,
        Value::Object(_) => types::OBJECT,
        Value::Array(_) => types::ARRAY,
        Value::Null => types::NULL,
    }
}

/// `local@domain.tld`, nothing else around it.
pub fn looks_like_email(s: &str) -> bool {
    s.len() <= 254
        && !s.contains(char::is_whitespace)
        && super::segment::classify(s) == super::segment::Kind::Email
}

/// Three dot-separated base64url parts, the first starting a JSON object (`eyJ`).
pub fn looks_like_jwt(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && s.starts_with("eyJ")
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'='))
        })
}

/// The last name of a key path, lower-cased, without `_` and `-` (`user.user_name` ->
/// `username`).
pub fn leaf(path: &str) -> String {
    path.rsplit('.')
        .next()
        .unwrap_or(path)
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .collect::<String>()
        .to_ascii_lowercase()
}

/// What a key path means to the proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Meaning {
    /// The user's id (`id`, `user.id`, `user_id`, `uid`, `sub`).
    Id,
    /// The user's login name (`username`, `userName`, `login`, `preferred_username`).
    Name,
    /// The user's email.
    Email,
    /// Given name.
    FirstName,
    /// Family name.
    LastName,
    /// A password the client sends.
    Password,
    /// A credential the IAM issues (`token`, `access_token`, `session_token`).
    Token,
    /// When a credential expires (`expires_in`, `expires_at`).
    Expiry,
}

/// The meaning of key path `path`, if any. Only the last two names count (`user.id` is an
/// id, `org.owner.id` is not, nor is `client.id`).
pub fn meaning(path: &str) -> Option<Meaning> {
    let names: Vec<&str> = path.split('.').filter(|n| *n != "0").collect();
    let leaf_name = leaf(path);
    let parent = names
        .len()
        .checked_sub(2)
        .map(|i| leaf(names[i]))
        .unwrap_or_default();
    let user_parent = parent.is_empty()
        || matches!(
            parent.as_str(),
            "user" | "data" | "result" | "account" | "profile" | "identity" | "human" | "details"
        );
    if credential_word(&leaf_name) {
        return Some(Meaning::Token);
    }
    if names.iter().any(|n| credential_word(&leaf(n))) && parent != "user" {
        // below a token or password: only its `user.*` names a user (`token.user.id`)
        return None;
    }
    let m = match leaf_name.as_str() {
        "id" | "userid" | "uid" | "sub" | "uuid" if user_parent || leaf_name != "id" => Meaning::Id,
        "username" | "login" | "preferredusername" | "loginname" | "name" | "nickname"
            if user_parent =>
        {
            Meaning::Name
        }
        "email" | "mail" | "emailaddress" if user_parent => Meaning::Email,
        "firstname" | "givenname" if user_parent || parent == "name" => Meaning::FirstName,
        "lastname" | "familyname" | "surname" if user_parent || parent == "name" => {
            Meaning::LastName
        }
        "password" | "passwd" | "pass" | "newpassword" | "currentpassword" | "oldpassword"
        | "secret" => Meaning::Password,
        "expiresin" | "expiresat" | "expires" | "expiry" | "expiration" => Meaning::Expiry,
        _ => return None,
    };
    Some(m)
}

/// An issued credential's key name (`token`, `access_token`, `session_token`,
/// `refresh_token`, `id_token`, `session`).
fn credential_word(leaf: &str) -> bool {
    matches!(
        leaf,
        "token" | "accesstoken" | "sessiontoken" | "sessionid" | "authtoken" | "jwt" | "sid"
    ) || (leaf.ends_with("token") && !leaf.starts_with("csrf") && leaf != "tokentype")
}

/// A header or cookie name that carries a session or token (`x-subject-token`, `sid`,
/// `session`, `i_like_gitea`, `better-auth.session_token`, `fastapiusersauth`).
pub fn credential_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "token", "session", "sess", "sid", "auth", "jwt", "like", "login",
    ]
    .iter()
    .any(|w| n.contains(w))
        && !n.contains("csrf")
        && !n.contains("xsrf")
        && n != "authorization"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes_keep_names_and_types_never_values() {
        let mut keys = Keys::new();
        add_json(
            &mut keys,
            &json!({"id": 7, "user": {"email": "CANARY-ann@example.com", "roles": ["a"]},
                    "token": "eyJhbGciOi.eyJzdWIiOi.c2ln", "ann@example.com": 1}),
        );
        let names: Vec<&str> = keys.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "id",
                "token",
                "user",
                "user.email",
                "user.roles",
                "user.roles.0"
            ]
        );
        assert_eq!(keys["id"].types, types::NUMBER);
        assert_eq!(keys["token"].types, types::STRING | types::JWT);
        let text = format!("{keys:?}");
        assert!(!text.contains("CANARY"));
    }

    #[test]
    fn meanings() {
        assert_eq!(meaning("id"), Some(Meaning::Id));
        assert_eq!(meaning("user.id"), Some(Meaning::Id));
        assert_eq!(meaning("data.user_id"), Some(Meaning::Id));
        assert_eq!(meaning("org.id"), None);
        assert_eq!(meaning("userName"), Some(Meaning::Name));
        assert_eq!(meaning("emails.0.value"), None);
        assert_eq!(meaning("name.givenName"), Some(Meaning::FirstName));
        assert_eq!(meaning("password"), Some(Meaning::Password));
        assert_eq!(meaning("access_token"), Some(Meaning::Token));
        assert_eq!(meaning("token.user.id"), Some(Meaning::Id));
        assert_eq!(meaning("token.methods.0"), None);
        assert_eq!(meaning("csrf_token"), None);
        assert!(credential_name("i_like_gitea") && credential_name("X-Subject-Token"));
        assert!(credential_name("better-auth.session_token") && !credential_name("_csrf"));
    }
}
