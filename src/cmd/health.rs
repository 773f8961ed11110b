//! `tabacco status`, `tabacco history` and `tabacco retire-host`: the
//! fleet's health as the metadb (remote or embedded) derives it. Like
//! `query`, a JSON array when stdout is not a terminal and a table on one.
//! `status` exits 1 when a row it shows is a problem, so that it serves as
//! a monitoring check.

use crate::base::count::count;
use crate::base::time;
use crate::cli::{Format, HistoryArgs, StatusArgs};
use crate::cmd::query::Stop;
use crate::cmd::{self, Exit};
use crate::config::FleetAccess;
use crate::metadb::Metadb;
use crate::wire::api::{HistoryRequest, StatusRequest};
use serde::Serialize;
use std::io::{IsTerminal, Write};

pub fn status(config: &FleetAccess, s: &StatusArgs) -> Result<(), Exit> {
    let metadb = open(config)?;
    if s.proofs {
        return proofs(&metadb, s);
    }
    let request = StatusRequest {
        host: s.host.clone(),
        source: s.source.clone(),
        problems: s.problems,
    };
    let mut problem = false;
    let printed = match format(s.format) {
        Format::Json => {
            // Printed as the rows arrive: a fleet's status is never held.
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut count = 0;
            metadb
                .for_each_status(&request, |row| {
                    problem |= row.is_problem();
                    let json = serde_json::to_string_pretty(row)
                        .map_err(|e| Stop::Exit(Exit::Error(e.to_string())))?;
                    let mut text = String::from(if count == 0 { "[\n" } else { ",\n" });
                    // As an element of a pretty array: indented by two spaces.
                    for (i, line) in json.lines().enumerate() {
                        text.push_str(if i == 0 { "  " } else { "\n  " });
                        text.push_str(line);
                    }
                    count += 1;
                    written(out.write_all(text.as_bytes()))
                })
                .and_then(|()| {
                    let end = if count == 0 { "[]\n" } else { "\n]\n" };
                    written(out.write_all(end.as_bytes()).and_then(|()| out.flush()))
                })
        }
        Format::Table => {
            let mut table = vec![[
                "HOST",
                "SOURCE",
                "STATE",
                "LAST SUCCESS",
                "LAST ATTEMPT",
                "NEXT DUE",
                "MESSAGE",
            ]
            .map(String::from)];
            metadb
                .for_each_status(&request, |r| {
                    problem |= r.is_problem();
                    let time = |t: &Option<String>| t.clone().unwrap_or_else(|| "-".into());
                    table.push([
                        r.host.clone(),
                        r.source.clone(),
                        r.state.clone(),
                        time(&r.last_success),
                        time(&r.last_attempt),
                        time(&r.next_due),
                        r.message.clone(),
                    ]);
                    Ok::<(), Stop>(())
                })
                .and_then(|()| {
                    let mut text = match table.len() {
                        1 if s.problems => healthy(&metadb, &request).map_err(Stop::Exit)?,
                        1 => "no planned sources\n".into(),
                        _ => cmd::table(&table),
                    };
                    text.push_str(&lag_table(&metadb, s.host.as_deref()));
                    cmd::print(&text).map_err(Stop::Exit)
                })
        }
    };
    match printed {
        Ok(()) | Err(Stop::Closed) if problem => Err(Exit::Failed),
        Ok(()) | Err(Stop::Closed) => Ok(()),
        Err(Stop::Exit(e)) => Err(e),
    }
}

/// What `status --problems` says when no row is a problem: how many
/// sources there are, by state (`no problems: 12 sources ok, 1 running`).
fn healthy(metadb: &Metadb, problems: &StatusRequest) -> Result<String, Exit> {
    let all = StatusRequest {
        problems: false,
        ..problems.clone()
    };
    let mut states: Vec<(String, usize)> = Vec::new();
    metadb
        .for_each_status(&all, |row| {
            match states.iter_mut().find(|(state, _)| *state == row.state) {
                Some((_, n)) => *n += 1,
                None => states.push((row.state.clone(), 1)),
            }
            Ok::<(), Stop>(())
        })
        .map_err(|stop| match stop {
            Stop::Exit(e) => e,
            Stop::Closed => Exit::Failed,
        })?;
    if states.is_empty() {
        return Ok("no problems: no planned sources\n".into());
    }
    // `ok` first, as the line says what matters first.
    states.sort_by_key(|(state, _)| state != "ok");
    let counts: Vec<String> = states
        .iter()
        .enumerate()
        .map(|(i, (state, n))| match i {
            0 => format!("{} {state}", count(*n, "source")),
            _ => format!("{n} {state}"),
        })
        .collect();
    Ok(format!("no problems: {}\n", counts.join(", ")))
}

/// The copies that lack datasets, per host (only `host` if given), as a
/// table after a blank line; nothing when none lacks any. A metadb that
/// cannot say is logged, not fatal: the status above stands.
fn lag_table(metadb: &Metadb, host: Option<&str>) -> String {
    let lag = match metadb.copy_lag() {
        Ok(lag) => lag,
        Err(e) => {
            log::warn!("cannot read the copies' lag: {e}");
            return String::new();
        }
    };
    let mut table = vec![["HOST", "COPY", "NOT COPIED YET"].map(String::from)];
    for l in lag.into_iter().filter(|l| l.datasets > 0) {
        if host.is_none_or(|h| h == l.host) {
            table.push([l.host, l.repository, count(l.datasets, "dataset")]);
        }
    }
    match table.len() {
        1 => String::new(),
        _ => format!("\n{}", cmd::table(&table)),
    }
}

/// `status --proofs`: "last proven restorable", of each repository (read
/// back whole by the rotated check) and each atom (restored by a drill,
/// and proven to load by its proof), those of `--host` only if given.
fn proofs(metadb: &Metadb, s: &StatusArgs) -> Result<(), Exit> {
    let mut proofs = metadb.proofs().map_err(|e| Exit::Error(e.to_string()))?;
    if let Some(host) = &s.host {
        proofs.atoms.retain(|a| a.host == *host);
    }
    let text = match format(s.format) {
        Format::Json => json(&proofs)?,
        Format::Table => {
            let mut repositories =
                vec![["REPOSITORY", "READ BACK WHOLE", "NEXT SLICE"].map(String::from)];
            for p in &proofs.repositories {
                repositories.push([
                    p.repository.clone(),
                    p.whole_read.clone().unwrap_or_else(|| "-".into()),
                    format!("{}/{}", p.next_slice, p.slices),
                ]);
            }
            let mut atoms =
                vec![["HOST", "ATOM", "RESTORED BY A DRILL", "PROVEN TO LOAD"].map(String::from)];
            for a in &proofs.atoms {
                let loaded = a.loaded.clone().unwrap_or_else(|| "-".into());
                atoms.push([a.host.clone(), a.atom.clone(), a.restored.clone(), loaded]);
            }
            format!("{}\n{}", cmd::table(&repositories), cmd::table(&atoms))
        }
    };
    cmd::print(&text)
}

/// Whether writing to stdout went well; stdout closed (`| head`) stops
/// quietly.
fn written(result: std::io::Result<()>) -> Result<(), Stop> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Stop::Closed),
        Err(e) => Err(Stop::Exit(Exit::Error(format!("cannot write output: {e}")))),
        Ok(()) => Ok(()),
    }
}

pub fn history(config: &FleetAccess, h: &HistoryArgs) -> Result<(), Exit> {
    let since = h
        .since
        .as_deref()
        .map(|t| time::parse_time(t, chrono::Utc::now()).map(time::format))
        .transpose()
        .map_err(Exit::Usage)?;
    let metadb = open(config)?;
    let request = HistoryRequest {
        host: h.host.clone(),
        source: h.source.clone(),
        failed: h.failed,
        since,
        limit: h.limit,
    };
    let attempts = metadb
        .history(&request)
        .map_err(|e| Exit::Error(e.to_string()))?;
    let text = match format(h.format) {
        Format::Json => json(&attempts)?,
        Format::Table if attempts.is_empty() => "no attempts\n".into(),
        Format::Table => {
            let mut table = vec![[
                "START", "END", "HOST", "KIND", "SOURCE", "STATE", "BACKUP", "MESSAGE",
            ]
            .map(String::from)];
            for a in &attempts {
                table.push([
                    a.start.clone(),
                    a.end.clone(),
                    a.host.clone(),
                    a.kind.clone(),
                    a.source.clone(),
                    a.state.clone(),
                    a.backup_id.clone(),
                    a.message.clone(),
                ]);
            }
            cmd::table(&table)
        }
    };
    cmd::print(&text)
}

pub fn retire_host(config: &FleetAccess, host: &str) -> Result<(), Exit> {
    let metadb = open(config)?;
    metadb
        .retire_host(host)
        .map_err(|e| Exit::Error(e.to_string()))?;
    log::info!("host {host} retired: status no longer shows it");
    Ok(())
}

fn open(config: &FleetAccess) -> Result<Metadb, Exit> {
    let metadb = Metadb::open(&config.work_dir, config.metadb.as_ref())
        .map_err(|e| Exit::Error(e.to_string()))?;
    if let Some(warning) = metadb.backlog_warning() {
        log::warn!("{warning}");
    }
    Ok(metadb)
}

/// The format asked for, or JSON unless stdout is a terminal.
fn format(asked: Option<Format>) -> Format {
    asked.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Json
    })
}

fn json(value: &impl Serialize) -> Result<String, Exit> {
    serde_json::to_string_pretty(value)
        .map(|json| json + "\n")
        .map_err(|e| Exit::Error(e.to_string()))
}
