//! `tabacco init`: create the host's repository, then each copy (with the
//! repository's chunker parameters), where they do not exist yet, and say
//! what was created and what was there; each is then opened with this
//! host's key. How one host at a time creates a repository is the `init`
//! module's. Exit 1 if any could not be created or opened.

use crate::base::uri;
use crate::cmd::{self, Exit};
use crate::config::Config;
use crate::init::{self, Creator, Made};
use crate::metadb::Metadb;
use crate::process::shell::Supervisor;
use crate::restic::{Repo, Repository};
use std::fmt::Write;

pub fn init(config: &Config) -> Result<(), Exit> {
    let metadb = Metadb::open(&config.work_dir, config.metadb.as_ref())
        .map_err(|e| Exit::Error(e.to_string()))?;
    let creator = Creator {
        config,
        metadb: &metadb,
    };
    let sup = Supervisor::new(config.priority, "init");
    let mut out = String::new();
    let mut errors = Vec::new();
    let primary = Repo::new(config.repository.clone());
    let shown = uri::mask(&config.repository.uri);
    let made = ensure(&creator, &sup, &primary, None);
    match &made {
        Ok(said) => {
            let _ = writeln!(out, "repository  {shown}: {said}");
        }
        Err(e) => errors.push(e.to_string()),
    }
    for copy in &config.copies {
        let shown = uri::mask(&copy.repository.uri);
        if made.is_err() {
            errors.push(format!(
                "copy {}: not created: it takes the repository's chunker parameters",
                copy.name
            ));
            continue;
        }
        let repo = Repo::new(copy.repository.clone());
        match ensure(&creator, &sup, &repo, Some(&config.repository)) {
            Ok(said) => {
                let _ = writeln!(out, "copy        {} {shown}: {said}", copy.name);
            }
            Err(e) => errors.push(format!("copy {}: {e}", copy.name)),
        }
    }
    cmd::print(&out)?;
    match errors.is_empty() {
        true => Ok(()),
        false => Err(Exit::Error(errors.join("\n"))),
    }
}

/// Creates `repo` (a copy of `from`) unless it exists, proves that this
/// host's key opens it, and says which.
fn ensure(
    creator: &Creator,
    sup: &Supervisor,
    repo: &Repo,
    from: Option<&Repository>,
) -> Result<String, init::Error> {
    let used_before = repo.used_before();
    let made = creator.ensure(sup, repo, from)?;
    let found = repo.prove(sup).map_err(|e| repo.diagnose(sup, e))?;
    let what = format!(
        "restic id {}, repository version {}",
        found.short_id(),
        found.version
    );
    Ok(match (made, used_before) {
        (Made::Created, false) => format!("created ({what})"),
        (Made::Created, true) => {
            format!("created ({what}); this host used another repository there before")
        }
        (Made::Existed, _) => format!("exists, opens with this host's key ({what})"),
    })
}
