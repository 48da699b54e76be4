//! The follow-up workstreams a review created (`git ws-review`, stored in the database) as
//! workstreams of a resumed run: each is the reviewed workstream's definition with the
//! review's prompt, started from the reviewed workstream's branch. Fix-ups (`--fix-up`,
//! [`super::fixup`]) are follow-ups too: the left-out workstream's definition with the
//! fix-up's prompt, started from the commit kept under their `refs/ws/<run>/fixup/` ref.

use crate::db::{ConsolidationDatabase, ReviewFollowup};
use crate::error::Error;
use crate::git::{self, RepoPaths};
use crate::model::WorkstreamResult;
use crate::workstream::{Action, Loaded, Workstream};
use std::collections::HashMap;

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
        let tip = if f.start_branch.starts_with("refs/") {
            git::ref_tip(repo, &f.start_branch)?
        } else {
            git::branch_tip(repo, &f.start_branch)?
        };
        let Some(tip) = tip else {
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
