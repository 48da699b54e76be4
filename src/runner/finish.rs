//! The end of a run, in named steps: let go of the agent worktrees (kept as the pool, or
//! removed), gather every result, forecast the merges of the completed branches, consolidate,
//! write the report (keeping a reports directory the tool created out of `git status`)
//! and, last, the run's totals and state. Problems here never lose a result: they become
//! notes on the outcome.

use super::record::Db;
use super::{Resolved, RunOutcome};
use crate::consolidate::{self, Consolidated};
use crate::db::RunState;
use crate::git::{self, PrepareOptions, RepoPaths};
use crate::layout::Reports;
use crate::model::{MergeForecast, RunInfo, Status, WorkstreamResult};
use crate::outcome::Unrecorded;
use crate::report::{self, ReportModel};
use chrono::Utc;
use std::collections::HashSet;
use std::path::PathBuf;

/// Everything the last phase of a local run needs.
pub(super) struct Local {
    pub r: Resolved,
    pub info: RunInfo,
    /// Final results of an earlier attempt of this run (resume).
    pub kept: Vec<WorkstreamResult>,
    /// This attempt's results, as recorded.
    pub results: Vec<WorkstreamResult>,
    pub notes: Vec<String>,
    pub slots: Vec<git::AgentSlot>,
    pub interrupted: bool,
    pub db: Db,
    /// Results the database never took, and the spool file that holds them.
    pub unrecorded: Vec<WorkstreamResult>,
    pub spool: Option<PathBuf>,
}

/// Finish a local run: the pool let go of, the forecast, the consolidation, the report and
/// the totals; the state says `finished` only once everything else is done, so a crash at
/// any earlier instant leaves a run that `--resume` finishes.
pub(super) async fn finish_local(f: Local) -> RunOutcome {
    let Local {
        r,
        mut info,
        kept,
        results,
        mut notes,
        slots,
        interrupted,
        db,
        unrecorded,
        spool,
    } = f;
    info.finished_at = Some(Utc::now());
    // The agent worktrees, meanwhile (branches stay either way; nothing below moves one).
    let releasing = tokio::spawn(let_go_of_slots(
        slots,
        r.base.clone(),
        r.keep_worktrees,
        r.keep_ignored.clone(),
    ));
    let all = merged_results(kept, results);
    let (forecast, note) = forecast(&r.ws.repo, &r.base, &all).await;
    notes.extend(note);
    let mut consolidated = consolidate::consolidate(&info, &all, forecast);
    consolidated.notes = notes.clone();
    // A run with a result missing from the database is not finished there: it stays
    // `running`, so `git ws-merge` refuses it and `--resume` records what is missing.
    let state = if !unrecorded.is_empty() {
        RunState::Running
    } else if interrupted {
        RunState::Interrupted
    } else if consolidated.deferred > 0 {
        RunState::Paused
    } else {
        RunState::Finished
    };
    let (report_path, report_error) = write_report(r.ws.layout.reports(), &consolidated, &all);
    match releasing.await {
        Ok(more) => notes.extend(more),
        Err(e) => notes.push(format!("failed to let go of the agent worktrees: {e}")),
    }
    let totals = consolidated.clone();
    if let Err(e) = db.call(move |db| db.finish_run(&totals, state)).await {
        notes.push(format!(
            "failed to write the run totals to the database: {e}"
        ));
    }
    RunOutcome {
        run_id: info.run_id,
        consolidated,
        results: all,
        db_path: r.db_path,
        report_path,
        report_error,
        interrupted,
        notes,
        shared: None,
        unrecorded: unrecorded
            .into_iter()
            .map(|x| Unrecorded {
                workstream_id: x.workstream_id,
                status: x.status,
                branch: x.branch,
                spool: spool.clone(),
            })
            .collect(),
    }
}

/// An earlier attempt's results with this attempt's replacing theirs, in report order.
fn merged_results(
    kept: Vec<WorkstreamResult>,
    fresh: Vec<WorkstreamResult>,
) -> Vec<WorkstreamResult> {
    let ids: HashSet<&str> = fresh.iter().map(|x| x.workstream_id.as_str()).collect();
    let mut all: Vec<WorkstreamResult> = kept
        .into_iter()
        .filter(|x| !ids.contains(x.workstream_id.as_str()))
        .collect();
    all.extend(fresh);
    all.sort_by(consolidate::result_order);
    all
}

/// The merge forecast of the completed branches that changed files (in memory); an empty
/// one and a note when it cannot be made.
pub(super) async fn forecast(
    repo: &RepoPaths,
    base: &str,
    all: &[WorkstreamResult],
) -> (MergeForecast, Option<String>) {
    let mut completed: Vec<&WorkstreamResult> = all
        .iter()
        .filter(|x| x.status == Status::Completed && !x.files.is_empty())
        .collect();
    completed.sort_by_key(|x| x.end_time);
    let branches: Vec<(String, String)> = completed
        .iter()
        .filter_map(|x| Some((x.workstream_id.clone(), x.branch.clone()?)))
        .collect();
    // A completed fix-up (`<id>~fixK`) is merged in place of its original and earlier
    // attempts (`git ws-merge`), so they are not forecast beside it.
    let ids: Vec<String> = branches.iter().map(|(id, _)| id.clone()).collect();
    let superseded = crate::fixup::superseded(&ids);
    let branches: Vec<(String, String)> = branches
        .into_iter()
        .filter(|(id, _)| !superseded.contains(id))
        .collect();
    let (repo, base) = (repo.clone(), base.to_string());
    let res = tokio::task::spawn_blocking(move || git::merge_forecast(&repo, &base, &branches))
        .await
        .map_err(|e| git::GitError::Other(e.to_string()));
    match res {
        Ok(Ok(f)) => (f, None),
        Ok(Err(e)) | Err(e) => (
            MergeForecast::default(),
            Some(format!("failed to forecast merges: {e}")),
        ),
    }
}

/// At the end of a run, every agent at once: reset its worktree to the base and keep it as
/// the pool, or remove it (`keep` false, and always for overflow slots, so the pool stays
/// at the largest `--agents` used). Returns a note per failure.
pub(super) async fn let_go_of_slots(
    slots: Vec<git::AgentSlot>,
    base: String,
    keep: bool,
    keep_ignored: Vec<String>,
) -> Vec<String> {
    let mut tasks = tokio::task::JoinSet::new();
    for slot in slots {
        let base = base.clone();
        let opts = PrepareOptions {
            keep_ignored: keep_ignored.clone(),
        };
        tasks.spawn_blocking(move || {
            let name = slot.name.clone();
            let res = if keep && !slot.overflow {
                slot.release(&base, &opts)
            } else {
                slot.remove()
            };
            res.err()
                .map(|e| format!("failed to let go of agent worktree {name}: {e}"))
        });
    }
    let mut notes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Some(note)) => notes.push(note),
            Ok(None) => {}
            Err(e) => notes.push(format!("failed to let go of an agent worktree: {e}")),
        }
    }
    notes
}

/// Write the run's Markdown report; its path, or why it could not be written.
pub(super) fn write_report(
    reports: &Reports,
    c: &Consolidated,
    results: &[WorkstreamResult],
) -> (Option<PathBuf>, Option<String>) {
    let model = ReportModel {
        consolidated: c,
        results,
    };
    let text = report::render_markdown(&model);
    let path = reports.file(&c.run.run_id);
    // Through a temporary file and a rename: a failed write leaves the old report or none.
    let res = reports
        .make_dir()
        .and_then(|_| super::spool::write_atomic(&path, text.as_bytes()));
    match res {
        Ok(()) => match write_html(reports, &c.run.run_id, &model.view()) {
            None => (Some(path), None),
            Some(e) => (Some(path), Some(e)),
        },
        Err(e) => (
            None,
            Some(format!(
                "failed to write the report {}: {e} ({})",
                path.display(),
                if path.is_file() {
                    "the previous report is left as it was"
                } else {
                    "no report was written"
                }
            )),
        ),
    }
}

/// The HTML page beside the report, when `ws.htmlReport` is on; why it could not be
/// written, if it could not.
pub(crate) fn write_html(
    reports: &Reports,
    run_id: &str,
    view: &crate::view::RunView,
) -> Option<String> {
    if !reports.html() {
        return None;
    }
    let page = reports.html_file(run_id);
    super::spool::write_atomic(&page, report::render_html(view).as_bytes())
        .err()
        .map(|e| format!("failed to write the HTML report {}: {e}", page.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_attempt_replaces_the_earlier_results_of_the_same_workstreams() {
        let old = |id: &str, s| WorkstreamResult::new("r", "agent-1", id, s);
        let all = merged_results(
            vec![old("a", Status::Completed), old("b", Status::Failed)],
            vec![old("b", Status::Completed)],
        );
        let got: Vec<(&str, Status)> = all
            .iter()
            .map(|x| (x.workstream_id.as_str(), x.status))
            .collect();
        assert_eq!(got, [("a", Status::Completed), ("b", Status::Completed)]);
    }
}
