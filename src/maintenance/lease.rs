//! Who maintains a repository: with a central metadb, the lease that lets one host at a time prune and check a repository shared by many, so
//! that they never fight over restic's exclusive lock. A lease is named by
//! restic's repository id (the same for every host, however each spells
//! the repository's location), held by a host name, and renewed while the
//! task runs; a dead host's lease expires. The embedded metadb serves one
//! host: no lease is taken there (restic's own lock still guards the
//! repository). `prune` and `proof` take it as this host's `maintenance:`
//! ([`crate::config::repositories::Maintenance`]) allows. The metadb
//! grants a repository's lease only to a host that publishes the
//! repository in its plan, which `hold` does first.

use crate::backup::plan;
use crate::metadb::{self, Metadb};
use crate::process::shell::Supervisor;
use crate::restic::{self, Repo};
use crate::wire::api::{LeaseRequest, ReleaseRequest};
use std::fmt;
use std::sync::mpsc;
use std::time::Duration;

/// How a task under a lease went.
pub enum Held<T> {
    /// This host held the lease (or needed none) and ran the task.
    Ran(T),
    /// Another host holds the lease: the task did not run.
    Busy { holder: String, expires: String },
}

/// Why the lease could not be asked for: a task never runs unsure that
/// this host alone maintains the repository.
#[derive(Debug)]
pub enum Error {
    /// restic could not say the repository's id, the lease's name.
    Id(restic::Error),
    /// The metadb could not be asked.
    Take(metadb::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Id(e) => write!(f, "cannot learn the repository's id for its lease: {e}"),
            Error::Take(e) => write!(f, "cannot take the maintenance lease: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Id(e) => Some(e),
            Error::Take(e) => Some(e),
        }
    }
}

/// Why a task did not run: `holder` holds the lease until `expires`.
pub fn busy(holder: &str, expires: &str) -> String {
    format!("host {holder} maintains the repository (its lease runs until {expires})")
}

/// The lease a task takes: on which repository, for which host, and how
/// long it lasts unless renewed.
pub struct Lease<'a> {
    pub metadb: &'a Metadb,
    pub repo: &'a Repo,
    /// This host's name for the repository: `primary` or a copy's.
    pub name: &'a str,
    pub host: &'a str,
    pub ttl: Duration,
}

impl Lease<'_> {
    /// Runs `task` holding the lease of the repository, renewed every third
    /// of its ttl until `task` returns, then released; without running it
    /// if another host holds the lease. A metadb that cannot be asked
    /// fails the task: a host never maintains a shared repository unsure
    /// that it alone does.
    pub fn hold<T>(&self, sup: &Supervisor, task: impl FnOnce() -> T) -> Result<Held<T>, Error> {
        if !self.metadb.is_shared() {
            return Ok(Held::Ran(task()));
        }
        let name = self.repo.id(sup).map_err(Error::Id)?;
        // The metadb grants the lease of a repository only to a host that
        // says it uses it.
        let planned = plan::planned(self.name, &name, self.repo.repository());
        plan::publish_repositories(self.metadb, self.host, vec![planned]);
        let request = LeaseRequest {
            name: name.clone(),
            holder: self.host.to_string(),
            ttl: self.ttl.as_secs().max(1),
        };
        let lease = self.metadb.take_lease(&request).map_err(Error::Take)?;
        if !lease.granted {
            return Ok(Held::Busy {
                holder: lease.holder,
                expires: lease.expires,
            });
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let every = (self.ttl / 3).max(Duration::from_millis(300));
        let done = std::thread::scope(|s| {
            let request = &request;
            s.spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    self.renew(request);
                }
            });
            let done = task();
            drop(stop);
            done
        });
        let release = ReleaseRequest {
            name,
            holder: self.host.to_string(),
        };
        if let Err(e) = self.metadb.release_lease(&release) {
            log::warn!("maintenance lease not released (it expires by itself): {e}");
        }
        Ok(Held::Ran(done))
    }

    fn renew(&self, request: &LeaseRequest) {
        match self.metadb.take_lease(request) {
            Ok(lease) if lease.granted => {}
            Ok(lease) => log::error!(
                "maintenance lease of repository {} lost to host {} (not renewed in time)",
                request.name,
                lease.holder
            ),
            Err(e) => log::warn!("maintenance lease not renewed: {e}"),
        }
    }
}
