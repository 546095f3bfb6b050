//! Built-in rule sets for well-known IAM APIs (`generic`, `keycloak`, `scim`, `dce`).
//!
//! Each profile is plain data: the same rules an operator could write under `routes:`, so the
//! README can show them ([`describe`]) and users can copy and adapt them. Profile rules must
//! never extract a credential (a password, secret or raw token); compiling refuses it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::config::model::{OneOrMany, RouteSpec};

/// One built-in rule: written exactly like an operator's `routes:` entry.
#[derive(Debug)]
pub struct ProfileRule {
    /// An event action, or `remember` (the response only feeds the user cache).
    pub action: &'static str,
    /// HTTP method, upper-case.
    pub method: &'static str,
    /// Template relative to the profile's base path.
    pub path: &'static str,
    /// Empty: the action's default statuses.
    pub status: &'static [u16],
    /// Conditions: field source -> accepted values.
    pub when: &'static [(&'static str, &'static [&'static str])],
    /// User field -> sources, first non-empty wins.
    pub fields: &'static [(&'static str, &'static [&'static str])],
    /// Why the rule looks the way it does (shown in the docs).
    pub note: &'static str,
}

/// A named rule set with its default base path.
#[derive(Debug)]
pub struct Profile {
    /// The name used under `profiles:`.
    pub name: &'static str,
    /// Prefix of every rule's path unless the config gives another (`""`: none).
    pub base_path: &'static str,
    /// One paragraph for the docs.
    pub about: &'static str,
    /// The rules, in priority order.
    pub rules: &'static [ProfileRule],
}

impl ProfileRule {
    /// The rule as a config entry, its path under `base`.
    pub fn to_spec(&self, base: &str) -> RouteSpec {
        let map = |pairs: &[(&str, &[&str])]| -> BTreeMap<String, OneOrMany> {
            pairs
                .iter()
                .map(|(k, v)| {
                    (
                        (*k).to_owned(),
                        OneOrMany(v.iter().map(|s| (*s).to_owned()).collect()),
                    )
                })
                .collect()
        };
        RouteSpec {
            action: self.action.to_owned(),
            method: self.method.to_owned(),
            path: join_base(base, self.path),
            status: (!self.status.is_empty()).then(|| self.status.to_vec()),
            when: map(self.when),
            fields: map(self.fields),
            note: self.note.to_owned(),
        }
    }
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

/// Every built-in profile, in documentation order.
pub const PROFILES: &[Profile] = &[GENERIC, KEYCLOAK, SCIM, DCE];

/// The profile called `name`.
pub fn find(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name == name)
}

/// The known profile names, for error messages.
pub fn names() -> String {
    PROFILES
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------
// generic: a conventional JSON users API.

const G_EMAIL: &[&str] = &["response.body.email", "request.body.email"];
const G_NAME: &[&str] = &[
    "response.body.username",
    "response.body.name",
    "request.body.username",
    "request.body.name",
];
const G_FIRST: &[&str] = &[
    "response.body.first_name",
    "response.body.firstName",
    "request.body.first_name",
    "request.body.firstName",
];
const G_LAST: &[&str] = &[
    "response.body.last_name",
    "response.body.lastName",
    "request.body.last_name",
    "request.body.lastName",
];
const G_CREATED: &[&str] = &["response.body.created_at", "response.body.createdAt"];
const G_ENABLED: &[&str] = &["response.body.enabled", "request.body.enabled"];
const G_BY_PATH: &[&str] = &["path.id", "response.body.id", "response.body.ID"];

/// `generic`: `/users`, `/users/{id}`, `/login`, `/logout`.
pub const GENERIC: Profile = Profile {
    name: "generic",
    base_path: "",
    about: "A conventional JSON users API. Fields come from the response body first, then the request body.",
    rules: &[
        ProfileRule {
            action: "created",
            method: "POST",
            path: "/users",
            status: &[],
            when: &[],
            fields: &[
                (
                    "ID",
                    &[
                        "response.body.id",
                        "response.body.ID",
                        "response.body.data.id",
                        "response.header.location | last_segment",
                    ],
                ),
                ("Email", G_EMAIL),
                ("Name", G_NAME),
                ("FirstName", G_FIRST),
                ("LastName", G_LAST),
                ("CreatedAt", G_CREATED),
                ("Enabled", G_ENABLED),
            ],
            note: "The id from the created resource, or from the `Location` header.",
        },
        ProfileRule {
            action: "updated",
            method: "PUT",
            path: "/users/{id}",
            status: &[],
            when: &[],
            fields: &[
                ("ID", G_BY_PATH),
                ("Email", G_EMAIL),
                ("Name", G_NAME),
                ("FirstName", G_FIRST),
                ("LastName", G_LAST),
                ("CreatedAt", G_CREATED),
                ("Enabled", G_ENABLED),
            ],
            note: "",
        },
        ProfileRule {
            action: "updated",
            method: "PATCH",
            path: "/users/{id}",
            status: &[],
            when: &[],
            fields: &[
                ("ID", G_BY_PATH),
                ("Email", G_EMAIL),
                ("Name", G_NAME),
                ("FirstName", G_FIRST),
                ("LastName", G_LAST),
                ("CreatedAt", G_CREATED),
                ("Enabled", G_ENABLED),
            ],
            note: "",
        },
        ProfileRule {
            action: "deleted",
            method: "DELETE",
            path: "/users/{id}",
            status: &[],
            when: &[],
            fields: &[("ID", &["path.id"])],
            note: "Other fields come from the user cache.",
        },
        ProfileRule {
            action: "remember",
            method: "GET",
            path: "/users/{id}",
            status: &[200],
            when: &[],
            fields: &[
                ("ID", &["response.body.id", "response.body.ID", "path.id"]),
                ("Email", &["response.body.email"]),
                ("Name", &["response.body.username", "response.body.name"]),
                ("FirstName", &["response.body.first_name", "response.body.firstName"]),
                ("LastName", &["response.body.last_name", "response.body.lastName"]),
                ("CreatedAt", G_CREATED),
                ("Enabled", &["response.body.enabled"]),
            ],
            note: "No event: a user read feeds the user cache.",
        },
        ProfileRule {
            action: "login",
            method: "POST",
            path: "/login",
            status: &[],
            when: &[],
            fields: &[
                (
                    "ID",
                    &[
                        "response.body.id",
                        "response.body.user.id",
                        "response.body.user_id",
                        "response.body.access_token | jwt.sub",
                        "response.body.token | jwt.sub",
                    ],
                ),
                (
                    "Email",
                    &[
                        "response.body.email",
                        "response.body.user.email",
                        "response.body.access_token | jwt.email",
                        "response.body.token | jwt.email",
                        "request.body.email",
                    ],
                ),
                (
                    "Name",
                    &[
                        "response.body.username",
                        "response.body.user.username",
                        "response.body.access_token | jwt.preferred_username",
                        "response.body.token | jwt.preferred_username",
                        "request.body.username",
                        "request.form.username",
                    ],
                ),
            ],
            note: "The user from the response (or the issued token's claims), else the attempted username.",
        },
        ProfileRule {
            action: "login_failed",
            method: "POST",
            path: "/login",
            status: &[],
            when: &[],
            fields: &[
                ("Name", &["request.body.username", "request.form.username"]),
                ("Email", &["request.body.email", "request.form.email"]),
            ],
            note: "400, 401 or 403: the attempted username.",
        },
        ProfileRule {
            action: "logout",
            method: "POST",
            path: "/logout",
            status: &[],
            when: &[],
            fields: &[
                ("ID", &["request.jwt.sub", "request.body.id"]),
                ("Name", &["request.jwt.preferred_username", "request.jwt.username"]),
                ("Email", &["request.jwt.email"]),
            ],
            note: "The user from the bearer token's claims; the cache fills the rest.",
        },
    ],
};

// ---------------------------------------------------------------------------------------
// keycloak: admin REST users API and the OIDC token and logout endpoints.

const KC_FROM_REQUEST: [(&str, &[&str]); 5] = [
    ("Name", &["request.body.username | lower"]),
    ("Email", &["request.body.email | lower"]),
    ("FirstName", &["request.body.firstName"]),
    ("LastName", &["request.body.lastName"]),
    ("Enabled", &["request.body.enabled"]),
];
const KC_TOKEN: &str = "/realms/{realm}/protocol/openid-connect/token";
const KC_LOGOUT: &str = "/realms/{realm}/protocol/openid-connect/logout";

/// `keycloak`: Keycloak 17+ paths; set `base_path: /auth` for older (WildFly) releases.
pub const KEYCLOAK: Profile = Profile {
    name: "keycloak",
    base_path: "",
    about: "Keycloak admin REST API (users) and OIDC token/logout endpoints. Keycloak before 17 \
            serves under `/auth`: use `{name: keycloak, base_path: /auth}`.",
    rules: &[
        ProfileRule {
            action: "created",
            method: "POST",
            path: "/admin/realms/{realm}/users",
            status: &[201],
            when: &[],
            fields: &[
                ("ID", &["response.header.location | last_segment"]),
                KC_FROM_REQUEST[0],
                KC_FROM_REQUEST[1],
                KC_FROM_REQUEST[2],
                KC_FROM_REQUEST[3],
                KC_FROM_REQUEST[4],
            ],
            note: "Keycloak answers 201 with an empty body: the id is only in `Location`. \
                   Keycloak stores usernames and emails lower-case.",
        },
        ProfileRule {
            action: "updated",
            method: "PUT",
            path: "/admin/realms/{realm}/users/{id}",
            status: &[],
            when: &[],
            fields: &[
                ("ID", &["path.id"]),
                KC_FROM_REQUEST[0],
                KC_FROM_REQUEST[1],
                KC_FROM_REQUEST[2],
                KC_FROM_REQUEST[3],
                KC_FROM_REQUEST[4],
            ],
            note: "204 without a body: fields from the request, the rest from the cache.",
        },
        ProfileRule {
            action: "deleted",
            method: "DELETE",
            path: "/admin/realms/{realm}/users/{id}",
            status: &[],
            when: &[],
            fields: &[("ID", &["path.id"])],
            note: "204; other fields from the cache.",
        },
        ProfileRule {
            action: "remember",
            method: "GET",
            path: "/admin/realms/{realm}/users/{id}",
            status: &[200],
            when: &[],
            fields: &[
                ("ID", &["response.body.id", "path.id"]),
                ("Name", &["response.body.username"]),
                ("Email", &["response.body.email"]),
                ("FirstName", &["response.body.firstName"]),
                ("LastName", &["response.body.lastName"]),
                ("Enabled", &["response.body.enabled"]),
            ],
            note: "No event: a user read feeds the user cache.",
        },
        ProfileRule {
            action: "login",
            method: "POST",
            path: KC_TOKEN,
            status: &[200],
            when: &[("request.form.grant_type", &["password", "authorization_code"])],
            fields: &[
                (
                    "ID",
                    &["response.body.access_token | jwt.sub", "response.body.id_token | jwt.sub"],
                ),
                (
                    "Email",
                    &["response.body.access_token | jwt.email", "response.body.id_token | jwt.email"],
                ),
                (
                    "Name",
                    &[
                        "response.body.access_token | jwt.preferred_username",
                        "response.body.id_token | jwt.preferred_username",
                        "request.form.username | lower",
                    ],
                ),
                (
                    "FirstName",
                    &["response.body.access_token | jwt.given_name", "response.body.id_token | jwt.given_name"],
                ),
                (
                    "LastName",
                    &["response.body.access_token | jwt.family_name", "response.body.id_token | jwt.family_name"],
                ),
            ],
            note: "Only user logins (password or authorization_code grants), never token refreshes \
                   or client_credentials. The user comes from the issued token's claims.",
        },
        ProfileRule {
            action: "login_failed",
            method: "POST",
            path: KC_TOKEN,
            status: &[400, 401],
            when: &[("request.form.grant_type", &["password"])],
            fields: &[("Name", &["request.form.username | lower"])],
            note: "401 `invalid_grant` (bad credentials) or 400 (e.g. account disabled): the attempted username.",
        },
        ProfileRule {
            action: "logout",
            method: "POST",
            path: KC_LOGOUT,
            status: &[200, 204, 302],
            when: &[],
            fields: &[
                (
                    "ID",
                    &[
                        "request.form.refresh_token | jwt.sub",
                        "request.jwt.sub",
                        "request.form.id_token_hint | jwt.sub",
                    ],
                ),
                (
                    "Name",
                    &[
                        "request.form.refresh_token | jwt.preferred_username",
                        "request.jwt.preferred_username",
                        "request.form.id_token_hint | jwt.preferred_username",
                    ],
                ),
                (
                    "Email",
                    &[
                        "request.form.refresh_token | jwt.email",
                        "request.jwt.email",
                        "request.form.id_token_hint | jwt.email",
                    ],
                ),
            ],
            note: "The user from the `refresh_token` form field, the bearer token or `id_token_hint`; \
                   the cache fills the rest (refresh tokens carry little more than `sub`).",
        },
        ProfileRule {
            action: "logout",
            method: "GET",
            path: KC_LOGOUT,
            status: &[200, 302],
            when: &[],
            fields: &[
                ("ID", &["query.id_token_hint | jwt.sub"]),
                ("Name", &["query.id_token_hint | jwt.preferred_username"]),
                ("Email", &["query.id_token_hint | jwt.email"]),
            ],
            note: "Browser (RP-initiated) logout with `id_token_hint`.",
        },
    ],
};

// ---------------------------------------------------------------------------------------
// scim: SCIM 2.0 (RFC 7643/7644) Users.

const S_NAME: &[&str] = &["response.body.userName", "request.body.userName"];
const S_EMAIL: &[&str] = &[
    "response.body.emails.primary.value",
    "request.body.emails.primary.value",
];
const S_FIRST: &[&str] = &[
    "response.body.name.givenName",
    "request.body.name.givenName",
];
const S_LAST: &[&str] = &[
    "response.body.name.familyName",
    "request.body.name.familyName",
];
const S_ACTIVE: &[&str] = &["response.body.active", "request.body.active"];
const S_CREATED: &[&str] = &["response.body.meta.created"];

/// `scim`: SCIM 2.0 `/Users` including PATCH (RFC 7644 PatchOp).
pub const SCIM: Profile = Profile {
    name: "scim",
    base_path: "/scim/v2",
    about: "SCIM 2.0 Users (RFC 7644). `emails.primary.value` is the email marked primary, else the first.",
    rules: &[
        ProfileRule {
            action: "created",
            method: "POST",
            path: "/Users",
            status: &[201],
            when: &[],
            fields: &[
                ("ID", &["response.body.id", "response.header.location | last_segment"]),
                ("Name", S_NAME),
                ("Email", S_EMAIL),
                ("FirstName", S_FIRST),
                ("LastName", S_LAST),
                ("Enabled", S_ACTIVE),
                ("CreatedAt", S_CREATED),
            ],
            note: "201 with the created resource.",
        },
        ProfileRule {
            action: "updated",
            method: "PUT",
            path: "/Users/{id}",
            status: &[],
            when: &[],
            fields: &[
                ("ID", &["response.body.id", "path.id"]),
                ("Name", S_NAME),
                ("Email", S_EMAIL),
                ("FirstName", S_FIRST),
                ("LastName", S_LAST),
                ("Enabled", S_ACTIVE),
                ("CreatedAt", S_CREATED),
            ],
            note: "",
        },
        ProfileRule {
            action: "updated",
            method: "PATCH",
            path: "/Users/{id}",
            status: &[],
            when: &[],
            fields: &[
                ("ID", &["response.body.id", "path.id"]),
                ("Name", &["response.body.userName"]),
                ("Email", &["response.body.emails.primary.value"]),
                ("FirstName", &["response.body.name.givenName"]),
                ("LastName", &["response.body.name.familyName"]),
                (
                    "Enabled",
                    &[
                        "response.body.active",
                        "request.body.Operations.path=active.value | lower",
                        "request.body.Operations.0.value.active",
                    ],
                ),
                ("CreatedAt", S_CREATED),
            ],
            note: "The request is a PatchOp; fields from the returned resource (200), or only the id \
                   from the path (204) with the cache filling the rest.",
        },
        ProfileRule {
            action: "deleted",
            method: "DELETE",
            path: "/Users/{id}",
            status: &[],
            when: &[],
            fields: &[("ID", &["path.id"])],
            note: "204; other fields from the cache.",
        },
        ProfileRule {
            action: "remember",
            method: "GET",
            path: "/Users/{id}",
            status: &[200],
            when: &[],
            fields: &[
                ("ID", &["response.body.id", "path.id"]),
                ("Name", &["response.body.userName"]),
                ("Email", &["response.body.emails.primary.value"]),
                ("FirstName", &["response.body.name.givenName"]),
                ("LastName", &["response.body.name.familyName"]),
                ("Enabled", &["response.body.active"]),
                ("CreatedAt", S_CREATED),
            ],
            note: "No event: a user read feeds the user cache.",
        },
    ],
};

// ---------------------------------------------------------------------------------------
// dce: DaoCloud Enterprise 5.0 global management (ghippo).

const D_NAME: &[&str] = &["response.body.name", "request.body.name"];
const D_EMAIL: &[&str] = &["response.body.email", "request.body.email"];
const D_FIRST: &[&str] = &["response.body.firstname", "request.body.firstname"];
const D_LAST: &[&str] = &["response.body.lastname", "request.body.lastname"];
const D_ENABLED: &[&str] = &["response.body.enabled", "request.body.enabled"];
const D_CREATED: &[&str] = &["response.body.createdAt"];

/// `dce`: DCE 5.0 ghippo users, login and logout.
pub const DCE: Profile = Profile {
    name: "dce",
    base_path: "/apis/ghippo.io/v1alpha1",
    about: "DCE 5.0 global management (ghippo) users API; user object `id, name, email, \
            firstname, lastname, enabled, createdAt`.",
    rules: &[
        ProfileRule {
            action: "created",
            method: "POST",
            path: "/users",
            status: &[],
            when: &[],
            fields: &[
                ("ID", &["response.body.id", "response.header.location | last_segment"]),
                ("Name", D_NAME),
                ("Email", D_EMAIL),
                ("FirstName", D_FIRST),
                ("LastName", D_LAST),
                ("Enabled", D_ENABLED),
                ("CreatedAt", D_CREATED),
            ],
            note: "",
        },
        ProfileRule {
            action: "updated",
            method: "PUT",
            path: "/users/{id}",
            status: &[],
            when: &[],
            fields: &[
                ("ID", &["path.id", "response.body.id"]),
                ("Name", D_NAME),
                ("Email", D_EMAIL),
                ("FirstName", D_FIRST),
                ("LastName", D_LAST),
                ("Enabled", D_ENABLED),
                ("CreatedAt", D_CREATED),
            ],
            note: "",
        },
        ProfileRule {
            action: "deleted",
            method: "DELETE",
            path: "/users/{id}",
            status: &[],
            when: &[],
            fields: &[("ID", &["path.id"])],
            note: "Other fields from the cache.",
        },
        ProfileRule {
            action: "remember",
            method: "GET",
            path: "/users/{id}",
            status: &[200],
            when: &[],
            fields: &[
                ("ID", &["response.body.id", "path.id"]),
                ("Name", &["response.body.name"]),
                ("Email", &["response.body.email"]),
                ("FirstName", &["response.body.firstname"]),
                ("LastName", &["response.body.lastname"]),
                ("Enabled", &["response.body.enabled"]),
                ("CreatedAt", D_CREATED),
            ],
            note: "No event: a user read feeds the user cache.",
        },
        ProfileRule {
            action: "login",
            method: "POST",
            path: "/login",
            status: &[],
            when: &[],
            fields: &[
                (
                    "ID",
                    &[
                        "response.body.id",
                        "response.body.idToken | jwt.sub",
                        "response.body.id_token | jwt.sub",
                        "response.body.accessToken | jwt.sub",
                        "response.body.access_token | jwt.sub",
                    ],
                ),
                (
                    "Name",
                    &[
                        "response.body.username",
                        "response.body.idToken | jwt.preferred_username",
                        "response.body.id_token | jwt.preferred_username",
                        "request.body.username",
                    ],
                ),
                (
                    "Email",
                    &[
                        "response.body.email",
                        "response.body.idToken | jwt.email",
                        "response.body.id_token | jwt.email",
                    ],
                ),
            ],
            note: "The user from the response or the issued token's claims, else the attempted username.",
        },
        ProfileRule {
            action: "login_failed",
            method: "POST",
            path: "/login",
            status: &[],
            when: &[],
            fields: &[("Name", &["request.body.username", "request.body.name"])],
            note: "400, 401 or 403: the attempted username.",
        },
        ProfileRule {
            action: "logout",
            method: "DELETE",
            path: "/logout",
            status: &[],
            when: &[],
            fields: &[
                ("ID", &["request.jwt.sub"]),
                ("Name", &["request.jwt.preferred_username"]),
                ("Email", &["request.jwt.email"]),
            ],
            note: "The user from the bearer token's claims; the cache fills the rest.",
        },
    ],
};

/// Every profile's rules as Markdown tables, for the README and `userhook check --profiles`.
pub fn describe() -> String {
    let mut out = String::new();
    for p in PROFILES {
        let base = if p.base_path.is_empty() {
            "none"
        } else {
            p.base_path
        };
        let _ = writeln!(
            out,
            "### `{}` (default base path: {base})\n\n{}\n",
            p.name, p.about
        );
        out.push_str(
            "| action | method | path | status | when | fields (first non-empty source wins) |\n",
        );
        out.push_str("|---|---|---|---|---|---|\n");
        for r in p.rules {
            let status = if r.status.is_empty() {
                if r.action == "login_failed" {
                    "400, 401, 403"
                } else {
                    "2xx"
                }
                .to_owned()
            } else {
                r.status
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let when = r
                .when
                .iter()
                .map(|(k, v)| format!("`{k}` in {}", v.join(", ")))
                .collect::<Vec<_>>()
                .join("; ");
            let fields = r
                .fields
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}: {}",
                        v.iter()
                            .map(|s| format!("`{s}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>");
            let fields = if r.note.is_empty() {
                fields
            } else {
                format!("{fields}<br>*{}*", r.note)
            };
            let _ = writeln!(
                out,
                "| {} | {} | `{}` | {status} | {when} | {} |",
                r.action,
                r.method,
                join_base(p.base_path, r.path),
                fields.replace('|', "\\|")
            );
        }
        out.push('\n');
    }
    out
}
