//! The fleet's health in the store: attempts as hosts report them, the
//! plans they publish, and the status derived from both. Which host may
//! write what is the server's business; the states and when a source is
//! overdue are decided here, so that the embedded and the served metadb
//! answer alike.

use crate::base::schedule::Schedule;
use crate::metadb::store::{format_time, Error, Store};
use crate::metadb::store::{record, repository};
use crate::wire::api::{Attempt, HistoryRequest, Plan, SourcePolicy, StatusRequest, StatusRow};
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
    /// When hosts were heard of lately, besides what the store keeps (RFC
    /// 3339 in UTC, to the second: text order is time order).
    pub heard: &'a HashMap<String, String>,
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
                "INSERT INTO sources (host, source, start, end, state, message, success)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, CASE WHEN ?5 = 'ok' THEN ?4 END)
                 ON CONFLICT (host, source) DO UPDATE SET start = excluded.start,
                     end = excluded.end, state = excluded.state, message = excluded.message
                 WHERE sources.start IS NULL OR excluded.start >= sources.start",
                params![a.host, a.source, start, end, a.state, a.message],
            )?;
            if a.state == "ok" {
                tx.execute(
                    "UPDATE sources SET success = max(coalesce(success, ?3), ?3)
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
            tx.execute(UNPLAN, [&plan.host])?;
        }
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO sources (host, source, schedule, next_due, grace, retention)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (host, source) DO UPDATE
                 SET schedule = excluded.schedule, next_due = excluded.next_due,
                     grace = excluded.grace, retention = excluded.retention",
            )?;
            for (source, due) in plan.sources.iter().zip(due) {
                let grace = source.overdue_grace.and_then(|g| i64::try_from(g).ok());
                let retention = match &source.retention {
                    Some(policy) => Some(
                        serde_json::to_string(policy)
                            .map_err(|e| Error::InvalidRequest(e.to_string()))?,
                    ),
                    None => None,
                };
                upsert.execute(params![
                    plan.host,
                    source.source,
                    source.schedule,
                    due,
                    grace,
                    retention
                ])?;
            }
        }
        if let Some(repositories) = &plan.repositories {
            repository::publish(&tx, &plan.host, repositories)?;
        }
        seen(&tx, &plan.host, now, true)?;
        tx.commit()?;
        Ok(())
    }

    /// The retention policies of every planned source that published one,
    /// by host and source.
    pub fn policies(&self) -> Result<Vec<SourcePolicy>, Error> {
        let mut stmt = self.conn.prepare(
            "SELECT host, source, retention FROM sources
             WHERE schedule IS NOT NULL AND retention IS NOT NULL ORDER BY host, source",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        let mut policies = Vec::new();
        for row in rows {
            let (host, source, retention) = row?;
            // Checked when published: a row that does not parse is skipped
            // (nothing of that source is forgotten), never an error.
            if let Ok(retention) = serde_json::from_str(&retention) {
                policies.push(SourcePolicy {
                    host,
                    source,
                    retention,
                });
            }
        }
        Ok(policies)
    }

    /// Stops watching `host`: its plan goes, its attempts stay. Returns
    /// false if the host is not known.
    pub fn retire_host(&mut self, host: &str) -> Result<bool, Error> {
        let tx = self.begin()?;
        let planned = tx.execute(UNPLAN, [host])?;
        repository::forget(&tx, host)?;
        let known = tx.execute("UPDATE hosts SET retired = 1 WHERE host = ?1", [host])?;
        tx.commit()?;
        Ok(planned + known > 0)
    }

    /// Removes attempts that ended, and verifications made, before
    /// `before` (unix seconds); returns how many. The status keeps what it
    /// summed up of the attempts.
    pub fn trim(&mut self, before: i64) -> Result<usize, Error> {
        let tx = self.begin()?;
        let attempts = tx.execute("DELETE FROM attempts WHERE end < ?1", [before])?;
        let verifications =
            tx.execute("DELETE FROM verifications WHERE timestamp < ?1", [before])?;
        tx.commit()?;
        Ok(attempts + verifications)
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
            filters.push("state NOT IN ('ok', 'skipped')".into());
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
    #[cfg(test)]
    pub fn status(&self, req: &StatusRequest, clock: &Clock) -> Result<Vec<StatusRow>, Error> {
        let mut out = Vec::new();
        self.for_each_status(req, clock, |row| {
            out.push(row.clone());
            Ok::<(), Error>(())
        })?;
        Ok(out)
    }

    /// The rows of [`Store::status`], handed to `f` one at a time as they
    /// are read, so that a fleet's status is never held whole (nor made of
    /// new strings for every row: the one row handed is overwritten). An
    /// error of `f` stops the reading.
    pub fn for_each_status<E: From<Error>>(
        &self,
        req: &StatusRequest,
        clock: &Clock,
        f: impl FnMut(&StatusRow) -> Result<(), E>,
    ) -> Result<(), E> {
        self.for_each_status_from(req, None, clock, f)
    }

    /// The rows of [`Store::for_each_status`] from `from` (a host and a
    /// source, itself included) on: a page far into the fleet's status
    /// seeks its first row in the table's key rather than reading every
    /// row before it.
    pub fn for_each_status_from<E: From<Error>>(
        &self,
        req: &StatusRequest,
        from: Option<(&str, &str)>,
        clock: &Clock,
        mut f: impl FnMut(&StatusRow) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut filters = String::new();
        let mut args = Vec::new();
        for (column, value) in [("host", &req.host), ("source", &req.source)] {
            if let Some(value) = value {
                args.push(Value::Text(value.clone()));
                filters.push_str(&format!(" AND {column} = ?{}", args.len()));
            }
        }
        if let Some((host, source)) = from {
            args.push(Value::Text(host.to_string()));
            args.push(Value::Text(source.to_string()));
            filters.push_str(&format!(
                " AND (host, source) >= (?{}, ?{})",
                args.len() - 1,
                args.len()
            ));
        }
        let last_seen = self.last_seen(req.host.as_deref())?;
        if req.problems {
            // Rows that may be problems: failed or incomplete, or due long
            // enough ago (an extrapolated due time is later still). The
            // rest are not even read.
            args.push(Value::Integer(clock.now));
            args.push(Value::Integer(clock.grace));
            filters.push_str(&format!(
                " AND (state IN ('failed', 'incomplete') OR next_due + coalesce(grace, ?{}) < ?{})",
                args.len(),
                args.len() - 1
            ));
        }
        // Retired hosts have no plans: no need to look them up.
        let sql = format!(
            "SELECT host, source, schedule, next_due, start, end, state, message, success, grace
             FROM sources WHERE schedule IS NOT NULL {filters} ORDER BY host, source"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(Error::from)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args))
            .map_err(Error::from)?;
        let mut rows_of = Rows {
            clock,
            last_seen,
            host_seen: None,
            schedules: HashMap::new(),
            times: Vec::new(),
        };
        let mut status = StatusRow::default();
        while let Some(row) = rows.next().map_err(Error::from)? {
            rows_of.fill(row, &mut status)?;
            if !req.problems || status.is_problem() {
                f(&status)?;
            }
        }
        Ok(())
    }

    /// When each host (or only `host`) not retired was last heard of.
    fn last_seen(&self, host: Option<&str>) -> Result<HashMap<String, String>, Error> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT host, last_seen FROM hosts WHERE retired = 0 AND (?1 IS NULL OR host = ?1)",
        )?;
        let rows = stmt.query_map([host], |row| {
            Ok((row.get::<_, String>(0)?, format_time(row.get(1)?)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Stops watching the sources of host `?1`, keeping what their attempts
/// said.
const UNPLAN: &str = "UPDATE sources SET schedule = NULL, next_due = NULL, grace = NULL
    WHERE host = ?1 AND schedule IS NOT NULL";

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

/// What turns the rows of `sources` into status rows, with what it keeps
/// from one row to the next.
struct Rows<'c> {
    clock: &'c Clock<'c>,
    last_seen: HashMap<String, String>,
    /// The host of the last row, and when it was last heard of.
    host_seen: Option<(String, Option<String>)>,
    /// The schedules parsed so far, by their text.
    schedules: HashMap<String, Option<Schedule>>,
    /// The times formatted last, newest first: a fleet backs up at the same
    /// few hours, and formatting was a good part of the time a fleet's
    /// status took.
    times: Vec<(i64, String)>,
}

/// How many formatted times [`Rows`] keeps at most.
const KEPT_TIMES: usize = 8;

impl Rows<'_> {
    /// Makes `out` the status of the source in `row` (of the query in
    /// [`Store::for_each_status`]), reusing the room its strings have.
    fn fill(&mut self, row: &rusqlite::Row, out: &mut StatusRow) -> Result<(), Error> {
        let clock = self.clock;
        let text = |i: usize| -> Result<Option<&str>, Error> {
            Ok(row
                .get_ref(i)?
                .as_str_or_null()
                .map_err(rusqlite::Error::from)?)
        };
        let host = text(0)?.unwrap_or_default();
        let source = text(1)?.unwrap_or_default();
        let schedule = text(2)?.unwrap_or_default();
        let next_due: Option<i64> = row.get(3)?;
        let start: Option<i64> = row.get(4)?;
        let last_message = text(7)?.unwrap_or_default();
        // A plan is republished only now and then: once an attempt
        // started at its due time, the next is when the schedule says,
        // after that attempt (in the metadb's time zone).
        let due = match (next_due, start) {
            (Some(due), Some(start)) if start >= due => {
                if !self.schedules.contains_key(schedule) {
                    let parsed = Schedule::parse(schedule).ok();
                    self.schedules.insert(schedule.to_string(), parsed);
                }
                self.schedules
                    .get(schedule)
                    .and_then(Option::as_ref)
                    .and_then(|s| {
                        let start = Local.timestamp_opt(start, 0).single()?;
                        s.latest_after(&start)
                    })
                    .map(|t| t.timestamp())
            }
            _ => next_due,
        };
        let grace = row.get::<_, Option<i64>>(9)?.unwrap_or(clock.grace);
        let missed = due.filter(|&due| clock.now > due.saturating_add(grace));
        let (state, message) = if (clock.running)(host, source) {
            ("running", last_message)
        } else if missed.is_some() {
            ("overdue", "")
        } else {
            match text(6)? {
                Some(state) => (state, last_message),
                None => ("never", "planned, never attempted"),
            }
        };
        set(&mut out.host, host);
        set(&mut out.source, source);
        set(&mut out.schedule, schedule);
        set(&mut out.state, state);
        set(&mut out.message, message);
        if let Some(due) = missed {
            out.message = format!("due at {}, not attempted since", format_time(due)?);
        }
        self.time(&mut out.last_attempt, row.get(5)?)?;
        self.time(&mut out.last_success, row.get(8)?)?;
        self.time(&mut out.next_due, due)?;
        if self.host_seen.as_ref().is_none_or(|(last, _)| last != host) {
            let kept = self.last_seen.get(host);
            let seen = kept.max(clock.heard.get(host)).cloned();
            self.host_seen = Some((host.to_string(), seen));
        }
        let seen = self
            .host_seen
            .as_ref()
            .and_then(|(_, seen)| seen.as_deref());
        set_option(&mut out.last_seen, seen);
        Ok(())
    }

    /// Makes `out` `t` formatted, if any.
    fn time(&mut self, out: &mut Option<String>, t: Option<i64>) -> Result<(), Error> {
        let Some(t) = t else {
            *out = None;
            return Ok(());
        };
        if self.times.first().is_none_or(|(kept, _)| *kept != t) {
            match self.times.iter().position(|(kept, _)| *kept == t) {
                Some(i) => self.times[..=i].rotate_right(1),
                None => {
                    self.times.truncate(KEPT_TIMES - 1);
                    self.times.insert(0, (t, format_time(t)?));
                }
            }
        }
        set_option(out, self.times.first().map(|(_, text)| text.as_str()));
        Ok(())
    }
}

/// Makes `field` `value`, in the room it has.
fn set(field: &mut String, value: &str) {
    field.clear();
    field.push_str(value);
}

/// Makes `field` `value`, in the room it has if any.
fn set_option(field: &mut Option<String>, value: Option<&str>) {
    match value {
        Some(value) => set(field.get_or_insert_with(String::new), value),
        None => *field = None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::api::PlannedSource;

    fn attempt(host: &str, source: &str, start: &str, state: &str) -> Attempt {
        Attempt {
            host: host.into(),
            kind: "backup".into(),
            source: source.into(),
            backup_id: format!("b-{start}"),
            start: start.into(),
            end: start.into(),
            state: state.into(),
            failure: if state == "ok" { "" } else { "command" }.into(),
            message: format!("{state} at {start}"),
            detail: String::new(),
            datasets: 1,
        }
    }

    fn plan(host: &str, sources: &[(&str, Option<&str>)], replace: bool) -> Plan {
        Plan {
            host: host.into(),
            replace,
            sources: sources
                .iter()
                .map(|(source, due)| PlannedSource {
                    source: (*source).into(),
                    schedule: "0 0 1 1 *".into(),
                    next_due: due.map(Into::into),
                    overdue_grace: None,
                    retention: None,
                })
                .collect(),
            repositories: None,
        }
    }

    const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    fn states(store: &Store, now: i64, running: &dyn Fn(&str, &str) -> bool) -> Vec<String> {
        let clock = Clock {
            now,
            grace: 3600,
            running,
            heard: &HashMap::new(),
        };
        store
            .status(&StatusRequest::default(), &clock)
            .unwrap()
            .into_iter()
            .map(|r| format!("{}/{} {}", r.host, r.source, r.state))
            .collect()
    }

    #[test]
    fn states_come_from_plans_and_attempts() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        let due = Some("2026-01-01T06:00:00Z");
        let sources = [("a", due), ("b", due), ("c", due), ("d", due), ("e", None)];
        store.publish_plan(&plan("h1", &sources, true), T0)?;
        store.add_attempt(&attempt("h1", "a", "2026-01-01T05:00:00Z", "ok"), T0)?;
        store.add_attempt(&attempt("h1", "b", "2026-01-01T05:00:00Z", "failed"), T0)?;
        store.add_attempt(
            &attempt("h1", "c", "2026-01-01T05:00:00Z", "incomplete"),
            T0,
        )?;
        // An older attempt delivered late does not hide the newer one.
        store.add_attempt(&attempt("h1", "a", "2026-01-01T04:00:00Z", "failed"), T0)?;
        // Sent twice (a spool), kept once.
        store.add_attempt(&attempt("h1", "a", "2026-01-01T04:00:00Z", "failed"), T0)?;
        let running = |_: &str, s: &str| s == "d";
        assert_eq!(
            states(&store, T0, &running),
            [
                "h1/a ok",
                "h1/b failed",
                "h1/c incomplete",
                "h1/d running",
                "h1/e never"
            ]
        );
        // Past 06:00 and its grace, the sources not attempted since are overdue.
        let late = T0 + 7 * 3600 + 1;
        assert_eq!(
            states(&store, late, &|_, _| false),
            [
                "h1/a overdue",
                "h1/b overdue",
                "h1/c overdue",
                "h1/d overdue",
                "h1/e never"
            ]
        );
        // One that ran at its due time is due again when its schedule says.
        store.add_attempt(&attempt("h1", "a", "2026-01-01T06:00:01Z", "ok"), T0)?;
        assert_eq!(states(&store, late, &|_, _| false)[0], "h1/a ok");
        let history = store.history(&HistoryRequest {
            host: Some("h1".into()),
            source: Some("a".into()),
            ..HistoryRequest::default()
        })?;
        let starts: Vec<&str> = history.iter().map(|a| a.start.as_str()).collect();
        assert_eq!(
            starts,
            [
                "2026-01-01T06:00:01Z",
                "2026-01-01T05:00:00Z",
                "2026-01-01T04:00:00Z"
            ]
        );
        let failed = store.history(&HistoryRequest {
            failed: true,
            since: Some("2026-01-01T04:30:00Z".into()),
            ..HistoryRequest::default()
        })?;
        assert_eq!(failed.len(), 2, "b failed and c incomplete: {failed:?}");
        let rows = store.status(
            &StatusRequest {
                problems: true,
                ..StatusRequest::default()
            },
            &Clock {
                now: T0,
                grace: 3600,
                running: &|_, _| false,
                heard: &HashMap::new(),
            },
        )?;
        let problems: Vec<&str> = rows.iter().map(|r| r.source.as_str()).collect();
        assert_eq!(problems, ["b", "c"]);
        let a = store.status(
            &StatusRequest {
                source: Some("a".into()),
                ..StatusRequest::default()
            },
            &Clock {
                now: T0,
                grace: 3600,
                running: &|_, _| false,
                heard: &HashMap::new(),
            },
        )?;
        assert_eq!(a[0].last_success.as_deref(), Some("2026-01-01T06:00:01Z"));
        assert_eq!(a[0].last_seen.as_deref(), Some("2026-01-01T00:00:00Z"));
        Ok(())
    }

    #[test]
    fn plans_replace_or_add_and_retired_hosts_disappear() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        store.publish_plan(&plan("h1", &[("a", None), ("b", None)], true), T0)?;
        store.publish_plan(&plan("h2", &[("a", None)], false), T0)?;
        store.publish_plan(&plan("h2", &[("b", None)], false), T0)?;
        store.publish_plan(&plan("h1", &[("b", None)], true), T0)?;
        let none = |_: &str, _: &str| false;
        assert_eq!(
            states(&store, T0, &none),
            ["h1/b never", "h2/a never", "h2/b never"]
        );
        assert!(store.retire_host("h2")?);
        assert!(!store.retire_host("h3")?);
        assert_eq!(states(&store, T0, &none), ["h1/b never"]);
        store.publish_plan(&plan("h2", &[("c", None)], true), T0)?;
        assert_eq!(states(&store, T0, &none), ["h1/b never", "h2/c never"]);
        // A source's own grace, shorter than the metadb's, counts.
        let mut short = plan("h3", &[("q", Some("2026-01-01T00:00:00Z"))], true);
        short.sources[0].overdue_grace = Some(60);
        store.publish_plan(&short, T0)?;
        let clock = Clock {
            now: T0 + 120,
            grace: 3600,
            running: &none,
            heard: &HashMap::new(),
        };
        let problems = StatusRequest {
            problems: true,
            ..StatusRequest::default()
        };
        let rows = store.status(&problems, &clock)?;
        assert_eq!(
            (rows.len(), rows[0].state.as_str()),
            (1, "overdue"),
            "{rows:?}"
        );
        let twice = plan("h1", &[("a", None), ("a", None)], true);
        assert!(matches!(
            store.publish_plan(&twice, T0),
            Err(Error::InvalidRequest(_))
        ));
        Ok(())
    }

    #[test]
    fn a_walk_from_a_source_seeks_it_in_the_key() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        store.publish_plan(&plan("h1", &[("a", None), ("b", None)], true), T0)?;
        store.publish_plan(&plan("h2", &[("a", None), ("b", None)], true), T0)?;
        let clock = Clock {
            now: T0,
            grace: 3600,
            running: &|_, _| false,
            heard: &HashMap::new(),
        };
        let from = |req: &StatusRequest, key| {
            let mut names = Vec::new();
            store.for_each_status_from(req, Some(key), &clock, |r| {
                names.push(format!("{}/{}", r.host, r.source));
                Ok::<(), Error>(())
            })?;
            Ok::<_, Error>(names)
        };
        let all = StatusRequest::default();
        assert_eq!(from(&all, ("h1", "b"))?, ["h1/b", "h2/a", "h2/b"]);
        assert_eq!(from(&all, ("h1", "c"))?, ["h2/a", "h2/b"], "gone: the next");
        let h1 = StatusRequest {
            host: Some("h1".into()),
            ..StatusRequest::default()
        };
        assert_eq!(from(&h1, ("h1", "b"))?, ["h1/b"]);
        // Read off the primary key from there, not scanned to.
        let plan: String = store.conn.query_row(
            "EXPLAIN QUERY PLAN SELECT host FROM sources
             WHERE schedule IS NOT NULL AND (host, source) >= (?1, ?2) ORDER BY host, source",
            ["h1", "b"],
            |row| row.get(3),
        )?;
        assert!(
            plan.starts_with("SEARCH sources USING PRIMARY KEY"),
            "{plan}"
        );
        Ok(())
    }

    #[test]
    fn bad_attempts_are_refused_and_old_ones_trimmed() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        let good = attempt("h1", "a", "2026-01-01T05:00:00Z", "ok");
        for bad in [
            Attempt {
                state: "fine".into(),
                ..good.clone()
            },
            Attempt {
                kind: "restore".into(),
                ..good.clone()
            },
            Attempt {
                message: "x".repeat(crate::wire::api::MAX_LINE_BYTES + 1),
                ..good.clone()
            },
            Attempt {
                message: "two\nlines".into(),
                ..good.clone()
            },
            Attempt {
                end: "2026-01-01T04:00:00Z".into(),
                ..good.clone()
            },
        ] {
            assert!(
                matches!(store.add_attempt(&bad, T0), Err(Error::InvalidRequest(_))),
                "{bad:?}"
            );
        }
        store.add_attempt(&good, T0)?;
        store.add_attempt(
            &Attempt {
                kind: "prune".into(),
                source: String::new(),
                ..good.clone()
            },
            T0,
        )?;
        store.add_verification(&crate::wire::model::Verification {
            timestamp: "2026-01-01T05:00:00Z".into(),
            host: "h1".into(),
            atom: "a/x".into(),
            backup_id: String::new(),
            ok: true,
            message: String::new(),
            loaded: None,
        })?;
        assert_eq!(store.trim(T0)?, 0);
        assert_eq!(
            store.trim(T0 + 86_400)?,
            3,
            "two attempts and a verification"
        );
        assert!(store.history(&HistoryRequest::default())?.is_empty());
        assert!(store
            .history(&HistoryRequest {
                limit: Some(0),
                ..HistoryRequest::default()
            })
            .is_err());
        Ok(())
    }

    #[test]
    fn published_policies_are_read_back_and_plans_without_them_taken() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        // A plan from a tabacco that knew no retention in plans.
        let old: Plan = serde_json::from_str(
            r#"{"host":"h1","replace":true,"sources":[{"source":"logs","schedule":"@daily"}]}"#,
        )
        .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        store.publish_plan(&old, T0)?;
        let mut new = plan("h2", &[("sql", None), ("logs", None)], true);
        new.sources[0].retention = Some(crate::wire::api::Policy {
            keep_last: Some(2),
            keep_within: Some("36h".into()),
            ..Default::default()
        });
        store.publish_plan(&new, T0)?;
        let policies = store.policies()?;
        assert_eq!(policies.len(), 1, "{policies:?}");
        assert_eq!(
            (policies[0].host.as_str(), policies[0].source.as_str()),
            ("h2", "sql")
        );
        let policy = policies[0]
            .retention
            .to_retention()
            .map_err(Error::InvalidRequest)?;
        assert_eq!(
            policy.forget_args(),
            ["--keep-last", "2", "--keep-within", "1d12h"]
        );
        // A policy that keeps nothing is refused with the plan.
        new.sources[0].retention = Some(crate::wire::api::Policy::default());
        assert!(matches!(
            store.publish_plan(&new, T0),
            Err(Error::InvalidRequest(_))
        ));
        // Retired: its sources are no longer pruned by others.
        store.retire_host("h2")?;
        assert!(store.policies()?.is_empty());
        Ok(())
    }

    #[test]
    fn only_a_prune_or_verify_may_be_skipped() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        let skipped = attempt("h1", "", "2026-01-01T04:00:00Z", "skipped");
        assert!(matches!(
            store.add_attempt(
                &Attempt {
                    kind: "backup".into(),
                    source: "a".into(),
                    ..skipped.clone()
                },
                T0
            ),
            Err(Error::InvalidRequest(_))
        ));
        store.add_attempt(
            &Attempt {
                kind: "prune".into(),
                ..skipped
            },
            T0,
        )?;
        let failed = store.history(&HistoryRequest {
            failed: true,
            ..HistoryRequest::default()
        })?;
        assert!(failed.is_empty(), "a skip is no failure: {failed:?}");
        Ok(())
    }
}
