//! A host's page (`GET /host?name=H`): when it was last heard of, whether
//! it is retired or silent, every source it has (planned or not) with its
//! schedule, state, last attempts and datasets kept, the repositories and
//! copies holding its datasets with what each copy lacks, and its recent
//! attempts (backups, prunes, verifies).

use crate::metadb::server::page::layout::{
    cut, document, href, number, size, source_link, state, text, time, when, Frame,
};
use crate::metadb::store::{Holding, HostRecord, SourceRecord};
use crate::wire::api::{Attempt, Lag, StatusRow};
use std::fmt::Write;

/// What the page shows of a host.
pub struct View<'a> {
    pub host: &'a str,
    pub record: Option<&'a HostRecord>,
    /// Whether it is silent now.
    pub silent: bool,
    /// The status of its planned sources.
    pub planned: &'a [StatusRow],
    /// Every source it has.
    pub sources: &'a [SourceRecord],
    pub holdings: &'a [Holding],
    /// What each copy its sources go to lacks.
    pub lag: &'a [Lag],
    /// Its attempts, newest first.
    pub attempts: &'a [Attempt],
}

/// The page for `view`.
pub fn render(frame: &Frame, view: &View) -> String {
    let mut body = String::with_capacity(16 * 1024);
    let _ = writeln!(body, "<h1>Host {}</h1>", cut(view.host, 200));
    let heard = view.record.map_or_else(
        || "never heard of (only records of it)".to_string(),
        |r| format!("last heard of {}", time(Some(&when(r.last_seen)))),
    );
    let standing = match view.record {
        Some(r) if r.retired => " <span class=\"never\">retired</span>: not watched".to_string(),
        _ if view.silent => " <span class=\"silent\">silent</span>".to_string(),
        _ => String::new(),
    };
    let _ = writeln!(
        body,
        "<p>{heard}{standing}. <a href=\"{}\">Its atoms</a>.</p>",
        href("/search", &[("atom", "*"), ("host", view.host)])
    );
    sources(&mut body, view);
    repositories(&mut body, view);
    attempts(&mut body, view.attempts, true);
    document(frame, &format!("Host {}", view.host), None, &body)
}

fn sources(body: &mut String, view: &View) {
    body.push_str("<h2>Sources</h2>\n");
    if view.sources.is_empty() {
        body.push_str("<p>None.</p>\n");
        return;
    }
    body.push_str(
        "<table><tr><th>Source</th><th>Schedule</th><th>State</th><th>Last success</th>\
         <th>Last attempt</th><th>Next due</th><th>Datasets</th><th>Newest</th>\
         <th>Newest size</th><th>Message</th></tr>\n",
    );
    for s in view.sources {
        let status = view.planned.iter().find(|r| r.source == s.source);
        let (schedule, shown, last_success, last_attempt, next_due, message) = match status {
            Some(r) => (
                cut(&r.schedule, 40),
                state(&r.state),
                time(r.last_success.as_deref()),
                time(r.last_attempt.as_deref()),
                time(r.next_due.as_deref()),
                cut(&r.message, 300),
            ),
            None => (
                "<span class=\"never\">not planned</span>".to_string(),
                s.state.as_deref().map_or_else(|| "-".to_string(), state),
                time(s.last_success.map(when).as_deref()),
                time(s.last_attempt.map(when).as_deref()),
                "-".to_string(),
                cut(&s.message, 300),
            ),
        };
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{schedule}</td><td>{shown}</td><td>{last_success}</td>\
             <td>{last_attempt}</td><td>{next_due}</td><td class=\"n\">{}</td><td>{}</td>\
             <td class=\"n\">{}</td><td>{message}</td></tr>",
            source_link(view.host, &s.source),
            number(usize::try_from(s.datasets).unwrap_or(usize::MAX)),
            time(s.newest.map(when).as_deref()),
            s.newest_bytes.map_or_else(|| "-".to_string(), size),
        );
    }
    body.push_str("</table>\n");
}

fn repositories(body: &mut String, view: &View) {
    body.push_str("<h2>Repositories and copies</h2>\n");
    if view.holdings.is_empty() && view.lag.is_empty() {
        body.push_str("<p>No dataset recorded.</p>\n");
        return;
    }
    body.push_str(
        "<table><tr><th>Repository</th><th>Datasets held</th><th>Newest</th>\
         <th>Not copied yet</th></tr>\n",
    );
    let mut names: Vec<&str> = view
        .holdings
        .iter()
        .map(|h| h.repository.as_str())
        .collect();
    for lag in view.lag {
        if !names.contains(&lag.repository.as_str()) {
            names.push(&lag.repository);
        }
    }
    for name in names {
        let held = view.holdings.iter().find(|h| h.repository == name);
        let behind = view.lag.iter().find(|l| l.repository == name);
        let class = if behind.is_some_and(|l| l.datasets > 0) {
            "failed"
        } else {
            ""
        };
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n {class}\">{}</td></tr>",
            cut(name, 80),
            held.map_or(0, |h| h.datasets),
            time(held.map(|h| when(h.newest)).as_deref()),
            behind.map_or_else(|| "-".to_string(), |l| l.datasets.to_string()),
        );
    }
    body.push_str("</table>\n");
}

/// The table of `attempts`, newest first; with `with_source`, a column
/// names each one's source.
pub fn attempts(body: &mut String, attempts: &[Attempt], with_source: bool) {
    let _ = writeln!(body, "<h2>Recent attempts</h2>");
    if attempts.is_empty() {
        body.push_str("<p>None recorded.</p>\n");
        return;
    }
    let source = if with_source { "<th>Source</th>" } else { "" };
    let _ = writeln!(
        body,
        "<table class=\"attempts\"><tr><th>Started</th><th>Ended</th><th>Kind</th>{source}\
         <th>State</th><th>Datasets</th><th>Reason</th></tr>"
    );
    for a in attempts {
        let source = if with_source {
            let name = if a.source.is_empty() {
                "-".to_string()
            } else {
                source_link(&a.host, &a.source)
            };
            format!("<td>{name}</td>")
        } else {
            String::new()
        };
        let mut reason = cut(&a.message, 300);
        if !a.failure.is_empty() {
            reason = format!("{} ({})", reason, text(&a.failure));
        }
        if !a.detail.is_empty() {
            let _ = write!(
                reason,
                "<details><summary>detail</summary><pre>{}</pre></details>",
                // Lines of the detail stay lines; other controls show.
                a.detail
                    .lines()
                    .map(|line| cut(line, 400))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td>{source}<td>{}</td><td class=\"n\">{}</td>\
             <td>{reason}</td></tr>",
            time(Some(&a.start)),
            time(Some(&a.end)),
            text(&a.kind),
            state(&a.state),
            a.datasets
        );
    }
    body.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_planned_or_not_repositories_and_attempts() {
        let planned = [StatusRow {
            host: "web1".into(),
            source: "sql".into(),
            state: "overdue".into(),
            schedule: "@daily".into(),
            message: "due at 2026-01-01T00:00:00Z, not attempted since".into(),
            ..StatusRow::default()
        }];
        let sources = [
            SourceRecord {
                source: "old".into(),
                state: Some("ok".into()),
                datasets: 2,
                newest: Some(1_767_225_600),
                newest_bytes: Some(2048),
                ..SourceRecord::default()
            },
            SourceRecord {
                source: "sql".into(),
                schedule: Some("@daily".into()),
                ..SourceRecord::default()
            },
        ];
        let holdings = [Holding {
            repository: "primary".into(),
            datasets: 2,
            newest: 1_767_225_600,
        }];
        let lag = [Lag {
            host: "web1".into(),
            repository: "offsite".into(),
            datasets: 2,
        }];
        let attempts = [Attempt {
            host: "web1".into(),
            kind: "backup".into(),
            source: "old".into(),
            backup_id: "b1".into(),
            start: "2026-01-01T00:00:00Z".into(),
            end: "2026-01-01T00:01:00Z".into(),
            state: "failed".into(),
            failure: "command".into(),
            message: "backup_command exited with status 3".into(),
            detail: "disk on <fire>\n\u{1b}[2J".into(),
            datasets: 0,
        }];
        let record = HostRecord {
            last_seen: 1_767_225_600,
            retired: true,
        };
        let view = View {
            host: "web1",
            record: Some(&record),
            silent: true,
            planned: &planned,
            sources: &sources,
            holdings: &holdings,
            lag: &lag,
            attempts: &attempts,
        };
        let frame = Frame {
            who: "admin".into(),
            signed_in: true,
            now: "2026-01-04T00:00:00Z".into(),
        };
        let page = render(&frame, &view);
        assert!(page.contains("<h1>Host web1</h1>"), "{page}");
        assert!(page.contains("retired</span>: not watched"));
        assert!(page.contains("not planned</span>"), "old is not planned");
        assert!(page.contains("<span class=\"overdue\">overdue</span>"));
        assert!(page.contains("2.0 KiB"));
        assert!(
            page.contains("<td>offsite</td><td class=\"n\">0</td>"),
            "{page}"
        );
        assert!(page.contains("<td class=\"n failed\">2</td>"));
        assert!(
            page.contains("<pre>disk on &lt;fire&gt;\n\\u{1b}[2J</pre>"),
            "{page}"
        );
        assert!(page.contains("(command)"));
        assert!(page.contains("href=\"/search?atom=%2A&amp;host=web1\""));
    }
}
