//! The commands that act on this host: its daemons (`agent`, `metadb`),
//! the jobs run at once (`run`, `prune`, `verify`), and `check`.

use super::{global, is_help, next, unexpected, Arg, Cli, Command};
use lexopt::ValueExt;

/// `agent` and `metadb`: daemons whose only own option is `--http-addr`.
pub(super) fn server(
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
pub(super) fn sources_command(
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

/// `check`: `--offline`.
pub(super) fn check(cli: &mut Cli, parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
    let mut offline = false;
    while let Some(arg) = next(parser)? {
        match arg {
            _ if is_help(&arg) => return Ok(Command::Help(Some("check".into()))),
            Arg::Long(ref opt) if opt == "offline" => offline = true,
            _ if global(cli, &arg, parser)? => {}
            _ => return Err(unexpected(arg)),
        }
    }
    Ok(Command::Check { offline })
}

/// `verify`: its options and source names.
pub(super) fn verify(cli: &mut Cli, parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
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
