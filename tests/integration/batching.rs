//! Pipe atoms batched into one restic process (issue 30): each atom its
//! own dataset of one snapshot, restored, dumped and reindexed as a single
//! atom's; a failing producer fails only its atom; a stopped run leaves no
//! staging area and records nothing; an atom over the bound streams alone.

use crate::common::{atom_names, Fixture};
use std::fs;
use std::time::Duration;

/// A pipe source `sql` of atoms `db1`..`dbN`, each dumping a line naming
/// it, with `extra` YAML (the backup command may test `${atom.name}`).
fn sql_source(f: &Fixture, n: usize, command: &str, extra: &str) {
    let atoms: Vec<String> = (1..=n).map(|i| format!("{{name: db{i}}}")).collect();
    f.write_config(
        "etc/sources/sql.yml",
        &format!(
            "name: sql\nhandler: pipe\nparams:\n  backup_command: {command:?}\n  restore_command: \"cat > ROOT/restored-${{atom.name}}\"\natoms: [{}]\n{extra}",
            atoms.join(", ")
        ),
    );
}

const DUMP: &str = "echo dump of ${atom.name}";

/// The snapshots' ids as the metadb records them, one per dataset.
fn snapshot_ids(backups: &[serde_json::Value]) -> Vec<String> {
    let mut ids = Vec::new();
    for b in backups {
        for d in b["datasets"].as_array().unwrap() {
            ids.push(d["snapshot_id"].as_str().unwrap().to_string());
        }
    }
    ids
}

/// What the staging areas' directory holds besides lock files.
fn staged(f: &Fixture) -> Vec<String> {
    let Ok(entries) = fs::read_dir(f.path("work/batch")) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".lock"))
        .collect()
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

fn db_names(range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    sorted(range.map(|i| format!("sql/db{i}")).collect())
}

#[test]
fn many_atoms_are_one_snapshot_each_restored_and_dumped_by_name() {
    let f = Fixture::new();
    sql_source(&f, 12, DUMP, "");
    f.tabacco(&["run"]).success();
    assert_eq!(f.snapshot_tags().len(), 1, "one restic snapshot for all");
    let backups = f.query(&["*"]);
    assert_eq!(sorted(atom_names(&backups)), db_names(1..=12));
    let ids = snapshot_ids(&backups);
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert!(staged(&f).is_empty(), "{:?}", staged(&f));
    let db3 = &f.query(&["sql/db3"])[0]["datasets"][0];
    assert_eq!(db3["total_bytes"], "dump of db3\n".len());

    // Where a single atom's snapshot would hold it, found as one would be.
    let dump = f.restic(&["dump", &ids[0], "/sql/db7"]).success();
    assert_eq!(dump.stdout, "dump of db7\n");
    let tag = "tabacco:atom=sql/db6";
    let dump = f
        .restic(&["dump", "latest", "--tag", tag, "/sql/db6"])
        .success();
    assert_eq!(dump.stdout, "dump of db6\n");
    let dumped = f.tabacco(&["dump", "sql/db3"]).success();
    assert_eq!(dumped.stdout, "dump of db3\n");
    f.tabacco(&["restore", "--in-place", "sql/db5"]).success();
    assert_eq!(
        fs::read_to_string(f.path("restored-db5")).unwrap(),
        "dump of db5\n"
    );
    assert!(!f.path("restored-db4").exists());
    // As for any pipe atom: no files to list; a drill reads one back.
    let listed = f.tabacco(&["ls", "sql/db9"]).status(1);
    assert!(
        listed.stderr.contains("sql/db9 is a pipe atom"),
        "{listed:?}"
    );
    f.tabacco(&["verify", "sql"]).success();
}

#[test]
fn batched_atoms_are_copied_and_read_from_the_copy() {
    let f = Fixture::new();
    let offsite = f.path("offsite").display().to_string();
    f.write(
        "etc/agent.yml",
        &format!(
            "hostname: test-host\n{}\ncopies:\n  - name: offsite\n    params:\n      uri: {offsite}\n",
            f.repository_yaml()
        ),
    );
    sql_source(&f, 10, DUMP, "");
    f.tabacco(&["run"]).success();
    let backups = f.query(&["*"]);
    for d in backups[0]["datasets"].as_array().unwrap() {
        assert_eq!(d["repositories"], serde_json::json!(["primary", "offsite"]));
    }
    let dumped = f
        .tabacco(&["dump", "--repository", "offsite", "sql/db8"])
        .success();
    assert_eq!(dumped.stdout, "dump of db8\n");
    f.tabacco(&["verify", "--repository", "offsite", "sql"])
        .success();
}

#[test]
fn one_failing_producer_among_fifty_fails_alone() {
    let f = Fixture::new();
    sql_source(
        &f,
        50,
        "[ ${atom.name} != db17 ] || { echo half; echo broken >&2; exit 3; }; echo dump of ${atom.name}",
        "",
    );
    let run = f.tabacco(&["run"]).status(1);
    assert!(
        run.stderr
            .contains("dataset sql/db17: backup_command exited with status 3: broken"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("dataset sql/").count(),
        1,
        "{}",
        run.stderr
    );
    let backups = f.query(&["*"]);
    let mut expected = db_names(1..=50);
    expected.retain(|n| n != "sql/db17");
    assert_eq!(sorted(atom_names(&backups)), expected);
    let id = &snapshot_ids(&backups)[0];
    let listed = f.restic(&["ls", id]).success();
    assert!(listed.stdout.contains("/sql/db16\n"), "{}", listed.stdout);
    assert!(!listed.stdout.contains("/sql/db17\n"), "{}", listed.stdout);
    let tags = f.snapshot_tags().concat();
    assert!(tags.contains(&"tabacco:atom=sql/db16".to_string()));
    assert!(!tags.iter().any(|t| t.ends_with("sql/db17")), "{tags:?}");
    assert!(staged(&f).is_empty());
}

#[test]
fn sigterm_mid_batch_leaves_no_staging_area_and_records_nothing() {
    let f = Fixture::new();
    let started = f.path("started");
    sql_source(
        &f,
        20,
        &format!(
            "echo dump of ${{atom.name}}; [ ${{atom.name}} != db15 ] || {{ touch {}; sleep 60; }}",
            started.display()
        ),
        "",
    );
    f.restic(&["init"]).success();
    let mut child = f
        .tabacco(&["run"])
        .0
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let dumping =
        crate::common::eventually(Duration::from_secs(30), || started.exists().then_some(()));
    assert!(dumping.is_some(), "db15's dump never started");
    assert!(!staged(&f).is_empty(), "the staging area is in use");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let stopped = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert!(stopped.elapsed() < Duration::from_secs(12));
    assert_eq!(status.code(), Some(1));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert!(staged(&f).is_empty(), "{:?}", staged(&f));
    assert!(f.snapshot_tags().is_empty());
    assert_eq!(f.query(&["*"]).len(), 0);
}

#[test]
fn an_atom_over_the_bound_streams_alone() {
    // One dump at a time: at two, a small atom written while db4 fills
    // the area may be the one that overflows it, and waits for a batch of
    // its own.
    let f = Fixture::with_agent("queue_config: {concurrency: 1}\n");
    sql_source(
        &f,
        11,
        "if [ ${atom.name} = db4 ]; then head -c 2097152 /dev/zero; else echo dump of ${atom.name}; fi",
        "batch_bytes: 1048576\n",
    );
    f.tabacco(&["run"]).success();
    let backups = f.query(&["*"]);
    assert_eq!(sorted(atom_names(&backups)), db_names(1..=11));
    let tags = f.snapshot_tags();
    assert_eq!(tags.len(), 2, "a batch of 10 and db4 alone: {tags:?}");
    let alone = tags
        .iter()
        .find(|t| !t.iter().any(|t| t.starts_with("tabacco:batched=")))
        .expect("db4 has its own snapshot");
    assert!(
        alone.iter().any(|t| t == "tabacco:atom=sql/db4"),
        "{alone:?}"
    );
    let dumped = f.tabacco(&["dump", "sql/db4"]).success();
    assert_eq!(dumped.stdout.len(), 2097152);
    let dumped = f.tabacco(&["dump", "sql/db5"]).success();
    assert_eq!(dumped.stdout, "dump of db5\n");
    assert!(staged(&f).is_empty());
}

#[test]
fn reindex_rebuilds_batched_records() {
    let f = Fixture::new();
    sql_source(&f, 10, DUMP, "");
    f.tabacco(&["run"]).success();
    let before = f.query(&["*"]);
    fs::remove_file(f.path("work/metadb.sqlite")).unwrap();
    assert_eq!(f.query(&["*"]).len(), 0);
    f.tabacco(&["reindex"]).success();
    let after = f.query(&["*"]);
    assert_eq!(sorted(atom_names(&after)), sorted(atom_names(&before)));
    let ids = |backups: &[serde_json::Value]| {
        let mut ids: Vec<(String, String)> = Vec::new();
        for d in backups[0]["datasets"].as_array().unwrap() {
            let atom = d["atoms"][0]["name"].as_str().unwrap().to_string();
            ids.push((atom, d["id"].as_str().unwrap().to_string()));
        }
        ids.sort();
        ids
    };
    assert_eq!(ids(&after), ids(&before), "the same dataset ids");
    assert_eq!(after[0]["id"], before[0]["id"]);
    let dumped = f.tabacco(&["dump", "sql/db10"]).success();
    assert_eq!(dumped.stdout, "dump of db10\n");
}

#[test]
fn a_crashed_runs_staging_area_is_removed() {
    let f = Fixture::new();
    sql_source(&f, 10, DUMP, "");
    f.write("work/batch/sql/sql/db1", "left by a crash");
    f.write("work/batch/gone/x/y", "a source since removed");
    f.tabacco(&["run"]).success();
    assert!(staged(&f).is_empty(), "{:?}", staged(&f));
    let dumped = f.tabacco(&["dump", "sql/db1"]).success();
    assert_eq!(dumped.stdout, "dump of db1\n");
}

#[test]
fn prune_forgets_a_batch_and_all_its_records() {
    let f = Fixture::with_agent("retention: {keep_last: 1}\n");
    sql_source(&f, 10, DUMP, "");
    f.tabacco(&["run"]).success();
    let first = snapshot_ids(&f.query(&["*"]))[0].clone();
    std::thread::sleep(Duration::from_millis(1100));
    f.tabacco(&["run"]).success();
    assert_eq!(f.query(&["--versions", "10", "sql/db1"]).len(), 2);
    f.tabacco(&["prune"]).success();
    assert_eq!(f.snapshot_tags().len(), 1, "the older batch is forgotten");
    let kept = f.query(&["--versions", "10", "*"]);
    assert_eq!(kept.len(), 1, "its ten records are removed with it");
    assert_eq!(sorted(atom_names(&kept)), db_names(1..=10));
    assert!(snapshot_ids(&kept).iter().all(|id| *id != first));
}

#[test]
fn a_crashed_runs_staging_area_goes_at_any_sources_backup() {
    let f = Fixture::new();
    sql_source(&f, 1, DUMP, "");
    f.write("work/batch/gone/x/y", "a source since removed");
    f.tabacco(&["run"]).success();
    assert!(staged(&f).is_empty(), "{:?}", staged(&f));
}

#[test]
fn an_empty_or_short_dump_fails_its_own_atom_only() {
    let f = Fixture::new();
    sql_source(
        &f,
        10,
        "case ${atom.name} in db2) ;; db3) echo x ;; *) echo dump of ${atom.name} ;; esac",
        "min_bytes: 5\n",
    );
    let run = f.tabacco(&["run"]).status(1);
    assert!(
        run.stderr
            .contains("dataset sql/db2: backup_command printed nothing"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("dataset sql/db3: backup_command produced 2 bytes, less than min_bytes 5"),
        "{}",
        run.stderr
    );
    let mut expected = db_names(1..=10);
    expected.retain(|n| n != "sql/db2" && n != "sql/db3");
    assert_eq!(sorted(atom_names(&f.query(&["*"]))), expected);
    assert_eq!(f.snapshot_tags().len(), 1);
}
