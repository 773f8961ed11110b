//! tabacco: backups of multi-tenant services, by name, on restic.
//!
//! `main` only parses the command line, dispatches, and turns the outcome
//! into an exit status: 0 ok, 1 a job failed, 2 usage or configuration.
//!
//! The folders are the layers, lowest first: `base`, `http`, `wire`,
//! `process`, `restic`, `report`, `metadb`, `handler`, `config`, `init`, the
//! operations (`backup`, `restore`, `maintenance`), `cli`, `agent` and
//! `cmd`. Which layer may import which is the table in `layers.rs`, which
//! a test holds the code to.

mod agent;
mod backup;
mod base;
mod cli;
mod cmd;
mod config;
mod handler;
mod http;
mod init;
#[cfg(test)]
mod layers;
mod maintenance;
mod metadb;
mod process;
mod report;
mod restic;
mod restore;
mod wire;

use base::visible::visible;
use cmd::Exit;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args_os().skip(1)) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("tabacco: {e}");
            return ExitCode::from(2);
        }
    };
    base::logger::init(cli.verbosity);
    match cmd::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Exit::Failed) => ExitCode::from(1),
        Err(Exit::Status(code)) => ExitCode::from(code),
        // One line: it may quote a host's answer or a command's stderr.
        Err(Exit::Error(message)) => {
            base::logger::write(&visible(&message));
            ExitCode::from(1)
        }
        // What was typed, or the configuration's errors, one a line, as
        // their messages quote values (`check` makes what its commands
        // printed visible itself).
        Err(Exit::Usage(message)) => {
            base::logger::write(&message);
            ExitCode::from(2)
        }
    }
}
