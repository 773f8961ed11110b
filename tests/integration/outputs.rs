//! Whole outputs where they are deterministic (issue 18): `check`, `query
//! --table` and `help`, compared line for line with what is expected, so
//! that any change to what a user reads shows as a diff. Only the parts that
//! vary between runs are replaced before comparing: the fixture's root
//! (`ROOT`) and the restic line of `check` (`RESTIC`).

use crate::common::{restic_check_line, Cmd, Fixture};
use crate::metadb::{agent_through, http, metadb_config, Server};
use serde_json::json;

/// Asserts that `actual` is `expected`, whole; on failure shows a line diff
/// (`-` expected, `+` actual; a line ending in white space ends in `⏎`).
#[track_caller]
fn assert_whole(actual: &str, expected: &str) {
    if actual != expected {
        panic!(
            "output differs (- expected, + actual):\n{}",
            diff(expected, actual)
        );
    }
}

/// A line diff of `a` into `b` (longest common subsequence).
fn diff(a: &str, b: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split('\n').collect(), b.split('\n').collect());
    // common[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut common = vec![vec![0; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            common[i][j] = if a[i] == b[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let shown = |mark: char, line: &str| {
        let end = if line.ends_with(char::is_whitespace) {
            "⏎"
        } else {
            ""
        };
        format!("{mark} {line}{end}\n")
    };
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&shown(' ', a[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || common[i + 1][j] >= common[i][j + 1]) {
            out.push_str(&shown('-', a[i]));
            i += 1;
        } else {
            out.push_str(&shown('+', b[j]));
            j += 1;
        }
    }
    out
}

/// The comparison itself can fail, and says where.
#[test]
fn a_changed_character_fails_the_comparison() {
    let expected = "host        test-host\nrepository  ROOT/repo\n";
    let changed = "host        test-host\nrepository  ROOT/rep0\n";
    let failed = std::panic::catch_unwind(|| assert_whole(changed, expected));
    assert!(failed.is_err());
    assert_eq!(
        diff(expected, changed),
        "  host        test-host\n- repository  ROOT/repo\n+ repository  ROOT/rep0\n  \n"
    );
    assert_eq!(diff("a \nb", "a\nb"), "- a ⏎\n+ a\n  b\n");
}

/// `text` with the fixture's root written `ROOT` and the restic line of
/// `check` (which names this pass's restic and its version) `RESTIC`.
fn placeholders(f: &Fixture, text: &str) -> String {
    text.replace(&restic_check_line(), "RESTIC")
        .replace(&f.root.display().to_string(), "ROOT")
}

/// Every part of a configuration `check` shows: agent.yml's retention,
/// schedules, metadb and notification targets (credentials masked), then
/// each source with its handler (a template's name and what it resolved
/// to), schedule, timeout, retention, min_bytes, notify and datasets.
#[test]
fn check_shows_a_whole_configuration() {
    let f = Fixture::with_agent(
        "retention: {keep_daily: 7, keep_weekly: 4, keep_within: 36h}
prune_schedule: \"0 4 * * 0\"
verify_schedule: \"@random_every 7d\"
metadb:
  url: http://tabacco:s3cret@127.0.0.1:9/base
notify:
  - kind: healthchecks
    url: https://user:pa55@hc.example.org/ping/${host}-${source}
  - kind: webhook
    url: http://127.0.0.1:9/hook
    token_file: ROOT/etc/hook.token
    on: [failure, recovery, success]
  - kind: ntfy
    url: https://ntfy.example.org/backups
    timeout: 5s
",
    );
    let agent = std::fs::read_to_string(f.config()).unwrap();
    f.write_config("etc/agent.yml", &agent);
    f.write("etc/hook.token", "hook-token\n");
    f.write("data/users/alice/inbox", "alice's mail\n");
    f.write("data/users/bob/inbox", "bob's mail\n");
    f.write(
        "etc/handlers/db.yml",
        "- name: mysql\n  params:\n    backup_command: \"mysqldump --databases ${atom.name}\"\n    restore_command: mysql\n",
    );
    f.write_config(
        "etc/sources/all.yml",
        r#"- name: users
  handler: file
  schedule: "0 3 * * *"
  params: {path: ROOT/data/users, exclude: ["*.tmp"], one_file_system: true}
  atoms_command: "ls ROOT/data/users"
  retention: {keep_last: 3}
  timeout: 4h
- name: sql
  handler: mysql
  atoms: [{name: db1}, {name: "Maria Rossi"}]
  min_bytes: 1024
  notify: []
- name: logs
  handler: pipe
  params: {backup_command: "cat /var/log/${atom.name}"}
  datasets:
    - atoms: [{name: syslog}, {name: auth.log}]
    - atoms_command: "echo kern.log"
  notify:
    - kind: webhook
      url: https://hook:k3y@hooks.example.org/x
- name: etc
  handler: file
  params: {path: ROOT/etc}
"#,
    );
    let check = f.tabacco(&["check"]).success();
    assert_eq!(check.stderr, "");
    assert_whole(
        &placeholders(&f, &check.stdout),
        "host        test-host
repository  ROOT/repo
            not created yet: the first backup creates it (init: auto)
RESTIC
metadb      http://tabacco:***@127.0.0.1:9/base
retention   {keep_daily: 7, keep_weekly: 4, keep_within: 36h}
prune       0 4 * * 0
verify      @random_every 7d
notify      healthchecks https://user:***@hc.example.org/*** on start,success,failure,recovery
notify      webhook http://127.0.0.1:9/*** on failure,recovery,success (bearer token)
notify      ntfy https://ntfy.example.org/*** on failure,recovery

source users
  handler   file ROOT/data/users, excluding: --exclude '*.tmp' --one-file-system
  schedule  0 3 * * *
  timeout   4h
  retention {keep_last: 3}
  dataset   users
    atom    users/alice  ROOT/data/users/alice
    atom    users/bob  ROOT/data/users/bob

source sql
  handler   mysql (pipe: mysqldump --databases ${atom.name})
  schedule  @random_every 1d
  min_bytes 1024
  notify    nothing (notify: [] replaces agent.yml's)
  dataset   sql/db1
    atom    sql/db1
  dataset   sql/Maria Rossi
    atom    sql/Maria Rossi

source logs
  handler   pipe: cat /var/log/${atom.name}
  schedule  @random_every 1d
  notify    webhook https://hook:***@hooks.example.org/*** on failure,recovery
  dataset   logs/syslog
    atom    logs/syslog
  dataset   logs/auth.log
    atom    logs/auth.log
  dataset   logs/kern.log
    atom    logs/kern.log

source etc
  handler   file ROOT/etc
  schedule  @random_every 1d
  dataset   etc
    atom    etc  ROOT/etc
",
    );
}

/// A configuration `check` refuses: what it could resolve on stdout, every
/// error on stderr, each located, exit 2.
#[test]
fn check_shows_every_error() {
    let f = Fixture::new();
    let agent = std::fs::read_to_string(f.config()).unwrap();
    f.write(
        "etc/agent.yml",
        &agent.replace(
            "password: test-password",
            &format!("password_file: {}", f.path("etc/pw").display()),
        ),
    );
    f.write("etc/pw", "\n");
    f.write_config(
        "etc/sources/all.yml",
        r#"- name: users
  handler: file
  params: {path: ROOT/data/users}
  atoms_command: "echo alice; exit 3"
- name: sql
  handler: pipe
  params: {backup_command: "dump ${atom.name}"}
  datasets_command: "echo not yaml: ["
- name: ok
  handler: pipe
  params: {backup_command: "dump ${atom.name}"}
  atoms: [{name: db1}]
"#,
    );
    let check = f.tabacco(&["check"]).status(2);
    assert_whole(
        &placeholders(&f, &check.stdout),
        "host        test-host
repository  ROOT/repo
RESTIC
metadb      embedded (ROOT/work/metadb.sqlite)

source users
  handler   file ROOT/data/users
  schedule  @random_every 1d

source sql
  handler   pipe: dump ${atom.name}
  schedule  @random_every 1d

source ok
  handler   pipe: dump ${atom.name}
  schedule  @random_every 1d
  dataset   ok/db1
    atom    ok/db1
",
    );
    assert_whole(
        &placeholders(&f, &check.stderr),
        "tabacco: ROOT/etc/agent.yml:5: repository.params.password_file ROOT/etc/pw is empty
ROOT/etc/sources/all.yml:1: source users: atoms_command exited with status 3
ROOT/etc/sources/all.yml:5: source sql: datasets_command printed no dataset list: invalid type: map, expected a sequence
",
    );
}

/// One dataset for the metadb's `add_dataset`: backup id, time and host,
/// dataset id and snapshot id, and its atoms' names and paths.
fn record(
    [backup, time, host, dataset, snapshot]: [&str; 5],
    atoms: &[(&str, Option<&str>)],
) -> String {
    let atoms: Vec<_> = atoms
        .iter()
        .map(|(name, path)| json!({"name": name, "path": path}))
        .collect();
    let source = atoms[0]["name"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    json!({
        "backup": {"id": backup, "timestamp": time, "host": host},
        "dataset": {"id": dataset, "source": source, "atoms": atoms, "snapshot_id": snapshot},
    })
    .to_string()
}

/// A loopback metadb holding fixed records, and an agent.yml that queries
/// it. Besides ordinary records: names, hosts and paths longer than a
/// column may be shown (80 characters), wide and right-to-left text, and
/// one path with control characters, written behind the server's back as a
/// server of an older release would have taken it.
fn fleet(f: &Fixture) -> Server {
    let server = Server::start(&metadb_config(f, ""), "127.0.0.1:0");
    agent_through(f, &server);
    let long_host = format!("web-{}.example.org", "x".repeat(80));
    let long_name = format!("users/{}", "long".repeat(25));
    let long_path = format!("/home/{}", "long".repeat(25));
    let records = [
        record(
            ["b1", "2024-05-01T02:00:00Z", "web3", "d1", "aaaa1111"],
            &[
                ("users/alice", Some("/home/alice")),
                ("users/bob", Some("/home/bob")),
            ],
        ),
        record(
            ["b1", "2024-05-01T02:00:00Z", "web3", "d2", "bbbb2222"],
            &[("sql/db1", None)],
        ),
        record(
            ["b2", "2024-05-02T02:00:00Z", "web3", "d3", "cccc3333"],
            &[
                ("users/alice", Some("/home/alice")),
                (&long_name, Some(&long_path)),
            ],
        ),
        record(
            ["b3", "2024-05-02T03:30:00Z", &long_host, "d4", "dddd4444"],
            &[
                ("users/ユーザー", Some("/home/ユーザー")),
                ("users/\u{202e}evil", Some("/home/\u{202e}evil")),
            ],
        ),
        record(
            ["b4", "2024-04-30T23:59:59Z", "db7", "d5", "eeee5555"],
            &[("sql/Maria Rossi", None), ("sql/$(reboot); `id`", None)],
        ),
    ];
    for body in records {
        let (status, text) = http(
            server.addr,
            "POST",
            "/api/add_dataset",
            None,
            body.as_bytes(),
        );
        assert_eq!(status, 200, "{text}");
    }
    let db = rusqlite::Connection::open(f.path("metadb/db.sqlite")).unwrap();
    db.execute(
        "INSERT INTO atoms (host, dataset_id, name, path, timestamp)
         VALUES ('db7', 'd5', 'sql/forged', ?1, 0)",
        ["/x\u{1b}[2J\nforged row\t"],
    )
    .unwrap();
    server
}

/// The whole table: newest backup first, one row per atom, columns as wide
/// as their widest cell, cells cut at 80 characters (a path, last, is not),
/// control characters escaped.
#[test]
fn query_table_whole() {
    let f = Fixture::new();
    let _server = fleet(&f);
    let query = f
        .tabacco(&["query", "--table", "--versions", "2", "*"])
        .success();
    assert_eq!(query.stderr, "");
    assert_whole(&query.stdout, include_str!("expected/query-table.txt"));
}

/// Several patterns, a host, and a pattern that matches nothing.
#[test]
fn query_table_of_several_patterns_and_of_none() {
    let f = Fixture::new();
    let _server = fleet(&f);
    let query = f
        .tabacco(&["query", "--table", "sql/*", "users/alice", "users/bob"])
        .success();
    assert_whole(
        &query.stdout,
        "TIME                  HOST  ATOM                 BACKUP  SNAPSHOT  REPOSITORY  PATH
2024-05-02T02:00:00Z  web3  users/alice          b2      cccc3333  -           /home/alice
2024-05-01T02:00:00Z  web3  sql/db1              b1      bbbb2222  -
2024-05-01T02:00:00Z  web3  users/bob            b1      aaaa1111  -           /home/bob
2024-04-30T23:59:59Z  db7   sql/Maria Rossi      b4      eeee5555  -
2024-04-30T23:59:59Z  db7   sql/$(reboot); `id`  b4      eeee5555  -
2024-04-30T23:59:59Z  db7   sql/forged           b4      eeee5555  -           /x\\u{1b}[2J\\nforged row\\t
",
    );
    let none = f.tabacco(&["query", "--table", "nothing/*"]).success();
    assert_whole(&none.stdout, "no matching backups\n");
}

/// `tabacco ARGS`, without a configuration, to run.
fn bare(args: &[&str]) -> Cmd {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tabacco"));
    cmd.args(args);
    Cmd(cmd)
}

/// `tabacco help`, then `tabacco help COMMAND` for each command it lists,
/// each under a `==> ARGS <==` line: the
/// whole text compared with tests/integration/expected/help.txt. A command
/// added to `help` shows as a diff too. `--help` and `COMMAND --help` print
/// the same texts.
#[test]
fn help_whole() {
    let top = bare(&["help"]).success().stdout;
    assert_eq!(bare(&["--help"]).success().stdout, top);
    let listed = top
        .split("\nCommands:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap();
    let commands: Vec<&str> = listed
        .lines()
        .map(|line| line.split_whitespace().next().unwrap())
        .collect();
    let mut all = format!("==> help <==\n{top}");
    for command in commands {
        let text = bare(&["help", command]).success().stdout;
        assert_eq!(
            bare(&[command, "--help"]).success().stdout,
            text,
            "{command} --help"
        );
        all.push_str(&format!("==> help {command} <==\n{text}"));
    }
    let expected = include_str!("expected/help.txt");
    assert_whole(&all, expected);
}

/// What a mistyped command line reads: one line saying what is wrong, and
/// where to look, exit 2.
#[test]
fn usage_errors_whole() {
    for (args, expected) in [
        (
            &["help", "nosuch"][..],
            "tabacco: no help for unknown command \"nosuch\": 'tabacco --help' lists the commands\n",
        ),
        (
            &["nosuch"],
            "tabacco: unknown command \"nosuch\"\nTry 'tabacco --help'.\n",
        ),
        (
            &["query"],
            "tabacco: query needs at least one PATTERN (e.g. '*')\nTry 'tabacco help query'.\n",
        ),
    ] {
        let run = bare(args).status(2);
        assert_eq!(run.stdout, "", "{args:?}");
        assert_whole(&run.stderr, expected);
    }
}

/// Several patterns print what they all matched joined, newest first: the
/// last pattern's backup comes first, and a backup two patterns matched is
/// one object holding what each matched. Which is why nothing is printed
/// before every pattern's answer is read (tabacco(1)).
#[test]
fn query_json_of_several_patterns_is_joined() {
    let f = Fixture::new();
    let _server = fleet(&f);
    let query = f
        .tabacco(&["query", "sql/db1", "users/bob", "users/alice"])
        .success();
    assert_whole(
        &query.stdout,
        r#"[
  {
    "id": "b2",
    "timestamp": "2024-05-02T02:00:00Z",
    "host": "web3",
    "datasets": [
      {
        "id": "d3",
        "source": "users",
        "atoms": [
          {
            "name": "users/alice",
            "path": "/home/alice"
          }
        ],
        "snapshot_id": "cccc3333",
        "total_files": 0,
        "total_bytes": 0,
        "bytes_added": 0,
        "duration": 0,
        "repositories": [
          "primary"
        ]
      }
    ]
  },
  {
    "id": "b1",
    "timestamp": "2024-05-01T02:00:00Z",
    "host": "web3",
    "datasets": [
      {
        "id": "d2",
        "source": "sql",
        "atoms": [
          {
            "name": "sql/db1"
          }
        ],
        "snapshot_id": "bbbb2222",
        "total_files": 0,
        "total_bytes": 0,
        "bytes_added": 0,
        "duration": 0,
        "repositories": [
          "primary"
        ]
      },
      {
        "id": "d1",
        "source": "users",
        "atoms": [
          {
            "name": "users/bob",
            "path": "/home/bob"
          }
        ],
        "snapshot_id": "aaaa1111",
        "total_files": 0,
        "total_bytes": 0,
        "bytes_added": 0,
        "duration": 0,
        "repositories": [
          "primary"
        ]
      }
    ]
  }
]
"#,
    );
}
