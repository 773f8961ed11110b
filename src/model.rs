//! The records every part of tabacco shares: what a backup is, what it
//! contains, and how a client asks for it. Their JSON shape is the wire
//! format of the metadb API and of `query --json`, so field names follow the
//! original API and may only ever be added to.

use serde::{Deserialize, Serialize};

/// One run of one source on one host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backup {
    pub id: String,
    /// RFC 3339, UTC.
    pub timestamp: String,
    pub host: String,
    #[serde(default)]
    pub datasets: Vec<Dataset>,
}

/// One restic snapshot: a set of atoms backed up together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub id: String,
    pub source: String,
    pub atoms: Vec<Atom>,
    /// restic's snapshot id as its backup summary gave it: full from restic
    /// 0.15 on, short (8 hex digits) from 0.14; [`Dataset::tag`] names the
    /// snapshot where a short id is ambiguous.
    pub snapshot_id: String,
    #[serde(default)]
    pub total_files: i64,
    #[serde(default)]
    pub total_bytes: i64,
    #[serde(default)]
    pub bytes_added: i64,
    /// Seconds.
    #[serde(default)]
    pub duration: f64,
}

impl Dataset {
    /// A dataset not backed up yet: no snapshot, no statistics.
    pub fn new(id: String, source: String, atoms: Vec<Atom>) -> Dataset {
        Dataset {
            id,
            source,
            atoms,
            snapshot_id: String::new(),
            total_files: 0,
            total_bytes: 0,
            bytes_added: 0,
            duration: 0.0,
        }
    }

    /// The restic tag that names this dataset's snapshot and nothing else.
    pub fn tag(&self) -> String {
        snapshot_tag(&self.id)
    }
}

/// The restic tag that names the snapshot of dataset `id`.
pub fn snapshot_tag(dataset_id: &str) -> String {
    format!("tabacco:dataset={dataset_id}")
}

/// The smallest restorable unit, by its full name (`users/account1`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Atom {
    pub name: String,
    /// Absolute path in the snapshot (file handler only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A search over recorded atoms.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FindRequest {
    /// Shell glob over full atom names.
    pub pattern: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Newest N versions of each atom; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_versions: Option<u32>,
    /// RFC 3339: only backups strictly older than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub older_than: Option<String>,
}

/// One dataset of a restore plan, holding only the atoms to restore.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestoreItem {
    /// The backup the dataset belongs to (its `datasets` left empty).
    pub backup: Backup,
    pub dataset: Dataset,
}

/// A restore that an operator asks a host's agent to carry out, with its
/// plan resolved, so that the agent needs no read access of its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestoreRequest {
    /// Chosen by the requester; posting the same id again changes nothing.
    pub id: String,
    /// The host whose agent carries it out.
    pub host: String,
    /// Absolute directory for file atoms; absent means in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub items: Vec<RestoreItem>,
    /// `pending`, `running`, `succeeded` or `failed`; set by the metadb and
    /// the executing agent.
    #[serde(default)]
    pub state: String,
    /// Progress or outcome, one line.
    #[serde(default)]
    pub message: String,
    /// RFC 3339, set by the metadb.
    #[serde(default)]
    pub created: String,
    #[serde(default)]
    pub updated: String,
}

/// The outcome of a restore drill (`tabacco verify`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// RFC 3339, UTC.
    pub timestamp: String,
    pub host: String,
    /// The atom restored.
    pub atom: String,
    pub backup_id: String,
    pub ok: bool,
    /// What was checked, or what failed.
    pub message: String,
}

/// One running job, as an agent reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveJob {
    pub host: String,
    pub job_id: String,
    #[serde(default)]
    pub backup_id: String,
    #[serde(default)]
    pub dataset_id: String,
    #[serde(default)]
    pub dataset_source: String,
    #[serde(default)]
    pub status: String,
}

/// The body of `POST /api/update_active_job_status`: all of `host`'s
/// running jobs (an empty list when it is idle).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateActiveJobStatusRequest {
    pub host: String,
    #[serde(default)]
    pub active_jobs: Vec<ActiveJob>,
}

/// The body of `POST /api/add_dataset`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddDatasetRequest {
    pub backup: Backup,
    pub dataset: Dataset,
}

/// The tags of a dataset's snapshot: enough to rebuild its metadb record
/// (`reindex`) from the repository alone. Atom paths are percent-encoded
/// where restic would split or misread them (`,`).
pub fn snapshot_tags(backup: &Backup, dataset: &Dataset) -> Vec<String> {
    let mut tags = vec![
        "tabacco".to_string(),
        format!("tabacco:backup={}", backup.id),
        format!("tabacco:source={}", dataset.source),
        dataset.tag(),
    ];
    for atom in &dataset.atoms {
        match &atom.path {
            Some(path) => {
                let path = path.replace('%', "%25").replace(',', "%2C");
                tags.push(format!("tabacco:atom={}:{path}", atom.name));
            }
            None => tags.push(format!("tabacco:atom={}", atom.name)),
        }
    }
    tags
}

/// What [`snapshot_tags`] wrote, read back: the backup id and the dataset
/// (without restic's statistics, which the tags do not hold). `None` for a
/// snapshot tabacco did not make.
pub fn from_snapshot_tags(tags: &[String]) -> Option<(String, Dataset)> {
    let value = |key: &str| {
        tags.iter()
            .find_map(|t| t.strip_prefix(key))
            .map(String::from)
    };
    let backup_id = value("tabacco:backup=")?;
    let mut dataset = Dataset::new(
        value("tabacco:dataset=")?,
        value("tabacco:source=")?,
        Vec::new(),
    );
    for atom in tags.iter().filter_map(|t| t.strip_prefix("tabacco:atom=")) {
        dataset.atoms.push(match atom.split_once(':') {
            Some((name, path)) => Atom {
                name: name.to_string(),
                path: Some(path.replace("%2C", ",").replace("%25", "%")),
            },
            None => Atom {
                name: atom.to_string(),
                path: None,
            },
        });
    }
    Some((backup_id, dataset))
}

/// A new random id for a backup or dataset: 16 hex digits.
pub fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is keyed from the OS's random source once per process.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_tags_round_trip() {
        let backup = Backup {
            id: "b1".into(),
            timestamp: String::new(),
            host: "h".into(),
            datasets: Vec::new(),
        };
        let dataset = Dataset {
            id: "d1".into(),
            source: "users".into(),
            atoms: vec![
                Atom {
                    name: "users/a".into(),
                    path: Some("/srv/a,b%2C:c".into()),
                },
                Atom {
                    name: "users/b".into(),
                    path: None,
                },
            ],
            snapshot_id: String::new(),
            total_files: 0,
            total_bytes: 0,
            bytes_added: 0,
            duration: 0.0,
        };
        let tags = snapshot_tags(&backup, &dataset);
        assert!(
            tags.iter().all(|t| !t.contains(',')),
            "restic splits tags at commas: {tags:?}"
        );
        assert_eq!(from_snapshot_tags(&tags), Some(("b1".to_string(), dataset)));
        assert_eq!(from_snapshot_tags(&["other".to_string()]), None);
    }

    #[test]
    fn ids_are_distinct() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.len() == 16));
    }
}
