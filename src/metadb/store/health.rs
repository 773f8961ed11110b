//! The fleet's health in the store: attempts as hosts report them, the
//! plans they publish, and the status derived from both. Which host may
//! write what is the server's business; the states and when a source is
//! overdue are decided here, so that the embedded and the served metadb
//! answer alike.

use super::{format_time, Error, Store};
use crate::metadb::api::{Attempt, HistoryRequest, Plan, StatusRequest, StatusRow};
use crate::metadb::record;
use crate::schedule::Schedule;
use chrono::{Local, TimeZone};
use rusqlite::params;
use rusqlite::types::Value;
use std::collections::HashMap;

/// Attempts `history` returns unless asked for another number.
pub const DEFAULT_HISTORY_LIMIT: u32 = 100;
/// Most attempts one `history` returns.
const MAX_HISTORY_LIMIT: u32 = 10_000;

/// What the status of a source depends on besides the store.
pub struct Clock<'a> {
    /// Now, in unix seconds.
    pub now: i64,
    /// How long after its due time a source not attempted is `overdue`.
    pub grace: i64,
    /// Whether `host`'s `source` is backing up right now.
    pub running: &'a dyn Fn(&str, &str) -> bool,
}

impl Store {
    /// Records an attempt heard of at `now`. Sending one again changes
    /// nothing, so a spooled attempt may be delivered twice.
    pub fn add_attempt(&mut self, a: &Attempt, now: i64) -> Result<(), Error> {
        let (start, end) = record::check_attempt(a).map_err(Error::InvalidRequest)?;
        let tx = self.begin()?;
        let inserted = tx.execute(
            "INSERT INTO attempts (host, kind, source, backup_id, start, end, state, failure,
                 message, detail, datasets)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING",
            params![
                a.host,
                a.kind,
                a.source,
                a.backup_id,
                start,
                end,
                a.state,
                a.failure,
                a.message,
                a.detail,
                a.datasets
            ],
        )?;
        if inserted == 1 && a.kind == "backup" {
            // Attempts may arrive out of order (a spool delivered late):
            // only a newer one replaces the last.
            tx.execute(
                "INSERT INTO latest (host, source, start, end, state, message, success)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, CASE WHEN ?5 = 'ok' THEN ?4 END)
                 ON CONFLICT (host, source) DO UPDATE SET start = excluded.start,
                     end = excluded.end, state = excluded.state, message = excluded.message
                 WHERE excluded.start >= latest.start",
                params![a.host, a.source, start, end, a.state, a.message],
            )?;
            if a.state == "ok" {
                tx.execute(
                    "UPDATE latest SET success = max(coalesce(success, ?3), ?3)
                     WHERE host = ?1 AND source = ?2",
                    params![a.host, a.source, end],
                )?;
            }
        }
        seen(&tx, &a.host, now, false)?;
        tx.commit()?;
        Ok(())
    }

    /// Records `plan`, heard of at `now`: replacing the host's plan, or
    /// adding to it. A retired host that publishes a plan is watched again.
    pub fn publish_plan(&mut self, plan: &Plan, now: i64) -> Result<(), Error> {
        let due = record::check_plan(plan).map_err(Error::InvalidRequest)?;
        let tx = self.begin()?;
        if plan.replace {
            tx.execute("DELETE FROM plans WHERE host = ?1", [&plan.host])?;
        }
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO plans (host, source, schedule, next_due) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (host, source) DO UPDATE
                 SET schedule = excluded.schedule, next_due = excluded.next_due",
            )?;
            for (source, due) in plan.sources.iter().zip(due) {
                upsert.execute(params![plan.host, source.source, source.schedule, due])?;
            }
        }
        seen(&tx, &plan.host, now, true)?;
        tx.commit()?;
        Ok(())
    }

    /// Stops watching `host`: its plan goes, its attempts stay. Returns
    /// false if the host is not known.
    pub fn retire_host(&mut self, host: &str) -> Result<bool, Error> {
        let tx = self.begin()?;
        let planned = tx.execute("DELETE FROM plans WHERE host = ?1", [host])?;
        let known = tx.execute("UPDATE hosts SET retired = 1 WHERE host = ?1", [host])?;
        tx.commit()?;
        Ok(planned + known > 0)
    }

    /// Removes attempts that ended before `before` (unix seconds); returns
    /// how many. The status keeps what it summed up of them.
    pub fn trim_attempts(&mut self, before: i64) -> Result<usize, Error> {
        Ok(self
            .conn
            .execute("DELETE FROM attempts WHERE end < ?1", [before])?)
    }

    /// Attempts matching `req`, newest first.
    pub fn history(&self, req: &HistoryRequest) -> Result<Vec<Attempt>, Error> {
        let limit = match req.limit {
            None => DEFAULT_HISTORY_LIMIT,
            Some(n @ 1..=MAX_HISTORY_LIMIT) => n,
            Some(n) => {
                return Err(Error::InvalidRequest(format!(
                    "limit {n} is outside 1..{MAX_HISTORY_LIMIT}"
                )))
            }
        };
        let mut filters = Vec::new();
        let mut args = Vec::new();
        for (column, value) in [("host", &req.host), ("source", &req.source)] {
            if let Some(value) = value {
                args.push(Value::Text(value.clone()));
                filters.push(format!("{column} = ?{}", args.len()));
            }
        }
        if req.failed {
            filters.push("state != 'ok'".into());
        }
        if let Some(since) = &req.since {
            let since = record::time("since", since).map_err(Error::InvalidRequest)?;
            args.push(Value::Integer(since.timestamp()));
            filters.push(format!("start >= ?{}", args.len()));
        }
        let filter = if filters.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", filters.join(" AND "))
        };
        args.push(Value::Integer(i64::from(limit)));
        let sql = format!(
            "SELECT host, kind, source, backup_id, start, end, state, failure, message, detail,
                 datasets
             FROM attempts {filter} ORDER BY start DESC, id DESC LIMIT ?{}",
            args.len()
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |row| {
            Ok(Attempt {
                host: row.get(0)?,
                kind: row.get(1)?,
                source: row.get(2)?,
                backup_id: row.get(3)?,
                start: format_time(row.get(4)?)?,
                end: format_time(row.get(5)?)?,
                state: row.get(6)?,
                failure: row.get(7)?,
                message: row.get(8)?,
                detail: row.get(9)?,
                datasets: row.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The status of every planned source of the hosts not retired that
    /// match `req`, by host and source.
    pub fn status(&self, req: &StatusRequest, clock: &Clock) -> Result<Vec<StatusRow>, Error> {
        let mut filters = String::new();
        let mut args = Vec::new();
        for (column, value) in [("p.host", &req.host), ("p.source", &req.source)] {
            if let Some(value) = value {
                args.push(Value::Text(value.clone()));
                filters.push_str(&format!(" AND {column} = ?{}", args.len()));
            }
        }
        let sql = format!(
            "SELECT p.host, p.source, p.schedule, p.next_due, l.start, l.end, l.state,
                 l.message, l.success, h.last_seen
             FROM plans p JOIN hosts h ON h.host = p.host
             LEFT JOIN latest l ON l.host = p.host AND l.source = p.source
             WHERE h.retired = 0 {filters} ORDER BY p.host, p.source"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut out = Vec::new();
        let mut schedules: HashMap<String, Option<Schedule>> = HashMap::new();
        while let Some(row) = rows.next()? {
            let host: String = row.get(0)?;
            let source: String = row.get(1)?;
            let next_due: Option<i64> = row.get(3)?;
            let start: Option<i64> = row.get(4)?;
            let end: Option<i64> = row.get(5)?;
            let last_state: Option<String> = row.get(6)?;
            let last_message: Option<String> = row.get(7)?;
            let success: Option<i64> = row.get(8)?;
            let last_seen: i64 = row.get(9)?;
            let time = |t: Option<i64>| t.map(format_time).transpose();
            let schedule: String = row.get(2)?;
            // A plan is republished only now and then: once an attempt
            // started at its due time, the next is when the schedule says,
            // after that attempt (in the metadb's time zone).
            let due = match (next_due, start) {
                (Some(due), Some(start)) if start >= due => schedules
                    .entry(schedule.clone())
                    .or_insert_with(|| Schedule::parse(&schedule).ok())
                    .as_ref()
                    .and_then(|s| {
                        let start = Local.timestamp_opt(start, 0).single()?;
                        s.latest_after(&start)
                    })
                    .map(|t| t.timestamp()),
                _ => next_due,
            };
            let missed = due.filter(|&due| clock.now > due.saturating_add(clock.grace));
            let (state, message) = if (clock.running)(&host, &source) {
                ("running".to_string(), last_message.unwrap_or_default())
            } else if let Some(due) = missed {
                let message = format!("due at {}, not attempted since", format_time(due)?);
                ("overdue".to_string(), message)
            } else {
                match last_state {
                    Some(state) => (state, last_message.unwrap_or_default()),
                    None => ("never".to_string(), "planned, never attempted".to_string()),
                }
            };
            let status = StatusRow {
                schedule,
                last_attempt: time(end)?,
                last_success: time(success)?,
                next_due: time(due)?,
                last_seen: time(Some(last_seen))?,
                host,
                source,
                state,
                message,
            };
            if !req.problems || status.is_problem() {
                out.push(status);
            }
        }
        Ok(out)
    }
}

/// Notes that `host` was heard of at `now` (and, with `revive`, that it is
/// no longer retired).
fn seen(conn: &rusqlite::Connection, host: &str, now: i64, revive: bool) -> Result<(), Error> {
    conn.execute(
        "INSERT INTO hosts (host, last_seen) VALUES (?1, ?2) ON CONFLICT (host) DO UPDATE
         SET last_seen = max(last_seen, excluded.last_seen),
             retired = CASE WHEN ?3 THEN 0 ELSE retired END",
        params![host, now, revive],
    )?;
    Ok(())
}
