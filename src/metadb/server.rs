//! The metadb HTTP server: routing, authentication and authorisation,
//! status codes and metrics, over the transport in `metadb::http` (which
//! owns connections, parsing, limits and deadlines).
//!
//! Requests are served on their connection's thread, reading with one of a
//! fixed set of SQLite connections to the same file (WAL lets readers run
//! beside the one writer) and writing through the one writing connection.
//! Recording and finding are the store's; signals, configuration reloads
//! and the process exit status are `cmd::metadb`'s. No request may take the
//! server down: every failure becomes a status code, and a panic a 500.
//!
//! A find's answer is streamed: written as its rows are read, so that the
//! newest version of every atom of the fleet takes the memory of one
//! backup. Its status is sent first; a failure after that cuts the answer
//! short (the client sees it truncated).

use crate::metadb::api::{
    AbandonRequest, Attempt, HistoryRequest, Plan, RemoveDatasetsAnswer, RemoveDatasetsRequest,
    RestoreStatus, RetireRequest, StatusRequest, StatusRow,
};
use crate::metadb::auth::Identity;
use crate::metadb::config::{Config, HostRead, Policy};
use crate::metadb::http::{self, Body, Response};
use crate::metadb::jobs::Registry;
use crate::metadb::metrics::{Fleet, Metrics};
use crate::metadb::record;
use crate::metadb::store::{self, Store};
use crate::metadb::watch::Watch;
use crate::metadb::writer::{self, Writer};
use crate::model::{
    AddDatasetRequest, FindRequest, RestoreRequest, UpdateActiveJobStatusRequest, Verification,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// Reading connections to the database: enough for reads to overlap the one
/// writer SQLite allows, few enough to stay small on a small machine.
pub const READERS: usize = 8;

/// A kept-alive connection waiting for its next request is closed after
/// this long: longer than clients keep idle connections (ureq: 15 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A request must arrive whole this long after its first byte.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a scrape's view of the database is reused.
const FLEET_TTL: Duration = Duration::from_secs(5);

/// How often attempts past their retention are trimmed (at a plan's
/// publication, which every agent sends periodically).
const TRIM_INTERVAL: Duration = Duration::from_secs(3600);

/// How long shutdown waits for requests in progress.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Descriptors kept for the database, the listener and the log when the
/// connection cap is derived from the descriptor limit.
const RESERVED_DESCRIPTORS: u64 = 64;

/// Open connections at most, whatever the descriptor limit.
const MAX_CONNECTIONS: u64 = 1024;

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

/// What the connections share.
struct Shared {
    policy: RwLock<Arc<Policy>>,
    /// Whether the listening address is loopback only.
    loopback: bool,
    metrics: Metrics,
    jobs: Registry,
    db_path: PathBuf,
    readers: Readers,
    /// The last [`Shared::fleet`] read, and when.
    fleet: Mutex<Option<(Instant, Option<Arc<Fleet>>)>>,
    /// When attempts were last trimmed.
    trimmed: Mutex<Option<Instant>>,
    /// When each host's token was last used, since the server started:
    /// any request counts as a sign of life, not only those the database
    /// keeps.
    seen: Mutex<HashMap<String, DateTime<Utc>>>,
    /// The one connection that writes. SQLite runs one writer at a time
    /// anyway; taking turns here rather than in SQLite's busy handler (which
    /// sleeps) keeps this connection's page cache valid from one write to
    /// the next, and lets concurrent writes share one commit.
    writer: Writer,
}

impl Shared {
    /// What a scrape shows of the database, at most [`FLEET_TTL`] old: the
    /// newest backup of every host and source is a scan of all datasets,
    /// and eight scrapers reading it afresh slowed every other read (a
    /// find from 1 ms to 250 ms at 61,000 datasets). Scrapes that find it
    /// stale wait for the one that reads it.
    fn fleet(&self) -> Option<Arc<Fleet>> {
        let mut cached = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((read, fleet)) = &*cached {
            if read.elapsed() < FLEET_TTL {
                return fleet.clone();
            }
        }
        let policy = self.policy();
        let fleet = self
            .status(&policy, &StatusRequest::default())
            .map_err(|e| e.to_string())
            .and_then(|status| self.read(|store| fleet(&self.db_path, store, status)))
            .map_err(|e| log::error!("metadb: metrics: cannot read the database: {e}"))
            .ok()
            .map(Arc::new);
        *cached = Some((Instant::now(), fleet.clone()));
        fleet
    }

    /// Runs `f` with one of the reading connections, once one is free.
    fn read<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        match self.readers.with(f) {
            Ok(out) => out,
            // The connection is back in the pool; the request answers 500.
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Runs `f` on the writing connection, committed with the writes beside
    /// it; its answer once that is durable.
    fn write(&self, f: impl FnOnce(&mut Store) -> Answer + Send + 'static) -> Answer {
        match self.writer.write(f) {
            Ok(answer) => answer,
            Err(e @ writer::Error::Stopped) => Answer::error(503, e.to_string()),
            Err(e) => Answer::error(500, e.to_string()),
        }
    }
}

/// The reading connections not in use.
struct Readers {
    idle: Mutex<Vec<Store>>,
    returned: Condvar,
}

impl Readers {
    /// Runs `f` with a reading connection, once one is free, and gives the
    /// connection back, also when `f` panics (which it returns as an error).
    fn with<T>(&self, f: impl FnOnce(&Store) -> T) -> std::thread::Result<T> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let store = loop {
            if let Some(store) = idle.pop() {
                break store;
            }
            idle = self
                .returned
                .wait(idle)
                .unwrap_or_else(PoisonError::into_inner);
        };
        drop(idle);
        let result = catch_unwind(AssertUnwindSafe(|| f(&store)));
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(store);
        self.returned.notify_one();
        result
    }
}

/// A started server: its address, its policy, and the way to stop it.
pub struct Running {
    transport: http::Transport,
    watch: Watch,
    shared: Arc<Shared>,
    addr: SocketAddr,
    max_connections: usize,
}

/// Opens the database, binds `http_addr` and starts accepting. `fatal` is
/// called (from the accept thread) if the listener dies and the server can
/// no longer serve; the caller should then shut it down and exit non-zero,
/// so that its service manager starts it again.
pub fn start(
    config: &Config,
    http_addr: &str,
    fatal: impl Fn(String) + Send + Sync + 'static,
) -> Result<Running, Error> {
    let resolved = crate::addr::resolve(http_addr)
        .map_err(|e| Error::Config(format!("cannot resolve http_addr {http_addr}: {e}")))?;
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
    // Opening once first creates and migrates the file before the others
    // race to.
    let open = |store: Result<Store, store::Error>| {
        store.map_err(|e| {
            Error::Start(format!(
                "cannot open database {}: {e}",
                config.db_path.display()
            ))
        })
    };
    let writer = open(Store::open(&config.db_path))?;
    let mut readers = Vec::with_capacity(READERS);
    for _ in 0..READERS {
        readers.push(open(open_reader(&config.db_path))?);
    }

    let listener = std::net::TcpListener::bind(resolved.as_slice())
        .map_err(|e| Error::Start(format!("cannot listen on {http_addr}: {e}")))?;
    tune(&listener);
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Start(format!("cannot listen on {http_addr}: {e}")))?;
    let shared = Arc::new(Shared {
        policy: RwLock::new(Arc::new(config.policy.clone())),
        loopback,
        metrics: Metrics::default(),
        jobs: Registry::default(),
        db_path: config.db_path.clone(),
        readers: Readers {
            idle: Mutex::new(readers),
            returned: Condvar::new(),
        },
        fleet: Mutex::new(None),
        trimmed: Mutex::new(None),
        seen: Mutex::new(HashMap::new()),
        writer: Writer::start(writer)
            .map_err(|e| Error::Start(format!("cannot start the writer thread: {e}")))?,
    });
    let max_connections = max_connections();
    let limits = http::Limits {
        connections: max_connections,
        idle: IDLE_TIMEOUT,
        request: REQUEST_TIMEOUT,
    };
    let transport = http::start(listener, limits, shared.clone(), Arc::new(fatal))
        .map_err(|e| Error::Start(format!("cannot start the accept thread: {e}")))?;
    let (for_policy, for_status) = (Arc::clone(&shared), Arc::clone(&shared));
    let watch = Watch::spawn(
        move || for_policy.policy(),
        move |policy| {
            for_status
                .status(policy, &StatusRequest::default())
                .map_err(|e| e.to_string())
        },
        Arc::clone(&shared.metrics.notifications),
    )
    .map_err(Error::Start)?;
    Ok(Running {
        transport,
        watch,
        shared,
        addr,
        max_connections,
    })
}

/// How many connections may be open: what the descriptor limit leaves after
/// [`RESERVED_DESCRIPTORS`], at most [`MAX_CONNECTIONS`].
fn max_connections() -> usize {
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
    let cap = soft
        .saturating_sub(RESERVED_DESCRIPTORS)
        .clamp(16, MAX_CONNECTIONS);
    usize::try_from(cap).unwrap_or(16)
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

    /// How many connections may be open at once.
    pub fn max_connections(&self) -> usize {
        self.max_connections
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

    /// Stops accepting, closes idle connections, and lets the requests in
    /// progress finish (for at most ten seconds).
    pub fn shutdown(self) {
        self.watch.stop();
        self.transport.stop(SHUTDOWN_GRACE);
        self.shared.writer.stop();
    }
}

/// A connection for reading, with a small page cache: the kernel's holds
/// the file, and full-size ones (2 MiB each, one per reader) would sit in
/// the server's memory for good.
fn open_reader(db_path: &Path) -> Result<Store, store::Error> {
    Store::open(db_path).and_then(|s| s.with_cache_kib(512))
}

impl http::Handler for Shared {
    fn body_limit(&self) -> usize {
        self.policy().max_body_bytes
    }

    /// Answers `request`, counts it, and logs it at debug level.
    fn handle(&self, request: http::Request) -> Response<'_> {
        let started = Instant::now();
        let (method, target) = (request.method.clone(), request.target.clone());
        let outcome = catch_unwind(AssertUnwindSafe(|| handle(&request, self)));
        let (endpoint, response) = outcome.unwrap_or_else(|_| {
            log::error!("metadb: {method} {target}: internal error (panic), answered 500");
            (
                "other",
                Answer::error(500, "internal error").into_response(vec![]),
            )
        });
        self.metrics
            .observe(endpoint, response.status, started.elapsed());
        log::debug!(
            "metadb: {method} {target} -> {} in {:.1} ms",
            response.status,
            started.elapsed().as_secs_f64() * 1000.0
        );
        response
    }

    fn count(&self, why: &'static str) {
        self.metrics.connection(why);
    }
}

impl Shared {
    /// The fleet's status as `req` asks for it, with the sources whose
    /// agents report them running.
    fn status(&self, policy: &Policy, req: &StatusRequest) -> Result<Vec<StatusRow>, store::Error> {
        let mut rows = Vec::new();
        self.read(|store| {
            self.for_each_status(store, policy, req, |row| {
                rows.push(row.clone());
                Ok::<(), store::Error>(())
            })
        })?;
        Ok(rows)
    }

    /// The rows of [`Shared::status`], read with `store` and handed to `f`
    /// one at a time.
    fn for_each_status<E: From<store::Error>>(
        &self,
        store: &Store,
        policy: &Policy,
        req: &StatusRequest,
        f: impl FnMut(&StatusRow) -> Result<(), E>,
    ) -> Result<(), E> {
        // Sources running, by host: looked up for every row, without
        // copying its names.
        let mut running: HashMap<String, Vec<String>> = HashMap::new();
        for job in self.jobs.list(None) {
            running
                .entry(job.host)
                .or_default()
                .push(job.dataset_source);
        }
        let is_running = |host: &str, source: &str| {
            running
                .get(host)
                .is_some_and(|sources| sources.iter().any(|s| s == source))
        };
        let heard: HashMap<String, String> = self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(host, t)| (host.clone(), crate::time::format(*t)))
            .collect();
        let clock = store::Clock {
            now: now(),
            grace: i64::try_from(policy.overdue_grace.as_secs()).unwrap_or(i64::MAX),
            running: &is_running,
            heard: &heard,
        };
        store.for_each_status(req, &clock, f)
    }

    /// The time before which attempts are trimmed, once an hour; `None`
    /// between.
    fn trim_due(&self, policy: &Policy) -> Option<i64> {
        let mut last = self.trimmed.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|t| t.elapsed() < TRIM_INTERVAL) {
            return None;
        }
        *last = Some(Instant::now());
        let retention = i64::try_from(policy.attempt_retention.as_secs()).unwrap_or(i64::MAX);
        Some(now().saturating_sub(retention))
    }

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
    /// `POST /api/attempts`.
    AddAttempt,
    /// `POST /api/plans`.
    PublishPlan,
    /// `POST /api/history`.
    History,
    /// `POST /api/status`.
    Status,
    /// `POST /api/retire_host`.
    RetireHost,
    /// `GET /`: the status page.
    Page,
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
            "/api/attempts" => Route::AddAttempt,
            "/api/plans" => Route::PublishPlan,
            "/api/history" => Route::History,
            "/api/status" => Route::Status,
            "/api/retire_host" => Route::RetireHost,
            "/" => Route::Page,
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
            Route::AddAttempt => "/api/attempts",
            Route::PublishPlan => "/api/plans",
            Route::History => "/api/history",
            Route::Status => "/api/status",
            Route::RetireHost => "/api/retire_host",
            Route::Page => "/",
            Route::Healthz => "/healthz",
            Route::Metrics => "/metrics",
        }
    }

    fn method(self) -> &'static str {
        match self {
            Route::AddDataset
            | Route::RemoveDatasets
            | Route::FindAtoms
            | Route::UpdateActiveJobStatus
            | Route::AddVerification
            | Route::AddRestoreRequest
            | Route::AbandonRestoreRequests
            | Route::RestoreRequestStatus
            | Route::AddAttempt
            | Route::PublishPlan
            | Route::History
            | Route::Status
            | Route::RetireHost => "POST",
            Route::ActiveJobs
            | Route::NextRestoreRequest
            | Route::RestoreRequest
            | Route::Page
            | Route::Healthz
            | Route::Metrics => "GET",
        }
    }

    /// Whether a token is needed when tokens are configured. Health,
    /// metrics and the status page are open, as Prometheus exporters are;
    /// restrict them at the proxy if host and source names, or the reasons
    /// backups failed, are sensitive.
    fn needs_token(self) -> bool {
        !matches!(self, Route::Healthz | Route::Metrics | Route::Page)
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

    fn into_response(self, headers: Vec<(&'static str, String)>) -> Response<'static> {
        Response {
            status: self.status,
            content_type: self.content_type,
            body: self.body.into(),
            headers,
        }
    }
}

/// Answers `request`; returns its endpoint label and status.
fn handle<'a>(request: &http::Request, shared: &'a Shared) -> (&'static str, Response<'a>) {
    let policy = shared.policy();
    let path = request.path();
    let route = Route::find(path);
    let endpoint = route.map_or("other", Route::endpoint);
    let body = &request.body;
    let Some(route) = route else {
        return (
            endpoint,
            Answer::error(404, "no such endpoint").into_response(vec![]),
        );
    };
    if request.method != route.method() {
        let allow = route.method();
        let answer = Answer::error(405, format!("{path} takes {allow} only"));
        return (
            endpoint,
            answer.into_response(vec![("Allow", allow.into())]),
        );
    }
    // Without tokens (loopback only) every caller is trusted.
    let identity = if policy.tokens.is_empty() || !route.needs_token() {
        Identity::Admin
    } else {
        match policy.tokens.identify(request.header("Authorization")) {
            Some(identity) => identity,
            None => {
                let answer = Answer::error(401, "missing or unknown bearer token");
                return (
                    endpoint,
                    answer.into_response(vec![("WWW-Authenticate", "Bearer".into())]),
                );
            }
        }
    };

    if let Identity::Host(host) = &identity {
        let mut seen = shared.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.insert(host.clone(), Utc::now());
    }

    let answer = match route {
        Route::AddDataset => parse(body).map_or_else(
            |e| e,
            |req: AddDatasetRequest| {
                let identity = identity.clone();
                shared.write(move |store| add_dataset(store, &identity, req))
            },
        ),
        Route::RemoveDatasets => parse(body).map_or_else(
            |e| e,
            |req: RemoveDatasetsRequest| {
                let identity = identity.clone();
                shared.write(move |store| remove_datasets(store, &identity, &req))
            },
        ),
        Route::FindAtoms => {
            match parse(body).and_then(|req| find_request(&identity, policy.host_read, req)) {
                Ok(req) => return (endpoint, find_atoms(shared, req)),
                Err(answer) => answer,
            }
        }
        Route::UpdateActiveJobStatus => parse(body).map_or_else(
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
        Route::AddVerification => parse(body).map_or_else(
            |e| e,
            |v: Verification| {
                let identity = identity.clone();
                shared.write(move |store| add_verification(store, &identity, &v))
            },
        ),
        Route::AddRestoreRequest => parse(body).map_or_else(
            |e| e,
            |req: RestoreRequest| {
                let identity = identity.clone();
                shared.write(move |store| add_restore_request(store, &identity, req))
            },
        ),
        Route::NextRestoreRequest => {
            let asked = query_param(&request.target, "host").map(str::to_string);
            shared.write(move |store| next_restore_request(store, &identity, asked.as_deref()))
        }
        Route::AbandonRestoreRequests => parse(body).map_or_else(
            |e| e,
            |req: AbandonRequest| {
                let host = match restore_host(&identity, req.host.as_deref()) {
                    Ok(host) => host,
                    Err(answer) => return answer,
                };
                shared.write(
                    move |store| match store.abandon_restore_requests(&host, now()) {
                        Ok(n) => Answer::json(200, &serde_json::json!({ "failed": n })),
                        Err(e) => store_error(&e),
                    },
                )
            },
        ),
        Route::RestoreRequestStatus => parse(body).map_or_else(
            |e| e,
            |status: RestoreStatus| {
                let id = restore_request_id(path)
                    .map_or("", |(id, _)| id)
                    .to_string();
                let identity = identity.clone();
                shared.write(move |store| restore_request_status(store, &identity, &id, status))
            },
        ),
        Route::RestoreRequest => {
            let id = restore_request_id(path).map_or("", |(id, _)| id);
            shared.read(|store| get_restore_request(store, &identity, policy.host_read, id))
        }
        Route::AddAttempt => parse(body).map_or_else(
            |e| e,
            |a: Attempt| match own(&identity, &a.host, "write records of") {
                Some(refused) => refused,
                None => shared.write(move |store| match store.add_attempt(&a, now()) {
                    Ok(()) => Answer::json(200, &serde_json::json!({})),
                    Err(e) => store_error(&e),
                }),
            },
        ),
        Route::PublishPlan => parse(body).map_or_else(
            |e| e,
            |plan: Plan| match own(&identity, &plan.host, "publish the plan of") {
                Some(refused) => refused,
                None => {
                    let trim_before = shared.trim_due(&policy);
                    shared.write(move |store| publish_plan(store, &plan, trim_before))
                }
            },
        ),
        Route::History => parse(body).map_or_else(
            |e| e,
            |mut req: HistoryRequest| match read_scope(&identity, policy.host_read, &mut req.host) {
                Some(refused) => refused,
                None => shared.read(|store| match store.history(&req) {
                    Ok(attempts) => Answer::json(200, &attempts),
                    Err(e) => store_error(&e),
                }),
            },
        ),
        Route::Status => match parse::<StatusRequest>(body) {
            Ok(mut req) => match read_scope(&identity, policy.host_read, &mut req.host) {
                Some(refused) => refused,
                None => return (endpoint, status(shared, policy, req)),
            },
            Err(answer) => answer,
        },
        Route::RetireHost => parse(body).map_or_else(
            |e| e,
            |req: RetireRequest| {
                if let Identity::Host(host) = &identity {
                    return Answer::error(
                        403,
                        format!("the token of host {host} may not retire hosts (admin only)"),
                    );
                }
                shared.write(move |store| match store.retire_host(&req.host) {
                    Ok(true) => Answer::json(200, &serde_json::json!({})),
                    Ok(false) => Answer::error(404, format!("no host {} is known", req.host)),
                    Err(e) => store_error(&e),
                })
            },
        ),
        Route::Page => match shared.fleet() {
            Some(fleet) => Answer::text(
                200,
                crate::metadb::page::render(
                    &fleet.status,
                    &crate::time::format(chrono::Utc::now()),
                ),
                "text/html; charset=utf-8",
            ),
            None => Answer::error(503, "the database cannot be read"),
        },
        Route::Healthz => Answer::text(200, "ok\n".into(), "text/plain; charset=utf-8"),
        Route::Metrics => {
            let fleet = shared.fleet();
            Answer::text(
                200,
                shared.metrics.render(fleet.as_deref()),
                "text/plain; version=0.0.4; charset=utf-8",
            )
        }
    };
    (endpoint, answer.into_response(vec![]))
}

/// The 403 answer if `identity` is another host's than `host`'s.
fn own(identity: &Identity, host: &str, verb: &str) -> Option<Answer> {
    match identity {
        Identity::Host(own) if own != host => Some(Answer::error(
            403,
            format!("the token of host {own} may not {verb} host {host}"),
        )),
        _ => None,
    }
}

/// Narrows a read to a host token's own host under `host_read: own`; the
/// 403 answer if it asked for another.
fn read_scope(
    identity: &Identity,
    host_read: HostRead,
    asked: &mut Option<String>,
) -> Option<Answer> {
    if let (Identity::Host(own), HostRead::Own) = (identity, host_read) {
        match asked {
            Some(host) if host != own => {
                return Some(Answer::error(
                    403,
                    format!(
                        "the token of host {own} may only read its own records (host_read: own)"
                    ),
                ))
            }
            _ => *asked = Some(own.clone()),
        }
    }
    None
}

/// Records `plan`, and trims attempts older than `trim_before` if given.
fn publish_plan(store: &mut Store, plan: &Plan, trim_before: Option<i64>) -> Answer {
    if let Some(before) = trim_before {
        match store.trim(before) {
            Ok(0) => {}
            Ok(n) => {
                log::info!("metadb: trimmed {n} attempts and verifications past attempt_retention")
            }
            Err(e) => log::error!("metadb: cannot trim attempts and verifications: {e}"),
        }
    }
    match store.publish_plan(plan, now()) {
        Ok(()) => Answer::json(200, &serde_json::json!({})),
        Err(e) => store_error(&e),
    }
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

/// `req` as `identity` may ask it (a host token reading only its own
/// records gets its host filled in), if it can be answered.
fn find_request(
    identity: &Identity,
    host_read: HostRead,
    mut req: FindRequest,
) -> Result<FindRequest, Answer> {
    if let (Identity::Host(own), HostRead::Own) = (identity, host_read) {
        match &req.host {
            Some(host) if host != own => {
                return Err(Answer::error(
                    403,
                    format!(
                        "the token of host {own} may only read its own records (host_read: own)"
                    ),
                ))
            }
            _ => req.host = Some(own.clone()),
        }
    }
    store::check_find(&req).map_err(|e| store_error(&e))?;
    Ok(req)
}

/// The answer to a find: a JSON array of backups, written one backup at a
/// time as the rows are read, with one reading connection held meanwhile.
fn find_atoms(shared: &Shared, req: FindRequest) -> Response<'_> {
    json_array(
        shared,
        format!("find_atoms {:?}", req.pattern),
        move |store, each| store.for_each_found(&req, |backup| each(&backup)),
    )
}

/// The answer to `/api/status`: a JSON array of rows, streamed like a find.
fn status(shared: &Shared, policy: Arc<Policy>, req: StatusRequest) -> Response<'_> {
    json_array(shared, "status".into(), move |store, each| {
        shared.for_each_status(store, &policy, &req, each)
    })
}

/// A JSON array whose items `walk` hands, one at a time, to the function
/// it is given, with a reading connection: each written as it comes. A
/// failure of the database halfway (logged with `what`) cuts the answer
/// short.
fn json_array<'a, T: Serialize>(
    shared: &'a Shared,
    what: String,
    walk: impl FnOnce(&Store, &mut dyn FnMut(&T) -> Result<(), Cut>) -> Result<(), Cut> + 'a,
) -> Response<'a> {
    let stream = move |out: &mut dyn Write| -> io::Result<()> {
        out.write_all(b"[")?;
        // Each item is made here and written whole: serde_json's many small
        // writes straight to `out` took a fifth of a fleet's status.
        let mut json = Vec::new();
        let mut each = |item: &T| -> Result<(), Cut> {
            if !json.is_empty() {
                json.clear();
                json.push(b',');
            }
            serde_json::to_writer(&mut json, item).map_err(io::Error::from)?;
            out.write_all(&json)?;
            Ok(())
        };
        match shared.read(|store| walk(store, &mut each)) {
            Ok(()) => out.write_all(b"]"),
            Err(Cut::Io(e)) => Err(e),
            Err(Cut::Store(e)) => {
                log::error!("metadb: {what}: {e}; answer cut short");
                Err(io::Error::other(e.to_string()))
            }
        }
    };
    Response {
        status: 200,
        content_type: "application/json",
        body: Body::Stream(Box::new(stream)),
        headers: Vec::new(),
    }
}

/// Why a streamed answer stopped early.
enum Cut {
    /// The client went away or stopped reading.
    Io(io::Error),
    /// The database failed halfway.
    Store(store::Error),
}

impl From<io::Error> for Cut {
    fn from(e: io::Error) -> Cut {
        Cut::Io(e)
    }
}

impl From<store::Error> for Cut {
    fn from(e: store::Error) -> Cut {
        Cut::Store(e)
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

/// What a scrape shows of the database, read afresh.
fn fleet(db_path: &Path, store: &Store, status: Vec<StatusRow>) -> Result<Fleet, String> {
    let last_backups = store.newest_backups().map_err(|e| e.to_string())?;
    let size = |suffix: &str| {
        let mut path = db_path.as_os_str().to_owned();
        path.push(suffix);
        std::fs::metadata(path).map_or(0, |m| m.len())
    };
    Ok(Fleet {
        database_bytes: size("") + size("-wal"),
        last_backups,
        status,
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
                duration: 0,
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
                overdue_grace: crate::metadb::config::DEFAULT_OVERDUE_GRACE,
                attempt_retention: crate::metadb::config::DEFAULT_ATTEMPT_RETENTION,
                notify: Vec::new(),
                silent_after: crate::metadb::config::DEFAULT_SILENT_AFTER,
                watch_interval: crate::metadb::config::DEFAULT_WATCH_INTERVAL,
            },
        };
        let running = start(&config, "127.0.0.1:0", |msg| panic!("{msg}")).unwrap();
        let addr = running.addr();
        let client = |token: Option<&std::path::Path>| {
            Client::new(&crate::metadb::config::Connection {
                url: format!("http://{addr}/"),
                token_file: token.map(Into::into),
                tls: crate::metadb::config::Tls::default(),
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
                overdue_grace: crate::metadb::config::DEFAULT_OVERDUE_GRACE,
                attempt_retention: crate::metadb::config::DEFAULT_ATTEMPT_RETENTION,
                notify: Vec::new(),
                silent_after: crate::metadb::config::DEFAULT_SILENT_AFTER,
                watch_interval: crate::metadb::config::DEFAULT_WATCH_INTERVAL,
            },
        };
        let running = start(&config, "127.0.0.1:0", |msg| panic!("{msg}")).unwrap();
        let client = Client::new(&crate::metadb::config::Connection {
            url: format!("http://{}", running.addr()),
            token_file: None,
            tls: crate::metadb::config::Tls::default(),
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
