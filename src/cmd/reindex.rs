//! `tabacco reindex`: rebuild the metadb from the repository alone. Every
//! snapshot tabacco made carries its backup id, dataset id, source, atoms and
//! host; recording them again is idempotent, so running it twice changes
//! nothing, and losing the metadb loses nothing but restic's statistics. A
//! snapshot dated more than an hour ahead is not recorded (the metadb would
//! refuse it too). A batch's snapshot (see `backup::batch`) gives back each
//! of the datasets its tags name.

use crate::backup::tombstone;
use crate::base::time;
use crate::cmd::Exit;
use crate::config::Config;
use crate::metadb::store::record;
use crate::metadb::Metadb;
use crate::process::interrupt::Interrupt;
use crate::process::shell::Supervisor;
use crate::restic::Repo;
use crate::wire::model::{self, Backup};

pub fn reindex(config: &Config) -> Result<(), Exit> {
    let metadb = Metadb::open(&config.work_dir, config.metadb.as_ref())
        .map_err(|e| Exit::Error(e.to_string()))?;
    let repo = Repo::new(config.repository.clone());
    let sup = Supervisor::new(config.priority, "reindex");
    let _interrupt =
        Interrupt::watching(&sup).map_err(|e| Exit::Error(format!("cannot catch signals: {e}")))?;
    let snapshots = repo
        .snapshots(&sup, &["tabacco".to_string()])
        .map_err(|e| Exit::Error(e.to_string()))?;
    // Every record names the repository it is rebuilt from (with the
    // embedded metadb, if known without another restic process).
    let repository = match metadb.is_shared() {
        true => repo.id(&sup).ok(),
        false => repo.known_id(),
    };
    let mut failed = 0;
    let mut records = Vec::with_capacity(snapshots.len());
    let unrecordable = tombstone::listed(&config.work_dir);
    for snapshot in &snapshots {
        if tombstone::is_listed(&unrecordable, &snapshot.id) {
            log::warn!(
                "snapshot {} is of a failed or refused stream (listed in work_dir); not recorded",
                snapshot.short_id
            );
            continue;
        }
        let tags = snapshot.tags.clone().unwrap_or_default();
        let Some((backup_id, datasets)) = model::datasets_of_tags(&tags) else {
            log::warn!(
                "snapshot {} has the tabacco tag but not tabacco's others; skipped",
                snapshot.short_id
            );
            continue;
        };
        let timestamp = match time::parse_time(&snapshot.time, chrono::Utc::now()) {
            Ok(t) => t,
            Err(e) => {
                log::error!("snapshot {}: {e}", snapshot.short_id);
                failed += 1;
                continue;
            }
        };
        // Whoever can write to the repository chooses a snapshot's time: one
        // dated years ahead would be every later find's newest version.
        let (text, now) = (time::format(timestamp), time::unix_now());
        if let Err(e) = record::not_ahead("time", &text, timestamp.timestamp(), now) {
            log::error!("snapshot {}: {e}: not recorded", snapshot.short_id);
            failed += 1;
            continue;
        }
        let backup = Backup {
            id: backup_id,
            timestamp: text,
            host: snapshot.hostname.clone(),
            datasets: Vec::new(),
        };
        // A batch's snapshot holds many datasets, each its own record.
        for mut dataset in datasets {
            dataset.snapshot_id = snapshot.id.clone();
            dataset.repository = repository.clone();
            records.push((backup.clone(), dataset));
        }
    }
    // Recorded together: an embedded metadb syncs once, not per snapshot.
    let results = metadb
        .add_datasets(&records)
        .map_err(|e| Exit::Error(format!("nothing reindexed: {e}")))?;
    for ((_, dataset), result) in records.iter().zip(results) {
        if let Err(e) = result {
            log::error!(
                "snapshot {} (dataset {}): {e}",
                dataset.snapshot_id,
                dataset.id
            );
            failed += 1;
        }
    }
    log::info!(
        "reindexed {} snapshots, {failed} failed",
        snapshots.len() - failed
    );
    if failed > 0 {
        return Err(Exit::Failed);
    }
    Ok(())
}
