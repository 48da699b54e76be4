//! `ws.setupCommand`: run once when a pool worktree is created or its base changes (e.g.
//! `npm ci`), with its own log and time limit. A marker per slot
//! (`<git common dir>/ws/setup/<slot>`) records the base and command it last succeeded for;
//! a newly created worktree loses its marker, so setup runs again. A failure is the slot's
//! (the caller hands the workstream to another agent), never a workstream's.

use crate::process::{self, Ending, Spec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// What a slot's setup needs.
#[derive(Debug, Clone)]
pub struct Setup {
    pub command: String,
    /// `agent-1`, `agent-1-2`.
    pub slot: String,
    pub worktree: PathBuf,
    /// `<common dir>/ws/setup/<slot>` ([`crate::layout::Layout::setup_marker`]).
    pub marker: PathBuf,
    pub log: PathBuf,
    pub env: BTreeMap<String, String>,
    pub timeout: Duration,
    pub grace: Duration,
    /// The process registry ([`crate::layout::Layout::procs_dir`]).
    pub procs_dir: Option<PathBuf>,
}

/// The marker's text for a base and command.
pub fn marker_text(base: &str, command: &str) -> String {
    format!("base {base}\ncommand {}\n", command.replace('\n', " "))
}

/// Whether setup must run: no marker, or one for another base or command.
pub fn needed(marker: Option<&str>, base: &str, command: &str) -> bool {
    marker != Some(marker_text(base, command).as_str())
}

/// Forget a slot's setup (its worktree was just created).
pub fn forget(marker: &Path) {
    let _ = std::fs::remove_file(marker);
}

/// Run the setup command if the marker says it is needed. `Ok(true)` it ran and succeeded,
/// `Ok(false)` nothing to do; `Err(sentence)` it failed (the log has its output).
pub async fn ensure(s: &Setup, base: &str, cancel: watch::Receiver<bool>) -> Result<bool, String> {
    let current = std::fs::read_to_string(&s.marker).ok();
    if !needed(current.as_deref(), base, &s.command) {
        return Ok(false);
    }
    forget(&s.marker);
    process::log_note(
        &s.log,
        &format!("git-ws: ws.setupCommand in {}: {}", s.slot, s.command),
    );
    let spec = Spec {
        argv: vec!["sh".into(), "-c".into(), s.command.clone()],
        cwd: s.worktree.clone(),
        env: s.env.clone(),
        stdin: None,
        log: s.log.clone(),
        timeout: s.timeout,
        grace: s.grace,
        pgid_file: Some(s.log.with_extension("pgid")),
        procs_dir: s.procs_dir.clone(),
        sandbox: crate::sandbox::for_slot(&s.worktree, None, None),
    };
    let ending = process::run(&spec, cancel).await;
    let why = match ending {
        Ending::Exited { code: Some(0), .. } => None,
        Ending::Exited { code: Some(c), .. } => Some(format!("exited with status {c}")),
        Ending::Exited { signal, .. } => Some(format!(
            "was killed by signal {}",
            signal.map_or("?".to_string(), |s| s.to_string())
        )),
        Ending::TimedOut => Some(format!(
            "timed out after {}",
            crate::text::duration(s.timeout.as_secs_f64())
        )),
        Ending::Cancelled => Some("was cancelled: the run was interrupted".to_string()),
        Ending::Stopped(r) => Some(r),
        Ending::SpawnFailed(m) => Some(m),
    };
    if let Some(why) = why {
        return Err(format!(
            "the setup command (ws.setupCommand) {why} in {} (log: {})",
            s.slot,
            s.log.display()
        ));
    }
    if let Some(dir) = s.marker.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&s.marker, marker_text(base, &s.command)).map_err(|e| {
        format!(
            "failed to record the setup of {} in {}: {e}",
            s.slot,
            s.marker.display()
        )
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needed_unless_the_marker_matches_base_and_command() {
        let m = marker_text("abc", "npm ci");
        assert!(!needed(Some(&m), "abc", "npm ci"));
        assert!(needed(Some(&m), "abd", "npm ci"));
        assert!(needed(Some(&m), "abc", "npm install"));
        assert!(needed(None, "abc", "npm ci"));
        assert!(needed(Some("garbage"), "abc", "npm ci"));
    }
}
