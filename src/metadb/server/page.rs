//! `GET /` of the metadb: the fleet at a glance for an operator with a
//! browser, the sources that need attention first. Every value is
//! HTML-escaped (hosts write them); the page has no scripts and no external
//! resources. The rows are the server's, from the scrape's cached view.

use crate::base::html::escape;
use crate::wire::api::StatusRow;
use std::fmt::Write;

/// Renders the page for `rows` (by host and source), as of `now`.
pub fn render(rows: &[StatusRow], now: &str) -> String {
    let problems = rows.iter().filter(|r| r.is_problem()).count();
    let mut out = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>tabacco metadb</title>\n\
         <style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:2px 6px;text-align:left}}\
         .problem{{color:#b00}}</style></head><body>\n\
         <h1>tabacco metadb</h1>\n<p>{} UTC: {} planned sources, {problems} with problems.</p>\n",
        escape(now),
        rows.len()
    );
    if rows.is_empty() {
        out.push_str("<p>No host has published a plan yet.</p>\n");
    } else {
        out.push_str(
            "<table><tr><th>Host</th><th>Source</th><th>State</th><th>Last success</th>\
             <th>Last attempt</th><th>Next due</th><th>Schedule</th><th>Message</th></tr>\n",
        );
        let (bad, good): (Vec<&StatusRow>, Vec<&StatusRow>) =
            rows.iter().partition(|r| r.is_problem());
        for r in bad.into_iter().chain(good) {
            let class = if r.is_problem() {
                " class=\"problem\""
            } else {
                ""
            };
            let time = |t: &Option<String>| escape(t.as_deref().unwrap_or("-"));
            let _ = writeln!(
                out,
                "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td></tr>",
                escape(&r.host),
                escape(&r.source),
                escape(&r.state),
                time(&r.last_success),
                time(&r.last_attempt),
                time(&r.next_due),
                escape(&r.schedule),
                escape(&r.message)
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(host: &str, state: &str, message: &str) -> StatusRow {
        StatusRow {
            host: host.into(),
            source: "sql".into(),
            state: state.into(),
            schedule: "@daily".into(),
            last_attempt: None,
            last_success: None,
            next_due: None,
            message: message.into(),
            last_seen: None,
        }
    }

    #[test]
    fn problems_come_first_and_everything_is_escaped() {
        let rows = [row("a", "ok", ""), row("b<script>", "failed", "x & \"y\"")];
        let page = render(&rows, "2026-01-01T00:00:00Z");
        assert!(page.contains("b&lt;script&gt;") && !page.contains("<script>"));
        assert!(page.contains("x &amp; &quot;y&quot;"));
        let bad = page.find("b&lt;script").unwrap();
        let good = page.find("<td>a</td>").unwrap();
        assert!(bad < good, "{page}");
        assert!(page.contains("2 planned sources, 1 with problems"));
    }
}
