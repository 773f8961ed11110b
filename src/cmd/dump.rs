//! `tabacco dump`: the newest matching version of one atom, a pipe atom's
//! stream or one file of a file atom, written to standard output or a new
//! file with `restic dump`. No restore command or hook runs: the safe way to
//! look at a database dump, or to load it into a staging database. Binary
//! data is not written to a terminal.

use crate::backup::copy::Reader;
use crate::cli::DumpArgs;
use crate::cmd::{self, Exit};
use crate::config::Config;
use crate::process::interrupt::Interrupt;
use crate::process::shell::pipe::Link;
use crate::process::shell::Supervisor;
use crate::wire::model::Dataset;
use std::fs::OpenOptions;
use std::io::{IsTerminal, Read, Write};

/// How much of the stream is looked at before anything reaches a terminal.
const SNIFF_BYTES: usize = 64 * 1024;

pub fn dump(config: &Config, args: &DumpArgs) -> Result<(), Exit> {
    let (reader, checked, atom) = cmd::one_version(config, &args.version)?;
    let item = checked.item();
    let path = match (atom.path.as_deref(), &args.file) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(Exit::Error(format!(
                "{} is a pipe atom, one stream: dump it without a PATH",
                atom.name
            )))
        }
        (Some(_), None) => {
            return Err(Exit::Error(format!(
                "{} is a file atom: name a file in it (see tabacco ls {})",
                atom.name, atom.name
            )))
        }
        (Some(root), Some(file)) => Some(format!("{}/{file}", root.trim_end_matches('/'))),
    };
    log::info!(
        "dumping {}{} from backup {} of {} (snapshot {})",
        atom.name,
        args.file
            .as_deref()
            .map(|f| format!(" {f}"))
            .unwrap_or_default(),
        item.backup.id,
        item.backup.host,
        item.dataset.snapshot_id
    );
    let mut out: Box<dyn Write> = match &args.output {
        Some(file) => Box::new(
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(file)
                .map_err(|e| Exit::Error(format!("cannot create {}: {e}", file.display())))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
    let interrupt =
        Interrupt::install().map_err(|e| Exit::Error(format!("cannot catch signals: {e}")))?;
    let sup = Supervisor::new(config.priority, format!("dump {}", atom.name));
    if let Some(reason) = interrupt.track(&sup) {
        return Err(Exit::Error(reason));
    }
    let written = write(
        &reader,
        &sup,
        &item.dataset,
        &atom.name,
        path.as_deref(),
        &mut out,
        to_terminal,
    );
    drop(out);
    if written.is_err() {
        if let Some(file) = &args.output {
            let _ = std::fs::remove_file(file);
        }
    }
    written
}

/// Streams `restic dump` of the pipe atom `atom`, or of the file at `path`,
/// into `out`.
fn write(
    reader: &Reader,
    sup: &Supervisor,
    dataset: &Dataset,
    atom: &str,
    path: Option<&str>,
    out: &mut dyn Write,
    to_terminal: bool,
) -> Result<(), Exit> {
    let running = reader
        .read(dataset, |repo, snapshot| match path {
            Some(path) => repo.dump_file(sup, snapshot, path),
            None => repo.dump(sup, snapshot, atom),
        })
        .map_err(Exit::error)?;
    // Err(None): the reader went away (`| head`), which ends the dump.
    let ended = running
        .pipe_into(Link::Direct, |data| -> Result<(), Option<String>> {
            let mut data = std::fs::File::from(data);
            let mut head = Vec::new();
            (&mut data)
                .take(SNIFF_BYTES as u64)
                .read_to_end(&mut head)
                .map_err(|e| Some(format!("reading restic dump: {e}")))?;
            if to_terminal && is_binary(&head) {
                return Err(Some(format!(
                    "{} holds binary data: not written to a terminal; use -o FILE or a pipe",
                    path.unwrap_or(atom)
                )));
            }
            let written = out
                .write_all(&head)
                .and_then(|()| std::io::copy(&mut data, out).map(|_| ()))
                .and_then(|()| out.flush());
            match written {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(None),
                Err(e) => Err(Some(format!("cannot write the dump: {e}"))),
                Ok(()) => Ok(()),
            }
        })
        .map_err(Exit::error)?;
    match ended.consumer {
        Ok(()) => ended.producer.map(drop).map_err(Exit::error),
        Err(None) => Ok(()),
        Err(Some(e)) => Err(Exit::Error(e)),
    }
}

/// Whether `head`, the start of a stream, is not text: a NUL byte, or bytes
/// that are not UTF-8 (a character cut at the end is not held against it).
fn is_binary(head: &[u8]) -> bool {
    head.contains(&0) || matches!(std::str::from_utf8(head), Err(e) if e.error_len().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_binary() {
        assert!(!is_binary(b"CREATE TABLE t (x int);\n"));
        assert!(!is_binary("caf\u{e9}".as_bytes()));
        assert!(!is_binary(&"\u{e9}".as_bytes()[..1]), "a cut character");
        assert!(is_binary(b"PGDMP\x00\x01"));
        assert!(is_binary(b"\xff\xfe x"));
    }
}
