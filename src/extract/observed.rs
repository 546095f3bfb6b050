//! What a source saw in one exchange: nothing, one value, or the scalar elements of an array.
//!
//! The value view conditions are judged against (`detect::condition`) and transforms work on
//! (`| first` takes an array's first element, `| not` negates each element). Independent of
//! routes and exchanges, so anything with values (a webhook filter over an event) can build
//! one. Building one never fails: nulls, empty strings and empty arrays are [`Observed::Absent`].

use serde_json::Value;

use super::json_path::{into_scalar_text, scalar_text};

/// One source's value in one exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Missing, null, an empty string or an empty array.
    Absent,
    /// A scalar, as text (`true`, `42`, `alice`); never empty.
    One(String),
    /// An array's scalar elements, as text, in order; never empty (null, empty and
    /// non-scalar elements are skipped).
    Many(Vec<String>),
    /// Present but not text: an object, or an array with no scalar element.
    Other,
}

impl Observed {
    /// From a parsed JSON value.
    pub fn from_json(v: &Value) -> Observed {
        match v {
            Value::Array(items) => {
                Observed::from_elements(items.iter().filter_map(scalar_text), items.is_empty())
            }
            Value::Object(_) => Observed::Other,
            scalar => Observed::from_text(scalar_text(scalar)),
        }
    }

    /// From an owned JSON value (a string moves into the result without a copy).
    pub fn from_json_owned(v: Value) -> Observed {
        match v {
            Value::Array(items) => {
                let empty = items.is_empty();
                Observed::from_elements(items.into_iter().filter_map(into_scalar_text), empty)
            }
            Value::Object(_) => Observed::Other,
            scalar => Observed::from_text(into_scalar_text(scalar)),
        }
    }

    /// From text that may be missing or empty.
    pub fn from_text(text: Option<String>) -> Observed {
        match text {
            Some(t) if !t.is_empty() => Observed::One(t),
            _ => Observed::Absent,
        }
    }

    fn from_elements(elements: impl Iterator<Item = String>, empty: bool) -> Observed {
        let texts: Vec<String> = elements.filter(|t| !t.is_empty()).collect();
        match (texts.is_empty(), empty) {
            (false, _) => Observed::Many(texts),
            (true, true) => Observed::Absent,
            (true, false) => Observed::Other,
        }
    }

    /// There is a value (of any shape).
    pub fn is_present(&self) -> bool {
        !matches!(self, Observed::Absent)
    }

    /// The texts a comparison looks at: the scalar, or each element of the array.
    pub fn elements(&self) -> &[String] {
        match self {
            Observed::One(t) => std::slice::from_ref(t),
            Observed::Many(items) => items,
            Observed::Absent | Observed::Other => &[],
        }
    }

    /// The scalar a field takes: `None` for an absent value, an array or an object.
    pub fn into_scalar(self) -> Option<String> {
        match self {
            Observed::One(t) => Some(t),
            _ => None,
        }
    }

    /// `f` applied to the scalar or to each element; elements `f` refuses are dropped.
    pub fn map_each(self, mut f: impl FnMut(String) -> Option<String>) -> Observed {
        match self {
            Observed::One(t) => Observed::from_text(f(t)),
            Observed::Many(items) => {
                let texts: Vec<String> = items
                    .into_iter()
                    .filter_map(f)
                    .filter(|t| !t.is_empty())
                    .collect();
                if texts.is_empty() {
                    Observed::Absent
                } else {
                    Observed::Many(texts)
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes() {
        for v in [json!(null), json!(""), json!([]), json!([null, ""])] {
            let want = if v == json!([null, ""]) {
                Observed::Other
            } else {
                Observed::Absent
            };
            assert_eq!(Observed::from_json(&v), want, "{v}");
            assert_eq!(Observed::from_json_owned(v.clone()), want, "{v}");
        }
        assert_eq!(
            Observed::from_json(&json!(true)),
            Observed::One("true".into())
        );
        assert_eq!(Observed::from_json(&json!(42)), Observed::One("42".into()));
        assert_eq!(Observed::from_json(&json!({"a": 1})), Observed::Other);
        assert_eq!(Observed::from_json(&json!([{"a": 1}])), Observed::Other);
        let mixed = json!(["password", 1, {"x": 1}, null, true]);
        let want = Observed::Many(vec!["password".into(), "1".into(), "true".into()]);
        assert_eq!(Observed::from_json(&mixed), want);
        assert_eq!(Observed::from_json_owned(mixed), want);
        assert_eq!(want.elements().len(), 3);
        assert!(!Observed::Absent.is_present() && Observed::Other.is_present());
        assert_eq!(Observed::Other.elements(), &[] as &[String]);
    }

    #[test]
    fn map_each_drops_refused_elements() {
        let up = |t: String| (t != "b").then(|| t.to_uppercase());
        assert_eq!(
            Observed::Many(vec!["a".into(), "b".into()]).map_each(up),
            Observed::Many(vec!["A".into()])
        );
        assert_eq!(
            Observed::Many(vec!["b".into()]).map_each(up),
            Observed::Absent
        );
        assert_eq!(Observed::One("b".into()).map_each(up), Observed::Absent);
        assert_eq!(Observed::Other.map_each(up), Observed::Other);
        assert_eq!(Observed::One("x".into()).into_scalar(), Some("x".into()));
        assert_eq!(Observed::Many(vec!["x".into()]).into_scalar(), None);
    }
}
