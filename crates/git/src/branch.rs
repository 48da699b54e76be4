//! Branch preparation and collection on an agent's worktree: preparing a workstream's
//! branch at the base (forced, cleaned, touching only the files that differ, repaired and
//! retried on failures of the pool's own), collecting what the agent did (HEAD repair,
//! auto-commit of leftovers, commits, diff), and resetting the worktree to the base when
//! the run lets go of it.

use super::include::copy_worktree_includes;
use super::repo::{canon, parse_oid, retry, short, write_lock, Ctx};
use super::slots::{self, clear_stale_locks, remove_path, try_lock, SlotDirs};
use super::{AgentSlot, Collected, GitError, PrepareOptions, RepoPaths};
use git2::build::CheckoutBuilder;
use git2::{
    Delta, DiffFindOptions, IndexAddOption, Oid, Patch, Repository, Signature, Sort, Status,
    StatusOptions,
};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path};
use ws_core::model::{ChangeKind, FileChange};

#[cfg(test)]
thread_local! {
    /// How many times `prepare` fell back to the full checkout on this thread.
    pub(crate) static FULL_SWITCHES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// How many times `prepare` scanned the worktree's status itself (no shared scan).
    pub(crate) static PREPARE_SCANS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Why preparing a branch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct PrepareError {
    pub error: GitError,
    /// True when the trouble is the pool's own (a lock collision, a broken or half-made
    /// worktree, a stale ref): another agent may well succeed. False when the branch is
    /// checked out in a worktree git-ws does not own, which no agent can fix.
    pub pool_fault: bool,
}

/// What the last `collect` learned about the worktree, so the next prepare (or the
/// release) can skip its own status scan: HEAD, the index and every tracked file match
/// `tip`, and `leftovers` are the ignored paths and nested repositories in it. Trusted
/// only while HEAD is still `tip` and the index file is the one collect left.
pub(crate) struct Scan {
    tip: Oid,
    /// (path as status reported it, whether it is ignored).
    leftovers: Vec<(Vec<u8>, bool)>,
    index: Option<Stamp>,
}

/// Size, modification time and inode of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp(u64, i64, i64, u64);

fn stamp(p: &Path) -> Option<Stamp> {
    std::fs::metadata(p)
        .ok()
        .map(|m| Stamp(m.len(), m.mtime(), m.mtime_nsec(), m.ino()))
}

/// How many times preparing a branch is tried (with a repair before each retry).
const PREPARE_ATTEMPTS: usize = 3;

impl AgentSlot {
    /// Create (or force-reset) branch `branch` at `base_sha`, check it out forced in the
    /// slot's worktree, and remove every untracked and ignored file left by the previous
    /// workstream (except `keep_ignored`); then copy the ignored files listed in the main
    /// worktree's `.worktreeinclude` (such as `.env`) into the worktree. Files are
    /// rewritten only where they differ. A failure is repaired and retried: first with the
    /// worktree's links and locks repaired, then with the worktree rebuilt.
    pub fn prepare(
        &mut self,
        branch: &str,
        base_sha: &str,
        opts: &PrepareOptions,
    ) -> Result<(), PrepareError> {
        let pool = |error: GitError| PrepareError {
            error,
            pool_fault: true,
        };
        let base = parse_oid(base_sha).map_err(pool)?;
        let refname = branch_refname(branch).map_err(|error| PrepareError {
            error,
            pool_fault: false,
        })?;
        let mut failures: Vec<GitError> = Vec::new();
        for attempt in 0..PREPARE_ATTEMPTS {
            if attempt > 0 {
                if let Err(e) = self.repair(attempt, base) {
                    failures.push(e);
                    continue;
                }
            }
            match self.prepare_once(branch, &refname, base, opts) {
                Ok(()) => return Ok(()),
                Err(e) if !e.pool_fault => return Err(e),
                Err(e) => failures.push(e.error),
            }
        }
        let last = failures
            .pop()
            .unwrap_or_else(|| GitError::Other(String::new()));
        if failures.is_empty() {
            return Err(pool(last));
        }
        let earlier: Vec<String> = failures.iter().map(ToString::to_string).collect();
        let sentence = format!(
            "{last} (tried {PREPARE_ATTEMPTS} times with repairs in between; earlier: {})",
            earlier.join("; ")
        );
        Err(pool(GitError::failed(
            sentence,
            matches!(last, GitError::DiskFull(_)),
        )))
    }

    /// Before retry `attempt`: forget what the handle knew, clear stale locks and repair the
    /// worktree's links (attempt 1), or rebuild the worktree from scratch (attempt 2+).
    fn repair(&mut self, attempt: usize, base: Oid) -> Result<(), GitError> {
        self.scan = None;
        self.wt = None;
        let d = self.dirs();
        if attempt >= 2 {
            slots::remove_files(&self.paths, &d)?;
        }
        let ensured = slots::ensure(&self.paths, &d, base)?;
        self.repairs.extend(ensured.repairs);
        self.wt = Some(open_worktree(&self.path)?);
        Ok(())
    }

    /// The worktree's repository: the one opened at claim, or reopened (and the worktree
    /// repaired) after it was found broken.
    fn worktree_repo(&mut self, base: Oid) -> Result<&Repository, GitError> {
        let broken = self.wt.is_none() || !self.path.join(".git").is_file();
        if broken {
            self.scan = None;
            self.wt = None;
            let ensured = slots::ensure(&self.paths, &self.dirs(), base)?;
            self.repairs.extend(ensured.repairs);
            self.wt = Some(open_worktree(&self.path)?);
        }
        Ok(self.wt.as_ref().expect("opened above"))
    }

    fn prepare_once(
        &mut self,
        branch: &str,
        refname: &str,
        base: Oid,
        opts: &PrepareOptions,
    ) -> Result<(), PrepareError> {
        let pool = |error: GitError| PrepareError {
            error,
            pool_fault: true,
        };
        let scan = self.scan.take();
        let paths = self.paths.clone();
        let name = self.name.clone();
        let worktree = self.path.clone();
        let wt = self.worktree_repo(base).map_err(pool)?;
        // Bring the files to the base while HEAD still names the previous workstream's tip:
        // only the paths that differ are touched (see `switch_files_to_base`).
        let switched =
            switch_files_to_base(wt, &worktree, base, &opts.keep_ignored, scan).map_err(pool)?;
        {
            let _guard = write_lock();
            // A stale ref lock on our own branch (a crashed earlier attempt) would block us.
            remove_path(&paths.common_dir.join(format!("{refname}.lock"))).map_err(pool)?;
            wt.cleanup_state()
                .ctx(|| {
                    format!(
                        "clear merge/rebase state in worktree {}",
                        worktree.display()
                    )
                })
                .map_err(pool)?;
            // Detach first: the branch may be checked out right here (resume after a crash).
            retry(
                || format!("detach HEAD in worktree {}", worktree.display()),
                || wt.set_head_detached(base),
            )
            .map_err(pool)?;
            let exists = wt.find_reference(refname).is_ok();
            if exists {
                release_elsewhere(&paths, refname, &name, branch, &_guard)?;
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
                    wt.reference(refname, base, exists, &msg).map(|_| ())
                },
            )
            .map_err(pool)?;
            retry(
                || {
                    format!(
                        "check out branch {branch} in worktree {}",
                        worktree.display()
                    )
                },
                || wt.set_head(refname),
            )
            .map_err(pool)?;
        }
        if !switched {
            full_checkout(wt, &worktree, &opts.keep_ignored).map_err(pool)?;
        }
        copy_worktree_includes(&paths, &worktree).map_err(pool)
    }

    /// Files the next workstream's agent writes for itself (`patterns`, gitignore globs such
    /// as `.aider*`): `collect` leaves them out of the leftovers it commits, as if they were
    /// in the slot's exclude file. Replaces the previous workstream's list.
    pub fn ignore_own_files(&mut self, patterns: &[&str]) {
        self.own_files = patterns.iter().map(|p| p.to_string()).collect();
    }

    /// Read the truth after a workstream's command: if the agent moved HEAD off `branch`
    /// (detached or another branch), warn and, when HEAD's commit descends from base, move
    /// the branch there. Then commit any leftovers (modified, staged, untracked; not
    /// ignored) on the branch with a warning (author from git config, falling back to
    /// `git-ws <git-ws@localhost>`), then list commits base..tip and the diff base..tip.
    /// The status scan done here is kept for the next prepare on this slot.
    pub fn collect(
        &mut self,
        branch: &str,
        base_sha: &str,
        workstream_id: &str,
    ) -> Result<Collected, GitError> {
        let base = parse_oid(base_sha)?;
        let refname = branch_refname(branch)?;
        let mut warnings = Vec::new();
        self.scan = None;
        let worktree = self.path.clone();
        let d = self.dirs();
        if !usable_worktree(&self.paths, &d) {
            self.wt = None;
        }
        match &self.wt {
            None => warnings.push(format!(
                "the worktree {} is gone or broken; commits and files were read from {branch} (uncommitted changes, if any, are lost)",
                worktree.display()
            )),
            Some(wt) => {
                // The agent is done and we hold the slot: any lock left there, or on our
                // own branch, is stale.
                clear_stale_locks(&d.admin)?;
                remove_path(&self.paths.common_dir.join(format!("{refname}.lock")))?;
                let on_branch = {
                    let _guard = write_lock();
                    repair_head(wt, branch, &refname, base, &mut warnings)?
                };
                if on_branch {
                    // The in-memory rules of an earlier workstream's agent go first.
                    wt.clear_ignore_rules()
                        .ctx(|| "reset the slot's exclude rules".to_string())?;
                    if !self.own_files.is_empty() {
                        wt.add_ignore_rule(&self.own_files.join("
"))
                            .ctx(|| format!("exclude {}", self.own_files.join(" ")))?;
                    }
                    let done = commit_leftovers(wt, &worktree, workstream_id).map_err(|e| {
                        rescue_leftovers(wt, &worktree, &self.paths, branch, workstream_id, e)
                    })?;
                    if done.committed > 0 {
                        warnings.push(format!(
                            "uncommitted changes ({} file{}) were committed on {branch} by git-ws",
                            done.committed,
                            if done.committed == 1 { "" } else { "s" }
                        ));
                    }
                    if !done.nested.is_empty() {
                        warnings.push(format!(
                            "nested git repositories left in the worktree were not committed: {}",
                            done.nested.join(", ")
                        ));
                    }
                    self.scan = done.scan;
                }
            }
        }
        let main;
        let repo = match &self.wt {
            Some(wt) => wt,
            None => {
                main = super::repo::open_main(&self.paths)?;
                &main
            }
        };
        let tip = repo
            .refname_to_id(&refname)
            .ctx(|| format!("read branch {branch}"))?;
        Ok(Collected {
            head: tip.to_string(),
            commits: commits_between(repo, base, tip)?,
            files: diff_files(repo, base, tip)?,
            warnings,
        })
    }

    /// Let go of the slot at the end of a run, leaving the worktree for the next run:
    /// detached at `base_sha` with the files at the base (ignored `keep_ignored` caches
    /// stay), no branch checked out (so any worktree may check out the run's branches),
    /// and the base and time recorded. On failure the slot is still let go; the next claim
    /// repairs it.
    pub fn release(mut self, base_sha: &str, opts: &PrepareOptions) -> Result<(), GitError> {
        self.check_out(base_sha, opts)?;
        slots::write_state(&self.dirs().admin, parse_oid(base_sha)?)
    }

    /// Check out commit `sha` detached in the slot's worktree, the files at that commit and
    /// nothing else (untracked and ignored files removed, except the `keep_ignored`
    /// caches), no branch involved: how `git ws-merge` tests an integration. Only the paths
    /// that differ from what is checked out are rewritten.
    pub fn check_out(&mut self, sha: &str, opts: &PrepareOptions) -> Result<(), GitError> {
        let base = parse_oid(sha)?;
        let scan = self.scan.take();
        let worktree = self.path.clone();
        let wt = self.worktree_repo(base)?;
        let switched = switch_files_to_base(wt, &worktree, base, &opts.keep_ignored, scan)?;
        {
            let _guard = write_lock();
            wt.cleanup_state()
                .ctx(|| format!("clear merge state in worktree {}", worktree.display()))?;
            retry(
                || format!("detach HEAD in worktree {}", worktree.display()),
                || wt.set_head_detached(base),
            )?;
        }
        if !switched {
            full_checkout(wt, &worktree, &opts.keep_ignored)?;
        }
        Ok(())
    }
}

/// Where `refname` is checked out other than in worktree `ours`: when that is an idle pool
/// worktree (a run that died there), detach it there and go on; anywhere else (the main
/// worktree, a worktree of the user's, a live run's slot), fail.
fn release_elsewhere(
    repo: &RepoPaths,
    refname: &str,
    ours: &str,
    branch: &str,
    write_lock: &std::sync::MutexGuard<'static, ()>,
) -> Result<(), PrepareError> {
    let Some(other) = checked_out_elsewhere(repo, refname, ours) else {
        return Ok(());
    };
    let busy = |where_: String| {
        PrepareError {
        error: GitError::Other(format!(
            "failed to reset branch {branch} to the base: it is checked out in {where_} (check out another branch there, then git ws-run --rerun-failed)"
        )),
        pool_fault: false,
    }
    };
    let Some(slot) = other
        .strip_prefix("ws-")
        .filter(|s| slots::parse_slot(s).is_some())
    else {
        return Err(busy(if other == "HEAD" {
            format!("the main worktree {}", repo.root.display())
        } else {
            format!("worktree {other}")
        }));
    };
    let d = SlotDirs::new(repo, slot);
    match try_lock(&d.lock) {
        Ok(Some(_held)) => {
            slots::detach_if_attached(repo, &d, write_lock).map_err(|error| PrepareError {
                error,
                pool_fault: true,
            })?;
            Ok(())
        }
        _ => Err(PrepareError {
            error: GitError::Other(format!(
                "failed to reset branch {branch} to the base: it is checked out in agent worktree {slot}, which another git ws-run holds"
            )),
            pool_fault: true,
        }),
    }
}

/// The forced checkout of HEAD over the whole worktree (the index stat cache keeps it from
/// rewriting unchanged files), then removal of every untracked and ignored leftover, and a
/// check that nothing tracked still differs: the general path when the cheap switch cannot
/// be used.
fn full_checkout(
    wt: &Repository,
    worktree: &Path,
    keep_ignored: &[String],
) -> Result<(), GitError> {
    #[cfg(test)]
    FULL_SWITCHES.with(|n| n.set(n.get() + 1));
    let mut co = CheckoutBuilder::new();
    co.force().remove_untracked(true).remove_ignored(false);
    retry(
        || format!("check out HEAD in worktree {}", worktree.display()),
        || wt.checkout_head(Some(&mut co)),
    )?;
    clean_leftovers(wt, worktree, keep_ignored)
}

/// Switch the worktree's files and index from its current HEAD (the previous workstream's
/// tip, everything committed by `collect`) to `base`, touching only what differs. Leftovers
/// (untracked and ignored paths, except `keep_ignored`) are removed, and modified or
/// deleted tracked files found: from the scan `collect` kept when it is still valid, else
/// from one status pass (untracked and ignored directories are not descended into). A
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
    scan: Option<Scan>,
) -> Result<bool, GitError> {
    let Some(head_commit) = wt.head().ok().and_then(|h| h.peel_to_commit().ok()) else {
        return Ok(false);
    };
    let what = || format!("switch worktree {} to {}", worktree.display(), short(base));
    let head_tree = head_commit.tree().ctx(what)?;
    let base_commit = wt.find_commit(base).ctx(what)?;
    let base_tree = base_commit.tree().ctx(what)?;
    let index_path = wt.path().join("index");
    let scan = scan.filter(|s| s.tip == head_commit.id() && s.index == stamp(&index_path));
    let mut paths: Vec<Vec<u8>> = Vec::new();
    match scan {
        Some(s) => {
            for (p, ignored) in &s.leftovers {
                let rel = Path::new(OsStr::from_bytes(p));
                if !(*ignored && is_kept(rel, keep_ignored)) {
                    remove_in(worktree, rel)?;
                }
            }
        }
        None => {
            #[cfg(test)]
            PREPARE_SCANS.with(|n| n.set(n.get() + 1));
            let statuses = wt.statuses(Some(&mut leftover_scan())).ctx(what)?;
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
        }
    }
    if head_tree.id() != base_tree.id() {
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

/// Where `refname` is checked out other than in worktree `ours`, read straight from the
/// HEAD files: `HEAD` for the main worktree, else the linked worktree's name.
fn checked_out_elsewhere(repo: &RepoPaths, refname: &str, ours: &str) -> Option<String> {
    let points_here = |head: &Path| {
        std::fs::read_to_string(head)
            .is_ok_and(|s| s.trim().strip_prefix("ref:").map(str::trim) == Some(refname))
    };
    if points_here(&repo.common_dir.join("HEAD")) {
        return Some("HEAD".to_string());
    }
    let dirs = std::fs::read_dir(repo.common_dir.join("worktrees")).ok()?;
    dirs.flatten()
        .filter(|d| d.file_name().to_str() != Some(ours))
        .find(|d| points_here(&d.path().join("HEAD")))
        .map(|d| d.file_name().to_string_lossy().into_owned())
}

/// A status scan that lists untracked and ignored top-level entries (directories once, not
/// their contents), nested repositories included, without rename detection.
fn leftover_scan() -> StatusOptions {
    let mut so = StatusOptions::new();
    so.include_untracked(true)
        .include_ignored(true)
        .recurse_untracked_dirs(false)
        .recurse_ignored_dirs(false)
        .exclude_submodules(false)
        .renames_head_to_index(false)
        .renames_index_to_workdir(false);
    so
}

/// Remove what the checkout left that is not in the base tree: untracked and ignored files
/// and directories (except ignored top-level names in `keep_ignored`), nested repositories
/// included. Errors if a tracked file still differs afterwards.
fn clean_leftovers(
    wt: &Repository,
    worktree: &Path,
    keep_ignored: &[String],
) -> Result<(), GitError> {
    let statuses = wt
        .statuses(Some(&mut leftover_scan()))
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
        return Err(GitError::Other(format!(
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
        Err(GitError::Other(format!(
            "failed to use branch name '{branch}': not a valid git branch name"
        )))
    }
}

fn open_worktree(worktree: &Path) -> Result<Repository, GitError> {
    Repository::open(worktree).ctx(|| format!("open worktree {}", worktree.display()))
}

/// Whether the slot's worktree still is what git-ws made it: its `.git` file points at its
/// admin dir, which still has a HEAD. (The agent may have deleted the directory or replaced
/// `.git` with a repository of its own.)
fn usable_worktree(repo: &RepoPaths, d: &SlotDirs) -> bool {
    let points_home = std::fs::read_to_string(d.path.join(".git"))
        .ok()
        .and_then(|s| s.strip_prefix("gitdir:").map(|r| r.trim().to_string()))
        .is_some_and(|target| canon(&d.path.join(target)) == canon(&d.admin));
    points_home && d.admin.join("HEAD").is_file() && repo.common_dir.is_dir()
}

/// Bring the worktree's HEAD back onto `refname` when the agent moved it. Returns whether
/// leftovers may be committed on the branch (false when HEAD's state has nothing to do with
/// the workstream, e.g. reset to before the base).
fn repair_head(
    wt: &Repository,
    branch: &str,
    refname: &str,
    base: Oid,
    warnings: &mut Vec<String>,
) -> Result<bool, GitError> {
    let main = wt;
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

/// What `commit_leftovers` did.
struct Committed {
    /// Paths committed (0 when the worktree was clean).
    committed: usize,
    /// Nested repositories left out.
    nested: Vec<String>,
    /// The worktree as it is afterwards, for the next prepare; `None` when it cannot be
    /// vouched for (submodules, an unexpected state).
    scan: Option<Scan>,
}

/// Commit everything modified, staged, deleted or untracked (not ignored) on the branch the
/// worktree's HEAD points at, from one status pass that also lists the ignored paths (kept
/// as the [`Scan`] for the next prepare). The index file is left to the next checkout.
fn commit_leftovers(
    wt: &Repository,
    worktree: &Path,
    workstream_id: &str,
) -> Result<Committed, GitError> {
    let mut so = StatusOptions::new();
    so.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(true)
        .recurse_ignored_dirs(false)
        .exclude_submodules(true)
        .renames_head_to_index(false)
        .renames_index_to_workdir(false);
    let statuses = wt
        .statuses(Some(&mut so))
        .ctx(|| format!("read the status of worktree {}", worktree.display()))?;
    let mut changed: Vec<(Vec<u8>, Status)> = Vec::new();
    let mut leftovers: Vec<(Vec<u8>, bool)> = Vec::new();
    for e in statuses.iter() {
        let st = e.status();
        if st.contains(Status::IGNORED) {
            leftovers.push((e.path_bytes().to_vec(), true));
        } else if st != Status::CURRENT {
            changed.push((e.path_bytes().to_vec(), st));
        }
    }
    drop(statuses);
    let count = changed.len();
    let index_path = wt.path().join("index");
    // Submodules are left out of the scan above, so it cannot vouch for them.
    let scannable = !worktree.join(".gitmodules").exists();
    let conflicted = wt.index().map(|i| i.has_conflicts()).unwrap_or(false);
    let tip_now = || wt.head().ok().and_then(|h| h.target());
    if count == 0 && !conflicted {
        let scan = tip_now().filter(|_| scannable).map(|tip| Scan {
            tip,
            leftovers,
            index: stamp(&index_path),
        });
        return Ok(Committed {
            committed: 0,
            nested: Vec::new(),
            scan,
        });
    }
    let what = || format!("commit leftover changes in worktree {}", worktree.display());
    // The status pass above reloaded the index if the agent changed it on disk.
    let mut index = wt.index().ctx(what)?;
    index.read(false).ctx(what)?;
    // Nested repositories (a tool's `git init`) are not this repository's content.
    let mut nested = Vec::new();
    let staged_only = !conflicted && stage_paths(&mut index, worktree, &changed, &mut nested);
    if !staged_only {
        // The general path: scan the whole worktree.
        nested.clear();
        index.read(true).ctx(what)?;
        stage_everything(&mut index, worktree, &mut nested).ctx(what)?;
    }
    // The tree from the index in memory (which fills its tree cache). The index file is
    // not written here: the next checkout in this worktree (the next prepare, or the
    // release at the end of the run) starts from this in-memory index and writes it once.
    // Should the process die first, the file on disk still shows the agent's changes as
    // unstaged, and the next prepare takes its general path.
    let tree_id = index.write_tree().ctx(what)?;
    let parent = wt.head().and_then(|h| h.peel_to_commit()).ctx(what)?;
    wt.cleanup_state().ctx(what)?;
    let committed = if tree_id == parent.tree_id() {
        0
    } else {
        let tree = wt.find_tree(tree_id).ctx(what)?;
        let sig = wt
            .signature()
            .or_else(|_| Signature::now("git-ws", "git-ws@localhost"))
            .ctx(what)?;
        let message = format!("git-ws: uncommitted changes left by {workstream_id}\n");
        retry(what, || {
            wt.commit(Some("HEAD"), &sig, &sig, &message, &tree, &[&parent])
        })?;
        count.saturating_sub(nested.len()).max(1)
    };
    // Vouch for the worktree only on the plain path: everything status reported was staged
    // one by one, and what was left out is a nested repository to remove next time.
    let scan = (staged_only && scannable)
        .then(tip_now)
        .flatten()
        .map(|tip| {
            leftovers.extend(
                nested
                    .iter()
                    .map(|n| (n.trim_end_matches('/').as_bytes().to_vec(), false)),
            );
            Scan {
                tip,
                leftovers,
                index: stamp(&index_path),
            }
        });
    Ok(Committed {
        committed,
        nested,
        scan,
    })
}

/// Where the uncommitted files of `branch` go when they cannot be committed:
/// `<git common dir>/ws/unsaved/<branch>/`.
pub fn unsaved_dir(paths: &RepoPaths, branch: &str) -> std::path::PathBuf {
    paths.common_dir.join("ws").join("unsaved").join(branch)
}

/// The leftovers of a finished workstream could not be committed (`e`): the disk holding
/// the git objects is full, most likely. Copy the files status lists as changed (not
/// ignored) to [`unsaved_dir`] before the worktree is reused, and say in the error which
/// disk refused and where the work is (or that it could not be kept either).
fn rescue_leftovers(
    wt: &Repository,
    worktree: &Path,
    paths: &RepoPaths,
    branch: &str,
    workstream_id: &str,
    e: GitError,
) -> GitError {
    let full = {
        let m = e.to_string();
        m.contains("No space left") || m.contains("os error 28") || m.contains("Disk quota")
    };
    let objects = paths.common_dir.join("objects");
    let why = if full {
        format!(
            "no space left on the disk holding the git objects ({}): the work of {workstream_id} could not be committed",
            objects.display()
        )
    } else {
        format!("the work of {workstream_id} could not be committed")
    };
    let dest = unsaved_dir(paths, branch);
    let kept = (|| -> Result<usize, String> {
        let mut so = StatusOptions::new();
        so.include_untracked(true)
            .recurse_untracked_dirs(true)
            .exclude_submodules(true);
        let st = wt.statuses(Some(&mut so)).map_err(|e| e.to_string())?;
        let mut n = 0;
        for entry in st.iter() {
            let rel = Path::new(OsStr::from_bytes(entry.path_bytes()));
            let from = worktree.join(rel);
            // Regular files only: a symlink is not followed out of the worktree.
            let regular = std::fs::symlink_metadata(&from).is_ok_and(|m| m.is_file());
            if !regular || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
                continue;
            }
            let to = dest.join(rel);
            if let Some(dir) = to.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            std::fs::copy(&from, &to).map_err(|e| format!("{}: {e}", to.display()))?;
            n += 1;
        }
        Ok(n)
    })();
    let kept = match kept {
        Ok(n) => format!(
            "its {n} uncommitted file(s) were copied to {} (branch {branch} holds its earlier commits)",
            dest.display()
        ),
        Err(c) => format!(
            "its uncommitted files could not be copied out either ({c}): they are lost when worktree {} is reused",
            worktree.display()
        ),
    };
    GitError::Other(format!("{why}; {kept} ({e})"))
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
