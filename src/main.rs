//! tabacco: backups of multi-tenant services, by name, on restic.
//!
//! `main` only parses the command line, dispatches, and turns the outcome
//! into an exit status: 0 ok, 1 a job failed, 2 usage or configuration.
//!
//! Modules import downwards only, never in a cycle:
//! - leaves: `time`, `name`, `uri`, `count`, `yaml` (located config files),
//!   `token`, `seed`, `atom` (configured atoms and their names), `model`,
//!   `shell`, `schedule`, `retention`, `signal` (one signal forwarder),
//!   `periodic` (one stoppable periodic thread), `queue` (one bounded
//!   worker loop), `http` (the transport of every server), `slots`,
//!   `addr`, `html`, `logger`, `width` (terminal columns of a text);
//! - `restic` (owns `Repository`, `Password`), then `failure`, `outcome`;
//!   `hook`, then `handler` (owns `Params`); `notify`; `metadb` (owns its
//!   client's `Connection`); `lease` (owns `Maintenance`); `copy` (owns
//!   `Copy`: copying into copies and reading back from them);
//! - `source` (holds a handler, retention, notify targets), then `config`,
//!   which builds every validated type above from the files;
//! - `job`, `restore`, `proof`, `verify`, `prune`, `plan`, `attempt`; then `agent`
//!   and `cmd`, which wire everything.

mod addr;
mod agent;
mod atom;
mod attempt;
mod cli;
mod cmd;
mod config;
mod copy;
mod count;
mod failure;
mod handler;
mod hook;
mod html;
mod http;
mod interrupt;
mod job;
mod lease;
mod logger;
mod metadb;
mod model;
mod name;
mod notify;
mod outcome;
mod periodic;
mod plan;
mod proof;
mod prune;
mod queue;
mod restic;
mod restore;
mod retention;
mod schedule;
mod seed;
mod shell;
mod signal;
mod slots;
mod source;
mod time;
mod token;
mod uri;
mod verify;
mod width;
mod yaml;

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
