//! The upstream client: where requests to the IAM go, and the connections that take them.
//!
//! [`UpstreamConnector`] (`client`) sends one request on the client that fits it: the common
//! plain-HTTP exchange is driven inline by `direct`, the rest (TLS, upgrades, unsized
//! bodies) by hyper's client (`hyper_client`); each kind of connection waits between
//! requests in a per-thread `pool`. `target` is the configured address, `tls` the
//! connector's roots, `body` the request body type, `error` why a request got no response.
//! Imports run one way, from `client` down through the two clients to `pool`, `body` and
//! `error` (which wraps the inline client's `direct::error`); no file imports one that
//! imports it, and this file only declares and re-exports. It
//! knows nothing of routes, events or webhooks, and must never buffer a whole body or log
//! one.

mod body;
mod client;
mod direct;
mod error;
mod hyper_client;
mod pool;
mod target;
mod tls;

pub use body::{ClientBodyError, UploadProgress, UpstreamBody};
pub use client::{ConnectorError, UpstreamConnector, UpstreamResponseBody};
pub use direct::error::{
    BodyError, DialError, MalformedHead, RequestBodyError, ResponseError, SendError,
};
pub use direct::offline;
pub use direct::DirectBody;
pub use error::{BoxError, UpstreamError};
pub use hyper_client::PooledIncoming;
pub use target::{InvalidUpstream, Upstream};
pub use tls::TlsError;
