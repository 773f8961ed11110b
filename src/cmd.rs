//! The commands, one module each, and what they share: loading the
//! configuration and reporting how they ended.

mod agent;
mod check;
mod completion;
mod dump;
mod health;
mod init;
mod ls;
mod metadb;
mod passthrough;
mod progress;
mod prune;
mod query;
mod reindex;
mod restore;
mod run;
mod snapshots;
mod unlock;
mod verify;

use crate::backup::copy::Reader;
use crate::base::width;
use crate::cli::{self, Cli, Command};
use crate::config::{self, Config, FleetAccess};
use crate::metadb::Metadb;
use crate::process::shell::Supervisor;
use crate::wire::checked::Checked;
use crate::wire::model::{Atom, RestoreItem};
use std::fmt;
use std::io::Write;
use std::path::Path;

/// How a command failed.
#[derive(Debug)]
pub enum Exit {
    /// Failures were reported already; exit 1.
    Failed,
    /// One line to print; exit 1.
    Error(String),
    /// Usage or configuration error; exit 2.
    Usage(String),
    /// Exit with this status, as a child did (`tabacco restic`); nothing to
    /// print.
    Status(u8),
}

impl Exit {
    /// Exit 1 with `e`'s message: an error reported at the top.
    pub fn error(e: impl fmt::Display) -> Exit {
        Exit::Error(e.to_string())
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Exit::Failed => f.write_str("failed, as reported"),
            Exit::Status(code) => write!(f, "exited with status {code}"),
            Exit::Error(message) | Exit::Usage(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Exit {}

/// Runs the command `cli` names.
pub fn dispatch(cli: Cli) -> Result<(), Exit> {
    let config_path = cli
        .config
        .as_deref()
        .unwrap_or(Path::new(config::DEFAULT_PATH));
    match cli.command {
        Command::Agent { http_addr } => agent::agent(config_path, http_addr.as_deref()),
        Command::Metadb { http_addr } => {
            let path = cli
                .config
                .as_deref()
                .unwrap_or(Path::new(metadb::DEFAULT_PATH));
            metadb::metadb(path, http_addr.as_deref())
        }
        Command::Help(command) => match cli::help::text(command.as_deref()) {
            Some(text) => print(&text),
            None => Err(Exit::Usage(format!(
                "no help for unknown command {:?}: 'tabacco --help' lists the commands",
                command.unwrap_or_default()
            ))),
        },
        Command::Completion(shell) => print(&completion::script(shell)),
        Command::Version => print(&format!("tabacco {}\n", env!("CARGO_PKG_VERSION"))),
        Command::Check { offline } => check::check(config_path, offline),
        Command::Init => init::init(&load_opening(config_path)?),
        Command::Run { sources, dry_run } => {
            run::run(&load_opening(config_path)?, &sources, dry_run)
        }
        Command::Query(query) => query::query(&load_fleet(config_path)?, &query),
        Command::Restore(args) => restore::restore(&load(config_path)?, &args),
        Command::History(h) => health::history(&load_fleet(config_path)?, &h),
        Command::Status(s) => health::status(&load_fleet(config_path)?, &s),
        Command::RetireHost(host) => health::retire_host(&load_fleet(config_path)?, &host),
        Command::Dump(args) => dump::dump(&load_opening(config_path)?, &args),
        Command::Ls(args) => ls::ls(&load_opening(config_path)?, &args),
        Command::Reindex => reindex::reindex(&load_opening(config_path)?),
        Command::Restic { repository, args } => {
            passthrough::restic(&load_opening(config_path)?, repository.as_deref(), &args)
        }
        Command::Snapshots(args) => snapshots::snapshots(&load_opening(config_path)?, &args),
        Command::Unlock { repository } => {
            unlock::unlock(&load_opening(config_path)?, repository.as_deref())
        }
        Command::Prune { sources, dry_run } => {
            prune::prune(&load_opening(config_path)?, &sources, dry_run)
        }
        Command::Verify {
            sources,
            read_data_subset,
            repository,
        } => verify::verify(
            &load_opening(config_path)?,
            &sources,
            read_data_subset.as_deref(),
            repository.as_deref(),
        ),
    }
}

/// Where `dump` and `ls` start: the reader of `v.repository` and the
/// newest recorded version of the one atom `v.atom` names, checked (see
/// `restore::one`), with that atom.
fn one_version(config: &Config, v: &cli::VersionArgs) -> Result<(Reader, Checked, Atom), Exit> {
    let metadb = Metadb::open(&config.work_dir, config.metadb.as_ref())
        .map_err(|e| Exit::Error(e.to_string()))?;
    let reader = Reader::new(&config.repository, &config.copies)
        .with_further(&config.further)
        .pick(v.repository.as_deref())
        .map_err(|e| Exit::Usage(e.to_string()))?;
    let whose = crate::restore::Whose::new(v.host.as_deref(), v.any_host, &config.hostname);
    let (checked, atom) = crate::restore::one(&metadb, &v.atom, whose, v.older_than.as_deref())
        .map_err(Exit::error)?;
    let sup = Supervisor::new(config.priority, v.atom.clone());
    refuse_unroutable(&metadb, &reader, &sup, [checked.item()])?;
    Ok((reader, checked, atom))
}

/// Refuses, before anything runs, records held only in repositories
/// `reader` cannot read (see [`Reader::route`]), a line an atom.
fn refuse_unroutable<'a>(
    metadb: &Metadb,
    reader: &Reader,
    sup: &Supervisor,
    items: impl IntoIterator<Item = &'a RestoreItem>,
) -> Result<(), Exit> {
    let mut refused = Vec::new();
    for item in items {
        if let Err(unroutable) = reader.route(sup, &item.dataset) {
            for atom in &item.dataset.atoms {
                refused.push(unroutable.explain(metadb, &atom.name, &item.backup.host));
            }
        }
    }
    match refused.is_empty() {
        true => Ok(()),
        false => Err(Exit::Error(refused.join("\n"))),
    }
}

/// Loads the agent configuration; any error is a configuration error.
fn load(path: &Path) -> Result<Config, Exit> {
    exists(path)?;
    Config::load(path).map_err(invalid)
}

/// Loads the agent configuration of a command that opens the repository:
/// a password file restic could not use is a configuration error too.
fn load_opening(path: &Path) -> Result<Config, Exit> {
    let config = load(path)?;
    config.check_password_files().map_err(invalid)?;
    Ok(config)
}

/// Loads what a command that only asks the metadb needs of the
/// configuration (see [`FleetAccess`]).
fn load_fleet(path: &Path) -> Result<FleetAccess, Exit> {
    exists(path)?;
    FleetAccess::load(path).map_err(invalid)
}

/// A configuration that is not there is a usage error that says what to do.
fn exists(path: &Path) -> Result<(), Exit> {
    match path.exists() {
        true => Ok(()),
        false => Err(Exit::Usage(format!(
            "no configuration at {}: write one (see tabacco.yml(5)) or name another with --config FILE",
            path.display()
        ))),
    }
}

/// Configuration errors, all of them, exit 2.
fn invalid(errors: config::Errors) -> Exit {
    Exit::Usage(format!("invalid configuration:\n{errors}"))
}

/// The widest a table cell is shown, in terminal columns; a longer one ends
/// in `…`.
const MAX_CELL_COLUMNS: usize = 80;

/// The last column's cells are cut later: no column has to follow them, and a
/// restore plan's destination (a path under the target) must be read whole.
const MAX_LAST_CELL_COLUMNS: usize = 4352;

/// Aligns `rows` (the first is the header) into columns. Cells come from
/// records any host may have written: control characters are escaped, so
/// that none can forge a line or drive the terminal, and long cells are cut.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let rows = table_cells(rows);
    table_lines(&rows, &table_widths(&rows))
}

/// `rows` escaped and cut as [`table`] shows them.
fn table_cells<const N: usize>(rows: &[[String; N]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|row| {
            let last = row.len() - 1;
            let cells = row.iter().enumerate();
            let max = |i| {
                if i < last {
                    MAX_CELL_COLUMNS
                } else {
                    MAX_LAST_CELL_COLUMNS
                }
            };
            cells.map(|(i, cell)| cell_text(cell, max(i))).collect()
        })
        .collect()
}

/// The width of each column of `rows` (from [`table_cells`]).
fn table_widths(rows: &[Vec<String>]) -> Vec<usize> {
    let columns = rows.first().map_or(0, Vec::len);
    (0..columns)
        .map(|i| {
            rows.iter()
                .map(|r| width::columns(&r[i]))
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// `rows` aligned to `widths`; a cell wider than its column pushes the rest
/// of its row right.
fn table_lines(rows: &[Vec<String>], widths: &[usize]) -> String {
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, column) in row.iter().zip(widths) {
            line.push_str(cell);
            let pad = column.saturating_sub(width::columns(cell)) + 2;
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `cell` as one line of at most `max` terminal columns: control characters,
/// and the bidirectional formatting ones that reorder what a terminal
/// shows after them (a name with U+202E reads backwards), escaped.
fn cell_text(cell: &str, max: usize) -> String {
    let escaped = crate::base::visible::visible(cell);
    if width::columns(&escaped) <= max {
        return escaped;
    }
    let mut cut = String::new();
    let mut taken = 0;
    for c in escaped.chars() {
        taken += width::char_columns(c);
        if taken > max - 1 {
            break;
        }
        cut.push(c);
    }
    cut.push('…');
    cut
}

/// Writes to stdout; a closed pipe (`| head`) ends quietly.
fn print(text: &str) -> Result<(), Exit> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Exit::Error(format!("cannot write output: {e}")))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_names_align_by_the_columns_they_take() {
        let text = table(&[
            ["ATOM".to_string(), "HOST".to_string()],
            ["users/ユーザー".to_string(), "web1".to_string()],
            ["users/alice".to_string(), "web2".to_string()],
        ]);
        assert_eq!(
            text,
            "ATOM            HOST\nusers/ユーザー  web1\nusers/alice     web2\n"
        );
        let cut = cell_text(&"用".repeat(50), 9);
        assert_eq!((cut.as_str(), width::columns(&cut)), ("用用用用…", 9));
    }

    #[test]
    fn table_cells_are_cut_and_escaped() {
        let long = "c".repeat(70_000);
        let text = table(&[
            ["A".to_string(), "B".to_string()],
            [long.clone(), "x\u{1b}[2J\ny\u{202e}z".to_string()],
            ["z".to_string(), long.clone()],
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], format!("A{}B", " ".repeat(MAX_CELL_COLUMNS + 1)));
        assert_eq!(
            lines[1],
            format!(
                "{}…  x\\u{{1b}}[2J\\ny\\u{{202e}}z",
                "c".repeat(MAX_CELL_COLUMNS - 1)
            )
        );
        let last = format!("{}…", "c".repeat(MAX_LAST_CELL_COLUMNS - 1));
        assert_eq!(
            lines[2],
            format!("z{}{last}", " ".repeat(MAX_CELL_COLUMNS + 1))
        );
    }
}
