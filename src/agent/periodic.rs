//! A thread that does one thing at start and then every interval, until its
//! owner stops it: the shape of the reporter and the maintenance thread.
//! Stopping (or dropping) the owner wakes the thread at once and joins it.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Owns a periodic thread.
pub struct Periodic {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Periodic {
    /// Starts thread `name`, which calls `tick(false)` at once and after
    /// every `interval`, and `tick(true)` once when stopped.
    pub fn spawn(
        name: &str,
        interval: Duration,
        mut tick: impl FnMut(bool) + Send + 'static,
    ) -> Result<Periodic, String> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                tick(false);
                loop {
                    let stopping = match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => false,
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
                    };
                    tick(stopping);
                    if stopping {
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start the {name} thread: {e}"))?;
        Ok(Periodic {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops the thread (after its last tick) and joins it.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        self.shut();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn ticks_at_start_and_once_more_when_stopped() {
        let ticks = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&ticks);
        let periodic = Periodic::spawn("test", Duration::from_secs(3600), move |stopping| {
            seen.lock().unwrap().push(stopping);
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let started = std::time::Instant::now();
        periodic.stop();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "stop wakes the thread"
        );
        assert_eq!(*ticks.lock().unwrap(), [false, true]);
    }
}
