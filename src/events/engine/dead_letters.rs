//! Dead letters on a running engine: listing (after the writer's current batch), replaying
//! them back into pending (through [`crate::events::replay`], as the offline CLI does), and
//! purging them. The spool is read directly; changes go through the committer like every
//! other write, never straight to the file.

use std::time::Duration;

use super::admit::admit;
use super::error::EngineError;
use super::limits::LIST_LIMIT;
use super::state::DeliveryEngine;
use crate::events::records::DeadLetter;
use crate::events::replay::{self, Replay, Window};

impl DeliveryEngine {
    /// Dead letters, newest first (at most [`LIST_LIMIT`]), as committed. Waits for the
    /// writer's current batch (about one commit): not for the request path.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.shared.committer.flush_blocking(Duration::from_secs(5));
        self.with_spool(|s| Ok(s.dead_letters(LIST_LIMIT)?))
            .unwrap_or_default()
    }

    /// Dead letters, newest first, at most `limit`, after the writer's current batch.
    pub async fn dead_letter_list(&self, limit: usize) -> Result<Vec<DeadLetter>, EngineError> {
        self.flush().await;
        self.with_spool(|s| Ok(s.dead_letters(limit)?))
    }

    /// One dead letter by delivery id.
    pub async fn dead_letter(&self, id: &str) -> Result<Option<DeadLetter>, EngineError> {
        self.flush().await;
        self.with_spool(|s| Ok(s.dead_letter(id)?))
    }

    /// Takes dead letters back into pending (attempts reset, due now, same ids, at the end of
    /// their lanes), admitted as new deliveries are; returns how many. Stops early, with an
    /// error, when the engine refuses one (overloaded writer, stopping): those before it stay
    /// replayed, those after it stay dead letters. The reading and resetting is
    /// [`replay::dead_letters`], shared with the offline CLI.
    pub async fn replay(&self, which: Replay) -> Result<u64, EngineError> {
        // One replay at a time, each finished (committed) before the next reads: a dead letter
        // two replays name is revived by the first and no longer found by the second. The
        // spool also writes a revive only while its dead letter exists.
        let _one_at_a_time = self.shared.replaying.lock().await;
        self.flush().await;
        let count = self.with_spool(|spool| {
            replay::dead_letters(spool, &which, |d| {
                let id = d.id.clone();
                match admit(&self.shared, d, Some(id)) {
                    None => Ok(()),
                    Some(refusal) => Err(refusal),
                }
            })
            .map_err(EngineError::from)
        })?;
        self.flush().await;
        if count > 0 {
            tracing::info!(replayed = count, "dead letters replayed");
        }
        Ok(count)
    }

    /// Re-sends the kept successful deliveries (`delivery.retain_delivered`) in `window`:
    /// each admitted as a new pending delivery with its own delivery id (the receiver sees
    /// the `webhook-id` it saw before), attempts reset, at the end of its lane. Returns how
    /// many; stops early, with an error, when the engine refuses one.
    pub async fn resend(&self, window: &Window) -> Result<u64, EngineError> {
        let _one_at_a_time = self.shared.replaying.lock().await;
        self.flush().await;
        let count = self.with_spool(|spool| {
            replay::delivered(spool, window, |d| match admit(&self.shared, d, None) {
                None => Ok(()),
                Some(refusal) => Err(refusal),
            })
            .map_err(EngineError::from)
        })?;
        self.flush().await;
        if count > 0 {
            tracing::info!(resent = count, "delivered deliveries re-sent");
        }
        Ok(count)
    }

    /// Drops every dead letter; returns how many.
    pub async fn purge_dead_letters(&self) -> Result<u64, EngineError> {
        let n = self
            .shared
            .committer
            .purge()
            .await
            .ok_or(EngineError::Closed)?;
        tracing::info!(purged = n, "dead letters purged");
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arc_swap::ArcSwap;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;

    use super::*;
    use crate::snapshot::Snapshot;

    /// A target that answers every request 404 (final: dead-lettered at once) and reports each
    /// request's `webhook-id`.
    async fn refusing_target() -> (String, mpsc::UnboundedReceiver<String>) {
        target(usize::MAX).await
    }

    /// [`refusing_target`] for the first `answered` requests; later ones are read and reported
    /// but never answered (they stay in flight).
    async fn target(answered: usize) -> (String, mpsc::UnboundedReceiver<String>) {
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let tx = tx.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        let Ok(n) = conn.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                    let header = |name: &str| {
                        head.lines()
                            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
                    };
                    let len: usize =
                        header("content-length:").map_or(0, |v| v.parse().unwrap_or(0));
                    while buf.len() < head_end + len {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let _ = tx.send(header("webhook-id:").unwrap_or_default());
                    if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= answered {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    }
                    let reply =
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                    let _ = conn.write_all(reply).await;
                });
            }
        });
        (url, rx)
    }

    async fn dead_letters_now(engine: &DeliveryEngine, n: usize) -> Vec<DeadLetter> {
        for _ in 0..200 {
            let letters = engine.dead_letter_list(10).await.expect("list");
            if letters.len() == n {
                return letters;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("never {n} dead letter(s)");
    }

    #[tokio::test]
    async fn replay_admits_dead_letters_again_with_their_ids() {
        let (url, mut requests) = refusing_target().await;
        let text = format!(
            "listen: 127.0.0.1:0\nupstream: http://127.0.0.1:1\nadmin: {{listen: 127.0.0.1:0}}\nwebhooks:\n  - {{name: gone, actions: ['*'], url: '{url}'}}\n"
        );
        let rt = Snapshot::from_text(&text, None).unwrap_or_else(|e| panic!("{e}"));
        let engine = DeliveryEngine::start(Arc::new(ArcSwap::from_pointee(rt))).expect("engine");
        let d = crate::events::spool::tests::delivery("gone", "u1", 0);
        let id = d.id.clone();
        engine.enqueue(d);
        assert_eq!(requests.recv().await.as_deref(), Some(id.as_str()));
        let letters = dead_letters_now(&engine, 1).await;
        assert_eq!(letters[0].delivery.id, id);

        let unknown = engine.replay(Replay::One("nope".into())).await;
        let unknown = unknown.expect_err("no such dead letter");
        assert!(unknown.is_not_found(), "{unknown}");
        assert_eq!(unknown.to_string(), "no dead letter with id `nope`");
        assert_eq!(engine.replay(Replay::One(id.clone())).await.ok(), Some(1));
        // Attempted again, as the same delivery, and dead-lettered again (404 is final).
        assert_eq!(requests.recv().await.as_deref(), Some(id.as_str()));
        let again = dead_letters_now(&engine, 1).await;
        assert_eq!(
            (again[0].delivery.id.as_str(), again[0].delivery.attempt),
            (id.as_str(), 1)
        );
        assert_eq!(engine.records(None).len(), 1, "one delivery, one record");

        engine.stop(Duration::from_secs(1)).await;
        let closed = engine.replay(Replay::All).await.expect_err("stopped");
        assert!(matches!(closed, EngineError::Closed), "{closed}");
        assert_eq!(closed.to_string(), "the spool is closed");
        let purged = engine.purge_dead_letters().await.expect_err("stopped");
        assert!(matches!(purged, EngineError::Closed), "{purged}");
    }

    #[tokio::test]
    async fn two_concurrent_replays_of_one_dead_letter_revive_it_once() {
        // The first attempt is refused (dead letter); the replayed one is kept in flight, so
        // it is not a dead letter again when the second replay looks.
        let (url, mut requests) = target(1).await;
        let text = format!(
            "listen: 127.0.0.1:0\nupstream: http://127.0.0.1:1\nadmin: {{listen: 127.0.0.1:0}}\nwebhooks:\n  - {{name: gone, actions: ['*'], url: '{url}', timeout: 60s}}\n"
        );
        let rt = Snapshot::from_text(&text, None).unwrap_or_else(|e| panic!("{e}"));
        let engine = DeliveryEngine::start(Arc::new(ArcSwap::from_pointee(rt))).expect("engine");
        let d = crate::events::spool::tests::delivery("gone", "u1", 0);
        let id = d.id.clone();
        engine.enqueue(d);
        assert_eq!(requests.recv().await.as_deref(), Some(id.as_str()));
        dead_letters_now(&engine, 1).await;

        let (a, b) = tokio::join!(
            engine.replay(Replay::One(id.clone())),
            engine.replay(Replay::One(id.clone()))
        );
        let revived: u64 = [&a, &b].iter().filter_map(|r| r.as_ref().ok()).sum();
        assert_eq!(revived, 1, "{a:?} {b:?}");
        let other = if a.is_ok() { b } else { a };
        assert!(other.expect_err("the second finds none").is_not_found());
        let (a, b) = tokio::join!(engine.replay(Replay::All), engine.replay(Replay::All));
        assert_eq!(
            (a.expect("all"), b.expect("all")),
            (0, 0),
            "nothing dead now"
        );
        // Replayed once: one more attempt, never a second copy.
        assert_eq!(requests.recv().await.as_deref(), Some(id.as_str()));
        assert_eq!(engine.stats().pending, 1);
        assert_eq!(engine.pending().len(), 1);
        assert!(requests.try_recv().is_err(), "one attempt for one replay");
        engine.stop(Duration::from_millis(100)).await;
    }
}
