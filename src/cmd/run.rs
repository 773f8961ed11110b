//! `tabacco run`: back up sources now, up to `queue_config.concurrency`
//! datasets at once across all sources, and exit 1 if any failed. Silent on
//! success, for cron; on a terminal (unless `-q`) it shows restic's
//! progress and a line per source (`progress`). Notifications are sent as
//! backups start and end, and waited for at most [`NOTIFY_BOUND`] at the
//! end.

use crate::backup::attempt;
use crate::backup::job::Env;
use crate::backup::plan;
use crate::base::queue;
use crate::base::slots::Slots;
use crate::cmd::progress::{self, StatusLine};
use crate::cmd::{self, Exit};
use crate::config::Config;
use crate::metadb::Metadb;
use crate::process::interrupt::Interrupt;
use crate::process::shell::Supervisor;
use crate::report::notify::Notifier;
use crate::restic::{self, Repo};
use crate::wire::model;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest `run` waits for its notifications before it exits.
const NOTIFY_BOUND: Duration = Duration::from_secs(5);

pub fn run(config: &Config, names: &[String], dry_run: bool) -> Result<(), Exit> {
    let sources = config
        .select(names)
        .map_err(|e| Exit::Usage(e.to_string()))?;
    if sources.is_empty() {
        log::warn!(
            "no sources configured: nothing to back up ('tabacco check' shows the configuration)"
        );
    }
    let dry_run = dry_run || config.dry_run;
    if dry_run {
        log::set_max_level(log::max_level().max(log::LevelFilter::Info));
    }
    let metadb = Metadb::open(&config.work_dir, config.metadb.as_ref())
        .map_err(|e| Exit::Error(e.to_string()))?;
    // A cron-driven host is watched too: its sources are due again when
    // their configured schedule says, and a source removed from its
    // configuration stops being watched.
    if !dry_run {
        plan::publish(&metadb, &plan::of_config(config));
    }
    let repo = Repo::new(config.repository.clone());
    let slots = Slots::new(config.concurrency);
    // A person watches: not quiet, and not a dry run, which says it all.
    let watched = !dry_run && log::max_level() >= log::LevelFilter::Warn;
    let status_line = (watched && std::io::stderr().is_terminal()).then(StatusLine::default);
    let show = |label: &str, status: &restic::BackupProgress| {
        if let Some(line) = &status_line {
            line.update(label, status);
        }
    };
    let env = Env {
        config,
        repo: &repo,
        metadb: &metadb,
        dry_run,
        slots: &slots,
        progress: Some(&show),
    };

    let interrupt =
        Interrupt::install().map_err(|e| Exit::Error(format!("cannot catch signals: {e}")))?;
    let notifier = Notifier::spawn(Arc::default()).map_err(Exit::Error)?;
    let outcomes = queue::map(config.concurrency, sources, |source| {
        let backup_id = model::new_id();
        let label = format!("{} {backup_id}", source.name);
        let sup = Supervisor::new(config.priority, label.clone());
        let stopped = interrupt.track(&sup);
        let started = Instant::now();
        let outcome = attempt::run(source, &env, &sup, &backup_id, &notifier, stopped);
        if let Some(line) = &status_line {
            line.done(&label);
        }
        (outcome, started.elapsed())
    });
    notifier.finish(NOTIFY_BOUND);

    let mut failed = false;
    for (outcome, _) in &outcomes {
        outcome.report(dry_run, None);
        failed |= !outcome.errors.is_empty() || !outcome.copies.is_empty();
    }
    if watched && std::io::stdout().is_terminal() {
        let lines: Vec<String> = outcomes
            .iter()
            .map(|(outcome, took)| progress::summary(outcome, *took) + "\n")
            .collect();
        cmd::print(&lines.concat())?;
    }
    if failed {
        Err(Exit::Failed)
    } else {
        Ok(())
    }
}
