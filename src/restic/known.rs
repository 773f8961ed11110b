//! The repositories this host opened, by location: a small file in
//! `work_dir` (`repository-ids`) saying which restic id each location
//! answered with, and, for a local repository, a fingerprint of its config
//! file, so that a location that holds another repository now (initialised
//! again, another disk mounted there) is told apart without a restic
//! process. One line a location: `ID FINGERPRINT LOCATION`, `-` for what is
//! not known. What a mismatch means is `open`'s.

use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

/// What the file says of one location.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Known {
    /// The repository's restic id, once learnt.
    pub id: Option<String>,
    /// The fingerprint of a local repository's config file.
    pub fingerprint: Option<String>,
}

/// The first line of the file, for whoever opens it.
const HEADER: &str = "# Repositories this host opened: restic id, config fingerprint (local ones), location.\n# Delete a location's line to accept another repository there.\n";

/// Held while this process rewrites a file.
static WRITING: Mutex<()> = Mutex::new(());

/// The fingerprint of a config file's bytes.
pub fn fingerprint(config: &[u8]) -> String {
    Sha256::digest(config)
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What `file` says of `location`; nothing for a file that does not exist
/// or cannot be read (it is a safety net, rebuilt as repositories open).
pub fn find(file: &Path, location: &str) -> Option<Known> {
    let text = fs::read_to_string(file).ok()?;
    entries(&text)
        .into_iter()
        .find(|(at, _)| at == location)
        .map(|(_, known)| known)
}

/// Records `known` for `location` in `file` (none: forgets it), keeping
/// the other lines. The file is replaced whole, so a reader never sees
/// half of it; a failure is logged, as the file only guards.
pub fn remember(file: &Path, location: &str, known: Option<&Known>) {
    let _writing = WRITING.lock().unwrap_or_else(PoisonError::into_inner);
    let text = fs::read_to_string(file).unwrap_or_default();
    let mut lines: Vec<(String, Known)> = entries(&text)
        .into_iter()
        .filter(|(at, _)| at != location)
        .collect();
    if let Some(known) = known {
        lines.push((location.to_string(), known.clone()));
    }
    if let Err(e) = write(file, &lines) {
        log::warn!(
            "cannot record the repository id of {location} in {}: {e}",
            file.display()
        );
    }
}

fn write(file: &Path, lines: &[(String, Known)]) -> io::Result<()> {
    if let Some(dir) = file.parent() {
        fs::create_dir_all(dir)?;
    }
    let temporary = file.with_extension(format!("new-{}", std::process::id()));
    let mut out = fs::File::create(&temporary)?;
    out.write_all(HEADER.as_bytes())?;
    for (location, known) in lines {
        let id = known.id.as_deref().unwrap_or("-");
        let fingerprint = known.fingerprint.as_deref().unwrap_or("-");
        writeln!(out, "{id} {fingerprint} {location}")?;
    }
    // Not synced: lost in a crash, it is rebuilt as repositories open.
    fs::rename(&temporary, file)
}

/// The file's lines as locations and what is known of them; lines that do
/// not parse are left out.
fn entries(text: &str) -> Vec<(String, Known)> {
    let field = |value: &str| (value != "-").then(|| value.to_string());
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let mut parts = line.splitn(3, ' ');
            let (id, fingerprint, location) = (parts.next()?, parts.next()?, parts.next()?);
            let known = Known {
                id: field(id),
                fingerprint: field(fingerprint),
            };
            Some((location.to_string(), known))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_remembered_and_forgotten_one_by_one() {
        let dir = std::env::temp_dir().join(format!("tabacco-known-{}", std::process::id()));
        let file = dir.join("repository-ids");
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(find(&file, "/r"), None);
        let local = Known {
            id: None,
            fingerprint: Some(fingerprint(b"config")),
        };
        remember(&file, "/srv/my repo", Some(&local));
        let remote = Known {
            id: Some("ab".repeat(32)),
            fingerprint: None,
        };
        remember(&file, "rest:http://h/r", Some(&remote));
        assert_eq!(find(&file, "/srv/my repo"), Some(local));
        assert_eq!(find(&file, "rest:http://h/r"), Some(remote.clone()));
        let text = fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("# "), "{text}");
        assert!(text.ends_with(&format!("{} - rest:http://h/r\n", "ab".repeat(32))));
        remember(&file, "/srv/my repo", None);
        assert_eq!(find(&file, "/srv/my repo"), None);
        assert_eq!(find(&file, "rest:http://h/r"), Some(remote));
        fs::remove_dir_all(&dir).unwrap();
    }
}
