//! One workstream in an agent worktree: preparing its branch at the base (forced, cleaned)
//! and collecting what the agent did (HEAD repair, auto-commit of leftovers, commits, diff).

use super::include::copy_worktree_includes;
use super::repo::{canon, open_main, parse_oid, retry, short, write_lock, Ctx};
use super::slots::{
    clear_stale_locks, ensure_worktree, remove_path, worktree_gitdir, worktree_name,
};
use super::{Collected, GitError, PrepareOptions, RepoPaths};
use crate::model::{ChangeKind, FileChange};
use git2::build::CheckoutBuilder;
use git2::{
    Delta, DiffFindOptions, IndexAddOption, Oid, Patch, Repository, Signature, Sort, Status,
    StatusOptions,
};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

#[cfg(test)]
thread_local! {
    /// How many times `prepare_branch` fell back to the full checkout on this thread.
    pub(crate) static FULL_SWITCHES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

pub(crate) fn prepare_branch(
    repo: &RepoPaths,
    worktree: &Path,
    branch: &str,
    base_sha: &str,
    opts: &PrepareOptions,
) -> Result<(), GitError> {
    let base = parse_oid(base_sha)?;
    let refname = branch_refname(branch)?;
    let name = worktree_name(worktree)?;
    // ensure_worktree takes the write lock itself for the shared refs it touches.
    ensure_worktree(repo, &name, worktree, base)?;
    let wt = open_worktree(worktree)?;
    // Bring the files to the base while HEAD still names the previous workstream's tip:
    // only the paths that differ are touched (see `switch_files_to_base`).
    let switched = switch_files_to_base(&wt, worktree, base, &opts.keep_ignored)?;
    {
        let _guard = write_lock();
        // A stale ref lock on our own branch (a crashed earlier attempt) would block us.
        remove_path(&repo.common_dir.join(format!("{refname}.lock")))?;
        wt.cleanup_state().ctx(|| {
            format!(
                "clear merge/rebase state in worktree {}",
                worktree.display()
            )
        })?;
        // Detach first: the branch may be checked out right here (resume after a crash).
        retry(
            || format!("detach HEAD in worktree {}", worktree.display()),
            || wt.set_head_detached(base),
        )?;
        let exists = wt.find_reference(&refname).is_ok();
        if exists {
            if let Some(other) = checked_out_elsewhere(repo, &refname, &name) {
                return Err(GitError(format!(
                    "failed to reset branch {branch} to the base: it is checked out in {other}"
                )));
            }
        }
        // HEAD is detached here, so the branch can be (re)set before it is checked out.
        retry(
            || {
                let verb = if exists { "reset" } else { "create" };
                format!("{verb} branch {branch} at {}", short(base))
            },
            || {
                let msg = if exists {
                    "git-ws: reset to base".to_string()
                } else {
                    format!("branch: Created from {base}")
                };
                wt.reference(&refname, base, exists, &msg).map(|_| ())
            },
        )?;
        retry(
            || {
                format!(
                    "check out branch {branch} in worktree {}",
                    worktree.display()
                )
            },
            || wt.set_head(&refname),
        )?;
    }
    if switched {
        return copy_worktree_includes(repo, worktree);
    }
    #[cfg(test)]
    FULL_SWITCHES.with(|n| n.set(n.get() + 1));

    // The general path: a forced checkout of the base tree over the whole worktree (the
    // index stat cache keeps it from rewriting unchanged files), then removal of every
    // untracked and ignored leftover, and a check that nothing tracked still differs.
    let mut co = CheckoutBuilder::new();
    co.force().remove_untracked(true).remove_ignored(false);
    retry(
        || format!("check out {branch} in worktree {}", worktree.display()),
        || wt.checkout_head(Some(&mut co)),
    )?;
    clean_leftovers(&wt, worktree, &opts.keep_ignored)?;
    copy_worktree_includes(repo, worktree)
}

/// Switch the worktree's files and index from its current HEAD (the previous workstream's
/// tip, everything committed by `collect`) to `base`, touching only what differs: one
/// status pass (untracked and ignored directories are not descended into) finds leftovers,
/// which are removed (except `keep_ignored`), and modified or deleted tracked files; a
/// tree-to-tree diff HEAD..base finds the files that change; a forced checkout limited to
/// exactly those paths rewrites them, and each one is checked afterwards. Returns false
/// (having removed only leftovers) when the worktree is in a state this does not handle —
/// no readable HEAD, staged changes, conflicts, type changes, a path that still differs —
/// so the caller falls back to the full checkout.
fn switch_files_to_base(
    wt: &Repository,
    worktree: &Path,
    base: Oid,
    keep_ignored: &[String],
) -> Result<bool, GitError> {
    let Some(head_tree) = wt.head().ok().and_then(|h| h.peel_to_tree().ok()) else {
        return Ok(false);
    };
    let what = || format!("switch worktree {} to {}", worktree.display(), short(base));
    let base_commit = wt.find_commit(base).ctx(what)?;
    let base_tree = base_commit.tree().ctx(what)?;
    let mut so = StatusOptions::new();
    so.include_untracked(true)
        .include_ignored(true)
        .recurse_untracked_dirs(false)
        .recurse_ignored_dirs(false)
        .exclude_submodules(false)
        .renames_head_to_index(false)
        .renames_index_to_workdir(false);
    let statuses = wt.statuses(Some(&mut so)).ctx(what)?;
    let staged = Status::INDEX_NEW
        | Status::INDEX_MODIFIED
        | Status::INDEX_DELETED
        | Status::INDEX_RENAMED
        | Status::INDEX_TYPECHANGE
        | Status::CONFLICTED
        | Status::WT_TYPECHANGE
        | Status::WT_RENAMED
        | Status::WT_UNREADABLE;
    if statuses.iter().any(|e| e.status().intersects(staged)) {
        return Ok(false);
    }
    let mut paths: Vec<Vec<u8>> = Vec::new();
    for entry in statuses.iter() {
        let rel = Path::new(OsStr::from_bytes(entry.path_bytes()));
        let status = entry.status();
        if status.contains(Status::IGNORED) {
            if !is_kept(rel, keep_ignored) {
                remove_in(worktree, rel)?;
            }
        } else if status == Status::WT_NEW {
            remove_in(worktree, rel)?;
        } else if status != Status::CURRENT {
            paths.push(entry.path_bytes().to_vec());
        }
    }
    drop(statuses);
    let diff = wt
        .diff_tree_to_tree(Some(&head_tree), Some(&base_tree), None)
        .ctx(what)?;
    for delta in diff.deltas() {
        for f in [delta.old_file(), delta.new_file()] {
            if let Some(p) = f.path_bytes() {
                paths.push(p.to_vec());
            }
        }
    }
    paths.sort();
    paths.dedup();
    if paths.is_empty() {
        return Ok(true);
    }
    let mut co = CheckoutBuilder::new();
    co.force()
        .remove_untracked(true)
        .remove_ignored(false)
        .disable_pathspec_match(true);
    for p in &paths {
        co.path(p.as_slice());
    }
    retry(what, || {
        wt.checkout_tree(base_tree.as_object(), Some(&mut co))
    })?;
    // Every path touched must now match the base exactly, in the index and on disk (HEAD
    // still names the previous tip, so index-vs-HEAD differences are expected).
    let index = wt.index().ctx(what)?;
    let workdir_differs = Status::WT_NEW
        | Status::WT_MODIFIED
        | Status::WT_DELETED
        | Status::WT_TYPECHANGE
        | Status::WT_RENAMED
        | Status::WT_UNREADABLE
        | Status::CONFLICTED;
    for p in &paths {
        let rel = Path::new(OsStr::from_bytes(p));
        let want = base_tree.get_path(rel).ok().map(|e| (e.id(), e.filemode()));
        let have = index.get_path(rel, 0).map(|e| (e.id, e.mode as i32));
        if want != have {
            return Ok(false);
        }
        let on_disk = std::fs::symlink_metadata(worktree.join(rel)).is_ok();
        if want.is_none() {
            if on_disk {
                return Ok(false);
            }
        } else if !on_disk
            || wt
                .status_file(rel)
                .map_or(true, |st| st.intersects(workdir_differs))
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether an ignored path lies under one of the top-level names kept between workstreams.
fn is_kept(rel: &Path, keep_ignored: &[String]) -> bool {
    let top = rel.components().next().and_then(|c| match c {
        Component::Normal(n) => n.to_str(),
        _ => None,
    });
    top.is_some_and(|t| keep_ignored.iter().any(|k| k.trim_end_matches('/') == t))
}

/// Where `refname` is checked out other than in worktree `ours` (the main worktree or
/// another linked worktree), read straight from the HEAD files.
fn checked_out_elsewhere(repo: &RepoPaths, refname: &str, ours: &str) -> Option<String> {
    let points_here = |head: &Path| {
        std::fs::read_to_string(head)
            .is_ok_and(|s| s.trim().strip_prefix("ref:").map(str::trim) == Some(refname))
    };
    if points_here(&repo.common_dir.join("HEAD")) {
        return Some(format!("the main worktree {}", repo.root.display()));
    }
    let dirs = std::fs::read_dir(repo.common_dir.join("worktrees")).ok()?;
    dirs.flatten()
        .filter(|d| d.file_name().to_str() != Some(ours))
        .find(|d| points_here(&d.path().join("HEAD")))
        .map(|d| format!("worktree {}", d.file_name().to_string_lossy()))
}

/// Remove what the checkout left that is not in the base tree: untracked and ignored files
/// and directories (except ignored top-level names in `keep_ignored`), nested repositories
/// included. Errors if a tracked file still differs afterwards.
fn clean_leftovers(
    wt: &Repository,
    worktree: &Path,
    keep_ignored: &[String],
) -> Result<(), GitError> {
    let mut so = StatusOptions::new();
    so.include_untracked(true)
        .include_ignored(true)
        .recurse_untracked_dirs(false)
        .recurse_ignored_dirs(false)
        .exclude_submodules(false)
        .renames_head_to_index(false)
        .renames_index_to_workdir(false);
    let statuses = wt
        .statuses(Some(&mut so))
        .ctx(|| format!("read the status of worktree {}", worktree.display()))?;
    let mut dirty = Vec::new();
    for entry in statuses.iter() {
        let rel = Path::new(OsStr::from_bytes(entry.path_bytes()));
        let status = entry.status();
        if status.contains(Status::IGNORED) {
            if is_kept(rel, keep_ignored) {
                continue;
            }
            remove_in(worktree, rel)?;
        } else if status == Status::WT_NEW {
            remove_in(worktree, rel)?;
        } else if status != Status::CURRENT {
            dirty.push(rel.display().to_string());
        }
    }
    if let Some(first) = dirty.first() {
        return Err(GitError(format!(
            "failed to reset worktree {} to the base: {} path(s) still differ (first: {first})",
            worktree.display(),
            dirty.len()
        )));
    }
    Ok(())
}

/// Remove `rel` (a path git reported, relative to the worktree) without following symlinks.
fn remove_in(worktree: &Path, rel: &Path) -> Result<(), GitError> {
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) || rel.as_os_str().is_empty() {
        return Ok(());
    }
    remove_path(&worktree.join(rel))
}

fn branch_refname(branch: &str) -> Result<String, GitError> {
    let refname = format!("refs/heads/{branch}");
    if git2::Reference::is_valid_name(&refname) {
        Ok(refname)
    } else {
        Err(GitError(format!(
            "failed to use branch name '{branch}': not a valid git branch name"
        )))
    }
}

fn open_worktree(worktree: &Path) -> Result<Repository, GitError> {
    Repository::open(worktree).ctx(|| format!("open worktree {}", worktree.display()))
}

/// The worktree at `worktree`, if it still exists as a linked worktree of this repository.
fn usable_worktree(repo: &RepoPaths, worktree: &Path) -> Option<Repository> {
    if !worktree.join(".git").exists() {
        return None;
    }
    let wt = Repository::open(worktree).ok()?;
    let ok = wt.is_worktree()
        && canon(wt.commondir()) == canon(&repo.common_dir)
        && wt.workdir().is_some_and(|w| canon(w) == canon(worktree));
    ok.then_some(wt)
}

pub(crate) fn collect(
    repo: &RepoPaths,
    worktree: &Path,
    branch: &str,
    base_sha: &str,
    workstream_id: &str,
) -> Result<Collected, GitError> {
    let base = parse_oid(base_sha)?;
    let refname = branch_refname(branch)?;
    let main = open_main(repo)?;
    let mut warnings = Vec::new();

    match usable_worktree(repo, worktree) {
        None => warnings.push(format!(
            "the worktree {} is gone or broken; commits and files were read from {branch} (uncommitted changes, if any, are lost)",
            worktree.display()
        )),
        Some(wt) => {
            // The agent is done and we hold the slot: any lock left there, or on our own
            // branch, is stale.
            if let Ok(name) = worktree_name(worktree) {
                clear_stale_locks(&worktree_gitdir(repo, &name))?;
            }
            remove_path(&repo.common_dir.join(format!("{refname}.lock")))?;
            let on_branch = {
                let _guard = write_lock();
                repair_head(&main, &wt, branch, &refname, base, &mut warnings)?
            };
            if on_branch {
                let (n, nested) = commit_leftovers(&wt, worktree, workstream_id)?;
                if n > 0 {
                    warnings.push(format!(
                        "uncommitted changes ({n} file{}) were committed on {branch} by git-ws",
                        if n == 1 { "" } else { "s" }
                    ));
                }
                if !nested.is_empty() {
                    warnings.push(format!(
                        "nested git repositories left in the worktree were not committed: {}",
                        nested.join(", ")
                    ));
                }
            }
        }
    }

    let tip = main
        .refname_to_id(&refname)
        .ctx(|| format!("read branch {branch}"))?;
    Ok(Collected {
        head: tip.to_string(),
        commits: commits_between(&main, base, tip)?,
        files: diff_files(&main, base, tip)?,
        warnings,
    })
}

/// Bring the worktree's HEAD back onto `refname` when the agent moved it. Returns whether
/// leftovers may be committed on the branch (false when HEAD's state has nothing to do with
/// the workstream, e.g. reset to before the base).
fn repair_head(
    main: &Repository,
    wt: &Repository,
    branch: &str,
    refname: &str,
    base: Oid,
    warnings: &mut Vec<String>,
) -> Result<bool, GitError> {
    let descends = |c: Oid| c == base || main.graph_descendant_of(c, base).unwrap_or(false);
    let head_target = wt
        .find_reference("HEAD")
        .ok()
        .and_then(|h| h.symbolic_target().ok().flatten().map(str::to_string));
    let head_commit = wt
        .head()
        .ok()
        .and_then(|h| h.peel_to_commit().ok())
        .map(|c| c.id());
    let tip = main.refname_to_id(refname).ok();

    if head_target.as_deref() == Some(refname) {
        let Some(tip) = tip else {
            // The agent deleted the branch it was on: recreate it at the base.
            set_branch(wt, refname, base, "git-ws: recreate deleted branch")?;
            warnings.push(format!(
                "the agent deleted {branch}; git-ws recreated it at the base {}",
                short(base)
            ));
            return Ok(true);
        };
        if descends(tip) {
            return Ok(true);
        }
        let restore = last_position_on_base(main, refname, &descends).unwrap_or(base);
        set_branch(
            wt,
            refname,
            restore,
            "git-ws: restore branch moved before base",
        )?;
        warnings.push(format!(
            "the agent moved {branch} to {}, which is not on top of the base {} (git reset?); {branch} stays at {} and the worktree's uncommitted state was not committed",
            short(tip),
            short(base),
            short(restore)
        ));
        return Ok(false);
    }

    let described = match (&head_target, head_commit) {
        (Some(other), _) => format!(
            "HEAD on another branch ({})",
            other.strip_prefix("refs/heads/").unwrap_or(other)
        ),
        (None, Some(c)) => format!("HEAD detached at {}", short(c)),
        (None, None) => "HEAD unreadable".to_string(),
    };
    let branch_ok = tip.is_some_and(descends);
    match head_commit {
        Some(c) if descends(c) => {
            let moved = tip != Some(c);
            if moved {
                set_branch(wt, refname, c, "git-ws: take the agent's HEAD")?;
            }
            retry(
                || format!("check out branch {branch} in worktree"),
                || wt.set_head(refname),
            )?;
            warnings.push(if moved {
                format!("the agent left {described}; git-ws moved {branch} there")
            } else {
                format!("the agent left {described}; git-ws put HEAD back on {branch}")
            });
            Ok(true)
        }
        _ => {
            let stays = if branch_ok {
                tip.map(short).unwrap_or_default()
            } else {
                set_branch(wt, refname, base, "git-ws: recreate branch at base")?;
                short(base)
            };
            warnings.push(format!(
                "the agent left {described}, which is not on top of the base {}; {branch} stays at {stays} and the worktree's uncommitted state was not committed",
                short(base)
            ));
            Ok(false)
        }
    }
}

fn set_branch(wt: &Repository, refname: &str, to: Oid, msg: &str) -> Result<(), GitError> {
    retry(
        || format!("move {refname} to {}", short(to)),
        || wt.reference(refname, to, true, msg).map(|_| ()),
    )
}

/// The newest position of `refname` (from its reflog) that is on top of the base.
fn last_position_on_base(
    main: &Repository,
    refname: &str,
    descends: &dyn Fn(Oid) -> bool,
) -> Option<Oid> {
    let log = main.reflog(refname).ok()?;
    let found = log
        .iter()
        .map(|e| e.id_new())
        .find(|&id| !id.is_zero() && descends(id));
    found
}

/// Commit everything modified, staged, deleted or untracked (not ignored) on the branch the
/// worktree's HEAD points at. Returns the number of paths committed and the nested
/// repositories left out.
fn commit_leftovers(
    wt: &Repository,
    worktree: &Path,
    workstream_id: &str,
) -> Result<(usize, Vec<String>), GitError> {
    let mut so = StatusOptions::new();
    so.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(true);
    let statuses = wt
        .statuses(Some(&mut so))
        .ctx(|| format!("read the status of worktree {}", worktree.display()))?;
    let changed: Vec<(Vec<u8>, Status)> = statuses
        .iter()
        .filter(|e| e.status() != Status::CURRENT && !e.status().contains(Status::IGNORED))
        .map(|e| (e.path_bytes().to_vec(), e.status()))
        .collect();
    drop(statuses);
    let count = changed.len();
    let conflicted = wt.index().map(|i| i.has_conflicts()).unwrap_or(false);
    if count == 0 && !conflicted {
        return Ok((0, Vec::new()));
    }
    let what = || format!("commit leftover changes in worktree {}", worktree.display());
    let mut index = wt.index().ctx(what)?;
    index.read(true).ctx(what)?;
    // Nested repositories (a tool's `git init`) are not this repository's content.
    let mut nested = Vec::new();
    let staged_only = !conflicted && stage_paths(&mut index, worktree, &changed, &mut nested);
    if !staged_only {
        // The general path: scan the whole worktree.
        nested.clear();
        index.read(true).ctx(what)?;
        stage_everything(&mut index, worktree, &mut nested).ctx(what)?;
    }
    // The tree first: writing it fills the index's tree cache, which the index file then
    // keeps, so the next workstream's tree is built from the directories that changed.
    let tree_id = index.write_tree().ctx(what)?;
    index.write().ctx(what)?;
    let parent = wt.head().and_then(|h| h.peel_to_commit()).ctx(what)?;
    wt.cleanup_state().ctx(what)?;
    if tree_id == parent.tree_id() {
        return Ok((0, nested));
    }
    let tree = wt.find_tree(tree_id).ctx(what)?;
    let sig = wt
        .signature()
        .or_else(|_| Signature::now("git-ws", "git-ws@localhost"))
        .ctx(what)?;
    let message = format!("git-ws: uncommitted changes left by {workstream_id}\n");
    retry(what, || {
        wt.commit(Some("HEAD"), &sig, &sig, &message, &tree, &[&parent])
    })?;
    Ok((count.saturating_sub(nested.len()).max(1), nested))
}

/// Stage exactly the paths status reported (untracked files added, modified files
/// re-added, deleted files removed). False when one of them needs the general path (a type
/// change, a directory where a file was, anything unexpected); the index may then be
/// partly updated, and the caller re-reads it.
fn stage_paths(
    index: &mut git2::Index,
    worktree: &Path,
    changed: &[(Vec<u8>, Status)],
    nested: &mut Vec<String>,
) -> bool {
    let workdir_changes = Status::WT_NEW | Status::WT_MODIFIED | Status::WT_DELETED;
    for (path, status) in changed {
        let rel = Path::new(OsStr::from_bytes(path));
        if !workdir_changes.intersects(*status) {
            // Staged by the agent already, nothing more to do.
            if status.intersects(Status::WT_TYPECHANGE | Status::WT_RENAMED | Status::WT_UNREADABLE)
            {
                return false;
            }
            continue;
        }
        let full = worktree.join(rel);
        let ok = if status.contains(Status::WT_DELETED) {
            index.remove_path(rel).is_ok()
        } else if path.ends_with(b"/") {
            // An untracked directory status did not descend into: a nested repository.
            if full.join(".git").exists() {
                nested.push(rel.display().to_string());
                true
            } else {
                false
            }
        } else {
            fs_is_file_or_link(&full) && index.add_path(rel).is_ok()
        };
        if !ok {
            return false;
        }
    }
    true
}

fn fs_is_file_or_link(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| !m.is_dir())
}

/// Stage every change in the worktree (the general path): add all, update all, resolve
/// conflicts with what is on disk.
fn stage_everything(
    index: &mut git2::Index,
    worktree: &Path,
    nested: &mut Vec<String>,
) -> Result<(), git2::Error> {
    let mut skip_nested = |path: &Path, _: &[u8]| -> i32 {
        if worktree.join(path).join(".git").exists() {
            nested.push(path.display().to_string());
            1
        } else {
            0
        }
    };
    index.add_all(["*"], IndexAddOption::DEFAULT, Some(&mut skip_nested))?;
    index.update_all(["*"], None)?;
    if index.has_conflicts() {
        let paths: Vec<Vec<u8>> = index
            .conflicts()?
            .filter_map(Result::ok)
            .filter_map(|c| c.our.or(c.their).or(c.ancestor).map(|e| e.path))
            .collect();
        for p in paths {
            let rel = Path::new(OsStr::from_bytes(&p));
            let _ = index.conflict_remove(rel);
            if worktree.join(rel).exists() {
                index.add_path(rel)?;
            }
        }
    }
    Ok(())
}

/// base..tip, oldest first.
pub(crate) fn commits_between(
    main: &Repository,
    base: Oid,
    tip: Oid,
) -> Result<Vec<String>, GitError> {
    let what = || format!("list commits {}..{}", short(base), short(tip));
    let mut walk = main.revwalk().ctx(what)?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)
        .ctx(what)?;
    walk.push(tip).ctx(what)?;
    walk.hide(base).ctx(what)?;
    walk.map(|r| r.map(|o| o.to_string()))
        .collect::<Result<_, _>>()
        .ctx(what)
}

/// The diff base..tip with renames detected and per-file line counts (0/0 for binaries).
pub(crate) fn diff_files(
    main: &Repository,
    base: Oid,
    tip: Oid,
) -> Result<Vec<FileChange>, GitError> {
    let what = || format!("diff {}..{}", short(base), short(tip));
    let base_tree = main.find_commit(base).and_then(|c| c.tree()).ctx(what)?;
    let tip_tree = main.find_commit(tip).and_then(|c| c.tree()).ctx(what)?;
    let mut diff = main
        .diff_tree_to_tree(Some(&base_tree), Some(&tip_tree), None)
        .ctx(what)?;
    diff.find_similar(Some(DiffFindOptions::new().renames(true)))
        .ctx(what)?;
    let mut files = Vec::with_capacity(diff.deltas().len());
    for (idx, delta) in diff.deltas().enumerate() {
        let path_of = |f: git2::DiffFile<'_>| {
            String::from_utf8_lossy(f.path_bytes().unwrap_or_default()).into_owned()
        };
        let (kind, path, old_path) = match delta.status() {
            Delta::Added | Delta::Copied => (ChangeKind::Added, path_of(delta.new_file()), None),
            Delta::Deleted => (ChangeKind::Deleted, path_of(delta.old_file()), None),
            Delta::Renamed => (
                ChangeKind::Renamed,
                path_of(delta.new_file()),
                Some(path_of(delta.old_file())),
            ),
            _ => (ChangeKind::Modified, path_of(delta.new_file()), None),
        };
        let (additions, deletions) = match Patch::from_diff(&diff, idx).ctx(what)? {
            Some(patch) if !patch.delta().flags().is_binary() => {
                let (_, a, d) = patch.line_stats().ctx(what)?;
                (a as u64, d as u64)
            }
            _ => (0, 0),
        };
        files.push(FileChange {
            path,
            old_path,
            kind,
            additions,
            deletions,
        });
    }
    Ok(files)
}
