//! What the console's pages read of one host that the API does not
//! answer: the host's record (last heard of, retired), every source it
//! ever had (planned or not) with the datasets kept of each, the
//! repositories holding them, and a source's runs with their sizes and
//! durations, for the plots. The fleet's status and a source's attempts
//! are `health`'s; who may read what is the server's business.

use crate::metadb::store::{Error, Store};
use crate::wire::api::PRIMARY;
use rusqlite::{params, OptionalExtension};

/// Most runs [`Store::runs`] returns.
pub const MAX_RUNS: u32 = 1000;

/// A host as the store knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRecord {
    /// When it last sent a plan or an attempt (unix seconds).
    pub last_seen: i64,
    /// Whether an admin retired it (and it published no plan since).
    pub retired: bool,
}

/// One source of a host: its plan, if it is planned, and the sum of its
/// attempts and of its datasets kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceRecord {
    pub source: String,
    /// The schedule it is planned with; `None`: no longer planned (or
    /// never: only datasets of it were recorded).
    pub schedule: Option<String>,
    /// How its last backup attempt ended, if any.
    pub state: Option<String>,
    /// When its last attempt ended, and its last success (unix seconds).
    pub last_attempt: Option<i64>,
    pub last_success: Option<i64>,
    pub message: String,
    /// How many of its datasets are recorded, the newest one's time and
    /// total size.
    pub datasets: u64,
    pub newest: Option<i64>,
    pub newest_bytes: Option<i64>,
}

/// A repository holding datasets of a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holding {
    /// [`PRIMARY`] or a copy's name.
    pub repository: String,
    pub datasets: u64,
    /// The newest dataset's backup time (unix seconds).
    pub newest: i64,
}

/// One run of a source that recorded a dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub backup_id: String,
    /// The backup's time (unix seconds).
    pub timestamp: i64,
    pub snapshot_id: String,
    pub total_files: i64,
    pub total_bytes: i64,
    pub bytes_added: i64,
    /// Whole seconds.
    pub duration: i64,
}

impl Store {
    /// `host`'s record, if it was ever heard of.
    pub fn host_record(&self, host: &str) -> Result<Option<HostRecord>, Error> {
        let record = self
            .conn
            .query_row(
                "SELECT last_seen, retired FROM hosts WHERE host = ?1",
                [host],
                |row| {
                    Ok(HostRecord {
                        last_seen: row.get(0)?,
                        retired: row.get(1)?,
                    })
                },
            )
            .optional()?;
        Ok(record)
    }

    /// Every source of `host` that was planned, attempted or recorded, by
    /// name.
    pub fn source_records(&self, host: &str) -> Result<Vec<SourceRecord>, Error> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT source, schedule, state, end, success, coalesce(message, '')
             FROM sources WHERE host = ?1",
        )?;
        let rows = stmt.query_map([host], |row| {
            Ok(SourceRecord {
                source: row.get(0)?,
                schedule: row.get(1)?,
                state: row.get(2)?,
                last_attempt: row.get(3)?,
                last_success: row.get(4)?,
                message: row.get(5)?,
                ..SourceRecord::default()
            })
        })?;
        let mut records = rows.collect::<Result<Vec<_>, _>>()?;
        // SQLite takes the bare column `total_bytes` from the row whose
        // timestamp is the max().
        let mut kept = self.conn.prepare_cached(
            "SELECT d.source, count(*), max(b.timestamp), d.total_bytes
             FROM backups b JOIN datasets d ON d.host = b.host AND d.backup_id = b.id
             WHERE b.host = ?1 GROUP BY d.source",
        )?;
        let rows = kept.query_map([host], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?;
        for row in rows {
            let (source, count, newest, bytes) = row?;
            let at = match records.iter().position(|r| r.source == source) {
                Some(at) => at,
                None => {
                    records.push(SourceRecord {
                        source,
                        ..SourceRecord::default()
                    });
                    records.len() - 1
                }
            };
            let record = &mut records[at];
            record.datasets = u64::try_from(count).unwrap_or(0);
            record.newest = Some(newest);
            record.newest_bytes = Some(bytes);
        }
        records.sort_by(|a, b| a.source.cmp(&b.source));
        Ok(records)
    }

    /// The repositories holding `host`'s datasets, the primary first.
    pub fn holdings(&self, host: &str) -> Result<Vec<Holding>, Error> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT h.repository, count(*), max(b.timestamp)
             FROM backups b JOIN datasets d ON d.host = b.host AND d.backup_id = b.id
             JOIN holdings h ON h.host = d.host AND h.dataset_id = d.id
             WHERE b.host = ?1 GROUP BY h.repository
             ORDER BY h.repository != ?2, h.repository",
        )?;
        let rows = stmt.query_map(params![host, PRIMARY], |row| {
            Ok(Holding {
                repository: row.get(0)?,
                datasets: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                newest: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest `limit` (at most [`MAX_RUNS`]) runs of `host`'s
    /// `source`, newest first.
    pub fn runs(&self, host: &str, source: &str, limit: u32) -> Result<Vec<Run>, Error> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT b.id, b.timestamp, d.snapshot_id, d.total_files, d.total_bytes,
                 d.bytes_added, d.duration
             FROM backups b JOIN datasets d ON d.host = b.host AND d.backup_id = b.id
             WHERE b.host = ?1 AND d.source = ?2
             ORDER BY b.timestamp DESC, d.rowid DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![host, source, limit.min(MAX_RUNS)], |row| {
            Ok(Run {
                backup_id: row.get(0)?,
                timestamp: row.get(1)?,
                snapshot_id: row.get(2)?,
                total_files: row.get(3)?,
                total_bytes: row.get(4)?,
                bytes_added: row.get(5)?,
                // A REAL column: older versions stored fractions.
                duration: row.get::<_, f64>(6)?.round() as i64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::api::{Attempt, Plan, PlannedSource};
    use crate::wire::model::{Atom, Backup, Dataset};

    const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    fn record(store: &mut Store, host: &str, source: &str, day: i64, bytes: i64) {
        let id = format!("{host}-{source}-{day}");
        let backup = Backup {
            id: format!("b-{id}"),
            timestamp: format!("2026-01-{:02}T00:00:00Z", day + 1),
            host: host.into(),
            datasets: Vec::new(),
        };
        let dataset = Dataset {
            id: format!("d-{id}"),
            source: source.into(),
            atoms: vec![Atom {
                name: format!("{source}/a"),
                path: None,
            }],
            snapshot_id: format!("s-{id}"),
            total_files: 3,
            total_bytes: bytes,
            bytes_added: bytes / 10,
            duration: day,
            repositories: Vec::new(),
            repository: None,
        };
        store.add_dataset(&backup, &dataset).unwrap();
    }

    fn filled() -> Store {
        let mut store = Store::open_in_memory().unwrap();
        for day in 0..5 {
            record(&mut store, "web1", "files", day, 1000 + day);
            record(&mut store, "web2", "files", day, 5);
        }
        record(&mut store, "web1", "old", 0, 7);
        let plan = Plan {
            host: "web1".into(),
            replace: true,
            sources: vec![PlannedSource {
                source: "files".into(),
                schedule: "@daily".into(),
                next_due: Some("2026-02-01T00:00:00Z".into()),
                overdue_grace: None,
                retention: None,
            }],
            repositories: None,
        };
        store.publish_plan(&plan, T0).unwrap();
        let attempt = Attempt {
            host: "web1".into(),
            kind: "backup".into(),
            source: "files".into(),
            backup_id: "b-x".into(),
            start: "2026-01-05T00:00:00Z".into(),
            end: "2026-01-05T00:01:00Z".into(),
            state: "failed".into(),
            failure: "command".into(),
            message: "exit 3".into(),
            detail: String::new(),
            datasets: 0,
        };
        store.add_attempt(&attempt, T0 + 5).unwrap();
        store
            .add_copies("web1", "offsite", &["d-web1-files-0".to_string()])
            .unwrap();
        store
    }

    #[test]
    fn a_host_with_its_sources_planned_or_not() {
        let store = filled();
        assert_eq!(
            store.host_record("web1").unwrap(),
            Some(HostRecord {
                last_seen: T0 + 5,
                retired: false
            })
        );
        assert_eq!(store.host_record("web2").unwrap(), None, "records only");
        let records = store.source_records("web1").unwrap();
        assert_eq!(records.len(), 2, "{records:?}");
        let files = &records[0];
        assert_eq!(
            (files.source.as_str(), files.schedule.as_deref()),
            ("files", Some("@daily"))
        );
        assert_eq!(files.state.as_deref(), Some("failed"));
        assert_eq!(files.message, "exit 3");
        assert_eq!(files.last_attempt, Some(T0 + 4 * 86_400 + 60));
        assert_eq!(files.last_success, None);
        assert_eq!(
            (files.datasets, files.newest, files.newest_bytes),
            (5, Some(T0 + 4 * 86_400), Some(1004))
        );
        let old = &records[1];
        assert_eq!(
            (
                old.source.as_str(),
                old.schedule.as_deref(),
                old.state.as_deref()
            ),
            ("old", None, None)
        );
        assert_eq!((old.datasets, old.newest_bytes), (1, Some(7)));
        assert!(store.source_records("nobody").unwrap().is_empty());
    }

    #[test]
    fn repositories_holding_a_hosts_datasets() {
        let store = filled();
        assert_eq!(
            store.holdings("web1").unwrap(),
            [
                Holding {
                    repository: PRIMARY.into(),
                    datasets: 6,
                    newest: T0 + 4 * 86_400
                },
                Holding {
                    repository: "offsite".into(),
                    datasets: 1,
                    newest: T0
                },
            ]
        );
    }

    #[test]
    fn runs_newest_first_and_bounded() {
        let store = filled();
        let runs = store.runs("web1", "files", 3).unwrap();
        let sizes: Vec<i64> = runs.iter().map(|r| r.total_bytes).collect();
        assert_eq!(sizes, [1004, 1003, 1002]);
        assert_eq!(runs[0].bytes_added, 100);
        assert_eq!(runs[0].duration, 4);
        assert_eq!(runs[0].backup_id, "b-web1-files-4");
        assert_eq!(store.runs("web1", "files", 0).unwrap().len(), 0);
        assert_eq!(store.runs("web1", "files", u32::MAX).unwrap().len(), 5);
        assert!(store.runs("web3", "files", 10).unwrap().is_empty());
    }
}
