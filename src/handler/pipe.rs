//! The builtin `pipe` handler: each atom is the output of `backup_command`,
//! streamed into restic, and is restored by streaming it back into
//! `restore_command`, the live service (both through
//! [`crate::process::shell::pipe`]), or into a new file; the verify drill
//! may feed it to `proof_command` to prove that it loads. The shipped
//! database handlers are pipe handlers whose commands
//! [`crate::handler::database`] writes.

use crate::base::place::{self, Place, Staging};
use crate::handler::database::{self, Selection, Server};
use crate::handler::hook;
use crate::handler::{
    check_template, Error, Input, Params, PlannedDataset, Restoring, Saving, Stream, Unrestored,
    Unsaved,
};
use crate::process::shell;
use crate::process::shell::pipe::Link;
use crate::process::shell::Stop;
use crate::report::failure::{Failure, Kind};
use crate::restic;
use crate::wire::model::Atom;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;

#[derive(Clone, Debug)]
pub struct Pipe {
    pub backup_command: String,
    pub restore_command: Option<String>,
    pub proof_command: Option<String>,
    /// A shipped database handler's: which, and how its atoms are found.
    pub shipped: Option<Shipped>,
}

/// What a shipped database handler adds to a pipe handler.
#[derive(Clone, Debug)]
pub struct Shipped {
    pub server: Server,
    /// Lists the server's databases: the atoms of a source that lists none.
    pub atoms_command: Option<String>,
    /// Which of the atoms an `atoms_command` prints are backed up.
    pub selection: Selection,
}

/// The substitutions each command of a pipe handler may use besides an
/// atom's and its dataset's.
const RESTORE_VARIABLES: &[&str] = &["restore.name"];
const PROOF_VARIABLES: &[&str] = &["proof.name", "proof.dir"];

impl Pipe {
    pub fn new(params: Params) -> Result<Pipe, Error> {
        database::refuse_params(&params, "pipe")?;
        Pipe::checked(params, None)
    }

    /// Shipped handler `server`, its commands written from `params` unless
    /// they name their own.
    pub fn shipped(server: Server, params: Params) -> Result<Pipe, Error> {
        let commands = database::commands(server, &params)?;
        let selection = Selection::new(server, &params)?;
        let params = Params {
            backup_command: params.backup_command.clone().or(Some(commands.backup)),
            restore_command: params.restore_command.clone().or(Some(commands.restore)),
            proof_command: params.proof_command.clone().or(Some(commands.proof)),
            exclude: None,
            ..Params::default()
        };
        let shipped = Shipped {
            server,
            atoms_command: commands.atoms,
            selection,
        };
        Pipe::checked(params, Some(shipped))
    }

    fn checked(params: Params, shipped: Option<Shipped>) -> Result<Pipe, Error> {
        let invalid = |message: &str| Error::Invalid(message.to_string());
        if !crate::handler::exclude::Excludes::new(&params)?.is_empty() {
            return Err(invalid(
                "the pipe handler takes no exclude options (a stream has no files)",
            ));
        }
        let backup_command = params
            .backup_command
            .ok_or_else(|| invalid("the pipe handler needs params.backup_command"))?;
        check_template("backup_command", &backup_command, &[])?;
        if let Some(restore) = &params.restore_command {
            check_template("restore_command", restore, RESTORE_VARIABLES)?;
        }
        if let Some(proof) = &params.proof_command {
            check_template("proof_command", proof, PROOF_VARIABLES)?;
        }
        if params.path.is_some() {
            return Err(invalid("the pipe handler takes no params.path"));
        }
        Ok(Pipe {
            backup_command,
            restore_command: params.restore_command,
            proof_command: params.proof_command,
            shipped,
        })
    }

    /// The dataset of the one atom of `scope`, as `configured` (with its
    /// configured path, which is not recorded).
    pub fn plan(&self, scope: &hook::Scope, configured: &Atom) -> Result<PlannedDataset, Error> {
        let vars = hook::variables(scope, configured);
        let script = shell::substitute(&self.backup_command, &vars)?;
        let mut env = hook::environment(scope, Some(configured));
        env.extend(script.env);
        Ok(PlannedDataset {
            name: scope.dataset.clone(),
            atoms: scope.atoms.to_vec(),
            input: Input::Command {
                command: script.text,
                env,
                filename: configured.name.clone(),
            },
        })
    }

    pub fn describe(&self) -> String {
        match &self.shipped {
            Some(shipped) => shipped.server.name().to_string(),
            None => format!("pipe: {}", self.backup_command),
        }
    }

    /// What `check` shows of the commands besides [`Pipe::describe`]: a
    /// shipped handler's all, a proof.
    pub fn commands(&self) -> Vec<(&'static str, &str)> {
        let mut commands = Vec::new();
        if let Some(shipped) = &self.shipped {
            commands.push(("backup", self.backup_command.as_str()));
            if let Some(restore) = &self.restore_command {
                commands.push(("restore", restore.as_str()));
            }
            if let Some(atoms) = &shipped.atoms_command {
                commands.push(("atoms", atoms.as_str()));
            }
        }
        if let Some(proof) = &self.proof_command {
            commands.push(("proof", proof.as_str()));
        }
        commands
    }

    /// Whether the atoms of `spec` can be backed up: a `sqlite` atom is a
    /// database file, its path.
    pub fn check_atoms(&self, spec: &crate::handler::atom::DatasetSpec) -> Result<(), Error> {
        let sqlite = self
            .shipped
            .as_ref()
            .is_some_and(|s| s.server == Server::Sqlite);
        if !sqlite {
            return Ok(());
        }
        if spec.atoms.is_empty() {
            return Err(Error::Invalid(
                "a sqlite source lists its atoms, each with the database file as its path".into(),
            ));
        }
        for atom in &spec.atoms {
            match atom.path.as_deref() {
                Some(path) if path.starts_with('/') => {}
                _ => {
                    return Err(Error::Invalid(format!(
                        "atom {:?}: a sqlite atom needs the database file as its absolute path",
                        atom.name
                    )))
                }
            }
        }
        Ok(())
    }

    /// See [`crate::handler::Handler::restore_command`].
    pub fn restore_command(
        &self,
        scope: &hook::Scope,
        atom: &Atom,
    ) -> Result<shell::Script, Error> {
        let command = self
            .restore_command
            .as_deref()
            .ok_or_else(|| Error::NoRestoreCommand {
                name: scope.source.to_string(),
                pipe: true,
            })?;
        if scope.restore_as.is_some() && !command.contains("${restore.name}") {
            return Err(Error::Invalid(format!(
                "source {}'s restore_command does not use ${{restore.name}}: it cannot restore under another name",
                scope.source
            )));
        }
        Ok(shell::substitute(command, &hook::variables(scope, atom))?)
    }

    /// `proof_command` for `atom`, with the scratch database `name` and
    /// directory `dir`; none if this handler has no proof.
    pub fn proof_command(
        &self,
        scope: &hook::Scope,
        atom: &Atom,
        name: &str,
        dir: &str,
    ) -> Option<Result<shell::Script, Error>> {
        let command = self.proof_command.as_deref()?;
        let mut vars = hook::variables(scope, atom);
        vars.extend([("proof.name", name), ("proof.dir", dir)]);
        Some(shell::substitute(command, &vars).map_err(Error::from))
    }
}

/// Pipes `command`'s stdout straight into restic's stdin. tabacco holds a
/// writing end of that pipe itself until the producer has exited, so
/// restic cannot see the stream end before then: a producer that exits 0
/// lets it go (restic sees the end and saves), one that fails has restic
/// interrupted first (restic then saves nothing), so a failed dump never
/// leaves a snapshot. The data flows from the producer to restic through
/// the pipe alone. A snapshot restic made all the same, of a stream it
/// could not read or one smaller than `min_bytes`, is handed back to be
/// forgotten.
pub fn save(
    command: &str,
    env: hook::Environment,
    filename: String,
    saving: Saving,
) -> Result<restic::Summary, Unsaved> {
    let Saving {
        repo,
        sup,
        request,
        on_status,
        min_bytes,
    } = saving;
    let stream = |e: io::Error| {
        let e = format!("cannot make a pipe for backup_command: {e}");
        Unsaved::from(Failure::new(Kind::Other, e))
    };
    let (read, held) = shell::pipe::new().map_err(stream)?;
    let producer = {
        let mut cmd = shell::sh(command);
        let write = held.try_clone().map_err(stream)?;
        cmd.envs(env).stdin(Stdio::null()).stdout(write);
        sup.spawn(&mut cmd, "backup_command", Stop::Terminate)?
    };
    let producer_pid = producer.id();
    let (started, restic_pid) = mpsc::channel();
    let restic_ended = AtomicBool::new(false);
    let (produced, stored, interrupted) = thread::scope(|scope| {
        let restic_ended = &restic_ended;
        let watcher = scope.spawn(move || {
            let produced = producer.wait();
            if produced.is_ok() || restic_ended.load(Ordering::SeqCst) {
                drop(held);
                return (produced, false);
            }
            // The end of the stream stays held until restic has gone.
            let interrupted = restic_pid.recv().is_ok_and(|pid| {
                sup.signal(pid, libc::SIGINT);
                !restic_ended.load(Ordering::SeqCst)
            });
            drop(held);
            (produced, interrupted)
        });
        let request = request(restic::BackupInput::Stdin {
            filename,
            data: read.into(),
            started: Some(started),
        });
        let backed_up = repo.backup(sup, request, on_status);
        restic_ended.store(true, Ordering::SeqCst);
        let stored = match backed_up {
            Ok(summary) if summary.incomplete => Err(Stored::Incomplete(summary)),
            Ok(summary) => Ok(summary),
            Err(e) => {
                // A producer that writes nothing would not notice.
                sup.signal(producer_pid, libc::SIGKILL);
                Err(Stored::Failed(e))
            }
        };
        let (produced, interrupted) = watcher.join().unwrap_or_else(|_| {
            let e = shell::Error::Output {
                what: "backup_command".into(),
                reason: "its watcher was lost".into(),
            };
            (Err(e), false)
        });
        (produced, stored, interrupted)
    });
    let partial = |failure, summary: restic::Summary| Unsaved {
        failure,
        partial: Some(summary.snapshot_id),
    };
    let summary = match (produced, stored) {
        (Ok(_), Ok(summary)) => summary,
        (Ok(_), Err(Stored::Incomplete(summary))) => {
            // restic 0.18 saves an empty stream this way ("no data read").
            let e = "restic could not read backup_command's output (see the log)";
            return Err(partial(Failure::new(Kind::Command, e), summary));
        }
        (Err(e), Ok(summary) | Err(Stored::Incomplete(summary))) => {
            return Err(partial(Failure::from(e), summary));
        }
        (Ok(_), Err(Stored::Failed(e))) => return Err(e.into()),
        (Err(producer), Err(Stored::Failed(_))) if interrupted => {
            let e = Failure::from(producer);
            let why =
                format!("{e}; restic was stopped before the stream ended, so nothing was saved");
            return Err(Failure::new(e.kind, why).into());
        }
        (Err(producer), Err(Stored::Failed(restic))) => return Err(both_failed(producer, restic)),
    };
    if let Some(min) = min_bytes.filter(|&min| summary.total_bytes_processed < min as i64) {
        let e = format!(
            "backup_command produced {} bytes, less than min_bytes {min}",
            summary.total_bytes_processed
        );
        return Err(partial(Failure::new(Kind::Command, e), summary));
    }
    Ok(summary)
}

/// Both ends of a backup's stream failed: the cause first. A producer that
/// exited non-zero of itself (not killed, not by a signal) left restic an
/// empty or cut stream, so restic's failure is its consequence ("snapshot
/// is empty") and the job's kind is the producer's; unless restic could
/// not use the repository at all, which it says whatever the stream. A
/// producer killed, or ended by a broken pipe, is restic's consequence.
fn both_failed(producer: shell::Error, restic: restic::Error) -> Unsaved {
    let repository = matches!(
        restic,
        restic::Error::Locked(_)
            | restic::Error::Unavailable(_)
            | restic::Error::Missing(_)
            | restic::Error::WrongPassword(_)
            | restic::Error::Damaged(_)
            | restic::Error::Foreign(_)
            | restic::Error::Version(_)
    );
    let of_itself = matches!(
        &producer,
        shell::Error::Failed { status, .. } if status.code().is_some_and(|c| (1..128).contains(&c))
    );
    let restic = Failure::from(restic);
    if of_itself && !repository {
        let producer = Failure::from(producer);
        Failure::new(producer.kind, format!("{producer}; then {restic}")).into()
    } else {
        Failure::new(restic.kind, format!("{restic} ({producer})")).into()
    }
}

/// How restic ended when it did not save a whole stream.
enum Stored {
    Failed(restic::Error),
    /// A snapshot, but restic said some of the stream was unreadable.
    Incomplete(restic::Summary),
}

/// Streams pipe atom `atom` from `restic dump` straight into `command`
/// (the live service), run with `env`.
pub fn feed(
    restoring: &Restoring,
    atom: &Atom,
    command: &str,
    env: &hook::Environment,
) -> Result<(), Unrestored> {
    let sup = restoring.sup;
    let dump = restoring.repo.dump(sup, restoring.snapshot, &atom.name)?;
    // Counted on the way, so that a short stream is caught.
    let ended = dump
        .pipe_into(Link::Counted, |data| {
            let mut consumer = {
                let mut cmd = shell::sh(command);
                cmd.stdin(data).stdout(Stdio::piped()).envs(env.clone());
                sup.spawn(&mut cmd, "restore_command", Stop::Terminate)?
            };
            let stdout = consumer
                .child()
                .stdout
                .take()
                .map(|pipe| sup.log_lines(pipe, "restore_command"));
            let consumed = consumer.wait();
            if let Some(handle) = stdout {
                let _ = handle.join();
            }
            consumed
        })
        .map_err(Unrestored::Process)?;
    let failed = |why| Unrestored::Stream {
        atom: atom.name.clone(),
        why: Box::new(why),
    };
    match (ended.producer, ended.consumer) {
        (Ok(_), Ok(_)) => {}
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => return Err(failed(Stream::Failed(e))),
        // Either may have ended the other: say both, the consumer first
        // (a failed consumer gets restic dump killed).
        (Err(dump), Err(consumer)) => return Err(failed(Stream::Both { consumer, dump })),
    }
    let copied = match ended.bytes {
        Some(Ok(bytes)) => bytes,
        Some(Err(e)) => return Err(failed(Stream::StoppedReading(e))),
        None => return Err(failed(Stream::Lost)),
    };
    check_size(restoring, atom, copied)
}

/// Streams pipe atom `atom` from `restic dump` into a new file at `place`:
/// written whole in a staging directory, then put into place.
pub fn restore_to_file(
    restoring: &Restoring,
    atom: &Atom,
    place: &Place,
) -> Result<(), Unrestored> {
    let staging = Staging::new(place.dir())?;
    let staged = PathBuf::from("stream");
    let mut file = staging.create(&staged)?;
    let dump = restoring
        .repo
        .dump(restoring.sup, restoring.snapshot, &atom.name)?;
    let ended = dump
        .pipe_into(Link::Direct, |data| -> io::Result<u64> {
            let copied = io::copy(&mut File::from(data), &mut file)?;
            file.sync_all()?;
            Ok(copied)
        })
        .map_err(Unrestored::Process)?;
    let copied = match (ended.producer, ended.consumer) {
        (_, Err(source)) => {
            let path = place.path();
            return Err(Unrestored::Place(place::Error::Io { path, source }));
        }
        (Err(e), Ok(_)) => {
            let why = Box::new(Stream::Failed(e));
            let atom = atom.name.clone();
            return Err(Unrestored::Stream { atom, why });
        }
        (Ok(_), Ok(copied)) => copied,
    };
    check_size(restoring, atom, copied)?;
    staging.put(&[(staged, place.clone())], restoring.overwrite)?;
    Ok(())
}

/// Whether `copied`, the bytes of pipe atom `atom` restored, is the size
/// recorded. A pipe dataset holds one atom, and restic refuses an empty
/// stream: its total_bytes is the stream's size, and 0 means unknown
/// (reindex).
fn check_size(restoring: &Restoring, atom: &Atom, copied: u64) -> Result<(), Unrestored> {
    let dataset = &restoring.checked.item().dataset;
    let recorded = dataset.total_bytes;
    if dataset.atoms.len() == 1 && recorded > 0 && copied != recorded as u64 {
        let why = Box::new(Stream::Size { copied, recorded });
        let atom = atom.name.clone();
        return Err(Unrestored::Stream { atom, why });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn failed(what: &str, raw_status: i32, stderr: &str) -> shell::Error {
        shell::Error::Failed {
            what: what.into(),
            status: std::process::ExitStatus::from_raw(raw_status),
            stderr: stderr.into(),
        }
    }

    /// Issue 28, item 5: a dump that failed was reported after restic's
    /// consequence ("snapshot is empty"), and counted as a repository
    /// failure.
    #[test]
    fn the_cause_of_a_failed_stream_comes_first() {
        let producer = failed("backup_command", 2 << 8, "mysqldump: Access denied");
        let restic = restic::Error::from(failed(
            "restic backup",
            1 << 8,
            "Fatal: unable to save snapshot: snapshot is empty",
        ));
        let e = both_failed(producer, restic).failure;
        assert_eq!(e.kind, Kind::Command);
        assert_eq!(
            e.message,
            "backup_command exited with status 2: mysqldump: Access denied; then restic backup exited with status 1: Fatal: unable to save snapshot: snapshot is empty"
        );
        // A producer killed because restic failed is restic's consequence.
        let killed = failed("backup_command", 9, "");
        let locked = restic::Error::Locked("by PID 7".into());
        let e = both_failed(killed, locked).failure;
        assert_eq!(e.kind, Kind::RepositoryLocked);
        assert!(
            e.message.starts_with("repository is locked"),
            "{}",
            e.message
        );
        // So is one that exited non-zero when restic could not open the
        // repository.
        let broken_pipe = failed("backup_command", 2 << 8, "write error: Broken pipe");
        let e = both_failed(broken_pipe, restic::Error::WrongPassword(String::new())).failure;
        assert_eq!(e.kind, Kind::RepositoryPassword);
    }
}
