//! Keeping a repository sound: who may maintain it (`lease`), retention
//! (`prune`), and proof that what it holds reads back (`proof`,
//! `verify`) and that a dump loads (`load`).

pub mod lease;
mod load;
pub mod proof;
pub mod prune;
pub mod verify;
