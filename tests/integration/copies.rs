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
    f.query(&["*"])
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
fn a_backup_is_copied_and_restored_from_the_copy_when_the_repository_is_gone() {
    let f = Fixture::new();
    let server = RestServer::start(&f.path("served"), false);
    with_copy(&f, &format!("{}offsite", server.url), "");
    f.tabacco(&["run"]).success();
    assert_eq!(repositories(&f), [["primary", "offsite"]]);
    assert_eq!(snapshots_in(&f, "served/offsite"), 1);
}
