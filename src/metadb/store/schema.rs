//! The store's schema: its steps, one per release that changed it, and
//! applying those a database has not seen yet. What the tables mean to
//! the queries is the store's (`store.rs` and its other modules).

use super::Error;
use rusqlite::{Connection, TransactionBehavior};

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
];

/// Applies the steps of `migrations` that `conn` has not seen yet, all in one
/// transaction, so a crash leaves the old schema rather than half a new one.
pub(super) fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<(), Error> {
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
    tx.pragma_update(None, "user_version", migrations.len())?;
    tx.commit()?;
    Ok(())
}
