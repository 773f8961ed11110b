//! The JSON restic prints and tabacco reads: the `status` and `summary`
//! lines of `backup --json`, the snapshots of `snapshots --json` and
//! `forget --json`, the nodes of `ls --json`, and how a whole JSON answer
//! is read off a pipe. Which command prints what, and when, is the
//! [`Repo`](super::Repo) operations'.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::BufReader;

/// The `summary` line of `restic backup --json`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct Summary {
    pub snapshot_id: String,
    #[serde(default)]
    pub total_files_processed: i64,
    #[serde(default)]
    pub total_bytes_processed: i64,
    #[serde(default)]
    pub data_added: i64,
    #[serde(default)]
    pub total_duration: f64,
    /// Set when restic exited 3: saved, but some files were unreadable.
    #[serde(skip)]
    pub incomplete: bool,
}

/// A `status` line of `restic backup --json`: progress of a running backup.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
pub struct BackupProgress {
    #[serde(default)]
    pub percent_done: f64,
    #[serde(default)]
    pub files_done: u64,
    #[serde(default)]
    pub total_files: u64,
    #[serde(default)]
    pub bytes_done: u64,
    #[serde(default)]
    pub total_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_elapsed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_remaining: Option<u64>,
}

/// A line of `restic backup --json`.
#[derive(Deserialize)]
#[serde(tag = "message_type", rename_all = "lowercase")]
pub(super) enum Message {
    Status(BackupProgress),
    Summary(Summary),
    #[serde(other)]
    Other,
}

/// A snapshot as `restic snapshots --json` lists it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Snapshot {
    /// The full id (every version lists it).
    #[serde(default)]
    pub id: String,
    pub short_id: String,
    /// RFC 3339 with the local offset and nanoseconds.
    pub time: String,
    pub hostname: String,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// A file, directory or other node as `restic ls --json` lists it.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub struct Node {
    /// Absolute, inside the snapshot.
    pub path: String,
    /// `file`, `dir`, `symlink`, ...
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub size: u64,
    /// RFC 3339, local offset.
    #[serde(default)]
    pub mtime: String,
    /// Go's file mode bits.
    #[serde(default)]
    pub mode: u32,
}

/// Reads the JSON a restic command printed. Buffered: unbuffered,
/// serde_json reads a pipe a byte per read(2), 5,000,000 system calls for
/// a list of 10,000 snapshots, a third of a reindex's time.
pub(super) fn parse_json<T: DeserializeOwned>(out: impl std::io::Read) -> serde_json::Result<T> {
    serde_json::from_reader(BufReader::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_read_in_blocks_not_bytes() {
        /// Counts the reads made of it.
        struct Counted<'a>(&'a [u8], usize);
        impl std::io::Read for Counted<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.1 += 1;
                self.0.read(buf)
            }
        }
        let one = r#"{"id":"ab","short_id":"ab","time":"2026-01-01T00:00:00Z","paths":["/x"],"hostname":"h","tags":["tabacco"]}"#;
        let listed = format!("[{}]", vec![one; 1000].join(","));
        let mut out = Counted(listed.as_bytes(), 0);
        let snapshots = parse_json::<Option<Vec<Snapshot>>>(&mut out)
            .unwrap()
            .unwrap();
        assert_eq!(snapshots.len(), 1000);
        assert!(out.1 < 100, "{} reads of {} bytes", out.1, listed.len());
        assert_eq!(
            parse_json::<Option<Vec<Snapshot>>>(&b"null"[..]).unwrap(),
            None
        );
    }

    #[test]
    fn parses_backup_json_from_restic_0_14() {
        let status = r#"{"message_type":"status","percent_done":0.5,"total_files":4,"files_done":2,"total_bytes":100,"bytes_done":50}"#;
        let summary = r#"{"message_type":"summary","files_new":1,"files_changed":0,"files_unmodified":0,"dirs_new":1,"dirs_changed":0,"dirs_unmodified":0,"data_blobs":1,"tree_blobs":2,"data_added":537,"total_files_processed":1,"total_bytes_processed":3,"total_duration":0.210578189,"snapshot_id":"bcd489eb"}"#;
        let Ok(Message::Status(s)) = serde_json::from_str(status) else {
            panic!("status")
        };
        assert_eq!((s.files_done, s.bytes_done, s.percent_done), (2, 50, 0.5));
        let Ok(Message::Summary(s)) = serde_json::from_str(summary) else {
            panic!("summary")
        };
        assert_eq!(s.snapshot_id, "bcd489eb");
        assert_eq!(
            (
                s.total_files_processed,
                s.total_bytes_processed,
                s.data_added
            ),
            (1, 3, 537)
        );
        assert!(matches!(
            serde_json::from_str(r#"{"message_type":"verbose_status"}"#),
            Ok(Message::Other)
        ));
    }
}
