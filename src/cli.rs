//! The command line: what was typed, recorded without I/O. This file holds
//! the parsed [`Cli`] and its [`Command`], the loop over the global options
//! that finds the command's name, and what every command's own loop shares
//! (the global options, `--help`); each group of commands has its own
//! parsers (`host`, `fleet`, `restore`), and [`help`] holds the command
//! table that `--help` and completions are made from. Reading
//! configuration and doing things is left to the commands (`cmd`).

mod fleet;
pub mod help;
mod host;
mod restore;

pub use fleet::{HistoryArgs, QueryArgs, StatusArgs};
pub use host::SnapshotsArgs;
use lexopt::ValueExt;
pub use restore::{DumpArgs, LsArgs, RestoreArgs, VersionArgs};
use std::ffi::OsString;
use std::path::PathBuf;

/// A parsed command line.
#[derive(Debug, PartialEq)]
pub struct Cli {
    pub config: Option<PathBuf>,
    /// 0 is the default; each `-v` adds one, `-q` sets -1.
    pub verbosity: i8,
    pub command: Command,
}

/// How `query` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Table,
}

/// The command typed, with what was typed after it.
#[derive(Debug, PartialEq)]
pub enum Command {
    Agent {
        http_addr: Option<String>,
    },
    Metadb {
        http_addr: Option<String>,
    },
    Run {
        sources: Vec<String>,
        dry_run: bool,
    },
    Check {
        /// `--offline`: do not open the repositories.
        offline: bool,
    },
    /// Create the repository and its copies where they do not exist.
    Init,
    Query(QueryArgs),
    Restore(RestoreArgs),
    Dump(DumpArgs),
    Ls(LsArgs),
    Reindex,
    Prune {
        sources: Vec<String>,
        dry_run: bool,
    },
    Verify {
        sources: Vec<String>,
        read_data_subset: Option<String>,
        /// `--repository`: check and drill this one (`primary` or a copy).
        repository: Option<String>,
    },
    History(HistoryArgs),
    Status(StatusArgs),
    /// restic itself, with `args`, on this host's repository (or the one
    /// `--repository` names) and its credentials.
    Restic {
        repository: Option<String>,
        args: Vec<OsString>,
    },
    Snapshots(SnapshotsArgs),
    /// Remove the stale locks of this host's repository (or the one named).
    Unlock {
        repository: Option<String>,
    },
    RetireHost(String),
    Version,
    /// Help on one command, or on all.
    Help(Option<String>),
    /// A completion script.
    Completion(Shell),
}

/// A shell `tabacco completion` writes a script for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// An argument with no borrow on the parser, so that option handlers can
/// read the option's value.
#[derive(Debug)]
enum Arg {
    Short(char),
    Long(String),
    Value(OsString),
}

fn next(parser: &mut lexopt::Parser) -> Result<Option<Arg>, lexopt::Error> {
    Ok(parser.next()?.map(|arg| match arg {
        lexopt::Arg::Short(c) => Arg::Short(c),
        lexopt::Arg::Long(name) => Arg::Long(name.to_string()),
        lexopt::Arg::Value(value) => Arg::Value(value),
    }))
}

fn unexpected(arg: Arg) -> lexopt::Error {
    match arg {
        Arg::Short(c) => lexopt::Error::UnexpectedOption(format!("-{c}")),
        Arg::Long(name) => lexopt::Error::UnexpectedOption(format!("--{name}")),
        Arg::Value(value) => lexopt::Error::UnexpectedArgument(value),
    }
}

/// A command line that cannot be parsed, and where help on it is.
#[derive(Debug)]
pub struct Error {
    message: String,
    /// The command whose help to suggest; `None` for the general help.
    command: Option<&'static str>,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self.command {
            Some(command) => write!(f, "{}\nTry 'tabacco help {command}'.", self.message),
            None => write!(f, "{}\nTry 'tabacco --help'.", self.message),
        }
    }
}

impl std::error::Error for Error {}

/// Parses `args` (without the program name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cli, Error> {
    let mut parser = lexopt::Parser::from_args(args);
    let mut cli = Cli {
        config: None,
        verbosity: 0,
        command: Command::Help(None),
    };
    let general = |e: lexopt::Error| Error {
        message: e.to_string(),
        command: None,
    };
    while let Some(arg) = next(&mut parser).map_err(general)? {
        if is_help(&arg) {
            cli.command = Command::Help(None);
            return Ok(cli);
        }
        if is_version(&arg) {
            cli.command = Command::Version;
            return Ok(cli);
        }
        if global(&mut cli, &arg, &mut parser).map_err(general)? {
            continue;
        }
        let Arg::Value(name) = arg else {
            return Err(general(unexpected(arg)));
        };
        let name = name.string().map_err(general)?;
        let specific = |e: lexopt::Error| Error {
            message: e.to_string(),
            command: help::entry(&name).map(|c| c.name),
        };
        cli.command = command(&mut cli, &mut parser, &name).map_err(specific)?;
        return Ok(cli);
    }
    Ok(cli)
}

/// Parses what follows the command name `name`.
fn command(
    cli: &mut Cli,
    parser: &mut lexopt::Parser,
    name: &str,
) -> Result<Command, lexopt::Error> {
    Ok(match name {
        "agent" => host::server(cli, parser, "agent")?,
        "metadb" => host::server(cli, parser, "metadb")?,
        "run" => host::sources_command(cli, parser, "run")?,
        "prune" => host::sources_command(cli, parser, "prune")?,
        "verify" => host::verify(cli, parser)?,
        "restic" => host::restic(parser)?,
        "snapshots" => host::snapshots(cli, parser)?,
        "unlock" => host::unlock(cli, parser)?,
        "query" => fleet::query(cli, parser)?,
        "history" => fleet::history(cli, parser)?,
        "status" => fleet::status(cli, parser)?,
        "retire-host" => fleet::retire_host(cli, parser)?,
        "restore" => restore::restore(cli, parser)?,
        "dump" | "ls" => restore::look_into(cli, parser, name)?,
        "check" => host::check(cli, parser)?,
        "init" => no_arguments(cli, parser, "init", Command::Init)?,
        "reindex" => no_arguments(cli, parser, "reindex", Command::Reindex)?,
        "version" => no_arguments(cli, parser, "version", Command::Version)?,
        "help" => help::help_topic(cli, parser)?,
        "completion" => help::completion(cli, parser)?,
        other => return Err(format!("unknown command {other:?}").into()),
    })
}

/// Handles a global option; `Ok(false)` if `arg` is not one. A help flag
/// turns the command into help on `command`.
fn global(cli: &mut Cli, arg: &Arg, parser: &mut lexopt::Parser) -> Result<bool, lexopt::Error> {
    match arg {
        Arg::Long(name) if name == "config" => cli.config = Some(parser.value()?.into()),
        Arg::Short('v') => cli.verbosity = cli.verbosity.max(0) + 1,
        Arg::Long(name) if name == "verbose" => cli.verbosity = cli.verbosity.max(0) + 1,
        Arg::Short('q') => cli.verbosity = -1,
        Arg::Long(name) if name == "quiet" => cli.verbosity = -1,
        _ => return Ok(false),
    }
    Ok(true)
}

fn is_help(arg: &Arg) -> bool {
    match arg {
        Arg::Short('h') => true,
        Arg::Long(name) => name == "help",
        Arg::Value(_) | Arg::Short(_) => false,
    }
}

fn is_version(arg: &Arg) -> bool {
    match arg {
        Arg::Short('V') => true,
        Arg::Long(name) => name == "version",
        Arg::Value(_) | Arg::Short(_) => false,
    }
}

fn no_arguments(
    cli: &mut Cli,
    parser: &mut lexopt::Parser,
    name: &str,
    command: Command,
) -> Result<Command, lexopt::Error> {
    while let Some(arg) = next(parser)? {
        if is_help(&arg) {
            return Ok(Command::Help(Some(name.into())));
        }
        if !global(cli, &arg, parser)? {
            return Err(unexpected(arg));
        }
    }
    Ok(command)
}

#[cfg(test)]
mod tests;
