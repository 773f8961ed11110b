//! The test harness: a temporary directory holding a configuration, a
//! restic repository and a work_dir, and a way to run `tabacco` on it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub const PASSWORD: &str = "test-password";

/// A scratch tree: `etc/agent.yml` (with `sources/`, `handlers/`), `repo/`,
/// `work/`, `data/`. Removed when dropped.
pub struct Fixture {
    pub root: PathBuf,
}

impl Fixture {
    /// A fresh tree with an agent.yml for host `test-host`.
    pub fn new() -> Fixture {
        Fixture::with_agent("")
    }

    /// A fresh tree whose agent.yml has `extra` appended.
    pub fn with_agent(extra: &str) -> Fixture {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        restic_is_installed();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let root = std::env::temp_dir().join(format!("tabacco-test-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("data")).unwrap();
        let f = Fixture { root };
        f.write(
            "etc/agent.yml",
            &format!("hostname: test-host\n{}\n{extra}", f.repository_yaml()),
        );
        f
    }

    /// The `repository:` and `work_dir:` lines every test agent.yml uses,
    /// with the `restic_binary:` of this pass (see [`restic_binary`]), and
    /// `init: auto`: the first backup creates the repository (the tests
    /// of `tabacco init` itself leave it out).
    pub fn repository_yaml(&self) -> String {
        format!(
            "repository:\n  params:\n    uri: {repo}\n    password: {PASSWORD}\nwork_dir: {work}\ninit: auto\n{binary}",
            repo = self.path("repo").display(),
            work = self.path("work").display(),
            binary = restic_binary_yaml(),
        )
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes `content` to `rel`, creating directories.
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        path
    }

    /// Replaces `ROOT` in `content` with this fixture's root and writes it.
    pub fn write_config(&self, rel: &str, content: &str) -> PathBuf {
        self.write(
            rel,
            &content.replace("ROOT", &self.root.display().to_string()),
        )
    }

    pub fn config(&self) -> PathBuf {
        self.path("etc/agent.yml")
    }

    /// `tabacco --config etc/agent.yml ARGS`, to run.
    pub fn tabacco(&self, args: &[&str]) -> Cmd {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tabacco"));
        cmd.arg("--config").arg(self.config()).args(args);
        Cmd(cmd)
    }

    /// Runs restic on the fixture's repository.
    pub fn restic(&self, args: &[&str]) -> Run {
        self.restic_with_password(PASSWORD, args)
    }

    /// Runs restic on the fixture's repository, opened with `password`.
    pub fn restic_with_password(&self, password: &str, args: &[&str]) -> Run {
        let mut cmd = Command::new(restic_binary());
        cmd.args(args)
            .env("RESTIC_REPOSITORY", self.path("repo"))
            .env("RESTIC_PASSWORD", password)
            .env("RESTIC_CACHE_DIR", self.path("work/cache"));
        Run::new(cmd)
    }

    /// The tags of every snapshot in the repository, one list per snapshot.
    pub fn snapshot_tags(&self) -> Vec<Vec<String>> {
        let out = self.restic(&["snapshots", "--json"]).success();
        let snapshots: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
        snapshots
            .iter()
            .map(|s| {
                s["tags"]
                    .as_array()
                    .map(|t| t.iter().map(|t| t.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// `query --json PATTERN` parsed.
    pub fn query(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let mut all = vec!["query", "--json"];
        all.extend_from_slice(args);
        let out = self.tabacco(&all).success();
        serde_json::from_str(&out.stdout).unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// A command to run.
pub struct Cmd(pub Command);

impl Cmd {
    pub fn env(mut self, key: &str, value: &str) -> Cmd {
        self.0.env(key, value);
        self
    }

    pub fn run(self) -> Run {
        Run::new(self.0)
    }

    #[track_caller]
    pub fn success(self) -> Run {
        self.run().success()
    }

    #[track_caller]
    pub fn status(self, code: i32) -> Run {
        self.run().status(code)
    }
}

/// A finished command.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn new(mut cmd: Command) -> Run {
        let Output {
            status,
            stdout,
            stderr,
        } = cmd.stdin(Stdio::null()).output().unwrap();
        Run {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Asserts exit status 0 and returns self.
    #[track_caller]
    pub fn success(self) -> Run {
        assert_eq!(self.code, Some(0), "failed: {self:#?}");
        self
    }

    /// Asserts exit status `code` and returns self.
    #[track_caller]
    pub fn status(self, code: i32) -> Run {
        assert_eq!(self.code, Some(code), "unexpected status: {self:#?}");
        self
    }
}

/// The restic this pass of the suite runs: `TABACCO_TEST_RESTIC` (`make
/// test` runs the suite once with each restic it knows), else `restic` on
/// PATH.
pub fn restic_binary() -> String {
    std::env::var("TABACCO_TEST_RESTIC").unwrap_or_else(|_| "restic".into())
}

/// The `restic_binary:` line naming [`restic_binary`] in an agent.yml,
/// empty for the default.
pub fn restic_binary_yaml() -> String {
    match std::env::var("TABACCO_TEST_RESTIC") {
        Ok(binary) => format!("restic_binary: {binary}\n"),
        Err(_) => String::new(),
    }
}

/// The version of this pass's restic, e.g. `(0, 14, 0)`.
pub fn restic_version() -> (u32, u32, u32) {
    let out = Command::new(restic_binary())
        .arg("version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let number = text.split_whitespace().nth(1).unwrap_or_default();
    let parts: Vec<u32> = number.split('.').map(|p| p.parse().unwrap()).collect();
    (parts[0], parts[1], parts[2])
}

/// The line `tabacco check` prints for this pass's restic.
pub fn restic_check_line() -> String {
    let (a, b, c) = restic_version();
    format!("restic      {a}.{b}.{c} ({})", restic_binary())
}

/// Where tabacco stores pipe atom `atom` in its snapshot with this pass's
/// restic: `/<atom>`, but percent-encoded on restic 0.18.0, which cannot
/// save a `--stdin-filename` holding a `/` (tabacco(1), RESTIC VERSIONS).
pub fn pipe_path(atom: &str) -> String {
    let out = Command::new(restic_binary())
        .arg("version")
        .output()
        .unwrap();
    if String::from_utf8_lossy(&out.stdout).starts_with("restic 0.18.0 ") {
        format!("/{}", atom.replace('%', "%25").replace('/', "%2F"))
    } else {
        format!("/{atom}")
    }
}

/// restic is tabacco's core dependency: its absence fails the suite loudly.
fn restic_is_installed() {
    let ok = Command::new(restic_binary())
        .arg("version")
        .output()
        .map(|o| o.status.success());
    assert!(
        matches!(ok, Ok(true)),
        "restic ({}) is not installed: install it (apt-get install restic)",
        restic_binary()
    );
}

/// All atom names in a `query --json` result, in order.
pub fn atom_names(backups: &[serde_json::Value]) -> Vec<String> {
    let mut names = Vec::new();
    for b in backups {
        for d in b["datasets"].as_array().unwrap() {
            for a in d["atoms"].as_array().unwrap() {
                names.push(a["name"].as_str().unwrap().to_string());
            }
        }
    }
    names
}

/// Asserts that `promtool check metrics` accepts `text`. Skipped, with a
/// note, where promtool is not installed, except in CI, which installs it.
pub fn promtool_accepts(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        // CI installs it (.ci/run); elsewhere the check is skipped, loudly.
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is not installed"
        );
        eprintln!("note: promtool is not installed; /metrics not checked with it");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A daemon started for a test (`tabacco agent`, `tabacco metadb`): its
/// stderr collected line by line, killed and reaped when dropped, even when
/// the test fails.
pub struct Daemon {
    pub child: std::process::Child,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    /// Starts `cmd` with stderr piped.
    pub fn spawn(mut cmd: Command) -> Daemon {
        use std::io::BufRead;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let lines = std::sync::Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        Daemon {
            child,
            log,
            reader: Some(reader),
        }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `text`; returns the log.
    #[track_caller]
    pub fn wait_for(&self, text: &str, timeout: Duration) -> String {
        let log = eventually(timeout, || {
            let log = self.log();
            log.contains(text).then_some(log)
        });
        log.unwrap_or_else(|| panic!("no {text:?} in the log:\n{}", self.log()))
    }

    /// The address of its `listening on ADDR` line.
    #[track_caller]
    pub fn addr(&self) -> String {
        let log = self.wait_for("listening on ", Duration::from_secs(20));
        let line = log.lines().find(|l| l.contains("listening on ")).unwrap();
        let (_, rest) = line.split_once("listening on ").unwrap();
        rest.split_whitespace().next().unwrap().to_string()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own unreaped child.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    /// Waits (at most `timeout`) for the exit; its status and whole log.
    #[track_caller]
    pub fn wait(mut self, timeout: Duration) -> (std::process::ExitStatus, String) {
        let status = eventually(timeout, || self.child.try_wait().unwrap());
        let Some(status) = status else {
            panic!("still running after {timeout:?}:\n{}", self.log());
        };
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        (status, self.log())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// A directory of repositories served over restic's REST protocol on a
/// loopback port (`rclone serve restic`), as fleets keep them on servers;
/// with `append_only`, nothing in them can be deleted or overwritten.
pub struct RestServer {
    /// `rest:http://127.0.0.1:PORT/`: append a repository's name.
    pub url: String,
    _daemon: Daemon,
}

impl RestServer {
    #[track_caller]
    pub fn start(dir: &Path, append_only: bool) -> RestServer {
        let mut cmd = Command::new("rclone");
        cmd.args(["serve", "restic", "--addr", "127.0.0.1:0"])
            .args(append_only.then_some("--append-only"))
            .arg(dir)
            .env("RCLONE_CONFIG", "/dev/null");
        let daemon = Daemon::spawn(cmd);
        let log = daemon.wait_for("Serving restic REST API on ", Duration::from_secs(20));
        let (_, rest) = log.split_once("Serving restic REST API on ").unwrap();
        let url = rest.split_whitespace().next().unwrap();
        RestServer {
            url: format!("rest:{url}"),
            _daemon: daemon,
        }
    }
}

/// Whether `repo` holds a lock a later restic will see: restic writes a lock
/// under a temporary name and renames it, so only a file named by its 64-hex
/// id counts.
pub fn has_lock(repo: &Path) -> bool {
    std::fs::read_dir(repo.join("locks"))
        .map(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
            })
        })
        .unwrap_or(false)
}

/// Polls `check` every 50 ms until it returns something or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if started.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
