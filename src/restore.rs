//! Restoring atoms by name: resolving patterns into a plan (the newest
//! version of each matching atom, from one host or across hosts), each of
//! its datasets checked as it arrives from the metadb ([`Checked`]), and
//! carrying out one planned dataset with its handler and hooks.

mod error;

pub use error::Error;

use crate::backup::copy::Reader;
use crate::base::count::count;
use crate::base::queue;
use crate::base::time;
use crate::config::Config;
use crate::handler::hook;
use crate::handler::{self, Context};
use crate::metadb::Metadb;
use crate::process::shell::Supervisor;
use crate::wire::checked::{Checked, Refused};
use crate::wire::model::{Atom, Backup, Dataset, FindRequest, RestoreItem};
use crate::wire::target::Target;

/// One dataset to restore, holding the atoms of it that matched: checked,
/// or refused with why.
pub type Planned = Result<Checked, Refused>;

/// The record of a planned dataset, as received.
pub fn item_of(planned: &Planned) -> &RestoreItem {
    match planned {
        Ok(checked) => checked.item(),
        Err(refused) => &refused.item,
    }
}

/// The newest version of each atom matching `patterns`.
pub fn plan(
    metadb: &Metadb,
    patterns: &[String],
    host: Option<&str>,
    older_than: Option<&str>,
) -> Result<Vec<Planned>, Error> {
    let items = newest(metadb, patterns, host, older_than)?;
    Ok(items.into_iter().map(Checked::new).collect())
}

/// The newest version of each atom matching `patterns`, as recorded.
fn newest(
    metadb: &Metadb,
    patterns: &[String],
    host: Option<&str>,
    older_than: Option<&str>,
) -> Result<Vec<RestoreItem>, Error> {
    let older_than = older_than
        .map(|t| time::parse_time(t, chrono::Utc::now()).map(time::format))
        .transpose()
        .map_err(Error::Time)?;
    let mut items: Vec<RestoreItem> = Vec::new();
    for pattern in patterns {
        let request = FindRequest {
            pattern: pattern.clone(),
            host: host.map(String::from),
            num_versions: Some(1),
            older_than: older_than.clone(),
        };
        for backup in metadb.find_atoms(&request)? {
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

/// The newest version of the one atom `pattern` matches, checked, with its
/// dataset holding it alone; an error names what it matched otherwise.
pub fn one(
    metadb: &Metadb,
    pattern: &str,
    host: Option<&str>,
    older_than: Option<&str>,
) -> Result<(Checked, Atom), Error> {
    let items = newest(metadb, &[pattern.to_string()], host, older_than)?;
    let mut atoms = items
        .iter()
        .flat_map(|item| item.dataset.atoms.iter().map(move |atom| (item, atom)));
    match (atoms.next(), atoms.next()) {
        (None, _) => Err(Error::NoMatch {
            pattern: pattern.to_string(),
        }),
        (Some((item, atom)), None) => {
            Checked::one(&item.backup, &item.dataset, atom).map_err(Error::Refused)
        }
        (Some(_), Some(_)) => Err(Error::Ambiguous {
            pattern: pattern.to_string(),
            names: items
                .iter()
                .flat_map(|i| i.dataset.atoms.iter().map(|a| a.name.clone()))
                .collect(),
        }),
    }
}

fn add(items: &mut Vec<RestoreItem>, backup: &Backup, dataset: &Dataset) {
    match items.iter_mut().find(|i| i.dataset.id == dataset.id) {
        Some(item) => {
            for atom in &dataset.atoms {
                if !item.dataset.atoms.iter().any(|a| a.name == atom.name) {
                    item.dataset.atoms.push(atom.clone());
                }
            }
        }
        None => items.push(RestoreItem {
            backup: Backup {
                datasets: Vec::new(),
                ..backup.clone()
            },
            dataset: dataset.clone(),
        }),
    }
}

/// How a restore plan went: how many atoms it held, and how many failed.
pub struct Tally {
    pub total: usize,
    pub failed: usize,
}

impl Tally {
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

/// Restores the `planned` datasets (only `parts` of each file atom, if
/// any), read as `reader` says, up to `queue_config.concurrency` at a
/// time, logging each failure (a refused record's too). `track` registers
/// each job's supervisor with whoever may have to stop it, and says if that
/// already happened.
pub fn carry_out(
    config: &Config,
    reader: &Reader,
    planned: &[Planned],
    target: &Target,
    parts: &[String],
    track: &(dyn Fn(&Supervisor) -> Option<String> + Sync),
) -> Tally {
    let failed = queue::map(config.concurrency, planned, |planned| {
        let item = item_of(planned);
        let sup = Supervisor::new(
            config.priority,
            format!("{} {}", item.dataset.source, item.backup.id),
        );
        let result = match (track(&sup), planned) {
            (Some(reason), _) => Err(Error::Stopped(reason)),
            (None, Err(refused)) => Err(Error::Refused(refused.clone())),
            (None, Ok(checked)) => restore(checked, config, reader, target, parts, &sup),
        };
        let Err(e) = result else { return 0 };
        let names: Vec<&str> = item.dataset.atoms.iter().map(|a| a.name.as_str()).collect();
        log::error!(
            "restore of {} (backup {}) failed: {e}",
            names.join(" "),
            item.backup.id
        );
        item.dataset.atoms.len()
    });
    Tally {
        total: planned.iter().map(|p| item_of(p).dataset.atoms.len()).sum(),
        failed: failed.into_iter().sum(),
    }
}

/// What restoring `atom` of `planned` will touch, for the plan: where a
/// file atom's files land, or the command a pipe atom's data is fed to (the
/// live service); nothing, for a refused record. `config` is the executing
/// host's configuration, when known here; for a pipe atom restored by
/// another host's agent, `remote` names it.
pub fn destination(
    config: &Config,
    remote: Option<&str>,
    planned: &Planned,
    atom: &Atom,
    target: &Target,
) -> String {
    let item = match planned {
        Ok(checked) => checked.item(),
        Err(refused) => return refused.to_string(),
    };
    let dataset = &item.dataset;
    let files_to = |on: &str| match &atom.path {
        None => format!("nothing: atom {} has no recorded path", atom.name),
        Some(path) => format!("files to {}{on}", target.place(path).display()),
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
    let atoms = std::slice::from_ref(atom);
    let context = context(item);
    let scope = source
        .handler
        .scope(&source.name, &context, atoms, Some(target));
    match source.handler.restore_command(&scope, atom) {
        Ok(command) => format!("the live service, fed to restore_command: {command}"),
        Err(e) => format!("nothing: {e}"),
    }
}

/// The backup `item` comes from, as its commands see it.
fn context(item: &RestoreItem) -> Context<'_> {
    Context {
        backup_id: &item.backup.id,
        host: &item.backup.host,
    }
}

/// Restores one planned dataset; only `parts` of its file atoms if any.
fn restore(
    checked: &Checked,
    config: &Config,
    reader: &Reader,
    target: &Target,
    parts: &[String],
    sup: &Supervisor,
) -> Result<(), Error> {
    let item = checked.item();
    let dataset = &item.dataset;
    let source = config
        .sources
        .iter()
        .find(|s| s.name == dataset.source)
        .ok_or_else(|| Error::NotConfigured {
            name: dataset.source.clone(),
        })?;
    let context = context(item);
    let scope = source
        .handler
        .scope(&source.name, &context, &dataset.atoms, Some(target));
    let hook_env = hook::environment(&scope, None);
    if let Some(pre) = &source.hooks.pre_restore {
        sup.run_shell(pre, &hook_env, "pre_restore_command")?;
    }
    // The reader picks the repository and names the snapshot there; the
    // handler restores from what it is given.
    reader.read(dataset, |repo, snapshot| {
        source.handler.restore(&handler::Restoring {
            repo,
            snapshot,
            sup,
            checked,
            target,
            parts,
            scope: &scope,
        })
    })?;
    if let Some(post) = &source.hooks.post_restore {
        sup.run_shell(post, &hook_env, "post_restore_command")?;
    }
    Ok(())
}
