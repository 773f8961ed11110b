//! The server's one writing connection, on a thread of its own, with group
//! commit: the writes that queue up while a commit is syncing run next in one
//! transaction and are synced together, each answered only once its group
//! is on disk. With `synchronous=FULL` every acknowledged write is durable,
//! at one sync per group rather than per request.
//!
//! What a write does is the caller's closure; how it is grouped, committed
//! and answered is this module's.

use crate::metadb::store::Store;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;

/// The most writes committed together: a bound on how long one sync makes
/// the first of them wait.
const MAX_GROUP: usize = 256;

/// Why a write was not done, or not made durable.
#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// The writer has stopped (the server is shutting down).
    Stopped,
    /// The write panicked; it was rolled back.
    Panicked,
    /// The group's commit failed; nothing of it was kept.
    Commit(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Error::Stopped => f.write_str("the metadb is stopping"),
            Error::Panicked => f.write_str("internal error (panic) while writing"),
            Error::Commit(e) => write!(f, "cannot commit: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// A write to run: it returns what tells its caller, once committed.
type Job = Box<dyn FnOnce(&mut Store) -> Deliver + Send>;
/// Tells a write's caller the group's outcome.
type Deliver = Box<dyn FnOnce(Result<(), Error>) + Send>;

/// The writing thread and the way to hand it writes.
pub struct Writer {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the thread that writes with `store`.
    pub fn start(store: Store) -> std::io::Result<Writer> {
        let (jobs, queue) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("metadb-writer".into())
            .spawn(move || write_loop(store, &queue))?;
        Ok(Writer {
            jobs: Mutex::new(Some(jobs)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs `f` on the writing connection, in a group with the writes
    /// queued beside it; returns what `f` returned once the group is
    /// committed.
    pub fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let (answer, answered) = mpsc::channel();
        let job: Job = Box::new(move |store| {
            let out = catch_unwind(AssertUnwindSafe(|| f(store)));
            Box::new(move |committed| {
                let _ = answer.send(committed.and(out.map_err(|_| Error::Panicked)));
            })
        });
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|jobs| jobs.send(job));
        match sent {
            Some(Ok(())) => answered.recv().unwrap_or(Err(Error::Panicked)),
            _ => Err(Error::Stopped),
        }
    }

    /// Finishes the writes queued and stops the thread.
    pub fn stop(&self) {
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                log::error!("metadb: the writer thread panicked");
            }
        }
    }
}

fn write_loop(mut store: Store, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let (delivers, committed) =
            store.group(|store| group.into_iter().map(|job| job(store)).collect::<Vec<_>>());
        if let Err(e) = &committed {
            log::error!("metadb: cannot commit {} writes: {e}", delivers.len());
        }
        for deliver in delivers {
            deliver(
                committed
                    .as_ref()
                    .map_err(|e| Error::Commit(e.to_string()))
                    .copied(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::model::{Atom, Backup, Dataset};

    fn record(store: &mut Store, n: usize) -> Result<(), String> {
        let backup = Backup {
            id: format!("b{n}"),
            timestamp: "2024-05-01T00:00:00Z".into(),
            host: "h".into(),
            datasets: vec![],
        };
        let atoms = vec![Atom {
            name: format!("u/a{n}"),
            path: None,
        }];
        let dataset = Dataset::new(format!("d{n}"), "u".into(), atoms);
        store
            .add_dataset(&backup, &dataset)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn concurrent_writes_land_and_a_panic_is_only_its_own() {
        let writer = std::sync::Arc::new(Writer::start(Store::open_in_memory().unwrap()).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|n| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    writer.write(move |store| {
                        assert!(n != 3, "a write that panics");
                        record(store, n)
                    })
                })
            })
            .collect();
        for (n, thread) in threads.into_iter().enumerate() {
            let result = thread.join().unwrap();
            if n == 3 {
                assert_eq!(result, Err(Error::Panicked));
            } else {
                assert_eq!(result, Ok(Ok(())));
            }
        }
        let count = writer
            .write(|store| {
                let mut found = 0;
                let request = crate::wire::model::FindRequest {
                    pattern: "u/*".into(),
                    ..Default::default()
                };
                store
                    .for_each_found(&request, |_| {
                        found += 1;
                        Ok::<(), crate::metadb::store::Error>(())
                    })
                    .map(|()| found)
                    .ok()
            })
            .unwrap();
        assert_eq!(count, Some(7));
        writer.stop();
        assert_eq!(writer.write(|_| ()), Err(Error::Stopped));
    }
}
