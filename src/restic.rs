//! The restic repository: how restic is invoked (environment, never a
//! password on argv, absolute paths, tags), what its `--json` output means,
//! and what its exit codes and errors mean to a job. What differs between
//! restic versions is decided here, from [`version`]. The repository's
//! settings ([`Repository`], [`Password`]) are restic's own types, built by
//! `config`.
//!
//! One file per concept: [`error`] (a failure, classified), [`output`]
//! (the JSON restic prints), [`snapshot`] (how a stored dataset is named),
//! [`repo`] (the invocation core), [`open`] (opening, proving and creating
//! the repository, with [`layout`], a local repository's files, and
//! [`known`], the ids this host saw), and the operations, each an `impl
//! Repo` of its own: [`backup`], [`restore`] (restore, dump, ls) and
//! [`maintenance`] (snapshots, forget, prune, check, copy), and [`lock`]
//! (the locks and who holds them). Callers use the names re-exported here.

mod backup;
mod error;
pub mod known;
mod layout;
mod lock;
mod maintenance;
mod open;
mod output;
mod repo;
mod repository;
mod restore;
mod snapshot;
mod version;

pub use backup::{BackupInput, BackupRequest};
pub use error::Error;
pub use lock::{Lock, STALE_AFTER};
pub use output::{BackupProgress, Node, Snapshot, Summary};
pub use repo::{is_local, Repo};
pub use repository::{Password, Repository};
pub use snapshot::{stdin_filename, SnapshotRef};
pub use version::Version;
