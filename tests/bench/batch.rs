//! Case 14: pipe atoms batched into one restic process (issue 30). A pipe
//! source of 1,000 atoms of 10 KiB, and one of 100 atoms of 1 MiB, each
//! atom `cat` of its own file: tabacco (batched, its default) against
//! (a) the same dump commands, one `sh -c` each, writing into a directory,
//! then one raw `restic backup` of it (target ≤ 1.3×), and against (b)
//! tabacco streaming each atom into a restic process of its own
//! (`batch_bytes: 0`, as before batching). The crossover: sources of 2, 5
//! and 10 atoms batched and not. Peak RSS of tabacco, and of restic backing
//! the area up (the baseline's same backup of the same files).
//!
//! `BENCH_BATCH_RUNS` (default 3) sets the rounds; (b) of 1,000 atoms takes
//! about 15 minutes a run, so it is timed on 100 atoms (`BENCH_BATCH_ALONE`
//! atoms) and reported per atom.

use crate::backup::Side;
use crate::measure::{interleaved, run};
use crate::scratch::random_file;
use crate::{mib, Bench, Row};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const CASE: u8 = 14;

/// Runs case 14.
pub fn case(bench: &Bench) -> Vec<Row> {
    let runs = crate::env_number("BENCH_BATCH_RUNS", 3);
    let alone = crate::env_number("BENCH_BATCH_ALONE", 100);
    let mut rows = Vec::new();
    rows.extend(against_raw(bench, runs, "small", 1000, 10 << 10, alone));
    rows.extend(against_raw(bench, runs, "large", 100, 1 << 20, 100));
    rows.extend(crossover(bench, runs));
    rows
}

/// `atoms` files of `bytes` each under data/batch-NAME, made once.
fn data(bench: &Bench, name: &str, atoms: usize, bytes: usize) -> std::path::PathBuf {
    let dir = bench.scratch.path(&format!("data/batch-{name}"));
    if !dir.exists() {
        fs::create_dir_all(&dir).expect("mkdir");
        for a in 0..atoms {
            random_file(&dir.join(format!("a{a:04}")), bytes, (3 << 40) + a as u64);
        }
    }
    dir
}

/// A pipe source `b` of atoms `a0000`.. (the first `atoms`), each `cat` of
/// its file in `dir`, with `extra` YAML.
fn source(dir: &Path, atoms: usize, extra: &str) -> String {
    let names: Vec<String> = (0..atoms).map(|a| format!("{{name: a{a:04}}}")).collect();
    format!(
        "name: b\nhandler: pipe\nparams: {{backup_command: \"cat {}/${{atom.name}}\"}}\natoms: [{}]\n{extra}",
        dir.display(),
        names.join(", ")
    )
}

/// `tabacco run` of `side` into a fresh repository: wall seconds and
/// tabacco's own peak RSS (KiB).
fn tabacco_run(bench: &Bench, side: &Side) -> (f64, u64) {
    side.fresh(bench);
    let m = run(&mut side.tabacco(bench, &["run"]));
    (m.wall.as_secs_f64(), m.peak_rss_kib)
}

/// Baseline (a): each atom's `cat` in a `sh -c` of its own into a
/// directory, then one `restic backup` of it from inside: wall seconds
/// and restic's peak RSS (KiB).
fn raw(bench: &Bench, side: &Side, dir: &Path, atoms: usize) -> (f64, u64) {
    side.fresh(bench);
    let staging = side.path("staging");
    crate::scratch::remove(&staging);
    let started = Instant::now();
    fs::create_dir_all(staging.join("b")).expect("mkdir");
    for a in 0..atoms {
        let name = format!("a{a:04}");
        let script = format!(
            "cat {}/{name} > {}/b/{name}",
            dir.display(),
            staging.display()
        );
        let status = Command::new("sh").arg("-c").arg(script).status();
        assert!(status.is_ok_and(|s| s.success()), "a dump failed");
    }
    let args: Vec<String> = ["backup", "--json", "--host", "bench", "--force", "--", "."]
        .iter()
        .map(|a| a.to_string())
        .collect();
    let m = run(side.restic(&args).current_dir(&staging));
    (started.elapsed().as_secs_f64(), m.peak_rss_kib)
}

/// Case 14 for `atoms` files of `bytes`: batched at concurrency 1 and 2
/// against baseline (a), and batched against (b) on the first `alone`.
fn against_raw(
    bench: &Bench,
    runs: usize,
    name: &str,
    atoms: usize,
    bytes: usize,
    alone: usize,
) -> Vec<Row> {
    let dir = data(bench, name, atoms, bytes);
    let what = format!("{atoms} pipe atoms of {}", human(bytes));
    let c1 = Side::new(
        bench,
        &format!("batch-{name}-1"),
        &source(&dir, atoms, ""),
        1,
    );
    let c2 = Side::new(
        bench,
        &format!("batch-{name}-2"),
        &source(&dir, atoms, ""),
        2,
    );
    let base = Side::new(bench, &format!("batch-{name}-raw"), "", 1);
    let (mut tabacco_peak, mut restic_peak) = (0, 0);
    let mut v1 = || {
        eprintln!("case 14: {what}, batched, concurrency 1");
        let (t, peak) = tabacco_run(bench, &c1);
        tabacco_peak = tabacco_peak.max(peak);
        t
    };
    let mut v2 = || {
        eprintln!("case 14: {what}, batched, concurrency 2");
        tabacco_run(bench, &c2).0
    };
    let mut va = || {
        eprintln!("case 14: {what}, dumps into a directory + one restic backup");
        let (t, peak) = raw(bench, &base, &dir, atoms);
        restic_peak = restic_peak.max(peak);
        t
    };
    let times = interleaved(false, runs, &mut [&mut v1, &mut va, &mut v2]);
    let mut rows = vec![
        Row::ratio(
            CASE,
            &format!(
                "{what}, batched (concurrency 1) vs the dumps into a directory + one restic backup"
            ),
            &times[0],
            &times[1],
            Some(1.3),
        ),
        Row::ratio(CASE, "same, concurrency 2", &times[2], &times[1], Some(1.3)),
        Row::figure(
            CASE,
            &format!("{what}: tabacco's peak RSS"),
            mib(tabacco_peak),
            "",
            None,
        ),
        Row::figure(
            CASE,
            &format!("{what}: restic's peak RSS backing the area up"),
            mib(restic_peak),
            "",
            None,
        ),
    ];
    // (b): the first `alone` atoms, batched and one restic each.
    let batched = Side::new(
        bench,
        &format!("batch-{name}-some"),
        &source(&dir, alone, ""),
        1,
    );
    let single = Side::new(
        bench,
        &format!("batch-{name}-alone"),
        &source(&dir, alone, "batch_bytes: 0\n"),
        1,
    );
    let mut vb = || {
        eprintln!("case 14: {alone} of them, batched");
        tabacco_run(bench, &batched).0
    };
    let mut vs = || {
        eprintln!("case 14: {alone} of them, one restic process each");
        tabacco_run(bench, &single).0
    };
    let times = interleaved(false, 1.max(runs / 3), &mut [&mut vb, &mut vs]);
    rows.push(Row::ratio(
        CASE,
        &format!("{alone} of them batched vs one restic process per atom (before)"),
        &times[0],
        &times[1],
        None,
    ));
    let per_atom = crate::measure::median(&times[1]) / alone as f64;
    rows.push(Row::figure(
        CASE,
        &format!(
            "one restic process per atom: per atom ({atoms} ≈ {:.0} s)",
            per_atom * atoms as f64
        ),
        crate::seconds(per_atom),
        "",
        None,
    ));
    rows
}

/// Sources of 2, 5 and 10 atoms of 10 KiB, batched (`batch_from: 2`) and
/// not: where batching starts to pay.
fn crossover(bench: &Bench, runs: usize) -> Vec<Row> {
    let dir = data(bench, "small", 1000, 10 << 10);
    let mut rows = Vec::new();
    for atoms in [2, 5, 10] {
        let batched = Side::new(
            bench,
            &format!("batch-x{atoms}-on"),
            &source(&dir, atoms, "batch_from: 2\n"),
            1,
        );
        let single = Side::new(
            bench,
            &format!("batch-x{atoms}-off"),
            &source(&dir, atoms, "batch_bytes: 0\n"),
            1,
        );
        let mut on = || {
            eprintln!("case 14: {atoms} atoms, batched");
            tabacco_run(bench, &batched).0
        };
        let mut off = || {
            eprintln!("case 14: {atoms} atoms, one restic process each");
            tabacco_run(bench, &single).0
        };
        let times = interleaved(false, runs, &mut [&mut on, &mut off]);
        rows.push(Row::ratio(
            CASE,
            &format!("{atoms} atoms of 10 KiB: batched vs one restic process each"),
            &times[0],
            &times[1],
            None,
        ));
    }
    rows
}

fn human(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}
