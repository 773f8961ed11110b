//! Case 12: one host with 18,000 backups recorded removes 3,000 of its
//! datasets in one request (what a prune of a long-kept source sends),
//! while another host keeps recording. Issue 26.6c: this took 38 s, and
//! the other host's writes timed out meanwhile. The records are loaded
//! straight into SQLite (a schema made by the metadb itself), then the
//! removal goes over HTTP.

use crate::daemon::Daemon;
use crate::measure::median;
use crate::{seconds, Bench, Row};
use rusqlite::{params, Connection};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const BACKUPS: usize = 18_000;
const REMOVED: usize = 3_000;
/// 2026-01-01T00:00:00Z; backup `i` is `i` minutes later.
const EPOCH: i64 = 1_767_225_600;

pub fn case(bench: &Bench) -> Vec<Row> {
    let mut removals = Vec::new();
    let mut writes = Vec::new();
    for run in 0..bench.runs {
        let dir = format!("removal{run}");
        let db = bench.scratch.path(&format!("{dir}/db.sqlite"));
        let config = bench.scratch.write(
            &format!("{dir}/metadb.yml"),
            &format!("db_path: {}\n", db.display()),
        );
        // The metadb makes the schema: the load below writes what it reads.
        drop(Daemon::metadb(bench.bin, &config));
        if run == 0 {
            eprintln!("case 12: loading {BACKUPS} backups of one host");
        }
        load(&db).expect("load the backups");
        let server = Daemon::metadb(bench.bin, &config);
        let ids: Vec<String> = (0..REMOVED).map(|i| format!("\"d{}\"", i * 6)).collect();
        let body = format!(r#"{{"host": "big", "dataset_ids": [{}]}}"#, ids.join(","));
        eprintln!("case 12: removing {REMOVED} datasets, round {}", run + 1);
        let done = AtomicBool::new(false);
        let (removal, slowest) = std::thread::scope(|s| {
            let other = s.spawn(|| {
                let mut slowest = Duration::ZERO;
                let mut n = 0;
                while !done.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let (status, text) = post(server.addr, "/api/add_dataset", &record(n));
                    slowest = slowest.max(t.elapsed());
                    assert_eq!(status, 200, "{text}");
                    n += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                slowest
            });
            let t = Instant::now();
            let (status, text) = post(server.addr, "/api/remove_datasets", &body);
            let removal = t.elapsed();
            done.store(true, Ordering::Relaxed);
            assert_eq!(status, 200, "{text}");
            assert!(text.contains(&format!("\"removed\":{REMOVED}")), "{text}");
            (removal, other.join().expect("the other host's writer"))
        });
        removals.push(removal.as_secs_f64());
        writes.push(slowest.as_secs_f64());
    }
    let (removal, write) = (median(&removals), median(&writes));
    vec![
        Row::figure(
            12,
            &format!("remove {REMOVED} of {BACKUPS} backups of one host"),
            seconds(removal),
            "≤ 1 s",
            Some(removal <= 1.0),
        ),
        Row::figure(
            12,
            "slowest write of another host meanwhile",
            seconds(write),
            "≤ 1 s",
            Some(write <= 1.0),
        ),
    ]
}

/// Host `big`'s backups `b<i>`, each of one dataset `d<i>` of three atoms,
/// held by the primary repository.
fn load(db: &std::path::Path) -> rusqlite::Result<()> {
    let mut conn = Connection::open(db)?;
    let tx = conn.transaction()?;
    {
        let mut backup =
            tx.prepare("INSERT INTO backups (id, timestamp, host) VALUES (?1, ?2, 'big')")?;
        let mut dataset = tx.prepare(
            "INSERT INTO datasets (host, id, backup_id, source, snapshot_id, total_files,
                 total_bytes, bytes_added, duration)
             VALUES ('big', ?1, ?2, 'users', ?3, 10, 1000, 10, 1)",
        )?;
        let mut held = tx.prepare(
            "INSERT INTO holdings (host, dataset_id, repository) VALUES ('big', ?1, 'primary')",
        )?;
        let mut atom = tx.prepare(
            "INSERT INTO atoms (host, dataset_id, name, path, timestamp)
             VALUES ('big', ?1, ?2, NULL, ?3)",
        )?;
        for i in 0..BACKUPS {
            let (b, d, t) = (format!("b{i}"), format!("d{i}"), EPOCH + 60 * i as i64);
            backup.execute(params![b, t])?;
            dataset.execute(params![d, b, format!("{i:08x}")])?;
            held.execute(params![d])?;
            for k in 0..3 {
                atom.execute(params![d, format!("users/u{k}"), t])?;
            }
        }
    }
    tx.commit()
}

/// Dataset `n` of host `other`.
fn record(n: usize) -> String {
    format!(
        r#"{{"backup": {{"id": "o{n}", "timestamp": "2026-01-01T00:00:00Z", "host": "other"}},
            "dataset": {{"id": "od{n}", "source": "users", "atoms": [{{"name": "users/x"}}],
                         "snapshot_id": "abcd1234"}}}}"#
    )
}

/// One POST on its own connection: status and body.
fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the metadb");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("an answer");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}
