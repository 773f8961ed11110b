//! The metadb HTTP server: a fixed pool of worker threads sharing one
//! tiny_http listener, each with its own SQLite connection to the same file
//! (WAL lets readers run beside the one writer).
//!
//! This module owns the HTTP surface: routing, authentication and
//! authorisation, body limits, status codes and metrics. Recording and
//! finding are the store's; signals, configuration reloads and the process
//! exit status are `cmd::metadb`'s. No request may take a worker down: every
//! failure becomes a status code, and a panic becomes a 500.
//!
//! tiny_http has no limits or timeouts of its own. So every body is read
//! (through `take`) before any answer, and a body not yet received in full
//! is read, and its request served, on a thread of its own rather than on a
//! worker, so that slow clients cannot stall the pool. And when a request
//! whose body was not read is dropped, tiny_http drains the rest of the
//! announced body into a buffer of the announced size, so a request
//! announcing terabytes would abort the process; see [`refuse_oversized`].

use crate::metadb::api::{
    AbandonRequest, RemoveDatasetsAnswer, RemoveDatasetsRequest, RestoreStatus,
};
use crate::metadb::auth::Identity;
use crate::metadb::config::{Config, HostRead, Policy};
use crate::metadb::jobs::Registry;
use crate::metadb::metrics::{Fleet, Metrics};
use crate::metadb::record;
use crate::metadb::store::{self, Store};
use crate::model::{
    AddDatasetRequest, FindRequest, RestoreRequest, UpdateActiveJobStatusRequest, Verification,
};
use serde::Serialize;
use std::fmt;
use std::io::Read;
use std::net::{SocketAddr, ToSocketAddrs};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::Instant;
use tiny_http::{Header, Method, Request, Response};

/// Worker threads: enough for reads to overlap the one writer SQLite allows,
/// few enough to stay small on a small machine.
pub const WORKERS: usize = 8;

/// How long shutdown waits for requests served outside the workers.
const DETACHED_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Spare database connections kept for requests served outside the workers.
const SPARE_STORES: usize = 4;

/// A body announced over the limit by at most this much is drained (and so
/// the connection kept usable); a larger one makes the connection abandoned.
const DRAIN_SLACK: usize = 8 << 20;

/// Why the server could not start.
#[derive(Debug)]
pub enum Error {
    /// The configuration cannot be served as written (exit 2).
    Config(String),
    /// The address, the database or the threads failed (exit 1).
    Start(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Config(msg) | Error::Start(msg) => f.write_str(msg),
        }
    }
}

/// What the workers share.
struct Shared {
    policy: RwLock<Arc<Policy>>,
    /// Whether the listening address is loopback only.
    loopback: bool,
    metrics: Metrics,
    jobs: Registry,
    db_path: PathBuf,
    stopping: AtomicBool,
    fatal: Box<dyn Fn(String) + Send + Sync>,
    /// Requests being served outside the workers.
    detached: AtomicUsize,
    /// Their database connections, kept for the next ones.
    spare_stores: Mutex<Vec<Store>>,
    /// The one connection that writes. SQLite runs one writer at a time
    /// anyway; taking turns here rather than in SQLite's busy handler (which
    /// sleeps) keeps this connection's page cache valid from one write to
    /// the next, where writers on every worker's connection each found the
    /// others' changes and reread their pages.
    writer: Mutex<Store>,
}

impl Shared {
    /// The writing connection, once the previous writer is done with it.
    fn writer(&self) -> std::sync::MutexGuard<'_, Store> {
        // A write that panicked left no transaction open (dropping it rolls
        // back), so the connection is as good as before.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A started server: its address, its policy, and the way to stop it.
pub struct Running {
    server: Arc<tiny_http::Server>,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    addr: SocketAddr,
}

/// Opens the database, binds `http_addr` and starts the workers. `fatal`
/// is called (from a worker) if the listener dies and the server can no
/// longer serve; the caller should then shut it down.
pub fn start(
    config: &Config,
    http_addr: &str,
    fatal: impl Fn(String) + Send + Sync + 'static,
) -> Result<Running, Error> {
    let resolved: Vec<SocketAddr> = http_addr
        .to_socket_addrs()
        .map_err(|e| Error::Config(format!("cannot resolve http_addr {http_addr}: {e}")))?
        .collect();
    let loopback = resolved.iter().all(|a| a.ip().is_loopback());
    check_exposure(&config.policy, loopback, http_addr)?;

    if let Some(dir) = config.db_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Start(format!(
                "cannot create database directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    // Opening once first creates and migrates the file before the workers
    // race to; each worker then has its own connection to read on.
    let open = |store: Result<Store, store::Error>| {
        store.map_err(|e| {
            Error::Start(format!(
                "cannot open database {}: {e}",
                config.db_path.display()
            ))
        })
    };
    let mut stores = Vec::with_capacity(WORKERS);
    for _ in 0..WORKERS {
        stores.push(open(open_reader(&config.db_path))?);
    }

    let listener = std::net::TcpListener::bind(resolved.as_slice())
        .map_err(|e| Error::Start(format!("cannot listen on {http_addr}: {e}")))?;
    tune(&listener);
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|e| Error::Start(format!("cannot listen on {http_addr}: {e}")))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Error::Start(format!("cannot listen on {http_addr}: not an IP address")))?;
    let writer = open(Store::open(&config.db_path))?;
    let server = Arc::new(server);
    let shared = Arc::new(Shared {
        policy: RwLock::new(Arc::new(config.policy.clone())),
        loopback,
        metrics: Metrics::default(),
        jobs: Registry::default(),
        db_path: config.db_path.clone(),
        stopping: AtomicBool::new(false),
        fatal: Box::new(fatal),
        detached: AtomicUsize::new(0),
        spare_stores: Mutex::new(Vec::new()),
        writer: Mutex::new(writer),
    });
    let mut workers = Vec::with_capacity(WORKERS);
    for (i, store) in stores.into_iter().enumerate() {
        let (worker_server, worker_shared) = (server.clone(), shared.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("metadb-worker-{i}"))
            .spawn(move || work(&worker_server, &worker_shared, store));
        match spawned {
            Ok(handle) => workers.push(handle),
            Err(e) => {
                let running = Running {
                    server,
                    shared,
                    workers,
                    addr,
                };
                running.shutdown();
                return Err(Error::Start(format!("cannot start worker threads: {e}")));
            }
        }
    }
    Ok(Running {
        server,
        shared,
        workers,
        addr,
    })
}

/// Sets the options that accepted connections inherit from the listener on
/// Linux: no Nagle delay (an answer goes out in several writes, and waiting
/// for the client's delayed ACK costs 40 ms), and keepalive probes, so that
/// the connection of a vanished client is closed in minutes, not hours.
fn tune(listener: &std::net::TcpListener) {
    use std::os::fd::AsRawFd;
    let fd = listener.as_raw_fd();
    let options = [
        (libc::IPPROTO_TCP, libc::TCP_NODELAY, 1),
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1),
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 60),
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 10),
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 6),
    ];
    for (level, name, value) in options {
        let value: libc::c_int = value;
        // SAFETY: `fd` is the listener's open socket, and the option value
        // is a c_int that lives across the call, with its exact size.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                std::ptr::from_ref(&value).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            log::debug!(
                "metadb: socket option {name}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Refuses to serve an open metadb anywhere but on loopback.
fn check_exposure(policy: &Policy, loopback: bool, http_addr: &str) -> Result<(), Error> {
    if policy.tokens.is_empty() && !loopback {
        return Err(Error::Config(format!(
            "refusing to listen on {http_addr} without tokens: anyone could read and write the \
             metadb; configure tokens in metadb.yml or listen on a loopback address"
        )));
    }
    Ok(())
}

impl Running {
    /// The address the server listens on (the port chosen, for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the address is loopback only.
    pub fn is_loopback(&self) -> bool {
        self.shared.loopback
    }

    /// Replaces the policy for the requests that follow; refuses one that
    /// would leave a non-loopback server open to anyone.
    pub fn set_policy(&self, policy: Policy) -> Result<(), String> {
        check_exposure(&policy, self.shared.loopback, &self.addr.to_string())
            .map_err(|e| e.to_string())?;
        *self
            .shared
            .policy
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(policy);
        Ok(())
    }

    /// Stops taking requests, lets the workers finish the ones they hold and
    /// the ones already queued, and joins them.
    pub fn shutdown(self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Each unblock wakes exactly one `recv`, after what is queued.
        for _ in &self.workers {
            self.server.unblock();
        }
        for worker in self.workers {
            if worker.join().is_err() {
                log::error!("a metadb worker thread panicked");
            }
        }
        let deadline = Instant::now() + DETACHED_GRACE;
        while self.shared.detached.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// A connection for reading, with a small page cache: the kernel's holds
/// the file, and full-size ones (2 MiB each, one per worker) would sit in
/// the server's memory for good.
fn open_reader(db_path: &Path) -> Result<Store, store::Error> {
    Store::open(db_path).and_then(|s| s.with_cache_kib(512))
}

/// One worker: takes requests until unblocked. A request whose body is
/// still on its way is served by a thread of its own, so that a client
/// sending slowly (or not at all) holds that thread and not a worker.
fn work(server: &tiny_http::Server, shared: &Arc<Shared>, store: Store) {
    loop {
        let request = match server.recv() {
            Ok(request) => request,
            Err(e) => {
                if !shared.stopping.load(Ordering::SeqCst) {
                    // tiny_http's accept loop ends on an accept error (such
                    // as running out of file descriptors) and says so once.
                    (shared.fatal)(format!("the listener failed: {e}"));
                }
                return;
            }
        };
        if is_buffered(&request) {
            serve(request, shared, &store);
        } else {
            detach(request, shared);
        }
    }
}

/// Serves `request` on a new thread, with a spare database connection.
fn detach(request: Request, shared: &Arc<Shared>) {
    shared.detached.fetch_add(1, Ordering::SeqCst);
    let thread_shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("metadb-request".into())
        .spawn(move || {
            let shared = thread_shared;
            let spare = shared
                .spare_stores
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            match spare.map_or_else(|| open_reader(&shared.db_path), Ok) {
                Ok(store) => {
                    serve(request, &shared, &store);
                    let mut spares = shared
                        .spare_stores
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    if spares.len() < SPARE_STORES {
                        spares.push(store);
                    }
                }
                Err(e) => {
                    let answer = Answer::error(503, format!("cannot open the database: {e}"));
                    send(request, answer, &[]);
                }
            }
            shared.detached.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        // The request went down with the closure, answered 500.
        log::error!("metadb: cannot start a thread for a request: {e}");
        shared.detached.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers `request`, counts it, and logs it at debug level.
fn serve(request: Request, shared: &Shared, store: &Store) {
    let started = Instant::now();
    let method = request.method().clone();
    let url = request.url().to_string();
    let outcome = catch_unwind(AssertUnwindSafe(|| handle(request, shared, store)));
    let (endpoint, status) = match outcome {
        Ok(answered) => answered,
        // The request was dropped while unwinding, which answers 500.
        Err(_) => {
            log::error!("metadb: {method} {url}: internal error (panic), answered 500");
            ("other", 500)
        }
    };
    shared.metrics.observe(endpoint, status, started.elapsed());
    log::debug!(
        "metadb: {method} {url} -> {status} in {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
}

impl Shared {
    fn policy(&self) -> Arc<Policy> {
        self.policy
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    AddDataset,
    RemoveDatasets,
    FindAtoms,
    UpdateActiveJobStatus,
    ActiveJobs,
    AddVerification,
    /// `POST /api/restore_requests`.
    AddRestoreRequest,
    /// `GET /api/restore_requests/next`.
    NextRestoreRequest,
    /// `POST /api/restore_requests/abandon`.
    AbandonRestoreRequests,
    /// `POST /api/restore_requests/{id}/status`.
    RestoreRequestStatus,
    /// `GET /api/restore_requests/{id}`.
    RestoreRequest,
    Healthz,
    Metrics,
}

impl Route {
    fn find(path: &str) -> Option<Route> {
        Some(match path {
            "/api/add_dataset" => Route::AddDataset,
            "/api/remove_datasets" => Route::RemoveDatasets,
            "/api/find_atoms" => Route::FindAtoms,
            "/api/update_active_job_status" => Route::UpdateActiveJobStatus,
            "/api/active_jobs" => Route::ActiveJobs,
            "/api/verifications" => Route::AddVerification,
            "/api/restore_requests" => Route::AddRestoreRequest,
            "/api/restore_requests/next" => Route::NextRestoreRequest,
            "/api/restore_requests/abandon" => Route::AbandonRestoreRequests,
            "/healthz" => Route::Healthz,
            "/metrics" => Route::Metrics,
            _ => match restore_request_id(path)? {
                (_, true) => Route::RestoreRequestStatus,
                (_, false) => Route::RestoreRequest,
            },
        })
    }

    /// The path, as the metrics label.
    fn endpoint(self) -> &'static str {
        match self {
            Route::AddDataset => "/api/add_dataset",
            Route::RemoveDatasets => "/api/remove_datasets",
            Route::FindAtoms => "/api/find_atoms",
            Route::UpdateActiveJobStatus => "/api/update_active_job_status",
            Route::ActiveJobs => "/api/active_jobs",
            Route::AddVerification => "/api/verifications",
            Route::AddRestoreRequest => "/api/restore_requests",
            Route::NextRestoreRequest => "/api/restore_requests/next",
            Route::AbandonRestoreRequests => "/api/restore_requests/abandon",
            Route::RestoreRequestStatus => "/api/restore_requests/{id}/status",
            Route::RestoreRequest => "/api/restore_requests/{id}",
            Route::Healthz => "/healthz",
            Route::Metrics => "/metrics",
        }
    }

    fn method(self) -> Method {
        match self {
            Route::AddDataset
            | Route::RemoveDatasets
            | Route::FindAtoms
            | Route::UpdateActiveJobStatus
            | Route::AddVerification
            | Route::AddRestoreRequest
            | Route::AbandonRestoreRequests
            | Route::RestoreRequestStatus => Method::Post,
            Route::ActiveJobs
            | Route::NextRestoreRequest
            | Route::RestoreRequest
            | Route::Healthz
            | Route::Metrics => Method::Get,
        }
    }

    /// Whether a token is needed when tokens are configured. Health and
    /// metrics are open, as Prometheus exporters are; restrict them at the
    /// proxy if host and source names are sensitive.
    fn needs_token(self) -> bool {
        !matches!(self, Route::Healthz | Route::Metrics)
    }
}

/// The id in `/api/restore_requests/{id}` or `.../{id}/status`, and whether
/// it is the latter.
fn restore_request_id(path: &str) -> Option<(&str, bool)> {
    let rest = path.strip_prefix("/api/restore_requests/")?;
    let (id, status) = match rest.strip_suffix("/status") {
        Some(id) => (id, true),
        None => (rest, false),
    };
    (!id.is_empty() && !id.contains('/')).then_some((id, status))
}

/// The value of `name` in the query string of `url`.
fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = url.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .filter(|v| !v.is_empty())
}

/// An answer: status, body and content type.
struct Answer {
    status: u16,
    body: String,
    content_type: &'static str,
}

impl Answer {
    fn json(status: u16, value: &impl Serialize) -> Answer {
        match serde_json::to_string(value) {
            Ok(body) => Answer {
                status,
                body,
                content_type: "application/json",
            },
            Err(e) => Answer::error(500, format!("cannot encode the answer: {e}")),
        }
    }

    /// An error: `{"error": "one line"}`.
    fn error(status: u16, message: impl Into<String>) -> Answer {
        let message: String = message.into();
        let body = serde_json::json!({ "error": message.replace('\n', " ") }).to_string();
        Answer {
            status,
            body,
            content_type: "application/json",
        }
    }

    fn text(status: u16, body: String, content_type: &'static str) -> Answer {
        Answer {
            status,
            body,
            content_type,
        }
    }
}

/// Answers `request`; returns its endpoint label and status.
fn handle(mut request: Request, shared: &Shared, store: &Store) -> (&'static str, u16) {
    let policy = shared.policy();
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let route = Route::find(&path);
    let endpoint = route.map_or("other", Route::endpoint);

    let limit = policy.max_body_bytes;
    if let Some(announced) = request.body_length().filter(|n| *n > limit) {
        return (
            endpoint,
            refuse_oversized(request, announced, limit, shared),
        );
    }
    // Read the body before anything else, so that no answer leaves an
    // unread body for tiny_http to drain. (A body still on its way is read
    // here only outside the workers: see `work`.)
    let body = match read_limited(&mut request, limit) {
        Ok(body) if body.len() > limit => {
            // A chunked body, which announces no length.
            let answer = Answer::error(413, format!("request body over {limit} bytes"));
            return (endpoint, send(request, answer, &[("Connection", "close")]));
        }
        Ok(body) => body,
        Err(e) => {
            let answer = Answer::error(400, format!("cannot read the request body: {e}"));
            return (endpoint, send(request, answer, &[]));
        }
    };
    let Some(route) = route else {
        return (
            endpoint,
            send(request, Answer::error(404, "no such endpoint"), &[]),
        );
    };
    if *request.method() != route.method() {
        let allow = route.method().to_string();
        let answer = Answer::error(405, format!("{path} takes {allow} only"));
        return (endpoint, send(request, answer, &[("Allow", &allow)]));
    }
    // Without tokens (loopback only) every caller is trusted.
    let identity = if policy.tokens.is_empty() || !route.needs_token() {
        Identity::Admin
    } else {
        let header = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .map(|h| h.value.as_str().to_string());
        match policy.tokens.identify(header.as_deref()) {
            Some(identity) => identity,
            None => {
                let answer = Answer::error(401, "missing or unknown bearer token");
                return (
                    endpoint,
                    send(request, answer, &[("WWW-Authenticate", "Bearer")]),
                );
            }
        }
    };

    let answer = match route {
        Route::AddDataset => parse(&body).map_or_else(
            |e| e,
            |req: AddDatasetRequest| add_dataset(&mut shared.writer(), &identity, req),
        ),
        Route::RemoveDatasets => parse(&body).map_or_else(
            |e| e,
            |req: RemoveDatasetsRequest| remove_datasets(&mut shared.writer(), &identity, &req),
        ),
        Route::FindAtoms => parse(&body).map_or_else(
            |e| e,
            |req: FindRequest| find_atoms(store, &identity, policy.host_read, req),
        ),
        Route::UpdateActiveJobStatus => parse(&body).map_or_else(
            |e| e,
            |req: UpdateActiveJobStatusRequest| update_jobs(shared, &identity, req),
        ),
        Route::ActiveJobs => {
            let own = match (&identity, policy.host_read) {
                (Identity::Host(host), HostRead::Own) => Some(host.as_str()),
                _ => None,
            };
            Answer::json(200, &shared.jobs.list(own))
        }
        Route::AddVerification => parse(&body).map_or_else(
            |e| e,
            |v: Verification| add_verification(&mut shared.writer(), &identity, &v),
        ),
        Route::AddRestoreRequest => parse(&body).map_or_else(
            |e| e,
            |req: RestoreRequest| add_restore_request(&mut shared.writer(), &identity, req),
        ),
        Route::NextRestoreRequest => next_restore_request(
            &mut shared.writer(),
            &identity,
            query_param(request.url(), "host"),
        ),
        Route::AbandonRestoreRequests => parse(&body).map_or_else(
            |e| e,
            |req: AbandonRequest| {
                let host = match restore_host(&identity, req.host.as_deref()) {
                    Ok(host) => host,
                    Err(answer) => return answer,
                };
                match shared.writer().abandon_restore_requests(&host, now()) {
                    Ok(n) => Answer::json(200, &serde_json::json!({ "failed": n })),
                    Err(e) => store_error(&e),
                }
            },
        ),
        Route::RestoreRequestStatus => parse(&body).map_or_else(
            |e| e,
            |status: RestoreStatus| {
                let id = restore_request_id(&path).map_or("", |(id, _)| id);
                restore_request_status(&mut shared.writer(), &identity, id, status)
            },
        ),
        Route::RestoreRequest => {
            let id = restore_request_id(&path).map_or("", |(id, _)| id);
            get_restore_request(store, &identity, policy.host_read, id)
        }
        Route::Healthz => Answer::text(200, "ok\n".into(), "text/plain; charset=utf-8"),
        Route::Metrics => {
            let fleet = fleet(&shared.db_path, store)
                .map_err(|e| log::error!("metadb: metrics: cannot read the database: {e}"))
                .ok();
            Answer::text(
                200,
                shared.metrics.render(fleet.as_ref()),
                "text/plain; version=0.0.4; charset=utf-8",
            )
        }
    };
    (endpoint, send(request, answer, &[]))
}

/// Whether tiny_http has read the whole body already: it does so for a
/// `Content-Length` of at most 1024 bytes without `Expect: 100-continue`, and
/// a request with neither length nor chunked encoding has none.
fn is_buffered(request: &Request) -> bool {
    let header = |name: &'static str| request.headers().iter().any(|h| h.field.equiv(name));
    match request.body_length() {
        Some(n) => n <= 1024 && !header("Expect"),
        None => !header("Transfer-Encoding"),
    }
}

fn read_limited(request: &mut Request, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let limit = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    request
        .as_reader()
        .take(limit)
        .read_to_end(&mut body)
        .map_err(|e| e.to_string())?;
    Ok(body)
}

/// Answers a request whose announced body is over `limit` with 413, without
/// reading it.
///
/// tiny_http drains an unread body when the request is dropped, into one
/// buffer of the announced size. Up to [`DRAIN_SLACK`] over the limit that is
/// harmless and keeps the connection usable. Past it the allocation could
/// abort the process, so the 413 goes out through `upgrade` (which hands
/// over the connection) and the connection is deliberately leaked: its
/// socket and its tiny_http thread stay until the process exits. That costs
/// the sender a connection per leak, like an idle one; the proxy in front
/// (`client_max_body_size`) keeps such requests away entirely.
fn refuse_oversized(request: Request, announced: usize, limit: usize, shared: &Shared) -> u16 {
    let answer = Answer::error(413, format!("request body over {limit} bytes"));
    if announced <= limit.saturating_add(DRAIN_SLACK) {
        return send(request, answer, &[("Connection", "close")]);
    }
    log::warn!(
        "metadb: request from {} announced a {announced}-byte body: answered 413 and abandoned \
         the connection",
        request
            .remote_addr()
            .map_or_else(|| "?".to_string(), ToString::to_string)
    );
    shared.metrics.abandon();
    let response = Response::from_string(answer.body).with_status_code(413);
    let response = with_headers(response, &[("Content-Type", answer.content_type)]);
    let stream = request.upgrade("close", response);
    std::mem::forget(stream);
    413
}

/// Adds headers; tiny_http refuses only non-ASCII ones, and these are
/// constants or ASCII numbers.
fn with_headers(
    mut response: Response<std::io::Cursor<Vec<u8>>>,
    headers: &[(&str, &str)],
) -> Response<std::io::Cursor<Vec<u8>>> {
    for (name, value) in headers {
        if let Ok(header) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(header);
        }
    }
    response
}

/// Writes `answer`; returns its status.
fn send(request: Request, answer: Answer, headers: &[(&str, &str)]) -> u16 {
    let response = Response::from_string(answer.body).with_status_code(answer.status);
    let response = with_headers(response, &[("Content-Type", answer.content_type)]);
    let response = with_headers(response, headers);
    if let Err(e) = request.respond(response) {
        log::debug!("metadb: cannot send the answer: {e}");
    }
    answer.status
}

/// Decodes a JSON body, or the 400 answer saying why not.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Answer> {
    serde_json::from_slice(body).map_err(|e| Answer::error(400, format!("malformed JSON: {e}")))
}

fn store_error(e: &store::Error) -> Answer {
    match e {
        store::Error::InvalidRequest(_) => Answer::error(400, e.to_string()),
        store::Error::Conflict(_) => Answer::error(409, e.to_string()),
        store::Error::Sqlite(rusqlite::Error::SqliteFailure(f, _))
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            Answer::error(503, e.to_string())
        }
        store::Error::Sqlite(_) => {
            log::error!("metadb: {e}");
            Answer::error(500, e.to_string())
        }
    }
}

fn add_dataset(store: &mut Store, identity: &Identity, req: AddDatasetRequest) -> Answer {
    if let Identity::Host(host) = identity {
        if req.backup.host != *host {
            return Answer::error(
                403,
                format!(
                    "the token of host {host} may not write records of host {}",
                    req.backup.host
                ),
            );
        }
    }
    match store.add_dataset(&req.backup, &req.dataset) {
        Ok(()) => Answer::json(200, &serde_json::json!({})),
        Err(e) => store_error(&e),
    }
}

fn remove_datasets(store: &mut Store, identity: &Identity, req: &RemoveDatasetsRequest) -> Answer {
    if let Identity::Host(host) = identity {
        if req.host != *host {
            return Answer::error(
                403,
                format!(
                    "the token of host {host} may not remove records of host {}",
                    req.host
                ),
            );
        }
    }
    match store.remove_datasets(&req.host, &req.dataset_ids) {
        Ok(removed) => Answer::json(200, &RemoveDatasetsAnswer { removed }),
        Err(e) => store_error(&e),
    }
}

/// Now, as the store keeps times: unix seconds.
fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn add_verification(store: &mut Store, identity: &Identity, v: &Verification) -> Answer {
    if let Identity::Host(host) = identity {
        if v.host != *host {
            return Answer::error(
                403,
                format!(
                    "the token of host {host} may not write records of host {}",
                    v.host
                ),
            );
        }
    }
    match store.add_verification(v) {
        Ok(()) => Answer::json(200, &serde_json::json!({})),
        Err(e) => store_error(&e),
    }
}

/// Files `req`, under a new id if it has none.
fn add_restore_request(store: &mut Store, identity: &Identity, mut req: RestoreRequest) -> Answer {
    if let Identity::Host(host) = identity {
        return Answer::error(
            403,
            format!("the token of host {host} may not create restore requests (admin only)"),
        );
    }
    if req.id.is_empty() {
        req.id = crate::model::new_id();
    }
    let req = &req;
    let stored = store
        .add_restore_request(req, now())
        .and_then(|()| store.restore_request(&req.id));
    match stored {
        Ok(Some(stored)) => Answer::json(200, &stored),
        Ok(None) => Answer::error(500, format!("restore request {} vanished", req.id)),
        Err(e) => store_error(&e),
    }
}

/// The host a restore request call is about: a host token's own, or with
/// an admin token the one named (`asked`).
fn restore_host(identity: &Identity, asked: Option<&str>) -> Result<String, Answer> {
    match (identity, asked) {
        (Identity::Host(own), Some(asked)) if asked != own => Err(Answer::error(
            403,
            format!("the token of host {own} may only pick up its own restore requests"),
        )),
        (Identity::Host(own), _) => Ok(own.clone()),
        (Identity::Admin, Some(asked)) => Ok(asked.to_string()),
        (Identity::Admin, None) => Err(Answer::error(400, "name the host (host=NAME)")),
    }
}

fn next_restore_request(store: &mut Store, identity: &Identity, asked: Option<&str>) -> Answer {
    let host = match restore_host(identity, asked) {
        Ok(host) => host,
        Err(answer) => return answer,
    };
    match store.next_restore_request(&host, now()) {
        Ok(Some(request)) => Answer::json(200, &request),
        Ok(None) => Answer::text(204, String::new(), "application/json"),
        Err(e) => store_error(&e),
    }
}

fn restore_request_status(
    store: &mut Store,
    identity: &Identity,
    id: &str,
    status: RestoreStatus,
) -> Answer {
    let host = match restore_host(identity, status.host.as_deref()) {
        Ok(host) => host,
        Err(answer) => return answer,
    };
    match store.update_restore_request(&host, id, &status.state, &status.message, now()) {
        Ok(true) => Answer::json(200, &serde_json::json!({})),
        Ok(false) => Answer::error(404, format!("host {host} has no restore request {id}")),
        Err(e) => store_error(&e),
    }
}

fn get_restore_request(
    store: &Store,
    identity: &Identity,
    host_read: HostRead,
    id: &str,
) -> Answer {
    match store.restore_request(id) {
        Ok(Some(request)) => match (identity, host_read) {
            (Identity::Host(own), HostRead::Own) if request.host != *own => Answer::error(
                403,
                format!("the token of host {own} may only read its own records (host_read: own)"),
            ),
            _ => Answer::json(200, &request),
        },
        Ok(None) => Answer::error(404, format!("no restore request {id}")),
        Err(e) => store_error(&e),
    }
}

fn find_atoms(
    store: &Store,
    identity: &Identity,
    host_read: HostRead,
    mut req: FindRequest,
) -> Answer {
    if let (Identity::Host(own), HostRead::Own) = (identity, host_read) {
        match &req.host {
            Some(host) if host != own => {
                return Answer::error(
                    403,
                    format!(
                        "the token of host {own} may only read its own records (host_read: own)"
                    ),
                )
            }
            _ => req.host = Some(own.clone()),
        }
    }
    match store.find_atoms(&req) {
        Ok(backups) => Answer::json(200, &backups),
        Err(e) => store_error(&e),
    }
}

fn update_jobs(shared: &Shared, identity: &Identity, req: UpdateActiveJobStatusRequest) -> Answer {
    if let Identity::Host(own) = identity {
        if req.host != *own {
            return Answer::error(
                403,
                format!(
                    "the token of host {own} may not report jobs of host {}",
                    req.host
                ),
            );
        }
    }
    if let Err(e) = record::check_jobs(&req) {
        return Answer::error(400, e);
    }
    if let Some(job) = req.active_jobs.iter().find(|j| j.host != req.host) {
        return Answer::error(
            400,
            format!(
                "job {} is of host {}, not {}",
                job.job_id, job.host, req.host
            ),
        );
    }
    shared.jobs.update(req);
    Answer::json(200, &serde_json::json!({}))
}

/// What a scrape shows of the database.
fn fleet(db_path: &Path, store: &Store) -> Result<Fleet, String> {
    let last_backups = store.newest_backups().map_err(|e| e.to_string())?;
    let size = |suffix: &str| {
        let mut path = db_path.as_os_str().to_owned();
        path.push(suffix);
        std::fs::metadata(path).map_or(0, |m| m.len())
    };
    Ok(Fleet {
        database_bytes: size("") + size("-wal"),
        last_backups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadb::auth::{Digest, Tokens};
    use crate::metadb::client::{self, Client};
    use crate::model::{Atom, Backup, Dataset};
    use std::time::Duration;

    fn record(host: &str, dataset: &str) -> AddDatasetRequest {
        AddDatasetRequest {
            backup: Backup {
                id: format!("b-{dataset}"),
                timestamp: "2024-05-01T00:00:00Z".into(),
                host: host.into(),
                datasets: vec![],
            },
            dataset: Dataset {
                id: dataset.into(),
                source: "users".into(),
                atoms: vec![Atom {
                    name: "users/alice".into(),
                    path: None,
                }],
                snapshot_id: "s".into(),
                total_files: 0,
                total_bytes: 0,
                bytes_added: 0,
                duration: 0.0,
            },
        }
    }

    #[test]
    fn serves_the_real_client_and_shuts_down() {
        let dir = std::env::temp_dir().join(format!("tabacco-server-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let token_file = dir.join("token");
        std::fs::write(&token_file, "web3-token\n").unwrap();
        let config = Config {
            db_path: dir.join("db.sqlite"),
            http_addr: "127.0.0.1:0".into(),
            policy: Policy {
                tokens: Tokens::new(vec![(
                    Digest::of("web3-token"),
                    Identity::Host("web3".into()),
                )])
                .unwrap(),
                host_read: HostRead::All,
                max_body_bytes: 1 << 20,
            },
        };
        let running = start(&config, "127.0.0.1:0", |msg| panic!("{msg}")).unwrap();
        let addr = running.addr();
        let client = |token: Option<&std::path::Path>| {
            Client::new(&crate::config::Metadb {
                url: format!("http://{addr}/"),
                token_file: token.map(Into::into),
                tls: crate::config::raw::Tls::default(),
                request_max_timeout: Duration::from_secs(10),
            })
            .unwrap()
        };
        let web3 = client(Some(&token_file));
        web3.add_dataset(&record("web3", "d1")).unwrap();
        web3.add_dataset(&record("web3", "d1")).unwrap();
        let err = web3.add_dataset(&record("web4", "d2")).unwrap_err();
        assert!(
            matches!(err, client::Error::Rejected { status: 403, .. }),
            "{err}"
        );
        let err = client(None)
            .find_atoms(&FindRequest::default())
            .unwrap_err();
        assert!(
            matches!(err, client::Error::Rejected { status: 401, .. }),
            "{err}"
        );
        let found = web3
            .find_atoms(&FindRequest {
                pattern: "users/*".into(),
                ..FindRequest::default()
            })
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].datasets[0].id, "d1");

        let stopping = Instant::now();
        running.shutdown();
        assert!(stopping.elapsed() < Duration::from_secs(2));
        // A fresh client: kept-alive connections outlive the listener until
        // the process exits.
        let err = client(Some(&token_file))
            .find_atoms(&FindRequest::default())
            .unwrap_err();
        assert!(matches!(err, client::Error::Unavailable(_)), "{err}");
        assert!(std::net::TcpStream::connect(addr).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_client_files_and_picks_up_restore_requests() {
        let dir = std::env::temp_dir().join(format!("tabacco-server-rr-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = Config {
            db_path: dir.join("db.sqlite"),
            http_addr: "127.0.0.1:0".into(),
            policy: Policy {
                tokens: Tokens::default(),
                host_read: HostRead::All,
                max_body_bytes: 1 << 20,
            },
        };
        let running = start(&config, "127.0.0.1:0", |msg| panic!("{msg}")).unwrap();
        let client = Client::new(&crate::config::Metadb {
            url: format!("http://{}", running.addr()),
            token_file: None,
            tls: crate::config::raw::Tls::default(),
            request_max_timeout: Duration::from_secs(10),
        })
        .unwrap();
        let AddDatasetRequest { backup, dataset } = record("web2", "d1");
        let request = RestoreRequest {
            id: "r1".into(),
            host: "web3".into(),
            target: Some("/srv/restore".into()),
            items: vec![crate::model::RestoreItem { backup, dataset }],
            state: String::new(),
            message: String::new(),
            created: String::new(),
            updated: String::new(),
        };
        let stored = client.add_restore_request(&request).unwrap();
        assert_eq!(stored.state, "pending");
        assert_eq!(client.next_restore_request("web2").unwrap(), None);
        let next = client.next_restore_request("web3").unwrap().unwrap();
        assert_eq!((next.id.as_str(), next.state.as_str()), ("r1", "running"));
        assert_eq!(next.target.as_deref(), Some("/srv/restore"));
        assert_eq!(client.next_restore_request("web3").unwrap(), None);
        let status = crate::metadb::api::RestoreStatus {
            host: Some("web3".into()),
            state: "failed".into(),
            message: "disk full".into(),
        };
        client.update_restore_request("r1", &status).unwrap();
        let read = client.restore_request("r1").unwrap().unwrap();
        assert_eq!(
            (read.state.as_str(), read.message.as_str()),
            ("failed", "disk full")
        );
        assert_eq!(client.restore_request("r2").unwrap(), None);
        running.shutdown();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
