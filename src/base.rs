//! The leaves: small concepts that import nothing of tabacco's but each
//! other (times, names, counts, schedules, tokens, threads that tick).
//! Every other layer may use them; they know nothing of backups.

pub mod addr;
pub mod count;
pub mod form;
pub mod glob;
pub mod html;
pub mod logger;
pub mod name;
pub mod periodic;
pub mod place;
pub mod queue;
pub mod quote;
pub mod retention;
pub mod schedule;
pub mod seed;
pub mod signal;
pub mod size;
pub mod slots;
pub mod suggest;
pub mod time;
pub mod token;
pub mod uri;
pub mod visible;
pub mod width;
pub mod yaml;
