//! A real `nats-server -js` on 127.0.0.1 (a free port, a temp store dir) for the sink tests,
//! and a JetStream consumer that reads a stream back. If `nats-server` is not installed the
//! test fails, saying how to install it: nothing is skipped silently.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use tokio::process::{Child, Command};

use super::eventually;

/// One message as a consumer read it.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    /// The subject it was published to.
    pub subject: String,
    /// The `Nats-Msg-Id` header (userhook's delivery id).
    pub msg_id: String,
    /// The payload, byte for byte.
    pub payload: Vec<u8>,
    /// Its stream sequence.
    pub seq: u64,
}

/// A JetStream server process; stopped (SIGTERM, then waited for) on [`NatsServer::stop`] or
/// killed on drop.
pub(crate) struct NatsServer {
    pub port: u16,
    child: Option<Child>,
    store: tempfile::TempDir,
}

/// The `nats-server` binary, or a failure that says how to get it.
fn binary() -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin"] {
        let p = PathBuf::from(dir).join("nats-server");
        if p.is_file() {
            return p;
        }
    }
    if let Ok(path) = std::env::var("PATH") {
        for dir in path.split(':') {
            let p = PathBuf::from(dir).join("nats-server");
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "nats-server is not installed: the NATS sink tests need a real JetStream server. \
         Install it with `apt-get install -y nats-server` (Debian/Ubuntu) or put nats-server on PATH."
    );
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl NatsServer {
    /// Starts a server with JetStream on a free port and waits until it accepts connections.
    pub(crate) async fn start() -> NatsServer {
        let store = tempfile::tempdir().expect("store dir");
        let mut s = NatsServer {
            port: free_port(),
            child: None,
            store,
        };
        s.up().await;
        s
    }

    /// `nats://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the process on the same port and store, and waits for it to listen.
    pub(crate) async fn up(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(binary())
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(self.store.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().expect("addr");
        eventually(
            Duration::from_secs(20),
            "nats-server to listen",
            || async move { tokio::net::TcpStream::connect(addr).await.ok().map(|_| ()) },
        )
        .await;
    }

    /// Stops the process (SIGTERM, as an operator would) and waits for it to exit.
    pub(crate) async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status();
            }
            let waited = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
            if waited.is_err() {
                let _ = child.kill().await;
            }
        }
    }

    /// A JetStream context on a fresh client.
    pub(crate) async fn jetstream(&self) -> jetstream::Context {
        let client = async_nats::connect(self.url()).await.expect("connect");
        jetstream::new(client)
    }

    /// Messages in `stream` right now (0 when it does not exist yet).
    pub(crate) async fn count(&self, stream: &str) -> u64 {
        let js = self.jetstream().await;
        match js.get_stream(stream).await {
            Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
            Err(_) => 0,
        }
    }

    /// Reads every message of `stream` with an ephemeral pull consumer, in stream order,
    /// acknowledging each; waits (deadline `within`) until at least `expected` were read.
    pub(crate) async fn read_all(
        &self,
        stream: &str,
        expected: usize,
        within: Duration,
    ) -> Vec<Message> {
        use tokio_stream::StreamExt as _;
        let js = self.jetstream().await;
        let stream = js.get_stream(stream).await.expect("stream exists");
        let consumer = stream
            .create_consumer(pull::Config {
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut out = Vec::new();
        let end = std::time::Instant::now() + within;
        while out.len() < expected {
            assert!(
                std::time::Instant::now() < end,
                "read {} of {expected} messages within {within:?}",
                out.len()
            );
            let mut batch = consumer
                .fetch()
                .max_messages(500)
                .expires(Duration::from_millis(500))
                .messages()
                .await
                .expect("fetch");
            while let Some(m) = batch.next().await {
                let m = m.expect("message");
                let info = m.info().expect("info");
                let seq = info.stream_sequence;
                let msg_id = m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Msg-Id"))
                    .map(|v| v.as_str().to_string())
                    .unwrap_or_default();
                out.push(Message {
                    subject: m.subject.to_string(),
                    msg_id,
                    payload: m.payload.to_vec(),
                    seq,
                });
                m.ack().await.expect("ack");
            }
        }
        out
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}
