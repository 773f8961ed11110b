//! Copies: further repositories (agent.yml's `copies:`) that each source's
//! snapshots are copied into with `restic copy` after its datasets are
//! recorded, and the choice of a repository to read a dataset back from
//! (the primary, else a copy that holds it). What a copy holds is recorded
//! in the metadb per dataset; `prune` applies each copy's retention.
//!
//! Built by `config` ([`Copy`]); used by `job` after a backup, by
//! `restore`, `verify`, `dump` and `ls` to read, and by `prune`.

use crate::restic::Repository;
use crate::retention::Retention;

/// How the metadb and `--repository` name the primary repository
/// (agent.yml's `repository:`); no copy may take the name.
pub const PRIMARY: &str = "primary";

/// One configured copy.
#[derive(Clone, Debug)]
pub struct Copy {
    pub name: String,
    pub repository: Repository,
    /// Its own retention; the primary's policies when absent.
    pub retention: Option<Retention>,
}
