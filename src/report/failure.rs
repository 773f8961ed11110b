//! Why a job failed: a one-line message and a kind from a small fixed set.
//! The agent counts failures by kind (`tabacco_backup_failures_total`) and
//! retries only transient ones, so the kind is decided where the error is
//! still typed (a `restic::Error`, a `shell::Error`), never read back from
//! the message, whose words may be quoted from a command's stderr.

use crate::process::shell;
use crate::restic;
use std::fmt;

/// What a failed job ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Another process holds a lock on the repository.
    RepositoryLocked,
    /// The repository cannot be reached, or did not answer in time.
    RepositoryUnavailable,
    /// There is no repository at the location: `tabacco init` creates it.
    RepositoryMissing,
    /// No key of the repository opens with this host's password.
    RepositoryPassword,
    /// The repository cannot be opened: a key that does not belong to its
    /// config, a config and no key, keys and no config.
    RepositoryDamaged,
    /// The location holds another repository than the one this host used.
    RepositoryForeign,
    /// Any other restic failure (a crash, no summary).
    Repository,
    /// The snapshot was saved and recorded, but restic could not read some
    /// files (its exit status 3).
    Incomplete,
    /// A configured command failed: a hook, a producer, `atoms_command`.
    Command,
    /// The snapshot was saved but could not be recorded (nor spooled).
    Metadb,
    /// The source's `timeout` stopped it.
    Timeout,
    /// Its owner stopped it (a signal, the agent shutting down).
    Interrupted,
    /// Anything else, e.g. a configured path that does not exist.
    Other,
}

impl Kind {
    /// The `kind` label value.
    pub fn name(self) -> &'static str {
        match self {
            Kind::RepositoryLocked => "repository_locked",
            Kind::RepositoryUnavailable => "repository_unavailable",
            Kind::RepositoryMissing => "repository_missing",
            Kind::RepositoryPassword => "repository_password",
            Kind::RepositoryDamaged => "repository_damaged",
            Kind::RepositoryForeign => "repository_foreign",
            Kind::Repository => "repository",
            Kind::Incomplete => "incomplete",
            Kind::Command => "command",
            Kind::Metadb => "metadb",
            Kind::Timeout => "timeout",
            Kind::Interrupted => "interrupted",
            Kind::Other => "other",
        }
    }

    /// Whether a later attempt may succeed without anyone's help.
    pub fn is_transient(self) -> bool {
        matches!(self, Kind::RepositoryLocked | Kind::RepositoryUnavailable)
    }
}

/// How a backup of a source ended, from its failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Every failure is [`Kind::Incomplete`]: all data that could be read
    /// is in the repository and recorded.
    Incomplete,
    Failed,
}

impl Verdict {
    pub fn of(errors: &[Failure]) -> Verdict {
        if errors.is_empty() {
            Verdict::Ok
        } else if errors.iter().all(|e| e.kind == Kind::Incomplete) {
            Verdict::Incomplete
        } else {
            Verdict::Failed
        }
    }

    /// `ok`, `incomplete` or `failed`, as logs and the status page say it.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Incomplete => "incomplete",
            Verdict::Failed => "failed",
        }
    }
}

/// Logs each failure of a backup of `source` in one line: an incomplete
/// snapshot as a warning, anything else as an error.
pub fn log(source: &str, backup_id: &str, errors: &[Failure]) {
    for error in errors {
        if error.kind == Kind::Incomplete {
            log::warn!("source {source} (backup {backup_id}) incomplete: {error}");
        } else {
            log::error!("source {source} (backup {backup_id}) failed: {error}");
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One failure of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: Kind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }

    /// The same failure, its message prefixed with where it happened.
    pub fn context(self, prefix: &str) -> Failure {
        Failure {
            message: format!("{prefix}: {}", self.message),
            ..self
        }
    }
}

impl From<shell::Error> for Failure {
    fn from(e: shell::Error) -> Failure {
        let kind = match &e {
            shell::Error::Stopped { timeout: true, .. } => Kind::Timeout,
            shell::Error::Stopped { timeout: false, .. } => Kind::Interrupted,
            shell::Error::Spawn { .. }
            | shell::Error::Failed { .. }
            | shell::Error::Output { .. } => Kind::Command,
        };
        Failure::new(kind, e.to_string())
    }
}

impl From<restic::Error> for Failure {
    fn from(e: restic::Error) -> Failure {
        let kind = match &e {
            restic::Error::Locked(_) => Kind::RepositoryLocked,
            restic::Error::Unavailable(_) => Kind::RepositoryUnavailable,
            restic::Error::Missing(_) => Kind::RepositoryMissing,
            restic::Error::WrongPassword(_) => Kind::RepositoryPassword,
            restic::Error::Damaged(_) => Kind::RepositoryDamaged,
            restic::Error::Foreign(_) => Kind::RepositoryForeign,
            restic::Error::Process(shell::Error::Stopped { timeout: true, .. }) => Kind::Timeout,
            restic::Error::Process(shell::Error::Stopped { .. }) => Kind::Interrupted,
            _ => Kind::Repository,
        };
        Failure::new(kind, e.to_string())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn failed(what: &str, stderr: &str) -> shell::Error {
        shell::Error::Failed {
            what: what.into(),
            status: std::process::ExitStatus::from_raw(1 << 8),
            stderr: stderr.into(),
        }
    }

    fn stopped(timeout: bool) -> shell::Error {
        shell::Error::Stopped {
            what: "backup_command".into(),
            reason: "r".into(),
            timeout,
        }
    }

    #[test]
    fn kinds_come_from_the_error_not_its_words() {
        let locked = failed("restic backup", "repository is already locked by PID 7");
        assert_eq!(
            Failure::from(restic::Error::from(locked)).kind,
            Kind::RepositoryLocked
        );
        let quoting = failed(
            "post_backup_command",
            "repository is already locked: or so it says",
        );
        assert_eq!(Failure::from(quoting).kind, Kind::Command);
        assert_eq!(Failure::from(stopped(true)).kind, Kind::Timeout);
        assert_eq!(Failure::from(stopped(false)).kind, Kind::Interrupted);
        assert_eq!(
            Failure::from(restic::Error::from(stopped(true))).kind,
            Kind::Timeout
        );
        assert_eq!(
            Failure::from(restic::Error::WrongPassword(String::new())).kind,
            Kind::RepositoryPassword
        );
        // A missing or damaged repository waits for its operator: never
        // retried by itself.
        for kind in [
            Kind::RepositoryMissing,
            Kind::RepositoryPassword,
            Kind::RepositoryDamaged,
            Kind::RepositoryForeign,
        ] {
            assert!(!kind.is_transient(), "{kind}");
        }
        let incomplete = Failure::new(Kind::Incomplete, "some files unreadable");
        assert_eq!(Verdict::of(&[]), Verdict::Ok);
        assert_eq!(
            Verdict::of(std::slice::from_ref(&incomplete)),
            Verdict::Incomplete
        );
        let other = Failure::new(Kind::Command, "hook failed");
        assert_eq!(Verdict::of(&[incomplete, other]), Verdict::Failed);
        let f = Failure::new(Kind::Other, "path /x does not exist").context("dataset users");
        assert_eq!(f.to_string(), "dataset users: path /x does not exist");
        assert!(Kind::RepositoryLocked.is_transient() && !Kind::Command.is_transient());
    }
}
