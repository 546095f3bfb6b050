//! The path detection matches: the request path as an IAM that normalises it would route it,
//! so `//users`, `/./users`, `/x/../users` and `/%75sers` are all `/users`.
//!
//! RFC 3986 §6.2.2 normalisation: percent-encoded unreserved characters decoded (and the hex
//! of the others upper-cased), repeated slashes merged (as nginx's `merge_slashes`), dot
//! segments removed (§5.2.4). An encoded `/` (`%2F`) stays encoded: it is part of its segment
//! and never splits one. The forwarded request is never touched: this is only what rules are
//! matched against. Never: allocate for a path that is already normal (most traffic).

use std::borrow::Cow;

/// `path` (no query) as rules match it; borrowed, without allocating, when already normal.
pub fn detection_path(path: &str) -> Cow<'_, str> {
    if is_normal(path) {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(normalise(path))
    }
}

/// `path` with every encoded `/` (`%2F`, `%2f`) decoded, for the paths that have one: what an
/// IAM that decodes before routing (Go's `net/http` cleans `/%2fusers` to `/users`) would
/// see. Detection itself never splits a segment on it; the proxy refuses a request whose
/// path only this reading matches to a rule, so no spelling of a detected call reaches the
/// IAM undetected.
pub fn with_encoded_slashes_decoded(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let has = bytes
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'2' && (w[2] == b'f' || w[2] == b'F'));
    has.then(|| path.replace("%2F", "/").replace("%2f", "/"))
}

/// No `%`, no empty segment inside the path, no `.` or `..` segment. One pass over the bytes
/// (every request takes it, and most paths are short and normal).
fn is_normal(path: &str) -> bool {
    let bytes = path.as_bytes();
    // Most paths have no `%`, no `.` and no `//`: one tight pass says so.
    let mut slash = false;
    let mut plain = true;
    for &b in bytes {
        if b == b'%' || b == b'.' || (slash && b == b'/') {
            plain = false;
            break;
        }
        slash = b == b'/';
    }
    if plain {
        return true;
    }
    // Segments after the leading slash; the last may be empty (a trailing slash).
    let mut start = usize::from(bytes.first() == Some(&b'/'));
    let mut at = start;
    loop {
        let end = at == bytes.len();
        let byte = bytes.get(at).copied().unwrap_or(b'/');
        if byte == b'%' {
            return false;
        }
        if byte == b'/' {
            let segment = &bytes[start..at];
            if segment == b"." || segment == b".." || (segment.is_empty() && !end) {
                return false;
            }
            if end {
                return true;
            }
            start = at + 1;
        }
        at += 1;
    }
}

/// `path` up to its query, if it has one. A byte scan: a path is short, and a `char` search
/// costs more to set up than to run on it.
pub fn without_query(path: &str) -> &str {
    match path.bytes().position(|b| b == b'?') {
        Some(i) => &path[..i],
        None => path,
    }
}

/// The normal form of a path [`is_normal`] refused.
fn normalise(path: &str) -> String {
    let decoded = decode_unreserved(path);
    let trailing = decoded.ends_with('/')
        || decoded.ends_with("/.")
        || decoded.ends_with("/..")
        || decoded == "."
        || decoded == "..";
    let mut out: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut text = String::with_capacity(decoded.len() + 1);
    for segment in &out {
        text.push('/');
        text.push_str(segment);
    }
    if trailing || out.is_empty() {
        text.push('/');
    }
    text
}

/// `%XX` of an unreserved character (ALPHA, DIGIT, `-`, `.`, `_`, `~`) decoded; any other
/// `%XX` kept with upper-case hex; a `%` not followed by two hex digits kept as it is.
fn decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                let c = hi << 4 | lo;
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(c));
                } else {
                    out.push('%');
                    out.push(char::from(bytes[i + 1].to_ascii_uppercase()));
                    out.push(char::from(bytes[i + 2].to_ascii_uppercase()));
                }
                i += 3;
                continue;
            }
        }
        // Only ASCII is ever pushed from here: a request path is ASCII (hyper refuses the rest).
        out.push(char::from(b));
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_path_normalise_to_it() {
        for spelling in [
            "//users",
            "/./users",
            "/x/../users",
            "/%75sers",
            "/%75%73%65%72%73",
            "/users/.",
            "///users//",
            "/../users",
            "/a/b/../../users",
        ] {
            let normal = detection_path(spelling);
            assert!(
                normal == "/users" || normal == "/users/",
                "{spelling} -> {normal}"
            );
            assert!(matches!(normal, Cow::Owned(_)), "{spelling}");
        }
    }

    /// The one-pass check against the plain reading of its rule: split on `/`, refuse a `%`,
    /// a `.` or `..` segment, or an empty one that is not last.
    #[test]
    fn the_one_pass_check_agrees_with_splitting_into_segments() {
        fn by_segments(path: &str) -> bool {
            if path.contains('%') {
                return false;
            }
            let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
            segments
                .iter()
                .enumerate()
                .all(|(i, s)| *s != "." && *s != ".." && (!s.is_empty() || i + 1 == segments.len()))
        }
        for path in [
            "",
            "/",
            "//",
            "/a",
            "a",
            "a/",
            "/a/",
            "/a//b",
            "/a/b/",
            "/.",
            "/..",
            ".",
            "..",
            "./a",
            "../a",
            "/a/.",
            "/a/..",
            "/a/./b",
            "/a/../b",
            "/a/.b",
            "/a/..b",
            "/a/b.",
            "/.a",
            "/...",
            "/a%41",
            "%",
            "/a/b/c?x=1",
            "/users/42",
            "/a//",
            "/./",
            "///",
        ] {
            assert_eq!(is_normal(path), by_segments(path), "{path:?}");
        }
    }

    #[test]
    fn the_query_is_cut_at_its_first_question_mark() {
        assert_eq!(without_query("/users?x=1?y"), "/users");
        assert_eq!(without_query("/users"), "/users");
        assert_eq!(without_query("?"), "");
    }

    #[test]
    fn an_encoded_slash_never_splits_a_segment() {
        assert_eq!(detection_path("/%2fusers"), "/%2Fusers");
        assert_eq!(detection_path("/a%2F..%2Fusers"), "/a%2F..%2Fusers");
        assert_eq!(detection_path("/100%"), "/100%");
        assert_eq!(detection_path("/%zz"), "/%zz");
    }

    #[test]
    fn encoded_slashes_decode_only_when_present() {
        assert_eq!(
            with_encoded_slashes_decoded("/%2fusers").as_deref(),
            Some("//users")
        );
        assert_eq!(
            with_encoded_slashes_decoded("/a%2F..%2Fusers").as_deref(),
            Some("/a/../users")
        );
        assert_eq!(with_encoded_slashes_decoded("/users/%41"), None);
        assert_eq!(with_encoded_slashes_decoded("/100%2"), None);
    }

    #[test]
    fn a_normal_path_is_borrowed() {
        for path in [
            "/",
            "/users",
            "/users/",
            "/realms/acme/users/42",
            "/a.b/c..d/.e",
        ] {
            assert!(
                matches!(detection_path(path), Cow::Borrowed(p) if p == path),
                "{path}"
            );
        }
        assert_eq!(detection_path("/."), "/");
        assert_eq!(detection_path("/.."), "/");
    }
}
