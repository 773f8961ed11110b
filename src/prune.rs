//! Retention: forget this host's snapshots that a source's policy no
//! longer keeps, selected by tabacco's own tags only (nothing else in a
//! shared repository is touched), remove them from the metadb, so that
//! `query` and `restore` never offer a snapshot that no longer exists, and
//! reclaim the space. Used by `tabacco prune` and by the agent's
//! `prune_schedule`. Each copy is pruned after the repository, by its own
//! policy if it has one, and the metadb learns what each repository
//! still holds. The policy is a [`Retention`]; imports `config`, `copy`,
//! `restic`, `metadb` and leaves.

use crate::config::Config;
use crate::copy;
use crate::metadb::Metadb;
use crate::model;
use crate::restic::{self, Repo};
use crate::retention::Retention;
use crate::shell::Supervisor;
use crate::source::Source;

/// One forgotten (or, in a dry run, forgettable) snapshot.
pub struct Forgotten {
    /// `primary`, or the copy's name.
    pub repository: String,
    pub short_id: String,
    pub time: String,
    pub atoms: Vec<String>,
}

/// Applies retention to the sources called `names` (all when empty): in
/// the repository by each source's policy, then in each copy by the
/// copy's own policy or, without one, by the same policies.
pub fn prune(
    config: &Config,
    metadb: &Metadb,
    sup: &Supervisor,
    names: &[String],
    dry_run: bool,
) -> Result<Vec<Forgotten>, String> {
    let sources = config.select(names)?;
    let primary = Repo::new(config.repository.clone());
    let mut forgotten = prune_one(
        config,
        metadb,
        sup,
        &primary,
        copy::PRIMARY,
        None,
        &sources,
        dry_run,
    )?;
    for copy in &config.copies {
        let copied: Vec<&Source> = sources
            .iter()
            .copied()
            .filter(|s| s.copies.contains(&copy.name))
            .collect();
        if copied.is_empty() {
            continue;
        }
        let repo = Repo::new(copy.repository.clone());
        let policy = copy.retention.as_ref();
        let gone = prune_one(
            config, metadb, sup, &repo, &copy.name, policy, &copied, dry_run,
        )
        .map_err(|e| format!("copy {}: {e}", copy.name))?;
        forgotten.extend(gone);
    }
    Ok(forgotten)
}

/// Applies retention to `sources` in `repo`, called `repository`: by
/// `policy` if given, else by each source's.
#[allow(clippy::too_many_arguments)]
fn prune_one(
    config: &Config,
    metadb: &Metadb,
    sup: &Supervisor,
    repo: &Repo,
    repository: &str,
    policy: Option<&Retention>,
    sources: &[&Source],
    dry_run: bool,
) -> Result<Vec<Forgotten>, String> {
    // Sources sharing a policy are forgotten together: one restic call each.
    let mut groups: Vec<(&Retention, Vec<&str>)> = Vec::new();
    for source in sources {
        let Some(policy) = policy
            .or(source.retention.as_ref())
            .or(config.retention.as_ref())
        else {
            log::info!(
                "source {}: no retention policy, everything is kept",
                source.name
            );
            continue;
        };
        match groups.iter_mut().find(|(p, _)| *p == policy) {
            Some((_, names)) => names.push(&source.name),
            None => groups.push((policy, vec![&source.name])),
        }
    }
    let mut removed: Vec<restic::Snapshot> = Vec::new();
    for (policy, names) in &groups {
        let gone = repo
            .forget(sup, &config.hostname, names, policy, dry_run)
            .map_err(|e| format!("forgetting snapshots of {}: {e}", names.join(" ")))?;
        removed.extend(gone);
    }
    let mut forgotten = Vec::new();
    let mut dataset_ids = Vec::new();
    for snapshot in removed {
        let tags = snapshot.tags.unwrap_or_default();
        if let Some((_, dataset)) = model::from_snapshot_tags(&tags) {
            forgotten.push(Forgotten {
                repository: repository.to_string(),
                short_id: snapshot.short_id,
                time: snapshot.time,
                atoms: dataset.atoms.into_iter().map(|a| a.name).collect(),
            });
            dataset_ids.push(dataset.id);
        }
    }
    if dry_run || dataset_ids.is_empty() {
        return Ok(forgotten);
    }
    log::info!(
        "forgot {} in {repository}",
        crate::count::count(forgotten.len(), "snapshot")
    );
    metadb
        .remove_datasets(&config.hostname, &dataset_ids, repository)
        .map_err(|e| format!("snapshots forgotten, but not removed from the metadb: {e}"))?;
    repo.prune(sup).map_err(|e| format!("restic prune: {e}"))?;
    Ok(forgotten)
}
