//! The shipped database handlers against real servers (see `servers`):
//! several databases backed up with nothing but the handler and its
//! credentials, one dropped and restored by name with its contents exact,
//! one restored under another name, dumps that fail (wrong credentials, a
//! server that is down, access denied halfway, a database that is gone)
//! never recorded, and the verify drill's proof that a dump loads, which
//! fails for a dump cut short. Each test uses database names of its own on
//! the shared servers.

use crate::common::Fixture;
use crate::servers::{self, PASSWORD};

/// The recorded atoms' names.
fn recorded(f: &Fixture) -> Vec<String> {
    let mut names = crate::common::atom_names(&f.query(&["*"]));
    names.sort();
    names
}

/// `status --proofs --json`: when `atom` was proven to load, if it was.
fn loaded(f: &Fixture, atom: &str) -> Option<String> {
    let out = f.tabacco(&["status", "--proofs", "--json"]).success();
    let proofs: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let atoms = proofs["atoms"].as_array().unwrap();
    let found = atoms.iter().find(|a| a["atom"] == atom)?;
    found["loaded"].as_str().map(String::from)
}

/// The rows of table `t` of PostgreSQL database `db`, in order.
fn pg_rows(db: &str) -> String {
    servers::postgres().psql(db, "SELECT * FROM t ORDER BY 1")
}

/// Creates PostgreSQL database `db` with a table `t` of `rows` rows.
fn pg_database(db: &str, rows: u32) {
    let pg = servers::postgres();
    pg.create(db);
    pg.psql(
        db,
        &format!(
            "CREATE TABLE t (id int PRIMARY KEY, v text); \
             INSERT INTO t SELECT i, 'row ' || i || ' ''é\"$(x)' FROM generate_series(1, {rows}) i"
        ),
    );
}

#[test]
fn postgresql_backs_up_every_database_and_restores_one_by_name_or_as_another() {
    let pg = servers::postgres();
    let weird = "pg1_we'ird \"$(touch /tmp/pwned)\" é";
    pg_database("pg1_shop", 50);
    pg_database(weird, 7);
    let f = Fixture::new();
    let params = pg.params(&f.path("etc/pgpass"), PASSWORD);
    f.write(
        "etc/sources/pg.yml",
        &format!(
            "name: pg\nhandler: postgresql\nparams: {}\n",
            params.replace('}', ", include: [pg1_*, _globals]}")
        ),
    );
    let check = f.tabacco(&["check"]).success();
    assert!(
        check.stdout.contains("  handler   postgresql\n"),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.contains("PGPASSFILE=") && !check.stdout.contains(PASSWORD),
        "{}",
        check.stdout
    );
    f.tabacco(&["run"]).success();
    assert_eq!(
        recorded(&f),
        [
            "pg/_globals".to_string(),
            "pg/pg1_shop".into(),
            format!("pg/{weird}"),
        ]
    );
    let shop = pg_rows("pg1_shop");
    let other = pg_rows(weird);

    // Dropped, then restored by name into the live server.
    pg.psql("postgres", "DROP DATABASE pg1_shop");
    f.tabacco(&["restore", "--in-place", "pg/pg1_shop"])
        .success();
    assert_eq!(pg_rows("pg1_shop"), shop);
    // In place replaces what changed since.
    pg.psql(
        weird,
        "DELETE FROM t WHERE id > 3; CREATE TABLE extra (x int)",
    );
    f.tabacco(&["restore", "--in-place", &format!("pg/{weird}")])
        .success();
    assert_eq!(pg_rows(weird), other);
    assert_eq!(
        pg.psql(
            weird,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'extra'"
        ),
        "0\n"
    );

    // Under another name: a new database, the original untouched.
    let copy = "pg1 copy 'é'";
    f.tabacco(&["restore", "--in-place", "--as", copy, "pg/pg1_shop"])
        .success();
    assert_eq!(pg_rows(copy), shop);
    // Never over a database that exists.
    let again = f
        .tabacco(&["restore", "--in-place", "--as", copy, "pg/pg1_shop"])
        .status(1);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    // The roles restore under their own name only.
    let roles = f
        .tabacco(&["restore", "--in-place", "--as", "x", "pg/_globals"])
        .status(1);
    assert!(
        roles.stderr.contains("restores under its own name only"),
        "{}",
        roles.stderr
    );
    f.tabacco(&["restore", "--in-place", "pg/_globals"])
        .success();
    assert!(!std::path::Path::new("/tmp/pwned").exists());

    // To a file: the dump itself, which pg_restore reads.
    let dir = f.path("out");
    f.tabacco(&["restore", "--target", dir.to_str().unwrap(), "pg/pg1_shop"])
        .success();
    let mut list = pg.client("pg_restore");
    list.arg("--list").arg(dir.join("pg/pg1_shop"));
    assert!(servers::run(list).contains("TABLE DATA public t"));
}

#[test]
fn a_postgresql_dump_is_proven_to_load_and_one_cut_short_is_not() {
    let pg = servers::postgres();
    pg_database("pg2_good", 2000);
    let f = Fixture::new();
    let params = pg.params(&f.path("etc/pgpass"), PASSWORD);
    f.write(
        "etc/sources/good.yml",
        &format!(
            "name: good\nhandler: postgresql\nparams: {params}\natoms: [{{name: pg2_good}}]\n"
        ),
    );
    // The same dump cut short by a command that exits 0 all the same.
    f.write(
        "etc/sources/cut.yml",
        &format!(
            "name: cut\nhandler: postgresql\nparams: {}\natoms: [{{name: pg2_good}}]\n",
            params.replace(
                '}',
                &format!(
                    ", backup_command: \"PGHOST=127.0.0.1 PGPORT={} PGUSER=postgres PGPASSFILE={} PGDATABASE=${{atom.name}} pg_dump --format=custom --compress=0 | head -c 20000\"}}",
                    pg.port,
                    f.path("etc/pgpass").display()
                )
            )
        ),
    );
    f.tabacco(&["run"]).success();
    let out = f.tabacco(&["-v", "verify", "good"]).success();
    assert!(
        out.stderr.contains("and loaded: tables 1, "),
        "{}",
        out.stderr
    );
    assert!(loaded(&f, "good/pg2_good").is_some());
    // No scratch database is left behind.
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'tabacco_proof_%'"
        ),
        "0\n"
    );

    let out = f.tabacco(&["verify", "cut"]).status(1);
    assert!(
        out.stderr.contains("restore drill of cut/pg2_good")
            && out.stderr.contains("the dump does not load"),
        "{}",
        out.stderr
    );
    assert_eq!(loaded(&f, "cut/pg2_good"), None);
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'tabacco_proof_%'"
        ),
        "0\n"
    );
}

#[test]
fn a_postgresql_dump_that_fails_is_never_recorded() {
    let pg = servers::postgres();
    pg_database("pg3_ok", 3);
    pg_database("pg3_secret", 3);
    pg.psql(
        "pg3_secret",
        "CREATE TABLE u (x int); INSERT INTO u VALUES (1)",
    );
    pg.psql(
        "postgres",
        &format!(
            "CREATE ROLE pg3_reader LOGIN PASSWORD '{}'",
            PASSWORD.replace('\'', "''")
        ),
    );
    pg.psql("pg3_secret", "GRANT SELECT ON t TO pg3_reader");
    let f = Fixture::new();
    let good = pg.params(&f.path("etc/pgpass"), PASSWORD);
    let wrong = pg.params(&f.path("etc/wrong"), "not the password");
    // A database that went between discovery and dump: listed, but gone.
    f.write(
        "etc/sources/gone.yml",
        &format!("name: gone\nhandler: postgresql\nparams: {good}\natoms: [{{name: pg3_ok}}, {{name: pg3_gone}}]\n"),
    );
    f.write(
        "etc/sources/wrong.yml",
        &format!("name: wrong\nhandler: postgresql\nparams: {wrong}\natoms: [{{name: pg3_ok}}]\n"),
    );
    // Access denied halfway: the role reads t, not u.
    f.write(
        "etc/sources/denied.yml",
        &format!(
            "name: denied\nhandler: postgresql\nparams: {}\natoms: [{{name: pg3_secret}}]\n",
            good.replace("user: postgres", "user: pg3_reader")
        ),
    );
    std::fs::write(
        f.path("etc/pgpass"),
        format!(
            "127.0.0.1:{port}:*:postgres:{pw}\n127.0.0.1:{port}:*:pg3_reader:{pw}\n",
            port = pg.port,
            pw = PASSWORD.replace(':', "\\:")
        ),
    )
    .unwrap();
    // A server that is down.
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = down.local_addr().unwrap().port();
    drop(down);
    f.write(
        "etc/sources/down.yml",
        &format!(
            "name: down\nhandler: postgresql\nparams: {}\n",
            good.replace(&format!("port: {}", pg.port), &format!("port: {port}"))
        ),
    );
    let out = f.tabacco(&["run"]).status(1);
    let err = &out.stderr;
    assert!(
        err.contains("dataset gone/pg3_gone")
            && err.contains("database \"pg3_gone\" does not exist"),
        "{err}"
    );
    assert!(
        err.contains("dataset wrong/pg3_ok") && err.contains("password authentication failed"),
        "{err}"
    );
    assert!(
        err.contains("dataset denied/pg3_secret") && err.contains("permission denied"),
        "{err}"
    );
    assert!(
        err.contains("source down") && err.contains("atoms_command"),
        "{err}"
    );
    assert_eq!(recorded(&f), ["gone/pg3_ok"]);
    // No partial snapshot stays in the repository.
    let snapshots = f.restic(&["snapshots", "--json"]).success();
    let snapshots: Vec<serde_json::Value> = serde_json::from_str(&snapshots.stdout).unwrap();
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
}
