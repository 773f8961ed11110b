//! Writing answers: a [`Response`]'s head, and its [`Body`], whole (with
//! its `Content-Length`) or streamed as it is made, in chunks of
//! [`CHUNK_BYTES`] (or, for HTTP/1.0, until the connection closes). When a
//! connection closes is `connection`'s to decide; this writes what it is
//! told, through an [`Output`], which keeps the answer's deadline and sets
//! aside what a streamed answer's client does not take at once.

use super::output::Output;
use std::io::{self, Write};
use std::sync::Arc;

/// The size of the chunks of a streamed answer, at most.
pub const CHUNK_BYTES: usize = 64 << 10;

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
    /// Whole, in pieces that other answers may share (a rendering kept for
    /// a while): written as they are, without a copy per connection.
    Pieces(Vec<Arc<str>>),
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
    pub(super) fn error(status: u16, message: &str) -> Response<'static> {
        Response {
            status,
            content_type: "application/json",
            body: serde_json::json!({ "error": message }).to_string().into(),
            headers: Vec::new(),
        }
    }

    /// Whether the handler asked for the connection to be closed after it.
    pub(super) fn closes(&self) -> bool {
        self.headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("Connection") && v == "close")
    }
}

/// Writes `response` to `out`; with `close`, says so. A streamed body
/// goes in chunks if `chunks`, else until the connection closes (`close`
/// is set).
pub(super) fn write(
    out: &mut Output,
    response: Response,
    close: bool,
    chunks: bool,
) -> io::Result<()> {
    out.write_all(&encode(&response, close, chunks))?;
    let make = match response.body {
        Body::Full(body) => return out.write_all(body.as_bytes()),
        Body::Pieces(pieces) => {
            for piece in pieces {
                out.write_all(piece.as_bytes())?;
            }
            return Ok(());
        }
        Body::Stream(make) => make,
    };
    out.making();
    let mut body = Chunks {
        stream: &mut *out,
        buf: Vec::with_capacity(CHUNK_BYTES + 2),
        chunks,
    };
    make(&mut body)?;
    body.send()?;
    out.made()?;
    if chunks {
        out.write_all(b"0\r\n\r\n")?;
    }
    Ok(())
}

/// Writes a streamed body, in chunks of up to [`CHUNK_BYTES`] (or as it
/// comes, without `chunks`).
struct Chunks<W: Write> {
    stream: W,
    /// What is not written yet.
    buf: Vec<u8>,
    chunks: bool,
}

impl<W: Write> Chunks<W> {
    /// Writes out what is buffered, as a chunk.
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if self.chunks {
            let size = format!("{:x}\r\n", self.buf.len());
            self.stream.write_all(size.as_bytes())?;
            self.buf.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

impl<W: Write> Write for Chunks<W> {
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

/// The head of `response`.
pub(super) fn encode(response: &Response, close: bool, chunks: bool) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\n",
        response.status,
        reason(response.status),
        response.content_type,
    );
    match &response.body {
        Body::Full(body) => head.push_str(&format!("Content-Length: {}\r\n", body.len())),
        Body::Pieces(pieces) => {
            let length: usize = pieces.iter().map(|p| p.len()).sum();
            head.push_str(&format!("Content-Length: {length}\r\n"));
        }
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
    head.into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        303 => "See Other",
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

    fn stream(make: impl FnOnce(&mut dyn Write) -> io::Result<()> + 'static) -> Response<'static> {
        Response {
            status: 200,
            content_type: "text/plain",
            body: Body::Stream(Box::new(make)),
            headers: vec![("Connection", "close".into()), ("X-A", "b".into())],
        }
    }

    /// What `write` sends to a client on a loopback socket.
    fn written(response: Response, close: bool, chunks: bool) -> (io::Result<()>, String) {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            client.read_to_string(&mut text).unwrap();
            text
        });
        let spills = crate::http::output::Spills::new(std::env::temp_dir());
        let mut out = Output::new(&server, &spills, std::time::Duration::from_secs(5));
        let result = write(&mut out, response, close, chunks);
        drop(out);
        drop(server);
        (result, reader.join().unwrap())
    }

    #[test]
    fn a_whole_answer_has_its_length_and_closes_only_when_told() {
        let response = Response {
            headers: vec![("Retry-After", "1".into())],
            ..Response::error(503, "too many connections")
        };
        let (result, text) = written(response, true, true);
        result.unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 32\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{\"error\":\"too many connections\"}"
        );
        let (_, text) = written(Response::error(799, "x"), false, true);
        assert!(text.starts_with("HTTP/1.1 799 \r\n"), "{text}");
        assert!(!text.contains("Connection"), "{text}");
    }

    /// The console's redirects to /signin went out as `HTTP/1.1 303 `, with
    /// no reason phrase.
    #[test]
    fn every_status_the_servers_send_has_its_reason() {
        let (_, text) = written(Response::error(303, "x"), false, true);
        assert!(text.starts_with("HTTP/1.1 303 See Other\r\n"), "{text}");
        let sent = [
            200, 204, 303, 400, 401, 403, 404, 405, 408, 409, 413, 431, 500, 501, 503, 505,
        ];
        for status in sent {
            assert_ne!(reason(status), "", "{status}");
        }
    }

    #[test]
    fn a_streamed_answer_goes_in_chunks_or_until_the_connection_closes() {
        let big = |out: &mut dyn Write| {
            out.write_all(&vec![b'a'; CHUNK_BYTES + 3])?;
            out.write_all(b"bc")
        };
        let (result, text) = written(stream(big), false, true);
        result.unwrap();
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n";
        let chunks = format!(
            "10000\r\n{}\r\n5\r\naaabc\r\n0\r\n\r\n",
            "a".repeat(CHUNK_BYTES)
        );
        assert_eq!(text, format!("{head}{chunks}"));
        // The handler's `Connection: close` is the transport's to say.
        assert!(stream(big).closes());
        let (_, text) = written(stream(|out| out.write_all(b"xyz")), true, false);
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: b\r\nConnection: close\r\n\r\nxyz"
        );
    }

    #[test]
    fn a_stream_that_fails_halfway_ends_without_its_last_chunk() {
        let failing = |out: &mut dyn Write| {
            out.write_all(b"part")?;
            out.flush()?;
            Err(io::Error::other("the database went away"))
        };
        let (result, text) = written(stream(failing), false, true);
        assert!(result.is_err());
        assert!(text.ends_with("\r\n\r\n4\r\npart\r\n"), "{text}");
    }
}
