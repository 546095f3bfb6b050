//! userhook: a reverse-proxy sidecar that turns an unmodified IAM's HTTP API into
//! user-lifecycle webhooks.
//!
//! ```text
//! client ─▶ proxy (one Runtime snapshot per request) ─▶ upstream IAM ─▶ response to client
//!              │ matched route: bounded tap of both bodies
//!              ▼ on completion (off the request path)
//!           Exchange ─▶ extract ─▶ UserEvent ─▶ dispatch ─▶ render ─▶ deliver (retry, dead letter)
//! ```
//!
//! Layout:
//! - [`cli`], [`app`]: commands and the wiring of listeners, reload and shutdown.
//! - [`config`]: the YAML model, `${VAR}` interpolation, validation with key paths, reload.
//! - [`runtime`]: the compiled, immutable snapshot a request uses from start to end.
//! - [`proxy`]: the streaming reverse proxy, its upstream client and the body tap.
//! - [`detect`], [`extract`], [`event`], [`exchange`]: from a matched exchange to a user event.
//! - [`dispatch`], [`template`], [`delivery`]: from an event to webhook requests.
//! - [`admin`], [`metrics`], [`telemetry`]: health, readiness, config view, Prometheus
//!   metrics and logs.
#![forbid(unsafe_code)]

pub mod admin;
mod admin_spool;
pub mod app;
pub mod cli;
pub mod config;
pub mod deadletter;
pub mod delivery;
pub mod demo;
pub mod detect;
pub mod dispatch;
pub mod event;
pub mod exchange;
pub mod extract;
pub mod metrics;
pub mod proxy;
pub mod runtime;
pub mod shutdown;
pub mod telemetry;
pub mod template;
