//! Case 15: what a repository's size costs each backup (issue 25). Every
//! restic process loads the repository's whole index, so a one-file backup
//! pays in time and memory for everything the repository holds: measured
//! against repositories of 0, 100,000 (and, with `BENCH_BLOBS=1000000`,
//! 1,000,000) blobs, with each restic of the run, and against the small
//! repository of a sharded layout (one host's share: 1% of the large one).
//! A repository is filled quickly by one backup of many tiny files of
//! different contents, a data blob each.

use crate::measure::{median, run};
use crate::{mib, output, restic, seconds, Bench, Row};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The large repository's blobs unless `BENCH_BLOBS` says otherwise.
const DEFAULT_BLOBS: usize = 100_000;

/// The part of the large repository one host's own repository holds in
/// the sharded layout (a hundred hosts sharing it).
const SHARD: usize = 100;

pub fn case(bench: &Bench) -> Vec<Row> {
    let large = crate::env_number("BENCH_BLOBS", DEFAULT_BLOBS);
    let mut sizes = vec![(0, "empty"), (large / SHARD, "sharded")];
    if large > DEFAULT_BLOBS {
        sizes.push((DEFAULT_BLOBS, "shared"));
    }
    sizes.push((large, "shared"));
    let restics = restics();
    let mut rows = Vec::new();
    for (blobs, layout) in sizes {
        let repo = filled(bench, blobs);
        for binary in &restics {
            let version = output(Command::new(binary).arg("version"));
            let version = version.split_whitespace().nth(1).unwrap_or("?").to_string();
            let (wall, rss) = one_file_backups(bench, binary, &repo);
            rows.push(Row {
                case: 15,
                what: format!(
                    "one-file backup, restic {version}, {layout} repository of {} blobs",
                    thousands(blobs)
                ),
                tabacco: seconds(wall),
                baseline: format!("peak RSS {}", mib(rss)),
                ratio: String::new(),
                target: "figures".into(),
                met: None,
            });
        }
        crate::scratch::remove(&repo);
    }
    rows
}

/// The restics to measure: this run's, and `BENCH_RESTIC_OTHER` if set.
fn restics() -> Vec<String> {
    let mut all = vec![restic()];
    if let Ok(other) = std::env::var("BENCH_RESTIC_OTHER") {
        if !other.is_empty() && Path::new(&other).exists() {
            all.push(other);
        }
    }
    all
}

/// A new repository holding `blobs` data blobs: one backup of as many
/// files of a line each, all different.
fn filled(bench: &Bench, blobs: usize) -> PathBuf {
    let repo = bench.scratch.path(&format!("shards/repo-{blobs}"));
    crate::scratch::remove(&repo);
    run(restic_in(&repo).arg("init"));
    if blobs > 0 {
        let files = bench.scratch.path(&format!("shards/files-{blobs}"));
        std::fs::create_dir_all(&files).expect("the files' directory");
        // A thousand files a directory: a tree blob each, as a real host's.
        for i in 0..blobs {
            let dir = files.join(format!("d{:04}", i / 1000));
            if i % 1000 == 0 {
                std::fs::create_dir_all(&dir).expect("a directory of files");
            }
            std::fs::write(dir.join(format!("f{i}")), format!("blob {i}\n")).expect("a tiny file");
        }
        run(restic_in(&repo)
            .args(["backup", "--host", "fill"])
            .arg(&files));
        crate::scratch::remove(&files);
    }
    repo
}

/// The median wall time and the peak RSS (the largest of the runs) of
/// `bench.runs` backups of one new one-line file into `repo`, with a cache
/// as a host has (the first run fills it).
fn one_file_backups(bench: &Bench, binary: &str, repo: &Path) -> (f64, u64) {
    let file = bench.scratch.path("shards/one-file");
    let (mut walls, mut peak) = (Vec::new(), 0);
    for i in 0..bench.runs.max(1) {
        std::fs::write(&file, format!("one line, run {i} of {binary}\n")).expect("the file");
        let measured = run(Command::new(binary)
            .env("RESTIC_REPOSITORY", repo)
            .env("RESTIC_PASSWORD", "bench")
            .env("RESTIC_CACHE_DIR", repo.with_extension("cache"))
            .args(["backup", "--host", "one"])
            .arg(&file));
        walls.push(measured.wall.as_secs_f64());
        peak = peak.max(measured.peak_rss_kib);
    }
    (median(&walls), peak)
}

/// This run's restic on `repo`.
fn restic_in(repo: &Path) -> Command {
    let mut cmd = Command::new(restic());
    cmd.env("RESTIC_REPOSITORY", repo)
        .env("RESTIC_PASSWORD", "bench")
        .env("RESTIC_CACHE_DIR", repo.with_extension("cache"));
    cmd
}

/// `n` with thousands separated by commas.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
