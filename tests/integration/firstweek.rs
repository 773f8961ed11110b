//! An operator's first week (issue 28): a cron host's removed source stops
//! being watched, an administrator needs only the metadb's address and a
//! token, configuration errors say where and all at once, a failure leads
//! with its cause, and a healthy fleet says so.

use crate::common::Fixture;
use crate::health::host_config;
use crate::metadb::{fleet_config, Server};

/// A fixture with its repository created (by restic itself: whether
/// tabacco creates one is not what these tests are about).
fn with_repository() -> Fixture {
    let f = Fixture::new();
    f.restic(&["init"]).success();
    f
}

/// A file source backing up `data/NAME`.
fn file_source(f: &Fixture, name: &str) -> String {
    f.write(&format!("data/{name}/file"), "data\n");
    format!(
        "name: {name}\nhandler: file\nschedule: \"@daily\"\nparams: {{path: {}}}\n",
        f.path(&format!("data/{name}")).display()
    )
}

/// Issue 28, item 3: a cron host (`run`, no agent) added the sources it
/// ran to its plan and never took any away, so a deleted source stayed
/// `failed` in `status --problems` (exit 1) until an agent started.
#[test]
fn run_publishes_the_whole_plan_so_a_removed_source_stops_being_watched() {
    let f = with_repository();
    f.write("etc/sources/www.yml", &file_source(&f, "www"));
    f.write(
        "etc/sources/gone.yml",
        "name: gone\nhandler: pipe\nschedule: \"@daily\"\nparams: {backup_command: \"exit 3\"}\n",
    );
    f.tabacco(&["run"]).status(1);
    let problems = f.tabacco(&["status", "--problems", "--table"]).status(1);
    assert!(problems.stdout.contains("gone"), "{problems:?}");

    std::fs::remove_file(f.path("etc/sources/gone.yml")).unwrap();
    // Naming one source still publishes the host's whole plan.
    f.tabacco(&["run", "www"]).success();
    let healthy = f.tabacco(&["status", "--problems", "--table"]).success();
    assert_eq!(healthy.stdout, "no problems: 1 source ok\n");
    let all = f.tabacco(&["status", "--json"]).success();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&all.stdout).unwrap();
    let sources: Vec<&str> = rows.iter().map(|r| r["source"].as_str().unwrap()).collect();
    assert_eq!(sources, ["www"]);
    // A dry run publishes nothing: a source added to the configuration is
    // not watched before it runs for real.
    f.write("etc/sources/new.yml", &file_source(&f, "new"));
    f.tabacco(&["run", "--dry-run"]).success();
    let healthy = f.tabacco(&["status", "--problems", "--table"]).success();
    assert_eq!(healthy.stdout, "no problems: 1 source ok\n");
}

/// Issue 28, item 6: a healthy fleet's `status --problems` said `no planned
/// sources`.
#[test]
fn a_healthy_fleet_says_so() {
    let f = with_repository();
    let none = f.tabacco(&["status", "--problems", "--table"]).success();
    assert_eq!(none.stdout, "no problems: no planned sources\n");
    f.write("etc/sources/www.yml", &file_source(&f, "www"));
    f.write("etc/sources/etc.yml", &file_source(&f, "etc"));
    f.tabacco(&["run"]).success();
    let healthy = f.tabacco(&["status", "--problems", "--table"]).success();
    assert_eq!(healthy.stdout, "no problems: 2 sources ok\n");
    // Machines read JSON: an empty list, as before.
    let json = f.tabacco(&["status", "--problems", "--json"]).success();
    assert_eq!(json.stdout, "[]\n");
}

/// Issue 28, item 3: `retire-host` needs the admin token, which the CLI
/// read only from a whole agent.yml (`missing field repository` without
/// one). A file holding only `metadb:` serves the commands that only ask
/// the metadb.
#[test]
fn an_administrator_needs_only_the_metadb() {
    let f = with_repository();
    let server = Server::start(&fleet_config(&f, "", &["web1"]), "127.0.0.1:0");
    let web1 = host_config(&f, "web1", &server.url());
    f.write("etc-web1/sources/www.yml", &file_source(&f, "www"));
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_tabacco"))
        .arg("--config")
        .arg(&web1)
        .arg("run")
        .status()
        .unwrap();
    assert!(run.success());

    let token = f.write("admin/admin.token", "secret\n");
    let admin = f.write(
        "admin/admin.yml",
        &format!(
            "metadb:\n  url: {}\n  token_file: {}\n",
            server.url(),
            token.display()
        ),
    );
    let tabacco = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tabacco"));
        cmd.arg("--config").arg(&admin).args(args);
        crate::common::Cmd(cmd)
    };
    let status = tabacco(&["status", "--table"]).success();
    assert!(status.stdout.contains("web1  www"), "{status:?}");
    let query = tabacco(&["query", "--table", "www"]).success();
    assert!(query.stdout.contains("web1"), "{query:?}");
    tabacco(&["history", "--limit", "1"]).success();
    let retired = tabacco(&["-v", "retire-host", "web1"]).success();
    assert!(retired.stderr.contains("host web1 retired"), "{retired:?}");
    let status = tabacco(&["status", "--table"]).success();
    assert_eq!(status.stdout, "no planned sources\n");
    // Commands that need the repository say what is missing, exit 2.
    let run = tabacco(&["run"]).status(2);
    assert!(
        run.stderr
            .contains("admin.yml:1: missing repository: where backups go"),
        "{run:?}"
    );
}

/// Issue 28, item 4: a missing password file read `repository.params.
/// password_file /etc/tabacco/restic.pw: No such file or directory`, with
/// no file and line, and `run` exited 1 on it, as for a failed job.
#[test]
fn a_password_file_restic_cannot_use_is_a_located_configuration_error() {
    let f = Fixture::new();
    let pw = f.path("etc/restic.pw");
    let agent = std::fs::read_to_string(f.config()).unwrap().replace(
        "password: test-password",
        &format!("password_file: {}", pw.display()),
    );
    f.write("etc/agent.yml", &agent);
    f.write("etc/sources/www.yml", &file_source(&f, "www"));
    let line = agent
        .lines()
        .position(|l| l.contains("password_file"))
        .unwrap()
        + 1;
    let expected = format!(
        "{}:{line}: repository.params.password_file {}: No such file or directory (os error 2)",
        f.config().display(),
        pw.display()
    );
    for args in [&["check"][..], &["run"], &["prune"], &["verify"]] {
        let failed = f.tabacco(args).status(2);
        assert!(failed.stderr.contains(&expected), "{args:?}: {failed:?}");
    }
    f.write("etc/restic.pw", " \n");
    let empty = f.tabacco(&["run"]).status(2);
    assert!(
        empty.stderr.contains(&format!(
            "{}:{line}: repository.params.password_file {} is empty",
            f.config().display(),
            pw.display()
        )),
        "{empty:?}"
    );
}

/// Issue 28, item 9: with two mistakes in a file only one was shown; a
/// source key's typo listed 19 keys with no suggestion; a tab read "found
/// character that cannot start any token"; `"0 25 * * *"` was refused in
/// the cron crate's six-field form with "Hours must be less than 23".
#[test]
fn configuration_errors_are_all_shown_in_tabaccos_words() {
    let f = Fixture::new();
    let text = format!(
        "- name: a\n  handler: file\n  parms: {{path: /x}}\n\
         - name: b\n  handler: file\n  params: {{path: /x}}\n  schedule: \"0 25 * * *\"\n  timeout: soon\n\
         - {}",
        file_source(&f, "ok").replace('\n', "\n  ").trim_end()
    );
    f.write("etc/sources/all.yml", &text);
    f.write("etc/sources/tab.yml", "name: t\n\thandler: file\n");
    let check = f.tabacco(&["check"]).status(2);
    let stderr = check.stderr.replace(&f.root.display().to_string(), "ROOT");
    assert_eq!(
        stderr,
        "tabacco: invalid configuration:\n\
         ROOT/etc/sources/all.yml:3: unknown field `parms` (did you mean `params`?)\n\
         ROOT/etc/sources/all.yml:7: invalid schedule \"0 25 * * *\": hour 25 is out of range 0-23 (minute hour day-of-month month day-of-week)\n\
         ROOT/etc/sources/all.yml:8: invalid duration \"soon\" (expected e.g. 90s, 15m, 1.5h, 1d, 1h30m, 500ms)\n\
         ROOT/etc/sources/tab.yml:2: a tab character (column 1): YAML indents with spaces only\n"
    );
    // The same at `run`, which backs nothing up then: exit 2.
    let run = f.tabacco(&["run"]).status(2);
    assert_eq!(run.stderr, check.stderr);
}

/// Issue 28, item 5: a dump that failed was reported as `restic backup
/// exited with status 1: {"message_type":"error",…} / Fatal: unable to save
/// snapshot: snapshot is empty (backup_command exited with status 2: …)`,
/// and `history --json` said `"failure": "repository"`.
#[test]
fn a_failed_dump_is_reported_cause_first() {
    let f = with_repository();
    // One anonymous atom: restic 0.14 refuses the empty stream with exit 1.
    f.write(
        "etc/sources/sql.yml",
        "name: sql\nhandler: pipe\nparams: {backup_command: \"echo 'mysqldump: Got error: 1045: Access denied' >&2; exit 2\"}\n",
    );
    let run = f.tabacco(&["run"]).status(1);
    let line = run.stderr.lines().next().unwrap_or_default();
    let (_, reason) = line
        .split_once(" failed: ")
        .unwrap_or_else(|| panic!("{run:?}"));
    assert!(
        reason.starts_with(
            "dataset sql: backup_command exited with status 2: mysqldump: Got error: 1045: Access denied"
        ),
        "{run:?}"
    );
    assert!(!run.stderr.contains("message_type"), "{run:?}");
    let history = f.tabacco(&["history", "--json"]).success();
    let attempts: Vec<serde_json::Value> = serde_json::from_str(&history.stdout).unwrap();
    assert_eq!(attempts[0]["failure"], "command", "{attempts:?}");
}

/// Runs `tabacco ARGS` with `f`'s configuration on a terminal (`script`
/// gives it one); what the terminal showed.
fn on_terminal(f: &Fixture, args: &str) -> String {
    let typescript = f.path("typescript");
    let command = format!(
        "{} --config {} {args}",
        env!("CARGO_BIN_EXE_tabacco"),
        f.config().display()
    );
    let out = std::process::Command::new("script")
        .args(["-qefc", &command])
        .arg(&typescript)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (bsdutils) runs a command on a terminal");
    assert!(out.status.success(), "{out:?}");
    std::fs::read_to_string(&typescript).unwrap()
}

/// Issue 28, item 10: `run` printed nothing on success, even on a terminal;
/// `-v` said `3250585600 bytes`; progress was debug lines of raw bytes.
#[test]
fn run_on_a_terminal_shows_progress_and_a_line_per_source() {
    let f = with_repository();
    f.write("etc/sources/www.yml", &file_source(&f, "www"));
    f.write(
        "etc/sources/slow.yml",
        "name: slow\nhandler: pipe\nparams: {backup_command: \"for i in 1 2 3 4; do head -c 1048576 /dev/zero; sleep 1; done\"}\n",
    );
    let shown = on_terminal(&f, "run");
    // restic's status of the stream, replaced in place, once it has run
    // two seconds: no percentage for a stream of unknown size.
    let progress = shown
        .split("\r\x1b[K")
        .find(|l| l.starts_with("slow: ") && l.contains("MiB/s"))
        .unwrap_or_else(|| panic!("no progress line in {shown:?}"));
    assert!(progress.contains(" MiB, "), "{progress:?}");
    let lines: Vec<&str> = shown
        .lines()
        .map(|l| l.rsplit("\x1b[K").next().unwrap().trim_end_matches('\r'))
        .filter(|l| l.starts_with("slow: ") || l.starts_with("www: "))
        .collect();
    assert_eq!(lines.len(), 2, "{shown:?}");
    assert!(
        lines[0].starts_with("slow: 1 file, 4.0 MiB, ") && lines[0].ends_with(" s"),
        "{lines:?}"
    );
    assert!(lines[1].starts_with("www: 1 file, 5 bytes, "), "{lines:?}");
    // Quiet, or not on a terminal: nothing.
    let quiet = on_terminal(&f, "-q run www");
    assert!(!quiet.contains("www: "), "{quiet:?}");
    let piped = f.tabacco(&["run", "www"]).success();
    assert_eq!((piped.stdout.as_str(), piped.stderr.as_str()), ("", ""));
    // -v in human units.
    let verbose = f.tabacco(&["-v", "run", "slow"]).success();
    assert!(
        verbose.stderr.contains(": 1 file, 4.0 MiB, "),
        "{verbose:?}"
    );
}
