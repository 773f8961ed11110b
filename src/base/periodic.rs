//! A thread that does one thing at start and then after every interval,
//! until its owner stops it: the shape of the agent's reporter and
//! maintenance threads and of the metadb's watch. Each run says how long to
//! wait before the next, so the interval may change between runs (the
//! watch's comes from a policy that SIGHUP reloads). A [`Waker`] runs it
//! early (the agent's reload republishes its plan at once). Stopping (or
//! dropping) the owner wakes the thread at once and joins it.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Why a run happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tick {
    /// At start, or its interval passed.
    Due,
    /// A [`Waker`] asked for it.
    Woken,
    /// The last run: the owner stops the thread.
    Stopping,
}

/// What the thread's channel carries; its closing stops it too.
enum Message {
    Wake,
    Stop,
}

/// Owns a periodic thread.
pub struct Periodic {
    messages: Sender<Message>,
    thread: Option<JoinHandle<()>>,
}

/// Runs a [`Periodic`]'s thread early, from another thread.
#[derive(Clone)]
pub struct Waker(Sender<Message>);

impl Waker {
    /// Asks for a run now (a `Tick::Woken`); nothing if the thread ended.
    pub fn wake(&self) {
        let _ = self.0.send(Message::Wake);
    }
}

impl Periodic {
    /// Starts thread `name`, which calls `tick(Tick::Due)` at once and
    /// again after each wait of the interval it returned, `tick(Woken)`
    /// when woken (the wait starts again after it), and `tick(Stopping)`
    /// once when stopped (what that one returns is not used).
    pub fn spawn(
        name: &str,
        mut tick: impl FnMut(Tick) -> Duration + Send + 'static,
    ) -> Result<Periodic, String> {
        let (messages, incoming) = mpsc::channel();
        let thread = thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut interval = tick(Tick::Due);
                loop {
                    let why = match incoming.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => Tick::Due,
                        Ok(Message::Wake) => Tick::Woken,
                        Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => {
                            tick(Tick::Stopping);
                            return;
                        }
                    };
                    interval = tick(why);
                }
            })
            .map_err(|e| format!("cannot start the {name} thread: {e}"))?;
        Ok(Periodic {
            messages,
            thread: Some(thread),
        })
    }

    /// What wakes the thread early.
    pub fn waker(&self) -> Waker {
        Waker(self.messages.clone())
    }

    /// Stops the thread (after its last tick) and joins it.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        let _ = self.messages.send(Message::Stop);
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

    /// An hourly periodic thread, and the ticks it has had.
    fn hourly() -> (Periodic, Arc<Mutex<Vec<Tick>>>) {
        let ticks = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&ticks);
        let periodic = Periodic::spawn("test", move |tick| {
            seen.lock().unwrap().push(tick);
            Duration::from_secs(3600)
        })
        .unwrap();
        (periodic, ticks)
    }

    #[test]
    fn ticks_at_start_and_once_more_when_stopped() {
        let (periodic, ticks) = hourly();
        std::thread::sleep(Duration::from_millis(50));
        let started = std::time::Instant::now();
        periodic.stop();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "stop wakes the thread"
        );
        assert_eq!(*ticks.lock().unwrap(), [Tick::Due, Tick::Stopping]);
    }

    #[test]
    fn a_waker_runs_it_early_and_outlives_it_harmlessly() {
        let (periodic, ticks) = hourly();
        let waker = periodic.waker();
        waker.wake();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while ticks.lock().unwrap().len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        periodic.stop();
        waker.wake();
        assert_eq!(
            *ticks.lock().unwrap(),
            [Tick::Due, Tick::Woken, Tick::Stopping]
        );
    }

    #[test]
    fn each_wait_is_the_interval_the_last_run_returned() {
        let ticks = Arc::new(Mutex::new(0));
        let seen = Arc::clone(&ticks);
        let periodic = Periodic::spawn("test", move |tick| {
            let mut n = seen.lock().unwrap();
            if tick != Tick::Stopping {
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
