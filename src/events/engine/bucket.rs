//! A webhook's send budget: a token bucket whose tokens each come back one full window after
//! they were spent (a sliding-window bucket). Unlike a bucket refilled at a steady `N/window`
//! (which lets `2N` through in a window after a full burst), this never sends more than `N` in
//! any window: what a robot that counts "20 a minute" enforces. Several limits (`5/s,
//! 100/min`) must all allow a send. Pure: the caller passes the clock in milliseconds.

use std::collections::VecDeque;
use std::time::Duration;

use crate::webhook::Rate;

/// Extra wait before a token comes back: network jitter must never land a message in the
/// robot's previous window. A twentieth of the window, at most one second.
fn slack(window: Duration) -> u64 {
    let w = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
    (w / 20).min(1000)
}

/// How long after a send its token comes back: the window and the slack.
fn span(window: Duration) -> u64 {
    u64::try_from(window.as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(slack(window))
}

/// Send times within the longest window, oldest first.
#[derive(Debug, Default, Clone)]
pub(super) struct Bucket {
    sent: VecDeque<u64>,
}

impl Bucket {
    /// Sends `rate` allows now (`u32::MAX` without a rate).
    pub(super) fn available(&mut self, rate: Option<&Rate>, now: u64) -> u32 {
        let Some(rate) = rate else {
            return u32::MAX;
        };
        self.forget_old(rate, now);
        rate.limits
            .iter()
            .map(|l| {
                let recent = self.recent(span(l.window), now);
                l.count
                    .saturating_sub(u32::try_from(recent).unwrap_or(u32::MAX))
            })
            .min()
            .unwrap_or(u32::MAX)
    }

    /// Spends one token at `now`.
    pub(super) fn take(&mut self, rate: Option<&Rate>, now: u64) {
        if rate.is_some() {
            self.sent.push_back(now);
        }
    }

    /// The earliest time a token is free again (`now` when one is free already).
    pub(super) fn next_free(&mut self, rate: Option<&Rate>, now: u64) -> u64 {
        let Some(rate) = rate else { return now };
        if self.available(Some(rate), now) > 0 {
            return now;
        }
        rate.limits
            .iter()
            .filter_map(|l| {
                if self.recent(span(l.window), now) < l.count as usize {
                    return None;
                }
                // The send whose return frees a token of this limit.
                let idx = self.sent.len() - l.count as usize;
                self.sent
                    .get(idx)
                    .map(|t| t.saturating_add(span(l.window)) + 1)
            })
            .max()
            .unwrap_or(now)
    }

    /// Drops send times older than the longest window (they no longer count).
    fn forget_old(&mut self, rate: &Rate, now: u64) {
        let longest = rate
            .limits
            .iter()
            .map(|l| span(l.window))
            .max()
            .unwrap_or(0);
        while self
            .sent
            .front()
            .is_some_and(|t| t.saturating_add(longest) <= now)
        {
            self.sent.pop_front();
        }
    }

    /// Sends that still count at `now` for a limit whose tokens come back after `span` ms.
    fn recent(&self, span: u64, now: u64) -> usize {
        self.sent.len() - self.sent.partition_point(|t| t.saturating_add(span) <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::pace::parse_rate;

    /// Sends as soon as the bucket allows, for `span` ms; returns the send times.
    fn greedy(rate: &Rate, span: u64) -> Vec<u64> {
        let mut b = Bucket::default();
        let mut sent = Vec::new();
        let mut now = 0;
        while now < span {
            if b.available(Some(rate), now) > 0 {
                b.take(Some(rate), now);
                sent.push(now);
            } else {
                let next = b.next_free(Some(rate), now);
                assert!(next > now, "next_free must move on");
                now = next;
            }
        }
        sent
    }

    #[test]
    fn never_more_than_n_in_any_window() {
        let rate = parse_rate("20/min").expect("rate");
        let sent = greedy(&rate, 10 * 60_000);
        for (i, t) in sent.iter().enumerate() {
            let in_window = sent[i..].iter().take_while(|s| **s < t + 60_000).count();
            assert!(in_window <= 20, "{in_window} sends in the minute from {t}");
        }
        // The budget is used: a burst of 20, then 20 a (slightly padded) minute.
        assert_eq!(&sent[..20], &[0; 20]);
        assert_eq!(sent[20], 60_000 + 1000 + 1);
        assert!(sent.len() >= 180, "{}", sent.len());
    }

    #[test]
    fn several_limits_all_hold() {
        let rate = parse_rate("5/s, 100/min").expect("rate");
        let sent = greedy(&rate, 3 * 60_000);
        for (i, t) in sent.iter().enumerate() {
            let per_s = sent[i..].iter().take_while(|s| **s < t + 1000).count();
            let per_min = sent[i..].iter().take_while(|s| **s < t + 60_000).count();
            assert!(
                per_s <= 5 && per_min <= 100,
                "{per_s}/s {per_min}/min at {t}"
            );
        }
        assert!(sent.len() >= 200, "{}", sent.len());
    }

    #[test]
    fn no_rate_is_unlimited_and_tokens_come_back() {
        let mut b = Bucket::default();
        assert_eq!(b.available(None, 5), u32::MAX);
        b.take(None, 5);
        assert_eq!(b.next_free(None, 5), 5);
        let rate = parse_rate("2/10s").expect("rate");
        assert_eq!(b.available(Some(&rate), 0), 2);
        b.take(Some(&rate), 0);
        b.take(Some(&rate), 100);
        assert_eq!(b.available(Some(&rate), 200), 0);
        assert_eq!(b.next_free(Some(&rate), 200), 10_000 + 500 + 1);
        assert_eq!(b.available(Some(&rate), 10_501), 1);
        assert_eq!(b.available(Some(&rate), 10_601), 2);
        assert!(b.sent.is_empty(), "old sends are forgotten");
    }
}
