//! The proof that a pipe atom loads, beside the drill's read back: its
//! stream from `restic dump` is fed to its source's `proof_command` (the
//! shipped database handlers load it into a scratch database or
//! directory, check it and remove it), counted on the way against the
//! size recorded at backup. What the command prints last is what it
//! found. Used by `verify`'s drill for an atom whose source, as configured
//! on this host, has a proof; what the command does is the handler's.

use crate::backup::copy::Reader;
use crate::config::source::Source;
use crate::handler::Context;
use crate::maintenance::verify::Drill;
use crate::process::shell::pipe::Link;
use crate::process::shell::{self, Stop, Supervisor};
use crate::restore::destination;
use crate::wire::checked::Checked;
use crate::wire::model::{self, Atom};
use std::io::{self, Read};
use std::path::Path;
use std::process::Stdio;

/// Most bytes of a proof's output kept: its last line is what it found.
const OUTPUT_LIMIT: usize = 4096;

/// Feeds pipe atom `atom` of `checked`, read as `reader` says, to the
/// `proof_command` of `source`, with `scratch` (an empty directory) its
/// scratch space; says what was read back and found.
pub fn prove(
    reader: &Reader,
    sup: &Supervisor,
    checked: &Checked,
    atom: &Atom,
    source: &Source,
    scratch: &Path,
) -> Result<String, Drill> {
    let item = checked.item();
    let dataset = &item.dataset;
    // Its commands see the atom as configured here, as a restore does.
    let configured = Atom {
        name: atom.name.clone(),
        path: destination::configured(source, atom).path,
    };
    let ctx = Context {
        backup_id: &item.backup.id,
        host: &item.backup.host,
    };
    let scope = source
        .handler
        .scope(&source.name, &ctx, &dataset.atoms, None);
    let name = format!("tabacco_proof_{}", model::new_id());
    let dir = scratch.to_string_lossy();
    let script = match source
        .handler
        .proof_command(&scope, &configured, &name, &dir)
    {
        Some(script) => script.map_err(Drill::Command)?,
        None => return Err(Drill::NoProof(source.name.clone())),
    };
    std::fs::create_dir_all(scratch).map_err(|source| Drill::Scratch {
        dir: scratch.to_path_buf(),
        source,
    })?;
    let mut env = crate::handler::hook::environment(&scope, Some(&configured));
    env.extend(script.env);
    let command = script.text;
    let dump = reader
        .read(dataset, |repo, snapshot| {
            repo.dump(sup, snapshot, &atom.name)
        })
        .map_err(Drill::Restic)?;
    let ended = dump
        .pipe_into(Link::Counted, |data| {
            let mut proof = {
                let mut cmd = shell::sh(&command);
                cmd.stdin(data).stdout(Stdio::piped()).envs(env);
                sup.spawn(&mut cmd, "proof_command", Stop::Terminate)?
            };
            let mut found = Vec::new();
            if let Some(mut stdout) = proof.child().stdout.take() {
                let mut buf = [0; 8192];
                while let Ok(n) = stdout.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    found.extend_from_slice(&buf[..n]);
                    let over = found.len().saturating_sub(OUTPUT_LIMIT);
                    found.drain(..over);
                }
            }
            proof.wait().map(|_| found)
        })
        .map_err(Drill::Dump)?;
    let found = ended.consumer.map_err(Drill::Proof)?;
    ended.producer.map_err(Drill::Dump)?;
    let bytes = match ended.bytes {
        Some(Ok(bytes)) => bytes,
        Some(Err(e)) => return Err(Drill::Reading(e)),
        None => return Err(Drill::Reading(io::Error::other("the stream was lost"))),
    };
    if dataset.total_bytes > 0 && bytes != dataset.total_bytes as u64 {
        return Err(Drill::Size {
            bytes,
            recorded: dataset.total_bytes,
        });
    }
    let found = String::from_utf8_lossy(&found);
    let found = found.lines().rev().find(|l| !l.trim().is_empty());
    Ok(format!(
        "{bytes} bytes streamed back and loaded: {}",
        found.map_or("proof_command printed nothing", str::trim)
    ))
}
