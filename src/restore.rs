//! Restoring atoms by name: resolving patterns into a plan (the newest
//! version of each matching atom, from one host or across hosts) and
//! carrying out one planned dataset with its handler and hooks. Paths that
//! come from the metadb are checked again here before restic sees them.

use crate::config::Config;
use crate::copy::Reader;
use crate::count::count;
use crate::handler::Handler;
use crate::metadb::Metadb;
use crate::model::{Atom, Backup, Dataset, FindRequest, RestoreItem};
use crate::shell::{self, Stop, Supervisor};
use crate::{hook, name, time};
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

/// The newest version of the one atom `pattern` matches, and its dataset;
/// an error names what it matched otherwise.
pub fn one(
    metadb: &Metadb,
    pattern: &str,
    host: Option<&str>,
    older_than: Option<&str>,
) -> Result<(Item, Atom), String> {
    let items = plan(metadb, &[pattern.to_string()], host, older_than)?;
    let mut atoms = items
        .iter()
        .flat_map(|item| item.dataset.atoms.iter().map(move |atom| (item, atom)));
    match (atoms.next(), atoms.next()) {
        (None, _) => Err(format!("no recorded atom matches {pattern}")),
        (Some((item, atom)), None) => Ok((item.clone(), atom.clone())),
        (Some(_), Some(_)) => {
            let names: Vec<&str> = items
                .iter()
                .flat_map(|i| i.dataset.atoms.iter().map(|a| a.name.as_str()))
                .collect();
            Err(format!(
                "{pattern} matches {} atoms: {}; name one",
                names.len(),
                names.join(" ")
            ))
        }
    }
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
            0 => format!("restored {}", count(self.total, "atom")),
            n => format!(
                "restored {} of {}; {n} failed",
                self.total - n,
                count(self.total, "atom")
            ),
        }
    }
}

/// Restores `items` (only `parts` of each file atom, if any), read as
/// `reader` says, up to `queue_config.concurrency` datasets at a time,
/// logging each failure. `track` registers each job's supervisor with
/// whoever may have to stop it, and says if that already happened.
pub fn carry_out(
    config: &Config,
    reader: &Reader,
    items: &[Item],
    target: &Target,
    parts: &[String],
    track: &(dyn Fn(&Supervisor) -> Option<String> + Sync),
) -> Outcome {
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
                    None => restore(item, config, reader, target, parts, &sup),
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

/// What restoring `atom` of `item` will touch, for the plan: where a file
/// atom's files land, or the command a pipe atom's data is fed to (the live
/// service). `config` is the executing host's configuration, when known
/// here; for a pipe atom restored by another host's agent, `remote` names it.
pub fn destination(
    config: &Config,
    remote: Option<&str>,
    item: &Item,
    atom: &Atom,
    target: &Target,
) -> String {
    let dataset = &item.dataset;
    let files_to = |on: &str| match checked_path(atom) {
        Ok(None) => format!("nothing: atom {} has no recorded path", atom.name),
        Ok(Some(path)) => {
            let path = target.dir().join(path.trim_start_matches('/'));
            format!("files to {}{on}", path.display())
        }
        Err(e) => e,
    };
    if let Some(host) = remote {
        return match atom.path {
            Some(_) => files_to(&format!(" on {host}")),
            None => format!(
                "the live service: {host}'s restore_command of source {}",
                dataset.source
            ),
        };
    }
    let Some(source) = config.sources.iter().find(|s| s.name == dataset.source) else {
        return format!("nothing: source {} is not configured here", dataset.source);
    };
    if atom.path.is_some() {
        return files_to("");
    }
    let Handler::Pipe(pipe) = &source.handler else {
        return format!("nothing: source {} is not a pipe source here", source.name);
    };
    let Some(command) = &pipe.restore_command else {
        return format!("nothing: source {} has no restore_command", source.name);
    };
    let target_dir = target.dir().to_string_lossy();
    let atoms = std::slice::from_ref(atom);
    let dataset_name = source.handler.dataset_name(&source.name, atoms);
    let scope = hook::Scope {
        backup_id: &item.backup.id,
        host: &item.backup.host,
        source: &source.name,
        dataset: &dataset_name,
        atoms,
        restore_target: Some(&target_dir),
    };
    match shell::substitute(command, &hook::variables(&scope, atom)) {
        Ok(command) => format!("the live service, fed to restore_command: {command}"),
        Err(e) => e,
    }
}

/// Restores one planned dataset; only `parts` of its file atoms if any.
pub fn restore(
    item: &Item,
    config: &Config,
    reader: &Reader,
    target: &Target,
    parts: &[String],
    sup: &Supervisor,
) -> Result<(), String> {
    let dataset = &item.dataset;
    let source = config.sources.iter().find(|s| s.name == dataset.source).ok_or_else(|| {
        format!(
            "source {:?} is not in this host's configuration: add it, so that its handler and hooks are known",
            dataset.source
        )
    })?;
    // Records come from the metadb: check every name and path, whatever
    // the handler, before a hook or command sees them.
    for atom in &dataset.atoms {
        name::validate(&atom.name).map_err(|e| format!("refusing record: atom {e}"))?;
        checked_path(atom)?;
    }
    let target_dir = target.dir().to_string_lossy().into_owned();
    let dataset_name = source.handler.dataset_name(&source.name, &dataset.atoms);
    let scope = hook::Scope {
        backup_id: &item.backup.id,
        host: &item.backup.host,
        source: &source.name,
        dataset: &dataset_name,
        atoms: &dataset.atoms,
        restore_target: Some(&target_dir),
    };
    let hook_env = hook::environment(&scope, None);
    if let Some(pre) = &source.hooks.pre_restore {
        sup.run_shell(pre, &hook_env, "pre_restore_command")
            .map_err(|e| e.to_string())?;
    }
    match &source.handler {
        Handler::File(_) => {
            let paths = dataset
                .atoms
                .iter()
                .map(|atom| {
                    checked_path(atom)?.ok_or_else(|| {
                        format!("refusing record: file atom {} has no path", atom.name)
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if let Target::Dir(dir) = target {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            reader
                .read(dataset, |repo, snapshot| {
                    repo.restore(sup, snapshot, target.dir(), &paths, parts)
                })
                .map_err(|e| e.to_string())?;
            // restic restores nothing, and says nothing, for a path that is
            // not in the snapshot; nor, with parts, for parts not in an atom,
            // whose directory it then does not create either.
            let missing: Vec<&str> = paths
                .iter()
                .copied()
                .filter(|p| {
                    let restored = target.dir().join(p.trim_start_matches('/'));
                    restored.symlink_metadata().is_err()
                })
                .collect();
            if !missing.is_empty() {
                let what = match parts {
                    [] => String::new(),
                    _ => format!(" (of --path {})", parts.join(" ")),
                };
                return Err(format!(
                    "nothing restored{what} at {} under {}: not in snapshot {}",
                    missing.join(" "),
                    target_dir,
                    dataset.snapshot_id
                ));
            }
        }
        Handler::Pipe(pipe) => {
            let command = pipe
                .restore_command
                .as_deref()
                .ok_or_else(|| format!("source {:?} has no restore_command", source.name))?;
            for atom in &dataset.atoms {
                stream_back(item, &scope, atom, command, reader, sup)?;
            }
        }
    }
    if let Some(post) = &source.hooks.post_restore {
        sup.run_shell(post, &hook_env, "post_restore_command")
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// An atom's path as recorded (for any handler), refused unless absolute
/// and free of `..`: it becomes a restic include, a value in a restore
/// command, or a place to read a drill's files back from (`verify`), and
/// must not lead outside what was backed up.
pub fn checked_path(atom: &Atom) -> Result<Option<&str>, String> {
    let Some(path) = atom.path.as_deref() else {
        return Ok(None);
    };
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
    Ok(Some(path))
}

/// Streams a pipe atom from `restic dump` straight into `restore_command`.
fn stream_back(
    item: &Item,
    scope: &hook::Scope,
    atom: &Atom,
    command: &str,
    reader: &Reader,
    sup: &Supervisor,
) -> Result<(), String> {
    let command = shell::substitute(command, &hook::variables(scope, atom))?;
    let mut dump = reader
        .read(&item.dataset, |repo, snapshot| {
            repo.dump(sup, snapshot, &atom.name)
        })
        .map_err(|e| e.to_string())?;
    let Some(data) = dump.child().stdout.take() else {
        return Err("restic dump has no stdout".into());
    };
    let consumer = {
        let mut cmd = shell::sh(&command);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .envs(hook::environment(scope, Some(atom)));
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
    // Counted on the way, so that a short stream is caught; on Linux
    // `io::copy` splices pipe to pipe, without the data passing through
    // tabacco. The consumer sees EOF when the copy ends.
    let copy = consumer.child().stdin.take().map(|mut input| {
        let mut data = data;
        thread::spawn(move || std::io::copy(&mut data, &mut input))
    });
    let consumed = consumer.wait();
    if consumed.is_err() {
        dump.kill();
    }
    let dumped = dump.wait();
    if let Some(handle) = stdout {
        let _ = handle.join();
    }
    let copied = copy.map(|handle| handle.join());
    match (dumped, consumed) {
        (Ok(_), Ok(_)) => {}
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => return Err(format!("atom {}: {e}", atom.name)),
        // Either may have ended the other: say both, the consumer first
        // (a failed consumer gets restic dump killed).
        (Err(dump), Err(consumer)) => {
            return Err(format!("atom {}: {consumer}; {dump}", atom.name))
        }
    }
    let copied = match copied {
        Some(Ok(Ok(bytes))) => bytes,
        Some(Ok(Err(e))) => {
            return Err(format!(
                "atom {}: restore_command stopped reading: {e}",
                atom.name
            ))
        }
        Some(Err(_)) | None => return Err(format!("atom {}: the stream was lost", atom.name)),
    };
    // A pipe dataset holds one atom, and restic refuses an empty stream:
    // its total_bytes is the stream's size, and 0 means unknown (reindex).
    let recorded = item.dataset.total_bytes;
    if item.dataset.atoms.len() == 1 && recorded > 0 && copied != recorded as u64 {
        return Err(format!(
            "atom {}: restic dump streamed {} of the {} recorded",
            atom.name,
            count(copied, "byte"),
            count(recorded, "byte")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_paths_must_be_absolute_and_plain() {
        let atom = |path: Option<&str>| Atom {
            name: "sql/db1".into(),
            path: path.map(String::from),
        };
        assert_eq!(checked_path(&atom(None)), Ok(None));
        assert_eq!(checked_path(&atom(Some("/srv/db"))), Ok(Some("/srv/db")));
        for bad in ["../escaped", "db", "/srv/../etc", "/srv/db/..", ""] {
            assert!(checked_path(&atom(Some(bad))).is_err(), "{bad:?} accepted");
        }
    }
}
