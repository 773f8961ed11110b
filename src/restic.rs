//! The restic repository: how restic is invoked (environment, never a
//! password on argv, absolute paths, tags), what its `--json` output means,
//! and what its exit codes and errors mean to a job. What differs between
//! restic versions is decided here, from [`version`]. The repository's
//! settings ([`Repository`], [`Password`]) are restic's own types, built by
//! `config`.

mod repository;
mod version;

pub use repository::{Password, Repository};
pub use version::Version;

use crate::base::retention::Retention;
use crate::process::shell::{self, Running, Stop, Supervisor};
use crate::wire::model::Dataset;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};

/// restic's exit code for "snapshot saved, but some files were unreadable".
const EXIT_INCOMPLETE: i32 = 3;
/// Exit codes of restic 0.17 and newer: no repository at the location, a
/// lock could not be taken, wrong password (0.17.1).
const EXIT_NO_REPOSITORY: i32 = 10;
const EXIT_LOCKED: i32 = 11;
const EXIT_WRONG_PASSWORD: i32 = 12;

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
    /// restic cannot be run, or is a version tabacco does not support.
    Version(String),
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
            Error::Version(e) => f.write_str(e),
            Error::Process(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

impl From<shell::Error> for Error {
    /// By exit code where restic gives one (0.17 and newer), else by the
    /// words of restic 0.14's stderr.
    fn from(e: shell::Error) -> Error {
        let shell::Error::Failed {
            what,
            status,
            stderr,
        } = e
        else {
            return Error::Process(e);
        };
        let stderr = plain_stderr(&stderr);
        match status.code() {
            Some(EXIT_NO_REPOSITORY) => return Error::Unavailable(stderr),
            Some(EXIT_LOCKED) => return Error::Locked(stderr),
            Some(EXIT_WRONG_PASSWORD) => return Error::WrongPassword,
            _ => {}
        }
        if stderr.contains("repository is already locked") {
            return Error::Locked(stderr);
        }
        if stderr.contains("wrong password") {
            return Error::WrongPassword;
        }
        if stderr.contains("Is there a repository at the following location?")
            || is_network_error(&stderr)
        {
            return Error::Unavailable(stderr);
        }
        Error::Process(shell::Error::Failed {
            what,
            status,
            stderr,
        })
    }
}

impl Error {
    /// restic could not tell which snapshot a short id means.
    fn is_ambiguous_id(&self) -> bool {
        self.stderr()
            .is_some_and(|s| s.contains("multiple IDs with prefix"))
    }

    /// The repository holds no snapshot of that id or tag: restic 0.14
    /// says `no matching ID found` or `no snapshot found`; 0.18 also
    /// `failed to find snapshot: failed to load snapshot` for a whole id.
    pub fn is_missing_snapshot(&self) -> bool {
        const MISSING: [&str; 3] = [
            "no matching ID found",
            "no snapshot found",
            "failed to find snapshot",
        ];
        self.stderr()
            .is_some_and(|s| MISSING.iter().any(|words| s.contains(words)))
    }

    /// The snapshot holds no such path.
    fn is_missing_path(&self) -> bool {
        self.stderr()
            .is_some_and(|s| s.contains("not found in snapshot"))
    }

    /// The backend refused to delete a file (an append-only server):
    /// restic 0.14 retries for ~44 s, then fails with a stack trace whose
    /// tail names its `cmd/restic/delete.go`; later versions say `unable to
    /// remove`.
    pub fn is_refused_deletion(&self) -> bool {
        self.stderr()
            .is_some_and(|s| s.contains("unable to remove") || s.contains("cmd/restic/delete.go"))
    }

    fn stderr(&self) -> Option<&str> {
        match self {
            Error::Process(shell::Error::Failed { stderr, .. }) => Some(stderr),
            _ => None,
        }
    }
}

/// restic's stderr tail (lines joined by ` / `) with its JSON messages
/// (`exit_error` of 0.18, `error` of `backup --json`) reduced to their
/// words.
fn plain_stderr(stderr: &str) -> String {
    #[derive(Deserialize)]
    struct Message {
        message: Option<String>,
        error: Option<Inner>,
        item: Option<String>,
    }
    #[derive(Deserialize)]
    struct Inner {
        message: Option<String>,
    }
    let parts: Vec<String> = stderr
        .split(" / ")
        .map(|part| match serde_json::from_str::<Message>(part) {
            Ok(Message {
                message: Some(m), ..
            }) => m,
            Ok(Message {
                error: Some(Inner { message: Some(m) }),
                item,
                ..
            }) => match item {
                Some(item) if !item.is_empty() => format!("{item}: {m}"),
                _ => m,
            },
            _ => part.to_string(),
        })
        .collect();
    parts.join(" / ")
}

/// What to back up.
pub enum Input {
    /// Absolute paths, and options leaving some of what is under them out
    /// (`--exclude` and the like).
    Paths {
        paths: Vec<PathBuf>,
        excludes: Vec<String>,
    },
    /// A producer's stdout: the pipe atom `filename` (its full name),
    /// stored where [`stdin_filename`] says.
    Stdin { filename: String, data: Stdio },
}

/// Where the stream of pipe atom `atom` lives in its snapshot, without the
/// leading `/`: the atom's full name (`users/db`, what existing deployments
/// and `restic dump` by hand expect) when `nested`; else, for restic 0.18.0,
/// which cannot save a `--stdin-filename` holding a `/`, the name with `%`
/// and `/` percent-encoded (`users%2Fdb`). Both backup and dump derive the
/// name here.
pub fn stdin_filename(atom: &str, nested: bool) -> String {
    if nested || !atom.contains('/') {
        atom.to_string()
    } else {
        atom.replace('%', "%25").replace('/', "%2F")
    }
}

/// How restore, dump and verify name a recorded dataset's snapshot: by id,
/// which restic resolves by listing snapshot file names; by the dataset's
/// tag (`latest --tag`, which reads every snapshot) only when the id is
/// missing or a short id restic finds ambiguous.
pub struct SnapshotRef {
    id: String,
    tag: String,
}

impl SnapshotRef {
    /// The snapshot of `dataset`.
    pub fn of(dataset: &Dataset) -> SnapshotRef {
        SnapshotRef {
            id: dataset.snapshot_id.clone(),
            tag: dataset.tag(),
        }
    }

    /// The snapshot of `dataset` by its tag alone: in a copy, where
    /// `restic copy` gave it another id.
    pub fn by_tag(dataset: &Dataset) -> SnapshotRef {
        SnapshotRef {
            id: String::new(),
            tag: dataset.tag(),
        }
    }

    /// restic's arguments naming the snapshot: by id unless `by_tag` or the
    /// recorded id is not one.
    fn args(&self, by_tag: bool) -> Vec<String> {
        if by_tag || !self.has_id() {
            vec!["latest".into(), "--tag".into(), self.tag.clone()]
        } else {
            vec![self.id.clone()]
        }
    }

    fn has_id(&self) -> bool {
        self.id.len() >= 8 && self.id.chars().all(|c| c.is_ascii_hexdigit())
    }
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
    config: Repository,
    /// Whether this process has made sure the repository exists.
    initialized: Mutex<bool>,
    /// The repository's id, once learnt (see [`Repo::id`]).
    id: Mutex<Option<String>>,
}

impl Repo {
    pub fn new(config: Repository) -> Repo {
        Repo {
            config,
            initialized: Mutex::new(false),
            id: Mutex::new(None),
        }
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
    fn reading(&self, from: &Repository, args: &[&str]) -> Command {
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

    /// Copies the snapshots carrying any of `tags` (one dataset's each)
    /// from `from` into this repository, in one restic process; snapshots
    /// copied before are skipped by restic. A tag no snapshot of `from`
    /// carries is no error: [`Repo::snapshots`] tells what arrived.
    pub fn copy_from(
        &self,
        sup: &Supervisor,
        from: &Repository,
        tags: &[String],
    ) -> Result<(), Error> {
        let mut args = vec!["copy".to_string()];
        for tag in tags {
            args.extend(["--tag".into(), tag.clone()]);
        }
        self.run_locking(sup, "restic copy", &args, Some(from))
    }

    /// The version of the configured restic, learnt once per process.
    pub fn version(&self) -> Result<Version, Error> {
        version::detect(&self.config.binary).map_err(Error::Version)
    }

    /// `--retry-lock` with the configured bound where restic has it (0.16
    /// and newer), for a second attempt after a lock was found.
    fn retry_lock(&self) -> Result<Vec<String>, Error> {
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
    /// that repository too (see [`Repo::reading`]).
    fn run_locking(
        &self,
        sup: &Supervisor,
        what: &str,
        args: &[String],
        from: Option<&Repository>,
    ) -> Result<(), Error> {
        self.version()?;
        let run = |extra: &[String]| -> Result<(), Error> {
            let all: Vec<&str> = args.iter().chain(extra).map(String::as_str).collect();
            let mut cmd = match from {
                Some(from) => self.reading(from, &all),
                None => self.command(&all),
            };
            sup.spawn(&mut cmd, what, Stop::Interrupt)?.wait()?;
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

    /// Creates the repository if it does not exist yet. Checked once per
    /// process: a local repository by its config file, at no cost; a remote
    /// one with one `restic cat config`. Fails first if the configured
    /// restic cannot be run or is not supported.
    pub fn ensure_initialized(&self, sup: &Supervisor) -> Result<(), Error> {
        self.initialize(sup, None)
    }

    /// Creates this repository, a copy of `from`, if it does not exist yet,
    /// with `from`'s chunker parameters (`init --copy-chunker-params`), so
    /// that what `restic copy` brings deduplicates as it did in `from`.
    /// Checked as [`Repo::ensure_initialized`] does.
    pub fn ensure_copy_of(&self, sup: &Supervisor, from: &Repository) -> Result<(), Error> {
        self.initialize(sup, Some(from))
    }

    fn initialize(&self, sup: &Supervisor, from: Option<&Repository>) -> Result<(), Error> {
        self.version()?;
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
            let uri = crate::base::uri::mask(&self.config.uri);
            log::info!("initialising restic repository {uri}");
            let mut cmd = match from {
                Some(from) => self.reading(from, &["init", "--copy-chunker-params"]),
                None => self.command(&["init"]),
            };
            let init = sup.spawn(&mut cmd, "restic init", Stop::Interrupt)?;
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
            Input::Paths { paths, excludes } => {
                args.extend(excludes);
                args.push("--".into());
                args.extend(paths.iter().map(|p| p.to_string_lossy().into_owned()));
                Stdio::null()
            }
            Input::Stdin { filename, data } => {
                let nested = self.version()?.can_nest_stdin_filename();
                let filename = stdin_filename(&filename, nested);
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

    /// The repository's id (`restic cat config`), which names it the same
    /// for every host however each spells its location; learnt once per
    /// process.
    pub fn id(&self, sup: &Supervisor) -> Result<String, Error> {
        let mut id = self.id.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(id) = id.as_ref() {
            return Ok(id.clone());
        }
        #[derive(Deserialize)]
        struct Config {
            id: String,
        }
        let config: Config = self.json(sup, &["cat", "config"], "restic cat config")?;
        *id = Some(config.id.clone());
        Ok(config.id)
    }

    /// Removes `snapshots` (each a dataset's tag and the snapshot id restic
    /// reported), in one restic process; data is reclaimed by a later
    /// prune.
    pub fn forget_snapshots(
        &self,
        sup: &Supervisor,
        snapshots: &[(String, String)],
    ) -> Result<(), Error> {
        let mut args = vec!["forget".to_string()];
        if snapshots.iter().all(|(_, id)| is_full_id(id)) {
            // restic 0.15 and newer report full ids: no ambiguity. (0.17
            // and newer refuse the policy below for a group's last snapshot.)
            args.extend(snapshots.iter().map(|(_, id)| id.clone()));
        } else {
            // restic 0.14's short ids may be ambiguous. `forget --tag T`
            // alone removes nothing ("no policy"); a policy that keeps only
            // snapshots with a tag none has removes exactly those tagged T
            // (repeated `--tag`s are alternatives).
            for (tag, _) in snapshots {
                args.extend(["--tag".into(), tag.clone()]);
            }
            args.extend(["--keep-tag".into(), "tabacco:keep-none".into()]);
        }
        self.run_locking(sup, "restic forget", &args, None)
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
        self.version()?;
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
        args.extend(policy.forget_args());
        if dry_run {
            args.push("--dry-run".into());
        }
        let run = |extra: &[String]| -> Result<String, Error> {
            let all: Vec<&str> = args.iter().chain(extra).map(String::as_str).collect();
            let mut cmd = self.command(&all);
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
            Ok(first_line)
        };
        let first_line = match run(&[]) {
            Err(Error::Locked(_)) => {
                self.unlock(sup)?;
                run(&self.retry_lock()?)?
            }
            result => result?,
        };
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
    /// waits for running backups as [`Repo::run_locking`] says.
    pub fn prune(&self, sup: &Supervisor) -> Result<(), Error> {
        self.run_locking(sup, "restic prune", &["prune".into()], None)
    }

    /// `restic check`, reading back `read_data_subset` of the data if given
    /// (e.g. `5%` or `1/10`). Needs an exclusive lock.
    pub fn check(&self, sup: &Supervisor, read_data_subset: Option<&str>) -> Result<(), Error> {
        let mut args = vec!["check".to_string()];
        if let Some(subset) = read_data_subset {
            args.extend(["--read-data-subset".into(), subset.into()]);
        }
        self.run_locking(sup, "restic check", &args, None)
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
            let path = escape_pattern(path);
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
        self.version()?;
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
            match running.wait().map_err(Error::from) {
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
        self.version()?;
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
            running.wait()?;
            Ok(nodes)
        };
        match ls(false) {
            Err(e) if e.is_ambiguous_id() => ls(true),
            result => result,
        }
    }

    /// Every snapshot carrying any of `tags`.
    pub fn snapshots(&self, sup: &Supervisor, tags: &[String]) -> Result<Vec<Snapshot>, Error> {
        let filter: Vec<&str> = tags.iter().flat_map(|t| ["--tag", t.as_str()]).collect();
        self.list_snapshots(sup, &filter)
    }

    /// The ids of every snapshot in the repository.
    pub fn snapshot_ids(&self, sup: &Supervisor) -> Result<HashSet<String>, Error> {
        let all = self.list_snapshots(sup, &[])?;
        Ok(all.into_iter().map(|s| s.id).collect())
    }

    /// `restic snapshots --json` with `filter` options (restic prints
    /// `null` for none).
    fn list_snapshots(&self, sup: &Supervisor, filter: &[&str]) -> Result<Vec<Snapshot>, Error> {
        let mut args = vec!["snapshots", "--json"];
        args.extend(filter);
        let snapshots: Option<Vec<Snapshot>> = self.json(sup, &args, "restic snapshots --json")?;
        Ok(snapshots.unwrap_or_default())
    }

    /// What restic run with `args` prints on stdout, read as JSON; `what`
    /// names the command in errors.
    fn json<T: DeserializeOwned>(
        &self,
        sup: &Supervisor,
        args: &[&str],
        what: &str,
    ) -> Result<T, Error> {
        self.version()?;
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped());
        let mut running = sup.spawn(&mut cmd, what, Stop::Interrupt)?;
        let parsed = running.child().stdout.take().map(parse_json);
        running.wait()?;
        match parsed {
            Some(Ok(value)) => Ok(value),
            Some(Err(e)) => Err(Error::Output(format!("{what}: {e}"))),
            None => Err(Error::Output(format!("{what}: no output"))),
        }
    }
}

/// Reads the JSON a restic command printed. Buffered: unbuffered,
/// serde_json reads a pipe a byte per read(2), 5,000,000 system calls for
/// a list of 10,000 snapshots, a third of a reindex's time.
fn parse_json<T: DeserializeOwned>(out: impl std::io::Read) -> serde_json::Result<T> {
    serde_json::from_reader(BufReader::new(out))
}

/// A snapshot as `restic snapshots --json` lists it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Snapshot {
    /// The full id (every version lists it).
    #[serde(default)]
    pub id: String,
    pub short_id: String,
    /// RFC 3339 with the local offset and nanoseconds.
    pub time: String,
    pub hostname: String,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// A file, directory or other node as `restic ls --json` lists it.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub struct Node {
    /// Absolute, inside the snapshot.
    pub path: String,
    /// `file`, `dir`, `symlink`, ...
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub size: u64,
    /// RFC 3339, local offset.
    #[serde(default)]
    pub mtime: String,
    /// Go's file mode bits.
    #[serde(default)]
    pub mode: u32,
}

/// Whether `id` is a whole snapshot id (64 hex digits), as restic 0.15 and
/// newer report it, rather than 0.14's short one.
fn is_full_id(id: &str) -> bool {
    id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit())
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
                Err(_) => log::debug!("restic: {}", crate::base::uri::mask_text(&line)),
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
    fn snapshots_are_read_in_blocks_not_bytes() {
        /// Counts the reads made of it.
        struct Counted<'a>(&'a [u8], usize);
        impl std::io::Read for Counted<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.1 += 1;
                self.0.read(buf)
            }
        }
        let one = r#"{"id":"ab","short_id":"ab","time":"2026-01-01T00:00:00Z","paths":["/x"],"hostname":"h","tags":["tabacco"]}"#;
        let listed = format!("[{}]", vec![one; 1000].join(","));
        let mut out = Counted(listed.as_bytes(), 0);
        let snapshots = parse_json::<Option<Vec<Snapshot>>>(&mut out)
            .unwrap()
            .unwrap();
        assert_eq!(snapshots.len(), 1000);
        assert!(out.1 < 100, "{} reads of {} bytes", out.1, listed.len());
        assert_eq!(
            parse_json::<Option<Vec<Snapshot>>>(&b"null"[..]).unwrap(),
            None
        );
    }

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
    fn a_deletion_refused_by_an_append_only_server_is_told_apart() {
        let failed = |stderr: &str| {
            Error::from(shell::Error::Failed {
                what: "restic forget".into(),
                status: std::os::unix::process::ExitStatusExt::from_raw(1 << 8),
                stderr: stderr.into(),
            })
        };
        // The stderr tail restic 0.14's `forget` leaves after ~44 s of
        // retrying a DELETE that rclone's --append-only answered 403.
        let tail = "\tgithub.com/restic/restic/cmd/restic/delete.go:47 / golang.org/x/sync/errgroup.(*Group).Go.func1 / \tgolang.org/x/sync/errgroup/errgroup.go:75 / runtime.goexit / \truntime/asm_amd64.s:1594";
        assert!(failed(tail).is_refused_deletion());
        assert!(
            failed("unable to remove <snapshot/4513251bc8> from the repository")
                .is_refused_deletion()
        );
        assert!(!failed("Fatal: unable to open config file").is_refused_deletion());
    }

    #[test]
    fn classifies_by_exit_code_first() {
        let failed = |code: i32, stderr: &str| shell::Error::Failed {
            what: "restic".into(),
            status: std::os::unix::process::ExitStatusExt::from_raw(code << 8),
            stderr: stderr.into(),
        };
        // restic 0.18.0's words for each, captured.
        let json = r#"{"message_type":"exit_error","code":10,"message":"Fatal: repository does not exist: unable to open config file: stat /r/config: no such file or directory"}"#;
        match Error::from(failed(10, json)) {
            Error::Unavailable(msg) => assert_eq!(
                msg,
                "Fatal: repository does not exist: unable to open config file: stat /r/config: no such file or directory"
            ),
            e => panic!("{e:?}"),
        }
        assert!(matches!(
            Error::from(failed(11, "Fatal: unable to create lock in backend")),
            Error::Locked(_)
        ));
        assert!(matches!(
            Error::from(failed(12, "Fatal: wrong password or no key found")),
            Error::WrongPassword
        ));
        // Unknown codes are failures, with JSON reduced to its words.
        let e = Error::from(failed(
            1,
            r#"{"message_type":"exit_error","code":1,"message":"Fatal: unable to save snapshot: open /sql: no such file or directory"}"#,
        ));
        assert_eq!(
            e.to_string(),
            "restic exited with status 1: Fatal: unable to save snapshot: open /sql: no such file or directory"
        );
        let e = Error::from(failed(
            1,
            r#"{"message_type":"error","error":{"message":"open /x: permission denied"},"during":"archival","item":"/x"} / Fatal: failed"#,
        ));
        assert_eq!(
            e.to_string(),
            "restic exited with status 1: /x: open /x: permission denied / Fatal: failed"
        );
        assert!(Error::from(failed(
            2,
            "cannot dump file: path \"/a\" not found in snapshot"
        ))
        .is_missing_path());
        assert!(Error::from(failed(
            1,
            "Fatal: invalid id \"ab\": multiple IDs with prefix \"ab\" found"
        ))
        .is_ambiguous_id());
        // A snapshot the repository lacks, as 0.14 and 0.18 say it (captured).
        for missing in [
            "invalid id \"0123abcd\": no matching ID found for prefix \"0123abcd\"",
            "latest snapshot for criteria not found: no snapshot found Paths:[] Hosts:[]",
            "Fatal: failed to find snapshot: failed to load snapshot c178c346: open /r/snapshots/c178: no such file or directory",
        ] {
            assert!(Error::from(failed(1, missing)).is_missing_snapshot(), "{missing}");
        }
        assert!(!Error::from(failed(1, "Fatal: other")).is_missing_snapshot());
    }

    #[test]
    fn pipe_atoms_are_stored_nested_unless_restic_cannot() {
        assert_eq!(stdin_filename("sql/db1", true), "sql/db1");
        assert_eq!(stdin_filename("sql/db1", false), "sql%2Fdb1");
        assert_eq!(stdin_filename("a%2F/b", false), "a%252F%2Fb");
        assert_eq!(stdin_filename("sql", false), "sql");
        let dataset = |snapshot_id: &str| {
            let mut d = Dataset::new("d1".into(), "s".into(), Vec::new());
            d.snapshot_id = snapshot_id.into();
            SnapshotRef::of(&d)
        };
        assert_eq!(dataset("bcd489eb").args(false), ["bcd489eb"]);
        assert_eq!(
            dataset("bcd489eb").args(true),
            ["latest", "--tag", "tabacco:dataset=d1"]
        );
        assert_eq!(
            dataset("").args(false),
            ["latest", "--tag", "tabacco:dataset=d1"]
        );
        assert!(is_full_id(&"a".repeat(64)) && !is_full_id("bcd489eb"));
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
