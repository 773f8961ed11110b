//! Records as they travel: backups, datasets and atoms in the original
//! API's JSON shape (`model`), the further bodies of the metadb API
//! (`api`), a dataset read back and checked on receipt (`checked`), and
//! where a restore puts what it restores (`target`). Plain data that the
//! client, the server, the store and the commands agree on; it imports
//! only `base`.

pub mod api;
pub mod checked;
pub mod model;
pub mod path;
pub mod target;
