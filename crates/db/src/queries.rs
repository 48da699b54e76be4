//! Every statement the tool runs, as free functions over one [`Conn`]: each body is written
//! once and compiled for both backends through [`on_conn!`]. Writes run inside
//! [`Dialect::write_tx`], so concurrent processes queue (SQLite) or are ordered by row locks
//! and unique constraints (PostgreSQL) instead of failing.

use super::backend::{on_conn, Conn, Dialect};
use super::error::{TxError, TxResult};
use super::rows::*;
use super::schema::*;
use super::{MergeRecord, RunState, RunSummary};
use chrono::{NaiveDateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use std::collections::HashMap;
use ws_core::consolidate::Consolidated;
use ws_core::model::{IntegrationRecord, MergeForecast, RunInfo, WorkstreamResult};

/// Most recent first: `created_at`, then the start timestamp, then insertion order.
macro_rules! most_recent_first {
    ($c:expr) => {
        (
            consolidated_runs::created_at.desc(),
            consolidated_runs::timestamp.desc(),
            sql::<BigInt>($c.insertion_order()).desc(),
        )
    };
}

/// Allocate `info.run_id` (or `-2`, `-3`, … appended) and insert the run's rows. The
/// `consolidated_runs` insert does nothing on a taken id, so two processes racing for the
/// same id (PostgreSQL: the second waits for the first to commit) get different ones.
pub fn begin_run(c: &mut Conn, info: &RunInfo, taken: &dyn Fn(&str) -> bool) -> TxResult<String> {
    on_conn!(c, |c| c.write_tx(|c| {
        let mut n = 1u64;
        let id = loop {
            let candidate = if n == 1 {
                info.run_id.clone()
            } else {
                format!("{}-{n}", info.run_id)
            };
            n += 1;
            if taken(&candidate) {
                continue;
            }
            let in_ws_runs: i64 = ws_runs::table
                .filter(ws_runs::run_id.eq(&candidate))
                .count()
                .get_result(c)?;
            if in_ws_runs > 0 {
                continue;
            }
            let inserted = diesel::insert_into(consolidated_runs::table)
                .values(NewRun::started(&candidate, info))
                .on_conflict_do_nothing()
                .execute(c)?;
            if inserted == 1 {
                break candidate;
            }
        };
        diesel::insert_into(ws_runs::table)
            .values(WsRunRow::new(&id, RunState::Running.as_str(), info))
            .execute(c)?;
        Ok(id)
    }))
}

/// Replace the rows of one workstream result.
pub fn record_result(c: &mut Conn, r: &WorkstreamResult) -> TxResult<()> {
    let rows = result_rows(r)?;
    let (run, ws) = (r.run_id.as_str(), r.workstream_id.as_str());
    on_conn!(c, |c| c.write_tx(|c| {
        diesel::delete(
            agent_results::table
                .filter(agent_results::run_id.eq(run))
                .filter(agent_results::workstream_id.eq(ws)),
        )
        .execute(c)?;
        diesel::delete(
            consolidated_errors::table
                .filter(consolidated_errors::run_id.eq(run))
                .filter(consolidated_errors::workstream_id.eq(ws)),
        )
        .execute(c)?;
        diesel::delete(
            ws_result_files::table
                .filter(ws_result_files::run_id.eq(run))
                .filter(ws_result_files::workstream_id.eq(ws)),
        )
        .execute(c)?;
        diesel::delete(
            ws_commits::table
                .filter(ws_commits::run_id.eq(run))
                .filter(ws_commits::workstream_id.eq(ws)),
        )
        .execute(c)?;
        diesel::delete(
            ws_usage::table
                .filter(ws_usage::run_id.eq(run))
                .filter(ws_usage::workstream_id.eq(ws)),
        )
        .execute(c)?;
        diesel::delete(
            ws_attempts::table
                .filter(ws_attempts::run_id.eq(run))
                .filter(ws_attempts::workstream_id.eq(ws)),
        )
        .execute(c)?;
        diesel::insert_into(agent_results::table)
            .values(&rows.result)
            .execute(c)?;
        for chunk in rows.errors.chunks(chunk_rows(ERROR_COLUMNS)) {
            diesel::insert_into(consolidated_errors::table)
                .values(chunk)
                .execute(c)?;
        }
        for chunk in rows.files.chunks(chunk_rows(RESULT_FILE_COLUMNS)) {
            diesel::insert_into(ws_result_files::table)
                .values(chunk)
                .execute(c)?;
        }
        for chunk in rows.commits.chunks(chunk_rows(COMMIT_COLUMNS)) {
            diesel::insert_into(ws_commits::table)
                .values(chunk)
                .execute(c)?;
        }
        if let Some(u) = &rows.usage {
            diesel::insert_into(ws_usage::table).values(u).execute(c)?;
        }
        for chunk in rows.attempts.chunks(chunk_rows(ATTEMPT_COLUMNS)) {
            diesel::insert_into(ws_attempts::table)
                .values(chunk)
                .execute(c)?;
        }
        Ok(())
    }))
}

/// Write the consolidated totals, the forecast and the run's final state.
pub fn finish_run(c: &mut Conn, k: &Consolidated, state: RunState) -> TxResult<()> {
    let run_id = k.run.run_id.as_str();
    let summary = serde_json::to_string(k)
        .map_err(|e| format!("failed to encode consolidated_runs.execution_summary: {e}"))?;
    let recommendations = serde_json::to_string(&k.recommendations)
        .map_err(|e| format!("failed to encode consolidated_runs.recommendations: {e}"))?;
    let (pairs, order, clusters) = forecast_rows(run_id, &k.forecast)?;
    let finished_at = match state {
        RunState::Running => None,
        _ => Some(fmt_ts(&k.run.finished_at.unwrap_or_else(Utc::now))),
    };
    on_conn!(c, |c| c.write_tx(|c| {
        let updated = diesel::update(consolidated_runs::table.find(run_id))
            .set((
                consolidated_runs::total_workstreams.eq(k.total_workstreams as i64),
                consolidated_runs::completed_count.eq(k.completed as i64),
                consolidated_runs::failed_count.eq(k.failed as i64),
                consolidated_runs::skipped_count.eq(k.skipped as i64),
                consolidated_runs::total_files_modified.eq(k.files_modified() as i64),
                consolidated_runs::total_commits.eq(k.commits.len() as i64),
                consolidated_runs::total_errors.eq(k.total_errors as i64),
                consolidated_runs::total_warnings.eq(k.total_warnings as i64),
                consolidated_runs::execution_summary.eq(&summary),
                consolidated_runs::recommendations.eq(&recommendations),
            ))
            .execute(c)?;
        if updated == 0 {
            return Err(TxError::Msg(format!("no run {run_id}")));
        }
        let updated = diesel::update(ws_runs::table.find(run_id))
            .set((
                ws_runs::state.eq(state.as_str()),
                ws_runs::finished_at.eq(&finished_at),
            ))
            .execute(c)?;
        if updated == 0 {
            let mut row = WsRunRow::new(run_id, state.as_str(), &k.run);
            row.finished_at = finished_at.clone();
            diesel::insert_into(ws_runs::table).values(row).execute(c)?;
        }
        diesel::delete(ws_forecast_pairs::table.filter(ws_forecast_pairs::run_id.eq(run_id)))
            .execute(c)?;
        diesel::delete(ws_merge_order::table.filter(ws_merge_order::run_id.eq(run_id)))
            .execute(c)?;
        diesel::delete(ws_forecast_clusters::table.filter(ws_forecast_clusters::run_id.eq(run_id)))
            .execute(c)?;
        for chunk in clusters.chunks(chunk_rows(CLUSTER_COLUMNS)) {
            diesel::insert_into(ws_forecast_clusters::table)
                .values(chunk)
                .execute(c)?;
        }
        for chunk in pairs.chunks(chunk_rows(FORECAST_PAIR_COLUMNS)) {
            diesel::insert_into(ws_forecast_pairs::table)
                .values(chunk)
                .execute(c)?;
        }
        for chunk in order.chunks(chunk_rows(MERGE_ORDER_COLUMNS)) {
            diesel::insert_into(ws_merge_order::table)
                .values(chunk)
                .execute(c)?;
        }
        Ok(())
    }))
}

/// Set the state of one run (and its `finished_at` unless it is `running`).
pub fn set_run_state(c: &mut Conn, run_id: &str, state: RunState) -> TxResult<bool> {
    let finished_at = match state {
        RunState::Running => None,
        _ => Some(fmt_ts(&Utc::now())),
    };
    let n = on_conn!(c, |c| c.write_tx(|c| {
        Ok(diesel::update(ws_runs::table.find(run_id))
            .set((
                ws_runs::state.eq(state.as_str()),
                ws_runs::finished_at.eq(&finished_at),
            ))
            .execute(c)?)
    }))?;
    Ok(n > 0)
}

/// The ids of the runs in state `running`, oldest first (a query for `.load(c)`).
macro_rules! unfinished {
    () => {
        ws_runs::table
            .filter(ws_runs::state.eq(RunState::Running.as_str()))
            .order((ws_runs::started_at.asc(), ws_runs::run_id.asc()))
            .select(ws_runs::run_id)
    };
}

/// Ids of the runs in state `running`, oldest first.
pub fn unfinished_runs(c: &mut Conn) -> TxResult<Vec<String>> {
    Ok(on_conn!(c, |c| unfinished!().load(c))?)
}

/// Mark every `running` run as `interrupted`; returns their ids.
pub fn mark_interrupted_runs(c: &mut Conn) -> TxResult<Vec<String>> {
    let now = fmt_ts(&Utc::now());
    on_conn!(c, |c| c.write_tx(|c| {
        let ids: Vec<String> = unfinished!().load(c)?;
        diesel::update(ws_runs::table.filter(ws_runs::state.eq(RunState::Running.as_str())))
            .set((
                ws_runs::state.eq(RunState::Interrupted.as_str()),
                ws_runs::finished_at.eq(&now),
            ))
            .execute(c)?;
        Ok(ids)
    }))
}

/// The static facts of a run. A run written by another tool (no `ws_runs` row) gets its
/// start from `timestamp` (or `created_at`) and its agent count from its results.
pub fn run_info(c: &mut Conn, run_id: &str) -> TxResult<Option<RunInfo>> {
    on_conn!(c, |c| {
        let row: Option<(String, Option<NaiveDateTime>, Option<WsRunRow>)> =
            consolidated_runs::table
                .left_join(ws_runs::table)
                .filter(consolidated_runs::run_id.eq(run_id))
                .select((
                    consolidated_runs::timestamp,
                    consolidated_runs::created_at,
                    ws_runs::all_columns.nullable(),
                ))
                .first(c)
                .optional()?;
        let Some((timestamp, created_at, ws)) = row else {
            return Ok(None);
        };
        if let Some(ws) = ws {
            return Ok(Some(ws.to_info()?));
        }
        let started_at = parse_ts(&timestamp)
            .or_else(|| created_at.map(|t| t.and_utc()))
            .ok_or_else(|| {
                format!("bad consolidated_runs.timestamp {timestamp:?} of run {run_id}")
            })?;
        let agents: Vec<String> = agent_results::table
            .filter(agent_results::run_id.eq(run_id))
            .select(agent_results::agent_id)
            .distinct()
            .load(c)?;
        Ok(Some(RunInfo {
            run_id: run_id.to_string(),
            started_at,
            finished_at: None,
            agents: agents.len(),
            base: String::new(),
            base_rev: String::new(),
            repo_root: String::new(),
            rerun_of: None,
        }))
    })
}

/// Every result of a run: by start time (unstarted last), then id.
pub fn results(c: &mut Conn, run_id: &str) -> TxResult<Vec<WorkstreamResult>> {
    on_conn!(c, |c| {
        let rows: Vec<AgentResultRow> = agent_results::table
            .filter(agent_results::run_id.eq(run_id))
            .order((
                agent_results::start_time.is_null().asc(),
                agent_results::start_time.asc(),
                agent_results::id.asc(),
            ))
            .select(AgentResultRow::as_select())
            .load(c)?;
        let mut errors: HashMap<String, Vec<ErrorRow>> = HashMap::new();
        for e in consolidated_errors::table
            .filter(consolidated_errors::run_id.eq(run_id))
            .order(consolidated_errors::id.asc())
            .select(ErrorRow::as_select())
            .load(c)?
        {
            errors
                .entry(e.workstream_id.clone().unwrap_or_default())
                .or_default()
                .push(e);
        }
        let mut files: HashMap<String, Vec<ResultFileRow>> = HashMap::new();
        for f in ws_result_files::table
            .filter(ws_result_files::run_id.eq(run_id))
            .order(ws_result_files::id.asc())
            .select(ResultFileRow::as_select())
            .load(c)?
        {
            files.entry(f.workstream_id.clone()).or_default().push(f);
        }
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let e = errors
                .get(&row.workstream_id)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let f = files
                .get(&row.workstream_id)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            out.push(result_from_rows(row, e, f)?);
        }
        Ok(out)
    })
}

/// The stored forecast of a run.
pub fn forecast(c: &mut Conn, run_id: &str) -> TxResult<MergeForecast> {
    on_conn!(c, |c| {
        let pairs: Vec<ForecastPairRow> = ws_forecast_pairs::table
            .filter(ws_forecast_pairs::run_id.eq(run_id))
            .order(ws_forecast_pairs::id.asc())
            .select(ForecastPairRow::as_select())
            .load(c)?;
        let order: Vec<MergeOrderRow> = ws_merge_order::table
            .filter(ws_merge_order::run_id.eq(run_id))
            .order(ws_merge_order::position.asc())
            .select(MergeOrderRow::as_select())
            .load(c)?;
        let clusters: Vec<ClusterRow> = ws_forecast_clusters::table
            .filter(ws_forecast_clusters::run_id.eq(run_id))
            .order(ws_forecast_clusters::cluster_id.asc())
            .select(ClusterRow::as_select())
            .load(c)?;
        Ok(forecast_from_rows(&pairs, &order, &clusters)?)
    })
}

/// Most recent started, non-skipped duration per workstream id.
pub fn expected_durations(c: &mut Conn) -> TxResult<HashMap<String, f64>> {
    on_conn!(c, |c| {
        #[derive(QueryableByName)]
        struct Latest {
            #[diesel(sql_type = Text)]
            workstream_id: String,
            #[diesel(sql_type = diesel::sql_types::Double)]
            duration_seconds: f64,
        }
        let rows: Vec<Latest> = diesel::sql_query(c.expected_durations_sql()).load(c)?;
        Ok(rows
            .into_iter()
            .map(|r| (r.workstream_id, r.duration_seconds))
            .collect())
    })
}

/// Every run id, most recent first.
pub fn run_ids(c: &mut Conn, limit: Option<i64>) -> TxResult<Vec<String>> {
    on_conn!(c, |c| {
        let mut q = consolidated_runs::table
            .select(consolidated_runs::run_id)
            .order(most_recent_first!(c))
            .into_boxed();
        if let Some(l) = limit {
            q = q.limit(l);
        }
        Ok(q.load(c)?)
    })
}

pub fn run_exists(c: &mut Conn, run_id: &str) -> TxResult<bool> {
    on_conn!(c, |c| {
        let n: i64 = consolidated_runs::table
            .filter(consolidated_runs::run_id.eq(run_id))
            .count()
            .get_result(c)?;
        Ok(n > 0)
    })
}

type SummaryRow = (
    (
        String,
        String,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    ),
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn summary_from_row(row: SummaryRow) -> TxResult<RunSummary> {
    let ((run_id, timestamp, tw, cc, fc, sc, tf, tc, te, tww), summary, recs, state, rerun_of) =
        row;
    let recommendations = match recs {
        None => Vec::new(),
        Some(t) => serde_json::from_str(&t)
            .map_err(|e| format!("bad consolidated_runs.recommendations of run {run_id}: {e}"))?,
    };
    let execution_summary = match summary {
        None => serde_json::Value::Null,
        Some(t) => serde_json::from_str(&t)
            .map_err(|e| format!("bad consolidated_runs.execution_summary of run {run_id}: {e}"))?,
    };
    let state = match state.as_deref() {
        Some("running") => RunState::Running,
        Some("interrupted") => RunState::Interrupted,
        Some("paused") => RunState::Paused,
        Some("finished") | None => RunState::Finished,
        Some(other) => {
            return Err(TxError::Msg(format!(
                "bad ws_runs.state {other:?} of run {run_id}"
            )))
        }
    };
    Ok(RunSummary {
        run_id,
        timestamp,
        total_workstreams: tw.unwrap_or(0),
        completed_count: cc.unwrap_or(0),
        failed_count: fc.unwrap_or(0),
        skipped_count: sc.unwrap_or(0),
        total_files_modified: tf.unwrap_or(0),
        total_commits: tc.unwrap_or(0),
        total_errors: te.unwrap_or(0),
        total_warnings: tww.unwrap_or(0),
        recommendations,
        execution_summary,
        state,
        rerun_of,
    })
}

/// Run summaries, most recent first; one run when `run_id` is given.
pub fn summaries(c: &mut Conn, run_id: Option<&str>, limit: i64) -> TxResult<Vec<RunSummary>> {
    on_conn!(c, |c| {
        let mut q = consolidated_runs::table
            .left_join(ws_runs::table)
            .select((
                (
                    consolidated_runs::run_id,
                    consolidated_runs::timestamp,
                    consolidated_runs::total_workstreams,
                    consolidated_runs::completed_count,
                    consolidated_runs::failed_count,
                    consolidated_runs::skipped_count,
                    consolidated_runs::total_files_modified,
                    consolidated_runs::total_commits,
                    consolidated_runs::total_errors,
                    consolidated_runs::total_warnings,
                ),
                consolidated_runs::execution_summary,
                consolidated_runs::recommendations,
                ws_runs::state.nullable(),
                ws_runs::rerun_of.nullable(),
            ))
            .order(most_recent_first!(c))
            .limit(limit)
            .into_boxed();
        if let Some(id) = run_id {
            q = q.filter(consolidated_runs::run_id.eq(id));
        }
        let rows: Vec<SummaryRow> = q.load(c)?;
        rows.into_iter().map(summary_from_row).collect()
    })
}

/// Record merges, ignoring those already recorded; returns how many were new.
pub fn record_merges(c: &mut Conn, merges: &[MergeRecord]) -> TxResult<usize> {
    on_conn!(c, |c| {
        let rows: Vec<MergeRow> = merges
            .iter()
            .map(|m| MergeRow {
                run_id: m.run_id.clone(),
                workstream_id: m.workstream_id.clone(),
                branch: m.branch.clone(),
                tip: m.tip.clone(),
                merge_commit: m.merge_commit.clone(),
                merged_at: fmt_ts(&m.merged_at),
                detected_by: m.detected_by.clone(),
            })
            .collect();
        c.write_tx(|c| {
            let mut new = 0;
            for row in &rows {
                new += diesel::insert_into(ws_merges::table)
                    .values(row)
                    .on_conflict_do_nothing()
                    .execute(c)?;
            }
            Ok(new)
        })
    })
}

/// The recorded merges of a run, by workstream id.
pub fn merged(c: &mut Conn, run_id: &str) -> TxResult<HashMap<String, MergeRecord>> {
    on_conn!(c, |c| {
        let rows: Vec<MergeRow> = ws_merges::table
            .filter(ws_merges::run_id.eq(run_id))
            .order(ws_merges::id.asc())
            .select(MergeRow::as_select())
            .load(c)?;
        rows.into_iter()
            .map(|r| {
                let merged_at = parse_ts(&r.merged_at).ok_or_else(|| {
                    TxError::Msg(format!("bad ws_merges.merged_at {:?}", r.merged_at))
                })?;
                Ok((
                    r.workstream_id.clone(),
                    MergeRecord {
                        run_id: r.run_id,
                        workstream_id: r.workstream_id,
                        branch: r.branch,
                        tip: r.tip,
                        merge_commit: r.merge_commit,
                        merged_at,
                        detected_by: r.detected_by,
                    },
                ))
            })
            .collect()
    })
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Completed results that have a branch with commits of their own and no recorded merge,
/// across all runs (a zero-commit branch has nothing to merge).
pub fn unmerged_completed_count(c: &mut Conn) -> TxResult<usize> {
    on_conn!(c, |c| {
        let q = format!(
            "SELECT COUNT(*) AS n FROM agent_results r \
         WHERE r.status = 'completed' AND ({}) IS NOT NULL \
         AND r.commits_created IS NOT NULL AND r.commits_created <> '[]' \
         AND NOT EXISTS (SELECT 1 FROM ws_merges m \
             WHERE m.run_id = r.run_id AND m.workstream_id = r.workstream_id)",
            c.branch_of_result_sql()
        );
        let row: Count = diesel::sql_query(q).get_result(c)?;
        Ok(row.n as usize)
    })
}

#[derive(QueryableByName)]
struct BranchRow {
    #[diesel(sql_type = Text)]
    branch: String,
    #[diesel(sql_type = Text)]
    run_id: String,
    #[diesel(sql_type = Text)]
    workstream_id: String,
}

/// Branch name → (run id, workstream id) for completed results.
pub fn branch_index(c: &mut Conn) -> TxResult<HashMap<String, (String, String)>> {
    on_conn!(c, |c| {
        let q = format!(
            "SELECT branch, run_id, workstream_id FROM \
         (SELECT {} AS branch, r.run_id AS run_id, \
                 r.workstream_id AS workstream_id, r.id AS id \
          FROM agent_results r WHERE r.status = 'completed') AS b \
         WHERE branch IS NOT NULL ORDER BY id",
            c.branch_of_result_sql()
        );
        let rows: Vec<BranchRow> = diesel::sql_query(q).load(c)?;
        Ok(rows
            .into_iter()
            .map(|r| (r.branch, (r.run_id, r.workstream_id)))
            .collect())
    })
}

// ---------------------------------------------------------------- integrations (issue 10)

/// Insert one integration with its steps and test runs; returns its id.
pub fn record_integration(c: &mut Conn, it: &IntegrationRecord) -> TxResult<i64> {
    let row = NewIntegration {
        run_id: it.run_id.clone(),
        branch: it.branch.clone(),
        onto_rev: it.onto_rev.clone(),
        onto: it.onto.clone(),
        tip: it.tip.clone(),
        test_command: it.test_command.clone(),
        test_runs: it.test_runs as i64,
        merged_count: it.merged.len() as i64,
        excluded_count: it.excluded.len() as i64,
        fast_forwarded: it.fast_forwarded.clone(),
        integrated_at: fmt_ts(&it.integrated_at),
        made_by: it.made_by.clone(),
        reused_tests: it.reused_tests as i64,
    };
    on_conn!(c, |c| c.write_tx(|c| {
        let id: i64 = diesel::insert_into(ws_integrations::table)
            .values(&row)
            .returning(ws_integrations::id)
            .get_result(c)?;
        let (steps, tests) = integration_rows(id, it)?;
        for chunk in steps.chunks(chunk_rows(INTEGRATION_STEP_COLUMNS)) {
            diesel::insert_into(ws_integration_steps::table)
                .values(chunk)
                .execute(c)?;
        }
        for chunk in tests.chunks(chunk_rows(INTEGRATION_TEST_COLUMNS)) {
            diesel::insert_into(ws_integration_tests::table)
                .values(chunk)
                .execute(c)?;
        }
        Ok(id)
    }))
}

/// The most recent integration of a run, with its steps and test runs.
pub fn latest_integration(c: &mut Conn, run_id: &str) -> TxResult<Option<IntegrationRecord>> {
    latest_integration_by(c, run_id, None)
}

/// The most recent integration of a run (`made_by`: only those it made), with its steps
/// and test runs.
pub fn latest_integration_by(
    c: &mut Conn,
    run_id: &str,
    made_by: Option<&str>,
) -> TxResult<Option<IntegrationRecord>> {
    on_conn!(c, |c| {
        let mut q = ws_integrations::table
            .filter(ws_integrations::run_id.eq(run_id))
            .into_boxed();
        if let Some(m) = made_by {
            q = q.filter(ws_integrations::made_by.eq(m));
        }
        let row: Option<IntegrationRow> = q
            .order(ws_integrations::id.desc())
            .select(IntegrationRow::as_select())
            .first(c)
            .optional()?;
        let Some(row) = row else {
            return Ok(None);
        };
        let steps: Vec<IntegrationStepRow> = ws_integration_steps::table
            .filter(ws_integration_steps::integration_id.eq(row.id))
            .order(ws_integration_steps::position.asc())
            .select(IntegrationStepRow::as_select())
            .load(c)?;
        let tests: Vec<IntegrationTestRow> = ws_integration_tests::table
            .filter(ws_integration_tests::integration_id.eq(row.id))
            .order(ws_integration_tests::position.asc())
            .select(IntegrationTestRow::as_select())
            .load(c)?;
        Ok(Some(integration_from_rows(&row, &steps, &tests)?))
    })
}

/// The verdicts of every test run of `test_command` recorded by a run's own integration
/// (`made_by` `ws-run`: `git ws-run --integrate`), by commit: a commit tested twice keeps
/// its latest verdict.
pub fn tested_tips(c: &mut Conn, test_command: &str) -> TxResult<HashMap<String, bool>> {
    on_conn!(c, |c| {
        let rows: Vec<(String, i64)> = ws_integration_tests::table
            .inner_join(
                ws_integrations::table
                    .on(ws_integrations::id.eq(ws_integration_tests::integration_id)),
            )
            .filter(ws_integrations::test_command.eq(test_command))
            .filter(ws_integrations::made_by.eq(IntegrationRecord::MADE_BY_RUN))
            .order((
                ws_integration_tests::integration_id.asc(),
                ws_integration_tests::position.asc(),
            ))
            .select((
                ws_integration_tests::commit_sha,
                ws_integration_tests::passed,
            ))
            .load(c)?;
        Ok(rows.into_iter().map(|(sha, p)| (sha, p != 0)).collect())
    })
}

/// How many integrations of a run were recorded.
pub fn integration_count(c: &mut Conn, run_id: &str) -> TxResult<usize> {
    on_conn!(c, |c| {
        let n: i64 = ws_integrations::table
            .filter(ws_integrations::run_id.eq(run_id))
            .count()
            .get_result(c)?;
        Ok(n.max(0) as usize)
    })
}
