//! `tabacco metadb`: the metadata server as a daemon. This module reads
//! `metadb.yml`, starts the server, and turns signals into actions: SIGHUP
//! reloads the policy (a bad configuration keeps the old one), SIGTERM and
//! SIGINT stop it cleanly (a [`signal::Forwarder`] hands them to the main
//! loop). The HTTP side is `metadb::server`'s.

use crate::base::signal;
use crate::cmd::Exit;
use crate::metadb::server;
use crate::metadb::server::config::Config;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::path::Path;
use std::sync::mpsc;

/// Where the metadb server's configuration lives unless `--config` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/tabacco/metadb.yml";

/// What the main loop waits for.
enum Event {
    Signal(i32),
    /// The server can no longer serve.
    Fatal(String),
}

/// Runs the metadb server with the configuration at `path` until SIGTERM or
/// SIGINT; `http_addr` overrides the configured address.
pub fn metadb(path: &Path, http_addr: Option<&str>) -> Result<(), Exit> {
    let config =
        Config::load(path).map_err(|e| Exit::Usage(format!("invalid configuration:\n{e}")))?;
    let addr = http_addr.unwrap_or(&config.http_addr).to_string();
    // A daemon logs what it does unless told to be quiet (-q).
    if log::max_level() == log::LevelFilter::Warn {
        log::set_max_level(log::LevelFilter::Info);
    }

    limit_malloc_arenas();
    raise_descriptor_limit();
    // Before any thread exists, so that every thread inherits the mask.
    let signals = Signals::new([SIGHUP, SIGINT, SIGTERM])
        .map_err(|e| Exit::Error(format!("cannot install signal handlers: {e}")))?;
    let (events, next_event) = mpsc::channel();
    let fatal_events = events.clone();
    let running = server::start(&config, &addr, move |msg| {
        let _ = fatal_events.send(Event::Fatal(msg));
    })
    .map_err(|e| match e {
        server::Error::Config(msg) => Exit::Usage(msg),
        server::Error::Start(msg) => Exit::Error(msg),
    })?;
    let forward = move |signal| events.send(Event::Signal(signal)).is_ok();
    let forwarder = match signal::Forwarder::spawn("metadb-signals", signals, forward) {
        Ok(forwarder) => forwarder,
        Err(e) => {
            running.shutdown();
            return Err(Exit::Error(format!("cannot start the signal thread: {e}")));
        }
    };

    log::info!(
        "listening on {} (database {}, {} tokens, at most {} connections)",
        running.addr(),
        config.db_path.display(),
        config.policy.tokens.len(),
        running.max_connections()
    );
    if !running.is_loopback() {
        log::warn!(
            "listening on non-loopback {}: bearer tokens travel in clear unless a TLS proxy or a \
             private network carries them (see contrib/metadb-nginx.conf)",
            running.addr()
        );
    }

    let mut result = Ok(());
    while let Ok(event) = next_event.recv() {
        match event {
            Event::Signal(SIGHUP) => reload(path, &config, &running),
            Event::Signal(_) => {
                log::info!("stopping: finishing requests in progress");
                break;
            }
            Event::Fatal(msg) => {
                result = Err(Exit::Error(format!("metadb server failed: {msg}")));
                break;
            }
        }
    }
    running.shutdown();
    forwarder.stop();
    if result.is_ok() {
        log::info!("stopped");
    }
    result
}

/// Re-reads the configuration and applies its policy; anything wrong keeps
/// the policy in force.
fn reload(path: &Path, current: &Config, running: &server::Running) {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            log::error!("reload: keeping the previous configuration: {e}");
            return;
        }
    };
    if config.db_path != current.db_path || config.http_addr != current.http_addr {
        log::warn!("reload: db_path and http_addr take effect only at restart");
    }
    let tokens = config.policy.tokens.len();
    match running.set_policy(config.policy) {
        Ok(()) => log::info!("reload: configuration reloaded ({tokens} tokens)"),
        Err(e) => log::error!("reload: keeping the previous configuration: {e}"),
    }
}

/// Raises the soft limit on open descriptors to the hard one: each open
/// connection takes one, and the server caps connections by what the limit
/// leaves (see `server::start`). A unit's `LimitNOFILE=` sets both.
fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct they are
    // given.
    let raised = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        if limit.rlim_cur >= limit.rlim_max {
            return;
        }
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0
    };
    if !raised {
        log::debug!(
            "cannot raise the descriptor limit: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// glibc gives each thread that allocates its own malloc arena and keeps
/// what was freed in it: after a busy hour 8 request threads held about 16
/// MiB more at rest. Two arenas are plenty for threads whose time goes to
/// SQLite and the network (`make bench`: same throughput).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter, before other threads
    // exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
