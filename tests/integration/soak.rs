//! The soak (issue 26): two agents and one metadb share a repository
//! while, for `SOAK_SECS` seconds (default 240), the metadb, restic
//! children and the agents are killed with SIGKILL at random; then all
//! are started again until each source has backed up once more, and
//! stopped. It ends with every snapshot in the repository recorded exactly
//! once, every record's snapshot in the repository, no lock but those the
//! killed restics left (which `tabacco unlock` removes as stale) and
//! `restic check` clean. Minutes long, so ignored by `cargo test`: `make
//! soak` runs it, and prints its figures.

use crate::agent::Agent;
use crate::common::{has_lock, restic_binary, restic_binary_yaml, Fixture};
use crate::metadb::{metadb_config, Server};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A small random generator (xorshift), seeded from the clock; the seed is
/// printed so that a run can be told apart.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The agent.yml of host `host`, with its own work_dir and sources.
fn host(f: &Fixture, host: &str, url: &str) -> std::path::PathBuf {
    let work = |dir: &str| format!("work_dir: {}", f.path(dir).display());
    let mut yaml = f
        .repository_yaml()
        .replace(&work("work"), &work(&format!("work-{host}")))
        .replace("init: auto\n", "");
    if restic_binary_yaml().is_empty() {
        yaml.push_str(&format!("restic_binary: {}\n", restic_binary()));
    }
    f.write(
        &format!("{host}/sources/s.yml"),
        &format!(
            "- name: db\n  handler: pipe\n  schedule: \"@every 3s\"\n  params: {{backup_command: \"echo dump of ${{atom.name}} on {host}; head -c 100000 /dev/urandom | od -x; sleep 1\"}}\n  atoms: [{{name: a}}, {{name: b}}]\n\
             - name: files\n  handler: file\n  schedule: \"@every 4s\"\n  params: {{path: {data}}}\n",
            data = f.path("data").display()
        ),
    );
    f.write(
        &format!("{host}/agent.yml"),
        &format!("hostname: {host}\n{yaml}metadb:\n  url: {url}\n"),
    )
}

/// The process ids of the restic processes whose parent is `parent`.
fn restic_children(parent: u32) -> Vec<i32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // pid (comm) state ppid ...
        let Some((comm, rest)) = stat.split_once(") ") else {
            continue;
        };
        let ppid: u32 = rest
            .split(' ')
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if ppid == parent && comm.ends_with("(restic") {
            found.push(pid);
        }
    }
    found
}

/// The files below `dir`, in every subdirectory, but hidden ones (a
/// spool's `.lock`).
fn count_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| match e.file_type().is_ok_and(|t| t.is_dir()) {
                true => count_files(&e.path()),
                false => 1,
            })
            .sum()
    })
}

fn kill(pid: i32) {
    // SAFETY: kill(2) of a process this test started, or of its child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

#[test]
#[ignore = "minutes long: make soak"]
fn soak() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(240);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut random = Random(seed);
    let f = Fixture::new();
    f.write("data/x", "x");
    f.restic(&["init"]).success();
    let metadb_yml = metadb_config(&f, "");
    let mut server = Some(Server::start(&metadb_yml, "127.0.0.1:0"));
    let addr = server.as_ref().unwrap().addr.to_string();
    let url = format!("http://{addr}");
    let hosts = ["host-a", "host-b"].map(|h| host(&f, h, &url));
    let mut agents: Vec<Option<Agent>> = hosts
        .iter()
        .map(|c| Some(Agent::start_with(c, &[])))
        .collect();
    let mut kills: BTreeMap<&str, u32> = BTreeMap::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(500 + random.below(2500)));
        match random.below(3) {
            0 => {
                if let Some(s) = server.take() {
                    kill(s.pid() as i32);
                    let _ = s.wait();
                    *kills.entry("metadb").or_default() += 1;
                    std::thread::sleep(Duration::from_millis(random.below(4000)));
                }
                server = Some(Server::start(&metadb_yml, &addr));
            }
            1 => {
                let i = random.below(2) as usize;
                if let Some(agent) = &agents[i] {
                    for pid in restic_children(agent.pid()) {
                        kill(pid);
                        *kills.entry("restic").or_default() += 1;
                    }
                }
            }
            _ => {
                let i = random.below(2) as usize;
                if let Some(agent) = agents[i].take() {
                    kill(agent.pid() as i32);
                    drop(agent);
                    *kills.entry("agent").or_default() += 1;
                }
                std::thread::sleep(Duration::from_millis(random.below(2000)));
                agents[i] = Some(Agent::start_with(&hosts[i], &[]));
            }
        }
    }
    // Calm: every agent and the metadb up until each source of each host
    // has backed up once more (so what a killed job left is resolved),
    // then a clean stop.
    if server.is_none() {
        server = Some(Server::start(&metadb_yml, &addr));
    }
    for (i, agent) in agents.iter_mut().enumerate() {
        if agent.is_none() {
            *agent = Some(Agent::start_with(&hosts[i], &[]));
        }
    }
    std::thread::sleep(Duration::from_secs(40));
    for agent in agents.iter_mut() {
        let (status, _, log) = agent.take().unwrap().terminate(Duration::from_secs(60));
        assert!(status.success(), "{log}");
    }
    let server = server.take().unwrap();
    // SAFETY: kill(2) of the server this test started.
    unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) };
    let _ = server.wait();
    let spooled: usize = ["host-a", "host-b"]
        .iter()
        .map(|h| count_files(&f.path(&format!("work-{h}/spool"))))
        .sum();
    // What the repository holds and the metadb records.
    let out = f.restic(&["snapshots", "--json"]).success();
    let snapshots: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let short = |id: &str| id[..8].to_string();
    let in_repo: Vec<String> = snapshots
        .iter()
        .map(|s| short(s["id"].as_str().unwrap()))
        .collect();
    let db = rusqlite::Connection::open(f.path("metadb/db.sqlite")).unwrap();
    let mut statement = db.prepare("SELECT snapshot_id FROM datasets").unwrap();
    let recorded: Vec<String> = statement
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(|id| short(&id.unwrap()))
        .collect();
    let mut times: BTreeMap<&str, usize> = in_repo.iter().map(|id| (id.as_str(), 0)).collect();
    let mut unknown = Vec::new();
    for id in &recorded {
        match times.get_mut(id.as_str()) {
            Some(n) => *n += 1,
            None => unknown.push(id.clone()),
        }
    }
    let unrecorded: Vec<&&str> = times
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(id, _)| id)
        .collect();
    let twice: Vec<&&str> = times
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    let stale = count_files(&f.path("repo/locks"));
    let mut unlock = std::process::Command::new(env!("CARGO_BIN_EXE_tabacco"));
    unlock.arg("--config").arg(&hosts[0]).arg("unlock");
    crate::common::Cmd(unlock).success();
    eprintln!(
        "soak: {secs}s, seed {seed}: kills {kills:?}; {} snapshots, {} records, {} unrecorded, {} recorded twice, {} records without a snapshot, {spooled} records left in spools, {stale} locks left by killed restics (removed by tabacco unlock)",
        in_repo.len(),
        recorded.len(),
        unrecorded.len(),
        twice.len(),
        unknown.len()
    );
    assert!(unrecorded.is_empty(), "unrecorded: {unrecorded:?}");
    assert!(twice.is_empty(), "recorded twice: {twice:?}");
    assert!(
        unknown.is_empty(),
        "records without a snapshot: {unknown:?}"
    );
    assert!(!has_lock(&f.path("repo")), "a lock is left after unlock");
    f.restic(&["check"]).success();
}
