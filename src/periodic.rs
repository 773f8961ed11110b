//! A thread that does one thing at start and then after every interval,
//! until its owner stops it: the shape of the agent's reporter and
//! maintenance threads and of the metadb's watch. Each run says how long to
//! wait before the next, so the interval may change between runs (the
//! watch's comes from a policy that SIGHUP reloads). Stopping (or dropping)
//! the owner wakes the thread at once and joins it. It imports nothing of
//! tabacco's.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Owns a periodic thread.
pub struct Periodic {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Periodic {
    /// Starts thread `name`, which calls `tick(false)` at once and again
    /// after each wait of the interval it returned, and `tick(true)` once
    /// when stopped (what that one returns is not used).
    pub fn spawn(
        name: &str,
        mut tick: impl FnMut(bool) -> Duration + Send + 'static,
    ) -> Result<Periodic, String> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut interval = tick(false);
                loop {
                    let stopping = match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => false,
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
                    };
                    if stopping {
                        tick(true);
                        return;
                    }
                    interval = tick(false);
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
        let periodic = Periodic::spawn("test", move |stopping| {
            seen.lock().unwrap().push(stopping);
            Duration::from_secs(3600)
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

    #[test]
    fn each_wait_is_the_interval_the_last_run_returned() {
        let ticks = Arc::new(Mutex::new(0));
        let seen = Arc::clone(&ticks);
        let periodic = Periodic::spawn("test", move |stopping| {
            let mut n = seen.lock().unwrap();
            if !stopping {
                *n += 1;
            }
            // Short waits for the first three runs, then a long one.
            Duration::from_millis(if *n < 3 { 10 } else { 3_600_000 })
        })
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while *ticks.lock().unwrap() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(200));
        periodic.stop();
        assert_eq!(*ticks.lock().unwrap(), 3);
    }
}
