//! `GET /metrics`: the agent's state in the Prometheus text format (version
//! 0.0.4), as `promtool check metrics` wants it: HELP and TYPE before each
//! family, `_total` on counters only, base units (`_seconds`).
//!
//! `backup_ok{dataset="<source>"}` keeps the name existing alert rules use.
//! Per-source values appear once the source has run since the agent
//! started; failure counters appear per kind once that kind has occurred.

use crate::agent::status::{Maintenance, SourceState, State};
use crate::report::failure::Verdict;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// The sources' states, by name.
type Sources = BTreeMap<String, SourceState>;

/// Renders every metric; `spool_backlog` is the number of records waiting
/// for the metadb.
pub fn render(state: &State, spool_backlog: usize) -> String {
    let mut out = String::new();
    last_backups(&mut out, &state.sources);
    last_successes(&mut out, &state.sources);
    per_source(&mut out, &state.sources);
    agent(&mut out, state, spool_backlog);
    maintenance(&mut out, &state.maintenance);
    out
}

/// How each source's last backup went: succeeded, incomplete, when it last
/// succeeded, how long the last attempt took.
fn last_backups(out: &mut String, sources: &Sources) {
    family(
        out,
        "backup_ok",
        "gauge",
        "Whether the last backup of the source succeeded (1) or failed (0).",
    );
    for (name, s) in sources {
        if let Some(last) = &s.last {
            let ok = u8::from(last.errors.is_empty());
            sample(out, "backup_ok", &[("dataset", name)], ok);
        }
    }
    family(
        out,
        "tabacco_backup_incomplete",
        "gauge",
        "Whether the last backup of the source was incomplete (1): saved and recorded, but some files were unreadable.",
    );
    for (name, s) in sources {
        if let Some(last) = &s.last {
            let incomplete = u8::from(Verdict::of(&last.errors) == Verdict::Incomplete);
            sample(
                out,
                "tabacco_backup_incomplete",
                &[("source", name)],
                incomplete,
            );
        }
    }
    family(
        out,
        "tabacco_last_success_timestamp_seconds",
        "gauge",
        "When the last successful backup of the source finished, in seconds since the epoch.",
    );
    for (name, s) in sources {
        if let Some(t) = s.last_success {
            let metric = "tabacco_last_success_timestamp_seconds";
            sample(out, metric, &[("source", name)], seconds(t));
        }
    }
    family(
        out,
        "tabacco_last_duration_seconds",
        "gauge",
        "How long the last backup attempt of the source took.",
    );
    for (name, s) in sources {
        if let Some(last) = &s.last {
            let metric = "tabacco_last_duration_seconds";
            let secs = format!("{:.3}", last.duration.as_secs_f64());
            sample(out, metric, &[("source", name)], secs);
        }
    }
}

/// What each source's last successful backup held: bytes added, files.
fn last_successes(out: &mut String, sources: &Sources) {
    family(
        out,
        "tabacco_bytes_added",
        "gauge",
        "Bytes the last successful backup of the source added to the repository.",
    );
    for (name, s) in sources.iter().filter(|(_, s)| s.last_success.is_some()) {
        sample(
            out,
            "tabacco_bytes_added",
            &[("source", name)],
            s.bytes_added,
        );
    }
    family(
        out,
        "tabacco_files",
        "gauge",
        "Files in the last successful backup of the source.",
    );
    for (name, s) in sources.iter().filter(|(_, s)| s.last_success.is_some()) {
        sample(out, "tabacco_files", &[("source", name)], s.files);
    }
}

/// Each source's counts since the agent started, and its next run.
fn per_source(out: &mut String, sources: &Sources) {
    family(
        out,
        "tabacco_backup_failures_total",
        "counter",
        "Failed backup attempts of the source since the agent started, by kind of failure.",
    );
    for (name, s) in sources {
        for (kind, count) in &s.failures {
            let labels = [("source", name.as_str()), ("kind", kind.name())];
            sample(out, "tabacco_backup_failures_total", &labels, count);
        }
    }
    family(
        out,
        "tabacco_overlaps_total",
        "counter",
        "Runs of the source not started because its previous backup was still running.",
    );
    for (name, s) in sources {
        sample(
            out,
            "tabacco_overlaps_total",
            &[("source", name)],
            s.overlaps,
        );
    }
    family(
        out,
        "tabacco_next_run_timestamp_seconds",
        "gauge",
        "When the source is next scheduled to run, in seconds since the epoch.",
    );
    for (name, s) in sources {
        if let Some(t) = s.next_run {
            let metric = "tabacco_next_run_timestamp_seconds";
            sample(out, metric, &[("source", name)], seconds(t));
        }
    }
}

/// The agent's own: running jobs, the spool's backlog, notifications.
fn agent(out: &mut String, state: &State, spool_backlog: usize) {
    family(
        out,
        "tabacco_running_jobs",
        "gauge",
        "Backups running now, or waiting to retry.",
    );
    sample(out, "tabacco_running_jobs", &[], state.running.len());
    family(
        out,
        "tabacco_spool_backlog",
        "gauge",
        "Records waiting in the spool for the metadb.",
    );
    sample(out, "tabacco_spool_backlog", &[], spool_backlog);
    for (name, help, counter) in [
        (
            "tabacco_notifications_sent_total",
            "Notifications a target accepted.",
            &state.notifications.sent,
        ),
        (
            "tabacco_notifications_failed_total",
            "Notifications given up: unreachable or refusing target, or too many waiting.",
            &state.notifications.failed,
        ),
    ] {
        family(out, name, "counter", help);
        sample(out, name, &[], counter.load(Ordering::Relaxed));
    }
}

/// The maintenance thread's metrics: last successes and failure counts of
/// verification and pruning, and restore requests carried out.
fn maintenance(out: &mut String, m: &Maintenance) {
    let timestamps = [
        (
            "tabacco_last_verified_timestamp_seconds",
            "When `verify` (restic check and a restore drill) last passed.",
            m.last_verified,
        ),
        (
            "tabacco_last_pruned_timestamp_seconds",
            "When retention was last applied successfully.",
            m.last_pruned,
        ),
    ];
    for (name, help, t) in timestamps {
        family(out, name, "gauge", help);
        if let Some(t) = t {
            sample(out, name, &[], seconds(t));
        }
    }
    let counters = [
        (
            "tabacco_verify_failures_total",
            "Failed verifications (check or restore drill).",
            m.verify_failures,
        ),
        (
            "tabacco_prune_failures_total",
            "Failed applications of retention.",
            m.prune_failures,
        ),
        (
            "tabacco_prune_skipped_total",
            "Scheduled prunes not run because another host held the repository's maintenance lease.",
            m.prune_skipped,
        ),
    ];
    for (name, help, n) in counters {
        family(out, name, "counter", help);
        sample(out, name, &[], n);
    }
    let name = "tabacco_restore_requests_total";
    family(
        out,
        name,
        "counter",
        "Restore requests from the metadb carried out, by outcome.",
    );
    sample(out, name, &[("outcome", "succeeded")], m.restores_succeeded);
    sample(out, name, &[("outcome", "failed")], m.restores_failed);
    let name = "tabacco_atom_loaded_timestamp_seconds";
    family(
        out,
        name,
        "gauge",
        "When each atom was last proven to load (its source's proof_command) by a drill of this agent.",
    );
    for (atom, t) in &m.loaded {
        sample(out, name, &[("atom", atom)], seconds(*t));
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"{}\"", escape(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Escapes a label value as the text format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn seconds(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::status::{LastRun, SourceState};
    use crate::report::failure::Kind;
    use std::time::Duration;

    #[test]
    fn renders_families_and_samples() {
        let mut state = State::default();
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut users = SourceState {
            schedule: "@daily".into(),
            next_run: Some(t),
            last_success: Some(t),
            bytes_added: 537,
            files: 3,
            overlaps: 2,
            ..SourceState::default()
        };
        users.failures.insert(Kind::RepositoryLocked, 1);
        users.last = Some(LastRun {
            backup_id: "b".into(),
            finished: t,
            duration: Duration::from_millis(1500),
            errors: Vec::new(),
        });
        state.sources.insert("users".into(), users);
        state.sources.insert("new".into(), SourceState::default());
        let text = render(&state, 0);
        for line in [
            "# TYPE backup_ok gauge",
            "backup_ok{dataset=\"users\"} 1",
            "tabacco_last_success_timestamp_seconds{source=\"users\"} 1800000000",
            "tabacco_last_duration_seconds{source=\"users\"} 1.500",
            "tabacco_bytes_added{source=\"users\"} 537",
            "tabacco_files{source=\"users\"} 3",
            "# TYPE tabacco_backup_failures_total counter",
            "tabacco_backup_failures_total{source=\"users\",kind=\"repository_locked\"} 1",
            "tabacco_overlaps_total{source=\"users\"} 2",
            "tabacco_overlaps_total{source=\"new\"} 0",
            "tabacco_next_run_timestamp_seconds{source=\"users\"} 1800000000",
            "tabacco_running_jobs 0",
            "tabacco_spool_backlog 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
        }
        assert!(!text.contains("backup_ok{dataset=\"new\"}"), "not run yet");
        assert_eq!(escape("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
    }

    #[test]
    fn an_incomplete_backup_has_its_own_gauge() {
        let mut state = State::default();
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        for (name, kind) in [("users", Kind::Incomplete), ("sql", Kind::Command)] {
            let mut source = SourceState::default();
            source.failures.insert(kind, 1);
            source.last = Some(LastRun {
                backup_id: "b".into(),
                finished: t,
                duration: Duration::from_secs(1),
                errors: vec![crate::report::failure::Failure::new(kind, "x")],
            });
            state.sources.insert(name.into(), source);
        }
        let text = render(&state, 0);
        for line in [
            "backup_ok{dataset=\"users\"} 0",
            "tabacco_backup_incomplete{source=\"users\"} 1",
            "tabacco_backup_incomplete{source=\"sql\"} 0",
            "tabacco_backup_failures_total{source=\"users\",kind=\"incomplete\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
        }
    }
}
