//! What wakes the scheduler: a signal forwarded by the signal thread, or a
//! worker done with a source. Every thread that sends one imports this
//! module, which imports nothing of the agent's.

/// What wakes the scheduler.
#[derive(Debug)]
pub enum Event {
    /// A signal the agent handles.
    Signal(i32),
    /// A worker is done with this source.
    Finished(String),
}
