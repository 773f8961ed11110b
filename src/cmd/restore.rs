//! `tabacco restore`: restore atoms by name onto this host. Prints the plan
//! (which version of which atom, from which host and snapshot, and where it
//! goes), carries it out with the configured concurrency, and summarises
//! what failed; a dry run fails where the restore would.

use crate::backup::copy::Reader;
use crate::base::count::count;
use crate::base::visible::visible;
use crate::cli::RestoreArgs;
use crate::cmd::{self, Exit};
use crate::config::Config;
use crate::metadb::Metadb;
use crate::process::interrupt::Interrupt;
use crate::process::shell::Supervisor;
use crate::restore::{self, Planned, Whose};
use crate::wire::model::{self, RestoreRequest, RestoreState};
use std::thread;
use std::time::Duration;

/// How often `restore --remote --wait` asks how the request goes.
const WAIT_POLL: Duration = Duration::from_secs(1);

pub fn restore(config: &Config, args: &RestoreArgs) -> Result<(), Exit> {
    let metadb = Metadb::open(&config.work_dir, config.metadb.as_ref())
        .map_err(|e| Exit::Error(e.to_string()))?;
    // This host's records, or with --remote those of the host restored on.
    let own = args.remote.as_deref().unwrap_or(&config.hostname);
    let whose = Whose::new(args.host.as_deref(), args.any_host, own);
    let planned = restore::plan(&metadb, &args.patterns, whose, args.older_than.as_deref())
        .map_err(Exit::error)?;
    if planned.is_empty() {
        return Err(Exit::Error(format!(
            "no recorded atom matches {}",
            args.patterns.join(" ")
        )));
    }
    if !args.parts.is_empty() {
        let pipe_atoms: Vec<&str> = planned
            .iter()
            .flat_map(|p| &restore::item_of(p).dataset.atoms)
            .filter(|a| a.path.is_none())
            .map(|a| a.name.as_str())
            .collect();
        if !pipe_atoms.is_empty() {
            return Err(Exit::Error(format!(
                "--path restores part of a file atom; {} {} a stream with no parts: restore {} whole, or look into it with tabacco dump",
                pipe_atoms.join(" "),
                if pipe_atoms.len() == 1 { "is" } else { "are" },
                if pipe_atoms.len() == 1 { "it" } else { "them" },
            )));
        }
    }
    if let Some(name) = &args.rename {
        let atoms: Vec<&model::Atom> = planned
            .iter()
            .flat_map(|p| &restore::item_of(p).dataset.atoms)
            .collect();
        match &atoms[..] {
            [atom] if atom.path.is_none() => {}
            [atom] => {
                return Err(Exit::Error(format!(
                    "--as restores a pipe atom under another name; {} is a file atom: restore it with --target DIR",
                    atom.name
                )))
            }
            _ => {
                let names: Vec<&str> = atoms.iter().map(|a| a.name.as_str()).collect();
                return Err(Exit::Error(format!(
                    "--as {name} restores one atom; {} match: {}",
                    atoms.len(),
                    names.join(" ")
                )));
            }
        }
    }
    let (table, unrestorable) = plan_table(config, args, &planned);
    cmd::print(&table)?;
    let reader = Reader::new(&config.repository, &config.copies)
        .with_further(&config.further)
        .pick(args.repository.as_deref())
        .map_err(|e| Exit::Usage(e.to_string()))?;
    if args.remote.is_none() {
        let sup = Supervisor::new(config.priority, "restore".to_string());
        let items = planned.iter().filter_map(|p| p.as_ref().ok());
        cmd::refuse_unroutable(&metadb, &reader, &sup, items.map(|c| c.item()))?;
    }
    if args.dry_run && unrestorable > 0 {
        return Err(Exit::Error(format!(
            "{} cannot be restored (see RESTORES): the restore would fail",
            count(unrestorable, "atom")
        )));
    }
    if args.dry_run {
        return Ok(());
    }
    if let Some(host) = &args.remote {
        return request(&metadb, host, args, planned);
    }
    let interrupt =
        Interrupt::install().map_err(|e| Exit::Error(format!("cannot catch signals: {e}")))?;
    let options = restore::Options {
        target: &args.target,
        parts: &args.parts,
        overwrite: args.overwrite,
        rename: args.rename.as_deref(),
    };
    let tally = restore::carry_out(config, &reader, &planned, &options, &|sup| {
        interrupt.track(sup)
    });
    if tally.failed > 0 {
        log::error!("{}", tally.summary());
        return Err(Exit::Failed);
    }
    log::info!("{}", tally.summary());
    Ok(())
}

/// Files the plan for `host`'s agent (which checks each record again as
/// it receives it) and, with `--wait`, follows it.
fn request(
    metadb: &Metadb,
    host: &str,
    args: &RestoreArgs,
    planned: Vec<Planned>,
) -> Result<(), Exit> {
    let items = planned.into_iter().map(|p| match p {
        Ok(checked) => checked.into_item(),
        Err(refused) => *refused.item,
    });
    let request = RestoreRequest {
        id: model::new_id(),
        host: host.to_string(),
        target: args.target.to_request(),
        overwrite: args.overwrite,
        items: items.collect(),
        state: RestoreState::Pending,
        message: String::new(),
        created: String::new(),
        updated: String::new(),
    };
    let filed = metadb
        .add_restore_request(&request)
        .map_err(|e| Exit::Error(e.to_string()))?;
    eprintln!(
        "tabacco: restore request {} filed for host {host}",
        filed.id
    );
    if !args.wait {
        return cmd::print(&format!("{}\n", filed.id));
    }
    let mut last = (filed.state, filed.message);
    loop {
        thread::sleep(WAIT_POLL);
        let now = match metadb.restore_request(&request.id) {
            Ok(Some(r)) => (r.state, r.message),
            Ok(None) => {
                return Err(Exit::Error(format!(
                    "restore request {} disappeared",
                    request.id
                )))
            }
            Err(e) => {
                log::warn!(
                    "cannot follow restore request {}: {e}; retrying",
                    request.id
                );
                continue;
            }
        };
        if now != last {
            // The message is the agent's of `host`: one line, as written.
            eprintln!(
                "tabacco: restore request {} on {host}: {} {}",
                request.id,
                now.0,
                visible(&now.1)
            );
        }
        match now.0 {
            RestoreState::Succeeded => return Ok(()),
            RestoreState::Failed => return Err(Exit::Failed),
            RestoreState::Pending | RestoreState::Running => last = now,
        }
    }
}

/// The plan: each atom's version, and what restoring it does; and how many
/// atoms cannot be restored.
fn plan_table(config: &Config, args: &RestoreArgs, planned: &[Planned]) -> (String, usize) {
    let mut rows =
        vec![["ATOM", "HOST", "BACKUP", "TIME", "SNAPSHOT", "RESTORES"].map(String::from)];
    let mut unrestorable = 0;
    for planned in planned {
        let item = restore::item_of(planned);
        let remote = args.remote.as_deref();
        let rename = args.rename.as_deref();
        let said = restore::describe(config, remote, planned, &args.target, rename);
        for (atom, said) in item.dataset.atoms.iter().zip(said) {
            let said = match said {
                restore::Said::Does(said) => said,
                restore::Said::Cannot(why) => {
                    unrestorable += 1;
                    why
                }
            };
            rows.push([
                atom.name.clone(),
                item.backup.host.clone(),
                item.backup.id.clone(),
                item.backup.timestamp.clone(),
                item.dataset.snapshot_id.clone(),
                match &args.parts[..] {
                    [] => said,
                    parts => format!("{said}, only {}", parts.join(" ")),
                },
            ]);
        }
    }
    (cmd::table(&rows), unrestorable)
}
