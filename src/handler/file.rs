//! The builtin `file` handler: atoms are paths, under `params.path` or
//! absolute; one restic snapshot holds them all, and each can be restored
//! on its own by its path (`restic restore --include`), through a staging
//! directory ([`crate::base::place`]) to wherever it is put.

use crate::base::place::{Place, Staging};
use crate::handler::atom::{self, AtomSpec, DatasetSpec};
use crate::handler::exclude::Excludes;
use crate::handler::{
    Error, Input, Params, PlannedDataset, Restoring, Saving, Unrestored, Unsaved,
};
use crate::report::failure::{Failure, Kind};
use crate::restic;
use crate::wire::model::Atom;
use std::path::{Component, Path, PathBuf};

#[derive(Clone, Debug)]
pub struct File {
    /// The tree to back up; atoms are sub-paths of it.
    pub path: Option<PathBuf>,
    /// What restic leaves out.
    pub excludes: Excludes,
}

impl File {
    pub fn new(params: Params) -> Result<File, Error> {
        if params.backup_command.is_some() || params.restore_command.is_some() {
            return Err(Error::Invalid(
                "the file handler takes no backup_command or restore_command".into(),
            ));
        }
        let excludes = Excludes::new(&params)?;
        let path = params.path.map(PathBuf::from);
        if let Some(p) = &path {
            check_path("", p)?;
            if !p.is_absolute() {
                return Err(Error::Invalid(format!(
                    "params.path must be absolute, not {:?}",
                    p.display().to_string()
                )));
            }
        }
        Ok(File { path, excludes })
    }

    pub fn check_atoms(&self, spec: &DatasetSpec) -> Result<(), Error> {
        if spec.atoms.is_empty() && spec.atoms_command.is_none() && self.path.is_none() {
            return Err(Error::Invalid(
                "a file source needs params.path or atoms with absolute paths".into(),
            ));
        }
        if spec.atoms_command.is_some() && self.path.is_none() {
            return Err(Error::Invalid(
                "a file source with atoms_command needs params.path".into(),
            ));
        }
        spec.atoms
            .iter()
            .try_for_each(|atom| self.atom_path(atom).map(|_| ()))
    }

    /// The absolute path of `atom`; the anonymous atom (empty name) is the
    /// whole tree.
    fn atom_path(&self, atom: &AtomSpec) -> Result<PathBuf, Error> {
        let relative = atom.path.as_deref().unwrap_or(&atom.name);
        let path = match &self.path {
            _ if Path::new(relative).is_absolute() => PathBuf::from(relative),
            Some(base) if relative.is_empty() => base.clone(),
            Some(base) => base.join(relative),
            None => {
                return Err(Error::Invalid(format!(
                    "atom {:?}: without params.path its path must be absolute",
                    atom.name
                )))
            }
        };
        check_path(&format!("atom {:?}: ", atom.name), &path)?;
        Ok(path)
    }

    /// Where atom `spec` is restored in place: its path, reached from
    /// `params.path` when it is below it (so that nothing below the tree
    /// is followed), else from the directory holding it.
    pub fn place(&self, spec: &AtomSpec) -> Result<Place, Error> {
        let path = self.atom_path(spec)?;
        let below = |base: &Path| {
            let relative = path.strip_prefix(base).ok()?;
            Place::new(base, relative).filter(|_| !relative.as_os_str().is_empty())
        };
        let place = match &self.path {
            Some(base) => below(base),
            None => None,
        };
        place.or_else(|| below(path.parent()?)).ok_or_else(|| {
            Error::Invalid(format!("{} cannot be restored in place", path.display()))
        })
    }

    pub fn plan(&self, source: &str, atoms: &[AtomSpec]) -> Result<PlannedDataset, Error> {
        let mut planned = Vec::new();
        let mut paths: Vec<PathBuf> = self.path.iter().cloned().collect();
        for atom in atoms {
            let path = self.atom_path(atom)?;
            if self.path.is_none() && !paths.contains(&path) {
                paths.push(path.clone());
            }
            planned.push(Atom {
                name: atom::full_name(source, &atom.name),
                path: Some(path.to_string_lossy().into_owned()),
            });
        }
        Ok(PlannedDataset {
            name: source.to_string(),
            atoms: planned,
            input: Input::Paths {
                paths,
                excludes: self.excludes.args().to_vec(),
            },
        })
    }

    pub fn describe(&self) -> String {
        let mut text = match &self.path {
            Some(path) => format!("file {}", path.display()),
            None => "file".into(),
        };
        if !self.excludes.is_empty() {
            text.push_str(&format!(", excluding: {}", quoted(self.excludes.args())));
        }
        text
    }
}

/// Backs up `paths` (the tree, or the atoms' own paths) as one snapshot.
pub fn save(
    paths: Vec<PathBuf>,
    excludes: Vec<String>,
    atoms: &[Atom],
    saving: Saving,
) -> Result<restic::Summary, Unsaved> {
    // Under params.path restic is given the tree alone: its atoms are
    // checked here, or a missing one would be recorded.
    let atom_paths = atoms.iter().filter_map(|a| a.path.as_deref());
    let mut all = paths
        .iter()
        .map(|p| p.as_path())
        .chain(atom_paths.map(Path::new));
    if let Some(missing) = all.find(|p| !p.exists()) {
        let e = format!("path {} does not exist", missing.display());
        return Err(Failure::new(Kind::Other, e).into());
    }
    let request = (saving.request)(restic::BackupInput::Paths { paths, excludes });
    Ok(saving.repo.backup(saving.sup, request, saving.on_status)?)
}

/// Restores file atoms, each given as its recorded path and its place
/// (only `restoring.parts` of them, if any): one `restic restore` into a
/// staging directory for each directory that places are below, a check
/// that each atom is there afterwards, then [`Staging::put`].
pub fn restore(restoring: &Restoring, atoms: &[(&str, &Place)]) -> Result<(), Unrestored> {
    let mut dirs: Vec<&Path> = Vec::new();
    for (_, place) in atoms {
        if !dirs.contains(&place.dir()) {
            dirs.push(place.dir());
        }
    }
    let staged = |path: &str| PathBuf::from(path.trim_start_matches('/'));
    for dir in dirs {
        let group: Vec<&(&str, &Place)> = atoms.iter().filter(|(_, p)| p.dir() == dir).collect();
        let paths: Vec<&str> = group.iter().map(|(path, _)| *path).collect();
        let staging = Staging::new(dir)?;
        let (sup, snapshot) = (restoring.sup, restoring.snapshot);
        let parts = restoring.parts;
        restoring
            .repo
            .restore(sup, snapshot, staging.path(), &paths, parts)?;
        // restic restores nothing, and says nothing, for a path that is not
        // in the snapshot; nor, with parts, for parts not in an atom, whose
        // directory it then does not create either.
        let missing: Vec<String> = paths
            .iter()
            .filter(|p| staging.path().join(staged(p)).symlink_metadata().is_err())
            .map(|p| p.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(Unrestored::NotInSnapshot {
                missing,
                parts: parts.to_vec(),
                dir: dir.to_path_buf(),
                snapshot_id: restoring.checked.item().dataset.snapshot_id.clone(),
            });
        }
        let entries: Vec<(PathBuf, Place)> = group
            .iter()
            .map(|(path, place)| (staged(path), (*place).clone()))
            .collect();
        staging.put(&entries, restoring.overwrite)?;
    }
    Ok(())
}

/// Atom paths end up in `restic restore --include`: no `..` anywhere. The
/// message starts with `what` (the atom it is the path of, if any).
fn check_path(what: &str, path: &Path) -> Result<(), Error> {
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(Error::Invalid(format!(
            "{what}path {:?} contains '..'",
            path.display().to_string()
        )));
    }
    Ok(())
}

/// restic's arguments as one line, each quoted where a shell would split
/// or expand it (for reading only: nothing runs this line).
fn quoted(args: &[String]) -> String {
    let plain = |a: &String| {
        !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    };
    let words: Vec<String> = args
        .iter()
        .map(|a| {
            if plain(a) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect();
    words.join(" ")
}
