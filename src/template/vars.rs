//! The variables a template may name, and where their values come from.
//!
//! Lookups happen once per rendered template per delivery, so they borrow from the event
//! wherever they can and never fail: a missing value is simply absent (rendered empty).

use std::borrow::Cow;

use crate::event::UserEvent;

use crate::event::PREVIOUS_PREFIX;
pub use crate::event::{BUILTIN_USER_FIELDS, EVENT_VARIABLES};

/// Whether `name` is a built-in user field or an event variable (custom fields are not).
pub(crate) fn is_builtin(name: &str) -> bool {
    BUILTIN_USER_FIELDS.contains(&name) || EVENT_VARIABLES.contains(&name)
}

/// Whether a template may name `name`: a built-in, a custom field `known` accepts, or
/// `Previous.<Field>` of either kind of user field (`Previous.Email`, `Previous.Department`).
pub(crate) fn is_known(name: &str, known: &dyn Fn(&str) -> bool) -> bool {
    match name.strip_prefix(PREVIOUS_PREFIX) {
        Some(field) => BUILTIN_USER_FIELDS.contains(&field) || known(field),
        None => is_builtin(name) || known(name),
    }
}

/// What a built-in variable holds, for `userhook schema variables`; `None` for a name that is
/// not built in (a test checks every built-in has one, so the list cannot fall behind).
pub(super) fn describe(name: &str) -> Option<&'static str> {
    Some(match name {
        "ID" => "The user's id in the IAM.",
        "Email" => "The user's email address.",
        "Name" => "The user's login name.",
        "FirstName" => "The user's given name.",
        "LastName" => "The user's family name.",
        "CreatedAt" => "When the IAM created the user, as the IAM wrote it.",
        "Enabled" => "Whether the account is enabled (`true`/`false`), as the IAM wrote it.",
        "Event" => "The event type: `user.created`, `user.password_changed`, ...",
        "Object" => "Always `user`.",
        "Action" => "The action: `created`, `login_failed`, a custom one, ...",
        "EventID" => "The event's id (UUIDv7), shared by its deliveries to every webhook.",
        "Timestamp" => "When it happened: RFC 3339 with milliseconds, UTC.",
        "SourceIP" => "The calling client's IP address.",
        "UserAgent" => "The calling client's User-Agent.",
        "RequestID" => "X-Request-Id of the proxied call, as received or generated.",
        "Status" => "The IAM's response status.",
        "Changed" => "On `updated` events: the fields that changed, comma-separated.",
        "Attribution" => {
            "How the user was named: exchange, session, verified_token, unverified_token, none."
        }
        "ActorSub" => "The `sub` claim of the bearer JWT the caller presented.",
        "ActorAzp" => "The `azp` claim (authorized party) of the caller's bearer JWT.",
        "ActorClientId" => "The calling client: the token's `client_id`, else `azp`, else `cid`.",
        "ActorBasicUser" => "The user name of the caller's HTTP basic credentials (never the password).",
        "ActorIp" => "The caller's IP address (the TCP peer).",
        "ActorUserAgent" => "The caller's User-Agent.",
        "ActorVerified" => {
            "`true` when the IAM's keys vouch for the caller's bearer JWT, `false` when it was only decoded."
        }
        _ => return None,
    })
}

/// Supplies values to a rendering template. A trait so `send-test`, tests and the dispatcher
/// can render from an event or from a fixed map alike.
pub trait VarSource {
    /// The value of `name`, or `None` when it has none (rendered as an empty string).
    fn var(&self, name: &str) -> Option<Cow<'_, str>>;
}

/// The variables of one user event: user fields from `event.user`, the rest from the event.
#[derive(Debug, Clone, Copy)]
pub struct EventVars<'a>(pub &'a UserEvent);

impl VarSource for EventVars<'_> {
    fn var(&self, name: &str) -> Option<Cow<'_, str>> {
        let ev = self.0;
        let borrowed = match name {
            "Event" => ev.event_type.as_ref(),
            "Object" => ev.object,
            "Action" => ev.action.as_str(),
            "EventID" => &ev.id,
            "Timestamp" => &ev.occurred_at,
            "SourceIP" => ip_part(&ev.request.remote_addr),
            "UserAgent" => &ev.request.user_agent,
            "RequestID" => &ev.request.request_id,
            // 0 means "no response status known": render nothing rather than a fake code.
            "Status" if ev.request.status == 0 => return None,
            "Status" => return Some(Cow::Owned(ev.request.status.to_string())),
            "Attribution" => ev.attribution.as_str(),
            "ActorSub" => non_empty(&ev.actor.sub)?,
            "ActorAzp" => non_empty(&ev.actor.azp)?,
            "ActorClientId" => non_empty(&ev.actor.client_id)?,
            "ActorBasicUser" => non_empty(&ev.actor.basic_user)?,
            "ActorIp" => non_empty(ip_part(&ev.request.remote_addr))?,
            "ActorUserAgent" => non_empty(&ev.request.user_agent)?,
            "ActorVerified" => match ev.actor.verified? {
                true => "true",
                false => "false",
            },
            "Changed" if ev.changed.is_empty() => return None,
            "Changed" => return Some(Cow::Owned(ev.changed.join(", "))),
            _ => {
                let found = match name.strip_prefix(PREVIOUS_PREFIX) {
                    Some(field) => ev.previous.get(field),
                    None => ev.user.get(name).or_else(|| ev.details.get(name)),
                };
                return found.map(|v| Cow::Borrowed(v.as_str()));
            }
        };
        Some(Cow::Borrowed(borrowed))
    }
}

impl<S: VarSource + ?Sized> VarSource for &S {
    fn var(&self, name: &str) -> Option<Cow<'_, str>> {
        (**self).var(name)
    }
}

/// Fixed values, e.g. for `send-test` samples and tests.
impl VarSource for std::collections::BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).map(|v| Cow::Borrowed(v.as_str()))
    }
}

/// `Some(text)` unless it is empty: an actor value the call did not carry is absent.
fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

/// The IP of a `host:port` peer address: `10.0.0.1:5678` -> `10.0.0.1`, `[::1]:80` -> `::1`;
/// anything else (a bare IPv4 or IPv6 address, an empty string) is returned unchanged.
fn ip_part(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split_once(']').map_or(addr, |(ip, _)| ip);
    }
    match addr.split_once(':') {
        // Exactly one colon: IPv4 with a port. More than one: a bare IPv6 address.
        Some((ip, port)) if !port.contains(':') => ip,
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, RequestInfo, UserFields};

    fn event() -> UserEvent {
        let mut user = UserFields::new();
        user.insert("ID".into(), "42".into());
        user.insert("Name".into(), "alice".into());
        user.insert("Department".into(), "ops".into());
        user.insert("Status".into(), "shadowed".into());
        let request = RequestInfo {
            method: "POST".into(),
            path: "/users".into(),
            status: 201,
            remote_addr: "10.1.2.3:55012".into(),
            request_id: "req-1".into(),
            user_agent: "curl/8".into(),
        };
        UserEvent::new(1, Action::Created, user, request, false)
    }

    #[test]
    fn event_vars_read_user_and_event_values() {
        let ev = event();
        let v = EventVars(&ev);
        let get = |n: &str| v.var(n).map(|c| c.into_owned());
        assert_eq!(get("ID").as_deref(), Some("42"));
        assert_eq!(get("Name").as_deref(), Some("alice"));
        assert_eq!(get("Department").as_deref(), Some("ops"));
        assert_eq!(get("Email"), None);
        assert_eq!(get("Event").as_deref(), Some("user.created"));
        assert_eq!(get("Object").as_deref(), Some("user"));
        assert_eq!(get("Action").as_deref(), Some("created"));
        assert_eq!(get("EventID"), Some(ev.id.clone()));
        assert_eq!(get("Timestamp"), Some(ev.occurred_at.clone()));
        assert_eq!(get("SourceIP").as_deref(), Some("10.1.2.3"));
        assert_eq!(get("UserAgent").as_deref(), Some("curl/8"));
        assert_eq!(get("RequestID").as_deref(), Some("req-1"));
        // Event variables are reserved: a custom field of the same name does not shadow them.
        assert_eq!(get("Status").as_deref(), Some("201"));
    }

    #[test]
    fn changed_and_previous_values() {
        let mut ev = event();
        let v = |ev: &UserEvent, n: &str| EventVars(ev).var(n).map(Cow::into_owned);
        assert_eq!(v(&ev, "Changed"), None);
        assert_eq!(v(&ev, "Previous.Name"), None);
        ev.changed = vec!["Department".into(), "Name".into()];
        ev.previous.insert("Name".into(), "alicia".into());
        assert_eq!(v(&ev, "Changed").as_deref(), Some("Department, Name"));
        assert_eq!(v(&ev, "Previous.Name").as_deref(), Some("alicia"));
        assert_eq!(v(&ev, "Previous.Department"), None);
        assert_eq!(v(&ev, "Name").as_deref(), Some("alice"));
    }

    #[test]
    fn actor_values_and_absent_ones() {
        let mut ev = event();
        let v = |ev: &UserEvent, n: &str| EventVars(ev).var(n).map(Cow::into_owned);
        for name in [
            "ActorSub",
            "ActorAzp",
            "ActorClientId",
            "ActorBasicUser",
            "ActorVerified",
        ] {
            assert_eq!(v(&ev, name), None, "{name}");
        }
        assert_eq!(v(&ev, "ActorIp").as_deref(), Some("10.1.2.3"));
        assert_eq!(v(&ev, "ActorUserAgent").as_deref(), Some("curl/8"));
        ev.actor = crate::event::Actor {
            sub: "svc-1".into(),
            azp: "sync-service".into(),
            client_id: "sync-service".into(),
            basic_user: "admin".into(),
            verified: Some(false),
        };
        assert_eq!(v(&ev, "ActorSub").as_deref(), Some("svc-1"));
        assert_eq!(v(&ev, "ActorAzp").as_deref(), Some("sync-service"));
        assert_eq!(v(&ev, "ActorClientId").as_deref(), Some("sync-service"));
        assert_eq!(v(&ev, "ActorBasicUser").as_deref(), Some("admin"));
        assert_eq!(v(&ev, "ActorVerified").as_deref(), Some("false"));
        ev.request.remote_addr.clear();
        ev.request.user_agent.clear();
        assert_eq!(v(&ev, "ActorIp"), None);
        assert_eq!(v(&ev, "ActorUserAgent"), None);
    }

    #[test]
    fn every_builtin_variable_is_described() {
        for name in BUILTIN_USER_FIELDS.iter().chain(EVENT_VARIABLES) {
            assert!(describe(name).is_some(), "{name} has no description");
        }
        assert_eq!(describe("Department"), None);
    }

    #[test]
    fn unknown_status_renders_empty() {
        let mut ev = event();
        ev.request.status = 0;
        assert_eq!(EventVars(&ev).var("Status"), None);
    }

    #[test]
    fn ip_part_handles_v4_v6_and_bare_addresses() {
        assert_eq!(ip_part("10.0.0.1:5678"), "10.0.0.1");
        assert_eq!(ip_part("[::1]:80"), "::1");
        assert_eq!(ip_part("[fe80::1%eth0]:80"), "fe80::1%eth0");
        assert_eq!(ip_part("::1"), "::1");
        assert_eq!(ip_part("2001:db8::5"), "2001:db8::5");
        assert_eq!(ip_part("10.0.0.1"), "10.0.0.1");
        assert_eq!(ip_part(""), "");
        assert_eq!(ip_part("[broken"), "[broken");
    }
}
