//! Restoring atoms by name: resolving patterns into a plan (the newest
//! version of each matching atom, of this host, of a named one or of any,
//! see [`Whose`]), each of its datasets checked as it arrives from the
//! metadb ([`Checked`]), and carrying out one planned dataset: each atom to
//! where [`destination`] sends it, with its source's hooks if the source
//! is configured here.

pub mod destination;
mod error;

pub use error::{Candidate, Error};

use crate::backup::copy::Reader;
use crate::base::count::count;
use crate::base::glob;
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

/// How many atoms with no record of this host an error lists candidates
/// of.
const CANDIDATE_ATOMS: usize = 3;

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

/// Whose records a restore by name (and `dump`, `ls`) picks from.
#[derive(Clone, Copy, Debug)]
pub enum Whose<'a> {
    /// `--host H`: that host's.
    Host(&'a str),
    /// Neither `--host` nor `--any-host`: those of this host, the one
    /// restored on; an atom that only other hosts recorded is an error
    /// naming them, so that no other host's record is taken unasked.
    Own(&'a str),
    /// `--any-host`: the newest of any host's.
    Any,
}

impl<'a> Whose<'a> {
    /// As `--host` and `--any-host` say, on host `own`.
    pub fn new(host: Option<&'a str>, any_host: bool, own: &'a str) -> Whose<'a> {
        match (host, any_host) {
            (Some(host), _) => Whose::Host(host),
            (None, true) => Whose::Any,
            (None, false) => Whose::Own(own),
        }
    }
}

/// The newest version of each atom matching `patterns`.
pub fn plan(
    metadb: &Metadb,
    patterns: &[String],
    whose: Whose,
    older_than: Option<&str>,
) -> Result<Vec<Planned>, Error> {
    let items = newest(metadb, patterns, whose, older_than)?;
    Ok(items.into_iter().map(Checked::new).collect())
}

/// The newest version of each atom matching `patterns`, as recorded, of
/// the hosts `whose` names.
fn newest(
    metadb: &Metadb,
    patterns: &[String],
    whose: Whose,
    older_than: Option<&str>,
) -> Result<Vec<RestoreItem>, Error> {
    let older_than = older_than
        .map(|t| time::parse_time(t, chrono::Utc::now()).map(time::format))
        .transpose()
        .map_err(Error::Time)?;
    let find = |host| find(metadb, patterns, host, older_than.as_deref());
    let own = match whose {
        Whose::Host(host) => return find(Some(host)),
        Whose::Any => return find(None),
        Whose::Own(own) => own,
    };
    let mine = find(Some(own))?;
    let names = |items: &[RestoreItem]| -> Vec<String> {
        let names = items.iter().flat_map(|i| &i.dataset.atoms);
        names.map(|a| a.name.clone()).collect()
    };
    let known = names(&mine);
    let mut theirs = names(&find(None)?);
    theirs.retain(|name| !known.contains(name));
    if theirs.is_empty() {
        return Ok(mine);
    }
    theirs.sort();
    theirs.dedup();
    let mut atoms = Vec::new();
    for name in theirs.iter().take(CANDIDATE_ATOMS) {
        let candidates = candidates(metadb, name, older_than.as_deref())?;
        atoms.push((name.clone(), candidates));
    }
    Err(Error::NotOwn {
        host: own.to_string(),
        more: theirs.len() - atoms.len(),
        atoms,
    })
}

/// The newest version of each atom matching `patterns`, of `host` or of
/// any, strictly older than `older_than` (RFC 3339) if given.
fn find(
    metadb: &Metadb,
    patterns: &[String],
    host: Option<&str>,
    older_than: Option<&str>,
) -> Result<Vec<RestoreItem>, Error> {
    let mut items: Vec<RestoreItem> = Vec::new();
    for pattern in patterns {
        let request = FindRequest {
            pattern: pattern.clone(),
            host: host.map(String::from),
            num_versions: Some(1),
            older_than: older_than.map(String::from),
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

/// Each host's newest version of atom `name`, newest first.
fn candidates(
    metadb: &Metadb,
    name: &str,
    older_than: Option<&str>,
) -> Result<Vec<Candidate>, Error> {
    let request = FindRequest {
        pattern: glob::literal(name),
        host: None,
        num_versions: None,
        older_than: older_than.map(String::from),
    };
    let mut candidates: Vec<Candidate> = Vec::new();
    // Backups come newest first: a host's first is its newest.
    for backup in metadb.find_atoms(&request)? {
        if candidates.iter().any(|c| c.host == backup.host) {
            continue;
        }
        if let Some(dataset) = backup.datasets.first() {
            candidates.push(Candidate {
                host: backup.host.clone(),
                timestamp: backup.timestamp.clone(),
                snapshot_id: dataset.snapshot_id.clone(),
            });
        }
    }
    Ok(candidates)
}

/// The newest version of the one atom `pattern` matches, checked, with its
/// dataset holding it alone; an error names what it matched otherwise.
pub fn one(
    metadb: &Metadb,
    pattern: &str,
    whose: Whose,
    older_than: Option<&str>,
) -> Result<(Checked, Atom), Error> {
    let items = newest(metadb, &[pattern.to_string()], whose, older_than)?;
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
    // Ids are a host's own: another host's dataset of the same id is
    // another item.
    let same = |i: &&mut RestoreItem| i.dataset.id == dataset.id && i.backup.host == backup.host;
    match items.iter_mut().find(same) {
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

/// How a plan is restored, as the command line or a restore request says.
pub struct Options<'a> {
    pub target: &'a Target,
    /// Only these parts of each file atom (`--path`), when any.
    pub parts: &'a [String],
    /// `--overwrite`: replace files and links in the way.
    pub overwrite: bool,
    /// `--as NAME`: the name a pipe atom is restored as in place.
    pub rename: Option<&'a str>,
}

/// Restores the `planned` datasets as `options` say, read as `reader`
/// says, up to `queue_config.concurrency` at a time, logging each failure
/// (a refused record's too). `track` registers each job's supervisor with
/// whoever may have to stop it, and says if that already happened.
pub fn carry_out(
    config: &Config,
    reader: &Reader,
    planned: &[Planned],
    options: &Options,
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
            (None, Ok(checked)) => restore(checked, config, reader, options, &sup),
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

/// What the plan says of one atom: what restoring it does, or why it
/// cannot be restored, in words.
pub enum Said {
    Does(String),
    Cannot(String),
}

/// What the plan says restoring each atom of `planned` to `target` does,
/// in the dataset's order, and whether it can: see
/// [`destination::describe`]. `config` is this host's; for a restore by
/// another host's agent, `remote` names it, and its configuration decides.
pub fn describe(
    config: &Config,
    remote: Option<&str>,
    planned: &Planned,
    target: &Target,
    rename: Option<&str>,
) -> Vec<Said> {
    let item = match planned {
        Ok(checked) => checked.item(),
        Err(refused) => {
            let atoms = refused.item.dataset.atoms.iter();
            return atoms.map(|_| Said::Cannot(refused.to_string())).collect();
        }
    };
    let source = &item.dataset.source;
    if let Some(host) = remote {
        let atoms = item.dataset.atoms.iter();
        let said = |atom| destination::describe_remote(host, source, atom, target);
        return atoms.map(|atom| Said::Does(said(atom))).collect();
    }
    let course = destination::course(config, item, target, rename);
    let hooks = match course.source {
        None => format!("; no hooks: source {source} is not configured here"),
        Some(_) => String::new(),
    };
    let said = |d: &Result<_, _>| destination::describe(d, target);
    let atoms = course.atoms.iter();
    atoms
        .map(|d| match d {
            Ok(_) => Said::Does(said(d) + &hooks),
            Err(_) => Said::Cannot(said(d)),
        })
        .collect()
}

/// The backup `item` comes from, as its commands see it.
fn context(item: &RestoreItem) -> Context<'_> {
    Context {
        backup_id: &item.backup.id,
        host: &item.backup.host,
    }
}

/// Restores one planned dataset as `options` say, with its source's hooks
/// if that is configured here.
fn restore(
    checked: &Checked,
    config: &Config,
    reader: &Reader,
    options: &Options,
    sup: &Supervisor,
) -> Result<(), Error> {
    let item = checked.item();
    let dataset = &item.dataset;
    let course = destination::course(config, item, options.target, options.rename);
    let destinations = course
        .atoms
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::Unplaceable)?;
    let context = context(item);
    let hooks = course.source.map(|source| {
        let scope =
            source
                .handler
                .scope(&source.name, &context, &dataset.atoms, Some(options.target));
        (&source.hooks, hook::environment(&scope, None))
    });
    if let Some((hooks, env)) = &hooks {
        if let Some(pre) = &hooks.pre_restore {
            sup.run_shell(pre, env, "pre_restore_command")?;
        }
    }
    // The reader picks the repository and names the snapshot there; the
    // handler restores from what it is given.
    reader.read(dataset, |repo, snapshot| {
        handler::restore(&handler::Restoring {
            repo,
            snapshot,
            sup,
            checked,
            destinations: &destinations,
            parts: options.parts,
            overwrite: options.overwrite,
        })
    })?;
    if let Some((hooks, env)) = &hooks {
        if let Some(post) = &hooks.post_restore {
            sup.run_shell(post, env, "post_restore_command")?;
        }
    }
    Ok(())
}
