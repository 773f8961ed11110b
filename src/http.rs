//! The HTTP/1.1 transport of the metadb server and the agent's endpoint:
//! socket options, the accept loop, one thread per connection, request
//! parsing with limits and deadlines, and writing answers. What a request
//! means is the [`Handler`]'s (`metadb::route`, `agent::http`).
//!
//! This replaces tiny_http, which the metadb (facing every host of the
//! fleet) and the agent used: tiny_http's accept thread panics when
//! descriptors run out (the port is gone while the process lives on), it
//! has no limit on connections, header lines or time, it keeps a
//! connection open after a 413 and reads the rest of an oversized chunked
//! body as further requests, and it unfolds a header continued on the next
//! line into a header of its own. Here:
//!
//! - accepting never ends on running out of descriptors (it waits and
//!   retries); any other end of the accept loop is reported to `fatal`, so
//!   that the process exits and its service manager restarts it;
//! - at most [`Limits::connections`] are open; beyond that the connection
//!   idle longest (waiting for a request, or lingering after a refusal) is
//!   closed to make room, or, with none idle, the new one is answered 503
//!   and closed;
//! - a connection idle for [`Limits::idle`] is closed, and a request must
//!   arrive whole within [`Limits::request`] of its first byte;
//! - the head is at most [`MAX_HEAD_BYTES`](request::MAX_HEAD_BYTES)
//!   (431); obsolete line folding, both `Transfer-Encoding` and
//!   `Content-Length`, or conflicting lengths are answered 400, a
//!   `Transfer-Encoding` other than `chunked` 501, and the connection
//!   closed: there is no telling where the next request would begin;
//! - every answer that ends a request early (400, 408, 413, 431, 503) says
//!   `Connection: close`, and nothing after it on that connection is read
//!   as a request;
//! - an answer too large to hold ([`Body::Stream`]) is written as it is
//!   made, in chunks of [`CHUNK_BYTES`](response::CHUNK_BYTES) (HTTP/1.0:
//!   until the connection closes); if making it fails halfway, the
//!   connection is closed without the last chunk, so the client sees a
//!   truncated answer, not a short one.
//!
//! One file per part: [`transport`] (the accept loop, the cap, eviction,
//! a thread per connection), [`connection`] (serving one, within its
//! deadlines), [`input`] (reading a connection with deadlines),
//! [`request`] (the head, the headers, the body and their limits) and
//! [`response`] (answers, whole or streamed).

mod connection;
mod input;
mod output;
mod request;
mod response;
mod transport;

pub use request::Request;
pub use response::{Body, Response};
pub use transport::{connection_cap, start, Limits, Transport};

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
