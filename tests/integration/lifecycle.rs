//! A repository's life (issue 25): created once, by `tabacco init` (or the
//! first backup under `init: auto`), never by a typo; many hosts creating
//! one at the same moment make one repository that all of them open; a
//! missing, damaged, foreign or unreachable repository is diagnosed, with
//! its own failure kind, within `repository_timeout`, and never retried
//! blindly. Local repositories and REST ones (`rclone serve restic`), with
//! the restic of this pass.

use crate::agent::{get, Agent};
use crate::common::{restic_binary, Fixture, RestServer, PASSWORD};
use crate::metadb::{fleet_config, Server};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How many hosts start at once.
const HOSTS: usize = 8;

/// An agent.yml at `etc-NAME/agent.yml` for host `name`: repository `uri`,
/// its own work_dir, the metadb `server` if any (token `NAME-secret`),
/// and `extra`; with one pipe source `sql` of `schedule`.
fn host(
    f: &Fixture,
    name: &str,
    uri: &str,
    server: Option<&Server>,
    extra: &str,
    schedule: &str,
) -> PathBuf {
    let metadb = crate::metadb::through(f, name, server);
    f.write(
        &format!("etc-{name}/sources/sql.yml"),
        &format!(
            "name: sql\nhandler: pipe\nschedule: \"{schedule}\"\nparams:\n  backup_command: \"echo dump of {name}\"\natoms: [{{name: db}}]\n"
        ),
    );
    f.write(
        &format!("etc-{name}/agent.yml"),
        &format!(
            "hostname: {name}\nrepository:\n  params:\n    uri: {uri}\n    password: {PASSWORD}\nwork_dir: {}\nrestic_binary: {}\n{metadb}{extra}",
            f.path(&format!("work-{name}")).display(),
            restic_binary(),
        ),
    )
}

fn tabacco(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tabacco"));
    cmd.arg("--config").arg(config).args(args);
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `tabacco ARGS` for every one of `configs` at the same moment;
/// their outputs.
fn at_once(configs: &[PathBuf], args: &[&str]) -> Vec<Output> {
    let children: Vec<_> = configs
        .iter()
        .map(|config| {
            tabacco(config, args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|child| child.wait_with_output().unwrap())
        .collect()
}

/// `restic ARGS` on the repository at `uri`.
fn restic(f: &Fixture, uri: &str, args: &[&str]) -> Output {
    Command::new(restic_binary())
        .args(args)
        .env("RESTIC_REPOSITORY", uri)
        .env("RESTIC_PASSWORD", PASSWORD)
        .env("RESTIC_CACHE_DIR", f.path("cache"))
        .output()
        .unwrap()
}

/// The restic ids of the files in `dir` (restic's temporary names left out).
fn ids(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Where the hosts' repository is: a local directory, or one served over
/// REST. The REST server lives as long as this.
enum Backend {
    Local,
    Rest(RestServer),
}

impl Backend {
    fn start(f: &Fixture, rest: bool) -> Backend {
        match rest {
            false => Backend::Local,
            true => {
                std::fs::create_dir_all(f.path("rest")).unwrap();
                Backend::Rest(RestServer::start(&f.path("rest"), false))
            }
        }
    }

    /// The repository's uri, and the directory that holds its files.
    fn repository(&self, f: &Fixture) -> (String, PathBuf) {
        match self {
            Backend::Local => {
                let dir = f.path("shared/repo");
                (dir.display().to_string(), dir)
            }
            Backend::Rest(server) => (format!("{}main", server.url), f.path("rest/main")),
        }
    }
}

/// A fleet of [`HOSTS`] hosts sharing one new repository and one metadb
/// server, with `extra` in each agent.yml.
struct Fleet {
    f: Fixture,
    _server: Server,
    backend: Backend,
    configs: Vec<PathBuf>,
}

impl Fleet {
    fn new(rest: bool, extra: &str, schedule: &str) -> Fleet {
        let f = Fixture::new();
        let names: Vec<String> = (0..HOSTS).map(|i| format!("host{i}")).collect();
        let hosts: Vec<&str> = names.iter().map(String::as_str).collect();
        let server = Server::start(&fleet_config(&f, "", &hosts), "127.0.0.1:0");
        let backend = Backend::start(&f, rest);
        let (uri, _) = backend.repository(&f);
        let configs = hosts
            .iter()
            .map(|name| host(&f, name, &uri, Some(&server), extra, schedule))
            .collect();
        Fleet {
            f,
            _server: server,
            backend,
            configs,
        }
    }

    /// One config and one key (one `restic init` succeeded), and a
    /// repository restic checks clean holding a snapshot of every host.
    #[track_caller]
    fn assert_one_repository(&self) {
        let (uri, dir) = self.backend.repository(&self.f);
        assert!(
            dir.join("config").is_file(),
            "no config in {}",
            dir.display()
        );
        assert_eq!(ids(&dir.join("keys")).len(), 1, "keys of {}", dir.display());
        let check = restic(&self.f, &uri, &["check"]);
        assert!(
            check.status.success(),
            "restic check: {}",
            text(&check.stderr)
        );
        let snapshots = restic(&self.f, &uri, &["snapshots", "--json"]);
        let snapshots: Vec<serde_json::Value> = serde_json::from_slice(&snapshots.stdout).unwrap();
        let mut hosts: Vec<&str> = snapshots
            .iter()
            .map(|s| s["hostname"].as_str().unwrap())
            .collect();
        hosts.sort();
        hosts.dedup();
        assert_eq!(hosts.len(), HOSTS, "{hosts:?}");
    }
}

/// Regression (issue 25): four or eight hosts whose first backup started
/// at the same moment against a new repository each ran `restic init`,
/// leaving as many keys and one config, and none of them could back up
/// (`config or key … is damaged`). Now `tabacco init` on all of them at
/// once creates it once, under the metadb's lease, and every host opens it.
fn hosts_initialising_at_once(rest: bool) {
    let fleet = Fleet::new(rest, "", "0 0 1 1 *");
    let inits = at_once(&fleet.configs, &["init"]);
    let (mut created, mut existed) = (0, 0);
    for out in &inits {
        assert!(out.status.success(), "init: {}", text(&out.stderr));
        let said = text(&out.stdout);
        created += said.contains(": created (restic id ") as usize;
        existed += said.contains(": exists, opens with this host's key (restic id ") as usize;
    }
    assert_eq!((created, existed), (1, HOSTS - 1));
    for out in at_once(&fleet.configs, &["run"]) {
        assert!(out.status.success(), "run: {}", text(&out.stderr));
    }
    fleet.assert_one_repository();
}

#[test]
fn hosts_initialising_a_local_repository_at_once_make_one() {
    hosts_initialising_at_once(false);
}

#[test]
fn hosts_initialising_a_rest_repository_at_once_make_one() {
    hosts_initialising_at_once(true);
}

/// Agents started at once with `init: auto`: their first backups create
/// the repository once and all of them back up into it.
fn agents_with_init_auto_at_once(rest: bool) {
    let fleet = Fleet::new(rest, "init: auto\n", "@every 2s");
    let agents: Vec<Agent> = fleet
        .configs
        .iter()
        .map(|config| Agent::start_with(config, &[]))
        .collect();
    for agent in &agents {
        agent.wait_for("1 dataset recorded", Duration::from_secs(120));
    }
    for agent in agents {
        let (status, _, log) = agent.terminate(Duration::from_secs(30));
        assert_eq!(status.code(), Some(0), "{log}");
        assert!(
            !log.contains("is damaged") && !log.contains("no repository"),
            "{log}"
        );
    }
    fleet.assert_one_repository();
}

#[test]
fn agents_with_init_auto_starting_at_once_make_one_local_repository() {
    agents_with_init_auto_at_once(false);
}

#[test]
fn agents_with_init_auto_starting_at_once_make_one_rest_repository() {
    agents_with_init_auto_at_once(true);
}

/// One host without a metadb server: agent.yml at `etc-h/agent.yml` with
/// repository `uri` and `extra`.
fn single(f: &Fixture, uri: &str, extra: &str) -> PathBuf {
    host(f, "h", uri, None, extra, "@every 2s")
}

#[track_caller]
fn status(config: &Path, args: &[&str], code: i32) -> Output {
    let out = tabacco(config, args).stdin(Stdio::null()).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "tabacco {args:?}:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// The failure kind and message of the newest attempt in `history`.
fn last_failure(config: &Path) -> (String, String) {
    let out = status(config, &["history", "--json"], 0);
    let history: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let last = &history[0];
    (
        last["failure"].as_str().unwrap().to_string(),
        last["message"].as_str().unwrap().to_string(),
    )
}

/// Regression (issue 25): a misspelt repository path passed `check`, and
/// `run` created a new repository there, exit 0. Now nothing creates it:
/// `check` exits 2 and `run` 1, each naming it and `tabacco init`; so do
/// prune and verify, and an agent counts it as a failed source, kind
/// `repository_missing`, not retried.
#[test]
fn a_misspelt_repository_is_never_created() {
    let f = Fixture::new();
    let typo = f.path("srv/rpeo");
    let config = single(&f, &typo.display().to_string(), "");
    let named = format!("no repository at {}", typo.display());
    let check = status(&config, &["check"], 2);
    assert!(
        text(&check.stderr).contains(&named),
        "{}",
        text(&check.stderr)
    );
    assert!(text(&check.stderr).contains("run 'tabacco init'"));
    let started = Instant::now();
    let run = status(&config, &["run"], 1);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(text(&run.stderr).contains(&named), "{}", text(&run.stderr));
    assert_eq!(last_failure(&config).0, "repository_missing");
    tabacco(&config, &["prune"]).output().unwrap();
    let verify = status(&config, &["verify"], 1);
    assert!(
        text(&verify.stderr).contains(&named),
        "{}",
        text(&verify.stderr)
    );
    assert!(!typo.exists(), "{} was created", typo.display());
    assert!(!f.path("srv").exists());

    let agent = Agent::start_with(&config, &["--http-addr", "127.0.0.1:0"]);
    let log = agent.wait_for(&named, Duration::from_secs(30));
    let (_, metrics) = get(&agent.addr(), "/metrics");
    assert!(
        metrics
            .contains("tabacco_backup_failures_total{source=\"sql\",kind=\"repository_missing\"} "),
        "{metrics}"
    );
    assert!(!log.contains("retrying in"), "{log}");
    let (status, _, _) = agent.terminate(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
    assert!(!typo.exists(), "{} was created", typo.display());

    // `tabacco init` is how it comes to be.
    let init = self::status(&config, &["init"], 0);
    assert!(text(&init.stdout).contains(": created (restic id "));
    self::status(&config, &["run"], 0);
}

/// `init` creates the repository and each copy (with the repository's
/// chunker parameters, so what is copied deduplicates as it did), says
/// so, and says what it found when run again; a missing copy fails the
/// copying until then.
#[test]
fn init_creates_the_repository_and_its_copies() {
    let f = Fixture::new();
    let (repo, copy) = (f.path("r/main"), f.path("r/copy"));
    let config = single(
        &f,
        &repo.display().to_string(),
        &format!(
            "copies:\n- name: offsite\n  params: {{uri: {}}}\n",
            copy.display()
        ),
    );
    let run = status(&config, &["run"], 1);
    assert!(
        text(&run.stderr).contains("no repository at"),
        "{}",
        text(&run.stderr)
    );
    assert!(!repo.exists() && !copy.exists());
    let root = f.root.display().to_string();
    let init = status(&config, &["init"], 0);
    let said = text(&init.stdout).replace(&root, "ROOT");
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 2, "{said}");
    assert!(
        lines[0].starts_with("repository  ROOT/r/main: created (restic id "),
        "{said}"
    );
    assert!(
        lines[1].starts_with("copy        offsite ROOT/r/copy: created (restic id "),
        "{said}"
    );
    let polynomial = |dir: &Path| {
        let out = restic(&f, &dir.display().to_string(), &["cat", "config"]);
        let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        config["chunker_polynomial"].as_str().unwrap().to_string()
    };
    assert_eq!(polynomial(&repo), polynomial(&copy));
    let again = status(&config, &["init"], 0);
    let said = text(&again.stdout);
    assert_eq!(
        said.matches(": exists, opens with this host's key (restic id ")
            .count(),
        2,
        "{said}"
    );
    status(&config, &["run"], 0);
    let check = status(&config, &["check"], 0);
    let said = text(&check.stdout);
    assert_eq!(
        said.matches(", repository version 2, opens with this host's key\n")
            .count(),
        2,
        "{said}"
    );
    // `--offline` opens nothing.
    let offline = status(&config, &["check", "--offline"], 0);
    assert!(!text(&offline.stdout).contains("restic id"));
}

/// A host backed up into `repo`, its agent.yml at the returned path.
fn backed_up(f: &Fixture, repo: &Path) -> PathBuf {
    let config = single(f, &repo.display().to_string(), "");
    status(&config, &["init"], 0);
    status(&config, &["run"], 0);
    config
}

/// The datasets `query` finds, with their snapshot ids.
fn recorded(config: &Path) -> Vec<String> {
    let out = status(config, &["query", "--json", "--versions", "100", "*"], 0);
    let backups: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    backups
        .iter()
        .flat_map(|b| b["datasets"].as_array().unwrap().iter())
        .map(|d| d["snapshot_id"].as_str().unwrap().to_string())
        .collect()
}

/// The keys concurrent `restic init`s leave, as FACTS.md found them: one
/// config, several keys with the same password, and restic opens the
/// first key it finds, whose master key may not be the config's. `run`
/// fails with kind `repository_damaged`, saying which keys there are;
/// `check` tries them one by one and names the one to remove; removing
/// it mends the repository.
#[test]
fn keys_that_do_not_belong_to_the_config_are_named() {
    let f = Fixture::new();
    let (repo, other) = (f.path("repo"), f.path("other"));
    for dir in [&repo, &other] {
        let init = restic(&f, &dir.display().to_string(), &["init"]);
        assert!(init.status.success(), "{}", text(&init.stderr));
    }
    let key = ids(&repo.join("keys")).remove(0);
    // The other init's key, with its config lost to this one's.
    let stray = ids(&other.join("keys")).remove(0);
    let path = repo.join("keys").join(&stray);
    std::fs::copy(other.join("keys").join(&stray), &path).unwrap();
    // restic tries the keys in the order its backend lists them; the
    // hint makes the stray one first here, whatever the file system.
    let config = single(&f, &repo.display().to_string(), "");
    let yaml = std::fs::read_to_string(&config).unwrap();
    let yaml = yaml.replacen(
        "work_dir:",
        &format!("    env: {{RESTIC_KEY_HINT: {stray}}}\nwork_dir:"),
        1,
    );
    std::fs::write(&config, yaml).unwrap();
    let run = status(&config, &["run"], 1);
    let said = text(&run.stderr);
    assert!(said.contains("ciphertext verification failed"), "{said}");
    assert!(said.contains("its keys/ holds 2 keys ("), "{said}");
    assert_eq!(last_failure(&config).0, "repository_damaged");
    let check = status(&config, &["check"], 2);
    let said = text(&check.stderr);
    assert!(
        said.contains(&format!("{} opens it with this host's password", &key[..8])),
        "{said}"
    );
    assert!(
        said.contains(&format!("remove them ({})", path.display())),
        "{said}"
    );
    std::fs::remove_file(path).unwrap();
    status(&config, &["check"], 0);
    status(&config, &["run"], 0);
}

/// A wrong password: `check` exits 2 (it passed before: issue 28), `run`
/// fails with kind `repository_password`, and nothing recorded is lost.
#[test]
fn a_wrong_password_is_named_by_check_and_run() {
    let f = Fixture::new();
    let repo = f.path("repo");
    let config = backed_up(&f, &repo);
    let before = recorded(&config);
    let yaml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, yaml.replace(PASSWORD, "not-the-password")).unwrap();
    let check = status(&config, &["check"], 2);
    let said = text(&check.stderr);
    assert!(
        said.contains(&format!("repository {}: wrong password", repo.display())),
        "{said}"
    );
    assert!(!said.contains("not-the-password"), "{said}");
    status(&config, &["run"], 1);
    assert_eq!(last_failure(&config).0, "repository_password");
    assert_eq!(recorded(&config), before);
}

/// An init stopped halfway, made by deleting files of a repository: keys
/// and no config (restic writes the key first), or a config and no key.
/// Each is diagnosed, with the fix, kind `repository_damaged`; `init`
/// refuses to build on it (restic 0.14 would add a config for a second key,
/// and the stray key first in the list would keep it from opening).
#[test]
fn an_init_stopped_halfway_is_diagnosed() {
    let f = Fixture::new();
    let repo = f.path("repo");
    let uri = repo.display().to_string();
    let config = single(&f, &uri, "init: auto\n");
    restic(&f, &uri, &["init"]);
    std::fs::remove_file(repo.join("config")).unwrap();
    let key = ids(&repo.join("keys")).remove(0);
    let run = status(&config, &["run"], 1);
    let said = text(&run.stderr);
    assert!(
        said.contains(&format!("repository {uri} is half created")),
        "{said}"
    );
    assert!(
        said.contains(&repo.join("keys").join(&key).display().to_string()),
        "{said}"
    );
    assert_eq!(last_failure(&config).0, "repository_damaged");
    let init = status(&config, &["init"], 1);
    assert!(text(&init.stderr).contains("is half created"));
    assert_eq!(
        ids(&repo.join("keys")),
        [key.as_str()],
        "init added nothing"
    );
    assert!(!repo.join("config").exists());
    // The fix it names.
    std::fs::remove_file(repo.join("keys").join(&key)).unwrap();
    status(&config, &["init"], 0);
    status(&config, &["run"], 0);

    for key in ids(&repo.join("keys")) {
        std::fs::remove_file(repo.join("keys").join(key)).unwrap();
    }
    let run = status(&config, &["run"], 1);
    let said = text(&run.stderr);
    assert!(
        said.contains("has a config but no key, so nothing can open it"),
        "{said}"
    );
    assert!(said.contains("it holds 1 snapshot"), "{said}");
    assert_eq!(last_failure(&config).0, "repository_damaged");
    status(&config, &["check"], 2);
}

/// A location that answers with another repository than the one this
/// host used there (initialised again; another disk mounted there):
/// nothing is written to it, kind `repository_foreign`, the records stay;
/// deleting the line the message names accepts it.
#[test]
fn another_repository_at_a_known_location_is_refused() {
    let f = Fixture::new();
    let repo = f.path("repo");
    let config = backed_up(&f, &repo);
    let before = recorded(&config);
    std::fs::rename(&repo, f.path("repo.old")).unwrap();
    let again = restic(&f, &repo.display().to_string(), &["init"]);
    assert!(again.status.success());
    let run = status(&config, &["run"], 1);
    let said = text(&run.stderr);
    assert!(
        said.contains("is not the one this host used there"),
        "{said}"
    );
    assert_eq!(last_failure(&config).0, "repository_foreign");
    assert!(ids(&repo.join("snapshots")).is_empty(), "nothing written");
    assert_eq!(recorded(&config), before);
    status(&config, &["check"], 2);
    // `init: auto` does not create a repository this host used and lost
    // (a disk not mounted?) either.
    std::fs::remove_dir_all(&repo).unwrap();
    let yaml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{yaml}init: auto\n")).unwrap();
    let run = status(&config, &["run"], 1);
    assert!(text(&run.stderr).contains("so init: auto does not create one"));
    assert!(!repo.exists());
    // The old one back: all is well.
    std::fs::rename(f.path("repo.old"), &repo).unwrap();
    status(&config, &["run"], 0);
    // A new one accepted by deleting the line the message names.
    std::fs::rename(&repo, f.path("repo.old")).unwrap();
    restic(&f, &repo.display().to_string(), &["init"]);
    status(&config, &["run"], 1);
    let ids_file = f.path("work-h/repository-ids");
    let lines = std::fs::read_to_string(&ids_file).unwrap();
    let kept: String = lines
        .lines()
        .filter(|l| !l.ends_with(&format!(" {}", repo.display())))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&ids_file, kept).unwrap();
    status(&config, &["run"], 0);
}

/// Regression (issue 26): restic 0.17 and newer retry an unreachable
/// backend for about 15 minutes, so a job against a dead REST server hung
/// that long. Now opening the repository is bounded by
/// `repository_timeout` on every restic version, and says so.
#[test]
fn an_unreachable_repository_fails_within_repository_timeout() {
    let f = Fixture::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri = format!("rest:http://user:SECRET@127.0.0.1:{port}/repo");
    let config = single(&f, &uri, "repository_timeout: 3s\ninit: auto\n");
    for (args, code) in [(&["run"][..], 1), (&["check"], 2), (&["init"], 1)] {
        let started = Instant::now();
        let out = status(&config, args, code);
        assert!(started.elapsed() < Duration::from_secs(30), "{args:?}");
        let said = text(&out.stderr);
        let masked = format!("repository rest:http://user:***@127.0.0.1:{port}/repo ");
        assert!(said.contains(&masked), "{said}");
        assert!(
            said.contains("did not answer within 3s") || said.contains("cannot be reached"),
            "{said}"
        );
        assert!(!said.contains("SECRET"), "{said}");
    }
    assert_eq!(last_failure(&config).0, "repository_unavailable");
}
