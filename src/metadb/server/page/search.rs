//! The search page (`GET /search?atom=GLOB`): the versions of the atoms a
//! glob matches, by atom, host and repository, each with the command lines
//! that restore or dump exactly that version, to copy into a shell. The
//! page never acts: restoring stays a command an operator runs.

use crate::base::html::escape;
use crate::base::name::literal_pattern;
use crate::base::quote::sh;
use crate::base::visible::is_layout_control;
use crate::metadb::server::page::layout::{
    cut, document, host_link, number, size, source_link, text, time, Frame,
};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use std::fmt::Write;

/// Versions of each atom shown unless the query asks for another number.
pub const DEFAULT_VERSIONS: u32 = 5;
/// Most versions of each atom a query may ask for.
pub const MAX_VERSIONS: u32 = 100;
/// Most versions one page shows.
pub const MAX_SHOWN: usize = 500;

/// One version of an atom.
pub struct Version {
    pub atom: String,
    /// The atom's path, for a file atom.
    pub path: Option<String>,
    pub host: String,
    /// The backup's time (RFC 3339).
    pub time: String,
    pub source: String,
    pub total_bytes: i64,
    /// The repositories holding it.
    pub repositories: Vec<String>,
}

/// What the page shows.
pub struct View<'a> {
    pub pattern: &'a str,
    pub host: &'a str,
    pub versions_each: u32,
    /// The versions found, newest first.
    pub versions: &'a [Version],
    /// Whether more were found than shown.
    pub cut_short: bool,
    /// Why the search could not be made.
    pub error: Option<&'a str>,
}

/// The page for `view`.
pub fn render(frame: &Frame, view: &View) -> String {
    let mut body = String::with_capacity(32 * 1024);
    let _ = writeln!(
        body,
        "<h1>Search</h1>\n<form method=\"get\" action=\"/search\">\
         <label>Atoms <input name=\"atom\" value=\"{}\" size=\"40\"></label> \
         <label>Host <input name=\"host\" value=\"{}\" size=\"16\"></label> \
         <label>Versions of each <input name=\"versions\" value=\"{}\" size=\"3\"></label> \
         <button>Search</button></form>\n\
         <p class=\"note\">A shell glob over full atom names (<code>users/alice*</code>, \
         <code>sql/*</code>); <code>\\</code> makes the next character literal. Commands restore \
         into <code>/var/tmp/restore</code> on the host they are run on, which must have the \
         atom's source configured.</p>",
        text(view.pattern),
        text(view.host),
        view.versions_each
    );
    if let Some(error) = view.error {
        let _ = writeln!(body, "<p class=\"failed\">{}</p>", cut(error, 500));
    } else if !view.pattern.is_empty() {
        results(&mut body, view);
    }
    document(frame, "Search", None, &body)
}

fn results(body: &mut String, view: &View) {
    if view.versions.is_empty() {
        body.push_str("<p>No atom matches.</p>\n");
        return;
    }
    let mut versions: Vec<&Version> = view.versions.iter().collect();
    // By atom and host; each one's versions stay newest first.
    versions.sort_by(|a, b| (&a.atom, &a.host).cmp(&(&b.atom, &b.host)));
    let _ = writeln!(
        body,
        "<p>{} versions{}.</p>",
        number(versions.len()),
        if view.cut_short {
            ", the newest first; narrow the pattern for the rest"
        } else {
            ""
        }
    );
    let mut atom: Option<&str> = None;
    for v in versions {
        if atom != Some(v.atom.as_str()) {
            if atom.is_some() {
                body.push_str("</table>\n");
            }
            atom = Some(&v.atom);
            let _ = writeln!(
                body,
                "<h2 class=\"atom\">{}</h2>\n<table><tr><th>Host</th><th>Backup time</th>\
                 <th>Source</th><th>Repository</th><th>Dataset size</th><th>Restore or dump</th></tr>",
                cut(&v.atom, 300)
            );
        }
        for repository in &v.repositories {
            let commands: String = commands(v, repository)
                .iter()
                // As it runs: `word` wrote what would not show as printf
                // escapes, and a `\` of its quoting must stay one.
                .map(|c| format!("<code class=\"cmd\">{}</code>", escape(c)))
                .collect();
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td>\
                 <td>{commands}</td></tr>",
                host_link(&v.host),
                time(Some(&v.time)),
                source_link(&v.host, &v.source),
                cut(repository, 80),
                size(v.total_bytes)
            );
        }
    }
    body.push_str("</table>\n");
}

/// The commands that restore, and dump or list, version `v` from
/// `repository`: `--older-than` a second after it picks it, its name
/// made a literal pattern.
pub fn commands(v: &Version, repository: &str) -> Vec<String> {
    let after = DateTime::parse_from_rfc3339(&v.time)
        .map(|t| {
            (t.with_timezone(&Utc) + TimeDelta::seconds(1))
                .to_rfc3339_opts(SecondsFormat::Secs, true)
        })
        .unwrap_or_else(|_| v.time.clone());
    let select = format!(
        "--host {} --older-than {after} --repository {}",
        sh(&v.host),
        sh(repository)
    );
    let pattern = word(&literal_pattern(&v.atom));
    let restore = format!("tabacco restore {select} --target /var/tmp/restore {pattern}");
    let other = match &v.path {
        Some(_) => format!("tabacco ls {select} {pattern}"),
        None => {
            let file = v.atom.rsplit('/').next().unwrap_or("atom");
            format!(
                "tabacco dump {select} -o {} {pattern}",
                word(&format!("/var/tmp/{file}.dump"))
            )
        }
    };
    vec![restore, other]
}

/// `value` as one `/bin/sh` word, quoted, with its bidirectional
/// formatting characters and line separators (an atom name may hold them;
/// not control characters) written as `printf` escapes, so that the command
/// shows as it runs and still names the atom.
fn word(value: &str) -> String {
    let mut out = String::new();
    let mut plain = String::new();
    for c in value.chars() {
        if !is_layout_control(c) {
            plain.push(c);
            continue;
        }
        if !plain.is_empty() {
            out.push_str(&sh(&std::mem::take(&mut plain)));
        }
        let mut buf = [0; 4];
        let octal: String = c
            .encode_utf8(&mut buf)
            .bytes()
            .map(|b| format!("\\{b:03o}"))
            .collect();
        out.push_str(&format!("\"$(printf '{octal}')\""));
    }
    if !plain.is_empty() || out.is_empty() {
        out.push_str(&sh(&plain));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(atom: &str, host: &str, time: &str) -> Version {
        Version {
            atom: atom.into(),
            path: None,
            host: host.into(),
            time: time.into(),
            source: "users".into(),
            total_bytes: 4096,
            repositories: vec!["primary".into(), "offsite".into()],
        }
    }

    #[test]
    fn commands_pick_the_version_and_quote_everything() {
        let v = version("users/it's*", "web'1", "2026-01-01T03:00:00Z");
        assert_eq!(
            commands(&v, "offsite"),
            [
                r"tabacco restore --host 'web'\''1' --older-than 2026-01-01T03:00:01Z --repository 'offsite' --target /var/tmp/restore 'users/it'\''s\*'",
                r"tabacco dump --host 'web'\''1' --older-than 2026-01-01T03:00:01Z --repository 'offsite' -o '/var/tmp/it'\''s*.dump' 'users/it'\''s\*'",
            ]
        );
        let file = Version {
            path: Some("/home/alice".into()),
            ..version("users/alice", "web1", "2026-01-01T03:00:00Z")
        };
        assert!(commands(&file, "primary")[1].starts_with("tabacco ls --host 'web1'"));
    }

    #[test]
    fn bidi_formatting_in_a_name_is_spelled_out_for_the_shell() {
        assert_eq!(word("a'b"), r"'a'\''b'");
        assert_eq!(word(""), "''");
        assert_eq!(
            word("mail/x\u{202e}y"),
            r#"'mail/x'"$(printf '\342\200\256')"'y'"#
        );
        assert_eq!(word("\u{202e}"), r#""$(printf '\342\200\256')""#);
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("printf %s {}", word("x\u{202e}'y"))])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "x\u{202e}'y");
    }

    #[test]
    fn versions_by_atom_host_and_repository() {
        let versions = [
            version("users/bob", "web1", "2026-01-02T00:00:00Z"),
            version("users/alice", "web2", "2026-01-02T00:00:00Z"),
            version("users/alice", "web1", "2026-01-01T00:00:00Z"),
            version("users/<b>\u{202e}", "web1", "2026-01-01T00:00:00Z"),
        ];
        let frame = Frame {
            who: "".into(),
            signed_in: false,
            now: "2026-01-09T00:00:00Z".into(),
        };
        let view = View {
            pattern: "users/*",
            host: "",
            versions_each: 5,
            versions: &versions,
            cut_short: false,
            error: None,
        };
        let page = render(&frame, &view);
        let alice = page.find("<h2 class=\"atom\">users/alice</h2>").unwrap();
        let bob = page.find("<h2 class=\"atom\">users/bob</h2>").unwrap();
        assert!(alice < bob, "{page}");
        assert_eq!(page.matches("<code class=\"cmd\">").count(), 16);
        assert!(page.contains("<h2 class=\"atom\">users/&lt;b&gt;\\u{202e}</h2>"));
        assert!(page.contains("value=\"users/*\""));
        let none = render(
            &frame,
            &View {
                versions: &[],
                error: Some("invalid request: empty pattern"),
                ..view
            },
        );
        assert!(none.contains("invalid request: empty pattern"));
    }
}
