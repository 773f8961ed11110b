//! The errors of loading the configuration: where each problem is (the
//! file, the line, the key), what it is, and what caused it: a file that
//! cannot be read, or the refusal of the module that owns a value's meaning
//! (`base::name`, `base::schedule`, `base::time`, `Handler::new`, ...),
//! whose text is wrapped here, at config's boundary, as a [`Refusal`].
//!
//! `Display` is the one line `check` and the agent print,
//! `file:line: what is wrong`, the cause's text included; `source()` gives
//! the cause itself.

use crate::base::yaml::{self, Origin};
use std::fmt;

/// One problem in the configuration.
#[derive(Debug)]
pub struct Error {
    /// The file and line at fault; none for text that no file holds (what a
    /// `datasets_command` printed, a source name typed on the command line).
    pub origin: Option<Origin>,
    /// The key at fault, where one is.
    // Only tests read it yet: `Display` says the line, whose key is plain.
    #[allow(dead_code)]
    pub key: Option<&'static str>,
    /// The entry at fault when its line alone does not say which it is
    /// (`copy "offsite"`, `source "www"`), said first.
    pub subject: Option<String>,
    /// Boxed: errors travel up through every step, which stay small.
    pub problem: Box<Problem>,
}

/// What is wrong.
#[derive(Debug)]
pub enum Problem {
    /// A configuration file cannot be read or parsed.
    File(yaml::Error),
    /// The `sources/` or `handlers/` directory cannot be listed.
    Dir(std::io::Error),
    /// agent.yml names no host, and the system's name cannot be read.
    Hostname(std::io::Error),
    /// A name `base::name` refuses, of a `what`: copy, handler, source or
    /// atom.
    Name { what: &'static str, cause: Refusal },
    /// A second source or handler called `name`.
    Duplicate {
        what: &'static str,
        name: String,
        first: Origin,
    },
    /// A source name (typed on the command line) that no source has.
    UnknownSource { name: String, known: Vec<String> },
    /// What a `datasets_command` printed is not a list of datasets.
    Printed(serde_yaml::Error),
    /// A value that the module owning its meaning refused, as it said.
    Refused(Refusal),
    /// A value, or a combination of keys, that config refuses: why.
    Invalid(String),
}

/// Why a module refused a value: its error, or its text where it says
/// why in text only (`Schedule::parse`, `base::name`, ...).
pub type Refusal = Box<dyn std::error::Error + Send + Sync>;

/// Every problem found in a configuration, one per line.
#[derive(Debug)]
pub struct Errors(pub Vec<Error>);

impl Error {
    /// `problem`, found where no file says.
    pub fn new(problem: Problem) -> Error {
        Error {
            origin: None,
            key: None,
            subject: None,
            problem: Box::new(problem),
        }
    }
}

impl From<yaml::Error> for Error {
    fn from(e: yaml::Error) -> Error {
        Error {
            origin: Some(e.origin.clone()),
            ..Error::new(Problem::File(e))
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if let Some(origin) = &self.origin {
            write!(f, "{origin}: ")?;
        }
        if let Some(subject) = &self.subject {
            write!(f, "{subject}: ")?;
        }
        write!(f, "{}", self.problem)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            // The error's origin is the file's: only the message is left.
            Problem::File(e) => write!(f, "{}", e.message),
            Problem::Dir(e) => write!(f, "cannot read directory: {e}"),
            Problem::Hostname(e) => {
                write!(f, "cannot read the system host name ({e}): set hostname")
            }
            Problem::Name { what, cause } => write!(f, "{what} {cause}"),
            Problem::Duplicate { what, name, first } => {
                write!(
                    f,
                    "duplicate {what} name {name:?} (first defined at {first})"
                )
            }
            Problem::UnknownSource { name, known } if known.is_empty() => {
                write!(f, "no source named {name:?}: no source is configured")
            }
            Problem::UnknownSource { name, known } => {
                write!(
                    f,
                    "no source named {name:?}; configured: {}",
                    known.join(" ")
                )
            }
            Problem::Printed(e) => write!(f, "{e}"),
            Problem::Refused(r) => write!(f, "{r}"),
            Problem::Invalid(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.problem.as_ref() {
            Problem::File(e) => Some(e),
            Problem::Dir(e) | Problem::Hostname(e) => Some(e),
            Problem::Name { cause, .. } => Some(cause.as_ref()),
            Problem::Printed(e) => Some(e),
            Problem::Refused(r) => Some(r.as_ref()),
            Problem::Duplicate { .. } | Problem::UnknownSource { .. } | Problem::Invalid(_) => None,
        }
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

impl From<Error> for Errors {
    fn from(e: Error) -> Errors {
        Errors(vec![e])
    }
}

impl Errors {
    /// The value of `result`, or `fallback` (what leaving the key out
    /// gives) with the error kept, so that resolving goes on and finds
    /// every error of an entry, not only its first.
    pub fn or<T>(&mut self, result: Result<T, Error>, fallback: T) -> T {
        result.unwrap_or_else(|e| {
            self.0.push(e);
            fallback
        })
    }

    /// The value of `result`, if any; else the error is kept.
    pub fn ok<T>(&mut self, result: Result<T, Error>) -> Option<T> {
        result.map_err(|e| self.0.push(e)).ok()
    }

    /// `value` if no error was kept, else the errors.
    pub fn and<T>(self, value: T) -> Result<T, Errors> {
        match self.0.is_empty() {
            true => Ok(value),
            false => Err(self),
        }
    }
}

/// An entry of a configuration file that errors are located in: agent.yml,
/// a source, a handler template, or a copy (whose errors point at
/// `copies:` and name the copy).
#[derive(Clone, Debug)]
pub(super) struct Entry<'a> {
    origin: &'a Origin,
    /// The key whose line every error points at, instead of its own key's.
    line_of: Option<&'static str>,
    subject: Option<String>,
}

impl<'a> Entry<'a> {
    /// The entry at `origin`.
    pub fn new(origin: &'a Origin) -> Entry<'a> {
        Entry {
            origin,
            line_of: None,
            subject: None,
        }
    }

    /// Errors in it name `subject` first.
    pub fn about(&self, subject: String) -> Entry<'a> {
        Entry {
            subject: Some(subject),
            ..self.clone()
        }
    }

    /// An entry written under `key` of this one (a copy under `copies:`):
    /// its errors point at `key`'s line and name `subject` first.
    pub fn under(&self, key: &'static str, subject: String) -> Entry<'a> {
        Entry {
            line_of: Some(key),
            ..self.about(subject)
        }
    }

    /// `problem` with the value of `key`.
    pub fn error(&self, key: &'static str, problem: Problem) -> Error {
        Error {
            origin: Some(self.origin.at(self.line_of.unwrap_or(key))),
            key: Some(key),
            subject: self.subject.clone(),
            problem: Box::new(problem),
        }
    }

    /// The value of `key` is wrong, as `why` says.
    pub fn invalid(&self, key: &'static str, why: impl Into<String>) -> Error {
        self.error(key, Problem::Invalid(why.into()))
    }

    /// Wraps the refusal of the value of `key` by the module that owns
    /// its meaning (its error, or its text).
    pub fn refused<E: Into<Refusal>>(&self, key: &'static str) -> impl Fn(E) -> Error + '_ {
        move |why| self.error(key, Problem::Refused(why.into()))
    }

    /// Wraps `base::name`'s refusal of the name of a `what` at `key`.
    pub fn bad_name(&self, key: &'static str, what: &'static str) -> impl Fn(String) -> Error + '_ {
        move |why| {
            let cause = why.into();
            self.error(key, Problem::Name { what, cause })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use std::path::Path;

    #[test]
    fn an_error_says_where_and_keeps_its_cause() {
        let text = "name: www\nschedule: never\n";
        let (_, origin) =
            yaml::read_one_text::<serde_yaml::Value>(Path::new("s.yml"), text).unwrap();
        let entry = Entry::new(&origin).about("source \"www\"".into());
        let e = entry.refused("schedule")("no such schedule".to_string());
        assert_eq!(e.to_string(), "s.yml:2: source \"www\": no such schedule");
        assert_eq!(e.key, Some("schedule"));
        assert_eq!(e.origin.as_ref().map(|o| o.line), Some(2));
        assert_eq!(e.source().unwrap().to_string(), "no such schedule");
        let copy = Entry::new(&origin).under("name", "copy \"c\"".into());
        let e = copy.invalid("schedule", "wrong");
        assert_eq!(e.to_string(), "s.yml:1: copy \"c\": wrong");
        assert_eq!(e.key, Some("schedule"));
        assert!(e.source().is_none());
    }

    #[test]
    fn a_file_error_is_the_files_with_its_cause() {
        let e = Error::from(
            yaml::read_one::<serde_yaml::Value>(Path::new("/nonexistent")).unwrap_err(),
        );
        assert!(
            e.to_string().starts_with("/nonexistent:1: cannot read: "),
            "{e}"
        );
        let io = e.source().and_then(|yaml| yaml.source()).unwrap();
        assert!(io.downcast_ref::<std::io::Error>().is_some());
    }
}
