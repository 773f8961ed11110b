//! SIGINT, SIGTERM and SIGHUP for the one-shot commands (`run`, `restore`).
//! Every command tabacco starts lives in its own process group, so a signal
//! to tabacco (or Ctrl-C at a terminal) reaches none of them: this module
//! catches the signal and stops every job's processes, restic with SIGINT so
//! that it releases its repository lock. Jobs then fail as "stopped", and
//! no new job starts. The signals come through a [`signal::Forwarder`].

use crate::base::signal;
use crate::process::shell::Supervisor;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::sync::{Arc, Mutex, PoisonError};

/// Forwards termination signals to the supervisors it tracks, until dropped.
pub struct Interrupt {
    state: Arc<Mutex<State>>,
    /// Stops forwarding (and joins its thread) when the interrupt is dropped.
    _forwarder: signal::Forwarder,
}

#[derive(Default)]
struct State {
    supervisors: Vec<Supervisor>,
    reason: Option<String>,
}

impl Interrupt {
    /// Starts catching the signals.
    pub fn install() -> std::io::Result<Interrupt> {
        let signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let forwarder = signal::Forwarder::spawn("interrupt", signals, move |signal| {
            let name = match signal {
                SIGINT => "SIGINT",
                SIGTERM => "SIGTERM",
                _ => "SIGHUP",
            };
            let reason = format!("interrupted by {name}");
            let supervisors = {
                let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
                state.reason.get_or_insert(reason.clone());
                state.supervisors.clone()
            };
            for sup in supervisors {
                sup.stop(&reason);
            }
            true
        })?;
        Ok(Interrupt {
            state,
            _forwarder: forwarder,
        })
    }

    /// Starts catching the signals on behalf of one supervisor.
    pub fn watching(sup: &Supervisor) -> std::io::Result<Interrupt> {
        let interrupt = Interrupt::install()?;
        interrupt.track(sup);
        Ok(interrupt)
    }

    /// Tracks `sup` so that a signal stops its processes; a supervisor
    /// tracked after a signal is stopped at once. Returns why, if so.
    pub fn track(&self, sup: &Supervisor) -> Option<String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(reason) = &state.reason {
            sup.stop(reason);
            return Some(reason.clone());
        }
        state.supervisors.push(sup.clone());
        None
    }
}
