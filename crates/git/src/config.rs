//! Settings from git config (`ws.*` keys), read through git2 with the usual precedence
//! (repository, then global, then system). [`Config`] is one snapshot, read once per
//! command; the free functions are for one-off reads.

use super::RepoPaths;
use ws_core::Invalid;

/// One snapshot of the git config.
pub struct Config(git2::Config);

impl Config {
    pub(crate) fn from_snapshot(c: git2::Config) -> Config {
        Config(c)
    }

    /// The string value of `key`, if set.
    pub fn string(&self, key: &str) -> Option<String> {
        self.0.get_string(key).ok()
    }

    /// Every value of a multi-valued `key` (`git config --add`), in order; empty if unset.
    pub fn strings(&self, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(mut entries) = self.0.multivar(key, None) {
            while let Some(Ok(e)) = entries.next() {
                if let Ok(v) = e.value() {
                    out.push(v.to_string());
                }
            }
        }
        out
    }

    /// The boolean value of `key` (git's spellings: true/false, yes/no, on/off, 1/0), if
    /// set; an error sentence naming the key when it is set to something else.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, Invalid> {
        let Some(raw) = self.string(key) else {
            return Ok(None);
        };
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" | "" => Ok(Some(true)),
            "false" | "no" | "off" | "0" => Ok(Some(false)),
            _ => Err(Invalid::new(format!(
                "git config {key} = {raw:?} is not a boolean (true or false)"
            ))),
        }
    }
}

/// The string value of `key`, if set (opens the repository for this one read).
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
