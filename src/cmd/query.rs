//! `tabacco query`: what the metadb holds for atoms matching shell globs.
//! A JSON array of backups when stdout is not a terminal (scripts rely on
//! `[]` for no match), a table on a terminal. With one pattern, backups are
//! printed as they arrive (a table once its first [`TABLE_BATCH`] rows have
//! set the widths of its columns).

use crate::base::time;
use crate::cli::{Format, QueryArgs};
use crate::cmd::{self, Exit};
use crate::config::FleetAccess;
use crate::metadb::{self, Metadb};
use crate::wire::model::{Backup, FindRequest};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};

/// How many rows of a table are read before it is printed: they set the
/// widths of its columns, and a later cell wider than its column pushes the
/// rest of its row right.
const TABLE_BATCH: usize = 1000;

pub fn query(config: &FleetAccess, q: &QueryArgs) -> Result<(), Exit> {
    let older_than = q
        .older_than
        .as_deref()
        .map(|t| time::parse_time(t, chrono::Utc::now()).map(time::format))
        .transpose()
        .map_err(Exit::Usage)?;
    let metadb = Metadb::open(&config.work_dir, config.metadb.as_ref())
        .map_err(|e| Exit::Error(e.to_string()))?;
    if let Some(warning) = metadb.backlog_warning() {
        log::warn!("{warning}");
    }
    let format = q.format.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Json
    });
    let mut out = Printer::new(format);
    let mut requests = q.patterns.iter().map(|pattern| FindRequest {
        pattern: pattern.clone(),
        host: q.host.clone(),
        num_versions: Some(q.versions.unwrap_or(1)),
        older_than: older_than.clone(),
    });
    let printed = if let [_] = q.patterns.as_slice() {
        // One pattern: printed as the backups arrive, newest first.
        requests.try_for_each(|request| metadb.for_each_found(&request, |b| out.push(b)))
    } else {
        // Several: joined and sorted across patterns (the newest backup may
        // be the last pattern's, one matched twice is printed once), so all
        // are read first. Streaming them would take one find per pattern at
        // once, merged: a reading connection each on a metadb server (it
        // has 8) or a store each when embedded.
        let mut joined = Joined::default();
        for request in requests {
            let found = metadb
                .find_atoms(&request)
                .map_err(|e| Exit::Error(e.to_string()))?;
            joined.add(found);
        }
        joined
            .newest_first()
            .into_iter()
            .try_for_each(|backup| out.push(backup))
    };
    match printed.and_then(|()| out.finish()) {
        Ok(()) | Err(Stop::Closed) => Ok(()),
        Err(Stop::Exit(e)) => Err(e),
    }
}

/// Why printing stopped early (here and in `tabacco status`).
pub(super) enum Stop {
    /// stdout was closed (`| head`): the end, quietly.
    Closed,
    Exit(Exit),
}

impl From<metadb::Error> for Stop {
    fn from(e: metadb::Error) -> Stop {
        Stop::Exit(Exit::Error(e.to_string()))
    }
}

/// Prints backups as they come, as a JSON array or a table.
struct Printer {
    out: std::io::StdoutLock<'static>,
    format: Format,
    /// Backups printed (JSON).
    count: usize,
    /// The table's rows not printed yet, header first, cells escaped.
    rows: Vec<Vec<String>>,
    /// The widths of the table's columns, once they are set.
    widths: Option<Vec<usize>>,
}

impl Printer {
    fn new(format: Format) -> Printer {
        let header = [
            "TIME",
            "HOST",
            "ATOM",
            "BACKUP",
            "SNAPSHOT",
            "REPOSITORY",
            "PATH",
        ]
        .map(String::from);
        Printer {
            out: std::io::stdout().lock(),
            format,
            count: 0,
            rows: cmd::table_cells(&[header]),
            widths: None,
        }
    }

    fn push(&mut self, backup: Backup) -> Result<(), Stop> {
        match self.format {
            Format::Json => {
                let json = serde_json::to_string_pretty(&backup)
                    .map_err(|e| Stop::Exit(Exit::Error(e.to_string())))?;
                let mut text = String::from(if self.count == 0 { "[\n" } else { ",\n" });
                // As an element of a pretty array: indented by two spaces.
                for (i, line) in json.lines().enumerate() {
                    text.push_str(if i == 0 { "  " } else { "\n  " });
                    text.push_str(line);
                }
                self.count += 1;
                self.write(&text)
            }
            Format::Table => {
                self.rows.extend(cmd::table_cells(&table_rows(&backup)));
                match &self.widths {
                    Some(widths) => {
                        let text = cmd::table_lines(&self.rows, widths);
                        self.rows.clear();
                        self.write(&text)
                    }
                    None if self.rows.len() > TABLE_BATCH => self.print_batch(),
                    None => Ok(()),
                }
            }
        }
    }

    /// Prints the rows read so far, setting the widths of the columns.
    fn print_batch(&mut self) -> Result<(), Stop> {
        let widths = cmd::table_widths(&self.rows);
        let text = cmd::table_lines(&self.rows, &widths);
        self.rows.clear();
        self.widths = Some(widths);
        self.write(&text)
    }

    fn finish(mut self) -> Result<(), Stop> {
        match self.format {
            Format::Json if self.count == 0 => self.write("[]\n"),
            Format::Json => self.write("\n]\n"),
            Format::Table if self.widths.is_some() => Ok(()),
            Format::Table if self.rows.len() == 1 => self.write("no matching backups\n"),
            Format::Table => self.print_batch(),
        }
    }

    /// Writes `text` out now.
    fn write(&mut self, text: &str) -> Result<(), Stop> {
        match self
            .out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.flush())
        {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Stop::Closed),
            Err(e) => Err(Stop::Exit(Exit::Error(format!("cannot write output: {e}")))),
            Ok(()) => Ok(()),
        }
    }
}

/// The backups several patterns found, each once, holding what each
/// pattern matched of it.
#[derive(Default)]
struct Joined {
    backups: Vec<Backup>,
    /// Where each backup is in `backups`, by host and id (ids are a
    /// host's own): joining stays linear in the answers' size.
    at: HashMap<(String, String), usize>,
}

impl Joined {
    /// Adds one pattern's answer.
    fn add(&mut self, found: Vec<Backup>) {
        for backup in found {
            let key = (backup.host.clone(), backup.id.clone());
            let Some(&i) = self.at.get(&key) else {
                self.at.insert(key, self.backups.len());
                self.backups.push(backup);
                continue;
            };
            let have = &mut self.backups[i];
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

    /// The backups newest first; those of the same time in the order they
    /// came, so that a pattern's ties stay in the metadb's order (the last
    /// recorded first), as with one pattern.
    fn newest_first(mut self) -> Vec<Backup> {
        self.backups.sort_by(|a, b| b.timestamp.cmp(&a.timestamp));
        self.backups
    }
}

/// The table rows of `backup`: one per atom. The repository is shown by
/// the first 8 hex digits of its restic id, as restic shows ids; `-` where
/// the record does not say (its host published no repository).
fn table_rows(b: &Backup) -> Vec<[String; 7]> {
    let mut rows = Vec::new();
    for d in &b.datasets {
        for a in &d.atoms {
            rows.push([
                b.timestamp.clone(),
                b.host.clone(),
                a.name.clone(),
                b.id.clone(),
                d.snapshot_id.clone(),
                d.repository
                    .as_deref()
                    .map_or("-", |id| id.get(..8).unwrap_or(id))
                    .to_string(),
                a.path.clone().unwrap_or_default(),
            ]);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn backup(id: &str, timestamp: &str, atom: &str) -> Backup {
        serde_json::from_value(json!({
            "id": id, "timestamp": timestamp, "host": "web3",
            "datasets": [{"id": format!("d-{id}"), "source": "users",
                          "snapshot_id": "aaaa1111", "atoms": [{"name": atom}]}],
        }))
        .unwrap()
    }

    #[test]
    fn several_answers_join_newest_first_keeping_each_answers_ties() {
        let (t1, t2, t3) = (
            "2024-05-01T00:00:00Z",
            "2024-05-02T00:00:00Z",
            "2024-05-03T00:00:00Z",
        );
        let mut joined = Joined::default();
        // As the metadb answers: newest first, ties last recorded first.
        joined.add(vec![
            backup("b9", t2, "users/a"),
            backup("b1", t2, "users/a"),
            backup("b0", t1, "users/a"),
        ]);
        joined.add(vec![
            backup("b5", t3, "users/b"),
            backup("b1", t2, "users/b"),
        ]);
        let got: Vec<(String, Vec<String>)> = joined
            .newest_first()
            .into_iter()
            .map(|b| {
                let atoms = b.datasets[0].atoms.iter().map(|a| a.name.clone());
                (b.id, atoms.collect())
            })
            .collect();
        let want = [
            ("b5", vec!["users/b"]),
            ("b9", vec!["users/a"]),
            ("b1", vec!["users/a", "users/b"]),
            ("b0", vec!["users/a"]),
        ];
        let want: Vec<(String, Vec<String>)> = want
            .into_iter()
            .map(|(id, atoms)| (id.into(), atoms.into_iter().map(Into::into).collect()))
            .collect();
        assert_eq!(got, want);
    }
}
