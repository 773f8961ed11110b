//! The records every part of tabacco shares: what a backup is, what it
//! contains, and how a client asks for it. Their JSON shape is the wire
//! format of the metadb API and of `query --json`, so field names follow the
//! original API and may only ever be added to. They read what a client of
//! the original (written in Go) marshals: `null` for an empty list, zero
//! values for what is unset, timestamps in any RFC 3339 form.

use crate::base::name;
use serde::{Deserialize, Deserializer, Serialize};

/// One run of one source on one host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backup {
    pub id: String,
    /// RFC 3339, UTC.
    pub timestamp: String,
    pub host: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub datasets: Vec<Dataset>,
}

/// One restic snapshot: a set of atoms backed up together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub id: String,
    pub source: String,
    #[serde(deserialize_with = "null_as_default")]
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
    /// Whole seconds, an integer as the original's; a fraction sent by an
    /// older tabacco is rounded.
    #[serde(default, deserialize_with = "seconds")]
    pub duration: i64,
    /// The repositories holding its snapshot, as the metadb's finds
    /// report them: `primary` (agent.yml's repository) and copies by name.
    /// Not part of what is recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<String>,
    /// The restic id of the repository it was backed up to. Absent in
    /// records of older releases, which are taken to be in the primary of
    /// the host that wrote them (a find says which, once that host
    /// published it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
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
            duration: 0,
            repositories: Vec::new(),
            repository: None,
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
    /// Absolute path in the snapshot (file handler only); an empty one, as
    /// a Go client marshals none, is none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "empty_as_none"
    )]
    pub path: Option<String>,
}

/// A search over recorded atoms.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FindRequest {
    /// Shell glob over full atom names.
    pub pattern: String,
    /// Only this host's backups; any host when absent or empty.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "empty_as_none"
    )]
    pub host: Option<String>,
    /// Newest N versions of each atom; all when absent, one when 0 (the
    /// original's default, which a Go client sends as 0).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "zero_as_one"
    )]
    pub num_versions: Option<u32>,
    /// RFC 3339: only backups strictly older than this. No limit when
    /// absent, `null` or Go's zero time `0001-01-01T00:00:00Z`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "zero_time_as_none"
    )]
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
    /// Chosen by the requester (posting the same id again changes nothing),
    /// or by the metadb when empty or absent.
    #[serde(default)]
    pub id: String,
    /// The host whose agent carries it out.
    pub host: String,
    /// Absolute directory to restore into; absent means in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Replace files and links in the way (`restore --overwrite`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overwrite: bool,
    pub items: Vec<RestoreItem>,
    /// Set by the metadb and the executing agent.
    #[serde(default)]
    pub state: RestoreState,
    /// Progress or outcome, one line.
    #[serde(default)]
    pub message: String,
    /// RFC 3339, set by the metadb.
    #[serde(default)]
    pub created: String,
    #[serde(default)]
    pub updated: String,
}

/// Where a restore request stands, as the wire and the metadb write it:
/// `pending`, `running`, `succeeded` or `failed`. A request as filed
/// carries none (`""`, or nothing) and reads as pending.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestoreState {
    /// Filed, waiting for its host's agent.
    #[default]
    #[serde(alias = "")]
    Pending,
    /// Its host's agent is carrying it out.
    Running,
    Succeeded,
    Failed,
}

impl RestoreState {
    pub const ALL: [RestoreState; 4] = [
        RestoreState::Pending,
        RestoreState::Running,
        RestoreState::Succeeded,
        RestoreState::Failed,
    ];

    /// The state's word.
    pub fn name(self) -> &'static str {
        match self {
            RestoreState::Pending => "pending",
            RestoreState::Running => "running",
            RestoreState::Succeeded => "succeeded",
            RestoreState::Failed => "failed",
        }
    }

    /// The state `name` says, if any.
    pub fn parse(name: &str) -> Option<RestoreState> {
        RestoreState::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl std::fmt::Display for RestoreState {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.name())
    }
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
    /// Whether the atom was proven to load (its source's
    /// `proof_command`); absent when it has no proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded: Option<bool>,
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
    /// restic's status object (`percent_done`, `total_files`, `files_done`,
    /// `total_bytes`, `bytes_done`, `seconds_elapsed`, ...) as the job last
    /// printed it; absent before its first one. Anything but an object (an
    /// older tabacco sent a line of text) reads as absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "object_or_none"
    )]
    pub status: Option<serde_json::Map<String, serde_json::Value>>,
    /// What the job is doing, in words (`running`, `waiting to retry at
    /// ...`); not in the original's record.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// The body of `POST /api/update_active_job_status`: all of `host`'s
/// running jobs (an empty list when it is idle).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateActiveJobStatusRequest {
    pub host: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub active_jobs: Vec<ActiveJob>,
}

/// The body of `POST /api/add_dataset`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddDatasetRequest {
    pub backup: Backup,
    pub dataset: Dataset,
}

/// The tags of a dataset's snapshot, of backup `backup_id`: enough to
/// rebuild its metadb record (`reindex`) from the repository alone. Atom
/// names and paths are percent-encoded where restic would split or misread
/// them (see [`name::encode_tag`]).
pub fn snapshot_tags(backup_id: &str, dataset: &Dataset) -> Vec<String> {
    let mut tags = vec![
        "tabacco".to_string(),
        format!("tabacco:backup={backup_id}"),
        format!("tabacco:source={}", dataset.source),
        dataset.tag(),
    ];
    for atom in &dataset.atoms {
        let name = name::encode_tag(&atom.name);
        match &atom.path {
            Some(path) => tags.push(format!("tabacco:atom={name}:{}", name::encode_tag(path))),
            None => tags.push(format!("tabacco:atom={name}")),
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
        let (atom_name, path) = match atom.split_once(':') {
            Some((atom_name, path)) => (atom_name, Some(name::decode_tag(path)?)),
            None => (atom, None),
        };
        dataset.atoms.push(Atom {
            name: name::decode_tag(atom_name)?,
            path,
        });
    }
    Some((backup_id, dataset))
}

/// The tags of a snapshot that holds several pipe datasets of one source
/// (a batch, see `backup::batch`), of backup `backup_id`: each dataset's
/// own tag, so that selecting a dataset's snapshot by tag finds the batch,
/// a `tabacco:batched=ID:ATOM` tag per atom saying whose it is, and the
/// `tabacco:atom=ATOM` tag a single atom's snapshot has (by which one is
/// found by hand: `restic dump latest --tag tabacco:atom=sql/db1 /sql/db1`).
pub fn batch_tags(backup_id: &str, source: &str, datasets: &[Dataset]) -> Vec<String> {
    let mut tags = vec![
        "tabacco".to_string(),
        format!("tabacco:backup={backup_id}"),
        format!("tabacco:source={source}"),
    ];
    for dataset in datasets {
        tags.push(dataset.tag());
        for atom in &dataset.atoms {
            let name = name::encode_tag(&atom.name);
            tags.push(format!("tabacco:batched={}:{name}", dataset.id));
            tags.push(format!("tabacco:atom={name}"));
        }
    }
    tags
}

/// What [`snapshot_tags`] or [`batch_tags`] wrote, read back: the backup id
/// and every dataset the snapshot holds (without restic's statistics).
/// `None` for a snapshot tabacco did not make.
pub fn datasets_of_tags(tags: &[String]) -> Option<(String, Vec<Dataset>)> {
    let batched: Vec<&str> = tags
        .iter()
        .filter_map(|t| t.strip_prefix("tabacco:batched="))
        .collect();
    if batched.is_empty() {
        return from_snapshot_tags(tags).map(|(backup, dataset)| (backup, vec![dataset]));
    }
    let value = |key: &str| tags.iter().find_map(|t| t.strip_prefix(key));
    let backup_id = value("tabacco:backup=")?.to_string();
    let source = value("tabacco:source=")?;
    let mut datasets: Vec<Dataset> = tags
        .iter()
        .filter_map(|t| t.strip_prefix("tabacco:dataset="))
        .map(|id| Dataset::new(id.to_string(), source.to_string(), Vec::new()))
        .collect();
    for member in batched {
        let (id, atom) = member.split_once(':')?;
        let dataset = datasets.iter_mut().find(|d| d.id == id)?;
        dataset.atoms.push(Atom {
            name: name::decode_tag(atom)?,
            path: None,
        });
    }
    Some((backup_id, datasets))
}

/// `null` (a Go nil slice) as the type's default.
fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Whole seconds from any JSON number.
fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let seconds = f64::deserialize(d)?;
    if !seconds.is_finite() || seconds.abs() > 1e15 {
        return Err(serde::de::Error::custom(format!(
            "duration {seconds} is out of range"
        )));
    }
    // In range, checked above: the cast cannot saturate.
    Ok(seconds.round() as i64)
}

/// `""` or `null` as none.
fn empty_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

/// `0` as one, the original's default number of versions.
fn zero_as_one<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Ok(Option::<u32>::deserialize(d)?.map(|n| n.max(1)))
}

/// Go's zero `time.Time` as none.
fn zero_time_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let is_zero = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t).is_ok_and(|t| t.timestamp() == GO_ZERO_TIME)
    };
    Ok(Option::<String>::deserialize(d)?.filter(|t| !is_zero(t)))
}

/// `0001-01-01T00:00:00Z` in Unix seconds: Go's zero `time.Time`.
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// A JSON object, or none for anything else.
fn object_or_none<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    })
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
            duration: 0,
            repositories: Vec::new(),
            repository: None,
        };
        let tags = snapshot_tags("b1", &dataset);
        assert!(
            tags.iter().all(|t| !t.contains(',')),
            "restic splits tags at commas: {tags:?}"
        );
        assert_eq!(from_snapshot_tags(&tags), Some(("b1".to_string(), dataset)));
        assert_eq!(from_snapshot_tags(&["other".to_string()]), None);
    }

    #[test]
    fn batch_tags_round_trip() {
        let member = |id: &str, atom: &str| Dataset {
            id: id.into(),
            source: "sql".into(),
            atoms: vec![Atom {
                name: atom.into(),
                path: None,
            }],
            snapshot_id: String::new(),
            total_files: 0,
            total_bytes: 0,
            bytes_added: 0,
            duration: 0,
            repositories: Vec::new(),
            repository: None,
        };
        let datasets = vec![member("d1", "sql/a,b:c"), member("d2", "sql/d")];
        let tags = batch_tags("b1", "sql", &datasets);
        assert!(tags.iter().all(|t| !t.contains(',')), "{tags:?}");
        assert!(tags.contains(&datasets[1].tag()));
        assert_eq!(datasets_of_tags(&tags), Some(("b1".to_string(), datasets)));
        // A single dataset's tags read back as one.
        let one = member("d3", "sql/e");
        let tags = snapshot_tags("b2", &one);
        assert_eq!(datasets_of_tags(&tags), Some(("b2".to_string(), vec![one])));
    }

    #[test]
    fn older_records_and_go_zero_values_read() {
        // A record spooled by an older tabacco had a fractional duration,
        // and an agent of it reported its job status as text.
        let dataset: Dataset = serde_json::from_str(
            r#"{"id":"d","source":"s","atoms":[],"snapshot_id":"x","duration":1.6}"#,
        )
        .unwrap();
        assert_eq!(dataset.duration, 2);
        let job: ActiveJob =
            serde_json::from_str(r#"{"host":"h","job_id":"j","status":"running: 5%"}"#).unwrap();
        assert_eq!(job.status, None);
        let find: FindRequest = serde_json::from_str(
            r#"{"pattern":"*","host":"","num_versions":0,"older_than":"0001-01-01T00:00:00+00:00"}"#,
        )
        .unwrap();
        assert_eq!(
            find,
            FindRequest {
                pattern: "*".into(),
                host: None,
                num_versions: Some(1),
                older_than: None,
            }
        );
        assert!(serde_json::from_str::<Dataset>(
            r#"{"id":"d","source":"s","atoms":[],"snapshot_id":"x","duration":1e300}"#
        )
        .is_err());
    }

    #[test]
    fn restore_states_travel_as_their_words() {
        for state in RestoreState::ALL {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{state}\""));
            assert_eq!(serde_json::from_str::<RestoreState>(&json).unwrap(), state);
            assert_eq!(RestoreState::parse(state.name()), Some(state));
        }
        assert_eq!(
            serde_json::from_str::<RestoreState>("\"\"").unwrap(),
            RestoreState::Pending,
            "as a request is filed"
        );
        assert!(serde_json::from_str::<RestoreState>("\"exploded\"").is_err());
    }

    #[test]
    fn ids_are_distinct() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.len() == 16));
    }
}
