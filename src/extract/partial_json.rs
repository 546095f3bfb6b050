//! Recovering the complete part of a JSON document cut off by `capture_limit`.
//!
//! A truncated body must still yield the fields that were fully captured, so the prefix is cut
//! back to its last complete element and the open containers are closed. It must never invent
//! a value: a member whose value was cut is dropped, not guessed.

/// The prefix cut at its last complete element, with the open `{`/`[` closed; `None` when
/// the prefix is not an unfinished object or array.
pub fn close_prefix(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut open: Vec<u8> = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    // Last position where cutting leaves valid JSON once `open` is closed. Every push and
    // pop moves it, so the containers open at the cut are exactly those open at the end.
    let mut cut: Option<usize> = None;
    for (i, &b) in prefix.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => {
                open.push(b'}');
                cut = Some(i + 1);
            }
            b'[' => {
                open.push(b']');
                cut = Some(i + 1);
            }
            b'}' | b']' => {
                open.pop()?;
                if open.is_empty() {
                    // The document was complete: nothing to recover.
                    return None;
                }
                cut = Some(i + 1);
            }
            b',' if !open.is_empty() => cut = Some(i),
            _ => {}
        }
    }
    let cut = cut?;
    if open.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(cut + open.len());
    out.extend_from_slice(&prefix[..cut]);
    out.extend(open.iter().rev());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn recover(s: &str) -> Option<Value> {
        close_prefix(s.as_bytes()).map(|b| serde_json::from_slice(&b).expect("valid JSON"))
    }

    #[test]
    fn keeps_complete_members() {
        assert_eq!(
            recover(r#"{"id":"42","email":"a@b.c","name":"Jo"#),
            Some(json!({"id":"42","email":"a@b.c"}))
        );
        assert_eq!(
            recover(r#"{"id":"42","nested":{"a":1,"b":[1,2"#),
            Some(json!({"id":"42","nested":{"a":1,"b":[1]}}))
        );
        assert_eq!(recover(r#"{"a":{"b":1},"c"#), Some(json!({"a":{"b":1}})));
        assert_eq!(recover(r#"{"a":"x,}\"y"#), Some(json!({})));
        assert_eq!(recover(r#"{"a":"#), Some(json!({})));
        assert_eq!(recover("[1,2,3"), Some(json!([1, 2])));
        assert_eq!(recover(r#"{"a":["#), Some(json!({"a":[]})));
    }

    #[test]
    fn nothing_to_recover() {
        assert_eq!(close_prefix(b""), None);
        assert_eq!(close_prefix(b"\"abc"), None);
        assert_eq!(close_prefix(b"{}"), None);
        assert_eq!(close_prefix(b"]]]"), None);
        assert_eq!(close_prefix(b"12"), None);
    }
}
