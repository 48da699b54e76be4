//! A fixed run for the renderers' snapshot tests: every kind of outcome (completed, merged,
//! failed by command, timeout, tests with and without counts, spawn and git errors, an
//! invalid file, a skip, an idle agent, a conflict, a clean overlap, a rename) and hostile
//! agent output (ANSI colours, OSC-8 links, `\r` progress bars, a 14,000-character last
//! line, a 3,000-character title, pipes, backticks, HTML, CJK).

use crate::consolidate::{consolidate, Consolidated};
use crate::model::MergeRecord;
use crate::model::{
    ChangeKind, ConflictHunk, ErrorType, FileChange, ForecastCluster, ForecastStep,
    IntegrationExclusion, IntegrationMerge, IntegrationRecord, IntegrationTestRun, MergeForecast,
    PairForecast, RunInfo, Status, TestResults, WorkstreamResult, WsError, UNASSIGNED_AGENT,
};
use crate::view::{Input, RunView};
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::collections::HashMap;

pub const RUN: &str = "ma-run-20241123-221320";
pub const HOSTILE: &str = "evil | title ``` </details> <script>x</script>\n# heading\n[x](javascript:alert(1)) *b* _i_ 1. a";

pub fn t0() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_732_400_000_000).unwrap()
}

fn res(id: &str, agent: &str, st: Status, start_ms: i64, dur_ms: i64) -> WorkstreamResult {
    let mut r = WorkstreamResult::new(RUN, agent, id, st);
    r.start_time = Some(t0() + Duration::milliseconds(start_ms));
    r.end_time = Some(t0() + Duration::milliseconds(start_ms + dur_ms));
    r.duration_seconds = dur_ms as f64 / 1000.0;
    r.branch = Some(format!("ws/{RUN}/{id}"));
    r.log_path = Some(format!("/repo/.state/logs/{RUN}/{id}.log"));
    r.source_file = Some(format!("{id}.json"));
    r
}

fn file(path: &str, kind: ChangeKind, additions: u64, deletions: u64) -> FileChange {
    FileChange {
        path: path.into(),
        old_path: None,
        kind,
        additions,
        deletions,
    }
}

fn tests(cmd: &str, exit: i32, counts: Option<(u64, u64, u64)>) -> TestResults {
    TestResults {
        command: cmd.into(),
        exit_code: Some(exit),
        passed: counts.map(|c| c.0),
        failed: counts.map(|c| c.1),
        skipped: counts.map(|c| c.2),
        ..TestResults::default()
    }
}

/// The results, in no particular order.
pub fn results() -> Vec<WorkstreamResult> {
    let mut a = res("ws-01", "agent-1", Status::Completed, 0, 1_500);
    a.title = Some("Add retries \u{1b}[31mto the client\u{1b}[0m".into());
    a.files = vec![
        file("src/a|b.rs", ChangeKind::Modified, 3, 1),
        FileChange {
            old_path: Some("old`s.rs".into()),
            ..file("new.rs", ChangeKind::Renamed, 0, 0)
        },
    ];
    a.commits = vec!["a".repeat(40)];
    a.test_results = Some(tests("cargo test | tee", 0, Some((7, 0, 0))));
    a.warnings = vec![
        "committed | uncommitted\nchanges".into(),
        "ws-01.json: unknown field \"labels\" (ignored)".into(),
    ];
    a.exit_code = Some(0);

    let mut b = res("ws:#;x", "agent-2", Status::Failed, 200, 800);
    b.title = Some(HOSTILE.into());
    b.files = vec![file("src/a|b.rs", ChangeKind::Modified, 1, 1)];
    b.commits = vec!["b".repeat(40)];
    b.exit_code = Some(3);
    let tail = format!(
        "\u{1b}[1mcompiling\u{1b}[0m \u{1b}]8;;https://x.test/\u{1b}\\docs\u{1b}]8;;\u{1b}\\\r\n| not a table\n```\n</details>\n# not a heading\n````\nerror: the real reason\n{}",
        "z".repeat(14_000)
    );
    b.output_tail = Some(tail.clone());
    b.errors = vec![
        WsError::new(ErrorType::CommandFailed, "command exited with status 3").with_trace(tail),
    ];

    let mut c = res("ws-03", "agent-1", Status::Completed, 1_600, 900);
    c.title = Some("日本語のタイトル".into());
    c.files = vec![
        file("src/a|b.rs", ChangeKind::Modified, 2, 0),
        file("日本語.md", ChangeKind::Added, 4, 0),
    ];
    c.commits = vec!["c".repeat(40)];

    let mut skip = WorkstreamResult::new(RUN, UNASSIGNED_AGENT, "ws-04", Status::Skipped);
    skip.title = Some("Depends on the evil one".into());
    skip.errors = vec![WsError::new(
        ErrorType::DependencyFailed,
        "dependency ws:#;x failed",
    )];
    skip.end_time = Some(t0() + Duration::milliseconds(1_000));

    let mut slow = res("ws-05", "agent-2", Status::Failed, 1_000, 2_000);
    slow.title = Some("x".repeat(3_000));
    let progress = "downloading 10%\r50%\r100%\nstill going\r\n";
    slow.output_tail = Some(progress.into());
    slow.errors =
        vec![WsError::new(ErrorType::Timeout, "timed out after 2.0s").with_trace(progress)];
    slow.files = vec![file("日本語.md", ChangeKind::Modified, 1, 0)];
    slow.commits = vec!["d".repeat(40)];

    let mut untested = res("ws-06", "agent-1", Status::Failed, 2_500, 1_200);
    untested.title = Some("Tests print no summary".into());
    untested.test_results = Some(tests("./check", 1, None));
    untested.errors = vec![WsError::new(ErrorType::TestFailed, "tests failed (exit 1)")
        .with_trace("FAIL: something\nexit 1")];

    let mut counted = res("ws-07", "agent-2", Status::Failed, 3_000, 300);
    counted.test_results = Some(tests("pytest -q", 1, Some((5, 2, 1))));
    counted.errors = vec![WsError::new(
        ErrorType::TestFailed,
        "tests failed: 2 failed, 5 passed, 1 skipped (exit 1)",
    )
    .with_trace("FAILED test_x.py::test_y - assert 1 == 2\n2 failed, 5 passed, 1 skipped in 0.3s")];

    let mut spawn = res("ws-08", "agent-1", Status::Failed, 3_700, 0);
    spawn.errors = vec![WsError::new(
        ErrorType::SpawnError,
        "ws-08.json gives a \"prompt\" but no agent command is set: pass --agent-cmd or set git config ws.agentCommand",
    )];

    let mut invalid = WorkstreamResult::new(RUN, UNASSIGNED_AGENT, "broken.json", Status::Failed);
    invalid.source_file = Some("broken.json".into());
    invalid.errors = vec![WsError::new(
        ErrorType::InvalidWorkstream,
        "broken.json:4:3: invalid JSON: expected `,` or `}`",
    )];
    invalid.start_time = Some(t0());
    invalid.end_time = Some(t0());

    let mut docs = res("ws-09", "agent-1", Status::Completed, 3_800, 300);
    docs.files = vec![file("日本語.md", ChangeKind::Modified, 1, 0)];
    docs.commits = vec!["f".repeat(40)];

    vec![skip, counted, c, b, invalid, a, slow, untested, spawn, docs]
}

/// ws-01 and ws-03 conflict; ws-03 and ws-09 merge cleanly on the CJK file.
pub fn forecast() -> MergeForecast {
    let step =
        |id: &str, clean: bool, partners: &[&str], clusters: &[usize], reason: &str| ForecastStep {
            workstream_id: id.into(),
            clean,
            conflict_paths: if clean {
                vec![]
            } else {
                vec!["src/a|b.rs".into()]
            },
            partners: partners.iter().map(|p| p.to_string()).collect(),
            clusters: clusters.to_vec(),
            overlapping: clusters.len(),
            change_size: 3,
            reason: reason.into(),
        };
    MergeForecast {
        clusters: vec![
            ForecastCluster {
                id: 1,
                path: "src/a|b.rs".into(),
                kind: "lines".into(),
                lines: Some((3, 4)),
                workstreams: vec!["ws-01".into(), "ws-03".into()],
                all_pairs: true,
                conflicting_pairs: 1,
            },
            ForecastCluster {
                id: 2,
                path: "日本語.md".into(),
                kind: "file".into(),
                lines: None,
                workstreams: vec!["ws-03".into(), "ws-09".into()],
                all_pairs: true,
                conflicting_pairs: 0,
            },
        ],
        pairs: vec![
            PairForecast {
                a: "ws-01".into(),
                b: "ws-03".into(),
                common_paths: vec!["src/a|b.rs".into()],
                conflict_paths: vec!["src/a|b.rs".into()],
                hunks: vec![ConflictHunk {
                    path: "src/a|b.rs".into(),
                    text: "<<<<<<< ws-01\n```\nretry(3)\n||||||| base\nretry(1)\n=======\n| x |\n>>>>>>> ws-03\n".into(),
                }],
            },
            PairForecast {
                a: "ws-03".into(),
                b: "ws-09".into(),
                common_paths: vec!["日本語.md".into()],
                conflict_paths: vec![],
                hunks: vec![],
            },
        ],
        merge_order: vec![
            step(
                "ws-01",
                true,
                &[],
                &[1],
                "overlaps 1 workstream in cluster #1; merged before it (fewer overlaps or a smaller change)",
            ),
            step(
                "ws-09",
                true,
                &[],
                &[2],
                "overlaps 1 workstream in cluster #2; merged before it (fewer overlaps or a smaller change)",
            ),
            step(
                "ws-03",
                false,
                &["ws-01"],
                &[1, 2],
                "needs a rebase: conflicts with ws-01 in src/a|b.rs",
            ),
        ],
        overlaps: vec![],
    }
}

/// What `git ws-merge --test` recorded: ws-01 and ws-09 merged; ws-03 left out for its
/// conflict; ws-02 broke the tests (its output hostile); the failed ones not completed.
pub fn integration() -> IntegrationRecord {
    let merges = vec![
        IntegrationMerge {
            workstream_id: "ws-01".into(),
            tip: "a".repeat(40),
            merge_commit: "1".repeat(40),
            at: None,
        },
        IntegrationMerge {
            workstream_id: "ws-09".into(),
            tip: "f".repeat(40),
            merge_commit: "2".repeat(40),
            at: None,
        },
    ];
    let test = |commit: &str, ws: &[&str], passed: bool, exit: i32| IntegrationTestRun {
        commit: commit.repeat(40),
        workstreams: ws.iter().map(|w| w.to_string()).collect(),
        passed,
        exit_code: Some(exit),
        duration_seconds: 1.25,
        ending: None,
        log_path: Some(format!("/repo/.state/logs/{RUN}/integration/test-1.log")),
        started_at: None,
    };
    IntegrationRecord {
        run_id: RUN.into(),
        onto: "0123456789abcdef0123456789abcdef01234567".into(),
        onto_rev: "HEAD".into(),
        branch: format!("ws/{RUN}/integration"),
        tip: "2".repeat(40),
        test_command: Some("sh tests/run.sh | tee `x`".into()),
        test_runs: 3,
        merged: vec!["ws-01".into(), "ws-09".into()],
        merges,
        excluded: vec![
            IntegrationExclusion {
                workstream_id: "ws-03".into(),
                reason: "conflict".into(),
                paths: vec!["src/a|b.rs".into()],
                detail: "conflicts with ws-01 in src/a|b.rs".into(),
                broke_with: vec![],
                output_tail: None,
                at: None,
            },
            IntegrationExclusion {
                workstream_id: "ws-02".into(),
                reason: "breaks-tests".into(),
                paths: vec![],
                detail:
                    "the tests fail when ws-02 is merged after ws-01; each passes without the other"
                        .into(),
                broke_with: vec!["ws-01".into()],
                output_tail: Some(
                    "\u{1b}[31mnot ok 3 - `x` | y\u{1b}[0m\n```\n1 passed, 1 failed".into(),
                ),
                at: None,
            },
            IntegrationExclusion {
                workstream_id: "ws-05".into(),
                reason: "not-completed".into(),
                paths: vec![],
                detail: "failed (Timeout)".into(),
                broke_with: vec![],
                output_tail: None,
                at: None,
            },
        ],
        incomplete: false,
        without_result: vec![],
        made_by: None,
        reused_tests: 0,
        tests: vec![
            test("0", &[], true, 0),
            test("3", &["ws-01", "ws-02", "ws-09"], false, 1),
            test("2", &["ws-01", "ws-09"], true, 0),
        ],
        fast_forwarded: None,
        dry_run: false,
        integrated_at: t0() + Duration::seconds(90),
    }
}

pub fn run_info() -> RunInfo {
    RunInfo {
        run_id: RUN.into(),
        started_at: t0(),
        finished_at: Some(t0() + Duration::milliseconds(4_100)),
        agents: 3,
        base: "0123456789abcdef0123456789abcdef01234567".into(),
        base_rev: "HEAD".into(),
        repo_root: "/repo".into(),
        rerun_of: Some("ma-run-20241122-101010".into()),
    }
}

pub fn consolidated() -> Consolidated {
    let mut c = consolidate(&run_info(), &results(), forecast());
    c.notes = vec!["failed to remove agent worktree agent-2: \u{1b}[33mbusy\u{1b}[0m".into()];
    c
}

pub fn merges() -> HashMap<String, MergeRecord> {
    HashMap::from([(
        "ws-01".to_string(),
        MergeRecord {
            run_id: RUN.into(),
            workstream_id: "ws-01".into(),
            branch: format!("ws/{RUN}/ws-01"),
            tip: "a".repeat(40),
            merge_commit: "e".repeat(40),
            merged_at: t0() + Duration::seconds(60),
            detected_by: Some("ancestor".into()),
        },
    )])
}

/// The fixture's view.
pub fn view() -> RunView {
    let (c, rs, m) = (consolidated(), results(), merges());
    let mut v = RunView::build(Input {
        consolidated: &c,
        results: &rs,
        merges: Some(&m),
        state: "finished",
    });
    v.set_integration(Some(integration()));
    v
}
