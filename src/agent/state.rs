//! What the agent knows about its sources and running jobs, shared by the
//! scheduler (schedules, overlaps), the workers (results, progress) and the
//! HTTP thread (which only reads it). It also carries the shutdown flag that
//! stops every running job's processes and wakes workers waiting to retry.
//!
//! Everything here lives in memory: after a restart the metrics start empty
//! and fill as backups run.

use super::loaded::Loaded;
use crate::failure::{Failure, Kind};
use crate::restic;
use crate::shell::Supervisor;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The state and the condition workers wait on between retries.
#[derive(Default)]
pub struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// A snapshot-able view of the agent.
#[derive(Default)]
pub struct State {
    /// The configured host name.
    pub host: String,
    /// Configured sources, by name.
    pub sources: BTreeMap<String, SourceState>,
    /// Jobs taken by a worker, by source name (a source runs at most once).
    pub running: BTreeMap<String, RunningJob>,
    pub shutting_down: bool,
    /// The configuration in force, for the maintenance thread.
    pub loaded: Option<Arc<Loaded>>,
    /// The processes of the maintenance thread's current task (several for
    /// a restore), stopped on shutdown.
    pub maintenance: Vec<Supervisor>,
    pub maintenance_stats: Maintenance,
    /// Notifications sent and given up, counted by the notifier's thread.
    pub notifications: Arc<crate::notify::Counts>,
}

/// What the maintenance thread did (see `maintenance`).
#[derive(Clone, Debug, Default)]
pub struct Maintenance {
    pub last_verified: Option<DateTime<Utc>>,
    pub verify_failures: u64,
    pub last_pruned: Option<DateTime<Utc>>,
    pub prune_failures: u64,
    pub restores_succeeded: u64,
    pub restores_failed: u64,
}

/// One configured source.
#[derive(Clone, Debug, Default)]
pub struct SourceState {
    /// The `schedule:` value as written.
    pub schedule: String,
    pub next_run: Option<DateTime<Utc>>,
    /// The last finished attempt.
    pub last: Option<LastRun>,
    pub last_success: Option<DateTime<Utc>>,
    /// Of the last successful backup, summed over its datasets.
    pub bytes_added: i64,
    pub files: i64,
    /// Failed attempts by kind (an attempt counts once per kind it hit).
    pub failures: BTreeMap<Kind, u64>,
    /// Runs skipped because the previous one was still running.
    pub overlaps: u64,
}

/// How an attempt ended.
#[derive(Clone, Debug)]
pub struct LastRun {
    pub backup_id: String,
    pub finished: DateTime<Utc>,
    pub duration: Duration,
    /// Empty on success.
    pub errors: Vec<Failure>,
}

/// A job a worker holds: running, or waiting to retry.
pub struct RunningJob {
    pub backup_id: String,
    pub started: DateTime<Utc>,
    /// 1 for the scheduled run, then one more per retry.
    pub attempt: u32,
    pub progress: Option<restic::Status>,
    /// Set while waiting to retry.
    pub retry_at: Option<DateTime<Utc>>,
    /// The processes of the current attempt, stopped on shutdown.
    supervisor: Option<Supervisor>,
}

impl Shared {
    /// The state, for reading or for a change that needs no waking.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers an attempt of `source` under `sup`; false (and nothing
    /// registered) once the agent is shutting down.
    pub fn start_attempt(&self, source: &str, backup_id: &str, sup: &Supervisor) -> bool {
        let mut state = self.lock();
        if state.shutting_down {
            return false;
        }
        let attempt = state.running.get(source).map_or(1, |job| job.attempt + 1);
        state.running.insert(
            source.to_string(),
            RunningJob {
                backup_id: backup_id.to_string(),
                started: Utc::now(),
                attempt,
                progress: None,
                retry_at: None,
                supervisor: Some(sup.clone()),
            },
        );
        true
    }

    /// Puts `sup` in charge of `source`'s processes (e.g. for `restic
    /// unlock`); false once the agent is shutting down.
    pub fn supervise(&self, source: &str, sup: &Supervisor) -> bool {
        let mut state = self.lock();
        if state.shutting_down {
            return false;
        }
        if let Some(job) = state.running.get_mut(source) {
            job.supervisor = Some(sup.clone());
        }
        true
    }

    /// Records restic's progress for the running job of `source`.
    pub fn set_progress(&self, source: &str, status: &restic::Status) {
        if let Some(job) = self.lock().running.get_mut(source) {
            job.progress = Some(status.clone());
        }
    }

    /// Records a finished attempt of `source`.
    pub fn record(&self, source: &str, run: LastRun, bytes_added: i64, files: i64) {
        let mut state = self.lock();
        // A source removed by a reload while it ran has nowhere to go.
        let Some(entry) = state.sources.get_mut(source) else {
            return;
        };
        if run.errors.is_empty() {
            entry.last_success = Some(run.finished);
            entry.bytes_added = bytes_added;
            entry.files = files;
        }
        let mut kinds: Vec<Kind> = run.errors.iter().map(|e| e.kind).collect();
        kinds.sort();
        kinds.dedup();
        for kind in kinds {
            *entry.failures.entry(kind).or_default() += 1;
        }
        entry.last = Some(run);
    }

    /// Waits `delay` before a retry of `source`; false if the agent began
    /// shutting down meanwhile.
    pub fn wait_to_retry(&self, source: &str, delay: Duration) -> bool {
        let mut state = self.lock();
        if let Some(job) = state.running.get_mut(source) {
            job.supervisor = None;
            job.progress = None;
            job.retry_at = chrono::Duration::from_std(delay)
                .ok()
                .and_then(|d| Utc::now().checked_add_signed(d));
        }
        let (state, _) = self
            .changed
            .wait_timeout_while(state, delay, |s| !s.shutting_down)
            .unwrap_or_else(PoisonError::into_inner);
        !state.shutting_down
    }

    /// Adds `sup` to the maintenance thread's current task; false once the
    /// agent is shutting down.
    pub fn maintain(&self, sup: &Supervisor) -> bool {
        let mut state = self.lock();
        state.maintenance.push(sup.clone());
        !state.shutting_down
    }

    /// The maintenance thread's task is over.
    pub fn maintenance_done(&self) {
        self.lock().maintenance.clear();
    }

    /// Forgets the job of `source`: its worker is done with it.
    pub fn finish(&self, source: &str) {
        self.lock().running.remove(source);
    }

    /// Stops every running job's processes with `reason`, refuses new
    /// attempts and wakes workers waiting to retry.
    pub fn shut_down(&self, reason: &str) {
        let supervisors: Vec<Supervisor> = {
            let mut state = self.lock();
            state.shutting_down = true;
            let jobs = state
                .running
                .values()
                .filter_map(|job| job.supervisor.clone());
            jobs.chain(state.maintenance.iter().cloned()).collect()
        };
        self.changed.notify_all();
        // Outside the lock: stop() logs, and workers need the lock to finish.
        for sup in supervisors {
            sup.stop(reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::Priority;
    use std::time::Instant;

    #[test]
    fn shutdown_wakes_a_waiting_retry_and_refuses_new_attempts() {
        let shared = Arc::new(Shared::default());
        let sup = Supervisor::new(Priority::default(), "s b");
        assert!(shared.start_attempt("s", "b", &sup));
        let waiter = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || shared.wait_to_retry("s", Duration::from_secs(60)))
        };
        std::thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        shared.shut_down("test");
        assert!(!waiter.join().unwrap());
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!shared.start_attempt("s", "c", &sup));
    }

    #[test]
    fn results_are_recorded_and_failures_counted_by_kind() {
        let shared = Shared::default();
        shared
            .lock()
            .sources
            .insert("s".into(), SourceState::default());
        let run = |errors: &[&str]| LastRun {
            backup_id: "b".into(),
            finished: Utc::now(),
            duration: Duration::from_secs(1),
            errors: errors
                .iter()
                .map(|e| Failure::new(Kind::RepositoryLocked, *e))
                .collect(),
        };
        shared.record("s", run(&[]), 10, 2);
        shared.record(
            "s",
            run(&[
                "dataset s/a: repository is locked: x",
                "dataset s/b: repository is locked: x",
            ]),
            0,
            0,
        );
        shared.record("gone", run(&[]), 1, 1);
        let state = shared.lock();
        let s = &state.sources["s"];
        assert_eq!((s.bytes_added, s.files), (10, 2));
        assert!(s.last_success.is_some());
        assert_eq!(s.failures[&Kind::RepositoryLocked], 1);
        assert_eq!(s.last.as_ref().map(|l| l.errors.len()), Some(2));
        assert!(!state.sources.contains_key("gone"));
    }
}
