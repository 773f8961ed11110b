//! Fleet health: attempts recorded by `run` and the agent, plans, and the
//! status and history the metadb derives from them, read with another
//! host's token, from a central metadb and from the embedded one.

use crate::agent::Agent;
use crate::common::{eventually, Fixture};
use crate::metadb::{dechunk, fleet_config, metadb_config, Server};
use crate::scale::exchange;
use std::path::PathBuf;
use std::time::Duration;

/// An agent.yml for `host` with its own work_dir and the metadb at `url`
/// with the token `HOST-secret` (as `fleet_config` writes it).
pub(crate) fn host_config(f: &Fixture, host: &str, url: &str) -> PathBuf {
    let work = f.path(&format!("work-{host}"));
    let repository = f.repository_yaml().replace(
        &format!("work_dir: {}", f.path("work").display()),
        &format!("work_dir: {}", work.display()),
    );
    f.write(
        &format!("etc-{host}/agent.yml"),
        &format!(
            "hostname: {host}\n{repository}metadb:\n  url: {url}\n  token_file: {}\n",
            f.path(&format!("etc/{host}.token")).display()
        ),
    )
}

fn tabacco(config: &PathBuf, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tabacco"));
    cmd.arg("--config").arg(config).args(args);
    cmd
}

/// Runs `args` with `config`; its exit code and stdout as JSON.
fn json(config: &PathBuf, args: &[&str]) -> (i32, Vec<serde_json::Value>) {
    let out = tabacco(config, args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: {e}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), value)
}

const FAILING: &str = "name: sql\nhandler: pipe\nschedule: \"@daily\"\nparams:\n  backup_command: \"echo disk on fire >&2; exit 3\"\natoms: [{name: db1}]\n";

#[test]
fn a_cron_hosts_failed_run_shows_in_another_hosts_status_and_history() {
    let f = Fixture::new();
    let server = Server::start(&fleet_config(&f, "", &["web1", "web2"]), "127.0.0.1:0");
    let web1 = host_config(&f, "web1", &server.url());
    let web2 = host_config(&f, "web2", &server.url());
    f.write("etc-web1/sources/sql.yml", FAILING);
    let run = tabacco(&web1, &["run"]).output().unwrap();
    assert_eq!(run.status.code(), Some(1));

    let (code, rows) = json(&web2, &["status", "--host", "web1"]);
    assert_eq!(code, 1, "a failed source is a problem: {rows:?}");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(
        (&row["host"], &row["source"], &row["state"]),
        (&"web1".into(), &"sql".into(), &"failed".into())
    );
    let message = row["message"].as_str().unwrap();
    assert!(message.contains("backup_command"), "{message}");
    assert!(row["last_success"].is_null() && row["last_attempt"].is_string());
    assert!(
        row["next_due"].is_string(),
        "the configured schedule: {row}"
    );

    let (code, attempts) = json(&web2, &["history", "--failed"]);
    assert_eq!(code, 0);
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    let a = &attempts[0];
    assert_eq!(
        (&a["host"], &a["kind"], &a["state"]),
        (&"web1".into(), &"backup".into(), &"failed".into())
    );
    assert_eq!(a["failure"], "command");
    assert!(
        a["detail"].as_str().unwrap().contains("disk on fire"),
        "{a}"
    );

    // The same on /metrics, open as it is, and on the console's page.
    let (status, metrics) = server.request("GET", "/metrics", None, "");
    assert_eq!(status, 200);
    for line in [
        "tabacco_metadb_source_state{host=\"web1\",source=\"sql\",state=\"failed\"} 1",
        "tabacco_metadb_source_state{host=\"web1\",source=\"sql\",state=\"ok\"} 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line} in\n{metrics}"
        );
    }
    assert!(metrics.contains(
        "tabacco_metadb_source_last_attempt_timestamp_seconds{host=\"web1\",source=\"sql\"} "
    ));
    assert!(metrics.contains("tabacco_metadb_host_last_seen_timestamp_seconds{host=\"web1\"} "));
    crate::common::promtool_accepts(&metrics);
    let (status, page) = server.request("GET", "/", Some("secret"), "");
    assert_eq!(status, 200);
    assert!(
        page.contains("<a href=\"/source?host=web1&amp;source=sql\">sql</a></td><td><span class=\"failed\">failed</span>"),
        "{page}"
    );

    // A host writes only its own attempts; nonsense is refused.
    let forged =
        serde_json::json!({"host": "web1", "source": "sql", "start": "2026-01-01T00:00:00Z",
        "end": "2026-01-01T00:00:01Z", "state": "ok"})
        .to_string();
    let (status, _) = server.request("POST", "/api/attempts", Some("web2-secret"), &forged);
    assert_eq!(status, 403);
    let (status, _) = server.request(
        "POST",
        "/api/plans",
        Some("web2-secret"),
        r#"{"host":"web1","sources":[]}"#,
    );
    assert_eq!(status, 403);
    let bogus = forged.replace("\"ok\"", "\"fine\"");
    let (status, body) = server.request("POST", "/api/attempts", Some("web1-secret"), &bogus);
    assert_eq!(status, 400, "{body}");
    let (status, _) = server.request("POST", "/api/attempts", Some("web1-secret"), &forged);
    assert_eq!(status, 200);

    // A later success makes the source ok again; the failure stays in the history.
    f.write(
        "etc-web1/sources/sql.yml",
        &FAILING.replace("echo disk on fire >&2; exit 3", "echo dump"),
    );
    assert_eq!(tabacco(&web1, &["run"]).status().unwrap().code(), Some(0));
    let (code, rows) = json(&web2, &["status", "--problems"]);
    assert_eq!((code, rows.len()), (0, 0), "{rows:?}");
    let (_, attempts) = json(
        &web2,
        &[
            "history", "--host", "web1", "--source", "sql", "--limit", "2",
        ],
    );
    let states: Vec<&str> = attempts
        .iter()
        .map(|a| a["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["ok", "failed"],
        "newest first (the one posted is older than both runs)"
    );

    // Any request with web1's token is a sign of life, not only records.
    let (_, rows) = json(&web2, &["status", "--host", "web1"]);
    let before = rows[0]["last_seen"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(1100));
    json(&web1, &["history", "--limit", "1"]);
    let (_, rows) = json(&web2, &["status", "--host", "web1"]);
    let after = rows[0]["last_seen"].as_str().unwrap();
    assert!(after > before.as_str(), "{before} then {after}");

    // Retired, web1 is no longer watched.
    let admin = f.write("etc/admin.token", "secret\n");
    let admin_config = f.write(
        "etc-admin/agent.yml",
        &std::fs::read_to_string(&web2).unwrap().replace(
            &f.path("etc/web2.token").display().to_string(),
            &admin.display().to_string(),
        ),
    );
    let out = tabacco(&admin_config, &["retire-host", "web1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, rows) = json(&web2, &["status"]);
    assert!(rows.is_empty(), "{rows:?}");
    assert_eq!(
        tabacco(&web2, &["retire-host", "web1"])
            .status()
            .unwrap()
            .code(),
        Some(1),
        "admin only"
    );
}

#[test]
fn an_agent_killed_with_sigkill_is_overdue_after_its_grace() {
    let f = Fixture::new();
    let server = Server::start(
        &fleet_config(&f, "overdue_grace: 1s\n", &["web1"]),
        "127.0.0.1:0",
    );
    let web1 = host_config(&f, "web1", &server.url());
    f.write(
        "etc-web1/sources/sql.yml",
        "name: sql\nhandler: pipe\nschedule: \"@every 4s\"\nparams:\n  backup_command: \"echo dump\"\natoms: [{name: db1}]\n",
    );
    let agent = Agent::start_with(&web1, &[]);
    let planned = eventually(Duration::from_secs(20), || {
        let (_, rows) = json(&web1, &["status"]);
        (rows.len() == 1).then_some(rows)
    });
    assert!(planned.is_some(), "the agent publishes its plan at start");
    drop(agent); // SIGKILL
    let overdue = eventually(Duration::from_secs(30), || {
        let (code, rows) = json(&web1, &["status", "--problems"]);
        (rows.len() == 1 && rows[0]["state"] == "overdue").then_some((code, rows))
    });
    let (code, rows) = overdue.expect("overdue within a schedule and its grace");
    assert_eq!(code, 1);
    assert!(
        rows[0]["message"]
            .as_str()
            .unwrap()
            .contains("not attempted since"),
        "{rows:?}"
    );
}

#[test]
fn a_metadb_rebuilt_by_reindex_learns_the_plan_when_the_agent_is_reloaded() {
    let f = Fixture::new();
    let config = fleet_config(&f, "", &["web1"]);
    let server = Server::start(&config, "127.0.0.1:0");
    let addr = server.addr.to_string();
    let web1 = host_config(&f, "web1", &server.url());
    f.write(
        "etc-web1/sources/sql.yml",
        "name: sql\nhandler: pipe\nschedule: \"@daily\"\nparams:\n  backup_command: \"echo dump\"\natoms: [{name: db1}]\n",
    );
    let agent = Agent::start_with(&web1, &[]);
    agent.signal(libc::SIGUSR1);
    let backed_up = eventually(Duration::from_secs(60), || {
        let (_, rows) = json(&web1, &["status"]);
        (rows.len() == 1 && rows[0]["state"] == "ok").then_some(())
    });
    assert!(backed_up.is_some(), "{}", agent.stderr());

    // The database is lost; a new one is rebuilt from the repository.
    drop(server);
    for file in ["db.sqlite", "db.sqlite-wal", "db.sqlite-shm"] {
        let _ = std::fs::remove_file(f.path("metadb").join(file));
    }
    let _server = Server::start(&config, &addr);
    let out = tabacco(&web1, &["reindex"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let (_, found) = json(&web1, &["query", "--json", "sql/*"]);
    assert_eq!(found.len(), 1, "reindex rebuilt the backup record");
    let (_, rows) = json(&web1, &["status"]);
    assert_eq!(
        rows,
        [] as [serde_json::Value; 0],
        "plans are not in the repository"
    );

    // Unchanged, the plan would wait 10 minutes; a reload sends it now.
    agent.signal(libc::SIGHUP);
    let planned = eventually(Duration::from_secs(20), || {
        let (_, rows) = json(&web1, &["status"]);
        (rows.len() == 1).then_some(rows)
    });
    let rows = planned.expect("the reloaded agent republishes its plan");
    assert_eq!(
        (&rows[0]["host"], &rows[0]["source"]),
        (&"web1".into(), &"sql".into())
    );
}

#[test]
fn the_embedded_metadb_serves_status_and_history() {
    let f = Fixture::new();
    f.write("etc/sources/sql.yml", FAILING);
    f.tabacco(&["run"]).status(1);
    let (code, rows) = json(&f.config(), &["status"]);
    assert_eq!(code, 1);
    assert_eq!((rows.len(), &rows[0]["state"]), (1, &"failed".into()));
    assert_eq!(rows[0]["host"], "test-host");
    let (code, attempts) = json(&f.config(), &["history", "--since", "1h"]);
    assert_eq!((code, attempts.len()), (0, 1), "{attempts:?}");
    // Verify outcomes are attempts too, of kind verify.
    let verify = f.tabacco(&["verify"]).run();
    let (_, attempts) = json(&f.config(), &["history"]);
    let kinds: Vec<(&str, &str)> = attempts
        .iter()
        .map(|a| (a["kind"].as_str().unwrap(), a["state"].as_str().unwrap()))
        .collect();
    let verified = if verify.code == Some(0) {
        "ok"
    } else {
        "failed"
    };
    assert_eq!(kinds, [("verify", verified), ("backup", "failed")]);
    let table = f.tabacco(&["status", "--table"]).status(1).stdout;
    assert!(
        table.starts_with("HOST") && table.contains("failed"),
        "{table}"
    );
}

#[test]
fn a_fleet_status_answer_is_chunked_and_whole() {
    const HOSTS: usize = 80;
    const SOURCES: usize = 10;
    let f = Fixture::new();
    let server = Server::start(&metadb_config(&f, ""), "127.0.0.1:0");
    for h in 0..HOSTS {
        let sources: Vec<serde_json::Value> = (0..SOURCES)
            .map(|s| serde_json::json!({"source": format!("s{s}"), "schedule": "@daily"}))
            .collect();
        let plan = serde_json::json!({"host": format!("host{h:03}"), "replace": true,
                                      "sources": sources});
        let (status, text) = server.request("POST", "/api/plans", None, &plan.to_string());
        assert_eq!(status, 200, "{text}");
    }
    let failed = r#"{"host":"host042","source":"s7","backup_id":"b1","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:01:00Z","state":"failed","failure":"command","message":"exit 1","datasets":1}"#;
    let (status, text) = server.request("POST", "/api/attempts", None, failed);
    assert_eq!(status, 200, "{text}");

    let raw = "POST /api/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
               Content-Length: 2\r\n\r\n{}";
    let answer = exchange(&server, raw);
    let (head, chunked) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(head.contains("\r\nTransfer-Encoding: chunked"), "{head}");
    assert!(chunked.starts_with("10000\r\n"), "a first chunk of 64 KiB");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&dechunk(chunked)).unwrap();
    let names: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["host"].as_str().unwrap(),
                r["source"].as_str().unwrap()
            )
        })
        .collect();
    let mut expected: Vec<String> = (0..HOSTS)
        .flat_map(|h| (0..SOURCES).map(move |s| format!("host{h:03}/s{s}")))
        .collect();
    expected.sort();
    assert_eq!(names, expected, "every row once, by host and source");
    let states: Vec<&str> = rows.iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states.iter().filter(|s| **s == "failed").count(), 1);
    assert_eq!(
        states.iter().filter(|s| **s == "never").count(),
        HOSTS * SOURCES - 1
    );
    assert!(
        rows.iter().all(|r| r["last_seen"].is_string()),
        "{:?}",
        rows[0]
    );

    // `tabacco status` reads it as it arrives: the same rows, a failed one
    // among them (exit 1), as JSON or as a table.
    let config = f.write(
        "etc/agent.yml",
        &format!(
            "hostname: admin\n{}metadb:\n  url: {}\n",
            f.repository_yaml(),
            server.url()
        ),
    );
    let (code, printed) = json(&config, &["status"]);
    assert_eq!(code, 1);
    assert_eq!(printed, rows);
    let table = tabacco(&config, &["status", "--table"]).output().unwrap();
    assert_eq!(table.status.code(), Some(1));
    let table = String::from_utf8_lossy(&table.stdout);
    assert_eq!(
        table.lines().count(),
        1 + HOSTS * SOURCES,
        "a header and the rows"
    );
    let (code, problems) = json(&config, &["status", "--problems"]);
    assert_eq!((code, problems.len()), (1, 1), "{problems:?}");
    let (code, one) = json(&config, &["status", "--host", "host001"]);
    assert_eq!(
        (code, one.len()),
        (0, SOURCES),
        "never attempted is no problem"
    );
}
