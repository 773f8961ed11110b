//! Repositories as fleet objects (issue 25): hosts with repositories of
//! their own share one metadb, every record names the repository holding
//! it, and a restore by name reads from a repository this host can open
//! whose restic id matches, or is refused naming who can.

use crate::common::{restic_binary_yaml, Fixture, PASSWORD};
use crate::metadb::{fleet_config, through, Server};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

/// An agent.yml for `name` at `etc-NAME/agent.yml`: its own work_dir, the
/// local repository `repo` (created by the first backup), the metadb
/// `server` with the token `NAME-secret`, and `extra`.
fn host(f: &Fixture, name: &str, server: &Server, repo: &str, extra: &str) -> PathBuf {
    let metadb = through(f, name, Some(server));
    f.write(
        &format!("etc-{name}/agent.yml"),
        &format!(
            "hostname: {name}\nrepository:\n  params:\n    uri: {}\n    password: {PASSWORD}\nwork_dir: {}\ninit: auto\n{}\n{metadb}{extra}",
            f.path(repo).display(),
            f.path(&format!("work-{name}")).display(),
            restic_binary_yaml(),
        ),
    )
}

/// A pipe source `name` of host `host` with one atom, `NAME/HOST`.
fn source(f: &Fixture, host: &str, name: &str) {
    f.write(
        &format!("etc-{host}/sources/{name}.yml"),
        &format!("name: {name}\nhandler: pipe\nschedule: \"0 0 1 1 *\"\nparams:\n  backup_command: \"echo dump of {name} on {host}\"\n  restore_command: \"cat > /dev/null\"\natoms: [{{name: {host}}}]\n"),
    );
}

fn tabacco(config: &PathBuf, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tabacco"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

#[track_caller]
fn run(config: &PathBuf, args: &[&str]) -> Output {
    let out = tabacco(config, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The restic id of the repository at `repo`.
fn restic_id(f: &Fixture, repo: &str) -> String {
    let out = f
        .restic(&["cat", "config", "-r", &f.path(repo).display().to_string()])
        .success();
    let config: Value = serde_json::from_str(&out.stdout).unwrap();
    config["id"].as_str().unwrap().to_string()
}

/// Three hosts, each backing up its source `sql` to a repository of its
/// own (`repo-HOST`), and one metadb.
fn fleet(f: &Fixture) -> (Server, Vec<PathBuf>) {
    let hosts = ["web1", "web2", "web3", "ops"];
    let server = Server::start(&fleet_config(f, "", &hosts), "127.0.0.1:0");
    let configs = hosts[..3]
        .iter()
        .map(|name| {
            let config = host(f, name, &server, &format!("repo-{name}"), "");
            source(f, name, "sql");
            run(&config, &["run"]);
            config
        })
        .collect();
    (server, configs)
}

#[test]
fn every_record_names_its_repository_and_the_metadb_lists_them() {
    let f = Fixture::new();
    let (server, configs) = fleet(&f);
    let found = run(&configs[0], &["query", "--json", "sql/*"]);
    let found: Vec<Value> = serde_json::from_slice(&found.stdout).unwrap();
    assert_eq!(found.len(), 3);
    for backup in &found {
        let host = backup["host"].as_str().unwrap();
        let id = restic_id(&f, &format!("repo-{host}"));
        assert_eq!(backup["datasets"][0]["repository"], id.as_str(), "{host}");
    }
    let table = run(&configs[0], &["query", "--table", "sql/web2"]);
    let table = String::from_utf8_lossy(&table.stdout);
    let short = &restic_id(&f, "repo-web2")[..8];
    assert!(
        table.contains("REPOSITORY") && table.contains(&format!("  {short}")),
        "{table}"
    );
    let (status, body) = server.request("GET", "/api/repositories", Some("secret"), "");
    assert_eq!(status, 200, "{body}");
    let listed: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(listed.len(), 3, "{body}");
    let web1 = listed
        .iter()
        .find(|r| r["id"] == restic_id(&f, "repo-web1").as_str())
        .unwrap();
    assert_eq!(web1["users"][0]["host"], "web1");
    assert_eq!(web1["users"][0]["name"], "primary");
    assert_eq!(
        web1["users"][0]["location"],
        f.path("repo-web1").display().to_string().as_str()
    );
}

/// `repositories:` entries naming `repo-HOST` of each of `hosts` as
/// `wHOST`, with `password`.
fn further(f: &Fixture, hosts: &[(&str, &str)]) -> String {
    let mut yaml = String::from("repositories:\n");
    for (host, password) in hosts {
        yaml.push_str(&format!(
            "- name: w{host}\n  params: {{uri: {}, password: {password}}}\n",
            f.path(&format!("repo-{host}")).display()
        ));
    }
    yaml
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// Issue 25: a restore by name asked this host's repository for a snapshot
// that lives in another host's.
#[test]
fn an_operator_restores_by_name_from_the_repositories_it_names_and_is_refused_the_rest() {
    let f = Fixture::new();
    let (server, _) = fleet(&f);
    let ops = host(
        &f,
        "ops",
        &server,
        "repo-ops",
        &further(&f, &[("web1", PASSWORD), ("web2", PASSWORD)]),
    );
    run(&ops, &["init"]);
    let target = f.path("restored");
    let target_arg = target.display().to_string();
    run(
        &ops,
        &[
            "restore",
            "--host",
            "web1",
            "--target",
            &target_arg,
            "sql/web1",
        ],
    );
    let restored = std::fs::read_to_string(target.join("sql/web1")).unwrap();
    assert_eq!(restored, "dump of sql on web1\n");
    let dumped = run(&ops, &["dump", "--host", "web2", "sql/web2"]);
    assert_eq!(
        String::from_utf8_lossy(&dumped.stdout),
        "dump of sql on web2\n"
    );

    // web3's repository is not among ops's: refused before anything runs,
    // naming it, who uses it and what to do.
    let web3 = &restic_id(&f, "repo-web3")[..8];
    for args in [
        &[
            "restore",
            "--host",
            "web3",
            "--target",
            &target_arg,
            "sql/web3",
        ][..],
        &["dump", "--host", "web3", "sql/web3"],
        &["ls", "--host", "web3", "sql/web3"],
    ] {
        let out = tabacco(&ops, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let said = stderr(&out);
        assert!(
            said.contains(&format!(
                "sql/web3 of host web3 is held in repository {web3}, which this host is not configured for; hosts using it: web3 (as primary): restore it with --remote web3"
            )),
            "{said}"
        );
    }
    assert!(!target.join("sql/web3").exists());

    // A `repositories:` entry with a wrong password says so.
    let wrong = host(
        &f,
        "ops",
        &server,
        "repo-ops",
        &further(&f, &[("web3", "not-the-password")]),
    );
    let out = tabacco(&wrong, &["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("repository wweb3: "),
        "{}",
        stderr(&out)
    );
    let out = tabacco(&wrong, &["dump", "--host", "web3", "sql/web3"]);
    assert_eq!(out.status.code(), Some(1));
    let said = stderr(&out);
    assert!(
        said.contains("; repository wweb3 did not open: ") && said.contains("password"),
        "{said}"
    );

    // A record naming a repository no host publishes.
    let mut body: Value = serde_json::from_str(&crate::metadb::add_dataset_body(
        "b-ghost",
        "web3",
        "d-ghost",
        "sql/ghost",
    ))
    .unwrap();
    body["dataset"]["repository"] = Value::from("e".repeat(64));
    let (status, text) = server.request(
        "POST",
        "/api/add_dataset",
        Some("web3-secret"),
        &body.to_string(),
    );
    assert_eq!(status, 200, "{text}");
    let out = tabacco(&ops, &["dump", "--host", "web3", "sql/ghost"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is held in repository eeeeeeee, which this host is not configured for and no host publishes"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn batched_records_name_their_repository_too() {
    let f = Fixture::new();
    let server = Server::start(&fleet_config(&f, "", &["web1"]), "127.0.0.1:0");
    let web1 = host(&f, "web1", &server, "repo-web1", "");
    let atoms: Vec<String> = (1..=12).map(|i| format!("{{name: db{i}}}")).collect();
    f.write(
        "etc-web1/sources/sql.yml",
        &format!(
            "name: sql\nhandler: pipe\nparams:\n  backup_command: \"echo dump of ${{atom.name}}\"\natoms: [{}]\n",
            atoms.join(", ")
        ),
    );
    run(&web1, &["run"]);
    let found = run(&web1, &["query", "--json", "sql/*"]);
    let found: Vec<Value> = serde_json::from_slice(&found.stdout).unwrap();
    let id = restic_id(&f, "repo-web1");
    let named: Vec<&Value> = found
        .iter()
        .flat_map(|b| b["datasets"].as_array().unwrap())
        .map(|d| &d["repository"])
        .collect();
    assert_eq!(named.len(), 12);
    assert!(named.iter().all(|r| *r == id.as_str()), "{named:?}");
}

#[test]
fn a_reindexed_record_names_the_repository_it_was_rebuilt_from() {
    let f = Fixture::new();
    f.write_config(
        "etc/sources/sql.yml",
        "name: sql\nhandler: pipe\nparams: {backup_command: \"echo dump\"}\natoms: [{name: db1}]\n",
    );
    f.tabacco(&["init"]).success();
    f.tabacco(&["run"]).success();
    let id = restic_id(&f, "repo");
    assert_eq!(
        f.query(&["sql/*"])[0]["datasets"][0]["repository"],
        id.as_str()
    );
    std::fs::remove_file(f.path("work/metadb.sqlite")).unwrap();
    f.tabacco(&["reindex"]).success();
    assert_eq!(
        f.query(&["sql/*"])[0]["datasets"][0]["repository"],
        id.as_str()
    );
}
