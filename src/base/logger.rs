//! Logging to stderr, one line per record with its level, in a form that
//! cron mail, init scripts and journald all read well: written to a file
//! (an init script's log), each line starts with its time, which the
//! journal, cron mail and a terminal say themselves. Nothing logged can
//! drive a terminal or forge a line: a record's message is made visible
//! (see `visible`). Job lines carry the
//! source and backup id in their message (see `shell::Supervisor`).
//!
//! On a terminal a command may show a status line under the log (`run`'s
//! progress, [`status`]): it is cleared before each record and drawn again
//! after it, so that the two never mix.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::sync::{Mutex, OnceLock, PoisonError};

struct Stderr;

/// Whether each line starts with its time: stderr is a file. Set once, by
/// [`init`].
static TIMESTAMPS: OnceLock<bool> = OnceLock::new();

/// The status line shown under the log; empty for none.
static STATUS: Mutex<String> = Mutex::new(String::new());

/// Goes to the start of the line and clears it.
const CLEAR: &str = "\r\x1b[K";

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        };
        // One line per record, whatever a command's stderr, a host's
        // message or a record held.
        let message = crate::base::visible::visible(&record.args().to_string());
        write(&format!("{level}: {message}"));
    }

    fn flush(&self) {}
}

/// Writes `tabacco: {text}` as a line of the log, with its time in a file,
/// under the status line on a terminal: how a command's last word (the
/// error it exits with) reads like the rest of its log.
pub fn write(text: &str) {
    let mut line = match TIMESTAMPS.get() {
        // In a file every line is dated, those of a message of several too.
        Some(true) => {
            let time = chrono::Local::now().format("%Y-%m-%dT%H:%M:%S%:z");
            text.lines()
                .map(|line| format!("{time} tabacco: {line}\n"))
                .collect()
        }
        _ => format!("tabacco: {text}\n"),
    };
    // Held while writing, so that the status line is drawn after the
    // record whatever thread logs.
    let status = STATUS.lock().unwrap_or_else(PoisonError::into_inner);
    if !status.is_empty() {
        line = format!("{CLEAR}{line}{status}");
    }
    // One write per line so that lines from threads do not interleave.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Installs the logger: -1 errors only, 0 warnings, 1 info, 2+ debug.
pub fn init(verbosity: i8) {
    let level = match verbosity {
        i8::MIN..=-1 => LevelFilter::Error,
        0 => LevelFilter::Warn,
        1 => LevelFilter::Info,
        _ => LevelFilter::Debug,
    };
    TIMESTAMPS.get_or_init(stderr_is_a_file);
    if log::set_logger(&Stderr).is_ok() {
        log::set_max_level(level);
    }
}

/// Shows `line` as the status line under the log, replacing the last one;
/// an empty `line` clears it. For a terminal only: the caller checks.
pub fn status(line: &str) {
    let mut status = STATUS.lock().unwrap_or_else(PoisonError::into_inner);
    if *status == line {
        return;
    }
    *status = line.to_string();
    let _ = std::io::stderr()
        .lock()
        .write_all(format!("{CLEAR}{line}").as_bytes());
}

/// Whether stderr is a regular file (an init script's `--output`, a
/// redirection), rather than a terminal, a pipe (cron) or journald's socket.
fn stderr_is_a_file() -> bool {
    std::fs::metadata("/proc/self/fd/2").is_ok_and(|m| m.is_file())
}
