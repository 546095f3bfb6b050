//! Built-in rule sets for well-known IAM APIs (`generic`, `keycloak`, `scim`, `dce`,
//! `keystone`, `better-auth`, `fastapi-users`, `gitea`, `casdoor`, `zitadel`).
//!
//! This module's job: turn the profile files under `src/detect/profiles/` into [`Profile`]s.
//! Each file is data written in the `routes:` syntax of `userhook.yaml`, plus the profile's
//! name, default base path and a paragraph for the docs. The files are embedded in the binary
//! and read once, through the config's own YAML reading (`config::parse_yaml_as`: the same
//! YAML options, unknown keys are errors) into the same [`RouteSpec`]s an operator's `routes:`
//! become, then compiled by the same [`Rule::compile`](super::Rule::compile). So a user can
//! copy a file's rules into a config and get the same behaviour, and the README's profile
//! tables are rendered from the same data ([`describe`]; `tests/profile_docs.rs` fails when
//! the README drifts from the files).
//!
//! What it must never do:
//! - extract a credential (a password, secret or raw token): [`Rule::compile`](super::Rule::compile)
//!   refuses such a source in any rule whose origin is a profile, whatever the file says;
//! - panic on a broken file: a file that does not load becomes a
//!   [`ConfigError`](crate::config::ConfigError) at config load (via [`find`]), and fails the
//!   unit tests before it can ship.

use std::fmt::Write as _;
use std::sync::LazyLock;

use serde::Deserialize;

use crate::config::model::RouteSpec;
use crate::event::{Action, BUILTIN_USER_FIELDS};

/// One profile file: metadata and the rules, in priority order, exactly as `routes:` entries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The name used under `profiles:`.
    pub name: String,
    /// Prefix of every rule's path unless the config gives another (`""`: none).
    pub base_path: String,
    /// One paragraph for the docs.
    pub about: String,
    /// Where the IAM publishes the keys that sign its tokens (a path under the base path,
    /// `{param}` filled from the matched call's path), so client-presented tokens can be
    /// verified.
    #[serde(default)]
    pub jwks: Option<String>,
    /// The rules, paths relative to the base path.
    pub routes: Vec<RouteSpec>,
}

impl Profile {
    /// The rules as config entries, their paths under `base`.
    pub fn specs_under<'a>(&'a self, base: &'a str) -> impl Iterator<Item = RouteSpec> + 'a {
        self.routes.iter().map(move |r| RouteSpec {
            path: join_base(base, &r.path),
            ..r.clone()
        })
    }
}

/// The embedded profile files, in documentation order: (name, text).
const FILES: [(&str, &str); 10] = [
    ("generic", include_str!("profiles/generic.yaml")),
    ("keycloak", include_str!("profiles/keycloak.yaml")),
    ("scim", include_str!("profiles/scim.yaml")),
    ("dce", include_str!("profiles/dce.yaml")),
    ("keystone", include_str!("profiles/keystone.yaml")),
    ("better-auth", include_str!("profiles/better-auth.yaml")),
    ("fastapi-users", include_str!("profiles/fastapi-users.yaml")),
    ("gitea", include_str!("profiles/gitea.yaml")),
    ("casdoor", include_str!("profiles/casdoor.yaml")),
    ("zitadel", include_str!("profiles/zitadel.yaml")),
];

/// Why a profile named in a config cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// No built-in profile has that name.
    #[error("unknown profile `{name}`; known: {known}")]
    Unknown {
        /// The name as written.
        name: String,
        /// The built-in names, comma-separated.
        known: String,
    },
    /// The embedded file does not load: a bug in this build, said as such.
    #[error(
        "built-in profile `{name}` cannot be loaded (a bug in this build of userhook; please \
         report it): src/detect/profiles/{name}.yaml: {}",
        problems.join("; ")
    )]
    Broken {
        /// The profile's name.
        name: &'static str,
        /// Every problem its file has.
        problems: Vec<String>,
    },
}

/// A profile file as loaded: the profile, or why it did not load.
struct Builtin {
    name: &'static str,
    loaded: Result<Profile, ProfileError>,
}

/// Every profile file, parsed on first use.
static BUILTINS: LazyLock<Vec<Builtin>> = LazyLock::new(|| load(&FILES));

fn load(files: &[(&'static str, &str)]) -> Vec<Builtin> {
    files
        .iter()
        .map(|&(name, text)| Builtin {
            name,
            loaded: parse(name, text).map_err(|problems| ProfileError::Broken { name, problems }),
        })
        .collect()
}

/// One profile file's text to a [`Profile`], or every problem found.
fn parse(name: &str, text: &str) -> Result<Profile, Vec<String>> {
    let profile: Profile = crate::config::parse_yaml_as(text)
        .map_err(|e| e.0.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let mut problems = Vec::new();
    if profile.name != name {
        problems.push(format!("name: `{}` is not the file's name", profile.name));
    }
    if !is_plain_base_path(&profile.base_path) {
        problems.push(format!(
            "base_path: `{}` must be empty or a plain path starting with `/`",
            profile.base_path
        ));
    }
    if problems.is_empty() {
        Ok(profile)
    } else {
        Err(problems)
    }
}

fn find_in<'a>(builtins: &'a [Builtin], name: &str) -> Result<&'a Profile, ProfileError> {
    match builtins.iter().find(|b| b.name == name) {
        Some(b) => b.loaded.as_ref().map_err(Clone::clone),
        None => Err(ProfileError::Unknown {
            name: name.to_owned(),
            known: names(),
        }),
    }
}

/// The profile called `name`; the error says that no such profile exists or that its file
/// does not load, ready to be a [`ConfigError`](crate::config::ConfigError) at the key that
/// names it.
pub fn find(name: &str) -> Result<&'static Profile, ProfileError> {
    find_in(&BUILTINS, name)
}

/// Every built-in profile, in documentation order, or the first that does not load.
pub fn all() -> Result<Vec<&'static Profile>, ProfileError> {
    BUILTINS
        .iter()
        .map(|b| b.loaded.as_ref().map_err(Clone::clone))
        .collect()
}

/// The known profile names, for error messages.
pub fn names() -> String {
    FILES.map(|(name, _)| name).join(", ")
}

/// A base path as a profile or a config may give one: empty, or `/` and no template or query.
pub fn is_plain_base_path(b: &str) -> bool {
    b.is_empty() || (b.starts_with('/') && !b.contains(['{', '}', '?', '#']))
}

/// `base` + `path`, with no doubled or trailing slash (`/auth` + `/admin/...`).
pub fn join_base(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    if path == "/" && !base.is_empty() {
        base.to_owned()
    } else {
        format!("{base}{path}")
    }
}

/// Every profile's rules as Markdown: a section per profile with a table of its rules. The
/// README holds it between `<!-- profiles:begin -->` and `<!-- profiles:end -->`.
pub fn describe() -> Result<String, ProfileError> {
    let mut out = String::new();
    for p in all()? {
        let base = if p.base_path.is_empty() {
            "none".to_owned()
        } else {
            format!("`{}`", p.base_path)
        };
        let _ = writeln!(
            out,
            "### `{}` (default base path: {base})\n\n{}\n",
            p.name,
            p.about.trim()
        );
        if let Some(jwks) = &p.jwks {
            let _ = writeln!(
                out,
                "Signing keys (JWKS), fetched through the upstream: `{}`\n",
                join_base(&p.base_path, jwks)
            );
        }
        out.push_str(
            "| action | method | path | status | when | fields (first non-empty source wins; *details*: this event only) | session (credentials, kept as keyed hashes) | note |\n",
        );
        out.push_str("|---|---|---|---|---|---|---|---|\n");
        for r in &p.routes {
            let cells = [
                r.action.0.join(", "),
                r.method.clone(),
                format!("`{}`", join_base(&p.base_path, &r.path)),
                statuses(r),
                r.when
                    .iter()
                    .map(|(source, condition)| format!("`{source}` {}", condition.describe()))
                    .collect::<Vec<_>>()
                    .join("<br>"),
                fields_in_doc_order(r)
                    .map(|(name, sources)| {
                        let sources: Vec<String> =
                            sources.iter().map(|s| format!("`{s}`")).collect();
                        format!("**{name}**: {}", sources.join(", "))
                    })
                    .chain(r.details.iter().map(|(name, sources)| {
                        let sources: Vec<String> =
                            sources.0.iter().map(|s| format!("`{s}`")).collect();
                        format!("*detail* **{name}**: {}", sources.join(", "))
                    }))
                    .collect::<Vec<_>>()
                    .join("<br>"),
                session_cell(r),
                r.note.split_whitespace().collect::<Vec<_>>().join(" "),
            ];
            for cell in cells {
                let _ = write!(out, "| {} ", cell.replace('|', "\\|"));
            }
            out.push_str("|\n");
        }
        out.push('\n');
    }
    Ok(out.trim_end().to_owned() + "\n")
}

/// A rule's `session:` block for the docs: what it issues, presents, ends.
fn session_cell(r: &RouteSpec) -> String {
    let Some(s) = &r.session else {
        return String::new();
    };
    let list = |v: &[String]| {
        v.iter()
            .map(|x| format!("`{x}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !s.issues.0.is_empty() {
        parts.push(format!("**issues**: {}", list(&s.issues.0)));
    }
    if let Some(e) = &s.expires {
        parts.push(format!("**expires**: `{e}`"));
    }
    if let Some(t) = &s.ttl {
        parts.push(format!("**ttl**: {t}"));
    }
    if !s.presents.0.is_empty() {
        parts.push(format!("**presents**: {}", list(&s.presents.0)));
    }
    if s.ends {
        parts.push("**ends** the presented credential".to_owned());
    }
    parts.join("<br>")
}

/// The statuses a rule fires on, the compiler's defaults spelled out.
fn statuses(r: &RouteSpec) -> String {
    let list = match &r.status {
        Some(list) => list.clone(),
        None if r.action.0.iter().all(|a| a == Action::LoginFailed.as_str()) => {
            super::rule::LOGIN_FAILED_STATUSES.to_vec()
        }
        None => return "2xx".to_owned(),
    };
    list.iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A rule's fields, the built-in ones in their usual order (`ID`, `Email`, `Name`, ...), then
/// custom ones by name. (A rule's fields are a map: the file's order is not kept.)
fn fields_in_doc_order(r: &RouteSpec) -> impl Iterator<Item = (&String, &Vec<String>)> {
    let rank = |name: &str| {
        BUILTIN_USER_FIELDS
            .iter()
            .position(|b| *b == name)
            .unwrap_or(BUILTIN_USER_FIELDS.len())
    };
    let mut fields: Vec<(&String, &Vec<String>)> = r
        .fields
        .iter()
        .map(|(name, sources)| (name, &sources.0))
        .collect();
    fields.sort_by_key(|(name, _)| rank(name));
    fields.into_iter()
}

#[cfg(test)]
mod tests;
