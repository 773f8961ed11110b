//! The maintenance thread: the agent's work besides backups. It runs
//! retention (`prune_schedule`) and verification (`verify_schedule`) on
//! their schedules, and carries out this host's restore requests, which it
//! asks the metadb for every few seconds. One task runs at a time, with the
//! configuration in force when it starts (from [`InForce`]); the control
//! plane stops its processes on shutdown; its counters go to the status.
//! The agent owns the thread (a [`Periodic`]).

use crate::agent::catchup::Ledger;
use crate::agent::control::Control;
use crate::agent::loaded::{InForce, Loaded};
use crate::agent::status::Status;
use crate::backup::attempt;
use crate::backup::copy::Reader;
use crate::base::periodic::{Periodic, Tick};
use crate::base::schedule::Schedule;
use crate::config::repositories::Maintenance;
use crate::maintenance::lease::{self, Held};
use crate::maintenance::prune;
use crate::maintenance::verify;
use crate::metadb::Metadb;
use crate::process::shell::Supervisor;
use crate::report::notify::Notifier;
use crate::restore;
use crate::wire::checked::Checked;
use crate::wire::model::{RestoreRequest, RestoreState};
use crate::wire::target::Target;
use chrono::{DateTime, Local, Utc};
use std::sync::Arc;
use std::time::Duration;

/// How often the metadb is asked for restore requests (and schedules
/// looked at).
const RESTORE_POLL: Duration = Duration::from_secs(5);

/// How long a failed drill's notifications may take to be sent.
const NOTIFY_BOUND: Duration = Duration::from_secs(15);

/// When the scheduled tasks run next, for the schedules they were computed from.
#[derive(Default)]
struct Next {
    prune: Option<(String, DateTime<Utc>)>,
    verify: Option<(String, DateTime<Utc>)>,
}

/// Starts the maintenance thread, with the configuration the scheduler
/// publishes in `in_force`.
pub fn spawn(
    in_force: Arc<InForce>,
    control: Arc<Control>,
    status: Arc<Status>,
    metadb: Arc<Metadb>,
) -> Result<Periodic, String> {
    let mut next = Next::default();
    let mut abandoned = false;
    let mut caught_up = false;
    Periodic::spawn("maintenance", move |tick| {
        if tick == Tick::Stopping {
            return RESTORE_POLL;
        }
        let loaded = in_force.get();
        if !abandoned {
            // Requests a previous run of this agent was carrying out when it
            // died would otherwise stay `running` for ever.
            match metadb.abandon_restore_requests(&loaded.config.hostname) {
                Ok(0) => abandoned = true,
                Ok(n) => {
                    log::warn!(
                        "{n} restore requests left running by a previous agent marked failed"
                    );
                    abandoned = true;
                }
                Err(e) => log::debug!("cannot clear abandoned restore requests yet: {e}"),
            }
        }
        let now = Utc::now();
        if !caught_up {
            caught_up = true;
            catch_up(&mut next, &loaded, now);
        }
        // A host with `maintenance: false` never prunes.
        let prune = loaded.config.prune_schedule.as_ref();
        let prune = prune.filter(|_| loaded.config.maintenance != Maintenance::Never);
        if due(&mut next.prune, prune, loaded.offset("prune"), now) {
            prune_now(&control, &status, &metadb, &loaded);
        }
        let verify = loaded.config.verify_schedule.as_ref();
        if due(&mut next.verify, verify, loaded.offset("verify"), now) {
            verify_now(&control, &status, &metadb, &loaded);
        }
        restore_requests(&control, &status, &metadb, &loaded);
        RESTORE_POLL
    })
}

/// Whether a task on `schedule` is due at `now`; plans its next run (with
/// this host's `offset` for `@random_every`, so that hosts sharing a
/// repository do not all prune at once). A changed schedule is planned
/// afresh, from now.
fn due(
    next: &mut Option<(String, DateTime<Utc>)>,
    schedule: Option<&Schedule>,
    offset: u64,
    now: DateTime<Utc>,
) -> bool {
    let Some(schedule) = schedule else {
        *next = None;
        return false;
    };
    let text = schedule.to_string();
    let plan = |from: DateTime<Utc>| {
        schedule
            .next_after(&from.with_timezone(&Local), offset)
            .map(|t| (text.clone(), t.with_timezone(&Utc)))
    };
    match next {
        Some((planned, at)) if *planned == text => {
            if *at > now {
                return false;
            }
            *next = plan(now);
            true
        }
        _ => {
            *next = plan(now);
            false
        }
    }
}

/// Plans prune and verify runs missed while the agent was not running
/// soon (see [`crate::agent::catchup`]), unless `catch_up: false`.
fn catch_up(next: &mut Next, loaded: &Loaded, now: DateTime<Utc>) {
    let config = &loaded.config;
    if !config.catch_up {
        return;
    }
    let ledger = Ledger::new(&config.work_dir);
    for (name, schedule, slot) in [
        ("prune", &config.prune_schedule, &mut next.prune),
        ("verify", &config.verify_schedule, &mut next.verify),
    ] {
        let Some(schedule) = schedule else { continue };
        let (offset, spread) = (loaded.offset(name), config.catch_up_spread);
        if let Some(at) = ledger.catch_up(name, false, schedule, offset, spread, now) {
            *slot = Some((schedule.to_string(), at));
        }
    }
}

fn prune_now(control: &Control, status: &Status, metadb: &Metadb, loaded: &Loaded) {
    let ran = run_task(control, metadb, loaded, "prune", |sup| {
        let held = prune::prune(&loaded.config, metadb, sup, &[], false)?;
        Ok::<_, prune::Error>(match held {
            Held::Ran(forgotten) => Held::Ran(format!(
                "{} forgotten",
                crate::base::count::count(forgotten.len(), "snapshot")
            )),
            Held::Busy { holder, expires } => Held::Busy { holder, expires },
        })
    });
    let mut state = status.lock();
    match ran {
        Some(Ran::Ok) => state.maintenance.last_pruned = Some(Utc::now()),
        Some(Ran::Skipped) => state.maintenance.prune_skipped += 1,
        Some(Ran::Failed) => state.maintenance.prune_failures += 1,
        None => {}
    }
}

fn verify_now(control: &Control, status: &Status, metadb: &Metadb, loaded: &Loaded) {
    let start = Utc::now();
    let ran = run_task(control, metadb, loaded, "verify", |sup| {
        let verified = verify::verify(&loaded.config, metadb, sup, &[], None, None);
        match verified {
            Ok(verified) => {
                if let Some(atom) = verified.loaded {
                    status.lock().maintenance.loaded.insert(atom, Utc::now());
                }
                Ok(Held::Ran(verified.summary))
            }
            Err(e) => {
                let counts = Arc::clone(&status.lock().notifications);
                if let Ok(notifier) = Notifier::spawn(counts) {
                    verify::tell_failure(&loaded.config, &notifier, &e, start);
                    notifier.finish(NOTIFY_BOUND);
                }
                Err(e)
            }
        }
    });
    let mut state = status.lock();
    match ran {
        Some(Ran::Ok) => state.maintenance.last_verified = Some(Utc::now()),
        Some(Ran::Failed) => state.maintenance.verify_failures += 1,
        Some(Ran::Skipped) | None => {}
    }
}

/// How a scheduled task went.
enum Ran {
    Ok,
    /// Another host held the repository's maintenance lease.
    Skipped,
    Failed,
}

/// Runs scheduled task `name` under a supervisor that shutdown stops, and
/// logs and records how it went; `None` if the agent is shutting down and
/// it did not run.
fn run_task<E: std::fmt::Display>(
    control: &Control,
    metadb: &Metadb,
    loaded: &Loaded,
    name: &str,
    task: impl FnOnce(&Supervisor) -> Result<Held<String>, E>,
) -> Option<Ran> {
    let sup = Supervisor::new(loaded.config.priority, name);
    if !control.maintain(&sup) {
        return None;
    }
    let start = Utc::now();
    Ledger::new(&loaded.config.work_dir).record(name, false, start);
    let result = task(&sup);
    control.maintenance_done();
    let host = &loaded.config.hostname;
    let (attempt, ran) = match &result {
        Ok(Held::Ran(done)) => {
            log::info!("{name}: {done}");
            (attempt::of_task(host, name, &[], start, Ok(())), Ran::Ok)
        }
        Ok(Held::Busy { holder, expires }) => {
            let why = lease::busy(holder, expires);
            log::info!("{name} skipped: {why}");
            (attempt::skipped(host, name, &[], start, &why), Ran::Skipped)
        }
        Err(e) => {
            log::error!("{name} failed: {e}");
            (
                attempt::of_task(host, name, &[], start, Err(e as &dyn std::fmt::Display)),
                Ran::Failed,
            )
        }
    };
    attempt::record(metadb, &attempt);
    Some(ran)
}

/// Carries out this host's pending restore requests, oldest first.
fn restore_requests(control: &Control, status: &Status, metadb: &Metadb, loaded: &Loaded) {
    let host = &loaded.config.hostname;
    loop {
        let request = match metadb.next_restore_request(host) {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(e) => {
                log::debug!("cannot ask for restore requests: {e}");
                return;
            }
        };
        let (state, message) = match carry_out(control, loaded, &request) {
            Ok(summary) => (RestoreState::Succeeded, summary),
            Err(e) => (RestoreState::Failed, e),
        };
        log::info!("restore request {}: {state}: {message}", request.id);
        {
            let mut s = status.lock();
            let stats = &mut s.maintenance;
            *(if state == RestoreState::Succeeded {
                &mut stats.restores_succeeded
            } else {
                &mut stats.restores_failed
            }) += 1;
        }
        if let Err(e) = metadb.update_restore_request(host, &request.id, state, &message) {
            log::error!(
                "cannot report the outcome of restore request {}: {e}",
                request.id
            );
        }
        if control.is_shutting_down() {
            return;
        }
    }
}

fn carry_out(
    control: &Control,
    loaded: &Loaded,
    request: &RestoreRequest,
) -> Result<String, String> {
    let target = Target::from_request(request.target.as_deref())?;
    let reader = Reader::new(&loaded.config.repository, &loaded.config.copies)
        .with_further(&loaded.config.further);
    log::info!(
        "restore request {}: restoring {}",
        request.id,
        crate::base::count::count(request.items.len(), "dataset")
    );
    let track = |sup: &Supervisor| {
        if control.maintain(sup) {
            None
        } else {
            Some("agent shutting down".to_string())
        }
    };
    let config = &loaded.config;
    // Records that travelled: each is checked again as it arrives.
    let planned: Vec<_> = request.items.iter().cloned().map(Checked::new).collect();
    let options = restore::Options {
        target: &target,
        parts: &[],
        overwrite: request.overwrite,
        rename: None,
    };
    let tally = restore::carry_out(config, &reader, &planned, &options, &track);
    control.maintenance_done();
    match tally.failed {
        0 => Ok(tally.summary()),
        _ => Err(tally.summary()),
    }
}
