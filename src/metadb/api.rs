//! Request and answer bodies of the metadb API that are not records of
//! their own (those are in `model` and `jobs`): shared by `server` and
//! `client`, so both sides agree on the wire format.

use serde::{Deserialize, Serialize};

/// The body of `POST /api/remove_datasets`: forget `host`'s datasets whose
/// snapshots were pruned from the repository.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemoveDatasetsRequest {
    pub host: String,
    pub dataset_ids: Vec<String>,
}

/// The answer to `POST /api/remove_datasets`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemoveDatasetsAnswer {
    /// How many of the datasets were recorded (and are now removed).
    pub removed: usize,
}

/// The body of `POST /api/restore_requests/{id}/status`: what the executing
/// agent reports. `host` is needed only with an admin token (a host token
/// says which host it is).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestoreStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `running`, `succeeded` or `failed`.
    pub state: String,
    #[serde(default)]
    pub message: String,
}

/// The body of `POST /api/restore_requests/abandon`: fail `host`'s requests
/// left `running` (the host's agent restarted). `host` is needed only with
/// an admin token.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AbandonRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}
