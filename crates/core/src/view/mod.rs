//! The typed view of one run: every row any output shows, built once from a run's
//! consolidation, its results and what the database knows besides (merges, state). The
//! Markdown report, the `git ws-report` tables and the JSON are thin renderers over it
//! (the `ws-report` crate); the JSON is its serde serialisation (`"schema": 2`).
//!
//! Text that came from agents (messages, output tails, warnings, hunks) is cleaned here
//! ([`text::clean`]), once, so no renderer can forget to. Titles stay raw for the JSON;
//! the Markdown and table renderers clean and cap them. A later field (a run's
//! `integration`, a workstream's `usage`) is one field on [`RunView`] or [`WorkstreamRow`]
//! and one line in [`RunView::build`].
//!
//! Its files import only those before them: `micros` (times in JSON) → `timeline` → this
//! file → `fixture` (a whole run for tests).

#[cfg(any(test, feature = "fixture"))]
#[doc(hidden)]
pub mod fixture;
pub mod micros;
mod timeline;

pub use crate::text::OutputTail;
pub use timeline::{Bar, NotStarted, Timeline};

use crate::consolidate::{
    ordered_results, recommend, Advice, AgentPerf, CommitRef, Consolidated, FileSummary, Overlap,
    TestTotals,
};
use crate::model::MergeRecord;
use crate::model::{
    Attempt, ConflictHunk, ErrorType, FileChange, ForecastCluster, IntegrationRecord, Status,
    TestResults, Usage, WorkstreamResult,
};
use crate::text;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Version of the JSON contract (`"schema"`); 2 is a superset of the first.
pub const SCHEMA: u32 = 2;

/// What a view is built from.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub consolidated: &'a Consolidated,
    pub results: &'a [WorkstreamResult],
    /// Merges the post-merge hook recorded, by workstream id.
    pub merges: Option<&'a HashMap<String, MergeRecord>>,
    /// `running`, `finished` or `interrupted`.
    pub state: &'a str,
}

/// One run, as every output shows it. Field names of the first JSON contract are kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunView {
    pub schema: u32,
    pub run_id: String,
    /// When the run started (RFC 3339, UTC).
    pub timestamp: String,
    #[serde(with = "micros::option")]
    pub finished_at: Option<DateTime<Utc>>,
    pub state: String,
    pub rerun_of: Option<String>,
    /// Base commit, full SHA, and what was asked for (`HEAD`).
    pub base: String,
    pub base_rev: String,
    pub agent_count: usize,
    /// One sentence: how the run went.
    pub verdict: String,
    pub total_workstreams: usize,
    pub completed_count: usize,
    pub failed_count: usize,
    pub skipped_count: usize,
    /// Deferred by a usage limit or a spent `--budget` (`--resume` runs them); left out of
    /// the JSON while 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deferred_count: usize,
    pub total_files_modified: usize,
    pub overlapping_files: usize,
    pub total_commits: usize,
    pub total_errors: usize,
    pub total_warnings: usize,
    pub wall_seconds: f64,
    pub busy_seconds: f64,
    /// busy / wall; null when the wall time is 0.
    pub speedup: Option<f64>,
    pub overhead_seconds_per_workstream: Option<f64>,
    pub merged_count: usize,
    pub tests: TestTotals,
    pub errors_by_type: BTreeMap<String, usize>,
    /// The recommendations as sentences (what `advice[].text` says).
    pub recommendations: Vec<String>,
    /// The recommendations as typed values with their evidence.
    pub advice: Vec<AdviceRow>,
    pub agents: Vec<AgentRow>,
    pub workstreams: Vec<WorkstreamRow>,
    pub files: Vec<FileRow>,
    pub commits: Vec<CommitRef>,
    pub errors: Vec<ErrorRow>,
    pub warnings: Vec<WarningRow>,
    pub overlaps: Vec<Overlap>,
    pub conflicts: Vec<ConflictRow>,
    pub clean_overlaps: Vec<PairRow>,
    pub merge_order: Vec<MergeStepRow>,
    /// Where the completed branches may conflict (see [`ForecastCluster`]).
    pub clusters: Vec<ForecastCluster>,
    pub timeline: Timeline,
    /// What `git ws-merge` last did with the run; null when it was never integrated.
    pub integration: Option<IntegrationRecord>,
    /// What the agents reported spending: the run's total and per coding agent; absent when
    /// nothing reported usage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageView>,
    /// Workstreams that took more than one attempt; absent when none did.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<RetryRow>,
    /// What changed outside the worktrees while workstreams ran (the watch: the user's
    /// refs, `HEAD`, index, config, hooks, `info/`); absent when nothing did.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tampering: Vec<TamperRow>,
    /// Fix-up chains (`--fix-up N`): each left-out workstream handed back to its agent,
    /// original → `~fix1` → `~fix2` …, with each attempt's reason and outcome; absent when
    /// there is none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fixups: Vec<crate::fixup::FixupChain>,
}

/// One change outside the worktrees, with the workstreams that may have made it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TamperRow {
    #[serde(flatten)]
    pub change: crate::tamper::Tampering,
    /// One sentence: who may have made it.
    pub attribution: String,
}

/// The run's usage: the total, and per coding agent (`claude`, `codex`, `agent-cmd`, …).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageView {
    pub total: Usage,
    /// How many workstreams reported usage.
    pub workstreams: usize,
    pub by_agent: Vec<AgentUsageRow>,
}

/// One coding agent's usage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentUsageRow {
    pub agent: String,
    /// Workstreams it ran that reported usage.
    pub workstreams: usize,
    #[serde(flatten)]
    pub usage: Usage,
}

/// A workstream that was retried: how many attempts, why, and whether it completed in the
/// end (flaky).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryRow {
    pub workstream_id: String,
    pub agent: Option<String>,
    pub attempts: usize,
    pub status: Status,
    /// Completed after a failed attempt.
    pub flaky: bool,
    /// Why each retried attempt was retried, in order.
    pub reasons: Vec<String>,
    /// Time spent waiting between attempts.
    pub backoff_seconds: f64,
}

/// A recommendation: its kind and evidence, and its sentence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdviceRow {
    #[serde(flatten)]
    pub advice: Advice,
    pub text: String,
}

/// One agent's totals and the workstreams it ran, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentRow {
    #[serde(flatten)]
    pub perf: AgentPerf,
    pub workstreams: Vec<AgentWorkstream>,
}

/// A workstream an agent ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentWorkstream {
    pub workstream_id: String,
    pub status: Status,
}

/// An error as stored: its type and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorText {
    #[serde(rename = "type")]
    pub error_type: ErrorType,
    pub message: String,
}

/// A workstream's tests: the recorded results (counts null when not parsed) and whether
/// they succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestsRow {
    #[serde(flatten)]
    pub results: TestResults,
    pub succeeded: bool,
}

/// Everything about one workstream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkstreamRow {
    pub workstream_id: String,
    pub agent_id: String,
    pub status: Status,
    pub duration_seconds: f64,
    /// Paths, as in the database's `files_modified`.
    pub files_modified: Vec<String>,
    pub commits_created: Vec<String>,
    pub branch: Option<String>,
    pub merged: bool,
    /// When merged: the merge commit the post-merge hook saw.
    pub merge_commit: Option<String>,
    /// When merged: how the hook recognised it (`ancestor`, `tree`, `patch-id`).
    pub merge_detected_by: Option<String>,
    /// As the workstream file gives it (the JSON keeps every character); renderers show it
    /// through [`text::one_line`], capped.
    pub title: Option<String>,
    pub source_file: Option<String>,
    #[serde(with = "micros::option")]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(with = "micros::option")]
    pub end_time: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    pub log_path: Option<String>,
    pub errors: Vec<ErrorText>,
    /// The last lines of the command's output.
    pub output_tail: Option<OutputTail>,
    pub tests: Option<TestsRow>,
    pub warnings: Vec<String>,
    /// What is recorded but is no warning ([`text::is_note`]: git-ws committed what the
    /// agent left uncommitted); absent from the JSON when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Each file with its kind of change and line counts.
    pub files: Vec<FileChange>,
    pub additions: u64,
    pub deletions: u64,
    /// The coding agent that ran it (`claude`, …, `agent-cmd`, `command`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// What it reported spending, all attempts together; absent when nothing was reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Its attempts, when there was more than one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
}

/// A file touched in the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRow {
    #[serde(flatten)]
    pub file: FileSummary,
    /// Touched by more than one workstream.
    pub overlap: bool,
}

/// One error of one workstream, with the output that explains it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorRow {
    pub workstream_id: String,
    pub agent_id: String,
    #[serde(rename = "type")]
    pub error_type: ErrorType,
    pub message: String,
    pub output_tail: Option<OutputTail>,
}

/// A warning; `workstream_id` is null for the run's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WarningRow {
    pub workstream_id: Option<String>,
    pub message: String,
}

/// Two workstreams and the paths they share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairRow {
    pub workstreams: [String; 2],
    pub paths: Vec<String>,
}

/// A conflicting pair: where, the conflict itself, and which to merge first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConflictRow {
    pub workstreams: [String; 2],
    pub paths: Vec<String>,
    pub hunks: Vec<ConflictHunk>,
    pub merge_first: String,
    pub then_rebase: String,
}

/// One step of the suggested merge order, with why it is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MergeStepRow {
    /// 1-based.
    pub position: usize,
    pub workstream_id: String,
    pub clean: bool,
    pub conflict_paths: Vec<String>,
    /// Earlier steps it conflicts with (needs a rebase after them).
    pub rebase_after: Vec<String>,
    /// When clean: the earlier steps it overlaps and merges cleanly after; when not: the
    /// earlier steps it conflicts with.
    pub partners: Vec<String>,
    /// The clusters it belongs to.
    pub clusters: Vec<usize>,
    /// How many other workstreams share a cluster with it (the first sort key).
    pub overlapping: usize,
    /// Lines added plus removed (the second sort key).
    pub change_size: u64,
    /// Why it is where it is, in one sentence.
    pub reason: String,
}

impl RunView {
    /// Build every row once.
    pub fn build(input: Input<'_>) -> RunView {
        let c = input.consolidated;
        let ordered = ordered_results(input.results);
        let no_merges = HashMap::new();
        let merges = input.merges.unwrap_or(&no_merges);
        let advice: Vec<AdviceRow> = recommend(c)
            .into_iter()
            .map(|a| AdviceRow {
                text: a.text(),
                advice: a,
            })
            .collect();
        let workstreams: Vec<WorkstreamRow> = ordered
            .iter()
            .map(|r| workstream_row(r, merges.get(&r.workstream_id)))
            .collect();
        RunView {
            schema: SCHEMA,
            run_id: c.run.run_id.clone(),
            timestamp: micros::text(&c.run.started_at),
            finished_at: c.run.finished_at,
            state: input.state.to_string(),
            rerun_of: c.run.rerun_of.clone(),
            base: c.run.base.clone(),
            base_rev: c.run.base_rev.clone(),
            agent_count: c.run.agents,
            verdict: verdict(c),
            total_workstreams: c.total_workstreams,
            completed_count: c.completed,
            failed_count: c.failed,
            skipped_count: c.skipped,
            deferred_count: c.deferred,
            total_files_modified: c.files_modified(),
            overlapping_files: c.overlaps.len(),
            total_commits: c.commits.len(),
            total_errors: c.total_errors,
            total_warnings: c.total_warnings,
            wall_seconds: c.wall_seconds,
            busy_seconds: c.busy_seconds,
            speedup: (c.wall_seconds > 0.0).then(|| c.speedup()),
            overhead_seconds_per_workstream: c.overhead_seconds,
            merged_count: workstreams.iter().filter(|w| w.merged).count(),
            tests: c.tests.clone(),
            errors_by_type: c.errors_by_type.iter().cloned().collect(),
            recommendations: advice.iter().map(|a| a.text.clone()).collect(),
            advice,
            agents: agent_rows(c, &ordered),
            files: c
                .files
                .iter()
                .map(|f| FileRow {
                    overlap: f.workstreams.len() > 1,
                    file: f.clone(),
                })
                .collect(),
            commits: c.commits.clone(),
            errors: ordered
                .iter()
                .zip(&workstreams)
                .flat_map(|(r, w)| error_rows(r, w.output_tail.as_ref()))
                .collect(),
            warnings: warning_rows(c, &workstreams),
            overlaps: c.overlaps.clone(),
            conflicts: conflict_rows(c),
            clean_overlaps: c
                .forecast
                .clean_overlaps()
                .into_iter()
                .map(|p| PairRow {
                    workstreams: [p.a.clone(), p.b.clone()],
                    paths: p.common_paths.clone(),
                })
                .collect(),
            merge_order: merge_order_rows(c),
            clusters: c.forecast.clusters.clone(),
            timeline: Timeline::build(c, &ordered),
            usage: usage_view(&ordered),
            retries: retry_rows(&ordered),
            tampering: tamper_rows(&ordered),
            workstreams,
            integration: None,
            fixups: Vec::new(),
        }
    }

    /// Attach what `git ws-merge` recorded (test output cleaned like every agent text).
    pub fn set_integration(&mut self, integration: Option<IntegrationRecord>) {
        self.integration = integration.map(|mut it| {
            for x in &mut it.excluded {
                x.detail = text::clean(&x.detail);
                x.output_tail = x.output_tail.as_deref().map(text::clean);
            }
            if let Some(t) = &it.test_command {
                it.test_command = Some(text::one_line(t));
            }
            it
        });
    }

    /// The conflicting pairs' count.
    pub fn conflict_count(&self) -> usize {
        self.conflicts.len()
    }
}

/// One sentence: how the run went.
fn verdict(c: &Consolidated) -> String {
    let conflicts = c.forecast.conflicting().len();
    if c.total_workstreams == 0 {
        "no workstreams ran.".to_string()
    } else if c.all_completed() && conflicts == 0 {
        format!(
            "{} completed; ready for merge.",
            text::all_of(c.total_workstreams, "workstream", "workstreams")
        )
    } else if c.all_completed() {
        format!(
            "{} completed; {} to resolve while merging (see Merge forecast).",
            text::all_of(c.total_workstreams, "workstream", "workstreams"),
            text::plural(conflicts, "conflicting pair", "conflicting pairs")
        )
    } else if c.deferred > 0 {
        format!(
            "{} of {} completed; {} failed, {} skipped, {} deferred (git ws-run --resume {} runs them).",
            c.completed,
            text::plural(c.total_workstreams, "workstream", "workstreams"),
            c.failed,
            c.skipped,
            c.deferred,
            c.run.run_id
        )
    } else {
        format!(
            "{} of {} completed; {} failed, {} skipped.",
            c.completed,
            text::plural(c.total_workstreams, "workstream", "workstreams"),
            c.failed,
            c.skipped
        )
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn workstream_row(r: &WorkstreamResult, merge: Option<&MergeRecord>) -> WorkstreamRow {
    WorkstreamRow {
        workstream_id: r.workstream_id.clone(),
        agent_id: r.agent_id.clone(),
        status: r.status,
        duration_seconds: r.duration_seconds,
        files_modified: r.files.iter().map(|f| f.path.clone()).collect(),
        commits_created: r.commits.clone(),
        branch: r.branch.clone(),
        merged: merge.is_some(),
        merge_commit: merge.map(|m| m.merge_commit.clone()),
        merge_detected_by: merge.and_then(|m| m.detected_by.clone()),
        // Raw, as the JSON keeps it; every other rendering cleans and caps it.
        title: r.title.clone(),
        source_file: r.source_file.clone(),
        start_time: r.start_time,
        end_time: r.end_time,
        exit_code: r.exit_code,
        log_path: r.log_path.clone(),
        errors: r
            .errors
            .iter()
            .map(|e| ErrorText {
                error_type: e.error_type,
                message: text::clean(&e.message),
            })
            .collect(),
        output_tail: r
            .output_tail
            .as_deref()
            .and_then(|t| OutputTail::new(t, r.log_path.as_deref())),
        tests: r.test_results.as_ref().map(|t| TestsRow {
            succeeded: t.succeeded(),
            results: TestResults {
                command: text::one_line(&t.command),
                ..t.clone()
            },
        }),
        warnings: r
            .warnings
            .iter()
            .filter(|w| !text::is_note(w))
            .map(|w| text::clean(w))
            .collect(),
        notes: r
            .warnings
            .iter()
            .filter(|w| text::is_note(w))
            .map(|w| text::clean(w))
            .collect(),
        files: r.files.clone(),
        additions: r.files.iter().map(|f| f.additions).sum(),
        deletions: r.files.iter().map(|f| f.deletions).sum(),
        agent: r.agent.clone(),
        usage: r.usage.as_ref().map(clean_usage),
        attempts: if r.attempts.len() > 1 {
            r.attempts
                .iter()
                .map(|a| Attempt {
                    retry_reason: a.retry_reason.as_deref().map(text::one_line),
                    usage: a.usage.as_ref().map(clean_usage),
                    ..a.clone()
                })
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// A usage with its agent-written text made safe to show.
fn clean_usage(u: &Usage) -> Usage {
    Usage {
        model: u.model.as_deref().map(text::one_line),
        session_id: u.session_id.as_deref().map(text::one_line),
        ..u.clone()
    }
}

/// The run's usage by coding agent (by name), or None when no
/// workstream reported any.
fn usage_view(ordered: &[&WorkstreamResult]) -> Option<UsageView> {
    let mut by_agent: Vec<AgentUsageRow> = Vec::new();
    let mut total: Option<Usage> = None;
    let mut n = 0;
    for r in ordered {
        let Some(u) = &r.usage else { continue };
        let u = clean_usage(u);
        n += 1;
        total = crate::agents::usage::add(total.as_ref(), Some(&u));
        let agent = r.agent.clone().unwrap_or_else(|| "unknown".to_string());
        let lean = Usage {
            extra: Default::default(),
            session_id: None,
            ..u
        };
        match by_agent.iter_mut().find(|a| a.agent == agent) {
            Some(row) => {
                row.workstreams += 1;
                row.usage =
                    crate::agents::usage::add(Some(&row.usage), Some(&lean)).unwrap_or_default();
            }
            None => by_agent.push(AgentUsageRow {
                agent,
                workstreams: 1,
                usage: lean,
            }),
        }
    }
    by_agent.sort_by(|a, b| a.agent.cmp(&b.agent));
    let mut total = total?;
    total.extra.clear();
    total.session_id = None;
    Some(UsageView {
        total,
        workstreams: n,
        by_agent,
    })
}

/// Workstreams with more than one attempt.
fn retry_rows(ordered: &[&WorkstreamResult]) -> Vec<RetryRow> {
    ordered
        .iter()
        .filter(|r| r.attempts.len() > 1)
        .map(|r| RetryRow {
            workstream_id: r.workstream_id.clone(),
            agent: r.agent.clone(),
            attempts: r.attempts.len(),
            status: r.status,
            flaky: r.status == Status::Completed,
            reasons: r
                .attempts
                .iter()
                .filter_map(|a| a.retry_reason.as_deref().map(text::one_line))
                .collect(),
            backoff_seconds: r.attempts.iter().filter_map(|a| a.backoff_seconds).sum(),
        })
        .collect()
}

/// The log a test failure's trace came from: `<id>.test.log` beside the command's log.
fn test_log(log: &str) -> String {
    match log.strip_suffix(".log") {
        Some(stem) => format!("{stem}.test.log"),
        None => log.to_string(),
    }
}

/// Each error with the output that explains it: its own trace, or for the first error of a
/// failed command the command's output tail (`output_tail`, already made).
fn error_rows(r: &WorkstreamResult, output_tail: Option<&OutputTail>) -> Vec<ErrorRow> {
    r.errors
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let explains = matches!(
                e.error_type,
                ErrorType::CommandFailed | ErrorType::Timeout | ErrorType::TestFailed
            );
            let log = match (e.error_type, &r.log_path) {
                (ErrorType::TestFailed, Some(l)) => Some(test_log(l)),
                (_, l) => l.clone(),
            };
            let tail = match e.stack_trace.as_deref() {
                // The trace is the command's output tail: made once.
                Some(t) if Some(t) == r.output_tail.as_deref() && log == r.log_path => {
                    output_tail.cloned()
                }
                Some(t) => OutputTail::new(t, log.as_deref()),
                None if i == 0 && explains => output_tail.cloned(),
                None => None,
            };
            ErrorRow {
                workstream_id: r.workstream_id.clone(),
                agent_id: r.agent_id.clone(),
                error_type: e.error_type,
                message: text::clean(&e.message),
                output_tail: tail,
            }
        })
        .collect()
}

fn tamper_rows(ordered: &[&WorkstreamResult]) -> Vec<TamperRow> {
    let warnings = ordered.iter().flat_map(|r| {
        r.warnings
            .iter()
            .map(|w| (r.workstream_id.as_str(), w.as_str()))
    });
    crate::tamper::collect(warnings)
        .into_iter()
        .map(|mut t| {
            t.path = text::clean(&t.path);
            t.old = t.old.as_deref().map(text::clean);
            t.new = t.new.as_deref().map(text::clean);
            TamperRow {
                attribution: crate::tamper::attribution(&t),
                change: t,
            }
        })
        .collect()
}

fn warning_rows(c: &Consolidated, workstreams: &[WorkstreamRow]) -> Vec<WarningRow> {
    let run = c.notes.iter().map(|n| WarningRow {
        workstream_id: None,
        message: text::clean(n),
    });
    let per_ws = workstreams.iter().flat_map(|w| {
        w.warnings.iter().map(|m| WarningRow {
            workstream_id: Some(w.workstream_id.clone()),
            message: m.clone(),
        })
    });
    run.chain(per_ws).collect()
}

/// The consolidated agents, then any agent id only the results name.
fn agent_rows(c: &Consolidated, ordered: &[&WorkstreamResult]) -> Vec<AgentRow> {
    let mut by_agent: HashMap<&str, Vec<AgentWorkstream>> = HashMap::new();
    for r in ordered {
        by_agent
            .entry(r.agent_id.as_str())
            .or_default()
            .push(AgentWorkstream {
                workstream_id: r.workstream_id.clone(),
                status: r.status,
            });
    }
    c.agents
        .iter()
        .map(|a| AgentRow {
            workstreams: by_agent.remove(a.agent_id.as_str()).unwrap_or_default(),
            perf: a.clone(),
        })
        .collect()
}

fn conflict_rows(c: &Consolidated) -> Vec<ConflictRow> {
    let positions = c.forecast.positions();
    c.forecast
        .conflicting()
        .into_iter()
        .map(|p| {
            let (first, then) = p.merge_first(&positions);
            ConflictRow {
                workstreams: [p.a.clone(), p.b.clone()],
                paths: p.conflict_paths.clone(),
                hunks: p
                    .hunks
                    .iter()
                    .map(|h| ConflictHunk {
                        path: h.path.clone(),
                        text: text::clean(&h.text),
                    })
                    .collect(),
                merge_first: first.to_string(),
                then_rebase: then.to_string(),
            }
        })
        .collect()
}

/// Each step, explained: the forecast names its partners (for a step that needs a rebase,
/// the earlier steps it conflicts with).
fn merge_order_rows(c: &Consolidated) -> Vec<MergeStepRow> {
    c.forecast
        .merge_order
        .iter()
        .enumerate()
        .map(|(i, s)| MergeStepRow {
            position: i + 1,
            workstream_id: s.workstream_id.clone(),
            clean: s.clean,
            conflict_paths: s.conflict_paths.clone(),
            rebase_after: if s.clean {
                Vec::new()
            } else {
                s.partners.clone()
            },
            partners: s.partners.clone(),
            clusters: s.clusters.clone(),
            overlapping: s.overlapping,
            change_size: s.change_size,
            reason: text::clean(&s.reason),
        })
        .collect()
}
