//! The backup daemon: its threads and how they are wired. The scheduler
//! (on the calling thread) decides what runs when; a pool of workers runs
//! the backups; a signal thread (a [`crate::base::signal::Forwarder`]) forwards
//! signals to the scheduler; an optional HTTP thread serves metrics and a
//! status page; a reporter thread keeps a remote metadb informed; a
//! maintenance thread prunes, verifies and carries out restore requests
//! (both a [`crate::base::periodic::Periodic`]).
//!
//! What they share is split by purpose: [`status::Status`] is what the
//! agent knows (read by metrics, the status page and the reporter);
//! [`control::Control`] is the control plane (the shutdown flag and the
//! supervisors it stops, the condition retries wait on);
//! [`loaded::InForce`] hands each configuration the scheduler loads to the
//! maintenance thread. `status`, `control`, `loaded` and `event` import no
//! other module of the agent's, so every thread can import them; no module of the agent
//! imports another that imports it back. Nothing outside imports the agent
//! but `cmd::agent`.
//!
//! Each thread has one owner that stops and joins it: the pool belongs to
//! the scheduler, the signal, reporter, maintenance and HTTP threads to [`run`].

mod catchup;
mod control;
mod event;
mod history;
mod http;
mod instance;
mod loaded;
mod maintenance;
mod metrics;
mod page;
mod reporter;
mod retry;
mod scheduler;
mod status;
mod worker;

use crate::base::signal;
use crate::config::Config;
use crate::metadb::Metadb;
use control::Control;
use event::Event;
use loaded::{InForce, Loaded};
use scheduler::Scheduler;
use signal_hook::iterator::Signals;
use status::Status;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{mpsc, Arc};

pub use event::SIGNALS;

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
    let loaded = Arc::new(Loaded::new(config)?);
    let metadb = Arc::new(
        Metadb::open(&loaded.config.work_dir, loaded.config.metadb.as_ref())
            .map_err(|e| e.to_string())?,
    );
    let in_force = Arc::new(InForce::new(loaded));
    let status = Arc::new(Status::default());
    let control = Arc::new(Control::default());
    let (events, incoming) = mpsc::channel();

    let http = match http_addr {
        Some(addr) => {
            let metadb = Arc::clone(&metadb);
            let backlog = Box::new(move || metadb.spool_backlog());
            let server = http::Server::start(&addr, Arc::clone(&status), backlog)?;
            log::info!("listening on {}", server.addr);
            Some(server)
        }
        None => None,
    };
    let forwarder = {
        let events = events.clone();
        let forward = move |signal| events.send(Event::Signal(signal)).is_ok();
        signal::Forwarder::spawn("signals", signals, forward)
            .map_err(|e| format!("cannot start the signal thread: {e}"))?
    };
    let scheduler = Scheduler::new(
        config_path.to_path_buf(),
        Arc::clone(&in_force),
        Arc::clone(&metadb),
        Arc::clone(&status),
        Arc::clone(&control),
        (events, incoming),
    )?;
    let reporter = reporter::spawn(Arc::clone(&status), Arc::clone(&metadb))?;
    let maintenance = maintenance::spawn(in_force, control, status, metadb)?;
    scheduler.run(&reporter.waker());

    maintenance.stop();
    forwarder.stop();
    reporter.stop();
    if let Some(server) = http {
        server.stop();
    }
    log::info!("agent stopped");
    Ok(())
}
