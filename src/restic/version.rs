//! Which restic this is: `restic version`, run once per binary per process,
//! and what tabacco does differently with each version (see "RESTIC
//! VERSIONS" in tabacco(1)).

use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};

/// A restic release, e.g. `0.18.0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

/// The oldest restic tabacco runs.
pub const OLDEST: Version = Version(0, 14, 0);

impl Version {
    /// The version in `restic version`'s output, e.g. `restic 0.14.0
    /// compiled with go1.19.8 on linux/amd64` or `restic 0.17.3-dev
    /// (compiled manually) ...`; `None` for anything else.
    pub fn parse(output: &str) -> Option<Version> {
        let mut words = output.split_whitespace();
        if words.next() != Some("restic") {
            return None;
        }
        let number = words.next()?.trim_start_matches('v');
        let number = number.split(['-', '+']).next()?;
        let mut parts = number.split('.').map(|p| p.parse::<u32>().ok());
        let version = Version(parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(version)
    }

    /// `--retry-lock` exists (0.16 and newer).
    pub fn has_retry_lock(self) -> bool {
        self >= Version(0, 16, 0)
    }

    /// Whether `--stdin-filename` may hold a `/`: restic 0.18.0 fails with
    /// "unable to save snapshot: open /dir: no such file or directory"
    /// (restic issue 5324, fixed in 0.18.1).
    pub fn can_nest_stdin_filename(self) -> bool {
        !(Version(0, 18, 0)..Version(0, 18, 1)).contains(&self)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The version of the restic at `binary`, learnt once per process; a
/// message naming what was found when it cannot be run, prints something
/// unknown, or is older than [`OLDEST`].
pub fn detect(binary: &Path) -> Result<Version, String> {
    static DETECTED: Mutex<Vec<(PathBuf, Result<Version, String>)>> = Mutex::new(Vec::new());
    let mut detected = DETECTED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, known)) = detected.iter().find(|(b, _)| b == binary) {
        return known.clone();
    }
    let result = run(binary);
    detected.push((binary.to_path_buf(), result.clone()));
    result
}

fn run(binary: &Path) -> Result<Version, String> {
    let shown = binary.display();
    let output = Command::new(binary)
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound if binary.components().count() == 1 => {
                format!("restic binary {shown:?} not found on PATH (install restic or set restic_binary)")
            }
            ErrorKind::NotFound => format!("restic binary {shown} not found"),
            ErrorKind::PermissionDenied => {
                format!("restic binary {shown} cannot be run: permission denied")
            }
            _ => format!("cannot run restic binary {shown}: {e}"),
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    let first = text.lines().next().unwrap_or("").trim();
    let version = Version::parse(first)
        .filter(|_| output.status.success())
        .ok_or_else(|| {
            let said: String = first.chars().take(80).collect();
            format!("{shown} version printed {said:?}, not a restic version")
        })?;
    if version < OLDEST {
        return Err(format!(
            "restic {version} ({shown}) is older than {OLDEST}, the oldest tabacco supports"
        ));
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_restic_versions_print() {
        let parse = Version::parse;
        assert_eq!(
            parse("restic 0.14.0 compiled with go1.19.8 on linux/amd64"),
            Some(Version(0, 14, 0))
        );
        assert_eq!(
            parse("restic 0.18.0 compiled with go1.24.4 on linux/amd64"),
            Some(Version(0, 18, 0))
        );
        assert_eq!(
            parse("restic 0.17.3-dev (compiled manually) compiled with go1.22"),
            Some(Version(0, 17, 3))
        );
        assert_eq!(
            parse("restic v0.9.0 (v0.9.0-1-g20bfed59)"),
            Some(Version(0, 9, 0))
        );
        for bad in [
            "",
            "rustic 0.14.0",
            "restic",
            "restic 0.14",
            "restic x.y.z",
            "restic 1.2.3.4",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn what_each_version_can_do() {
        assert!(!Version(0, 14, 0).has_retry_lock());
        assert!(Version(0, 16, 0).has_retry_lock());
        assert!(Version(0, 17, 3).can_nest_stdin_filename());
        assert!(!Version(0, 18, 0).can_nest_stdin_filename());
        assert!(Version(0, 18, 1).can_nest_stdin_filename());
        assert!(Version(0, 14, 0) >= OLDEST && Version(0, 13, 9) < OLDEST);
    }
}
