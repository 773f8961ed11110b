//! The metadb API's one route table: for each endpoint its method, its
//! path, whether a token is needed, and the function that answers (in
//! `endpoint`). Dispatch finds a request's route here (404, 405),
//! identifies the caller by its token (401), counts and logs the request,
//! and turns a panic into a 500. Methods and paths are `wire::path`'s,
//! which the client shares. How to add an endpoint is in the
//! docs of `server`.

use crate::http::{self, Response};
use crate::metadb::server::access;
use crate::metadb::server::auth::Identity;
use crate::metadb::server::body::Answer;
use crate::metadb::server::endpoint::{self, Call, Reply};
use crate::metadb::server::{console, Shared};
use crate::wire::path::{self, Endpoint};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// Who may call a route when tokens are configured (without tokens, on
/// loopback only, every caller is trusted as the admin).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health and metrics are open, as Prometheus exporters are
    /// (restrict them at the proxy if host and source names are
    /// sensitive), and so is the console's sign-in.
    Open,
    /// A known token, a host's or the admin's; what a host token may do is
    /// the endpoint's to decide.
    Token,
    /// A console page: a known token or a browser session, unless `page:
    /// open`; a browser without either is sent to sign in (`access`).
    Page,
}

/// The function that answers a route.
pub type Answers = for<'a, 'r> fn(&'a Shared, Call<'r>) -> Reply<'a>;

/// One endpoint of the API.
pub struct Route {
    /// Its method and path; a segment `{id}` of the path takes any
    /// non-empty segment, which the endpoint gets as [`Call::id`].
    endpoint: Endpoint,
    access: Access,
    answer: Answers,
}

impl Route {
    const fn new(endpoint: Endpoint, access: Access, answer: Answers) -> Route {
        Route {
            endpoint,
            access,
            answer,
        }
    }

    /// The `{id}` in `path` if `path` is this route's (empty if the route
    /// has none).
    fn id_in<'p>(&self, path: &'p str) -> Option<&'p str> {
        let Some((before, after)) = self.endpoint.path.split_once("{id}") else {
            return (path == self.endpoint.path).then_some("");
        };
        let id = path.strip_prefix(before)?.strip_suffix(after)?;
        (!id.is_empty() && !id.contains('/')).then_some(id)
    }
}

/// Every route. A request takes the first whose path matches, so fixed
/// paths come before the `{id}` ones they would match.
const ROUTES: &[Route] = &[
    Route::new(path::ADD_DATASET, Access::Token, endpoint::add_dataset),
    Route::new(
        path::REMOVE_DATASETS,
        Access::Token,
        endpoint::remove_datasets,
    ),
    Route::new(path::ADD_COPIES, Access::Token, endpoint::add_copies),
    Route::new(path::DUE_COPIES, Access::Token, endpoint::due_copies),
    Route::new(path::COPY_LAG, Access::Token, endpoint::copy_lag),
    Route::new(path::FIND_ATOMS, Access::Token, endpoint::find_atoms),
    Route::new(
        path::UPDATE_ACTIVE_JOB_STATUS,
        Access::Token,
        endpoint::update_active_job_status,
    ),
    Route::new(path::ACTIVE_JOBS, Access::Token, endpoint::active_jobs),
    Route::new(
        path::ADD_VERIFICATION,
        Access::Token,
        endpoint::add_verification,
    ),
    Route::new(
        path::ADD_RESTORE_REQUEST,
        Access::Token,
        endpoint::add_restore_request,
    ),
    Route::new(
        path::NEXT_RESTORE_REQUEST,
        Access::Token,
        endpoint::next_restore_request,
    ),
    Route::new(
        path::ABANDON_RESTORE_REQUESTS,
        Access::Token,
        endpoint::abandon_restore_requests,
    ),
    Route::new(path::ADD_ATTEMPT, Access::Token, endpoint::add_attempt),
    Route::new(path::PUBLISH_PLAN, Access::Token, endpoint::publish_plan),
    Route::new(path::HISTORY, Access::Token, endpoint::history),
    Route::new(path::STATUS, Access::Token, endpoint::status),
    Route::new(path::RETIRE_HOST, Access::Token, endpoint::retire_host),
    Route::new(path::TAKE_LEASE, Access::Token, endpoint::take_lease),
    Route::new(path::RELEASE_LEASE, Access::Token, endpoint::release_lease),
    Route::new(path::POLICIES, Access::Token, endpoint::policies),
    Route::new(path::PROOFS, Access::Token, endpoint::proofs),
    Route::new(path::REPOSITORIES, Access::Token, endpoint::repositories),
    Route::new(path::RECORD_SLICE, Access::Token, endpoint::record_slice),
    Route::new(path::PAGE, Access::Page, console::fleet),
    Route::new(path::HOST_PAGE, Access::Page, console::host),
    Route::new(path::SOURCE_PAGE, Access::Page, console::source),
    Route::new(path::SEARCH_PAGE, Access::Page, console::search),
    Route::new(path::SIGNIN_FORM, Access::Open, access::signin_form),
    Route::new(path::SIGNIN, Access::Open, access::sign_in),
    Route::new(path::SIGNOUT, Access::Open, access::sign_out),
    Route::new(path::HEALTHZ, Access::Open, endpoint::healthz),
    Route::new(path::METRICS, Access::Open, endpoint::metrics),
    Route::new(
        path::RESTORE_REQUEST_STATUS,
        Access::Token,
        endpoint::restore_request_status,
    ),
    Route::new(
        path::RESTORE_REQUEST,
        Access::Token,
        endpoint::restore_request,
    ),
];

/// The route `method` and `path` take, and the `{id}` in it: the first
/// whose path and method match, else the first whose path does (405).
fn find<'p>(method: &str, path: &'p str) -> Option<(&'static Route, &'p str)> {
    let mut routes = ROUTES
        .iter()
        .filter_map(|route| Some((route, route.id_in(path)?)));
    let first = routes.clone().next();
    routes
        .find(|(route, _)| route.endpoint.method == method)
        .or(first)
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
    let Some((route, id)) = find(&request.method, path) else {
        return ("other", Answer::error(404, "no such endpoint").into());
    };
    if request.method != route.endpoint.method {
        let allow = route.endpoint.method;
        let answer = Answer::error(405, format!("{path} takes {allow} only"));
        return (
            route.endpoint.path,
            answer.with_headers(vec![("Allow", allow.into())]),
        );
    }
    let policy = shared.policy();
    // Without tokens (loopback only) every caller is trusted.
    let identity = if policy.tokens.is_empty() || route.access == Access::Open {
        Identity::Admin
    } else if route.access == Access::Page {
        match access::identify(shared, &policy, request) {
            Ok(identity) => identity,
            Err(refusal) => return (route.endpoint.path, refusal),
        }
    } else {
        let Some(identity) = policy.tokens.identify(request.header("Authorization")) else {
            let answer = Answer::error(401, "missing or unknown bearer token");
            let headers = vec![("WWW-Authenticate", "Bearer".into())];
            return (route.endpoint.path, answer.with_headers(headers));
        };
        identity
    };
    // A person reading pages with a host's token is no sign of its life.
    match &identity {
        Identity::Host(host) if route.access != Access::Page => shared.seen(host),
        _ => {}
    }
    let call = Call {
        identity,
        policy,
        request,
        id,
    };
    let response = (route.answer)(shared, call).unwrap_or_else(Response::from);
    (route.endpoint.path, response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_found_by_its_own_path() {
        for route in ROUTES {
            let path = route.endpoint.path_with("r1");
            let (found, id) = find(route.endpoint.method, &path).unwrap();
            assert_eq!(found.endpoint, route.endpoint, "{path}");
            assert_eq!(
                id,
                if route.endpoint.path.contains("{id}") {
                    "r1"
                } else {
                    ""
                }
            );
        }
    }

    #[test]
    fn one_path_may_take_two_methods() {
        let route = |method| find(method, "/signin").map(|(route, _)| route.endpoint);
        assert_eq!(route("GET"), Some(path::SIGNIN_FORM));
        assert_eq!(route("POST"), Some(path::SIGNIN));
        assert_eq!(
            route("PUT"),
            Some(path::SIGNIN_FORM),
            "the first, for the 405"
        );
    }

    #[test]
    fn an_id_is_one_non_empty_segment() {
        let path = |p| find("GET", p).map(|(route, id)| (route.endpoint.path, id));
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
