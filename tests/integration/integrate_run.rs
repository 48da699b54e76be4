//! `git ws-run --integrate` on real runs: the integration branch holds every cleanly
//! merging completed branch and not the conflicting one; with `--test`, a breaking branch is
//! left out by real test processes and the tips are recorded as tested; a following
//! `git ws-merge --test` reuses them (the test runs 0 times); a slow test never delays the
//! next workstream; integration never changes a workstream's own status; a shared run is
//! refused.

use crate::common::Env;

fn integration_tree(env: &Env, run: &str) -> String {
    env.git(&[
        "ls-tree",
        "-r",
        "--name-only",
        &format!("ws/{run}/integration"),
    ])
}

fn steps(env: &Env, run: &str) -> Vec<Vec<String>> {
    env.sql(&format!(
        "SELECT s.workstream_id, s.outcome, COALESCE(s.reason, ''), COALESCE(s.at, '') \
         FROM ws_integration_steps s JOIN ws_integrations i ON i.id = s.integration_id \
         WHERE i.run_id = '{run}' AND i.made_by = 'ws-run' ORDER BY s.position"
    ))
}

#[test]
fn the_run_ends_with_every_clean_branch_integrated_and_the_conflict_left_out() {
    let env = Env::new();
    env.write("README.md", "# Project\n\nA line everyone edits.\n");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "project"]);
    env.ws_cmd("a", "echo a > a.txt");
    env.ws_cmd("b", "echo b > b.txt");
    env.ws_cmd("c1", "printf '# Project\\n\\nC1 says so.\\n' > README.md");
    env.ws_cmd(
        "c2",
        "printf '# Project\\n\\nC2 says otherwise.\\n' > README.md",
    );
    env.ws_cmd("broken", "echo 'cannot do it' >&2; exit 3");
    let out = env.ws_run(&["--agents", "2", "--integrate"]);
    out.expect(1);
    let run = out.run_id();
    // The closing summary says what integration did.
    assert!(
        out.stdout
            .contains(&format!("integration: ws/{run}/integration at ")),
        "{}",
        out.stdout
    );
    let tree = integration_tree(&env, &run);
    assert!(tree.contains("a.txt") && tree.contains("b.txt"), "{tree}");
    let steps = steps(&env, &run);
    let merged: Vec<&str> = steps
        .iter()
        .filter(|s| s[1] == "merged")
        .map(|s| s[0].as_str())
        .collect();
    let conflicts: Vec<&str> = steps
        .iter()
        .filter(|s| s[2] == "conflict")
        .map(|s| s[0].as_str())
        .collect();
    assert_eq!(merged.len(), 3, "{steps:?}");
    assert_eq!(conflicts.len(), 1, "{steps:?}");
    assert!(["c1", "c2"].contains(&conflicts[0]));
    assert!(!merged.contains(&"broken"));
    // Each step says when it happened.
    assert!(steps.iter().all(|s| !s[3].is_empty()), "{steps:?}");
    // Integration does not change a workstream's own status.
    assert_eq!(crate::common::status(&env, &run, conflicts[0]), "completed");
    assert_eq!(crate::common::status(&env, &run, "broken"), "failed");
    // The report's JSON carries the integration.
    let rep = env.ws_report(&["--format", "json", &run]);
    assert!(
        rep.stdout.contains("\"made_by\": \"ws-run\"")
            || rep.stdout.contains("\"made_by\":\"ws-run\""),
        "{}",
        rep.stdout
    );
}

/// A project whose test fails once `BROKEN` exists; the test command counts its runs in
/// `count` (outside the repository).
fn tested_project(env: &Env, count: &std::path::Path) -> String {
    env.write(
        "test.sh",
        "test ! -e BROKEN || { echo 'BROKEN is here' ; exit 1; }\necho ok\n",
    );
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "tests"]);
    env.ws_cmd("ok1", "echo 1 > one.txt");
    env.ws_cmd("ok2", "echo 2 > two.txt");
    env.ws_cmd("breaker", "echo x > BROKEN");
    env.ws_cmd("ok3", "echo 3 > three.txt");
    format!("echo run >> '{}'; sh test.sh", count.display())
}

fn runs_counted(count: &std::path::Path) -> usize {
    std::fs::read_to_string(count)
        .unwrap_or_default()
        .lines()
        .count()
}

#[test]
fn with_a_test_the_breaker_is_left_out_the_tips_are_recorded_and_ws_merge_reuses_them() {
    let env = Env::new();
    let count = env.scratch("count");
    let cmd = tested_project(&env, &count);
    let out = env.ws_run(&["--agents", "2", "--integrate", "--test", &cmd]);
    out.expect(0);
    let run = out.run_id();
    let tree = integration_tree(&env, &run);
    assert!(!tree.contains("BROKEN"), "{tree}");
    for f in ["one.txt", "two.txt", "three.txt"] {
        assert!(tree.contains(f), "{tree}");
    }
    let steps = steps(&env, &run);
    assert!(
        steps
            .iter()
            .any(|s| s[0] == "breaker" && s[2] == "breaks-tests"),
        "{steps:?}"
    );
    // The breaker's own status is untouched.
    assert_eq!(crate::common::status(&env, &run, "breaker"), "completed");
    let tested = env.sql(&format!(
        "SELECT t.commit_sha, t.passed, COALESCE(t.started_at, '') FROM ws_integration_tests t \
         JOIN ws_integrations i ON i.id = t.integration_id WHERE i.run_id = '{run}'"
    ));
    assert!(!tested.is_empty());
    assert!(tested.iter().all(|t| !t[2].is_empty()), "{tested:?}");
    // The final tip was tested and passed.
    let tip = env.git(&["rev-parse", &format!("ws/{run}/integration")]);
    assert!(
        tested.iter().any(|t| t[0] == tip.trim() && t[1] == "1"),
        "{tested:?} / {tip}"
    );
    let before = runs_counted(&count);
    assert_eq!(before, tested.len());
    // ws-merge rebuilds the same tips: every verdict is reused, the test runs 0 times.
    let m = env
        .command("git")
        .args(["ws-merge", &run, "--test", &cmd, "--format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&m.stderr);
    let stdout = String::from_utf8_lossy(&m.stdout);
    assert_eq!(m.status.code(), Some(1), "{stderr}\n{stdout}");
    assert_eq!(runs_counted(&count), before, "{stderr}");
    assert!(stderr.contains("reused"), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(json["reused_tests"].as_u64().unwrap_or(0) > 0, "{stdout}");
    assert_eq!(json["test_runs"], 0, "{stdout}");
    let merged_tip = env.git(&["rev-parse", &format!("ws/{run}/integration")]);
    assert_eq!(merged_tip.trim(), tip.trim());
}

#[test]
fn a_slow_test_does_not_delay_the_next_workstream() {
    let env = Env::new();
    env.write("seed.txt", "seed\n");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "seed"]);
    // One agent: w2 starts when w1 ends; the test of w1's tip sleeps 3s meanwhile.
    env.ws_cmd("w1", "echo 1 > one.txt");
    env.ws(
        "w2",
        serde_json::json!({"id": "w2", "command": "echo 2 > two.txt", "depends_on": ["w1"]}),
    );
    let out = env.ws_run(&[
        "--agents",
        "1",
        "--integrate",
        "--test",
        "test -e one.txt && sleep 3 || true",
    ]);
    out.expect(0);
    let run = out.run_id();
    let t = |ws: &str, col: &str| {
        let rows = env.sql(&format!(
            "SELECT {col} FROM agent_results WHERE run_id = '{run}' AND workstream_id = '{ws}'"
        ));
        let v = rows[0][0].clone();
        chrono::DateTime::parse_from_rfc3339(&v)
            .map(|d| d.naive_utc())
            .or_else(|_| chrono::NaiveDateTime::parse_from_str(&v, "%Y-%m-%d %H:%M:%S%.f"))
            .unwrap_or_else(|e| panic!("{v}: {e}"))
    };
    let gap = t("w2", "start_time") - t("w1", "end_time");
    assert!(
        gap.num_milliseconds() < 2500,
        "w2 started {}ms after w1 ended",
        gap.num_milliseconds()
    );
    // Both merged, and the tip was tested.
    let tree = integration_tree(&env, &run);
    assert!(
        tree.contains("one.txt") && tree.contains("two.txt"),
        "{tree}"
    );
    // The tests ran in a spare pool worktree past the agent's (agent-2), kept in the pool.
    let wts = env.worktrees();
    assert!(wts.iter().any(|w| w.ends_with("/agent-1")), "{wts:?}");
    assert!(wts.iter().any(|w| w.ends_with("/agent-2")), "{wts:?}");
}

#[test]
fn integrate_on_a_shared_run_is_refused_naming_the_flag() {
    let env = Env::new();
    env.write("seed.txt", "seed\n");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "seed"]);
    env.ws_cmd("w1", "echo 1 > one.txt");
    let out = env.ws_run(&["--integrate", "--remote", "origin"]);
    out.expect(2);
    assert!(out.stderr.contains("--integrate"), "{}", out.stderr);
}
