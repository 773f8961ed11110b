//! The metadb API's one route table: for each endpoint its method, its
//! path, whether a token is needed, and the function that answers (in
//! `endpoint`). Dispatch finds a request's route here (404, 405),
//! identifies the caller by its token (401), counts and logs the request,
//! and turns a panic into a 500; the client takes its paths from the same
//! constants, so the two cannot disagree. How to add an endpoint is in the
//! docs of `server`.

use crate::http::{self, Response};
use crate::metadb::auth::Identity;
use crate::metadb::body::Answer;
use crate::metadb::endpoint::{self, Call, Reply};
use crate::metadb::server::Shared;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// Who may call a route when tokens are configured (without tokens, on
/// loopback only, every caller is trusted as the admin).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health, metrics and the status page are open, as Prometheus
    /// exporters are; restrict them at the proxy if host and source names,
    /// or the reasons backups failed, are sensitive.
    Open,
    /// A known token, a host's or the admin's; what a host token may do is
    /// the endpoint's to decide.
    Token,
}

/// The function that answers a route.
pub type Answers = for<'a, 'r> fn(&'a Shared, Call<'r>) -> Reply<'a>;

/// One endpoint of the API.
pub struct Route {
    pub method: &'static str,
    /// The path; a segment `{id}` takes any non-empty segment, which the
    /// endpoint gets as [`Call::id`].
    pub path: &'static str,
    pub access: Access,
    answer: Answers,
}

impl Route {
    /// The path with `id` for its `{id}`.
    pub fn path_with(&self, id: &str) -> String {
        self.path.replacen("{id}", id, 1)
    }

    /// The `{id}` in `path` if `path` is this route's (empty if the route
    /// has none).
    fn id_in<'p>(&self, path: &'p str) -> Option<&'p str> {
        let Some((before, after)) = self.path.split_once("{id}") else {
            return (path == self.path).then_some("");
        };
        let id = path.strip_prefix(before)?.strip_suffix(after)?;
        (!id.is_empty() && !id.contains('/')).then_some(id)
    }
}

/// Declares each route as a constant, and [`ROUTES`] as all of them in
/// the order given.
macro_rules! routes {
    ($($(#[$doc:meta])* $name:ident: $method:literal $path:literal $access:ident => $answer:path;)*) => {
        $(
            $(#[$doc])*
            pub const $name: Route = Route {
                method: $method,
                path: $path,
                access: Access::$access,
                answer: $answer,
            };
        )*
        /// Every route. A request takes the first whose path matches, so
        /// fixed paths come before the `{id}` ones they would match.
        const ROUTES: &[&Route] = &[$(&$name),*];
    };
}

routes! {
    ADD_DATASET: "POST" "/api/add_dataset" Token => endpoint::add_dataset;
    REMOVE_DATASETS: "POST" "/api/remove_datasets" Token => endpoint::remove_datasets;
    ADD_COPIES: "POST" "/api/copies" Token => endpoint::add_copies;
    DUE_COPIES: "POST" "/api/copies/due" Token => endpoint::due_copies;
    COPY_LAG: "GET" "/api/copies/lag" Token => endpoint::copy_lag;
    FIND_ATOMS: "POST" "/api/find_atoms" Token => endpoint::find_atoms;
    UPDATE_ACTIVE_JOB_STATUS: "POST" "/api/update_active_job_status" Token
        => endpoint::update_active_job_status;
    ACTIVE_JOBS: "GET" "/api/active_jobs" Token => endpoint::active_jobs;
    ADD_VERIFICATION: "POST" "/api/verifications" Token => endpoint::add_verification;
    ADD_RESTORE_REQUEST: "POST" "/api/restore_requests" Token => endpoint::add_restore_request;
    NEXT_RESTORE_REQUEST: "GET" "/api/restore_requests/next" Token
        => endpoint::next_restore_request;
    ABANDON_RESTORE_REQUESTS: "POST" "/api/restore_requests/abandon" Token
        => endpoint::abandon_restore_requests;
    ADD_ATTEMPT: "POST" "/api/attempts" Token => endpoint::add_attempt;
    PUBLISH_PLAN: "POST" "/api/plans" Token => endpoint::publish_plan;
    HISTORY: "POST" "/api/history" Token => endpoint::history;
    STATUS: "POST" "/api/status" Token => endpoint::status;
    RETIRE_HOST: "POST" "/api/retire_host" Token => endpoint::retire_host;
    TAKE_LEASE: "POST" "/api/leases" Token => endpoint::take_lease;
    RELEASE_LEASE: "POST" "/api/leases/release" Token => endpoint::release_lease;
    POLICIES: "GET" "/api/policies" Token => endpoint::policies;
    PROOFS: "GET" "/api/proofs" Token => endpoint::proofs;
    RECORD_SLICE: "POST" "/api/proofs/read" Token => endpoint::record_slice;
    PAGE: "GET" "/" Open => endpoint::page;
    HEALTHZ: "GET" "/healthz" Open => endpoint::healthz;
    METRICS: "GET" "/metrics" Open => endpoint::metrics;
    RESTORE_REQUEST_STATUS: "POST" "/api/restore_requests/{id}/status" Token
        => endpoint::restore_request_status;
    RESTORE_REQUEST: "GET" "/api/restore_requests/{id}" Token => endpoint::restore_request;
}

/// The route `path` takes, and the `{id}` in it.
fn find(path: &str) -> Option<(&'static Route, &str)> {
    ROUTES
        .iter()
        .find_map(|route| Some((*route, route.id_in(path)?)))
}

impl http::Handler for Shared {
    fn body_limit(&self) -> usize {
        self.policy().max_body_bytes
    }

    /// Answers `request`, counts it, and logs it at debug level.
    fn handle(&self, request: http::Request) -> Response<'_> {
        let started = Instant::now();
        let (method, target) = (&request.method, &request.target);
        let outcome = catch_unwind(AssertUnwindSafe(|| dispatch(self, &request)));
        let (endpoint, response) = outcome.unwrap_or_else(|_| {
            log::error!("metadb: {method} {target}: internal error (panic), answered 500");
            ("other", Answer::error(500, "internal error").into())
        });
        self.metrics
            .observe(endpoint, response.status, started.elapsed());
        log::debug!(
            "metadb: {method} {target} -> {} in {:.1} ms",
            response.status,
            started.elapsed().as_secs_f64() * 1000.0
        );
        response
    }

    fn count(&self, why: &'static str) {
        self.metrics.connection(why);
    }
}

/// Answers `request` by its route; returns the route's path (the metrics
/// label; `other` for none) and the answer.
fn dispatch<'a>(shared: &'a Shared, request: &http::Request) -> (&'static str, Response<'a>) {
    let path = request.path();
    let Some((route, id)) = find(path) else {
        return ("other", Answer::error(404, "no such endpoint").into());
    };
    if request.method != route.method {
        let allow = route.method;
        let answer = Answer::error(405, format!("{path} takes {allow} only"));
        return (
            route.path,
            answer.with_headers(vec![("Allow", allow.into())]),
        );
    }
    let policy = shared.policy();
    // Without tokens (loopback only) every caller is trusted.
    let identity = if policy.tokens.is_empty() || route.access == Access::Open {
        Identity::Admin
    } else {
        let Some(identity) = policy.tokens.identify(request.header("Authorization")) else {
            let answer = Answer::error(401, "missing or unknown bearer token");
            let headers = vec![("WWW-Authenticate", "Bearer".into())];
            return (route.path, answer.with_headers(headers));
        };
        identity
    };
    if let Identity::Host(host) = &identity {
        shared.seen(host);
    }
    let call = Call {
        identity,
        policy,
        request,
        id,
    };
    let response = (route.answer)(shared, call).unwrap_or_else(Response::from);
    (route.path, response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_found_by_its_own_path() {
        for route in ROUTES {
            let path = route.path_with("r1");
            let (found, id) = find(&path).unwrap();
            assert_eq!(found.path, route.path, "{path}");
            assert_eq!(
                id,
                if route.path.contains("{id}") {
                    "r1"
                } else {
                    ""
                }
            );
        }
    }

    #[test]
    fn an_id_is_one_non_empty_segment() {
        let path = |p| find(p).map(|(route, id)| (route.path, id));
        assert_eq!(
            path("/api/restore_requests/next"),
            Some(("/api/restore_requests/next", ""))
        );
        assert_eq!(
            path("/api/restore_requests/next/status"),
            Some(("/api/restore_requests/{id}/status", "next"))
        );
        assert_eq!(
            path("/api/restore_requests/status"),
            Some(("/api/restore_requests/{id}", "status"))
        );
        assert_eq!(path("/api/restore_requests//status"), None);
        assert_eq!(path("/api/restore_requests/a/b"), None);
        assert_eq!(path("/api/restore_requests/"), None);
        assert_eq!(path("/api/nothing"), None);
    }
}
