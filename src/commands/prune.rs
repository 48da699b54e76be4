//! Keeping a repository tidy between runs, the command: `git ws-run --prune-worktrees` (the
//! agent worktree pool) and `git ws-run --prune-branches` (the `ws/<run-id>/…` branches of
//! finished runs), both through [`prune`]. Neither touches the database, which keeps every
//! result and commit SHA.

use crate::db::{ConsolidationDatabase, RunState};
use crate::error::Error;
use crate::git::{self, PoolSweep, Repo};
use crate::runner::run_is_live;
use crate::workspace::Workspace;
use chrono::{DateTime, NaiveDateTime, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// What to prune.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prune {
    /// The pool of the repository containing this directory.
    Worktrees(PathBuf),
    Branches(PruneBranches),
}

/// What was pruned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pruned {
    Worktrees(PoolSweep),
    Branches(BranchPrune),
}

/// `git ws-run --prune-worktrees` / `--prune-branches`.
pub fn prune(what: &Prune) -> Result<Pruned, Error> {
    Ok(match what {
        Prune::Worktrees(cwd) => Pruned::Worktrees(prune_worktrees(cwd)?),
        Prune::Branches(opts) => Pruned::Branches(prune_branches(opts)?),
    })
}

/// Remove every pool worktree no live run holds (see [`git::prune_pool`]).
pub fn prune_worktrees(cwd: &Path) -> Result<PoolSweep, Error> {
    let ws = Workspace::discover(cwd)?;
    Ok(git::prune_pool(&ws.repo))
}

/// What `--prune-branches` may delete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneBranches {
    /// Where to look for the repository.
    pub cwd: PathBuf,
    /// The run database: an SQLite path (relative to `cwd`) or a PostgreSQL URL; default env
    /// `GIT_WS_DATABASE_URL`, git config `ws.database`, else [`crate::layout::DEFAULT_DB`]
    /// at the repo root.
    pub db_path: Option<crate::db::DbLocation>,
    /// Also delete unmerged branches of runs that started more than this many days ago.
    pub older_than_days: Option<u64>,
    /// Also delete every other branch of a finished run.
    pub all: bool,
}

/// What `--prune-branches` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BranchPrune {
    /// (branch, tip, why it went: "merged", "older than N days", "--all").
    pub deleted: Vec<(String, String, String)>,
    /// (branch, why it stayed).
    pub kept: Vec<(String, String)>,
    /// One sentence per branch that could not be deleted.
    pub failures: Vec<String>,
}

/// What is known about a run, for deciding about its branches.
struct RunFacts {
    live: bool,
    started: Option<DateTime<Utc>>,
    /// Workstream id → the tip the post-merge hook recorded as merged.
    merged: HashMap<String, String>,
}

/// A run's start from its id (`ma-run-YYYYMMDD-HHMMSS`, maybe with a `-N` suffix).
fn started_from_id(run_id: &str) -> Option<DateTime<Utc>> {
    let stamp = run_id.strip_prefix("ma-run-")?.get(..15)?;
    NaiveDateTime::parse_from_str(stamp, "%Y%m%d-%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

/// The decision for one branch. Pure.
fn verdict(
    facts: &RunFacts,
    rest: &str,
    tip: &str,
    merged_locally: bool,
    opts: &PruneBranches,
    now: DateTime<Utc>,
) -> Result<String, String> {
    if facts.live {
        return Err("its run is still running (or crashed: finish it with --resume)".into());
    }
    if merged_locally || facts.merged.get(rest).is_some_and(|t| t == tip) {
        return Ok("merged".into());
    }
    if let (Some(days), Some(started)) = (opts.older_than_days, facts.started) {
        let age = now.signed_duration_since(started);
        if age.num_seconds() > (days as i64).saturating_mul(86_400) {
            return Ok(format!("older than {days} days"));
        }
    }
    if opts.all {
        return Ok("--all".into());
    }
    Err("not merged".into())
}

/// Delete the `ws/<run-id>/…` branches of finished runs that are merged (recorded by the
/// post-merge hook, or reachable from HEAD or a local branch outside `ws/`), or older than
/// `older_than_days`, or all of them with `all`. Never a branch of a run that is running
/// (its lock is held) or that crashed and was not resumed (state `running`), and never a
/// branch checked out somewhere.
pub fn prune_branches(opts: &PruneBranches) -> Result<BranchPrune, Error> {
    let repo = Repo::discover(&opts.cwd)?;
    let ws = Workspace::of(&opts.cwd, &repo)?;
    let db_path = ws.database(opts.db_path.as_ref())?;
    let mut db = if db_path.exists() {
        Some(ConsolidationDatabase::open_existing(&db_path)?)
    } else {
        None
    };
    let branches = repo.ws_branches()?;
    let tips: Vec<String> = branches.iter().map(|b| b.tip.clone()).collect();
    let merged_locally = repo.merged_into_local(&tips)?;

    let mut facts: BTreeMap<String, RunFacts> = BTreeMap::new();
    for b in &branches {
        if facts.contains_key(&b.run_id) {
            continue;
        }
        let mut f = RunFacts {
            live: run_is_live(&ws.layout, &b.run_id),
            started: started_from_id(&b.run_id),
            merged: HashMap::new(),
        };
        if let Some(db) = db.as_mut() {
            if let Some(s) = db.get_run_summary(&b.run_id)? {
                f.live |= s.state == RunState::Running;
            }
            if let Some(info) = db.run_info(&b.run_id)? {
                f.started = Some(info.started_at);
            }
            f.merged = db
                .merged(&b.run_id)?
                .into_iter()
                .map(|(id, m)| (id, m.tip))
                .collect();
        }
        facts.insert(b.run_id.clone(), f);
    }

    let now = Utc::now();
    let mut out = BranchPrune::default();
    let mut seen_runs: HashSet<&str> = HashSet::new();
    for b in &branches {
        seen_runs.insert(&b.run_id);
        let f = &facts[&b.run_id];
        match verdict(
            f,
            &b.rest,
            &b.tip,
            merged_locally.contains(&b.tip),
            opts,
            now,
        ) {
            Ok(why) => match repo.delete_branch(&b.name, &b.tip) {
                Ok(()) => out.deleted.push((b.name.clone(), b.tip.clone(), why)),
                Err(e) => out.failures.push(e.to_string()),
            },
            Err(why) => out.kept.push((b.name.clone(), why)),
        }
    }
    // A run whose branches are all gone needs no fix-up start points either (they are what
    // `--resume` would start a pending fix-up from).
    let mut runs: Vec<&str> = seen_runs.into_iter().collect();
    runs.sort_unstable();
    for run in runs {
        if facts[run].live
            || out
                .kept
                .iter()
                .any(|(name, _)| name.starts_with(&format!("ws/{run}/")))
        {
            continue;
        }
        let refs = git::remote::refs_under(&ws.repo, &format!("refs/ws/{run}/fixup/"))?;
        let names: Vec<String> = refs.iter().map(|(n, _)| n.clone()).collect();
        match git::remote::delete_refs(&ws.repo, &names) {
            Ok(()) => out.deleted.extend(refs.into_iter().map(|(name, tip)| {
                (
                    name,
                    tip,
                    "a fix-up's start point, and every branch of its run is pruned".to_string(),
                )
            })),
            Err(e) => out.failures.push(e.to_string()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(live: bool, days_ago: i64, merged: &[(&str, &str)]) -> RunFacts {
        RunFacts {
            live,
            started: Some(Utc::now() - chrono::Duration::days(days_ago)),
            merged: merged
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    fn opts(older: Option<u64>, all: bool) -> PruneBranches {
        PruneBranches {
            older_than_days: older,
            all,
            ..Default::default()
        }
    }

    #[test]
    fn a_live_run_keeps_every_branch_whatever_the_flags() {
        let f = facts(true, 400, &[("a", "t")]);
        let v = verdict(&f, "a", "t", true, &opts(Some(1), true), Utc::now());
        assert!(v.unwrap_err().contains("still running"));
    }

    #[test]
    fn merged_by_the_hook_or_reachable_locally_goes() {
        let f = facts(false, 0, &[("a", "t1")]);
        let o = opts(None, false);
        assert_eq!(
            verdict(&f, "a", "t1", false, &o, Utc::now()),
            Ok("merged".into())
        );
        // The branch moved after the recorded merge: not merged any more.
        assert_eq!(
            verdict(&f, "a", "t2", false, &o, Utc::now()),
            Err("not merged".into())
        );
        assert_eq!(
            verdict(&f, "b", "t3", true, &o, Utc::now()),
            Ok("merged".into())
        );
    }

    #[test]
    fn unmerged_goes_only_when_older_than_the_limit_or_with_all() {
        let f = facts(false, 10, &[]);
        let now = Utc::now();
        assert_eq!(
            verdict(&f, "a", "t", false, &opts(Some(7), false), now),
            Ok("older than 7 days".into())
        );
        assert_eq!(
            verdict(&f, "a", "t", false, &opts(Some(30), false), now),
            Err("not merged".into())
        );
        assert_eq!(
            verdict(&f, "a", "t", false, &opts(Some(30), true), now),
            Ok("--all".into())
        );
    }

    #[test]
    fn run_ids_carry_their_start() {
        let t = started_from_id("ma-run-20261124-031500-2").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-24T03:15:00+00:00");
        assert!(started_from_id("other").is_none());
    }
}
