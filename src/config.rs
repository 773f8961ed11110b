//! Loading and validating the agent configuration: `agent.yml`, and the
//! `sources/*.yml` and `handlers/*.yml` beside it. Everything that can be
//! checked before a backup runs is checked here, and every error names the
//! file, the line and the key or value at fault.
//!
//! Resolution turns the serde shapes of [`raw`] (private to this module)
//! into the validated types of the modules that own their meaning:
//! `restic::Repository`, `retention::Retention`, `handler::Params` (checked
//! by `Handler::new`), `atom::DatasetSpec`, `notify::Target`,
//! `metadb::client::connection::Connection`, and the `source::Source` that
//! holds them; `repositories` holds the copies and this host's part in
//! maintenance. Files are read by `base::yaml`.

mod raw;
pub mod repositories;
pub mod source;

use crate::base::name;
use crate::base::retention::{Retention, Within};
use crate::base::schedule::Schedule;
use crate::base::time;
use crate::base::token::Token;
use crate::base::yaml::{self, Error, Origin};
use crate::config::source::{Datasets, Hooks, Source};
use crate::handler::atom::{AtomSpec, DatasetSpec};
use crate::handler::{self, Handler};
use crate::metadb;
use crate::process::shell::Priority;
use crate::report::notify;
use crate::restic::{self, Password, Repository};
use repositories::Copy;
use repositories::Maintenance;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the agent configuration lives unless `--config` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/tabacco/agent.yml";

/// Catch-up runs start within this long after the agent unless
/// `catch_up_spread` says otherwise.
const DEFAULT_CATCH_UP_SPREAD: Duration = Duration::from_secs(300);

/// `verify`'s check reads the repository back in this many slices unless
/// `check_slices` says otherwise.
const DEFAULT_CHECK_SLICES: u32 = 10;

/// The validated agent configuration with its sources.
#[derive(Clone, Debug)]
pub struct Config {
    pub hostname: String,
    pub repository: Repository,
    /// Further repositories each source's snapshots are copied into.
    pub copies: Vec<Copy>,
    pub retention: Option<Retention>,
    pub prune_schedule: Option<Schedule>,
    pub verify_schedule: Option<Schedule>,
    /// Absent: the embedded metadb in `work_dir`.
    pub metadb: Option<metadb::client::connection::Connection>,
    pub concurrency: usize,
    pub dry_run: bool,
    pub priority: Priority,
    pub work_dir: PathBuf,
    pub random_seed_file: PathBuf,
    /// Told of every source's backups, unless a source has its own.
    pub notify: Vec<notify::Target>,
    /// Whether prune and verify, and sources without their own
    /// `catch_up`, make up a run missed while the agent was down.
    pub catch_up: bool,
    /// Catch-up runs start within this long after the agent.
    pub catch_up_spread: Duration,
    /// What this host prunes and checks (`maintenance:`).
    pub maintenance: Maintenance,
    /// How long a maintenance lease lasts unless renewed.
    pub lease_ttl: Duration,
    /// Into how many slices `verify`'s check reads the repository's data
    /// back, one a run (0: it reads none back).
    pub check_slices: u32,
    pub sources: Vec<Source>,
}

/// Every problem found in a configuration, one per line.
#[derive(Debug)]
pub struct Errors(pub Vec<Error>);

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl From<Error> for Errors {
    fn from(e: Error) -> Errors {
        Errors(vec![e])
    }
}

impl Config {
    /// Reads `path` and the `sources/` and `handlers/` directories beside it.
    pub fn load(path: &Path) -> Result<Config, Errors> {
        let (agent, origin) = yaml::read_one::<raw::Agent>(path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut errors = Vec::new();
        let config = resolve_agent(agent, &origin)
            .map_err(|e| errors.push(e))
            .ok();
        let handlers = read_dir_entries::<raw::Handler>(&dir.join("handlers"), &mut errors);
        let templates = resolve_handlers(handlers, &mut errors);
        // Without agent.yml's copies (it failed), a source's are not judged.
        let copies: Option<Vec<String>> = config
            .as_ref()
            .map(|c| c.copies.iter().map(|c| c.name.clone()).collect());
        let sources = read_dir_entries::<raw::Source>(&dir.join("sources"), &mut errors);
        let mut seen: HashMap<String, Origin> = HashMap::new();
        let mut resolved = Vec::new();
        for (raw, origin) in sources {
            if let Some(first) = seen.get(&raw.name) {
                let msg = format!(
                    "duplicate source name {:?} (first defined at {first})",
                    raw.name
                );
                errors.push(Error::new(origin.at("name"), msg));
                continue;
            }
            seen.insert(raw.name.clone(), origin.clone());
            match resolve_source(raw, origin, &templates, copies.as_deref()) {
                Ok(source) => resolved.push(source),
                Err(e) => errors.push(e),
            }
        }
        match config {
            Some(config) if errors.is_empty() => Ok(Config {
                sources: resolved,
                ..config
            }),
            _ => Err(Errors(errors)),
        }
    }

    /// The targets told of `source`'s backups: its own `notify:` list,
    /// which replaces agent.yml's, or agent.yml's.
    pub fn targets<'a>(&'a self, source: &'a Source) -> &'a [notify::Target] {
        source.notify.as_deref().unwrap_or(&self.notify)
    }

    /// The copies `source`'s snapshots go to.
    pub fn copies_of(&self, source: &Source) -> Vec<&Copy> {
        let named = |c: &&Copy| source.copies.contains(&c.name);
        self.copies.iter().filter(named).collect()
    }

    /// The retention policy `source`'s snapshots are pruned by: its own,
    /// else the agent's; none keeps everything.
    pub fn retention_of<'a>(&'a self, source: &'a Source) -> Option<&'a Retention> {
        source.retention.as_ref().or(self.retention.as_ref())
    }

    /// Whether `source` makes up a run missed while the agent was down.
    pub fn catches_up(&self, source: &Source) -> bool {
        source.catch_up.unwrap_or(self.catch_up)
    }

    /// The sources called `names`, or all of them when `names` is empty.
    pub fn select(&self, names: &[String]) -> Result<Vec<&Source>, String> {
        if names.is_empty() {
            return Ok(self.sources.iter().collect());
        }
        names
            .iter()
            .map(|n| {
                self.sources.iter().find(|s| &s.name == n).ok_or_else(|| {
                    let known: Vec<&str> = self.sources.iter().map(|s| s.name.as_str()).collect();
                    match known.is_empty() {
                        true => format!("no source named {n:?}: no source is configured"),
                        false => format!("no source named {n:?}; configured: {}", known.join(" ")),
                    }
                })
            })
            .collect()
    }

    /// The embedded metadb's database file.
    pub fn embedded_db_path(&self) -> PathBuf {
        metadb::embedded_path(&self.work_dir)
    }
}

fn read_dir_entries<T: serde::de::DeserializeOwned>(
    dir: &Path,
    errors: &mut Vec<Error>,
) -> Vec<(T, Origin)> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            errors.push(Error::new(
                Origin::file(dir),
                format!("cannot read directory: {e}"),
            ));
            return Vec::new();
        }
    };
    paths.sort();
    let mut all = Vec::new();
    for path in paths {
        match yaml::read_entries(&path) {
            Ok(entries) => all.extend(entries),
            Err(e) => errors.push(e),
        }
    }
    all
}

fn resolve_agent(raw: raw::Agent, origin: &Origin) -> Result<Config, Error> {
    let err = |key: &str, msg: String| Error::new(origin.at(key), msg);
    let absolute = |key: &str, value: &str| absolute(key, value).map_err(|e| err(key, e));
    let hostname = match raw.hostname {
        Some(h) if h.trim().is_empty() => return Err(err("hostname", "hostname is empty".into())),
        Some(h) => h,
        None => system_hostname().map_err(|e| err("hostname", e))?,
    };
    let work_dir = absolute(
        "work_dir",
        raw.work_dir.as_deref().unwrap_or("/var/lib/tabacco"),
    )?;
    let random_seed_file = match raw.random_seed_file {
        Some(p) => absolute("random_seed_file", &p)?,
        None => work_dir.join("seed"),
    };

    let repo = raw.repository;
    if let Some(kind) = repo.kind.as_deref().filter(|k| *k != "restic") {
        return Err(err(
            "type",
            format!("unsupported repository type {kind:?} (only restic)"),
        ));
    }
    let binary = raw.restic_binary.as_deref().unwrap_or("restic");
    if binary.is_empty() || (binary.contains('/') && !Path::new(binary).is_absolute()) {
        return Err(err(
            "restic_binary",
            format!("restic_binary must be a command name or an absolute path, not {binary:?}"),
        ));
    }
    let retry_lock = raw.restic_retry_lock.as_deref().unwrap_or("5m");
    let retry_lock = time::parse_duration(retry_lock).map_err(|e| err("restic_retry_lock", e))?;
    let base = Repository {
        uri: String::new(),
        password: Password::Literal(String::new()),
        cache_dir: work_dir.join("cache"),
        env: Default::default(),
        binary: PathBuf::from(binary),
        retry_lock,
        options: Vec::new(),
    };
    let repository = resolve_repository(repo.params, &base, &err, "")?;
    let mut copies: Vec<Copy> = Vec::new();
    for copy in raw.copies.unwrap_or_default() {
        let what = format!("copy {:?}", copy.name);
        let name_err = |msg: String| err("copies", format!("{what}: {msg}"));
        name::validate_source(&copy.name).map_err(|e| name_err(format!("copy {e}")))?;
        if copy.name == crate::wire::api::PRIMARY {
            return Err(name_err("the name primary is the repository's own".into()));
        }
        if copies.iter().any(|c| c.name == copy.name) {
            return Err(name_err("defined twice".into()));
        }
        let retention = copy
            .retention
            .map(resolve_retention)
            .transpose()
            .map_err(&name_err)?;
        // Located at `copies:`: the copy's keys share names with the
        // repository's.
        let at_copies = |_: &str, msg: String| err("copies", msg);
        let resolved = resolve_repository(copy.params, &repository, &at_copies, &what)?;
        if resolved.uri == repository.uri || copies.iter().any(|c| c.repository.uri == resolved.uri)
        {
            return Err(name_err("its uri is another repository's".into()));
        }
        copies.push(Copy {
            name: copy.name,
            repository: resolved,
            retention,
        });
    }

    let schedule = |key: &str, text: Option<String>| -> Result<Option<Schedule>, Error> {
        text.map(|t| Schedule::parse(&t).map_err(|e| err(key, e)))
            .transpose()
    };
    let metadb = match raw.metadb {
        Some(raw::Metadb {
            url: Some(url),
            token_file,
            tls,
            request_max_timeout,
        }) => {
            let timeout = request_max_timeout.as_deref().unwrap_or("60s");
            let token = match token_file {
                Some(f) => Some(
                    Token::read("metadb.token_file", &absolute("token_file", &f)?)
                        .map_err(|e| err("token_file", e))?,
                ),
                None => None,
            };
            let tls = tls.unwrap_or_default();
            Some(metadb::client::connection::Connection {
                url,
                token,
                tls: metadb::client::connection::Tls {
                    ca: tls.ca,
                    cert: tls.cert,
                    key: tls.key,
                },
                request_max_timeout: time::parse_duration(timeout)
                    .map_err(|e| err("request_max_timeout", e))?,
            })
        }
        _ => None,
    };
    let concurrency = raw.queue_config.and_then(|q| q.concurrency).unwrap_or(2);
    if concurrency == 0 {
        return Err(err(
            "queue_config",
            "queue_config.concurrency must be at least 1".into(),
        ));
    }
    if let Some(n) = raw.default_nice_level.filter(|n| !(-20..=19).contains(n)) {
        return Err(err(
            "default_nice_level",
            format!("nice level {n} is outside -20..19"),
        ));
    }
    if let Some(c) = raw.default_io_class.filter(|c| *c > 3) {
        return Err(err(
            "default_io_class",
            format!("io class {c} is outside 0..3"),
        ));
    }
    let retention = raw
        .retention
        .map(resolve_retention)
        .transpose()
        .map_err(|e| err("retention", e))?;
    Ok(Config {
        hostname,
        repository,
        copies,
        retention,
        prune_schedule: schedule("prune_schedule", raw.prune_schedule)?,
        verify_schedule: schedule("verify_schedule", raw.verify_schedule)?,
        metadb,
        concurrency,
        dry_run: raw.dry_run,
        priority: Priority {
            nice: raw.default_nice_level,
            io_class: raw.default_io_class,
        },
        work_dir,
        random_seed_file,
        notify: resolve_notify(raw.notify.as_deref().unwrap_or_default())
            .map_err(|e| err("notify", e))?,
        catch_up: raw.catch_up.unwrap_or(true),
        catch_up_spread: match &raw.catch_up_spread {
            Some(d) => time::parse_duration(d).map_err(|e| err("catch_up_spread", e))?,
            None => DEFAULT_CATCH_UP_SPREAD,
        },
        maintenance: match raw.maintenance {
            None => Maintenance::Own,
            Some(false) => Maintenance::Never,
            Some(true) => Maintenance::All,
        },
        lease_ttl: match &raw.lease_ttl {
            Some(text) => time::parse_duration(text)
                .and_then(|d| {
                    if (1..=metadb::store::MAX_LEASE_SECS).contains(&d.as_secs()) {
                        Ok(d)
                    } else {
                        Err(format!(
                            "lease_ttl must be between 1s and 24h, not {text:?}"
                        ))
                    }
                })
                .map_err(|e| err("lease_ttl", e))?,
            None => repositories::DEFAULT_LEASE_TTL,
        },
        check_slices: match raw.check_slices {
            Some(n) if n > metadb::store::MAX_SLICES => {
                return Err(err(
                    "check_slices",
                    format!("check_slices {n} is over {}", metadb::store::MAX_SLICES),
                ))
            }
            Some(n) => n,
            None => DEFAULT_CHECK_SLICES,
        },
        sources: Vec::new(),
    })
}

/// The repository `params` describe, for `what` (the repository, or a
/// copy); what they leave out (the password of a copy, its cache) is
/// `base`'s.
fn resolve_repository(
    params: raw::RepositoryParams,
    base: &Repository,
    err: &dyn Fn(&str, String) -> Error,
    what: &str,
) -> Result<Repository, Error> {
    let say = |msg: String| match what {
        "" => msg,
        what => format!("{what}: {msg}"),
    };
    let absolute = |key: &str, value: &str| absolute(key, value).map_err(|e| err(key, say(e)));
    if params.uri.trim().is_empty() {
        return Err(err("uri", say("repository uri is empty".into())));
    }
    if restic::is_local(&params.uri) && !Path::new(&params.uri).is_absolute() {
        return Err(err(
            "uri",
            say(format!(
                "a local repository uri must be absolute, not {:?}",
                params.uri
            )),
        ));
    }
    let password = match (params.password, params.password_file) {
        (Some(p), None) if p.trim().is_empty() => {
            return Err(err("password", say("repository password is empty".into())))
        }
        (Some(p), None) => Password::Literal(p),
        (None, Some(f)) => Password::File(absolute("password_file", &f)?),
        (Some(_), Some(_)) => {
            return Err(err(
                "password_file",
                say("set either password or password_file, not both".into()),
            ))
        }
        // A copy opens with the repository's password unless it has its own.
        (None, None) if !base.uri.is_empty() => base.password.clone(),
        (None, None) => {
            return Err(err(
                "params",
                "the repository needs password or password_file".into(),
            ))
        }
    };
    let cache_dir = match params.cache_dir {
        Some(dir) => absolute("cache_dir", &dir)?,
        None => base.cache_dir.clone(),
    };
    let mut options = Vec::new();
    if let Some(mode) = params.compression {
        if !["auto", "off", "max"].contains(&mode.as_str()) {
            return Err(err(
                "compression",
                say(format!(
                    "compression must be auto, off or max, not {mode:?}"
                )),
            ));
        }
        options.extend(["--compression".to_string(), mode]);
    }
    for (key, limit) in [
        ("limit_upload", params.limit_upload),
        ("limit_download", params.limit_download),
    ] {
        match limit {
            Some(0) => {
                return Err(err(
                    key,
                    say(format!(
                        "{key} is in KiB/s and must be at least 1 (leave it out for no limit)"
                    )),
                ))
            }
            Some(kib) => options.extend([format!("--{}", key.replace('_', "-")), kib.to_string()]),
            None => {}
        }
    }
    Ok(Repository {
        options,
        uri: params.uri,
        password,
        cache_dir,
        env: params.env,
        binary: base.binary.clone(),
        retry_lock: base.retry_lock,
    })
}

/// `value` of `key` as a path, if absolute.
fn absolute(key: &str, value: &str) -> Result<PathBuf, String> {
    match Path::new(value).is_absolute() {
        true => Ok(PathBuf::from(value)),
        false => Err(format!("{key} must be an absolute path, not {value:?}")),
    }
}

/// Validates every entry of a `notify:` list.
fn resolve_notify(raw: &[notify::Entry]) -> Result<Vec<notify::Target>, String> {
    raw.iter().map(notify::Target::resolve).collect()
}

fn system_hostname() -> Result<String, String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .map_err(|e| format!("cannot read the system host name ({e}): set hostname"))
}

fn resolve_retention(raw: raw::Retention) -> Result<Retention, String> {
    Retention {
        keep_last: raw.keep_last,
        keep_hourly: raw.keep_hourly,
        keep_daily: raw.keep_daily,
        keep_weekly: raw.keep_weekly,
        keep_monthly: raw.keep_monthly,
        keep_yearly: raw.keep_yearly,
        keep_within: raw.keep_within.as_deref().map(Within::parse).transpose()?,
    }
    .validate()
}

fn resolve_handlers(
    raw: Vec<(raw::Handler, Origin)>,
    errors: &mut Vec<Error>,
) -> HashMap<String, (raw::Handler, Origin)> {
    let mut templates: HashMap<String, (raw::Handler, Origin)> = HashMap::new();
    for (h, origin) in raw {
        if let Err(e) = name::validate_source(&h.name) {
            errors.push(Error::new(origin.at("name"), format!("handler {e}")));
        } else if handler::BUILTIN.contains(&h.name.as_str()) {
            errors.push(Error::new(
                origin.at("name"),
                format!("handler name {:?} is builtin", h.name),
            ));
        } else if let Some((_, first)) = templates.get(&h.name) {
            let msg = format!(
                "duplicate handler name {:?} (first defined at {first})",
                h.name
            );
            errors.push(Error::new(origin.at("name"), msg));
        } else {
            templates.insert(h.name.clone(), (h, origin));
        }
    }
    templates
}

fn resolve_source(
    raw: raw::Source,
    origin: Origin,
    templates: &HashMap<String, (raw::Handler, Origin)>,
    copies: Option<&[String]>,
) -> Result<Source, Error> {
    let err = |key: &str, msg: String| Error::new(origin.at(key), msg);
    name::validate_source(&raw.name).map_err(|e| err("name", format!("source {e}")))?;

    let (kind, params) = match raw.handler.as_str() {
        "file" | "pipe" => (raw.handler.clone(), raw.params.clone()),
        name => {
            let (template, _) = templates.get(name).ok_or_else(|| {
                err(
                    "handler",
                    format!(
                        "unknown handler {name:?} (builtin: file, pipe; or a handlers/*.yml name)"
                    ),
                )
            })?;
            let kind = match template.kind.as_deref() {
                Some(kind) => kind.to_string(),
                None if template.params.backup_command.is_some() => "pipe".into(),
                None => return Err(err("handler", format!("handler {name:?} has no type"))),
            };
            (kind, raw.params.over(&template.params))
        }
    };
    let handler = Handler::new(&kind, params)
        .map_err(|e| err("handler", format!("source {:?}: {e}", raw.name)))?;

    let schedule = raw.schedule.as_deref().unwrap_or("@random_every 1d");
    let schedule = Schedule::parse(schedule).map_err(|e| err("schedule", e))?;
    let timeout = raw
        .timeout
        .as_deref()
        .map(time::parse_duration)
        .transpose()
        .map_err(|e| err("timeout", e))?;
    let overdue_grace = raw
        .overdue_grace
        .as_deref()
        .map(time::parse_duration)
        .transpose()
        .map_err(|e| err("overdue_grace", e))?;
    let retention = raw
        .retention
        .map(resolve_retention)
        .transpose()
        .map_err(|e| err("retention", e))?;

    let copies = match (raw.copies, copies) {
        (Some(names), Some(known)) => {
            for name in &names {
                if !known.contains(name) {
                    let msg = match known {
                        [] => format!("unknown copy {name:?}: agent.yml has no copies"),
                        _ => format!("unknown copy {name:?}; agent.yml has: {}", known.join(" ")),
                    };
                    return Err(err("copies", msg));
                }
            }
            names
        }
        (None, Some(known)) => known.to_vec(),
        (_, None) => Vec::new(),
    };
    let plain_form = raw.atoms.is_some() || raw.atoms_command.is_some();
    let long_form = raw.datasets.is_some() || raw.datasets_command.is_some();
    if plain_form && long_form {
        return Err(err(
            "datasets",
            "use either atoms/atoms_command or datasets/datasets_command".into(),
        ));
    }
    let datasets = match (raw.datasets, raw.datasets_command) {
        (Some(_), Some(_)) => {
            return Err(err(
                "datasets_command",
                "use either datasets or datasets_command".into(),
            ))
        }
        (None, Some(command)) => Datasets::Command(command),
        (Some(list), None) => Datasets::Listed(
            list.into_iter()
                .map(|d| dataset_spec(&raw.name, d.atoms, d.atoms_command))
                .collect::<Result<_, _>>()
                .map_err(|e| err("atoms", e))?,
        ),
        (None, None) => {
            Datasets::Listed(vec![dataset_spec(&raw.name, raw.atoms, raw.atoms_command)
                .map_err(|e| err("atoms", e))?])
        }
    };
    if let Datasets::Listed(specs) = &datasets {
        for spec in specs {
            handler
                .check_atoms(spec)
                .map_err(|e| err("atoms", format!("source {:?}: {e}", raw.name)))?;
        }
    }
    if raw.min_bytes.is_some() && !matches!(handler, Handler::Pipe(_)) {
        return Err(err(
            "min_bytes",
            "min_bytes applies to pipe sources only".into(),
        ));
    }
    let hooks = Hooks {
        pre_backup: raw.pre_backup_command,
        post_backup: raw.post_backup_command,
        pre_restore: raw.pre_restore_command,
        post_restore: raw.post_restore_command,
    };
    Ok(Source {
        name: raw.name,
        handler_name: raw.handler,
        handler,
        schedule,
        datasets,
        hooks,
        timeout,
        overdue_grace,
        retention,
        copies,
        min_bytes: raw.min_bytes,
        notify: match &raw.notify {
            Some(list) => Some(resolve_notify(list).map_err(|e| err("notify", e))?),
            None => None,
        },
        catch_up: raw.catch_up,
        origin,
    })
}

/// The datasets `source`'s `datasets_command` printed (YAML or JSON, as
/// `datasets:` is written), validated.
pub fn parse_datasets(source: &str, text: &str) -> Result<Vec<DatasetSpec>, String> {
    let raw: Vec<raw::Dataset> = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    raw.into_iter()
        .map(|d| dataset_spec(source, d.atoms, d.atoms_command))
        .collect()
}

/// Validates atom names of one dataset entry (`source/atom` must be a valid
/// name) and rejects duplicates.
fn dataset_spec(
    source: &str,
    atoms: Option<Vec<raw::Atom>>,
    atoms_command: Option<String>,
) -> Result<DatasetSpec, String> {
    let mut spec = DatasetSpec {
        atoms: Vec::new(),
        atoms_command,
    };
    for atom in atoms.unwrap_or_default() {
        name::validate(&format!("{source}/{}", atom.name)).map_err(|e| format!("atom {e}"))?;
        if spec.atoms.iter().any(|a| a.name == atom.name) {
            return Err(format!("duplicate atom {:?}", atom.name));
        }
        spec.atoms.push(AtomSpec {
            name: atom.name,
            path: atom.path,
        });
    }
    Ok(spec)
}

#[cfg(test)]
mod tests;
