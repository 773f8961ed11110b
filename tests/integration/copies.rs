//! Copies: snapshots copied into further repositories (one served over
//! REST on loopback), recorded per repository, restored from a copy when
//! the repository is gone, retried when a copy was away, and pruned by the
//! copy's own retention.

use crate::common::{Fixture, RestServer};
use serde_json::Value;

/// Gives `f`'s agent.yml a copy `offsite` at `uri` (with `extra` lines
/// under its entry), and a file source `www` of one file.
fn with_copy(f: &Fixture, uri: &str, extra: &str) {
    f.write(
        "etc/agent.yml",
        &format!(
            "hostname: test-host\n{}\ncopies:\n  - name: offsite\n    params:\n      uri: {uri}\n{extra}",
            f.repository_yaml()
        ),
    );
    f.write("data/www/index.html", "hello\n");
    f.write_config(
        "etc/sources/www.yml",
        "name: www\nhandler: file\nparams: {path: ROOT/data/www}\n",
    );
}

/// The `repositories` of every dataset `query --json` finds, newest first.
fn repositories(f: &Fixture) -> Vec<Vec<String>> {
    f.query(&["--versions", "10", "*"])
        .iter()
        .flat_map(|b| b["datasets"].as_array().unwrap().clone())
        .map(|d| match &d["repositories"] {
            Value::Array(r) => r.iter().map(|r| r.as_str().unwrap().to_string()).collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// How many snapshots the repository in `dir` (under the fixture) holds.
fn snapshots_in(f: &Fixture, dir: &str) -> usize {
    let repo = f.path(dir).display().to_string();
    let out = f.restic(&["snapshots", "--json", "-r", &repo]).success();
    serde_json::from_str::<Vec<Value>>(&out.stdout)
        .unwrap()
        .len()
}

#[test]
fn a_backup_is_copied_and_query_shows_both_repositories() {
    let f = Fixture::new();
    let server = RestServer::start(&f.path("served"), false);
    with_copy(&f, &format!("{}offsite", server.url), "");
    f.tabacco(&["run"]).success();
    assert_eq!(repositories(&f), [["primary", "offsite"]]);
    assert_eq!(snapshots_in(&f, "served/offsite"), 1);
}

#[test]
fn the_repository_gone_restore_reads_from_the_copy_and_names_it() {
    let f = Fixture::new();
    let server = RestServer::start(&f.path("served"), false);
    with_copy(&f, &format!("{}offsite", server.url), "");
    // Two sources back up at once, and both find the copy missing: they
    // used to create it together, and with restic 0.18 the REST server
    // kept a config that one source's key could not open ("config or key
    // is damaged").
    f.write_config(
        "etc/sources/sql.yml",
        "name: sql\nhandler: pipe\nparams: {backup_command: \"printf 'row 1\\\\nrow 2\\\\n'\", restore_command: \"cat\"}\n",
    );
    f.tabacco(&["run"]).success();
    // Picked by name, the copy answers with the primary still there.
    let ls = f
        .tabacco(&["ls", "--repository", "offsite", "www"])
        .success();
    assert!(ls.stdout.contains("index.html"), "{}", ls.stdout);
    assert!(!ls.stderr.contains("copy"), "{}", ls.stderr);
    let unknown = f.tabacco(&["ls", "--repository", "tape", "www"]).status(2);
    assert!(
        unknown
            .stderr
            .contains("no repository named \"tape\"; configured: primary offsite"),
        "{}",
        unknown.stderr
    );

    std::fs::remove_dir_all(f.path("repo")).unwrap();
    let dump = f.tabacco(&["dump", "sql"]).success();
    assert_eq!(dump.stdout, "row 1\nrow 2\n");
    assert!(
        dump.stderr.contains("reading it from copy offsite"),
        "{}",
        dump.stderr
    );
    let target = f.path("restored");
    let target = target.display().to_string();
    let run = f
        .tabacco(&["restore", "--target", &target, "www"])
        .success();
    assert!(
        run.stderr.contains("reading it from copy offsite"),
        "{}",
        run.stderr
    );
    let restored = f.path(&format!(
        "restored{}/index.html",
        f.path("data/www").display()
    ));
    assert_eq!(std::fs::read_to_string(restored).unwrap(), "hello\n");
    // A pipe atom streams back from the copy too, through its handler.
    let run = f.tabacco(&["restore", "--in-place", "sql"]).success();
    assert!(
        run.stderr.contains("reading it from copy offsite"),
        "{}",
        run.stderr
    );
    // The primary alone has nothing to give.
    let primary = f
        .tabacco(&[
            "restore",
            "--repository",
            "primary",
            "--target",
            &target,
            "www",
        ])
        .status(1);
    assert!(
        !primary.stderr.contains("copy offsite"),
        "{}",
        primary.stderr
    );
}

#[test]
fn a_copy_that_is_down_fails_the_run_keeps_the_record_and_catches_up_next_run() {
    let f = Fixture::new();
    let server = RestServer::start(&f.path("served"), false);
    with_copy(&f, &format!("{}offsite", server.url), "");
    // restic 0.18 retries an unreachable server for 15 minutes: the
    // source's timeout bounds the copy too.
    f.write_config(
        "etc/sources/www.yml",
        "name: www\nhandler: file\nparams: {path: ROOT/data/www}\ntimeout: 20s\n",
    );
    drop(server);
    let run = f.tabacco(&["run"]).status(1);
    assert!(
        run.stderr.contains("copy offsite") && run.stderr.contains("copied at its next run"),
        "{}",
        run.stderr
    );
    assert_eq!(
        repositories(&f),
        [["primary"]],
        "the primary's record stays"
    );
    let history = f.tabacco(&["history", "--json"]).success();
    let attempts: Vec<Value> = serde_json::from_str(&history.stdout).unwrap();
    assert_eq!(attempts[0]["state"], "ok", "the source's backup is ok");
    let status = f.tabacco(&["status", "--table"]).run();
    assert!(
        status.stdout.contains("offsite") && status.stdout.contains("1 dataset"),
        "{}",
        status.stdout
    );

    let server = RestServer::start(&f.path("served"), false);
    with_copy(&f, &format!("{}offsite", server.url), "");
    f.tabacco(&["run"]).success();
    assert_eq!(
        repositories(&f),
        [["primary", "offsite"], ["primary", "offsite"]],
        "the missed dataset was copied too"
    );
    assert_eq!(snapshots_in(&f, "served/offsite"), 2);
}

#[test]
fn a_copy_keeps_what_its_own_retention_keeps() {
    let f = Fixture::new();
    with_copy(
        &f,
        &f.path("offsite").display().to_string(),
        "    retention: {keep_last: 3}\n",
    );
    let agent = std::fs::read_to_string(f.config()).unwrap();
    f.write(
        "etc/agent.yml",
        &format!("{agent}retention: {{keep_last: 1}}\n"),
    );
    for i in 0..3 {
        f.write("data/www/index.html", &format!("version {i}\n"));
        f.tabacco(&["run"]).success();
    }
    assert_eq!(snapshots_in(&f, "offsite"), 3);
    let dry = f.tabacco(&["prune", "--dry-run"]).success();
    assert!(dry.stdout.starts_with("would forget:\n"), "{}", dry.stdout);
    f.tabacco(&["prune"]).success();
    assert_eq!(snapshots_in(&f, "repo"), 1);
    assert_eq!(snapshots_in(&f, "offsite"), 3);
    assert_eq!(
        repositories(&f),
        [vec!["primary", "offsite"], vec!["offsite"], vec!["offsite"]]
    );
    // A version the repository no longer holds is restored from the copy.
    let newest = f.query(&["www"])[0]["timestamp"]
        .as_str()
        .unwrap()
        .to_string();
    let target = f.path("old").display().to_string();
    let run = f
        .tabacco(&[
            "restore",
            "--older-than",
            &newest,
            "--target",
            &target,
            "www",
        ])
        .success();
    assert!(
        run.stderr.contains("reading it from copy offsite"),
        "{}",
        run.stderr
    );
    let restored = f.path(&format!("old{}/index.html", f.path("data/www").display()));
    assert_eq!(std::fs::read_to_string(restored).unwrap(), "version 1\n");
    // The copy passes a check and a restore drill of its own.
    let verify = f.tabacco(&["verify", "--repository", "offsite"]).success();
    assert!(!verify.stderr.contains("copy offsite"), "{}", verify.stderr);
}

#[test]
fn copies_go_through_a_metadb_server_and_a_host_records_only_its_own() {
    use crate::metadb::{add_dataset_body, fleet_config, Server};
    let f = Fixture::new();
    let config = fleet_config(&f, "", &["test-host", "web4"]);
    let server = Server::start(&config, "127.0.0.1:0");
    with_copy(&f, &f.path("offsite").display().to_string(), "");
    let agent = std::fs::read_to_string(f.config()).unwrap();
    f.write(
        "etc/agent.yml",
        &format!(
            "{agent}metadb:\n  url: {}\n  token_file: {}\n",
            server.url(),
            f.path("etc/test-host.token").display()
        ),
    );
    f.tabacco(&["run"]).success();
    assert_eq!(repositories(&f), [["primary", "offsite"]]);
    let lag = server
        .request("GET", "/api/copies/lag", Some("secret"), "")
        .1;
    let lag: Vec<Value> = serde_json::from_str(&lag).unwrap();
    assert_eq!(
        lag,
        [serde_json::json!({"host": "test-host", "repository": "offsite", "datasets": 0})]
    );

    let theirs = add_dataset_body("b9", "web4", "d9", "www");
    let web4 = Some("web4-secret");
    assert_eq!(
        server.request("POST", "/api/add_dataset", web4, &theirs).0,
        200
    );
    let copies = |host: &str| {
        serde_json::json!({"host": host, "repository": "offsite", "dataset_ids": ["d9"]})
            .to_string()
    };
    let mine = Some("test-host-secret");
    let (status, body) = server.request("POST", "/api/copies", mine, &copies("web4"));
    assert_eq!(status, 403, "{body}");
    // Naming itself, a host still records nothing of another's.
    let (status, body) = server.request("POST", "/api/copies", mine, &copies("test-host"));
    assert_eq!((status, body.as_str()), (200, "{\"recorded\":0}"));
    let bad = serde_json::json!({"host": "web4", "repository": "primary", "dataset_ids": ["d9"]});
    assert_eq!(
        server
            .request("POST", "/api/copies", web4, &bad.to_string())
            .0,
        400
    );
    assert_eq!(
        server
            .request("POST", "/api/copies", web4, &copies("web4"))
            .0,
        200
    );
}

#[test]
fn a_copy_is_pruned_under_its_own_lease_after_the_repository() {
    use crate::metadb::{fleet_config, Server};
    let f = Fixture::new();
    let server = Server::start(&fleet_config(&f, "", &["test-host", "web4"]), "127.0.0.1:0");
    with_copy(&f, &f.path("offsite").display().to_string(), "");
    let agent = std::fs::read_to_string(f.config()).unwrap();
    f.write(
        "etc/agent.yml",
        &format!(
            "{agent}retention: {{keep_last: 1}}\nmetadb:\n  url: {}\n  token_file: {}\n",
            server.url(),
            f.path("etc/test-host.token").display()
        ),
    );
    for i in 0..2 {
        f.write("data/www/index.html", &format!("version {i}\n"));
        f.tabacco(&["run"]).success();
    }
    // web4 maintains the copy (its lease is named by the copy's restic id).
    let offsite = f.path("offsite").display().to_string();
    let config = f.restic(&["cat", "config", "-r", &offsite]).success();
    let config: Value = serde_json::from_str(&config.stdout).unwrap();
    let plan = serde_json::json!({"host": "web4", "sources": [], "repositories": [
        {"name": "offsite", "id": config["id"], "location": offsite}]});
    let (status, body) =
        server.request("POST", "/api/plans", Some("web4-secret"), &plan.to_string());
    assert_eq!(status, 200, "{body}");
    let lease = serde_json::json!({"name": config["id"], "holder": "web4", "ttl": 600});
    let (status, body) = server.request(
        "POST",
        "/api/leases",
        Some("web4-secret"),
        &lease.to_string(),
    );
    assert!(status == 200 && body.contains("\"granted\":true"), "{body}");
    let run = f.tabacco(&["-v", "prune"]).success();
    assert!(
        run.stderr
            .contains("copy offsite: not pruned: host web4 maintains the repository"),
        "{}",
        run.stderr
    );
    assert_eq!(snapshots_in(&f, "repo"), 1);
    assert_eq!(snapshots_in(&f, "offsite"), 2);
    assert_eq!(
        repositories(&f),
        [vec!["primary", "offsite"], vec!["offsite"]]
    );

    let release = serde_json::json!({"name": config["id"], "holder": "web4"});
    let (status, body) = server.request(
        "POST",
        "/api/leases/release",
        Some("web4-secret"),
        &release.to_string(),
    );
    assert_eq!(status, 200, "{body}");
    f.tabacco(&["prune"]).success();
    assert_eq!(snapshots_in(&f, "offsite"), 1);
    assert_eq!(repositories(&f), [["primary", "offsite"]]);
}

#[test]
fn check_shows_the_copies_with_their_credentials_masked() {
    let f = Fixture::new();
    with_copy(
        &f,
        "rest:http://backup:s3cret@127.0.0.1:1/offsite",
        "    retention: {keep_daily: 30}\n",
    );
    let agent = std::fs::read_to_string(f.config()).unwrap();
    f.write("etc/agent.yml", &format!("{agent}repository_timeout: 2s\n"));
    // Opening the copy fails (nothing listens), and says so masked.
    let opened = f.tabacco(&["check"]).status(2);
    assert!(
        opened
            .stderr
            .contains("copy offsite: repository rest:http://backup:***@127.0.0.1:1/offsite "),
        "{}",
        opened.stderr
    );
    assert!(!opened.stderr.contains("s3cret"), "{}", opened.stderr);
    let check = f.tabacco(&["check", "--offline"]).success();
    assert!(
        check
            .stdout
            .contains("copy        offsite rest:http://backup:***@127.0.0.1:1/offsite, retention "),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.contains("\n  copies    offsite\n"),
        "{}",
        check.stdout
    );
    assert!(!check.stdout.contains("s3cret"), "{}", check.stdout);
    f.write_config(
        "etc/sources/www.yml",
        "name: www\nhandler: file\nparams: {path: ROOT/data/www}\ncopies: [tape]\n",
    );
    let refused = f.tabacco(&["check", "--offline"]).status(2);
    assert!(
        refused
            .stderr
            .contains("unknown copy \"tape\"; agent.yml has: offsite"),
        "{}",
        refused.stderr
    );
}
