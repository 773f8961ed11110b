//! Where a restore puts what it restores: one type from the command line
//! (or a restore request, where it travels as an optional directory) to
//! restic, the restore command's environment and the plan's words.

use std::path::{Path, PathBuf};

/// Where restored data goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// File atoms land at `DIR/<original path>`.
    Dir(PathBuf),
    /// File atoms land at their original paths.
    InPlace,
}

impl Target {
    /// How a restore request carries a target: a directory, or none for
    /// in place.
    pub fn to_request(&self) -> Option<String> {
        match self {
            Target::Dir(dir) => Some(dir.to_string_lossy().into_owned()),
            Target::InPlace => None,
        }
    }

    /// The target of a restore request, checked again: it came over the
    /// network.
    pub fn from_request(target: Option<&str>) -> Result<Target, String> {
        match target {
            None => Ok(Target::InPlace),
            Some(dir) if Path::new(dir).is_absolute() && !dir.split('/').any(|c| c == "..") => {
                Ok(Target::Dir(PathBuf::from(dir)))
            }
            Some(dir) => Err(format!(
                "refusing restore target {dir:?}: not a plain absolute path"
            )),
        }
    }

    /// The directory restic restores into.
    pub fn dir(&self) -> &Path {
        match self {
            Target::Dir(dir) => dir,
            Target::InPlace => Path::new("/"),
        }
    }

    /// Where what was backed up at `path` (absolute) lands.
    pub fn place(&self, path: &str) -> PathBuf {
        self.dir().join(path.trim_start_matches('/'))
    }
}
