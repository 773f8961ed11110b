//! The `${...}` substitutions of configured commands. A value is never
//! pasted into the command's text: each becomes a reference to an
//! environment variable of its own (`TABACCO_ATOM_NAME`, ...) that the
//! command is started with, written for the quoting context it sits in,
//! so the shell expands it exactly once and never parses it as syntax:
//!
//! - unquoted (also inside `$(...)` and backquotes): `"${TABACCO_X}"`;
//! - inside double quotes or an unquoted here-document: `${TABACCO_X}`;
//! - inside single quotes: `'"${TABACCO_X}"'` (the quotes closed around it).
//!
//! Inside a here-document whose delimiter is quoted nothing expands, so a
//! substitution there is an error. What a command does with the value
//! afterwards (handing it to `ssh` or `su -c`, which parse it again) is
//! the command's business.

use crate::base::quote;
use std::fmt;

/// The substitution variables a handler command may use (`restore.name`
/// in `restore_command` only, `proof.*` in `proof_command` only), each
/// with the environment variable that carries its value.
const VARIABLES: [(&str, &str); 9] = [
    ("atom.name", "TABACCO_ATOM_NAME"),
    ("atom.full_name", "TABACCO_ATOM_FULL_NAME"),
    ("atom.path", "TABACCO_ATOM_PATH"),
    ("dataset.name", "TABACCO_DATASET_NAME"),
    ("backup.id", "TABACCO_BACKUP_ID"),
    ("host", "TABACCO_HOST"),
    ("restore.name", "TABACCO_RESTORE_NAME"),
    ("proof.name", "TABACCO_PROOF_NAME"),
    ("proof.dir", "TABACCO_PROOF_DIR"),
];

/// The names of the substitution variables.
pub fn variables() -> impl Iterator<Item = &'static str> {
    VARIABLES.iter().map(|(name, _)| *name)
}

/// A command with its substitutions made: the text `/bin/sh -c` runs,
/// the environment that carries the values, and the text as people read
/// it (values shell-quoted in place) for plans and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    pub text: String,
    pub env: Vec<(&'static str, String)>,
    pub shown: String,
}

/// Why a template cannot be substituted.
#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// A substitution tabacco does not know, or that is not available
    /// where the command runs (`${backup.id}` in a check).
    Unknown { name: String },
    /// A substitution inside a here-document with a quoted delimiter,
    /// where the shell expands nothing.
    Unexpandable { name: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Unknown { name } => {
                let known: Vec<&str> = variables().collect();
                write!(
                    f,
                    "unknown or unavailable substitution ${{{name}}} (known: {})",
                    known.join(", ")
                )
            }
            Error::Unexpandable { name } => write!(
                f,
                "substitution ${{{name}}} inside a here-document with a quoted delimiter, where nothing expands (quote no part of the delimiter)"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// A quoting context of the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Context {
    /// Outside quotes: the command itself, `$(...)`, `(...)`, backquotes
    /// (`closer` says what ends it).
    Plain {
        closer: Option<char>,
    },
    Double,
    Single,
    /// The body of a here-document ending at the line `delimiter`.
    HereDoc {
        delimiter: String,
        quoted: bool,
        tabs: bool,
    },
}

/// A here-document announced by `<<` whose body starts at the next line.
struct Pending {
    delimiter: String,
    quoted: bool,
    tabs: bool,
}

/// Replaces each `${var}` of `template` with a reference to the
/// environment variable carrying `var`'s value (see the module's doc).
/// Shell variables such as `${HOME}` are left to the shell; a dotted name
/// tabacco does not know, or one not in `vars`, is an error, so a typo
/// cannot silently become an empty string.
pub fn substitute(template: &str, vars: &[(&str, &str)]) -> Result<Script, Error> {
    let mut script = Script {
        text: String::with_capacity(template.len()),
        env: Vec::new(),
        shown: String::with_capacity(template.len()),
    };
    let mut stack = vec![Context::Plain { closer: None }];
    let mut pending: Vec<Pending> = Vec::new();
    let mut at_line_start = false;
    let mut rest = template;
    while !rest.is_empty() {
        let top = stack
            .last()
            .cloned()
            .unwrap_or(Context::Plain { closer: None });
        if at_line_start {
            at_line_start = false;
            if let Context::HereDoc {
                delimiter, tabs, ..
            } = &top
            {
                let line = rest.split('\n').next().unwrap_or("");
                let bare = if *tabs {
                    line.trim_start_matches('\t')
                } else {
                    line
                };
                if bare == delimiter {
                    // Its newline, outside, starts the next body, if any.
                    stack.pop();
                    copy(&mut script, &mut rest, line.len());
                    continue;
                }
            }
        }
        if let Some(after) = rest.strip_prefix("${") {
            if let Some(end) = after.find('}') {
                let name = &after[..end];
                if let Some(value) = vars.iter().find(|(k, _)| *k == name).map(|(_, v)| *v) {
                    let env = VARIABLES
                        .iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, env)| *env)
                        .ok_or_else(|| Error::Unknown { name: name.into() })?;
                    let reference = match &top {
                        Context::Plain { .. } => format!("\"${{{env}}}\""),
                        Context::Double => format!("${{{env}}}"),
                        Context::Single => format!("'\"${{{env}}}\"'"),
                        Context::HereDoc { quoted: false, .. } => format!("${{{env}}}"),
                        Context::HereDoc { quoted: true, .. } => {
                            return Err(Error::Unexpandable { name: name.into() })
                        }
                    };
                    script.text.push_str(&reference);
                    script.shown.push_str(&quote::sh(value));
                    if !script.env.iter().any(|(k, _)| *k == env) {
                        script.env.push((env, value.to_string()));
                    }
                    rest = &after[end + 1..];
                    continue;
                }
                if variables().any(|v| v == name) || name.contains('.') {
                    return Err(Error::Unknown { name: name.into() });
                }
                if top != Context::Single {
                    // A shell parameter expansion, left whole to the shell.
                    copy(&mut script, &mut rest, 2 + end + 1);
                    continue;
                }
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        let two = rest.get(..2).unwrap_or("");
        match (&top, c) {
            (Context::HereDoc { .. }, '\n') => at_line_start = true,
            (Context::Single, '\'') => {
                stack.pop();
            }
            (Context::Single, _) => {}
            (Context::HereDoc { quoted: true, .. }, _) => {}
            (_, '\\') => {
                // The escaped character goes with it.
                let len = rest[1..].chars().next().map_or(1, |n| 1 + n.len_utf8());
                copy(&mut script, &mut rest, len);
                continue;
            }
            (Context::Double, '"') => {
                stack.pop();
            }
            (
                Context::Plain {
                    closer: Some(close),
                },
                _,
            ) if c == *close => {
                stack.pop();
            }
            (_, '`') => stack.push(Context::Plain { closer: Some('`') }),
            (_, '$') if two == "$(" => {
                stack.push(Context::Plain { closer: Some(')') });
                copy(&mut script, &mut rest, 2);
                continue;
            }
            (Context::Plain { .. }, '(') => stack.push(Context::Plain { closer: Some(')') }),
            (Context::Plain { .. }, '\'') => stack.push(Context::Single),
            (Context::Plain { .. }, '"') => stack.push(Context::Double),
            (Context::Plain { .. }, '#') if starts_word(&script.text) => {
                // A comment, to the end of the line.
                let len = rest.find('\n').unwrap_or(rest.len());
                copy(&mut script, &mut rest, len);
                continue;
            }
            (Context::Plain { .. }, '<') if two == "<<" => {
                let len = announce_heredoc(rest, &mut pending);
                copy(&mut script, &mut rest, len);
                continue;
            }
            (Context::Plain { .. }, '\n') => {
                copy(&mut script, &mut rest, 1);
                at_line_start = start_heredoc(&mut pending, &mut stack);
                continue;
            }
            _ => {}
        }
        copy(&mut script, &mut rest, c.len_utf8());
    }
    Ok(script)
}

/// Moves the first `len` bytes of `rest` to the script's texts.
fn copy(script: &mut Script, rest: &mut &str, len: usize) {
    script.text.push_str(&rest[..len]);
    script.shown.push_str(&rest[..len]);
    *rest = &rest[len..];
}

/// Whether a `#` after `text` starts a comment: it starts a word.
fn starts_word(text: &str) -> bool {
    text.chars()
        .last()
        .is_none_or(|c| c.is_whitespace() || ";&|()".contains(c))
}

/// Reads the here-document operator at the start of `rest` (`<<WORD`,
/// `<<-WORD`), records it in `pending` and returns its length.
fn announce_heredoc(rest: &str, pending: &mut Vec<Pending>) -> usize {
    let mut len = 2;
    let tabs = rest[len..].starts_with('-');
    if tabs {
        len += 1;
    }
    len += rest[len..].len() - rest[len..].trim_start_matches([' ', '\t']).len();
    let word_len = rest[len..]
        .find(|c: char| c.is_whitespace() || ";&|<>()".contains(c))
        .unwrap_or(rest.len() - len);
    let word = &rest[len..len + word_len];
    if !word.is_empty() {
        pending.push(Pending {
            delimiter: word.chars().filter(|c| !"'\"\\".contains(*c)).collect(),
            quoted: word.contains(['\'', '"', '\\']),
            tabs,
        });
    }
    len + word_len
}

/// At the start of a line outside quotes: enters the next announced
/// here-document's body, if any, and says whether it did.
fn start_heredoc(pending: &mut Vec<Pending>, stack: &mut Vec<Context>) -> bool {
    if pending.is_empty() {
        return false;
    }
    let next = pending.remove(0);
    stack.push(Context::HereDoc {
        delimiter: next.delimiter,
        quoted: next.quoted,
        tabs: next.tabs,
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Runs `template` with `name` as `${atom.name}`; what it printed and
    /// whether a file `touched` was created by the name.
    fn run(template: &str, name: &str) -> String {
        let dir = std::env::temp_dir().join(format!("tabacco-template-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let script = substitute(template, &[("atom.name", name)]).unwrap();
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(&script.text)
            .envs(script.env.clone())
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            !dir.join("F").exists(),
            "{template:?} with {name:?} ran the name: {}",
            script.text
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    const NAMES: [&str; 6] = [
        "$(touch F)",
        "`touch F`",
        "x\"; touch F; \"",
        "x'; touch F; '",
        "a b  * ?",
        "EOF\ntouch F",
    ];

    #[test]
    fn no_quoting_context_runs_a_name() {
        for name in NAMES {
            assert_eq!(run("printf '%s|' ${atom.name}", name), format!("{name}|"));
            assert_eq!(
                run("printf '%s|' \"dq ${atom.name}\"", name),
                format!("dq {name}|")
            );
            assert_eq!(
                run("printf '%s|' 'sq ${atom.name} x'", name),
                format!("sq {name} x|")
            );
            assert_eq!(
                run("printf '%s|' \"$(printf '%s' ${atom.name})\"", name),
                format!("{name}|")
            );
            assert_eq!(
                run("x=`printf '%s' ${atom.name}`; printf '%s|' \"$x\"", name),
                format!("{name}|")
            );
            assert_eq!(
                run(
                    "cat <<EOF\nhd ${atom.name} \"q\" 'q'\nEOF\necho after",
                    name
                ),
                format!("hd {name} \"q\" 'q'\nafter\n")
            );
            assert_eq!(
                run(
                    "cat <<-EOF ; echo x\n\thd ${atom.name}\n\tEOF\necho 'after'",
                    name
                ),
                format!("hd {name}\nx\nafter\n")
            );
            // An apostrophe in a comment does not change the context.
            assert_eq!(
                run("# don't\nprintf '%s|' ${atom.name}", name),
                format!("{name}|")
            );
        }
    }

    #[test]
    fn substitution_rules() {
        let vars = [("atom.name", "db1"), ("host", "web3")];
        let s = substitute("d ${atom.name} '${host}' ${HOME} $x", &vars).unwrap();
        assert_eq!(
            s.text,
            "d \"${TABACCO_ATOM_NAME}\" ''\"${TABACCO_HOST}\"'' ${HOME} $x"
        );
        assert_eq!(s.shown, "d 'db1' ''web3'' ${HOME} $x");
        assert_eq!(
            s.env,
            [
                ("TABACCO_ATOM_NAME", "db1".to_string()),
                ("TABACCO_HOST", "web3".to_string())
            ]
        );
        assert!(substitute("${atom.nmae}", &vars).is_err());
        assert!(
            substitute("${backup.id}", &vars).is_err(),
            "known but unavailable"
        );
        assert_eq!(
            substitute("unterminated ${atom", &vars).unwrap().text,
            "unterminated ${atom"
        );
        assert_eq!(
            substitute("cat <<'E'\n${atom.name}\nE", &vars),
            Err(Error::Unexpandable {
                name: "atom.name".into()
            })
        );
    }
}
