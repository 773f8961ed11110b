//! The commands that ask the metadb about the fleet: `query` (recorded
//! backups), `history` (attempts), `status` (each source's health) and
//! `retire-host`.

use super::{global, is_help, next, unexpected, Arg, Cli, Command, Format};
use lexopt::ValueExt;

/// `tabacco query`: which recorded backups, and how they are printed.
#[derive(Debug, Default, PartialEq)]
pub struct QueryArgs {
    pub host: Option<String>,
    pub versions: Option<u32>,
    pub older_than: Option<String>,
    pub format: Option<Format>,
    pub patterns: Vec<String>,
}

/// `tabacco history`: which attempts.
#[derive(Debug, Default, PartialEq)]
pub struct HistoryArgs {
    pub host: Option<String>,
    pub source: Option<String>,
    pub failed: bool,
    pub since: Option<String>,
    pub limit: Option<u32>,
    pub format: Option<Format>,
}

/// `tabacco status`: which rows of the fleet's status.
#[derive(Debug, Default, PartialEq)]
pub struct StatusArgs {
    pub host: Option<String>,
    pub source: Option<String>,
    pub problems: bool,
    /// Show when repositories and atoms were last proven restorable instead.
    pub proofs: bool,
    pub format: Option<Format>,
}

/// `query`: options and at least one pattern.
pub(super) fn query(cli: &mut Cli, parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
    let mut q = QueryArgs::default();
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

/// `history`: options only.
pub(super) fn history(
    cli: &mut Cli,
    parser: &mut lexopt::Parser,
) -> Result<Command, lexopt::Error> {
    let mut h = HistoryArgs::default();
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

/// `status`: options only.
pub(super) fn status(cli: &mut Cli, parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
    let mut s = StatusArgs::default();
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

/// `retire-host`: one host name.
pub(super) fn retire_host(
    cli: &mut Cli,
    parser: &mut lexopt::Parser,
) -> Result<Command, lexopt::Error> {
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
