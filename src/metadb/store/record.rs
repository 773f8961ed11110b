//! What a record must be before the store keeps it. Any host token can write
//! records that every other host reads (in tables, in restore plans, as
//! restic tags and shell arguments), so each field is checked here: names by
//! the agent's own rule ([`crate::base::name::validate`]), everything by length,
//! ids so that they can be addressed in a URL, statistics as non-negative
//! and times as writable in RFC 3339. The store calls these; over HTTP a
//! refusal is a 400.

use crate::wire::api::{Attempt, Plan};
use crate::wire::api::{MAX_DETAIL_BYTES, MAX_LINE_BYTES};
use crate::wire::model::{
    Backup, Dataset, RestoreRequest, UpdateActiveJobStatusRequest, Verification,
};
use chrono::{DateTime, Datelike, Utc};

/// Longest source or atom name, in bytes: the agent's own bound.
pub const MAX_NAME_BYTES: usize = crate::base::name::MAX_LEN;
/// Longest id (backup, dataset, snapshot, restore request, job), in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// Longest host name, in bytes (a DNS name's limit).
pub const MAX_HOST_BYTES: usize = 253;
/// Longest recorded path or restore target, in bytes (Linux's `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest message (a verification's, a restore request's), in bytes.
pub const MAX_MESSAGE_BYTES: usize = 65_536;
/// Most sources in one plan: what one host may make `/metrics` and the
/// status page show.
pub const MAX_PLANNED: usize = 1_000;
/// Most atoms in one dataset.
pub const MAX_ATOMS: usize = 100_000;
/// Longest schedule, in bytes.
const MAX_SCHEDULE_BYTES: usize = 256;
/// Longest overdue grace of a planned source, in seconds: ten years.
const MAX_GRACE_SECS: u64 = 10 * 366 * 86_400;
/// Longest failure kind, in bytes.
const MAX_KIND_BYTES: usize = 64;
/// Longest status object of an active job (restic's, serialised), in bytes.
const MAX_STATUS_BYTES: usize = 16_384;

/// How much of a refused value an error message repeats.
const QUOTED_CHARS: usize = 40;

/// How far in the future a backup may be dated, in seconds: room for hosts
/// whose clocks disagree, none for a record dated years ahead, which would
/// be every later find's newest version of its atoms.
pub const MAX_AHEAD_SECS: i64 = 3600;

/// Checks `dataset` of `backup`, at `now` (UTC unix seconds), and returns
/// the backup time as UTC unix seconds.
pub fn check_dataset(backup: &Backup, dataset: &Dataset, now: i64) -> Result<i64, String> {
    check_dataset_of(&backup.id, &backup.host, dataset)?;
    let t = time("backup timestamp", &backup.timestamp)?.timestamp();
    not_ahead("backup timestamp", &backup.timestamp, t, now)?;
    Ok(t)
}

/// Refuses time `t` (written `text`) if it is more than [`MAX_AHEAD_SECS`]
/// after `now`.
pub fn not_ahead(what: &str, text: &str, t: i64, now: i64) -> Result<(), String> {
    if t > now.saturating_add(MAX_AHEAD_SECS) {
        return Err(format!(
            "{what} {} is more than an hour in the future",
            quote(text)
        ));
    }
    Ok(())
}

/// Checks `dataset` of backup `backup_id` of `backup_host`, but for the
/// backup's time.
pub fn check_dataset_of(
    backup_id: &str,
    backup_host: &str,
    dataset: &Dataset,
) -> Result<(), String> {
    id("backup id", backup_id)?;
    id("dataset id", &dataset.id)?;
    host(backup_host)?;
    source(&dataset.source)?;
    if !dataset.snapshot_id.is_empty() {
        id("snapshot id", &dataset.snapshot_id)?;
    }
    if let Some(repository) = &dataset.repository {
        super::repository::restic_id(repository)?;
    }
    for (what, value) in [
        ("total_files", dataset.total_files),
        ("total_bytes", dataset.total_bytes),
        ("bytes_added", dataset.bytes_added),
        ("duration", dataset.duration),
    ] {
        if value < 0 {
            return Err(format!("dataset {}: negative {what} {value}", dataset.id));
        }
    }
    if dataset.atoms.len() > MAX_ATOMS {
        return Err(format!(
            "dataset {}: {} atoms, over {MAX_ATOMS}",
            dataset.id,
            dataset.atoms.len()
        ));
    }
    let mut names = Vec::with_capacity(dataset.atoms.len());
    for atom in &dataset.atoms {
        name("atom", &atom.name)?;
        if let Some(p) = &atom.path {
            path("atom path", p)?;
        }
        names.push(atom.name.as_str());
    }
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(format!("dataset {}: atom {} twice", dataset.id, pair[0]));
    }
    Ok(())
}

/// Checks a verification and returns its time as UTC unix seconds.
pub fn check_verification(v: &Verification) -> Result<i64, String> {
    host(&v.host)?;
    name("atom", &v.atom)?;
    if !v.backup_id.is_empty() {
        id("backup id", &v.backup_id)?;
    }
    message(&v.message)?;
    Ok(time("verification timestamp", &v.timestamp)?.timestamp())
}

/// Checks a restore request as posted: its id, host, target and plan (the
/// admin's choice of records, whatever their time).
pub fn check_restore_request(request: &RestoreRequest) -> Result<(), String> {
    id("restore request id", &request.id)?;
    host(&request.host)?;
    if let Some(target) = &request.target {
        path("restore target", target)?;
    }
    if request.items.is_empty() {
        return Err("a restore request needs items".into());
    }
    for item in &request.items {
        check_dataset_of(&item.backup.id, &item.backup.host, &item.dataset)?;
        time("backup timestamp", &item.backup.timestamp)?;
    }
    Ok(())
}

/// Checks a host's report of its running jobs.
pub fn check_jobs(report: &UpdateActiveJobStatusRequest) -> Result<(), String> {
    host(&report.host)?;
    for job in &report.active_jobs {
        // `SOURCE BACKUP_ID`: shown, never addressed.
        non_empty("job id", &job.job_id)?;
        short(
            "job id",
            &job.job_id,
            MAX_NAME_BYTES + MAX_ID_BYTES,
            char::is_control,
        )?;
        for (what, value) in [
            ("backup id", &job.backup_id),
            ("dataset id", &job.dataset_id),
        ] {
            if !value.is_empty() {
                id(what, value)?;
            }
        }
        if !job.dataset_source.is_empty() {
            source(&job.dataset_source)?;
        }
        short("job message", &job.message, MAX_ID_BYTES, char::is_control)?;
        // restic's status object: a few numbers and the files in progress.
        if let Some(status) = &job.status {
            let size = serde_json::to_string(status).map_or(usize::MAX, |s| s.len());
            if size > MAX_STATUS_BYTES {
                return Err(format!(
                    "job status of {size} bytes, over {MAX_STATUS_BYTES}"
                ));
            }
        }
    }
    Ok(())
}

/// Checks an attempt and returns its start and end as UTC unix seconds.
pub fn check_attempt(a: &Attempt) -> Result<(i64, i64), String> {
    host(&a.host)?;
    match a.kind.as_str() {
        "backup" => source(&a.source)?,
        "prune" | "verify" if a.source.is_empty() => {}
        "prune" | "verify" => source(&a.source)?,
        other => return Err(format!("unknown attempt kind {}", quote(other))),
    }
    if !a.backup_id.is_empty() {
        id("backup id", &a.backup_id)?;
    }
    match a.state.as_str() {
        "ok" | "failed" | "incomplete" => {}
        // Another host held the maintenance lease.
        "skipped" if a.kind != "backup" => {}
        _ => return Err(format!("unknown attempt state {}", quote(&a.state))),
    }
    short("failure kind", &a.failure, MAX_KIND_BYTES, |c| {
        !(c.is_ascii_lowercase() || c == '_')
    })?;
    short(
        "attempt message",
        &a.message,
        MAX_LINE_BYTES,
        char::is_control,
    )?;
    short("attempt detail", &a.detail, MAX_DETAIL_BYTES, |c| {
        c.is_control() && c != '\n' && c != '\t'
    })?;
    let start = time("attempt start", &a.start)?.timestamp();
    let end = time("attempt end", &a.end)?.timestamp();
    if end < start {
        return Err(format!("attempt ends at {} before it starts", a.end));
    }
    Ok((start, end))
}

/// Checks a plan; returns each source's next due time as UTC unix seconds.
pub fn check_plan(plan: &Plan) -> Result<Vec<Option<i64>>, String> {
    host(&plan.host)?;
    if let Some(repositories) = &plan.repositories {
        super::repository::check(repositories)?;
    }
    if plan.sources.len() > MAX_PLANNED {
        return Err(format!(
            "a plan of {} sources, over {MAX_PLANNED}",
            plan.sources.len()
        ));
    }
    let mut names: Vec<&str> = plan.sources.iter().map(|s| s.source.as_str()).collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(format!("source {} planned twice", pair[0]));
    }
    plan.sources
        .iter()
        .map(|s| {
            source(&s.source)?;
            short(
                "schedule",
                &s.schedule,
                MAX_SCHEDULE_BYTES,
                char::is_control,
            )?;
            if s.overdue_grace.is_some_and(|g| g > MAX_GRACE_SECS) {
                return Err(format!("source {}: overdue_grace over ten years", s.source));
            }
            if let Some(policy) = &s.retention {
                if let Some(within) = &policy.keep_within {
                    short("keep_within", within, MAX_SCHEDULE_BYTES, char::is_control)?;
                }
                policy
                    .to_retention()
                    .map_err(|e| format!("source {}: retention: {e}", s.source))?;
            }
            s.next_due
                .as_deref()
                .map(|t| time("next due time", t).map(|t| t.timestamp()))
                .transpose()
        })
        .collect()
}

/// A restore status message, or a verification's.
pub fn message(text: &str) -> Result<(), String> {
    short("message", text, MAX_MESSAGE_BYTES, |c| c == '\0')
}

/// An id that can stand as one segment of a URL path and one shell word:
/// printable ASCII without space, `/`, `?`, `#`, `%` or `\`.
pub fn id(what: &str, value: &str) -> Result<(), String> {
    non_empty(what, value)?;
    short(what, value, MAX_ID_BYTES, |c| {
        !c.is_ascii_graphic() || matches!(c, '/' | '?' | '#' | '%' | '\\')
    })
}

pub fn host(value: &str) -> Result<(), String> {
    non_empty("host", value)?;
    short("host", value, MAX_HOST_BYTES, |c| {
        !c.is_ascii_graphic() || matches!(c, '/' | '\\')
    })
}

fn name(what: &str, value: &str) -> Result<(), String> {
    short(what, value, MAX_NAME_BYTES, |_| false)?;
    crate::base::name::validate(value).map_err(|e| format!("{what} {e}"))
}

pub fn source(value: &str) -> Result<(), String> {
    short("source", value, MAX_NAME_BYTES, |_| false)?;
    crate::base::name::validate_source(value).map_err(|e| format!("source {e}"))
}

fn path(what: &str, value: &str) -> Result<(), String> {
    non_empty(what, value)?;
    short(what, value, MAX_PATH_BYTES, char::is_control)
}

fn non_empty(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("empty {what}"));
    }
    Ok(())
}

/// Checks that `value` has at most `max` bytes and no character `bad`
/// refuses.
fn short(what: &str, value: &str, max: usize, bad: impl Fn(char) -> bool) -> Result<(), String> {
    if value.len() > max {
        return Err(format!(
            "{what} {} is {} bytes long, over {max}",
            quote(value),
            value.len()
        ));
    }
    if let Some(c) = value.chars().find(|c| bad(*c)) {
        return Err(format!(
            "{what} {}: character {c:?} is not allowed",
            quote(value)
        ));
    }
    Ok(())
}

/// The start of `value`, quoted, for an error message.
fn quote(value: &str) -> String {
    let start: String = value.chars().take(QUOTED_CHARS).collect();
    if start.len() < value.len() {
        format!("{start:?}…")
    } else {
        format!("{start:?}")
    }
}

/// Parses an RFC 3339 time that RFC 3339 can write back in UTC: years 0
/// to 9999.
pub fn time(what: &str, s: &str) -> Result<DateTime<Utc>, String> {
    let t = DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|err| format!("{what} {} is not RFC 3339: {err}", quote(s)))?;
    if !(0..=9999).contains(&t.year()) {
        return Err(format!("{what} {} is out of range in UTC", quote(s)));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_can_be_addressed() {
        for good in ["r1", "0123456789abcdef", "2024-05-01T12:00:00Z", "a.b_c-d"] {
            assert_eq!(id("id", good), Ok(()), "{good}");
        }
        let long = "x".repeat(MAX_ID_BYTES + 1);
        for bad in [
            "",
            "a/b",
            "a?b",
            "a b",
            "a#b",
            "a%20b",
            "é",
            "a\nb",
            long.as_str(),
        ] {
            assert!(id("id", bad).is_err(), "{bad:?} accepted");
        }
        let err = id("id", &"y".repeat(100_000)).unwrap_err();
        assert!(err.len() < 200, "{err}");
    }

    // Issue 26.6b: a host published a plan of 10,000 sources, and /metrics
    // grew to 4.5 MB for every scrape; nothing bounded a dataset's atoms
    // but the body's size.
    #[test]
    fn plans_and_datasets_are_bounded() {
        use crate::wire::api::PlannedSource;
        use crate::wire::model::Atom;
        let source = |i: usize| PlannedSource {
            source: format!("s{i}"),
            schedule: "@daily".into(),
            next_due: None,
            overdue_grace: None,
            retention: None,
        };
        let mut plan = Plan {
            host: "web1".into(),
            replace: true,
            sources: (0..MAX_PLANNED).map(source).collect(),
            repositories: None,
        };
        assert!(check_plan(&plan).is_ok());
        plan.sources.push(source(MAX_PLANNED));
        let err = check_plan(&plan).unwrap_err();
        assert!(err.contains("over 1000"), "{err}");
        let atoms = (0..=MAX_ATOMS)
            .map(|i| Atom {
                name: format!("u/{i}"),
                path: None,
            })
            .collect();
        let dataset = Dataset::new("d1".into(), "u".into(), atoms);
        let err = check_dataset_of("b1", "web1", &dataset).unwrap_err();
        assert!(err.contains("over 100000"), "{err}");
    }

    #[test]
    fn times_stay_within_what_rfc_3339_writes() {
        assert!(time("t", "2024-05-01T12:00:00+02:00").is_ok());
        assert!(time("t", "9999-12-31T23:30:00-01:00").is_err());
        assert!(time("t", "yesterday").is_err());
    }
}
