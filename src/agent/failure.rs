//! Why a backup failed, as a small fixed set of kinds: what the metrics count
//! (`tabacco_backup_failures_total{kind=...}`) and what decides whether a
//! failed backup is worth retrying.
//!
//! A job reports its failures as lines of text (see `job::Outcome`); they are
//! classified here by the wording of `restic::Error`, `shell::Error` and the
//! job's own messages, which the tests below pin down.

use std::fmt;

/// What a failed backup ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Another process holds a lock on the repository.
    RepositoryLocked,
    /// The repository cannot be reached or does not exist.
    RepositoryUnavailable,
    /// Any other restic failure (wrong password, crash, no summary).
    Repository,
    /// A configured command failed: a hook, a producer, `atoms_command`.
    Command,
    /// The snapshot was saved but could not be recorded (nor spooled).
    Metadb,
    /// The source's `timeout` stopped it.
    Timeout,
    /// The agent stopped it while shutting down.
    Interrupted,
    /// Anything else, e.g. a configured path that does not exist.
    Other,
}

/// The reason given to a job's supervisor when the agent shuts down.
pub const SHUTDOWN_REASON: &str = "agent shutting down";

impl Kind {
    /// Classifies one failure line of a job by how it begins (after the
    /// `dataset NAME: ` prefix), so that words quoted from a command's
    /// stderr cannot change the kind.
    pub fn classify(message: &str) -> Kind {
        let message = match message.strip_prefix("dataset ") {
            Some(rest) => rest.split_once(": ").map_or(rest, |(_, m)| m),
            None => message,
        };
        let first_word = message.split([' ', ':']).next().unwrap_or_default();
        if message.starts_with("snapshot ") && message.contains(" saved but not recorded") {
            Kind::Metadb
        } else if first_word.ends_with("_command") || message.starts_with("restic ") {
            // A process tabacco started was stopped, or failed.
            match stop_reason(message) {
                Some(reason) if reason.starts_with(SHUTDOWN_REASON) => Kind::Interrupted,
                Some(reason) if reason.starts_with("timeout of") => Kind::Timeout,
                _ if first_word.ends_with("_command") => Kind::Command,
                _ if is_network_error(message) => Kind::RepositoryUnavailable,
                _ => Kind::Repository,
            }
        } else if message.starts_with("repository is locked: ") {
            Kind::RepositoryLocked
        } else if message.starts_with("repository unavailable: ") {
            Kind::RepositoryUnavailable
        } else if message.starts_with("wrong repository password") || message.starts_with("restic")
        {
            Kind::Repository
        } else {
            Kind::Other
        }
    }

    /// The `kind` label value.
    pub fn name(self) -> &'static str {
        match self {
            Kind::RepositoryLocked => "repository_locked",
            Kind::RepositoryUnavailable => "repository_unavailable",
            Kind::Repository => "repository",
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

/// Whether restic's message is one of Go's network errors: a remote
/// repository restic could not reach (`restic init` then fails this way
/// after `restic cat config` found no repository).
fn is_network_error(message: &str) -> bool {
    const NETWORK: [&str; 7] = [
        "connection refused",
        "no route to host",
        "network is unreachable",
        "no such host",
        "i/o timeout",
        "connection reset by peer",
        "TLS handshake timeout",
    ];
    NETWORK.iter().any(|words| message.contains(words))
}

/// The reason in a `WHAT stopped: REASON` message of `shell::Error`.
fn stop_reason(message: &str) -> Option<&str> {
    let (what, reason) = message.split_once(" stopped: ")?;
    (!what.contains(' ') || what.starts_with("restic ")).then_some(reason)
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{restic, shell};
    use std::os::unix::process::ExitStatusExt;

    fn failed(what: &str, stderr: &str) -> shell::Error {
        shell::Error::Failed {
            what: what.into(),
            status: std::process::ExitStatus::from_raw(1 << 8),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn classifies_the_messages_jobs_produce() {
        let dataset = |e: &dyn fmt::Display| format!("dataset sql/db1: {e}");
        let locked = restic::Error::from(failed(
            "restic backup",
            "unable to create lock in backend: repository is already locked by PID 7",
        ));
        assert_eq!(Kind::classify(&dataset(&locked)), Kind::RepositoryLocked);
        let gone = restic::Error::from(failed(
            "restic backup",
            "Fatal: unable to open config file / Is there a repository at the following location?",
        ));
        assert_eq!(Kind::classify(&dataset(&gone)), Kind::RepositoryUnavailable);
        let unreachable = restic::Error::from(failed(
            "restic init",
            "Fatal: create repository at rest:http://127.0.0.1:1/ failed: Post \"http://127.0.0.1:1/?create=true\": dial tcp 127.0.0.1:1: connect: connection refused",
        ));
        assert_eq!(
            Kind::classify(&unreachable.to_string()),
            Kind::RepositoryUnavailable
        );
        let crash = restic::Error::from(failed("restic backup", "panic"));
        assert_eq!(Kind::classify(&dataset(&crash)), Kind::Repository);
        assert_eq!(
            Kind::classify(&restic::Error::WrongPassword.to_string()),
            Kind::Repository
        );
        let hook = failed("pre_backup_command", "no such table");
        assert_eq!(Kind::classify(&dataset(&hook)), Kind::Command);
        let stopped = |reason: &str| shell::Error::Stopped {
            what: "backup_command".into(),
            reason: reason.into(),
        };
        assert_eq!(
            Kind::classify(&dataset(&stopped("timeout of 60s exceeded"))),
            Kind::Timeout
        );
        assert_eq!(
            Kind::classify(&dataset(&stopped(SHUTDOWN_REASON))),
            Kind::Interrupted
        );
        assert_eq!(
            Kind::classify(&format!(
                "dataset x: {} ({})",
                restic::Error::from(stopped(SHUTDOWN_REASON)),
                stopped(SHUTDOWN_REASON)
            )),
            Kind::Interrupted
        );
        let quoting = failed(
            "post_backup_command",
            "repository is locked: restic said so",
        );
        assert_eq!(Kind::classify(&dataset(&quoting)), Kind::Command);
        assert_eq!(
            Kind::classify("dataset x: snapshot 1a2b3c4d saved but not recorded: metadb: busy"),
            Kind::Metadb
        );
        assert_eq!(
            Kind::classify("dataset x: path /srv/x does not exist"),
            Kind::Other
        );
        assert!(Kind::RepositoryLocked.is_transient() && !Kind::Command.is_transient());
    }
}
