//! Coding agents end to end: the presets run fake `claude`, `codex`, `aider` and `gemini`
//! executables on PATH (tests/fake-agents: the real CLIs' flags, output shapes and
//! rate-limit failures), and the exact command lines, the parsed usage, budgets, retries,
//! `WS_PORT`, `ws.setupCommand` and `ws.notifyCommand` are checked in the database, the
//! report and the closing summary.

use crate::common::{bin_dir, result_json, signal, status, wait_until, Env, Run};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn fake_agents() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-agents")
}

fn agent_log(env: &Env) -> PathBuf {
    env.scratch("agent-log")
}

/// `git ws-run ARGS` with the fake agents first on PATH.
fn ws_run(env: &Env, args: &[&str]) -> Run {
    let path = format!(
        "{}:{}:{}",
        fake_agents().display(),
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = env
        .command("git")
        .arg("ws-run")
        .args(args)
        .env("PATH", path)
        .env("FAKE_AGENT_LOG", agent_log(env))
        .output()
        .unwrap();
    Run::from(out)
}

/// The arguments a fake agent got on invocation `n` of workstream `ws` (program first).
fn argv(env: &Env, ws: &str, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(agent_log(env).join(format!("{ws}.{n}.argv"))).unwrap();
    let (program, args) = text.split_once('\n').unwrap();
    std::iter::once(program.to_string())
        .chain(
            args.split('\0')
                .filter(|a| !a.is_empty())
                .map(str::to_string),
        )
        .collect()
}

fn invocations(env: &Env, ws: &str) -> usize {
    (1..)
        .take_while(|n| agent_log(env).join(format!("{ws}.{n}.argv")).exists())
        .count()
}

fn report_json(env: &Env) -> Value {
    let out = env.ws_report(&["latest", "--format", "json"]);
    out.expect(0);
    serde_json::from_str(&out.stdout).unwrap()
}

fn words(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const PROMPT: &str = "-Add retries with backoff to src/http.rs";

#[test]
fn presets_run_the_documented_command_lines_and_report_usage_per_agent() {
    let env = Env::new();
    // Best-of-N: the same prompt for four agents.
    for agent in ["claude", "codex", "aider", "gemini"] {
        env.ws(
            &format!("by-{agent}"),
            json!({"id": format!("by-{agent}"), "prompt": PROMPT, "agent": agent}),
        );
    }
    env.git(&["config", "ws.portBase", "31000"]);
    let out = ws_run(&env, &["--agents", "2"]);
    out.expect(0);
    let run = out.run_id();

    assert_eq!(
        argv(&env, "by-claude", 1),
        words(&[
            "claude",
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--include-partial-messages",
            "--permission-mode",
            "acceptEdits",
            "--",
            PROMPT
        ])
    );
    assert_eq!(
        argv(&env, "by-codex", 1),
        words(&[
            "codex",
            "exec",
            "--json",
            "--sandbox",
            // Under git-ws's sandbox (on by default) Codex's own gives way (src/sandbox.rs).
            "danger-full-access",
            "--",
            PROMPT
        ])
    );
    assert_eq!(
        argv(&env, "by-aider", 1),
        words(&[
            "aider",
            &format!("--message={PROMPT}"),
            "--yes-always",
            "--no-pretty",
            "--no-stream",
            "--no-check-update",
            "--no-analytics",
            "--no-gitignore"
        ])
    );
    assert_eq!(
        argv(&env, "by-gemini", 1),
        words(&[
            "gemini",
            &format!("--prompt={PROMPT}"),
            "--output-format",
            "stream-json",
            "--skip-trust",
            "--approval-mode",
            "auto_edit"
        ])
    );

    // Usage in its table, per workstream.
    let rows = env.sql(&format!(
        "SELECT workstream_id, agent, COALESCE(cost_usd, 'none'), input_tokens, output_tokens, \
         COALESCE(turns, 'none'), model, source FROM ws_usage WHERE run_id = '{run}' ORDER BY workstream_id"
    ));
    let rows: Vec<String> = rows.iter().map(|r| r.join(" ")).collect();
    assert_eq!(
        rows,
        vec![
            "by-aider aider 0.01 1200 95 1 gpt-4o aider",
            "by-claude claude 0.01 1200 80 2 claude-sonnet-4-5-20250929 claude",
            "by-codex codex none 2400 150 1 NULL codex",
            "by-gemini gemini none 3000 120 none gemini-2.5-pro gemini",
        ]
    );
    // And in the metadata, with the session id.
    let meta = result_json(&env, &run, "by-claude", "metadata");
    assert_eq!(meta["agent"], "claude");
    assert_eq!(
        meta["usage"]["session_id"],
        "5e7a2c10-0000-4000-8000-000000000001"
    );
    assert_eq!(meta["attempts"].as_array().unwrap().len(), 1);
    // What each agent did is read from git: aider committed, the others left work behind.
    for ws in ["by-claude", "by-codex", "by-aider", "by-gemini"] {
        assert_eq!(status(&env, &run, ws), "completed");
        let files = result_json(&env, &run, ws, "files_modified");
        assert_eq!(files, json!(["AGENT_WORK.md"]), "{ws}");
    }

    // The closing summary, the report and every `git ws-report` format show it.
    assert!(
        out.stdout.contains(
            "\ncost: $0.0200 (aider $0.0100, claude $0.0100, codex n/a, gemini n/a); tokens: 7,800 in / 445 out\n"
        ),
        "{}",
        out.stdout
    );
    let v = report_json(&env);
    let by_agent: BTreeSet<String> = v["usage"]["by_agent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}={}", a["agent"].as_str().unwrap(), a["cost_usd"]))
        .collect();
    assert_eq!(
        by_agent,
        ["aider=0.01", "claude=0.01", "codex=null", "gemini=null"]
            .map(String::from)
            .into()
    );
    assert_eq!(v["usage"]["total"]["input_tokens"], 7800);
    let table = env.ws_report(&["latest", "--agents"]);
    table.expect(0);
    assert!(table.stdout.contains("coding agent"), "{}", table.stdout);
    let md = std::fs::read_to_string(
        env.repo
            .join(format!("reports/multi_agent_consolidated_{run}.md")),
    )
    .unwrap();
    assert!(md.contains("### Usage per coding agent"), "{md}");
    assert!(
        md.contains(
            "| Cost (reported by the agents) | $0.0200 (4 of 4 workstreams reported usage) |"
        ),
        "{md}"
    );

    // WS_PORT: one block per slot, from ws.portBase.
    let ports: BTreeSet<(String, String)> = ["by-claude", "by-codex", "by-aider", "by-gemini"]
        .iter()
        .map(|ws| {
            let e = std::fs::read_to_string(agent_log(&env).join(format!("{ws}.1.env"))).unwrap();
            let get = |k: &str| {
                e.lines()
                    .find_map(|l| l.strip_prefix(&format!("{k}=")))
                    .unwrap()
                    .to_string()
            };
            (get("WS_AGENT_ID"), get("WS_PORT"))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = ports
        .iter()
        .map(|(a, _)| {
            let k: u32 = a.strip_prefix("agent-").unwrap().parse().unwrap();
            (a.clone(), (31000 + 10 * (k - 1)).to_string())
        })
        .collect();
    assert_eq!(ports, expected);
}

#[test]
fn nothing_reported_shows_nothing() {
    let env = Env::new();
    env.ws_cmd("plain", "echo hi > x.txt");
    let out = env.ws_run(&["--agents", "1"]);
    out.expect(0);
    assert!(!out.stdout.contains("cost"), "{}", out.stdout);
    let v = report_json(&env);
    assert!(v.get("usage").is_none(), "{v}");
    assert!(v.get("retries").is_none(), "{v}");
    assert!(v["workstreams"][0].get("usage").is_none());
    assert_eq!(v["workstreams"][0]["agent"], "command");
    let md = env.ws_report(&["latest", "--format", "markdown", "--agents"]);
    assert!(!md.stdout.contains("Usage"), "{}", md.stdout);
}

#[test]
fn agent_flag_and_config_pick_the_preset_and_bad_names_are_refused() {
    let env = Env::new();
    env.ws("p1", json!({"id": "p1", "prompt": "one"}));
    env.git(&["config", "ws.agent", "codex"]);
    env.git(&["config", "ws.agentArgs", "--model gpt-5-codex"]);
    ws_run(&env, &["--agents", "1", "--agent", "gemini"]).expect(0);
    assert_eq!(argv(&env, "p1", 1)[0], "gemini");
    assert_eq!(
        argv(&env, "p1", 1)[7..],
        words(&["--model", "gpt-5-codex"])[..]
    );
    // ws.agentArgs with the preset's permission option replaces the preset's default.
    env.git(&[
        "config",
        "ws.agentArgs",
        "--model gpt-5-codex --sandbox danger-full-access",
    ]);
    ws_run(&env, &["--agents", "1"]).expect(0);
    assert_eq!(
        argv(&env, "p1", 2),
        words(&[
            "codex",
            "exec",
            "--json",
            "--model",
            "gpt-5-codex",
            "--sandbox",
            "danger-full-access",
            "--",
            "one"
        ])
    );
    // --agent-cmd on the command line beats git config ws.agent.
    let out = ws_run(&env, &["--agents", "1", "--agent-cmd", "cat > prompt.txt"]);
    out.expect(0);
    assert_eq!(invocations(&env, "p1"), 2);
    let meta = result_json(&env, &out.run_id(), "p1", "metadata");
    assert_eq!(meta["agent"], "agent-cmd");

    let bad = ws_run(&env, &["--agent", "cursor"]);
    bad.expect(2);
    assert!(
        bad.stderr
            .contains("--agent: unknown agent \"cursor\" (known: claude, codex, aider, gemini)"),
        "{}",
        bad.stderr
    );
    env.git(&["config", "ws.agent", "copilot"]);
    let bad = ws_run(&env, &[]);
    bad.expect(2);
    assert!(
        bad.stderr.contains("git config ws.agent = \"copilot\""),
        "{}",
        bad.stderr
    );
    let bad = ws_run(&env, &["--agent", "claude", "--agent-cmd", "x"]);
    bad.expect(2);
    let bad = ws_run(&env, &["--budget=-1"]);
    bad.expect(2);
    assert!(bad.stderr.contains("--budget"), "{}", bad.stderr);
    // A workstream naming an unknown agent is invalid, the rest still run.
    env.git(&["config", "--unset", "ws.agent"]);
    env.ws(
        "p2",
        json!({"id": "p2", "prompt": "two", "agent": "cursor"}),
    );
    let out = ws_run(&env, &["--agents", "1", "--agent", "claude", "--dry-run"]);
    out.expect(1);
    assert!(
        out.stdout
            .contains("p2.json: field \"agent\": unknown agent \"cursor\""),
        "{}",
        out.stdout
    );
}

#[test]
fn max_cost_usd_stops_an_agent_while_it_runs() {
    let env = Env::new();
    // Aider reports its session cost line by line: 50 steps of $0.01, 0.1 s apart.
    env.ws(
        "spender",
        json!({"id": "spender", "prompt": "spend", "agent": "aider", "max_cost_usd": 0.03,
               "env": {"FAKE_STEPS": "50", "FAKE_SLEEP": "0.1"}}),
    );
    // Claude Code enforces its own cap: git-ws passes it as --max-budget-usd.
    env.ws(
        "capped",
        json!({"id": "capped", "prompt": "cap", "agent": "claude", "max_cost_usd": 0.005}),
    );
    // Any command: a $WS_METRICS file that grows.
    env.ws(
        "metered",
        json!({"id": "metered", "max_cost_usd": 0.5, "command":
            "for c in 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1.0; do printf '{\"cost_usd\": %s}' $c > \"$WS_METRICS\"; sleep 0.1; done; touch finished"}),
    );
    let out = ws_run(&env, &["--agents", "3"]);
    out.expect(1);
    let run = out.run_id();
    for ws in ["spender", "capped", "metered"] {
        assert_eq!(status(&env, &run, ws), "failed");
        let e = env.sql(&format!(
            "SELECT error_type, error_message FROM consolidated_errors WHERE run_id = '{run}' AND workstream_id = '{ws}'"
        ));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0][0], "BudgetExceeded", "{ws}: {e:?}");
    }
    let cost = |ws: &str| -> f64 {
        env.sql(&format!(
            "SELECT cost_usd FROM ws_usage WHERE run_id = '{run}' AND workstream_id = '{ws}'"
        ))[0][0]
            .parse()
            .unwrap()
    };
    let spent = cost("spender");
    assert!(
        (0.04..0.2).contains(&spent),
        "stopped soon after $0.03: {spent}"
    );
    assert!(cost("metered") > 0.5 && cost("metered") < 1.0);
    assert_eq!(cost("capped"), 0.01);
    let a = argv(&env, "capped", 1);
    assert_eq!(
        a[a.len() - 4..],
        words(&["--max-budget-usd", "0.005", "--", "cap"])[..]
    );
    let e = env.sql(&format!(
        "SELECT error_message FROM consolidated_errors WHERE run_id = '{run}' AND workstream_id = 'spender'"
    ));
    assert!(
        e[0][0].contains("more than its max_cost_usd of $0.03: stopped"),
        "{e:?}"
    );
    // Stopped like a timeout: the command never finished.
    let wt = result_json(&env, &run, "metered", "metadata")["worktree"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!Path::new(&wt).join("finished").exists());
}

#[test]
fn the_run_budget_stops_dispatching_and_defers_the_rest() {
    let env = Env::new();
    for id in ["b1", "b2", "b3", "b4"] {
        env.ws(id, json!({"id": id, "prompt": id, "agent": "claude"}));
    }
    let out = ws_run(&env, &["--agents", "1", "--budget", "0.015"]);
    // Paused (4): `--resume RUN --budget X` continues it (tests/integration/pause.rs).
    out.expect(4);
    let run = out.run_id();
    let rows = env.sql(&format!(
        "SELECT status, COUNT(*) FROM agent_results WHERE run_id = '{run}' GROUP BY status ORDER BY status"
    ));
    assert_eq!(rows, vec![vec!["completed", "2"], vec!["deferred", "2"]]);
    let skips = env.sql(&format!(
        "SELECT DISTINCT error_type, error_message FROM consolidated_errors WHERE run_id = '{run}'"
    ));
    assert_eq!(
        skips,
        vec![vec![
            "BudgetExceeded".to_string(),
            "not started: the run's --budget of $0.015 was spent ($0.02 recorded)".to_string()
        ]]
    );
    assert!(out.stdout.contains("cost: $0.0200"), "{}", out.stdout);
}

#[test]
fn transient_failures_are_retried_from_a_clean_branch_with_backoff() {
    let env = Env::new();
    env.git(&["config", "ws.retryBackoff", "20ms"]);
    env.git(&[
        "config",
        "--add",
        "ws.transientPattern",
        "(?i)connection reset",
    ]);
    // Codex is rate-limited twice, then works.
    env.ws(
        "flaky",
        json!({"id": "flaky", "prompt": "p", "agent": "codex", "retries": 3,
               "env": {"FAKE_FAILS": "2"}}),
    );
    // Claude stays overloaded: retried once (--retries 1), then it fails.
    env.ws(
        "down",
        json!({"id": "down", "prompt": "p", "agent": "claude", "env": {"FAKE_FAILS": "9"}}),
    );
    // A plain command: its first attempt leaves a file and fails with a configured
    // transient message; the retry must not see the file.
    let state = env.scratch("reset-state");
    env.ws(
        "reset",
        json!({"id": "reset", "command": format!(
            "if [ -e leftover ]; then echo dirty; exit 9; fi; touch leftover; \
             if [ ! -e '{s}' ]; then touch '{s}'; echo 'read: Connection reset by peer'; exit 1; fi; \
             rm leftover; echo ok > done.txt", s = state.display())}),
    );
    // Never retried: a real failure, and a timeout.
    env.ws(
        "broken",
        json!({"id": "broken", "command": "echo 'syntax error'; exit 2", "retries": 3}),
    );
    env.ws(
        "slow",
        json!({"id": "slow", "command": "sleep 5", "timeout_secs": 0.3, "retries": 3}),
    );
    let out = ws_run(
        &env,
        &["--agents", "3", "--retries", "1", "--grace", "100ms"],
    );
    out.expect(1);
    let run = out.run_id();
    let attempts = |ws: &str| -> Vec<Vec<String>> {
        env.sql(&format!(
            "SELECT attempt, outcome, COALESCE(retry_reason, '-'), COALESCE(backoff_seconds, -1) \
             FROM ws_attempts WHERE run_id = '{run}' AND workstream_id = '{ws}' ORDER BY attempt"
        ))
    };
    assert_eq!(status(&env, &run, "flaky"), "completed");
    let a = attempts("flaky");
    assert_eq!(a.len(), 3, "{a:?}");
    assert_eq!(a[0][1], "CommandFailed");
    assert_eq!(a[0][2], "codex reported 429 Too Many Requests");
    assert_eq!(a[2][1..3], ["completed".to_string(), "-".to_string()]);
    let b1: f64 = a[0][3].parse().unwrap();
    let b2: f64 = a[1][3].parse().unwrap();
    assert!(
        (0.01..=0.02).contains(&b1) && (0.02..=0.04).contains(&b2),
        "{a:?}"
    );
    assert_eq!(invocations(&env, "flaky"), 3);

    assert_eq!(status(&env, &run, "down"), "failed");
    assert_eq!(attempts("down").len(), 2, "--retries 1");
    assert_eq!(attempts("down")[0][2], "claude reported overloaded_error");

    assert_eq!(status(&env, &run, "reset"), "completed");
    let a = attempts("reset");
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(
        a[0][2],
        "output matched ws.transientPattern \"(?i)connection reset\""
    );
    assert_eq!(
        result_json(&env, &run, "reset", "files_modified"),
        json!(["done.txt"])
    );

    assert_eq!(attempts("broken").len(), 1);
    assert_eq!(attempts("slow").len(), 1);
    assert_eq!(attempts("slow")[0][1], "Timeout");

    // The report lists the retried workstreams and which were flaky.
    let v = report_json(&env);
    let retried: Vec<String> = v["retries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}:{}:{}",
                r["workstream_id"].as_str().unwrap(),
                r["attempts"],
                r["flaky"]
            )
        })
        .collect();
    assert_eq!(retried.len(), 3, "{retried:?}");
    for want in ["flaky:3:true", "down:2:false", "reset:2:true"] {
        assert!(retried.contains(&want.to_string()), "{retried:?}");
    }
    assert!(out.stdout.contains("retried: "), "{}", out.stdout);
    let md = env.ws_report(&["latest", "--format", "markdown", "--errors"]);
    assert!(
        md.stdout.contains("### Retried workstreams"),
        "{}",
        md.stdout
    );
    assert!(
        md.stdout
            .contains("**flaky** (codex): 3 attempts, completed (flaky)"),
        "{}",
        md.stdout
    );
}

#[test]
fn metrics_files_count_and_hostile_ones_only_warn() {
    let env = Env::new();
    let write = |id: &str, content: &str| {
        env.write(&format!("m/{id}.json"), content);
        env.ws(
            id,
            json!({"id": id, "command": format!("cp m/{id}.json \"$WS_METRICS\"")}),
        );
    };
    write(
        "good",
        r#"{"cost_usd": 0.25, "input_tokens": 1000, "output_tokens": 50, "model": "local-llm", "latency_ms": 840}"#,
    );
    write("garbage", "\u{1}not json at all");
    write("negative", r#"{"cost_usd": -5, "input_tokens": 10}"#);
    env.write(
        "m/huge.json",
        &format!("{{\"pad\": \"{}\"}}", "x".repeat(100_000)),
    );
    env.ws(
        "huge",
        json!({"id": "huge", "command": "cp m/huge.json \"$WS_METRICS\""}),
    );
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "metrics samples"]);
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(0);
    let run = out.run_id();
    let usage = env.sql(&format!(
        "SELECT workstream_id, COALESCE(cost_usd, 'none'), input_tokens, COALESCE(model, 'none'), source \
         FROM ws_usage WHERE run_id = '{run}' ORDER BY workstream_id"
    ));
    assert_eq!(
        usage,
        vec![
            vec!["good", "0.25", "1000", "local-llm", "metrics"],
            vec!["negative", "none", "10", "none", "metrics"],
        ]
    );
    let meta = result_json(&env, &run, "good", "metadata");
    assert_eq!(meta["usage"]["extra"]["latency_ms"], 840);
    for (ws, says) in [
        ("garbage", "is not valid JSON"),
        ("negative", "field \"cost_usd\" must be a number of dollars"),
        ("huge", "more than 65536: ignored"),
    ] {
        let w: Vec<String> =
            serde_json::from_value(result_json(&env, &run, ws, "warnings")).unwrap();
        let w = w.join("\n");
        assert!(
            w.contains("WS_METRICS file") && w.contains(says),
            "{ws}: {w}"
        );
        assert_eq!(status(&env, &run, ws), "completed");
    }
}

#[test]
fn setup_runs_once_per_worktree_and_again_when_the_base_changes() {
    let env = Env::new();
    let marks = env.scratch("setup-runs");
    env.git(&[
        "config",
        "ws.setupCommand",
        &format!(
            "echo \"$WS_AGENT_ID $WS_PORT\" >> '{}'; mkdir -p node_modules",
            marks.display()
        ),
    ]);
    env.git(&["config", "ws.keepIgnored", "node_modules"]);
    env.write(".gitignore", "node_modules/\n");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "ignore node_modules"]);
    for id in ["s1", "s2", "s3", "s4"] {
        env.ws_cmd(id, "test -d node_modules && sleep 0.2");
    }
    let runs = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_to_string(&marks)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    env.ws_run(&["--agents", "2"]).expect(0);
    assert_eq!(runs(), vec!["agent-1 20000", "agent-2 20010"]);
    env.ws_run(&["--agents", "2"]).expect(0);
    assert_eq!(runs().len(), 2, "same base, same worktrees: no setup");
    env.write("more.txt", "x\n");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "move the base"]);
    env.ws_run(&["--agents", "2"]).expect(0);
    assert_eq!(
        runs().len(),
        4,
        "the base changed: setup again, once per worktree"
    );
    env.ws_run(&["--agents", "2", "--remove-worktrees"])
        .expect(0);
    assert_eq!(runs().len(), 4);
    env.ws_run(&["--agents", "1"]).expect(0);
    assert_eq!(runs().len(), 5, "a new worktree: setup again");
}

#[test]
fn a_failing_setup_is_the_slots_failure_not_the_workstreams() {
    let env = Env::new();
    env.git(&[
        "config",
        "ws.setupCommand",
        "echo 'npm ERR! network' >&2; exit 7",
    ]);
    env.ws_cmd("w1", "echo never > x");
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(1);
    let run = out.run_id();
    let e = env.sql(&format!(
        "SELECT error_type, error_message FROM consolidated_errors WHERE run_id = '{run}' AND workstream_id = 'w1'"
    ));
    assert_eq!(e[0][0], "GitError");
    assert!(
        e[0][1].contains("a fault of git-ws, not of the workstream"),
        "{e:?}"
    );
    assert!(
        e[0][1].contains("the setup command (ws.setupCommand) exited with status 7"),
        "{e:?}"
    );
    let log = env
        .repo
        .join(format!(".state/logs/{run}/setup-agent-1.log"));
    assert!(std::fs::read_to_string(log)
        .unwrap()
        .contains("npm ERR! network"));
}

#[test]
fn the_notify_command_gets_the_runs_json_also_when_interrupted() {
    let env = Env::new();
    let got = env.scratch("notified.json");
    env.git(&[
        "config",
        "ws.notifyCommand",
        &format!(
            "cat > '{}'; echo \"$WS_EXIT_CODE\" >> '{}.code'",
            got.display(),
            got.display()
        ),
    ]);
    env.ws_cmd("quick", "echo hi > hi.txt");
    let out = env.ws_run(&["--agents", "1", "--format", "json"]);
    out.expect(0);
    let sent = std::fs::read_to_string(&got).unwrap();
    assert_eq!(sent, out.stdout, "the same object as --format json");
    let v: Value = serde_json::from_str(&sent).unwrap();
    assert_eq!(v["interrupted"], false);

    // Interrupted: still notified, and says so.
    std::fs::remove_file(&got).unwrap();
    env.ws_cmd("quick", "sleep 30");
    let spawned = env.spawn_run(&["--agents", "1", "--grace", "200ms"]);
    let logs = env.repo.join(".state/logs");
    wait_until(Duration::from_secs(10), "the workstream to start", || {
        std::fs::read_dir(&logs)
            .is_ok_and(|d| d.flatten().any(|r| r.path().join("quick.pgid").exists()))
    });
    signal(spawned.pid(), libc::SIGINT);
    let out = spawned.wait(Duration::from_secs(20));
    assert_eq!(out.code, 130, "{}", out.stderr);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&got).unwrap()).unwrap();
    assert_eq!(v["interrupted"], true);
    assert_eq!(v["exit_code"], 130);
    let codes = std::fs::read_to_string(format!("{}.code", got.display())).unwrap();
    assert_eq!(codes, "0\n130\n");
}

#[test]
fn ports_are_unique_across_concurrent_runs() {
    let env = Env::new();
    let ports = env.scratch("ports");
    let go = env.scratch("go");
    std::fs::create_dir_all(&ports).unwrap();
    // Run A's workstreams wait until run B's have recorded their ports.
    let record = |dir: &str, id: &str, then: &str| {
        env.write(
            &format!("{dir}/{id}.json"),
            &json!({"id": id, "command": format!(
                "echo \"$WS_PORT\" > '{}/{id}'; {then}", ports.display())})
            .to_string(),
        );
    };
    let wait_go = format!(
        "i=0; while [ ! -e '{}' ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done",
        go.display()
    );
    record("wa", "a1", &wait_go);
    record("wa", "a2", &wait_go);
    let count = format!(
        "while [ $(ls '{}' | wc -l) -lt 4 ]; do sleep 0.05; done; touch '{}'",
        ports.display(),
        go.display()
    );
    record("wb", "b1", &count);
    record("wb", "b2", &count);
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "two backlogs"]);
    let a = env.spawn_run(&["--agents", "2", "--workstreams", "wa", "--db", "a.db"]);
    wait_until(Duration::from_secs(10), "run A to start", || {
        ports.join("a1").exists() && ports.join("a2").exists()
    });
    let b = env.ws_run(&["--agents", "2", "--workstreams", "wb", "--db", "b.db"]);
    b.expect(0);
    assert_eq!(a.wait(Duration::from_secs(20)).code, 0);
    let got: BTreeSet<u32> = ["a1", "a2", "b1", "b2"]
        .iter()
        .map(|id| {
            std::fs::read_to_string(ports.join(id))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    // agent-1, agent-2 for run A; the overflow slots agent-1-2, agent-2-2 for run B.
    assert_eq!(got, [20000, 20010, 30000, 30640].into());
}

/// The demo's two prompt workstreams (fixtures/demo): `faq` is run by the `claude` preset,
/// which finds the demo's scripted Claude Code first on PATH and reads its stream-json usage;
/// `release-notes` by `--agent-cmd`, whose agent writes a `$WS_METRICS` file. The report
/// shows the cost per coding agent.
#[test]
fn the_demos_prompt_workstreams_show_cost_per_agent() {
    let Env { tmp, home, .. } = Env::new();
    let env = Env {
        repo: tmp.path().join("demo"),
        tmp,
        home,
    };
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    let made = env
        .command("sh")
        .arg(demo.join("make-repo.sh"))
        .arg(&env.repo)
        .current_dir(env.tmp.path())
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let path = format!(
        "{}:{}:{}",
        env.repo.join("agents/bin").display(),
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Run::from(
        env.command("git")
            .args(["ws-run", "--agents", "2", "--only", "faq,release-notes"])
            .args(["--agent-cmd", "sh agents/prompt-agent.sh"])
            .env("PATH", path)
            .output()
            .unwrap(),
    );
    out.expect(0);
    assert!(
        out.stdout.contains(
            "\ncost: $0.0859 (agent-cmd $0.0125, claude $0.0734); tokens: 20,520 in / 792 out\n"
        ),
        "{}",
        out.stdout
    );
    let run = out.run_id();
    let md = std::fs::read_to_string(
        env.repo
            .join(format!("reports/multi_agent_consolidated_{run}.md")),
    )
    .unwrap();
    for row in [
        "| Cost (reported by the agents) | $0.0859 (2 of 2 workstreams reported usage) |",
        "| agent-cmd | 1 | \\$0.0125 | 2,100 | 180 | n/a | demo-notes-1 |",
        "| claude | 1 | \\$0.0734 | 18,420 | 612 | 3 | claude-sonnet-4-5-20250929 |",
    ] {
        assert!(md.contains(row), "{row}\n{md}");
    }
    let v = report_json(&env);
    let ws = |id: &str| -> Value {
        v["workstreams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["workstream_id"] == id)
            .unwrap()
            .clone()
    };
    let faq = ws("faq");
    assert_eq!(faq["agent"], "claude");
    assert_eq!(faq["usage"]["session_id"], "demo-session-faq");
    assert_eq!(faq["usage"]["cached_input_tokens"], 12288);
    let notes = ws("release-notes");
    assert_eq!(notes["agent"], "agent-cmd");
    assert_eq!(notes["usage"]["extra"]["engine"], "scripted", "{notes}");
}

#[test]
fn a_prompt_that_changes_nothing_warns_and_fails_with_ws_require_changes() {
    let env = Env::new();
    env.ws(
        "idle",
        json!({"id": "idle", "prompt": "do nothing", "agent": "claude", "env": {"FAKE_IDLE": "1"}}),
    );
    env.ws(
        "busy",
        json!({"id": "busy", "prompt": "do something", "agent": "claude"}),
    );
    // A shell command that changes nothing is not an agent that did no work.
    env.ws_cmd("check", "true");
    let warned = |run: &str, ws: &str| {
        result_json(&env, run, ws, "warnings")
            .as_array()
            .unwrap()
            .iter()
            .any(|w| {
                w.as_str()
                    .unwrap_or_default()
                    .contains("the agent changed nothing")
            })
    };

    let out = ws_run(&env, &["--agents", "2"]);
    out.expect(0);
    let run = out.run_id();
    assert_eq!(status(&env, &run, "idle"), "completed");
    assert!(warned(&run, "idle"), "{}", out.stdout);
    assert!(!warned(&run, "busy"));
    assert!(!warned(&run, "check"));

    env.git(&["config", "ws.requireChanges", "true"]);
    let out = ws_run(&env, &["--agents", "2"]);
    out.expect(1);
    let run = out.run_id();
    assert_eq!(status(&env, &run, "idle"), "failed");
    let errors = result_json(&env, &run, "idle", "errors");
    assert_eq!(errors[0]["type"], "NoChanges", "{errors}");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("ws.requireChanges"),
        "{errors}"
    );
    assert_eq!(status(&env, &run, "busy"), "completed");
    assert_eq!(status(&env, &run, "check"), "completed");

    env.git(&["config", "ws.requireChanges", "perhaps"]);
    let out = ws_run(&env, &["--agents", "2"]);
    out.expect(2);
    assert!(
        out.stderr.contains("ws.requireChanges = \"perhaps\""),
        "{}",
        out.stderr
    );
}
