//! The agent worktree pool: no failure of git-ws's own is ever charged to a workstream
//! (loops of fresh runs and of consecutive runs), the pool is kept between runs, locked in
//! git's sense and pruned on request, and a coordinator killed at a random instant leaves
//! nothing a `--resume` cannot finish. Iteration counts come from `GIT_WS_LOOPS` (the suite
//! runs short loops; `scripts/stress.sh` runs long ones).

use crate::common::{loops, Env, Rng};

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

/// The agent worktree pool of `env`'s repository by default: `.repo.ws-pool` next to it.
pub fn pool_dir(env: &Env) -> std::path::PathBuf {
    env.repo.parent().unwrap().join(".repo.ws-pool")
}

/// The pool as a run must leave it: at most `max` agent worktrees, each git-ws's (locked
/// with git-ws's reason), detached, clean apart from ignored files, complete (no
/// half-made marker), nothing prunable; no `git-ws-tmp/*` branch. Returns their paths.
pub fn assert_pool_tidy(env: &Env, max: usize) -> Vec<String> {
    let all = listed(env);
    let pool: Vec<&Listed> = all.iter().skip(1).collect();
    assert!(
        pool.len() <= max,
        "more than {max} pool worktrees: {:?}",
        env.worktrees()
    );
    for wt in &pool {
        let has = |p: &str| wt.lines.iter().any(|l| l.starts_with(p));
        assert!(
            wt.path.contains("/.repo.ws-pool/agent-"),
            "a stray worktree: {}",
            wt.path
        );
        assert!(has("detached"), "not detached: {:?}", wt.lines);
        assert!(has("locked git-ws"), "not locked by git-ws: {:?}", wt.lines);
        assert!(!has("prunable"), "prunable: {:?}", wt.lines);
        let status = env.git(&["-C", &wt.path, "status", "--porcelain"]);
        assert!(status.trim().is_empty(), "{} not clean: {status}", wt.path);
        let name = std::path::Path::new(&wt.path)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        let admin = env.repo.join(".git/worktrees").join(format!("ws-{name}"));
        assert!(!admin.join("git-ws-creating").exists(), "{name} half-made");
    }
    assert!(env
        .git(&["branch", "--list", "git-ws-tmp/*"])
        .trim()
        .is_empty());
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
    let warm = env.git(&[
        "ls-tree",
        "--name-only",
        "-r",
        &format!("ws/{}/w1", second.run_id()),
    ]);
    assert!(
        warm.contains("warm1.txt"),
        "the cache did not survive: {warm}"
    );
    assert_eq!(assert_pool_tidy(&env, 2).len(), 2);

    // --remove-worktrees removes this run's worktrees (agent-1 here), not the others.
    env.ws_run(&["--agents", "1", "-q", "--remove-worktrees"])
        .expect(0);
    let left = assert_pool_tidy(&env, 2);
    assert_eq!(left.len(), 1);
    assert!(left[0].ends_with("/agent-2"), "{left:?}");

    // --prune-worktrees removes the rest, says so, exits 0; runs and branches stay.
    let branches_before = env.git(&["branch", "--list", "ws/*"]);
    let pruned = env.ws_run(&["--prune-worktrees"]);
    pruned.expect(0);
    assert!(
        pruned.stdout.contains("removed agent worktree agent-2"),
        "{}",
        pruned.stdout
    );
    assert_eq!(env.worktrees().len(), 1);
    assert!(!env.repo.join(".git/ws").exists());
    assert!(!pool_dir(&env).exists());
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
    env.ws_run(&["--agents", "2", "-q", "--keep-worktrees"])
        .expect(0);
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
    env.ws_run(&["--agents", "1", "-q", "--only", "w1"])
        .expect(0);
    let left = assert_pool_tidy(&env, 3);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(!left.iter().any(|p| p.ends_with("/agent-3")));
    // ws.worktreeExpiry=never keeps them however old.
    env.git(&["config", "ws.worktreeExpiry", "never"]);
    let state = env.repo.join(".git/worktrees/ws-agent-2/git-ws-slot");
    std::fs::write(&state, format!("{base}\nused 1\n")).unwrap();
    env.ws_run(&["--agents", "1", "-q", "--only", "w1"])
        .expect(0);
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
    let pool = pool_dir(&env);
    std::fs::remove_dir_all(pool.join("agent-1")).unwrap();
    std::fs::write(common.join("worktrees/ws-agent-2/git-ws-creating"), "").unwrap();
    std::fs::remove_file(pool.join("agent-2/src/lib.txt")).unwrap();
    let admin3 = common.join("worktrees/ws-agent-3");
    env.git(&[
        "-C",
        pool.join("agent-3").to_str().unwrap(),
        "checkout",
        "-q",
        "-b",
        "stray",
    ]);
    std::fs::write(admin3.join("index.lock"), "").unwrap();
    std::fs::write(admin3.join("HEAD.lock"), "").unwrap();
    std::fs::remove_file(admin3.join("locked")).unwrap();
    let out = one_run(&env, 6, &[]);
    assert!(out.is_ok(), "{out:?}");
    assert_eq!(assert_pool_tidy(&env, 3).len(), 3);
}

/// A directory nothing can be added to or removed from (`chattr +i` as root, else mode
/// 0500) until dropped.
struct Frozen(std::path::PathBuf);

impl Frozen {
    fn new(dir: std::path::PathBuf) -> Frozen {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let ok = if root {
            std::process::Command::new("chattr")
                .arg("+i")
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success())
        } else {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500)).is_ok()
        };
        assert!(ok, "failed to make {} unwritable", dir.display());
        assert!(
            std::fs::write(dir.join("probe"), "").is_err(),
            "{} is still writable",
            dir.display()
        );
        Frozen(dir)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
    }
}

/// Break agent slot `k` for good: its admin dir marked half-made and made unwritable, so
/// neither the checkout (it writes `index.lock` there) nor the rebuild can succeed.
fn break_slot(env: &Env, k: usize) -> Frozen {
    let admin = env.repo.join(format!(".git/worktrees/ws-agent-{k}"));
    std::fs::write(admin.join("git-ws-creating"), "").unwrap();
    Frozen::new(admin)
}

#[test]
fn a_slot_that_cannot_be_prepared_hands_its_workstream_to_another_agent() {
    let env = Env::new();
    trivial(&env, 6);
    env.ws_run(&["--agents", "3", "-q"]).expect(0);
    let _frozen = break_slot(&env, 1);
    let out = env.ws_run(&["--agents", "3"]);
    out.expect(0);
    let run = out.run_id();
    assert!(
        out.stderr
            .contains("agent-1 could not prepare a worktree for"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("handing it to another agent"),
        "{}",
        out.stderr
    );
    assert!(git_errors(&env, &run).is_empty());
    let agents = env.sql(&format!(
        "SELECT DISTINCT agent_id FROM agent_results WHERE run_id = '{run}' ORDER BY 1"
    ));
    assert_eq!(agents, vec![vec!["agent-2"], vec!["agent-3"]]);
}

#[test]
fn when_no_agent_can_prepare_a_worktree_the_error_says_whose_fault_it_is() {
    let env = Env::new();
    trivial(&env, 4);
    env.ws_run(&["--agents", "2", "-q"]).expect(0);
    let frozen = [break_slot(&env, 1), break_slot(&env, 2)];
    let out = env.ws_run(&["--agents", "2", "-q"]);
    out.expect(1);
    let run = out.run_id();
    let errors = git_errors(&env, &run);
    assert_eq!(errors.len(), 4, "{errors:?}");
    for e in &errors {
        assert!(
            e.contains("a fault of git-ws, not of the workstream"),
            "{e}"
        );
        assert!(e.contains("git ws-run --prune-worktrees"), "{e}");
        assert!(e.contains("git ws-run --rerun-failed"), "{e}");
    }
    // Doing what the message says works.
    drop(frozen);
    env.ws_run(&["--prune-worktrees"]).expect(0);
    env.ws_run(&["--rerun-failed", "-q"]).expect(0);
}

/// What one kill-and-resume iteration found wrong (empty when all is well).
fn check_after_crash(env: &Env, run: &str, ids: &[String], agents: usize) -> Vec<String> {
    let mut wrong = Vec::new();
    let rows = env.sql(&format!(
        "SELECT workstream_id, status FROM agent_results WHERE run_id = '{run}' ORDER BY 1"
    ));
    let got: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    if got != ids.iter().map(String::as_str).collect::<Vec<_>>() {
        wrong.push(format!("results lost or doubled: {got:?}"));
    }
    for r in &rows {
        if r[1] != "completed" {
            let errors = env.sql(&format!(
                "SELECT error_type || ': ' || error_message FROM consolidated_errors WHERE run_id = '{run}' AND workstream_id = '{}'",
                r[0]
            ));
            wrong.push(format!(
                "{} {} because of the crash: {errors:?}",
                r[0], r[1]
            ));
        }
    }
    let state = env.sql(&format!("SELECT state FROM ws_runs WHERE run_id = '{run}'"));
    if state != vec![vec!["finished"]] {
        wrong.push(format!("run state {state:?}"));
    }
    let mut branches: Vec<String> = env
        .git(&[
            "branch",
            "--list",
            "--format=%(refname:short)",
            "ws/*",
            "git-ws-tmp/*",
        ])
        .lines()
        .filter(|b| !b.starts_with("ws/") || b.starts_with(&format!("ws/{run}/")))
        .map(|b| b.rsplit('/').next().unwrap().to_string())
        .collect();
    branches.sort();
    if branches != ids {
        wrong.push(format!("branches of {run}: {branches:?}"));
    }
    let report = env
        .repo
        .join(format!("reports/multi_agent_consolidated_{run}.md"));
    if !report.is_file() {
        wrong.push("no report".to_string());
    }
    if let Err(e) = std::panic::catch_unwind(|| assert_pool_tidy(env, agents)) {
        wrong.push(format!("pool: {:?}", e.downcast_ref::<String>()));
    }
    wrong
}

/// SIGKILL the coordinator at a random instant of a run (creating worktrees, checking out,
/// committing, writing the database, forecasting, writing the report, letting go of the
/// pool), then `git ws-run --resume latest`: every workstream ends with exactly one final
/// result, none fails because of the crash, no stray branch, no half-made worktree, at most
/// `--agents` pool worktrees. Every third iteration starts with no pool, so creation is hit
/// too. `scripts/stress.sh crash N` runs it N times.
#[test]
fn killed_at_a_random_instant_and_resumed_nothing_is_lost_or_doubled() {
    const AGENTS: usize = 3;
    let iterations = loops(4);
    let (mut rng, _) = Rng::from_env("crash loop");
    let env = Env::new();
    // Enough files that a checkout takes a moment.
    for d in 0..20 {
        for f in 0..15 {
            env.write(
                &format!("tree/d{d}/f{f}.txt"),
                &format!("{d} {f}\n").repeat(20),
            );
        }
    }
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "files"]);
    let ids: Vec<String> = (1..=9).map(|i| format!("w{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        env.ws_cmd(
            id,
            &format!("echo {id} > {id}.txt; echo more >> tree/d{i}/f1.txt; sleep 0.0{i}"),
        );
    }
    // How long an undisturbed run takes (cold, then warm).
    let t = std::time::Instant::now();
    env.ws_run(&["--agents", "3", "-q"]).expect(0);
    let cold = t.elapsed();
    let t = std::time::Instant::now();
    env.ws_run(&["--agents", "3", "-q"]).expect(0);
    let warm = t.elapsed();
    let mut failures = Vec::new();
    let (mut resumed, mut finished, mut before) = (0, 0, 0);
    for i in 0..iterations {
        let cold_start = i % 3 == 0;
        if cold_start {
            env.ws_run(&["--prune-worktrees"]).expect(0);
        }
        let span = if cold_start { cold } else { warm };
        let delay = std::time::Duration::from_micros(rng.below(span.as_micros() as u64 * 11 / 10));
        let runs_before = env.sql("SELECT count(*) FROM ws_runs")[0][0].clone();
        let child = env.spawn_run(&["--agents", "3", "-q"]);
        std::thread::sleep(delay);
        crate::common::signal(child.pid(), libc::SIGKILL);
        let _ = child.wait(std::time::Duration::from_secs(10));
        let latest = env.sql("SELECT run_id, state FROM ws_runs ORDER BY rowid DESC LIMIT 1");
        if env.sql("SELECT count(*) FROM ws_runs")[0][0] == runs_before {
            before += 1;
            continue;
        }
        let (run, state) = (latest[0][0].clone(), latest[0][1].clone());
        if state == "running" {
            resumed += 1;
            let out = env.ws_run(&["--resume", "latest", "-q"]);
            if out.code != 0 {
                failures.push(format!(
                    "iteration {i} (killed after {delay:?}): resume exited {}: {}",
                    out.code, out.stderr
                ));
                continue;
            }
        } else {
            finished += 1;
        }
        for w in check_after_crash(&env, &run, &ids, AGENTS) {
            failures.push(format!(
                "iteration {i} (killed after {delay:?}, {state}): {w}"
            ));
        }
    }
    // Whatever the last kill left, the next run is clean.
    let last = one_run(&env, 9, &[]);
    assert!(last.is_ok(), "{last:?}");
    assert_pool_tidy(&env, AGENTS);
    eprintln!(
        "crash loop: {iterations} kills ({before} before the run was recorded, {resumed} resumed, {finished} after it finished): {} problem(s)",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn prune_branches_deletes_merged_and_old_branches_of_finished_runs_only() {
    let env = Env::new();
    let list = |env: &Env| -> Vec<String> {
        env.git(&["branch", "--list", "--format=%(refname:short)", "ws/*"])
            .lines()
            .map(str::to_string)
            .collect()
    };
    env.ws_cmd("a", "echo a > a.txt");
    env.ws_cmd("b", "echo b > b.txt");
    let first = env.ws_run(&["--agents", "2", "-q"]);
    first.expect(0);
    let r1 = first.run_id();
    // a is merged into main; b was merged elsewhere, as the post-merge hook recorded.
    env.git(&["merge", "-q", "--no-edit", &format!("ws/{r1}/a")]);
    let b_tip = env
        .git(&["rev-parse", &format!("ws/{r1}/b")])
        .trim()
        .to_string();
    crate::common::sql_exec(
        &env.db_path(),
        &format!(
            "INSERT INTO ws_merges (run_id, workstream_id, branch, tip, merge_commit, merged_at) \
             VALUES ('{r1}', 'b', 'ws/{r1}/b', '{b_tip}', '{b_tip}', '2026-01-01T00:00:00Z')"
        ),
    );
    // A second run, unmerged; a third that crashed (state `running`).
    std::fs::remove_file(env.repo.join("workstreams/b.json")).unwrap();
    env.ws_cmd("a", "echo again > c.txt");
    let second = env.ws_run(&["--agents", "1", "-q"]);
    second.expect(0);
    let r2 = second.run_id();
    let go = env.scratch("started");
    env.ws_cmd("a", &format!("touch '{}'; sleep 30", go.display()));
    let crashed = env.spawn_run(&["--agents", "1", "-q"]);
    crate::common::wait_until(
        std::time::Duration::from_secs(10),
        "the run to start",
        || go.exists(),
    );
    crate::common::signal(crashed.pid(), libc::SIGKILL);
    crashed.wait(std::time::Duration::from_secs(5));
    let r3 = env.sql("SELECT run_id FROM ws_runs WHERE state = 'running'")[0][0].clone();
    assert_eq!(list(&env).len(), 4);

    let out = env.ws_run(&["--prune-branches"]);
    out.expect(0);
    assert!(
        out.stdout
            .contains(&format!("deleted ws/{r1}/b (was {}; merged)", &b_tip[..12])),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("deleted ws/{r1}/a")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("deleted 2 ws/ branch(es); kept 2"),
        "{}",
        out.stdout
    );
    let mut want = vec![format!("ws/{r2}/a"), format!("ws/{r3}/a")];
    want.sort();
    assert_eq!(list(&env), want);
    // Not old enough; then --all: everything of finished runs, never the crashed run's.
    env.ws_run(&["--prune-branches", "--older-than", "1"])
        .expect(0);
    assert_eq!(list(&env).len(), 2);
    let all = env.ws_run(&["--prune-branches", "--all"]);
    all.expect(0);
    assert!(all.stdout.contains("still running"), "{}", all.stdout);
    assert_eq!(list(&env), vec![format!("ws/{r3}/a")]);
    // The database keeps the commit SHAs.
    let head = crate::common::result_json(&env, &r1, "b", "metadata")["head"].clone();
    assert_eq!(head, serde_json::json!(b_tip));
    // --older-than and --all belong to --prune-branches.
    env.ws_run(&["--all"]).expect(2);
}

/// The `agent-*` entries left in the old pool place, `.git/ws/`.
fn old_place_slots(env: &Env) -> Vec<String> {
    std::fs::read_dir(env.repo.join(".git/ws"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("agent-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_pool_left_inside_git_by_an_older_version_moves_out_on_the_next_run() {
    let env = Env::new();
    trivial(&env, 4);
    // The old layout, made by a run with the pool where older versions kept it.
    env.git(&["config", "ws.poolDir", ".git/ws"]);
    env.ws_run(&["--agents", "2", "-q"]).expect(0);
    env.git(&["config", "--unset", "ws.poolDir"]);
    std::fs::remove_file(env.repo.join(".git/ws/.git-ws-pool")).unwrap();
    assert_eq!(old_place_slots(&env).len(), 2);
    let before = env.worktrees();
    assert!(
        before.iter().skip(1).all(|p| p.contains("/.git/ws/agent-")),
        "{before:?}"
    );

    let out = env.ws_run(&["--agents", "2"]);
    out.expect(0);
    assert!(
        out.stdout
            .contains("moved agent worktree agent-1 out of .git")
            || out
                .stderr
                .contains("moved agent worktree agent-1 out of .git"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    assert!(
        old_place_slots(&env).is_empty(),
        "{:?}",
        old_place_slots(&env)
    );
    // Both slots in the new place, complete, locked, detached, nothing for git to prune.
    assert_eq!(assert_pool_tidy(&env, 2).len(), 2);
    assert_eq!(env.git(&["worktree", "prune", "--dry-run", "-v"]), "");
    // The agents worked there: their commits are on the run's branches.
    let run = out.run_id();
    for i in 1..=4 {
        let files = env.git(&["ls-tree", "--name-only", &format!("ws/{run}/w{i}")]);
        assert!(files.contains(&format!("out{i}.txt")), "{files}");
    }
}

#[test]
fn ws_pool_dir_places_the_pool_two_repositories_never_share_it_and_the_prune_empties_it() {
    let env = Env::new();
    trivial(&env, 2);
    let shared = env.scratch("pools/shared");
    env.git(&["config", "ws.poolDir", shared.to_str().unwrap()]);
    env.ws_run(&["--agents", "2", "-q"]).expect(0);
    let listed = env.worktrees();
    assert_eq!(listed.len(), 3, "{listed:?}");
    let canon_shared = std::fs::canonicalize(&shared).unwrap();
    for p in listed.iter().skip(1) {
        assert!(
            std::path::Path::new(p).starts_with(&canon_shared),
            "{p} is not in ws.poolDir"
        );
    }
    assert!(!pool_dir(&env).exists());

    // Another repository told to use the same directory is refused before anything runs.
    let other = Env::new();
    trivial(&other, 1);
    other.git(&["config", "ws.poolDir", shared.to_str().unwrap()]);
    let refused = other.ws_run(&["-q"]);
    refused.expect(2);
    assert!(
        refused.stderr.contains("belongs to another repository")
            && refused.stderr.contains("ws.poolDir"),
        "{}",
        refused.stderr
    );
    assert_eq!(other.worktrees().len(), 1);
    assert_eq!(env.worktrees(), listed);

    // The prune removes the pool where it is, and the directory with it.
    env.ws_run(&["--prune-worktrees"]).expect(0);
    assert_eq!(env.worktrees().len(), 1);
    assert!(!shared.exists());
    assert_eq!(env.git(&["worktree", "prune", "--dry-run", "-v"]), "");
}
