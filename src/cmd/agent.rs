//! `tabacco agent`: checks what was typed (the configuration, the HTTP
//! address) and hands over to the daemon in `crate::agent`.

use crate::agent;
use crate::cmd::{self, Exit};
use signal_hook::iterator::Signals;
use std::net::SocketAddr;
use std::path::Path;

/// Runs the agent until SIGTERM or SIGINT; a bad configuration or address
/// is a usage error.
pub fn agent(config_path: &Path, http_addr: Option<&str>) -> Result<(), Exit> {
    // Before any thread exists, so that every thread has these signals
    // handled rather than killing the process.
    let signals = Signals::new(agent::SIGNALS)
        .map_err(|e| Exit::Error(format!("cannot handle signals: {e}")))?;
    // A token file that cannot be read is a configuration error (exit 2,
    // which the systemd unit does not restart): `Config::load` reads it.
    let config = cmd::load(config_path)?;
    let http_addr = http_addr.map(resolve).transpose()?;
    // A daemon's log is its operator's record: info unless -q.
    if log::max_level() == log::LevelFilter::Warn {
        log::set_max_level(log::LevelFilter::Info);
    }
    agent::run(config_path, config, signals, http_addr).map_err(Exit::Error)
}

/// The addresses to try binding, in order; at least one.
fn resolve(addr: &str) -> Result<Vec<SocketAddr>, Exit> {
    let bad = |why: String| Exit::Usage(format!("invalid --http-addr {addr:?}: {why}"));
    let addrs = crate::base::addr::resolve(addr).map_err(|e| bad(e.to_string()))?;
    if addrs.is_empty() {
        return Err(bad("it resolves to no address".into()));
    }
    Ok(addrs)
}
