//! What a webhook sends as its body: a rendered `{{$$.X$$}}` template, or the event itself in a
//! CloudEvents 1.0 envelope (structured mode, `preset: cloudevents`).
//!
//! The envelope is built from the event's own fields (`id`, `time`, `type`), so it always
//! agrees with `data`, and its JSON Schema is derived from the same types `userhook schema`
//! prints. Rendering never fails and never panics.

use serde::Serialize;

use super::body::{BodyKind, BodyTemplate};
use super::vars::EventVars;
use crate::event::UserEvent;

/// The content type of a structured-mode CloudEvent.
pub const CLOUDEVENTS_CONTENT_TYPE: &str = "application/cloudevents+json; charset=utf-8";

/// The prefix of every CloudEvents `type`: `io.userhook.user.created`.
pub const CLOUDEVENTS_TYPE_PREFIX: &str = "io.userhook.";

/// A webhook's message body.
#[derive(Debug, Clone)]
pub enum MessageBody {
    /// A template rendered with the event's variables.
    Template(BodyTemplate),
    /// The event as a CloudEvent.
    CloudEvent(CloudEventBody),
}

impl MessageBody {
    /// The bytes sent for `event`.
    pub fn render(&self, event: &UserEvent) -> Vec<u8> {
        match self {
            MessageBody::Template(t) => t.render(&EventVars(event)),
            MessageBody::CloudEvent(c) => c.render(event),
        }
    }

    /// The bytes of a template body rendered from `vars` (one entry of a digest); a
    /// CloudEvent needs the event itself, so it renders nothing here (the webhook compiler
    /// refuses digests with `preset: cloudevents`).
    pub fn render_vars(&self, vars: &dyn super::vars::VarSource) -> Vec<u8> {
        match self {
            MessageBody::Template(t) => t.render(vars),
            MessageBody::CloudEvent(_) => Vec::new(),
        }
    }

    /// JSON or text (a CloudEvent is JSON).
    pub fn kind(&self) -> BodyKind {
        match self {
            MessageBody::Template(t) => t.kind(),
            MessageBody::CloudEvent(_) => BodyKind::Json,
        }
    }

    /// The variables the body names (none for a CloudEvent: it carries the whole event).
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        match self {
            MessageBody::Template(t) => Some(t.variables()),
            MessageBody::CloudEvent(_) => None,
        }
        .into_iter()
        .flatten()
    }
}

/// The CloudEvents envelope of one webhook: its `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudEventBody {
    source: String,
}

/// A CloudEvents 1.0 event in structured mode, as sent (and as `userhook schema cloudevent`
/// describes it).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CloudEvent<'a> {
    /// Always `1.0`.
    #[schemars(schema_with = "spec_version_schema")]
    pub specversion: &'static str,
    /// The event's id (a UUIDv7): the same for every webhook the event goes to.
    pub id: &'a str,
    /// Where events come from: the webhook's `source`, by default the IAM's URL.
    pub source: &'a str,
    /// `io.userhook.user.<action>`.
    #[serde(rename = "type")]
    #[schemars(schema_with = "type_schema")]
    pub event_type: String,
    /// When it happened: the event's `occurred_at` (RFC 3339, UTC).
    pub time: &'a str,
    /// Always `application/json`: `data` is the userhook event.
    #[schemars(schema_with = "data_content_type_schema")]
    pub datacontenttype: &'static str,
    /// The user's ID, when the event names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<&'a str>,
    /// The userhook event, as the default JSON form and NATS sinks carry it.
    pub data: &'a UserEvent,
}

fn spec_version_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"const": "1.0"})
}

fn data_content_type_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"const": "application/json"})
}

fn type_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "pattern": "^io\\.userhook\\.user\\.[a-z][a-z0-9_]{0,63}$"
    })
}

impl CloudEventBody {
    /// An envelope naming `source` (checked by the webhook compiler).
    pub fn new(source: &str) -> CloudEventBody {
        CloudEventBody {
            source: source.to_owned(),
        }
    }

    /// The envelope of `event`.
    pub fn envelope<'a>(&'a self, event: &'a UserEvent) -> CloudEvent<'a> {
        CloudEvent {
            specversion: "1.0",
            id: &event.id,
            source: &self.source,
            event_type: format!("{CLOUDEVENTS_TYPE_PREFIX}{}", event.event_type),
            time: &event.occurred_at,
            datacontenttype: "application/json",
            subject: event
                .user
                .get("ID")
                .map(String::as_str)
                .filter(|s| !s.is_empty()),
            data: event,
        }
    }

    /// The envelope as JSON bytes.
    pub fn render(&self, event: &UserEvent) -> Vec<u8> {
        // Plain strings and maps: serialising cannot fail; an empty body would be refused
        // by any receiver rather than mistaken for an event.
        serde_json::to_vec(&self.envelope(event)).unwrap_or_default()
    }
}

/// Why a `source` cannot name a CloudEvents source; `None` when it can.
pub fn source_problem(source: &str) -> Option<&'static str> {
    if source.trim().is_empty() {
        Some("is empty; expected a URI-reference such as https://iam.example.com or urn:acme:iam")
    } else if source.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("holds whitespace or control characters; expected a URI-reference")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, RequestInfo, UserFields};

    #[test]
    fn envelope_agrees_with_its_event() {
        let mut user = UserFields::new();
        user.insert("ID".into(), "42".into());
        let ev = UserEvent::new(3, Action::Created, user, RequestInfo::default(), false);
        let body = CloudEventBody::new("https://iam.example");
        let v: serde_json::Value =
            serde_json::from_slice(&MessageBody::CloudEvent(body).render(&ev)).expect("json");
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], "io.userhook.user.created");
        assert_eq!(v["source"], "https://iam.example");
        assert_eq!(v["id"], ev.id.as_str());
        assert_eq!(v["time"], ev.occurred_at.as_str());
        assert_eq!(v["datacontenttype"], "application/json");
        assert_eq!(v["subject"], "42");
        assert_eq!(v["data"], serde_json::to_value(&ev).expect("event"));
        let nobody = UserEvent::new(
            4,
            Action::Login,
            UserFields::new(),
            RequestInfo::default(),
            false,
        );
        let v: serde_json::Value =
            serde_json::from_slice(&CloudEventBody::new("urn:x").render(&nobody)).expect("json");
        assert!(v.get("subject").is_none(), "{v}");
        assert_eq!(v["type"], "io.userhook.user.login");
    }

    #[test]
    fn sources_must_be_uri_references() {
        assert_eq!(source_problem("urn:acme:iam"), None);
        assert_eq!(source_problem("/iam"), None);
        assert!(source_problem(" ").is_some());
        assert!(source_problem("a b").is_some());
    }
}
