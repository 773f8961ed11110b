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
}

impl Error {
    pub fn new(origin: Origin, message: impl Into<String>) -> Error {
        Error {
            origin,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

/// Reads a file holding one `T` or a list of them. An empty file has none.
pub fn read_entries<T: DeserializeOwned>(path: &Path) -> Result<Vec<(T, Origin)>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::new(Origin::file(path), format!("cannot read: {e}")))?;
    parse_entries(path, &text)
}

/// Reads a file holding exactly one `T`.
pub fn read_one<T: DeserializeOwned>(path: &Path) -> Result<(T, Origin), Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::new(Origin::file(path), format!("cannot read: {e}")))?;
    let value = serde_yaml::from_str(&text).map_err(|e| yaml_error(path, &e))?;
    let lines: Vec<&str> = text.lines().collect();
    Ok((value, origin(path, &lines, 0, lines.len())))
}

/// Parses `text` (read from `path`) as one `T` or a list of them.
pub fn parse_entries<T: DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<Vec<(T, Origin)>, Error> {
    let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| yaml_error(path, &e))?;
    let lines: Vec<&str> = text.lines().collect();
    match value {
        serde_yaml::Value::Null => Ok(Vec::new()),
        serde_yaml::Value::Sequence(_) => {
            let entries: Vec<T> = serde_yaml::from_str(text).map_err(|e| yaml_error(path, &e))?;
            let starts: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i] == "-" || lines[i].starts_with("- "))
                .collect();
            // Flow-style lists (`[{...}]`) have no `-` lines: point at the file.
            let located = starts.len() == entries.len();
            Ok(entries
                .into_iter()
                .enumerate()
                .map(|(i, entry)| {
                    let origin = if located {
                        let end = starts.get(i + 1).copied().unwrap_or(lines.len());
                        origin(path, &lines, starts[i], end)
                    } else {
                        Origin::file(path)
                    };
                    (entry, origin)
                })
                .collect())
        }
        _ => {
            let entry: T = serde_yaml::from_str(text).map_err(|e| yaml_error(path, &e))?;
            Ok(vec![(entry, origin(path, &lines, 0, lines.len()))])
        }
    }
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

fn yaml_error(path: &Path, e: &serde_yaml::Error) -> Error {
    let line = e.location().map_or(1, |l| l.line());
    let mut origin = Origin::file(path);
    origin.line = line;
    // serde_yaml says " at line L column C"; the origin says it already.
    let mut message = e.to_string();
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
    Error::new(origin, message)
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

    #[test]
    fn entry_and_key_lines() {
        let text = "# sources\n- name: a\n  params:\n    name: nested\n\n- name: b\n  params: {}\n";
        let entries: Vec<(Entry, Origin)> = parse_entries(Path::new("s.yml"), text).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].1.to_string(), "s.yml:2");
        assert_eq!(entries[0].1.at("params").to_string(), "s.yml:3");
        assert_eq!(entries[1].1.at("name").to_string(), "s.yml:6");
        assert_eq!(entries[1].1.at("params").to_string(), "s.yml:7");
    }

    #[test]
    fn single_mapping_and_empty_file() {
        let entries: Vec<(Entry, Origin)> =
            parse_entries(Path::new("s.yml"), "\n# x\nname: a\nparams: {}\n").unwrap();
        assert_eq!(entries[0].1.to_string(), "s.yml:3");
        assert_eq!(entries[0].1.at("params").to_string(), "s.yml:4");
        let none: Vec<(Entry, Origin)> = parse_entries(Path::new("s.yml"), "# nothing\n").unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let err =
            parse_entries::<Entry>(Path::new("s.yml"), "- name: a\n- name: b\n  colour: red\n")
                .unwrap_err()
                .to_string();
        assert!(err.starts_with("s.yml:3: "), "{err}");
        assert!(err.contains("unknown field `colour`"), "{err}");
    }
}
