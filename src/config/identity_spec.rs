//! The `identity:` section and a rule's `session:` block, as written: where identity is kept,
//! how much of it, how far client tokens are trusted, and which credentials a call issues or
//! presents. Compiled by `events::identity` and `detect::rule`; never used raw.

use serde::{Deserialize, Serialize};

use super::one_or_many::OneOrMany;
use super::units::Duration;

/// A rule's `session:` block: which credentials the IAM hands out or the caller presents.
/// Credential values are only ever stored as a keyed hash.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSpec {
    /// Sources of credentials the IAM issues to this event's user (a `Set-Cookie` session,
    /// a token in the body or a header): the index learns credential -> user.
    #[serde(default)]
    pub issues: OneOrMany,
    /// Sources of the caller's own credential: when the fields name nobody, the event's user
    /// is its owner; when they do, the index learns it.
    #[serde(default)]
    pub presents: OneOrMany,
    /// The call ends the presented credential (logout, sign-out): forget it after use.
    #[serde(default)]
    pub ends: bool,
    /// Lifetime of an issued credential that carries none (a cookie's Max-Age/Expires wins,
    /// then `expires`); default `identity.session_ttl`.
    #[serde(default)]
    pub ttl: Option<Duration>,
    /// Source of the credential's expiry: a number is seconds from now (`expires_in`), text
    /// an RFC 3339 time.
    #[serde(default)]
    pub expires: Option<String>,
}

/// The `identity:` section: where identity is kept, how much of it, and how far a token the
/// client presents is trusted.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySpec {
    /// The identity file (user cache and session index, redb); default `identity.redb` in
    /// `delivery.spool_dir`. Relative to the config file's directory.
    #[serde(default)]
    pub path: Option<String>,
    /// The key of the credential hashes (at least 16 bytes, usually `${VAR}`); default a
    /// random key generated once, kept 0600 in `<path>.key`.
    #[serde(default)]
    pub secret: Option<String>,
    /// Users kept (cache and file); default `user_cache.capacity`.
    #[serde(default)]
    pub max_users: Option<usize>,
    /// Credentials kept in the session index; the oldest go first. 0 disables the index.
    #[serde(default = "defaults::max_sessions")]
    pub max_sessions: usize,
    /// Lifetime of a learned credential when neither it nor the rule says one.
    #[serde(default = "defaults::session_ttl")]
    pub session_ttl: Duration,
    /// `verify` (default): claims of a JWT the client presents count only when its signature
    /// verifies against the IAM's JWKS; `unverified`: used, marked `unverified_token`;
    /// `ignore`: never used.
    #[serde(default = "defaults::client_tokens")]
    pub client_tokens: String,
    /// Where the IAM publishes its signing keys: a path on the upstream (`{param}` filled
    /// from the matched path) or an `http(s)://` URL; default the profile's.
    #[serde(default)]
    pub jwks: Option<String>,
}

impl Default for IdentitySpec {
    fn default() -> Self {
        Self {
            path: None,
            secret: None,
            max_users: None,
            max_sessions: defaults::max_sessions(),
            session_ttl: defaults::session_ttl(),
            client_tokens: defaults::client_tokens(),
            jwks: None,
        }
    }
}

mod defaults {
    use super::Duration;

    pub(super) fn max_sessions() -> usize {
        100_000
    }
    pub(super) fn session_ttl() -> Duration {
        Duration::from_secs(12 * 3600)
    }
    pub(super) fn client_tokens() -> String {
        "verify".into()
    }
}
