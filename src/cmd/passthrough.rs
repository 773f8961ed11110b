//! `tabacco restic ARGS…`: restic itself, run as a person runs it, on this
//! host's repository (or the copy `--repository` names) with the
//! configuration's location, password and backend environment, which go
//! through the environment, never the command line. Its exit status is
//! tabacco's. Terminal signals reach restic as they reach tabacco, which
//! waits for it; SIGTERM and SIGHUP sent to tabacco alone reach restic as
//! SIGINT, on which it removes its lock.

use crate::backup::copy::Reader;
use crate::base::signal::Forwarder;
use crate::cmd::Exit;
use crate::config::Config;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::sync::{Arc, Mutex, PoisonError};

pub fn restic(config: &Config, repository: Option<&str>, args: &[OsString]) -> Result<(), Exit> {
    let reader = Reader::new(&config.repository, &config.copies)
        .pick(repository)
        .map_err(|e| Exit::Usage(e.to_string()))?;
    let (_, repo) = reader.checked();
    // Before the child exists, so that no signal meant for it ends tabacco.
    let signals = Signals::new([SIGINT, SIGQUIT, SIGTERM, SIGHUP])
        .map_err(|e| Exit::Error(format!("cannot catch signals: {e}")))?;
    let mut cmd = repo.passthrough(args);
    let binary = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .spawn()
        .map_err(|e| Exit::Error(format!("cannot start {binary}: {e}")))?;
    let pid = child.id();
    // Whether the child may still be signalled: false from when it has
    // exited, before it is reaped and its pid may be another's.
    let alive = Arc::new(Mutex::new(true));
    let still = Arc::clone(&alive);
    let forwarder = Forwarder::spawn("restic-signals", signals, move |signal| {
        // SIGINT and SIGQUIT come from the terminal, to restic too.
        if matches!(signal, SIGTERM | SIGHUP)
            && *still.lock().unwrap_or_else(PoisonError::into_inner)
        {
            // SAFETY: kill(2) on our child, which has not been reaped (see
            // `alive`).
            unsafe { libc::kill(pid as libc::pid_t, SIGINT) };
        }
        true
    })
    .map_err(|e| Exit::Error(format!("cannot start the signal thread: {e}")))?;
    wait_unreaped(pid);
    *alive.lock().unwrap_or_else(PoisonError::into_inner) = false;
    let status = child.wait();
    forwarder.stop();
    let status = status.map_err(|e| Exit::Error(format!("cannot wait for {binary}: {e}")))?;
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => Err(Exit::Status(u8::try_from(code).unwrap_or(1))),
        (None, signal) => Err(Exit::Status(128 + signal.unwrap_or(0) as u8)),
    }
}

/// Waits until child `pid` has exited, leaving it to be reaped.
fn wait_unreaped(pid: u32) {
    loop {
        // SAFETY: waitid(2) writes only the struct given; WNOWAIT leaves
        // the child waitable.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let done = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if done == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return;
        }
    }
}
