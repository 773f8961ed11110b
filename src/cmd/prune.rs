//! `tabacco prune`: apply retention now (see `prune`); with `--dry-run`,
//! print what would be forgotten.

use crate::attempt;
use crate::cmd::{self, Exit};
use crate::config::Config;
use crate::interrupt::Interrupt;
use crate::metadb::Metadb;
use crate::prune;
use crate::shell::Supervisor;

pub fn prune(config: &Config, names: &[String], dry_run: bool) -> Result<(), Exit> {
    config.select(names).map_err(Exit::Usage)?;
    let metadb = Metadb::open(&config.work_dir, config.metadb.as_ref())
        .map_err(|e| Exit::Error(e.to_string()))?;
    let sup = Supervisor::new(config.priority, "prune");
    let _interrupt =
        Interrupt::watching(&sup).map_err(|e| Exit::Error(format!("cannot catch signals: {e}")))?;
    let start = chrono::Utc::now();
    let result = prune::prune(config, &metadb, &sup, names, dry_run);
    if !dry_run {
        let outcome = result.as_ref().map(drop).map_err(String::as_str);
        let attempt = attempt::of_task(&config.hostname, "prune", names, start, outcome);
        attempt::record(&metadb, &attempt);
    }
    let forgotten = result.map_err(Exit::Error)?;
    if !dry_run {
        return Ok(());
    }
    if forgotten.is_empty() {
        return cmd::print("would forget nothing\n");
    }
    let mut out = String::from("would forget:\n");
    let mut repository = crate::copy::PRIMARY;
    for f in &forgotten {
        if f.repository != repository {
            repository = &f.repository;
            out.push_str(&format!("would forget in copy {repository}:\n"));
        }
        out.push_str(&format!(
            "{}  {}  {}\n",
            f.short_id,
            f.time,
            f.atoms.join(" ")
        ));
    }
    cmd::print(&out)
}
