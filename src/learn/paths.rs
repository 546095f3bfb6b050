//! Path templates from concrete paths, as Optic infers them: identifiers become parameters on
//! sight, words become one once [`COLLAPSE_AT`] distinct siblings are seen under a plural
//! collection (`/admin/users/ann`, `/admin/users/bob`, `/admin/users/cy` -> `/admin/users/{user}`);
//! the first segment and version segments (`v1`, `api`) never are.
//!
//! Only words are kept, and only until they collapse: a word under a collection is at most
//! [`COLLAPSE_AT`]` - 1` values per position, dropped when the position collapses; identifiers
//! are never kept at all. Positions are capped at [`MAX_POSITIONS`].

use std::collections::HashMap;

use super::segment::{self, Kind};

/// Distinct words under one collection that make the position a parameter.
pub const COLLAPSE_AT: usize = 3;

/// Most path positions (prefix + next segment) tracked; past it new words stay literal.
pub const MAX_POSITIONS: usize = 4096;

/// One segment of a learned template.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Seg {
    /// A fixed word.
    Literal(String),
    /// A parameter.
    Param,
}

/// The words seen after one prefix, until it collapses.
#[derive(Debug, Default)]
struct Position {
    words: Vec<String>,
    collapsed: bool,
}

/// What normalising a path found: its segments, each parameter's kind, and any position that
/// collapsed just now (the caller re-keys what it keeps under that prefix).
#[derive(Debug)]
pub struct Normalized {
    /// The template's segments.
    pub segs: Vec<Seg>,
    /// The kind of each parameter, in order.
    pub kinds: Vec<Kind>,
    /// `Some(i)`: the position at segment `i` became a parameter with this path.
    pub collapsed: Option<usize>,
}

/// Positions seen so far.
#[derive(Debug, Default)]
pub struct Paths {
    positions: HashMap<Vec<Seg>, Position>,
}

impl Paths {
    /// Normalises a request path (still percent-encoded, without its query).
    pub fn normalize(&mut self, path: &str) -> Normalized {
        let mut segs: Vec<Seg> = Vec::new();
        let mut kinds = Vec::new();
        let mut collapsed = None;
        for (i, raw) in path.split('/').filter(|s| !s.is_empty()).enumerate() {
            if segs.len() >= 16 {
                break;
            }
            if i == 0 || segment::is_version(raw) {
                segs.push(Seg::Literal(raw.to_owned()));
                continue;
            }
            let kind = segment::classify(raw);
            if kind.is_identifier() {
                segs.push(Seg::Param);
                kinds.push(kind);
                continue;
            }
            let collection = match segs.last() {
                Some(Seg::Literal(parent)) => segment::is_plural(parent),
                Some(Seg::Param) => false,
                None => false,
            };
            let full = self.positions.len() >= MAX_POSITIONS;
            let position = if full {
                self.positions.get_mut(&segs)
            } else {
                Some(self.positions.entry(segs.clone()).or_default())
            };
            let param = match position {
                Some(p) if p.collapsed => true,
                Some(p) if collection => {
                    if !p.words.iter().any(|w| w == raw) {
                        p.words.push(raw.to_owned());
                    }
                    if p.words.len() >= COLLAPSE_AT {
                        p.collapsed = true;
                        p.words.clear();
                        collapsed = Some(i);
                        true
                    } else {
                        false
                    }
                }
                _ => false,
            };
            if param {
                segs.push(Seg::Param);
                kinds.push(Kind::Word);
            } else {
                segs.push(Seg::Literal(raw.to_owned()));
            }
        }
        if collapsed.is_some() {
            self.rekey_positions(&segs, collapsed);
        }
        Normalized {
            segs,
            kinds,
            collapsed,
        }
    }

    /// After the position at `at` collapsed, positions below one of its words move under the
    /// parameter.
    fn rekey_positions(&mut self, segs: &[Seg], at: Option<usize>) {
        let Some(at) = at else { return };
        let prefix = &segs[..at];
        let moved: Vec<Vec<Seg>> = self
            .positions
            .keys()
            .filter(|k| k.len() > at && k[..at] == *prefix && matches!(k[at], Seg::Literal(_)))
            .cloned()
            .collect();
        for key in moved {
            if let Some(p) = self.positions.remove(&key) {
                let target = collapse_key(&key, at);
                let into = self.positions.entry(target).or_default();
                into.collapsed |= p.collapsed;
                for w in p.words {
                    if !into.collapsed && !into.words.contains(&w) {
                        into.words.push(w);
                    }
                }
                if into.words.len() >= COLLAPSE_AT {
                    into.collapsed = true;
                    into.words.clear();
                }
            }
        }
    }
}

/// `key` with its segment `at` made a parameter.
pub fn collapse_key(key: &[Seg], at: usize) -> Vec<Seg> {
    let mut k = key.to_vec();
    if at < k.len() {
        k[at] = Seg::Param;
    }
    k
}

/// The template text: parameters named from their parent (`users` -> `{user}`), made unique
/// with a number when a name repeats.
pub fn render(segs: &[Seg]) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut names: Vec<String> = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        text.push('/');
        match s {
            Seg::Literal(w) => text.push_str(w),
            Seg::Param => {
                let parent = match i.checked_sub(1).map(|p| &segs[p]) {
                    Some(Seg::Literal(w)) if !segment::is_version(w) => Some(w.as_str()),
                    _ => None,
                };
                let base = segment::param_name(parent);
                let mut name = base.clone();
                let mut n = 2;
                while names.contains(&name) {
                    name = format!("{base}{n}");
                    n += 1;
                }
                text.push('{');
                text.push_str(&name);
                text.push('}');
                names.push(name);
            }
        }
    }
    if text.is_empty() {
        text.push('/');
    }
    (text, names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(p: &mut Paths, path: &str) -> String {
        render(&p.normalize(path).segs).0
    }

    #[test]
    fn identifiers_are_parameters_at_once() {
        let mut p = Paths::default();
        assert_eq!(template(&mut p, "/users/42"), "/users/{user}");
        assert_eq!(
            template(
                &mut p,
                "/scim/v2/Users/9b2f4c1e-8d3a-4f6b-9c7e-1a2b3c4d5e6f"
            ),
            "/scim/v2/Users/{user}"
        );
        assert_eq!(
            template(
                &mut p,
                "/api/v1/accounts/01ARZ3NDEKTSV4RRFFQ69G5FAV/keys/5f1e2d3c4b5a69788796a5b4"
            ),
            "/api/v1/accounts/{account}/keys/{key}"
        );
        assert_eq!(
            template(&mut p, "/by-email/ann@example.com"),
            "/by-email/{by_email}"
        );
        // never the first segment, never a version
        assert_eq!(template(&mut p, "/42/v1/api"), "/42/v1/api");
        // a parameter after a parameter is named `id`, then numbered
        assert_eq!(template(&mut p, "/x/42/43"), "/x/{x}/{id}");
        assert_eq!(template(&mut p, "/v1/42/43"), "/v1/{id}/{id2}");
    }

    #[test]
    fn words_collapse_once_several_siblings_are_seen() {
        let mut p = Paths::default();
        assert_eq!(
            template(&mut p, "/api/v1/admin/users/ann"),
            "/api/v1/admin/users/ann"
        );
        assert_eq!(
            template(&mut p, "/api/v1/admin/users/bob/rename"),
            "/api/v1/admin/users/bob/rename"
        );
        let n = p.normalize("/api/v1/admin/users/cy");
        assert_eq!(n.collapsed, Some(4));
        assert_eq!(render(&n.segs).0, "/api/v1/admin/users/{user}");
        assert_eq!(
            template(&mut p, "/api/v1/admin/users/bob/rename"),
            "/api/v1/admin/users/{user}/rename"
        );
        assert_eq!(
            template(&mut p, "/api/v1/admin/users/dee"),
            "/api/v1/admin/users/{user}"
        );
        // siblings under a word that is no collection stay literal
        for w in ["users", "orgs", "repos", "teams"] {
            assert_eq!(
                template(&mut p, &format!("/api/v1/admin/{w}")),
                format!("/api/v1/admin/{w}")
            );
        }
        // the words are forgotten once collapsed
        assert!(p
            .positions
            .values()
            .all(|pos| !pos.words.iter().any(|w| w == "ann")));
    }
}
