//! `tabacco check`: validate the configuration, open the repository, each
//! copy and each of `repositories:` (unless `--offline`), run every `atoms_command` and
//! `datasets_command`, and print each source as a backup would see it.
//! Exit 2 on any error, so it can gate a configuration deployment.

use crate::backup::job;
use crate::base::uri;
use crate::base::visible::visible;
use crate::cmd::{self, Exit};
use crate::config::repositories::{Init, Maintenance};
use crate::config::source::Source;
use crate::config::Config;
use crate::handler::{self, Context};
use crate::process::shell::Supervisor;
use crate::restic::{self, Repo, Repository};
use std::fmt::Write;
use std::path::Path;

pub fn check(path: &Path, offline: bool) -> Result<(), Exit> {
    let config = cmd::load(path)?;
    let mut out = String::new();
    let metadb = match &config.metadb {
        Some(remote) => uri::mask(&remote.url),
        None => format!("embedded ({})", config.embedded_db_path().display()),
    };
    let mut errors = Vec::new();
    let binary = config.repository.binary.display();
    let version = Repo::new(config.repository.clone()).version();
    // A password file restic cannot use is said with its line, below;
    // repositories are opened only with a restic that runs and passwords.
    let passwords = config.check_password_files();
    let opening = (!offline && version.is_ok() && passwords.is_ok()).then(|| Opening {
        config: &config,
        sup: Supervisor::new(config.priority, "check"),
    });
    let _ = writeln!(out, "host        {}", config.hostname);
    let _ = writeln!(out, "repository  {}", uri::mask(&config.repository.uri));
    if let Some(opening) = &opening {
        opening.open("repository", &config.repository, &mut out, &mut errors);
    }
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
        if let Some(opening) = &opening {
            let what = format!("copy {}", copy.name);
            opening.open(&what, &copy.repository, &mut out, &mut errors);
        }
    }
    for further in &config.further {
        let (name, uri) = (&further.name, uri::mask(&further.repository.uri));
        let _ = writeln!(out, "reads       {name} {uri} (read-only)");
        if let Some(opening) = &opening {
            let what = format!("repository {name}");
            opening.open(&what, &further.repository, &mut out, &mut errors);
        }
    }
    match version {
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
    if let Err(refused) = passwords {
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

/// Opening the repositories, each within `repository_timeout`.
struct Opening<'a> {
    config: &'a Config,
    sup: Supervisor,
}

impl Opening<'_> {
    /// Opens `repository` (`what` in errors) with this host's key and says
    /// what it found, under the line that names it; a repository that
    /// cannot be opened is an error, one `init: auto` will create is not.
    fn open(
        &self,
        what: &str,
        repository: &Repository,
        out: &mut String,
        errors: &mut Vec<String>,
    ) {
        let repo = Repo::new(repository.clone());
        match repo.prove(&self.sup) {
            Ok(found) => {
                let _ = writeln!(
                    out,
                    "            restic id {}, repository version {}, opens with this host's key",
                    found.short_id(),
                    found.version
                );
            }
            // A repository of `repositories:` is another host's: never
            // created here.
            Err(restic::Error::Missing(_))
                if self.config.init == Init::Auto
                    && !repo.used_before()
                    && !self
                        .config
                        .further
                        .iter()
                        .any(|f| f.repository.uri == repository.uri) =>
            {
                let _ = writeln!(
                    out,
                    "            not created yet: the first backup creates it (init: auto)"
                );
            }
            Err(e) => {
                let e = repo.diagnose(&self.sup, e);
                errors.push(match what {
                    "repository" => e.to_string(),
                    _ => format!("{what}: {e}"),
                });
            }
        }
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
    // Errors quote what the commands printed: made visible here, where
    // they are reported.
    let located = |e: &dyn std::fmt::Display| {
        let e = visible(&e.to_string());
        format!("{}: source {}: {e}", source.origin, source.name)
    };
    errors.extend(resolve_errors.iter().map(|e| located(e)));
    let ctx = Context {
        backup_id: "BACKUP_ID",
        host: &config.hostname,
    };
    for atoms in groups {
        match source.handler.plan(&source.name, &atoms, &ctx) {
            Ok(plans) => {
                // Names and paths as `atoms_command` printed them.
                for plan in plans {
                    let _ = writeln!(out, "  dataset   {}", visible(&plan.name));
                    for atom in plan.atoms {
                        let path = visible(&atom.path.unwrap_or_default());
                        let line = format!("    atom    {}  {path}", visible(&atom.name));
                        let _ = writeln!(out, "{}", line.trim_end());
                    }
                }
            }
            Err(e) => errors.push(located(&e)),
        }
    }
}
