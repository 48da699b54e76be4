//! Database rows and their conversion to and from the shared model (pure: no I/O). JSON
//! column layouts live here: `files_modified` and `commits_created` are arrays of strings,
//! `errors` is `[{"type","message"}]`, `warnings` an array of strings, `test_results` an
//! object, `metadata` is [`WorkstreamResult::metadata_json`].

use super::schema::{
    agent_results, consolidated_errors, consolidated_runs, ws_attempts, ws_commits,
    ws_forecast_clusters, ws_forecast_pairs, ws_integration_steps, ws_integration_tests,
    ws_integrations, ws_merge_order, ws_merges, ws_result_files, ws_runs, ws_usage,
};
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Timelike, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use ws_core::model::{
    ChangeKind, ConflictHunk, FileChange, ForecastCluster, ForecastStep, IntegrationExclusion,
    IntegrationMerge, IntegrationRecord, IntegrationTestRun, MergeForecast, PairForecast, RunInfo,
    Status, TestResults, WorkstreamResult, WsError,
};

/// SQLite's limit on bound variables per statement; batch inserts stay under it.
pub const MAX_VARIABLES: usize = 32766;

/// Rows per multi-row `INSERT` for a table with `columns` bound columns.
pub const fn chunk_rows(columns: usize) -> usize {
    MAX_VARIABLES / columns
}

/// RFC 3339, UTC, microseconds and `Z`: fixed width, so text order is time order.
pub fn fmt_ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parse a timestamp written by [`fmt_ts`] (any RFC 3339 is accepted).
pub fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `created_at` for a new run: now, to the microsecond, in SQLite's `CURRENT_TIMESTAMP`
/// layout, so runs created in the same second still sort by creation.
pub fn created_now() -> NaiveDateTime {
    let now = Utc::now();
    let naive = now.naive_utc();
    naive
        .with_nanosecond(now.timestamp_subsec_micros() * 1000)
        .unwrap_or(naive)
}

fn change_kind_parse(s: &str) -> Option<ChangeKind> {
    match s {
        "added" => Some(ChangeKind::Added),
        "modified" => Some(ChangeKind::Modified),
        "deleted" => Some(ChangeKind::Deleted),
        "renamed" => Some(ChangeKind::Renamed),
        _ => None,
    }
}

#[derive(Insertable)]
#[diesel(table_name = consolidated_runs)]
#[diesel(treat_none_as_default_value = false)]
pub struct NewRun {
    pub run_id: String,
    pub timestamp: String,
    pub total_workstreams: Option<i64>,
    pub completed_count: Option<i64>,
    pub failed_count: Option<i64>,
    pub skipped_count: Option<i64>,
    pub total_files_modified: Option<i64>,
    pub total_commits: Option<i64>,
    pub total_errors: Option<i64>,
    pub total_warnings: Option<i64>,
    pub execution_summary: Option<String>,
    pub recommendations: Option<String>,
    pub created_at: Option<NaiveDateTime>,
}

impl NewRun {
    /// The row `begin_run` inserts: zero totals, no summary yet.
    pub fn started(run_id: &str, info: &RunInfo) -> Self {
        NewRun {
            run_id: run_id.to_string(),
            timestamp: fmt_ts(&info.started_at),
            total_workstreams: Some(0),
            completed_count: Some(0),
            failed_count: Some(0),
            skipped_count: Some(0),
            total_files_modified: Some(0),
            total_commits: Some(0),
            total_errors: Some(0),
            total_warnings: Some(0),
            execution_summary: None,
            recommendations: None,
            created_at: Some(created_now()),
        }
    }
}

#[derive(Insertable, Queryable, Selectable, Debug, Clone, PartialEq)]
#[diesel(table_name = ws_runs)]
#[diesel(treat_none_as_default_value = false)]
pub struct WsRunRow {
    pub run_id: String,
    pub state: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub agents: i64,
    pub base: String,
    pub base_rev: String,
    pub repo_root: String,
    pub rerun_of: Option<String>,
}

impl WsRunRow {
    pub fn new(run_id: &str, state: &str, info: &RunInfo) -> Self {
        WsRunRow {
            run_id: run_id.to_string(),
            state: state.to_string(),
            started_at: fmt_ts(&info.started_at),
            finished_at: info.finished_at.as_ref().map(fmt_ts),
            agents: info.agents as i64,
            base: info.base.clone(),
            base_rev: info.base_rev.clone(),
            repo_root: info.repo_root.clone(),
            rerun_of: info.rerun_of.clone(),
        }
    }

    pub(crate) fn to_info(&self) -> Result<RunInfo, String> {
        let started_at = parse_ts(&self.started_at)
            .ok_or_else(|| format!("bad ws_runs.started_at {:?}", self.started_at))?;
        let finished_at = match &self.finished_at {
            None => None,
            Some(s) => Some(parse_ts(s).ok_or_else(|| format!("bad ws_runs.finished_at {s:?}"))?),
        };
        Ok(RunInfo {
            run_id: self.run_id.clone(),
            started_at,
            finished_at,
            agents: self.agents.max(0) as usize,
            base: self.base.clone(),
            base_rev: self.base_rev.clone(),
            repo_root: self.repo_root.clone(),
            rerun_of: self.rerun_of.clone(),
        })
    }
}

#[derive(Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = agent_results)]
#[diesel(treat_none_as_default_value = false)]
pub struct NewAgentResult {
    pub run_id: String,
    pub agent_id: String,
    pub workstream_id: String,
    pub status: String,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub duration_seconds: Option<f64>,
    pub files_modified: Option<String>,
    pub commits_created: Option<String>,
    pub errors: Option<String>,
    pub warnings: Option<String>,
    pub test_results: Option<String>,
    pub metadata: Option<String>,
}

#[derive(Queryable, Selectable, Debug, Clone, PartialEq)]
#[diesel(table_name = agent_results)]
pub struct AgentResultRow {
    pub id: i64,
    pub run_id: String,
    pub agent_id: String,
    pub workstream_id: String,
    pub status: String,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub duration_seconds: Option<f64>,
    pub files_modified: Option<String>,
    pub commits_created: Option<String>,
    pub errors: Option<String>,
    pub warnings: Option<String>,
    pub test_results: Option<String>,
    pub metadata: Option<String>,
}

#[derive(Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = consolidated_errors)]
#[diesel(treat_none_as_default_value = false)]
pub struct NewError {
    pub run_id: String,
    pub error_type: Option<String>,
    pub error_message: Option<String>,
    pub workstream_id: Option<String>,
    pub agent_id: Option<String>,
    pub timestamp: Option<String>,
    pub stack_trace: Option<String>,
}

#[derive(Queryable, Selectable, Debug, Clone, PartialEq)]
#[diesel(table_name = consolidated_errors)]
pub struct ErrorRow {
    pub id: i64,
    pub run_id: String,
    pub error_type: Option<String>,
    pub error_message: Option<String>,
    pub workstream_id: Option<String>,
    pub agent_id: Option<String>,
    pub timestamp: Option<String>,
    pub stack_trace: Option<String>,
}

#[derive(Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = ws_result_files)]
#[diesel(treat_none_as_default_value = false)]
pub struct NewResultFile {
    pub run_id: String,
    pub workstream_id: String,
    pub agent_id: String,
    pub path: String,
    pub old_path: Option<String>,
    pub change_kind: String,
    pub additions: i64,
    pub deletions: i64,
}

/// Bound columns of [`NewResultFile`].
pub const RESULT_FILE_COLUMNS: usize = 8;

#[derive(Queryable, Selectable, Debug, Clone, PartialEq)]
#[diesel(table_name = ws_result_files)]
pub struct ResultFileRow {
    pub id: i64,
    pub run_id: String,
    pub workstream_id: String,
    pub agent_id: String,
    pub path: String,
    pub old_path: Option<String>,
    pub change_kind: String,
    pub additions: i64,
    pub deletions: i64,
}

#[derive(Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = ws_commits)]
#[diesel(treat_none_as_default_value = false)]
pub struct NewCommit {
    pub run_id: String,
    pub workstream_id: String,
    pub sha: String,
    pub position: i64,
}

/// Bound columns of [`NewCommit`].
pub const COMMIT_COLUMNS: usize = 4;
/// Bound columns of [`NewError`].
pub const ERROR_COLUMNS: usize = 7;

#[derive(Insertable, Queryable, Selectable, Debug, Clone, PartialEq)]
#[diesel(table_name = ws_forecast_pairs)]
#[diesel(treat_none_as_default_value = false)]
pub struct ForecastPairRow {
    pub run_id: String,
    pub ws_a: String,
    pub ws_b: String,
    pub clean: i64,
    pub common_paths: String,
    pub conflict_paths: String,
    pub hunks: String,
}

/// Bound columns of [`ForecastPairRow`].
pub const FORECAST_PAIR_COLUMNS: usize = 7;

#[derive(Insertable, Queryable, Selectable, Debug, Clone, PartialEq)]
#[diesel(table_name = ws_merge_order)]
#[diesel(treat_none_as_default_value = false)]
pub struct MergeOrderRow {
    pub run_id: String,
    pub position: i64,
    pub workstream_id: String,
    pub clean: i64,
    pub conflict_paths: String,
    pub partners: String,
    pub clusters: String,
    pub overlapping: i64,
    pub change_size: i64,
    pub reason: String,
}

/// Bound columns of [`MergeOrderRow`].
pub const MERGE_ORDER_COLUMNS: usize = 10;

#[derive(Insertable, Queryable, Selectable, Debug, Clone, PartialEq)]
#[diesel(table_name = ws_forecast_clusters)]
#[diesel(treat_none_as_default_value = false)]
pub struct ClusterRow {
    pub run_id: String,
    pub cluster_id: i64,
    pub path: String,
    pub kind: String,
    pub first_line: Option<i64>,
    pub last_line: Option<i64>,
    pub workstreams: String,
    pub all_pairs: i64,
    pub conflicting_pairs: i64,
}

/// Bound columns of [`ClusterRow`].
pub const CLUSTER_COLUMNS: usize = 9;

#[derive(Insertable, Queryable, Selectable, Debug, Clone, PartialEq)]
#[diesel(table_name = ws_merges)]
#[diesel(treat_none_as_default_value = false)]
pub struct MergeRow {
    pub run_id: String,
    pub workstream_id: String,
    pub branch: String,
    pub tip: String,
    pub merge_commit: String,
    pub merged_at: String,
    pub detected_by: Option<String>,
}

#[derive(Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = ws_integrations)]
#[diesel(treat_none_as_default_value = false)]
pub struct NewIntegration {
    pub run_id: String,
    pub branch: String,
    pub onto_rev: String,
    pub onto: String,
    pub tip: String,
    pub test_command: Option<String>,
    pub test_runs: i64,
    pub merged_count: i64,
    pub excluded_count: i64,
    pub fast_forwarded: Option<String>,
    pub integrated_at: String,
    pub made_by: Option<String>,
    pub reused_tests: i64,
}

#[derive(Queryable, Selectable, Debug, Clone, PartialEq)]
#[diesel(table_name = ws_integrations)]
pub struct IntegrationRow {
    pub id: i64,
    pub run_id: String,
    pub branch: String,
    pub onto_rev: String,
    pub onto: String,
    pub tip: String,
    pub test_command: Option<String>,
    pub test_runs: i64,
    pub merged_count: i64,
    pub excluded_count: i64,
    pub fast_forwarded: Option<String>,
    pub integrated_at: String,
    pub made_by: Option<String>,
    pub reused_tests: i64,
}

#[derive(Insertable, Queryable, Selectable, Debug, Clone, PartialEq)]
#[diesel(table_name = ws_integration_steps)]
#[diesel(treat_none_as_default_value = false)]
pub struct IntegrationStepRow {
    pub integration_id: i64,
    pub position: i64,
    pub workstream_id: String,
    pub outcome: String,
    pub tip: Option<String>,
    pub merge_commit: Option<String>,
    pub reason: Option<String>,
    pub paths: String,
    pub detail: String,
    pub broke_with: String,
    pub output_tail: Option<String>,
    pub at: Option<String>,
}

/// Bound columns of [`IntegrationStepRow`].
pub const INTEGRATION_STEP_COLUMNS: usize = 12;

#[derive(Insertable, Queryable, Selectable, Debug, Clone, PartialEq)]
#[diesel(table_name = ws_integration_tests)]
#[diesel(treat_none_as_default_value = false)]
pub struct IntegrationTestRow {
    pub integration_id: i64,
    pub position: i64,
    pub commit_sha: String,
    pub workstreams: String,
    pub passed: i64,
    pub exit_code: Option<i64>,
    pub duration_seconds: f64,
    pub ending: Option<String>,
    pub log_path: Option<String>,
    pub started_at: Option<String>,
}

/// Bound columns of [`IntegrationTestRow`].
pub const INTEGRATION_TEST_COLUMNS: usize = 10;

/// Merged steps first (merge order), then the excluded ones: the rows of one integration.
pub(crate) fn integration_rows(
    id: i64,
    r: &IntegrationRecord,
) -> Result<(Vec<IntegrationStepRow>, Vec<IntegrationTestRow>), String> {
    let col = |c: &str| format!("ws_integration_steps.{c}");
    let mut steps = Vec::new();
    for m in &r.merges {
        steps.push(IntegrationStepRow {
            integration_id: id,
            position: steps.len() as i64,
            workstream_id: m.workstream_id.clone(),
            outcome: "merged".to_string(),
            tip: Some(m.tip.clone()),
            merge_commit: Some(m.merge_commit.clone()),
            reason: None,
            paths: "[]".to_string(),
            detail: String::new(),
            broke_with: "[]".to_string(),
            output_tail: None,
            at: m.at.as_ref().map(fmt_ts),
        });
    }
    for x in &r.excluded {
        steps.push(IntegrationStepRow {
            integration_id: id,
            position: steps.len() as i64,
            workstream_id: x.workstream_id.clone(),
            outcome: "excluded".to_string(),
            tip: None,
            merge_commit: None,
            reason: Some(x.reason.clone()),
            paths: json(&x.paths, &col("paths"))?,
            detail: x.detail.clone(),
            broke_with: json(&x.broke_with, &col("broke_with"))?,
            output_tail: x.output_tail.clone(),
            at: x.at.as_ref().map(fmt_ts),
        });
    }
    let tests = r
        .tests
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Ok(IntegrationTestRow {
                integration_id: id,
                position: i as i64,
                commit_sha: t.commit.clone(),
                workstreams: json(&t.workstreams, "ws_integration_tests.workstreams")?,
                passed: i64::from(t.passed),
                exit_code: t.exit_code.map(i64::from),
                duration_seconds: t.duration_seconds,
                ending: t.ending.clone(),
                log_path: t.log_path.clone(),
                started_at: t.started_at.as_ref().map(fmt_ts),
            })
        })
        .collect::<Result<_, String>>()?;
    Ok((steps, tests))
}

/// Rebuild an integration from its rows (steps and tests in position order).
pub(crate) fn integration_from_rows(
    row: &IntegrationRow,
    steps: &[IntegrationStepRow],
    tests: &[IntegrationTestRow],
) -> Result<IntegrationRecord, String> {
    let bad = |col: &str, e: serde_json::Error| format!("bad {col} of integration {}: {e}", row.id);
    let mut merges = Vec::new();
    let mut excluded = Vec::new();
    for s in steps {
        if s.outcome == "merged" {
            merges.push(IntegrationMerge {
                workstream_id: s.workstream_id.clone(),
                tip: s.tip.clone().unwrap_or_default(),
                merge_commit: s.merge_commit.clone().unwrap_or_default(),
                at: s.at.as_deref().and_then(parse_ts),
            });
        } else {
            excluded.push(IntegrationExclusion {
                workstream_id: s.workstream_id.clone(),
                reason: s.reason.clone().unwrap_or_default(),
                paths: serde_json::from_str(&s.paths)
                    .map_err(|e| bad("ws_integration_steps.paths", e))?,
                detail: s.detail.clone(),
                broke_with: serde_json::from_str(&s.broke_with)
                    .map_err(|e| bad("ws_integration_steps.broke_with", e))?,
                output_tail: s.output_tail.clone(),
                at: s.at.as_deref().and_then(parse_ts),
            });
        }
    }
    let tests = tests
        .iter()
        .map(|t| {
            Ok(IntegrationTestRun {
                commit: t.commit_sha.clone(),
                workstreams: serde_json::from_str(&t.workstreams)
                    .map_err(|e| bad("ws_integration_tests.workstreams", e))?,
                passed: t.passed != 0,
                exit_code: t.exit_code.and_then(|c| i32::try_from(c).ok()),
                duration_seconds: t.duration_seconds,
                ending: t.ending.clone(),
                log_path: t.log_path.clone(),
                started_at: t.started_at.as_deref().and_then(parse_ts),
            })
        })
        .collect::<Result<_, String>>()?;
    let without_result: Vec<String> = excluded
        .iter()
        .filter(|x| x.reason == IntegrationExclusion::NO_RESULT)
        .map(|x| x.workstream_id.clone())
        .collect();
    Ok(IntegrationRecord {
        run_id: row.run_id.clone(),
        onto: row.onto.clone(),
        onto_rev: row.onto_rev.clone(),
        branch: row.branch.clone(),
        tip: row.tip.clone(),
        test_command: row.test_command.clone(),
        test_runs: row.test_runs.max(0) as usize,
        merged: merges.iter().map(|m| m.workstream_id.clone()).collect(),
        merges,
        excluded,
        tests,
        fast_forwarded: row.fast_forwarded.clone(),
        dry_run: false,
        incomplete: !without_result.is_empty(),
        without_result,
        made_by: row.made_by.clone(),
        reused_tests: row.reused_tests.max(0) as usize,
        integrated_at: parse_ts(&row.integrated_at).ok_or_else(|| {
            format!(
                "bad ws_integrations.integrated_at {:?} of integration {}",
                row.integrated_at, row.id
            )
        })?,
    })
}

/// A workstream's usage, all attempts together (`ws_usage`).
#[derive(Insertable, Queryable, Selectable, Debug, Clone, PartialEq)]
#[diesel(table_name = ws_usage)]
#[diesel(treat_none_as_default_value = false)]
pub struct UsageRow {
    pub run_id: String,
    pub workstream_id: String,
    pub agent_id: String,
    pub agent: Option<String>,
    pub cost_usd: Option<f64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cached_input_tokens: Option<i64>,
    pub turns: Option<i64>,
    pub model: Option<String>,
    pub session_id: Option<String>,
    pub source: String,
}

/// One attempt at a workstream's command (`ws_attempts`).
#[derive(Insertable, Queryable, Selectable, Debug, Clone, PartialEq)]
#[diesel(table_name = ws_attempts)]
#[diesel(treat_none_as_default_value = false)]
pub struct AttemptRow {
    pub run_id: String,
    pub workstream_id: String,
    pub attempt: i64,
    pub agent_id: String,
    pub agent: Option<String>,
    pub started_at: Option<String>,
    pub duration_seconds: f64,
    pub outcome: String,
    pub exit_code: Option<i64>,
    pub retry_reason: Option<String>,
    pub backoff_seconds: Option<f64>,
    pub cost_usd: Option<f64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
}

/// Bound columns of [`AttemptRow`].
pub const ATTEMPT_COLUMNS: usize = 14;

fn db_count(n: Option<u64>) -> Option<i64> {
    n.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

/// The `ws_usage` row and `ws_attempts` rows of a result.
fn agent_rows(r: &WorkstreamResult) -> (Option<UsageRow>, Vec<AttemptRow>) {
    let usage = r.usage.as_ref().map(|u| UsageRow {
        run_id: r.run_id.clone(),
        workstream_id: r.workstream_id.clone(),
        agent_id: r.agent_id.clone(),
        agent: r.agent.clone(),
        cost_usd: u.cost_usd,
        input_tokens: db_count(u.input_tokens),
        output_tokens: db_count(u.output_tokens),
        cached_input_tokens: db_count(u.cached_input_tokens),
        turns: db_count(u.turns),
        model: u.model.clone(),
        session_id: u.session_id.clone(),
        source: u.source.clone(),
    });
    let attempts = r
        .attempts
        .iter()
        .map(|a| AttemptRow {
            run_id: r.run_id.clone(),
            workstream_id: r.workstream_id.clone(),
            attempt: i64::from(a.attempt),
            agent_id: r.agent_id.clone(),
            agent: r.agent.clone(),
            started_at: a.started_at.as_ref().map(fmt_ts),
            duration_seconds: a.duration_seconds,
            outcome: a.outcome.clone(),
            exit_code: a.exit_code.map(i64::from),
            retry_reason: a.retry_reason.clone(),
            backoff_seconds: a.backoff_seconds,
            cost_usd: a.usage.as_ref().and_then(|u| u.cost_usd),
            input_tokens: db_count(a.usage.as_ref().and_then(|u| u.input_tokens)),
            output_tokens: db_count(a.usage.as_ref().and_then(|u| u.output_tokens)),
        })
        .collect();
    (usage, attempts)
}

/// The rows one [`WorkstreamResult`] is stored as.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRows {
    pub result: NewAgentResult,
    pub errors: Vec<NewError>,
    pub files: Vec<NewResultFile>,
    pub commits: Vec<NewCommit>,
    /// `ws_usage`, when the result reported usage.
    pub usage: Option<UsageRow>,
    /// `ws_attempts`.
    pub attempts: Vec<AttemptRow>,
}

fn json<T: Serialize + ?Sized>(v: &T, column: &str) -> Result<String, String> {
    serde_json::to_string(v).map_err(|e| format!("failed to encode {column}: {e}"))
}

/// Split a result into its rows.
pub(crate) fn result_rows(r: &WorkstreamResult) -> Result<ResultRows, String> {
    let paths: Vec<&str> = r.files.iter().map(|f| f.path.as_str()).collect();
    let test_results = match &r.test_results {
        Some(t) => Some(json(t, "agent_results.test_results")?),
        None => None,
    };
    let result = NewAgentResult {
        run_id: r.run_id.clone(),
        agent_id: r.agent_id.clone(),
        workstream_id: r.workstream_id.clone(),
        status: r.status.as_str().to_string(),
        start_time: r.start_time.as_ref().map(fmt_ts),
        end_time: r.end_time.as_ref().map(fmt_ts),
        duration_seconds: Some(r.duration_seconds),
        files_modified: Some(json(&paths, "agent_results.files_modified")?),
        commits_created: Some(json(&r.commits, "agent_results.commits_created")?),
        errors: Some(json(&r.errors, "agent_results.errors")?),
        warnings: Some(json(&r.warnings, "agent_results.warnings")?),
        test_results,
        metadata: Some(json(&r.metadata_json(), "agent_results.metadata")?),
    };
    let errors = r
        .errors
        .iter()
        .map(|e| NewError {
            run_id: r.run_id.clone(),
            error_type: Some(e.error_type.as_str().to_string()),
            error_message: Some(e.message.clone()),
            workstream_id: Some(r.workstream_id.clone()),
            agent_id: Some(r.agent_id.clone()),
            timestamp: r.end_time.as_ref().map(fmt_ts),
            stack_trace: e.stack_trace.clone(),
        })
        .collect();
    let files = r
        .files
        .iter()
        .map(|f| NewResultFile {
            run_id: r.run_id.clone(),
            workstream_id: r.workstream_id.clone(),
            agent_id: r.agent_id.clone(),
            path: f.path.clone(),
            old_path: f.old_path.clone(),
            change_kind: f.kind.as_str().to_string(),
            additions: f.additions as i64,
            deletions: f.deletions as i64,
        })
        .collect();
    let commits = r
        .commits
        .iter()
        .enumerate()
        .map(|(i, sha)| NewCommit {
            run_id: r.run_id.clone(),
            workstream_id: r.workstream_id.clone(),
            sha: sha.clone(),
            position: i as i64,
        })
        .collect();
    let (usage, attempts) = agent_rows(r);
    Ok(ResultRows {
        result,
        errors,
        files,
        commits,
        usage,
        attempts,
    })
}

/// The `metadata` object as written by [`WorkstreamResult::metadata_json`]; every field
/// optional so rows written by other tools still read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Metadata {
    title: Option<String>,
    branch: Option<String>,
    base: Option<String>,
    head: Option<String>,
    worktree: Option<String>,
    log_path: Option<String>,
    exit_code: Option<i32>,
    output_tail: Option<String>,
    source_file: Option<String>,
    command_seconds: Option<f64>,
    test_seconds: Option<f64>,
    file_changes: Option<Vec<FileChange>>,
    agent: Option<String>,
    usage: Option<ws_core::model::Usage>,
    attempts: Option<Vec<ws_core::model::Attempt>>,
}

fn parse_json<T: for<'de> Deserialize<'de>>(
    text: Option<&str>,
    column: &str,
    row: &AgentResultRow,
) -> Result<Option<T>, String> {
    match text {
        None => Ok(None),
        Some(t) => serde_json::from_str(t).map(Some).map_err(|e| {
            format!(
                "bad agent_results.{column} for {} in run {}: {e}",
                row.workstream_id, row.run_id
            )
        }),
    }
}

/// Rebuild a result from its `agent_results` row, its `consolidated_errors` rows (in id
/// order; they carry the stack traces) and its `ws_result_files` rows (used when the
/// metadata has no `file_changes`).
pub(crate) fn result_from_rows(
    row: &AgentResultRow,
    error_rows: &[ErrorRow],
    file_rows: &[ResultFileRow],
) -> Result<WorkstreamResult, String> {
    let status = Status::parse(&row.status).ok_or_else(|| {
        format!(
            "bad agent_results.status {:?} for {} in run {}",
            row.status, row.workstream_id, row.run_id
        )
    })?;
    let ts = |s: &Option<String>, column: &str| -> Result<Option<DateTime<Utc>>, String> {
        match s {
            None => Ok(None),
            Some(s) => parse_ts(s).map(Some).ok_or_else(|| {
                format!(
                    "bad agent_results.{column} {s:?} for {} in run {}",
                    row.workstream_id, row.run_id
                )
            }),
        }
    };
    let meta: Metadata = parse_json(row.metadata.as_deref(), "metadata", row)?.unwrap_or_default();
    let files = match meta.file_changes {
        Some(f) => f,
        None => file_rows
            .iter()
            .map(|f| {
                Ok(FileChange {
                    path: f.path.clone(),
                    old_path: f.old_path.clone(),
                    kind: change_kind_parse(&f.change_kind).ok_or_else(|| {
                        format!("bad ws_result_files.change_kind {:?}", f.change_kind)
                    })?,
                    additions: f.additions.max(0) as u64,
                    deletions: f.deletions.max(0) as u64,
                })
            })
            .collect::<Result<_, String>>()?,
    };
    let errors = match parse_json::<Vec<WsError>>(row.errors.as_deref(), "errors", row)? {
        Some(mut errors) => {
            if errors.len() == error_rows.len() {
                for (e, er) in errors.iter_mut().zip(error_rows) {
                    if er.error_type.as_deref() == Some(e.error_type.as_str())
                        && er.error_message.as_deref() == Some(e.message.as_str())
                    {
                        e.stack_trace = er.stack_trace.clone();
                    }
                }
            }
            errors
        }
        None => error_rows
            .iter()
            .filter_map(|er| {
                let t = ws_core::model::ErrorType::parse(er.error_type.as_deref()?)?;
                Some(WsError {
                    error_type: t,
                    message: er.error_message.clone().unwrap_or_default(),
                    stack_trace: er.stack_trace.clone(),
                })
            })
            .collect(),
    };
    Ok(WorkstreamResult {
        run_id: row.run_id.clone(),
        agent_id: row.agent_id.clone(),
        workstream_id: row.workstream_id.clone(),
        title: meta.title,
        status,
        start_time: ts(&row.start_time, "start_time")?,
        end_time: ts(&row.end_time, "end_time")?,
        duration_seconds: row.duration_seconds.unwrap_or(0.0),
        files,
        commits: parse_json(row.commits_created.as_deref(), "commits_created", row)?
            .unwrap_or_default(),
        errors,
        warnings: parse_json(row.warnings.as_deref(), "warnings", row)?.unwrap_or_default(),
        test_results: parse_json::<Option<TestResults>>(
            row.test_results.as_deref(),
            "test_results",
            row,
        )?
        .flatten(),
        branch: meta.branch,
        base: meta.base,
        head: meta.head,
        worktree: meta.worktree,
        log_path: meta.log_path,
        exit_code: meta.exit_code,
        output_tail: meta.output_tail,
        source_file: meta.source_file,
        command_seconds: meta.command_seconds,
        test_seconds: meta.test_seconds,
        agent: meta.agent,
        usage: meta.usage,
        attempts: meta.attempts.unwrap_or_default(),
    })
}

/// The rows a run's forecast is stored as: computed pairs, the explained order, clusters.
pub type ForecastRows = (Vec<ForecastPairRow>, Vec<MergeOrderRow>, Vec<ClusterRow>);

/// Forecast rows of a run.
pub(crate) fn forecast_rows(run_id: &str, f: &MergeForecast) -> Result<ForecastRows, String> {
    let pairs = f
        .pairs
        .iter()
        .map(|p| {
            Ok(ForecastPairRow {
                run_id: run_id.to_string(),
                ws_a: p.a.clone(),
                ws_b: p.b.clone(),
                clean: p.conflict_paths.is_empty() as i64,
                common_paths: json(&p.common_paths, "ws_forecast_pairs.common_paths")?,
                conflict_paths: json(&p.conflict_paths, "ws_forecast_pairs.conflict_paths")?,
                hunks: json(&p.hunks, "ws_forecast_pairs.hunks")?,
            })
        })
        .collect::<Result<_, String>>()?;
    let order = f
        .merge_order
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Ok(MergeOrderRow {
                run_id: run_id.to_string(),
                position: i as i64,
                workstream_id: s.workstream_id.clone(),
                clean: s.clean as i64,
                conflict_paths: json(&s.conflict_paths, "ws_merge_order.conflict_paths")?,
                partners: json(&s.partners, "ws_merge_order.partners")?,
                clusters: json(&s.clusters, "ws_merge_order.clusters")?,
                overlapping: s.overlapping as i64,
                change_size: i64::try_from(s.change_size).unwrap_or(i64::MAX),
                reason: s.reason.clone(),
            })
        })
        .collect::<Result<_, String>>()?;
    let clusters = f
        .clusters
        .iter()
        .map(|c| {
            Ok(ClusterRow {
                run_id: run_id.to_string(),
                cluster_id: c.id as i64,
                path: c.path.clone(),
                kind: c.kind.clone(),
                first_line: c.lines.map(|l| l.0 as i64),
                last_line: c.lines.map(|l| l.1 as i64),
                workstreams: json(&c.workstreams, "ws_forecast_clusters.workstreams")?,
                all_pairs: c.all_pairs as i64,
                conflicting_pairs: c.conflicting_pairs as i64,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok((pairs, order, clusters))
}

/// Rebuild a forecast from its rows (pairs in id order, steps in position order, clusters
/// by id). `overlaps` is not stored: the run's overlaps come from its files.
pub(crate) fn forecast_from_rows(
    pairs: &[ForecastPairRow],
    order: &[MergeOrderRow],
    clusters: &[ClusterRow],
) -> Result<MergeForecast, String> {
    let bad = |col: &str, e: serde_json::Error| format!("bad {col}: {e}");
    let pairs = pairs
        .iter()
        .map(|p| {
            Ok(PairForecast {
                a: p.ws_a.clone(),
                b: p.ws_b.clone(),
                common_paths: serde_json::from_str(&p.common_paths)
                    .map_err(|e| bad("ws_forecast_pairs.common_paths", e))?,
                conflict_paths: serde_json::from_str(&p.conflict_paths)
                    .map_err(|e| bad("ws_forecast_pairs.conflict_paths", e))?,
                hunks: serde_json::from_str::<Vec<ConflictHunk>>(&p.hunks)
                    .map_err(|e| bad("ws_forecast_pairs.hunks", e))?,
            })
        })
        .collect::<Result<_, String>>()?;
    let merge_order = order
        .iter()
        .map(|s| {
            Ok(ForecastStep {
                workstream_id: s.workstream_id.clone(),
                clean: s.clean != 0,
                conflict_paths: serde_json::from_str(&s.conflict_paths)
                    .map_err(|e| bad("ws_merge_order.conflict_paths", e))?,
                partners: serde_json::from_str(&s.partners)
                    .map_err(|e| bad("ws_merge_order.partners", e))?,
                clusters: serde_json::from_str(&s.clusters)
                    .map_err(|e| bad("ws_merge_order.clusters", e))?,
                overlapping: s.overlapping.max(0) as usize,
                change_size: s.change_size.max(0) as u64,
                reason: s.reason.clone(),
            })
        })
        .collect::<Result<_, String>>()?;
    let clusters = clusters
        .iter()
        .map(|c| {
            Ok(ForecastCluster {
                id: c.cluster_id.max(0) as usize,
                path: c.path.clone(),
                kind: c.kind.clone(),
                lines: c
                    .first_line
                    .zip(c.last_line)
                    .map(|(a, b)| (a.max(0) as u64, b.max(0) as u64)),
                workstreams: serde_json::from_str(&c.workstreams)
                    .map_err(|e| bad("ws_forecast_clusters.workstreams", e))?,
                all_pairs: c.all_pairs != 0,
                conflicting_pairs: c.conflicting_pairs.max(0) as usize,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(MergeForecast {
        clusters,
        pairs,
        merge_order,
        overlaps: Vec::new(),
    })
}

/// Edit distance (Levenshtein, by character) between two ids.
pub fn edit_distance(a: &str, b: &str) -> usize {
    strsim::levenshtein(a, b)
}

/// Up to `n` of `known` (most recent first) closest to `wanted`: smallest edit distance,
/// then longest common prefix, then most recent.
pub fn closest<'a>(wanted: &str, known: &'a [String], n: usize) -> Vec<&'a str> {
    let prefix = |k: &str| {
        k.chars()
            .zip(wanted.chars())
            .take_while(|(x, y)| x == y)
            .count()
    };
    let mut ranked: Vec<(usize, std::cmp::Reverse<usize>, usize, &str)> = known
        .iter()
        .enumerate()
        .map(|(i, k)| {
            (
                edit_distance(wanted, k),
                std::cmp::Reverse(prefix(k)),
                i,
                k.as_str(),
            )
        })
        .collect();
    ranked.sort();
    ranked.into_iter().take(n).map(|r| r.3).collect()
}
