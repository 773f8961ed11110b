//! Reading a request: its line and headers within [`MAX_HEAD_BYTES`] and
//! [`MAX_HEADERS`], how its body is delimited (`Content-Length` or
//! `chunked`, never both, never conflicting), and its body within the
//! handler's limit. What cannot be read safely is a [`Refusal`], which
//! ends the connection: there is no telling where the next request would
//! begin. Deadlines are the [`Input`]'s; answering is `connection`'s.

use super::input::{Fail, Input};
use std::fmt;
use std::io::Write;

/// The request line and headers together, at most.
pub(super) const MAX_HEAD_BYTES: usize = 32 << 10;
/// How many headers a request may have.
const MAX_HEADERS: usize = 100;
/// Empty lines taken before a request line (RFC 9112, 2.2), and one more.
const LEADING_LINES: usize = 4;

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
    pub(super) close: bool,
    /// HTTP/1.0, which knows no chunked encoding.
    pub(super) http_1_0: bool,
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

    /// Whether the `Connection` header lists `token`.
    fn connection_has(&self, token: &str) -> bool {
        self.header("Connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }
}

/// Why a request cannot be served: the status and message of the answer
/// that ends its connection.
#[derive(Debug)]
pub(super) struct Refusal {
    pub(super) status: u16,
    pub(super) message: String,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for Refusal {}

/// The refusal for a failure to read `what` (the request head or body).
fn failed(fail: Fail, what: &str) -> Refusal {
    match fail {
        Fail::Timeout => Refusal::new(408, format!("the {what} did not arrive in time")),
        Fail::TooLong => Refusal::new(431, format!("{what} over {MAX_HEAD_BYTES} bytes")),
        // Cut short on its way: nothing wrong with the request itself, and
        // a client may send it again (a 400 would tell it never to).
        Fail::Closed => Refusal::new(408, format!("the connection closed during the {what}")),
        Fail::Io(e) => Refusal::new(408, format!("cannot read the {what}: {e}")),
    }
}

/// The refusal of a body over `limit` bytes.
fn over(limit: usize) -> Refusal {
    Refusal::new(413, format!("request body over {limit} bytes"))
}

/// How a request's body is delimited.
#[derive(Clone, Copy)]
enum Framing {
    /// No body: neither `Content-Length` nor `Transfer-Encoding`.
    Empty,
    /// `Content-Length`, at most the limit.
    Length(usize),
    Chunked,
}

/// Reads one request whose body may be `limit` bytes at most; `None` if
/// the connection closed before one began.
pub(super) fn read_request(input: &mut Input, limit: usize) -> Result<Option<Request>, Refusal> {
    let Some(line) = first_line(input)? else {
        return Ok(None);
    };
    let head_bytes = line.len();
    let mut request = request_line(line)?;
    request.headers = read_headers(input, head_bytes)?;
    request.close = request.connection_has("close")
        || (request.http_1_0 && !request.connection_has("keep-alive"));
    let framing = framing(&request, limit)?;
    if expects_continue(&request, framing) {
        let mut stream = input.stream;
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    request.body = read_body(input, framing, limit)?;
    Ok(Some(request))
}

/// The request line, after at most a few empty lines; `None` if the
/// connection closed first.
fn first_line(input: &mut Input) -> Result<Option<Vec<u8>>, Refusal> {
    let mut line = Vec::new();
    for _ in 0..LEADING_LINES {
        line = match input.line() {
            Ok(line) => line,
            Err(Fail::Closed) => return Ok(None),
            Err(fail) => return Err(failed(fail, "request head")),
        };
        if !line.is_empty() {
            break;
        }
    }
    Ok(Some(line))
}

/// The request `line` says: method, target and version, checked; no
/// headers or body yet.
fn request_line(line: Vec<u8>) -> Result<Request, Refusal> {
    let line =
        String::from_utf8(line).map_err(|_| Refusal::new(400, "request line is not UTF-8"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::new(400, "malformed request line"));
    };
    let http_1_0 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(Refusal::new(505, "HTTP/1.0 and HTTP/1.1 only")),
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Refusal::new(400, "malformed method"));
    }
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Refusal::new(400, "malformed request target"));
    }
    Ok(Request {
        method: method.to_string(),
        target: target.to_string(),
        headers: Vec::new(),
        body: Vec::new(),
        close: false,
        http_1_0,
    })
}

/// The headers, up to the empty line that ends the head, which already
/// took `head_bytes`.
fn read_headers(
    input: &mut Input,
    mut head_bytes: usize,
) -> Result<Vec<(String, String)>, Refusal> {
    let mut headers = Vec::new();
    loop {
        let line = input.line().map_err(|fail| failed(fail, "request head"))?;
        head_bytes += line.len() + 2;
        if head_bytes > MAX_HEAD_BYTES {
            let why = format!("request head over {MAX_HEAD_BYTES} bytes");
            return Err(Refusal::new(431, why));
        }
        if line.is_empty() {
            return Ok(headers);
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            // RFC 9112, 5.2: a server must refuse obsolete line folding or
            // replace it; joined wrongly it makes headers up.
            return Err(Refusal::new(
                400,
                "obsolete line folding in the request head",
            ));
        }
        if headers.len() == MAX_HEADERS {
            return Err(Refusal::new(431, format!("over {MAX_HEADERS} headers")));
        }
        headers.push(header(line)?);
    }
}

/// A header `line`'s name and value (trimmed), checked.
fn header(line: Vec<u8>) -> Result<(String, String), Refusal> {
    let line = String::from_utf8(line).map_err(|_| Refusal::new(400, "header is not UTF-8"))?;
    let Some((name, value)) = line.split_once(':') else {
        return Err(Refusal::new(400, "header without a colon"));
    };
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(Refusal::new(400, "malformed header name"));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(Refusal::new(400, "control character in a header"));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

/// How `request`'s body is delimited: refused if its headers disagree, if
/// HTTP/1.0 says chunked, or if it announces more than `limit` bytes.
fn framing(request: &Request, limit: usize) -> Result<Framing, Refusal> {
    let chunked = match request.header("Transfer-Encoding") {
        None => false,
        Some(te) if te.eq_ignore_ascii_case("chunked") => true,
        Some(te) => {
            let why = format!("transfer encoding {te:?} is not supported (only chunked)");
            return Err(Refusal::new(501, why));
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
        (true, _) => {
            let why = "both Transfer-Encoding and Content-Length";
            return Err(Refusal::new(400, why));
        }
        (false, [first, rest @ ..]) => {
            if rest.iter().any(|v| v != first) || !first.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Refusal::new(400, "malformed Content-Length"));
            }
            Some(first.parse::<u64>().map_err(|_| over(limit))?)
        }
    };
    if chunked && request.http_1_0 {
        return Err(Refusal::new(400, "chunked encoding in HTTP/1.0"));
    }
    if chunked {
        return Ok(Framing::Chunked);
    }
    match length {
        None => Ok(Framing::Empty),
        Some(n) if n > limit as u64 => Err(over(limit)),
        // At most `limit`, checked above.
        Some(n) => usize::try_from(n)
            .map(Framing::Length)
            .map_err(|_| over(limit)),
    }
}

/// Whether the client waits for `100 Continue` before it sends the body
/// (HTTP/1.1 only, and only for a body).
fn expects_continue(request: &Request, framing: Framing) -> bool {
    let expects = request
        .header("Expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    let has_body = match framing {
        Framing::Empty => false,
        Framing::Length(n) => n > 0,
        Framing::Chunked => true,
    };
    expects && !request.http_1_0 && has_body
}

/// The body, delimited by `framing`, at most `limit` bytes.
fn read_body(input: &mut Input, framing: Framing, limit: usize) -> Result<Vec<u8>, Refusal> {
    let mut body = Vec::new();
    match framing {
        Framing::Empty => {}
        Framing::Length(n) => input
            .take(n, &mut body)
            .map_err(|fail| failed(fail, "request body"))?,
        Framing::Chunked => read_chunked(input, limit, &mut body)?,
    }
    Ok(body)
}

/// Reads a chunked body into `body`, refusing it past `limit` bytes.
fn read_chunked(input: &mut Input, limit: usize, body: &mut Vec<u8>) -> Result<(), Refusal> {
    let read = |fail| failed(fail, "request body");
    loop {
        let line = input.line().map_err(read)?;
        let size = line.split(|b| *b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size)
            .ok()
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= 16)
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .ok_or_else(|| Refusal::new(400, "malformed chunk size"))?;
        if size == 0 {
            break;
        }
        let size = usize::try_from(size).map_err(|_| over(limit))?;
        if body.len().saturating_add(size) > limit {
            return Err(over(limit));
        }
        input.take(size, body).map_err(read)?;
        if !input.line().map_err(read)?.is_empty() {
            return Err(Refusal::new(400, "chunk longer than its size"));
        }
    }
    // Trailers are read and ignored.
    for _ in 0..MAX_HEADERS {
        if input.line().map_err(read)?.is_empty() {
            return Ok(());
        }
    }
    Err(Refusal::new(400, "too many trailers"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::input::tests::sent;
    use std::time::{Duration, Instant};

    /// The requests in `raw`, read in turn with a body limit of `limit`,
    /// and the refusal that ended them, if one did.
    fn read_all(raw: Vec<u8>, limit: usize) -> (Vec<Request>, Option<Refusal>) {
        let stream = sent(raw);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut input = Input::new(&stream, MAX_HEAD_BYTES / 2, deadline);
        let mut requests = Vec::new();
        loop {
            match read_request(&mut input, limit) {
                Ok(Some(request)) => requests.push(request),
                Ok(None) => return (requests, None),
                Err(refused) => return (requests, Some(refused)),
            }
        }
    }

    /// How the first request of `raw` is refused, with a limit of 1024.
    fn refused(raw: &str) -> (u16, String) {
        let (read, refusal) = read_all(raw.as_bytes().to_vec(), 1024);
        assert!(read.is_empty(), "{raw:?} was read");
        let refusal = refusal.unwrap_or_else(|| panic!("{raw:?} was not refused"));
        (refusal.status, refusal.message)
    }

    #[test]
    fn pipelined_kept_alive_and_http_1_0_requests() {
        let raw = concat!(
            "POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nab",
            "\r\n",
            "PUT /b?q=1 HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n2;x=y\r\nab\r\n1\r\nc\r\n0\r\nT: t\r\n\r\n",
            "GET /c HTTP/1.0\n\n",
            "GET /d HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
            "GET /e HTTP/1.1\r\nX: 1\r\nconnection: keep-alive, close\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
        );
        let (read, refusal) = read_all(raw.as_bytes().to_vec(), 1024);
        assert!(refusal.is_none());
        let seen: Vec<_> = read
            .iter()
            .map(|r| {
                (
                    r.method.as_str(),
                    r.path(),
                    &r.body[..],
                    r.close,
                    r.http_1_0,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("POST", "/a", &b"ab"[..], false, false),
                ("PUT", "/b", b"abc", false, false),
                ("GET", "/c", b"", true, true),
                ("GET", "/d", b"", false, true),
                ("GET", "/e", b"", true, false),
            ]
        );
        assert_eq!(read[1].target, "/b?q=1");
        assert_eq!(read[4].header("X"), Some("1"));
    }

    #[test]
    fn conflicting_or_unknown_body_framing_is_refused() {
        for (raw, status, message) in [
            (
                "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
                "both Transfer-Encoding and Content-Length",
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
                400,
                "both Transfer-Encoding and Content-Length",
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                400,
                "malformed Content-Length",
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\na",
                400,
                "malformed Content-Length",
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                413,
                "request body over 1024 bytes",
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 1025\r\n\r\n",
                413,
                "request body over 1024 bytes",
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                501,
                "transfer encoding \"gzip, chunked\" is not supported (only chunked)",
            ),
            (
                "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                400,
                "chunked encoding in HTTP/1.0",
            ),
        ] {
            assert_eq!(refused(raw), (status, message.to_string()), "{raw:?}");
        }
    }

    #[test]
    fn bad_chunks_are_refused() {
        let head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let trailers = "a: b\r\n".repeat(MAX_HEADERS);
        for (chunks, status, message) in [
            ("zz\r\n", 400, "malformed chunk size"),
            ("\r\n", 400, "malformed chunk size"),
            (
                "00000000000000001\r\na\r\n0\r\n\r\n",
                400,
                "malformed chunk size",
            ),
            ("1\r\nab\r\n0\r\n\r\n", 400, "chunk longer than its size"),
            ("401\r\n", 413, "request body over 1024 bytes"),
            (
                "200\r\n",
                408,
                "the connection closed during the request body",
            ),
            (&format!("0\r\n{trailers}\r\n"), 400, "too many trailers"),
        ] {
            assert_eq!(
                refused(&format!("{head}{chunks}")),
                (status, message.to_string()),
                "{chunks:?}"
            );
        }
        let small = format!("100\r\n{}\r\n", "y".repeat(0x100));
        let raw = format!("{head}{}0\r\n\r\n", small.repeat(5));
        assert_eq!(refused(&raw).0, 413);
    }

    #[test]
    fn malformed_folded_and_huge_heads_are_refused() {
        let long = "x".repeat(MAX_HEAD_BYTES / 2);
        let many = "a: b\r\n".repeat(MAX_HEADERS + 1);
        let big = format!("a: {}\r\n", "b".repeat(MAX_HEAD_BYTES / 4)).repeat(4);
        for (raw, status, message) in [
            (
                "GET / HTTP/1.1\r\nX: a\r\n Authorization: b\r\n\r\n",
                400,
                "obsolete line folding in the request head",
            ),
            (
                "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n",
                400,
                "obsolete line folding in the request head",
            ),
            (
                &format!("GET / HTTP/1.1\r\nX: {long}\r\n\r\n"),
                431,
                "request head over 32768 bytes",
            ),
            (
                &format!("GET / HTTP/1.1\r\n{big}\r\n"),
                431,
                "request head over 32768 bytes",
            ),
            (
                &format!("GET / HTTP/1.1\r\n{many}\r\n"),
                431,
                "over 100 headers",
            ),
            (
                "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
                400,
                "malformed header name",
            ),
            (
                "GET / HTTP/1.1\r\n: x\r\n\r\n",
                400,
                "malformed header name",
            ),
            (
                "GET / HTTP/1.1\r\nHost\r\n\r\n",
                400,
                "header without a colon",
            ),
            (
                "GET / HTTP/1.1\r\nX: a\u{1}b\r\n\r\n",
                400,
                "control character in a header",
            ),
            ("GET / HTTP/2.0\r\n\r\n", 505, "HTTP/1.0 and HTTP/1.1 only"),
            ("get / HTTP/1.1\r\n\r\n", 400, "malformed method"),
            ("GET * HTTP/1.1\r\n\r\n", 400, "malformed request target"),
            ("GET /a b HTTP/1.1\r\n\r\n", 400, "malformed request line"),
            (
                "\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n",
                400,
                "malformed request line",
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\n",
                408,
                "the connection closed during the request head",
            ),
        ] {
            assert_eq!(refused(raw), (status, message.to_string()), "{raw:?}");
        }
        let (_, refusal) = read_all(b"GET /\xff HTTP/1.1\r\n\r\n".to_vec(), 1024);
        assert_eq!(refusal.map(|r| r.status), Some(400));
        let (_, refusal) = read_all(b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n".to_vec(), 1024);
        assert_eq!(
            refusal.map(|r| r.message),
            Some("header is not UTF-8".into())
        );
        // A connection closed before a request is no request, and no error.
        let (read, refusal) = read_all(b"\r\n".to_vec(), 1024);
        assert!(read.is_empty() && refusal.is_none());
    }

    #[test]
    fn a_client_expecting_100_continue_is_told_to_go_on() {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, _) = listener.accept().unwrap();
        let waiting = std::thread::spawn(move || {
            let head = "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
            client.write_all(head.as_bytes()).unwrap();
            let mut told = [0; 25];
            client.read_exact(&mut told).unwrap();
            client.write_all(b"ab").unwrap();
            told
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut input = Input::new(&stream, MAX_HEAD_BYTES / 2, deadline);
        let request = read_request(&mut input, 1024).unwrap().unwrap();
        assert_eq!(request.body, b"ab");
        assert_eq!(&waiting.join().unwrap(), b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn ten_megabyte_bodies_are_read_whole_within_the_limit() {
        let body = vec![b'z'; 10 << 20];
        let mut by_length =
            format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        by_length.extend_from_slice(&body);
        let mut chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for chunk in body.chunks(100_000) {
            chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            chunked.extend_from_slice(chunk);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        for raw in [by_length, chunked] {
            let (read, refusal) = read_all(raw.clone(), 16 << 20);
            assert!(refusal.is_none());
            assert_eq!(read.len(), 1);
            assert!(read[0].body == body);
            let (read, refusal) = read_all(raw, 1 << 20);
            assert!(read.is_empty());
            assert_eq!(refusal.map(|r| r.status), Some(413));
        }
    }
}
