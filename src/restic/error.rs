//! What a restic failure means to a job: [`Error`], classified from
//! restic's exit code where it gives one (0.17 and newer) and from the
//! words of its stderr otherwise (0.14), with stderr's JSON messages
//! reduced to their words. Running restic is `process::shell`'s; which
//! command failed is the caller's, and what a failure to open the
//! repository means there (which repository, and the fix) is `open`'s.

use crate::process::shell;
use serde::Deserialize;
use std::fmt;

/// Exit codes of restic 0.17 and newer: no repository at the location, a
/// lock could not be taken, wrong password (0.17.1).
const EXIT_NO_REPOSITORY: i32 = 10;
const EXIT_LOCKED: i32 = 11;
const EXIT_WRONG_PASSWORD: i32 = 12;

/// A restic failure, classified where a caller must branch on it. The
/// repository's problems carry a message: restic's words as classified,
/// made into a whole sentence naming the repository and the fix by
/// [`crate::restic::Repo`] where it knows which repository failed.
#[derive(Debug)]
pub enum Error {
    /// The repository is locked by another process.
    Locked(String),
    /// The repository cannot be reached (a network error), or did not
    /// answer in time: a later attempt may succeed.
    Unavailable(String),
    /// No repository at the location: `tabacco init` creates it.
    Missing(String),
    /// No key of the repository opens with this host's password.
    WrongPassword(String),
    /// The repository is there but cannot be opened: a key that does not
    /// belong to its config, a config and no key, keys and no config.
    Damaged(String),
    /// The location holds another repository than the one this host used
    /// there.
    Foreign(String),
    /// restic ran but reported no summary.
    NoSummary,
    /// restic's output could not be understood.
    Output(String),
    /// restic cannot be run, or is a version tabacco does not support.
    Version(String),
    Process(shell::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Locked(msg) => write!(f, "repository is locked: {msg}"),
            Error::Unavailable(msg)
            | Error::Missing(msg)
            | Error::WrongPassword(msg)
            | Error::Damaged(msg)
            | Error::Foreign(msg) => f.write_str(msg),
            Error::NoSummary => f.write_str("restic reported no backup summary"),
            Error::Output(e) => write!(f, "unexpected restic output: {e}"),
            Error::Version(e) => f.write_str(e),
            Error::Process(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Process(e) => Some(e),
            _ => None,
        }
    }
}

impl From<shell::Error> for Error {
    /// By exit code where restic gives one (0.17 and newer), else by the
    /// words of restic 0.14's stderr.
    fn from(e: shell::Error) -> Error {
        let shell::Error::Failed {
            what,
            status,
            stderr,
        } = e
        else {
            return Error::Process(e);
        };
        let stderr = plain_stderr(&stderr);
        // A network error first: restic asks whether there is a repository
        // when it could not reach the one there is.
        if is_network_error(&stderr) {
            return Error::Unavailable(stderr);
        }
        match status.code() {
            Some(EXIT_NO_REPOSITORY) => return Error::Missing(stderr),
            Some(EXIT_LOCKED) => return Error::Locked(stderr),
            Some(EXIT_WRONG_PASSWORD) => return Error::WrongPassword(stderr),
            _ => {}
        }
        if stderr.contains("repository is already locked") {
            return Error::Locked(stderr);
        }
        if stderr.contains("wrong password") {
            return Error::WrongPassword(stderr);
        }
        if stderr.contains("ciphertext verification failed") || stderr.contains(" is damaged") {
            return Error::Damaged(stderr);
        }
        // restic 0.14 asks whether there is a repository whenever it could
        // not read the config: missing only if its backend said so.
        if stderr.contains("Is there a repository at the following location?") {
            return match says_missing(&stderr) {
                true => Error::Missing(stderr),
                false => Error::Unavailable(stderr),
            };
        }
        Error::Process(shell::Error::Failed {
            what,
            status,
            stderr,
        })
    }
}

impl Error {
    /// Whether the repository itself failed, rather than a command on it:
    /// missing, unreachable, not opening with this host's key, or another
    /// one than this host knew. A repository that failed so is probed
    /// again before its next use.
    pub fn is_repository(&self) -> bool {
        matches!(
            self,
            Error::Unavailable(_)
                | Error::Missing(_)
                | Error::WrongPassword(_)
                | Error::Damaged(_)
                | Error::Foreign(_)
        )
    }

    /// restic could not tell which snapshot a short id means.
    pub(super) fn is_ambiguous_id(&self) -> bool {
        self.stderr()
            .is_some_and(|s| s.contains("multiple IDs with prefix"))
    }

    /// The repository holds no snapshot of that id or tag: restic 0.14
    /// says `no matching ID found` or `no snapshot found`; 0.18 also
    /// `failed to find snapshot: failed to load snapshot` for a whole id.
    pub fn is_missing_snapshot(&self) -> bool {
        const MISSING: [&str; 3] = [
            "no matching ID found",
            "no snapshot found",
            "failed to find snapshot",
        ];
        self.stderr()
            .is_some_and(|s| MISSING.iter().any(|words| s.contains(words)))
    }

    /// The snapshot holds no such path.
    pub(super) fn is_missing_path(&self) -> bool {
        self.stderr()
            .is_some_and(|s| s.contains("not found in snapshot"))
    }

    /// The backend refused to delete a file (an append-only server):
    /// restic 0.14 retries for ~44 s, then fails with a stack trace whose
    /// tail names its `cmd/restic/delete.go`; later versions say `unable to
    /// remove`.
    pub fn is_refused_deletion(&self) -> bool {
        self.stderr()
            .is_some_and(|s| s.contains("unable to remove") || s.contains("cmd/restic/delete.go"))
    }

    fn stderr(&self) -> Option<&str> {
        match self {
            Error::Process(shell::Error::Failed { stderr, .. }) => Some(stderr),
            _ => None,
        }
    }
}

/// restic's stderr tail (lines joined by ` / `) with its JSON messages
/// (`exit_error` of 0.18, `error` of `backup --json`) reduced to their
/// words. restic 0.14 writes some errors as the Go value they are, whose
/// cause marshals to nothing (`{"Op":"read","Path":"/sql","Err":{}}`):
/// their operation is what is left to say.
fn plain_stderr(stderr: &str) -> String {
    #[derive(Deserialize)]
    struct Message {
        message: Option<String>,
        error: Option<Inner>,
        item: Option<String>,
        during: Option<String>,
    }
    #[derive(Deserialize)]
    struct Inner {
        message: Option<String>,
        #[serde(rename = "Op")]
        op: Option<String>,
    }
    let reduce = |part: &str| {
        let message = serde_json::from_str::<Message>(part).ok()?;
        if let Some(m) = message.message {
            return Some(m);
        }
        let error = message.error?;
        let words = match (error.message, error.op, message.during) {
            (Some(m), _, _) => m,
            (None, Some(op), _) => format!("{op} failed"),
            (None, None, Some(during)) => format!("error during {during}"),
            (None, None, None) => "error".into(),
        };
        Some(match message.item {
            Some(item) if !item.is_empty() => format!("{item}: {words}"),
            _ => words,
        })
    };
    let parts: Vec<String> = stderr
        .split(" / ")
        .map(|part| reduce(part).unwrap_or_else(|| part.to_string()))
        .collect();
    parts.join(" / ")
}

/// Whether restic's stderr says that the config it looked for does not
/// exist (a local path, REST, sftp, S3), rather than that the backend
/// refused or failed to answer.
fn says_missing(stderr: &str) -> bool {
    const MISSING: [&str; 4] = [
        "does not exist",
        "no such file or directory",
        "NoSuchBucket",
        "NoSuchKey",
    ];
    MISSING.iter().any(|words| stderr.contains(words))
}

/// Whether restic's stderr holds one of Go's network errors, or ssh's for
/// an sftp repository: a remote repository it could not reach.
fn is_network_error(stderr: &str) -> bool {
    const NETWORK: [&str; 9] = [
        "connection refused",
        "no route to host",
        "network is unreachable",
        "no such host",
        "i/o timeout",
        "connection reset by peer",
        "TLS handshake timeout",
        "Could not resolve hostname",
        "unable to start the sftp session",
    ];
    NETWORK.iter().any(|words| stderr.contains(words))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn classifies_errors_from_stderr() {
        let failed = |stderr: &str| shell::Error::Failed {
            what: "restic".into(),
            status: std::os::unix::process::ExitStatusExt::from_raw(1 << 8),
            stderr: stderr.into(),
        };
        assert!(matches!(
            Error::from(failed("Fatal: wrong password or no key found")),
            Error::WrongPassword(_)
        ));
        assert!(matches!(
            Error::from(failed("Fatal: unable to open config file: stat /r/config: no such file or directory / Is there a repository at the following location?")),
            Error::Missing(_)
        ));
        // restic 0.14 asks the same of a REST server it could not reach.
        assert!(matches!(
            Error::from(failed("Fatal: unable to open config file: client.Head: Head \"http://127.0.0.1:1/config\": dial tcp 127.0.0.1:1: connect: connection refused / Is there a repository at the following location?")),
            Error::Unavailable(_)
        ));
        // ssh could not reach an sftp repository's host (restic 0.14).
        assert!(matches!(
            Error::from(failed("subprocess ssh: ssh: Could not resolve hostname backup1.example.net: Name or service not known / Fatal: unable to open repository at sftp:restic@backup1.example.net:/srv/restic/fleet: unable to start the sftp session, error: EOF")),
            Error::Unavailable(_)
        ));
        // A server that refuses the credentials is no missing repository.
        assert!(matches!(
            Error::from(failed("Fatal: unable to open config file: unexpected HTTP response (401): 401 Unauthorized / Is there a repository at the following location?")),
            Error::Unavailable(_)
        ));
        // Concurrent `restic init`s leave a key that does not open the
        // config (restic 0.14 and 0.18 say it alike).
        assert!(matches!(
            Error::from(failed(
                "Fatal: config or key 02e602a0 is damaged: ciphertext verification failed"
            )),
            Error::Damaged(_)
        ));
        assert!(matches!(
            Error::from(failed(
                "unable to create lock in backend: repository is already locked by PID 1"
            )),
            Error::Locked(_)
        ));
        assert!(matches!(
            Error::from(failed("Fatal: create repository at rest:http://127.0.0.1:1/ failed: dial tcp 127.0.0.1:1: connect: connection refused")),
            Error::Unavailable(_)
        ));
        let other = Error::from(failed("other"));
        assert!(matches!(other, Error::Process(_)));
        // The process's failure is the cause it wraps.
        let cause = std::error::Error::source(&other).map(ToString::to_string);
        assert_eq!(cause, Some("restic exited with status 1: other".into()));
        assert!(std::error::Error::source(&Error::WrongPassword(String::new())).is_none());
    }

    #[test]
    fn a_deletion_refused_by_an_append_only_server_is_told_apart() {
        let failed = |stderr: &str| {
            Error::from(shell::Error::Failed {
                what: "restic forget".into(),
                status: std::os::unix::process::ExitStatusExt::from_raw(1 << 8),
                stderr: stderr.into(),
            })
        };
        // The stderr tail restic 0.14's `forget` leaves after ~44 s of
        // retrying a DELETE that rclone's --append-only answered 403.
        let tail = "\tgithub.com/restic/restic/cmd/restic/delete.go:47 / golang.org/x/sync/errgroup.(*Group).Go.func1 / \tgolang.org/x/sync/errgroup/errgroup.go:75 / runtime.goexit / \truntime/asm_amd64.s:1594";
        assert!(failed(tail).is_refused_deletion());
        assert!(
            failed("unable to remove <snapshot/4513251bc8> from the repository")
                .is_refused_deletion()
        );
        assert!(!failed("Fatal: unable to open config file").is_refused_deletion());
    }

    #[test]
    fn classifies_by_exit_code_first() {
        let failed = |code: i32, stderr: &str| shell::Error::Failed {
            what: "restic".into(),
            status: std::os::unix::process::ExitStatusExt::from_raw(code << 8),
            stderr: stderr.into(),
        };
        // restic 0.18.0's words for each, captured.
        let json = r#"{"message_type":"exit_error","code":10,"message":"Fatal: repository does not exist: unable to open config file: stat /r/config: no such file or directory"}"#;
        match Error::from(failed(10, json)) {
            Error::Missing(msg) => assert_eq!(
                msg,
                "Fatal: repository does not exist: unable to open config file: stat /r/config: no such file or directory"
            ),
            e => panic!("{e:?}"),
        }
        assert!(matches!(
            Error::from(failed(11, "Fatal: unable to create lock in backend")),
            Error::Locked(_)
        ));
        assert!(matches!(
            Error::from(failed(12, "Fatal: wrong password or no key found")),
            Error::WrongPassword(_)
        ));
        // Unknown codes are failures, with JSON reduced to its words.
        let e = Error::from(failed(
            1,
            r#"{"message_type":"exit_error","code":1,"message":"Fatal: unable to save snapshot: open /sql: no such file or directory"}"#,
        ));
        assert_eq!(
            e.to_string(),
            "restic exited with status 1: Fatal: unable to save snapshot: open /sql: no such file or directory"
        );
        let e = Error::from(failed(
            1,
            r#"{"message_type":"error","error":{"message":"open /x: permission denied"},"during":"archival","item":"/x"} / Fatal: failed"#,
        ));
        assert_eq!(
            e.to_string(),
            "restic exited with status 1: /x: open /x: permission denied / Fatal: failed"
        );
        // Issue 28, item 5: restic 0.14's error about an empty stdin
        // (captured) was shown as its raw JSON.
        let e = Error::from(failed(
            1,
            r#"{"message_type":"error","error":{"Op":"read","Path":"/sql","Err":{}},"during":"archival","item":"/sql"} / Fatal: unable to save snapshot: snapshot is empty"#,
        ));
        assert_eq!(
            e.to_string(),
            "restic exited with status 1: /sql: read failed / Fatal: unable to save snapshot: snapshot is empty"
        );
        assert!(Error::from(failed(
            2,
            "cannot dump file: path \"/a\" not found in snapshot"
        ))
        .is_missing_path());
        assert!(Error::from(failed(
            1,
            "Fatal: invalid id \"ab\": multiple IDs with prefix \"ab\" found"
        ))
        .is_ambiguous_id());
        // A snapshot the repository lacks, as 0.14 and 0.18 say it (captured).
        for missing in [
            "invalid id \"0123abcd\": no matching ID found for prefix \"0123abcd\"",
            "latest snapshot for criteria not found: no snapshot found Paths:[] Hosts:[]",
            "Fatal: failed to find snapshot: failed to load snapshot c178c346: open /r/snapshots/c178: no such file or directory",
        ] {
            assert!(Error::from(failed(1, missing)).is_missing_snapshot(), "{missing}");
        }
        assert!(!Error::from(failed(1, "Fatal: other")).is_missing_snapshot());
    }
}
