//! Consolidation: pure functions that turn a run's per-workstream results into totals,
//! deduplicated files, overlaps, per-agent performance, test totals and recommendations.

use crate::model::{Forecast, RunInfo, Status, WorkstreamResult};
use serde::{Deserialize, Serialize};

/// A file touched by at least one workstream, deduplicated across agents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSummary {
    pub path: String,
    /// Workstream ids that touched it, sorted.
    pub workstreams: Vec<String>,
    pub additions: u64,
    pub deletions: u64,
}

/// A file touched by more than one workstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlap {
    pub path: String,
    pub workstreams: Vec<String>,
}

/// Per-agent performance over a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentPerf {
    pub agent_id: String,
    pub total: usize,
    pub completed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub busy_seconds: f64,
    /// busy_seconds / run wall seconds, 0..=1.
    pub utilisation: f64,
    pub avg_duration: f64,
}

/// Aggregated test outcomes across workstreams.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestTotals {
    /// Workstreams that ran a test command.
    pub workstreams_tested: usize,
    /// Of those, how many had tests succeed.
    pub workstreams_passed: usize,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// One commit created in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRef {
    pub workstream_id: String,
    pub sha: String,
}

/// Everything consolidated about a run: the input of the database's run row and of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consolidated {
    pub run: RunInfo,
    pub total_workstreams: usize,
    pub completed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub files: Vec<FileSummary>,
    pub commits: Vec<CommitRef>,
    pub total_errors: usize,
    pub total_warnings: usize,
    pub tests: TestTotals,
    pub agents: Vec<AgentPerf>,
    pub overlaps: Vec<Overlap>,
    pub forecast: Forecast,
    pub recommendations: Vec<String>,
    /// Run wall time: first start to last end (or finished_at - started_at).
    pub wall_seconds: f64,
    /// Sum of all workstream durations.
    pub busy_seconds: f64,
    /// Error counts by type, sorted by type.
    pub errors_by_type: Vec<(String, usize)>,
}

impl Consolidated {
    /// Whether every workstream completed.
    pub fn all_completed(&self) -> bool {
        self.failed == 0 && self.skipped == 0
    }

    /// Count of results with the given status.
    pub fn count(results: &[WorkstreamResult], status: Status) -> usize {
        results.iter().filter(|r| r.status == status).count()
    }
}

/// Consolidate a run. `results` may be in any order; the output is deterministic.
pub fn consolidate(
    run: &RunInfo,
    results: &[WorkstreamResult],
    forecast: Forecast,
) -> Consolidated {
    let _ = (run, results, forecast);
    todo!("consolidate")
}

/// The seed's recommendation rules plus overlaps and conflicts.
pub fn recommendations(c: &Consolidated) -> Vec<String> {
    let _ = c;
    todo!("recommendations")
}
