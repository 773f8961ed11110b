//! The console (issue 31) in a real browser: the metadb's pages for a
//! fleet filled by real `tabacco run`s (a failed source, an overdue one,
//! a size that fell, a copy), rendered by chromium and checked in the
//! DOM; the commands the search page shows, run as copied; signing in
//! with a token through the form (chromedriver), signing out, and a host
//! token under `host_read: own` that sees its own host only; and hostile
//! names shown as text. Screenshots of the pages go to
//! `target/console-screenshots/` for review.

use crate::browser::{dump_dom, screenshot, screenshot_of, unescape, Driver};
use crate::common::{eventually, Fixture};
use crate::health::host_config;
use crate::metadb::{fleet_config, Server};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// web1's file source: alice and bob's homes.
const USERS: &str =
    "name: users\nhandler: file\nschedule: \"@daily\"\nparams: {path: ROOT/data/home}\natoms: [{name: alice}, {name: bob}]\n";
/// web1's failing source, whose stderr would be markup.
const SQL: &str = "name: sql\nhandler: pipe\nschedule: \"@daily\"\nparams:\n  backup_command: 'echo \"<script>alert(2)</script> disk on fire\" >&2; exit 3'\natoms: [{name: db1}]\n";
/// web2's source, due every 2 s: overdue 3 s after its run.
const MAIL: &str = r#"name: mail
handler: pipe
schedule: "@every 2s"
params: {backup_command: "echo mail of web2"}
atoms: [{name: "x\"'<script>alert(1)&\u202E"}]
"#;
/// The atom of [`MAIL`].
const HOSTILE_ATOM: &str = "mail/x\"'<script>alert(1)&\u{202e}";

/// `len` bytes that do not compress or deduplicate, different for each
/// `seed`.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn run(config: &PathBuf, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tabacco"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// A fleet of two hosts recorded by real runs, served with `page: open`
/// and `host_read: own`: web1 backed up `users` five times (the last one
/// far smaller) and copied it to `offsite`, and failed `sql`; web2's
/// `mail` ran once and is overdue since.
fn fleet(f: &Fixture) -> (Server, PathBuf, PathBuf) {
    let config = fleet_config(
        f,
        "page: open\nhost_read: own\noverdue_grace: 1s\n",
        &["web1", "web2"],
    );
    let server = Server::start(&config, "127.0.0.1:0");
    let web1 = host_config(f, "web1", &server.url());
    let with_copy = format!(
        "{}copies:\n  - name: offsite\n    params:\n      uri: {}\n",
        std::fs::read_to_string(&web1).unwrap(),
        f.path("offsite").display()
    );
    std::fs::write(&web1, with_copy).unwrap();
    let web2 = host_config(f, "web2", &server.url());
    f.write_config("etc-web1/sources/users.yml", USERS);
    f.write("etc-web1/sources/sql.yml", SQL);
    f.write("etc-web2/sources/mail.yml", MAIL);
    f.write("data/home/bob/notes", "bob's notes\n");
    for day in 0..4 {
        let big = f.path("data/home/alice/big");
        std::fs::create_dir_all(big.parent().unwrap()).unwrap();
        std::fs::write(&big, noise(day, 300_000)).unwrap();
        let out = run(&web1, &["run", "users"]);
        assert!(out.status.success(), "{out:?}");
    }
    std::fs::remove_file(f.path("data/home/alice/big")).unwrap();
    assert!(run(&web1, &["run", "users"]).status.success());
    assert_eq!(run(&web1, &["run", "sql"]).status.code(), Some(1));
    assert!(run(&web2, &["run"]).status.success());
    let overdue = eventually(Duration::from_secs(30), || {
        let (_, rows) = server.request("POST", "/api/status", Some("secret"), "{}");
        rows.contains("\"host\":\"web2\",\"source\":\"mail\",\"state\":\"overdue\"")
            .then_some(())
    });
    assert!(overdue.is_some(), "web2's mail is overdue");
    (server, web1, web2)
}

/// The text of the first `<code class="cmd">` after `after` in `dom`
/// that starts with `prefix`.
fn command(dom: &str, after: &str, prefix: &str) -> String {
    let from = dom
        .find(after)
        .unwrap_or_else(|| panic!("no {after} in {dom}"));
    dom[from..]
        .split("<code class=\"cmd\">")
        .skip(1)
        .map(|c| unescape(c.split("</code>").next().unwrap()))
        .find(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} command after {after}"))
}

/// Runs a command copied from the page, as `config`'s host, with what it
/// writes under /var/tmp put in `f` instead.
fn run_copied(f: &Fixture, config: &std::path::Path, command: &str) -> std::process::Output {
    let command = command
        .replacen(
            "tabacco ",
            &format!(
                "{} --config '{}' ",
                env!("CARGO_BIN_EXE_tabacco"),
                config.display()
            ),
            1,
        )
        .replace("/var/tmp/", &format!("{}/", f.path("copied").display()));
    std::fs::create_dir_all(f.path("copied")).unwrap();
    Command::new("sh").args(["-c", &command]).output().unwrap()
}

#[test]
fn the_console_shows_a_fleet_in_a_real_browser() {
    let f = Fixture::new();
    let (server, web1, web2) = fleet(&f);
    let url = server.url();

    // The fleet: counts, problems first, each linking to its host and source.
    let dom = dump_dom(&format!("{url}/"));
    assert!(dom.contains("2 hosts, 3 planned sources."), "{dom}");
    assert!(dom.contains(">failed 1</a>") && dom.contains(">overdue 1</a>"));
    assert!(dom.contains(">ok 1</a>"), "{dom}");
    let failed = dom
        .find("<a href=\"/source?host=web1&amp;source=sql\">sql</a>")
        .expect("a link to the failed source");
    let overdue = dom
        .find("<a href=\"/source?host=web2&amp;source=mail\">mail</a>")
        .expect("a link to the overdue source");
    let ok = dom
        .find("<a href=\"/source?host=web1&amp;source=users\">users</a>")
        .expect("a link to the ok source");
    assert!(failed < ok && overdue < ok, "problems first: {dom}");
    assert!(dom.contains("<a href=\"/host?name=web1\">web1</a>"));
    assert!(dom.contains("&lt;script&gt;alert(2)") || dom.contains("status 3"));
    assert!(!dom.contains("<script"), "{dom}");
    screenshot(&format!("{url}/"), "fleet.png");

    // A host: its sources, planned, its repository and copy, its attempts.
    let dom = dump_dom(&format!("{url}/host?name=web1"));
    assert!(dom.contains("<h1>Host web1</h1>"), "{dom}");
    for source in ["users", "sql"] {
        assert!(dom.contains(&format!(
            "<a href=\"/source?host=web1&amp;source={source}\">{source}</a>"
        )));
    }
    assert!(
        dom.contains("<td>primary</td><td class=\"n\">5</td>"),
        "{dom}"
    );
    assert!(
        dom.contains("<td>offsite</td><td class=\"n\">5</td>"),
        "{dom}"
    );
    assert!(dom.contains("<span class=\"failed\">failed</span>"));
    assert!(dom.contains("<details><summary>detail</summary>"));
    screenshot(&format!("{url}/host?name=web1"), "host.png");

    // A source's history: three plots, the fall in size flagged.
    let page = format!("{url}/source?host=web1&source=users");
    let dom = dump_dom(&page);
    assert_eq!(dom.matches("<svg class=\"plot\"").count(), 3, "{dom}");
    assert_eq!(dom.matches("<rect class=\"bar\"").count(), 14, "{dom}");
    assert_eq!(dom.matches("<rect class=\"bar anomaly\"").count(), 1);
    assert!(
        dom.contains("<p class=\"anomaly\">Anomaly: the run of "),
        "{dom}"
    );
    assert!(dom.contains("The last 5 runs"));
    screenshot(&page, "source.png");
    // The README's (contrib/console.png), smaller.
    screenshot_of(&page, "readme.png", (1000, 660));

    // Search: every version, per host and repository, with its commands.
    let page = format!("{url}/search?atom=users%2F*&versions=10");
    let dom = dump_dom(&page);
    assert!(dom.contains("<h2 class=\"atom\">users/alice</h2>"), "{dom}");
    assert!(dom.contains("<h2 class=\"atom\">users/bob</h2>"));
    assert!(dom.contains("10 versions."), "{dom}");
    // 2 atoms × 5 versions × 2 repositories, 2 commands each.
    assert_eq!(dom.matches("<code class=\"cmd\">").count(), 40);
    screenshot(&page, "search.png");
    // Alice's second newest version, from the copy, still held her big
    // file: the command restores exactly that one.
    let alice = dom.find("<h2 class=\"atom\">users/alice</h2>").unwrap();
    let restores: Vec<String> = dom[alice..]
        .split("<code class=\"cmd\">")
        .skip(1)
        .map(|c| unescape(c.split("</code>").next().unwrap()))
        .filter(|c| c.starts_with("tabacco restore") && c.contains("'offsite'"))
        .collect();
    let out = run_copied(&f, &web1, &restores[1]);
    assert!(out.status.success(), "{}: {out:?}", restores[1]);
    let restored = f.path(&format!(
        "copied/restore{}/alice/big",
        f.path("data/home").display()
    ));
    assert_eq!(std::fs::read(&restored).unwrap(), noise(3, 300_000));

    // A hostile atom name is text, and its dump command, as copied, dumps it.
    let dom = dump_dom(&format!("{url}/search?atom=mail%2F*"));
    assert!(!dom.contains("<script"), "{dom}");
    assert!(
        dom.contains("mail/x\"'&lt;script&gt;alert(1)&amp;\\u{202e}</h2>"),
        "{dom}"
    );
    let dump = command(&dom, "<h2 class=\"atom\">mail/", "tabacco dump");
    assert!(
        !dump.contains('\u{202e}'),
        "shown as printf escapes: {dump}"
    );
    let out = run_copied(&f, &web2, &dump);
    assert!(out.status.success(), "{dump}: {out:?}");
    let file = HOSTILE_ATOM.rsplit('/').next().unwrap();
    let dumped = std::fs::read_to_string(f.path(&format!("copied/{file}.dump"))).unwrap();
    assert_eq!(dumped, "mail of web2\n");

    // Without `page: open`, a page needs a token; health and metrics do not.
    let config = f.path("etc/metadb.yml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("page: open\n", "")).unwrap();
    // SAFETY: kill(2) on the server this test started.
    assert_eq!(unsafe { libc::kill(server.pid() as i32, libc::SIGHUP) }, 0);
    let closed = eventually(Duration::from_secs(10), || {
        (server.request("GET", "/", None, "").0 == 303).then_some(())
    });
    assert!(closed.is_some(), "SIGHUP closes the pages");
    for open in ["/healthz", "/metrics"] {
        assert_eq!(server.request("GET", open, None, "").0, 200, "{open}");
    }
    assert_eq!(server.request("GET", "/", Some("secret"), "").0, 200);
    assert_eq!(server.request("GET", "/", Some("wrong"), "").0, 401);
    let (status, _) = server.request("GET", "/host?name=web1", Some("web2-secret"), "");
    assert_eq!(status, 403, "host_read: own");
    let dom = dump_dom(&format!("{url}/host?name=web1"));
    assert!(dom.contains("<h1>Sign in</h1>"), "sent to sign in: {dom}");
    assert!(
        dom.contains("name=\"next\" value=\"/host?name=web1\""),
        "{dom}"
    );
    screenshot(&format!("{url}/signin"), "signin.png");

    signing_in(&url);
}

/// The sign-in form, as a person uses it: an unknown token refused, the
/// admin's, then web2's under `host_read: own`.
fn signing_in(url: &str) {
    let browser = Driver::start();
    browser.goto(&format!("{url}/source?host=web1&source=users"));
    browser.wait_url(|u| u.contains("/signin?next="));
    browser.type_into("input[name=token]", "wrong");
    browser.click("form[action='/signin'] button");
    browser.wait_url(|u| u.ends_with("/signin"));
    let page = browser.source();
    assert!(
        page.contains("That token is not known."),
        "{}: {page}",
        browser.url()
    );

    browser.type_into("input[name=token]", "secret");
    browser.click("form[action='/signin'] button");
    browser.wait_url(|u| u == format!("{url}/source?host=web1&source=users"));
    let page = browser.source();
    assert!(page.contains("<svg class=\"plot\""), "{page}");
    assert!(page.contains("<span class=\"who\">admin</span>"));
    let cookies = browser.cookies();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let cookie = &cookies[0];
    assert_eq!(cookie["name"], "tabacco_session");
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Strict", "{cookie}");
    let id = cookie["value"].as_str().unwrap();
    assert!(id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()));
    browser.goto(&format!("{url}/"));
    let page = browser.source();
    assert!(page.contains("href=\"/host?name=web1\"") && page.contains("href=\"/host?name=web2\""));

    browser.click("form[action='/signout'] button");
    browser.wait_url(|u| u.ends_with("/signin"));
    browser.goto(&format!("{url}/"));
    browser.wait_url(|u| u.contains("/signin?next="));

    // web2's token sees web2 only, on every page.
    browser.type_into("input[name=token]", "web2-secret");
    browser.click("form[action='/signin'] button");
    browser.wait_url(|u| u == format!("{url}/"));
    let page = browser.source();
    assert!(
        page.contains("<span class=\"who\">host web2</span>"),
        "{page}"
    );
    assert!(page.contains("1 host, 1 planned source."), "{page}");
    assert!(page.contains("href=\"/host?name=web2\"") && !page.contains("web1"));
    browser.goto(&format!("{url}/host?name=web1"));
    assert!(browser.source().contains("may only read its own host"));
    browser.goto(&format!("{url}/search?atom=*"));
    let page = browser.source();
    assert!(page.contains("<h2 class=\"atom\">mail/"), "{page}");
    assert!(!page.contains("<h2 class=\"atom\">users/"), "{page}");
}

#[test]
fn hostile_names_are_shown_as_text() {
    let f = Fixture::new();
    let server = Server::start(&fleet_config(&f, "page: open\n", &[]), "127.0.0.1:0");
    let host = "x\"'<script>alert(1)&";
    let long = format!("users/{}", vec!["ü".repeat(120); 4].join("/"));
    let atoms = [
        "users/<script>alert(3)</script>".to_string(),
        "users/\u{202e}evil".to_string(),
        long.clone(),
    ];
    let dataset = serde_json::json!({
        "backup": {"id": "b1", "timestamp": "2026-01-01T00:00:00Z", "host": host},
        "dataset": {"id": "d1", "source": "users", "snapshot_id": "abcd1234",
                    "total_bytes": 1000,
                    "atoms": atoms.iter().map(|a| serde_json::json!({"name": a})).collect::<Vec<_>>()},
    });
    let plan = serde_json::json!({"host": host, "sources": [
        {"source": "users", "schedule": "<img src=x onerror=alert(4)>",
         "next_due": "2026-01-01T00:00:00Z"}]});
    let attempt = serde_json::json!({"host": host, "source": "users", "backup_id": "b1",
        "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:01:00Z", "state": "failed",
        "failure": "command", "message": format!("<img src=x onerror=alert(5)>\u{202e} {}", "m".repeat(900)),
        "detail": "line one\n\t\u{202e}<script>alert(6)</script>"});
    for (path, body) in [
        ("/api/add_dataset", dataset),
        ("/api/plans", plan),
        ("/api/attempts", attempt),
    ] {
        let (status, text) = server.request("POST", path, Some("secret"), &body.to_string());
        assert_eq!(status, 200, "{path}: {text}");
    }
    let url = server.url();
    let encoded = "x%22%27%3Cscript%3Ealert%281%29%26";
    for page in [
        "/".to_string(),
        format!("/host?name={encoded}"),
        format!("/source?host={encoded}&source=users"),
        "/search?atom=users%2F*".to_string(),
    ] {
        let dom = dump_dom(&format!("{url}{page}"));
        assert!(!dom.contains("<script"), "{page}: {dom}");
        assert!(
            !dom.contains("<img") && !dom.contains("<b>"),
            "{page}: {dom}"
        );
        assert!(!dom.contains('\u{202e}'), "{page}: U+202E shown escaped");
        assert!(
            dom.contains("x\"'&lt;script&gt;alert(1)&amp;"),
            "{page}: {dom}"
        );
    }
    let dom = dump_dom(&format!("{url}/source?host={encoded}&source=users"));
    assert!(
        dom.contains("&lt;img src=x onerror=alert(5)&gt;\\u{202e} mmm"),
        "{dom}"
    );
    assert!(
        dom.contains("line one\n\\t\\u{202e}&lt;script&gt;alert(6)"),
        "{dom}"
    );
    let dom = dump_dom(&format!("{url}/search?atom=users%2F*"));
    assert!(
        dom.contains("users/&lt;script&gt;alert(3)&lt;/script&gt;</h2>"),
        "{dom}"
    );
    assert!(dom.contains("users/\\u{202e}evil</h2>"), "{dom}");
    assert!(dom.contains(&format!(
        "{}…</h2>",
        &long[..long.char_indices().nth(300).unwrap().0]
    )));
}
