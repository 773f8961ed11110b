//! Timing whole processes: wall time, the peak RSS of the process itself
//! (not its children), runs interleaved with their baselines, medians.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One run of a command.
pub struct Measured {
    pub wall: Duration,
    /// The process's own VmHWM (KiB), sampled every 10 ms while it ran.
    pub peak_rss_kib: u64,
}

/// Runs `cmd` to completion, stdout discarded; exits the benchmark with the
/// command's stderr if it fails, since a failed run measures nothing.
pub fn run(cmd: &mut Command) -> Measured {
    cmd.stdin(Stdio::null());
    run_with_stdin(cmd)
}

/// Like [`run`], with stdin as the caller set it.
pub fn run_with_stdin(cmd: &mut Command) -> Measured {
    let started = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let status_file = format!("/proc/{}/status", child.id());
    let done = AtomicBool::new(false);
    let (output, wall, peak) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(vm_kib(&status_file, "VmHWM:").unwrap_or(0));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        });
        let output = child.wait_with_output();
        let wall = started.elapsed();
        done.store(true, Ordering::Relaxed);
        (
            output,
            wall,
            sampler.join().expect("the sampler does not panic"),
        )
    });
    let output = output.unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    if !output.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Measured {
        wall,
        peak_rss_kib: peak,
    }
}

/// A `Vm...:` line of a /proc/PID/status file, in KiB.
pub fn vm_kib(status_file: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status_file).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Runs each variant `runs` times, rotating which goes first in each round
/// so that drift (page cache, disk, thermal) spreads over all of them
/// (evenly when `runs` is a multiple of the number of variants); with
/// `warm_up`, after a first round whose times are dropped (on this machine
/// the first gigabyte-sized runs after the data was written are the
/// slowest). Returns each variant's wall times in seconds.
pub fn interleaved(
    warm_up: bool,
    runs: usize,
    variants: &mut [&mut dyn FnMut() -> f64],
) -> Vec<Vec<f64>> {
    let mut times = vec![Vec::with_capacity(runs); variants.len()];
    // The warm-up round takes the first measured round's order, so that
    // over a multiple of the variants' number of rounds each goes first
    // equally often (going second in a round costs a gigabyte-sized run
    // several per cent here).
    let first = usize::from(!warm_up);
    for round in first..=runs {
        for k in 0..variants.len() {
            let v = (round.max(1) - 1 + k) % variants.len();
            let t = variants[v]();
            eprintln!("  {t:.3} s");
            times[v].push(t);
        }
    }
    if warm_up {
        for t in &mut times {
            t.remove(0);
        }
    }
    times
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// The `p`-quantile (0 < p ≤ 1) of `values`, nearest rank.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (sorted.len() as f64 * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `p50 …, p99 …` of `times` (seconds), as the tables give latencies.
pub fn p50_p99(times: &[f64]) -> String {
    format!(
        "p50 {}, p99 {}",
        crate::seconds(median(times)),
        crate::seconds(percentile(times, 0.99))
    )
}
