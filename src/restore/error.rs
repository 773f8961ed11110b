//! Why a restore, or the plan of one, failed: each keeps its cause, and
//! says in one line what `restore`, `dump`, `ls` and the agent report.

use crate::handler::Unrestored;
use crate::metadb;
use crate::process::shell;
use crate::wire::checked::Refused;
use std::fmt;

/// Why a restore plan could not be made, or one planned dataset was not
/// restored.
#[derive(Debug)]
pub enum Error {
    /// `--older-than` is not a time.
    Time(String),
    Metadb(metadb::Error),
    /// No recorded atom matches `pattern`.
    NoMatch {
        pattern: String,
    },
    /// `pattern` matches several atoms where one is wanted.
    Ambiguous {
        pattern: String,
        names: Vec<String>,
    },
    /// A record from the metadb is not safe to use.
    Refused(Refused),
    /// The dataset's source is not configured on this host.
    NotConfigured {
        name: String,
    },
    /// A restore hook failed.
    Hook(shell::Error),
    /// The handler did not restore the dataset.
    Unrestored(Unrestored),
    /// Its owner stopped the restore before it started.
    Stopped(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Time(e) | Error::Stopped(e) => f.write_str(e),
            Error::Refused(e) => e.fmt(f),
            Error::Metadb(e) => e.fmt(f),
            Error::NoMatch { pattern } => write!(f, "no recorded atom matches {pattern}"),
            Error::Ambiguous { pattern, names } => write!(
                f,
                "{pattern} matches {} atoms: {}; name one",
                names.len(),
                names.join(" ")
            ),
            Error::NotConfigured { name } => write!(
                f,
                "source {name:?} is not in this host's configuration: add it, so that its handler and hooks are known"
            ),
            Error::Hook(e) => e.fmt(f),
            Error::Unrestored(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Metadb(e) => Some(e),
            Error::Hook(e) => Some(e),
            Error::Unrestored(e) => Some(e),
            Error::Refused(e) => Some(e),
            Error::Time(_)
            | Error::NoMatch { .. }
            | Error::Ambiguous { .. }
            | Error::NotConfigured { .. }
            | Error::Stopped(_) => None,
        }
    }
}

impl From<metadb::Error> for Error {
    fn from(e: metadb::Error) -> Error {
        Error::Metadb(e)
    }
}

impl From<shell::Error> for Error {
    fn from(e: shell::Error) -> Error {
        Error::Hook(e)
    }
}

impl From<Unrestored> for Error {
    fn from(e: Unrestored) -> Error {
        Error::Unrestored(e)
    }
}
