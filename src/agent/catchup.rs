//! Catch-up of runs missed while the agent was not running. The agent
//! remembers in `work_dir/started/` when each source (and prune and
//! verify) last started; at start, one whose next scheduled time after
//! that passed already runs once, soon: at a per-host, per-name offset
//! within `catch_up_spread`, so a rebooted fleet does not start everything
//! at once. Deciding whether catch-up applies (`catch_up:`) is the
//! caller's.

use crate::base::schedule::Schedule;
use crate::base::time;
use chrono::{DateTime, Local, Utc};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// When each job last started, one file per job in `work_dir/started/`.
pub struct Ledger(PathBuf);

impl Ledger {
    pub fn new(work_dir: &Path) -> Ledger {
        Ledger(work_dir.join("started"))
    }

    /// The file of source `name`, or of the task `prune` or `verify`
    /// (`source` false). A source's `/` is encoded: names have no `%`.
    fn path(&self, name: &str, source: bool) -> PathBuf {
        match source {
            true => self.0.join(format!("source-{}", name.replace('/', "%2F"))),
            false => self.0.join(name),
        }
    }

    /// Records that `name` started at `at`; a failure is logged only.
    pub fn record(&self, name: &str, source: bool, at: DateTime<Utc>) {
        let path = self.path(name, source);
        let written = std::fs::create_dir_all(&self.0)
            .and_then(|()| std::fs::write(&path, format!("{}\n", time::format(at))));
        if let Err(e) = written {
            log::warn!(
                "cannot record the start of {name} in {}: {e}",
                path.display()
            );
        }
    }

    /// When `name` is to catch up: `None` if it never started here, or if
    /// no scheduled time passed since it last started; else `now` plus its
    /// share of `spread`.
    pub fn catch_up(
        &self,
        name: &str,
        source: bool,
        schedule: &Schedule,
        offset: u64,
        spread: Duration,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let text = std::fs::read_to_string(self.path(name, source)).ok()?;
        let last = DateTime::parse_from_rfc3339(text.trim()).ok()?;
        let missed = schedule.next_after(&last.with_timezone(&Local), offset)?;
        if missed.with_timezone(&Utc) > now {
            return None;
        }
        let share = match spread.as_millis() {
            0 => 0,
            ms => u64::try_from(u128::from(offset) % ms).unwrap_or(0),
        };
        log::info!(
            "{name}: its run of {} was missed while the agent was not running: catching up in {}s",
            time::format(missed.with_timezone(&Utc)),
            share / 1000
        );
        Some(now + chrono::Duration::milliseconds(i64::try_from(share).unwrap_or(0)))
    }
}
