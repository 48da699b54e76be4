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

/// One `git worktree list --porcelain` entry.
struct Listed {
    path: String,
    lines: Vec<String>,
}

fn listed(env: &Env) -> Vec<Listed> {
    env.git(&["worktree", "list", "--porcelain"])
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            let lines: Vec<String> = b.lines().map(str::to_string).collect();
            Listed {
                path: lines[0].strip_prefix("worktree ").unwrap().to_string(),
                lines,
            }
        })
        .collect()
}

/// The pool as a run must leave it: at most `max` agent worktrees, each git-ws's (locked
/// with git-ws's reason), detached, clean apart from ignored files, complete (no
/// half-made marker), nothing prunable; no `git-ws-tmp/*` branch. Returns their paths.
pub fn assert_pool_tidy(env: &Env, max: usize) -> Vec<String> {
    let all = listed(env);
    let pool: Vec<&Listed> = all.iter().skip(1).collect();
    assert!(pool.len() <= max, "more than {max} pool worktrees: {:?}", env.worktrees());
    for wt in &pool {
        let has = |p: &str| wt.lines.iter().any(|l| l.starts_with(p));
        assert!(wt.path.contains("/.git/ws/agent-"), "a stray worktree: {}", wt.path);
        assert!(has("detached"), "not detached: {:?}", wt.lines);
        assert!(has("locked git-ws"), "not locked by git-ws: {:?}", wt.lines);
        assert!(!has("prunable"), "prunable: {:?}", wt.lines);
        let status = env.git(&["-C", &wt.path, "status", "--porcelain"]);
        assert!(status.trim().is_empty(), "{} not clean: {status}", wt.path);
        let name = std::path::Path::new(&wt.path).file_name().unwrap().to_str().unwrap();
        let admin = env.repo.join(".git/worktrees").join(format!("ws-{name}"));
        assert!(!admin.join("git-ws-creating").exists(), "{name} half-made");
    }
    assert!(env.git(&["branch", "--list", "git-ws-tmp/*"]).trim().is_empty());
    let mut paths: Vec<String> = pool.iter().map(|w| w.path.clone()).collect();
    paths.sort();
    paths
}

#[test]
fn the_pool_is_kept_reused_and_pruned_on_request() {
    let env = Env::new();
    env.write(".gitignore", "target/\n");
    env.git(&["add", ".gitignore"]);
    env.git(&["commit", "-qm", "ignore target"]);
    env.git(&["config", "ws.keepIgnored", "target"]);
    // Each workstream records whether the cache an earlier one left is there.
    for i in 1..=3 {
        env.ws_cmd(
            &format!("w{i}"),
            &format!(
                "test -e target/cache && echo warm > warm{i}.txt; mkdir -p target && echo c > target/cache; echo {i} > out{i}.txt"
            ),
        );
    }
    let first = env.ws_run(&["--agents", "2", "-q"]);
    first.expect(0);
    let pool = assert_pool_tidy(&env, 2);
    assert_eq!(pool.len(), 2, "the pool is kept by default");
    // Detached at the base: the run's branches are free to check out anywhere.
    let run = first.run_id();
    env.git(&["checkout", "-q", &format!("ws/{run}/w1")]);
    env.git(&["checkout", "-q", "main"]);
    // `git worktree prune` leaves git-ws's locked worktrees alone.
    env.git(&["worktree", "prune"]);
    assert_eq!(assert_pool_tidy(&env, 2).len(), 2);

    // The next run reuses the pool, caches and all; fewer agents leave the others idle.
    let second = env.ws_run(&["--agents", "1", "-q"]);
    second.expect(0);
    let warm = env.git(&["ls-tree", "--name-only", "-r", &format!("ws/{}/w1", second.run_id())]);
    assert!(warm.contains("warm1.txt"), "the cache did not survive: {warm}");
    assert_eq!(assert_pool_tidy(&env, 2).len(), 2);

    // --remove-worktrees removes this run's worktrees (agent-1 here), not the others.
    env.ws_run(&["--agents", "1", "-q", "--remove-worktrees"]).expect(0);
    let left = assert_pool_tidy(&env, 2);
    assert_eq!(left.len(), 1);
    assert!(left[0].ends_with("/agent-2"), "{left:?}");

    // --prune-worktrees removes the rest, says so, exits 0; runs and branches stay.
    let branches_before = env.git(&["branch", "--list", "ws/*"]);
    let pruned = env.ws_run(&["--prune-worktrees"]);
    pruned.expect(0);
    assert!(pruned.stdout.contains("removed agent worktree agent-2"), "{}", pruned.stdout);
    assert_eq!(env.worktrees().len(), 1);
    assert!(!env.repo.join(".git/ws").exists());
    assert!(!env.repo.join(".git/worktrees/ws-agent-2").exists());
    assert_eq!(env.git(&["branch", "--list", "ws/*"]), branches_before);
    assert_eq!(env.sql("SELECT count(*) FROM ws_runs")[0][0], "3");
    // Pruning an empty pool is fine too.
    env.ws_run(&["--prune-worktrees"]).expect(0);
}

#[test]
fn keep_worktrees_false_in_git_config_removes_them_and_the_flag_wins() {
    let env = Env::new();
    trivial(&env, 2);
    env.git(&["config", "ws.keepWorktrees", "false"]);
    env.ws_run(&["--agents", "2", "-q"]).expect(0);
    assert_eq!(env.worktrees().len(), 1);
    env.ws_run(&["--agents", "2", "-q", "--keep-worktrees"]).expect(0);
    assert_eq!(assert_pool_tidy(&env, 2).len(), 2);
    env.git(&["config", "ws.keepWorktrees", "maybe"]);
    let bad = env.ws_run(&["--agents", "2", "-q"]);
    bad.expect(2);
    assert!(bad.stderr.contains("ws.keepWorktrees"), "{}", bad.stderr);
}

#[test]
fn idle_worktrees_past_the_expiry_are_pruned_at_the_next_run() {
    let env = Env::new();
    trivial(&env, 3);
    env.ws_run(&["--agents", "3", "-q"]).expect(0);
    assert_eq!(assert_pool_tidy(&env, 3).len(), 3);
    // agent-3 was last used 20 days ago.
    let state = env.repo.join(".git/worktrees/ws-agent-3/git-ws-slot");
    let text = std::fs::read_to_string(&state).unwrap();
    let old = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 20 * 86_400;
    let base = text.lines().next().unwrap().to_string();
    std::fs::write(&state, format!("{base}\nused {old}\n")).unwrap();
    env.ws_run(&["--agents", "1", "-q", "--only", "w1"]).expect(0);
    let left = assert_pool_tidy(&env, 3);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(!left.iter().any(|p| p.ends_with("/agent-3")));
    // ws.worktreeExpiry=never keeps them however old.
    env.git(&["config", "ws.worktreeExpiry", "never"]);
    let state = env.repo.join(".git/worktrees/ws-agent-2/git-ws-slot");
    std::fs::write(&state, format!("{base}\nused 1\n")).unwrap();
    env.ws_run(&["--agents", "1", "-q", "--only", "w1"]).expect(0);
    assert_eq!(assert_pool_tidy(&env, 3).len(), 2);
    env.git(&["config", "ws.worktreeExpiry", "fortnight"]);
    let bad = env.ws_run(&["--agents", "1", "-q"]);
    bad.expect(2);
    assert!(bad.stderr.contains("ws.worktreeExpiry"), "{}", bad.stderr);
}

#[test]
fn a_broken_pool_is_repaired_not_charged_to_a_workstream() {
    let env = Env::new();
    trivial(&env, 6);
    env.ws_run(&["--agents", "3", "-q"]).expect(0);
    let common = env.repo.join(".git");
    // agent-1: its directory is gone. agent-2: half-made (as a crash during creation
    // leaves it). agent-3: stale locks everywhere, `locked` removed, HEAD on a branch.
    std::fs::remove_dir_all(common.join("ws/agent-1")).unwrap();
    std::fs::write(common.join("worktrees/ws-agent-2/git-ws-creating"), "").unwrap();
    std::fs::remove_file(common.join("ws/agent-2/src/lib.txt")).unwrap();
    let admin3 = common.join("worktrees/ws-agent-3");
    env.git(&["-C", common.join("ws/agent-3").to_str().unwrap(), "checkout", "-q", "-b", "stray"]);
    std::fs::write(admin3.join("index.lock"), "").unwrap();
    std::fs::write(admin3.join("HEAD.lock"), "").unwrap();
    std::fs::remove_file(admin3.join("locked")).unwrap();
    let out = one_run(&env, 6, &[]);
    assert!(out.is_ok(), "{out:?}");
    assert_eq!(assert_pool_tidy(&env, 3).len(), 3);
}
