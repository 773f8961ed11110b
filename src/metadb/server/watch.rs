//! The metadb's watch: a thread that looks at the fleet's status every
//! `watch_interval` and tells the `notify:` targets of metadb.yml when a
//! source becomes `overdue`, a host `silent` (nothing heard for
//! `silent_after`), and when either is `recovered`: once per transition.
//! What it remembers is in memory: after a restart, problems still there
//! are told once more. The status itself is the store's and the server's;
//! the thread is a [`Periodic`] whose interval is the policy's at each look.

use crate::base::periodic::{Periodic, Tick};
use crate::metadb::server::config::Policy;
use crate::metadb::store;
use crate::report::notify::{Counts, Event, Notice, Notifier};
use crate::wire::api::StatusRow;
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// How long the watch waits for its last notifications when stopped.
const STOP_BOUND: Duration = Duration::from_secs(2);

/// Owns the watch thread.
pub struct Watch(Periodic);

/// What was a problem at the last look.
#[derive(Default)]
struct Seen {
    overdue: HashSet<(String, String)>,
    silent: HashSet<String>,
}

impl Watch {
    /// Starts the watch. `policy` gives the policy in force (a reload may
    /// change the targets), `status` the status of every planned source.
    pub fn spawn(
        policy: impl Fn() -> Arc<Policy> + Send + 'static,
        status: impl Fn(&Policy) -> Result<Vec<StatusRow>, store::Error> + Send + 'static,
        counts: Arc<Counts>,
    ) -> Result<Watch, String> {
        let mut notifier = Some(Notifier::spawn(counts)?);
        let mut seen = Seen::default();
        let periodic = Periodic::spawn("metadb-watch", move |tick| {
            let policy = policy();
            if tick == Tick::Stopping {
                if let Some(notifier) = notifier.take() {
                    notifier.finish(STOP_BOUND);
                }
            } else if let Some(notifier) = notifier.as_ref().filter(|_| !policy.notify.is_empty()) {
                match status(&policy) {
                    Ok(rows) => {
                        for (event, notice) in seen.update(&rows, &policy, Utc::now()) {
                            notifier.tell(&policy.notify, &[event], &notice);
                        }
                    }
                    Err(e) => log::error!("metadb: watch: cannot read the status: {e}"),
                }
            }
            policy.watch_interval
        })?;
        Ok(Watch(periodic))
    }

    /// Stops the thread (after what it has to notify is sent, within a
    /// bound) and joins it.
    pub fn stop(self) {
        self.0.stop();
    }
}

impl Seen {
    /// The transitions since the last look, remembering this one.
    fn update(
        &mut self,
        rows: &[StatusRow],
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Vec<(Event, Notice)> {
        let mut told = Vec::new();
        let notice = |host: &str, source: &str, message: String| Notice {
            host: host.to_string(),
            source: source.to_string(),
            backup_id: String::new(),
            state: "",
            message,
            started: String::new(),
            ended: String::new(),
            datasets: 0,
        };
        let overdue: HashSet<(String, String)> = rows
            .iter()
            .filter(|r| r.state == "overdue")
            .map(|r| (r.host.clone(), r.source.clone()))
            .collect();
        for row in rows {
            let key = (row.host.clone(), row.source.clone());
            if overdue.contains(&key) && !self.overdue.contains(&key) {
                let message = format!("{} {} overdue: {}", row.host, row.source, row.message);
                told.push((Event::Overdue, notice(&row.host, &row.source, message)));
            }
        }
        for (host, source) in self.overdue.difference(&overdue) {
            let message = format!("{host} {source} no longer overdue");
            told.push((Event::Recovered, notice(host, source, message)));
        }
        self.overdue = overdue;

        let silent_after =
            chrono::Duration::from_std(policy.silent_after).unwrap_or(chrono::Duration::MAX);
        let mut silent = HashSet::new();
        for row in rows {
            let last = row
                .last_seen
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
            let Some(last) = last else { continue };
            if now.signed_duration_since(last) > silent_after
                && silent.insert(row.host.clone())
                && !self.silent.contains(&row.host)
            {
                let message = format!(
                    "{} silent: nothing heard since {}",
                    row.host,
                    row.last_seen.as_deref().unwrap_or_default()
                );
                told.push((Event::Silent, notice(&row.host, "", message)));
            }
        }
        for host in self.silent.difference(&silent) {
            let message = format!("{host} heard from again");
            told.push((Event::Recovered, notice(host, "", message)));
        }
        self.silent = silent;
        told
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadb::server::config::Config;

    fn row(state: &str, last_seen: &str) -> StatusRow {
        StatusRow {
            host: "h1".into(),
            source: "a".into(),
            state: state.into(),
            schedule: "@daily".into(),
            last_attempt: None,
            last_success: None,
            next_due: None,
            message: String::new(),
            last_seen: Some(last_seen.into()),
        }
    }

    #[test]
    fn each_transition_is_told_once() {
        let dir = std::env::temp_dir().join(format!("tabacco-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metadb.yml");
        std::fs::write(&path, "silent_after: 1h\n").unwrap();
        let policy = Config::load(&path).unwrap().policy;
        let now = DateTime::parse_from_rfc3339("2026-01-02T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut seen = Seen::default();
        let told = |seen: &mut Seen, rows: &[StatusRow]| -> Vec<&'static str> {
            let events = seen.update(rows, &policy, now);
            events.iter().map(|(e, _)| e.name()).collect()
        };
        let fresh = "2026-01-02T11:30:00Z";
        let old = "2026-01-02T10:00:00Z";
        assert!(told(&mut seen, &[row("ok", fresh)]).is_empty());
        assert_eq!(told(&mut seen, &[row("overdue", fresh)]), ["overdue"]);
        assert!(told(&mut seen, &[row("overdue", fresh)]).is_empty());
        assert_eq!(told(&mut seen, &[row("overdue", old)]), ["silent"]);
        assert!(told(&mut seen, &[row("overdue", old)]).is_empty());
        assert_eq!(
            told(&mut seen, &[row("ok", fresh)]),
            ["recovered", "recovered"]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
