//! agent.yml's own settings, with their defaults: the host and its
//! directories, how restic runs, the metadb, the queue and its priority,
//! the maintenance schedules, retention and notifications. The repository,
//! its copies and this host's part in maintenance are `repositories`'s;
//! the sources and handler templates beside agent.yml are read by
//! `config::Config::load`.

use super::error::{Entry, Error, Errors, Problem};
use super::{raw, repositories, value, Config, FleetAccess};
use crate::base::token::Token;
use crate::base::yaml::Origin;
use crate::metadb::client::connection::{Connection, Tls};
use crate::process::shell::Priority;
use crate::restic::{Password, Repository};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the agent keeps its state unless `work_dir` says otherwise.
const DEFAULT_WORK_DIR: &str = "/var/lib/tabacco";

/// How long restic waits for a lock unless `restic_retry_lock` says
/// otherwise.
const DEFAULT_RETRY_LOCK: Duration = Duration::from_secs(300);

/// How long a repository may take to answer when it is opened or created
/// unless `repository_timeout` says otherwise.
const DEFAULT_REPOSITORY_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a metadb request may take unless `request_max_timeout` says
/// otherwise.
const DEFAULT_REQUEST_MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// Catch-up runs start within this long after the agent unless
/// `catch_up_spread` says otherwise.
const DEFAULT_CATCH_UP_SPREAD: Duration = Duration::from_secs(300);

/// How many jobs run at once unless `queue_config.concurrency` says
/// otherwise.
const DEFAULT_CONCURRENCY: usize = 2;

/// The most a pipe source's batch stages unless `batch_bytes` says
/// otherwise: 256 MiB.
const DEFAULT_BATCH_BYTES: u64 = 256 << 20;

/// A pipe source is batched from this many atoms on unless `batch_from`
/// says otherwise (measured: BENCHMARKS.md, case 14).
const DEFAULT_BATCH_FROM: usize = 10;

/// agent.yml at `origin`, validated, without sources yet; every value it
/// refuses is an error of its own.
pub(super) fn resolve(raw: raw::Agent, origin: &Origin) -> Result<Config, Errors> {
    let entry = Entry::new(origin);
    let mut errors = Errors(Vec::new());
    let hostname = errors.or(hostname(raw.hostname, &entry), String::new());
    let work_dir = work_dir(raw.work_dir.as_deref(), &entry);
    let work_dir = errors.or(work_dir, PathBuf::from(DEFAULT_WORK_DIR));
    let random_seed_file = match raw.random_seed_file {
        Some(path) => value::absolute(&entry, "random_seed_file", &path),
        None => Ok(work_dir.join("seed")),
    };
    let random_seed_file = errors.or(random_seed_file, work_dir.join("seed"));
    let (kind, params) = match raw.repository {
        Some(r) => (r.kind, Some(r.params)),
        None => (None, None),
    };
    let restic = restic(
        kind.as_deref(),
        Restic {
            binary: raw.restic_binary.as_deref(),
            retry_lock: raw.restic_retry_lock.as_deref(),
            timeout: raw.repository_timeout.as_deref(),
        },
        &work_dir,
        &entry,
        &mut errors,
    );
    let repository = match params {
        Some(params) => repositories::repository(params, &restic, &entry),
        None => Err(entry.invalid(
            "repository",
            "missing repository: where backups go (see tabacco.yml(5))",
        )),
    };
    // Copies are judged against the repository, so only beside a valid one.
    let (repository, copies, further) = match errors.ok(repository) {
        Some(repository) => {
            let copies = repositories::copies(raw.copies.unwrap_or_default(), &repository, &entry);
            let copies = errors.or(copies, Vec::new());
            let raw = raw.repositories.unwrap_or_default();
            let further = repositories::further(raw, &repository, &copies, &entry);
            (repository.clone(), copies, errors.or(further, Vec::new()))
        }
        None => (restic, Vec::new(), Vec::new()),
    };
    let metadb = match raw.metadb {
        Some(raw) => errors.or(metadb(raw, &entry), None),
        None => None,
    };
    let concurrency = concurrency(raw.queue_config, &entry);
    let priority = priority(raw.default_nice_level, raw.default_io_class, &entry);
    let retention = value::retention(&entry, "retention", raw.retention);
    let prune_schedule = value::schedule(&entry, "prune_schedule", raw.prune_schedule.as_deref());
    let verify = value::schedule(&entry, "verify_schedule", raw.verify_schedule.as_deref());
    let notify = value::notify(&entry, raw.notify.as_deref().unwrap_or_default());
    let spread = value::duration(&entry, "catch_up_spread", raw.catch_up_spread.as_deref());
    let lease_ttl = repositories::lease_ttl(&entry, raw.lease_ttl.as_deref());
    let check_slices = repositories::check_slices(&entry, raw.check_slices);
    let init = repositories::init(&entry, raw.init.as_deref());
    let config = Config {
        hostname,
        repository,
        copies,
        further,
        retention: errors.or(retention, None),
        prune_schedule: errors.or(prune_schedule, None),
        verify_schedule: errors.or(verify, None),
        metadb,
        concurrency: errors.or(concurrency, DEFAULT_CONCURRENCY),
        dry_run: raw.dry_run,
        priority: errors.or(priority, Priority::default()),
        work_dir,
        random_seed_file,
        notify: errors.or(notify, Vec::new()),
        catch_up: raw.catch_up.unwrap_or(true),
        catch_up_spread: errors.or(spread, None).unwrap_or(DEFAULT_CATCH_UP_SPREAD),
        maintenance: repositories::maintenance(raw.maintenance),
        lease_ttl: errors.or(lease_ttl, Duration::ZERO),
        check_slices: errors.or(check_slices, 0),
        init: errors.or(init, repositories::Init::Manual),
        batch_bytes: raw.batch_bytes.unwrap_or(DEFAULT_BATCH_BYTES),
        batch_from: raw.batch_from.unwrap_or(DEFAULT_BATCH_FROM),
        origin: origin.clone(),
        sources: Vec::new(),
    };
    // Said in the order they are written.
    errors.0.sort_by_key(|e| e.origin.as_ref().map(|o| o.line));
    errors.and(config)
}

/// What the commands that only ask the metadb need of agent.yml at
/// `origin`: its `work_dir` (the embedded metadb's) and its `metadb:`. Its
/// other keys are not judged.
pub(super) fn fleet(raw: raw::Agent, origin: &Origin) -> Result<FleetAccess, Errors> {
    let entry = Entry::new(origin);
    let mut errors = Errors(Vec::new());
    let work_dir = work_dir(raw.work_dir.as_deref(), &entry);
    let work_dir = errors.or(work_dir, PathBuf::from(DEFAULT_WORK_DIR));
    let metadb = match raw.metadb {
        Some(raw) => errors.or(metadb(raw, &entry), None),
        None => None,
    };
    errors.and(FleetAccess { work_dir, metadb })
}

/// `work_dir`, absolute, or the default.
fn work_dir(raw: Option<&str>, entry: &Entry) -> Result<PathBuf, Error> {
    value::absolute(entry, "work_dir", raw.unwrap_or(DEFAULT_WORK_DIR))
}

/// `hostname`, or the system's.
fn hostname(raw: Option<String>, entry: &Entry) -> Result<String, Error> {
    match raw {
        Some(h) if h.trim().is_empty() => Err(entry.invalid("hostname", "hostname is empty")),
        Some(h) => Ok(h),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .map_err(|e| entry.error("hostname", Problem::Hostname(e))),
    }
}

/// agent.yml's keys on how restic runs, as written.
struct Restic<'a> {
    binary: Option<&'a str>,
    retry_lock: Option<&'a str>,
    timeout: Option<&'a str>,
}

/// What every repository shares: how restic runs (`restic_binary`,
/// `restic_retry_lock`, `repository_timeout`), and the cache and the ids
/// this host saw under `work_dir`. It names no repository yet. A value
/// refused is an error in `errors`, and its default stands in for it.
fn restic(
    kind: Option<&str>,
    raw: Restic,
    work_dir: &Path,
    entry: &Entry,
    errors: &mut Errors,
) -> Repository {
    if let Some(kind) = kind.filter(|k| *k != "restic") {
        errors.0.push(entry.invalid(
            "type",
            format!("unsupported repository type {kind:?} (only restic)"),
        ));
    }
    let mut binary = raw.binary.unwrap_or("restic");
    if binary.is_empty() || (binary.contains('/') && !Path::new(binary).is_absolute()) {
        errors.0.push(entry.invalid(
            "restic_binary",
            format!("restic_binary must be a command name or an absolute path, not {binary:?}"),
        ));
        binary = "restic";
    }
    let retry_lock = value::duration(entry, "restic_retry_lock", raw.retry_lock);
    let timeout = repositories::timeout(entry, raw.timeout);
    Repository {
        uri: String::new(),
        password: Password::Literal(String::new()),
        cache_dir: work_dir.join("cache"),
        env: Default::default(),
        binary: PathBuf::from(binary),
        retry_lock: errors.or(retry_lock, None).unwrap_or(DEFAULT_RETRY_LOCK),
        options: Vec::new(),
        timeout: errors
            .or(timeout, None)
            .unwrap_or(DEFAULT_REPOSITORY_TIMEOUT),
        known_ids: work_dir.join("repository-ids"),
    }
}

/// The remote metadb of `metadb:`, with its token read; none without a
/// `url` (the embedded one).
fn metadb(raw: raw::Metadb, entry: &Entry) -> Result<Option<Connection>, Error> {
    let Some(url) = raw.url else {
        return Ok(None);
    };
    let token = match raw.token_file {
        Some(file) => {
            let file = value::absolute(entry, "token_file", &file)?;
            Some(Token::read("metadb.token_file", &file).map_err(entry.refused("token_file"))?)
        }
        None => None,
    };
    let tls = raw.tls.unwrap_or_default();
    let timeout = raw.request_max_timeout.as_deref();
    Ok(Some(Connection {
        url,
        token,
        tls: Tls {
            ca: tls.ca,
            cert: tls.cert,
            key: tls.key,
        },
        request_max_timeout: value::duration(entry, "request_max_timeout", timeout)?
            .unwrap_or(DEFAULT_REQUEST_MAX_TIMEOUT),
    }))
}

/// `queue_config.concurrency`, at least 1.
fn concurrency(raw: Option<raw::QueueConfig>, entry: &Entry) -> Result<usize, Error> {
    match raw
        .and_then(|q| q.concurrency)
        .unwrap_or(DEFAULT_CONCURRENCY)
    {
        0 => Err(entry.invalid(
            "queue_config",
            "queue_config.concurrency must be at least 1",
        )),
        n => Ok(n),
    }
}

/// `default_nice_level` and `default_io_class`, in the ranges the kernel
/// takes.
fn priority(nice: Option<i32>, io_class: Option<u32>, entry: &Entry) -> Result<Priority, Error> {
    if let Some(n) = nice.filter(|n| !(-20..=19).contains(n)) {
        return Err(entry.invalid(
            "default_nice_level",
            format!("nice level {n} is outside -20..19"),
        ));
    }
    if let Some(c) = io_class.filter(|c| *c > 3) {
        return Err(entry.invalid("default_io_class", format!("io class {c} is outside 0..3")));
    }
    Ok(Priority { nice, io_class })
}

#[cfg(test)]
mod tests {
    //! agent.yml resolved from its text: defaults, the types its settings
    //! become, its copies, and the message each bad value gets.

    use super::*;
    use crate::base::yaml;
    use crate::config::repositories::{Init, Maintenance};

    const REPOSITORY: &str = "repository: {params: {uri: /srv/restic, password: secret}}\n";

    /// agent.yml `text` (with `hostname: h` first), resolved.
    fn agent(text: &str) -> Result<Config, Errors> {
        let text = format!("hostname: h\n{text}");
        let (raw, origin) = yaml::read_one_text::<raw::Agent>(Path::new("agent.yml"), &text)
            .map_err(|e| Errors::from(Error::from(e)))?;
        resolve(raw, &origin)
    }

    #[test]
    fn agent_defaults() {
        let config = agent(REPOSITORY).unwrap();
        assert_eq!(config.hostname, "h");
        assert_eq!(config.work_dir, Path::new("/var/lib/tabacco"));
        assert_eq!(config.random_seed_file, Path::new("/var/lib/tabacco/seed"));
        let repo = &config.repository;
        assert_eq!(repo.uri, "/srv/restic");
        assert!(matches!(&repo.password, Password::Literal(p) if p == "secret"));
        assert_eq!(repo.cache_dir, Path::new("/var/lib/tabacco/cache"));
        assert_eq!(repo.binary, Path::new("restic"));
        assert_eq!(repo.retry_lock, Duration::from_secs(300));
        assert!(repo.options.is_empty() && repo.env.is_empty());
        assert_eq!(config.concurrency, 2);
        assert!(config.catch_up && !config.dry_run);
        assert_eq!(config.catch_up_spread, Duration::from_secs(300));
        assert!(config.metadb.is_none() && config.retention.is_none());
        assert!(config.prune_schedule.is_none() && config.notify.is_empty());
        assert!(config.sources.is_empty());
        assert_eq!(config.maintenance, Maintenance::Own);
        assert_eq!(config.lease_ttl, Duration::from_secs(600));
        assert_eq!(config.check_slices, 10);
        assert_eq!(config.init, Init::Manual);
        assert_eq!(repo.timeout, Duration::from_secs(120));
        assert_eq!(repo.known_ids, Path::new("/var/lib/tabacco/repository-ids"));
    }

    #[test]
    fn init_and_repository_timeout_say_how_repositories_are_created_and_opened() {
        let with = |text: &str| agent(&format!("{REPOSITORY}{text}"));
        let copy = "copies:\n- name: c\n  params: {uri: /c}\n";
        let config = with(&format!("init: auto\nrepository_timeout: 5s\n{copy}")).unwrap();
        assert_eq!(config.init, Init::Auto);
        assert_eq!(config.repository.timeout, Duration::from_secs(5));
        assert_eq!(config.copies[0].repository.timeout, Duration::from_secs(5));
        assert_eq!(with("init: manual\n").unwrap().init, Init::Manual);
        let refused = |text: &str| with(text).unwrap_err().to_string();
        assert_eq!(
            refused("init: always\n"),
            "agent.yml:3: init must be auto or manual, not \"always\""
        );
        assert_eq!(
            refused("repository_timeout: 500ms\n"),
            "agent.yml:3: repository_timeout must be at least 1s, not \"500ms\""
        );
    }

    #[test]
    fn maintenance_says_what_a_host_prunes_and_checks() {
        let with = |text: &str| agent(&format!("{REPOSITORY}{text}")).unwrap();
        assert_eq!(with("maintenance: false\n").maintenance, Maintenance::Never);
        assert_eq!(with("maintenance: true\n").maintenance, Maintenance::All);
        let config = with("lease_ttl: 30s\ncheck_slices: 0\n");
        assert_eq!(
            (config.lease_ttl, config.check_slices),
            (Duration::from_secs(30), 0)
        );
        let refused = |text: &str| {
            agent(&format!("{REPOSITORY}{text}"))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refused("lease_ttl: 2d\n"),
            "agent.yml:3: lease_ttl must be between 1s and 24h, not \"2d\""
        );
        assert_eq!(
            refused("check_slices: 10001\n"),
            "agent.yml:3: check_slices 10001 is over 10000"
        );
    }

    #[test]
    fn agent_settings_become_their_owners_types() {
        let config = agent(
            "work_dir: /w\n\
             repository:\n  params:\n    uri: sftp:backup@127.0.0.1:/r\n    password_file: /etc/pw\n\
             \x20   compression: max\n    limit_upload: 100\n\
             metadb: {url: \"http://127.0.0.1:5333\", request_max_timeout: 5s, tls: {ca: /ca.pem}}\n\
             retention: {keep_daily: 7, keep_within: 36h}\n\
             queue_config: {concurrency: 4}\n",
        )
        .unwrap();
        assert_eq!(config.random_seed_file, Path::new("/w/seed"));
        let repo = &config.repository;
        assert!(matches!(&repo.password, Password::File(f) if f == Path::new("/etc/pw")));
        assert_eq!(
            repo.options,
            ["--compression", "max", "--limit-upload", "100"]
        );
        let metadb = config.metadb.unwrap();
        assert_eq!(metadb.url, "http://127.0.0.1:5333");
        assert_eq!(metadb.request_max_timeout, Duration::from_secs(5));
        assert_eq!(metadb.tls.ca.as_deref(), Some("/ca.pem"));
        let retention = config.retention.unwrap();
        assert_eq!(retention.keep_daily, Some(7));
        assert_eq!(
            retention.keep_within.map(|w| w.duration),
            Some(Duration::from_secs(36 * 3600))
        );
        assert_eq!(config.concurrency, 4);
    }

    #[test]
    fn bad_agent_values_are_refused_with_their_line() {
        let refused = |text: &str| {
            agent(&format!("{REPOSITORY}{text}"))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refused("retention: {keep_within: 2 days}\n"),
            "agent.yml:3: invalid duration \"2 days\" (expected e.g. 90s, 15m, 1.5h, 1d, 1h30m, 500ms)"
        );
        assert_eq!(
            refused("retention: {}\n"),
            "agent.yml:3: retention keeps nothing: set at least one keep_* policy"
        );
        assert_eq!(
            refused("queue_config: {concurrency: 0}\n"),
            "agent.yml:3: queue_config.concurrency must be at least 1"
        );
        assert_eq!(
            refused("default_nice_level: 20\n"),
            "agent.yml:3: nice level 20 is outside -20..19"
        );
        assert_eq!(
            refused("work_dir: var/lib\n"),
            "agent.yml:3: work_dir must be an absolute path, not \"var/lib\""
        );
        assert_eq!(
            refused("restic_binary: bin/restic\n"),
            "agent.yml:3: restic_binary must be a command name or an absolute path, not \"bin/restic\""
        );
        let repository = |params: &str| {
            agent(&format!("repository:\n  params: {{{params}}}\n"))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            repository("uri: restic, password: x"),
            "agent.yml:3: a local repository uri must be absolute, not \"restic\""
        );
        assert_eq!(
            repository("uri: /r, password: x, password_file: /p"),
            "agent.yml:3: set either password or password_file, not both"
        );
        assert_eq!(
            repository("uri: /r"),
            "agent.yml:3: the repository needs password or password_file"
        );
        assert_eq!(
            repository("uri: /r, password: x, compression: best"),
            "agent.yml:3: compression must be auto, off or max, not \"best\""
        );
        assert_eq!(
            repository("uri: /r, password: x, limit_download: 0"),
            "agent.yml:3: limit_download is in KiB/s and must be at least 1 (leave it out for no limit)"
        );
    }

    /// Issue 28, item 9: with two mistakes in agent.yml, only the first
    /// was shown.
    #[test]
    fn every_refused_value_of_agent_yml_is_an_error() {
        let refused = agent(&format!(
            "{REPOSITORY}queue_config: {{concurrency: 0}}\nprune_schedule: \"0 25 * * *\"\nwork_dir: w\n"
        ))
        .unwrap_err()
        .to_string();
        assert_eq!(
            refused,
            "agent.yml:3: queue_config.concurrency must be at least 1\n\
             agent.yml:4: invalid schedule \"0 25 * * *\": hour 25 is out of range 0-23 (minute hour day-of-month month day-of-week)\n\
             agent.yml:5: work_dir must be an absolute path, not \"w\""
        );
        assert_eq!(
            agent("work_dir: /w\n").unwrap_err().to_string(),
            "agent.yml:1: missing repository: where backups go (see tabacco.yml(5))"
        );
    }

    #[test]
    fn fleet_commands_need_only_the_metadb() {
        let text = "metadb: {url: \"http://127.0.0.1:5333\"}\n";
        let (raw, origin) =
            yaml::read_one_text::<raw::Agent>(Path::new("admin.yml"), text).unwrap();
        let access = fleet(raw, &origin).unwrap();
        assert_eq!(access.work_dir, Path::new("/var/lib/tabacco"));
        assert_eq!(access.metadb.unwrap().url, "http://127.0.0.1:5333");
        let text = "metadb: {url: x, request_max_timeout: soon}\n";
        let (raw, origin) =
            yaml::read_one_text::<raw::Agent>(Path::new("admin.yml"), text).unwrap();
        assert_eq!(
            fleet(raw, &origin).unwrap_err().to_string(),
            "admin.yml:1: invalid duration \"soon\" (expected e.g. 90s, 15m, 1.5h, 1d, 1h30m, 500ms)"
        );
    }

    #[test]
    fn copies_take_the_repository_keys_and_default_to_its_password() {
        let config = agent(&format!(
            "{REPOSITORY}copies:\n\
             - name: offsite\n  params: {{uri: \"rest:http://127.0.0.1:8000/\", limit_upload: 10}}\n\
             \x20 retention: {{keep_daily: 30}}\n\
             - name: usb\n  params: {{uri: /mnt/usb, password_file: /etc/usb-pw}}\n"
        ))
        .unwrap();
        let [offsite, usb] = &config.copies[..] else {
            panic!("{:?}", config.copies)
        };
        assert_eq!(offsite.name, "offsite");
        assert!(matches!(&offsite.repository.password, Password::Literal(p) if p == "secret"));
        assert_eq!(offsite.repository.options, ["--limit-upload", "10"]);
        assert_eq!(offsite.retention.as_ref().unwrap().keep_daily, Some(30));
        assert!(
            matches!(&usb.repository.password, Password::File(f) if f == Path::new("/etc/usb-pw"))
        );
        assert!(usb.retention.is_none());
        assert_eq!(usb.repository.cache_dir, config.repository.cache_dir);
    }

    #[test]
    fn bad_copies_are_refused_by_name() {
        let refused = |copies: &str| {
            agent(&format!("{REPOSITORY}copies:\n{copies}"))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refused("- name: primary\n  params: {uri: /c}\n"),
            "agent.yml:3: copy \"primary\": the name primary is the repository's own"
        );
        assert_eq!(
            refused("- name: a\n  params: {uri: /c}\n- name: a\n  params: {uri: /d}\n"),
            "agent.yml:3: copy \"a\": defined twice"
        );
        assert_eq!(
            refused("- name: a\n  params: {uri: /srv/restic}\n"),
            "agent.yml:3: copy \"a\": its uri is another repository's"
        );
        assert_eq!(
            refused("- name: a\n  params: {uri: c}\n"),
            "agent.yml:3: copy \"a\": a local repository uri must be absolute, not \"c\""
        );
        assert!(refused("- name: a b\n  params: {uri: /c}\n")
            .starts_with("agent.yml:3: copy \"a b\": copy "));
    }
}
