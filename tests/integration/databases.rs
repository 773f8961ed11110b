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
    // One source at a time: a partial snapshot is forgotten once the
    // repository is free, and concurrent sources would hold it.
    let failed = |source: &str| f.tabacco(&["run", source]).status(1).stderr;
    let err = failed("gone");
    assert!(
        err.contains("dataset gone/pg3_gone")
            && err.contains("database \"pg3_gone\" does not exist"),
        "{err}"
    );
    let err = failed("wrong");
    assert!(
        err.contains("dataset wrong/pg3_ok") && err.contains("password authentication failed"),
        "{err}"
    );
    let err = failed("denied");
    assert!(
        err.contains("dataset denied/pg3_secret") && err.contains("permission denied"),
        "{err}"
    );
    let err = failed("down");
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

/// Creates MariaDB database `db` with a table `t` of `rows` rows.
fn my_database(db: &str, rows: u32) {
    let my = servers::mariadb();
    let quoted = db.replace('`', "``");
    my.sql("", &format!("CREATE DATABASE `{quoted}`"));
    my.sql(
        db,
        &format!(
            "CREATE TABLE t (id int PRIMARY KEY, v text) ENGINE=InnoDB; \
             INSERT INTO t SELECT seq, CONCAT('row ', seq, ' ''é\"$(x)') FROM seq_1_to_{rows}"
        ),
    );
}

fn my_rows(db: &str) -> String {
    servers::mariadb().sql(db, "SELECT * FROM t ORDER BY 1")
}

#[test]
fn mariadb_backs_up_every_database_and_restores_one_by_name_or_as_another() {
    let my = servers::mariadb();
    let weird = "my1_we'ird `$(touch /tmp/pwned)` é";
    my_database("my1_shop", 40);
    my_database(weird, 5);
    let f = Fixture::new();
    let params = my.params(&f.path("etc/my.cnf"), PASSWORD);
    f.write(
        "etc/sources/my.yml",
        &format!(
            "name: my\nhandler: mariadb\nparams: {}\n",
            params.replace('}', ", include: [my1_*, mysql]}")
        ),
    );
    f.tabacco(&["run"]).success();
    // mysql is excluded by default, so include does not bring it back.
    assert_eq!(
        recorded(&f),
        ["my/my1_shop".to_string(), format!("my/{weird}")]
    );
    let shop = my_rows("my1_shop");
    let other = my_rows(weird);
    my.sql("", "DROP DATABASE my1_shop");
    f.tabacco(&["restore", "--in-place", "my/my1_shop"])
        .success();
    assert_eq!(my_rows("my1_shop"), shop);
    my.sql(
        weird,
        "DELETE FROM t WHERE id > 2; CREATE TABLE extra (x int)",
    );
    f.tabacco(&["restore", "--in-place", &format!("my/{weird}")])
        .success();
    assert_eq!(my_rows(weird), other);
    assert_eq!(my.sql(weird, "SHOW TABLES"), "t\n");
    let copy = "my1 copy `é`";
    f.tabacco(&["restore", "--in-place", "--as", copy, "my/my1_shop"])
        .success();
    assert_eq!(my_rows(copy), shop);
    f.tabacco(&["restore", "--in-place", "--as", copy, "my/my1_shop"])
        .status(1);
    assert!(!std::path::Path::new("/tmp/pwned").exists());

    let out = f.tabacco(&["-v", "verify", "my"]).success();
    assert!(
        out.stderr.contains("and loaded: tables 1"),
        "{}",
        out.stderr
    );
    assert_eq!(
        my.sql("", "SHOW DATABASES LIKE 'tabacco\\_proof\\_%'"),
        "",
        "no scratch database left"
    );
}

#[test]
fn a_mariadb_dump_cut_short_or_refused_is_caught() {
    let my = servers::mariadb();
    my_database("my2_big", 3000);
    let f = Fixture::new();
    let params = my.params(&f.path("etc/my.cnf"), PASSWORD);
    let wrong = my.params(&f.path("etc/wrong.cnf"), "not the password");
    f.write(
        "etc/sources/cut.yml",
        &format!(
            "name: cut\nhandler: mariadb\nparams: {}\natoms: [{{name: my2_big}}]\n",
            params.replace(
                '}',
                &format!(
                    ", backup_command: \"mariadb-dump --defaults-extra-file={} --socket={} -- ${{atom.name}} | head -c 30000\"}}",
                    f.path("etc/my.cnf").display(),
                    my.dir.join("sock").display()
                )
            )
        ),
    );
    f.write(
        "etc/sources/wrong.yml",
        &format!("name: wrong\nhandler: mariadb\nparams: {wrong}\natoms: [{{name: my2_big}}]\n"),
    );
    let out = f.tabacco(&["run"]).status(1);
    assert!(
        out.stderr.contains("dataset wrong/my2_big") && out.stderr.contains("Access denied"),
        "{}",
        out.stderr
    );
    assert_eq!(recorded(&f), ["cut/my2_big"]);
    let out = f.tabacco(&["verify", "cut"]).status(1);
    assert!(
        out.stderr.contains("restore drill of cut/my2_big")
            && out.stderr.contains("the dump does not load"),
        "{}",
        out.stderr
    );
    assert_eq!(loaded(&f, "cut/my2_big"), None);
}

#[test]
fn sqlite_restores_a_database_file_by_name_or_as_another_and_proves_it_loads() {
    let f = Fixture::new();
    let db = f.path("data/app.db");
    let sqlite = |db: &std::path::Path, sql: &str| {
        let mut cmd = std::process::Command::new("sqlite3");
        cmd.arg(db).arg(sql);
        servers::run(cmd)
    };
    sqlite(
        &db,
        "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) \
         INSERT INTO t SELECT i, 'row ' || i || ' é' FROM n",
    );
    f.write(
        "etc/sources/app.yml",
        &format!(
            "name: app\nhandler: sqlite\natoms: [{{name: main, path: {}}}]\n",
            db.display()
        ),
    );
    let receiver = crate::notify::Receiver::start();
    f.write(
        "etc/sources/cut.yml",
        &format!(
            "name: cut\nhandler: sqlite\nparams: {{backup_command: \"sqlite3 ${{atom.path}} .dump | head -n 100\"}}\natoms: [{{name: main, path: {}}}]\n\
             notify: [{{kind: webhook, url: 'http://{}/hook', on: [failure]}}]\n",
            db.display(),
            receiver.addr
        ),
    );
    f.tabacco(&["run"]).success();
    let rows = sqlite(&db, "SELECT * FROM t ORDER BY 1");
    std::fs::remove_file(&db).unwrap();
    f.tabacco(&["restore", "--in-place", "app/main"]).success();
    assert_eq!(sqlite(&db, "SELECT * FROM t ORDER BY 1"), rows);
    f.tabacco(&["restore", "--in-place", "--as", "copy.db", "app/main"])
        .success();
    assert_eq!(
        sqlite(&f.path("data/copy.db"), "SELECT * FROM t ORDER BY 1"),
        rows
    );
    f.tabacco(&["restore", "--in-place", "--as", "copy.db", "app/main"])
        .status(1);

    let out = f.tabacco(&["-v", "verify", "app"]).success();
    assert!(
        out.stderr.contains("and loaded: tables 1, integrity ok"),
        "{}",
        out.stderr
    );
    assert!(loaded(&f, "app/main").is_some());
    // Whole statements, but no COMMIT: it would load as nothing at all.
    let out = f.tabacco(&["verify", "cut"]).status(1);
    assert!(
        out.stderr
            .contains("the dump is cut short: it does not end with COMMIT;"),
        "{}",
        out.stderr
    );
    // Told as a failed backup is.
    let told = crate::common::eventually(std::time::Duration::from_secs(10), || {
        let seen = receiver.take();
        (!seen.is_empty()).then_some(seen)
    })
    .expect("a failure notification");
    assert_eq!(told.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&told[0].body).unwrap();
    assert_eq!(
        (&body["state"], &body["source"]),
        (&"failure".into(), &"cut".into())
    );
    assert!(
        body["message"].as_str().unwrap().contains("cut short"),
        "{body}"
    );

    // An atom without its file is a configuration error.
    f.write(
        "etc/sources/cut.yml",
        "name: cut\nhandler: sqlite\natoms: [{name: main}]\n",
    );
    let out = f.tabacco(&["check"]).status(2);
    assert!(
        out.stderr
            .contains("a sqlite atom needs the database file as its absolute path"),
        "{}",
        out.stderr
    );
}

#[test]
fn ldap_backs_up_each_suffix_and_restores_its_tree() {
    let ldap = servers::slapd();
    let ldif = "dn: dc=one,dc=test\nobjectClass: dcObject\nobjectClass: organization\no: One\ndc: one\n\n\
                dn: ou=people,dc=one,dc=test\nobjectClass: organizationalUnit\nou: people\n\n\
                dn: uid=jé,ou=people,dc=one,dc=test\nobjectClass: inetOrgPerson\nuid: jé\ncn: J É\nsn: É\n";
    let input = f_tmp("ldap.ldif", ldif);
    let mut add = ldap.tool("ldapadd", "dc=one,dc=test");
    add.arg("-f").arg(&input);
    servers::run(add);
    let _ = std::fs::remove_file(&input);
    let search = || {
        let mut cmd = ldap.tool("ldapsearch", "dc=one,dc=test");
        cmd.args([
            "-LLL",
            "-o",
            "ldif-wrap=no",
            "-b",
            "dc=one,dc=test",
            "(objectClass=*)",
            "*",
        ]);
        let mut entries: Vec<String> = servers::run(cmd)
            .split("\n\n")
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .collect();
        entries.sort();
        entries
    };
    let f = Fixture::new();
    let pw = f.path("etc/ldap.pw");
    servers::write_secret(&pw, PASSWORD);
    f.write(
        "etc/sources/ldap.yml",
        &format!(
            "name: ldap\nhandler: ldap\nparams: {{socket: {}, user: 'cn=admin,dc=one,dc=test', credentials_file: {}, include: ['dc=one,*']}}\n",
            ldap.dir.join("ldapi").display(),
            pw.display()
        ),
    );
    // A suffix the server does not hold, listed.
    f.write(
        "etc/sources/nope.yml",
        &format!(
            "name: nope\nhandler: ldap\nparams: {{socket: {}, user: 'cn=admin,dc=one,dc=test', credentials_file: {}}}\natoms: [{{name: 'dc=nope,dc=test'}}]\n",
            ldap.dir.join("ldapi").display(),
            pw.display()
        ),
    );
    let out = f.tabacco(&["run"]).status(1);
    assert!(
        out.stderr.contains("dataset nope/dc=nope,dc=test")
            && out.stderr.contains("No such object"),
        "{}",
        out.stderr
    );
    assert_eq!(recorded(&f), ["ldap/dc=one,dc=test"], "{}", out.stderr);
    let before = search();
    assert_eq!(before.len(), 3);
    let mut delete = ldap.tool("ldapdelete", "dc=one,dc=test");
    delete.args(["-r", "ou=people,dc=one,dc=test"]);
    servers::run(delete);
    f.tabacco(&["restore", "--in-place", "ldap/dc=one,dc=test"])
        .success();
    assert_eq!(search(), before);
    let out = f.tabacco(&["-v", "verify", "ldap"]).success();
    assert!(
        out.stderr.contains("and loaded: entries 3"),
        "{}",
        out.stderr
    );
}

/// A file in the system's temporary directory, for input to a tool.
fn f_tmp(name: &str, content: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("tabacco-{}-{name}", std::process::id()));
    std::fs::write(&path, content).unwrap();
    path
}
