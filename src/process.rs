//! Child processes: running configured commands and restic (`shell`),
//! connecting producers to consumers (`shell::pipe`), and the signals that
//! stop what one-shot commands started (`interrupt`).

pub mod interrupt;
pub mod shell;
