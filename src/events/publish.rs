//! One attempt to a sink: publish the event JSON to its NATS JetStream subject and wait for
//! the stream's acknowledgement (the PubAck), which is what "delivered" means for a sink.
//!
//! Each sink gets one shared client ([`Publishers`]), connected on first use in the
//! background (`retry_on_initial_connect`), reconnecting by itself; a reload that changes the
//! sink's servers, credentials or TLS replaces it. Every message carries `Nats-Msg-Id` = the
//! delivery id, so a re-sent publish (an ack lost to an outage, a retry after a crash) is
//! dropped by the stream's duplicate window. The stream is checked (or created, with
//! `create_stream`) before the first publish of a connection. Errors never carry a server URL's
//! userinfo, a token or a seed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::context::{CreateStreamErrorKind, GetStreamErrorKind, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream, ErrorCode};
use tokio::sync::OnceCell;

use super::retry::RetryDecision;
use crate::event::UserEvent;
use crate::sink::{Sink, SinkAuth};

/// A sink's connection could not be set up (a credentials file unreadable, say).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The client options could not be built.
    #[error("sink `{sink}`: cannot set up the NATS client: {reason}")]
    Setup {
        /// Which sink.
        sink: String,
        /// Why (never a secret).
        reason: String,
    },
    /// The configured stream is missing and `create_stream` is off.
    #[error("sink `{sink}`: stream `{stream}` does not exist; create it (nats stream add {stream} --subjects '{subjects}') or set create_stream: true")]
    NoStream {
        /// Which sink.
        sink: String,
        /// The stream named in the config.
        stream: String,
        /// The subjects it should capture.
        subjects: String,
    },
    /// The servers did not answer the stream check in time, or answered with an error.
    #[error("sink `{sink}`: cannot check stream `{stream}`: {reason}")]
    StreamCheck {
        /// Which sink.
        sink: String,
        /// The stream named in the config.
        stream: String,
        /// What went wrong.
        reason: String,
    },
}

/// One sink's client.
struct Publisher {
    key: (Vec<String>, SinkAuth, bool, Option<String>),
    client: async_nats::Client,
    js: jetstream::Context,
    /// Set once the stream was found (or created) on this client.
    stream_ready: OnceCell<()>,
}

/// The shared clients of every sink, by sink name. Cheap to share behind an `Arc`.
#[derive(Default)]
pub struct Publishers {
    map: Mutex<HashMap<String, Arc<Publisher>>>,
}

impl Publishers {
    /// No clients yet: each connects on its sink's first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// The client for `sink`, made (connecting in the background) when there is none or its
    /// connection settings changed.
    async fn get(&self, sink: &Sink) -> Result<Arc<Publisher>, PublishError> {
        let key = sink.connection_key();
        if let Some(p) = self.lock().get(&sink.name) {
            if p.key == key {
                return Ok(p.clone());
            }
        }
        let client = connect(sink).await?;
        let js = jetstream::ContextBuilder::new()
            .timeout(sink.timeout)
            .build(client.clone());
        let made = Arc::new(Publisher {
            key,
            client,
            js,
            stream_ready: OnceCell::new(),
        });
        let old = self.lock().insert(sink.name.clone(), made.clone());
        if let Some(old) = old {
            // Another attempt may have raced us here; dropping the old client closes it.
            if !Arc::ptr_eq(&old, &made) {
                let _ = old.client.flush().await;
            }
        }
        Ok(made)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Publisher>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connects `sink` and checks (or creates) its stream: run at start so a missing stream
    /// is a clear error in the log before any event, and by every first publish.
    pub async fn prepare(&self, sink: &Sink) -> Result<(), PublishError> {
        let p = self.get(sink).await?;
        ensure_stream(&p, sink).await
    }

    /// Publishes one delivery of `event` to `sink` and judges it: the PubAck is success; an
    /// outage, a timeout or a missing stream is retried; a message the server can never take
    /// (too large, an invalid subject) is final.
    pub async fn publish(
        &self,
        sink: &Sink,
        delivery_id: &str,
        event: &UserEvent,
    ) -> RetryDecision {
        let p = match self.get(sink).await {
            Ok(p) => p,
            Err(e) => {
                return RetryDecision::Retry {
                    reason: e.to_string(),
                    retry_after: None,
                }
            }
        };
        if let Err(e) = ensure_stream(&p, sink).await {
            return RetryDecision::Retry {
                reason: e.to_string(),
                retry_after: None,
            };
        }
        let body = match serde_json::to_vec(event) {
            Ok(b) => b,
            Err(e) => {
                return RetryDecision::Final {
                    reason: format!("cannot encode the event: {e}"),
                }
            }
        };
        let subject = sink.subject(event);
        let message = PublishMessage::build()
            .payload(body.into())
            .message_id(delivery_id);
        let attempt = async {
            let ack = p.js.send_publish(subject.clone(), message).await?;
            ack.await
        };
        match tokio::time::timeout(sink.timeout + Duration::from_millis(100), attempt).await {
            Err(_) => RetryDecision::Retry {
                reason: format!(
                    "no acknowledgement within the timeout of {}",
                    humantime::format_duration(sink.timeout)
                ),
                retry_after: None,
            },
            Ok(Ok(ack)) => match &sink.stream {
                Some(want) if *want != ack.stream => RetryDecision::Final {
                    reason: format!(
                        "subject `{subject}` is captured by stream `{}`, not `{want}`",
                        ack.stream
                    ),
                },
                _ => RetryDecision::Delivered,
            },
            Ok(Err(e)) => match e.kind() {
                PublishErrorKind::MaxPayloadExceeded | PublishErrorKind::WrongLastMessageId => {
                    RetryDecision::Final {
                        reason: format!("JetStream refused the message: {e}"),
                    }
                }
                PublishErrorKind::StreamNotFound => RetryDecision::Retry {
                    reason: format!("no stream captures subject `{subject}`"),
                    retry_after: None,
                },
                _ => RetryDecision::Retry {
                    reason: format!("publish failed: {e}"),
                    retry_after: None,
                },
            },
        }
    }

    /// Flushes every client (what it buffered goes out) and forgets them: at shutdown.
    pub async fn flush_all(&self, grace: Duration) {
        let all: Vec<Arc<Publisher>> = self.lock().drain().map(|(_, p)| p).collect();
        for p in all {
            let _ = tokio::time::timeout(grace, p.client.flush()).await;
        }
    }
}

/// Client options from the sink's config; connects in the background.
async fn connect(sink: &Sink) -> Result<async_nats::Client, PublishError> {
    let setup = |reason: String| PublishError::Setup {
        sink: sink.name.clone(),
        reason,
    };
    let mut opts = async_nats::ConnectOptions::new()
        .name(format!(
            "userhook/{} {}",
            env!("CARGO_PKG_VERSION"),
            sink.name
        ))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(sink.timeout)
        .require_tls(sink.tls_required);
    if let Some(ca) = &sink.ca_file {
        opts = opts.add_root_certificates(ca.into());
    }
    opts = match &sink.auth {
        SinkAuth::None => opts,
        SinkAuth::Token(t) => opts.token(t.clone()),
        SinkAuth::NKey(seed) => opts.nkey(seed.clone()),
        SinkAuth::CredsFile(path) => opts
            .credentials_file(path)
            .await
            .map_err(|e| setup(format!("cannot read the creds file {path}: {}", e.kind())))?,
    };
    let servers: Vec<async_nats::ServerAddr> =
        sink.servers.iter().filter_map(|s| s.parse().ok()).collect();
    if servers.is_empty() {
        return Err(setup("no server URL could be parsed".into()));
    }
    opts.connect(servers)
        .await
        .map_err(|e| setup(format!("{}", e.kind())))
}

/// Finds the sink's stream on this client (creating it with `create_stream`), once.
async fn ensure_stream(p: &Publisher, sink: &Sink) -> Result<(), PublishError> {
    let Some(name) = &sink.stream else {
        return Ok(());
    };
    p.stream_ready
        .get_or_try_init(|| async {
            let check = |reason: String| PublishError::StreamCheck {
                sink: sink.name.clone(),
                stream: name.clone(),
                reason,
            };
            let found = tokio::time::timeout(sink.timeout, p.js.get_stream(name))
                .await
                .map_err(|_| check("the servers did not answer in time".into()))?;
            match found {
                Ok(_) => Ok(()),
                Err(e) => match e.kind() {
                    GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                        if !sink.create_stream {
                            return Err(PublishError::NoStream {
                                sink: sink.name.clone(),
                                stream: name.clone(),
                                subjects: sink.stream_subjects.join(","),
                            });
                        }
                        create_stream(p, sink, name).await.map_err(check)?;
                        tracing::info!(sink = %sink.name, stream = %name, "created the JetStream stream");
                        Ok(())
                    }
                    other => Err(check(other.to_string())),
                },
            }
        })
        .await
        .map(|_| ())
}

/// Creates the stream: file storage, the sink's subjects, a two-minute duplicate window.
async fn create_stream(p: &Publisher, sink: &Sink, name: &str) -> Result<(), String> {
    let config = stream::Config {
        name: name.to_string(),
        subjects: sink.stream_subjects.clone(),
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    match tokio::time::timeout(sink.timeout, p.js.create_stream(config)).await {
        Err(_) => Err("the servers did not answer in time".into()),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => match e.kind() {
            // Another replica created it first: what we wanted.
            CreateStreamErrorKind::JetStream(j)
                if j.error_code() == ErrorCode::STREAM_NAME_EXIST =>
            {
                Ok(())
            }
            other => Err(other.to_string()),
        },
    }
}
