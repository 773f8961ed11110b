//! Copies: further repositories (agent.yml's `copies:`) that each source's
//! snapshots are copied into with `restic copy` after its datasets are
//! recorded, and the choice of a repository to read a dataset back from
//! (the primary, else a copy that holds it). What a copy holds is recorded
//! in the metadb per dataset; `prune` applies each copy's retention.
//!
//! Configured as [`Copy`]; used by `job` after a backup, by
//! `restore`, `verify`, `dump` and `ls` to read, and by `prune`. A copy is
//! created by `tabacco init`, or by the first backup under `init: auto`.

use crate::base::count::count;
use crate::base::visible::visible;
use crate::config::repositories::{Copy, Further};
use crate::handler::Unrestored;
use crate::init::Creator;
use crate::metadb::Metadb;
use crate::process::shell::Supervisor;
use crate::report::failure::{Failure, Kind};
use crate::restic::{self, Repo, Repository, SnapshotRef};
use crate::wire::api::{self, DueRequest};
use crate::wire::model::{self, Dataset};
use std::fmt;

/// Most datasets one run copies into one copy; the rest follow at the
/// next runs (a new copy of a long history fills up over several).
const MAX_PER_RUN: u32 = 1000;

/// What copying reads and writes besides the copies: the primary it reads,
/// the metadb that records what each copy holds, and, under `init: auto`,
/// what creates a copy that does not exist yet.
pub struct Copying<'a> {
    pub primary: &'a Repository,
    pub metadb: &'a Metadb,
    pub creator: Option<&'a Creator<'a>>,
}

/// Copies into each of `copies` the datasets of `host`'s `source` it
/// lacks: those `recorded` now, and those an earlier run could not copy
/// (as the metadb knows them), in one `restic copy` per copy, reading the
/// primary; then records what each copy holds. A copy that does not exist
/// is an error, unless `init: auto` creates it. Returns a failure for each
/// copy that failed: its datasets stay recorded in the primary, and are
/// tried again at the next run.
pub fn after_backup(
    copies: &[&Copy],
    into: &Copying,
    host: &str,
    source: &str,
    recorded: &[Dataset],
    sup: &Supervisor,
) -> Vec<Failure> {
    let mut failures = Vec::new();
    for copy in copies {
        if let Err(e) = copy_one(copy, into, host, source, recorded, sup) {
            failures.push(e.context(&format!("copy {}", copy.name)));
        }
    }
    failures
}

fn copy_one(
    copy: &Copy,
    into: &Copying,
    host: &str,
    source: &str,
    recorded: &[Dataset],
    sup: &Supervisor,
) -> Result<(), Failure> {
    let Copying {
        primary, metadb, ..
    } = *into;
    let request = DueRequest {
        host: host.to_string(),
        source: source.to_string(),
        repository: copy.name.clone(),
        limit: MAX_PER_RUN,
    };
    // Without the metadb (its records of this run spooled), this run's.
    let mut ids: Vec<String> = match metadb.due_copies(&request) {
        Ok(due) => due.into_iter().map(|d| d.dataset_id).collect(),
        Err(e) => {
            log::warn!(
                "{}: copy {}: cannot ask the metadb what is missing ({e}); copying this run's datasets only",
                sup.label(),
                copy.name
            );
            Vec::new()
        }
    };
    for dataset in recorded {
        if !ids.contains(&dataset.id) {
            ids.push(dataset.id.clone());
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    let tags: Vec<String> = ids.iter().map(|id| model::snapshot_tag(id)).collect();
    let repo = Repo::new(copy.repository.clone());
    match (repo.copy_from(sup, primary, &tags), into.creator) {
        // Not created yet, or half created (perhaps by another host now).
        (Err(e @ (restic::Error::Missing(_) | restic::Error::Damaged(_))), Some(creator)) => {
            creator.auto(sup, &repo, Some(primary), e)?;
            repo.copy_from(sup, primary, &tags)?;
        }
        (copied, _) => copied?,
    }
    // restic skips what the primary no longer holds, silently: ask the
    // copy what it holds now.
    let held: Vec<String> = repo
        .snapshots(sup, &tags)?
        .into_iter()
        .filter_map(|s| model::datasets_of_tags(&s.tags.unwrap_or_default()))
        .flat_map(|(_, datasets)| datasets.into_iter().map(|d| d.id))
        .filter(|id| ids.contains(id))
        .collect();
    log::info!(
        "{}: copy {}: {} of {} copied",
        sup.label(),
        copy.name,
        count(held.len(), "dataset"),
        ids.len()
    );
    if held.len() < ids.len() {
        let missing: Vec<&str> = ids
            .iter()
            .filter(|id| !held.contains(id))
            .map(String::as_str)
            .collect();
        log::warn!(
            "{}: copy {}: the repository no longer holds datasets {}",
            sup.label(),
            copy.name,
            missing.join(" ")
        );
    }
    if held.is_empty() {
        return Ok(());
    }
    metadb.add_copies(host, &copy.name, &held).map_err(|e| {
        Failure::new(
            Kind::Metadb,
            format!(
                "{} copied but not recorded: {e}",
                count(held.len(), "dataset")
            ),
        )
    })
}

/// Where datasets are read back from (restore, dump, ls, a drill): the
/// repository a record names (by restic id) among those this host is
/// configured for, else the primary, and where it cannot be reached or
/// lacks a dataset's snapshot, a copy that holds it; or one repository
/// picked by name.
pub struct Reader {
    primary: Repo,
    copies: Vec<(String, Repo)>,
    /// `repositories:`: read from, never written.
    further: Vec<(String, Repo)>,
    /// `--repository`: only this one, `primary`, a copy's or a further
    /// repository's name.
    picked: Option<String>,
}

impl Reader {
    /// Reads from `primary`, else from `copies`.
    pub fn new(primary: &Repository, copies: &[Copy]) -> Reader {
        Reader {
            primary: Repo::new(primary.clone()),
            copies: copies
                .iter()
                .map(|c| (c.name.clone(), Repo::new(c.repository.clone())))
                .collect(),
            further: Vec::new(),
            picked: None,
        }
    }

    /// Reads records held in `further` repositories (agent.yml's
    /// `repositories:`) from them too.
    pub fn with_further(self, further: &[Further]) -> Reader {
        let further = further
            .iter()
            .map(|f| (f.name.clone(), Repo::new(f.repository.clone())))
            .collect();
        Reader { further, ..self }
    }

    /// Every repository, by name: the primary, the copies, the further
    /// ones.
    fn all(&self) -> impl Iterator<Item = (&str, &Repo)> {
        let others = self.copies.iter().chain(&self.further);
        std::iter::once((api::PRIMARY, &self.primary))
            .chain(others.map(|(name, repo)| (name.as_str(), repo)))
    }

    /// Makes sure `dataset` can be read here: a repository this host is
    /// configured for has the restic id its record names (learnt with a
    /// `restic cat config` where this host never opened it). A record
    /// naming none, and a repository picked by name, pass.
    pub fn route(&self, sup: &Supervisor, dataset: &Dataset) -> Result<(), Unroutable> {
        let Some(id) = dataset.repository.as_deref() else {
            return Ok(());
        };
        if self.picked.is_some() {
            return Ok(());
        }
        let mut unopened = Vec::new();
        for (name, repo) in self.all() {
            match repo.known_id() {
                Some(known) if known == id => return Ok(()),
                Some(_) => continue,
                None => {}
            }
            match repo.id(sup) {
                Ok(known) if known == id => return Ok(()),
                Ok(_) => {}
                Err(e) => unopened.push((name.to_string(), e)),
            }
        }
        Err(Unroutable {
            id: id.to_string(),
            unopened,
        })
    }

    /// Reads from the one repository `picked` names, if any (an unknown
    /// name is an error naming the known ones).
    pub fn pick(self, picked: Option<&str>) -> Result<Reader, Unknown> {
        let Some(name) = picked else { return Ok(self) };
        if !self.all().any(|(n, _)| n == name) {
            return Err(Unknown {
                name: name.to_string(),
                copies: self.all().skip(1).map(|(n, _)| n.to_string()).collect(),
            });
        }
        Ok(Reader {
            picked: Some(name.to_string()),
            ..self
        })
    }

    /// The repository checks run on: the picked one, else the primary.
    pub fn checked(&self) -> (&str, &Repo) {
        match self.picked.as_deref() {
            Some(name) => self.named(name),
            None => (api::PRIMARY, &self.primary),
        }
    }

    fn named(&self, name: &str) -> (&str, &Repo) {
        self.all()
            .find(|(n, _)| *n == name)
            .unwrap_or((api::PRIMARY, &self.primary))
    }

    /// Runs `read` on the repository to read `dataset` from, with the way
    /// to name its snapshot there (by id in the repository it was backed
    /// up to; by tag in a copy, where `restic copy` gave it another id).
    /// Unless one was picked, that is the repository whose restic id its
    /// record names, if this host knows one, else the primary; where it is
    /// unreachable or lacks the snapshot, each copy that holds the dataset
    /// (as the metadb recorded it; every copy where nothing is recorded)
    /// in turn, saying so in the log.
    pub fn read<T, E: Unread>(
        &self,
        dataset: &Dataset,
        mut read: impl FnMut(&Repo, &SnapshotRef) -> Result<T, E>,
    ) -> Result<T, E> {
        if let Some(name) = self.picked.as_deref() {
            let (name, repo) = self.named(name);
            return read(repo, &snapshot_in(name, dataset));
        }
        let held = dataset.repository.as_deref();
        let first = self
            .all()
            .find(|(_, repo)| held.is_some() && repo.known_id().as_deref() == held)
            .map_or(&self.primary, |(_, repo)| repo);
        let mut failed = match read(first, &SnapshotRef::of(dataset)) {
            Err(e) if is_elsewhere(&e) => e,
            result => return result,
        };
        let recorded =
            |name: &String| dataset.repositories.is_empty() || dataset.repositories.contains(name);
        for (name, repo) in self.copies.iter().filter(|(name, _)| recorded(name)) {
            log::warn!(
                "dataset {} (snapshot {}): {failed}; reading it from copy {name}",
                dataset.id,
                dataset.snapshot_id
            );
            failed = match read(repo, &SnapshotRef::by_tag(dataset)) {
                Err(e) if is_elsewhere(&e) => e,
                result => return result,
            };
        }
        Err(failed)
    }
}

/// Why a record cannot be read on this host: the repository holding it
/// (by restic id) is none of those it is configured for, or those that
/// might be did not open.
#[derive(Debug)]
pub struct Unroutable {
    pub id: String,
    /// The repositories whose id could not be learnt, and why.
    pub unopened: Vec<(String, restic::Error)>,
}

impl Unroutable {
    /// What to tell of `atom` of `host`: the repository, the hosts that
    /// use it (as the metadb says), what to do, and the repositories that
    /// did not open.
    pub fn explain(&self, metadb: &Metadb, atom: &str, host: &str) -> String {
        let short = &self.id[..self.id.len().min(8)];
        let users: Vec<(String, String)> = match metadb.repositories() {
            Ok(known) => known
                .into_iter()
                .filter(|r| r.id == self.id)
                .flat_map(|r| r.users)
                .map(|u| (u.host, u.name))
                .collect(),
            Err(e) => {
                log::warn!("cannot ask which hosts use repository {short}: {e}");
                Vec::new()
            }
        };
        let mut said = format!(
            "{} of host {} is held in repository {short}, which this host is not configured for",
            visible(atom),
            visible(host)
        );
        match users.first() {
            None => said.push_str(" and no host publishes"),
            Some((first, _)) => {
                let named: Vec<String> = users
                    .iter()
                    .map(|(h, n)| format!("{} (as {})", visible(h), visible(n)))
                    .collect();
                said.push_str(&format!(
                    "; hosts using it: {}: restore it with --remote {}, or name it under repositories: in agent.yml",
                    named.join(", "),
                    visible(first)
                ));
            }
        }
        for (name, e) in &self.unopened {
            said.push_str(&format!("; repository {name} did not open: {e}"));
        }
        said
    }
}

/// A repository picked by a name that is neither the primary's nor a
/// configured copy's.
#[derive(Debug)]
pub struct Unknown {
    pub name: String,
    /// The copies' names.
    pub copies: Vec<String>,
}

impl fmt::Display for Unknown {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "no repository named {:?}; configured: {}",
            self.name,
            api::PRIMARY
        )?;
        for name in &self.copies {
            write!(f, " {name}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Unknown {}

/// How to name `dataset`'s snapshot in repository `name`.
fn snapshot_in(name: &str, dataset: &Dataset) -> SnapshotRef {
    match name {
        api::PRIMARY => SnapshotRef::of(dataset),
        _ => SnapshotRef::by_tag(dataset),
    }
}

/// Why [`Reader::read`] read nothing: restic's error where restic failed.
pub trait Unread: std::fmt::Display {
    /// restic's error, if restic failed.
    fn restic(&self) -> Option<&restic::Error>;
}

impl Unread for restic::Error {
    fn restic(&self) -> Option<&restic::Error> {
        Some(self)
    }
}

impl Unread for Unrestored {
    fn restic(&self) -> Option<&restic::Error> {
        match self {
            Unrestored::Restic(e) => Some(e),
            _ => None,
        }
    }
}

/// Whether another repository may have what this one failed to give: it
/// cannot be reached, is not there, does not open, or lacks the snapshot.
fn is_elsewhere(e: &impl Unread) -> bool {
    e.restic().is_some_and(|e| {
        matches!(
            e,
            restic::Error::Unavailable(_) | restic::Error::Missing(_) | restic::Error::Damaged(_)
        ) || e.is_missing_snapshot()
    })
}
