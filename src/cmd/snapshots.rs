//! `tabacco snapshots`: the repository's snapshots as restic lists them,
//! newest first, each with the atoms tabacco's tags say it holds, so that
//! what the repository has can be read without the metadb (and compared
//! with it). Like `query`, a JSON array when stdout is not a terminal and a
//! table of one atom a row on one. Snapshots tabacco did not make are
//! listed with their tags.

use crate::backup::copy::Reader;
use crate::base::time;
use crate::cli::{Format, SnapshotsArgs};
use crate::cmd::{self, Exit};
use crate::config::Config;
use crate::process::interrupt::Interrupt;
use crate::process::shell::Supervisor;
use crate::restic::Snapshot;
use crate::wire::model::{self, Atom};
use serde::Serialize;
use std::io::IsTerminal;

/// One snapshot as printed.
#[derive(Serialize)]
struct Listed {
    id: String,
    short_id: String,
    /// UTC, RFC 3339, as records are dated.
    time: String,
    /// The time to the nanosecond, for the order.
    #[serde(skip)]
    at: Option<chrono::DateTime<chrono::Utc>>,
    host: String,
    /// tabacco's backup, dataset and source, for a snapshot it made.
    #[serde(skip_serializing_if = "Option::is_none")]
    backup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    atoms: Vec<Atom>,
    tags: Vec<String>,
}

pub fn snapshots(config: &Config, args: &SnapshotsArgs) -> Result<(), Exit> {
    let reader = Reader::new(&config.repository, &config.copies)
        .pick(args.repository.as_deref())
        .map_err(|e| Exit::Usage(e.to_string()))?;
    let (_, repo) = reader.checked();
    let sup = Supervisor::new(config.priority, "snapshots");
    let _interrupt =
        Interrupt::watching(&sup).map_err(|e| Exit::Error(format!("cannot catch signals: {e}")))?;
    let mut filter = Vec::new();
    if let Some(host) = &args.host {
        filter.extend(["--host".to_string(), host.clone()]);
    }
    let snapshots = repo.list(&sup, &filter).map_err(Exit::error)?;
    let mut listed: Vec<Listed> = snapshots.into_iter().map(listed).collect();
    listed.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.id.cmp(&b.id)));
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Json
    });
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&listed)
            .map(|json| json + "\n")
            .map_err(Exit::error)?,
        Format::Table if listed.is_empty() => "no snapshots\n".into(),
        Format::Table => table(&listed),
    };
    cmd::print(&text)
}

/// `snapshot` with what its tags say.
fn listed(snapshot: Snapshot) -> Listed {
    let tags = snapshot.tags.unwrap_or_default();
    let made = model::datasets_of_tags(&tags);
    let at = chrono::DateTime::parse_from_rfc3339(&snapshot.time)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc));
    let time = at.map(time::format).unwrap_or(snapshot.time);
    let (backup, datasets) = match made {
        Some((backup, datasets)) => (Some(backup), datasets),
        None => (None, Vec::new()),
    };
    // A batch's snapshot (many datasets) names its atoms, not one dataset.
    let dataset = match &datasets[..] {
        [one] => Some(one.clone()),
        _ => None,
    };
    Listed {
        id: snapshot.id,
        short_id: snapshot.short_id,
        time,
        at,
        host: snapshot.hostname,
        backup,
        dataset: dataset.as_ref().map(|d| d.id.clone()),
        source: datasets.first().map(|d| d.source.clone()),
        atoms: datasets.into_iter().flat_map(|d| d.atoms).collect(),
        tags,
    }
}

/// One row per atom (a snapshot tabacco did not make: one row, its tags).
fn table(listed: &[Listed]) -> String {
    let mut rows = vec![["TIME", "HOST", "SNAPSHOT", "BACKUP", "ATOM", "PATH"].map(String::from)];
    for s in listed {
        let row = |atom: String, path: String| {
            let backup = s.backup.clone().unwrap_or_else(|| "-".into());
            [
                s.time.clone(),
                s.host.clone(),
                s.short_id.clone(),
                backup,
                atom,
                path,
            ]
        };
        if s.atoms.is_empty() {
            let tags = match s.tags.as_slice() {
                [] => String::new(),
                tags => format!("; tags {}", tags.join(",")),
            };
            rows.push(row(format!("(not tabacco's{tags})"), String::new()));
        }
        for atom in &s.atoms {
            rows.push(row(
                atom.name.clone(),
                atom.path.clone().unwrap_or_default(),
            ));
        }
    }
    cmd::table(&rows)
}
