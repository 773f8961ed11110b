//! End-to-end tests: the real `tabacco` binary against real restic
//! repositories, SQLite databases and processes in temporary directories.
//! One test crate, a module per feature.

mod common;
mod config;
mod core;
