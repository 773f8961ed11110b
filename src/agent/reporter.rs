//! The reporter thread: keeps a remote metadb informed. It delivers records
//! spooled while the metadb was unavailable, and reports this host's running
//! jobs (`update_active_job_status`) every 30 s while there are any, once
//! more when they are done, and every 10 minutes when idle (the server
//! forgets on restart). With the embedded metadb both are no-ops. It also
//! publishes the agent's plan (each source's schedule and next run) when it
//! changes, at once on every reload (SIGHUP), and every 10 minutes, so
//! that a metadb rebuilt from scratch learns it again.
//!
//! First, though, it loads what the metadb knows of earlier backups (see
//! `history`). It runs on its own thread so that a slow metadb never delays
//! scheduling.
//! The agent owns it (a [`Periodic`]).

use crate::agent::history;
use crate::agent::status::{RunningJob, Status};
use crate::base::periodic::{Periodic, Tick};
use crate::metadb::Metadb;
use crate::restic;
use crate::wire::api::{Plan, PlannedSource, Policy};
use crate::wire::model::ActiveJob;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the spool is retried and running jobs are reported.
const INTERVAL: Duration = Duration::from_secs(30);
/// How often an idle host repeats its (empty) report.
const IDLE_REPEAT: Duration = Duration::from_secs(600);

/// Starts the reporter thread for `metadb`; the sources must be in
/// `status`. Stop it once no job runs: it reports that, and delivers what
/// the spool holds, before it ends (each within the metadb client's timeout).
pub fn spawn(status: Arc<Status>, metadb: Arc<Metadb>) -> Result<Periodic, String> {
    let mut last: Option<(Vec<ActiveJob>, Instant)> = None;
    let mut history_loaded = false;
    let mut published: Option<(Plan, Instant)> = None;
    Periodic::spawn("reporter", move |tick| {
        if !history_loaded {
            history::load(&status, &metadb);
            history_loaded = true;
        }
        if tick == Tick::Woken {
            // A reload: the plan goes out now, changed or not.
            published = None;
        }
        publish(&status, &metadb, &mut published);
        report(&status, &metadb, &mut last);
        flush(&metadb);
        INTERVAL
    })
}

/// Publishes the plan if it changed, or if the last publication is old.
fn publish(status: &Status, metadb: &Metadb, last: &mut Option<(Plan, Instant)>) {
    let plan = {
        let state = status.lock();
        Plan {
            host: state.host.clone(),
            replace: true,
            sources: state
                .sources
                .iter()
                .map(|(name, source)| PlannedSource {
                    source: name.clone(),
                    schedule: source.schedule.clone(),
                    next_due: source.next_run.map(crate::base::time::format),
                    overdue_grace: source.overdue_grace.map(|g| g.as_secs()),
                    retention: source.retention.as_ref().map(Policy::of),
                })
                .collect(),
            // Published apart, as jobs learn them (`backup::plan`).
            repositories: None,
        }
    };
    let fresh = last
        .as_ref()
        .is_some_and(|(sent, at)| *sent == plan && at.elapsed() < IDLE_REPEAT);
    if !fresh && crate::backup::plan::publish(metadb, &plan) {
        *last = Some((plan, Instant::now()));
    }
}

/// Delivers spooled records, if any.
fn flush(metadb: &Metadb) {
    if metadb.spool_backlog() == 0 {
        return;
    }
    if let Err(e) = metadb.flush_spool() {
        log::warn!(
            "{} spooled records not delivered yet: {e}",
            metadb.spool_backlog()
        );
    }
}

/// Reports the running jobs if they changed, or if the last report is old.
fn report(status: &Status, metadb: &Metadb, last: &mut Option<(Vec<ActiveJob>, Instant)>) {
    let (host, jobs) = {
        let state = status.lock();
        let jobs: Vec<ActiveJob> = state
            .running
            .iter()
            .map(|(source, job)| active_job(&state.host, source, job))
            .collect();
        (state.host.clone(), jobs)
    };
    let unchanged_and_idle = last
        .as_ref()
        .is_some_and(|(sent, at)| jobs.is_empty() && sent.is_empty() && at.elapsed() < IDLE_REPEAT);
    if unchanged_and_idle {
        return;
    }
    match metadb.update_active_job_status(&host, jobs.clone()) {
        Ok(()) => *last = Some((jobs, Instant::now())),
        Err(e) => log::debug!("cannot report running jobs: {e}"),
    }
}

fn active_job(host: &str, source: &str, job: &RunningJob) -> ActiveJob {
    let message = match &job.retry_at {
        Some(t) => format!("waiting to retry at {}", crate::base::time::format(*t)),
        None => "running".into(),
    };
    let status = job.progress.as_ref().and_then(status_object);
    ActiveJob {
        host: host.to_string(),
        job_id: format!("{source} {}", job.backup_id),
        backup_id: job.backup_id.clone(),
        dataset_id: String::new(),
        dataset_source: source.to_string(),
        status,
        message,
    }
}

/// restic's status as the JSON object it printed, as the original reported
/// a job's status.
fn status_object(
    status: &restic::BackupProgress,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_json::to_value(status) {
        Ok(serde_json::Value::Object(object)) => Some(object),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jobs_status_is_restics_object() {
        let line = r#"{"message_type":"status","seconds_elapsed":3,"percent_done":0.5,"total_files":4,"files_done":2,"total_bytes":400,"bytes_done":200}"#;
        let status: restic::BackupProgress = serde_json::from_str(line).unwrap();
        let object = serde_json::Value::Object(status_object(&status).unwrap());
        let mut expected: serde_json::Value = serde_json::from_str(line).unwrap();
        expected.as_object_mut().unwrap().remove("message_type");
        assert_eq!(object, expected);
    }
}
