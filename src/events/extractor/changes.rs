//! What an update changed: the user fields whose extracted value differs from the one known
//! before, and those earlier values (`Changed`, `Previous.<Field>`).
//!
//! A pure function of two field maps, so it cannot disturb the cache it reads from. Only
//! fields the update itself carries count (a partial update leaves the others alone), and
//! only when the user was known before: for a user never seen, nothing is claimed to have
//! changed. `ID` is the key the two are matched by and never counts as changed.

use crate::event::UserFields;

/// The key field, matched on and never reported as changed.
const ID: &str = "ID";

/// The fields an update changed and their earlier values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Field names whose value differs, in name order.
    pub changed: Vec<String>,
    /// The earlier value of each changed field that had one.
    pub previous: UserFields,
}

/// The fields of `current` whose value differs from `known` (the user's fields before the
/// update); empty when the user was not known.
pub fn diff(known: Option<&UserFields>, current: &UserFields) -> Changes {
    let mut out = Changes::default();
    let Some(known) = known else { return out };
    for (name, value) in current {
        if name == ID {
            continue;
        }
        match known.get(name) {
            Some(old) if old == value => {}
            Some(old) => {
                out.changed.push(name.clone());
                out.previous.insert(name.clone(), old.clone());
            }
            None => out.changed.push(name.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(pairs: &[(&str, &str)]) -> UserFields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn changed_values_and_their_previous_ones() {
        let known = user(&[
            ("ID", "1"),
            ("Email", "a@x"),
            ("Name", "jo"),
            ("Enabled", "true"),
        ]);
        let current = user(&[
            ("ID", "1"),
            ("Email", "b@x"),
            ("Name", "jo"),
            ("Department", "ops"),
        ]);
        assert_eq!(
            diff(Some(&known), &current),
            Changes {
                changed: vec!["Department".into(), "Email".into()],
                previous: user(&[("Email", "a@x")]),
            }
        );
    }

    #[test]
    fn nothing_changed_or_nothing_known() {
        let known = user(&[("ID", "1"), ("Email", "a@x")]);
        assert_eq!(
            diff(Some(&known), &user(&[("ID", "1"), ("Email", "a@x")])),
            Changes::default()
        );
        assert_eq!(
            diff(Some(&known), &user(&[("ID", "1")])),
            Changes::default()
        );
        assert_eq!(
            diff(None, &user(&[("ID", "1"), ("Email", "b@x")])),
            Changes::default()
        );
        // A different ID is the caller's business (it looks the user up by ID); never a change.
        assert_eq!(
            diff(Some(&known), &user(&[("ID", "2")])),
            Changes::default()
        );
    }
}
