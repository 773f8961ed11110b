//! Restoring atoms by name: resolving patterns into a plan (the newest
//! version of each matching atom, from one host or across hosts) and
//! carrying out one planned dataset with its handler and hooks. Paths that
//! come from the metadb are checked again here before restic sees them.

use crate::config::Config;
use crate::handler::Handler;
use crate::metadb::Metadb;
use crate::model::{Atom, Backup, Dataset, FindRequest, RestoreItem};
use crate::restic::{Repo, SnapshotRef};
use crate::shell::{self, Stop, Supervisor};
use crate::{name, time};
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, PoisonError};
use std::thread;

/// Where restored data goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// File atoms land at `DIR/<original path>`.
    Dir(PathBuf),
    /// File atoms land at their original paths.
    InPlace,
}

impl Target {
    /// How a restore request carries a target: a directory, or none for
    /// in place.
    pub fn to_request(&self) -> Option<String> {
        match self {
            Target::Dir(dir) => Some(dir.to_string_lossy().into_owned()),
            Target::InPlace => None,
        }
    }

    /// The target of a restore request, checked again: it came over the
    /// network.
    pub fn from_request(target: Option<&str>) -> Result<Target, String> {
        match target {
            None => Ok(Target::InPlace),
            Some(dir) if Path::new(dir).is_absolute() && !dir.split('/').any(|c| c == "..") => {
                Ok(Target::Dir(PathBuf::from(dir)))
            }
            Some(dir) => Err(format!(
                "refusing restore target {dir:?}: not a plain absolute path"
            )),
        }
    }

    /// The directory restic restores into.
    pub fn dir(&self) -> &Path {
        match self {
            Target::Dir(dir) => dir,
            Target::InPlace => Path::new("/"),
        }
    }
}

/// One dataset to restore: the atoms of it that matched.
pub type Item = RestoreItem;

/// The newest version of each atom matching `patterns`.
pub fn plan(
    metadb: &Metadb,
    patterns: &[String],
    host: Option<&str>,
    older_than: Option<&str>,
) -> Result<Vec<Item>, String> {
    let older_than = older_than
        .map(|t| time::parse_time(t, chrono::Utc::now()).map(time::format))
        .transpose()?;
    let mut items: Vec<Item> = Vec::new();
    for pattern in patterns {
        let request = FindRequest {
            pattern: pattern.clone(),
            host: host.map(String::from),
            num_versions: Some(1),
            older_than: older_than.clone(),
        };
        for backup in metadb.find_atoms(&request).map_err(|e| e.to_string())? {
            for dataset in &backup.datasets {
                add(&mut items, &backup, dataset);
            }
        }
    }
    // Another pattern may have matched an atom in an older dataset too.
    let mut newest: Vec<(String, String)> = Vec::new();
    items.sort_by(|a, b| b.backup.timestamp.cmp(&a.backup.timestamp));
    for item in &mut items {
        item.dataset.atoms.retain(|atom| {
            if newest.iter().any(|(name, _)| *name == atom.name) {
                return false;
            }
            newest.push((atom.name.clone(), item.dataset.id.clone()));
            true
        });
    }
    items.retain(|item| !item.dataset.atoms.is_empty());
    items.sort_by(|a, b| a.dataset.atoms[0].name.cmp(&b.dataset.atoms[0].name));
    Ok(items)
}

fn add(items: &mut Vec<Item>, backup: &Backup, dataset: &Dataset) {
    match items.iter_mut().find(|i| i.dataset.id == dataset.id) {
        Some(item) => {
            for atom in &dataset.atoms {
                if !item.dataset.atoms.iter().any(|a| a.name == atom.name) {
                    item.dataset.atoms.push(atom.clone());
                }
            }
        }
        None => items.push(Item {
            backup: Backup {
                datasets: Vec::new(),
                ..backup.clone()
            },
            dataset: dataset.clone(),
        }),
    }
}

/// How a restore plan went.
pub struct Outcome {
    pub total: usize,
    pub failed: usize,
}

impl Outcome {
    /// One line for logs and restore request status.
    pub fn summary(&self) -> String {
        match self.failed {
            0 => format!("restored {} atoms", self.total),
            n => format!(
                "restored {} of {} atoms; {n} failed",
                self.total - n,
                self.total
            ),
        }
    }
}

/// Restores `items`, up to `queue_config.concurrency` datasets at a time,
/// logging each failure. `track` registers each job's supervisor with
/// whoever may have to stop it, and says if that already happened.
pub fn carry_out(
    config: &Config,
    items: &[Item],
    target: &Target,
    track: &(dyn Fn(&Supervisor) -> Option<String> + Sync),
) -> Outcome {
    let repo = Repo::new(config.repository.clone());
    let queue = Mutex::new(items.iter());
    let failed = Mutex::new(0);
    thread::scope(|scope| {
        for _ in 0..config.concurrency {
            scope.spawn(|| loop {
                let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
                let Some(item) = next else { break };
                let sup = Supervisor::new(
                    config.priority,
                    format!("{} {}", item.dataset.source, item.backup.id),
                );
                let result = match track(&sup) {
                    Some(reason) => Err(reason),
                    None => restore(item, config, &repo, target, &sup),
                };
                if let Err(e) = result {
                    let names: Vec<&str> =
                        item.dataset.atoms.iter().map(|a| a.name.as_str()).collect();
                    log::error!(
                        "restore of {} (backup {}) failed: {e}",
                        names.join(" "),
                        item.backup.id
                    );
                    *failed.lock().unwrap_or_else(PoisonError::into_inner) +=
                        item.dataset.atoms.len();
                }
            });
        }
    });
    Outcome {
        total: items.iter().map(|i| i.dataset.atoms.len()).sum(),
        failed: failed.into_inner().unwrap_or_else(PoisonError::into_inner),
    }
}

/// Restores one planned dataset.
pub fn restore(
    item: &Item,
    config: &Config,
    repo: &Repo,
    target: &Target,
    sup: &Supervisor,
) -> Result<(), String> {
    let dataset = &item.dataset;
    let source = config.sources.iter().find(|s| s.name == dataset.source).ok_or_else(|| {
        format!(
            "source {:?} is not in this host's configuration: add it, so that its handler and hooks are known",
            dataset.source
        )
    })?;
    for atom in &dataset.atoms {
        name::validate(&atom.name).map_err(|e| format!("refusing record: atom {e}"))?;
    }
    let atom_names: Vec<&str> = dataset.atoms.iter().map(|a| a.name.as_str()).collect();
    let atom_names = atom_names.join(" ");
    let target_dir = target.dir().to_string_lossy().into_owned();
    let hook_env = [
        ("BACKUP_ID", item.backup.id.as_str()),
        ("DATASET_NAME", dataset.source.as_str()),
        ("ATOM_NAMES", atom_names.as_str()),
        ("RESTORE_TARGET", target_dir.as_str()),
    ];
    if let Some(pre) = &source.hooks.pre_restore {
        sup.run_shell(pre, &hook_env, "pre_restore_command")
            .map_err(|e| e.to_string())?;
    }
    let snapshot = SnapshotRef::of(dataset);
    match &source.handler {
        Handler::File(_) => {
            let paths = dataset
                .atoms
                .iter()
                .map(checked_path)
                .collect::<Result<Vec<_>, _>>()?;
            if let Target::Dir(dir) = target {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            repo.restore(sup, &snapshot, target.dir(), &paths)
                .map_err(|e| e.to_string())?;
        }
        Handler::Pipe(pipe) => {
            let command = pipe
                .restore_command
                .as_deref()
                .ok_or_else(|| format!("source {:?} has no restore_command", source.name))?;
            for atom in &dataset.atoms {
                stream_back(
                    item,
                    source,
                    atom,
                    command,
                    repo,
                    &snapshot,
                    &target_dir,
                    sup,
                )?;
            }
        }
    }
    if let Some(post) = &source.hooks.post_restore {
        sup.run_shell(post, &hook_env, "post_restore_command")
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A file atom's path as recorded, refused unless absolute and free of `..`.
fn checked_path(atom: &Atom) -> Result<&str, String> {
    let path = atom
        .path
        .as_deref()
        .ok_or_else(|| format!("refusing record: atom {} has no path", atom.name))?;
    let p = Path::new(path);
    if !p.is_absolute()
        || p.components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(format!(
            "refusing record: atom {} has unsafe path {path:?}",
            atom.name
        ));
    }
    Ok(path)
}

/// Streams a pipe atom from `restic dump` straight into `restore_command`.
#[allow(clippy::too_many_arguments)]
fn stream_back(
    item: &Item,
    source: &crate::source::Source,
    atom: &Atom,
    command: &str,
    repo: &Repo,
    snapshot: &SnapshotRef,
    target_dir: &str,
    sup: &Supervisor,
) -> Result<(), String> {
    let short = atom
        .name
        .strip_prefix(&format!("{}/", source.name))
        .unwrap_or(&atom.name);
    let vars = [
        ("atom.name", short),
        ("atom.full_name", atom.name.as_str()),
        ("atom.path", atom.path.as_deref().unwrap_or("")),
        ("dataset.name", atom.name.as_str()),
        ("backup.id", item.backup.id.as_str()),
        ("host", item.backup.host.as_str()),
    ];
    let command = shell::substitute(command, &vars)?;
    let mut dump = repo
        .dump(sup, snapshot, &atom.name)
        .map_err(|e| e.to_string())?;
    let Some(data) = dump.child().stdout.take() else {
        return Err("restic dump has no stdout".into());
    };
    let consumer = {
        let mut cmd = shell::sh(&command);
        cmd.stdin(Stdio::from(data))
            .stdout(Stdio::piped())
            .env("ATOM_NAME", &atom.name)
            .env("BACKUP_ID", &item.backup.id)
            .env("RESTORE_TARGET", target_dir);
        sup.spawn(&mut cmd, "restore_command", Stop::Terminate)
    };
    let mut consumer = match consumer {
        Ok(consumer) => consumer,
        Err(e) => {
            dump.kill();
            let _ = dump.wait();
            return Err(e.to_string());
        }
    };
    let stdout = consumer
        .child()
        .stdout
        .take()
        .map(|pipe| sup.log_lines(pipe, "restore_command"));
    let consumed = consumer.wait();
    if consumed.is_err() {
        dump.kill();
    }
    let dumped = dump.wait();
    if let Some(handle) = stdout {
        let _ = handle.join();
    }
    match (dumped, consumed) {
        (Ok(_), Ok(_)) => Ok(()),
        (Err(e), _) => Err(format!("atom {}: {e}", atom.name)),
        (Ok(_), Err(e)) => Err(format!("atom {}: {e}", atom.name)),
    }
}
