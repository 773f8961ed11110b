//! One backup of one source: find its atoms, have the handler plan its
//! datasets, open the repository (creating it first under `init: auto`),
//! and for each dataset run the hooks and have the handler save it
//! ([`crate::handler::Input::save`]), then record it. Datasets run
//! concurrently, up to `queue_config.concurrency` at once in the whole
//! process (see [`crate::base::slots`]). A dataset is recorded only once its
//! snapshot is complete in the repository; a failed producer's partial
//! snapshot (a failed one leaves none) is forgotten once the source's
//! datasets are all done, or else listed never to be recorded. A pipe
//! source of many atoms has them saved together first (see `batch`).

use crate::backup::batch;
use crate::backup::copy;
use crate::backup::intent::{self, Intent};
use crate::backup::tombstone;
use crate::base::count::count;
use crate::base::name;
use crate::base::queue;
use crate::base::size;
use crate::base::slots::Slots;
use crate::config::repositories::Init;
use crate::config::source::{Datasets, Source};
use crate::config::{self, Config};
use crate::handler::atom::{AtomSpec, DatasetSpec};
use crate::handler::hook;
use crate::handler::{Context, PlannedDataset, Saving};
use crate::init::Creator;
use crate::metadb::{Metadb, NewBackup};
use crate::process::shell::Supervisor;
use crate::report::failure::{Failure, Kind};
use crate::report::outcome::Outcome;
use crate::restic::{self, Repo};
use crate::wire::model::{self, Dataset};
use chrono::{DateTime, Utc};
use std::sync::{Mutex, PoisonError};

/// Most bytes accepted from `atoms_command` or `datasets_command`.
const LIST_LIMIT: u64 = 16 << 20;

/// What a job needs besides its source.
pub struct Env<'a> {
    pub config: &'a Config,
    pub repo: &'a Repo,
    pub metadb: &'a Metadb,
    pub dry_run: bool,
    /// The process's slots: one is held by each dataset backing up.
    pub slots: &'a Slots,
    /// Told of restic's progress, e.g. for the agent's status page.
    pub progress: Option<&'a Progress<'a>>,
}

/// A sink for restic's progress: the job's label and the latest status.
pub type Progress<'a> = dyn Fn(&str, &restic::BackupProgress) + Sync + 'a;

/// A source's datasets with their atoms known: the result of running
/// `datasets_command` and `atoms_command`. Errors come back beside the
/// groups that could be resolved, so the rest of a source is still backed up.
pub fn resolve_atoms(source: &Source, sup: &Supervisor) -> (Vec<Vec<AtomSpec>>, Vec<Failure>) {
    let mut errors = Vec::new();
    // A name skipped is said as Rust quotes it (escaped: it may hold any
    // character); where it is shown, it is escaped again (`visible`).
    let skip = |what: &str, why: String| {
        let e = format!("{what} printed {why}; atom skipped");
        Failure::new(Kind::Command, e)
    };
    let specs = match &source.datasets {
        Datasets::Listed(specs) => specs.clone(),
        Datasets::Command(command) => {
            match sup.capture_shell(command, "datasets_command", LIST_LIMIT) {
                Ok(text) => match config::datasets::parse(&source.name, &text) {
                    Ok((specs, skipped)) => {
                        errors.extend(skipped.into_iter().map(|s| skip("datasets_command", s)));
                        specs
                    }
                    Err(e) => {
                        let e = format!("datasets_command printed no dataset list: {e}");
                        return (Vec::new(), vec![Failure::new(Kind::Command, e)]);
                    }
                },
                Err(e) => return (Vec::new(), vec![e.into()]),
            }
        }
    };
    let mut groups = Vec::new();
    for spec in specs {
        let mut atoms = spec.atoms.clone();
        if let Some(command) = &spec.atoms_command {
            match sup.capture_bytes(command, "atoms_command", LIST_LIMIT) {
                Ok(bytes) => {
                    let mut lines = Vec::new();
                    for line in bytes.split(|b| *b == b'\n') {
                        match std::str::from_utf8(line) {
                            Ok(line) => lines.push(line.trim()),
                            Err(_) => {
                                let line = line.escape_ascii();
                                let why = format!("a name that is not UTF-8: \"{line}\"");
                                errors.push(skip("atoms_command", why));
                            }
                        }
                    }
                    // A name given twice (a database called `_globals`
                    // beside PostgreSQL's roles) is neither.
                    let mut twice: Vec<&str> = Vec::new();
                    let listed = lines.into_iter().filter(|l| !l.is_empty());
                    for line in listed.filter(|l| source.handler.selects(l)) {
                        if twice.contains(&line) {
                            continue;
                        }
                        if atoms.iter().any(|a| a.name == line) {
                            errors.push(skip("atoms_command", format!("atom {line:?} twice")));
                            atoms.retain(|a| a.name != line);
                            twice.push(line);
                            continue;
                        }
                        match name::validate(&source.atom_full_name(line)) {
                            Ok(()) => atoms.push(AtomSpec {
                                name: line.to_string(),
                                path: None,
                            }),
                            Err(e) => errors.push(skip("atoms_command", format!("an {e}"))),
                        }
                    }
                }
                Err(e) => {
                    errors.push(e.into());
                    continue;
                }
            }
        } else if atoms.is_empty() {
            atoms.push(AtomSpec {
                name: String::new(),
                path: None,
            });
        }
        match source.handler.check_atoms(&DatasetSpec {
            atoms: atoms.clone(),
            atoms_command: None,
        }) {
            Ok(()) => groups.push(atoms),
            Err(e) => errors.push(Failure::new(Kind::Other, e.to_string())),
        }
    }
    (groups, errors)
}

/// Backs up `source` now, as backup `backup_id` begun at `start` (the
/// time of its snapshots and of its record), under `sup` (which the caller
/// may stop).
pub fn backup(
    source: &Source,
    env: &Env,
    sup: &Supervisor,
    backup_id: &str,
    start: DateTime<Utc>,
) -> Outcome {
    let backup = NewBackup {
        id: backup_id,
        host: &env.config.hostname,
        at: start,
    };
    let restic_time = start
        .with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let mut outcome = Outcome {
        source: source.name.clone(),
        backup_id: backup_id.to_string(),
        recorded: Vec::new(),
        errors: Vec::new(),
        copies: Vec::new(),
    };
    let _watchdog = source
        .timeout
        .map(|t| sup.watchdog(t, format!("timeout of {}s exceeded", t.as_secs())));

    let (groups, errors) = resolve_atoms(source, sup);
    outcome.errors = errors;
    let ctx = Context {
        backup_id,
        host: backup.host,
    };
    let mut plans = Vec::new();
    for atoms in &groups {
        match source.handler.plan(&source.name, atoms, &ctx) {
            Ok(p) => plans.extend(p),
            Err(e) => outcome
                .errors
                .push(Failure::new(Kind::Other, e.to_string())),
        }
    }
    if !env.dry_run && !plans.is_empty() {
        if let Err(e) = open(env, sup) {
            outcome.errors.push(e);
            return outcome;
        }
        let work_dir = &env.config.work_dir;
        intent::resolve(work_dir, &source.name, env.repo, env.metadb, sup);
    }
    // Up to `concurrency` datasets at once, each holding one of the
    // process's slots while it runs; results are reported in plan order
    // whatever order they end in.
    let partials = Partials::default();
    let run = Run {
        source,
        env,
        sup,
        backup: &backup,
        restic_time: &restic_time,
        partials: &partials,
    };
    // Many pipe atoms go into restic together (see `batch`); the rest, one
    // by one.
    let (batched, plans) = batch::backup(&run, plans);
    let mut done = queue::map(env.config.concurrency, plans, |plan| {
        let dataset_name = plan.name.clone();
        let result = env
            .slots
            .acquire(|| sup.ensure_running("backup"))
            .map_err(Failure::from)
            .and_then(|_slot| backup_dataset(&run, plan));
        (dataset_name, result)
    });
    done.extend(batched);
    forget_partials(env, sup, partials);
    for (dataset_name, result) in done {
        match result {
            Ok(Some(dataset)) => outcome.recorded.push(dataset),
            Ok(None) => {}
            Err(e) => outcome
                .errors
                .push(e.context(&format!("dataset {dataset_name}"))),
        }
    }
    if !env.dry_run {
        let copies = env.config.copies_of(source);
        let (host, recorded) = (&env.config.hostname, &outcome.recorded);
        let primary = &env.config.repository;
        let creator = env.creator();
        let into = copy::Copying {
            primary,
            metadb: env.metadb,
            creator: creator.as_ref(),
        };
        outcome.copies = copy::after_backup(&copies, &into, host, &source.name, recorded, sup);
    }
    outcome
}

impl Env<'_> {
    /// What creates a missing repository, under `init: auto`.
    fn creator(&self) -> Option<Creator<'_>> {
        (self.config.init == Init::Auto).then_some(Creator {
            config: self.config,
            metadb: self.metadb,
        })
    }
}

/// Opens the repository before a backup; under `init: auto`, a missing
/// one (or one half created, perhaps by another host right now) is
/// created first.
fn open(env: &Env, sup: &Supervisor) -> Result<(), Failure> {
    match (env.repo.open(sup), env.creator()) {
        (Ok(()), _) => Ok(()),
        (Err(e @ (restic::Error::Missing(_) | restic::Error::Damaged(_))), Some(creator)) => {
            Ok(creator.auto(sup, env.repo, None, e)?)
        }
        (Err(e), _) => Err(e.into()),
    }
}

/// What backing up each dataset of a source needs.
pub(super) struct Run<'a, 'e> {
    pub source: &'a Source,
    pub env: &'a Env<'e>,
    pub sup: &'a Supervisor,
    pub backup: &'a NewBackup<'a>,
    /// The snapshots' time, as restic's `--time` wants it.
    pub restic_time: &'a str,
    pub partials: &'a Partials,
}

/// Backs up one dataset with its hooks; `Ok(None)` in a dry run.
fn backup_dataset(run: &Run, plan: PlannedDataset) -> Result<Option<Dataset>, Failure> {
    let Run {
        source,
        env,
        sup,
        backup,
        ..
    } = *run;
    let ctx = Context {
        backup_id: backup.id,
        host: backup.host,
    };
    let scope = source.handler.scope(&source.name, &ctx, &plan.atoms, None);
    let hook_env = hook::environment(&scope, None);
    if env.dry_run {
        log_dry_run(sup, source, &plan);
        return Ok(None);
    }
    if let Some(pre) = &source.hooks.pre_backup {
        sup.run_shell(pre, &hook_env, "pre_backup_command")?;
    }
    let result = snapshot(run, plan).map(Some);
    if let Some(post) = &source.hooks.post_backup {
        let status = if result.is_ok() { "ok" } else { "failed" };
        let mut post_env = hook_env;
        post_env.push(("BACKUP_STATUS", status.to_string()));
        if let Err(e) = sup.run_shell(post, &post_env, "post_backup_command") {
            // Say both what happened to the data and what the hook did.
            let hook = Failure::from(e);
            return Err(match result {
                Ok(_) => Failure::new(
                    hook.kind,
                    format!("{hook} (the dataset was saved and recorded)"),
                ),
                Err(first) => Failure::new(first.kind, format!("{first}; then {hook}")),
            });
        }
    }
    result
}

fn log_dry_run(sup: &Supervisor, source: &Source, plan: &PlannedDataset) {
    let label = sup.label();
    if let Some(pre) = &source.hooks.pre_backup {
        log::info!("{label}: dry run: would run pre_backup_command: {pre}");
    }
    log::info!("{label}: dry run: would {}", plan.input.describe());
    if let Some(post) = &source.hooks.post_backup {
        log::info!("{label}: dry run: would run post_backup_command: {post}");
    }
}

/// Takes the snapshot and records it.
fn snapshot(run: &Run, plan: PlannedDataset) -> Result<Dataset, Failure> {
    let Run {
        source,
        env,
        sup,
        backup,
        restic_time,
        partials,
    } = *run;
    let mut dataset = Dataset::new(model::new_id(), source.name.clone(), plan.atoms);
    let tags = model::snapshot_tags(backup.id, &dataset);
    let label = sup.label().to_string();
    let mut on_status = |s: restic::BackupProgress| {
        log::debug!(
            "{label}: {:.0}% done, {}/{} files, {} of {}",
            s.percent_done * 100.0,
            s.files_done,
            s.total_files,
            size::human(s.bytes_done),
            size::human(s.total_bytes)
        );
        if let Some(progress) = env.progress {
            progress(&label, &s);
        }
    };
    let request = |input| restic::BackupRequest {
        host: backup.host,
        tags: tags.clone(),
        time: restic_time.to_string(),
        input,
    };
    let saving = Saving {
        repo: env.repo,
        sup,
        request: &request,
        on_status: &mut on_status,
        min_bytes: source.min_bytes,
    };
    dataset.repository = crate::backup::plan::recorded_in(env.config, env.repo, env.metadb, sup);
    // Should this process die before the record, the next backup of the
    // source records the snapshot (see `intent`).
    let intent = Intent::write_or_warn(&env.config.work_dir, backup, &dataset, &label);
    let summary = match plan.input.save(&dataset.atoms, saving) {
        Ok(summary) => summary,
        Err(unsaved) => {
            if let Some(snapshot_id) = &unsaved.partial {
                forget_later(partials, &dataset, snapshot_id);
            }
            // Nothing to record: a partial snapshot is forgotten, or listed.
            if let Some(intent) = intent {
                intent.done();
            }
            return Err(unsaved.failure);
        }
    };
    dataset.snapshot_id = summary.snapshot_id;
    dataset.total_files = summary.total_files_processed;
    dataset.total_bytes = summary.total_bytes_processed;
    dataset.bytes_added = summary.data_added;
    dataset.duration = summary.total_duration.round() as i64;
    let bytes = |n: i64| size::human(u64::try_from(n).unwrap_or(0));
    log::info!(
        "{label}: dataset {} ({}) saved as snapshot {}: {}, {}, {} added",
        dataset.id,
        atom_list(&dataset),
        dataset.snapshot_id,
        count(dataset.total_files, "file"),
        bytes(dataset.total_bytes),
        bytes(dataset.bytes_added)
    );
    // Not recorded: the intent stays, for the next backup to record.
    env.metadb.add_dataset(backup, &dataset).map_err(|e| {
        let e = format!(
            "snapshot {} saved but not recorded: {e}; the source's next backup records it",
            dataset.snapshot_id
        );
        Failure::new(Kind::Metadb, e)
    })?;
    if let Some(intent) = intent {
        intent.done();
    }
    if summary.incomplete {
        let e = format!(
            "snapshot {} saved and recorded, but some files were unreadable (see the log)",
            dataset.snapshot_id
        );
        return Err(Failure::new(Kind::Incomplete, e));
    }
    Ok(dataset)
}

/// Partial snapshots (tag and snapshot id) to forget once none of the
/// source's datasets is backing up any more: `restic forget` needs the
/// repository to itself.
pub(super) type Partials = Mutex<Vec<(String, String)>>;

pub(super) fn forget_later(partials: &Partials, dataset: &Dataset, snapshot_id: &str) {
    let mut partials = partials.lock().unwrap_or_else(PoisonError::into_inner);
    partials.push((dataset.tag(), snapshot_id.to_string()));
}

/// Forgets the partial snapshots; those it cannot are listed as never to
/// be recorded (see [`tombstone`]), for `reindex` to skip and the next
/// `prune` to forget. The log says which happened.
fn forget_partials(env: &Env, sup: &Supervisor, partials: Partials) {
    // The job may have been stopped: clean up under a fresh supervisor.
    let partials = partials
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    if partials.is_empty() {
        return;
    }
    let label = sup.label();
    let ids: Vec<&str> = partials.iter().map(|(_, id)| id.as_str()).collect();
    let ids = ids.join(", ");
    let Err(e) = env.repo.forget_snapshots(&sup.for_cleanup(), &partials) else {
        log::info!("{label}: removed the unusable snapshots {ids}");
        return;
    };
    match tombstone::add(&env.config.work_dir, &partials) {
        Ok(list) => log::error!(
            "{label}: cannot remove the unusable snapshots {ids} yet: {e}; they are listed in {} and never recorded, and the next prune removes them",
            list.display()
        ),
        Err(listing) => log::error!(
            "{label}: cannot remove the unusable snapshots {ids}: {e}; nor list them as unrecordable: {listing}; remove them with restic forget"
        ),
    }
}

fn atom_list(dataset: &Dataset) -> String {
    let names: Vec<&str> = dataset.atoms.iter().map(|a| a.name.as_str()).collect();
    names.join(" ")
}
