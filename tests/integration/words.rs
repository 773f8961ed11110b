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
            "/mail/alice",
        ])
        .success()
        .stdout;
    assert_eq!(dumped, format!("alice mail/alice\n{pipe_command}"));

    let target = f.path("restored");
    f.tabacco(&["restore", "--target", target.to_str().unwrap(), "*"])
        .success();
    assert_eq!(read("file-restore.env"), read("file-backup.env"));
    assert_eq!(read("pipe-restore.env"), pipe_hook);
    assert_eq!(read("pipe-command-restore.env"), pipe_command);
    assert_eq!(read("pipe-restored"), dumped);
}
