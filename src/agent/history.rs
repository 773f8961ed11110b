//! What the metadb already knows when the agent starts: the newest recorded
//! backup of each source of this host. It fills in the last success (time,
//! bytes added, files) so that metrics such as
//! `tabacco_last_success_timestamp_seconds` survive a restart instead of
//! vanishing until every source has run again. `backup_ok` is left alone:
//! failures are not recorded, so only a run can say.
//!
//! The time is the backup's start, as recorded; a backup with some datasets
//! recorded counts. A run that finishes before this is loaded wins.

use crate::agent::status::{State, Status};
use crate::metadb::Metadb;
use crate::wire::model::{Backup, FindRequest};
use chrono::{DateTime, Utc};

/// Loads this host's newest backups into the state (a failure is logged:
/// the agent works without it).
pub fn load(status: &Status, metadb: &Metadb) {
    let host = status.lock().host.clone();
    let request = FindRequest {
        pattern: "*".into(),
        host: Some(host),
        num_versions: Some(1),
        older_than: None,
    };
    match metadb.find_atoms(&request) {
        Ok(backups) => apply(&mut status.lock(), &backups),
        Err(e) => log::warn!("cannot read earlier backups of this host: {e}"),
    }
}

fn apply(state: &mut State, backups: &[Backup]) {
    // Newest first: the first backup seen of a source is its newest.
    for backup in backups {
        let Ok(time) = DateTime::parse_from_rfc3339(&backup.timestamp) else {
            continue;
        };
        let time = time.with_timezone(&Utc);
        for dataset in &backup.datasets {
            let Some(source) = state.sources.get_mut(&dataset.source) else {
                continue;
            };
            match source.last_success {
                None => {
                    source.last_success = Some(time);
                    source.bytes_added = dataset.bytes_added;
                    source.files = dataset.total_files;
                }
                // More datasets of that same backup.
                Some(t) if t == time && source.last.is_none() => {
                    source.bytes_added += dataset.bytes_added;
                    source.files += dataset.total_files;
                }
                Some(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::status::SourceState;
    use crate::wire::model::Dataset;

    fn backup(time: &str, datasets: &[(&str, i64)]) -> Backup {
        Backup {
            id: time.into(),
            timestamp: time.into(),
            host: "h".into(),
            datasets: datasets
                .iter()
                .map(|(source, bytes)| Dataset {
                    id: format!("{source}{bytes}"),
                    source: source.to_string(),
                    atoms: Vec::new(),
                    snapshot_id: String::new(),
                    total_files: 1,
                    total_bytes: 0,
                    bytes_added: *bytes,
                    duration: 0,
                    repositories: Vec::new(),
                    repository: None,
                })
                .collect(),
        }
    }

    #[test]
    fn newest_backup_of_each_configured_source_counts() {
        let mut state = State::default();
        state.sources.insert("sql".into(), SourceState::default());
        state.sources.insert("users".into(), SourceState::default());
        let backups = [
            backup(
                "2026-11-23T10:00:00Z",
                &[("sql", 5), ("sql", 7), ("gone", 1)],
            ),
            backup("2026-11-22T10:00:00Z", &[("sql", 100), ("users", 3)]),
        ];
        apply(&mut state, &backups);
        let sql = &state.sources["sql"];
        assert_eq!(
            sql.last_success.map(crate::base::time::format).as_deref(),
            Some("2026-11-23T10:00:00Z")
        );
        assert_eq!((sql.bytes_added, sql.files), (12, 2));
        assert_eq!(state.sources["users"].bytes_added, 3);
        assert!(
            state.sources["users"].last.is_none(),
            "backup_ok stays unknown"
        );
        assert!(!state.sources.contains_key("gone"));
    }
}
