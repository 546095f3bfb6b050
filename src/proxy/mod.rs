//! The request path: the streaming reverse proxy in front of the IAM.
//!
//! `service` forwards one request in named phases; `tap` keeps bounded copies of matched
//! response bodies and hands the finished exchange to the event path; `error` turns
//! upstream failures into 502/504 responses in one place; `body` is the client-side body
//! type that keeps the unmatched path free of boxing. Never: await webhook work, buffer a
//! whole body, or log a body.

pub mod body;
pub mod error;
pub mod listener;
pub mod service;
pub mod tap;

pub use listener::ProxyThreads;
pub use service::{ProxyService, ProxyShared};
