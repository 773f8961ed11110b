//! One loaded configuration and what is derived from it (the repository,
//! this host's seed, sources by name). The scheduler loads it, at start and
//! on SIGHUP; workers and the maintenance thread hold an `Arc` of the one
//! they started with. [`InForce`] hands the one in force from the scheduler
//! to the maintenance thread. It imports only crate-level modules, so every
//! agent thread can import it.

use crate::base::seed;
use crate::config::source::Source;
use crate::config::Config;
use crate::restic::Repo;
use chrono::{DateTime, Local, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// One loaded configuration and what is derived from it.
pub struct Loaded {
    pub config: Config,
    pub repo: Repo,
    seed: Vec<u8>,
    /// Index of each source in `config.sources`, by name.
    by_name: HashMap<String, usize>,
}

impl Loaded {
    /// Reads the seed `config` names, creating it if needed.
    pub fn new(config: Config) -> Result<Loaded, String> {
        let seed = seed::load_or_create(&config.random_seed_file)?;
        let by_name = config
            .sources
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        Ok(Loaded {
            repo: Repo::new(config.repository.clone()),
            config,
            seed,
            by_name,
        })
    }

    /// The source called `name`.
    pub fn source(&self, name: &str) -> Option<&Source> {
        self.by_name
            .get(name)
            .and_then(|&i| self.config.sources.get(i))
    }

    /// This host's stable offset for `@random_every` schedules of `name`.
    pub fn offset(&self, name: &str) -> u64 {
        seed::offset(&self.seed, name)
    }

    /// The first run of `source` strictly after `now`.
    pub fn next_run(&self, source: &Source, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let offset = seed::offset(&self.seed, &source.name);
        // crontab times are local times.
        source
            .schedule
            .next_after(&now.with_timezone(&Local), offset)
            .map(|t| t.with_timezone(&Utc))
    }
}

/// The configuration in force: the scheduler publishes each one it loads,
/// and the maintenance thread takes it when a task starts.
pub struct InForce(Mutex<Arc<Loaded>>);

impl InForce {
    /// Starts with `loaded` in force.
    pub fn new(loaded: Arc<Loaded>) -> InForce {
        InForce(Mutex::new(loaded))
    }

    /// Puts `loaded` in force.
    pub fn publish(&self, loaded: Arc<Loaded>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = loaded;
    }

    /// The configuration in force now.
    pub fn get(&self) -> Arc<Loaded> {
        Arc::clone(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
