//! Case 6: what tabacco costs a host before it backs anything up: the
//! stripped binary, the agent's memory with 1,000 sources, the metadb's
//! memory, and the start of a one-shot command.

use crate::daemon::Daemon;
use crate::measure::{interleaved, median, percentile, run};
use crate::{mib, seconds, Bench, Row};
use std::process::Command;
use std::time::Duration;

const SOURCES: usize = 1000;

pub fn case(bench: &Bench) -> Vec<Row> {
    let stripped = bench.scratch.path("tabacco-stripped");
    run(Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(bench.bin));
    let size = std::fs::metadata(&stripped)
        .expect("the stripped binary")
        .len();

    let starts = |program: &str, args: &[&str], into: &mut Vec<f64>| {
        for _ in 0..100 {
            into.push(run(Command::new(program).args(args)).wall.as_secs_f64());
        }
        0.0
    };
    let (mut version, mut true_) = (Vec::new(), Vec::new());
    interleaved(
        false,
        bench.runs,
        &mut [
            &mut || starts(bench.bin, &["version"], &mut version),
            &mut || starts("true", &[], &mut true_),
        ],
    );
    let (agent, metadb) = (agent_rss(bench), metadb_rss(bench));
    vec![
        Row::figure(
            6,
            "stripped release binary",
            mib(size >> 10),
            "≤ 8 MiB",
            Some(size <= 8 << 20),
        ),
        Row::figure(
            6,
            &format!("agent RSS at rest, {SOURCES} sources"),
            mib(agent),
            "≤ 16 MiB",
            Some(agent <= 16 << 10),
        ),
        Row::figure(
            6,
            "metadb RSS at rest, empty database",
            mib(metadb),
            "≤ 16 MiB",
            Some(metadb <= 16 << 10),
        ),
        Row {
            baseline: format!("{} (`true`)", seconds(median(&true_))),
            ratio: format!("p99 {}", seconds(percentile(&version, 0.99))),
            ..Row::figure(
                6,
                "start of `tabacco version` (median)",
                seconds(median(&version)),
                "≤ 5 ms",
                Some(median(&version) <= 0.005),
            )
        },
    ]
}

/// The agent's RSS 2 s after it started listening, with 1,000 sources of two
/// atoms each, none due.
fn agent_rss(bench: &Bench) -> u64 {
    let dir = bench.scratch.path("agent");
    let mut sources = String::new();
    for s in 0..SOURCES {
        sources.push_str(&format!(
            "- name: service{s:04}\n  handler: pipe\n  schedule: \"0 3 1 1 *\"\n  \
             params: {{backup_command: \"echo ${{atom.name}}\"}}\n  atoms: [{{name: a}}, {{name: b}}]\n"
        ));
    }
    bench
        .scratch
        .write("agent/etc/sources/services.yml", &sources);
    let config = bench.scratch.write(
        "agent/etc/agent.yml",
        &format!(
            "hostname: bench\nrepository: {{params: {{uri: {}/repo, password: bench}}}}\nwork_dir: {}/work\n",
            dir.display(),
            dir.display()
        ),
    );
    let agent = Daemon::start(Command::new(bench.bin).arg("--config").arg(config).args([
        "agent",
        "--http-addr",
        "127.0.0.1:0",
    ]));
    std::thread::sleep(Duration::from_secs(2));
    agent.rss_kib()
}

/// The metadb's RSS 2 s after it started listening on a new database.
fn metadb_rss(bench: &Bench) -> u64 {
    let config = bench.scratch.write(
        "metadb-empty/metadb.yml",
        &format!(
            "db_path: {}\n",
            bench.scratch.path("metadb-empty/db.sqlite").display()
        ),
    );
    let metadb = Daemon::metadb(bench.bin, &config);
    std::thread::sleep(Duration::from_secs(2));
    metadb.rss_kib()
}
