//! File sources and restores as operators expect them: excludes, part of an
//! atom, `ls`, `dump`, and the repository's compression.

use crate::common::Fixture;
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// Every file (not directory) under `root`, relative to it.
fn files_under(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out
}

/// A tree with files each exclusion option leaves out, and files it keeps.
fn excluding_fixture() -> Fixture {
    let f = Fixture::new();
    f.write("data/srv/keep.txt", "kept");
    f.write("data/srv/sub/keep.log", "kept too");
    f.write("data/srv/scratch.tmp", "by pattern");
    f.write("data/srv/sub/old.bak", "by exclude_file");
    f.write(
        "data/srv/cache/CACHEDIR.TAG",
        "Signature: 8a477f597d28d172789f06886806bc55\n",
    );
    f.write("data/srv/cache/blob", "by exclude_caches");
    f.write("data/srv/build/.nobackup", "");
    f.write("data/srv/build/out", "by exclude_if_present");
    f.write("data/srv/big.iso", &"x".repeat(4096));
    f.write("etc/excludes", "# backups of backups\n\n*.bak\n");
    f.write_config(
        "etc/handlers/tree.yml",
        "name: tree\ntype: file\nparams:\n  exclude: ['*.tmp']\n  exclude_file: [ROOT/etc/excludes]\n  \
         exclude_caches: true\n  exclude_if_present: [.nobackup]\n  one_file_system: true\n  \
         exclude_larger_than: 2k\n",
    );
    f.write_config(
        "etc/sources/srv.yml",
        "name: srv\nhandler: tree\nparams: {path: ROOT/data/srv}\n",
    );
    f
}

#[test]
fn excluded_files_are_neither_in_the_snapshot_nor_restored() {
    let f = excluding_fixture();
    let check = f.tabacco(&["check"]).success();
    assert!(
        check.stdout.contains(&format!(
            "excluding: --exclude '*.tmp' --exclude-file {} --exclude-caches \
             --exclude-if-present .nobackup --one-file-system --exclude-larger-than 2k",
            f.path("etc/excludes").display()
        )),
        "{}",
        check.stdout
    );
    f.tabacco(&["run"]).success();
    let kept: BTreeSet<String> = ["keep.txt", "sub/keep.log", "cache/CACHEDIR.TAG"]
        .map(String::from)
        .into();
    // restic keeps CACHEDIR.TAG itself and an --exclude-if-present marker.
    let mut in_snapshot = kept.clone();
    in_snapshot.insert("build/.nobackup".into());
    let ls = f.restic(&["ls", "latest", "--json"]).success();
    let root = format!("{}/", f.path("data/srv").display());
    let listed: BTreeSet<String> = ls
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|n| n["type"] == "file")
        .map(|n| {
            n["path"]
                .as_str()
                .unwrap()
                .trim_start_matches(&root)
                .to_string()
        })
        .collect();
    let without_marker: BTreeSet<String> = listed
        .iter()
        .filter(|p| *p != "build/.nobackup")
        .cloned()
        .collect();
    assert_eq!(without_marker, kept, "{}", ls.stdout);

    let target = f.path("restored");
    f.tabacco(&["restore", "--target", target.to_str().unwrap(), "srv"])
        .success();
    let restored = target.join(f.path("data/srv").strip_prefix("/").unwrap());
    assert_eq!(files_under(&restored), listed);
    assert!(listed.is_subset(&in_snapshot));
    // The restore drill counts what was backed up, not what was left out.
    let verify = f.tabacco(&["-v", "verify"]).success();
    assert!(
        verify.stderr.contains("restored and read back"),
        "{verify:?}"
    );
}

#[test]
fn exclusions_restic_would_refuse_are_configuration_errors() {
    let f = Fixture::new();
    for (params, words) in [
        (
            "exclude_larger_than: 1.5g",
            "exclude_larger_than: \"1.5g\" is not a size",
        ),
        (
            "exclude: ['a[b']",
            "exclude: pattern \"a[b\": '[' is not closed",
        ),
        ("exclude_file: [ROOT/nothing]", "exclude_file: "),
        (
            "exclude_if_present: ['a/b']",
            "exclude_if_present: \"a/b\" is not a file name",
        ),
    ] {
        f.write_config(
            "etc/sources/srv.yml",
            &format!("name: srv\nhandler: file\nparams:\n  path: ROOT/data\n  {params}\n"),
        );
        let run = f.tabacco(&["check"]).status(2);
        let file = f.path("etc/sources/srv.yml").display().to_string();
        assert!(run.stderr.contains(&format!("{file}:")), "{run:?}");
        assert!(run.stderr.contains(words), "{params}: {run:?}");
    }
    f.write_config(
        "etc/sources/db.yml",
        "name: db\nhandler: pipe\nparams: {backup_command: 'echo x', exclude: ['*']}\n",
    );
    let run = f.tabacco(&["check"]).status(2);
    assert!(
        run.stderr
            .contains("the pipe handler takes no exclude options"),
        "{run:?}"
    );
}

/// Mailboxes as file atoms, and a pipe atom beside them.
fn mail_fixture() -> Fixture {
    let f = Fixture::new();
    f.write("data/mail/alice/cur/1", "first message");
    f.write("data/mail/alice/cur/2", "second message");
    f.write("data/mail/alice/new/3", "third message");
    f.write("data/mail/bob/cur/1", "bob's message");
    f.write_config(
        "etc/sources/mail.yml",
        "name: mail\nhandler: file\nparams: {path: ROOT/data/mail}\natoms: [{name: alice}, {name: bob}]\n",
    );
    f.write(
        "etc/sources/db.yml",
        "name: db\nhandler: pipe\nparams: {backup_command: 'printf \"dump of %s\\n\" ${atom.name}', restore_command: 'cat > /dev/null'}\natoms: [{name: main}]\n",
    );
    f.tabacco(&["run"]).success();
    f
}

#[test]
fn restore_path_brings_back_one_message_and_nothing_else() {
    let f = mail_fixture();
    let target = f.path("restored");
    let t = target.to_str().unwrap();
    let run = f
        .tabacco(&["restore", "--target", t, "--path", "cur/2", "mail/alice"])
        .success();
    assert!(
        run.stdout.contains("data/mail/alice, only cur/2\n"),
        "{}",
        run.stdout
    );
    let alice = f.path("data/mail/alice");
    let restored = target.join(alice.strip_prefix("/").unwrap());
    assert_eq!(
        files_under(&target),
        [format!(
            "{}/cur/2",
            alice.strip_prefix("/").unwrap().display()
        )]
        .into()
    );
    assert_eq!(
        fs::read_to_string(restored.join("cur/2")).unwrap(),
        "second message"
    );

    // A glob, and several parts, across atoms.
    let target = f.path("restored-glob");
    let t = target.to_str().unwrap();
    f.tabacco(&[
        "restore", "--target", t, "--path", "cur/*", "--path", "new", "mail/*",
    ])
    .success();
    let mail = target.join(f.path("data/mail").strip_prefix("/").unwrap());
    let all: BTreeSet<String> = ["alice/cur/1", "alice/cur/2", "alice/new/3", "bob/cur/1"]
        .map(String::from)
        .into();
    assert_eq!(files_under(&mail), all);

    // A part that is not there fails, and says so.
    let t = f.path("restored-none").display().to_string();
    let run = f
        .tabacco(&["restore", "--target", &t, "--path", "cur/9", "mail/bob"])
        .status(1);
    assert!(run.stderr.contains("not in snapshot"), "{run:?}");
}

#[test]
fn restore_path_refuses_what_is_not_inside_a_file_atom() {
    let f = mail_fixture();
    let t = f.path("restored").display().to_string();
    for bad in [
        "../bob",
        "/etc/passwd",
        "cur/../../bob",
        "./cur",
        "",
        "cur/[",
    ] {
        let run = f
            .tabacco(&["restore", "--target", &t, "--path", bad, "mail/alice"])
            .status(2);
        let words = match bad {
            "cur/[" => "'[' is not closed".to_string(),
            _ => format!("{bad:?} is not a path inside the atom"),
        };
        assert!(run.stderr.contains(&words), "{run:?}");
    }
    let run = f
        .tabacco(&["restore", "--target", &t, "--path", "x", "db/main"])
        .status(1);
    assert!(
        run.stderr.contains("db/main is a stream with no parts")
            && run.stderr.contains("tabacco dump"),
        "{run:?}"
    );
    let run = f
        .tabacco(&[
            "restore",
            "--in-place",
            "--remote",
            "h",
            "--path",
            "x",
            "mail/bob",
        ])
        .status(2);
    assert!(run.stderr.contains("not with --remote"), "{run:?}");
    assert!(!f.path("restored").exists());
}

#[test]
fn dump_writes_what_the_producer_wrote_and_runs_no_restore_command() {
    let f = Fixture::new();
    // Binary, with every byte value, and larger than a pipe's buffer.
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    fs::write(f.path("data/producer.bin"), &data).unwrap();
    f.write_config(
        "etc/sources/db.yml",
        "name: db\nhandler: pipe\nparams: {backup_command: 'cat ROOT/data/producer.bin', \
         restore_command: 'touch ROOT/restore-ran'}\natoms: [{name: main}, {name: other}]\n",
    );
    f.write_config(
        "etc/sources/mail.yml",
        "name: mail\nhandler: file\nparams: {path: ROOT/data/mail}\natoms: [{name: alice}]\n",
    );
    f.write("data/mail/alice/cur/1", "first message\n");
    f.tabacco(&["run"]).success();

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tabacco"))
        .args(["--config", f.config().to_str().unwrap(), "dump", "db/main"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == data,
        "the dump differs from what the producer wrote"
    );
    // A reader that goes away (`| head`) ends the dump, quietly.
    let mut head = std::process::Command::new(env!("CARGO_BIN_EXE_tabacco"))
        .args(["--config", f.config().to_str().unwrap(), "dump", "db/main"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut start = [0u8; 10];
    std::io::Read::read_exact(&mut head.stdout.take().unwrap(), &mut start).unwrap();
    let out = head.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(start[..], data[..10]);
    let file = f.path("dumped.bin");
    f.tabacco(&["dump", "-o", file.to_str().unwrap(), "db/main"])
        .success();
    assert!(fs::read(&file).unwrap() == data);
    // -o writes a new file only.
    let run = f
        .tabacco(&["dump", "--output", file.to_str().unwrap(), "db/main"])
        .status(1);
    assert!(run.stderr.contains("cannot create"), "{run:?}");
    assert!(
        fs::read(&file).unwrap() == data,
        "the existing file is untouched"
    );
    assert!(
        !f.path("restore-ran").exists(),
        "dump runs no restore command"
    );

    // One file of a file atom.
    let run = f.tabacco(&["dump", "mail/alice", "cur/1"]).success();
    assert_eq!(run.stdout, "first message\n");

    for (args, words) in [
        (
            &["dump", "db/*"][..],
            "db/* matches 2 atoms: db/main db/other; name one",
        ),
        (&["dump", "nothing"][..], "no recorded atom matches nothing"),
        (
            &["dump", "mail/alice"][..],
            "mail/alice is a file atom: name a file in it",
        ),
        (
            &["dump", "db/main", "x"][..],
            "db/main is a pipe atom, one stream",
        ),
        (&["dump", "mail/alice", "cur/9"][..], "restic"),
    ] {
        let run = f.tabacco(args).status(1);
        assert!(run.stderr.contains(words), "{args:?}: {run:?}");
    }
    f.tabacco(&["dump", "mail/alice", "../x"]).status(2);
}

#[test]
fn ls_lists_exactly_the_files_of_the_atom() {
    let f = mail_fixture();
    let run = f.tabacco(&["ls", "mail/alice"]).success();
    let entries: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    let listed: BTreeSet<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().into(),
                e["type"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("cur", "dir"),
        ("cur/1", "file"),
        ("cur/2", "file"),
        ("new", "dir"),
        ("new/3", "file"),
    ]
    .map(|(p, t)| (p.to_string(), t.to_string()))
    .into();
    assert_eq!(listed, expected, "{}", run.stdout);
    let second = entries.iter().find(|e| e["path"] == "cur/2").unwrap();
    assert_eq!(second["size"], "second message".len());

    let run = f.tabacco(&["ls", "--long", "mail/alice", "new"]).success();
    let entries: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    let paths: Vec<&str> = entries
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["new", "new/3"]);

    let run = f.tabacco(&["ls", "db/main"]).status(1);
    assert!(run.stderr.contains("db/main is a pipe atom"), "{run:?}");
    let run = f.tabacco(&["ls", "mail/*"]).status(1);
    assert!(
        run.stderr.contains("matches 2 atoms: mail/alice mail/bob"),
        "{run:?}"
    );
    let run = f.tabacco(&["ls", "mail/alice", "old"]).status(1);
    assert!(run.stderr.contains("nothing at"), "{run:?}");
    f.tabacco(&["ls", "mail/alice", "/etc"]).status(2);
}

/// The size of every file under `root`, in bytes.
fn bytes_under(root: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

/// A repository of compressible data written with `compression`: its size.
fn repository_size(compression: &str) -> u64 {
    let f = Fixture::new();
    let text: String = (0..60_000)
        .map(|i| format!("line {} of a log\n", i % 50))
        .collect();
    f.write("data/logs/app.log", &text);
    let agent = fs::read_to_string(f.config()).unwrap().replace(
        "    password:",
        &format!("    compression: {compression}\n    password:"),
    );
    fs::write(f.config(), agent).unwrap();
    f.write_config(
        "etc/sources/logs.yml",
        "name: logs\nhandler: file\nparams: {path: ROOT/data/logs}\n",
    );
    f.tabacco(&["run"]).success();
    bytes_under(&f.path("repo/data"))
}

#[test]
fn compression_max_writes_a_smaller_repository_than_off() {
    let off = repository_size("off");
    let max = repository_size("max");
    assert!(max * 4 < off, "max: {max} bytes, off: {off} bytes");
}

#[test]
fn repository_options_reach_every_restic_call() {
    let f = Fixture::new();
    // restic behind a script that notes its arguments.
    let log = f.path("restic-calls");
    let wrapper = f.write(
        "bin/restic",
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> {}\nexec {} \"$@\"\n",
            log.display(),
            crate::common::restic_binary()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let agent = format!(
        "hostname: test-host\nrepository:\n  params:\n    uri: {}\n    password: {}\n    \
         compression: max\n    limit_upload: 5000\n    limit_download: 6000\nwork_dir: {}\ninit: auto\nrestic_binary: {}\n",
        f.path("repo").display(),
        crate::common::PASSWORD,
        f.path("work").display(),
        wrapper.display()
    );
    fs::write(f.config(), agent).unwrap();
    f.write("data/mail/alice/cur/1", "first message");
    f.write_config(
        "etc/sources/mail.yml",
        "name: mail\nhandler: file\nparams: {path: ROOT/data/mail}\natoms: [{name: alice}]\n",
    );
    f.tabacco(&["run"]).success();
    f.tabacco(&["ls", "mail/alice"]).success();
    f.tabacco(&["dump", "mail/alice", "cur/1"]).success();
    let t = f.path("restored").display().to_string();
    f.tabacco(&["restore", "--target", &t, "mail/alice"])
        .success();
    let calls = fs::read_to_string(&log).unwrap();
    let repository_calls: Vec<&str> = calls.lines().filter(|l| *l != "version").collect();
    assert!(repository_calls.len() >= 5, "{calls}");
    for call in repository_calls {
        assert!(
            call.starts_with("--compression max --limit-upload 5000 --limit-download 6000 "),
            "{calls}"
        );
    }
}

#[test]
fn repository_options_restic_would_refuse_are_configuration_errors() {
    for (option, words) in [
        (
            "compression: fast",
            "compression must be auto, off or max, not \"fast\"",
        ),
        (
            "limit_upload: 0",
            "limit_upload is in KiB/s and must be at least 1",
        ),
        ("limit_download: -5", "limit_download"),
    ] {
        let f = Fixture::new();
        let agent = fs::read_to_string(f.config())
            .unwrap()
            .replace("    password:", &format!("    {option}\n    password:"));
        fs::write(f.config(), agent).unwrap();
        let run = f.tabacco(&["check"]).status(2);
        assert!(
            run.stderr.contains(&f.config().display().to_string()) && run.stderr.contains(words),
            "{option}: {run:?}"
        );
    }
}
