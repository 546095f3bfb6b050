//! userhook: a reverse-proxy sidecar that turns an unmodified IAM's HTTP API into
//! user-lifecycle webhooks.
//!
//! Two paths, drawn in full in `docs/architecture.md`:
//!
//! ```text
//! request path:  client ─▶ proxy (one Snapshot per request) ─▶ upstream IAM ─▶ client
//!                  │ matched route: bounded copies of both bodies (capture, proxy::tap)
//!                  ▼ when the response is done, a non-blocking try_send
//! event path:    handoff ─▶ extractor (detect::outcome, extract, user cache) ─▶ UserEvent
//!                  ─▶ dispatch ─▶ committer (spool) ─▶ engine ─▶ attempt ─▶ retry / dead letter
//! ```
//!
//! Layers, bottom to top; a module imports only from layers below it (enforced by
//! `tests/architecture.rs`):
//!
//! | layer | modules | job |
//! |---|---|---|
//! | leaves | [`shutdown`], [`event`], [`exchange`], [`redact`] | plain data, redaction by type |
//! | services | [`metrics`], [`headers`], [`capture`] | metric recorders, HTTP rules at a hop, body copies |
//! | model | [`config`], [`template`] | the YAML model and its checks, webhook templates |
//! | reading | [`telemetry`], [`extract`] | logs; reading values out of an exchange |
//! | detection | [`detect`] | route table, rules, the outcome of an exchange, built-in profiles |
//! | clients | [`upstream`], [`webhook`], [`sink`], [`learn`] | the IAM client; compiled webhooks and sinks (NATS JetStream); learn mode's inference |
//! | snapshot | [`snapshot`] | one config compiled into what a request uses start to end |
//! | reload | [`reload`] | watching the file, swapping snapshots, reporting outcomes |
//! | event path | [`events`] | hand-off, extractor, dispatch, spool, engine, dead letters |
//! | request path | [`proxy`] | the reverse proxy in phases, its listener and workers |
//! | admin | [`admin`], [`tail`] | health, readiness, metrics, config view, spool admin, the live feed; its live client |
//! | wiring | [`app`], [`demo`], [`cli`] | start and stop everything; the commands |
#![forbid(unsafe_code)]
// Nothing a user or the network controls may panic; tests may unwrap their own fixtures.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod admin;
pub mod app;
pub mod capture;
pub mod cli;
pub mod config;
pub mod demo;
pub mod detect;
pub mod event;
pub mod events;
pub mod exchange;
pub mod extract;
pub mod headers;
pub mod ids;
pub mod learn;
pub mod metrics;
pub mod proxy;
pub mod redact;
pub mod reload;
pub mod shutdown;
pub mod sink;
pub mod snapshot;
pub mod tail;
pub mod telemetry;
pub mod template;
pub mod upstream;
pub mod webhook;
