//! Case 8: fleet health at scale: 10,000 hosts with 10 planned sources
//! each and an attempt for every source (1% failed), then how long
//! `/api/status` takes to answer for the whole fleet, for its problems and
//! for one host.

use crate::daemon::Daemon;
use crate::measure::percentile;
use crate::{seconds, Bench, Row};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

const HOSTS: usize = 10_000;
const SOURCES: usize = 10;
const CLIENTS: usize = 8;
pub const ADMIN_TOKEN: &str = "admin-secret";

pub fn case(bench: &Bench) -> Vec<Row> {
    let server = fleet(bench, "health", 8);
    let rows = HOSTS * SOURCES;
    let failed = rows / 100;
    let latencies = |runs: usize, body: &dyn Fn(usize) -> String, expect: usize| {
        let mut times = Vec::with_capacity(runs);
        for i in 0..runs {
            // Timed to the answer's last byte; taking it apart is the
            // bench's own work.
            let t = Instant::now();
            let answer = send(server.addr, "/api/status", &body(i));
            times.push(t.elapsed().as_secs_f64());
            let (status, text) = parse(&answer);
            assert_eq!(status, 200);
            assert_eq!(text.matches("\"host\"").count(), expect);
        }
        times
    };
    let all = latencies(20, &|_| "{}".into(), rows);
    let problems = latencies(100, &|_| r#"{"problems":true}"#.into(), failed);
    let host = latencies(
        1000,
        &|i| format!(r#"{{"host":"host{:05}"}}"#, i * 7919 % HOSTS),
        SOURCES,
    );
    let p = crate::measure::p50_p99;
    vec![
        Row::figure(
            8,
            "status of 10,000 hosts × 10 sources, whole fleet (100,000 rows)",
            p(&all),
            "p99 < 100 ms",
            Some(percentile(&all, 0.99) < 0.100),
        ),
        Row::figure(
            8,
            "status --problems of that fleet (1,000 rows)",
            p(&problems),
            "p99 < 100 ms",
            Some(percentile(&problems, 0.99) < 0.100),
        ),
        Row::figure(8, "status --host of one host", p(&host), "", None),
    ]
}

/// A metadb (its files under `dir` of the scratch directory) holding the
/// plans and attempts of 10,000 hosts × 10 sources, 1% failed, recorded
/// over HTTP by 8 clients; case `case` says so as it goes.
pub fn fleet(bench: &Bench, dir: &str, case: u8) -> Daemon {
    let admin = bench
        .scratch
        .write(&format!("{dir}/admin.token"), ADMIN_TOKEN);
    let db = bench.scratch.path(&format!("{dir}/db.sqlite"));
    let config = bench.scratch.write(
        &format!("{dir}/metadb.yml"),
        &format!(
            "db_path: {}\ntokens:\n  - {{token_file: {}, role: admin}}\n",
            db.display(),
            admin.display()
        ),
    );
    let server = Daemon::metadb(bench.bin, &config);
    eprintln!("case {case}: plans and attempts of {HOSTS} hosts × {SOURCES} sources");
    let started = Instant::now();
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let addr = server.addr;
            s.spawn(move || {
                for h in (c..HOSTS).step_by(CLIENTS) {
                    let (status, text) = post(addr, "/api/plans", &plan(h));
                    assert_eq!(status, 200, "{text}");
                    for source in 0..SOURCES {
                        let (status, text) = post(addr, "/api/attempts", &attempt(h, source));
                        assert_eq!(status, 200, "{text}");
                    }
                }
            });
        }
    });
    eprintln!(
        "case {case}: recorded in {}",
        seconds(started.elapsed().as_secs_f64())
    );
    server
}

/// Host `h`'s plan: sources s0..s9, daily, due in an hour.
fn plan(h: usize) -> String {
    let due = chrono_like_now_plus(3600);
    let sources: Vec<String> = (0..SOURCES)
        .map(|s| format!(r#"{{"source":"s{s}","schedule":"@daily","next_due":"{due}"}}"#))
        .collect();
    format!(
        r#"{{"host":"host{h:05}","replace":true,"sources":[{}]}}"#,
        sources.join(",")
    )
}

/// The attempt of host `h`'s source `s`: one in a hundred failed.
fn attempt(h: usize, s: usize) -> String {
    let state = if (h * SOURCES + s) % 100 == 0 {
        r#""failed","failure":"command","message":"backup_command exited with status 1""#
    } else {
        r#""ok""#
    };
    format!(
        r#"{{"host":"host{h:05}","source":"s{s}","backup_id":"b{h}-{s}","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:01:00Z","state":{state},"datasets":1}}"#
    )
}

/// Now plus `secs`, in RFC 3339 (UTC).
fn chrono_like_now_plus(secs: u64) -> String {
    let out = crate::output(std::process::Command::new("date").args([
        "-u",
        "-d",
        &format!("+{secs} seconds"),
        "+%Y-%m-%dT%H:%M:%SZ",
    ]));
    assert!(out.ends_with('Z'), "date: {out}");
    out
}

/// One POST with the admin token on its own connection: status and body.
fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    parse(&send(addr, path, body))
}

/// One POST with the admin token on its own connection: the whole answer.
fn send(addr: SocketAddr, path: &str, body: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect to the metadb");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("an answer");
    answer
}

/// An answer's status and body.
fn parse(answer: &[u8]) -> (u16, String) {
    let answer = String::from_utf8_lossy(answer);
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    if head.contains("\r\nTransfer-Encoding: chunked") {
        (status, dechunk(body))
    } else {
        (status, body.to_string())
    }
}

/// The body of a chunked answer (a status of the whole fleet); panics if it
/// is cut short.
fn dechunk(mut chunked: &str) -> String {
    let mut body = String::with_capacity(chunked.len());
    loop {
        let (size, rest) = chunked.split_once("\r\n").expect("a chunk size");
        let size = usize::from_str_radix(size, 16).expect("a hex size");
        if size == 0 {
            return body;
        }
        body.push_str(&rest[..size]);
        chunked = rest[size..].strip_prefix("\r\n").expect("a chunk's end");
    }
}
