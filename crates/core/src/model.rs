//! Shared data model: the plain types every layer passes around (workstream results, file
//! changes, errors, test results, statuses). No I/O and no logic beyond (de)serialisation.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Final status of one workstream in one run (the `agent_results.status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Completed,
    Failed,
    Skipped,
    /// Not run to its end because its agent's usage limit was hit or the run's `--budget`
    /// was spent: `--resume` runs it again (not a failure, not final).
    Deferred,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Deferred => "deferred",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "completed" => Some(Status::Completed),
            "failed" => Some(Status::Failed),
            "skipped" => Some(Status::Skipped),
            "deferred" => Some(Status::Deferred),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error types, as stored in `consolidated_errors.error_type` and `errors[].type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum ErrorType {
    InvalidWorkstream,
    CommandFailed,
    Timeout,
    TestFailed,
    DependencyFailed,
    Cancelled,
    SpawnError,
    GitError,
    /// Stopped because its cost passed `max_cost_usd`, or not started because the run's
    /// `--budget` was spent.
    BudgetExceeded,
    /// A `prompt` workstream that ended with no commit and no changed file, when git config
    /// `ws.requireChanges` asks for changes.
    NoChanges,
    /// The agent's CLI reported a usage limit (the workstream is deferred until its reset).
    UsageLimit,
    /// Something outside the worktrees changed while it ran (the watch), with
    /// `ws.sandbox=strict`.
    SandboxViolation,
}

impl ErrorType {
    pub const ALL: [ErrorType; 12] = [
        ErrorType::InvalidWorkstream,
        ErrorType::CommandFailed,
        ErrorType::Timeout,
        ErrorType::TestFailed,
        ErrorType::DependencyFailed,
        ErrorType::Cancelled,
        ErrorType::SpawnError,
        ErrorType::GitError,
        ErrorType::BudgetExceeded,
        ErrorType::NoChanges,
        ErrorType::UsageLimit,
        ErrorType::SandboxViolation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::InvalidWorkstream => "InvalidWorkstream",
            ErrorType::CommandFailed => "CommandFailed",
            ErrorType::Timeout => "Timeout",
            ErrorType::TestFailed => "TestFailed",
            ErrorType::DependencyFailed => "DependencyFailed",
            ErrorType::Cancelled => "Cancelled",
            ErrorType::SpawnError => "SpawnError",
            ErrorType::GitError => "GitError",
            ErrorType::BudgetExceeded => "BudgetExceeded",
            ErrorType::NoChanges => "NoChanges",
            ErrorType::UsageLimit => "UsageLimit",
            ErrorType::SandboxViolation => "SandboxViolation",
        }
    }

    pub fn parse(s: &str) -> Option<ErrorType> {
        ErrorType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One error attached to a workstream result. `stack_trace` holds the tail of the command's
/// output for `CommandFailed`, `Timeout` and `TestFailed`; it is stored in
/// `consolidated_errors.stack_trace` but not in the `errors` JSON array (which is
/// `[{"type","message"}]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WsError {
    #[serde(rename = "type")]
    pub error_type: ErrorType,
    pub message: String,
    #[serde(skip)]
    pub stack_trace: Option<String>,
}

impl WsError {
    pub fn new(error_type: ErrorType, message: impl Into<String>) -> Self {
        WsError {
            error_type,
            message: message.into(),
            stack_trace: None,
        }
    }

    pub fn with_trace(mut self, trace: impl Into<String>) -> Self {
        let t = trace.into();
        self.stack_trace = if t.is_empty() { None } else { Some(t) };
        self
    }
}

/// How a file changed between the base and the branch tip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
    Renamed,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Modified => "modified",
            ChangeKind::Deleted => "deleted",
            ChangeKind::Renamed => "renamed",
        }
    }
}

/// One file in the diff base..tip of a workstream branch. `path` is the new path (the old
/// path for a deletion); `old_path` is set for renames. Line counts are 0 for binary files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    pub kind: ChangeKind,
    pub additions: u64,
    pub deletions: u64,
}

/// Outcome of a workstream's `test` command (`agent_results.test_results`), as parsed by
/// [`crate::testparse`]. A count is `None` (JSON `null`) when the output did not say it: no
/// recognisable summary at all, or a runner that does not print that count; the exit code
/// then decides. The seed's five keys are always serialised; the runner-specific counts
/// and `runner` only when known, and rows written before they existed read back as `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResults {
    pub command: String,
    pub exit_code: Option<i32>,
    pub passed: Option<u64>,
    pub failed: Option<u64>,
    /// Selected but not run: skipped, ignored, pending, todo. Not deselected tests.
    pub skipped: Option<u64>,
    /// Problems outside any one test: collection/import errors, suites or packages that
    /// failed to load or build, test binaries that crashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<u64>,
    /// Left out by a filter (`pytest -k/-m`, libtest's "filtered out").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deselected: Option<u64>,
    /// Expected failures (pytest xfail, vitest `test.fails`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xfailed: Option<u64>,
    /// Expected failures that passed (pytest xpass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xpassed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings: Option<u64>,
    /// Which runner's summary the counts came from (`cargo-test`, `pytest`, …;
    /// `cargo-test+pytest` when several were summed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
}

impl TestResults {
    /// Tests succeeded: exit code 0, no failed test and no error.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && self.failed.unwrap_or(0) == 0 && self.errors.unwrap_or(0) == 0
    }
}

/// Agent id used for results that never reached an agent (invalid files, skipped work).
pub const UNASSIGNED_AGENT: &str = "unassigned";

/// The id of agent slot `k` (1-based), as stored and shown: `agent-k`.
pub fn agent_name(k: usize) -> String {
    format!("agent-{k}")
}

/// The id of agent `k` of a worker in a run several machines share: `agent-k@NAME`
/// ([`agent_name`] when there is no worker name).
pub fn worker_agent_name(k: usize, worker: Option<&str>) -> String {
    match worker {
        Some(w) => format!("agent-{k}@{w}"),
        None => agent_name(k),
    }
}

/// The slot number of an [`agent_name`] or [`worker_agent_name`] id (`agent-3` and
/// `agent-3@host-12` → 3); None for any other id.
pub fn agent_number(id: &str) -> Option<usize> {
    let id = id.split_once('@').map_or(id, |(a, _)| a);
    id.strip_prefix("agent-")
        .filter(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
}

/// Everything known about one workstream in one run: one `agent_results` row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkstreamResult {
    pub run_id: String,
    /// `agent-1`, `agent-2`, … or [`UNASSIGNED_AGENT`].
    pub agent_id: String,
    pub workstream_id: String,
    pub title: Option<String>,
    pub status: Status,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub duration_seconds: f64,
    pub files: Vec<FileChange>,
    /// Full SHAs of base..tip, oldest first.
    pub commits: Vec<String>,
    pub errors: Vec<WsError>,
    pub warnings: Vec<String>,
    pub test_results: Option<TestResults>,
    /// `ws/<run-id>/<id>`, once created.
    pub branch: Option<String>,
    /// Base commit (full SHA).
    pub base: Option<String>,
    /// Branch tip after the workstream (full SHA).
    pub head: Option<String>,
    pub worktree: Option<String>,
    pub log_path: Option<String>,
    pub exit_code: Option<i32>,
    /// Last lines of the command's combined output.
    pub output_tail: Option<String>,
    /// The workstream file this came from, relative to the workstreams dir.
    pub source_file: Option<String>,
    /// Wall time of the command itself (what the agent spent).
    pub command_seconds: Option<f64>,
    /// Wall time of the `test` command.
    pub test_seconds: Option<f64>,
    /// The coding agent that ran it: a preset (`claude`, `codex`, `aider`, `gemini`),
    /// `agent-cmd` (the `--agent-cmd` command) or `command` (the workstream's own command);
    /// None when it never ran.
    pub agent: Option<String>,
    /// What the agent reported spending, summed over every attempt; None when nothing
    /// reported usage.
    pub usage: Option<Usage>,
    /// Every attempt at the command, oldest first (more than one when transient failures
    /// were retried); empty when it never ran.
    pub attempts: Vec<Attempt>,
}

impl WorkstreamResult {
    /// A result with only identity and status filled in; callers set the rest.
    pub fn new(run_id: &str, agent_id: &str, workstream_id: &str, status: Status) -> Self {
        WorkstreamResult {
            run_id: run_id.to_string(),
            agent_id: agent_id.to_string(),
            workstream_id: workstream_id.to_string(),
            title: None,
            status,
            start_time: None,
            end_time: None,
            duration_seconds: 0.0,
            files: Vec::new(),
            commits: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            test_results: None,
            branch: None,
            base: None,
            head: None,
            worktree: None,
            log_path: None,
            exit_code: None,
            output_tail: None,
            source_file: None,
            command_seconds: None,
            test_seconds: None,
            agent: None,
            usage: None,
            attempts: Vec::new(),
        }
    }

    /// Time the coordinator spent on this workstream outside the agent's command and its
    /// test (preparing the branch, reading git, bookkeeping); None if it never ran.
    pub fn overhead_seconds(&self) -> Option<f64> {
        let cmd = self.command_seconds?;
        Some((self.duration_seconds - cmd - self.test_seconds.unwrap_or(0.0)).max(0.0))
    }

    /// The `metadata` JSON object stored with the row.
    pub fn metadata_json(&self) -> serde_json::Value {
        serde_json::json!({
            "title": self.title,
            "branch": self.branch,
            "base": self.base,
            "head": self.head,
            "worktree": self.worktree,
            "log_path": self.log_path,
            "exit_code": self.exit_code,
            "output_tail": self.output_tail,
            "source_file": self.source_file,
            "command_seconds": self.command_seconds,
            "test_seconds": self.test_seconds,
            "file_changes": self.files,
            "agent": self.agent,
            "usage": self.usage,
            "attempts": self.attempts,
        })
    }
}

/// Static facts about a run, known when it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub agents: usize,
    /// Base commit, full SHA.
    pub base: String,
    /// What the user passed as `--base` (e.g. `HEAD`).
    pub base_rev: String,
    /// Main worktree root.
    pub repo_root: String,
    /// Run this one re-runs (`--rerun-failed`), if any.
    pub rerun_of: Option<String>,
}

/// Outcome of merging two completed workstream branches in memory (the merge forecast).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairForecast {
    /// The two workstream ids, in a stable order (a < b).
    pub a: String,
    pub b: String,
    /// Paths both branches touch.
    pub common_paths: Vec<String>,
    /// Paths that conflict when merging a and b; empty = merges cleanly.
    pub conflict_paths: Vec<String>,
    /// Per conflicting path, a diff3-style rendering of the conflict (truncated).
    pub hunks: Vec<ConflictHunk>,
}

impl PairForecast {
    /// Whether merging the pair conflicts.
    pub fn conflicts(&self) -> bool {
        !self.conflict_paths.is_empty()
    }

    /// (merge first, then rebase): the one earlier in the merge order (from
    /// [`Forecast::positions`]) goes first; a first when neither is in it.
    pub fn merge_first(&self, positions: &std::collections::HashMap<&str, usize>) -> (&str, &str) {
        let pos = |id: &str| positions.get(id).copied().unwrap_or(usize::MAX);
        if pos(&self.b) < pos(&self.a) {
            (&self.b, &self.a)
        } else {
            (&self.a, &self.b)
        }
    }
}

/// A rendered conflict for one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictHunk {
    pub path: String,
    pub text: String,
}

/// One step of the suggested merge order: merging `workstream_id`'s branch onto the base
/// after all earlier clean steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeStep {
    pub workstream_id: String,
    pub clean: bool,
    /// When not clean: the paths that conflict with what was merged before.
    pub conflict_paths: Vec<String>,
}

/// The whole forecast for a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forecast {
    pub pairs: Vec<PairForecast>,
    pub merge_order: Vec<MergeStep>,
}

impl Forecast {
    /// The pairs that conflict, in natural order of (a, b).
    pub fn conflicting(&self) -> Vec<&PairForecast> {
        self.sorted_pairs(true)
    }

    /// The pairs that share paths but merge cleanly, in natural order of (a, b).
    pub fn clean_overlaps(&self) -> Vec<&PairForecast> {
        self.sorted_pairs(false)
    }

    fn sorted_pairs(&self, conflicting: bool) -> Vec<&PairForecast> {
        sorted_pairs(&self.pairs, conflicting)
    }

    /// Position (0-based) of each workstream in the suggested merge order.
    pub fn positions(&self) -> std::collections::HashMap<&str, usize> {
        self.merge_order
            .iter()
            .enumerate()
            .map(|(i, s)| (s.workstream_id.as_str(), i))
            .collect()
    }

    /// The forecast in its first shape, for the consumers that still read it: the computed
    /// pairs, and the suggested order without its explanations.
    pub fn from_merge_forecast(f: &MergeForecast) -> Forecast {
        Forecast {
            pairs: f.pairs.clone(),
            merge_order: f
                .merge_order
                .iter()
                .map(|s| MergeStep {
                    workstream_id: s.workstream_id.clone(),
                    clean: s.clean,
                    conflict_paths: s.conflict_paths.clone(),
                })
                .collect(),
        }
    }
}

/// Where several workstreams change the same thing, so that any two of them may conflict:
/// one path (and, when many change one text file, one region of its lines), a file where
/// another makes a directory, or a directory one of them renames while another adds to
/// it. Two workstreams that share no cluster merge cleanly with each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForecastCluster {
    /// 1, 2, … in order of path, then line.
    pub id: usize,
    pub path: String,
    /// `lines` (one region of a text file), `file` (the whole file: adds, deletes, renames,
    /// modes, binary files), `file/directory`, `directory rename`.
    pub kind: String,
    /// For `lines`: the first and last base line (1-based) the members change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<(u64, u64)>,
    /// Members, sorted.
    pub workstreams: Vec<String>,
    /// Whether every pair of members was merged (clusters of at most
    /// [`MergeForecast::PAIRWISE_LIMIT`]); in larger ones only the pairs the merge order
    /// needed were.
    pub all_pairs: bool,
    /// Of the pairs merged, how many conflict.
    pub conflicting_pairs: usize,
}

/// One step of the explained merge order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForecastStep {
    pub workstream_id: String,
    /// Merges cleanly onto the base plus every clean step before it.
    pub clean: bool,
    /// When not clean: the paths that conflict with what was merged before.
    pub conflict_paths: Vec<String>,
    /// When not clean: the earlier steps it conflicts with (its rebase partners). When clean:
    /// the earlier steps it overlaps and merges cleanly after.
    pub partners: Vec<String>,
    /// The clusters it belongs to.
    pub clusters: Vec<usize>,
    /// The first sort key: how many other workstreams share a cluster with it (counted once
    /// per cluster).
    pub overlapping: usize,
    /// The second sort key: lines added plus lines removed (a file that is not text counts
    /// as one line).
    pub change_size: u64,
    /// Why it is where it is, in one sentence.
    pub reason: String,
}

/// A file touched by more than one workstream (a rename counts at its old and new paths).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForecastOverlap {
    pub path: String,
    pub workstreams: Vec<String>,
}

/// The merge forecast of a run, in a size linear in the work.
///
/// - `clusters`: where workstreams may conflict (see [`ForecastCluster`]).
/// - `pairs`: the pairwise merges computed, each agreeing with `git merge-tree`: every pair
///   inside clusters of at most [`MergeForecast::PAIRWISE_LIMIT`] members, plus each step
///   that needs a rebase against the earlier steps it shares a cluster with. A pair not
///   listed merges cleanly if its workstreams share no cluster.
/// - `merge_order`: every workstream once. Sorted by fewest overlapping workstreams, then
///   smallest change, then id; the branches are merged in that order onto the base (in
///   memory) and those that conflict with what is already merged move to the end, marked
///   `clean: false`, in the same order.
/// - `overlaps`: files touched by more than one workstream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeForecast {
    pub clusters: Vec<ForecastCluster>,
    pub pairs: Vec<PairForecast>,
    pub merge_order: Vec<ForecastStep>,
    pub overlaps: Vec<ForecastOverlap>,
}

impl MergeForecast {
    /// Clusters up to this size have every pair merged.
    pub const PAIRWISE_LIMIT: usize = 12;

    /// The computed pairs that conflict, in natural order of (a, b).
    pub fn conflicting(&self) -> Vec<&PairForecast> {
        sorted_pairs(&self.pairs, true)
    }

    /// The computed pairs that share paths but merge cleanly, in natural order of (a, b).
    pub fn clean_overlaps(&self) -> Vec<&PairForecast> {
        sorted_pairs(&self.pairs, false)
    }

    /// Position (0-based) of each workstream in the merge order.
    pub fn positions(&self) -> std::collections::HashMap<&str, usize> {
        self.merge_order
            .iter()
            .enumerate()
            .map(|(i, s)| (s.workstream_id.as_str(), i))
            .collect()
    }
}

/// The first shape in the new one, for callers that still build a [`Forecast`]: no
/// clusters or explanations; each step that needs a rebase names as partners the earlier
/// steps it conflicts with pairwise.
impl From<Forecast> for MergeForecast {
    fn from(f: Forecast) -> MergeForecast {
        let positions = f.positions();
        let merge_order = f
            .merge_order
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut partners: Vec<(usize, String)> = f
                    .pairs
                    .iter()
                    .filter(|p| !s.clean && p.conflicts())
                    .filter_map(|p| {
                        let other = if p.a == s.workstream_id {
                            &p.b
                        } else if p.b == s.workstream_id {
                            &p.a
                        } else {
                            return None;
                        };
                        let j = *positions.get(other.as_str())?;
                        (j < i).then(|| (j, other.clone()))
                    })
                    .collect();
                partners.sort();
                partners.dedup();
                ForecastStep {
                    workstream_id: s.workstream_id.clone(),
                    clean: s.clean,
                    conflict_paths: s.conflict_paths.clone(),
                    partners: partners.into_iter().map(|(_, w)| w).collect(),
                    clusters: Vec::new(),
                    overlapping: 0,
                    change_size: 0,
                    reason: String::new(),
                }
            })
            .collect();
        MergeForecast {
            clusters: Vec::new(),
            pairs: f.pairs,
            merge_order,
            overlaps: Vec::new(),
        }
    }
}

fn sorted_pairs(pairs: &[PairForecast], conflicting: bool) -> Vec<&PairForecast> {
    use crate::text::natural_cmp;
    let mut v: Vec<&PairForecast> = pairs
        .iter()
        .filter(|p| p.conflicts() == conflicting && (conflicting || !p.common_paths.is_empty()))
        .collect();
    v.sort_by(|x, y| natural_cmp(&x.a, &y.a).then_with(|| natural_cmp(&x.b, &y.b)));
    v
}

/// What `git ws-merge` did with a run (the JSON object it prints, and `integration` in
/// `git ws-report`): the run's completed branches merged in the forecast's order onto
/// `onto`, as branch `branch` at `tip`, and what was left out and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegrationRecord {
    pub run_id: String,
    /// The commit integrated onto (full SHA).
    pub onto: String,
    /// What `--onto` said (`HEAD`, `main`, a SHA).
    pub onto_rev: String,
    /// The integration branch (`ws/<run-id>/integration`, or `--into`).
    pub branch: String,
    /// The branch's tip (full SHA): the last merge commit, or `onto` when nothing merged.
    pub tip: String,
    /// The test command (`--test`, git config `ws.integrationTest`); null when untested.
    pub test_command: Option<String>,
    /// Every run of the test command, the one on `onto` included (0 without a test).
    pub test_runs: usize,
    /// The workstreams integrated, in merge order.
    pub merged: Vec<String>,
    /// The same, with each branch tip merged and the merge commit made.
    pub merges: Vec<IntegrationMerge>,
    /// The workstreams left out: conflicts and test breakers in the order met, then those
    /// whose branch is missing, then those that did not complete.
    pub excluded: Vec<IntegrationExclusion>,
    /// Each run of the test command, in order.
    pub tests: Vec<IntegrationTestRun>,
    /// The branch `--ff` fast-forwarded to `tip`, if any.
    pub fast_forwarded: Option<String>,
    /// A plan (`--dry-run`): nothing was written, `tip` exists only in memory.
    pub dry_run: bool,
    /// When the integration finished (UTC).
    pub integrated_at: DateTime<Utc>,
    /// Integrated with `--incomplete`: the run had not finished (it was running, its
    /// coordinator died, or it was interrupted), so [`Self::without_result`] were not
    /// there to integrate. Absent from the JSON when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
    /// The workstreams of an incomplete run without a final result (left out as
    /// `no-result`). Absent from the JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub without_result: Vec<String>,
    /// Who made it: `ws-run` (a run with `--integrate`, as its workstreams completed);
    /// absent for `git ws-merge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made_by: Option<String>,
    /// Tips whose verdict came from an earlier integration's test run (same commit, same
    /// test command) instead of running the test again. Absent from the JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reused_tests: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl IntegrationRecord {
    /// [`Self::made_by`] of a run's own integration (`git ws-run --integrate`).
    pub const MADE_BY_RUN: &'static str = "ws-run";

    /// Whether the tests pass on the tip: a test run of it passed, or (its verdict reused
    /// from the run's own integration) none of this attempt's runs tested it.
    pub fn tip_passes(&self) -> bool {
        self.tests.iter().any(|t| t.commit == self.tip && t.passed)
            || (self.reused_tests > 0 && !self.tests.iter().any(|t| t.commit == self.tip))
    }

    /// Whether every completed branch was integrated: nothing left out but workstreams
    /// that did not complete and those a reviewer left out.
    pub fn all_integrated(&self) -> bool {
        self.excluded.iter().all(|x| {
            x.reason == IntegrationExclusion::NOT_COMPLETED
                || x.reason == IntegrationExclusion::LEFT_OUT_BY_REVIEW
        })
    }
}

/// One merge of an integration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationMerge {
    pub workstream_id: String,
    /// The branch tip merged (full SHA).
    pub tip: String,
    /// The integration's tip after this merge (full SHA): the merge commit, or the commit
    /// before it when the branch was already contained.
    pub merge_commit: String,
    /// When it was merged (UTC); absent for integrations recorded without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

/// A workstream `git ws-merge` left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationExclusion {
    pub workstream_id: String,
    /// `conflict`, `breaks-tests`, `missing-branch`, `not-completed`, `no-result` or
    /// `left-out-by-review`.
    pub reason: String,
    /// For `conflict`: the conflicting paths.
    pub paths: Vec<String>,
    /// One sentence: what it conflicts or breaks the tests with, or why it did not complete.
    pub detail: String,
    /// For `breaks-tests`: the workstreams it broke the tests with (empty: on its own).
    pub broke_with: Vec<String>,
    /// For `breaks-tests`: the last lines of the failing test run's output.
    pub output_tail: Option<String>,
    /// When it was left out (UTC); absent when not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

impl IntegrationExclusion {
    pub const CONFLICT: &'static str = "conflict";
    pub const BREAKS_TESTS: &'static str = "breaks-tests";
    pub const MISSING_BRANCH: &'static str = "missing-branch";
    pub const NOT_COMPLETED: &'static str = "not-completed";
    /// Its branch contains the work of a dependency that was left out (stacked
    /// dependencies): merging it would bring that work in.
    pub const DEPENDENCY_LEFT_OUT: &'static str = "dependency-left-out";
    /// The run did not finish and the workstream has no final result (`--incomplete`).
    pub const NO_RESULT: &'static str = "no-result";
    /// A reviewer left it out from `git ws-review` (the detail names who and when).
    pub const LEFT_OUT_BY_REVIEW: &'static str = "left-out-by-review";
}

/// One run of the integration's test command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegrationTestRun {
    /// The commit tested (full SHA): `onto`, or an integration of some of the merges.
    pub commit: String,
    /// The workstreams merged into it, in order (empty: `onto` alone).
    pub workstreams: Vec<String>,
    pub passed: bool,
    /// The exit code (null: killed after the time limit, or by a signal).
    pub exit_code: Option<i32>,
    pub duration_seconds: f64,
    /// Why it ended, when not by exiting: `timeout`.
    pub ending: Option<String>,
    /// The log file of this run.
    pub log_path: Option<String>,
    /// When it started (UTC); absent for runs recorded without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
}

/// What a coding agent reported spending: parsed from a preset's structured output and/or
/// the `$WS_METRICS` file. Every field is optional: an agent reports what it knows. Token
/// counts are as the agent reports them (Claude's `input_tokens` excludes cache reads,
/// Codex's includes them; `cached_input_tokens` says how many were cache reads).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Who reported it: a preset name, `metrics` (the `$WS_METRICS` file), or both
    /// (`claude+metrics`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Anything else the `$WS_METRICS` file said, kept as it was.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One attempt at a workstream's command (and its tests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1-based.
    pub attempt: u32,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    pub duration_seconds: f64,
    /// `completed`, or the error type that ended it (`CommandFailed`, `Timeout`, …).
    pub outcome: String,
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Why it was retried (the transient failure it was classified as); None for the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_reason: Option<String>,
    /// How long git-ws waited before the next attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// A workstream branch the post-merge hook found merged into `HEAD` (`ws_merges`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeRecord {
    pub run_id: String,
    pub workstream_id: String,
    /// `ws/<run-id>/<id>`.
    pub branch: String,
    /// The branch tip (full SHA) found merged.
    pub tip: String,
    /// `HEAD` (full SHA) after the merge that made the tip reachable.
    pub merge_commit: String,
    pub merged_at: DateTime<Utc>,
    /// How it was recognised: `ancestor` (merged or fast-forwarded), `tree` (squashed),
    /// `patch-id` (cherry-picked); `None` for merges recorded before this was kept.
    #[serde(default)]
    pub detected_by: Option<String>,
}
