//! Creating repositories: `tabacco init`, and a backup under `init: auto`.
//! A repository is created by one deliberate act, and by one host at a
//! time: concurrent `restic init`s into one location each write a key and
//! a config, and leave a repository that nobody can open. So creation
//! holds a lock file in `work_dir` (this host's processes and threads),
//! and, with a metadb server, a lease named after the repository's
//! location (the hosts sharing it), taken before the location is even
//! looked at: a host that finds the repository created meanwhile opens it
//! with its own key instead (`tabacco init` with `restic cat config`, a
//! backup with its own restic). Hosts without a metadb
//! server are not serialised with each other: such a fleet creates its
//! repository from one host. Opening, creating and proving a repository
//! is `restic`'s; when a backup creates one, `backup`'s.

use crate::base::uri;
use crate::config::Config;
use crate::metadb::{self, Metadb};
use crate::process::shell::Supervisor;
use crate::report::failure::{Failure, Kind};
use crate::restic::{self, Repo, Repository};
use crate::wire::api::{LeaseRequest, ReleaseRequest, CREATION_LEASE};
use sha2::{Digest, Sha256};
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a host waiting for the lock or the lease asks again.
const POLL: Duration = Duration::from_millis(500);

/// What creates repositories for this host: its configuration (work_dir,
/// hostname) and its metadb (the lease, when shared).
pub struct Creator<'a> {
    pub config: &'a Config,
    pub metadb: &'a Metadb,
}

/// What [`Creator::ensure`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Made {
    Created,
    /// The repository was there (created earlier, or meanwhile by another
    /// host).
    Existed,
}

/// Why a repository could not be created or opened.
#[derive(Debug)]
pub enum Error {
    Restic(restic::Error),
    /// The metadb could not be asked for the creation lease.
    Lease(metadb::Error),
    /// Another host held the creation lease longer than a creation takes.
    Busy {
        location: String,
        holder: String,
        expires: String,
    },
    /// This host's lock file could not be taken.
    Lock {
        path: PathBuf,
        source: io::Error,
    },
    /// The job was stopped while it waited.
    Stopped(crate::process::shell::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Restic(e) => e.fmt(f),
            Error::Lease(e) => write!(f, "cannot take the lease to create a repository: {e}"),
            Error::Busy {
                location,
                holder,
                expires,
            } => write!(
                f,
                "host {holder} is creating repository {location} and has not finished (its lease runs until {expires})"
            ),
            Error::Lock { path, source } => write!(f, "cannot lock {}: {source}", path.display()),
            Error::Stopped(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Restic(e) => Some(e),
            Error::Lease(e) => Some(e),
            Error::Lock { source, .. } => Some(source),
            Error::Stopped(e) => Some(e),
            Error::Busy { .. } => None,
        }
    }
}

impl From<restic::Error> for Error {
    fn from(e: restic::Error) -> Error {
        Error::Restic(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        match e {
            Error::Restic(e) => Failure::from(e),
            Error::Stopped(e) => Failure::from(e),
            Error::Lease(_) => Failure::new(Kind::Metadb, e.to_string()),
            // Another host is at it: a later attempt finds it done.
            Error::Busy { .. } => Failure::new(Kind::RepositoryLocked, e.to_string()),
            Error::Lock { .. } => Failure::new(Kind::Other, e.to_string()),
        }
    }
}

impl Creator<'_> {
    /// Creates `repo` (a copy of `from`, with its chunker parameters, if
    /// given) unless it exists, holding this host's lock and, with a
    /// metadb server, the repository's creation lease. Anything else
    /// wrong with it (unreachable, half created, another password) is an
    /// error, and nothing is created.
    pub fn ensure(
        &self,
        sup: &Supervisor,
        repo: &Repo,
        from: Option<&Repository>,
    ) -> Result<Made, Error> {
        let repository = repo.repository();
        // Opening, creating and proving are each bounded by the timeout.
        let bound = repository.timeout * 3 + Duration::from_secs(30);
        let _lock = Lock::take(&self.config.work_dir.join("init.lock"), bound, sup)?;
        let location = uri::location(&repository.uri);
        let _lease = match self.metadb.is_shared() {
            true => Some(Lease::take(self, &location, bound, sup)?),
            false => None,
        };
        match repo.open(sup) {
            Ok(()) => Ok(Made::Existed),
            Err(restic::Error::Missing(_)) => {
                let shown = uri::mask(&repository.uri);
                log::info!("{}: creating restic repository {shown}", sup.label());
                repo.create(sup, from)?;
                Ok(Made::Created)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// What `init: auto` does for a backup that found `repo` missing (or
    /// half created, perhaps by another host right now): creates it as
    /// [`Creator::ensure`] does. One another host created meanwhile is
    /// opened with this host's key by the backup itself (a remote one by
    /// `restic cat config` already), which says so if the key does not
    /// open it. A repository this host used at that location before is not
    /// created again: it may be on a disk not mounted now.
    pub fn auto(
        &self,
        sup: &Supervisor,
        repo: &Repo,
        from: Option<&Repository>,
        missing: restic::Error,
    ) -> Result<(), Error> {
        if matches!(missing, restic::Error::Missing(_)) && repo.used_before() {
            return Err(Error::Restic(restic::Error::Missing(format!(
                "{missing}; this host used a repository there before ({}), so init: auto does not create one: put it back (a disk not mounted?), or run 'tabacco init' to start a new one",
                repo.repository().known_ids.display()
            ))));
        }
        self.ensure(sup, repo, from)?;
        Ok(())
    }
}

/// The name of the lease that creating the repository at `location` takes:
/// the same for every host that spells the location alike.
fn lease_name(location: &str) -> String {
    let digest: String = Sha256::digest(location.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{CREATION_LEASE}{digest}")
}

/// This host's repository creation lease, released when dropped.
struct Lease<'a> {
    metadb: &'a Metadb,
    request: LeaseRequest,
}

impl<'a> Lease<'a> {
    /// Takes the creation lease of `location`, waiting for another host
    /// that holds it (it is creating the repository) up to `bound` past
    /// the end of its lease.
    fn take(
        creator: &Creator<'a>,
        location: &str,
        bound: Duration,
        sup: &Supervisor,
    ) -> Result<Lease<'a>, Error> {
        let request = LeaseRequest {
            name: lease_name(location),
            holder: creator.config.hostname.clone(),
            ttl: bound.as_secs().max(1),
        };
        let started = Instant::now();
        let mut told = false;
        loop {
            let lease = creator.metadb.take_lease(&request).map_err(Error::Lease)?;
            if lease.granted {
                return Ok(Lease {
                    metadb: creator.metadb,
                    request,
                });
            }
            if started.elapsed() > bound * 2 {
                return Err(Error::Busy {
                    location: location.to_string(),
                    holder: lease.holder,
                    expires: lease.expires,
                });
            }
            if !std::mem::replace(&mut told, true) {
                log::info!(
                    "{}: host {} is creating repository {location}: waiting for it",
                    sup.label(),
                    lease.holder
                );
            }
            sup.ensure_running("init").map_err(Error::Stopped)?;
            std::thread::sleep(POLL * 2);
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let release = ReleaseRequest {
            name: self.request.name.clone(),
            holder: self.request.holder.clone(),
        };
        if let Err(e) = self.metadb.release_lease(&release) {
            log::warn!("repository creation lease not released (it expires by itself): {e}");
        }
    }
}

/// This host's lock on creating repositories: an exclusive `flock` on a
/// file in `work_dir`, held by one process (and one thread) at a time,
/// and let go when dropped or when the process dies.
#[derive(Debug)]
struct Lock {
    _file: File,
}

impl Lock {
    fn take(path: &Path, bound: Duration, sup: &Supervisor) -> Result<Lock, Error> {
        let locked = |source| Error::Lock {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(locked)?;
        }
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .map_err(locked)?;
        let started = Instant::now();
        loop {
            // SAFETY: flock(2) on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(Lock { _file: file });
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::WouldBlock {
                return Err(locked(e));
            }
            if started.elapsed() > bound {
                let held = format!(
                    "another process of this host has been creating a repository for over {}",
                    crate::base::time::format_duration(bound)
                );
                return Err(locked(io::Error::other(held)));
            }
            sup.ensure_running("init").map_err(Error::Stopped)?;
            std::thread::sleep(POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_that_spell_a_location_alike_take_one_lease() {
        let name = lease_name(&uri::location("rest:http://a:x@h:8000/repo/"));
        assert_eq!(
            name,
            lease_name(&uri::location("rest:http://b:y@h:8000/repo"))
        );
        assert_ne!(name, lease_name(&uri::location("rest:http://h:8000/other")));
        assert_eq!(name.len(), "create-".len() + 32);
        assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }

    #[test]
    fn one_process_holds_the_lock_at_a_time() {
        let dir = std::env::temp_dir().join(format!("tabacco-init-lock-{}", std::process::id()));
        let path = dir.join("init.lock");
        let sup = Supervisor::new(Default::default(), "t");
        let held = Lock::take(&path, Duration::from_secs(1), &sup).unwrap();
        let started = Instant::now();
        let e = Lock::take(&path, Duration::from_millis(300), &sup).unwrap_err();
        assert!(matches!(e, Error::Lock { .. }), "{e}");
        assert!(started.elapsed() >= Duration::from_millis(300));
        drop(held);
        Lock::take(&path, Duration::from_secs(1), &sup).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
