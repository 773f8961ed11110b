//! Fleet scale (issue 17): a find's answer streams from the metadb (chunked,
//! or close-delimited for HTTP/1.0) into `tabacco query`, which prints it as
//! it arrives and fails loudly on an answer cut short; finds restricted to a
//! host; and the hot copy an operator takes of a live metadb with the
//! sqlite3 shell, served by a second metadb.

use crate::common::Fixture;
use crate::metadb::{add_dataset_body, dechunk, http, metadb_config, Server};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Atoms of each host's one dataset: an answer of several chunks.
const ATOMS: usize = 1500;

/// A metadb where `web1` and `web2` each recorded one dataset of ATOMS
/// atoms, and `web2` a second one.
fn fleet(f: &Fixture) -> Server {
    let server = Server::start(&metadb_config(f, ""), "127.0.0.1:0");
    for (host, backup, time) in [
        ("web1", "b1", "2026-01-01T01:00:00Z"),
        ("web2", "b2", "2026-01-01T02:00:00Z"),
    ] {
        let atoms: Vec<Value> = (0..ATOMS)
            .map(|i| json!({"name": format!("svc/{host}/atom{i:05}")}))
            .collect();
        let body = json!({
            "backup": {"id": backup, "timestamp": time, "host": host},
            "dataset": {"id": format!("d-{backup}"), "source": "svc", "atoms": atoms,
                        "snapshot_id": "abcd1234"},
        });
        let (status, text) = server.request("POST", "/api/add_dataset", None, &body.to_string());
        assert_eq!(status, 200, "{text}");
    }
    let body = add_dataset_body("b3", "web2", "d-b3", "db/main");
    assert_eq!(
        server.request("POST", "/api/add_dataset", None, &body).0,
        200
    );
    server
}

/// One raw request; the whole answer, read until the server closes.
pub(crate) fn exchange(server: &Server, raw: &str) -> String {
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// An agent.yml whose metadb is at `url`.
fn client_config(f: &Fixture, url: &str) {
    f.write(
        "etc/agent.yml",
        &format!(
            "hostname: admin\n{}metadb:\n  url: {url}\n",
            f.repository_yaml()
        ),
    );
}

#[test]
fn a_find_answer_is_chunked_and_whole() {
    let f = Fixture::new();
    let server = fleet(&f);
    let body = r#"{"pattern": "svc/*", "num_versions": 1}"#;
    let raw = format!(
        "POST /api/find_atoms HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = exchange(&server, &raw);
    let (head, chunked) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(head.contains("\r\nTransfer-Encoding: chunked"), "{head}");
    assert!(!head.contains("Content-Length"), "{head}");
    assert!(chunked.starts_with("10000\r\n"), "a first chunk of 64 KiB");
    let found: Vec<Value> = serde_json::from_str(&dechunk(chunked)).unwrap();
    let ids: Vec<&str> = found.iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["b2", "b1"], "newest first");
    for b in &found {
        assert_eq!(b["datasets"][0]["atoms"].as_array().unwrap().len(), ATOMS);
    }

    // HTTP/1.0 knows no chunks: the answer ends with the connection.
    let raw = format!(
        "POST /api/find_atoms HTTP/1.0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = exchange(&server, &raw);
    let (head, plain) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(!head.contains("Transfer-Encoding"), "{head}");
    assert!(head.contains("\r\nConnection: close"), "{head}");
    let again: Vec<Value> = serde_json::from_str(plain).unwrap();
    assert_eq!(again, found);

    // A find that cannot be answered is refused before any answer begins.
    let (status, text) = http(
        server.addr,
        "POST",
        "/api/find_atoms",
        None,
        br#"{"pattern": "", "num_versions": 1}"#,
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("empty pattern"), "{text}");
}

#[test]
fn query_prints_a_streamed_answer_as_before() {
    let f = Fixture::new();
    let server = fleet(&f);
    client_config(&f, &server.url());

    let run = f.tabacco(&["query", "--json", "*"]).success();
    let found: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    let ids: Vec<&str> = found.iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["b2", "b1", "b3"]);
    // Printed element by element, laid out as the whole array pretty.
    assert!(
        run.stdout.starts_with("[\n  {\n    \"id\": \"b2\",\n"),
        "{}",
        &run.stdout[..100]
    );
    assert!(run.stdout.contains("\n  },\n  {\n    \"id\": \"b1\",\n"));
    assert!(run.stdout.ends_with("\n  }\n]\n"));

    let run = f.tabacco(&["query", "--json", "nothing/*"]).success();
    assert_eq!(run.stdout, "[]\n");

    // A table past its first batch of rows: every row, one header.
    let run = f
        .tabacco(&["query", "--table", "--host", "web2", "*"])
        .success();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1 + ATOMS + 1, "{}", &run.stdout[..200]);
    assert!(lines[0].starts_with("TIME "), "{}", lines[0]);
    assert!(lines[1].contains(" b2 "), "newest first: {}", lines[1]);
    assert!(
        lines[ATOMS + 1].contains(" db/main "),
        "{}",
        lines[ATOMS + 1]
    );
    assert!(lines.iter().skip(1).all(|l| l.contains(" web2 ")));
    // Columns keep the widths the first rows set.
    let column = |l: &str| l.find("svc/").or_else(|| l.find("db/"));
    assert!(lines[1..].iter().all(|l| column(l) == column(lines[1])));
}

// An answer cut short (the metadb failed halfway, or the connection broke)
// must not pass for a complete one: the last chunk never came.
#[test]
fn an_answer_cut_short_fails_the_query() {
    let f = Fixture::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let served = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let backup = json!({"id": "b1", "timestamp": "2026-01-01T00:00:00Z",
                "host": "web1", "datasets": []})
            .to_string();
            let part = format!("[{backup},");
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                 Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{part}\r\n",
                part.len()
            );
            served.store(true, Ordering::SeqCst);
        });
        client_config(&f, &format!("http://{addr}"));
        let run = f.tabacco(&["query", "--json", "*"]).status(1);
        assert!(run.stderr.contains("cut short"), "{}", run.stderr);
        assert!(!run.stdout.trim_end().ends_with(']'), "{}", run.stdout);
    });
    assert!(served.load(Ordering::SeqCst));
}

/// `sqlite3 ARGS`, which must succeed; its stdout.
fn sqlite3(args: &[&str]) -> String {
    let out = Command::new("sqlite3").args(args).output().unwrap();
    assert!(out.status.success(), "sqlite3 {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

// tabacco-metadb(8), SCALE AND AVAILABILITY: the hot copy an operator takes
// with `sqlite3 DB ".backup COPY"` while the metadb serves and records is
// sound, and a second metadb serves it.
#[test]
fn a_hot_copy_of_a_live_metadb_is_served_by_another() {
    let f = Fixture::new();
    let server = fleet(&f);
    let db = f.path("metadb/db.sqlite");
    let copy = f.path("standby/db.sqlite");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    let writing = AtomicBool::new(true);
    std::thread::scope(|s| {
        // Records keep arriving while the copy is taken.
        s.spawn(|| {
            let mut i = 0;
            while writing.load(Ordering::SeqCst) {
                let body = add_dataset_body(&format!("w{i}"), "web3", &format!("dw{i}"), "w/x");
                assert_eq!(
                    server.request("POST", "/api/add_dataset", None, &body).0,
                    200
                );
                i += 1;
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        sqlite3(&[
            db.to_str().unwrap(),
            &format!(".backup '{}'", copy.display()),
        ]);
        writing.store(false, Ordering::SeqCst);
    });
    assert_eq!(
        sqlite3(&[copy.to_str().unwrap(), "PRAGMA integrity_check"]),
        "ok"
    );

    let config = f.write(
        "standby/metadb.yml",
        &format!("db_path: {}\n", copy.display()),
    );
    let standby = Server::start(&config, "127.0.0.1:0");
    let body = r#"{"pattern": "svc/*", "num_versions": 1}"#;
    let (status, text) = standby.request("POST", "/api/find_atoms", None, body);
    assert_eq!(status, 200, "{text}");
    let found: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(found.len(), 2, "what was recorded before the copy");
    let (_, text) = standby.request("POST", "/api/find_atoms", None, r#"{"pattern": "w/x"}"#);
    let copied = serde_json::from_str::<Vec<Value>>(&text).unwrap().len();
    let (_, text) = server.request("POST", "/api/find_atoms", None, r#"{"pattern": "w/x"}"#);
    let live = serde_json::from_str::<Vec<Value>>(&text).unwrap().len();
    assert!(copied > 0 && copied <= live, "copied {copied} of {live}");
    // The standby takes records of its own.
    let body = add_dataset_body("s1", "web4", "ds1", "s/y");
    assert_eq!(
        standby.request("POST", "/api/add_dataset", None, &body).0,
        200
    );
}

// A rebuild into a metadb server sends its records over several
// connections at once (the server then syncs once per group): every
// snapshot must land, once, whichever connection carried it.
#[test]
fn reindex_into_a_metadb_server_records_every_snapshot() {
    let f = Fixture::new();
    f.restic(&["init"]).success();
    f.write("data/file", "x");
    let snapshots = 11;
    for i in 0..snapshots {
        let tags = format!(
            "tabacco,tabacco:backup=b{i},tabacco:source=svc,tabacco:dataset=d{i},tabacco:atom=svc/a{i}"
        );
        let host = format!("web{}", i % 3);
        let file = f.path("data/file");
        let file = file.to_str().unwrap();
        f.restic(&["backup", "-q", "--host", &host, "--tag", &tags, file])
            .success();
    }
    let server = Server::start(&metadb_config(&f, ""), "127.0.0.1:0");
    client_config(&f, &server.url());
    for _ in 0..2 {
        f.tabacco(&["reindex"]).success();
        let found = f.query(&["--versions", "10", "svc/*"]);
        let mut ids: Vec<&str> = found.iter().map(|b| b["id"].as_str().unwrap()).collect();
        ids.sort_unstable();
        let mut expected: Vec<String> = (0..snapshots).map(|i| format!("b{i}")).collect();
        expected.sort_unstable();
        assert_eq!(ids, expected, "each once, also after a second reindex");
    }
}
