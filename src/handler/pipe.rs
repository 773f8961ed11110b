//! The builtin `pipe` handler: each atom is the output of `backup_command`,
//! streamed into restic, and is restored by streaming it back into
//! `restore_command`.

use crate::config::raw::Params;
use crate::count::count;
use crate::handler::{check_template, Context, Input, Plan, Restore};
use crate::model::Atom;
use crate::restic::SnapshotRef;
use crate::shell::pipe::Link;
use crate::shell::Stop;
use crate::source::{AtomSpec, Source};
use crate::{hook, shell};
use std::process::Stdio;

#[derive(Clone, Debug)]
pub struct Pipe {
    pub backup_command: String,
    pub restore_command: Option<String>,
}

impl Pipe {
    pub fn new(params: Params) -> Result<Pipe, String> {
        if !crate::handler::exclude::Excludes::new(&params)?.is_empty() {
            return Err("the pipe handler takes no exclude options (a stream has no files)".into());
        }
        let backup_command = params
            .backup_command
            .ok_or("the pipe handler needs params.backup_command")?;
        check_template(&backup_command).map_err(|e| format!("backup_command: {e}"))?;
        if let Some(restore) = &params.restore_command {
            check_template(restore).map_err(|e| format!("restore_command: {e}"))?;
        }
        if params.path.is_some() {
            return Err("the pipe handler takes no params.path".into());
        }
        Ok(Pipe {
            backup_command,
            restore_command: params.restore_command,
        })
    }

    pub fn plan(&self, source: &Source, atom: &AtomSpec, ctx: &Context) -> Result<Plan, String> {
        let full_name = source.atom_full_name(&atom.name);
        let atoms = [Atom {
            name: full_name.clone(),
            path: None,
        }];
        let configured = Atom {
            name: full_name.clone(),
            path: atom.path.clone(),
        };
        source
            .handler
            .in_scope(&source.name, ctx, &atoms, None, |scope| {
                let vars = hook::variables(scope, &configured);
                Ok(Plan {
                    name: scope.dataset.to_string(),
                    atoms: atoms.to_vec(),
                    input: Input::Command {
                        command: shell::substitute(&self.backup_command, &vars)?,
                        env: hook::environment(scope, Some(&configured)),
                        filename: full_name,
                    },
                })
            })
    }

    pub fn describe(&self) -> String {
        format!("pipe: {}", self.backup_command)
    }

    /// See [`crate::handler::Handler::restore_command`].
    pub fn restore_command(&self, scope: &hook::Scope, atom: &Atom) -> Result<String, String> {
        let command = self
            .restore_command
            .as_deref()
            .ok_or_else(|| format!("source {} has no restore_command", scope.source))?;
        shell::substitute(command, &hook::variables(scope, atom))
    }

    /// Streams each atom from `restic dump` into `restore_command`.
    pub fn restore(&self, restore: &Restore) -> Result<(), String> {
        for atom in &restore.dataset.atoms {
            let command = self.restore_command(restore.scope, atom)?;
            stream_back(restore, atom, &command)?;
        }
        Ok(())
    }
}

/// Streams pipe atom `atom` from `restic dump` straight into `command`.
fn stream_back(restore: &Restore, atom: &Atom, command: &str) -> Result<(), String> {
    let sup = restore.sup;
    let dump = restore
        .repo
        .dump(sup, &SnapshotRef::of(restore.dataset), &atom.name)
        .map_err(|e| e.to_string())?;
    // Counted on the way, so that a short stream is caught.
    let ended = dump
        .pipe_into(Link::Counted, |data| {
            let mut consumer = {
                let mut cmd = shell::sh(command);
                cmd.stdin(data)
                    .stdout(Stdio::piped())
                    .envs(hook::environment(restore.scope, Some(atom)));
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
        .map_err(|e| e.to_string())?;
    match (ended.producer, ended.consumer) {
        (Ok(_), Ok(_)) => {}
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => return Err(format!("atom {}: {e}", atom.name)),
        // Either may have ended the other: say both, the consumer first
        // (a failed consumer gets restic dump killed).
        (Err(dump), Err(consumer)) => {
            return Err(format!("atom {}: {consumer}; {dump}", atom.name))
        }
    }
    let copied = match ended.bytes {
        Some(Ok(bytes)) => bytes,
        Some(Err(e)) => {
            return Err(format!(
                "atom {}: restore_command stopped reading: {e}",
                atom.name
            ))
        }
        None => return Err(format!("atom {}: the stream was lost", atom.name)),
    };
    // A pipe dataset holds one atom, and restic refuses an empty stream:
    // its total_bytes is the stream's size, and 0 means unknown (reindex).
    let recorded = restore.dataset.total_bytes;
    if restore.dataset.atoms.len() == 1 && recorded > 0 && copied != recorded as u64 {
        return Err(format!(
            "atom {}: restic dump streamed {} of the {} recorded",
            atom.name,
            count(copied, "byte"),
            count(recorded, "byte")
        ));
    }
    Ok(())
}
