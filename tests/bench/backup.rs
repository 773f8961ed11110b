//! Cases 1–4: tabacco's backups and restore against raw restic doing the
//! same work: the same paths, host, tags and options, learnt from the
//! snapshot a probe run of tabacco wrote. Each side backs up into its own
//! fresh repository, so neither deduplicates against the other. Case 7:
//! restoring one atom does not slow down as snapshots pile up. Case 10:
//! the time a copy (agent.yml's `copies:`) adds to a run, per GiB.

use crate::measure::{interleaved, run, run_with_stdin};
use crate::scratch::{random_file, remove};
use crate::{mib, restic, Bench, Row};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const PASSWORD: &str = "bench";
const GIB: usize = 1 << 30;
/// Case 1: 1 GiB in 100 atoms (directories) of 100 files.
const FILE_ATOMS: usize = 100;
const FILES_PER_ATOM: usize = 100;
/// Case 3: 100 atoms of 10 KiB (each costs restic's start, ~0.75 s here:
/// 200 made this case 6 of the bench's 15 minutes).
const SMALL_ATOMS: usize = 100;
const SMALL_BYTES: usize = 10 << 10;

/// One side of a comparison: a repository, a work_dir and a configuration
/// (used only by tabacco's sides).
pub struct Side {
    dir: PathBuf,
}

impl Side {
    /// A side named `name` whose agent backs up `source` (YAML).
    pub fn new(bench: &Bench, name: &str, source: &str, concurrency: usize) -> Side {
        let dir = bench.scratch.path(name);
        let side = Side { dir };
        let agent = format!(
            "hostname: bench\nrepository: {{params: {{uri: {}, password: {PASSWORD}}}}}\n\
             work_dir: {}\nqueue_config: {{concurrency: {concurrency}}}\nrestic_binary: {}\n",
            side.path("repo").display(),
            side.path("work").display(),
            restic_path(),
        );
        bench
            .scratch
            .write(&format!("{name}/etc/agent.yml"), &agent);
        bench
            .scratch
            .write(&format!("{name}/etc/sources/bench.yml"), source);
        side
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// `restic ARGS` on this side's repository, as tabacco runs it.
    pub fn restic(&self, args: &[String]) -> Command {
        let mut cmd = Command::new(restic());
        cmd.args(args)
            .env("RESTIC_REPOSITORY", self.path("repo"))
            .env("RESTIC_PASSWORD", PASSWORD)
            .env("RESTIC_CACHE_DIR", self.path("work/cache"))
            // tabacco reads restic's progress once a second; restic's
            // default with --json, 60 lines a second, costs a large backup
            // 5-10% on its own.
            .env("RESTIC_PROGRESS_FPS", "1");
        cmd
    }

    /// `tabacco --config etc/agent.yml ARGS`.
    pub fn tabacco(&self, bench: &Bench, args: &[&str]) -> Command {
        let mut cmd = Command::new(bench.bin);
        cmd.arg("--config")
            .arg(self.path("etc/agent.yml"))
            .args(args);
        cmd
    }

    /// An empty, initialised repository and an empty work_dir, with nothing
    /// left to write back (untimed):
    /// a copy of one template, because `restic init` calibrates its key
    /// derivation to the machine's load of the moment (scrypt p from 4 to 6
    /// here), and every later restic process pays for it, so repositories
    /// initialised one by one cost 0.4 to 0.7 s per restic process.
    pub fn fresh(&self, bench: &Bench) {
        remove(&self.path("repo"));
        remove(&self.path("work"));
        let template = bench.scratch.path("template-repo");
        if !template.exists() {
            let mut init = Command::new(restic());
            init.args(["init", "--repo"])
                .arg(&template)
                .env("RESTIC_PASSWORD", PASSWORD);
            run(&mut init);
        }
        run(Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(self.path("repo")));
        // The previous run's gigabyte would otherwise be written back to
        // disk while the next one runs, slowing whichever side comes next.
        run(&mut Command::new("sync"));
    }

    /// The snapshot a first `tabacco run` writes into a fresh repository,
    /// for the baseline to copy.
    pub fn probe(&self, bench: &Bench) -> serde_json::Value {
        eprintln!("probe run: {}", self.dir.display());
        self.fresh(bench);
        run(&mut self.tabacco(bench, &["run"]));
        self.snapshots().remove(0)
    }

    /// The repository's snapshots, oldest first.
    fn snapshots(&self) -> Vec<serde_json::Value> {
        let out = self
            .restic(&strings(&["snapshots", "--json"]))
            .stderr(Stdio::inherit())
            .output()
            .expect("restic snapshots");
        serde_json::from_slice(&out.stdout).expect("restic snapshots --json")
    }
}

/// [`restic`] as an absolute path, for `restic_binary`.
fn restic_path() -> String {
    let mut which = Command::new("sh");
    which.arg("-c").arg(format!("command -v {}", restic()));
    crate::output(&mut which)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// The `restic backup` arguments that write a snapshot like `snapshot`
/// (host, tags, `--json` as tabacco reads it), without the input.
fn backup_args(snapshot: &serde_json::Value) -> Vec<String> {
    let mut args = strings(&[
        "backup",
        "--json",
        "--host",
        "bench",
        "--time",
        "2026-01-01 00:00:00",
    ]);
    for tag in snapshot["tags"].as_array().expect("tags") {
        args.extend(["--tag".into(), tag.as_str().expect("a tag").into()]);
    }
    args
}

/// [`backup_args`] for a snapshot of standard input.
pub fn stdin_backup_args(snapshot: &serde_json::Value) -> Vec<String> {
    let mut args = backup_args(snapshot);
    let name = paths(snapshot)[0].trim_start_matches('/').to_string();
    args.extend(["--stdin".into(), "--stdin-filename".into(), name]);
    args
}

fn paths(snapshot: &serde_json::Value) -> Vec<String> {
    let paths = snapshot["paths"].as_array().expect("paths");
    paths
        .iter()
        .map(|p| p.as_str().expect("a path").to_string())
        .collect()
}

/// Runs cases 1–4 of `cases`.
pub fn cases(bench: &Bench, cases: &[u8]) -> Vec<Row> {
    let mut rows = Vec::new();
    if cases.contains(&1) || cases.contains(&4) {
        rows.extend(file_source(bench, cases.contains(&4)));
    }
    if cases.contains(&2) {
        rows.extend(pipe_stream(bench));
    }
    if cases.contains(&3) {
        rows.extend(small_datasets(bench));
    }
    if cases.contains(&7) {
        rows.extend(many_snapshots(bench));
    }
    if cases.contains(&10) {
        rows.extend(copy_cost(bench));
    }
    rows
}

/// Case 10: a pipe source streaming `BENCH_COPY_MIB` MiB (default 256),
/// and one of 16 MiB, each with one copy (a local repository) against the
/// same source without one; from the two sizes, what a copy adds per GiB
/// and what it adds whatever the size (its restic processes' start and
/// key derivation, the metadb's answers). Both sides start from fresh
/// repositories each round, the copy too (a copy of the same template as
/// the primary, so with its chunker parameters, as `init
/// --copy-chunker-params` would make it).
fn copy_cost(bench: &Bench) -> Vec<Row> {
    let large = crate::env_number("BENCH_COPY_MIB", 256);
    let small = 16;
    let (added_small, small_row) = copy_added(bench, small);
    let (added_large, large_row) = copy_added(bench, large);
    let per_gib = (added_large - added_small) / ((large - small) as f64 / 1024.0);
    let fixed = added_small - per_gib * small as f64 / 1024.0;
    vec![
        small_row,
        large_row,
        Row::figure(
            10,
            "time a copy adds per GiB (from 16 MiB and the size above)",
            crate::seconds(per_gib),
            "",
            None,
        ),
        Row::figure(
            10,
            "time a copy adds whatever the size",
            crate::seconds(fixed),
            "",
            None,
        ),
    ]
}

/// The median time one copy adds to a run of a `mib` MiB pipe source, and
/// the row comparing the two.
fn copy_added(bench: &Bench, mib: usize) -> (f64, Row) {
    let blob = bench.scratch.path(&format!("data/copy-blob-{mib}"));
    fs::create_dir_all(blob.parent().expect("in data/")).expect("mkdir");
    random_file(&blob, mib << 20, (3 << 40) + mib as u64);
    let source = format!(
        "name: dump\nhandler: pipe\nparams: {{backup_command: \"cat {}\"}}\n",
        blob.display()
    );
    let plain = Side::new(bench, &format!("copy-without-{mib}"), &source, 1);
    let copied = Side::new(bench, &format!("copy-with-{mib}"), &source, 1);
    let agent = copied.path("etc/agent.yml");
    let mut text = fs::read_to_string(&agent).expect("agent.yml");
    text.push_str(&format!(
        "copies: [{{name: offsite, params: {{uri: {}}}}}]\n",
        copied.path("offsite").display()
    ));
    fs::write(&agent, text).expect("agent.yml");
    let mut without = || {
        eprintln!("case 10: {mib} MiB without a copy");
        plain.fresh(bench);
        run(&mut plain.tabacco(bench, &["run"])).wall.as_secs_f64()
    };
    let mut with = || {
        eprintln!("case 10: {mib} MiB with a copy");
        copied.fresh(bench);
        remove(&copied.path("offsite"));
        run(Command::new("cp")
            .arg("-a")
            .arg(bench.scratch.path("template-repo"))
            .arg(copied.path("offsite")));
        let t = run(&mut copied.tabacco(bench, &["run"])).wall.as_secs_f64();
        let out = copied
            .restic(&strings(&["snapshots", "--json", "-r"]))
            .arg(copied.path("offsite"))
            .output()
            .expect("restic snapshots");
        let snapshots: Vec<serde_json::Value> =
            serde_json::from_slice(&out.stdout).expect("restic snapshots --json");
        assert_eq!(snapshots.len(), 1, "the copy holds the snapshot");
        t
    };
    let times = interleaved(true, bench.runs, &mut [&mut with, &mut without]);
    let added = crate::measure::median(&times[0]) - crate::measure::median(&times[1]);
    let row = Row::ratio(
        10,
        &format!("pipe source of {mib} MiB with one copy (local), against none"),
        &times[0],
        &times[1],
        None,
    );
    (added, row)
}

/// Case 1 (and 4, which restores from what case 1 wrote).
fn file_source(bench: &Bench, restore: bool) -> Vec<Row> {
    let data = bench.scratch.path("data/users");
    let file_bytes = GIB / (FILE_ATOMS * FILES_PER_ATOM);
    for a in 0..FILE_ATOMS {
        let dir = data.join(format!("u{a:03}"));
        fs::create_dir_all(&dir).expect("mkdir");
        for f in 0..FILES_PER_ATOM {
            random_file(
                &dir.join(format!("f{f:03}")),
                file_bytes,
                (a * 1000 + f) as u64,
            );
        }
    }
    let atoms: Vec<String> = (0..FILE_ATOMS)
        .map(|a| format!("{{name: u{a:03}}}"))
        .collect();
    let source = format!(
        "name: users\nhandler: file\nparams: {{path: {}}}\natoms: [{}]\n",
        data.display(),
        atoms.join(", ")
    );
    let tabacco = Side::new(bench, "files-tabacco", &source, 1);
    let restic = Side::new(bench, "files-restic", "", 1);
    let probe = tabacco.probe(bench);
    let mut args = backup_args(&probe);
    args.push("--".into());
    args.extend(paths(&probe));

    // 1% of the files change between a first and an incremental run.
    let changes = std::cell::Cell::new(0u64);
    let change_some = || {
        changes.set(changes.get() + 1);
        for a in (0..FILE_ATOMS).step_by(10) {
            for f in (0..FILES_PER_ATOM).step_by(10) {
                let path = data.join(format!("u{a:03}/f{f:03}"));
                random_file(
                    &path,
                    file_bytes,
                    changes.get() << 32 | (a * 1000 + f) as u64,
                );
            }
        }
    };
    let (mut incremental_t, mut incremental_r) = (Vec::new(), Vec::new());
    let mut first_t = || {
        eprintln!("case 1: tabacco");
        tabacco.fresh(bench);
        let first = run(&mut tabacco.tabacco(bench, &["run"]))
            .wall
            .as_secs_f64();
        change_some();
        incremental_t.push(
            run(&mut tabacco.tabacco(bench, &["run"]))
                .wall
                .as_secs_f64(),
        );
        first
    };
    let first_times = {
        let mut first_r = || {
            eprintln!("case 1: restic");
            restic.fresh(bench);
            let first = run(&mut restic.restic(&args)).wall.as_secs_f64();
            change_some();
            incremental_r.push(run(&mut restic.restic(&args)).wall.as_secs_f64());
            first
        };
        interleaved(true, bench.runs, &mut [&mut first_t, &mut first_r])
    };
    // The warm-up round's incremental runs go the way of its first runs.
    incremental_t.remove(0);
    incremental_r.remove(0);
    let mut rows = vec![
        Row::ratio(
            1,
            "file source, 1 GiB in 10,000 files, first run",
            &first_times[0],
            &first_times[1],
            Some(1.02),
        ),
        Row::ratio(
            1,
            "same, incremental (1% of the files changed)",
            &incremental_t,
            &incremental_r,
            Some(1.02),
        ),
    ];
    if restore {
        rows.push(restore_one_atom(bench, &tabacco));
    }
    rows
}

/// Case 4: one atom (10 MiB, 100 files) out of the newest backup of case 1.
fn restore_one_atom(bench: &Bench, side: &Side) -> Row {
    let snapshots = side.snapshots();
    let newest = snapshots.last().expect("case 1 wrote snapshots");
    let id = newest["id"].as_str().expect("a snapshot id").to_string();
    let atom_path = bench.scratch.path("data/users/u042");
    let check = |target: &Path| {
        let restored = target.join(atom_path.strip_prefix("/").expect("absolute"));
        let files = fs::read_dir(&restored).map_or(0, |d| d.count());
        assert_eq!(
            files,
            FILES_PER_ATOM,
            "restored into {}",
            restored.display()
        );
        remove(target);
    };
    let (target_t, target_r) = (
        bench.scratch.path("restored-t"),
        bench.scratch.path("restored-r"),
    );
    let mut tabacco = || {
        eprintln!("case 4: tabacco");
        let target = target_t.to_str().expect("a UTF-8 path");
        let t = run(&mut side.tabacco(bench, &["restore", "--target", target, "users/u042"]));
        check(&target_t);
        t.wall.as_secs_f64()
    };
    let mut restic = || {
        eprintln!("case 4: restic");
        let args = [
            "restore",
            &id,
            "--include",
            atom_path.to_str().expect("UTF-8"),
            "--target",
            target_r.to_str().expect("UTF-8"),
        ];
        let t = run(&mut side.restic(&strings(&args)));
        check(&target_r);
        t.wall.as_secs_f64()
    };
    let times = interleaved(true, bench.runs * 2, &mut [&mut tabacco, &mut restic]);
    Row::ratio(
        4,
        "restore one atom (10 MiB) of the 1 GiB file source",
        &times[0],
        &times[1],
        Some(1.05),
    )
}

/// Case 2: a pipe source streaming 1 GiB from a file, against
/// `cat FILE | restic backup --stdin` with the same tags.
fn pipe_stream(bench: &Bench) -> Vec<Row> {
    let blob = bench.scratch.path("data/blob");
    fs::create_dir_all(blob.parent().expect("in data/")).expect("mkdir");
    random_file(&blob, GIB, 1 << 40);
    let source = format!(
        "name: dump\nhandler: pipe\nparams: {{backup_command: \"cat {}\"}}\n",
        blob.display()
    );
    let tabacco = Side::new(bench, "pipe-tabacco", &source, 1);
    let restic = Side::new(bench, "pipe-restic", "", 1);
    let args = stdin_backup_args(&tabacco.probe(bench));

    let mut peak_kib = 0;
    let mut t = || {
        eprintln!("case 2: tabacco");
        tabacco.fresh(bench);
        let m = run(&mut tabacco.tabacco(bench, &["run"]));
        peak_kib = peak_kib.max(m.peak_rss_kib);
        m.wall.as_secs_f64()
    };
    let mut r = || {
        eprintln!("case 2: restic");
        restic.fresh(bench);
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "cat \"$0\" | exec \"$RESTIC\" \"$@\""])
            .env("RESTIC", crate::restic())
            .arg(&blob)
            .args(&args);
        cmd.envs(
            restic
                .restic(&[])
                .get_envs()
                .filter_map(|(k, v)| Some((k, v?))),
        );
        run(&mut cmd).wall.as_secs_f64()
    };
    let times = interleaved(true, bench.runs, &mut [&mut t, &mut r]);
    vec![
        Row::ratio(
            2,
            "pipe source streaming 1 GiB",
            &times[0],
            &times[1],
            Some(1.02),
        ),
        Row::figure(
            2,
            "tabacco's own peak RSS while streaming 1 GiB",
            mib(peak_kib),
            "< 16 MiB",
            Some(peak_kib < 16 << 10),
        ),
    ]
}

/// Case 3: a pipe source of [`SMALL_ATOMS`] atoms of 10 KiB at
/// concurrency 1 and 2, against as many sequential `restic backup --stdin`
/// calls.
fn small_datasets(bench: &Bench) -> Vec<Row> {
    let dir = bench.scratch.path("data/small");
    fs::create_dir_all(&dir).expect("mkdir");
    for a in 0..SMALL_ATOMS {
        random_file(
            &dir.join(format!("a{a:03}")),
            SMALL_BYTES,
            (2 << 40) + a as u64,
        );
    }
    let source = |atoms: usize| {
        let names: Vec<String> = (0..atoms).map(|a| format!("{{name: a{a:03}}}")).collect();
        format!(
            "name: small\nhandler: pipe\nparams: {{backup_command: \"cat {}/${{atom.name}}\"}}\natoms: [{}]\n",
            dir.display(),
            names.join(", ")
        )
    };
    // The probe backs up one atom; the others' tags differ only in its name.
    let probe = Side::new(bench, "small-probe", &source(1), 1).probe(bench);
    let one = serde_json::to_string(&probe).expect("JSON");
    let sides = [
        Side::new(bench, "small-tabacco-1", &source(SMALL_ATOMS), 1),
        Side::new(bench, "small-tabacco-2", &source(SMALL_ATOMS), 2),
    ];
    let restic = Side::new(bench, "small-restic", "", 1);
    let tabacco_run = |side: &Side| {
        side.fresh(bench);
        run(&mut side.tabacco(bench, &["run"])).wall.as_secs_f64()
    };
    let mut c1 = || {
        eprintln!("case 3: tabacco, concurrency 1");
        tabacco_run(&sides[0])
    };
    let mut c2 = || {
        eprintln!("case 3: tabacco, concurrency 2");
        tabacco_run(&sides[1])
    };
    let mut r = || {
        eprintln!("case 3: restic");
        restic.fresh(bench);
        let started = std::time::Instant::now();
        for a in 0..SMALL_ATOMS {
            let snapshot: serde_json::Value =
                serde_json::from_str(&one.replace("a000", &format!("a{a:03}"))).expect("JSON");
            let args = stdin_backup_args(&snapshot);
            let input = fs::File::open(dir.join(format!("a{a:03}"))).expect("open");
            run_with_stdin(restic.restic(&args).stdin(input));
        }
        started.elapsed().as_secs_f64()
    };
    let runs = crate::env_number("BENCH_SMALL_RUNS", 1);
    let times = interleaved(false, runs, &mut [&mut c1, &mut r, &mut c2]);
    vec![
        Row::ratio(
            3,
            &format!("{SMALL_ATOMS} pipe atoms of 10 KiB, concurrency 1"),
            &times[0],
            &times[1],
            Some(1.05),
        ),
        Row::ratio(3, "same, concurrency 2", &times[2], &times[1], None),
    ]
}

/// Case 7: restoring one small file atom, and dumping its file, from a
/// repository holding `BENCH_SNAPSHOTS` (default 2,048) snapshots against
/// one holding 9.
/// `restore latest --tag` reads every snapshot; tabacco names the snapshot
/// by id. The other snapshots are made in a dozen restic processes, not
/// thousands: each `restic rewrite` (restic 0.15 and newer: `BENCH_REWRITE_RESTIC`,
/// default Debian 13's under target/) excluding one more file doubles them.
fn many_snapshots(bench: &Bench) -> Vec<Row> {
    let many = crate::env_number("BENCH_SNAPSHOTS", 2048);
    let filler = bench.scratch.path("data/filler");
    let rounds = usize::BITS - many.max(2).leading_zeros() - 1;
    for k in 0..=rounds {
        bench
            .scratch
            .write(&format!("data/filler/f{k:02}"), "filler");
    }
    let atom = bench.scratch.path("data/one");
    fs::create_dir_all(atom.join("a")).expect("mkdir");
    random_file(&atom.join("a/file"), 4096, 7 << 40);
    let source = format!(
        "name: one\nhandler: file\nparams: {{path: {}}}\natoms: [{{name: a}}]\n",
        atom.display()
    );
    let rewrite = std::env::var("BENCH_REWRITE_RESTIC").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/restic-trixie/root/usr/bin/restic"
        )
        .into()
    });
    let build = |name: &str, doublings: u32| -> Side {
        let side = Side::new(bench, name, &source, 1);
        side.fresh(bench);
        run(&mut side.tabacco(bench, &["run"]));
        let mut args = strings(&["backup", "--quiet", "--host", "filler", "--tag", "filler"]);
        args.push(filler.display().to_string());
        run(&mut side.restic(&args));
        for k in 0..doublings {
            let exclude = filler.join(format!("f{k:02}")).display().to_string();
            let mut cmd = Command::new(&rewrite);
            cmd.args([
                "rewrite",
                "--quiet",
                "--host",
                "filler",
                "--exclude",
                &exclude,
            ])
            .envs(
                side.restic(&[])
                    .get_envs()
                    .filter_map(|(k, v)| Some((k, v?))),
            );
            run(&mut cmd);
        }
        eprintln!("case 7: {name}: {} snapshots", side.snapshots().len());
        side
    };
    eprintln!("case 7: building the repositories");
    let few = build("snapshots-few", 3);
    let lots = build("snapshots-many", rounds);
    let target = bench.scratch.path("restored-7");
    let restore = |side: &Side| {
        let t = run(&mut side.tabacco(
            bench,
            &[
                "restore",
                "--target",
                target.to_str().expect("UTF-8"),
                "one/a",
            ],
        ));
        let restored = target.join(atom.join("a/file").strip_prefix("/").expect("absolute"));
        assert!(restored.exists(), "{} restored", restored.display());
        remove(&target);
        t.wall.as_secs_f64()
    };
    let dump = |side: &Side| {
        run(&mut side.tabacco(bench, &["dump", "one/a", "file"]))
            .wall
            .as_secs_f64()
    };
    let by_tag = |side: &Side| {
        let tag = side.snapshots()[0]["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .filter_map(|t| t.as_str())
            .find(|t| t.starts_with("tabacco:dataset="))
            .expect("a dataset tag")
            .to_string();
        let args = [
            "restore",
            "latest",
            "--tag",
            &tag,
            "--target",
            target.to_str().expect("UTF-8"),
        ];
        let t = run(&mut side.restic(&strings(&args)));
        remove(&target);
        t.wall.as_secs_f64()
    };
    // Each way of reading, from each repository: restore many, restore
    // few, then `latest --tag`, then dump.
    type Read<'a> = &'a dyn Fn(&Side) -> f64;
    let ways: [(&str, Read); 3] = [
        ("tabacco restore", &restore),
        ("restic restore latest --tag", &by_tag),
        ("tabacco dump", &dump),
    ];
    let mut variants: Vec<Box<dyn FnMut() -> f64 + '_>> = Vec::new();
    for (what, read) in ways {
        for (count, side) in [("many", &lots), ("few", &few)] {
            variants.push(Box::new(move || {
                eprintln!("case 7: {what}, {count} snapshots");
                read(side)
            }));
        }
    }
    let mut variants: Vec<&mut dyn FnMut() -> f64> =
        variants.iter_mut().map(|v| v.as_mut() as _).collect();
    let times = interleaved(true, bench.runs, &mut variants);
    let (n, m) = (lots.snapshots().len(), few.snapshots().len());
    vec![
        Row::ratio(
            7,
            &format!("restore one atom, {n} snapshots against {m}"),
            &times[0],
            &times[1],
            Some(1.15),
        ),
        Row::ratio(
            7,
            &format!("dump one file of that atom, {n} snapshots against {m}"),
            &times[4],
            &times[5],
            Some(1.15),
        ),
        Row::ratio(
            7,
            &format!("same with restic restore latest --tag, {n} against {m}"),
            &times[2],
            &times[3],
            None,
        ),
    ]
}
