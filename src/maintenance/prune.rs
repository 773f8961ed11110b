//! Retention: forget the snapshots that their sources' policies no longer
//! keep, selected by tabacco's own tags only (nothing else in a shared
//! repository is touched), remove them from the metadb, so that `query`
//! and `restore` never offer a snapshot that no longer exists, and reclaim
//! the space. Used by `tabacco prune` and by the agent's `prune_schedule`.
//!
//! Which snapshots is this host's `maintenance:` ([`Maintenance`]): its
//! own sources' by their policies, or every host's by the policies their
//! plans published (a source whose policy is unknown keeps everything), or
//! none. With a central metadb it runs under the repository's lease
//! ([`crate::maintenance::lease`]).
//!
//! Then, where the repository's prune ran, each copy this host's sources
//! go to is pruned the same way under its own lease (a copy is a
//! repository of its own), by the copy's policy if it has one, else by
//! each source's: this host's sources only, whatever `maintenance:` says,
//! since other hosts' copies are theirs. The metadb learns what each
//! repository still holds.

use crate::backup::tombstone;
use crate::base::count::count;
use crate::base::retention::Retention;
use crate::config::repositories::Copy;
use crate::config::repositories::Maintenance;
use crate::config::Config;
use crate::maintenance::lease::{self, Held, Lease};
use crate::metadb::{self, Metadb};
use crate::process::shell::Supervisor;
use crate::restic::{self, Repo};
use crate::wire::api::PRIMARY;
use crate::wire::model;
use std::fmt;

/// Why a host with `maintenance: false` does not prune.
pub const NEVER: &str =
    "this host has maintenance: false: it never forgets, prunes or checks (see tabacco.yml(5))";

/// What a refused deletion means, and what to do.
const REFUSED: &str = "the repository refuses deletion (append-only?): set maintenance: false on a host that may not delete";

/// Why retention was not applied, or not wholly.
#[derive(Debug)]
pub enum Error {
    /// This host has `maintenance: false`.
    Never,
    /// The sources named are not all configured.
    Select(crate::config::Error),
    Lease(lease::Error),
    /// Pruning copy `name` failed.
    Copy {
        name: String,
        source: Box<Error>,
    },
    /// The metadb could not say the other hosts' policies.
    Policies(metadb::Error),
    /// The metadb could not say which hosts use the repository.
    Users(metadb::Error),
    /// `restic forget` of `host`'s `sources` failed.
    Forget {
        host: String,
        sources: Vec<String>,
        source: restic::Error,
    },
    /// restic could not list what `forget` left.
    Listing(restic::Error),
    /// Snapshots were forgotten, but their records stay in the metadb.
    Unremoved(metadb::Error),
    /// `restic forget` left `count` snapshots it should have removed (an
    /// append-only repository).
    Kept {
        count: usize,
    },
    /// `restic prune` failed.
    Prune(restic::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Never => f.write_str(NEVER),
            Error::Select(e) => write!(f, "{e}"),
            Error::Lease(e) => e.fmt(f),
            Error::Copy { name, source } => write!(f, "copy {name}: {source}"),
            Error::Policies(e) => {
                write!(f, "cannot read the other hosts' retention policies: {e}")
            }
            Error::Users(e) => write!(f, "cannot read which hosts use the repository: {e}"),
            Error::Forget {
                host,
                sources,
                source,
            } => {
                let sources = sources.join(" ");
                write!(f, "forgetting snapshots of host {host} source {sources}: ")?;
                if source.is_refused_deletion() {
                    f.write_str(REFUSED)
                } else {
                    source.fmt(f)
                }
            }
            Error::Listing(e) => write!(f, "cannot list the snapshots left after forget: {e}"),
            Error::Unremoved(e) => {
                write!(
                    f,
                    "snapshots forgotten, but not removed from the metadb: {e}"
                )
            }
            Error::Kept { count: n } => write!(
                f,
                "restic forget left {} it should have removed: {REFUSED}; their records stay",
                count(n, "snapshot")
            ),
            Error::Prune(e) => write!(f, "restic prune: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Lease(e) => Some(e),
            Error::Copy { source, .. } => Some(source),
            Error::Policies(e) | Error::Users(e) | Error::Unremoved(e) => Some(e),
            Error::Forget { source: e, .. } | Error::Listing(e) | Error::Prune(e) => Some(e),
            Error::Select(e) => Some(e),
            Error::Never | Error::Kept { .. } => None,
        }
    }
}

/// Forgets the snapshots a backup could not remove (see
/// [`tombstone`]) and drops them from the list; a failure is logged and
/// they stay listed for the next prune.
fn forget_unrecordable(config: &Config, repo: &Repo, sup: &Supervisor) {
    let listed = tombstone::listed(&config.work_dir);
    if listed.is_empty() {
        return;
    }
    let ids: Vec<&str> = listed.iter().map(|(_, id)| id.as_str()).collect();
    let ids = ids.join(", ");
    let forgotten = repo
        .forget_snapshots(sup, &listed)
        .map_err(|e| e.to_string())
        .and_then(|()| tombstone::remove(&config.work_dir, &listed).map_err(|e| e.to_string()));
    match forgotten {
        Ok(()) => log::info!("removed the unusable snapshots {ids}"),
        Err(e) => log::error!("cannot remove the unusable snapshots {ids} yet: {e}"),
    }
}

/// One forgotten (or, in a dry run, forgettable) snapshot.
pub struct Forgotten {
    /// `primary`, or the copy's name.
    pub repository: String,
    pub host: String,
    pub short_id: String,
    pub time: String,
    pub atoms: Vec<String>,
}

/// Snapshots of `host`'s `sources` that one policy applies to.
struct Group {
    host: String,
    policy: Retention,
    sources: Vec<String>,
}

/// Applies retention to the sources called `names` (this host's; all of
/// them, and with `maintenance: true` every other host's, when empty),
/// unless another host holds the repository's lease; then to each copy
/// they go to (see the module's doc).
pub fn prune(
    config: &Config,
    metadb: &Metadb,
    sup: &Supervisor,
    names: &[String],
    dry_run: bool,
) -> Result<Held<Vec<Forgotten>>, Error> {
    if config.maintenance == Maintenance::Never {
        return Err(Error::Never);
    }
    let sources = config.select(names).map_err(Error::Select)?;
    let mut groups = Vec::new();
    for &source in &sources {
        let Some(policy) = config.retention_of(source) else {
            log::info!(
                "source {}: no retention policy, everything is kept",
                source.name
            );
            continue;
        };
        add(&mut groups, &config.hostname, policy, &source.name);
    }
    let repo = Repo::new(config.repository.clone());
    let lease = Lease {
        metadb,
        repo: &repo,
        name: PRIMARY,
        host: &config.hostname,
        ttl: config.lease_ttl,
    };
    let held = lease
        .hold(sup, || {
            if !dry_run {
                forget_unrecordable(config, &repo, sup);
            }
            if config.maintenance == Maintenance::All && names.is_empty() {
                others(config, metadb, &repo, &mut groups)?;
            }
            apply(
                metadb,
                &repo,
                crate::wire::api::PRIMARY,
                sup,
                &groups,
                dry_run,
            )
        })
        .map_err(Error::Lease)?;
    let mut forgotten = match held {
        Held::Ran(result) => result?,
        Held::Busy { holder, expires } => return Ok(Held::Busy { holder, expires }),
    };
    for copy in &config.copies {
        let gone =
            prune_copy(config, metadb, sup, copy, &sources, dry_run).map_err(|e| Error::Copy {
                name: copy.name.clone(),
                source: Box::new(e),
            })?;
        forgotten.extend(gone);
    }
    Ok(Held::Ran(forgotten))
}

/// Applies retention to those of `sources` that go to `copy`, in it, under
/// its lease: by the copy's policy, else by each source's. Nothing while
/// another host holds the copy's lease (logged: the next prune tries again).
fn prune_copy(
    config: &Config,
    metadb: &Metadb,
    sup: &Supervisor,
    copy: &Copy,
    sources: &[&crate::config::source::Source],
    dry_run: bool,
) -> Result<Vec<Forgotten>, Error> {
    let mut groups = Vec::new();
    for source in sources.iter().filter(|s| s.copies.contains(&copy.name)) {
        if let Some(policy) = copy.retention.as_ref().or(config.retention_of(source)) {
            add(&mut groups, &config.hostname, policy, &source.name);
        }
    }
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let repo = Repo::new(copy.repository.clone());
    let lease = Lease {
        metadb,
        repo: &repo,
        name: &copy.name,
        host: &config.hostname,
        ttl: config.lease_ttl,
    };
    let held = lease.hold(sup, || {
        apply(metadb, &repo, &copy.name, sup, &groups, dry_run)
    });
    match held.map_err(Error::Lease)? {
        Held::Ran(result) => result,
        Held::Busy { holder, expires } => {
            log::info!(
                "copy {}: not pruned: {}",
                copy.name,
                lease::busy(&holder, &expires)
            );
            Ok(Vec::new())
        }
    }
}

/// Adds `host`'s `source` to the group of `policy`: sources sharing a
/// policy are forgotten together, one restic call each.
fn add(groups: &mut Vec<Group>, host: &str, policy: &Retention, source: &str) {
    match groups
        .iter_mut()
        .find(|g| g.host == host && g.policy == *policy)
    {
        Some(group) => group.sources.push(source.to_string()),
        None => groups.push(Group {
            host: host.to_string(),
            policy: policy.clone(),
            sources: vec![source.to_string()],
        }),
    }
}

/// Adds the sources of every other host by the policies they published;
/// with a metadb server, of the hosts that publish `repo` only: the
/// metadb lets a maintainer remove only their records, so the snapshots
/// of the others (an older tabacco's, which publishes no repository) are
/// left rather than forgotten with their records kept.
fn others(
    config: &Config,
    metadb: &Metadb,
    repo: &Repo,
    groups: &mut Vec<Group>,
) -> Result<(), Error> {
    let policies = metadb.policies().map_err(Error::Policies)?;
    let users: Option<Vec<String>> = match (metadb.is_shared(), repo.known_id()) {
        (true, Some(id)) => Some(
            metadb
                .repositories()
                .map_err(Error::Users)?
                .into_iter()
                .filter(|r| r.id == id)
                .flat_map(|r| r.users)
                .map(|u| u.host)
                .collect(),
        ),
        _ => None,
    };
    for published in policies {
        if published.host == config.hostname {
            continue;
        }
        if users.as_ref().is_some_and(|u| !u.contains(&published.host)) {
            log::info!(
                "host {} does not publish this repository: its snapshots are left to it",
                published.host
            );
            continue;
        }
        match published.retention.to_retention() {
            Ok(policy) => add(groups, &published.host, &policy, &published.source),
            Err(e) => log::warn!(
                "host {} source {}: retention {e}: nothing of it is forgotten",
                published.host,
                published.source
            ),
        }
    }
    Ok(())
}

/// Forgets what `groups` no longer keep in `repo` (called `repository`:
/// `primary` or a copy's name), removes their records, prunes.
fn apply(
    metadb: &Metadb,
    repo: &Repo,
    repository: &str,
    sup: &Supervisor,
    groups: &[Group],
    dry_run: bool,
) -> Result<Vec<Forgotten>, Error> {
    let mut removed: Vec<(String, restic::Snapshot)> = Vec::new();
    for group in groups {
        let sources: Vec<&str> = group.sources.iter().map(String::as_str).collect();
        let gone = repo
            .forget(sup, &group.host, &sources, &group.policy, dry_run)
            .map_err(|source| Error::Forget {
                host: group.host.clone(),
                sources: group.sources.clone(),
                source,
            })?;
        removed.extend(gone.into_iter().map(|s| (group.host.clone(), s)));
    }
    if removed.is_empty() {
        return Ok(Vec::new());
    }
    // restic 0.18 exits 0 when a server refuses the DELETE (an append-only
    // one): a snapshot is forgotten only if it is no longer listed.
    let still = if dry_run {
        Default::default()
    } else {
        repo.snapshot_ids(sup).map_err(Error::Listing)?
    };
    let refused = removed
        .iter()
        .filter(|(_, s)| still.contains(&s.id))
        .count();
    let mut forgotten = Vec::new();
    let mut by_host: Vec<(String, Vec<String>)> = Vec::new();
    for (host, snapshot) in removed {
        if still.contains(&snapshot.id) {
            continue;
        }
        let tags = snapshot.tags.unwrap_or_default();
        let Some((_, datasets)) = model::datasets_of_tags(&tags) else {
            continue;
        };
        let ids = datasets.iter().map(|d| d.id.clone());
        match by_host.iter_mut().find(|(h, _)| *h == host) {
            Some((_, known)) => known.extend(ids),
            None => by_host.push((host.clone(), ids.collect())),
        }
        forgotten.push(Forgotten {
            repository: repository.to_string(),
            host,
            short_id: snapshot.short_id,
            time: snapshot.time,
            atoms: datasets
                .into_iter()
                .flat_map(|d| d.atoms)
                .map(|a| a.name)
                .collect(),
        });
    }
    if dry_run {
        return Ok(forgotten);
    }
    log::info!(
        "forgot {} in {repository}",
        count(forgotten.len(), "snapshot")
    );
    // The lease another host's records are removed by (the id is known:
    // the lease was taken with it).
    let lease = if metadb.is_shared() {
        repo.id(sup).ok()
    } else {
        None
    };
    for (host, ids) in &by_host {
        metadb
            .remove_datasets(host, ids, repository, lease.as_deref())
            .map_err(Error::Unremoved)?;
    }
    if refused > 0 {
        return Err(Error::Kept { count: refused });
    }
    repo.prune(sup).map_err(Error::Prune)?;
    Ok(forgotten)
}
