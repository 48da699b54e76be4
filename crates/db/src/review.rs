//! What reviewers did from `git ws-review`: review actions with who and when, the marks that
//! leave a workstream out of the next `git ws-merge`, and the follow-up workstreams batched
//! comments create (run by `git ws-run --resume`).

use super::backend::{on_conn, Dialect};
use super::error::TxError;
use super::schema::*;
use super::ConsolidationDatabase;
use super::DbError;
use diesel::prelude::*;
use std::collections::HashMap;

/// Insert one `ws_review_actions` row on connection `$c` (either backend).
macro_rules! insert_action {
    ($c:expr, $run_id:expr, $a:expr $(,)?) => {{
        let a: &ReviewAction = $a;
        diesel::insert_into(ws_review_actions::table)
            .values((
                ws_review_actions::run_id.eq($run_id),
                ws_review_actions::workstream_id.eq(a.workstream_id.as_deref()),
                ws_review_actions::action.eq(&a.action),
                ws_review_actions::who.eq(&a.who),
                ws_review_actions::at.eq(&a.at),
                ws_review_actions::detail.eq(&a.detail),
            ))
            .execute($c)
    }};
}

/// One recorded review action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewAction {
    /// `None`: an action on the whole run.
    pub workstream_id: Option<String>,
    /// [`ReviewAction::LEAVE_OUT`], [`ReviewAction::PUT_BACK`], [`ReviewAction::COMMENTS`]
    /// or [`ReviewAction::DRY_RUN`].
    pub action: String,
    /// Who: the OS user name, else git's `user.name`.
    pub who: String,
    /// When, RFC 3339 UTC.
    pub at: String,
    /// One sentence.
    pub detail: String,
}

impl ReviewAction {
    pub const LEAVE_OUT: &'static str = "leave-out";
    pub const PUT_BACK: &'static str = "put-back";
    pub const COMMENTS: &'static str = "comments";
    pub const DRY_RUN: &'static str = "dry-run";
}

/// One comment on a line of a workstream's branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewComment {
    pub path: String,
    /// 1-based.
    pub line: i64,
    pub body: String,
}

/// A follow-up workstream a review created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewFollowup {
    /// `<workstream_id>~reviewN`.
    pub followup_id: String,
    pub workstream_id: String,
    /// The branch it starts from: the reviewed workstream's.
    pub start_branch: String,
    pub prompt: String,
    pub who: String,
    pub at: String,
}

/// The id of the `n`th follow-up of `workstream_id`.
pub fn followup_id(workstream_id: &str, n: usize) -> String {
    format!("{workstream_id}~review{n}")
}

impl ConsolidationDatabase {
    /// Record one review action.
    pub fn record_review_action(&mut self, run_id: &str, a: &ReviewAction) -> Result<(), DbError> {
        let r = on_conn!(&mut self.conn, |c| c.write_tx(|c| {
            insert_action!(c, run_id, a)?;
            Ok(())
        }));
        r.map_err(|e| self.fail(&format!("record a review action on run {run_id}"), e))
    }

    /// Every review action of a run, oldest first.
    pub fn review_actions(&mut self, run_id: &str) -> Result<Vec<ReviewAction>, DbError> {
        type Row = (Option<String>, String, String, String, String);
        let r: Result<Vec<Row>, TxError> = on_conn!(&mut self.conn, |c| {
            ws_review_actions::table
                .filter(ws_review_actions::run_id.eq(run_id))
                .order(ws_review_actions::id.asc())
                .select((
                    ws_review_actions::workstream_id,
                    ws_review_actions::action,
                    ws_review_actions::who,
                    ws_review_actions::at,
                    ws_review_actions::detail,
                ))
                .load(c)
                .map_err(TxError::from)
        });
        let rows = r.map_err(|e| self.fail(&format!("read the review of run {run_id}"), e))?;
        Ok(rows
            .into_iter()
            .map(|(workstream_id, action, who, at, detail)| ReviewAction {
                workstream_id,
                action,
                who,
                at,
                detail,
            })
            .collect())
    }

    /// The workstreams of a run a reviewer left out of the next `git ws-merge` (the latest of
    /// its leave-out and put-back actions is a leave-out), with that action.
    pub fn left_out(&mut self, run_id: &str) -> Result<HashMap<String, ReviewAction>, DbError> {
        let mut marks: HashMap<String, ReviewAction> = HashMap::new();
        for a in self.review_actions(run_id)? {
            let Some(ws) = a.workstream_id.clone() else {
                continue;
            };
            if a.action == ReviewAction::LEAVE_OUT {
                marks.insert(ws, a);
            } else if a.action == ReviewAction::PUT_BACK {
                marks.remove(&ws);
            }
        }
        Ok(marks)
    }

    /// Store batched comments on `workstream_id` and the one follow-up workstream that carries
    /// them, `<workstream_id>~reviewN` (N one more than its follow-ups so far), with a
    /// [`ReviewAction::COMMENTS`] action, in one transaction. `prompt` makes the prompt from
    /// the follow-up's id. Returns the follow-up's id.
    #[allow(clippy::too_many_arguments)]
    pub fn add_review_followup(
        &mut self,
        run_id: &str,
        workstream_id: &str,
        start_branch: &str,
        comments: &[ReviewComment],
        prompt: &dyn Fn(&str) -> String,
        who: &str,
        at: &str,
    ) -> Result<String, DbError> {
        let r = on_conn!(&mut self.conn, |c| {
            c.write_tx(|c| {
            let before: i64 = ws_review_followups::table
                .filter(ws_review_followups::run_id.eq(run_id))
                .filter(ws_review_followups::workstream_id.eq(workstream_id))
                .filter(ws_review_followups::kind.eq(ws_core::fixup::KIND_REVIEW))
                .count()
                .get_result(c)?;
            let id = followup_id(workstream_id, before as usize + 1);
            diesel::insert_into(ws_review_followups::table)
                .values((
                    ws_review_followups::run_id.eq(run_id),
                    ws_review_followups::followup_id.eq(&id),
                    ws_review_followups::workstream_id.eq(workstream_id),
                    ws_review_followups::start_branch.eq(start_branch),
                    ws_review_followups::prompt.eq(prompt(&id)),
                    ws_review_followups::who.eq(who),
                    ws_review_followups::at.eq(at),
                ))
                .execute(c)?;
            for k in comments {
                diesel::insert_into(ws_review_comments::table)
                    .values((
                        ws_review_comments::run_id.eq(run_id),
                        ws_review_comments::workstream_id.eq(workstream_id),
                        ws_review_comments::followup_id.eq(&id),
                        ws_review_comments::path.eq(&k.path),
                        ws_review_comments::line.eq(k.line),
                        ws_review_comments::body.eq(&k.body),
                        ws_review_comments::who.eq(who),
                        ws_review_comments::at.eq(at),
                    ))
                    .execute(c)?;
            }
            let n = comments.len();
            insert_action!(
                c,
                run_id,
                &ReviewAction {
                    workstream_id: Some(workstream_id.to_string()),
                    action: ReviewAction::COMMENTS.to_string(),
                    who: who.to_string(),
                    at: at.to_string(),
                    detail: format!(
                        "{n} comment{} sent as follow-up {id} (a live run runs it before it ends, else git ws-run --resume {run_id})",
                        if n == 1 { "" } else { "s" }
                    ),
                },
            )?;
            Ok(id)
        })
        });
        r.map_err(|e| self.fail(&format!("record review comments on run {run_id}"), e))
    }

    /// The follow-ups of a run, in the order they were created: those of reviews and the
    /// fix-ups (`--fix-up`, [`Self::fixups`] has their attempt and reason).
    pub fn review_followups(&mut self, run_id: &str) -> Result<Vec<ReviewFollowup>, DbError> {
        type Row = (String, String, String, String, String, String);
        let r: Result<Vec<Row>, TxError> = on_conn!(&mut self.conn, |c| {
            ws_review_followups::table
                .filter(ws_review_followups::run_id.eq(run_id))
                .order((
                    ws_review_followups::at.asc(),
                    ws_review_followups::followup_id.asc(),
                ))
                .select((
                    ws_review_followups::followup_id,
                    ws_review_followups::workstream_id,
                    ws_review_followups::start_branch,
                    ws_review_followups::prompt,
                    ws_review_followups::who,
                    ws_review_followups::at,
                ))
                .load(c)
                .map_err(TxError::from)
        });
        let rows = r.map_err(|e| self.fail(&format!("read the follow-ups of run {run_id}"), e))?;
        Ok(rows
            .into_iter()
            .map(
                |(followup_id, workstream_id, start_branch, prompt, who, at)| ReviewFollowup {
                    followup_id,
                    workstream_id,
                    start_branch,
                    prompt,
                    who,
                    at,
                },
            )
            .collect())
    }
}
