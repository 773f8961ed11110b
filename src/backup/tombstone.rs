//! Snapshots that must never be recorded: those of a failed or refused
//! stream (a `min_bytes` too small, restic unable to read it) whose
//! immediate removal failed, perhaps because another restic held the
//! repository's lock. They are listed in `work_dir`, one `ID TAG` a line;
//! `reindex` skips them and the next `prune` forgets them, then drops
//! them from the list. (A failed dump leaves no snapshot at all: see
//! `handler::pipe::save`.)

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The list's file in `work_dir`.
fn file(work_dir: &Path) -> PathBuf {
    work_dir.join("unrecordable-snapshots")
}

/// Adds `snapshots` (tag, snapshot id) to the list, durably.
pub fn add(work_dir: &Path, snapshots: &[(String, String)]) -> io::Result<PathBuf> {
    let path = file(work_dir);
    fs::create_dir_all(work_dir)?;
    let mut out = OpenOptions::new().create(true).append(true).open(&path)?;
    let mut text = String::new();
    for (tag, id) in snapshots {
        text.push_str(&format!("{id} {tag}\n"));
    }
    out.write_all(text.as_bytes())?;
    out.sync_all()?;
    Ok(path)
}

/// The listed snapshots (tag, snapshot id); none if there is no list.
pub fn listed(work_dir: &Path) -> Vec<(String, String)> {
    let text = fs::read_to_string(file(work_dir)).unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(id, tag)| (tag.to_string(), id.to_string()))
        .collect()
}

/// Whether snapshot `id` (full, or restic 0.14's short id) is listed.
pub fn is_listed(listed: &[(String, String)], id: &str) -> bool {
    listed.iter().any(|(_, l)| {
        l == id || (id.len() >= 8 && (l.starts_with(id) || id.starts_with(l.as_str())))
    })
}

/// Drops `gone` from the list (the file goes when it is empty).
pub fn remove(work_dir: &Path, gone: &[(String, String)]) -> io::Result<()> {
    let left: Vec<(String, String)> = listed(work_dir)
        .into_iter()
        .filter(|s| !gone.contains(s))
        .collect();
    let path = file(work_dir);
    if left.is_empty() {
        return match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let tmp = path.with_extension("new");
    let text: String = left
        .iter()
        .map(|(tag, id)| format!("{id} {tag}\n"))
        .collect();
    fs::write(&tmp, text)?;
    fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_until_removed() {
        let dir = std::env::temp_dir().join(format!("tabacco-tombstone-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let a = ("dataset:a".to_string(), "0123456789abcdef".to_string());
        let b = ("dataset:b".to_string(), "fedcba9876543210".to_string());
        add(&dir, std::slice::from_ref(&a)).unwrap();
        add(&dir, std::slice::from_ref(&b)).unwrap();
        let listed = listed(&dir);
        assert_eq!(listed, [a.clone(), b.clone()]);
        assert!(is_listed(&listed, "01234567"), "a short id");
        assert!(!is_listed(&listed, "01234568"));
        remove(&dir, &[a]).unwrap();
        assert_eq!(super::listed(&dir), std::slice::from_ref(&b));
        remove(&dir, &[b]).unwrap();
        assert!(!file(&dir).exists());
        let _ = fs::remove_dir_all(&dir);
    }
}
