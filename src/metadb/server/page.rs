//! The console: HTML pages of the fleet for an operator with a browser,
//! rendered on the server from what the metadb holds, linked to each
//! other: the fleet (`fleet`), a host (`host`), a source's history with
//! plots (`source`), a search of atoms with the commands that restore
//! them (`search`), and the sign-in form (`signin`). What they share is
//! `layout`'s; plots are `plot`'s, the size anomaly `anomaly`'s. Reading
//! the store, and who may see what, is `console`'s; the pages only render.

pub mod anomaly;
pub mod fleet;
pub mod host;
pub mod layout;
pub mod plot;
pub mod search;
pub mod signin;
pub mod source;
