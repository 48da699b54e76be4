//! Agent slots: the `flock`-held claim on `<common_dir>/ws/agent-k`, creating, repairing and
//! removing the slot's linked worktree (`ws-agent-k`) without leaving branches behind.

use super::repo::{canon, is_lock_collision, open_main, parse_oid, retry, write_lock, Ctx};
use super::{AgentSlot, GitError, RepoPaths};
use git2::{BranchType, Oid, Repository, WorktreeAddOptions, WorktreePruneOptions};
use std::fs;
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// How many `agent-k-N` alternatives to try before giving up.
const MAX_SLOT_ALTERNATIVES: usize = 64;

pub(crate) fn claim_agent_slot(
    repo: &RepoPaths,
    k: usize,
    base_sha: &str,
) -> Result<AgentSlot, GitError> {
    let base = parse_oid(base_sha)?;
    let locks = repo.common_dir.join("ws").join("locks");
    fs::create_dir_all(&locks).ctx(|| format!("create the lock directory {}", locks.display()))?;
    for n in 1..=MAX_SLOT_ALTERNATIVES {
        let slot = if n == 1 {
            format!("agent-{k}")
        } else {
            format!("agent-{k}-{n}")
        };
        let lock_path = locks.join(format!("{slot}.lock"));
        let Some(lock) = try_flock_briefly(&lock_path)? else {
            continue;
        };
        let name = format!("ws-{slot}");
        let path = repo.common_dir.join("ws").join(&slot);
        // Not under the in-process write lock: creating a worktree is a full checkout, and
        // agents populate theirs in parallel. The shared refs it touches (the temporary
        // branch) take the lock themselves; lock-file collisions are retried.
        ensure_worktree(repo, &name, &path, base)?;
        return Ok(AgentSlot {
            name,
            path,
            _lock: lock,
        });
    }
    Err(GitError(format!(
        "failed to claim a worktree for agent {k}: all {MAX_SLOT_ALTERNATIVES} slots under {} are held by other runs",
        locks.display()
    )))
}

/// [`try_flock`], retried for a few milliseconds: a child process forked by another
/// thread of this process shares our lock file's description until it execs, so a slot
/// just released can look held for an instant. A slot held by another run stays held.
fn try_flock_briefly(path: &Path) -> Result<Option<fs::File>, GitError> {
    for _ in 0..5 {
        if let Some(f) = try_flock(path)? {
            return Ok(Some(f));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    try_flock(path)
}

/// Open (creating) `path` and take an exclusive non-blocking `flock`; `None` when another
/// open file description (another process, or another thread of this one) holds it.
fn try_flock(path: &Path) -> Result<Option<fs::File>, GitError> {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .ctx(|| format!("open the lock file {}", path.display()))?;
    // SAFETY: flock on a file descriptor we own for the duration of the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Ok(None);
        }
        return Err(GitError(format!(
            "failed to lock {}: {err}",
            path.display()
        )));
    }
    // Who holds it, for humans looking at a stuck slot; failure here is harmless.
    let _ = file
        .set_len(0)
        .and_then(|_| writeln!(file, "{}", std::process::id()));
    Ok(Some(file))
}

/// The git worktree name for a slot directory: `<common>/ws/agent-1` → `ws-agent-1`.
pub(crate) fn worktree_name(path: &Path) -> Result<String, GitError> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(|n| format!("ws-{n}"))
        .ok_or_else(|| {
            GitError(format!(
                "failed to name the worktree at {}: not a slot directory",
                path.display()
            ))
        })
}

/// The worktree's private git dir (`<common>/worktrees/<name>`).
pub(crate) fn worktree_gitdir(repo: &RepoPaths, name: &str) -> PathBuf {
    repo.common_dir.join("worktrees").join(name)
}

/// Remove lock files left in the worktree's git dir (`index.lock`, `HEAD.lock`, …) and a
/// `locked` marker. Only called while holding the slot's flock, so any lock there is stale.
pub(crate) fn clear_stale_locks(gitdir: &Path) -> Result<(), GitError> {
    let Ok(entries) = fs::read_dir(gitdir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".lock") || name == "locked" {
            remove_path(&entry.path())?;
        }
    }
    Ok(())
}

/// Remove a file, symlink or directory tree (never following symlinks); absent is fine.
pub(crate) fn remove_path(path: &Path) -> Result<(), GitError> {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(());
    };
    let res = if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match res {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(GitError(format!(
            "failed to remove {}: {e}",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Make sure `path` is a working linked worktree named `name` of this repository: reuse it,
/// repair its links and stale locks, or recreate it (detached at `base`). The caller holds
/// the slot's flock and must not hold [`write_lock`]: the steps that touch shared refs take
/// it themselves, so agents check out their new worktrees in parallel.
pub(crate) fn ensure_worktree(
    repo: &RepoPaths,
    name: &str,
    path: &Path,
    base: Oid,
) -> Result<(), GitError> {
    let gitdir = worktree_gitdir(repo, name);
    if gitdir.join("HEAD").is_file() && path.is_dir() && repair_links(repo, &gitdir, path)? {
        return drop_stale_tmp_branch(repo, name, path, base);
    }
    create_worktree(repo, name, path, &gitdir, base)
}

fn tmp_branch_name(worktree_name: &str) -> String {
    format!("git-ws-tmp/{worktree_name}")
}

/// A crash between adding the worktree and deleting its temporary branch leaves that branch
/// behind (possibly still checked out in the worktree): detach and delete it.
fn drop_stale_tmp_branch(
    repo: &RepoPaths,
    name: &str,
    path: &Path,
    base: Oid,
) -> Result<(), GitError> {
    let tmp = tmp_branch_name(name);
    let refname = format!("refs/heads/{tmp}");
    if !repo.common_dir.join(&refname).exists() {
        return Ok(());
    }
    let wt = Repository::open(path).ctx(|| format!("open worktree {}", path.display()))?;
    let on_tmp = wt
        .find_reference("HEAD")
        .ok()
        .and_then(|h| h.symbolic_target().ok().flatten().map(|t| t == refname))
        .unwrap_or(false);
    if on_tmp {
        retry(
            || format!("detach HEAD in worktree {}", path.display()),
            || wt.set_head_detached(base),
        )?;
    }
    let _guard = write_lock();
    delete_branch(&open_main(repo)?, &tmp)
}

/// Fix the two-way link between the worktree and its git dir if needed; true when the
/// worktree then opens as a linked worktree of this repository.
fn repair_links(repo: &RepoPaths, gitdir: &Path, path: &Path) -> Result<bool, GitError> {
    clear_stale_locks(gitdir)?;
    let gitdir_c = canon(gitdir);
    let path_c = canon(path);
    let dotgit = path.join(".git");

    let file_ok = fs::read_to_string(&dotgit)
        .ok()
        .and_then(|s| s.strip_prefix("gitdir:").map(|r| r.trim().to_string()))
        .map(|target| canon(&path.join(target)) == gitdir_c)
        .unwrap_or(false);
    if !file_ok {
        remove_path(&dotgit)?;
        fs::write(&dotgit, format!("gitdir: {}\n", gitdir_c.display()))
            .ctx(|| format!("write {}", dotgit.display()))?;
    }
    let back = gitdir.join("gitdir");
    let want_back = path_c.join(".git");
    let back_ok = fs::read_to_string(&back)
        .map(|s| Path::new(s.trim()) == want_back)
        .unwrap_or(false);
    if !back_ok {
        fs::write(&back, format!("{}\n", want_back.display()))
            .ctx(|| format!("write {}", back.display()))?;
    }
    let commondir = gitdir.join("commondir");
    if !commondir.is_file() {
        fs::write(
            &commondir,
            format!("{}\n", canon(&repo.common_dir).display()),
        )
        .ctx(|| format!("write {}", commondir.display()))?;
    }
    Ok(match Repository::open(path) {
        Ok(wt) => wt.is_worktree() && canon(wt.commondir()) == canon(&repo.common_dir),
        Err(_) => false,
    })
}

/// Create the worktree from scratch, detached at `base`, through a short-lived branch
/// (`git_worktree_add` otherwise creates a branch named after the worktree).
fn create_worktree(
    repo: &RepoPaths,
    name: &str,
    path: &Path,
    gitdir: &Path,
    base: Oid,
) -> Result<(), GitError> {
    let main = open_main(repo)?;
    let base_commit = main
        .find_commit(base)
        .ctx(|| format!("find base commit {base}"))?;
    let worktrees = repo.common_dir.join("worktrees");
    for dir in [&worktrees, &repo.common_dir.join("ws")] {
        fs::create_dir_all(dir).ctx(|| format!("create {}", dir.display()))?;
    }
    // Whatever is left of a broken worktree goes first (it may have the stale temporary
    // branch checked out).
    remove_path(gitdir)?;
    remove_path(path)?;
    let tmp_branch = tmp_branch_name(name);
    {
        let _guard = write_lock();
        delete_branch(&main, &tmp_branch)?;
        retry(
            || format!("create temporary branch {tmp_branch}"),
            || main.branch(&tmp_branch, &base_commit, true).map(|_| ()),
        )?;
    }
    let added = (|| {
        let reference = main
            .find_reference(&format!("refs/heads/{tmp_branch}"))
            .ctx(|| format!("find branch {tmp_branch}"))?;
        let mut attempt = 0;
        loop {
            remove_path(gitdir)?;
            remove_path(path)?;
            let mut opts = WorktreeAddOptions::new();
            opts.reference(Some(&reference));
            match main.worktree(name, path, Some(&opts)) {
                Ok(_) => break,
                Err(e) if attempt < 40 && is_lock_collision(&e) => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(5 + 5 * attempt));
                }
                Err(e) => {
                    return Err(GitError(format!(
                        "failed to create worktree {name} at {}: {}",
                        path.display(),
                        e.message()
                    )))
                }
            }
        }
        let wt = Repository::open(path).ctx(|| format!("open worktree {}", path.display()))?;
        retry(
            || format!("detach HEAD in worktree {}", path.display()),
            || wt.set_head_detached(base),
        )
    })();
    // The temporary branch goes whatever happened (it is no longer checked out anywhere
    // once HEAD is detached; if the add failed, nothing has it checked out either).
    let deleted = {
        let _guard = write_lock();
        delete_branch(&main, &tmp_branch)
    };
    added.and(deleted)
}

/// Delete a local branch if it exists (retrying on lock collisions).
fn delete_branch(main: &Repository, branch: &str) -> Result<(), GitError> {
    retry(
        || format!("delete branch {branch}"),
        || match main.find_branch(branch, BranchType::Local) {
            Ok(mut b) => b.delete(),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(()),
            Err(e) => Err(e),
        },
    )
}

pub(crate) fn remove_agent_worktree(repo: &RepoPaths, slot: AgentSlot) -> Result<(), GitError> {
    let gitdir = worktree_gitdir(repo, &slot.name);
    {
        let _guard = write_lock();
        let main = open_main(repo)?;
        if let Ok(wt) = main.find_worktree(&slot.name) {
            let mut opts = WorktreePruneOptions::new();
            opts.valid(true).working_tree(true).locked(true);
            // Pruning fails on half-broken worktrees; the removals below finish the job.
            let _ = wt.prune(Some(&mut opts));
        }
        remove_path(&slot.path)?;
        remove_path(&gitdir)?;
    }
    drop(slot);
    Ok(())
}
