//! The metadata database: which backups, datasets and atoms exist, in SQLite.
//!
//! One `Store` serves both the embedded mode (`run` and `query` open a file in
//! the work directory) and the metadb HTTP server, so both answer a
//! `FindRequest` the same way. This module owns the queries, `schema` the
//! tables and their migrations, `record` the validation of what gets
//! recorded; none of them knows anything of HTTP, tokens or restic. A `Store` is `Send` but not `Sync`: a server shares it behind a
//! mutex.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::{Type, Value};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::wire::model::{Atom, Backup, Dataset, FindRequest, Verification};

/// How long after its due time a source not attempted is overdue, unless
/// configured otherwise.
pub const DEFAULT_OVERDUE_GRACE: Duration = Duration::from_secs(3600);
/// How long attempts are kept unless configured otherwise.
pub const DEFAULT_ATTEMPT_RETENTION: Duration = Duration::from_secs(90 * 86_400);

mod console;
mod copies;
mod health;
mod lease;
mod proof;
pub mod record;
mod repository;
mod request;
mod schema;

use schema::{migrate, MIGRATIONS};

pub use crate::wire::api::PRIMARY;
pub use console::{Holding, HostRecord, Run, SourceRecord, MAX_RUNS};
pub use health::Clock;
pub use lease::MAX_LEASE_SECS;
pub use proof::MAX_SLICES;

/// Longest glob a find takes, in bytes: room for a character class per
/// character of the longest name.
const MAX_PATTERN_BYTES: usize = 4 * record::MAX_NAME_BYTES;

/// The newest recorded backup of one host's source (for the fleet view).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewestBackup {
    pub host: String,
    pub source: String,
    /// Unix seconds.
    pub timestamp: i64,
}

/// Why a store operation failed. Callers branch on it: over HTTP an
/// `InvalidRequest` is the client's fault (400) and a `Conflict` a 409.
#[derive(Debug)]
pub enum Error {
    /// SQLite failed: I/O, a locked or corrupt database, a bug.
    Sqlite(rusqlite::Error),
    /// The request can never succeed as written (an empty id, a bad timestamp).
    InvalidRequest(String),
    /// The request contradicts what is already recorded, or the database was
    /// written by a newer tabacco.
    Conflict(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sqlite(err) => write!(f, "database error: {err}"),
            Error::InvalidRequest(msg) => write!(f, "invalid request: {msg}"),
            Error::Conflict(msg) => write!(f, "conflict: {msg}"),
        }
    }
}

// The SQLite error is part of the one-line message too, as every error of
// tabacco's is reported in one line; the source is for a caller to branch on.
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Sqlite(e) => Some(e),
            Error::InvalidRequest(_) | Error::Conflict(_) => None,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Error {
        Error::Sqlite(err)
    }
}

/// An open metadata database with an up-to-date schema.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens the database at `path`, creating it if missing, and brings its
    /// schema up to date.
    pub fn open(path: &Path) -> Result<Store, Error> {
        Store::init(Connection::open(path)?)
    }

    /// Opens a private database that disappears when dropped.
    #[cfg(test)]
    pub fn open_in_memory() -> Result<Store, Error> {
        Store::init(Connection::open_in_memory()?)
    }

    /// Bounds this connection's page cache to `kib` KiB (SQLite's default
    /// is 2 MiB).
    pub fn with_cache_kib(self, kib: u32) -> Result<Store, Error> {
        self.conn
            .pragma_update(None, "cache_size", -i64::from(kib))?;
        Ok(self)
    }

    fn init(mut conn: Connection) -> Result<Store, Error> {
        // An agent's `run` and the server may hold the same file: wait for a
        // writer rather than fail at once.
        conn.busy_timeout(Duration::from_secs(5))?;
        // WAL lets readers run beside the one writer. FULL syncs the log at
        // every commit: a record acknowledged is on disk, since its agent
        // forgets it then (NORMAL could lose the last ones on power loss).
        // The server commits concurrent writes together (see `group`), one
        // sync for all of them. An in-memory database answers "memory" and
        // stays as it is.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Foreign keys are on from here (see `migrate`).
        migrate(&mut conn, MIGRATIONS)?;
        Ok(Store { conn })
    }

    /// Runs `f` in one transaction, so that the writes it makes are
    /// committed, and synced, together. Each write inside keeps its own
    /// all-or-nothing savepoint, so one refused leaves the others be.
    /// Returns what `f` returned and whether the group was committed (if
    /// the transaction cannot even begin, each write commits on its own).
    pub fn group<T>(&mut self, f: impl FnOnce(&mut Store) -> T) -> (T, Result<(), Error>) {
        let began = self.conn.execute_batch("BEGIN IMMEDIATE").is_ok();
        let out = f(self);
        if !began {
            return (out, Ok(()));
        }
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => (out, Ok(())),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                (out, Err(e.into()))
            }
        }
    }

    /// Begins a write: a transaction of its own, or a savepoint in the
    /// transaction of a [`Store::group`].
    fn begin(&mut self) -> Result<Write<'_>, Error> {
        Ok(if self.conn.is_autocommit() {
            Write::Alone(
                self.conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?,
            )
        } else {
            Write::InGroup(self.conn.savepoint()?)
        })
    }

    /// Records `dataset` as part of `backup` (whose own `datasets` are
    /// ignored), creating the backup on its first dataset.
    ///
    /// Idempotent on the dataset id, so a client may retry: recording a
    /// dataset id again under the same backup changes nothing. Ids are the
    /// host's own: the same ids of another host are another record. A
    /// dataset id the host recorded under another backup is a `Conflict`;
    /// a backup dated more than an hour ahead is refused.
    pub fn add_dataset(&mut self, backup: &Backup, dataset: &Dataset) -> Result<(), Error> {
        let now = crate::base::time::unix_now();
        let timestamp =
            record::check_dataset(backup, dataset, now).map_err(Error::InvalidRequest)?;
        self.insert_dataset(&backup.id, &backup.host, timestamp, dataset)
    }

    /// [`Store::add_dataset`] for backup `id` of `host` made by this
    /// process, whose time `timestamp` (UTC unix seconds) it read from its
    /// own clock: nothing to parse back.
    pub fn add_dataset_at(
        &mut self,
        id: &str,
        host: &str,
        timestamp: i64,
        dataset: &Dataset,
    ) -> Result<(), Error> {
        record::check_dataset_of(id, host, dataset).map_err(Error::InvalidRequest)?;
        let now = crate::base::time::unix_now();
        let text = timestamp.to_string();
        record::not_ahead("backup timestamp", &text, timestamp, now)
            .map_err(Error::InvalidRequest)?;
        self.insert_dataset(id, host, timestamp, dataset)
    }

    /// Records `dataset`, checked, as part of backup `backup_id` of `host`.
    /// Ids are `host`'s own: another host's backup or dataset of the same
    /// id is another record.
    fn insert_dataset(
        &mut self,
        backup_id: &str,
        backup_host: &str,
        timestamp: i64,
        dataset: &Dataset,
    ) -> Result<(), Error> {
        let tx = self.begin()?;

        let recorded: Option<i64> = tx
            .query_row(
                "SELECT timestamp FROM backups WHERE host = ?1 AND id = ?2",
                [backup_host, backup_id],
                |row| row.get(0),
            )
            .optional()?;
        // A backup's later datasets keep the time it was first recorded with.
        let timestamp = match recorded {
            Some(recorded) => recorded,
            None => {
                tx.execute(
                    "INSERT INTO backups (id, timestamp, host) VALUES (?1, ?2, ?3)",
                    params![backup_id, timestamp, backup_host],
                )?;
                timestamp
            }
        };

        let recorded_in: Option<String> = tx
            .query_row(
                "SELECT backup_id FROM datasets WHERE host = ?1 AND id = ?2",
                [backup_host, &dataset.id],
                |row| row.get(0),
            )
            .optional()?;
        match recorded_in {
            Some(recorded) if recorded == backup_id => return Ok(()),
            Some(recorded) => {
                return Err(Error::Conflict(format!(
                    "dataset {} of host {backup_host} is recorded in backup {recorded}, not {backup_id}",
                    dataset.id
                )));
            }
            None => {}
        }

        tx.execute(
            "INSERT INTO datasets (host, id, backup_id, source, snapshot_id, total_files,
                 total_bytes, bytes_added, duration, repository)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                backup_host,
                dataset.id,
                backup_id,
                dataset.source,
                dataset.snapshot_id,
                dataset.total_files,
                dataset.total_bytes,
                dataset.bytes_added,
                dataset.duration,
                dataset.repository,
            ],
        )?;
        tx.execute(
            "INSERT INTO holdings (host, dataset_id, repository) VALUES (?1, ?2, ?3)",
            params![backup_host, dataset.id, PRIMARY],
        )?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO atoms (host, dataset_id, name, path, timestamp)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for atom in &dataset.atoms {
                insert.execute(params![
                    backup_host,
                    dataset.id,
                    atom.name,
                    atom.path,
                    timestamp
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records that `repository` (`primary`, or a copy's name) no longer
    /// holds `host`'s datasets `ids` (those of other hosts are left alone),
    /// and removes the datasets no repository holds any more, and backups
    /// left with no dataset. Returns how many datasets `repository` held;
    /// ids not recorded are not an error, so a retry is harmless. Each id
    /// costs a few lookups by key, whatever the number of the host's
    /// backups (see [`REMOVAL`]).
    pub fn remove_datasets(
        &mut self,
        host: &str,
        ids: &[String],
        repository: &str,
    ) -> Result<usize, Error> {
        copies::check_repository(repository)?;
        let tx = self.begin()?;
        let mut removed = 0;
        {
            let [release, delete, empty] = REMOVAL;
            let mut release = tx.prepare(release)?;
            let mut delete = tx.prepare(delete)?;
            let mut empty = tx.prepare(empty)?;
            let mut emptied = std::collections::BTreeSet::new();
            for id in ids {
                removed += release.execute(params![host, id, repository])?;
                let backup: Option<String> = delete
                    .query_row(params![host, id], |row| row.get(0))
                    .optional()?;
                emptied.extend(backup);
            }
            for backup in emptied {
                empty.execute(params![host, backup])?;
            }
        }
        tx.commit()?;
        Ok(removed)
    }

    /// Records the outcome of a restore drill.
    pub fn add_verification(&mut self, v: &Verification) -> Result<(), Error> {
        let timestamp = record::check_verification(v).map_err(Error::InvalidRequest)?;
        self.conn.execute(
            "INSERT INTO verifications (timestamp, host, atom, backup_id, ok, message, loaded)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                timestamp,
                v.host,
                v.atom,
                v.backup_id,
                v.ok,
                v.message,
                v.loaded
            ],
        )?;
        Ok(())
    }

    /// The newest backup of every host's source, so that a host or source
    /// gone silent shows.
    pub fn newest_backups(&self) -> Result<Vec<NewestBackup>, Error> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT b.host, d.source, MAX(b.timestamp) FROM datasets d
             JOIN backups b ON b.host = d.host AND b.id = d.backup_id GROUP BY b.host, d.source
             ORDER BY b.host, d.source",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(NewestBackup {
                host: row.get(0)?,
                source: row.get(1)?,
                timestamp: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Finds the atoms whose full name matches `req.pattern` (a shell glob),
    /// optionally of one host, strictly older than a time, or only the newest
    /// `num_versions` of each atom name.
    ///
    /// Hands `f` the backups newest first, each holding only the datasets
    /// and atoms that matched (datasets and atoms keep the order they were
    /// recorded in), one at a time as its rows are read: an answer of any
    /// size holds one backup in memory. An error of `f` ends the find.
    pub fn for_each_found<E: From<Error>>(
        &self,
        req: &FindRequest,
        mut f: impl FnMut(Backup) -> Result<(), E>,
    ) -> Result<(), E> {
        let walk = req.pattern == "*"
            && req.host.is_none()
            && match req.num_versions {
                None => true,
                Some(n) => self.few_versions(n)?,
            };
        let (sql, args) = find_query(req, walk)?;
        let mut stmt = self.conn.prepare_cached(&sql).map_err(Error::from)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |row| {
                Ok(Found {
                    backup: Backup {
                        id: row.get(0)?,
                        timestamp: format_time(row.get(1)?)?,
                        host: row.get(2)?,
                        datasets: Vec::new(),
                    },
                    dataset: Dataset {
                        id: row.get(3)?,
                        source: row.get(4)?,
                        atoms: Vec::new(),
                        snapshot_id: row.get(5)?,
                        total_files: row.get(6)?,
                        total_bytes: row.get(7)?,
                        bytes_added: row.get(8)?,
                        // A REAL column: older versions stored fractions.
                        duration: row.get::<_, f64>(9)?.round() as i64,
                        repositories: Vec::new(),
                        repository: row.get(12)?,
                    },
                    atom: Atom {
                        name: row.get(10)?,
                        path: row.get(11)?,
                    },
                })
            })
            .map_err(Error::from)?;
        let mut current: Option<Backup> = None;
        for row in rows {
            let Found {
                backup,
                dataset,
                atom,
            } = row.map_err(Error::from)?;
            if let Some(last) = current
                .as_mut()
                .filter(|last| last.id == backup.id && last.host == backup.host)
            {
                match last.datasets.last_mut() {
                    Some(last) if last.id == dataset.id => last.atoms.push(atom),
                    _ => last.datasets.push(Dataset {
                        atoms: vec![atom],
                        ..dataset
                    }),
                }
                continue;
            }
            let next = Backup {
                datasets: vec![Dataset {
                    atoms: vec![atom],
                    ..dataset
                }],
                ..backup
            };
            if let Some(mut done) = current.replace(next) {
                self.fill_repositories(&mut done)?;
                f(done)?;
            }
        }
        if let Some(mut done) = current {
            self.fill_repositories(&mut done)?;
            f(done)?;
        }
        Ok(())
    }
}

/// How many names [`Store::few_versions`] samples, and how many versions of
/// each it counts at most.
const SAMPLED_NAMES: i64 = 16;
const SAMPLED_VERSIONS: i64 = 64;

impl Store {
    /// Whether the atom names have on average at most 4 × `n` versions,
    /// judged from the names of atoms spread evenly over the table (a few
    /// index lookups). Walking every version for the newest `n` of each
    /// name beats ranking names then sorting when there are few: at 3
    /// versions a name, 3.2 s against 3.5-5.6 s for 1,000,000 names, and
    /// the first row at once; at 100, 1.65 s against 0.1 s.
    fn few_versions(&self, n: u32) -> Result<bool, Error> {
        let last: Option<i64> = self
            .conn
            .query_row("SELECT max(rowid) FROM atoms", [], |row| row.get(0))?;
        let Some(last) = last else { return Ok(true) };
        let mut count = self.conn.prepare_cached(
            "SELECT count(*) FROM (SELECT 1 FROM atoms
                 WHERE name = (SELECT name FROM atoms WHERE rowid >= ?1 ORDER BY rowid LIMIT 1)
                 LIMIT ?2)",
        )?;
        let mut versions = 0;
        for i in 0..SAMPLED_NAMES {
            let rowid = 1 + last.saturating_sub(1) / SAMPLED_NAMES * i;
            versions +=
                count.query_row(params![rowid, SAMPLED_VERSIONS], |row| row.get::<_, i64>(0))?;
        }
        Ok(versions <= SAMPLED_NAMES * 4 * i64::from(n))
    }
}

/// Refuses a find that can never succeed as written (an empty or overlong
/// pattern, a bad time, no versions), before anything is read.
pub fn check_find(req: &FindRequest) -> Result<(), Error> {
    find_query(req, false).map(|_| ())
}

/// A write in progress; dropped without `commit`, it rolls back.
enum Write<'a> {
    Alone(rusqlite::Transaction<'a>),
    InGroup(rusqlite::Savepoint<'a>),
}

impl std::ops::Deref for Write<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            Write::Alone(tx) => tx,
            Write::InGroup(sp) => sp,
        }
    }
}

impl Write<'_> {
    fn commit(self) -> rusqlite::Result<()> {
        match self {
            Write::Alone(tx) => tx.commit(),
            Write::InGroup(sp) => sp.commit(),
        }
    }
}

/// The statements of [`Store::remove_datasets`], each by key: release a
/// dataset of host `?1` and id `?2` from repository `?3`; delete it if no
/// repository holds it any more, returning its backup; delete that backup
/// if it has no dataset left. (Deleting datasets by `backup_id IN (SELECT
/// id FROM backups WHERE host = ?)` listed the host's every backup for
/// each id: removing 3,000 of 18,000 took 38 s.)
const REMOVAL: [&str; 3] = [
    "DELETE FROM holdings WHERE host = ?1 AND dataset_id = ?2 AND repository = ?3",
    "DELETE FROM datasets WHERE host = ?1 AND id = ?2
     AND NOT EXISTS (SELECT 1 FROM holdings WHERE host = ?1 AND dataset_id = ?2)
     RETURNING backup_id",
    "DELETE FROM backups WHERE host = ?1 AND id = ?2
     AND NOT EXISTS (SELECT 1 FROM datasets WHERE host = ?1 AND backup_id = ?2)",
];

/// The one query behind [`Store::find_atoms`] and its arguments; with
/// `walk`, a `*` without a host walks backups instead of names. Filters
/// that were not asked for are left out of the SQL rather than disabled with
/// `?n IS NULL`, so the planner can use the indexes that fit.
fn find_query(req: &FindRequest, walk: bool) -> Result<(String, Vec<Value>), Error> {
    if req.pattern.is_empty() {
        return Err(Error::InvalidRequest("empty pattern".to_string()));
    }
    // Longer than any name it could match needs, and SQLite refuses GLOB
    // patterns over 50,000 bytes as "too complex" (a 500, were it asked).
    if req.pattern.len() > MAX_PATTERN_BYTES {
        return Err(Error::InvalidRequest(format!(
            "pattern of {} bytes, over {MAX_PATTERN_BYTES}",
            req.pattern.len()
        )));
    }
    let mut args = vec![Value::Text(crate::base::name::sqlite_glob(&req.pattern))];
    // Filters on one version of an atom, written for the alias `v` of
    // `atoms`. With a host, the names come from that host's entries of
    // `atoms_host`, not from the whole fleet's in `atoms_name`.
    let mut version_filters = String::new();
    let mut names_filter = String::new();
    if let Some(host) = &req.host {
        args.push(Value::Text(host.clone()));
        version_filters.push_str(&format!(" AND v.host = ?{}", args.len()));
        names_filter.push_str(&format!(" AND host = ?{}", args.len()));
    }
    if let Some(older_than) = &req.older_than {
        let t = parse_time(older_than, "older_than")?;
        // Stored times are whole seconds: "older than 10:00:00.5" takes
        // 10:00:00 too, so round a fractional bound up.
        let bound = t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0);
        args.push(Value::Integer(bound));
        version_filters.push_str(&format!(" AND v.timestamp < ?{}", args.len()));
    }
    // A dataset recorded without its repository is in its host's primary.
    const COLUMNS: &str = "b.id, b.timestamp, b.host, d.id, d.source, d.snapshot_id,
        d.total_files, d.total_bytes, d.bytes_added, d.duration, a.name, a.path,
        coalesce(d.repository, (SELECT r.id FROM repositories r
            WHERE r.host = d.host AND r.name = 'primary'))";
    const JOINS: &str = "atoms a
        JOIN datasets d ON d.host = a.host AND d.id = a.dataset_id
        JOIN backups b ON b.host = d.host AND b.id = d.backup_id";
    const ORDER: &str = "b.timestamp DESC, b.rowid DESC, d.rowid, a.rowid";
    if req.num_versions == Some(0) {
        return Err(Error::InvalidRequest(
            "num_versions must be at least 1".to_string(),
        ));
    }
    if walk && req.pattern == "*" && req.host.is_none() {
        // Every atom of the fleet: ranking every name and then sorting the
        // whole answer would hold its first row until the last was read.
        // Backups are walked newest first instead, keeping each atom with
        // fewer than `num_versions` newer versions: the answer comes out
        // in order as it is read, and streams. It reads every version, so
        // it is taken only where names have few (`Store::few_versions`).
        // Without a host, the version filters are the time bound alone.
        let atom_filters = version_filters.replace("v.", "a.");
        let newest = match req.num_versions {
            None => String::new(),
            Some(n) => {
                args.push(Value::Integer(i64::from(n)));
                let n = args.len();
                format!(
                    " AND (SELECT count(*) FROM (SELECT 1 FROM atoms v
                         WHERE v.name = a.name {version_filters}
                         AND (v.timestamp, v.rowid) > (a.timestamp, a.rowid) LIMIT ?{n})) < ?{n}"
                )
            }
        };
        // CROSS JOIN fixes the order of the loops (SQLite's documented way).
        let sql = format!(
            "SELECT {COLUMNS} FROM backups b CROSS JOIN datasets d CROSS JOIN atoms a
             WHERE d.host = b.host AND d.backup_id = b.id
                 AND a.host = d.host AND a.dataset_id = d.id AND a.name GLOB ?1
                 {atom_filters} {newest}
             ORDER BY {ORDER}"
        );
        return Ok((sql, args));
    }
    let sql = match req.num_versions {
        None => format!(
            "SELECT {COLUMNS} FROM {JOINS} WHERE a.rowid IN (
                 SELECT v.rowid FROM atoms v WHERE v.name GLOB ?1 {version_filters})
             ORDER BY {ORDER}"
        ),
        Some(n) => {
            args.push(Value::Integer(i64::from(n)));
            // For each name the pattern matches, its newest versions are the
            // last entries of `atoms_name` under that name (a tie in time
            // goes to the atom recorded last); only those are fetched whole.
            format!(
                "SELECT {COLUMNS}
                 FROM (SELECT DISTINCT name FROM atoms WHERE name GLOB ?1 {names_filter})
                     AS names, {JOINS}
                 WHERE a.rowid IN (
                     SELECT v.rowid FROM atoms v
                     WHERE v.name = names.name {version_filters}
                     ORDER BY v.timestamp DESC, v.rowid DESC LIMIT ?{})
                 ORDER BY {ORDER}",
                args.len()
            )
        }
    };
    Ok((sql, args))
}

fn parse_time(s: &str, what: &str) -> Result<DateTime<Utc>, Error> {
    record::time(what, s).map_err(Error::InvalidRequest)
}

/// Renders stored unix seconds (column 1 of a find) as RFC 3339 UTC.
fn format_time(secs: i64) -> rusqlite::Result<String> {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                1,
                Type::Integer,
                format!("timestamp {secs} is out of range").into(),
            )
        })
}

/// One row of a find: an atom with its dataset and backup, both without
/// children.
struct Found {
    backup: Backup,
    dataset: Dataset,
    atom: Atom,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::model::{RestoreRequest, RestoreState};

    fn backup(id: &str, timestamp: &str, host: &str) -> Backup {
        Backup {
            id: id.to_string(),
            timestamp: timestamp.to_string(),
            host: host.to_string(),
            datasets: Vec::new(),
        }
    }

    fn dataset(id: &str, source: &str, atoms: &[&str]) -> Dataset {
        Dataset {
            id: id.to_string(),
            source: source.to_string(),
            atoms: atoms
                .iter()
                .map(|name| Atom {
                    name: name.to_string(),
                    path: None,
                })
                .collect(),
            snapshot_id: format!("snap-{id}"),
            total_files: 3,
            total_bytes: 5_000_000_000,
            bytes_added: 1024,
            duration: 2,
            repositories: Vec::new(),
            repository: None,
        }
    }

    /// Every backup `req` finds, in order.
    fn find_atoms(store: &Store, req: &FindRequest) -> Result<Vec<Backup>, Error> {
        let mut found = Vec::new();
        store.for_each_found(req, |backup| {
            found.push(backup);
            Ok::<(), Error>(())
        })?;
        Ok(found)
    }

    fn find(pattern: &str) -> FindRequest {
        FindRequest {
            pattern: pattern.to_string(),
            ..FindRequest::default()
        }
    }

    /// (backup id, dataset id, atom name) of every atom found, in order.
    fn found(store: &Store, req: &FindRequest) -> Result<Vec<(String, String, String)>, Error> {
        let mut out = Vec::new();
        for b in find_atoms(store, req)? {
            for d in b.datasets {
                for a in d.atoms {
                    out.push((b.id.clone(), d.id.clone(), a.name));
                }
            }
        }
        Ok(out)
    }

    fn triples(expected: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
        expected
            .iter()
            .map(|(b, d, a)| (b.to_string(), d.to_string(), a.to_string()))
            .collect()
    }

    /// Two hosts, three backups: host1 at 1:00 and 3:00, host2 at 2:00.
    fn fleet() -> Result<Store, Error> {
        let mut store = Store::open_in_memory()?;
        let b1 = backup("b1", "2024-05-01T01:00:00Z", "host1");
        let b2 = backup("b2", "2024-05-01T02:00:00Z", "host2");
        let b3 = backup("b3", "2024-05-01T03:00:00Z", "host1");
        let users = ["users/alice", "users/bob", "users/carol"];
        let sql = ["sql/db1", "sql/db2", "sql/db10"];
        store.add_dataset(&b1, &dataset("d1u", "users", &users))?;
        store.add_dataset(&b1, &dataset("d1s", "sql", &sql))?;
        store.add_dataset(&b2, &dataset("d2u", "users", &users))?;
        store.add_dataset(&b3, &dataset("d3u", "users", &users[..2]))?;
        store.add_dataset(&b3, &dataset("d3s", "sql", &sql[..1]))?;
        Ok(store)
    }

    #[test]
    fn round_trip() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        let b = backup("b1", "2024-05-01T12:34:56Z", "host1");
        let mut files = dataset("d1", "files", &["files/etc", "files/home"]);
        files.atoms[0].path = Some("/etc".to_string());
        files.atoms[1].path = Some("/home".to_string());
        let db = dataset("d2", "db", &["db/main"]);
        store.add_dataset(&b, &files)?;
        store.add_dataset(&b, &db)?;

        let got = find_atoms(&store, &find("*"))?;
        // A find says which repositories hold each dataset.
        let held = |d: Dataset| Dataset {
            repositories: vec![PRIMARY.to_string()],
            ..d
        };
        let expected = vec![Backup {
            datasets: vec![held(files), held(db)],
            ..b
        }];
        assert_eq!(got, expected);
        Ok(())
    }

    #[test]
    fn timestamps_come_back_as_utc_seconds() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        let b = backup("b1", "2024-05-01T14:34:56.789+02:00", "host1");
        store.add_dataset(&b, &dataset("d1", "files", &["files/etc"]))?;
        let got = find_atoms(&store, &find("*"))?;
        assert_eq!(got[0].timestamp, "2024-05-01T12:34:56Z");
        Ok(())
    }

    #[test]
    fn backups_come_newest_first() -> Result<(), Error> {
        let store = fleet()?;
        let ids: Vec<String> = find_atoms(&store, &find("*"))?
            .into_iter()
            .map(|b| b.id)
            .collect();
        assert_eq!(ids, ["b3", "b2", "b1"]);
        Ok(())
    }

    #[test]
    fn re_adding_a_dataset_changes_nothing() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        let b = backup("b1", "2024-05-01T01:00:00Z", "host1");
        let d = dataset("d1", "users", &["users/alice"]);
        store.add_dataset(&b, &d)?;
        let before = find_atoms(&store, &find("*"))?;

        store.add_dataset(&b, &d)?;
        // A retry carrying different contents is still the same dataset.
        store.add_dataset(&b, &dataset("d1", "users", &["users/bob"]))?;
        assert_eq!(find_atoms(&store, &find("*"))?, before);
        Ok(())
    }

    #[test]
    fn dataset_in_another_backup_conflicts() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        let d = dataset("d1", "users", &["users/alice"]);
        store.add_dataset(&backup("b1", "2024-05-01T01:00:00Z", "host1"), &d)?;
        let err = store.add_dataset(&backup("b2", "2024-05-01T02:00:00Z", "host1"), &d);
        assert!(matches!(err, Err(Error::Conflict(_))), "{err:?}");
        // The conflicting request left nothing behind, not even its backup.
        assert_eq!(
            found(&store, &find("*"))?,
            triples(&[("b1", "d1", "users/alice")])
        );
        Ok(())
    }

    // Issue 26.1: hostb read the backup and dataset ids of hosta's running
    // job (from /api/active_jobs, or the tags of the shared repository)
    // and recorded a dataset under them first; hosta's own record was then
    // refused 409 and never spooled. Ids are a host's own: the same ids of
    // two hosts are two records.
    #[test]
    fn another_host_cannot_take_a_hosts_ids() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        let (early, late) = ("2024-05-01T01:00:00Z", "2024-05-01T02:00:00Z");
        store.add_dataset(&backup("b1", early, "hostb"), &dataset("d1", "u", &["u/x"]))?;
        store.add_dataset(&backup("b1", late, "hosta"), &dataset("d1", "u", &["u/a"]))?;
        // Again: idempotent for each host.
        store.add_dataset(&backup("b1", late, "hosta"), &dataset("d1", "u", &["u/a"]))?;
        let all = find_atoms(&store, &find("*"))?;
        let hosts: Vec<(&str, &str, &str)> = all
            .iter()
            .map(|b| (b.host.as_str(), b.id.as_str(), b.timestamp.as_str()))
            .collect();
        assert_eq!(hosts, [("hosta", "b1", late), ("hostb", "b1", early)]);
        assert_eq!(all[0].datasets[0].atoms[0].name, "u/a");
        // Each host removes its own only.
        assert_eq!(store.remove_datasets("hostb", &["d1".into()], PRIMARY)?, 1);
        let left = find_atoms(&store, &find("*"))?;
        assert_eq!((left.len(), left[0].host.as_str()), (1, "hosta"));
        assert_eq!(left[0].datasets[0].repositories, [PRIMARY]);
        Ok(())
    }

    // Issue 26.2: hostb recorded `users/alice` dated 9999-12-31, which
    // then was every find's newest version of it, for ever. A backup dated
    // more than an hour ahead is refused, here as on the server.
    #[test]
    fn a_record_dated_ahead_is_refused() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        let at =
            |secs: i64| crate::base::time::format(Utc::now() + chrono::Duration::seconds(secs));
        let d = |id: &str| dataset(id, "users", &["users/alice"]);
        for (id, when) in [("d1", "9999-12-31T23:59:59Z".to_string()), ("d2", at(7200))] {
            let err = store.add_dataset(&backup(id, &when, "hostb"), &d(id));
            let Err(Error::InvalidRequest(msg)) = err else {
                panic!("{when}: {err:?}");
            };
            assert!(msg.contains("more than an hour in the future"), "{msg}");
        }
        let t = Utc::now().timestamp() + 7200;
        let err = store.add_dataset_at("b3", "hostb", t, &d("d3"));
        assert!(matches!(err, Err(Error::InvalidRequest(_))), "{err:?}");
        // A clock a little ahead is taken.
        store.add_dataset(&backup("b4", &at(1800), "hostb"), &d("d4"))?;
        assert_eq!(
            found(&store, &find("*"))?,
            triples(&[("b4", "d4", "users/alice")])
        );
        Ok(())
    }

    #[test]
    fn invalid_records_are_refused() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        let t = "2024-05-01T01:00:00Z";
        let good = dataset("d1", "u", &["u/a"]);
        let cases = [
            (backup("b1", "yesterday", "host1"), good.clone()),
            (backup("b1", "2024-05-01 01:00:00", "host1"), good.clone()),
            (backup("", t, "host1"), good.clone()),
            (backup("b1", t, ""), good.clone()),
            (backup("b1", t, "host1"), dataset("", "u", &["u/a"])),
            (backup("b1", t, "host1"), dataset("d1", "u", &["u/a", ""])),
            (
                backup("b1", t, "host1"),
                dataset("d1", "u", &["u/a", "u/b", "u/a"]),
            ),
        ];
        for (b, d) in cases {
            let err = store.add_dataset(&b, &d);
            assert!(
                matches!(err, Err(Error::InvalidRequest(_))),
                "{b:?} {d:?}: {err:?}"
            );
        }
        assert!(find_atoms(&store, &find("*"))?.is_empty());
        Ok(())
    }

    #[test]
    fn invalid_finds_are_refused() -> Result<(), Error> {
        let store = fleet()?;
        let cases = [
            find(""),
            FindRequest {
                older_than: Some("last week".to_string()),
                ..find("*")
            },
            FindRequest {
                num_versions: Some(0),
                ..find("*")
            },
        ];
        for req in cases {
            let err = find_atoms(&store, &req);
            assert!(
                matches!(err, Err(Error::InvalidRequest(_))),
                "{req:?}: {err:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn glob_patterns() -> Result<(), Error> {
        let store = fleet()?;
        let names = |pattern: &str| -> Result<Vec<String>, Error> {
            let mut names: Vec<String> = found(&store, &find(pattern))?
                .into_iter()
                .map(|(_, _, name)| name)
                .collect();
            names.sort();
            names.dedup();
            Ok(names)
        };
        let all = [
            "sql/db1",
            "sql/db10",
            "sql/db2",
            "users/alice",
            "users/bob",
            "users/carol",
        ];
        assert_eq!(names("*")?, all);
        assert_eq!(
            names("users/*")?,
            ["users/alice", "users/bob", "users/carol"]
        );
        assert_eq!(names("sql/db?")?, ["sql/db1", "sql/db2"]);
        assert_eq!(names("sql/db[12]*")?, ["sql/db1", "sql/db10", "sql/db2"]);
        assert_eq!(names("users/bob")?, ["users/bob"]);
        assert!(names("users/bo")?.is_empty());
        // Case-sensitive, like the shell.
        assert!(names("Users/*")?.is_empty());
        assert_eq!(
            found(&store, &find("users/bob"))?,
            triples(&[
                ("b3", "d3u", "users/bob"),
                ("b2", "d2u", "users/bob"),
                ("b1", "d1u", "users/bob"),
            ])
        );
        Ok(())
    }

    #[test]
    fn host_filter() -> Result<(), Error> {
        let store = fleet()?;
        let req = FindRequest {
            host: Some("host2".to_string()),
            ..find("*")
        };
        let got = find_atoms(&store, &req)?;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, "b2");
        assert_eq!(got[0].host, "host2");
        let req = FindRequest {
            host: Some("host3".to_string()),
            ..find("*")
        };
        assert!(find_atoms(&store, &req)?.is_empty());
        Ok(())
    }

    #[test]
    fn num_versions_counts_across_hosts() -> Result<(), Error> {
        let store = fleet()?;
        let req = FindRequest {
            num_versions: Some(2),
            ..find("users/*")
        };
        // carol is not in b3, so her two newest are in b2 and b1.
        assert_eq!(
            found(&store, &req)?,
            triples(&[
                ("b3", "d3u", "users/alice"),
                ("b3", "d3u", "users/bob"),
                ("b2", "d2u", "users/alice"),
                ("b2", "d2u", "users/bob"),
                ("b2", "d2u", "users/carol"),
                ("b1", "d1u", "users/carol"),
            ])
        );
        let req = FindRequest {
            num_versions: Some(1),
            host: Some("host1".to_string()),
            ..find("users/*")
        };
        assert_eq!(
            found(&store, &req)?,
            triples(&[
                ("b3", "d3u", "users/alice"),
                ("b3", "d3u", "users/bob"),
                ("b1", "d1u", "users/carol"),
            ])
        );
        Ok(())
    }

    #[test]
    fn num_versions_breaks_ties_by_the_dataset_recorded_last() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        let t = "2024-05-01T01:00:00Z";
        store.add_dataset(&backup("b1", t, "host1"), &dataset("d1", "u", &["u/a"]))?;
        store.add_dataset(&backup("b2", t, "host2"), &dataset("d2", "u", &["u/a"]))?;
        let req = FindRequest {
            num_versions: Some(1),
            ..find("u/a")
        };
        for _ in 0..3 {
            assert_eq!(found(&store, &req)?, triples(&[("b2", "d2", "u/a")]));
        }
        Ok(())
    }

    #[test]
    fn older_than_is_strict() -> Result<(), Error> {
        let store = fleet()?;
        let ids = |older_than: &str, num_versions: Option<u32>| -> Result<Vec<String>, Error> {
            let req = FindRequest {
                older_than: Some(older_than.to_string()),
                num_versions,
                ..find("users/alice")
            };
            Ok(find_atoms(&store, &req)?
                .into_iter()
                .map(|b| b.id)
                .collect())
        };
        assert_eq!(ids("2024-05-01T02:00:00Z", None)?, ["b1"]);
        assert_eq!(ids("2024-05-01T02:00:01Z", None)?, ["b2", "b1"]);
        assert_eq!(ids("2024-05-01T02:00:00.5Z", None)?, ["b2", "b1"]);
        assert_eq!(ids("2024-05-01T04:00:00+02:00", None)?, ["b1"]);
        assert!(ids("2024-05-01T01:00:00Z", None)?.is_empty());
        // The newest version as of a point in time.
        assert_eq!(ids("2024-05-01T03:00:00Z", Some(1))?, ["b2"]);
        Ok(())
    }

    #[test]
    fn partly_matching_dataset_holds_only_the_matches() -> Result<(), Error> {
        let store = fleet()?;
        let got = find_atoms(
            &store,
            &FindRequest {
                host: Some("host2".to_string()),
                ..find("users/bob")
            },
        )?;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].datasets.len(), 1);
        let d = &got[0].datasets[0];
        assert_eq!(d.id, "d2u");
        assert_eq!(d.snapshot_id, "snap-d2u");
        assert_eq!(d.total_bytes, 5_000_000_000);
        let names: Vec<&str> = d.atoms.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["users/bob"]);
        // A backup keeps only its datasets that matched.
        let got = find_atoms(&store, &find("sql/db10"))?;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, "b1");
        assert_eq!(got[0].datasets.len(), 1);
        assert_eq!(got[0].datasets[0].id, "d1s");
        Ok(())
    }

    #[test]
    fn name_finds_use_the_name_index() -> Result<(), Error> {
        let store = fleet()?;
        for pattern in ["users/*", "users/alice", "sql/db?"] {
            for num_versions in [None, Some(1)] {
                let req = FindRequest {
                    num_versions,
                    ..find(pattern)
                };
                let (sql, args) = find_query(&req, false)?;
                let mut stmt = store.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let plan: Vec<String> = stmt
                    .query_map(rusqlite::params_from_iter(args), |row| row.get(3))?
                    .collect::<Result<_, _>>()?;
                let plan = plan.join("\n");
                assert!(
                    plan.contains("INDEX atoms_name (name>? AND name<?)"),
                    "{pattern}: {plan}"
                );
                // The newest versions come off the index, in its order.
                if num_versions.is_some() {
                    assert!(
                        plan.contains("SEARCH v USING COVERING INDEX atoms_name (name=?)")
                            && !plan.contains("TEMP B-TREE FOR ORDER BY\n"),
                        "{pattern}: {plan}"
                    );
                }
            }
        }
        Ok(())
    }

    // Issue 17: the newest version of every atom of the fleet was sorted
    // whole before its first row came out.
    #[test]
    fn every_atom_comes_out_in_order_without_a_sort() -> Result<(), Error> {
        let store = fleet()?;
        for num_versions in [None, Some(1), Some(2)] {
            for older_than in [None, Some("2024-05-01T03:00:00Z".to_string())] {
                let every = FindRequest {
                    num_versions,
                    older_than: older_than.clone(),
                    ..find("*")
                };
                let plan = plan(&store, &every)?;
                assert!(
                    plan.starts_with("SCAN b USING INDEX backups_timestamp"),
                    "{plan}"
                );
                assert!(!plan.contains("TEMP B-TREE FOR ORDER BY"), "{plan}");
                // `**` matches the same names the general way.
                let general = FindRequest {
                    pattern: "**".to_string(),
                    ..every.clone()
                };
                assert!(!found(&store, &every)?.is_empty());
                assert_eq!(found(&store, &every)?, found(&store, &general)?);
            }
        }
        // A tie in time goes to the atom recorded last, as by name.
        let mut store = Store::open_in_memory()?;
        let t = "2024-05-01T01:00:00Z";
        store.add_dataset(&backup("b1", t, "host1"), &dataset("d1", "u", &["u/a"]))?;
        store.add_dataset(&backup("b2", t, "host2"), &dataset("d2", "u", &["u/a"]))?;
        let newest = FindRequest {
            num_versions: Some(1),
            ..find("*")
        };
        assert_eq!(found(&store, &newest)?, triples(&[("b2", "d2", "u/a")]));
        Ok(())
    }

    #[test]
    fn backups_are_walked_only_where_names_have_few_versions() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        assert!(store.few_versions(1)?, "empty");
        for i in 0..10 {
            let t = format!("2024-05-01T{i:02}:00:00Z");
            let b = backup(&format!("b{i}"), &t, "host1");
            store.add_dataset(&b, &dataset(&format!("d{i}"), "u", &["u/a", "u/b"]))?;
        }
        // Ten versions a name: more than 4 × 1 and 4 × 2, not 4 × 3.
        assert!(!store.few_versions(1)?);
        assert!(!store.few_versions(2)?);
        assert!(store.few_versions(3)?);
        assert!(fleet()?.few_versions(1)?);
        Ok(())
    }

    /// The plan SQLite picks for `req`, one step a line.
    fn plan(store: &Store, req: &FindRequest) -> Result<String, Error> {
        let (sql, args) = find_query(req, true)?;
        let mut stmt = store.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(args), |row| row.get(3))?
            .collect::<Result<_, _>>()?;
        Ok(plan.join("\n"))
    }

    // Issue 26.6c: with 18,000 backups of one host, removing 3,000 of its
    // datasets took 38 s, and other hosts' writes timed out meanwhile:
    // each id's delete listed the host's every backup (`backup_id IN
    // (SELECT id FROM backups WHERE host = ?)`), and a last delete went
    // through them all for the empty ones. Each statement now finds its
    // rows by their whole key, and so do the cascades to atoms and
    // holdings; the timing is case 12 of `make bench`.
    #[test]
    fn removing_a_dataset_reads_only_its_own_rows() -> Result<(), Error> {
        let store = fleet()?;
        let explain = |sql: &str| -> Result<Vec<String>, Error> {
            let mut stmt = store.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let args = ["h"; 3];
            let plan = stmt
                .query_map(
                    rusqlite::params_from_iter(&args[..stmt.parameter_count()]),
                    |r| r.get(3),
                )?
                .collect::<Result<_, _>>()?;
            Ok(plan)
        };
        let cascades = [
            "SELECT 1 FROM atoms WHERE host = ?1 AND dataset_id = ?2",
            "SELECT 1 FROM holdings WHERE host = ?1 AND dataset_id = ?2",
            "SELECT 1 FROM datasets WHERE host = ?1 AND backup_id = ?2",
        ];
        for sql in REMOVAL.iter().chain(&cascades) {
            for step in explain(sql)? {
                // A subquery of one row, unlike a list, is looked up by key.
                if step.ends_with("SCALAR SUBQUERY 1") {
                    continue;
                }
                let by_key = step.starts_with("SEARCH ")
                    && (step.contains("(host=? AND id=?)")
                        || step.contains("(host=? AND dataset_id=?")
                        || step.contains("(host=? AND backup_id=?)"));
                assert!(by_key, "{sql}: {step}");
            }
        }
        Ok(())
    }

    // Issue 17: a find restricted to a host walked every name of the fleet
    // the pattern matched (`atoms_name`), then each name's versions of all
    // hosts, so its cost grew with the fleet.
    #[test]
    fn host_finds_read_only_that_hosts_entries() -> Result<(), Error> {
        let store = fleet()?;
        for pattern in ["*", "users/*", "users/alice"] {
            for num_versions in [None, Some(1), Some(3)] {
                let req = FindRequest {
                    num_versions,
                    host: Some("host1".to_string()),
                    ..find(pattern)
                };
                let plan = plan(&store, &req)?;
                // Every step that reads atoms to choose them goes through
                // `atoms_host` with the host bound, never a scan of names.
                assert!(
                    plan.contains("INDEX atoms_host (host=?"),
                    "{pattern}: {plan}"
                );
                assert!(!plan.contains("atoms_name"), "{pattern}: {plan}");
                assert!(!plan.contains("SCAN atoms"), "{pattern}: {plan}");
                if num_versions.is_some() {
                    assert!(
                        plan.contains(
                            "SEARCH v USING COVERING INDEX atoms_host (host=? AND name=?)"
                        ),
                        "{pattern}: {plan}"
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn a_database_of_schema_4_gets_the_host_of_its_atoms() -> Result<(), Error> {
        let db = TempDb::new("migration5");
        {
            // As created by the release before: steps 1 to 4, written to.
            let mut conn = Connection::open(&db.0)?;
            migrate(&mut conn, &MIGRATIONS[..4])?;
            conn.execute_batch(
                "INSERT INTO backups VALUES ('b1', 100, 'web1'), ('b2', 200, 'web2');
                 INSERT INTO datasets VALUES ('d1', 'b1', 'u', 's', 1, 1, 1, 1.0),
                                             ('d2', 'b2', 'u', 's', 1, 1, 1, 1.0);
                 INSERT INTO atoms VALUES ('d1', 'u/a', NULL, 100), ('d1', 'u/b', NULL, 100),
                                          ('d2', 'u/a', NULL, 200);",
            )?;
        }
        let mut store = Store::open(&db.0)?;
        let hosts: Vec<String> = store
            .conn
            .prepare("SELECT host FROM atoms ORDER BY rowid")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        assert_eq!(hosts, ["web1", "web1", "web2"]);
        let web1 = FindRequest {
            num_versions: Some(1),
            host: Some("web1".to_string()),
            ..find("u/*")
        };
        assert_eq!(
            found(&store, &web1)?,
            triples(&[("b1", "d1", "u/a"), ("b1", "d1", "u/b")])
        );
        // Recorded after the upgrade: found by host too.
        let b3 = backup("b3", "2024-05-01T00:00:00Z", "web1");
        store.add_dataset(&b3, &dataset("d3", "u", &["u/a"]))?;
        assert_eq!(
            found(&store, &web1)?,
            triples(&[("b3", "d3", "u/a"), ("b1", "d1", "u/b")])
        );
        Ok(())
    }

    #[test]
    fn atoms_recorded_before_migration_4_get_their_backup_time() -> Result<(), Error> {
        let db = TempDb::new("migration4");
        {
            let mut conn = Connection::open(&db.0)?;
            migrate(&mut conn, &MIGRATIONS[..3])?;
            conn.execute_batch(
                "INSERT INTO backups VALUES ('b1', 100, 'h'), ('b2', 200, 'h');
                 INSERT INTO datasets VALUES ('d2', 'b2', 'u', 's', 1, 1, 1, 1.0),
                                             ('d1', 'b1', 'u', 's', 1, 1, 1, 1.0);
                 INSERT INTO atoms VALUES ('d2', 'u/a', NULL), ('d1', 'u/a', NULL);",
            )?;
        }
        let store = Store::open(&db.0)?;
        let newest = FindRequest {
            num_versions: Some(1),
            ..find("u/a")
        };
        assert_eq!(found(&store, &newest)?, triples(&[("b2", "d2", "u/a")]));
        let times: Vec<i64> = store
            .conn
            .prepare("SELECT timestamp FROM atoms ORDER BY rowid")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        assert_eq!(times, [200, 100]);
        Ok(())
    }

    #[test]
    fn migrations_set_the_schema_version() -> Result<(), Error> {
        let store = Store::open_in_memory()?;
        let version: usize = store
            .conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))?;
        assert_eq!(version, MIGRATIONS.len());
        Ok(())
    }

    /// Removes a test database file and its WAL companions.
    struct TempDb(std::path::PathBuf);

    impl TempDb {
        fn new(name: &str) -> TempDb {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            TempDb(std::env::temp_dir().join(format!(
                "tabacco-store-{name}-{}-{nanos}.db",
                std::process::id()
            )))
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let mut path = self.0.clone().into_os_string();
                path.push(suffix);
                let _ = std::fs::remove_file(path);
            }
        }
    }

    // Issue 20.8: with synchronous=NORMAL a record answered 200 could be
    // lost on power failure, after its agent had deleted it from its spool.
    #[test]
    fn a_commit_is_synced() -> Result<(), Error> {
        let db = TempDb::new("sync");
        let store = Store::open(&db.0)?;
        let level: i64 = store
            .conn
            .query_row("PRAGMA synchronous", [], |row| row.get(0))?;
        assert_eq!(level, 2, "FULL");
        Ok(())
    }

    #[test]
    fn a_refused_write_in_a_group_leaves_the_others_be() -> Result<(), Error> {
        let db = TempDb::new("group");
        let mut store = Store::open(&db.0)?;
        let (results, committed) = store.group(|store| {
            let b1 = backup("b1", "2024-05-01T01:00:00Z", "host1");
            let b2 = backup("b2", "2024-05-01T02:00:00Z", "host1");
            vec![
                store.add_dataset(&b1, &dataset("d1", "u", &["u/a"])),
                // d1 again, in another backup: refused, b2 not kept.
                store.add_dataset(&b2, &dataset("d1", "u", &["u/b"])),
                store.add_dataset(&b1, &dataset("d2", "u", &["u/c"])),
            ]
        });
        committed?;
        assert!(matches!(results[1], Err(Error::Conflict(_))));
        assert!(results[0].is_ok() && results[2].is_ok());
        let store = Store::open(&db.0)?;
        assert_eq!(
            found(&store, &find("u/*"))?,
            triples(&[("b1", "d1", "u/a"), ("b1", "d2", "u/c")])
        );
        let backups: i64 = store
            .conn
            .query_row("SELECT count(*) FROM backups", [], |row| row.get(0))?;
        assert_eq!(backups, 1);
        Ok(())
    }

    #[test]
    fn reopening_a_file_keeps_data_and_applies_only_new_migrations() -> Result<(), Error> {
        let db = TempDb::new("reopen");
        {
            let mut store = Store::open(&db.0)?;
            let b = backup("b1", "2024-05-01T01:00:00Z", "host1");
            store.add_dataset(&b, &dataset("d1", "u", &["u/a"]))?;
        }
        // Re-running the first step would fail: its tables exist.
        let store = Store::open(&db.0)?;
        assert_eq!(found(&store, &find("*"))?, triples(&[("b1", "d1", "u/a")]));
        let journal: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
        assert_eq!(journal, "wal");
        drop(store);

        // A later release appends a step; only that one runs.
        let mut next = MIGRATIONS.to_vec();
        next.push("ALTER TABLE datasets ADD COLUMN note TEXT");
        let mut conn = Connection::open(&db.0)?;
        migrate(&mut conn, &next)?;
        migrate(&mut conn, &next)?;
        let version: usize = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        assert_eq!(version, next.len());
        let notes: i64 = conn.query_row(
            "SELECT count(*) FROM datasets WHERE note IS NULL",
            [],
            |row| row.get(0),
        )?;
        assert_eq!(notes, 1);
        drop(conn);

        // This release then refuses the newer schema instead of misreading it.
        let err = Store::open(&db.0);
        assert!(matches!(err, Err(Error::Conflict(_))), "{:?}", err.err());
        Ok(())
    }

    #[test]
    fn errors_display_on_one_lowercase_line() {
        let errors = [
            Error::InvalidRequest("empty pattern".to_string()),
            Error::Conflict("dataset d1 is recorded in backup b1, not b2".to_string()),
            Error::Sqlite(rusqlite::Error::QueryReturnedNoRows),
        ];
        for err in errors {
            let msg = err.to_string();
            assert!(!msg.contains('\n') && !msg.ends_with('.'), "{msg}");
            assert!(msg.starts_with(|c: char| c.is_lowercase()), "{msg}");
        }
    }

    #[test]
    fn removing_datasets_is_scoped_to_their_host() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        let b1 = backup("b1", "2026-01-01T00:00:00Z", "web1");
        let b2 = backup("b2", "2026-01-01T00:00:00Z", "web2");
        store.add_dataset(&b1, &dataset("d1", "users", &["users/a"]))?;
        store.add_dataset(&b2, &dataset("d2", "users", &["users/b"]))?;
        let ids = vec!["d1".to_string(), "d2".to_string(), "nope".to_string()];
        assert_eq!(store.remove_datasets("web1", &ids, PRIMARY)?, 1);
        assert_eq!(
            store.remove_datasets("web1", &ids, PRIMARY)?,
            0,
            "a retry is harmless"
        );
        let all = find_atoms(&store, &find("*"))?;
        assert_eq!(
            all.len(),
            1,
            "web2's dataset stays, web1's empty backup goes"
        );
        assert_eq!(all[0].id, "b2");
        Ok(())
    }

    #[test]
    fn restore_requests_go_to_their_host_once() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        let item = crate::wire::model::RestoreItem {
            backup: backup("b1", "2026-01-01T00:00:00Z", "web1"),
            dataset: dataset("d1", "users", &["users/a"]),
        };
        let request = RestoreRequest {
            id: "r1".into(),
            host: "web2".into(),
            target: Some("/srv/restore".into()),
            overwrite: false,
            items: vec![item],
            state: RestoreState::Pending,
            message: String::new(),
            created: String::new(),
            updated: String::new(),
        };
        store.add_restore_request(&request, 100)?;
        store.add_restore_request(&request, 200)?;
        assert!(
            store.next_restore_request("web1", 300)?.is_none(),
            "not web1's"
        );
        let next = store
            .next_restore_request("web2", 300)?
            .ok_or(Error::Conflict("none".into()))?;
        assert_eq!((next.items.len(), next.state), (1, RestoreState::Running));
        assert_eq!(next.created, "1970-01-01T00:01:40Z");
        assert!(
            store.next_restore_request("web2", 300)?.is_none(),
            "handed out once"
        );
        assert!(
            !store.update_restore_request("web1", "r1", RestoreState::Succeeded, "", 400)?,
            "only its host reports"
        );
        let succeeded = RestoreState::Succeeded;
        assert!(store.update_restore_request("web2", "r1", succeeded, "2 atoms", 400)?);
        let done = store
            .restore_request("r1")?
            .ok_or(Error::Conflict("gone".into()))?;
        assert_eq!(
            (done.state, done.message.as_str()),
            (RestoreState::Succeeded, "2 atoms")
        );
        assert!(store
            .update_restore_request("web2", "r1", RestoreState::Pending, "", 500)
            .is_err());
        Ok(())
    }
}
