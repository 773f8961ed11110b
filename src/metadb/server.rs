//! The metadb server's lifecycle and workers: starting (the database, its
//! reading connections and writer, the listener, the transport and the
//! watch), reloading the policy, and stopping; and what the connections
//! share while it runs ([`Shared`]): the policy, the pool of reading
//! connections, the one writer, the jobs hosts report, the fleet view for
//! metrics, and the console's browser sessions.
//!
//! Requests are served on their connection's thread (the transport is
//! `http`, which owns connections, parsing, limits and deadlines), reading
//! with one of a fixed set of SQLite connections to the same file (WAL lets
//! readers run beside the one writer) and writing through the one writing
//! connection (`writer`). Which endpoint answers a request is `route`'s,
//! what it answers `endpoint`'s (the console's pages: `console`, who
//! reads them `access`, how they look `page`), bodies and error answers
//! `body`'s; recording and finding are the store's; signals, configuration reloads
//! and the process exit status are `cmd::metadb`'s. No request may take the
//! server down: every failure becomes a status code, and a panic a 500.
//!
//! # Adding an endpoint
//!
//! 1. A store function (`store.rs`) that does the work, checking what it
//!    keeps with `store::record`; the embedded metadb (`Metadb::Embedded`)
//!    calls it directly.
//! 2. Its method and path in `wire/path.rs`, and request and answer types
//!    both sides share in `wire/api.rs`.
//! 3. A route entry (`route.rs`: the path, `Open` or `Token`, and its
//!    function), and that function in `endpoint.rs`: decode the body
//!    (`call.body()?`), refuse what the caller's token may not ask
//!    (`own`, `admin_only`, `read_scope`), and answer with the store
//!    function through `shared.write` or `shared.read` (`Answer::stored`,
//!    `Answer::recorded`; `body::json_array` for a streamed list).
//! 4. A client function (`client/http.rs`) that sends to the path
//!    (`self.post(path::NAME.path, ...)`), and its branch in `Metadb`.

pub mod access;
pub mod auth;
pub mod body;
pub mod config;
pub mod console;
pub mod endpoint;
pub mod jobs;
pub mod metrics;
pub mod page;
pub mod route;
pub mod session;
pub mod watch;
pub mod writer;

use crate::base::time;
use crate::http;
use crate::metadb::server::body::Answer;
use crate::metadb::server::config::{Config, Policy};
use crate::metadb::server::jobs::Registry;
use crate::metadb::server::metrics::{Fleet, Metrics};
use crate::metadb::server::watch::Watch;
use crate::metadb::store::{self, Store};
use crate::wire::api::{StatusRequest, StatusRow};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};
use writer::Writer;

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

impl std::error::Error for Error {}

/// What the connections share; the endpoints are given it.
pub struct Shared {
    policy: RwLock<Arc<Policy>>,
    /// Whether the listening address is loopback only.
    loopback: bool,
    pub metrics: Metrics,
    /// The jobs hosts report running.
    pub jobs: Registry,
    db_path: PathBuf,
    readers: Readers,
    /// The last [`Shared::scrape`] read and rendered, and when.
    scrape: Mutex<Option<(Instant, Option<Arc<str>>)>>,
    /// When attempts were last trimmed.
    trimmed: Mutex<Option<Instant>>,
    /// The console's browser sessions.
    pub sessions: session::Sessions,
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
    /// The families of `/metrics` read from the database, at most
    /// [`FLEET_TTL`] old: the newest backup of every host and source is a
    /// scan of all datasets, and eight scrapers reading it afresh slowed
    /// every other read (a find from 1 ms to 250 ms at 61,000 datasets).
    /// Scrapes that find it stale wait for the one that reads it; all share
    /// its rendering, none holds a copy of its own (200 clients that never
    /// read a 4.5 MB `/metrics` held 9 MB each).
    pub fn scrape(&self) -> Option<Arc<str>> {
        let mut cached = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((read, text)) = &*cached {
            if read.elapsed() < FLEET_TTL {
                return text.clone();
            }
        }
        let policy = self.policy();
        let text = self
            .status(&policy, &StatusRequest::default())
            .and_then(|status| self.read(|store| fleet(&self.db_path, store, status)))
            .map_err(|e| log::error!("metadb: metrics: cannot read the database: {e}"))
            .ok()
            .map(|fleet| Arc::from(metrics::render_fleet(&fleet)));
        *cached = Some((Instant::now(), text.clone()));
        text
    }

    /// Runs `f` with one of the reading connections, once one is free.
    pub fn read<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        match self.readers.with(f) {
            Ok(out) => out,
            // The connection is back in the pool; the request answers 500.
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Runs `f` on the writing connection, committed with the writes beside
    /// it; its answer once that is durable.
    pub fn write(&self, f: impl FnOnce(&mut Store) -> Answer + Send + 'static) -> Answer {
        match self.writer.write(f) {
            Ok(answer) => answer,
            Err(e @ writer::Error::Stopped) => Answer::error(503, e.to_string()),
            Err(e) => Answer::error(500, e.to_string()),
        }
    }

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
    pub fn for_each_status<E: From<store::Error>>(
        &self,
        store: &Store,
        policy: &Policy,
        req: &StatusRequest,
        f: impl FnMut(&StatusRow) -> Result<(), E>,
    ) -> Result<(), E> {
        self.for_each_status_from(store, policy, req, None, f)
    }

    /// The rows of [`Shared::for_each_status`] from `from` (a host and a
    /// source) on, as [`Store::for_each_status_from`] seeks them.
    pub fn for_each_status_from<E: From<store::Error>>(
        &self,
        store: &Store,
        policy: &Policy,
        req: &StatusRequest,
        from: Option<(&str, &str)>,
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
            .map(|(host, t)| (host.clone(), time::format(*t)))
            .collect();
        let clock = store::Clock {
            now: time::unix_now(),
            grace: i64::try_from(policy.overdue_grace.as_secs()).unwrap_or(i64::MAX),
            running: &is_running,
            heard: &heard,
        };
        store.for_each_status_from(req, from, &clock, f)
    }

    /// Notes that `host`'s token was used now.
    pub fn seen(&self, host: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.insert(host.to_string(), Utc::now());
    }

    /// The time before which attempts are trimmed, once an hour; `None`
    /// between.
    pub fn trim_due(&self, policy: &Policy) -> Option<i64> {
        let mut last = self.trimmed.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|t| t.elapsed() < TRIM_INTERVAL) {
            return None;
        }
        *last = Some(Instant::now());
        let retention = i64::try_from(policy.attempt_retention.as_secs()).unwrap_or(i64::MAX);
        Some(time::unix_now().saturating_sub(retention))
    }

    /// The policy now.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
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
    let resolved = crate::base::addr::resolve(http_addr)
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
        scrape: Mutex::new(None),
        trimmed: Mutex::new(None),
        sessions: session::Sessions::default(),
        seen: Mutex::new(HashMap::new()),
        writer: Writer::start(writer)
            .map_err(|e| Error::Start(format!("cannot start the writer thread: {e}")))?,
    });
    let max_connections = http::connection_cap(MAX_CONNECTIONS);
    let limits = http::Limits {
        connections: max_connections,
        idle: IDLE_TIMEOUT,
        request: REQUEST_TIMEOUT,
    };
    let transport = http::start("metadb", listener, limits, shared.clone(), Arc::new(fatal))
        .map_err(|e| Error::Start(format!("cannot start the accept thread: {e}")))?;
    let (for_policy, for_status) = (Arc::clone(&shared), Arc::clone(&shared));
    let watch = Watch::spawn(
        move || for_policy.policy(),
        move |policy| for_status.status(policy, &StatusRequest::default()),
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
    pub fn set_policy(&self, policy: Policy) -> Result<(), Error> {
        check_exposure(&policy, self.shared.loopback, &self.addr.to_string())?;
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

/// What a scrape shows of the database, read afresh.
fn fleet(db_path: &Path, store: &Store, status: Vec<StatusRow>) -> Result<Fleet, store::Error> {
    let last_backups = store.newest_backups()?;
    let copy_lag = store.copy_lag()?;
    let size = |suffix: &str| {
        let mut path = db_path.as_os_str().to_owned();
        path.push(suffix);
        std::fs::metadata(path).map_or(0, |m| m.len())
    };
    Ok(Fleet {
        database_bytes: size("") + size("-wal"),
        last_backups,
        status,
        copy_lag,
        proofs: store.proofs()?,
        restored: store.restored()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::token::Token;
    use crate::metadb::client::{self, http::Client};
    use crate::metadb::server::auth::{Digest, Identity, Tokens};
    use crate::metadb::server::config::HostRead;
    use crate::wire::model::{AddDatasetRequest, FindRequest, RestoreRequest, RestoreState};
    use crate::wire::model::{Atom, Backup, Dataset};
    use std::time::Duration;

    /// Every backup `request` finds.
    fn find_atoms(client: &Client, request: &FindRequest) -> Result<Vec<Backup>, client::Error> {
        let mut found = Vec::new();
        client.for_each_found(request, |backup| {
            found.push(backup);
            Ok::<(), client::Error>(())
        })?;
        Ok(found)
    }

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
                repositories: Vec::new(),
                repository: None,
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
                overdue_grace: crate::metadb::store::DEFAULT_OVERDUE_GRACE,
                attempt_retention: crate::metadb::store::DEFAULT_ATTEMPT_RETENTION,
                notify: Vec::new(),
                silent_after: config::DEFAULT_SILENT_AFTER,
                watch_interval: config::DEFAULT_WATCH_INTERVAL,
                page: config::PageAccess::Token,
                read_back_within: config::DEFAULT_READ_BACK_WITHIN,
            },
        };
        let running = start(&config, "127.0.0.1:0", |msg| panic!("{msg}")).unwrap();
        let addr = running.addr();
        let client = |token: Option<&std::path::Path>| {
            Client::new(&crate::metadb::client::connection::Connection {
                url: format!("http://{addr}/"),
                token: token.map(|path| Token::read("token_file", path).unwrap()),
                tls: crate::metadb::client::connection::Tls::default(),
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
        let err = find_atoms(&client(None), &FindRequest::default()).unwrap_err();
        assert!(
            matches!(err, client::Error::Rejected { status: 401, .. }),
            "{err}"
        );
        let users = FindRequest {
            pattern: "users/*".into(),
            ..FindRequest::default()
        };
        let found = find_atoms(&web3, &users).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].datasets[0].id, "d1");

        let stopping = Instant::now();
        running.shutdown();
        assert!(stopping.elapsed() < Duration::from_secs(2));
        // A fresh client: kept-alive connections outlive the listener until
        // the process exits.
        let err = find_atoms(&client(Some(&token_file)), &FindRequest::default()).unwrap_err();
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
                overdue_grace: crate::metadb::store::DEFAULT_OVERDUE_GRACE,
                attempt_retention: crate::metadb::store::DEFAULT_ATTEMPT_RETENTION,
                notify: Vec::new(),
                silent_after: config::DEFAULT_SILENT_AFTER,
                watch_interval: config::DEFAULT_WATCH_INTERVAL,
                page: config::PageAccess::Token,
                read_back_within: config::DEFAULT_READ_BACK_WITHIN,
            },
        };
        let running = start(&config, "127.0.0.1:0", |msg| panic!("{msg}")).unwrap();
        let client = Client::new(&crate::metadb::client::connection::Connection {
            url: format!("http://{}", running.addr()),
            token: None,
            tls: crate::metadb::client::connection::Tls::default(),
            request_max_timeout: Duration::from_secs(10),
        })
        .unwrap();
        let AddDatasetRequest { backup, dataset } = record("web2", "d1");
        let request = RestoreRequest {
            id: "r1".into(),
            host: "web3".into(),
            target: Some("/srv/restore".into()),
            overwrite: false,
            items: vec![crate::wire::model::RestoreItem { backup, dataset }],
            state: RestoreState::Pending,
            message: String::new(),
            created: String::new(),
            updated: String::new(),
        };
        let stored = client.add_restore_request(&request).unwrap();
        assert_eq!(stored.state, RestoreState::Pending);
        assert_eq!(client.next_restore_request("web2").unwrap(), None);
        let next = client.next_restore_request("web3").unwrap().unwrap();
        assert_eq!(
            (next.id.as_str(), next.state),
            ("r1", RestoreState::Running)
        );
        assert_eq!(next.target.as_deref(), Some("/srv/restore"));
        assert_eq!(client.next_restore_request("web3").unwrap(), None);
        let status = crate::wire::api::RestoreStatus {
            host: Some("web3".into()),
            state: RestoreState::Failed,
            message: "disk full".into(),
        };
        client.update_restore_request("r1", &status).unwrap();
        let read = client.restore_request("r1").unwrap().unwrap();
        assert_eq!(
            (read.state, read.message.as_str()),
            (RestoreState::Failed, "disk full")
        );
        assert_eq!(client.restore_request("r2").unwrap(), None);
        running.shutdown();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
