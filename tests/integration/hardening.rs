//! The metadb against hostile clients and exhaustion (issue 20): what the
//! server refuses, that it keeps serving, and that no record it hands out
//! can crash the CLI of another host.

use crate::common::Fixture;
use crate::metadb::{add_dataset_body, agent_through, http, metadb_config, Server};
use serde_json::json;

/// A valid add_dataset body with `change` applied to it.
fn record(change: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut body: serde_json::Value =
        serde_json::from_str(&add_dataset_body("b1", "web3", "d1", "users/alice")).unwrap();
    change(&mut body);
    body.to_string()
}

// Issue 20.3: any host token could record an atom named `zz/` + 65,533 ×
// `c`, and `query --table` and `restore --dry-run` on every other host then
// panicked ("Formatting argument out of range", exit 101).
#[test]
fn a_huge_or_hostile_record_does_not_crash_the_cli() {
    let f = Fixture::new();
    let server = Server::start(&metadb_config(&f, ""), "127.0.0.1:0");
    agent_through(&f, &server);
    let (status, text) = server_request(&server, &add_dataset_body("b1", "h", "d1", "zz/ok"));
    assert_eq!(status, 200, "{text}");
    // Written behind the server's back, as a server of an older release
    // would have taken them.
    let long = format!("zz/{}", "c".repeat(65_533));
    let conn = rusqlite::Connection::open(f.path("metadb/db.sqlite")).unwrap();
    for name in [long.as_str(), "zz/\u{1b}[2Jx\nforged row"] {
        conn.execute(
            "INSERT INTO atoms (host, dataset_id, name, path, timestamp)
             VALUES ('h', 'd1', ?1, ?1, 0)",
            [name],
        )
        .unwrap();
    }
    drop(conn);

    let query = f.tabacco(&["query", "--table", "*"]).success();
    assert!(
        query.stdout.lines().all(|l| l.len() < 4500),
        "{}",
        query.stdout
    );
    assert!(!query.stdout.contains('\u{1b}'), "{}", query.stdout);
    assert!(query.stdout.contains("zz/ccc"), "{}", query.stdout);
    assert_eq!(query.stdout.lines().count(), 4, "{}", query.stdout);

    let dir = f.path("restored");
    let plan = f
        .tabacco(&[
            "restore",
            "--dry-run",
            "--target",
            dir.to_str().unwrap(),
            "zz/*",
        ])
        .run();
    assert_ne!(plan.code, Some(101), "{}", plan.stderr);
    assert!(!plan.stderr.contains("panicked"), "{}", plan.stderr);
    assert!(
        plan.stdout.lines().all(|l| l.len() < 4500),
        "{}",
        plan.stdout
    );
}

fn server_request(server: &Server, body: &str) -> (u16, String) {
    http(
        server.addr,
        "POST",
        "/api/add_dataset",
        None,
        body.as_bytes(),
    )
}

// Issue 20.3 and 20.9: the server took any name, any length, negative
// statistics and times it cannot write back.
#[test]
fn the_server_refuses_records_the_agent_would_not_write() {
    let f = Fixture::new();
    let server = Server::start(&metadb_config(&f, ""), "127.0.0.1:0");
    let long = "c".repeat(5000);
    let refused: Vec<(&str, String)> = vec![
        (
            "long atom name",
            record(|r| r["dataset"]["atoms"][0]["name"] = json!(format!("users/{long}"))),
        ),
        (
            "atom name with a control character",
            record(|r| r["dataset"]["atoms"][0]["name"] = json!("users/a\u{7}b")),
        ),
        (
            "atom name with ..",
            record(|r| r["dataset"]["atoms"][0]["name"] = json!("users/../x")),
        ),
        (
            "source name",
            record(|r| r["dataset"]["source"] = json!("us;ers")),
        ),
        (
            "long host",
            record(|r| r["backup"]["host"] = json!(long.clone())),
        ),
        (
            "host with a newline",
            record(|r| r["backup"]["host"] = json!("web\n3")),
        ),
        (
            "backup id with a slash",
            record(|r| r["backup"]["id"] = json!("b/1")),
        ),
        (
            "long dataset id",
            record(|r| r["dataset"]["id"] = json!(long.clone())),
        ),
        (
            "long snapshot id",
            record(|r| r["dataset"]["snapshot_id"] = json!(long.clone())),
        ),
        (
            "long path",
            record(|r| r["dataset"]["atoms"][0]["path"] = json!(format!("/{}", "p".repeat(5000)))),
        ),
        (
            "negative bytes",
            record(|r| r["dataset"]["total_bytes"] = json!(-1)),
        ),
        (
            "negative files",
            record(|r| r["dataset"]["total_files"] = json!(-5)),
        ),
        (
            "negative duration",
            record(|r| r["dataset"]["duration"] = json!(-1.5)),
        ),
        (
            "year 10000",
            record(|r| r["backup"]["timestamp"] = json!("9999-12-31T23:30:00-01:00")),
        ),
    ];
    for (what, body) in &refused {
        let (status, text) = server_request(&server, body);
        assert_eq!(status, 400, "{what}: {text}");
        assert!(
            text.len() < 1000,
            "{what}: the refusal repeats the record: {text}"
        );
    }
    let (status, text) = server_request(&server, &record(|_| {}));
    assert_eq!(status, 200, "{text}");

    let verification = |atom: &str, message: &str| {
        json!({"timestamp": "2024-05-01T12:00:00Z", "host": "web3", "atom": atom,
               "backup_id": "b1", "ok": true, "message": message})
        .to_string()
    };
    for (body, want) in [
        (verification("users/alice", "fine"), 200),
        (verification("users/a\u{7}b", "fine"), 400),
        (verification("users/alice", &"m".repeat(70_000)), 400),
    ] {
        let (status, text) = http(
            server.addr,
            "POST",
            "/api/verifications",
            None,
            body.as_bytes(),
        );
        assert_eq!(status, want, "{text}");
    }
    // A glob SQLite cannot compile is the client's mistake.
    let pattern = format!("{}x", "[".repeat(60_000));
    let body = json!({ "pattern": pattern }).to_string();
    let (status, text) = http(
        server.addr,
        "POST",
        "/api/find_atoms",
        None,
        body.as_bytes(),
    );
    assert_eq!(status, 400, "{text}");
}

// Issue 20.6: ids with `/`, `?` or spaces were filed and carried out, and
// then stayed `running` for ever, since no status URL could name them.
#[test]
fn restore_request_ids_are_checked_or_made_by_the_server() {
    let f = Fixture::new();
    let server = Server::start(&metadb_config(&f, ""), "127.0.0.1:0");
    let item: serde_json::Value =
        serde_json::from_str(&add_dataset_body("b1", "web3", "d1", "users/alice")).unwrap();
    let request = |id: Option<&str>| {
        let mut r = json!({"host": "web3", "items": [item.clone()]});
        if let Some(id) = id {
            r["id"] = json!(id);
        }
        r.to_string()
    };
    let post = |body: String| {
        http(
            server.addr,
            "POST",
            "/api/restore_requests",
            None,
            body.as_bytes(),
        )
    };
    for bad in ["a/b", "a?b", "a b", "a%2fb", &"r".repeat(200)] {
        let (status, text) = post(request(Some(bad)));
        assert_eq!(status, 400, "{bad:?}: {text}");
    }
    let (status, text) = post(request(Some("r1")));
    assert_eq!(status, 200, "{text}");
    let mut ids = Vec::new();
    for body in [request(None), request(Some(""))] {
        let (status, text) = post(body);
        assert_eq!(status, 200, "{text}");
        let filed: serde_json::Value = serde_json::from_str(&text).unwrap();
        let id = filed["id"].as_str().unwrap().to_string();
        assert_eq!(filed["state"], "pending");
        let (status, text) = http(
            server.addr,
            "GET",
            &format!("/api/restore_requests/{id}"),
            None,
            b"",
        );
        assert_eq!(status, 200, "{id}: {text}");
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1]);
    assert!(!ids.contains(&"r1".to_string()));
}

/// Writes `raw` on a new connection and reads until the server closes it
/// (at most 10 s): everything the server answered.
fn exchange(server: &Server, raw: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(raw);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

// Issue 20.2: after a 413 for a chunked body over the limit, tiny_http kept
// the connection and served the bytes past the limit as requests of their
// own: a GET and a POST hidden in the body were answered.
#[test]
fn nothing_after_an_oversized_chunked_body_is_served() {
    let f = Fixture::new();
    let server = Server::start(&metadb_config(&f, "max_body_bytes: 1024\n"), "127.0.0.1:0");
    let hidden = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nPOST /api/add_dataset HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{}",
        add_dataset_body("b9", "h", "d9", "users/smuggled").len(),
        add_dataset_body("b9", "h", "d9", "users/smuggled")
    );
    let head = "POST /api/add_dataset HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    // One chunk over the limit, or small chunks that add up to more.
    let one_chunk = format!("{head}800\r\n{}\r\n0\r\n\r\n{hidden}", "x".repeat(0x800));
    let small = "100\r\n".to_string() + &"y".repeat(0x100) + "\r\n";
    let many_chunks = format!("{head}{}0\r\n\r\n{hidden}", small.repeat(5));
    let hidden_inside = format!(
        "{head}{:x}\r\n{hidden}{}\r\n0\r\n\r\n",
        hidden.len() + 1100,
        "z".repeat(1100)
    );
    for raw in [one_chunk, many_chunks, hidden_inside] {
        let answer = exchange(&server, raw.as_bytes());
        assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
        assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
        assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
    }
    let body = json!({"pattern": "users/*"}).to_string();
    let (status, text) = http(
        server.addr,
        "POST",
        "/api/find_atoms",
        None,
        body.as_bytes(),
    );
    assert_eq!((status, text.as_str()), (200, "[]"));
}

// Issue 20.2: a header continued on the next line (obsolete line folding)
// became a header of its own: an `Authorization` hidden in another header.
#[test]
fn obsolete_line_folding_is_refused() {
    let f = Fixture::new();
    let config = metadb_config(
        &f,
        // `printf %s secret | sha256sum`
        "tokens:\n  - {token_sha256: 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b, role: admin}\n",
    );
    let server = Server::start(&config, "127.0.0.1:0");
    let folded = "GET /api/active_jobs HTTP/1.1\r\nHost: x\r\nX-Note: hello\r\n Authorization: Bearer secret\r\nConnection: close\r\n\r\n";
    let answer = exchange(&server, folded.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("folding"), "{answer}");
    let plain = "GET /api/active_jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret\r\nConnection: close\r\n\r\n";
    assert!(exchange(&server, plain.as_bytes()).starts_with("HTTP/1.1 200 "));
    for bad in [
        "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n",
    ] {
        let answer = exchange(&server, bad.as_bytes());
        assert!(answer.starts_with("HTTP/1.1 400 "), "{bad:?}: {answer}");
        assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
    }
}

/// `tabacco metadb` started by `sh -c 'ulimit ...; exec ...'`.
pub(crate) fn start_limited(f: &Fixture, ulimit: &str) -> crate::common::Daemon {
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        &format!("ulimit {ulimit} && exec \"$0\" metadb --config \"$1\" --http-addr 127.0.0.1:0"),
        env!("CARGO_BIN_EXE_tabacco"),
    ])
    .arg(metadb_config(f, ""));
    crate::common::Daemon::spawn(cmd)
}

/// `/healthz` on a fresh connection: its status, or None if refused or
/// unanswered.
fn healthz(addr: std::net::SocketAddr) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split(' ').nth(1)?.parse().ok()
}

// Issue 20.1: with `ulimit -n 512`, ~270 idle connections (or ~240 bodies
// announcing 99999999999 bytes, each abandoned with two descriptors) made
// tiny_http's accept thread panic: the port was gone for good while the
// process lived on, so `Restart=on-failure` never fired.
#[test]
fn a_connection_flood_under_a_low_descriptor_limit_leaves_the_server_serving() {
    use std::io::Write;
    let f = Fixture::new();
    let daemon = start_limited(&f, "-n 128");
    let addr: std::net::SocketAddr = daemon.addr().parse().unwrap();
    let log = daemon.log();
    assert!(log.contains("at most 64 connections"), "{log}");
    serves_through_a_flood(&daemon, addr, |i, stream| {
        if i % 2 == 0 {
            let _ = stream.write_all(
                b"POST /api/add_dataset HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n{",
            );
        }
    });
}

/// Opens 400 connections to `addr`, each handed to `start` (with its
/// number) and left open, and asserts that `/healthz` answers during the
/// flood and after it, and that nothing panicked.
fn serves_through_a_flood(
    daemon: &crate::common::Daemon,
    addr: std::net::SocketAddr,
    mut start: impl FnMut(usize, &mut std::net::TcpStream),
) {
    let mut flood = Vec::new();
    for i in 0..400 {
        let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
            continue;
        };
        start(i, &mut stream);
        flood.push(stream);
    }
    // Fresh connections push out idle ones while the flood lasts.
    assert_eq!(healthz(addr), Some(200), "{}", daemon.log());
    drop(flood);
    let answered = crate::common::eventually(std::time::Duration::from_secs(10), || {
        (healthz(addr) == Some(200)).then_some(())
    });
    assert!(answered.is_some(), "{}", daemon.log());
    assert!(!daemon.log().contains("panicked"), "{}", daemon.log());
}

// Issue 20.1: the soft descriptor limit is raised to the hard one.
#[test]
fn the_soft_descriptor_limit_is_raised_to_the_hard_one() {
    let f = Fixture::new();
    let daemon = start_limited(&f, "-S -n 100");
    let log = daemon.wait_for("listening on ", std::time::Duration::from_secs(20));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", daemon.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[3], fields[4], "{line}");
    assert!(!log.contains("at most 36 connections"), "{log}");
}

// Issue 20.9: every scrape of /metrics scanned all datasets; eight
// scrapers slowed a find from 1 ms to 250 ms at 61,000 datasets. The
// database's gauges are now read at most every 5 s.
#[test]
fn metrics_reuse_what_they_read_of_the_database_for_a_few_seconds() {
    let f = Fixture::new();
    let server = Server::start(&metadb_config(&f, ""), "127.0.0.1:0");
    let gauge = "tabacco_metadb_last_backup_timestamp_seconds{host=\"web3\",source=\"users\"}";
    let scrape = || {
        let (status, text) = http(server.addr, "GET", "/metrics", None, b"");
        assert_eq!(status, 200);
        text
    };
    assert!(!scrape().contains(gauge));
    let (status, text) = server_request(&server, &record(|_| {}));
    assert_eq!(status, 200, "{text}");
    let started = std::time::Instant::now();
    let cached = scrape();
    if started.elapsed() < std::time::Duration::from_secs(4) {
        assert!(!cached.contains(gauge), "read afresh:\n{cached}");
    }
    let fresh = crate::common::eventually(std::time::Duration::from_secs(10), || {
        let text = scrape();
        text.contains(gauge).then_some(text)
    });
    assert!(fresh.is_some());
    assert!(started.elapsed() >= std::time::Duration::from_secs(4));
    crate::common::promtool_accepts(&scrape());
}

/// Shuts down, from outside, the socket `pid` listens on at `port`: a copy
/// of its descriptor (pidfd_getfd) shares the socket.
fn kill_listener(pid: u32, port: u16) {
    let pid = i32::try_from(pid).unwrap();
    // SAFETY: plain system calls on descriptors this function owns.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as i32;
        assert!(
            pidfd >= 0,
            "pidfd_open: {}",
            std::io::Error::last_os_error()
        );
        let mut found = false;
        for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
            let Ok(target) = std::fs::read_link(entry.as_ref().unwrap().path()) else {
                continue;
            };
            if !target.to_string_lossy().starts_with("socket:") {
                continue;
            }
            let n: i32 = entry
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let fd = libc::syscall(libc::SYS_pidfd_getfd, pidfd, n, 0) as i32;
            assert!(fd >= 0, "pidfd_getfd: {}", std::io::Error::last_os_error());
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let mut listening: libc::c_int = 0;
            let mut size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            libc::getsockname(fd, std::ptr::from_mut(&mut addr).cast(), &mut len);
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_ACCEPTCONN,
                std::ptr::from_mut(&mut listening).cast(),
                &mut size,
            );
            if listening == 1 && u16::from_be(addr.sin_port) == port {
                assert_eq!(libc::shutdown(fd, libc::SHUT_RD), 0);
                found = true;
            }
            libc::close(fd);
        }
        libc::close(pidfd);
        assert!(found, "no listening socket on port {port}");
    }
}

// Issue 20.1: a server that can no longer accept must exit non-zero, so
// that its service manager restarts it. (tiny_http did so on an accept
// error, but not when its accept thread panicked on EMFILE; the flood test
// above covers that case.)
#[test]
fn a_server_whose_listener_dies_exits_non_zero() {
    let f = Fixture::new();
    let server = Server::start(&metadb_config(&f, ""), "127.0.0.1:0");
    assert_eq!(healthz(server.addr), Some(200));
    kill_listener(server.pid(), server.addr.port());
    let (status, log) = server.wait();
    assert_eq!(status, Some(1), "{log}");
    assert!(log.contains("metadb server failed"), "{log}");
}

// The agent's `--http-addr` endpoint ran on tiny_http, whose accept
// thread panics when descriptors run out: under `ulimit -n 128`, a flood
// of idle connections left the endpoint dead while the agent ran on.
#[test]
fn a_connection_flood_under_a_low_descriptor_limit_leaves_the_agents_endpoint_serving() {
    let f = Fixture::new();
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        "ulimit -n 128 && exec \"$0\" --config \"$1\" agent --http-addr 127.0.0.1:0",
        env!("CARGO_BIN_EXE_tabacco"),
    ])
    .arg(f.config());
    let daemon = crate::common::Daemon::spawn(cmd);
    let addr: std::net::SocketAddr = daemon.addr().parse().unwrap();
    serves_through_a_flood(&daemon, addr, |_, _| {});
}
