//! `tabacco unlock`: remove the repository's stale locks, those of restic
//! processes that ended without removing theirs (killed, or their host
//! gone), with `restic unlock`, never `--remove-all`: a live lock stays,
//! and is reported with who holds it and why it counts as live (its
//! process runs on this host, or it is younger than restic's stale
//! threshold). Exit 1 if any is left.

use crate::backup::copy::Reader;
use crate::base::count::count;
use crate::cmd::{self, Exit};
use crate::config::Config;
use crate::process::interrupt::Interrupt;
use crate::process::shell::Supervisor;
use crate::restic::{Lock, STALE_AFTER};
use std::fmt::Write;

pub fn unlock(config: &Config, repository: Option<&str>) -> Result<(), Exit> {
    let reader = Reader::new(&config.repository, &config.copies)
        .pick(repository)
        .map_err(|e| Exit::Usage(e.to_string()))?;
    let (name, repo) = reader.checked();
    let sup = Supervisor::new(config.priority, "unlock");
    let _interrupt =
        Interrupt::watching(&sup).map_err(|e| Exit::Error(format!("cannot catch signals: {e}")))?;
    let before = repo.locks(&sup).map_err(Exit::error)?;
    if before.is_empty() {
        return cmd::print(&format!("repository {name}: no locks\n"));
    }
    repo.unlock(&sup).map_err(Exit::error)?;
    let left = repo.locks(&sup).map_err(Exit::error)?;
    let mut out = String::new();
    let removed: Vec<&Lock> = before.iter().filter(|l| !left.contains(l)).collect();
    for lock in &removed {
        let _ = writeln!(out, "removed stale lock {}", describe(lock));
    }
    let host = system_host();
    for lock in &left {
        let why = if lock.hostname == host {
            "its process runs on this host".to_string()
        } else {
            format!(
                "taken or refreshed less than {} minutes ago on another host",
                STALE_AFTER.as_secs() / 60
            )
        };
        let _ = writeln!(out, "live lock {}: {why}", describe(lock));
    }
    cmd::print(&out)?;
    if left.is_empty() {
        return Ok(());
    }
    Err(Exit::Error(format!(
        "repository {name}: {} left in place: wait for the restic holding it to end, or stop that restic (with SIGINT, so that it removes its lock)",
        count(left.len(), "live lock")
    )))
}

/// `a1b2c3d4 (exclusive, restic pid 42 of root on web1, since TIME)`. Any
/// host may have written the lock: its words are escaped as table cells
/// are, so that none drives the terminal.
fn describe(lock: &Lock) -> String {
    let kind = if lock.exclusive {
        "exclusive"
    } else {
        "shared"
    };
    let shown = |text: &str| cmd::cell_text(text, MAX_WORD);
    format!(
        "{} ({kind}, restic pid {} of {} on {}, since {})",
        shown(&lock.id.chars().take(8).collect::<String>()),
        lock.pid,
        shown(&lock.username),
        shown(&lock.hostname),
        shown(&lock.time)
    )
}

/// The widest a word of a lock is shown.
const MAX_WORD: usize = 80;

/// The name restic writes in its locks: the system's, not agent.yml's
/// `hostname`.
fn system_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}
