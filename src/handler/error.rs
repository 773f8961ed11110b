//! Why a handler cannot do what it is asked: params, atoms or commands it
//! cannot work with ([`Error`], found at load or when a backup plans its
//! datasets), and a restore that did not happen ([`Unrestored`]). Each keeps
//! its cause; its one-line message is what the caller reports.

use crate::base::place;
use crate::process::shell;
use crate::restic;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a handler's params, atoms or command templates cannot be used.
#[derive(Debug)]
pub enum Error {
    /// Params, atoms or exclusions this handler cannot work with; the
    /// message names the key or the atom.
    Invalid(String),
    /// An `exclude_file` that cannot be read.
    ExcludeFile { path: PathBuf, source: io::Error },
    /// A command template naming a substitution that is unknown, or not
    /// available where it runs; `key` names the template's param where it
    /// is checked at load.
    Substitution {
        key: Option<&'static str>,
        source: shell::template::Error,
    },
    /// Source `name` has nothing to feed a pipe atom's data to: it is not
    /// a pipe source here, or (`pipe`) it has no `restore_command`.
    NoRestoreCommand { name: String, pipe: bool },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Invalid(message) => f.write_str(message),
            Error::ExcludeFile { path, source } => {
                write!(f, "exclude_file: {}: {source}", path.display())
            }
            Error::Substitution {
                key: Some(key),
                source,
            } => write!(f, "{key}: {source}"),
            Error::Substitution { key: None, source } => source.fmt(f),
            Error::NoRestoreCommand { name, pipe: true } => {
                write!(f, "source {name} has no restore_command")
            }
            Error::NoRestoreCommand { name, pipe: false } => {
                write!(f, "source {name} is not a pipe source here")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::ExcludeFile { source, .. } => Some(source),
            Error::Substitution { source, .. } => Some(source),
            Error::Invalid(_) | Error::NoRestoreCommand { .. } => None,
        }
    }
}

impl From<shell::template::Error> for Error {
    fn from(source: shell::template::Error) -> Error {
        Error::Substitution { key: None, source }
    }
}

/// Why a restore failed: restic (another repository may hold the
/// snapshot), or anything else.
#[derive(Debug)]
pub enum Unrestored {
    Restic(restic::Error),
    /// The restore command cannot be made.
    Command(Error),
    /// A stream from `restic dump` could not be set up.
    Process(shell::Error),
    /// What was restored cannot be put into place: something is in the
    /// way, or the file system refused.
    Place(place::Error),
    /// restic restored nothing at the `missing` paths (for `dir`, of
    /// `parts` if any): they are not in the snapshot.
    NotInSnapshot {
        missing: Vec<String>,
        parts: Vec<String>,
        dir: PathBuf,
        snapshot_id: String,
    },
    /// Pipe atom `atom` did not stream back whole.
    Stream {
        atom: String,
        why: Box<Stream>,
    },
}

/// How a pipe atom's stream back into its restore command failed.
#[derive(Debug)]
pub enum Stream {
    /// `restic dump`, or the restore command, failed.
    Failed(shell::Error),
    /// Both did: the restore command (a failed consumer gets `restic dump`
    /// killed), and `restic dump`.
    Both {
        consumer: shell::Error,
        dump: shell::Error,
    },
    /// The restore command stopped reading.
    StoppedReading(io::Error),
    Lost,
    /// Fewer or more bytes than were recorded.
    Size {
        copied: u64,
        recorded: i64,
    },
}

impl fmt::Display for Unrestored {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Unrestored::Restic(e) => e.fmt(f),
            Unrestored::Command(e) => e.fmt(f),
            Unrestored::Process(e) => e.fmt(f),
            Unrestored::Place(e) => e.fmt(f),
            Unrestored::NotInSnapshot {
                missing,
                parts,
                dir,
                snapshot_id,
            } => {
                let what = match &parts[..] {
                    [] => String::new(),
                    parts => format!(" (of --path {})", parts.join(" ")),
                };
                write!(
                    f,
                    "nothing restored{what} at {} under {}: not in snapshot {snapshot_id}",
                    missing.join(" "),
                    dir.display()
                )
            }
            Unrestored::Stream { atom, why } => write!(f, "atom {atom}: {why}"),
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Stream::Failed(e) => e.fmt(f),
            Stream::Both { consumer, dump } => write!(f, "{consumer}; {dump}"),
            Stream::StoppedReading(e) => write!(f, "restore_command stopped reading: {e}"),
            Stream::Lost => f.write_str("the stream was lost"),
            Stream::Size { copied, recorded } => write!(
                f,
                "restic dump streamed {} of the {} recorded",
                crate::base::count::count(*copied, "byte"),
                crate::base::count::count(*recorded, "byte")
            ),
        }
    }
}

impl std::error::Error for Unrestored {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Unrestored::Restic(e) => Some(e),
            Unrestored::Command(e) => Some(e),
            Unrestored::Process(e) => Some(e),
            Unrestored::Place(e) => Some(e),
            Unrestored::Stream { why, .. } => Some(why.as_ref()),
            Unrestored::NotInSnapshot { .. } => None,
        }
    }
}

impl std::error::Error for Stream {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Stream::Failed(e) | Stream::Both { consumer: e, .. } => Some(e),
            Stream::StoppedReading(e) => Some(e),
            Stream::Lost | Stream::Size { .. } => None,
        }
    }
}

impl From<restic::Error> for Unrestored {
    fn from(e: restic::Error) -> Unrestored {
        Unrestored::Restic(e)
    }
}

impl From<Error> for Unrestored {
    fn from(e: Error) -> Unrestored {
        Unrestored::Command(e)
    }
}

impl From<place::Error> for Unrestored {
    fn from(e: place::Error) -> Unrestored {
        Unrestored::Place(e)
    }
}
