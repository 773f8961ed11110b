//! A remote metadb as the commands see it: the HTTP client, with the spool
//! behind it so that recording never fails just because the metadb is away.
//!
//! When the metadb is unavailable, or its answer cannot be read, a record
//! goes to the spool and the caller gets `Ok` (with one warning per
//! process, so a cron run mails one line); only a refusal is an error.
//! For a while after that (`BACKOFF`) records go straight to the spool
//! rather than each waiting for a connection timeout. Spooled records are
//! delivered oldest first whenever the metadb is opened, before a new record
//! is sent, and whenever the agent calls [`Remote::flush`].

pub mod connection;
pub mod http;
pub mod spool;

pub use http::Error;

use crate::metadb::client::http as client;
use crate::metadb::client::http::Client;
use crate::metadb::client::spool::{Record, Spool};
use crate::wire::api::{Attempt, CopiesRequest, Plan};
use crate::wire::model::UpdateActiveJobStatusRequest;
use crate::wire::model::{AddDatasetRequest, Backup, Dataset, FindRequest};
use connection::Connection;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long records go straight to the spool after the metadb was found
/// unavailable.
const BACKOFF: Duration = Duration::from_secs(30);

#[derive(Default)]
struct State {
    /// Whether this process has warned about spooling since the last
    /// successful delivery.
    warned: bool,
    /// Until when the metadb is taken to be unavailable, and why.
    down: Option<(Instant, String)>,
}

/// A remote metadb with its spool.
pub struct Remote {
    client: Client,
    spool: Spool,
    state: Mutex<State>,
}

impl Remote {
    /// Connects to the metadb of `connection` and delivers what is spooled
    /// in `work_dir`.
    pub fn open(work_dir: &Path, connection: &Connection) -> Result<Remote, client::Error> {
        let remote = Remote {
            client: Client::new(connection)?,
            spool: Spool::new(work_dir),
            state: Mutex::new(State::default()),
        };
        if remote.spool.len() > 0 {
            if let Err(e) = remote.flush() {
                log::info!("metadb: spooled records stay for later: {e}");
            }
        }
        Ok(remote)
    }

    /// Records `dataset`, or spools it if the metadb is unavailable or its
    /// answer cannot be read. Only a refusal, or a failure to spool, is an
    /// error.
    pub fn add_dataset(&self, backup: &Backup, dataset: &Dataset) -> Result<(), client::Error> {
        self.send(Record::Dataset(AddDatasetRequest {
            backup: Backup {
                datasets: Vec::new(),
                ..backup.clone()
            },
            dataset: dataset.clone(),
        }))
    }

    /// Records how an attempt ended, or spools it if the metadb is
    /// unavailable.
    pub fn add_attempt(&self, attempt: &Attempt) -> Result<(), client::Error> {
        self.send(Record::Attempt {
            attempt: attempt.clone(),
        })
    }

    /// Records that a copy holds datasets, or spools it if the metadb is
    /// unavailable.
    pub fn add_copies(&self, request: &CopiesRequest) -> Result<(), client::Error> {
        self.send(Record::Copies {
            copies: request.clone(),
        })
    }

    /// Publishes `plan`, unless the metadb is known to be away: a plan is
    /// not spooled (it is published again), and a metadb found away makes
    /// the records that follow go straight to the spool.
    pub fn publish_plan(&self, plan: &Plan) -> Result<(), client::Error> {
        if let Some(why) = self.down() {
            return Err(client::Error::Unavailable(why));
        }
        self.client.publish_plan(plan).inspect_err(|e| {
            if let client::Error::Unavailable(_) = e {
                self.mark_down(e);
            }
        })
    }

    /// Sends `record`, after what the spool holds, or spools it.
    fn send(&self, record: Record) -> Result<(), client::Error> {
        if let Some(why) = self.down() {
            return self.spool(&record, &why);
        }
        // Older records first, so that they keep their order.
        if self.spool.len() > 0 {
            match self.flush() {
                Err(e @ client::Error::Unavailable(_)) => {
                    return self.spool(&record, &e.to_string())
                }
                // A refusal shows again, and as an error, on this record.
                Err(e) => log::debug!("metadb: spooled records stay: {e}"),
                Ok(_) => {}
            }
        }
        match self.deliver(&record) {
            Ok(()) => {
                self.state().warned = false;
                Ok(())
            }
            Err(e @ client::Error::Unavailable(_)) => {
                self.mark_down(&e);
                self.spool(&record, &e.to_string())
            }
            // An answer no one can read (a proxy's page, say): whether the
            // metadb kept the record or not, it goes again later (taking
            // it twice changes nothing).
            Err(e @ client::Error::Protocol(_)) => self.spool(&record, &e.to_string()),
            Err(e) => Err(e),
        }
    }

    fn deliver(&self, record: &Record) -> Result<(), client::Error> {
        match record {
            Record::Dataset(request) => self.client.add_dataset(request),
            Record::Attempt { attempt } => self.client.add_attempt(attempt),
            Record::Copies { copies } => self.client.add_copies(copies).map(drop),
        }
    }

    /// The backups holding atoms that match `request`, newest first,
    /// handed to `f` as they arrive.
    pub fn for_each_found<E: From<client::Error>>(
        &self,
        request: &FindRequest,
        f: impl FnMut(Backup) -> Result<(), E>,
    ) -> Result<(), E> {
        self.client.for_each_found(request, f)
    }

    /// Forgets `request.host`'s datasets whose snapshots were pruned. Not
    /// spooled: a failure leaves records that `reindex` or the next prune
    /// clears, never a backup unrecorded.
    pub fn remove_datasets(
        &self,
        request: &crate::wire::api::RemoveDatasetsRequest,
    ) -> Result<usize, client::Error> {
        self.client.remove_datasets(request)
    }

    /// The HTTP client, for the calls that need no spool.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Reports this host's running jobs.
    pub fn update_active_job_status(
        &self,
        request: &UpdateActiveJobStatusRequest,
    ) -> Result<(), client::Error> {
        self.client.update_active_job_status(request)
    }

    /// Delivers spooled records, oldest first, until the spool is empty or
    /// the metadb does not take one; returns how many were delivered. A
    /// record refused as invalid or conflicting (400, 409) can never be
    /// delivered: it is moved aside (`spool/rejected/`) and logged. Other
    /// refusals (a wrong token, say) stop the delivery and keep the records.
    pub fn flush(&self) -> Result<usize, client::Error> {
        let spool_error = |e: std::io::Error| {
            client::Error::Setup(format!("spool {}: {e}", self.spool.dir().display()))
        };
        // Another process is delivering them.
        let Some(_lock) = self.spool.lock().map_err(spool_error)? else {
            return Ok(0);
        };
        self.spool.clean();
        let mut delivered = 0;
        for path in self.spool.pending().map_err(spool_error)? {
            let result = Spool::read(&path).map(|record| self.deliver(&record));
            match result {
                Ok(Ok(())) => {
                    Spool::remove(&path).map_err(spool_error)?;
                    delivered += 1;
                }
                // This record can never be taken: keep it for the operator,
                // out of the way of the others.
                Ok(Err(
                    e @ client::Error::Rejected {
                        status: 400 | 409, ..
                    },
                )) => {
                    self.set_aside(&path, &e.to_string());
                }
                Err(e) => self.set_aside(&path, &e),
                // Unavailable, or refused for a reason that a fixed token or
                // configuration cures (401, 403, 413, ...): try again later.
                Ok(Err(e)) => {
                    if let client::Error::Unavailable(_) = e {
                        self.mark_down(&e);
                    }
                    if delivered > 0 {
                        log::info!("metadb: delivered {delivered} spooled records");
                    }
                    return Err(e);
                }
            }
        }
        if delivered > 0 {
            self.state().down = None;
            log::info!("metadb: delivered {delivered} spooled records");
        }
        Ok(delivered)
    }

    /// How many records wait in the spool.
    pub fn backlog(&self) -> usize {
        self.spool.len()
    }

    /// The spool directory (for messages).
    pub fn spool_dir(&self) -> &std::path::Path {
        self.spool.dir()
    }

    fn set_aside(&self, path: &std::path::Path, why: &str) {
        match self.spool.reject(path) {
            Ok(to) => log::error!(
                "metadb: spooled record {} cannot be delivered ({why}); moved to {}",
                path.display(),
                to.display()
            ),
            Err(e) => log::error!(
                "metadb: spooled record {} cannot be delivered ({why}) nor moved aside: {e}",
                path.display()
            ),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Why the metadb is taken to be unavailable, if it is.
    fn down(&self) -> Option<String> {
        match &self.state().down {
            Some((until, why)) if Instant::now() < *until => Some(why.clone()),
            _ => None,
        }
    }

    fn mark_down(&self, e: &client::Error) {
        self.state().down = Some((Instant::now() + BACKOFF, e.to_string()));
    }

    /// Spools `record` because of `cause` (why the metadb did not take it).
    fn spool(&self, record: &Record, cause: &str) -> Result<(), client::Error> {
        let what = match record {
            Record::Dataset(r) => {
                format!("dataset {} of source {}", r.dataset.id, r.dataset.source)
            }
            Record::Attempt { attempt } => {
                format!("the {} attempt of source {}", attempt.kind, attempt.source)
            }
            Record::Copies { copies } => format!(
                "what copy {} holds ({} datasets)",
                copies.repository,
                copies.dataset_ids.len()
            ),
        };
        self.spool.push(record).map_err(|e| {
            client::Error::Setup(format!(
                "metadb {cause}, and {what} cannot be spooled in {}: {e}",
                self.spool.dir().display()
            ))
        })?;
        let first = !std::mem::replace(&mut self.state().warned, true);
        let message = format!(
            "metadb {cause}: {what} spooled in {} for later delivery",
            self.spool.dir().display()
        );
        if first {
            log::warn!("{message}");
        } else {
            log::info!("{message}");
        }
        Ok(())
    }
}
