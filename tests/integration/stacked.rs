//! Stacked dependencies: a dependent starts from its dependencies' work (merged onto the
//! base), or from the base with `"stack": false`; a conflict among its dependencies fails
//! it naming both; `--rerun-failed` keeps the stacking.

use crate::common::{result_json, status, Env};
use serde_json::json;

fn errors(env: &Env, run: &str, ws: &str) -> String {
    result_json(env, run, ws, "errors").to_string()
}

#[test]
fn a_dependent_sees_its_dependency_and_records_only_its_own_commits() {
    let env = Env::new();
    env.ws_cmd("a", "echo a > a.txt");
    env.ws(
        "b",
        json!({"id": "b", "command": "test -f a.txt && echo b > b.txt", "depends_on": ["a"]}),
    );
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(0);
    let run = out.run_id();
    assert_eq!(status(&env, &run, "b"), "completed");
    let files = env.git(&["ls-tree", "-r", "--name-only", &format!("ws/{run}/b")]);
    assert!(
        files.contains("a.txt") && files.contains("b.txt"),
        "{files}"
    );
    let commits = result_json(&env, &run, "b", "commits_created");
    assert_eq!(commits.as_array().map(Vec::len), Some(1), "{commits}");
}

#[test]
fn two_dependencies_are_merged_to_start_from() {
    let env = Env::new();
    env.ws_cmd("a", "echo a > a.txt");
    env.ws_cmd("b", "echo b > b.txt");
    env.ws(
        "c",
        json!({"id": "c", "command": "test -f a.txt && test -f b.txt && echo c > c.txt",
            "depends_on": ["a", "b"]}),
    );
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(0);
    assert_eq!(status(&env, &out.run_id(), "c"), "completed");
}

#[test]
fn conflicting_dependencies_fail_the_dependent_naming_both_and_the_paths() {
    let env = Env::new();
    env.ws_cmd("a", "echo from-a > same.txt");
    env.ws_cmd("b", "echo from-b > same.txt");
    env.ws(
        "c",
        json!({"id": "c", "command": "echo c > c.txt", "depends_on": ["a", "b"]}),
    );
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(1);
    let run = out.run_id();
    assert_eq!(status(&env, &run, "a"), "completed");
    assert_eq!(status(&env, &run, "b"), "completed");
    assert_eq!(status(&env, &run, "c"), "failed");
    let e = errors(&env, &run, "c");
    assert!(
        e.contains("its dependencies conflict: b conflicts with a in same.txt"),
        "{e}"
    );
    assert!(e.contains("DependencyFailed"), "{e}");
}

#[test]
fn stack_false_starts_from_the_base() {
    let env = Env::new();
    env.ws_cmd("a", "echo a > a.txt");
    env.ws(
        "b",
        json!({"id": "b", "command": "test ! -e a.txt && echo b > b.txt",
            "depends_on": ["a"], "stack": false}),
    );
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(0);
    let run = out.run_id();
    assert_eq!(status(&env, &run, "b"), "completed");
    let files = env.git(&["ls-tree", "-r", "--name-only", &format!("ws/{run}/b")]);
    assert!(!files.contains("a.txt"), "{files}");
}

#[test]
fn rerun_failed_keeps_stacking_on_the_earlier_runs_work() {
    let env = Env::new();
    let fixed = env.scratch("fixed");
    env.ws_cmd("a", "echo a > a.txt");
    env.ws(
        "b",
        json!({"id": "b", "command": format!("test -f a.txt && test -e '{}' && echo b > b.txt",
            fixed.display()), "depends_on": ["a"]}),
    );
    let first = env.ws_run(&["--agents", "2"]);
    first.expect(1);
    assert_eq!(status(&env, &first.run_id(), "b"), "failed");
    std::fs::write(&fixed, "").unwrap();
    let second = env.ws_run(&["--rerun-failed"]);
    second.expect(0);
    let run = second.run_id();
    assert_eq!(status(&env, &run, "b"), "completed");
    let files = env.git(&["ls-tree", "-r", "--name-only", &format!("ws/{run}/b")]);
    assert!(
        files.contains("a.txt") && files.contains("b.txt"),
        "{files}"
    );
}

/// `git ws-merge ARGS --format json`, parsed.
fn merge_json(env: &Env, args: &[&str]) -> serde_json::Value {
    let out = env
        .command("git")
        .arg("ws-merge")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn ws_merge_leaves_out_the_dependents_of_a_dependency_left_out() {
    let env = Env::new();
    env.ws_cmd("x", "echo x > same.txt");
    // a is the bigger change: the forecast merges x first, and a conflicts with it.
    env.ws_cmd(
        "a",
        "echo a > same.txt && seq 1 50 > a1.txt && seq 1 50 > a2.txt",
    );
    env.ws(
        "b",
        json!({"id": "b", "command": "echo b > b.txt", "depends_on": ["a"]}),
    );
    env.ws_cmd("c", "echo c > c.txt");
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(0);
    let run = out.run_id();
    let v = merge_json(&env, &[&run]);
    let excluded = v["excluded"].as_array().unwrap();
    let a = excluded.iter().find(|x| x["workstream_id"] == "a").unwrap();
    assert_eq!(a["reason"], "conflict", "{v:#}");
    let b = excluded.iter().find(|x| x["workstream_id"] == "b").unwrap();
    assert_eq!(b["reason"], "dependency-left-out", "{v:#}");
    assert!(b["detail"].as_str().unwrap().contains("work of a"), "{b}");
    let merged = v["merged"].to_string();
    assert!(
        merged.contains("\"c\"") && !merged.contains("\"b\""),
        "{merged}"
    );
}

#[test]
fn the_forecast_reports_no_conflict_between_a_dependent_and_its_dependency() {
    let env = Env::new();
    env.ws_cmd("a", "sed -i 's/^two$/TWO/' src/lib.txt");
    env.ws(
        "b",
        json!({"id": "b", "command": "sed -i 's/^TWO$/2/' src/lib.txt", "depends_on": ["a"]}),
    );
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(0);
    let run = out.run_id();
    let pairs = env.sql(&format!(
        "SELECT ws_a, ws_b, clean FROM ws_forecast_pairs WHERE run_id = '{run}'"
    ));
    assert!(
        !pairs.contains(&vec!["a".into(), "b".into(), "0".into()]),
        "{pairs:?}"
    );
    let v = merge_json(&env, &[&run]);
    assert_eq!(v["excluded"], json!([]), "{v:#}");
    let lib = env.git(&["show", &format!("ws/{run}/integration:src/lib.txt")]);
    assert!(lib.contains("\n2\n") && !lib.contains("TWO"), "{lib}");
}

#[test]
fn resume_keeps_stacking() {
    let env = Env::new();
    let started = env.scratch("b-started");
    let go = env.scratch("go");
    env.ws_cmd("a", "echo a > a.txt");
    env.ws(
        "b",
        json!({"id": "b", "command": format!(
            "test -f a.txt && touch '{}' && {{ [ -e '{}' ] || sleep 30; }} && echo b > b.txt",
            started.display(), go.display()), "depends_on": ["a"]}),
    );
    let run = env.spawn_run(&["--agents", "1", "--grace", "300ms"]);
    crate::common::wait_until(std::time::Duration::from_secs(10), "b to start", || {
        started.exists()
    });
    crate::common::signal(run.pid(), libc::SIGKILL);
    let _ = run.wait(std::time::Duration::from_secs(5));
    let run_id = env.sql("SELECT run_id FROM ws_runs")[0][0].clone();
    std::fs::write(&go, "").unwrap();
    env.ws_run(&["--resume", &run_id]).expect(0);
    assert_eq!(status(&env, &run_id, "b"), "completed");
    let files = env.git(&["ls-tree", "-r", "--name-only", &format!("ws/{run_id}/b")]);
    assert!(
        files.contains("a.txt") && files.contains("b.txt"),
        "{files}"
    );
    let commits = result_json(&env, &run_id, "b", "commits_created");
    assert_eq!(commits.as_array().map(Vec::len), Some(1), "{commits}");
}

#[test]
fn ws_merge_test_leaves_out_the_dependents_of_a_dependency_that_breaks_the_tests() {
    let env = Env::new();
    // a breaks the tests (it writes `broken`); b, stacked on a, holds a's work; c is fine.
    env.ws_cmd("a", "echo a > broken");
    env.ws(
        "b",
        json!({"id": "b", "command": "echo b > b.txt", "depends_on": ["a"]}),
    );
    env.ws_cmd("c", "echo c > c.txt");
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(0);
    let run = out.run_id();
    // One test at a time (serial bisection) and three at once (parallel).
    for jobs in ["1", "3"] {
        let v = merge_json(&env, &[&run, "--test", "test ! -e broken", "--jobs", jobs]);
        let excluded = v["excluded"].as_array().unwrap();
        let a = excluded.iter().find(|x| x["workstream_id"] == "a").unwrap();
        assert_eq!(a["reason"], "breaks-tests", "{v:#}");
        let b = excluded.iter().find(|x| x["workstream_id"] == "b").unwrap();
        assert_eq!(b["reason"], "dependency-left-out", "{v:#}");
        assert!(b["detail"].as_str().unwrap().contains("work of a"), "{b}");
        let merged = v["merged"].to_string();
        assert!(
            merged.contains("\"c\"") && !merged.contains("\"b\"") && !merged.contains("\"a\""),
            "{merged}"
        );
    }
}

#[test]
fn ws_merge_test_does_not_let_a_dependent_that_fixes_the_tests_bring_its_dependency_in() {
    let env = Env::new();
    // a breaks the tests; b, stacked on a, repairs them: b alone would still bring a's work.
    env.ws_cmd("a", "echo a > broken && echo a > a.txt");
    env.ws(
        "b",
        json!({"id": "b", "command": "rm broken && echo b > b.txt", "depends_on": ["a"]}),
    );
    env.ws_cmd("c", "echo c > c.txt");
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(0);
    let run = out.run_id();
    let v = merge_json(&env, &[&run, "--test", "test ! -e broken"]);
    let merged = v["merged"].to_string();
    let excluded = v["excluded"].as_array().unwrap();
    // Either both land (a's work with b's repair: merged in order, a first, and the tip
    // passes) or, when a is left out, so is b.
    if let Some(a) = excluded.iter().find(|x| x["workstream_id"] == "a") {
        assert_eq!(a["reason"], "breaks-tests", "{v:#}");
        let b = excluded.iter().find(|x| x["workstream_id"] == "b").unwrap();
        assert_eq!(b["reason"], "dependency-left-out", "{v:#}");
    } else {
        assert!(merged.contains("\"b\""), "{v:#}");
    }
}
