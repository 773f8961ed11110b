//! Backing up: one source's job (`job`), the attempt it makes known
//! (`attempt`), the plan a host publishes (`plan`), the copies its
//! snapshots go to (`copy`), and pipe atoms batched into one snapshot
//! (`batch`).

pub mod attempt;
pub mod batch;
pub mod copy;
pub mod job;
pub mod plan;
