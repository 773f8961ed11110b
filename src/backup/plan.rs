//! What a host tells the metadb it runs: each source with its schedule,
//! next due time and retention policy, so that the metadb can tell a
//! source that stopped being backed up, and a maintainer can prune it. The
//! agent publishes its whole plan (from its scheduler's state); `tabacco
//! run` publishes the whole plan of its configuration, so that a
//! cron-driven host's removed sources stop being watched too.

use crate::base::seed;
use crate::base::time;
use crate::base::uri;
use crate::config::source::Source;
use crate::config::Config;
use crate::metadb::Metadb;
use crate::process::shell::Supervisor;
use crate::restic::known;
use crate::restic::{Repo, Repository};
use crate::wire::api::{Plan, PlannedRepository, PlannedSource, Policy, PRIMARY};
use chrono::{Local, Utc};
use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

/// The host's plan as `tabacco run` knows it: every configured source with
/// the schedule its configuration gives it and when that is next due,
/// replacing the host's plan (whichever sources this run backs up).
pub fn of_config(config: &Config) -> Plan {
    let seed = seed::load_or_create(&config.random_seed_file)
        .map_err(|e| log::debug!("next due times unknown: {e}"))
        .ok();
    let now = Local::now();
    let sources = config
        .sources
        .iter()
        .map(|source: &Source| {
            let next = seed.as_ref().and_then(|seed| {
                let offset = seed::offset(seed, &source.name);
                source.schedule.next_after(&now, offset)
            });
            PlannedSource {
                source: source.name.clone(),
                schedule: source.schedule.to_string(),
                next_due: next.map(|t| time::format(t.with_timezone(&Utc))),
                overdue_grace: source.overdue_grace.map(|g| g.as_secs()),
                retention: config.retention_of(source).map(Policy::of),
            }
        })
        .collect();
    Plan {
        host: config.hostname.clone(),
        replace: true,
        sources,
        repositories: Some(known(config)),
    }
}

/// The repositories this host backs up to (its primary and copies) whose
/// restic id it learnt, by the name it gives them.
pub fn known(config: &Config) -> Vec<PlannedRepository> {
    let copies = config
        .copies
        .iter()
        .map(|c| (c.name.as_str(), &c.repository));
    std::iter::once((PRIMARY, &config.repository))
        .chain(copies)
        .filter_map(|(name, repository)| {
            let location = uri::location(&repository.uri);
            let id = known::find(&repository.known_ids, &location)?.id?;
            Some(planned(name, &id, repository))
        })
        .collect()
}

/// `repository`, of restic id `id`, as this host names it in its plan.
pub fn planned(name: &str, id: &str, repository: &Repository) -> PlannedRepository {
    PlannedRepository {
        name: name.to_string(),
        id: id.to_string(),
        location: uri::mask(&repository.uri),
    }
}

/// The restic id of `repo`, this host's primary, for a record of what was
/// backed up to it: with a metadb server, learnt with a `restic cat
/// config` if this host never did, and then published with this host's
/// other repositories, once a process; with the embedded metadb (one host)
/// only if known without restic. None if unknown (the record is then taken
/// to be in the primary the host publishes).
pub fn recorded_in(
    config: &Config,
    repo: &Repo,
    metadb: &Metadb,
    sup: &Supervisor,
) -> Option<String> {
    static PUBLISHED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    if !metadb.is_shared() {
        return repo.known_id();
    }
    let id = repo
        .id(sup)
        .map_err(|e| log::warn!("the record does not name its repository: {e}"))
        .ok()?;
    let mut published = PUBLISHED.lock().unwrap_or_else(PoisonError::into_inner);
    if !published.contains(&id) && publish_repositories(metadb, &config.hostname, known(config)) {
        published.insert(id.clone());
    }
    Some(id)
}

/// Tells the metadb that `host` uses `repositories`, adding to its plan;
/// returns whether it took them (a failure is logged).
pub fn publish_repositories(
    metadb: &Metadb,
    host: &str,
    repositories: Vec<PlannedRepository>,
) -> bool {
    let plan = Plan {
        host: host.to_string(),
        replace: false,
        sources: Vec::new(),
        repositories: Some(repositories),
    };
    publish(metadb, &plan)
}

/// Publishes `plan`; returns whether the metadb took it. A failure is
/// logged (the plan is published again later), never the caller's.
pub fn publish(metadb: &Metadb, plan: &Plan) -> bool {
    match metadb.publish_plan(plan) {
        Ok(()) => true,
        Err(e) => {
            log::info!("plan of host {} not published: {e}", plan.host);
            false
        }
    }
}
