//! The request path: the streaming reverse proxy in front of the IAM.
//!
//! `listener` accepts connections on the worker threads; `edge` holds the front door's
//! limits (head size, HTTP/2 limits, the connection count, accept backoff); `watch` is each
//! connection's coarse clock for the head and idle timeouts; `first_head` reads a fresh
//! connection's first head into a small buffer before hyper takes it;
//! `service` forwards one request in named phases; `tap` keeps bounded copies of matched
//! response bodies and hands the finished exchange to the event path; `error` is the one
//! place userhook writes a response of its own (400, 408, 502, 504); `body` is the
//! client-side body type that keeps the unmatched path free of boxing; `tls` is the listener's
//! own certificate pair, reloaded when its files change. Never: await webhook
//! work (strict mode awaits only the bounded durability acknowledgement), buffer a whole
//! body, or log a body.

pub mod body;
pub mod edge;
pub mod error;
pub mod first_head;
pub mod listener;
pub mod served;
pub mod service;
pub mod tap;
pub mod tls;
pub mod watch;

pub use listener::ProxyThreads;
pub use service::{ProxyService, ProxyShared};
