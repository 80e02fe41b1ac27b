//! The per-person rate limiter in memory, for the one process that every limited action passes
//! through (`mathia-local`): the same sliding-window log as the Redis script
//! (`adapters::redis`, `RATE_LIMIT_LUA`), without a round trip per message. Where several
//! processes count one person's actions (the Lambda functions), the log stays in Redis.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
    time::Duration,
};

use crate::adapters::redis::RateDecision;

/// Every this many checks, the logs of people who did nothing for a whole window are dropped.
const SWEEP_EVERY: u64 = 4096;

/// One subject's accepted events: how many at each millisecond, and in all.
#[derive(Default)]
struct Log {
    at: BTreeMap<i64, u32>,
    total: u64,
}

impl Log {
    /// Forgets events at or before `cutoff` (the script's `ZREMRANGEBYSCORE -inf cutoff`).
    fn expire(&mut self, cutoff: i64) {
        while let Some(oldest) = self.at.first_entry() {
            if *oldest.key() > cutoff {
                break;
            }
            self.total -= u64::from(oldest.remove());
        }
    }
}

#[derive(Default)]
struct State {
    logs: HashMap<String, Log>,
    checks: u64,
}

#[derive(Default)]
pub struct RateWindows {
    state: Mutex<State>,
}

impl RateWindows {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one event for `subject` at `now_ms` against `limit` per `window`; a refused event
    /// is not counted. Answers as the Redis script does: when refused, the milliseconds until
    /// the oldest counted event leaves the window (at least 1).
    pub fn check(&self, subject: &str, now_ms: i64, window: Duration, limit: u32) -> RateDecision {
        let window_ms = window.as_millis() as i64;
        let cutoff = now_ms - window_ms;
        // A plain map, consistent after every statement: a panic elsewhere leaves it whole.
        let mut s = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        s.checks += 1;
        if s.checks.is_multiple_of(SWEEP_EVERY) {
            s.logs.retain(|_, log| log.at.last_key_value().is_some_and(|(t, _)| *t > cutoff));
        }
        let log = match s.logs.get_mut(subject) {
            Some(log) => log,
            None => s.logs.entry(subject.to_owned()).or_default(),
        };
        log.expire(cutoff);
        if log.total >= u64::from(limit) {
            let oldest = log.at.first_key_value().map_or(now_ms, |(t, _)| *t);
            return RateDecision::Limited { retry_after_ms: (oldest + window_ms - now_ms).max(1) as u64 };
        }
        *log.at.entry(now_ms).or_default() += 1;
        log.total += 1;
        RateDecision::Allowed
    }

    #[cfg(test)]
    fn subjects(&self) -> usize {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).logs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn allows_the_limit_in_a_sliding_window_then_says_when_to_retry() {
        let w = RateWindows::new();
        let t0 = 1_000_000;
        for i in 0..3 {
            assert_eq!(w.check("msg:ana", t0 + i * 1000, MINUTE, 3), RateDecision::Allowed);
        }
        // The oldest (t0) leaves the window at t0 + 60 s.
        assert_eq!(w.check("msg:ana", t0 + 10_000, MINUTE, 3), RateDecision::Limited { retry_after_ms: 50_000 });
        // A refused event is not counted: the next one is free the moment t0 leaves.
        assert_eq!(w.check("msg:ana", t0 + 59_999, MINUTE, 3), RateDecision::Limited { retry_after_ms: 1 });
        assert_eq!(w.check("msg:ana", t0 + 60_000, MINUTE, 3), RateDecision::Allowed);
        assert_eq!(w.check("msg:ana", t0 + 60_001, MINUTE, 3), RateDecision::Limited { retry_after_ms: 999 });
        // Someone else, and another kind of action, count apart.
        assert_eq!(w.check("msg:ben", t0 + 10_000, MINUTE, 3), RateDecision::Allowed);
        assert_eq!(w.check("pin:ana", t0 + 10_000, MINUTE, 3), RateDecision::Allowed);
    }

    #[test]
    fn events_in_the_same_millisecond_each_count() {
        let w = RateWindows::new();
        assert_eq!(w.check("msg:ana", 5, MINUTE, 2), RateDecision::Allowed);
        assert_eq!(w.check("msg:ana", 5, MINUTE, 2), RateDecision::Allowed);
        assert_eq!(w.check("msg:ana", 5, MINUTE, 2), RateDecision::Limited { retry_after_ms: 60_000 });
        assert_eq!(w.check("msg:ana", 60_005, MINUTE, 2), RateDecision::Allowed);
        assert_eq!(w.check("msg:ana", 60_005, MINUTE, 2), RateDecision::Allowed);
    }

    #[test]
    fn a_clock_set_back_still_counts_every_event_in_the_window() {
        // Tests move the clock; an event stamped earlier than the last one is counted all the same.
        let w = RateWindows::new();
        assert_eq!(w.check("msg:ana", 50_000, MINUTE, 2), RateDecision::Allowed);
        assert_eq!(w.check("msg:ana", 40_000, MINUTE, 2), RateDecision::Allowed);
        assert_eq!(w.check("msg:ana", 41_000, MINUTE, 2), RateDecision::Limited { retry_after_ms: 59_000 });
    }

    #[test]
    fn logs_of_people_gone_quiet_are_dropped() {
        let w = RateWindows::new();
        for i in 0..100 {
            w.check(&format!("msg:{i}"), 0, MINUTE, 10);
        }
        assert_eq!(w.subjects(), 100);
        // A whole window later, enough checks by one person sweep the others away.
        for i in 0..SWEEP_EVERY as i64 {
            w.check("msg:busy", 60_001 + i * 20, MINUTE, u32::MAX);
        }
        assert_eq!(w.subjects(), 1);
    }
}
