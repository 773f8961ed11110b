//! Proofs in the store: how far the rotated `restic check
//! --read-data-subset i/N` of each repository has gone, and when the whole
//! of a repository was last read back; and when each atom was last
//! restored by a drill, and last proven to load (from the verifications).
//! A slice counts only in
//! order, so a full round means every slice was read since the round began.

use crate::metadb::store::record;
use crate::metadb::store::{format_time, Error, Store};
use crate::wire::api::{Proof, Proofs, Restored, SliceRead};
use rusqlite::{params, OptionalExtension};

/// Most slices a repository may be read back in.
pub const MAX_SLICES: u32 = 10_000;

impl Store {
    /// Where every repository's rotated check stands.
    pub fn proofs(&self) -> Result<Vec<Proof>, Error> {
        let mut stmt = self.conn.prepare(
            "SELECT repository, slices, next_slice, whole_read FROM proofs ORDER BY repository",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(Proof {
                repository: row.get(0)?,
                slices: row.get(1)?,
                next_slice: row.get(2)?,
                whole_read: row.get::<_, Option<i64>>(3)?.map(format_time).transpose()?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records that `read.slice` was read back at `now`: the next check
    /// reads the slice after it, and the last slice of a round read in
    /// order proves the whole repository. A slice out of order (or of
    /// another number of slices, which begins a new round) moves nothing
    /// but to slice 1. Answers where the check stands now.
    pub fn record_slice(&mut self, read: &SliceRead, now: i64) -> Result<Proof, Error> {
        record::id("repository id", &read.repository).map_err(Error::InvalidRequest)?;
        if !(1..=MAX_SLICES).contains(&read.slices) || !(1..=read.slices).contains(&read.slice) {
            return Err(Error::InvalidRequest(format!(
                "slice {}/{} is not one of 1 to {MAX_SLICES} slices",
                read.slice, read.slices
            )));
        }
        let tx = self.begin()?;
        let stored: Option<(u32, u32, Option<i64>)> = tx
            .query_row(
                "SELECT slices, next_slice, whole_read FROM proofs WHERE repository = ?1",
                [&read.repository],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        let expected = match stored {
            Some((slices, next, _)) if slices == read.slices => next,
            _ => 1,
        };
        let (next, whole) = if read.slice == expected {
            (read.slice % read.slices + 1, read.slice == read.slices)
        } else {
            (1, false)
        };
        tx.execute(
            "INSERT INTO proofs (repository, slices, next_slice, whole_read)
             VALUES (?1, ?2, ?3, CASE WHEN ?4 THEN ?5 END)
             ON CONFLICT (repository) DO UPDATE SET slices = excluded.slices,
                 next_slice = excluded.next_slice,
                 whole_read = CASE WHEN ?4 THEN ?5 ELSE proofs.whole_read END",
            params![read.repository, read.slices, next, whole, now],
        )?;
        tx.commit()?;
        let whole_read = if whole {
            Some(now)
        } else {
            stored.and_then(|(_, _, read)| read)
        };
        Ok(Proof {
            repository: read.repository.clone(),
            slices: read.slices,
            next_slice: next,
            whole_read: whole_read.map(format_time).transpose()?,
        })
    }

    /// Where every repository's rotated check stands, and when each atom
    /// (of `host` only, if given) was last restored by a drill that passed.
    pub fn all_proofs(&self, host: Option<&str>) -> Result<Proofs, Error> {
        let mut atoms = self.restored()?;
        let mut repositories = self.proofs()?;
        if let Some(host) = host {
            atoms.retain(|a| a.host == host);
            // A repository's id is what its lease is taken by: a host
            // learns only those of the repositories it publishes.
            let mut kept = Vec::with_capacity(repositories.len());
            for proof in repositories {
                if self.uses_repository(host, &proof.repository)? {
                    kept.push(proof);
                }
            }
            repositories = kept;
        }
        Ok(Proofs {
            repositories,
            atoms,
        })
    }

    /// When each atom was last restored by a drill that passed, and last
    /// proven to load, newest first.
    pub fn restored(&self) -> Result<Vec<Restored>, Error> {
        let mut stmt = self.conn.prepare(
            "SELECT host, atom, max(timestamp) AS at,
                 max(CASE WHEN loaded = 1 THEN timestamp END)
             FROM verifications WHERE ok = 1
             GROUP BY host, atom ORDER BY at DESC, host, atom",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(Restored {
                host: row.get(0)?,
                atom: row.get(1)?,
                restored: format_time(row.get(2)?)?,
                loaded: row.get::<_, Option<i64>>(3)?.map(format_time).transpose()?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(slice: u32, slices: u32) -> SliceRead {
        SliceRead {
            repository: "r1".into(),
            slices,
            slice,
        }
    }

    #[test]
    fn an_atom_is_proven_to_load_only_by_a_drill_that_loaded_it() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        let drill = |at: &str, ok, loaded| crate::wire::model::Verification {
            timestamp: at.into(),
            host: "h1".into(),
            atom: "pg/shop".into(),
            backup_id: String::new(),
            ok,
            message: String::new(),
            loaded,
        };
        store.add_verification(&drill("2026-01-01T01:00:00Z", true, Some(true)))?;
        store.add_verification(&drill("2026-01-02T01:00:00Z", true, None))?;
        store.add_verification(&drill("2026-01-03T01:00:00Z", false, Some(false)))?;
        let restored = store.restored()?;
        assert_eq!(restored.len(), 1);
        assert_eq!(restored[0].restored, "2026-01-02T01:00:00Z");
        assert_eq!(restored[0].loaded.as_deref(), Some("2026-01-01T01:00:00Z"));
        Ok(())
    }

    #[test]
    fn a_host_learns_the_proofs_of_its_own_repositories_only() -> Result<(), Error> {
        use crate::wire::api::{Plan, PlannedRepository};
        let mut store = Store::open_in_memory()?;
        let (ours, theirs) = ("a".repeat(64), "b".repeat(64));
        for (host, id) in [("h1", &ours), ("h2", &theirs)] {
            let plan = Plan {
                host: host.into(),
                replace: true,
                sources: Vec::new(),
                repositories: Some(vec![PlannedRepository {
                    name: "primary".into(),
                    id: id.clone(),
                    location: "/srv/repo".into(),
                }]),
            };
            store.publish_plan(&plan, 0)?;
            let mut slice = read(1, 3);
            slice.repository = id.clone();
            store.record_slice(&slice, 100)?;
        }
        let ids = |proofs: Proofs| -> Vec<String> {
            proofs
                .repositories
                .into_iter()
                .map(|p| p.repository)
                .collect()
        };
        assert_eq!(
            ids(store.all_proofs(Some("h1"))?),
            std::slice::from_ref(&ours)
        );
        assert_eq!(ids(store.all_proofs(None)?), [ours, theirs]);
        Ok(())
    }

    #[test]
    fn a_round_of_slices_in_order_proves_the_whole() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        assert_eq!(store.record_slice(&read(1, 3), 100)?.next_slice, 2);
        let p = store.record_slice(&read(2, 3), 200)?;
        assert_eq!((p.next_slice, p.whole_read), (3, None));
        let p = store.record_slice(&read(3, 3), 300)?;
        assert_eq!((p.next_slice, p.whole_read), (1, Some(format_time(300)?)));
        // Out of order: back to slice 1, the last proof stays.
        let p = store.record_slice(&read(3, 3), 400)?;
        assert_eq!((p.next_slice, p.whole_read), (1, Some(format_time(300)?)));
        // Another number of slices begins a new round.
        assert_eq!(store.record_slice(&read(1, 3), 500)?.next_slice, 2);
        let p = store.record_slice(&read(2, 2), 600)?;
        assert_eq!((p.slices, p.next_slice), (2, 1));
        assert!(store.record_slice(&read(4, 3), 700).is_err());
        Ok(())
    }
}
