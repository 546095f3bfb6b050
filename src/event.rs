//! A user lifecycle event: what userhook tells the world (model in docs/architecture.md).
//!
//! An event is built off the request path, after the upstream's response has completed,
//! and is immutable from then on: every webhook renders from the same values. An event never
//! carries a credential unless an operator's rule names one explicitly.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize};

/// What happened to the user. The names are the config's and the event `type`'s suffix.
///
/// Six actions are built in (their rules have default statuses, see `detect::rule`); any
/// other snake_case name is a [`Action::Custom`] action (`password_changed`,
/// `role_assigned`), so an IAM's own lifecycle calls can be named as the IAM names them.
/// Serialised as its name (`"created"`, `"password_changed"`): events spooled before custom
/// actions existed read back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    /// Any other action a rule names.
    Custom(CustomAction),
}

/// A custom action's name, checked (snake_case, not a near miss of a built-in) and shared:
/// every event of the action holds the same allocation, which carries `user.<name>` so the
/// event type needs no formatting per event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomAction(Arc<str>);

/// The prefix of every event type.
const TYPE_PREFIX: &str = "user.";

/// Longest action name accepted (names become metric labels and NATS subject tokens).
const MAX_ACTION_LEN: usize = 64;

impl CustomAction {
    /// The action's name, `password_changed`.
    pub fn name(&self) -> &str {
        self.0.get(TYPE_PREFIX.len()..).unwrap_or_default()
    }

    /// The event type, `user.password_changed`.
    pub fn event_type(&self) -> &str {
        &self.0
    }
}

impl Action {
    /// The built-in actions, in the order the docs list them.
    pub const ALL: [Action; 6] = [
        Action::Created,
        Action::Updated,
        Action::Deleted,
        Action::Login,
        Action::Logout,
        Action::LoginFailed,
    ];

    /// The config spelling: `created`, `login_failed`, `password_changed`, ...
    pub fn as_str(&self) -> &str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
            Action::Login => "login",
            Action::Logout => "logout",
            Action::LoginFailed => "login_failed",
            Action::Custom(c) => c.name(),
        }
    }

    /// The event type receivers switch on: `user.created`, `user.password_changed`, ...
    pub fn event_type(&self) -> &str {
        match self {
            Action::Custom(c) => c.event_type(),
            builtin => builtin.builtin_event_type().unwrap_or_default(),
        }
    }

    /// The event type of a built-in action as a static name; `None` for a custom one.
    fn builtin_event_type(&self) -> Option<&'static str> {
        Some(match self {
            Action::Created => "user.created",
            Action::Updated => "user.updated",
            Action::Deleted => "user.deleted",
            Action::Login => "user.login",
            Action::Logout => "user.logout",
            Action::LoginFailed => "user.login_failed",
            Action::Custom(_) => return None,
        })
    }

    /// True for the six built-in actions.
    pub fn is_builtin(&self) -> bool {
        !matches!(self, Action::Custom(_))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;

    /// A built-in name, or any other snake_case name (a custom action). A name one edit away
    /// from a built-in (`create`, `delete`, `logins`) is refused as the typo it most likely is.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(a) = Action::ALL.into_iter().find(|a| a.as_str() == s) {
            return Ok(a);
        }
        const BUILTINS: &str = "created, updated, deleted, login, logout, login_failed";
        if !is_snake_case(s) {
            return Err(format!(
                "unknown action `{s}`; expected one of {BUILTINS}, or a custom action name in \
                 snake_case (lower-case letters, digits and `_`, starting with a letter, at most \
                 {MAX_ACTION_LEN} characters), e.g. password_changed"
            ));
        }
        if let Some(near) = Action::ALL.iter().find(|a| within_one_edit(s, a.as_str())) {
            return Err(format!(
                "unknown action `{s}`: did you mean `{near}`? A custom action may not be one \
                 letter away from a built-in; expected one of {BUILTINS}, or a clearly different \
                 custom name such as password_changed"
            ));
        }
        Ok(Action::Custom(CustomAction(Arc::from(format!(
            "{TYPE_PREFIX}{s}"
        )))))
    }
}

/// A snake_case name (`created`, `password_changed`), as the event's `action` says it.
impl schemars::JsonSchema for Action {
    fn schema_name() -> Cow<'static, str> {
        "Action".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[a-z][a-z0-9_]{0,63}$",
            "description": "What happened: created, updated, deleted, login, logout, login_failed, or a custom action a rule names (snake_case).",
            "examples": ["created", "login_failed", "password_changed"]
        })
    }
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `password_changed`: lower-case ASCII letters, digits and `_`, starting with a letter.
fn is_snake_case(s: &str) -> bool {
    s.len() <= MAX_ACTION_LEN
        && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// One insertion, deletion, substitution or swap of neighbours turns `a` into `b` (ASCII).
fn within_one_edit(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let prefix = short.iter().zip(long).take_while(|(x, y)| x == y).count();
    match long.len() - short.len() {
        0 => {
            let (ra, rb) = (&short[prefix..], &long[prefix..]);
            ra.len() <= 1
                || ra.get(1..) == rb.get(1..)
                || (ra.len() >= 2
                    && ra.first() == rb.get(1)
                    && ra.get(1) == rb.first()
                    && ra.get(2..) == rb.get(2..))
        }
        1 => short.get(prefix..) == long.get(prefix + 1..),
        _ => false,
    }
}

/// How the event's user was identified: receivers filter on it (`none` events name nobody,
/// `unverified_token` ones name whoever a client's token claims to be).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
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
    "Changed",
    "Attribution",
    "ActorSub",
    "ActorAzp",
    "ActorClientId",
    "ActorBasicUser",
    "ActorIp",
    "ActorUserAgent",
    "ActorVerified",
];

/// `{{$$.Previous.<Field>$$}}`: a changed field's value before an `updated` event.
pub const PREVIOUS_PREFIX: &str = "Previous.";

/// The user's fields as extracted: `ID`, `Email`, `Name`, ... plus custom ones.
/// Ordered so serialised events and rendered bodies are stable.
pub type UserFields = BTreeMap<String, String>;

/// Where the event came from, for receivers that audit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// Who made the call an event came from: the caller's credential as the request presented
/// it, never the credential itself. `sub`, `azp` and `client_id` are claims of the bearer JWT
/// (read whether or not its signature verified: `verified` says which); `basic_user` is the
/// user name of HTTP basic authentication (the password is never read into it). The caller's
/// IP and user agent are the event's `request.remote_addr` and `request.user_agent`.
///
/// Omitted from the event JSON when the call presented no such credential.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Actor {
    /// The bearer token's `sub` claim.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub: String,
    /// The bearer token's `azp` claim (the OAuth client the token was issued to).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub azp: String,
    /// The calling client: the token's `client_id` claim, else `azp`, else `cid` (Okta).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_id: String,
    /// The user name of `Authorization: Basic` (a client id at a token endpoint).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub basic_user: String,
    /// Whether the bearer JWT is known genuine: its signature verified against the IAM's
    /// keys, or the IAM issued it in a response userhook saw. `None`: no bearer JWT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

impl Actor {
    /// True when the call presented no credential the actor names.
    pub fn is_empty(&self) -> bool {
        self.sub.is_empty()
            && self.azp.is_empty()
            && self.client_id.is_empty()
            && self.basic_user.is_empty()
            && self.verified.is_none()
    }
}

/// One user lifecycle event, as delivered in the `default` JSON event form.
///
/// Deserialisable so queued deliveries (which carry their event) can be stored and read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserEvent {
    /// UUIDv7: sortable by time, unique across instances.
    pub id: String,
    /// Grows by one per event within a running instance, so receivers can spot gaps.
    pub seq: u64,
    /// `user.<action>`, e.g. `user.created`.
    #[serde(rename = "type", deserialize_with = "event_type")]
    #[schemars(schema_with = "event_type_schema")]
    pub event_type: Cow<'static, str>,
    /// `user`: the only object today.
    #[serde(deserialize_with = "object")]
    #[schemars(schema_with = "object_schema")]
    pub object: StaticName,
    /// What happened.
    pub action: Action,
    /// RFC 3339 with milliseconds, UTC.
    pub occurred_at: String,
    /// The user's fields (built-in and custom), as extracted and filled from the cache.
    pub user: UserFields,
    /// On `updated` events: the user fields whose value differs from what userhook knew
    /// before (`Changed`); empty otherwise, and then left out of the JSON.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    /// The values the `changed` fields had before, where known (`Previous.<Field>`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub previous: UserFields,
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
    /// Who made the call (the caller's token claims or basic user name), when it said.
    #[serde(default, skip_serializing_if = "Actor::is_empty")]
    pub actor: Actor,
}

/// A name from a fixed set. An alias so serde's derive does not try to borrow it from the
/// input (it is read back through [`event_type`] / [`object`] instead).
pub type StaticName = &'static str;

/// Reads `type` back: `user.<action>` for a built-in action (as the static name
/// [`Action::event_type`] gives) or a custom one.
fn event_type<'de, D: Deserializer<'de>>(d: D) -> Result<Cow<'static, str>, D::Error> {
    let s = String::deserialize(d)?;
    let unknown = || serde::de::Error::custom(format!("unknown event type `{s}`"));
    let action: Action = s
        .strip_prefix(TYPE_PREFIX)
        .ok_or_else(unknown)?
        .parse()
        .map_err(|_| unknown())?;
    Ok(match action.builtin_event_type() {
        Some(t) => Cow::Borrowed(t),
        None => Cow::Owned(s),
    })
}

/// `type` is `user.` and the action.
fn event_type_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "pattern": "^user\\.[a-z][a-z0-9_]{0,63}$",
        "description": "`user.<action>`: user.created, user.login_failed, user.password_changed, ..."
    })
}

/// `object` is always `user`.
fn object_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"const": "user", "description": "The object: `user`, the only one today."})
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
        let uuid = crate::ids::now_v7();
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
            event_type: match action.builtin_event_type() {
                Some(t) => Cow::Borrowed(t),
                None => Cow::Owned(action.event_type().to_owned()),
            },
            object: "user",
            action,
            occurred_at: rfc3339_millis(now),
            user,
            changed: Vec::new(),
            previous: UserFields::new(),
            request,
            truncated,
            attribution: Attribution::Exchange,
            details: UserFields::new(),
            actor: Actor::default(),
        }
    }
}

/// `2026-11-30T03:36:46.123Z`: the timestamp form of events and the `Timestamp` variable.
pub fn rfc3339_millis(t: SystemTime) -> String {
    /// 10000-01-01T00:00:00Z: from here on a year has five digits.
    const YEAR_10000: u64 = 253_402_300_800;
    let since = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) if d.as_secs() < YEAR_10000 => d,
        // A clock after 9999 (RFC 3339 has four-digit years) or before 1970 (where humantime
        // would panic): the nearest time the form can write.
        Ok(_) => return "9999-12-31T23:59:59.999Z".to_owned(),
        Err(_) => return "1970-01-01T00:00:00.000Z".to_owned(),
    };
    // Written digit by digit: the general formatter took about 500 instructions per event.
    // Days to a civil date as in Howard Hinnant's `civil_from_days`.
    let secs = since.as_secs();
    let days = secs / 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let of_day = secs % 86_400;
    let (hour, minute, second) = (of_day / 3600, of_day / 60 % 60, of_day % 60);
    let millis = u64::from(since.subsec_millis());
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let fields = [
        (0, 4, year),
        (5, 2, month),
        (8, 2, day),
        (11, 2, hour),
        (14, 2, minute),
        (17, 2, second),
        (20, 3, millis),
    ];
    for (at, width, mut value) in fields {
        // Right to left, a decimal digit each (constant divisors: no division instruction).
        for i in (at..at + width).rev() {
            if let Some(b) = out.get_mut(i) {
                *b = b'0' + (value % 10) as u8;
            }
            value /= 10;
        }
    }
    // Digits and separators: always ASCII.
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_as_humantime_writes_them() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut times: Vec<u64> = vec![0, 1, 59, 86_399, 86_400, 951_782_400, 4_107_542_399];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            times.push(x % 253_402_300_800_000);
        }
        for ms in times {
            let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms);
            assert_eq!(
                rfc3339_millis(t),
                humantime::format_rfc3339_millis(t).to_string(),
                "{ms}"
            );
        }
        // Outside what the form writes: its nearest ends, no panic.
        let far = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(253_402_300_800);
        assert_eq!(rfc3339_millis(far), "9999-12-31T23:59:59.999Z");
        let early = SystemTime::UNIX_EPOCH - std::time::Duration::from_secs(1);
        assert_eq!(rfc3339_millis(early), "1970-01-01T00:00:00.000Z");
    }

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
        let bad = text.replace("user.login_failed", "user.Exploded");
        assert!(serde_json::from_str::<UserEvent>(&bad).is_err());
    }

    #[test]
    fn custom_actions_are_any_snake_case_name() {
        let a: Action = "password_changed".parse().expect("custom");
        assert!(!a.is_builtin());
        assert_eq!(a.as_str(), "password_changed");
        assert_eq!(a.event_type(), "user.password_changed");
        assert_eq!(a.to_string(), "password_changed");
        assert_eq!(
            "mfa_enrolled2".parse::<Action>().map(|a| a.is_builtin()),
            Ok(false)
        );
        for bad in [
            "Password",
            "password-changed",
            "2fa",
            "",
            "_x",
            "a b",
            &"x".repeat(65),
        ] {
            let e = bad.parse::<Action>().expect_err(bad);
            assert!(e.contains("snake_case"), "{bad}: {e}");
        }
        for (typo, near) in [
            ("create", "created"),
            ("delete", "deleted"),
            ("logins", "login"),
            ("lgout", "logout"),
            ("upadted", "updated"),
            ("login_faild", "login_failed"),
        ] {
            let e = typo.parse::<Action>().expect_err(typo);
            assert!(e.contains(&format!("did you mean `{near}`")), "{typo}: {e}");
        }
        // Two edits away is a name of its own.
        assert!("logged_in".parse::<Action>().is_ok());
        assert!("disabled".parse::<Action>().is_ok());
    }

    #[test]
    fn one_edit_is_one_insertion_deletion_substitution_or_swap() {
        for (a, b) in [
            ("abc", "abd"),
            ("abc", "ab"),
            ("abc", "xabc"),
            ("abc", "acb"),
            ("a", ""),
        ] {
            assert!(within_one_edit(a, b) && within_one_edit(b, a), "{a} {b}");
        }
        for (a, b) in [("abc", "cba"), ("abc", "a"), ("abcd", "badc"), ("ab", "cd")] {
            assert!(!within_one_edit(a, b) && !within_one_edit(b, a), "{a} {b}");
        }
    }

    #[test]
    fn custom_events_round_trip_and_old_spooled_events_still_read() {
        let action: Action = "password_changed".parse().expect("custom");
        let mut user = UserFields::new();
        user.insert("ID".into(), "42".into());
        let mut ev = UserEvent::new(9, action.clone(), user, RequestInfo::default(), false);
        let v: serde_json::Value = serde_json::to_value(&ev).expect("serialise");
        assert_eq!(v["type"], "user.password_changed");
        assert_eq!(v["action"], "password_changed");
        assert!(
            v.get("changed").is_none() && v.get("previous").is_none(),
            "{v}"
        );
        let back: UserEvent = serde_json::from_value(v).expect("deserialise");
        assert_eq!(back, ev);
        assert_eq!(back.action, action);
        ev.changed = vec!["Email".into()];
        ev.previous.insert("Email".into(), "a@x".into());
        let v: serde_json::Value = serde_json::to_value(&ev).expect("serialise");
        assert_eq!(v["changed"], serde_json::json!(["Email"]));
        assert_eq!(v["previous"], serde_json::json!({"Email": "a@x"}));
        assert_eq!(serde_json::from_value::<UserEvent>(v).expect("back"), ev);
        // An event as the code before custom actions wrote it into the spool.
        let old = r#"{"id":"0192f5d2-6c1e-7b3a-9f00-123456789abc","seq":3,"type":"user.login_failed","object":"user","action":"login_failed","occurred_at":"2026-11-30T03:36:46.123Z","user":{"Name":"jo"},"request":{"method":"POST","path":"/t","status":401,"remote_addr":"","request_id":"r","user_agent":""},"truncated":true}"#;
        let ev: UserEvent = serde_json::from_str(old).expect("old event");
        assert_eq!(ev.action, Action::LoginFailed);
        assert!(matches!(ev.event_type, Cow::Borrowed("user.login_failed")));
        assert!(ev.changed.is_empty() && ev.truncated);
        // Read back as named by the exchange (what every event before attribution was), and
        // written again with the field every event now carries.
        assert_eq!(ev.attribution, Attribution::Exchange);
        assert_eq!(
            serde_json::to_string(&ev).expect("again"),
            old.replace(
                r#""truncated":true}"#,
                r#""truncated":true,"attribution":"exchange"}"#
            )
        );
        for bad in [
            ("user.login_failed", "group.x"),
            ("user.login_failed", "user.Bad"),
        ] {
            assert!(serde_json::from_str::<UserEvent>(&old.replace(bad.0, bad.1)).is_err());
        }
    }
}
