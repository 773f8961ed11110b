//! The one way tabacco turns signals into work: a thread that takes each
//! signal from a `signal_hook` iterator and hands it to a callback, so that
//! nothing happens in a signal handler. The agent forwards signals to its
//! scheduler, the metadb daemon to its main loop, and `run`, `restore` and
//! the other one-shot commands stop their jobs' processes (see `interrupt`).
//!
//! The `Signals` are created by the caller, before any other thread exists
//! where that matters, so that no thread receives a signal with its default
//! action.

use signal_hook::iterator::{Handle, Signals};
use std::thread::{self, JoinHandle};

/// Owns the forwarding thread; stopping (or dropping) it closes the
/// iterator and joins the thread.
pub struct Forwarder {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl Forwarder {
    /// Starts thread `name`, which calls `forward` with each of `signals`
    /// as it arrives until `forward` returns false or the forwarder stops.
    pub fn spawn(
        name: &str,
        mut signals: Signals,
        mut forward: impl FnMut(i32) -> bool + Send + 'static,
    ) -> std::io::Result<Forwarder> {
        let handle = signals.handle();
        let thread = thread::Builder::new().name(name.into()).spawn(move || {
            for signal in signals.forever() {
                if !forward(signal) {
                    return;
                }
            }
        })?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use signal_hook::consts::SIGUSR2;
    use std::sync::mpsc::{self, RecvTimeoutError};
    use std::time::Duration;

    #[test]
    fn forwards_each_signal_until_stopped() {
        let signals = Signals::new([SIGUSR2]).unwrap();
        let (tx, rx) = mpsc::channel();
        let forwarder = Forwarder::spawn("test-signals", signals, move |signal| {
            tx.send(signal).is_ok()
        })
        .unwrap();
        signal_hook::low_level::raise(SIGUSR2).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(SIGUSR2));
        forwarder.stop();
        // The thread is over: it dropped the callback and its sender.
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)),
            Err(RecvTimeoutError::Disconnected)
        );
    }
}
