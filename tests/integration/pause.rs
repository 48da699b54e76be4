//! Pause, don't fail: an agent CLI that reports a usage limit with a reset defers its
//! workstream; dispatch to that agent waits for the reset within `ws.maxWait` while other
//! agents' workstreams go on; past it the run ends `paused` (exit 4) and
//! `git ws-run --resume` finishes it, waiting for the reset when started early; a spent
//! `--budget` defers what has not started and `--resume --budget` continues. The `claude`
//! here is a script that prints Claude Code's usage-limit result until a reset time kept in
//! a file; the other agents are the fake CLIs of `tests/fake-agents`.

use crate::common::{bin_dir, status, Env, Run};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

const EXIT_PAUSED: i32 = 4;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A `claude` that, while `date +%s` is before the epoch in `$LIMIT_FILE`, prints Claude
/// Code's stream-json result for a hit usage limit (`Claude AI usage limit reached|<epoch>`)
/// and exits 1; after it, does its work (a line in AGENT_WORK.md) and succeeds. Each call
/// appends `<WS_ID> <epoch now>` to `$CALLS`.
fn limited_claude(env: &Env) -> PathBuf {
    let dir = env.scratch("limited-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let script = r#"#!/bin/sh
now=$(date +%s)
echo "$WS_ID $now" >>"$CALLS"
reset=$(cat "$LIMIT_FILE" 2>/dev/null || echo 0)
sid=0b7c2f5e-3a41-4a8e-9d55-1c1f1f6a2e10
echo '{"type":"system","subtype":"init","cwd":"'"$PWD"'","session_id":"'$sid'","tools":["Edit"],"model":"claude-sonnet-4-5","permissionMode":"bypassPermissions"}'
if [ "$now" -lt "$reset" ]; then
    echo '{"type":"result","subtype":"success","is_error":true,"duration_ms":40,"num_turns":1,"result":"Claude AI usage limit reached|'"$reset"'","session_id":"'$sid'","total_cost_usd":0,"usage":{"input_tokens":0,"output_tokens":0}}'
    exit 1
fi
echo "work of $WS_ID" >>AGENT_WORK.md
echo '{"type":"result","subtype":"success","is_error":false,"duration_ms":40,"num_turns":1,"result":"Done.","session_id":"'$sid'","total_cost_usd":0.01,"usage":{"input_tokens":100,"output_tokens":10}}'
"#;
    let path = dir.join("claude");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn fake_agents() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-agents")
}

/// `git ws-run ARGS` with the limited `claude` first on PATH, then the fake agents.
fn ws_run(env: &Env, args: &[&str]) -> Run {
    let path = format!(
        "{}:{}:{}:{}",
        limited_claude(env).display(),
        fake_agents().display(),
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = env
        .command("git")
        .arg("ws-run")
        .args(args)
        .env("PATH", path)
        .env("FAKE_AGENT_LOG", env.scratch("agent-log"))
        .env("LIMIT_FILE", env.scratch("limit"))
        .env("CALLS", env.scratch("calls"))
        .output()
        .unwrap();
    Run::from(out)
}

fn set_reset(env: &Env, epoch: u64) {
    std::fs::write(env.scratch("limit"), epoch.to_string()).unwrap();
}

/// The calls of the limited `claude`: (workstream, epoch second).
fn calls(env: &Env) -> Vec<(String, u64)> {
    std::fs::read_to_string(env.scratch("calls"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (id, t) = l.split_once(' ')?;
            Some((id.to_string(), t.parse().ok()?))
        })
        .collect()
}

fn workstreams(env: &Env) {
    env.ws(
        "limited",
        json!({"id": "limited", "prompt": "limited work", "agent": "claude"}),
    );
    for id in ["other-1", "other-2"] {
        env.ws(id, json!({"id": id, "prompt": id, "agent": "codex"}));
    }
}

fn run_state(env: &Env, run: &str) -> String {
    env.sql(&format!("SELECT state FROM ws_runs WHERE run_id = '{run}'"))[0][0].clone()
}

#[test]
fn within_max_wait_the_limited_workstream_runs_again_after_the_reset_while_others_go_on() {
    let env = Env::new();
    workstreams(&env);
    env.git(&["config", "ws.maxWait", "1m"]);
    let reset = now_secs() + 4;
    set_reset(&env, reset);
    let out = ws_run(&env, &["--agents", "2"]);
    out.expect(0);
    let run = out.run_id();
    for id in ["limited", "other-1", "other-2"] {
        assert_eq!(status(&env, &run, id), "completed", "{id}\n{}", out.stdout);
    }
    let c = calls(&env);
    assert_eq!(c.len(), 2, "one limited call, one after the reset: {c:?}");
    assert!(c[0].1 < reset && c[1].1 >= reset, "{c:?} (reset {reset})");
    // The other agent's workstreams finished before the reset: they did not wait.
    let ends = env.sql(&format!(
        "SELECT workstream_id, end_time FROM agent_results WHERE run_id = '{run}' AND workstream_id LIKE 'other-%'"
    ));
    for row in ends {
        let end = chrono::DateTime::parse_from_rfc3339(&row[1]).unwrap();
        assert!(
            (end.timestamp() as u64) < reset,
            "{} ended at {end}, after the reset {reset}",
            row[0]
        );
    }
    assert_eq!(run_state(&env, &run), "finished");
}

#[test]
fn past_max_wait_the_run_pauses_and_resume_waits_for_the_reset() {
    let env = Env::new();
    workstreams(&env);
    env.git(&["config", "ws.maxWait", "1s"]);
    let reset = now_secs() + 6;
    set_reset(&env, reset);
    let out = ws_run(&env, &["--agents", "2"]);
    out.expect(EXIT_PAUSED);
    let run = out.run_id();
    assert_eq!(status(&env, &run, "limited"), "deferred");
    assert_eq!(status(&env, &run, "other-1"), "completed");
    assert_eq!(status(&env, &run, "other-2"), "completed");
    assert_eq!(run_state(&env, &run), "paused");
    let reset_text = chrono::DateTime::from_timestamp(reset as i64, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(out.stdout.contains("1 deferred"), "{}", out.stdout);
    assert!(out.stdout.contains(&reset_text), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("git ws-run --resume {run}")),
        "{}",
        out.stdout
    );
    let errors = env.sql(&format!(
        "SELECT error_type, error_message FROM consolidated_errors WHERE run_id = '{run}' AND workstream_id = 'limited' ORDER BY error_type"
    ));
    assert_eq!(errors[1][0], "UsageLimit", "{errors:?}");
    assert!(
        errors[1][1].contains("Claude AI usage limit reached"),
        "{errors:?}"
    );
    // Merging a paused run is refused like any unfinished run.
    let merge = env
        .command("git")
        .args(["ws-merge", &run])
        .output()
        .unwrap();
    assert_eq!(merge.status.code(), Some(2));

    // Resumed before the reset, still past ws.maxWait: paused again, claude not run.
    let again = ws_run(&env, &["--resume", &run]);
    again.expect(EXIT_PAUSED);
    assert!(again.stdout.contains(&reset_text), "{}", again.stdout);
    assert_eq!(calls(&env).len(), 1, "{:?}", calls(&env));

    // Resumed with a wait that reaches the reset: it waits, runs it, the run finishes.
    env.git(&["config", "ws.maxWait", "1m"]);
    let done = ws_run(&env, &["--resume", &run]);
    done.expect(0);
    assert_eq!(status(&env, &run, "limited"), "completed");
    let c = calls(&env);
    assert_eq!(c.len(), 2, "{c:?}");
    assert!(c[1].1 >= reset, "{c:?} (reset {reset})");
    assert_eq!(run_state(&env, &run), "finished");
}

#[test]
fn a_spent_budget_defers_what_has_not_started_and_resume_with_a_budget_continues() {
    let env = Env::new();
    for id in ["b1", "b2", "b3", "b4"] {
        env.ws(id, json!({"id": id, "prompt": id, "agent": "claude"}));
    }
    let out = ws_run(&env, &["--agents", "1", "--budget", "0.015"]);
    out.expect(EXIT_PAUSED);
    let run = out.run_id();
    let rows = env.sql(&format!(
        "SELECT status, COUNT(*) FROM agent_results WHERE run_id = '{run}' GROUP BY status ORDER BY status"
    ));
    assert_eq!(rows, vec![vec!["completed", "2"], vec!["deferred", "2"]]);
    assert!(out.stdout.contains("--budget was spent"), "{}", out.stdout);
    assert_eq!(run_state(&env, &run), "paused");

    let more = ws_run(&env, &["--resume", &run, "--budget", "1"]);
    more.expect(0);
    let rows = env.sql(&format!(
        "SELECT status, COUNT(*) FROM agent_results WHERE run_id = '{run}' GROUP BY status"
    ));
    assert_eq!(rows, vec![vec!["completed", "4"]]);
    assert_eq!(run_state(&env, &run), "finished");
}

/// `git-ws-run ARGS` started in `env` with the fake agents on PATH (each claude call
/// reports $0.01 after a second).
fn spawn_with_agents(env: &Env, args: &[&str]) -> crate::common::Spawned {
    let stderr_path = env.scratch("ws-run.stderr");
    let path = format!(
        "{}:{}:{}",
        fake_agents().display(),
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = env
        .command(bin_dir().join("git-ws-run").to_str().unwrap())
        .args(args)
        .env("PATH", path)
        .env("FAKE_AGENT_LOG", env.scratch("agent-log"))
        .env("FAKE_SLEEP", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    crate::common::Spawned { child, stderr_path }
}

/// Two workers on one shared run (PostgreSQL), the second joining once the first has
/// recorded $0.02 of a $0.025 budget: the budget is one sum of what both recorded, so the
/// joiner stops after at most two workstreams of its own — with a budget per process it
/// would run three ($0.03), and before this a shared run had no budget at all (all 8 ran).
#[test]
fn a_shared_runs_budget_is_one_sum_across_its_workers() {
    use crate::pgcluster::{self, psql};
    use std::time::Duration;
    let Some(url) = pgcluster::cluster().map(|c| c.database("pause_budget")) else {
        return;
    };
    let wss: Vec<(String, serde_json::Value)> = (1..=8)
        .map(|i| {
            let id = format!("w{i}");
            (
                id.clone(),
                json!({"id": id, "prompt": id, "agent": "claude"}),
            )
        })
        .collect();
    let (_src, bare) = crate::queue::origin(&wss);
    let a = crate::queue::clone_of(&bare, "a", "5s");
    let b = crate::queue::clone_of(&bare, "b", "5s");
    let common = [
        "--agents", "1", "--db", &url, "--remote", "origin", "--budget", "0.025",
    ];
    let coord = spawn_with_agents(&a, &[&common[..], &["--worker", "a"]].concat());
    let completed = || {
        psql(
            &url,
            "SELECT count(*) FROM agent_results WHERE status = 'completed'",
        )
        .ok()
        .and_then(|r| r.first().and_then(|r| r[0].parse::<usize>().ok()))
        .unwrap_or(0)
    };
    crate::common::wait_until(Duration::from_secs(60), "two results of worker a", || {
        completed() >= 2
    });
    let joiner = spawn_with_agents(
        &b,
        &[&common[..], &["--join", "latest", "--worker", "b"]].concat(),
    );
    let coord = coord.wait(Duration::from_secs(120));
    let joined = joiner.wait(Duration::from_secs(120));
    assert_eq!(
        coord.code, EXIT_PAUSED,
        "{}\n{}",
        coord.stdout, coord.stderr
    );
    assert!(
        [0, EXIT_PAUSED].contains(&joined.code),
        "{}\n{}",
        joined.stdout,
        joined.stderr
    );
    let run = coord.run_id();
    let rows = psql(
        &url,
        &format!(
            "SELECT status, agent_id LIKE '%@b', count(*) FROM agent_results WHERE run_id = '{run}' GROUP BY 1, 2 ORDER BY 1, 2"
        ),
    )
    .unwrap();
    let count = |status: &str, by_b: Option<&str>| -> usize {
        rows.iter()
            .filter(|r| r[0] == status && by_b.is_none_or(|b| r[1] == b))
            .map(|r| r[2].parse::<usize>().unwrap())
            .sum()
    };
    assert!(rows.iter().all(|r| r[1] == "t" || r[1] == "f"), "{rows:?}");
    assert_eq!(
        count("completed", None) + count("deferred", None),
        8,
        "{rows:?}"
    );
    assert!(
        count("completed", Some("t")) <= 2,
        "worker b ran on its own budget: {rows:?}"
    );
    // A worker's own last result may reach the database just after its next claim.
    assert!(count("completed", None) <= 6, "{rows:?}");
    assert!(count("deferred", None) >= 3, "{rows:?}");
    let state = psql(
        &url,
        &format!("SELECT state FROM ws_runs WHERE run_id = '{run}'"),
    )
    .unwrap();
    assert_eq!(state[0][0], "paused");
    assert!(
        coord.stdout.contains("--budget was spent"),
        "{}",
        coord.stdout
    );
}
