//! Configuration: every bad input is one clear, located error with exit
//! status 2, and `check` prints what a backup would do.

use crate::common::Fixture;

/// Writes `sources/bad.yml` (and `handlers/h.yml` when given), runs `check`
/// and returns its stderr after asserting exit status 2.
fn check_error(source: &str, handler: Option<&str>) -> String {
    let f = Fixture::new();
    f.write_config("etc/sources/bad.yml", source);
    if let Some(h) = handler {
        f.write_config("etc/handlers/h.yml", h);
    }
    let run = f.tabacco(&["check"]).status(2);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run.stderr.replace(&f.root.display().to_string(), "ROOT")
}

#[test]
fn bad_sources_are_located_errors() {
    let cases: &[(&str, &str)] = &[
        ("name: a\nhandler: file\nparams: {path: /x}\ncolour: red\n", "ROOT/etc/sources/bad.yml:4: unknown field `colour`"),
        ("name: a\nhandler: [file\n", "ROOT/etc/sources/bad.yml:3: did not find expected ',' or ']', while parsing a flow sequence"),
        ("- name: a\n  handler: file\n  params: {path: /x}\n- name: a\n  handler: file\n  params: {path: /y}\n",
            "ROOT/etc/sources/bad.yml:4: duplicate source name \"a\" (first defined at ROOT/etc/sources/bad.yml:1)"),
        ("name: a\nhandler: mssql\n", "ROOT/etc/sources/bad.yml:2: unknown handler \"mssql\""),
        ("name: a\nhandler: file\n", "ROOT/etc/sources/bad.yml:1: source \"a\": a file source needs params.path"),
        ("name: a\nhandler: file\nparams: {path: /x}\nschedule: \"0 3 * * 8\"\n", "ROOT/etc/sources/bad.yml:4: invalid schedule \"0 3 * * 8\""),
        ("name: a\nhandler: file\nparams: {path: /x}\ntimeout: 2 hours\n", "ROOT/etc/sources/bad.yml:4: invalid duration \"2 hours\""),
        ("name: a\nhandler: file\nparams: {path: /x}\natoms: [{name: ../etc}]\n", "ROOT/etc/sources/bad.yml:4: atom invalid name \"a/../etc\""),
        // Atom names are any UTF-8 text but control characters (shell
        // syntax included: it is only ever substituted quoted).
        ("name: a\nhandler: file\nparams: {path: /x}\natoms: [{name: \"tab\\there\"}]\n", "ROOT/etc/sources/bad.yml:4: atom invalid name \"a/tab\\there\": character '\\t' is not allowed"),
        ("name: \"a b\"\nhandler: file\nparams: {path: /x}\n", "ROOT/etc/sources/bad.yml:1: source invalid name \"a b\": character ' ' is not allowed"),
        ("name: /a\nhandler: file\nparams: {path: /x}\n", "ROOT/etc/sources/bad.yml:1: source invalid name \"/a\": leading '/'"),
        ("name: a//b\nhandler: file\nparams: {path: /x}\n", "ROOT/etc/sources/bad.yml:1: source invalid name \"a//b\": empty segment"),
        ("name: a\nhandler: pipe\nparams: {backup_command: \"dump ${atom.nmae}\"}\n", "ROOT/etc/sources/bad.yml:2: source \"a\": backup_command: unknown or unavailable substitution ${atom.nmae}"),
        ("name: a\nhandler: pipe\n", "ROOT/etc/sources/bad.yml:2: source \"a\": the pipe handler needs params.backup_command"),
        ("name: a\nhandler: file\nparams: {path: x}\n", "params.path must be absolute"),
    ];
    for (source, expected) in cases {
        let stderr = check_error(source, None);
        assert!(
            stderr.contains(expected),
            "for {source:?}\nexpected {expected:?}\nin {stderr}"
        );
    }
}

#[test]
fn bad_handlers_and_agent_yml_are_located_errors() {
    let stderr = check_error(
        "name: a\nhandler: h\n",
        Some("name: h\nparams: {path: /x}\n"),
    );
    assert!(
        stderr.contains("ROOT/etc/sources/bad.yml:2: handler \"h\" has no type"),
        "{stderr}"
    );
    let stderr = check_error("name: a\nhandler: h\n", Some("name: h\ntype: tar\n"));
    assert!(stderr.contains("unknown handler type \"tar\""), "{stderr}");

    let f = Fixture::with_agent("queue_config: {concurrency: 0}\n");
    let stderr = f.tabacco(&["check"]).status(2).stderr;
    let line = 9 + crate::common::restic_binary_yaml().lines().count();
    assert!(
        stderr.contains(&format!(
            "agent.yml:{line}: queue_config.concurrency must be at least 1"
        )),
        "{stderr}"
    );
    let f = Fixture::with_agent("metadb: {url: http://x, request_max_timeout: soon}\n");
    assert!(f
        .tabacco(&["check"])
        .status(2)
        .stderr
        .contains("invalid duration \"soon\""));
    let f = Fixture::new();
    f.write(
        "etc/agent.yml",
        "repository:\n  params: {uri: relative/repo, password: x}\n",
    );
    assert!(f
        .tabacco(&["check"])
        .status(2)
        .stderr
        .contains("agent.yml:2: a local repository uri must be absolute"));
    let f = Fixture::new();
    f.write("etc/agent.yml", "repository:\n  params: {uri: /r}\n");
    assert!(f
        .tabacco(&["check"])
        .status(2)
        .stderr
        .contains("needs password or password_file"));
    let missing = f
        .tabacco(&["--config", "/nonexistent/agent.yml", "run"])
        .status(2);
    assert!(
        missing
            .stderr
            .contains("no configuration at /nonexistent/agent.yml: write one"),
        "{}",
        missing.stderr
    );
}

#[test]
fn check_prints_resolved_sources_and_atoms() {
    let f = Fixture::new();
    f.write_config(
        "etc/handlers/db.yml",
        "- name: db-pipe\n  params:\n    backup_command: \"dump ${atom.name}\"\n    restore_command: load\n",
    );
    f.write_config(
        "etc/sources/s.yml",
        "- name: users\n  handler: file\n  schedule: \"0 3 * * 1\"\n  timeout: 2h\n  params: {path: ROOT/data/users}\n  atoms: [{name: one}, {name: two, path: /abs/two}]\n\
         - name: sql\n  handler: db-pipe\n  atoms_command: \"printf 'db1\\\\ndb2\\\\n'\"\n",
    );
    let out = f
        .tabacco(&["check"])
        .success()
        .stdout
        .replace(&f.root.display().to_string(), "ROOT");
    let expected = "\
host        test-host
repository  ROOT/repo
            not created yet: the first backup creates it (init: auto)
RESTIC
metadb      embedded (ROOT/work/metadb.sqlite)

source users
  handler   file ROOT/data/users
  schedule  0 3 * * 1
  timeout   2h
  dataset   users
    atom    users/one  ROOT/data/users/one
    atom    users/two  /abs/two

source sql
  handler   db-pipe (pipe: dump ${atom.name})
  schedule  @random_every 1d
  dataset   sql/db1
    atom    sql/db1
  dataset   sql/db2
    atom    sql/db2
";
    let expected = expected.replace("RESTIC", &crate::common::restic_check_line());
    assert_eq!(out, expected);
}

#[test]
fn check_fails_when_atoms_command_fails() {
    let f = Fixture::new();
    f.write_config("etc/sources/s.yml", "name: sql\nhandler: pipe\nparams: {backup_command: x}\natoms_command: \"echo oops >&2; exit 4\"\n");
    let run = f.tabacco(&["check"]).status(2);
    assert!(
        run.stderr
            .contains("source sql: atoms_command exited with status 4: oops"),
        "{}",
        run.stderr
    );
}
