//! The settings: every `ws.*` git config key the tool reads, with its default and one line
//! saying what it means ([`KEYS`]: the help text and the README's settings table are made
//! from it), and [`Config`], one snapshot of those keys per command with one typed reader
//! per key. Nothing else names a `ws.*` key; a test fails when a source file reads one the
//! table lacks.

use crate::agents::{check_budget, check_retries, ports, retry, Options, Preset, Settings};
use crate::error::Error;
use std::collections::BTreeMap;
use std::time::Duration;
use ws_core::Invalid;

/// The commands that read git config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Run,
    Report,
    Merge,
}

/// One `ws.*` key: its name, its default and what it means (one line each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyDoc {
    pub name: &'static str,
    /// The default, as the README and help say it.
    pub default: &'static str,
    pub meaning: &'static str,
    /// Several values (`git config --add`), all of them used.
    pub many: bool,
    /// The commands that read it.
    pub read_by: &'static [Command],
}

pub const AGENTS: &str = "ws.agents";
pub const AGENT_COMMAND: &str = "ws.agentCommand";
pub const AGENT: &str = "ws.agent";
pub const AGENT_ARGS: &str = "ws.agentArgs";
pub const RETRIES: &str = "ws.retries";
pub const RETRY_BACKOFF: &str = "ws.retryBackoff";
pub const RETRY_ON: &str = "ws.retryOn";
pub const MAX_WAIT: &str = "ws.maxWait";
pub const TRANSIENT_PATTERN: &str = "ws.transientPattern";
pub const PORT_BASE: &str = "ws.portBase";
pub const SETUP_COMMAND: &str = "ws.setupCommand";
pub const SETUP_TIMEOUT: &str = "ws.setupTimeout";
pub const NOTIFY_COMMAND: &str = "ws.notifyCommand";
pub const NOTIFY_TIMEOUT: &str = "ws.notifyTimeout";
/// The database (ws-db resolves it, given the value: [`ws_db::location::resolve`]).
pub const DATABASE: &str = ws_db::location::CONFIG_KEY;
pub const LEASE: &str = "ws.lease";
pub const KEEP_IGNORED: &str = "ws.keepIgnored";
pub const KEEP_WORKTREES: &str = "ws.keepWorktrees";
/// The agent worktree pool's directory (ws-git reads it when it finds the repository:
/// [`ws_git::RepoPaths::pool`]).
pub const POOL_DIR: &str = ws_git::POOL_DIR_KEY;
pub const REQUIRE_CHANGES: &str = "ws.requireChanges";
pub const WORKTREE_EXPIRY: &str = "ws.worktreeExpiry";
pub const INTEGRATION_TEST: &str = "ws.integrationTest";
pub const FIX_UP: &str = "ws.fixUp";
pub const MAX_LOG_BYTES: &str = "ws.maxLogBytes";
pub const HTML_REPORT: &str = "ws.htmlReport";
pub const SANDBOX: &str = "ws.sandbox";
pub const SANDBOX_NETWORK: &str = "ws.sandbox.network";
pub const SANDBOX_ALLOW_WRITE: &str = "ws.sandbox.allowWrite";

/// Default agent count (`ws.agents`).
pub const DEFAULT_AGENTS: usize = 3;
/// How long an idle pool worktree is kept (`ws.worktreeExpiry`).
pub const DEFAULT_WORKTREE_EXPIRY: Duration = Duration::from_secs(14 * 86_400);
/// How long a claim of a shared run lasts without a heartbeat (`ws.lease`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// Default time limit of the notify command (`ws.notifyTimeout`).
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(60);

const RUN: &[Command] = &[Command::Run];
const MERGE: &[Command] = &[Command::Merge];
const RUN_MERGE: &[Command] = &[Command::Run, Command::Merge];
const ALL: &[Command] = &[Command::Run, Command::Report, Command::Merge];

const fn key(
    name: &'static str,
    default: &'static str,
    meaning: &'static str,
    read_by: &'static [Command],
) -> KeyDoc {
    KeyDoc {
        name,
        default,
        meaning,
        many: false,
        read_by,
    }
}

/// Every `ws.*` key, in the order the help text lists them. Flags override them.
pub const KEYS: &[KeyDoc] = &[
    key(AGENTS, "`3`", "parallel agents, each in its own git worktree (`--agents`)", RUN),
    key(
        AGENT_COMMAND,
        "none",
        "command for workstreams that give a `prompt`, prompt on stdin and in `WS_PROMPT` (`--agent-cmd`)",
        RUN,
    ),
    key(
        AGENT,
        "none",
        "coding agent preset for `prompt` workstreams: `claude`, `codex`, `aider`, `gemini` (`--agent`)",
        RUN,
    ),
    key(
        AGENT_ARGS,
        "none",
        "extra arguments for every preset, split on whitespace (they replace the preset's permission flags)",
        RUN,
    ),
    key(
        RETRIES,
        "`0`",
        "retries of transient failures per workstream, at most 20 (`--retries`)",
        RUN,
    ),
    key(
        RETRY_BACKOFF,
        "`10s`",
        "base of the wait before a retry, doubled per attempt with jitter (`0`: no wait)",
        RUN,
    ),
    key(
        MAX_WAIT,
        "`1h`",
        "longest wait for an agent's usage limit to reset before the run pauses (`0`: pause at once; `git ws-run --resume RUN` continues)",
        RUN,
    ),
    key(
        RETRY_ON,
        "none",
        "failures retried besides transient ones: `timeout`, `tests`, `timeout,tests`",
        RUN,
    ),
    KeyDoc {
        many: true,
        ..key(
            TRANSIENT_PATTERN,
            "none",
            "a regular expression marking a failing command's output as transient (`git config --add` for more)",
            RUN,
        )
    },
    key(
        REQUIRE_CHANGES,
        "`false`",
        "a `prompt` workstream that changes nothing fails (`NoChanges`) instead of completing with a warning",
        RUN,
    ),
    key(
        PORT_BASE,
        "`20000`",
        "`WS_PORT` of `agent-1`; `agent-k` gets a block of 10 ports from `ws.portBase + 10·(k−1)`",
        RUN,
    ),
    key(
        SETUP_COMMAND,
        "none",
        "run with `sh -c` in a pool worktree once after it is created or its base changes (e.g. `npm ci`)",
        RUN,
    ),
    key(
        SETUP_TIMEOUT,
        "`--timeout`",
        "time limit of the setup command",
        RUN,
    ),
    key(
        NOTIFY_COMMAND,
        "none",
        "run with `sh -c` at the end of every run, the run's JSON on stdin",
        RUN,
    ),
    key(
        NOTIFY_TIMEOUT,
        "`60s`",
        "time limit of the notify command",
        RUN,
    ),
    key(
        MAX_LOG_BYTES,
        "`10m`",
        "cap of one command's output in its log (`k`, `m`, `g` suffixes): the first and last halves are kept, with a line saying how much was cut",
        RUN,
    ),
    key(
        HTML_REPORT,
        "`true`",
        "write `multi_agent_consolidated_<run-id>.html` (one self-contained page, no script) beside each Markdown report",
        RUN_MERGE,
    ),
    key(
        DATABASE,
        "`.state/multi_agent_consolidated.db`",
        "the database: an SQLite path (relative to the repository root) or a `postgres://` URL; `--db` and env `GIT_WS_DATABASE_URL` come first",
        ALL,
    ),
    key(
        LEASE,
        "`30s`",
        "how long a claim of a shared run lasts without a heartbeat (at least 500ms)",
        RUN,
    ),
    key(
        KEEP_IGNORED,
        "none",
        "ignored top-level paths such as `target,node_modules` kept between workstreams on an agent and between runs (build caches)",
        RUN_MERGE,
    ),
    key(
        POOL_DIR,
        "`../.<repo>.ws-pool`",
        "directory of the agent worktree pool (`agent-k` in it), outside `.git`; relative to the repository root, one per repository",
        RUN_MERGE,
    ),
    key(
        KEEP_WORKTREES,
        "`true`",
        "keep each run's agent worktrees as the pool; `false` removes them at the end (`--remove-worktrees`)",
        RUN,
    ),
    key(
        WORKTREE_EXPIRY,
        "`14d`",
        "how long an idle pool worktree is kept: `36h`, a bare number of days, or `never`",
        RUN,
    ),
    key(
        INTEGRATION_TEST,
        "none",
        "`git ws-merge`'s test command, run with `sh -c` in a pool worktree (`--test`)",
        MERGE,
    ),
    key(
        FIX_UP,
        "`0` (off)",
        "hand a prompt workstream's branch the integration leaves out (conflict, breaks the tests) back to its agent as `<id>~fixK`, at most this many times (`--fix-up N`)",
        RUN_MERGE,
    ),
    key(
        SANDBOX,
        "`auto`",
        "sandbox of every agent, test, setup and `ws-merge` test command: `auto` (the strongest available), `landlock`, `bwrap`, `off`, or `strict` (as `auto`, and a workstream during which something outside the worktrees changed fails with `SandboxViolation`); a workstream's `sandbox` field overrides it",
        RUN_MERGE,
    ),
    key(
        SANDBOX_NETWORK,
        "`all`",
        "network of sandboxed commands: `all`, `none`, or TCP ports they may connect to (`443,8080`; Landlock)",
        RUN_MERGE,
    ),
    KeyDoc {
        many: true,
        ..key(
            SANDBOX_ALLOW_WRITE,
            "none",
            "a path sandboxed commands may also write (relative to the repository root; `~/` is the home; `git config --add` for more)",
            RUN_MERGE,
        )
    },
];

/// The documentation of `name`. Panics on a key the table lacks (a bug: the test that
/// scans the sources catches it first).
fn doc(name: &str) -> &'static KeyDoc {
    KEYS.iter()
        .find(|k| k.name == name)
        .unwrap_or_else(|| panic!("{name} is not in config::KEYS"))
}

/// The help text's settings line for `command`: the keys it reads, in table order.
pub fn help_line(command: Command) -> String {
    let names: Vec<&str> = KEYS
        .iter()
        .filter(|k| k.read_by.contains(&command))
        .map(|k| k.name)
        .collect();
    format!("Settings: git config {}.", names.join(", "))
}

/// The README's settings table, as Markdown (a test keeps the README's copy equal).
pub fn markdown_table() -> String {
    let mut s = String::from("| key | default | meaning |\n| --- | --- | --- |\n");
    for k in KEYS {
        s.push_str(&format!(
            "| `{}` | {} | {} |\n",
            k.name, k.default, k.meaning
        ));
    }
    s
}

/// One snapshot of the `ws.*` keys of a repository's git config (repository, global,
/// system, with git's precedence), read once per command. Each reader applies the key's
/// default and says in one sentence, naming the key and its value, why a value is unusable;
/// a key is only checked when it is read, so a bad value of a key a command does not use
/// never stops it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Key → its value (the last one), for single-valued keys.
    one: BTreeMap<&'static str, String>,
    /// Key → every value, for keys that take several.
    many: BTreeMap<&'static str, Vec<String>>,
}

impl Config {
    /// Read every key of [`KEYS`] from a git config snapshot.
    pub fn read(git: &ws_git::config::Config) -> Config {
        let mut c = Config::default();
        for k in KEYS {
            if k.many {
                c.many.insert(k.name, git.strings(k.name));
            } else if let Some(v) = git.string(k.name) {
                c.one.insert(k.name, v);
            }
        }
        c
    }

    /// A config with these values (tests, and programs that set keys without git).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Config {
        let mut c = Config::default();
        for (name, value) in pairs {
            let k = doc(name);
            if k.many {
                c.many.entry(k.name).or_default().push(value.to_string());
            } else {
                c.one.insert(k.name, value.to_string());
            }
        }
        c
    }

    /// The raw value of a single-valued key, if set.
    fn get(&self, name: &'static str) -> Option<&str> {
        debug_assert!(!doc(name).many, "{name} takes several values");
        self.one.get(name).map(String::as_str)
    }

    /// `ws.agents`: `None` when unset (then [`DEFAULT_AGENTS`]).
    pub fn agents(&self) -> Result<Option<usize>, Error> {
        self.get(AGENTS)
            .map(|v| {
                v.trim().parse().map_err(|_| {
                    Error::new(format!(
                        "git config {AGENTS} = {v:?} is not a whole number of agents"
                    ))
                })
            })
            .transpose()
    }

    /// `ws.agentCommand`, as set.
    pub fn agent_command(&self) -> Option<String> {
        self.get(AGENT_COMMAND).map(str::to_string)
    }

    /// `ws.keepIgnored`: the names, split on commas and spaces (empty when unset).
    pub fn keep_ignored(&self) -> Vec<String> {
        self.get(KEEP_IGNORED)
            .map(|v| {
                v.split([',', ' '])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `ws.keepWorktrees` (git's boolean spellings), default `true`.
    pub fn keep_worktrees(&self) -> Result<bool, Error> {
        self.boolean(KEEP_WORKTREES, true)
    }

    /// `ws.htmlReport`: write the HTML page beside each Markdown report, default true.
    pub fn html_report(&self) -> Result<bool, Error> {
        self.boolean(HTML_REPORT, true)
    }

    /// A boolean key as git spells booleans; `default` when unset.
    fn boolean(&self, key: &'static str, default: bool) -> Result<bool, Error> {
        let Some(raw) = self.get(key) else {
            return Ok(default);
        };
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" | "" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err(Error::new(format!(
                "git config {key} = {raw:?} is not a boolean (true or false)"
            ))),
        }
    }

    /// `ws.requireChanges` (git's boolean spellings), default `false`: whether a `prompt`
    /// workstream that changes nothing fails (`NoChanges`).
    pub fn require_changes(&self) -> Result<bool, Error> {
        self.boolean(REQUIRE_CHANGES, false)
    }

    /// `ws.worktreeExpiry`: how long an idle pool worktree is kept (`None`: forever),
    /// default [`DEFAULT_WORKTREE_EXPIRY`].
    pub fn worktree_expiry(&self) -> Result<Option<Duration>, Error> {
        match self.get(WORKTREE_EXPIRY) {
            Some(v) => parse_expiry(v)
                .map_err(|e| Error::new(format!("git config {WORKTREE_EXPIRY} = {v:?}: {e}"))),
            None => Ok(Some(DEFAULT_WORKTREE_EXPIRY)),
        }
    }

    /// `ws.lease`, default [`DEFAULT_LEASE`].
    pub fn lease(&self) -> Result<Duration, Error> {
        match self.get(LEASE) {
            Some(v) => crate::workstream::parse_duration(v.trim())
                .map_err(|e| Error::new(format!("git config {LEASE} = {v:?}: {e}"))),
            None => Ok(DEFAULT_LEASE),
        }
    }

    /// `ws.database`, as set (the database crate parses and resolves it).
    pub fn database(&self) -> Option<&str> {
        self.get(DATABASE)
    }

    /// `ws.integrationTest`, as set.
    pub fn integration_test(&self) -> Option<String> {
        self.get(INTEGRATION_TEST).map(str::to_string)
    }

    /// `ws.fixUp`: the most fix-ups per left-out workstream (0: off), if set.
    pub fn fix_up(&self) -> Result<Option<usize>, Error> {
        self.get(FIX_UP)
            .map(|v| {
                v.trim().parse().map_err(|_| {
                    Error::new(format!(
                        "git config {FIX_UP} = {v:?} is not a whole number of fix-up attempts (0 is off)"
                    ))
                })
            })
            .transpose()
    }

    /// `ws.notifyCommand`, unless unset or blank.
    pub fn notify_command(&self) -> Option<String> {
        self.get(NOTIFY_COMMAND)
            .filter(|c| !c.trim().is_empty())
            .map(str::to_string)
    }

    /// `ws.maxLogBytes`, default [`crate::logcap::DEFAULT_MAX_LOG_BYTES`].
    pub fn max_log_bytes(&self) -> Result<u64, Error> {
        match self.get(MAX_LOG_BYTES) {
            Some(v) => crate::logcap::parse_limit(v)
                .map_err(|e| Error::new(format!("git config {MAX_LOG_BYTES}: {e}"))),
            None => Ok(crate::logcap::DEFAULT_MAX_LOG_BYTES),
        }
    }

    /// `ws.sandbox`, default `auto`.
    pub fn sandbox(&self) -> Result<ws_core::sandbox::Mode, Error> {
        match self.get(SANDBOX) {
            Some(v) => ws_core::sandbox::Mode::parse(v)
                .map_err(|e| Error::new(format!("git config {SANDBOX} = {v:?}: {e}"))),
            None => Ok(ws_core::sandbox::Mode::Auto),
        }
    }

    /// `ws.sandbox.network`, default `all`.
    pub fn sandbox_network(&self) -> Result<ws_core::sandbox::Network, Error> {
        match self.get(SANDBOX_NETWORK) {
            Some(v) => ws_core::sandbox::Network::parse(v)
                .map_err(|e| Error::new(format!("git config {SANDBOX_NETWORK} = {v:?}: {e}"))),
            None => Ok(ws_core::sandbox::Network::All),
        }
    }

    /// `ws.sandbox.allowWrite`: every value, as set (blank ones left out).
    pub fn sandbox_allow_write(&self) -> Vec<String> {
        self.many
            .get(SANDBOX_ALLOW_WRITE)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|p| !p.trim().is_empty())
            .cloned()
            .collect()
    }

    /// `ws.sandbox` is `strict`: a change outside the worktrees fails the workstream. The
    /// other values (`auto`, `landlock`, `bwrap`, `off`) are accepted; default `auto`.
    pub fn sandbox_strict(&self) -> Result<bool, Error> {
        match self.get(SANDBOX).map(str::trim) {
            None => Ok(false),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "strict" => Ok(true),
                "auto" | "landlock" | "bwrap" | "off" => Ok(false),
                _ => Err(Error::new(format!(
                    "git config {SANDBOX} = {v:?}: use auto, landlock, bwrap, off or strict"
                ))),
            },
        }
    }

    /// `ws.notifyTimeout`, default [`DEFAULT_NOTIFY_TIMEOUT`].
    pub fn notify_timeout(&self) -> Result<Duration, Error> {
        match self.get(NOTIFY_TIMEOUT) {
            Some(t) => crate::workstream::parse_duration(t.trim())
                .map_err(|e| Error::new(format!("git config {NOTIFY_TIMEOUT} = {t:?}: {e}"))),
            None => Ok(DEFAULT_NOTIFY_TIMEOUT),
        }
    }

    /// The agent settings of a run: `opts` (the flags) over the agent keys. `agent_cmd_flag`:
    /// `--agent-cmd` was given on the command line (it then beats `ws.agent`). Errors name
    /// the flag or key.
    pub fn agent_settings(&self, opts: &Options, agent_cmd_flag: bool) -> Result<Settings, Error> {
        let key = |k: &str, v: &str, e: Invalid| Error::new(format!("git config {k} = {v:?}: {e}"));
        let agent = match (&opts.agent, agent_cmd_flag) {
            (Some(a), _) => {
                Some(Preset::parse(a).map_err(|e| Error::new(format!("--agent: {e}")))?)
            }
            (None, true) => None,
            (None, false) => match self.get(AGENT).filter(|a| !a.trim().is_empty()) {
                Some(a) => Some(Preset::parse(a).map_err(|e| key(AGENT, a, e))?),
                None => None,
            },
        };
        if let Some(b) = opts.budget_usd {
            check_budget(b).map_err(|e| Error::new(format!("--budget: {e}")))?;
        }
        let retries = match opts.retries {
            Some(n) => check_retries(n).map_err(|e| Error::new(format!("--retries: {e}")))?,
            None => match self.get(RETRIES) {
                Some(v) => v
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| Invalid::new("not a whole number"))
                    .and_then(check_retries)
                    .map_err(|e| key(RETRIES, v, e))?,
                None => 0,
            },
        };
        let duration = |k: &'static str| -> Result<Option<Duration>, Error> {
            match self.get(k) {
                None => Ok(None),
                Some(v) if v.trim() == "0" => Ok(Some(Duration::ZERO)),
                Some(v) => crate::workstream::parse_duration(v.trim())
                    .map(Some)
                    .map_err(|e| key(k, v, e)),
            }
        };
        let retry_on = match self.get(RETRY_ON) {
            Some(v) => retry::RetryOn::parse(v).map_err(|e| key(RETRY_ON, v, e))?,
            None => retry::RetryOn::default(),
        };
        let transient_patterns = self
            .many
            .get(TRANSIENT_PATTERN)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| retry::Pattern::new(p).map_err(|e| key(TRANSIENT_PATTERN, p, e)))
            .collect::<Result<Vec<_>, _>>()?;
        let port_base = match self.get(PORT_BASE) {
            Some(v) => ports::parse_base(v).map_err(|e| key(PORT_BASE, v, e))?,
            None => ports::DEFAULT_BASE,
        };
        Ok(Settings {
            agent,
            agent_args: self
                .get(AGENT_ARGS)
                .map(|a| a.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            budget_usd: opts.budget_usd,
            retries,
            retry_backoff: duration(RETRY_BACKOFF)?.unwrap_or(retry::DEFAULT_BACKOFF),
            retry_on,
            transient_patterns,
            port_base,
            setup_command: self
                .get(SETUP_COMMAND)
                .filter(|c| !c.trim().is_empty())
                .map(str::to_string),
            setup_timeout: duration(SETUP_TIMEOUT)?,
            require_changes: self.require_changes()?,
            max_wait: duration(MAX_WAIT)?.unwrap_or(crate::agents::limits::DEFAULT_MAX_WAIT),
        })
    }
}

/// `ws.worktreeExpiry`: a duration (`14d`, `36h`, `90m`; a bare number is days), or
/// `never` / `off` / `0` for no expiry (`None`).
pub fn parse_expiry(text: &str) -> Result<Option<Duration>, String> {
    let t = text.trim();
    match t.to_ascii_lowercase().as_str() {
        "never" | "off" | "false" | "0" => return Ok(None),
        _ => {}
    }
    if let Ok(days) = t.parse::<u64>() {
        return Ok(Some(Duration::from_secs(days.saturating_mul(86_400))));
    }
    crate::workstream::parse_duration(t)
        .map(Some)
        .map_err(|e| format!("{e}; or never"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    #[test]
    fn worktree_expiry_reads_durations_days_and_never() {
        let day = Duration::from_secs(86_400);
        assert_eq!(parse_expiry("14d"), Ok(Some(14 * day)));
        assert_eq!(parse_expiry("14"), Ok(Some(14 * day)));
        assert_eq!(
            parse_expiry("36h"),
            Ok(Some(Duration::from_secs(36 * 3600)))
        );
        assert_eq!(parse_expiry(" never "), Ok(None));
        assert_eq!(parse_expiry("0"), Ok(None));
        let e = parse_expiry("fortnight").unwrap_err();
        assert!(e.contains("fortnight") && e.contains("never"), "{e}");
    }

    #[test]
    fn the_documented_defaults_are_the_defaults() {
        let none = Config::default();
        let d = |name| doc(name).default.trim_matches('`');
        assert_eq!(d(AGENTS), DEFAULT_AGENTS.to_string());
        assert_eq!(
            parse_expiry(d(WORKTREE_EXPIRY)),
            Ok(Some(DEFAULT_WORKTREE_EXPIRY))
        );
        assert_eq!(
            none.worktree_expiry().unwrap(),
            Some(DEFAULT_WORKTREE_EXPIRY)
        );
        let dur = |name| crate::workstream::parse_duration(d(name)).unwrap();
        assert_eq!(dur(LEASE), DEFAULT_LEASE);
        assert_eq!(none.lease().unwrap(), DEFAULT_LEASE);
        assert_eq!(dur(NOTIFY_TIMEOUT), DEFAULT_NOTIFY_TIMEOUT);
        assert_eq!(none.notify_timeout().unwrap(), DEFAULT_NOTIFY_TIMEOUT);
        let agents = none.agent_settings(&Options::default(), false).unwrap();
        assert_eq!(dur(RETRY_BACKOFF), agents.retry_backoff);
        assert_eq!(dur(MAX_WAIT), agents.max_wait);
        assert_eq!(d(RETRIES), agents.retries.to_string());
        assert_eq!(d(PORT_BASE), agents.port_base.to_string());
        assert_eq!(
            d(KEEP_WORKTREES),
            none.keep_worktrees().unwrap().to_string()
        );
        assert_eq!(d(DATABASE), crate::db::DEFAULT_PATH, "the database default");
    }

    #[test]
    fn readers_name_the_key_and_the_value_they_cannot_use() {
        let c = Config::from_pairs(&[
            (AGENTS, "many"),
            (KEEP_WORKTREES, "perhaps"),
            (LEASE, "soon"),
            (TRANSIENT_PATTERN, "ok"),
            (TRANSIENT_PATTERN, "(unclosed"),
        ]);
        let e = c.agents().unwrap_err().to_string();
        assert_eq!(
            e,
            "git config ws.agents = \"many\" is not a whole number of agents"
        );
        let e = c.keep_worktrees().unwrap_err().to_string();
        assert!(e.contains("ws.keepWorktrees = \"perhaps\""), "{e}");
        assert!(c.lease().unwrap_err().to_string().contains("ws.lease"));
        let e = c
            .agent_settings(&Options::default(), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("git config ws.transientPattern = \"(unclosed\""),
            "{e}"
        );
        let ok = Config::from_pairs(&[(KEEP_IGNORED, "target, node_modules"), (AGENTS, " 5 ")]);
        assert_eq!(ok.keep_ignored(), ["target", "node_modules"]);
        assert_eq!(ok.agents().unwrap(), Some(5));
    }

    #[test]
    fn the_help_lists_the_keys_each_command_reads() {
        let run = help_line(Command::Run);
        assert!(run.starts_with("Settings: git config ws.agents, ws.agentCommand, ws.agent,"));
        assert!(
            run.ends_with(
                "ws.keepWorktrees, ws.worktreeExpiry, ws.fixUp, ws.sandbox, ws.sandbox.network, ws.sandbox.allowWrite."
            ),
            "{run}"
        );
        assert!(!run.contains(INTEGRATION_TEST));
        assert_eq!(
            help_line(Command::Merge),
            "Settings: git config ws.htmlReport, ws.database, ws.keepIgnored, ws.poolDir, ws.integrationTest, ws.fixUp, ws.sandbox, ws.sandbox.network, ws.sandbox.allowWrite."
        );
    }

    #[test]
    fn the_readme_settings_table_is_the_table() {
        let readme =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
                .unwrap();
        let table = markdown_table();
        assert!(
            readme.contains(&table),
            "README.md's settings table differs from config::KEYS; it should read:\n\n{table}"
        );
    }

    /// Every `.rs` file under `dir`.
    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    /// The `"ws.<name>"` string literals of a source text: every key a file can read.
    fn key_literals(text: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut rest = text;
        while let Some(i) = rest.find("\"ws.") {
            let after = &rest[i + 4..];
            let name_len = after
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(after.len());
            if name_len > 0 && after[name_len..].starts_with('"') {
                keys.push(format!("ws.{}", &after[..name_len]));
            }
            rest = after;
        }
        keys
    }

    #[test]
    fn every_key_read_anywhere_is_in_the_table() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        sources(&root.join("src"), &mut files);
        for c in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
            sources(&c.path().join("src"), &mut files);
        }
        assert!(files.len() > 20, "found only {} source files", files.len());
        let known: BTreeSet<&str> = KEYS.iter().map(|k| k.name).collect();
        let mut unknown = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            for k in key_literals(&text) {
                if !known.contains(k.as_str()) {
                    unknown.push(format!("{} reads {k}", f.display()));
                }
            }
        }
        assert!(
            unknown.is_empty(),
            "keys missing from config::KEYS (add each with its default and meaning):\n{}",
            unknown.join("\n")
        );
        assert_eq!(
            key_literals(r#"x("ws.agents") "ws.setupCommand ran" "ws.a.b" "ws.""#),
            ["ws.agents"]
        );
    }

    #[test]
    fn key_names_are_unique() {
        let names: BTreeSet<&str> = KEYS.iter().map(|k| k.name).collect();
        assert_eq!(names.len(), KEYS.len());
    }
}
