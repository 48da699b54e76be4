//! SIGKILL of `git-ws-run` and `git-ws-merge`: a crashed run is not integrated (unless
//! `--incomplete` says so, and then the JSON and the report say it), and nothing a killed
//! tool started still runs once the next one has started — no orphan, and no two test runs
//! at once. The loops kill at random instants (seeded; `GIT_WS_CRASH_SEED` replays one) and
//! run `GIT_WS_LOOPS` iterations (a few in the suite; `scripts/stress.sh kills N` runs more).
//!
//! Every process a tool starts in these tests carries `KILL_MARK=<test>-<seed>-<iteration>`
//! in its environment (inherited from the tool's), so a scan of `/proc` finds what is left.

use crate::common::{bin_dir, loops, signal, try_sql, wait_until, Env, Rng, Run};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Live (non-zombie) processes whose environment holds `KILL_MARK=mark`: (pid, command line).
fn marked(mark: &str) -> Vec<(i32, String)> {
    let want = format!("KILL_MARK={mark}");
    let mut found = Vec::new();
    for pid in std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if !env.split(|&b| b == 0).any(|kv| kv == want.as_bytes()) {
            continue;
        }
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(true);
        if !zombie {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .unwrap_or_default();
            found.push((pid, cmd.trim().to_string()));
        }
    }
    found
}

/// SIGKILL whatever carries `mark` (so a failing test leaves nothing behind).
fn kill_marked(mark: &str) {
    for (pid, _) in marked(mark) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// Start the binary `git-ws-<tool>` with `args`, `KILL_MARK=mark` in its environment.
fn spawn(env: &Env, tool: &str, args: &[&str], mark: &str, extra: &[(&str, &str)]) -> Child {
    let mut c = env.command(bin_dir().join(format!("git-ws-{tool}")).to_str().unwrap());
    c.args(args)
        .env("KILL_MARK", mark)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in extra {
        c.env(k, v);
    }
    c.spawn().unwrap()
}

/// `git ws-<tool> ARGS` through git's dispatch, to the end, with `KILL_MARK=mark`.
fn run(env: &Env, tool: &str, args: &[&str], mark: &str, extra: &[(&str, &str)]) -> Run {
    let mut c = env.command("git");
    c.arg(format!("ws-{tool}"))
        .args(args)
        .env("KILL_MARK", mark);
    for (k, v) in extra {
        c.env(k, v);
    }
    Run::from(c.output().unwrap())
}

fn kill_and_reap(mut child: Child) {
    signal(child.id(), libc::SIGKILL);
    child.wait().unwrap();
}

/// Wait (up to 2 s) for the kernel to deliver the parent-death signals, then list what of
/// `mark` still runs.
fn left_after_kill(mark: &str) -> Vec<(i32, String)> {
    let t = Instant::now();
    let mut left = marked(mark);
    while !left.is_empty() && t.elapsed() < Duration::from_millis(300) {
        std::thread::sleep(Duration::from_millis(20));
        left = marked(mark);
    }
    left
}

/// One instant workstream and one that sleeps; `git-ws-run` is SIGKILLed once the instant
/// one is recorded. `git ws-merge` refuses the run (exit 2) naming the sleeper and the
/// resume command; the sleeper's processes are gone once it has started; `--incomplete`
/// integrates the instant one and says so in the JSON and the report.
#[test]
fn a_run_killed_mid_run_is_refused_by_ws_merge_unless_incomplete() {
    let env = Env::new();
    env.ws_cmd("fast", "echo fast > fast.txt");
    // A grandchild too: the parent-death signal reaches only the shell.
    env.ws_cmd("slow", "sleep 30 & sleep 30; echo slow > slow.txt");
    let mark = format!("crashed-run-{}", std::process::id());
    let child = spawn(&env, "run", &["--agents", "2", "-q"], &mark, &[]);
    let db = env.db_path();
    wait_until(Duration::from_secs(30), "fast's result", || {
        try_sql(
            &db,
            "SELECT count(*) FROM agent_results WHERE workstream_id = 'fast'",
        )
        .is_some_and(|r| r[0][0] == "1")
            && !marked(&mark).iter().all(|(_, c)| c.contains("git-ws-run"))
    });
    let run_id = env.sql("SELECT run_id FROM ws_runs")[0][0].clone();
    kill_and_reap(child);

    let out = run(&env, "merge", &[], "next", &[]);
    let left = marked(&mark);
    kill_marked(&mark);
    out.expect(2);
    // A line per command of the dead run it killed first, then the refusal: one sentence.
    let err = out.stderr.trim();
    assert!(
        err.contains("killed") && err.contains("by a git-ws that was killed"),
        "{err}"
    );
    let err = err.lines().last().unwrap();
    assert!(
        err.contains(&format!("refusing to integrate run {run_id}"))
            && err.contains("slow has no result")
            && err.contains(&format!("git ws-run --resume {run_id}"))
            && err.contains("--incomplete"),
        "{err}"
    );
    assert!(
        !env.git(&["branch", "--list", "ws/*/integration"])
            .contains("integration"),
        "a refused merge wrote a branch"
    );
    assert!(
        left.is_empty(),
        "left running after ws-merge started: {left:?}"
    );

    let out = run(
        &env,
        "merge",
        &["--incomplete", "--format", "json"],
        "next",
        &[],
    );
    out.expect(1);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["incomplete"], true, "{json}");
    assert_eq!(
        json["without_result"],
        serde_json::json!(["slow"]),
        "{json}"
    );
    assert_eq!(json["merged"], serde_json::json!(["fast"]), "{json}");
    let slow = json["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["workstream_id"] == "slow")
        .unwrap();
    assert_eq!(slow["reason"], "no-result", "{json}");
    // Read back from the database, it says the same.
    let report = env.ws_report(&[&run_id, "--format", "json"]);
    let it: serde_json::Value = serde_json::from_str(&report.stdout).unwrap();
    assert_eq!(it["integration"]["incomplete"], true, "{}", report.stdout);
    assert_eq!(
        it["integration"]["without_result"],
        serde_json::json!(["slow"])
    );
    let md = std::fs::read_to_string(
        env.repo
            .join(format!("reports/multi_agent_consolidated_{run_id}.md")),
    )
    .unwrap();
    assert!(
        md.contains("**Incomplete run**")
            && md.contains("without a result, so not integrated: slow"),
        "{md}"
    );
}

/// `git-ws-run` SIGKILLed at random instants (agents, setup commands and their
/// grandchildren running): right after, the parent-death signal has killed the commands;
/// once the next `git ws-run` has started, nothing the killed one started runs.
/// Returns (kills, kills that left something right after the kill, orphans after the next
/// start).
fn ws_run_kill_loop(iterations: usize) -> (usize, usize, Vec<String>) {
    let (mut rng, seed) = Rng::from_env("ws-run kill loop");
    let env = Env::new();
    // Slow unless FAST is set (the next run), with a background grandchild and a
    // double-forked one that leaves the process group.
    let slow = "if [ -n \"$FAST\" ]; then echo ok > $WS_ID.txt; else (sleep 30 &); sleep 30 & sleep 30; fi";
    for id in ["a", "b", "c"] {
        env.ws_cmd(id, slow);
    }
    env.git(&["config", "ws.setupCommand", "[ -n \"$FAST\" ] || sleep 0.3"]);
    let (mut left_by_kill, mut orphans) = (0, Vec::new());
    for i in 0..iterations {
        let mark = format!("ws-run-{seed}-{i}");
        let child = spawn(&env, "run", &["--agents", "2", "-q"], &mark, &[]);
        let delay = Duration::from_millis(rng.below(1500));
        std::thread::sleep(delay);
        kill_and_reap(child);
        if !left_after_kill(&mark).is_empty() {
            left_by_kill += 1;
        }
        let next = run(
            &env,
            "run",
            &["--agents", "2", "-q"],
            "next",
            &[("FAST", "1")],
        );
        let left = marked(&mark);
        kill_marked(&mark);
        if next.code != 0 {
            orphans.push(format!(
                "iteration {i} (killed after {delay:?}): the next run exited {}: {}",
                next.code, next.stderr
            ));
        }
        for (pid, cmd) in left {
            orphans.push(format!(
                "iteration {i} (killed after {delay:?}): {pid} `{cmd}` still running after the next git ws-run"
            ));
        }
    }
    (iterations, left_by_kill, orphans)
}

/// A test script that records its start and end (atomic appends, `O_APPEND`, to a file
/// outside the worktree) and, at its start, any earlier one still alive that it must not
/// meet (an overlap): one of another `git ws-merge` (a killed one's), or one in the same
/// worktree. Tests of one `git ws-merge` run side by side in their own worktrees (`--jobs`).
const PROBE: &str = r#"echo "start $$" >> "$PROBE_LOG"
for p in $(sed -n 's/^start //p' "$PROBE_LOG"); do
  if [ "$p" != "$$" ] && grep -qz "^PROBE_LOG=$PROBE_LOG\$" /proc/$p/environ 2>/dev/null \
     && ! grep -q '^[^)]*) Z' /proc/$p/stat 2>/dev/null; then
    if ! grep -qz "^KILL_MARK=$KILL_MARK\$" /proc/$p/environ 2>/dev/null \
       || [ "$(readlink /proc/$p/cwd)" = "$(pwd -P)" ]; then
      echo "overlap $$ $p $(pwd)" >> "$PROBE_LOG"
    fi
  fi
done
(sleep 30 &)
i=0; while [ $i -lt 8 ]; do sleep 0.1; i=$((i + 1)); done
echo "end $$" >> "$PROBE_LOG"
"#;

/// `git-ws-merge --test 'sh probe.sh'` SIGKILLed at random instants, each followed by a
/// complete `git ws-merge --test 'sh probe.sh'`: nothing of the killed one runs after the
/// next has started, no test of one ran beside a test of another, and no two test runs
/// ever shared a worktree. Returns (kills, kills that left
/// something right after the kill, orphans, overlaps).
fn ws_merge_kill_loop(iterations: usize) -> (usize, usize, Vec<String>, Vec<String>) {
    let (mut rng, seed) = Rng::from_env("ws-merge kill loop");
    let env = Env::new();
    env.write("probe.sh", PROBE);
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "probe"]);
    env.ws_cmd("one", "echo 1 > one.txt");
    env.ws_cmd("two", "echo 2 > two.txt");
    env.ws_run(&["--agents", "2", "-q"]).expect(0);
    let probe_log = env.scratch("probe.log");
    let probe_log_s = probe_log.to_str().unwrap().to_string();
    let extra = [("PROBE_LOG", probe_log_s.as_str())];
    let args = ["--test", "sh probe.sh", "-q"];
    let (mut left_by_kill, mut orphans) = (0, Vec::new());
    for i in 0..iterations {
        let mark = format!("ws-merge-{seed}-{i}");
        let child = spawn(&env, "merge", &args, &mark, &extra);
        let delay = Duration::from_millis(rng.below(2500));
        std::thread::sleep(delay);
        kill_and_reap(child);
        if !left_after_kill(&mark).is_empty() {
            left_by_kill += 1;
        }
        let next = run(&env, "merge", &args, "next", &extra);
        let left = marked(&mark);
        kill_marked(&mark);
        if next.code != 0 {
            orphans.push(format!(
                "iteration {i} (killed after {delay:?}): the next ws-merge exited {}: {}",
                next.code, next.stderr
            ));
        }
        for (pid, cmd) in left {
            orphans.push(format!(
                "iteration {i} (killed after {delay:?}): {pid} `{cmd}` still running after the next git ws-merge"
            ));
        }
    }
    let overlaps = overlaps(&probe_log);
    (iterations, left_by_kill, orphans, overlaps)
}

fn overlaps(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("overlap "))
        .map(str::to_string)
        .collect()
}

#[test]
fn ws_run_killed_at_random_instants_leaves_nothing_running_after_the_next_start() {
    let (kills, left_by_kill, orphans) = ws_run_kill_loop(loops(3));
    eprintln!(
        "ws-run kill loop: {kills} kills: {} orphans ({left_by_kill} kills left a process for the next start to kill)",
        orphans.len()
    );
    assert!(orphans.is_empty(), "{orphans:#?}");
}

#[test]
fn ws_merge_killed_at_random_instants_leaves_nothing_running_and_tests_never_overlap() {
    let (kills, left_by_kill, orphans, overlaps) = ws_merge_kill_loop(loops(3));
    eprintln!(
        "ws-merge kill loop: {kills} kills: {} orphans, {} overlapping tests ({left_by_kill} kills left a process for the next start to kill)",
        orphans.len(),
        overlaps.len()
    );
    assert!(orphans.is_empty(), "{orphans:#?}");
    assert!(overlaps.is_empty(), "{overlaps:#?}");
}

/// A run interrupted by Ctrl-C (consolidated, state `interrupted`, its running and waiting
/// workstreams `Cancelled`) did not finish either: `git ws-merge` refuses it naming them;
/// `--incomplete --dry-run` shows what it would integrate.
#[test]
fn an_interrupted_run_is_refused_by_ws_merge_naming_the_cancelled_workstreams() {
    let env = Env::new();
    env.ws_cmd("done", "echo done > done.txt");
    let started = env.scratch("started");
    env.ws_cmd(
        "stopped",
        &format!("touch '{}'; sleep 30", started.display()),
    );
    env.ws(
        "waiting",
        serde_json::json!({"id": "waiting", "command": "echo w > w.txt", "depends_on": ["stopped"]}),
    );
    let run = env.spawn_run(&["--agents", "2", "--grace", "300ms", "-q"]);
    let db = env.db_path();
    wait_until(
        Duration::from_secs(30),
        "done's result and stopped to run",
        || {
            started.exists()
                && try_sql(
                    &db,
                    "SELECT count(*) FROM agent_results WHERE workstream_id = 'done'",
                )
                .is_some_and(|r| r[0][0] == "1")
        },
    );
    signal(run.pid(), libc::SIGINT);
    let out = run.wait(Duration::from_secs(10));
    out.expect(130);
    let run_id = out.run_id();

    let out = env.ws_merge(&[]);
    out.expect(2);
    let err = out.stderr.trim();
    assert!(
        err.contains("was interrupted before every workstream had a result")
            && err.contains("2 workstreams have no result (stopped, waiting)")
            && err.contains(&format!("git ws-run --resume {run_id}")),
        "{err}"
    );
    let out = env.ws_merge(&["--incomplete", "--dry-run", "--format", "json"]);
    out.expect(1);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["merged"], serde_json::json!(["done"]), "{json}");
    assert_eq!(
        json["without_result"],
        serde_json::json!(["stopped", "waiting"]),
        "{json}"
    );
}

/// A `git-ws-merge --test` SIGKILLed while its test runs leaves a grandchild of the test
/// behind (the parent-death signal reaches only the test's shell): a following
/// `git ws-merge --dry-run` kills it, says so, and still integrates nothing.
#[test]
fn a_dry_run_sweeps_what_a_killed_ws_merge_left_running() {
    let env = Env::new();
    let started = env.scratch("test-started");
    env.write(
        "t.sh",
        &format!("touch {}\nsleep 30 &\nsleep 30\n", started.display()),
    );
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "test script"]);
    env.ws_cmd("one", "echo 1 > one.txt");
    env.ws_run(&["--agents", "1", "-q"]).expect(0);
    let main_before = env.git(&["rev-parse", "HEAD"]);
    let mark = format!("dry-run-sweep-{}", std::process::id());
    let child = spawn(&env, "merge", &["--test", "sh t.sh", "-q"], &mark, &[]);
    wait_until(Duration::from_secs(60), "the test to start", || {
        started.exists()
    });
    kill_and_reap(child);
    let left = left_after_kill(&mark);
    let dry = run(&env, "merge", &["--dry-run"], "dry", &[]);
    let after = marked(&mark);
    kill_marked(&mark);
    assert!(
        !left.is_empty(),
        "the killed ws-merge left nothing running: the test proves nothing"
    );
    dry.expect(0);
    assert!(after.is_empty(), "still running after --dry-run: {after:?}");
    assert!(
        dry.stderr.contains("killed") || dry.stdout.contains("killed"),
        "the dry run says what it killed:\n{}\n{}",
        dry.stdout,
        dry.stderr
    );
    assert_eq!(
        env.git(&["rev-parse", "HEAD"]),
        main_before,
        "a dry run integrates nothing"
    );
}

/// Ctrl-C (SIGINT) on the coordinator of a shared run (PostgreSQL, a bare remote) while
/// both its agents run: it exits 130, nothing it started still runs, the run is left
/// unfinished (not consolidated), and a `--join` from another worker finishes it with one
/// completed result per workstream and no workstream completed twice (each command appends
/// its id to a marker file only at its end).
#[test]
fn ctrl_c_on_a_shared_runs_coordinator_leaves_it_resumable_by_a_join() {
    let Some(url) = crate::pgcluster::cluster().map(|c| c.database("ctrl_c_coordinator")) else {
        return;
    };
    let q = |sql: &str| crate::pgcluster::psql(&url, sql).unwrap_or_default();
    let env = Env::new();
    let marker = env.scratch("marker");
    for i in 1..=4 {
        env.ws_cmd(
            &format!("ws-{i}"),
            &format!(
                "sleep 2; echo ws-{i} >> {}; echo {i} > f{i}.txt",
                marker.display()
            ),
        );
    }
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "workstreams"]);
    let bare = env.scratch("remote.git");
    env.git(&["clone", "-q", "--bare", ".", bare.to_str().unwrap()]);
    env.git(&["remote", "add", "origin", bare.to_str().unwrap()]);
    let common = ["-q", "--agents", "2", "--db", &url, "--remote", "origin"];
    let mark = format!("ctrl-c-coordinator-{}", std::process::id());
    let mut coord = spawn(
        &env,
        "run",
        &[&common[..], &["--worker", "a"]].concat(),
        &mark,
        &[],
    );
    wait_until(Duration::from_secs(60), "two claims", || {
        q("SELECT 1 FROM ws_queue WHERE state = 'claimed'").len() == 2
    });
    std::thread::sleep(Duration::from_millis(300));
    signal(coord.id(), libc::SIGINT);
    let t = Instant::now();
    let status = loop {
        if let Some(s) = coord.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(60) {
            kill_and_reap(coord);
            kill_marked(&mark);
            panic!("the coordinator did not stop within 60 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let left = left_after_kill(&mark);
    kill_marked(&mark);
    let run = q("SELECT run_id FROM ws_queue_runs")[0][0].clone();
    let consolidated = q(&format!(
        "SELECT 1 FROM ws_queue_runs WHERE run_id = '{run}' AND consolidated_at IS NOT NULL"
    ));
    let completed_before = q(&format!(
        "SELECT workstream_id FROM agent_results WHERE run_id = '{run}' AND status = 'completed'"
    ))
    .len();
    let join = run_join(&env, &common, &run, &mark);
    let rows = q(&format!(
        "SELECT workstream_id, status FROM agent_results WHERE run_id = '{run}' ORDER BY 1"
    ));
    let mut ran: Vec<String> = std::fs::read_to_string(&marker)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    ran.sort();
    let after_join = marked(&mark);
    kill_marked(&mark);
    assert_eq!(status.code(), Some(130), "Ctrl-C exits 130");
    assert!(
        left.is_empty(),
        "still running after the coordinator exited: {left:?}"
    );
    assert!(
        consolidated.is_empty(),
        "an interrupted run is not consolidated"
    );
    assert!(
        completed_before < 4,
        "Ctrl-C came too late to test anything"
    );
    join.expect(0);
    let want: Vec<Vec<String>> = (1..=4)
        .map(|i| vec![format!("ws-{i}"), "completed".to_string()])
        .collect();
    assert_eq!(rows, want, "{}", join.stderr);
    assert_eq!(ran, ["ws-1", "ws-2", "ws-3", "ws-4"], "each completed once");
    assert!(after_join.is_empty(), "{after_join:?}");
    assert_eq!(
        q(&format!(
            "SELECT 1 FROM ws_queue_runs WHERE run_id = '{run}' AND consolidated_at IS NOT NULL"
        ))
        .len(),
        1,
        "the join finished the run"
    );
}

/// `git ws-run ARGS --join RUN --worker b`, to the end, marked with `mark`.
fn run_join(env: &Env, common: &[&str], run_id: &str, mark: &str) -> Run {
    run(
        env,
        "run",
        &[common, &["--worker", "b", "--join", run_id]].concat(),
        mark,
        &[],
    )
}
