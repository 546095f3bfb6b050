//! A webhook's `when:` filter: conditions over an event's values that must all hold for the
//! webhook to get a delivery of it.
//!
//! The operators are the routes' (`detect::condition::Test`: equals any of, `not`, `exists`,
//! `contains`, `any`, `prefix`); the paths are the event's variables — the user fields
//! (`Email`, a custom field), `Previous.<Field>`, the event's own (`Changed`, `Attribution`,
//! `Status`, `Action`, ...) and the caller (`Actor.Sub`, `Actor.ClientId`, `Actor.BasicUser`,
//! `Actor.Ip`, `Actor.UserAgent`, `Actor.Verified`; `ActorSub` and the like are the same
//! values under their template names). `Changed` is a list (the names of the fields that
//! changed), so `contains`/`any` look into it; every other path is one value.
//!
//! Compiling refuses a condition that can never hold and warns about one that always does,
//! so a filter is never a silent drop-everything. Judging never fails and never allocates
//! for a single-valued path beyond the value's text.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use crate::config::model::ConditionSpec;
use crate::config::ConfigError;
use crate::detect::condition::Test;
use crate::event::{Action, Attribution, UserEvent};
use crate::extract::observed::Observed;
use crate::template::{EventVars, VarSource};

/// The one path whose value is a list.
const CHANGED: &str = "Changed";

/// `Actor.X` paths and the variable each reads.
const ACTOR_PATHS: [(&str, &str); 7] = [
    ("Actor.Sub", "ActorSub"),
    ("Actor.Azp", "ActorAzp"),
    ("Actor.ClientId", "ActorClientId"),
    ("Actor.BasicUser", "ActorBasicUser"),
    ("Actor.Ip", "ActorIp"),
    ("Actor.UserAgent", "ActorUserAgent"),
    ("Actor.Verified", "ActorVerified"),
];

/// Variables that read the bearer token's claims (their verification is worth a key fetch).
pub const ACTOR_CLAIM_VARIABLES: [&str; 4] =
    ["ActorSub", "ActorAzp", "ActorClientId", "ActorVerified"];

/// One compiled condition: the variable it reads and its test.
#[derive(Debug, Clone)]
struct Clause {
    variable: String,
    test: Test,
}

/// Every condition of one webhook's `when:`; empty accepts everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    clauses: Vec<Clause>,
}

/// The variable a filter path reads: `Actor.Sub` -> `ActorSub`, anything else as written.
fn variable_of(path: &str) -> &str {
    ACTOR_PATHS
        .iter()
        .find(|(p, _)| *p == path)
        .map_or(path, |(_, v)| v)
}

impl Filter {
    /// Compiles `when` of the webhook at `at` (`webhooks[2]`), whose `actions` (`None`: all)
    /// bound what `Action` can be; `known` accepts the custom fields templates may use.
    /// Returns the filter and its warnings, or every problem found.
    pub fn compile(
        when: &BTreeMap<String, ConditionSpec>,
        actions: Option<&BTreeSet<Action>>,
        at: &str,
        known: &dyn Fn(&str) -> bool,
    ) -> Result<(Filter, Vec<ConfigError>), Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut clauses = Vec::new();
        for (path, spec) in when {
            let key = format!("{at}.when.{path}");
            let variable = variable_of(path);
            if !crate::template::is_variable(variable, known) {
                errors.push(ConfigError::new(
                    key,
                    format!(
                        "unknown path `{path}`; expected a user field (ID, Email, Name, ..., or \
                         a custom field), Previous.<Field>, an event value (Action, Status, \
                         Changed, Attribution, SourceIP, UserAgent, ...) or the caller \
                         ({})",
                        ACTOR_PATHS.map(|(p, _)| p).join(", ")
                    ),
                ));
                continue;
            }
            let test = match Test::compile(spec) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(ConfigError::new(key, e));
                    continue;
                }
            };
            if let Some(op) = test.array_operator().filter(|_| variable != CHANGED) {
                errors.push(ConfigError::new(
                    key,
                    format!(
                        "can never hold as meant: `{op}` looks into a list, but `{path}` is \
                         always a single value (only Changed is a list); to compare the value \
                         itself write `{path}: [a, b]` (equals any of)"
                    ),
                ));
                continue;
            }
            match closed_set(variable, actions) {
                Some(values) => {
                    let mut possible: Vec<Observed> =
                        values.iter().map(|v| Observed::One(v.clone())).collect();
                    if variable == "ActorVerified" {
                        possible.push(Observed::Absent);
                    }
                    if !possible.iter().any(|v| test.holds(v)) {
                        errors.push(ConfigError::new(
                            key,
                            format!(
                                "can never hold: `{path}` is one of {}{}",
                                values.join(", "),
                                if variable == "Action" {
                                    " for this webhook (its actions)"
                                } else {
                                    ""
                                }
                            ),
                        ));
                        continue;
                    }
                    if possible.iter().all(|v| test.holds(v)) {
                        warnings.push(ConfigError::new(
                            key.clone(),
                            format!(
                                "always holds: every value `{path}` can have passes it; remove \
                                 the condition"
                            ),
                        ));
                    }
                }
                None if variable == "Object" => {
                    // `user` is the only object today.
                    if !test.holds(&Observed::One("user".to_owned())) {
                        errors.push(ConfigError::new(
                            key,
                            "can never hold: `Object` is always `user`".to_owned(),
                        ));
                        continue;
                    }
                    warnings.push(ConfigError::new(
                        key.clone(),
                        "always holds: `Object` is always `user`; remove the condition".to_owned(),
                    ));
                }
                None => {}
            }
            clauses.push(Clause {
                variable: variable.to_owned(),
                test,
            });
        }
        if errors.is_empty() {
            Ok((Filter { clauses }, warnings))
        } else {
            Err(errors)
        }
    }

    /// True when the filter has no condition (every event passes).
    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    /// Whether some condition reads the bearer token's claims (`Actor.Sub`, ...).
    pub fn reads_actor_claims(&self) -> bool {
        self.clauses
            .iter()
            .any(|c| ACTOR_CLAIM_VARIABLES.contains(&c.variable.as_str()))
    }

    /// Every condition holds for `event`.
    pub fn accepts(&self, event: &UserEvent) -> bool {
        self.clauses
            .iter()
            .all(|c| c.test.holds(&observe(event, &c.variable)))
    }
}

/// The values a variable can take when they form a small closed set, for load-time checks.
fn closed_set(variable: &str, actions: Option<&BTreeSet<Action>>) -> Option<Vec<String>> {
    match variable {
        "Attribution" => Some(
            [
                Attribution::Exchange,
                Attribution::Session,
                Attribution::VerifiedToken,
                Attribution::UnverifiedToken,
                Attribution::None,
            ]
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect(),
        ),
        "ActorVerified" => Some(vec!["true".to_owned(), "false".to_owned()]),
        "Action" => actions.map(|set| set.iter().map(|a| a.as_str().to_owned()).collect()),
        _ => None,
    }
}

/// What the event holds for `variable`, as a condition sees it.
fn observe(event: &UserEvent, variable: &str) -> Observed {
    if variable == CHANGED {
        return match event.changed.is_empty() {
            true => Observed::Absent,
            false => Observed::Many(event.changed.clone()),
        };
    }
    Observed::from_text(EventVars(event).var(variable).map(Cow::into_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, RequestInfo, UserFields};

    fn when(yaml: &str) -> BTreeMap<String, ConditionSpec> {
        serde_json::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
    }

    fn known(name: &str) -> bool {
        name == "Department"
    }

    fn compile(json: &str) -> Result<(Filter, Vec<String>), Vec<String>> {
        let created: BTreeSet<Action> = [Action::Created, Action::Updated].into();
        Filter::compile(&when(json), Some(&created), "webhooks[0]", &known)
            .map(|(f, w)| (f, w.iter().map(ToString::to_string).collect()))
            .map_err(|e| e.iter().map(ToString::to_string).collect())
    }

    fn filter(json: &str) -> Filter {
        let (f, w) = compile(json).unwrap_or_else(|e| panic!("{json}: {e:?}"));
        assert!(w.is_empty(), "{json}: {w:?}");
        f
    }

    fn event() -> UserEvent {
        let mut user = UserFields::new();
        user.insert("ID".into(), "42".into());
        user.insert("Email".into(), "ann@corp.example".into());
        user.insert("Department".into(), "ops".into());
        let request = RequestInfo {
            method: "PUT".into(),
            path: "/users/42".into(),
            status: 204,
            remote_addr: "10.9.8.7:5000".into(),
            request_id: "r".into(),
            user_agent: "sync/2.1".into(),
        };
        let mut ev = UserEvent::new(1, Action::Updated, user, request, false);
        ev.changed = vec!["Email".into(), "Enabled".into()];
        ev.actor = Actor {
            sub: "svc-7".into(),
            azp: "sync-service".into(),
            client_id: "sync-service".into(),
            basic_user: String::new(),
            verified: Some(true),
        };
        ev
    }

    #[test]
    fn conditions_over_user_event_and_actor_values() {
        let ev = event();
        for (json, want) in [
            (r#"{}"#, true),
            (r#"{"Email": {"prefix": "ann@"}}"#, true),
            (r#"{"Email": {"prefix": "bob@"}}"#, false),
            (r#"{"Actor.ClientId": {"not": "sync-service"}}"#, false),
            (r#"{"ActorClientId": {"not": "admin-cli"}}"#, true),
            (r#"{"Actor.Sub": "svc-7", "Actor.Verified": true}"#, true),
            (r#"{"Actor.BasicUser": {"exists": false}}"#, true),
            (r#"{"Actor.Ip": {"prefix": "10."}}"#, true),
            (r#"{"Actor.UserAgent": {"prefix": "sync/"}}"#, true),
            (r#"{"Actor.UserAgent": {"prefix": "curl/"}}"#, false),
            (r#"{"Changed": {"contains": "Enabled"}}"#, true),
            (r#"{"Changed": {"any": ["Name", "FirstName"]}}"#, false),
            (r#"{"Changed": "Email"}"#, true),
            (r#"{"Status": [200, 204]}"#, true),
            (r#"{"Action": "updated"}"#, true),
            (
                r#"{"Attribution": {"not": ["none", "unverified_token"]}}"#,
                true,
            ),
            (r#"{"Department": "ops", "Email": {"exists": true}}"#, true),
            (r#"{"Previous.Email": {"exists": true}}"#, false),
        ] {
            assert_eq!(filter(json).accepts(&ev), want, "{json}");
        }
        let mut quiet = event();
        quiet.changed.clear();
        assert!(!filter(r#"{"Changed": {"contains": "Enabled"}}"#).accepts(&quiet));
        assert!(filter(r#"{"Changed": {"exists": false}}"#).accepts(&quiet));
        quiet.actor = Actor::default();
        // No token at all: `not` holds, an equality does not.
        assert!(filter(r#"{"Actor.ClientId": {"not": "sync-service"}}"#).accepts(&quiet));
        assert!(!filter(r#"{"Actor.Verified": true}"#).accepts(&quiet));
    }

    #[test]
    fn what_reads_the_token_claims() {
        assert!(filter(r#"{"Actor.Sub": "x"}"#).reads_actor_claims());
        assert!(filter(r#"{"Actor.Verified": true}"#).reads_actor_claims());
        assert!(!filter(r#"{"Actor.Ip": "1.2.3.4", "Email": "a"}"#).reads_actor_claims());
    }

    #[test]
    fn conditions_that_cannot_hold_are_errors_naming_the_key() {
        for (json, want) in [
            (
                r#"{"Emial": "x"}"#,
                "webhooks[0].when.Emial: unknown path `Emial`",
            ),
            (
                r#"{"Actor.Password": "x"}"#,
                "unknown path `Actor.Password`",
            ),
            (r#"{"Email": {"contains": "a"}}"#, "only Changed is a list"),
            (r#"{"Email": []}"#, "list at least one accepted value"),
            (
                r#"{"Attribution": "verified"}"#,
                "can never hold: `Attribution` is one of",
            ),
            (r#"{"Action": "deleted"}"#, "for this webhook (its actions)"),
            (r#"{"Actor.Verified": "yes"}"#, "can never hold"),
            (r#"{"Object": "group"}"#, "`Object` is always `user`"),
        ] {
            let e = compile(json)
                .err()
                .unwrap_or_else(|| panic!("{json} compiled"));
            assert!(e.iter().any(|e| e.contains(want)), "{json}: {e:?}");
        }
    }

    #[test]
    fn conditions_that_always_hold_are_warnings() {
        for json in [
            r#"{"Action": ["created", "updated"]}"#,
            r#"{"Attribution": {"not": "bogus"}}"#,
            r#"{"Object": "user"}"#,
        ] {
            let (_, w) = compile(json).unwrap_or_else(|e| panic!("{json}: {e:?}"));
            assert!(
                w.iter().any(|w| w.contains("always holds")),
                "{json}: {w:?}"
            );
        }
    }
}
