//! The repository's locks as restic keeps them: listing them with who
//! holds each (`restic list locks`, `restic cat lock`, both without taking
//! a lock). Removing stale ones is [`Repo::unlock`], by restic's rule: a
//! lock is stale once [`STALE_AFTER`] old, or when its process is gone
//! from the host it was taken on.

use super::{Error, Repo};
use crate::process::shell::Supervisor;
use serde::Deserialize;
use std::time::Duration;

/// How long after its last refresh restic takes a lock for stale, whoever
/// holds it (restic refreshes the locks it holds every 5 minutes).
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);

/// One lock in the repository.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Lock {
    /// Its file name in `locks/`; not in restic's JSON.
    #[serde(skip)]
    pub id: String,
    /// When it was taken or last refreshed (RFC 3339).
    pub time: String,
    #[serde(default)]
    pub exclusive: bool,
    /// The host restic ran on (the system's name, not `--host`).
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub pid: u32,
}

impl Repo {
    /// Every lock in the repository, with who holds it; one restic process
    /// per lock (a repository has few).
    pub fn locks(&self, sup: &Supervisor) -> Result<Vec<Lock>, Error> {
        let ids = self.lines(sup, &["list", "locks", "--no-lock"], "restic list locks")?;
        let mut locks = Vec::new();
        for id in ids {
            let args = ["cat", "lock", id.as_str(), "--no-lock"];
            match self.json::<Lock>(sup, &args, "restic cat lock") {
                Ok(lock) => locks.push(Lock { id, ..lock }),
                // `list` opened the repository: a lock that cannot be read
                // now was removed meanwhile (its holder ended, or
                // refreshed it under a new name, listed next time).
                Err(e) => log::debug!("lock {id} not read: {e}"),
            }
        }
        Ok(locks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_reads_as_restic_writes_it() {
        // restic 0.14's and 0.18's `cat lock` (captured).
        let text = r#"{"time": "2026-12-07T20:39:19.766443446Z", "exclusive": false,
            "hostname": "vm", "username": "root", "pid": 21645}"#;
        let lock: Lock = serde_json::from_str(text).unwrap();
        assert_eq!((lock.hostname.as_str(), lock.pid), ("vm", 21645));
        assert!(!lock.exclusive && lock.id.is_empty());
    }
}
