//! `tabacco prune`: apply retention policies to this host's snapshots, by
//! tabacco's own tags only (nothing else in a shared repository is touched),
//! reclaim the space, and remove what went from the metadb, so that `query`
//! and `restore` never offer a snapshot that no longer exists.

use crate::cmd::{self, Exit};
use crate::config::raw::Retention;
use crate::config::Config;
use crate::interrupt::Interrupt;
use crate::metadb::Metadb;
use crate::model;
use crate::restic::{self, Repo};
use crate::shell::Supervisor;

pub fn prune(config: &Config, names: &[String], dry_run: bool) -> Result<(), Exit> {
    let sources = config.select(names).map_err(Exit::Usage)?;
    // Sources sharing a policy are forgotten together: one restic call each.
    let mut groups: Vec<(&Retention, Vec<&str>)> = Vec::new();
    for source in sources {
        let Some(policy) = source.retention.as_ref().or(config.retention.as_ref()) else {
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
    if groups.is_empty() {
        return Ok(());
    }
    let metadb = Metadb::open(config).map_err(|e| Exit::Error(e.to_string()))?;
    let repo = Repo::new(config.repository.clone());
    let sup = Supervisor::new(config.priority, "prune");
    let _interrupt =
        Interrupt::watching(&sup).map_err(|e| Exit::Error(format!("cannot catch signals: {e}")))?;
    let mut removed: Vec<restic::Snapshot> = Vec::new();
    for (policy, names) in &groups {
        let gone = repo
            .forget(&sup, &config.hostname, names, policy, dry_run)
            .map_err(|e| {
                Exit::Error(format!("forgetting snapshots of {}: {e}", names.join(" ")))
            })?;
        removed.extend(gone);
    }
    let mut dataset_ids = Vec::new();
    let mut lines = String::new();
    for snapshot in &removed {
        let tags = snapshot.tags.clone().unwrap_or_default();
        if let Some((_, dataset)) = model::from_snapshot_tags(&tags) {
            let atoms: Vec<&str> = dataset.atoms.iter().map(|a| a.name.as_str()).collect();
            lines.push_str(&format!(
                "{}  {}  {}\n",
                snapshot.short_id,
                snapshot.time,
                atoms.join(" ")
            ));
            dataset_ids.push(dataset.id);
        }
    }
    if dry_run {
        if lines.is_empty() {
            lines = "nothing to forget\n".into();
        }
        return cmd::print(&format!("would forget:\n{lines}"));
    }
    log::info!("forgot {} snapshots", removed.len());
    if dataset_ids.is_empty() {
        return Ok(());
    }
    metadb
        .remove_datasets(&config.hostname, &dataset_ids)
        .map_err(|e| {
            Exit::Error(format!(
                "snapshots forgotten, but not removed from the metadb: {e}"
            ))
        })?;
    if let Err(e) = repo.prune(&sup) {
        // A stale lock of a dead process blocks the exclusive prune.
        if !matches!(e, restic::Error::Locked(_)) {
            return Err(Exit::Error(format!("restic prune: {e}")));
        }
        repo.unlock(&sup)
            .map_err(|e| Exit::Error(format!("restic unlock: {e}")))?;
        repo.prune(&sup)
            .map_err(|e| Exit::Error(format!("restic prune: {e}")))?;
    }
    Ok(())
}
