//! The fleet page (`GET /`): how many sources are in each state, the
//! problems first (sources failed, incomplete or overdue; silent hosts;
//! copies behind; repositories not read back whole lately), each linking
//! to its host and source, then every planned source, paged. A fleet of
//! 100,000 sources is walked once to count it ([`Tally::count`]), and only
//! the page's rows are kept: problems first, then the rest by host and
//! source, which a second walk ([`Tally::other`]) picks when the page
//! reaches past the problems. That walk starts at a row the first noted
//! ([`Tally::others_from`]), at most a page before the page's first: how
//! many problems there are, and so where the rest start, is known only at
//! the end of the first, and a second walk from the start took as long
//! again for the last page.

use crate::base::count::count;
use crate::metadb::server::metrics::STATES;
use crate::metadb::server::page::layout::{
    cut, document, host_link, href, number, source_link, state, text, time, Frame,
};
use crate::wire::api::{Lag, Proof, StatusRow};
use std::fmt::Write;
use std::ops::Range;

/// Sources on one page.
pub const PAGE_ROWS: usize = 100;
/// Silent hosts listed at most (all are counted).
const LISTED: usize = 50;
/// Characters of a message shown in the listing (the source's page has it
/// whole).
const MESSAGE_CHARS: usize = 160;

/// Which sources the listing shows.
pub struct Listing {
    /// Only those in this state (one of [`STATES`]), or all.
    pub state: Option<&'static str>,
    /// Which page of [`PAGE_ROWS`], from 0.
    pub page: usize,
}

impl Listing {
    /// The listing a query asks for: `state` if it is a known one, and a
    /// page number from 1.
    pub fn new(state: Option<&str>, page: Option<&str>) -> Listing {
        Listing {
            state: state.and_then(|s| STATES.iter().copied().find(|known| *known == s)),
            page: page
                .and_then(|p| p.parse::<usize>().ok())
                .map_or(0, |p| p.saturating_sub(1)),
        }
    }

    fn window(&self) -> Range<usize> {
        let start = self.page.saturating_mul(PAGE_ROWS);
        start..start.saturating_add(PAGE_ROWS)
    }

    fn takes(&self, row: &StatusRow) -> bool {
        self.state.is_none_or(|s| row.state == s)
    }
}

/// The fleet counted, and the rows of one page.
pub struct Tally {
    listing: Listing,
    /// Hosts last heard of before this (RFC 3339) are silent.
    silent_before: String,
    sources: usize,
    hosts: usize,
    states: [usize; STATES.len()],
    /// Silent hosts (the first [`LISTED`]), with when they were last heard
    /// of, and how many in all.
    silent: Vec<(String, String)>,
    silent_hosts: usize,
    /// The rows the listing takes, and how many of them are problems.
    taken: usize,
    problems: usize,
    /// The page's rows, problems first.
    rows: Vec<StatusRow>,
    /// The host of the last row counted.
    last_host: Option<String>,
    /// The host and source of every [`PAGE_ROWS`]th row the listing takes
    /// past the problems (the 0th, 100th, ...) up to the page's first:
    /// where the second walk may start.
    marks: Vec<(String, String)>,
    /// The rows past the problems seen by [`Tally::count`], and then
    /// (from the mark [`Tally::others_from`] chose) by [`Tally::other`].
    others: usize,
}

impl Tally {
    pub fn new(listing: Listing, silent_before: String) -> Tally {
        Tally {
            listing,
            silent_before,
            sources: 0,
            hosts: 0,
            states: [0; STATES.len()],
            silent: Vec::new(),
            silent_hosts: 0,
            taken: 0,
            problems: 0,
            rows: Vec::new(),
            last_host: None,
            marks: Vec::new(),
            others: 0,
        }
    }

    /// Counts `row` (of a walk by host and source), keeping it if it is a
    /// problem on the page.
    pub fn count(&mut self, row: &StatusRow) {
        self.sources += 1;
        if let Some(i) = STATES.iter().position(|s| *s == row.state) {
            self.states[i] += 1;
        }
        if self.last_host.as_deref() != Some(row.host.as_str()) {
            self.hosts += 1;
            self.last_host = Some(row.host.clone());
            if let Some(seen) = row
                .last_seen
                .as_deref()
                .filter(|t| *t < &*self.silent_before)
            {
                self.silent_hosts += 1;
                if self.silent.len() < LISTED {
                    self.silent.push((row.host.clone(), seen.to_string()));
                }
            }
        }
        if !self.listing.takes(row) {
            return;
        }
        self.taken += 1;
        if row.is_problem() {
            if self.listing.window().contains(&self.problems) {
                self.rows.push(row.clone());
            }
            self.problems += 1;
        } else {
            if self.others % PAGE_ROWS == 0 && self.others <= self.listing.window().start {
                self.marks.push((row.host.clone(), row.source.clone()));
            }
            self.others += 1;
        }
    }

    /// After [`Tally::count`] has seen every row: if the page reaches past
    /// the problems, the host and source from which a second walk must hand
    /// the rows, by host and source, to [`Tally::other`].
    pub fn others_from(&mut self) -> Option<(String, String)> {
        let window = self.listing.window();
        if window.end <= self.problems || window.start >= self.taken || self.taken == self.problems
        {
            return None;
        }
        // The page's first row past the problems is the rest's `first`th
        // (or, for a page that starts with problems, the 0th): one of
        // `self.others`, and at most the page's first row of all, so its
        // mark was noted.
        let first = window.start.saturating_sub(self.problems);
        let mark = self.marks.get(first / PAGE_ROWS)?.clone();
        self.others = first / PAGE_ROWS * PAGE_ROWS;
        Some(mark)
    }

    /// Keeps `row` (of a second walk, from [`Tally::others_from`]) if it is
    /// one of the page's rows past the problems; false once the page is
    /// full, to stop the walk.
    pub fn other(&mut self, row: &StatusRow) -> bool {
        if !self.listing.takes(row) || row.is_problem() {
            return true;
        }
        let window = self.listing.window();
        if window.contains(&(self.problems + self.others)) {
            self.rows.push(row.clone());
        }
        self.others += 1;
        self.problems + self.others < window.end
    }
}

/// Copies and proofs, the fleet's problems that are not a source's.
pub struct Beyond<'a> {
    /// Per host and copy, the datasets not copied yet.
    pub lag: &'a [Lag],
    /// Where each repository's rotated check stands.
    pub proofs: &'a [Proof],
    /// A repository read back whole before this (RFC 3339) is stale.
    pub proof_before: &'a str,
}

/// The page for `tally`.
pub fn render(frame: &Frame, tally: &Tally, beyond: &Beyond) -> String {
    let mut body = String::with_capacity(64 * 1024);
    let behind: Vec<&Lag> = beyond.lag.iter().filter(|l| l.datasets > 0).collect();
    let stale: Vec<&Proof> = beyond
        .proofs
        .iter()
        .filter(|p| {
            p.whole_read
                .as_deref()
                .is_some_and(|t| t < beyond.proof_before)
        })
        .collect();
    let _ = write!(
        body,
        "<h1>Fleet</h1>\n<p>{}, {}.</p>\n<ul class=\"counts\">",
        count(number(tally.hosts), "host"),
        count(number(tally.sources), "planned source")
    );
    for (name, n) in STATES.iter().zip(tally.states) {
        let class = if n == 0 { "zero" } else { name };
        let _ = write!(
            body,
            "<li><a class=\"{class}\" href=\"{}\">{name} {}</a></li>",
            href("/", &[("state", name)]),
            number(n)
        );
    }
    let extra = [
        ("silent hosts", tally.silent_hosts, "#silent"),
        ("copies behind", behind.len(), "#copies"),
        ("repositories not read back lately", stale.len(), "#proofs"),
    ];
    for (what, n, anchor) in extra {
        let _ = match n {
            0 => write!(body, "<li><span class=\"zero\">{what} 0</span></li>"),
            n => write!(
                body,
                "<li><a class=\"failed\" href=\"{anchor}\">{what} {}</a></li>",
                number(n)
            ),
        };
    }
    body.push_str("</ul>\n");
    silent(&mut body, tally);
    copies(&mut body, &behind);
    proofs(&mut body, beyond, &stale);
    listing(&mut body, tally);
    document(frame, "Fleet", Some(60), &body)
}

fn silent(body: &mut String, tally: &Tally) {
    if tally.silent_hosts == 0 {
        return;
    }
    let _ = write!(
        body,
        "<h2 id=\"silent\">Silent hosts</h2>\n<table><tr><th>Host</th><th>Last heard of</th></tr>\n"
    );
    for (host, seen) in &tally.silent {
        let _ = writeln!(
            body,
            "<tr class=\"silent\"><td>{}</td><td>{}</td></tr>",
            host_link(host),
            time(Some(seen))
        );
    }
    body.push_str("</table>\n");
    if tally.silent_hosts > tally.silent.len() {
        let _ = writeln!(
            body,
            "<p class=\"note\">The first {} of {}.</p>",
            tally.silent.len(),
            number(tally.silent_hosts)
        );
    }
}

fn copies(body: &mut String, behind: &[&Lag]) {
    if behind.is_empty() {
        return;
    }
    body.push_str(
        "<h2 id=\"copies\">Copies behind</h2>\n\
         <table><tr><th>Host</th><th>Copy</th><th>Datasets not copied yet</th></tr>\n",
    );
    for lag in behind.iter().take(LISTED) {
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            host_link(&lag.host),
            cut(&lag.repository, 80),
            lag.datasets
        );
    }
    body.push_str("</table>\n");
}

fn proofs(body: &mut String, beyond: &Beyond, stale: &[&Proof]) {
    if beyond.proofs.is_empty() {
        return;
    }
    let _ = write!(
        body,
        "<h2 id=\"proofs\">Repositories read back</h2>\n<p>{} of {} not read back whole since {}.</p>\n\
         <table><tr><th>Repository</th><th>Read back whole</th><th>Next slice</th></tr>\n",
        stale.len(),
        beyond.proofs.len(),
        text(beyond.proof_before)
    );
    for proof in beyond.proofs.iter().take(LISTED) {
        let class = if stale.iter().any(|s| s.repository == proof.repository) {
            " class=\"failed\""
        } else {
            ""
        };
        let _ = writeln!(
            body,
            "<tr{class}><td>{}</td><td>{}</td><td>{}/{}</td></tr>",
            cut(&proof.repository, 80),
            time(proof.whole_read.as_deref()),
            proof.next_slice,
            proof.slices
        );
    }
    body.push_str("</table>\n");
}

fn listing(body: &mut String, tally: &Tally) {
    let what = match tally.listing.state {
        Some(s) => format!("Sources {}", state(s)),
        None => "Sources, problems first".into(),
    };
    let _ = writeln!(body, "<h2 id=\"sources\">{what}</h2>");
    if tally.taken == 0 {
        body.push_str("<p>None.</p>\n");
        return;
    }
    let first = tally.listing.window().start;
    let _ = writeln!(
        body,
        "<p>{} to {} of {}.</p>",
        number((first + 1).min(tally.taken)),
        number(first + tally.rows.len()),
        number(tally.taken)
    );
    body.push_str(
        "<table><tr><th>Host</th><th>Source</th><th>State</th><th>Last success</th>\
         <th>Last attempt</th><th>Next due</th><th>Schedule</th><th>Message</th></tr>\n",
    );
    for r in &tally.rows {
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td></tr>",
            host_link(&r.host),
            source_link(&r.host, &r.source),
            state(&r.state),
            time(r.last_success.as_deref()),
            time(r.last_attempt.as_deref()),
            time(r.next_due.as_deref()),
            cut(&r.schedule, 40),
            cut(&r.message, MESSAGE_CHARS)
        );
    }
    body.push_str("</table>\n");
    pager(body, tally);
}

fn pager(body: &mut String, tally: &Tally) {
    let page = tally.listing.page;
    let pages = tally.taken.div_ceil(PAGE_ROWS);
    if pages <= 1 {
        return;
    }
    let state = tally.listing.state.unwrap_or("");
    let link = |n: usize, label: &str| {
        format!(
            "<a href=\"{}\">{label}</a>",
            href("/", &[("state", state), ("page", &(n + 1).to_string())])
        )
    };
    body.push_str("<p class=\"pager\">");
    if page > 0 {
        body.push_str(&link(page - 1, "‹ previous"));
        body.push(' ');
    }
    let _ = write!(body, "page {} of {}", number(page + 1), number(pages));
    if page + 1 < pages {
        body.push(' ');
        body.push_str(&link(page + 1, "next ›"));
    }
    body.push_str("</p>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(host: &str, source: &str, state: &str) -> StatusRow {
        StatusRow {
            host: host.into(),
            source: source.into(),
            state: state.into(),
            schedule: "@daily".into(),
            last_seen: Some("2026-01-02T00:00:00Z".into()),
            ..StatusRow::default()
        }
    }

    /// A fleet of `n` rows by host and source, 10 sources a host, those
    /// `failed` says failed.
    fn fleet_of(n: usize, failed: impl Fn(usize) -> bool) -> Vec<StatusRow> {
        (0..n)
            .map(|i| {
                let state = if failed(i) { "failed" } else { "ok" };
                row(&format!("h{:04}", i / 10), &format!("s{}", i % 10), state)
            })
            .collect()
    }

    /// `rows` walked as the endpoint walks them for `listing`; the hosts
    /// and sources of the page's rows.
    fn walk(rows: &[StatusRow], listing: Listing) -> (Tally, Vec<String>) {
        let mut tally = Tally::new(listing, "2026-01-01T00:00:00Z".into());
        rows.iter().for_each(|r| tally.count(r));
        if let Some((host, source)) = tally.others_from() {
            let from = rows
                .iter()
                .skip_while(|r| (r.host.as_str(), r.source.as_str()) < (&host, &source));
            for r in from {
                if !tally.other(r) {
                    break;
                }
            }
        }
        let names = tally
            .rows
            .iter()
            .map(|r| format!("{}/{}", r.host, r.source))
            .collect();
        (tally, names)
    }

    /// A fleet of `n` rows, every tenth failed, walked for `listing`.
    fn page(n: usize, listing: Listing) -> (Tally, Vec<String>) {
        walk(&fleet_of(n, |i| i % 10 == 3), listing)
    }

    /// The second walk starts at a mark, not at the first row: every page
    /// of fleets with their problems anywhere still shows what sorting
    /// the whole listing, problems first, and cutting it shows.
    #[test]
    fn every_page_is_the_listing_sorted_and_cut() {
        let fleets: [(usize, &dyn Fn(usize) -> bool); 6] = [
            (1234, &|i| i % 10 == 3),
            (1234, &|i| i >= 1000),
            (1234, &|i| i < 250),
            (1234, &|i| i * 7919 % 13 == 0),
            (345, &|_| false),
            (345, &|_| true),
        ];
        for (n, failed) in fleets {
            let rows = fleet_of(n, failed);
            for state in [None, Some("ok"), Some("failed")] {
                let mut sorted: Vec<&StatusRow> = rows
                    .iter()
                    .filter(|r| state.is_none_or(|s| r.state == s))
                    .collect();
                sorted.sort_by_key(|r| !r.is_problem());
                for page in 1..=sorted.len().div_ceil(PAGE_ROWS) + 1 {
                    let listing = Listing::new(state, Some(&page.to_string()));
                    let (_, names) = walk(&rows, listing);
                    let expected: Vec<String> = sorted
                        .iter()
                        .skip((page - 1) * PAGE_ROWS)
                        .take(PAGE_ROWS)
                        .map(|r| format!("{}/{}", r.host, r.source))
                        .collect();
                    assert_eq!(names, expected, "{n} rows, {state:?}, page {page}");
                }
            }
        }
    }

    #[test]
    fn problems_first_then_the_rest_paged() {
        let (tally, names) = page(1000, Listing::new(None, None));
        assert_eq!(
            (tally.sources, tally.hosts, tally.problems),
            (1000, 100, 100)
        );
        assert_eq!(names.len(), PAGE_ROWS);
        assert!(names.iter().all(|n| n.ends_with("/s3")), "{names:?}");
        let (_, names) = page(1000, Listing::new(None, Some("2")));
        assert_eq!(names.len(), PAGE_ROWS);
        assert_eq!(names[0], "h0000/s0", "the rest by host and source");
        let (_, names) = page(1050, Listing::new(None, Some("11")));
        assert_eq!(names.len(), 50);
        let (_, names) = page(105, Listing::new(None, Some("1")));
        assert_eq!(
            names[..11].iter().filter(|n| n.ends_with("/s3")).count(),
            11
        );
        assert_eq!(names[11], "h0000/s0");
        let (_, names) = page(1000, Listing::new(None, Some("99")));
        assert!(names.is_empty());
    }

    #[test]
    fn a_state_lists_its_sources_only() {
        let (tally, names) = page(1000, Listing::new(Some("ok"), Some("9")));
        assert_eq!(tally.taken, 900);
        assert_eq!(names.len(), 100);
        assert!(!names.iter().any(|n| n.ends_with("/s3")));
        let listing = Listing::new(Some("<bogus>"), Some("x"));
        assert_eq!((listing.state, listing.page), (None, 0));
    }

    #[test]
    fn the_page_counts_links_and_escapes() {
        let mut tally = Tally::new(Listing::new(None, None), "2026-01-03T00:00:00Z".into());
        for r in [
            row("web1", "sql", "failed"),
            row("web1", "files", "ok"),
            row("x\"<script>", "s", "overdue"),
        ] {
            tally.count(&r);
        }
        let lag = [
            Lag {
                host: "web1".into(),
                repository: "offsite".into(),
                datasets: 3,
            },
            Lag {
                host: "web2".into(),
                repository: "offsite".into(),
                datasets: 0,
            },
        ];
        let proofs = [Proof {
            repository: "abc123".into(),
            slices: 10,
            next_slice: 4,
            whole_read: Some("2025-01-01T00:00:00Z".into()),
        }];
        let frame = Frame {
            who: "admin".into(),
            signed_in: false,
            now: "2026-01-04T00:00:00Z".into(),
        };
        let beyond = Beyond {
            lag: &lag,
            proofs: &proofs,
            proof_before: "2025-10-01T00:00:00Z",
        };
        let page = render(&frame, &tally, &beyond);
        assert!(page.contains("2 hosts, 3 planned sources."), "{page}");
        assert!(page.contains(">failed 1</a>") && page.contains(">ok 1</a>"));
        assert!(page.contains(">silent hosts 2</a>"), "{page}");
        assert!(page.contains(">copies behind 1</a>"));
        assert!(page.contains(">repositories not read back lately 1</a>"));
        assert!(page.contains("<a href=\"/source?host=web1&amp;source=sql\">sql</a>"));
        assert!(page.contains("<a href=\"/host?name=x%22%3Cscript%3E\">x&quot;&lt;script&gt;</a>"));
        assert!(!page.contains("<script>"));
        let failed = page.find(">sql<").unwrap();
        let overdue = page.find(">s<").unwrap();
        assert!(
            failed < overdue && !page.contains(">files<"),
            "problems only"
        );
    }
}
