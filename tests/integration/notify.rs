//! Notifications: healthchecks pings, webhooks and ntfy messages sent by
//! `tabacco run` to a receiver the test starts on loopback, what `check`
//! shows of them, and the configuration errors among them.

use crate::agent::{get, Agent};
use crate::common::{eventually, Fixture};
use crate::health::host_config;
use crate::metadb::{fleet_config, Server};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// An HTTP server on loopback that records every request and answers 200.
pub struct Receiver {
    pub addr: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    server: Arc<tiny_http::Server>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let addr = server.server_addr().to_ip().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, recorded) = (Arc::clone(&server), Arc::clone(&seen));
        let thread = thread::spawn(move || {
            for mut request in s.incoming_requests() {
                let mut body = String::new();
                request.as_reader().read_to_string(&mut body).unwrap();
                let headers = request
                    .headers()
                    .iter()
                    .map(|h| {
                        (
                            h.field.as_str().as_str().to_lowercase(),
                            h.value.to_string(),
                        )
                    })
                    .collect();
                recorded.lock().unwrap().push(Seen {
                    method: request.method().to_string(),
                    url: request.url().to_string(),
                    headers,
                    body,
                });
                let _ = request.respond(tiny_http::Response::from_string("OK"));
            }
        });
        Receiver {
            addr,
            seen,
            server,
            thread: Some(thread),
        }
    }

    /// Takes what was received so far.
    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A pipe source `sql` that fails while `ROOT/fail` exists.
fn flaky_source(f: &Fixture) {
    f.write_config(
        "etc/sources/sql.yml",
        "name: sql\nhandler: pipe\nschedule: \"@daily\"\nparams:\n  backup_command: \"if test -e ROOT/fail; then echo disk on fire >&2; exit 3; fi; echo dump\"\natoms: [{name: db1}]\n",
    );
}

fn set_failing(f: &Fixture, failing: bool) {
    if failing {
        f.write("fail", "");
    } else {
        let _ = std::fs::remove_file(f.path("fail"));
    }
}

#[test]
fn healthchecks_pings_start_success_and_fail_with_bodies() {
    let receiver = Receiver::start();
    let f = Fixture::with_agent(&format!(
        "notify:\n  - kind: healthchecks\n    url: http://{}/ping/${{host}}/${{source}}\n",
        receiver.addr
    ));
    flaky_source(&f);

    f.tabacco(&["run"]).success();
    let seen = receiver.take();
    let urls: Vec<&str> = seen.iter().map(|s| s.url.as_str()).collect();
    assert_eq!(
        urls,
        ["/ping/test-host/sql/start", "/ping/test-host/sql"],
        "{seen:#?}"
    );
    assert!(seen.iter().all(|s| s.method == "POST"));
    assert!(seen[0].body.contains("source sql"), "{seen:#?}");
    assert!(seen[1].body.contains("1 dataset,"), "{seen:#?}");
    assert_eq!(seen[1].headers["content-type"], "text/plain; charset=utf-8");

    set_failing(&f, true);
    f.tabacco(&["run"]).status(1);
    let seen = receiver.take();
    let urls: Vec<&str> = seen.iter().map(|s| s.url.as_str()).collect();
    assert_eq!(
        urls,
        ["/ping/test-host/sql/start", "/ping/test-host/sql/fail"],
        "{seen:#?}"
    );
    assert!(seen[1].body.contains("disk on fire"), "{seen:#?}");
}

#[test]
fn a_webhook_and_ntfy_are_told_of_failure_and_recovery_once() {
    let receiver = Receiver::start();
    let f = Fixture::new();
    let token = f.write("etc/hook.token", "hook-secret-token\n");
    f.write(
        "etc/agent.yml",
        &format!(
            "hostname: test-host\n{}\nnotify:\n  - kind: healthchecks\n    url: http://{addr}/never\n",
            f.repository_yaml(),
            addr = receiver.addr
        ),
    );
    // The source's own list replaces agent.yml's: no healthchecks pings.
    f.write_config(
        "etc/sources/sql.yml",
        &format!(
            "name: sql\nhandler: pipe\nschedule: \"@daily\"\nparams:\n  backup_command: \"if test -e ROOT/fail; then echo disk on fire >&2; exit 3; fi; echo dump\"\natoms: [{{name: db1}}]\nnotify:\n  - kind: webhook\n    url: http://{addr}/hook\n    token_file: {token}\n  - kind: ntfy\n    url: http://{addr}/topic\n",
            addr = receiver.addr,
            token = token.display()
        ),
    );

    let mut states = Vec::new();
    for failing in [false, true, true, false, false] {
        set_failing(&f, failing);
        let run = f.tabacco(&["run"]).run();
        assert_eq!(run.code, Some(if failing { 1 } else { 0 }), "{run:#?}");
        assert!(!run.stderr.contains("hook-secret-token"), "{}", run.stderr);
        let seen = receiver.take();
        assert!(seen.iter().all(|s| s.url != "/never"), "{seen:#?}");
        states.push(
            seen.iter()
                .map(|s| format!("{} {}", s.url, s.headers.get("title").map_or("", |t| t)))
                .collect::<Vec<_>>(),
        );
        for s in &seen {
            if s.url == "/hook" {
                assert_eq!(s.headers["authorization"], "Bearer hook-secret-token");
                let json: serde_json::Value = serde_json::from_str(&s.body).unwrap();
                assert_eq!(json["host"], "test-host");
                assert_eq!(json["source"], "sql");
                assert!(!json["backup_id"].as_str().unwrap().is_empty(), "{json}");
                assert!(json["started"].as_str().unwrap() <= json["ended"].as_str().unwrap());
                if failing {
                    assert_eq!(json["state"], "failure");
                    assert!(json["message"].as_str().unwrap().contains("disk on fire"));
                    assert_eq!(json["datasets"], 0);
                } else {
                    assert_eq!(json["state"], "recovery");
                    assert_eq!(json["datasets"], 1);
                }
            } else {
                assert_eq!(s.url, "/topic");
                assert!(s.headers.contains_key("priority") && s.headers.contains_key("tags"));
            }
        }
    }
    let failed = vec![
        "/hook ".to_string(),
        "/topic tabacco: test-host sql failed".to_string(),
    ];
    assert_eq!(
        states,
        [
            vec![],
            failed.clone(),
            failed,
            vec![
                "/hook ".to_string(),
                "/topic tabacco: test-host sql recovered".to_string()
            ],
            vec![],
        ]
    );
}

#[test]
fn a_hanging_receiver_does_not_hold_run_beyond_its_bound() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let held = thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming().take(3) {
            open.push(stream);
        }
        thread::sleep(Duration::from_secs(30));
    });
    let f = Fixture::with_agent(&format!(
        "notify:\n  - kind: webhook\n    url: http://{addr}/hook\n    timeout: 60s\n    on: [start, success]\n"
    ));
    flaky_source(&f);
    let begun = Instant::now();
    let run = f.tabacco(&["run"]).success();
    let took = begun.elapsed();
    assert!(
        took < Duration::from_secs(12),
        "run took {took:?} with a hanging receiver"
    );
    assert!(
        run.stderr.contains("notifications not all sent within 5s"),
        "{}",
        run.stderr
    );
    drop(held);
}

#[test]
fn check_lists_targets_with_secrets_elided() {
    let f = Fixture::with_agent(
        "notify:\n  - kind: ntfy\n    url: https://alice:s3cret@127.0.0.1:1/s3cret-topic\n",
    );
    let run = f.tabacco(&["check"]).success();
    // The topic is the secret of an ntfy target, as a healthchecks UUID is.
    assert!(
        run.stdout
            .contains("notify      ntfy https://alice:***@127.0.0.1:1/*** on failure,recovery"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("s3cret"));
}

#[test]
fn bad_targets_are_configuration_errors() {
    for (entry, expected) in [
        (
            "kind: ntfy\n    url: ftp://127.0.0.1/x",
            "must start with http:// or https://",
        ),
        (
            "kind: pager\n    url: http://127.0.0.1/x",
            "unknown notify kind \"pager\"",
        ),
        (
            "kind: webhook\n    url: http://127.0.0.1/x\n    on: [failure, sometimes]",
            "unknown notify event \"sometimes\"",
        ),
        (
            "kind: webhook\n    url: http://127.0.0.1/x\n    token_file: /nonexistent/token",
            "cannot read notify token_file /nonexistent/token",
        ),
    ] {
        let f = Fixture::with_agent(&format!("notify:\n  - {entry}\n"));
        let run = f.tabacco(&["check"]).status(2);
        assert!(run.stderr.contains(expected), "{entry}: {}", run.stderr);
    }
}

#[test]
fn the_agent_notifies_counts_what_it_could_not_send_and_keeps_targets_on_a_bad_reload() {
    let receiver = Receiver::start();
    // A port nobody listens on: connections are refused.
    let refused = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let agent_yml = |targets: &str| {
        format!(
            "notify:\n  - kind: webhook\n    url: http://{}/hook\n    on: [success]\n{targets}",
            receiver.addr
        )
    };
    let f = Fixture::with_agent(&agent_yml(&format!(
        "  - kind: webhook\n    url: http://{refused}/s3cret-down\n    on: [success]\n    timeout: 2s\n"
    )));
    f.write(
        "etc/sources/sql.yml",
        "name: sql\nhandler: pipe\nschedule: \"0 0 1 1 *\"\nparams:\n  backup_command: \"echo dump\"\natoms: [{name: db1}]\n",
    );
    let agent = Agent::start(&f, &["--http-addr", "127.0.0.1:0"]);
    let addr = agent.addr();
    agent.signal(libc::SIGUSR1);
    let counted = eventually(Duration::from_secs(30), || {
        let (_, metrics) = get(&addr, "/metrics");
        metrics
            .contains("tabacco_notifications_failed_total 1\n")
            .then_some(metrics)
    });
    let metrics = counted.unwrap_or_else(|| panic!("not counted:\n{}", agent.stderr()));
    assert!(
        metrics.contains("tabacco_notifications_sent_total 1\n"),
        "{metrics}"
    );
    let seen = receiver.take();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert!(
        agent.stderr().contains("notification to http://127.0.0.1:"),
        "{}",
        agent.stderr()
    );
    assert!(!agent.stderr().contains("s3cret"), "{}", agent.stderr());

    // A target that is not http(s): the reload is rejected, the old
    // targets stay.
    f.write(
        "etc/agent.yml",
        &format!(
            "hostname: test-host\n{}\nnotify:\n  - kind: webhook\n    url: file:///tmp/x\n",
            f.repository_yaml()
        ),
    );
    agent.signal(libc::SIGHUP);
    agent.wait_for("rejected", Duration::from_secs(10));
    agent.signal(libc::SIGUSR1);
    let again = eventually(Duration::from_secs(30), || {
        let seen = receiver.take();
        (!seen.is_empty()).then_some(seen)
    });
    assert_eq!(again.map(|s| s.len()), Some(1), "{}", agent.stderr());
}

#[test]
fn the_metadb_tells_once_of_an_overdue_source_and_a_silent_host_and_of_their_recovery() {
    let receiver = Receiver::start();
    let f = Fixture::new();
    let server = Server::start(
        &fleet_config(
            &f,
            &format!(
                "overdue_grace: 6s\nsilent_after: 8s\nwatch_interval: 1s\nnotify:\n  - kind: webhook\n    url: http://{}/central\n",
                receiver.addr
            ),
            &["web1"],
        ),
        "127.0.0.1:0",
    );
    let web1 = host_config(&f, "web1", &server.url());
    f.write(
        "etc-web1/sources/sql.yml",
        "name: sql\nhandler: pipe\nschedule: \"@every 4s\"\nparams:\n  backup_command: \"echo dump\"\natoms: [{name: db1}]\n",
    );
    let agent = Agent::start_with(&web1, &[]);
    agent.wait_for("source sql (backup ", Duration::from_secs(20));
    drop(agent); // SIGKILL
                 // Generous grace and silence: a loaded machine's backups take seconds.
    assert_eq!(receiver.take().len(), 0, "nothing told while the agent ran");

    let states = |seen: &[Seen]| -> Vec<String> {
        let mut states: Vec<String> = seen
            .iter()
            .map(|s| {
                let json: serde_json::Value = serde_json::from_str(&s.body).unwrap();
                assert_eq!(json["host"], "web1", "{json}");
                format!(
                    "{} {}",
                    json["state"].as_str().unwrap(),
                    json["source"].as_str().unwrap()
                )
            })
            .collect();
        states.sort();
        states
    };
    let mut seen = Vec::new();
    let both = eventually(Duration::from_secs(30), || {
        seen.extend(receiver.take());
        (seen.len() >= 2).then_some(())
    });
    assert!(both.is_some(), "{seen:#?}");
    // Several more looks at the status: nothing is told twice.
    thread::sleep(Duration::from_secs(3));
    seen.extend(receiver.take());
    assert_eq!(states(&seen), ["overdue sql", "silent "], "{seen:#?}");

    let agent = Agent::start_with(&web1, &[]);
    let mut seen = Vec::new();
    let recovered = eventually(Duration::from_secs(30), || {
        seen.extend(receiver.take());
        (seen.len() >= 2).then_some(())
    });
    assert!(recovered.is_some(), "{seen:#?}\n{}", agent.stderr());
    assert_eq!(states(&seen), ["recovered ", "recovered sql"], "{seen:#?}");
    let (_, metrics) = get(&server.addr.to_string(), "/metrics");
    assert!(
        metrics.contains("tabacco_metadb_notifications_sent_total 4\n"),
        "{metrics}"
    );
}

#[test]
fn a_bad_central_target_is_a_configuration_error() {
    let f = Fixture::new();
    for (entry, expected) in [
        (
            "kind: ntfy\n    url: ftp://127.0.0.1/x",
            "must start with http:// or https://",
        ),
        (
            "kind: webhook\n    url: http://127.0.0.1/x\n    on: [failure]",
            "unknown notify event \"failure\" (overdue, silent, recovered)",
        ),
    ] {
        let config = f.write(
            "etc/metadb.yml",
            &format!(
                "db_path: {}\nnotify:\n  - {entry}\n",
                f.path("metadb.sqlite").display()
            ),
        );
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tabacco"))
            .args(["metadb", "--config"])
            .arg(&config)
            .args(["--http-addr", "127.0.0.1:0"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{entry}: {stderr}");
    }
}
