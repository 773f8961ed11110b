//! The backup daemon: its threads and how they are wired. The scheduler
//! (on the calling thread) decides what runs when; a pool of workers runs
//! the backups; a signal thread forwards signals to the scheduler; an
//! optional HTTP thread serves metrics and a status page; a reporter thread
//! keeps a remote metadb informed; a maintenance thread prunes, verifies and
//! carries out restore requests. All of them share one [`state::Shared`].
//!
//! Each thread has one owner that stops and joins it: the pool belongs to
//! the scheduler, the signal, reporter, maintenance and HTTP threads to [`run`].

mod catchup;
mod event;
mod history;
mod http;
mod instance;
mod loaded;
mod maintenance;
mod metrics;
mod page;
mod periodic;
mod reporter;
mod retry;
mod scheduler;
pub mod seed;
mod signals;
mod state;
mod worker;

use crate::config::Config;
use crate::metadb::Metadb;
use loaded::Loaded;
use scheduler::Scheduler;
use signal_hook::iterator::Signals;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{mpsc, Arc};

pub use signals::HANDLED as SIGNALS;

/// Runs the agent with `config` (read from `config_path`, reread on SIGHUP)
/// until SIGTERM or SIGINT. `signals` must have been created before any
/// thread was started.
pub fn run(
    config_path: &Path,
    config: Config,
    signals: Signals,
    http_addr: Option<Vec<SocketAddr>>,
) -> Result<(), String> {
    let _instance = instance::Instance::lock(&config.work_dir)?;
    let loaded = Loaded::new(config)?;
    let metadb = Arc::new(Metadb::open(&loaded.config).map_err(|e| e.to_string())?);
    let shared = Arc::new(state::Shared::default());
    let (events, incoming) = mpsc::channel();

    let http = match http_addr {
        Some(addr) => {
            let metadb = Arc::clone(&metadb);
            let backlog = Box::new(move || metadb.spool_backlog());
            let server = http::Server::start(&addr, Arc::clone(&shared), backlog)?;
            log::info!("listening on {}", server.addr);
            Some(server)
        }
        None => None,
    };
    let forwarder = signals::Forwarder::spawn(signals, events.clone())?;
    let scheduler = Scheduler::new(
        config_path.to_path_buf(),
        loaded,
        Arc::clone(&metadb),
        Arc::clone(&shared),
        (events, incoming),
    )?;
    let reporter = reporter::spawn(Arc::clone(&shared), Arc::clone(&metadb))?;
    let maintenance = maintenance::spawn(Arc::clone(&shared), Arc::clone(&metadb))?;
    scheduler.run();

    maintenance.stop();
    forwarder.stop();
    reporter.stop();
    if let Some(server) = http {
        server.stop();
    }
    log::info!("agent stopped");
    Ok(())
}
