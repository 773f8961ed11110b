//! Request and answer bodies of the metadb API that are not records of
//! the original's (those are in `model` and `jobs`), and the fleet health
//! records (attempts, plans, status rows): shared by `server` and `client`,
//! so both sides agree on the wire format.

use crate::base::retention::{Retention, Within};
use crate::wire::model::RestoreState;
use serde::{Deserialize, Serialize};

/// The body of `POST /api/remove_datasets`: forget `host`'s datasets whose
/// snapshots were pruned from the repository.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemoveDatasetsRequest {
    pub host: String,
    pub dataset_ids: Vec<String>,
    /// The repository the snapshots were pruned from: `primary` when
    /// absent, else a copy's name. A dataset no repository holds any more
    /// is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The maintenance lease the caller holds, by which a host token may
    /// remove another host's datasets (a maintainer pruned them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
}

/// The answer to `POST /api/remove_datasets`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemoveDatasetsAnswer {
    /// How many of the datasets were recorded (and are now removed).
    pub removed: usize,
}

/// The body of `POST /api/restore_requests/{id}/status`: what the executing
/// agent reports. `host` is needed only with an admin token (a host token
/// says which host it is).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestoreStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `running`, `succeeded` or `failed`.
    pub state: RestoreState,
    #[serde(default)]
    pub message: String,
}

/// The body of `POST /api/restore_requests/abandon`: fail `host`'s requests
/// left `running` (the host's agent restarted). `host` is needed only with
/// an admin token.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AbandonRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// How records, `--repository` and the metadb name a host's primary
/// repository (agent.yml's `repository:`); no copy may take the name.
pub const PRIMARY: &str = "primary";

/// Longest one-line message of an attempt, in bytes.
pub const MAX_LINE_BYTES: usize = 1024;
/// Longest detail (stderr tails) of an attempt, in bytes.
pub const MAX_DETAIL_BYTES: usize = 8192;

/// One attempt to back up a source (`kind` `backup`), or to prune or verify
/// (`prune`, `verify`, with an empty `source` meaning all of the host's):
/// the body of `POST /api/attempts` and an item of `/api/history`. Times are
/// RFC 3339.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub host: String,
    /// `backup`, `prune` or `verify`.
    #[serde(default = "backup_kind")]
    pub kind: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub backup_id: String,
    pub start: String,
    pub end: String,
    /// `ok`, `failed` or `incomplete`; a prune or verify also `skipped`
    /// (another host held the repository's maintenance lease).
    pub state: String,
    /// What it ran into (a failure kind, e.g. `repository_locked`); empty
    /// when it succeeded.
    #[serde(default)]
    pub failure: String,
    /// The one-line reason `run` prints; empty when it succeeded.
    #[serde(default)]
    pub message: String,
    /// Every failure, one a line, with the stderr tail that explains it;
    /// at most 8 KiB (`record` checks it).
    #[serde(default)]
    pub detail: String,
    /// How many datasets were recorded.
    #[serde(default)]
    pub datasets: u32,
}

fn backup_kind() -> String {
    "backup".into()
}

/// How the name of a repository creation lease begins: `create-` and 32
/// hex digits of the location's digest. Any host may take one, as the
/// repository's id is not known before it is created; every other lease
/// is named by a repository's restic id, and granted only to a host that
/// publishes that repository in its plan.
pub const CREATION_LEASE: &str = "create-";

/// The body of `POST /api/plans`: what `host` runs, and when next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub host: String,
    /// Whether these are all of the host's sources (an agent's plan): those
    /// not named stop being watched; `false` adds to the plan (as `tabacco
    /// run` of older releases did).
    #[serde(default)]
    pub replace: bool,
    pub sources: Vec<PlannedSource>,
    /// The repositories the host backs up to (its primary and copies), by
    /// restic id: a host may take the lease of, and maintain, only those
    /// it publishes. Absent (plans of older agents, and the agent's own,
    /// which publishes them apart): the host's list stays as it was;
    /// present, each is added or updated by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repositories: Option<Vec<PlannedRepository>>,
}

/// One repository of a [`Plan`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRepository {
    /// The host's name for it: [`PRIMARY`] or a copy's name.
    pub name: String,
    /// restic's repository id (64 hex digits), the same for every host
    /// however it spells the location.
    pub id: String,
    /// Where it is, with any password in it masked.
    pub location: String,
}

/// A repository as `GET /api/repositories` lists it: its restic id and
/// each host that publishes it, under the name and location that host
/// gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownRepository {
    pub id: String,
    pub users: Vec<RepositoryUser>,
}

/// A host that publishes a [`KnownRepository`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryUser {
    pub host: String,
    pub name: String,
    pub location: String,
}

/// One source of a [`Plan`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedSource {
    pub source: String,
    /// The schedule as configured (shown, not interpreted).
    pub schedule: String,
    /// When it is next due (RFC 3339); none for a schedule that never comes.
    #[serde(default)]
    pub next_due: Option<String>,
    /// Seconds after `next_due` before it is overdue, if not the metadb's
    /// `overdue_grace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue_grace: Option<u64>,
    /// The retention policy its snapshots are pruned by; absent (plans of
    /// older agents too): unknown, and nothing of it is forgotten by
    /// another host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Policy>,
}

/// A retention policy as agent.yml writes it (`keep_within` as written).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_hourly: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_monthly: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_yearly: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_within: Option<String>,
}

impl Policy {
    /// The wire form of `retention`.
    pub fn of(retention: &Retention) -> Policy {
        Policy {
            keep_last: retention.keep_last,
            keep_hourly: retention.keep_hourly,
            keep_daily: retention.keep_daily,
            keep_weekly: retention.keep_weekly,
            keep_monthly: retention.keep_monthly,
            keep_yearly: retention.keep_yearly,
            keep_within: retention
                .keep_within
                .as_ref()
                .map(|w| w.as_written().into()),
        }
    }

    /// The policy this says, if it is one that keeps something.
    pub fn to_retention(&self) -> Result<Retention, String> {
        Retention {
            keep_last: self.keep_last,
            keep_hourly: self.keep_hourly,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
            keep_yearly: self.keep_yearly,
            keep_within: self.keep_within.as_deref().map(Within::parse).transpose()?,
        }
        .validate()
    }
}

/// An item of `GET /api/policies`: the retention policy `host` published
/// for its planned `source`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourcePolicy {
    pub host: String,
    pub source: String,
    pub retention: Policy,
}

/// The body of `POST /api/history`: which attempts, newest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Only attempts that did not end `ok`.
    #[serde(default)]
    pub failed: bool,
    /// Only attempts started at or after this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// At most this many (default 100, at most 10,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// The body of `POST /api/status`: which rows of the fleet's status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Only rows `failed`, `incomplete` or `overdue`.
    #[serde(default)]
    pub problems: bool,
}

/// The status of one planned source of one host: an item of `/api/status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusRow {
    pub host: String,
    pub source: String,
    /// `ok`, `failed`, `incomplete`, `running`, `never` or `overdue`.
    pub state: String,
    pub schedule: String,
    /// When the last attempt ended (RFC 3339).
    pub last_attempt: Option<String>,
    /// When the last attempt that ended `ok` ended.
    pub last_success: Option<String>,
    pub next_due: Option<String>,
    /// The last attempt's reason, or why the source is overdue.
    pub message: String,
    /// When the host last sent a plan or an attempt (or, to a server, any
    /// request with its token since it started).
    pub last_seen: Option<String>,
}

impl StatusRow {
    /// Writes the row as `serde_json` would, in a fraction of its time: a
    /// fleet's status is 100,000 rows, and serde_json's writing of every
    /// key and short value through its escaping was the largest part of
    /// answering it.
    pub fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let fields: [(&[u8], Option<&str>); 9] = [
            (b"{\"host\":", Some(&self.host)),
            (b",\"source\":", Some(&self.source)),
            (b",\"state\":", Some(&self.state)),
            (b",\"schedule\":", Some(&self.schedule)),
            (b",\"last_attempt\":", self.last_attempt.as_deref()),
            (b",\"last_success\":", self.last_success.as_deref()),
            (b",\"next_due\":", self.next_due.as_deref()),
            (b",\"message\":", Some(&self.message)),
            (b",\"last_seen\":", self.last_seen.as_deref()),
        ];
        for (key, value) in fields {
            out.extend_from_slice(key);
            match value {
                None => out.extend_from_slice(b"null"),
                // Only a string that needs escaping goes through serde_json
                // (the test is of every byte, so that it is vectorised).
                Some(s)
                    if s.bytes().fold(false, |escape, b| {
                        escape | (b < 0x20) | (b == b'"') | (b == b'\\')
                    }) =>
                {
                    serde_json::to_writer(&mut *out, s)?
                }
                Some(s) => {
                    out.push(b'"');
                    out.extend_from_slice(s.as_bytes());
                    out.push(b'"');
                }
            }
        }
        out.push(b'}');
        Ok(())
    }

    /// Whether the row needs someone's attention.
    pub fn is_problem(&self) -> bool {
        matches!(self.state.as_str(), "failed" | "incomplete" | "overdue")
    }
}

/// The body of `POST /api/retire_host` (admin): stop watching `host`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetireRequest {
    pub host: String,
}

/// The body of `POST /api/copies`: `host`'s datasets `dataset_ids` are now
/// held by copy `repository` too.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CopiesRequest {
    pub host: String,
    pub repository: String,
    pub dataset_ids: Vec<String>,
}

/// The answer to `POST /api/copies`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CopiesAnswer {
    /// How many of the datasets are `host`'s and now recorded as held.
    pub recorded: usize,
}

/// The body of `POST /api/copies/due`: which of `host`'s datasets of
/// `source` the primary holds and copy `repository` does not yet. Asking
/// says that the source is copied there, so that the metadb counts what is
/// missing as the copy's lag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DueRequest {
    pub host: String,
    pub source: String,
    pub repository: String,
    /// At most this many, oldest first.
    pub limit: u32,
}

/// A dataset a copy does not hold yet: an item of `/api/copies/due`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Due {
    pub dataset_id: String,
    pub snapshot_id: String,
}

/// How many of `host`'s datasets copy `repository` lacks: an item of
/// `GET /api/copies/lag`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lag {
    pub host: String,
    pub repository: String,
    pub datasets: u64,
}

/// The body of `POST /api/leases`: `holder` asks to maintain repository
/// `name` (restic's repository id) for `ttl` seconds from now. It gets the
/// lease if it is free, expired or already its own (a renewal).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeaseRequest {
    pub name: String,
    pub holder: String,
    pub ttl: u64,
}

/// The answer to `POST /api/leases`: who holds the lease now, and until
/// when (RFC 3339); `granted` if that is the asker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub granted: bool,
    pub holder: String,
    pub expires: String,
}

/// The body of `POST /api/leases/release`: `holder` is done with lease
/// `name` (a lease of another holder stays).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReleaseRequest {
    pub name: String,
    pub holder: String,
}

/// Where the rotated check of a repository stands: an item of `GET
/// /api/proofs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proof {
    /// restic's repository id.
    pub repository: String,
    /// Into how many slices its data is read back, one a check.
    pub slices: u32,
    /// The slice the next check reads (1 to `slices`).
    pub next_slice: u32,
    /// When the last of a full round of slices was read back (RFC 3339).
    #[serde(default)]
    pub whole_read: Option<String>,
}

/// The answer to `GET /api/proofs`: "last proven restorable".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Proofs {
    /// Where each repository's rotated check stands.
    pub repositories: Vec<Proof>,
    /// When each atom was last restored by a drill that passed, newest
    /// first (a host token's own only under `host_read: own`).
    pub atoms: Vec<Restored>,
}

/// When `atom` of `host` was last restored by a restore drill that passed,
/// and last proven to load by its source's proof.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Restored {
    pub host: String,
    pub atom: String,
    /// RFC 3339.
    pub restored: String,
    /// RFC 3339; absent if never proven to load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded: Option<String>,
}

/// The body of `POST /api/proofs/read`: slice `slice` of `slices` of
/// `repository`'s data was read back and found sound.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SliceRead {
    pub repository: String,
    pub slices: u32,
    pub slice: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_row_is_written_as_serde_json_writes_it() {
        let plain = StatusRow {
            host: "web3".into(),
            source: "users".into(),
            state: "ok".into(),
            schedule: "@daily".into(),
            last_attempt: Some("2026-01-01T00:01:00Z".into()),
            last_success: None,
            next_due: Some("2026-01-02T00:00:00Z".into()),
            message: String::new(),
            last_seen: None,
        };
        let hostile = StatusRow {
            host: "alice@example.org".into(),
            source: "a\"b\\c".into(),
            state: "failed".into(),
            schedule: "\u{1}\u{1f}\t\n\r\u{8}\u{c}".into(),
            message: "ünïcödé \u{2028} \u{202e} \u{7f} 😀".into(),
            ..plain.clone()
        };
        for row in [plain, hostile, StatusRow::default()] {
            let mut ours = Vec::new();
            row.write_json(&mut ours).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&row).unwrap()
            );
        }
    }
}
