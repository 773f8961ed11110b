//! What a backup of one source achieved: the datasets it recorded and
//! every failure. `job` makes one; `run` and the agent report it, `attempt`
//! records it and `notify` tells of it.

use crate::base::count::count;
use crate::report::failure::{self, Failure};
use crate::wire::model::Dataset;
use std::time::Duration;

/// What a backup of one source achieved.
#[derive(Debug)]
pub struct Outcome {
    pub source: String,
    pub backup_id: String,
    /// Datasets in the repository and recorded (or spooled).
    pub recorded: Vec<Dataset>,
    /// Every failure; empty when everything succeeded.
    pub errors: Vec<Failure>,
    /// Copies that failed (see `copy`): not the source's failures, since
    /// its datasets are in the repository and recorded, but the run's.
    pub copies: Vec<Failure>,
}

impl Outcome {
    /// Logs how the backup ended: each failure at error level (see
    /// [`failure::log`]) and each failed copy, or, when a real run
    /// succeeded, what it recorded, in how long when `elapsed` is given.
    pub fn report(&self, dry_run: bool, elapsed: Option<Duration>) {
        failure::log(&self.source, &self.backup_id, &self.errors);
        for failure in &self.copies {
            log::error!(
                "source {} (backup {}): {failure}; its datasets are in the repository and recorded, and are copied at its next run",
                self.source,
                self.backup_id
            );
        }
        if self.errors.is_empty() && !dry_run {
            let took = elapsed
                .map(|d| format!(" in {:.1}s", d.as_secs_f64()))
                .unwrap_or_default();
            log::info!(
                "source {} (backup {}): {} recorded{took}",
                self.source,
                self.backup_id,
                count(self.recorded.len(), "dataset")
            );
        }
    }
}
