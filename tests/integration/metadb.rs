//! The metadb server: the real `tabacco metadb` on a loopback port, driven
//! by the real client (`run` and `query` with `metadb.url`) and by raw HTTP
//! for the status codes, plus the spool, concurrency, crashes and signals.

use crate::common::{atom_names, Daemon, Fixture};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `tabacco metadb`, killed and reaped when dropped.
pub(crate) struct Server {
    daemon: Daemon,
    pub(crate) addr: SocketAddr,
}

impl Server {
    /// Starts `tabacco metadb --config CONFIG --http-addr ADDR` and waits
    /// for the address it logs.
    pub(crate) fn start(config: &Path, addr: &str) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tabacco"));
        cmd.args(["metadb", "--config"])
            .arg(config)
            .args(["--http-addr", addr]);
        let daemon = Daemon::spawn(cmd);
        let addr = daemon.addr().parse().unwrap();
        Server { daemon, addr }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.daemon.child.id()
    }

    fn signal(&self, signal: i32) {
        self.daemon.signal(signal);
    }

    /// Waits for the process to exit; returns its status code and stderr.
    pub(crate) fn wait(self) -> (Option<i32>, String) {
        let (status, log) = self.daemon.wait(Duration::from_secs(20));
        (status.code(), log)
    }

    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, String) {
        http(self.addr, method, path, token, body.as_bytes())
    }
}

/// One HTTP/1.1 request on its own connection: (status, body).
pub(crate) fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) and close before taking the whole body.
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let body = if head.contains("\r\nTransfer-Encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

/// The body of a chunked answer; panics if it is cut short.
pub(crate) fn dechunk(mut chunked: &str) -> String {
    let mut body = String::new();
    loop {
        let (size, rest) = chunked
            .split_once("\r\n")
            .unwrap_or_else(|| panic!("cut short after {body:?}"));
        let size = usize::from_str_radix(size, 16).unwrap();
        if size == 0 {
            assert_eq!(rest, "\r\n", "after the last chunk");
            return body;
        }
        body.push_str(&rest[..size]);
        chunked = rest[size..].strip_prefix("\r\n").unwrap();
    }
}

pub(crate) fn add_dataset_body(backup: &str, host: &str, dataset: &str, atom: &str) -> String {
    serde_json::json!({
        "backup": {"id": backup, "timestamp": "2024-05-01T12:00:00Z", "host": host},
        "dataset": {"id": dataset, "source": atom.split('/').next().unwrap(),
                    "atoms": [{"name": atom}], "snapshot_id": "abcd1234"},
    })
    .to_string()
}

/// Writer `w` records `n` datasets (`users/u<i>`) for host `w`,
/// `per_backup` to a backup, each on its own connection; all must be taken.
fn record_datasets(addr: SocketAddr, w: usize, n: usize, per_backup: usize) {
    for i in 0..n {
        let body = add_dataset_body(
            &format!("b{w}-{}", i / per_backup),
            &format!("host{w}"),
            &format!("d{w}-{i}"),
            &format!("users/u{i}"),
        );
        let (status, text) = http(addr, "POST", "/api/add_dataset", None, body.as_bytes());
        assert_eq!(status, 200, "{text}");
    }
}

fn find(server: &Server, token: Option<&str>, body: &str) -> (u16, Vec<serde_json::Value>) {
    let (status, text) = server.request("POST", "/api/find_atoms", token, body);
    let found = if status == 200 {
        serde_json::from_str(&text).unwrap()
    } else {
        Vec::new()
    };
    (status, found)
}

/// A metadb.yml in `f` with database `db` and `extra` keys.
pub(crate) fn metadb_config(f: &Fixture, extra: &str) -> PathBuf {
    f.write(
        "etc/metadb.yml",
        &format!("db_path: {}\n{extra}", f.path("metadb/db.sqlite").display()),
    )
}

/// An agent.yml for `f` that reads and writes through `server`.
pub(crate) fn agent_through(f: &Fixture, server: &Server) {
    f.write(
        "etc/agent.yml",
        &format!(
            "hostname: test-host\n{}metadb:\n  url: {}\n",
            f.repository_yaml(),
            server.url()
        ),
    );
}

/// The `metadb:` lines of host `name`'s agent.yml that reach `server` with
/// the token [`fleet_config`] wrote for it; none without a server.
pub(crate) fn through(f: &Fixture, name: &str, server: Option<&Server>) -> String {
    match server {
        Some(server) => format!(
            "metadb:\n  url: {}\n  token_file: {}\n",
            server.url(),
            f.path(&format!("etc/{name}.token")).display()
        ),
        None => String::new(),
    }
}

/// A metadb.yml in `f` with `extra` keys and tokens: `HOST-secret` (from a
/// file) for each of `hosts`, and `secret` (by its SHA-256) for the admin.
pub(crate) fn fleet_config(f: &Fixture, extra: &str, hosts: &[&str]) -> PathBuf {
    let mut tokens = String::from("tokens:\n");
    for host in hosts {
        let file = f.write(&format!("etc/{host}.token"), &format!("{host}-secret\n"));
        tokens.push_str(&format!(
            "  - {{token_file: {}, host: {host}}}\n",
            file.display()
        ));
    }
    // `printf %s secret | sha256sum`
    tokens.push_str("  - {token_sha256: 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b, role: admin}\n");
    metadb_config(f, &format!("{extra}{tokens}"))
}

/// A port nothing listens on.
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn dataset_count(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT count(*) FROM datasets", [], |r| r.get(0))
        .unwrap()
}

const SQL_SOURCE: &str = "name: sql\nhandler: pipe\nparams:\n  backup_command: \"echo dump of ${atom.name}\"\natoms: [{name: db1}, {name: db2}]\n";

#[test]
fn run_and_query_go_through_the_server() {
    let f = Fixture::new();
    let server = Server::start(&metadb_config(&f, ""), "127.0.0.1:0");
    agent_through(&f, &server);
    f.write("etc/sources/sql.yml", SQL_SOURCE);
    let run = f.tabacco(&["run"]).success();
    assert_eq!(run.stderr, "");
    let backups = f.query(&["sql/*"]);
    let mut names = atom_names(&backups);
    names.sort();
    assert_eq!(names, ["sql/db1", "sql/db2"]);
    assert_eq!(backups[0]["host"], "test-host");
    assert!(
        !f.path("work/metadb.sqlite").exists(),
        "a remote metadb leaves no embedded one"
    );
    assert_eq!(dataset_count(&f.path("metadb/db.sqlite")), 2);

    let (status, metrics) = server.request("GET", "/metrics", None, "");
    assert_eq!(status, 200);
    assert!(
        metrics.contains(
            "tabacco_metadb_last_backup_timestamp_seconds{host=\"test-host\",source=\"sql\"}"
        ),
        "{metrics}"
    );
    assert!(metrics
        .contains("tabacco_metadb_requests_total{endpoint=\"/api/add_dataset\",status=\"200\"} 2"));
    crate::common::promtool_accepts(&metrics);
}

#[test]
fn status_codes_and_tokens() {
    let f = Fixture::new();
    let config = fleet_config(&f, "max_body_bytes: 4096\n", &["web3", "web4"]);
    let server = Server::start(&config, "127.0.0.1:0");
    let web3 = Some("web3-secret");
    let own = add_dataset_body("b1", "web3", "d1", "users/alice");
    let other = add_dataset_body("b2", "web4", "d2", "users/bob");

    let cases: Vec<(&str, &str, Option<&str>, String, u16)> = vec![
        ("POST", "/api/add_dataset", None, own.clone(), 401),
        ("POST", "/api/add_dataset", Some("wrong"), own.clone(), 401),
        (
            "POST",
            "/api/add_dataset",
            Some("web4-secret"),
            own.clone(),
            403,
        ),
        ("POST", "/api/add_dataset", web3, other.clone(), 403),
        ("POST", "/api/add_dataset", web3, own.clone(), 200),
        // A retry of the same record changes nothing.
        ("POST", "/api/add_dataset", web3, own.clone(), 200),
        (
            "POST",
            "/api/add_dataset",
            Some("secret"),
            other.clone(),
            200,
        ),
        (
            "POST",
            "/api/add_dataset",
            web3,
            "{\"backup\": ".into(),
            400,
        ),
        ("POST", "/api/add_dataset", web3, "[1, 2]".into(), 400),
        ("POST", "/api/add_dataset", web3, "x".repeat(5000), 413),
        ("GET", "/api/add_dataset", web3, String::new(), 405),
        ("POST", "/healthz", None, String::new(), 405),
        ("GET", "/api/nothing", web3, String::new(), 404),
        ("GET", "/healthz", None, String::new(), 200),
        ("GET", "/api/active_jobs", None, String::new(), 401),
    ];
    for (method, path, token, body, want) in &cases {
        let (status, text) = server.request(method, path, *token, body);
        assert_eq!(status, *want, "{method} {path} {token:?}: {text}");
        if *want >= 400 {
            let error: serde_json::Value = serde_json::from_str(&text).unwrap();
            let msg = error["error"].as_str().unwrap();
            assert!(!msg.is_empty() && !msg.contains('\n'), "{msg}");
            assert!(!msg.contains("secret"), "{msg}");
        }
    }
    let (_, text) = server.request("POST", "/api/add_dataset", web3, "{\"backup\": ");
    assert!(text.contains("malformed JSON"), "{text}");

    let (status, found) = find(&server, web3, r#"{"pattern": "users/*"}"#);
    assert_eq!(status, 200);
    assert_eq!(found.len(), 2, "host tokens read every host by default");
    assert_eq!(atom_names(&found), ["users/bob", "users/alice"]);

    // Job status: a host reports its own jobs only.
    let jobs = |host: &str| {
        serde_json::json!({"host": host, "active_jobs": [{"host": host, "job_id": "j1",
            "backup_id": "b9", "dataset_id": "d9", "dataset_source": "users", "status": "running"}]})
        .to_string()
    };
    let path = "/api/update_active_job_status";
    assert_eq!(server.request("POST", path, web3, &jobs("web4")).0, 403);
    assert_eq!(server.request("POST", path, web3, &jobs("web3")).0, 200);
    let (status, text) = server.request("GET", "/api/active_jobs", Some("secret"), "");
    assert_eq!(status, 200);
    let listed: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["host"], "web3");
    assert_eq!(dataset_count(&f.path("metadb/db.sqlite")), 2);

    // Removing records (prune): a host only its own.
    let remove = |host: &str, id: &str| {
        serde_json::json!({"host": host, "dataset_ids": [id, "never-recorded"]}).to_string()
    };
    let path = "/api/remove_datasets";
    assert_eq!(
        server.request("POST", path, web3, &remove("web4", "d2")).0,
        403
    );
    let (status, text) = server.request("POST", path, Some("secret"), &remove("web4", "d2"));
    assert_eq!((status, text.as_str()), (200, r#"{"removed":1}"#));
    assert_eq!(dataset_count(&f.path("metadb/db.sqlite")), 1);
}

#[test]
fn a_body_announcing_terabytes_does_not_take_the_server_down() {
    // tiny_http drained an unread body into one buffer of the announced
    // size; the server now answers 413 without reading it.
    let f = Fixture::new();
    let server = Server::start(&metadb_config(&f, ""), "127.0.0.1:0");
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(
            b"POST /api/add_dataset HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n{",
        )
        .unwrap();
    let mut buf = [0u8; 12];
    stream.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"HTTP/1.1 413");
    assert_eq!(server.request("GET", "/healthz", None, "").0, 200);
}

#[test]
fn host_read_own_restricts_host_tokens() {
    let f = Fixture::new();
    let config = fleet_config(&f, "host_read: own\n", &["web3"]);
    let server = Server::start(&config, "127.0.0.1:0");
    let admin = Some("secret");
    for (b, host, d, atom) in [
        ("b1", "web3", "d1", "users/alice"),
        ("b2", "web4", "d2", "users/bob"),
    ] {
        let body = add_dataset_body(b, host, d, atom);
        assert_eq!(
            server.request("POST", "/api/add_dataset", admin, &body).0,
            200
        );
    }
    let web3 = Some("web3-secret");
    let (status, found) = find(&server, web3, r#"{"pattern": "*"}"#);
    assert_eq!(status, 200);
    assert_eq!(atom_names(&found), ["users/alice"]);
    let (status, _) = find(&server, web3, r#"{"pattern": "*", "host": "web4"}"#);
    assert_eq!(status, 403);
    let (status, found) = find(&server, admin, r#"{"pattern": "*"}"#);
    assert_eq!(status, 200);
    assert_eq!(found.len(), 2);
}

#[test]
fn records_are_spooled_while_the_server_is_down_and_delivered_once() {
    let f = Fixture::new();
    f.write("etc/sources/sql.yml", SQL_SOURCE);
    let agent = |url: &str| {
        f.write(
            "etc/agent.yml",
            &format!(
                "hostname: test-host\n{}metadb:\n  url: {url}\n  request_max_timeout: 10s\n",
                f.repository_yaml()
            ),
        );
    };
    agent(&format!("http://{}", closed_port()));
    // The repository exists: creating one would take the metadb's lease.
    f.restic(&["init"]).success();
    let run = f.tabacco(&["run"]).success();
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one warning: {}", run.stderr);
    assert!(
        lines[0].starts_with("tabacco: warning: metadb unavailable"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("spooled in"), "{}", lines[0]);
    let spooled = |f: &Fixture| {
        std::fs::read_dir(f.path("work/spool"))
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().ends_with(".json")
            })
            .count()
    };
    assert_eq!(spooled(&f), 3, "two datasets and the attempt");

    // query says how much is waiting, then fails: there is no metadb.
    let query = f.tabacco(&["query", "--json", "*"]).status(1);
    assert!(
        query
            .stderr
            .starts_with("tabacco: warning: 3 records wait in "),
        "{}",
        query.stderr
    );

    let server = Server::start(&metadb_config(&f, ""), "127.0.0.1:0");
    agent(&server.url());
    let query = f.tabacco(&["query", "--json", "*"]).success();
    assert_eq!(query.stderr, "", "delivered before the query");
    let backups: Vec<serde_json::Value> = serde_json::from_str(&query.stdout).unwrap();
    let mut names = atom_names(&backups);
    names.sort();
    assert_eq!(names, ["sql/db1", "sql/db2"]);
    assert_eq!(spooled(&f), 0);
    let (status, history) = server.request("POST", "/api/history", None, "{}");
    assert_eq!(status, 200);
    let attempts: Vec<serde_json::Value> = serde_json::from_str(&history).unwrap();
    assert_eq!(attempts.len(), 1, "the spooled attempt: {history}");
    assert_eq!(
        (&attempts[0]["state"], attempts[0]["datasets"].as_u64()),
        (&"ok".into(), Some(2))
    );

    f.tabacco(&["run"]).success();
    f.tabacco(&["query", "*"]).success();
    assert_eq!(
        dataset_count(&f.path("metadb/db.sqlite")),
        4,
        "each delivered once"
    );
    let (_, metrics) = server.request("GET", "/metrics", None, "");
    assert!(
        metrics.contains(
            "tabacco_metadb_requests_total{endpoint=\"/api/add_dataset\",status=\"200\"} 4"
        ),
        "{metrics}"
    );
}

#[test]
fn a_refused_record_is_an_error_not_spooled() {
    let f = Fixture::new();
    f.write("etc/other.token", "other-secret");
    let config = metadb_config(
        &f,
        &format!(
            "tokens:\n  - {{token_file: {}, host: other-host}}\n",
            f.path("etc/other.token").display()
        ),
    );
    let server = Server::start(&config, "127.0.0.1:0");
    f.write(
        "etc/agent.yml",
        &format!(
            "hostname: test-host\n{}metadb:\n  url: {}\n  token_file: {}\n",
            f.repository_yaml(),
            server.url(),
            f.path("etc/other.token").display()
        ),
    );
    f.write("etc/sources/sql.yml", SQL_SOURCE);
    let run = f.tabacco(&["run"]).status(1);
    assert!(run.stderr.contains("refused (403)"), "{}", run.stderr);
    assert!(!run.stderr.contains("other-secret"), "{}", run.stderr);
    assert!(
        !f.path("work/spool").exists()
            || std::fs::read_dir(f.path("work/spool")).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".json"))
    );
}

#[test]
fn concurrent_writers_all_land() {
    let f = Fixture::new();
    let server = Server::start(&metadb_config(&f, ""), "127.0.0.1:0");
    let addr = server.addr;
    let writers: Vec<_> = (0..8)
        .map(|w| std::thread::spawn(move || record_datasets(addr, w, 25, 5)))
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(dataset_count(&f.path("metadb/db.sqlite")), 200);
    let (_, found) = find(
        &server,
        None,
        r#"{"pattern": "users/u0", "num_versions": 100}"#,
    );
    assert_eq!(found.len(), 8);

    // And through the real client: hosts running backups at once.
    let hosts: Vec<Fixture> = (0..4)
        .map(|i| {
            let host = Fixture::new();
            host.write(
                "etc/agent.yml",
                &format!(
                    "hostname: host-{i}\n{}metadb:\n  url: {}\n",
                    host.repository_yaml(),
                    server.url()
                ),
            );
            host.write("etc/sources/sql.yml", SQL_SOURCE);
            host
        })
        .collect();
    std::thread::scope(|scope| {
        for host in &hosts {
            scope.spawn(|| assert_eq!(host.tabacco(&["run"]).success().stderr, ""));
        }
    });
    assert_eq!(dataset_count(&f.path("metadb/db.sqlite")), 208);
    let (_, found) = find(
        &server,
        None,
        r#"{"pattern": "sql/db1", "num_versions": 10}"#,
    );
    let mut hosts_found: Vec<&str> = found.iter().map(|b| b["host"].as_str().unwrap()).collect();
    hosts_found.sort();
    assert_eq!(hosts_found, ["host-0", "host-1", "host-2", "host-3"]);
}

/// With every worker writing on its own connection, SQLite's checkpoints
/// never found a moment without a reader on an older snapshot, and the WAL
/// grew by about 10 kB per record (1 GB after 100,000): writes now go
/// through one connection, and the WAL stays near its 4 MB checkpoint size.
#[test]
fn the_wal_stays_small_under_concurrent_writers() {
    let f = Fixture::new();
    let server = Server::start(&metadb_config(&f, ""), "127.0.0.1:0");
    let addr = server.addr;
    std::thread::scope(|scope| {
        for w in 0..8 {
            scope.spawn(move || record_datasets(addr, w, 400, 1));
        }
    });
    let wal = std::fs::metadata(f.path("metadb/db.sqlite-wal")).map_or(0, |m| m.len());
    assert!(wal < 6 << 20, "WAL of {wal} bytes after 3,200 records");
    assert_eq!(dataset_count(&f.path("metadb/db.sqlite")), 3200);
}

#[test]
fn kill_9_under_load_leaves_a_sound_database() {
    let f = Fixture::new();
    let config = metadb_config(&f, "");
    let server = Server::start(&config, "127.0.0.1:0");
    let addr = server.addr;
    let acked = Arc::new(Mutex::new(0i64));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (acked, stop) = (acked.clone(), stop.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) || i > 100_000 {
                        break;
                    }
                    let body = add_dataset_body(&format!("b{w}-{i}"), "h", &format!("d{w}-{i}"), "u/a");
                    let Ok(mut stream) = TcpStream::connect(addr) else { break };
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let head = format!(
                        "POST /api/add_dataset HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    if stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body.as_bytes())).is_err() {
                        break;
                    }
                    let mut answer = String::new();
                    let _ = stream.read_to_string(&mut answer);
                    if answer.starts_with("HTTP/1.1 200") {
                        *acked.lock().unwrap() += 1;
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    server.signal(libc::SIGKILL);
    let (code, _) = server.wait();
    assert_eq!(code, None, "killed by a signal");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let acked = *acked.lock().unwrap();
    assert!(acked > 0, "no write was acknowledged before the kill");

    let db = f.path("metadb/db.sqlite");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }
    // Every acknowledged write survived the crash.
    assert!(
        dataset_count(&db) >= acked,
        "{} < {acked}",
        dataset_count(&db)
    );
    let server = Server::start(&config, "127.0.0.1:0");
    assert_eq!(server.request("GET", "/healthz", None, "").0, 200);
    let (status, found) = find(&server, None, r#"{"pattern": "u/a", "num_versions": 1}"#);
    assert_eq!((status, found.len()), (200, 1));
}

#[test]
fn sigterm_finishes_cleanly_and_sighup_reloads_tokens() {
    let f = Fixture::new();
    f.write("etc/a.token", "token-a");
    f.write("etc/b.token", "token-b");
    let tokens = |names: &[&str]| {
        let mut yaml = String::from("tokens:\n");
        for n in names {
            yaml.push_str(&format!(
                "  - {{token_file: {}, host: {n}}}\n",
                f.path(&format!("etc/{n}.token")).display()
            ));
        }
        yaml
    };
    let config = metadb_config(&f, &tokens(&["a"]));
    let server = Server::start(&config, "127.0.0.1:0");
    let status = |token: &str| server.request("GET", "/api/active_jobs", Some(token), "").0;
    assert_eq!((status("token-a"), status("token-b")), (200, 401));

    metadb_config(&f, &tokens(&["a", "b"]));
    server.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while status("token-b") != 200 {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the tokens"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A bad configuration keeps the tokens in force.
    f.write("etc/metadb.yml", "bogus: 1\n");
    server.signal(libc::SIGHUP);
    server.daemon.wait_for(
        "keeping the previous configuration",
        Duration::from_secs(10),
    );
    assert_eq!(status("token-b"), 200);

    server.signal(libc::SIGTERM);
    let (code, stderr) = server.wait();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
}

#[test]
fn configuration_errors_exit_2() {
    let f = Fixture::new();
    let run = |config: &Path, addr: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_tabacco"))
            .args(["metadb", "--config"])
            .arg(config)
            .args(["--http-addr", addr])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let config = f.write("etc/bad.yml", "db_path: /tmp/x.db\nmax_body: 5\n");
    let (code, stderr) = run(&config, "127.0.0.1:0");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("bad.yml:"), "{stderr}");
    assert!(stderr.contains("unknown field `max_body`"), "{stderr}");

    let config = metadb_config(&f, "");
    let (code, stderr) = run(&config, "0.0.0.0:0");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without tokens"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// Runs `program args` in `dir`, asserting success.
fn sh(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{program} {args:?}: {out:?}");
}

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A CA, a server certificate for localhost and a client certificate, in `dir`.
fn certificates(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let openssl = |args: &[&str]| sh(dir, "openssl", args);
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, cn) in [("metadb", "localhost"), ("agent", "test-host")] {
        let (key, csr, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &key,
            "-out",
            &csr,
        ]);
        let ext = if name == "metadb" {
            "server.ext"
        } else {
            "client.ext"
        };
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            ext,
            "-out",
            &crt,
        ]);
    }
}

/// nginx with contrib/metadb-nginx.conf, stopped when dropped.
struct Nginx {
    prefix: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let conf = self.prefix.join("nginx.conf");
        let _ = Command::new("nginx")
            .arg("-p")
            .arg(&self.prefix)
            .arg("-c")
            .arg(&conf)
            .args(["-s", "stop"])
            .output();
    }
}

#[test]
fn tls_and_mtls_through_the_contrib_nginx_example() {
    if !installed("nginx") || !installed("openssl") {
        eprintln!("skipping the nginx example test: nginx or openssl is not installed");
        return;
    }
    let f = Fixture::new();
    let tls = f.path("tls");
    certificates(&tls);
    f.write("etc/agent.token", "agent-secret\n");
    let config = metadb_config(
        &f,
        &format!(
            "tokens:\n  - {{token_file: {}, host: test-host}}\n",
            f.path("etc/agent.token").display()
        ),
    );
    let server = Server::start(&config, "127.0.0.1:0");
    let port = closed_port().port();
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/metadb-nginx.conf"),
    )
    .unwrap();
    let tls_dir = tls.display().to_string();
    let site: String = example
        .replace("127.0.0.1:5333", &server.addr.to_string())
        .replace("listen 5332 ssl;", &format!("listen 127.0.0.1:{port} ssl;"))
        .replace(
            "/etc/tabacco/tls/agents-ca.crt",
            &format!("{tls_dir}/ca.crt"),
        )
        .replace("/etc/tabacco/tls/", &format!("{tls_dir}/"))
        .lines()
        .filter(|l| !l.contains("listen [::]"))
        .map(|l| format!("{l}\n"))
        .collect();
    let prefix = f.path("nginx");
    for dir in ["logs", "tmp"] {
        std::fs::create_dir_all(prefix.join(dir)).unwrap();
    }
    let p = prefix.display();
    std::fs::write(prefix.join("site.conf"), site).unwrap();
    std::fs::write(
        prefix.join("nginx.conf"),
        format!(
            "pid {p}/nginx.pid;\nerror_log {p}/logs/error.log;\nevents {{}}\nhttp {{\n  access_log {p}/logs/access.log;\n  client_body_temp_path {p}/tmp/body;\n  proxy_temp_path {p}/tmp/proxy;\n  fastcgi_temp_path {p}/tmp/fcgi;\n  uwsgi_temp_path {p}/tmp/uwsgi;\n  scgi_temp_path {p}/tmp/scgi;\n  include {p}/site.conf;\n}}\n"
        ),
    )
    .unwrap();
    sh(
        &prefix,
        "nginx",
        &["-p", &p.to_string(), "-c", &format!("{p}/nginx.conf")],
    );
    let _nginx = Nginx {
        prefix: prefix.clone(),
    };

    let agent = |tls_yaml: &str| {
        f.write(
            "etc/agent.yml",
            &format!(
                "hostname: test-host\n{}metadb:\n  url: https://localhost:{port}\n  token_file: {}\n{tls_yaml}",
                f.repository_yaml(),
                f.path("etc/agent.token").display()
            ),
        );
    };
    agent(&format!(
        "  tls: {{ca: {tls_dir}/ca.crt, cert: {tls_dir}/agent.crt, key: {tls_dir}/agent.key}}\n"
    ));
    f.write("etc/sources/sql.yml", SQL_SOURCE);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    f.tabacco(&["run"]).success();
    let mut names = atom_names(&f.query(&["*"]));
    names.sort();
    assert_eq!(names, ["sql/db1", "sql/db2"]);

    // Without the client certificate nginx refuses the connection's requests.
    agent(&format!("  tls: {{ca: {tls_dir}/ca.crt}}\n"));
    let query = f.tabacco(&["query", "*"]).status(1);
    assert!(
        query.stderr.contains("refused (400)")
            && query.stderr.contains("No required SSL certificate"),
        "{}",
        query.stderr
    );
    // Without the CA the server's certificate is not trusted.
    agent("");
    let query = f.tabacco(&["query", "*"]).status(1);
    assert!(query.stderr.contains("UnknownIssuer"), "{}", query.stderr);
    assert!(!query.stderr.contains("agent-secret"));
}

#[test]
fn slow_clients_do_not_stall_the_workers() {
    let f = Fixture::new();
    let server = Server::start(&metadb_config(&f, ""), "127.0.0.1:0");
    // More clients than workers, each announcing a body it never sends.
    let slow: Vec<TcpStream> = (0..12)
        .map(|_| {
            let mut stream = TcpStream::connect(server.addr).unwrap();
            stream
                .write_all(
                    b"POST /api/add_dataset HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n{",
                )
                .unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let body = add_dataset_body("b1", "h", "d1", "users/alice");
    assert_eq!(
        server.request("POST", "/api/add_dataset", None, &body).0,
        200
    );
    assert_eq!(server.request("GET", "/healthz", None, "").0, 200);
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(slow);
    // Their bodies ended early: malformed, and the server goes on.
    assert_eq!(server.request("GET", "/healthz", None, "").0, 200);
}

#[test]
fn a_spooled_record_the_metadb_refuses_is_set_aside() {
    let f = Fixture::new();
    let server = Server::start(&metadb_config(&f, ""), "127.0.0.1:0");
    agent_through(&f, &server);
    let recorded = add_dataset_body("b1", "test-host", "d1", "users/alice");
    assert_eq!(
        server
            .request("POST", "/api/add_dataset", None, &recorded)
            .0,
        200
    );
    // d1 again, in another backup: a conflict, which no retry can cure; the
    // record behind it must still be delivered.
    f.write(
        "work/spool/1-conflict.json",
        &add_dataset_body("b2", "test-host", "d1", "users/alice"),
    );
    f.write(
        "work/spool/2-good.json",
        &add_dataset_body("b3", "test-host", "d3", "users/bob"),
    );
    let query = f.tabacco(&["query", "--json", "users/*"]).success();
    assert_eq!(query.stderr.lines().count(), 1, "{}", query.stderr);
    assert!(
        query
            .stderr
            .starts_with("tabacco: error: metadb: spooled record ")
            && query.stderr.contains("conflict")
            && query.stderr.contains("moved to"),
        "{}",
        query.stderr
    );
    assert!(f.path("work/spool/rejected/1-conflict.json").exists());
    assert!(!f.path("work/spool/2-good.json").exists());
    let backups: Vec<serde_json::Value> = serde_json::from_str(&query.stdout).unwrap();
    let mut names = atom_names(&backups);
    names.sort();
    assert_eq!(names, ["users/alice", "users/bob"]);
}

#[test]
fn tokens_on_a_public_address_come_with_a_warning() {
    let f = Fixture::new();
    let config = metadb_config(
        &f,
        "tokens: [{token_sha256: 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b, role: admin}]\n",
    );
    let server = Server::start(&config, "0.0.0.0:0");
    server
        .daemon
        .wait_for("tokens travel in clear", Duration::from_secs(10));
    let loopback = SocketAddr::from(([127, 0, 0, 1], server.addr.port()));
    let (status, _) = http(loopback, "GET", "/api/active_jobs", Some("secret"), b"");
    assert_eq!(status, 200);
}

#[test]
fn restore_requests_and_verifications_over_http() {
    let f = Fixture::new();
    let config = fleet_config(&f, "", &["web3", "web4"]);
    let server = Server::start(&config, "127.0.0.1:0");
    let (web3, web4, admin) = (Some("web3-secret"), Some("web4-secret"), Some("secret"));
    let item: serde_json::Value =
        serde_json::from_str(&add_dataset_body("b1", "web2", "d1", "users/alice")).unwrap();
    let request = serde_json::json!({"id": "r1", "host": "web3", "items": [item]}).to_string();

    let post = "/api/restore_requests";
    assert_eq!(server.request("POST", post, web3, &request).0, 403);
    let (status, text) = server.request("POST", post, admin, &request);
    assert_eq!(status, 200, "{text}");
    let stored: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(stored["state"], "pending");
    // Posting it again changes nothing.
    assert_eq!(server.request("POST", post, admin, &request).0, 200);

    let next = "/api/restore_requests/next";
    assert_eq!(server.request("GET", next, web4, "").0, 204);
    assert_eq!(
        server
            .request("GET", &format!("{next}?host=web3"), web4, "")
            .0,
        403
    );
    let (status, text) = server.request("GET", next, web3, "");
    assert_eq!(status, 200, "{text}");
    let picked: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (picked["id"].as_str(), picked["state"].as_str()),
        (Some("r1"), Some("running"))
    );
    assert_eq!(
        picked["items"][0]["dataset"]["atoms"][0]["name"],
        "users/alice"
    );
    assert_eq!(
        server.request("GET", next, web3, "").0,
        204,
        "handed out once"
    );

    let done = r#"{"state": "succeeded", "message": "1 atom restored"}"#;
    let status_path = "/api/restore_requests/r1/status";
    assert_eq!(server.request("POST", status_path, web4, done).0, 404);
    assert_eq!(server.request("POST", status_path, web3, done).0, 200);
    let bad = r#"{"state": "exploded"}"#;
    assert_eq!(server.request("POST", status_path, web3, bad).0, 400);
    let (status, text) = server.request("GET", "/api/restore_requests/r1", admin, "");
    assert_eq!(status, 200);
    let read: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (read["state"].as_str(), read["message"].as_str()),
        (Some("succeeded"), Some("1 atom restored"))
    );
    assert_eq!(
        server
            .request("GET", "/api/restore_requests/r2", admin, "")
            .0,
        404
    );

    let verification = |host: &str| {
        serde_json::json!({"timestamp": "2024-05-01T00:00:00Z", "host": host, "atom": "users/alice",
            "backup_id": "b1", "ok": true, "message": "restored and compared"})
        .to_string()
    };
    assert_eq!(
        server
            .request("POST", "/api/verifications", web3, &verification("web4"))
            .0,
        403
    );
    assert_eq!(
        server
            .request("POST", "/api/verifications", web3, &verification("web3"))
            .0,
        200
    );
}
