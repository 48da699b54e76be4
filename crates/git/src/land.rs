//! Landing an integration (`git ws-merge`): resolving `--onto` in the worktree the command
//! runs from (and which local branch it names), finding where a branch is checked out,
//! telling whether a worktree has uncommitted changes, and fast-forwarding a branch to the
//! integration's tip, together with the clean worktree it is checked out in (`--ff`).

use super::repo::{canon, clean_path, open_main, parse_oid, Ctx};
use super::{GitError, RepoPaths};
use git2::build::CheckoutBuilder;
use git2::{Repository, Status, StatusOptions};
use std::path::{Path, PathBuf};

/// What `--onto REV` resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onto {
    /// The commit (full SHA).
    pub sha: String,
    /// The local branch REV names: itself (`main`, `refs/heads/main`), or the branch HEAD
    /// is on for `HEAD`; `None` for anything else (a SHA, `HEAD~1`, a remote branch, a
    /// detached HEAD).
    pub branch: Option<String>,
}

/// Resolve `rev` in the worktree containing `cwd` (so `HEAD` is that worktree's HEAD).
pub fn resolve_onto(cwd: &Path, rev: &str) -> Result<Onto, GitError> {
    let repo =
        Repository::discover(cwd).ctx(|| format!("open the repository at {}", cwd.display()))?;
    let commit = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .ctx(|| format!("resolve --onto '{rev}' to a commit"))?;
    let branch = if rev == "HEAD" {
        repo.find_reference("HEAD")
            .ok()
            .and_then(|h| h.symbolic_target().ok().flatten().map(str::to_string))
            .and_then(|t| t.strip_prefix("refs/heads/").map(str::to_string))
    } else {
        let name = rev.strip_prefix("refs/heads/").unwrap_or(rev);
        repo.find_branch(name, git2::BranchType::Local)
            .ok()
            .map(|_| name.to_string())
    };
    Ok(Onto {
        sha: commit.id().to_string(),
        branch,
    })
}

/// The worktree (main or linked) that has local branch `branch` checked out, if any.
pub fn checked_out_in(repo: &RepoPaths, branch: &str) -> Result<Option<PathBuf>, GitError> {
    let refname = format!("refs/heads/{branch}");
    let on = |r: &Repository| {
        r.find_reference("HEAD")
            .ok()
            .and_then(|h| h.symbolic_target().ok().flatten().map(str::to_string))
            .is_some_and(|t| t == refname)
    };
    let main = open_main(repo)?;
    if let Ok(root) = Repository::open(&repo.root) {
        if !root.is_bare() && on(&root) {
            return Ok(Some(repo.root.clone()));
        }
    }
    let names = main.worktrees().ctx(|| "list the worktrees".to_string())?;
    for name in names.iter().flatten().flatten() {
        let Ok(wt) = main.find_worktree(name) else {
            continue;
        };
        if let Ok(r) = Repository::open_from_worktree(&wt) {
            if on(&r) {
                return Ok(Some(clean_path(wt.path())));
            }
        }
    }
    Ok(None)
}

/// Up to `limit` paths with uncommitted changes to tracked files (staged or not) in the
/// worktree at `worktree`; untracked and ignored files do not count.
pub fn dirty_paths(worktree: &Path, limit: usize) -> Result<Vec<String>, GitError> {
    let r =
        Repository::open(worktree).ctx(|| format!("open the worktree {}", worktree.display()))?;
    let mut so = StatusOptions::new();
    so.include_untracked(false)
        .include_ignored(false)
        .exclude_submodules(true);
    let statuses = r
        .statuses(Some(&mut so))
        .ctx(|| format!("read the status of {}", worktree.display()))?;
    Ok(statuses
        .iter()
        .filter(|e| e.status() != Status::CURRENT)
        .take(limit)
        .map(|e| String::from_utf8_lossy(e.path_bytes()).into_owned())
        .collect())
}

/// Fast-forward local branch `branch` from `from` to `to` (`to` must descend from `from`,
/// and the branch must still be at `from`). Where the branch is checked out, that worktree's
/// files and index follow (a safe checkout: it must have no uncommitted changes to tracked
/// files, and untracked files in the way stop it before anything changes). Returns the
/// worktree updated, if any.
pub fn fast_forward(
    repo: &RepoPaths,
    branch: &str,
    from: &str,
    to: &str,
    message: &str,
) -> Result<Option<PathBuf>, GitError> {
    let main = open_main(repo)?;
    let (from_oid, to_oid) = (parse_oid(from)?, parse_oid(to)?);
    let refname = format!("refs/heads/{branch}");
    let what = || format!("fast-forward {branch} to {}", &to[..to.len().min(10)]);
    let now = main
        .refname_to_id(&refname)
        .ctx(|| format!("read branch {branch}"))?;
    if now != from_oid {
        return Err(GitError::Other(format!(
            "failed to {}: {branch} moved to {} since the integration started from {}",
            what(),
            &now.to_string()[..10],
            &from[..from.len().min(10)]
        )));
    }
    if from_oid == to_oid {
        return Ok(None);
    }
    if !main.graph_descendant_of(to_oid, from_oid).ctx(what)? {
        return Err(GitError::Other(format!(
            "failed to {}: not a fast-forward",
            what()
        )));
    }
    let worktree = checked_out_in(repo, branch)?;
    if let Some(wt_path) = &worktree {
        let dirty = dirty_paths(wt_path, 5)?;
        if !dirty.is_empty() {
            return Err(GitError::Other(format!(
                "failed to {}: it is checked out in {} with uncommitted changes ({})",
                what(),
                wt_path.display(),
                dirty.join(", ")
            )));
        }
        let wt = Repository::open(wt_path).ctx(what)?;
        let target = wt.find_commit(to_oid).ctx(what)?;
        // The paths that block the checkout (an untracked file the target adds, …), named
        // in the error instead of libgit2's bare count.
        let clashes = std::cell::RefCell::new(Vec::<String>::new());
        let mut co = CheckoutBuilder::new();
        co.safe();
        co.notify_on(git2::CheckoutNotificationType::CONFLICT);
        co.notify(|_, path, _, _, _| {
            if let Some(p) = path {
                clashes.borrow_mut().push(p.display().to_string());
            }
            true
        });
        let done = wt.checkout_tree(target.as_object(), Some(&mut co));
        drop(co);
        if let Err(e) = done {
            let clashes = clashes.into_inner();
            if !clashes.is_empty() {
                return Err(GitError::Other(format!(
                    "failed to {}: checking it out in {} would overwrite {} that {} not committed there ({}); move {} away or commit {}",
                    what(),
                    wt_path.display(),
                    if clashes.len() == 1 { "a file" } else { "files" },
                    if clashes.len() == 1 { "is" } else { "are" },
                    clashes.join(", "),
                    if clashes.len() == 1 { "it" } else { "them" },
                    if clashes.len() == 1 { "it" } else { "them" },
                )));
            }
            return Err(e).ctx(|| format!("update the files of {}", wt_path.display()));
        }
    }
    main.reference_matching(&refname, to_oid, true, from_oid, message)
        .ctx(what)?;
    Ok(worktree.map(|p| canon(&p)))
}
