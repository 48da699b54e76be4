//! Settings from git config (`ws.*` keys), read through git2 with the usual precedence
//! (repository, then global, then system).

use super::RepoPaths;

/// The string value of `key`, if set.
pub fn get_string(repo: &RepoPaths, key: &str) -> Option<String> {
    let r = git2::Repository::open(&repo.root).ok()?;
    let cfg = r.config().ok()?.snapshot().ok()?;
    cfg.get_string(key).ok()
}
