//! How a job's end is told: why it failed (`failure`), what it achieved
//! (`outcome`), and the people told of it (`notify`).

pub mod failure;
pub mod notify;
pub mod outcome;
