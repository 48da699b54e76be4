//! Shared plumbing for the git façade: discovery, opening repositories, error wrapping, the
//! in-process write lock and the retry loop for git lock-file collisions.

use super::error::{git2_disk_full, io_disk_full};
use super::{GitError, RepoPaths};
use git2::{ErrorCode, Oid, Repository};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Adds "failed to …" context to git2 results.
pub(crate) trait Ctx<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, GitError>;
}

impl<T> Ctx<T> for Result<T, git2::Error> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, GitError> {
        self.map_err(|e| {
            let disk_full = git2_disk_full(&e);
            GitError::failed(format!("failed to {}: {}", what(), e.message()), disk_full)
        })
    }
}

impl<T> Ctx<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, GitError> {
        self.map_err(|e| GitError::failed(format!("failed to {}: {e}", what()), io_disk_full(&e)))
    }
}

/// `a/b/` → `a/b` (git2 hands out directory paths with a trailing slash).
pub(crate) fn clean_path(p: &Path) -> PathBuf {
    p.components().collect()
}

/// Canonical form of a path for comparisons; the cleaned path when it does not exist.
pub(crate) fn canon(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| clean_path(p))
}

pub(crate) fn discover(cwd: &Path) -> Result<RepoPaths, GitError> {
    let repo = Repository::discover(cwd).map_err(|e| {
        if e.code() == ErrorCode::NotFound {
            GitError::NotARepository {
                cwd: cwd.to_path_buf(),
            }
        } else {
            GitError::Other(format!(
                "failed to open the git repository containing {}: {}",
                cwd.display(),
                e.message()
            ))
        }
    })?;
    let common_dir = clean_path(repo.commondir());
    // The main worktree's root, even when started from a linked worktree.
    let main_root = if repo.is_worktree() {
        Repository::open(&common_dir)
            .ok()
            .and_then(|main| main.workdir().map(clean_path))
    } else {
        repo.workdir().map(clean_path)
    };
    let root = match (main_root, repo.workdir()) {
        (Some(root), _) => root,
        // A linked worktree of a bare repository: its own root is the only one there is.
        (None, Some(wd)) if !repo.is_bare() => clean_path(wd),
        _ => return Err(GitError::BareRepository { common_dir }),
    };
    match repo.head() {
        Ok(_) => {}
        Err(e) if e.code() == ErrorCode::UnbornBranch || e.code() == ErrorCode::NotFound => {
            return Err(unborn(&repo, root))
        }
        Err(e) => {
            return Err(GitError::Other(format!(
                "failed to read HEAD of the repository at {}: {}",
                root.display(),
                e.message()
            )))
        }
    }
    let pool = repo
        .config()
        .and_then(|mut c| c.snapshot())
        .ok()
        .and_then(|c| c.get_string(super::POOL_DIR_KEY).ok());
    Ok(RepoPaths::new(root, common_dir).with_pool_setting(pool.as_deref()))
}

/// Why HEAD has no commit: a repository with no commit at all, or a current branch without
/// one while other refs have commits (an orphan branch, a deleted current branch).
fn unborn(repo: &Repository, root: PathBuf) -> GitError {
    let has_commits = repo
        .references()
        .is_ok_and(|mut refs| refs.any(|r| r.is_ok_and(|r| r.target().is_some())));
    let branch = repo.find_reference("HEAD").ok().and_then(|h| {
        let target: &str = h.symbolic_target().ok().flatten()?;
        Some(
            target
                .strip_prefix("refs/heads/")
                .unwrap_or(target)
                .to_string(),
        )
    });
    match branch {
        Some(branch) if has_commits => GitError::BranchWithoutCommits { root, branch },
        _ => GitError::UnbornHead { root },
    }
}

/// Open the main repository (its common dir, so linked worktrees' HEADs never matter).
pub(crate) fn open_main(repo: &RepoPaths) -> Result<Repository, GitError> {
    Repository::open(&repo.common_dir)
        .ctx(|| format!("open the repository at {}", repo.common_dir.display()))
}

/// The repository, opened once, for the coordinator's own questions: resolving the base,
/// reading settings, maintaining `ws/…` branches. Each agent has its own handle
/// ([`super::AgentSlot`]); a `Repo` is `Send` but not `Sync`.
pub struct Repo {
    paths: RepoPaths,
    git: Repository,
}

impl Repo {
    /// Open the repository at `paths` (its common dir, so linked worktrees' HEADs never
    /// matter).
    pub fn open(paths: &RepoPaths) -> Result<Repo, GitError> {
        Ok(Repo {
            git: open_main(paths)?,
            paths: paths.clone(),
        })
    }

    /// [`super::discover`], then open.
    pub fn discover(cwd: &Path) -> Result<Repo, GitError> {
        Repo::open(&discover(cwd)?)
    }

    pub fn paths(&self) -> &RepoPaths {
        &self.paths
    }

    pub(crate) fn git(&self) -> &Repository {
        &self.git
    }

    /// Resolve a revision (`HEAD`, a branch, a SHA, `HEAD~2`) to a commit's full SHA.
    pub fn resolve_commit(&self, rev: &str) -> Result<String, GitError> {
        let commit = self
            .git
            .revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .ctx(|| format!("resolve revision '{rev}' to a commit"))?;
        Ok(commit.id().to_string())
    }

    /// A snapshot of the repository's git config (repository, global, system), read once.
    pub fn config(&self) -> Result<super::config::Config, GitError> {
        self.git
            .config()
            .and_then(|mut c| c.snapshot())
            .map(super::config::Config::from_snapshot)
            .ctx(|| format!("read the git config of {}", self.paths.root.display()))
    }
}

/// The uncommitted changes to tracked files (staged or not) of the worktree containing
/// `worktree`: how many paths, and the first `limit` of them. Untracked files are not
/// counted.
pub fn uncommitted_changes(
    worktree: &Path,
    limit: usize,
) -> Result<(usize, Vec<String>), GitError> {
    let git = Repository::discover(worktree)
        .ctx(|| format!("open the repository containing {}", worktree.display()))?;
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(false)
        .include_ignored(false)
        .exclude_submodules(true);
    let statuses = git
        .statuses(Some(&mut opts))
        .ctx(|| format!("read the status of {}", worktree.display()))?;
    let mut paths = Vec::new();
    let mut n = 0;
    for e in statuses.iter() {
        if e.status().is_empty() || e.status().contains(git2::Status::IGNORED) {
            continue;
        }
        n += 1;
        if paths.len() < limit {
            if let Ok(p) = e.path() {
                paths.push(p.to_string());
            }
        }
    }
    Ok((n, paths))
}

pub(crate) fn parse_oid(sha: &str) -> Result<Oid, GitError> {
    Oid::from_str(sha).map_err(|e| {
        GitError::Other(format!(
            "failed to parse commit id '{sha}': {}",
            e.message()
        ))
    })
}

static GIT_WRITE: Mutex<()> = Mutex::new(());

/// Serialises worktree and branch creation inside this process.
pub(crate) fn write_lock() -> MutexGuard<'static, ()> {
    GIT_WRITE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A failure caused by another process (or libgit2 call) holding one of git's lock files.
/// (libgit2 reports an existing lock file as `GIT_ELOCKED`; a lock file it may not create
/// at all, e.g. for lack of permission, is not a collision and is not retried.)
pub(crate) fn is_lock_collision(e: &git2::Error) -> bool {
    matches!(e.code(), ErrorCode::Locked | ErrorCode::Modified)
        || e.message().contains("failed to lock file")
        || e.message().contains("is locked")
}

/// Run `op`, retrying with a short, growing backoff while it fails on a git lock-file
/// collision (another process writing `config.lock`, a ref lock, `index.lock`, …).
pub(crate) fn retry<T>(
    what: impl Fn() -> String,
    mut op: impl FnMut() -> Result<T, git2::Error>,
) -> Result<T, GitError> {
    const ATTEMPTS: u32 = 40;
    let mut delay_ms = 2u64;
    let mut attempt = 0;
    loop {
        match op() {
            Ok(v) => return Ok(v),
            Err(e) if attempt + 1 < ATTEMPTS && is_lock_collision(&e) => {
                attempt += 1;
                let jitter = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| u64::from(d.subsec_nanos()) % (delay_ms + 1))
                    .unwrap_or(0);
                std::thread::sleep(Duration::from_millis(delay_ms + jitter));
                delay_ms = (delay_ms * 2).min(150);
            }
            Err(e) => {
                let disk_full = git2_disk_full(&e);
                let sentence = format!("failed to {}: {}", what(), e.message());
                return Err(GitError::failed(sentence, disk_full));
            }
        }
    }
}

pub(crate) fn short(oid: Oid) -> String {
    let s = oid.to_string();
    s[..s.len().min(10)].to_string()
}
