//! Detection's second phase: once the response is known, which rule fires and what it read.
//!
//! Runs off the request path, on the extractor task. The first rule of the matched path
//! whose method, status and `when` conditions hold decides the [`Outcome`]; its field sources
//! are read through the exchange's view ([`read_trusted`] lets the event path skip sources it
//! does not trust, such as claims of an unverified client token). It never consults or
//! changes the user cache (the event path owns that) and never fails or panics on any
//! exchange.

use super::rule::{FieldRule, Rule, RuleKind};
use super::{RouteMatch, RouteTable};
use crate::event::UserFields;
use crate::extract::source::FieldSource;
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
    read_trusted(&rule.fields, view, &|_| Some(()), &[]).0
}

/// The values of `rules` (a rule's `fields:` or `details:`): for each, the first source that
/// `trust` accepts and that has a value; with the trust of the source that named the user,
/// i.e. read the first of `identifying` (`ID`, then `Email`, ...). Allocates only the values.
pub fn read_trusted<T: Copy>(
    rules: &[FieldRule],
    view: &View<'_>,
    trust: &dyn Fn(&FieldSource) -> Option<T>,
    identifying: &[&str],
) -> (UserFields, Option<T>) {
    let mut out = UserFields::new();
    let mut named: Option<(usize, T)> = None;
    for f in rules {
        for s in &f.sources {
            let Some(level) = trust(s) else { continue };
            if let Some(v) = s.eval(view) {
                out.insert(f.name.clone(), v);
                if let Some(i) = identifying.iter().position(|k| *k == f.name) {
                    if named.is_none_or(|(j, _)| i < j) {
                        named = Some((i, level));
                    }
                }
                break;
            }
        }
    }
    (out, named.map(|(_, level)| level))
}
