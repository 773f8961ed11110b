//! The restic repository: how restic is invoked (environment, never a
//! password on argv, absolute paths, tags), what its `--json` output means,
//! and what its exit codes and errors mean to a job.

use crate::config::raw::Retention;
use crate::config::{self, Password};
use crate::shell::{self, Running, Stop, Supervisor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};

/// restic's exit code for "snapshot saved, but some files were unreadable".
const EXIT_INCOMPLETE: i32 = 3;

/// A restic failure, classified where a caller must branch on it.
#[derive(Debug)]
pub enum Error {
    /// The repository is locked by another process.
    Locked(String),
    /// The repository does not exist or cannot be reached.
    Unavailable(String),
    WrongPassword,
    /// restic ran but reported no summary.
    NoSummary,
    /// restic's output could not be understood.
    Output(String),
    Process(shell::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Locked(msg) => write!(f, "repository is locked: {msg}"),
            Error::Unavailable(msg) => write!(f, "repository unavailable: {msg}"),
            Error::WrongPassword => f.write_str("wrong repository password"),
            Error::NoSummary => f.write_str("restic reported no backup summary"),
            Error::Output(e) => write!(f, "unexpected restic output: {e}"),
            Error::Process(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

impl From<shell::Error> for Error {
    fn from(e: shell::Error) -> Error {
        if let shell::Error::Failed { stderr, .. } = &e {
            if stderr.contains("repository is already locked") {
                return Error::Locked(stderr.clone());
            }
            if stderr.contains("wrong password") {
                return Error::WrongPassword;
            }
            if stderr.contains("Is there a repository at the following location?")
                || is_network_error(stderr)
            {
                return Error::Unavailable(stderr.clone());
            }
        }
        Error::Process(e)
    }
}

/// What to back up.
pub enum Input {
    /// Absolute paths.
    Paths(Vec<PathBuf>),
    /// A producer's stdout, stored as `/<filename>`.
    Stdin { filename: String, data: Stdio },
}

/// One `restic backup` call.
pub struct Backup<'a> {
    pub host: &'a str,
    pub tags: Vec<String>,
    /// Snapshot time, as restic's `--time` wants it (local time).
    pub time: String,
    pub input: Input,
}

/// The `summary` line of `restic backup --json`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct Summary {
    pub snapshot_id: String,
    #[serde(default)]
    pub total_files_processed: i64,
    #[serde(default)]
    pub total_bytes_processed: i64,
    #[serde(default)]
    pub data_added: i64,
    #[serde(default)]
    pub total_duration: f64,
    /// Set when restic exited 3: saved, but some files were unreadable.
    #[serde(skip)]
    pub incomplete: bool,
}

/// A `status` line of `restic backup --json`: progress of a running backup.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
pub struct Status {
    #[serde(default)]
    pub percent_done: f64,
    #[serde(default)]
    pub files_done: u64,
    #[serde(default)]
    pub total_files: u64,
    #[serde(default)]
    pub bytes_done: u64,
    #[serde(default)]
    pub total_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_elapsed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_remaining: Option<u64>,
}

#[derive(Deserialize)]
#[serde(tag = "message_type", rename_all = "lowercase")]
enum Message {
    Status(Status),
    Summary(Summary),
    #[serde(other)]
    Other,
}

/// A restic repository as configured.
pub struct Repo {
    config: config::Repository,
    /// Whether this process has made sure the repository exists.
    initialized: Mutex<bool>,
}

impl Repo {
    pub fn new(config: config::Repository) -> Repo {
        Repo {
            config,
            initialized: Mutex::new(false),
        }
    }

    /// A restic command with the repository's environment. The password goes
    /// through the environment (or a file), never argv; stdin is closed so
    /// restic never waits for a password.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("restic");
        cmd.args(args)
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

    /// Creates the repository if it does not exist yet. Checked once per
    /// process: a local repository by its config file, at no cost; a remote
    /// one with one `restic cat config`.
    pub fn ensure_initialized(&self, sup: &Supervisor) -> Result<(), Error> {
        let mut initialized = self
            .initialized
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *initialized {
            return Ok(());
        }
        // Why a remote repository seemed absent: reported instead of init's
        // own error when init fails too (the backend is likely unreachable).
        let mut absent = None;
        if is_local(&self.config.uri) {
            if !Path::new(&self.config.uri).join("config").exists() {
                absent = Some(String::new());
            }
        } else {
            let probe = sup.spawn(
                &mut self.command(&["cat", "config"]),
                "restic cat config",
                Stop::Interrupt,
            )?;
            if let Err(e) = probe.wait() {
                match Error::from(e) {
                    Error::Unavailable(why) => absent = Some(why),
                    e => return Err(e),
                }
            }
        }
        if let Some(why) = absent {
            let uri = crate::uri::mask(&self.config.uri);
            log::info!("initialising restic repository {uri}");
            let init = sup.spawn(&mut self.command(&["init"]), "restic init", Stop::Interrupt)?;
            match init.wait() {
                Ok(_) => {}
                Err(e) if why.is_empty() => return Err(e.into()),
                Err(e) => {
                    return Err(Error::Unavailable(format!(
                        "{why}; and restic init failed: {e}"
                    )))
                }
            }
        }
        *initialized = true;
        Ok(())
    }

    /// Runs `restic backup --json`, reporting progress to `on_status`.
    pub fn backup(
        &self,
        sup: &Supervisor,
        backup: Backup,
        on_status: &mut dyn FnMut(Status),
    ) -> Result<Summary, Error> {
        let mut args: Vec<String> = vec![
            "backup".into(),
            "--json".into(),
            "--host".into(),
            backup.host.into(),
        ];
        args.extend(["--time".into(), backup.time]);
        for tag in backup.tags {
            args.extend(["--tag".into(), tag]);
        }
        let stdin = match backup.input {
            Input::Paths(paths) => {
                args.push("--".into());
                args.extend(paths.iter().map(|p| p.to_string_lossy().into_owned()));
                Stdio::null()
            }
            Input::Stdin { filename, data } => {
                args.extend(["--stdin".into(), "--stdin-filename".into(), filename]);
                data
            }
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // The command (holding our copy of the producer's pipe) is dropped
        // right after the spawn, so that restic's death reaches the producer.
        let running = {
            let mut cmd = self.command(&args);
            cmd.stdin(stdin).stdout(Stdio::piped());
            sup.spawn(&mut cmd, "restic backup", Stop::Interrupt)?
        };
        let result = read_backup_output(running, on_status);
        self.unlock_if_stopped(sup, result)
    }

    /// restic 0.14 leaves its lock behind when SIGINT arrives just after it
    /// took it. After stopping restic, remove this host's stale locks
    /// (`unlock` without `--remove-all` touches no live lock).
    fn unlock_if_stopped<T>(&self, sup: &Supervisor, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(Error::Process(shell::Error::Stopped { .. })) = &result {
            if let Err(e) = self.unlock(&sup.for_cleanup()) {
                log::error!("{}: cannot remove stale restic locks: {e}", sup.label());
            }
        }
        result
    }

    /// Removes the snapshots tagged with any of `tags` (data is reclaimed by
    /// a later prune), in one restic process.
    pub fn forget_tags(&self, sup: &Supervisor, tags: &[String]) -> Result<(), Error> {
        // `forget --tag T` alone removes nothing ("no policy"); a policy that
        // keeps only snapshots with a tag none has removes exactly those
        // tagged T (repeated `--tag`s are alternatives), with no short id
        // involved.
        let mut args = vec!["forget"];
        for tag in tags {
            args.extend(["--tag", tag]);
        }
        args.extend(["--keep-tag", "tabacco:keep-none"]);
        sup.spawn(&mut self.command(&args), "restic forget", Stop::Interrupt)?
            .wait()?;
        Ok(())
    }

    /// Applies `policy` to this `host`'s snapshots of `sources`, each atom
    /// (path) on its own, and returns the snapshots it removed (or, with
    /// `dry_run`, would remove). Data is reclaimed by [`Repo::prune`].
    pub fn forget(
        &self,
        sup: &Supervisor,
        host: &str,
        sources: &[&str],
        policy: &Retention,
        dry_run: bool,
    ) -> Result<Vec<Snapshot>, Error> {
        let mut args: Vec<String> = [
            "forget",
            "--json",
            "--host",
            host,
            "--group-by",
            "host,paths",
        ]
        .map(String::from)
        .into();
        for source in sources {
            args.extend(["--tag".into(), format!("tabacco:source={source}")]);
        }
        args.extend(policy_args(policy));
        if dry_run {
            args.push("--dry-run".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = self.command(&args);
        cmd.stdout(Stdio::piped());
        let mut running = sup.spawn(&mut cmd, "restic forget", Stop::Interrupt)?;
        let mut first_line = String::new();
        if let Some(stdout) = running.child().stdout.take() {
            let mut reader = BufReader::new(stdout);
            let _ = reader.read_line(&mut first_line);
            // Drain the rest so restic never blocks on a full pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        }
        running.wait()?;
        if first_line.trim().is_empty() {
            return Ok(Vec::new());
        }
        #[derive(Deserialize)]
        struct Group {
            remove: Option<Vec<Snapshot>>,
        }
        let groups: Vec<Group> = serde_json::from_str(&first_line)
            .map_err(|e| Error::Output(format!("restic forget --json: {e}")))?;
        Ok(groups
            .into_iter()
            .flat_map(|g| g.remove.unwrap_or_default())
            .collect())
    }

    /// Reclaims the space of forgotten snapshots. Needs an exclusive lock:
    /// fails while any backup runs.
    pub fn prune(&self, sup: &Supervisor) -> Result<(), Error> {
        sup.spawn(
            &mut self.command(&["prune"]),
            "restic prune",
            Stop::Interrupt,
        )?
        .wait()?;
        Ok(())
    }

    /// `restic check`, reading back `read_data_subset` of the data if given
    /// (e.g. `5%` or `1/10`). Needs an exclusive lock.
    pub fn check(&self, sup: &Supervisor, read_data_subset: Option<&str>) -> Result<(), Error> {
        let mut args = vec!["check"];
        if let Some(subset) = read_data_subset {
            args.extend(["--read-data-subset", subset]);
        }
        sup.spawn(&mut self.command(&args), "restic check", Stop::Interrupt)?
            .wait()?;
        Ok(())
    }

    /// Removes stale locks (of dead processes); live locks stay.
    pub fn unlock(&self, sup: &Supervisor) -> Result<(), Error> {
        sup.spawn(
            &mut self.command(&["unlock"]),
            "restic unlock",
            Stop::Interrupt,
        )?
        .wait()?;
        Ok(())
    }

    /// Restores `paths` (absolute paths inside the snapshot tagged `tag`)
    /// under `target`, where each lands at `target/<path>`.
    pub fn restore(
        &self,
        sup: &Supervisor,
        tag: &str,
        target: &Path,
        paths: &[&str],
    ) -> Result<(), Error> {
        let target = target.to_string_lossy();
        let mut args = vec!["restore", "latest", "--tag", tag, "--target", &target];
        let includes: Vec<String> = paths.iter().map(|p| escape_pattern(p)).collect();
        for include in &includes {
            args.extend(["--include", include]);
        }
        sup.spawn(&mut self.command(&args), "restic restore", Stop::Interrupt)?
            .wait()?;
        Ok(())
    }

    /// Starts `restic dump` of `path` in the snapshot tagged `tag`, with
    /// its stdout piped for the caller to hand to a consumer.
    pub fn dump(&self, sup: &Supervisor, tag: &str, path: &str) -> Result<Running, Error> {
        let mut cmd = self.command(&["dump", "latest", "--tag", tag, path]);
        cmd.stdout(Stdio::piped());
        Ok(sup.spawn(&mut cmd, "restic dump", Stop::Interrupt)?)
    }

    /// Every snapshot carrying `tag`.
    pub fn snapshots(&self, sup: &Supervisor, tag: &str) -> Result<Vec<Snapshot>, Error> {
        let mut cmd = self.command(&["snapshots", "--json", "--tag", tag]);
        cmd.stdout(Stdio::piped());
        let mut running = sup.spawn(&mut cmd, "restic snapshots", Stop::Interrupt)?;
        let parsed = running
            .child()
            .stdout
            .take()
            .map(serde_json::from_reader::<_, Option<Vec<Snapshot>>>);
        running.wait()?;
        match parsed {
            Some(Ok(snapshots)) => Ok(snapshots.unwrap_or_default()),
            Some(Err(e)) => Err(Error::Output(format!("restic snapshots --json: {e}"))),
            None => Ok(Vec::new()),
        }
    }
}

/// A snapshot as `restic snapshots --json` lists it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Snapshot {
    pub short_id: String,
    /// RFC 3339 with the local offset and nanoseconds.
    pub time: String,
    pub hostname: String,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// Whether restic's stderr holds one of Go's network errors: a remote
/// repository it could not reach.
fn is_network_error(stderr: &str) -> bool {
    const NETWORK: [&str; 7] = [
        "connection refused",
        "no route to host",
        "network is unreachable",
        "no such host",
        "i/o timeout",
        "connection reset by peer",
        "TLS handshake timeout",
    ];
    NETWORK.iter().any(|words| stderr.contains(words))
}

/// restic's `forget` options for a retention policy. restic reads `m` in
/// `--keep-within` as months, so the duration is given in days and hours.
fn policy_args(policy: &Retention) -> Vec<String> {
    let mut args = Vec::new();
    let counts = [
        ("--keep-last", policy.keep_last),
        ("--keep-hourly", policy.keep_hourly),
        ("--keep-daily", policy.keep_daily),
        ("--keep-weekly", policy.keep_weekly),
        ("--keep-monthly", policy.keep_monthly),
        ("--keep-yearly", policy.keep_yearly),
    ];
    for (flag, count) in counts {
        if let Some(n) = count {
            args.extend([flag.to_string(), n.to_string()]);
        }
    }
    if let Some(within) = policy
        .keep_within
        .as_deref()
        .and_then(|w| crate::time::parse_duration(w).ok())
    {
        let hours = within.as_secs().div_ceil(3600);
        args.extend([
            "--keep-within".to_string(),
            format!("{}d{}h", hours / 24, hours % 24),
        ]);
    }
    args
}

/// restic's `--include` takes glob patterns: a path with `*`, `?`, `[` or
/// `\` in it must not match other paths.
fn escape_pattern(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '*' | '?' | '[' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn read_backup_output(
    mut running: Running,
    on_status: &mut dyn FnMut(Status),
) -> Result<Summary, Error> {
    let mut summary = None;
    if let Some(stdout) = running.child().stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            match serde_json::from_str::<Message>(&line) {
                Ok(Message::Status(status)) => on_status(status),
                Ok(Message::Summary(s)) => summary = Some(s),
                Ok(Message::Other) => {}
                Err(_) => log::debug!("restic: {}", crate::uri::mask_text(&line)),
            }
        }
    }
    let status = running.wait_allowing(&[EXIT_INCOMPLETE])?;
    let mut summary = summary.ok_or(Error::NoSummary)?;
    summary.incomplete = status.code() == Some(EXIT_INCOMPLETE);
    Ok(summary)
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
    fn parses_backup_json_from_restic_0_14() {
        let status = r#"{"message_type":"status","percent_done":0.5,"total_files":4,"files_done":2,"total_bytes":100,"bytes_done":50}"#;
        let summary = r#"{"message_type":"summary","files_new":1,"files_changed":0,"files_unmodified":0,"dirs_new":1,"dirs_changed":0,"dirs_unmodified":0,"data_blobs":1,"tree_blobs":2,"data_added":537,"total_files_processed":1,"total_bytes_processed":3,"total_duration":0.210578189,"snapshot_id":"bcd489eb"}"#;
        let Ok(Message::Status(s)) = serde_json::from_str(status) else {
            panic!("status")
        };
        assert_eq!((s.files_done, s.bytes_done, s.percent_done), (2, 50, 0.5));
        let Ok(Message::Summary(s)) = serde_json::from_str(summary) else {
            panic!("summary")
        };
        assert_eq!(s.snapshot_id, "bcd489eb");
        assert_eq!(
            (
                s.total_files_processed,
                s.total_bytes_processed,
                s.data_added
            ),
            (1, 3, 537)
        );
        assert!(matches!(
            serde_json::from_str(r#"{"message_type":"verbose_status"}"#),
            Ok(Message::Other)
        ));
    }

    #[test]
    fn classifies_errors_from_stderr() {
        let failed = |stderr: &str| shell::Error::Failed {
            what: "restic".into(),
            status: std::os::unix::process::ExitStatusExt::from_raw(1 << 8),
            stderr: stderr.into(),
        };
        assert!(matches!(
            Error::from(failed("Fatal: wrong password or no key found")),
            Error::WrongPassword
        ));
        assert!(matches!(
            Error::from(failed("Fatal: unable to open config file / Is there a repository at the following location?")),
            Error::Unavailable(_)
        ));
        assert!(matches!(
            Error::from(failed(
                "unable to create lock in backend: repository is already locked by PID 1"
            )),
            Error::Locked(_)
        ));
        assert!(matches!(
            Error::from(failed("Fatal: create repository at rest:http://127.0.0.1:1/ failed: dial tcp 127.0.0.1:1: connect: connection refused")),
            Error::Unavailable(_)
        ));
        assert!(matches!(Error::from(failed("other")), Error::Process(_)));
    }

    #[test]
    fn retention_becomes_forget_options() {
        let policy = Retention {
            keep_last: Some(3),
            keep_weekly: Some(4),
            keep_within: Some("36h30m".into()),
            ..Retention::default()
        };
        assert_eq!(
            policy_args(&policy),
            [
                "--keep-last",
                "3",
                "--keep-weekly",
                "4",
                "--keep-within",
                "1d13h"
            ]
        );
    }

    #[test]
    fn include_patterns_are_escaped() {
        assert_eq!(escape_pattern("/srv/a*b?[c]\\d"), "/srv/a\\*b\\?\\[c]\\\\d");
    }

    #[test]
    fn local_and_remote_uris() {
        assert!(is_local("/var/backups/restic"));
        assert!(is_local("/odd:name/repo"));
        assert!(!is_local("sftp:host:/repo"));
        assert!(!is_local("s3:s3.amazonaws.com/bucket"));
    }
}
