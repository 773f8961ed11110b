//! The repository's snapshots as a whole: listing them, forgetting some
//! (by id or tag, or by a retention policy), pruning, checking, and
//! copying them from another repository. Each that needs restic's
//! exclusive lock takes it as [`Repo::run_locking`] says. Which snapshots
//! and when is `maintenance`'s and `backup`'s.

use super::snapshot::is_full_id;
use super::{Error, Repo, Repository, Snapshot};
use crate::base::retention::Retention;
use crate::process::shell::{Stop, Supervisor};
use serde::Deserialize;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

impl Repo {
    /// Every snapshot carrying any of `tags`.
    pub fn snapshots(&self, sup: &Supervisor, tags: &[String]) -> Result<Vec<Snapshot>, Error> {
        let filter: Vec<&str> = tags.iter().flat_map(|t| ["--tag", t.as_str()]).collect();
        self.list_snapshots(sup, &filter)
    }

    /// Every snapshot `restic snapshots` lists with `filter` options
    /// (`--host H`), for `tabacco snapshots`.
    pub fn list(&self, sup: &Supervisor, filter: &[String]) -> Result<Vec<Snapshot>, Error> {
        let filter: Vec<&str> = filter.iter().map(String::as_str).collect();
        self.list_snapshots(sup, &filter)
    }

    /// The ids of every snapshot in the repository.
    pub fn snapshot_ids(&self, sup: &Supervisor) -> Result<HashSet<String>, Error> {
        let all = self.list_snapshots(sup, &[])?;
        Ok(all.into_iter().map(|s| s.id).collect())
    }

    /// `restic snapshots --json` with `filter` options (restic prints
    /// `null` for none).
    fn list_snapshots(&self, sup: &Supervisor, filter: &[&str]) -> Result<Vec<Snapshot>, Error> {
        let mut args = vec!["snapshots", "--json"];
        args.extend(filter);
        let snapshots: Option<Vec<Snapshot>> = self.json(sup, &args, "restic snapshots --json")?;
        Ok(snapshots.unwrap_or_default())
    }

    /// Removes `snapshots` (each a dataset's tag and the snapshot id restic
    /// reported), in one restic process; data is reclaimed by a later
    /// prune.
    pub fn forget_snapshots(
        &self,
        sup: &Supervisor,
        snapshots: &[(String, String)],
    ) -> Result<(), Error> {
        let mut args = vec!["forget".to_string()];
        if snapshots.iter().all(|(_, id)| is_full_id(id)) {
            // restic 0.15 and newer report full ids: no ambiguity. (0.17
            // and newer refuse the policy below for a group's last snapshot.)
            args.extend(snapshots.iter().map(|(_, id)| id.clone()));
        } else {
            // restic 0.14's short ids may be ambiguous. `forget --tag T`
            // alone removes nothing ("no policy"); a policy that keeps only
            // snapshots with a tag none has removes exactly those tagged T
            // (repeated `--tag`s are alternatives).
            for (tag, _) in snapshots {
                args.extend(["--tag".into(), tag.clone()]);
            }
            args.extend(["--keep-tag".into(), "tabacco:keep-none".into()]);
        }
        self.run_locking(sup, "restic forget", &args, None)
    }

    /// Applies `policy` to this `host`'s snapshots of `sources`, each atom
    /// (path) on its own, and returns the snapshots it removed (or, with
    /// `dry_run`, would remove). Data is reclaimed by [`Repo::prune`].
    pub fn forget(
        &self,
        sup: &Supervisor,
        host: &str,
        sources: &[&str],
        policy: &Retention,
        dry_run: bool,
    ) -> Result<Vec<Snapshot>, Error> {
        self.open(sup)?;
        let mut args: Vec<String> = [
            "forget",
            "--json",
            "--host",
            host,
            "--group-by",
            "host,paths",
        ]
        .map(String::from)
        .into();
        for source in sources {
            args.extend(["--tag".into(), format!("tabacco:source={source}")]);
        }
        args.extend(policy.forget_args());
        if dry_run {
            args.push("--dry-run".into());
        }
        let run = |extra: &[String]| -> Result<String, Error> {
            let all: Vec<&str> = args.iter().chain(extra).map(String::as_str).collect();
            let mut cmd = self.command(&all);
            cmd.stdout(Stdio::piped());
            let mut running = sup.spawn(&mut cmd, "restic forget", Stop::Interrupt)?;
            let mut first_line = String::new();
            if let Some(stdout) = running.child().stdout.take() {
                let mut reader = BufReader::new(stdout);
                let _ = reader.read_line(&mut first_line);
                // Drain the rest so restic never blocks on a full pipe.
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
            }
            running.wait().map_err(|e| self.failed(e))?;
            Ok(first_line)
        };
        let first_line = match run(&[]) {
            Err(Error::Locked(_)) => {
                self.unlock(sup)?;
                run(&self.retry_lock()?)?
            }
            result => result?,
        };
        if first_line.trim().is_empty() {
            return Ok(Vec::new());
        }
        #[derive(Deserialize)]
        struct Group {
            remove: Option<Vec<Snapshot>>,
        }
        let groups: Vec<Group> = serde_json::from_str(&first_line)
            .map_err(|e| Error::Output(format!("restic forget --json: {e}")))?;
        Ok(groups
            .into_iter()
            .flat_map(|g| g.remove.unwrap_or_default())
            .collect())
    }

    /// Reclaims the space of forgotten snapshots. Needs an exclusive lock:
    /// waits for running backups as [`Repo::run_locking`] says.
    pub fn prune(&self, sup: &Supervisor) -> Result<(), Error> {
        self.run_locking(sup, "restic prune", &["prune".into()], None)
    }

    /// `restic check`, reading back `read_data_subset` of the data if given
    /// (e.g. `5%` or `1/10`). Needs an exclusive lock.
    pub fn check(&self, sup: &Supervisor, read_data_subset: Option<&str>) -> Result<(), Error> {
        let mut args = vec!["check".to_string()];
        if let Some(subset) = read_data_subset {
            args.extend(["--read-data-subset".into(), subset.into()]);
        }
        self.run_locking(sup, "restic check", &args, None)
    }

    /// Copies the snapshots carrying any of `tags` (one dataset's each)
    /// from `from` into this repository, in one restic process; snapshots
    /// copied before are skipped by restic. A tag no snapshot of `from`
    /// carries is no error: [`Repo::snapshots`] tells what arrived.
    pub fn copy_from(
        &self,
        sup: &Supervisor,
        from: &Repository,
        tags: &[String],
    ) -> Result<(), Error> {
        let mut args = vec!["copy".to_string()];
        for tag in tags {
            args.extend(["--tag".into(), tag.clone()]);
        }
        self.run_locking(sup, "restic copy", &args, Some(from))
    }
}
