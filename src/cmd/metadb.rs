//! `tabacco metadb`: the metadata server (being built; see issue 3).

use crate::cmd::Exit;
use std::path::Path;

/// Where the metadb server's configuration lives unless `--config` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/tabacco/metadb.yml";

pub fn metadb(_config: &Path, _http_addr: Option<&str>) -> Result<(), Exit> {
    Err(Exit::Usage(
        "the metadb server is not available in this build".into(),
    ))
}
