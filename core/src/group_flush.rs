//! Group flush: writers append to a file without flushing it, each taking a ticket, then wait
//! until one flush that started after their write has covered it. Concurrent writers share one
//! `fdatasync` instead of taking one each, and none of them returns before its write is on
//! disk.
//!
//! The node's audit log makes its answers' entries durable this way (its SQLite WAL is the
//! file), and the coordinator its receipt book. A file is written in order, so a flush covers
//! every write made before it started; tickets must therefore be taken in the order of the
//! writes (take one under the lock that orders them, right after the write).

use std::sync::{Condvar, Mutex, MutexGuard};

/// The tickets written and made durable so far, and whether a flush is running.
#[derive(Debug, Default)]
pub struct GroupFlush {
    state: Mutex<State>,
    flushed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Writes noted so far (their tickets are 1, 2, …).
    written: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    /// A flush is running.
    flushing: bool,
    /// Flushes done (a figure for tests and benchmarks).
    flushes: u64,
}

impl GroupFlush {
    /// Nothing written yet.
    pub fn new() -> GroupFlush {
        GroupFlush::default()
    }

    // A poisoned lock still holds consistent counters: each update is one assignment.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes one more write, made just before; returns its ticket.
    pub fn written(&self) -> u64 {
        let mut st = self.lock();
        st.written += 1;
        st.written
    }

    /// Flushes done so far.
    pub fn flushes(&self) -> u64 {
        self.lock().flushes
    }

    /// Whether some write noted so far is not yet known to be durable.
    pub fn pending(&self) -> bool {
        let st = self.lock();
        st.durable < st.written
    }

    /// Returns once `ticket` is durable: at once when an earlier flush covered it; else after
    /// the running flush and, when that one started before the ticket was written, after the
    /// next. When no flush is running this caller runs `flush` itself (at most once), for every
    /// write noted so far. A failed flush makes nothing durable: its caller gets the error, and
    /// the others waiting try again.
    pub fn wait<E>(&self, ticket: u64, flush: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        let mut st = self.lock();
        loop {
            if st.durable >= ticket {
                return Ok(());
            }
            if !st.flushing {
                break;
            }
            st = self.flushed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.flushing = true;
        let target = st.written;
        drop(st);
        let flushed = flush();
        let mut st = self.lock();
        st.flushing = false;
        st.flushes += 1;
        if flushed.is_ok() {
            // `target` ≥ `ticket`: the ticket was noted before this call.
            st.durable = st.durable.max(target);
        }
        self.flushed.notify_all();
        flushed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn one_flush_covers_every_write_before_it() {
        let group = GroupFlush::new();
        let tickets: Vec<u64> = (0..10).map(|_| group.written()).collect();
        let mut runs = 0;
        for t in tickets {
            group
                .wait(t, || {
                    runs += 1;
                    Ok::<(), ()>(())
                })
                .unwrap();
        }
        assert_eq!((runs, group.flushes()), (1, 1), "ten writes, one flush");
        assert!(!group.pending());
        let later = group.written();
        assert!(group.pending());
        group.wait(later, || Ok::<(), ()>(())).unwrap();
        assert_eq!(group.flushes(), 2, "a write after the flush needs its own");
    }

    #[test]
    fn a_failed_flush_makes_nothing_durable() {
        let group = GroupFlush::new();
        let t = group.written();
        assert_eq!(group.wait(t, || Err("disk gone")), Err("disk gone"));
        let mut ran = false;
        group
            .wait(t, || {
                ran = true;
                Ok::<(), &str>(())
            })
            .unwrap();
        assert!(ran, "the ticket was not durable after the failure");
    }

    /// Threads writing and waiting at once: each returns only once a flush that started after
    /// its write has ended, and they share flushes.
    #[test]
    fn no_waiter_returns_before_a_flush_that_covers_it() {
        let group = Arc::new(GroupFlush::new());
        // What the "disk" holds: the highest write number a finished flush started after.
        let written = Arc::new(Mutex::new(0u64));
        let on_disk = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (group, written, on_disk) = (group.clone(), written.clone(), on_disk.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let (mine, ticket) = {
                            let mut w = written.lock().unwrap();
                            *w += 1;
                            (*w, group.written())
                        };
                        group
                            .wait(ticket, || {
                                let upto = *written.lock().unwrap();
                                std::thread::sleep(std::time::Duration::from_micros(200));
                                on_disk.fetch_max(upto, Ordering::SeqCst);
                                Ok::<(), ()>(())
                            })
                            .unwrap();
                        assert!(on_disk.load(Ordering::SeqCst) >= mine, "returned unflushed");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let flushes = group.flushes();
        assert!((1..400).contains(&flushes), "400 writes, {flushes} flushes");
    }
}
