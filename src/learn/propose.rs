//! From what was learned to a proposed `routes:` YAML: every endpoint scored for each
//! lifecycle action from its evidence, the likely rules written out with comments citing
//! the evidence and counts, the less certain ones commented out for a human to confirm.
//!
//! Only shapes reach the text: methods, templates, statuses, key names and counts. The
//! output parses as a config `userhook check` accepts (tests compile it).

use std::collections::HashSet;
use std::fmt::Write as _;

use super::observe::{Endpoint, EndpointKey, Learned, StatusShape};
use super::paths::{self, Seg};
use super::segment::Kind;
use super::shape::{self, types, Keys, Meaning};

/// A score at or above this is proposed as a rule; below it (but above zero) commented out.
pub const CERTAIN: u32 = 4;

/// A rule proposal for one endpoint.
#[derive(Debug, Clone)]
struct Proposal {
    actions: Vec<&'static str>,
    method: String,
    path: String,
    statuses: Vec<u16>,
    score: u32,
    evidence: Vec<String>,
    fields: Vec<(&'static str, Vec<String>)>,
    session: Vec<(&'static str, Vec<String>)>,
    ends: bool,
    /// `when:` conditions: a source and its YAML test (`{exists: true}`, `ok`).
    when: Vec<(String, String)>,
}

const USER_WORDS: &[&str] = &[
    "user",
    "users",
    "account",
    "accounts",
    "member",
    "members",
    "identity",
    "identities",
    "people",
    "person",
    "profile",
    "me",
    "human",
    "humans",
    "principal",
    "principals",
];
const LOGIN_WORDS: &[&str] = &[
    "login",
    "signin",
    "sign-in",
    "sign_in",
    "token",
    "tokens",
    "session",
    "sessions",
    "authenticate",
    "authentication",
    "jwt",
];
const LOGOUT_WORDS: &[&str] = &[
    "logout",
    "signout",
    "sign-out",
    "sign_out",
    "logoff",
    "revoke",
    "end_session",
];
const SIGNUP_WORDS: &[&str] = &["signup", "sign-up", "sign_up", "register", "registration"];

fn words(key: &EndpointKey) -> Vec<String> {
    key.segs
        .iter()
        .filter_map(|s| match s {
            Seg::Literal(w) => Some(w.to_ascii_lowercase()),
            Seg::Param => None,
        })
        .collect()
}

fn has_word(key: &EndpointKey, list: &[&str]) -> bool {
    words(key).iter().any(|w| {
        list.iter()
            .any(|l| w == l || w.split(['-', '_', '.']).any(|p| p == *l))
    })
}

/// The last segment is a parameter of a user collection (`/users/{user}`).
fn user_member(key: &EndpointKey) -> bool {
    let n = key.segs.len();
    n >= 2
        && key.segs[n - 1] == Seg::Param
        && matches!(&key.segs[n - 2], Seg::Literal(w) if USER_WORDS.contains(&w.to_ascii_lowercase().as_str()))
}

/// The user a path parameter names, from the kind of its values: an identifier is the `ID`,
/// an email the `Email`, a word the `Name`.
fn param_field(e: &Endpoint, index: usize) -> &'static str {
    let kind = e
        .param_kinds
        .get(index)
        .and_then(|k| k.iter().max_by_key(|(_, n)| **n).map(|(k, _)| *k));
    match kind {
        Some(Kind::Email) => "Email",
        Some(Kind::Word) => "Name",
        _ => "ID",
    }
}

/// Key paths of `keys` meaning `m`, most frequent first (then shortest), typed as a scalar.
fn keys_meaning(keys: &Keys, m: Meaning) -> Vec<String> {
    let mut found: Vec<(&String, u32)> = keys
        .iter()
        .filter(|(k, s)| {
            // a login name whose values are email addresses is the email (OAuth2 forms)
            let meaning = match shape::meaning(k) {
                Some(Meaning::Name) if s.types & types::EMAIL != 0 => Some(Meaning::Email),
                other => other,
            };
            meaning == Some(m)
                && s.types & (types::STRING | types::NUMBER) != 0
                && !k.contains(".0.")
                && !k.ends_with(".0")
        })
        .map(|(k, s)| (k, s.count))
        .collect();
    found.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then(a.0.len().cmp(&b.0.len()))
            .then(a.0.cmp(b.0))
    });
    found.into_iter().map(|(k, _)| k.clone()).take(2).collect()
}

fn merged(e: &Endpoint, statuses: &[u16]) -> StatusShape {
    let mut out = StatusShape::default();
    for s in statuses {
        if let Some(sh) = e.statuses.get(s) {
            out.count += sh.count;
            for (side, from) in [
                (&mut out.request_json, &sh.request_json),
                (&mut out.request_form, &sh.request_form),
                (&mut out.response_json, &sh.response_json),
            ] {
                for (k, v) in from {
                    let x = side.entry(k.clone()).or_default();
                    x.types |= v.types;
                    x.count += v.count;
                }
            }
            for (k, v) in &sh.response_claims {
                out.response_claims
                    .entry(k.clone())
                    .or_default()
                    .extend(v.iter().cloned());
            }
            out.location += sh.location;
            out.location_id += sh.location_id;
            for (k, words) in &sh.outcomes {
                let e = out.outcomes.entry(k.clone()).or_default();
                for (w, n) in words {
                    *e.entry(w).or_default() += n;
                }
            }
            for (k, n) in &sh.echoes {
                *out.echoes.entry(k.clone()).or_default() += n;
            }
            for (into, from) in [
                (&mut out.cookies_set, &sh.cookies_set),
                (&mut out.cookies_deleted, &sh.cookies_deleted),
                (&mut out.token_headers, &sh.token_headers),
                (&mut out.presented, &sh.presented),
                (&mut out.presented_issued, &sh.presented_issued),
            ] {
                for (k, v) in from {
                    *into.entry(k.clone()).or_default() += v;
                }
            }
        }
    }
    out
}

/// The user fields a call's bodies name: response first, then the request.
fn body_fields(sh: &StatusShape, with_request: bool) -> Vec<(&'static str, Vec<String>)> {
    let mut fields = Vec::new();
    for (name, m) in [
        ("ID", Meaning::Id),
        ("Email", Meaning::Email),
        ("Name", Meaning::Name),
        ("FirstName", Meaning::FirstName),
        ("LastName", Meaning::LastName),
    ] {
        let mut sources: Vec<String> = keys_meaning(&sh.response_json, m)
            .into_iter()
            .map(|k| format!("response.body.{k}"))
            .collect();
        if with_request && m != Meaning::Id {
            sources.extend(
                keys_meaning(&sh.request_json, m)
                    .into_iter()
                    .map(|k| format!("request.body.{k}")),
            );
            sources.extend(
                keys_meaning(&sh.request_form, m)
                    .into_iter()
                    .map(|k| format!("request.form.{k}")),
            );
        }
        if !sources.is_empty() {
            fields.push((name, sources));
        }
    }
    fields
}

fn add_source(
    fields: &mut Vec<(&'static str, Vec<String>)>,
    name: &'static str,
    source: String,
    first: bool,
) {
    match fields.iter_mut().find(|(n, _)| *n == name) {
        Some((_, list)) if !list.contains(&source) => {
            if first {
                list.insert(0, source)
            } else {
                list.push(source)
            }
        }
        Some(_) => {}
        None => fields.push((name, vec![source])),
    }
    fields.sort_by_key(|(n, _)| {
        ["ID", "Email", "Name", "FirstName", "LastName"]
            .iter()
            .position(|x| x == n)
    });
}

/// The user a refused call names: only what the request says (a login name or email).
fn request_fields(sh: &StatusShape) -> Vec<(&'static str, Vec<String>)> {
    body_fields(
        &StatusShape {
            request_json: sh.request_json.clone(),
            request_form: sh.request_form.clone(),
            ..Default::default()
        },
        true,
    )
    .into_iter()
    .filter(|(n, _)| *n != "ID" && *n != "FirstName" && *n != "LastName")
    .collect()
}

/// The credentials a response issues, as session sources, and how they were seen.
fn issued_sources(sh: &StatusShape) -> (Vec<String>, Vec<String>) {
    let mut sources = Vec::new();
    let mut evidence = Vec::new();
    for (c, n) in &sh.cookies_set {
        sources.push(format!("response.cookie.{c}"));
        evidence.push(format!("sets cookie {c} ({n}x)"));
    }
    for (h, n) in &sh.token_headers {
        sources.push(format!("response.header.{h}"));
        evidence.push(format!("answers header {h} ({n}x)"));
    }
    for (k, s) in &sh.response_json {
        if shape::meaning(k) == Some(Meaning::Token)
            && s.types & types::STRING != 0
            && !k.contains(".0")
        {
            sources.push(format!("response.body.{k}"));
            evidence.push(format!("answers body key {k} ({}x)", s.count));
        }
    }
    sources.truncate(4);
    (sources, evidence)
}

fn has_meaning(keys: &Keys, m: Meaning) -> bool {
    keys.keys().any(|k| shape::meaning(k) == Some(m))
}

fn list(keys: &Keys) -> String {
    let v: Vec<&str> = keys
        .keys()
        .map(String::as_str)
        .filter(|k| !k.contains('.'))
        .take(8)
        .collect();
    v.join(", ")
}

fn success(e: &Endpoint) -> Vec<u16> {
    e.statuses
        .keys()
        .copied()
        .filter(|s| (200..400).contains(s))
        .collect()
}

/// What the proposal for one endpoint may know of the others.
#[derive(Debug, Default)]
struct Context {
    /// Templates a non-GET call answered with an issued credential (a login).
    issuing: HashSet<Vec<Seg>>,
    /// Collections with member endpoints (`/users` when `/users/{user}` was called).
    collections: HashSet<Vec<Seg>>,
    /// The API says in the body whether a call worked (`status: ok|error`, seen both ways
    /// somewhere): the key and its success word.
    outcome: Option<(String, &'static str)>,
}

const SUCCESS_WORDS: &[&str] = &["ok", "success", "succeeded", "true"];
const FAILURE_WORDS: &[&str] = &["error", "fail", "failed", "failure", "false"];

/// The outcome key of these answers when they said both success and failure: (key, success
/// word, failure word).
fn outcome_of(sh: &StatusShape) -> Option<(String, &'static str, &'static str)> {
    sh.outcomes.iter().find_map(|(k, words)| {
        let good = words.keys().find(|w| SUCCESS_WORDS.contains(w))?;
        let bad = words.keys().find(|w| FAILURE_WORDS.contains(w))?;
        Some((k.clone(), *good, *bad))
    })
}

impl Context {
    fn of(learned: &Learned) -> Context {
        let mut ctx = Context::default();
        for (k, e) in &learned.endpoints {
            if let Some((Seg::Param, parent)) = k.segs.split_last() {
                ctx.collections.insert(parent.to_vec());
            }
            let issues = e
                .statuses
                .iter()
                .any(|(s, sh)| (200..400).contains(s) && !issued_sources(sh).0.is_empty());
            if issues && k.method != "GET" {
                ctx.issuing.insert(k.segs.clone());
            }
            if ctx.outcome.is_none() {
                let all: Vec<u16> = e.statuses.keys().copied().collect();
                ctx.outcome = outcome_of(&merged(e, &all)).map(|(k, good, _)| (k, good));
            }
        }
        ctx
    }

    /// The template, or the collection it is a member of, is where logins issue credentials.
    fn issued_here(&self, segs: &[Seg]) -> bool {
        self.issuing.contains(segs)
            || matches!(segs.split_last(), Some((Seg::Param, parent)) if self.issuing.contains(parent))
    }
}

/// The last literal word of a template, lower case (`/api/auth/update-user` -> `update-user`).
fn last_word(key: &EndpointKey) -> String {
    words(key).pop().unwrap_or_default()
}

/// An RPC-style call named for what it does (`update-user`, `delete-user`, `add-user`).
fn verb(key: &EndpointKey) -> Option<&'static str> {
    let w = last_word(key);
    let parts: Vec<&str> = w.split(['-', '_', '.']).collect();
    let has = |list: &[&str]| parts.iter().any(|p| list.contains(p));
    if has(&["update", "edit", "modify", "change", "set"]) && !has(&["password"]) {
        Some("updated")
    } else if has(&["delete", "remove", "destroy"]) {
        Some("deleted")
    } else if has(&["create", "add", "new"]) {
        Some("created")
    } else {
        None
    }
}

/// Every proposal for one endpoint.
fn propose_endpoint(key: &EndpointKey, e: &Endpoint, ctx: &Context) -> Vec<Proposal> {
    let (path, params) = paths::render(&key.segs);
    let resolve = |source: &String| -> String {
        match source
            .strip_prefix("path#")
            .and_then(|i| i.parse::<usize>().ok())
        {
            Some(i) => params
                .get(i)
                .map_or(source.clone(), |n| format!("path.{n}")),
            None => source.clone(),
        }
    };
    let method = key.method.to_ascii_uppercase();
    let ok = success(e);
    let ok2xx: Vec<u16> = ok.iter().copied().filter(|s| *s < 300).collect();
    let mut out = Vec::new();
    if ok.is_empty() {
        return out;
    }
    let all_ok = merged(e, &ok);
    let user_path = has_word(key, USER_WORDS);
    let member = user_member(key);
    let new = |actions: Vec<&'static str>, statuses: Vec<u16>| Proposal {
        actions,
        method: method.clone(),
        path: path.clone(),
        statuses,
        score: 0,
        evidence: Vec::new(),
        fields: Vec::new(),
        session: Vec::new(),
        ends: false,
        when: Vec::new(),
    };
    let path_fields = |fields: &mut Vec<(&'static str, Vec<String>)>| {
        if member {
            let i = params.len() - 1;
            add_source(
                fields,
                param_field(e, i),
                format!("path.{}", params[i]),
                true,
            );
        }
    };

    // login: a credential issued in the answer
    let issuing: Vec<u16> = ok
        .iter()
        .copied()
        .filter(|s| {
            e.statuses
                .get(s)
                .is_some_and(|sh| !issued_sources(sh).0.is_empty())
        })
        .collect();
    // `auth` names a login only as the call itself (`POST /auth`), not as a prefix (`/api/auth/…`)
    let login_path = (has_word(key, LOGIN_WORDS)
        || matches!(last_word(key).as_str(), "auth" | "oauth"))
        && !has_word(key, LOGOUT_WORDS);
    let mut login = None;
    if !issuing.is_empty() && method != "GET" && method != "DELETE" {
        let sh = merged(e, &issuing);
        let mut p = new(vec!["login"], issuing.clone());
        let (sources, ev) = issued_sources(&sh);
        p.score += 2;
        p.evidence.push(format!(
            "a credential issued in the answer: {}",
            ev.join(", ")
        ));
        let password = has_meaning(&sh.request_json, Meaning::Password)
            || has_meaning(&sh.request_form, Meaning::Password);
        if password {
            p.score += 2;
            p.evidence.push("the request carries a password key".into());
        }
        if login_path {
            p.score += 1;
            p.evidence.push("a login-like path".into());
        }
        p.fields = body_fields(&sh, true);
        // the answer repeats who logged in: the IAM's word, ahead of the client's
        for ((source, field), n) in &sh.echoes {
            if let Some(field) = ["ID", "Email", "Name"].into_iter().find(|f| f == field) {
                p.evidence
                    .push(format!("{source} repeats the request's {field} ({n}x)"));
                add_source(&mut p.fields, field, source.clone(), false);
                if let Some((_, list)) = p.fields.iter_mut().find(|(n, _)| *n == field) {
                    // after other answer sources, before the request's
                    list.retain(|s| s != source);
                    let at = list
                        .iter()
                        .position(|s| s.starts_with("request."))
                        .unwrap_or(list.len());
                    list.insert(at, source.clone());
                }
            }
        }
        for (k, claims) in &sh.response_claims {
            for (field, claim) in [
                ("ID", "sub"),
                ("Email", "email"),
                ("Name", "preferred_username"),
            ] {
                if claims.contains(claim) {
                    add_source(
                        &mut p.fields,
                        field,
                        format!("response.body.{k} | jwt.{claim}"),
                        false,
                    );
                }
            }
        }
        if let Some(exp) = keys_meaning(&sh.response_json, Meaning::Expiry).first() {
            p.session
                .push(("expires", vec![format!("response.body.{exp}")]));
        }
        // A session cookie the client already holds and the login makes authenticated (the
        // IAM does not set it again): the answer names the user, so the index learns it.
        let held: Vec<String> = sh
            .presented
            .keys()
            .filter(|s| {
                s.strip_prefix("request.cookie.")
                    .is_some_and(|c| sources.contains(&format!("response.cookie.{c}")))
            })
            .cloned()
            .collect();
        p.session.insert(0, ("issues", sources));
        if !held.is_empty() {
            p.evidence.push(format!(
                "the session cookie is also presented, already held: {}",
                held.join(", ")
            ));
            p.session.push(("presents", held));
        }
        p.when = password_condition(&sh);
        login = Some(p);
    }

    // created: a POST answered 201 (or 2xx) with an id, user keys in the request
    if method == "POST" && !ok2xx.is_empty() && !member {
        let sh = merged(e, &ok2xx);
        let mut p = new(vec!["created"], ok2xx.clone());
        let c201 = e.statuses.get(&201).map_or(0, |s| s.count);
        if c201 > 0 {
            p.score += 2;
            p.evidence.push(format!("answered 201 Created ({c201}x)"));
        }
        let id_body = !keys_meaning(&sh.response_json, Meaning::Id).is_empty();
        if id_body || sh.location_id > 0 {
            p.score += 1;
            p.evidence.push(if id_body {
                "an id in the answer's body".into()
            } else {
                format!("Location ends in an id ({}x)", sh.location_id)
            });
        }
        let user_keys = has_meaning(&sh.request_json, Meaning::Name)
            || has_meaning(&sh.request_json, Meaning::Email)
            || has_meaning(&sh.request_form, Meaning::Email);
        if user_keys {
            p.score += 1;
            p.evidence.push(format!(
                "user keys in the request ({})",
                list(&sh.request_json)
            ));
        }
        if user_path {
            p.score += 1;
            p.evidence.push("a user-like path".into());
        }
        if has_word(key, SIGNUP_WORDS) {
            p.score += 2;
            p.evidence.push("a sign-up-like path".into());
        }
        if ctx.collections.contains(&key.segs) {
            p.score += 1;
            p.evidence
                .push(format!("its members are called at {path}/{{…}}"));
        }
        if verb(key) == Some("created") {
            p.score += 1;
            p.evidence.push("named for creating".into());
        }
        if login_path && c201 == 0 {
            p.score = p.score.saturating_sub(2);
        }
        if !(id_body || sh.location_id > 0) {
            p.score = p.score.min(CERTAIN - 1);
        }
        p.fields = body_fields(&sh, true);
        if sh.location_id > 0 {
            add_source(
                &mut p.fields,
                "ID",
                "response.header.location | last_segment".into(),
                false,
            );
        }
        if p.score >= 2 {
            // a sign-up that also logs in: one rule, both events
            if let Some(l) = login
                .as_ref()
                .filter(|l| l.statuses == p.statuses && p.score >= CERTAIN && !login_path)
            {
                p.actions.push("login");
                p.session = l.session.clone();
                p.evidence
                    .push("and a credential issued in the answer".into());
                login = None;
            }
            out.push(p);
        }
    }

    if let Some(mut l) = login.take() {
        if let Some((k, good, bad)) = outcome_of(&merged(e, &l.statuses)) {
            // An IAM that answers 200 either way: the body says which
            let source = format!("response.body.{k}");
            l.evidence
                .push(format!("the answer's `{k}` says {good} or {bad}"));
            let mut f = new(vec!["login_failed"], l.statuses.clone());
            f.score = l.score;
            f.evidence
                .push(format!("the login call answered `{k}: {bad}`"));
            f.when = password_condition(&merged(e, &l.statuses));
            f.when.push((source.clone(), bad.to_owned()));
            f.fields = request_fields(&merged(e, &l.statuses));
            l.when.push((source, good.to_owned()));
            out.push(f);
        }
        let failed: Vec<u16> = e
            .statuses
            .keys()
            .copied()
            .filter(|s| matches!(s, 400 | 401 | 403))
            .collect();
        if !failed.is_empty() && l.score >= 3 {
            let sh = merged(e, &failed);
            let mut f = new(vec!["login_failed"], failed.clone());
            f.score = l.score;
            let counts: Vec<String> = failed
                .iter()
                .map(|s| format!("{s} x{}", e.statuses[s].count))
                .collect();
            f.evidence
                .push(format!("the login call refused: {}", counts.join(", ")));
            f.when = password_condition(&sh);
            if !f.when.is_empty() {
                f.evidence.push(
                    "only calls that carry a password (others, e.g. a refresh, are no login)"
                        .into(),
                );
            }
            f.fields = request_fields(&sh);
            out.push(l);
            out.push(f);
        } else {
            out.push(l);
        }
    }

    // An RPC-style call named for what it does to a user (`update-user`, `delete-user`).
    let rpc = |action: &str| {
        method == "POST" && verb(key) == Some(action) && {
            let w = last_word(key);
            w.split(['-', '_', '.']).any(|p| USER_WORDS.contains(&p)) || user_path
        }
    };
    let rpc_score = |p: &mut Proposal| {
        p.score += 3;
        p.evidence.push(format!(
            "a POST named for this ({}) on a user",
            last_word(key)
        ));
    };

    // updated: PUT/PATCH on a user
    if (matches!(method.as_str(), "PUT" | "PATCH") || rpc("updated")) && !ok2xx.is_empty() {
        let sh = merged(e, &ok2xx);
        let mut p = new(vec!["updated"], ok2xx.clone());
        if method == "POST" {
            rpc_score(&mut p);
        } else {
            p.score += 2;
            p.evidence
                .push(format!("{method} answered {}", codes(e, &ok2xx)));
        }
        if member {
            p.score += 2;
            p.evidence.push("on a member of a user collection".into());
        } else if user_path {
            p.score += 1;
            p.evidence.push("a user-like path".into());
        }
        if has_meaning(&sh.request_json, Meaning::Name)
            || has_meaning(&sh.request_json, Meaning::Email)
        {
            p.score += 1;
            p.evidence.push(format!(
                "user keys in the request ({})",
                list(&sh.request_json)
            ));
        }
        p.fields = body_fields(&sh, true);
        path_fields(&mut p.fields);
        if !member && !p.fields.iter().any(|(n, _)| *n == "ID") {
            presents(&mut p, &sh);
        }
        out.push(p);
    }

    // deleted: a DELETE answered 2xx on a user
    if (method == "DELETE" || rpc("deleted")) && !ok2xx.is_empty() {
        let sh = merged(e, &ok2xx);
        let mut p = new(vec!["deleted"], ok2xx.clone());
        if method == "POST" {
            rpc_score(&mut p);
        } else {
            p.score += 2;
            p.evidence
                .push(format!("DELETE answered {}", codes(e, &ok2xx)));
        }
        if member {
            p.score += 2;
            p.evidence.push("on a member of a user collection".into());
        } else if user_path {
            p.score += 1;
        }
        let last = EndpointKey {
            method: key.method.clone(),
            segs: key
                .segs
                .iter()
                .rfind(|s| **s != Seg::Param)
                .cloned()
                .into_iter()
                .collect(),
        };
        if has_word(&last, LOGIN_WORDS) || has_word(&last, LOGOUT_WORDS) {
            // `DELETE /auth/tokens`, `DELETE /sessions/{id}`: a credential, not a user
            p.score = 0;
        }
        p.fields = body_fields(&sh, method == "POST");
        path_fields(&mut p.fields);
        if !member
            && !p
                .fields
                .iter()
                .any(|(n, _)| matches!(*n, "ID" | "Name" | "Email"))
        {
            presents(&mut p, &sh);
        }
        if p.score > 0 {
            out.push(p);
        }
    }
    // A call that changes a user and also clears cookies is that change, not a logout.
    let changes_user = out.iter().any(|o| {
        o.score >= CERTAIN
            && o.actions
                .iter()
                .any(|a| matches!(*a, "created" | "updated" | "deleted"))
    });

    // logout: a presented credential refused after this call, a deleted cookie, the path
    let ended: u32 = e.ended.values().sum();
    let deleted_cookies: u32 = all_ok.cookies_deleted.values().sum();
    let delete_issued = method == "DELETE" && ctx.issued_here(&key.segs);
    if method != "GET"
        && !changes_user
        && (ended > 0 || deleted_cookies > 0 || has_word(key, LOGOUT_WORDS) || delete_issued)
    {
        let mut p = new(vec!["logout"], ok.clone());
        if delete_issued {
            p.score += 2;
            p.evidence
                .push("a DELETE of what a login call creates".into());
        }
        if ended > 0 {
            p.score += 3;
            let which: Vec<String> = e.ended.iter().map(|(s, n)| format!("{s} ({n}x)")).collect();
            p.evidence.push(format!(
                "credentials accepted here were refused on their next use: {}",
                which.join(", ")
            ));
        }
        if deleted_cookies > 0 {
            p.score += 2;
            let which: Vec<&str> = all_ok.cookies_deleted.keys().map(String::as_str).collect();
            p.evidence
                .push(format!("the answer deletes cookie {}", which.join(", ")));
        }
        if has_word(key, LOGOUT_WORDS) {
            p.score += 2;
            p.evidence.push("a logout-like path".into());
        }
        let mut sources: Vec<String> = e.ended.keys().cloned().collect();
        if !all_ok.presented_issued.is_empty() {
            p.score += 2;
            let which: Vec<&str> = all_ok.presented_issued.keys().map(String::as_str).collect();
            p.evidence.push(format!(
                "presents a credential an earlier answer issued: {}",
                which.join(", ")
            ));
        }
        for s in all_ok.presented_issued.keys() {
            if !sources.contains(s) {
                sources.push(s.clone());
            }
        }
        for c in all_ok.cookies_deleted.keys() {
            let s = format!("request.cookie.{c}");
            if all_ok.presented.contains_key(&s) && !sources.contains(&s) {
                sources.push(s);
            }
        }
        if sources.is_empty() {
            sources.extend(all_ok.presented.keys().cloned());
            p.score = p.score.min(CERTAIN - 1);
        }
        if !sources.is_empty()
            && !out
                .iter()
                .any(|o| o.actions.contains(&"login") && o.score >= CERTAIN)
        {
            sources.truncate(3);
            p.session.push(("presents", sources));
            p.ends = true;
            out.retain(|o| !o.actions.contains(&"deleted") || o.score >= CERTAIN && !member);
            out.push(p);
        }
    }

    // remember: a read of one user (or of the caller) whose answer names them
    if method == "GET" && e.statuses.contains_key(&200) && (member || user_path) {
        let sh = merged(e, &[200]);
        let mut p = new(vec!["remember"], vec![200]);
        p.fields = body_fields(&sh, false);
        if p.fields.iter().any(|(n, _)| *n == "ID") {
            p.score = if member { CERTAIN } else { 3 };
            p.evidence.push(
                "a read of a user whose answer names them (feeds the user cache, no event)".into(),
            );
            if !member && !sh.presented.is_empty() {
                presents(&mut p, &sh);
                p.score = CERTAIN;
                p.evidence
                    .push("the caller's own record: binds the credential it presents".into());
            } else {
                path_fields(&mut p.fields);
                if let Some((_, ids)) = p.fields.iter_mut().find(|(n, _)| *n == "ID") {
                    // the answer's id first: a path may name the user otherwise
                    ids.sort_by_key(|s| s.starts_with("path."));
                }
            }
            out.push(p);
        }
    }
    // An API that says in the body whether a call worked: every rule asks for success
    if let Some((k, good)) = &ctx.outcome {
        let source = format!("response.body.{k}");
        for p in &mut out {
            let says = merged(e, &p.statuses)
                .outcomes
                .get(k)
                .is_some_and(|w| w.contains_key(good));
            if says
                && !p.when.iter().any(|(s, _)| *s == source)
                && !p.actions.contains(&"login_failed")
            {
                p.when.push((source.clone(), (*good).to_owned()));
                p.evidence.push(format!(
                    "the answers say `{k}: {good}` (this API answers failures in the body)"
                ));
            }
        }
    }
    for p in &mut out {
        p.evidence.insert(0, summary(e));
        for (_, sources) in &mut p.session {
            for s in sources.iter_mut() {
                *s = resolve(s);
            }
        }
        for e in &mut p.evidence {
            if let Some(i) = e.find("path#") {
                let end = e[i..].find([' ', ',']).map_or(e.len(), |n| i + n);
                let name = resolve(&e[i..end].to_owned());
                e.replace_range(i..end, &name);
            }
        }
    }
    out
}

/// When some calls of these statuses carry a password and others do not (a refresh grant
/// beside the password grant), the condition that keeps only the first.
fn password_condition(sh: &StatusShape) -> Vec<(String, String)> {
    for (side, keys) in [
        ("request.form", &sh.request_form),
        ("request.body", &sh.request_json),
    ] {
        let found = keys
            .iter()
            .filter(|(k, _)| shape::meaning(k) == Some(Meaning::Password))
            .max_by_key(|(_, s)| s.count);
        if let Some((k, s)) = found {
            if s.count < sh.count {
                return vec![(format!("{side}.{k}"), "{exists: true}".to_owned())];
            }
            return Vec::new();
        }
    }
    Vec::new()
}

/// The credential the caller presents, as `session.presents`.
fn presents(p: &mut Proposal, sh: &StatusShape) {
    let mut sources: Vec<String> = sh.presented_issued.keys().cloned().collect();
    if sources.is_empty() {
        sources = sh.presented.keys().cloned().collect();
    }
    sources.truncate(3);
    if !sources.is_empty() {
        p.session.push(("presents", sources));
    }
}

fn codes(e: &Endpoint, statuses: &[u16]) -> String {
    let v: Vec<String> = statuses
        .iter()
        .map(|s| format!("{s} ({}x)", e.statuses.get(s).map_or(0, |x| x.count)))
        .collect();
    v.join(", ")
}

fn summary(e: &Endpoint) -> String {
    let all: Vec<u16> = e.statuses.keys().copied().collect();
    format!("{} calls; {}", e.count, codes(e, &all))
}

/// What makes two proposals the same rule: method, path, statuses, actions, conditions.
type RuleKey<'a> = (
    String,
    String,
    Vec<u16>,
    Vec<&'a str>,
    Vec<(String, String)>,
);

/// The proposed config text: `upstream` (when known) and the `routes:`.
pub fn render(learned: &Learned, upstream: Option<&str>) -> String {
    let mut keys: Vec<(&EndpointKey, &Endpoint)> = learned.endpoints.iter().collect();
    keys.sort_by(|a, b| {
        (paths::render(&a.0.segs).0, &a.0.method).cmp(&(paths::render(&b.0.segs).0, &b.0.method))
    });
    let ctx = Context::of(learned);
    let mut proposals: Vec<Proposal> = keys
        .iter()
        .flat_map(|(k, e)| propose_endpoint(k, e, &ctx))
        .collect();
    // a rule per method and template: more certain first; the rest commented out
    proposals.sort_by(|a, b| {
        (a.path.as_str(), a.method.as_str())
            .cmp(&(b.path.as_str(), b.method.as_str()))
            .then(b.score.cmp(&a.score))
    });
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Proposed by `userhook learn` from {} exchanges ({} endpoints{}).\n\
         # Only shapes were kept: methods, path templates, statuses, key names and counts.\n\
         # Review every rule before use; the commented-out ones had weaker evidence.",
        learned.exchanges,
        learned.endpoints.len(),
        if learned.overflow > 0 {
            format!(
                ", {} exchanges past the cap of {} endpoints not counted",
                learned.overflow,
                super::observe::MAX_ENDPOINTS
            )
        } else {
            String::new()
        }
    );
    if let Some(u) = upstream {
        let _ = writeln!(text, "upstream: {}", yaml_scalar(u));
    }
    let certain: Vec<&Proposal> = proposals.iter().filter(|p| p.score >= CERTAIN).collect();
    let unsure: Vec<&Proposal> = proposals
        .iter()
        .filter(|p| p.score < CERTAIN && p.score > 0)
        .collect();
    if certain.is_empty() {
        text.push_str("routes: []\n");
    } else {
        text.push_str("routes:\n");
    }
    let mut seen: HashSet<RuleKey<'_>> = HashSet::new();
    for p in certain {
        let k = (
            p.method.clone(),
            p.path.clone(),
            p.statuses.clone(),
            p.actions.clone(),
            p.when.clone(),
        );
        if !seen.insert(k) {
            continue;
        }
        write_rule(&mut text, p, "");
    }
    if !unsure.is_empty() {
        text.push_str("\n# Less certain: uncomment (under routes:) what is right.\n");
        for p in unsure {
            write_rule(&mut text, p, "# ");
        }
    }
    text
}

fn write_rule(text: &mut String, p: &Proposal, prefix: &str) {
    let _ = writeln!(text, "  # {} {}: score {}", p.method, p.path, p.score);
    for e in &p.evidence {
        let _ = writeln!(text, "  #   {e}");
    }
    let action = if p.actions.len() == 1 {
        p.actions[0].to_owned()
    } else {
        format!("[{}]", p.actions.join(", "))
    };
    let _ = writeln!(text, "{prefix}  - action: {action}");
    let _ = writeln!(text, "{prefix}    method: {}", p.method);
    let _ = writeln!(text, "{prefix}    path: {}", yaml_scalar(&p.path));
    let statuses: Vec<String> = p.statuses.iter().map(u16::to_string).collect();
    let _ = writeln!(text, "{prefix}    status: [{}]", statuses.join(", "));
    if !p.when.is_empty() {
        let _ = writeln!(text, "{prefix}    when:");
        for (source, test) in &p.when {
            let _ = writeln!(text, "{prefix}      {}: {test}", yaml_scalar(source));
        }
    }
    if !p.fields.is_empty() {
        let _ = writeln!(text, "{prefix}    fields:");
        for (name, sources) in &p.fields {
            let s: Vec<String> = sources.iter().map(|s| yaml_scalar(s)).collect();
            let _ = writeln!(text, "{prefix}      {name}: [{}]", s.join(", "));
        }
    }
    if !p.session.is_empty() || p.ends {
        let _ = writeln!(text, "{prefix}    session:");
        for (k, sources) in &p.session {
            if *k == "expires" {
                let _ = writeln!(text, "{prefix}      {k}: {}", yaml_scalar(&sources[0]));
            } else {
                let s: Vec<String> = sources.iter().map(|s| yaml_scalar(s)).collect();
                let _ = writeln!(text, "{prefix}      {k}: [{}]", s.join(", "));
            }
        }
        if p.ends {
            let _ = writeln!(text, "{prefix}      ends: true");
        }
    }
}

/// A YAML scalar: plain when safe, single-quoted otherwise.
fn yaml_scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-' | b':'))
        && !s.starts_with(['-', ':'])
        && !s.contains(": ");
    if plain && !s.contains('{') {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}
