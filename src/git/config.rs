//! Settings from git config (`ws.*` keys), read through git2 with the usual precedence
//! (repository, then global, then system).

use super::RepoPaths;

/// The string value of `key`, if set.
pub fn get_string(repo: &RepoPaths, key: &str) -> Option<String> {
    let r = git2::Repository::open(&repo.root).ok()?;
    let cfg = r.config().ok()?.snapshot().ok()?;
    cfg.get_string(key).ok()
}

/// The hooks directory: `core.hooksPath` (relative to the main worktree root when
/// relative, `~/` expanded) or `<common dir>/hooks`.
pub fn hooks_dir(repo: &RepoPaths) -> std::path::PathBuf {
    let configured = git2::Repository::open(&repo.root)
        .ok()
        .and_then(|r| r.config().ok())
        .and_then(|mut c| c.snapshot().ok())
        .and_then(|c| c.get_path("core.hooksPath").ok());
    match configured {
        Some(p) if p.is_absolute() => p,
        Some(p) => repo.root.join(p),
        None => repo.common_dir.join("hooks"),
    }
}
