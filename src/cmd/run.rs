//! `tabacco run`: back up sources now, up to `queue_config.concurrency`
//! datasets at once across all sources, and exit 1 if any failed. Silent on
//! success, for cron. Notifications are sent as backups start and end, and
//! waited for at most [`NOTIFY_BOUND`] at the end.

use crate::backup::attempt;
use crate::backup::job::Env;
use crate::backup::plan;
use crate::base::queue;
use crate::base::slots::Slots;
use crate::cmd::Exit;
use crate::config::Config;
use crate::metadb::Metadb;
use crate::process::interrupt::Interrupt;
use crate::process::shell::Supervisor;
use crate::report::notify::Notifier;
use crate::restic::Repo;
use crate::wire::model;
use std::sync::Arc;
use std::time::Duration;

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
    let env = Env {
        config,
        repo: &repo,
        metadb: &metadb,
        dry_run,
        slots: &slots,
        progress: None,
    };

    let interrupt =
        Interrupt::install().map_err(|e| Exit::Error(format!("cannot catch signals: {e}")))?;
    let notifier = Notifier::spawn(Arc::default()).map_err(Exit::Error)?;
    let outcomes = queue::map(config.concurrency, sources, |source| {
        let backup_id = model::new_id();
        let sup = Supervisor::new(config.priority, format!("{} {backup_id}", source.name));
        let stopped = interrupt.track(&sup);
        attempt::run(source, &env, &sup, &backup_id, &notifier, stopped)
    });
    notifier.finish(NOTIFY_BOUND);

    let mut failed = false;
    for outcome in &outcomes {
        outcome.report(dry_run, None);
        failed |= !outcome.errors.is_empty() || !outcome.copies.is_empty();
    }
    if failed {
        Err(Exit::Failed)
    } else {
        Ok(())
    }
}
