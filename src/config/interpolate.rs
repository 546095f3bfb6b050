//! `${VAR}` and `${VAR:-default}`: environment values in the config, applied after parsing.
//!
//! Interpolation runs on the string *values* of the already-parsed document, never on the YAML
//! text, so an environment value holding `:`, `#` or a newline stays one string and can never
//! change the file's structure. Only exactly those two forms are recognised: DCE templates
//! (`{{$$.Name$$}}`), a lone `$` or `$$`, and `${` not followed by a valid name pass through
//! untouched. This module must never put an environment value into an error message: callers
//! use the returned [`Substitution`]s to scrub messages produced later.

use serde_json::Value;

use super::error::ConfigError;

/// One environment value that went into the config, remembered so that error messages about
/// the config can be scrubbed of it (it may be a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substitution {
    /// Key path of the string that received the value, e.g. `webhooks[0].url`.
    pub path: String,
    /// The variable's name, safe to print.
    pub var: String,
    /// The value taken from the environment; never print it.
    pub value: String,
}

/// Replaces every `${VAR}` / `${VAR:-default}` in the string values of `doc`, in place.
///
/// `lookup` reads a variable (the process environment in production, a map in tests).
/// `${VAR:-default}` uses the default when the variable is unset *or empty*, as a shell does.
/// Returns the substitutions made from the environment, or one error per string that names an
/// unset variable without a default.
pub fn interpolate(
    doc: &mut Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Substitution>, Vec<ConfigError>> {
    let mut subs = Vec::new();
    let mut errors = Vec::new();
    let mut path = String::new();
    walk(doc, &mut path, lookup, &mut subs, &mut errors);
    if errors.is_empty() {
        Ok(subs)
    } else {
        Err(errors)
    }
}

fn walk(
    value: &mut Value,
    path: &mut String,
    lookup: &dyn Fn(&str) -> Option<String>,
    subs: &mut Vec<Substitution>,
    errors: &mut Vec<ConfigError>,
) {
    match value {
        Value::String(s) => {
            if !s.contains("${") {
                return;
            }
            match expand(s, lookup) {
                Ok((text, used)) => {
                    *s = text;
                    subs.extend(used.into_iter().map(|(var, value)| Substitution {
                        path: path.clone(),
                        var,
                        value,
                    }));
                }
                Err(var) => errors.push(ConfigError::new(
                    path.clone(),
                    format!(
                        "environment variable `{var}` is not set; set it or write `${{{var}:-default}}`"
                    ),
                )),
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path, lookup, subs, errors);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                walk(item, path, lookup, subs, errors);
                path.truncate(len);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Expands one string. Ok: the new text and the `(var, value)` pairs taken from the
/// environment (defaults are the file's own text and are not listed). Err: the first unset
/// variable that has no default.
fn expand(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<(String, String)>), String> {
    let mut out = String::with_capacity(text.len());
    let mut used = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match parse_reference(after) {
            Some((name, default, consumed)) => {
                let found = lookup(name);
                let value = match (found, default) {
                    (Some(v), Some(d)) if v.is_empty() => d.to_string(),
                    (Some(v), _) => {
                        used.push((name.to_string(), v.clone()));
                        v
                    }
                    (None, Some(d)) => d.to_string(),
                    (None, None) => return Err(name.to_string()),
                };
                out.push_str(&value);
                rest = &after[consumed..];
            }
            None => {
                // Not our syntax: keep `${` literally and continue after it.
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok((out, used))
}

/// Parses `NAME}` or `NAME:-default}` at the start of `s` (just after `${`).
/// Returns the name, the default if any, and the bytes consumed including the `}`.
fn parse_reference(s: &str) -> Option<(&str, Option<&str>, usize)> {
    let name_len = s
        .char_indices()
        .find(|&(i, c)| {
            let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
            !ok
        })
        .map_or(s.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let name = &s[..name_len];
    let tail = &s[name_len..];
    if tail.starts_with('}') {
        return Some((name, None, name_len + 1));
    }
    let default_src = tail.strip_prefix(":-")?;
    let end = default_src.find('}')?;
    Some((name, Some(&default_src[..end]), name_len + 2 + end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn run(doc: Value, pairs: &[(&str, &str)]) -> Result<Value, Vec<ConfigError>> {
        let mut doc = doc;
        let lookup = env(pairs);
        interpolate(&mut doc, &lookup).map(|_| doc)
    }

    #[test]
    fn set_variable_is_substituted() {
        let out = run(
            json!({"url": "https://x/send?key=${KEY}"}),
            &[("KEY", "abc")],
        );
        assert_eq!(out, Ok(json!({"url": "https://x/send?key=abc"})));
    }

    #[test]
    fn default_used_when_unset_or_empty() {
        let doc = json!({"a": "${A:-demo}", "b": "${B:-x:y}", "c": "${C:-}"});
        assert_eq!(
            run(doc.clone(), &[("B", "")]),
            Ok(json!({"a": "demo", "b": "x:y", "c": ""}))
        );
        assert_eq!(
            run(doc, &[("A", "set")]),
            Ok(json!({"a": "set", "b": "x:y", "c": ""}))
        );
    }

    #[test]
    fn unset_without_default_names_path_and_variable() {
        let out = run(
            json!({"webhooks": [{"url": "ok"}, {"secret": "${SIGNING_SECRET}"}]}),
            &[],
        );
        assert_eq!(
            out,
            Err(vec![ConfigError::new(
                "webhooks[1].secret",
                "environment variable `SIGNING_SECRET` is not set; set it or write `${SIGNING_SECRET:-default}`"
            )])
        );
    }

    #[test]
    fn templates_and_dollars_untouched() {
        let body =
            r#"{"content":"{{$$.Name$$}} {{$$.ID$$}} costs $$ and $5 ${ not} ${1X} ${A-b}"}"#;
        let out = run(json!({ "body": body }), &[("A", "zzz")]);
        assert_eq!(out, Ok(json!({ "body": body })));
    }

    #[test]
    fn env_value_with_newline_and_colon_stays_one_string() {
        let out = run(
            json!({"name": "${V}", "n": 5, "b": false}),
            &[("V", "a: b\n- c\nkey: ${OTHER}")],
        );
        // The value is inserted verbatim and not expanded again.
        assert_eq!(
            out,
            Ok(json!({"name": "a: b\n- c\nkey: ${OTHER}", "n": 5, "b": false}))
        );
    }

    #[test]
    fn substitutions_are_reported_without_defaults() {
        let mut doc = json!({"h": {"Authorization": "Bearer ${TOKEN}"}, "x": "${D:-def}"});
        let lookup = env(&[("TOKEN", "s3cr3t")]);
        let subs = interpolate(&mut doc, &lookup);
        assert_eq!(
            subs,
            Ok(vec![Substitution {
                path: "h.Authorization".into(),
                var: "TOKEN".into(),
                value: "s3cr3t".into()
            }])
        );
    }

    #[test]
    fn several_references_in_one_string() {
        let out = run(json!(["${A}-${B:-b}-${A}"]), &[("A", "1")]);
        assert_eq!(out, Ok(json!(["1-b-1"])));
    }
}
