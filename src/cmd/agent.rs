//! `tabacco agent`: the backup daemon (being built; see issue 4).

use crate::cmd::Exit;
use std::path::Path;

pub fn agent(_config: &Path, _http_addr: Option<&str>) -> Result<(), Exit> {
    Err(Exit::Usage(
        "the agent is not available in this build".into(),
    ))
}
