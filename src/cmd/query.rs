//! `tabacco query`: what the metadb holds for atoms matching shell globs.
//! A JSON array of backups when stdout is not a terminal (scripts rely on
//! `[]` for no match), a table on a terminal.

use crate::cli::{Format, Query};
use crate::cmd::{self, Exit};
use crate::config::Config;
use crate::metadb::Metadb;
use crate::model::{Backup, FindRequest};
use crate::time;
use std::io::IsTerminal;

pub fn query(config: &Config, q: &Query) -> Result<(), Exit> {
    let older_than = q
        .older_than
        .as_deref()
        .map(|t| time::parse_time(t, chrono::Utc::now()).map(time::format))
        .transpose()
        .map_err(Exit::Usage)?;
    let metadb = Metadb::open(config).map_err(|e| Exit::Error(e.to_string()))?;
    if let Some(warning) = metadb.backlog_warning() {
        log::warn!("{warning}");
    }
    let mut backups: Vec<Backup> = Vec::new();
    for pattern in &q.patterns {
        let request = FindRequest {
            pattern: pattern.clone(),
            host: q.host.clone(),
            num_versions: Some(q.versions.unwrap_or(1)),
            older_than: older_than.clone(),
        };
        let found = metadb
            .find_atoms(&request)
            .map_err(|e| Exit::Error(e.to_string()))?;
        merge(&mut backups, found);
    }
    backups.sort_by(|a, b| b.timestamp.cmp(&a.timestamp).then_with(|| a.id.cmp(&b.id)));
    let format = q.format.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Json
    });
    let text = match format {
        Format::Json => {
            let json =
                serde_json::to_string_pretty(&backups).map_err(|e| Exit::Error(e.to_string()))?;
            json + "\n"
        }
        Format::Table => table(&backups),
    };
    cmd::print(&text)
}

/// Adds `found` to `backups`, joining what several patterns both matched.
fn merge(backups: &mut Vec<Backup>, found: Vec<Backup>) {
    for backup in found {
        let Some(have) = backups.iter_mut().find(|b| b.id == backup.id) else {
            backups.push(backup);
            continue;
        };
        for dataset in backup.datasets {
            match have.datasets.iter_mut().find(|d| d.id == dataset.id) {
                Some(d) => {
                    for atom in dataset.atoms {
                        if !d.atoms.iter().any(|a| a.name == atom.name) {
                            d.atoms.push(atom);
                        }
                    }
                }
                None => have.datasets.push(dataset),
            }
        }
    }
}

fn table(backups: &[Backup]) -> String {
    let mut rows = vec![["TIME", "HOST", "ATOM", "BACKUP", "SNAPSHOT", "PATH"].map(String::from)];
    for b in backups {
        for d in &b.datasets {
            for a in &d.atoms {
                rows.push([
                    b.timestamp.clone(),
                    b.host.clone(),
                    a.name.clone(),
                    b.id.clone(),
                    d.snapshot_id.clone(),
                    a.path.clone().unwrap_or_default(),
                ]);
            }
        }
    }
    if rows.len() == 1 {
        return "no matching backups\n".into();
    }
    cmd::table(&rows)
}
