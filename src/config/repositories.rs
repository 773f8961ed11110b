//! The repositories a host uses, beyond what restic needs to open one
//! (`restic::Repository`): the copies its snapshots also go to, and this
//! host's part in maintaining them. Built by `config` from agent.yml.

use crate::base::retention::Retention;
use crate::restic::Repository;
use std::time::Duration;

/// One configured copy.
#[derive(Clone, Debug)]
pub struct Copy {
    pub name: String,
    pub repository: Repository,
    /// Its own retention; the primary's policies when absent.
    pub retention: Option<Retention>,
}

/// How long a lease lasts unless renewed (`lease_ttl`).
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(600);

/// What this host does to its repository besides backing up
/// (`maintenance:` in agent.yml).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Maintenance {
    /// Key absent: prune its own snapshots by its own sources' policies,
    /// and check.
    #[default]
    Own,
    /// `false`: never forget, prune or check (its credentials may be
    /// append-only).
    Never,
    /// `true`: prune every host's snapshots by their published policies,
    /// and check.
    All,
}

impl Maintenance {
    /// As `tabacco check` shows it (which leaves the default out).
    pub fn describe(self) -> &'static str {
        match self {
            Maintenance::Own => "this host's snapshots (prunes them, checks)",
            Maintenance::Never => "false (never forgets, prunes or checks)",
            Maintenance::All => {
                "true (prunes every host's snapshots by their published policies, checks)"
            }
        }
    }
}
