//! Fix-ups (`--fix-up N`) in the database: each attempt is a follow-up workstream of kind
//! `fix-up` in `ws_review_followups` (so `git ws-run --resume` runs it as it runs a review's
//! follow-up), with its attempt number, the most attempts allowed, the reason and the
//! integration tip it starts from; and the `--fix-up N` a run was started with.

use super::backend::{on_conn, Dialect};
use super::error::TxError;
use super::schema::*;
use super::ConsolidationDatabase;
use super::DbError;
use diesel::prelude::*;
use ws_core::fixup::{FixupRecord, KIND_FIXUP};

/// Who a fix-up is recorded as made by.
pub const FIXUP_WHO: &str = "git-ws";

impl ConsolidationDatabase {
    /// Record fix-up `rec`, started from `start_ref` with `prompt`. Refused (a unique-key
    /// error) when that attempt already exists.
    pub fn add_fixup(
        &mut self,
        run_id: &str,
        rec: &FixupRecord,
        start_ref: &str,
        prompt: &str,
    ) -> Result<(), DbError> {
        let r = on_conn!(&mut self.conn, |c| c.write_tx(|c| {
            diesel::insert_into(ws_review_followups::table)
                .values((
                    ws_review_followups::run_id.eq(run_id),
                    ws_review_followups::followup_id.eq(&rec.followup_id),
                    ws_review_followups::workstream_id.eq(&rec.workstream_id),
                    ws_review_followups::start_branch.eq(start_ref),
                    ws_review_followups::prompt.eq(prompt),
                    ws_review_followups::who.eq(FIXUP_WHO),
                    ws_review_followups::at.eq(&rec.at),
                    ws_review_followups::kind.eq(KIND_FIXUP),
                    ws_review_followups::attempt.eq(Some(rec.attempt as i64)),
                    ws_review_followups::max_attempts.eq(Some(rec.max_attempts as i64)),
                    ws_review_followups::reason.eq(Some(&rec.reason)),
                    ws_review_followups::detail.eq(Some(&rec.detail)),
                    ws_review_followups::integration_tip.eq(Some(&rec.integration_tip)),
                ))
                .execute(c)?;
            Ok(())
        }));
        r.map_err(|e| {
            self.fail(
                &format!("record fix-up {} of run {run_id}", rec.followup_id),
                e,
            )
        })
    }

    /// Every fix-up of a run, oldest first.
    pub fn fixups(&mut self, run_id: &str) -> Result<Vec<FixupRecord>, DbError> {
        type Row = (
            String,
            String,
            Option<i64>,
            Option<i64>,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
        );
        let r: Result<Vec<Row>, TxError> = on_conn!(&mut self.conn, |c| {
            ws_review_followups::table
                .filter(ws_review_followups::run_id.eq(run_id))
                .filter(ws_review_followups::kind.eq(KIND_FIXUP))
                .order((
                    ws_review_followups::at.asc(),
                    ws_review_followups::followup_id.asc(),
                ))
                .select((
                    ws_review_followups::followup_id,
                    ws_review_followups::workstream_id,
                    ws_review_followups::attempt,
                    ws_review_followups::max_attempts,
                    ws_review_followups::reason,
                    ws_review_followups::detail,
                    ws_review_followups::integration_tip,
                    ws_review_followups::at,
                ))
                .load(c)
                .map_err(TxError::from)
        });
        let rows = r.map_err(|e| self.fail(&format!("read the fix-ups of run {run_id}"), e))?;
        Ok(rows
            .into_iter()
            .map(
                |(followup_id, workstream_id, attempt, max, reason, detail, tip, at)| FixupRecord {
                    followup_id,
                    workstream_id,
                    attempt: attempt.unwrap_or(1).max(0) as usize,
                    max_attempts: max.unwrap_or(1).max(0) as usize,
                    reason: reason.unwrap_or_default(),
                    detail: detail.unwrap_or_default(),
                    integration_tip: tip.unwrap_or_default(),
                    at,
                },
            )
            .collect())
    }

    /// Keep the `--fix-up N` run `run_id` was started with (0: off).
    pub fn set_fixup_limit(&mut self, run_id: &str, max_attempts: usize) -> Result<(), DbError> {
        let r = on_conn!(&mut self.conn, |c| c.write_tx(|c| {
            diesel::delete(ws_fixup_settings::table.filter(ws_fixup_settings::run_id.eq(run_id)))
                .execute(c)?;
            diesel::insert_into(ws_fixup_settings::table)
                .values((
                    ws_fixup_settings::run_id.eq(run_id),
                    ws_fixup_settings::max_attempts.eq(max_attempts as i64),
                ))
                .execute(c)?;
            Ok(())
        }));
        r.map_err(|e| self.fail(&format!("record --fix-up of run {run_id}"), e))
    }

    /// The `--fix-up N` run `run_id` was started with, if it was given.
    pub fn fixup_limit(&mut self, run_id: &str) -> Result<Option<usize>, DbError> {
        let r: Result<Option<i64>, TxError> = on_conn!(&mut self.conn, |c| {
            ws_fixup_settings::table
                .filter(ws_fixup_settings::run_id.eq(run_id))
                .select(ws_fixup_settings::max_attempts)
                .first(c)
                .optional()
                .map_err(TxError::from)
        });
        let n = r.map_err(|e| self.fail(&format!("read --fix-up of run {run_id}"), e))?;
        Ok(n.map(|n| n.max(0) as usize))
    }
}
