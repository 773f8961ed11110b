//! Remote restores: an operator with an admin token files a plan in the
//! metadb; the agent of the host it names, and only that one, picks it up,
//! carries it out and reports back; `--wait` follows it to the end.

use crate::agent::Agent;
use crate::common::Fixture;
use crate::metadb::{metadb_config, Server};
use std::fs;
use std::time::Duration;

/// An agent.yml for `host` with its own work_dir, the fixture's repository,
/// and the metadb at `url` with the token in `token`.
fn host_config(f: &Fixture, host: &str, url: &str, token: &str) -> std::path::PathBuf {
    let work = f.path(&format!("work-{host}"));
    let repository = f.repository_yaml().replace(
        &format!("work_dir: {}", f.path("work").display()),
        &format!("work_dir: {}", work.display()),
    );
    let token_file = f.write(&format!("etc-{host}/token"), token);
    let config = f.write(
        &format!("etc-{host}/agent.yml"),
        &format!(
            "hostname: {host}\n{repository}metadb:\n  url: {url}\n  token_file: {}\n",
            token_file.display()
        ),
    );
    f.write_config(
        &format!("etc-{host}/sources/users.yml"),
        "name: users\nhandler: file\nschedule: \"0 0 1 1 *\"\nparams: {path: ROOT/data/users}\n",
    );
    config
}

#[test]
fn a_restore_request_is_carried_out_by_its_host_only() {
    let f = Fixture::new();
    for (name, secret) in [
        ("web1", "t1"),
        ("web2", "t2"),
        ("web3", "t3"),
        ("admin", "ta"),
    ] {
        f.write(&format!("tokens/{name}"), secret);
    }
    let tokens = format!(
        "tokens:\n  - {{token_file: {r}/tokens/web1, host: web1}}\n  - {{token_file: {r}/tokens/web2, host: web2}}\n  - {{token_file: {r}/tokens/web3, host: web3}}\n  - {{token_file: {r}/tokens/admin, role: admin}}\n",
        r = f.root.display()
    );
    let server = Server::start(&metadb_config(&f, &tokens), "127.0.0.1:0");
    let url = server.url();
    f.write("data/users/alice/inbox", "alice mail");
    let web1 = host_config(&f, "web1", &url, "t1");
    let web2 = host_config(&f, "web2", &url, "t2");
    let web3 = host_config(&f, "web3", &url, "t3");
    let admin = host_config(&f, "admin", &url, "ta");
    let tabacco = |config: &std::path::Path, args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tabacco"));
        cmd.arg("--config").arg(config).args(args);
        crate::common::Cmd(cmd)
    };
    tabacco(&web1, &["run"]).success();

    let target = f.path("restored");
    let target_arg = target.to_str().unwrap();
    let args = [
        "restore", "--host", "web1", "--target", target_arg, "--remote", "web2", "--wait", "users",
    ];
    let refused = tabacco(&web3, &args).status(1);
    assert!(
        refused.stderr.contains("403"),
        "only an admin files restore requests: {}",
        refused.stderr
    );

    let agent2 = Agent::start_with(&web2, &[]);
    let agent3 = Agent::start_with(&web3, &[]);
    let waited = tabacco(&admin, &args).success();
    assert!(
        waited.stderr.contains("succeeded restored 1 atom"),
        "{}",
        waited.stderr
    );
    let restored = target
        .join(f.path("data/users").strip_prefix("/").unwrap())
        .join("alice/inbox");
    assert_eq!(fs::read_to_string(restored).unwrap(), "alice mail");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        agent2.stderr().contains("restore request "),
        "{}",
        agent2.stderr()
    );
    assert!(
        !agent3.stderr().contains("restore request "),
        "web3 picked up web2's request: {}",
        agent3.stderr()
    );

    // Without --wait the request id is printed; the outcome is kept.
    let no_wait: Vec<&str> = args.iter().copied().filter(|a| *a != "--wait").collect();
    let filed = tabacco(&admin, &no_wait).success();
    let id = filed.stdout.lines().last().unwrap().to_string();
    assert_eq!(id.len(), 16, "{}", filed.stdout);
    drop(agent3);
    drop(agent2);
}

#[test]
fn a_request_left_running_by_a_dead_agent_is_marked_failed() {
    let f = Fixture::new();
    f.write_config(
        "etc/sources/sql.yml",
        "name: sql\nhandler: pipe\nschedule: \"0 0 1 1 *\"\nparams: {backup_command: \"echo data\", restore_command: \"sleep 20; cat > ROOT/out\"}\n",
    );
    f.tabacco(&["run"]).success();
    let agent = Agent::start(&f, &[]);
    f.tabacco(&["restore", "--in-place", "--remote", "test-host", "sql"])
        .success();
    agent.wait_for("restoring 1 dataset", Duration::from_secs(30));
    drop(agent); // SIGKILL: no chance to report
    let state = || -> (String, String) {
        let db = rusqlite::Connection::open(f.path("work/metadb.sqlite")).unwrap();
        db.query_row("SELECT state, message FROM restore_requests", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    };
    assert_eq!(state().0, "running");
    let agent = Agent::start(&f, &[]);
    agent.wait_for(
        "restore requests left running by a previous agent marked failed",
        Duration::from_secs(30),
    );
    assert_eq!(
        state(),
        (
            "failed".into(),
            "abandoned: the agent stopped while carrying it out".into()
        )
    );
}
