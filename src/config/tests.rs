//! Resolution of agent.yml, handlers and sources from their text: defaults,
//! template params, retention, and the message each bad value gets.

use super::*;

const REPOSITORY: &str = "repository: {params: {uri: /srv/restic, password: secret}}\n";

/// agent.yml `text` (with `hostname: h` first), resolved.
fn agent(text: &str) -> Result<Config, String> {
    let text = format!("hostname: h\n{text}");
    let (raw, origin) = yaml::parse_entries::<raw::Agent>(Path::new("agent.yml"), &text)
        .map_err(|e| e.to_string())?
        .remove(0);
    resolve_agent(raw, &origin).map_err(|e| e.to_string())
}

/// The source in `text`, resolved with the handler templates in `handlers`.
fn source(handlers: &str, text: &str) -> Result<Source, String> {
    let mut errors = Vec::new();
    let entries = yaml::parse_entries(Path::new("handlers.yml"), handlers).unwrap();
    let templates = resolve_handlers(entries, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let (raw, origin) = yaml::parse_entries::<raw::Source>(Path::new("s.yml"), text)
        .map_err(|e| e.to_string())?
        .remove(0);
    let copies = ["offsite".to_string(), "usb".to_string()];
    resolve_source(raw, origin, &templates, Some(&copies)).map_err(|e| e.to_string())
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
    let refused = |text: &str| agent(&format!("{REPOSITORY}{text}")).unwrap_err();
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
    let refused = |text: &str| agent(&format!("{REPOSITORY}{text}")).unwrap_err();
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
    let repository =
        |params: &str| agent(&format!("repository:\n  params: {{{params}}}\n")).unwrap_err();
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

#[test]
fn source_defaults() {
    let s = source("", "name: www\nhandler: file\nparams: {path: /srv/www}\n").unwrap();
    assert_eq!(s.name, "www");
    assert_eq!(s.handler_name, "file");
    assert!(
        matches!(&s.handler, Handler::File(f) if f.path.as_deref() == Some(Path::new("/srv/www")))
    );
    assert_eq!(s.schedule.to_string(), "@random_every 1d");
    let Datasets::Listed(specs) = &s.datasets else {
        panic!("{:?}", s.datasets)
    };
    assert_eq!(specs.len(), 1);
    assert!(specs[0].atoms.is_empty() && specs[0].atoms_command.is_none());
    assert!(s.timeout.is_none() && s.retention.is_none() && s.notify.is_none());
    assert_eq!(s.origin.to_string(), "s.yml:1");
}

#[test]
fn source_params_override_its_templates_key_by_key() {
    let handlers = "name: pg\nparams:\n  backup_command: pg_dump ${atom.name}\n  restore_command: psql ${atom.name}\n";
    let s = source(
        handlers,
        "name: sql\nhandler: pg\nparams: {restore_command: \"psql -1 ${atom.name}\"}\n\
         atoms: [{name: db1}, {name: db2}]\nretention: {keep_within: 1h30m}\ntimeout: 2h\n",
    )
    .unwrap();
    assert_eq!(s.handler_name, "pg");
    let Handler::Pipe(pipe) = &s.handler else {
        panic!("{:?}", s.handler)
    };
    assert_eq!(
        pipe.backup_command, "pg_dump ${atom.name}",
        "the template's"
    );
    assert_eq!(
        pipe.restore_command.as_deref(),
        Some("psql -1 ${atom.name}"),
        "the source's"
    );
    let Datasets::Listed(specs) = &s.datasets else {
        panic!("{:?}", s.datasets)
    };
    let names: Vec<&str> = specs[0].atoms.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["db1", "db2"]);
    let retention = s.retention.unwrap();
    assert_eq!(retention.to_string(), "{keep_within: 1h30m}");
    assert_eq!(
        retention.keep_within.map(|w| w.duration),
        Some(Duration::from_secs(5400))
    );
    assert_eq!(s.timeout, Some(Duration::from_secs(7200)));
}

#[test]
fn bad_sources_are_refused_with_their_line() {
    let refused = |text: &str| source("name: t\ntype: file\n", text).unwrap_err();
    assert_eq!(
        refused("name: a\nhandler: nfs\n"),
        "s.yml:2: unknown handler \"nfs\" (builtin: file, pipe; or a handlers/*.yml name)"
    );
    assert_eq!(
        refused("name: a\nhandler: pipe\nparams: {path: /x}\n"),
        "s.yml:2: source \"a\": the pipe handler needs params.backup_command"
    );
    assert_eq!(
        refused("name: a\nhandler: t\nparams: {path: /x}\nmin_bytes: 1\n"),
        "s.yml:4: min_bytes applies to pipe sources only"
    );
    assert_eq!(
        refused("name: a\nhandler: file\nparams: {path: /x}\natoms: [{name: b}, {name: b}]\n"),
        "s.yml:4: duplicate atom \"b\""
    );
    assert_eq!(
        refused("name: a\nhandler: file\nparams: {path: /x}\natoms: [{name: b}]\ndatasets: []\n"),
        "s.yml:5: use either atoms/atoms_command or datasets/datasets_command"
    );
    assert_eq!(
        refused("name: a\nhandler: file\nparams: {path: /x}\nretention: {keep_within: soon}\n"),
        "s.yml:4: invalid duration \"soon\" (expected e.g. 90s, 15m, 1.5h, 1d, 1h30m, 500ms)"
    );
    assert_eq!(
        source("name: t\nparams: {}\n", "name: a\nhandler: t\n").unwrap_err(),
        "s.yml:2: handler \"t\" has no type"
    );
}

#[test]
fn datasets_printed_by_a_command_are_validated() {
    let specs = parse_datasets("sql", "- atoms: [{name: db1}]\n- atoms_command: ls\n").unwrap();
    assert_eq!(specs.len(), 2);
    assert_eq!(specs[0].atoms[0].name, "db1");
    assert_eq!(specs[1].atoms_command.as_deref(), Some("ls"));
    assert_eq!(
        parse_datasets("sql", "[{atoms: [{name: a}, {name: a}]}]").unwrap_err(),
        "duplicate atom \"a\""
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
    assert!(matches!(&usb.repository.password, Password::File(f) if f == Path::new("/etc/usb-pw")));
    assert!(usb.retention.is_none());
    assert_eq!(usb.repository.cache_dir, config.repository.cache_dir);
}

#[test]
fn bad_copies_are_refused_by_name() {
    let refused = |copies: &str| agent(&format!("{REPOSITORY}copies:\n{copies}")).unwrap_err();
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

#[test]
fn a_source_copies_to_all_copies_or_those_it_names() {
    let text = "name: www\nhandler: file\nparams: {path: /srv/www}\n";
    assert_eq!(source("", text).unwrap().copies, ["offsite", "usb"]);
    let some = format!("{text}copies: [usb]\n");
    assert_eq!(source("", &some).unwrap().copies, ["usb"]);
    let none = format!("{text}copies: []\n");
    assert!(source("", &none).unwrap().copies.is_empty());
    let unknown = format!("{text}copies: [tape]\n");
    assert_eq!(
        source("", &unknown).unwrap_err(),
        "s.yml:4: unknown copy \"tape\"; agent.yml has: offsite usb"
    );
}
