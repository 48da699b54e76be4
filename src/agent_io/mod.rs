//! The agent runtime: what runs beside an agent's process (the usage meter, the per-slot
//! setup command, the end-of-run notify command) and resolving the agent settings of a run
//! from its flags and git config. The presets and rules themselves are pure, in
//! `ws_core::agents`.

pub mod meter;
pub mod notify;
pub mod setup;

use crate::agents::{check_budget, check_retries, ports, retry, Options, Preset, Settings};
use crate::error::Error;
use std::time::Duration;
use ws_core::Invalid;

/// Resolve `opts` against git config. `agent_cmd_flag`: `--agent-cmd` was given on the
/// command line (it then beats git config `ws.agent`). Errors name the flag or key.
pub fn resolve_settings(
    opts: &Options,
    agent_cmd_flag: bool,
    config: &crate::git::config::Config,
) -> Result<Settings, Error> {
    let key = |k: &str, v: &str, e: Invalid| Error::new(format!("git config {k} = {v:?}: {e}"));
    let agent = match (&opts.agent, agent_cmd_flag) {
        (Some(a), _) => Some(Preset::parse(a).map_err(|e| Error::new(format!("--agent: {e}")))?),
        (None, true) => None,
        (None, false) => match config.string("ws.agent").filter(|a| !a.trim().is_empty()) {
            Some(a) => Some(Preset::parse(&a).map_err(|e| key("ws.agent", &a, e))?),
            None => None,
        },
    };
    if let Some(b) = opts.budget_usd {
        check_budget(b).map_err(|e| Error::new(format!("--budget: {e}")))?;
    }
    let retries = match opts.retries {
        Some(n) => check_retries(n).map_err(|e| Error::new(format!("--retries: {e}")))?,
        None => match config.string("ws.retries") {
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map_err(|_| Invalid::new("not a whole number"))
                .and_then(check_retries)
                .map_err(|e| key("ws.retries", &v, e))?,
            None => 0,
        },
    };
    let duration = |k: &str| -> Result<Option<Duration>, Error> {
        match config.string(k) {
            None => Ok(None),
            Some(v) if v.trim() == "0" => Ok(Some(Duration::ZERO)),
            Some(v) => crate::workstream::parse_duration(v.trim())
                .map(Some)
                .map_err(|e| key(k, &v, e)),
        }
    };
    let retry_on = match config.string("ws.retryOn") {
        Some(v) => retry::RetryOn::parse(&v).map_err(|e| key("ws.retryOn", &v, e))?,
        None => retry::RetryOn::default(),
    };
    let transient_patterns = config
        .strings("ws.transientPattern")
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| retry::Pattern::new(p).map_err(|e| key("ws.transientPattern", p, e)))
        .collect::<Result<Vec<_>, _>>()?;
    let port_base = match config.string("ws.portBase") {
        Some(v) => ports::parse_base(&v).map_err(|e| key("ws.portBase", &v, e))?,
        None => ports::DEFAULT_BASE,
    };
    Ok(Settings {
        agent,
        agent_args: config
            .string("ws.agentArgs")
            .map(|a| a.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
        budget_usd: opts.budget_usd,
        retries,
        retry_backoff: duration("ws.retryBackoff")?.unwrap_or(retry::DEFAULT_BACKOFF),
        retry_on,
        transient_patterns,
        port_base,
        setup_command: config
            .string("ws.setupCommand")
            .filter(|c| !c.trim().is_empty()),
        setup_timeout: duration("ws.setupTimeout")?,
    })
}
