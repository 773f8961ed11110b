//! `GET /`: a plain HTML status page for an operator with a browser: the
//! sources with their schedule, next run and last result, and the running
//! jobs with restic's progress. Every value is HTML-escaped and made
//! visible (a command's stderr in a failure is shown as escapes, not run by
//! the browser's text direction); the page has no scripts and no external
//! resources.

use crate::agent::status::State;
use crate::base::html::text;
use crate::base::time;
use crate::report::failure::Verdict;
use chrono::{DateTime, Utc};
use std::fmt::Write;

/// Renders the page for `host`.
pub fn render(state: &State, host: &str, now: DateTime<Utc>) -> String {
    let host = text(host);
    let mut out = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>tabacco agent on {host}</title>\n\
         <style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:2px 6px;text-align:left}}\
         .failed{{color:#b00}} .incomplete{{color:#b60}}</style></head><body>\n\
         <h1>tabacco agent on {host}</h1>\n<p>{} UTC{}</p>\n",
        text(&time::format(now)),
        if state.shutting_down { " &mdash; shutting down" } else { "" }
    );

    out.push_str("<h2>Running jobs</h2>\n");
    if state.running.is_empty() {
        out.push_str("<p>None.</p>\n");
    } else {
        out.push_str(
            "<table><tr><th>Source</th><th>Backup</th><th>Started</th><th>Attempt</th>\
             <th>Progress</th></tr>\n",
        );
        for (name, job) in &state.running {
            let progress = match (&job.retry_at, &job.progress) {
                (Some(t), _) => format!("waiting to retry at {}", time::format(*t)),
                (None, Some(p)) => {
                    let mut shown = format!("{} files, {} bytes", p.files_done, p.bytes_done);
                    if p.total_bytes > 0 {
                        shown = format!(
                            "{:.0}%: {} of {} files, {} of {} bytes",
                            p.percent_done * 100.0,
                            p.files_done,
                            p.total_files,
                            p.bytes_done,
                            p.total_bytes
                        );
                    }
                    shown
                }
                (None, None) => "starting".into(),
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                text(name),
                text(&job.backup_id),
                text(&time::format(job.started)),
                job.attempt,
                text(&progress)
            );
        }
        out.push_str("</table>\n");
    }

    out.push_str(
        "<h2>Sources</h2>\n<table><tr><th>Source</th><th>Schedule</th><th>Next run</th>\
         <th>Last result</th><th>Last success</th><th>Skipped overlaps</th></tr>\n",
    );
    for (name, s) in &state.sources {
        let next = s
            .next_run
            .map(time::format)
            .unwrap_or_else(|| "never".into());
        let last = match &s.last {
            None => "not run since the agent started".to_string(),
            Some(last) if last.errors.is_empty() => format!(
                "ok at {} ({:.1}s, backup {})",
                time::format(last.finished),
                last.duration.as_secs_f64(),
                last.backup_id
            ),
            Some(last) => format!(
                "{} at {} (backup {}): {}",
                Verdict::of(&last.errors).name(),
                time::format(last.finished),
                last.backup_id,
                last.errors
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        };
        let class = match s.last.as_ref().map(|last| Verdict::of(&last.errors)) {
            Some(Verdict::Failed) => " class=\"failed\"",
            Some(Verdict::Incomplete) => " class=\"incomplete\"",
            _ => "",
        };
        let success = s.last_success.map(time::format).unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td{class}>{}</td><td>{}</td><td>{}</td></tr>",
            text(name),
            text(&s.schedule),
            text(&next),
            text(&last),
            text(&success),
            s.overlaps
        );
    }
    out.push_str("</table>\n<p><a href=\"/metrics\">metrics</a></p>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::status::{LastRun, SourceState};
    use crate::report::failure::{Failure, Kind};
    use std::time::Duration;

    #[test]
    fn everything_from_outside_is_escaped() {
        let mut state = State::default();
        state.sources.insert(
            "users".into(),
            SourceState {
                schedule: "0 3 * * 1".into(),
                last: Some(LastRun {
                    backup_id: "b1".into(),
                    finished: Utc::now(),
                    duration: Duration::from_secs(2),
                    errors: vec![Failure::new(
                        Kind::Command,
                        "pre_backup_command exited: <script>alert('x')</script> \u{202e}\u{1b}[2J\\u{202e}",
                    )],
                }),
                ..SourceState::default()
            },
        );
        let page = render(&state, "web<3>", Utc::now());
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        // Issue 26.10: a command's stderr reached the page raw.
        assert!(page.contains(" \\u{202e}\\u{1b}[2J\\\\u{202e}"), "{page}");
        assert!(!page.contains('\u{202e}') && !page.contains('\u{1b}'));
        assert!(page.contains("tabacco agent on web&lt;3&gt;"));
        assert!(page.contains("<td>0 3 * * 1</td>"));
        assert!(page.contains("class=\"failed\""));
        assert!(page.contains("failed at "));
    }

    #[test]
    fn an_incomplete_backup_says_so() {
        let mut state = State::default();
        let last = LastRun {
            backup_id: "b1".into(),
            finished: Utc::now(),
            duration: Duration::from_secs(2),
            errors: vec![Failure::new(Kind::Incomplete, "some files were unreadable")],
        };
        state.sources.insert(
            "users".into(),
            SourceState {
                last: Some(last),
                ..SourceState::default()
            },
        );
        let page = render(&state, "web3", Utc::now());
        assert!(
            page.contains("<td class=\"incomplete\">incomplete at "),
            "{page}"
        );
        assert!(
            page.contains("(backup b1): some files were unreadable"),
            "{page}"
        );
    }
}
