//! Crashes (issue 26, item 5): `tabacco run` killed with SIGKILL at any
//! point of a dataset's backup loses no record of a snapshot restic
//! finished, and records none it did not: the source's next backup records
//! each finished one, exactly once.

use crate::common::{eventually, restic_binary, restic_binary_yaml, Fixture};
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The snapshot ids in the repository, and those recorded (each as often
/// as it is recorded); 0.14's short ids compared by their first 8 digits.
fn snapshots_and_records(f: &Fixture) -> (BTreeSet<String>, Vec<String>) {
    let out = f.restic(&["snapshots", "--json"]).success();
    let snapshots: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let short = |id: &str| id[..8].to_string();
    let in_repo = snapshots
        .iter()
        .map(|s| short(s["id"].as_str().unwrap()))
        .collect();
    let mut recorded: Vec<String> = f
        .query(&["--versions", "1000", "*"])
        .iter()
        .flat_map(|b| b["datasets"].as_array().cloned().unwrap_or_default())
        .map(|d| short(d["snapshot_id"].as_str().unwrap()))
        .collect();
    recorded.sort();
    (in_repo, recorded)
}

/// Every snapshot in the repository is recorded exactly once for each of
/// its `datasets` (a batch's snapshot holds many), and no intent is left.
#[track_caller]
fn each_recorded_once(f: &Fixture, snapshots: usize, datasets: usize) {
    let (in_repo, recorded) = snapshots_and_records(f);
    assert_eq!(in_repo.len(), snapshots, "{in_repo:?}");
    let once: Vec<String> = in_repo
        .into_iter()
        .flat_map(|id| std::iter::repeat_n(id, datasets))
        .collect();
    assert_eq!(recorded, once);
    let intents = std::fs::read_dir(f.path("work/intents")).map_or(0, |d| d.count());
    assert_eq!(intents, 0, "intents left");
}

/// Starts `tabacco run`, not waited for.
fn start_run(f: &Fixture) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_tabacco"))
        .arg("--config")
        .arg(f.config())
        .arg("run")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits for `path` to exist, then kills `run` with SIGKILL.
fn kill_when(run: &mut std::process::Child, path: &std::path::Path) {
    let there = eventually(Duration::from_secs(30), || path.exists().then_some(()));
    assert!(there.is_some(), "{} never appeared", path.display());
    run.kill().unwrap();
    run.wait().unwrap();
}

/// Killed after restic saved the snapshot but before tabacco saw restic
/// end, so before the record: the next run records it.
#[test]
fn a_snapshot_finished_when_run_was_killed_is_recorded_by_the_next_run() {
    killed_after_restic_saved(1);
}

/// The same for a batch of pipe atoms: every dataset of its snapshot.
#[test]
fn a_batch_finished_when_run_was_killed_is_recorded_by_the_next_run() {
    killed_after_restic_saved(12);
}

/// Runs a pipe source of `atoms` atoms (batched from 10) twice, killing
/// `run` each time once restic saved its snapshot, then twice more.
fn killed_after_restic_saved(atoms: usize) {
    let f = Fixture::new();
    // restic behind a wrapper that, after a backup, says so and waits.
    let script = format!(
        "#!/bin/sh\n{real} \"$@\"\ns=$?\ncase \" $* \" in *\" backup \"*) if [ ! -e {root}/go ]; then touch {root}/saved; while [ ! -e {root}/go ]; do sleep 0.1; done; fi;; esac\nexit $s\n",
        real = restic_binary(),
        root = f.root.display()
    );
    let wrapper = f.write("bin/restic", &script);
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut agent = f.repository_yaml();
    let ours = restic_binary_yaml();
    if !ours.is_empty() {
        agent = agent.replace(&ours, "");
    }
    f.write(
        "etc/agent.yml",
        &format!(
            "hostname: test-host\n{agent}restic_binary: {}\n",
            wrapper.display()
        ),
    );
    f.write_config(
        "etc/sources/s.yml",
        &format!(
            "name: db\nhandler: pipe\nparams: {{backup_command: \"echo dump of ${{atom.name}}\"}}\natoms: [{}]\n",
            (0..atoms)
                .map(|i| format!("{{name: a{i}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    for _ in 0..2 {
        let _ = std::fs::remove_file(f.path("saved"));
        let mut run = start_run(&f);
        kill_when(&mut run, &f.path("saved"));
        // The wrapper, orphaned, ends.
        f.write("go", "");
        let ended = eventually(Duration::from_secs(20), || {
            let out = Command::new("pgrep")
                .arg("-f")
                .arg(wrapper.display().to_string())
                .output()
                .unwrap();
            out.stdout.is_empty().then_some(())
        });
        assert!(ended.is_some(), "the wrapper still runs");
        std::fs::remove_file(f.path("go")).unwrap();
    }
    let (in_repo, recorded) = snapshots_and_records(&f);
    // The second run recorded the first one's snapshot before its own.
    assert_eq!(
        (in_repo.len(), recorded.len()),
        (2, atoms),
        "{in_repo:?} {recorded:?}"
    );
    f.write("go", "");
    f.tabacco(&["run"]).success();
    each_recorded_once(&f, 3, atoms);
    // Once more: nothing is recorded twice.
    f.tabacco(&["run"]).success();
    each_recorded_once(&f, 4, atoms);
}

/// Killed while restic reads the dump: restic saves nothing (the dump may
/// be cut), and nothing is recorded.
#[test]
fn a_run_killed_mid_dump_leaves_nothing_to_record() {
    let f = Fixture::new();
    f.write_config(
        "etc/sources/s.yml",
        "name: db\nhandler: pipe\nparams: {backup_command: \"echo part; touch ROOT/dumping; sleep 2; echo rest\"}\natoms: [{name: a}]\n",
    );
    f.tabacco(&["run"]).success();
    std::fs::remove_file(f.path("dumping")).unwrap();
    let mut run = start_run(&f);
    kill_when(&mut run, &f.path("dumping"));
    // The orphaned dump ends; restic, interrupted, leaves no lock.
    let unlocked = eventually(Duration::from_secs(20), || {
        (!crate::common::has_lock(&f.path("repo"))).then_some(())
    });
    assert!(unlocked.is_some(), "a lock was left");
    f.tabacco(&["run"]).success();
    each_recorded_once(&f, 2, 1);
}
