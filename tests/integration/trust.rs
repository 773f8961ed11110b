//! Hosts of one fleet that do not trust each other (issue 26): what one
//! host can do to another's records through a shared metadb and a shared
//! repository, and what it cannot; and what a host, a child process or a
//! record can put in front of an operator.

use crate::common::{Cmd, Fixture};
use crate::metadb::{fleet_config, http, Server};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// An agent.yml for `host` (token `HOST-secret`, written by
/// [`fleet_config`]) with its own work_dir, the fixture's repository and
/// the metadb at `url`; `sources` is written to its `sources/sql.yml`.
fn host_config(f: &Fixture, host: &str, url: &str, sources: &str) -> PathBuf {
    let repository = f.repository_yaml().replace(
        &format!("work_dir: {}", f.path("work").display()),
        &format!("work_dir: {}", f.path(&format!("work-{host}")).display()),
    );
    f.write_config(&format!("etc-{host}/sources/sql.yml"), sources);
    f.write(
        &format!("etc-{host}/agent.yml"),
        &format!(
            "hostname: {host}\n{repository}metadb:\n  url: {url}\n  token_file: {}\n",
            f.path(&format!("etc/{host}.token")).display()
        ),
    )
}

fn tabacco(config: &Path, args: &[&str]) -> Cmd {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tabacco"));
    cmd.arg("--config").arg(config).args(args);
    Cmd(cmd)
}

/// A dataset of `host` in backup `backup` (dated `time`), posted with
/// `host`'s own token: (status, body).
fn record(addr: SocketAddr, host: &str, backup: &str, dataset: &str, time: &str) -> (u16, String) {
    let body = serde_json::json!({
        "backup": {"id": backup, "timestamp": time, "host": host},
        "dataset": {"id": dataset, "source": "sql", "snapshot_id": "0123abcd",
                    "atoms": [{"name": "sql/db1", "path": "/etc/cron.d"}]},
    });
    let token = format!("{host}-secret");
    http(
        addr,
        "POST",
        "/api/add_dataset",
        Some(&token),
        body.to_string().as_bytes(),
    )
}

/// `(host, backup id)` of every backup `query --json *` shows to `config`.
fn backups(config: &Path) -> Vec<(String, String)> {
    let out = tabacco(config, &["query", "--json", "*"]).success();
    let found: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    found
        .iter()
        .map(|b| {
            let field = |k: &str| b[k].as_str().unwrap().to_string();
            (field("host"), field("id"))
        })
        .collect()
}

const PIPE: &str = "name: sql\nhandler: pipe\nschedule: \"0 0 1 1 *\"\n\
    params: {backup_command: \"echo data\", restore_command: \"cat >/dev/null\"}\n";

// Issue 26.1: hostb read the backup id of hosta's running job (from
// /api/active_jobs) and recorded a dataset under it first; when hosta's
// backup finished, its record was refused 409 ("backup ... is recorded for
// host hostb") and the snapshot stayed invisible. Here hostb takes the id
// while hosta's pre_backup_command waits.
#[test]
fn another_host_cannot_take_the_backup_id_of_a_running_job() {
    let f = Fixture::new();
    let server = Server::start(&fleet_config(&f, "", &["hosta", "hostb"]), "127.0.0.1:0");
    let hook = "pre_backup_command: \"echo $BACKUP_ID > ROOT/backup_id; \
                while [ ! -e ROOT/go ]; do sleep 0.05; done\"\n";
    let hosta = host_config(&f, "hosta", &server.url(), &format!("{PIPE}{hook}"));
    let run = tabacco(&hosta, &["run"]).0.spawn().unwrap();
    let id = crate::common::eventually(Duration::from_secs(30), || {
        std::fs::read_to_string(f.path("backup_id"))
            .ok()
            .filter(|id| id.ends_with('\n'))
    })
    .expect("hosta's job started");
    let id = id.trim();
    let (status, text) = record(server.addr, "hostb", id, "x1", "2024-05-01T12:00:00Z");
    assert_eq!(status, 200, "hostb records under its own host: {text}");
    f.write("go", "");
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("not recorded"), "{stderr}");
    let mut found = backups(&hosta);
    found.sort();
    assert_eq!(
        found,
        [
            ("hosta".to_string(), id.to_string()),
            ("hostb".to_string(), id.to_string())
        ]
    );
}

// Issue 26.1: the same with the dataset id, which the tags of a shared
// repository show before the metadb has the record: hosta's record was
// spooled (the metadb was away), hostb recorded its ids first, and the
// spooled record was then refused 409 and moved to spool/rejected/, for
// good; `reindex` was refused 409 too.
#[test]
fn another_host_cannot_take_the_ids_of_a_spooled_record() {
    let f = Fixture::new();
    let server = Server::start(&fleet_config(&f, "", &["hosta", "hostb"]), "127.0.0.1:0");
    let away = "http://127.0.0.1:9";
    // Creating a repository takes the metadb's lease: this one exists.
    f.restic(&["init"]).success();
    let hosta = host_config(&f, "hosta", away, PIPE);
    let run = tabacco(&hosta, &["run"]).success();
    assert!(run.stderr.contains("spooled"), "{}", run.stderr);
    let tags = f.snapshot_tags().remove(0);
    let tag = |key: &str| {
        let value = tags.iter().find_map(|t| t.strip_prefix(key)).unwrap();
        value.to_string()
    };
    let (backup, dataset) = (tag("tabacco:backup="), tag("tabacco:dataset="));
    let (status, text) = record(
        server.addr,
        "hostb",
        &backup,
        &dataset,
        "2024-05-01T12:00:00Z",
    );
    assert_eq!(status, 200, "{text}");

    let hosta = host_config(&f, "hosta", &server.url(), PIPE);
    let mut found = backups(&hosta);
    found.sort();
    assert_eq!(
        found,
        [
            ("hosta".to_string(), backup.clone()),
            ("hostb".to_string(), backup)
        ]
    );
    let spool = f.path("work-hosta/spool");
    assert!(!spool.join("rejected").exists(), "a record was set aside");
    let reindex = tabacco(&hosta, &["reindex"]).success();
    assert!(reindex.stderr.is_empty(), "{}", reindex.stderr);
}

// Issue 26.2 (the metadb's part): hostb recorded `sql/db1` dated
// 9999-12-31T23:59:59Z, accepted, and from then on every restore of it
// that named no host picked hostb's version. A backup dated more than an
// hour ahead is refused, by the server and by `reindex`.
#[test]
fn a_record_dated_far_ahead_is_refused() {
    let f = Fixture::new();
    let server = Server::start(&fleet_config(&f, "", &["hostb"]), "127.0.0.1:0");
    let ahead = |secs: i64| {
        (chrono::Utc::now() + chrono::Duration::seconds(secs))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    for (when, expected) in [
        ("9999-12-31T23:59:59Z".to_string(), 400),
        (ahead(2 * 3600), 400),
        (ahead(600), 200),
    ] {
        let (status, text) = record(server.addr, "hostb", "b1", "d1", &when);
        assert_eq!(status, expected, "{when}: {text}");
        if status == 400 {
            assert!(text.contains("more than an hour in the future"), "{text}");
        }
    }

    // A snapshot made by hand with tabacco's tags, dated 2099.
    f.write("data/file", "x");
    let data = f.path("data/file");
    f.restic(&["init"]).success();
    f.restic(&[
        "backup",
        "--host",
        "test-host",
        "--time",
        "2099-01-01 00:00:00",
        "--tag",
        "tabacco,tabacco:backup=b9,tabacco:source=files,tabacco:dataset=d9,tabacco:atom=files",
        data.to_str().unwrap(),
    ])
    .success();
    let reindex = f.tabacco(&["reindex"]).status(1);
    assert!(
        reindex
            .stderr
            .contains("more than an hour in the future: not recorded"),
        "{}",
        reindex.stderr
    );
    assert!(f.query(&["*"]).is_empty());
}

/// What a hostile host, command or record writes to be shown: an OSC title
/// sequence, a clear screen, a right-to-left override, and a forged line.
const HOSTILE: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{202e}evil\ntabacco: restore succeeded";

/// Asserts that `shown` (what reached a terminal) carries `HOSTILE` only
/// as visible escapes.
#[track_caller]
fn shows_hostile_escaped(shown: &str) {
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{202e}') && !shown.contains('\u{7}'),
        "{shown:?}"
    );
    assert!(
        !shown
            .lines()
            .any(|l| l.starts_with("tabacco: restore succeeded")),
        "a forged line: {shown}"
    );
    assert!(
        shown.contains("\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{202e}evil"),
        "{shown}"
    );
}

// Issue 26.10: `restore --remote hostb --wait` printed hostb's status
// message raw: a title sequence, a cleared screen, a reversed line and a
// forged `tabacco: restore succeeded` line reached the operator's terminal.
#[test]
fn a_remote_hosts_status_message_is_shown_escaped() {
    let f = Fixture::new();
    let server = Server::start(&fleet_config(&f, "", &["hostb"]), "127.0.0.1:0");
    let (status, text) = record(server.addr, "hostb", "b1", "d1", "2024-05-01T12:00:00Z");
    assert_eq!(status, 200, "{text}");
    f.write("etc/admin.token", "secret\n");
    let admin = host_config(&f, "admin", &server.url(), PIPE);
    let target = f.path("restored");
    let args = [
        "restore",
        "--host",
        "hostb",
        "--target",
        target.to_str().unwrap(),
        "--remote",
        "hostb",
        "--wait",
        "sql/db1",
    ];
    let mut cmd = tabacco(&admin, &args).0;
    let waiting = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // hostb's agent, as hostb writes it.
    let token = Some("hostb-secret");
    let request = crate::common::eventually(Duration::from_secs(30), || {
        let (status, text) = http(
            server.addr,
            "GET",
            "/api/restore_requests/next?host=hostb",
            token,
            b"",
        );
        (status == 200).then_some(text)
    })
    .expect("a restore request for hostb");
    let request: serde_json::Value = serde_json::from_str(&request).unwrap();
    let id = request["id"].as_str().unwrap();
    let report = serde_json::json!({"state": "failed", "message": HOSTILE});
    let (status, text) = http(
        server.addr,
        "POST",
        &format!("/api/restore_requests/{id}/status"),
        token,
        report.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{text}");
    let out = waiting.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let shown = String::from_utf8_lossy(&out.stderr);
    shows_hostile_escaped(&shown);
    assert!(
        shown.contains("evil\\ntabacco: restore succeeded"),
        "{shown}"
    );
}

// Issue 26.10: a command's stderr reached `run`'s error lines (and the
// agent's log) with its escape sequences, and `check` and dry-run logs
// showed what `atoms_command` printed raw; a literal `\u{202e}` and a real
// U+202E looked the same.
#[test]
fn what_commands_print_is_shown_escaped() {
    let f = Fixture::new();
    f.write("hostile", HOSTILE);
    f.write_config(
        "etc/sources/sql.yml",
        "name: sql\nhandler: pipe\nschedule: \"0 0 1 1 *\"\n\
         params: {backup_command: \"cat ROOT/hostile >&2; exit 1\", restore_command: \"cat\"}\n",
    );
    let run = f.tabacco(&["-v", "run"]).status(1);
    shows_hostile_escaped(&run.stderr);

    f.write("names", "users/a\u{202e}b\nusers/a\\u{202e}b\n");
    f.write_config(
        "etc/sources/sql.yml",
        "name: users\nhandler: pipe\nschedule: \"0 0 1 1 *\"\n\
         params: {backup_command: \"echo x\", restore_command: \"cat\"}\n\
         datasets:\n  - atoms_command: \"sed 's|^users/||' ROOT/names\"\n",
    );
    let check = f.tabacco(&["check"]).success();
    let dry = f.tabacco(&["-v", "run", "--dry-run"]).success();
    for shown in [&check.stdout, &dry.stderr] {
        assert!(!shown.contains('\u{202e}'), "{shown}");
        assert!(shown.contains("users/a\\u{202e}b"), "{shown}");
        assert!(shown.contains("users/a\\\\u{202e}b"), "{shown}");
    }
}
