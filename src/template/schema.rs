//! `userhook schema`: JSON Schemas of what userhook sends, derived from the types and lists
//! that produce it, so they cannot drift from the code: the event (the default JSON form,
//! NATS sinks' body, a CloudEvent's `data`), the CloudEvents envelope, and the template
//! variables.

use serde_json::{json, Map, Value};

use super::message::CloudEvent;
use super::vars::{describe, BUILTIN_USER_FIELDS, EVENT_VARIABLES};
use crate::event::{UserEvent, PREVIOUS_PREFIX};

/// The schemas `userhook schema` can print.
pub const SCHEMAS: [&str; 3] = ["event", "cloudevent", "variables"];

/// The JSON Schema of the event userhook delivers.
pub fn event() -> Value {
    titled(
        schemars::schema_for!(UserEvent).to_value(),
        "userhook user event",
    )
}

/// The JSON Schema of a `preset: cloudevents` body (structured mode).
pub fn cloudevent() -> Value {
    titled(
        schemars::schema_for!(CloudEvent<'static>).to_value(),
        "userhook CloudEvent (structured mode)",
    )
}

/// The JSON Schema of the values a template can name: every built-in variable (a string;
/// missing ones render empty), `Previous.<Field>`, and any custom field a rule defines.
pub fn variables() -> Value {
    let mut properties = Map::new();
    for name in BUILTIN_USER_FIELDS.iter().chain(EVENT_VARIABLES) {
        let mut p = json!({"type": "string"});
        if let Some(d) = describe(name) {
            p["description"] = Value::String(d.to_owned());
        }
        properties.insert((*name).to_owned(), p);
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "userhook template variables ({{$$.Name$$}})",
        "description": "Every value is text; a variable the event has no value for renders as an empty string. Custom fields and details of the config's rules are further string properties.",
        "type": "object",
        "properties": properties,
        "patternProperties": {
            format!("^{}", PREVIOUS_PREFIX.replace('.', "\\.")): {
                "type": "string",
                "description": "On `updated` events: a changed field's earlier value."
            }
        },
        "additionalProperties": {"type": "string", "description": "A custom field or detail a rule defines."}
    })
}

/// The schema called `name` (one of [`SCHEMAS`]), or all of them keyed by name.
pub fn named(name: Option<&str>) -> Option<Value> {
    match name {
        None => {
            Some(json!({"event": event(), "cloudevent": cloudevent(), "variables": variables()}))
        }
        Some("event") => Some(event()),
        Some("cloudevent") => Some(cloudevent()),
        Some("variables") => Some(variables()),
        Some(_) => None,
    }
}

fn titled(mut schema: Value, title: &str) -> Value {
    if let Some(o) = schema.as_object_mut() {
        o.insert("title".to_owned(), Value::String(title.to_owned()));
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_schema_names_every_field_the_event_serialises() {
        let schema = event();
        let props = schema["properties"].as_object().expect("properties");
        for key in [
            "id",
            "seq",
            "type",
            "object",
            "action",
            "occurred_at",
            "user",
            "changed",
            "previous",
            "request",
            "truncated",
            "attribution",
            "details",
            "actor",
        ] {
            assert!(props.contains_key(key), "{key} missing: {schema}");
        }
        let required: Vec<&str> = schema["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for key in [
            "id",
            "seq",
            "type",
            "object",
            "action",
            "occurred_at",
            "user",
            "request",
        ] {
            assert!(required.contains(&key), "{key} not required: {required:?}");
        }
        assert_eq!(schema["title"], "userhook user event");
    }

    #[test]
    fn variables_list_every_builtin_with_its_description() {
        let v = variables();
        for name in BUILTIN_USER_FIELDS.iter().chain(EVENT_VARIABLES) {
            assert!(v["properties"][*name]["description"].is_string(), "{name}");
        }
        assert!(named(Some("nope")).is_none());
        assert!(named(None).is_some_and(|all| all["cloudevent"]["properties"]["data"].is_object()));
    }
}
