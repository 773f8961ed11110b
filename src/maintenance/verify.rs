//! Verification: is the repository sound, and can a backup really be
//! restored? Runs `restic check`, then a restore drill: a randomly chosen
//! recent atom of this host is restored into scratch space under `work_dir`
//! (a pipe atom's stream is counted against the size recorded at backup
//! time, a file atom's files are read back in full; a pipe atom whose
//! source has a `proof_command` is fed to it, to prove that it loads: see
//! `load`), and the outcome is recorded in the metadb. The scratch space is
//! always removed. A failed drill is told to its source's notification
//! targets as a failure. Used by `tabacco verify` and by the agent's
//! `verify_schedule`. The check, and whether this host runs it, is
//! `proof`'s.

use crate::backup::copy::{self, Reader};
use crate::base::count::count;
use crate::base::time;
use crate::config::Config;
use crate::maintenance::{load, proof};
use crate::metadb::{self, Metadb};
use crate::process::shell::pipe::Link;
use crate::process::shell::{self, Supervisor};
use crate::report::notify::{Event, Notice, Notifier};
use crate::restic;
use crate::wire::checked::{Checked, Refused};
use crate::wire::model::{self, Atom, Backup, Dataset, FindRequest, Verification};
use crate::wire::target::Target;
use chrono::{DateTime, Utc};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why verification failed.
#[derive(Debug)]
pub enum Error {
    /// The sources named are not all configured.
    Select(crate::config::Error),
    Repository(copy::Unknown),
    /// The check failed, or did not run.
    Proof(proof::Error),
    /// The metadb could not say which atoms there are to drill with.
    Metadb(metadb::Error),
    /// The restore drill of `atom` of source `source_name`'s backup
    /// `backup_id` failed.
    Drill {
        atom: String,
        source_name: String,
        backup_id: String,
        source: Box<Drill>,
    },
}

/// What a verification did.
#[derive(Debug)]
pub struct Verified {
    /// What was checked, in words.
    pub summary: String,
    /// The atom its drill proved to load, if it had a proof.
    pub loaded: Option<String>,
}

/// Why a restore drill failed.
#[derive(Debug)]
pub enum Drill {
    /// The record is not safe to use.
    Refused(Refused),
    /// The scratch directory cannot be created.
    Scratch {
        dir: PathBuf,
        source: io::Error,
    },
    Restic(restic::Error),
    /// `restic dump` could not be streamed, or failed.
    Dump(shell::Error),
    /// The stream could not be read.
    Reading(io::Error),
    /// The stream's size is not the recorded one.
    Size {
        bytes: u64,
        recorded: i64,
    },
    /// The proof command cannot be made.
    Command(crate::handler::Error),
    /// The atom's source, as configured here, has no proof.
    NoProof(String),
    /// `proof_command` failed: the dump does not load.
    Proof(shell::Error),
    /// Nothing was restored at `path`.
    Missing {
        path: PathBuf,
        source: io::Error,
    },
    /// A restored file or directory cannot be read.
    Unreadable {
        path: PathBuf,
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Select(e) => write!(f, "{e}"),
            Error::Repository(e) => e.fmt(f),
            Error::Proof(e) => e.fmt(f),
            Error::Metadb(e) => e.fmt(f),
            Error::Drill {
                atom,
                backup_id,
                source,
                ..
            } => write!(
                f,
                "restore drill of {atom} (backup {backup_id}) failed: {source}"
            ),
        }
    }
}

impl fmt::Display for Drill {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Drill::Refused(e) => e.fmt(f),
            Drill::Command(e) => write!(f, "proof_command: {e}"),
            Drill::NoProof(source) => write!(f, "source {source} has no proof_command here"),
            Drill::Proof(e) => write!(f, "the dump does not load: {e}"),
            Drill::Scratch { dir, source } => {
                write!(f, "cannot create {}: {source}", dir.display())
            }
            Drill::Restic(e) => e.fmt(f),
            Drill::Dump(e) => e.fmt(f),
            Drill::Reading(e) => write!(f, "reading restic dump: {e}"),
            Drill::Size { bytes, recorded } => {
                write!(f, "dump has {bytes} bytes, {recorded} were backed up")
            }
            Drill::Missing { path, source } => {
                write!(f, "{} was not restored: {source}", path.display())
            }
            Drill::Unreadable { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Repository(e) => Some(e),
            Error::Proof(e) => Some(e),
            Error::Metadb(e) => Some(e),
            Error::Drill { source, .. } => Some(source.as_ref()),
            Error::Select(e) => Some(e),
        }
    }
}

impl std::error::Error for Drill {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Drill::Refused(e) => Some(e),
            Drill::Command(e) => Some(e),
            Drill::Restic(e) => Some(e),
            Drill::Dump(e) | Drill::Proof(e) => Some(e),
            Drill::Scratch { source, .. }
            | Drill::Missing { source, .. }
            | Drill::Unreadable { source, .. }
            | Drill::Reading(source) => Some(source),
            Drill::Size { .. } | Drill::NoProof(_) => None,
        }
    }
}

/// Checks the repository (the one `repository` names: `primary` or a
/// copy) and drills a restore of one random recent atom of the sources
/// called `names` (all when empty), from the repository named, or the
/// primary, else a copy that holds it. Says what was checked.
pub fn verify(
    config: &Config,
    metadb: &Metadb,
    sup: &Supervisor,
    names: &[String],
    read_data_subset: Option<&str>,
    repository: Option<&str>,
) -> Result<Verified, Error> {
    let sources = config.select(names).map_err(Error::Select)?;
    let reader = Reader::new(&config.repository, &config.copies)
        .pick(repository)
        .map_err(Error::Repository)?;
    let (name, repo) = reader.checked();
    let mut checked =
        proof::check(config, metadb, (name, repo), sup, read_data_subset).map_err(Error::Proof)?;
    if repository.is_some() {
        checked = format!("{checked} (repository {name})");
    }
    log::info!("{checked}");

    let request = FindRequest {
        pattern: "*".into(),
        host: Some(config.hostname.clone()),
        num_versions: Some(1),
        older_than: None,
    };
    let found = metadb.find_atoms(&request).map_err(Error::Metadb)?;
    let candidates: Vec<(&Backup, &Dataset, usize)> = found
        .iter()
        .flat_map(|b| b.datasets.iter().map(move |d| (b, d)))
        .filter(|(_, d)| sources.iter().any(|s| s.name == d.source))
        .flat_map(|(b, d)| (0..d.atoms.len()).map(move |i| (b, d, i)))
        .collect();
    let Some(&(backup, dataset, index)) = candidates.get(random_index(candidates.len())) else {
        return Ok(Verified {
            summary: format!("{checked}; no recorded atom of this host to drill a restore with"),
            loaded: None,
        });
    };
    let atom = &dataset.atoms[index];
    let scratch = config.work_dir.join(format!("verify-{}", model::new_id()));
    // A pipe atom whose source proves its atoms load, as configured here.
    let prover = sources
        .iter()
        .find(|s| s.name == dataset.source && s.handler.proves())
        .filter(|_| atom.path.is_none());
    let drilled = match (Checked::one(backup, dataset, atom), prover) {
        (Ok((checked, atom)), None) => drill(&reader, sup, &checked, &atom, &scratch),
        (Ok((checked, atom)), Some(source)) => {
            load::prove(&reader, sup, &checked, &atom, source, &scratch)
        }
        (Err(refused), _) => Err(Drill::Refused(refused)),
    };
    if let Err(e) = std::fs::remove_dir_all(&scratch) {
        if e.kind() != std::io::ErrorKind::NotFound {
            log::error!("cannot remove scratch directory {}: {e}", scratch.display());
        }
    }
    let verification = Verification {
        timestamp: time::format(chrono::Utc::now()),
        host: config.hostname.clone(),
        atom: atom.name.clone(),
        backup_id: backup.id.clone(),
        ok: drilled.is_ok(),
        message: match &drilled {
            Ok(what) => what.clone(),
            Err(e) => e.to_string(),
        },
        loaded: prover.map(|_| drilled.is_ok()),
    };
    if let Err(e) = metadb.add_verification(&verification) {
        log::error!("cannot record the verification: {e}");
    }
    match drilled {
        Ok(drilled) => Ok(Verified {
            summary: format!(
                "{checked}; restore drill of {} (backup {}): {drilled}",
                atom.name, backup.id
            ),
            loaded: prover.map(|_| atom.name.clone()),
        }),
        Err(source) => Err(Error::Drill {
            atom: atom.name.clone(),
            source_name: dataset.source.clone(),
            backup_id: backup.id.clone(),
            source: Box::new(source),
        }),
    }
}

/// Tells the notification targets of the source whose drill failed in
/// `error` (its own, else agent.yml's) that it failed, as a failed backup
/// is told; nothing for any other error.
pub fn tell_failure(config: &Config, notifier: &Notifier, error: &Error, start: DateTime<Utc>) {
    let Error::Drill {
        source_name,
        backup_id,
        ..
    } = error
    else {
        return;
    };
    let Some(source) = config.sources.iter().find(|s| s.name == *source_name) else {
        return;
    };
    let notice = Notice {
        host: config.hostname.clone(),
        source: source_name.clone(),
        backup_id: backup_id.clone(),
        state: "",
        message: format!("verify: {error}"),
        started: time::format(start),
        ended: time::format(Utc::now().max(start)),
        datasets: 0,
    };
    notifier.tell(config.targets(source), &[Event::Failure], &notice);
}

/// A number below `n` (0 when `n` is 0), from the process's random state.
fn random_index(n: usize) -> usize {
    let random = u64::from_str_radix(&model::new_id(), 16).unwrap_or(0);
    if n == 0 {
        0
    } else {
        (random % n as u64) as usize
    }
}

/// Restores `atom`, the one of `checked`, into `scratch`; says what was
/// checked.
fn drill(
    reader: &Reader,
    sup: &Supervisor,
    checked: &Checked,
    atom: &Atom,
    scratch: &Path,
) -> Result<String, Drill> {
    let dataset = &checked.item().dataset;
    match atom.path.as_deref() {
        Some(path) => {
            let target = Target::Dir(scratch.to_path_buf());
            std::fs::create_dir_all(scratch).map_err(|source| Drill::Scratch {
                dir: scratch.to_path_buf(),
                source,
            })?;
            reader
                .read(dataset, |repo, snapshot| {
                    repo.restore(sup, snapshot, target.dir(), &[path], &[])
                })
                .map_err(Drill::Restic)?;
            let restored = target.place(path);
            let (files, bytes) = read_tree(&restored)?;
            Ok(format!(
                "{}, {} restored and read back",
                count(files, "file"),
                count(bytes, "byte")
            ))
        }
        None => {
            let dump = reader
                .read(dataset, |repo, snapshot| {
                    repo.dump(sup, snapshot, &atom.name)
                })
                .map_err(Drill::Restic)?;
            let ended = dump
                .pipe_into(Link::Direct, |data| {
                    io::copy(&mut std::fs::File::from(data), &mut io::sink())
                })
                .map_err(Drill::Dump)?;
            let bytes = ended.consumer.map_err(Drill::Reading)?;
            ended.producer.map_err(Drill::Dump)?;
            // `reindex` rebuilds records without restic's statistics, and
            // no pipe atom is empty (an empty stream fails its backup).
            if dataset.total_bytes == 0 {
                return Ok(format!("{bytes} bytes streamed back (size not recorded)"));
            }
            if bytes != dataset.total_bytes as u64 {
                return Err(Drill::Size {
                    bytes,
                    recorded: dataset.total_bytes,
                });
            }
            Ok(format!("{bytes} bytes streamed back, as backed up"))
        }
    }
}

/// Reads every file under `root` to the end; counts files and bytes.
fn read_tree(root: &Path) -> Result<(u64, u64), Drill> {
    let unreadable = |source| Drill::Unreadable {
        path: root.to_path_buf(),
        source,
    };
    let meta = std::fs::symlink_metadata(root).map_err(|source| Drill::Missing {
        path: root.to_path_buf(),
        source,
    })?;
    if meta.is_file() {
        let mut file = std::fs::File::open(root).map_err(unreadable)?;
        let bytes = io::copy(&mut file, &mut io::sink()).map_err(unreadable)?;
        return Ok((1, bytes));
    }
    let mut totals = (0, 0);
    if meta.is_dir() {
        for entry in std::fs::read_dir(root).map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            let (files, bytes) = read_tree(&entry.path())?;
            totals = (totals.0 + files, totals.1 + bytes);
        }
    }
    Ok(totals)
}
