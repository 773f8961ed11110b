//! A local repository's files, as far as telling what state it is in
//! takes: whether the directory, its `config` and its `keys/` exist, at
//! no cost (no restic process). `restic init` writes a key, then the
//! config: one stopped halfway leaves keys and no config, and one whose
//! key was lost leaves a config nothing opens; concurrent ones leave keys
//! that do not belong to the config. What to say of each is here too, for
//! a local repository and, in general words, for a remote one.

use super::Error;
use crate::base::count::count;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What a local repository's directory holds.
#[derive(Debug)]
pub enum Layout {
    /// No directory there.
    Absent,
    /// A directory without a config or a key: nothing was created.
    Empty,
    /// Keys and no config: an init stopped halfway (or running now), or,
    /// with snapshots, a config lost.
    Keys { keys: Vec<String>, snapshots: usize },
    /// A config and no key: nothing can open it.
    Keyless {
        /// How many snapshots it holds.
        snapshots: usize,
    },
    /// A config and keys: restic can tell the rest.
    Whole { config: Vec<u8> },
}

impl Layout {
    /// The layout of the repository at `dir`.
    pub fn read(dir: &Path) -> io::Result<Layout> {
        if !dir.is_dir() {
            return match fs::metadata(dir) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Layout::Absent),
                Err(e) => Err(e),
                Ok(_) => Err(io::Error::other("not a directory")),
            };
        }
        let config = match fs::read(dir.join("config")) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let keys = names(&dir.join("keys"))?;
        let snapshots = || Ok::<_, io::Error>(names(&dir.join("snapshots"))?.len());
        Ok(match (config, keys.is_empty()) {
            (None, true) => Layout::Empty,
            (None, false) => Layout::Keys {
                keys,
                snapshots: snapshots()?,
            },
            (Some(_), true) => Layout::Keyless {
                snapshots: snapshots()?,
            },
            (Some(config), false) => Layout::Whole { config },
        })
    }
}

/// The restic ids (64 hex digits) of the files in `dir`, sorted; none
/// where it does not exist. restic writes a file under a temporary name
/// first: those are not counted.
pub fn names(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    names.sort();
    Ok(names)
}

/// `keys` as a message lists them: the first few, by their short ids.
pub fn list(keys: &[String]) -> String {
    const SHOWN: usize = 4;
    let mut shown: Vec<&str> = keys
        .iter()
        .take(SHOWN)
        .map(|k| &k[..k.len().min(8)])
        .collect();
    if keys.len() > SHOWN {
        shown.push("…");
    }
    shown.join(", ")
}

/// The config of the whole repository at `at` (shown as `shown`) in
/// `layout`; what is wrong with it otherwise, and the fix.
pub fn config(shown: &str, at: &Path, layout: Layout) -> Result<Vec<u8>, Error> {
    let keys_dir = at.join("keys");
    Err(match layout {
        Layout::Whole { config, .. } => return Ok(config),
        Layout::Absent => Error::Missing(format!(
            "no repository at {shown}: the directory does not exist (run 'tabacco init' to create it)"
        )),
        Layout::Empty => Error::Missing(format!(
            "no repository at {shown}: the directory holds no restic config (run 'tabacco init' to create it)"
        )),
        Layout::Keys { keys, snapshots: 0 } => Error::Damaged(format!(
            "repository {shown} is half created: its keys/ holds {} ({}) but it has no config, as a 'restic init' stopped halfway leaves it, and it holds no snapshot; remove the keys ({}) and run 'tabacco init'",
            count(keys.len(), "key"),
            list(&keys),
            paths(&keys_dir, &keys)
        )),
        Layout::Keys { snapshots, .. } => Error::Damaged(format!(
            "repository {shown} has keys but no config, so nothing can open it (its config was removed); it holds {}: put its config back from a copy of the repository",
            count(snapshots, "snapshot")
        )),
        Layout::Keyless { snapshots: 0 } => Error::Damaged(format!(
            "repository {shown} has a config but no key, so nothing can open it (a 'restic init' stopped halfway, or its keys were removed); it holds no snapshot: remove the directory and run 'tabacco init'"
        )),
        Layout::Keyless { snapshots } => Error::Damaged(format!(
            "repository {shown} has a config but no key, so nothing can open it (its keys were removed); it holds {}: put its keys/ back from a copy of the repository",
            count(snapshots, "snapshot")
        )),
    })
}

/// `keys` in `dir`, as `rm` takes them.
fn paths(dir: &Path, keys: &[String]) -> String {
    let paths: Vec<PathBuf> = keys.iter().map(|k| dir.join(k)).collect();
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(" ")
}

/// What to say of a repository whose config a key does not open (restic
/// said `words`): which keys a local one holds, and how to find the one
/// that opens it.
pub fn mismatch(shown: &str, words: &str, keys: Option<&[String]>) -> String {
    let holds = match keys {
        Some(keys) => format!(
            "its keys/ holds {} ({})",
            count(keys.len(), "key"),
            list(keys)
        ),
        None => "its keys/".to_string(),
    };
    format!(
        "repository {shown} cannot be opened: {words}: {holds} that do not all belong to its config, as concurrent 'restic init's leave them; 'tabacco check' (or 'restic --key-hint KEY cat config' for each key) tells which one opens it, and the others can go"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_of_a_repository_is_read_from_its_files() {
        let dir = std::env::temp_dir().join(format!("tabacco-layout-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        assert!(matches!(Layout::read(&dir).unwrap(), Layout::Absent));
        fs::create_dir_all(dir.join("keys")).unwrap();
        assert!(matches!(Layout::read(&dir).unwrap(), Layout::Empty));
        let key = "a".repeat(64);
        fs::write(dir.join("keys").join(&key), "k").unwrap();
        // restic's temporary names are not keys.
        fs::write(dir.join("keys").join("tmp-123"), "k").unwrap();
        match Layout::read(&dir).unwrap() {
            Layout::Keys { keys, snapshots: 0 } => assert_eq!(keys, std::slice::from_ref(&key)),
            other => panic!("{other:?}"),
        }
        fs::write(dir.join("config"), "c").unwrap();
        assert!(matches!(Layout::read(&dir).unwrap(), Layout::Whole { .. }));
        fs::remove_file(dir.join("keys").join(&key)).unwrap();
        assert!(matches!(
            Layout::read(&dir).unwrap(),
            Layout::Keyless { snapshots: 0 }
        ));
        let shown = dir.display().to_string();
        let half = Layout::Keys {
            keys: vec![key.clone()],
            snapshots: 0,
        };
        let said = config(&shown, &dir, half).unwrap_err().to_string();
        assert!(said.contains("(aaaaaaaa)"), "{said}");
        assert!(said.contains(&format!("{shown}/keys/{key}")), "{said}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
