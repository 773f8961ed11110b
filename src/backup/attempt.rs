//! An attempt to back up a source ([`run`]), and how an attempt is told:
//! notifications as it starts and ends, and the outcome of a backup job,
//! or of a prune or verify, made into one [`Attempt`] record, its reason
//! cut to what the metadb takes (a one-line message, a bounded tail of the
//! details), and recorded without failing the job if it cannot be.
//! Deciding when attempts happen, and retrying them, is the agent's and
//! `run`'s; keeping them is the metadb's.

use crate::backup::job::{self, Env};
use crate::base::time;
use crate::config::source::Source;
use crate::metadb::Metadb;
use crate::process::shell::Supervisor;
use crate::report::failure::{Failure, Kind};
use crate::report::notify::Notifier;
use crate::report::outcome::Outcome;
use crate::wire::api::Attempt;
use crate::wire::api::{MAX_DETAIL_BYTES, MAX_LINE_BYTES};
use chrono::{DateTime, Utc};
use std::fmt;

/// Backs up `source` once, as backup `backup_id` under `sup`, and makes the
/// attempt known: `notifier` tells of its start and end, and the metadb
/// records it, unless it is a dry run. One clock reading is the attempt's
/// start and its snapshots' time. `stopped` says why it does not start at
/// all, if its owner stopped it already.
pub fn run(
    source: &Source,
    env: &Env,
    sup: &Supervisor,
    backup_id: &str,
    notifier: &Notifier,
    stopped: Option<String>,
) -> Outcome {
    let start = Utc::now();
    let config = env.config;
    let told = !env.dry_run;
    let outcome = match stopped {
        Some(reason) => Outcome {
            source: source.name.clone(),
            backup_id: backup_id.to_string(),
            recorded: Vec::new(),
            errors: vec![Failure::new(
                Kind::Interrupted,
                format!("not started: {reason}"),
            )],
            copies: Vec::new(),
        },
        None => {
            if told {
                let targets = config.targets(source);
                notifier.started(targets, &config.hostname, &source.name, backup_id, start);
            }
            job::backup(source, env, sup, backup_id, start)
        }
    };
    if told {
        record(env.metadb, &of(&config.hostname, &outcome, start));
        notifier.ended(
            config.targets(source),
            &config.hostname,
            &config.work_dir,
            &outcome,
            start,
        );
    }
    outcome
}

/// The attempt `outcome` of `host` was, started at `start` and ended now.
pub fn of(host: &str, outcome: &Outcome, start: DateTime<Utc>) -> Attempt {
    let first = outcome.errors.first();
    let detail: Vec<&str> = outcome.errors.iter().map(|e| e.message.as_str()).collect();
    Attempt {
        host: host.to_string(),
        kind: "backup".into(),
        source: outcome.source.clone(),
        backup_id: outcome.backup_id.clone(),
        start: time::format(start),
        end: time::format(Utc::now().max(start)),
        state: state(&outcome.errors).into(),
        failure: first.map(|e| e.kind.name().to_string()).unwrap_or_default(),
        message: first.map(|e| one_line(&e.message)).unwrap_or_default(),
        detail: tail(&detail.join("\n")),
        datasets: u32::try_from(outcome.recorded.len()).unwrap_or(u32::MAX),
    }
}

/// The attempt a prune or verify (`kind`) of `sources` (all if none or
/// several are named) of `host` was, started at `start` and ended now.
pub fn of_task(
    host: &str,
    kind: &str,
    sources: &[String],
    start: DateTime<Utc>,
    result: Result<(), &dyn fmt::Display>,
) -> Attempt {
    let source = match sources {
        [one] => one.clone(),
        _ => String::new(),
    };
    Attempt {
        host: host.to_string(),
        kind: kind.to_string(),
        source,
        backup_id: String::new(),
        start: time::format(start),
        end: time::format(Utc::now().max(start)),
        state: if result.is_ok() { "ok" } else { "failed" }.into(),
        failure: if result.is_ok() { "" } else { "other" }.into(),
        message: result
            .err()
            .map(|e| one_line(&e.to_string()))
            .unwrap_or_default(),
        detail: result
            .err()
            .map(|e| tail(&e.to_string()))
            .unwrap_or_default(),
        datasets: 0,
    }
}

/// The attempt a prune or verify of `host` was that did not run because
/// `why` (another host held the repository's maintenance lease).
pub fn skipped(
    host: &str,
    kind: &str,
    sources: &[String],
    start: DateTime<Utc>,
    why: &str,
) -> Attempt {
    Attempt {
        state: "skipped".into(),
        message: one_line(why),
        ..of_task(host, kind, sources, start, Ok(()))
    }
}

/// `ok` without failures, `incomplete` when every failure is an incomplete
/// snapshot (the data that could be read is recorded), else `failed`.
fn state(errors: &[Failure]) -> &'static str {
    crate::report::failure::Verdict::of(errors).name()
}

/// Records `attempt`; a failure is logged, never the job's.
pub fn record(metadb: &Metadb, attempt: &Attempt) {
    if let Err(e) = metadb.add_attempt(attempt) {
        log::error!(
            "{} of source {} (backup {}): attempt not recorded: {e}",
            attempt.kind,
            attempt.source,
            attempt.backup_id
        );
    }
}

/// The first line of `text`, other control characters dropped, at most
/// [`MAX_LINE_BYTES`].
fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let mut out = String::new();
    for c in line.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_LINE_BYTES - 3 {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

/// The end of `text`, at most [`MAX_DETAIL_BYTES`], with control characters
/// other than newline and tab dropped.
fn tail(text: &str) -> String {
    let clean: String = text
        .chars()
        .filter(|&c| !c.is_control() || c == '\n' || c == '\t')
        .collect();
    if clean.len() <= MAX_DETAIL_BYTES {
        return clean;
    }
    let mut start = clean.len() - (MAX_DETAIL_BYTES - 3);
    while !clean.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &clean[start..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::failure::Kind;

    #[test]
    fn reasons_are_cut_to_what_the_metadb_takes() {
        let long = format!("restic failed: {}\nsecond line\u{1b}", "é".repeat(5000));
        let outcome = Outcome {
            source: "users".into(),
            backup_id: "b1".into(),
            recorded: Vec::new(),
            errors: vec![
                Failure::new(Kind::Command, long),
                Failure::new(Kind::Other, "last words"),
            ],
            copies: Vec::new(),
        };
        let a = of("web1", &outcome, Utc::now());
        assert_eq!(
            (a.state.as_str(), a.failure.as_str()),
            ("failed", "command")
        );
        assert!(a.message.len() <= MAX_LINE_BYTES && a.message.ends_with('…'));
        assert!(a.message.starts_with("restic failed: é"));
        assert!(a.detail.len() <= MAX_DETAIL_BYTES && a.detail.ends_with("last words"));
        assert!(!a.detail.contains('\u{1b}'));
        assert_eq!(
            crate::metadb::store::record::check_attempt(&a).map(drop),
            Ok(())
        );
        let p = of_task(
            "web1",
            "prune",
            &[],
            Utc::now(),
            Err(&"restic forget: boom\nmore"),
        );
        assert_eq!(
            (p.source.as_str(), p.message.as_str()),
            ("", "restic forget: boom")
        );
        assert_eq!(
            crate::metadb::store::record::check_attempt(&p).map(drop),
            Ok(())
        );
    }
}
