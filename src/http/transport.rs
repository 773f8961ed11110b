//! The transport: the accept loop (which outlives running out of
//! descriptors), the cap on open connections and the eviction of idle ones
//! to make room, a thread per connection, and the [`Transport`] that owns
//! them and stops them. Serving a connection is `connection`'s, what a
//! request means the [`Handler`]'s.

use super::connection;
use super::output::Spills;
use super::response::{encode, Body, Response};
use super::Handler;
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How much a client may hold of the server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Open connections at most.
    pub connections: usize,
    /// A kept-alive connection waiting for its next request is closed after
    /// this long.
    pub idle: Duration,
    /// A request must arrive whole, head and body, this long after its
    /// first byte; a client must take some of an answer as often.
    pub request: Duration,
}
/// Each connection's thread: enough for SQLite and serde_json.
const STACK_BYTES: usize = 1 << 20;
/// How often a warning about a flood is logged at most.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// How long accepting waits when descriptors run out.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Descriptors kept for everything but connections (a database, the
/// listener, the log, child processes) when the connection cap is derived
/// from the descriptor limit.
const RESERVED_DESCRIPTORS: u64 = 64;

/// How many connections may be open: what the descriptor limit leaves after
/// [`RESERVED_DESCRIPTORS`], at least 16 and at most `most`.
pub fn connection_cap(most: u64) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        1024
    };
    let cap = soft.saturating_sub(RESERVED_DESCRIPTORS).clamp(16, most);
    usize::try_from(cap).unwrap_or(16)
}

/// The open connections: their sockets (so that stopping, or making room,
/// can shut them down) and what each is doing.
#[derive(Default)]
struct Open {
    next_id: u64,
    connections: HashMap<u64, Conn>,
}

struct Conn {
    fd: RawFd,
    phase: Phase,
}

/// What a connection is doing, as far as making room goes. Only one that
/// waits between requests with nothing sent yet, or only lingers before
/// closing, may be closed to make room: its thread claims a request
/// ([`State::claim`]) before reading a byte of it, under the same lock, so
/// a request is never cut once begun (issue 26.7: one whose head was read
/// was closed as idle before its body arrived, and answered 400).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Between requests, since then.
    Waiting(Instant),
    /// Reading a request or writing its answer.
    Busy,
    /// Only reading out what the client still sends before closing, since
    /// then.
    Lingering(Instant),
    /// Closed to make room, or because the transport stops.
    Evicted,
}

/// What the accept loop and the connections share.
pub(super) struct State {
    /// The server's name, for thread names and the log.
    name: &'static str,
    open: Mutex<Open>,
    /// Set when [`Transport::stop`] begins: answers then close their
    /// connections.
    pub(super) stopping: AtomicBool,
    pub(super) limits: Limits,
    /// What streamed answers set aside for their slow clients.
    pub(super) spills: Spills,
}

impl State {
    fn open(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks connection `id` as waiting for a request, or lingering; either
    /// may be closed to make room.
    pub(super) fn set_phase(&self, id: u64, phase: Phase) {
        if let Some(conn) = self.open().connections.get_mut(&id) {
            if conn.phase != Phase::Evicted {
                conn.phase = phase;
            }
        }
    }

    /// Claims the request that connection `id` is about to read, so that
    /// it is not closed to make room; false if it was closed already.
    pub(super) fn claim(&self, id: u64) -> bool {
        match self.open().connections.get_mut(&id) {
            Some(conn) if conn.phase != Phase::Evicted => {
                conn.phase = Phase::Busy;
                true
            }
            _ => false,
        }
    }
}

/// A running transport: the accept thread and the connections it started.
pub struct Transport {
    state: Arc<State>,
    /// Kept here too, so that its descriptor stays valid for `stop` even
    /// when the accept thread has ended.
    listener: Arc<TcpListener>,
    accept: Option<JoinHandle<()>>,
}

/// Starts accepting on `listener`, serving each connection on a thread of
/// its own with `handler`. `fatal` is called if accepting ends while not
/// stopping. `name` (`metadb`, `http`) names the threads and starts the
/// log lines.
pub fn start(
    name: &'static str,
    listener: TcpListener,
    limits: Limits,
    handler: Arc<dyn Handler>,
    fatal: Arc<dyn Fn(String) + Send + Sync>,
) -> io::Result<Transport> {
    tune(name, &listener);
    let state = Arc::new(State {
        name,
        open: Mutex::new(Open::default()),
        stopping: AtomicBool::new(false),
        limits,
        spills: Spills::new(std::env::temp_dir()),
    });
    let listener = Arc::new(listener);
    let (thread_state, thread_listener) = (state.clone(), listener.clone());
    let accept = std::thread::Builder::new()
        .name(format!("{name}-accept"))
        .spawn(move || {
            let state = thread_state;
            let ended = catch_unwind(AssertUnwindSafe(|| {
                accept_loop(&thread_listener, &state, &handler)
            }));
            if !state.stopping.load(Ordering::SeqCst) {
                let why = match ended {
                    Ok(Err(e)) => format!("cannot accept connections: {e}"),
                    Ok(Ok(())) => "the accept loop ended".to_string(),
                    Err(_) => "the accept loop panicked".to_string(),
                };
                fatal(why);
            }
        })?;
    Ok(Transport {
        state,
        listener,
        accept: Some(accept),
    })
}

/// Sets the options that accepted connections inherit from the listener on
/// Linux: no Nagle delay (an answer goes out in several writes, and waiting
/// for the client's delayed ACK costs 40 ms), and keepalive probes, so that
/// the connection of a vanished client is closed in minutes, not hours.
fn tune(name: &str, listener: &TcpListener) {
    let fd = listener.as_raw_fd();
    let options = [
        (libc::IPPROTO_TCP, libc::TCP_NODELAY, 1),
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1),
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 60),
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 10),
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 6),
    ];
    for (level, option, value) in options {
        let value: libc::c_int = value;
        // SAFETY: `fd` is the listener's open socket, and the option value
        // is a c_int that lives across the call, with its exact size.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                level,
                option,
                std::ptr::from_ref(&value).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            log::debug!(
                "{name}: socket option {option}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

impl Transport {
    /// Stops accepting, lets requests in progress finish (closing idle
    /// connections at once), and waits for them at most `grace`.
    pub fn stop(mut self, grace: Duration) {
        self.state.stopping.store(true, Ordering::SeqCst);
        // SAFETY: the listener is open while `self` holds it; shutting down
        // its read side wakes `accept`.
        unsafe {
            libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RD);
        }
        if let Some(accept) = self.accept.take() {
            if accept.join().is_err() {
                log::error!("{}: the accept thread panicked", self.state.name);
            }
        }
        let deadline = Instant::now() + grace;
        loop {
            {
                let mut open = self.state.open();
                if open.connections.is_empty() {
                    return;
                }
                // Those between requests close now; a request begun is
                // read and answered, and then its connection closes.
                for conn in open.connections.values_mut() {
                    if matches!(conn.phase, Phase::Waiting(_) | Phase::Lingering(_)) {
                        conn.phase = Phase::Evicted;
                        // SAFETY: a connection's socket stays open while it
                        // is listed: its thread unlists it before closing
                        // it, under this lock. Its reads then end.
                        unsafe {
                            libc::shutdown(conn.fd, libc::SHUT_RD);
                        }
                    }
                }
            }
            if Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    state: &Arc<State>,
    handler: &Arc<dyn Handler>,
) -> io::Result<()> {
    // When each warning was last logged: floods log once a minute.
    let (mut warned_exhausted, mut warned_full) = (None::<Instant>, None::<Instant>);
    let due = |warned: &Option<Instant>| warned.is_none_or(|t| t.elapsed() > WARN_EVERY);
    loop {
        let (stream, _) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(_) if state.stopping.load(Ordering::SeqCst) => return Ok(()),
            Err(e) => match e.raw_os_error() {
                Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                    // The connection waits in the backlog until a
                    // descriptor is free again.
                    if due(&warned_exhausted) {
                        log::warn!("{}: cannot accept a connection: {e}; retrying", state.name);
                        warned_exhausted = Some(Instant::now());
                    }
                    std::thread::sleep(ACCEPT_BACKOFF);
                    continue;
                }
                Some(libc::ECONNABORTED | libc::EINTR | libc::EPROTO | libc::EPERM) => continue,
                _ => return Err(e),
            },
        };
        if state.stopping.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut open = state.open();
        if open.connections.len() >= state.limits.connections {
            if evict_idle(&mut open) {
                handler.count("evicted");
            } else {
                drop(open);
                handler.count("refused");
                if due(&warned_full) {
                    log::warn!(
                        "{}: {} connections open, none idle: refusing new ones",
                        state.name,
                        state.limits.connections
                    );
                    warned_full = Some(Instant::now());
                }
                refuse(stream);
                continue;
            }
        }
        open.next_id += 1;
        let id = open.next_id;
        open.connections.insert(
            id,
            Conn {
                fd: stream.as_raw_fd(),
                phase: Phase::Waiting(Instant::now()),
            },
        );
        let (thread_state, thread_handler) = (state.clone(), handler.clone());
        // Spawned under the lock: a thread that cannot start drops the
        // socket, which must be unlisted before anyone else can see it.
        let spawned = std::thread::Builder::new()
            .name(format!("{}-conn", state.name))
            .stack_size(STACK_BYTES)
            .spawn(move || {
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    connection::serve(&stream, id, &thread_state, &*thread_handler);
                }));
                if outcome.is_err() {
                    log::error!("{}: a connection thread panicked", thread_state.name);
                }
                // Unlisted before the socket closes, so that no one shuts
                // down a descriptor reused by then.
                thread_state.open().connections.remove(&id);
                drop(stream);
            });
        if let Err(e) = spawned {
            open.connections.remove(&id);
            log::error!(
                "{}: cannot start a thread for a connection: {e}",
                state.name
            );
        }
    }
}

/// Shuts down the read side of the connection idle longest, if any, so that
/// its thread ends; returns whether there was one. Idle: lingering before
/// closing, or waiting between requests with nothing sent yet (a request
/// that has arrived is about to be claimed).
fn evict_idle(open: &mut Open) -> bool {
    let mut idle: Vec<(Instant, u64, RawFd, bool)> = open
        .connections
        .iter()
        .filter_map(|(id, conn)| match conn.phase {
            Phase::Waiting(since) => Some((since, *id, conn.fd, false)),
            Phase::Lingering(since) => Some((since, *id, conn.fd, true)),
            Phase::Busy | Phase::Evicted => None,
        })
        .collect();
    idle.sort_unstable();
    // Input waiting: a request about to be claimed (asked of the oldest
    // first, one at a time).
    let chosen = idle
        .into_iter()
        .find(|&(_, _, fd, lingering)| lingering || !has_input(fd));
    let Some(conn) = chosen.and_then(|(_, id, _, _)| open.connections.get_mut(&id)) else {
        return false;
    };
    conn.phase = Phase::Evicted;
    // SAFETY: listed connections are open (see `Transport::stop`).
    unsafe {
        libc::shutdown(conn.fd, libc::SHUT_RD);
    }
    true
}

/// Whether socket `fd` has something to read (or has been closed by its
/// client) right now.
fn has_input(fd: RawFd) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd that lives across the call; a zero timeout does
    // not block.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready > 0
}

/// Answers a connection over the cap with 503 and closes it.
fn refuse(mut stream: TcpStream) {
    // A fresh connection's send buffer is empty: this does not block.
    let _ = stream.set_nonblocking(true);
    let response = Response {
        headers: vec![("Retry-After", "1".into())],
        ..Response::error(503, "too many connections")
    };
    let mut answer = encode(&response, true, false);
    if let Body::Full(body) = &response.body {
        answer.extend_from_slice(body.as_bytes());
    }
    let _ = stream.write_all(&answer);
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::http::Request;
    use std::io::Read;
    use std::sync::mpsc;

    /// Answers 200 once `release` lets it.
    pub(in crate::http) struct Gate {
        release: Mutex<mpsc::Receiver<()>>,
    }

    impl Handler for Gate {
        fn body_limit(&self) -> usize {
            1024
        }
        fn handle(&self, _: Request) -> Response<'_> {
            let _ = self
                .release
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(10));
            Response {
                status: 200,
                content_type: "text/plain",
                body: "ok".into(),
                headers: Vec::new(),
            }
        }
        fn count(&self, _: &'static str) {}
    }

    pub(in crate::http) fn gate() -> (Arc<Gate>, mpsc::Sender<()>) {
        let (release, gate) = mpsc::channel();
        let gate = Arc::new(Gate {
            release: Mutex::new(gate),
        });
        (gate, release)
    }

    pub(in crate::http) fn limits(connections: usize) -> Limits {
        Limits {
            connections,
            idle: Duration::from_secs(60),
            request: Duration::from_secs(30),
        }
    }

    /// A transport on a loopback port serving `handler` within `limits`.
    pub(in crate::http) fn serve(
        limits: Limits,
        handler: Arc<Gate>,
    ) -> (Transport, std::net::SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let fatal = Arc::new(|msg| panic!("{msg}"));
        let transport = start("test", listener, limits, handler, fatal).unwrap();
        (transport, addr)
    }

    pub(in crate::http) fn exchange(addr: std::net::SocketAddr, raw: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(raw).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    }

    #[test]
    fn a_listener_that_dies_is_fatal() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = listener.as_raw_fd();
        let (fatal, told) = mpsc::channel();
        let fatal = Mutex::new(fatal);
        let transport = start(
            "test",
            listener,
            limits(4),
            gate().0,
            Arc::new(move |msg| fatal.lock().unwrap().send(msg).unwrap()),
        )
        .unwrap();
        // SAFETY: the listener is open (the accept thread holds it).
        unsafe {
            libc::shutdown(fd, libc::SHUT_RD);
        }
        let msg = told.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(msg.starts_with("cannot accept connections"), "{msg}");
        transport.stop(Duration::ZERO);
    }

    #[test]
    fn connections_over_the_cap_are_refused_when_none_is_idle() {
        let (handler, release) = gate();
        let (transport, addr) = serve(limits(1), handler);
        let busy = std::thread::spawn(move || {
            exchange(addr, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        });
        std::thread::sleep(Duration::from_millis(300));
        let refused = exchange(addr, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(refused.starts_with("HTTP/1.1 503 "), "{refused}");
        release.send(()).unwrap();
        assert!(busy.join().unwrap().starts_with("HTTP/1.1 200 "));
        // An idle connection makes room.
        let idle = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        release.send(()).unwrap();
        let answer = exchange(addr, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
        drop(idle);
        transport.stop(Duration::from_secs(1));
    }

    // Issue 26.7: under connection churn, 2 of ~1,400 well-formed writes
    // were answered 400 ("the connection closed during the request
    // body"): a connection marked idle whose request had just arrived was
    // closed to make room before its thread marked it busy. One that has
    // input waiting is not taken for idle, however long it waited.
    #[test]
    fn a_connection_whose_request_has_arrived_is_not_closed_to_make_room() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut sending = TcpStream::connect(addr).unwrap();
        let (arrived, _) = listener.accept().unwrap();
        let _quiet = TcpStream::connect(addr).unwrap();
        let (waiting, _) = listener.accept().unwrap();
        let mut open = Open::default();
        let longest = Instant::now() - Duration::from_secs(10);
        for (id, socket, since) in [(1, &arrived, longest), (2, &waiting, Instant::now())] {
            let phase = Phase::Waiting(since);
            let fd = socket.as_raw_fd();
            open.connections.insert(id, Conn { fd, phase });
        }
        sending
            .write_all(b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(evict_idle(&mut open));
        assert!(open.connections[&1].phase == Phase::Waiting(longest));
        assert!(open.connections[&2].phase == Phase::Evicted);
        assert!(!evict_idle(&mut open), "none idle left");
    }

    // CI: a flood of oversized bodies, each answered 413 and lingering for
    // the rest of what its client sends, filled every slot with connections
    // that were only waiting to close, and a fresh request was refused.
    #[test]
    fn a_connection_lingering_after_its_last_answer_makes_room() {
        let (handler, release) = gate();
        release.send(()).unwrap();
        let (transport, addr) = serve(limits(1), handler);
        let mut lingering = TcpStream::connect(addr).unwrap();
        lingering
            .write_all(b"POST / HTTP/1.1\r\nContent-Length: 99999\r\n\r\n{")
            .unwrap();
        let mut refused = String::new();
        lingering.read_to_string(&mut refused).unwrap();
        assert!(refused.starts_with("HTTP/1.1 413 "), "{refused}");
        let answer = exchange(addr, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
        drop(lingering);
        transport.stop(Duration::from_secs(1));
    }
}
