//! A user lifecycle event: what userhook tells the world (model in docs/architecture.md).
//!
//! An event is built off the request path, after the upstream's response has completed,
//! and is immutable from then on: every webhook renders from the same values. An event never
//! carries a credential unless an operator's rule names one explicitly.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize};

/// What happened to the user. The names are the config's and the event `type`'s suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A user was created.
    Created,
    /// A user's fields changed.
    Updated,
    /// A user was deleted.
    Deleted,
    /// A user logged in.
    Login,
    /// A user logged out.
    Logout,
    /// A login was refused.
    LoginFailed,
}

impl Action {
    /// Every action, in the order the docs list them.
    pub const ALL: [Action; 6] = [
        Action::Created,
        Action::Updated,
        Action::Deleted,
        Action::Login,
        Action::Logout,
        Action::LoginFailed,
    ];

    /// The config spelling: `created`, `login_failed`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
            Action::Login => "login",
            Action::Logout => "logout",
            Action::LoginFailed => "login_failed",
        }
    }

    /// The event type receivers switch on: `user.created`, ...
    pub fn event_type(self) -> &'static str {
        match self {
            Action::Created => "user.created",
            Action::Updated => "user.updated",
            Action::Deleted => "user.deleted",
            Action::Login => "user.login",
            Action::Logout => "user.logout",
            Action::LoginFailed => "user.login_failed",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown action `{s}`; expected one of created, updated, deleted, login, logout, login_failed"
                )
            })
    }
}

/// How the event's user was identified: receivers filter on it (`none` events name nobody,
/// `unverified_token` ones name whoever a client's token claims to be).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribution {
    /// The IAM's own request or response named the user (path, body, a token it issued).
    /// Events spooled before attribution existed read back as this.
    #[default]
    Exchange,
    /// The owner of a credential the IAM issued earlier, from the session index.
    Session,
    /// A client-presented JWT whose signature verified against the IAM's published keys.
    VerifiedToken,
    /// Claims of a client-presented JWT, not verified (`identity.client_tokens: unverified`).
    UnverifiedToken,
    /// The IAM confirmed the call but nobody could be named.
    None,
}

impl Attribution {
    /// The name in events and the `Attribution` variable.
    pub fn as_str(self) -> &'static str {
        match self {
            Attribution::Exchange => "exchange",
            Attribution::Session => "session",
            Attribution::VerifiedToken => "verified_token",
            Attribution::UnverifiedToken => "unverified_token",
            Attribution::None => "none",
        }
    }
}

/// The user fields every profile knows and every template may use (README "Templates and variables").
pub const BUILTIN_USER_FIELDS: &[&str] = &[
    "ID",
    "Email",
    "Name",
    "FirstName",
    "LastName",
    "CreatedAt",
    "Enabled",
];

/// Template variables describing the event rather than the user. Reserved: a custom user
/// field may not take one of these names.
pub const EVENT_VARIABLES: &[&str] = &[
    "Event",
    "Object",
    "Action",
    "EventID",
    "Timestamp",
    "SourceIP",
    "UserAgent",
    "RequestID",
    "Status",
    "Attribution",
];

/// The user's fields as extracted: `ID`, `Email`, `Name`, ... plus custom ones.
/// Ordered so serialised events and rendered bodies are stable.
pub type UserFields = BTreeMap<String, String>;

/// Where the event came from, for receivers that audit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestInfo {
    /// The request method.
    pub method: String,
    /// The request path, without its query.
    pub path: String,
    /// The IAM's response status.
    pub status: u16,
    /// The client's IP address.
    pub remote_addr: String,
    /// `X-Request-Id`, as received or generated.
    pub request_id: String,
    /// The client's `User-Agent`.
    pub user_agent: String,
}

/// One user lifecycle event, as delivered in the `default` JSON event form.
///
/// Deserialisable so queued deliveries (which carry their event) can be stored and read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserEvent {
    /// UUIDv7: sortable by time, unique across instances.
    pub id: String,
    /// Grows by one per event within a running instance, so receivers can spot gaps.
    pub seq: u64,
    /// `user.<action>`, e.g. `user.created`.
    #[serde(rename = "type", deserialize_with = "event_type")]
    pub event_type: StaticName,
    /// `user`: the only object today.
    #[serde(deserialize_with = "object")]
    pub object: StaticName,
    /// What happened.
    pub action: Action,
    /// RFC 3339 with milliseconds, UTC.
    pub occurred_at: String,
    /// The user's fields (built-in and custom), as extracted and filled from the cache.
    pub user: UserFields,
    /// Where the event came from.
    pub request: RequestInfo,
    /// True when a body was larger than `capture_limit` and fields came from its prefix.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// How the user was identified (`none`: nobody could be).
    #[serde(default)]
    pub attribution: Attribution,
    /// The rule's `details:`: facts about this call, never cached as the user's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: UserFields,
}

/// A name from a fixed set. An alias so serde's derive does not try to borrow it from the
/// input (it is read back through [`event_type`] / [`object`] instead).
pub type StaticName = &'static str;

/// Reads `type` back into the static name [`Action::event_type`] gives.
fn event_type<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let s = String::deserialize(d)?;
    Action::ALL
        .into_iter()
        .map(Action::event_type)
        .find(|t| *t == s)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown event type `{s}`")))
}

/// Reads `object` back; `user` is the only object today.
fn object<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let s = String::deserialize(d)?;
    match s.as_str() {
        "user" => Ok("user"),
        _ => Err(serde::de::Error::custom(format!("unknown object `{s}`"))),
    }
}

impl UserEvent {
    /// Builds an event stamped now with a fresh UUIDv7.
    pub fn new(
        seq: u64,
        action: Action,
        user: UserFields,
        request: RequestInfo,
        truncated: bool,
    ) -> Self {
        let uuid = uuid::Uuid::now_v7();
        // The time is the one the id carries (milliseconds, as `occurred_at` has): one clock
        // read for both, and the two always agree.
        let now = uuid
            .get_timestamp()
            .map(|t| {
                let (secs, nanos) = t.to_unix();
                SystemTime::UNIX_EPOCH + std::time::Duration::new(secs, nanos)
            })
            .unwrap_or_else(SystemTime::now);
        let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let id: &str = uuid.hyphenated().encode_lower(&mut id);
        UserEvent {
            id: id.to_owned(),
            seq,
            event_type: action.event_type(),
            object: "user",
            action,
            occurred_at: rfc3339_millis(now),
            user,
            request,
            truncated,
            attribution: Attribution::Exchange,
            details: UserFields::new(),
        }
    }
}

/// `2026-11-30T03:36:46.123Z`: the timestamp form of events and the `Timestamp` variable.
pub fn rfc3339_millis(t: SystemTime) -> String {
    use std::fmt::Write as _;
    // Sized up front: formatting into an empty string grows it piece by piece.
    let mut text = String::with_capacity("2026-11-30T03:36:46.123Z".len());
    let _ = write!(text, "{}", humantime::format_rfc3339_millis(t));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>(), Ok(a));
        }
        assert!("create"
            .parse::<Action>()
            .unwrap_err()
            .contains("created, updated"));
    }

    #[test]
    fn event_serialises_as_designed() {
        let mut user = UserFields::new();
        user.insert("ID".into(), "42".into());
        let ev = UserEvent::new(7, Action::Created, user, RequestInfo::default(), false);
        let v: serde_json::Value = serde_json::to_value(&ev).expect("serialise");
        assert_eq!(v["type"], "user.created");
        assert_eq!(v["action"], "created");
        assert_eq!(v["object"], "user");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["user"]["ID"], "42");
        assert!(v.get("truncated").is_none());
        assert_eq!(ev.id.len(), 36);
        assert!(ev.occurred_at.ends_with('Z'));
        // The id's time and `occurred_at` are the same millisecond.
        let uuid = uuid::Uuid::parse_str(&ev.id).expect("uuid");
        let (secs, nanos) = uuid.get_timestamp().expect("v7 has a time").to_unix();
        assert_eq!(
            ev.occurred_at,
            rfc3339_millis(SystemTime::UNIX_EPOCH + std::time::Duration::new(secs, nanos))
        );
    }

    #[test]
    fn event_round_trips_through_json() {
        let mut user = UserFields::new();
        user.insert("ID".into(), "42".into());
        let ev = UserEvent::new(3, Action::LoginFailed, user, RequestInfo::default(), true);
        let text = serde_json::to_string(&ev).expect("serialise");
        let back: UserEvent = serde_json::from_str(&text).expect("deserialise");
        assert_eq!(back, ev);
        let bad = text.replace("user.login_failed", "user.exploded");
        assert!(serde_json::from_str::<UserEvent>(&bad).is_err());
    }
}
