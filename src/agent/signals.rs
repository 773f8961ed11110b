//! The signal thread: forwards SIGHUP, SIGUSR1, SIGTERM and SIGINT to the
//! scheduler as events, so that all the work a signal causes happens on the
//! scheduler's thread and never in a signal handler.
//!
//! The `Signals` are created by the command before any thread exists (see
//! `cmd::agent`), so that no thread can receive one with the default action.

use super::event::Event;
use signal_hook::iterator::{Handle, Signals};
use std::sync::mpsc::Sender;
use std::thread::{self, JoinHandle};

/// The signals the agent handles.
pub const HANDLED: [i32; 4] = [
    signal_hook::consts::SIGHUP,
    signal_hook::consts::SIGUSR1,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGINT,
];

/// Owns the forwarding thread; stopping (or dropping) it closes the
/// iterator and joins the thread.
pub struct Forwarder {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl Forwarder {
    /// Starts forwarding `signals` to `events`.
    pub fn spawn(mut signals: Signals, events: Sender<Event>) -> Result<Forwarder, String> {
        let handle = signals.handle();
        let thread = thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    if events.send(Event::Signal(signal)).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start the signal thread: {e}"))?;
        Ok(Forwarder {
            handle,
            thread: Some(thread),
        })
    }

    /// Stops forwarding and joins the thread.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.shut();
    }
}
