//! What a source's handler makes of its atoms: the builtin `file` handler
//! backs up paths, the `pipe` handler streams a command's output. Handler
//! templates from `handlers/*.yml` are resolved into one of these by
//! `config`, which merges a template's [`Params`] with a source's and hands
//! them to [`Handler::new`]; this module turns a source's atoms into the
//! datasets a backup job hands to restic.
//!
//! Imports `atom`, `hook`, `model` and `shell`; never `config` or `source`
//! (a source holds its handler, so the handler is told the source's name).

mod exclude;

pub use exclude::check_pattern;
mod file;
mod pipe;

use crate::atom::{AtomSpec, DatasetSpec};
use crate::model::Atom;
use crate::{hook, shell};
use std::path::PathBuf;

/// Handler names that need no template.
pub const BUILTIN: [&str; 2] = ["file", "pipe"];

/// A handler's params as configured: a template's, overridden key by key
/// by the source's. Checked by [`Handler::new`].
#[derive(Clone, Debug, Default)]
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
}

/// A resolved handler with its merged params.
#[derive(Clone, Debug)]
pub enum Handler {
    File(file::File),
    Pipe(pipe::Pipe),
}

/// One dataset ready to back up: a single restic snapshot.
#[derive(Debug)]
pub struct Plan {
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
    /// A `/bin/sh -c` command (values already quoted) whose stdout is the
    /// data, stored in the snapshot as `/<filename>`.
    Command {
        command: String,
        env: hook::Environment,
        filename: String,
    },
}

/// Values a backup substitutes into handler commands.
pub struct Context<'a> {
    pub backup_id: &'a str,
    pub host: &'a str,
}

impl Handler {
    /// Builds a handler of `kind` (`file` or `pipe`) from merged params.
    pub fn new(kind: &str, params: Params) -> Result<Handler, String> {
        match kind {
            "file" => file::File::new(params).map(Handler::File),
            "pipe" => pipe::Pipe::new(params).map(Handler::Pipe),
            other => Err(format!("unknown handler type {other:?} (file or pipe)")),
        }
    }

    /// Checks configured atoms against the handler before any backup.
    pub fn check_atoms(&self, spec: &DatasetSpec) -> Result<(), String> {
        match self {
            Handler::File(f) => f.check_atoms(spec),
            Handler::Pipe(_) => Ok(()),
        }
    }

    /// The datasets of `atoms`, one group of source `source`: a file
    /// handler makes one dataset of them, a pipe handler one per atom.
    pub fn plan(
        &self,
        source: &str,
        atoms: &[AtomSpec],
        ctx: &Context,
    ) -> Result<Vec<Plan>, String> {
        match self {
            Handler::File(f) => f.plan(source, atoms).map(|plan| vec![plan]),
            Handler::Pipe(p) => atoms.iter().map(|atom| p.plan(source, atom, ctx)).collect(),
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

    /// A short description for `check`.
    pub fn describe(&self) -> String {
        match self {
            Handler::File(f) => f.describe(),
            Handler::Pipe(p) => p.describe(),
        }
    }
}

/// Checks that `template` uses only known substitutions.
fn check_template(template: &str) -> Result<(), String> {
    let vars = shell::VARIABLES.map(|v| (v, ""));
    shell::substitute(template, &vars).map(|_| ())
}
