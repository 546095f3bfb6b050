//! A raw-socket IAM that answers with scripted bytes, for framing and connection-reuse
//! tests that need responses no HTTP library would write.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One scripted answer: the bytes, and whether the IAM closes the connection after them.
pub(crate) struct Answer {
    pub bytes: &'static [u8],
    pub close: bool,
}

/// An IAM that answers requests with the script, in order, written in two pieces so the
/// proxy has to put heads and chunks together across reads. Counts connections and keeps
/// each request head it saw.
pub(crate) struct Scripted {
    pub addr: std::net::SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub heads: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    pub(crate) async fn start(script: Vec<Answer>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.into_iter()));
        let (count, seen) = (connections.clone(), heads.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(s, script.clone(), seen.clone()));
            }
        });
        Scripted {
            addr,
            connections,
            heads,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn serve(
    mut s: TcpStream,
    script: Arc<Mutex<std::vec::IntoIter<Answer>>>,
    heads: Arc<Mutex<Vec<String>>>,
) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // One request: head, then Content-Length bytes of body.
        let head_end = loop {
            if let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
        };
        let head = String::from_utf8_lossy(&pending[..head_end]).to_string();
        let length = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_owned())
            })
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        while pending.len() < head_end + length {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
        }
        pending.drain(..head_end + length);
        heads.lock().expect("lock").push(head);
        let Some(answer) = script.lock().expect("lock").next() else {
            return;
        };
        let (a, b) = answer.bytes.split_at(answer.bytes.len() / 2);
        if s.write_all(a).await.is_err() || s.flush().await.is_err() {
            return;
        }
        tokio::task::yield_now().await;
        if s.write_all(b).await.is_err() {
            return;
        }
        if answer.close {
            let _ = s.shutdown().await;
            return;
        }
    }
}
