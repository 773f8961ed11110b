//! Pipe atoms batched: a pipe source of many atoms is backed up by one
//! restic process instead of one per atom, because each restic process
//! costs most of a second before it reads a byte (see BENCHMARKS.md). Each
//! atom's dump is streamed into a file of a private staging area
//! ([`area`]) at the atom's name, then one `restic backup` of the area
//! stores every file where its own `--stdin` snapshot would have
//! (`/sql/db1`), so that restore, `dump`, `ls`, the drill and copies read
//! a batched atom as they read any other (`restic dump SNAPSHOT /sql/db1`,
//! the snapshot found by id, or by the dataset's tag, which the batch's
//! snapshot carries for each of its datasets). Every atom stays its own
//! dataset in the metadb, all with the batch's snapshot id; the snapshot's
//! tags ([`model::batch_tags`]) say which atom is which dataset, for
//! `reindex`, `prune` and copies.
//!
//! The area holds at most `batch_bytes` (and half the space its file
//! system has free) at once: dumps are counted as they are written, and
//! one that would overflow it is stopped and its file removed. It is tried
//! again in the next batch unless it overflowed alone or twice: then it is
//! streamed on its own, as a source that is not batched streams every atom
//! (its dump runs again). A producer that fails, or prints less than
//! `min_bytes` (or nothing), fails its own atom: its file is removed before
//! restic runs, and nothing of it is recorded. A stopped job (SIGTERM, its
//! timeout) stops the producers and restic, records nothing of the batch
//! under way, and removes the area; an area a crashed run left is removed
//! at the next backup of any source.
//!
//! Which sources are batched, and when, is [`backup`]'s: pipe sources of
//! at least `batch_from` atoms (agent.yml's or the source's) without `pre_backup_command` or
//! `post_backup_command` (whose promise, a command around each atom's
//! snapshot, a batch cannot keep).

mod area;

use crate::backup::intent::Intent;
use crate::backup::job::{forget_later, Run};
use crate::base::queue;
use crate::base::size;
use crate::handler::{Input, PlannedDataset};
use crate::process::shell::{self, Stop};
use crate::report::failure::{Failure, Kind};
use crate::restic;
use crate::wire::model::{self, Dataset};
use area::Area;
use std::io::{self, Read, Write};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Less free space than twice this beside the area, and the atoms stream
/// on their own.
const MIN_ROOM: u64 = 1 << 20;

/// How much of a dump is read at once.
const CHUNK: usize = 64 << 10;

/// A dataset's name and how its backup ended (`Ok(None)`: not at all).
pub type Done = (String, Result<Option<Dataset>, Failure>);

/// Backs up those of `plans` (one source's) that batching applies to, in
/// batches; returns how they ended, and the plans left for the caller to
/// stream one by one (all of them when the source is not batched).
pub(super) fn backup(run: &Run, plans: Vec<PlannedDataset>) -> (Vec<Done>, Vec<PlannedDataset>) {
    let bound = run.source.batch_bytes.unwrap_or(run.env.config.batch_bytes);
    let from = run.source.batch_from.unwrap_or(run.env.config.batch_from);
    let hooks = &run.source.hooks;
    let commands = plans
        .iter()
        .all(|p| matches!(p.input, Input::Command { .. }));
    if run.env.dry_run {
        return (Vec::new(), plans);
    }
    if bound == 0
        || plans.len() < from.max(1)
        || !commands
        || hooks.pre_backup.is_some()
        || hooks.post_backup.is_some()
    {
        // What a crashed run left goes at the next backup of any source.
        area::sweep(&run.env.config.work_dir);
        return (Vec::new(), plans);
    }
    let label = run.sup.label();
    let area = match Area::new(&run.env.config.work_dir, &run.source.name) {
        Ok(Some(area)) => area,
        Ok(None) => {
            log::info!("{label}: another run is batching this source: each atom streams alone");
            return (Vec::new(), plans);
        }
        Err(e) => {
            log::warn!("{label}: no staging area for a batch ({e}): each atom streams alone");
            return (Vec::new(), plans);
        }
    };
    let (mut done, mut alone) = (Vec::new(), Vec::new());
    let mut pending: Vec<(PlannedDataset, bool)> = plans.into_iter().map(|p| (p, false)).collect();
    while !pending.is_empty() {
        let free = area.available().unwrap_or_else(|e| {
            log::warn!("{label}: cannot tell the staging area's free space: {e}");
            0
        });
        if free / 2 < MIN_ROOM {
            log::warn!(
                "{label}: {} free for the staging area: the atoms stream alone",
                size::human(free)
            );
        }
        if free / 2 < MIN_ROOM || run.sup.ensure_running("backup").is_err() {
            alone.extend(pending.into_iter().map(|(plan, _)| plan));
            break;
        }
        let room = bound.min(free / 2);
        let round = stage(run, &area, pending, room);
        done.extend(round.failed);
        alone.extend(round.alone);
        if !round.staged.is_empty() {
            done.extend(save(run, &area, round.staged));
        }
        if let Err(e) = area.clear() {
            log::warn!("{label}: cannot empty the staging area ({e}): the rest streams alone");
            alone.extend(round.next.into_iter().map(|(plan, _)| plan));
            break;
        }
        pending = round.next;
    }
    (done, alone)
}

/// An atom's dump, written whole into the area.
struct Staged {
    plan: PlannedDataset,
    bytes: u64,
    seconds: f64,
}

/// What one round of dumps into the area came to.
struct Round {
    staged: Vec<Staged>,
    failed: Vec<Done>,
    /// To stream on their own.
    alone: Vec<PlannedDataset>,
    /// For the next batch, each marked as having overflowed once.
    next: Vec<(PlannedDataset, bool)>,
}

/// How one atom's dump into the area ended.
enum Dumped {
    Whole {
        bytes: u64,
        seconds: f64,
    },
    Failed(Failure),
    /// Stopped at `bytes` (its own): the area would have overflowed.
    Over {
        bytes: u64,
    },
    /// The area could not take it (a name in the way, a write error).
    Unstaged(io::Error),
}

/// Dumps `pending` into `area`, up to `queue_config.concurrency` at once,
/// each holding one of the process's slots, within `room` bytes in all.
fn stage(run: &Run, area: &Area, pending: Vec<(PlannedDataset, bool)>, room: u64) -> Round {
    let used = AtomicU64::new(0);
    let dumped = queue::map(run.env.config.concurrency, pending, |(plan, over_once)| {
        let dumped = match run.env.slots.acquire(|| run.sup.ensure_running("backup")) {
            Ok(_slot) => dump(run, area, &plan, &used, room),
            Err(e) => Dumped::Failed(e.into()),
        };
        (plan, over_once, dumped)
    });
    let mut round = Round {
        staged: Vec::new(),
        failed: Vec::new(),
        alone: Vec::new(),
        next: Vec::new(),
    };
    let label = run.sup.label();
    for (plan, over_once, dumped) in dumped {
        match dumped {
            Dumped::Whole { bytes, seconds } => round.staged.push(Staged {
                plan,
                bytes,
                seconds,
            }),
            Dumped::Failed(e) => round.failed.push((plan.name, Err(e))),
            Dumped::Over { bytes } if bytes > room || over_once => {
                log::info!(
                    "{label}: dataset {} does not fit a batch ({} staged of it): it streams alone",
                    plan.name,
                    size::human(bytes)
                );
                round.alone.push(plan);
            }
            Dumped::Over { .. } => round.next.push((plan, true)),
            Dumped::Unstaged(e) => {
                log::info!(
                    "{label}: dataset {} cannot be staged ({e}): it streams alone",
                    plan.name
                );
                round.alone.push(plan);
            }
        }
    }
    round
}

/// Streams `plan`'s dump into its file in `area`, counting its bytes into
/// `used`, which must stay within `room`. The file is removed unless the
/// dump is whole.
fn dump(run: &Run, area: &Area, plan: &PlannedDataset, used: &AtomicU64, room: u64) -> Dumped {
    let Input::Command {
        command,
        env,
        filename,
    } = &plan.input
    else {
        return Dumped::Unstaged(io::Error::other("not a stream"));
    };
    let mut file = match area.create(filename) {
        Ok(file) => file,
        Err(e) => return Dumped::Unstaged(e),
    };
    let started = Instant::now();
    let mut bytes = 0;
    let dumped = copy_counted(run, command, env, &mut file, used, room, &mut bytes);
    used.fetch_sub(bytes, Ordering::SeqCst);
    let dumped = match dumped {
        Ok(true) => match run.source.min_bytes {
            _ if bytes == 0 => Dumped::Failed(Failure::new(
                Kind::Command,
                "backup_command printed nothing",
            )),
            Some(min) if bytes < min => Dumped::Failed(Failure::new(
                Kind::Command,
                format!("backup_command produced {bytes} bytes, less than min_bytes {min}"),
            )),
            // Not synced: restic reads it back from the page cache, and a
            // crash loses the area anyway.
            _ => {
                // Counted again: it stays in the area until restic ran.
                used.fetch_add(bytes, Ordering::SeqCst);
                let seconds = started.elapsed().as_secs_f64();
                return Dumped::Whole { bytes, seconds };
            }
        },
        Ok(false) => Dumped::Over { bytes },
        Err(e) => e,
    };
    drop(file);
    area.remove(filename);
    dumped
}

/// Runs `command` with `env`, copying its stdout into `file` while the
/// area's `used` bytes stay within `room`; `bytes` counts what it wrote
/// (and added to `used`). `Ok(false)` when it was stopped for room.
fn copy_counted(
    run: &Run,
    command: &str,
    env: &crate::handler::hook::Environment,
    file: &mut std::fs::File,
    used: &AtomicU64,
    room: u64,
    bytes: &mut u64,
) -> Result<bool, Dumped> {
    let mut producer = {
        let mut cmd = shell::sh(command);
        cmd.envs(env.clone())
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        run.sup
            .spawn(&mut cmd, "backup_command", Stop::Terminate)
            .map_err(|e| Dumped::Failed(e.into()))?
    };
    let Some(mut stdout) = producer.child().stdout.take() else {
        return Err(Dumped::Unstaged(io::Error::other("no stdout")));
    };
    let mut buf = vec![0; CHUNK];
    let mut fits = true;
    let mut written = Ok(());
    loop {
        let n = match stdout.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                written = Err(e);
                break;
            }
        };
        let n64 = n as u64;
        *bytes += n64;
        if used.fetch_add(n64, Ordering::SeqCst) + n64 > room {
            fits = false;
            break;
        }
        if let Err(e) = file.write_all(&buf[..n]) {
            written = Err(e);
            break;
        }
    }
    if !fits || written.is_err() {
        producer.kill();
    }
    drop(stdout);
    let status = producer.wait();
    match (status, written) {
        // Stopped by the job (SIGTERM, timeout): that is the failure.
        (Err(e @ shell::Error::Stopped { .. }), _) => Err(Dumped::Failed(e.into())),
        (_, Err(e)) => Err(Dumped::Unstaged(e)),
        (_, Ok(())) if !fits => Ok(false),
        (Err(e), Ok(())) => Err(Dumped::Failed(e.into())),
        (Ok(_), Ok(())) => Ok(true),
    }
}

/// Backs up the area, holding `staged`, with one `restic backup` and
/// records each staged atom as its own dataset of that snapshot.
fn save(run: &Run, area: &Area, staged: Vec<Staged>) -> Vec<Done> {
    let Run {
        source,
        env,
        sup,
        backup,
        restic_time,
        partials,
    } = *run;
    let repository = crate::backup::plan::recorded_in(env.config, env.repo, env.metadb, sup);
    let datasets: Vec<Dataset> = staged
        .iter()
        .map(|s| {
            let mut dataset =
                Dataset::new(model::new_id(), source.name.clone(), s.plan.atoms.clone());
            dataset.repository = repository.clone();
            dataset.total_files = 1;
            dataset.total_bytes = i64::try_from(s.bytes).unwrap_or(i64::MAX);
            dataset
        })
        .collect();
    // Should this process die before the records, the next backup of the
    // source records the snapshot (see `intent`).
    let intents: Vec<Option<Intent>> = datasets
        .iter()
        .map(|dataset| Intent::write_or_warn(&env.config.work_dir, backup, dataset, sup.label()))
        .collect();
    let done = |intents: Vec<Option<Intent>>| intents.into_iter().flatten().for_each(Intent::done);
    let failed_all = |datasets: Vec<Dataset>, e: Failure| -> Vec<Done> {
        staged
            .iter()
            .zip(datasets)
            .map(|(s, _)| (s.plan.name.clone(), Err(e.clone())))
            .collect()
    };
    let request = restic::BackupRequest {
        host: backup.host,
        tags: model::batch_tags(backup.id, &source.name, &datasets),
        time: restic_time.to_string(),
        input: restic::BackupInput::Directory {
            dir: area.path().to_path_buf(),
        },
    };
    let label = sup.label().to_string();
    let mut on_status = |s: restic::BackupProgress| {
        if let Some(progress) = env.progress {
            progress(&label, &s);
        }
    };
    let saved = env
        .slots
        .acquire(|| sup.ensure_running("backup"))
        .map_err(Failure::from)
        .and_then(|_slot| {
            env.repo
                .backup(sup, request, &mut on_status)
                .map_err(Failure::from)
        });
    let summary = match saved {
        Ok(summary) if summary.incomplete => {
            forget_later(partials, &datasets[0], &summary.snapshot_id);
            done(intents);
            let e = "restic could not read the batch's staging area (see the log); its snapshot was removed";
            return failed_all(datasets, Failure::new(Kind::Command, e));
        }
        Ok(summary) => summary,
        Err(e) => {
            done(intents);
            return failed_all(datasets, e.context("batch"));
        }
    };
    let total: u64 = staged.iter().map(|s| s.bytes).sum::<u64>().max(1);
    let mut records = Vec::with_capacity(datasets.len());
    for (s, mut dataset) in staged.iter().zip(datasets) {
        dataset.snapshot_id = summary.snapshot_id.clone();
        // restic says what the batch added: each atom its share by size.
        let share = summary.data_added as f64 * s.bytes as f64 / total as f64;
        dataset.bytes_added = share.round() as i64;
        dataset.duration = (s.seconds + summary.total_duration).round() as i64;
        records.push((backup.to_wire(), dataset));
    }
    log::info!(
        "{label}: batch of {} datasets saved as snapshot {}: {}, {} added",
        records.len(),
        summary.snapshot_id,
        size::human(total),
        size::human(u64::try_from(summary.data_added).unwrap_or(0))
    );
    let results = match env.metadb.add_datasets(&records) {
        Ok(results) => results,
        Err(e) => {
            // Not recorded: the intents stay, for the next backup to record.
            let e = format!(
                "snapshot {} saved but not recorded: {e}; the source's next backup records it",
                summary.snapshot_id
            );
            let datasets = records.into_iter().map(|(_, d)| d).collect();
            return failed_all(datasets, Failure::new(Kind::Metadb, e));
        }
    };
    records
        .into_iter()
        .zip(results)
        .zip(&staged)
        .zip(intents)
        .map(|((((_, dataset), result), s), intent)| {
            let result = match result {
                Ok(()) => {
                    if let Some(intent) = intent {
                        intent.done();
                    }
                    Ok(Some(dataset))
                }
                Err(e) => Err(Failure::new(
                    Kind::Metadb,
                    format!(
                        "snapshot {} saved but not recorded: {e}; the source's next backup records it",
                        dataset.snapshot_id
                    ),
                )),
            };
            (s.plan.name.clone(), result)
        })
        .collect()
}
