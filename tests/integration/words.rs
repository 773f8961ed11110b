//! The original program's own words: the names its hooks are told, tenant
//! names such as `alice@example.org`, its JSON records and its forms, and a
//! restore plan that says what it will touch.

use crate::common::Fixture;
use std::fs;

/// A shell command printing the naming variables of its environment, sorted
/// (`RESTORE_TARGET` and `BACKUP_STATUS` differ by design).
const NAMES_OF_ENV: &str =
    "env | grep -E \"^(BACKUP_ID|SOURCE_NAME|DATASET_NAME|ATOM_[A-Z_]*)=\" | sort";

/// [`NAMES_OF_ENV`] into `file`.
fn env_dump(file: &str) -> String {
    format!("{NAMES_OF_ENV} > {file}")
}

/// The hook variables of the original: `ATOM_NAMES` holds the atoms' own
/// names, so the documented `clever_mysql_dump $ATOM_NAMES` hook dumps
/// `db1` and `db2`; `ATOM_NAME` is what `${atom.name}` substitutes;
/// `DATASET_NAME` is the same at backup and restore. Failed before: hooks got
/// `ATOM_NAMES=sql/db1 sql/db2`, dump commands `ATOM_NAME=sql/db1`, and
/// restore hooks the source as `DATASET_NAME` where backup hooks of a pipe
/// dataset got the atom's full name.
#[test]
fn hooks_get_the_original_variables_at_backup_and_restore() {
    let f = Fixture::new();
    fs::create_dir_all(f.path("data/sql")).unwrap();
    let pre_backup = format!(
        "cd ROOT/data/sql && for db in $ATOM_NAMES; do mkdir -p \"$db\" && echo \"dump of $db\" > \"$db/dump.sql\"; done; {}",
        env_dump("ROOT/file-backup.env")
    );
    f.write_config(
        "etc/sources/sql.yml",
        &format!(
            "name: sql\nhandler: file\nparams: {{path: ROOT/data/sql}}\natoms: [{{name: db1}}, {{name: db2}}]\n\
             pre_backup_command: '{pre_backup}'\npre_restore_command: '{}'\n",
            env_dump("ROOT/file-restore.env")
        ),
    );
    f.write_config(
        "etc/sources/mail.yml",
        &format!(
            "name: mail\nhandler: pipe\nparams:\n  backup_command: 'echo ${{atom.name}} ${{dataset.name}}; {}'\n  \
             restore_command: 'cat > ROOT/pipe-restored; {}'\natoms: [{{name: alice}}]\n\
             pre_backup_command: '{}'\npost_restore_command: '{}'\n",
            NAMES_OF_ENV,
            env_dump("ROOT/pipe-command-restore.env"),
            env_dump("ROOT/pipe-backup.env"),
            env_dump("ROOT/pipe-restore.env"),
        ),
    );
    f.tabacco(&["run"]).success();
    assert_eq!(
        fs::read_to_string(f.path("data/sql/db2/dump.sql")).unwrap(),
        "dump of db2\n"
    );
    let id = |source: &str| {
        let backups = f.query(&[&format!("{source}/*")]);
        backups[0]["id"].as_str().unwrap().to_string()
    };
    let read = |file: &str| fs::read_to_string(f.path(file)).unwrap();
    assert_eq!(
        read("file-backup.env"),
        format!(
            "ATOM_FULL_NAMES=sql/db1 sql/db2\nATOM_NAMES=db1 db2\nBACKUP_ID={}\nDATASET_NAME=sql\nSOURCE_NAME=sql\n",
            id("sql")
        )
    );
    let pipe_hook = format!(
        "ATOM_FULL_NAMES=mail/alice\nATOM_NAMES=alice\nBACKUP_ID={}\nDATASET_NAME=mail/alice\nSOURCE_NAME=mail\n",
        id("mail")
    );
    assert_eq!(read("pipe-backup.env"), pipe_hook);
    let pipe_command = format!(
        "ATOM_FULL_NAME=mail/alice\nATOM_FULL_NAMES=mail/alice\nATOM_NAME=alice\nATOM_NAMES=alice\nBACKUP_ID={}\nDATASET_NAME=mail/alice\nSOURCE_NAME=mail\n",
        id("mail")
    );
    let dumped = f
        .restic(&[
            "dump",
            "--tag",
            "tabacco:source=mail",
            "latest",
            &crate::common::pipe_path("mail/alice"),
        ])
        .success()
        .stdout;
    assert_eq!(dumped, format!("alice mail/alice\n{pipe_command}"));

    let target = f.path("restored");
    f.tabacco(&["restore", "--target", target.to_str().unwrap(), "sql/*"])
        .success();
    // A pipe atom reaches its restore_command in place only.
    f.tabacco(&["restore", "--in-place", "mail/*"]).success();
    assert_eq!(read("file-restore.env"), read("file-backup.env"));
    assert_eq!(read("pipe-restore.env"), pipe_hook);
    assert_eq!(read("pipe-command-restore.env"), pipe_command);
    assert_eq!(read("pipe-restored"), dumped);
}

/// The records as a client of the original, written in Go, marshals them:
/// `null` for an empty list, an empty `path`, zero values for what is unset,
/// timestamps with an offset and nanoseconds, an integer `duration`, restic's
/// status object. Failed before: `duration` came back as `12.0`, which Go
/// cannot decode into an int; `"host": ""` matched no host, `num_versions: 0`
/// was refused (400), the zero `older_than` matched nothing, and `status`
/// had to be a string.
#[test]
fn records_read_what_a_go_client_marshals() {
    use crate::metadb::{fleet_config, Server};
    let f = Fixture::new();
    let server = Server::start(&fleet_config(&f, "", &["web3"]), "127.0.0.1:0");
    let web3 = Some("web3-secret");
    let add = |backup: &str, timestamp: &str, dataset: &str| {
        let body = format!(
            r#"{{"backup":{{"id":"{backup}","timestamp":"{timestamp}","host":"web3","datasets":null}},
               "dataset":{{"id":"{dataset}","source":"sql","atoms":[{{"name":"sql/db1","path":""}}],
               "snapshot_id":"5a8f2c1e","total_files":1,"total_bytes":10,"bytes_added":10,"duration":12}}}}"#
        );
        let (status, text) = server.request("POST", "/api/add_dataset", web3, &body);
        assert_eq!(status, 200, "{text}");
    };
    add("b1", "2026-11-20T10:00:00.123456789+01:00", "d1");
    add("b2", "2026-11-21T09:30:00-00:30", "d2");
    let find = |body: &str| -> Vec<serde_json::Value> {
        let (status, text) = server.request("POST", "/api/find_atoms", web3, body);
        assert_eq!(status, 200, "{body}: {text}");
        serde_json::from_str(&text).unwrap()
    };
    let ids = |found: &[serde_json::Value]| -> Vec<String> {
        found
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_string())
            .collect()
    };

    // Go's zero values: any host, one version, no time limit.
    let newest = find(
        r#"{"pattern":"sql/*","host":"","num_versions":0,"older_than":"0001-01-01T00:00:00Z"}"#,
    );
    assert_eq!(ids(&newest), ["b2"]);
    let dataset = &newest[0]["datasets"][0];
    assert_eq!(newest[0]["timestamp"], "2026-11-21T10:00:00Z");
    assert!(dataset["duration"].is_i64(), "{dataset}");
    assert_eq!(dataset["duration"], 12);
    assert_eq!(dataset["atoms"], serde_json::json!([{"name": "sql/db1"}]));
    // Absent and null: all versions, no limit.
    assert_eq!(
        ids(&find(r#"{"pattern":"sql/db1","older_than":null}"#)),
        ["b2", "b1"]
    );
    // Stored times are whole seconds: 09:00:00.123Z is not older than 09:00:00Z.
    let older = |t: &str| {
        ids(&find(&format!(
            r#"{{"pattern":"sql/db1","older_than":"{t}"}}"#
        )))
    };
    assert_eq!(older("2026-11-20T10:00:01.5+01:00"), ["b1"]);
    assert!(older("2026-11-20T10:00:00+01:00").is_empty());

    let status = serde_json::json!({
        "message_type": "status", "seconds_elapsed": 3, "percent_done": 0.5,
        "total_files": 4, "files_done": 2, "total_bytes": 400, "bytes_done": 200
    });
    let report = serde_json::json!({"host": "web3", "active_jobs": [{
        "host": "web3", "job_id": "j1", "backup_id": "b3", "dataset_id": "d3",
        "dataset_source": "sql", "status": status
    }]});
    let post = |body: &str| {
        let (code, text) = server.request("POST", "/api/update_active_job_status", web3, body);
        assert_eq!(code, 200, "{text}");
    };
    let active = || -> Vec<serde_json::Value> {
        let (code, text) = server.request("GET", "/api/active_jobs", web3, "");
        assert_eq!(code, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    };
    post(&report.to_string());
    assert_eq!(active()[0]["status"], status);
    post(r#"{"host":"web3","active_jobs":null}"#);
    assert!(active().is_empty());
}

/// Go's forms: a listen address `:PORT` is every address (so the metadb
/// still refuses it without tokens), and durations such as `1.5h`, `90s`
/// and `500ms`. Failed before: `:5331` did not resolve, and `1.5h`, `500ms`
/// were invalid durations.
#[test]
fn go_forms_of_addresses_and_durations() {
    let f = Fixture::new();
    let config = crate::metadb::metadb_config(&f, "http_addr: \":5331\"\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tabacco"))
        .args(["metadb", "--config"])
        .arg(&config)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refusing to listen on :5331 without tokens"),
        "{stderr}"
    );

    f.write_config(
        "etc/sources/s.yml",
        "name: sql\nhandler: pipe\nparams: {backup_command: \"echo ${atom.name}\"}\natoms: [{name: db1}]\n\
         schedule: \"@every 90s\"\ntimeout: 1.5h\nretention: {keep_within: 1h30m}\n",
    );
    let check = f.tabacco(&["check"]).success().stdout;
    assert!(
        check.contains("  schedule  @every 90s\n  timeout   1h30m\n"),
        "{check}"
    );
    f.tabacco(&["run"]).success();
    // A backup made just now is not older than 1.5 hours ago, but is older
    // than a time 1.5 hours ahead, written with an offset and nanoseconds.
    assert!(f.query(&["--older-than", "1.5h", "*"]).is_empty());
    f.tabacco(&["query", "--older-than", "500ms", "*"])
        .success();
    let ahead = (chrono::Utc::now() + chrono::Duration::minutes(90))
        .with_timezone(&chrono::FixedOffset::east_opt(3600 + 1800).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, false);
    assert_eq!(f.query(&["--older-than", &ahead, "*"]).len(), 1);
}

/// Tenants' own names, as a mail or hosting provider has them.
const TENANTS: [&str; 6] = [
    "alice@example.org",
    "bob+list@example.org",
    "Maria Rossi",
    "Rossi, Maria",
    "star*",
    "starry",
];

/// Atoms named like tenants, in a file source and a pipe source (listed by
/// `atoms_command`), are backed up, found (a glob can match `*` exactly),
/// restored and reindexed with their names intact. Failed before: such names
/// were refused in the configuration and skipped from `atoms_command`.
#[test]
fn tenant_names_back_up_find_restore_and_reindex() {
    let f = Fixture::new();
    let quoted: Vec<String> = TENANTS.iter().map(|t| format!("{t:?}")).collect();
    for tenant in TENANTS {
        f.write(
            &format!("data/mail/{tenant}/inbox"),
            &format!("mail of {tenant}"),
        );
    }
    let atoms: Vec<String> = quoted.iter().map(|q| format!("{{name: {q}}}")).collect();
    f.write_config(
        "etc/sources/mail.yml",
        &format!(
            "name: mail\nhandler: file\nparams: {{path: ROOT/data/mail}}\natoms: [{}]\n",
            atoms.join(", ")
        ),
    );
    let printed: Vec<String> = TENANTS.iter().map(|t| format!("'{t}'")).collect();
    f.write_config(
        "etc/sources/db.yml",
        &format!(
            "name: db\nhandler: pipe\nparams:\n  backup_command: 'echo dump of ${{atom.name}}'\n  \
             restore_command: 'cat > ROOT/out/${{atom.name}}'\n\
             atoms_command: \"printf '%s\\\\n' {}\"\n",
            printed.join(" ")
        ),
    );
    f.tabacco(&["run"]).success();

    let mut expected: Vec<String> = ["db", "mail"]
        .iter()
        .flat_map(|s| TENANTS.iter().map(move |t| format!("{s}/{t}")))
        .collect();
    expected.sort();
    let sorted = |mut names: Vec<String>| {
        names.sort();
        names
    };
    let before = f.query(&["*"]);
    assert_eq!(sorted(crate::common::atom_names(&before)), expected);
    for tags in f.snapshot_tags() {
        assert!(tags.iter().all(|t| !t.contains(',')), "{tags:?}");
    }
    let found = |pattern: &str| sorted(crate::common::atom_names(&f.query(&[pattern])));
    assert_eq!(found("mail/Maria Rossi"), ["mail/Maria Rossi"]);
    assert_eq!(
        found("*/alice@example.org"),
        ["db/alice@example.org", "mail/alice@example.org"]
    );
    assert_eq!(found("db/star*"), ["db/star*", "db/starry"]);
    assert_eq!(found(r"db/star\*"), ["db/star*"]);
    assert_eq!(found(r"mail/Rossi, Maria"), ["mail/Rossi, Maria"]);

    let target = f.path("restored");
    fs::create_dir_all(f.path("out")).unwrap();
    f.tabacco(&["restore", "--target", target.to_str().unwrap(), "*"])
        .success();
    f.tabacco(&["restore", "--in-place", "db/*"]).success();
    let restored = target.join(f.path("data/mail").strip_prefix("/").unwrap());
    for tenant in TENANTS {
        assert_eq!(
            fs::read_to_string(restored.join(tenant).join("inbox")).unwrap(),
            format!("mail of {tenant}")
        );
        let dump = format!("dump of {tenant}\n");
        assert_eq!(
            fs::read_to_string(target.join("db").join(tenant)).unwrap(),
            dump
        );
        assert_eq!(
            fs::read_to_string(f.path("out").join(tenant)).unwrap(),
            dump
        );
    }

    fs::remove_file(f.path("work/metadb.sqlite")).unwrap();
    f.tabacco(&["reindex"]).success();
    let after = f.query(&["*"]);
    let names_and_paths = |backups: &[serde_json::Value]| {
        let mut atoms: Vec<String> = backups
            .iter()
            .flat_map(|b| b["datasets"].as_array().unwrap().iter())
            .flat_map(|d| d["atoms"].as_array().unwrap().iter())
            .map(|a| a.to_string())
            .collect();
        atoms.sort();
        atoms
    };
    assert_eq!(names_and_paths(&after), names_and_paths(&before));
}

/// The plan says what a restore will touch: where a file atom's files
/// land, where a pipe atom's stream lands as a file, or (in place) that it
/// is fed to its restore_command, the live service; `--dry-run` prints
/// exactly that plan and runs nothing. Failed before: the plan named
/// versions only.
#[test]
fn restore_plan_says_what_it_will_touch() {
    let f = Fixture::new();
    f.write("data/mail/maria/inbox", "mail");
    f.write_config(
        "etc/sources/s.yml",
        "- name: mail\n  handler: file\n  params: {path: ROOT/data/mail}\n  atoms: [{name: maria}]\n  \
         pre_restore_command: 'touch ROOT/hook-ran'\n\
         - name: db\n  handler: pipe\n  params: {backup_command: 'echo dump', restore_command: 'cat > ROOT/fed-${atom.name}'}\n  \
         atoms: [{name: alice}]\n",
    );
    f.tabacco(&["run"]).success();
    let target = f.path("restored");
    let restore = |extra: &[&str]| {
        let mut args = vec!["restore", "--target", target.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push("*");
        f.tabacco(&args).success().stdout
    };
    let plan = restore(&["--dry-run"]);
    let rows: Vec<&str> = plan.lines().collect();
    assert_eq!(rows.len(), 3, "{plan}");
    assert!(
        rows[0].starts_with("ATOM") && rows[0].ends_with("RESTORES"),
        "{plan}"
    );
    let fed = f.path("fed-alice");
    let stream = target.join("db/alice");
    assert!(
        rows[1].starts_with("db/alice ")
            && rows[1].ends_with(&format!("a file {}", stream.display())),
        "{plan}"
    );
    let landing = target.join(f.path("data/mail/maria").strip_prefix("/").unwrap());
    assert!(
        rows[2].starts_with("mail/maria ")
            && rows[2].ends_with(&format!("files under {}", landing.display())),
        "{plan}"
    );
    assert!(!target.exists() && !fed.exists() && !f.path("hook-ran").exists());

    assert_eq!(restore(&[]), plan, "the same plan, printed first");
    assert_eq!(fs::read_to_string(&stream).unwrap(), "dump\n");
    assert!(!fed.exists(), "a restore to a directory feeds no service");
    let in_place = f
        .tabacco(&["restore", "--dry-run", "--in-place", "db/alice"])
        .success()
        .stdout;
    assert!(
        in_place.ends_with(&format!(
            "the live service, fed to restore_command: cat > {}'alice'\n",
            f.path("fed-").display()
        )),
        "{in_place}"
    );
    assert!(landing.join("inbox").exists() && f.path("hook-ran").exists());
}
