//! The agent daemon: schedules, signals (real ones, sent with kill(2)),
//! overlap and concurrency limits, shutdown of running jobs, and its HTTP
//! endpoints. Every test runs the real binary against a real restic
//! repository; a guard stops and reaps the agent even when a test fails.

use crate::common::{eventually, Daemon, Fixture};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A running `tabacco agent`, stopped with SIGKILL and reaped on drop.
pub(crate) struct Agent(Daemon);

impl Agent {
    pub(crate) fn start(f: &Fixture, args: &[&str]) -> Agent {
        Agent::start_with(&f.config(), args)
    }

    /// Starts an agent on the configuration at `config`.
    pub(crate) fn start_with(config: &std::path::Path, args: &[&str]) -> Agent {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tabacco"));
        cmd.arg("--config").arg(config).arg("agent").args(args);
        let agent = Agent(Daemon::spawn(cmd));
        agent.wait_for("agent started", Duration::from_secs(20));
        agent
    }

    pub(crate) fn stderr(&self) -> String {
        self.0.log()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.0.child.id()
    }

    /// Waits until the log contains `text`; returns the log.
    #[track_caller]
    pub(crate) fn wait_for(&self, text: &str, timeout: Duration) -> String {
        self.0.wait_for(text, timeout)
    }

    pub(crate) fn signal(&self, signal: i32) {
        self.0.signal(signal);
    }

    /// The address from the `listening on ADDR` line.
    pub(crate) fn addr(&self) -> String {
        self.0.addr()
    }

    /// Sends SIGTERM and waits for the exit (at most `timeout`).
    #[track_caller]
    pub(crate) fn terminate(self, timeout: Duration) -> (ExitStatus, Duration, String) {
        let started = Instant::now();
        self.signal(libc::SIGTERM);
        let (status, log) = self.0.wait(timeout);
        (status, started.elapsed(), log)
    }
}

/// `GET path` on `addr`: status code and body.
pub(crate) fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// The sources named in the metadb's records, with a count of backups each.
fn backed_up(f: &Fixture) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for backup in f.query(&["--versions", "1000", "*"]) {
        for dataset in backup["datasets"].as_array().unwrap() {
            let source = dataset["source"].as_str().unwrap().to_string();
            *counts.entry(source).or_default() += 1;
        }
    }
    counts
}

/// A pipe source that dumps one line; `extra` is appended to its mapping.
fn pipe_source(name: &str, schedule: &str, extra: &str) -> String {
    format!(
        "- name: {name}\n  handler: pipe\n  schedule: \"{schedule}\"\n  params:\n    backup_command: \"echo dump of {name}\"\n{extra}"
    )
}

/// A schedule that never comes during a test.
const NEVER: &str = "0 0 1 1 *";

#[test]
fn every_2s_source_runs_repeatedly_and_metrics_follow() {
    let f = Fixture::new();
    f.write("etc/sources/sql.yml", &pipe_source("sql", "@every 2s", ""));
    let agent = Agent::start(&f, &["--http-addr", "127.0.0.1:0"]);
    let addr = agent.addr();
    let runs = eventually(Duration::from_secs(30), || {
        let log = agent.stderr();
        (log.matches("source sql (backup ").count() >= 2).then_some(())
    });
    assert!(runs.is_some(), "fewer than 2 runs:\n{}", agent.stderr());
    assert!(backed_up(&f)["sql"] >= 2);

    assert_eq!(get(&addr, "/healthz"), (200, "ok\n".to_string()));
    let (status, metrics) = get(&addr, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.lines().any(|l| l == "backup_ok{dataset=\"sql\"} 1"),
        "{metrics}"
    );
    for name in [
        "tabacco_last_success_timestamp_seconds{source=\"sql\"} ",
        "tabacco_last_duration_seconds{source=\"sql\"} ",
        "tabacco_bytes_added{source=\"sql\"} ",
        "tabacco_files{source=\"sql\"} 1",
        "tabacco_overlaps_total{source=\"sql\"} ",
        "tabacco_next_run_timestamp_seconds{source=\"sql\"} ",
        "tabacco_running_jobs ",
        "tabacco_spool_backlog 0",
    ] {
        assert!(metrics.contains(name), "{name:?} missing:\n{metrics}");
    }
    crate::common::promtool_accepts(&metrics);
    let (status, page) = get(&addr, "/");
    assert_eq!(status, 200);
    assert!(page.contains("<td>sql</td><td>@every 2s</td>"), "{page}");
    assert_eq!(get(&addr, "/nothing").0, 404);

    let log = agent.stderr();
    assert!(!log.contains("error:"), "{log}");
    let (status, _, log) = agent.terminate(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{log}");
}

#[test]
fn sigusr1_runs_every_source_now() {
    let f = Fixture::new();
    f.write(
        "etc/sources/all.yml",
        &(pipe_source("a", NEVER, "") + &pipe_source("b", NEVER, "")),
    );
    let agent = Agent::start(&f, &[]);
    let second = f.tabacco(&["agent"]).status(1);
    assert!(
        second.stderr.contains("another agent (pid ") && second.stderr.contains("is running"),
        "{second:?}"
    );
    agent.signal(libc::SIGUSR1);
    agent.wait_for("source a (backup ", Duration::from_secs(30));
    agent.wait_for("source b (backup ", Duration::from_secs(30));
    let counts = backed_up(&f);
    assert_eq!(counts.get("a"), Some(&1));
    assert_eq!(counts.get("b"), Some(&1));
    let (status, _, log) = agent.terminate(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{log}");

    // A restarted agent knows the last successes from the metadb.
    let agent = Agent::start(&f, &["--http-addr", "127.0.0.1:0"]);
    let addr = agent.addr();
    let metrics = eventually(Duration::from_secs(10), || {
        let (_, metrics) = get(&addr, "/metrics");
        metrics
            .contains("tabacco_last_success_timestamp_seconds{source=\"b\"} ")
            .then_some(metrics)
    });
    let metrics = metrics.expect("last success of b after a restart");
    assert!(
        metrics.contains("tabacco_files{source=\"a\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("backup_ok{"),
        "unknown until a run:\n{metrics}"
    );
}

#[test]
fn sighup_adds_new_sources_and_drops_removed_ones() {
    let f = Fixture::new();
    f.write("etc/sources/a.yml", &pipe_source("a", NEVER, ""));
    f.write("etc/sources/b.yml", &pipe_source("b", NEVER, ""));
    let agent = Agent::start(&f, &[]);
    std::fs::remove_file(f.path("etc/sources/b.yml")).unwrap();
    f.write("etc/sources/c.yml", &pipe_source("c", NEVER, ""));
    agent.signal(libc::SIGHUP);
    agent.wait_for("configuration reloaded in ", Duration::from_secs(10));
    assert!(
        agent.stderr().contains("2 sources (added: c; removed: b)"),
        "{}",
        agent.stderr()
    );
    agent.signal(libc::SIGUSR1);
    agent.wait_for("source a (backup ", Duration::from_secs(30));
    agent.wait_for("source c (backup ", Duration::from_secs(30));
    let counts = backed_up(&f);
    assert_eq!(
        (counts.get("a"), counts.get("b"), counts.get("c")),
        (Some(&1), None, Some(&1))
    );
    let (status, _, log) = agent.terminate(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{log}");
}

#[test]
fn sighup_with_a_broken_config_keeps_the_old_one() {
    let f = Fixture::with_agent("dry_run: true\n");
    f.write("etc/sources/a.yml", &pipe_source("a", NEVER, ""));
    let agent = Agent::start(&f, &[]);
    let broken = f.write("etc/sources/b.yml", "- name: b\n  handler: nosuch\n");
    std::fs::remove_file(f.path("etc/sources/a.yml")).unwrap();
    agent.signal(libc::SIGHUP);
    let log = agent.wait_for("rejected", Duration::from_secs(10));
    assert!(
        log.lines()
            .any(|l| l.contains("error: reload: ") && l.contains(&*broken.to_string_lossy())),
        "the reason, with the file, is logged:\n{log}"
    );
    // The old configuration still runs: `a` (dry run: nothing is written).
    agent.signal(libc::SIGUSR1);
    agent.wait_for("dry run: would stream", Duration::from_secs(10));
    let (status, _, log) = agent.terminate(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("would stream `echo dump of a`"), "{log}");
    assert!(!log.contains("source b"), "{log}");
}

#[test]
fn sigterm_stops_a_long_pipe_backup_and_records_nothing() {
    let f = Fixture::new();
    f.write(
        "etc/sources/slow.yml",
        "- name: slow\n  handler: pipe\n  schedule: \"0 0 1 1 *\"\n  params:\n    backup_command: \"echo partial; sleep 60; echo x\"\n",
    );
    let agent = Agent::start(&f, &["-vv"]);
    agent.signal(libc::SIGUSR1);
    let log = agent.wait_for("started restic backup (pid ", Duration::from_secs(30));
    let pid = |what: &str| -> i32 {
        let line = log.lines().find(|l| l.contains(what)).unwrap();
        let digits: String = line
            .rsplit("pid ")
            .next()
            .unwrap()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap()
    };
    let producer = pid("started backup_command (pid ");
    let restic = pid("started restic backup (pid ");
    // Let restic take its lock and read the first line.
    thread::sleep(Duration::from_secs(2));

    let (status, elapsed, log) = agent.terminate(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
    for pid in [producer, restic] {
        // SAFETY: kill(2) with signal 0 only checks for existence.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "process {pid} survived the agent:\n{log}");
    }
    assert!(log.contains("stopping: agent shutting down"), "{log}");
    assert_eq!(f.query(&["*"]), Vec::<serde_json::Value>::new());
    assert_eq!(
        f.snapshot_tags(),
        Vec::<Vec<String>>::new(),
        "no partial snapshot"
    );
    let locks = f.restic(&["list", "locks", "--no-lock"]);
    assert_eq!(locks.stdout, "", "restic was interrupted, not killed");
}

#[test]
fn a_slow_source_never_runs_twice_at_once() {
    let f = Fixture::new();
    let hook =
        "  pre_backup_command: \"echo start >> ROOT/runs; sleep 2; echo end >> ROOT/runs\"\n";
    f.write_config(
        "etc/sources/slow.yml",
        &pipe_source("slow", "@every 1s", hook),
    );
    let agent = Agent::start(&f, &["--http-addr", "127.0.0.1:0"]);
    let addr = agent.addr();
    agent.wait_for("previous backup still running", Duration::from_secs(20));
    let log = agent.wait_for("source slow (backup ", Duration::from_secs(20));
    let (_, metrics) = get(&addr, "/metrics");
    let overlaps = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tabacco_overlaps_total{source=\"slow\"} "))
        .map(|n| n.parse::<u64>().unwrap());
    assert!(overlaps >= Some(1), "{metrics}");
    assert!(log.contains("warning: source slow: previous backup still running"));
    let (status, _, log) = agent.terminate(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{log}");

    let runs = std::fs::read_to_string(f.path("runs")).unwrap();
    let lines: Vec<&str> = runs.lines().collect();
    assert!(lines.len() >= 2, "{runs}");
    for (i, line) in lines.iter().enumerate() {
        let expected = if i % 2 == 0 { "start" } else { "end" };
        assert_eq!(*line, expected, "interleaved runs:\n{runs}");
    }
}

#[test]
fn no_more_jobs_run_at_once_than_concurrency_allows() {
    let f = Fixture::with_agent("queue_config: {concurrency: 2}\n");
    let hook = "  pre_backup_command: \"echo + >> ROOT/events; sleep 1; echo - >> ROOT/events\"\n";
    let sources: String = ["a", "b", "c", "d"]
        .iter()
        .map(|name| pipe_source(name, "@every 1s", hook))
        .collect();
    f.write_config("etc/sources/all.yml", &sources);
    let agent = Agent::start(&f, &[]);
    let enough = eventually(Duration::from_secs(30), || {
        let events = std::fs::read_to_string(f.path("events")).unwrap_or_default();
        (events.lines().filter(|l| *l == "-").count() >= 6).then_some(())
    });
    assert!(enough.is_some(), "{}", agent.stderr());
    let (status, _, log) = agent.terminate(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{log}");

    let events = std::fs::read_to_string(f.path("events")).unwrap();
    let (mut running, mut most) = (0, 0);
    for event in events.lines() {
        running += if event == "+" { 1 } else { -1 };
        most = most.max(running);
    }
    assert_eq!(most, 2, "at most 2 at once, and 2 reached:\n{events}");
}

#[test]
fn a_stale_lock_is_unlocked_and_the_backup_retried() {
    let f = Fixture::new();
    f.restic(&["init"]).success();
    // Data for `check --read-data` to chew on while we find its lock.
    let data: Vec<u8> = (0..16u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(f.path("data/blob"), data).unwrap();
    f.restic(&["backup", "--quiet", &f.path("data").display().to_string()])
        .success();
    // A restic killed while holding an exclusive lock leaves it stale.
    let mut check = Command::new(crate::common::restic_binary())
        .args(["check", "--read-data"])
        .env("RESTIC_REPOSITORY", f.path("repo"))
        .env("RESTIC_PASSWORD", crate::common::PASSWORD)
        .env("RESTIC_CACHE_DIR", f.path("work/cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut locked = None;
    while locked.is_none() && started.elapsed() < Duration::from_secs(20) {
        locked = crate::common::has_lock(&f.path("repo")).then_some(());
        thread::sleep(Duration::from_millis(2));
    }
    check.kill().unwrap();
    check.wait().unwrap();
    assert!(locked.is_some(), "restic check took no lock");

    f.write("etc/sources/sql.yml", &pipe_source("sql", "@every 10s", ""));
    let agent = Agent::start(&f, &["--http-addr", "127.0.0.1:0"]);
    let addr = agent.addr();
    let log = agent.wait_for(" recorded in ", Duration::from_secs(40));
    assert!(log.contains("repository is locked"), "{log}");
    assert!(log.contains("source sql: retrying in "), "{log}");
    assert!(
        log.contains("restic unlock removed any stale locks"),
        "{log}"
    );
    let (_, metrics) = get(&addr, "/metrics");
    let failures = "tabacco_backup_failures_total{source=\"sql\",kind=\"repository_locked\"} 1";
    assert!(metrics.lines().any(|l| l == failures), "{metrics}");
    assert!(
        metrics.contains("backup_ok{dataset=\"sql\"} 1"),
        "{metrics}"
    );
    crate::common::promtool_accepts(&metrics);
    let (status, _, log) = agent.terminate(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{log}");
}

/// Regression (issue 26): restic 0.17 and newer retried the unreachable
/// backend for a quarter of an hour, and the job ran on; opening the
/// repository is bounded by `repository_timeout` on every version.
#[test]
fn an_unreachable_repository_is_retried_and_counted() {
    let f = Fixture::new();
    f.write(
        "etc/agent.yml",
        &format!(
            "hostname: test-host\nrepository:\n  params:\n    uri: rest:http://127.0.0.1:1/\n    password: x\nwork_dir: {}\nrepository_timeout: 2s\n{}",
            f.path("work").display(),
            crate::common::restic_binary_yaml()
        ),
    );
    f.write("etc/sources/sql.yml", &pipe_source("sql", "@every 20s", ""));
    let agent = Agent::start(&f, &["--http-addr", "127.0.0.1:0"]);
    let addr = agent.addr();
    let log = agent.wait_for("source sql: retrying in ", Duration::from_secs(40));
    assert!(
        log.contains("connection refused") || log.contains("did not answer within 2s"),
        "{log}"
    );
    let (_, metrics) = get(&addr, "/metrics");
    assert!(
        metrics.contains(
            "tabacco_backup_failures_total{source=\"sql\",kind=\"repository_unavailable\"} "
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("backup_ok{dataset=\"sql\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tabacco_running_jobs 1"),
        "waiting to retry:\n{metrics}"
    );
    let (_, page) = get(&addr, "/");
    assert!(page.contains("waiting to retry at "), "{page}");
    let (status, elapsed, log) = agent.terminate(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        elapsed < Duration::from_secs(5),
        "a waiting retry ends at once: {elapsed:?}"
    );
}

#[test]
fn prune_and_verify_run_on_their_schedules() {
    let f = Fixture::with_agent(
        "retention: {keep_last: 1}\nprune_schedule: \"@every 2s\"\nverify_schedule: \"@every 2s\"\n",
    );
    f.write("etc/sources/sql.yml", &pipe_source("sql", NEVER, ""));
    f.tabacco(&["run"]).success();
    thread::sleep(Duration::from_millis(1100));
    f.tabacco(&["run"]).success();
    assert_eq!(f.snapshot_tags().len(), 2);
    let agent = Agent::start(&f, &["--http-addr", "127.0.0.1:0"]);
    let addr = agent.addr();
    let metrics = eventually(Duration::from_secs(40), || {
        let (_, text) = get(&addr, "/metrics");
        let done = text.contains("\ntabacco_last_verified_timestamp_seconds ")
            && text.contains("\ntabacco_last_pruned_timestamp_seconds ");
        done.then_some(text)
    });
    let log = agent.stderr();
    let metrics = metrics.unwrap_or_else(|| panic!("prune and verify did not both run: {log}"));
    assert!(
        metrics.contains("tabacco_verify_failures_total 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tabacco_prune_failures_total 0"),
        "{metrics}"
    );
    crate::common::promtool_accepts(&metrics);
    assert_eq!(f.snapshot_tags().len(), 1, "keep_last 1 applied");
    assert_eq!(
        f.query(&["--versions", "10", "*"]).len(),
        1,
        "the metadb follows"
    );
    let (status, _, log) = agent.terminate(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{log}");
}

#[test]
fn an_unreadable_token_is_a_configuration_error() {
    let f = Fixture::with_agent(
        "metadb: {url: \"http://127.0.0.1:9\", token_file: /nonexistent/token}\n",
    );
    let run = f.tabacco(&["agent"]).status(2);
    assert!(
        run.stderr
            .contains("cannot read metadb.token_file /nonexistent/token"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_source_missed_while_the_agent_was_down_runs_after_restart() {
    let f = Fixture::with_agent("catch_up_spread: 2s\n");
    f.write(
        "etc/sources/s.yml",
        &format!(
            "{}{}",
            pipe_source("missed", "@every 1h", ""),
            pipe_source("skipped", "@every 1h", "  catch_up: false\n")
        ),
    );
    let agent = Agent::start(&f, &[]);
    agent.signal(libc::SIGUSR1);
    eventually(Duration::from_secs(30), || {
        (backed_up(&f).values().sum::<usize>() == 2).then_some(())
    })
    .unwrap_or_else(|| panic!("no first runs:\n{}", agent.stderr()));
    let (status, _, log) = agent.terminate(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{log}");

    // The agent was down for two hours: back-date the starts it recorded.
    let two_hours_ago = (chrono::Utc::now() - chrono::Duration::hours(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for name in ["missed", "skipped"] {
        let path = f.path(&format!("work/started/source-{name}"));
        assert!(path.exists(), "{name}: start not recorded");
        std::fs::write(path, format!("{two_hours_ago}\n")).unwrap();
    }
    let agent = Agent::start(&f, &[]);
    agent.wait_for("missed: its run of", Duration::from_secs(10));
    let caught_up = eventually(Duration::from_secs(30), || {
        (backed_up(&f).get("missed") == Some(&2)).then_some(())
    });
    assert!(caught_up.is_some(), "not caught up:\n{}", agent.stderr());
    thread::sleep(Duration::from_secs(3));
    assert_eq!(backed_up(&f).get("skipped"), Some(&1), "{}", agent.stderr());
    let (status, _, log) = agent.terminate(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{log}");
}

#[test]
fn a_prune_missed_while_the_agent_was_down_runs_after_restart() {
    let f = Fixture::with_agent(
        "retention: {keep_last: 1}\nprune_schedule: \"@every 1h\"\ncatch_up_spread: 1s\n",
    );
    f.write("etc/sources/sql.yml", &pipe_source("sql", NEVER, ""));
    f.tabacco(&["run"]).success();
    thread::sleep(Duration::from_millis(1100));
    f.tabacco(&["run"]).success();
    assert_eq!(f.snapshot_tags().len(), 2);
    // As an agent stopped two hours ago recorded its last prune.
    let two_hours_ago = (chrono::Utc::now() - chrono::Duration::hours(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    f.write("work/started/prune", &format!("{two_hours_ago}\n"));
    let agent = Agent::start(&f, &[]);
    agent.wait_for("prune: its run of", Duration::from_secs(10));
    agent.wait_for("prune: 1 snapshot forgotten", Duration::from_secs(30));
    assert_eq!(f.snapshot_tags().len(), 1, "keep_last 1 applied");
    let recorded = std::fs::read_to_string(f.path("work/started/prune")).unwrap();
    assert!(recorded.trim() > two_hours_ago.as_str(), "{recorded}");
    let (status, _, log) = agent.terminate(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{log}");
}
