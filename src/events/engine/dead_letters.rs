//! Dead letters on a running engine: listing (after the writer's current batch), replaying
//! them back into pending, and purging them. The spool is read directly; changes go through
//! the committer like every other write.

use std::time::Duration;

use super::admit::{admit, refusal_text};
use super::limits::{LIST_LIMIT, PAGE};
use super::state::DeliveryEngine;
use crate::events::clock::now_ms;
use crate::events::records::DeadLetter;

/// Which dead letters to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// The one with this delivery id.
    One(String),
    /// Every dead letter.
    All,
}

impl DeliveryEngine {
    /// Dead letters, newest first (at most [`LIST_LIMIT`]), as committed. Waits for the
    /// writer's current batch (about one commit): not for the request path.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.shared.committer.flush_blocking(Duration::from_secs(5));
        self.with_spool(|s| s.dead_letters(LIST_LIMIT).map_err(|e| e.to_string()))
            .unwrap_or_default()
    }

    /// Dead letters, newest first, at most `limit`, after the writer's current batch.
    pub async fn dead_letter_list(&self, limit: usize) -> Result<Vec<DeadLetter>, String> {
        self.flush().await;
        self.with_spool(|s| s.dead_letters(limit).map_err(|e| e.to_string()))
    }

    /// One dead letter by delivery id.
    pub async fn dead_letter(&self, id: &str) -> Result<Option<DeadLetter>, String> {
        self.flush().await;
        self.with_spool(|s| s.dead_letter(id).map_err(|e| e.to_string()))
    }

    /// Takes dead letters back into pending (attempts reset, due now, same ids, at the end of
    /// their lanes); returns how many. Stops early, with an error, if the spool refuses.
    pub async fn replay(&self, which: Replay) -> Result<u64, String> {
        self.flush().await;
        let letters: Vec<DeadLetter> = match &which {
            Replay::One(id) => {
                match self.with_spool(|s| s.dead_letter(id).map_err(|e| e.to_string()))? {
                    Some(d) => vec![d],
                    None => return Err(format!("no dead letter with id `{id}`")),
                }
            }
            Replay::All => Vec::new(),
        };
        let mut count = 0u64;
        let mut revive = |letter: DeadLetter| -> Result<(), String> {
            let mut d = letter.delivery;
            d.attempt = 0;
            d.last_error = None;
            d.next_attempt_at = now_ms();
            let id = d.id.clone();
            match admit(&self.shared, d, Some(id)) {
                None => {
                    count += 1;
                    Ok(())
                }
                Some(r) => Err(format!(
                    "replay stopped after {count}: {}",
                    refusal_text(r, &self.shared)
                )),
            }
        };
        match which {
            Replay::One(_) => {
                for l in letters {
                    revive(l)?;
                }
            }
            Replay::All => {
                let mut after = None;
                loop {
                    let page =
                        self.with_spool(|s| s.dead_page(after, PAGE).map_err(|e| e.to_string()))?;
                    let Some(last) = page.last().map(|(k, _)| *k) else {
                        break;
                    };
                    after = Some(last);
                    for (_, l) in page {
                        revive(l)?;
                    }
                }
            }
        }
        self.flush().await;
        if count > 0 {
            tracing::info!(replayed = count, "dead letters replayed");
        }
        Ok(count)
    }

    /// Drops every dead letter; returns how many.
    pub async fn purge_dead_letters(&self) -> Result<u64, String> {
        let n = self
            .shared
            .committer
            .purge()
            .await
            .ok_or_else(|| String::from("the spool is closed"))?;
        tracing::info!(purged = n, "dead letters purged");
        Ok(n)
    }
}
