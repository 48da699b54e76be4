//! Which `ws/…` branches a commit has landed (for the post-merge hook).

use super::repo::Ctx;
use super::{GitError, RepoPaths};
use git2::{Oid, Repository};
use std::collections::HashSet;
use std::path::Path;

pub(crate) fn merged_ws_branches(
    repo: &RepoPaths,
    worktree: &Path,
) -> Result<Vec<(String, String)>, GitError> {
    // The worktree the merge happened in (HEAD is per worktree; the branches are shared).
    let main = git2::Repository::discover(worktree)
        .or_else(|_| git2::Repository::open(&repo.root))
        .ctx(|| format!("open the repository at {}", worktree.display()))?;
    let head = main
        .head()
        .and_then(|h| h.peel_to_commit())
        .ctx(|| format!("read HEAD of {}", worktree.display()))?
        .id();
    let mut branches = Vec::new();
    for r in main
        .references_glob("refs/heads/ws/*")
        .ctx(|| "list ws/ branches".to_string())?
    {
        let r = r.ctx(|| "read a ws/ branch".to_string())?;
        if let (Ok(name), Some(tip)) = (r.name(), r.target()) {
            if let Some(short_name) = name.strip_prefix("refs/heads/") {
                branches.push((short_name.to_string(), tip));
            }
        }
    }
    if branches.is_empty() {
        return Ok(Vec::new());
    }
    let contained = contained_in(&main, head, branches.iter().map(|b| b.1))?;
    let mut out: Vec<_> = branches
        .into_iter()
        .filter(|(_, tip)| contained.contains(tip))
        .map(|(name, tip)| (name, tip.to_string()))
        .collect();
    out.sort();
    Ok(out)
}

/// Which of `tips` are reachable from `head`, in one pass: with `b` the common ancestor of
/// HEAD and every tip, a tip is contained iff it is `b` or in `reach(head) \ reach(b)`.
fn contained_in(
    main: &Repository,
    head: Oid,
    tips: impl Iterator<Item = Oid>,
) -> Result<HashSet<Oid>, GitError> {
    let tips: HashSet<Oid> = tips.collect();
    let mut all: Vec<Oid> = vec![head];
    all.extend(tips.iter().copied());
    let Ok(b) = main.merge_base_octopus(&all) else {
        // Unrelated histories: ask per tip.
        return Ok(tips
            .into_iter()
            .filter(|&t| t == head || main.graph_descendant_of(head, t).unwrap_or(false))
            .collect());
    };
    let what = || "walk the history of HEAD".to_string();
    let mut walk = main.revwalk().ctx(what)?;
    walk.push(head).ctx(what)?;
    walk.hide(b).ctx(what)?;
    let mut found: HashSet<Oid> = HashSet::new();
    if tips.contains(&b) {
        found.insert(b);
    }
    for oid in walk {
        let oid = oid.ctx(what)?;
        if tips.contains(&oid) {
            found.insert(oid);
            if found.len() == tips.len() {
                break;
            }
        }
    }
    Ok(found)
}
