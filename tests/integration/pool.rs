//! The agent worktree pool: no failure of git-ws's own is ever charged to a workstream
//! (loops of fresh runs and of consecutive runs), the pool is kept between runs, locked in
//! git's sense and pruned on request, and a coordinator killed at a random instant leaves
//! nothing a `--resume` cannot finish. Iteration counts come from `GIT_WS_LOOPS` (the suite
//! runs short loops; `scripts/stress.sh` runs long ones).

use crate::common::Env;

/// Iterations of a loop: `GIT_WS_LOOPS` if set, else `default`.
fn loops(default: usize) -> usize {
    std::env::var("GIT_WS_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Trivial workstreams `w1..=n`, each writing its own file.
fn trivial(env: &Env, n: usize) {
    for i in 1..=n {
        env.ws_cmd(&format!("w{i}"), &format!("echo {i} > out{i}.txt"));
    }
}

/// The `GitError` messages a run recorded (empty when none).
fn git_errors(env: &Env, run: &str) -> Vec<String> {
    env.sql(&format!(
        "SELECT workstream_id || ': ' || error_message FROM consolidated_errors \
         WHERE run_id = '{run}' AND error_type = 'GitError'"
    ))
    .into_iter()
    .map(|r| r[0].clone())
    .collect()
}

/// One run of `n` trivial workstreams on 3 agents; `Err` describes a spurious failure.
fn one_run(env: &Env, n: usize, extra: &[&str]) -> Result<String, String> {
    let mut args = vec!["--agents", "3", "-q"];
    args.extend_from_slice(extra);
    let out = env.ws_run(&args);
    let run = out.run_id();
    if out.code != 0 {
        let errors = if run.starts_with("ma-run-") {
            git_errors(env, &run)
        } else {
            Vec::new()
        };
        return Err(format!(
            "exit {}: {errors:?}\n{}{}",
            out.code, out.stdout, out.stderr
        ));
    }
    let completed = env.sql(&format!(
        "SELECT count(*) FROM agent_results WHERE run_id = '{run}' AND status = 'completed'"
    ));
    if completed[0][0] != n.to_string() {
        return Err(format!("{} of {n} completed", completed[0][0]));
    }
    Ok(run)
}

fn report(what: &str, iterations: usize, failures: &[String]) {
    eprintln!(
        "{what}: {} spurious failure(s) in {iterations} runs",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{what}: {} of {iterations} runs failed:\n{}",
        failures.len(),
        failures.join("\n---\n")
    );
}

#[test]
fn fresh_repositories_never_fail_a_workstream_for_git_ws_s_own_reasons() {
    let n = loops(6);
    let mut failures = Vec::new();
    for _ in 0..n {
        let env = Env::new();
        trivial(&env, 6);
        if let Err(e) = one_run(&env, 6, &[]) {
            failures.push(e);
        }
    }
    report("fresh repositories", n, &failures);
}

#[test]
fn consecutive_runs_in_one_repository_never_fail_a_workstream() {
    let n = loops(6);
    let env = Env::new();
    trivial(&env, 9);
    let mut failures = Vec::new();
    for _ in 0..n {
        if let Err(e) = one_run(&env, 9, &[]) {
            failures.push(e);
        }
    }
    report("consecutive runs", n, &failures);
}
