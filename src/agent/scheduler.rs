//! The scheduler: the agent's main loop. It knows when each source runs
//! next, queues due sources (never one that is still queued or running),
//! hands them to the worker pool up to `queue_config.concurrency` at a time,
//! and acts on signals: reload, run everything now, shut down.
//!
//! It sleeps in `recv_timeout` until the next due time or the next event
//! (a signal, or a worker that finished), so an idle agent costs nothing.

use crate::agent::catchup::Ledger;
use crate::agent::control::Control;
use crate::agent::event::Event;
use crate::agent::loaded::{InForce, Loaded};
use crate::agent::status::Status;
use crate::agent::worker::{Job, Pool};
use crate::base::periodic::Waker;
use crate::config::Config;
use crate::metadb::Metadb;
use chrono::{DateTime, Utc};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest sleep: wall-clock time may jump (suspend, NTP) while
/// `recv_timeout` measures monotonic time.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// The main loop's state.
pub struct Scheduler {
    config_path: PathBuf,
    loaded: Arc<Loaded>,
    next_run: HashMap<String, DateTime<Utc>>,
    /// Due sources waiting for a free worker, in order.
    pending: VecDeque<String>,
    /// Sources pending or with a worker: not to be queued again.
    busy: HashSet<String>,
    /// How many of `busy` a worker holds.
    dispatched: usize,
    pool: Pool,
    status: Arc<Status>,
    control: Arc<Control>,
    /// Where each loaded configuration is published for the maintenance thread.
    in_force: Arc<InForce>,
    events: Receiver<Event>,
}

impl Scheduler {
    /// A scheduler for the configuration in force, with its worker pool
    /// started.
    pub fn new(
        config_path: PathBuf,
        in_force: Arc<InForce>,
        metadb: Arc<Metadb>,
        status: Arc<Status>,
        control: Arc<Control>,
        events: (Sender<Event>, Receiver<Event>),
    ) -> Result<Scheduler, String> {
        let loaded = in_force.get();
        let mut pool = Pool::new(Arc::clone(&status), Arc::clone(&control), metadb, events.0)?;
        pool.resize(loaded.config.concurrency)?;
        let mut scheduler = Scheduler {
            config_path,
            loaded,
            next_run: HashMap::new(),
            pending: VecDeque::new(),
            busy: HashSet::new(),
            dispatched: 0,
            pool,
            status,
            control,
            in_force,
            events: events.1,
        };
        let now = Utc::now();
        scheduler.plan(now);
        scheduler.catch_up(now);
        Ok(scheduler)
    }

    /// Brings forward the next run of every source that missed one while
    /// the agent was not running (see [`crate::agent::catchup`]).
    fn catch_up(&mut self, now: DateTime<Utc>) {
        let loaded = Arc::clone(&self.loaded);
        let config = &loaded.config;
        let ledger = Ledger::new(&config.work_dir);
        for source in config.sources.iter().filter(|s| config.catches_up(s)) {
            let offset = loaded.offset(&source.name);
            let spread = config.catch_up_spread;
            let Some(at) =
                ledger.catch_up(&source.name, true, &source.schedule, offset, spread, now)
            else {
                continue;
            };
            if self.next_run.get(&source.name).is_some_and(|t| *t <= at) {
                continue;
            }
            self.next_run.insert(source.name.clone(), at);
            if let Some(entry) = self.status.lock().sources.get_mut(&source.name) {
                entry.next_run = Some(at);
            }
        }
    }

    /// Runs until SIGTERM or SIGINT, then stops the running jobs and waits
    /// for the workers. Each reload wakes `reporter`, which republishes the
    /// plan at once.
    pub fn run(mut self, reporter: &Waker) {
        log::info!(
            "agent started: {} sources, concurrency {}",
            self.loaded.config.sources.len(),
            self.loaded.config.concurrency
        );
        loop {
            let now = Utc::now();
            self.queue_due(now);
            self.dispatch();
            let sleep = self.sleep_after(now);
            match self.events.recv_timeout(sleep) {
                Ok(Event::Finished(source)) => self.finished(&source),
                Ok(Event::Signal(SIGHUP)) => {
                    self.reload();
                    reporter.wake();
                }
                Ok(Event::Signal(SIGUSR1)) => {
                    log::info!("SIGUSR1: queueing every source now");
                    let names: Vec<String> = self.source_names();
                    names.iter().for_each(|name| self.queue(name));
                }
                Ok(Event::Signal(SIGTERM | SIGINT)) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(Event::Signal(signal)) => log::debug!("ignoring signal {signal}"),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        log::info!("shutting down: stopping running jobs");
        self.pending.clear();
        self.status.lock().shutting_down = true;
        self.control.shut_down("agent shutting down");
        self.pool.stop();
    }

    /// A worker is done with `name`: it may be queued again.
    fn finished(&mut self, name: &str) {
        self.busy.remove(name);
        self.dispatched = self.dispatched.saturating_sub(1);
    }

    fn source_names(&self) -> Vec<String> {
        let sources = &self.loaded.config.sources;
        sources.iter().map(|s| s.name.clone()).collect()
    }

    /// Computes next runs for sources that have none (new ones), and
    /// publishes schedules and next runs to the status, the configuration
    /// to the maintenance thread.
    fn plan(&mut self, now: DateTime<Utc>) {
        let loaded = Arc::clone(&self.loaded);
        self.in_force.publish(Arc::clone(&loaded));
        let mut state = self.status.lock();
        state.host.clone_from(&loaded.config.hostname);
        state
            .sources
            .retain(|name, _| loaded.source(name).is_some());
        for source in &loaded.config.sources {
            if !self.next_run.contains_key(&source.name) {
                if let Some(t) = loaded.next_run(source, now) {
                    self.next_run.insert(source.name.clone(), t);
                }
            }
            let entry = state.sources.entry(source.name.clone()).or_default();
            entry.schedule = source.schedule.to_string();
            entry.overdue_grace = source.overdue_grace;
            entry.retention = loaded.config.retention_of(source).cloned();
            entry.next_run = self.next_run.get(&source.name).copied();
        }
    }

    /// Queues every source whose time has come and plans its next run.
    fn queue_due(&mut self, now: DateTime<Utc>) {
        let loaded = Arc::clone(&self.loaded);
        for source in &loaded.config.sources {
            match self.next_run.get(&source.name) {
                Some(t) if *t <= now => {}
                _ => continue,
            }
            // From now, not from the missed time: runs missed while the
            // host slept are not made up one by one.
            match loaded.next_run(source, now) {
                Some(t) => self.next_run.insert(source.name.clone(), t),
                None => self.next_run.remove(&source.name),
            };
            if let Some(entry) = self.status.lock().sources.get_mut(&source.name) {
                entry.next_run = self.next_run.get(&source.name).copied();
            }
            self.queue(&source.name);
        }
    }

    /// Queues `name` unless it is queued or running already.
    fn queue(&mut self, name: &str) {
        if self.busy.contains(name) {
            log::warn!("source {name}: previous backup still running or queued; not started again");
            if let Some(entry) = self.status.lock().sources.get_mut(name) {
                entry.overlaps += 1;
            }
            return;
        }
        self.busy.insert(name.to_string());
        self.pending.push_back(name.to_string());
    }

    /// Hands pending sources to workers while fewer than `concurrency` run.
    fn dispatch(&mut self) {
        let now = Utc::now();
        while self.dispatched < self.loaded.config.concurrency {
            let Some(source) = self.pending.pop_front() else {
                return;
            };
            let deadline = self
                .next_run
                .get(&source)
                .copied()
                .unwrap_or(now + chrono::Duration::days(1));
            self.pool.submit(Job {
                source,
                loaded: Arc::clone(&self.loaded),
                deadline,
            });
            self.dispatched += 1;
        }
    }

    /// How long to sleep: until the next due run, at most [`MAX_SLEEP`].
    fn sleep_after(&self, now: DateTime<Utc>) -> Duration {
        let Some(next) = self.next_run.values().min() else {
            return MAX_SLEEP;
        };
        // Rounded up to the millisecond so that a wake-up is never early.
        let ms = (*next - now).num_milliseconds().max(0) + 1;
        Duration::from_millis(u64::try_from(ms).unwrap_or(0)).min(MAX_SLEEP)
    }

    /// Rereads the configuration; a bad one is logged and the current one
    /// kept. Running jobs keep the configuration they started with.
    fn reload(&mut self) {
        let started = Instant::now();
        let path = self.config_path.display().to_string();
        log::info!("SIGHUP: reloading configuration from {path}");
        let config = match Config::load(&self.config_path) {
            Ok(config) => config,
            Err(errors) => {
                for e in &errors.0 {
                    log::error!("reload: {e}");
                }
                log::error!("reload of {path} rejected; the current configuration stays in force");
                return;
            }
        };
        let loaded = match Loaded::new(config) {
            Ok(loaded) => loaded,
            Err(e) => {
                log::error!("reload of {path} rejected: {e}");
                return;
            }
        };
        let old = &self.loaded.config;
        let new = &loaded.config;
        if old.work_dir != new.work_dir
            || old.metadb.as_ref().map(|m| &m.url) != new.metadb.as_ref().map(|m| &m.url)
        {
            log::warn!("reload: work_dir and metadb changes take effect when the agent restarts");
        }
        if let Err(e) = self.pool.resize(new.concurrency) {
            log::error!("reload: {e}");
        }
        let before: HashSet<String> = self.source_names().into_iter().collect();
        let old_loaded = std::mem::replace(&mut self.loaded, Arc::new(loaded));
        let after: HashSet<String> = self.source_names().into_iter().collect();
        // Keep the next run of a source whose schedule did not change.
        let now = Utc::now();
        let loaded = Arc::clone(&self.loaded);
        self.next_run.retain(|name, next| {
            let Some(new) = loaded.source(name) else {
                return false;
            };
            if old_loaded.source(name).is_some_and(|old| {
                old.schedule.to_string() == new.schedule.to_string()
                    && old_loaded.next_run(old, now) == loaded.next_run(new, now)
            }) {
                return true;
            }
            if let Some(t) = loaded.next_run(new, now) {
                *next = t;
                return true;
            }
            false
        });
        // Removed sources leave the queue; a running one finishes.
        let removed_pending: Vec<String> = self
            .pending
            .iter()
            .filter(|name| !after.contains(*name))
            .cloned()
            .collect();
        self.pending.retain(|name| after.contains(name));
        for name in removed_pending {
            self.busy.remove(&name);
        }
        self.plan(now);
        let mut added: Vec<&String> = after.difference(&before).collect();
        let mut removed: Vec<&String> = before.difference(&after).collect();
        added.sort();
        removed.sort();
        log::info!(
            "configuration reloaded in {}ms: {} sources (added: {}; removed: {})",
            started.elapsed().as_millis(),
            after.len(),
            list(&added),
            list(&removed)
        );
    }
}

fn list(names: &[&String]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::mpsc;

    /// A schedule that never comes during a test.
    const NEVER: &str = "0 0 1 1 *";

    /// An agent.yml with `sources/` beside it, in a fresh directory.
    struct Fixture {
        dir: PathBuf,
    }

    impl Fixture {
        fn new(name: &str) -> Fixture {
            let dir = std::env::temp_dir()
                .join(format!("tabacco-scheduler-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("sources")).unwrap();
            let agent = format!(
                "hostname: test-host\nrepository:\n  params:\n    uri: {dir}/repo\n    \
                 password: secret\nwork_dir: {dir}/work\ncatch_up: false\n",
                dir = dir.display()
            );
            fs::write(dir.join("agent.yml"), agent).unwrap();
            Fixture { dir }
        }

        /// Writes source `name` on `schedule` (or removes it, if `None`).
        fn source(&self, name: &str, schedule: Option<&str>) {
            let path = self.dir.join("sources").join(format!("{name}.yml"));
            match schedule {
                Some(schedule) => fs::write(
                    path,
                    format!(
                        "- name: {name}\n  handler: pipe\n  schedule: \"{schedule}\"\n  \
                         params:\n    backup_command: \"echo {name}\"\n"
                    ),
                )
                .unwrap(),
                None => fs::remove_file(path).unwrap(),
            }
        }

        /// A scheduler for the configuration as written now.
        fn scheduler(&self) -> Scheduler {
            let path = self.dir.join("agent.yml");
            let config = Config::load(&path).unwrap();
            let loaded = Arc::new(Loaded::new(config).unwrap());
            let metadb = Arc::new(
                Metadb::open(&loaded.config.work_dir, loaded.config.metadb.as_ref()).unwrap(),
            );
            let in_force = Arc::new(InForce::new(loaded));
            let parts = (Arc::default(), Arc::default(), mpsc::channel());
            Scheduler::new(path, in_force, metadb, parts.0, parts.1, parts.2).unwrap()
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                let _ = fs::remove_dir_all(&self.dir);
            }
        }
    }

    fn names<'a>(names: impl Iterator<Item = &'a String>) -> Vec<&'a str> {
        let mut names: Vec<&str> = names.map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn reload_schedules_new_sources_and_forgets_removed_ones() {
        let f = Fixture::new("added");
        f.source("a", Some(NEVER));
        f.source("b", Some(NEVER));
        let mut scheduler = f.scheduler();
        assert_eq!(names(scheduler.next_run.keys()), ["a", "b"]);
        f.source("b", None);
        f.source("c", Some(NEVER));
        scheduler.reload();
        assert_eq!(names(scheduler.next_run.keys()), ["a", "c"]);
        assert_eq!(names(scheduler.status.lock().sources.keys()), ["a", "c"]);
        let in_force = scheduler.in_force.get();
        assert!(Arc::ptr_eq(&in_force, &scheduler.loaded));
        assert!(in_force.source("c").is_some() && in_force.source("b").is_none());
    }

    #[test]
    fn reload_keeps_an_unchanged_schedules_next_run_and_replans_a_changed_one() {
        let f = Fixture::new("changed");
        f.source("same", Some("0 3 * * *"));
        f.source("moved", Some("0 3 * * *"));
        let mut scheduler = f.scheduler();
        // A next run no schedule would give, as a catch-up would set it.
        let planned = Utc::now() + chrono::Duration::minutes(7);
        for name in ["same", "moved"] {
            scheduler.next_run.insert(name.into(), planned);
        }
        f.source("moved", Some("0 4 * * *"));
        scheduler.reload();
        assert_eq!(scheduler.next_run["same"], planned);
        let moved = scheduler.loaded.source("moved").unwrap();
        let replanned = scheduler.loaded.next_run(moved, Utc::now());
        assert_eq!(scheduler.next_run.get("moved").copied(), replanned);
        let status = scheduler.status.lock();
        assert_eq!(status.sources["moved"].schedule, "0 4 * * *");
        assert_eq!(status.sources["moved"].next_run, replanned);
        assert_eq!(status.sources["same"].next_run, Some(planned));
    }

    #[test]
    fn reload_unqueues_removed_sources_but_a_running_one_finishes() {
        let f = Fixture::new("removed");
        for name in ["kept", "queued", "running"] {
            f.source(name, Some(NEVER));
        }
        let mut scheduler = f.scheduler();
        // As dispatch() leaves a source a worker took.
        scheduler.queue("running");
        scheduler.pending.clear();
        scheduler.dispatched = 1;
        scheduler.queue("queued");
        scheduler.queue("kept");
        f.source("queued", None);
        f.source("running", None);
        scheduler.reload();
        assert_eq!(Vec::from(scheduler.pending.clone()), ["kept"]);
        assert_eq!(names(scheduler.busy.iter()), ["kept", "running"]);
        assert_eq!(scheduler.dispatched, 1);
        // Its worker's end frees the slot it held.
        scheduler.finished("running");
        assert_eq!(names(scheduler.busy.iter()), ["kept"]);
        assert_eq!(scheduler.dispatched, 0);
    }

    #[test]
    fn a_rejected_reload_keeps_the_configuration_in_force() {
        let f = Fixture::new("rejected");
        f.source("a", Some(NEVER));
        let mut scheduler = f.scheduler();
        let before = Arc::clone(&scheduler.loaded);
        let next = scheduler.next_run.clone();
        f.source("a", None);
        fs::write(
            f.dir.join("sources/b.yml"),
            "- name: b\n  handler: nosuch\n",
        )
        .unwrap();
        scheduler.reload();
        assert!(Arc::ptr_eq(&scheduler.loaded, &before));
        assert!(Arc::ptr_eq(&scheduler.in_force.get(), &before));
        assert_eq!(scheduler.next_run, next);
        assert_eq!(names(scheduler.status.lock().sources.keys()), ["a"]);
    }
}
