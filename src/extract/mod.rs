//! Reading values out of a captured exchange: bodies decoded and parsed at most once, field
//! sources and transforms, JWT claims.
//!
//! Runs off the request path. It never decides what an exchange means (that is `detect`) and
//! never keeps anything between exchanges (the user cache lives on the event path). It must
//! never panic on any body, and never yields a credential unless an operator's rule names it.

pub mod actor;
pub mod cookie;
pub mod decode;
pub mod json_index;
pub mod json_path;
pub mod jws;
pub mod jwt;
pub mod observed;
pub mod partial_json;
pub mod source;
pub mod view;
