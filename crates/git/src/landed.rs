//! Which `ws/…` branches HEAD has landed, and how that was seen (for the post-merge hook):
//! merged (the tip is an ancestor of HEAD), squashed (every file the branch changed is in
//! HEAD's tree as the branch left it, or in the index while a `git merge --squash` waits to
//! be committed), or cherry-picked (every commit of the branch has a patch-id among the
//! commits HEAD gained since the branch forked). [`landed_by_merge`] keeps only what one
//! merge brought in: what HEAD has landed and the HEAD before the merge (`ORIG_HEAD`) had
//! not, so other runs' zero-commit branches (whose tips are old commits of the branch) and
//! branches landed earlier are not counted again.

use super::repo::Ctx;
use super::{GitError, RepoPaths};
use git2::{Oid, Repository, Tree};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

/// How a landed branch was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LandedBy {
    /// The branch tip is an ancestor of HEAD (a merge or a fast-forward).
    Ancestor,
    /// The branch's changes are all in HEAD's tree (or the staged squash): a squash merge.
    Tree,
    /// Every commit of the branch has a patch-id among HEAD's new commits: cherry-picks.
    PatchId,
}

impl LandedBy {
    /// The value to store (`ancestor`, `tree`, `patch-id`).
    pub fn as_str(self) -> &'static str {
        match self {
            LandedBy::Ancestor => "ancestor",
            LandedBy::Tree => "tree",
            LandedBy::PatchId => "patch-id",
        }
    }
}

/// A `ws/…` branch found landed in HEAD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Landed {
    /// Short name, `ws/<run>/<id>`.
    pub branch: String,
    /// Its tip (full SHA).
    pub tip: String,
    pub by: LandedBy,
}

pub(crate) fn merged_ws_branches(
    repo: &RepoPaths,
    worktree: &Path,
) -> Result<Vec<(String, String)>, GitError> {
    Ok(landed_ws_branches(repo, worktree)?
        .into_iter()
        .map(|l| (l.branch, l.tip))
        .collect())
}

pub(crate) fn landed_ws_branches(
    repo: &RepoPaths,
    worktree: &Path,
) -> Result<Vec<Landed>, GitError> {
    landed_since(repo, worktree, None)
}

/// The commit HEAD was at before the merge that just happened in the worktree containing
/// `worktree`: `ORIG_HEAD` (git writes it for every merge, pull and squash merge), else
/// HEAD's previous reflog entry. None when neither exists.
pub(crate) fn head_before_merge(main: &Repository) -> Option<Oid> {
    if let Ok(c) = main
        .revparse_single("ORIG_HEAD")
        .and_then(|o| o.peel_to_commit())
    {
        return Some(c.id());
    }
    let log = main.reflog("HEAD").ok()?;
    let prev = log.get(0)?.id_old();
    (!prev.is_zero()).then_some(prev)
}

/// The `ws/…` branches whose work the merge that just happened in the worktree containing
/// `worktree` brought in: landed in HEAD (as [`landed_ws_branches`] sees it) and not
/// already landed in the HEAD before it ([`head_before_merge`]). A branch whose tip was
/// already in the old HEAD (a zero-commit branch made from it, or one merged earlier) is
/// not counted; nor is a squash whose changes the old tree already had, nor cherry-picks
/// that are not among the commits this merge added. Without a previous HEAD, the same as
/// [`landed_ws_branches`].
pub(crate) fn landed_by_merge(repo: &RepoPaths, worktree: &Path) -> Result<Vec<Landed>, GitError> {
    let main = git2::Repository::discover(worktree)
        .or_else(|_| git2::Repository::open(&repo.root))
        .ctx(|| format!("open the repository at {}", worktree.display()))?;
    let before = head_before_merge(&main);
    landed_since(repo, worktree, before)
}

/// [`landed_ws_branches`], leaving out what `before` (the HEAD before a merge) had landed.
fn landed_since(
    repo: &RepoPaths,
    worktree: &Path,
    before: Option<Oid>,
) -> Result<Vec<Landed>, GitError> {
    // The worktree the merge happened in (HEAD is per worktree; the branches are shared).
    let main = git2::Repository::discover(worktree)
        .or_else(|_| git2::Repository::open(&repo.root))
        .ctx(|| format!("open the repository at {}", worktree.display()))?;
    let head_commit = main
        .head()
        .and_then(|h| h.peel_to_commit())
        .ctx(|| format!("read HEAD of {}", worktree.display()))?;
    let head = head_commit.id();
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
    let history = contained_in(&main, head, branches.iter().map(|b| b.1))?;
    // What the merge added: the commits reachable from HEAD but not from `before`.
    let added: Option<HashSet<Oid>> = match before {
        Some(b) => Some(added_commits(&main, head, b)?),
        None => None,
    };
    let before_tree = match before {
        Some(b) => Some(
            main.find_commit(b)
                .and_then(|c| c.tree())
                .ctx(|| format!("read the tree of {b}"))?,
        ),
        None => None,
    };
    let mut out = Vec::new();
    let mut targets: Option<Vec<Tree<'_>>> = None;
    // HEAD's patch-ids since each fork point, computed once per fork point.
    type Patches = (HashSet<Oid>, HashSet<String>);
    let mut head_patches: std::collections::HashMap<Oid, Patches> = Default::default();
    for (name, tip) in branches {
        if history.contained.contains(&tip) {
            if added.as_ref().is_some_and(|a| !a.contains(&tip)) {
                // Already in the HEAD before this merge: landed earlier, or a branch that
                // never had a commit of its own.
                continue;
            }
            out.push(Landed {
                branch: name,
                tip: tip.to_string(),
                by: LandedBy::Ancestor,
            });
            continue;
        }
        let Some(base) = fork_point(&main, head, tip, &history) else {
            continue;
        };
        let what = || format!("compare {name} with HEAD");
        let tip_tree = main.find_commit(tip).and_then(|c| c.tree()).ctx(what)?;
        let base_tree = main.find_commit(base).and_then(|c| c.tree()).ctx(what)?;
        if tip_tree.id() == base_tree.id() {
            continue;
        }
        let changed = changed_paths(&main, &base_tree, &tip_tree)?;
        if changed.is_empty() {
            continue;
        }
        // The trees to look in: HEAD's, and the index while a squash merge is staged.
        let targets = match &mut targets {
            Some(t) => t,
            None => targets.insert(landing_trees(&main, &head_commit)?),
        };
        let in_tree = |t: &Tree<'_>| changed.iter().all(|p| entry(t, p) == entry(&tip_tree, p));
        if targets.iter().any(in_tree) {
            if before_tree.as_ref().is_some_and(in_tree) {
                // The old HEAD already had these changes.
                continue;
            }
            out.push(Landed {
                branch: name,
                tip: tip.to_string(),
                by: LandedBy::Tree,
            });
            continue;
        }
        // Cherry-picks: only worth computing when HEAD's own new commits touched some of
        // the branch's files.
        if let std::collections::hash_map::Entry::Vacant(slot) = head_patches.entry(base) {
            let hide: Vec<Oid> = std::iter::once(base).chain(before).collect();
            let (ids, paths) = patch_ids(&main, head, &hide, false)?.unwrap_or_default();
            slot.insert((ids.into_iter().collect(), paths));
        }
        let (theirs, head_paths) = &head_patches[&base];
        if !changed.iter().any(|p| head_paths.contains(p)) {
            continue;
        }
        let Some((mine, _)) = patch_ids(&main, tip, &[base], true)? else {
            continue;
        };
        if !mine.is_empty() && mine.iter().all(|p| theirs.contains(p)) {
            out.push(Landed {
                branch: name,
                tip: tip.to_string(),
                by: LandedBy::PatchId,
            });
        }
    }
    out.sort_by(|a, b| (&a.branch, &a.tip).cmp(&(&b.branch, &b.tip)));
    Ok(out)
}

/// HEAD's tree, plus the index's when `git merge --squash` left one staged (SQUASH_MSG).
fn landing_trees<'r>(
    main: &'r Repository,
    head: &git2::Commit<'r>,
) -> Result<Vec<Tree<'r>>, GitError> {
    let what = || "read HEAD's tree".to_string();
    let mut out = vec![head.tree().ctx(what)?];
    if main.path().join("SQUASH_MSG").is_file() {
        if let Ok(mut index) = main.index() {
            if !index.has_conflicts() {
                if let Ok(id) = index.write_tree() {
                    if let Ok(t) = main.find_tree(id) {
                        out.push(t);
                    }
                }
            }
        }
    }
    Ok(out)
}

fn entry(t: &Tree<'_>, path: &str) -> Option<(Oid, i32)> {
    t.get_path(Path::new(path))
        .ok()
        .map(|e| (e.id(), e.filemode()))
}

fn changed_paths(
    main: &Repository,
    from: &Tree<'_>,
    to: &Tree<'_>,
) -> Result<Vec<String>, GitError> {
    let mut out = Vec::new();
    super::treemerge::tree_changes(main, "", Some(from), Some(to), &mut out)
        .ctx(|| "diff a ws/ branch".to_string())?;
    Ok(out.into_iter().map(|(p, _, _)| p).collect())
}

/// Patch-ids, in walk order, and the paths their commits touch.
type PatchIds = (Vec<Oid>, HashSet<String>);

/// Patch-ids of the non-merge commits in `hide..tip`, at most 500, and the paths they
/// touch. For a branch (`whole`), None if it holds a merge commit or more than 500 commits;
/// for HEAD's side, merge commits are skipped and the newest 500 taken.
fn patch_ids(
    main: &Repository,
    tip: Oid,
    hide: &[Oid],
    whole: bool,
) -> Result<Option<PatchIds>, GitError> {
    let what = || format!("compute patch-ids of {tip}");
    let mut walk = main.revwalk().ctx(what)?;
    walk.push(tip).ctx(what)?;
    for h in hide {
        walk.hide(*h).ctx(what)?;
    }
    let mut out = Vec::new();
    let mut paths = HashSet::new();
    for (n, oid) in walk.enumerate() {
        if n >= 500 {
            return Ok(if whole { None } else { Some((out, paths)) });
        }
        let c = main.find_commit(oid.ctx(what)?).ctx(what)?;
        if c.parent_count() != 1 {
            if whole {
                return Ok(None);
            }
            continue;
        }
        let parent = c.parent(0).and_then(|p| p.tree()).ctx(what)?;
        let tree = c.tree().ctx(what)?;
        let diff = main
            .diff_tree_to_tree(Some(&parent), Some(&tree), None)
            .ctx(what)?;
        if diff.deltas().len() == 0 {
            continue;
        }
        for d in diff.deltas() {
            for f in [d.old_file(), d.new_file()] {
                if let Some(p) = f.path_bytes() {
                    paths.insert(String::from_utf8_lossy(p).into_owned());
                }
            }
        }
        out.push(diff.patchid(None).ctx(what)?);
    }
    Ok(Some((out, paths)))
}

/// The commits reachable from `head` and not from `before`: what a merge added.
fn added_commits(main: &Repository, head: Oid, before: Oid) -> Result<HashSet<Oid>, GitError> {
    let what = || format!("walk the commits between {before} and HEAD");
    let mut walk = main.revwalk().ctx(what)?;
    walk.push(head).ctx(what)?;
    walk.hide(before).ctx(what)?;
    walk.map(|o| o.ctx(what)).collect()
}

/// HEAD's history since the common ancestor of HEAD and every tip (`b`), walked once.
struct HeadHistory {
    /// The tips reachable from HEAD.
    contained: HashSet<Oid>,
    /// reach(HEAD) \ reach(b), plus b: where every branch's fork point is.
    since: Option<HashSet<Oid>>,
}

/// Which of `tips` are reachable from `head`, in one pass: with `b` the common ancestor of
/// HEAD and every tip, a tip is contained iff it is `b` or in `reach(head) \ reach(b)`.
fn contained_in(
    main: &Repository,
    head: Oid,
    tips: impl Iterator<Item = Oid>,
) -> Result<HeadHistory, GitError> {
    let tips: HashSet<Oid> = tips.collect();
    let mut all: Vec<Oid> = vec![head];
    all.extend(tips.iter().copied());
    let Ok(b) = main.merge_base_octopus(&all) else {
        // Unrelated histories: ask per tip.
        return Ok(HeadHistory {
            contained: tips
                .into_iter()
                .filter(|&t| t == head || main.graph_descendant_of(head, t).unwrap_or(false))
                .collect(),
            since: None,
        });
    };
    let what = || "walk the history of HEAD".to_string();
    let mut walk = main.revwalk().ctx(what)?;
    walk.push(head).ctx(what)?;
    walk.hide(b).ctx(what)?;
    let mut found: HashSet<Oid> = HashSet::new();
    let mut since: HashSet<Oid> = HashSet::from([b]);
    if tips.contains(&b) {
        found.insert(b);
    }
    for oid in walk {
        let oid = oid.ctx(what)?;
        since.insert(oid);
        if tips.contains(&oid) {
            found.insert(oid);
        }
    }
    Ok(HeadHistory {
        contained: found,
        since: Some(since),
    })
}

/// Where `tip` forked from HEAD's history: the first commit of its history (newest first)
/// that HEAD's walk met; git's merge base when HEAD's history is unknown.
fn fork_point(main: &Repository, head: Oid, tip: Oid, h: &HeadHistory) -> Option<Oid> {
    let Some(since) = &h.since else {
        return main.merge_base(head, tip).ok();
    };
    let mut walk = main.revwalk().ok()?;
    walk.set_sorting(git2::Sort::TIME).ok()?;
    walk.push(tip).ok()?;
    for (n, oid) in walk.enumerate() {
        let oid = oid.ok()?;
        if since.contains(&oid) {
            return Some(oid);
        }
        if n > 10_000 {
            break;
        }
    }
    main.merge_base(head, tip).ok()
}

#[cfg(test)]
mod tests_support {
    use super::*;
    use crate::differential_tests::git_at;
    use std::path::PathBuf;

    pub fn git(dir: &Path, args: &[&str]) -> String {
        let mut full = vec!["-c", "user.name=T", "-c", "user.email=t@t"];
        full.extend_from_slice(args);
        let out = git_at(Path::new("git"), dir, &full);
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn setup() -> (tempfile::TempDir, PathBuf, RepoPaths) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        git(&root, &["init", "-q", "-b", "main"]);
        std::fs::write(root.join("a.txt"), "one\ntwo\nthree\n").unwrap();
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-qm", "base"]);
        for (b, file, text) in [
            ("ws/r/merged", "m.txt", "m\n"),
            ("ws/r/squashed", "s.txt", "s\n"),
            ("ws/r/picked", "p.txt", "p\n"),
            ("ws/r/open", "o.txt", "o\n"),
        ] {
            git(&root, &["checkout", "-q", "-b", b, "main"]);
            std::fs::write(root.join(file), text).unwrap();
            git(&root, &["add", "-A"]);
            git(&root, &["commit", "-qm", b]);
            std::fs::write(root.join(file), format!("{text}more\n")).unwrap();
            git(&root, &["commit", "-qam", "second"]);
        }
        git(&root, &["checkout", "-q", "main"]);
        let paths = RepoPaths::new(root.clone(), root.join(".git"));
        (dir, root, paths)
    }

    pub fn how(paths: &RepoPaths, root: &Path) -> Vec<(String, LandedBy)> {
        landed_ws_branches(paths, root)
            .unwrap()
            .into_iter()
            .map(|l| (l.branch, l.by))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::*;
    use super::*;

    #[test]
    fn merges_squashes_and_cherry_picks_are_recognised() {
        let (_d, root, paths) = setup();
        assert!(how(&paths, &root).is_empty());
        git(
            &root,
            &["merge", "-q", "--no-ff", "-m", "merge", "ws/r/merged"],
        );
        // A squash merge is seen while staged, and once committed.
        git(&root, &["merge", "-q", "--squash", "ws/r/squashed"]);
        let staged = how(&paths, &root);
        assert!(
            staged.contains(&("ws/r/squashed".to_string(), LandedBy::Tree)),
            "{staged:?}"
        );
        git(&root, &["commit", "-qm", "squashed"]);
        // Cherry-picks, then a later edit of the same file: the tree no longer matches, the
        // patch-ids do.
        let picked = git(&root, &["rev-list", "--reverse", "main..ws/r/picked"]);
        for c in picked.lines() {
            git(&root, &["cherry-pick", c]);
        }
        std::fs::write(root.join("p.txt"), "changed later\n").unwrap();
        git(&root, &["commit", "-qam", "later"]);
        assert_eq!(
            how(&paths, &root),
            vec![
                ("ws/r/merged".to_string(), LandedBy::Ancestor),
                ("ws/r/picked".to_string(), LandedBy::PatchId),
                ("ws/r/squashed".to_string(), LandedBy::Tree),
            ]
        );
        // The façade without methods agrees.
        let names: Vec<String> = merged_ws_branches(&paths, &root)
            .unwrap()
            .into_iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(names, ["ws/r/merged", "ws/r/picked", "ws/r/squashed"]);
    }

    #[test]
    fn a_partial_squash_is_not_landed() {
        let (_d, root, paths) = setup();
        // Only one of the branch's two files... here: its file with other content.
        std::fs::write(root.join("s.txt"), "s\n").unwrap();
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-qm", "partial"]);
        assert!(how(&paths, &root).is_empty());
    }
}

#[cfg(test)]
mod by_merge_tests {
    use super::tests_support::*;
    use super::*;

    fn by_merge(paths: &RepoPaths, root: &Path) -> Vec<(String, LandedBy)> {
        landed_by_merge(paths, root)
            .unwrap()
            .into_iter()
            .map(|l| (l.branch, l.by))
            .collect()
    }

    #[test]
    fn only_what_this_merge_brought_in_counts() {
        let (_d, root, paths) = setup();
        // Zero-commit branches of another run, made from main as it is now.
        git(&root, &["branch", "ws/q/empty-1", "main"]);
        git(&root, &["branch", "ws/q/empty-2", "main"]);
        // An earlier merge.
        git(
            &root,
            &["merge", "-q", "--no-ff", "-m", "m1", "ws/r/merged"],
        );
        // Everything landed so far, seen by the whole-history view …
        let all = how(&paths, &root);
        assert_eq!(all.len(), 3, "{all:?}");
        // … but this merge brought in only ws/r/merged.
        assert_eq!(
            by_merge(&paths, &root),
            vec![("ws/r/merged".to_string(), LandedBy::Ancestor)]
        );
        // The next merge: only the squashed branch, staged and then committed.
        git(&root, &["merge", "-q", "--squash", "ws/r/squashed"]);
        assert_eq!(
            by_merge(&paths, &root),
            vec![("ws/r/squashed".to_string(), LandedBy::Tree)]
        );
        git(&root, &["commit", "-qm", "squashed"]);
        // A fast-forward of a branch holding the open branch's commits.
        git(&root, &["checkout", "-q", "-b", "integration", "main"]);
        git(&root, &["merge", "-q", "--no-ff", "-m", "m2", "ws/r/open"]);
        git(&root, &["checkout", "-q", "main"]);
        git(&root, &["merge", "-q", "--ff-only", "integration"]);
        assert_eq!(
            by_merge(&paths, &root),
            vec![("ws/r/open".to_string(), LandedBy::Ancestor)]
        );
    }
}

#[cfg(test)]
mod squash_tests {
    use super::tests_support::*;
    use super::*;

    #[test]
    fn a_staged_fast_forward_squash_is_seen() {
        let (_d, root, paths) = setup();
        git(&root, &["merge", "-q", "--squash", "ws/r/squashed"]);
        let got: Vec<(String, LandedBy)> = landed_ws_branches(&paths, &root)
            .unwrap()
            .into_iter()
            .map(|l| (l.branch, l.by))
            .collect();
        assert_eq!(got, vec![("ws/r/squashed".to_string(), LandedBy::Tree)]);
    }
}
