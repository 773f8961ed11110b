//! The core: configuration, file and pipe handlers, restic, `run`, `check`
//! and `query` on the embedded metadb.

use crate::common::{atom_names, Fixture};

#[test]
fn file_and_pipe_sources_are_backed_up_and_found() {
    let f = Fixture::new();
    f.write("data/users/account1/mail", "hello");
    f.write("data/users/acct-2/mail", "world");
    f.write_config(
        "etc/sources/users.yml",
        "- name: users\n  handler: file\n  params: {path: ROOT/data/users}\n  atoms:\n    - name: account1\n    - name: account2\n      path: acct-2\n",
    );
    f.write_config(
        "etc/sources/sql.yml",
        "name: sql\nhandler: pipe\nparams:\n  backup_command: \"echo dump of ${atom.name}\"\natoms: [{name: db1}, {name: db2}]\n",
    );
    let run = f.tabacco(&["run"]).success();
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, "", "run prints nothing on success");

    let backups = f.query(&["*"]);
    let mut names = atom_names(&backups);
    names.sort();
    assert_eq!(
        names,
        ["sql/db1", "sql/db2", "users/account1", "users/account2"]
    );
    let users = f.query(&["users/*"]);
    assert_eq!(users.len(), 1);
    let dataset = &users[0]["datasets"][0];
    assert_eq!(dataset["source"], "users");
    assert_eq!(
        dataset["atoms"][1]["path"],
        f.path("data/users/acct-2").display().to_string()
    );
    assert_eq!(users[0]["host"], "test-host");

    // One snapshot per file source, one per pipe atom, each uniquely tagged.
    let tags = f.snapshot_tags();
    assert_eq!(tags.len(), 3);
    for t in &tags {
        assert_eq!(
            t.iter()
                .filter(|t| t.starts_with("tabacco:dataset="))
                .count(),
            1
        );
    }
    let dump = f
        .restic(&[
            "dump",
            "latest",
            "--tag",
            "tabacco:atom=sql/db2",
            "/sql/db2",
        ])
        .success();
    assert_eq!(dump.stdout, "dump of db2\n");
}
