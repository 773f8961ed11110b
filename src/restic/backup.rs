//! `restic backup`: what one backup invocation takes ([`BackupRequest`],
//! [`BackupInput`]), how it is run (paths, or a producer's stream on
//! stdin), and how its `--json` stream is read into progress and a
//! [`Summary`]. What the lines mean is [`output`](super::output)'s; what
//! is backed up, and why, is `handler`'s and `backup`'s.

use super::output::{BackupProgress, Message, Summary};
use super::{stdin_filename, Error, Repo};
use crate::process::shell::{Running, Stop, Supervisor};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;

/// restic's exit code for "snapshot saved, but some files were unreadable".
const EXIT_INCOMPLETE: i32 = 3;

/// What to back up.
pub enum BackupInput {
    /// Absolute paths, and options leaving some of what is under them out
    /// (`--exclude` and the like).
    Paths {
        paths: Vec<PathBuf>,
        excludes: Vec<String>,
    },
    /// A producer's stdout: the pipe atom `filename` (its full name),
    /// stored where [`stdin_filename`] says.
    Stdin { filename: String, data: Stdio },
    /// What directory `dir` holds, stored at the snapshot's root (restic
    /// runs in `dir` and backs up `.`): a pipe batch's staging area, whose
    /// `sql/db1` is `/sql/db1` in the snapshot as a single stream's would
    /// be. Every file is read again (`--force`): a staged file is new each
    /// time, whatever its size and time say.
    Directory { dir: PathBuf },
}

/// One `restic backup` call.
pub struct BackupRequest<'a> {
    pub host: &'a str,
    pub tags: Vec<String>,
    /// Snapshot time, as restic's `--time` wants it (local time).
    pub time: String,
    pub input: BackupInput,
}

impl Repo {
    /// Runs `restic backup --json`, reporting progress to `on_status`.
    pub fn backup(
        &self,
        sup: &Supervisor,
        backup: BackupRequest,
        on_status: &mut dyn FnMut(BackupProgress),
    ) -> Result<Summary, Error> {
        self.open(sup)?;
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
        let mut cwd = None;
        let stdin = match backup.input {
            BackupInput::Paths { paths, excludes } => {
                args.extend(excludes);
                args.push("--".into());
                args.extend(paths.iter().map(|p| p.to_string_lossy().into_owned()));
                Stdio::null()
            }
            BackupInput::Stdin { filename, data } => {
                let nested = self.version()?.can_nest_stdin_filename();
                let filename = stdin_filename(&filename, nested);
                args.extend(["--stdin".into(), "--stdin-filename".into(), filename]);
                data
            }
            BackupInput::Directory { dir } => {
                args.extend(["--force".into(), "--".into(), ".".into()]);
                cwd = Some(dir);
                Stdio::null()
            }
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // The command (holding our copy of the producer's pipe) is dropped
        // right after the spawn, so that restic's death reaches the producer.
        let running = {
            let mut cmd = self.command(&args);
            cmd.stdin(stdin).stdout(Stdio::piped());
            if let Some(dir) = cwd {
                cmd.current_dir(dir);
            }
            sup.spawn(&mut cmd, "restic backup", Stop::Interrupt)?
        };
        let result = read_backup_output(running, on_status).map_err(|e| self.failed(e));
        self.unlock_if_stopped(sup, result)
    }
}

/// Reads `restic backup --json` to its end, handing each progress line to
/// `on_status`: its summary, marked incomplete if restic exited 3.
fn read_backup_output(
    mut running: Running,
    on_status: &mut dyn FnMut(BackupProgress),
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
