//! The console's page endpoints: what each page reads (with one of the
//! reading connections, as the API's reads do) and what its caller may
//! see of it. `host_read: own` applies to the pages as to the API: a host
//! token sees its own host only, and a page of another host is refused
//! (403). Who the caller is, is `access`'s; how a page looks, `page`'s.

use crate::base::{form, time};
use crate::http::Response;
use crate::metadb::server::access::{self, html, refusal};
use crate::metadb::server::auth::Identity;
use crate::metadb::server::body::Answer;
use crate::metadb::server::config::HostRead;
use crate::metadb::server::endpoint::{Call, Reply};
use crate::metadb::server::page::{fleet, host, search, source};
use crate::metadb::server::Shared;
use crate::metadb::store::{self, MAX_RUNS};
use crate::wire::api::{HistoryRequest, Lag, StatusRequest, StatusRow};
use crate::wire::model::FindRequest;
use chrono::Utc;

/// Attempts a host's page shows, and a source's.
const HOST_ATTEMPTS: u32 = 20;
const SOURCE_ATTEMPTS: u32 = 50;

/// The value of `name` in the request's query, if not empty.
fn query(call: &Call, name: &str) -> Option<String> {
    let (_, query) = call.request.target.split_once('?')?;
    form::value(query, name)
}

/// The host `call`'s caller may read of the one it asks for (`asked`,
/// none: all): a host token under `host_read: own` its own only; the 403
/// page if it asked for another.
fn scope(call: &Call, asked: Option<String>) -> Result<Option<String>, Response<'static>> {
    match (&call.identity, call.policy.host_read) {
        (Identity::Host(own), HostRead::Own) if !access::is_open(&call.policy) => match asked {
            Some(host) if host != *own => {
                let why =
                    format!("The token of host {own} may only read its own host (host_read: own).");
                Err(html(403, refusal(403, &why)))
            }
            _ => Ok(Some(own.clone())),
        },
        _ => Ok(asked),
    }
}

/// Why a walk of the status stopped before its end.
enum Walk {
    /// The page has its rows.
    Full,
    Store(store::Error),
}

impl From<store::Error> for Walk {
    fn from(e: store::Error) -> Walk {
        Walk::Store(e)
    }
}

/// `GET /`: the fleet, problems first, paged (`state`, `page`).
pub fn fleet<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let own = match scope(&call, None) {
        Ok(own) => own,
        Err(refusal) => return Ok(refusal),
    };
    let policy = &call.policy;
    let listing = fleet::Listing::new(
        query(&call, "state").as_deref(),
        query(&call, "page").as_deref(),
    );
    let now = Utc::now();
    let silent_after =
        chrono::Duration::from_std(policy.silent_after).unwrap_or(chrono::Duration::MAX);
    let proof_age =
        chrono::Duration::from_std(policy.read_back_within).unwrap_or(chrono::Duration::MAX);
    let before = |age| time::format(now.checked_sub_signed(age).unwrap_or(now));
    let mut tally = fleet::Tally::new(listing, before(silent_after));
    let req = StatusRequest {
        host: own.clone(),
        ..StatusRequest::default()
    };
    let read = shared.read(|store| -> Result<_, store::Error> {
        shared.for_each_status(store, policy, &req, |row| {
            tally.count(row);
            Ok::<(), store::Error>(())
        })?;
        if let Some((host, source)) = tally.others_from() {
            let from = Some((host.as_str(), source.as_str()));
            let walked = shared.for_each_status_from(store, policy, &req, from, |row| {
                if tally.other(row) {
                    Ok(())
                } else {
                    Err(Walk::Full)
                }
            });
            if let Err(Walk::Store(e)) = walked {
                return Err(e);
            }
        }
        let lag = own_lag(store.copy_lag()?, own.as_deref());
        Ok((lag, store.proofs()?))
    });
    let (lag, proofs) = read.map_err(|e| Answer::store_error(&e))?;
    let proof_before = before(proof_age);
    let beyond = fleet::Beyond {
        lag: &lag,
        proofs: &proofs,
        proof_before: &proof_before,
    };
    Ok(html(
        200,
        fleet::render(&access::frame(&call), &tally, &beyond),
    ))
}

fn own_lag(lag: Vec<Lag>, own: Option<&str>) -> Vec<Lag> {
    lag.into_iter()
        .filter(|l| own.is_none_or(|host| host == l.host))
        .collect()
}

/// `GET /host?name=H`: a host's sources, repositories and attempts.
pub fn host<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let Some(name) = query(&call, "name") else {
        return Ok(html(400, refusal(400, "Name the host: /host?name=NAME.")));
    };
    if let Err(refusal) = scope(&call, Some(name.clone())) {
        return Ok(refusal);
    }
    let policy = &call.policy;
    let req = StatusRequest {
        host: Some(name.clone()),
        ..StatusRequest::default()
    };
    let read = shared.read(|store| -> Result<_, store::Error> {
        let mut planned = Vec::new();
        shared.for_each_status(store, policy, &req, |row| {
            planned.push(row.clone());
            Ok::<(), store::Error>(())
        })?;
        let attempts = store.history(&HistoryRequest {
            host: Some(name.clone()),
            limit: Some(HOST_ATTEMPTS),
            ..HistoryRequest::default()
        })?;
        Ok((
            store.host_record(&name)?,
            planned,
            store.source_records(&name)?,
            store.holdings(&name)?,
            own_lag(store.copy_lag()?, Some(&name)),
            attempts,
        ))
    });
    let (record, planned, sources, holdings, lag, attempts) =
        read.map_err(|e| Answer::store_error(&e))?;
    if record.is_none() && sources.is_empty() && holdings.is_empty() {
        let why = format!("No host {name} is known.");
        return Ok(html(404, refusal(404, &why)));
    }
    let silent_after =
        chrono::Duration::from_std(policy.silent_after).unwrap_or(chrono::Duration::MAX);
    let silent_before = time::format(
        Utc::now()
            .checked_sub_signed(silent_after)
            .unwrap_or(Utc::now()),
    );
    let silent = planned
        .first()
        .and_then(|r| r.last_seen.as_deref())
        .is_some_and(|seen| seen < silent_before.as_str());
    let view = host::View {
        host: &name,
        record: record.as_ref(),
        silent,
        planned: &planned,
        sources: &sources,
        holdings: &holdings,
        lag: &lag,
        attempts: &attempts,
    };
    Ok(html(200, host::render(&access::frame(&call), &view)))
}

/// `GET /source?host=H&source=S&runs=N`: a source's runs, plotted, and
/// its attempts.
pub fn source<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let (Some(name), Some(source)) = (query(&call, "host"), query(&call, "source")) else {
        return Ok(html(
            400,
            refusal(
                400,
                "Name the host and the source: /source?host=H&source=S.",
            ),
        ));
    };
    if let Err(refusal) = scope(&call, Some(name.clone())) {
        return Ok(refusal);
    }
    let runs = query(&call, "runs")
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(source::DEFAULT_RUNS)
        .clamp(1, MAX_RUNS);
    let policy = &call.policy;
    let req = StatusRequest {
        host: Some(name.clone()),
        source: Some(source.clone()),
        ..StatusRequest::default()
    };
    let read = shared.read(|store| -> Result<_, store::Error> {
        let mut status: Option<StatusRow> = None;
        shared.for_each_status(store, policy, &req, |row| {
            status = Some(row.clone());
            Ok::<(), store::Error>(())
        })?;
        let attempts = store.history(&HistoryRequest {
            host: Some(name.clone()),
            source: Some(source.clone()),
            limit: Some(SOURCE_ATTEMPTS),
            ..HistoryRequest::default()
        })?;
        Ok((status, store.runs(&name, &source, runs)?, attempts))
    });
    let (status, runs, attempts) = read.map_err(|e| Answer::store_error(&e))?;
    if status.is_none() && runs.is_empty() && attempts.is_empty() {
        let why = format!("Host {name} has no source {source}.");
        return Ok(html(404, refusal(404, &why)));
    }
    let view = source::View {
        host: &name,
        source: &source,
        status: status.as_ref(),
        runs: &runs,
        attempts: &attempts,
    };
    Ok(html(200, source::render(&access::frame(&call), &view)))
}

/// `GET /search?atom=GLOB&host=H&versions=N`: the versions of the atoms a
/// glob matches, with the commands that restore each.
pub fn search<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    let pattern = query(&call, "atom").unwrap_or_default();
    let asked = query(&call, "host");
    let host = match scope(&call, asked.clone()) {
        Ok(host) => host,
        Err(refusal) => return Ok(refusal),
    };
    let versions_each = query(&call, "versions")
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(search::DEFAULT_VERSIONS)
        .clamp(1, search::MAX_VERSIONS);
    let mut versions = Vec::new();
    let mut cut_short = false;
    let mut error = None;
    if !pattern.is_empty() {
        let req = FindRequest {
            pattern: pattern.clone(),
            host,
            num_versions: Some(versions_each),
            older_than: None,
        };
        let found = store::check_find(&req).and_then(|()| {
            shared.read(|store| {
                let walked = store.for_each_found(&req, |backup| {
                    for dataset in &backup.datasets {
                        for atom in &dataset.atoms {
                            if versions.len() == search::MAX_SHOWN {
                                cut_short = true;
                                return Err(Walk::Full);
                            }
                            versions.push(search::Version {
                                atom: atom.name.clone(),
                                path: atom.path.clone(),
                                host: backup.host.clone(),
                                time: backup.timestamp.clone(),
                                source: dataset.source.clone(),
                                total_bytes: dataset.total_bytes,
                                repositories: dataset.repositories.clone(),
                            });
                        }
                    }
                    Ok(())
                });
                match walked {
                    Ok(()) | Err(Walk::Full) => Ok(()),
                    Err(Walk::Store(e)) => Err(e),
                }
            })
        });
        match found {
            Ok(()) => {}
            Err(e @ store::Error::InvalidRequest(_)) => error = Some(e.to_string()),
            Err(e) => return Err(Answer::store_error(&e)),
        }
    }
    let view = search::View {
        pattern: &pattern,
        host: asked.as_deref().unwrap_or(""),
        versions_each,
        versions: &versions,
        cut_short,
        error: error.as_deref(),
    };
    Ok(html(200, search::render(&access::frame(&call), &view)))
}
