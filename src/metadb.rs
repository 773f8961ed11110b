//! Where backups are recorded and found. Commands talk to this facade and
//! never to a store or a client directly: without `metadb.url` it is the
//! embedded SQLite store in `work_dir`; with it, the remote metadb server,
//! with a spool in `work_dir` for the times it is unavailable.
//!
//! Three parts beside this facade: `store` (the SQL, used embedded and by
//! the server), `client` (the HTTP client and its spool, used by agents
//! and commands) and `server` (the daemon's routes and endpoints). The
//! client and the store know nothing of each other or of the server; all
//! of them speak `wire`. An agent's settings for a remote metadb are a
//! [`Connection`], which `config` builds.

pub mod client;
pub mod server;
pub mod store;

use crate::base::time;
use crate::wire::api::{
    self, Attempt, HistoryRequest, Lease, LeaseRequest, Plan, Proof, Proofs, ReleaseRequest,
    SliceRead, SourcePolicy, StatusRequest, StatusRow,
};
use crate::wire::model::{
    ActiveJob, Backup, Dataset, FindRequest, RestoreRequest, RestoreState,
    UpdateActiveJobStatusRequest, Verification,
};
use chrono::{DateTime, Utc};
use client::connection::Connection;
use client::Remote;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use store::Store;

/// How many connections [`Metadb::add_datasets`] records over at once on a
/// metadb server.
const SENDERS: usize = 8;

/// A metadb failure.
#[derive(Debug)]
pub enum Error {
    Store(store::Error),
    Remote(client::Error),
    /// Configuration the metadb cannot work with.
    Setup(String),
    /// What was asked for is not recorded.
    NotFound(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Store(e) => write!(f, "metadb: {e}"),
            Error::Remote(e) => write!(f, "metadb: {e}"),
            Error::Setup(e) => write!(f, "metadb: {e}"),
            Error::NotFound(e) => write!(f, "metadb: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Store(e) => Some(e),
            Error::Remote(e) => Some(e),
            Error::Setup(_) | Error::NotFound(_) => None,
        }
    }
}

/// Why a streamed find stopped: its consumer said so, or the metadb failed.
enum Stopped<E> {
    By(E),
    Metadb(Error),
}

impl<E> From<store::Error> for Stopped<E> {
    fn from(e: store::Error) -> Self {
        Stopped::Metadb(Error::Store(e))
    }
}

impl<E> From<client::Error> for Stopped<E> {
    fn from(e: client::Error) -> Self {
        Stopped::Metadb(Error::Remote(e))
    }
}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Error {
        Error::Store(e)
    }
}

impl From<client::Error> for Error {
    fn from(e: client::Error) -> Error {
        Error::Remote(e)
    }
}

/// A backup this process is making, as its job knows it: its time is the
/// attempt's one clock reading, written in RFC 3339 only where it goes over
/// the wire.
#[derive(Clone, Copy, Debug)]
pub struct NewBackup<'a> {
    pub id: &'a str,
    pub host: &'a str,
    pub at: DateTime<Utc>,
}

impl NewBackup<'_> {
    /// The backup as the wire carries it, without datasets.
    pub fn to_wire(self) -> Backup {
        Backup {
            id: self.id.to_string(),
            timestamp: time::format(self.at),
            host: self.host.to_string(),
            datasets: Vec::new(),
        }
    }
}

/// The embedded store's database file in `work_dir`.
pub fn embedded_path(work_dir: &Path) -> PathBuf {
    work_dir.join("metadb.sqlite")
}

/// The metadb a command records into and reads from.
pub enum Metadb {
    Embedded(Mutex<Store>),
    Remote(Remote),
}

impl Metadb {
    /// Opens the remote metadb of `connection`, or without one the embedded
    /// store in `work_dir`. A remote one gets its spooled records (in
    /// `work_dir`) delivered first, if it is available.
    pub fn open(work_dir: &Path, connection: Option<&Connection>) -> Result<Metadb, Error> {
        std::fs::create_dir_all(work_dir).map_err(|e| {
            Error::Setup(format!(
                "cannot create work_dir {}: {e}",
                work_dir.display()
            ))
        })?;
        if let Some(connection) = connection {
            return Ok(Metadb::Remote(Remote::open(work_dir, connection)?));
        }
        let path = embedded_path(work_dir);
        Ok(Metadb::Embedded(Mutex::new(Store::open(&path)?)))
    }

    /// Records one dataset of `backup`, which this process is making. A
    /// remote metadb that is unavailable gets it later, from the spool:
    /// that is `Ok` too, with a warning.
    pub fn add_dataset(&self, backup: &NewBackup, dataset: &Dataset) -> Result<(), Error> {
        match self {
            Metadb::Embedded(store) => {
                let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
                let at = backup.at.timestamp();
                Ok(store.add_dataset_at(backup.id, backup.host, at, dataset)?)
            }
            Metadb::Remote(remote) => Ok(remote.add_dataset(&backup.to_wire(), dataset)?),
        }
    }

    /// Records many datasets, each with its backup, as [`Metadb::add_dataset`]
    /// does one; returns each one's outcome, in order, or why none was
    /// recorded. An embedded store commits them together, with one sync; a
    /// metadb server gets them over several connections at once, so that
    /// it commits them in groups (a rebuild of thousands would otherwise
    /// wait on a sync each).
    pub fn add_datasets(
        &self,
        records: &[(Backup, Dataset)],
    ) -> Result<Vec<Result<(), Error>>, Error> {
        let store = match self {
            Metadb::Embedded(store) => store,
            Metadb::Remote(remote) => return Ok(add_concurrently(remote, records)),
        };
        let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
        let (results, committed) = store.group(|store| {
            let each = records.iter();
            each.map(|(b, d)| store.add_dataset(b, d))
                .collect::<Vec<_>>()
        });
        committed?;
        Ok(results.into_iter().map(|r| Ok(r?)).collect())
    }

    /// Backups holding atoms that match `request`, newest first (see
    /// [`Metadb::for_each_found`]).
    pub fn find_atoms(&self, request: &FindRequest) -> Result<Vec<Backup>, Error> {
        let mut found = Vec::new();
        self.for_each_found(request, |backup| {
            found.push(backup);
            Ok::<(), Error>(())
        })?;
        Ok(found)
    }

    /// The backups holding atoms that match `request`, newest first, each
    /// with only the datasets and atoms that matched, handed to `f` one at
    /// a time as it is read (from the database, or off the network), so
    /// that an answer of any size is printed before its end arrives. An
    /// error of `f` stops the find.
    pub fn for_each_found<E: From<Error>>(
        &self,
        request: &FindRequest,
        mut f: impl FnMut(Backup) -> Result<(), E>,
    ) -> Result<(), E> {
        let each = |backup| f(backup).map_err(Stopped::By);
        let found = match self {
            Metadb::Embedded(store) => {
                let store = store.lock().unwrap_or_else(PoisonError::into_inner);
                store.for_each_found(request, each)
            }
            Metadb::Remote(remote) => remote.for_each_found(request, each),
        };
        found.map_err(|stopped| match stopped {
            Stopped::By(e) => e,
            Stopped::Metadb(e) => E::from(e),
        })
    }

    /// Records that `repository` (`primary` or a copy's name) no longer
    /// holds `host`'s datasets `ids` (their snapshots were forgotten there);
    /// a dataset no repository holds is removed. Another host's datasets
    /// by the holder of maintenance `lease`.
    pub fn remove_datasets(
        &self,
        host: &str,
        ids: &[String],
        repository: &str,
        lease: Option<&str>,
    ) -> Result<usize, Error> {
        match self {
            Metadb::Embedded(store) => {
                let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(store.remove_datasets(host, ids, repository)?)
            }
            Metadb::Remote(remote) => {
                let request = api::RemoveDatasetsRequest {
                    host: host.to_string(),
                    dataset_ids: ids.to_vec(),
                    repository: (repository != store::PRIMARY).then(|| repository.to_string()),
                    lease: lease.map(str::to_string),
                };
                Ok(remote.remove_datasets(&request)?)
            }
        }
    }

    /// Records that copy `repository` holds `host`'s datasets `ids`. A
    /// remote metadb that is unavailable gets it later, from the spool.
    pub fn add_copies(&self, host: &str, repository: &str, ids: &[String]) -> Result<(), Error> {
        match self {
            Metadb::Embedded(store) => {
                let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
                store.add_copies(host, repository, ids)?;
                Ok(())
            }
            Metadb::Remote(remote) => Ok(remote.add_copies(&api::CopiesRequest {
                host: host.to_string(),
                repository: repository.to_string(),
                dataset_ids: ids.to_vec(),
            })?),
        }
    }

    /// `request.host`'s datasets of `request.source` that copy
    /// `request.repository` lacks, oldest first.
    pub fn due_copies(&self, request: &api::DueRequest) -> Result<Vec<api::Due>, Error> {
        match self {
            Metadb::Embedded(store) => {
                let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(store.due_copies(
                    &request.host,
                    &request.source,
                    &request.repository,
                    request.limit,
                )?)
            }
            Metadb::Remote(remote) => Ok(remote.client().due_copies(request)?),
        }
    }

    /// Per host and copy, how many datasets the copy lacks.
    pub fn copy_lag(&self) -> Result<Vec<api::Lag>, Error> {
        match self {
            Metadb::Embedded(store) => {
                let store = store.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(store.copy_lag()?)
            }
            Metadb::Remote(remote) => Ok(remote.client().copy_lag()?),
        }
    }

    /// Records the outcome of a restore drill.
    pub fn add_verification(&self, verification: &Verification) -> Result<(), Error> {
        match self {
            Metadb::Embedded(store) => {
                let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(store.add_verification(verification)?)
            }
            Metadb::Remote(remote) => Ok(remote.client().add_verification(verification)?),
        }
    }

    /// Records how an attempt ended. A remote metadb that is unavailable
    /// gets it later, from the spool.
    pub fn add_attempt(&self, attempt: &Attempt) -> Result<(), Error> {
        match self {
            Metadb::Embedded(store) => {
                let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(store.add_attempt(attempt, time::unix_now())?)
            }
            Metadb::Remote(remote) => Ok(remote.add_attempt(attempt)?),
        }
    }

    /// Publishes what this host runs and when (not spooled: plans are
    /// published again). The embedded metadb trims its old attempts then.
    pub fn publish_plan(&self, plan: &Plan) -> Result<(), Error> {
        match self {
            Metadb::Embedded(store) => {
                let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
                let retention = store::DEFAULT_ATTEMPT_RETENTION.as_secs();
                store.trim(time::unix_now().saturating_sub_unsigned(retention))?;
                Ok(store.publish_plan(plan, time::unix_now())?)
            }
            Metadb::Remote(remote) => Ok(remote.publish_plan(plan)?),
        }
    }

    /// Attempts matching `request`, newest first.
    pub fn history(&self, request: &HistoryRequest) -> Result<Vec<Attempt>, Error> {
        match self {
            Metadb::Embedded(store) => {
                let store = store.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(store.history(request)?)
            }
            Metadb::Remote(remote) => Ok(remote.client().history(request)?),
        }
    }

    /// The status of the planned sources matching `request`, handed to `f`
    /// one row at a time as it is read (from the database, or off the
    /// network), so that a fleet's status is never held whole. The embedded
    /// metadb knows of no running job and uses the default grace. An error
    /// of `f` stops the reading.
    pub fn for_each_status<E: From<Error>>(
        &self,
        request: &StatusRequest,
        mut f: impl FnMut(&StatusRow) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut each = |row: &StatusRow| f(row).map_err(Stopped::By);
        let read = match self {
            Metadb::Embedded(store) => {
                let store = store.lock().unwrap_or_else(PoisonError::into_inner);
                let clock = store::Clock {
                    now: time::unix_now(),
                    grace: i64::try_from(store::DEFAULT_OVERDUE_GRACE.as_secs())
                        .unwrap_or(i64::MAX),
                    running: &|_, _| false,
                    heard: &std::collections::HashMap::new(),
                };
                store.for_each_status(request, &clock, each)
            }
            Metadb::Remote(remote) => remote.client().for_each_status(request, |row| each(&row)),
        };
        read.map_err(|stopped| match stopped {
            Stopped::By(e) => e,
            Stopped::Metadb(e) => E::from(e),
        })
    }

    /// Stops watching `host` (its records stay).
    pub fn retire_host(&self, host: &str) -> Result<(), Error> {
        let known = match self {
            Metadb::Embedded(store) => {
                let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
                store.retire_host(host)?
            }
            Metadb::Remote(remote) => match remote.client().retire_host(host) {
                Err(client::Error::Rejected { status: 404, .. }) => false,
                other => other.map(|()| true)?,
            },
        };
        if known {
            Ok(())
        } else {
            Err(Error::NotFound(format!("no host {host} is known")))
        }
    }

    /// Files a restore request for `request.host`'s agent; returns it as
    /// stored (with its state).
    pub fn add_restore_request(&self, request: &RestoreRequest) -> Result<RestoreRequest, Error> {
        match self {
            Metadb::Embedded(store) => {
                let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
                store.add_restore_request(request, time::unix_now())?;
                store.restore_request(&request.id)?.ok_or_else(|| {
                    Error::NotFound(format!("restore request {} vanished", request.id))
                })
            }
            Metadb::Remote(remote) => Ok(remote.client().add_restore_request(request)?),
        }
    }

    /// `host`'s oldest pending restore request, now marked `running`.
    pub fn next_restore_request(&self, host: &str) -> Result<Option<RestoreRequest>, Error> {
        match self {
            Metadb::Embedded(store) => {
                let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(store.next_restore_request(host, time::unix_now())?)
            }
            Metadb::Remote(remote) => Ok(remote.client().next_restore_request(host)?),
        }
    }

    /// Records the progress (running) or outcome (succeeded, failed) of
    /// `host`'s restore request `id`.
    pub fn update_restore_request(
        &self,
        host: &str,
        id: &str,
        state: RestoreState,
        message: &str,
    ) -> Result<(), Error> {
        let found = match self {
            Metadb::Embedded(store) => {
                let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
                store.update_restore_request(host, id, state, message, time::unix_now())?
            }
            Metadb::Remote(remote) => {
                let status = api::RestoreStatus {
                    host: Some(host.to_string()),
                    state,
                    message: message.to_string(),
                };
                match remote.client().update_restore_request(id, &status) {
                    Err(client::Error::Rejected { status: 404, .. }) => false,
                    other => other.map(|()| true)?,
                }
            }
        };
        if found {
            Ok(())
        } else {
            Err(Error::NotFound(format!(
                "host {host} has no restore request {id}"
            )))
        }
    }

    /// Fails `host`'s restore requests left `running` by an agent that
    /// stopped while carrying them out; returns how many.
    pub fn abandon_restore_requests(&self, host: &str) -> Result<usize, Error> {
        match self {
            Metadb::Embedded(store) => {
                let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(store.abandon_restore_requests(host, time::unix_now())?)
            }
            Metadb::Remote(remote) => Ok(remote.client().abandon_restore_requests(host)?),
        }
    }

    /// Restore request `id` with its current state.
    pub fn restore_request(&self, id: &str) -> Result<Option<RestoreRequest>, Error> {
        match self {
            Metadb::Embedded(store) => {
                let store = store.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(store.restore_request(id)?)
            }
            Metadb::Remote(remote) => Ok(remote.client().restore_request(id)?),
        }
    }

    /// Whether hosts share this metadb (a server): only then do they need
    /// leases to maintain a repository one at a time.
    pub fn is_shared(&self) -> bool {
        matches!(self, Metadb::Remote(_))
    }

    /// Takes or renews a maintenance lease. The embedded metadb serves one
    /// host, which always gets it.
    pub fn take_lease(&self, request: &LeaseRequest) -> Result<Lease, Error> {
        match self {
            Metadb::Embedded(store) => {
                let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(store.take_lease(request, time::unix_now())?)
            }
            Metadb::Remote(remote) => Ok(remote.client().take_lease(request)?),
        }
    }

    /// The retention policies hosts published for their sources.
    pub fn policies(&self) -> Result<Vec<SourcePolicy>, Error> {
        match self {
            Metadb::Embedded(store) => {
                let store = store.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(store.policies()?)
            }
            Metadb::Remote(remote) => Ok(remote.client().policies()?),
        }
    }

    /// Every repository a host published, with the hosts that use it.
    pub fn repositories(&self) -> Result<Vec<api::KnownRepository>, Error> {
        match self {
            Metadb::Embedded(store) => {
                let store = store.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(store.repositories(None)?)
            }
            Metadb::Remote(remote) => Ok(remote.client().repositories()?),
        }
    }

    /// Where each repository's rotated check stands, and when atoms were
    /// last restored by a drill.
    pub fn proofs(&self) -> Result<Proofs, Error> {
        match self {
            Metadb::Embedded(store) => {
                let store = store.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(store.all_proofs(None)?)
            }
            Metadb::Remote(remote) => Ok(remote.client().proofs()?),
        }
    }

    /// Records that a slice of a repository was read back; returns where
    /// its rotated check stands now.
    pub fn record_slice(&self, read: &SliceRead) -> Result<Proof, Error> {
        match self {
            Metadb::Embedded(store) => {
                let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(store.record_slice(read, time::unix_now())?)
            }
            Metadb::Remote(remote) => Ok(remote.client().record_slice(read)?),
        }
    }

    /// Ends this host's lease.
    pub fn release_lease(&self, request: &ReleaseRequest) -> Result<(), Error> {
        match self {
            Metadb::Embedded(store) => {
                let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(store.release_lease(request)?)
            }
            Metadb::Remote(remote) => Ok(remote.client().release_lease(request)?),
        }
    }

    /// Reports `host`'s running jobs to a remote metadb (the embedded one
    /// has no one to show them to).
    pub fn update_active_job_status(
        &self,
        host: &str,
        active_jobs: Vec<ActiveJob>,
    ) -> Result<(), Error> {
        match self {
            Metadb::Embedded(_) => Ok(()),
            Metadb::Remote(remote) => {
                let request = UpdateActiveJobStatusRequest {
                    host: host.to_string(),
                    active_jobs,
                };
                Ok(remote.update_active_job_status(&request)?)
            }
        }
    }

    /// Delivers spooled records now; returns how many. For the agent to call
    /// periodically.
    pub fn flush_spool(&self) -> Result<usize, Error> {
        match self {
            Metadb::Embedded(_) => Ok(0),
            Metadb::Remote(remote) => Ok(remote.flush()?),
        }
    }

    /// How many records wait in the spool for the remote metadb.
    pub fn spool_backlog(&self) -> usize {
        match self {
            Metadb::Embedded(_) => 0,
            Metadb::Remote(remote) => remote.backlog(),
        }
    }

    /// A warning line for a non-empty spool, for commands to print.
    pub fn backlog_warning(&self) -> Option<String> {
        match self {
            Metadb::Embedded(_) => None,
            Metadb::Remote(remote) => match remote.backlog() {
                0 => None,
                n => Some(format!(
                    "{n} records wait in {} for the metadb; they are delivered when it is available",
                    remote.spool_dir().display()
                )),
            },
        }
    }
}

/// Records `records` over [`SENDERS`] connections at once, so that the
/// metadb server commits them in groups, one sync for each.
fn add_concurrently(remote: &Remote, records: &[(Backup, Dataset)]) -> Vec<Result<(), Error>> {
    let share = records.len().div_ceil(SENDERS).max(1);
    std::thread::scope(|s| {
        let senders: Vec<_> = records
            .chunks(share)
            .map(|chunk| {
                s.spawn(move || {
                    let each = chunk.iter();
                    each.map(|(b, d)| Ok(remote.add_dataset(b, d)?))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut results = Vec::with_capacity(records.len());
        for sender in senders {
            // A panic goes on as it would have without the threads.
            results.extend(
                sender
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            );
        }
        results
    })
}
