//! The HTTP/1.1 transport of the metadb server and the agent's endpoint:
//! socket options, the accept loop, one thread per connection, request
//! parsing with limits and deadlines, and writing answers. What a request
//! means is the [`Handler`]'s (`metadb::route`, `agent::http`).
//!
//! This replaces tiny_http, which the metadb (facing every host of the
//! fleet) and the agent used: tiny_http's accept thread panics when
//! descriptors run out (the port is gone while the process lives on), it has no limit on connections,
//! header lines or time, it keeps a connection open after a 413 and reads
//! the rest of an oversized chunked body as further requests, and it
//! unfolds a header continued on the next line into a header of its own.
//! Here:
//!
//! - accepting never ends on running out of descriptors (it waits and
//!   retries); any other end of the accept loop is reported to `fatal`, so
//!   that the process exits and its service manager restarts it;
//! - at most [`Limits::connections`] are open; beyond that the connection idle
//!   longest (waiting for a request, or lingering after a refusal) is closed
//!   to make room, or, with none idle, the new one is answered 503 and
//!   closed;
//! - a connection idle for [`Limits::idle`] is closed, and a request must
//!   arrive whole within [`Limits::request`] of its first byte;
//! - the head is at most [`MAX_HEAD_BYTES`]; obsolete line folding, a
//!   `Transfer-Encoding` other than `chunked`, both it and
//!   `Content-Length`, or conflicting lengths are answered 400 and the
//!   connection closed: there is no telling where the next request would
//!   begin;
//! - every answer that ends a request early (400, 408, 413, 431, 503) says
//!   `Connection: close`, and nothing after it on that connection is read
//!   as a request;
//! - an answer too large to hold ([`Body::Stream`]) is written as it is
//!   made, in chunks of [`CHUNK_BYTES`] (HTTP/1.0: until the connection
//!   closes); if making it fails halfway, the connection is closed without
//!   the last chunk, so the client sees a truncated answer, not a short one.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
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
/// The request line and headers together, at most.
pub const MAX_HEAD_BYTES: usize = 32 << 10;
/// How many headers a request may have.
const MAX_HEADERS: usize = 100;
/// After an answer that closes the connection, what the client still sends
/// is read and dropped for this long, so that closing with unread data
/// (which resets the connection) does not destroy the answer in flight.
const LINGER: Duration = Duration::from_secs(2);
/// Each connection's thread: enough for SQLite and serde_json.
const STACK_BYTES: usize = 1 << 20;
/// How often a warning about a flood is logged at most.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// How long accepting waits when descriptors run out.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// The size of the chunks of a streamed answer, at most.
pub const CHUNK_BYTES: usize = 64 << 10;
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

/// One request, its body read in full.
pub struct Request {
    pub method: String,
    /// The request target: path and query.
    pub target: String,
    /// Names as sent; compare them ignoring case ([`Request::header`]).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the client wants the connection closed after the answer
    /// (`Connection: close`, or HTTP/1.0 without `keep-alive`).
    close: bool,
    /// HTTP/1.0, which knows no chunked encoding.
    http_1_0: bool,
}

impl Request {
    /// The value of the first header called `name`, ignoring case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// An answer.
pub struct Response<'a> {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Body<'a>,
    /// Further headers; `Connection: close` also closes the connection.
    pub headers: Vec<(&'static str, String)>,
}

/// The body of an answer: whole, or written as it is made.
pub enum Body<'a> {
    Full(String),
    /// Writes the body to the connection, from the connection's thread. An
    /// error ends the connection; the client sees the answer cut short.
    Stream(Box<Make<'a>>),
}

/// What writes a streamed body.
pub type Make<'a> = dyn FnOnce(&mut dyn Write) -> io::Result<()> + 'a;

impl From<String> for Body<'_> {
    fn from(text: String) -> Self {
        Body::Full(text)
    }
}

impl From<&str> for Body<'_> {
    fn from(text: &str) -> Self {
        Body::Full(text.to_string())
    }
}

impl Response<'_> {
    /// An error answer of the transport itself: `{"error": message}`.
    fn error(status: u16, message: &str) -> Response<'static> {
        Response {
            status,
            content_type: "application/json",
            body: serde_json::json!({ "error": message }).to_string().into(),
            headers: Vec::new(),
        }
    }
}

/// What serves the requests.
pub trait Handler: Send + Sync + 'static {
    /// The largest body taken now (the policy may change while running).
    fn body_limit(&self) -> usize;
    /// Answers `request`.
    fn handle(&self, request: Request) -> Response<'_>;
    /// Called once per connection the transport closed or refused early:
    /// `why` is `"refused"` (over the cap), `"evicted"` (idle, to make room),
    /// or `"timeout"`.
    fn count(&self, why: &'static str);
}

/// The open connections: their sockets (so that stopping, or making room,
/// can shut them down) and whether each waits idle for a request.
#[derive(Default)]
struct Open {
    next_id: u64,
    connections: HashMap<u64, Conn>,
}

struct Conn {
    fd: RawFd,
    /// Since when it waits for a request, if it does.
    idle_since: Option<Instant>,
}

struct State {
    /// The server's name, for thread names and the log.
    name: &'static str,
    open: Mutex<Open>,
    stopping: AtomicBool,
    limits: Limits,
}

impl State {
    fn open(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_idle(&self, id: u64, idle: bool) {
        if let Some(conn) = self.open().connections.get_mut(&id) {
            conn.idle_since = idle.then(Instant::now);
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
                let open = self.state.open();
                if open.connections.is_empty() {
                    return;
                }
                for conn in open.connections.values() {
                    // SAFETY: a connection's socket stays open while it is
                    // listed: its thread unlists it before closing it, under
                    // this lock. Reads then end, answers still go out.
                    unsafe {
                        libc::shutdown(conn.fd, libc::SHUT_RD);
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
                idle_since: Some(Instant::now()),
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
                    connection(&stream, id, &thread_state, &*thread_handler);
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
/// its thread ends; returns whether there was one.
fn evict_idle(open: &mut Open) -> bool {
    let oldest = open
        .connections
        .values_mut()
        .filter(|c| c.idle_since.is_some())
        .min_by_key(|c| c.idle_since);
    match oldest {
        Some(conn) => {
            // Not idle any more: it is on its way out.
            conn.idle_since = None;
            // SAFETY: listed connections are open (see `Transport::stop`).
            unsafe {
                libc::shutdown(conn.fd, libc::SHUT_RD);
            }
            true
        }
        None => false,
    }
}

/// Answers a connection over the cap with 503 and closes it.
fn refuse(mut stream: TcpStream) {
    // A fresh connection's send buffer is empty: this does not block.
    let _ = stream.set_nonblocking(true);
    let response = Response {
        headers: vec![("Retry-After", "1".into())],
        ..Response::error(503, "too many connections")
    };
    let _ = stream.write_all(&encode(&response, true, false));
}

/// Why reading a request stopped.
enum Fail {
    /// The client closed, or the connection was shut down.
    Closed,
    Timeout,
    /// A line or the head over its limit.
    TooLong,
    Io(io::Error),
}

/// The connection's input, read with deadlines.
struct Input<'a> {
    stream: &'a TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    deadline: Instant,
}

impl Input<'_> {
    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Reads more, before the deadline.
    fn fill(&mut self) -> Result<(), Fail> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if self.end == self.buf.len() {
            return Err(Fail::TooLong);
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Fail::Timeout);
        }
        self.stream.set_read_timeout(Some(left)).map_err(Fail::Io)?;
        let mut stream = self.stream;
        match stream.read(&mut self.buf[self.end..]) {
            Ok(0) => Err(Fail::Closed),
            Ok(n) => {
                self.end += n;
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(Fail::Timeout)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(Fail::Io(e)),
        }
    }

    /// The next line, without its line end; at most the buffer's size.
    fn line(&mut self) -> Result<Vec<u8>, Fail> {
        loop {
            if let Some(i) = self.buf[self.start..self.end]
                .iter()
                .position(|b| *b == b'\n')
            {
                let mut line = self.buf[self.start..self.start + i].to_vec();
                self.start += i + 1;
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            self.fill()?;
        }
    }

    /// Appends the next `n` bytes to `out`.
    fn take(&mut self, mut n: usize, out: &mut Vec<u8>) -> Result<(), Fail> {
        while n > 0 {
            if self.is_empty() {
                self.fill()?;
            }
            let k = n.min(self.end - self.start);
            out.extend_from_slice(&self.buf[self.start..self.start + k]);
            self.start += k;
            n -= k;
        }
        Ok(())
    }
}

/// How a request that cannot be served ends its connection.
struct Refusal {
    status: u16,
    message: String,
}

fn refusal(status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

/// Serves the requests of one connection until it closes, idles out, or a
/// request cannot be read.
fn connection(stream: &TcpStream, id: u64, state: &State, handler: &dyn Handler) {
    let limits = state.limits;
    let _ = stream.set_write_timeout(Some(limits.request));
    let mut input = Input {
        stream,
        buf: vec![0; MAX_HEAD_BYTES / 2],
        start: 0,
        end: 0,
        deadline: Instant::now() + limits.idle,
    };
    loop {
        if input.is_empty() {
            input.deadline = Instant::now() + limits.idle;
            match input.fill() {
                Ok(()) => {}
                Err(Fail::Timeout) => {
                    handler.count("timeout");
                    return;
                }
                Err(_) => return,
            }
        }
        state.set_idle(id, false);
        input.deadline = Instant::now() + limits.request;
        let request = match read_request(&mut input, handler.body_limit()) {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(refused) => {
                if refused.status == 408 {
                    handler.count("timeout");
                }
                let response = Response::error(refused.status, &refused.message);
                if write(stream, response, true, false).is_ok() {
                    // Only waiting to close: the first to make room.
                    state.set_idle(id, true);
                    linger(stream);
                }
                return;
            }
        };
        // An answer to HEAD carries a body here: the client would take it
        // for the start of the next answer.
        let close = request.close || request.method == "HEAD";
        let http_1_0 = request.http_1_0;
        let response = handler.handle(request);
        let close = close
            || state.stopping.load(Ordering::SeqCst)
            || response
                .headers
                .iter()
                .any(|(n, v)| n.eq_ignore_ascii_case("Connection") && v == "close")
            // Without chunks, only closing ends a streamed answer.
            || (http_1_0 && matches!(response.body, Body::Stream(_)));
        if write(stream, response, close, !http_1_0).is_err() || close {
            return;
        }
        state.set_idle(id, true);
    }
}

/// Reads one request; `None` if the connection closed before one began.
fn read_request(input: &mut Input, limit: usize) -> Result<Option<Request>, Refusal> {
    let read_fail = |fail: Fail, what: &str| match fail {
        Fail::Timeout => refusal(408, format!("the {what} did not arrive in time")),
        Fail::TooLong => refusal(431, format!("{what} over {MAX_HEAD_BYTES} bytes")),
        Fail::Closed => refusal(400, format!("the connection closed during the {what}")),
        Fail::Io(e) => refusal(400, format!("cannot read the {what}: {e}")),
    };
    // Tolerate empty lines before a request (RFC 9112, 2.2).
    let mut line = Vec::new();
    for _ in 0..4 {
        line = match input.line() {
            Ok(line) => line,
            Err(Fail::Closed) => return Ok(None),
            Err(fail) => return Err(read_fail(fail, "request head")),
        };
        if !line.is_empty() {
            break;
        }
    }
    let mut head_bytes = line.len();
    let line = String::from_utf8(line).map_err(|_| refusal(400, "request line is not UTF-8"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refusal(400, "malformed request line"));
    };
    let http_1_0 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(refusal(505, "HTTP/1.0 and HTTP/1.1 only")),
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(refusal(400, "malformed method"));
    }
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(refusal(400, "malformed request target"));
    }

    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        let line = input
            .line()
            .map_err(|fail| read_fail(fail, "request head"))?;
        head_bytes += line.len() + 2;
        if head_bytes > MAX_HEAD_BYTES {
            return Err(refusal(
                431,
                format!("request head over {MAX_HEAD_BYTES} bytes"),
            ));
        }
        if line.is_empty() {
            break;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            // RFC 9112, 5.2: a server must refuse obsolete line folding or
            // replace it; joined wrongly it makes headers up.
            return Err(refusal(400, "obsolete line folding in the request head"));
        }
        if headers.len() == MAX_HEADERS {
            return Err(refusal(431, format!("over {MAX_HEADERS} headers")));
        }
        let line = String::from_utf8(line).map_err(|_| refusal(400, "header is not UTF-8"))?;
        let Some((name, value)) = line.split_once(':') else {
            return Err(refusal(400, "header without a colon"));
        };
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(token) {
            return Err(refusal(400, "malformed header name"));
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(refusal(400, "control character in a header"));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }

    let mut request = Request {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        body: Vec::new(),
        close: false,
        http_1_0,
    };
    let connection = |token: &str| {
        request
            .header("Connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    request.close = connection("close") || (http_1_0 && !connection("keep-alive"));
    let chunked = match request.header("Transfer-Encoding") {
        None => false,
        Some(te) if te.eq_ignore_ascii_case("chunked") => true,
        Some(te) => {
            return Err(refusal(
                501,
                format!("transfer encoding {te:?} is not supported (only chunked)"),
            ))
        }
    };
    let lengths: Vec<&str> = request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
        .map(|(_, v)| v.as_str())
        .collect();
    let length = match (chunked, lengths.as_slice()) {
        (_, []) => None,
        (true, _) => return Err(refusal(400, "both Transfer-Encoding and Content-Length")),
        (false, [first, rest @ ..]) => {
            if rest.iter().any(|v| v != first) || !first.bytes().all(|b| b.is_ascii_digit()) {
                return Err(refusal(400, "malformed Content-Length"));
            }
            Some(
                first
                    .parse::<u64>()
                    .map_err(|_| refusal(413, format!("request body over {limit} bytes")))?,
            )
        }
    };
    if chunked && http_1_0 {
        return Err(refusal(400, "chunked encoding in HTTP/1.0"));
    }
    let over = || refusal(413, format!("request body over {limit} bytes"));
    if length.is_some_and(|n| n > limit as u64) {
        return Err(over());
    }
    let expects = request
        .header("Expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects && !http_1_0 && (chunked || length.is_some_and(|n| n > 0)) {
        let mut stream = input.stream;
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    if let Some(n) = length {
        // At most `limit`, checked above.
        let n = usize::try_from(n).map_err(|_| over())?;
        input
            .take(n, &mut request.body)
            .map_err(|fail| read_fail(fail, "request body"))?;
    } else if chunked {
        read_chunked(input, limit, &mut request.body).map_err(|fail| match fail {
            Chunked::Over => over(),
            Chunked::Malformed(why) => refusal(400, why),
            Chunked::Read(fail) => read_fail(fail, "request body"),
        })?;
    }
    Ok(Some(request))
}

enum Chunked {
    Over,
    Malformed(&'static str),
    Read(Fail),
}

/// Reads a chunked body into `body`, refusing it past `limit` bytes.
fn read_chunked(input: &mut Input, limit: usize, body: &mut Vec<u8>) -> Result<(), Chunked> {
    loop {
        let line = input.line().map_err(Chunked::Read)?;
        let size = line.split(|b| *b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size)
            .ok()
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= 16)
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .ok_or(Chunked::Malformed("malformed chunk size"))?;
        if size == 0 {
            break;
        }
        let size = usize::try_from(size).map_err(|_| Chunked::Over)?;
        if body.len().saturating_add(size) > limit {
            return Err(Chunked::Over);
        }
        input.take(size, body).map_err(Chunked::Read)?;
        if !input.line().map_err(Chunked::Read)?.is_empty() {
            return Err(Chunked::Malformed("chunk longer than its size"));
        }
    }
    // Trailers are read and ignored.
    for _ in 0..MAX_HEADERS {
        if input.line().map_err(Chunked::Read)?.is_empty() {
            return Ok(());
        }
    }
    Err(Chunked::Malformed("too many trailers"))
}

/// Writes `response`; with `close`, says so. A streamed body goes in
/// chunks if `chunks`, else until the connection closes (`close` is set).
fn write(mut stream: &TcpStream, response: Response, close: bool, chunks: bool) -> io::Result<()> {
    stream.write_all(&encode(&response, close, chunks))?;
    let Body::Stream(make) = response.body else {
        return Ok(());
    };
    let mut out = Chunks {
        stream,
        buf: Vec::with_capacity(CHUNK_BYTES + 2),
        chunks,
    };
    make(&mut out)?;
    out.send()?;
    if chunks {
        stream.write_all(b"0\r\n\r\n")?;
    }
    Ok(())
}

/// Writes a streamed body, in chunks of up to [`CHUNK_BYTES`] (or as it
/// comes, without `chunks`).
struct Chunks<'a> {
    stream: &'a TcpStream,
    /// What is not written yet.
    buf: Vec<u8>,
    chunks: bool,
}

impl Chunks<'_> {
    /// Writes out what is buffered, as a chunk.
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut stream = self.stream;
        if self.chunks {
            stream.write_all(format!("{:x}\r\n", self.buf.len()).as_bytes())?;
            self.buf.extend_from_slice(b"\r\n");
        }
        stream.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

impl Write for Chunks<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK_BYTES - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK_BYTES {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

fn encode(response: &Response, close: bool, chunks: bool) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\n",
        response.status,
        reason(response.status),
        response.content_type,
    );
    match &response.body {
        Body::Full(body) => head.push_str(&format!("Content-Length: {}\r\n", body.len())),
        Body::Stream(_) if chunks => head.push_str("Transfer-Encoding: chunked\r\n"),
        Body::Stream(_) => {}
    }
    for (name, value) in &response.headers {
        if !name.eq_ignore_ascii_case("Connection") {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if let Body::Full(body) = &response.body {
        bytes.extend_from_slice(body.as_bytes());
    }
    bytes
}

/// Closes the sending side and drops what the client still sends for a
/// while, so that the answer arrives before the connection is reset.
fn linger(mut stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Answers 200 once `release` lets it.
    struct Gate {
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

    fn gate() -> (Arc<Gate>, mpsc::Sender<()>) {
        let (release, gate) = mpsc::channel();
        let gate = Arc::new(Gate {
            release: Mutex::new(gate),
        });
        (gate, release)
    }

    fn limits(connections: usize) -> Limits {
        Limits {
            connections,
            idle: Duration::from_secs(60),
            request: Duration::from_secs(30),
        }
    }

    /// A transport on a loopback port serving `handler` within `limits`.
    fn serve(limits: Limits, handler: Arc<Gate>) -> (Transport, std::net::SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let fatal = Arc::new(|msg| panic!("{msg}"));
        let transport = start("test", listener, limits, handler, fatal).unwrap();
        (transport, addr)
    }

    fn exchange(addr: std::net::SocketAddr, raw: &[u8]) -> String {
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

    #[test]
    fn kept_alive_pipelined_and_http_1_0_requests() {
        let (handler, release) = gate();
        for _ in 0..4 {
            release.send(()).unwrap();
        }
        let (transport, addr) = serve(limits(4), handler);
        let started = Instant::now();
        let answer = exchange(
            addr,
            b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nabGET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(answer.matches("HTTP/1.1 200 OK\r\n").count(), 3, "{answer}");
        let answer = exchange(addr, b"GET / HTTP/1.0\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
        assert!(answer.contains("Connection: close"), "{answer}");
        assert!(started.elapsed() < Duration::from_secs(5));
        transport.stop(Duration::from_secs(1));
    }

    #[test]
    fn idle_and_slow_connections_are_closed_on_their_deadlines() {
        let limits = Limits {
            connections: 4,
            idle: Duration::from_millis(300),
            request: Duration::from_millis(600),
        };
        let (transport, addr) = serve(limits, gate().0);
        let started = Instant::now();
        assert_eq!(exchange(addr, b""), "");
        assert!(started.elapsed() < Duration::from_secs(5));
        let started = Instant::now();
        let answer = exchange(addr, b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab");
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
        assert!(answer.contains("Connection: close"), "{answer}");
        assert!(started.elapsed() >= Duration::from_millis(600));
        transport.stop(Duration::from_secs(1));
    }
}
