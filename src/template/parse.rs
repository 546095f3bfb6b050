//! Splitting template text into literal pieces and `{{$$.Name$$}}` variable slots.
//!
//! The one place that knows the DCE syntax. It accepts spaces just inside the braces
//! (`{{ $$.Name$$ }}`), which is unambiguous because `$$.` must follow; any other `{{` is
//! literal text. It checks every name against the known ones and never panics.

use std::ops::Range;

use super::error::TemplateError;
use super::vars::{is_known, BUILTIN_USER_FIELDS, EVENT_VARIABLES};

/// A template split once at load: `literals[0] slots[0] literals[1] ... slots[n-1] literals[n]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// The original text; literals are ranges into it.
    pub text: Box<str>,
    /// One more than `slots`: the text before, between and after the variables.
    pub literals: Vec<Range<usize>>,
    pub slots: Vec<Slot>,
}

/// One variable occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slot {
    pub name: Box<str>,
    /// Where the whole `{{$$.Name$$}}` sits in the text.
    pub span: Range<usize>,
}

impl Parsed {
    /// Total bytes of literal text, the fixed part of every rendering's size.
    pub(super) fn literal_len(&self) -> usize {
        self.literals.iter().map(|r| r.len()).sum()
    }

    /// The literal text of piece `i`.
    pub(super) fn literal(&self, i: usize) -> &str {
        self.literals
            .get(i)
            .and_then(|r| self.text.get(r.clone()))
            .unwrap_or("")
    }
}

const OPEN: &str = "{{";
const MARK: &str = "$$.";
const CLOSE: &str = "$$";
const END: &str = "}}";

/// Name bytes; `.` for `Previous.<Field>`.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
}

fn skip_spaces(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i) == Some(&b' ') {
        i += 1;
    }
    i
}

/// Splits `text`, accepting built-in names and those `known` accepts (custom fields).
pub(crate) fn parse(text: &str, known: &dyn Fn(&str) -> bool) -> Result<Parsed, TemplateError> {
    let bytes = text.as_bytes();
    let mut literals = Vec::new();
    let mut slots = Vec::new();
    let mut lit_start = 0;
    let mut search = 0;
    while let Some(off) = text.get(search..).and_then(|rest| rest.find(OPEN)) {
        let open = search + off;
        let mark = skip_spaces(bytes, open + OPEN.len());
        if !text.get(mark..).is_some_and(|r| r.starts_with(MARK)) {
            // Not ours: `{{` stays literal. Step one byte so `{{{$$.X$$}}` still finds the
            // variable that starts at the second brace.
            search = open + 1;
            continue;
        }
        let name_start = mark + MARK.len();
        let mut name_end = name_start;
        while bytes.get(name_end).copied().is_some_and(is_name_byte) {
            name_end += 1;
        }
        let close_end = closing(text, name_end).filter(|_| name_end > name_start);
        let Some(close_end) = close_end else {
            return Err(malformed(text, open, name_start));
        };
        let name = text.get(name_start..name_end).unwrap_or("");
        if !is_known(name, known) {
            return Err(TemplateError::UnknownVariable {
                name: name.to_owned(),
                suggestion: suggest(name),
            });
        }
        literals.push(lit_start..open);
        slots.push(Slot {
            name: name.into(),
            span: open..close_end,
        });
        lit_start = close_end;
        search = close_end;
    }
    literals.push(lit_start..text.len());
    Ok(Parsed {
        text: text.into(),
        literals,
        slots,
    })
}

/// The end of `$$ }}` starting at `at`, if that is what is there.
fn closing(text: &str, at: usize) -> Option<usize> {
    let rest = text.get(at..)?;
    if !rest.starts_with(CLOSE) {
        return None;
    }
    let end = skip_spaces(text.as_bytes(), at + CLOSE.len());
    text.get(end..)?.starts_with(END).then_some(end + END.len())
}

/// The error for a variable opened at `open` that does not close properly.
fn malformed(text: &str, open: usize, name_start: usize) -> TemplateError {
    let Some(rel) = text.get(name_start..).and_then(|r| r.find(END)) else {
        return TemplateError::Unterminated { at: open };
    };
    // Quote up to the next `}}`, but never more than a line's worth.
    let mut end = (name_start + rel + END.len()).min(open + 60);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    TemplateError::Malformed {
        at: open,
        found: text.get(open..end).unwrap_or("").to_owned(),
    }
}

/// A built-in name close to `name` (same letters in another case, or a typo or two away).
fn suggest(name: &str) -> Option<&'static str> {
    let all = || BUILTIN_USER_FIELDS.iter().chain(EVENT_VARIABLES).copied();
    if let Some(same) = all().find(|k| k.eq_ignore_ascii_case(name)) {
        return Some(same);
    }
    if name.len() > 64 {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    all()
        .map(|k| (edit_distance(&lower, &k.to_ascii_lowercase()), k))
        .filter(|&(d, k)| d <= 2 && d < k.len().min(name.len()))
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

/// Edit distance counting an adjacent swap as one edit (`Emial` -> `Email` is 1).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * w + j] = if i == 0 {
                j
            } else if j == 0 {
                i
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (d[(i - 1) * w + j] + 1)
                    .min(d[i * w + j - 1] + 1)
                    .min(d[(i - 1) * w + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(d[(i - 2) * w + j - 2] + 1);
                }
                best
            };
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> bool {
        false
    }

    fn names(p: &Parsed) -> Vec<&str> {
        p.slots.iter().map(|s| &*s.name).collect()
    }

    #[test]
    fn splits_literals_and_slots() {
        let p = parse("a{{$$.ID$$}}b{{ $$.Name$$ }}c", &none).expect("parses");
        assert_eq!(names(&p), ["ID", "Name"]);
        let lits: Vec<&str> = (0..p.literals.len()).map(|i| p.literal(i)).collect();
        assert_eq!(lits, ["a", "b", "c"]);
        assert_eq!(p.literal_len(), 3);
        assert_eq!(p.slots[1].span, 13..28);
    }

    #[test]
    fn other_braces_stay_literal() {
        let p = parse("{{x}} {{{$$.ID$$}}} {{", &none).expect("parses");
        assert_eq!(names(&p), ["ID"]);
        assert_eq!(p.literal(0), "{{x}} {");
        assert_eq!(p.literal(1), "} {{");
    }

    #[test]
    fn custom_fields_need_the_predicate() {
        let err = parse("{{$$.Department$$}}", &none).unwrap_err();
        assert!(matches!(err, TemplateError::UnknownVariable { .. }));
        let p = parse("{{$$.Department$$}}", &|n| n == "Department").expect("declared");
        assert_eq!(names(&p), ["Department"]);
    }

    #[test]
    fn previous_values_of_user_fields_are_variables() {
        let dept = |n: &str| n == "Department";
        let p = parse("{{$$.Changed$$}}: {{$$.Previous.Email$$}} -> {{$$.Email$$}}, {{$$.Previous.Department$$}}", &dept)
            .expect("known names");
        assert_eq!(
            names(&p),
            ["Changed", "Previous.Email", "Email", "Previous.Department"]
        );
        for bad in [
            "{{$$.Previous.Event$$}}",
            "{{$$.Previous.Nope$$}}",
            "{{$$.Previous.$$}}",
            "{{$$.Email.x$$}}",
        ] {
            assert!(
                matches!(
                    parse(bad, &dept),
                    Err(TemplateError::UnknownVariable { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_variable_lists_known_names_and_suggests() {
        let err = parse(r#"{"e":"{{$$.Emial$$}}"}"#, &none).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown variable {{$$.Emial$$}}; known: ID, Email, Name, FirstName, LastName, \
             CreatedAt, Enabled, Event, Object, Action, EventID, Timestamp, SourceIP, UserAgent, \
             RequestID, Status, Changed, Attribution, ActorSub, ActorAzp, ActorClientId, \
             ActorBasicUser, ActorIp, ActorUserAgent, ActorVerified, custom fields declared under routes[].fields, and Previous.<Field> of any user field; \
             did you mean {{$$.Email$$}}?"
        );
        let err = parse("{{$$.name$$}}", &none).unwrap_err();
        assert_eq!(
            err,
            TemplateError::UnknownVariable {
                name: "name".into(),
                suggestion: Some("Name")
            }
        );
        let err = parse("{{$$.Zzzzzzzz$$}}", &none).unwrap_err();
        assert!(matches!(
            err,
            TemplateError::UnknownVariable {
                suggestion: None,
                ..
            }
        ));
    }

    #[test]
    fn unterminated_and_malformed_are_errors() {
        assert_eq!(
            parse(r#"{"a":"{{$$.Name"}"#, &none).unwrap_err(),
            TemplateError::Unterminated { at: 6 }
        );
        assert_eq!(
            parse("x {{$$.", &none).unwrap_err().to_string(),
            "unterminated variable at byte 2: `{{$$.` without a closing `$$}}`"
        );
        assert_eq!(
            parse("{{$$.Name}}", &none).unwrap_err(),
            TemplateError::Malformed {
                at: 0,
                found: "{{$$.Name}}".into()
            }
        );
        assert_eq!(
            parse("{{$$.Na me$$}}", &none).unwrap_err(),
            TemplateError::Malformed {
                at: 0,
                found: "{{$$.Na me$$}}".into()
            }
        );
        assert!(matches!(
            parse("{{$$.$$}}", &none).unwrap_err(),
            TemplateError::Malformed { .. }
        ));
    }

    #[test]
    fn malformed_snippet_is_cut_on_a_char_boundary() {
        let text = format!("{{{{$$.ä{}}}}}", "é".repeat(60));
        let err = parse(&text, &none).unwrap_err();
        let TemplateError::Malformed { found, .. } = err else {
            panic!("expected malformed, got {err:?}");
        };
        assert!(found.len() <= 60 && found.starts_with("{{$$."));
    }

    #[test]
    fn edit_distance_counts_swaps_once() {
        assert_eq!(edit_distance("emial", "email"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
