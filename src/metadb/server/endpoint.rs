//! The endpoints of the metadb API, one function each: what the caller
//! may ask (a host token only of its own host), which store call answers
//! it, and the answer. Which path and method lead here, and whether a
//! token is needed, is the route table's (`route`); decoding bodies and
//! shaping answers is `body`'s; the reading connections and the writer are
//! `server`'s.
//!
//! Writes run on the writer (`Shared::write`), answered once durable;
//! reads on one of the reading connections (`Shared::read`). A find's and a
//! status's answers are streamed: written as their rows are read, so that
//! the newest version of every atom of the fleet takes the memory of one
//! backup. Their status is sent first; a failure after that cuts the
//! answer short (the client sees it truncated).

use crate::base::time;
use crate::base::visible::visible;
use crate::http::{self, Body, Response};
use crate::metadb::server::auth::Identity;
use crate::metadb::server::body::{self, Answer};
use crate::metadb::server::config::{HostRead, Policy};
use crate::metadb::server::Shared;
use crate::metadb::store;
use crate::metadb::store::record;
use crate::wire::api::{
    AbandonRequest, Attempt, CopiesAnswer, CopiesRequest, DueRequest, HistoryRequest, LeaseRequest,
    Plan, ReleaseRequest, RemoveDatasetsAnswer, RemoveDatasetsRequest, RestoreStatus,
    RetireRequest, SliceRead, StatusRequest, StatusRow, CREATION_LEASE,
};
use crate::wire::model::{
    AddDatasetRequest, FindRequest, RestoreRequest, UpdateActiveJobStatusRequest, Verification,
};
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// What an endpoint is given besides the server.
pub struct Call<'r> {
    /// Who asks: [`Identity::Admin`] where the route needs no token or no
    /// tokens are configured.
    pub identity: Identity,
    /// The policy when the request came in.
    pub policy: Arc<Policy>,
    pub request: &'r http::Request,
    /// The `{id}` of the route's path; empty if it has none.
    pub id: &'r str,
}

impl Call<'_> {
    /// The request's JSON body, decoded.
    fn body<T: DeserializeOwned>(&self) -> Result<T, Answer> {
        body::decode(&self.request.body)
    }

    /// The value of `name` in the query string.
    fn query(&self, name: &str) -> Option<&str> {
        let (_, query) = self.request.target.split_once('?')?;
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .filter(|v| !v.is_empty())
    }
}

/// What an endpoint answers: a refusal is an `Err`.
pub type Reply<'a> = Result<Response<'a>, Answer>;

/// `POST /api/add_dataset`: records one dataset of a backup.
pub fn add_dataset<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let req: AddDatasetRequest = call.body()?;
    own(&call.identity, &req.backup.host, "write records of")?;
    let answer =
        shared.write(move |store| Answer::recorded(store.add_dataset(&req.backup, &req.dataset)));
    Ok(answer.into())
}

/// `POST /api/remove_datasets`: forgets datasets whose snapshots are gone.
/// Another host's only by the maintainer of a repository, while it holds
/// the repository's lease, and only those recorded in that repository.
pub fn remove_datasets<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let req: RemoveDatasetsRequest = call.body()?;
    let maintainer = match (&call.identity, &req.lease) {
        (Identity::Host(own), Some(lease)) if *own != req.host => {
            Some((own.clone(), lease.clone()))
        }
        _ => {
            own(&call.identity, &req.host, "remove records of")?;
            None
        }
    };
    let answer = shared.write(move |store| {
        let repository = match &maintainer {
            Some((own, lease)) => match leased(store, own, lease, &req) {
                Ok(name) => name,
                Err(refusal) => return refusal,
            },
            None => req.repository.clone().unwrap_or(store::PRIMARY.into()),
        };
        let removed = store.remove_datasets(&req.host, &req.dataset_ids, &repository);
        Answer::stored(removed.map(|removed| RemoveDatasetsAnswer { removed }))
    });
    Ok(answer.into())
}

/// The name under which `req.host` holds the repository of `lease`,
/// whose records `own` removes: if `own` holds that lease, the host
/// publishes the repository, and every dataset named is recorded in it.
/// The 403 answer otherwise.
fn leased(
    store: &store::Store,
    own: &str,
    lease: &str,
    req: &RemoveDatasetsRequest,
) -> Result<String, Answer> {
    let host = &req.host;
    let refuse = |why: String| {
        Answer::error(
            403,
            format!("host {own} may not remove records of host {host}: {why}"),
        )
    };
    let lease_shown = visible(lease);
    match store.holds_lease(lease, own, time::unix_now()) {
        Ok(true) => {}
        Ok(false) => return Err(refuse(format!("it does not hold lease {lease_shown}"))),
        Err(e) => return Err(Answer::store_error(&e)),
    }
    let name = match store.name_of(host, lease) {
        Ok(Some(name)) => name,
        Ok(None) => {
            return Err(refuse(format!(
                "host {host} does not publish repository {lease_shown} in its plan"
            )))
        }
        Err(e) => return Err(Answer::store_error(&e)),
    };
    if name == store::PRIMARY {
        match store.recorded_elsewhere(host, &req.dataset_ids, lease) {
            Ok(elsewhere) if elsewhere.is_empty() => {}
            Ok(elsewhere) => {
                return Err(refuse(format!(
                    "dataset {} is not recorded in repository {lease_shown}",
                    visible(&elsewhere[0])
                )))
            }
            Err(e) => return Err(Answer::store_error(&e)),
        }
    }
    Ok(name)
}

/// `POST /api/copies`: records that a copy holds datasets of a host.
pub fn add_copies<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let req: CopiesRequest = call.body()?;
    own(&call.identity, &req.host, "record copies of")?;
    let answer = shared.write(move |store| {
        let recorded = store.add_copies(&req.host, &req.repository, &req.dataset_ids);
        Answer::stored(recorded.map(|recorded| CopiesAnswer { recorded }))
    });
    Ok(answer.into())
}

/// `POST /api/copies/due`: a host's datasets of a source that a copy
/// lacks; asking makes what it lacks count as its lag.
pub fn due_copies<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let req: DueRequest = call.body()?;
    own(&call.identity, &req.host, "ask for the copies of")?;
    let answer = shared.write(move |store| {
        Answer::stored(store.due_copies(&req.host, &req.source, &req.repository, req.limit))
    });
    Ok(answer.into())
}

/// `GET /api/copies/lag`: per host and copy, the datasets not copied yet;
/// a host token's own only under `host_read: own`.
pub fn copy_lag<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let mut own = None;
    read_scope(&call.identity, call.policy.host_read, &mut own)?;
    let answer = shared.read(|store| {
        Answer::stored(store.copy_lag().map(|lag| {
            lag.into_iter()
                .filter(|l| own.as_ref().is_none_or(|host| *host == l.host))
                .collect::<Vec<_>>()
        }))
    });
    Ok(answer.into())
}

/// `POST /api/find_atoms`: a JSON array of backups, written one backup at
/// a time as the rows are read, with one reading connection held
/// meanwhile.
pub fn find_atoms<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let mut req: FindRequest = call.body()?;
    read_scope(&call.identity, call.policy.host_read, &mut req.host)?;
    store::check_find(&req).map_err(|e| Answer::store_error(&e))?;
    Ok(body::json_array(
        format!("find_atoms {:?}", req.pattern),
        body::serialized,
        move |each| shared.read(|store| store.for_each_found(&req, |backup| each(&backup))),
    ))
}

/// `POST /api/update_active_job_status`: the jobs a host runs now (kept
/// in memory, not in the database).
pub fn update_active_job_status<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let req: UpdateActiveJobStatusRequest = call.body()?;
    own(&call.identity, &req.host, "report jobs of")?;
    record::check_jobs(&req).map_err(|e| Answer::error(400, e))?;
    if let Some(job) = req.active_jobs.iter().find(|j| j.host != req.host) {
        return Err(Answer::error(
            400,
            format!(
                "job {} is of host {}, not {}",
                job.job_id, job.host, req.host
            ),
        ));
    }
    shared.jobs.update(req);
    Ok(Answer::done().into())
}

/// `GET /api/active_jobs`: the jobs running, the caller's own only under
/// `host_read: own`.
pub fn active_jobs<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let own = match (&call.identity, call.policy.host_read) {
        (Identity::Host(host), HostRead::Own) => Some(host.as_str()),
        _ => None,
    };
    Ok(Answer::json(200, &shared.jobs.list(own)).into())
}

/// `POST /api/verifications`: the outcome of a restore drill.
pub fn add_verification<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let v: Verification = call.body()?;
    own(&call.identity, &v.host, "write records of")?;
    let answer = shared.write(move |store| Answer::recorded(store.add_verification(&v)));
    Ok(answer.into())
}

/// `POST /api/restore_requests` (admin): files a restore request, under a
/// new id if it has none; answers it as stored.
pub fn add_restore_request<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let mut req: RestoreRequest = call.body()?;
    admin_only(&call.identity, "create restore requests")?;
    if req.id.is_empty() {
        req.id = crate::wire::model::new_id();
    }
    let answer = shared.write(move |store| {
        let stored = store
            .add_restore_request(&req, time::unix_now())
            .and_then(|()| store.restore_request(&req.id));
        match stored {
            Ok(Some(stored)) => Answer::json(200, &stored),
            Ok(None) => Answer::error(500, format!("restore request {} vanished", req.id)),
            Err(e) => Answer::store_error(&e),
        }
    });
    Ok(answer.into())
}

/// `GET /api/restore_requests/next?host=NAME`: the host's oldest pending
/// restore request, now marked running; 204 if there is none.
pub fn next_restore_request<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let host = restore_host(&call.identity, call.query("host"))?;
    let answer =
        shared.write(
            move |store| match store.next_restore_request(&host, time::unix_now()) {
                Ok(Some(request)) => Answer::json(200, &request),
                Ok(None) => Answer::text(204, String::new(), "application/json"),
                Err(e) => Answer::store_error(&e),
            },
        );
    Ok(answer.into())
}

/// `POST /api/restore_requests/abandon`: fails the host's requests left
/// running; answers how many.
pub fn abandon_restore_requests<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let req: AbandonRequest = call.body()?;
    let host = restore_host(&call.identity, req.host.as_deref())?;
    let answer = shared.write(move |store| {
        let failed = store.abandon_restore_requests(&host, time::unix_now());
        Answer::stored(failed.map(|n| serde_json::json!({ "failed": n })))
    });
    Ok(answer.into())
}

/// `POST /api/restore_requests/{id}/status`: the executing agent's report.
pub fn restore_request_status<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let status: RestoreStatus = call.body()?;
    let host = restore_host(&call.identity, status.host.as_deref())?;
    let id = call.id.to_string();
    let answer = shared.write(move |store| {
        match store.update_restore_request(
            &host,
            &id,
            status.state,
            &status.message,
            time::unix_now(),
        ) {
            Ok(true) => Answer::done(),
            Ok(false) => Answer::error(404, format!("host {host} has no restore request {id}")),
            Err(e) => Answer::store_error(&e),
        }
    });
    Ok(answer.into())
}

/// `GET /api/restore_requests/{id}`: a restore request with its state.
pub fn restore_request<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let (id, host_read) = (call.id, call.policy.host_read);
    let answer = shared.read(|store| match store.restore_request(id) {
        Ok(Some(request)) => match (&call.identity, host_read) {
            (Identity::Host(own), HostRead::Own) if request.host != *own => Answer::error(
                403,
                format!("the token of host {own} may only read its own records (host_read: own)"),
            ),
            _ => Answer::json(200, &request),
        },
        Ok(None) => Answer::error(404, format!("no restore request {id}")),
        Err(e) => Answer::store_error(&e),
    });
    Ok(answer.into())
}

/// `POST /api/attempts`: how an attempt ended.
pub fn add_attempt<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let a: Attempt = call.body()?;
    own(&call.identity, &a.host, "write records of")?;
    let answer =
        shared.write(move |store| Answer::recorded(store.add_attempt(&a, time::unix_now())));
    Ok(answer.into())
}

/// `POST /api/plans`: what a host runs, and when next. Attempts past
/// their retention are trimmed then, at most once an hour.
pub fn publish_plan<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let plan: Plan = call.body()?;
    own(&call.identity, &plan.host, "publish the plan of")?;
    let trim_before = shared.trim_due(&call.policy);
    let answer = shared.write(move |store| {
        if let Some(before) = trim_before {
            match store.trim(before) {
                Ok(0) => {}
                Ok(n) => log::info!(
                    "metadb: trimmed {n} attempts and verifications past attempt_retention"
                ),
                Err(e) => log::error!("metadb: cannot trim attempts and verifications: {e}"),
            }
        }
        Answer::recorded(store.publish_plan(&plan, time::unix_now()))
    });
    Ok(answer.into())
}

/// `POST /api/history`: attempts, newest first.
pub fn history<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let mut req: HistoryRequest = call.body()?;
    read_scope(&call.identity, call.policy.host_read, &mut req.host)?;
    Ok(shared
        .read(|store| Answer::stored(store.history(&req)))
        .into())
}

/// `POST /api/status`: the fleet's status, a JSON array of rows streamed
/// like a find.
pub fn status<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let mut req: StatusRequest = call.body()?;
    read_scope(&call.identity, call.policy.host_read, &mut req.host)?;
    let policy = call.policy;
    Ok(body::json_array(
        "status".into(),
        StatusRow::write_json,
        move |each| shared.read(|store| shared.for_each_status(store, &policy, &req, each)),
    ))
}

/// `POST /api/retire_host` (admin): stops watching a host.
pub fn retire_host<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let req: RetireRequest = call.body()?;
    admin_only(&call.identity, "retire hosts")?;
    let answer = shared.write(move |store| match store.retire_host(&req.host) {
        Ok(true) => Answer::done(),
        Ok(false) => Answer::error(404, format!("no host {} is known", req.host)),
        Err(e) => Answer::store_error(&e),
    });
    Ok(answer.into())
}

/// `POST /api/leases`: takes or renews a maintenance lease, for the
/// caller's own host, of a repository it publishes (or a creation lease);
/// answers who holds it now.
pub fn take_lease<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let req: LeaseRequest = call.body()?;
    own(&call.identity, &req.holder, "take leases for")?;
    let answer = shared.write(move |store| {
        if let Some(refusal) = unused(store, &call.identity, &req.name, "take") {
            return refusal;
        }
        Answer::stored(store.take_lease(&req, time::unix_now()))
    });
    Ok(answer.into())
}

/// `GET /api/policies`: the retention policy of every planned source that
/// published one, for a maintainer to prune by (any token may read them).
pub fn policies<'a>(shared: &'a Shared, _: Call) -> Reply<'a> {
    Ok(shared.read(|store| Answer::stored(store.policies())).into())
}

/// `GET /api/proofs`: where each repository's rotated check stands, and
/// when atoms were last restored by a drill (a host token's own only under
/// `host_read: own`).
pub fn proofs<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let own = match (&call.identity, call.policy.host_read) {
        (Identity::Host(host), HostRead::Own) => Some(host.as_str()),
        _ => None,
    };
    Ok(shared
        .read(|store| Answer::stored(store.all_proofs(own)))
        .into())
}

/// `GET /api/repositories`: every published repository with the hosts
/// that use it; under `host_read: own`, a host token's own repositories,
/// with itself as their only user.
pub fn repositories<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let own = match (&call.identity, call.policy.host_read) {
        (Identity::Host(host), HostRead::Own) => Some(host.as_str()),
        _ => None,
    };
    Ok(shared
        .read(|store| Answer::stored(store.repositories(own)))
        .into())
}

/// `POST /api/proofs/read`: a slice of a repository was read back; answers
/// where its rotated check stands now.
/// Only from the holder of that repository's lease, or the admin.
pub fn record_slice<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let read: SliceRead = call.body()?;
    let answer = shared.write(move |store| {
        let now = time::unix_now();
        if let Identity::Host(host) = &call.identity {
            match store.holds_lease(&read.repository, host, now) {
                Ok(true) => {}
                Ok(false) => {
                    return Answer::error(
                        403,
                        format!(
                            "host {host} does not hold the lease of repository {}: it may not record its check",
                            visible(&read.repository)
                        ),
                    )
                }
                Err(e) => return Answer::store_error(&e),
            }
        }
        Answer::stored(store.record_slice(&read, now))
    });
    Ok(answer.into())
}

/// `POST /api/leases/release`: ends the caller's own lease.
pub fn release_lease<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let req: ReleaseRequest = call.body()?;
    own(&call.identity, &req.holder, "release leases of")?;
    let answer = shared.write(move |store| {
        if let Some(refusal) = unused(store, &call.identity, &req.name, "release") {
            return refusal;
        }
        Answer::recorded(store.release_lease(&req))
    });
    Ok(answer.into())
}

/// The 403 answer if `identity` is a host's that does not publish the
/// repository whose lease `name` is in its plan (a creation lease, named
/// before the repository has an id, is anyone's).
fn unused(store: &store::Store, identity: &Identity, name: &str, verb: &str) -> Option<Answer> {
    let Identity::Host(host) = identity else {
        return None;
    };
    if name
        .strip_prefix(CREATION_LEASE)
        .is_some_and(|digest| digest.len() == 32 && digest.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return None;
    }
    match store.uses_repository(host, name) {
        Ok(true) => None,
        Ok(false) => Some(Answer::error(
            403,
            format!(
                "host {host} does not publish repository {} in its plan: it may not {verb} its lease",
                visible(name)
            ),
        )),
        Err(e) => Some(Answer::store_error(&e)),
    }
}

/// `GET /healthz`: the process serves.
pub fn healthz<'a>(_: &'a Shared, _: Call) -> Reply<'a> {
    Ok(Answer::text(200, "ok\n".into(), "text/plain; charset=utf-8").into())
}

/// `GET /metrics`: the counters, then the fleet as rendered for every
/// scrape of a few seconds, for Prometheus.
pub fn metrics<'a>(shared: &'a Shared, _: Call) -> Reply<'a> {
    let fleet = shared.scrape();
    let counters = shared.metrics.render_counters(fleet.is_some());
    let mut pieces = vec![Arc::from(counters)];
    pieces.extend(fleet);
    Ok(Response {
        status: 200,
        content_type: "text/plain; version=0.0.4; charset=utf-8",
        body: Body::Pieces(pieces),
        headers: Vec::new(),
    })
}

/// The 403 answer if `identity` is another host's than `host`'s.
fn own(identity: &Identity, host: &str, verb: &str) -> Result<(), Answer> {
    match identity {
        Identity::Host(own) if own != host => Err(Answer::error(
            403,
            format!("the token of host {own} may not {verb} host {host}"),
        )),
        _ => Ok(()),
    }
}

/// The 403 answer if `identity` is a host's, not the admin's.
fn admin_only(identity: &Identity, what: &str) -> Result<(), Answer> {
    match identity {
        Identity::Host(host) => Err(Answer::error(
            403,
            format!("the token of host {host} may not {what} (admin only)"),
        )),
        Identity::Admin => Ok(()),
    }
}

/// Narrows a read to a host token's own host under `host_read: own`; the
/// 403 answer if it asked for another.
fn read_scope(
    identity: &Identity,
    host_read: HostRead,
    asked: &mut Option<String>,
) -> Result<(), Answer> {
    if let (Identity::Host(own), HostRead::Own) = (identity, host_read) {
        match asked {
            Some(host) if host != own => {
                return Err(Answer::error(
                    403,
                    format!(
                        "the token of host {own} may only read its own records (host_read: own)"
                    ),
                ))
            }
            _ => *asked = Some(own.clone()),
        }
    }
    Ok(())
}

/// The host a restore request call is about: a host token's own, or with
/// an admin token the one named (`asked`).
fn restore_host(identity: &Identity, asked: Option<&str>) -> Result<String, Answer> {
    match (identity, asked) {
        (Identity::Host(own), Some(asked)) if asked != own => Err(Answer::error(
            403,
            format!("the token of host {own} may only pick up its own restore requests"),
        )),
        (Identity::Host(own), _) => Ok(own.clone()),
        (Identity::Admin, Some(asked)) => Ok(asked.to_string()),
        (Identity::Admin, None) => Err(Answer::error(400, "name the host (host=NAME)")),
    }
}
