//! `tabacco status`, `tabacco history` and `tabacco retire-host`: the
//! fleet's health as the metadb (remote or embedded) derives it. Like
//! `query`, a JSON array when stdout is not a terminal and a table on one.
//! `status` exits 1 when a row it shows is a problem, so that it serves as
//! a monitoring check.

use crate::cli::{Format, History, Status};
use crate::cmd::{self, Exit};
use crate::config::Config;
use crate::metadb::api::{HistoryRequest, StatusRequest};
use crate::metadb::Metadb;
use crate::time;
use serde::Serialize;
use std::io::IsTerminal;

pub fn status(config: &Config, s: &Status) -> Result<(), Exit> {
    let metadb = open(config)?;
    let request = StatusRequest {
        host: s.host.clone(),
        source: s.source.clone(),
        problems: s.problems,
    };
    let rows = metadb
        .status(&request)
        .map_err(|e| Exit::Error(e.to_string()))?;
    let text = match format(s.format) {
        Format::Json => json(&rows)?,
        Format::Table if rows.is_empty() => "no planned sources\n".into(),
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
            for r in &rows {
                table.push([
                    r.host.clone(),
                    r.source.clone(),
                    r.state.clone(),
                    r.last_success.clone().unwrap_or_else(|| "-".into()),
                    r.last_attempt.clone().unwrap_or_else(|| "-".into()),
                    r.next_due.clone().unwrap_or_else(|| "-".into()),
                    r.message.clone(),
                ]);
            }
            cmd::table(&table)
        }
    };
    cmd::print(&text)?;
    if rows.iter().any(|r| r.is_problem()) {
        return Err(Exit::Failed);
    }
    Ok(())
}

pub fn history(config: &Config, h: &History) -> Result<(), Exit> {
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

pub fn retire_host(config: &Config, host: &str) -> Result<(), Exit> {
    let metadb = open(config)?;
    metadb
        .retire_host(host)
        .map_err(|e| Exit::Error(e.to_string()))?;
    log::info!("host {host} retired: status no longer shows it");
    Ok(())
}

fn open(config: &Config) -> Result<Metadb, Exit> {
    let metadb = Metadb::open(config).map_err(|e| Exit::Error(e.to_string()))?;
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
