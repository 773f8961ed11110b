//! Case 5: one metadb under a fleet's load: `add_dataset` throughput from 8
//! clients (8 hosts, each with its own token), `find_atoms` latency over the
//! 1,000,000 atoms they recorded, bytes per atom, and the server's memory.

use crate::daemon::Daemon;
use crate::measure::percentile;
use crate::{mib, Bench, Row};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;
const DATASETS: usize = 100_000;
const ATOMS_PER_DATASET: usize = 10;
/// Distinct atom names: each is recorded DATASETS * ATOMS / NAMES = 100 times.
const NAMES: usize = 10_000;
const ADMIN_TOKEN: &str = "admin-secret";

pub fn case(bench: &Bench) -> Vec<Row> {
    let mut tokens = String::from("tokens:\n");
    for c in 0..CLIENTS {
        let file = bench
            .scratch
            .write(&format!("metadb/host{c}.token"), &format!("host{c}-secret"));
        tokens.push_str(&format!(
            "  - {{token_file: {}, host: host{c}}}\n",
            file.display()
        ));
    }
    let admin = bench.scratch.write("metadb/admin.token", ADMIN_TOKEN);
    tokens.push_str(&format!(
        "  - {{token_file: {}, role: admin}}\n",
        admin.display()
    ));
    let db = bench.scratch.path("metadb/db.sqlite");
    let config = bench.scratch.write(
        "metadb/metadb.yml",
        &format!("db_path: {}\n{tokens}", db.display()),
    );
    let server = Daemon::metadb(bench.bin, &config);

    eprintln!("case 5: {DATASETS} add_dataset requests from {CLIENTS} clients");
    let started = Instant::now();
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let addr = server.addr;
            s.spawn(move || {
                let mut conn = KeepAlive::connect(addr, &format!("host{c}-secret"));
                for n in (c..DATASETS).step_by(CLIENTS) {
                    let (status, text) = conn.post("/api/add_dataset", &dataset(n, c));
                    assert_eq!(status, 200, "{text}");
                }
            });
        }
    });
    let writes = DATASETS as f64 / started.elapsed().as_secs_f64();

    eprintln!("case 5: find_atoms");
    let mut conn = KeepAlive::connect(server.addr, ADMIN_TOKEN);
    let mut latencies = |runs: usize, pattern: &dyn Fn(usize) -> String, expect: usize| {
        let mut times = Vec::with_capacity(runs);
        for i in 0..runs {
            let body = format!(r#"{{"pattern": "{}", "num_versions": 1}}"#, pattern(i));
            let t = Instant::now();
            let (status, text) = conn.post("/api/find_atoms", &body);
            times.push(t.elapsed().as_secs_f64());
            assert_eq!(status, 200, "{text}");
            assert_eq!(text.matches("\"name\"").count(), expect, "{body}");
        }
        times
    };
    let exact = latencies(
        1000,
        &|i| format!("users/account{:04}", i * 7919 % NAMES),
        1,
    );
    let prefix = latencies(200, &|i| format!("users/account{:02}*", i * 7 % 100), 100);
    let all = latencies(5, &|_| "*".into(), NAMES);

    let size = |suffix: &str| {
        std::fs::metadata(format!("{}{suffix}", db.display())).map_or(0, |m| m.len())
    };
    let (db_bytes, wal_bytes) = (size(""), size("-wal"));
    std::thread::sleep(Duration::from_secs(2));
    let rss = server.rss_kib();
    let atoms = DATASETS * ATOMS_PER_DATASET;
    let p = crate::measure::p50_p99;
    vec![
        Row::figure(
            5,
            "add_dataset (10 atoms each), 8 clients, durable (synchronous=FULL, group commit)",
            format!("{writes:.0} writes/s"),
            "≥ 2,000/s",
            Some(writes >= 2000.0),
        ),
        Row::figure(
            5,
            "find_atoms exact name, newest, 1,000,000 atoms",
            p(&exact),
            "p99 < 20 ms",
            Some(percentile(&exact, 0.99) < 0.020),
        ),
        Row::figure(
            5,
            "find_atoms prefix glob (100 names), newest",
            p(&prefix),
            "p99 < 20 ms",
            Some(percentile(&prefix, 0.99) < 0.020),
        ),
        Row::figure(
            5,
            "find_atoms `*`, newest (10,000 atoms)",
            p(&all),
            "",
            None,
        ),
        Row::figure(
            5,
            "database size per atom record",
            format!(
                "{:.0} bytes (database {}, WAL {})",
                (db_bytes + wal_bytes) as f64 / atoms as f64,
                mib(db_bytes >> 10),
                mib(wal_bytes >> 10)
            ),
            "",
            None,
        ),
        Row::figure(5, "metadb RSS at rest after this load", mib(rss), "", None),
    ]
}

/// Dataset `n` of host `c`: 10 atoms out of NAMES, one second after `n - 1`.
fn dataset(n: usize, c: usize) -> String {
    let atoms: Vec<serde_json::Value> = (0..ATOMS_PER_DATASET)
        .map(|a| serde_json::json!({"name": format!("users/account{:04}", (n * ATOMS_PER_DATASET + a) % NAMES)}))
        .collect();
    let time = chrono::DateTime::from_timestamp(1_700_000_000 + n as i64, 0).expect("a valid time");
    serde_json::json!({
        "backup": {"id": format!("b{n}"), "host": format!("host{c}"), "timestamp": time.to_rfc3339()},
        "dataset": {"id": format!("d{n}"), "source": "users", "atoms": atoms, "snapshot_id": "0123abcd",
                    "total_files": 10, "total_bytes": 1000, "bytes_added": 10, "duration": 1.5},
    })
    .to_string()
}

/// A kept-alive HTTP/1.1 connection with a bearer token: what a busy
/// client's connection pool amounts to, without a client library's costs.
struct KeepAlive {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    token: String,
}

impl KeepAlive {
    fn connect(addr: SocketAddr, token: &str) -> KeepAlive {
        let stream = TcpStream::connect(addr).expect("connect to the metadb");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        KeepAlive {
            reader: BufReader::new(stream.try_clone().expect("a second handle")),
            writer: stream,
            token: token.to_string(),
        }
    }

    /// POSTs `body`; the status and the answer's body.
    fn post(&mut self, path: &str, body: &str) -> (u16, String) {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.token,
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
        let (mut length, mut chunked) = (0, false);
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("a header");
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().expect("a length");
                }
                if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.trim().eq_ignore_ascii_case("chunked");
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
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
        } else {
            body.resize(length, 0);
            self.reader.read_exact(&mut body).expect("a body");
        }
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}
