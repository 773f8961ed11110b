//! Proof, rotated: `verify`'s `restic check`, run by whoever maintains the
//! repository. Unless `--read-data-subset` says otherwise it reads the
//! repository's data back one slice a run (`i/N`, N from `check_slices`,
//! where it stands kept in the metadb per repository), so that every pack
//! is read within N runs, and the metadb learns when the whole was last
//! read back. A host with `maintenance: false` never checks; with a
//! central metadb the check runs under the repository's lease
//! ([`crate::maintenance::lease`]) and is skipped while another host holds
//! it. `verify` uses it.

use crate::config::repositories::Maintenance;
use crate::config::Config;
use crate::maintenance::lease::{self, Held, Lease};
use crate::metadb::{self, Metadb};
use crate::process::shell::Supervisor;
use crate::restic::{self, Repo};
use crate::wire::api::SliceRead;
use std::fmt;

/// Why the check failed, or did not run.
#[derive(Debug)]
pub enum Error {
    Lease(lease::Error),
    /// `restic check` failed, reading back `slice` of the rotation if any.
    Check {
        slice: Option<String>,
        source: restic::Error,
    },
    /// restic could not say the repository's id, which the rotation is kept by.
    Id(restic::Error),
    /// The metadb could not say where the rotation stands.
    Proofs(metadb::Error),
    /// The check of `slice` passed, but the metadb did not record it.
    Unrecorded {
        slice: String,
        source: metadb::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Lease(e) => e.fmt(f),
            Error::Check {
                slice: None,
                source,
            } => write!(f, "restic check failed: {source}"),
            Error::Check {
                slice: Some(slice),
                source,
            } => write!(f, "restic check failed: {source} (slice {slice})"),
            Error::Id(e) => write!(f, "cannot learn the repository's id: {e}"),
            Error::Proofs(e) => write!(f, "cannot learn which slice to check: {e}"),
            Error::Unrecorded { slice, source } => write!(
                f,
                "restic check passed (slice {slice}), but not recorded: {source}"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Lease(e) => Some(e),
            Error::Check { source, .. } | Error::Id(source) => Some(source),
            Error::Proofs(source) | Error::Unrecorded { source, .. } => Some(source),
        }
    }
}

/// Runs the check `verify` makes of `repo`: with `read_data_subset` if
/// given, else the next slice of the rotation. Says what was checked, or
/// why nothing was; an error if the check failed.
pub fn check(
    config: &Config,
    metadb: &Metadb,
    (name, repo): (&str, &Repo),
    sup: &Supervisor,
    read_data_subset: Option<&str>,
) -> Result<String, Error> {
    if config.maintenance == Maintenance::Never {
        return Ok("restic check not run (maintenance: false)".into());
    }
    let lease = Lease {
        metadb,
        repo,
        name,
        host: &config.hostname,
        ttl: config.lease_ttl,
    };
    let failed = |source| Error::Check {
        slice: None,
        source,
    };
    let held = lease
        .hold(sup, || match read_data_subset {
            Some(subset) => repo
                .check(sup, Some(subset))
                .map(|()| format!("restic check passed, {subset} of the data read back"))
                .map_err(failed),
            None if config.check_slices == 0 => repo
                .check(sup, None)
                .map(|()| "restic check passed".into())
                .map_err(failed),
            None => rotated(metadb, repo, sup, config.check_slices),
        })
        .map_err(Error::Lease)?;
    match held {
        Held::Ran(result) => result,
        Held::Busy { holder, expires } => Ok(format!(
            "restic check skipped: {}",
            lease::busy(&holder, &expires)
        )),
    }
}

/// Reads back the repository's next slice of `slices`, and records it.
fn rotated(metadb: &Metadb, repo: &Repo, sup: &Supervisor, slices: u32) -> Result<String, Error> {
    let id = repo.id(sup).map_err(Error::Id)?;
    let proofs = metadb.proofs().map_err(Error::Proofs)?;
    let slice = proofs
        .repositories
        .iter()
        .find(|p| p.repository == id && p.slices == slices)
        .map_or(1, |p| p.next_slice);
    let subset = format!("{slice}/{slices}");
    repo.check(sup, Some(&subset))
        .map_err(|source| Error::Check {
            slice: Some(subset.clone()),
            source,
        })?;
    let read = SliceRead {
        repository: id,
        slices,
        slice,
    };
    let proof = metadb
        .record_slice(&read)
        .map_err(|source| Error::Unrecorded {
            slice: subset.clone(),
            source,
        })?;
    let whole = match (slice == slices, proof.whole_read) {
        (true, Some(at)) => format!("; the whole repository read back by {at}"),
        _ => String::new(),
    };
    Ok(format!(
        "restic check passed, slice {subset} read back{whole}"
    ))
}
