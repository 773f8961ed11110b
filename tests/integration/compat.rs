//! Configurations in the style existing deployments generate
//! (`tests/fixtures/float-style`, a verbatim copy of shared/compat) load,
//! check, run, query and restore unchanged once their placeholders are filled in.

use crate::common::{atom_names, Fixture};
use std::fs;
use std::path::Path;

fn install(f: &Fixture, from: &Path, to: &str) {
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let rel = format!("{to}/{name}");
        if path.is_dir() {
            install(f, &path, &rel);
            continue;
        }
        let mut text = fs::read_to_string(&path).unwrap();
        if rel.ends_with("/agent.yml") {
            text += &crate::common::restic_binary_yaml();
        }
        let text = text
            .replace("REPO_DIR", &f.path("repo").display().to_string())
            .replace("WORK_DIR", &f.path("work").display().to_string())
            .replace("DATA_DIR", &f.path("data").display().to_string());
        f.write(&rel, &text);
    }
}

#[test]
fn float_style_configuration_checks_runs_and_queries() {
    let f = Fixture::new();
    install(
        &f,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/float-style"),
        "etc",
    );
    f.write("data/myservice/file.txt", "service data");
    // Existing deployments have their repository: here `tabacco init`
    // creates it.
    f.tabacco(&["init"]).success();

    let check = f
        .tabacco(&["check"])
        .success()
        .stdout
        .replace(&f.root.display().to_string(), "ROOT");
    assert!(check.contains("host        host1\n"), "{check}");
    assert!(check.contains(
        "source myservice/data\n  handler   file\n  schedule  @random_every 1d\n  dataset   myservice/data\n    atom    myservice/data/data  ROOT/data/myservice\n"
    ), "{check}");
    assert!(check.contains("  dataset   myservice/db/alpha\n    atom    myservice/db/alpha\n  dataset   myservice/db/beta\n"), "{check}");

    f.tabacco(&["run"]).success();
    let mut names = atom_names(&f.query(&["myservice/*"]));
    names.sort();
    assert_eq!(
        names,
        [
            "myservice/data/data",
            "myservice/db/alpha",
            "myservice/db/beta"
        ]
    );
    assert_eq!(atom_names(&f.query(&["myservice/db/*"])).len(), 2);
    let dump = f
        .restic_with_password(
            "not-a-real-secret",
            &[
                "dump",
                "latest",
                "--tag",
                "tabacco:atom=myservice/db/beta",
                &crate::common::pipe_path("myservice/db/beta"),
            ],
        )
        .success();
    assert_eq!(dump.stdout, "rows of beta\n");

    // Restore, as existing deployments do it.
    std::fs::remove_dir_all(f.path("data/myservice")).unwrap();
    f.tabacco(&["restore", "--target", "/", "myservice/data/*"])
        .success();
    assert_eq!(
        std::fs::read_to_string(f.path("data/myservice/file.txt")).unwrap(),
        "service data"
    );
    f.tabacco(&["restore", "--target", "/", "myservice/db/*"])
        .success();
    for db in ["alpha", "beta"] {
        let restored = std::fs::read_to_string(f.path(&format!("data/restored-{db}.sql"))).unwrap();
        assert_eq!(restored, format!("rows of {db}\n"));
    }
}
