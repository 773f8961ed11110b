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
use crate::restic::{Password, Repo};
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
    let copies = config.copies.iter();
    let repositories = copies.map(|c| (format!("copy {}: params", c.name), &c.repository));
    for (what, repository) in
        std::iter::once(("repository.params".to_string(), &config.repository)).chain(repositories)
    {
        if let Password::File(file) = &repository.password {
            errors.extend(check_password_file(&what, file));
        }
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

/// Why restic could not use `file` as its password file, if it could not.
fn check_password_file(what: &str, file: &Path) -> Option<String> {
    match std::fs::read(file) {
        Err(e) => Some(format!("{what}.password_file {}: {e}", file.display())),
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => {
            Some(format!("{what}.password_file {} is empty", file.display()))
        }
        Ok(_) => None,
    }
}

fn describe(source: &Source, config: &Config, out: &mut String, errors: &mut Vec<String>) {
    let _ = writeln!(out, "\nsource {}", source.name);
    let described = source.handler.describe();
    let handler = if handler::BUILTIN.contains(&source.handler_name.as_str())
        || source.handler_name == described
    {
        described
    } else {
        format!("{} ({described})", source.handler_name)
    };
    let _ = writeln!(out, "  handler   {handler}");
    for (what, command) in source.handler.commands() {
        let _ = writeln!(out, "  {what:<9} {command}");
    }
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
