//! Where each atom of a planned dataset goes, decided once from the
//! target, the record and this host's configuration: the plan says it in
//! words ([`describe`]) and the restore does exactly that. A directory
//! takes every atom as files (a pipe atom's stream as the file named after
//! the atom) and needs no configuration here; in place, an atom goes where
//! this host's configuration puts it, whichever host recorded it: a file
//! atom below its configured path, a pipe atom into its source's
//! `restore_command`.

use crate::base::place::Place;
use crate::config::source::{Datasets, Source};
use crate::config::Config;
use crate::handler::atom::{own_name, AtomSpec};
use crate::handler::{self, hook, Destination};
use crate::wire::model::{Atom, RestoreItem};
use crate::wire::target::Target;
use std::fmt;
use std::path::Path;

/// What restoring one planned dataset does.
pub struct Course<'c> {
    /// The dataset's source as configured here, whose hooks run around it;
    /// none when it is not configured (no hooks run).
    pub source: Option<&'c Source>,
    /// Where each atom goes, in the dataset's order, or why it cannot.
    pub atoms: Vec<Result<Destination, Unplaceable>>,
}

/// Why an atom has nowhere to go.
#[derive(Debug)]
pub enum Unplaceable {
    /// In place needs the atom's source configured here.
    NotConfigured { source: String },
    /// In place, a file atom of a source that is not a file source here.
    NotFileSource { source: String },
    /// The configuration gives no place, or no restore command, for it.
    Handler(handler::Error),
    /// A recorded path or name that is not a plain path below the target.
    NotPlain { path: String },
}

impl fmt::Display for Unplaceable {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Unplaceable::NotConfigured { source } => write!(
                f,
                "source {source} is not configured here: in place needs it (restore to a directory with --target DIR)"
            ),
            Unplaceable::NotFileSource { source } => {
                write!(f, "source {source} is not a file source here")
            }
            Unplaceable::Handler(e) => e.fmt(f),
            Unplaceable::NotPlain { path } => write!(f, "{path} is not a plain path"),
        }
    }
}

impl std::error::Error for Unplaceable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Unplaceable::Handler(e) => Some(e),
            _ => None,
        }
    }
}

/// What restoring `item` to `target` does with `config`, this host's; a
/// pipe atom's service gets it as `rename` if given (`restore --as`).
pub fn course<'c>(
    config: &'c Config,
    item: &RestoreItem,
    target: &Target,
    rename: Option<&str>,
) -> Course<'c> {
    let source = config
        .sources
        .iter()
        .find(|s| s.name == item.dataset.source);
    let atoms = item
        .dataset
        .atoms
        .iter()
        .map(|atom| destination(source, item, atom, target, rename))
        .collect();
    Course { source, atoms }
}

/// Where `atom` of `item` goes, with `source` as configured here (if it
/// is).
fn destination(
    source: Option<&Source>,
    item: &RestoreItem,
    atom: &Atom,
    target: &Target,
    rename: Option<&str>,
) -> Result<Destination, Unplaceable> {
    let below = |dir: &Path, path: &str| {
        Place::new(dir, Path::new(path.trim_start_matches('/'))).ok_or_else(|| {
            Unplaceable::NotPlain {
                path: path.to_string(),
            }
        })
    };
    let in_place = match target {
        Target::Dir(dir) => {
            return match &atom.path {
                Some(path) => Ok(Destination::Files {
                    recorded: path.clone(),
                    place: below(dir, path)?,
                }),
                None => below(dir, &atom.name).map(Destination::File),
            };
        }
        Target::InPlace => source.ok_or_else(|| Unplaceable::NotConfigured {
            source: item.dataset.source.clone(),
        })?,
    };
    let spec = configured(in_place, atom);
    if let Some(path) = &atom.path {
        let place = match in_place.handler.place_in(&spec) {
            None => Err(Unplaceable::NotFileSource {
                source: in_place.name.clone(),
            }),
            Some(place) => place.map_err(Unplaceable::Handler),
        }?;
        return Ok(Destination::Files {
            recorded: path.clone(),
            place,
        });
    }
    // Its commands see the atom as configured here: `${atom.path}` is
    // this host's.
    let atom = Atom {
        name: atom.name.clone(),
        path: spec.path,
    };
    let atoms = &item.dataset.atoms;
    let context = super::context(item);
    let mut scope = in_place
        .handler
        .scope(&in_place.name, &context, atoms, Some(target));
    scope.restore_as = rename;
    let script = in_place
        .handler
        .restore_command(&scope, &atom)
        .map_err(Unplaceable::Handler)?;
    let mut env = hook::environment(&scope, Some(&atom));
    env.extend(script.env);
    Ok(Destination::Service {
        command: script.text,
        env,
        shown: script.shown,
    })
}

/// `atom` as this host's configuration of `source` has it: as listed
/// there, else by its name alone (as `atoms_command` and
/// `datasets_command` name atoms), so that a file atom goes below
/// `params.path`.
pub fn configured(source: &Source, atom: &Atom) -> AtomSpec {
    let name = match atom.name == source.name {
        true => "",
        false => own_name(&source.name, &atom.name),
    };
    let listed = match &source.datasets {
        Datasets::Listed(specs) => specs
            .iter()
            .flat_map(|d| &d.atoms)
            .find(|a| a.name == name)
            .cloned(),
        Datasets::Command(_) => None,
    };
    listed.unwrap_or_else(|| AtomSpec {
        name: name.to_string(),
        path: None,
    })
}

/// What the plan says a destination does: "files under PATH", "files in
/// place under PATH" (and where it was recorded, if elsewhere), "a file
/// PATH", "the live service, fed to restore_command: COMMAND", or
/// "nothing: WHY".
pub fn describe(destination: &Result<Destination, Unplaceable>, target: &Target) -> String {
    match destination {
        Err(e) => format!("nothing: {e}"),
        Ok(Destination::Files { recorded, place }) => {
            let path = place.path();
            match target {
                Target::Dir(_) => format!("files under {}", path.display()),
                Target::InPlace if Path::new(recorded) == path => {
                    format!("files in place under {}", path.display())
                }
                Target::InPlace => format!(
                    "files in place under {}, recorded at {recorded}",
                    path.display()
                ),
            }
        }
        Ok(Destination::File(place)) => format!("a file {}", place.path().display()),
        Ok(Destination::Service { shown, .. }) => {
            format!("the live service, fed to restore_command: {shown}")
        }
    }
}

/// What the plan says restoring `atom` of source `source` on `host`, by
/// its agent and its configuration, does.
pub fn describe_remote(host: &str, source: &str, atom: &Atom, target: &Target) -> String {
    match (target, &atom.path) {
        (Target::Dir(dir), Some(path)) => format!(
            "files under {} on {host}",
            dir.join(path.trim_start_matches('/')).display()
        ),
        (Target::Dir(dir), None) => {
            format!("a file {} on {host}", dir.join(&atom.name).display())
        }
        (Target::InPlace, Some(path)) => format!(
            "files in place on {host}, where its configuration puts them (recorded at {path})"
        ),
        (Target::InPlace, None) => {
            format!("the live service: {host}'s restore_command of source {source}")
        }
    }
}
