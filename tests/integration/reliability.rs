//! Nothing lost: a coordinator killed with SIGKILL and resumed, `--rerun-failed`, Ctrl-C
//! and SIGTERM, two runs at once, bad environments and hostile agents — with real
//! processes and real signals, asserting on the database, branches, worktrees and pids.

use crate::common::{alive, result_json, signal, sql_exec, status, try_sql, wait_until, Env};
use crate::pool::assert_pool_tidy;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SECS_5: Duration = Duration::from_secs(5);

fn count_lines(p: &Path) -> usize {
    std::fs::read_to_string(p)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn read_pid(p: &Path) -> i32 {
    std::fs::read_to_string(p)
        .unwrap()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("pid in {}", p.display()))
}

fn scratch_dir(env: &Env, name: &str) -> PathBuf {
    let d = env.scratch(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Rows of `q` once the run database exists and can answer it (polling a live run).
fn poll(env: &Env, q: &str) -> Vec<Vec<String>> {
    try_sql(&env.db_path(), q).unwrap_or_default()
}

fn one(env: &Env, q: &str) -> String {
    let rows = env.sql(q);
    assert_eq!(rows.len(), 1, "{q}: {rows:?}");
    rows[0][0].clone()
}

fn error_types(env: &Env, run: &str, ws: &str) -> Vec<String> {
    result_json(env, run, ws, "errors")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

fn ws_branches(env: &Env) -> Vec<String> {
    env.git(&["branch", "--list", "--format=%(refname:short)", "ws/*"])
        .lines()
        .map(str::to_string)
        .collect()
}

// 1. Crash and resume -------------------------------------------------------------------

#[test]
fn sigkill_mid_run_then_resume_runs_only_what_has_no_final_result() {
    let env = Env::new();
    let counts = scratch_dir(&env, "counts");
    let pids = scratch_dir(&env, "pids");
    let go = env.scratch("go");
    let c = counts.display();
    let p = pids.display();
    // Two quick ones and two that sleep until the test creates `go`. a-fast1 is a little
    // slower, so agent-2 takes b-slow1 before the crash and the resume gives it to agent-1:
    // its branch is still checked out in the crashed run's agent-2 worktree.
    for (id, pause) in [("a-fast1", "0.3"), ("a-fast2", "0")] {
        env.ws_cmd(
            id,
            &format!("echo x >> {c}/$WS_ID; sleep {pause}; echo $WS_ID > $WS_ID.txt"),
        );
    }
    for id in ["b-slow1", "b-slow2"] {
        env.ws_cmd(
            id,
            &format!(
                "echo x >> {c}/$WS_ID; echo partial > partial.txt; setsid sleep 30 & echo $! > {p}/$WS_ID.escaped; \
                 echo $$ > {p}/$WS_ID.tmp; mv {p}/$WS_ID.tmp {p}/$WS_ID; \
                 if [ -e '{}' ]; then echo $WS_ID > $WS_ID.txt; exit 0; fi; sleep 30",
                go.display()
            ),
        );
    }
    let run = env.spawn_run(&["--agents", "2", "--grace", "300ms"]);
    wait_until(SECS_5, "both fast results and both sleepers", || {
        poll(
            &env,
            "SELECT count(*) FROM agent_results WHERE status = 'completed'",
        ) == vec![vec!["2"]]
            && pids.join("b-slow1").exists()
            && pids.join("b-slow2").exists()
    });
    signal(run.pid(), libc::SIGKILL);
    let crashed = run.wait(SECS_5);
    assert_eq!(crashed.code, -1, "killed by a signal");
    let run_id = one(&env, "SELECT run_id FROM ws_runs");

    // What finished is there; the run is visibly unfinished.
    assert_eq!(status(&env, &run_id, "a-fast1"), "completed");
    assert_eq!(status(&env, &run_id, "a-fast2"), "completed");
    assert_eq!(
        one(
            &env,
            "SELECT count(*) FROM agent_results WHERE workstream_id LIKE 'b-%'"
        ),
        "0"
    );
    assert_eq!(
        one(
            &env,
            &format!("SELECT state FROM ws_runs WHERE run_id = '{run_id}'")
        ),
        "running"
    );
    // The commands die with the coordinator (a parent-death signal); what they started
    // and that left their process group keeps running until the next git-ws starts: the
    // resume kills it.
    let sleepers: Vec<i32> = ["b-slow1", "b-slow2", "b-slow1.escaped", "b-slow2.escaped"]
        .iter()
        .map(|id| read_pid(&pids.join(id)))
        .collect();
    wait_until(SECS_5, "the commands to die with the coordinator", || {
        !alive(sleepers[0]) && !alive(sleepers[1])
    });
    for &pid in &sleepers[2..] {
        assert!(
            alive(pid),
            "escaped sleeper {pid} still running after the crash"
        );
    }
    assert_eq!(
        env.worktrees().len(),
        3,
        "the crashed run's agent worktrees"
    );
    let mut crashed_pool: Vec<String> = env.worktrees().into_iter().skip(1).collect();
    crashed_pool.sort();

    std::fs::write(&go, "").unwrap();
    let out = env.ws_run(&["--resume", "latest", "--grace", "300ms"]);
    out.expect(0);
    assert_eq!(out.run_id(), run_id);
    for &pid in &sleepers {
        assert!(
            !alive(pid),
            "sleeper {pid} of the crashed run survived the resume"
        );
    }
    // Completed ones never ran again; interrupted ones ran again, from a clean branch.
    assert_eq!(count_lines(&counts.join("a-fast1")), 1);
    assert_eq!(count_lines(&counts.join("a-fast2")), 1);
    assert_eq!(count_lines(&counts.join("b-slow1")), 2);
    assert_eq!(count_lines(&counts.join("b-slow2")), 2);
    for id in ["a-fast1", "a-fast2", "b-slow1", "b-slow2"] {
        assert_eq!(status(&env, &run_id, id), "completed", "{id}");
    }
    let files = result_json(&env, &run_id, "b-slow1", "files_modified");
    assert_eq!(files, json!(["b-slow1.txt", "partial.txt"]));
    let tree = env.git(&["ls-tree", "--name-only", &format!("ws/{run_id}/b-slow1")]);
    assert!(
        tree.contains("b-slow1.txt") && !tree.contains("b-slow2.txt"),
        "{tree}"
    );
    // Totals finalised, state back to finished, the report written, nothing left behind.
    assert_eq!(
        env.sql(&format!(
            "SELECT total_workstreams, completed_count, failed_count, skipped_count FROM consolidated_runs WHERE run_id = '{run_id}'"
        )),
        vec![vec!["4", "4", "0", "0"]]
    );
    assert_eq!(
        one(
            &env,
            &format!("SELECT count(*) FROM agent_results WHERE run_id = '{run_id}'")
        ),
        "4"
    );
    assert_eq!(
        one(
            &env,
            &format!("SELECT state FROM ws_runs WHERE run_id = '{run_id}'")
        ),
        "finished"
    );
    assert!(env
        .repo
        .join(format!("reports/multi_agent_consolidated_{run_id}.md"))
        .is_file());
    // The resume reused the crashed run's worktrees (not deleted and re-created), and left
    // them tidy.
    assert_eq!(assert_pool_tidy(&env, 2), crashed_pool);
    // Resuming a finished run does nothing, says so, and succeeds.
    let again = env.ws_run(&["--resume", &run_id]);
    again.expect(0);
    assert!(
        again.stderr.contains("nothing to resume"),
        "{}",
        again.stderr
    );
    assert_eq!(count_lines(&counts.join("b-slow1")), 2);
}

#[test]
fn resume_keeps_failures_and_reruns_cancelled_and_their_skipped_dependents() {
    let env = Env::new();
    let counts = scratch_dir(&env, "counts");
    let c = counts.display();
    let go = env.scratch("go");
    env.ws_cmd("a-bad", &format!("echo x >> {c}/$WS_ID; exit 3"));
    env.ws(
        "a-bad-dep",
        json!({"id": "a-bad-dep", "command": format!("echo x >> {c}/$WS_ID"), "depends_on": ["a-bad"]}),
    );
    env.ws_cmd(
        "b-slow",
        &format!(
            "echo x >> {c}/$WS_ID; [ -e '{}' ] || sleep 30",
            go.display()
        ),
    );
    env.ws(
        "c-after",
        json!({"id": "c-after", "command": format!("echo x >> {c}/$WS_ID"), "depends_on": ["b-slow"]}),
    );
    let run = env.spawn_run(&["--agents", "2", "--grace", "300ms"]);
    wait_until(SECS_5, "b-slow to start", || counts.join("b-slow").exists());
    wait_until(SECS_5, "a-bad recorded", || {
        !poll(
            &env,
            "SELECT 1 FROM agent_results WHERE workstream_id = 'a-bad-dep'",
        )
        .is_empty()
    });
    signal(run.pid(), libc::SIGINT);
    run.wait(SECS_5).expect(130);
    let run_id = one(&env, "SELECT run_id FROM ws_runs");
    assert_eq!(
        one(
            &env,
            &format!("SELECT state FROM ws_runs WHERE run_id = '{run_id}'")
        ),
        "interrupted"
    );
    assert_eq!(status(&env, &run_id, "b-slow"), "failed");
    assert_eq!(error_types(&env, &run_id, "b-slow"), vec!["Cancelled"]);
    assert_eq!(status(&env, &run_id, "c-after"), "skipped");

    std::fs::write(&go, "").unwrap();
    let out = env.ws_run(&["--resume", &run_id]);
    out.expect(1);
    // The failure is final (never rerun); its dependent is still skipped for it; the
    // cancelled one and the one skipped because of it run.
    assert_eq!(count_lines(&counts.join("a-bad")), 1);
    assert_eq!(count_lines(&counts.join("a-bad-dep")), 0);
    assert_eq!(count_lines(&counts.join("b-slow")), 2);
    assert_eq!(count_lines(&counts.join("c-after")), 1);
    assert_eq!(status(&env, &run_id, "a-bad"), "failed");
    assert_eq!(status(&env, &run_id, "a-bad-dep"), "skipped");
    assert_eq!(status(&env, &run_id, "b-slow"), "completed");
    assert_eq!(status(&env, &run_id, "c-after"), "completed");
    assert_eq!(
        env.sql(&format!(
            "SELECT total_workstreams, completed_count, failed_count, skipped_count FROM consolidated_runs WHERE run_id = '{run_id}'"
        )),
        vec![vec!["4", "2", "1", "1"]]
    );
    assert_eq!(
        one(
            &env,
            &format!("SELECT state FROM ws_runs WHERE run_id = '{run_id}'")
        ),
        "finished"
    );
}

#[test]
fn resume_runs_the_selection_the_run_started_with() {
    let env = Env::new();
    let counts = scratch_dir(&env, "counts");
    let c = counts.display();
    let go = env.scratch("go");
    env.ws_cmd(
        "picked",
        &format!(
            "echo x >> {c}/$WS_ID; [ -e '{}' ] || sleep 30",
            go.display()
        ),
    );
    env.ws_cmd("other", &format!("echo x >> {c}/$WS_ID"));
    let run = env.spawn_run(&["--agents", "1", "--only", "picked"]);
    wait_until(SECS_5, "picked to start", || counts.join("picked").exists());
    signal(run.pid(), libc::SIGKILL);
    run.wait(SECS_5);
    std::fs::write(&go, "").unwrap();
    env.ws_run(&["--resume", "latest"]).expect(0);
    assert_eq!(count_lines(&counts.join("picked")), 2);
    assert_eq!(
        count_lines(&counts.join("other")),
        0,
        "not in the run's selection"
    );
    assert_eq!(
        one(&env, "SELECT total_workstreams FROM consolidated_runs"),
        "1"
    );
}

#[test]
fn resume_and_rerun_without_a_database_exit_2_and_create_none() {
    let env = Env::new();
    env.ws_cmd("a", "true");
    for args in [&["--resume", "latest"][..], &["--rerun-failed"][..]] {
        let out = env.ws_run(args);
        out.expect(2);
        one_sentence(&out.stderr);
        assert!(out.stderr.contains("no run"), "{}", out.stderr);
        assert!(!env.db_path().exists(), "{args:?} created a database");
    }
}

#[test]
fn resume_of_a_live_run_is_refused() {
    let env = Env::new();
    env.ws_cmd("slow", "sleep 30");
    let run = env.spawn_run(&["--agents", "1", "--grace", "300ms"]);
    wait_until(SECS_5, "the run to start", || {
        !poll(&env, "SELECT 1 FROM ws_runs").is_empty()
    });
    let out = env.ws_run(&["--resume", "latest"]);
    out.expect(2);
    assert!(out.stderr.contains("still running"), "{}", out.stderr);
    signal(run.pid(), libc::SIGTERM);
    run.wait(SECS_5).expect(130);
}

// 2. Rerun failed -----------------------------------------------------------------------

#[test]
fn rerun_failed_runs_failed_and_skipped_and_links_the_runs() {
    let env = Env::new();
    let counts = scratch_dir(&env, "counts");
    let c = counts.display();
    let fixed = env.scratch("fixed");
    env.ws_cmd("ok", &format!("echo x >> {c}/$WS_ID"));
    env.ws_cmd(
        "flaky",
        &format!("echo x >> {c}/$WS_ID; [ -e '{}' ]", fixed.display()),
    );
    env.ws(
        "dep",
        json!({"id": "dep", "command": format!("echo x >> {c}/$WS_ID"), "depends_on": ["flaky"]}),
    );
    let first = env.ws_run(&["--agents", "2"]);
    first.expect(1);
    let first_id = first.run_id();
    assert_eq!(status(&env, &first_id, "dep"), "skipped");

    std::fs::write(&fixed, "").unwrap();
    let second = env.ws_run(&["--rerun-failed"]);
    second.expect(0);
    let second_id = second.run_id();
    assert_ne!(second_id, first_id);
    assert_eq!(
        count_lines(&counts.join("ok")),
        1,
        "completed work is not rerun"
    );
    assert_eq!(count_lines(&counts.join("flaky")), 2);
    assert_eq!(count_lines(&counts.join("dep")), 1);
    let ids: Vec<Vec<String>> = env.sql(&format!(
        "SELECT workstream_id, status FROM agent_results WHERE run_id = '{second_id}' ORDER BY workstream_id"
    ));
    assert_eq!(
        ids,
        vec![vec!["dep", "completed"], vec!["flaky", "completed"]]
    );
    assert_eq!(
        one(
            &env,
            &format!("SELECT rerun_of FROM ws_runs WHERE run_id = '{second_id}'")
        ),
        first_id
    );
    let report = env.ws_report(&[&second_id, "--format", "json"]);
    report.expect(0);
    let v: serde_json::Value = serde_json::from_str(&report.stdout).unwrap();
    assert_eq!(v["rerun_of"], json!(first_id));

    // Nothing left to rerun: say so, exit 0, start no run.
    let third = env.ws_run(&["--rerun-failed", &second_id]);
    third.expect(0);
    assert!(
        third.stderr.contains("nothing to rerun"),
        "{}",
        third.stderr
    );
    assert_eq!(one(&env, "SELECT count(*) FROM ws_runs"), "2");
}

// 3. Signals ----------------------------------------------------------------------------

fn interrupt_winds_down(sig: i32) {
    let env = Env::new();
    let pids = scratch_dir(&env, "pids");
    let p = pids.display();
    let started = scratch_dir(&env, "started");
    for id in ["a1", "a2"] {
        env.ws_cmd(
            id,
            &format!(
                "sleep 30 & echo $! > {p}/$WS_ID.bg; echo $$ > {p}/$WS_ID.tmp; mv {p}/$WS_ID.tmp {p}/$WS_ID; wait"
            ),
        );
    }
    for id in ["b1", "b2"] {
        env.ws_cmd(id, &format!("touch {}/$WS_ID", started.display()));
    }
    let run = env.spawn_run(&["--agents", "2", "--grace", "300ms"]);
    wait_until(SECS_5, "a1 and a2 to run", || {
        pids.join("a1").exists() && pids.join("a2").exists()
    });
    let t = Instant::now();
    signal(run.pid(), sig);
    let out = run.wait(SECS_5);
    out.expect(130);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(
        out.stderr
            .contains("interrupted: not starting 2 waiting workstream(s); stopping 2 running"),
        "{}",
        out.stderr
    );
    let run_id = out.run_id();
    for id in ["a1", "a2"] {
        assert_eq!(status(&env, &run_id, id), "failed");
        assert_eq!(error_types(&env, &run_id, id), vec!["Cancelled"]);
        for pid in [
            read_pid(&pids.join(id)),
            read_pid(&pids.join(format!("{id}.bg"))),
        ] {
            assert!(!alive(pid), "{id}: process {pid} survived");
        }
    }
    for id in ["b1", "b2"] {
        assert_eq!(status(&env, &run_id, id), "skipped");
        assert_eq!(error_types(&env, &run_id, id), vec!["Cancelled"]);
    }
    assert_eq!(std::fs::read_dir(&started).unwrap().count(), 0);
    assert_eq!(
        env.sql(&format!(
            "SELECT total_workstreams, failed_count, skipped_count FROM consolidated_runs WHERE run_id = '{run_id}'"
        )),
        vec![vec!["4", "2", "2"]]
    );
    assert_eq!(
        one(
            &env,
            &format!("SELECT state FROM ws_runs WHERE run_id = '{run_id}'")
        ),
        "interrupted"
    );
    assert!(env
        .repo
        .join(format!("reports/multi_agent_consolidated_{run_id}.md"))
        .is_file());
    assert_pool_tidy(&env, 2);
}

#[test]
fn sigint_stops_running_skips_waiting_consolidates_and_exits_130() {
    interrupt_winds_down(libc::SIGINT);
}

#[test]
fn sigterm_does_what_sigint_does() {
    interrupt_winds_down(libc::SIGTERM);
}

#[test]
fn a_second_sigint_kills_everything_and_exits_at_once() {
    let env = Env::new();
    let pidfile = env.scratch("stubborn.pid");
    env.ws_cmd(
        "stubborn",
        &format!(
            "trap '' TERM; echo $$ > {0}.tmp; mv {0}.tmp {0}; sleep 30",
            pidfile.display()
        ),
    );
    let run = env.spawn_run(&["--agents", "1", "--grace", "30s"]);
    wait_until(SECS_5, "the stubborn command", || pidfile.exists());
    let pid = read_pid(&pidfile);
    signal(run.pid(), libc::SIGINT);
    wait_until(SECS_5, "the wind-down message", || {
        run.stderr().contains("interrupted:")
    });
    // Past the window in which a signal counts as the same Ctrl-C (git-ws-run's COALESCE).
    std::thread::sleep(Duration::from_millis(1200));
    assert!(alive(pid), "it ignores SIGTERM and the grace is long");
    let t = Instant::now();
    signal(run.pid(), libc::SIGINT);
    let out = run.wait(SECS_5);
    out.expect(130);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert!(out.stderr.contains("interrupted again"), "{}", out.stderr);
    wait_until(SECS_5, "the stubborn command to die", || !alive(pid));
    // Left for --resume to finish.
    assert_eq!(one(&env, "SELECT state FROM ws_runs"), "running");
}

// 4. Concurrent runs --------------------------------------------------------------------

#[test]
fn two_runs_at_the_same_moment_both_complete_apart() {
    let env = Env::new();
    let seen = scratch_dir(&env, "seen");
    for id in ["w1", "w2"] {
        env.ws_cmd(
            id,
            &format!(
                "echo \"$WS_WORKTREE\" > '{}'/$WS_RUN_ID.$WS_ID; echo $WS_ID > $WS_ID.txt; sleep 0.3",
                seen.display()
            ),
        );
    }
    // Start both early in a second so that they share the timestamp of their run id.
    wait_until(Duration::from_secs(2), "the start of a second", || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_millis()
            < 400
    });
    let a = env.spawn_run(&["--agents", "2"]);
    let b = env.spawn_run(&["--agents", "2"]);
    let (a, b) = (
        a.wait(Duration::from_secs(10)),
        b.wait(Duration::from_secs(10)),
    );
    a.expect(0);
    b.expect(0);
    for out in [&a, &b] {
        assert!(!out.stderr.contains("locked"), "{}", out.stderr);
    }
    let (ida, idb) = (a.run_id(), b.run_id());
    assert_ne!(ida, idb);
    let (lo, hi) = if ida.len() < idb.len() {
        (&ida, &idb)
    } else {
        (&idb, &ida)
    };
    assert_eq!(hi, &format!("{lo}-2"), "same second, so a -2 suffix");
    let worktrees = |run: &str| -> std::collections::BTreeSet<String> {
        ["w1", "w2"]
            .iter()
            .map(|id| {
                std::fs::read_to_string(seen.join(format!("{run}.{id}")))
                    .unwrap()
                    .trim()
                    .to_string()
            })
            .collect()
    };
    let (wa, wb) = (worktrees(&ida), worktrees(&idb));
    assert_eq!(wa.len(), 2);
    assert_eq!(wb.len(), 2);
    assert!(wa.is_disjoint(&wb), "{wa:?} {wb:?}");
    for run in [&ida, &idb] {
        assert_eq!(
            env.sql(&format!(
                "SELECT state, completed_count FROM ws_runs JOIN consolidated_runs USING (run_id) WHERE run_id = '{run}'"
            )),
            vec![vec!["finished", "2"]]
        );
    }
    assert_eq!(ws_branches(&env).len(), 4);
    // The overflow worktrees (agent-1-2, agent-2-2) went at the end of their run.
    assert_eq!(assert_pool_tidy(&env, 2).len(), 2);
}

// 5. Bad environments -------------------------------------------------------------------

fn ws_run_in(env: &Env, dir: &Path, args: &[&str]) -> crate::common::Run {
    let out = env
        .command(
            crate::common::bin_dir()
                .join("git-ws-run")
                .to_str()
                .unwrap(),
        )
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    crate::common::Run::from(out)
}

fn one_sentence(stderr: &str) {
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn a_bare_repository_exits_2_and_writes_nothing() {
    let env = Env::new();
    let bare = env.scratch("bare.git");
    env.git(&["clone", "-q", "--bare", ".", bare.to_str().unwrap()]);
    std::fs::create_dir_all(bare.join("workstreams")).unwrap();
    std::fs::write(
        bare.join("workstreams/a.json"),
        r#"{"id": "a", "command": "true"}"#,
    )
    .unwrap();
    let out = ws_run_in(&env, &bare, &[]);
    out.expect(2);
    one_sentence(&out.stderr);
    assert!(out.stderr.contains("bare"), "{}", out.stderr);
    assert!(!bare.join(".state").exists());
    assert!(!bare.join("ws").exists());
    assert!(!bare.parent().unwrap().join(".bare.git.ws-pool").exists());
}

#[test]
fn a_repository_without_commits_exits_2_and_writes_nothing() {
    let env = Env::new();
    let empty = env.scratch("empty");
    std::fs::create_dir_all(empty.join("workstreams")).unwrap();
    let init = env
        .command("git")
        .current_dir(&empty)
        .args(["init", "-q", "-b", "main"])
        .status()
        .unwrap();
    assert!(init.success());
    std::fs::write(
        empty.join("workstreams/a.json"),
        r#"{"id": "a", "command": "true"}"#,
    )
    .unwrap();
    let out = ws_run_in(&env, &empty, &[]);
    out.expect(2);
    one_sentence(&out.stderr);
    assert!(out.stderr.contains("no commits"), "{}", out.stderr);
    assert!(!empty.join(".state").exists());
    assert!(!empty.join(".git/ws").exists());
    assert!(!empty.parent().unwrap().join(".empty.ws-pool").exists());
    assert!(std::fs::read_dir(empty.join(".git/refs/heads"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn a_database_from_a_newer_schema_is_refused_and_left_byte_identical() {
    let env = Env::new();
    env.ws_cmd("a", "true");
    env.ws_run(&["--agents", "1"]).expect(0);
    sql_exec(
        &env.db_path(),
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('99990101000000');",
    );
    let before = std::fs::read(env.db_path()).unwrap();
    let branches = ws_branches(&env);
    let out = env.ws_run(&["--agents", "1"]);
    out.expect(2);
    one_sentence(&out.stderr);
    assert!(out.stderr.contains("newer"), "{}", out.stderr);
    assert!(out.stderr.contains("99990101000000"), "{}", out.stderr);
    assert_eq!(std::fs::read(env.db_path()).unwrap(), before);
    assert_eq!(ws_branches(&env), branches);
}

#[test]
fn an_unwritable_reports_directory_still_records_the_run() {
    let env = Env::new();
    env.ws_cmd("a", "true");
    let file = env.scratch("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let reports = file.join("reports");
    let out = env.ws_run(&["--agents", "1", "--reports-dir", reports.to_str().unwrap()]);
    out.expect(0);
    assert!(
        out.stderr.contains("failed to write the report"),
        "{}",
        out.stderr
    );
    let run_id = out.run_id();
    assert_eq!(status(&env, &run_id, "a"), "completed");
    assert_eq!(
        one(
            &env,
            &format!("SELECT state FROM ws_runs WHERE run_id = '{run_id}'")
        ),
        "finished"
    );
}

// 6. Hostile or careless agents --------------------------------------------------------

/// What the next workstream on the same agent checks: its own branch at the base, nothing
/// left over, no lock.
const CHECK: &str = "git status --porcelain --ignored; git symbolic-ref -q HEAD; \
    test \"$(git symbolic-ref -q HEAD)\" = \"refs/heads/$WS_BRANCH\" && \
    test \"$(git rev-parse HEAD)\" = \"$WS_BASE\" && \
    test -z \"$(git status --porcelain --ignored)\" && \
    test ! -e \"$(git rev-parse --git-dir)/index.lock\" && echo clean";

/// Run `hostile` then the check on one agent; the check must complete. Returns the run id.
fn hostile_then_clean(env: &Env, hostile: serde_json::Value, args: &[&str]) -> String {
    env.ws("a-hostile", hostile);
    env.ws_cmd("b-check", CHECK);
    let mut all = vec!["--agents", "1", "--grace", "300ms"];
    all.extend_from_slice(args);
    let out = env.ws_run(&all);
    let run_id = out.run_id();
    assert!(
        out.code == 0 || out.code == 1,
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let meta = result_json(env, &run_id, "b-check", "metadata");
    assert_eq!(
        status(env, &run_id, "b-check"),
        "completed",
        "the next workstream did not get a clean worktree: {}",
        meta["output_tail"]
    );
    assert_pool_tidy(env, 1);
    run_id
}

fn cmd(command: &str) -> serde_json::Value {
    json!({"id": "a-hostile", "command": command})
}

fn warnings(env: &Env, run: &str, ws: &str) -> String {
    result_json(env, run, ws, "warnings").to_string()
}

#[test]
fn hostile_agent_deletes_its_own_worktree() {
    let env = Env::new();
    let run = hostile_then_clean(
        &env,
        cmd("git commit -q --allow-empty -m kept && cd .. && rm -rf \"$WS_WORKTREE\""),
        &[],
    );
    // Its commits are read from its branch; the lost worktree is a warning.
    assert_eq!(status(&env, &run, "a-hostile"), "completed");
    let w = warnings(&env, &run, "a-hostile");
    assert!(w.contains("gone or broken"), "{w}");
    let commits = result_json(&env, &run, "a-hostile", "commits_created");
    assert_eq!(commits.as_array().unwrap().len(), 1, "{commits}");
}

#[test]
fn hostile_agent_detaches_head() {
    let env = Env::new();
    let run = hostile_then_clean(
        &env,
        cmd("git checkout -q --detach && echo d > d.txt && git add d.txt && git commit -qm d"),
        &[],
    );
    let w = warnings(&env, &run, "a-hostile");
    assert!(w.contains("HEAD"), "{w}");
    assert_eq!(status(&env, &run, "a-hostile"), "completed");
    let files = result_json(&env, &run, "a-hostile", "files_modified");
    assert_eq!(files, json!(["d.txt"]));
}

#[test]
fn hostile_agent_checks_out_another_branch() {
    let env = Env::new();
    let run = hostile_then_clean(
        &env,
        cmd("git checkout -q -b elsewhere && echo o > o.txt && git add o.txt && git commit -qm o"),
        &[],
    );
    let w = warnings(&env, &run, "a-hostile");
    assert!(w.contains("elsewhere"), "{w}");
    let files = result_json(&env, &run, "a-hostile", "files_modified");
    assert_eq!(files, json!(["o.txt"]));
}

#[test]
fn hostile_agent_resets_to_before_the_base() {
    let env = Env::new();
    env.write("second.txt", "second\n");
    env.git(&["add", "second.txt"]);
    env.git(&["commit", "-qm", "second"]);
    let run = hostile_then_clean(&env, cmd("git reset -q --hard HEAD~1"), &[]);
    // The branch stays at the base (it never claims to delete second.txt), with a warning.
    let w = warnings(&env, &run, "a-hostile");
    assert!(w.contains("not on top of the base"), "{w}");
    let files = result_json(&env, &run, "a-hostile", "files_modified");
    assert_eq!(files, json!([]));
    assert_eq!(
        env.git(&["rev-parse", &format!("ws/{run}/a-hostile")]),
        env.git(&["rev-parse", "main"])
    );
}

#[test]
fn hostile_agent_ignores_sigterm_and_is_killed() {
    let env = Env::new();
    let pidfile = env.scratch("pid");
    let t = Instant::now();
    let run = hostile_then_clean(
        &env,
        json!({"id": "a-hostile", "timeout_secs": 1, "command": format!(
            "trap '' TERM; echo $$ > '{}'; sleep 30", pidfile.display()
        )}),
        &[],
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(status(&env, &run, "a-hostile"), "failed");
    assert_eq!(error_types(&env, &run, "a-hostile"), vec!["Timeout"]);
    assert!(!alive(read_pid(&pidfile)));
}

#[test]
fn hostile_agent_escapes_its_process_group_with_setsid() {
    let env = Env::new();
    let pidfile = env.scratch("escaped.pid");
    let run = hostile_then_clean(
        &env,
        cmd(&format!(
            "setsid sleep 30 & echo $! > '{}'; sleep 0.1",
            pidfile.display()
        )),
        &[],
    );
    assert_eq!(status(&env, &run, "a-hostile"), "completed");
    // Found by the tag in its environment, not by its (new) process group.
    assert!(!alive(read_pid(&pidfile)), "the setsid escapee survived");
}

#[test]
fn hostile_agent_writes_100_megabytes_of_output() {
    let env = Env::new();
    let run = hostile_then_clean(
        &env,
        cmd("head -c 100000000 /dev/zero | tr '\\0' x; echo; echo the-last-line"),
        &[],
    );
    assert_eq!(status(&env, &run, "a-hostile"), "completed");
    let meta = result_json(&env, &run, "a-hostile", "metadata");
    let tail = meta["output_tail"].as_str().unwrap();
    assert!(
        tail.ends_with("the-last-line"),
        "{}",
        &tail[tail.len() - 100..]
    );
    assert!(tail.len() <= 16 * 1024, "{}", tail.len());
    // The log is capped at ws.maxLogBytes (10 MiB by default), its end kept.
    let log = PathBuf::from(meta["log_path"].as_str().unwrap());
    let len = std::fs::metadata(&log).unwrap().len();
    assert!((10_000_000..=10_600_000).contains(&len), "{len}");
    let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    assert!(text.contains("bytes of output cut here"));
    assert!(text.trim_end().ends_with("the-last-line"));
}

#[test]
fn hostile_agent_creates_files_named_like_options() {
    let env = Env::new();
    let run = hostile_then_clean(
        &env,
        cmd("echo a > -rf && echo b > --force && mkdir -- -x && echo c > -x/--y"),
        &[],
    );
    assert_eq!(status(&env, &run, "a-hostile"), "completed");
    let mut files: Vec<String> = result_json(&env, &run, "a-hostile", "files_modified")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    files.sort();
    assert_eq!(files, vec!["--force", "-rf", "-x/--y"]);
    assert!(
        !env.repo.join("-rf").exists(),
        "the user's worktree is untouched"
    );
}

#[test]
fn hostile_agent_leaves_an_index_lock() {
    let env = Env::new();
    let run = hostile_then_clean(
        &env,
        cmd("echo n > n.txt && touch \"$(git rev-parse --git-dir)/index.lock\""),
        &[],
    );
    // The lock is stale once the command is gone: cleared, and the work committed.
    assert_eq!(status(&env, &run, "a-hostile"), "completed");
    let files = result_json(&env, &run, "a-hostile", "files_modified");
    assert_eq!(files, json!(["n.txt"]));
    let w = warnings(&env, &run, "a-hostile");
    assert!(w.contains("uncommitted changes"), "{w}");
}

#[test]
fn a_bad_workstream_does_not_stop_the_others() {
    // All of the above at once on two agents: every other workstream still completes.
    let env = Env::new();
    env.ws_cmd("h1", "cd .. && rm -rf \"$WS_WORKTREE\"");
    env.ws_cmd("h2", "git checkout -q --detach");
    env.ws_cmd(
        "h3",
        "touch \"$(git rev-parse --git-dir)/index.lock\"; exit 9",
    );
    for i in 1..=4 {
        env.ws_cmd(&format!("ok{i}"), "echo ok > ok.txt");
    }
    let out = env.ws_run(&["--agents", "2", "--grace", "300ms"]);
    out.expect(1);
    let run = out.run_id();
    for i in 1..=4 {
        assert_eq!(status(&env, &run, &format!("ok{i}")), "completed", "ok{i}");
    }
    assert_pool_tidy(&env, 2);
}
