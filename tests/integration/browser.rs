//! A real browser for the console's tests: Debian's chromium, headless,
//! run once per page (`--dump-dom`, `--screenshot`), and driven through
//! chromedriver's WebDriver HTTP API (with ureq) where a page must be
//! filled in and clicked. Every run gets a fresh profile and the flags
//! that keep chromium off the network: this machine has none, and without
//! them chromium waits on connections that never come.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The browser (a wrapper script that sets Debian's defaults).
const CHROMIUM: &str = "/usr/bin/chromium";

/// What every chromium run is given besides its profile.
const FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// The window of a page loaded alone, unless a screenshot asks for another.
const WINDOW: (u32, u32) = (1280, 1600);

/// How long one page may take, loaded alone.
const PAGE_TIMEOUT: Duration = Duration::from_secs(90);

/// The key of an element's id in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Fails loudly if chromium or chromedriver is missing: the console's
/// tests are a browser's.
fn installed(program: &str) {
    let ok = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{program} is not installed: apt-get install chromium chromium-driver (make test-deps)"
    );
}

/// A fresh, empty profile directory under `std::env::temp_dir()`.
fn profile() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("tabacco-chromium-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs chromium on `url` with `args`; its stdout.
fn chromium(url: &str, window: (u32, u32), args: &[&str]) -> String {
    installed(CHROMIUM);
    let profile = profile();
    let mut child = Command::new(CHROMIUM)
        .args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={},{}", window.0, window.1))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
        out
    });
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > PAGE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium took over {PAGE_TIMEOUT:?} on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&profile);
    reader.join().unwrap()
}

/// The DOM of `url` as chromium rendered it.
pub fn dump_dom(url: &str) -> String {
    let dom = chromium(url, WINDOW, &["--dump-dom"]);
    assert!(dom.contains("<html"), "no DOM for {url}: {dom:?}");
    dom
}

/// Where the screenshots of the pages go, for review.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a screenshot of `url` to `name` in [`screenshot_dir`], of a
/// window of 1280 × 1600 pixels.
pub fn screenshot(url: &str, name: &str) -> PathBuf {
    screenshot_of(url, name, WINDOW)
}

/// Writes a screenshot of `url` to `name` in [`screenshot_dir`], of a
/// window of `window` pixels (width, height).
pub fn screenshot_of(url: &str, name: &str, window: (u32, u32)) -> PathBuf {
    let path = screenshot_dir().join(name);
    let _ = std::fs::remove_file(&path);
    chromium(url, window, &[&format!("--screenshot={}", path.display())]);
    let png = std::fs::read(&path).unwrap_or_default();
    assert!(png.starts_with(b"\x89PNG"), "no screenshot of {url}");
    path
}

/// A browser driven through chromedriver: one WebDriver session, ended
/// and chromedriver killed when dropped.
pub struct Driver {
    chromedriver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    profile: PathBuf,
}

impl Driver {
    pub fn start() -> Driver {
        installed("chromedriver");
        installed(CHROMIUM);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let chromedriver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(PAGE_TIMEOUT))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let ready = crate::common::eventually(Duration::from_secs(30), || {
            let answer = agent.get(format!("{base}/status")).call().ok()?;
            (answer.status() == 200).then_some(())
        });
        let profile = profile();
        let mut driver = Driver {
            chromedriver,
            base,
            session: String::new(),
            agent,
            profile,
        };
        assert!(ready.is_some(), "chromedriver did not start");
        let mut args: Vec<String> = FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", driver.profile.display()));
        args.push(format!("--window-size={},{}", WINDOW.0, WINDOW.1));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let answer = driver.call("POST", "/session", Some(capabilities));
        driver.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        driver
    }

    /// One WebDriver command; its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let answer = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self
                .agent
                .post(&url)
                .send_json(body.unwrap_or_else(|| json!({}))),
        };
        let mut answer = answer.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = answer.status();
        let value: Value = answer.body_mut().read_json().unwrap();
        assert_eq!(status, 200, "{method} {path}: {value}");
        value["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Loads `url`.
    pub fn goto(&self, url: &str) {
        self.call(
            "POST",
            &self.session_path("/url"),
            Some(json!({"url": url})),
        );
    }

    /// The URL shown now.
    pub fn url(&self) -> String {
        self.call("GET", &self.session_path("/url"), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Waits (at most 30 s) for the URL shown to satisfy `want`; the URL.
    #[track_caller]
    pub fn wait_url(&self, want: impl Fn(&str) -> bool) -> String {
        let url = crate::common::eventually(Duration::from_secs(30), || {
            let url = self.url();
            want(&url).then_some(url)
        });
        url.unwrap_or_else(|| panic!("still at {}", self.url()))
    }

    /// The page's DOM now.
    pub fn source(&self) -> String {
        self.call("GET", &self.session_path("/source"), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The first element `css` selects.
    fn find(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            &self.session_path("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        found[ELEMENT].as_str().unwrap().to_string()
    }

    /// Types `text` into the element `css` selects.
    pub fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        let path = self.session_path(&format!("/element/{element}/value"));
        self.call("POST", &path, Some(json!({"text": text})));
    }

    /// Clicks the element `css` selects.
    pub fn click(&self, css: &str) {
        let element = self.find(css);
        let path = self.session_path(&format!("/element/{element}/click"));
        self.call("POST", &path, Some(json!({})));
    }

    /// The cookies the browser holds for the page shown.
    pub fn cookies(&self) -> Vec<Value> {
        self.call("GET", &self.session_path("/cookie"), None)
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let url = format!("{}{}", self.base, self.session_path(""));
            let _ = self.agent.delete(&url).call();
        }
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The text of HTML `html` with its entities decoded (those the console
/// writes).
pub fn unescape(html: &str) -> String {
    html.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}
