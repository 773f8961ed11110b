//! Packaging: the man pages lint clean and document every command and
//! option `tabacco help` lists, the shell scripts pass shellcheck, the
//! systemd units pass `systemd-analyze verify`, `make install` writes the
//! expected tree and `make uninstall` removes it, the completion scripts are
//! valid and complete, and the example configurations load.
//!
//! The external tools (mandoc, shellcheck, systemd-analyze, make, bash) are
//! required: a missing one fails its test with the package to install. Only
//! zsh is optional.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_tabacco");

/// The source tree.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch directory, removed when dropped (kept if the test failed).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("tabacco-packaging-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Runs `program args` and returns (exit code, stdout, stderr); a missing
/// program fails the test naming the Debian package that provides it.
#[track_caller]
fn tool(program: &str, package: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): install it (apt-get install {package})")
        });
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `tabacco ARGS`, which must succeed; its stdout.
fn tabacco(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(out.status.success(), "tabacco {args:?} failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Files under `dir` (relative to `dir`), sorted.
fn files_under(dir: &Path) -> BTreeSet<String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.insert(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = BTreeSet::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

/// man/*.N, sorted.
fn man_pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = fs::read_dir(root().join("man"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8"))
        })
        .collect();
    pages.sort();
    pages
}

#[test]
fn man_pages_lint_clean() {
    let pages = man_pages();
    assert!(pages.len() >= 2, "man pages missing: {pages:?}");
    for page in pages {
        let (code, out, err) = tool(
            "mandoc",
            "mandoc",
            &["-T", "lint", "-W", "warning", page.to_str().unwrap()],
        );
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (Some(0), "", ""),
            "mandoc -T lint -W warning {}",
            page.display()
        );
    }
}

/// Where quotes in `text` (a rendered page) do not pair: a `‘` opened in
/// another (mdoc's `Ql a , Ql b` nests: `(‘36h, ‘7d’’)`), a `’` that closes
/// nothing, one left open; the same for `“ ”`. Apostrophes render as `'`.
fn unpaired_quotes(text: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    for (open, close) in [('‘', '’'), ('“', '”')] {
        let mut depth = 0;
        for (n, line) in text.lines().enumerate() {
            for c in line.chars() {
                if c == open {
                    depth += 1;
                    if depth > 1 {
                        wrong.push(format!("line {}: {open} inside {open}: {line}", n + 1));
                    }
                } else if c == close {
                    if depth == 0 {
                        wrong.push(format!("line {}: {close} closes nothing: {line}", n + 1));
                    }
                    depth = (depth - 1).max(0);
                }
            }
            // A quoted word is short: one still open past the next line is
            // a mistake, not a line break.
            if depth > 0 && line.trim().is_empty() {
                wrong.push(format!("line {}: {open} left open", n + 1));
                depth = 0;
            }
        }
    }
    wrong
}

/// Issue 28, item 7: nested quotes rendered wrongly in 7 places
/// (`(‘36h, ‘7d’’)`), and an example ended `| jq.`.
#[test]
fn man_pages_render_with_paired_quotes_and_whole_commands() {
    assert_eq!(unpaired_quotes("(‘36h’, ‘7d’) it's “x”").len(), 0);
    assert_eq!(unpaired_quotes("(‘36h, ‘7d’’)").len(), 1);
    for page in man_pages() {
        let (code, text, err) = tool(
            "mandoc",
            "mandoc",
            &["-T", "utf8", "-O", "width=78", page.to_str().unwrap()],
        );
        assert_eq!((code, err.as_str()), (Some(0), ""), "{}", page.display());
        // Bold and underline by overstriking, as mandoc renders them.
        let plain: String = {
            let mut out: Vec<char> = Vec::new();
            for c in text.chars() {
                if c == '\u{8}' {
                    out.pop();
                    continue;
                }
                out.push(c);
            }
            out.into_iter().collect()
        };
        let wrong = unpaired_quotes(&plain);
        assert!(
            wrong.is_empty(),
            "{}:\n{}",
            page.display(),
            wrong.join("\n")
        );
        // A command in an example keeps its last word: `jq .`, not `jq.`.
        for line in plain.lines().filter(|l| l.contains("| jq")) {
            assert!(
                !line.trim_end().ends_with("jq."),
                "{}: {line}",
                page.display()
            );
        }
    }
}

/// Issue 28, item 7: tabacco-agent(8) said missed runs were lost, while
/// tabacco.yml(5) CATCH-UP says they are caught up (they are); the
/// example metadb.yml and the metadb's unit listed fewer reloaded settings
/// than tabacco-metadb(8).
#[test]
fn man_pages_and_examples_agree() {
    let agent = fs::read_to_string(root().join("man/tabacco-agent.8")).unwrap();
    assert!(
        !agent.contains("are lost"),
        "tabacco-agent(8) on missed runs"
    );
    assert!(agent.contains("Missed runs are caught up"));
    assert!(agent.contains(".Ql catch_up: false"));

    // The settings tabacco-metadb(8) says SIGHUP reloads, as `.Cm key`
    // lines of the paragraph that ends "are reloaded with the tokens".
    let metadb = fs::read_to_string(root().join("man/tabacco-metadb.8")).unwrap();
    let (before, _) = metadb
        .split_once("are reloaded with the tokens on SIGHUP")
        .unwrap();
    let paragraph = before.rsplit(".Pp").next().unwrap();
    let mut reloaded: Vec<&str> = paragraph
        .lines()
        .filter_map(|l| l.strip_prefix(".Cm "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    reloaded.push("tokens");
    assert!(reloaded.len() >= 8, "{reloaded:?}");
    for (file, comment) in [
        ("contrib/examples/metadb.yml", "#"),
        ("contrib/systemd/tabacco-metadb.service", "#"),
        ("contrib/init.d/tabacco-metadb", "#"),
    ] {
        let text = fs::read_to_string(root().join(file)).unwrap();
        let comments: String = text
            .lines()
            .filter(|l| l.trim_start().starts_with(comment))
            .collect::<Vec<_>>()
            .join(" ");
        for key in &reloaded {
            assert!(
                comments.contains(key),
                "{file} does not say that SIGHUP reloads {key}"
            );
        }
    }
}

#[test]
fn shell_scripts_pass_shellcheck() {
    let mut scripts: Vec<PathBuf> = fs::read_dir(root().join("contrib/init.d"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    scripts.sort();
    assert!(!scripts.is_empty(), "no sysvinit script in contrib/init.d");
    for rel in [
        "contrib/demo/setup.sh",
        "contrib/debian/tabacco.postinst",
        "contrib/debian/tabacco.postrm",
    ] {
        scripts.push(root().join(rel));
    }
    let args: Vec<&str> = scripts.iter().map(|p| p.to_str().unwrap()).collect();
    let (code, out, err) = tool("shellcheck", "shellcheck", &args);
    assert_eq!(code, Some(0), "shellcheck:\n{out}{err}");
}

/// The indented lines under the headings of `text` (help output) that end
/// with `heading` (`Commands`, or `ptions` for `Options` and `Global
/// options`).
fn sections<'a>(text: &'a str, heading: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if !line.starts_with(' ') {
            inside = line.ends_with(':') && line.trim_end_matches(':').ends_with(heading);
        } else if inside {
            out.push(line.trim_start());
        }
    }
    out
}

/// The options `tabacco help COMMAND` (or `tabacco help` for None) lists:
/// each line under an options heading starts with names (`-v, --verbose`),
/// maybe followed by the value's name (`FILE`).
fn help_options(command: Option<&str>) -> BTreeSet<String> {
    fn option_names(line: &str, names: &mut BTreeSet<String>) {
        let mut after_name = false;
        for word in line.split_whitespace() {
            if word.starts_with('-') {
                for name in word.trim_end_matches(',').split('|') {
                    names.insert(name.to_string());
                }
                after_name = true;
            } else if after_name && word.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                after_name = false; // the option's value, e.g. FILE
            } else {
                break;
            }
        }
    }
    let mut args = vec!["help"];
    args.extend(command);
    let mut names = BTreeSet::new();
    for line in sections(&tabacco(&args), "ptions") {
        option_names(line, &mut names);
    }
    names
}

/// Commands and options as `tabacco help` and `tabacco help COMMAND` print
/// them: command names from the lines under `Commands:`, and every option
/// name (`-v`, `--verbose`) of any command.
fn help_entries() -> (Vec<String>, BTreeSet<String>) {
    let top = tabacco(&["help"]);
    let commands: Vec<String> = sections(&top, "Commands")
        .iter()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert!(
        commands.len() >= 8,
        "too few commands parsed from help:\n{top}"
    );
    let mut options = help_options(None);
    for c in &commands {
        options.extend(help_options(Some(c)));
    }
    assert!(
        options.contains("--config") && options.contains("-v"),
        "{options:?}"
    );
    (commands, options)
}

/// Whether the mdoc source `man` holds `macro word` as a whole word.
fn has_macro(man: &str, macro_name: &str, word: &str) -> bool {
    let needle = format!("{macro_name} {word}");
    man.match_indices(&needle).any(|(i, _)| {
        let before = man[..i].chars().next_back();
        let after = man[i + needle.len()..].chars().next();
        matches!(before, Some(' ' | '.'))
            && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

#[test]
fn man_page_documents_every_command_and_option_of_help() {
    let man = fs::read_to_string(root().join("man/tabacco.1")).unwrap();
    let (commands, options) = help_entries();
    let mut missing = Vec::new();
    for c in &commands {
        if !has_macro(&man, "Cm", c) {
            missing.push(format!("command {c} (.Cm {c})"));
        }
    }
    for o in &options {
        // mdoc writes --verbose as `Fl -verbose` and -v as `Fl v`.
        let flag = &o[1..];
        if !has_macro(&man, "Fl", flag) {
            missing.push(format!("option {o} (.Fl {flag})"));
        }
    }
    assert!(
        missing.is_empty(),
        "man/tabacco.1 does not document what `tabacco help` lists:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn systemd_units_verify() {
    let scratch = Scratch::new("units");
    let mut units = Vec::new();
    for name in ["tabacco-agent.service", "tabacco-metadb.service"] {
        let text = fs::read_to_string(root().join("contrib/systemd").join(name)).unwrap();
        for line in [
            "Type=simple",
            "ExecReload=/bin/kill -HUP $MAINPID",
            "Restart=on-failure",
            "NoNewPrivileges=yes",
            "PrivateTmp=yes",
        ] {
            assert!(text.lines().any(|l| l == line), "{name} lacks {line}");
        }
        // verify checks that ExecStart exists: point it at the test binary,
        // as `make install` points it at BINDIR.
        assert!(text.contains("ExecStart=/usr/bin/tabacco "), "{name}");
        let path = scratch.0.join(name);
        fs::write(&path, text.replace("/usr/bin/tabacco", BIN)).unwrap();
        units.push(path.display().to_string());
    }
    let mut args = vec!["verify", "--man=no"];
    args.extend(units.iter().map(String::as_str));
    let (code, out, err) = tool("systemd-analyze", "systemd", &args);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (Some(0), "", ""),
        "systemd-analyze verify"
    );
}

/// `make VARS target` in the source tree, which must succeed.
#[track_caller]
fn make(args: &[&str]) {
    let (code, out, err) = tool("make", "make", args);
    assert_eq!(code, Some(0), "make {args:?}:\n{out}{err}");
}

#[test]
fn make_install_writes_the_expected_tree_and_uninstall_removes_it() {
    let scratch = Scratch::new("install");
    let destdir = format!("DESTDIR={}", scratch.0.display());
    let bin = format!("BIN={BIN}");
    make(&["-s", "install", &destdir, "PREFIX=/usr", &bin]);
    let mut expected: BTreeSet<String> = [
        "usr/bin/tabacco",
        "lib/systemd/system/tabacco-agent.service",
        "lib/systemd/system/tabacco-metadb.service",
        "usr/share/bash-completion/completions/tabacco",
        "usr/share/zsh/vendor-completions/_tabacco",
        "usr/share/doc/tabacco/examples/agent.yml",
        "usr/share/doc/tabacco/examples/metadb.yml",
        "usr/share/doc/tabacco/examples/metadb-nginx.conf",
        "usr/share/doc/tabacco/examples/cron.d/tabacco",
        "usr/share/doc/tabacco/examples/init.d/tabacco-agent",
        "usr/share/doc/tabacco/examples/init.d/tabacco-metadb",
        "usr/share/doc/tabacco/README.md",
        "usr/share/fish/vendor_completions.d/tabacco.fish",
        "usr/share/doc/tabacco/examples/handlers/mysql.yml",
        "usr/share/doc/tabacco/examples/handlers/postgresql.yml",
        "usr/share/doc/tabacco/examples/handlers/sqlite.yml",
        "usr/share/doc/tabacco/examples/sources/files.yml",
        "usr/share/doc/tabacco/examples/sources/mysql.yml",
        "usr/share/doc/tabacco/examples/sources/postgresql.yml",
        "usr/share/doc/tabacco/examples/sources/sqlite.yml",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for page in man_pages() {
        let name = page.file_name().unwrap().to_str().unwrap();
        let section = page.extension().unwrap().to_str().unwrap();
        expected.insert(format!("usr/share/man/man{section}/{name}"));
    }
    assert_eq!(files_under(&scratch.0), expected);

    use std::os::unix::fs::PermissionsExt;
    let mode = |rel: &str| {
        fs::metadata(scratch.0.join(rel))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("usr/bin/tabacco"), 0o755);
    for rel in &expected {
        if rel != "usr/bin/tabacco" {
            assert_eq!(mode(rel), 0o644, "{rel}");
        }
    }
    let unit =
        fs::read_to_string(scratch.0.join("lib/systemd/system/tabacco-agent.service")).unwrap();
    assert!(
        unit.contains("\nExecStart=/usr/bin/tabacco agent\n"),
        "{unit}"
    );
    let completion = fs::read_to_string(
        scratch
            .0
            .join("usr/share/bash-completion/completions/tabacco"),
    )
    .unwrap();
    assert_eq!(completion, tabacco(&["completion", "bash"]));

    make(&["-s", "uninstall", &destdir, "PREFIX=/usr", &bin]);
    assert_eq!(files_under(&scratch.0), BTreeSet::new());
    assert!(!scratch.0.join("usr/share/doc/tabacco").exists());
}

#[test]
fn make_install_elsewhere_points_the_units_at_the_binary() {
    let scratch = Scratch::new("install-local");
    let destdir = format!("DESTDIR={}", scratch.0.display());
    let bin = format!("BIN={BIN}");
    make(&["-s", "install", &destdir, "PREFIX=/usr/local", &bin]);
    let files = files_under(&scratch.0);
    assert!(files.contains("usr/local/bin/tabacco"), "{files:?}");
    assert!(
        files.contains("usr/local/share/zsh/site-functions/_tabacco"),
        "{files:?}"
    );
    for unit in ["tabacco-agent", "tabacco-metadb"] {
        let text = fs::read_to_string(
            scratch
                .0
                .join(format!("usr/local/lib/systemd/system/{unit}.service")),
        )
        .unwrap();
        assert!(
            text.contains("\nExecStart=/usr/local/bin/tabacco "),
            "{text}"
        );
        assert!(!text.contains("/usr/bin/tabacco"), "{text}");
    }
    make(&["-s", "uninstall", &destdir, "PREFIX=/usr/local", &bin]);
    assert_eq!(files_under(&scratch.0), BTreeSet::new());
}

#[test]
fn bash_completion_is_valid_and_complete() {
    let scratch = Scratch::new("bash");
    let script = scratch.0.join("tabacco.bash");
    fs::write(&script, tabacco(&["completion", "bash"])).unwrap();
    let script = script.to_str().unwrap();
    let (code, _, err) = tool("bash", "bash", &["-n", script]);
    assert_eq!(code, Some(0), "bash -n: {err}");
    let (code, out, err) = tool("shellcheck", "shellcheck", &["-s", "bash", script]);
    assert_eq!(code, Some(0), "shellcheck:\n{out}{err}");

    // Complete `tabacco WORDS...` in bash and print the candidates.
    let complete = |words: &str| -> BTreeSet<String> {
        let program = format!(
            "source {script}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); _tabacco; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        let (code, out, err) = tool("bash", "bash", &["-c", &program]);
        assert_eq!(code, Some(0), "{words}: {err}");
        out.lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    };
    let (commands, _) = help_entries();
    let top = complete("tabacco ''");
    for c in &commands {
        assert!(top.contains(c), "`tabacco <TAB>` lacks {c}: {top:?}");
    }
    assert_eq!(
        complete("tabacco qu"),
        BTreeSet::from(["query".to_string()])
    );
    assert_eq!(
        complete("tabacco --config /x.yml -v resto"),
        BTreeSet::from(["restore".to_string()])
    );
    assert!(complete("tabacco query --host ''").is_empty());
    // `help` takes a command name, no options: it completes command names.
    assert_eq!(
        complete("tabacco help ''"),
        top.iter()
            .filter(|w| !w.starts_with('-'))
            .cloned()
            .collect()
    );
    for c in commands.iter().filter(|c| *c != "help") {
        let offered = complete(&format!("tabacco {c} -"));
        for option in help_options(Some(c)) {
            assert!(
                offered.contains(&option),
                "`tabacco {c} -<TAB>` lacks {option}: {offered:?}"
            );
        }
    }
}

#[test]
fn zsh_completion_is_valid() {
    let script = tabacco(&["completion", "zsh"]);
    assert!(script.starts_with("#compdef tabacco\n"));
    for c in help_entries().0 {
        assert!(
            script.contains(&format!("'{c}:")),
            "zsh completion lacks {c}"
        );
    }
    let scratch = Scratch::new("zsh");
    let path = scratch.0.join("_tabacco");
    fs::write(&path, &script).unwrap();
    match Command::new("zsh").arg("-n").arg(&path).output() {
        Ok(out) => assert!(out.status.success(), "zsh -n: {out:?}"),
        // zsh is optional: the script's text was checked above.
        Err(e) => println!("note: zsh not runnable ({e}); zsh -n skipped"),
    }
}

#[test]
fn fish_completion_is_valid() {
    let script = tabacco(&["completion", "fish"]);
    for c in help_entries().0 {
        assert!(
            script.contains(&format!(" -a {c} -d ")),
            "fish completion lacks {c}"
        );
    }
    let scratch = Scratch::new("fish");
    let path = scratch.0.join("tabacco.fish");
    fs::write(&path, &script).unwrap();
    let program = format!(
        "source {}; complete -C 'tabacco qu'; complete -C 'tabacco completion '",
        path.display()
    );
    match Command::new("fish").args(["-c", &program]).output() {
        Ok(out) => {
            assert!(out.status.success(), "fish: {out:?}");
            let offered = String::from_utf8_lossy(&out.stdout);
            let words: BTreeSet<&str> = offered
                .lines()
                .map(|l| l.split('\t').next().unwrap())
                .collect();
            assert_eq!(words, BTreeSet::from(["query", "bash", "zsh", "fish"]));
        }
        // fish is optional: the script's text was checked above.
        Err(e) => println!("note: fish not runnable ({e}); its check skipped"),
    }
}

/// `contrib/init.d/NAME` with its paths moved into `dir` and its daemon
/// this build, and its `/etc/default` file `dir/default`.
fn init_script(name: &str, dir: &Path) -> PathBuf {
    let text = fs::read_to_string(root().join("contrib/init.d").join(name)).unwrap();
    let at = |rel: &str| dir.join(rel).display().to_string();
    let text = text
        .replace("DAEMON=/usr/bin/tabacco", &format!("DAEMON={BIN}"))
        .replace("PIDFILE=/run/$NAME.pid", &format!("PIDFILE={}", at("pid")))
        .replace("LOGDIR=/var/log/tabacco", &format!("LOGDIR={}", at("log")))
        .replace(
            "STATEDIR=/var/lib/tabacco",
            &format!("STATEDIR={}", at("state")),
        )
        .replace("RUN_AS=tabacco", "RUN_AS=")
        .replace("/etc/default/$NAME", &at("default"));
    let script = dir.join(name);
    fs::write(&script, text).unwrap();
    script
}

/// Issue 28, item 8: `start` said it started an agent that died at once
/// (exit 0), `status` then said `not running … failed!`, a stale pid file
/// stayed; log lines carried no time; the metadb had no script.
#[test]
fn init_scripts_report_a_daemon_that_dies_at_once() {
    let scratch = Scratch::new("initd");
    let dir = &scratch.0;
    let repository = format!(
        "repository: {{params: {{uri: {}, password: x}}}}\nwork_dir: {}\n",
        dir.join("repo").display(),
        dir.join("work").display()
    );
    fs::write(dir.join("agent.yml"), format!("hostname: h\n{repository}")).unwrap();
    fs::write(
        dir.join("metadb.yml"),
        format!(
            "db_path: {}\nhttp_addr: 127.0.0.1:0\n",
            dir.join("metadb.sqlite").display()
        ),
    )
    .unwrap();
    for (name, config, log) in [
        ("tabacco-agent", "agent.yml", "log/agent.log"),
        ("tabacco-metadb", "metadb.yml", "log/metadb.log"),
    ] {
        let script = init_script(name, dir);
        let run = |action: &str| {
            let (code, out, _) = tool("sh", "dash", &[script.to_str().unwrap(), action]);
            (code, out)
        };
        let defaults = |config: &str| {
            let config = dir.join(config).display().to_string();
            let text = format!("DAEMON_ARGS=\"-v --config {config}\"\n");
            fs::write(dir.join("default"), text).unwrap();
        };
        defaults("missing.yml");
        let (code, out) = run("start");
        assert_eq!(code, Some(1), "{name} start: {out}");
        assert!(out.contains("failed"), "{name} start: {out}");
        assert!(!dir.join("pid").exists(), "{name}: a stale pid file");
        assert_eq!(run("status").0, Some(3), "{name} status");

        defaults(config);
        let (code, out) = run("start");
        assert_eq!(code, Some(0), "{name} start: {out}");
        assert!(dir.join("pid").exists());
        assert_eq!(run("status").0, Some(0), "{name} status");
        assert_eq!(run("reload").0, Some(0), "{name} reload");
        let (code, out) = run("stop");
        assert_eq!(code, Some(0), "{name} stop: {out}");
        assert!(!dir.join("pid").exists());
        // Each line of the log file starts with its time.
        let text = fs::read_to_string(dir.join(log)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() >= 2, "{name}: {text}");
        for line in lines {
            let (time, rest) = line.split_once(' ').unwrap_or_default();
            assert!(
                chrono::DateTime::parse_from_rfc3339(time).is_ok() && rest.starts_with("tabacco: "),
                "{name}: {line}"
            );
        }
    }
}

/// The example agent.yml as shipped, its comments and all, passes `check`
/// as on a host: beside its sources and handlers, with the password and
/// token files it names (check reads them) in place of /etc/tabacco, and
/// its repository made real (a local one, created with that password), so
/// that a `check` that opens the repository passes too.
#[test]
fn example_agent_configuration_checks() {
    let scratch = Scratch::new("example");
    let examples = root().join("contrib/examples");
    let etc = format!("{}/", scratch.0.display());
    let text = fs::read_to_string(examples.join("agent.yml")).unwrap();
    let uri = "uri: sftp:restic@backup1.example.net:/srv/restic/fleet";
    assert!(
        text.contains(uri),
        "the example's repository moved: update this test"
    );
    let repo = scratch.0.join("repo");
    let text = text
        .replace("/etc/tabacco/", &etc)
        .replace(uri, &format!("uri: {}", repo.display()))
        .replace(
            "/var/lib/tabacco",
            &scratch.0.join("work").display().to_string(),
        )
        .replace(
            "/var/cache/tabacco",
            &scratch.0.join("cache").display().to_string(),
        );
    let config = scratch.0.join("agent.yml");
    fs::write(&config, text).unwrap();
    let init = Command::new(crate::common::restic_binary())
        .args(["init", "--repo"])
        .arg(&repo)
        .env("RESTIC_PASSWORD", "fleet password")
        .env("RESTIC_CACHE_DIR", scratch.0.join("cache"))
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    fs::write(scratch.0.join("restic.pw"), "fleet password\n").unwrap();
    fs::write(scratch.0.join("metadb.token"), "host token\n").unwrap();
    for dir in ["sources", "handlers"] {
        std::os::unix::fs::symlink(examples.join(dir), scratch.0.join(dir)).unwrap();
    }
    // Offline: its repository is an example host's.
    let out = Command::new(BIN)
        .args(["check", "--offline", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for source in ["users", "etc", "mysql", "pg", "app"] {
        assert!(
            stdout.lines().any(|l| l == format!("source {source}")),
            "source {source} missing:\n{stdout}"
        );
    }
}

/// A metadb server, killed and reaped when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn example_metadb_configuration_loads() {
    let scratch = Scratch::new("metadb");
    let text = fs::read_to_string(root().join("contrib/examples/metadb.yml")).unwrap();
    // Token files and the database move into the scratch directory.
    let dir = scratch.0.display().to_string();
    let text = text
        .replace("/etc/tabacco/metadb-tokens", &dir)
        .replace("/var/lib/tabacco", &dir);
    fs::write(scratch.0.join("admin.token"), "admin-secret\n").unwrap();
    let config = scratch.0.join("metadb.yml");
    fs::write(&config, text).unwrap();
    let child = Command::new(BIN)
        .args(["metadb", "--http-addr", "127.0.0.1:0", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let stderr = server.0.stderr.take().unwrap();
    let mut seen = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("listening on") {
            assert!(line.contains("4 tokens"), "{line}");
            return;
        }
    }
    panic!("the metadb did not start with the example metadb.yml:\n{seen}");
}

#[test]
fn cron_example_runs_tabacco_run() {
    let text = fs::read_to_string(root().join("contrib/cron/tabacco")).unwrap();
    let jobs: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#') && !l.contains('='))
        .collect();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let fields: Vec<&str> = jobs[0].split_whitespace().collect();
    // /etc/cron.d lines: five time fields, a user, the command.
    assert_eq!(fields[5], "root", "{jobs:?}");
    assert!(jobs[0].ends_with("/usr/bin/tabacco run"), "{jobs:?}");
}

#[test]
fn drift_check_matches_whole_words_only() {
    let man = ".It Fl -hostname Ar h\n.Fl v ,\n.Cm runner\n.It Cm run Op Fl -dry-run\n";
    assert!(!has_macro(man, "Fl", "-host"));
    assert!(has_macro(man, "Fl", "-hostname"));
    assert!(has_macro(man, "Fl", "v"));
    assert!(has_macro(man, "Cm", "run"));
    assert!(!has_macro(man, "Fl", "-dry"));
    assert!(!has_macro(man, "Cm", "check"));
}
