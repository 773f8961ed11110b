//! Backing up: one source's job (`job`), the attempt it makes known
//! (`attempt`), the plan a host publishes (`plan`), and the copies its
//! snapshots go to (`copy`).

pub mod attempt;
pub mod copy;
pub mod intent;
pub mod job;
pub mod plan;
pub mod tombstone;
