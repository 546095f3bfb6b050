//! What a delivery target (a webhook or a sink) subscribes to: the object and the actions,
//! checked the same way for every kind of target.
//!
//! Only reads the spec and reports problems through the caller's `err`; it never decides
//! where events go (`events::dispatch` does).

use std::collections::BTreeSet;

use crate::event::Action;

/// The actions a target with `object` and `actions` receives: `None` for all (`["*"]`), or
/// the set named. Every problem is passed to `err` as `(key, message)`, keys relative to the
/// target (`object`, `actions`, `actions[1]`).
pub fn actions(
    object: &str,
    actions: &[String],
    err: &mut dyn FnMut(&str, String),
) -> Option<BTreeSet<Action>> {
    if object != "user" {
        err(
            "object",
            format!("`{object}` is not supported; expected user"),
        );
    }
    if actions.is_empty() {
        err(
            "actions",
            "is empty; list actions such as [created, deleted] or [\"*\"]".into(),
        );
    }
    if actions.iter().any(|a| a == "*") {
        return None;
    }
    let mut set = BTreeSet::new();
    for (j, a) in actions.iter().enumerate() {
        if a == "remember" {
            err(
                &format!("actions[{j}]"),
                "`remember` only refreshes the user cache and emits no event; name actions such \
                 as created or password_changed, or *"
                    .into(),
            );
            continue;
        }
        match a.parse::<Action>() {
            Ok(a) => {
                set.insert(a);
            }
            Err(e) => err(&format!("actions[{j}]"), format!("{e}, or *")),
        }
    }
    Some(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(object: &str, list: &[&str]) -> (Option<BTreeSet<Action>>, Vec<String>) {
        let mut problems = Vec::new();
        let list: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
        let got = actions(object, &list, &mut |k, m| {
            problems.push(format!("{k}: {m}"))
        });
        (got, problems)
    }

    #[test]
    fn star_is_everything_and_names_are_a_set() {
        assert_eq!(check("user", &["*"]), (None, vec![]));
        let (set, problems) = check("user", &["deleted", "created", "created"]);
        assert!(problems.is_empty());
        assert_eq!(
            set.map(|s| s.into_iter().collect::<Vec<_>>()),
            Some(vec![Action::Created, Action::Deleted])
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let (_, problems) = check("group", &["created", "delete"]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("object: `group` is not supported"));
        assert!(problems[1].starts_with("actions[1]: unknown action `delete`"));
        let (_, problems) = check("user", &[]);
        assert_eq!(
            problems,
            ["actions: is empty; list actions such as [created, deleted] or [\"*\"]"]
        );
    }

    #[test]
    fn custom_actions_subscribe_and_remember_or_typos_do_not() {
        let (set, problems) = check("user", &["password_changed", "created"]);
        assert!(problems.is_empty(), "{problems:?}");
        let names: Vec<String> = set.into_iter().flatten().map(|a| a.to_string()).collect();
        assert_eq!(names, ["created", "password_changed"]);
        let (_, problems) = check("user", &["remember", "creatd", "Bad-Name"]);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("actions[0]: `remember` only refreshes the user cache"));
        assert!(
            problems[1].starts_with("actions[1]: unknown action `creatd`: did you mean `created`?")
        );
        assert!(problems[2].contains("snake_case"), "{problems:?}");
    }
}
