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

/// Which dead letters to replay: the admin API's `?id=` or nothing, the CLI's `ID` or `--all`,
/// or a window (`--webhook`, `--since`, `--until`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// The one with this delivery id.
    One(String),
    /// Every dead letter.
    All,
    /// Those of one webhook and/or created within a time window.
    Window(Window),
}

/// Deliveries of one webhook (or all) whose event happened within `[since, until)`: what a
/// receiver that lost a day of data asks for. The time is the delivery's creation (its
/// event's), so a window names the same deliveries however often they were retried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    /// Only this webhook's (or sink's) deliveries; `None`: every target's.
    pub webhook: Option<String>,
    /// Created at or after this, Unix ms.
    pub since_ms: Option<u64>,
    /// Created before this, Unix ms.
    pub until_ms: Option<u64>,
}

impl Window {
    /// Whether `delivery` falls in the window.
    pub fn contains(&self, delivery: &Delivery) -> bool {
        self.webhook.as_ref().is_none_or(|w| *w == delivery.webhook)
            && self.since_ms.is_none_or(|s| delivery.created_at >= s)
            && self.until_ms.is_none_or(|u| delivery.created_at < u)
    }

    /// Reads the `webhook`, `since` and `until` of a query or command line; times are RFC 3339
    /// (`2026-12-01T00:00:00Z`) or a span back from `now_ms` (`24h`, `90m`, `7d`).
    pub fn parse(
        webhook: Option<&str>,
        since: Option<&str>,
        until: Option<&str>,
        now_ms: u64,
    ) -> Result<Window, String> {
        let since_ms = since.map(|t| instant(t, now_ms, "since")).transpose()?;
        let until_ms = until.map(|t| instant(t, now_ms, "until")).transpose()?;
        if let (Some(s), Some(u)) = (since_ms, until_ms) {
            if s >= u {
                return Err(format!(
                    "`since` ({}) is not before `until` ({}); the window is empty",
                    since.unwrap_or_default(),
                    until.unwrap_or_default()
                ));
            }
        }
        if webhook.is_some_and(|w| w.trim().is_empty()) {
            return Err("`webhook` is empty; name a webhook or leave it out for all".to_owned());
        }
        Ok(Window {
            webhook: webhook.map(str::to_owned),
            since_ms,
            until_ms,
        })
    }
}

/// `2026-12-01T00:00:00Z` (or with an offset, or fractional seconds) or `24h` back from now,
/// as Unix ms.
fn instant(text: &str, now_ms: u64, key: &str) -> Result<u64, String> {
    let text = text.trim();
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(unix_ms(t));
    }
    if let Some(t) = rfc3339_with_offset(text) {
        return Ok(t);
    }
    match humantime::parse_duration(text) {
        Ok(d) => Ok(now_ms.saturating_sub(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))),
        Err(_) => Err(format!(
            "`{key}` value `{text}` is neither an RFC 3339 time (2026-12-01T00:00:00Z) nor a \
             span back from now (24h, 90m, 7d)"
        )),
    }
}

/// An RFC 3339 time with a numeric offset (`2026-12-01T08:00:00+08:00`), as Unix ms.
fn rfc3339_with_offset(text: &str) -> Option<u64> {
    let (local, sign, offset) = match text.len().checked_sub(6) {
        Some(i) if text.is_char_boundary(i) => {
            let (local, offset) = text.split_at(i);
            let sign = match offset.as_bytes().first() {
                Some(b'+') => 1i64,
                Some(b'-') => -1,
                _ => return None,
            };
            (local, sign, offset.get(1..)?)
        }
        _ => return None,
    };
    let (h, m) = offset.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    if h > 23 || m > 59 {
        return None;
    }
    let t = humantime::parse_rfc3339_weak(local).ok()?;
    let ms = i64::try_from(unix_ms(t)).ok()?;
    u64::try_from(ms - sign * (h * 3600 + m * 60) * 1000).ok()
}

fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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
        Replay::All | Replay::Window(_) => {
            let window = match which {
                Replay::Window(w) => w.clone(),
                _ => Window::default(),
            };
            let mut after = None;
            loop {
                let page = spool.dead_page(after, PAGE).map_err(ReplayError::Read)?;
                let Some(last) = page.last().map(|(k, _)| *k) else {
                    break;
                };
                after = Some(last);
                for (_, letter) in page {
                    if window.contains(&letter.delivery) {
                        take(letter)?;
                    }
                }
            }
        }
    }
    Ok(replayed)
}

/// Re-sends the successful deliveries `spool` kept (`delivery.retain_delivered`) that fall in
/// `window`, oldest first, through `send`: each reset (no attempts, due now) with its
/// delivery id, so the receiver sees the same `webhook-id` as the first time. Returns how many
/// it took; stops at the first refusal, as [`dead_letters`] does. Never writes itself.
pub fn delivered<E>(
    spool: &Spool,
    window: &Window,
    mut send: impl FnMut(Delivery) -> Result<(), E>,
) -> Result<u64, ReplayError<E>> {
    let mut sent = 0u64;
    let mut after = None;
    loop {
        let page = spool
            .delivered_page(after, PAGE)
            .map_err(ReplayError::Read)?;
        let Some(last) = page.last().map(|(k, _)| *k) else {
            break;
        };
        after = Some(last);
        for (_, d) in page {
            if window.contains(&d) {
                send(reset_delivery(d)).map_err(|cause| ReplayError::Stopped {
                    replayed: sent,
                    cause,
                })?;
                sent += 1;
            }
        }
    }
    Ok(sent)
}

/// [`delivered`] on the spool of a stopped instance: each re-send is written back as a
/// pending delivery with the next free seq, sent when userhook starts.
pub fn delivered_offline(
    spool: &Spool,
    window: &Window,
) -> Result<u64, ReplayError<WriteBackError>> {
    let mut next_seq = next_free_seq(spool).map_err(ReplayError::Read)?;
    let mut writes = Vec::new();
    let read = delivered(
        spool,
        window,
        |mut d: Delivery| -> Result<(), WriteBackError> {
            d.seq = next_seq;
            next_seq += 1;
            writes.push(Write::Put {
                bytes: serde_json::to_vec(&d)?,
                webhook: d.webhook,
                seq: d.seq,
            });
            Ok(())
        },
    )?;
    write_back(spool, &writes, read)
}

/// Writes `writes` (the `read` deliveries of an offline replay) back into a stopped spool,
/// `STOPPED_BATCH` per transaction; says how many were written before a failure.
fn write_back(
    spool: &Spool,
    writes: &[Write],
    read: u64,
) -> Result<u64, ReplayError<WriteBackError>> {
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

/// A dead letter as a pending delivery again: no attempts yet, no last error, due now.
fn reset(letter: DeadLetter) -> Delivery {
    reset_delivery(letter.delivery)
}

/// A delivery due again: no attempts yet, no last error, due now; its id unchanged.
fn reset_delivery(mut d: Delivery) -> Delivery {
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
    write_back(spool, &writes, read)
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
                d.created_at = 100 * i;
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

    #[test]
    fn windows_read_rfc3339_offsets_and_spans_back_from_now() {
        let now = 1_764_633_600_000; // 2025-12-02T00:00:00Z
        let w = Window::parse(Some("ops"), Some("24h"), Some("2025-12-02T00:00:00Z"), now)
            .expect("window");
        assert_eq!(w.webhook.as_deref(), Some("ops"));
        assert_eq!(w.since_ms, Some(now - 86_400_000));
        assert_eq!(w.until_ms, Some(now));
        let w = Window::parse(None, Some("2025-12-02T08:00:00+08:00"), None, now).expect("offset");
        assert_eq!(w.since_ms, Some(now));
        let w = Window::parse(None, Some("2025-12-01T23:00:00.500-01:00"), None, now).expect("neg");
        assert_eq!(w.since_ms, Some(now + 500));
        assert_eq!(Window::parse(None, None, None, now), Ok(Window::default()));
        for (since, until, want) in [
            (
                Some("yesterday"),
                None,
                "`since` value `yesterday` is neither",
            ),
            (None, Some("2025-13-01T00:00:00Z"), "`until` value"),
            (Some("1h"), Some("2h"), "is not before `until`"),
        ] {
            let e = Window::parse(None, since, until, now).expect_err("bad");
            assert!(e.contains(want), "{e}");
        }
        assert!(Window::parse(Some(" "), None, None, now)
            .expect_err("empty")
            .contains("`webhook` is empty"));
    }

    #[test]
    fn a_window_replays_only_its_webhooks_dead_letters_of_its_time() {
        let (spool, dead) = spool_with_dead_letters();
        let created: Vec<u64> = dead.iter().map(|d| d.created_at).collect();
        let window = Window {
            webhook: Some("w".into()),
            since_ms: Some(created[1]),
            until_ms: Some(created[2]),
        };
        let mut got = Vec::new();
        let n = dead_letters(&spool, &Replay::Window(window), |d| {
            got.push(d.id);
            Ok::<(), ()>(())
        })
        .expect("replay");
        assert_eq!((n, got), (1, vec![dead[1].id.clone()]));
        let other = Window {
            webhook: Some("other".into()),
            ..Window::default()
        };
        assert_eq!(
            dead_letters(&spool, &Replay::Window(other), |_| Ok::<(), ()>(())).expect("none"),
            0
        );
    }

    /// Kept deliveries for `w` and `v`, delivered at `now_ms` 1000, 2000, 3000.
    fn spool_with_kept(keep: usize) -> (Spool, Vec<Delivery>) {
        let spool = Spool::in_memory().expect("spool");
        let kept: Vec<Delivery> = [("w", "u1"), ("v", "u2"), ("w", "u3")]
            .iter()
            .enumerate()
            .map(|(i, (w, u))| {
                let mut d = delivery(w, u, i as u64 + 1);
                d.created_at = 100 * (i as u64 + 1);
                d.attempt = 2;
                d
            })
            .collect();
        for (i, d) in kept.iter().enumerate() {
            spool.apply(&[put(d)]).expect("put");
            let retain = crate::events::spool::Retain {
                row: Some((d.id.clone(), serde_json::to_vec(d).expect("json"))),
                keep,
                max_age_ms: 10_000,
                now_ms: 1000 * (i as u64 + 1),
            };
            spool
                .apply(&[Write::Delivered {
                    webhook: d.webhook.clone(),
                    seq: d.seq,
                    retain,
                }])
                .expect("delivered");
        }
        (spool, kept)
    }

    #[test]
    fn delivered_deliveries_are_kept_within_bounds_and_resent_with_their_ids() {
        let (spool, kept) = spool_with_kept(10);
        assert_eq!(spool.pending_count().expect("count"), 0);
        assert_eq!(spool.delivered_count().expect("count"), 3);
        let mut got = Vec::new();
        let w = Window {
            webhook: Some("w".into()),
            ..Window::default()
        };
        let n = delivered(&spool, &w, |d| {
            got.push(d);
            Ok::<(), ()>(())
        })
        .expect("resend");
        assert_eq!(n, 2);
        let ids: Vec<&str> = got.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, [kept[0].id.as_str(), kept[2].id.as_str()]);
        assert!(got.iter().all(|d| d.attempt == 0 && d.last_error.is_none()));
        let since = Window {
            since_ms: Some(200),
            until_ms: Some(300),
            ..Window::default()
        };
        assert_eq!(
            delivered(&spool, &since, |_| Ok::<(), ()>(())).expect("n"),
            1
        );

        // The count bound drops the oldest; a delivery kept again replaces its older row.
        let (spool, kept) = spool_with_kept(2);
        assert_eq!(spool.delivered_count().expect("count"), 2);
        let first = spool.delivered_page(None, 10).expect("page");
        assert_eq!(first[0].1.id, kept[1].id);
        let again = crate::events::spool::Retain {
            row: Some((
                kept[1].id.clone(),
                serde_json::to_vec(&kept[1]).expect("json"),
            )),
            keep: 2,
            max_age_ms: 10_000,
            now_ms: 4000,
        };
        spool
            .apply(&[Write::Delivered {
                webhook: "v".into(),
                seq: 99,
                retain: again,
            }])
            .expect("again");
        let page = spool.delivered_page(None, 10).expect("page");
        let ids: Vec<&str> = page.iter().map(|(_, d)| d.id.as_str()).collect();
        assert_eq!(ids, [kept[2].id.as_str(), kept[1].id.as_str()]);

        // Age: past max_age from the newest success, the older ones go.
        let aged = crate::events::spool::Retain {
            row: None,
            keep: 2,
            max_age_ms: 500,
            now_ms: 4200,
        };
        spool
            .apply(&[Write::Delivered {
                webhook: "v".into(),
                seq: 100,
                retain: aged,
            }])
            .expect("aged");
        let page = spool.delivered_page(None, 10).expect("page");
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].1.id, kept[1].id);

        // Retention turned off: what was kept is dropped at the next success.
        let off = crate::events::spool::Retain {
            row: None,
            keep: 0,
            max_age_ms: 10_000,
            now_ms: 4300,
        };
        spool
            .apply(&[Write::Delivered {
                webhook: "v".into(),
                seq: 101,
                retain: off,
            }])
            .expect("off");
        assert_eq!(spool.delivered_count().expect("count"), 0);
        let (_, payload) = spool.meta().expect("meta");
        assert_eq!(payload, 0, "every kept byte is accounted for and gone");
    }

    #[test]
    fn a_stopped_spool_takes_resends_back_as_pending() {
        let (spool, kept) = spool_with_kept(10);
        let n = delivered_offline(&spool, &Window::default()).expect("offline");
        assert_eq!(n, 3);
        assert_eq!(spool.pending_count().expect("count"), 3);
        let mut ids: Vec<String> = spool
            .webhooks()
            .expect("webhooks")
            .into_iter()
            .flat_map(|(w, _, _)| {
                spool
                    .page(&w, 0, u64::MAX, 10)
                    .expect("page")
                    .deliveries
                    .into_iter()
                    .map(|d| d.id)
            })
            .collect();
        ids.sort();
        let mut want: Vec<String> = kept.iter().map(|d| d.id.clone()).collect();
        want.sort();
        assert_eq!(ids, want);
    }
}
