//! Retention and integrity: `prune` forgets exactly what the policy says,
//! per host, source and atom, leaves other hosts' and foreign snapshots
//! alone, and the metadb follows the repository; `min_bytes` rejects short
//! dumps; `verify` checks the repository and drills a restore.

use crate::common::{atom_names, Fixture};

/// Makes a snapshot as tabacco would have, at a known time.
fn snapshot(f: &Fixture, host: &str, source: &str, atom: &str, day: u32) {
    let n = format!("{host}-{atom}-{day}");
    let tags = [
        "tabacco".to_string(),
        format!("tabacco:backup=b-{n}"),
        format!("tabacco:source={source}"),
        format!("tabacco:dataset=d-{n}"),
        format!("tabacco:atom={source}/{atom}"),
    ];
    let time = format!("2026-10-{day:02} 03:00:00");
    let filename = format!("{source}/{atom}");
    let mut args = vec![
        "backup",
        "-q",
        "--stdin",
        "--stdin-filename",
        &filename,
        "--host",
        host,
        "--time",
        &time,
    ];
    for tag in &tags {
        args.extend(["--tag", tag]);
    }
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!("echo {n} | restic \"$@\""))
        .arg("sh")
        .args(&args);
    cmd.env("RESTIC_REPOSITORY", f.path("repo"))
        .env("RESTIC_PASSWORD", crate::common::PASSWORD)
        .env("RESTIC_CACHE_DIR", f.path("work/cache"));
    assert!(cmd.status().unwrap().success());
}

/// (host, sorted tags) of every snapshot in the repository.
fn repository(f: &Fixture) -> Vec<String> {
    let mut all: Vec<String> = f.snapshot_tags().into_iter().map(|t| t.join(",")).collect();
    all.sort();
    all
}

#[test]
fn prune_keeps_exactly_what_the_policy_says() {
    let f = Fixture::with_agent("retention: {keep_last: 2}\n");
    f.write_config(
        "etc/sources/s.yml",
        "- name: sql\n  handler: pipe\n  params: {backup_command: \"echo x\"}\n  atoms: [{name: a}, {name: b}]\n\
         - name: logs\n  handler: pipe\n  params: {backup_command: \"echo x\"}\n  retention: {keep_daily: 1, keep_within: 2d}\n",
    );
    f.restic(&["init"]).success();
    for day in 1..=4 {
        snapshot(&f, "test-host", "sql", "a", day);
        snapshot(&f, "other-host", "sql", "a", day);
    }
    snapshot(&f, "test-host", "sql", "b", 1);
    for day in 1..=3 {
        snapshot(&f, "test-host", "logs", "x", day);
    }
    // Not tabacco's: same host, no tags.
    f.restic(&[
        "backup",
        "-q",
        "--host",
        "test-host",
        f.path("etc").to_str().unwrap(),
    ])
    .success();
    f.tabacco(&["reindex"]).success();
    assert_eq!(
        atom_names(&f.query(&["--versions", "100", "*"])).len(),
        4 + 4 + 1 + 3
    );

    let before = repository(&f);
    let dry = f.tabacco(&["prune", "--dry-run"]).success();
    assert_eq!(repository(&f), before, "a dry run changes nothing");
    assert_eq!(dry.stdout.lines().count(), 1 + 2 + 1, "{}", dry.stdout);

    f.tabacco(&["prune"]).success();
    let kept = |host: &str, atom: &str| -> Vec<String> {
        f.query(&["--versions", "100", "--host", host, atom])
            .iter()
            .map(|b| b["timestamp"].as_str().unwrap()[..10].to_string())
            .collect()
    };
    assert_eq!(
        kept("test-host", "sql/a"),
        ["2026-10-04", "2026-10-03"],
        "keep_last 2 per atom"
    );
    assert_eq!(
        kept("test-host", "sql/b"),
        ["2026-10-01"],
        "each atom has its own history"
    );
    assert_eq!(
        kept("other-host", "sql/a").len(),
        4,
        "other hosts' snapshots are theirs to prune"
    );
    // restic measures keep_within from the newest snapshot, not from now.
    assert_eq!(
        kept("test-host", "logs/x"),
        ["2026-10-03", "2026-10-02"],
        "the source's own policy applies"
    );

    // The metadb and the repository agree: every tabacco snapshot is recorded.
    let tabacco_snapshots = f
        .snapshot_tags()
        .into_iter()
        .filter(|t| t.contains(&"tabacco".to_string()))
        .count();
    assert_eq!(
        atom_names(&f.query(&["--versions", "100", "*"])).len(),
        tabacco_snapshots
    );
    assert_eq!(
        f.snapshot_tags().len(),
        tabacco_snapshots + 1,
        "the foreign snapshot stays"
    );
}

#[test]
fn min_bytes_rejects_a_short_dump() {
    let f = Fixture::new();
    f.write_config(
        "etc/sources/s.yml",
        "name: sql\nhandler: pipe\nmin_bytes: 10\nparams: {backup_command: \"printf ${atom.name}\"}\natoms: [{name: tiny}, {name: long-enough-name}]\n",
    );
    let run = f.tabacco(&["run"]).status(1);
    assert!(
        run.stderr
            .contains("dataset sql/tiny: backup_command produced 4 bytes, less than min_bytes 10"),
        "{}",
        run.stderr
    );
    assert_eq!(atom_names(&f.query(&["*"])), ["sql/long-enough-name"]);
    assert_eq!(
        f.snapshot_tags().len(),
        1,
        "the short dump's snapshot was removed"
    );
}

fn verifications(f: &Fixture) -> Vec<(String, bool, String)> {
    let db = rusqlite::Connection::open(f.path("work/metadb.sqlite")).unwrap();
    let mut stmt = db
        .prepare("SELECT atom, ok, message FROM verifications ORDER BY id")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn verify_drills_a_restore_and_records_it() {
    let f = Fixture::new();
    f.write("data/users/alice/inbox", "alice mail");
    f.write_config(
        "etc/sources/s.yml",
        "- name: users\n  handler: file\n  params: {path: ROOT/data/users}\n  atoms: [{name: alice}]\n\
         - name: sql\n  handler: pipe\n  params: {backup_command: \"seq 1 1000\"}\n",
    );
    f.tabacco(&["run"]).success();
    f.tabacco(&["verify", "users"]).success();
    f.tabacco(&["verify", "--read-data-subset", "50%", "sql"])
        .success();
    let v = verifications(&f);
    assert_eq!(v.len(), 2);
    assert_eq!(
        v[0],
        (
            "users/alice".into(),
            true,
            "1 file, 10 bytes restored and read back".into()
        )
    );
    assert_eq!(
        v[1],
        (
            "sql".into(),
            true,
            "3893 bytes streamed back, as backed up".into()
        )
    );
    assert!(
        std::fs::read_dir(f.path("work")).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("verify-")),
        "scratch space removed"
    );

    // A drill that finds less than was backed up fails, and says so.
    let db = rusqlite::Connection::open(f.path("work/metadb.sqlite")).unwrap();
    db.execute(
        "UPDATE datasets SET total_bytes = 5000 WHERE source = 'sql'",
        [],
    )
    .unwrap();
    let run = f.tabacco(&["verify", "sql"]).status(1);
    assert!(
        run.stderr.contains("restore drill of sql (backup ")
            && run
                .stderr
                .contains("dump has 3893 bytes, 5000 were backed up"),
        "{}",
        run.stderr
    );
    assert!(!verifications(&f)[2].1);
}

#[test]
fn verify_fails_on_a_damaged_repository() {
    let f = Fixture::new();
    f.write_config(
        "etc/sources/s.yml",
        "name: sql\nhandler: pipe\nparams: {backup_command: \"seq 1 1000\"}\n",
    );
    f.tabacco(&["run"]).success();
    // Damage every data pack of this test's own repository.
    let mut damaged = 0;
    for dir in std::fs::read_dir(f.path("repo/data")).unwrap() {
        for pack in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let path = pack.unwrap().path();
            let mut bytes = std::fs::read(&path).unwrap();
            for b in bytes.iter_mut().take(64) {
                *b ^= 0xff;
            }
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .unwrap();
            std::fs::write(&path, bytes).unwrap();
            damaged += 1;
        }
    }
    assert!(damaged > 0);
    let run = f
        .tabacco(&["verify", "--read-data-subset", "100%"])
        .status(1);
    assert!(run.stderr.contains("restic check failed"), "{}", run.stderr);
}
