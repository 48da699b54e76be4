//! What a consolidated run is: its totals, files, overlaps, per-agent performance and test
//! totals, and the workstreams singled out for advice.

use crate::model::{ChangeKind, MergeForecast, RunInfo, Status, WorkstreamResult};
use serde::{Deserialize, Serialize};

/// A file touched by at least one workstream, deduplicated across agents. A rename counts
/// at both its paths: under its new path (with `old_paths`) and under its old path (kind
/// `renamed`, with `renamed_to`), so a rename on one side and an edit of the old path on
/// the other show up as an overlap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSummary {
    /// The path.
    pub path: String,
    /// Workstream ids that touched it, sorted (natural order: ws-2 before ws-10).
    pub workstreams: Vec<String>,
    pub additions: u64,
    pub deletions: u64,
    /// Distinct kinds of change made to it, sorted.
    #[serde(default)]
    pub kinds: Vec<ChangeKind>,
    /// Paths it was renamed from, sorted and distinct.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub old_paths: Vec<String>,
    /// Paths it was renamed to (a workstream moved it away), sorted and distinct.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renamed_to: Vec<String>,
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
    /// Deferred: its usage limit or the run's budget stopped it (`--resume` runs it); left
    /// out of the JSON while 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deferred: usize,
    pub busy_seconds: f64,
    /// busy_seconds / run wall seconds, 0..=1.
    pub utilisation: f64,
    pub avg_duration: f64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Aggregated test outcomes across workstreams. In JSON, `passed`, `failed` and `skipped`
/// are `null` when no workstream's counts could be read (`workstreams_counted` 0): unknown,
/// not zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TestTotals {
    /// Workstreams that ran a test command.
    pub workstreams_tested: usize,
    /// Of those, how many had tests succeed.
    pub workstreams_passed: usize,
    /// Of those, how many printed counts that could be parsed; the sums below cover only
    /// them (0 of N: the counts are unknown, shown as "n/a").
    #[serde(default)]
    pub workstreams_counted: usize,
    #[serde(default, deserialize_with = "null_as_zero")]
    pub passed: u64,
    #[serde(default, deserialize_with = "null_as_zero")]
    pub failed: u64,
    #[serde(default, deserialize_with = "null_as_zero")]
    pub skipped: u64,
}

/// A count written as `null` (unknown) reads back as 0, with `workstreams_counted` 0.
fn null_as_zero<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(Option::<u64>::deserialize(d)?.unwrap_or(0))
}

impl Serialize for TestTotals {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let known = |n: u64| (self.workstreams_counted > 0).then_some(n);
        let mut st = s.serialize_struct("TestTotals", 6)?;
        st.serialize_field("workstreams_tested", &self.workstreams_tested)?;
        st.serialize_field("workstreams_passed", &self.workstreams_passed)?;
        st.serialize_field("workstreams_counted", &self.workstreams_counted)?;
        st.serialize_field("passed", &known(self.passed))?;
        st.serialize_field("failed", &known(self.failed))?;
        st.serialize_field("skipped", &known(self.skipped))?;
        st.end()
    }
}

/// One commit created in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRef {
    pub workstream_id: String,
    pub sha: String,
}

/// A workstream singled out for a recommendation, with a short detail: the first error's
/// type for failures, the first error's message for skips, the duration for timeouts, the
/// failure count or exit code for test failures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WsNote {
    pub workstream_id: String,
    pub agent_id: String,
    pub detail: String,
    pub duration_seconds: f64,
}

/// Everything consolidated about a run: the input of the database's run row and of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consolidated {
    pub run: RunInfo,
    pub total_workstreams: usize,
    pub completed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Deferred (a usage limit, a spent `--budget`): not run to its end, `--resume` runs it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deferred: usize,
    /// Sorted by path.
    pub files: Vec<FileSummary>,
    /// In result order (start time, unstarted last, then workstream id), oldest first within
    /// a workstream.
    pub commits: Vec<CommitRef>,
    pub total_errors: usize,
    pub total_warnings: usize,
    pub tests: TestTotals,
    /// `agent-1`..`agent-N`, then any other agent ids (`unassigned` last).
    pub agents: Vec<AgentPerf>,
    /// Sorted by path.
    pub overlaps: Vec<Overlap>,
    /// The merge forecast of the completed branches (clusters, computed pairs, explained
    /// order).
    pub forecast: MergeForecast,
    pub recommendations: Vec<String>,
    /// Run wall time: first start to last end (or finished_at - started_at).
    pub wall_seconds: f64,
    /// Sum of all workstream durations.
    pub busy_seconds: f64,
    /// Mean time per workstream the coordinator spent outside the agent's command and test
    /// (preparing the branch, reading git, recording); None when nothing ran.
    #[serde(default)]
    pub overhead_seconds: Option<f64>,
    /// Error counts by type, sorted by type name.
    pub errors_by_type: Vec<(String, usize)>,
    /// Failed workstreams (detail: first error type), sorted by id.
    #[serde(default)]
    pub failed_workstreams: Vec<WsNote>,
    /// Skipped workstreams (detail: first error message), sorted by id.
    #[serde(default)]
    pub skipped_workstreams: Vec<WsNote>,
    /// Workstreams stopped or never started because the run was interrupted (a `Cancelled`
    /// error): `git ws-run --resume` runs them, not `--rerun-failed`. Sorted by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interrupted_workstreams: Vec<String>,
    /// Deferred workstreams (detail: first error message, with the reset), sorted by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deferred_workstreams: Vec<WsNote>,
    /// Workstreams with a `Timeout` error (detail: duration), sorted by id.
    #[serde(default)]
    pub timed_out_workstreams: Vec<WsNote>,
    /// Workstreams whose tests did not succeed (detail: counts or exit code), sorted by id.
    #[serde(default)]
    pub test_failures: Vec<WsNote>,
    /// Run-level warnings (not tied to one workstream): database retries, cleanup problems.
    /// Set by the runner; kept in `execution_summary`.
    #[serde(default)]
    pub notes: Vec<String>,
}

impl FileSummary {
    /// Only the old path of renames: no workstream changed it other than by moving it away.
    pub fn renamed_away_only(&self) -> bool {
        !self.renamed_to.is_empty()
            && self.kinds == [ChangeKind::Renamed]
            && self.old_paths.is_empty()
    }
}

impl Consolidated {
    /// Unique files modified (`total_files_modified`): a rename counts once, under its new
    /// path, although `files` lists its old path too.
    pub fn files_modified(&self) -> usize {
        self.files.iter().filter(|f| !f.renamed_away_only()).count()
    }

    /// Whether every workstream completed.
    pub fn all_completed(&self) -> bool {
        self.failed == 0 && self.skipped == 0 && self.deferred == 0
    }

    /// Count of results with the given status.
    pub fn count(results: &[WorkstreamResult], status: Status) -> usize {
        results.iter().filter(|r| r.status == status).count()
    }

    /// Parallel speed-up: busy time / wall time (0 when the wall time is 0).
    pub fn speedup(&self) -> f64 {
        if self.wall_seconds > 0.0 {
            self.busy_seconds / self.wall_seconds
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod test_totals_json {
    use super::TestTotals;

    #[test]
    fn counts_are_null_when_nothing_was_counted_and_read_back() {
        let none = TestTotals {
            workstreams_tested: 2,
            ..TestTotals::default()
        };
        let v = serde_json::to_value(&none).unwrap();
        assert_eq!(v["passed"], serde_json::Value::Null);
        assert_eq!(v["failed"], serde_json::Value::Null);
        assert_eq!(v["skipped"], serde_json::Value::Null);
        assert_eq!(v["workstreams_tested"], 2);
        assert_eq!(serde_json::from_value::<TestTotals>(v).unwrap(), none);
        let some = TestTotals {
            workstreams_tested: 2,
            workstreams_counted: 1,
            passed: 3,
            ..TestTotals::default()
        };
        let v = serde_json::to_value(&some).unwrap();
        assert_eq!(v["passed"], 3);
        assert_eq!(v["failed"], 0);
        assert_eq!(serde_json::from_value::<TestTotals>(v).unwrap(), some);
    }
}
