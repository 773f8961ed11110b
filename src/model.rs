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
    /// restic's short id; select snapshots by [`Dataset::tag`] instead.
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
