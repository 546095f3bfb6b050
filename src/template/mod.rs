//! DCE 5.0 `{{$$.Var$$}}` templates: message bodies, URLs and the chat-robot presets.
//!
//! Existing DCE message bodies must work unchanged, so the syntax is DCE's exactly. Templates
//! are compiled once per config load into literal pieces and variable slots; rendering is one
//! pass that looks each variable up once and writes into one pre-sized buffer.
//!
//! This module must never let a value change a document's structure: inside JSON bodies values
//! are JSON-escaped, in URLs they are percent-encoded, and a value is never expanded again (a
//! name containing `{{$$.ID$$}}` renders literally). It never panics on any template or value.

mod body;
mod digest;
mod error;
mod message;
mod parse;
mod preset;
pub mod schema;
mod url;
mod vars;

pub use body::{BodyKind, BodyTemplate};
pub use digest::{
    preset_digest, Digest, DigestError, DigestTemplate, PresetDigest, DEFAULT_LINE,
    DEFAULT_MAX_BYTES, DEFAULT_MAX_ITEMS, DIGEST_VARIABLES,
};
pub use error::TemplateError;
pub use message::{
    source_problem, CloudEvent, CloudEventBody, MessageBody, CLOUDEVENTS_CONTENT_TYPE,
    CLOUDEVENTS_TYPE_PREFIX,
};
pub use preset::{preset, Preset, SuccessCheck, DCE_DEFAULT_BODY, PRESETS};
pub use url::{RenderedUrl, UrlRenderError, UrlTemplate};
pub use vars::{EventVars, VarSource, BUILTIN_USER_FIELDS, EVENT_VARIABLES};

/// Whether a template (or a webhook filter) may name `name`: a built-in variable, a custom
/// field `known` accepts, or `Previous.<Field>` of a user field.
pub fn is_variable(name: &str, known: &dyn Fn(&str) -> bool) -> bool {
    vars::is_known(name, known)
}
