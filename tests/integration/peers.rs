//! What tabacco's peers give their users (issue 28): restic itself with the
//! configuration's repository and credentials (`tabacco restic`), the
//! repository's snapshots with their atoms (`tabacco snapshots`), and the
//! removal of stale locks that leaves live ones be (`tabacco unlock`).

use crate::common::{has_lock, restic_binary, Fixture, PASSWORD};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A fixture whose agent.yml gives the password by file and runs restic
/// through a wrapper that records its arguments and environment in
/// `restic-calls`; its repository created.
fn fixture() -> Fixture {
    let f = Fixture::new();
    f.restic(&["init"]).success();
    let pw = f.write("etc/restic.pw", &format!("{PASSWORD}\n"));
    let wrapper = f.write(
        "bin/restic",
        &format!(
            "#!/bin/sh\n{{ printf 'argv:'; printf ' %s' \"$@\"; printf '\\n'; env | grep '^RESTIC_'; }} >> {calls}\nexec {restic} \"$@\"\n",
            calls = f.path("restic-calls").display(),
            restic = restic_binary()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let agent = std::fs::read_to_string(f.config())
        .unwrap()
        .replace(
            &format!("password: {PASSWORD}"),
            &format!("password_file: {}", pw.display()),
        )
        .lines()
        .filter(|l| !l.starts_with("restic_binary:"))
        .collect::<Vec<_>>()
        .join("\n");
    f.write(
        "etc/agent.yml",
        &format!("{agent}\nrestic_binary: {}\n", wrapper.display()),
    );
    f
}

/// Peers (issue 28): there was no way to run restic with the
/// configuration's repository and credentials but to copy them onto a
/// command line.
#[test]
fn restic_runs_with_the_configurations_repository_and_credentials() {
    let f = fixture();
    let config = f.tabacco(&["restic", "cat", "config"]).success();
    let id: serde_json::Value = serde_json::from_str(&config.stdout).unwrap();
    assert!(id["id"].is_string(), "{config:?}");
    // restic's arguments as typed; the password only in its environment.
    let calls = std::fs::read_to_string(f.path("restic-calls")).unwrap();
    assert!(calls.contains("argv: cat config\n"), "{calls}");
    assert!(!calls
        .lines()
        .any(|l| l.starts_with("argv:") && l.contains(PASSWORD)));
    assert!(calls.contains("RESTIC_PASSWORD_FILE="), "{calls}");
    assert!(calls.contains(&format!("RESTIC_REPOSITORY={}", f.path("repo").display())));
    // restic's exit status is tabacco's; `--` ends tabacco's options.
    let missing = f.tabacco(&["restic", "--", "cat", "blob", "0000"]).run();
    assert_eq!(missing.code, Some(1), "{missing:?}");
    // A copy by name; a name that is none.
    f.restic_with_password(
        PASSWORD,
        &["init", "--repo", f.path("copy").to_str().unwrap()],
    )
    .success();
    let agent = std::fs::read_to_string(f.config()).unwrap();
    f.write(
        "etc/agent.yml",
        &format!(
            "{agent}copies:\n  - name: offsite\n    params: {{uri: {}}}\n",
            f.path("copy").display()
        ),
    );
    f.tabacco(&["restic", "--repository", "offsite", "cat", "config"])
        .success();
    let calls = std::fs::read_to_string(f.path("restic-calls")).unwrap();
    assert!(calls.contains(&format!("RESTIC_REPOSITORY={}", f.path("copy").display())));
    let unknown = f
        .tabacco(&["restic", "--repository", "tape", "snapshots"])
        .status(2);
    assert!(unknown.stderr.contains("tape"), "{unknown:?}");
    let bare = f.tabacco(&["restic"]).status(2);
    assert!(
        bare.stderr.contains("restic needs restic's arguments"),
        "{bare:?}"
    );
}

/// Peers (issue 28): the repository's snapshots, as restic sees them, with
/// the atoms tabacco's tags say each holds.
#[test]
fn snapshots_lists_the_repository_with_its_atoms() {
    let f = fixture();
    f.write("data/www/index.html", "hello\n");
    f.write(
        "etc/sources/all.yml",
        &format!(
            "- name: www\n  handler: file\n  params: {{path: {}}}\n- name: sql\n  handler: pipe\n  params: {{backup_command: \"echo dump\"}}\n  atoms: [{{name: db1}}]\n",
            f.path("data/www").display()
        ),
    );
    f.tabacco(&["run"]).success();
    f.write("data/other", "not tabacco's\n");
    f.restic(&[
        "backup",
        "--tag",
        "manual",
        f.path("data/other").to_str().unwrap(),
    ])
    .success();
    let json = f.tabacco(&["snapshots"]).success();
    let listed: Vec<serde_json::Value> = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(listed[0]["backup"].is_null(), "newest first: {listed:?}");
    assert_eq!(listed[0]["tags"], serde_json::json!(["manual"]));
    let mut atoms: Vec<(String, serde_json::Value)> = listed[1..]
        .iter()
        .map(|s| {
            (
                s["atoms"][0]["name"].as_str().unwrap().to_string(),
                s["atoms"][0]["path"].clone(),
            )
        })
        .collect();
    atoms.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        atoms,
        [
            ("sql/db1".to_string(), serde_json::Value::Null),
            (
                "www".to_string(),
                f.path("data/www").display().to_string().into()
            ),
        ]
    );
    assert_eq!(listed[1]["host"], "test-host");
    let table = f.tabacco(&["snapshots", "--table"]).success();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", table.stdout);
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["TIME", "HOST", "SNAPSHOT", "BACKUP", "ATOM", "PATH"]
    );
    assert!(
        lines[1].contains("(not tabacco's; tags manual)"),
        "{}",
        table.stdout
    );
    let none = f
        .tabacco(&["snapshots", "--host", "nobody", "--table"])
        .success();
    assert_eq!(none.stdout, "no snapshots\n");
}

/// A restic backup reading a stream that does not end, holding its lock
/// in the repository until its stdin is closed or it is killed.
pub(crate) fn holding_a_lock(f: &Fixture) -> Child {
    let child = Command::new(restic_binary())
        .args(["backup", "--stdin", "--stdin-filename", "held"])
        .env("RESTIC_REPOSITORY", f.path("repo"))
        .env("RESTIC_PASSWORD", PASSWORD)
        .env("RESTIC_CACHE_DIR", f.path("work/cache"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let held = crate::common::eventually(Duration::from_secs(20), || {
        has_lock(&f.path("repo")).then_some(())
    });
    assert!(held.is_some(), "restic took no lock");
    child
}

/// Peers (issue 28): a stale lock (its restic killed) is removed; a live one
/// (its restic runs on this host) is reported and stays, exit 1.
#[test]
fn unlock_removes_stale_locks_and_leaves_live_ones() {
    let f = fixture();
    let nothing = f.tabacco(&["unlock"]).success();
    assert_eq!(nothing.stdout, "repository primary: no locks\n");

    let mut live = holding_a_lock(&f);
    let refused = f.tabacco(&["unlock"]).status(1);
    assert!(
        refused.stdout.starts_with("live lock ")
            && refused.stdout.contains("its process runs on this host"),
        "{refused:?}"
    );
    assert!(
        refused.stderr.contains("1 live lock left in place"),
        "{refused:?}"
    );
    assert!(has_lock(&f.path("repo")));

    // Killed, its lock is stale.
    live.kill().unwrap();
    live.wait().unwrap();
    assert!(has_lock(&f.path("repo")));
    let removed = f.tabacco(&["unlock"]).success();
    assert!(
        removed.stdout.starts_with("removed stale lock "),
        "{removed:?}"
    );
    assert!(!has_lock(&f.path("repo")));
    // Never --remove-all.
    let calls = std::fs::read_to_string(f.path("restic-calls")).unwrap();
    assert!(
        calls.contains("argv: unlock\n") && !calls.contains("remove-all"),
        "{calls}"
    );
}
