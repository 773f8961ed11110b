//! The metadb server's own counters, and their rendering in the Prometheus
//! text format (`GET /metrics`). What the fleet looks like (newest backup per
//! host and source, each planned source's status, database size) is read by
//! `server` at scrape time and only rendered here, once for all the scrapes
//! of a few seconds; at most [`MAX_PER_HOST`] series of a family per host,
//! so that no host can make every scrape large.

use crate::metadb::store::NewestBackup;
use crate::wire::api::{Lag, Proof, Restored, StatusRow};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Default)]
struct Histogram {
    /// Observations at or below each bucket's bound (not cumulative).
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Counters {
    /// By (endpoint, status code).
    requests: BTreeMap<(&'static str, u16), u64>,
    latency: BTreeMap<&'static str, Histogram>,
    /// Connections the transport closed or refused early, by why.
    connections: BTreeMap<&'static str, u64>,
}

/// Request counters shared by the connections.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
    /// Notifications of the watch (see `watch`), sent and given up.
    pub notifications: Arc<crate::report::notify::Counts>,
}

/// What the server reads from the database for a scrape.
pub struct Fleet {
    pub database_bytes: u64,
    pub last_backups: Vec<NewestBackup>,
    /// Every planned source of every host not retired, by host and source.
    pub status: Vec<StatusRow>,
    /// Per host and copy, the datasets not copied yet.
    pub copy_lag: Vec<Lag>,
    /// Where each repository's rotated check stands.
    pub proofs: Vec<Proof>,
    /// When each atom was last restored by a drill that passed.
    pub restored: Vec<Restored>,
}

/// Most sources (or atoms, or copies) of one host that a family of series
/// shows: a plan holds at most as many sources.
pub const MAX_PER_HOST: usize = crate::metadb::store::record::MAX_PLANNED;

/// The states a planned source can be in, as `/api/status` says them.
pub const STATES: [&str; 6] = ["ok", "failed", "incomplete", "running", "never", "overdue"];

impl Metrics {
    /// Counts one answered request. `endpoint` is one of a fixed set, so
    /// that a scanner trying paths cannot grow the label space.
    pub fn observe(&self, endpoint: &'static str, status: u16, elapsed: Duration) {
        let mut c = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        *c.requests.entry((endpoint, status)).or_default() += 1;
        let h = c.latency.entry(endpoint).or_default();
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            h.counts[i] += 1;
        }
        h.count += 1;
        h.sum += secs;
    }

    /// Counts a connection the transport closed or refused early (`why`:
    /// one of a fixed set, see `http::Handler::count`).
    pub fn connection(&self, why: &'static str) {
        let mut c = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        *c.connections.entry(why).or_default() += 1;
    }

    /// The counters of the exposition, ending with whether the database
    /// could be read (`up`); [`render_fleet`] follows them.
    pub fn render_counters(&self, up: bool) -> String {
        let mut out = String::new();
        {
            let c = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
            out.push_str("# HELP tabacco_metadb_requests_total HTTP requests answered, by endpoint and status code.\n");
            out.push_str("# TYPE tabacco_metadb_requests_total counter\n");
            for ((endpoint, status), n) in &c.requests {
                let _ = writeln!(
                    out,
                    "tabacco_metadb_requests_total{{endpoint=\"{}\",status=\"{status}\"}} {n}",
                    escape(endpoint)
                );
            }
            out.push_str("# HELP tabacco_metadb_request_duration_seconds Time to answer a request, by endpoint.\n");
            out.push_str("# TYPE tabacco_metadb_request_duration_seconds histogram\n");
            for (endpoint, h) in &c.latency {
                let endpoint = escape(endpoint);
                let mut cumulative = 0;
                for (bound, n) in BUCKETS.iter().zip(h.counts) {
                    cumulative += n;
                    let _ = writeln!(
                        out,
                        "tabacco_metadb_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"{bound}\"}} {cumulative}"
                    );
                }
                let _ = writeln!(
                    out,
                    "tabacco_metadb_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "tabacco_metadb_request_duration_seconds_sum{{endpoint=\"{endpoint}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "tabacco_metadb_request_duration_seconds_count{{endpoint=\"{endpoint}\"}} {}",
                    h.count
                );
            }
            out.push_str("# HELP tabacco_metadb_closed_connections_total Connections closed by the server before their client did: refused (over the connection cap), evicted (idle, to make room) or timeout (idle too long, or a request too slow).\n");
            out.push_str("# TYPE tabacco_metadb_closed_connections_total counter\n");
            for why in ["refused", "evicted", "timeout"] {
                let _ = writeln!(
                    out,
                    "tabacco_metadb_closed_connections_total{{reason=\"{why}\"}} {}",
                    c.connections.get(why).copied().unwrap_or(0)
                );
            }
        }
        for (name, help, counter) in [
            (
                "tabacco_metadb_notifications_sent_total",
                "Notifications a target accepted.",
                &self.notifications.sent,
            ),
            (
                "tabacco_metadb_notifications_failed_total",
                "Notifications given up: unreachable or refusing target, or too many waiting.",
                &self.notifications.failed,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", counter.load(Ordering::Relaxed));
        }
        out.push_str(
            "# HELP tabacco_metadb_up Whether the database could be read for this scrape.\n",
        );
        out.push_str("# TYPE tabacco_metadb_up gauge\n");
        let _ = writeln!(out, "tabacco_metadb_up {}", u8::from(up));
        out
    }
}

/// The families read from the database, which follow the counters when it
/// could be read: each host's at most [`MAX_PER_HOST`] series a family,
/// and how many were left out.
pub fn render_fleet(fleet: &Fleet) -> String {
    let mut out = String::new();
    let mut dropped = 0;
    out.push_str("# HELP tabacco_metadb_database_size_bytes Size of the database file and its write-ahead log.\n");
    out.push_str("# TYPE tabacco_metadb_database_size_bytes gauge\n");
    let _ = writeln!(
        out,
        "tabacco_metadb_database_size_bytes {}",
        fleet.database_bytes
    );
    out.push_str("# HELP tabacco_metadb_last_backup_timestamp_seconds Time of the newest recorded backup, by host and source.\n");
    out.push_str("# TYPE tabacco_metadb_last_backup_timestamp_seconds gauge\n");
    for b in per_host(&fleet.last_backups, |b| &b.host, &mut dropped) {
        let _ = writeln!(
            out,
            "tabacco_metadb_last_backup_timestamp_seconds{{host=\"{}\",source=\"{}\"}} {}",
            escape(&b.host),
            escape(&b.source),
            b.timestamp
        );
    }
    let status: Vec<&StatusRow> = per_host(&fleet.status, |r| &r.host, &mut dropped).collect();
    render_status(&mut out, &status);
    out.push_str("# HELP tabacco_metadb_copy_lag_datasets Datasets of each host that a copy its sources go to does not hold yet.\n");
    out.push_str("# TYPE tabacco_metadb_copy_lag_datasets gauge\n");
    for l in per_host(&fleet.copy_lag, |l| &l.host, &mut dropped) {
        let _ = writeln!(
            out,
            "tabacco_metadb_copy_lag_datasets{{host=\"{}\",repository=\"{}\"}} {}",
            escape(&l.host),
            escape(&l.repository),
            l.datasets
        );
    }
    render_proofs(&mut out, fleet, &mut dropped);
    let name = "tabacco_metadb_series_dropped";
    let _ = writeln!(out, "# HELP {name} Series left out of this exposition: a host's beyond {MAX_PER_HOST} in a family.\n# TYPE {name} gauge\n{name} {dropped}");
    out
}

/// The items of `items` but those past the first [`MAX_PER_HOST`] of
/// their host, which are counted in `dropped`.
fn per_host<'a, T>(
    items: &'a [T],
    host: impl Fn(&T) -> &str + 'a,
    dropped: &'a mut usize,
) -> impl Iterator<Item = &'a T> + 'a {
    let mut shown: std::collections::HashMap<&'a str, usize> = std::collections::HashMap::new();
    items.iter().filter(move |item| {
        let n = shown.entry(host(item)).or_default();
        *n += 1;
        if *n > MAX_PER_HOST {
            *dropped += 1;
        }
        *n <= MAX_PER_HOST
    })
}

/// "Last proven restorable": when each repository was last read back
/// whole, and each atom last restored by a drill.
fn render_proofs(out: &mut String, fleet: &Fleet, dropped: &mut usize) {
    let name = "tabacco_metadb_repository_read_back_timestamp_seconds";
    let _ = writeln!(out, "# HELP {name} When the rotated check last finished reading back the whole of each repository, by restic's repository id.\n# TYPE {name} gauge");
    for proof in &fleet.proofs {
        if let Some(t) = seconds(&proof.whole_read) {
            let _ = writeln!(
                out,
                "{name}{{repository=\"{}\"}} {t}",
                escape(&proof.repository)
            );
        }
    }
    let name = "tabacco_metadb_atom_restored_timestamp_seconds";
    let _ = writeln!(out, "# HELP {name} When each atom was last restored by a restore drill that passed, by host and atom.\n# TYPE {name} gauge");
    for r in per_host(&fleet.restored, |r| &r.host, dropped) {
        if let Some(t) = seconds(&Some(r.restored.clone())) {
            let _ = writeln!(
                out,
                "{name}{{host=\"{}\",atom=\"{}\"}} {t}",
                escape(&r.host),
                escape(&r.atom)
            );
        }
    }
    let name = "tabacco_metadb_atom_loaded_timestamp_seconds";
    let _ = writeln!(out, "# HELP {name} When each atom was last proven to load by its source's proof_command in a restore drill, by host and atom.\n# TYPE {name} gauge");
    for r in &fleet.restored {
        if let Some(t) = seconds(&r.loaded) {
            let _ = writeln!(
                out,
                "{name}{{host=\"{}\",atom=\"{}\"}} {t}",
                escape(&r.host),
                escape(&r.atom)
            );
        }
    }
}

/// One of the times of a status row.
type TimeField = fn(&StatusRow) -> &Option<String>;

/// Each planned source's state (one series per state, 1 for the current
/// one), its last attempt, success and due time, and each host's last_seen.
fn render_status(out: &mut String, rows: &[&StatusRow]) {
    out.push_str("# HELP tabacco_metadb_source_state The state of each planned source of each host: 1 for the current one.\n");
    out.push_str("# TYPE tabacco_metadb_source_state gauge\n");
    for r in rows {
        let (host, source) = (escape(&r.host), escape(&r.source));
        for state in STATES {
            let _ = writeln!(
                out,
                "tabacco_metadb_source_state{{host=\"{host}\",source=\"{source}\",state=\"{state}\"}} {}",
                u8::from(r.state == state)
            );
        }
    }
    let times: [(&str, &str, TimeField); 3] = [
        (
            "tabacco_metadb_source_last_attempt_timestamp_seconds",
            "When the last attempt to back up each planned source ended.",
            |r| &r.last_attempt,
        ),
        (
            "tabacco_metadb_source_last_success_timestamp_seconds",
            "When the last successful backup of each planned source ended.",
            |r| &r.last_success,
        ),
        (
            "tabacco_metadb_source_next_due_timestamp_seconds",
            "When each planned source is next due.",
            |r| &r.next_due,
        ),
    ];
    for (name, help, field) in times {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for r in rows {
            if let Some(t) = seconds(field(r)) {
                let _ = writeln!(
                    out,
                    "{name}{{host=\"{}\",source=\"{}\"}} {t}",
                    escape(&r.host),
                    escape(&r.source)
                );
            }
        }
    }
    out.push_str("# HELP tabacco_metadb_host_last_seen_timestamp_seconds When each host not retired was last heard of (a plan, an attempt, any request with its token).\n");
    out.push_str("# TYPE tabacco_metadb_host_last_seen_timestamp_seconds gauge\n");
    let mut seen: BTreeMap<&str, i64> = BTreeMap::new();
    for r in rows {
        if let Some(t) = seconds(&r.last_seen) {
            seen.entry(&r.host).or_insert(t);
        }
    }
    for (host, t) in seen {
        let _ = writeln!(
            out,
            "tabacco_metadb_host_last_seen_timestamp_seconds{{host=\"{}\"}} {t}",
            escape(host)
        );
    }
}

/// An RFC 3339 time of a status row as unix seconds.
fn seconds(t: &Option<String>) -> Option<i64> {
    let t = t.as_deref()?;
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.timestamp())
}

/// A label value in the text format: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_counts_and_fleet() {
        let m = Metrics::default();
        m.observe("/api/add_dataset", 200, Duration::from_millis(3));
        m.observe("/api/add_dataset", 200, Duration::from_millis(30));
        m.observe("/api/add_dataset", 401, Duration::from_secs(10));
        let fleet = Fleet {
            database_bytes: 4096,
            last_backups: vec![NewestBackup {
                host: "we\"b3".into(),
                source: "users".into(),
                timestamp: 1_700_000_000,
            }],
            status: vec![StatusRow {
                host: "web1".into(),
                source: "sql".into(),
                state: "overdue".into(),
                schedule: "@daily".into(),
                last_attempt: Some("2023-11-14T22:13:20Z".into()),
                last_success: None,
                next_due: Some("2023-11-15T00:00:00Z".into()),
                message: "due".into(),
                last_seen: Some("2023-11-14T22:13:20Z".into()),
            }],
            copy_lag: vec![Lag {
                host: "web1".into(),
                repository: "offsite".into(),
                datasets: 3,
            }],
            proofs: vec![Proof {
                repository: "abc".into(),
                slices: 10,
                next_slice: 1,
                whole_read: Some("2023-11-14T22:13:20Z".into()),
            }],
            restored: vec![Restored {
                host: "web1".into(),
                atom: "db/x".into(),
                restored: "2023-11-14T22:13:21Z".into(),
                loaded: Some("2023-11-14T22:13:21Z".into()),
            }],
        };
        let text = m.render_counters(true) + &render_fleet(&fleet);
        for line in [
            "tabacco_metadb_requests_total{endpoint=\"/api/add_dataset\",status=\"200\"} 2",
            "tabacco_metadb_requests_total{endpoint=\"/api/add_dataset\",status=\"401\"} 1",
            "tabacco_metadb_request_duration_seconds_bucket{endpoint=\"/api/add_dataset\",le=\"0.005\"} 1",
            "tabacco_metadb_request_duration_seconds_bucket{endpoint=\"/api/add_dataset\",le=\"5\"} 2",
            "tabacco_metadb_request_duration_seconds_bucket{endpoint=\"/api/add_dataset\",le=\"+Inf\"} 3",
            "tabacco_metadb_request_duration_seconds_count{endpoint=\"/api/add_dataset\"} 3",
            "tabacco_metadb_database_size_bytes 4096",
            "tabacco_metadb_last_backup_timestamp_seconds{host=\"we\\\"b3\",source=\"users\"} 1700000000",
            "tabacco_metadb_up 1",
            "tabacco_metadb_source_state{host=\"web1\",source=\"sql\",state=\"overdue\"} 1",
            "tabacco_metadb_source_state{host=\"web1\",source=\"sql\",state=\"ok\"} 0",
            "tabacco_metadb_source_last_attempt_timestamp_seconds{host=\"web1\",source=\"sql\"} 1700000000",
            "tabacco_metadb_host_last_seen_timestamp_seconds{host=\"web1\"} 1700000000",
            "tabacco_metadb_copy_lag_datasets{host=\"web1\",repository=\"offsite\"} 3",
            "tabacco_metadb_repository_read_back_timestamp_seconds{repository=\"abc\"} 1700000000",
            "tabacco_metadb_atom_restored_timestamp_seconds{host=\"web1\",atom=\"db/x\"} 1700000001",
            "tabacco_metadb_atom_loaded_timestamp_seconds{host=\"web1\",atom=\"db/x\"} 1700000001",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(
            !text.contains("last_success_timestamp_seconds{"),
            "none yet"
        );
        assert!(m.render_counters(false).contains("tabacco_metadb_up 0\n"));
    }
}
