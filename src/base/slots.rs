//! A counting semaphore: how many datasets back up at once in the whole
//! process, across all sources.
//!
//! `queue_config.concurrency` means restic backups at once on this host,
//! not sources: a source with 200 datasets must be able to use every slot,
//! and several sources together must not exceed them. So each process
//! (`tabacco run`, the agent) holds one [`Slots`], and each dataset takes a
//! slot for as long as it runs, hooks included. Nothing else takes one, and
//! no thread takes a second slot while it holds one, so waiting for a slot
//! cannot deadlock.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How often a waiter asks whether to give up (see [`Slots::acquire`]).
const POLL: Duration = Duration::from_millis(100);

/// A number of slots, each held by one running dataset.
pub struct Slots {
    state: Mutex<State>,
    freed: Condvar,
}

struct State {
    used: usize,
    size: usize,
}

/// A slot held until dropped.
pub struct Slot<'a> {
    slots: &'a Slots,
}

impl Slots {
    /// `size` slots, all free.
    pub fn new(size: usize) -> Slots {
        Slots {
            state: Mutex::new(State { used: 0, size }),
            freed: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the number of slots (the agent's reload). More take effect at
    /// once; with fewer, held slots stay held and new ones wait.
    pub fn resize(&self, size: usize) {
        self.state().size = size;
        self.freed.notify_all();
    }

    /// Waits for a free slot and takes it. `give_up` is asked first and then
    /// every [`POLL`] while waiting (with the slots locked: it must be quick
    /// and touch no slot); its error is returned if it fails first, so that
    /// a stopped job does not wait for a slot only to do nothing with it.
    pub fn acquire<E>(&self, mut give_up: impl FnMut() -> Result<(), E>) -> Result<Slot<'_>, E> {
        let mut state = self.state();
        loop {
            give_up()?;
            if state.used < state.size {
                state.used += 1;
                return Ok(Slot { slots: self });
            }
            state = self
                .freed
                .wait_timeout(state, POLL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.slots.state().used -= 1;
        // All waiters: the one woken might be about to give up.
        self.slots.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread;
    use std::time::Instant;

    fn wait(slots: &Slots) -> Slot<'_> {
        slots.acquire(|| Ok::<(), ()>(())).expect("never gives up")
    }

    #[test]
    fn never_more_holders_than_slots() {
        let slots = Slots::new(2);
        let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    let _slot = wait(&slots);
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(slots.state().used, 0, "every slot was given back");
    }

    #[test]
    fn a_waiter_gives_up_and_resizing_frees_waiters() {
        let slots = Slots::new(1);
        let held = wait(&slots);
        thread::scope(|scope| {
            // Freed after 2 s: a waiter that never asked would get it then.
            scope.spawn(|| {
                thread::sleep(Duration::from_secs(2));
                drop(held);
            });
            let mut asked = 0;
            let refused = slots.acquire(|| {
                asked += 1;
                if asked < 3 {
                    Ok(())
                } else {
                    Err("stopped")
                }
            });
            assert_eq!(refused.err(), Some("stopped"), "it gave up while waiting");
        });

        let held = wait(&slots);
        // A waiter that gives up after 5 s, so that a failure cannot hang.
        let deadline = Instant::now() + Duration::from_secs(5);
        let late = || {
            if Instant::now() < deadline {
                Ok(())
            } else {
                Err("late")
            }
        };
        thread::scope(|scope| {
            let waiter = scope.spawn(|| slots.acquire(late).map(drop));
            thread::sleep(Duration::from_millis(50));
            assert!(!waiter.is_finished(), "no slot is free");
            slots.resize(2);
            let got = waiter.join().expect("no panic");
            assert_eq!(got, Ok(()), "the waiter took the new slot");
        });
        drop(held);
        assert_eq!(slots.state().used, 0);
    }
}
