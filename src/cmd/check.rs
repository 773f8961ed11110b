//! `tabacco check`: validate the configuration, run every `atoms_command`
//! and `datasets_command`, and print each source as a backup would see it.
//! Exit 2 on any error, so it can gate a configuration deployment.

use crate::cmd::{self, Exit};
use crate::config::Config;
use crate::handler::Context;
use crate::job;
use crate::restic::Repo;
use crate::shell::Supervisor;
use crate::source::Source;
use std::fmt::Write;
use std::path::Path;

pub fn check(path: &Path) -> Result<(), Exit> {
    let config =
        Config::load(path).map_err(|e| Exit::Usage(format!("invalid configuration:\n{e}")))?;
    let mut out = String::new();
    let metadb = match &config.metadb {
        Some(remote) => remote.url.clone(),
        None => format!("embedded ({})", config.embedded_db_path().display()),
    };
    let _ = writeln!(out, "host        {}", config.hostname);
    let _ = writeln!(out, "repository  {}", config.repository.uri);
    let mut errors = Vec::new();
    let binary = config.repository.binary.display();
    match Repo::new(config.repository.clone()).version() {
        Ok(version) => {
            let _ = writeln!(out, "restic      {version} ({binary})");
        }
        Err(e) => errors.push(e.to_string()),
    }
    let _ = writeln!(out, "metadb      {metadb}");
    if let Some(r) = &config.retention {
        let _ = writeln!(out, "retention   {r}");
    }
    for (key, schedule) in [
        ("prune", &config.prune_schedule),
        ("verify", &config.verify_schedule),
    ] {
        if let Some(s) = schedule {
            let _ = writeln!(out, "{key:<11} {s}");
        }
    }
    for source in &config.sources {
        describe(source, &config, &mut out, &mut errors);
    }
    cmd::print(&out)?;
    if errors.is_empty() {
        return Ok(());
    }
    Err(Exit::Usage(errors.join("\n")))
}

fn describe(source: &Source, config: &Config, out: &mut String, errors: &mut Vec<String>) {
    let _ = writeln!(out, "\nsource {}", source.name);
    let handler = if ["file", "pipe"].contains(&source.handler_name.as_str()) {
        source.handler.describe()
    } else {
        format!("{} ({})", source.handler_name, source.handler.describe())
    };
    let _ = writeln!(out, "  handler   {handler}");
    let _ = writeln!(out, "  schedule  {}", source.schedule);
    if let Some(t) = source.timeout {
        let _ = writeln!(out, "  timeout   {}s", t.as_secs());
    }
    if let Some(r) = &source.retention {
        let _ = writeln!(out, "  retention {r}");
    }
    if let Some(min) = source.min_bytes {
        let _ = writeln!(out, "  min_bytes {min}");
    }
    let sup = Supervisor::new(config.priority, format!("{} check", source.name));
    let (groups, resolve_errors) = job::resolve_atoms(source, &sup);
    let located =
        |e: &dyn std::fmt::Display| format!("{}: source {}: {e}", source.origin, source.name);
    errors.extend(resolve_errors.iter().map(|e| located(e)));
    let ctx = Context {
        backup_id: "BACKUP_ID",
        host: &config.hostname,
    };
    for atoms in groups {
        match source.handler.plan(source, &atoms, &ctx) {
            Ok(plans) => {
                for plan in plans {
                    let _ = writeln!(out, "  dataset   {}", plan.name);
                    for atom in plan.atoms {
                        let path = atom.path.unwrap_or_default();
                        let line = format!("    atom    {}  {path}", atom.name);
                        let _ = writeln!(out, "{}", line.trim_end());
                    }
                }
            }
            Err(e) => errors.push(located(&e)),
        }
    }
}
