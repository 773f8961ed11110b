//! Reading a snapshot back: `restic restore` of paths (with their
//! `--include` patterns escaped), `restic dump` of a stream or a file
//! (started for the caller to hand its stdout on), and `restic ls`. Each
//! names the snapshot by [`SnapshotRef`], falling back to its tag when
//! restic finds a short id ambiguous. Where the results go is `restore`'s
//! and `handler`'s.

use super::{stdin_filename, Error, Node, Repo, SnapshotRef};
use crate::base::glob;
use crate::process::shell::{Running, Stop, Supervisor};
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Stdio;

impl Repo {
    /// Restores `paths` (absolute paths inside `snapshot`) under `target`,
    /// where each lands at `target/<path>`; only `parts` of each (globs
    /// relative to it) if any are given.
    pub fn restore(
        &self,
        sup: &Supervisor,
        snapshot: &SnapshotRef,
        target: &Path,
        paths: &[&str],
        parts: &[String],
    ) -> Result<(), Error> {
        let mut tail = vec!["--target".to_string(), target.to_string_lossy().into()];
        for path in paths {
            // A path with `*`, `?`, `[` or `\` in it must not match others.
            let path = glob::literal(path);
            if parts.is_empty() {
                tail.extend(["--include".into(), path.clone()]);
            }
            for part in parts {
                let include = format!("{}/{part}", path.trim_end_matches('/'));
                tail.extend(["--include".into(), include]);
            }
        }
        let restore = |by_tag: bool| {
            let mut args = vec!["restore".to_string()];
            args.extend(snapshot.args(by_tag));
            args.extend(tail.iter().cloned());
            self.run_locking(sup, "restic restore", &args, None)
        };
        match restore(false) {
            Err(e) if e.is_ambiguous_id() => restore(true),
            result => result,
        }
    }

    /// Starts `restic dump` of pipe atom `atom` in `snapshot`, with its
    /// stdout piped for the caller to hand to a consumer once restic has
    /// produced its first bytes (or ended with none, successfully). The
    /// snapshot is named by tag when its short id is ambiguous; the stream
    /// is looked for at each place [`stdin_filename`] may have put it;
    /// a lock is handled as [`Repo::run_locking`] does.
    pub fn dump(
        &self,
        sup: &Supervisor,
        snapshot: &SnapshotRef,
        atom: &str,
    ) -> Result<Running, Error> {
        let mut paths = vec![format!("/{}", stdin_filename(atom, true))];
        let flat = format!("/{}", stdin_filename(atom, false));
        if flat != paths[0] {
            paths.push(flat);
        }
        self.dump_first(sup, snapshot, &paths)
    }

    /// Starts `restic dump` of the file at absolute `path` in `snapshot`,
    /// as [`Repo::dump`] does for a stream.
    pub fn dump_file(
        &self,
        sup: &Supervisor,
        snapshot: &SnapshotRef,
        path: &str,
    ) -> Result<Running, Error> {
        self.dump_first(sup, snapshot, &[path.to_string()])
    }

    /// `restic dump` of the first of `paths` the snapshot holds.
    fn dump_first(
        &self,
        sup: &Supervisor,
        snapshot: &SnapshotRef,
        paths: &[String],
    ) -> Result<Running, Error> {
        self.open(sup)?;
        let (mut by_tag, mut path, mut unlocked) = (false, 0, false);
        loop {
            let mut args = vec!["dump".to_string()];
            args.extend(snapshot.args(by_tag));
            if unlocked {
                args.extend(self.retry_lock()?);
            }
            args.push(paths[path].clone());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let start = || -> Result<Running, Error> {
                let mut cmd = self.command(&args);
                cmd.stdout(Stdio::piped());
                Ok(sup.spawn(&mut cmd, "restic dump", Stop::Interrupt)?)
            };
            let mut running = start()?;
            if has_output(&mut running) {
                return Ok(running);
            }
            match running.wait().map_err(|e| self.failed(e)) {
                // An empty stream: run it again for the caller to read.
                Ok(_) => return start(),
                Err(e) if e.is_ambiguous_id() && !by_tag => by_tag = true,
                Err(e) if e.is_missing_path() && path + 1 < paths.len() => path += 1,
                Err(Error::Locked(_)) if !unlocked => {
                    self.unlock(sup)?;
                    unlocked = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// What `snapshot` holds under the absolute `path`, recursively, the
    /// node at `path` itself included.
    pub fn ls(
        &self,
        sup: &Supervisor,
        snapshot: &SnapshotRef,
        path: &str,
    ) -> Result<Vec<Node>, Error> {
        self.open(sup)?;
        let ls = |by_tag: bool| -> Result<Vec<Node>, Error> {
            let mut args = vec!["ls".to_string(), "--json".into(), "--recursive".into()];
            args.extend(snapshot.args(by_tag));
            args.push(path.to_string());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut cmd = self.command(&args);
            cmd.stdout(Stdio::piped());
            let mut running = sup.spawn(&mut cmd, "restic ls", Stop::Interrupt)?;
            let mut nodes = Vec::new();
            if let Some(stdout) = running.child().stdout.take() {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    // The first line describes the snapshot: no `type`.
                    if let Ok(node) = serde_json::from_str::<Node>(&line) {
                        nodes.push(node);
                    }
                }
            }
            running.wait().map_err(|e| self.failed(e))?;
            Ok(nodes)
        };
        match ls(false) {
            Err(e) if e.is_ambiguous_id() => ls(true),
            result => result,
        }
    }
}

/// Whether restic's stdout has something to read, or has ended without a
/// byte, without reading it: the stream goes to the consumer whole.
fn has_output(running: &mut Running) -> bool {
    let Some(stdout) = running.child().stdout.as_ref() else {
        return false;
    };
    let mut fd = libc::pollfd {
        fd: stdout.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd, for a descriptor we own, for one call.
        let r = unsafe { libc::poll(&mut fd, 1, -1) };
        if r >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // A pipe with bytes in it polls POLLIN; one emptied and closed
            // by its writer only POLLHUP.
            return r < 0 || fd.revents & libc::POLLIN != 0;
        }
    }
}
