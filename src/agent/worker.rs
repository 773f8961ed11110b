//! The worker pool: threads that take due jobs from the scheduler, back up
//! one source each (retrying on repository trouble), record the result in
//! the status and each attempt in the metadb, and tell the scheduler they
//! are done; the control plane stops their processes on shutdown. All
//! jobs' datasets share the pool's [`Slots`]: at most `concurrency` back up
//! at once.
//!
//! The pool is owned by the scheduler: it stops when the scheduler drops its
//! job sender (workers finish their job, then see the closed channel), and
//! [`Pool::stop`] joins them.

use crate::agent::catchup::Ledger;
use crate::agent::control::Control;
use crate::agent::event::Event;
use crate::agent::loaded::Loaded;
use crate::agent::retry::Backoff;
use crate::agent::status::{LastRun, Status};
use crate::backup::attempt;
use crate::backup::job::Env;
use crate::base::queue;
use crate::base::slots::Slots;
use crate::metadb::Metadb;
use crate::process::shell::Supervisor;
use crate::report::failure::Kind;
use crate::report::notify::Notifier;
use crate::restic;
use crate::wire::model;
use chrono::{DateTime, Utc};
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Instant;

/// One backup to run: a source of a configuration snapshot.
pub struct Job {
    pub source: String,
    /// The configuration the job runs with, even if a reload replaces it.
    pub loaded: Arc<Loaded>,
    /// The source's next scheduled run: retries must start before it.
    pub deadline: DateTime<Utc>,
}

/// What every worker shares.
struct Context {
    status: Arc<Status>,
    control: Arc<Control>,
    metadb: Arc<Metadb>,
    /// Bounds the datasets backing up at once across all workers.
    slots: Slots,
    /// Sends the notifications of every worker's jobs; dropped with the
    /// pool, it waits a few seconds for what is queued.
    notifier: Notifier,
}

/// A growing set of worker threads fed by one channel.
pub struct Pool {
    jobs: Option<Sender<Job>>,
    queue: Arc<Mutex<mpsc::IntoIter<Job>>>,
    events: Sender<Event>,
    context: Arc<Context>,
    threads: Vec<JoinHandle<()>>,
}

impl Context {
    /// Forgets the job of `source`: its worker is done with it.
    fn finish(&self, source: &str) {
        self.control.release(source);
        self.status.finish(source);
    }
}

impl Pool {
    /// A pool with neither threads nor slots yet; see [`Pool::resize`].
    pub fn new(
        status: Arc<Status>,
        control: Arc<Control>,
        metadb: Arc<Metadb>,
        events: Sender<Event>,
    ) -> Result<Pool, String> {
        let (jobs, queue) = mpsc::channel();
        let counts = Arc::clone(&status.lock().notifications);
        Ok(Pool {
            jobs: Some(jobs),
            queue: Arc::new(Mutex::new(queue.into_iter())),
            events,
            context: Arc::new(Context {
                status,
                control,
                metadb,
                slots: Slots::new(0),
                notifier: Notifier::spawn(counts)?,
            }),
            threads: Vec::new(),
        })
    }

    /// Lets `size` datasets back up at once, and starts threads until
    /// there are `size` of them. The scheduler limits how many jobs run at
    /// once; the threads only grow, so that a reload raising `concurrency`
    /// takes effect at once, and a lower one only delays new datasets.
    pub fn resize(&mut self, size: usize) -> Result<(), String> {
        self.context.slots.resize(size);
        while self.threads.len() < size {
            let queue = Arc::clone(&self.queue);
            let context = Arc::clone(&self.context);
            let events = self.events.clone();
            let thread = thread::Builder::new()
                .name(format!("worker-{}", self.threads.len()))
                .spawn(move || work(&queue, &context, &events))
                .map_err(|e| format!("cannot start a worker thread: {e}"))?;
            self.threads.push(thread);
        }
        Ok(())
    }

    /// Hands `job` to the next free worker.
    pub fn submit(&self, job: Job) {
        if let Some(jobs) = &self.jobs {
            // Workers only stop once `jobs` is dropped, so this cannot fail.
            let _ = jobs.send(job);
        }
    }

    /// Lets the workers finish their current job, then joins them.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        drop(self.jobs.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shut();
    }
}

fn work(queue: &Mutex<mpsc::IntoIter<Job>>, context: &Context, events: &Sender<Event>) {
    queue::drain(queue, |job| {
        // A bug in one backup must not cost the agent a worker, nor leave
        // the source marked as running for good.
        let run = std::panic::catch_unwind(AssertUnwindSafe(|| run(context, &job)));
        if run.is_err() {
            log::error!("source {}: the backup job panicked (a bug)", job.source);
        }
        context.finish(&job.source);
        let _ = events.send(Event::Finished(job.source));
    });
}

/// Backs up the job's source, retrying while the repository is locked or
/// unavailable and time remains before the next scheduled run.
fn run(context: &Context, job: &Job) {
    let loaded = &job.loaded;
    let config = &loaded.config;
    let Some(source) = loaded.source(&job.source) else {
        return;
    };
    if !config.dry_run {
        Ledger::new(&config.work_dir).record(&source.name, true, Utc::now());
    }
    let remaining = || (job.deadline - Utc::now()).to_std().unwrap_or_default();
    let mut backoff = Backoff::new(remaining());
    loop {
        let backup_id = model::new_id();
        let sup = Supervisor::new(config.priority, format!("{} {backup_id}", source.name));
        if !context.control.supervise(&source.name, &sup) {
            return;
        }
        context.status.start_attempt(&source.name, &backup_id);
        let progress = |_: &str, status: &restic::BackupProgress| {
            context.status.set_progress(&source.name, status);
        };
        let env = Env {
            config,
            repo: &loaded.repo,
            metadb: &context.metadb,
            dry_run: config.dry_run,
            slots: &context.slots,
            progress: Some(&progress),
        };
        let started = Instant::now();
        let outcome = attempt::run(source, &env, &sup, &backup_id, &context.notifier, None);
        let duration = started.elapsed();
        outcome.report(config.dry_run, Some(duration));
        let kinds: Vec<Kind> = outcome.errors.iter().map(|e| e.kind).collect();
        let bytes_added = outcome.recorded.iter().map(|d| d.bytes_added).sum();
        let files = outcome.recorded.iter().map(|d| d.total_files).sum();
        let run = LastRun {
            backup_id: backup_id.clone(),
            finished: Utc::now(),
            duration,
            errors: outcome.errors,
        };
        context.status.record(&source.name, run, bytes_added, files);

        if !kinds.iter().any(|k| k.is_transient()) {
            return;
        }
        let Some(delay) = backoff.next_delay(remaining()) else {
            log::error!(
                "source {}: not retried: its next scheduled run comes first",
                source.name
            );
            return;
        };
        if kinds.contains(&Kind::RepositoryLocked) {
            unlock(context, loaded, &source.name, &backup_id);
        }
        log::warn!(
            "source {}: retrying in {}s because of repository trouble",
            source.name,
            delay.as_secs()
        );
        context.status.waiting_to_retry(&source.name, delay);
        if !context.control.wait_to_retry(&source.name, delay) {
            return;
        }
    }
}

/// Removes stale locks (of dead processes of this host, or very old ones)
/// with `restic unlock`; live locks of other processes stay.
fn unlock(context: &Context, loaded: &Loaded, source: &str, backup_id: &str) {
    let sup = Supervisor::new(loaded.config.priority, format!("{source} {backup_id}"));
    if !context.control.supervise(source, &sup) {
        return;
    }
    match loaded.repo.unlock(&sup) {
        Ok(_) => log::info!("{source} {backup_id}: restic unlock removed any stale locks"),
        Err(e) => log::warn!("{source} {backup_id}: {e}"),
    }
}
