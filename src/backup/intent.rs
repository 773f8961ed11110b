//! No finished snapshot goes unrecorded when tabacco dies. Before restic
//! starts on a dataset, an intent (everything the dataset's record needs
//! but the snapshot id) is written durably to `work_dir/intents/`, under a
//! lock (`flock`) its job holds while it lives; it is removed once the
//! dataset is recorded (or spooled), or once nothing was saved. A job
//! killed in between (SIGKILL, a crash, power lost) leaves the intent
//! unlocked; the next backup of that source, by `run` or the agent,
//! resolves it before its own datasets: finds the snapshot by the
//! dataset's tag, records it (recording a dataset again changes nothing)
//! and removes the intent. An intent whose snapshot does not exist is
//! dropped; one whose lock is held belongs to a live job and is left.

use crate::backup::tombstone;
use crate::metadb::{Metadb, NewBackup};
use crate::process::shell::Supervisor;
use crate::restic::Repo;
use crate::wire::model::Dataset;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// What an intent's file holds.
#[derive(Serialize, Deserialize)]
struct Written {
    backup_id: String,
    host: String,
    /// The backup's start, its record's time (Unix seconds).
    at: i64,
    dataset: Dataset,
}

/// A written intent, locked while this value lives.
pub struct Intent {
    path: PathBuf,
    _locked: File,
}

/// The intents' directory in `work_dir`.
fn dir(work_dir: &Path) -> PathBuf {
    work_dir.join("intents")
}

/// Takes `file`'s lock without waiting; false if another holds it.
fn lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor this File owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        _ => Err(e),
    }
}

impl Intent {
    /// Writes, durably and locked, the intent to record `dataset` (its
    /// snapshot id still unknown) in `backup`.
    pub fn write(work_dir: &Path, backup: &NewBackup, dataset: &Dataset) -> io::Result<Intent> {
        let dir = dir(work_dir);
        fs::create_dir_all(&dir)?;
        let written = Written {
            backup_id: backup.id.to_string(),
            host: backup.host.to_string(),
            at: backup.at.timestamp(),
            dataset: dataset.clone(),
        };
        let text = serde_json::to_vec(&written).map_err(io::Error::other)?;
        // Written and locked under a temporary name, then renamed: whoever
        // opens the intent finds it whole, and locked.
        let path = dir.join(format!("{}.json", dataset.id));
        let tmp = dir.join(format!("{}.tmp", dataset.id));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)?;
        if !lock(&file)? {
            return Err(io::Error::other("its file is locked"));
        }
        file.write_all(&text)?;
        file.sync_all()?;
        fs::rename(&tmp, &path)?;
        File::open(&dir)?.sync_all()?;
        Ok(Intent {
            path,
            _locked: file,
        })
    }

    /// [`Intent::write`], or a warning naming the dataset (`label` the
    /// job's) and no intent: the backup goes on without one.
    pub fn write_or_warn(
        work_dir: &Path,
        backup: &NewBackup,
        dataset: &Dataset,
        label: &str,
    ) -> Option<Intent> {
        Intent::write(work_dir, backup, dataset)
            .map_err(|e| {
                log::warn!(
                    "{label}: cannot write the intent to record dataset {}: {e}",
                    dataset.id
                )
            })
            .ok()
    }

    /// The dataset is recorded or nothing was saved: the intent goes.
    pub fn done(self) {
        if let Err(e) = fs::remove_file(&self.path) {
            log::warn!("cannot remove {}: {e}", self.path.display());
        }
    }
}

/// Resolves the intents of `source` left by jobs that died: each one's
/// snapshot, found by its tag, is recorded; then the intent goes, as does
/// one whose snapshot does not exist. One that cannot be resolved now (the
/// repository or the metadb unreachable) stays for the next backup.
pub fn resolve(work_dir: &Path, source: &str, repo: &Repo, metadb: &Metadb, sup: &Supervisor) {
    let Ok(entries) = fs::read_dir(dir(work_dir)) else {
        return;
    };
    let label = sup.label();
    let unrecordable = tombstone::listed(work_dir);
    for entry in entries.flatten() {
        let path = entry.path();
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if extension == "tmp" {
            // Half written by a job that died before restic started.
            if File::open(&path).is_ok_and(|f| lock(&f).unwrap_or(false)) {
                let _ = fs::remove_file(&path);
            }
            continue;
        }
        if extension != "json" {
            continue;
        }
        let Ok(mut file) = File::open(&path) else {
            continue;
        };
        // Held: its job is alive.
        if !lock(&file).unwrap_or(false) {
            continue;
        }
        let mut text = String::new();
        let written: Written = match file
            .read_to_string(&mut text)
            .map_err(|e| e.to_string())
            .and_then(|_| serde_json::from_str(&text).map_err(|e| e.to_string()))
        {
            Ok(written) => written,
            Err(e) => {
                log::error!(
                    "{label}: intent {} is unreadable ({e}); removed",
                    path.display()
                );
                let _ = fs::remove_file(&path);
                continue;
            }
        };
        let mut dataset = written.dataset;
        if dataset.source != source {
            continue;
        }
        let found = match repo.snapshots(sup, &[dataset.tag()]) {
            Ok(found) => found,
            Err(e) => {
                log::warn!(
                    "{label}: cannot look for the snapshot of interrupted dataset {} yet: {e}",
                    dataset.id
                );
                continue;
            }
        };
        let found = found
            .into_iter()
            .find(|s| !tombstone::is_listed(&unrecordable, &s.id));
        let Some(snapshot) = found else {
            log::info!(
                "{label}: interrupted dataset {} left no snapshot: nothing to record",
                dataset.id
            );
            let _ = fs::remove_file(&path);
            continue;
        };
        dataset.snapshot_id = snapshot.id;
        let backup = NewBackup {
            id: &written.backup_id,
            host: &written.host,
            at: DateTime::from_timestamp(written.at, 0).unwrap_or_else(Utc::now),
        };
        match metadb.add_dataset(&backup, &dataset) {
            Ok(()) => {
                log::info!(
                    "{label}: snapshot {} of interrupted dataset {} (backup {}) recorded",
                    dataset.snapshot_id,
                    dataset.id,
                    written.backup_id
                );
                let _ = fs::remove_file(&path);
            }
            Err(e) => log::error!(
                "{label}: snapshot {} of interrupted dataset {} is not recorded yet: {e}",
                dataset.snapshot_id,
                dataset.id
            ),
        }
    }
}
