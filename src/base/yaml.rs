//! Reading one YAML configuration file (a mapping, or a list of mappings)
//! and remembering where each entry and each of its keys sits, so that a
//! validation error can name the file and line as well as the key. Shared
//! by the agent's configuration (`config`) and the metadb's (`metadb.yml`).
//!
//! serde_yaml reports positions for syntax and shape errors but keeps none
//! for values that deserialise fine, so entry and key lines come from the
//! text: a top-level list entry starts at a `-` in column 0, and a key's line
//! is its least indented `key:` inside the entry.

use serde::de::DeserializeOwned;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Where a configuration entry was written.
#[derive(Clone, Debug)]
pub struct Origin {
    pub file: Arc<Path>,
    pub line: usize,
    keys: Vec<(String, usize)>,
}

impl Origin {
    /// The origin of a whole file that has no entries of its own.
    pub fn file(file: &Path) -> Origin {
        Origin {
            file: file.into(),
            line: 1,
            keys: Vec::new(),
        }
    }

    /// The position of `key` in this entry (the entry's start if not found).
    pub fn at(&self, key: &str) -> Origin {
        let line = self
            .keys
            .iter()
            .find(|(k, _)| k == key)
            .map_or(self.line, |(_, l)| *l);
        Origin {
            file: self.file.clone(),
            line,
            keys: Vec::new(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A configuration error, located.
#[derive(Debug)]
pub struct Error {
    pub origin: Origin,
    pub message: String,
    /// What made the file unreadable or unparsable, if that is the error.
    cause: Option<Cause>,
}

/// Why a file could not be read or parsed.
#[derive(Debug)]
enum Cause {
    Io(std::io::Error),
    Yaml(serde_yaml::Error),
}

impl Error {
    pub fn new(origin: Origin, message: impl Into<String>) -> Error {
        Error {
            origin,
            message: message.into(),
            cause: None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Some(Cause::Io(e)) => Some(e),
            Some(Cause::Yaml(e)) => Some(e),
            None => None,
        }
    }
}

/// The entries read from a file, each with its origin, and the errors of
/// those that could not be read.
pub type Entries<T> = (Vec<(T, Origin)>, Vec<Error>);

/// Reads a file holding one `T` or a list of them. An empty file has none.
/// Each entry of a list that cannot be read is an error of its own, and
/// the others are read: what could be read, and every error.
pub fn read_entries<T: DeserializeOwned>(path: &Path) -> Entries<T> {
    match read(path) {
        Ok(text) => parse_entries(path, &text),
        Err(e) => (Vec::new(), vec![e]),
    }
}

/// Reads a file holding exactly one `T`.
pub fn read_one<T: DeserializeOwned>(path: &Path) -> Result<(T, Origin), Error> {
    read_one_text(path, &read(path)?)
}

/// Parses `text` (read from `path`) as exactly one `T`.
pub fn read_one_text<T: DeserializeOwned>(path: &Path, text: &str) -> Result<(T, Origin), Error> {
    let value = serde_yaml::from_str(text).map_err(|e| yaml_error(path, text, e))?;
    let lines: Vec<&str> = text.lines().collect();
    Ok((value, origin(path, &lines, 0, lines.len())))
}

/// Parses `text` (read from `path`) as one `T` or a list of them, as
/// [`read_entries`] does.
pub fn parse_entries<T: DeserializeOwned>(path: &Path, text: &str) -> Entries<T> {
    let fail = |e| (Vec::new(), vec![yaml_error(path, text, e)]);
    let value: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(value) => value,
        Err(e) => return fail(e),
    };
    let lines: Vec<&str> = text.lines().collect();
    match value {
        serde_yaml::Value::Null => (Vec::new(), Vec::new()),
        serde_yaml::Value::Sequence(list) => {
            let starts: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i] == "-" || lines[i].starts_with("- "))
                .collect();
            // Flow-style lists (`[{...}]`) have no `-` lines: point at the file.
            if starts.len() != list.len() {
                return match serde_yaml::from_str::<Vec<T>>(text) {
                    Ok(entries) => {
                        let at = |entry| (entry, Origin::file(path));
                        (entries.into_iter().map(at).collect(), Vec::new())
                    }
                    Err(e) => fail(e),
                };
            }
            let whole = match serde_yaml::from_str::<Vec<T>>(text) {
                Ok(entries) => entries,
                Err(e) => return each_entry(path, &lines, &starts).unwrap_or_else(|| fail(e)),
            };
            let located = whole.into_iter().enumerate().map(|(i, entry)| {
                let end = starts.get(i + 1).copied().unwrap_or(lines.len());
                (entry, origin(path, &lines, starts[i], end))
            });
            (located.collect(), Vec::new())
        }
        _ => match serde_yaml::from_str(text) {
            Ok(entry) => (
                vec![(entry, origin(path, &lines, 0, lines.len()))],
                Vec::new(),
            ),
            Err(e) => fail(e),
        },
    }
}

/// A list whose whole does not read, read entry by entry (each from its
/// `-` line in `starts` to the next), so that every entry's error is found
/// and the others are kept. `None` if every entry reads on its own (an
/// alias to another entry, say): the whole list's error stands then.
fn each_entry<T: DeserializeOwned>(
    path: &Path,
    lines: &[&str],
    starts: &[usize],
) -> Option<Entries<T>> {
    let (mut entries, mut errors) = (Vec::new(), Vec::new());
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(lines.len());
        let text = lines[start..end].join("\n");
        match serde_yaml::from_str::<Vec<T>>(&text) {
            Ok(one) => {
                let at = origin(path, lines, start, end);
                entries.extend(one.into_iter().map(|entry| (entry, at.clone())));
            }
            Err(e) => {
                let mut e = yaml_error(path, &text, e);
                e.origin.line += start;
                errors.push(e);
            }
        }
    }
    (!errors.is_empty()).then_some((entries, errors))
}

/// The text of `path`.
fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error {
        message: format!("cannot read: {e}"),
        origin: Origin::file(path),
        cause: Some(Cause::Io(e)),
    })
}

fn origin(path: &Path, lines: &[&str], start: usize, end: usize) -> Origin {
    let mut keys: Vec<(String, usize, usize)> = Vec::new();
    let mut note = |key: &str, line: usize, indent: usize| {
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return;
        }
        match keys.iter_mut().find(|(k, _, _)| k == key) {
            Some(found) if found.2 > indent => *found = (key.to_string(), line, indent),
            Some(_) => {}
            None => keys.push((key.to_string(), line, indent)),
        }
    };
    for (i, line) in lines.iter().enumerate().take(end).skip(start) {
        let body = line.strip_prefix("- ").unwrap_or(line);
        let indent = body.len() - body.trim_start().len();
        if let Some((key, _)) = body.trim_start().split_once(':') {
            note(key, i + 1, indent);
        }
        // Keys of flow mappings (`params: {uri: x}`) rank below block keys.
        for piece in body.split(['{', ',']).skip(1) {
            if let Some((key, _)) = piece.trim_start().split_once(':') {
                note(key, i + 1, usize::MAX);
            }
        }
    }
    let first = (start..end)
        .find(|&i| {
            let t = lines[i].trim();
            !t.is_empty() && !t.starts_with('#') && t != "---"
        })
        .map_or(start + 1, |i| i + 1);
    Origin {
        file: path.into(),
        line: first,
        keys: keys.into_iter().map(|(k, line, _)| (k, line)).collect(),
    }
}

/// serde_yaml's error `e` on `text` (of `path`), located and in words a
/// reader of the file acts on: no line and column (the origin says them),
/// no entry index (the line says which), a tab named as a tab, and the
/// likely intent of an unknown key.
fn yaml_error(path: &Path, text: &str, e: serde_yaml::Error) -> Error {
    let words = e.to_string();
    let about_tab = words.contains("tab character") || words.contains("cannot start any token");
    let mut origin = Origin::file(path);
    origin.line = e.location().map_or(1, |l| l.line());
    let message = match tab(text, origin.line).filter(|_| about_tab) {
        Some((line, column)) => {
            origin.line = line;
            format!("a tab character (column {column}): YAML indents with spaces only")
        }
        None => suggest_key(&entry_path_dropped(&without_position(&words))),
    };
    Error {
        origin,
        message,
        cause: Some(Cause::Yaml(e)),
    }
}

/// `message` without serde_yaml's " at line L column C", which the origin
/// says already.
fn without_position(message: &str) -> String {
    let mut message = message.to_string();
    if let Some(start) = message.find(" at line ") {
        let rest = &message[start + " at line ".len()..];
        let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let after_line = digits(rest);
        let end = match rest[after_line..].strip_prefix(" column ") {
            Some(col) => after_line + " column ".len() + digits(col),
            None => after_line,
        };
        message.replace_range(start..start + " at line ".len() + end, "");
    }
    message
}

/// `message` without the index of a list's entry that serde_yaml puts
/// first (`.[0]: `, `[2].params: `): the line says which entry.
fn entry_path_dropped(message: &str) -> String {
    let rest = message.strip_prefix('.').unwrap_or(message);
    let Some(index) = rest.strip_prefix('[') else {
        return message.to_string();
    };
    let Some((digits, after)) = index.split_once(']') else {
        return message.to_string();
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return message.to_string();
    }
    match after.strip_prefix(": ") {
        Some(message) => message.to_string(),
        None => after.strip_prefix('.').unwrap_or(after).to_string(),
    }
}

/// Where a tab sits that makes a YAML error (serde_yaml says "found
/// character that cannot start any token", or "found a tab character that
/// violates indentation"): the first tab in the indentation of the lines up
/// to `line`, nearest first, as (line, column).
fn tab(text: &str, line: usize) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().take(line).collect();
    lines.iter().enumerate().rev().find_map(|(i, l)| {
        let indent = l.len() - l.trim_start_matches([' ', '\t', '-']).len();
        l[..indent].find('\t').map(|column| (i + 1, column + 1))
    })
}

/// serde's "unknown field `x`, expected one of ..." with the closest known
/// key instead of the list when a typo explains it.
fn suggest_key(message: &str) -> String {
    let Some(start) = message.find("unknown field `") else {
        return message.to_string();
    };
    let after = &message[start + "unknown field `".len()..];
    let Some((typed, expected)) = after.split_once('`') else {
        return message.to_string();
    };
    let known = expected.split('`').skip(1).step_by(2);
    match crate::base::suggest::closest(typed, known) {
        Some(key) => format!(
            "{}unknown field `{typed}` (did you mean `{key}`?)",
            &message[..start]
        ),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        #[allow(dead_code)]
        name: String,
        #[allow(dead_code)]
        params: Option<serde_yaml::Value>,
    }

    /// The entries of `text`, which must all read.
    fn entries(text: &str) -> Vec<(Entry, Origin)> {
        let (entries, errors) = parse_entries(Path::new("s.yml"), text);
        assert!(errors.is_empty(), "{errors:?}");
        entries
    }

    /// The errors of `text`, one line each.
    fn errors(text: &str) -> Vec<String> {
        let (_, errors) = parse_entries::<Entry>(Path::new("s.yml"), text);
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn entry_and_key_lines() {
        let text = "# sources\n- name: a\n  params:\n    name: nested\n\n- name: b\n  params: {}\n";
        let entries = entries(text);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].1.to_string(), "s.yml:2");
        assert_eq!(entries[0].1.at("params").to_string(), "s.yml:3");
        assert_eq!(entries[1].1.at("name").to_string(), "s.yml:6");
        assert_eq!(entries[1].1.at("params").to_string(), "s.yml:7");
    }

    #[test]
    fn single_mapping_and_empty_file() {
        let one = entries("\n# x\nname: a\nparams: {}\n");
        assert_eq!(one[0].1.to_string(), "s.yml:3");
        assert_eq!(one[0].1.at("params").to_string(), "s.yml:4");
        assert!(entries("# nothing\n").is_empty());
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        assert_eq!(
            errors("- name: a\n- name: b\n  colour: red\n"),
            ["s.yml:3: unknown field `colour`, expected `name` or `params`"]
        );
    }

    /// Issue 28, item 9: a typo in a source key listed every valid key, and
    /// a second mistake in the same file was not shown.
    #[test]
    fn every_entry_is_read_and_a_typo_gets_its_key() {
        let text = "- name: a\n  parms: {}\n- name: b\n- name: c\n  nmae: d\n";
        let (read, errors) = parse_entries::<Entry>(Path::new("s.yml"), text);
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "s.yml:2: unknown field `parms` (did you mean `params`?)",
                "s.yml:5: unknown field `nmae` (did you mean `name`?)",
            ]
        );
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].1.to_string(), "s.yml:3");
        assert_eq!(
            errors_of_one("name: a\nparams:\n  x: 1\nparamz: 2\n"),
            "s.yml:4: unknown field `paramz` (did you mean `params`?)"
        );
    }

    fn errors_of_one(text: &str) -> String {
        errors(text).join("\n")
    }

    /// Issue 28, item 9: a tab read "found character that cannot start
    /// any token".
    #[test]
    fn a_tab_is_named_as_a_tab() {
        assert_eq!(
            errors_of_one("- name: a\n\tparams: {}\n"),
            "s.yml:2: a tab character (column 1): YAML indents with spaces only"
        );
        assert_eq!(
            errors_of_one("name: a\nparams:\n  x: 1\n\t y: 2\n"),
            "s.yml:4: a tab character (column 1): YAML indents with spaces only"
        );
    }
}
