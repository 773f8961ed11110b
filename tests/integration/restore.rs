//! Restore by name: file atoms to a target or in place, pipe atoms in
//! place into their restore command, from this host or another, and
//! refusing records that would write outside the target.

use crate::common::Fixture;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Every file under `root` with its mode, mtime and contents.
fn tree(root: &Path) -> Vec<(String, u32, i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if meta.is_dir() {
                stack.push(path.clone());
                out.push((rel, meta.mode(), meta.mtime(), Vec::new()));
            } else {
                out.push((rel, meta.mode(), meta.mtime(), fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn users_fixture() -> Fixture {
    let f = Fixture::new();
    f.write("data/users/alice/inbox", "alice mail");
    f.write("data/users/alice/sub/deep", "deeper");
    f.write("data/users/bob/inbox", "bob mail");
    fs::set_permissions(
        f.path("data/users/alice/inbox"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    f.write_config(
        "etc/sources/users.yml",
        "name: users\nhandler: file\nparams: {path: ROOT/data/users}\natoms: [{name: alice}, {name: bob}]\n\
         pre_restore_command: \"echo $ATOM_NAMES > ROOT/pre-restore; echo $RESTORE_TARGET >> ROOT/pre-restore\"\n",
    );
    f.tabacco(&["run"]).success();
    f
}

#[test]
fn file_atom_restores_alone_byte_for_byte() {
    let f = users_fixture();
    let target = f.path("restored");
    let run = f
        .tabacco(&[
            "restore",
            "--target",
            target.to_str().unwrap(),
            "users/alice",
        ])
        .success();
    assert!(
        run.stdout.starts_with("ATOM") && run.stdout.contains("users/alice  test-host"),
        "{}",
        run.stdout
    );
    let restored = target.join(f.path("data/users/alice").strip_prefix("/").unwrap());
    assert_eq!(tree(&restored), tree(&f.path("data/users/alice")));
    let bob = target.join(f.path("data/users/bob").strip_prefix("/").unwrap());
    assert!(!bob.exists(), "only the requested atom is restored");
    let pre = fs::read_to_string(f.path("pre-restore")).unwrap();
    // `ATOM_NAMES` holds the atoms' own names, as in the original.
    assert_eq!(pre, format!("alice\n{}\n", target.display()));
}

#[test]
fn in_place_restore_brings_back_deleted_files() {
    let f = users_fixture();
    let before = tree(&f.path("data/users"));
    fs::remove_dir_all(f.path("data/users/bob")).unwrap();
    f.tabacco(&["restore", "--in-place", "users/bob"]).success();
    assert_eq!(tree(&f.path("data/users")), before);
}

#[test]
fn dry_run_prints_the_plan_and_restores_nothing() {
    let f = users_fixture();
    let target = f.path("restored");
    let run = f
        .tabacco(&[
            "restore",
            "--dry-run",
            "--target",
            target.to_str().unwrap(),
            "users/*",
        ])
        .success();
    assert_eq!(
        run.stdout.lines().count(),
        3,
        "header and two atoms: {}",
        run.stdout
    );
    assert!(!target.exists() && !f.path("pre-restore").exists());
    let none = f
        .tabacco(&["restore", "--target", target.to_str().unwrap(), "nothing/*"])
        .status(1);
    assert!(
        none.stderr.contains("no recorded atom matches nothing/*"),
        "{}",
        none.stderr
    );
}

#[test]
fn pipe_atom_streams_into_restore_command() {
    let f = Fixture::new();
    f.write_config(
        "etc/sources/sql.yml",
        "name: sql\nhandler: pipe\nparams:\n  backup_command: \"seq 1 100000 | sed s/^/${atom.name}-/\"\n  restore_command: \"cat > ROOT/restored-${atom.name}.sql\"\natoms: [{name: db1}, {name: db2}]\n",
    );
    f.tabacco(&["run"]).success();
    f.tabacco(&["restore", "--in-place", "sql/db2"]).success();
    let expected: String = (1..=100000).map(|i| format!("db2-{i}\n")).collect();
    assert_eq!(
        fs::read_to_string(f.path("restored-db2.sql")).unwrap(),
        expected
    );
    assert!(!f.path("restored-db1.sql").exists());
}

#[test]
fn older_than_picks_an_older_version() {
    let f = Fixture::new();
    f.write("version", "one");
    f.write_config(
        "etc/sources/v.yml",
        "name: v\nhandler: pipe\nparams: {backup_command: \"cat ROOT/version\", restore_command: \"cat > ROOT/out\"}\n",
    );
    f.tabacco(&["run"]).success();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    f.write("version", "two");
    f.tabacco(&["run"]).success();
    let versions = f.query(&["--versions", "2", "v"]);
    let newest = versions[0]["timestamp"].as_str().unwrap();
    f.tabacco(&["restore", "--in-place", "--older-than", newest, "v"])
        .success();
    assert_eq!(fs::read_to_string(f.path("out")).unwrap(), "one");
    f.tabacco(&["restore", "--in-place", "v"]).success();
    assert_eq!(fs::read_to_string(f.path("out")).unwrap(), "two");
}

/// Two hosts sharing one repository and one (embedded) metadb.
#[test]
fn atoms_of_one_host_restore_on_another_and_by_host() {
    let a = users_fixture();
    let b_config = a.write(
        "etc-b/agent.yml",
        &format!("hostname: host-b\n{}", a.repository_yaml()),
    );
    a.write_config(
        "etc-b/sources/users.yml",
        "name: users\nhandler: file\nparams: {path: ROOT/elsewhere}\n",
    );
    let on_b = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tabacco"));
        cmd.arg("--config").arg(&b_config).args(args);
        crate::common::Cmd(cmd)
    };
    let target = a.path("on-b");
    on_b(&[
        "restore",
        "--host",
        "test-host",
        "--target",
        target.to_str().unwrap(),
        "*",
    ])
    .success();
    let restored = target.join(a.path("data/users").strip_prefix("/").unwrap());
    assert_eq!(tree(&restored), tree(&a.path("data/users")));
    let wrong_host = on_b(&[
        "restore",
        "--host",
        "host-c",
        "--target",
        target.to_str().unwrap(),
        "*",
    ])
    .status(1);
    assert!(
        wrong_host.stderr.contains("no recorded atom matches"),
        "{}",
        wrong_host.stderr
    );
}

#[test]
fn missing_source_and_malicious_records_are_refused() {
    let f = users_fixture();
    let db = rusqlite::Connection::open(f.path("work/metadb.sqlite")).unwrap();
    db.execute(
        "UPDATE atoms SET path = '/tmp/../etc' WHERE name = 'users/bob'",
        [],
    )
    .unwrap();
    drop(db);
    let target = f.path("restored");
    let run = f
        .tabacco(&["restore", "--target", target.to_str().unwrap(), "users/bob"])
        .status(1);
    assert!(
        run.stderr
            .contains("refusing record: atom users/bob has unsafe path \"/tmp/../etc\""),
        "{}",
        run.stderr
    );
    assert!(!target.exists() || tree(&target).is_empty());

    // In place needs the source configured here; a directory does not.
    fs::remove_file(f.path("etc/sources/users.yml")).unwrap();
    let run = f
        .tabacco(&["restore", "--in-place", "users/alice"])
        .status(1);
    assert!(
        run.stderr
            .contains("source users is not configured here: in place needs it"),
        "{}",
        run.stderr
    );
    f.tabacco(&[
        "restore",
        "--target",
        target.to_str().unwrap(),
        "users/alice",
    ])
    .success();
    assert!(
        !f.path("pre-restore").exists(),
        "no hooks without the source"
    );
}

#[test]
fn failing_restore_command_is_reported_with_its_stderr() {
    let f = Fixture::new();
    f.write_config(
        "etc/sources/sql.yml",
        "name: sql\nhandler: pipe\nparams: {backup_command: \"echo data\", restore_command: \"cat >/dev/null; echo cannot load >&2; exit 5\"}\n",
    );
    f.tabacco(&["run"]).success();
    let run = f.tabacco(&["restore", "--in-place", "sql"]).status(1);
    assert!(
        run.stderr
            .contains("restore_command exited with status 5: cannot load"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("restored 0 of 1 atom; 1 failed"),
        "{}",
        run.stderr
    );
}

/// A real database round trip: SQLite databases dumped with `sqlite3 .dump`,
/// one dropped, restored by name, and its contents compared.
#[test]
fn sqlite_databases_round_trip() {
    let f = Fixture::new();
    let sqlite = |db: &str, sql: &str| {
        let out = std::process::Command::new("sqlite3")
            .arg(f.path(db))
            .arg(sql)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    fs::create_dir_all(f.path("db")).unwrap();
    sqlite("db/shop.db", "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO items (name) VALUES ('tea'), ('it''s');");
    sqlite(
        "db/blog.db",
        "CREATE TABLE posts (title TEXT); INSERT INTO posts VALUES ('hello');",
    );
    f.write_config(
        "etc/sources/sqlite.yml",
        "name: sqlite\nhandler: pipe\nparams:\n  backup_command: \"sqlite3 ROOT/db/${atom.name}.db .dump\"\n  restore_command: \"sqlite3 ROOT/db/${atom.name}.db\"\natoms: [{name: shop}, {name: blog}]\n",
    );
    f.tabacco(&["run"]).success();
    let before = sqlite("db/shop.db", "SELECT * FROM items ORDER BY id");
    fs::remove_file(f.path("db/shop.db")).unwrap();
    f.tabacco(&["restore", "--in-place", "sqlite/shop"])
        .success();
    assert_eq!(
        sqlite("db/shop.db", "SELECT * FROM items ORDER BY id"),
        before
    );
    assert_eq!(before, "1|tea\n2|it's\n");
}

/// The fields of `query --json` that the repository alone can reproduce:
/// all but restic's statistics, and the order of datasets in a backup.
fn identities(backups: &[serde_json::Value]) -> Vec<serde_json::Value> {
    let mut out = backups.to_vec();
    for b in &mut out {
        let datasets = b["datasets"].as_array_mut().unwrap();
        for d in datasets.iter_mut() {
            for key in ["total_files", "total_bytes", "bytes_added", "duration"] {
                d.as_object_mut().unwrap().remove(key);
            }
            // restic 0.14 reports a short id at backup time, which reindex
            // completes from `restic snapshots`.
            let id: String = d["snapshot_id"].as_str().unwrap().chars().take(8).collect();
            d["snapshot_id"] = id.into();
        }
        datasets.sort_by_key(|d| d["id"].as_str().unwrap().to_string());
    }
    out
}

#[test]
fn reindex_rebuilds_an_emptied_metadb() {
    let f = users_fixture();
    f.write_config(
        "etc/sources/sql.yml",
        "name: sql\nhandler: pipe\nparams: {backup_command: \"echo ${atom.name}\"}\natoms: [{name: db1}, {name: db2}]\n",
    );
    f.tabacco(&["run", "sql"]).success();
    // A snapshot not made by tabacco is left alone.
    f.restic(&[
        "backup",
        "--host",
        "other",
        f.path("data").to_str().unwrap(),
    ])
    .success();
    let before = f.query(&["--versions", "10", "*"]);
    assert_eq!(before.len(), 2);

    fs::remove_file(f.path("work/metadb.sqlite")).unwrap();
    assert_eq!(f.query(&["*"]).len(), 0);
    f.tabacco(&["reindex"]).success();
    let after = f.query(&["--versions", "10", "*"]);
    assert_eq!(identities(&after), identities(&before));
    f.tabacco(&["reindex"]).success();
    assert_eq!(
        f.query(&["--versions", "10", "*"]),
        after,
        "a second reindex changes nothing"
    );
}
