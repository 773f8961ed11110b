//! A source's history (`GET /source?host=H&source=S`): its status, plots
//! of the bytes added, the total size and the duration of its last runs
//! (a run whose size fell below half the usual is flagged, see
//! `anomaly`), the runs themselves, and its recent attempts with their
//! outcome and reason.

use crate::metadb::server::page::anomaly;
use crate::metadb::server::page::host::attempts;
use crate::metadb::server::page::layout::{
    cut, document, host_link, href, number, size, state, text, time, when, Frame,
};
use crate::metadb::server::page::plot::{bars, Point, Unit};
use crate::metadb::store::Run;
use crate::wire::api::{Attempt, StatusRow};
use std::fmt::Write;

/// Runs plotted unless the query asks for another number.
pub const DEFAULT_RUNS: u32 = 60;

/// What the page shows of a source.
pub struct View<'a> {
    pub host: &'a str,
    pub source: &'a str,
    /// Its status, if it is planned.
    pub status: Option<&'a StatusRow>,
    /// Its newest runs, newest first.
    pub runs: &'a [Run],
    /// Its attempts, newest first.
    pub attempts: &'a [Attempt],
}

/// The page for `view`.
pub fn render(frame: &Frame, view: &View) -> String {
    let mut body = String::with_capacity(32 * 1024);
    let _ = writeln!(
        body,
        "<h1>{} of {}</h1>",
        cut(view.source, 200),
        host_link(view.host)
    );
    match view.status {
        Some(r) => {
            let _ = writeln!(
                body,
                "<p>{}, scheduled {}; last success {}, last attempt {}, next due {}. {}</p>",
                state(&r.state),
                cut(&r.schedule, 40),
                time(r.last_success.as_deref()),
                time(r.last_attempt.as_deref()),
                time(r.next_due.as_deref()),
                cut(&r.message, 1000)
            );
        }
        None => body.push_str("<p><span class=\"never\">Not planned</span>.</p>\n"),
    }
    let _ = writeln!(
        body,
        "<p><a href=\"{}\">Its atoms</a>.</p>",
        href(
            "/search",
            &[("atom", &format!("{}/*", view.source)), ("host", view.host)]
        )
    );
    runs(&mut body, view.runs);
    attempts(&mut body, view.attempts, false);
    let title = format!("{} of {}", view.source, view.host);
    document(frame, &title, None, &body)
}

fn runs(body: &mut String, newest_first: &[Run]) {
    let _ = writeln!(
        body,
        "<h2>The last {} runs</h2>",
        number(newest_first.len())
    );
    if newest_first.is_empty() {
        body.push_str("<p>No dataset recorded.</p>\n");
        return;
    }
    let oldest_first: Vec<&Run> = newest_first.iter().rev().collect();
    let sizes: Vec<i64> = oldest_first.iter().map(|r| r.total_bytes).collect();
    let flags = anomaly::flags(&sizes);
    let times: Vec<String> = oldest_first.iter().map(|r| when(r.timestamp)).collect();
    let plot = |title: &str, unit: Unit, value: fn(&Run) -> i64, flag: bool| {
        let points: Vec<Point> = oldest_first
            .iter()
            .zip(&times)
            .zip(&flags)
            .map(|((run, at), flagged)| Point {
                at,
                value: value(run),
                flagged: flag && flagged.is_some(),
            })
            .collect();
        bars(title, unit, &points)
    };
    let _ = writeln!(
        body,
        "<div class=\"plots\">{}{}{}</div>",
        plot("Bytes added", Unit::Bytes, |r| r.bytes_added, false),
        plot("Total size", Unit::Bytes, |r| r.total_bytes, true),
        plot("Duration", Unit::Seconds, |r| r.duration, false),
    );
    let anomalies: Vec<(usize, i64)> = flags
        .iter()
        .enumerate()
        .filter_map(|(i, median)| Some((i, (*median)?)))
        .collect();
    for (i, median) in &anomalies {
        let _ = writeln!(
            body,
            "<p class=\"anomaly\">Anomaly: the run of {} holds {}, below {:.0}% of the median \
             {} of the {} runs before it.</p>",
            text(&times[*i]),
            size(sizes[*i]),
            anomaly::FRACTION * 100.0,
            size(*median),
            (*i).min(anomaly::WINDOW),
        );
    }
    body.push_str(
        "<table><tr><th>Backup time</th><th>Backup</th><th>Snapshot</th><th>Files</th>\
         <th>Total size</th><th>Added</th><th>Duration</th></tr>\n",
    );
    for (i, run) in oldest_first.iter().enumerate().rev() {
        let class = if flags[i].is_some() {
            " class=\"anomaly\""
        } else {
            ""
        };
        let _ = writeln!(
            body,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            time(Some(&times[i])),
            cut(&run.backup_id, 40),
            cut(&run.snapshot_id, 16),
            number(usize::try_from(run.total_files).unwrap_or(0)),
            size(run.total_bytes),
            size(run.bytes_added),
            crate::metadb::server::page::layout::duration(run.duration),
        );
    }
    body.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(day: i64, bytes: i64) -> Run {
        Run {
            backup_id: format!("b{day}"),
            timestamp: 1_767_225_600 + day * 86_400,
            snapshot_id: format!("snap{day}"),
            total_files: 10,
            total_bytes: bytes,
            bytes_added: bytes / 10,
            duration: 5,
        }
    }

    #[test]
    fn plots_runs_and_the_anomaly() {
        let runs: Vec<Run> = [1000, 1100, 1050, 1200, 100]
            .iter()
            .enumerate()
            .rev()
            .map(|(day, bytes)| run(day as i64, *bytes))
            .collect();
        let frame = Frame {
            who: "".into(),
            signed_in: false,
            now: "2026-01-09T00:00:00Z".into(),
        };
        let view = View {
            host: "web1",
            source: "files",
            status: None,
            runs: &runs,
            attempts: &[],
        };
        let page = render(&frame, &view);
        assert_eq!(page.matches("<svg class=\"plot\"").count(), 3, "{page}");
        assert_eq!(page.matches("<rect class=\"bar anomaly\"").count(), 1);
        assert!(
            page.contains("Anomaly: the run of 2026-01-05T00:00:00Z holds 100 B, below 50% of the median 1.0 KiB of the 4 runs before it."),
            "{page}"
        );
        let newest = page.find("<td>b4</td>").unwrap();
        let oldest = page.find("<td>b0</td>").unwrap();
        assert!(newest < oldest, "the table is newest first");
        assert!(page.contains(
            "<tr class=\"anomaly\"><td><time>2026-01-05T00:00:00Z</time></td><td>b4</td>"
        ));
        assert!(page.contains("href=\"/search?atom=files%2F%2A&amp;host=web1\""));
        assert!(page.contains("Not planned"));
    }
}
