//! Coding agents as first-class citizens, the pure part: presets for Claude Code, Codex CLI,
//! Aider and Gemini CLI ([`preset`]), what they spend ([`usage`], [`metrics`]), budgets,
//! retries of transient failures ([`retry`]), the failures they report while exiting 0
//! ([`failure`]) and the per-slot port (`WS_PORT`: [`ports`]).
//! [`Settings`] is what a run resolved from its flags and git config (resolved by the
//! runtime, which also runs the meter, the setup and the notify commands).
//!
//! Its files import only those before them: `preset`, `ports`, `metrics` → `retry`,
//! `usage` (which know the presets) → `failure` → `limits` → this file.

pub mod failure;
pub mod limits;
pub mod metrics;
pub mod ports;
pub mod preset;
pub mod retry;
pub mod usage;

pub use preset::Preset;

use crate::model::{Usage, WorkstreamResult};
use crate::Invalid;
use std::time::Duration;

/// What the command line says about agents (`--agent`, `--budget`, `--retries`); the rest
/// comes from git config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// `--agent NAME`: the preset for prompt workstreams (git config `ws.agent`).
    pub agent: Option<String>,
    /// `--budget USD`: stop dispatching once the run's recorded spend reaches it.
    pub budget_usd: Option<f64>,
    /// `--retries N`: default retries of transient failures per workstream.
    pub retries: Option<u32>,
}

/// Everything a run resolved about agents.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The preset prompt workstreams use unless they name their own: `--agent`, else git
    /// config `ws.agent` unless `--agent-cmd` was given on the command line.
    pub agent: Option<Preset>,
    /// git config `ws.agentArgs`: extra arguments for every preset (split on whitespace).
    pub agent_args: Vec<String>,
    pub budget_usd: Option<f64>,
    /// Retries per workstream unless it says `retries`.
    pub retries: u32,
    /// git config `ws.retryBackoff` (default 10s).
    pub retry_backoff: Duration,
    /// git config `ws.retryOn`.
    pub retry_on: retry::RetryOn,
    /// git config `ws.transientPattern` (every value).
    pub transient_patterns: Vec<retry::Pattern>,
    /// git config `ws.portBase` (default 20000).
    pub port_base: u16,
    /// git config `ws.setupCommand`.
    pub setup_command: Option<String>,
    /// git config `ws.setupTimeout` (default: the run's `--timeout`).
    pub setup_timeout: Option<Duration>,
    /// git config `ws.requireChanges`: a `prompt` workstream that changes nothing fails
    /// ([`no_changes`]).
    pub require_changes: bool,
    /// git config `ws.maxWait`: how long dispatch to a preset waits for its usage limit to
    /// reset before the run pauses (default [`limits::DEFAULT_MAX_WAIT`]).
    pub max_wait: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            agent: None,
            agent_args: Vec::new(),
            budget_usd: None,
            retries: 0,
            retry_backoff: retry::DEFAULT_BACKOFF,
            retry_on: retry::RetryOn::default(),
            transient_patterns: Vec::new(),
            port_base: ports::DEFAULT_BASE,
            setup_command: None,
            setup_timeout: None,
            require_changes: false,
            max_wait: limits::DEFAULT_MAX_WAIT,
        }
    }
}

/// What a `prompt` workstream that ended without an error, with no commit and no changed
/// file on `branch`, gets: `Ok(warning)`, or with `require` (git config
/// `ws.requireChanges`) `Err` with a `NoChanges` error. An agent that did nothing usually
/// exits 0 (refused edits, a misread prompt), so without this the run says "completed".
pub fn no_changes(branch: &str, require: bool) -> Result<String, crate::model::WsError> {
    let what = format!("the agent changed nothing: no commit and no changed file on {branch}");
    if require {
        Err(crate::model::WsError::new(
            crate::model::ErrorType::NoChanges,
            format!("{what} (git config ws.requireChanges is true)"),
        ))
    } else {
        Ok(format!(
            "{what}; git config ws.requireChanges true makes this a failure (NoChanges)"
        ))
    }
}

/// A dollar amount for a budget: finite and more than 0.
pub fn check_budget(usd: f64) -> Result<f64, Invalid> {
    if usd.is_finite() && usd > 0.0 {
        Ok(usd)
    } else {
        Err(Invalid::new(format!(
            "{usd} is not an amount of dollars more than 0"
        )))
    }
}

/// A number of retries: at most [`retry::MAX_RETRIES`].
pub fn check_retries(n: u32) -> Result<u32, Invalid> {
    if n <= retry::MAX_RETRIES {
        Ok(n)
    } else {
        Err(Invalid::new(format!(
            "{n} is more than {} retries",
            retry::MAX_RETRIES
        )))
    }
}

/// What drives a workstream: a preset agent, the configured agent command, or the
/// workstream's own command. (Named apart from the runtime's `runner`, which schedules
/// workstreams, and from `testparse::Harness`, which prints test summaries.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Driver {
    /// A preset agent with the prompt.
    Preset(Preset),
    /// `--agent-cmd` / `ws.agentCommand` with the prompt on stdin.
    AgentCmd(String),
    /// The workstream's own `command`.
    Command,
}

impl Driver {
    /// The label results and reports group usage by.
    pub fn label(&self) -> &str {
        match self {
            Driver::Preset(p) => p.name(),
            Driver::AgentCmd(_) => "agent-cmd",
            Driver::Command => "command",
        }
    }

    pub fn preset(&self) -> Option<Preset> {
        match self {
            Driver::Preset(p) => Some(*p),
            _ => None,
        }
    }
}

/// What a run's recorded results spent, in dollars; None when none reported a cost.
pub fn spent(results: &[WorkstreamResult]) -> Option<f64> {
    usage::sum(results.iter().filter_map(|r| r.usage.as_ref())).and_then(|u| u.cost_usd)
}

/// `Some(reason)` once the recorded spend reaches `--budget`: the dispatch loop then starts
/// nothing more and skips the rest with this reason (`BudgetExceeded`).
pub fn budget_spent(budget_usd: Option<f64>, results: &[WorkstreamResult]) -> Option<String> {
    budget_reached(budget_usd, spent(results))
}

/// [`budget_spent`] for a spend already summed (`None`: nothing reported a cost).
pub fn budget_reached(budget_usd: Option<f64>, spent: Option<f64>) -> Option<String> {
    let budget = budget_usd?;
    let spent = spent?;
    (spent >= budget).then(|| {
        format!(
            "not started: the run's --budget of {} was spent ({} recorded)",
            usd(budget),
            usd(spent)
        )
    })
}

/// Dollars for a message: `$0.015`, `$0.02`, `$1.00` (cents always, at most 4 decimals).
pub fn usd(x: f64) -> String {
    let s = format!("{x:.4}");
    let (int, frac) = s.split_once('.').unwrap_or((&s, "0000"));
    let frac = frac.trim_end_matches('0');
    format!("${int}.{frac:0<2}")
}

/// Cost of a usage, 0 when unknown.
pub fn cost(u: Option<&Usage>) -> f64 {
    u.and_then(|u| u.cost_usd).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_prompt_that_changed_nothing_is_warned_or_failed_on_request() {
        let w = no_changes("ws/r/a", false).unwrap();
        assert!(w.contains("no commit and no changed file on ws/r/a"), "{w}");
        assert!(w.contains("ws.requireChanges"), "{w}");
        let e = no_changes("ws/r/a", true).unwrap_err();
        assert_eq!(e.error_type, crate::model::ErrorType::NoChanges);
        assert!(
            e.message.contains("ws.requireChanges is true"),
            "{}",
            e.message
        );
        assert_eq!(
            crate::model::ErrorType::parse("NoChanges"),
            Some(e.error_type)
        );
    }
    use super::*;
    use crate::model::Status;

    fn with_cost(id: &str, c: Option<f64>) -> WorkstreamResult {
        let mut r = WorkstreamResult::new("run", "agent-1", id, Status::Completed);
        r.usage = c.map(|c| Usage {
            cost_usd: Some(c),
            ..Usage::default()
        });
        r
    }

    #[test]
    fn the_budget_is_spent_once_recorded_costs_reach_it() {
        let rs = vec![with_cost("a", Some(0.4)), with_cost("b", None)];
        assert_eq!(budget_spent(Some(1.0), &rs), None);
        assert_eq!(budget_spent(None, &rs), None);
        let mut rs = rs;
        rs.push(with_cost("c", Some(0.6)));
        assert_eq!(
            budget_spent(Some(1.0), &rs).as_deref(),
            Some("not started: the run's --budget of $1.00 was spent ($1.00 recorded)")
        );
        assert_eq!(usd(0.015), "$0.015");
        assert_eq!(usd(0.02), "$0.02");
        assert_eq!(usd(2.0), "$2.00");
        assert_eq!(usd(0.12345), "$0.1235");
        assert_eq!(budget_spent(Some(1.0), &[with_cost("x", None)]), None);
    }

    #[test]
    fn budgets_and_retries_are_checked() {
        assert!(check_budget(0.0).is_err());
        assert!(check_budget(f64::NAN).is_err());
        assert_eq!(check_budget(2.5), Ok(2.5));
        assert!(check_retries(21).unwrap_err().as_str().contains("20"));
    }
}
