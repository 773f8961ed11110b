//! The first minute of a new user, and what must never go wrong on the way:
//! `--help` and `--version`, the demo's check, run and restore, the errors a
//! newcomer meets (each suggesting something that works), credentials in
//! URIs, and restores that must not lie or escape their target.

use crate::common::{restic_binary_yaml, restic_check_line, Cmd, Fixture, Run};
use std::process::Command;

/// `tabacco ARGS` without a configuration.
fn bare(args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tabacco"));
    cmd.args(args);
    Cmd(cmd).run()
}

/// Regression: `tabacco --help`, `-h`, `--version` and `-V` were refused
/// with "invalid option", followed by "Try 'tabacco --help'".
#[test]
fn help_and_version_options_work_before_any_command() {
    let help = bare(&["help"]).success();
    assert!(help.stdout.contains("Usage: tabacco"), "{help:?}");
    for args in [
        &["--help"][..],
        &["-h"],
        &["-v", "--help"],
        &["--help", "run"],
    ] {
        let run = bare(args).success();
        assert_eq!(
            (run.stdout, run.stderr),
            (help.stdout.clone(), String::new()),
            "{args:?}"
        );
    }
    let version = bare(&["version"]).success();
    assert_eq!(
        version.stdout,
        format!("tabacco {}\n", env!("CARGO_PKG_VERSION"))
    );
    for args in [&["--version"][..], &["-V"], &["-q", "--version"]] {
        let run = bare(args).success();
        assert_eq!(
            (run.stdout, run.stderr),
            (version.stdout.clone(), String::new()),
            "{args:?}"
        );
    }
}

/// Regression: every usage error said "Try 'tabacco --help'", which failed.
/// Each suggestion is now run and must succeed.
#[test]
fn usage_errors_suggest_a_command_that_works() {
    for (args, message) in [
        (&["--bogus"][..], "invalid option '--bogus'"),
        (&["frobnicate"], "unknown command \"frobnicate\""),
        (
            &["restore", "sql/db1"],
            "restore needs --target DIR or --in-place",
        ),
        (&["query"], "query needs at least one PATTERN (e.g. '*')"),
        (&["run", "--bogus"], "invalid option '--bogus'"),
        (
            &["query", "--versions", "0", "x"],
            "--versions must be at least 1",
        ),
    ] {
        let run = bare(args).status(2);
        assert_eq!(run.stdout, "", "{args:?}");
        let (first, second) = run.stderr.split_once('\n').unwrap();
        assert_eq!(first, format!("tabacco: {message}"), "{args:?}");
        let suggested = second
            .strip_prefix("Try '")
            .and_then(|s| s.strip_suffix("'.\n"))
            .unwrap_or_else(|| panic!("{args:?}: no suggestion in {:?}", run.stderr));
        let words: Vec<&str> = suggested.split_whitespace().collect();
        assert_eq!(words[0], "tabacco");
        let help = bare(&words[1..]).success();
        assert!(!help.stdout.is_empty(), "{suggested}");
        if let Some(command) = args.first().filter(|a| !a.starts_with('-')) {
            if *command != "frobnicate" {
                assert_eq!(suggested, format!("tabacco help {command}"));
            }
        }
    }
    let run = bare(&["help", "frobnicate"]).status(2);
    assert_eq!(
        run.stderr,
        "tabacco: no help for unknown command \"frobnicate\": 'tabacco --help' lists the commands\n"
    );
}

/// A newcomer's first `check` without a configuration says where it looked
/// and how to name another one.
#[test]
fn a_missing_configuration_says_how_to_name_one() {
    let f = Fixture::new();
    let missing = f.path("etc/nothing.yml");
    let run = bare(&["--config", missing.to_str().unwrap(), "check"]).status(2);
    assert_eq!(
        run.stderr,
        format!(
            "tabacco: no configuration at {}: write one (see tabacco.yml(5)) or name another with --config FILE\n",
            missing.display()
        )
    );
}

/// Regression: with no sources, `check` and `run` said nothing at all.
#[test]
fn a_configuration_without_sources_says_so() {
    let f = Fixture::new();
    let check = f.tabacco(&["check"]).success();
    assert!(
        check.stdout.ends_with(&format!(
            "\nno sources: nothing to back up (describe some in {}/*.yml, see tabacco.yml(5))\n",
            f.path("etc/sources").display()
        )),
        "{}",
        check.stdout
    );
    let run = f.tabacco(&["run"]).success();
    assert_eq!(
        run.stderr,
        "tabacco: warning: no sources configured: nothing to back up ('tabacco check' shows the configuration)\n"
    );
}

/// The demo's sources (contrib/demo/setup.sh): a file source with two atoms,
/// a pipe source with two databases.
fn demo() -> Fixture {
    let f = Fixture::new();
    f.write("data/users/alice/inbox", "alice's mail\n");
    f.write("data/users/bob/inbox", "bob's mail\n");
    f.write_config(
        "etc/sources/demo.yml",
        "- name: users\n  handler: file\n  params: {path: ROOT/data/users}\n  atoms: [{name: alice}, {name: bob}]\n\
         - name: sql\n  handler: pipe\n  params:\n    backup_command: \"printf 'dump of %s\\\\n' ${atom.name}\"\n    restore_command: \"cat > ROOT/restored-${atom.name}\"\n  atoms: [{name: db1}]\n",
    );
    f
}

/// The demo, as README's `make demo` runs it (`init`, `check`, `run`):
/// whole outputs where they are deterministic. Regression: `run -v` said
/// "1 datasets recorded".
#[test]
fn the_demo_walk_reads_well() {
    let f = demo();
    let root = f.root.display().to_string();
    let init = f.tabacco(&["init"]).success();
    let id = f.restic(&["cat", "config"]).success().stdout;
    let id: serde_json::Value = serde_json::from_str(&id).unwrap();
    let id = &id["id"].as_str().unwrap()[..8];
    assert_eq!(
        init.stdout.replace(&root, "ROOT").replace(id, "ID"),
        "repository  ROOT/repo: created (restic id ID, repository version 2)\n"
    );
    let check = f.tabacco(&["check"]).success();
    assert_eq!(
        check
            .stdout
            .replace(&root, "ROOT")
            .replace(&restic_check_line(), "RESTIC")
            .replace(id, "ID"),
        "host        test-host
repository  ROOT/repo
            restic id ID, repository version 2, opens with this host's key
RESTIC
metadb      embedded (ROOT/work/metadb.sqlite)

source users
  handler   file ROOT/data/users
  schedule  @random_every 1d
  dataset   users
    atom    users/alice  ROOT/data/users/alice
    atom    users/bob  ROOT/data/users/bob

source sql
  handler   pipe: printf 'dump of %s\\n' ${atom.name}
  schedule  @random_every 1d
  dataset   sql/db1
    atom    sql/db1
"
    );
    assert_eq!(check.stderr, "");

    let unknown = f.tabacco(&["run", "nosuch"]).status(2);
    assert_eq!(
        unknown.stderr,
        "tabacco: no source named \"nosuch\"; configured: users sql\n"
    );

    let run = f.tabacco(&["-v", "run"]).success();
    assert_eq!(run.stdout, "");
    let recorded: Vec<&str> = run
        .stderr
        .lines()
        .filter_map(|l| l.split_once("): ").map(|(_, tail)| tail))
        .collect();
    assert_eq!(recorded.len(), 2, "{}", run.stderr);
    assert!(
        recorded.iter().all(|t| *t == "1 dataset recorded"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(": 1 file, 12 bytes, "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(": 2 files, 24 bytes, "),
        "{}",
        run.stderr
    );

    let prune = f.tabacco(&["prune", "--dry-run"]).success();
    assert_eq!(prune.stdout, "would forget nothing\n");

    let restore = f
        .tabacco(&["restore", "--target", &format!("{root}/out"), "sql/db1"])
        .success();
    assert_eq!(restore.stderr, "");
    assert_eq!(
        std::fs::read_to_string(f.path("out/sql/db1")).unwrap(),
        "dump of db1\n"
    );
    f.tabacco(&["restore", "--in-place", "sql/db1"]).success();
    assert_eq!(
        std::fs::read_to_string(f.path("restored-db1")).unwrap(),
        "dump of db1\n"
    );
    let restore = f
        .tabacco(&[
            "-v",
            "restore",
            "--target",
            &format!("{root}/out"),
            "users/alice",
        ])
        .success();
    assert!(
        restore.stderr.ends_with("tabacco: info: restored 1 atom\n"),
        "{}",
        restore.stderr
    );
}

/// Regression: `check` exited 0 with a password file that restic cannot use.
#[test]
fn check_reports_a_missing_or_empty_password_file() {
    let f = Fixture::new();
    let pw = f.path("etc/restic.pw");
    f.write(
        "etc/agent.yml",
        &format!(
            "hostname: test-host\nrepository:\n  params:\n    uri: {}\n    password_file: {}\nwork_dir: {}\ninit: auto\n",
            f.path("repo").display(),
            pw.display(),
            f.path("work").display()
        ),
    );
    let run = f.tabacco(&["check"]).status(2);
    assert_eq!(
        run.stderr,
        format!(
            "tabacco: {}:5: repository.params.password_file {}: No such file or directory (os error 2)\n",
            f.config().display(),
            pw.display()
        )
    );
    f.write("etc/restic.pw", "\n");
    let run = f.tabacco(&["check"]).status(2);
    assert_eq!(
        run.stderr,
        format!(
            "tabacco: {}:5: repository.params.password_file {} is empty\n",
            f.config().display(),
            pw.display()
        )
    );
    f.write("etc/restic.pw", "secret\n");
    f.tabacco(&["check"]).success();
    f.write(
        "etc/agent.yml",
        &format!(
            "hostname: test-host\nrepository:\n  params:\n    uri: {}\n    password: \"\"\nwork_dir: {}\n",
            f.path("repo").display(),
            f.path("work").display()
        ),
    );
    let run = f.tabacco(&["check"]).status(2);
    assert!(
        run.stderr
            .ends_with("agent.yml:5: repository password is empty\n"),
        "{}",
        run.stderr
    );
}

/// Regression: a token file of two lines was accepted, and its two lines
/// sent as one header value.
#[test]
fn a_token_file_of_more_than_one_line_is_a_configuration_error() {
    let f = Fixture::new();
    let token = f.write("etc/token", "first\nsecond\n");
    let agent = format!(
        "hostname: test-host\n{}metadb:\n  url: http://127.0.0.1:9\n  token_file: {}\n",
        f.repository_yaml(),
        token.display()
    );
    f.write("etc/agent.yml", &agent);
    for command in ["check", "run", "query"] {
        let mut args = vec![command];
        if command == "query" {
            args.push("*");
        }
        let run = f.tabacco(&args).status(2);
        assert!(
            run.stderr.contains(&format!(
                "metadb.token_file {} holds more than one line: a token is one line",
                token.display()
            )),
            "{command}: {}",
            run.stderr
        );
    }
    f.write("etc/token", "only\n");
    f.tabacco(&["check"]).success();
}

/// A loopback port that nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback port that answers every request 401 and closes: a repository
/// server that refuses the credentials at once. (At a closed port, restic
/// 0.17 and newer retry for many minutes before giving up.)
fn refusing_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            use std::io::{Read, Write};
            let _ = conn.read(&mut [0u8; 65536]);
            let _ = conn.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    port
}

/// Regression: `check` printed `rest:http://user:SECRET@host/repo` and the
/// metadb URL with its password, and `run -v` logged the repository URI.
#[test]
fn credentials_in_uris_are_never_printed() {
    let f = demo();
    let (repo_port, metadb_port) = (refusing_port(), closed_port());
    f.write(
        "etc/agent.yml",
        &format!(
            "hostname: test-host\n{}repository:\n  params:\n    uri: rest:http://user:REPOSECRET@127.0.0.1:{repo_port}/repo\n    password: x\nwork_dir: {}\nrepository_timeout: 5s\nmetadb:\n  url: http://admin:DBSECRET@127.0.0.1:{metadb_port}\n  request_max_timeout: 2s\n",
            restic_binary_yaml(),
            f.path("work").display()
        ),
    );
    let check = f.tabacco(&["check", "--offline"]).success();
    assert!(
        check.stdout.starts_with(&format!(
            "host        test-host\nrepository  rest:http://user:***@127.0.0.1:{repo_port}/repo\n{}\nmetadb      http://admin:***@127.0.0.1:{metadb_port}\n",
            restic_check_line()
        )),
        "{}",
        check.stdout
    );
    // Opening the repository fails, and says so without the password.
    let opened = f.tabacco(&["check"]).status(2);
    assert!(
        opened.stderr.starts_with(&format!(
            "tabacco: repository rest:http://user:***@127.0.0.1:{repo_port}/repo cannot be reached: "
        )),
        "{}",
        opened.stderr
    );
    let run = f.tabacco(&["-vv", "run"]).status(1);
    let query = f.tabacco(&["-vv", "query", "*"]).run();
    for (what, out) in [
        ("check", &check),
        ("check", &opened),
        ("run", &run),
        ("query", &query),
    ] {
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(
            !all.contains("SECRET"),
            "{what} printed a credential:\n{all}"
        );
    }
    assert!(run.stderr.contains("user:***@127.0.0.1"), "{}", run.stderr);
    // Regression: restic's closing blank line made the error end in " / ".
    assert!(
        !run.stderr.contains(" / \n") && !run.stderr.contains(": \n"),
        "{}",
        run.stderr
    );

    // restic itself quotes an s3: URI as given; its lines are masked too.
    // The keys keep restic from asking a cloud metadata address for some.
    f.write(
        "etc/agent.yml",
        &format!(
            "hostname: test-host\nrepository:\n  params:\n    uri: s3:http://user:S3SECRET@127.0.0.1:{repo_port}/bucket\n    password: x\n    env: {{AWS_ACCESS_KEY_ID: a, AWS_SECRET_ACCESS_KEY: b}}\nwork_dir: {}\nrepository_timeout: 5s\n",
            f.path("work").display()
        ),
    );
    let run = f.tabacco(&["-vv", "run"]).status(1);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(!all.contains("SECRET"), "run printed a credential:\n{all}");
    assert!(all.contains("s3:http://user:***@127.0.0.1"), "{all}");
}

/// A pipe source whose restore command writes `${atom.path}.restored` in
/// the target, as the shipped sqlite handler writes next to the database.
fn pipe_fixture() -> Fixture {
    let f = Fixture::new();
    f.write_config(
        "etc/sources/sql.yml",
        "name: sql\nhandler: pipe\nparams:\n  backup_command: \"printf 'dump of %s\\\\n' ${atom.name}\"\n  restore_command: \"cd \\\"$RESTORE_TARGET\\\" && cat > ./${atom.path}.restored\"\natoms: [{name: db1}]\n",
    );
    f.tabacco(&["run"]).success();
    f
}

fn sql(f: &Fixture, statement: &str) {
    let db = rusqlite::Connection::open(f.path("work/metadb.sqlite")).unwrap();
    assert_eq!(db.execute(statement, []).unwrap(), 1, "{statement}");
}

/// Regression: a pipe atom's recorded path went unchecked into
/// `restore_command`, so a record with path `../escaped` wrote outside the
/// target.
#[test]
fn a_pipe_atoms_recorded_path_is_checked_before_use() {
    let f = pipe_fixture();
    sql(
        &f,
        "UPDATE atoms SET path = '../escaped' WHERE name = 'sql/db1'",
    );
    let target = f.path("target");
    std::fs::create_dir_all(&target).unwrap();
    let run = f
        .tabacco(&["restore", "--target", target.to_str().unwrap(), "sql/db1"])
        .status(1);
    assert!(
        run.stderr
            .contains("refusing record: atom sql/db1 has unsafe path \"../escaped\""),
        "{}",
        run.stderr
    );
    assert!(
        !f.path("escaped.restored").exists(),
        "wrote outside the target"
    );
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
}

/// Regression: a file atom whose path is not in its snapshot was "restored"
/// (exit 0, `restored 1 atoms`) into an empty target.
#[test]
fn a_file_atom_that_restores_nothing_fails() {
    let f = demo();
    f.tabacco(&["run", "users"]).success();
    let nobody = f.path("data/users/nobody");
    sql(
        &f,
        &format!(
            "UPDATE atoms SET path = '{}' WHERE name = 'users/bob'",
            nobody.display()
        ),
    );
    let target = f.path("target");
    let run = f
        .tabacco(&["restore", "--target", target.to_str().unwrap(), "users/bob"])
        .status(1);
    assert!(
        run.stderr.contains(&format!(
            "nothing restored at {} under {}: not in snapshot ",
            nobody.display(),
            target.display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.ends_with("restored 0 of 1 atom; 1 failed\n"),
        "{}",
        run.stderr
    );
}

/// A stream shorter or longer than the one recorded fails its atom, and
/// replaces nothing.
#[test]
fn a_pipe_stream_of_another_size_than_recorded_fails() {
    let f = pipe_fixture();
    let target = f.path("target");
    let stream = target.join("sql/db1");
    let to_dir = [
        "restore",
        "--overwrite",
        "--target",
        target.to_str().unwrap(),
        "sql/db1",
    ];
    // As recorded: 12 bytes, "dump of db1\n".
    f.tabacco(&to_dir).success();
    assert_eq!(std::fs::read_to_string(&stream).unwrap(), "dump of db1\n");
    std::fs::write(&stream, "kept").unwrap();
    sql(&f, "UPDATE datasets SET total_bytes = 4096");
    let run = f.tabacco(&to_dir).status(1);
    assert!(
        run.stderr
            .contains("atom sql/db1: restic dump streamed 12 bytes of the 4096 bytes recorded"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&stream).unwrap(),
        "kept",
        "a short stream replaces nothing"
    );
    // Records rebuilt from the repository carry no size: not checked.
    sql(&f, "UPDATE datasets SET total_bytes = 0");
    f.tabacco(&to_dir).success();
}

/// Regression: with `params.path` set, a listed atom whose path does not
/// exist was backed up (restic saw only the tree) and recorded.
#[test]
fn a_listed_atom_that_does_not_exist_fails_its_dataset() {
    let f = demo();
    f.write_config(
        "etc/sources/demo.yml",
        "- name: users\n  handler: file\n  params: {path: ROOT/data/users}\n  atoms: [{name: alice}, {name: nobody}]\n",
    );
    let run = f.tabacco(&["run"]).status(1);
    assert!(
        run.stderr.contains(&format!(
            "dataset users: path {} does not exist",
            f.path("data/users/nobody").display()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(f.query(&["*"]).len(), 0, "a dataset was recorded");
}

/// A file source `users` whose atom `alice` was backed up once.
fn alice_backed_up() -> Fixture {
    let f = Fixture::new();
    f.write("data/users/alice/inbox", "alice's mail\n");
    f.write_config(
        "etc/sources/users.yml",
        "name: users\nhandler: file\nparams: {path: ROOT/data/users}\natoms: [{name: alice}]\n",
    );
    f.tabacco(&["run"]).success();
    f
}

/// Regression: `verify` read a file atom back from its recorded path
/// unchecked: `/../..` + a live directory made the drill "pass" by reading
/// the live data, though restic restored nothing.
#[test]
fn a_restore_drill_checks_the_recorded_path() {
    let f = alice_backed_up();
    let alice = f.path("data/users/alice");
    let escaping = format!("{}{}", "/..".repeat(30), alice.display());
    sql(
        &f,
        &format!("UPDATE atoms SET path = '{escaping}' WHERE name = 'users/alice'"),
    );
    let run = f.tabacco(&["verify"]).status(1);
    assert!(
        run.stderr.contains(&format!(
            "refusing record: atom users/alice has unsafe path \"{escaping}\""
        )),
        "{}",
        run.stderr
    );
}

/// Regression: `ls` used a recorded atom name unchecked, where `dump`
/// checked it: both now start from one lookup that checks it.
#[test]
fn dump_and_ls_refuse_a_hostile_atom_name() {
    let f = alice_backed_up();
    sql(
        &f,
        "UPDATE atoms SET name = 'users/../alice' WHERE name = 'users/alice'",
    );
    for args in [&["ls", "users/*"][..], &["dump", "users/*", "inbox"][..]] {
        let run = f.tabacco(args).status(1);
        assert!(
            run.stderr.contains("refusing record: atom "),
            "{args:?}: {}",
            run.stderr
        );
    }
}
