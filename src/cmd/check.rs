//! `tabacco check`: validate the configuration, run every `atoms_command`
//! and `datasets_command`, and print each source as a backup would see it.
//! Exit 2 on any error, so it can gate a configuration deployment.

use crate::backup::job;
use crate::base::uri;
use crate::cmd::{self, Exit};
use crate::config::repositories::Maintenance;
use crate::config::source::Source;
use crate::config::Config;
use crate::handler::{self, Context};
use crate::process::shell::Supervisor;
use crate::restic::Repo;
use std::fmt::Write;
use std::path::Path;

pub fn check(path: &Path) -> Result<(), Exit> {
    let config = cmd::load(path)?;
    let mut out = String::new();
    let metadb = match &config.metadb {
        Some(remote) => uri::mask(&remote.url),
        None => format!("embedded ({})", config.embedded_db_path().display()),
    };
    let _ = writeln!(out, "host        {}", config.hostname);
    let _ = writeln!(out, "repository  {}", uri::mask(&config.repository.uri));
    for copy in &config.copies {
        let _ = write!(
            out,
            "copy        {} {}",
            copy.name,
            uri::mask(&copy.repository.uri)
        );
        match &copy.retention {
            Some(r) => writeln!(out, ", retention {r}"),
            None => writeln!(out),
        }
        .ok();
    }
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
    if config.maintenance != Maintenance::Own {
        let _ = writeln!(out, "maintenance {}", config.maintenance.describe());
    }
    for target in &config.notify {
        let _ = writeln!(out, "notify      {target}");
    }
    if let Err(refused) = config.check_password_files() {
        errors.extend(refused.0.iter().map(ToString::to_string));
    }
    if config.sources.is_empty() {
        let dir = path.parent().unwrap_or(Path::new(".")).join("sources");
        let _ = writeln!(
            out,
            "\nno sources: nothing to back up (describe some in {}/*.yml, see tabacco.yml(5))",
            dir.display()
        );
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
    let handler = if handler::BUILTIN.contains(&source.handler_name.as_str()) {
        source.handler.describe()
    } else {
        format!("{} ({})", source.handler_name, source.handler.describe())
    };
    let _ = writeln!(out, "  handler   {handler}");
    let _ = writeln!(out, "  schedule  {}", source.schedule);
    if let Some(t) = source.timeout {
        let _ = writeln!(out, "  timeout   {}", crate::base::time::format_duration(t));
    }
    if let Some(r) = &source.retention {
        let _ = writeln!(out, "  retention {r}");
    }
    if !source.copies.is_empty() {
        let _ = writeln!(out, "  copies    {}", source.copies.join(" "));
    }
    if let Some(min) = source.min_bytes {
        let _ = writeln!(out, "  min_bytes {min}");
    }
    match &source.notify {
        Some(targets) if targets.is_empty() => {
            let _ = writeln!(out, "  notify    nothing (notify: [] replaces agent.yml's)");
        }
        Some(targets) => {
            for target in targets {
                let _ = writeln!(out, "  notify    {target}");
            }
        }
        None => {}
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
        match source.handler.plan(&source.name, &atoms, &ctx) {
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
