//! `tabacco prune`: apply retention now (see `prune`); with `--dry-run`,
//! print what would be forgotten.

use crate::cmd::{self, Exit};
use crate::config::Config;
use crate::interrupt::Interrupt;
use crate::metadb::Metadb;
use crate::prune;
use crate::shell::Supervisor;

pub fn prune(config: &Config, names: &[String], dry_run: bool) -> Result<(), Exit> {
    config.select(names).map_err(Exit::Usage)?;
    let metadb = Metadb::open(config).map_err(|e| Exit::Error(e.to_string()))?;
    let sup = Supervisor::new(config.priority, "prune");
    let _interrupt =
        Interrupt::watching(&sup).map_err(|e| Exit::Error(format!("cannot catch signals: {e}")))?;
    let forgotten = prune::prune(config, &metadb, &sup, names, dry_run).map_err(Exit::Error)?;
    if !dry_run {
        return Ok(());
    }
    if forgotten.is_empty() {
        return cmd::print("would forget nothing\n");
    }
    let mut out = String::from("would forget:\n");
    for f in &forgotten {
        out.push_str(&format!(
            "{}  {}  {}\n",
            f.short_id,
            f.time,
            f.atoms.join(" ")
        ));
    }
    cmd::print(&out)
}
