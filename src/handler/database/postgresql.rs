//! The `postgresql` handler's commands: one atom per database that
//! accepts connections (templates are left out), dumped with `pg_dump` in
//! the custom format, uncompressed (restic compresses and deduplicates),
//! so that `pg_restore` loads it under any name; and `_globals`, the
//! cluster's roles and tablespaces (`pg_dumpall --globals-only`), as an
//! atom of its own. A database called `_globals` is an error of the
//! discovery (an atom printed twice), never a silent collision.
//!
//! Restoring a database under its own name drops it and creates it again
//! from the dump (`pg_restore --create --clean --if-exists`), with its
//! database-level settings; under another name (`restore --as`) it creates
//! a new database, which must not exist, and loads the dump into it in one
//! transaction. `_globals` restores under its own name only, through
//! `psql`: roles that exist stay (their `CREATE` fails and is logged),
//! their attributes are set as dumped. The proof loads the dump into a
//! scratch database, counts its tables and drops it.

use super::{assign, Commands, Connection};

/// The libpq variables of `connection`, exported for the commands.
fn environment(connection: &Connection) -> String {
    let port = connection.port.map(|p| p.to_string());
    let vars: Vec<String> = [
        (
            "PGHOST",
            connection.host.as_ref().or(connection.socket.as_ref()),
        ),
        ("PGPORT", port.as_ref()),
        ("PGUSER", connection.user.as_ref()),
        ("PGPASSFILE", connection.credentials_file.as_ref()),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.map(|v| assign(key, v)))
    .collect();
    match vars.is_empty() {
        true => String::new(),
        false => format!("export {}; ", vars.join(" ")),
    }
}

pub fn commands(connection: &Connection) -> Commands {
    let env = environment(connection);
    let run = connection.run_as();
    // PGDATABASE names the database: a name with `=` given as --dbname
    // would be read as a connection string. A connection string without a
    // dbname takes it from PGDATABASE.
    let into = "--dbname=application_name=tabacco";
    let backup = format!(
        "{env}case ${{atom.name}} in _globals) {run}pg_dumpall --globals-only;; \
         *) PGDATABASE=${{atom.name}} {run}pg_dump --format=custom --compress=0;; esac"
    );
    let restore = format!(
        "{env}case ${{atom.name}} in \
         _globals) if [ ${{restore.name}} != ${{atom.name}} ]; then \
         echo 'tabacco: _globals (roles and tablespaces) restores under its own name only' >&2; exit 2; fi; \
         {run}psql --no-psqlrc --quiet --dbname=postgres;; \
         *) if [ ${{restore.name}} = ${{atom.name}} ]; then \
         {run}pg_restore --exit-on-error --create --clean --if-exists --dbname=postgres; \
         else {run}createdb --template=template0 -- ${{restore.name}} && \
         PGDATABASE=${{restore.name}} {run}pg_restore --exit-on-error --single-transaction {into}; fi;; esac"
    );
    let proof = format!(
        "{env}case ${{atom.name}} in \
         _globals) n=$(grep -c '^CREATE ROLE ') && echo \"roles $n\";; \
         *) {run}createdb --template=template0 -- ${{proof.name}} || exit; \
         PGDATABASE=${{proof.name}} {run}pg_restore --exit-on-error --single-transaction --no-owner --no-acl {into} && \
         PGDATABASE=${{proof.name}} {run}psql --no-psqlrc --no-align --tuples-only --quiet --command=\"SELECT 'tables ' || count(*) || ', ' || pg_size_pretty(pg_database_size(current_database())) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')\"; \
         s=$?; {run}dropdb -- ${{proof.name}}; exit $s;; esac"
    );
    let atoms = format!(
        "{env}echo _globals && {run}psql --no-psqlrc --no-align --tuples-only --quiet --dbname=postgres \
         --command='SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname'"
    );
    Commands {
        backup,
        restore,
        proof,
        atoms: Some(atoms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_is_in_the_environment_never_a_password() {
        let connection = Connection {
            host: Some("db 1".into()),
            port: Some(5433),
            user: Some("backup".into()),
            credentials_file: Some("/etc/tabacco/pgpass".into()),
            run_as: Some("postgres".into()),
            ..Connection::default()
        };
        let commands = commands(&connection);
        assert!(commands.backup.starts_with(
            "export PGHOST='db 1' PGPORT='5433' PGUSER='backup' PGPASSFILE='/etc/tabacco/pgpass'; case ${atom.name} in _globals) runuser -u 'postgres' -- pg_dumpall --globals-only;;"
        ), "{}", commands.backup);
        let plain = super::commands(&Connection::default());
        assert!(
            plain.backup.starts_with("case ${atom.name} in"),
            "{}",
            plain.backup
        );
    }
}
