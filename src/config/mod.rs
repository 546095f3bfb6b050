//! Loading `userhook.yaml`: parse, interpolate `${VAR}`, deserialize, validate.
//!
//! Loading never touches running state: it returns a [`ConfigFile`] or every problem found,
//! each with its key path. [`read_str`] only parses; [`parse_str`] also checks the file-level
//! settings. Compiling a file into the snapshot the proxy uses, with every other check, is
//! the snapshot compiler, a layer above. Errors must never contain a value that came from
//! the environment (it may be a secret): they are scrubbed before they leave this module.
//!
//! The route: YAML text -> `serde_json::Value` (strict YAML 1.2 booleans, duplicate keys are
//! errors) -> `${VAR}` on string values only -> `ConfigFile` via `serde_path_to_error`, so
//! type errors and unknown keys carry paths such as `webhooks[1].timeout` -> [`validate`].
//! The built-in profile files take the same route without `${VAR}` (`parse_yaml_as`), their
//! `routes:` being the same `RouteSpec`s, so a rule means in a profile what it means in a config.

pub mod condition_spec;
pub mod env_values;
pub mod error;
pub mod identity_spec;
pub mod interpolate;
pub mod model;
pub mod one_or_many;
pub mod pace_spec;
pub mod profile_spec;
pub mod subscription;
pub mod summary;
pub mod units;
pub mod url;
pub mod validate;

pub use error::{ConfigError, ConfigErrors};
pub use model::{ClientSpec, ConfigFile, ListenerTlsSpec};

/// Parses and validates config text, reading `${VAR}` from the process environment.
pub fn parse_str(text: &str) -> Result<ConfigFile, ConfigErrors> {
    parse_str_with_env(text, &|name| std::env::var(name).ok())
}

/// [`parse_str`] with the environment supplied by the caller, so tests (and tools that
/// render a config for another environment) need not touch the process environment.
pub fn parse_str_with_env(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<ConfigFile, ConfigErrors> {
    let file = read_str_with_env(text, lookup)?;
    let problems = validate::validate(&file);
    if problems.is_empty() {
        Ok(file)
    } else {
        Err(ConfigErrors(
            problems
                .into_iter()
                .map(|e| file.env_values.scrub_error(e))
                .collect(),
        ))
    }
}

/// Parses config text (YAML, `${VAR}` from the process environment, the model's types)
/// without checking what the values mean: the first step of the snapshot compiler,
/// which then reports every problem at once.
pub fn read_str(text: &str) -> Result<ConfigFile, ConfigErrors> {
    read_str_with_env(text, &|name| std::env::var(name).ok())
}

/// [`read_str`] with the environment supplied by the caller.
pub fn read_str_with_env(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<ConfigFile, ConfigErrors> {
    let mut doc = parse_yaml(text)?;
    if doc.is_null() {
        return Err(ConfigError::new(
            "",
            "the config file is empty; at least `upstream` is required",
        )
        .into());
    }
    if !doc.is_object() {
        return Err(ConfigError::new(
            "",
            "the config file must be a mapping of keys such as `upstream: http://127.0.0.1:8081`",
        )
        .into());
    }
    let subs = interpolate::interpolate(&mut doc, lookup).map_err(ConfigErrors)?;
    let mut file: ConfigFile = deserialize(doc)
        .map_err(|e| ConfigErrors(vec![model::EnvValues(subs.clone()).scrub_error(e)]))?;
    file.env_values = model::EnvValues(subs);
    Ok(file)
}

/// YAML text to `T` the way a config file's text becomes a [`ConfigFile`] (same YAML
/// options, unknown keys are errors, key paths in errors), without `${VAR}` interpolation or
/// validation: how the built-in profile files, routes in the config's syntax, are read.
pub(crate) fn parse_yaml_as<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ConfigErrors> {
    deserialize(parse_yaml(text)?).map_err(ConfigErrors::from)
}

/// A parsed document to `T`; a type error or unknown key carries its key path.
fn deserialize<T: serde::de::DeserializeOwned>(doc: serde_json::Value) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let mut message = e.into_inner().to_string();
        if message.ends_with("expected a boolean") {
            message.push_str(" (write true or false)");
        }
        ConfigError::new(path, message)
    })
}

/// YAML text to a JSON value, with line and column on syntax errors.
fn parse_yaml(text: &str) -> Result<serde_json::Value, ConfigErrors> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        // The file may hold secrets: never echo its lines into a log.
        with_snippet: false,
    };
    serde_saphyr::from_str_with_options::<serde_json::Value>(text, options).map_err(|e| {
        let place = e
            .location()
            .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
            .unwrap_or_default();
        let message = e.without_snippet().to_string();
        // The library's advice is for programmers, not for someone editing the file.
        let message = message.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
        // Some messages already end with their location; avoid saying it twice.
        let message = if !place.is_empty() && message.contains(&place.trim_start().to_string()) {
            message
        } else {
            format!("{message}{place}")
        };
        ConfigError::new("", format!("invalid YAML: {message}")).into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn parse(text: &str) -> Result<ConfigFile, ConfigErrors> {
        parse_str_with_env(text, &env(&[]))
    }

    fn errors(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn reference_config_is_valid() {
        let text = include_str!("../../config/userhook.yaml");
        let file = parse_str_with_env(text, &env(&[])).map_err(|e| e.to_string());
        let file = match file {
            Ok(f) => f,
            Err(e) => panic!("reference config invalid:\n{e}"),
        };
        assert_eq!(file.upstream, "http://127.0.0.1:8081");
        assert!(!file.webhooks.is_empty());
        assert!(!file.routes.is_empty());
        assert!(file.webhooks.iter().any(|w| w.url.ends_with("key=demo")));
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let file = parse("upstream: http://127.0.0.1:8081\n").map_err(|e| e.to_string());
        let file = file.as_ref().map_err(String::as_str);
        let Ok(file) = file else { panic!("{file:?}") };
        assert_eq!(file.listen, "0.0.0.0:8080");
        assert_eq!(file.admin.listen, "127.0.0.1:9090");
        assert!(file.preserve_host);
        assert_eq!(file.capture_limit.0, 1 << 20);
        assert_eq!(file.delivery.guarantee, "fast");
    }

    #[test]
    fn integers_and_booleans_survive() {
        let text = "upstream: http://u:1\npreserve_host: false\nroutes:\n  - {action: created, method: POST, path: /users, status: [201, 200]}\ncapture_limit: 4096\n";
        let file = parse(text).map_err(|e| e.to_string());
        let Ok(file) = file else { panic!("{file:?}") };
        assert!(!file.preserve_host);
        assert_eq!(file.routes[0].status, Some(vec![201, 200]));
        assert_eq!(file.capture_limit.0, 4096);
    }

    #[test]
    fn unknown_key_names_path_and_expected_keys() {
        let errs = errors("upstream: http://u:1\nwebhooks:\n  - name: a\n    actions: ['*']\n    url: http://x\n    retyr: {attempts: 2}\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("webhooks[0]"), "{errs:?}");
        assert!(errs[0].contains("unknown field `retyr`"), "{errs:?}");
        assert!(errs[0].contains("`retry`"), "{errs:?}");
    }

    #[test]
    fn unknown_top_level_key() {
        let errs = errors("upstream: http://u:1\nlistne: 1.2.3.4:5\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("unknown field `listne`"), "{errs:?}");
        assert!(errs[0].contains("`listen`"), "{errs:?}");
    }

    #[test]
    fn type_error_names_path() {
        let errs = errors("upstream: http://u:1\nwebhooks:\n  - {name: a, actions: ['*'], url: http://x}\n  - {name: b, actions: ['*'], url: http://x, timeout: soon}\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("webhooks[1].timeout: "), "{errs:?}");
        assert!(errs[0].contains("not a duration"), "{errs:?}");
    }

    #[test]
    fn strict_booleans() {
        let errs = errors("upstream: http://u:1\npreserve_host: yes\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(
            errs[0],
            "preserve_host: invalid type: string \"yes\", expected a boolean (write true or false)"
        );
        // `on`/`yes` stay strings where a string is expected.
        let file = parse("upstream: http://u:1\nroutes:\n  - {action: login, method: POST, path: /l, when: {request.form.x: on}}\n");
        let Ok(file) = file else { panic!("{file:?}") };
        let when = &file.routes[0].when["request.form.x"];
        assert_eq!(when, &model::ConditionSpec::Equals(vec!["on".to_string()]));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let errs = errors("upstream: http://u:1\nlisten: 0.0.0.0:1\nlisten: 0.0.0.0:2\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(
            errs,
            vec!["invalid YAML: duplicate mapping key: listen at line 3, column 1".to_string()]
        );
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let errs = errors("upstream: http://u:1\nroutes: [\n  {a: b\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("line "), "{errs:?}");
        assert!(errs[0].contains("column "), "{errs:?}");
    }

    #[test]
    fn non_mapping_file_is_an_error() {
        let errs = errors("- a\n");
        assert_eq!(
            errs,
            vec!["the config file must be a mapping of keys such as `upstream: http://127.0.0.1:8081`".to_string()]
        );
    }

    #[test]
    fn empty_file_is_an_error() {
        let errs = errors("");
        assert_eq!(
            errs,
            vec!["the config file is empty; at least `upstream` is required".to_string()]
        );
    }

    #[test]
    fn missing_env_variable_is_reported_with_path() {
        let errs = errors("upstream: http://u:1\nwebhooks:\n  - {name: a, actions: ['*'], url: 'https://x/send?key=${WECOM_KEY}'}\n");
        assert_eq!(
            errs,
            vec!["webhooks[0].url: environment variable `WECOM_KEY` is not set; set it or write `${WECOM_KEY:-default}`".to_string()]
        );
    }

    #[test]
    fn env_value_with_newline_stays_a_string() {
        let text = "upstream: http://u:1\nwebhooks:\n  - name: a\n    actions: ['*']\n    url: http://x\n    body: '${NOTE}'\n";
        let file = parse_str_with_env(text, &env(&[("NOTE", "a: b\nlisten: 1")]));
        let Ok(file) = file else { panic!("{file:?}") };
        assert_eq!(file.webhooks[0].body.as_deref(), Some("a: b\nlisten: 1"));
        assert_eq!(file.listen, "0.0.0.0:8080");
    }

    #[test]
    fn profile_long_form_unknown_key() {
        let errs =
            errors("upstream: http://u:1\nprofiles:\n  - keycloak\n  - {name: scim, base: /v2}\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("profiles[1]"), "{errs:?}");
        assert!(errs[0].contains("unknown field `base`"), "{errs:?}");
    }
}
