//! Records waiting for an unavailable metadb, one file each under
//! `work_dir/spool/`, so that a backup in the repository is never left
//! unrecorded because the metadb was down.
//!
//! A record is written to a temporary file, synced, renamed into place and
//! the directory synced: after `push` returns, a crash or power loss keeps
//! it whole or (before the rename) not at all. Names sort in the order
//! records were spooled. Delivery belongs to the caller (`remote`), which
//! holds [`Spool::lock`] so that two processes do not deliver at once;
//! delivery is idempotent anyway, so a crash between sending and removing
//! only sends a record twice.

use crate::wire::api::{Attempt, CopiesRequest};
use crate::wire::model::AddDatasetRequest;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// One spooled record. A dataset is written as its request alone, as
/// before attempts were spooled, so that spools written by either release
/// are read by both.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Record {
    Attempt { attempt: Attempt },
    Copies { copies: CopiesRequest },
    Dataset(AddDatasetRequest),
}

/// The spool directory of a work_dir.
#[derive(Clone, Debug)]
pub struct Spool {
    dir: PathBuf,
}

/// Held while delivering; released when dropped (or when the process dies).
pub struct Lock(#[allow(dead_code)] File);

impl Spool {
    /// The spool in `work_dir/spool` (created on first use).
    pub fn new(work_dir: &Path) -> Spool {
        Spool {
            dir: work_dir.join("spool"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `record` durably; returns its file.
    pub fn push(&self, record: &Record) -> io::Result<PathBuf> {
        self.create_dir()?;
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "{nanos:024}-{:010}-{:06}.json",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed) % 1_000_000
        );
        let json = serde_json::to_vec(record).map_err(io::Error::other)?;
        let tmp = self.dir.join(format!(".tmp-{name}"));
        let path = self.dir.join(&name);
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(&json)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(path)
    }

    /// The spooled records' files, oldest first.
    pub fn pending(&self) -> io::Result<Vec<PathBuf>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".json") && !name.starts_with('.') {
                files.push(entry.path());
            }
        }
        files.sort();
        Ok(files)
    }

    /// Removes temporary files that a crash left behind mid-`push`: those
    /// older than an hour, so that a `push` in progress keeps its own.
    pub fn clean(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(3600));
            if stale && entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// How many records wait (0 if the spool cannot be read).
    pub fn len(&self) -> usize {
        self.pending().map_or(0, |p| p.len())
    }

    /// Reads one spooled record.
    pub fn read(path: &Path) -> Result<Record, String> {
        let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{} is corrupt: {e}", path.display()))
    }

    /// Forgets a delivered record.
    pub fn remove(path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    /// Moves a record the metadb will never take to `spool/rejected/`, out of
    /// the way of the others but kept for the operator.
    pub fn reject(&self, path: &Path) -> io::Result<PathBuf> {
        let dir = self.dir.join("rejected");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let to = dir.join(path.file_name().unwrap_or_default());
        fs::rename(path, &to)?;
        Ok(to)
    }

    /// The delivery lock, or `None` if another process is delivering.
    pub fn lock(&self) -> io::Result<Option<Lock>> {
        self.create_dir()?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(self.dir.join(".lock"))?;
        // SAFETY: flock on a descriptor this function owns; no memory is
        // shared with the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(Some(Lock(file)));
        }
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock {
            Ok(None)
        } else {
            Err(e)
        }
    }

    fn create_dir(&self) -> io::Result<()> {
        // Records name hosts, paths and snapshots: the owner's only.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::model::{Atom, Backup, Dataset};

    fn record(id: &str) -> AddDatasetRequest {
        AddDatasetRequest {
            backup: Backup {
                id: "b1".into(),
                timestamp: "2024-05-01T00:00:00Z".into(),
                host: "h".into(),
                datasets: vec![],
            },
            dataset: Dataset {
                id: id.into(),
                source: "users".into(),
                atoms: vec![Atom {
                    name: "users/a".into(),
                    path: None,
                }],
                snapshot_id: "s".into(),
                total_files: 1,
                total_bytes: 2,
                bytes_added: 3,
                duration: 1,
                repositories: Vec::new(),
                repository: None,
            },
        }
    }

    #[test]
    fn records_come_back_in_order_and_leave_no_temporary_files() {
        let dir = std::env::temp_dir().join(format!("tabacco-spool-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let spool = Spool::new(&dir);
        assert_eq!(spool.len(), 0);
        for id in ["d1", "d2"] {
            spool.push(&Record::Dataset(record(id))).unwrap();
        }
        let copies = CopiesRequest {
            host: "h".into(),
            repository: "offsite".into(),
            dataset_ids: vec!["d1".into()],
        };
        spool.push(&Record::Copies { copies }).unwrap();
        let pending = spool.pending().unwrap();
        let ids: Vec<String> = pending
            .iter()
            .map(|p| match Spool::read(p).unwrap() {
                Record::Dataset(r) => r.dataset.id,
                Record::Attempt { attempt } => attempt.backup_id,
                Record::Copies { copies } => copies.repository,
            })
            .collect();
        assert_eq!(ids, ["d1", "d2", "offsite"], "each read back as itself");
        let all = fs::read_dir(spool.dir()).unwrap().count();
        assert_eq!(all, 3, "no temporary or lock files yet");

        let lock = spool.lock().unwrap().expect("first lock");
        assert!(spool.lock().unwrap().is_none(), "the lock is exclusive");
        drop(lock);
        assert!(spool.lock().unwrap().is_some());

        Spool::remove(&pending[0]).unwrap();
        let rejected = spool.reject(&pending[1]).unwrap();
        assert_eq!(spool.len(), 1);
        assert!(rejected.exists());
        fs::write(&pending[2], "{").unwrap();
        assert!(Spool::read(&pending[2]).unwrap_err().contains("is corrupt"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
