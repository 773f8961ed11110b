//! The `mariadb` and `mysql` handlers' commands: one atom per database
//! (`information_schema` and `performance_schema` are never listed; the
//! default `exclude` leaves out `mysql` and `sys`), dumped with
//! `mariadb-dump --single-transaction` (a consistent snapshot of InnoDB
//! tables without locking them) with routines, events and triggers, and
//! without `--databases`: the dump names no database, so that it loads
//! under any name. `mysql` is the same under MySQL's program names
//! (`mysql`, `mysqldump`).
//!
//! Restoring under its own name drops the database and creates it again
//! (with the server's default character set) before loading the dump;
//! under another name (`restore --as`) it creates a new database, which
//! must not exist. The proof loads the dump into a scratch database,
//! checks that the dump is whole (it ends with `-- Dump completed`),
//! counts its tables and drops it.

use super::{Commands, Connection};
use crate::base::quote::sh;

/// The client options of `connection`: the option file first, as the
/// clients require.
fn options(connection: &Connection) -> String {
    let mut options = Vec::new();
    if let Some(file) = &connection.credentials_file {
        options.push(format!("--defaults-extra-file={}", sh(file)));
    }
    if let Some(host) = &connection.host {
        options.push(format!("--host={}", sh(host)));
    }
    if let Some(port) = connection.port {
        options.push(format!("--port={port}"));
    }
    if let Some(socket) = &connection.socket {
        options.push(format!("--socket={}", sh(socket)));
    }
    if let Some(user) = &connection.user {
        options.push(format!("--user={}", sh(user)));
    }
    options.iter().map(|o| format!(" {o}")).collect()
}

pub fn commands(connection: &Connection, mysql: bool) -> Commands {
    let (client, dump) = match mysql {
        true => ("mysql", "mysqldump"),
        false => ("mariadb", "mariadb-dump"),
    };
    let run = connection.run_as();
    let client = format!("{run}{client}{}", options(connection));
    let dump = format!("{run}{dump}{}", options(connection));
    // An identifier in backquotes, its backquotes doubled.
    let quoted = |name: &str| format!("q=$(printf '%s' {name} | sed 's/`/``/g')");
    let backup = format!(
        "{dump} --single-transaction --routines --events --triggers --hex-blob -- ${{atom.name}}"
    );
    let restore = format!(
        "{}; if [ ${{restore.name}} = ${{atom.name}} ]; then \
         s=\"DROP DATABASE IF EXISTS \\`$q\\`; CREATE DATABASE \\`$q\\`\"; \
         else s=\"CREATE DATABASE \\`$q\\`\"; fi; \
         {client} --execute=\"$s\" && {client} --database=${{restore.name}}",
        quoted("${restore.name}")
    );
    let proof = format!(
        "p=${{proof.name}}; d=${{proof.dir}}; {client} --execute=\"CREATE DATABASE \\`$p\\`\" || exit; \
         awk -v done=\"$d/whole\" '{{ print }} END {{ if ($0 ~ /^-- Dump completed/) printf \"\" > done }}' | {client} --database=\"$p\"; s=$?; \
         if [ $s = 0 ] && [ ! -e \"$d/whole\" ]; then echo 'the dump is cut short: it does not end with -- Dump completed' >&2; s=1; fi; \
         if [ $s = 0 ]; then {client} --batch --skip-column-names --execute=\"SELECT CONCAT('tables ', COUNT(*)) FROM information_schema.tables WHERE table_schema = '$p'\"; s=$?; fi; \
         {client} --execute=\"DROP DATABASE \\`$p\\`\"; exit $s"
    );
    let atoms = format!(
        "{client} --batch --skip-column-names --raw --execute=\"SELECT schema_name FROM information_schema.schemata \
         WHERE schema_name NOT IN ('information_schema', 'performance_schema') ORDER BY schema_name\""
    );
    Commands {
        backup,
        restore,
        proof,
        atoms: Some(atoms),
    }
}
