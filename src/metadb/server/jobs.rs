//! The fleet's running jobs as the agents last reported them
//! (`POST /api/update_active_job_status`, `GET /api/active_jobs`).
//!
//! This is a live view, not a record: it is kept in memory, each report
//! replaces its host's list, and a restarted server knows nothing until the
//! agents report again.

use crate::wire::model::{ActiveJob, UpdateActiveJobStatusRequest};
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// The latest report of every host.
#[derive(Debug, Default)]
pub struct Registry {
    hosts: Mutex<BTreeMap<String, Vec<ActiveJob>>>,
}

impl Registry {
    /// Replaces `request.host`'s list; an empty list forgets the host.
    pub fn update(&self, request: UpdateActiveJobStatusRequest) {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        if request.active_jobs.is_empty() {
            hosts.remove(&request.host);
        } else {
            hosts.insert(request.host, request.active_jobs);
        }
    }

    /// Every reported job, by host name, or only `host`'s.
    pub fn list(&self, host: Option<&str>) -> Vec<ActiveJob> {
        let hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        hosts
            .iter()
            .filter(|(h, _)| host.is_none_or(|want| want == h.as_str()))
            .flat_map(|(_, jobs)| jobs.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(host: &str, id: &str) -> ActiveJob {
        ActiveJob {
            host: host.into(),
            job_id: id.into(),
            backup_id: "b".into(),
            dataset_id: "d".into(),
            dataset_source: "users".into(),
            status: None,
            message: "running".into(),
        }
    }

    #[test]
    fn a_report_replaces_its_hosts_list() {
        let r = Registry::default();
        let report = |host: &str, jobs: Vec<ActiveJob>| UpdateActiveJobStatusRequest {
            host: host.into(),
            active_jobs: jobs,
        };
        r.update(report("a", vec![job("a", "1"), job("a", "2")]));
        r.update(report("b", vec![job("b", "3")]));
        r.update(report("a", vec![job("a", "4")]));
        let ids = |jobs: Vec<ActiveJob>| jobs.into_iter().map(|j| j.job_id).collect::<Vec<_>>();
        assert_eq!(ids(r.list(None)), ["4", "3"]);
        assert_eq!(ids(r.list(Some("b"))), ["3"]);
        r.update(report("a", vec![]));
        assert_eq!(ids(r.list(None)), ["3"]);
    }
}
