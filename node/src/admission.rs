//! Admission of calls (issue 15, item 3): at most `max_concurrent_requests` are worked on at
//! once; a call past them waits for a slot only while it can still be answered before its own
//! deadline and only while fewer than `max_queued_requests` wait. Any other call is refused at
//! once (`BUSY`), before anything is spent: excess work is refused early, never queued past its
//! deadline.
//!
//! "Can still be answered" uses the mean time a slot has been held (exponentially weighted over
//! the calls so far): a call that would reach a slot too late to be worked on before its
//! deadline is refused on arrival, and one that waits gives up when only that mean time is left.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The held time assumed before any call has finished.
const FIRST_GUESS: Duration = Duration::from_millis(5);

/// The slots and the queue in front of them.
#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    size: usize,
    waiting: AtomicUsize,
    max_waiting: usize,
    /// Mean time a slot is held, in µs (each finished call moves it by 1/8 of the difference).
    held_us: AtomicU64,
}

/// A slot being worked in; dropping it frees the slot and records how long it was held.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    since: Instant,
    admission: Arc<Admission>,
}

/// Why a call was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max_queued_requests` calls wait already.
    QueueFull,
    /// The call would reach a slot too late to be answered before its deadline.
    TooLate,
}

/// Decrements the waiting count when a waiting call leaves, however it leaves.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    /// `slots` calls worked on at once (at least one), at most `max_waiting` waiting.
    pub fn new(slots: usize, max_waiting: usize) -> Arc<Admission> {
        let size = slots.max(1);
        Arc::new(Admission {
            slots: Arc::new(Semaphore::new(size)),
            size,
            waiting: AtomicUsize::new(0),
            max_waiting,
            held_us: AtomicU64::new(FIRST_GUESS.as_micros() as u64),
        })
    }

    /// A slot for a call due by `deadline`: at once when one is free, else after waiting while
    /// the call can still be answered in time, else `Err` at once.
    pub async fn enter(self: &Arc<Self>, deadline: Instant) -> Result<Slot, Refused> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(self.slot(permit));
        }
        let ahead = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.waiting);
        if ahead >= self.max_waiting {
            return Err(Refused::QueueFull);
        }
        let held = self.mean_held();
        // The calls ahead are served `size` at a time: this one starts after that many rounds.
        let rounds = u32::try_from(ahead / self.size + 1).unwrap_or(u32::MAX);
        let Some(latest_start) = deadline.checked_sub(held) else {
            return Err(Refused::TooLate);
        };
        let now = Instant::now();
        if now + held.saturating_mul(rounds) > latest_start {
            return Err(Refused::TooLate);
        }
        let acquired =
            tokio::time::timeout_at(latest_start, self.slots.clone().acquire_owned()).await;
        match acquired {
            Ok(Ok(permit)) => Ok(self.slot(permit)),
            // Timed out, or the semaphore was closed (it never is).
            _ => Err(Refused::TooLate),
        }
    }

    /// Calls waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// The mean time a slot has been held.
    pub fn mean_held(&self) -> Duration {
        Duration::from_micros(self.held_us.load(Ordering::Relaxed))
    }

    fn slot(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Slot {
        Slot {
            _permit: permit,
            since: Instant::now(),
            admission: self.clone(),
        }
    }

    fn record(&self, held: Duration) {
        let sample = u64::try_from(held.as_micros()).unwrap_or(u64::MAX);
        // A lost update between two racing calls only skips one sample.
        let mean = self.held_us.load(Ordering::Relaxed);
        let next = if sample >= mean {
            mean + (sample - mean) / 8
        } else {
            mean - (mean - sample) / 8
        };
        self.held_us.store(next.max(1), Ordering::Relaxed);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.admission.record(self.since.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    }

    #[test]
    fn a_free_slot_is_taken_at_once_and_a_full_queue_refuses() {
        runtime().block_on(async {
            let a = Admission::new(1, 1);
            let far = Instant::now() + Duration::from_secs(3600);
            let first = a.enter(far).await.unwrap();
            // One may wait; the next is refused without waiting.
            let a2 = a.clone();
            let waiter = tokio::spawn(async move { a2.enter(far).await.map(drop) });
            tokio::task::yield_now().await;
            assert_eq!(a.waiting(), 1);
            assert_eq!(a.enter(far).await.map(drop), Err(Refused::QueueFull));
            drop(first);
            assert_eq!(waiter.await.unwrap(), Ok(()));
            assert_eq!(a.waiting(), 0);
        });
    }

    #[test]
    fn a_call_that_would_start_too_late_is_refused_on_arrival() {
        runtime().block_on(async {
            let a = Admission::new(1, 100);
            let _busy = a
                .enter(Instant::now() + Duration::from_secs(60))
                .await
                .unwrap();
            // The mean held time is 5 ms before any call finished: a deadline 4 ms away cannot
            // be met, and the refusal comes without waiting.
            let t = Instant::now();
            let late = a.enter(Instant::now() + Duration::from_millis(4)).await;
            assert_eq!(late.map(drop), Err(Refused::TooLate));
            assert_eq!(t.elapsed(), Duration::ZERO);
        });
    }

    #[test]
    fn a_waiting_call_gives_up_before_its_deadline_never_after() {
        runtime().block_on(async {
            let a = Admission::new(1, 100);
            let busy = a
                .enter(Instant::now() + Duration::from_secs(60))
                .await
                .unwrap();
            let deadline = Instant::now() + Duration::from_millis(50);
            let t = Instant::now();
            let waited = a.enter(deadline).await;
            assert_eq!(waited.map(drop), Err(Refused::TooLate));
            // It left when only the mean held time was left before its deadline.
            assert_eq!(t.elapsed(), Duration::from_millis(45));
            drop(busy);
        });
    }

    #[test]
    fn the_mean_held_time_follows_the_calls() {
        runtime().block_on(async {
            let a = Admission::new(2, 0);
            for _ in 0..64 {
                let s = a
                    .enter(Instant::now() + Duration::from_secs(1))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
                drop(s);
            }
            let mean = a.mean_held();
            assert!(
                mean >= Duration::from_micros(900) && mean <= Duration::from_micros(1100),
                "{mean:?}"
            );
        });
    }
}
