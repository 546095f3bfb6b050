//! What one path segment looks like: an identifier (numeric, UUID of any version, ULID, long
//! hex, email, opaque token) or a word, and how a parameter is named from its parent.
//!
//! Pure functions over one segment's text; nothing is kept. A segment classified as an
//! identifier becomes a parameter at once; a word only when its siblings prove it varies
//! (`paths`).

/// The kind of value a parameter holds, as its segments looked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Digits only (`42`).
    Numeric,
    /// A UUID of any version, hyphenated (`0192f…-7…`, v4 and v7 alike).
    Uuid,
    /// A ULID (26 Crockford base-32 characters).
    Ulid,
    /// At least 16 hex digits (`5f1e…`, Mongo ids, SHA-1s).
    Hex,
    /// An email address (`ann@example.com`, maybe percent-encoded).
    Email,
    /// Long mixed letters and digits, no word (`aB3xY9…`, Zitadel ids, short links).
    Opaque,
    /// A word: a literal until siblings show it varies.
    Word,
}

impl Kind {
    /// The name shown in the proposal's comments.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Numeric => "numeric",
            Kind::Uuid => "uuid",
            Kind::Ulid => "ulid",
            Kind::Hex => "hex",
            Kind::Email => "email",
            Kind::Opaque => "opaque",
            Kind::Word => "word",
        }
    }

    /// An identifier kind: a parameter on first sight.
    pub fn is_identifier(self) -> bool {
        self != Kind::Word
    }
}

/// Classifies one (still percent-encoded) segment.
pub fn classify(segment: &str) -> Kind {
    let s = segment;
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return Kind::Numeric;
    }
    if is_uuid(s) {
        return Kind::Uuid;
    }
    if is_ulid(s) {
        return Kind::Ulid;
    }
    if s.len() >= 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Kind::Hex;
    }
    if is_email(s) {
        return Kind::Email;
    }
    if is_opaque(s) {
        return Kind::Opaque;
    }
    Kind::Word
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_ulid(s: &str) -> bool {
    // Crockford base-32: digits and letters without I, L, O, U; the first char is 0-7.
    let crockford = |c: u8| {
        let c = c.to_ascii_uppercase();
        c.is_ascii_digit() || (c.is_ascii_uppercase() && !matches!(c, b'I' | b'L' | b'O' | b'U'))
    };
    let b = s.as_bytes();
    b.len() == 26
        && matches!(b[0], b'0'..=b'7')
        && b.iter().all(|c| crockford(*c))
        && b.iter().any(u8::is_ascii_digit)
}

fn is_email(s: &str) -> bool {
    let s = s
        .replace("%40", "@")
        .replace("%40".to_uppercase().as_str(), "@");
    match s.split_once('@') {
        Some((local, domain)) => !local.is_empty() && domain.contains('.') && !domain.contains('@'),
        None => false,
    }
}

/// Ten or more characters mixing letters and digits (or `-`/`_` between them), with at least
/// three digits: generated ids, not words like `sign-in` or `v2`.
fn is_opaque(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let letters = b.iter().filter(|c| c.is_ascii_alphabetic()).count();
    b.len() >= 10
        && digits >= 3
        && letters >= 1
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A segment that is never a parameter: a version (`v1`, `v2beta`) or `api`.
pub fn is_version(segment: &str) -> bool {
    let s = segment.to_ascii_lowercase();
    if s == "api" || s == "rest" {
        return true;
    }
    let mut chars = s.chars();
    chars.next() == Some('v')
        && chars.clone().next().is_some_and(|c| c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '.')
}

/// The word a plural collection's member is named by: `users` -> `user`, `identities` ->
/// `identity`, `realms` -> `realm`; a non-plural is kept.
pub fn singular(word: &str) -> String {
    let w = word.to_ascii_lowercase();
    if let Some(stem) = w.strip_suffix("ies").filter(|s| !s.is_empty()) {
        return format!("{stem}y");
    }
    if let Some(stem) = w.strip_suffix("sses") {
        return format!("{stem}ss");
    }
    if let Some(stem) = w
        .strip_suffix('s')
        .filter(|s| !s.is_empty() && !s.ends_with('s'))
    {
        return stem.to_owned();
    }
    w
}

/// A plural-looking word (`users`, `Users`, `identities`): its members are parameters.
pub fn is_plural(word: &str) -> bool {
    let w = word.to_ascii_lowercase();
    w.len() > 2
        && w.ends_with('s')
        && !w.ends_with("ss")
        && w.bytes().all(|b| b.is_ascii_alphabetic())
}

/// A parameter name from its parent segment (`users` -> `user`), letters, digits and `_`
/// only; `id` when the parent gives nothing usable.
pub fn param_name(parent: Option<&str>) -> String {
    let base = parent.map(singular).unwrap_or_default();
    let name: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let name = name.trim_matches('_').to_owned();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        "id".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_of_every_kind() {
        assert_eq!(classify("42"), Kind::Numeric);
        // v4 and v7 alike
        assert_eq!(classify("9b2f4c1e-8d3a-4f6b-9c7e-1a2b3c4d5e6f"), Kind::Uuid);
        assert_eq!(classify("0192f3a4-5b6c-7d8e-9f01-23456789abcd"), Kind::Uuid);
        assert_eq!(classify("01ARZ3NDEKTSV4RRFFQ69G5FAV"), Kind::Ulid);
        assert_eq!(classify("5f1e2d3c4b5a69788796a5b4"), Kind::Hex);
        assert_eq!(classify("ann@example.com"), Kind::Email);
        assert_eq!(classify("ann%40example.com"), Kind::Email);
        assert_eq!(classify("291847362918473629"), Kind::Numeric);
        assert_eq!(classify("aB3xY9kQ2z7W"), Kind::Opaque);
        for word in [
            "users",
            "sign-in",
            "v1",
            "me",
            "realms",
            "token",
            "openid-connect",
        ] {
            assert_eq!(classify(word), Kind::Word, "{word}");
        }
    }

    #[test]
    fn versions_and_names() {
        assert!(is_version("v1") && is_version("V2") && is_version("api") && is_version("v2beta1"));
        assert!(!is_version("users") && !is_version("values"));
        assert_eq!(param_name(Some("users")), "user");
        assert_eq!(param_name(Some("Users")), "user");
        assert_eq!(param_name(Some("identities")), "identity");
        assert_eq!(param_name(Some("addresses")), "address");
        assert_eq!(param_name(Some("admin")), "admin");
        assert_eq!(param_name(Some("oauth-clients")), "oauth_client");
        assert_eq!(param_name(None), "id");
        assert!(
            is_plural("users") && is_plural("Groups") && !is_plural("access") && !is_plural("v1")
        );
    }
}
