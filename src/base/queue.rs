//! Work shared out from one queue to a few threads: the bounded worker loop
//! of `run` (sources), of a backup job (its datasets), of `restore` (its
//! datasets) and of the agent's worker pool (due jobs). A thread takes the
//! next item as soon as it is free, so a slow item holds up only its own
//! thread. How many datasets back up at once in the whole process is
//! [`crate::base::slots`]' business, not this module's.

use std::sync::{Mutex, PoisonError};
use std::thread;

/// One worker's loop: hands the items of `queue` to `work` one at a time
/// until the queue runs dry. Several threads may drain one queue; the lock
/// is held only to take an item, not while working on it.
pub fn drain<I: Iterator>(queue: &Mutex<I>, mut work: impl FnMut(I::Item)) {
    loop {
        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
        let Some(item) = next else { return };
        work(item);
    }
}

/// `work` done on every item, on up to `workers` threads at once (at least
/// one); the results come back in the items' order, whatever order they
/// were finished in.
pub fn map<T, R>(
    workers: usize,
    items: impl IntoIterator<Item = T>,
    work: impl Fn(T) -> R + Sync,
) -> Vec<R>
where
    T: Send,
    R: Send,
{
    let items: Vec<T> = items.into_iter().collect();
    let workers = workers.clamp(1, items.len().max(1));
    let queue = Mutex::new(items.into_iter().enumerate());
    let done = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                drain(&queue, |(index, item)| {
                    let result = work(item);
                    let mut done = done.lock().unwrap_or_else(PoisonError::into_inner);
                    done.push((index, result));
                })
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(PoisonError::into_inner);
    done.sort_by_key(|&(index, _)| index);
    done.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn results_in_order_and_never_more_threads_than_asked() {
        let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let results = map(3, 0..12u64, |i| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            // The first items take longest: they finish last.
            thread::sleep(Duration::from_millis(40 - 3 * i));
            running.fetch_sub(1, Ordering::SeqCst);
            i * 10
        });
        assert_eq!(results, (0..12).map(|i| i * 10).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn no_workers_still_works_and_no_items_starts_nothing() {
        assert_eq!(map(0, [1, 2], |i| i + 1), [2, 3]);
        assert_eq!(map(4, Vec::<u8>::new(), |i| i), Vec::<u8>::new());
    }

    #[test]
    fn threads_share_one_queue() {
        let queue = Mutex::new(0..100);
        let taken = AtomicUsize::new(0);
        thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    drain(&queue, |_| {
                        taken.fetch_add(1, Ordering::SeqCst);
                    })
                });
            }
        });
        assert_eq!(taken.load(Ordering::SeqCst), 100, "each item taken once");
    }
}
