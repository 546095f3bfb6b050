//! `when:` conditions: an operator test ([`Test`]) judged against a source's value, in any
//! shape ([`Observed`]: absent, one value, an array's elements).
//!
//! [`Test`] knows nothing of routes or exchanges, so a webhook filter can reuse it over an
//! event's values; [`Condition`] pairs it with a field source for a rule. Compiling refuses a
//! condition that can never hold (an error naming why) and reports one that always holds (a
//! warning), so no condition is ever a silent never-match. Evaluating never fails.
//!
//! Meaning, for a value that is a scalar `v`, an array `[e1, e2, ..]` of scalars, or absent:
//!
//! | operator | holds when |
//! |---|---|
//! | `x` / `[x, y]` (shorthand), `equals:` | `v` is one of them; for an array: some element is |
//! | `not: x` / `not: [x, y]` | no element (nor `v`) is one of them; holds when absent |
//! | `exists: true` / `false` | present and non-empty / absent (missing, null, `""`, `[]`) |
//! | `contains: x` | some element is `x` (a scalar counts as a one-element array) |
//! | `any: [x, y]` | some element is one of them |
//! | `prefix: p` / `[p, q]` | `v` or some element starts with one of them |
//! | `suffix: s` / `[s, t]` | `v` or some element ends with one of them (`@corp.example`) |
//!
//! Several operators in one map must all hold. Comparisons are exact text: JSON `true`, `1`
//! and YAML `true`, `1` compare equal as `"true"`, `"1"`.

use crate::config::condition_spec::{ConditionOps, ConditionSpec, OPERATORS};
use crate::extract::observed::Observed;
use crate::extract::source::FieldSource;
use crate::extract::view::View;

/// A compiled operator test; equal tests mean the same condition (for shadowed-rule checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Test {
    equals: Option<Vec<String>>,
    not: Vec<String>,
    exists: Option<bool>,
    contains: Option<String>,
    prefix: Vec<String>,
    suffix: Vec<String>,
    any: Option<Vec<String>>,
}

impl Test {
    /// Compiles a written condition; `Err` says why it can never hold or is malformed.
    pub fn compile(spec: &ConditionSpec) -> Result<Test, String> {
        let ops = match spec {
            ConditionSpec::Equals(values) if values.is_empty() => {
                return Err("list at least one accepted value".to_owned())
            }
            ConditionSpec::Equals(values) => ConditionOps {
                equals: Some(values.clone()),
                ..ConditionOps::default()
            },
            ConditionSpec::Ops(ops) => ops.clone(),
        };
        let test = Test {
            equals: ops.equals,
            not: ops.not.clone().unwrap_or_default(),
            exists: ops.exists,
            contains: ops.contains,
            prefix: ops.prefix.clone().unwrap_or_default(),
            suffix: ops.suffix.clone().unwrap_or_default(),
            any: ops.any,
        };
        for (name, list) in [
            ("equals", test.equals.as_deref()),
            ("not", ops.not.as_deref()),
            ("prefix", ops.prefix.as_deref()),
            ("suffix", ops.suffix.as_deref()),
            ("any", test.any.as_deref()),
        ] {
            if list.is_some_and(<[String]>::is_empty) {
                return Err(format!("`{name}` needs at least one value"));
            }
        }
        if test == Test::always() {
            return Err(format!("no operator given; expected one of {OPERATORS}"));
        }
        if let Some(op) = test.value_operator().filter(|_| test.exists == Some(false)) {
            return Err(format!(
                "can never hold: `exists: false` wants no value, `{op}` needs one"
            ));
        }
        let refused = |v: &String| test.not.contains(v);
        for (name, list) in [("equals", &test.equals), ("any", &test.any)] {
            if list.as_ref().is_some_and(|l| l.iter().all(refused)) {
                return Err(format!(
                    "can never hold: every value `{name}` accepts is also under `not`"
                ));
            }
        }
        if test.contains.as_ref().is_some_and(refused) {
            return Err(
                "can never hold: the value `contains` wants is also under `not`".to_owned(),
            );
        }
        Ok(test)
    }

    /// The test with no operator: holds for everything.
    fn always() -> Test {
        Test {
            equals: None,
            not: Vec::new(),
            exists: None,
            contains: None,
            prefix: Vec::new(),
            suffix: Vec::new(),
            any: None,
        }
    }

    /// The first operator that needs a value to compare, if any.
    fn value_operator(&self) -> Option<&'static str> {
        if self.equals.is_some() {
            Some("equals")
        } else if self.contains.is_some() {
            Some("contains")
        } else if !self.prefix.is_empty() {
            Some("prefix")
        } else if !self.suffix.is_empty() {
            Some("suffix")
        } else if self.any.is_some() {
            Some("any")
        } else {
            None
        }
    }

    /// The operator that only makes sense for an array value (`contains`, `any`), if used.
    pub fn array_operator(&self) -> Option<&'static str> {
        if self.contains.is_some() {
            Some("contains")
        } else if self.any.is_some() {
            Some("any")
        } else {
            None
        }
    }

    /// Whether the test holds for `value`.
    pub fn holds(&self, value: &Observed) -> bool {
        let elements = value.elements();
        let some = |accepted: &[String]| elements.iter().any(|e| accepted.contains(e));
        self.exists.is_none_or(|e| e == value.is_present())
            && self.equals.as_deref().is_none_or(some)
            && (self.not.is_empty() || !some(&self.not))
            && self.contains.as_ref().is_none_or(|c| elements.contains(c))
            && (self.prefix.is_empty()
                || elements
                    .iter()
                    .any(|e| self.prefix.iter().any(|p| e.starts_with(p.as_str()))))
            && (self.suffix.is_empty()
                || elements
                    .iter()
                    .any(|e| self.suffix.iter().any(|s| e.ends_with(s.as_str()))))
            && self.any.as_deref().is_none_or(some)
    }
}

/// One `when:` entry of a rule: a source and the test its value must pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    source: FieldSource,
    test: Test,
}

/// A condition that compiled but is worth a warning in `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionWarning(pub String);

impl Condition {
    /// Pairs a parsed source with a written test. `Err` when it can never hold (a constant
    /// that fails it, `exists: false` on a value that is always there, `contains` on a value
    /// that is never an array) or is malformed; a warning when it always holds.
    pub fn compile(
        source: FieldSource,
        spec: &ConditionSpec,
    ) -> Result<(Condition, Option<ConditionWarning>), String> {
        let test = Test::compile(spec)?;
        if let Some(op) = test.array_operator().filter(|_| source.never_array()) {
            return Err(format!(
                "can never hold as meant: `{op}` looks into an array, but `{source}` is always a \
                 single value; to compare the value itself write `{source}: [a, b]` (equals any of)"
            ));
        }
        let mut warning = None;
        if let Some(value) = source.constant() {
            if !test.holds(&value) {
                return Err(format!(
                    "can never hold: `{source}` is the same for every call and fails the test"
                ));
            }
            warning = Some(ConditionWarning(format!(
                "always holds: `{source}` is the same for every call; remove the condition"
            )));
        } else if source.always_present() && test.exists == Some(false) {
            return Err(format!(
                "can never hold: `{source}` always has a value (its `| default.` supplies one)"
            ));
        }
        Ok((Condition { source, test }, warning))
    }

    /// The source's value in this exchange passes the test.
    pub fn holds(&self, view: &View<'_>) -> bool {
        self.test.holds(&self.source.observe(view))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> ConditionSpec {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    fn test(json: &str) -> Test {
        Test::compile(&spec(json)).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    fn one(v: &str) -> Observed {
        Observed::One(v.to_owned())
    }

    fn many(v: &[&str]) -> Observed {
        Observed::Many(v.iter().map(|s| (*s).to_owned()).collect())
    }

    /// `(condition, value, holds)` rows.
    fn check(rows: &[(&str, Observed, bool)]) {
        for (json, value, want) in rows {
            assert_eq!(test(json).holds(value), *want, "{json} against {value:?}");
        }
    }

    #[test]
    fn shorthand_equals_any_of_and_any_element_of_an_array() {
        check(&[
            (r#""password""#, one("password"), true),
            (r#""password""#, one("token"), false),
            (
                r#"["password", "authorization_code"]"#,
                one("authorization_code"),
                true,
            ),
            // The Keystone rule: `methods` is an array.
            (r#""password""#, many(&["token", "password"]), true),
            (r#""password""#, many(&["token"]), false),
            (r#""password""#, Observed::Absent, false),
            (r#""password""#, Observed::Other, false),
            ("true", one("true"), true),
            (r#"{"equals": ["a", "b"]}"#, one("b"), true),
        ]);
    }

    #[test]
    fn not_is_equals_none_of_and_holds_when_absent() {
        check(&[
            (r#"{"not": true}"#, one("true"), false),
            (r#"{"not": true}"#, one("false"), true),
            (r#"{"not": true}"#, Observed::Absent, true),
            (r#"{"not": true}"#, Observed::Other, true),
            (r#"{"not": ["a", "b"]}"#, many(&["c", "b"]), false),
            (r#"{"not": ["a", "b"]}"#, many(&["c", "d"]), true),
        ]);
    }

    #[test]
    fn exists_is_present_or_absent() {
        check(&[
            (r#"{"exists": true}"#, one("x"), true),
            (r#"{"exists": true}"#, many(&["x"]), true),
            (r#"{"exists": true}"#, Observed::Other, true),
            (r#"{"exists": true}"#, Observed::Absent, false),
            (r#"{"exists": false}"#, Observed::Absent, true),
            (r#"{"exists": false}"#, one("x"), false),
        ]);
    }

    #[test]
    fn contains_and_any_look_at_elements() {
        check(&[
            (
                r#"{"contains": "password"}"#,
                many(&["token", "password"]),
                true,
            ),
            (r#"{"contains": "password"}"#, many(&["token"]), false),
            (r#"{"contains": "password"}"#, one("password"), true),
            (r#"{"contains": "password"}"#, Observed::Absent, false),
            (
                r#"{"any": ["admin", "owner"]}"#,
                many(&["user", "owner"]),
                true,
            ),
            (r#"{"any": ["admin", "owner"]}"#, many(&["user"]), false),
            (r#"{"any": ["admin", "owner"]}"#, Observed::Other, false),
        ]);
    }

    #[test]
    fn prefix_on_the_value_or_an_element() {
        check(&[
            (r#"{"prefix": "admin@"}"#, one("admin@x.io"), true),
            (r#"{"prefix": "admin@"}"#, one("bob@x.io"), false),
            (r#"{"prefix": ["a", "b"]}"#, one("bob"), true),
            (r#"{"prefix": "admin@"}"#, many(&["bob@x", "admin@y"]), true),
            (r#"{"prefix": "admin@"}"#, Observed::Absent, false),
        ]);
    }

    #[test]
    fn suffix_on_the_value_or_an_element() {
        check(&[
            (
                r#"{"suffix": "@corp.example"}"#,
                one("ann@corp.example"),
                true,
            ),
            (
                r#"{"suffix": "@corp.example"}"#,
                one("ann@corp.example.evil"),
                false,
            ),
            (r#"{"suffix": ["@a.io", "@b.io"]}"#, one("x@b.io"), true),
            (r#"{"suffix": "@a.io"}"#, many(&["x@c.io", "y@a.io"]), true),
            (r#"{"suffix": "@a.io"}"#, Observed::Absent, false),
        ]);
        let e = Test::compile(&spec(r#"{"suffix": []}"#)).expect_err("empty");
        assert!(e.contains("`suffix` needs at least one value"), "{e}");
        let e = Test::compile(&spec(r#"{"exists": false, "suffix": "x"}"#)).expect_err("never");
        assert!(e.contains("`suffix` needs one"), "{e}");
    }

    #[test]
    fn several_operators_must_all_hold() {
        let t = r#"{"prefix": "admin@", "not": "admin@root", "exists": true}"#;
        check(&[
            (t, one("admin@ops"), true),
            (t, one("admin@root"), false),
            (t, one("bob@ops"), false),
            (t, Observed::Absent, false),
        ]);
    }

    #[test]
    fn conditions_that_can_never_hold_are_errors() {
        for (json, want) in [
            ("[]", "list at least one accepted value"),
            (r#"{"not": []}"#, "`not` needs at least one value"),
            (r#"{"any": []}"#, "`any` needs at least one value"),
            (r#"{"prefix": []}"#, "`prefix` needs at least one value"),
            ("{}", "no operator given"),
            (
                r#"{"exists": false, "contains": "x"}"#,
                "`exists: false` wants no value, `contains`",
            ),
            (r#"{"exists": false, "equals": "x"}"#, "`equals` needs one"),
            (
                r#"{"equals": ["a"], "not": ["a", "b"]}"#,
                "every value `equals` accepts",
            ),
            (
                r#"{"any": ["a", "b"], "not": ["a", "b"]}"#,
                "every value `any` accepts",
            ),
            (
                r#"{"contains": "a", "not": "a"}"#,
                "the value `contains` wants",
            ),
        ] {
            let e = Test::compile(&spec(json)).expect_err(json);
            assert!(e.contains(want), "{json}: {e}");
        }
        assert!(Test::compile(&spec(r#"{"equals": ["a", "b"], "not": "a"}"#)).is_ok());
    }

    fn condition(source: &str, json: &str) -> Result<Option<String>, String> {
        let source = FieldSource::parse(source, &["id".to_owned()]).expect("source");
        Condition::compile(source, &spec(json)).map(|(_, w)| w.map(|w| w.0))
    }

    #[test]
    fn array_operators_on_single_values_are_errors() {
        for source in [
            "request.header.x-method",
            "query.kind",
            "request.form.grant_type",
            "path.id",
            "response.body.methods | first",
            "response.body.methods | join",
        ] {
            for json in [r#"{"contains": "password"}"#, r#"{"any": ["a"]}"#] {
                let e = condition(source, json).expect_err(source);
                assert!(e.contains("is always a single value"), "{source}: {e}");
            }
        }
        // Arrays are possible here: bodies and token claims.
        for source in [
            "request.body.auth.identity.methods",
            "request.jwt.amr",
            "response.body.x | lower",
        ] {
            assert_eq!(
                condition(source, r#"{"contains": "password"}"#),
                Ok(None),
                "{source}"
            );
        }
    }

    #[test]
    fn constants_and_defaults_are_judged_at_load() {
        let e = condition("const.x", r#""y""#).expect_err("never");
        assert!(e.contains("same for every call and fails"), "{e}");
        let w = condition("const.x", r#""x""#).expect("holds");
        assert!(w.is_some_and(|w| w.contains("always holds")));
        let e = condition("request.body.name | default.anon", r#"{"exists": false}"#)
            .expect_err("never");
        assert!(e.contains("always has a value"), "{e}");
        assert_eq!(
            condition(
                "request.body.name | default.anon | not",
                r#"{"exists": false}"#
            ),
            Ok(None)
        );
        assert_eq!(
            condition("request.body.name | default.anon", r#""anon""#),
            Ok(None)
        );
    }
}
