//! The seed document's SQL queries, verbatim (only the example run id replaced by the real
//! one), against a database written by a real `git ws-run` (SQLite here; `pg.rs` runs the
//! same checks through `psql` on PostgreSQL).

use crate::common::Env;

/// The queries from fixtures/seed-queries.sql, split on the `-- ` headings.
pub fn seed_queries() -> Vec<(String, String)> {
    let text = include_str!("../../fixtures/seed-queries.sql");
    let mut out = Vec::new();
    let mut title = String::new();
    let mut body = String::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("-- ") {
            if !body.trim().is_empty() {
                out.push((title.clone(), body.trim().to_string()));
            }
            title = t.to_string();
            body.clear();
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    if !body.trim().is_empty() {
        out.push((title, body.trim().to_string()));
    }
    out
}

#[test]
fn every_seed_query_runs_verbatim_and_returns_the_expected_rows() {
    let env = Env::new();
    check_seed_queries(&env, &[], &|q| env.sql(q));
}

/// Two runs of `git ws-run EXTRA…` in `env`, then each seed query through `sql` (SQLite's C
/// API, or PostgreSQL's psql), checking the rows it returns.
pub fn check_seed_queries(env: &Env, extra: &[&str], sql: &dyn Fn(&str) -> Vec<Vec<String>>) {
    env.ws_cmd("ws-01", "sleep 0.2; echo a > a.txt");
    env.ws_cmd("ws-02", "echo b > b.txt");
    env.ws_cmd("ws-03", "echo 'boom' >&2; exit 2");
    let out = env.ws_run(&[&["--agents", "2"], extra].concat());
    out.expect(1);
    let run = out.run_id();
    let queries = seed_queries();
    assert_eq!(queries.len(), 4, "{queries:?}");
    let q = |i: usize| queries[i].1.replace("ma-run-20241202-190000", &run);

    // Most recent runs.
    let rows = sql(&q(0));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], run);
    assert_eq!(&rows[0][2..], ["3", "2", "1"]);

    // All results of the run, by start time.
    let rows = sql(&q(1));
    assert_eq!(rows.len(), 3);
    let mut ids: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["ws-01", "ws-02", "ws-03"]);
    for r in &rows {
        assert!(r[0].starts_with("agent-"), "{r:?}");
        assert!(r[3].parse::<f64>().unwrap() > 0.0, "{r:?}");
    }

    // Errors.
    let rows = sql(&q(2));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], "CommandFailed");
    assert_eq!(rows[0][2], "ws-03");

    // Agent performance comparison.
    let rows = sql(&q(3));
    let total: i64 = rows.iter().map(|r| r[1].parse::<i64>().unwrap()).sum();
    let completed: i64 = rows.iter().map(|r| r[2].parse::<i64>().unwrap()).sum();
    let failed: i64 = rows.iter().map(|r| r[3].parse::<i64>().unwrap()).sum();
    assert_eq!((total, completed, failed), (3, 2, 1));
    for r in &rows {
        assert!(r[4].parse::<f64>().unwrap() > 0.0, "avg_duration {r:?}");
    }

    // A second run lists first.
    env.ws_run(&[&["--agents", "1", "--only", "ws-02"], extra].concat())
        .expect(0);
    let rows = sql(&q(0));
    assert_eq!(rows.len(), 2);
    assert_ne!(rows[0][0], run, "newest first: {rows:?}");
}

#[test]
fn totals_are_written_at_the_end_and_each_result_as_it_finishes() {
    let env = Env::new();
    env.ws_cmd("one", "echo 1 > one.txt");
    env.ws_cmd(
        "two",
        "echo 2 > two.txt && git add -A && git commit -qm two",
    );
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(0);
    let run = out.run_id();
    let rows = env.sql(&format!(
        "SELECT total_workstreams, completed_count, failed_count, skipped_count, total_files_modified, total_commits, total_errors, total_warnings FROM consolidated_runs WHERE run_id = '{run}'"
    ));
    // `one` left work uncommitted: git-ws committed it, a note and not a warning.
    assert_eq!(rows, vec![vec!["2", "2", "0", "0", "2", "2", "0", "0"]]);
    let summary = env.sql(&format!(
        "SELECT execution_summary, recommendations FROM consolidated_runs WHERE run_id = '{run}'"
    ));
    let recs: serde_json::Value = serde_json::from_str(&summary[0][1]).unwrap();
    assert!(recs.as_array().unwrap().iter().any(|r| r
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains("ready for merge")));
    let _: serde_json::Value = serde_json::from_str(&summary[0][0]).unwrap();
}
