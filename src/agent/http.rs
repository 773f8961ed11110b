//! The agent's HTTP server (`--http-addr`): `/metrics`, `/healthz` and the
//! status page, read-only views of the agent's status. One thread serves
//! requests one at a time (they are small and rare); tiny_http accepts and
//! parses connections on its own threads.
//!
//! The server is owned by the agent: stopping (or dropping) it unblocks the
//! serving thread and joins it.

use super::status::Status;
use super::{metrics, page};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use tiny_http::{Header, Method, Request, Response};

/// A running server.
pub struct Server {
    server: Arc<tiny_http::Server>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The address bound (with the real port when asked for port 0).
    pub addr: SocketAddr,
}

impl Server {
    /// Binds the first of `addrs` that it can and starts serving;
    /// `spool_backlog` reports the metadb spool's size for `/metrics`.
    pub fn start(
        addrs: &[SocketAddr],
        status: Arc<Status>,
        spool_backlog: Box<dyn Fn() -> usize + Send>,
    ) -> Result<Server, String> {
        let cannot = |e: &dyn std::fmt::Display| {
            let addrs: Vec<String> = addrs.iter().map(SocketAddr::to_string).collect();
            format!("cannot listen on {}: {e}", addrs.join(" or "))
        };
        let listener = std::net::TcpListener::bind(addrs).map_err(|e| cannot(&e))?;
        let bound = listener.local_addr().map_err(|e| cannot(&e))?;
        let server = tiny_http::Server::from_listener(listener, None).map_err(|e| cannot(&e))?;
        let addr = server.server_addr().to_ip().unwrap_or(bound);
        let server = Arc::new(server);
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let (server, stopping) = (Arc::clone(&server), Arc::clone(&stopping));
            thread::Builder::new()
                .name("http".into())
                .spawn(move || serve(&server, &stopping, &status, &*spool_backlog))
                .map_err(|e| format!("cannot start the http thread: {e}"))?
        };
        Ok(Server {
            server,
            stopping,
            thread: Some(thread),
            addr,
        })
    }

    /// Stops serving and joins the thread.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut();
    }
}

fn serve(
    server: &tiny_http::Server,
    stopping: &AtomicBool,
    status: &Status,
    spool_backlog: &dyn Fn() -> usize,
) {
    loop {
        match server.recv() {
            Ok(request) => respond(request, status, spool_backlog),
            Err(e) => {
                if !stopping.load(Ordering::SeqCst) {
                    log::error!("http: cannot receive requests: {e}");
                }
                return;
            }
        }
    }
}

fn respond(request: Request, status: &Status, spool_backlog: &dyn Fn() -> usize) {
    let path = request
        .url()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_string();
    let (status, content_type, body) = if !matches!(request.method(), Method::Get | Method::Head) {
        (
            405,
            "text/plain; charset=utf-8",
            "method not allowed\n".to_string(),
        )
    } else {
        match path.as_str() {
            "/metrics" => {
                // The backlog may take I/O: ask before taking the lock.
                let backlog = spool_backlog();
                let text = metrics::render(&status.lock(), backlog);
                (200, "text/plain; version=0.0.4; charset=utf-8", text)
            }
            "/healthz" => (200, "text/plain; charset=utf-8", "ok\n".to_string()),
            "/" => {
                let state = status.lock();
                let html = page::render(&state, &state.host, chrono::Utc::now());
                (200, "text/html; charset=utf-8", html)
            }
            _ => (404, "text/plain; charset=utf-8", "not found\n".to_string()),
        }
    };
    let mut response = Response::from_string(body).with_status_code(status);
    if let Ok(header) = Header::from_bytes("Content-Type", content_type) {
        response = response.with_header(header);
    }
    if let Err(e) = request.respond(response) {
        log::debug!("http: {path}: cannot send the response: {e}");
    }
}
