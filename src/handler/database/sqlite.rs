//! The `sqlite` handler's commands: each atom is a database file, its
//! `path`, dumped as SQL text with `sqlite3 .dump`, which reads in one
//! transaction (a consistent snapshot while the application writes: WAL
//! readers do not block it, a rollback-journal writer waits up to 10 s)
//! and loads into any SQLite version.
//!
//! Restoring under its own name builds a new database beside the file and
//! renames it over the file (the application must be stopped: it would
//! keep the old file open), removing a `-wal`, `-shm` or `-journal` file
//! of the old one; under another name (`restore --as NAME`) it builds
//! `NAME` in the same directory, which must not exist. The proof loads the
//! dump into a scratch file, checks that the dump is whole (it ends with
//! `COMMIT;`) and the database's integrity, and counts its tables.

use super::Commands;

pub fn commands() -> Commands {
    let backup = "sqlite3 -readonly -bail -cmd '.timeout 10000' ${atom.path} .dump".to_string();
    let restore = "p=${atom.path}; if [ ${restore.name} = ${atom.name} ]; then f=$p; \
         else f=$(dirname \"$p\")/${restore.name}; \
         if [ -e \"$f\" ]; then echo \"tabacco: $f exists\" >&2; exit 1; fi; fi; \
         t=\"$f.tabacco-restore\"; rm -f \"$t\" || exit; \
         if sqlite3 -bail \"$t\"; then rm -f \"$f-wal\" \"$f-shm\" \"$f-journal\" && mv \"$t\" \"$f\"; \
         else s=$?; rm -f \"$t\"; exit $s; fi"
        .to_string();
    let proof = "d=${proof.dir}; \
         awk -v done=\"$d/whole\" '{ print } END { if ($0 == \"COMMIT;\") printf \"\" > done }' | sqlite3 -bail \"$d/proof.db\" || exit; \
         if [ ! -e \"$d/whole\" ]; then echo 'the dump is cut short: it does not end with COMMIT;' >&2; exit 1; fi; \
         c=$(sqlite3 \"$d/proof.db\" 'PRAGMA integrity_check') || exit; \
         if [ \"$c\" != ok ]; then echo \"integrity check: $c\" >&2; exit 1; fi; \
         sqlite3 \"$d/proof.db\" \"SELECT 'tables ' || count(*) || ', integrity ok' FROM sqlite_master WHERE type = 'table'\""
        .to_string();
    Commands {
        backup,
        restore,
        proof,
        atoms: None,
    }
}
