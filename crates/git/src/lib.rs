//! Repository façade: every git operation the tool performs (discovery, the agent worktree
//! pool, workstream branches, reading commits and diffs, the in-memory merge forecast,
//! pruning branches), on git2 in process. Nothing outside this crate touches git2. The
//! repository is opened once per handle: [`Repo`] for the coordinator, [`AgentSlot`] for
//! each agent.
//!
//! **May depend on:** `ws-core` (the model and text helpers), git2, and small helpers
//! (similar, ignore, libc, serde). **May not depend on:** the database crate, tokio, clap,
//! or the runtime above it. Process spawning stays in the runtime, except for the one git
//! subprocess helper in [`remote`] and merge drivers.

mod attributes;
pub mod bisect;
mod branch;
pub mod branches;
pub mod config;
#[cfg(test)]
mod differential_tests;
mod error;
mod fixup;
mod forecast;
#[cfg(test)]
mod forecast_tests;
mod include;
mod integrate;
#[cfg(test)]
mod integrate_tests;
mod land;
mod landed;
mod mergedriver;
pub mod remote;
mod repo;
pub mod review;
mod slots;
#[cfg(test)]
mod tests;
mod treemerge;
pub mod watch;
mod xmerge;

pub use fixup::{build_start as fixup_start, ref_tip, start_ref as fixup_start_ref, FixupStart};
pub use include::WORKTREE_INCLUDE;

use std::fmt;
use std::path::{Path, PathBuf};
use ws_core::model::{FileChange, MergeForecast};

pub use error::GitError;

/// Where a repository lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPaths {
    /// Root of the main worktree (where `.state/`, `reports/` and `workstreams/` live),
    /// whichever worktree the command was started from.
    pub root: PathBuf,
    /// The git common dir (`<root>/.git` for a normal repository).
    pub common_dir: PathBuf,
    /// The agent worktree pool: slot `agent-k` is `<pool>/agent-k`. Outside `.git` (coding
    /// agents refuse to edit files under a `.git` directory) and outside the worktree:
    /// git config [`POOL_DIR_KEY`], else [`RepoPaths::default_pool`].
    pub pool: PathBuf,
}

/// The git config key naming the pool directory of a repository (see [`RepoPaths::pool`]).
pub const POOL_DIR_KEY: &str = "ws.poolDir";

/// The file in a pool directory naming the repository it belongs to (its git common dir),
/// so that two repositories never share slots.
pub const POOL_OWNER_FILE: &str = ".git-ws-pool";

impl RepoPaths {
    /// The paths of the repository whose main worktree is `root` and git common dir
    /// `common_dir`, with the pool in its default place.
    pub fn new(root: PathBuf, common_dir: PathBuf) -> RepoPaths {
        RepoPaths {
            pool: RepoPaths::default_pool(&root),
            root,
            common_dir,
        }
    }

    /// The default pool: `.<name>.ws-pool` next to the main worktree `root` (for
    /// `/home/me/project`, `/home/me/.project.ws-pool`). Unique per repository (named after
    /// its directory, beside it), on the same filesystem as the repository, and outside
    /// both `.git` and the worktree, so neither `git status` nor tools that look upward for
    /// a project file (Cargo workspaces, `package.json`) see it.
    pub fn default_pool(root: &Path) -> PathBuf {
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "repository".to_string());
        root.parent()
            .unwrap_or(root)
            .join(format!(".{name}.ws-pool"))
    }

    /// The pool directory as git config [`POOL_DIR_KEY`] gives it (`value`): `~/` expanded,
    /// relative to the main worktree root; the default when empty.
    pub fn with_pool_setting(mut self, value: Option<&str>) -> RepoPaths {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => {}
            Some(v) => {
                let home = std::env::var_os("HOME").map(PathBuf::from);
                self.pool = match (v.strip_prefix("~/"), home) {
                    (Some(rest), Some(home)) => home.join(rest),
                    _ => self.root.join(v),
                };
            }
        }
        self
    }

    /// `<common dir>/ws`: git-ws's own state about the pool (lock files in `locks/`, setup
    /// markers in `setup/`, the process registry in `procs/`). It stays inside `.git`: no
    /// agent works there.
    pub fn ws_dir(&self) -> PathBuf {
        self.common_dir.join("ws")
    }

    /// The agent worktree pool ([`RepoPaths::pool`]).
    pub fn pool_dir(&self) -> PathBuf {
        self.pool.clone()
    }

    /// The worktree of pool slot `slot` (`agent-1`, `agent-1-2`).
    pub fn pool_slot_dir(&self, slot: &str) -> PathBuf {
        self.pool.join(slot)
    }

    /// Where slot `slot` lived before the pool moved out of `.git`
    /// (`<common dir>/ws/agent-k`); such a slot is moved on its next claim, sweep or prune.
    pub fn legacy_slot_dir(&self, slot: &str) -> PathBuf {
        self.ws_dir().join(slot)
    }
}

/// Find the repository containing `cwd`. Errors, each one clear sentence: not a git
/// repository; a bare repository; a repository with no commits.
pub fn discover(cwd: &Path) -> Result<RepoPaths, GitError> {
    repo::discover(cwd)
}

pub use branch::PrepareError;
pub use branches::WsBranch;
pub use repo::{uncommitted_changes, Repo};
pub use slots::{PoolPolicy, PoolSweep, LOCK_REASON};

/// An agent's slot in the worktree pool, and the handle every git operation of that agent
/// goes through: the repository is opened once, when the slot is claimed, and the slot
/// remembers what it learned (the last status scan) for the next workstream.
///
/// Held by this process until dropped (an advisory lock on `<common_dir>/ws/locks/<slot>.lock`,
/// released by the OS if the process dies). Dropping it leaves the worktree as it is;
/// [`AgentSlot::release`] resets it to the base for the next run, [`AgentSlot::remove`]
/// deletes it.
pub struct AgentSlot {
    /// Agent number (1-based).
    pub k: usize,
    /// Worktree name as git knows it (no `/`), e.g. `ws-agent-1` or `ws-agent-1-2`.
    pub name: String,
    /// `<pool>/agent-1` (or `agent-1-2` when another live run holds `agent-1`).
    pub path: PathBuf,
    /// Whether claiming it created the worktree (a full checkout): a cold start.
    pub created: bool,
    /// The base the worktree was last reset to, when it was kept from an earlier run.
    /// Differs from the run's base when the base changed since.
    pub previous_base: Option<String>,
    /// An overflow slot (`agent-k-2`, …), taken because another live run holds `agent-k`;
    /// removed at the end of the run, so the pool stays at the largest `--agents` used.
    pub overflow: bool,
    /// What was repaired when it was claimed (stale locks, links, a half-made worktree).
    pub repairs: Vec<String>,
    paths: RepoPaths,
    /// The worktree's repository, opened once; `None` after it was found broken.
    wt: Option<git2::Repository>,
    /// What the last `collect` learned about the worktree (see [`branch::Scan`]).
    scan: Option<branch::Scan>,
    /// Files the agent writes for itself (`.aider*`), never committed by `collect`: git
    /// pathspec globs, ignored in memory on this slot's repository handle (the slot's own
    /// exclude: no file of the user's, no config, no commit).
    own_files: Vec<String>,
    _lock: std::fs::File,
}

impl fmt::Debug for AgentSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentSlot")
            .field("k", &self.k)
            .field("name", &self.name)
            .field("path", &self.path)
            .field("created", &self.created)
            .field("overflow", &self.overflow)
            .finish_non_exhaustive()
    }
}

/// Claim the worktree for agent number `k` (1-based): the first of `agent-k`, `agent-k-2`, …
/// whose lock is free. Creates the worktree (detached at `base_sha`, without any branch) if
/// missing, repairs it if it is broken (directory deleted, `.git` file gone, stale lock
/// files such as `index.lock`, a half-made worktree left by a crash), and reuses it
/// otherwise, ignored caches included. Safe to call from several threads and processes at
/// once: creation touches no shared ref.
pub fn claim_agent_slot(repo: &RepoPaths, k: usize, base_sha: &str) -> Result<AgentSlot, GitError> {
    slots::claim(repo, k, base_sha)
}

/// Claim pool slot `agent-k` only if it exists and is free, repairing it: how a resume takes
/// back the worktrees of the run that crashed (their caches included) instead of deleting
/// and re-creating them. `Ok(None)` when there is no such slot or another run holds it.
pub fn claim_existing_slot(
    repo: &RepoPaths,
    k: usize,
    base_sha: &str,
) -> Result<Option<AgentSlot>, GitError> {
    slots::claim_existing(repo, k, base_sha)
}

/// Options for preparing a worktree for the next workstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrepareOptions {
    /// Ignored paths (top-level names like `target`, `node_modules`) to keep between
    /// workstreams; everything else untracked or ignored is removed.
    pub keep_ignored: Vec<String>,
}

/// What git says a workstream did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    /// Branch tip after the workstream (after any auto-commit).
    pub head: String,
    /// base..tip, oldest first, full SHAs.
    pub commits: Vec<String>,
    /// Diff base..tip with renames detected; paths exact (unicode, spaces).
    pub files: Vec<FileChange>,
    /// e.g. "uncommitted changes (3 files) were committed on ws/…/ws-02 by git-ws";
    /// "the agent left HEAD on another branch; …".
    pub warnings: Vec<String>,
}

/// Whether `branch` is a valid git branch name (checked before a workstream starts, so a
/// workstream id that cannot name a branch is the workstream's problem, not the pool's).
pub fn valid_branch_name(branch: &str) -> bool {
    git2::Reference::is_valid_name(&format!("refs/heads/{branch}"))
}

/// Sweep the pool at the start of a run: remove idle worktrees past `policy.expiry`,
/// idle overflow slots and half-made worktrees; detach idle worktrees a crashed run left on
/// a branch (so any agent may check that branch out again). Slots a live run holds are
/// never touched.
pub fn sweep_pool(repo: &RepoPaths, policy: &PoolPolicy) -> PoolSweep {
    slots::sweep(repo, policy)
}

/// Refuse a pool directory (git config [`POOL_DIR_KEY`]) that another repository's slots
/// are in: one clear sentence naming both. Writes nothing.
pub fn check_pool_owner(repo: &RepoPaths) -> Result<(), GitError> {
    slots::check_owner(repo)
}

/// Remove every pool worktree no live run holds (directory, git's admin dir and its lock
/// file). Branches and everything else stay.
pub fn prune_pool(repo: &RepoPaths) -> PoolSweep {
    slots::prune(repo)
}

/// The commit HEAD points at in the worktree containing `worktree` (full SHA).
pub fn head_of(worktree: &Path) -> Result<String, GitError> {
    git2::Repository::discover(worktree)
        .and_then(|r| r.head()?.peel_to_commit().map(|c| c.id().to_string()))
        .map_err(|e| {
            GitError::Other(format!(
                "failed to read HEAD of {}: {}",
                worktree.display(),
                e.message()
            ))
        })
}

/// The `ws/…` branches HEAD of the worktree containing `worktree` (the one a merge
/// happened in) has landed, with their tips (for the post-merge hook): merged, squashed or
/// cherry-picked, as [`landed_ws_branches`] finds them.
pub fn merged_ws_branches(
    repo: &RepoPaths,
    worktree: &Path,
) -> Result<Vec<(String, String)>, GitError> {
    landed::merged_ws_branches(repo, worktree)
}

/// The merge forecast with clusters and an explained order (see [`MergeForecast`]): the
/// given branches (workstream id, branch), made from `base_sha`, merged in memory pair by
/// pair where they may conflict and one after another in the suggested order; nothing is
/// written to the repository.
pub fn merge_forecast(
    repo: &RepoPaths,
    base_sha: &str,
    branches: &[(String, String)],
) -> Result<MergeForecast, GitError> {
    forecast::merge_forecast(repo, base_sha, branches)
}

pub use integrate::{Excluded, ExclusionReason, IntegratedStep, Integration, Objects};

/// Merge `branches` (workstream id, tip SHA) one by one onto the commit `onto`, in memory,
/// as merge commits naming each workstream and run `run_id`; a branch that conflicts with
/// what is already integrated is left out (`conflict`, with the paths). Nothing is checked
/// out and no ref is written; `Objects::InMemory` writes nothing at all (a dry run).
pub fn integrate(
    repo: &RepoPaths,
    run_id: &str,
    onto: &str,
    branches: &[(String, String)],
    objects: Objects,
) -> Result<Integration, GitError> {
    integrate::integrate(repo, run_id, onto, branches, objects)
}

/// [`integrate`] of `more` onto the integration `prev` (branches that come in one after
/// another); what `prev` left out stays out. The same commits [`integrate`] of every merged
/// branch in that order makes.
pub fn integrate_more(
    repo: &RepoPaths,
    prev: &Integration,
    more: &[(String, String)],
    absent: &[(String, String)],
) -> Result<Integration, GitError> {
    integrate::integrate_more(repo, prev, more, absent)
}

/// [`integrate`], then `test(tip)`; while the tests fail, leave out the first merge that
/// makes them fail (`breaks-tests`, naming the merge it fails with) and retest (see
/// [`bisect::bisect`]). Returns the final integration (with `test_runs`) and the bisection.
pub fn integrate_and_test<E: From<GitError>>(
    repo: &RepoPaths,
    run_id: &str,
    onto: &str,
    branches: &[(String, String)],
    test: impl FnMut(&str) -> Result<bool, E>,
) -> Result<(Integration, bisect::Bisection), E> {
    integrate::integrate_and_test(repo, run_id, onto, branches, test)
}

/// [`integrate_and_test`], with the whole integration under test handed to `test` (its
/// tip, and which merges it holds), for callers that record each test run.
pub fn integrate_and_test_each<E: From<GitError>>(
    repo: &RepoPaths,
    run_id: &str,
    onto: &str,
    branches: &[(String, String)],
    test: impl FnMut(&Integration) -> Result<bool, E>,
) -> Result<(Integration, bisect::Bisection), E> {
    integrate::integrate_and_test_each(repo, run_id, onto, branches, test)
}

/// [`integrate_and_test_each`] with `jobs` integrations tested at once (see
/// [`bisect::bisect_parallel`]); the first batch holds `onto` alone.
pub fn integrate_and_test_parallel<E: From<GitError>>(
    repo: &RepoPaths,
    run_id: &str,
    onto: &str,
    branches: &[(String, String)],
    jobs: usize,
    test: impl FnMut(&[Integration]) -> Result<Vec<bool>, E>,
) -> Result<(Integration, bisect::ParallelBisection), E> {
    integrate::integrate_and_test_parallel(repo, run_id, onto, branches, jobs, test)
}

pub use land::{checked_out_in, dirty_paths, fast_forward, resolve_onto, Onto};

/// The commit a workstream stacked on its dependencies starts from: `base` with each
/// dependency's branch merged in, in memory. `deps`: (dependency id, branch), in order; a
/// dependency whose branch does not exist is passed over. No dependency branch: `base`; one:
/// its tip; several: a merge commit of them onto `base` (written, so a worktree can check
/// it out). A conflict among them is an error naming both dependencies and the paths.
pub fn stack_start(
    repo: &RepoPaths,
    run_id: &str,
    base: &str,
    deps: &[(String, String)],
) -> Result<String, GitError> {
    let mut tips = Vec::new();
    for (id, branch) in deps {
        if let Some(tip) = branch_tip(repo, branch)? {
            tips.push((id.clone(), tip));
        }
    }
    match tips.as_slice() {
        [] => Ok(base.to_string()),
        [(_, tip)] => Ok(tip.clone()),
        _ => {
            let it = integrate::integrate(repo, run_id, base, &tips, Objects::Write)?;
            match it.excluded.first() {
                None => Ok(it.tip),
                Some(x) => {
                    let before: Vec<&str> = tips
                        .iter()
                        .map(|(id, _)| id.as_str())
                        .take_while(|id| *id != x.workstream_id)
                        .collect();
                    // The engine names the branches it conflicts with when it can tell.
                    let detail = x.detail.replace("the integration", &before.join(" + "));
                    Err(GitError::Other(format!(
                        "its dependencies conflict: {} {detail}; their work cannot be merged \
                         to start from (give it \"stack\": false to start from the base)",
                        x.workstream_id
                    )))
                }
            }
        }
    }
}

/// The full SHA branch `refs/heads/<branch>` points at, if it exists.
pub fn branch_tip(repo: &RepoPaths, branch: &str) -> Result<Option<String>, GitError> {
    let main = repo::open_main(repo)?;
    let tip = main.refname_to_id(&format!("refs/heads/{branch}")).ok();
    Ok(tip.map(|t| t.to_string()))
}

/// What branch `branch` holds beyond `base_sha`, read from the main repository without a
/// worktree or any write: its tip, commits (oldest first) and files. `Ok(None)` when there is
/// no such branch. How `--resume` adopts a finished workstream whose result was never
/// recorded, instead of running it again.
pub fn read_branch(
    repo: &RepoPaths,
    branch: &str,
    base_sha: &str,
) -> Result<Option<Collected>, GitError> {
    let main = repo::open_main(repo)?;
    let Ok(tip) = main.refname_to_id(&format!("refs/heads/{branch}")) else {
        return Ok(None);
    };
    let base = git2::Oid::from_str(base_sha)
        .map_err(|e| GitError::Other(format!("failed to read the base {base_sha}: {e}")))?;
    Ok(Some(Collected {
        head: tip.to_string(),
        commits: branch::commits_between(&main, base, tip)?,
        files: branch::diff_files(&main, base, tip)?,
        warnings: Vec::new(),
    }))
}

/// Whether `sha` names a commit this repository has.
pub fn has_commit(repo: &RepoPaths, sha: &str) -> bool {
    repo::open_main(repo)
        .is_ok_and(|r| git2::Oid::from_str(sha).is_ok_and(|oid| r.find_commit(oid).is_ok()))
}

/// Create or reset branch `branch` at `tip` (refused while it is checked out somewhere).
pub fn write_integration_branch(repo: &RepoPaths, branch: &str, tip: &str) -> Result<(), GitError> {
    integrate::write_branch(repo, branch, tip)
}

pub use landed::{Landed, LandedBy};

/// The `ws/…` branches HEAD of the worktree containing `worktree` has landed, each with how
/// it was recognised: merged (tip is an ancestor), squashed (its changes are in HEAD's tree,
/// or staged by `git merge --squash`), or cherry-picked (its commits' patch-ids are among
/// HEAD's new commits). [`merged_ws_branches`] is the same without the method.
pub fn landed_ws_branches(repo: &RepoPaths, worktree: &Path) -> Result<Vec<Landed>, GitError> {
    landed::landed_ws_branches(repo, worktree)
}

/// The `ws/…` branches whose work the merge that just happened in the worktree containing
/// `worktree` brought in: [`landed_ws_branches`] less what the HEAD before the merge
/// (`ORIG_HEAD`) had already landed, so zero-commit branches and earlier merges are not
/// counted (the post-merge hook).
pub fn landed_by_merge(repo: &RepoPaths, worktree: &Path) -> Result<Vec<Landed>, GitError> {
    landed::landed_by_merge(repo, worktree)
}
