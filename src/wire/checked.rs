//! A recorded dataset as it is read back to restore or read from, checked
//! once on receipt (from a find or a restore request): any host, or anyone
//! with the database file, may have written it, and its atoms' names and
//! paths become restic includes, values in restore commands and places to
//! read files back from. Only a [`Checked`] dataset is restored, dumped,
//! listed or drilled, so none of them checks again and none can skip it.

use crate::base::name;
use crate::wire::model::{Atom, Backup, Dataset, RestoreItem};
use std::fmt;
use std::path::{Component, Path};

/// A dataset of a backup whose atoms all have valid names, and paths (where
/// they have one) that are absolute and free of `.` and `..`, so that none
/// leads outside what was backed up.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked(RestoreItem);

/// A record refused by the check, with why.
#[derive(Clone, Debug)]
pub struct Refused {
    /// The dataset as received.
    pub item: Box<RestoreItem>,
    /// The atom refused, as recorded.
    pub atom: String,
    why: Why,
}

#[derive(Clone, Debug)]
enum Why {
    /// Its name, as [`name::validate`] says.
    Name(String),
    Path(String),
}

impl Checked {
    /// `item`, if each of its atoms passes the check.
    pub fn new(item: RestoreItem) -> Result<Checked, Refused> {
        let refused = item.dataset.atoms.iter().find_map(|atom| {
            let why = match (name::validate(&atom.name), &atom.path) {
                (Err(e), _) => Why::Name(e),
                (Ok(()), Some(path)) if !is_safe(path) => Why::Path(path.clone()),
                (Ok(()), _) => return None,
            };
            Some((atom.name.clone(), why))
        });
        match refused {
            None => Ok(Checked(item)),
            Some((atom, why)) => Err(Refused {
                item: Box::new(item),
                atom,
                why,
            }),
        }
    }

    /// `atom` of `dataset` of `backup` alone, checked, and that atom.
    pub fn one(
        backup: &Backup,
        dataset: &Dataset,
        atom: &Atom,
    ) -> Result<(Checked, Atom), Refused> {
        let item = RestoreItem {
            backup: Backup {
                datasets: Vec::new(),
                ..backup.clone()
            },
            dataset: Dataset {
                atoms: vec![atom.clone()],
                ..dataset.clone()
            },
        };
        Checked::new(item).map(|checked| (checked, atom.clone()))
    }

    /// The backup and the dataset, with the atoms checked.
    pub fn item(&self) -> &RestoreItem {
        &self.0
    }

    /// The record, to carry on (in a restore request, which its receiver
    /// checks again).
    pub fn into_item(self) -> RestoreItem {
        self.0
    }
}

/// Whether a recorded `path` is absolute and plain.
fn is_safe(path: &str) -> bool {
    let p = Path::new(path);
    p.is_absolute()
        && !p
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match &self.why {
            Why::Name(e) => write!(f, "refusing record: atom {e}"),
            Why::Path(path) => write!(
                f,
                "refusing record: atom {} has unsafe path {path:?}",
                self.atom
            ),
        }
    }
}

impl std::error::Error for Refused {}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, path: Option<&str>) -> RestoreItem {
        let atom = Atom {
            name: name.into(),
            path: path.map(String::from),
        };
        RestoreItem {
            backup: Backup {
                id: "b".into(),
                timestamp: String::new(),
                host: "h".into(),
                datasets: Vec::new(),
            },
            dataset: Dataset::new("d".into(), "sql".into(), vec![atom]),
        }
    }

    #[test]
    fn recorded_names_and_paths_must_be_safe() {
        assert!(Checked::new(item("sql/db1", None)).is_ok());
        assert!(Checked::new(item("sql/db1", Some("/srv/db"))).is_ok());
        for bad in ["../escaped", "db", "/srv/../etc", "/srv/db/..", ""] {
            let refused = Checked::new(item("sql/db1", Some(bad))).unwrap_err();
            assert_eq!(
                refused.to_string(),
                format!("refusing record: atom sql/db1 has unsafe path {bad:?}")
            );
        }
        let refused = Checked::new(item("sql/../db1", None)).unwrap_err();
        assert!(refused
            .to_string()
            .starts_with("refusing record: atom invalid name \"sql/../db1\""));
        assert_eq!(refused.item.dataset.atoms[0].name, "sql/../db1");
    }
}
