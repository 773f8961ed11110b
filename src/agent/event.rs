//! What wakes the scheduler: one of the signals the agent handles, forwarded
//! by the signal thread (a [`crate::base::signal::Forwarder`]), or a worker done
//! with a source. Every thread that sends one imports this module, which
//! imports nothing of the agent's.

/// The signals the agent handles: SIGHUP reloads, SIGUSR1 queues every
/// source, SIGTERM and SIGINT shut down (see the scheduler).
pub const SIGNALS: [i32; 4] = [
    signal_hook::consts::SIGHUP,
    signal_hook::consts::SIGUSR1,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGINT,
];

/// What wakes the scheduler.
#[derive(Debug)]
pub enum Event {
    /// A signal the agent handles.
    Signal(i32),
    /// A worker is done with this source.
    Finished(String),
}
