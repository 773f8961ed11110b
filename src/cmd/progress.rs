//! What `run` shows a person at a terminal: restic's progress as one status
//! line under the log, replaced in place (once a backup has run a couple
//! of seconds), and a line per source when all are done, in human units.
//! Drawing the status line is `base::logger`'s, which keeps it apart from
//! log records; `run` decides whether there is a terminal.

use crate::base::count::count;
use crate::base::size;
use crate::base::{logger, width};
use crate::report::failure::Verdict;
use crate::report::outcome::Outcome;
use crate::restic::BackupProgress;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// A backup shows its progress once it has run this long.
const QUIET_START: u64 = 2;

/// The widest the status line is drawn: a wrapped one could not be
/// replaced in place.
const MAX_COLUMNS: usize = 79;

/// The progress of the backups running, by job label (`source backup-id`),
/// the latest last.
#[derive(Default)]
pub struct StatusLine {
    running: Mutex<Vec<(String, BackupProgress)>>,
}

impl StatusLine {
    /// restic's latest `status` of job `label`.
    pub fn update(&self, label: &str, status: &BackupProgress) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.retain(|(l, _)| l != label);
        running.push((label.to_string(), status.clone()));
        draw(&running);
    }

    /// Job `label` ended: its progress goes.
    pub fn done(&self, label: &str) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.retain(|(l, _)| l != label);
        draw(&running);
    }
}

/// Shows the latest job's progress, with how many others run.
fn draw(running: &[(String, BackupProgress)]) {
    let line = match running.last() {
        Some((label, status)) if status.seconds_elapsed.unwrap_or(0) >= QUIET_START => {
            let source = label.split(' ').next().unwrap_or(label);
            let mut line = format!("{source}: {}", describe(status));
            if running.len() > 1 {
                line.push_str(&format!(" (+{} running)", running.len() - 1));
            }
            cut(&line)
        }
        _ => String::new(),
    };
    logger::status(&line);
}

/// `45% of 2.7 GiB, 110.0 MiB/s, ETA 14 s`; a stream of unknown size
/// says what has gone so far instead.
fn describe(s: &BackupProgress) -> String {
    let elapsed = s.seconds_elapsed.unwrap_or(0).max(1) as f64;
    let rate = s.bytes_done as f64 / elapsed;
    if s.total_bytes == 0 {
        return format!("{}, {}", size::human(s.bytes_done), size::rate(rate));
    }
    let eta = s.seconds_remaining.map(Duration::from_secs).or_else(|| {
        let left = s.total_bytes.saturating_sub(s.bytes_done) as f64;
        (rate > 0.0).then(|| Duration::from_secs_f64(left / rate))
    });
    let mut text = format!(
        "{:.0}% of {}, {}",
        (s.percent_done * 100.0).clamp(0.0, 100.0),
        size::human(s.total_bytes),
        size::rate(rate)
    );
    if let Some(eta) = eta {
        text.push_str(&format!(", ETA {}", seconds(eta)));
    }
    text
}

/// `line`, cut to [`MAX_COLUMNS`] and its control characters dropped (a
/// source name is plain, but the line is drawn raw).
fn cut(line: &str) -> String {
    let mut out = String::new();
    let mut taken = 0;
    for c in line.chars().filter(|c| !c.is_control()) {
        taken += width::char_columns(c);
        if taken > MAX_COLUMNS {
            break;
        }
        out.push(c);
    }
    out
}

/// What a backup of one source did, in a line: `www: 3 files, 3.0 GiB, 1.5
/// GiB added, 41 s`; how it failed is in the log above.
pub fn summary(outcome: &Outcome, took: Duration) -> String {
    let sum = |f: fn(&crate::wire::model::Dataset) -> i64| {
        let total: i64 = outcome.recorded.iter().map(f).sum();
        u64::try_from(total).unwrap_or(0)
    };
    let done = format!(
        "{}, {}, {} added, {}",
        count(sum(|d| d.total_files), "file"),
        size::human(sum(|d| d.total_bytes)),
        size::human(sum(|d| d.bytes_added)),
        seconds(took)
    );
    match Verdict::of(&outcome.errors) {
        Verdict::Ok => format!("{}: {done}", outcome.source),
        Verdict::Incomplete => format!("{}: incomplete: {done}", outcome.source),
        Verdict::Failed if outcome.recorded.is_empty() => format!("{}: failed", outcome.source),
        Verdict::Failed => format!(
            "{}: failed, {} saved: {done}",
            outcome.source,
            count(outcome.recorded.len(), "dataset")
        ),
    }
}

/// `0.4 s`, `7 s`, `41 s`, `12m5s`: tenths only below ten seconds, and
/// only for a time measured in them.
fn seconds(d: Duration) -> String {
    match d.as_secs() {
        0..10 if d.subsec_nanos() != 0 => format!("{:.1} s", d.as_secs_f64()),
        0..60 => format!("{} s", d.as_secs()),
        _ => crate::base::time::format_duration(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::failure::{Failure, Kind};
    use crate::wire::model::Dataset;

    #[test]
    fn progress_reads_as_a_person_says_it() {
        let status = BackupProgress {
            percent_done: 0.45,
            bytes_done: 1_288_490_189,
            total_bytes: 2_899_102_924,
            seconds_elapsed: Some(11),
            seconds_remaining: Some(14),
            ..BackupProgress::default()
        };
        assert_eq!(describe(&status), "45% of 2.7 GiB, 111.7 MiB/s, ETA 14 s");
        let stream = BackupProgress {
            bytes_done: 5 << 20,
            seconds_elapsed: Some(5),
            ..BackupProgress::default()
        };
        assert_eq!(describe(&stream), "5.0 MiB, 1.0 MiB/s");
        assert_eq!(cut(&"x".repeat(100)).len(), MAX_COLUMNS);
    }

    #[test]
    fn a_source_is_summed_up_in_a_line() {
        let mut dataset = Dataset::new("d".into(), "www".into(), Vec::new());
        (
            dataset.total_files,
            dataset.total_bytes,
            dataset.bytes_added,
        ) = (3, 3_250_585_600, 1_573_003_692);
        let mut outcome = Outcome {
            source: "www".into(),
            backup_id: "b".into(),
            recorded: vec![dataset],
            errors: Vec::new(),
            copies: Vec::new(),
        };
        let took = Duration::from_secs(41);
        assert_eq!(
            summary(&outcome, took),
            "www: 3 files, 3.0 GiB, 1.5 GiB added, 41 s"
        );
        outcome.errors.push(Failure::new(Kind::Command, "hook"));
        assert_eq!(
            summary(&outcome, Duration::from_millis(400)),
            "www: failed, 1 dataset saved: 3 files, 3.0 GiB, 1.5 GiB added, 0.4 s"
        );
        outcome.recorded.clear();
        assert_eq!(summary(&outcome, took), "www: failed");
    }
}
