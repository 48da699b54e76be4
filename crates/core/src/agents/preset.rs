//! Agent presets: how each coding agent CLI is started non-interactively with structured
//! output (the exact command line), which of its failures are transient (rate limits and
//! overload, by the messages its real output carries: samples in `fixtures/agents/`), and
//! which parser reads its output. Pure: no I/O.
//!
//! The command lines, checked end to end against the real CLIs (Claude Code 2.1.332, Codex
//! CLI 0.171.0, Gemini CLI 0.61.0, aider 0.86.2; `tests/integration/real_agents.rs`):
//!
//! | preset | command line |
//! | --- | --- |
//! | `claude` | `claude -p --output-format stream-json --verbose --include-partial-messages --permission-mode acceptEdits [--max-budget-usd USD] -- PROMPT` |
//! | `codex` | `codex exec --json --sandbox workspace-write -- PROMPT` |
//! | `aider` | `aider --message=PROMPT --yes-always --no-pretty --no-stream --no-check-update --no-analytics --no-gitignore` |
//! | `gemini` | `gemini --prompt=PROMPT --output-format stream-json --skip-trust --approval-mode auto_edit` |
//!
//! Why each flag that is not obvious:
//! - Claude: `acceptEdits` (edits without asking, nothing wider), which works because the
//!   agent worktrees live outside `.git` (`ws.poolDir`): Claude Code refuses every write
//!   under a `.git` directory in that mode ("a sensitive file") and exits 0. Should
//!   `ws.agentArgs` ask for `bypassPermissions` as root, Claude Code also needs
//!   `IS_SANDBOX=1` ([`Preset::env`], which also unbuffers aider). `--include-partial-messages`
//!   streams the API's `message_delta` events: the only place the output tokens of each
//!   message are given before the final `result` (a run killed on a timeout has none).
//! - Gemini: `--skip-trust`, because headless Gemini CLI exits 55 in a folder it does not
//!   trust, and every pool worktree is new to it.
//! - aider: `--no-stream`, so that its token counts are the API's own (streamed, aider
//!   estimates them); `--no-check-update` and `--no-analytics` keep it off the network at
//!   start-up (with `--yes-always` aider would answer yes when it asks to turn analytics on);
//!   `--no-gitignore`, so it does not add `.aider*` to `.gitignore` on every branch (its
//!   files are kept off the branches by an exclude in the slot instead: [`Preset::own_files`]).
//!
//! Every agent gets a git identity in its environment ([`identity_env`]): aider writes
//! `user.name "Your Name"` into the repository's shared `.git/config` when `git config`
//! finds none.
//!
//! git config `ws.agentArgs` adds arguments before the prompt (`--model sonnet`, …); when
//! they hold the preset's own permission option (`--permission-mode`, `--sandbox`,
//! `--approval-mode`, or an equivalent), the preset's default permission pair is left out, so
//! the option is never given twice. The prompt goes after `--`, or glued to its option with
//! `=`, so a prompt that starts with `-` is never read as a flag.

use crate::Invalid;
use std::fmt;

/// A coding agent git-ws knows how to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Preset {
    Claude,
    Codex,
    Aider,
    Gemini,
}

impl Preset {
    /// Every preset, in the order the documentation lists them.
    pub const ALL: [Preset; 4] = [Preset::Claude, Preset::Codex, Preset::Aider, Preset::Gemini];

    /// The name users write (`--agent claude`, `"agent": "codex"`) and the program run.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Claude => "claude",
            Preset::Codex => "codex",
            Preset::Aider => "aider",
            Preset::Gemini => "gemini",
        }
    }

    /// The preset called `name` (case-insensitive); the error names the known ones.
    pub fn parse(name: &str) -> Result<Preset, Invalid> {
        let n = name.trim().to_ascii_lowercase();
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == n)
            .ok_or_else(|| {
                Invalid::new(format!(
                    "unknown agent {} (known: {})",
                    serde_json::to_string(&name.chars().take(60).collect::<String>())
                        .unwrap_or_default(),
                    Preset::names()
                ))
            })
    }

    /// `claude, codex, aider, gemini`.
    pub fn names() -> String {
        Preset::ALL.map(Preset::name).join(", ")
    }

    /// The full argv: the program, the preset's flags, `extra` (git config `ws.agentArgs`),
    /// then the prompt. `max_budget_usd` is passed to the agents that enforce a budget
    /// themselves (Claude Code's `--max-budget-usd`).
    pub fn argv(self, prompt: &str, extra: &[String], max_budget_usd: Option<f64>) -> Vec<String> {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
        let mut argv = match self {
            // Claude Code CLI reference / "Run Claude Code programmatically": -p (print mode),
            // --output-format stream-json (needs --verbose), the API's stream events
            // (--include-partial-messages: each message's final output tokens).
            Preset::Claude => s(&[
                "claude",
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--include-partial-messages",
            ]),
            // Codex "Non-interactive mode": `codex exec`, --json (JSONL events on stdout),
            // --sandbox workspace-write (edits allowed in the workspace; the documented
            // replacement of the deprecated --full-auto).
            Preset::Codex => s(&["codex", "exec", "--json"]),
            // Aider "Scripting aider": --message (one instruction, then exit), --yes-always
            // (answer yes to every confirmation), --no-pretty (plain output); --no-stream
            // (the API's token counts), no update check, no analytics.
            Preset::Aider => vec![
                "aider".to_string(),
                format!("--message={prompt}"),
                "--yes-always".to_string(),
                "--no-pretty".to_string(),
                "--no-stream".to_string(),
                "--no-check-update".to_string(),
                "--no-analytics".to_string(),
                "--no-gitignore".to_string(),
            ],
            // Gemini CLI "Headless mode": --prompt, --output-format stream-json, trust for
            // this session (--skip-trust), --approval-mode auto_edit.
            Preset::Gemini => vec![
                "gemini".to_string(),
                format!("--prompt={prompt}"),
                "--output-format".to_string(),
                "stream-json".to_string(),
                "--skip-trust".to_string(),
            ],
        };
        let overridden = extra.iter().any(|a| {
            self.permission_options()
                .iter()
                .any(|o| a == o || a.strip_prefix(o).is_some_and(|r| r.starts_with('=')))
        });
        if let (false, Some((option, value))) = (overridden, self.default_permission()) {
            argv.push(option.to_string());
            argv.push(value.to_string());
        }
        if let (Preset::Claude, Some(usd)) = (self, max_budget_usd) {
            argv.push("--max-budget-usd".to_string());
            argv.push(format_usd_arg(usd));
        }
        argv.extend(extra.iter().cloned());
        if matches!(self, Preset::Claude | Preset::Codex) {
            argv.push("--".to_string());
            argv.push(prompt.to_string());
        }
        argv
    }

    /// The option and value that let the agent edit files in its worktree without asking:
    /// Codex's `--sandbox workspace-write`, Gemini CLI's `--approval-mode auto_edit`, and
    /// Claude Code's `--permission-mode acceptEdits` (it refuses every file under a `.git`
    /// directory, which is why the pool is outside it). Aider edits files by default
    /// (`--yes-always` answers its confirmations).
    pub fn default_permission(self) -> Option<(&'static str, &'static str)> {
        match self {
            Preset::Claude => Some(("--permission-mode", "acceptEdits")),
            Preset::Codex => Some(("--sandbox", "workspace-write")),
            Preset::Aider => None,
            Preset::Gemini => Some(("--approval-mode", "auto_edit")),
        }
    }

    /// Options in `ws.agentArgs` that set the permission level themselves and so replace
    /// [`Preset::default_permission`].
    pub fn permission_options(self) -> &'static [&'static str] {
        match self {
            Preset::Claude => &["--permission-mode", "--dangerously-skip-permissions"],
            Preset::Codex => &[
                "--sandbox",
                "-s",
                "--full-auto",
                "--dangerously-bypass-approvals-and-sandbox",
            ],
            Preset::Aider => &[],
            Preset::Gemini => &["--approval-mode", "--yolo", "-y"],
        }
    }

    /// Environment the agent needs, unless the caller's environment sets it (`root`: git-ws
    /// runs as root). Claude Code refuses `bypassPermissions` (which `ws.agentArgs` may ask
    /// for instead of the preset's `acceptEdits`) as root unless `IS_SANDBOX=1`
    /// says it runs contained ("--dangerously-skip-permissions cannot be used with root/sudo
    /// privileges"). aider is Python: its output to a file is block-buffered, so without
    /// `PYTHONUNBUFFERED=1` its `Tokens:` lines arrive only at exit (the meter sees nothing
    /// while it runs, and a timeout loses them).
    pub fn env(self, root: bool) -> &'static [(&'static str, &'static str)] {
        match (self, root) {
            (Preset::Claude, true) => &[("IS_SANDBOX", "1")],
            (Preset::Aider, _) => &[("PYTHONUNBUFFERED", "1")],
            _ => &[],
        }
    }

    /// Files the agent writes into its worktree for itself, never part of the work (git
    /// pathspec globs, for an exclude in the slot): aider's chat and input history, its
    /// tag cache, and the `.gitignore` line it adds for them unless run with
    /// `--no-gitignore`.
    pub fn own_files(self) -> &'static [&'static str] {
        match self {
            Preset::Aider => &[".aider*"],
            _ => &[],
        }
    }

    /// Where the agent's CLI keeps its own state, relative to its home directory (`$HOME`),
    /// as the real CLIs were seen writing it (`tests/integration/real_agents.rs` checks that
    /// nothing else in the home appears): what a sandbox must let it write, besides its
    /// worktree and [`Preset::own_files`] there. Codex's is `$CODEX_HOME` when set.
    pub fn state_paths(self) -> &'static [&'static str] {
        match self {
            // projects/ (session transcripts), sessions/, backups/, plugins/; the config file.
            Preset::Claude => &[".claude", ".claude.json"],
            // sessions/, shell_snapshots/, SQLite state, logs, installation_id.
            Preset::Codex => &[".codex"],
            // analytics.json, installs.json, caches/.
            Preset::Aider => &[".aider"],
            // tmp/ (chats, logs), history/, projects.json.
            Preset::Gemini => &[".gemini"],
        }
    }

    /// Exit codes that mean the agent failed for good (never transient): Gemini CLI's 42
    /// (input error) and 53 (turn limit exceeded).
    pub fn permanent_exit_codes(self) -> &'static [i32] {
        match self {
            Preset::Gemini => &[42, 53],
            _ => &[],
        }
    }

    /// Messages in the agent's output that mean a rate limit, an overloaded provider or a
    /// dropped connection: worth another attempt after a pause. Case-sensitive substrings,
    /// as the tools print them (samples in `fixtures/agents/<agent>/`).
    pub fn transient_markers(self) -> &'static [&'static str] {
        match self {
            // Anthropic API errors as Claude Code reports them: older "API Error: 529
            // {…overloaded_error…}", 2.1.x "API Error: Request rejected (429) · …" with
            // `api_error_status`, and the assistant message's `error` field.
            Preset::Claude => &[
                "overloaded_error",
                "rate_limit_error",
                "API Error: 429",
                "API Error: 500",
                "API Error: 502",
                "API Error: 503",
                "API Error: 529",
                "Request rejected (429)",
                "\"api_error_status\":429",
                "\"api_error_status\":500",
                "\"api_error_status\":502",
                "\"api_error_status\":503",
                "\"api_error_status\":529",
                "\"error\":\"rate_limit\"",
                "\"error\":\"server_error\"",
            ],
            // Codex `turn.failed` / `error` events (0.171: "exceeded retry limit, last status:
            // 429 Too Many Requests", a 503 "Selected model is at capacity", a 500 "We're
            // currently experiencing high demand").
            Preset::Codex => &[
                "429 Too Many Requests",
                "exceeded retry limit",
                "Rate limit reached",
                "at capacity",
                "experiencing high demand",
                "stream disconnected before completion",
                "503 Service Unavailable",
                "500 Internal Server Error",
                "502 Bad Gateway",
            ],
            // Aider's retryable litellm exceptions and their descriptions.
            Preset::Aider => &[
                "RateLimitError",
                "The API provider has rate limited you",
                "servers are down or overloaded",
                "ServiceUnavailableError",
                "InternalServerError",
                "APIConnectionError",
            ],
            // Gemini API status codes as the CLI reports them: the JSON error, and 0.61's
            // `RetryableQuotaError` printed by node with `code: 429` / `status: 429`.
            Preset::Gemini => &[
                "RESOURCE_EXHAUSTED",
                "RetryableQuotaError",
                "Too Many Requests",
                "\"code\":429",
                "code: 429",
                "status: 429",
                "status 429",
                "UNAVAILABLE",
                "\"code\":503",
                "code: 503",
                "status: 503",
                "model is overloaded",
            ],
        }
    }

    /// Why a failed attempt (exit `code`, `output` its output) looks transient, if it does.
    /// Asked only about attempts that failed: an exit 0 counts too, since aider exits 0
    /// after its own retries of a rate limit ([`super::failure`] tells that it failed).
    pub fn transient(self, code: Option<i32>, output: &str) -> Option<String> {
        if let Some(c) = code {
            if self.permanent_exit_codes().contains(&c) {
                return None;
            }
        }
        self.transient_markers()
            .iter()
            .find(|m| output.contains(**m))
            .map(|m| format!("{} reported {}", self.name(), m.replace('"', "")))
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The identity git-ws commits with when git config has none (and gives agents).
pub const DEFAULT_IDENTITY: (&str, &str) = ("git-ws", "git-ws@localhost");

/// The git identity every agent gets in its environment, so that none writes one into the
/// repository's shared config (aider sets `user.name "Your Name"` there when `git config
/// --get user.name` finds nothing): `name` and `email` (the user's `user.name` and
/// `user.email`, else [`DEFAULT_IDENTITY`]) as `GIT_AUTHOR_*` and `GIT_COMMITTER_*`, and as
/// `user.name` / `user.email` through `GIT_CONFIG_COUNT` (config for this process tree
/// only). What the caller's environment already sets (`is_set`) is left alone; so is the
/// config part when `GIT_CONFIG_COUNT` is set there, or when git config has both keys.
pub fn identity_env(
    name: Option<&str>,
    email: Option<&str>,
    is_set: impl Fn(&str) -> bool,
) -> Vec<(String, String)> {
    let configured = name.is_some() && email.is_some();
    let name = name.unwrap_or(DEFAULT_IDENTITY.0);
    let email = email.unwrap_or(DEFAULT_IDENTITY.1);
    let mut env: Vec<(String, String)> = [
        ("GIT_AUTHOR_NAME", name),
        ("GIT_AUTHOR_EMAIL", email),
        ("GIT_COMMITTER_NAME", name),
        ("GIT_COMMITTER_EMAIL", email),
    ]
    .into_iter()
    .filter(|(k, _)| !is_set(k))
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if !configured && !is_set("GIT_CONFIG_COUNT") {
        for (k, v) in [
            ("GIT_CONFIG_COUNT", "2"),
            ("GIT_CONFIG_KEY_0", "user.name"),
            ("GIT_CONFIG_VALUE_0", name),
            ("GIT_CONFIG_KEY_1", "user.email"),
            ("GIT_CONFIG_VALUE_1", email),
        ] {
            env.push((k.to_string(), v.to_string()));
        }
    }
    env
}

/// A dollar amount as a command-line argument: at most 4 decimals, no trailing zeros.
fn format_usd_arg(usd: f64) -> String {
    let s = format!("{:.4}", usd.max(0.0));
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() {
        "0".to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_case_insensitively_and_unknown_names_list_the_known() {
        for p in Preset::ALL {
            assert_eq!(Preset::parse(p.name()), Ok(p));
        }
        assert_eq!(Preset::parse(" Claude "), Ok(Preset::Claude));
        let e = Preset::parse("cursor").unwrap_err();
        assert_eq!(
            e,
            "unknown agent \"cursor\" (known: claude, codex, aider, gemini)"
        );
    }

    #[test]
    fn command_lines_are_the_documented_ones() {
        let extra = vec!["--model".to_string(), "m1".to_string()];
        assert_eq!(
            Preset::Claude.argv("-fix it", &extra, Some(0.5)).join(" "),
            "claude -p --output-format stream-json --verbose --include-partial-messages --permission-mode acceptEdits --max-budget-usd 0.5 --model m1 -- -fix it"
        );
        assert_eq!(
            Preset::Claude.argv("p", &[], None).join(" "),
            "claude -p --output-format stream-json --verbose --include-partial-messages --permission-mode acceptEdits -- p"
        );
        assert_eq!(
            Preset::Codex.argv("p", &[], Some(1.0)).join(" "),
            "codex exec --json --sandbox workspace-write -- p"
        );
        assert_eq!(
            Preset::Aider.argv("two words", &extra, None),
            vec![
                "aider",
                "--message=two words",
                "--yes-always",
                "--no-pretty",
                "--no-stream",
                "--no-check-update",
                "--no-analytics",
                "--no-gitignore",
                "--model",
                "m1"
            ]
        );
        assert_eq!(
            Preset::Gemini.argv("p", &[], None).join(" "),
            "gemini --prompt=p --output-format stream-json --skip-trust --approval-mode auto_edit"
        );
    }

    #[test]
    fn agent_args_with_a_permission_option_replace_the_presets() {
        let args = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
        assert_eq!(
            Preset::Codex
                .argv("p", &args(&["--sandbox", "danger-full-access"]), None)
                .join(" "),
            "codex exec --json --sandbox danger-full-access -- p"
        );
        assert_eq!(
            Preset::Claude
                .argv("p", &args(&["--permission-mode=bypassPermissions"]), None)
                .join(" "),
            "claude -p --output-format stream-json --verbose --include-partial-messages --permission-mode=bypassPermissions -- p"
        );
        assert_eq!(
            Preset::Gemini.argv("p", &args(&["--yolo"]), None).join(" "),
            "gemini --prompt=p --output-format stream-json --skip-trust --yolo"
        );
        // Look-alikes do not count.
        assert_eq!(
            Preset::Codex
                .argv("p", &args(&["--sandboxed-tests"]), None)
                .join(" "),
            "codex exec --json --sandbox workspace-write --sandboxed-tests -- p"
        );
    }

    #[test]
    fn agents_get_the_users_identity_or_git_ws_s_and_never_need_to_write_one() {
        let get = |env: &[(String, String)], k: &str| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        };
        // The user's identity: as author and committer; git config already has it.
        let env = identity_env(Some("Ada"), Some("ada@example.com"), |_| false);
        assert_eq!(get(&env, "GIT_AUTHOR_NAME").as_deref(), Some("Ada"));
        assert_eq!(
            get(&env, "GIT_COMMITTER_EMAIL").as_deref(),
            Some("ada@example.com")
        );
        assert_eq!(get(&env, "GIT_CONFIG_COUNT"), None);
        // None configured: git-ws's, in the environment and in config for the process.
        let env = identity_env(None, None, |_| false);
        assert_eq!(get(&env, "GIT_AUTHOR_NAME").as_deref(), Some("git-ws"));
        assert_eq!(get(&env, "GIT_CONFIG_COUNT").as_deref(), Some("2"));
        assert_eq!(get(&env, "GIT_CONFIG_KEY_0").as_deref(), Some("user.name"));
        assert_eq!(get(&env, "GIT_CONFIG_VALUE_0").as_deref(), Some("git-ws"));
        assert_eq!(
            get(&env, "GIT_CONFIG_VALUE_1").as_deref(),
            Some("git-ws@localhost")
        );
        // What the caller's environment sets wins.
        let env = identity_env(None, Some("e@x"), |k| {
            k == "GIT_AUTHOR_NAME" || k == "GIT_CONFIG_COUNT"
        });
        assert_eq!(get(&env, "GIT_AUTHOR_NAME"), None);
        assert_eq!(get(&env, "GIT_COMMITTER_NAME").as_deref(), Some("git-ws"));
        assert_eq!(get(&env, "GIT_AUTHOR_EMAIL").as_deref(), Some("e@x"));
        assert_eq!(get(&env, "GIT_CONFIG_COUNT"), None);
    }

    #[test]
    fn usd_arguments_are_short() {
        assert_eq!(format_usd_arg(2.0), "2");
        assert_eq!(format_usd_arg(0.12345), "0.1235");
        assert_eq!(format_usd_arg(-1.0), "0");
    }

    #[test]
    fn environment_and_own_files() {
        assert_eq!(Preset::Claude.env(true), &[("IS_SANDBOX", "1")]);
        assert!(Preset::Claude.env(false).is_empty());
        assert_eq!(Preset::Aider.env(false), &[("PYTHONUNBUFFERED", "1")]);
        assert!(Preset::Codex.env(true).is_empty());
        assert_eq!(Preset::Aider.own_files(), &[".aider*"]);
        assert!(Preset::Gemini.own_files().is_empty());
    }

    #[test]
    fn transient_needs_a_known_message() {
        let out = "{\"type\":\"result\",\"is_error\":true,\"result\":\"API Error: 529 {\\\"type\\\":\\\"error\\\",\\\"error\\\":{\\\"type\\\":\\\"overloaded_error\\\"}}\"}";
        assert_eq!(
            Preset::Claude.transient(Some(1), out).as_deref(),
            Some("claude reported overloaded_error")
        );
        assert_eq!(Preset::Claude.transient(Some(1), "syntax error"), None);
        // Gemini's input error and turn limit are never transient.
        assert_eq!(
            Preset::Gemini.transient(Some(42), "RESOURCE_EXHAUSTED"),
            None
        );
        assert!(Preset::Gemini
            .transient(Some(1), "RESOURCE_EXHAUSTED")
            .is_some());
        assert!(Preset::Codex
            .transient(
                Some(1),
                "{\"type\":\"turn.failed\",\"error\":{\"message\":\"exceeded retry limit, last status: 429 Too Many Requests\"}}"
            )
            .is_some());
        assert!(Preset::Aider
            .transient(Some(1), "litellm.RateLimitError: slow down")
            .is_some());
    }
}
