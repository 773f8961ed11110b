//! Where backups are recorded and found: the embedded SQLite store in
//! `work_dir` when no `metadb.url` is configured. Commands talk to this
//! facade and never to the store directly, so a remote metadb can take its
//! place.

pub mod store;

use crate::config::Config;
use crate::model::{Backup, Dataset, FindRequest};
use std::fmt;
use std::sync::{Mutex, PoisonError};
use store::Store;

/// A metadb failure.
#[derive(Debug)]
pub enum Error {
    Store(store::Error),
    /// Configuration the metadb cannot work with.
    Setup(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Store(e) => write!(f, "metadb: {e}"),
            Error::Setup(e) => write!(f, "metadb: {e}"),
        }
    }
}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Error {
        Error::Store(e)
    }
}

/// The metadb a command records into and reads from.
pub enum Metadb {
    Embedded(Mutex<Store>),
}

impl Metadb {
    /// Opens the metadb the configuration names.
    pub fn open(config: &Config) -> Result<Metadb, Error> {
        if let Some(remote) = &config.metadb {
            return Err(Error::Setup(format!(
                "remote metadb {} is not supported by this build",
                remote.url
            )));
        }
        let path = config.embedded_db_path();
        std::fs::create_dir_all(&config.work_dir).map_err(|e| {
            Error::Setup(format!(
                "cannot create work_dir {}: {e}",
                config.work_dir.display()
            ))
        })?;
        Ok(Metadb::Embedded(Mutex::new(Store::open(&path)?)))
    }

    /// Records one dataset of `backup`.
    pub fn add_dataset(&self, backup: &Backup, dataset: &Dataset) -> Result<(), Error> {
        match self {
            Metadb::Embedded(store) => {
                let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(store.add_dataset(backup, dataset)?)
            }
        }
    }

    /// Backups holding atoms that match `request`, newest first.
    pub fn find_atoms(&self, request: &FindRequest) -> Result<Vec<Backup>, Error> {
        match self {
            Metadb::Embedded(store) => {
                let store = store.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(store.find_atoms(request)?)
            }
        }
    }
}
