//! Field sources and transforms (README "Field sources and transforms"), parsed once at load.
//!
//! `response.body.access_token | jwt.email` becomes a [`FieldSource`] when the config is
//! compiled, so the extractor never parses source text per request. Evaluating a source never
//! fails: a missing, empty or non-scalar value is simply "no value".

use std::fmt;

use http::HeaderName;

pub use super::json_path::{into_scalar_text, scalar_text, JsonPath, JsonPathError};
pub use super::observed::Observed;
pub use super::view::Side;
use super::view::View;
use crate::redact::is_credential_name;

/// The sources a rule can name, for error messages.
const KNOWN_SOURCES: &str =
    "const.<text>, request.body.<path>, response.body.<path>, request.form.<name>, \
                             path.<param>, query.<name>, request.header.<name>, \
                             response.header.<name>, request.cookie.<name>, \
                             response.cookie.<name>, request.bearer, request.jwt.<claim>";

/// Why a field source cannot be read; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// Not one of the known sources.
    #[error("unknown source `{0}`; known sources: {KNOWN_SOURCES}")]
    Unknown(String),
    /// `request.form.` with nothing after the dot.
    #[error("source `{0}` needs a name after the last `.`")]
    MissingName(String),
    /// `request.header.<name>` with a name HTTP does not allow.
    #[error("`{0}` is not a valid header name")]
    BadHeader(String),
    /// `path.<param>` on a template without parameters.
    #[error("`{0}`: the path template has no parameters")]
    NoParams(String),
    /// `path.<param>` naming a parameter the template does not have.
    #[error("`{text}`: the path template has no `{{{name}}}`; it has {known}")]
    NoSuchParam {
        /// The source as written.
        text: String,
        /// The parameter it names.
        name: String,
        /// The template's parameters, comma-separated.
        known: String,
    },
    /// A `| transform` that does not exist.
    #[error(
        "unknown transform `{0}`; known transforms: last_segment, jwt.<claim>, lower, not, \
         default.<text>, first, join"
    )]
    UnknownTransform(String),
    /// A body, claim or `jwt.` path that is not a path.
    #[error(transparent)]
    Path(#[from] JsonPathError),
}

/// Where a raw value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `const.<text>`: the text itself, whatever the exchange (`Source: const.better-auth`).
    Const(String),
    /// `request.body.<path>` / `response.body.<path>`: JSON.
    Body(Side, JsonPath),
    /// `request.form.<name>`: `application/x-www-form-urlencoded` request body.
    Form(String),
    /// `path.<param>`: the template parameter at this position.
    Path(usize),
    /// `query.<name>`.
    Query(String),
    /// `request.header.<name>` / `response.header.<name>` (first value).
    Header(Side, HeaderName),
    /// `request.jwt.<claim>`: claims of the `Authorization: Bearer` token.
    BearerClaim(JsonPath),
    /// `request.cookie.<name>` (from `Cookie`) / `response.cookie.<name>` (from `Set-Cookie`,
    /// unless the response deletes it).
    Cookie(Side, String),
    /// `request.bearer`: the `Authorization: Bearer` token itself (a credential).
    Bearer,
}

/// A step applied to a value after `|`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transform {
    /// The text after the last `/` (ids in `Location` headers).
    LastSegment,
    /// The value is a JWT: take this claim from its payload.
    Jwt(JsonPath),
    /// Lower-cased (IAMs that store usernames and emails lower-case).
    Lower,
    /// Boolean negation: `true`/`1` -> `false`, `false`/`0` -> `true` (ASCII case ignored);
    /// anything else is no value (`Enabled: response.body.user.banned | not`).
    Not,
    /// This text when there is no value (missing, null, empty) at this point.
    Default(String),
    /// An array's first element (a scalar stays itself).
    First,
    /// An array's elements joined with `, ` (a scalar stays itself).
    Join,
}

impl Transform {
    /// Whether the value after this step is a single value, whatever it was before.
    fn makes_scalar(&self) -> bool {
        matches!(self, Transform::First | Transform::Join)
    }
}

/// A compiled source with its transforms; displays as it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSource {
    source: Source,
    transforms: Vec<Transform>,
    text: String,
}

impl fmt::Display for FieldSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FieldSource {
    /// Parses `source | transform | ...`; `params` are the path template's parameter names.
    pub fn parse(text: &str, params: &[String]) -> Result<Self, SourceError> {
        let mut parts = text.split('|').map(str::trim);
        let head = parts.next().unwrap_or_default();
        let source = parse_source(head, params)?;
        let transforms = parts.map(parse_transform).collect::<Result<Vec<_>, _>>()?;
        let text = std::iter::once(head.to_owned())
            .chain(text.split('|').skip(1).map(|t| t.trim().to_owned()))
            .collect::<Vec<_>>()
            .join(" | ");
        Ok(FieldSource {
            source,
            transforms,
            text,
        })
    }

    /// The source reads a credential and hands it on as is (no `jwt.<claim>` step that would
    /// turn the token into a claim about the user).
    pub fn yields_credential(&self) -> bool {
        let names = match &self.source {
            Source::Body(_, path) | Source::BearerClaim(path) => path.names_credential(),
            Source::Form(name) | Source::Query(name) => is_credential_name(name),
            Source::Header(_, name) => is_credential_name(name.as_str()),
            // Cookie values and bearer tokens are what a session is: always credentials.
            Source::Cookie(..) | Source::Bearer => true,
            Source::Path(_) | Source::Const(_) => false,
        };
        names
            && !self
                .transforms
                .iter()
                .any(|t| matches!(t, Transform::Jwt(_)))
    }

    /// The value for this exchange; `None` when missing, empty, or not a scalar (an array
    /// needs `| first` or `| join` to become a field's value).
    pub fn eval(&self, view: &View<'_>) -> Option<String> {
        self.observe(view).into_scalar()
    }

    /// The value for this exchange in any shape: what conditions are judged against.
    pub fn observe(&self, view: &View<'_>) -> Observed {
        let raw = match &self.source {
            Source::Const(text) => Observed::One(text.clone()),
            Source::Body(side, path) => view.json_observed(*side, path),
            Source::Form(name) => Observed::from_text(view.form_value(name)),
            Source::Path(i) => Observed::from_text(view.path_param(*i)),
            Source::Query(name) => Observed::from_text(view.query_value(name)),
            Source::Header(side, name) => {
                Observed::from_text(view.header(*side, name).map(str::to_owned))
            }
            Source::BearerClaim(path) => view
                .bearer_claims()
                .and_then(|c| path.lookup(c))
                .map_or(Observed::Absent, Observed::from_json),
            Source::Cookie(Side::Request, name) => Observed::from_text(view.request_cookie(name)),
            Source::Cookie(Side::Response, name) => {
                Observed::from_text(view.set_cookie(name).map(|c| c.value))
            }
            Source::Bearer => Observed::from_text(view.bearer_token().map(str::to_owned)),
        };
        self.transform(raw)
    }

    /// The value reads claims of a token the *client* presented (`request.jwt.<claim>`, or a
    /// request value taken through `| jwt.<claim>`): anyone can make such a token up, so its
    /// claims name a user only once the token is trusted (verified, or issued by the IAM).
    pub fn reads_client_token(&self) -> bool {
        match &self.source {
            Source::BearerClaim(_) => true,
            Source::Body(Side::Response, _)
            | Source::Header(Side::Response, _)
            | Source::Cookie(Side::Response, _)
            | Source::Const(_) => false,
            _ => self
                .transforms
                .iter()
                .any(|t| matches!(t, Transform::Jwt(_))),
        }
    }

    /// The client-presented token this value's claims come from (see
    /// [`FieldSource::reads_client_token`]), as the client sent it.
    pub fn client_token(&self, view: &View<'_>) -> Option<String> {
        if !self.reads_client_token() {
            return None;
        }
        if let Source::BearerClaim(_) = &self.source {
            return view.bearer_token().map(str::to_owned);
        }
        let before = self
            .transforms
            .iter()
            .position(|t| matches!(t, Transform::Jwt(_)))?;
        let steps = self.transforms.get(..before)?;
        let raw = FieldSource {
            source: self.source.clone(),
            transforms: Vec::new(),
            text: String::new(),
        }
        .observe(view);
        apply(steps, raw).into_scalar()
    }

    /// How long the credential this source reads lives, when the exchange says so: a
    /// `response.cookie.<name>` with `Max-Age` or `Expires`.
    pub fn credential_lifetime(&self, view: &View<'_>) -> Option<std::time::Duration> {
        match &self.source {
            Source::Cookie(Side::Response, name) => view.set_cookie(name)?.lifetime,
            _ => None,
        }
    }

    /// The transforms applied in order; a step that finds nothing to work on yields no value.
    fn transform(&self, value: Observed) -> Observed {
        apply(&self.transforms, value)
    }
}

/// `transforms` applied in order to `value`.
fn apply(transforms: &[Transform], mut value: Observed) -> Observed {
    for t in transforms {
        value = match t {
            Transform::LastSegment => value.map_each(|v| last_segment(&v).map(str::to_owned)),
            Transform::Jwt(path) => match value {
                Observed::One(token) => super::jwt::claims(&token)
                    .and_then(|claims| path.lookup(&claims).map(Observed::from_json))
                    .unwrap_or(Observed::Absent),
                other => other.map_each(|token| {
                    let claims = super::jwt::claims(&token)?;
                    path.lookup(&claims).and_then(scalar_text)
                }),
            },
            Transform::Lower => value.map_each(|v| Some(v.to_lowercase())),
            Transform::Not => value.map_each(|v| negate(&v).map(str::to_owned)),
            Transform::Default(text) if !value.is_present() => Observed::One(text.clone()),
            Transform::Default(_) => value,
            Transform::First => match value {
                Observed::Many(items) => Observed::from_text(items.into_iter().next()),
                Observed::Other => Observed::Absent,
                other => other,
            },
            Transform::Join => match value {
                Observed::Many(items) => Observed::One(items.join(", ")),
                Observed::Other => Observed::Absent,
                other => other,
            },
        };
    }
    value
}

impl FieldSource {
    /// The value never is an array: a single-valued source (form, query, path, header,
    /// constant) or one a `| first` / `| join` step reduces to one value.
    pub fn never_array(&self) -> bool {
        matches!(
            self.source,
            Source::Const(_)
                | Source::Form(_)
                | Source::Query(_)
                | Source::Path(_)
                | Source::Header(..)
                | Source::Cookie(..)
                | Source::Bearer
        ) || self.transforms.iter().any(Transform::makes_scalar)
    }

    /// The value is the same for every exchange (a `const.` source): known at load.
    pub fn constant(&self) -> Option<Observed> {
        match &self.source {
            Source::Const(text) => Some(self.transform(Observed::One(text.clone()))),
            _ => None,
        }
    }

    /// The value can never be absent: a constant's, or one a `| default.` step supplies
    /// when no later step can drop it again.
    pub fn always_present(&self) -> bool {
        if let Some(v) = self.constant() {
            return v.is_present();
        }
        let keeps = |t: &Transform| {
            matches!(
                t,
                Transform::Lower | Transform::Default(_) | Transform::First | Transform::Join
            )
        };
        self.transforms
            .iter()
            .rposition(|t| matches!(t, Transform::Default(_)))
            .and_then(|i| self.transforms.get(i + 1..))
            .is_some_and(|after| after.iter().all(keeps))
    }
}

/// `true`/`1` -> `false`, `false`/`0` -> `true`, ASCII case ignored; else `None`.
fn negate(v: &str) -> Option<&'static str> {
    if v.eq_ignore_ascii_case("true") || v == "1" {
        Some("false")
    } else if v.eq_ignore_ascii_case("false") || v == "0" {
        Some("true")
    } else {
        None
    }
}

/// `http://kc/admin/realms/r/users/abc?x=1` -> `abc`; a trailing slash is ignored.
fn last_segment(value: &str) -> Option<&str> {
    let value = value.split(['?', '#']).next().unwrap_or_default();
    let value = value.trim_end_matches('/');
    let seg = value.rsplit('/').next()?;
    (!seg.is_empty()).then_some(seg)
}

fn parse_source(text: &str, params: &[String]) -> Result<Source, SourceError> {
    let unknown = || SourceError::Unknown(text.to_owned());
    let need = |rest: &str| -> Result<(), SourceError> {
        if rest.is_empty() {
            Err(SourceError::MissingName(text.to_owned()))
        } else {
            Ok(())
        }
    };
    if let Some(constant) = text.strip_prefix("const.") {
        need(constant)?;
        return Ok(Source::Const(constant.to_owned()));
    }
    let (scope, rest) = text.split_once('.').ok_or_else(unknown)?;
    match scope {
        "request" | "response" => {
            let side = if scope == "request" {
                Side::Request
            } else {
                Side::Response
            };
            if (side, rest) == (Side::Request, "bearer") {
                return Ok(Source::Bearer);
            }
            let (kind, rest) = rest.split_once('.').ok_or_else(unknown)?;
            need(rest)?;
            match (kind, side) {
                ("body", _) => Ok(Source::Body(side, JsonPath::parse(rest)?)),
                ("header", _) => HeaderName::from_bytes(rest.to_ascii_lowercase().as_bytes())
                    .map(|h| Source::Header(side, h))
                    .map_err(|_| SourceError::BadHeader(rest.to_owned())),
                ("form", Side::Request) => Ok(Source::Form(rest.to_owned())),
                ("jwt", Side::Request) => Ok(Source::BearerClaim(JsonPath::parse(rest)?)),
                ("cookie", _) => Ok(Source::Cookie(side, rest.to_owned())),
                _ => Err(unknown()),
            }
        }
        "path" => {
            need(rest)?;
            params
                .iter()
                .position(|p| p == rest)
                .map(Source::Path)
                .ok_or_else(|| {
                    if params.is_empty() {
                        SourceError::NoParams(text.to_owned())
                    } else {
                        SourceError::NoSuchParam {
                            text: text.to_owned(),
                            name: rest.to_owned(),
                            known: params.join(", "),
                        }
                    }
                })
        }
        "query" => {
            need(rest)?;
            Ok(Source::Query(rest.to_owned()))
        }
        _ => Err(unknown()),
    }
}

fn parse_transform(text: &str) -> Result<Transform, SourceError> {
    match text {
        "last_segment" => Ok(Transform::LastSegment),
        "lower" => Ok(Transform::Lower),
        "not" => Ok(Transform::Not),
        "first" => Ok(Transform::First),
        "join" => Ok(Transform::Join),
        _ => {
            if let Some(claim) = text.strip_prefix("jwt.") {
                Ok(Transform::Jwt(JsonPath::parse(claim)?))
            } else if let Some(fallback) = text.strip_prefix("default.") {
                if fallback.is_empty() {
                    return Err(SourceError::MissingName(text.to_owned()));
                }
                Ok(Transform::Default(fallback.to_owned()))
            } else {
                Err(SourceError::UnknownTransform(text.to_owned()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<FieldSource, String> {
        FieldSource::parse(text, &["realm".to_owned(), "id".to_owned()]).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_every_source() {
        assert_eq!(parse("path.id").expect("ok").source, Source::Path(1));
        assert!(matches!(
            parse("request.body.a.0").expect("ok").source,
            Source::Body(Side::Request, _)
        ));
        assert!(matches!(
            parse("response.body.a").expect("ok").source,
            Source::Body(Side::Response, _)
        ));
        assert_eq!(
            parse("request.form.username").expect("ok").source,
            Source::Form("username".into())
        );
        assert_eq!(
            parse("query.q").expect("ok").source,
            Source::Query("q".into())
        );
        assert_eq!(
            parse("response.header.Location").expect("ok").source,
            Source::Header(Side::Response, HeaderName::from_static("location"))
        );
        assert!(matches!(
            parse("request.jwt.sub").expect("ok").source,
            Source::BearerClaim(_)
        ));
        let s = parse("response.body.access_token|jwt.email |  lower").expect("ok");
        assert_eq!(s.transforms.len(), 2);
        assert_eq!(
            s.to_string(),
            "response.body.access_token | jwt.email | lower"
        );
    }

    #[test]
    fn rejects_bad_sources() {
        for (bad, want) in [
            ("body.id", "unknown source"),
            ("response.form.x", "unknown source"),
            ("response.jwt.sub", "unknown source"),
            ("request.body.", "needs a name"),
            ("request.body.a..b", "empty step"),
            ("path.user", "has no `{user}`; it has realm, id"),
            ("request.header.bad header", "not a valid header name"),
            ("path.id | upper", "unknown transform `upper`"),
            ("", "unknown source"),
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains(want), "{bad}: {err}");
        }
        let err = FieldSource::parse("path.id", &[]).expect_err("no params");
        assert_eq!(err, SourceError::NoParams("path.id".to_owned()));
        assert!(err.to_string().contains("no parameters"), "{err}");
    }

    #[test]
    fn cookie_and_bearer_sources() {
        assert_eq!(
            parse("request.cookie.better-auth.session_token")
                .expect("ok")
                .source,
            Source::Cookie(Side::Request, "better-auth.session_token".into())
        );
        assert_eq!(
            parse("response.cookie.sid").expect("ok").source,
            Source::Cookie(Side::Response, "sid".into())
        );
        assert_eq!(parse("request.bearer").expect("ok").source, Source::Bearer);
        for bad in ["response.bearer", "request.cookie.", "request.bearer.x"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        for cred in [
            "request.cookie.theme",
            "response.cookie.sid",
            "request.bearer",
        ] {
            assert!(parse(cred).expect(cred).yields_credential(), "{cred}");
        }
    }

    #[test]
    fn client_presented_tokens_are_told_apart() {
        for client in [
            "request.jwt.sub",
            "request.form.refresh_token | jwt.sub",
            "query.id_token_hint | jwt.email",
            "request.bearer | jwt.sub",
            "request.cookie.id | jwt.sub",
            "request.header.x-token | lower | jwt.sub",
        ] {
            assert!(
                parse(client).expect(client).reads_client_token(),
                "{client}"
            );
        }
        for issued in [
            "response.body.access_token | jwt.sub",
            "response.header.x-token | jwt.sub",
            "response.cookie.id | jwt.sub",
            "request.body.username",
            "request.bearer",
            "path.id",
        ] {
            assert!(
                !parse(issued).expect(issued).reads_client_token(),
                "{issued}"
            );
        }
    }

    #[test]
    fn credentials_are_recognised() {
        for cred in [
            "request.body.password",
            "request.form.client_secret",
            "request.body.credentials.0.value",
            "request.header.authorization",
            "response.body.access_token",
            "request.form.refresh_token | lower",
        ] {
            assert!(parse(cred).expect(cred).yields_credential(), "{cred}");
        }
        for ok in [
            "request.body.username",
            "response.body.access_token | jwt.email",
            "request.form.refresh_token | jwt.sub",
            "request.jwt.sub",
            "path.id",
        ] {
            assert!(!parse(ok).expect(ok).yields_credential(), "{ok}");
        }
    }

    #[test]
    fn json_paths() {
        let doc = json!({
            "a": {"b": [10, {"c": "deep"}]},
            "emails": [{"value": "w@x", "primary": false}, {"value": "p@x", "primary": true}],
            "others": [{"value": "first@x"}, {"value": "second@x"}],
            "0": "key zero"
        });
        let at = |p: &str| JsonPath::parse(p).expect("path").lookup(&doc).cloned();
        assert_eq!(at("a.b.0"), Some(json!(10)));
        assert_eq!(at("a.b.1.c"), Some(json!("deep")));
        assert_eq!(at("a.b.2"), None);
        assert_eq!(at("a.b.x"), None);
        assert_eq!(at("a.b.1.c.d"), None);
        assert_eq!(at("0"), Some(json!("key zero")));
        assert_eq!(at("emails.primary.value"), Some(json!("p@x")));
        assert_eq!(at("others.primary.value"), Some(json!("first@x")));
        assert_eq!(at("emails.0.value"), Some(json!("w@x")));
    }

    #[test]
    fn scalars_render_as_text() {
        assert_eq!(scalar_text(&json!("x")), Some("x".into()));
        assert_eq!(scalar_text(&json!(42)), Some("42".into()));
        assert_eq!(scalar_text(&json!(1.5)), Some("1.5".into()));
        assert_eq!(scalar_text(&json!(true)), Some("true".into()));
        assert_eq!(scalar_text(&json!("")), None);
        assert_eq!(scalar_text(&json!(null)), None);
        assert_eq!(scalar_text(&json!({"a": 1})), None);
        assert_eq!(scalar_text(&json!([1])), None);
        for v in [
            json!("x"),
            json!(""),
            json!(7),
            json!(false),
            json!(null),
            json!([1]),
        ] {
            assert_eq!(into_scalar_text(v.clone()), scalar_text(&v));
        }
    }

    #[test]
    fn last_segments() {
        assert_eq!(
            last_segment("http://kc/admin/realms/r/users/abc-1"),
            Some("abc-1")
        );
        assert_eq!(last_segment("/Users/2819c223/"), Some("2819c223"));
        assert_eq!(last_segment("/users/7?expand=1"), Some("7"));
        assert_eq!(last_segment("plain"), Some("plain"));
        assert_eq!(last_segment("/"), None);
        assert_eq!(last_segment(""), None);
    }

    #[test]
    fn constants_and_new_transforms() {
        let s = parse("const.better-auth").expect("const");
        assert_eq!(s.source, Source::Const("better-auth".into()));
        assert_eq!(s.constant(), Some(Observed::One("better-auth".into())));
        assert!(s.never_array() && s.always_present() && !s.yields_credential());
        assert_eq!(
            parse("const.x | default.y | lower")
                .expect("ok")
                .to_string(),
            "const.x | default.y | lower"
        );
        assert!(parse("const.").expect_err("empty").contains("needs a name"));
        assert!(parse("request.body.a | default.")
            .expect_err("empty")
            .contains("needs a name"));
        let err = parse("request.body.a | upper").expect_err("unknown");
        assert!(
            err.contains("known transforms: last_segment, jwt.<claim>, lower, not, default.<text>, first, join"),
            "{err}"
        );
        assert!(parse("nowhere.x")
            .expect_err("unknown")
            .contains("known sources: const.<text>, request.body"));
        let t = |text: &str| parse(text).expect(text);
        let many = |v: &[&str]| Observed::Many(v.iter().map(|s| (*s).to_owned()).collect());
        let one = |v: &str| Observed::One(v.to_owned());
        for (text, input, want) in [
            ("request.body.b | not", one("true"), one("false")),
            ("request.body.b | not", one("FALSE"), one("true")),
            ("request.body.b | not", one("1"), one("false")),
            ("request.body.b | not", one("0"), one("true")),
            ("request.body.b | not", one("yes"), Observed::Absent),
            (
                "request.body.b | not",
                many(&["true", "x", "0"]),
                many(&["false", "true"]),
            ),
            ("request.body.b | not | not", one("1"), one("true")),
            (
                "request.body.b | default.anon",
                Observed::Absent,
                one("anon"),
            ),
            ("request.body.b | default.anon", one("bob"), one("bob")),
            (
                "request.body.b | default.anon",
                Observed::Other,
                Observed::Other,
            ),
            (
                "request.body.b | not | default.true",
                one("maybe"),
                one("true"),
            ),
            ("request.body.b | first", many(&["a", "b"]), one("a")),
            ("request.body.b | first", one("a"), one("a")),
            ("request.body.b | first", Observed::Other, Observed::Absent),
            ("request.body.b | join", many(&["a", "b"]), one("a, b")),
            ("request.body.b | join", Observed::Absent, Observed::Absent),
            (
                "request.body.b | lower",
                many(&["A", "B"]),
                many(&["a", "b"]),
            ),
            (
                "request.body.b | last_segment",
                many(&["/u/1", "/"]),
                many(&["1"]),
            ),
            (
                "request.body.b | first | lower",
                many(&["ADMIN", "x"]),
                one("admin"),
            ),
        ] {
            assert_eq!(
                t(text).transform(input.clone()),
                want,
                "{text} on {input:?}"
            );
        }
        assert!(t("request.body.b | first").never_array());
        assert!(!t("request.body.b | lower").never_array());
        assert!(!t("request.jwt.amr").never_array());
        assert!(t("request.body.b | default.x | lower").always_present());
        assert!(!t("request.body.b | default.x | not").always_present());
        assert!(!t("request.body.b").always_present());
        assert!(t("request.body.b | first | default.x").always_present());
    }
}
