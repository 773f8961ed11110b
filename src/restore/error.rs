//! Why a restore, or the plan of one, failed: each keeps its cause, and
//! says in one line what `restore`, `dump`, `ls` and the agent report.

use super::destination::Unplaceable;
use crate::base::count::count;
use crate::handler::Unrestored;
use crate::metadb;
use crate::process::shell;
use crate::wire::checked::Refused;
use std::fmt;

/// Another host's newest version of an atom, offered when this host has
/// none.
#[derive(Debug)]
pub struct Candidate {
    pub host: String,
    pub timestamp: String,
    pub snapshot_id: String,
}

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
    /// Atoms that this host (`host`) has no record of, only other hosts:
    /// the first few, with each host's newest version, and how many more.
    NotOwn {
        host: String,
        atoms: Vec<(String, Vec<Candidate>)>,
        more: usize,
    },
    /// A record from the metadb is not safe to use.
    Refused(Refused),
    /// An atom of the dataset has nowhere to go.
    Unplaceable(Unplaceable),
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
            Error::NotOwn { host, atoms, more } => {
                let atoms: Vec<String> = atoms
                    .iter()
                    .map(|(name, candidates)| {
                        let hosts: Vec<String> = candidates
                            .iter()
                            .map(|c| {
                                format!(
                                    "{} at {}, snapshot {}",
                                    c.host.escape_debug(),
                                    c.timestamp,
                                    c.snapshot_id.escape_debug()
                                )
                            })
                            .collect();
                        format!(
                            "{}: no record of this host ({host}), only of {}",
                            name.escape_debug(),
                            hosts.join("; ")
                        )
                    })
                    .collect();
                f.write_str(&atoms.join("; "))?;
                if *more > 0 {
                    write!(f, "; and {} more", count(*more, "atom"))?;
                }
                write!(
                    f,
                    ": restore another host's version with --host HOST, this host's only with --host {host}, or the newest of any host with --any-host"
                )
            }
            Error::Unplaceable(e) => e.fmt(f),
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
            Error::Unplaceable(e) => Some(e),
            Error::Time(_)
            | Error::NoMatch { .. }
            | Error::Ambiguous { .. }
            | Error::NotOwn { .. }
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
