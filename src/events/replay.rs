//! Dead-letter replay, written once for both ways in: the running engine (the admin API's
//! `POST /deadletters/replay`) and a stopped spool (`userhook deadletter replay` when no
//! instance answers).
//!
//! [`dead_letters`] reads the dead letters from the spool (one by delivery id, or all of them,
//! oldest first, a page at a time), resets each (no attempts yet, no last error, due now; the
//! same delivery id, so receivers can still de-duplicate) and hands it to the caller's
//! `revive`, which takes it back into pending at the end of its lane: the engine admits it as a
//! new delivery (its seq counter, its committer, its refusals), and [`dead_letters_offline`]
//! gives it the stopped spool's next seq and writes it back itself.
//!
//! [`dead_letters`] never writes (only `revive` does) and never picks a seq; on a running engine
//! it holds one page of dead letters in memory at a time. It never runs on the request path:
//! it reads the spool with blocking I/O.

use super::clock::now_ms;
use super::outbox::Delivery;
use super::records::DeadLetter;
use super::spool::{Spool, SpoolError, Write};

/// Dead letters read per page when replaying all of them.
const PAGE: usize = 1024;

/// Replayed deliveries written back per transaction on a stopped spool.
const STOPPED_BATCH: usize = 1000;

/// Which dead letters to replay: the admin API's `?id=` or nothing, the CLI's `ID` or `--all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// The one with this delivery id.
    One(String),
    /// Every dead letter.
    All,
}

/// Why a replay did not finish. `E` is what the caller's `revive` refused with.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError<E> {
    /// [`Replay::One`] named no dead letter (the admin API answers 404).
    #[error("no dead letter with id `{0}`")]
    NotFound(String),
    /// The dead letters could not be read; nothing after the failed read was replayed.
    #[error(transparent)]
    Read(SpoolError),
    /// `revive` refused a delivery; the `replayed` before it were taken.
    #[error("replay stopped after {replayed}: {cause}")]
    Stopped {
        /// Deliveries taken back before the refusal.
        replayed: u64,
        /// Why `revive` refused.
        cause: E,
    },
}

/// Replays `which` dead letters of `spool` through `revive`, in dead-letter order, and returns
/// how many it took. Stops at the first refusal: later dead letters stay where they are.
pub fn dead_letters<E>(
    spool: &Spool,
    which: &Replay,
    mut revive: impl FnMut(Delivery) -> Result<(), E>,
) -> Result<u64, ReplayError<E>> {
    let mut replayed = 0u64;
    let mut take = |letter: DeadLetter| -> Result<(), ReplayError<E>> {
        revive(reset(letter)).map_err(|cause| ReplayError::Stopped { replayed, cause })?;
        replayed += 1;
        Ok(())
    };
    match which {
        Replay::One(id) => match spool.dead_letter(id).map_err(ReplayError::Read)? {
            Some(letter) => take(letter)?,
            None => return Err(ReplayError::NotFound(id.clone())),
        },
        Replay::All => {
            let mut after = None;
            loop {
                let page = spool.dead_page(after, PAGE).map_err(ReplayError::Read)?;
                let Some(last) = page.last().map(|(k, _)| *k) else {
                    break;
                };
                after = Some(last);
                for (_, letter) in page {
                    take(letter)?;
                }
            }
        }
    }
    Ok(replayed)
}

/// A dead letter as a pending delivery again: no attempts yet, no last error, due now.
fn reset(letter: DeadLetter) -> Delivery {
    let mut d = letter.delivery;
    d.attempt = 0;
    d.last_error = None;
    d.next_attempt_at = now_ms();
    d
}

/// Why a stopped spool could not take a replayed delivery back.
#[derive(Debug, thiserror::Error)]
pub enum WriteBackError {
    /// The delivery did not encode (plain strings and numbers: a guard, not a path).
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
    /// The spool refused the write.
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

/// [`dead_letters`] on the spool of a stopped instance (the caller holds its lock): each
/// delivery gets the next free seq, and all of them are written back, `STOPPED_BATCH` (1000)
/// per transaction, once every dead letter was read, so a failed read writes nothing. They are
/// delivered when userhook starts.
pub fn dead_letters_offline(
    spool: &Spool,
    which: &Replay,
) -> Result<u64, ReplayError<WriteBackError>> {
    let mut next_seq = next_free_seq(spool).map_err(ReplayError::Read)?;
    let mut writes = Vec::new();
    let read = dead_letters(
        spool,
        which,
        |mut d: Delivery| -> Result<(), WriteBackError> {
            d.seq = next_seq;
            next_seq += 1;
            writes.push(Write::Revive {
                bytes: serde_json::to_vec(&d)?,
                id: d.id,
                webhook: d.webhook,
                seq: d.seq,
            });
            Ok(())
        },
    )?;
    let mut written = 0u64;
    for batch in writes.chunks(STOPPED_BATCH) {
        spool.apply(batch).map_err(|e| ReplayError::Stopped {
            replayed: written,
            cause: e.into(),
        })?;
        written += batch.len() as u64;
    }
    debug_assert_eq!(read, written);
    Ok(written)
}

/// The seq the next delivery gets on a stopped spool: past the meta counter and past every
/// pending seq (as the engine computes it when it starts).
fn next_free_seq(spool: &Spool) -> Result<u64, SpoolError> {
    let (mut next_seq, _) = spool.meta()?;
    for (_, _, hi) in spool.webhooks()? {
        next_seq = next_seq.max(hi.saturating_add(1));
    }
    Ok(next_seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::spool::tests::{delivery, put};

    /// A spool with pending `w/u1` (seq 1) and dead letters for u2..=u4 (seqs 2..=4).
    fn spool_with_dead_letters() -> (Spool, Vec<Delivery>) {
        let spool = Spool::in_memory().expect("spool");
        let pending = delivery("w", "u1", 1);
        let dead: Vec<Delivery> = (2..=4)
            .map(|i| {
                let mut d = delivery("w", &format!("u{i}"), i);
                d.attempt = 5;
                d.last_error = Some("HTTP 404".into());
                d
            })
            .collect();
        let mut writes = vec![put(&pending)];
        for d in &dead {
            writes.push(put(d));
            let letter = DeadLetter {
                delivery: d.clone(),
                reason: "HTTP 404".into(),
                at: "then".into(),
            };
            writes.push(Write::Dead {
                webhook: d.webhook.clone(),
                seq: d.seq,
                id: d.id.clone(),
                bytes: serde_json::to_vec(&letter).expect("json"),
            });
        }
        spool.apply(&writes).expect("commit");
        (spool, dead)
    }

    #[test]
    fn replay_resets_in_dead_letter_order_and_stops_at_the_first_refusal() {
        let (spool, dead) = spool_with_dead_letters();
        let mut got = Vec::new();
        let n = dead_letters(&spool, &Replay::All, |d| {
            got.push(d);
            Ok::<_, &str>(())
        })
        .expect("replay");
        assert_eq!(n, 3);
        let ids: Vec<&str> = got.iter().map(|d| d.id.as_str()).collect();
        let want: Vec<&str> = dead.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, want, "same ids, oldest dead letter first");
        assert!(got
            .iter()
            .all(|d| d.attempt == 0 && d.last_error.is_none() && d.next_attempt_at > 1_000));

        let mut calls = 0;
        let e = dead_letters(&spool, &Replay::All, |_| {
            calls += 1;
            if calls == 2 {
                Err("full")
            } else {
                Ok(())
            }
        })
        .expect_err("refused");
        assert_eq!(e.to_string(), "replay stopped after 1: full");
        assert_eq!(calls, 2, "nothing after the refusal");

        let e = dead_letters(&spool, &Replay::One("nope".into()), |_| Ok::<_, &str>(()))
            .expect_err("unknown id");
        assert!(
            matches!(e, ReplayError::NotFound(ref id) if id == "nope"),
            "{e}"
        );
        assert_eq!(e.to_string(), "no dead letter with id `nope`");
        let one = dead_letters(&spool, &Replay::One(dead[1].id.clone()), |d| {
            assert_eq!(d.id, dead[1].id);
            Ok::<_, &str>(())
        });
        assert_eq!(one.expect("one"), 1);
    }

    #[test]
    fn a_stopped_spool_takes_them_back_at_the_end_of_their_lanes() {
        let (spool, dead) = spool_with_dead_letters();
        let n = dead_letters_offline(&spool, &Replay::One(dead[0].id.clone())).expect("one");
        assert_eq!(n, 1);
        assert_eq!(spool.dead_count().expect("count"), 2);
        assert_eq!(dead_letters_offline(&spool, &Replay::All).expect("all"), 2);
        assert_eq!(spool.dead_count().expect("count"), 0);
        let page = spool.page("w", 0, u64::MAX, 10).expect("page").deliveries;
        let seqs: Vec<u64> = page.iter().map(|d| d.seq).collect();
        assert_eq!(seqs, [1, 5, 6, 7], "after every seq in use");
        let ids: Vec<&str> = page[1..].iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, [&dead[0].id, &dead[1].id, &dead[2].id]);
        assert!(page[1..]
            .iter()
            .all(|d| d.attempt == 0 && d.last_error.is_none()));
        let e = dead_letters_offline(&spool, &Replay::One(dead[0].id.clone())).expect_err("gone");
        assert!(matches!(e, ReplayError::NotFound(_)), "{e}");
    }
}
