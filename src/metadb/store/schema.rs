//! The store's schema: its steps, one per release that changed it, and
//! applying those a database has not seen yet. What the tables mean to
//! the queries is the store's (`store.rs` and its other modules).

use super::Error;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

/// The schema, one step per release that changed it. Never edit or reorder a
/// step that has shipped: append a new one. `PRAGMA user_version` records how
/// many have been applied.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the records of model.rs. Timestamps are UTC unix seconds. `atoms.name`
    // keeps the BINARY collation so that `GLOB 'users/*'` becomes a range scan
    // on `atoms_name`, which also holds `dataset_id` so that ranking versions
    // (`num_versions`) needs no lookup in `atoms`.
    "CREATE TABLE backups (
        id TEXT PRIMARY KEY NOT NULL,
        timestamp INTEGER NOT NULL,
        host TEXT NOT NULL
    );
    CREATE INDEX backups_host_timestamp ON backups (host, timestamp);
    CREATE INDEX backups_timestamp ON backups (timestamp);
    CREATE TABLE datasets (
        id TEXT PRIMARY KEY NOT NULL,
        backup_id TEXT NOT NULL REFERENCES backups (id) ON DELETE CASCADE,
        source TEXT NOT NULL,
        snapshot_id TEXT NOT NULL,
        total_files INTEGER NOT NULL,
        total_bytes INTEGER NOT NULL,
        bytes_added INTEGER NOT NULL,
        duration REAL NOT NULL
    );
    CREATE INDEX datasets_backup_id ON datasets (backup_id);
    CREATE INDEX datasets_source ON datasets (source);
    CREATE TABLE atoms (
        dataset_id TEXT NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        path TEXT,
        PRIMARY KEY (dataset_id, name)
    );
    CREATE INDEX atoms_name ON atoms (name, dataset_id);",
    // 2: restore drills (`tabacco verify`), newest per host for the fleet view.
    "CREATE TABLE verifications (
        id INTEGER PRIMARY KEY,
        timestamp INTEGER NOT NULL,
        host TEXT NOT NULL,
        atom TEXT NOT NULL,
        backup_id TEXT NOT NULL,
        ok INTEGER NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX verifications_host_timestamp ON verifications (host, timestamp);",
    // 3: restore requests for agents, kept as an audit trail. `request` is
    // the RestoreRequest as posted (its plan), as JSON.
    "CREATE TABLE restore_requests (
        id TEXT PRIMARY KEY NOT NULL,
        host TEXT NOT NULL,
        created INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        state TEXT NOT NULL,
        message TEXT NOT NULL,
        request TEXT NOT NULL
    );
    CREATE INDEX restore_requests_host_state ON restore_requests (host, state, created);",
    // 4: each atom carries its backup's time, and `atoms_name` orders an
    // atom's versions by it, so that the newest versions of the atoms a
    // pattern matches are read off the index, a few entries per name, with
    // no lookup in `datasets` or `backups` for the versions not returned
    // (a prefix find over 1,000,000 atoms: 26 ms before, 2 ms after).
    "ALTER TABLE atoms ADD COLUMN timestamp INTEGER NOT NULL DEFAULT 0;
    UPDATE atoms SET timestamp = (SELECT b.timestamp FROM datasets d
        JOIN backups b ON b.id = d.backup_id WHERE d.id = atoms.dataset_id);
    DROP INDEX atoms_name;
    CREATE INDEX atoms_name ON atoms (name, timestamp);",
    // 5: fleet health. Every attempt (backup, prune, verify) with its
    // outcome, unique on what identifies it so that a spooled one sent
    // twice is kept once; `sources` holds each host's source's plan (a
    // NULL schedule: not planned, not watched) beside the sum of its backup
    // attempts (the last one, the last success) as they arrive, so that the
    // fleet's status is one scan of one table, whatever the number of
    // attempts; `hosts` says when a host was last heard of and whether an
    // admin retired it.
    "CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        host TEXT NOT NULL,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        backup_id TEXT NOT NULL,
        start INTEGER NOT NULL,
        end INTEGER NOT NULL,
        state TEXT NOT NULL,
        failure TEXT NOT NULL,
        message TEXT NOT NULL,
        detail TEXT NOT NULL,
        datasets INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX attempts_identity ON attempts (host, source, kind, start, backup_id);
    CREATE INDEX attempts_start ON attempts (start);
    CREATE INDEX attempts_end ON attempts (end);
    CREATE TABLE sources (
        host TEXT NOT NULL,
        source TEXT NOT NULL,
        schedule TEXT,
        next_due INTEGER,
        grace INTEGER,
        start INTEGER,
        end INTEGER,
        state TEXT,
        message TEXT,
        success INTEGER,
        PRIMARY KEY (host, source)
    ) WITHOUT ROWID;
    CREATE TABLE hosts (
        host TEXT PRIMARY KEY NOT NULL,
        last_seen INTEGER NOT NULL,
        retired INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;",
    // 6: each atom carries its backup's host, and `atoms_host` orders a
    // host's atoms by name and time, so that a find restricted to one host
    // reads that host's entries only, whatever the size of the fleet (one
    // host's `*` among 1,300,000 atoms: 2.7 s before).
    "ALTER TABLE atoms ADD COLUMN host TEXT NOT NULL DEFAULT '';
    UPDATE atoms SET host = (SELECT b.host FROM datasets d
        JOIN backups b ON b.id = d.backup_id WHERE d.id = atoms.dataset_id);
    CREATE INDEX atoms_host ON atoms (host, name, timestamp);",
    // 7: one maintainer per repository. `leases` says which host may prune
    // and check a repository (by restic's repository id) until when;
    // `sources.retention` the policy a host published for its source (JSON
    // of `api::Policy`), by which a maintainer prunes it; `proofs` where the rotated `restic check --read-data-subset` of a
    // repository goes next and when the whole of it was last read back.
    "CREATE TABLE leases (
        name TEXT PRIMARY KEY NOT NULL,
        holder TEXT NOT NULL,
        expires INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE proofs (
        repository TEXT PRIMARY KEY NOT NULL,
        slices INTEGER NOT NULL,
        next_slice INTEGER NOT NULL,
        whole_read INTEGER
    ) WITHOUT ROWID;
    ALTER TABLE sources ADD COLUMN retention TEXT;",
    // 8: copies. `holdings` says which repositories hold each dataset:
    // `primary` (agent.yml's repository, where every dataset is recorded
    // first) and copies by name; a dataset no repository holds is removed.
    // `copy_routes` says which host's source is copied where, so that what
    // a copy lacks is counted as its lag.
    "CREATE TABLE holdings (
        dataset_id TEXT NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
        repository TEXT NOT NULL,
        PRIMARY KEY (dataset_id, repository)
    ) WITHOUT ROWID;
    INSERT INTO holdings (dataset_id, repository) SELECT id, 'primary' FROM datasets;
    CREATE TABLE copy_routes (
        host TEXT NOT NULL,
        source TEXT NOT NULL,
        repository TEXT NOT NULL,
        PRIMARY KEY (host, source, repository)
    ) WITHOUT ROWID;",
    // 9: ids are a host's own. A backup is (host, id), and so is a dataset,
    // which carries its host like its atoms and holdings do: another host
    // that learns an id (from the running jobs, or from the tags of a
    // shared repository) and records under it first makes a record of its
    // own, not a conflict with the owner's. The tables are rebuilt with
    // their rowids, which order ties in a find; `migrate` runs this with
    // foreign keys off (dropping a parent would delete its children) and
    // checks them before committing.
    "CREATE TABLE backups_9 (
        id TEXT NOT NULL,
        timestamp INTEGER NOT NULL,
        host TEXT NOT NULL,
        PRIMARY KEY (host, id)
    );
    INSERT INTO backups_9 (rowid, id, timestamp, host)
        SELECT rowid, id, timestamp, host FROM backups;
    CREATE TABLE datasets_9 (
        host TEXT NOT NULL,
        id TEXT NOT NULL,
        backup_id TEXT NOT NULL,
        source TEXT NOT NULL,
        snapshot_id TEXT NOT NULL,
        total_files INTEGER NOT NULL,
        total_bytes INTEGER NOT NULL,
        bytes_added INTEGER NOT NULL,
        duration REAL NOT NULL,
        PRIMARY KEY (host, id),
        FOREIGN KEY (host, backup_id) REFERENCES backups_9 (host, id) ON DELETE CASCADE
    );
    INSERT INTO datasets_9 (rowid, host, id, backup_id, source, snapshot_id, total_files,
            total_bytes, bytes_added, duration)
        SELECT d.rowid, b.host, d.id, d.backup_id, d.source, d.snapshot_id, d.total_files,
            d.total_bytes, d.bytes_added, d.duration
        FROM datasets d JOIN backups b ON b.id = d.backup_id;
    CREATE TABLE atoms_9 (
        host TEXT NOT NULL,
        dataset_id TEXT NOT NULL,
        name TEXT NOT NULL,
        path TEXT,
        timestamp INTEGER NOT NULL,
        PRIMARY KEY (host, dataset_id, name),
        FOREIGN KEY (host, dataset_id) REFERENCES datasets_9 (host, id) ON DELETE CASCADE
    );
    INSERT INTO atoms_9 (rowid, host, dataset_id, name, path, timestamp)
        SELECT rowid, host, dataset_id, name, path, timestamp FROM atoms;
    CREATE TABLE holdings_9 (
        host TEXT NOT NULL,
        dataset_id TEXT NOT NULL,
        repository TEXT NOT NULL,
        PRIMARY KEY (host, dataset_id, repository),
        FOREIGN KEY (host, dataset_id) REFERENCES datasets_9 (host, id) ON DELETE CASCADE
    ) WITHOUT ROWID;
    INSERT INTO holdings_9 (host, dataset_id, repository)
        SELECT b.host, h.dataset_id, h.repository FROM holdings h
        JOIN datasets d ON d.id = h.dataset_id JOIN backups b ON b.id = d.backup_id;
    DROP TABLE holdings;
    DROP TABLE atoms;
    DROP TABLE datasets;
    DROP TABLE backups;
    ALTER TABLE backups_9 RENAME TO backups;
    ALTER TABLE datasets_9 RENAME TO datasets;
    ALTER TABLE atoms_9 RENAME TO atoms;
    ALTER TABLE holdings_9 RENAME TO holdings;
    CREATE INDEX backups_host_timestamp ON backups (host, timestamp);
    CREATE INDEX backups_timestamp ON backups (timestamp);
    CREATE INDEX datasets_backup_id ON datasets (host, backup_id);
    CREATE INDEX datasets_source ON datasets (source);
    CREATE INDEX atoms_name ON atoms (name, timestamp);
    CREATE INDEX atoms_host ON atoms (host, name, timestamp);",
    // 10: proofs that a dump loads: a drill that fed the atom to its
    // source's `proof_command` says whether it loaded (NULL: no proof).
    "ALTER TABLE verifications ADD COLUMN loaded INTEGER;",
    // 11: repositories as fleet objects. `repositories` says which host
    // publishes which repository (by restic id) under which name and
    // location, by which the server lets a host take only the leases of
    // repositories it uses; `datasets.repository` the restic id of the
    // repository a dataset was backed up to (NULL for older records: the
    // primary its host publishes).
    "CREATE TABLE repositories (
        host TEXT NOT NULL,
        name TEXT NOT NULL,
        id TEXT NOT NULL,
        location TEXT NOT NULL,
        PRIMARY KEY (host, name)
    ) WITHOUT ROWID;
    CREATE INDEX repositories_id ON repositories (id, host);
    ALTER TABLE datasets ADD COLUMN repository TEXT;",
];

/// Applies the steps of `migrations` that `conn` has not seen yet, all in one
/// transaction, so a crash leaves the old schema rather than half a new one.
/// Foreign keys are off meanwhile (a step that rebuilds a table drops the
/// old one, which would delete its children), checked before committing,
/// and on again after.
pub(super) fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<(), Error> {
    // Only outside a transaction does this take effect.
    conn.pragma_update(None, "foreign_keys", false)?;
    let migrated = apply(conn, migrations);
    conn.pragma_update(None, "foreign_keys", true)?;
    migrated
}

fn apply(conn: &mut Connection, migrations: &[&str]) -> Result<(), Error> {
    // Immediate: two processes opening a new file must not both migrate it.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let applied: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let Some(pending) = usize::try_from(applied)
        .ok()
        .and_then(|applied| migrations.get(applied..))
    else {
        return Err(Error::Conflict(format!(
            "database schema version {applied} is unknown to this tabacco (it knows up to {})",
            migrations.len()
        )));
    };
    if pending.is_empty() {
        return Ok(());
    }
    for step in pending {
        tx.execute_batch(step)?;
    }
    let broken: Option<String> = tx
        .query_row("PRAGMA foreign_key_check", [], |row| row.get(0))
        .optional()?;
    if let Some(table) = broken {
        return Err(Error::Conflict(format!(
            "the database's schema cannot be brought up to date: table {table} would refer to \
             rows that do not exist"
        )));
    }
    tx.pragma_update(None, "user_version", migrations.len())?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadb::store::{Store, PRIMARY};
    use crate::wire::model::FindRequest;

    // Issue 26.1: ids became a host's own in step 9, which rebuilds the
    // tables of records; what a database of step 8 held is kept, under its
    // hosts, with its order and its cascades.
    #[test]
    fn a_database_of_schema_8_keeps_its_records_under_their_hosts() -> Result<(), Error> {
        let path = std::env::temp_dir().join(format!(
            "tabacco-schema-{}-{:?}.db",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_file(&path);
        {
            let mut conn = Connection::open(&path)?;
            migrate(&mut conn, &MIGRATIONS[..8])?;
            conn.execute_batch(
                "INSERT INTO backups VALUES ('b1', 100, 'web1'), ('b2', 100, 'web2');
                 INSERT INTO datasets VALUES ('d1', 'b1', 'u', 's1', 1, 1, 1, 1.0),
                                             ('d2', 'b2', 'u', 's2', 1, 1, 1, 1.0);
                 INSERT INTO atoms VALUES ('d1', 'u/a', NULL, 100, 'web1'),
                                          ('d2', 'u/a', '/p', 100, 'web2');
                 INSERT INTO holdings VALUES ('d1', 'primary'), ('d1', 'offsite'),
                                             ('d2', 'primary');",
            )?;
        }
        let mut store = Store::open(&path)?;
        let on: i64 = store
            .conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
        assert_eq!(on, 1);
        let parent = |table: &str| -> rusqlite::Result<String> {
            store.conn.query_row(
                &format!("SELECT \"table\" FROM pragma_foreign_key_list('{table}')"),
                [],
                |r| r.get(0),
            )
        };
        assert_eq!(parent("datasets")?, "backups");
        assert_eq!(parent("atoms")?, "datasets");
        assert_eq!(parent("holdings")?, "datasets");
        let mut found = Vec::new();
        let all = FindRequest {
            pattern: "*".into(),
            ..FindRequest::default()
        };
        store.for_each_found(&all, |b| {
            found.push(b);
            Ok::<(), Error>(())
        })?;
        // Same time: the backup recorded last comes first, as before.
        let ids: Vec<(&str, &str, &str)> = found
            .iter()
            .map(|b| {
                (
                    b.host.as_str(),
                    b.id.as_str(),
                    b.datasets[0].snapshot_id.as_str(),
                )
            })
            .collect();
        assert_eq!(ids, [("web2", "b2", "s2"), ("web1", "b1", "s1")]);
        assert_eq!(found[1].datasets[0].repositories, [PRIMARY, "offsite"]);
        assert_eq!(found[0].datasets[0].atoms[0].path.as_deref(), Some("/p"));
        // Removing cascades to atoms and holdings, then the empty backup.
        let d1 = ["d1".to_string()];
        assert_eq!(store.remove_datasets("web1", &d1, PRIMARY)?, 1);
        assert_eq!(store.remove_datasets("web1", &d1, "offsite")?, 1);
        let count = |table: &str| -> rusqlite::Result<i64> {
            store
                .conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        };
        assert_eq!(
            (count("backups")?, count("atoms")?, count("holdings")?),
            (1, 1, 1)
        );
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
        Ok(())
    }
}
