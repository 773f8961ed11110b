//! The repository settings tabacco runs restic with: where the
//! repository is, its password, cache and backend environment, which restic
//! to run and its global options. `config` builds them from agent.yml;
//! [`crate::restic::Repo`] turns them into restic's environment and arguments.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The restic repository and how to open it.
#[derive(Clone, Debug)]
pub struct Repository {
    pub uri: String,
    pub password: Password,
    pub cache_dir: PathBuf,
    /// Extra environment for restic only (backend credentials).
    pub env: BTreeMap<String, String>,
    /// The restic to run: a name looked up on PATH, or an absolute path.
    pub binary: PathBuf,
    /// How long restic 0.16 and newer wait for another process's lock.
    pub retry_lock: Duration,
    /// restic's global options from `compression`, `limit_upload` and
    /// `limit_download`, given to every restic call.
    pub options: Vec<String>,
    /// How long the repository may take to answer when it is opened or
    /// created (`repository_timeout`): restic 0.17 and newer retry an
    /// unreachable backend for a quarter of an hour.
    pub timeout: Duration,
    /// Where this host keeps the ids of the repositories it opened, by
    /// location, to tell when a location holds another one.
    pub known_ids: PathBuf,
}

/// The repository password: kept out of argv, logs and `Debug` output.
#[derive(Clone)]
pub enum Password {
    File(PathBuf),
    Literal(String),
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Password::File(path) => write!(f, "File({path:?})"),
            Password::Literal(_) => f.write_str("Literal(<redacted>)"),
        }
    }
}
