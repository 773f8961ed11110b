//! The commands that get data back: `restore` (atoms onto this host),
//! and `dump` and `ls` (one recorded version of one atom), with the parts
//! of a file atom they may be limited to.

use super::{global, is_help, next, unexpected, Arg, Cli, Command};
use lexopt::ValueExt;
use std::path::PathBuf;

/// `tabacco restore`: which atoms, which versions, and where to.
#[derive(Debug, PartialEq)]
pub struct RestoreArgs {
    pub host: Option<String>,
    /// `--any-host`: the newest version of any host, not this host's.
    pub any_host: bool,
    pub older_than: Option<String>,
    pub target: crate::wire::target::Target,
    /// `--overwrite`: replace files and links in the way.
    pub overwrite: bool,
    pub dry_run: bool,
    /// Ask this host's agent to restore, through the metadb.
    pub remote: Option<String>,
    /// With `remote`: follow the request to its end.
    pub wait: bool,
    /// `--path`: only these parts of each file atom (relative globs).
    pub parts: Vec<String>,
    /// `--repository`: read from this one (`primary` or a copy) only.
    pub repository: Option<String>,
    /// `--as NAME`: in place, the one atom restored under this name.
    pub rename: Option<String>,
    pub patterns: Vec<String>,
}

/// Which recorded version of one atom `dump` and `ls` look into.
#[derive(Debug, Default, PartialEq)]
pub struct VersionArgs {
    pub host: Option<String>,
    /// `--any-host`: the newest version of any host, not this host's.
    pub any_host: bool,
    pub older_than: Option<String>,
    /// `--repository`: read from this one (`primary` or a copy) only.
    pub repository: Option<String>,
    pub atom: String,
}

/// `tabacco dump`: what to write, and where.
#[derive(Debug, PartialEq)]
pub struct DumpArgs {
    pub version: VersionArgs,
    /// A file of a file atom, relative to its path.
    pub file: Option<String>,
    /// Where to write; standard output if absent.
    pub output: Option<PathBuf>,
}

/// `tabacco ls`: what to list, and how.
#[derive(Debug, PartialEq)]
pub struct LsArgs {
    pub version: VersionArgs,
    pub long: bool,
    /// Only what is under this part of the atom.
    pub sub: Option<String>,
}

const ANY_HOST: &str = "give either --host H or --any-host, not both";

/// `restore`: options, a target, patterns, and the options that go
/// together.
pub(super) fn restore(
    cli: &mut Cli,
    parser: &mut lexopt::Parser,
) -> Result<Command, lexopt::Error> {
    let (mut host, mut older_than, mut target, mut dry_run) = (None, None, None, false);
    let (mut remote, mut wait, mut repository, mut rename) = (None, false, None, None);
    let (mut any_host, mut overwrite) = (false, false);
    let (mut parts, mut patterns) = (Vec::new(), Vec::new());
    while let Some(arg) = next(parser)? {
        match arg {
            _ if is_help(&arg) => return Ok(Command::Help(Some("restore".into()))),
            Arg::Long(ref name) => match name.as_str() {
                "host" => host = Some(parser.value()?.string()?),
                "any-host" => any_host = true,
                "overwrite" => overwrite = true,
                "older-than" => older_than = Some(parser.value()?.string()?),
                "target" | "in-place" if target.is_some() => {
                    return Err("give either --target DIR or --in-place, once".into())
                }
                "target" => {
                    let dir = PathBuf::from(parser.value()?);
                    if !dir.is_absolute() {
                        return Err("--target needs an absolute directory".into());
                    }
                    target = Some(crate::wire::target::Target::at(dir));
                }
                "in-place" => target = Some(crate::wire::target::Target::InPlace),
                "dry-run" => dry_run = true,
                "remote" => remote = Some(parser.value()?.string()?),
                "wait" => wait = true,
                "path" => parts.push(part(parser.value()?.string()?)?),
                "repository" => repository = Some(parser.value()?.string()?),
                "as" => {
                    let name = parser.value()?.string()?;
                    crate::base::name::validate(&name).map_err(|e| format!("--as: {e}"))?;
                    rename = Some(name);
                }
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
    if any_host && host.is_some() {
        return Err(ANY_HOST.into());
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
    if rename.is_some() && (target != crate::wire::target::Target::InPlace || remote.is_some()) {
        return Err("--as restores one pipe atom in place on this host: give --in-place, not --target or --remote".into());
    }
    Ok(Command::Restore(RestoreArgs {
        host,
        any_host,
        older_than,
        target,
        overwrite,
        dry_run,
        remote,
        wait,
        parts,
        repository,
        rename,
        patterns,
    }))
}

/// `dump` and `ls`: one atom's newest matching version, and a path in it.
pub(super) fn look_into(
    cli: &mut Cli,
    parser: &mut lexopt::Parser,
    name: &str,
) -> Result<Command, lexopt::Error> {
    let mut version = VersionArgs::default();
    let (mut long, mut output, mut values) = (false, None, Vec::new());
    while let Some(arg) = next(parser)? {
        match arg {
            _ if is_help(&arg) => return Ok(Command::Help(Some(name.into()))),
            Arg::Long(ref opt) if opt == "host" => version.host = Some(parser.value()?.string()?),
            Arg::Long(ref opt) if opt == "any-host" => version.any_host = true,
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
    if version.any_host && version.host.is_some() {
        return Err(ANY_HOST.into());
    }
    let mut values = values.into_iter();
    version.atom = values
        .next()
        .ok_or_else(|| format!("{name} needs an ATOM (e.g. 'sql/db2')"))?;
    let path = values.next().map(part).transpose()?;
    Ok(match name {
        "dump" => Command::Dump(DumpArgs {
            version,
            file: path,
            output,
        }),
        _ => Command::Ls(LsArgs {
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
