//! Consolidation: pure functions that turn a run's per-workstream results into totals,
//! deduplicated files, overlaps, per-agent performance, test totals and recommendations
//! (typed, in [`advice`]).
//!
//! Its files import only those before them: `consolidated` (the types of a consolidated
//! run) → [`advice`] (the recommendations and their thresholds) → this file (the one pass
//! over the results that builds a [`Consolidated`]).
//!
//! Everything here is O(n log n) in the number of results, files and commits, does no I/O
//! and reads no clock: every time comes from the inputs.

pub mod advice;
mod consolidated;

pub use advice::{
    recommend, Advice, IMBALANCE_MIN_PER_AGENT, IMBALANCE_MIN_WALL_SHARE, IMBALANCE_RATIO,
    MAX_CONFLICT_LINES, MAX_NAMES, REVIEW_MIN_FAILED, REVIEW_MIN_FAILED_RATE, SLOW_AGENT_FACTOR,
    SLOW_AGENT_MIN_GAP_SECS, SLOW_AGENT_MIN_WORKSTREAMS,
};
pub use consolidated::{
    AgentPerf, CommitRef, Consolidated, FileSummary, Overlap, TestTotals, WsNote,
};

use crate::model::{
    agent_name, agent_number, ChangeKind, ErrorType, FileChange, MergeForecast, RunInfo, Status,
    TestResults, WorkstreamResult, UNASSIGNED_AGENT,
};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};

pub use crate::text::natural_cmp;

/// The deterministic result order used everywhere (commits, report tables): by start time
/// (unstarted last), then workstream id (natural order), then agent id.
pub fn result_order(a: &WorkstreamResult, b: &WorkstreamResult) -> Ordering {
    let t = match (a.start_time, b.start_time) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    t.then_with(|| natural_cmp(&a.workstream_id, &b.workstream_id))
        .then_with(|| natural_cmp(&a.agent_id, &b.agent_id))
}

/// References to `results` in [`result_order`].
pub fn ordered_results(results: &[WorkstreamResult]) -> Vec<&WorkstreamResult> {
    let mut v: Vec<&WorkstreamResult> = results.iter().collect();
    v.sort_by(|a, b| result_order(a, b));
    v
}

/// Order for agent ids: `agent-K` by K, other ids naturally, `unassigned` last.
pub fn agent_order(a: &str, b: &str) -> Ordering {
    let key = |s: &str| (s == UNASSIGNED_AGENT, agent_number(s).is_none());
    key(a).cmp(&key(b)).then_with(|| natural_cmp(a, b))
}

/// Whole milliseconds from a to b, counted on microsecond timestamps (what the database
/// keeps), so a run consolidates to the same wall time in memory and when read back.
fn seconds_between(a: chrono::DateTime<chrono::Utc>, b: chrono::DateTime<chrono::Utc>) -> f64 {
    let ms = (b.timestamp_micros() - a.timestamp_micros()) / 1000;
    (ms.max(0)) as f64 / 1000.0
}

fn finite(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 {
        x
    } else {
        0.0
    }
}

/// Per-file totals while consolidating.
#[derive(Default)]
struct FileAcc {
    workstreams: Vec<String>,
    additions: u64,
    deletions: u64,
    kinds: Vec<ChangeKind>,
    old_paths: Vec<String>,
    renamed_to: Vec<String>,
}

/// Per-agent totals while consolidating.
#[derive(Default)]
struct AgentAcc {
    total: usize,
    completed: usize,
    failed: usize,
    skipped: usize,
    deferred: usize,
    busy: f64,
}

/// Everything summed over the results in one pass.
#[derive(Default)]
struct Tally<'a> {
    completed: usize,
    failed: usize,
    skipped: usize,
    deferred: usize,
    total_errors: usize,
    total_warnings: usize,
    busy_seconds: f64,
    overhead: (f64, usize),
    by_type: BTreeMap<&'static str, usize>,
    tests: TestTotals,
    commits: Vec<CommitRef>,
    files: HashMap<&'a str, FileAcc>,
    agents: HashMap<&'a str, AgentAcc>,
    first_start: Option<chrono::DateTime<chrono::Utc>>,
    last_end: Option<chrono::DateTime<chrono::Utc>>,
    failed_ws: Vec<WsNote>,
    skipped_ws: Vec<WsNote>,
    interrupted_ws: Vec<String>,
    deferred_ws: Vec<WsNote>,
    timed_out: Vec<WsNote>,
    test_failures: Vec<WsNote>,
}

impl<'a> Tally<'a> {
    fn add(&mut self, r: &'a WorkstreamResult) {
        let dur = finite(r.duration_seconds);
        self.busy_seconds += dur;
        if let Some(o) = r.overhead_seconds() {
            self.overhead.0 += finite(o);
            self.overhead.1 += 1;
        }
        let note = |detail: String| WsNote {
            workstream_id: r.workstream_id.clone(),
            agent_id: r.agent_id.clone(),
            detail,
            duration_seconds: dur,
        };
        match r.status {
            Status::Completed => self.completed += 1,
            Status::Failed => {
                self.failed += 1;
                let detail = r
                    .errors
                    .first()
                    .map_or("no error recorded", |e| e.error_type.as_str());
                self.failed_ws.push(note(detail.to_string()));
            }
            Status::Skipped => {
                self.skipped += 1;
                let detail = r.errors.first().map(|e| e.message.clone());
                self.skipped_ws.push(note(detail.unwrap_or_default()));
            }
            Status::Deferred => {
                self.deferred += 1;
                let detail = r.errors.first().map(|e| e.message.clone());
                self.deferred_ws.push(note(detail.unwrap_or_default()));
            }
        }
        if r.errors
            .iter()
            .any(|e| e.error_type == ErrorType::Cancelled)
        {
            self.interrupted_ws.push(r.workstream_id.clone());
        }
        self.total_errors += r.errors.len();
        // Notes (git-ws committed what an agent left) are recorded, not counted.
        self.total_warnings += r
            .warnings
            .iter()
            .filter(|w| !crate::text::is_note(w))
            .count();
        for e in &r.errors {
            *self.by_type.entry(e.error_type.as_str()).or_default() += 1;
        }
        if r.errors.iter().any(|e| e.error_type == ErrorType::Timeout) {
            self.timed_out
                .push(note(format!("after {}", crate::text::duration(dur))));
        }
        if let Some(t) = &r.test_results {
            if let Some(detail) = self.add_tests(t) {
                self.test_failures.push(note(detail));
            }
        }
        for sha in &r.commits {
            self.commits.push(CommitRef {
                workstream_id: r.workstream_id.clone(),
                sha: sha.clone(),
            });
        }
        for f in &r.files {
            self.add_file(&r.workstream_id, f);
        }
        self.add_agent(r, dur);
        if let Some(s) = r.start_time {
            self.first_start = Some(self.first_start.map_or(s, |f| f.min(s)));
        }
        if let Some(e) = r.end_time {
            self.last_end = Some(self.last_end.map_or(e, |l| l.max(e)));
        }
    }

    /// Adds one workstream's tests; returns the failure detail when they did not succeed.
    fn add_tests(&mut self, t: &TestResults) -> Option<String> {
        let tests = &mut self.tests;
        tests.workstreams_tested += 1;
        if t.passed.is_some() || t.failed.is_some() || t.skipped.is_some() {
            tests.workstreams_counted += 1;
        }
        tests.passed += t.passed.unwrap_or(0);
        tests.failed += t.failed.unwrap_or(0);
        tests.skipped += t.skipped.unwrap_or(0);
        if t.succeeded() {
            tests.workstreams_passed += 1;
            return None;
        }
        Some(match (t.failed, t.exit_code) {
            (Some(n), _) if n > 0 => format!("{n} failed"),
            (_, Some(c)) => format!("exit code {c}"),
            (_, None) => "no exit code".to_string(),
        })
    }

    fn add_file(&mut self, workstream_id: &str, f: &'a FileChange) {
        let acc = self.files.entry(f.path.as_str()).or_default();
        acc.workstreams.push(workstream_id.to_string());
        acc.additions += f.additions;
        acc.deletions += f.deletions;
        acc.kinds.push(f.kind);
        if let Some(old) = &f.old_path {
            acc.old_paths.push(old.clone());
            // The old path is touched too: removed by the rename.
            let from = self.files.entry(old.as_str()).or_default();
            from.workstreams.push(workstream_id.to_string());
            from.kinds.push(ChangeKind::Renamed);
            from.renamed_to.push(f.path.clone());
        }
    }

    fn add_agent(&mut self, r: &'a WorkstreamResult, dur: f64) {
        let a = self.agents.entry(r.agent_id.as_str()).or_default();
        a.total += 1;
        a.busy += dur;
        match r.status {
            Status::Completed => a.completed += 1,
            Status::Failed => a.failed += 1,
            Status::Skipped => a.skipped += 1,
            Status::Deferred => a.deferred += 1,
        }
    }
}

/// Files sorted by path, each with its workstreams sorted and deduplicated.
fn file_summaries(files: HashMap<&str, FileAcc>) -> Vec<FileSummary> {
    let mut list: Vec<FileSummary> = files
        .into_iter()
        .map(|(path, mut acc)| {
            acc.workstreams.sort_by(|a, b| natural_cmp(a, b));
            acc.workstreams.dedup();
            acc.kinds.sort();
            acc.kinds.dedup();
            acc.old_paths.sort();
            acc.old_paths.dedup();
            acc.renamed_to.sort();
            acc.renamed_to.dedup();
            FileSummary {
                path: path.to_string(),
                workstreams: acc.workstreams,
                additions: acc.additions,
                deletions: acc.deletions,
                kinds: acc.kinds,
                old_paths: acc.old_paths,
                renamed_to: acc.renamed_to,
            }
        })
        .collect();
    list.sort_by(|a, b| a.path.cmp(&b.path));
    list
}

/// `agent-1`..`agent-N` always (idle ones too), then any other agent ids. A run several
/// machines shared (agent ids `agent-K@WORKER`) lists the agents that worked.
fn agent_perf(
    n_agents: usize,
    mut agents: HashMap<&str, AgentAcc>,
    wall_seconds: f64,
) -> Vec<AgentPerf> {
    let shared = agents.keys().any(|k| k.contains('@'));
    let n_agents = if shared { 0 } else { n_agents };
    let mut ids: Vec<String> = (1..=n_agents).map(agent_name).collect();
    let known: HashSet<String> = ids.iter().cloned().collect();
    let mut others: Vec<&str> = agents
        .keys()
        .copied()
        .filter(|k| !known.contains(*k))
        .collect();
    others.sort_by(|a, b| agent_order(a, b));
    ids.extend(others.into_iter().map(str::to_string));
    ids.into_iter()
        .map(|id| {
            let acc = agents.remove(id.as_str()).unwrap_or_default();
            AgentPerf {
                utilisation: if wall_seconds > 0.0 {
                    (acc.busy / wall_seconds).min(1.0)
                } else {
                    0.0
                },
                avg_duration: if acc.total > 0 {
                    acc.busy / acc.total as f64
                } else {
                    0.0
                },
                agent_id: id,
                total: acc.total,
                completed: acc.completed,
                failed: acc.failed,
                deferred: acc.deferred,
                skipped: acc.skipped,
                busy_seconds: acc.busy,
            }
        })
        .collect()
}

/// Consolidate a run. `results` may be in any order; the output is deterministic. The
/// forecast is `ws_git::merge_forecast`'s (a first-shape [`crate::model::Forecast`]
/// converts).
pub fn consolidate(
    run: &RunInfo,
    results: &[WorkstreamResult],
    forecast: impl Into<MergeForecast>,
) -> Consolidated {
    let forecast = forecast.into();
    let mut t = Tally::default();
    for r in ordered_results(results) {
        t.add(r);
    }
    let wall_seconds = match (run.finished_at, t.first_start, t.last_end) {
        (Some(fin), _, _) => seconds_between(run.started_at, fin),
        (None, Some(s), Some(e)) => seconds_between(s, e),
        _ => 0.0,
    };
    let files = file_summaries(t.files);
    let overlaps = files
        .iter()
        .filter(|f| f.workstreams.len() > 1)
        .map(|f| Overlap {
            path: f.path.clone(),
            workstreams: f.workstreams.clone(),
        })
        .collect();
    let by_id = |a: &WsNote, b: &WsNote| natural_cmp(&a.workstream_id, &b.workstream_id);
    for list in [
        &mut t.failed_ws,
        &mut t.skipped_ws,
        &mut t.deferred_ws,
        &mut t.timed_out,
        &mut t.test_failures,
    ] {
        list.sort_by(by_id);
    }
    t.interrupted_ws.sort_by(|a, b| natural_cmp(a, b));
    let mut c = Consolidated {
        run: run.clone(),
        total_workstreams: results.len(),
        completed: t.completed,
        failed: t.failed,
        skipped: t.skipped,
        deferred: t.deferred,
        files,
        commits: t.commits,
        total_errors: t.total_errors,
        total_warnings: t.total_warnings,
        tests: t.tests,
        agents: agent_perf(run.agents, t.agents, wall_seconds),
        overlaps,
        forecast,
        recommendations: Vec::new(),
        wall_seconds,
        busy_seconds: t.busy_seconds,
        overhead_seconds: (t.overhead.1 > 0).then(|| t.overhead.0 / t.overhead.1 as f64),
        errors_by_type: t
            .by_type
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        failed_workstreams: t.failed_ws,
        skipped_workstreams: t.skipped_ws,
        interrupted_workstreams: t.interrupted_ws,
        deferred_workstreams: t.deferred_ws,
        timed_out_workstreams: t.timed_out,
        test_failures: t.test_failures,
        notes: Vec::new(),
    };
    c.recommendations = recommendations(&c);
    c
}

/// The recommendations as sentences (what the database and `recommendations` hold).
pub fn recommendations(c: &Consolidated) -> Vec<String> {
    recommend(c).iter().map(Advice::text).collect()
}

#[cfg(test)]
mod tests {

    #[test]
    fn coordinator_overhead_is_the_mean_time_outside_commands_and_tests() {
        let run = RunInfo {
            run_id: "r".into(),
            started_at: chrono::Utc::now(),
            finished_at: None,
            agents: 1,
            base: "b".into(),
            base_rev: "HEAD".into(),
            repo_root: "/".into(),
            rerun_of: None,
        };
        let mut a = WorkstreamResult::new("r", "agent-1", "a", Status::Completed);
        a.duration_seconds = 1.0;
        a.command_seconds = Some(0.9);
        let mut b = WorkstreamResult::new("r", "agent-1", "b", Status::Completed);
        b.duration_seconds = 2.0;
        b.command_seconds = Some(1.5);
        b.test_seconds = Some(0.2);
        // Never ran: not counted.
        let skipped = WorkstreamResult::new("r", "unassigned", "c", Status::Skipped);
        let c = consolidate(&run, &[a, b, skipped], MergeForecast::default());
        let o = c.overhead_seconds.unwrap();
        assert!((o - 0.2).abs() < 1e-9, "{o}");
        let none = consolidate(&run, &[], MergeForecast::default());
        assert_eq!(none.overhead_seconds, None);
    }
    use super::*;
    use crate::model::{
        ConflictHunk, FileChange, Forecast, MergeStep, PairForecast, TestResults, WsError,
    };
    use chrono::{DateTime, Duration, TimeZone, Utc};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 11, 23, 22, 13, 20).unwrap()
    }

    fn run(agents: usize) -> RunInfo {
        RunInfo {
            run_id: "ma-run-20241123-221320".into(),
            started_at: t0(),
            finished_at: None,
            agents,
            base: "0123456789abcdef0123456789abcdef01234567".into(),
            base_rev: "HEAD".into(),
            repo_root: "/repo".into(),
            rerun_of: None,
        }
    }

    /// A result on `agent` that ran from t0+start to t0+start+dur seconds.
    fn res(id: &str, agent: &str, status: Status, start: i64, dur: i64) -> WorkstreamResult {
        let mut r = WorkstreamResult::new("ma-run-20241123-221320", agent, id, status);
        r.start_time = Some(t0() + Duration::seconds(start));
        r.end_time = Some(t0() + Duration::seconds(start + dur));
        r.duration_seconds = dur as f64;
        r
    }

    fn file(path: &str, kind: ChangeKind, add: u64, del: u64) -> FileChange {
        FileChange {
            path: path.into(),
            old_path: None,
            kind,
            additions: add,
            deletions: del,
        }
    }

    fn pair(a: &str, b: &str, common: &[&str], conflicts: &[&str]) -> PairForecast {
        PairForecast {
            a: a.into(),
            b: b.into(),
            common_paths: common.iter().map(|s| s.to_string()).collect(),
            conflict_paths: conflicts.iter().map(|s| s.to_string()).collect(),
            hunks: conflicts
                .iter()
                .map(|p| ConflictHunk {
                    path: p.to_string(),
                    text: "<<<<<<<\n".into(),
                })
                .collect(),
        }
    }

    fn step(id: &str, clean: bool) -> MergeStep {
        MergeStep {
            workstream_id: id.into(),
            clean,
            conflict_paths: vec![],
        }
    }

    /// An interrupted run's skips (and what the interrupt stopped) are finished with
    /// `--resume`, never `--rerun-failed`; a skip for a failed dependency still is a rerun.
    #[test]
    fn an_interrupted_run_advises_resume_not_rerun() {
        let done = res("a", "agent-1", Status::Completed, 0, 5);
        let mut stopped = res("b", "agent-2", Status::Failed, 0, 3);
        stopped.errors = vec![WsError::new(
            ErrorType::Cancelled,
            "cancelled: the run was interrupted",
        )];
        let mut waiting = WorkstreamResult::new("r", UNASSIGNED_AGENT, "c", Status::Skipped);
        waiting.errors = vec![WsError::new(
            ErrorType::Cancelled,
            "not started: the run was interrupted",
        )];
        let c = consolidate(&run(2), &[done, stopped, waiting], MergeForecast::default());
        assert_eq!(c.interrupted_workstreams, ["b", "c"]);
        assert!(
            c.recommendations
                .iter()
                .all(|r| !r.contains("--rerun-failed")),
            "{:?}",
            c.recommendations
        );
        assert_eq!(
            has(&c, "The run was interrupted"),
            ["The run was interrupted before 2 workstreams finished (b, c): continue it with `git ws-run --resume ma-run-20241123-221320`."]
        );

        // A finished run that skipped a dependent of a failure: fix, then rerun.
        let mut failed = res("a", "agent-1", Status::Failed, 0, 5);
        failed.errors = vec![WsError::new(ErrorType::CommandFailed, "exit 1")];
        let mut dependent = WorkstreamResult::new("r", UNASSIGNED_AGENT, "d", Status::Skipped);
        dependent.errors = vec![WsError::new(
            ErrorType::DependencyFailed,
            "dependency a failed",
        )];
        let c = consolidate(&run(2), &[failed, dependent], MergeForecast::default());
        assert!(c.interrupted_workstreams.is_empty());
        assert!(has(&c, "The run was interrupted").is_empty());
        assert_eq!(
            has(&c, "1 workstream was skipped"),
            ["1 workstream was skipped (d): fix what stopped them, then rerun with `git ws-run --rerun-failed ma-run-20241123-221320`."]
        );
    }

    fn has(c: &Consolidated, prefix: &str) -> Vec<String> {
        c.recommendations
            .iter()
            .filter(|r| r.starts_with(prefix))
            .cloned()
            .collect()
    }

    #[test]
    fn natural_order_compares_numbers_and_is_total() {
        let mut v = vec![
            "ws-10", "ws-2", "ws-1", "ws-01", "a", "ws-2b", "ws-2a", "ws",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            ["a", "ws", "ws-01", "ws-1", "ws-2", "ws-2a", "ws-2b", "ws-10"]
        );
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
        let mut a = vec!["unassigned", "agent-10", "zeta", "agent-2", "agent-1"];
        a.sort_by(|x, y| agent_order(x, y));
        assert_eq!(a, ["agent-1", "agent-2", "agent-10", "zeta", "unassigned"]);
    }

    #[test]
    fn totals_files_commits_and_tests() {
        let mut a = res("ws-02", "agent-1", Status::Completed, 0, 10);
        a.files = vec![
            file("src/a.rs", ChangeKind::Modified, 3, 1),
            file("README.md", ChangeKind::Added, 5, 0),
        ];
        a.commits = vec!["aaa1".into(), "aaa2".into()];
        a.warnings = vec![
            "committed uncommitted changes".into(),
            "uncommitted changes (2 files) were committed on ws/r/ws-02 by git-ws".into(),
        ];
        a.test_results = Some(TestResults {
            command: "cargo test".into(),
            exit_code: Some(0),
            passed: Some(7),
            failed: Some(0),
            skipped: Some(1),
            ..TestResults::default()
        });
        let mut b = res("ws-10", "agent-2", Status::Failed, 2, 20);
        b.files = vec![
            file("src/a.rs", ChangeKind::Modified, 2, 2),
            FileChange {
                old_path: Some("old/b.rs".into()),
                ..file("src/b.rs", ChangeKind::Renamed, 0, 0)
            },
        ];
        b.commits = vec!["bbb1".into()];
        b.errors = vec![WsError::new(ErrorType::TestFailed, "tests failed")];
        b.test_results = Some(TestResults {
            command: "cargo test".into(),
            exit_code: Some(101),
            passed: Some(4),
            failed: Some(2),
            skipped: None,
            ..TestResults::default()
        });
        let mut s = WorkstreamResult::new("r", UNASSIGNED_AGENT, "ws-11", Status::Skipped);
        s.errors = vec![WsError::new(
            ErrorType::DependencyFailed,
            "dependency ws-10 failed",
        )];
        // Same start as ws-02, id sorts after: order is by start then id.
        let mut c2 = res("ws-03", "agent-1", Status::Completed, 0, 5);
        c2.commits = vec!["ccc1".into()];

        let results = vec![s, b, c2, a];
        let c = consolidate(&run(3), &results, Forecast::default());
        assert_eq!(c.total_workstreams, 4);
        assert_eq!((c.completed, c.failed, c.skipped), (2, 1, 1));
        assert_eq!(c.total_errors, 2);
        assert_eq!(c.total_warnings, 1);
        assert_eq!(
            c.errors_by_type,
            vec![
                ("DependencyFailed".to_string(), 1),
                ("TestFailed".to_string(), 1)
            ]
        );
        let paths: Vec<&str> = c.files.iter().map(|f| f.path.as_str()).collect();
        // A rename counts at its old path too.
        assert_eq!(paths, ["README.md", "old/b.rs", "src/a.rs", "src/b.rs"]);
        assert_eq!(c.files[1].renamed_to, ["src/b.rs"]);
        assert_eq!(c.files[1].kinds, [ChangeKind::Renamed]);
        assert_eq!(c.files[1].workstreams, ["ws-10"]);
        assert_eq!(c.files[1].additions + c.files[1].deletions, 0);
        let a_rs = &c.files[2];
        assert_eq!(a_rs.workstreams, ["ws-02", "ws-10"]);
        assert_eq!((a_rs.additions, a_rs.deletions), (5, 3));
        assert_eq!(a_rs.kinds, [ChangeKind::Modified]);
        assert_eq!(c.files[3].old_paths, ["old/b.rs"]);
        assert_eq!(c.files[3].kinds, [ChangeKind::Renamed]);
        assert_eq!(c.overlaps.len(), 1);
        assert_eq!(c.overlaps[0].path, "src/a.rs");
        let shas: Vec<(&str, &str)> = c
            .commits
            .iter()
            .map(|k| (k.workstream_id.as_str(), k.sha.as_str()))
            .collect();
        assert_eq!(
            shas,
            [
                ("ws-02", "aaa1"),
                ("ws-02", "aaa2"),
                ("ws-03", "ccc1"),
                ("ws-10", "bbb1")
            ]
        );
        assert_eq!(
            c.tests,
            TestTotals {
                workstreams_tested: 2,
                workstreams_passed: 1,
                workstreams_counted: 2,
                passed: 11,
                failed: 2,
                skipped: 1
            }
        );
        // Wall: first start (0) to last end (22); busy 10 + 20 + 5.
        assert_eq!(c.wall_seconds, 22.0);
        assert_eq!(c.busy_seconds, 35.0);
        assert!((c.speedup() - 35.0 / 22.0).abs() < 1e-9);

        let ids: Vec<&str> = c.agents.iter().map(|a| a.agent_id.as_str()).collect();
        assert_eq!(ids, ["agent-1", "agent-2", "agent-3", "unassigned"]);
        let a1 = &c.agents[0];
        assert_eq!((a1.total, a1.completed, a1.failed), (2, 2, 0));
        assert_eq!(a1.busy_seconds, 15.0);
        assert_eq!(a1.avg_duration, 7.5);
        assert!((a1.utilisation - 15.0 / 22.0).abs() < 1e-9);
        let a3 = &c.agents[2];
        assert_eq!(
            (a3.total, a3.busy_seconds, a3.utilisation, a3.avg_duration),
            (0, 0.0, 0.0, 0.0)
        );
        assert_eq!(c.agents[3].skipped, 1);

        assert_eq!(c.test_failures.len(), 1);
        assert_eq!(c.test_failures[0].detail, "2 failed");
        assert_eq!(
            has(&c, "Review 1 failed workstream:"),
            ["Review 1 failed workstream: ws-10 (TestFailed 1)."]
        );
        assert_eq!(
            has(&c, "Tests failed"),
            ["Tests failed in 1 workstream: ws-10 (2 failed)."]
        );
        assert_eq!(
            has(&c, "1 workstream was skipped"),
            ["1 workstream was skipped (ws-11): fix what stopped them, then rerun with `git ws-run --rerun-failed ma-run-20241123-221320`."]
        );
        assert_eq!(
            has(&c, "1 file was touched"),
            ["1 file was touched by more than one workstream: src/a.rs (ws-02, ws-10)."]
        );
        assert!(has(&c, "Ready for merge").is_empty());
        // agent-3 idle while agent-1 ran 2, but 3 workstreams on 3 agents is not enough
        // work to balance.
        assert!(has(&c, "Redistribute").is_empty());
    }

    #[test]
    fn a_rename_and_an_edit_of_its_old_path_overlap() {
        let mut mv = res("mv", "agent-1", Status::Completed, 0, 1);
        mv.files = vec![FileChange {
            old_path: Some("docs/HACKING.txt".into()),
            ..file("docs/CONTRIBUTING.md", ChangeKind::Renamed, 1, 1)
        }];
        let mut ed = res("ed", "agent-2", Status::Completed, 0, 1);
        ed.files = vec![file("docs/HACKING.txt", ChangeKind::Modified, 2, 0)];
        let c = consolidate(&run(2), &[mv, ed], MergeForecast::default());
        assert_eq!(
            c.overlaps,
            [Overlap {
                path: "docs/HACKING.txt".into(),
                workstreams: vec!["ed".into(), "mv".into()],
            }]
        );
        let old = &c.files[1];
        assert_eq!(old.path, "docs/HACKING.txt");
        assert_eq!(old.kinds, [ChangeKind::Modified, ChangeKind::Renamed]);
        assert_eq!(old.renamed_to, ["docs/CONTRIBUTING.md"]);
        assert_eq!((old.additions, old.deletions), (2, 0));
    }

    #[test]
    fn wall_time_prefers_finished_at_and_is_zero_without_times() {
        let mut info = run(2);
        let r = vec![res("ws-01", "agent-1", Status::Completed, 5, 10)];
        assert_eq!(
            consolidate(&info, &r, Forecast::default()).wall_seconds,
            10.0
        );
        info.finished_at = Some(t0() + Duration::milliseconds(60_500));
        let c = consolidate(&info, &r, Forecast::default());
        assert_eq!(c.wall_seconds, 60.5);
        assert!((c.agents[0].utilisation - 10.0 / 60.5).abs() < 1e-9);
        let c = consolidate(&run(2), &[], Forecast::default());
        assert_eq!(c.wall_seconds, 0.0);
        assert_eq!(c.agents.len(), 2);
        assert_eq!(
            c.recommendations,
            ["Nothing to merge: the run had no workstreams."]
        );
        let unstarted = vec![WorkstreamResult::new(
            "r",
            "unassigned",
            "x",
            Status::Skipped,
        )];
        assert_eq!(
            consolidate(&run(1), &unstarted, Forecast::default()).wall_seconds,
            0.0
        );
    }

    #[test]
    fn all_completed_is_ready_for_merge_and_clean_overlaps_say_so() {
        let mut a = res("ws-01", "agent-1", Status::Completed, 0, 10);
        a.files = vec![file("x", ChangeKind::Modified, 1, 0)];
        let mut b = res("ws-02", "agent-2", Status::Completed, 0, 10);
        b.files = vec![file("x", ChangeKind::Modified, 1, 0)];
        let f = Forecast {
            pairs: vec![pair("ws-01", "ws-02", &["x"], &[])],
            merge_order: vec![step("ws-01", true), step("ws-02", true)],
        };
        let c = consolidate(&run(2), &[a, b], f);
        assert_eq!(
            c.recommendations,
            [
                "Ready for merge: all 2 workstreams completed.",
                "1 workstream pair touches the same files but merges cleanly: ws-01 + ws-02 (x).",
            ]
        );
    }

    #[test]
    fn one_workstream_reads_in_the_singular() {
        let c = consolidate(
            &run(1),
            &[res("ws-01", "agent-1", Status::Completed, 0, 10)],
            Forecast::default(),
        );
        assert_eq!(
            c.recommendations,
            ["Ready for merge: the 1 workstream completed."]
        );
    }

    #[test]
    fn conflicts_name_the_merge_order() {
        let a = res("ws-01", "agent-1", Status::Completed, 0, 10);
        let b = res("ws-02", "agent-2", Status::Completed, 0, 10);
        let d = res("ws-03", "agent-1", Status::Completed, 10, 10);
        // ws-02 merges first, so it goes first in the advice.
        let f = Forecast {
            pairs: vec![
                pair("ws-01", "ws-02", &["a.txt", "b.txt"], &["a.txt"]),
                pair("ws-02", "ws-03", &["c.txt"], &[]),
            ],
            merge_order: vec![
                step("ws-02", true),
                step("ws-03", true),
                step("ws-01", false),
            ],
        };
        let c = consolidate(&run(2), &[a, b, d], f);
        assert_eq!(
            has(&c, "Ready for merge"),
            ["Ready for merge: all 3 workstreams completed, but 1 pair conflicts: merge in this order: ws-02, ws-03, ws-01 (rebase first)."]
        );
        assert_eq!(
            has(&c, "ws-01 and ws-02"),
            ["ws-01 and ws-02 conflict in a.txt: merge ws-02, then rebase ws-01."]
        );
        assert_eq!(has(&c, "1 workstream pair touches").len(), 1);
        // Forecast covers every overlap path: no "touched by more than one" line.
        assert!(c
            .recommendations
            .iter()
            .all(|r| !r.contains("touched by more")));
    }

    #[test]
    fn system_review_thresholds() {
        // n workstreams, the first `failed` of them failed, errors of rotating types.
        let make = |n: i64, failed: i64| -> Vec<WorkstreamResult> {
            let types = [
                ErrorType::CommandFailed,
                ErrorType::Timeout,
                ErrorType::TestFailed,
            ];
            (0..n)
                .map(|i| {
                    let st = if i < failed {
                        Status::Failed
                    } else {
                        Status::Completed
                    };
                    let mut r = res(&format!("ws-{i}"), "agent-1", st, i * 10, 10);
                    if i < failed {
                        r.errors.push(WsError::new(types[i as usize % 3], "x"));
                    }
                    r
                })
                .collect()
        };
        // 3 of 5 failed (60%): review, with the evidence.
        let c = consolidate(&run(1), &make(5, 3), Forecast::default());
        assert_eq!(
            has(&c, "Consider a system review"),
            ["Consider a system review: 3 of 5 workstreams failed (60%), with 3 errors of 3 types (CommandFailed 1, TestFailed 1, Timeout 1)."]
        );
        match &recommend(&c)[0] {
            Advice::SystemReview {
                failed,
                total,
                failed_rate,
                errors_by_type,
                ..
            } => {
                assert_eq!((*failed, *total, errors_by_type.len()), (3, 5, 3));
                assert!((failed_rate - 0.6).abs() < 1e-9);
            }
            other => panic!("{other:?}"),
        }
        // 3 of 24 with three error types: a low rate, no review.
        let c = consolidate(&run(1), &make(24, 3), Forecast::default());
        assert!(has(&c, "Consider a system review").is_empty());
        // 2 of 3 (67%): too few failures for a rate to mean anything.
        let c = consolidate(&run(1), &make(3, 2), Forecast::default());
        assert!(has(&c, "Consider a system review").is_empty());
        // 12 of 24 (50%): review.
        let c = consolidate(&run(1), &make(24, 12), Forecast::default());
        assert_eq!(has(&c, "Consider a system review").len(), 1);
        assert_eq!(
            has(&c, "4 workstreams timed out"),
            ["4 workstreams timed out: ws-1 (after 10.0s), ws-4 (after 10.0s), ws-7 (after 10.0s), ws-10 (after 10.0s): raise `timeout_secs` in their workstream files (or `--timeout`) if they need more time."]
        );
    }

    #[test]
    fn failure_list_is_capped_at_ten_names() {
        let rs: Vec<_> = (1..=13)
            .map(|i| {
                let mut r = res(&format!("ws-{i:02}"), "agent-1", Status::Failed, i, 1);
                r.errors.push(WsError::new(ErrorType::CommandFailed, "x"));
                r
            })
            .collect();
        let c = consolidate(&run(1), &rs, Forecast::default());
        assert_eq!(
            has(&c, "Review 13"),
            ["Review 13 failed workstreams: ws-01, ws-02, ws-03, ws-04, ws-05, ws-06, ws-07, ws-08, ws-09, ws-10 and 3 more (CommandFailed 13)."]
        );
    }

    #[test]
    fn imbalance_needs_enough_work_to_balance() {
        // 3 workstreams on 3 agents, very unequal: nothing to redistribute.
        let rs = vec![
            res("a", "agent-1", Status::Completed, 0, 60),
            res("b", "agent-2", Status::Completed, 0, 5),
            res("c", "agent-3", Status::Completed, 0, 1),
        ];
        let c = consolidate(&run(3), &rs, Forecast::default());
        assert!(
            has(&c, "Redistribute").is_empty(),
            "{:?}",
            c.recommendations
        );
        // 6 on 3, one agent idle, in a 130 s run: enough work, and it says so with the
        // evidence.
        let six = |step: i64, dur: i64| -> Vec<_> {
            (0..6)
                .map(|i| {
                    res(
                        &format!("w{i}"),
                        &format!("agent-{}", i % 2 + 1),
                        Status::Completed,
                        i * step,
                        dur,
                    )
                })
                .collect()
        };
        // The same on a 6-second run: too short to matter, no workload advice.
        let c = consolidate(&run(3), &six(1, 1), Forecast::default());
        assert!(
            has(&c, "Redistribute").is_empty(),
            "{:?}",
            c.recommendations
        );
        // Just under a minute: still none.
        let c = consolidate(&run(3), &six(10, 9), Forecast::default());
        assert!(c.wall_seconds < 60.0, "{}", c.wall_seconds);
        assert!(has(&c, "Redistribute").is_empty());
        let rs = six(20, 30);
        let c = consolidate(&run(3), &rs, Forecast::default());
        assert_eq!(
            has(&c, "Redistribute"),
            ["Redistribute workload: agent-3 ran no workstreams while agent-1 ran 3: use `--agents 2` or loosen `depends_on` chains so more can run at once."]
        );
        assert!(recommend(&c).iter().any(|a| matches!(
            a,
            Advice::IdleAgents { idle, working_agents: 2, .. } if idle == &["agent-3"]
        )));
        // Two clean pairs: plural grammar.
        let f = Forecast {
            pairs: vec![pair("a", "b", &["x"], &[]), pair("c", "d", &["y"], &[])],
            merge_order: vec![],
        };
        let c = consolidate(&run(1), &[], f);
        assert_eq!(
            recommendations(&c)[1],
            "2 workstream pairs touch the same files but merge cleanly: a + b (x), c + d (y)."
        );
    }

    #[test]
    fn busy_imbalance_and_slow_agent() {
        // agent-1: 2 × 40 s; agent-2: 2 × 10 s; agent-3: 2 × 12 s. Wall 80 s.
        let rs = vec![
            res("a1", "agent-1", Status::Completed, 0, 40),
            res("a2", "agent-1", Status::Completed, 40, 40),
            res("b1", "agent-2", Status::Completed, 0, 10),
            res("b2", "agent-2", Status::Completed, 10, 10),
            res("c1", "agent-3", Status::Completed, 0, 12),
            res("c2", "agent-3", Status::Completed, 12, 12),
        ];
        let c = consolidate(&run(3), &rs, Forecast::default());
        assert_eq!(
            has(&c, "Redistribute"),
            ["Redistribute workload: agent-1 was busy 80.0 s (2 workstreams) but agent-2 only 20.0 s (2 workstreams) in a 80.0 s run: split long workstreams so agents finish together."]
        );
        assert_eq!(
            has(&c, "Investigate"),
            ["Investigate slow agent agent-1: average 40.0 s per workstream vs 11.0 s for the others."]
        );
        // Balanced: no imbalance, no slow agent.
        let rs = vec![
            res("a1", "agent-1", Status::Completed, 0, 10),
            res("a2", "agent-1", Status::Completed, 10, 11),
            res("b1", "agent-2", Status::Completed, 0, 12),
            res("b2", "agent-2", Status::Completed, 12, 9),
        ];
        let c = consolidate(&run(2), &rs, Forecast::default());
        assert_eq!(
            c.recommendations,
            ["Ready for merge: all 4 workstreams completed."]
        );
    }

    #[test]
    fn ten_thousand_results() {
        let n = 10_000usize;
        let rs: Vec<WorkstreamResult> = (0..n)
            .rev()
            .map(|i| {
                let agent = format!("agent-{}", i % 8 + 1);
                let st = match i % 10 {
                    0 => Status::Failed,
                    1 => Status::Skipped,
                    _ => Status::Completed,
                };
                let mut r = res(&format!("ws-{i}"), &agent, st, (i / 8) as i64, 1);
                // Each file is shared by two consecutive workstreams, plus one private file.
                r.files = vec![
                    file(&format!("shared/{}", i / 2), ChangeKind::Modified, 1, 1),
                    file(&format!("own/{i}"), ChangeKind::Added, 2, 0),
                ];
                r.commits = vec![format!("{i:040x}")];
                if st == Status::Failed {
                    r.errors
                        .push(WsError::new(ErrorType::CommandFailed, "boom"));
                }
                r
            })
            .collect();
        let c = consolidate(&run(8), &rs, Forecast::default());
        assert_eq!(c.total_workstreams, n);
        assert_eq!((c.completed, c.failed, c.skipped), (8000, 1000, 1000));
        assert_eq!(c.files.len(), n / 2 + n);
        assert!(c.files.windows(2).all(|w| w[0].path < w[1].path));
        assert_eq!(c.overlaps.len(), n / 2);
        assert_eq!(c.commits.len(), n);
        // Result order: by start time, then id; ws-0..ws-7 start at 0.
        assert_eq!(c.commits[0].workstream_id, "ws-0");
        assert_eq!(c.commits[7].workstream_id, "ws-7");
        assert_eq!(c.commits[n - 1].workstream_id, format!("ws-{}", n - 1));
        assert_eq!(c.agents.len(), 8);
        assert!(c.agents.iter().all(|a| a.total == n / 8));
        assert_eq!(c.busy_seconds, n as f64);
        assert_eq!(c.failed_workstreams.len(), 1000);
        assert_eq!(
            has(&c, "Review 1000 failed workstreams: ws-0, ws-10, ").len(),
            1
        );
        assert_eq!(has(&c, "5000 files were touched").len(), 1);
    }

    #[test]
    fn serialises_round_trip_and_reads_json_without_new_fields() {
        let mut a = res("ws-01", "agent-1", Status::Failed, 0, 3);
        a.files = vec![file("x", ChangeKind::Added, 1, 0)];
        a.errors = vec![WsError::new(ErrorType::Timeout, "too slow")];
        let c = consolidate(&run(1), &[a], Forecast::default());
        let json = serde_json::to_value(&c).unwrap();
        let back: Consolidated = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, c);
        let mut old = json;
        let obj = old.as_object_mut().unwrap();
        for k in [
            "failed_workstreams",
            "skipped_workstreams",
            "timed_out_workstreams",
            "test_failures",
        ] {
            obj.remove(k).unwrap();
        }
        obj["files"][0]
            .as_object_mut()
            .unwrap()
            .remove("kinds")
            .unwrap();
        let back: Consolidated = serde_json::from_value(old).unwrap();
        assert_eq!(back.failed, 1);
        assert!(back.failed_workstreams.is_empty() && back.files[0].kinds.is_empty());
    }
}
