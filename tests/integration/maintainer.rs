//! One maintainer per repository: hosts sharing a repository served over
//! REST and a central metadb take turns at pruning and checking under a
//! lease, a dead host's lease expires, a host with `maintenance: false`
//! never deletes (an append-only server would refuse it), a maintainer
//! prunes every host's snapshots by their published policies, and the
//! rotated check reads the repository back slice by slice.

use crate::agent::{get, Agent};
use crate::common::{eventually, restic_binary, Fixture, RestServer, PASSWORD};
use crate::metadb::{fleet_config, Server};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// An agent.yml for `host` at `etc-HOST/agent.yml`, with its own work_dir,
/// the repository `main` of `rest` (created by the first backup), the
/// restic `binary`, the metadb
/// `metadb` (none: embedded) with the token `HOST-secret`, and `extra`.
fn host(
    f: &Fixture,
    name: &str,
    rest: &RestServer,
    metadb: Option<&Server>,
    extra: &str,
) -> PathBuf {
    let metadb = crate::metadb::through(f, name, metadb);
    f.write(
        &format!("etc-{name}/agent.yml"),
        &format!(
            "hostname: {name}\nrepository:\n  params:\n    uri: {}main\n    password: {PASSWORD}\nwork_dir: {}\ninit: auto\nrestic_binary: {}\n{metadb}{extra}",
            rest.url,
            f.path(&format!("work-{name}")).display(),
            restic_binary(),
        ),
    )
}

/// A pipe source `name` of host `host`, with `extra` keys.
fn source(f: &Fixture, host: &str, name: &str, extra: &str) {
    f.write(
        &format!("etc-{host}/sources/{name}.yml"),
        &format!("name: {name}\nhandler: pipe\nschedule: \"0 0 1 1 *\"\nparams:\n  backup_command: \"echo dump of {name}\"\natoms: [{{name: {name}/db}}]\n{extra}"),
    );
}

/// A restic that takes `seconds` longer over `forget`, so that a prune
/// holds its lease a while.
fn slow_restic(f: &Fixture, seconds: u32) -> String {
    let path = f.write(
        "slow-restic",
        &format!(
            "#!/bin/sh\nif [ \"$1\" = forget ]; then sleep {seconds}; fi\nexec {} \"$@\"\n",
            restic_binary()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

/// Makes the agent.yml at `config` run `restic` as its restic.
fn use_restic(config: &PathBuf, restic: &str) {
    let yaml = std::fs::read_to_string(config).unwrap();
    let from = format!("restic_binary: {}", restic_binary());
    std::fs::write(
        config,
        yaml.replace(&from, &format!("restic_binary: {restic}")),
    )
    .unwrap();
}

fn tabacco(config: &PathBuf, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tabacco"));
    cmd.arg("--config").arg(config).args(args);
    cmd
}

#[track_caller]
fn run(config: &PathBuf, args: &[&str]) -> Output {
    let out = tabacco(config, args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// restic run on repository `main` of `rest`.
fn restic(f: &Fixture, rest: &RestServer, args: &[&str]) -> String {
    let out = Command::new(restic_binary())
        .args(args)
        .env("RESTIC_REPOSITORY", format!("{}main", rest.url))
        .env("RESTIC_PASSWORD", PASSWORD)
        .env("RESTIC_CACHE_DIR", f.path("cache"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "restic {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The host and first tag of every snapshot in repository `main`.
fn snapshots(f: &Fixture, rest: &RestServer) -> Vec<(String, String)> {
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&restic(f, rest, &["snapshots", "--json"])).unwrap();
    let mut all: Vec<(String, String)> = list
        .iter()
        .map(|s| {
            let tags = s["tags"].as_array().unwrap();
            let source = tags
                .iter()
                .filter_map(|t| t.as_str()?.strip_prefix("tabacco:source="))
                .next()
                .unwrap_or_default();
            (
                s["hostname"].as_str().unwrap().to_string(),
                source.to_string(),
            )
        })
        .collect();
    all.sort();
    all
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(h, s)| (h.to_string(), s.to_string()))
        .collect()
}

/// Backs up every source of `config` twice.
fn back_up_twice(config: &PathBuf) {
    run(config, &["run"]);
    std::thread::sleep(Duration::from_millis(1100));
    run(config, &["run"]);
}

/// The kind and state of `host`'s prune attempts, newest first.
fn prunes(config: &PathBuf, host: &str) -> Vec<String> {
    let out = run(config, &["history", "--host", host]);
    let attempts: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    attempts
        .iter()
        .filter(|a| a["kind"] == "prune")
        .map(|a| a["state"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn two_hosts_pruning_at_once_never_fail_on_a_lock_and_exactly_one_prunes() {
    let f = Fixture::new();
    let rest = RestServer::start(&f.path("served"), false);
    let server = Server::start(&fleet_config(&f, "", &["web1", "web2"]), "127.0.0.1:0");
    let slow = slow_restic(&f, 3);
    let keep = "retention: {keep_last: 1}\n";
    let web1 = host(&f, "web1", &rest, Some(&server), keep);
    let web2 = host(&f, "web2", &rest, Some(&server), keep);
    for (config, name) in [(&web1, "web1"), (&web2, "web2")] {
        source(&f, name, "sql", "");
        back_up_twice(config);
    }
    assert_eq!(snapshots(&f, &rest).len(), 4);
    // Both with the slow restic, at once: whoever takes the lease first
    // holds it for the other's whole attempt.
    use_restic(&web1, &slow);
    use_restic(&web2, &slow);
    let spawn = |config: &PathBuf| {
        let mut cmd = tabacco(config, &["prune"]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    let (one, two) = (spawn(&web1), spawn(&web2));
    let outs = [
        one.wait_with_output().unwrap(),
        two.wait_with_output().unwrap(),
    ];
    for out in &outs {
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            !text(&out.stderr).contains("locked"),
            "{}",
            text(&out.stderr)
        );
    }
    let skipped: Vec<usize> = (0..2)
        .filter(|&i| text(&outs[i].stdout).starts_with("skipped: host web"))
        .collect();
    assert_eq!(skipped.len(), 1, "exactly one skipped: {outs:?}");
    let (pruner, waiter) = match skipped[0] {
        0 => (("web2", &web2), ("web1", &web1)),
        _ => (("web1", &web1), ("web2", &web2)),
    };
    assert!(
        text(&outs[skipped[0]].stdout)
            .contains(&format!("host {} maintains the repository", pruner.0)),
        "the log line names the holder: {outs:?}"
    );
    assert_eq!(prunes(waiter.1, waiter.0), ["skipped"]);
    assert_eq!(prunes(pruner.1, pruner.0), ["ok"]);
    let mut expected = pairs(&[(pruner.0, "sql"), (waiter.0, "sql"), (waiter.0, "sql")]);
    expected.sort();
    assert_eq!(snapshots(&f, &rest), expected);
    // The lease was released: the other prunes next.
    run(waiter.1, &["prune"]);
    assert_eq!(
        snapshots(&f, &rest),
        pairs(&[("web1", "sql"), ("web2", "sql")])
    );
}

#[test]
fn agents_pruning_on_the_same_schedule_count_skips_not_failures() {
    let f = Fixture::new();
    let rest = RestServer::start(&f.path("served"), false);
    let server = Server::start(&fleet_config(&f, "", &["web1", "web2"]), "127.0.0.1:0");
    let slow = slow_restic(&f, 3);
    let extra = "retention: {keep_last: 1}\nprune_schedule: \"@every 2s\"\ncatch_up: false\n";
    let web1 = host(&f, "web1", &rest, Some(&server), extra);
    let web2 = host(&f, "web2", &rest, Some(&server), extra);
    for (config, name) in [(&web1, "web1"), (&web2, "web2")] {
        source(&f, name, "sql", "");
        back_up_twice(config);
        use_restic(config, &slow);
    }
    let agents = [
        Agent::start_with(&web1, &["--http-addr", "127.0.0.1:0"]),
        Agent::start_with(&web2, &["--http-addr", "127.0.0.1:0"]),
    ];
    let addrs: Vec<String> = agents.iter().map(Agent::addr).collect();
    let metric = |text: &str, name: &str| -> u64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let both = eventually(Duration::from_secs(60), || {
        let texts: Vec<String> = addrs.iter().map(|a| get(a, "/metrics").1).collect();
        let skipped: u64 = texts
            .iter()
            .map(|t| metric(t, "tabacco_prune_skipped_total"))
            .sum();
        let pruned = texts
            .iter()
            .any(|t| t.contains("\ntabacco_last_pruned_timestamp_seconds "));
        (skipped > 0 && pruned).then_some(texts)
    });
    let logs: Vec<String> = agents.iter().map(Agent::stderr).collect();
    let texts = both.unwrap_or_else(|| panic!("no prune and skip: {logs:?}"));
    for text in &texts {
        assert_eq!(metric(text, "tabacco_prune_failures_total"), 0, "{logs:?}");
        crate::common::promtool_accepts(text);
    }
    assert!(
        logs.iter().any(|l| l.contains("prune skipped: host web")),
        "{logs:?}"
    );
    assert!(!logs.iter().any(|l| l.contains("prune failed")), "{logs:?}");
    // The agents' plans carry their sources' policies, for a maintainer.
    let (status, policies) = server.request("GET", "/api/policies", Some("web1-secret"), "");
    assert_eq!(status, 200);
    let policies: serde_json::Value = serde_json::from_str(&policies).unwrap();
    assert_eq!(
        policies,
        serde_json::json!([
            {"host": "web1", "source": "sql", "retention": {"keep_last": 1}},
            {"host": "web2", "source": "sql", "retention": {"keep_last": 1}},
        ])
    );
}

#[test]
fn a_host_that_cannot_ask_the_metadb_for_the_lease_does_not_prune() {
    let f = Fixture::new();
    let rest = RestServer::start(&f.path("served"), false);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let web1 = host(&f, "web1", &rest, None, "retention: {keep_last: 1}\n");
    source(&f, "web1", "sql", "");
    back_up_twice(&web1);
    let yaml = std::fs::read_to_string(&web1).unwrap();
    std::fs::write(
        &web1,
        format!("{yaml}metadb: {{url: \"http://{closed}\", request_max_timeout: 2s}}\n"),
    )
    .unwrap();
    let out = tabacco(&web1, &["prune"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let said = text(&out.stderr);
    assert!(
        said.contains("\ntabacco: cannot take the maintenance lease: metadb: unavailable: "),
        "{said}"
    );
    assert_eq!(snapshots(&f, &rest).len(), 2, "nothing pruned");
}

#[test]
fn a_lease_left_by_a_dead_host_expires_and_is_taken_over() {
    let f = Fixture::new();
    let rest = RestServer::start(&f.path("served"), false);
    let server = Server::start(&fleet_config(&f, "", &["web1", "web2"]), "127.0.0.1:0");
    let web2 = host(
        &f,
        "web2",
        &rest,
        Some(&server),
        "retention: {keep_last: 1}\n",
    );
    source(&f, "web2", "sql", "");
    back_up_twice(&web2);
    let config: serde_json::Value =
        serde_json::from_str(&restic(&f, &rest, &["cat", "config"])).unwrap();
    let id = config["id"].as_str().unwrap();
    // web1 took the lease for 3 s and died: nothing renews it.
    publish(&server, "web1", id);
    let lease =
        |holder: &str, ttl: u32| format!(r#"{{"name":"{id}","holder":"{holder}","ttl":{ttl}}}"#);
    let (status, body) = server.request(
        "POST",
        "/api/leases",
        Some("web1-secret"),
        &lease("web1", 3),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"granted\":true"), "{body}");
    // A host token takes leases only for its own host.
    let (status, _) = server.request(
        "POST",
        "/api/leases",
        Some("web2-secret"),
        &lease("web1", 3),
    );
    assert_eq!(status, 403);

    let out = run(&web2, &["prune"]);
    let said = text(&out.stdout);
    assert!(
        said.starts_with("skipped: host web1 maintains the repository (its lease runs until "),
        "{said}"
    );
    assert_eq!(snapshots(&f, &rest).len(), 2, "nothing pruned");
    // Leases are kept in whole seconds: 3 s last at most 4.
    std::thread::sleep(Duration::from_secs(4));
    let out = run(&web2, &["prune"]);
    assert_eq!(text(&out.stdout), "");
    assert_eq!(snapshots(&f, &rest), pairs(&[("web2", "sql")]));
    assert_eq!(prunes(&web2, "web2"), ["ok", "skipped"]);
}

#[test]
fn a_host_without_maintenance_backs_up_to_an_append_only_server_and_never_deletes() {
    let f = Fixture::new();
    let rest = RestServer::start(&f.path("served"), true);
    let extra = "maintenance: false\nretention: {keep_last: 1}\nprune_schedule: \"@every 1s\"\n";
    let web1 = host(&f, "web1", &rest, None, extra);
    source(&f, "web1", "sql", "");
    back_up_twice(&web1);
    assert_eq!(snapshots(&f, &rest).len(), 2);

    let out = tabacco(&web1, &["prune"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        text(&out.stderr),
        "tabacco: prune refused: this host has maintenance: false: it never forgets, prunes or checks (see tabacco.yml(5))\n"
    );
    let out = run(&web1, &["-v", "verify"]);
    let said = text(&out.stderr);
    assert!(
        said.contains("restic check not run (maintenance: false)"),
        "{said}"
    );
    let check = run(&web1, &["check"]);
    let said = text(&check.stdout);
    assert!(
        said.contains("\nmaintenance false (never forgets, prunes or checks)\n"),
        "{said}"
    );

    // The agent never schedules a prune.
    let agent = Agent::start_with(&web1, &[]);
    std::thread::sleep(Duration::from_secs(3));
    let log = agent.stderr();
    assert!(!log.contains("prune"), "{log}");
    assert_eq!(snapshots(&f, &rest).len(), 2, "nothing deleted");
}

#[test]
fn a_prune_refused_by_an_append_only_server_fails_clearly_and_keeps_the_records() {
    let f = Fixture::new();
    let rest = RestServer::start(&f.path("served"), true);
    let web1 = host(&f, "web1", &rest, None, "retention: {keep_last: 1}\n");
    source(&f, "web1", "sql", "");
    back_up_twice(&web1);
    let started = std::time::Instant::now();
    let out = tabacco(&web1, &["prune"]).output().unwrap();
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let said = text(&out.stderr);
    // restic 0.14 gives up on the refused DELETE itself (after ~44 s of
    // its own retries) and fails; 0.18.0 says so and exits 0.
    assert!(
        said.contains("the repository refuses deletion (append-only?): set maintenance: false on a host that may not delete"),
        "{said}"
    );
    eprintln!("append-only prune failed after {elapsed:?}: {said}");
    assert!(
        elapsed < Duration::from_secs(120),
        "no retry loop: {elapsed:?}"
    );
    assert_eq!(snapshots(&f, &rest).len(), 2);
    let found = run(&web1, &["query", "--json", "--versions", "10", "*"]);
    let found: Vec<serde_json::Value> = serde_json::from_slice(&found.stdout).unwrap();
    assert_eq!(
        found.len(),
        2,
        "the records of snapshots that still exist stay"
    );
}

#[test]
fn a_maintainer_prunes_other_hosts_by_their_policies_and_leaves_unknown_ones_alone() {
    let f = Fixture::new();
    let rest = RestServer::start(&f.path("served"), false);
    let server = Server::start(&fleet_config(&f, "", &["web1", "web2"]), "127.0.0.1:0");
    // One dataset at a time: restic 0.18.0 reading an index another
    // restic is still writing through `rclone serve restic` fails the
    // backup ("LoadRaw(<index/...>): invalid data returned").
    let web1 = host(
        &f,
        "web1",
        &rest,
        Some(&server),
        "queue_config: {concurrency: 1}\n",
    );
    source(&f, "web1", "sql", "retention: {keep_last: 1}\n");
    source(&f, "web1", "logs", "");
    back_up_twice(&web1);
    let web2 = host(&f, "web2", &rest, Some(&server), "maintenance: true\n");
    assert_eq!(snapshots(&f, &rest).len(), 4);

    let out = run(&web2, &["prune", "--dry-run"]);
    let said = text(&out.stdout);
    assert!(
        said.starts_with("would forget:\n") && said.contains("  web1  "),
        "{said}"
    );
    run(&web2, &["prune"]);
    assert_eq!(
        snapshots(&f, &rest),
        pairs(&[("web1", "logs"), ("web1", "logs"), ("web1", "sql")])
    );
    // The metadb follows: web1's records of the forgotten snapshot are gone.
    let found = run(&web1, &["query", "--json", "--versions", "10", "sql/*"]);
    let found: Vec<serde_json::Value> = serde_json::from_slice(&found.stdout).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    // Another host's records go only by the holder of the lease.
    let body = r#"{"host":"web1","dataset_ids":["x"],"lease":"nothing"}"#;
    let (status, _) = server.request("POST", "/api/remove_datasets", Some("web2-secret"), body);
    assert_eq!(status, 403);
}

#[test]
fn the_check_walks_the_repository_in_slices_and_records_the_whole() {
    let f = Fixture::new();
    let rest = RestServer::start(&f.path("served"), false);
    let server = Server::start(&fleet_config(&f, "", &["web1"]), "127.0.0.1:0");
    let web1 = host(&f, "web1", &rest, Some(&server), "check_slices: 3\n");
    source(&f, "web1", "sql", "");
    run(&web1, &["run"]);
    let read_back = "tabacco_metadb_repository_read_back_timestamp_seconds{";
    let (_, metrics) = server.request("GET", "/metrics", None, "");
    assert!(!metrics.contains(read_back), "{metrics}");
    for slice in 1..=3 {
        let out = run(&web1, &["-v", "verify"]);
        let said = text(&out.stderr);
        assert!(
            said.contains(&format!("restic check passed, slice {slice}/3 read back")),
            "{said}"
        );
    }
    // A scrape reads the database at most every 5 s.
    let metrics = eventually(Duration::from_secs(10), || {
        let (_, metrics) = server.request("GET", "/metrics", None, "");
        metrics.contains(read_back).then_some(metrics)
    })
    .expect("the whole repository's read back is on /metrics");
    assert!(
        metrics.contains(
            "tabacco_metadb_atom_restored_timestamp_seconds{host=\"web1\",atom=\"sql/sql/db\"} "
        ),
        "{metrics}"
    );
    crate::common::promtool_accepts(&metrics);
    let out = run(&web1, &["status", "--proofs", "--json"]);
    let proofs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let repository = &proofs["repositories"][0];
    assert_eq!(
        (&repository["slices"], &repository["next_slice"]),
        (&3.into(), &1.into()),
        "{proofs}"
    );
    assert!(repository["whole_read"].is_string(), "{proofs}");
    assert_eq!(proofs["atoms"][0]["atom"], "sql/sql/db", "{proofs}");
    assert!(proofs["atoms"][0]["restored"].is_string(), "{proofs}");
    let out = run(&web1, &["-v", "verify"]);
    assert!(
        text(&out.stderr).contains("slice 1/3 read back"),
        "a new round"
    );
}

#[test]
fn a_lease_is_renewed_while_its_prune_runs() {
    let f = Fixture::new();
    let rest = RestServer::start(&f.path("served"), false);
    let server = Server::start(&fleet_config(&f, "", &["web1", "web2"]), "127.0.0.1:0");
    let keep = "retention: {keep_last: 1}\nlease_ttl: 1s\n";
    let web1 = host(&f, "web1", &rest, Some(&server), keep);
    let web2 = host(&f, "web2", &rest, Some(&server), keep);
    source(&f, "web1", "sql", "");
    back_up_twice(&web1);
    use_restic(&web1, &slow_restic(&f, 4));
    let mut cmd = tabacco(&web1, &["prune"]);
    let first = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Well past its 1 s ttl, web1's lease still holds: it is renewed.
    std::thread::sleep(Duration::from_millis(3000));
    let out = run(&web2, &["prune"]);
    let said = text(&out.stdout);
    assert!(
        said.starts_with("skipped: host web1 maintains the repository"),
        "{said}"
    );
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(snapshots(&f, &rest), pairs(&[("web1", "sql")]));
}

/// Publishes that `host` uses the repository of restic id `id`, as its
/// `tabacco run` would.
fn publish(server: &Server, host: &str, id: &str) {
    let plan = serde_json::json!({
        "host": host, "sources": [],
        "repositories": [{"name": "primary", "id": id, "location": "/elsewhere"}],
    });
    let token = format!("{host}-secret");
    let (status, body) = server.request("POST", "/api/plans", Some(&token), &plan.to_string());
    assert_eq!(status, 200, "{body}");
}

// Issue 25: a host token took any lease ("anything") and, holding it,
// removed another host's records; and advanced any repository's check.
#[test]
fn a_host_takes_leases_and_removes_records_only_of_repositories_it_uses() {
    let f = Fixture::new();
    let rest = RestServer::start(&f.path("served"), false);
    let server = Server::start(&fleet_config(&f, "", &["web1", "web2"]), "127.0.0.1:0");
    let web1 = host(&f, "web1", &rest, Some(&server), "");
    source(&f, "web1", "sql", "");
    back_up_twice(&web1);
    let found = run(&web1, &["query", "--json", "sql/*"]);
    let found: Vec<serde_json::Value> = serde_json::from_slice(&found.stdout).unwrap();
    let dataset = found[0]["datasets"][0]["id"].as_str().unwrap().to_string();
    let config: serde_json::Value =
        serde_json::from_str(&restic(&f, &rest, &["cat", "config"])).unwrap();
    let id = config["id"].as_str().unwrap();
    let lease = |name: &str| format!(r#"{{"name":"{name}","holder":"web2","ttl":600}}"#);
    let take =
        |name: &str| server.request("POST", "/api/leases", Some("web2-secret"), &lease(name));

    // web2 publishes no repository: no lease, "anything" or web1's.
    for name in ["anything", id] {
        let (status, body) = take(name);
        assert_eq!(status, 403, "{name}: {body}");
        assert!(
            body.contains("host web2 does not publish repository"),
            "{body}"
        );
    }
    // Holding the lease of a repository of its own, it may not remove
    // web1's records, which are not in it.
    let own = "b".repeat(64);
    publish(&server, "web2", &own);
    let (status, body) = take(&own);
    assert!(status == 200 && body.contains("\"granted\":true"), "{body}");
    let remove = format!(r#"{{"host":"web1","dataset_ids":["{dataset}"],"lease":"{own}"}}"#);
    let (status, body) =
        server.request("POST", "/api/remove_datasets", Some("web2-secret"), &remove);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("host web1 does not publish repository"),
        "{body}"
    );
    // Nor advance the check of a repository whose lease it does not hold.
    let read = format!(r#"{{"repository":"{id}","slices":3,"slice":1}}"#);
    let (status, body) = server.request("POST", "/api/proofs/read", Some("web2-secret"), &read);
    assert_eq!(status, 403, "{body}");
    let read_own = format!(r#"{{"repository":"{own}","slices":3,"slice":1}}"#);
    let (status, body) = server.request("POST", "/api/proofs/read", Some("web2-secret"), &read_own);
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.request("POST", "/api/proofs/read", Some("secret"), &read);
    assert_eq!(status, 200, "the admin may");
    let found = run(&web1, &["query", "--json", "sql/*"]);
    let found: Vec<serde_json::Value> = serde_json::from_slice(&found.stdout).unwrap();
    assert_eq!(found.len(), 1, "web1's records stay");

    // Using web1's repository too, web2 may hold its lease and remove
    // web1's records recorded there (a maintainer's prune).
    publish(&server, "web2", id);
    let (status, body) = take(id);
    assert!(status == 200 && body.contains("\"granted\":true"), "{body}");
    let remove = format!(r#"{{"host":"web1","dataset_ids":["{dataset}"],"lease":"{id}"}}"#);
    let (status, body) =
        server.request("POST", "/api/remove_datasets", Some("web2-secret"), &remove);
    assert_eq!((status, body.as_str()), (200, r#"{"removed":1}"#));
}

// A maintainer may remove only the records of hosts that publish its
// repository: an older host's snapshots are left, not forgotten with
// their records kept.
#[test]
fn a_maintainer_leaves_the_snapshots_of_hosts_that_publish_no_repository() {
    let f = Fixture::new();
    let rest = RestServer::start(&f.path("served"), false);
    let server = Server::start(
        &fleet_config(&f, "", &["web1", "web2", "web3"]),
        "127.0.0.1:0",
    );
    let keep = "retention: {keep_last: 1}\n";
    let web1 = host(&f, "web1", &rest, Some(&server), "");
    source(&f, "web1", "sql", keep);
    back_up_twice(&web1);
    let web3 = host(&f, "web3", &rest, Some(&server), "");
    source(&f, "web3", "logs", keep);
    back_up_twice(&web3);
    // web3 now speaks as an older tabacco: a plan without repositories.
    let (status, _) = server.request(
        "POST",
        "/api/retire_host",
        Some("secret"),
        r#"{"host":"web3"}"#,
    );
    assert_eq!(status, 200);
    let plan = r#"{"host":"web3","replace":true,"sources":[{"source":"logs","schedule":"0 0 1 1 *","retention":{"keep_last":1}}]}"#;
    let (status, body) = server.request("POST", "/api/plans", Some("web3-secret"), plan);
    assert_eq!(status, 200, "{body}");
    let web2 = host(&f, "web2", &rest, Some(&server), "maintenance: true\n");
    let out = run(&web2, &["-v", "prune"]);
    assert!(
        text(&out.stderr).contains("host web3 does not publish this repository"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        snapshots(&f, &rest),
        pairs(&[("web1", "sql"), ("web3", "logs"), ("web3", "logs")])
    );
}
