//! One compiled rule: method, path template, outcome (status set and `when` conditions) and
//! the field sources it extracts.
//!
//! Compiling checks everything a rule says, with the config key path in every error, so a
//! loaded rule is always valid. Evaluating a rule never fails and never panics.

use http::Method;

use super::path_template::PathTemplate;
pub use super::session_rule::SessionRule;
use crate::config::model::RouteSpec;
use crate::config::ConfigError;
use crate::event::{Action, EVENT_VARIABLES};
use crate::extract::source::FieldSource;
use crate::extract::view::View;

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// Emit an event with this action.
    Event(Action),
    /// Emit nothing; the extracted fields only refresh the user cache (`action: remember`,
    /// e.g. `GET /users/{id}` responses).
    Remember,
}

/// Who wrote the rule: the operator's rules may extract credentials they name explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleOrigin {
    /// From the config's `routes:`.
    Operator,
    /// From the named built-in profile.
    Profile(&'static str),
}

/// The statuses a `login_failed` rule fires on when it lists none.
pub const LOGIN_FAILED_STATUSES: [u16; 3] = [400, 401, 403];

/// Which response statuses mean the action happened.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Statuses {
    AnySuccess,
    Listed(Vec<u16>),
}

/// A field condition: the source's value must be one of `accepted`.
#[derive(Debug, Clone)]
struct Condition {
    source: FieldSource,
    accepted: Vec<String>,
}

/// One user field and where its value may come from, in order.
#[derive(Debug, Clone)]
pub struct FieldRule {
    /// The field (template variable) name, e.g. `Email`.
    pub name: String,
    /// Tried in order; the first non-empty value wins.
    pub sources: Vec<FieldSource>,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Emit an event, or only remember the user.
    pub kind: RuleKind,
    /// The request method this rule needs.
    pub method: Method,
    /// The full path template, base path included, as written.
    pub template: String,
    /// Operator rule or built-in profile rule.
    pub origin: RuleOrigin,
    statuses: Statuses,
    when: Vec<Condition>,
    /// The user fields this rule extracts.
    pub fields: Vec<FieldRule>,
    /// The call's own attributes (`details:`): event only, never cached.
    pub details: Vec<FieldRule>,
    /// The credentials this call issues or presents (`session:`).
    pub session: Option<SessionRule>,
    /// Where the IAM's signing keys are (a profile's `jwks:`, under its base path).
    pub jwks: Option<String>,
}

impl Rule {
    /// Compiles one config rule; `key` is its config path (`routes[2]`) for errors.
    pub fn compile(
        spec: &RouteSpec,
        key: &str,
        origin: RuleOrigin,
    ) -> Result<(Rule, PathTemplate), Vec<ConfigError>> {
        let mut errors = Vec::new();
        let kind = match spec.action.as_str() {
            "remember" => Some(RuleKind::Remember),
            other => match other.parse::<Action>() {
                Ok(a) => Some(RuleKind::Event(a)),
                Err(e) => {
                    errors.push(ConfigError::new(
                        format!("{key}.action"),
                        format!("{e} (or remember)"),
                    ));
                    None
                }
            },
        };
        let method = match Method::from_bytes(spec.method.trim().to_ascii_uppercase().as_bytes()) {
            Ok(m) if !spec.method.trim().is_empty() => Some(m),
            _ => {
                errors.push(ConfigError::new(
                    format!("{key}.method"),
                    format!("`{}` is not an HTTP method", spec.method),
                ));
                None
            }
        };
        let template = match PathTemplate::parse(&spec.path) {
            Ok(t) => Some(t),
            Err(e) => {
                errors.push(ConfigError::new(format!("{key}.path"), e.to_string()));
                None
            }
        };
        let params: &[String] = template
            .as_ref()
            .map(|t| t.params.as_slice())
            .unwrap_or(&[]);

        let statuses = match &spec.status {
            None => Statuses::AnySuccess,
            Some(list) if list.is_empty() => {
                errors.push(ConfigError::new(
                    format!("{key}.status"),
                    "empty list; omit it for the default",
                ));
                Statuses::AnySuccess
            }
            Some(list) => {
                for s in list.iter().filter(|s| !(100..=599).contains(*s)) {
                    errors.push(ConfigError::new(
                        format!("{key}.status"),
                        format!("{s} is not an HTTP status"),
                    ));
                }
                Statuses::Listed(list.clone())
            }
        };
        let statuses = match (&statuses, kind) {
            (Statuses::AnySuccess, Some(RuleKind::Event(Action::LoginFailed))) => {
                Statuses::Listed(LOGIN_FAILED_STATUSES.to_vec())
            }
            _ => statuses,
        };

        let mut when = Vec::new();
        for (source, accepted) in &spec.when {
            let at = format!("{key}.when.{source}");
            match FieldSource::parse(source, params) {
                Ok(s) if !accepted.0.is_empty() => when.push(Condition {
                    source: s,
                    accepted: accepted.0.clone(),
                }),
                Ok(_) => errors.push(ConfigError::new(at, "list at least one accepted value")),
                Err(e) if template.is_some() => errors.push(ConfigError::new(at, e.to_string())),
                Err(_) => {} // path errors are reported once, at `.path`
            }
        }

        let template_ok = template.is_some();
        let fields = compile_fields(&spec.fields, &format!("{key}.fields"), params, origin, template_ok, &mut errors);
        let details = compile_fields(&spec.details, &format!("{key}.details"), params, origin, template_ok, &mut errors);
        for d in &details {
            if spec.fields.contains_key(&d.name) {
                errors.push(ConfigError::new(
                    format!("{key}.details.{}", d.name),
                    "is also a user field of this rule; a name is either a field or a detail",
                ));
            }
        }
        let session = spec.session.as_ref().and_then(|s| {
            SessionRule::compile(s, &format!("{key}.session"), params, template_ok, &mut errors)
        });

        match (kind, method, template) {
            (Some(kind), Some(method), Some(template)) if errors.is_empty() => Ok((
                Rule {
                    kind,
                    method,
                    template: template.text.clone(),
                    origin,
                    statuses,
                    when,
                    fields,
                    details,
                    session,
                    jwks: None,
                },
                template,
            )),
            _ => Err(errors),
        }
    }

    /// The response status counts as this rule's action happening.
    pub fn status_matches(&self, status: u16) -> bool {
        match &self.statuses {
            Statuses::AnySuccess => (200..300).contains(&status),
            Statuses::Listed(list) => list.contains(&status),
        }
    }

    /// Method, status and every `when` condition hold for this exchange.
    pub fn applies(&self, view: &View<'_>) -> bool {
        self.method == view.method()
            && self.status_matches(view.status().as_u16())
            && self
                .when
                .iter()
                .all(|c| c.source.eval(view).is_some_and(|v| c.accepted.contains(&v)))
    }
}

/// Compiles a `fields:` or `details:` map (`key` is its config path); problems go to `errors`.
fn compile_fields(
    map: &std::collections::BTreeMap<String, crate::config::model::OneOrMany>,
    key: &str,
    params: &[String],
    origin: RuleOrigin,
    template_ok: bool,
    errors: &mut Vec<ConfigError>,
) -> Vec<FieldRule> {
    let mut fields = Vec::new();
    for (name, sources) in map {
        let at = format!("{key}.{name}");
        if let Err(e) = check_field_name(name) {
            errors.push(ConfigError::new(at.clone(), e));
        }
        if sources.0.is_empty() {
            errors.push(ConfigError::new(at.clone(), "list at least one source"));
        }
        let mut parsed = Vec::new();
        for text in &sources.0 {
            match FieldSource::parse(text, params) {
                Ok(s) if s.yields_credential() && origin != RuleOrigin::Operator => errors.push(ConfigError::new(
                    at.clone(),
                    format!("`{s}` is a credential; built-in profiles never extract credentials"),
                )),
                Ok(s) => parsed.push(s),
                Err(e) if template_ok => errors.push(ConfigError::new(at.clone(), e.to_string())),
                Err(_) => {}
            }
        }
        fields.push(FieldRule {
            name: name.clone(),
            sources: parsed,
        });
    }
    fields
}

/// Field names become template variables `{{$$.Name$$}}`: identifiers, not event variables.
fn check_field_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !ok_start || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "`{name}` is not a field name; use letters, digits and `_`, starting with a letter"
        ));
    }
    if EVENT_VARIABLES.contains(&name) {
        return Err(format!(
            "`{name}` is an event variable; pick another field name"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names() {
        assert!(check_field_name("Department").is_ok());
        assert!(check_field_name("dept_2").is_ok());
        assert!(check_field_name("2x").is_err());
        assert!(check_field_name("a-b").is_err());
        assert!(check_field_name("").is_err());
        assert!(check_field_name("Action")
            .unwrap_err()
            .contains("event variable"));
    }
}
