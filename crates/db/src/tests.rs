//! Tests of the database layer over real SQLite files in temporary directories (the
//! PostgreSQL backend is tested against a real server by the integration tests).

use super::*;
use backend::{applied_versions, known_versions, VersionRow};
use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel::sql_types::{BigInt, Double, Integer, Nullable};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::MigrationHarness;
use sqlite::SQLITE_HEADER;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use ws_core::model::{
    ChangeKind, ConflictHunk, ErrorType, FileChange, Forecast, MergeStep, PairForecast, Status,
    TestResults, WsError,
};

impl ConsolidationDatabase {
    /// The SQLite connection of a database opened on a file.
    fn sqlite(&mut self) -> &mut SqliteConnection {
        match &mut self.conn {
            Conn::Sqlite(c) => c,
            Conn::Postgres(_) => panic!("not SQLite"),
        }
    }
}

const SEED_RUN: &str = "ma-run-20241202-190000";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 12, 2, 19, 0, 0).unwrap()
}

fn info(run_id: &str, started_at: DateTime<Utc>) -> RunInfo {
    RunInfo {
        run_id: run_id.to_string(),
        started_at,
        finished_at: None,
        agents: 3,
        base: "a".repeat(40),
        base_rev: "HEAD".into(),
        repo_root: "/tmp/repo".into(),
        rerun_of: None,
    }
}

fn sha(n: u32) -> String {
    format!("{n:040x}")
}

/// A completed result with every field set; times have microsecond precision.
fn full_result(run_id: &str, ws: &str, agent: &str, start_offset_ms: i64) -> WorkstreamResult {
    let start = t0() + Duration::milliseconds(start_offset_ms) + Duration::microseconds(123);
    let mut r = WorkstreamResult::new(run_id, agent, ws, Status::Completed);
    r.title = Some(format!("Title of {ws} with `code` | pipe"));
    r.start_time = Some(start);
    r.end_time = Some(start + Duration::microseconds(2_500_001));
    r.duration_seconds = 2.500001;
    r.files = vec![
        FileChange {
            path: format!("src/{ws}.rs"),
            old_path: None,
            kind: ChangeKind::Added,
            additions: 10,
            deletions: 0,
        },
        FileChange {
            path: "src/shared.rs".into(),
            old_path: None,
            kind: ChangeKind::Modified,
            additions: 3,
            deletions: 1,
        },
        FileChange {
            path: "docs/new.md".into(),
            old_path: Some("docs/old.md".into()),
            kind: ChangeKind::Renamed,
            additions: 0,
            deletions: 0,
        },
    ];
    r.commits = vec![sha(1), sha(2)];
    r.warnings = vec!["uncommitted changes were committed on the branch".into()];
    r.test_results = Some(TestResults {
        command: "cargo test -q".into(),
        exit_code: Some(0),
        passed: Some(12),
        failed: Some(0),
        skipped: None,
        ..TestResults::default()
    });
    r.branch = Some(format!("ws/{run_id}/{ws}"));
    r.base = Some("a".repeat(40));
    r.head = Some(sha(2));
    r.worktree = Some("/repo/.git/ws/agent-1".into());
    r.log_path = Some(format!("/repo/.git/ws/logs/{ws}.log"));
    r.exit_code = Some(0);
    r.output_tail = Some("ok\n".into());
    r.source_file = Some(format!("{ws}.json"));
    r
}

fn failed_result(run_id: &str, ws: &str, agent: &str, start_offset_ms: i64) -> WorkstreamResult {
    let mut r = full_result(run_id, ws, agent, start_offset_ms);
    r.status = Status::Failed;
    r.duration_seconds = 7.25;
    r.exit_code = Some(1);
    r.test_results = None;
    r.errors = vec![
        WsError::new(ErrorType::CommandFailed, "command exited with status 1")
            .with_trace("line 1\nline 2\npanicked at 'boom'"),
        WsError::new(ErrorType::TestFailed, "2 tests failed"),
    ];
    r
}

fn skipped_result(run_id: &str, ws: &str) -> WorkstreamResult {
    let mut r = WorkstreamResult::new(
        run_id,
        ws_core::model::UNASSIGNED_AGENT,
        ws,
        Status::Skipped,
    );
    r.errors = vec![WsError::new(
        ErrorType::DependencyFailed,
        "dependency ws-02 failed",
    )];
    r
}

fn consolidated(run: &RunInfo, results: &[WorkstreamResult]) -> Consolidated {
    ws_core::consolidate::consolidate(run, results, sample_forecast())
}

fn sample_forecast() -> Forecast {
    Forecast {
        pairs: vec![
            PairForecast {
                a: "ws-01".into(),
                b: "ws-03".into(),
                common_paths: vec!["src/shared.rs".into()],
                conflict_paths: vec!["src/shared.rs".into()],
                hunks: vec![ConflictHunk {
                    path: "src/shared.rs".into(),
                    text: "<<<<<<< ws-01\na\n=======\nb\n>>>>>>> ws-03\n".into(),
                }],
            },
            PairForecast {
                a: "ws-01".into(),
                b: "ws-02".into(),
                common_paths: vec![],
                conflict_paths: vec![],
                hunks: vec![],
            },
        ],
        merge_order: vec![
            MergeStep {
                workstream_id: "ws-01".into(),
                clean: true,
                conflict_paths: vec![],
            },
            MergeStep {
                workstream_id: "ws-03".into(),
                clean: false,
                conflict_paths: vec!["src/shared.rs".into()],
            },
        ],
    }
}

fn fresh() -> (tempfile::TempDir, PathBuf, ConsolidationDatabase) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join(".state")
        .join("multi_agent_consolidated.db");
    let db = ConsolidationDatabase::open(&path).unwrap();
    (dir, path, db)
}

/// The seed run: 2 agents, ws-01 completed, ws-02 failed (2 errors), ws-03 completed,
/// ws-04 skipped (1 error), finished.
fn seed_run(db: &mut ConsolidationDatabase) -> (RunInfo, Vec<WorkstreamResult>) {
    let run = info(SEED_RUN, t0());
    assert_eq!(db.begin_run(&run).unwrap(), SEED_RUN);
    let results = vec![
        full_result(SEED_RUN, "ws-03", "agent-1", 3000),
        failed_result(SEED_RUN, "ws-02", "agent-2", 0),
        full_result(SEED_RUN, "ws-01", "agent-1", 0),
        skipped_result(SEED_RUN, "ws-04"),
    ];
    for r in &results {
        db.record_result(r).unwrap();
    }
    let mut done = run.clone();
    done.finished_at = Some(t0() + Duration::seconds(20));
    db.finish_run(&consolidated(&done, &results), RunState::Finished)
        .unwrap();
    (done, results)
}

// ---- the seed document's SQL, verbatim ----

const SEED_MOST_RECENT: &str = "-- Get most recent runs
SELECT run_id, timestamp, total_workstreams, completed_count, failed_count
FROM consolidated_runs
ORDER BY created_at DESC
LIMIT 10;";

const SEED_RESULTS_OF_RUN: &str = "-- Get all results for a specific run
SELECT agent_id, workstream_id, status, duration_seconds
FROM agent_results
WHERE run_id = 'ma-run-20241202-190000'
ORDER BY start_time;";

const SEED_ERRORS_OF_RUN: &str = "-- Get all errors from a run
SELECT error_type, error_message, workstream_id, agent_id
FROM consolidated_errors
WHERE run_id = 'ma-run-20241202-190000';";

const SEED_AGENT_PERFORMANCE: &str = "-- Agent performance comparison
SELECT
    agent_id,
    COUNT(*) as total_workstreams,
    SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) as completed,
    SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) as failed,
    AVG(duration_seconds) as avg_duration
FROM agent_results
WHERE run_id = 'ma-run-20241202-190000'
GROUP BY agent_id;";

#[derive(QueryableByName, Debug, PartialEq)]
struct MostRecent {
    #[diesel(sql_type = Text)]
    run_id: String,
    #[diesel(sql_type = Text)]
    timestamp: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    total_workstreams: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    completed_count: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    failed_count: Option<i64>,
}

#[derive(QueryableByName, Debug, PartialEq)]
struct ResultOfRun {
    #[diesel(sql_type = Text)]
    agent_id: String,
    #[diesel(sql_type = Text)]
    workstream_id: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Double>)]
    duration_seconds: Option<f64>,
}

#[derive(QueryableByName, Debug, PartialEq)]
struct ErrorOfRun {
    #[diesel(sql_type = Nullable<Text>)]
    error_type: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    error_message: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    workstream_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    agent_id: Option<String>,
}

#[derive(QueryableByName, Debug, PartialEq)]
struct AgentPerformance {
    #[diesel(sql_type = Text)]
    agent_id: String,
    #[diesel(sql_type = BigInt)]
    total_workstreams: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    completed: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    failed: Option<i64>,
    #[diesel(sql_type = Nullable<Double>)]
    avg_duration: Option<f64>,
}

fn s(x: &str) -> Option<String> {
    Some(x.to_string())
}

#[test]
fn seed_sql_queries_run_verbatim() {
    let (_dir, _path, mut db) = fresh();
    seed_run(&mut db);
    // A later run, so "most recent" has something to order.
    let later = info("ma-run-20241203-080000", t0() + Duration::hours(13));
    db.begin_run(&later).unwrap();
    let c = db.sqlite();

    let recent: Vec<MostRecent> = diesel::sql_query(SEED_MOST_RECENT).load(c).unwrap();
    assert_eq!(
        recent,
        vec![
            MostRecent {
                run_id: "ma-run-20241203-080000".into(),
                timestamp: "2024-12-03T08:00:00.000000Z".into(),
                total_workstreams: Some(0),
                completed_count: Some(0),
                failed_count: Some(0),
            },
            MostRecent {
                run_id: SEED_RUN.into(),
                timestamp: "2024-12-02T19:00:00.000000Z".into(),
                total_workstreams: Some(4),
                completed_count: Some(2),
                failed_count: Some(1),
            },
        ]
    );

    let results: Vec<ResultOfRun> = diesel::sql_query(SEED_RESULTS_OF_RUN).load(c).unwrap();
    let row = |a: &str, w: &str, st: &str, d: f64| ResultOfRun {
        agent_id: a.into(),
        workstream_id: w.into(),
        status: st.into(),
        duration_seconds: Some(d),
    };
    // NULL start_time (the skipped one) sorts first in SQLite; then by start time.
    assert_eq!(results.len(), 4);
    assert_eq!(results[0], row("unassigned", "ws-04", "skipped", 0.0));
    let mut same_start = [&results[1], &results[2]];
    same_start.sort_by(|a, b| a.workstream_id.cmp(&b.workstream_id));
    assert_eq!(
        same_start[0],
        &row("agent-1", "ws-01", "completed", 2.500001)
    );
    assert_eq!(same_start[1], &row("agent-2", "ws-02", "failed", 7.25));
    assert_eq!(results[3], row("agent-1", "ws-03", "completed", 2.500001));

    let errors: Vec<ErrorOfRun> = diesel::sql_query(SEED_ERRORS_OF_RUN).load(c).unwrap();
    assert_eq!(
        errors,
        vec![
            ErrorOfRun {
                error_type: s("CommandFailed"),
                error_message: s("command exited with status 1"),
                workstream_id: s("ws-02"),
                agent_id: s("agent-2"),
            },
            ErrorOfRun {
                error_type: s("TestFailed"),
                error_message: s("2 tests failed"),
                workstream_id: s("ws-02"),
                agent_id: s("agent-2"),
            },
            ErrorOfRun {
                error_type: s("DependencyFailed"),
                error_message: s("dependency ws-02 failed"),
                workstream_id: s("ws-04"),
                agent_id: s("unassigned"),
            },
        ]
    );

    let mut perf: Vec<AgentPerformance> =
        diesel::sql_query(SEED_AGENT_PERFORMANCE).load(c).unwrap();
    perf.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
    assert_eq!(
        perf,
        vec![
            AgentPerformance {
                agent_id: "agent-1".into(),
                total_workstreams: 2,
                completed: Some(2),
                failed: Some(0),
                avg_duration: Some(2.500001),
            },
            AgentPerformance {
                agent_id: "agent-2".into(),
                total_workstreams: 1,
                completed: Some(0),
                failed: Some(1),
                avg_duration: Some(7.25),
            },
            AgentPerformance {
                agent_id: "unassigned".into(),
                total_workstreams: 1,
                completed: Some(0),
                failed: Some(0),
                avg_duration: Some(0.0),
            },
        ]
    );
}

#[derive(QueryableByName, Debug, PartialEq)]
struct ColumnInfo {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "type")]
    ty: String,
    #[diesel(sql_type = Integer)]
    notnull: i32,
    #[diesel(sql_type = Nullable<Text>)]
    dflt_value: Option<String>,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

fn columns(
    c: &mut SqliteConnection,
    table: &str,
) -> Vec<(String, String, i32, Option<String>, i32)> {
    let rows: Vec<ColumnInfo> = diesel::sql_query(format!("PRAGMA table_info({table})"))
        .load(c)
        .unwrap();
    rows.into_iter()
        .map(|r| (r.name, r.ty, r.notnull, r.dflt_value, r.pk))
        .collect()
}

#[derive(QueryableByName, Debug, PartialEq)]
struct ForeignKey {
    #[diesel(sql_type = Text)]
    table: String,
    #[diesel(sql_type = Text)]
    from: String,
    #[diesel(sql_type = Nullable<Text>)]
    to: Option<String>,
}

#[test]
fn seed_tables_match_the_seed_schema() {
    let (_dir, _path, mut db) = fresh();
    let c = db.sqlite();
    let col = |n: &str, t: &str, nn: i32, pk: i32| (n.to_string(), t.to_string(), nn, None, pk);
    let mut runs = vec![col("run_id", "TEXT", 0, 1), col("timestamp", "TEXT", 1, 0)];
    for n in [
        "total_workstreams",
        "completed_count",
        "failed_count",
        "skipped_count",
        "total_files_modified",
        "total_commits",
        "total_errors",
        "total_warnings",
    ] {
        runs.push(col(n, "INTEGER", 0, 0));
    }
    runs.push(col("execution_summary", "TEXT", 0, 0));
    runs.push(col("recommendations", "TEXT", 0, 0));
    runs.push((
        "created_at".into(),
        "TIMESTAMP".into(),
        0,
        s("CURRENT_TIMESTAMP"),
        0,
    ));
    assert_eq!(columns(c, "consolidated_runs"), runs);

    let mut results = vec![
        col("id", "INTEGER", 0, 1),
        col("run_id", "TEXT", 1, 0),
        col("agent_id", "TEXT", 1, 0),
        col("workstream_id", "TEXT", 1, 0),
        col("status", "TEXT", 1, 0),
        col("start_time", "TEXT", 0, 0),
        col("end_time", "TEXT", 0, 0),
        col("duration_seconds", "REAL", 0, 0),
    ];
    for n in [
        "files_modified",
        "commits_created",
        "errors",
        "warnings",
        "test_results",
        "metadata",
    ] {
        results.push(col(n, "TEXT", 0, 0));
    }
    assert_eq!(columns(c, "agent_results"), results);

    let mut errors = vec![col("id", "INTEGER", 0, 1), col("run_id", "TEXT", 1, 0)];
    for n in [
        "error_type",
        "error_message",
        "workstream_id",
        "agent_id",
        "timestamp",
        "stack_trace",
    ] {
        errors.push(col(n, "TEXT", 0, 0));
    }
    assert_eq!(columns(c, "consolidated_errors"), errors);

    for table in ["agent_results", "consolidated_errors"] {
        let fks: Vec<ForeignKey> = diesel::sql_query(format!("PRAGMA foreign_key_list({table})"))
            .load(c)
            .unwrap();
        assert_eq!(
            fks,
            vec![ForeignKey {
                table: "consolidated_runs".into(),
                from: "run_id".into(),
                to: s("run_id"),
            }],
            "{table}"
        );
    }
    // AUTOINCREMENT, as the seed writes it, leaves its mark in sqlite_sequence.
    let seq: Vec<VersionRow> = diesel::sql_query(
        "SELECT name AS version FROM sqlite_master WHERE name = 'sqlite_sequence'",
    )
    .load(c)
    .unwrap();
    assert_eq!(seq.len(), 1);
}

#[test]
fn a_result_reads_back_exactly_as_recorded() {
    let (_dir, _path, mut db) = fresh();
    let (run, mut recorded) = seed_run(&mut db);
    let back = db.results(SEED_RUN).unwrap();
    // Ordered by start time (unstarted last), then id (insertion order).
    let order: Vec<&str> = back.iter().map(|r| r.workstream_id.as_str()).collect();
    assert_eq!(order, ["ws-02", "ws-01", "ws-03", "ws-04"]);
    recorded.sort_by_key(|r| {
        (
            r.start_time.is_none(),
            r.start_time,
            order.iter().position(|w| *w == r.workstream_id),
        )
    });
    assert_eq!(back, recorded);
    // The stack trace came back from consolidated_errors.
    assert_eq!(
        back[0].errors[0].stack_trace.as_deref(),
        Some("line 1\nline 2\npanicked at 'boom'")
    );
    assert_eq!(db.run_info(SEED_RUN).unwrap(), Some(run));
    assert_eq!(db.run_info("nope").unwrap(), None);
    assert_eq!(
        db.forecast(SEED_RUN).unwrap(),
        MergeForecast::from(sample_forecast())
    );
    assert_eq!(db.forecast("nope").unwrap(), MergeForecast::default());
}

#[test]
fn json_columns_have_the_documented_layout() {
    let (_dir, _path, mut db) = fresh();
    seed_run(&mut db);
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Nullable<Text>)]
        files_modified: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        commits_created: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        errors: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        warnings: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        test_results: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        metadata: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        start_time: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        end_time: Option<String>,
    }
    let q = "SELECT files_modified, commits_created, errors, warnings, test_results, metadata, \
             start_time, end_time FROM agent_results WHERE workstream_id = ?";
    let j = |t: &Option<String>| {
        serde_json::from_str::<serde_json::Value>(t.as_ref().unwrap()).unwrap()
    };
    let row: Row = diesel::sql_query(q)
        .bind::<Text, _>("ws-02")
        .get_result(db.sqlite())
        .unwrap();
    assert_eq!(
        j(&row.files_modified),
        serde_json::json!(["src/ws-02.rs", "src/shared.rs", "docs/new.md"])
    );
    assert_eq!(j(&row.commits_created), serde_json::json!([sha(1), sha(2)]));
    assert_eq!(
        j(&row.errors),
        serde_json::json!([
            {"type": "CommandFailed", "message": "command exited with status 1"},
            {"type": "TestFailed", "message": "2 tests failed"},
        ])
    );
    assert_eq!(
        j(&row.warnings),
        serde_json::json!(["uncommitted changes were committed on the branch"])
    );
    assert_eq!(row.test_results, None);
    let expected_meta = failed_result(SEED_RUN, "ws-02", "agent-2", 0).metadata_json();
    assert_eq!(j(&row.metadata), expected_meta);
    assert_eq!(
        row.start_time.as_deref(),
        Some("2024-12-02T19:00:00.000123Z")
    );
    assert_eq!(row.end_time.as_deref(), Some("2024-12-02T19:00:02.500124Z"));

    let row: Row = diesel::sql_query(q)
        .bind::<Text, _>("ws-01")
        .get_result(db.sqlite())
        .unwrap();
    assert_eq!(
        j(&row.test_results),
        serde_json::json!({"command": "cargo test -q", "exit_code": 0, "passed": 12,
                           "failed": 0, "skipped": null})
    );

    // consolidated_errors: timestamp = the result's end time, stack trace kept.
    #[derive(QueryableByName, Debug, PartialEq)]
    struct ErrRow {
        #[diesel(sql_type = Nullable<Text>)]
        timestamp: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        stack_trace: Option<String>,
    }
    let errs: Vec<ErrRow> = diesel::sql_query(
        "SELECT timestamp, stack_trace FROM consolidated_errors WHERE workstream_id = 'ws-02' ORDER BY id",
    )
    .load(db.sqlite())
    .unwrap();
    assert_eq!(
        errs,
        vec![
            ErrRow {
                timestamp: s("2024-12-02T19:00:02.500124Z"),
                stack_trace: s("line 1\nline 2\npanicked at 'boom'"),
            },
            ErrRow {
                timestamp: s("2024-12-02T19:00:02.500124Z"),
                stack_trace: None,
            },
        ]
    );
}

fn count(c: &mut SqliteConnection, table: &str, ws: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let q = format!("SELECT COUNT(*) AS n FROM {table} WHERE workstream_id = ?");
    diesel::sql_query(q)
        .bind::<Text, _>(ws)
        .get_result::<N>(c)
        .unwrap()
        .n
}

#[test]
fn recording_a_result_again_replaces_every_row_of_it() {
    let (_dir, _path, mut db) = fresh();
    db.begin_run(&info(SEED_RUN, t0())).unwrap();
    db.record_result(&failed_result(SEED_RUN, "ws-02", "agent-2", 0))
        .unwrap();
    let c = db.sqlite();
    assert_eq!(
        [
            count(c, "agent_results", "ws-02"),
            count(c, "consolidated_errors", "ws-02"),
            count(c, "ws_result_files", "ws-02"),
            count(c, "ws_commits", "ws-02"),
        ],
        [1, 2, 3, 2]
    );
    let mut again = full_result(SEED_RUN, "ws-02", "agent-3", 500);
    again.files.truncate(1);
    again.commits = vec![sha(9)];
    db.record_result(&again).unwrap();
    let c = db.sqlite();
    assert_eq!(
        [
            count(c, "agent_results", "ws-02"),
            count(c, "consolidated_errors", "ws-02"),
            count(c, "ws_result_files", "ws-02"),
            count(c, "ws_commits", "ws-02"),
        ],
        [1, 0, 1, 1]
    );
    assert_eq!(db.results(SEED_RUN).unwrap(), vec![again]);
}

/// A PostgreSQL server nobody listens for is `Connect` with `Unreachable`, its sentence
/// naming the URL with the password hidden (port 1 refuses at once, no server needed).
#[test]
fn an_unreachable_server_is_a_connect_failure() {
    let url = "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=2";
    let err = ConsolidationDatabase::open(DbLocation::parse(url).unwrap())
        .err()
        .unwrap();
    match &err {
        DbError::Connect { db, failure, .. } => {
            assert_eq!(*failure, ConnectFailure::Unreachable, "{err}");
            assert!(!db.contains("hunter2"), "{db}");
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with("failed to open database postgres://u:***@127.0.0.1:1/db"),
        "{text}"
    );
    assert!(text.contains(": the server is unreachable: "), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

/// A database that cannot grow is SQLite's `SQLITE_FULL`, exactly as a full disk reports
/// it ("database or disk is full"): `max_page_count` caps the file at its size.
#[test]
fn a_full_database_is_disk_full() {
    let (_dir, path, mut db) = fresh();
    seed_run(&mut db);
    #[derive(QueryableByName)]
    struct Pages {
        #[diesel(sql_type = BigInt)]
        page_count: i64,
    }
    let pages: Pages = diesel::sql_query("PRAGMA page_count")
        .get_result(db.sqlite())
        .unwrap();
    db.sqlite()
        .batch_execute(&format!("PRAGMA max_page_count = {};", pages.page_count))
        .unwrap();
    let mut big = full_result(SEED_RUN, "ws-big", "agent-1", 0);
    big.warnings = (0..400)
        .map(|i| format!("{i} {}", "x".repeat(1000)))
        .collect();
    let err = db.record_result(&big).unwrap_err();
    assert!(matches!(err, DbError::DiskFull(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "failed to record result ws-big of run {SEED_RUN} in database {}: database or disk is full",
            path.display()
        )
    );
    // Once there is room again, the same connection writes.
    db.sqlite()
        .batch_execute("PRAGMA max_page_count = 1073741823;")
        .unwrap();
    db.record_result(&big).unwrap();
}

#[test]
fn a_result_for_an_unknown_run_is_refused_by_the_foreign_key() {
    let (_dir, path, mut db) = fresh();
    let err = db
        .record_result(&full_result("no-such-run", "ws-01", "agent-1", 0))
        .unwrap_err();
    assert!(err
        .to_string()
        .starts_with("failed to record result ws-01 of run no-such-run in database "));
    assert!(err.to_string().contains(&path.display().to_string()));
    assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
}

#[test]
fn ten_thousand_files_are_inserted_in_chunks_and_read_back() {
    let (_dir, _path, mut db) = fresh();
    db.begin_run(&info(SEED_RUN, t0())).unwrap();
    let mut r = full_result(SEED_RUN, "ws-big", "agent-1", 0);
    r.files = (0..10_000)
        .map(|i| FileChange {
            path: format!("gen/file-{i:05}.txt"),
            old_path: None,
            kind: ChangeKind::Added,
            additions: i,
            deletions: 0,
        })
        .collect();
    r.commits = (0..9_000).map(sha).collect();
    db.record_result(&r).unwrap();
    assert_eq!(count(db.sqlite(), "ws_result_files", "ws-big"), 10_000);
    assert_eq!(count(db.sqlite(), "ws_commits", "ws-big"), 9_000);
    assert_eq!(db.results(SEED_RUN).unwrap(), vec![r]);
}

#[test]
fn file_changes_come_from_ws_result_files_when_metadata_lacks_them() {
    let (_dir, _path, mut db) = fresh();
    db.begin_run(&info(SEED_RUN, t0())).unwrap();
    let r = full_result(SEED_RUN, "ws-01", "agent-1", 0);
    db.record_result(&r).unwrap();
    diesel::sql_query(
        "UPDATE agent_results SET metadata = json_remove(metadata, '$.file_changes')",
    )
    .execute(db.sqlite())
    .unwrap();
    assert_eq!(db.results(SEED_RUN).unwrap(), vec![r]);
}

#[test]
fn finish_run_writes_totals_summary_and_state() {
    let (_dir, _path, mut db) = fresh();
    let (run, results) = seed_run(&mut db);
    let summary = db.get_run_summary(SEED_RUN).unwrap().unwrap();
    let c = consolidated(&run, &results);
    assert_eq!(
        summary,
        RunSummary {
            run_id: SEED_RUN.into(),
            timestamp: "2024-12-02T19:00:00.000000Z".into(),
            total_workstreams: 4,
            completed_count: 2,
            failed_count: 1,
            skipped_count: 1,
            // src/ws-01.rs, src/ws-02.rs, src/ws-03.rs, src/shared.rs, docs/new.md
            total_files_modified: 5,
            total_commits: 6,
            total_errors: 3,
            total_warnings: 3,
            recommendations: c.recommendations.clone(),
            execution_summary: serde_json::to_value(&c).unwrap(),
            state: RunState::Finished,
            rerun_of: None,
        }
    );
    let back: Consolidated = serde_json::from_value(summary.execution_summary).unwrap();
    assert_eq!(back, c);
    assert_eq!(db.get_run_summary("nope").unwrap(), None);

    // Finishing again replaces the forecast rather than adding to it.
    let mut c2 = c.clone();
    c2.forecast.pairs.truncate(1);
    db.finish_run(&c2, RunState::Interrupted).unwrap();
    assert_eq!(db.forecast(SEED_RUN).unwrap(), c2.forecast);
    let summary = db.get_run_summary(SEED_RUN).unwrap().unwrap();
    assert_eq!(summary.state, RunState::Interrupted);

    let mut unknown = c.clone();
    unknown.run.run_id = "ma-run-nope".into();
    let err = db.finish_run(&unknown, RunState::Finished).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("failed to finish run ma-run-nope in database "),
        "{err}"
    );
    assert!(err.to_string().ends_with("no run ma-run-nope"), "{err}");
}

#[test]
fn taken_run_ids_get_a_numeric_suffix() {
    let (_dir, _path, mut db) = fresh();
    let i = info(SEED_RUN, t0());
    assert_eq!(db.begin_run(&i).unwrap(), SEED_RUN);
    assert_eq!(db.begin_run(&i).unwrap(), format!("{SEED_RUN}-2"));
    assert_eq!(db.begin_run(&i).unwrap(), format!("{SEED_RUN}-3"));
    let info3 = db.run_info(&format!("{SEED_RUN}-3")).unwrap().unwrap();
    assert_eq!(info3.run_id, format!("{SEED_RUN}-3"));
    assert_eq!(info3.base, i.base);
    assert_eq!(
        db.unfinished_runs().unwrap(),
        vec![
            SEED_RUN.to_string(),
            format!("{SEED_RUN}-2"),
            format!("{SEED_RUN}-3")
        ]
    );
}

fn concurrent_begin(threads: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("db.sqlite");
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let path = path.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                // Every thread opens (and migrates) the fresh file at the same time, then
                // starts a run in the same second.
                // (No unwrap before the last wait: a failing thread must not strand the
                // others at the barrier.)
                barrier.wait();
                let db = ConsolidationDatabase::open(&path);
                barrier.wait();
                db.and_then(|mut db| db.begin_run(&info(SEED_RUN, t0())))
                    .unwrap()
            })
        })
        .collect();
    let mut ids: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    ids.sort();
    let mut expected: Vec<String> = std::iter::once(SEED_RUN.to_string())
        .chain((2..=threads).map(|n| format!("{SEED_RUN}-{n}")))
        .collect();
    expected.sort();
    assert_eq!(ids, expected);
    let mut db = ConsolidationDatabase::open(&path).unwrap();
    assert_eq!(db.get_all_runs(100).unwrap().len(), threads);
}

#[test]
fn two_processes_starting_in_the_same_second_get_distinct_ids() {
    concurrent_begin(2);
}

#[test]
fn eight_processes_starting_in_the_same_second_get_distinct_ids() {
    concurrent_begin(8);
}

#[test]
fn concurrent_writers_do_not_see_database_is_locked() {
    let (dir, path, mut db) = fresh();
    db.begin_run(&info(SEED_RUN, t0())).unwrap();
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let path = path.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut db = ConsolidationDatabase::open(&path).unwrap();
                barrier.wait();
                for i in 0..25 {
                    let ws = format!("ws-{t}-{i}");
                    db.record_result(&full_result(SEED_RUN, &ws, "agent-1", i))
                        .unwrap();
                    db.results(SEED_RUN).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(db.results(SEED_RUN).unwrap().len(), 100);
    drop(dir);
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("notes.db", b"these are my notes, not a database\n".to_vec()),
        ("short.db", b"SQLi".to_vec()),
        ("almost.db", b"SQLite format 3 and then some".to_vec()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let err = ConsolidationDatabase::open(&path).err().unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "failed to open database {}: not an SQLite database",
                path.display()
            )
        );
        let err = ConsolidationDatabase::open_existing(&path).err().unwrap();
        assert!(err.to_string().ends_with("not an SQLite database"));
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name}");
        assert!(!dir.path().join(format!("{name}-wal")).exists());
        assert!(!dir.path().join(format!("{name}-journal")).exists());
    }
    // A zero-length file is an empty database.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let mut db = ConsolidationDatabase::open(&empty).unwrap();
    assert_eq!(db.get_all_runs(10).unwrap(), vec![]);
    drop(db);
    assert!(std::fs::read(&empty).unwrap().starts_with(SQLITE_HEADER));
    // A directory is refused with a reason.
    let err = ConsolidationDatabase::open(dir.path()).err().unwrap();
    assert!(err.to_string().ends_with("it is a directory"), "{err}");
}

#[test]
fn a_database_from_a_newer_git_ws_is_refused_and_left_untouched() {
    let (_dir, path, mut db) = fresh();
    seed_run(&mut db);
    diesel::sql_query("INSERT INTO __diesel_schema_migrations (version) VALUES ('99990101000000')")
        .execute(db.sqlite())
        .unwrap();
    drop(db);
    let before = std::fs::read(&path).unwrap();
    let err = ConsolidationDatabase::open(&path).err().unwrap();
    assert!(
        matches!(
            &err,
            DbError::Migration {
                cause: MigrationError::Newer { version },
                ..
            } if version == "99990101000000"
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "failed to open database {}: it was written by a newer git-ws (schema version \
             99990101000000); upgrade git-ws",
            path.display()
        )
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn open_existing_names_a_missing_path_and_open_creates_parents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("x.db");
    let err = ConsolidationDatabase::open_existing(&path).err().unwrap();
    assert!(matches!(err, DbError::NothingRecorded { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("failed to open database {}: ", path.display())),
        "{err}"
    );
    assert!(!path.exists());
    ConsolidationDatabase::open(&path).unwrap();
    assert!(path.exists());
    let db = ConsolidationDatabase::open_existing(&path).unwrap();
    assert_eq!(db.path(), Some(path.as_path()));
}

#[derive(QueryableByName, Debug)]
struct NameRow {
    #[diesel(sql_type = Text)]
    name: String,
}

fn user_tables(c: &mut SqliteConnection) -> Vec<String> {
    let rows: Vec<NameRow> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'index') \
         AND name NOT LIKE 'sqlite_%' AND name != '__diesel_schema_migrations' ORDER BY name",
    )
    .load(c)
    .unwrap();
    rows.into_iter().map(|r| r.name).collect()
}

#[test]
fn migrations_are_reversible() {
    let (_dir, path, mut db) = fresh();
    let all = user_tables(db.sqlite());
    assert!(all.contains(&"ws_merges".to_string()));
    assert!(all.contains(&"agent_results_run_id".to_string()));
    db.sqlite().revert_all_migrations(MIGRATIONS).unwrap();
    assert_eq!(user_tables(db.sqlite()), Vec::<String>::new());
    assert!(applied_versions(&mut db.conn).unwrap().is_empty());
    drop(db);
    let mut db = ConsolidationDatabase::open(&path).unwrap();
    assert_eq!(user_tables(db.sqlite()), all);
    assert_eq!(
        applied_versions(&mut db.conn).unwrap(),
        known_versions(&db.conn).unwrap()
    );
    seed_run(&mut db);
}

#[test]
fn a_database_written_by_the_seed_prototype_is_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.db");
    {
        let mut c = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        c.batch_execute(include_str!(
            "../../../migrations/sqlite/2026-11-20-000001_seed_tables/up.sql"
        ))
        .unwrap();
        c.batch_execute(
            "INSERT INTO consolidated_runs (run_id, timestamp, total_workstreams, completed_count, \
             failed_count, skipped_count, total_files_modified, total_commits, total_errors, \
             total_warnings, execution_summary, recommendations) VALUES \
             ('ma-run-20241202-190000', '2024-12-02T19:00:00', 1, 1, 0, 0, 2, 1, 0, 0, '{}', \
              '[\"Ready for merge\"]');
             INSERT INTO agent_results (run_id, agent_id, workstream_id, status, duration_seconds) \
             VALUES ('ma-run-20241202-190000', 'agent-1', 'ws-01', 'completed', 3.5);",
        )
        .unwrap();
    }
    let mut db = ConsolidationDatabase::open(&path).unwrap();
    let runs = db.get_all_runs(10).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].state, RunState::Finished);
    assert_eq!(runs[0].recommendations, vec!["Ready for merge".to_string()]);
    let info = db.run_info(SEED_RUN).unwrap().unwrap();
    assert_eq!(info.agents, 1);
    let results = db.results(SEED_RUN).unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].status, Status::Completed);
    assert_eq!(results[0].duration_seconds, 3.5);
}

#[test]
fn resolve_run_id_handles_latest_exact_and_near_misses() {
    let (_dir, path, mut db) = fresh();
    let err = db.resolve_run_id("latest").unwrap_err();
    assert!(
        matches!(&err, DbError::NoSuchRun { run, closest, .. } if run == "latest" && closest.is_empty()),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "no run latest in {}: the database has no runs yet",
            path.display()
        )
    );
    for (i, id) in [
        "ma-run-20241202-190000",
        "ma-run-20241202-190500",
        "ma-run-20241203-080000",
        "ma-run-20250101-000000",
    ]
    .iter()
    .enumerate()
    {
        db.begin_run(&info(id, t0() + Duration::minutes(i as i64)))
            .unwrap();
    }
    assert_eq!(
        db.resolve_run_id("latest").unwrap(),
        "ma-run-20250101-000000"
    );
    assert_eq!(
        db.resolve_run_id("ma-run-20241202-190500").unwrap(),
        "ma-run-20241202-190500"
    );
    let err = db.resolve_run_id("ma-run-20241202-1905").unwrap_err();
    assert!(
        matches!(&err, DbError::NoSuchRun { closest, .. } if closest.len() == 3),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "no run ma-run-20241202-1905 in {}; closest: ma-run-20241202-190500, \
             ma-run-20241202-190000, ma-run-20241203-080000",
            path.display()
        )
    );
}

#[test]
fn closest_ranks_by_edit_distance_then_prefix_then_recency() {
    assert_eq!(rows::edit_distance("kitten", "sitting"), 3);
    assert_eq!(rows::edit_distance("", "abc"), 3);
    assert_eq!(rows::edit_distance("same", "same"), 0);
    let known: Vec<String> = ["run-b1", "run-a1", "xun-a2", "zzzzzzzz"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // run-b1 and run-a1 are both one edit away; the more recent (first) wins the tie;
    // xun-a2 is two away.
    assert_eq!(
        rows::closest("run-c1", &known, 3),
        vec!["run-b1", "run-a1", "xun-a2"]
    );
    // Equal distance: the longer common prefix first.
    let known: Vec<String> = vec!["xb".into(), "ab".into()];
    assert_eq!(rows::closest("aa", &known, 1), vec!["ab"]);
}

#[test]
fn expected_durations_use_the_most_recent_run_that_ran() {
    let (_dir, _path, mut db) = fresh();
    let r1 = db.begin_run(&info("run-1", t0())).unwrap();
    let r2 = db
        .begin_run(&info("run-2", t0() + Duration::hours(1)))
        .unwrap();
    let mut a = full_result(&r1, "ws-01", "agent-1", 0);
    a.duration_seconds = 10.0;
    let mut b = failed_result(&r1, "ws-02", "agent-1", 0);
    b.duration_seconds = 20.0;
    let mut a2 = full_result(&r2, "ws-01", "agent-1", 3_600_000);
    a2.duration_seconds = 30.0;
    for r in [&a2, &a, &b] {
        db.record_result(r).unwrap();
    }
    // ws-02 was skipped later and ws-03 never started: neither counts.
    db.record_result(&skipped_result(&r2, "ws-02")).unwrap();
    let mut never = WorkstreamResult::new(&r2, "unassigned", "ws-03", Status::Failed);
    never.duration_seconds = 0.0;
    db.record_result(&never).unwrap();
    let d = db.expected_durations().unwrap();
    assert_eq!(
        d,
        HashMap::from([("ws-01".to_string(), 30.0), ("ws-02".to_string(), 20.0)])
    );
}

/// A completed branch with no commit of its own has nothing to merge: the hook's "still
/// unmerged" count leaves it out.
#[test]
fn zero_commit_results_are_not_counted_as_unmerged() {
    let (_dir, _path, mut db) = fresh();
    seed_run(&mut db);
    assert_eq!(db.unmerged_completed_count().unwrap(), 2);
    let mut empty = full_result(SEED_RUN, "ws-04", "agent-2", 4000);
    empty.commits.clear();
    db.record_result(&empty).unwrap();
    assert_eq!(db.unmerged_completed_count().unwrap(), 2);
    let with_work = full_result(SEED_RUN, "ws-05", "agent-2", 5000);
    assert!(!with_work.commits.is_empty());
    db.record_result(&with_work).unwrap();
    assert_eq!(db.unmerged_completed_count().unwrap(), 3);
}

#[test]
fn merges_are_recorded_once_and_counted() {
    let (_dir, _path, mut db) = fresh();
    seed_run(&mut db);
    // Completed with a branch: ws-01 and ws-03.
    assert_eq!(db.unmerged_completed_count().unwrap(), 2);
    let index = db.branch_index().unwrap();
    assert_eq!(
        index,
        HashMap::from([
            (
                format!("ws/{SEED_RUN}/ws-01"),
                (SEED_RUN.to_string(), "ws-01".to_string())
            ),
            (
                format!("ws/{SEED_RUN}/ws-03"),
                (SEED_RUN.to_string(), "ws-03".to_string())
            ),
        ])
    );
    let m = MergeRecord {
        run_id: SEED_RUN.into(),
        workstream_id: "ws-01".into(),
        branch: format!("ws/{SEED_RUN}/ws-01"),
        tip: sha(2),
        merge_commit: sha(77),
        merged_at: t0() + Duration::days(1),
        detected_by: Some("ancestor".into()),
    };
    assert_eq!(db.record_merges(std::slice::from_ref(&m)).unwrap(), 1);
    let mut m3 = m.clone();
    m3.workstream_id = "ws-03".into();
    m3.branch = format!("ws/{SEED_RUN}/ws-03");
    m3.detected_by = Some("patch-id".into());
    assert_eq!(db.record_merges(&[m.clone(), m3.clone()]).unwrap(), 1);
    assert_eq!(db.record_merges(&[m.clone(), m3.clone()]).unwrap(), 0);
    assert_eq!(
        db.merged(SEED_RUN).unwrap(),
        HashMap::from([("ws-01".to_string(), m), ("ws-03".to_string(), m3)])
    );
    assert_eq!(db.unmerged_completed_count().unwrap(), 0);
    assert!(db.merged("other").unwrap().is_empty());
}

#[test]
fn unfinished_runs_can_be_marked_interrupted() {
    let (_dir, _path, mut db) = fresh();
    seed_run(&mut db);
    let a = db.begin_run(&info("run-a", t0())).unwrap();
    let b = db
        .begin_run(&info("run-b", t0() + Duration::seconds(1)))
        .unwrap();
    assert_eq!(db.unfinished_runs().unwrap(), vec![a.clone(), b.clone()]);
    assert!(db.set_run_state(&b, RunState::Finished).unwrap());
    assert!(!db.set_run_state("nope", RunState::Finished).unwrap());
    assert_eq!(db.mark_interrupted_runs().unwrap(), vec![a.clone()]);
    assert!(db.unfinished_runs().unwrap().is_empty());
    let s = db.get_run_summary(&a).unwrap().unwrap();
    assert_eq!(s.state, RunState::Interrupted);
    assert!(db.run_info(&a).unwrap().unwrap().finished_at.is_some());
}

#[test]
fn a_thousand_runs_list_most_recent_first() {
    let (_dir, _path, mut db) = fresh();
    let started = std::time::Instant::now();
    let mut ids = Vec::new();
    for i in 0..1000 {
        let mut run = info(&format!("run-{i:04}"), t0() + Duration::minutes(i));
        run.rerun_of = (i % 100 == 0).then(|| "run-0000".to_string());
        let id = db.begin_run(&run).unwrap();
        for w in 0..5 {
            let r = if w == 4 {
                failed_result(&id, &format!("ws-{w}"), "agent-2", i * 60_000)
            } else {
                full_result(&id, &format!("ws-{w}"), "agent-1", i * 60_000)
            };
            db.record_result(&r).unwrap();
        }
        ids.push(id);
    }
    let written = started.elapsed();
    let started = std::time::Instant::now();
    let recent = db.get_all_runs(10).unwrap();
    eprintln!(
        "1000 runs x 5 results written in {written:?}; get_all_runs(10) in {:?}",
        started.elapsed()
    );
    let got: Vec<&str> = recent.iter().map(|r| r.run_id.as_str()).collect();
    let want: Vec<&str> = ids.iter().rev().take(10).map(String::as_str).collect();
    assert_eq!(got, want);
    assert_eq!(recent[0].state, RunState::Running);
    assert_eq!(db.results("run-0500").unwrap().len(), 5);
    assert_eq!(db.get_all_runs(2000).unwrap().len(), 1000);
    assert_eq!(
        db.get_run_summary("run-0900").unwrap().unwrap().rerun_of,
        Some("run-0000".to_string())
    );

    // With second-granularity created_at (as the seed's DEFAULT writes it) the start
    // timestamp breaks the tie, and insertion order breaks a tie of both.
    diesel::sql_query("UPDATE consolidated_runs SET created_at = '2024-12-02 19:00:00'")
        .execute(db.sqlite())
        .unwrap();
    let got: Vec<String> = db
        .get_all_runs(3)
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(got, ["run-0999", "run-0998", "run-0997"]);
    diesel::sql_query("UPDATE consolidated_runs SET timestamp = '2024-12-02T19:00:00.000000Z'")
        .execute(db.sqlite())
        .unwrap();
    let got: Vec<String> = db
        .get_all_runs(3)
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(got, ["run-0999", "run-0998", "run-0997"]);
    assert_eq!(db.resolve_run_id("latest").unwrap(), "run-0999");
}

#[test]
fn runs_created_in_the_same_second_keep_their_creation_order() {
    let (_dir, _path, mut db) = fresh();
    // Same started_at for all: only created_at (microseconds) orders them.
    for id in ["zeta", "alpha", "mid"] {
        db.begin_run(&info(id, t0())).unwrap();
    }
    let got: Vec<String> = db
        .get_all_runs(10)
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(got, ["mid", "alpha", "zeta"]);
    let recent: Vec<MostRecent> = diesel::sql_query(SEED_MOST_RECENT)
        .load(db.sqlite())
        .unwrap();
    let seed_order: Vec<&str> = recent.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(seed_order, ["mid", "alpha", "zeta"]);
}

#[test]
fn the_database_can_move_between_threads() {
    let (_dir, _path, db) = fresh();
    let shared = Arc::new(std::sync::Mutex::new(db));
    let s2 = shared.clone();
    std::thread::spawn(move || {
        s2.lock().unwrap().begin_run(&info(SEED_RUN, t0())).unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(shared.lock().unwrap().get_all_runs(5).unwrap().len(), 1);
}

#[test]
fn open_for_hook_is_none_without_a_file_and_never_creates_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("x.db");
    assert!(ConsolidationDatabase::open_for_hook(&path)
        .unwrap()
        .is_none());
    assert!(!path.exists() && !dir.path().join("state").exists());
    ConsolidationDatabase::open(&path).unwrap();
    let mut db = ConsolidationDatabase::open_for_hook(&path)
        .unwrap()
        .unwrap();
    assert_eq!(db.branch_index().unwrap(), HashMap::new());
    assert_eq!(db.location(), &DbLocation::Sqlite(path.clone()));
}

#[test]
fn usage_and_attempts_are_stored_queryable_and_read_back() {
    use ws_core::model::{Attempt, Usage};
    let (_dir, _path, mut db) = fresh();
    db.begin_run(&info(SEED_RUN, t0())).unwrap();
    let mut r = full_result(SEED_RUN, "ws-01", "agent-1", 0);
    r.agent = Some("claude".into());
    let u = Usage {
        cost_usd: Some(0.0412718),
        input_tokens: Some(15),
        output_tokens: Some(263),
        cached_input_tokens: Some(46_367),
        turns: Some(4),
        model: Some("claude-sonnet-4-5".into()),
        session_id: Some("s-1".into()),
        source: "claude+metrics".into(),
        extra: serde_json::from_str(r#"{"latency_ms": 12}"#).unwrap(),
    };
    r.usage = Some(u.clone());
    r.attempts = vec![
        Attempt {
            attempt: 1,
            started_at: Some(t0()),
            duration_seconds: 1.5,
            outcome: "CommandFailed".into(),
            exit_code: Some(1),
            retry_reason: Some("claude reported overloaded_error".into()),
            backoff_seconds: Some(10.0),
            usage: None,
        },
        Attempt {
            attempt: 2,
            started_at: Some(t0() + Duration::seconds(12)),
            duration_seconds: 2.0,
            outcome: "completed".into(),
            exit_code: Some(0),
            retry_reason: None,
            backoff_seconds: None,
            usage: Some(u.clone()),
        },
    ];
    db.record_result(&r).unwrap();
    db.record_result(&r).unwrap();
    assert_eq!(db.results(SEED_RUN).unwrap(), vec![r.clone()]);
    let c = db.sqlite();
    assert_eq!(count(c, "ws_usage", "ws-01"), 1);
    assert_eq!(count(c, "ws_attempts", "ws-01"), 2);
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Nullable<Text>)]
        agent: Option<String>,
        #[diesel(sql_type = Nullable<Double>)]
        cost_usd: Option<f64>,
        #[diesel(sql_type = Nullable<BigInt>)]
        cached_input_tokens: Option<i64>,
        #[diesel(sql_type = Text)]
        source: String,
    }
    let row: Row = diesel::sql_query(
        "SELECT agent, cost_usd, cached_input_tokens, source FROM ws_usage WHERE workstream_id = 'ws-01'",
    )
    .get_result(c)
    .unwrap();
    assert_eq!(
        (
            row.agent.as_deref(),
            row.cost_usd,
            row.cached_input_tokens,
            row.source.as_str()
        ),
        (
            Some("claude"),
            Some(0.0412718),
            Some(46_367),
            "claude+metrics"
        )
    );
    // A result without usage leaves no usage row.
    r.usage = None;
    r.attempts.truncate(1);
    db.record_result(&r).unwrap();
    let c = db.sqlite();
    assert_eq!(count(c, "ws_usage", "ws-01"), 0);
    assert_eq!(count(c, "ws_attempts", "ws-01"), 1);
}

#[test]
fn forecast_clusters_and_the_explained_order_round_trip() {
    let (_dir, path, mut db) = fresh();
    seed_run(&mut db);
    let mut c = consolidated(&info(SEED_RUN, t0()), &[]);
    c.forecast = ws_core::view::fixture::forecast();
    db.finish_run(&c, RunState::Finished).unwrap();
    assert_eq!(db.forecast(SEED_RUN).unwrap(), c.forecast);
    let rows = raw(
        &path,
        "cluster_id, path, kind, first_line, last_line, workstreams",
        "FROM ws_forecast_clusters ORDER BY cluster_id",
    );
    assert_eq!(
        rows[0],
        [
            "1",
            "src/a|b.rs",
            "lines",
            "3",
            "4",
            "[\"ws-01\",\"ws-03\"]"
        ]
    );
    assert_eq!(rows[1][3], "NULL");
    let order = raw(
        &path,
        "workstream_id, partners, clusters, reason",
        "FROM ws_merge_order ORDER BY position",
    );
    assert_eq!(order[2][..3], ["ws-03", "[\"ws-01\"]", "[1,2]"]);
    assert!(order[2][3].starts_with("needs a rebase"), "{order:?}");
}

#[test]
fn integrations_round_trip_latest_first() {
    let (_dir, path, mut db) = fresh();
    seed_run(&mut db);
    assert_eq!(db.latest_integration(SEED_RUN).unwrap(), None);
    let first = ws_core::view::fixture::integration();
    let mut it = first.clone();
    it.run_id = SEED_RUN.into();
    let id1 = db.record_integration(&it).unwrap();
    let mut second = it.clone();
    second.excluded.truncate(1);
    second.tests.clear();
    second.test_runs = 0;
    second.test_command = None;
    second.fast_forwarded = Some("main".into());
    let id2 = db.record_integration(&second).unwrap();
    assert!(id2 > id1);
    assert_eq!(db.latest_integration(SEED_RUN).unwrap(), Some(second));
    assert_eq!(db.integration_count(SEED_RUN).unwrap(), 2);
    let steps = raw(
        &path,
        "position, workstream_id, outcome, reason, broke_with",
        &format!("FROM ws_integration_steps WHERE integration_id = {id1} ORDER BY position"),
    );
    assert_eq!(
        steps,
        [
            ["0", "ws-01", "merged", "NULL", "[]"],
            ["1", "ws-09", "merged", "NULL", "[]"],
            ["2", "ws-03", "excluded", "conflict", "[]"],
            ["3", "ws-02", "excluded", "breaks-tests", "[\"ws-01\"]"],
            ["4", "ws-05", "excluded", "not-completed", "[]"],
        ]
    );
    let tests = raw(
        &path,
        "COUNT(*), SUM(passed)",
        &format!("FROM ws_integration_tests WHERE integration_id = {id1}"),
    );
    assert_eq!(tests, [["3", "2"]]);
}

/// `SELECT cols rest` on the file at `path`, every value as text (`NULL` for null).
fn raw(path: &std::path::Path, cols: &str, rest: &str) -> Vec<Vec<String>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        row: String,
    }
    let mut c = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    let rows: Vec<Row> = diesel::sql_query(format!("SELECT json_array({cols}) AS row {rest}"))
        .load(&mut c)
        .unwrap();
    rows.into_iter()
        .map(|r| {
            let v: Vec<serde_json::Value> = serde_json::from_str(&r.row).unwrap();
            v.into_iter()
                .map(|x| match x {
                    serde_json::Value::Null => "NULL".to_string(),
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

/// Every file beside `path`'s (the database, its `-wal`, `-shm`, `-journal`), with a hash
/// of its bytes.
fn files_beside(path: &std::path::Path) -> Vec<(String, u64)> {
    use std::hash::{Hash, Hasher};
    let mut v: Vec<(String, u64)> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::fs::read(&p).unwrap_or_default().hash(&mut h);
            (name, h.finish())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_reader_refuses_empty_foreign_newer_and_older_databases_writing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Empty: no tables.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    // Foreign: an SQLite file of someone else's.
    let foreign = dir.path().join("foreign.db");
    {
        let mut c = SqliteConnection::establish(foreign.to_str().unwrap()).unwrap();
        diesel::sql_query("CREATE TABLE notes (t TEXT)")
            .execute(&mut c)
            .unwrap();
    }
    // Newer: a migration this binary lacks.
    let (_d1, newer, mut db) = fresh();
    seed_run(&mut db);
    diesel::sql_query("INSERT INTO __diesel_schema_migrations (version) VALUES ('99990101000000')")
        .execute(db.sqlite())
        .unwrap();
    drop(db);
    // Older: one of this binary's migrations missing.
    let (_d2, older, mut db) = fresh();
    diesel::sql_query(
        "DELETE FROM __diesel_schema_migrations WHERE version = \
         (SELECT MAX(version) FROM __diesel_schema_migrations)",
    )
    .execute(db.sqlite())
    .unwrap();
    drop(db);
    for (path, says) in [
        (
            &empty,
            "it has no git-ws tables (no run has been recorded here yet)",
        ),
        (
            &foreign,
            "it has no git-ws tables (no run has been recorded here yet)",
        ),
        (&newer, "it was written by a newer git-ws"),
        (&older, "it was written by an older git-ws"),
    ] {
        let before = files_beside(path);
        let err = ConsolidationDatabase::open_read_only(path).err().unwrap();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "failed to open database {}: {says}",
                path.display()
            )),
            "{text}"
        );
        assert!(!text.contains('\n'), "{text}");
        assert_eq!(files_beside(path), before, "{}", path.display());
    }
    // The null device reads as empty, and no journal appears beside it.
    let err = ConsolidationDatabase::open_read_only(std::path::Path::new("/dev/null"))
        .err()
        .unwrap();
    assert!(matches!(err, DbError::NothingRecorded { .. }), "{err:?}");
    assert!(!std::path::Path::new("/dev/null-journal").exists());
}

#[test]
fn a_reader_reads_a_recorded_run_and_cannot_write() {
    let (dir, path, mut db) = fresh();
    let (info, _) = seed_run(&mut db);
    drop(db);
    let before = files_beside(&path);
    let mut db = ConsolidationDatabase::open_read_only(&path).unwrap();
    assert_eq!(db.get_all_runs(10).unwrap().len(), 1);
    assert!(db.set_run_state(&info.run_id, RunState::Finished).is_err());
    drop(db);
    assert_eq!(files_beside(&path), before);
    // Beside a live writer, the reader sees what it committed.
    let mut writer = ConsolidationDatabase::open(&path).unwrap();
    writer
        .set_run_state(&info.run_id, RunState::Running)
        .unwrap();
    let mut db = ConsolidationDatabase::open_read_only(&path).unwrap();
    assert_eq!(db.get_all_runs(10).unwrap()[0].state, RunState::Running);
    drop((db, writer));
    // A path with URI characters in it is still a path.
    let odd = dir.path().join("a?b#c%d.db");
    std::fs::copy(&path, &odd).unwrap();
    let mut db = ConsolidationDatabase::open_read_only(&odd).unwrap();
    assert_eq!(db.get_all_runs(10).unwrap().len(), 1);
}

#[test]
fn review_actions_marks_and_followups_are_kept_with_who_and_when() {
    use crate::review::{ReviewAction, ReviewComment};
    let (_dir, path, mut db) = fresh();
    seed_run(&mut db);
    let act = |ws: &str, action: &str, at: &str| ReviewAction {
        workstream_id: Some(ws.to_string()),
        action: action.to_string(),
        who: "alice".to_string(),
        at: at.to_string(),
        detail: format!("{action} {ws}"),
    };
    db.record_review_action(
        SEED_RUN,
        &act("ws-01", ReviewAction::LEAVE_OUT, "2026-12-07T10:00:00Z"),
    )
    .unwrap();
    db.record_review_action(
        SEED_RUN,
        &act("ws-03", ReviewAction::LEAVE_OUT, "2026-12-07T10:01:00Z"),
    )
    .unwrap();
    db.record_review_action(
        SEED_RUN,
        &act("ws-03", ReviewAction::PUT_BACK, "2026-12-07T10:02:00Z"),
    )
    .unwrap();
    let marks = db.left_out(SEED_RUN).unwrap();
    assert_eq!(marks.len(), 1, "{marks:?}");
    assert_eq!(marks["ws-01"].who, "alice");
    assert_eq!(marks["ws-01"].at, "2026-12-07T10:00:00Z");
    let comments = vec![
        ReviewComment {
            path: "a.txt".into(),
            line: 2,
            body: "rename this".into(),
        },
        ReviewComment {
            path: "b.txt".into(),
            line: 9,
            body: "and this".into(),
        },
    ];
    let prompt = |id: &str| format!("prompt of {id}");
    let first = db
        .add_review_followup(
            SEED_RUN,
            "ws-01",
            "ws/r/ws-01",
            &comments,
            &prompt,
            "bob",
            "t1",
        )
        .unwrap();
    let second = db
        .add_review_followup(
            SEED_RUN,
            "ws-01",
            "ws/r/ws-01",
            &comments[..1],
            &prompt,
            "bob",
            "t2",
        )
        .unwrap();
    assert_eq!(
        (first.as_str(), second.as_str()),
        ("ws-01~review1", "ws-01~review2")
    );
    let f = db.review_followups(SEED_RUN).unwrap();
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].prompt, "prompt of ws-01~review1");
    assert_eq!(f[1].start_branch, "ws/r/ws-01");
    let actions = db.review_actions(SEED_RUN).unwrap();
    assert_eq!(actions.len(), 5);
    assert_eq!(actions[3].action, ReviewAction::COMMENTS);
    assert!(actions[3]
        .detail
        .starts_with("2 comments sent as follow-up ws-01~review1"));
    assert!(db.review_followups("no-such-run").unwrap().is_empty());
    // A reader sees the same.
    drop(db);
    let mut ro = ConsolidationDatabase::open_read_only(&path).unwrap();
    assert_eq!(ro.left_out(SEED_RUN).unwrap().len(), 1);
}

#[test]
fn fix_ups_are_follow_ups_with_their_attempt_and_do_not_renumber_reviews() {
    use ws_core::fixup::FixupRecord;
    let (_dir, _path, mut db) = fresh();
    seed_run(&mut db);
    let rec = FixupRecord {
        followup_id: "ws-01~fix1".into(),
        workstream_id: "ws-01".into(),
        attempt: 1,
        max_attempts: 2,
        reason: "conflict".into(),
        detail: "conflicts with the integration in a.txt".into(),
        integration_tip: "abc".into(),
        at: "2026-12-07T10:00:00Z".into(),
    };
    db.add_fixup(SEED_RUN, &rec, "refs/ws/r/fixup/ws-01.fix1", "fix it")
        .unwrap();
    assert!(
        db.add_fixup(SEED_RUN, &rec, "x", "again").is_err(),
        "one row per attempt"
    );
    assert_eq!(db.fixups(SEED_RUN).unwrap(), vec![rec]);
    // It is a follow-up `--resume` runs, from its ref, with its prompt.
    let f = db.review_followups(SEED_RUN).unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].followup_id, "ws-01~fix1");
    assert_eq!(f[0].start_branch, "refs/ws/r/fixup/ws-01.fix1");
    assert_eq!(f[0].prompt, "fix it");
    // A review follow-up after it is still ~review1.
    let id = db
        .add_review_followup(
            SEED_RUN,
            "ws-01",
            "ws/r/ws-01",
            &[],
            &|id| format!("prompt of {id}"),
            "alice",
            "2026-12-07T11:00:00Z",
        )
        .unwrap();
    assert_eq!(id, "ws-01~review1");
    assert_eq!(db.fixups(SEED_RUN).unwrap().len(), 1);
    assert_eq!(db.fixup_limit(SEED_RUN).unwrap(), None);
    db.set_fixup_limit(SEED_RUN, 2).unwrap();
    db.set_fixup_limit(SEED_RUN, 3).unwrap();
    assert_eq!(db.fixup_limit(SEED_RUN).unwrap(), Some(3));
}
