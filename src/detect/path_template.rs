//! Route path templates: `/realms/{realm}/users/{id}` as the router sees it.
//!
//! Parsing checks the template fully (leading `/`, no query, well-formed and unique
//! parameters, a catch-all only at the end) so the router never sees a bad route. Parameter
//! names are replaced by positions, so templates that differ only in names share one entry.
//! Not to be confused with `template`, which renders webhook bodies and URLs.

/// Why a path template cannot be routed; each says what is wrong with the template as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathTemplateError {
    /// Paths are absolute.
    #[error("`{0}` must start with `/`")]
    NotAbsolute(String),
    /// A template matches paths; the query is not part of one.
    #[error("`{0}`: a path template has no query or fragment")]
    QueryOrFragment(String),
    /// A `}` with no `{` before it.
    #[error("`{0}`: `}}` without `{{`")]
    StrayClose(String),
    /// A `{` never closed.
    #[error("`{0}`: unclosed `{{`")]
    Unclosed(String),
    /// A parameter name that is empty or not an identifier.
    #[error("`{template}`: parameter `{{{inner}}}` must be a name of letters, digits and `_`")]
    BadName {
        /// The template as written.
        template: String,
        /// What stood between the braces.
        inner: String,
    },
    /// Two parameters with one name.
    #[error("`{template}`: parameter `{name}` appears twice")]
    Duplicate {
        /// The template as written.
        template: String,
        /// The repeated name.
        name: String,
    },
    /// `{*rest}` followed by more path.
    #[error("`{template}`: `{{*{name}}}` must end the path")]
    CatchAllNotLast {
        /// The template as written.
        template: String,
        /// The catch-all's name.
        name: String,
    },
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    /// As written (base path joined, trailing slash removed).
    pub text: String,
    /// The matchit route with positional parameter names (`/users/{p0}`), so templates that
    /// differ only in parameter names share one router entry.
    pub route: String,
    /// Parameter names in path order.
    pub params: Vec<String>,
}

impl PathTemplate {
    /// Parses `/realms/{realm}/users/{id}` or `/files/{*rest}`.
    pub fn parse(text: &str) -> Result<Self, PathTemplateError> {
        if !text.starts_with('/') {
            return Err(PathTemplateError::NotAbsolute(text.to_owned()));
        }
        if text.contains(['?', '#']) {
            return Err(PathTemplateError::QueryOrFragment(text.to_owned()));
        }
        let trimmed = if text.len() > 1 {
            text.trim_end_matches('/')
        } else {
            text
        };
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let mut route = String::with_capacity(trimmed.len());
        let mut params: Vec<String> = Vec::new();
        let mut rest = trimmed;
        while let Some(open) = rest.find(['{', '}']) {
            if rest.as_bytes()[open] == b'}' {
                return Err(PathTemplateError::StrayClose(text.to_owned()));
            }
            route.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| PathTemplateError::Unclosed(text.to_owned()))?;
            let inner = &after[..close];
            let (catch_all, name) = match inner.strip_prefix('*') {
                Some(n) => (true, n),
                None => (false, inner),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(PathTemplateError::BadName {
                    template: text.to_owned(),
                    inner: inner.to_owned(),
                });
            }
            if params.iter().any(|p| p == name) {
                return Err(PathTemplateError::Duplicate {
                    template: text.to_owned(),
                    name: name.to_owned(),
                });
            }
            rest = &after[close + 1..];
            if catch_all && !rest.is_empty() {
                return Err(PathTemplateError::CatchAllNotLast {
                    template: text.to_owned(),
                    name: name.to_owned(),
                });
            }
            let star = if catch_all { "*" } else { "" };
            route.push_str(&format!("{{{star}p{}}}", params.len()));
            params.push(name.to_owned());
        }
        route.push_str(rest);
        Ok(PathTemplate {
            text: trimmed.to_owned(),
            route,
            params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_templates() {
        let t = PathTemplate::parse("/realms/{realm}/users/{id}/").expect("ok");
        assert_eq!(t.text, "/realms/{realm}/users/{id}");
        assert_eq!(t.route, "/realms/{p0}/users/{p1}");
        assert_eq!(t.params, vec!["realm".to_owned(), "id".to_owned()]);
        let t = PathTemplate::parse("/files/{*rest}").expect("ok");
        assert_eq!(t.route, "/files/{*p0}");
        assert_eq!(PathTemplate::parse("/").expect("ok").route, "/");
        for (bad, want) in [
            ("users", "must start with `/`"),
            ("/users?x=1", "no query"),
            ("/users/{id", "unclosed"),
            ("/users/id}", "without `{`"),
            ("/users/{}", "must be a name"),
            ("/a/{id}/b/{id}", "appears twice"),
            ("/a/{*rest}/b", "must end the path"),
        ] {
            let e = PathTemplate::parse(bad).expect_err(bad).to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
