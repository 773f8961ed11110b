//! Repositories in the store: which hosts publish which repository, by
//! restic id, under which name and location. A host's plan adds or updates
//! its repositories by name; retiring the host forgets them. What the
//! server lets a host do to a repository (take its lease, remove the
//! records held in it) follows from this list: a host may touch only a
//! repository it says it uses.

use crate::metadb::store::record;
use crate::metadb::store::{Error, Store, PRIMARY};
use crate::wire::api::{KnownRepository, PlannedRepository, RepositoryUser};
use rusqlite::{params, Connection, OptionalExtension};

/// Most repositories one plan may name.
pub const MAX_REPOSITORIES: usize = 100;

/// Longest location a plan may give, in bytes.
const MAX_LOCATION_BYTES: usize = 4096;

/// Checks the repositories of a plan: names and ids well formed, each
/// name once, within the bounds.
pub fn check(repositories: &[PlannedRepository]) -> Result<(), String> {
    if repositories.len() > MAX_REPOSITORIES {
        return Err(format!(
            "a plan of {} repositories, over {MAX_REPOSITORIES}",
            repositories.len()
        ));
    }
    for (i, r) in repositories.iter().enumerate() {
        record::id("repository name", &r.name)?;
        restic_id(&r.id)?;
        if r.location.len() > MAX_LOCATION_BYTES || r.location.chars().any(char::is_control) {
            return Err(format!(
                "repository {}: a location of control characters or over {MAX_LOCATION_BYTES} bytes",
                r.name
            ));
        }
        if repositories[..i].iter().any(|o| o.name == r.name) {
            return Err(format!("repository {} planned twice", r.name));
        }
    }
    Ok(())
}

/// A restic repository id: 64 lowercase hex digits.
pub fn restic_id(id: &str) -> Result<(), String> {
    let hex = id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match hex {
        true => Ok(()),
        false => Err(format!(
            "repository id {:?} is not 64 lowercase hex digits",
            id.chars().take(80).collect::<String>()
        )),
    }
}

/// Adds or updates `host`'s `repositories` by name, in `tx`.
pub(super) fn publish(
    tx: &Connection,
    host: &str,
    repositories: &[PlannedRepository],
) -> Result<(), Error> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO repositories (host, name, id, location) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (host, name) DO UPDATE SET id = excluded.id, location = excluded.location",
    )?;
    for r in repositories {
        upsert.execute(params![host, r.name, r.id, r.location])?;
    }
    Ok(())
}

/// Forgets `host`'s repositories, in `tx`.
pub(super) fn forget(tx: &Connection, host: &str) -> Result<(), Error> {
    tx.execute("DELETE FROM repositories WHERE host = ?1", [host])?;
    Ok(())
}

impl Store {
    /// Whether `host` publishes the repository of restic id `id`.
    pub fn uses_repository(&self, host: &str, id: &str) -> Result<bool, Error> {
        Ok(self.name_of(host, id)?.is_some())
    }

    /// `host`'s name for the repository of restic id `id`, if it publishes
    /// it (its primary's when it publishes it under two names).
    pub fn name_of(&self, host: &str, id: &str) -> Result<Option<String>, Error> {
        Ok(self
            .conn
            .query_row(
                "SELECT name FROM repositories WHERE host = ?1 AND id = ?2
                 ORDER BY name = ?3 DESC, name LIMIT 1",
                params![host, id, PRIMARY],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// The restic id of `host`'s repository `name`, if it published it.
    pub fn id_of(&self, host: &str, name: &str) -> Result<Option<String>, Error> {
        Ok(self
            .conn
            .query_row(
                "SELECT id FROM repositories WHERE host = ?1 AND name = ?2",
                params![host, name],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Those of `host`'s datasets `ids` recorded in another repository
    /// than the one of restic id `id` (a dataset recorded without one is in
    /// the host's primary).
    pub fn recorded_elsewhere(
        &self,
        host: &str,
        ids: &[String],
        id: &str,
    ) -> Result<Vec<String>, Error> {
        let primary = self.id_of(host, PRIMARY)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT coalesce(repository, ?3) FROM datasets WHERE host = ?1 AND id = ?2",
        )?;
        let mut elsewhere = Vec::new();
        for dataset in ids {
            let held: Option<Option<String>> = stmt
                .query_row(params![host, dataset, primary], |row| row.get(0))
                .optional()?;
            if let Some(held) = held {
                if held.as_deref() != Some(id) {
                    elsewhere.push(dataset.clone());
                }
            }
        }
        Ok(elsewhere)
    }

    /// Every published repository with the hosts that use it (of `host`
    /// only, if given), by id.
    pub fn repositories(&self, host: Option<&str>) -> Result<Vec<KnownRepository>, Error> {
        let mut stmt = self.conn.prepare(
            "SELECT id, host, name, location FROM repositories
             WHERE ?1 IS NULL OR id IN (SELECT id FROM repositories WHERE host = ?1)
             ORDER BY id, host, name",
        )?;
        let rows = stmt.query_map([host], |row| {
            Ok((
                row.get::<_, String>(0)?,
                RepositoryUser {
                    host: row.get(1)?,
                    name: row.get(2)?,
                    location: row.get(3)?,
                },
            ))
        })?;
        let mut known: Vec<KnownRepository> = Vec::new();
        for row in rows {
            let (id, user) = row?;
            if host.is_some_and(|h| h != user.host) {
                continue;
            }
            match known.last_mut() {
                Some(last) if last.id == id => last.users.push(user),
                _ => known.push(KnownRepository {
                    id,
                    users: vec![user],
                }),
            }
        }
        Ok(known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::api::Plan;

    fn repo(name: &str, digit: char) -> PlannedRepository {
        PlannedRepository {
            name: name.into(),
            id: digit.to_string().repeat(64),
            location: format!("/srv/{name}"),
        }
    }

    fn plan(host: &str, repositories: Option<Vec<PlannedRepository>>) -> Plan {
        Plan {
            host: host.into(),
            replace: true,
            sources: Vec::new(),
            repositories,
        }
    }

    #[test]
    fn hosts_publish_repositories_by_name_and_use_them_by_id() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        let (a, b) = (repo(PRIMARY, 'a'), repo("offsite", 'b'));
        store.publish_plan(&plan("h1", Some(vec![a.clone(), b.clone()])), 0)?;
        store.publish_plan(&plan("h2", Some(vec![repo("shared", 'a')])), 0)?;
        assert!(store.uses_repository("h1", &b.id)?);
        assert!(!store.uses_repository("h2", &b.id)?);
        assert_eq!(store.name_of("h2", &a.id)?.as_deref(), Some("shared"));
        // A plan without repositories leaves them as they were.
        store.publish_plan(&plan("h1", None), 0)?;
        assert_eq!(store.id_of("h1", "offsite")?, Some(b.id.clone()));
        let all = store.repositories(None)?;
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].users.len(), 2, "{all:?}");
        let own = store.repositories(Some("h2"))?;
        assert_eq!(own.len(), 1);
        assert_eq!(own[0].users.len(), 1);
        store.retire_host("h1")?;
        assert!(!store.uses_repository("h1", &a.id)?);
        Ok(())
    }

    #[test]
    fn a_record_without_its_repository_is_in_its_hosts_primary() -> Result<(), Error> {
        use crate::wire::model::{Backup, Dataset, FindRequest};
        let mut store = Store::open_in_memory()?;
        let record = |store: &mut Store, id: &str, repository: Option<String>| {
            let backup: Backup = serde_json::from_value(serde_json::json!({
                "id": id, "timestamp": "2026-01-01T00:00:00Z", "host": "h1", "datasets": []
            }))
            .unwrap();
            let mut dataset: Dataset = serde_json::from_value(serde_json::json!({
                "id": id, "source": "sql", "snapshot_id": "abcd1234",
                "atoms": [{"name": format!("sql/{id}")}]
            }))
            .unwrap();
            dataset.repository = repository;
            store.add_dataset(&backup, &dataset)
        };
        record(&mut store, "old", None)?;
        record(&mut store, "new", Some("c".repeat(64)))?;
        assert!(record(&mut store, "bad", Some("nothex".into())).is_err());
        let found = |store: &Store| -> Result<Vec<(String, Option<String>)>, Error> {
            let req = FindRequest {
                pattern: "sql/*".into(),
                ..Default::default()
            };
            let mut all = Vec::new();
            store.for_each_found(&req, |b| {
                for d in b.datasets {
                    all.push((d.id, d.repository));
                }
                Ok::<_, Error>(())
            })?;
            all.sort();
            Ok(all)
        };
        assert_eq!(
            found(&store)?,
            [("new".into(), Some("c".repeat(64))), ("old".into(), None)]
        );
        store.publish_plan(&plan("h1", Some(vec![repo(PRIMARY, 'a')])), 0)?;
        assert_eq!(
            found(&store)?,
            [
                ("new".into(), Some("c".repeat(64))),
                ("old".into(), Some("a".repeat(64)))
            ]
        );
        let ids = ["old".to_string(), "new".to_string()];
        assert_eq!(
            store.recorded_elsewhere("h1", &ids, &"a".repeat(64))?,
            ["new"]
        );
        Ok(())
    }

    #[test]
    fn malformed_repositories_are_refused() {
        let mut bad = repo(PRIMARY, 'a');
        bad.id = "A".repeat(64);
        assert!(check(&[bad]).is_err());
        assert!(check(&[repo("x", 'a'), repo("x", 'b')]).is_err());
        let mut ctl = repo(PRIMARY, 'a');
        ctl.location = "/srv/\u{1b}[2J".into();
        assert!(check(&[ctl]).is_err());
        assert!(check(&[repo(PRIMARY, 'a'), repo("c", 'b')]).is_ok());
    }
}
