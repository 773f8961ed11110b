//! What every page of the console shares: the document around a page's
//! body (title, style, the bar with the search box and who is signed in),
//! and the one way values reach the HTML. Every name, message and time
//! shown comes from records any host may have written: [`text`] and
//! [`cut`] make control and bidirectional formatting characters visible
//! and escape the rest, [`href`] percent-encodes query values. The pages
//! carry no script and load nothing else: the style is inline, plots are
//! inline SVG.

use crate::base::form;
use crate::base::html::escape;
use crate::base::visible::visible;
use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt::Write;

/// Who is looking, as the bar shows it.
pub struct Frame {
    /// Who, as the bar says it: `admin`, `host web1`, `open to all`, or
    /// nothing.
    pub who: String,
    /// Whether a browser session is open (the bar then offers sign-out).
    pub signed_in: bool,
    /// Now, RFC 3339.
    pub now: String,
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222}\
header{display:flex;gap:1em;align-items:center;padding:6px 12px;background:#243;color:#fff}\
header a{color:#fff;font-weight:bold;text-decoration:none}header form{margin:0}\
header .who{margin-left:auto;color:#cdd}main{padding:0 12px 24px}\
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ccc;padding:2px 6px;\
text-align:left;vertical-align:top}th{background:#eee}td.n{text-align:right}\
.failed,.incomplete,.overdue,.silent,.anomaly{color:#b00;font-weight:bold}\
.running{color:#06c}.never{color:#777}.ok{color:#080}\
ul.counts{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:6px}\
ul.counts li a,ul.counts li span{display:block;padding:4px 10px;border:1px solid #ccc;\
border-radius:4px;text-decoration:none}\
code.cmd{display:block;user-select:all;background:#f4f4f4;padding:2px 4px;margin:1px 0;\
white-space:pre-wrap;overflow-wrap:anywhere}time{white-space:nowrap}.zero{color:#777;font-weight:normal}svg{background:#fafafa;border:1px solid #ddd;margin:4px 8px 4px 0}\
.plots{display:flex;flex-wrap:wrap}p.note{color:#555}";

/// The whole page: `body` under a bar, with `title`; with `refresh`, the
/// page reloads itself every that many seconds (a `meta` refresh, no
/// script).
pub fn document(frame: &Frame, title: &str, refresh: Option<u32>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 4096);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">"
    );
    if let Some(seconds) = refresh {
        let _ = write!(out, "<meta http-equiv=\"refresh\" content=\"{seconds}\">");
    }
    let _ = write!(
        out,
        "<title>{} · tabacco</title><style>{STYLE}</style></head><body>\n<header>\
         <a href=\"/\">tabacco fleet</a>\
         <form method=\"get\" action=\"/search\"><input name=\"atom\" placeholder=\"atoms: users/alice*\" \
         aria-label=\"atom pattern\"> <button>Search</button></form>",
        text(title)
    );
    let _ = write!(out, "<span class=\"who\">{}</span>", text(&frame.who));
    if frame.signed_in {
        out.push_str("<form method=\"post\" action=\"/signout\"><button>Sign out</button></form>");
    }
    let _ = write!(
        out,
        "</header>\n<main>\n{body}<p class=\"note\">As of {}.</p>\n</main></body></html>\n",
        text(&frame.now)
    );
    out
}

pub use crate::base::html::text;

/// [`text`] of `value`, cut to `max` characters (ending in `…`).
pub fn cut(value: &str, max: usize) -> String {
    let shown = visible(value);
    match shown.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", escape(&shown[..end])),
        None => escape(&shown),
    }
}

/// A link's target, escaped for a quoted attribute: `path` with the query
/// of `pairs` (those with an empty value left out), percent-encoded.
pub fn href(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = path.to_string();
    let mut first = true;
    for (name, value) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        out.push(if first { '?' } else { '&' });
        first = false;
        let _ = write!(out, "{name}={}", form::encode(value));
    }
    escape(&out)
}

/// The link to `host`'s page.
pub fn host_link(host: &str) -> String {
    format!(
        "<a href=\"{}\">{}</a>",
        href("/host", &[("name", host)]),
        cut(host, 80)
    )
}

/// The link to the page of `host`'s `source`.
pub fn source_link(host: &str, source: &str) -> String {
    format!(
        "<a href=\"{}\">{}</a>",
        href("/source", &[("host", host), ("source", source)]),
        cut(source, 80)
    )
}

/// A state, styled by what it is.
pub fn state(state: &str) -> String {
    let class = match state {
        "ok" | "failed" | "incomplete" | "overdue" | "running" | "never" | "silent" => state,
        _ => "",
    };
    format!("<span class=\"{class}\">{}</span>", text(state))
}

/// An optional time as shown: RFC 3339 (kept on one line), or `-`.
pub fn time(t: Option<&str>) -> String {
    t.map_or_else(|| "-".to_string(), |t| format!("<time>{}</time>", text(t)))
}

/// Unix seconds as RFC 3339 in UTC.
pub fn when(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0).map_or_else(
        || secs.to_string(),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// A size in bytes with a binary unit: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn size(bytes: i64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Whole seconds as `1h2m3s`.
pub fn duration(secs: i64) -> String {
    if secs <= 0 {
        return "0s".into();
    }
    crate::base::time::format_duration(std::time::Duration::from_secs(secs.unsigned_abs()))
}

/// A count with thousands separated: `100,000`.
pub fn number(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "x\"'<script>alert(1)</script>&\u{202e}\u{1b}[2J";

    #[test]
    fn hostile_values_are_escaped_and_made_visible() {
        let shown = text(HOSTILE);
        assert_eq!(
            shown,
            "x&quot;&#39;&lt;script&gt;alert(1)&lt;/script&gt;&amp;\\u{202e}\\u{1b}[2J"
        );
        assert_eq!(cut(&"é".repeat(10), 3), "ééé…");
        assert_eq!(cut("<ab>", 3), "&lt;ab…");
        assert_eq!(cut("abc", 3), "abc");
        let link = href("/host", &[("name", HOSTILE), ("empty", "")]);
        assert!(!link.contains(['"', '<', '\'', ' ']), "{link}");
        assert!(link.starts_with("/host?name=x%22%27%3Cscript"), "{link}");
        let page = document(
            &Frame {
                who: HOSTILE.into(),
                signed_in: true,
                now: "2026-01-01T00:00:00Z".into(),
            },
            HOSTILE,
            Some(60),
            "",
        );
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("action=\"/signout\""));
        assert!(page.contains("http-equiv=\"refresh\" content=\"60\""));
    }

    #[test]
    fn numbers_sizes_and_times() {
        assert_eq!(number(0), "0");
        assert_eq!(number(999), "999");
        assert_eq!(number(1000), "1,000");
        assert_eq!(number(100_000), "100,000");
        assert_eq!(number(1_234_567), "1,234,567");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(5 << 30), "5.0 GiB");
        assert_eq!(duration(3723), "1h2m3s");
        assert_eq!(duration(0), "0s");
        assert_eq!(when(1_767_225_600), "2026-01-01T00:00:00Z");
        assert_eq!(state("failed"), "<span class=\"failed\">failed</span>");
        assert_eq!(state("<x>"), "<span class=\"\">&lt;x&gt;</span>");
    }
}
