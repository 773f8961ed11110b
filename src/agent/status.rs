//! What the agent knows about its sources and running jobs: the status
//! that `/metrics`, the status page and the reporter read. The scheduler
//! writes schedules, next runs and overlaps; the workers results and
//! progress; the maintenance thread its counters. Nothing here stops or
//! wakes anything (that is `control`'s), and it imports nothing of the
//! agent's.
//!
//! Everything here lives in memory: after a restart the metrics start empty
//! and fill as backups run.

use crate::report::failure::{Failure, Kind};
use crate::restic;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The agent's status, behind one lock.
#[derive(Default)]
pub struct Status(Mutex<State>);

/// A snapshot-able view of the agent.
#[derive(Default)]
pub struct State {
    /// The configured host name.
    pub host: String,
    /// Configured sources, by name.
    pub sources: BTreeMap<String, SourceState>,
    /// Jobs taken by a worker, by source name (a source runs at most once).
    pub running: BTreeMap<String, RunningJob>,
    /// Shown once the scheduler has begun shutting the agent down.
    pub shutting_down: bool,
    pub maintenance: Maintenance,
    /// Notifications sent and given up, counted by the notifier's thread.
    pub notifications: Arc<crate::report::notify::Counts>,
}

/// What the maintenance thread did (see `maintenance`).
#[derive(Clone, Debug, Default)]
pub struct Maintenance {
    pub last_verified: Option<DateTime<Utc>>,
    pub verify_failures: u64,
    pub last_pruned: Option<DateTime<Utc>>,
    pub prune_failures: u64,
    /// Scheduled prunes not run: another host held the lease.
    pub prune_skipped: u64,
    pub restores_succeeded: u64,
    pub restores_failed: u64,
    /// When each atom was last proven to load by a drill of this agent.
    pub loaded: std::collections::BTreeMap<String, DateTime<Utc>>,
}

/// One configured source.
#[derive(Clone, Debug, Default)]
pub struct SourceState {
    /// The `schedule:` value as written.
    pub schedule: String,
    /// The source's `overdue_grace`, for the plan the reporter publishes.
    pub overdue_grace: Option<Duration>,
    /// The policy its snapshots are pruned by, for the plan.
    pub retention: Option<crate::base::retention::Retention>,
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
    pub progress: Option<restic::BackupProgress>,
    /// Set while waiting to retry.
    pub retry_at: Option<DateTime<Utc>>,
}

impl Status {
    /// The state, for reading or for a change.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Shows a new attempt of `source`: the first, or one more retry.
    pub fn start_attempt(&self, source: &str, backup_id: &str) {
        let mut state = self.lock();
        let attempt = state.running.get(source).map_or(1, |job| job.attempt + 1);
        state.running.insert(
            source.to_string(),
            RunningJob {
                backup_id: backup_id.to_string(),
                started: Utc::now(),
                attempt,
                progress: None,
                retry_at: None,
            },
        );
    }

    /// Records restic's progress for the running job of `source`.
    pub fn set_progress(&self, source: &str, status: &restic::BackupProgress) {
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

    /// Shows `source` as waiting `delay` to retry.
    pub fn waiting_to_retry(&self, source: &str, delay: Duration) {
        if let Some(job) = self.lock().running.get_mut(source) {
            job.progress = None;
            job.retry_at = chrono::Duration::from_std(delay)
                .ok()
                .and_then(|d| Utc::now().checked_add_signed(d));
        }
    }

    /// Forgets the job of `source`: its worker is done with it.
    pub fn finish(&self, source: &str) {
        self.lock().running.remove(source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_recorded_and_failures_counted_by_kind() {
        let status = Status::default();
        status
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
        status.record("s", run(&[]), 10, 2);
        status.record(
            "s",
            run(&[
                "dataset s/a: repository is locked: x",
                "dataset s/b: repository is locked: x",
            ]),
            0,
            0,
        );
        status.record("gone", run(&[]), 1, 1);
        let state = status.lock();
        let s = &state.sources["s"];
        assert_eq!((s.bytes_added, s.files), (10, 2));
        assert!(s.last_success.is_some());
        assert_eq!(s.failures[&Kind::RepositoryLocked], 1);
        assert_eq!(s.last.as_ref().map(|l| l.errors.len()), Some(2));
        assert!(!state.sources.contains_key("gone"));
    }
}
