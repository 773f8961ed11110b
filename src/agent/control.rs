//! The agent's control plane: whether it is shutting down, and the
//! supervisors of the processes that shutdown must stop (each worker's
//! current attempt, the maintenance thread's task). Workers waiting to
//! retry sleep on its condition, so that shutdown wakes them at once.
//!
//! It holds no status (that is `status`'s) and imports nothing of the
//! agent's: every thread that starts processes can use it.

use crate::process::shell::Supervisor;
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Shutdown and what it stops.
#[derive(Default)]
pub struct Control {
    stops: Mutex<Stops>,
    /// Signalled when shutdown begins.
    changed: Condvar,
}

#[derive(Default)]
struct Stops {
    shutting_down: bool,
    /// The processes of each source's current attempt, by source name.
    jobs: HashMap<String, Supervisor>,
    /// The processes of the maintenance thread's current task (several for
    /// a restore).
    maintenance: Vec<Supervisor>,
}

impl Control {
    fn lock(&self) -> MutexGuard<'_, Stops> {
        self.stops.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts `sup` in charge of `source`'s processes (an attempt, or its
    /// `restic unlock`); false (and nothing registered) once the agent is
    /// shutting down.
    pub fn supervise(&self, source: &str, sup: &Supervisor) -> bool {
        let mut stops = self.lock();
        if stops.shutting_down {
            return false;
        }
        stops.jobs.insert(source.to_string(), sup.clone());
        true
    }

    /// Forgets the processes of `source`: its worker is done with it.
    pub fn release(&self, source: &str) {
        self.lock().jobs.remove(source);
    }

    /// Waits `delay` before a retry of `source` (whose processes are over);
    /// false if the agent began shutting down meanwhile.
    pub fn wait_to_retry(&self, source: &str, delay: Duration) -> bool {
        let mut stops = self.lock();
        stops.jobs.remove(source);
        let (stops, _) = self
            .changed
            .wait_timeout_while(stops, delay, |s| !s.shutting_down)
            .unwrap_or_else(PoisonError::into_inner);
        !stops.shutting_down
    }

    /// Adds `sup` to the maintenance thread's current task; false once the
    /// agent is shutting down.
    pub fn maintain(&self, sup: &Supervisor) -> bool {
        let mut stops = self.lock();
        stops.maintenance.push(sup.clone());
        !stops.shutting_down
    }

    /// The maintenance thread's task is over.
    pub fn maintenance_done(&self) {
        self.lock().maintenance.clear();
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.lock().shutting_down
    }

    /// Stops every running job's and task's processes with `reason`,
    /// refuses new attempts and wakes workers waiting to retry.
    pub fn shut_down(&self, reason: &str) {
        let supervisors: Vec<Supervisor> = {
            let mut stops = self.lock();
            stops.shutting_down = true;
            let jobs = stops.jobs.values().cloned();
            jobs.chain(stops.maintenance.iter().cloned()).collect()
        };
        self.changed.notify_all();
        // Outside the lock: stop() logs, and workers need the lock to finish.
        for sup in supervisors {
            sup.stop(reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::shell::Priority;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn shutdown_wakes_a_waiting_retry_and_refuses_new_attempts() {
        let control = Arc::new(Control::default());
        let sup = Supervisor::new(Priority::default(), "s b");
        assert!(control.supervise("s", &sup));
        let (running, task) = (
            Supervisor::new(Priority::default(), "t c"),
            Supervisor::new(Priority::default(), "prune"),
        );
        assert!(control.supervise("t", &running));
        assert!(control.maintain(&task));
        let waiter = {
            let control = Arc::clone(&control);
            std::thread::spawn(move || control.wait_to_retry("s", Duration::from_secs(60)))
        };
        std::thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        control.shut_down("test");
        assert!(!waiter.join().unwrap());
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!control.supervise("s", &sup));
        assert!(control.is_shutting_down());
        assert!(running.ensure_running("backup").is_err());
        assert!(task.ensure_running("prune").is_err());
        assert!(!control.maintain(&task));
    }
}
