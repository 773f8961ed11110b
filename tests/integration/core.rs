//! The core: configuration, file and pipe handlers, restic, `run`, `check`
//! and `query` on the embedded metadb.

use crate::common::{atom_names, Fixture, Run};

#[test]
fn file_and_pipe_sources_are_backed_up_and_found() {
    let f = Fixture::new();
    f.write("data/users/account1/mail", "hello");
    f.write("data/users/acct-2/mail", "world");
    f.write_config(
        "etc/sources/users.yml",
        "- name: users\n  handler: file\n  params: {path: ROOT/data/users}\n  atoms:\n    - name: account1\n    - name: account2\n      path: acct-2\n",
    );
    f.write_config(
        "etc/sources/sql.yml",
        "name: sql\nhandler: pipe\nparams:\n  backup_command: \"echo dump of ${atom.name}\"\natoms: [{name: db1}, {name: db2}]\n",
    );
    let run = f.tabacco(&["run"]).success();
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, "", "run prints nothing on success");

    let backups = f.query(&["*"]);
    let mut names = atom_names(&backups);
    names.sort();
    assert_eq!(
        names,
        ["sql/db1", "sql/db2", "users/account1", "users/account2"]
    );
    let users = f.query(&["users/*"]);
    assert_eq!(users.len(), 1);
    let dataset = &users[0]["datasets"][0];
    assert_eq!(dataset["source"], "users");
    assert_eq!(
        dataset["atoms"][1]["path"],
        f.path("data/users/acct-2").display().to_string()
    );
    assert_eq!(users[0]["host"], "test-host");

    // One snapshot per file source, one per pipe atom, each uniquely tagged.
    let tags = f.snapshot_tags();
    assert_eq!(tags.len(), 3);
    for t in &tags {
        assert_eq!(
            t.iter()
                .filter(|t| t.starts_with("tabacco:dataset="))
                .count(),
            1
        );
    }
    let dump = f
        .restic(&[
            "dump",
            "latest",
            "--tag",
            "tabacco:atom=sql/db2",
            &crate::common::pipe_path("sql/db2"),
        ])
        .success();
    assert_eq!(dump.stdout, "dump of db2\n");
}

/// A `restic` wrapper first in PATH that logs each invocation (subcommand
/// only) to `restic.log` and then runs the real restic, optionally killing
/// `backup` after `kill_backup_after` seconds.
fn restic_wrapper(f: &Fixture, kill_backup_after: Option<u32>) -> String {
    let real = String::from_utf8(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {}", crate::common::restic_binary()))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let kill = match kill_backup_after {
        Some(secs) => format!(
            // sh gives a background job /dev/null as stdin: pass the
            // producer's pipe on through fd 3.
            "if [ \"$1\" = backup ]; then exec 3<&0; {real} \"$@\" <&3 & pid=$!; sleep {secs}; kill -9 $pid; wait $pid; exit $?; fi\n"
        ),
        None => String::new(),
    };
    let log = f.path("restic.log");
    let script = format!(
        "#!/bin/sh\necho \"$1\" >> {log}\n{kill}exec {real} \"$@\"\n",
        log = log.display()
    );
    let path = f.write("bin/restic", &script);
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // The wrapper is found on PATH, not as this pass's restic_binary.
    let agent = std::fs::read_to_string(f.config()).unwrap();
    f.write(
        "etc/agent.yml",
        &agent.replace(&crate::common::restic_binary_yaml(), ""),
    );
    format!(
        "{}:{}",
        f.path("bin").display(),
        std::env::var("PATH").unwrap()
    )
}

fn restic_calls(f: &Fixture) -> Vec<String> {
    std::fs::read_to_string(f.path("restic.log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn one_restic_process_per_dataset() {
    let f = Fixture::new();
    f.write("data/x", "x");
    f.write_config("etc/sources/s.yml", "- name: files\n  handler: file\n  params: {path: ROOT/data}\n- name: sql\n  handler: pipe\n  params: {backup_command: \"echo ${atom.name}\"}\n  atoms: [{name: a}, {name: b}]\n");
    let path = restic_wrapper(&f, None);
    f.tabacco(&["run"]).env("PATH", &path).run().success();
    let mut calls = restic_calls(&f);
    calls.sort();
    assert_eq!(
        calls,
        ["backup", "backup", "backup", "init", "version"],
        "the version and init once, then one backup per dataset"
    );
    std::fs::remove_file(f.path("restic.log")).unwrap();
    f.tabacco(&["run", "sql"])
        .env("PATH", &path)
        .run()
        .success();
    let mut calls = restic_calls(&f);
    calls.sort();
    assert_eq!(
        calls,
        ["backup", "backup", "version"],
        "an existing local repository costs no restic call"
    );
}

#[test]
fn atom_names_from_atoms_command_never_execute() {
    let f = Fixture::new();
    let marker = f.path("pwned");
    f.write_config(
        "etc/sources/s.yml",
        &format!(
            "name: sql\nhandler: pipe\nparams: {{backup_command: \"echo ${{atom.name}}\"}}\natoms_command: \"printf 'good\\\\n$(touch {m})\\\\n`touch {m}`\\\\n../up\\\\n'\"\n",
            m = marker.display()
        ),
    );
    let run = f.tabacco(&["run"]).run().status(1);
    assert!(!marker.exists(), "an atom name was executed");
    assert!(run.stderr.contains("source sql"), "{}", run.stderr);
    assert!(
        run.stderr.contains("invalid name \"sql/../up\""),
        "{}",
        run.stderr
    );
    // Names that look like shell syntax are names like any other (as in the
    // original): backed up, their values only ever substituted quoted.
    let m = marker.display();
    let mut names = atom_names(&f.query(&["*"]));
    names.sort();
    assert_eq!(
        names,
        [
            format!("sql/$(touch {m})"),
            format!("sql/`touch {m}`"),
            "sql/good".to_string()
        ]
    );
}

/// Issue 26, item 9: one bad name printed by `atoms_command` (not UTF-8, a
/// control character, a `..` segment, a 256-byte segment) or by
/// `datasets_command` costs only its atom: it is said and skipped, and the
/// rest are backed up.
#[test]
fn a_bad_printed_name_costs_only_its_atom() {
    let f = Fixture::new();
    f.write(
        "list",
        "printf 'good\\n\\377bad\\nc\\001x\\n../up\\n%s\\n' \"$(printf 'x%.0s' $(seq 256))\"\n",
    );
    f.write(
        "datasets",
        "printf '[{\"atoms\": [{\"name\": \"fine\"}, {\"name\": \"b\\\\nc\"}, {\"name\": \"d\\\\u0001\"}, {\"name\": \"e/../f\"}, {\"name\": \"%s\"}]}]' \"$(printf 'x%.0s' $(seq 256))\"\n",
    );
    f.write_config(
        "etc/sources/s.yml",
        "name: sql\nhandler: pipe\nparams: {backup_command: \"echo ${atom.name}\"}\natoms_command: sh ROOT/list\n",
    );
    f.write_config(
        "etc/sources/t.yml",
        "name: ds\nhandler: pipe\nparams: {backup_command: \"echo ${atom.name}\"}\ndatasets_command: sh ROOT/datasets\n",
    );
    let run = f.tabacco(&["run"]).run().status(1);
    for said in [
        // Escaped where the name is made, and again by the log.
        "atoms_command printed a name that is not UTF-8: \"\\\\xffbad\"; atom skipped",
        "atoms_command printed an invalid name \"sql/c\\\\u{1}x\"",
        "atoms_command printed an invalid name \"sql/../up\"",
        "datasets_command printed an invalid name \"ds/b\\\\nc\"",
        "datasets_command printed an invalid name \"ds/e/../f\"",
    ] {
        assert!(run.stderr.contains(said), "{said}: {}", run.stderr);
    }
    assert_eq!(
        run.stderr.matches("atom skipped").count(),
        8,
        "{}",
        run.stderr
    );
    let mut names = atom_names(&f.query(&["*"]));
    names.sort();
    assert_eq!(names, ["ds/fine", "sql/good"]);
}

#[test]
fn substituted_values_are_quoted() {
    let f = Fixture::new();
    f.write_config(
        "etc/sources/s.yml",
        "name: sql\nhandler: pipe\nparams: {backup_command: \"printf '%s|' ${atom.name} ${atom.full_name} ${dataset.name} ${host} \\\"$ATOM_NAME\\\"; echo \\\"$ATOM_FULL_NAME\\\"\"}\natoms: [{name: \"we.ird-name_1\"}]\n",
    );
    f.tabacco(&["run"]).run().success();
    let dump = f
        .restic(&[
            "dump",
            "latest",
            &crate::common::pipe_path("sql/we.ird-name_1"),
        ])
        .success();
    assert_eq!(
        dump.stdout,
        "we.ird-name_1|sql/we.ird-name_1|sql/we.ird-name_1|test-host|we.ird-name_1|sql/we.ird-name_1\n"
    );
}

/// Issue 26, item 8: a name in any quoting context of a command (plain,
/// double quotes, single quotes, `$(...)` inside double quotes, a
/// here-document) reaches it exactly and never becomes shell syntax.
#[test]
fn no_quoting_context_turns_a_name_into_syntax() {
    let f = Fixture::new();
    let names = [
        "$(touch ROOT/pwned)",
        "`touch ROOT/pwned`",
        "x\"; touch ROOT/pwned; \"",
        "x'; touch ROOT/pwned; '",
    ]
    .map(|n| n.replace("ROOT", &f.root.display().to_string()));
    f.write("names", &(names.join("\n") + "\n"));
    f.write_config(
        "etc/sources/s.yml",
        "name: sql\nhandler: pipe\natoms_command: cat ROOT/names\nparams:\n  backup_command: |\n    \
         printf '%s|' ${atom.name} \"dq ${atom.name}\" 'sq ${atom.name}' \"$(printf '%s' ${atom.name})\"\n    \
         cat <<EOF\n    hd ${atom.name}\n    EOF\n  restore_command: |\n    \
         cat > ROOT/fed; printf '%s|' ${restore.name} \"dq ${restore.name}\" 'sq ${restore.name}' >> ROOT/fed\n",
    );
    f.tabacco(&["run"]).success();
    assert!(!f.path("pwned").exists(), "a name ran at backup");
    for name in &names {
        let dump = f.tabacco(&["dump", &format!("sql/{name}")]).success();
        assert_eq!(
            dump.stdout,
            format!("{name}|dq {name}|sq {name}|{name}|hd {name}\n")
        );
        f.tabacco(&["restore", "--in-place", &format!("sql/{name}")])
            .success();
        assert!(!f.path("pwned").exists(), "a name ran at restore");
        assert_eq!(
            std::fs::read_to_string(f.path("fed")).unwrap(),
            format!("{}{name}|dq {name}|sq {name}|", dump.stdout)
        );
    }
}

/// Issue 26, item 4: a dump that fails while another restic holds a lock
/// on the repository (so that no `forget` could run) leaves no snapshot:
/// `run` says so truthfully, and neither `reindex` nor `dump` ever sees
/// the truncated stream.
#[test]
fn a_failed_dump_leaves_no_snapshot_while_the_repository_is_locked() {
    let f = Fixture::new();
    let source = |command: &str| {
        f.write_config(
            "etc/sources/s.yml",
            &format!("name: db\nhandler: pipe\nparams: {{backup_command: \"{command}\"}}\natoms: [{{name: main}}]\n"),
        );
    };
    source("echo whole");
    f.tabacco(&["run"]).success();
    source("echo truncated; sleep 1; echo dump failed >&2; exit 1");
    let mut lock = crate::peers::holding_a_lock(&f);
    let run = f.tabacco(&["run"]).run().status(1);
    let _ = lock.kill();
    let _ = lock.wait();
    f.restic(&["unlock", "--remove-all"]).success();
    assert!(
        run.stderr
            .contains("backup_command exited with status 1: dump failed; restic was stopped before the stream ended, so nothing was saved"),
        "{}",
        run.stderr
    );
    assert_eq!(
        f.snapshot_tags().len(),
        1,
        "only the whole dump is a snapshot"
    );
    f.tabacco(&["reindex"]).success();
    let dump = f.tabacco(&["dump", "db/main"]).success();
    assert_eq!(dump.stdout, "whole\n");
    // A whole stream refused (min_bytes) is a snapshot: removed at once
    // if it can be, else listed, never recorded, and removed by prune.
    f.write_config(
        "etc/sources/s.yml",
        "name: db\nhandler: pipe\nmin_bytes: 1000\nparams: {backup_command: \"echo small\"}\natoms: [{name: main}]\n",
    );
    let mut lock = crate::peers::holding_a_lock(&f);
    let run = f.tabacco(&["run"]).run().status(1);
    let _ = lock.kill();
    let _ = lock.wait();
    f.restic(&["unlock", "--remove-all"]).success();
    assert!(
        run.stderr.contains("cannot remove the unusable snapshots")
            && run
                .stderr
                .contains("never recorded, and the next prune removes them"),
        "{}",
        run.stderr
    );
    assert_eq!(f.snapshot_tags().len(), 2);
    f.tabacco(&["reindex"]).success();
    let dump = f.tabacco(&["dump", "db/main"]).success();
    assert_eq!(dump.stdout, "whole\n", "reindex skips the listed snapshot");
    f.tabacco(&["prune"]).success();
    assert_eq!(f.snapshot_tags().len(), 1, "prune removed it");
    assert!(!f.path("work/unrecordable-snapshots").exists());
}

#[test]
fn failing_producer_fails_its_dataset_and_leaves_no_snapshot() {
    let f = Fixture::new();
    f.write_config(
        "etc/sources/s.yml",
        "name: sql\nhandler: pipe\nparams: {backup_command: \"echo partial; if [ ${atom.name} = bad ]; then echo dump failed >&2; exit 7; fi\"}\natoms: [{name: good}, {name: bad}]\n",
    );
    let run = f.tabacco(&["run"]).run().status(1);
    assert!(
        run.stderr.contains("source sql (backup ")
            && run
                .stderr
                .contains("dataset sql/bad: backup_command exited with status 7: dump failed"),
        "{}",
        run.stderr
    );
    assert_eq!(
        atom_names(&f.query(&["*"])),
        ["sql/good"],
        "only the good atom is recorded"
    );
    let tags = f.snapshot_tags();
    assert_eq!(tags.len(), 1, "the partial snapshot was removed: {tags:?}");
    assert!(tags[0].contains(&"tabacco:atom=sql/good".to_string()));
}

#[test]
fn restic_dying_mid_backup_fails_the_dataset() {
    let f = Fixture::new();
    f.write_config(
        "etc/sources/s.yml",
        "name: slow\nhandler: pipe\nparams: {backup_command: \"echo start; sleep 30; echo end\"}\n",
    );
    f.restic(&["init"]).success();
    let path = restic_wrapper(&f, Some(2));
    let started = std::time::Instant::now();
    let run = f.tabacco(&["run"]).env("PATH", &path).run().status(1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the producer was not left running"
    );
    assert!(
        run.stderr.contains("restic backup was killed by signal 9")
            || run.stderr.contains("restic backup exited"),
        "{}",
        run.stderr
    );
    assert_eq!(f.query(&["*"]).len(), 0);
}

#[test]
fn failing_pre_hook_skips_the_backup() {
    let f = Fixture::new();
    f.write("data/x", "x");
    f.write_config(
        "etc/sources/s.yml",
        "- name: files\n  handler: file\n  params: {path: ROOT/data}\n  pre_backup_command: \"echo not mounted >&2; exit 3\"\n  post_backup_command: \"touch ROOT/post-ran\"\n\
         - name: other\n  handler: file\n  params: {path: ROOT/data}\n",
    );
    let run = f.tabacco(&["run"]).run().status(1);
    assert!(
        run.stderr.contains("source files (backup "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("pre_backup_command exited with status 3: not mounted"),
        "{}",
        run.stderr
    );
    assert!(
        !f.path("post-ran").exists(),
        "post hook runs only after a pre hook that succeeded"
    );
    let names = atom_names(&f.query(&["*"]));
    assert_eq!(names, ["other"], "the other source is unaffected");
}

#[test]
fn hooks_see_their_environment_but_no_password() {
    let f = Fixture::new();
    f.write("data/users/a/f", "x");
    f.write_config(
        "etc/sources/s.yml",
        "name: users\nhandler: file\nparams: {path: ROOT/data/users}\natoms: [{name: a}]\n\
         pre_backup_command: \"env > ROOT/pre.env\"\npost_backup_command: \"env > ROOT/post.env\"\n",
    );
    f.tabacco(&["run"]).run().success();
    let pre = std::fs::read_to_string(f.path("pre.env")).unwrap();
    let post = std::fs::read_to_string(f.path("post.env")).unwrap();
    let backup = &f.query(&["*"])[0];
    let id = backup["id"].as_str().unwrap();
    for env in [&pre, &post] {
        assert!(env.contains(&format!("BACKUP_ID={id}\n")), "{env}");
        assert!(env.contains("DATASET_NAME=users\n"), "{env}");
        // The original's meaning: atoms' own names; full names beside them.
        assert!(env.contains("ATOM_NAMES=a\n"), "{env}");
        assert!(env.contains("ATOM_FULL_NAMES=users/a\n"), "{env}");
        assert!(env.contains("SOURCE_NAME=users\n"), "{env}");
        assert!(
            !env.contains(crate::common::PASSWORD),
            "the repository password leaked to a hook"
        );
    }
    assert!(post.contains("BACKUP_STATUS=ok\n"));
}

#[test]
fn password_is_never_on_a_command_line() {
    let f = Fixture::new();
    // The producer looks at every command line while restic is running.
    f.write_config(
        "etc/sources/s.yml",
        "name: ps\nhandler: pipe\nparams: {backup_command: \"sleep 1; ps -eo args\"}\n",
    );
    f.tabacco(&["run"]).run().success();
    let dump = f.restic(&["dump", "latest", "/ps"]).success().stdout;
    assert!(dump.contains("restic backup"), "restic was running: {dump}");
    assert!(
        !dump.contains(crate::common::PASSWORD),
        "password on a command line: {dump}"
    );
}

#[test]
fn timeout_kills_a_hanging_command_and_its_children() {
    let f = Fixture::new();
    let marker = f.path("child-survived");
    f.write_config(
        "etc/sources/s.yml",
        &format!("name: hang\nhandler: pipe\ntimeout: 2s\nparams: {{backup_command: \"(sleep 5; touch {}) & sleep 60\"}}\n", marker.display()),
    );
    let run = run_stopped_by_its_timeout(&f);
    assert!(
        run.stderr.contains("timeout of 2s exceeded"),
        "{}",
        run.stderr
    );
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert!(
        !marker.exists(),
        "a child of the timed-out command survived"
    );
    assert_eq!(f.query(&["*"]).len(), 0);
    assert!(
        f.snapshot_tags().is_empty(),
        "nothing partial left in the repository"
    );
}

#[test]
fn priorities_apply_to_commands() {
    let f = Fixture::with_agent("default_nice_level: 15\ndefault_io_class: 3\n");
    f.write_config(
        "etc/sources/s.yml",
        "name: prio\nhandler: pipe\nparams: {backup_command: \"ps -o ni= -p $$ | tr -d ' '; ionice -p $$\"}\n",
    );
    f.tabacco(&["run"]).run().success();
    let dump = f.restic(&["dump", "latest", "/prio"]).success().stdout;
    assert_eq!(dump, "15\nidle\n");
}

#[test]
fn handler_templates_merge_params_source_over_handler() {
    let f = Fixture::new();
    f.write_config("etc/handlers/h.yml", "name: dumper\ntype: pipe\nparams: {backup_command: \"echo from handler\", restore_command: cat}\n");
    f.write_config(
        "etc/sources/s.yml",
        "- name: plain\n  handler: dumper\n- name: override\n  handler: dumper\n  params: {backup_command: \"echo from source\"}\n",
    );
    f.tabacco(&["run"]).run().success();
    assert_eq!(
        f.restic(&["dump", "latest", "--tag", "tabacco:source=plain", "/plain"])
            .success()
            .stdout,
        "from handler\n"
    );
    assert_eq!(
        f.restic(&[
            "dump",
            "latest",
            "--tag",
            "tabacco:source=override",
            "/override"
        ])
        .success()
        .stdout,
        "from source\n"
    );
}

#[test]
fn datasets_command_and_datasets_list() {
    let f = Fixture::new();
    f.write("data/a/x", "1");
    f.write("data/b/y", "2");
    f.write_config(
        "etc/sources/s.yml",
        "- name: gen\n  handler: file\n  params: {path: ROOT/data}\n  datasets_command: \"echo '[{atoms: [{name: a}]}, {atoms: [{name: b}]}]'\"\n\
         - name: listed\n  handler: pipe\n  params: {backup_command: \"echo ${atom.name}\"}\n  datasets:\n    - atoms: [{name: one}]\n    - atoms_command: \"echo two\"\n",
    );
    f.tabacco(&["run"]).run().success();
    let mut names = atom_names(&f.query(&["*"]));
    names.sort();
    assert_eq!(names, ["gen/a", "gen/b", "listed/one", "listed/two"]);
    assert_eq!(
        f.snapshot_tags().len(),
        4,
        "two file datasets and two pipe atoms"
    );
}

#[test]
fn dry_run_runs_nothing() {
    let f = Fixture::new();
    f.write("data/x", "x");
    f.write_config(
        "etc/sources/s.yml",
        "- name: files\n  handler: file\n  params: {path: ROOT/data}\n  pre_backup_command: \"touch ROOT/pre-ran\"\n\
         - name: sql\n  handler: pipe\n  params: {backup_command: \"touch ROOT/dump-ran\"}\n",
    );
    let run = f.tabacco(&["run", "--dry-run"]).run().success();
    assert!(
        run.stderr
            .contains("dry run: would run pre_backup_command: touch"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("dry run: would stream `touch"),
        "{}",
        run.stderr
    );
    assert!(!f.path("pre-ran").exists() && !f.path("dump-ran").exists());
    assert!(
        !f.path("repo").exists(),
        "the repository was not even created"
    );
}

#[test]
fn run_selects_sources_by_name() {
    let f = Fixture::new();
    f.write_config("etc/sources/s.yml", "- name: a\n  handler: pipe\n  params: {backup_command: echo a}\n- name: b\n  handler: pipe\n  params: {backup_command: echo b}\n");
    f.tabacco(&["run", "b"]).run().success();
    assert_eq!(atom_names(&f.query(&["*"])), ["b"]);
    let unknown = f.tabacco(&["run", "c"]).run().status(2);
    assert!(
        unknown.stderr.contains("no source named \"c\""),
        "{}",
        unknown.stderr
    );
}

#[test]
fn missing_file_path_fails_clearly() {
    let f = Fixture::new();
    f.write_config(
        "etc/sources/s.yml",
        "name: gone\nhandler: file\natoms: [{name: x, path: ROOT/data/nope}]\n",
    );
    let run = f.tabacco(&["run"]).run().status(1);
    assert!(
        run.stderr.contains("path ") && run.stderr.contains("data/nope does not exist"),
        "{}",
        run.stderr
    );
}

#[test]
fn query_filters_and_formats() {
    let f = Fixture::new();
    f.write_config("etc/sources/s.yml", "name: sql\nhandler: pipe\nparams: {backup_command: \"echo ${atom.name}\"}\natoms: [{name: db1}, {name: db2}, {name: other}]\n");
    f.tabacco(&["run"]).run().success();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    f.tabacco(&["run"]).run().success();

    assert_eq!(
        f.tabacco(&["query", "nothing*"]).run().success().stdout,
        "[]\n",
        "[] when piped and nothing matches"
    );
    let mut names = atom_names(&f.query(&["sql/db?"]));
    names.sort();
    assert_eq!(
        names,
        ["sql/db1", "sql/db2"],
        "newest version only by default"
    );
    assert_eq!(
        atom_names(&f.query(&["--versions", "2", "sql/db1"])).len(),
        2
    );
    assert_eq!(
        atom_names(&f.query(&["sql/db1", "sql/db2"])).len(),
        2,
        "patterns are joined"
    );
    assert_eq!(f.query(&["--host", "elsewhere", "*"]).len(), 0);
    assert_eq!(f.query(&["--older-than", "1h", "*"]).len(), 0);
    let newest = f.query(&["--versions", "2", "sql/db1"]);
    let older = newest[1]["timestamp"].as_str().unwrap().to_string();
    let before_newest = f.query(&[
        "--older-than",
        newest[0]["timestamp"].as_str().unwrap(),
        "sql/db1",
    ]);
    assert_eq!(before_newest[0]["timestamp"], older.as_str());
    let table = f
        .tabacco(&["query", "--table", "sql/db1"])
        .run()
        .success()
        .stdout;
    assert!(
        table.starts_with("TIME") && table.contains("test-host") && table.contains("sql/db1"),
        "{table}"
    );
    assert!(f
        .tabacco(&["query", "--older-than", "soon", "*"])
        .run()
        .status(2)
        .stderr
        .contains("invalid time"));
}

#[test]
fn sigterm_stops_a_run_and_leaves_no_lock_or_partial_snapshot() {
    let f = Fixture::new();
    f.write_config(
        "etc/sources/s.yml",
        "name: slow\nhandler: pipe\nparams: {backup_command: \"echo begin; sleep 60; echo end\"}\n",
    );
    f.restic(&["init"]).success();
    let mut child = f
        .tabacco(&["run"])
        .0
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until restic is running: its lock exists, and restic has had
    // time to list it among those it removes when interrupted (a SIGINT
    // while restic is still taking its lock leaves the lock behind).
    let locked = crate::common::eventually(std::time::Duration::from_secs(20), || {
        crate::common::has_lock(&f.path("repo")).then_some(())
    });
    assert!(locked.is_some(), "restic never started");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let locks = f.path("repo/locks");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let stopped = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert!(
        stopped.elapsed() < std::time::Duration::from_secs(12),
        "took {:?}",
        stopped.elapsed()
    );
    assert_eq!(status.code(), Some(1));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(&locks).unwrap().count(),
        0,
        "restic left a lock behind"
    );
    assert!(f.snapshot_tags().is_empty());
    assert_eq!(f.query(&["*"]).len(), 0);
}

#[test]
fn failing_post_hook_fails_the_source_but_keeps_the_backup() {
    let f = Fixture::new();
    f.write_config(
        "etc/sources/s.yml",
        "name: sql\nhandler: pipe\nparams: {backup_command: \"echo data\"}\npost_backup_command: \"echo cannot unlock >&2; exit 4\"\n",
    );
    let run = f.tabacco(&["run"]).status(1);
    assert!(
        run.stderr.contains("post_backup_command exited with status 4: cannot unlock (the dataset was saved and recorded)"),
        "{}",
        run.stderr
    );
    assert_eq!(atom_names(&f.query(&["*"])), ["sql"]);
}

/// Backs up `sources`, two datasets each, with `concurrency`; their hooks
/// log when each dataset starts and ends. Checks that every dataset was
/// recorded; returns that log and the most datasets running at once.
fn dataset_windows(concurrency: usize, sources: &[&str]) -> (Vec<String>, usize) {
    let f = Fixture::with_agent(&format!("queue_config: {{concurrency: {concurrency}}}\n"));
    let mut yaml = String::new();
    let mut expected = Vec::new();
    for name in sources {
        yaml += &format!(
            "- name: {name}\n  handler: pipe\n  params: {{backup_command: \"echo ${{atom.name}}\"}}\n  atoms: [{{name: one}}, {{name: two}}]\n  \
             pre_backup_command: \"echo start $DATASET_NAME >> ROOT/events; sleep 1\"\n  post_backup_command: \"echo end $DATASET_NAME >> ROOT/events\"\n"
        );
        expected.extend([format!("{name}/one"), format!("{name}/two")]);
    }
    f.write_config("etc/sources/s.yml", &yaml);
    f.tabacco(&["run"]).success();
    let mut names = atom_names(&f.query(&["*"]));
    names.sort();
    assert_eq!(names, expected, "every dataset was recorded");
    let events: Vec<String> = std::fs::read_to_string(f.path("events"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let (mut running, mut most) = (0, 0);
    for event in &events {
        if event.starts_with("start ") {
            running += 1;
            most = most.max(running);
        } else {
            running -= 1;
        }
    }
    (events, most)
}

#[test]
fn datasets_back_up_concurrently_up_to_concurrency_in_all() {
    let (events, most) = dataset_windows(2, &["a"]);
    assert_eq!(most, 2, "the datasets of one source overlap: {events:?}");
    let (events, most) = dataset_windows(2, &["a", "b"]);
    assert_eq!(
        most, 2,
        "never more than 2 datasets at once across sources: {events:?}"
    );
}

#[test]
fn concurrency_1_backs_up_one_dataset_at_a_time_in_order() {
    let (events, _) = dataset_windows(1, &["a", "b"]);
    assert_eq!(
        events,
        [
            "start a/one",
            "end a/one",
            "start a/two",
            "end a/two",
            "start b/one",
            "end b/one",
            "start b/two",
            "end b/two"
        ]
    );
}

#[test]
fn concurrent_failures_come_in_dataset_order_and_leave_no_snapshot() {
    let f = Fixture::with_agent("queue_config: {concurrency: 2}\n");
    f.write_config(
        "etc/sources/s.yml",
        "name: sql\nhandler: pipe\nparams: {backup_command: \"if [ ${atom.name} = slow ]; then sleep 2; fi; exit 3\"}\natoms: [{name: slow}, {name: fast}]\n",
    );
    let run = f.tabacco(&["run"]).status(1);
    let slow = run
        .stderr
        .find("dataset sql/slow: backup_command exited with status 3");
    let fast = run
        .stderr
        .find("dataset sql/fast: backup_command exited with status 3");
    assert!(
        slow.is_some() && fast.is_some() && slow < fast,
        "the slow first dataset's failure comes first: {}",
        run.stderr
    );
    // The fast one's partial snapshot is removed only once the slow one's
    // restic no longer holds a lock.
    let tags = f.snapshot_tags();
    assert!(tags.is_empty(), "{tags:?}\n{}", run.stderr);
}

#[test]
fn timeout_stops_the_running_datasets_and_starts_no_other() {
    let f = Fixture::with_agent("queue_config: {concurrency: 2}\n");
    f.write_config(
        "etc/sources/s.yml",
        "name: hang\nhandler: pipe\ntimeout: 2s\nparams: {backup_command: \"echo started >> ROOT/events; sleep 60\"}\natoms: [{name: a}, {name: b}, {name: c}]\n",
    );
    let run = run_stopped_by_its_timeout(&f);
    for atom in ["a", "b", "c"] {
        assert!(
            run.stderr
                .lines()
                .any(|l| l.contains(&format!("dataset hang/{atom}: "))
                    && l.contains("timeout of 2s exceeded")),
            "{atom}: {}",
            run.stderr
        );
    }
    let events = std::fs::read_to_string(f.path("events")).unwrap();
    assert_eq!(events, "started\nstarted\n", "the third never started");
    assert!(f.snapshot_tags().is_empty());
}

/// `tabacco run` of a source whose 2 s timeout stops it: failed, and well
/// before its commands would have ended by themselves.
fn run_stopped_by_its_timeout(f: &Fixture) -> Run {
    f.restic(&["init"]).success();
    let started = std::time::Instant::now();
    let run = f.tabacco(&["run"]).run().status(1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    run
}

#[test]
fn partial_snapshots_of_concurrent_failures_are_all_removed() {
    let f = Fixture::with_agent("queue_config: {concurrency: 2}\n");
    f.write(
        "etc/sources/s.yml",
        "name: sql\nhandler: pipe\nparams: {backup_command: \"echo half a dump of ${atom.name}; exit 3\"}\natoms: [{name: a}, {name: b}, {name: c}]\n",
    );
    let run = f.tabacco(&["run"]).status(1);
    assert_eq!(
        run.stderr
            .matches("restic was stopped before the stream ended, so nothing was saved")
            .count(),
        3,
        "{}",
        run.stderr
    );
    let tags = f.snapshot_tags();
    assert!(tags.is_empty(), "{tags:?}");
}

// Fleets keep repositories on servers: a source backs up into one served
// over restic's REST protocol, and its dump comes back byte for byte.
#[test]
fn a_repository_served_over_rest_backs_up_and_dumps() {
    let f = Fixture::new();
    let server = crate::common::RestServer::start(&f.path("served"), false);
    f.write(
        "etc/agent.yml",
        &f.repository_yaml()
            .replace(
                &f.path("repo").display().to_string(),
                &format!("{}main", server.url),
            )
            .replace("repository:", "hostname: test-host\nrepository:"),
    );
    f.write_config(
        "etc/sources/s.yml",
        "name: sql\nhandler: pipe\nparams: {backup_command: \"printf 'row 1\\\\nrow 2\\\\n'\", restore_command: \"cat\"}\n",
    );
    f.tabacco(&["run"]).success();
    assert!(f.path("served/main/config").exists());
    let dump = f.tabacco(&["dump", "sql"]).success();
    assert_eq!(dump.stdout, "row 1\nrow 2\n");
}
