//! The agent's HTTP server (`--http-addr`): `/metrics`, `/healthz` and the
//! status page, read-only views of the agent's status, on the transport the
//! metadb uses (`crate::http`: its connection cap, deadlines, and an
//! accept loop that outlives running out of descriptors).
//!
//! The server is owned by the agent: stopping (or dropping) it stops
//! accepting and ends the connections.

use crate::agent::status::Status;
use crate::agent::{metrics, page};
use crate::http::{self as transport, Request, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Open connections at most (fewer if the descriptor limit is low): the
/// endpoint is scraped, not browsed by a crowd.
const MAX_CONNECTIONS: u64 = 64;

/// The most bytes of a request body read: no endpoint takes one.
const BODY_LIMIT: usize = 64 << 10;

/// How long stopping waits for answers in progress.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// What the spool's size is asked of, for `/metrics`.
type Backlog = Box<dyn Fn() -> usize + Send + Sync>;

/// A running server.
pub struct Server {
    transport: Option<transport::Transport>,
    /// The address bound (with the real port when asked for port 0).
    pub addr: SocketAddr,
}

impl Server {
    /// Binds the first of `addrs` that it can and starts serving;
    /// `spool_backlog` reports the metadb spool's size for `/metrics`.
    pub fn start(
        addrs: &[SocketAddr],
        status: Arc<Status>,
        spool_backlog: Backlog,
    ) -> Result<Server, String> {
        let cannot = |e: &dyn std::fmt::Display| {
            let addrs: Vec<String> = addrs.iter().map(SocketAddr::to_string).collect();
            format!("cannot listen on {}: {e}", addrs.join(" or "))
        };
        let listener = std::net::TcpListener::bind(addrs).map_err(|e| cannot(&e))?;
        let addr = listener.local_addr().map_err(|e| cannot(&e))?;
        let limits = transport::Limits {
            connections: transport::connection_cap(MAX_CONNECTIONS),
            idle: Duration::from_secs(60),
            request: Duration::from_secs(30),
        };
        let views = Arc::new(Views {
            status,
            spool_backlog,
        });
        let fatal = Arc::new(|why: String| log::error!("http: {why}"));
        let transport = transport::start("http", listener, limits, views, fatal)
            .map_err(|e| format!("cannot start the http thread: {e}"))?;
        Ok(Server {
            transport: Some(transport),
            addr,
        })
    }

    /// Stops serving and joins the threads.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        if let Some(transport) = self.transport.take() {
            transport.stop(STOP_GRACE);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut();
    }
}

/// What the endpoint shows.
struct Views {
    status: Arc<Status>,
    spool_backlog: Backlog,
}

impl transport::Handler for Views {
    fn body_limit(&self) -> usize {
        BODY_LIMIT
    }

    fn handle(&self, request: Request) -> Response<'_> {
        let (status, content_type, body) = if !matches!(request.method.as_str(), "GET" | "HEAD") {
            (
                405,
                "text/plain; charset=utf-8",
                "method not allowed\n".to_string(),
            )
        } else {
            match request.path() {
                "/metrics" => {
                    // The backlog may take I/O: ask before taking the lock.
                    let backlog = (self.spool_backlog)();
                    let text = metrics::render(&self.status.lock(), backlog);
                    (200, "text/plain; version=0.0.4; charset=utf-8", text)
                }
                "/healthz" => (200, "text/plain; charset=utf-8", "ok\n".to_string()),
                "/" => {
                    let state = self.status.lock();
                    let html = page::render(&state, &state.host, chrono::Utc::now());
                    (200, "text/html; charset=utf-8", html)
                }
                _ => (404, "text/plain; charset=utf-8", "not found\n".to_string()),
            }
        };
        Response {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    fn count(&self, _: &'static str) {}
}
