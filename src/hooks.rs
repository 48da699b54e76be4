//! The post-merge hook: installing it into a repository (between marker lines, keeping any
//! existing hook) and what it does after a merge (record which `ws/…` branches landed).

use crate::error::Error;
use std::path::Path;

/// Install the post-merge hook into the repository containing `cwd`.
pub fn install(cwd: &Path) -> Result<String, Error> {
    let _ = cwd;
    Err(Error::new("failed to install hooks: not implemented yet"))
}
