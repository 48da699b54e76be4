//! The `ws/<run-id>/…` branches a run leaves: listing them with their tips, telling which
//! are merged into the user's own branches, and deleting them one by one (what
//! `git ws-run --prune-branches` needs from git).

use super::repo::{retry, write_lock, Ctx};
use super::{GitError, Repo};
use git2::{BranchType, Oid, Repository};
use std::collections::HashSet;

/// One `ws/<run-id>/<rest>` branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsBranch {
    /// `ws/<run-id>/<rest>`.
    pub name: String,
    pub run_id: String,
    /// The workstream id (or `integration`, …).
    pub rest: String,
    /// Full SHA of its tip.
    pub tip: String,
}

impl Repo {
    /// Every local `ws/<run-id>/<rest>` branch, sorted by name.
    pub fn ws_branches(&self) -> Result<Vec<WsBranch>, GitError> {
        let what = || "list the ws/ branches".to_string();
        let mut out = Vec::new();
        for r in self.git().references_glob("refs/heads/ws/*").ctx(what)? {
            let r = r.ctx(what)?;
            let (Ok(full), Some(tip)) = (r.name(), r.target()) else {
                continue;
            };
            let Some(name) = full.strip_prefix("refs/heads/") else {
                continue;
            };
            let mut parts = name.splitn(3, '/');
            let (_, Some(run), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            out.push(WsBranch {
                name: name.to_string(),
                run_id: run.to_string(),
                rest: rest.to_string(),
                tip: tip.to_string(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The tips (of `tips`) reachable from HEAD or from any local branch outside `ws/`:
    /// work that landed in the user's own history.
    pub fn merged_into_local(&self, tips: &[String]) -> Result<HashSet<String>, GitError> {
        let git = self.git();
        let mut heads: Vec<Oid> = Vec::new();
        if let Some(h) = git.head().ok().and_then(|h| h.target()) {
            heads.push(h);
        }
        for b in git
            .branches(Some(BranchType::Local))
            .ctx(|| "list local branches".to_string())?
        {
            let (b, _) = b.ctx(|| "read a local branch".to_string())?;
            let is_ws = b
                .name()
                .ok()
                .flatten()
                .is_some_and(|n| n.starts_with("ws/"));
            if let (false, Some(t)) = (is_ws, b.get().target()) {
                heads.push(t);
            }
        }
        heads.sort();
        heads.dedup();
        let wanted: HashSet<Oid> = tips.iter().filter_map(|t| Oid::from_str(t).ok()).collect();
        let found = reachable_from(git, &heads, &wanted)?;
        Ok(found.into_iter().map(|o| o.to_string()).collect())
    }

    /// Delete local branch `name` if it still points at `tip`. Refused (an error) when it
    /// moved since or is checked out in some worktree.
    pub fn delete_branch(&self, name: &str, tip: &str) -> Result<(), GitError> {
        let _guard = write_lock();
        let git = self.git();
        let mut b = git
            .find_branch(name, BranchType::Local)
            .ctx(|| format!("find branch {name}"))?;
        let now = b.get().target().map(|o| o.to_string());
        if now.as_deref() != Some(tip) {
            return Err(GitError::Other(format!(
                "failed to delete branch {name}: it moved (now at {}) since it was listed",
                now.unwrap_or_default()
            )));
        }
        if b.is_head() {
            return Err(GitError::Other(format!(
                "failed to delete branch {name}: it is checked out"
            )));
        }
        retry(|| format!("delete branch {name}"), || b.delete())
    }
}

/// Which of `wanted` are reachable from any of `heads`, in one walk: with `b` the common
/// ancestor of every head and every wanted commit, a wanted commit is reachable iff it is
/// `b` or in `reach(heads) \ reach(b)`. Unrelated histories fall back to one question per
/// commit.
fn reachable_from(
    git: &Repository,
    heads: &[Oid],
    wanted: &HashSet<Oid>,
) -> Result<HashSet<Oid>, GitError> {
    if heads.is_empty() || wanted.is_empty() {
        return Ok(HashSet::new());
    }
    let mut all: Vec<Oid> = heads.to_vec();
    all.extend(wanted.iter().copied());
    let Ok(b) = git.merge_base_octopus(&all) else {
        return Ok(wanted
            .iter()
            .copied()
            .filter(|&t| {
                heads
                    .iter()
                    .any(|&h| h == t || git.graph_descendant_of(h, t).unwrap_or(false))
            })
            .collect());
    };
    let what = || "walk the history of the local branches".to_string();
    let mut walk = git.revwalk().ctx(what)?;
    for &h in heads {
        walk.push(h).ctx(what)?;
    }
    walk.hide(b).ctx(what)?;
    let mut found: HashSet<Oid> = HashSet::new();
    if wanted.contains(&b) {
        found.insert(b);
    }
    for oid in walk {
        let oid = oid.ctx(what)?;
        if wanted.contains(&oid) {
            found.insert(oid);
            if found.len() == wanted.len() {
                break;
            }
        }
    }
    Ok(found)
}
