//! One compiled rule: method, path template, outcome (status set and `when` conditions), the
//! actions it emits and the field sources it extracts.
//!
//! Compiling checks everything a rule says, with the config key path in every error, so a
//! loaded rule is always valid. Evaluating a rule never fails and never panics.

use http::Method;

use super::condition::Condition;
use super::path_template::PathTemplate;
pub use super::session_rule::SessionRule;
use crate::config::model::RouteSpec;
use crate::config::ConfigError;
use crate::event::{Action, EVENT_VARIABLES};
use crate::extract::source::FieldSource;
use crate::extract::view::View;

/// What a matching rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    /// Emit one event per action, in this order (`action: [created, login]`: a sign-up that
    /// also opens a session). Never empty, no action twice.
    Events(Vec<Action>),
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

impl Statuses {
    fn contains(&self, status: u16) -> bool {
        match self {
            Statuses::AnySuccess => (200..300).contains(&status),
            Statuses::Listed(list) => list.contains(&status),
        }
    }

    /// Every status `other` accepts, this accepts too.
    fn covers(&self, other: &Statuses) -> bool {
        match other {
            Statuses::AnySuccess => (200..300).all(|s| self.contains(s)),
            Statuses::Listed(list) => list.iter().all(|s| self.contains(*s)),
        }
    }
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
    /// Conditions that always hold, for `check` to mention: `(key path, message)`.
    pub warnings: Vec<ConfigError>,
}

impl Rule {
    /// Compiles one config rule; `key` is its config path (`routes[2]`) for errors.
    pub fn compile(
        spec: &RouteSpec,
        key: &str,
        origin: RuleOrigin,
    ) -> Result<(Rule, PathTemplate), Vec<ConfigError>> {
        let mut errors = Vec::new();
        let kind = compile_kind(&spec.action.0, key, &mut errors);
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
        let statuses = match (&statuses, &kind) {
            (Statuses::AnySuccess, Some(RuleKind::Events(actions))) => {
                default_statuses(actions, key, &mut errors)
            }
            _ => statuses,
        };

        let mut when = Vec::new();
        let mut warnings = Vec::new();
        for (source, spec) in &spec.when {
            let at = format!("{key}.when.{source}");
            match FieldSource::parse(source, params) {
                Ok(s) => match Condition::compile(s, spec) {
                    Ok((condition, warning)) => {
                        when.push(condition);
                        warnings.extend(warning.map(|w| ConfigError::new(at, w.0)));
                    }
                    Err(e) => errors.push(ConfigError::new(at, e)),
                },
                Err(e) if template.is_some() => errors.push(ConfigError::new(at, e.to_string())),
                Err(_) => {} // path errors are reported once, at `.path`
            }
        }

        let template_ok = template.is_some();
        let fields = compile_fields(
            &spec.fields,
            &format!("{key}.fields"),
            params,
            origin,
            template_ok,
            &mut errors,
        );
        let details = compile_fields(
            &spec.details,
            &format!("{key}.details"),
            params,
            origin,
            template_ok,
            &mut errors,
        );
        for d in &details {
            if spec.fields.contains_key(&d.name) {
                errors.push(ConfigError::new(
                    format!("{key}.details.{}", d.name),
                    "is also a user field of this rule; a name is either a field or a detail",
                ));
            }
        }
        let session = spec.session.as_ref().and_then(|s| {
            SessionRule::compile(
                s,
                &format!("{key}.session"),
                params,
                template_ok,
                &mut errors,
            )
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
                    warnings,
                },
                template,
            )),
            _ => Err(errors),
        }
    }

    /// The response status counts as this rule's action happening.
    pub fn status_matches(&self, status: u16) -> bool {
        self.statuses.contains(status)
    }

    /// Method, status and every `when` condition hold for this exchange.
    pub fn applies(&self, view: &View<'_>) -> bool {
        self.method == view.method()
            && self.status_matches(view.status().as_u16())
            && self.when.iter().all(|c| c.holds(view))
    }

    /// Every call this rule fires on, `later` would fire on too (same method, statuses that
    /// cover `later`'s, no condition `later` lacks): with first-match, `later` never fires.
    pub fn shadows(&self, later: &Rule) -> bool {
        self.method == later.method
            && self.statuses.covers(&later.statuses)
            && self.when.iter().all(|c| later.when.contains(c))
    }

    /// The actions this rule emits (none for `remember`).
    pub fn actions(&self) -> &[Action] {
        match &self.kind {
            RuleKind::Events(actions) => actions,
            RuleKind::Remember => &[],
        }
    }
}

/// `action:` as one name or a list: `remember` alone, or events, each action once.
fn compile_kind(names: &[String], key: &str, errors: &mut Vec<ConfigError>) -> Option<RuleKind> {
    let at = format!("{key}.action");
    if names.is_empty() {
        errors.push(ConfigError::new(
            at,
            "empty list; name an action such as created, or a list such as [created, login]",
        ));
        return None;
    }
    if names.iter().any(|n| n == "remember") {
        if names.len() > 1 {
            errors.push(ConfigError::new(
                at,
                "`remember` emits no event and cannot be listed with actions",
            ));
            return None;
        }
        return Some(RuleKind::Remember);
    }
    let mut actions: Vec<Action> = Vec::with_capacity(names.len());
    let mut ok = true;
    for (i, name) in names.iter().enumerate() {
        let at = if names.len() == 1 {
            at.clone()
        } else {
            format!("{at}[{i}]")
        };
        match name.parse::<Action>() {
            Ok(a) if actions.contains(&a) => {
                errors.push(ConfigError::new(at, format!("`{a}` is listed twice")));
                ok = false;
            }
            Ok(a) => actions.push(a),
            Err(e) => {
                errors.push(ConfigError::new(at, format!("{e} (or remember)")));
                ok = false;
            }
        }
    }
    ok.then_some(RuleKind::Events(actions))
}

/// The statuses a rule without `status:` fires on: any 2xx, or 400/401/403 when it emits only
/// `login_failed`. A list mixing `login_failed` with other actions must say which statuses.
fn default_statuses(actions: &[Action], key: &str, errors: &mut Vec<ConfigError>) -> Statuses {
    let failed = actions
        .iter()
        .filter(|a| **a == Action::LoginFailed)
        .count();
    if failed == 0 {
        Statuses::AnySuccess
    } else if failed == actions.len() {
        Statuses::Listed(LOGIN_FAILED_STATUSES.to_vec())
    } else {
        errors.push(ConfigError::new(
            format!("{key}.status"),
            "missing: `login_failed` fires on 400, 401, 403 by default and the other actions on \
             any 2xx; list the statuses this rule means",
        ));
        Statuses::AnySuccess
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
                Ok(s) if s.yields_credential() && origin != RuleOrigin::Operator => {
                    errors.push(ConfigError::new(
                        at.clone(),
                        format!(
                            "`{s}` is a credential; built-in profiles never extract credentials"
                        ),
                    ))
                }
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
