//! tabacco: backups of multi-tenant services, by name, on restic.
//!
//! `main` only parses the command line, dispatches, and turns the outcome
//! into an exit status: 0 ok, 1 a job failed, 2 usage or configuration.

mod addr;
mod agent;
mod attempt;
mod cli;
mod cmd;
mod config;
mod count;
mod failure;
mod handler;
mod hook;
mod html;
mod interrupt;
mod job;
mod logger;
mod metadb;
mod model;
mod name;
mod notify;
mod plan;
mod prune;
mod queue;
mod restic;
mod restore;
mod schedule;
mod shell;
mod slots;
mod source;
mod time;
mod uri;
mod verify;

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
    logger::init(cli.verbosity);
    match cmd::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Exit::Failed) => ExitCode::from(1),
        Err(Exit::Error(message)) => {
            eprintln!("tabacco: {message}");
            ExitCode::from(1)
        }
        Err(Exit::Usage(message)) => {
            eprintln!("tabacco: {message}");
            ExitCode::from(2)
        }
    }
}
