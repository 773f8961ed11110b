//! Reading the directories beside agent.yml: every `*.yml` and `*.yaml`
//! file of `sources/` or `handlers/`, in name order, each entry with its
//! origin. A missing directory has no entries; a file that cannot be read
//! or parsed, or an entry of it, is one error among the others. Parsing one file is
//! `base::yaml`'s.

use super::error::{Error, Problem};
use crate::base::yaml::{self, Origin};
use std::path::{Path, PathBuf};

/// The entries of every YAML file in `dir`; the errors go to `errors`.
pub(super) fn entries<T: serde::de::DeserializeOwned>(
    dir: &Path,
    errors: &mut Vec<Error>,
) -> Vec<(T, Origin)> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            errors.push(Error {
                origin: Some(Origin::file(dir)),
                ..Error::new(Problem::Dir(e))
            });
            return Vec::new();
        }
    };
    paths.sort();
    let mut all = Vec::new();
    for path in paths {
        let (entries, refused) = yaml::read_entries(&path);
        all.extend(entries);
        errors.extend(refused.into_iter().map(Error::from));
    }
    all
}
