//! What a source's handler makes of its atoms, in both directions: the
//! builtin `file` handler backs up paths and restores them with `restic
//! restore`, the `pipe` handler streams a command's output into restic and
//! streams it back from `restic dump` into another command. Handler
//! templates from `handlers/*.yml` are resolved into one of these by
//! `config`, which merges a template's [`Params`] with a source's and hands
//! them to [`Handler::new`]; this module turns a source's atoms into the
//! datasets a backup job hands to restic, and restores a recorded dataset's
//! atoms each to the [`Destination`] it is given. Hooks, records, the
//! choice of what to restore and where it goes are the callers' (`job`,
//! `restore`).
//!
//! A source holds its handler, so the handler is told the source's name.

pub mod atom;
pub mod database;
mod error;
mod exclude;
mod file;
pub mod hook;
mod pipe;

use crate::base::place::Place;
use crate::handler::atom::{AtomSpec, DatasetSpec};
use crate::process::shell;
use crate::process::shell::Supervisor;
use crate::report::failure::Failure;
use crate::restic::{self, Repo, SnapshotRef};
use crate::wire::checked::Checked;
use crate::wire::model::Atom;
use crate::wire::target::Target;
use std::path::PathBuf;

pub use error::{Error, Stream, Unrestored};

/// Handler names that need no template.
pub const BUILTIN: [&str; 2] = ["file", "pipe"];

/// A handler's params as written in a template or a source (the shape of
/// `params:`), and as merged by [`Params::over`]. Checked by
/// [`Handler::new`].
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub path: Option<String>,
    pub backup_command: Option<String>,
    pub restore_command: Option<String>,
    pub exclude: Option<Vec<String>>,
    pub exclude_file: Option<Vec<String>>,
    pub exclude_caches: Option<bool>,
    pub exclude_if_present: Option<Vec<String>>,
    pub one_file_system: Option<bool>,
    pub exclude_larger_than: Option<String>,
    /// Pipe handlers: the command the verify drill feeds an atom to, to
    /// prove that it loads.
    pub proof_command: Option<String>,
    /// The shipped database handlers (see [`database`]): where the server
    /// is, as whom, and which of its databases are backed up.
    pub host: Option<String>,
    pub port: Option<u16>,
    pub socket: Option<String>,
    pub user: Option<String>,
    pub credentials_file: Option<String>,
    pub run_as: Option<String>,
    pub include: Option<Vec<String>>,
    /// LDAP: the schema files a proof's scratch server loads.
    pub schema: Option<Vec<String>>,
}

impl Params {
    /// These params (a source's) over `template`'s, key by key.
    pub fn over(&self, template: &Params) -> Params {
        fn or<T: Clone>(mine: &Option<T>, template: &Option<T>) -> Option<T> {
            mine.clone().or_else(|| template.clone())
        }
        Params {
            path: or(&self.path, &template.path),
            backup_command: or(&self.backup_command, &template.backup_command),
            restore_command: or(&self.restore_command, &template.restore_command),
            exclude: or(&self.exclude, &template.exclude),
            exclude_file: or(&self.exclude_file, &template.exclude_file),
            exclude_caches: or(&self.exclude_caches, &template.exclude_caches),
            exclude_if_present: or(&self.exclude_if_present, &template.exclude_if_present),
            one_file_system: or(&self.one_file_system, &template.one_file_system),
            exclude_larger_than: or(&self.exclude_larger_than, &template.exclude_larger_than),
            proof_command: or(&self.proof_command, &template.proof_command),
            host: or(&self.host, &template.host),
            port: or(&self.port, &template.port),
            socket: or(&self.socket, &template.socket),
            user: or(&self.user, &template.user),
            credentials_file: or(&self.credentials_file, &template.credentials_file),
            run_as: or(&self.run_as, &template.run_as),
            include: or(&self.include, &template.include),
            schema: or(&self.schema, &template.schema),
        }
    }
}

/// A resolved handler with its merged params.
#[derive(Clone, Debug)]
pub enum Handler {
    File(file::File),
    Pipe(pipe::Pipe),
}

/// One dataset planned for backup: what will be a single restic snapshot.
#[derive(Debug)]
pub struct PlannedDataset {
    /// See [`Handler::dataset_name`].
    pub name: String,
    pub atoms: Vec<Atom>,
    pub input: Input,
}

/// Where a planned dataset's data comes from.
#[derive(Debug)]
pub enum Input {
    /// Paths, and restic's exclusion options for them.
    Paths {
        paths: Vec<PathBuf>,
        excludes: Vec<String>,
    },
    /// A `/bin/sh -c` command (its substitutions references to variables
    /// of `env`: see [`shell::template`]) whose stdout is the data, stored
    /// in the snapshot as `/<filename>`.
    Command {
        command: String,
        env: hook::Environment,
        filename: String,
    },
}

/// The backup a command works on, at backup or at restore.
pub struct Context<'a> {
    pub backup_id: &'a str,
    /// The host that made the backup.
    pub host: &'a str,
}

impl Input {
    /// What backing this input up does, for a dry run: "back up PATHS
    /// into restic" or "stream `COMMAND` into restic as /NAME".
    pub fn describe(&self) -> String {
        match self {
            Input::Paths { paths, excludes } => {
                let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                format!(
                    "back up {} into restic{}{}",
                    paths.join(" "),
                    if excludes.is_empty() { "" } else { " with " },
                    excludes.join(" ")
                )
            }
            Input::Command {
                command, filename, ..
            } => format!("stream `{command}` into restic as /{filename}"),
        }
    }

    /// Saves this input of a dataset of `atoms` as one restic snapshot:
    /// paths with `restic backup`, a command's output streamed into
    /// `restic backup --stdin`.
    pub fn save(self, atoms: &[Atom], saving: Saving) -> Result<restic::Summary, Unsaved> {
        match self {
            Input::Paths { paths, excludes } => file::save(paths, excludes, atoms, saving),
            Input::Command {
                command,
                env,
                filename,
            } => pipe::save(&command, env, filename, saving),
        }
    }
}

/// What saving a planned dataset needs besides its plan.
pub struct Saving<'a, 'r> {
    pub repo: &'a Repo,
    pub sup: &'a Supervisor,
    /// restic's request for the snapshot, given its input.
    pub request: &'a dyn Fn(restic::BackupInput) -> restic::BackupRequest<'r>,
    /// Told of restic's progress.
    pub on_status: &'a mut dyn FnMut(restic::BackupProgress),
    /// The least a pipe dataset's stream must hold.
    pub min_bytes: Option<u64>,
}

/// A dataset that was not saved whole.
#[derive(Debug)]
pub struct Unsaved {
    pub failure: Failure,
    /// The snapshot restic made of it anyway (of a truncated stream), for
    /// the caller to forget once the repository is free.
    pub partial: Option<String>,
}

impl<E: Into<Failure>> From<E> for Unsaved {
    fn from(e: E) -> Unsaved {
        Unsaved {
            failure: e.into(),
            partial: None,
        }
    }
}

/// What restoring one recorded dataset needs.
pub struct Restoring<'a> {
    /// The repository to read from and the dataset's snapshot there, as
    /// the caller picked them.
    pub repo: &'a Repo,
    pub snapshot: &'a SnapshotRef,
    pub sup: &'a Supervisor,
    /// The dataset as recorded, with the atoms to restore, checked.
    pub checked: &'a Checked,
    /// Where each of those atoms goes, in their order.
    pub destinations: &'a [Destination],
    /// Only these parts of file atoms (`restore --path`), when any.
    pub parts: &'a [String],
    /// Whether files and links in the way are replaced.
    pub overwrite: bool,
}

/// Where one recorded atom goes, as `restore` decided it before anything
/// ran (its plan says it in words).
#[derive(Clone, Debug, PartialEq)]
pub enum Destination {
    /// A file atom: what its snapshot holds at `recorded` is put at
    /// `place`.
    Files { recorded: String, place: Place },
    /// A pipe atom's stream, as a file at this place.
    File(Place),
    /// A pipe atom's stream, fed to the source's `restore_command` (values
    /// substituted: `env` carries them) with its environment: the live
    /// service. `shown` is the command as people read it.
    Service {
        command: String,
        env: hook::Environment,
        shown: String,
    },
}

/// Restores the atoms of `restoring.checked`, each to its destination: the
/// file atoms with `restic restore` (see [`file::restore`]), then each pipe
/// atom streamed from `restic dump` into a file or the live service.
pub fn restore(restoring: &Restoring) -> Result<(), Unrestored> {
    let atoms = &restoring.checked.item().dataset.atoms;
    let paired = || atoms.iter().zip(restoring.destinations);
    let files: Vec<(&str, &Place)> = paired()
        .filter_map(|(_, destination)| match destination {
            Destination::Files { recorded, place } => Some((recorded.as_str(), place)),
            _ => None,
        })
        .collect();
    if !files.is_empty() {
        file::restore(restoring, &files)?;
    }
    for (atom, destination) in paired() {
        match destination {
            Destination::Files { .. } => {}
            Destination::File(place) => pipe::restore_to_file(restoring, atom, place)?,
            Destination::Service { command, env, .. } => {
                pipe::feed(restoring, atom, command, env)?;
            }
        }
    }
    Ok(())
}

impl Handler {
    /// Builds a handler of `kind` (`file`, `pipe`, or a shipped database
    /// handler: see [`database::SHIPPED`]) from merged params.
    pub fn new(kind: &str, params: Params) -> Result<Handler, Error> {
        match kind {
            "file" => file::File::new(params).map(Handler::File),
            "pipe" => pipe::Pipe::new(params).map(Handler::Pipe),
            other => match database::Server::named(other) {
                Some(server) => pipe::Pipe::shipped(server, params).map(Handler::Pipe),
                None => Err(Error::Invalid(format!(
                    "unknown handler type {other:?} (file, pipe, {})",
                    database::SHIPPED.join(", ")
                ))),
            },
        }
    }

    /// Checks configured atoms against the handler before any backup.
    pub fn check_atoms(&self, spec: &DatasetSpec) -> Result<(), Error> {
        match self {
            Handler::File(f) => f.check_atoms(spec),
            Handler::Pipe(p) => p.check_atoms(spec),
        }
    }

    /// The command that lists a shipped database handler's atoms, for a
    /// source that lists none.
    pub fn atoms_command(&self) -> Option<&str> {
        match self {
            Handler::Pipe(p) => p.shipped.as_ref()?.atoms_command.as_deref(),
            Handler::File(_) => None,
        }
    }

    /// Whether atom `name`, printed by an `atoms_command`, is backed up: a
    /// shipped database handler's `include` and `exclude` say.
    pub fn selects(&self, name: &str) -> bool {
        match self {
            Handler::Pipe(pipe::Pipe {
                shipped: Some(shipped),
                ..
            }) => shipped.selection.keeps(name),
            _ => true,
        }
    }

    /// The commands `check` shows besides [`Handler::describe`], by name.
    pub fn commands(&self) -> Vec<(&'static str, &str)> {
        match self {
            Handler::Pipe(p) => p.commands(),
            Handler::File(_) => Vec::new(),
        }
    }

    /// Whether this handler proves that its atoms load (`proof_command`).
    pub fn proves(&self) -> bool {
        matches!(self, Handler::Pipe(p) if p.proof_command.is_some())
    }

    /// The command that proves pipe atom `atom` loads (its stream on
    /// stdin), with scratch database `name` and directory `dir`; none when
    /// the handler defines no proof.
    pub fn proof_command(
        &self,
        scope: &hook::Scope,
        atom: &Atom,
        name: &str,
        dir: &str,
    ) -> Option<Result<shell::Script, Error>> {
        match self {
            Handler::Pipe(p) => p.proof_command(scope, atom, name, dir),
            Handler::File(_) => None,
        }
    }

    /// The datasets of `atoms`, one group of source `source`: a file
    /// handler makes one dataset of them, a pipe handler one per atom.
    pub fn plan(
        &self,
        source: &str,
        atoms: &[AtomSpec],
        ctx: &Context,
    ) -> Result<Vec<PlannedDataset>, Error> {
        match self {
            Handler::File(f) => f.plan(source, atoms).map(|plan| vec![plan]),
            Handler::Pipe(p) => atoms
                .iter()
                .map(|spec| {
                    let name = atom::full_name(source, &spec.name);
                    let recorded = [Atom {
                        name: name.clone(),
                        path: None,
                    }];
                    let configured = Atom {
                        name,
                        path: spec.path.clone(),
                    };
                    p.plan(&self.scope(source, ctx, &recorded, None), &configured)
                })
                .collect(),
        }
    }

    /// The name of the dataset `atoms` of `source` make (`DATASET_NAME`,
    /// `${dataset.name}`): the source for a file dataset, the atom's full
    /// name for a pipe dataset, which holds one atom.
    pub fn dataset_name(&self, source: &str, atoms: &[Atom]) -> String {
        match (self, atoms) {
            (Handler::Pipe(_), [atom]) => atom.name.clone(),
            _ => source.to_string(),
        }
    }

    /// The command that restoring pipe atom `atom` feeds its data to, its
    /// values substituted; an error says why there is none.
    pub fn restore_command(
        &self,
        scope: &hook::Scope,
        atom: &Atom,
    ) -> Result<shell::Script, Error> {
        match self {
            Handler::File(_) => Err(Error::NoRestoreCommand {
                name: scope.source.to_string(),
                pipe: false,
            }),
            Handler::Pipe(p) => p.restore_command(scope, atom),
        }
    }

    /// Where, in place, this handler puts file atom `spec`: see
    /// [`file::File::place`]; none for a pipe handler.
    pub fn place_in(&self, spec: &AtomSpec) -> Option<Result<Place, Error>> {
        match self {
            Handler::File(f) => Some(f.place(spec)),
            Handler::Pipe(_) => None,
        }
    }

    /// What commands working on `atoms` of `source` are told (their
    /// substitutions and environment, see [`hook`]): the one place that
    /// names a dataset's values, at backup and at restore (`restore_target`
    /// set) alike.
    pub fn scope<'a>(
        &self,
        source: &'a str,
        ctx: &Context<'a>,
        atoms: &'a [Atom],
        restore_target: Option<&'a Target>,
    ) -> hook::Scope<'a> {
        hook::Scope {
            backup_id: ctx.backup_id,
            host: ctx.host,
            source,
            dataset: self.dataset_name(source, atoms),
            atoms,
            restore_target,
            restore_as: None,
        }
    }

    /// A short description for `check`.
    pub fn describe(&self) -> String {
        match self {
            Handler::File(f) => f.describe(),
            Handler::Pipe(p) => p.describe(),
        }
    }
}

/// Checks that `template`, the value of param `key`, uses only the
/// substitutions of an atom and its dataset, and `more`.
fn check_template(key: &'static str, template: &str, more: &[&str]) -> Result<(), Error> {
    let mut vars: Vec<(&str, &str)> = shell::template::variables()
        .filter(|v| !v.starts_with("restore.") && !v.starts_with("proof."))
        .map(|v| (v, ""))
        .collect();
    vars.extend(more.iter().map(|v| (*v, "")));
    match shell::substitute(template, &vars) {
        Ok(_) => Ok(()),
        Err(source) => Err(Error::Substitution {
            key: Some(key),
            source,
        }),
    }
}
