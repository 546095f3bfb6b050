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
mod parse;
mod preset;
mod url;
mod vars;

pub use body::{BodyKind, BodyTemplate};
pub use digest::{
    preset_digest, Digest, DigestError, DigestTemplate, PresetDigest, DEFAULT_LINE,
    DEFAULT_MAX_BYTES, DEFAULT_MAX_ITEMS, DIGEST_VARIABLES,
};
pub use error::TemplateError;
pub use preset::{preset, Preset, SuccessCheck, DCE_DEFAULT_BODY, PRESETS};
pub use url::{UrlRenderError, UrlTemplate};
pub use vars::{EventVars, VarSource, BUILTIN_USER_FIELDS, EVENT_VARIABLES};
