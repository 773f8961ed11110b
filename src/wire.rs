//! Records as they travel: backups, datasets and atoms in the original
//! API's JSON shape (`model`), and the further bodies of the metadb API
//! (`api`). Plain data that the client, the server, the store and the
//! commands agree on; it imports only `base`.

pub mod api;
pub mod model;
pub mod path;
pub mod target;
