//! The one way tabacco starts processes: each in its own process group,
//! under the configured nice level and I/O class, owned by a [`Supervisor`]
//! that can stop all of a job's processes at once (on a timeout or on
//! shutdown), with their stderr logged under the job's label.
//!
//! Configured commands run through `/bin/sh -c`; the values substituted
//! into them travel in environment variables ([`template`]), so no atom
//! name can become shell syntax.
//! One process's output streamed into another is [`pipe`]'s business.

pub mod pipe;
pub mod template;

pub use template::{substitute, Script};

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How long a stopped process group gets before SIGKILL.
const GRACE: Duration = Duration::from_secs(10);
/// Lines of stderr kept for error messages.
const TAIL_LINES: usize = 5;

/// Scheduling priority for every process tabacco starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Priority {
    /// nice(1) level, -20..19; unchanged when absent.
    pub nice: Option<i32>,
    /// ionice(1) class: 0 none, 1 realtime, 2 best-effort, 3 idle.
    pub io_class: Option<u32>,
}

/// The signal that asks a process group to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Terminate,
    /// For restic, which releases its repository lock on SIGINT only.
    Interrupt,
}

/// A failure to run a command.
#[derive(Debug)]
pub enum Error {
    Spawn {
        program: String,
        source: io::Error,
    },
    Failed {
        what: String,
        status: ExitStatus,
        stderr: String,
    },
    /// The job was stopped (by its timeout if `timeout`, else by its owner)
    /// before or while this ran.
    Stopped {
        what: String,
        reason: String,
        timeout: bool,
    },
    /// It ran, but its output cannot be used.
    Output {
        what: String,
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Spawn { program, source } => write!(f, "cannot start {program}: {source}"),
            Error::Failed {
                what,
                status,
                stderr,
            } => {
                write!(f, "{what} {}", describe(*status))?;
                if !stderr.is_empty() {
                    write!(f, ": {stderr}")?;
                }
                Ok(())
            }
            Error::Stopped { what, reason, .. } => write!(f, "{what} stopped: {reason}"),
            Error::Output { what, reason } => write!(f, "{what}: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spawn { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// "exited with status 2" or "was killed by signal 9".
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "ended abnormally".into(),
    }
}

/// A `/bin/sh -c` command.
pub fn sh(command: &str) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(command);
    cmd
}

/// Owns the process groups of one job and stops them together.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    priority: Priority,
    /// Prefix of every log line from this job's processes.
    label: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    groups: Vec<(u32, Stop)>,
    /// Why, and whether by the watchdog.
    stopped: Option<(String, bool)>,
}

impl State {
    fn refuse_if_stopped(&self, what: &str) -> Result<(), Error> {
        match &self.stopped {
            Some((reason, timeout)) => Err(Error::Stopped {
                what: what.into(),
                reason: reason.clone(),
                timeout: *timeout,
            }),
            None => Ok(()),
        }
    }
}

/// A running process in its own group, owned by a [`Supervisor`].
pub struct Running {
    child: Child,
    supervisor: Supervisor,
    what: String,
    stop: Stop,
    stderr: Option<JoinHandle<String>>,
}

impl Supervisor {
    /// A supervisor whose processes log under `label` (source and backup id).
    pub fn new(priority: Priority, label: impl Into<String>) -> Supervisor {
        Supervisor {
            inner: Arc::new(Inner {
                priority,
                label: label.into(),
                state: Mutex::default(),
            }),
        }
    }

    /// A new supervisor with this one's label and priority, for cleaning up
    /// after this one was stopped (which refuses new processes).
    pub fn for_cleanup(&self) -> Supervisor {
        Supervisor::new(self.inner.priority, self.inner.label.clone())
    }

    /// The prefix for this job's log lines.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts `cmd` in a new process group with stderr logged under `what`.
    /// Refuses once the job has been stopped.
    pub fn spawn(&self, cmd: &mut Command, what: &str, stop: Stop) -> Result<Running, Error> {
        let priority = self.inner.priority;
        cmd.stderr(Stdio::piped());
        // SAFETY: setpgid, setpriority and the ioprio_set syscall are
        // async-signal-safe and touch only the child's own attributes.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setpgid(0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if let Some(nice) = priority.nice {
                    libc::setpriority(libc::PRIO_PROCESS, 0, nice);
                }
                if let Some(class) = priority.io_class {
                    // ioprio_set(IOPRIO_WHO_PROCESS, self, class << 13 | level 4);
                    // best effort: realtime needs privileges we may lack.
                    let data = if class == 1 || class == 2 { 4 } else { 0 };
                    libc::syscall(libc::SYS_ioprio_set, 1, 0, (class << 13) | data);
                }
                Ok(())
            });
        }
        let mut state = self.state();
        state.refuse_if_stopped(what)?;
        let program = cmd.get_program().to_string_lossy().into_owned();
        let mut child = cmd
            .spawn()
            .map_err(|source| Error::Spawn { program, source })?;
        state.groups.push((child.id(), stop));
        drop(state);
        log::debug!("{}: started {what} (pid {})", self.inner.label, child.id());
        let stderr = child.stderr.take().map(|pipe| self.log_lines(pipe, what));
        Ok(Running {
            child,
            supervisor: self.clone(),
            what: what.into(),
            stop,
            stderr,
        })
    }

    /// [`Error::Stopped`] for `what` once the job has been stopped: for work
    /// that starts no process yet but would be wasted on a stopped job.
    pub fn ensure_running(&self, what: &str) -> Result<(), Error> {
        self.state().refuse_if_stopped(what)
    }

    /// Logs each line from `pipe` under this job's label, with credentials
    /// in URIs masked; returns the tail.
    pub fn log_lines(&self, pipe: impl Read + Send + 'static, what: &str) -> JoinHandle<String> {
        let prefix = format!("{}: {what}", self.inner.label);
        thread::spawn(move || {
            let mut tail = VecDeque::with_capacity(TAIL_LINES);
            // After a Go program's `panic:` or `fatal error:` line comes its
            // stack trace: logged, but the message stays the tail's end.
            let mut trace = false;
            for line in BufReader::new(pipe).split(b'\n').map_while(Result::ok) {
                let line = crate::base::uri::mask_text(String::from_utf8_lossy(&line).trim_end());
                // restic ends some errors with a blank line.
                if line.is_empty() {
                    continue;
                }
                log::info!("{prefix}: {line}");
                if trace || line.is_empty() {
                    continue;
                }
                trace = line.starts_with("panic: ") || line.starts_with("fatal error: ");
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            tail.into_iter().collect::<Vec<_>>().join(" / ")
        })
    }

    /// Stops every process group of this job: SIGINT for restic, SIGTERM for
    /// the rest, then SIGKILL for whatever is left after a grace period.
    /// Processes started later are refused.
    pub fn stop(&self, reason: &str) {
        self.halt(reason, false);
    }

    fn halt(&self, reason: &str, timeout: bool) {
        let groups = {
            let mut state = self.state();
            if state.stopped.is_some() {
                return;
            }
            state.stopped = Some((reason.to_string(), timeout));
            state.groups.clone()
        };
        log::warn!("{}: stopping: {reason}", self.inner.label);
        for &(pgid, stop) in &groups {
            let signal = if stop == Stop::Interrupt {
                libc::SIGINT
            } else {
                libc::SIGTERM
            };
            self.signal_group(pgid, signal);
        }
        let this = self.clone();
        thread::spawn(move || {
            thread::sleep(GRACE);
            for (pgid, _) in this.state().groups.clone() {
                this.signal_group(pgid, libc::SIGKILL);
            }
        });
    }

    /// Sends `signal` to the process group of the process `pid` that this
    /// supervisor started, if it has not been waited for yet (so never to
    /// a process that reused the id).
    pub fn signal(&self, pid: u32, signal: i32) {
        self.signal_group(pid, signal);
    }

    /// Signals group `pgid` if it is still ours. The group's leader is
    /// reaped only after it leaves the list, so the id cannot be reused by
    /// then.
    fn signal_group(&self, pgid: u32, signal: i32) {
        let state = self.state();
        if state.groups.iter().any(|(g, _)| *g == pgid) {
            // SAFETY: plain kill(2) on a group whose leader we have not reaped.
            unsafe { libc::kill(-(pgid as libc::pid_t), signal) };
        }
    }

    /// Stops the job with `reason` if it is still running after `timeout`.
    /// Dropping the returned guard cancels the watch.
    pub fn watchdog(&self, timeout: Duration, reason: String) -> Watchdog {
        let (cancel, cancelled) = mpsc::channel::<()>();
        let this = self.clone();
        let thread = thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = cancelled.recv_timeout(timeout) {
                this.halt(&reason, true);
            }
        });
        Watchdog {
            cancel: Some(cancel),
            thread: Some(thread),
        }
    }

    /// Runs a configured command to completion with `env` added; its stdout
    /// and stderr are logged.
    pub fn run_shell(
        &self,
        command: &str,
        env: &[(&str, String)],
        what: &str,
    ) -> Result<(), Error> {
        let mut cmd = sh(command);
        cmd.envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut running = self.spawn(&mut cmd, what, Stop::Terminate)?;
        let stdout = running
            .child
            .stdout
            .take()
            .map(|pipe| self.log_lines(pipe, what));
        let result = running.wait();
        if let Some(handle) = stdout {
            let _ = handle.join();
        }
        result.map(|_| ())
    }

    /// Runs a configured command and returns its stdout (for commands that
    /// list atoms or datasets; at most `limit` bytes are accepted).
    pub fn capture_shell(&self, command: &str, what: &str, limit: u64) -> Result<String, Error> {
        let out = self.capture_bytes(command, what, limit)?;
        String::from_utf8(out).map_err(|_| Error::Output {
            what: what.into(),
            reason: "output is not UTF-8".into(),
        })
    }

    /// [`Supervisor::capture_shell`], the output as it was printed.
    pub fn capture_bytes(&self, command: &str, what: &str, limit: u64) -> Result<Vec<u8>, Error> {
        let mut cmd = sh(command);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        let mut running = self.spawn(&mut cmd, what, Stop::Terminate)?;
        let mut out = Vec::new();
        let mut too_long = false;
        if let Some(pipe) = running.child.stdout.take() {
            let read = pipe.take(limit + 1).read_to_end(&mut out);
            too_long = read.is_ok() && out.len() as u64 > limit;
            if too_long {
                running.kill();
            }
        }
        let status = running.wait();
        if too_long {
            return Err(Error::Output {
                what: what.into(),
                reason: format!("output exceeds {limit} bytes"),
            });
        }
        status?;
        Ok(out)
    }
}

/// One process's bound ([`Running::deadline`]): the process is stopped if
/// it still runs when the bound expires. Dropping it cancels the bound.
pub struct Deadline {
    cancel: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    expired: Arc<AtomicBool>,
}

impl Deadline {
    /// Whether the process was stopped because it ran past the bound.
    pub fn expired(&self) -> bool {
        self.expired.load(Ordering::SeqCst)
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        drop(self.cancel.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Cancels a [`Supervisor::watchdog`] when dropped.
pub struct Watchdog {
    cancel: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.cancel.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Running {
    /// The child, for its stdout.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Stops this process's group if it still runs after `bound` (as the
    /// job's stop does: SIGINT for restic, SIGTERM for the rest, SIGKILL
    /// after a grace period), unlike the job's watchdog leaving the job's
    /// other processes alone. Arm it before reading the process's output,
    /// which a process that never answers never closes.
    pub fn deadline(&self, bound: Duration) -> Deadline {
        let (cancel, cancelled) = mpsc::channel::<()>();
        let expired = Arc::new(AtomicBool::new(false));
        let (sup, pgid, flag) = (
            self.supervisor.clone(),
            self.child.id(),
            Arc::clone(&expired),
        );
        let what = self.what.clone();
        let signal = match self.stop {
            Stop::Interrupt => libc::SIGINT,
            Stop::Terminate => libc::SIGTERM,
        };
        let thread = thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = cancelled.recv_timeout(bound) {
                flag.store(true, Ordering::SeqCst);
                let after = crate::base::time::format_duration(bound);
                log::warn!(
                    "{}: stopping {what}: still running after {after}",
                    sup.label()
                );
                sup.signal_group(pgid, signal);
                if let Err(RecvTimeoutError::Timeout) = cancelled.recv_timeout(GRACE) {
                    sup.signal_group(pgid, libc::SIGKILL);
                }
            }
        });
        Deadline {
            cancel: Some(cancel),
            thread: Some(thread),
            expired,
        }
    }

    /// Kills the whole group now.
    pub fn kill(&self) {
        self.supervisor.signal_group(self.child.id(), libc::SIGKILL);
    }

    /// The process id (and so its process group's).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process; failure (or any exit after the job was
    /// stopped) is an error carrying the stderr tail. `ok` lists exit codes
    /// other than 0 that the caller handles itself.
    pub fn wait_allowing(mut self, ok: &[i32]) -> Result<ExitStatus, Error> {
        let pid = self.child.id();
        // Wait without reaping, so the group id stays ours while we forget
        // it; then kill what the leader left behind in its group (it would
        // hold our pipes open) and reap.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: waitid on our own child with a valid siginfo buffer.
            let r =
                unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
            if r == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break;
            }
        }
        {
            let mut state = self.supervisor.state();
            // SAFETY: the leader is a zombie we have not reaped: the group id is ours.
            unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
            state.groups.retain(|(g, _)| *g != pid);
        }
        let status = self.child.wait();
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let status = status.map_err(|source| Error::Spawn {
            program: self.what.clone(),
            source,
        })?;
        self.supervisor.state().refuse_if_stopped(&self.what)?;
        match status.code() {
            Some(0) => Ok(status),
            Some(code) if ok.contains(&code) => Ok(status),
            _ => Err(Error::Failed {
                what: self.what.clone(),
                status,
                stderr,
            }),
        }
    }

    /// [`Running::wait_allowing`] with only 0 as success.
    pub fn wait(self) -> Result<ExitStatus, Error> {
        self.wait_allowing(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_carries_status_and_stderr_tail() {
        let sup = Supervisor::new(Priority::default(), "t");
        let err = sup
            .run_shell("echo one >&2; echo two >&2; exit 3", &[], "hook")
            .unwrap_err();
        assert_eq!(err.to_string(), "hook exited with status 3: one / two");
    }

    #[test]
    fn a_go_stack_trace_is_reduced_to_its_message() {
        let sup = Supervisor::new(Priority::default(), "t");
        let trace = "echo 'repository abc opened' >&2; \
            echo 'panic: runtime error: index out of range [5] with length 3' >&2; echo >&2; \
            echo 'goroutine 1 [running]:' >&2; echo 'main.main()' >&2; \
            printf '\\t/restic/cmd/restic/main.go:5 +0x1d\\n' >&2; exit 2";
        let err = sup.run_shell(trace, &[], "restic").unwrap_err();
        assert_eq!(
            err.to_string(),
            "restic exited with status 2: repository abc opened / \
             panic: runtime error: index out of range [5] with length 3"
        );
    }

    #[test]
    fn a_deadline_stops_one_process_and_says_so() {
        let sup = Supervisor::new(Priority::default(), "t");
        let started = std::time::Instant::now();
        let running = sup
            .spawn(&mut sh("sleep 30"), "hang", Stop::Terminate)
            .unwrap();
        let deadline = running.deadline(Duration::from_millis(200));
        assert!(running.wait().is_err());
        assert!(deadline.expired());
        assert!(started.elapsed() < Duration::from_secs(5));
        // The job goes on: only that process was stopped.
        let quick = sup
            .spawn(&mut sh("true"), "quick", Stop::Terminate)
            .unwrap();
        let deadline = quick.deadline(Duration::from_secs(30));
        quick.wait().unwrap();
        assert!(!deadline.expired());
    }

    #[test]
    fn stop_kills_the_whole_group() {
        let sup = Supervisor::new(Priority::default(), "t");
        let _watch = sup.watchdog(Duration::from_millis(200), "timeout after 0.2s".into());
        let started = std::time::Instant::now();
        // The grandchild `sleep` would keep stdout open if it survived.
        let err = sup
            .run_shell("sleep 30 | cat; echo done", &[], "hang")
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(err.to_string(), "hang stopped: timeout after 0.2s");
        assert!(
            sup.run_shell("true", &[], "late").is_err(),
            "a stopped job starts nothing"
        );
    }

    #[test]
    fn capture_limits_output() {
        let sup = Supervisor::new(Priority::default(), "t");
        assert_eq!(
            sup.capture_shell("printf 'a\\nb\\n'", "list", 100).unwrap(),
            "a\nb\n"
        );
        assert!(sup.capture_shell("yes", "list", 1000).is_err());
    }
}
