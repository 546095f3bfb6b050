//! Detection: which requests are user lifecycle calls, and which rule an outcome fires.
//!
//! [`RouteTable::classify`] runs on *every* proxied request, so for unmatched traffic it must
//! stay a router lookup plus a method comparison, without allocating. The decision that needs
//! the response (status, `when` conditions) and the fields it reads are the second phase,
//! [`outcome`], run off the request path by the extractor. Operator routes come first, then
//! each listed profile's rules. Rules match the path as [`normalize`] spells it, so no
//! spelling of a matched path (`//users`, `/%75sers`) slips past detection. Detection never
//! reads or changes the user cache, and never lets a built-in profile extract a credential.

pub mod condition;
pub mod normalize;
pub mod outcome;
pub mod path_template;
pub mod profiles;
pub mod rule;
pub mod session_rule;

use std::collections::{BTreeSet, HashMap};

use http::Method;

use crate::config::model::{ProfileSpec, RouteSpec};
use crate::config::ConfigError;
use crate::event::Action;
pub use crate::exchange::RouteMatch;
pub use path_template::PathTemplate;
pub use rule::{Rule, RuleKind, RuleOrigin};

/// All rules sharing one path template (several methods, several outcomes).
#[derive(Debug)]
struct Entry {
    /// Parameter names of the first rule with this template (for [`RouteMatch::params`]).
    params: Vec<String>,
    /// Methods any rule here accepts: the per-request check scans this short list.
    methods: Vec<Method>,
    /// Rule indices, in priority order.
    rules: Vec<usize>,
}

/// The compiled rules of one config snapshot.
#[derive(Debug, Default)]
pub struct RouteTable {
    router: matchit::Router<usize>,
    entries: Vec<Entry>,
    rules: Vec<Rule>,
    /// Each rule's config key (`routes[2]`, `profiles[0] (keycloak rule 3)`), by rule index.
    keys: Vec<String>,
    field_names: BTreeSet<String>,
    /// Every `details:` name the rules define.
    detail_names: BTreeSet<String>,
    /// Every action some rule emits.
    actions: BTreeSet<Action>,
    /// What `check` should point out: rules that never fire, conditions that always hold.
    warnings: Vec<ConfigError>,
}

impl RouteTable {
    /// Compiles the operator's routes and the profiles' rules; every error carries its key path.
    pub fn compile(
        routes: &[RouteSpec],
        profiles: &[ProfileSpec],
    ) -> Result<Self, Vec<ConfigError>> {
        let mut table = RouteTable {
            field_names: crate::event::BUILTIN_USER_FIELDS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            ..RouteTable::default()
        };
        let mut by_route: HashMap<String, usize> = HashMap::new();
        let mut errors = Vec::new();
        for (i, spec) in routes.iter().enumerate() {
            let key = format!("routes[{i}]");
            table.add(
                spec,
                &key,
                RuleOrigin::Operator,
                None,
                &mut by_route,
                &mut errors,
            );
        }
        for (i, p) in profiles.iter().enumerate() {
            let key = format!("profiles[{i}]");
            let profile = match profiles::find(p.name()) {
                Ok(profile) => profile,
                Err(e) => {
                    errors.push(ConfigError::new(key, e.to_string()));
                    continue;
                }
            };
            let base = match p.base_path() {
                None => profile.base_path.as_str(),
                Some(b) if profiles::is_plain_base_path(b) => b,
                Some(b) => {
                    errors.push(ConfigError::new(
                        format!("{key}.base_path"),
                        format!("`{b}` must be a plain path starting with `/` (e.g. /auth)"),
                    ));
                    continue;
                }
            };
            let jwks = profile
                .jwks
                .as_deref()
                .map(|j| profiles::join_base(base, j));
            for (j, spec) in profile.specs_under(base).enumerate() {
                let key = format!("{key} ({} rule {j})", profile.name);
                table.add(
                    &spec,
                    &key,
                    RuleOrigin::Profile(&profile.name),
                    jwks.clone(),
                    &mut by_route,
                    &mut errors,
                );
            }
        }
        if errors.is_empty() {
            Ok(table)
        } else {
            Err(errors)
        }
    }

    fn add(
        &mut self,
        spec: &RouteSpec,
        key: &str,
        origin: RuleOrigin,
        jwks: Option<String>,
        by_route: &mut HashMap<String, usize>,
        errors: &mut Vec<ConfigError>,
    ) {
        let (mut rule, template) = match Rule::compile(spec, key, origin) {
            Ok(r) => r,
            Err(mut e) => {
                errors.append(&mut e);
                return;
            }
        };
        let entry = match by_route.get(&template.route) {
            Some(&e) => e,
            None => {
                let e = self.entries.len();
                if let Err(err) = self.router.insert(template.route.clone(), e) {
                    errors.push(ConfigError::new(
                        format!("{key}.path"),
                        format!(
                            "`{}` cannot be matched beside the other paths: {err}",
                            template.text
                        ),
                    ));
                    return;
                }
                self.entries.push(Entry {
                    params: template.params.clone(),
                    methods: Vec::new(),
                    rules: Vec::new(),
                });
                by_route.insert(template.route.clone(), e);
                e
            }
        };
        let Some(slot) = self.entries.get_mut(entry) else {
            return;
        };
        // First match wins: an earlier rule that fires on every call this one fires on
        // leaves it dead. An operator rule overriding a profile's is what routes are for.
        let overrides_profile = |earlier: &Rule| {
            earlier.origin == RuleOrigin::Operator && rule.origin != RuleOrigin::Operator
        };
        if let Some((earlier, earlier_key)) = slot
            .rules
            .iter()
            .filter_map(|&i| Some((self.rules.get(i)?, self.keys.get(i)?)))
            .find(|(earlier, _)| earlier.shadows(&rule) && !overrides_profile(earlier))
        {
            self.warnings.push(ConfigError::new(
                key,
                format!(
                    "never fires: {earlier_key} ({} {} -> {}) comes first and matches every call \
                     this rule matches (the first matching rule wins); to emit several events \
                     for one call list the actions in one rule (`action: [created, login]`), or \
                     add a `when:` that tells the calls apart",
                    earlier.method,
                    earlier.template,
                    action_names(earlier),
                ),
            ));
        }
        rule.jwks = jwks;
        if !slot.methods.contains(&rule.method) {
            slot.methods.push(rule.method.clone());
        }
        slot.rules.push(self.rules.len());
        self.field_names
            .extend(rule.fields.iter().map(|f| f.name.clone()));
        self.detail_names
            .extend(rule.details.iter().map(|f| f.name.clone()));
        self.actions.extend(rule.actions().iter().cloned());
        self.warnings.extend(rule.warnings.iter().cloned());
        self.keys.push(key.to_owned());
        self.rules.push(rule);
    }

    /// Which rules could apply to this request; `None` (without allocating) for most traffic.
    /// `path` may carry a query, which is ignored; one trailing slash is tolerated. The path
    /// is matched in its normal form (dot segments, repeated slashes, encoded unreserved
    /// characters); one already normal is not copied.
    pub fn classify(&self, method: &Method, path: &str) -> Option<RouteMatch> {
        let path = normalize::without_query(path);
        self.classify_path(method, &normalize::detection_path(path))
    }

    /// True when `path` (unmatched by [`RouteTable::classify`]) would match a rule if its
    /// encoded slashes (`%2F`) split segments: an IAM that decodes before routing would act on
    /// a call userhook cannot see, so the proxy refuses it. Runs only for unmatched requests
    /// whose path has a `%`; allocates only when it has an encoded slash.
    pub fn dodges_by_encoded_slash(&self, method: &Method, path: &str) -> bool {
        let path = normalize::without_query(path);
        if !path.as_bytes().contains(&b'%') {
            return false;
        }
        normalize::with_encoded_slashes_decoded(path).is_some_and(|decoded| {
            self.classify_path(method, &normalize::detection_path(&decoded))
                .is_some()
        })
    }

    /// [`RouteTable::classify`] of a path already without its query and normalised.
    fn classify_path(&self, method: &Method, path: &str) -> Option<RouteMatch> {
        let found = match self.router.at(path) {
            Ok(m) => m,
            Err(_) if path.len() > 1 && path.ends_with('/') => {
                self.router.at(&path[..path.len() - 1]).ok()?
            }
            Err(_) => return None,
        };
        let index = *found.value;
        let entry = self.entries.get(index)?;
        if !entry.methods.iter().any(|m| m == method) {
            return None;
        }
        let params = found
            .params
            .iter()
            .zip(&entry.params)
            .map(|((_, value), name)| (name.clone(), value.to_owned()))
            .collect();
        Some(RouteMatch {
            entry: index,
            params,
        })
    }

    /// Whether some rule of this match reads claims of a client-presented token (so its
    /// signature may need checking before the outcome is read): one short scan, no allocation.
    pub fn reads_client_tokens(&self, m: &RouteMatch) -> bool {
        self.entries.get(m.entry).is_some_and(|e| {
            e.rules.iter().filter_map(|&i| self.rules.get(i)).any(|r| {
                r.fields
                    .iter()
                    .chain(&r.details)
                    .flat_map(|f| &f.sources)
                    .any(|s| s.reads_client_token())
            })
        })
    }

    /// Every user field name the rules can produce (built-ins included): the templates'
    /// user variables.
    pub fn field_names(&self) -> &BTreeSet<String> {
        &self.field_names
    }

    /// Every `details:` name the rules (the profiles' included) define.
    pub fn detail_names(&self) -> &BTreeSet<String> {
        &self.detail_names
    }

    /// Each path entry's template (as its first rule wrote it) and the methods its rules
    /// accept, in entry order ([`RouteMatch::entry`] indexes it): what metrics pre-register
    /// counters for, so the request path never builds a label.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &[Method])> {
        self.entries.iter().map(|e| {
            let template = e
                .rules
                .first()
                .and_then(|&i| self.rules.get(i))
                .map_or("", |r| r.template.as_str());
            (template, e.methods.as_slice())
        })
    }

    /// Every action some rule emits (operator routes and profiles).
    pub fn actions(&self) -> &BTreeSet<Action> {
        &self.actions
    }

    /// Problems that do not stop the config from loading but that `check` reports: rules
    /// shadowed by an earlier rule for the same call, conditions that always hold.
    pub fn warnings(&self) -> &[ConfigError] {
        &self.warnings
    }

    /// The compiled rules, in priority order per path.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when no rule exists.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// `created`, `remember`, `created, login`.
fn action_names(rule: &Rule) -> String {
    match rule.actions() {
        [] => "remember".to_owned(),
        actions => actions
            .iter()
            .map(Action::as_str)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
mod tests;
