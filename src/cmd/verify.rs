//! `tabacco verify`: `restic check` and a restore drill (see `verify`); a
//! failed drill is told to its source's notification targets.

use crate::backup::attempt;
use crate::cmd::Exit;
use crate::config::Config;
use crate::maintenance::verify;
use crate::metadb::Metadb;
use crate::process::interrupt::Interrupt;
use crate::process::shell::Supervisor;
use crate::report::notify::Notifier;
use std::time::Duration;

/// How long a failed drill's notifications may take to be sent.
const NOTIFY_BOUND: Duration = Duration::from_secs(15);

pub fn verify(
    config: &Config,
    names: &[String],
    read_data_subset: Option<&str>,
    repository: Option<&str>,
) -> Result<(), Exit> {
    config
        .select(names)
        .map_err(|e| Exit::Usage(e.to_string()))?;
    let metadb = Metadb::open(&config.work_dir, config.metadb.as_ref())
        .map_err(|e| Exit::Error(e.to_string()))?;
    let sup = Supervisor::new(config.priority, "verify");
    let _interrupt =
        Interrupt::watching(&sup).map_err(|e| Exit::Error(format!("cannot catch signals: {e}")))?;
    let start = chrono::Utc::now();
    let result = verify::verify(config, &metadb, &sup, names, read_data_subset, repository);
    let outcome = match &result {
        Ok(_) => Ok(()),
        Err(e) => Err(e as &dyn std::fmt::Display),
    };
    let attempt = attempt::of_task(&config.hostname, "verify", names, start, outcome);
    attempt::record(&metadb, &attempt);
    if let Err(e) = &result {
        let notifier = Notifier::spawn(Default::default()).map_err(Exit::Error)?;
        verify::tell_failure(config, &notifier, e, start);
        notifier.finish(NOTIFY_BOUND);
    }
    let verified = result.map_err(Exit::error)?;
    log::info!("{}", verified.summary);
    Ok(())
}
