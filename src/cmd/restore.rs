//! `tabacco restore`: restore atoms by name onto this host. Prints the plan
//! (which version of which atom, from which host and snapshot), carries it
//! out with the configured concurrency, and summarises what failed.

use crate::cli::Restore;

/// How often `restore --remote --wait` asks how the request goes.
const WAIT_POLL: Duration = Duration::from_secs(1);
use crate::cmd::{self, Exit};
use crate::config::Config;
use crate::interrupt::Interrupt;
use crate::metadb::Metadb;
use crate::model::{self, RestoreRequest};
use crate::restic::Repo;
use crate::restore::{self, Item};
use crate::shell::Supervisor;
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::Duration;

pub fn restore(config: &Config, args: &Restore) -> Result<(), Exit> {
    let metadb = Metadb::open(config).map_err(|e| Exit::Error(e.to_string()))?;
    let items = restore::plan(
        &metadb,
        &args.patterns,
        args.host.as_deref(),
        args.older_than.as_deref(),
    )
    .map_err(Exit::Error)?;
    if items.is_empty() {
        return Err(Exit::Error(format!(
            "no recorded atom matches {}",
            args.patterns.join(" ")
        )));
    }
    cmd::print(&plan_table(&items))?;
    if args.dry_run {
        return Ok(());
    }
    if let Some(host) = &args.remote {
        return request(&metadb, host, args, items);
    }
    let repo = Repo::new(config.repository.clone());
    let interrupt =
        Interrupt::install().map_err(|e| Exit::Error(format!("cannot catch signals: {e}")))?;
    let queue = Mutex::new(items.iter());
    let failures = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..config.concurrency {
            scope.spawn(|| loop {
                let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
                let Some(item) = next else { break };
                let label = format!("{} {}", item.dataset.source, item.backup.id);
                let sup = Supervisor::new(config.priority, label);
                let result = match interrupt.track(&sup) {
                    Some(reason) => Err(reason),
                    None => restore::restore(item, config, &repo, &args.target, &sup),
                };
                if let Err(e) = result {
                    failures
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((item, e));
                }
            });
        }
    });
    let failures = failures
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    let total: usize = items.iter().map(|i| i.dataset.atoms.len()).sum();
    let failed: usize = failures.iter().map(|(i, _)| i.dataset.atoms.len()).sum();
    for (item, error) in &failures {
        let names: Vec<&str> = item.dataset.atoms.iter().map(|a| a.name.as_str()).collect();
        log::error!(
            "restore of {} (backup {}) failed: {error}",
            names.join(" "),
            item.backup.id
        );
    }
    if failed > 0 {
        log::error!(
            "restored {} of {total} atoms; {failed} failed",
            total - failed
        );
        return Err(Exit::Failed);
    }
    log::info!("restored {total} atoms");
    Ok(())
}

/// Files the plan for `host`'s agent and, with `--wait`, follows it.
fn request(metadb: &Metadb, host: &str, args: &Restore, items: Vec<Item>) -> Result<(), Exit> {
    let request = RestoreRequest {
        id: model::new_id(),
        host: host.to_string(),
        target: args.target.to_request(),
        items,
        state: String::new(),
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
            eprintln!(
                "tabacco: restore request {} on {host}: {} {}",
                request.id, now.0, now.1
            );
        }
        match now.0.as_str() {
            "succeeded" => return Ok(()),
            "failed" => return Err(Exit::Failed),
            _ => last = now,
        }
    }
}

fn plan_table(items: &[Item]) -> String {
    let mut rows = vec![["ATOM", "HOST", "BACKUP", "TIME", "SNAPSHOT"].map(String::from)];
    for item in items {
        for atom in &item.dataset.atoms {
            rows.push([
                atom.name.clone(),
                item.backup.host.clone(),
                item.backup.id.clone(),
                item.backup.timestamp.clone(),
                item.dataset.snapshot_id.clone(),
            ]);
        }
    }
    cmd::table(&rows)
}
