//! restic versions: a fleet upgrades its hosts one at a time, and they all
//! share one repository; `restic_binary`, and what tabacco says of a restic
//! it cannot use.

use crate::common::{restic_binary, restic_binary_yaml, Fixture};
use std::fs;
use std::os::unix::fs::PermissionsExt;

/// The restic of the other pass (`TABACCO_TEST_RESTIC_OTHER`, which `make
/// test` sets); without it the test is skipped, loudly, except in CI.
fn other_restic() -> Option<String> {
    let other = std::env::var("TABACCO_TEST_RESTIC_OTHER").ok();
    if other.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "TABACCO_TEST_RESTIC_OTHER is not set"
        );
        eprintln!("note: TABACCO_TEST_RESTIC_OTHER is not set; one restic only (run make test)");
    }
    other
}

/// Points the fixture's agent.yml at `binary`.
fn use_restic(f: &Fixture, binary: &str) {
    let agent = fs::read_to_string(f.config()).unwrap();
    let agent = agent.replace(&restic_binary_yaml(), "");
    let agent = agent
        .lines()
        .filter(|l| !l.starts_with("restic_binary:"))
        .collect::<Vec<_>>()
        .join("\n");
    f.write(
        "etc/agent.yml",
        &format!("{agent}\nrestic_binary: {binary}\n"),
    );
}

fn read(f: &Fixture, rel: &str) -> String {
    fs::read_to_string(f.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn snapshots_of_either_restic_restore_verify_and_reindex_with_the_other() {
    let Some(other) = other_restic() else { return };
    let this = restic_binary();
    let f = Fixture::new();
    f.write_config(
        "etc/sources/s.yml",
        "- name: files\n  handler: file\n  params: {path: ROOT/data/files}\n\
         - name: sql\n  handler: pipe\n  atoms: [{name: x}, {name: y}]\n  params:\n    \
         backup_command: \"cat ROOT/data/sql-${atom.name}\"\n    \
         restore_command: \"cat > $RESTORE_TARGET/${atom.name}.sql\"\n",
    );
    let write = |version: &str| {
        f.write("data/files/a", &format!("file {version}"));
        f.write("data/sql-x", &format!("x {version}"));
        f.write("data/sql-y", &format!("y {version}"));
    };
    write("one");
    use_restic(&f, &this);
    f.tabacco(&["run"]).success();
    write("two");
    use_restic(&f, &other);
    f.tabacco(&["run"]).success();
    let backups = f.query(&["--versions", "2", "files"]);
    assert_eq!(backups.len(), 2, "{backups:?}");
    let second = backups
        .iter()
        .map(|b| b["timestamp"].as_str().unwrap())
        .max()
        .unwrap()
        .to_string();

    // The newest backup, written by the other restic, restored by this one
    // (a pipe atom to a directory is a file named after the atom there).
    use_restic(&f, &this);
    let r1 = f.path("r1");
    fs::create_dir_all(&r1).unwrap();
    f.tabacco(&["restore", "--target", r1.to_str().unwrap(), "*"])
        .success();
    let data = f.path("data/files/a").display().to_string();
    assert_eq!(read(&f, &format!("r1{data}")), "file two");
    assert_eq!(read(&f, "r1/sql/x"), "x two");
    assert_eq!(read(&f, "r1/sql/y"), "y two");

    // The first backup, written by this restic, restored by the other.
    use_restic(&f, &other);
    let r2 = f.path("r2");
    fs::create_dir_all(&r2).unwrap();
    f.tabacco(&[
        "restore",
        "--older-than",
        &second,
        "--target",
        r2.to_str().unwrap(),
        "*",
    ])
    .success();
    assert_eq!(read(&f, &format!("r2{data}")), "file one");
    assert_eq!(read(&f, "r2/sql/x"), "x one");
    assert_eq!(read(&f, "r2/sql/y"), "y one");

    // Each restic checks the repository and drills a restore, and rebuilds
    // the metadb from snapshots both wrote.
    for binary in [&this, &other] {
        use_restic(&f, binary);
        for source in ["files", "sql"] {
            let verify = f.tabacco(&["-v", "verify", source]).success();
            assert!(
                verify.stderr.contains("restic check passed, slice ")
                    && verify.stderr.contains(" read back; restore drill of "),
                "{verify:?}"
            );
        }
        fs::remove_file(f.path("work/metadb.sqlite")).unwrap();
        f.tabacco(&["reindex"]).success();
        let mut names = crate::common::atom_names(&f.query(&["--versions", "2", "*"]));
        names.sort();
        assert_eq!(
            names,
            ["files", "files", "sql/x", "sql/x", "sql/y", "sql/y"]
        );
    }
}

#[test]
fn check_names_the_restic_version() {
    let f = Fixture::new();
    let check = f.tabacco(&["check"]).success().stdout;
    let version = crate::common::restic_version();
    let shown = format!("{}.{}.{}", version.0, version.1, version.2);
    let line = check
        .lines()
        .find(|l| l.starts_with("restic "))
        .unwrap_or_default();
    assert_eq!(
        line,
        format!("restic      {shown} ({})", restic_binary()),
        "{check}"
    );
}

#[test]
fn a_restic_that_cannot_be_used_is_a_clear_error() {
    let f = Fixture::new();
    f.write("data/x", "x");
    f.write_config(
        "etc/sources/s.yml",
        "name: files\nhandler: file\nparams: {path: ROOT/data}\n",
    );
    let script = |rel: &str, body: &str, mode: u32| {
        let path = f.write(rel, body);
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path.display().to_string()
    };
    let missing = f.path("bin/none").display().to_string();
    let cases = [
        (
            missing.clone(),
            format!("restic binary {missing} not found"),
        ),
        (
            script("bin/noexec", "#!/bin/sh\necho restic 0.14.0\n", 0o644),
            "cannot be run: permission denied".into(),
        ),
        (
            script("bin/odd", "#!/bin/sh\necho 'rustic 1.0'\n", 0o755),
            "version printed \"rustic 1.0\", not a restic version".into(),
        ),
        (
            script(
                "bin/old",
                "#!/bin/sh\necho 'restic 0.12.1 compiled with go1.16'\n",
                0o755,
            ),
            "restic 0.12.1 (ROOT/bin/old) is older than 0.14.0, the oldest tabacco supports".into(),
        ),
    ];
    let root = f.root.display().to_string();
    for (binary, expected) in cases {
        let expected = expected.replace("ROOT", &root);
        use_restic(&f, &binary);
        let check = f.tabacco(&["check"]).status(2);
        assert!(
            check.stderr.contains(&expected),
            "check with {binary}: {check:?}"
        );
        assert!(!check.stderr.contains("panicked"), "{check:?}");
        let run = f.tabacco(&["run"]).status(1);
        assert!(
            run.stderr.contains("source files") && run.stderr.contains(&expected),
            "run with {binary}: {run:?}"
        );
    }
    // A bare name is looked up on PATH.
    use_restic(&f, "no-such-restic");
    let check = f.tabacco(&["check"]).status(2);
    assert!(
        check
            .stderr
            .contains("restic binary \"no-such-restic\" not found on PATH"),
        "{check:?}"
    );
}

#[test]
fn an_incomplete_snapshot_is_recorded_and_reported_as_incomplete() {
    let f = Fixture::new();
    f.write("data/x", "x");
    f.write_config(
        "etc/sources/s.yml",
        "name: files\nhandler: file\nparams: {path: ROOT/data}\n",
    );
    // restic exits 3 when it saved a snapshot without some unreadable
    // files; root reads every file, so a wrapper says it of a real backup.
    let real = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {}", restic_binary()))
        .output()
        .unwrap();
    let real = String::from_utf8(real.stdout).unwrap().trim().to_string();
    let wrapper = f.write(
        "bin/restic",
        &format!(
            "#!/bin/sh\nif [ \"$1\" = backup ]; then {real} \"$@\" || exit $?; exit 3; fi\nexec {real} \"$@\"\n"
        ),
    );
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    use_restic(&f, wrapper.to_str().unwrap());
    let run = f.tabacco(&["run"]).status(1);
    assert!(
        run.stderr
            .contains(") incomplete: dataset files: snapshot ")
            && run
                .stderr
                .contains(" saved and recorded, but some files were unreadable"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("failed"), "{run:?}");
    assert_eq!(crate::common::atom_names(&f.query(&["*"])), ["files"]);
    // The attempt, and so the fleet's status, says incomplete too.
    let status = f.tabacco(&["status"]).status(1);
    let rows: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(rows[0]["state"], "incomplete", "{status:?}");
}

#[test]
fn a_live_lock_is_waited_for_where_restic_can() {
    use std::io::Write;
    let f = Fixture::with_agent("restic_retry_lock: 60s\n");
    f.restic(&["init"]).success();
    // A backup reading a stdin we hold open holds a live lock; `verify`'s
    // `restic check` needs the repository to itself.
    let mut holder = std::process::Command::new(restic_binary())
        .args(["backup", "--stdin", "--stdin-filename", "held"])
        .env("RESTIC_REPOSITORY", f.path("repo"))
        .env("RESTIC_PASSWORD", crate::common::PASSWORD)
        .env("RESTIC_CACHE_DIR", f.path("work/cache"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let locked = crate::common::eventually(std::time::Duration::from_secs(20), || {
        (fs::read_dir(f.path("repo/locks")).unwrap().count() > 0).then_some(())
    });
    assert!(locked.is_some(), "the backup took no lock");
    let mut stdin = holder.stdin.take().unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(4));
        stdin.write_all(b"held data").unwrap();
    });
    let started = std::time::Instant::now();
    let verify = f.tabacco(&["verify"]).run();
    release.join().unwrap();
    assert!(holder.wait().unwrap().success());
    if crate::common::restic_version() >= (0, 16, 0) {
        // Failed at once, removed no live lock, then waited (--retry-lock).
        assert_eq!(verify.code, Some(0), "{verify:?}");
        assert!(started.elapsed() >= std::time::Duration::from_secs(3));
    } else {
        assert_eq!(verify.code, Some(1), "{verify:?}");
        assert!(
            verify
                .stderr
                .contains("restic check failed: repository is locked"),
            "{verify:?}"
        );
    }
}
