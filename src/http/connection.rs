//! One connection, served on its own thread: requests read in turn
//! within the idle and request deadlines, each answered, until the client
//! or an answer closes it; after a refusal, what the client still sends is
//! drained for a while so that the answer arrives. Between requests the
//! connection only waits for input; it claims the next request before
//! reading a byte of it, so that it is never closed to make room once a
//! request has begun (see `transport::Phase`). Reading a request is
//! `request`'s, writing an answer `response`'s and `output`'s.

use super::input::{Fail, Input};
use super::output::Output;
use super::request::{read_request, MAX_HEAD_BYTES};
use super::response::{write, Body, Response};
use super::transport::{Phase, State};
use super::Handler;
use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// After an answer that closes the connection, what the client still sends
/// is read and dropped for this long, so that closing with unread data
/// (which resets the connection) does not destroy the answer in flight.
const LINGER: Duration = Duration::from_secs(2);

/// Serves the requests of one connection until it closes, idles out, or a
/// request cannot be read.
pub(super) fn serve(stream: &TcpStream, id: u64, state: &State, handler: &dyn Handler) {
    let limits = state.limits;
    let mut input = Input::new(stream, MAX_HEAD_BYTES / 2, Instant::now() + limits.idle);
    loop {
        if input.is_empty() {
            match wait_for_input(stream, Instant::now() + limits.idle) {
                Ok(()) => {}
                Err(Fail::Timeout) => {
                    handler.count("timeout");
                    return;
                }
                Err(_) => return,
            }
        }
        // Closed to make room (or stopping) while it waited.
        if !state.claim(id) {
            return;
        }
        input.deadline = Instant::now() + limits.request;
        let request = match read_request(&mut input, handler.body_limit()) {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(refused) => {
                if refused.status == 408 {
                    handler.count("timeout");
                }
                let response = Response::error(refused.status, &refused.message);
                let mut out = Output::new(stream, &state.spills, limits.request);
                if write(&mut out, response, true, false).is_ok() {
                    // Only waiting to close: the first to make room.
                    state.set_phase(id, Phase::Lingering(Instant::now()));
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
            || response.closes()
            // Without chunks, only closing ends a streamed answer.
            || (http_1_0 && matches!(response.body, Body::Stream(_)));
        let mut out = Output::new(stream, &state.spills, limits.request);
        if write(&mut out, response, close, !http_1_0).is_err() || close {
            return;
        }
        state.set_phase(id, Phase::Waiting(Instant::now()));
        if state.stopping.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// Waits until `stream` has something to read (or is closed), at most
/// until `deadline`, without reading it.
fn wait_for_input(stream: &TcpStream, deadline: Instant) -> Result<(), Fail> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Fail::Timeout);
        }
        let mut poll = libc::pollfd {
            fd: stream.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: one pollfd that lives across the call, on a socket open
        // while `stream` is borrowed.
        match unsafe { libc::poll(&mut poll, 1, millis) } {
            0 => {}
            n if n > 0 => return Ok(()),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(Fail::Io(e));
                }
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use crate::http::transport::tests::{exchange, gate, limits, serve};
    use crate::http::Limits;
    use std::time::{Duration, Instant};

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
