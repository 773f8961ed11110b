//! The command table: each command's usage, summary and options, from
//! which `--help`, `tabacco help COMMAND` and the completion scripts
//! (`cmd::completion`) are made, so that none drifts from another; and the
//! parsers of the `help` and `completion` commands themselves.

use super::{global, is_help, next, unexpected, Arg, Cli, Command, Shell};
use lexopt::ValueExt;

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
        name: "init",
        usage: "tabacco init",
        summary: "create the repository and its copies where they do not exist yet",
        options: &[],
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
        usage: "tabacco restore [--host H | --any-host] [--older-than TIME] (--target DIR | --in-place) [--overwrite] [--path SUB]... [--repository NAME] [--as NAME] [--dry-run] [--remote HOST [--wait]] PATTERN...",
        summary: "restore the newest version of each atom matching shell glob PATTERNs onto this host",
        options: &[
            ("--host H", "restore what host H backed up (default: this host's records only)"),
            ("--any-host", "the newest version of any host"),
            ("--older-than TIME", "the newest version older than TIME (RFC 3339, or an age like 36h, 7d)"),
            ("--target DIR", "restore every atom as files under DIR: file atoms at DIR/<original path>, pipe atoms as DIR/<atom>"),
            ("--in-place", "restore where this host's configuration puts each atom; pipe atoms feed restore_command (also --target /)"),
            ("--overwrite", "replace existing files and symlinks that differ (default: fail, naming them)"),
            ("--path SUB", "only SUB of each file atom (relative to its path; a glob; repeatable)"),
            ("--repository NAME", "read from repository NAME only: primary, or a copy (default: the primary, else a copy that holds it)"),
            ("--as NAME", "with --in-place: the one pipe atom matched goes into the live service as NAME (${restore.name}), e.g. a new database"),
            ("--dry-run", "print the plan, restore nothing; exit 1 if the restore would fail"),
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
        usage: "tabacco dump [--host H | --any-host] [--older-than TIME] [--repository NAME] [-o FILE] ATOM [PATH]",
        summary: "write a pipe atom's stream, or one file of a file atom, to stdout or FILE; restore nothing",
        options: &[
            ("--host H", "what host H backed up (default: this host's records only)"),
            ("--any-host", "the newest version of any host"),
            ("--older-than TIME", "the newest version older than TIME (RFC 3339, or an age like 36h, 7d)"),
            ("--repository NAME", "read from repository NAME only: primary, or a copy (default: the primary, else a copy that holds it)"),
            ("-o, --output FILE", "write to FILE, a new file (default: standard output)"),
        ],
    },
    Help {
        name: "ls",
        usage: "tabacco ls [--host H | --any-host] [--older-than TIME] [--repository NAME] [--long] ATOM [PATH]",
        summary: "list the files of the newest version of a file atom (JSON when piped)",
        options: &[
            ("--host H", "what host H backed up (default: this host's records only)"),
            ("--any-host", "the newest version of any host"),
            ("--older-than TIME", "the newest version older than TIME (RFC 3339, or an age like 36h, 7d)"),
            ("--repository NAME", "read from repository NAME only: primary, or a copy (default: the primary, else a copy that holds it)"),
            ("--long", "with type, size, mode and modification time"),
        ],
    },
    Help {
        name: "check",
        usage: "tabacco check [--offline]",
        summary: "validate the configuration, open the repositories, print the resolved sources and atoms",
        options: &[("--offline", "do not open the repository and its copies")],
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
        name: "snapshots",
        usage: "tabacco snapshots [--repository NAME] [--host H] [--json|--table]",
        summary: "list the repository's snapshots, newest first, with the atoms each holds",
        options: &[
            ("--repository NAME", "list repository NAME: primary, or a copy (default: the primary)"),
            ("--host H", "only snapshots made on host H"),
            ("--json", "print a JSON array (the default when stdout is not a terminal)"),
            ("--table", "print a table (the default on a terminal)"),
        ],
    },
    Help {
        name: "unlock",
        usage: "tabacco unlock [--repository NAME]",
        summary: "remove the repository's stale locks; report live ones (exit 1 if any is left)",
        options: &[("--repository NAME", "unlock repository NAME: primary, or a copy (default: the primary)")],
    },
    Help {
        name: "restic",
        usage: "tabacco restic [--repository NAME] [--] ARGS...",
        summary: "run restic with ARGS on the repository, with the configuration's credentials",
        options: &[("--repository NAME", "first: repository NAME, primary or a copy (default: the primary)")],
    },
    Help {
        name: "reindex",
        usage: "tabacco reindex",
        summary: "rebuild the metadb from the repository's snapshots",
        options: &[],
    },
    Help { name: "version", usage: "tabacco version", summary: "print the version", options: &[] },
    Help {
        name: "completion",
        usage: "tabacco completion bash|zsh|fish",
        summary: "print a completion script for the shell (see tabacco(1) for installing it)",
        options: &[],
    },
    Help { name: "help", usage: "tabacco help [COMMAND]", summary: "show help", options: &[] },
];

/// The help entry of command `name`.
pub(super) fn entry(name: &str) -> Option<&'static Help> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// The text of `tabacco help [COMMAND]`; `None` for an unknown command.
pub fn text(command: Option<&str>) -> Option<String> {
    match command {
        None => {
            let mut out = String::from("tabacco: backups of multi-tenant services, by name, on restic\n\nUsage: tabacco [OPTIONS] COMMAND [ARGS]\n\nCommands:\n");
            let width = COMMANDS.iter().map(|c| c.name.len()).max().unwrap_or(0);
            for c in COMMANDS {
                out.push_str(&format!("  {:<width$}  {}\n", c.name, c.summary));
            }
            out.push_str("\nOptions:\n");
            let width = option_width(&[GLOBAL_OPTIONS, TOP_OPTIONS]);
            out.push_str(&option_lines(GLOBAL_OPTIONS, width));
            out.push_str(&option_lines(TOP_OPTIONS, width));
            out.push_str("\nExit status: 0 ok, 1 a job failed, 2 usage or configuration error.\nSee tabacco(1) and 'tabacco help COMMAND'.\n");
            Some(out)
        }
        Some(name) => entry(name).map(|c| {
            let mut out = format!("Usage: {}\n\n{}\n", c.usage, c.summary);
            let width = option_width(&[c.options, GLOBAL_OPTIONS]);
            if !c.options.is_empty() {
                out.push_str("\nOptions:\n");
                out.push_str(&option_lines(c.options, width));
            }
            out.push_str("\nGlobal options:\n");
            out.push_str(&option_lines(GLOBAL_OPTIONS, width));
            out
        }),
    }
}

/// The column a help page's options are aligned to: after the longest of
/// `lists` and a space, and at least 22 wide, so that two spaces at least
/// part every option from its description.
fn option_width(lists: &[&[(&str, &str)]]) -> usize {
    let all = lists.iter().flat_map(|list| list.iter());
    let longest = all.map(|(option, _)| option.len()).max().unwrap_or(0);
    (longest + 1).max(22)
}

/// `list`, an option and its description a line, aligned to `width`.
fn option_lines(list: &[(&str, &str)], width: usize) -> String {
    list.iter()
        .map(|(option, description)| format!("  {option:<width$} {description}\n"))
        .collect()
}

/// `completion`: one shell, bash, zsh or fish.
pub(super) fn completion(
    cli: &mut Cli,
    parser: &mut lexopt::Parser,
) -> Result<Command, lexopt::Error> {
    let mut shell = None;
    while let Some(arg) = next(parser)? {
        match arg {
            _ if is_help(&arg) => return Ok(Command::Help(Some("completion".into()))),
            Arg::Value(name) if shell.is_none() => {
                shell = Some(match name.string()?.as_str() {
                    "bash" => Shell::Bash,
                    "zsh" => Shell::Zsh,
                    "fish" => Shell::Fish,
                    other => {
                        return Err(
                            format!("no completion for shell {other:?}: bash, zsh or fish").into(),
                        )
                    }
                })
            }
            _ if global(cli, &arg, parser)? => {}
            _ => return Err(unexpected(arg)),
        }
    }
    shell
        .map(Command::Completion)
        .ok_or_else(|| "completion needs a shell: bash, zsh or fish".into())
}

/// `help`: the command to help on, if any.
pub(super) fn help_topic(
    cli: &mut Cli,
    parser: &mut lexopt::Parser,
) -> Result<Command, lexopt::Error> {
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
