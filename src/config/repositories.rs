//! The repositories a host uses, beyond what restic needs to open one
//! (`restic::Repository`): the copies its snapshots also go to, whether a
//! missing one is created on first use, and this host's part in
//! maintaining them. Built here from agent.yml's `repository:`, `copies:`,
//! `init`, `repository_timeout`, `maintenance:`, `lease_ttl` and
//! `check_slices`; the rest of agent.yml is `agent`'s.

use super::error::{Entry, Error, Errors};
use super::{raw, value, Config};
use crate::base::name;
use crate::base::retention::Retention;
use crate::metadb;
use crate::restic::{self, Password, Repository};
use std::path::Path;
use std::time::Duration;

/// One configured copy.
#[derive(Clone, Debug)]
pub struct Copy {
    pub name: String,
    pub repository: Repository,
    /// Its own retention; the primary's policies when absent.
    pub retention: Option<Retention>,
}

/// A repository of `repositories:`: one this host reads records of other
/// hosts from (restore, dump, ls, a drill) when they are held there, and
/// never backs up to, prunes, checks or creates.
#[derive(Clone, Debug)]
pub struct Further {
    pub name: String,
    pub repository: Repository,
}

/// How long a lease lasts unless renewed (`lease_ttl`).
const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(600);

/// What this host does to its repository besides backing up
/// (`maintenance:` in agent.yml).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Maintenance {
    /// Key absent: prune its own snapshots by its own sources' policies,
    /// and check.
    #[default]
    Own,
    /// `false`: never forget, prune or check (its credentials may be
    /// append-only).
    Never,
    /// `true`: prune every host's snapshots by their published policies,
    /// and check.
    All,
}

impl Maintenance {
    /// As `tabacco check` shows it (which leaves the default out).
    pub fn describe(self) -> &'static str {
        match self {
            Maintenance::Own => "this host's snapshots (prunes them, checks)",
            Maintenance::Never => "false (never forgets, prunes or checks)",
            Maintenance::All => {
                "true (prunes every host's snapshots by their published policies, checks)"
            }
        }
    }
}

/// Who creates this host's repositories (`init:` in agent.yml).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Init {
    /// Only `tabacco init`: a missing repository fails what needs it.
    #[default]
    Manual,
    /// `auto`: a backup creates a missing repository (or copy) first, as
    /// `tabacco init` would, unless this host used one there before.
    Auto,
}

/// What `init:` says.
pub(super) fn init(entry: &Entry, text: Option<&str>) -> Result<Init, Error> {
    match text {
        None | Some("manual") => Ok(Init::Manual),
        Some("auto") => Ok(Init::Auto),
        Some(other) => Err(entry.invalid(
            "init",
            format!("init must be auto or manual, not {other:?}"),
        )),
    }
}

/// `repository_timeout`, at least a second.
pub(super) fn timeout(entry: &Entry, text: Option<&str>) -> Result<Option<Duration>, Error> {
    match value::duration(entry, "repository_timeout", text)? {
        Some(t) if t < Duration::from_secs(1) => Err(entry.invalid(
            "repository_timeout",
            format!(
                "repository_timeout must be at least 1s, not {:?}",
                text.unwrap_or_default()
            ),
        )),
        t => Ok(t),
    }
}

/// Into how many slices `verify`'s check reads the repository back unless
/// `check_slices` says otherwise.
const DEFAULT_CHECK_SLICES: u32 = 10;

/// What `maintenance:` says this host does.
pub(super) fn maintenance(raw: Option<bool>) -> Maintenance {
    match raw {
        None => Maintenance::Own,
        Some(false) => Maintenance::Never,
        Some(true) => Maintenance::All,
    }
}

/// `lease_ttl`, which the metadb accepts between 1s and 24h.
pub(super) fn lease_ttl(entry: &Entry, text: Option<&str>) -> Result<Duration, Error> {
    let Some(ttl) = value::duration(entry, "lease_ttl", text)? else {
        return Ok(DEFAULT_LEASE_TTL);
    };
    match (1..=metadb::store::MAX_LEASE_SECS).contains(&ttl.as_secs()) {
        true => Ok(ttl),
        false => Err(entry.invalid(
            "lease_ttl",
            format!(
                "lease_ttl must be between 1s and 24h, not {:?}",
                text.unwrap_or_default()
            ),
        )),
    }
}

/// `check_slices`, at most as many as the metadb records.
pub(super) fn check_slices(entry: &Entry, raw: Option<u32>) -> Result<u32, Error> {
    match raw {
        Some(n) if n > metadb::store::MAX_SLICES => Err(entry.invalid(
            "check_slices",
            format!("check_slices {n} is over {}", metadb::store::MAX_SLICES),
        )),
        Some(n) => Ok(n),
        None => Ok(DEFAULT_CHECK_SLICES),
    }
}

/// The copies of `copies:`, each unlike `primary` and the others.
pub(super) fn copies(
    raw: Vec<raw::Copy>,
    primary: &Repository,
    entry: &Entry,
) -> Result<Vec<Copy>, Error> {
    let mut copies: Vec<Copy> = Vec::new();
    for copy in raw {
        // Located at `copies:`: the copy's keys share names with the
        // repository's.
        let entry = entry.under("copies", format!("copy {:?}", copy.name));
        name::validate_source(&copy.name).map_err(entry.bad_name("name", "copy"))?;
        if copy.name == crate::wire::api::PRIMARY {
            return Err(entry.invalid("name", "the name primary is the repository's own"));
        }
        if copies.iter().any(|c| c.name == copy.name) {
            return Err(entry.invalid("name", "defined twice"));
        }
        let retention = value::retention(&entry, "retention", copy.retention)?;
        let repository = repository(copy.params, primary, &entry)?;
        let taken = |r: &Repository| r.uri == repository.uri;
        if taken(primary) || copies.iter().any(|c| taken(&c.repository)) {
            return Err(entry.invalid("uri", "its uri is another repository's"));
        }
        copies.push(Copy {
            name: copy.name,
            repository,
            retention,
        });
    }
    Ok(copies)
}

/// The repositories of `repositories:`, each named unlike `primary`, the
/// copies and the others, and at another uri.
pub(super) fn further(
    raw: Vec<raw::Further>,
    primary: &Repository,
    copies: &[Copy],
    entry: &Entry,
) -> Result<Vec<Further>, Error> {
    let mut further: Vec<Further> = Vec::new();
    for r in raw {
        let entry = entry.under("repositories", format!("repository {:?}", r.name));
        name::validate_source(&r.name).map_err(entry.bad_name("name", "repository"))?;
        if r.name == crate::wire::api::PRIMARY || copies.iter().any(|c| c.name == r.name) {
            return Err(entry.invalid("name", "it is the name of the repository or a copy"));
        }
        if further.iter().any(|f| f.name == r.name) {
            return Err(entry.invalid("name", "defined twice"));
        }
        let repository = repository(r.params, primary, &entry)?;
        let taken = |other: &Repository| other.uri == repository.uri;
        if taken(primary)
            || copies.iter().any(|c| taken(&c.repository))
            || further.iter().any(|f| taken(&f.repository))
        {
            return Err(entry.invalid("uri", "its uri is another repository's"));
        }
        further.push(Further {
            name: r.name,
            repository,
        });
    }
    Ok(further)
}

/// The repository `params` describe; what they leave out (the password of
/// a copy, its cache) is `base`'s, which has no uri for the primary.
pub(super) fn repository(
    params: raw::RepositoryParams,
    base: &Repository,
    entry: &Entry,
) -> Result<Repository, Error> {
    check_uri(&params.uri, entry)?;
    let password = password(params.password, params.password_file, base, entry)?;
    let cache_dir = match params.cache_dir {
        Some(dir) => value::absolute(entry, "cache_dir", &dir)?,
        None => base.cache_dir.clone(),
    };
    let options = options(
        params.compression,
        params.limit_upload,
        params.limit_download,
        entry,
    )?;
    Ok(Repository {
        options,
        uri: params.uri,
        password,
        cache_dir,
        env: params.env,
        binary: base.binary.clone(),
        retry_lock: base.retry_lock,
        timeout: base.timeout,
        known_ids: base.known_ids.clone(),
    })
}

/// Refuses an empty uri, and a relative local one.
fn check_uri(uri: &str, entry: &Entry) -> Result<(), Error> {
    if uri.trim().is_empty() {
        return Err(entry.invalid("uri", "repository uri is empty"));
    }
    if restic::is_local(uri) && !Path::new(uri).is_absolute() {
        return Err(entry.invalid(
            "uri",
            format!("a local repository uri must be absolute, not {uri:?}"),
        ));
    }
    Ok(())
}

/// The password of `password` or `password_file`; a copy's is `base`'s
/// unless it has its own.
fn password(
    password: Option<String>,
    file: Option<String>,
    base: &Repository,
    entry: &Entry,
) -> Result<Password, Error> {
    match (password, file) {
        (Some(p), None) if p.trim().is_empty() => {
            Err(entry.invalid("password", "repository password is empty"))
        }
        (Some(p), None) => Ok(Password::Literal(p)),
        (None, Some(f)) => Ok(Password::File(value::absolute(entry, "password_file", &f)?)),
        (Some(_), Some(_)) => Err(entry.invalid(
            "password_file",
            "set either password or password_file, not both",
        )),
        (None, None) if !base.uri.is_empty() => Ok(base.password.clone()),
        (None, None) => {
            Err(entry.invalid("params", "the repository needs password or password_file"))
        }
    }
}

/// restic's options for `compression`, `limit_upload` and
/// `limit_download`.
fn options(
    compression: Option<String>,
    limit_upload: Option<u32>,
    limit_download: Option<u32>,
    entry: &Entry,
) -> Result<Vec<String>, Error> {
    let mut options = Vec::new();
    if let Some(mode) = compression {
        if !["auto", "off", "max"].contains(&mode.as_str()) {
            return Err(entry.invalid(
                "compression",
                format!("compression must be auto, off or max, not {mode:?}"),
            ));
        }
        options.extend(["--compression".to_string(), mode]);
    }
    for (key, limit) in [
        ("limit_upload", limit_upload),
        ("limit_download", limit_download),
    ] {
        match limit {
            Some(0) => {
                return Err(entry.invalid(
                    key,
                    format!("{key} is in KiB/s and must be at least 1 (leave it out for no limit)"),
                ))
            }
            Some(kib) => options.extend([format!("--{}", key.replace('_', "-")), kib.to_string()]),
            None => {}
        }
    }
    Ok(options)
}

/// Every password file of `config`'s repository and copies (each file once)
/// that restic could not use, located at its key in agent.yml.
pub(super) fn check_password_files(config: &Config) -> Result<(), Errors> {
    let entry = Entry::new(&config.origin);
    let copies = config.copies.iter().map(|c| {
        let entry = entry.under("copies", format!("copy {:?}", c.name));
        (entry, "params", &c.repository)
    });
    let primary = (entry.clone(), "repository.params", &config.repository);
    let mut seen = Vec::new();
    let mut errors = Errors(Vec::new());
    for (entry, key, repository) in std::iter::once(primary).chain(copies) {
        let Password::File(file) = &repository.password else {
            continue;
        };
        if seen.contains(&file) {
            continue;
        }
        seen.push(file);
        let shown = file.display();
        let why = match std::fs::read(file) {
            Err(e) => format!("{key}.password_file {shown}: {e}"),
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => {
                format!("{key}.password_file {shown} is empty")
            }
            Ok(_) => continue,
        };
        errors.0.push(entry.invalid("password_file", why));
    }
    errors.and(())
}
