//! The restic repository as tabacco drives it: [`Repo`] and the core of
//! every invocation: restic's environment (never a password on argv), the
//! version check, taking the repository's lock (with `unlock` and
//! `--retry-lock`), reading a command's JSON, and a failure made to name
//! the repository. Opening and creating it is [`open`](super::open)'s; the
//! operations are `impl Repo` blocks of their own: [`backup`](super::backup),
//! [`restore`](super::restore) (restore, dump, ls) and
//! [`maintenance`](super::maintenance) (snapshots, forget, prune, check,
//! copy).

use super::output::parse_json;
use super::{version, Error, Password, Repository, Version};
use crate::process::shell::{self, Stop, Supervisor};
use serde::de::DeserializeOwned;
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};

/// A restic repository as configured.
pub struct Repo {
    pub(super) config: Repository,
    /// Whether this process opened the repository, since it last failed
    /// (see [`Repo::open`]).
    pub(super) opened: Mutex<bool>,
    /// The repository's id, once learnt (see [`Repo::id`]).
    pub(super) id: Mutex<Option<String>>,
}

impl Repo {
    pub fn new(config: Repository) -> Repo {
        Repo {
            config,
            opened: Mutex::new(false),
            id: Mutex::new(None),
        }
    }

    /// The repository as configured.
    pub fn repository(&self) -> &Repository {
        &self.config
    }

    /// A restic command with the repository's environment and options
    /// (compression, bandwidth limits: global options every command
    /// takes). The password goes through the environment (or a file),
    /// never argv; stdin is closed so restic never waits for a password.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.config.binary);
        cmd.args(&self.config.options)
            .args(args)
            .env_remove("RESTIC_PASSWORD")
            .env_remove("RESTIC_PASSWORD_FILE")
            .env_remove("RESTIC_PASSWORD_COMMAND")
            .env("RESTIC_REPOSITORY", &self.config.uri)
            .env("RESTIC_CACHE_DIR", &self.config.cache_dir)
            .env("RESTIC_PROGRESS_FPS", "1")
            .envs(&self.config.env)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        match &self.config.password {
            Password::File(path) => cmd.env("RESTIC_PASSWORD_FILE", path),
            Password::Literal(password) => cmd.env("RESTIC_PASSWORD", password),
        };
        cmd
    }

    /// A restic command on this repository that also reads `from` (restic's
    /// "secondary" repository: `copy`, `init --copy-chunker-params`), its
    /// location and password given through the environment as this
    /// repository's are, never argv. `from`'s backend environment is added
    /// where this repository's does not set the same variable.
    pub(super) fn reading(&self, from: &Repository, args: &[&str]) -> Command {
        let mut cmd = self.command(args);
        for name in [
            "RESTIC_FROM_PASSWORD",
            "RESTIC_FROM_PASSWORD_FILE",
            "RESTIC_FROM_PASSWORD_COMMAND",
            "RESTIC_FROM_REPOSITORY_FILE",
            "RESTIC_FROM_KEY_HINT",
        ] {
            cmd.env_remove(name);
        }
        cmd.env("RESTIC_FROM_REPOSITORY", &from.uri);
        let theirs = from.env.iter();
        cmd.envs(theirs.filter(|(name, _)| !self.config.env.contains_key(*name)));
        match &from.password {
            Password::File(path) => cmd.env("RESTIC_FROM_PASSWORD_FILE", path),
            Password::Literal(password) => cmd.env("RESTIC_FROM_PASSWORD", password),
        };
        cmd
    }

    /// The version of the configured restic, learnt once per process.
    pub fn version(&self) -> Result<Version, Error> {
        version::detect(&self.config.binary).map_err(Error::Version)
    }

    /// `--retry-lock` with the configured bound where restic has it (0.16
    /// and newer), for a second attempt after a lock was found.
    pub(super) fn retry_lock(&self) -> Result<Vec<String>, Error> {
        Ok(if self.version()?.has_retry_lock() {
            let secs = self.config.retry_lock.as_secs().max(1);
            vec!["--retry-lock".into(), format!("{secs}s")]
        } else {
            Vec::new()
        })
    }

    /// Runs restic with `args` to completion. A lock held by another
    /// process fails the first attempt at once; then stale locks are
    /// removed (`unlock`) and a second attempt waits up to the configured
    /// bound for live ones (`--retry-lock`, restic 0.16 and newer; restic
    /// 0.14 fails again at once). Waiting from the first attempt would wait
    /// out the whole bound for a stale lock too. With `from`, restic reads
    /// that repository too (see [`Repo::reading`]). The repository is
    /// opened first (see [`Repo::open`]), as by every operation.
    pub(super) fn run_locking(
        &self,
        sup: &Supervisor,
        what: &str,
        args: &[String],
        from: Option<&Repository>,
    ) -> Result<(), Error> {
        self.open(sup)?;
        let run = |extra: &[String]| -> Result<(), Error> {
            let all: Vec<&str> = args.iter().chain(extra).map(String::as_str).collect();
            let mut cmd = match from {
                Some(from) => self.reading(from, &all),
                None => self.command(&all),
            };
            let running = sup.spawn(&mut cmd, what, Stop::Interrupt)?;
            running.wait().map_err(|e| self.failed(e))?;
            Ok(())
        };
        match run(&[]) {
            Err(Error::Locked(_)) => {
                self.unlock(sup)?;
                run(&self.retry_lock()?)
            }
            result => result,
        }
    }

    /// restic 0.14 leaves its lock behind when SIGINT arrives just after it
    /// took it. After stopping restic, remove this host's stale locks
    /// (`unlock` without `--remove-all` touches no live lock).
    pub(super) fn unlock_if_stopped<T>(
        &self,
        sup: &Supervisor,
        result: Result<T, Error>,
    ) -> Result<T, Error> {
        if let Err(Error::Process(shell::Error::Stopped { .. })) = &result {
            if let Err(e) = self.unlock(&sup.for_cleanup()) {
                log::error!("{}: cannot remove stale restic locks: {e}", sup.label());
            }
        }
        result
    }

    /// Removes stale locks (of dead processes); live locks stay.
    pub fn unlock(&self, sup: &Supervisor) -> Result<(), Error> {
        sup.spawn(
            &mut self.command(&["unlock"]),
            "restic unlock",
            Stop::Interrupt,
        )?
        .wait()
        .map_err(|e| self.failed(e))?;
        Ok(())
    }

    /// restic with `args` as a person runs it: the repository's environment
    /// and options, and the terminal's stdin, stdout and stderr (progress at
    /// restic's own pace). For `tabacco restic`.
    pub fn passthrough(&self, args: &[std::ffi::OsString]) -> Command {
        let mut cmd = self.command(&[]);
        cmd.args(args)
            .env_remove("RESTIC_PROGRESS_FPS")
            .stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        cmd
    }

    /// The lines restic run with `args` prints on stdout; `what` names the
    /// command in errors.
    pub(super) fn lines(
        &self,
        sup: &Supervisor,
        args: &[&str],
        what: &str,
    ) -> Result<Vec<String>, Error> {
        self.version()?;
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped());
        let mut running = sup.spawn(&mut cmd, what, Stop::Interrupt)?;
        let mut text = String::new();
        let read = running
            .child()
            .stdout
            .take()
            .map(|mut out| std::io::Read::read_to_string(&mut out, &mut text));
        running.wait()?;
        match read {
            Some(Ok(_)) => Ok(text.lines().map(str::to_string).collect()),
            Some(Err(e)) => Err(Error::Output(format!("{what}: {e}"))),
            None => Err(Error::Output(format!("{what}: no output"))),
        }
    }

    /// What restic run with `args` prints on stdout, read as JSON; `what`
    /// names the command in errors.
    pub(super) fn json<T: DeserializeOwned>(
        &self,
        sup: &Supervisor,
        args: &[&str],
        what: &str,
    ) -> Result<T, Error> {
        self.open(sup)?;
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped());
        let mut running = sup.spawn(&mut cmd, what, Stop::Interrupt)?;
        let parsed = running.child().stdout.take().map(parse_json);
        running.wait().map_err(|e| self.failed(e))?;
        match parsed {
            Some(Ok(value)) => Ok(value),
            Some(Err(e)) => Err(Error::Output(format!("{what}: {e}"))),
            None => Err(Error::Output(format!("{what}: no output"))),
        }
    }
}

impl Repo {
    /// restic's failure `e`, about this repository: where it is about the
    /// repository itself, said of it with the fix (see
    /// [`Repo::located`]), and the repository is opened again before its
    /// next use.
    pub(super) fn failed(&self, e: impl Into<Error>) -> Error {
        let e = self.located(e.into());
        if e.is_repository() {
            *self.opened.lock().unwrap_or_else(PoisonError::into_inner) = false;
        }
        e
    }
}

/// Whether a restic repository URI is a local path rather than `backend:...`.
pub fn is_local(uri: &str) -> bool {
    match uri.split_once(':') {
        Some((scheme, _)) => scheme.contains('/'),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_remote_uris() {
        assert!(is_local("/var/backups/restic"));
        assert!(is_local("/odd:name/repo"));
        assert!(!is_local("sftp:host:/repo"));
        assert!(!is_local("s3:s3.amazonaws.com/bucket"));
    }
}
