//! What `${VAR}` took from the environment, and taking it back out of messages.
//!
//! Values are secrets until proven otherwise: they are kept only to be replaced by
//! `${VARIABLE}` in anything shown to people, and must never be printed themselves (`Debug`
//! shows the variable names only).

use super::error::ConfigError;
use super::interpolate::Substitution;

/// What was substituted from the environment, and where. Values are secrets until proven
/// otherwise: they are only ever used to be replaced by `${VARIABLE}`.
#[derive(Clone, Default)]
pub struct EnvValues(pub Vec<Substitution>);

impl std::fmt::Debug for EnvValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|s| &s.var))
            .finish()
    }
}

impl EnvValues {
    /// Values shorter than this are not replaced everywhere (a `1` or `true` would garble
    /// text); secrets are longer.
    const MIN_LEN: usize = 6;

    /// `text` with every environment value of at least 6 bytes replaced by `${VARIABLE}`,
    /// longest first.
    pub fn scrub(&self, text: &str) -> String {
        self.scrub_at(text, None)
    }

    /// A config error with environment values taken out of its message: a message about a
    /// key that received a value loses every such value, however short; elsewhere only values
    /// of at least 6 bytes are replaced (a `1` or `true` would garble the text).
    pub fn scrub_error(&self, mut error: ConfigError) -> ConfigError {
        error.message = self.scrub_at(&error.message, Some(&error.path));
        error
    }

    fn scrub_at(&self, text: &str, path: Option<&str>) -> String {
        let near = |s: &Substitution| {
            path.is_some_and(|p| {
                p == s.path
                    || p.starts_with(&format!("{}.", s.path))
                    || s.path.starts_with(&format!("{p}."))
                    || s.path.starts_with(&format!("{p}["))
            })
        };
        let mut subs: Vec<&Substitution> = self
            .0
            .iter()
            .filter(|s| !s.value.is_empty() && (s.value.len() >= Self::MIN_LEN || near(s)))
            .collect();
        subs.sort_by_key(|s| std::cmp::Reverse(s.value.len()));
        let mut out = text.to_string();
        for s in subs {
            if out.contains(s.value.as_str()) {
                out = out.replace(s.value.as_str(), &format!("${{{}}}", s.var));
            }
        }
        out
    }
}
