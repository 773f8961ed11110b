//! End-to-end tests: the real `tabacco` binary against real restic
//! repositories, SQLite databases and processes in temporary directories.
//! One test crate, a module per feature.

#![allow(clippy::unwrap_used)]

mod agent;
mod batching;
mod browser;
mod common;
mod compat;
mod config;
mod console;
mod copies;
mod core;
mod crash;
mod databases;
mod destinations;
mod files;
mod firstmin;
mod firstweek;
mod flood;
mod hardening;
mod health;
mod lifecycle;
mod maintainer;
mod metadb;
mod notify;
mod outputs;
mod packaging;
mod peers;
mod remote;
mod restore;
mod retention;
mod scale;
mod servers;
mod shards;
mod soak;
mod trust;
mod versions;
mod words;
