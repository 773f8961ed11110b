//! What a backup of one source achieved: the datasets it recorded and
//! every failure. `job` makes one; `run` and the agent report it, `attempt`
//! records it and `notify` tells of it. Imports only `model` and `failure`.

use crate::failure::Failure;
use crate::model::Dataset;

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
