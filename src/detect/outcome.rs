//! Detection's second phase: once the response is known, which rule fires and what it read.
//!
//! Runs off the request path, on the extractor task. The first rule of the matched path
//! whose method, status and `when` conditions hold decides the [`Outcome`]; its field sources
//! are read through the exchange's view. It never consults or changes the user cache (the
//! event path owns that) and never fails or panics on any exchange.

use super::rule::{Rule, RuleKind};
use super::{RouteMatch, RouteTable};
use crate::event::UserFields;
use crate::extract::view::View;

/// What an exchange turned out to mean.
#[derive(Debug)]
pub struct Outcome<'a> {
    /// Emit events with these actions, or only remember the user (borrowed from the rule:
    /// no copy per exchange).
    pub kind: &'a RuleKind,
    /// The user fields the rule read (empty values skipped).
    pub fields: UserFields,
}

impl RouteTable {
    /// The first rule of the match whose method, status and `when` conditions hold.
    pub fn resolve(&self, m: &RouteMatch, view: &View<'_>) -> Option<&Rule> {
        self.entries
            .get(m.entry)?
            .rules
            .iter()
            .filter_map(|&i| self.rules.get(i))
            .find(|r| r.applies(view))
    }

    /// The outcome of a matched exchange: the rule that fires and the fields it reads.
    pub fn outcome(&self, m: &RouteMatch, view: &View<'_>) -> Option<Outcome<'_>> {
        let rule = self.resolve(m, view)?;
        Some(Outcome {
            kind: &rule.kind,
            fields: read_fields(rule, view),
        })
    }
}

/// The user fields `rule` reads: for each field, the first source with a value.
fn read_fields(rule: &Rule, view: &View<'_>) -> UserFields {
    let mut out = UserFields::new();
    for f in &rule.fields {
        if let Some(v) = f.sources.iter().find_map(|s| s.eval(view)) {
            out.insert(f.name.clone(), v);
        }
    }
    out
}
