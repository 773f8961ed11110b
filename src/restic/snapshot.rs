//! How tabacco names what it stored in restic: a recorded dataset's
//! snapshot (by id, or by its dataset tag where an id cannot be trusted),
//! and where a pipe atom's stream lives inside its snapshot. The tags
//! themselves are `wire::model`'s; the commands that use these names are
//! the [`Repo`](super::Repo) operations'.

use crate::wire::model::Dataset;

/// Where the stream of pipe atom `atom` lives in its snapshot, without the
/// leading `/`: the atom's full name (`users/db`, what existing deployments
/// and `restic dump` by hand expect) when `nested`; else, for restic 0.18.0,
/// which cannot save a `--stdin-filename` holding a `/`, the name with `%`
/// and `/` percent-encoded (`users%2Fdb`). Both backup and dump derive the
/// name here.
pub fn stdin_filename(atom: &str, nested: bool) -> String {
    if nested || !atom.contains('/') {
        atom.to_string()
    } else {
        atom.replace('%', "%25").replace('/', "%2F")
    }
}

/// How restore, dump and verify name a recorded dataset's snapshot: by id,
/// which restic resolves by listing snapshot file names; by the dataset's
/// tag (`latest --tag`, which reads every snapshot) only when the id is
/// missing or a short id restic finds ambiguous.
pub struct SnapshotRef {
    id: String,
    tag: String,
}

impl SnapshotRef {
    /// The snapshot of `dataset`.
    pub fn of(dataset: &Dataset) -> SnapshotRef {
        SnapshotRef {
            id: dataset.snapshot_id.clone(),
            tag: dataset.tag(),
        }
    }

    /// The snapshot of `dataset` by its tag alone: in a copy, where
    /// `restic copy` gave it another id.
    pub fn by_tag(dataset: &Dataset) -> SnapshotRef {
        SnapshotRef {
            id: String::new(),
            tag: dataset.tag(),
        }
    }

    /// restic's arguments naming the snapshot: by id unless `by_tag` or the
    /// recorded id is not one.
    pub(super) fn args(&self, by_tag: bool) -> Vec<String> {
        if by_tag || !self.has_id() {
            vec!["latest".into(), "--tag".into(), self.tag.clone()]
        } else {
            vec![self.id.clone()]
        }
    }

    fn has_id(&self) -> bool {
        self.id.len() >= 8 && self.id.chars().all(|c| c.is_ascii_hexdigit())
    }
}

/// Whether `id` is a whole snapshot id (64 hex digits), as restic 0.15 and
/// newer report it, rather than 0.14's short one.
pub(super) fn is_full_id(id: &str) -> bool {
    id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_atoms_are_stored_nested_unless_restic_cannot() {
        assert_eq!(stdin_filename("sql/db1", true), "sql/db1");
        assert_eq!(stdin_filename("sql/db1", false), "sql%2Fdb1");
        assert_eq!(stdin_filename("a%2F/b", false), "a%252F%2Fb");
        assert_eq!(stdin_filename("sql", false), "sql");
        let dataset = |snapshot_id: &str| {
            let mut d = Dataset::new("d1".into(), "s".into(), Vec::new());
            d.snapshot_id = snapshot_id.into();
            SnapshotRef::of(&d)
        };
        assert_eq!(dataset("bcd489eb").args(false), ["bcd489eb"]);
        assert_eq!(
            dataset("bcd489eb").args(true),
            ["latest", "--tag", "tabacco:dataset=d1"]
        );
        assert_eq!(
            dataset("").args(false),
            ["latest", "--tag", "tabacco:dataset=d1"]
        );
        assert!(is_full_id(&"a".repeat(64)) && !is_full_id("bcd489eb"));
    }
}
