//! How long to wait before the next attempt: exponential backoff with full jitter, and the
//! ceiling on a receiver's `Retry-After` wish.
//!
//! Part of a compiled webhook (its `retry:` settings), kept apart from the decision whether
//! to retry at all (`events::retry`). Pure arithmetic: never sleeps, never fails.

use std::time::Duration;

/// Longest `Retry-After` honoured: a target asking for more (or a broken header) must not
/// park a user's deliveries for days.
pub const RETRY_AFTER_CEILING: Duration = Duration::from_secs(3600);

/// Exponential backoff with full jitter: after the n-th failed attempt, wait a uniformly
/// random time in `[0, min(max, initial * 2^(n-1))]`. Full jitter spreads retries of many
/// deliveries that failed together, so a recovering target is not hit by a thundering herd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
}

impl Backoff {
    /// A schedule from `initial` doubling up to `max` (an `initial` above `max` is lowered).
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial: initial.min(max),
            max,
        }
    }

    /// The upper bound of the wait after `failures` failed attempts (1 for the first).
    pub fn ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(63);
        let factor = 1u64 << doublings;
        let nanos = self.initial.as_nanos().saturating_mul(u128::from(factor));
        let max = self.max.as_nanos();
        Duration::from_nanos(u64::try_from(nanos.min(max)).unwrap_or(u64::MAX))
    }

    /// The wait before the next attempt, jittered with a fresh random number.
    pub fn delay(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        self.delay_with(failures, retry_after, fastrand::f64())
    }

    /// [`Backoff::delay`] with the random number given (`unit` in `[0, 1)`), for tests.
    /// A `Retry-After` is a floor: never retry sooner than the target asked, up to
    /// [`RETRY_AFTER_CEILING`].
    pub fn delay_with(&self, failures: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        let jittered = self.ceiling(failures).mul_f64(unit.clamp(0.0, 1.0));
        match retry_after {
            Some(wish) => jittered.max(wish.min(RETRY_AFTER_CEILING)),
            None => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn ceiling_doubles_up_to_max() {
        let b = Backoff::new(10 * MS, 100 * MS);
        let ceilings: Vec<_> = (1..=6).map(|n| b.ceiling(n)).collect();
        assert_eq!(
            ceilings,
            [10 * MS, 20 * MS, 40 * MS, 80 * MS, 100 * MS, 100 * MS]
        );
        assert_eq!(b.ceiling(0), 10 * MS);
        assert_eq!(b.ceiling(u32::MAX), 100 * MS, "no overflow");
        let huge = Backoff::new(Duration::from_secs(1), Duration::MAX);
        assert_eq!(huge.ceiling(200), Duration::from_nanos(u64::MAX));
        let inverted = Backoff::new(Duration::from_secs(5), Duration::from_secs(1));
        assert_eq!(inverted.ceiling(1), Duration::from_secs(1));
    }

    #[test]
    fn full_jitter_stays_within_bounds() {
        let b = Backoff::new(10 * MS, 50 * MS);
        assert_eq!(b.delay_with(3, None, 0.0), Duration::ZERO);
        assert_eq!(b.delay_with(3, None, 0.5), 20 * MS);
        assert_eq!(b.delay_with(3, None, 2.0), 40 * MS, "unit is clamped");
        for n in 1..20 {
            for _ in 0..50 {
                let d = b.delay(n, None);
                assert!(d <= b.ceiling(n), "{d:?} > {:?}", b.ceiling(n));
            }
        }
    }

    #[test]
    fn retry_after_is_a_floor_with_a_ceiling() {
        let b = Backoff::new(10 * MS, 50 * MS);
        let second = Duration::from_secs(1);
        assert_eq!(b.delay_with(1, Some(second), 0.9), second);
        assert_eq!(b.delay_with(1, Some(Duration::ZERO), 0.5), 5 * MS);
        assert_eq!(
            b.delay_with(1, Some(Duration::from_secs(86_400)), 0.5),
            RETRY_AFTER_CEILING
        );
        let slow = Backoff::new(Duration::from_secs(10), Duration::from_secs(60));
        assert_eq!(
            slow.delay_with(1, Some(second), 0.5),
            Duration::from_secs(5),
            "our own backoff wins when it is longer"
        );
    }
}
