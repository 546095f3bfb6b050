//! The streaming reverse proxy in front of the IAM.
//!
//! `service` forwards one request; `headers` decides what crosses a hop; `tap` keeps bounded
//! copies of matched bodies; `upstream` reaches the IAM over the per-thread connections `pool`
//! keeps (`direct` drives the common plain-HTTP exchange inline); `error` turns failures into
//! 502/504 responses in one place; `body` holds the enum body types that keep the unmatched
//! path free of boxing. Never: await webhook work, buffer a whole body, or log a body.

pub mod body;
pub mod direct;
pub mod error;
pub mod headers;
pub mod pool;
pub mod service;
pub mod tap;
pub mod upstream;

pub use service::{ProxyService, ProxyShared};
