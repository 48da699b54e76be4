//! The real coding-agent CLIs as the judge: every preset runs the CLI itself (Claude Code,
//! Codex CLI, Gemini CLI, aider, at the versions `scripts/install-agents.sh` pins) through
//! `git ws-run --agent NAME`, against the scripted model server on 127.0.0.1
//! (`model_server.rs`). Two prompt workstreams must land their edits on `ws/<run>/<id>` and
//! record exactly the token counts the server sent; a rate limit (429) must be retried by
//! git-ws once the CLI's own retries are spent, and a rejected key (401) must fail at once,
//! with the CLI's own words in the error.
//!
//! The CLIs are looked up in `$GIT_WS_AGENTS_DIR/bin`, else `~/.cache/git-ws/agents/bin`
//! (where the install script puts them). A missing CLI skips its tests with one line, unless
//! `GIT_WS_REQUIRE_AGENTS=1`, which makes it a failure (CI).
//!
//! Each CLI gets a fresh home (`HOME`, `CODEX_HOME`) with its settings for the server: a
//! dummy key, telemetry and update checks off, and its own retries down to one request
//! (Claude Code `CLAUDE_CODE_MAX_RETRIES=0`, Codex `request_max_retries = 0`, Gemini CLI
//! `general.maxAttempts: 1`), so a 429 reaches git-ws at once. aider has no such setting: it
//! tries 9 times over about 64 s (27 requests: its OpenAI client retries each twice) before
//! it gives up, and exits 0, so its 429 test takes about 90 s.

use crate::common::{bin_dir, result_json, status, Env, Run};
use crate::model_server::{Action, Fault, ModelServer, Script};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Where the install script puts the CLIs.
fn agents_dir() -> PathBuf {
    match std::env::var_os("GIT_WS_AGENTS_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/git-ws/agents")
        }
    }
}

/// The CLI `name` is installed, else skip (or fail under `GIT_WS_REQUIRE_AGENTS=1`).
fn installed(name: &str) -> bool {
    let exe = agents_dir().join("bin").join(name);
    if exe.is_file() {
        return true;
    }
    let msg = format!(
        "real agent CLI {name} not found at {} (install with: sh scripts/install-agents.sh)",
        exe.display()
    );
    if std::env::var("GIT_WS_REQUIRE_AGENTS").as_deref() == Ok("1") {
        panic!("{msg}; GIT_WS_REQUIRE_AGENTS=1");
    }
    eprintln!("skipped: {msg}");
    false
}

/// A repository, the model server and one CLI's settings.
struct Setup {
    env: Env,
    server: ModelServer,
    agent: &'static str,
}

const KEY: &str = "sk-ws-test";

impl Setup {
    fn new(agent: &'static str) -> Option<Setup> {
        if !installed(agent) {
            return None;
        }
        let env = Env::new();
        let server = ModelServer::start(&env.scratch("model-server.log"));
        let home = &env.home;
        match agent {
            "codex" => {
                let dir = home.join(".codex");
                std::fs::create_dir_all(&dir).unwrap();
                // gpt-5.5 is in codex's model catalog: it offers the apply_patch tool.
                std::fs::write(
                    dir.join("config.toml"),
                    format!(
                        "model = \"gpt-5.5\"\nmodel_provider = \"wsmock\"\n\
                         check_for_update_on_startup = false\n\n\
                         [model_providers.wsmock]\nname = \"git-ws model server\"\n\
                         base_url = \"{}/v1\"\nenv_key = \"WS_MODEL_SERVER_KEY\"\n\
                         wire_api = \"responses\"\nrequest_max_retries = 0\n\
                         stream_max_retries = 0\n",
                        server.url()
                    ),
                )
                .unwrap();
            }
            "gemini" => {
                let dir = home.join(".gemini");
                std::fs::create_dir_all(&dir).unwrap();
                // An API key must be the selected auth, or headless Gemini CLI exits 41.
                let settings = json!({
                    "security": {"auth": {"selectedType": "gemini-api-key"}},
                    "privacy": {"usageStatisticsEnabled": false},
                    "telemetry": {"enabled": false},
                    "general": {"disableAutoUpdate": true, "disableUpdateNag": true,
                                "maxAttempts": 1},
                });
                std::fs::write(dir.join("settings.json"), settings.to_string()).unwrap();
                // A fixed model: "auto" asks a classifier model first.
                env.git(&["config", "ws.agentArgs", "--model gemini-2.5-pro"]);
            }
            // No user.name / user.email for aider: without an identity aider writes "Your
            // Name" into the repository's config at start-up (and two aiders in two slots
            // race for .git/config.lock); git-ws gives every agent one in its environment,
            // and the aider test checks that .git/config is left byte for byte.
            _ => {}
        }
        env.git(&["config", "ws.retryBackoff", "100ms"]);
        Some(Setup { env, server, agent })
    }

    /// `git ws-run --agent AGENT ARGS` with the CLI on PATH and pointed at the server.
    fn ws_run(&self, args: &[&str]) -> Run {
        let path = format!(
            "{}:{}:{}",
            bin_dir().display(),
            agents_dir().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let url = self.server.url();
        let mut c = self.env.command("git");
        c.args(["ws-run", "--agent", self.agent, "--timeout", "180s"])
            .args(args)
            .env("PATH", path);
        match self.agent {
            "claude" => {
                c.env("ANTHROPIC_BASE_URL", &url)
                    .env("ANTHROPIC_API_KEY", KEY)
                    .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
                    .env("DISABLE_AUTOUPDATER", "1")
                    .env("CLAUDE_CODE_MAX_RETRIES", "0")
                    // git-ws sets it for the preset as root (Preset::env), not the test.
                    .env_remove("IS_SANDBOX");
            }
            "codex" => {
                c.env("CODEX_HOME", self.env.home.join(".codex"))
                    .env("WS_MODEL_SERVER_KEY", KEY);
            }
            "gemini" => {
                c.env("GEMINI_API_KEY", KEY)
                    .env("GOOGLE_GEMINI_BASE_URL", &url);
            }
            "aider" => {
                c.env("OPENAI_API_BASE", format!("{url}/v1"))
                    .env("OPENAI_API_KEY", KEY)
                    .env("AIDER_MODEL", "openai/gpt-4o")
                    .env("AIDER_SHOW_RELEASE_NOTES", "false");
            }
            _ => unreachable!(),
        }
        Run::from(c.output().unwrap())
    }

    /// A prompt workstream for the script `name`.
    fn prompt(&self, id: &str, name: &str, script: Script) {
        self.server.script(name, script);
        self.env.ws(
            id,
            json!({"id": id, "prompt": format!("WS-SCRIPT:{name} (a scripted task)")}),
        );
    }

    /// Everything needed to understand a failure: the run's output, the server's requests
    /// and the agents' logs.
    fn context(&self, out: &Run) -> String {
        let mut logs = String::new();
        if let Ok(dirs) = std::fs::read_dir(self.env.repo.join(".state/logs")) {
            for d in dirs.flatten() {
                for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
                    let p = f.path();
                    if p.extension().is_some_and(|e| e == "log") {
                        let t = std::fs::read_to_string(&p).unwrap_or_default();
                        let tail: String = t
                            .chars()
                            .rev()
                            .take(3000)
                            .collect::<Vec<_>>()
                            .into_iter()
                            .rev()
                            .collect();
                        logs.push_str(&format!("--- {}\n{tail}\n", p.display()));
                    }
                }
            }
        }
        format!(
            "exit {}\nstdout:\n{}\nstderr:\n{}\nserver:\n{}\n{logs}",
            out.code,
            out.stdout,
            out.stderr,
            self.server.log_summary()
        )
    }

    /// `(input, output)` tokens recorded for a workstream.
    fn recorded_tokens(&self, run: &str, ws: &str) -> (String, String) {
        let rows = self.env.sql(&format!(
            "SELECT input_tokens, output_tokens FROM ws_usage \
             WHERE run_id = '{run}' AND workstream_id = '{ws}'"
        ));
        assert_eq!(rows.len(), 1, "usage of {ws}: {rows:?}");
        (rows[0][0].clone(), rows[0][1].clone())
    }

    /// `(outcome, retry_reason)` of each attempt.
    fn attempts(&self, run: &str, ws: &str) -> Vec<(String, String)> {
        self.env
            .sql(&format!(
                "SELECT outcome, COALESCE(retry_reason, '-') FROM ws_attempts \
                 WHERE run_id = '{run}' AND workstream_id = '{ws}' ORDER BY attempt"
            ))
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect()
    }

    /// The file at `path` on the workstream's branch.
    fn on_branch(&self, run: &str, ws: &str, path: &str) -> String {
        self.env.git(&["show", &format!("ws/{run}/{ws}:{path}")])
    }
}

/// Tokens per response: aider prints counts from 1,000 on rounded (`1.2k`), so its are
/// smaller; every other CLI reports what the server sent.
fn usage_for(agent: &str) -> (u64, u64) {
    match agent {
        "aider" => (900, 40),
        _ => (1234, 56),
    }
}

/// Two prompt workstreams: one creates a file, one edits a line of an existing one.
fn two_workstreams_land_with_the_servers_usage(agent: &'static str) {
    let Some(s) = Setup::new(agent) else { return };
    let (i, o) = usage_for(agent);
    let file = format!("made-by-{agent}.txt");
    s.prompt(
        "create",
        &format!("{agent}-create"),
        Script::new(vec![Action::Write {
            path: file.clone(),
            content: format!("written by {agent}\n"),
        }])
        .usage(i, o),
    );
    s.prompt(
        "edit",
        &format!("{agent}-edit"),
        Script::new(vec![Action::Edit {
            path: "src/lib.txt".into(),
            old: "three".into(),
            new: "THREE".into(),
        }])
        .usage(i, o),
    );
    let config = || std::fs::read_to_string(s.env.repo.join(".git/config")).unwrap();
    let config_before = config();
    let home_before = home_entries(&s.env.home);
    let out = s.ws_run(&["--agents", "2"]);
    assert_eq!(out.code, 0, "{}", s.context(&out));
    let run = out.run_id();
    assert_eq!(config(), config_before, "{agent} changed .git/config");
    // In its home, the CLI wrote only where Preset::state_paths says (what a sandbox must
    // allow); in the worktree, only the work (files_modified below) and its own files.
    let preset = ws_core_preset(agent);
    let after = home_entries(&s.env.home);
    let strays: Vec<&String> = after
        .iter()
        .filter(|e| !home_before.contains(e))
        .filter(|e| {
            !preset
                .state_paths()
                .iter()
                .any(|p| e.as_str() == *p || e.starts_with(&format!("{p}/")))
        })
        .collect();
    assert!(
        strays.is_empty(),
        "{agent} wrote in its home outside Preset::state_paths: {strays:?}"
    );
    assert_eq!(
        s.on_branch(&run, "create", &file),
        format!("written by {agent}\n")
    );
    assert_eq!(
        s.on_branch(&run, "edit", "src/lib.txt"),
        "one\ntwo\nTHREE\nfour\nfive\nsix\nseven\neight\n"
    );
    for (ws, want) in [
        ("create", vec![file.as_str()]),
        ("edit", vec!["src/lib.txt"]),
    ] {
        // Only the work: no `.gitignore` edit, no `.aider*` history or tag cache (aider runs
        // with --no-gitignore, and its files are excluded in the slot).
        let files = result_json(&s.env, &run, ws, "files_modified");
        assert_eq!(files, json!(want), "{ws}: {}", s.context(&out));
        let tree = s
            .env
            .git(&["ls-tree", "-r", "--name-only", &format!("ws/{run}/{ws}")]);
        assert!(!tree.contains(".aider"), "{ws}: {tree}");
        assert_eq!(
            s.env.git(&[
                "diff",
                "--name-only",
                "main",
                &format!("ws/{run}/{ws}"),
                "--",
                ".gitignore"
            ]),
            ""
        );
        // No warning that the agent changed nothing; aider commits its own edits, so it has
        // no leftovers for git-ws to commit either (its `.aider*` files are not leftovers).
        let warnings = result_json(&s.env, &run, ws, "warnings");
        assert!(
            !warnings.to_string().contains("changed nothing"),
            "{ws}: {}",
            s.context(&out)
        );
        if agent == "aider" {
            assert_eq!(warnings, json!([]), "{ws}: {}", s.context(&out));
        }
    }
    for (ws, name) in [("create", "create"), ("edit", "edit")] {
        let served = s.server.served(&format!("{agent}-{name}"));
        assert!(served.replies >= 1, "{served:?}");
        assert_eq!(
            s.recorded_tokens(&run, ws),
            (
                served.input_tokens.to_string(),
                served.output_tokens.to_string()
            ),
            "{ws}: recorded usage vs served {served:?}\n{}",
            s.context(&out)
        );
        assert_eq!(s.attempts(&run, ws).len(), 1);
    }
    if agent == "aider" {
        // Its cost is printed rounded, and said to be.
        let meta = result_json(&s.env, &run, "create", "metadata");
        assert_eq!(
            meta["usage"]["extra"]["rounded"],
            json!(["cost_usd"]),
            "{meta}"
        );
    }
}

/// A 429 that outlasts the CLI's own retries is retried by git-ws; a 401 is not.
fn a_429_is_retried_and_a_401_fails_at_once(agent: &'static str, error_words: &str) {
    let Some(s) = Setup::new(agent) else { return };
    // Requests the CLI makes before it gives up on a 429 (see the module doc): aider tries
    // 9 times, and its OpenAI client twice more each time.
    let own_tries = if agent == "aider" { 27 } else { 1 };
    let file = format!("limited-{agent}.txt");
    s.prompt(
        "limited",
        &format!("{agent}-limited"),
        Script::new(vec![Action::Write {
            path: file.clone(),
            content: "after the rate limit\n".into(),
        }])
        .fault(Fault::status(429), own_tries),
    );
    s.prompt(
        "denied",
        &format!("{agent}-denied"),
        Script::new(vec![Action::Write {
            path: "never.txt".into(),
            content: "x\n".into(),
        }])
        .fault(Fault::status(401), 100),
    );
    let out = s.ws_run(&["--agents", "2", "--retries", "2"]);
    assert_eq!(out.code, 1, "{}", s.context(&out));
    let run = out.run_id();

    assert_eq!(
        status(&s.env, &run, "limited"),
        "completed",
        "{}",
        s.context(&out)
    );
    let a = s.attempts(&run, "limited");
    assert_eq!(a.len(), 2, "{a:?}\n{}", s.context(&out));
    assert_eq!(a[0].0, "CommandFailed");
    assert!(a[0].1.starts_with(&format!("{agent} reported ")), "{a:?}");
    assert_eq!(a[1], ("completed".to_string(), "-".to_string()));
    assert_eq!(
        s.on_branch(&run, "limited", &file),
        "after the rate limit\n"
    );
    assert_eq!(
        s.server.served(&format!("{agent}-limited")).faults,
        own_tries
    );
    // The failed attempt's turns are not the result's: its turns are the last attempt's.
    let meta = result_json(&s.env, &run, "limited", "metadata");
    let last_turns = meta["attempts"]
        .as_array()
        .and_then(|a| a.last())
        .map(|a| a["usage"]["turns"].clone())
        .unwrap_or(Value::Null);
    assert_eq!(
        meta["usage"]["turns"],
        last_turns,
        "{meta}\n{}",
        s.context(&out)
    );
    // Every attempt's turns, summed and labelled (Claude Code counts a turn for the 429:
    // the result says 2 turns, not 3).
    let turns: Vec<u64> = meta["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["usage"]["turns"].as_u64())
        .collect();
    let all = turns.iter().sum::<u64>();
    if agent == "claude" {
        assert_eq!(meta["attempts"][0]["usage"]["turns"], json!(1), "{meta}");
    }
    if !turns.is_empty() && Some(all) != last_turns.as_u64() {
        assert_eq!(
            meta["usage"]["extra"]["turns_all_attempts"],
            json!(all),
            "{meta}"
        );
    }

    assert_eq!(status(&s.env, &run, "denied"), "failed");
    let a = s.attempts(&run, "denied");
    assert_eq!(
        a,
        vec![("CommandFailed".to_string(), "-".to_string())],
        "{}",
        s.context(&out)
    );
    let served = s.server.served(&format!("{agent}-denied"));
    assert_eq!(served.replies, 0, "{served:?}");
    let errors: Value = result_json(&s.env, &run, "denied", "errors");
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(error_words),
        "the error should carry {agent}'s own words ({error_words:?}): {message:?}"
    );
}

#[test]
fn claude_two_workstreams_land_with_the_servers_usage() {
    two_workstreams_land_with_the_servers_usage("claude");
}

#[test]
fn codex_two_workstreams_land_with_the_servers_usage() {
    two_workstreams_land_with_the_servers_usage("codex");
}

#[test]
fn gemini_two_workstreams_land_with_the_servers_usage() {
    two_workstreams_land_with_the_servers_usage("gemini");
}

#[test]
fn aider_two_workstreams_land_with_the_servers_usage() {
    two_workstreams_land_with_the_servers_usage("aider");
}

#[test]
fn claude_429_is_retried_and_401_fails_at_once() {
    a_429_is_retried_and_a_401_fails_at_once("claude", "Invalid API key");
}

#[test]
fn codex_429_is_retried_and_401_fails_at_once() {
    a_429_is_retried_and_a_401_fails_at_once("codex", "401 Unauthorized");
}

#[test]
fn gemini_429_is_retried_and_401_fails_at_once() {
    a_429_is_retried_and_a_401_fails_at_once("gemini", "UNAUTHENTICATED");
}

/// Takes about 90 s: aider's own retries of the 429 (see the module doc).
#[test]
fn aider_429_is_retried_and_401_fails_at_once() {
    a_429_is_retried_and_a_401_fails_at_once("aider", "AuthenticationError");
}

/// Stopped by its own budget (`max_cost_usd` → `--max-budget-usd`), Claude Code's result
/// says 0 tokens in `usage`; what it spent is read from `modelUsage`.
#[test]
fn claude_budget_stop_keeps_its_tokens() {
    let Some(s) = Setup::new("claude") else {
        return;
    };
    s.server.script(
        "claude-budget",
        Script::new(vec![
            Action::Write {
                path: "one.txt".into(),
                content: "1\n".into(),
            },
            Action::Write {
                path: "two.txt".into(),
                content: "2\n".into(),
            },
        ])
        .usage(1234, 56),
    );
    s.env.ws(
        "budget",
        json!({"id": "budget", "prompt": "WS-SCRIPT:claude-budget", "max_cost_usd": 0.001}),
    );
    let out = s.ws_run(&["--agents", "1"]);
    assert_eq!(out.code, 1, "{}", s.context(&out));
    let run = out.run_id();
    let errors = result_json(&s.env, &run, "budget", "errors");
    assert_eq!(errors[0]["type"], "BudgetExceeded", "{}", s.context(&out));
    let served = s.server.served("claude-budget");
    assert_eq!(
        s.recorded_tokens(&run, "budget"),
        (
            served.input_tokens.to_string(),
            served.output_tokens.to_string()
        ),
        "{served:?}\n{}",
        s.context(&out)
    );
    assert!(served.input_tokens > 0);
}

/// Killed on its timeout while waiting for a slow response, an agent's tokens so far are
/// kept: Claude Code's from the `message_delta` events (its assistant events say 1), aider's
/// from each message's `Tokens:` line. (Codex CLI and Gemini CLI report usage only at the
/// end of a turn: killed, they report none.)
fn a_timeout_still_counts_the_tokens(agent: &'static str) {
    let Some(s) = Setup::new(agent) else { return };
    // Two responses: the first answers at once, the second never in time.
    let name = format!("{agent}-slow");
    s.server.script(
        &name,
        Script::new(vec![Action::Edit {
            path: "src/lib.txt".into(),
            old: "three".into(),
            new: "THREE".into(),
        }])
        .usage(900, 40)
        .fault(Fault::Pass, 1)
        .fault(Fault::Slow(std::time::Duration::from_secs(120)), 1),
    );
    // Long enough for the CLI to start on a busy machine (aider takes 5-15 s).
    let timeout = if agent == "aider" { 45 } else { 20 };
    s.env.ws(
        "slow",
        json!({"id": "slow", "prompt": format!("WS-SCRIPT:{name}"), "timeout_secs": timeout}),
    );
    let out = s.ws_run(&["--agents", "1", "--grace", "1s"]);
    assert_eq!(out.code, 1, "{}", s.context(&out));
    let run = out.run_id();
    let errors = result_json(&s.env, &run, "slow", "errors");
    assert_eq!(errors[0]["type"], "Timeout", "{}", s.context(&out));
    // The first response's numbers (the second was counted by the server, never sent).
    assert_eq!(
        s.recorded_tokens(&run, "slow"),
        ("900".to_string(), "40".to_string()),
        "{}",
        s.context(&out)
    );
}

#[test]
fn claude_timeout_still_counts_the_tokens() {
    a_timeout_still_counts_the_tokens("claude");
}

#[test]
fn aider_timeout_still_counts_the_tokens() {
    a_timeout_still_counts_the_tokens("aider");
}

/// Claude Code runs with `--permission-mode acceptEdits` (not `bypassPermissions`): in the
/// pool outside `.git` its edits land. With the pool put back inside `.git` (where versions
/// before kept it) the same CLI refuses every write there as "a sensitive file" and exits 0;
/// git-ws reads the refusal from `permission_denials` and fails the workstream.
#[test]
fn claude_accept_edits_writes_in_the_pool_and_is_refused_inside_git() {
    let Some(s) = Setup::new("claude") else {
        return;
    };
    let script = || {
        Script::new(vec![Action::Write {
            path: "accepted.txt".into(),
            content: "accepted\n".into(),
        }])
        .usage(1234, 56)
    };
    s.prompt("write", "claude-accept", script());
    let out = s.ws_run(&["--agents", "1"]);
    assert_eq!(out.code, 0, "{}", s.context(&out));
    let run = out.run_id();
    assert_eq!(s.on_branch(&run, "write", "accepted.txt"), "accepted\n");
    let log =
        std::fs::read_to_string(s.env.repo.join(format!(".state/logs/{run}/write.log"))).unwrap();
    assert!(
        log.contains("\"permissionMode\":\"acceptEdits\""),
        "not run in acceptEdits mode:\n{}",
        s.context(&out)
    );

    s.env.git(&["config", "ws.poolDir", ".git/ws"]);
    s.prompt("write", "claude-refused", script());
    let out = s.ws_run(&["--agents", "1"]);
    assert_eq!(out.code, 1, "{}", s.context(&out));
    let run = out.run_id();
    assert_eq!(
        status(&s.env, &run, "write"),
        "failed",
        "{}",
        s.context(&out)
    );
    let errors = result_json(&s.env, &run, "write", "errors");
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("refused"),
        "{message}\n{}",
        s.context(&out)
    );
}

/// The preset called `agent`.
fn ws_core_preset(agent: &str) -> ws_core::agents::Preset {
    ws_core::agents::Preset::parse(agent).unwrap()
}

/// Every path under `home`, two levels deep, relative to it.
fn home_entries(home: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(home).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() {
            for f in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                out.push(format!("{name}/{}", f.file_name().to_string_lossy()));
            }
        }
        out.push(name);
    }
    out.sort();
    out
}

/// A usage limit with a reset two hours ahead (the provider's own 429, see
/// `Fault::UsageLimit`), past `ws.maxWait`: the real CLI's words about it must defer the
/// workstream (not fail it, not retry it) and pause the run (exit 4).
fn usage_limit_defers_and_pauses(agent: &'static str) {
    let Some(s) = Setup::new(agent) else { return };
    s.env.git(&["config", "ws.maxWait", "1s"]);
    s.env.git(&["config", "ws.retries", "2"]);
    s.prompt(
        "limited",
        &format!("{agent}-limit"),
        Script::new(vec![Action::Write {
            path: "never.txt".into(),
            content: "never\n".into(),
        }])
        .fault(
            Fault::UsageLimit {
                reset_in_secs: 7200,
            },
            100,
        ),
    );
    let out = s.ws_run(&["--agents", "1"]);
    if std::env::var_os("WS_CAPTURE_LIMITS").is_some() {
        let log = s
            .env
            .repo
            .join(format!(".state/logs/{}/limited.log", out.run_id()));
        eprintln!(
            "==== {agent} ====\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
    assert_eq!(out.code, 4, "{}", s.context(&out));
    let run = out.run_id();
    assert_eq!(
        status(&s.env, &run, "limited"),
        "deferred",
        "{}",
        s.context(&out)
    );
    let errors = result_json(&s.env, &run, "limited", "errors");
    assert_eq!(errors[0]["type"], "UsageLimit", "{errors}");
    assert_eq!(s.attempts(&run, "limited").len(), 1, "not retried");
    // Codex says when ("try again at 12:18 PM"); Gemini CLI 0.61.0 does not.
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert_eq!(
        message.contains("(reset at "),
        agent == "codex",
        "{message}"
    );
}

/// Claude Code 2.1.332 with an API key shows the same 429 (with the unified rate-limit
/// reset headers) only as "API Error: Request rejected (429) · This request would exceed
/// your account's rate limit": no usage-limit words and no reset (those come with a
/// claude.ai login), so it stays a transient failure, retried — never a deferral.
#[test]
fn claude_with_an_api_key_reports_a_limited_account_as_a_rate_limit() {
    let Some(s) = Setup::new("claude") else {
        return;
    };
    s.env.git(&["config", "ws.maxWait", "1s"]);
    s.env.git(&["config", "ws.retries", "1"]);
    s.prompt(
        "limited",
        "claude-limit",
        Script::new(vec![]).fault(
            Fault::UsageLimit {
                reset_in_secs: 7200,
            },
            100,
        ),
    );
    let out = s.ws_run(&["--agents", "1"]);
    assert_eq!(out.code, 1, "{}", s.context(&out));
    let run = out.run_id();
    assert_eq!(status(&s.env, &run, "limited"), "failed");
    assert_eq!(s.attempts(&run, "limited").len(), 2, "retried once");
    let errors = result_json(&s.env, &run, "limited", "errors");
    assert!(
        errors.to_string().contains("Request rejected (429)"),
        "{errors}"
    );
}

#[test]
fn codex_usage_limit_defers_and_pauses() {
    usage_limit_defers_and_pauses("codex");
}

#[test]
fn gemini_usage_limit_defers_and_pauses() {
    usage_limit_defers_and_pauses("gemini");
}
