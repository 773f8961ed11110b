//! A connection's input: its bytes buffered, read by lines or by count,
//! never past a deadline, and never more of a line than the buffer holds.
//! What the lines mean is `request`'s; which deadline applies is
//! `connection`'s.

use std::fmt;
use std::io::{self, Read};
use std::net::TcpStream;
use std::time::Instant;

/// Why reading stopped.
#[derive(Debug)]
pub(super) enum Fail {
    /// The client closed, or the connection was shut down.
    Closed,
    Timeout,
    /// A line or the head over its limit.
    TooLong,
    Io(io::Error),
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Fail::Closed => f.write_str("the connection closed"),
            Fail::Timeout => f.write_str("the deadline passed"),
            Fail::TooLong => f.write_str("a line over the buffer's size"),
            Fail::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Fail {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Fail::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// The connection's input, read with deadlines.
pub(super) struct Input<'a> {
    pub(super) stream: &'a TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Reading fails with [`Fail::Timeout`] from then on.
    pub(super) deadline: Instant,
}

impl<'a> Input<'a> {
    /// Reads `stream` through a buffer of `size` bytes, the longest line.
    pub(super) fn new(stream: &'a TcpStream, size: usize, deadline: Instant) -> Input<'a> {
        Input {
            stream,
            buf: vec![0; size],
            start: 0,
            end: 0,
            deadline,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Reads more, before the deadline.
    pub(super) fn fill(&mut self) -> Result<(), Fail> {
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
    pub(super) fn line(&mut self) -> Result<Vec<u8>, Fail> {
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
    pub(super) fn take(&mut self, mut n: usize, out: &mut Vec<u8>) -> Result<(), Fail> {
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::time::Duration;

    /// A loopback connection whose client has sent `raw` (from a thread of its
    /// own, so that it may exceed the socket's buffers) and then closed its
    /// sending side: the server's end.
    pub(in crate::http) fn sent(raw: Vec<u8>) -> TcpStream {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut client = client;
            let _ = client.write_all(&raw);
            let _ = client.shutdown(std::net::Shutdown::Write);
            // Kept open until the server is done reading.
            let _ = client.read_to_end(&mut Vec::new());
        });
        listener.accept().unwrap().0
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[test]
    fn lines_end_in_crlf_or_lf_and_counts_cross_reads() {
        let stream = sent(b"one\r\ntwo\n\r\nabcdefghij".to_vec());
        let mut input = Input::new(&stream, 8, soon());
        assert_eq!(input.line().unwrap(), b"one");
        assert_eq!(input.line().unwrap(), b"two");
        assert_eq!(input.line().unwrap(), b"");
        let mut body = Vec::new();
        input.take(10, &mut body).unwrap();
        assert_eq!(body, b"abcdefghij");
        assert!(input.is_empty());
        assert!(matches!(input.fill(), Err(Fail::Closed)));
    }

    #[test]
    fn a_line_longer_than_the_buffer_is_too_long() {
        let stream = sent(b"0123456789\n".to_vec());
        let mut input = Input::new(&stream, 8, soon());
        assert!(matches!(input.line(), Err(Fail::TooLong)));
    }

    #[test]
    fn nothing_is_read_past_the_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, _) = listener.accept().unwrap();
        let started = Instant::now();
        let deadline = started + Duration::from_millis(200);
        let mut input = Input::new(&stream, 8, deadline);
        assert!(matches!(input.line(), Err(Fail::Timeout)));
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(matches!(input.fill(), Err(Fail::Timeout)));
    }
}
