//! A source as the rest of tabacco sees it once configuration is validated:
//! its handler resolved, its schedule parsed, its atoms described. Turning
//! atom descriptions into concrete datasets happens at backup time (see
//! `job`), because `atoms_command` and `datasets_command` run then.
//!
//! Built by `config` from the validated types of its parts.

use crate::base::retention::Retention;
use crate::base::schedule::Schedule;
use crate::base::yaml::Origin;
use crate::handler::atom::{self, DatasetSpec};
use crate::handler::Handler;
use std::time::Duration;

/// A validated source.
#[derive(Clone, Debug)]
pub struct Source {
    pub name: String,
    /// The `handler:` value as written (`file`, `pipe` or a template name).
    pub handler_name: String,
    pub handler: Handler,
    pub schedule: Schedule,
    pub datasets: Datasets,
    pub hooks: Hooks,
    /// Limit for the whole backup of this source.
    pub timeout: Option<Duration>,
    /// How long after its due time the metadb may wait for an attempt
    /// before the source is overdue (the metadb's `overdue_grace` if none).
    pub overdue_grace: Option<Duration>,
    pub retention: Option<Retention>,
    /// The copies (agent.yml's `copies:` names) its snapshots go to.
    pub copies: Vec<String>,
    pub min_bytes: Option<u64>,
    /// Its own notification targets, replacing agent.yml's; `Some(empty)`
    /// silences it.
    pub notify: Option<Vec<crate::report::notify::Target>>,
    /// Whether a run missed while the agent was down is made up; agent.yml's
    /// `catch_up` if unset.
    pub catch_up: Option<bool>,
    pub origin: Origin,
}

/// How a source's datasets are known.
#[derive(Clone, Debug)]
pub enum Datasets {
    /// Written in the configuration (`atoms`/`atoms_command`, or `datasets:`).
    Listed(Vec<DatasetSpec>),
    /// Printed as YAML or JSON by a command at each backup.
    Command(String),
}

/// The dataset-level commands of a source, each run through `/bin/sh -c`.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    pub pre_backup: Option<String>,
    pub post_backup: Option<String>,
    pub pre_restore: Option<String>,
    pub post_restore: Option<String>,
}

impl Source {
    /// The full name of atom `short` of this source; the source's own name
    /// for its anonymous atom.
    pub fn atom_full_name(&self, short: &str) -> String {
        atom::full_name(&self.name, short)
    }
}
