//! The spool as a whole: what [`Spool::apply`] writes is what the reads give back, across a
//! reopen, with exact byte accounting. Also the helpers other tests in `events` build on.

use super::*;
use crate::event::{Action, RequestInfo, UserEvent, UserFields};
use crate::events::outbox::Delivery;
use crate::events::records::{DeadLetter, DeliveryRecord};

/// A delivery of an update of `user` to `webhook`, at spool sequence `seq`.
pub(in crate::events) fn delivery(webhook: &str, user: &str, seq: u64) -> Delivery {
    let mut f = UserFields::new();
    f.insert("ID".into(), user.into());
    let mut d = Delivery::new(
        webhook,
        UserEvent::new(seq, Action::Updated, f, RequestInfo::default(), false),
        1_000,
    );
    d.seq = seq;
    d
}

/// The spool write that stores `d`.
pub(in crate::events) fn put(d: &Delivery) -> Write {
    Write::Put {
        webhook: d.webhook.clone(),
        seq: d.seq,
        bytes: serde_json::to_vec(d).expect("json"),
    }
}

#[test]
fn pending_survives_reopen_with_retry_state_and_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = delivery("w", "a", 1);
    let b = delivery("w", "b", 2);
    let c = delivery("v", "a", 3);
    {
        let spool = Spool::open(dir.path()).expect("open");
        spool.apply(&[put(&a), put(&b), put(&c)]).expect("commit");
        a.attempt = 3;
        a.next_attempt_at = 99_000;
        a.last_error = Some("HTTP 503".into());
        spool.apply(&[put(&a)]).expect("commit");
        // A second open in the same process is refused while the first holds the lock.
        let again = Spool::open(dir.path()).expect_err("locked");
        assert!(again.is_locked(), "{again}");
    }
    let spool = Spool::open(dir.path()).expect("reopen");
    assert_eq!(
        spool.webhooks().expect("webhooks"),
        [("v".to_string(), 3, 3), ("w".to_string(), 1, 2)]
    );
    let page = spool.page("w", 0, 2, 10).expect("page");
    let (page, last) = (page.deliveries, page.last);
    assert_eq!(page, [a.clone(), b.clone()]);
    assert_eq!(last, Some(2));
    assert_eq!(page[0].attempt, 3);
    assert_eq!(page[0].next_attempt_at, 99_000);
    let one = spool.page("w", 0, 2, 1).expect("page");
    let (one, last) = (one.deliveries, one.last);
    assert_eq!((one.len(), last), (1, Some(1)));
    assert_eq!(spool.page("w", 2, 2, 10).expect("page").deliveries, []);
    assert_eq!(spool.meta().expect("meta").0, 4, "next seq");
    assert_eq!(spool.pending_count().expect("count"), 3);
}

#[test]
fn dead_letters_move_revive_and_purge_with_exact_byte_accounting() {
    let spool = Spool::in_memory().expect("spool");
    let d = delivery("w", "a", 1);
    let bytes = (serde_json::to_vec(&d).expect("json").len() + ROW_OVERHEAD) as u64;
    let applied = spool.apply(&[put(&d)]).expect("commit");
    assert_eq!(applied.payload_bytes, bytes);
    let letter = DeadLetter {
        delivery: d.clone(),
        reason: "HTTP 404".into(),
        at: "now".into(),
    };
    let letter_bytes = serde_json::to_vec(&letter).expect("json");
    let dead_len = (letter_bytes.len() + ROW_OVERHEAD) as u64;
    let applied = spool
        .apply(&[Write::Dead {
            webhook: "w".into(),
            seq: 1,
            id: d.id.clone(),
            bytes: letter_bytes,
        }])
        .expect("commit");
    assert_eq!(applied.payload_bytes, dead_len);
    assert_eq!(spool.pending_count().expect("count"), 0);
    assert_eq!(
        spool.dead_letter(&d.id).expect("read"),
        Some(letter.clone())
    );
    assert_eq!(
        spool.dead_letters(10).expect("list"),
        std::slice::from_ref(&letter)
    );

    let mut back = d.clone();
    back.seq = 7;
    let applied = spool
        .apply(&[Write::Revive {
            id: d.id.clone(),
            webhook: "w".into(),
            seq: 7,
            bytes: serde_json::to_vec(&back).expect("json"),
        }])
        .expect("commit");
    assert_eq!(spool.dead_count().expect("count"), 0);
    assert_eq!(
        spool.page("w", 0, 10, 10).expect("page").deliveries,
        [back.clone()]
    );
    assert_eq!(spool.meta().expect("meta"), (8, applied.payload_bytes));

    spool
        .apply(&[
            Write::Dead {
                webhook: "w".into(),
                seq: 7,
                id: d.id.clone(),
                bytes: serde_json::to_vec(&letter).expect("json"),
            },
            Write::Remove {
                webhook: "w".into(),
                seq: 7,
            },
        ])
        .expect("commit");
    let applied = spool.apply(&[Write::PurgeDead]).expect("commit");
    assert_eq!((applied.purged, applied.payload_bytes), (1, 0));
    assert_eq!(spool.dead_letter(&d.id).expect("read"), None);
}

#[test]
fn records_keep_the_newest_n_and_update_in_place() {
    use crate::events::records::DeliveryStatus;
    let spool = Spool::in_memory().expect("spool");
    let ds: Vec<Delivery> = (1..=4).map(|i| delivery("w", &i.to_string(), i)).collect();
    let rec = |d: &Delivery, s| {
        let r = DeliveryRecord::of(d, s, None, 0);
        Write::Record {
            id: r.delivery_id.clone(),
            bytes: serde_json::to_vec(&r).expect("json"),
            keep: 2,
        }
    };
    spool
        .apply(&[
            rec(&ds[0], DeliveryStatus::Retrying),
            rec(&ds[1], DeliveryStatus::Retrying),
            rec(&ds[0], DeliveryStatus::Successful),
        ])
        .expect("commit");
    let users = |s: &Spool| -> Vec<(String, DeliveryStatus)> {
        s.records(10)
            .expect("records")
            .into_iter()
            .map(|r| (r.user_id, r.status))
            .collect()
    };
    assert_eq!(
        users(&spool),
        [
            ("1".into(), DeliveryStatus::Successful),
            ("2".into(), DeliveryStatus::Retrying)
        ]
    );
    spool
        .apply(&[
            rec(&ds[2], DeliveryStatus::Failed),
            rec(&ds[3], DeliveryStatus::Failed),
        ])
        .expect("commit");
    assert_eq!(
        users(&spool),
        [
            ("3".into(), DeliveryStatus::Failed),
            ("4".into(), DeliveryStatus::Failed)
        ]
    );
    // The evicted delivery's index entry went with it: a new outcome is a new record.
    spool
        .apply(&[rec(&ds[0], DeliveryStatus::Failed)])
        .expect("commit");
    assert_eq!(users(&spool)[1], ("1".into(), DeliveryStatus::Failed));
}

/// Does the raw file hold `needle` anywhere (live rows, free pages, anything)?
pub(in crate::events) fn file_contains(path: &std::path::Path, needle: &[u8]) -> bool {
    let bytes = std::fs::read(path).expect("read spool file");
    bytes.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn compaction_leaves_no_byte_of_removed_rows_in_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = Spool::open(dir.path()).expect("open");
    let path = dir.path().join(SPOOL_FILE);
    let canary = b"canary-4f1d9e2a-personal-data";
    // Many deliveries carrying the canary, some of them rewritten (retry state), then all gone.
    let mut ds = Vec::new();
    for i in 0..400u64 {
        let mut d = delivery("w", &format!("u{i}"), i + 1);
        d.event.user.insert(
            "Email".into(),
            format!("{}-{i}@example.com", String::from_utf8_lossy(canary)),
        );
        ds.push(d);
    }
    for chunk in ds.chunks(50) {
        spool
            .apply(&chunk.iter().map(put).collect::<Vec<_>>())
            .expect("commit");
    }
    for d in ds.iter_mut().take(100) {
        d.attempt = 1;
        spool.apply(&[put(d)]).expect("retry state");
    }
    assert!(file_contains(&path, canary), "written");
    for d in &ds {
        spool
            .apply(&[Write::Remove {
                webhook: d.webhook.clone(),
                seq: d.seq,
            }])
            .expect("remove");
    }
    // One delivery stays pending: its bytes must survive compaction, the others' must not.
    let mut live = delivery("w", "live", 1000);
    live.event
        .user
        .insert("Email".into(), "live-marker-77@example.com".into());
    spool.apply(&[put(&live)]).expect("commit");
    assert_eq!(spool.pending_count().expect("count"), 1);
    assert!(
        file_contains(&path, canary),
        "without compaction the bytes linger in free pages (this is what the test is about)"
    );
    spool.compact().expect("compact");
    assert!(
        !file_contains(&path, canary),
        "compaction must leave no byte of a removed row in the file"
    );
    assert!(file_contains(&path, b"live-marker-77@example.com"));
    assert_eq!(
        spool.page("w", 0, u64::MAX, 10).expect("page").deliveries,
        [live]
    );
    // Still a working spool.
    spool
        .apply(&[put(&delivery("w", "x", 999))])
        .expect("commit");
    assert_eq!(spool.pending_count().expect("count"), 2);
}

#[test]
fn a_row_changed_on_disk_is_reported_damaged_never_returned_altered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(SPOOL_FILE);
    let mut d = delivery("w", "u1", 1);
    d.event
        .user
        .insert("Email".into(), "victim-3f9a@example.com".into());
    let ok = delivery("w", "u2", 2);
    {
        let spool = Spool::open(dir.path()).expect("open");
        spool.apply(&[put(&d), put(&ok)]).expect("commit");
    }
    // An edit that keeps the JSON valid: only the checksum can tell.
    let mut bytes = std::fs::read(&path).expect("read");
    let needle = b"victim-3f9a@example.com";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("row on disk");
    bytes[at..at + 6].copy_from_slice(b"attack");
    std::fs::write(&path, &bytes).expect("write");

    let spool = Spool::open(dir.path()).expect("reopen");
    let page = spool.page("w", 0, u64::MAX, 10).expect("page");
    assert_eq!(page.deliveries, [ok]);
    assert_eq!(page.damaged, [1]);
    assert_eq!(page.last, Some(2));
    spool
        .apply(&[Write::Quarantine {
            webhook: "w".into(),
            seq: 1,
        }])
        .expect("quarantine");
    assert_eq!(spool.pending_count().expect("count"), 1);
    assert_eq!(spool.quarantined_count().expect("count"), 1);
    assert!(spool
        .page("w", 0, u64::MAX, 10)
        .expect("page")
        .damaged
        .is_empty());
    let applied = spool.apply(&[Write::PurgeDead]).expect("purge");
    assert_eq!(applied.purged, 1);
    assert_eq!(spool.quarantined_count().expect("count"), 0);
}

#[test]
fn a_dead_letter_revives_once_however_often_it_is_replayed() {
    let spool = Spool::in_memory().expect("spool");
    let d = delivery("w", "a", 1);
    let letter = DeadLetter {
        delivery: d.clone(),
        reason: "HTTP 404".into(),
        at: "now".into(),
    };
    spool
        .apply(&[
            put(&d),
            Write::Dead {
                webhook: "w".into(),
                seq: 1,
                id: d.id.clone(),
                bytes: serde_json::to_vec(&letter).expect("json"),
            },
        ])
        .expect("commit");
    let revive = |seq: u64| Write::Revive {
        id: d.id.clone(),
        webhook: "w".into(),
        seq,
        bytes: serde_json::to_vec(&d).expect("json"),
    };
    // Two replays that both read the dead letter before either wrote.
    let applied = spool.apply(&[revive(7), revive(8)]).expect("commit");
    assert_eq!(applied.revives_skipped, 1);
    let page = spool.page("w", 0, u64::MAX, 10).expect("page");
    assert_eq!(page.deliveries.len(), 1, "revived once");
    assert_eq!(page.deliveries[0].seq, 7);
    assert_eq!(
        spool.apply(&[revive(9)]).expect("commit").revives_skipped,
        1
    );
    assert_eq!(spool.pending_count().expect("count"), 1);
}

/// What compaction costs, for the README: `CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo test --lib
/// compaction_cost -- --ignored --nocapture`. Rows of ~600 bytes (a typical delivery); half
/// of them removed before the compaction, the other half still pending.
#[test]
#[ignore = "a measurement, not a test"]
fn compaction_cost() {
    for rows in [1_000u64, 10_000, 100_000] {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::open(dir.path()).expect("open");
        let path = dir.path().join(SPOOL_FILE);
        let mut d = delivery("w", "u", 1);
        d.event
            .user
            .insert("Email".into(), "someone@example.com".into());
        d.event.user.insert("Name".into(), "x".repeat(300));
        let writes: Vec<Write> = (1..=rows)
            .map(|seq| {
                d.seq = seq;
                put(&d)
            })
            .collect();
        for chunk in writes.chunks(10_000) {
            spool.apply(chunk).expect("commit");
        }
        let removes: Vec<Write> = (1..=rows)
            .filter(|s| s % 2 == 0)
            .map(|seq| Write::Remove {
                webhook: "w".into(),
                seq,
            })
            .collect();
        for chunk in removes.chunks(10_000) {
            spool.apply(chunk).expect("commit");
        }
        let before = std::fs::metadata(&path).expect("meta").len();
        let started = std::time::Instant::now();
        spool.compact().expect("compact");
        let took = started.elapsed();
        let after = std::fs::metadata(&path).expect("meta").len();
        // A commit right after: what a waiting delivery pays at most.
        let started = std::time::Instant::now();
        spool
            .apply(&[put(&delivery("w", "y", rows + 1))])
            .expect("commit");
        eprintln!(
            "{rows} rows, {} removed: compaction {took:?}, file {:.1} -> {:.1} MiB, next commit {:?}",
            rows / 2,
            before as f64 / 1048576.0,
            after as f64 / 1048576.0,
            started.elapsed()
        );
    }
}
