//! `tabacco prune`: apply retention now (see `prune`); with `--dry-run`,
//! print what would be forgotten. A host with `maintenance: false` is
//! refused (exit 2); while another host holds the repository's lease it
//! says so and exits 0, its attempt recorded as skipped.

use crate::backup::attempt;
use crate::base::visible::visible;
use crate::cmd::{self, Exit};
use crate::config::repositories::Maintenance;
use crate::config::Config;
use crate::maintenance::lease::{self, Held};
use crate::maintenance::prune;
use crate::metadb::Metadb;
use crate::process::interrupt::Interrupt;
use crate::process::shell::Supervisor;

pub fn prune(config: &Config, names: &[String], dry_run: bool) -> Result<(), Exit> {
    if config.maintenance == Maintenance::Never {
        return Err(Exit::Usage(format!("prune refused: {}", prune::NEVER)));
    }
    config
        .select(names)
        .map_err(|e| Exit::Usage(e.to_string()))?;
    let metadb = Metadb::open(&config.work_dir, config.metadb.as_ref())
        .map_err(|e| Exit::Error(e.to_string()))?;
    let sup = Supervisor::new(config.priority, "prune");
    let _interrupt =
        Interrupt::watching(&sup).map_err(|e| Exit::Error(format!("cannot catch signals: {e}")))?;
    let start = chrono::Utc::now();
    let result = prune::prune(config, &metadb, &sup, names, dry_run);
    if !dry_run {
        let host = &config.hostname;
        let attempt = match &result {
            Ok(Held::Busy { holder, expires }) => {
                attempt::skipped(host, "prune", names, start, &lease::busy(holder, expires))
            }
            Ok(Held::Ran(_)) => attempt::of_task(host, "prune", names, start, Ok(())),
            Err(e) => attempt::of_task(host, "prune", names, start, Err(e)),
        };
        attempt::record(&metadb, &attempt);
    }
    let forgotten = match result.map_err(Exit::error)? {
        Held::Ran(forgotten) => forgotten,
        Held::Busy { holder, expires } => {
            let busy = lease::busy(&holder, &expires);
            return cmd::print(&format!("skipped: {}\n", visible(&busy)));
        }
    };
    if !dry_run {
        return Ok(());
    }
    if forgotten.is_empty() {
        return cmd::print("would forget nothing\n");
    }
    let mut out = String::from("would forget:\n");
    let mut repository = crate::wire::api::PRIMARY;
    for f in &forgotten {
        if f.repository != repository {
            repository = &f.repository;
            out.push_str(&format!("would forget in copy {repository}:\n"));
        }
        // What the repository's snapshots say, any host's.
        let line = format!(
            "{}  {}  {}  {}",
            f.short_id,
            f.host,
            f.time,
            f.atoms.join(" ")
        );
        out.push_str(&visible(&line));
        out.push('\n');
    }
    cmd::print(&out)
}
