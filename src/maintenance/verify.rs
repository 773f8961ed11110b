//! Verification: is the repository sound, and can a backup really be
//! restored? Runs `restic check`, then a restore drill: a randomly chosen
//! recent atom of this host is restored into scratch space under `work_dir`
//! (a pipe atom's stream is counted against the size recorded at backup
//! time, a file atom's files are read back in full), and the outcome is
//! recorded in the metadb. The scratch space is always removed. Used by
//! `tabacco verify` and by the agent's `verify_schedule`. The check, and
//! whether this host runs it, is `proof`'s.

use crate::backup::copy::Reader;
use crate::base::time;
use crate::config::Config;
use crate::metadb::Metadb;
use crate::process::shell::pipe::Link;
use crate::process::shell::Supervisor;
use crate::wire::model::{self, Backup, Dataset, FindRequest, Verification};
use crate::wire::target::Target;
use std::path::Path;

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
) -> Result<String, String> {
    let sources = config.select(names).map_err(|e| e.to_string())?;
    let reader = Reader::new(&config.repository, &config.copies, repository)?;
    let (name, repo) = reader.checked();
    let mut checked =
        crate::maintenance::proof::check(config, metadb, repo, sup, read_data_subset)?;
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
    let found = metadb.find_atoms(&request).map_err(|e| e.to_string())?;
    let candidates: Vec<(&Backup, &Dataset, usize)> = found
        .iter()
        .flat_map(|b| b.datasets.iter().map(move |d| (b, d)))
        .filter(|(_, d)| sources.iter().any(|s| s.name == d.source))
        .flat_map(|(b, d)| (0..d.atoms.len()).map(move |i| (b, d, i)))
        .collect();
    let Some(&(backup, dataset, index)) = candidates.get(random_index(candidates.len())) else {
        return Ok(format!(
            "{checked}; no recorded atom of this host to drill a restore with"
        ));
    };
    let atom = &dataset.atoms[index];
    let scratch = config.work_dir.join(format!("verify-{}", model::new_id()));
    let drilled = drill(&reader, sup, dataset, index, &scratch);
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
            Err(e) => e.clone(),
        },
    };
    if let Err(e) = metadb.add_verification(&verification) {
        log::error!("cannot record the verification: {e}");
    }
    let what = format!("restore drill of {} (backup {})", atom.name, backup.id);
    match drilled {
        Ok(drilled) => Ok(format!("{checked}; {what}: {drilled}")),
        Err(e) => Err(format!("{what} failed: {e}")),
    }
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

/// Restores atom `index` of `dataset` into `scratch`; says what was checked.
fn drill(
    reader: &Reader,
    sup: &Supervisor,
    dataset: &Dataset,
    index: usize,
    scratch: &Path,
) -> Result<String, String> {
    let atom = &dataset.atoms[index];
    match crate::restore::checked_path(atom)? {
        Some(path) => {
            let target = Target::Dir(scratch.to_path_buf());
            std::fs::create_dir_all(scratch)
                .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
            reader
                .read(dataset, |repo, snapshot| {
                    repo.restore(sup, snapshot, target.dir(), &[path], &[])
                })
                .map_err(|e| e.to_string())?;
            let restored = scratch.join(path.trim_start_matches('/'));
            let (files, bytes) = read_tree(&restored)?;
            Ok(format!(
                "{}, {} restored and read back",
                crate::base::count::count(files, "file"),
                crate::base::count::count(bytes, "byte")
            ))
        }
        None => {
            let dump = reader
                .read(dataset, |repo, snapshot| {
                    repo.dump(sup, snapshot, &atom.name)
                })
                .map_err(|e| e.to_string())?;
            let ended = dump
                .pipe_into(Link::Direct, |data| {
                    std::io::copy(&mut std::fs::File::from(data), &mut std::io::sink())
                })
                .map_err(|e| e.to_string())?;
            let bytes = ended
                .consumer
                .map_err(|e| format!("reading restic dump: {e}"))?;
            ended.producer.map_err(|e| e.to_string())?;
            // `reindex` rebuilds records without restic's statistics, and
            // no pipe atom is empty (an empty stream fails its backup).
            if dataset.total_bytes == 0 {
                return Ok(format!("{bytes} bytes streamed back (size not recorded)"));
            }
            if bytes != dataset.total_bytes as u64 {
                return Err(format!(
                    "dump has {bytes} bytes, {} were backed up",
                    dataset.total_bytes
                ));
            }
            Ok(format!("{bytes} bytes streamed back, as backed up"))
        }
    }
}

/// Reads every file under `root` to the end; counts files and bytes.
fn read_tree(root: &Path) -> Result<(u64, u64), String> {
    let meta = std::fs::symlink_metadata(root)
        .map_err(|e| format!("{} was not restored: {e}", root.display()))?;
    if meta.is_file() {
        let bytes = std::io::copy(
            &mut std::fs::File::open(root).map_err(|e| format!("{}: {e}", root.display()))?,
            &mut std::io::sink(),
        )
        .map_err(|e| format!("{}: {e}", root.display()))?;
        return Ok((1, bytes));
    }
    let mut totals = (0, 0);
    if meta.is_dir() {
        let entries = std::fs::read_dir(root).map_err(|e| format!("{}: {e}", root.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", root.display()))?;
            let (files, bytes) = read_tree(&entry.path())?;
            totals = (totals.0 + files, totals.1 + bytes);
        }
    }
    Ok(totals)
}
