//! The command line: a lexopt loop for the global options, then one loop per
//! command. Parsing only records what was typed; reading configuration and
//! doing things is left to the commands.

use lexopt::ValueExt;
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
    Check,
    Query(Query),
    Restore(Restore),
    Dump(Dump),
    Ls(Ls),
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
    History(History),
    Status(Status),
    RetireHost(String),
    Version,
    /// Help on one command, or on all.
    Help(Option<String>),
    /// A completion script (hidden from `--help`).
    Completion(Shell),
}

/// A shell `tabacco completion` writes a script for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
}

#[derive(Debug, Default, PartialEq)]
pub struct Query {
    pub host: Option<String>,
    pub versions: Option<u32>,
    pub older_than: Option<String>,
    pub format: Option<Format>,
    pub patterns: Vec<String>,
}

/// `tabacco history`: which attempts.
#[derive(Debug, Default, PartialEq)]
pub struct History {
    pub host: Option<String>,
    pub source: Option<String>,
    pub failed: bool,
    pub since: Option<String>,
    pub limit: Option<u32>,
    pub format: Option<Format>,
}

/// `tabacco status`: which rows of the fleet's status.
#[derive(Debug, Default, PartialEq)]
pub struct Status {
    pub host: Option<String>,
    pub source: Option<String>,
    pub problems: bool,
    /// Show when repositories and atoms were last proven restorable instead.
    pub proofs: bool,
    pub format: Option<Format>,
}

#[derive(Debug, PartialEq)]
pub struct Restore {
    pub host: Option<String>,
    pub older_than: Option<String>,
    pub target: crate::wire::target::Target,
    pub dry_run: bool,
    /// Ask this host's agent to restore, through the metadb.
    pub remote: Option<String>,
    /// With `remote`: follow the request to its end.
    pub wait: bool,
    /// `--path`: only these parts of each file atom (relative globs).
    pub parts: Vec<String>,
    /// `--repository`: read from this one (`primary` or a copy) only.
    pub repository: Option<String>,
    pub patterns: Vec<String>,
}

/// Which recorded version of one atom `dump` and `ls` look into.
#[derive(Debug, Default, PartialEq)]
pub struct Version {
    pub host: Option<String>,
    pub older_than: Option<String>,
    /// `--repository`: read from this one (`primary` or a copy) only.
    pub repository: Option<String>,
    pub atom: String,
}

#[derive(Debug, PartialEq)]
pub struct Dump {
    pub version: Version,
    /// A file of a file atom, relative to its path.
    pub file: Option<String>,
    /// Where to write; standard output if absent.
    pub output: Option<PathBuf>,
}

#[derive(Debug, PartialEq)]
pub struct Ls {
    pub version: Version,
    pub long: bool,
    /// Only what is under this part of the atom.
    pub sub: Option<String>,
}

/// One command's entry in `--help`, the man page test and completions.
pub struct Help {
    pub name: &'static str,
    pub usage: &'static str,
    pub summary: &'static str,
    pub options: &'static [(&'static str, &'static str)],
}

/// Options every command accepts, before or after its name.
pub const GLOBAL_OPTIONS: &[(&str, &str)] = &[
    (
        "--config FILE",
        "configuration (default /etc/tabacco/agent.yml; metadb.yml for metadb)",
    ),
    (
        "-v, --verbose",
        "log what is done; twice for debugging detail",
    ),
    ("-q, --quiet", "log errors only"),
    ("-h, --help", "show help"),
];

/// Options only accepted before the command name.
pub const TOP_OPTIONS: &[(&str, &str)] = &[("-V, --version", "print the version")];

/// Every command, in the order `--help` lists them.
pub const COMMANDS: &[Help] = &[
    Help {
        name: "agent",
        usage: "tabacco agent [--http-addr ADDR]",
        summary: "run the backup daemon",
        options: &[("--http-addr ADDR", "serve /metrics, /healthz and a status page on ADDR")],
    },
    Help {
        name: "metadb",
        usage: "tabacco metadb [--http-addr ADDR]",
        summary: "run the metadata server (config default /etc/tabacco/metadb.yml)",
        options: &[("--http-addr ADDR", "listen on ADDR (overrides http_addr in metadb.yml)")],
    },
    Help {
        name: "run",
        usage: "tabacco run [--dry-run] [SOURCE...]",
        summary: "back up now (all sources, or those named), wait, exit",
        options: &[("--dry-run", "log every command, run none")],
    },
    Help {
        name: "query",
        usage: "tabacco query [--host H] [--versions N] [--older-than TIME] [--json|--table] PATTERN...",
        summary: "list recorded backups of the atoms matching shell glob PATTERNs",
        options: &[
            ("--host H", "only backups made on host H"),
            ("--versions N", "newest N versions of each atom (default 1)"),
            ("--older-than TIME", "only backups older than TIME (RFC 3339, or an age like 36h, 7d)"),
            ("--json", "print a JSON array (the default when stdout is not a terminal)"),
            ("--table", "print a table (the default on a terminal)"),
        ],
    },
    Help {
        name: "restore",
        usage: "tabacco restore [--host H] [--older-than TIME] (--target DIR | --in-place) [--path SUB]... [--repository NAME] [--dry-run] [--remote HOST [--wait]] PATTERN...",
        summary: "restore the newest version of each atom matching shell glob PATTERNs onto this host",
        options: &[
            ("--host H", "restore what host H backed up (default: the newest of any host)"),
            ("--older-than TIME", "the newest version older than TIME (RFC 3339, or an age like 36h, 7d)"),
            ("--target DIR", "restore file atoms under DIR (DIR/<original path>)"),
            ("--in-place", "restore file atoms at their original paths"),
            ("--path SUB", "only SUB of each file atom (relative to its path; a glob; repeatable)"),
            ("--repository NAME", "read from repository NAME only: primary, or a copy (default: the primary, else a copy that holds it)"),
            ("--dry-run", "print the plan, restore nothing"),
            ("--remote HOST", "have HOST's agent carry the plan out (through the metadb)"),
            ("--wait", "with --remote: follow the request and exit with its result"),
        ],
    },
    Help {
        name: "status",
        usage: "tabacco status [--host H] [--source S] [--problems] [--proofs] [--json|--table]",
        summary: "each host's sources: ok, failed, incomplete, running, never or overdue; exit 1 on a problem",
        options: &[
            ("--host H", "only host H"),
            ("--source S", "only source S"),
            ("--problems", "only sources failed, incomplete or overdue"),
            ("--proofs", "instead: when repositories were last read back whole, atoms last drilled"),
            ("--json", "print a JSON array (the default when stdout is not a terminal)"),
            ("--table", "print a table (the default on a terminal)"),
        ],
    },
    Help {
        name: "history",
        usage: "tabacco history [--host H] [--source S] [--failed] [--since TIME] [--limit N] [--json|--table]",
        summary: "list backup, prune and verify attempts, newest first",
        options: &[
            ("--host H", "only host H"),
            ("--source S", "only source S"),
            ("--failed", "only attempts that did not end ok"),
            ("--since TIME", "only attempts started since TIME (RFC 3339, or an age like 36h, 7d)"),
            ("--limit N", "at most N attempts (default 100)"),
            ("--json", "print a JSON array (the default when stdout is not a terminal)"),
            ("--table", "print a table (the default on a terminal)"),
        ],
    },
    Help {
        name: "retire-host",
        usage: "tabacco retire-host HOST",
        summary: "stop watching HOST in status (its records stay; a plan it publishes revives it)",
        options: &[],
    },
    Help {
        name: "dump",
        usage: "tabacco dump [--host H] [--older-than TIME] [--repository NAME] [-o FILE] ATOM [PATH]",
        summary: "write a pipe atom's stream, or one file of a file atom, to stdout or FILE; restore nothing",
        options: &[
            ("--host H", "what host H backed up (default: the newest of any host)"),
            ("--older-than TIME", "the newest version older than TIME (RFC 3339, or an age like 36h, 7d)"),
            ("--repository NAME", "read from repository NAME only: primary, or a copy (default: the primary, else a copy that holds it)"),
            ("-o, --output FILE", "write to FILE, a new file (default: standard output)"),
        ],
    },
    Help {
        name: "ls",
        usage: "tabacco ls [--host H] [--older-than TIME] [--repository NAME] [--long] ATOM [PATH]",
        summary: "list the files of the newest version of a file atom (JSON when piped)",
        options: &[
            ("--host H", "what host H backed up (default: the newest of any host)"),
            ("--older-than TIME", "the newest version older than TIME (RFC 3339, or an age like 36h, 7d)"),
            ("--repository NAME", "read from repository NAME only: primary, or a copy (default: the primary, else a copy that holds it)"),
            ("--long", "with type, size, mode and modification time"),
        ],
    },
    Help {
        name: "check",
        usage: "tabacco check",
        summary: "validate the configuration, print the resolved sources and atoms",
        options: &[],
    },
    Help {
        name: "prune",
        usage: "tabacco prune [--dry-run] [SOURCE...]",
        summary: "apply retention now: forget old snapshots, reclaim space, update the metadb",
        options: &[("--dry-run", "print what would be forgotten, change nothing")],
    },
    Help {
        name: "verify",
        usage: "tabacco verify [--read-data-subset SUBSET] [--repository NAME] [SOURCE...]",
        summary: "restic check, then a restore drill of a random recent atom",
        options: &[
            ("--read-data-subset SUBSET", "also read back this part of the data (e.g. 5% or 1/10)"),
            ("--repository NAME", "check and drill repository NAME: primary, or a copy (default: check the primary; drill from it, else a copy that holds the atom)"),
        ],
    },
    Help {
        name: "reindex",
        usage: "tabacco reindex",
        summary: "rebuild the metadb from the repository's snapshots",
        options: &[],
    },
    Help { name: "version", usage: "tabacco version", summary: "print the version", options: &[] },
    Help { name: "help", usage: "tabacco help [COMMAND]", summary: "show help", options: &[] },
];

/// `completion`, hidden from the command list but not from `help`.
pub const COMPLETION: Help = Help {
    name: "completion",
    usage: "tabacco completion bash|zsh",
    summary: "print a completion script for the shell (see tabacco(1) for installing it)",
    options: &[],
};

/// The help entry of command `name`, hidden ones included.
fn entry(name: &str) -> Option<&'static Help> {
    COMMANDS
        .iter()
        .chain([&COMPLETION])
        .find(|c| c.name == name)
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
            command: entry(&name).map(|c| c.name),
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
        "agent" => server(cli, parser, "agent")?,
        "metadb" => server(cli, parser, "metadb")?,
        "run" => sources_command(cli, parser, "run")?,
        "prune" => sources_command(cli, parser, "prune")?,
        "verify" => verify(cli, parser)?,
        "query" => query(cli, parser)?,
        "history" => history(cli, parser)?,
        "status" => status(cli, parser)?,
        "retire-host" => retire_host(cli, parser)?,
        "restore" => restore(cli, parser)?,
        "dump" | "ls" => look_into(cli, parser, name)?,
        "check" => no_arguments(cli, parser, "check", Command::Check)?,
        "reindex" => no_arguments(cli, parser, "reindex", Command::Reindex)?,
        "version" => no_arguments(cli, parser, "version", Command::Version)?,
        "help" => help_topic(cli, parser)?,
        "completion" => completion(cli, parser)?,
        other => return Err(format!("unknown command {other:?}").into()),
    })
}

fn completion(cli: &mut Cli, parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
    let mut shell = None;
    while let Some(arg) = next(parser)? {
        match arg {
            _ if is_help(&arg) => return Ok(Command::Help(Some("completion".into()))),
            Arg::Value(name) if shell.is_none() => {
                shell = Some(match name.string()?.as_str() {
                    "bash" => Shell::Bash,
                    "zsh" => Shell::Zsh,
                    other => {
                        return Err(format!("no completion for shell {other:?}: bash or zsh").into())
                    }
                })
            }
            _ if global(cli, &arg, parser)? => {}
            _ => return Err(unexpected(arg)),
        }
    }
    shell
        .map(Command::Completion)
        .ok_or_else(|| "completion needs a shell: bash or zsh".into())
}

fn help_topic(cli: &mut Cli, parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
    let mut topic = None;
    while let Some(arg) = next(parser)? {
        match arg {
            _ if is_help(&arg) => return Ok(Command::Help(Some("help".into()))),
            Arg::Value(name) if topic.is_none() => topic = Some(name.string()?),
            _ if global(cli, &arg, parser)? => {}
            _ => return Err(unexpected(arg)),
        }
    }
    Ok(Command::Help(topic))
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

/// `agent` and `metadb`: daemons whose only own option is `--http-addr`.
fn server(
    cli: &mut Cli,
    parser: &mut lexopt::Parser,
    name: &str,
) -> Result<Command, lexopt::Error> {
    let mut http_addr = None;
    while let Some(arg) = next(parser)? {
        match arg {
            _ if is_help(&arg) => return Ok(Command::Help(Some(name.into()))),
            Arg::Long(ref opt) if opt == "http-addr" => http_addr = Some(parser.value()?.string()?),
            _ if global(cli, &arg, parser)? => {}
            _ => return Err(unexpected(arg)),
        }
    }
    Ok(match name {
        "agent" => Command::Agent { http_addr },
        _ => Command::Metadb { http_addr },
    })
}

/// `run` and `prune`: `--dry-run` and source names.
fn sources_command(
    cli: &mut Cli,
    parser: &mut lexopt::Parser,
    name: &str,
) -> Result<Command, lexopt::Error> {
    let mut sources = Vec::new();
    let mut dry_run = false;
    while let Some(arg) = next(parser)? {
        match arg {
            _ if is_help(&arg) => return Ok(Command::Help(Some(name.into()))),
            Arg::Long(ref opt) if opt == "dry-run" => dry_run = true,
            Arg::Value(source) => sources.push(source.string()?),
            _ if global(cli, &arg, parser)? => {}
            _ => return Err(unexpected(arg)),
        }
    }
    Ok(match name {
        "run" => Command::Run { sources, dry_run },
        _ => Command::Prune { sources, dry_run },
    })
}

fn verify(cli: &mut Cli, parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
    let (mut sources, mut read_data_subset, mut repository) = (Vec::new(), None, None);
    while let Some(arg) = next(parser)? {
        match arg {
            _ if is_help(&arg) => return Ok(Command::Help(Some("verify".into()))),
            Arg::Long(ref opt) if opt == "read-data-subset" => {
                read_data_subset = Some(parser.value()?.string()?)
            }
            Arg::Long(ref opt) if opt == "repository" => {
                repository = Some(parser.value()?.string()?)
            }
            Arg::Value(source) => sources.push(source.string()?),
            _ if global(cli, &arg, parser)? => {}
            _ => return Err(unexpected(arg)),
        }
    }
    Ok(Command::Verify {
        sources,
        read_data_subset,
        repository,
    })
}

fn query(cli: &mut Cli, parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
    let mut q = Query::default();
    while let Some(arg) = next(parser)? {
        match arg {
            _ if is_help(&arg) => return Ok(Command::Help(Some("query".into()))),
            Arg::Long(ref name) => match name.as_str() {
                "host" => q.host = Some(parser.value()?.string()?),
                "versions" => match parser.value()?.parse::<u32>()? {
                    0 => return Err("--versions must be at least 1".into()),
                    n => q.versions = Some(n),
                },
                "older-than" => q.older_than = Some(parser.value()?.string()?),
                "json" => q.format = Some(Format::Json),
                "table" => q.format = Some(Format::Table),
                _ if global(cli, &arg, parser)? => {}
                _ => return Err(unexpected(arg)),
            },
            Arg::Value(pattern) => q.patterns.push(pattern.string()?),
            _ if global(cli, &arg, parser)? => {}
            _ => return Err(unexpected(arg)),
        }
    }
    if q.patterns.is_empty() {
        return Err("query needs at least one PATTERN (e.g. '*')".into());
    }
    Ok(Command::Query(q))
}

fn history(cli: &mut Cli, parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
    let mut h = History::default();
    while let Some(arg) = next(parser)? {
        match arg {
            _ if is_help(&arg) => return Ok(Command::Help(Some("history".into()))),
            Arg::Long(ref name) => match name.as_str() {
                "host" => h.host = Some(parser.value()?.string()?),
                "source" => h.source = Some(parser.value()?.string()?),
                "failed" => h.failed = true,
                "since" => h.since = Some(parser.value()?.string()?),
                "limit" => match parser.value()?.parse::<u32>()? {
                    0 => return Err("--limit must be at least 1".into()),
                    n => h.limit = Some(n),
                },
                "json" => h.format = Some(Format::Json),
                "table" => h.format = Some(Format::Table),
                _ if global(cli, &arg, parser)? => {}
                _ => return Err(unexpected(arg)),
            },
            _ if global(cli, &arg, parser)? => {}
            _ => return Err(unexpected(arg)),
        }
    }
    Ok(Command::History(h))
}

fn status(cli: &mut Cli, parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
    let mut s = Status::default();
    while let Some(arg) = next(parser)? {
        match arg {
            _ if is_help(&arg) => return Ok(Command::Help(Some("status".into()))),
            Arg::Long(ref name) => match name.as_str() {
                "host" => s.host = Some(parser.value()?.string()?),
                "source" => s.source = Some(parser.value()?.string()?),
                "problems" => s.problems = true,
                "proofs" => s.proofs = true,
                "json" => s.format = Some(Format::Json),
                "table" => s.format = Some(Format::Table),
                _ if global(cli, &arg, parser)? => {}
                _ => return Err(unexpected(arg)),
            },
            _ if global(cli, &arg, parser)? => {}
            _ => return Err(unexpected(arg)),
        }
    }
    Ok(Command::Status(s))
}

fn retire_host(cli: &mut Cli, parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
    let mut host = None;
    while let Some(arg) = next(parser)? {
        match arg {
            _ if is_help(&arg) => return Ok(Command::Help(Some("retire-host".into()))),
            Arg::Value(name) if host.is_none() => host = Some(name.string()?),
            _ if global(cli, &arg, parser)? => {}
            _ => return Err(unexpected(arg)),
        }
    }
    host.map(Command::RetireHost)
        .ok_or_else(|| "retire-host needs a HOST".into())
}

fn restore(cli: &mut Cli, parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
    let (mut host, mut older_than, mut target, mut dry_run) = (None, None, None, false);
    let (mut remote, mut wait, mut repository) = (None, false, None);
    let (mut parts, mut patterns) = (Vec::new(), Vec::new());
    while let Some(arg) = next(parser)? {
        match arg {
            _ if is_help(&arg) => return Ok(Command::Help(Some("restore".into()))),
            Arg::Long(ref name) => match name.as_str() {
                "host" => host = Some(parser.value()?.string()?),
                "older-than" => older_than = Some(parser.value()?.string()?),
                "target" | "in-place" if target.is_some() => {
                    return Err("give either --target DIR or --in-place, once".into())
                }
                "target" => {
                    let dir = PathBuf::from(parser.value()?);
                    if !dir.is_absolute() {
                        return Err("--target needs an absolute directory".into());
                    }
                    target = Some(crate::wire::target::Target::Dir(dir));
                }
                "in-place" => target = Some(crate::wire::target::Target::InPlace),
                "dry-run" => dry_run = true,
                "remote" => remote = Some(parser.value()?.string()?),
                "wait" => wait = true,
                "path" => parts.push(part(parser.value()?.string()?)?),
                "repository" => repository = Some(parser.value()?.string()?),
                _ if global(cli, &arg, parser)? => {}
                _ => return Err(unexpected(arg)),
            },
            Arg::Value(pattern) => patterns.push(pattern.string()?),
            _ if global(cli, &arg, parser)? => {}
            _ => return Err(unexpected(arg)),
        }
    }
    let target = target.ok_or("restore needs --target DIR or --in-place")?;
    if patterns.is_empty() {
        return Err("restore needs at least one PATTERN (e.g. 'sql/db2')".into());
    }
    if wait && remote.is_none() {
        return Err("--wait goes with --remote HOST".into());
    }
    if remote.is_some() && !parts.is_empty() {
        return Err("--path restores on this host only, not with --remote".into());
    }
    if remote.is_some() && repository.is_some() {
        return Err("--repository reads on this host only, not with --remote".into());
    }
    Ok(Command::Restore(Restore {
        host,
        older_than,
        target,
        dry_run,
        remote,
        wait,
        parts,
        repository,
        patterns,
    }))
}

/// `dump` and `ls`: one atom's newest matching version, and a path in it.
fn look_into(
    cli: &mut Cli,
    parser: &mut lexopt::Parser,
    name: &str,
) -> Result<Command, lexopt::Error> {
    let mut version = Version::default();
    let (mut long, mut output, mut values) = (false, None, Vec::new());
    while let Some(arg) = next(parser)? {
        match arg {
            _ if is_help(&arg) => return Ok(Command::Help(Some(name.into()))),
            Arg::Long(ref opt) if opt == "host" => version.host = Some(parser.value()?.string()?),
            Arg::Long(ref opt) if opt == "older-than" => {
                version.older_than = Some(parser.value()?.string()?)
            }
            Arg::Long(ref opt) if opt == "repository" => {
                version.repository = Some(parser.value()?.string()?)
            }
            Arg::Long(ref opt) if opt == "long" && name == "ls" => long = true,
            Arg::Short('o') if name == "dump" => output = Some(PathBuf::from(parser.value()?)),
            Arg::Long(ref opt) if opt == "output" && name == "dump" => {
                output = Some(PathBuf::from(parser.value()?))
            }
            Arg::Value(value) if values.len() < 2 => values.push(value.string()?),
            _ if global(cli, &arg, parser)? => {}
            _ => return Err(unexpected(arg)),
        }
    }
    let mut values = values.into_iter();
    version.atom = values
        .next()
        .ok_or_else(|| format!("{name} needs an ATOM (e.g. 'sql/db2')"))?;
    let path = values.next().map(part).transpose()?;
    Ok(match name {
        "dump" => Command::Dump(Dump {
            version,
            file: path,
            output,
        }),
        _ => Command::Ls(Ls {
            version,
            long,
            sub: path,
        }),
    })
}

/// A part of a file atom (`--path`, and `ls`'s and `dump`'s FILE):
/// relative to the atom's path, inside it, a valid restic glob; trailing
/// `/`s dropped.
fn part(text: String) -> Result<String, lexopt::Error> {
    let trimmed = text.trim_end_matches('/');
    let inside = !trimmed.is_empty()
        && !trimmed.starts_with('/')
        && !trimmed.split('/').any(|c| matches!(c, "" | "." | ".."));
    if !inside {
        return Err(format!(
            "{text:?} is not a path inside the atom (relative, without '.' or '..')"
        )
        .into());
    }
    crate::base::glob::check_pattern(trimmed)?;
    Ok(trimmed.to_string())
}

/// The text of `tabacco help [COMMAND]`; `None` for an unknown command.
pub fn help(command: Option<&str>) -> Option<String> {
    let options = |list: &[(&str, &str)]| -> String {
        list.iter()
            .map(|(o, d)| format!("  {o:<22} {d}\n"))
            .collect()
    };
    match command {
        None => {
            let mut out = String::from("tabacco: backups of multi-tenant services, by name, on restic\n\nUsage: tabacco [OPTIONS] COMMAND [ARGS]\n\nCommands:\n");
            let width = COMMANDS.iter().map(|c| c.name.len()).max().unwrap_or(0);
            for c in COMMANDS {
                out.push_str(&format!("  {:<width$}  {}\n", c.name, c.summary));
            }
            out.push_str("\nOptions:\n");
            out.push_str(&options(GLOBAL_OPTIONS));
            out.push_str(&options(TOP_OPTIONS));
            out.push_str("\nExit status: 0 ok, 1 a job failed, 2 usage or configuration error.\nSee tabacco(1) and 'tabacco help COMMAND'.\n");
            Some(out)
        }
        Some(name) => entry(name).map(|c| {
            let mut out = format!("Usage: {}\n\n{}\n", c.usage, c.summary);
            if !c.options.is_empty() {
                out.push_str("\nOptions:\n");
                out.push_str(&options(c.options));
            }
            out.push_str("\nGlobal options:\n");
            out.push_str(&options(GLOBAL_OPTIONS));
            out
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Cli, String> {
        parse(line.split_whitespace().map(OsString::from)).map_err(|e| e.to_string())
    }

    #[test]
    fn global_options_before_or_after_the_command() {
        let a = parse_str("--config /c.yml -v run users sql").unwrap();
        let b = parse_str("run users --config /c.yml sql -v").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.config, Some(PathBuf::from("/c.yml")));
        assert_eq!(a.verbosity, 1);
        assert_eq!(
            a.command,
            Command::Run {
                sources: vec!["users".into(), "sql".into()],
                dry_run: false
            }
        );
        assert_eq!(parse_str("-q check").unwrap().verbosity, -1);
        let agent = parse_str("agent --config /c.yml --http-addr 127.0.0.1:5331").unwrap();
        assert_eq!(
            agent.command,
            Command::Agent {
                http_addr: Some("127.0.0.1:5331".into())
            }
        );
        assert_eq!(agent.config, Some(PathBuf::from("/c.yml")));
    }

    #[test]
    fn query_options() {
        let cli =
            parse_str("query --host web3 --versions 2 --older-than 7d --json users/* sql/db?")
                .unwrap();
        assert_eq!(
            cli.command,
            Command::Query(Query {
                host: Some("web3".into()),
                versions: Some(2),
                older_than: Some("7d".into()),
                format: Some(Format::Json),
                patterns: vec!["users/*".into(), "sql/db?".into()],
            })
        );
    }

    #[test]
    fn restore_needs_a_target() {
        let cli = parse_str("restore --in-place --host web3 sql/db2").unwrap();
        let Command::Restore(r) = cli.command else {
            panic!("not a restore")
        };
        assert_eq!(
            (r.target, r.host.as_deref(), r.patterns),
            (
                crate::wire::target::Target::InPlace,
                Some("web3"),
                vec!["sql/db2".to_string()]
            )
        );
        let cli = parse_str("restore --target /t --repository offsite x").unwrap();
        let Command::Restore(r) = cli.command else {
            panic!("not a restore")
        };
        assert_eq!(r.repository.as_deref(), Some("offsite"));
        for bad in [
            "restore x",
            "restore --target rel x",
            "restore --in-place",
            "restore --in-place --target /t x",
            "restore --in-place --remote web3 --repository offsite x",
        ] {
            assert!(parse_str(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn help_everywhere() {
        assert_eq!(parse_str("").unwrap().command, Command::Help(None));
        assert_eq!(
            parse_str("run --help").unwrap().command,
            Command::Help(Some("run".into()))
        );
        assert_eq!(
            parse_str("help check").unwrap().command,
            Command::Help(Some("check".into()))
        );
        assert_eq!(
            parse_str("query --help").unwrap().command,
            Command::Help(Some("query".into()))
        );
        for c in COMMANDS {
            assert!(help(Some(c.name)).is_some());
        }
    }

    /// The names of a help table entry (`"-v, --verbose"`) and a value for
    /// it if it takes one (`"--host H"`).
    fn spellings(spec: &str) -> Vec<Vec<String>> {
        spec.split(", ")
            .map(|part| {
                let mut words = part.split_whitespace();
                let name = words.next().unwrap_or_default().to_string();
                let value = words.next().map(|v| match v {
                    "FILE" | "DIR" => "/x".to_string(),
                    "N" => "2".to_string(),
                    "TIME" => "7d".to_string(),
                    "SUBSET" => "5%".to_string(),
                    "ADDR" => "127.0.0.1:0".to_string(),
                    _ => "h".to_string(),
                });
                std::iter::once(name).chain(value).collect()
            })
            .collect()
    }

    fn parse_words(words: &[String]) -> Result<Cli, String> {
        parse(words.iter().map(OsString::from)).map_err(|e| e.to_string())
    }

    /// Regression: `tabacco --help` was refused while the help listed it.
    /// Every option the help table lists, in every spelling, is accepted
    /// where the help says and changes what is parsed.
    #[test]
    fn every_option_the_help_lists_is_parsed() {
        // What a command needs besides the option under test; the first
        // that parses is used.
        let tails: [&[&str]; 5] = [
            &[],
            &["bash"],
            &["x"],
            &["--in-place", "x"],
            &["--in-place", "--remote", "h", "x"],
        ];
        let mut checked = 0;
        for (spec, _) in GLOBAL_OPTIONS.iter().chain(TOP_OPTIONS) {
            for option in spellings(spec) {
                let mut words = option.clone();
                words.push("check".into());
                let with = parse_words(&words);
                assert!(with.is_ok(), "tabacco {words:?}: {with:?}");
                let without = parse_words(&["check".into()]);
                assert_ne!(with, without, "tabacco {words:?} changed nothing");
                checked += 1;
            }
        }
        for c in COMMANDS.iter().chain([&COMPLETION]) {
            let specs = c.options.iter().chain(GLOBAL_OPTIONS);
            for (spec, _) in specs {
                for option in spellings(spec) {
                    let parsed = tails.iter().find_map(|tail| {
                        let mut words = vec![c.name.to_string()];
                        words.extend(option.iter().cloned());
                        words.extend(tail.iter().map(|w| w.to_string()));
                        let with = parse_words(&words).ok()?;
                        let mut without = vec![c.name.to_string()];
                        without.extend(tail.iter().map(|w| w.to_string()));
                        Some((with, parse_words(&without)))
                    });
                    let Some((with, without)) = parsed else {
                        panic!("tabacco {} {option:?} is refused", c.name);
                    };
                    assert_ne!(
                        Ok(with),
                        without,
                        "tabacco {} {option:?} changed nothing",
                        c.name
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 40, "only {checked} options checked");
    }

    #[test]
    fn help_and_version_before_the_command() {
        for line in [
            "--help",
            "-h",
            "-v --help",
            "--config /c.yml -h run",
            "--help bogus",
        ] {
            assert_eq!(
                parse_str(line).unwrap().command,
                Command::Help(None),
                "{line}"
            );
        }
        for line in ["--version", "-V", "-q --version"] {
            assert_eq!(parse_str(line).unwrap().command, Command::Version, "{line}");
        }
        assert!(help(None).unwrap().contains("-V, --version"));
    }

    /// Regression: errors suggested 'tabacco --help', which failed.
    #[test]
    fn errors_suggest_the_help_that_explains_them() {
        let e = parse_str("restore x").unwrap_err();
        assert_eq!(
            e,
            "restore needs --target DIR or --in-place\nTry 'tabacco help restore'."
        );
        let e = parse_str("--bogus").unwrap_err();
        assert_eq!(e, "invalid option '--bogus'\nTry 'tabacco --help'.");
        let e = parse_str("frobnicate").unwrap_err();
        assert_eq!(e, "unknown command \"frobnicate\"\nTry 'tabacco --help'.");
    }

    #[test]
    fn completion_shells() {
        assert_eq!(
            parse_str("completion bash").unwrap().command,
            Command::Completion(Shell::Bash)
        );
        assert_eq!(
            parse_str("completion zsh").unwrap().command,
            Command::Completion(Shell::Zsh)
        );
        for bad in ["completion", "completion fish", "completion bash zsh"] {
            assert!(parse_str(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn usage_errors() {
        for bad in [
            "frobnicate",
            "check extra",
            "query",
            "query --versions 0 x",
            "query --versions x y",
            "run --config",
            "--bogus run",
        ] {
            assert!(parse_str(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn health_commands() {
        let cli = parse_str("status --host web1 --problems --json").unwrap();
        assert_eq!(
            cli.command,
            Command::Status(Status {
                host: Some("web1".into()),
                source: None,
                problems: true,
                proofs: false,
                format: Some(Format::Json),
            })
        );
        let cli = parse_str("history --source sql --failed --since 7d --limit 5").unwrap();
        assert_eq!(
            cli.command,
            Command::History(History {
                host: None,
                source: Some("sql".into()),
                failed: true,
                since: Some("7d".into()),
                limit: Some(5),
                format: None,
            })
        );
        let cli = parse_str("retire-host web1").unwrap();
        assert_eq!(cli.command, Command::RetireHost("web1".into()));
        for bad in [
            "history --limit 0",
            "retire-host",
            "retire-host a b",
            "status web1",
        ] {
            assert!(parse_str(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn dump_and_ls() {
        let cli = parse_str("dump --host web3 -o /tmp/x sql/db2").unwrap();
        assert_eq!(
            cli.command,
            Command::Dump(Dump {
                version: Version {
                    host: Some("web3".into()),
                    older_than: None,
                    repository: None,
                    atom: "sql/db2".into(),
                },
                file: None,
                output: Some(PathBuf::from("/tmp/x")),
            })
        );
        let cli =
            parse_str("ls --long --older-than 7d --repository offsite users/alice cur/").unwrap();
        assert_eq!(
            cli.command,
            Command::Ls(Ls {
                version: Version {
                    host: None,
                    older_than: Some("7d".into()),
                    repository: Some("offsite".into()),
                    atom: "users/alice".into(),
                },
                long: true,
                sub: Some("cur".into()),
            })
        );
        for bad in [
            "ls",
            "dump",
            "ls -o x a",
            "dump --long a",
            "ls a b c",
            "ls a ../b",
            "dump a /b",
        ] {
            assert!(parse_str(bad).is_err(), "{bad:?} accepted");
        }
    }
}
