//! Case 9: one metadb holding a fleet of 10,000 hosts × 100 atoms × 3
//! versions (3,000,000 atom records, 1,000,000 names), loaded straight into
//! SQLite (a schema made by the metadb itself, then plain inserts: loading
//! it over HTTP would take most of an hour). Measured: a find restricted to
//! one host, an exact name, and the newest version of every atom of the
//! fleet, streamed (time to the first byte, to the end, the server's RSS
//! meanwhile, and `tabacco query` printing its first row).

use crate::daemon::Daemon;
use crate::measure::percentile;
use crate::{mib, seconds, Bench, Row};
use rusqlite::{params, Connection};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const HOSTS: usize = 10_000;
const VERSIONS: usize = 3;
/// Sources per host, each with ATOMS atoms: 100 atoms a host.
const SOURCES: usize = 10;
const ATOMS: usize = 10;
/// 2026-01-01T00:00:00Z: day `d` of host `h` is backed up at `h` seconds
/// past midnight.
const EPOCH: i64 = 1_767_225_600;

pub fn case(bench: &Bench) -> Vec<Row> {
    let db = bench.scratch.path("fleet/db.sqlite");
    let config = bench
        .scratch
        .write("fleet/metadb.yml", &format!("db_path: {}\n", db.display()));
    // The metadb makes the schema: the load below writes what it reads.
    drop(Daemon::metadb(bench.bin, &config));
    eprintln!(
        "case 9: loading {HOSTS} hosts × {} atoms × {VERSIONS}",
        SOURCES * ATOMS
    );
    let started = Instant::now();
    load(&db).expect("load the fleet");
    let load_time = started.elapsed().as_secs_f64();
    let db_bytes = std::fs::metadata(&db).map_or(0, |m| m.len());
    let server = Daemon::metadb(bench.bin, &config);

    eprintln!("case 9: finds");
    let mut conn = Conn::connect(server.addr);
    let mut latencies = |runs: usize, body: &dyn Fn(usize) -> String, expect: usize| {
        let mut times = Vec::with_capacity(runs);
        for i in 0..runs {
            let body = body(i);
            let t = Instant::now();
            let (status, text) = conn.post(&body);
            times.push(t.elapsed().as_secs_f64());
            assert_eq!(status, 200, "{text}");
            assert_eq!(text.matches("\"name\"").count(), expect, "{body}");
        }
        times
    };
    let host = |i: usize| format!("host{:05}", i * 7919 % HOSTS);
    let host_all = latencies(
        300,
        &|i| {
            format!(
                r#"{{"pattern": "*", "host": "{}", "num_versions": 1}}"#,
                host(i)
            )
        },
        SOURCES * ATOMS,
    );
    let host_prefix = latencies(
        300,
        &|i| {
            let s = i % SOURCES;
            format!(
                r#"{{"pattern": "svc{s}/*", "host": "{}", "num_versions": 1}}"#,
                host(i)
            )
        },
        ATOMS,
    );
    let host_versions = latencies(
        100,
        &|i| format!(r#"{{"pattern": "*", "host": "{}"}}"#, host(i)),
        SOURCES * ATOMS * VERSIONS,
    );
    let exact = latencies(
        1000,
        &|i| {
            let h = i * 7919 % HOSTS;
            let name = atom_name(h, i % SOURCES, i % ATOMS);
            format!(r#"{{"pattern": "{name}", "num_versions": 1}}"#)
        },
        1,
    );

    eprintln!("case 9: the newest version of every atom, streamed");
    let rss_at_rest = server.rss_kib();
    let fleet = fleet_wide(&server);
    eprintln!("case 9: tabacco query '*'");
    let query = query_all(bench, server.addr);
    drop(server);

    let p = crate::measure::p50_p99;
    vec![
        Row::figure(
            9,
            "load 10,000 hosts × 100 atoms × 3 versions (direct SQLite inserts)",
            format!("{} ({})", seconds(load_time), mib(db_bytes >> 10)),
            "",
            None,
        ),
        Row::figure(
            9,
            "find one host's `*` (100 atoms), newest",
            p(&host_all),
            "p99 < 20 ms",
            Some(percentile(&host_all, 0.99) < 0.020),
        ),
        Row::figure(
            9,
            "find one host's `svcN/*` (10 atoms), newest",
            p(&host_prefix),
            "p99 < 20 ms",
            Some(percentile(&host_prefix, 0.99) < 0.020),
        ),
        Row::figure(
            9,
            "find one host's `*`, every version (300 atoms)",
            p(&host_versions),
            "p99 < 20 ms",
            Some(percentile(&host_versions, 0.99) < 0.020),
        ),
        Row::figure(
            9,
            "find an exact name, newest",
            p(&exact),
            "p99 < 2 ms",
            Some(percentile(&exact, 0.99) < 0.002),
        ),
        Row::figure(
            9,
            "fleet-wide `*`, newest (1,000,000 atoms): first byte / whole answer",
            format!(
                "{} / {} ({} atoms, {})",
                seconds(fleet.first),
                seconds(fleet.total),
                fleet.atoms,
                mib(fleet.bytes >> 10)
            ),
            "",
            Some(fleet.atoms == HOSTS * SOURCES * ATOMS),
        ),
        Row::figure(
            9,
            "metadb RSS at rest / peak while streaming the fleet-wide `*`",
            format!("{} / {}", mib(rss_at_rest), mib(fleet.peak_rss_kib)),
            "< 64 MiB",
            Some(fleet.peak_rss_kib < 64 << 10),
        ),
        Row::figure(
            9,
            "`tabacco query '*'` (1,000,000 atoms, JSON): first row / last row, peak RSS",
            format!(
                "{} / {}, {}",
                seconds(query.0),
                seconds(query.1),
                mib(query.2)
            ),
            "first before last",
            Some(query.0 < query.1),
        ),
    ]
}

/// Atom `k` of source `s` of host `h`: every name is one host's.
fn atom_name(h: usize, s: usize, k: usize) -> String {
    format!("svc{s}/h{h:05}/a{k}")
}

/// Writes the fleet into the database the metadb made, in one transaction.
fn load(db: &std::path::Path) -> rusqlite::Result<()> {
    let mut conn = Connection::open(db)?;
    // A load that fails is run again from scratch: no journal, no syncs.
    conn.pragma_update(None, "journal_mode", "OFF")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -(512 << 10))?;
    let tx = conn.transaction()?;
    {
        let mut backup =
            tx.prepare("INSERT INTO backups (id, timestamp, host) VALUES (?1, ?2, ?3)")?;
        let mut dataset = tx.prepare(
            "INSERT INTO datasets (host, id, backup_id, source, snapshot_id, total_files,
                 total_bytes, bytes_added, duration)
             VALUES (?5, ?1, ?2, ?3, ?4, 1000, 1000000, 1000, 5)",
        )?;
        let mut atom = tx.prepare(
            "INSERT INTO atoms (host, dataset_id, name, path, timestamp)
             VALUES (?4, ?1, ?2, NULL, ?3)",
        )?;
        for h in 0..HOSTS {
            let host = format!("host{h:05}");
            for d in 0..VERSIONS {
                let b = format!("b{h}-{d}");
                let t = EPOCH + d as i64 * 86_400 + h as i64;
                backup.execute(params![b, t, host])?;
                for s in 0..SOURCES {
                    let id = format!("d{h}-{d}-{s}");
                    let snapshot = format!("{:08x}{:08x}", h * 31 + d, s);
                    dataset.execute(params![id, b, format!("svc{s}"), snapshot, host])?;
                    for k in 0..ATOMS {
                        atom.execute(params![id, atom_name(h, s, k), t, host])?;
                    }
                }
            }
        }
    }
    tx.commit()?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    Ok(())
}

struct Streamed {
    /// Seconds to the first byte of the body, and to its end.
    first: f64,
    total: f64,
    atoms: usize,
    bytes: u64,
    peak_rss_kib: u64,
}

/// The newest version of every atom, read as it comes; the server's peak
/// RSS (VmHWM: since it started, so an upper bound) once it is sent.
fn fleet_wide(server: &Daemon) -> Streamed {
    let done = AtomicBool::new(false);
    let peak = AtomicU64::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                peak.fetch_max(server.peak_rss_kib(), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let mut stream = TcpStream::connect(server.addr).expect("connect");
        let body = r#"{"pattern": "*", "num_versions": 1}"#;
        let t = Instant::now();
        write!(
            stream,
            "POST /api/find_atoms HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("send");
        let mut reader = BufReader::with_capacity(1 << 16, stream);
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).expect("a header");
            if line.trim_end().is_empty() {
                break;
            }
        }
        // The body, chunk by chunk: counted, never held.
        let (mut first, mut bytes, mut atoms) = (None, 0u64, 0);
        let needle = b"\"name\":";
        let mut carry: Vec<u8> = Vec::new();
        loop {
            line.clear();
            reader.read_line(&mut line).expect("a chunk size");
            first.get_or_insert_with(|| t.elapsed().as_secs_f64());
            let size = usize::from_str_radix(line.trim(), 16).expect("a hex size");
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).expect("a chunk");
            if size == 0 {
                break;
            }
            bytes += size as u64;
            carry.extend_from_slice(&chunk[..size]);
            atoms += carry.windows(needle.len()).filter(|w| w == needle).count();
            let keep = carry.len().min(needle.len() - 1);
            carry.drain(..carry.len() - keep);
        }
        let total = t.elapsed().as_secs_f64();
        done.store(true, Ordering::SeqCst);
        peak.fetch_max(server.peak_rss_kib(), Ordering::SeqCst);
        Streamed {
            first: first.unwrap_or(total),
            total,
            atoms,
            bytes,
            peak_rss_kib: peak.load(Ordering::SeqCst),
        }
    })
}

/// `tabacco query '*'` against the metadb: seconds to its first backup on
/// stdout (past the line `[`) and to its end, and its peak RSS in KiB.
fn query_all(bench: &Bench, addr: SocketAddr) -> (f64, f64, u64) {
    let config = bench.scratch.write(
        "fleet/agent.yml",
        &format!(
            "hostname: bench\nrepository:\n  params:\n    uri: {}\n    password: x\n\
             work_dir: {}\nmetadb:\n  url: http://{addr}\n",
            bench.scratch.path("fleet/repo").display(),
            bench.scratch.path("fleet/work").display(),
        ),
    );
    let t = Instant::now();
    let mut child = Command::new(bench.bin)
        .arg("--config")
        .arg(&config)
        .args(["query", "--json", "*"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("tabacco query");
    let status_file = format!("/proc/{}/status", child.id());
    let done = AtomicBool::new(false);
    let peak = AtomicU64::new(0);
    let first = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                let hwm = crate::measure::vm_kib(&status_file, "VmHWM:").unwrap_or(0);
                peak.fetch_max(hwm, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let mut out = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        out.read_line(&mut line).expect("a first line");
        out.read_line(&mut line).expect("a second line");
        let first = t.elapsed().as_secs_f64();
        std::io::copy(&mut out, &mut std::io::sink()).expect("the rest");
        done.store(true, Ordering::SeqCst);
        first
    });
    let status = child.wait().expect("wait");
    assert!(status.success(), "tabacco query: {status}");
    (
        first,
        t.elapsed().as_secs_f64(),
        peak.load(Ordering::SeqCst),
    )
}

/// A kept-alive connection to the metadb, without a token (loopback).
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect to the metadb");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        Conn {
            reader: BufReader::new(stream.try_clone().expect("a second handle")),
            writer: stream,
        }
    }

    /// POSTs a find; the status and the answer's body (chunked).
    fn post(&mut self, body: &str) -> (u16, String) {
        let request = format!(
            "POST /api/find_atoms HTTP/1.1\r\nHost: bench\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.writer.write_all(request.as_bytes()).expect("send");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("a status line");
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status");
        let mut length = None;
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("a header");
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().ok();
                }
            }
        }
        let mut body = Vec::new();
        if let Some(length) = length {
            body.resize(length, 0);
            self.reader.read_exact(&mut body).expect("a body");
        } else {
            loop {
                line.clear();
                self.reader.read_line(&mut line).expect("a chunk size");
                let size = usize::from_str_radix(line.trim(), 16).expect("a hex size");
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).expect("a chunk");
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        }
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}
