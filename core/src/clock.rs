//! The one way the code reads the time of day: a [`Clock`] passed in, never `SystemTime::now()`
//! in the middle of a rule.
//!
//! Production code holds a [`SystemClock`]; tests of time-dependent rules (freshness windows,
//! daily budgets, quarters, certificate expiry, session expiry) hold a [`ManualClock`] and move
//! it by hand, as Janus's `MockClock` does. Elapsed-time measurements (`Instant`) are not the
//! time of day and do not go through a clock.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time, in milliseconds since the Unix epoch (UTC).
pub trait Clock: fmt::Debug + Send + Sync {
    /// Now, in milliseconds since 1970-01-01T00:00:00Z.
    fn now_ms(&self) -> i64;

    /// Now, in whole seconds since the Unix epoch.
    fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to. Clones share the same time, so a test can hold one
/// and advance the clock of the code under test.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock standing at `at_ms` (milliseconds since the Unix epoch).
    pub fn new(at_ms: i64) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(at_ms)))
    }

    /// Sets the time.
    pub fn set(&self, at_ms: i64) {
        self.0.store(at_ms, Ordering::SeqCst);
    }

    /// Moves the time forward by `by` (saturating).
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(by))
            });
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_ms(&self) -> i64 {
        (**self).now_ms()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now_ms(&self) -> i64 {
        (**self).now_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = ManualClock::new(1_700_000_000_000);
        let shared = clock.clone();
        assert_eq!(shared.now_ms(), 1_700_000_000_000);
        clock.advance(Duration::from_secs(90));
        assert_eq!(shared.now_ms(), 1_700_000_090_000);
        assert_eq!(shared.now_secs(), 1_700_000_090);
        clock.set(-1);
        assert_eq!(shared.now_secs(), -1);
        clock.set(i64::MAX - 1);
        clock.advance(Duration::from_secs(1));
        assert_eq!(shared.now_ms(), i64::MAX);
    }

    #[test]
    fn the_system_clock_is_after_2024() {
        assert!(SystemClock.now_ms() > 1_704_067_200_000);
    }
}
