//! Keeping a repository sound: who may maintain it (`lease`), retention
//! (`prune`), and proof that what it holds reads back (`proof`,
//! `verify`).

pub mod lease;
pub mod proof;
pub mod prune;
pub mod verify;
