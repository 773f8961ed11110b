//! Loading and validating the agent configuration: `agent.yml`, and the
//! `sources/*.yml` and `handlers/*.yml` beside it. Everything that can be
//! checked before a backup runs is checked here, and every error names the
//! file, the line and the key or value at fault ([`Error`]).
//!
//! Resolution turns the serde shapes of `raw` (private to this module)
//! into the validated types of the modules that own their meaning:
//! `restic::Repository`, `retention::Retention`, `handler::Handler`,
//! `atom::DatasetSpec`, `notify::Target`,
//! `metadb::client::connection::Connection`, and the [`source::Source`]
//! that holds them. This file holds the [`Config`] and the order of
//! loading; each step is its own module: `agent` (agent.yml's settings),
//! [`repositories`] (the repository, copies and maintenance), `template`
//! (handler templates), [`source`] and [`datasets`] (sources), `value`
//! (the kinds of value they share), `file` (the directories beside
//! agent.yml; one file is read by `base::yaml`) and `error`.

mod agent;
pub mod datasets;
mod error;
mod file;
mod raw;
pub mod repositories;
pub mod source;
mod template;
mod value;

use crate::base::retention::Retention;
use crate::base::schedule::Schedule;
use crate::base::yaml::{self, Origin};
use crate::metadb;
use crate::process::shell::Priority;
use crate::report::notify;
use crate::restic::Repository;
pub use error::{Error, Errors, Problem};
use repositories::{Copy, Further, Init, Maintenance};
use source::Source;
use std::path::{Path, PathBuf};
use std::time::Duration;
use template::Templates;

/// Where the agent configuration lives unless `--config` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/tabacco/agent.yml";

/// The validated agent configuration with its sources.
#[derive(Clone, Debug)]
pub struct Config {
    pub hostname: String,
    pub repository: Repository,
    /// Further repositories each source's snapshots are copied into.
    pub copies: Vec<Copy>,
    /// `repositories:`: other hosts' repositories this host reads from.
    pub further: Vec<Further>,
    pub retention: Option<Retention>,
    pub prune_schedule: Option<Schedule>,
    pub verify_schedule: Option<Schedule>,
    /// Absent: the embedded metadb in `work_dir`.
    pub metadb: Option<metadb::client::connection::Connection>,
    pub concurrency: usize,
    pub dry_run: bool,
    pub priority: Priority,
    pub work_dir: PathBuf,
    pub random_seed_file: PathBuf,
    /// Told of every source's backups, unless a source has its own.
    pub notify: Vec<notify::Target>,
    /// Where agent.yml's settings are written, for errors found later
    /// (a password file that cannot be read).
    pub origin: Origin,
    /// Whether prune and verify, and sources without their own
    /// `catch_up`, make up a run missed while the agent was down.
    pub catch_up: bool,
    /// Catch-up runs start within this long after the agent.
    pub catch_up_spread: Duration,
    /// What this host prunes and checks (`maintenance:`).
    pub maintenance: Maintenance,
    /// How long a maintenance lease lasts unless renewed.
    pub lease_ttl: Duration,
    /// Into how many slices `verify`'s check reads the repository's data
    /// back, one a run (0: it reads none back).
    pub check_slices: u32,
    /// Whether a backup creates a missing repository (`init:`).
    pub init: Init,
    /// The most bytes a pipe source's batch stages before one restic
    /// backs them up, unless the source says (0: never batched; see
    /// `backup::batch`).
    pub batch_bytes: u64,
    /// How many atoms a pipe source has at least for it to be batched,
    /// unless the source says.
    pub batch_from: usize,
    pub sources: Vec<Source>,
}

/// What the commands that only ask the metadb (`query`, `history`,
/// `status`, `retire-host`) need: agent.yml's `work_dir` and `metadb:`, so
/// that an administrator's file holding only `metadb:` (with the admin
/// token's `token_file`) serves them without a repository or sources.
#[derive(Clone, Debug)]
pub struct FleetAccess {
    pub work_dir: PathBuf,
    /// Absent: the embedded metadb in `work_dir`.
    pub metadb: Option<metadb::client::connection::Connection>,
}

impl FleetAccess {
    /// Reads `path`'s `work_dir` and `metadb:`; `sources/` and `handlers/`
    /// are not read.
    pub fn load(path: &Path) -> Result<FleetAccess, Errors> {
        let (agent, origin) = yaml::read_one::<raw::Agent>(path).map_err(Error::from)?;
        agent::fleet(agent, &origin)
    }
}

impl Config {
    /// Reads `path` and the `sources/` and `handlers/` directories beside it.
    pub fn load(path: &Path) -> Result<Config, Errors> {
        let (agent, origin) = yaml::read_one::<raw::Agent>(path).map_err(Error::from)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut errors = Vec::new();
        let config = agent::resolve(agent, &origin)
            .map_err(|e| errors.extend(e.0))
            .ok();
        let handlers = file::entries(&dir.join("handlers"), &mut errors);
        let templates = Templates::new(handlers, &mut errors);
        // Without agent.yml's copies (it failed), a source's are not judged.
        let copies: Option<Vec<String>> = config
            .as_ref()
            .map(|c| c.copies.iter().map(|c| c.name.clone()).collect());
        let sources = file::entries(&dir.join("sources"), &mut errors);
        let sources = source::resolve_all(sources, &templates, copies.as_deref(), &mut errors);
        // By file and line, as a reader goes through them.
        errors.sort_by(|a, b| {
            let at = |e: &Error| e.origin.as_ref().map(|o| (o.file.clone(), o.line));
            at(a).cmp(&at(b))
        });
        match config {
            Some(config) if errors.is_empty() => Ok(Config { sources, ..config }),
            _ => Err(Errors(errors)),
        }
    }

    /// The targets told of `source`'s backups: its own `notify:` list,
    /// which replaces agent.yml's, or agent.yml's.
    pub fn targets<'a>(&'a self, source: &'a Source) -> &'a [notify::Target] {
        source.notify.as_deref().unwrap_or(&self.notify)
    }

    /// The copies `source`'s snapshots go to.
    pub fn copies_of(&self, source: &Source) -> Vec<&Copy> {
        let named = |c: &&Copy| source.copies.contains(&c.name);
        self.copies.iter().filter(named).collect()
    }

    /// The retention policy `source`'s snapshots are pruned by: its own,
    /// else the agent's; none keeps everything.
    pub fn retention_of<'a>(&'a self, source: &'a Source) -> Option<&'a Retention> {
        source.retention.as_ref().or(self.retention.as_ref())
    }

    /// Whether `source` makes up a run missed while the agent was down.
    pub fn catches_up(&self, source: &Source) -> bool {
        source.catch_up.unwrap_or(self.catch_up)
    }

    /// The sources called `names`, or all of them when `names` is empty.
    pub fn select(&self, names: &[String]) -> Result<Vec<&Source>, Error> {
        if names.is_empty() {
            return Ok(self.sources.iter().collect());
        }
        names
            .iter()
            .map(|n| {
                self.sources.iter().find(|s| &s.name == n).ok_or_else(|| {
                    Error::new(Problem::UnknownSource {
                        name: n.clone(),
                        known: self.sources.iter().map(|s| s.name.clone()).collect(),
                    })
                })
            })
            .collect()
    }

    /// Every password file of the repository and its copies that restic
    /// could not use (missing, unreadable or empty), located at its key in
    /// agent.yml. Read when a command is about to use them (`check`,
    /// `run`), not at load: a file may come later than the configuration.
    pub fn check_password_files(&self) -> Result<(), Errors> {
        repositories::check_password_files(self)
    }

    /// The embedded metadb's database file.
    pub fn embedded_db_path(&self) -> PathBuf {
        metadb::embedded_path(&self.work_dir)
    }
}
