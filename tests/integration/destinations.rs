//! Restores go only where they are told (issue 28.1-2, 26.2-3): a
//! directory receives every atom's data as files and feeds no service;
//! only an in-place restore feeds `restore_command`, at the place this
//! host's configuration gives; a restore by name picks this host's record;
//! nothing is written through a symlink found in the target, and nothing
//! existing is overwritten without `--overwrite`.

use crate::common::{Cmd, Fixture};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// `path` (absolute) as restored under `dir`.
fn under(dir: &Path, path: &Path) -> PathBuf {
    dir.join(path.strip_prefix("/").unwrap())
}

/// A host with a file source `users` (alice, bob) and a pipe source `sql`
/// (db1, db2) whose restore command writes a marker, backed up once.
fn host() -> Fixture {
    let f = Fixture::new();
    f.write("data/users/alice/inbox", "alice mail");
    f.write("data/users/alice/sub/deep", "deeper");
    f.write("data/users/bob/inbox", "bob mail");
    f.write_config(
        "etc/sources/users.yml",
        "name: users\nhandler: file\nparams: {path: ROOT/data/users}\natoms: [{name: alice}, {name: bob}]\n\
         post_restore_command: \"echo $ATOM_NAMES >> ROOT/hooks-ran\"\n",
    );
    f.write_config(
        "etc/sources/sql.yml",
        "name: sql\nhandler: pipe\nparams:\n  backup_command: \"echo dump of ${atom.name}\"\n  \
         restore_command: \"cat > ROOT/fed-${atom.name}\"\natoms: [{name: db1}, {name: db2}]\n",
    );
    f.tabacco(&["run"]).success();
    f
}

/// Another host, `name`, on `f`'s repository and embedded metadb, with
/// the sources in `sources` (file name, YAML).
fn other_host(f: &Fixture, name: &str, sources: &[(&str, &str)]) -> impl Fn(&[&str]) -> Cmd {
    let config = f.write(
        &format!("etc-{name}/agent.yml"),
        &format!("hostname: {name}\n{}", f.repository_yaml()),
    );
    for (file, yaml) in sources {
        f.write_config(&format!("etc-{name}/sources/{file}"), yaml);
    }
    move |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tabacco"));
        cmd.arg("--config").arg(&config).args(args);
        Cmd(cmd)
    }
}

// Issue 28.1: `--target DIR` of a pipe atom fed the live service and
// created nothing under DIR.
#[test]
fn a_pipe_atom_restored_to_a_directory_is_a_file_there() {
    let f = host();
    let dir = f.path("recovered");
    let d = dir.to_str().unwrap();
    let plan = f
        .tabacco(&["restore", "--dry-run", "--target", d, "sql/db2"])
        .success();
    assert!(
        plan.stdout.contains(&format!("a file {d}/sql/db2\n")),
        "{}",
        plan.stdout
    );
    f.tabacco(&["restore", "--target", d, "sql/db2"]).success();
    assert_eq!(
        fs::read_to_string(dir.join("sql/db2")).unwrap(),
        "dump of db2\n"
    );
    assert!(
        !f.path("fed-db2").exists(),
        "restore_command ran for a restore to a directory"
    );
    // In place, and `--target /` as the original said it, feed the service.
    for args in [["--in-place", "sql/db2"], ["--target=/", "sql/db2"]] {
        let _ = fs::remove_file(f.path("fed-db2"));
        let mut all = vec!["restore"];
        all.extend(args);
        let run = f.tabacco(&all).success();
        assert!(
            run.stdout
                .contains("the live service, fed to restore_command: cat > "),
            "{}",
            run.stdout
        );
        assert_eq!(
            fs::read_to_string(f.path("fed-db2")).unwrap(),
            "dump of db2\n"
        );
    }
}

// Issue 28.2: restoring another host's atoms to a directory needed their
// source in this host's configuration, and a dry run said "nothing" and
// exited 0.
#[test]
fn a_restore_to_a_directory_needs_no_source_configured_here() {
    let f = host();
    let bare = other_host(&f, "bare", &[]);
    let dir = f.path("on-bare");
    let d = dir.to_str().unwrap();
    let plan = bare(&[
        "restore",
        "--dry-run",
        "--host",
        "test-host",
        "--target",
        d,
        "*",
    ])
    .success();
    assert!(
        plan.stdout
            .contains("no hooks: source users is not configured here"),
        "{}",
        plan.stdout
    );
    bare(&["restore", "--host", "test-host", "--target", d, "*"]).success();
    let users = under(&dir, &f.path("data/users"));
    assert_eq!(
        fs::read_to_string(users.join("alice/sub/deep")).unwrap(),
        "deeper"
    );
    assert_eq!(
        fs::read_to_string(users.join("bob/inbox")).unwrap(),
        "bob mail"
    );
    assert_eq!(
        fs::read_to_string(dir.join("sql/db1")).unwrap(),
        "dump of db1\n"
    );
    assert!(
        !f.path("hooks-ran").exists(),
        "hooks of a source not configured here ran"
    );
    assert!(!f.path("fed-db1").exists());

    // In place, a source not configured here cannot be restored: the dry
    // run says so, and fails as the restore would.
    for dry in [true, false] {
        let mut args = vec!["restore", "--host", "test-host", "--in-place", "users/bob"];
        if dry {
            args.insert(1, "--dry-run");
        }
        let run = bare(&args).status(1);
        assert!(
            run.stdout
                .contains("nothing: source users is not configured here"),
            "{run:?}"
        );
    }
}

// Issue 26.2: a restore by name took the newest record of any host, so a
// host could shadow another's atom (and choose the path it landed at).
#[test]
fn a_restore_by_name_picks_this_hosts_record() {
    let f = host();
    let rogue = other_host(
        &f,
        "rogue",
        &[
            (
                "users.yml",
                "name: users\nhandler: file\nparams: {path: ROOT/rogue}\natoms: [{name: alice}]\n",
            ),
            (
                "sql.yml",
                "name: sql\nhandler: pipe\nparams: {backup_command: \"echo DROP TABLE\"}\natoms: [{name: db1}]\n",
            ),
        ],
    );
    f.write("rogue/alice/inbox", "rogue mail");
    f.write("rogue/alice/planted", "planted");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    rogue(&["run"]).success();

    fs::write(f.path("data/users/alice/inbox"), "edited").unwrap();
    fs::remove_file(f.path("data/users/alice/inbox")).unwrap();
    f.tabacco(&["restore", "--in-place", "users/alice"])
        .success();
    assert_eq!(
        fs::read_to_string(f.path("data/users/alice/inbox")).unwrap(),
        "alice mail"
    );
    assert!(!f.path("data/users/alice/planted").exists());
    let dump = f.tabacco(&["dump", "sql/db1"]).success();
    assert_eq!(dump.stdout, "dump of db1\n");

    // Named, another host's version lands where this host's configuration
    // puts the atom, not at the path that host recorded.
    let plan = f
        .tabacco(&[
            "restore",
            "--host",
            "rogue",
            "--in-place",
            "--overwrite",
            "users/alice",
        ])
        .success();
    assert!(
        plan.stdout.contains(&format!(
            "files in place under {}, recorded at {}",
            f.path("data/users/alice").display(),
            f.path("rogue/alice").display()
        )),
        "{}",
        plan.stdout
    );
    assert_eq!(
        fs::read_to_string(f.path("data/users/alice/planted")).unwrap(),
        "planted"
    );

    // A host with no record of its own is shown the candidates.
    let bare = other_host(&f, "bare", &[]);
    let dir = f.path("on-bare");
    let d = dir.to_str().unwrap();
    let run = bare(&["restore", "--target", d, "users/alice"]).status(1);
    assert!(
        run.stderr
            .contains("users/alice: no record of this host (bare)")
            && run.stderr.contains("rogue at ")
            && run.stderr.contains("test-host at ")
            && run.stderr.contains("--host HOST")
            && run.stderr.contains("--any-host"),
        "{}",
        run.stderr
    );
    assert!(!dir.exists());
    let run = bare(&["dump", "sql/db1"]).status(1);
    assert!(
        run.stderr.contains("no record of this host"),
        "{}",
        run.stderr
    );
    let dump = bare(&["dump", "--any-host", "sql/db1"]).success();
    assert_eq!(dump.stdout, "DROP TABLE\n");
    bare(&["dump", "--any-host", "--host", "rogue", "sql/db1"]).status(2);
}

/// A symlink at `link` to `to`, its directory created.
fn plant(link: &Path, to: &Path) {
    fs::create_dir_all(link.parent().unwrap()).unwrap();
    symlink(to, link).unwrap();
}

// Issue 26.3: restic wrote through symlinks planted in the target.
#[test]
fn a_restore_never_follows_a_symlink_in_its_target() {
    let f = host();
    let outside = f.path("outside");
    fs::create_dir_all(&outside).unwrap();
    f.write("outside/inbox", "not yours");
    let alice = f.path("data/users/alice");
    let dir = f.path("recovered");
    let d = dir.to_str().unwrap();
    let restored = under(&dir, &alice);

    // A directory symlink on the way, the atom's own directory, a file.
    let cases: [(PathBuf, &Path); 3] = [
        (restored.parent().unwrap().to_path_buf(), &outside),
        (restored.clone(), &outside),
        (restored.join("inbox"), &outside.join("inbox")),
    ];
    for (link, to) in &cases {
        let _ = fs::remove_dir_all(&dir);
        if link == &restored.join("inbox") {
            fs::create_dir_all(&restored).unwrap();
        }
        plant(link, to);
        let run = f
            .tabacco(&["restore", "--target", d, "users/alice"])
            .status(1);
        assert!(
            run.stderr.contains(&link.display().to_string()),
            "{link:?}: {}",
            run.stderr
        );
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            1,
            "{link:?}: written outside the target"
        );
        assert_eq!(
            fs::read_to_string(outside.join("inbox")).unwrap(),
            "not yours"
        );
    }
    // --overwrite replaces the link itself, and still writes nothing
    // outside.
    f.tabacco(&["restore", "--overwrite", "--target", d, "users/alice"])
        .success();
    assert!(!fs::symlink_metadata(restored.join("inbox"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        fs::read_to_string(restored.join("inbox")).unwrap(),
        "alice mail"
    );
    assert_eq!(
        fs::read_to_string(outside.join("inbox")).unwrap(),
        "not yours"
    );

    // In place: the atom's own directory swapped for a symlink.
    fs::remove_dir_all(&alice).unwrap();
    symlink(&outside, &alice).unwrap();
    let run = f
        .tabacco(&["restore", "--in-place", "users/alice"])
        .status(1);
    assert!(
        run.stderr.contains(&alice.display().to_string()),
        "{}",
        run.stderr
    );
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);

    // A pipe atom's file: a symlinked directory, a symlink at its name.
    for link in [dir.join("sql"), dir.join("sql/db1")] {
        let _ = fs::remove_dir_all(&dir);
        plant(&link, &outside.join("inbox"));
        if link == dir.join("sql") {
            fs::remove_file(&link).unwrap();
            plant(&link, &outside);
        }
        let run = f.tabacco(&["restore", "--target", d, "sql/db1"]).status(1);
        assert!(
            run.stderr.contains(&link.display().to_string()),
            "{}",
            run.stderr
        );
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
        assert_eq!(
            fs::read_to_string(outside.join("inbox")).unwrap(),
            "not yours"
        );
    }

    // dump -o neither follows nor overwrites.
    let link = f.path("dumped");
    plant(&link, &outside.join("inbox"));
    let run = f
        .tabacco(&["dump", "-o", link.to_str().unwrap(), "sql/db1"])
        .status(1);
    assert!(run.stderr.contains("cannot create"), "{}", run.stderr);
    assert_eq!(
        fs::read_to_string(outside.join("inbox")).unwrap(),
        "not yours"
    );
}

// Issue 26.3: an edited file in the target was overwritten silently.
#[test]
fn a_restore_overwrites_nothing_unless_told() {
    let f = host();
    let inbox = f.path("data/users/alice/inbox");
    // Unchanged files are no conflict; deleted ones come back.
    fs::remove_file(f.path("data/users/alice/sub/deep")).unwrap();
    f.tabacco(&["restore", "--in-place", "users/alice"])
        .success();
    assert_eq!(
        fs::read_to_string(f.path("data/users/alice/sub/deep")).unwrap(),
        "deeper"
    );

    fs::write(&inbox, "edited here").unwrap();
    fs::remove_file(f.path("data/users/alice/sub/deep")).unwrap();
    let run = f
        .tabacco(&["restore", "--in-place", "users/alice"])
        .status(1);
    assert!(
        run.stderr.contains(&format!(
            "{}: exists and differs (--overwrite replaces it)",
            inbox.display()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(fs::read_to_string(&inbox).unwrap(), "edited here");
    assert!(
        !f.path("data/users/alice/sub/deep").exists(),
        "nothing is moved when anything conflicts"
    );
    f.tabacco(&["restore", "--in-place", "--overwrite", "users/alice"])
        .success();
    assert_eq!(fs::read_to_string(&inbox).unwrap(), "alice mail");

    // A pipe atom's file.
    let dir = f.path("recovered");
    let d = dir.to_str().unwrap();
    f.write("recovered/sql/db1", "mine");
    let run = f.tabacco(&["restore", "--target", d, "sql/db1"]).status(1);
    assert!(
        run.stderr.contains("sql/db1: exists and differs"),
        "{}",
        run.stderr
    );
    assert_eq!(fs::read_to_string(dir.join("sql/db1")).unwrap(), "mine");
    f.tabacco(&["restore", "--overwrite", "--target", d, "sql/db1"])
        .success();
    assert_eq!(
        fs::read_to_string(dir.join("sql/db1")).unwrap(),
        "dump of db1\n"
    );
    // The same again: identical, no conflict.
    f.tabacco(&["restore", "--target", d, "sql/db1"]).success();
    let names = |dir: &Path| -> Vec<_> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect()
    };
    assert_eq!(names(&dir), ["sql"], "no staging left behind");
    assert_eq!(names(&dir.join("sql")), ["db1"]);
}

// The example sqlite handler builds `${atom.path}.restored`, but at restore
// `${atom.path}` was the recorded path, which a pipe atom has none of: the
// database was rebuilt as `.restored` in the working directory.
#[test]
fn in_place_commands_see_this_hosts_configured_path() {
    let f = Fixture::new();
    let handler = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/examples/handlers/sqlite.yml"
    );
    f.write(
        "etc/handlers/sqlite.yml",
        &fs::read_to_string(handler).unwrap(),
    );
    let db = f.path("data/app.db");
    fs::create_dir_all(db.parent().unwrap()).unwrap();
    let sqlite = |db: &Path, sql: &str| {
        let out = std::process::Command::new("sqlite3")
            .arg(db)
            .arg(sql)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    sqlite(&db, "CREATE TABLE t (x); INSERT INTO t VALUES ('kept');");
    f.write_config(
        "etc/sources/app.yml",
        "name: app\nhandler: sqlite-beside\natoms: [{name: main, path: ROOT/data/app.db}]\n",
    );
    f.tabacco(&["run"]).success();
    f.tabacco(&["restore", "--in-place", "app/main"]).success();
    let restored = f.path("data/app.db.restored");
    assert_eq!(sqlite(&restored, "SELECT x FROM t"), "kept\n");
}
