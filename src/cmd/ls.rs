//! `tabacco ls`: the files of the newest matching version of one file atom,
//! relative to the atom's path, from `restic ls`: one path a line on a
//! terminal (a table with `--long`), a JSON array when piped.

use crate::cli::LsArgs;
use crate::cmd::{self, Exit};
use crate::config::Config;
use crate::process::shell::Supervisor;
use crate::restic::Node;
use serde::Serialize;
use std::io::IsTerminal;

/// One entry as `ls` shows it.
#[derive(Serialize)]
struct Entry {
    /// Relative to the atom's path.
    path: String,
    #[serde(rename = "type")]
    kind: String,
    size: u64,
    mode: u32,
    mtime: String,
}

pub fn ls(config: &Config, args: &LsArgs) -> Result<(), Exit> {
    let (reader, checked, atom) = cmd::one_version(config, &args.version)?;
    let item = checked.item();
    let Some(root) = atom.path.as_deref() else {
        return Err(Exit::Error(format!(
            "{} is a pipe atom, one stream with no files: see tabacco dump {}",
            atom.name, atom.name
        )));
    };
    let root = root.trim_end_matches('/');
    let under = match &args.sub {
        Some(sub) => format!("{root}/{sub}"),
        None => root.to_string(),
    };
    let sup = Supervisor::new(config.priority, format!("ls {}", atom.name));
    let nodes = reader
        .read(&item.dataset, |repo, snapshot| {
            repo.ls(&sup, snapshot, &under)
        })
        .map_err(Exit::error)?;
    let entries: Vec<Entry> = nodes
        .into_iter()
        .filter_map(|node| entry(root, &under, node))
        .collect();
    if entries.is_empty() {
        return Err(Exit::Error(format!(
            "nothing at {under} in snapshot {} of {}",
            item.dataset.snapshot_id, atom.name
        )));
    }
    if !std::io::stdout().is_terminal() {
        let json = serde_json::to_string_pretty(&entries)
            .map_err(|e| Exit::Error(format!("cannot encode the listing: {e}")))?;
        return cmd::print(&(json + "\n"));
    }
    if !args.long {
        let lines: Vec<[String; 1]> = entries.into_iter().map(|e| [e.path]).collect();
        // No header: one path a line, escaped as table cells are.
        return cmd::print(&cmd::table(&lines));
    }
    let mut rows = vec![["TYPE", "MODE", "SIZE", "MTIME", "PATH"].map(String::from)];
    for e in entries {
        rows.push([
            e.kind,
            format!("{:o}", e.mode & 0o7777),
            e.size.to_string(),
            e.mtime,
            e.path,
        ]);
    }
    cmd::print(&cmd::table(&rows))
}

/// `node` relative to the atom's `root`, if it is `under` or below it
/// (restic also lists the directories leading there), other than the
/// atom's own directory.
fn entry(root: &str, under: &str, node: Node) -> Option<Entry> {
    let inside = node.path == under || node.path.starts_with(&format!("{under}/"));
    if !inside {
        return None;
    }
    let path = node.path.strip_prefix(root)?.trim_start_matches('/');
    if path.is_empty() {
        return None;
    }
    Some(Entry {
        path: path.to_string(),
        kind: node.kind,
        size: node.size,
        mode: node.mode,
        mtime: node.mtime,
    })
}
