//! One agent per `work_dir`: a second agent on the same host and
//! configuration would run every backup twice. An advisory lock on
//! `work_dir/agent.pid` (which holds the owner's pid, for the message) is
//! held for the agent's lifetime and released by the kernel when it exits,
//! however it exits.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

/// Held while the agent runs.
#[derive(Debug)]
pub struct Instance {
    _file: File,
}

impl Instance {
    /// Takes the lock in `work_dir`, or says which process holds it.
    pub fn lock(work_dir: &Path) -> Result<Instance, String> {
        let path = work_dir.join("agent.pid");
        let context = |e: std::io::Error| format!("cannot lock {}: {e}", path.display());
        fs::create_dir_all(work_dir).map_err(context)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(context)?;
        // SAFETY: flock(2) on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::WouldBlock {
                return Err(context(err));
            }
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(format!(
                "another agent (pid {}) is running with work_dir {}",
                pid.trim(),
                work_dir.display()
            ));
        }
        file.set_len(0).map_err(context)?;
        file.rewind().map_err(context)?;
        writeln!(file, "{}", std::process::id()).map_err(context)?;
        Ok(Instance { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_instance_is_refused_until_the_first_ends() {
        let dir = std::env::temp_dir().join(format!("tabacco-instance-{}", std::process::id()));
        let first = Instance::lock(&dir).unwrap();
        let err = Instance::lock(&dir).unwrap_err();
        let pid = std::process::id();
        assert!(
            err.contains(&format!("another agent (pid {pid}) is running")),
            "{err}"
        );
        drop(first);
        assert!(Instance::lock(&dir).is_ok());
        fs::remove_dir_all(&dir).unwrap();
    }
}
