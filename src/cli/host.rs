//! The commands that act on this host: its daemons (`agent`, `metadb`),
//! the jobs run at once (`run`, `prune`, `verify`), `check` and `init`,
//! and its repository as restic sees it (`restic`, `snapshots`, `unlock`).

use super::{global, is_help, next, unexpected, Arg, Cli, Command, Format};
use lexopt::ValueExt;

/// `tabacco snapshots`: which repository, whose snapshots, how printed.
#[derive(Debug, Default, PartialEq)]
pub struct SnapshotsArgs {
    pub repository: Option<String>,
    pub host: Option<String>,
    pub format: Option<Format>,
}

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

/// `restic`: an optional `--repository NAME` first, then restic's own
/// arguments, passed through untouched (`--help` first is tabacco's).
pub(super) fn restic(parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
    let mut raw = parser.raw_args()?;
    if raw.next_if(|a| a == "--help" || a == "-h").is_some() {
        return Ok(Command::Help(Some("restic".into())));
    }
    let mut repository = None;
    if raw.next_if(|a| a == "--repository").is_some() {
        let name = raw.next().ok_or("--repository needs a NAME")?;
        repository = Some(name.string()?);
    } else if let Some(option) =
        raw.next_if(|a| a.to_str().is_some_and(|a| a.starts_with("--repository=")))
    {
        let option = option.string()?;
        repository = option.strip_prefix("--repository=").map(str::to_string);
    }
    raw.next_if(|a| a == "--");
    let args: Vec<std::ffi::OsString> = raw.collect();
    if args.is_empty() {
        return Err("restic needs restic's arguments (e.g. 'tabacco restic snapshots')".into());
    }
    Ok(Command::Restic { repository, args })
}

/// `snapshots`: options only.
pub(super) fn snapshots(
    cli: &mut Cli,
    parser: &mut lexopt::Parser,
) -> Result<Command, lexopt::Error> {
    let mut s = SnapshotsArgs::default();
    while let Some(arg) = next(parser)? {
        match arg {
            _ if is_help(&arg) => return Ok(Command::Help(Some("snapshots".into()))),
            Arg::Long(ref opt) if opt == "repository" => {
                s.repository = Some(parser.value()?.string()?)
            }
            Arg::Long(ref opt) if opt == "host" => s.host = Some(parser.value()?.string()?),
            Arg::Long(ref opt) if opt == "json" => s.format = Some(Format::Json),
            Arg::Long(ref opt) if opt == "table" => s.format = Some(Format::Table),
            _ if global(cli, &arg, parser)? => {}
            _ => return Err(unexpected(arg)),
        }
    }
    Ok(Command::Snapshots(s))
}

/// `unlock`: `--repository NAME` only.
pub(super) fn unlock(cli: &mut Cli, parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
    let mut repository = None;
    while let Some(arg) = next(parser)? {
        match arg {
            _ if is_help(&arg) => return Ok(Command::Help(Some("unlock".into()))),
            Arg::Long(ref opt) if opt == "repository" => {
                repository = Some(parser.value()?.string()?)
            }
            _ if global(cli, &arg, parser)? => {}
            _ => return Err(unexpected(arg)),
        }
    }
    Ok(Command::Unlock { repository })
}
