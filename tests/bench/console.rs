//! Case 11: the console's fleet page for the fleet of case 8 (10,000
//! hosts × 10 planned sources, 1% failed): how long the server takes to
//! answer it (to the answer's last byte on loopback, and as the server's
//! own histogram on /metrics says), and how large it is, for the first
//! page (problems first) and for the last (past the problems: a second
//! walk, from the row the first noted a page before it).

use crate::health::{fleet, ADMIN_TOKEN};
use crate::measure::percentile;
use crate::{seconds, Bench, Row};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

pub fn case(bench: &Bench) -> Vec<Row> {
    let server = fleet(bench, "console", 11);
    eprintln!("case 11: the fleet page");
    let measure = |target: &str, runs: usize| {
        let mut times = Vec::with_capacity(runs);
        let mut bytes = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let answer = get(server.addr, target);
            times.push(t.elapsed().as_secs_f64());
            assert!(
                answer.starts_with("HTTP/1.1 200 "),
                "{target}: {answer:.300}"
            );
            let (_, body) = answer.split_once("\r\n\r\n").unwrap_or_default();
            assert!(body.contains(" of 100,000.</p>"), "{target}");
            bytes = body.len();
        }
        (times, bytes)
    };
    let (first, first_bytes) = measure("/", 50);
    let server_mean = server_time(server.addr);
    let (last, _) = measure("/?page=1000", 20);
    // Past the problems the page starts from a row the count noted: it
    // must still end with the fleet's last source.
    let answer = get(server.addr, "/?page=1000");
    assert!(answer.contains("/source?host=host09999&amp;source=s9\""));
    let p = crate::measure::p50_p99;
    vec![
        Row::figure(
            11,
            "fleet page of 10,000 hosts × 10 sources, first page (problems)",
            p(&first),
            "p99 < 200 ms",
            Some(percentile(&first, 0.99) < 0.200),
        ),
        Row::figure(
            11,
            "fleet page, the last (past the problems)",
            p(&last),
            "p99 < 200 ms",
            Some(percentile(&last, 0.99) < 0.200),
        ),
        Row::figure(
            11,
            "fleet page, first page, the server's own mean (its /metrics histogram)",
            seconds(server_mean),
            "< 200 ms",
            Some(server_mean < 0.200),
        ),
        Row::figure(
            11,
            "fleet page size",
            format!("{:.0} KiB", first_bytes as f64 / 1024.0),
            "< 300 KiB",
            Some(first_bytes < 300 * 1024),
        ),
    ]
}

/// One GET with the admin token on its own connection: the whole answer.
fn get(addr: SocketAddr, target: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the metadb");
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("an answer");
    String::from_utf8_lossy(&answer).into_owned()
}

/// The mean time the server took on `/`, from its latency histogram.
fn server_time(addr: SocketAddr) -> f64 {
    let metrics = get(addr, "/metrics");
    let value = |name: &str| {
        let prefix = format!("tabacco_metadb_request_duration_seconds_{name}{{endpoint=\"/\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix)?.parse::<f64>().ok())
            .expect("the page's latency on /metrics")
    };
    value("sum") / value("count")
}
