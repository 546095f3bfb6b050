//! The wall clock as the event path counts it: Unix milliseconds (creation and due times,
//! records). One small file so every part of `events` can read the clock without importing
//! the part that schedules. It only reads the clock: it never sleeps or schedules.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix milliseconds now: what deliveries and records are stamped with (0 if the clock is
/// set before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
