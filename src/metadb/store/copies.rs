//! Copies in the store: which repositories hold each dataset, which of a
//! host's datasets a copy still lacks, and how many (the copy's lag). The
//! primary repository is named [`PRIMARY`]; every dataset is held there
//! when recorded. Which host may record what is the server's business.

use crate::metadb::store::record;
use crate::metadb::store::{Error, Store};
use crate::wire::api::PRIMARY;
use crate::wire::api::{Due, Lag};
use crate::wire::model::Backup;
use rusqlite::params;

/// Most dataset ids one request names, and most datasets `due` returns.
pub const MAX_IDS: usize = 10_000;

/// Refuses a repository name that no configuration could give: copies are
/// named as sources are.
pub fn check_repository(name: &str) -> Result<(), Error> {
    record::source(name).map_err(|e| Error::InvalidRequest(e.replacen("source", "repository", 1)))
}

impl Store {
    /// Records that copy `repository` holds `host`'s datasets `ids`;
    /// those of other hosts, or not recorded, are left out. Returns how many
    /// are recorded as held (again or for the first time).
    pub fn add_copies(
        &mut self,
        host: &str,
        repository: &str,
        ids: &[String],
    ) -> Result<usize, Error> {
        record::host(host).map_err(Error::InvalidRequest)?;
        check_repository(repository)?;
        if repository == PRIMARY {
            return Err(Error::InvalidRequest(
                "the primary repository holds what is recorded: name a copy".into(),
            ));
        }
        check_ids(ids)?;
        let tx = self.begin()?;
        let mut recorded = 0;
        {
            let mut insert = tx.prepare(
                "INSERT OR IGNORE INTO holdings (host, dataset_id, repository)
                 SELECT host, id, ?3 FROM datasets WHERE host = ?2 AND id = ?1",
            )?;
            let mut held = tx.prepare(
                "SELECT count(*) FROM holdings
                 WHERE host = ?2 AND dataset_id = ?1 AND repository = ?3",
            )?;
            for id in ids {
                insert.execute(params![id, host, repository])?;
                recorded +=
                    held.query_row(params![id, host, repository], |r| r.get::<_, i64>(0))?;
            }
        }
        tx.commit()?;
        Ok(usize::try_from(recorded).unwrap_or(0))
    }

    /// `host`'s datasets of `source` that the primary holds and copy
    /// `repository` does not, oldest first, at most `limit`; and, from now
    /// on, what the copy lacks of them counts as its lag.
    pub fn due_copies(
        &mut self,
        host: &str,
        source: &str,
        repository: &str,
        limit: u32,
    ) -> Result<Vec<Due>, Error> {
        record::host(host).map_err(Error::InvalidRequest)?;
        record::source(source).map_err(Error::InvalidRequest)?;
        check_repository(repository)?;
        let limit = usize::try_from(limit).unwrap_or(MAX_IDS).clamp(1, MAX_IDS);
        let tx = self.begin()?;
        tx.execute(
            "INSERT OR IGNORE INTO copy_routes (host, source, repository) VALUES (?1, ?2, ?3)",
            params![host, source, repository],
        )?;
        let due = {
            let mut select = tx.prepare(
                "SELECT d.id, d.snapshot_id FROM backups b
                 JOIN datasets d ON d.host = b.host AND d.backup_id = b.id
                 WHERE b.host = ?1 AND d.source = ?2
                 AND EXISTS (SELECT 1 FROM holdings
                     WHERE host = d.host AND dataset_id = d.id AND repository = ?4)
                 AND NOT EXISTS (SELECT 1 FROM holdings
                     WHERE host = d.host AND dataset_id = d.id AND repository = ?3)
                 ORDER BY b.timestamp, d.rowid LIMIT ?5",
            )?;
            let rows = select.query_map(
                params![host, source, repository, PRIMARY, limit as i64],
                |r| {
                    Ok(Due {
                        dataset_id: r.get(0)?,
                        snapshot_id: r.get(1)?,
                    })
                },
            )?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        tx.commit()?;
        Ok(due)
    }

    /// For each host and copy its sources go to, how many of the host's
    /// datasets of those sources the primary holds and the copy does not.
    pub fn copy_lag(&self) -> Result<Vec<Lag>, Error> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.host, r.repository, count(d.id) FROM copy_routes r
             LEFT JOIN backups b ON b.host = r.host
             LEFT JOIN datasets d ON d.host = b.host AND d.backup_id = b.id
                 AND d.source = r.source
                 AND EXISTS (SELECT 1 FROM holdings
                     WHERE host = d.host AND dataset_id = d.id AND repository = ?1)
                 AND NOT EXISTS (SELECT 1 FROM holdings
                     WHERE host = d.host AND dataset_id = d.id AND repository = r.repository)
             GROUP BY r.host, r.repository ORDER BY r.host, r.repository",
        )?;
        let rows = stmt.query_map([PRIMARY], |r| {
            Ok(Lag {
                host: r.get(0)?,
                repository: r.get(1)?,
                datasets: r.get::<_, i64>(2)?.try_into().unwrap_or(0),
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Fills in which repositories hold each dataset of `backup`.
    pub(super) fn fill_repositories(&self, backup: &mut Backup) -> Result<(), Error> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT repository FROM holdings WHERE host = ?1 AND dataset_id = ?2
             ORDER BY repository != ?3, repository",
        )?;
        for dataset in &mut backup.datasets {
            let rows = stmt.query_map(params![backup.host, dataset.id, PRIMARY], |r| r.get(0))?;
            dataset.repositories = rows.collect::<Result<Vec<String>, _>>()?;
        }
        Ok(())
    }
}

/// Refuses an empty or overlong list of ids, or a malformed id.
fn check_ids(ids: &[String]) -> Result<(), Error> {
    if ids.is_empty() || ids.len() > MAX_IDS {
        return Err(Error::InvalidRequest(format!(
            "{} dataset ids: from 1 to {MAX_IDS} are taken",
            ids.len()
        )));
    }
    for id in ids {
        record::id("dataset id", id).map_err(Error::InvalidRequest)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::model::{Atom, Dataset};

    fn record(store: &mut Store, host: &str, backup: &str, dataset: &str, time: &str) {
        let b = Backup {
            id: backup.into(),
            timestamp: time.into(),
            host: host.into(),
            datasets: Vec::new(),
        };
        let mut d = Dataset::new(
            dataset.into(),
            "www".into(),
            vec![Atom {
                name: "www".into(),
                path: Some("/srv/www".into()),
            }],
        );
        d.snapshot_id = format!("snap-{dataset}");
        store.add_dataset(&b, &d).unwrap();
    }

    fn held(store: &Store, host: &str, dataset: &str) -> Vec<String> {
        let mut b = Backup {
            id: String::new(),
            timestamp: String::new(),
            host: host.into(),
            datasets: vec![Dataset::new(dataset.into(), "www".into(), Vec::new())],
        };
        store.fill_repositories(&mut b).unwrap();
        b.datasets.remove(0).repositories
    }

    #[test]
    fn copies_are_due_until_recorded_and_count_as_lag() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        record(&mut store, "web1", "b1", "d1", "2026-01-01T00:00:00Z");
        record(&mut store, "web1", "b2", "d2", "2026-01-02T00:00:00Z");
        record(&mut store, "web2", "b3", "d3", "2026-01-02T00:00:00Z");
        assert!(store.copy_lag()?.is_empty(), "no copy asked for yet");
        let due = store.due_copies("web1", "www", "offsite", 100)?;
        let ids: Vec<&str> = due.iter().map(|d| d.dataset_id.as_str()).collect();
        assert_eq!(ids, ["d1", "d2"]);
        assert_eq!(due[0].snapshot_id, "snap-d1");
        assert_eq!(store.due_copies("web1", "www", "offsite", 1)?.len(), 1);
        let lag = |store: &Store| -> Vec<(String, String, u64)> {
            let lag = store.copy_lag().unwrap();
            lag.into_iter()
                .map(|l| (l.host, l.repository, l.datasets))
                .collect()
        };
        assert_eq!(lag(&store), [("web1".into(), "offsite".into(), 2)]);
        // Another host's dataset is not recorded by web1's request.
        let ids = ["d1".to_string(), "d3".to_string()];
        assert_eq!(store.add_copies("web1", "offsite", &ids)?, 1);
        assert_eq!(held(&store, "web1", "d1"), ["primary", "offsite"]);
        assert_eq!(held(&store, "web2", "d3"), ["primary"]);
        assert_eq!(lag(&store), [("web1".into(), "offsite".into(), 1)]);
        assert_eq!(store.add_copies("web1", "offsite", &ids[..1])?, 1, "again");
        let ids = ["d2".to_string()];
        store.add_copies("web1", "offsite", &ids)?;
        assert_eq!(lag(&store), [("web1".into(), "offsite".into(), 0)]);
        assert!(store.due_copies("web1", "www", "offsite", 100)?.is_empty());
        Ok(())
    }

    #[test]
    fn a_dataset_goes_when_no_repository_holds_it() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        record(&mut store, "web1", "b1", "d1", "2026-01-01T00:00:00Z");
        let ids = ["d1".to_string()];
        store.add_copies("web1", "offsite", &ids)?;
        assert_eq!(store.remove_datasets("web1", &ids, PRIMARY)?, 1);
        assert_eq!(held(&store, "web1", "d1"), ["offsite"]);
        // The primary lacks it: no copy can be made of it any more.
        assert!(store.due_copies("web1", "www", "usb", 100)?.is_empty());
        assert_eq!(store.remove_datasets("web1", &ids, PRIMARY)?, 0);
        assert_eq!(store.remove_datasets("web2", &ids, "offsite")?, 0);
        assert_eq!(store.remove_datasets("web1", &ids, "offsite")?, 1);
        assert!(held(&store, "web1", "d1").is_empty());
        assert!(store.newest_backups()?.is_empty(), "the backup went too");
        Ok(())
    }

    #[test]
    fn bad_copy_records_are_refused() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        let ids = ["d1".to_string()];
        let refused = |r: Result<usize, Error>| match r {
            Err(Error::InvalidRequest(e)) => e,
            other => panic!("{other:?}"),
        };
        assert!(refused(store.add_copies("web1", "primary", &ids)).contains("name a copy"));
        assert!(refused(store.add_copies("web1", "a b", &ids)).starts_with("repository"));
        assert!(refused(store.add_copies("web1", "offsite", &[])).contains("dataset ids"));
        let bad = ["a/b".to_string()];
        assert!(refused(store.add_copies("web1", "offsite", &bad)).contains("dataset id"));
        assert!(refused(store.remove_datasets("web1", &ids, "")).contains("repository"));
        Ok(())
    }
}
