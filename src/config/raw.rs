//! The configuration files exactly as written: serde shapes that reject
//! unknown keys. Meaning, defaults and cross-checks live in `config`. A
//! `notify:` entry's shape is `notify`'s, shared with `metadb.yml`.

use crate::handler::Params;
use crate::report::notify;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub hostname: Option<String>,
    /// Needed by every command but those that only ask the metadb.
    pub repository: Option<Repository>,
    pub copies: Option<Vec<Copy>>,
    pub repositories: Option<Vec<Further>>,
    pub retention: Option<Retention>,
    pub prune_schedule: Option<String>,
    pub verify_schedule: Option<String>,
    pub metadb: Option<Metadb>,
    pub queue_config: Option<QueueConfig>,
    #[serde(default)]
    pub dry_run: bool,
    pub default_nice_level: Option<i32>,
    pub default_io_class: Option<u32>,
    pub work_dir: Option<String>,
    pub random_seed_file: Option<String>,
    pub restic_binary: Option<String>,
    pub restic_retry_lock: Option<String>,
    pub notify: Option<Vec<notify::Entry>>,
    pub catch_up: Option<bool>,
    pub catch_up_spread: Option<String>,
    pub maintenance: Option<bool>,
    pub lease_ttl: Option<String>,
    pub check_slices: Option<u32>,
    pub init: Option<String>,
    pub repository_timeout: Option<String>,
    pub batch_bytes: Option<u64>,
    pub batch_from: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repository {
    /// Accepted for compatibility; an agent has one repository.
    #[allow(dead_code)]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub params: RepositoryParams,
}

/// One entry of `copies:`: a further repository the sources' snapshots
/// are copied into.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Copy {
    pub name: String,
    pub params: RepositoryParams,
    pub retention: Option<Retention>,
}

/// A repository of `repositories:`, read from by name and never written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Further {
    pub name: String,
    pub params: RepositoryParams,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryParams {
    pub uri: String,
    pub password: Option<String>,
    pub password_file: Option<String>,
    pub cache_dir: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub compression: Option<String>,
    pub limit_upload: Option<u32>,
    pub limit_download: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_yearly: Option<u32>,
    pub keep_within: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadb {
    pub url: Option<String>,
    pub token_file: Option<String>,
    pub tls: Option<Tls>,
    pub request_max_timeout: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    pub concurrency: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub name: String,
    pub handler: String,
    pub schedule: Option<String>,
    #[serde(default)]
    pub params: Params,
    pub atoms: Option<Vec<Atom>>,
    pub atoms_command: Option<String>,
    pub datasets: Option<Vec<Dataset>>,
    pub datasets_command: Option<String>,
    pub pre_backup_command: Option<String>,
    pub post_backup_command: Option<String>,
    pub pre_restore_command: Option<String>,
    pub post_restore_command: Option<String>,
    pub timeout: Option<String>,
    pub overdue_grace: Option<String>,
    pub retention: Option<Retention>,
    pub copies: Option<Vec<String>>,
    pub min_bytes: Option<u64>,
    pub batch_bytes: Option<u64>,
    pub batch_from: Option<usize>,
    pub notify: Option<Vec<notify::Entry>>,
    pub catch_up: Option<bool>,
}

/// One entry of `datasets:`, or of what `datasets_command` prints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    pub atoms: Option<Vec<Atom>>,
    pub atoms_command: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Atom {
    pub name: String,
    pub path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handler {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub params: Params,
}
