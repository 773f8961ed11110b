//! `make bench`: what tabacco adds on top of raw restic, how far one metadb
//! scales (case 7: a fleet of 10,000 hosts), what a copy costs (case 10),
//! how fast the console's fleet page answers for such a fleet (case 11),
//! what removing a long-kept source's datasets costs (case 12),
//! what the shipped postgresql handler adds to `pg_dump | restic` (case 13),
//! what batching many pipe atoms into one restic process saves (case 14),
//! what a repository's size costs each backup, shared or sharded (case 15),
//! and what tabacco holds in
//! memory and on disk. Every case runs
//! several times interleaved with its baseline, in one process, and one
//! table of medians and ratios comes out at the end, ready for
//! BENCHMARKS.md.
//!
//! `BENCH_RUNS` (default 6) sets the rounds, `BENCH_CASES` (e.g. `1,5`) picks
//! cases, `BENCH_RESTIC` names the restic both tabacco and the baselines
//! run (default `restic` on PATH). Case 15 runs only when `BENCH_CASES`
//! names it: `BENCH_RESTIC_OTHER` names a second restic it measures too,
//! `BENCH_BLOBS` (default 100000) the blobs of its large repository.

mod backup;
mod batch;
mod console;
mod daemon;
mod database;
mod fleet;
mod footprint;
mod health;
mod measure;
mod metadb;
mod removal;
mod scratch;
mod shards;

use std::process::Command;

/// What every case needs.
pub struct Bench {
    pub scratch: scratch::Scratch,
    pub runs: usize,
    pub bin: &'static str,
}

/// One line of the result table.
pub struct Row {
    pub case: u8,
    pub what: String,
    pub tabacco: String,
    pub baseline: String,
    pub ratio: String,
    pub target: String,
    pub met: Option<bool>,
}

impl Row {
    /// Median wall times of tabacco and its baseline and their ratio, met
    /// when the ratio is at most `limit`.
    pub fn ratio(
        case: u8,
        what: &str,
        tabacco: &[f64],
        baseline: &[f64],
        limit: Option<f64>,
    ) -> Row {
        let (t, b) = (measure::median(tabacco), measure::median(baseline));
        Row {
            case,
            what: what.to_string(),
            tabacco: seconds(t),
            baseline: seconds(b),
            ratio: format!("{:.3}", t / b),
            target: limit.map(|l| format!("≤ {l:.2}")).unwrap_or_default(),
            met: limit.map(|l| t / b <= l),
        }
    }

    /// An absolute figure of tabacco's, met when `met` says so.
    pub fn figure(case: u8, what: &str, value: String, target: &str, met: Option<bool>) -> Row {
        Row {
            case,
            what: what.to_string(),
            tabacco: value,
            baseline: String::new(),
            ratio: String::new(),
            target: target.to_string(),
            met,
        }
    }
}

/// `12.34 s` or `56.7 ms`.
pub fn seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.1} ms", s * 1000.0)
    }
}

/// `12.3 MiB`.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn main() {
    let runs = env_number("BENCH_RUNS", 6);
    let cases: Vec<u8> = match std::env::var("BENCH_CASES") {
        Ok(list) => list
            .split(',')
            .filter_map(|c| c.trim().parse().ok())
            .collect(),
        // Case 15 fills repositories of 100,000 blobs and more: only when
        // named, to keep `make bench` within its time.
        Err(_) => (1..=14).collect(),
    };
    let bench = Bench {
        scratch: scratch::Scratch::new(),
        runs,
        bin: env!("CARGO_BIN_EXE_tabacco"),
    };
    let started = std::time::Instant::now();
    let mut rows = Vec::new();
    if cases
        .iter()
        .any(|c| (1..=4).contains(c) || *c == 7 || *c == 10)
    {
        rows.extend(backup::cases(&bench, &cases));
    }
    if cases.contains(&5) {
        rows.extend(metadb::case(&bench));
    }
    if cases.contains(&6) {
        rows.extend(footprint::case(&bench));
    }
    if cases.contains(&8) {
        rows.extend(health::case(&bench));
    }
    if cases.contains(&9) {
        rows.extend(fleet::case(&bench));
    }
    if cases.contains(&11) {
        rows.extend(console::case(&bench));
    }
    if cases.contains(&12) {
        rows.extend(removal::case(&bench));
    }
    if cases.contains(&13) {
        rows.extend(database::case(&bench));
    }
    if cases.contains(&14) {
        rows.extend(batch::case(&bench));
    }
    if cases.contains(&15) {
        rows.extend(shards::case(&bench));
    }
    println!("{}", machine(runs));
    println!("| # | what | tabacco | baseline | ratio | target | |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for r in &rows {
        let verdict = match r.met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "",
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {verdict} |",
            r.case, r.what, r.tabacco, r.baseline, r.ratio, r.target
        );
    }
    println!(
        "\nWhole benchmark: {}",
        seconds(started.elapsed().as_secs_f64())
    );
}

/// The machine, the versions and the date, for the record.
fn machine(runs: usize) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']))
        .unwrap_or("unknown CPU");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = measure::vm_kib("/proc/meminfo", "MemTotal:").unwrap_or(0);
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .unwrap_or("unknown")
        .trim_matches('"')
        .to_string();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let restic = output(Command::new(restic()).arg("version"));
    let date = output(Command::new("date").args(["-u", "+%Y-%m-%d"]));
    format!(
        "Machine: {cpu}, {cores} cores, {:.0} GiB RAM; {os}, Linux {}; {}; {date}; medians of {runs} runs.\n",
        memory as f64 / 1048576.0,
        kernel.trim(),
        restic.split(" compiled").next().unwrap_or(&restic),
    )
}

/// The restic of this run: `BENCH_RESTIC`, else `restic` on PATH.
pub fn restic() -> String {
    std::env::var("BENCH_RESTIC").unwrap_or_else(|_| "restic".into())
}

/// A command's trimmed stdout, or "?" if it cannot run.
pub fn output(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
