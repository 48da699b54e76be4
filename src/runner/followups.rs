//! The follow-up workstreams a review created (`git ws-review`, stored in the database) as
//! workstreams of a resumed run, or of the live run that picks them up while it goes on
//! ([`LiveFollowups`]): each is the reviewed workstream's definition with the review's
//! prompt, started from the reviewed workstream's branch. Fix-ups (`--fix-up`,
//! [`super::fixup`]) are follow-ups too: the left-out workstream's definition with the
//! fix-up's prompt, started from the commit kept under their `refs/ws/<run>/fixup/` ref.

use super::record::Db;
use crate::db::{ConsolidationDatabase, ReviewFollowup};
use crate::error::Error;
use crate::git::{self, RepoPaths};
use crate::layout::{Layout, RunLogs};
use crate::model::WorkstreamResult;
use crate::workstream::{Action, Loaded, Workstream};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The follow-ups of `run_id` with no result yet.
pub fn pending(
    db: &mut ConsolidationDatabase,
    run_id: &str,
    previous: &[WorkstreamResult],
) -> Result<Vec<ReviewFollowup>, Error> {
    Ok(db
        .review_followups(run_id)?
        .into_iter()
        .filter(|f| !previous.iter().any(|r| r.workstream_id == f.followup_id))
        .collect())
}

/// Add every follow-up of `run_id` to `loaded` (those with a final result are kept, not run
/// again, as for any resumed workstream), built from the reviewed workstream found in `all`.
/// Returns branch → start commit for [`RunContext::start_points`](super::execute::RunContext).
/// A follow-up whose workstream file or branch is gone is not run: a warning says so.
pub fn add(
    db: &mut ConsolidationDatabase,
    repo: &RepoPaths,
    run_id: &str,
    all: &Loaded,
    loaded: &mut Loaded,
) -> Result<HashMap<String, String>, Error> {
    let mut starts = HashMap::new();
    for f in db.review_followups(run_id)? {
        if loaded.valid.iter().any(|w| w.id == f.followup_id) {
            continue;
        }
        let Some(original) = all.valid.iter().find(|w| w.id == f.workstream_id) else {
            loaded.warnings.push(format!(
                "follow-up {} not run: the workstream {} is no longer in the workstreams directory",
                f.followup_id, f.workstream_id
            ));
            continue;
        };
        let Some(tip) = start_tip(repo, &f.start_branch)? else {
            loaded.warnings.push(format!(
                "follow-up {} not run: its start {} no longer exists",
                f.followup_id, f.start_branch
            ));
            continue;
        };
        starts.insert(super::execute::branch_name(run_id, &f.followup_id), tip);
        loaded.valid.push(followup_workstream(original, &f));
    }
    Ok(starts)
}

/// How often a live local run looks for follow-ups recorded for it.
pub const LIVE_POLL: Duration = Duration::from_secs(1);

/// Who runs a follow-up recorded now for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pickup {
    /// The run's coordinator is alive and still taking follow-ups: it runs it before it ends.
    Live,
    /// The run is not live (or its coordinator is finishing): `git ws-run --resume RUN`.
    Resume,
    /// A run several machines share: its workers do not take follow-ups while it is live.
    Shared,
}

/// Who runs a follow-up of `run_id` recorded now: its live coordinator if one holds the
/// run's lock here and has not closed it to follow-ups, else `git ws-run --resume`.
pub fn pickup(
    db: &mut ConsolidationDatabase,
    layout: &Layout,
    run_id: &str,
) -> Result<Pickup, Error> {
    if db.shared_run(run_id)?.is_some() {
        return Ok(Pickup::Shared);
    }
    let closed = layout.run_logs(run_id).followups_closed().exists();
    Ok(if !closed && super::run_is_live(layout, run_id) {
        Pickup::Live
    } else {
        Pickup::Resume
    })
}

/// A follow-up a live run picked up: its workstream, the branch it runs on and the commit
/// that branch starts from (its start branch's tip).
#[derive(Debug, Clone)]
pub struct Picked {
    pub ws: Workstream,
    /// The workstream it follows up.
    pub of: String,
    pub branch: String,
    pub tip: String,
}

/// A live local run's watch on the follow-ups recorded for it in the database (by
/// `git ws-review` or anything else that records one): each found is run by the live run.
/// The run says when it takes no more ([`LiveFollowups::close`]): a follow-up recorded after
/// that stays in the database, without a result, for `git ws-run --resume`.
pub struct LiveFollowups {
    db: Db,
    repo: RepoPaths,
    run_id: String,
    closed: PathBuf,
    last: Option<Instant>,
    /// Follow-ups that cannot run here (said once).
    refused: HashSet<String>,
}

impl LiveFollowups {
    /// The watch of run `run_id`, open to follow-ups (a marker an earlier attempt left is
    /// removed).
    pub fn new(db: Db, repo: RepoPaths, logs: &RunLogs, run_id: &str) -> LiveFollowups {
        let closed = logs.followups_closed();
        let _ = std::fs::remove_file(&closed);
        LiveFollowups {
            db,
            repo,
            run_id: run_id.to_string(),
            closed,
            last: None,
            refused: HashSet::new(),
        }
    }

    /// When the next look is due.
    pub fn next_due(&self) -> Instant {
        self.last.map_or_else(Instant::now, |t| t + LIVE_POLL)
    }

    /// No more follow-ups are taken (best effort: without the marker a page says the live
    /// run runs it, and `--resume` still does).
    pub fn close(&self) {
        if !self.closed.exists() {
            let _ = std::fs::write(&self.closed, b"");
        }
    }

    fn reopen(&self) {
        let _ = std::fs::remove_file(&self.closed);
    }

    /// The follow-ups recorded for the run whose id is not in `valid` (the workstreams the
    /// run has), each built from the workstream it follows up; and notes on those that
    /// cannot run. `now`: look even if the last look was less than [`LIVE_POLL`] ago. A
    /// database error is a note; the next look tries again.
    pub async fn poll(
        &mut self,
        valid: &HashMap<String, Workstream>,
        now: bool,
    ) -> (Vec<Picked>, Vec<String>) {
        let due = self.last.is_none_or(|t| t.elapsed() >= LIVE_POLL);
        if !now && !due {
            return (Vec::new(), Vec::new());
        }
        self.last = Some(Instant::now());
        let run_id = self.run_id.clone();
        let found = match self.db.call(move |db| db.review_followups(&run_id)).await {
            Ok(f) => f,
            Err(e) => {
                return (
                    Vec::new(),
                    vec![format!("failed to look for follow-ups: {e}")],
                )
            }
        };
        let (mut picked, mut notes) = (Vec::new(), Vec::new());
        for f in found {
            if valid.contains_key(&f.followup_id) || self.refused.contains(&f.followup_id) {
                continue;
            }
            let why = match (
                valid.get(&f.workstream_id),
                start_tip(&self.repo, &f.start_branch),
            ) {
                (Some(original), Ok(Some(tip))) => {
                    picked.push(Picked {
                        ws: followup_workstream(original, &f),
                        of: f.workstream_id.clone(),
                        branch: super::execute::branch_name(&self.run_id, &f.followup_id),
                        tip,
                    });
                    continue;
                }
                (None, _) => format!("the workstream {} is not part of this run", f.workstream_id),
                (_, Ok(None)) => format!("its start branch {} no longer exists", f.start_branch),
                (_, Err(e)) => format!("its start branch {} cannot be read: {e}", f.start_branch),
            };
            notes.push(format!(
                "follow-up {} not run by the live run: {why} (git ws-run --resume {} tries again)",
                f.followup_id, self.run_id
            ));
            self.refused.insert(f.followup_id);
        }
        if !picked.is_empty() {
            self.reopen();
        }
        (picked, notes)
    }
}

/// The commit a follow-up starts from: its start branch's tip (a review), or the commit
/// kept under its `refs/` ref (a fix-up).
fn start_tip(repo: &RepoPaths, start: &str) -> Result<Option<String>, git::GitError> {
    if start.starts_with("refs/") {
        git::ref_tip(repo, start)
    } else {
        git::branch_tip(repo, start)
    }
}

/// The reviewed workstream's definition (agent preset, test, env, limits) with the review's
/// id, title and prompt, depending on nothing. Pure.
pub fn followup_workstream(original: &Workstream, f: &ReviewFollowup) -> Workstream {
    let mut w = original.clone();
    w.id = f.followup_id.clone();
    w.title = Some(match crate::fixup::parse_id(&f.followup_id) {
        Some((o, k)) => format!("Fix-up {k} of {o}"),
        None => format!("Review of {} by {}", f.workstream_id, f.who),
    });
    w.action = Action::Prompt(f.prompt.clone());
    w.depends_on = Vec::new();
    w.warnings = Vec::new();
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follow_up_is_the_reviewed_definition_with_the_reviews_prompt_on_a_valid_branch() {
        let (original, _) = crate::workstream::parse_workstream(
            "p1.json",
            br#"{"id": "p1", "prompt": "do it", "agent": "claude", "test": "make check", "depends_on": ["p0"], "env": {"K": "v"}}"#,
        )
        .unwrap();
        let f = ReviewFollowup {
            followup_id: "p1~review2".into(),
            workstream_id: "p1".into(),
            start_branch: "ws/r/p1".into(),
            prompt: "fix the comments".into(),
            who: "alice".into(),
            at: "t".into(),
        };
        let w = followup_workstream(&original, &f);
        assert_eq!(w.id, "p1~review2");
        assert_eq!(w.action, Action::Prompt("fix the comments".into()));
        assert_eq!(w.agent, original.agent);
        assert_eq!(w.test.as_deref(), Some("make check"));
        assert_eq!(w.env.get("K").map(String::as_str), Some("v"));
        assert!(w.depends_on.is_empty());
        assert_eq!(w.title.as_deref(), Some("Review of p1 by alice"));
        let branch = super::super::execute::branch_name("r", &w.id);
        assert_eq!(branch, "ws/r/p1.review2");
        assert!(git::valid_branch_name(&branch));
    }

    #[test]
    fn a_fix_up_is_the_original_definition_titled_as_a_fix_up_on_a_valid_branch() {
        let (original, _) = crate::workstream::parse_workstream(
            "p1.json",
            br#"{"id": "p1", "prompt": "do it", "agent": "codex", "test": "make check"}"#,
        )
        .unwrap();
        let f = ReviewFollowup {
            followup_id: "p1~fix2".into(),
            workstream_id: "p1".into(),
            start_branch: "refs/ws/r/fixup/p1.fix2".into(),
            prompt: "Fix-up 2 of 2 for workstream p1".into(),
            who: "git-ws".into(),
            at: "t".into(),
        };
        let w = followup_workstream(&original, &f);
        assert_eq!(w.title.as_deref(), Some("Fix-up 2 of p1"));
        assert_eq!(w.agent, original.agent);
        assert_eq!(w.test.as_deref(), Some("make check"));
        let branch = super::super::execute::branch_name("r", &w.id);
        assert_eq!(branch, "ws/r/p1.fix2");
        assert!(git::valid_branch_name(&branch));
    }
}
