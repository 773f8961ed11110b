//! Parsing whole command lines: global options anywhere, each command's
//! options and checks, help everywhere, and errors that say where help is.

use super::help::{self, COMMANDS, GLOBAL_OPTIONS, TOP_OPTIONS};
use super::*;

fn parse_str(line: &str) -> Result<Cli, Error> {
    parse(line.split_whitespace().map(OsString::from))
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
        parse_str("query --host web3 --versions 2 --older-than 7d --json users/* sql/db?").unwrap();
    assert_eq!(
        cli.command,
        Command::Query(QueryArgs {
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
    assert!(!r.overwrite && !r.any_host);
    let cli = parse_str("restore --target / --any-host --overwrite x").unwrap();
    let Command::Restore(r) = cli.command else {
        panic!("not a restore")
    };
    assert_eq!(
        r.target,
        crate::wire::target::Target::InPlace,
        "as the original"
    );
    assert!(r.overwrite && r.any_host);
    let cli = parse_str("restore --in-place --as sales_copy sql/sales").unwrap();
    let Command::Restore(r) = cli.command else {
        panic!("not a restore")
    };
    assert_eq!(r.rename.as_deref(), Some("sales_copy"));
    for bad in [
        "restore --target /t --as b x",
        "restore --in-place --remote web3 --as b x",
        "restore --in-place --as ../b x",
        "restore x",
        "restore --in-place --host web3 --any-host x",
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
        assert!(help::text(Some(c.name)).is_some());
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

fn parse_words(words: &[String]) -> Result<Cli, Error> {
    parse(words.iter().map(OsString::from))
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
            assert_ne!(with.ok(), without.ok(), "tabacco {words:?} changed nothing");
            checked += 1;
        }
    }
    for c in COMMANDS {
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
                    Some(with),
                    without.ok(),
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
    assert!(help::text(None).unwrap().contains("-V, --version"));
}

/// Regression: errors suggested 'tabacco --help', which failed.
#[test]
fn errors_suggest_the_help_that_explains_them() {
    let error = |line| parse_str(line).unwrap_err().to_string();
    assert_eq!(
        error("restore x"),
        "restore needs --target DIR or --in-place\nTry 'tabacco help restore'."
    );
    assert_eq!(
        error("--bogus"),
        "invalid option '--bogus'\nTry 'tabacco --help'."
    );
    assert_eq!(
        error("frobnicate"),
        "unknown command \"frobnicate\"\nTry 'tabacco --help'."
    );
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
    assert_eq!(
        parse_str("completion fish").unwrap().command,
        Command::Completion(Shell::Fish)
    );
    for bad in ["completion", "completion tcsh", "completion bash zsh"] {
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
        Command::Status(StatusArgs {
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
        Command::History(HistoryArgs {
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
        Command::Dump(DumpArgs {
            version: VersionArgs {
                host: Some("web3".into()),
                any_host: false,
                older_than: None,
                repository: None,
                atom: "sql/db2".into(),
            },
            file: None,
            output: Some(PathBuf::from("/tmp/x")),
        })
    );
    let cli = parse_str("ls --long --older-than 7d --repository offsite users/alice cur/").unwrap();
    assert_eq!(
        cli.command,
        Command::Ls(LsArgs {
            version: VersionArgs {
                host: None,
                any_host: false,
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
        "dump --any-host --host web3 a",
    ] {
        assert!(parse_str(bad).is_err(), "{bad:?} accepted");
    }
}
