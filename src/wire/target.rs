//! Where a restore puts what it restores: one type from the command line
//! (or a restore request, where it travels as an optional directory) to
//! restic, the restore command's environment and the plan's words.

use std::path::{Path, PathBuf};

/// Where restored data goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every atom's data as files under a directory: a file atom's at
    /// `DIR/<original path>`, a pipe atom's stream as `DIR/<atom>`.
    Dir(PathBuf),
    /// Where this host's configuration puts each atom: a file atom's files
    /// at its path, a pipe atom's stream into its `restore_command`.
    InPlace,
}

impl Target {
    /// `--target DIR`: `/` is in place, as the original program said it.
    pub fn at(dir: PathBuf) -> Target {
        if dir.parent().is_none() {
            Target::InPlace
        } else {
            Target::Dir(dir)
        }
    }

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
                Ok(Target::at(PathBuf::from(dir)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_in_place() {
        for root in ["/", "//", "/."] {
            assert_eq!(Target::at(root.into()), Target::InPlace, "{root}");
        }
        assert_eq!(Target::at("/srv/r".into()), Target::Dir("/srv/r".into()));
        assert_eq!(Target::from_request(Some("/")), Ok(Target::InPlace));
    }
}
