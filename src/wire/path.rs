//! Where each request of the metadb API goes: its method and path. The
//! server's route table and the client both take them from here, so the
//! two cannot disagree, and the client needs nothing of the server's.

/// One endpoint of the metadb API, as the client calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub method: &'static str,
    /// The path; a segment `{id}` takes any non-empty segment.
    pub path: &'static str,
}

impl Endpoint {
    const fn new(method: &'static str, path: &'static str) -> Endpoint {
        Endpoint { method, path }
    }

    /// The path with `id` for its `{id}`.
    pub fn path_with(&self, id: &str) -> String {
        self.path.replacen("{id}", id, 1)
    }
}

/// `POST /api/add_dataset`.
pub const ADD_DATASET: Endpoint = Endpoint::new("POST", "/api/add_dataset");
/// `POST /api/remove_datasets`.
pub const REMOVE_DATASETS: Endpoint = Endpoint::new("POST", "/api/remove_datasets");
/// `POST /api/copies`.
pub const ADD_COPIES: Endpoint = Endpoint::new("POST", "/api/copies");
/// `POST /api/copies/due`.
pub const DUE_COPIES: Endpoint = Endpoint::new("POST", "/api/copies/due");
/// `GET /api/copies/lag`.
pub const COPY_LAG: Endpoint = Endpoint::new("GET", "/api/copies/lag");
/// `POST /api/find_atoms`.
pub const FIND_ATOMS: Endpoint = Endpoint::new("POST", "/api/find_atoms");
/// `POST /api/update_active_job_status`.
pub const UPDATE_ACTIVE_JOB_STATUS: Endpoint =
    Endpoint::new("POST", "/api/update_active_job_status");
/// `GET /api/active_jobs`.
pub const ACTIVE_JOBS: Endpoint = Endpoint::new("GET", "/api/active_jobs");
/// `POST /api/verifications`.
pub const ADD_VERIFICATION: Endpoint = Endpoint::new("POST", "/api/verifications");
/// `POST /api/restore_requests`.
pub const ADD_RESTORE_REQUEST: Endpoint = Endpoint::new("POST", "/api/restore_requests");
/// `GET /api/restore_requests/next`.
pub const NEXT_RESTORE_REQUEST: Endpoint = Endpoint::new("GET", "/api/restore_requests/next");
/// `POST /api/restore_requests/abandon`.
pub const ABANDON_RESTORE_REQUESTS: Endpoint =
    Endpoint::new("POST", "/api/restore_requests/abandon");
/// `POST /api/attempts`.
pub const ADD_ATTEMPT: Endpoint = Endpoint::new("POST", "/api/attempts");
/// `POST /api/plans`.
pub const PUBLISH_PLAN: Endpoint = Endpoint::new("POST", "/api/plans");
/// `POST /api/history`.
pub const HISTORY: Endpoint = Endpoint::new("POST", "/api/history");
/// `POST /api/status`.
pub const STATUS: Endpoint = Endpoint::new("POST", "/api/status");
/// `POST /api/retire_host`.
pub const RETIRE_HOST: Endpoint = Endpoint::new("POST", "/api/retire_host");
/// `POST /api/leases`.
pub const TAKE_LEASE: Endpoint = Endpoint::new("POST", "/api/leases");
/// `POST /api/leases/release`.
pub const RELEASE_LEASE: Endpoint = Endpoint::new("POST", "/api/leases/release");
/// `GET /api/policies`.
pub const POLICIES: Endpoint = Endpoint::new("GET", "/api/policies");
/// `GET /api/repositories`.
pub const REPOSITORIES: Endpoint = Endpoint::new("GET", "/api/repositories");
/// `GET /api/proofs`.
pub const PROOFS: Endpoint = Endpoint::new("GET", "/api/proofs");
/// `POST /api/proofs/read`.
pub const RECORD_SLICE: Endpoint = Endpoint::new("POST", "/api/proofs/read");
/// `GET /`: the console's fleet page.
pub const PAGE: Endpoint = Endpoint::new("GET", "/");
/// `GET /host?name=H`: a host's page.
pub const HOST_PAGE: Endpoint = Endpoint::new("GET", "/host");
/// `GET /source?host=H&source=S`: a source's history.
pub const SOURCE_PAGE: Endpoint = Endpoint::new("GET", "/source");
/// `GET /search?atom=GLOB`: atoms and their versions.
pub const SEARCH_PAGE: Endpoint = Endpoint::new("GET", "/search");
/// `GET /signin`: the sign-in form.
pub const SIGNIN_FORM: Endpoint = Endpoint::new("GET", "/signin");
/// `POST /signin`: a token for a browser session.
pub const SIGNIN: Endpoint = Endpoint::new("POST", "/signin");
/// `POST /signout`: ends a browser session.
pub const SIGNOUT: Endpoint = Endpoint::new("POST", "/signout");
/// `GET /healthz`.
pub const HEALTHZ: Endpoint = Endpoint::new("GET", "/healthz");
/// `GET /metrics`.
pub const METRICS: Endpoint = Endpoint::new("GET", "/metrics");
/// `POST /api/restore_requests/{id}/status`.
pub const RESTORE_REQUEST_STATUS: Endpoint =
    Endpoint::new("POST", "/api/restore_requests/{id}/status");
/// `GET /api/restore_requests/{id}`.
pub const RESTORE_REQUEST: Endpoint = Endpoint::new("GET", "/api/restore_requests/{id}");
