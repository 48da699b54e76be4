//! `ws.notifyCommand`: run once at the end of every run — finished or interrupted — with the
//! run's JSON (the object `git ws-run --format json` prints) on stdin, `sh -c` in the main
//! worktree, its output in `.state/logs/<run-id>/notify.log`, a time limit of
//! `ws.notifyTimeout` (default 60s). Its failure is a note on the run, never a failure of
//! the run.

use crate::outcome::RunOutcome;
use crate::process::{self, Ending, Spec};
use crate::workspace::Workspace;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Default time limit of the notify command.
pub use crate::config::DEFAULT_NOTIFY_TIMEOUT as DEFAULT_TIMEOUT;

/// Run the notify command configured for the repository of `outcome`, if any; returns
/// notes (why it failed).
pub async fn after_run(outcome: &RunOutcome) -> Vec<String> {
    let root = Path::new(&outcome.consolidated.run.repo_root);
    // The run's repository as recorded (for a worker that joined a shared run from another
    // clone: the coordinator's, which is only found on the coordinator's machine).
    let Ok(ws) = Workspace::discover(root) else {
        return Vec::new();
    };
    let Some(command) = ws.config.notify_command() else {
        return Vec::new();
    };
    let timeout = match ws.config.notify_timeout() {
        Ok(d) => d,
        Err(e) => return vec![format!("did not run ws.notifyCommand: {e}")],
    };
    let logs = ws.layout.run_logs(&outcome.run_id);
    logs.create();
    notify(
        &command,
        root,
        &logs.notify(),
        Some(ws.layout.procs_dir()),
        outcome,
        timeout,
    )
    .await
    .into_iter()
    .collect()
}

/// Run `command` with the run's JSON on stdin. `Some(note)` when it failed.
pub async fn notify(
    command: &str,
    cwd: &Path,
    log: &Path,
    procs_dir: Option<std::path::PathBuf>,
    outcome: &RunOutcome,
    timeout: Duration,
) -> Option<String> {
    let json = crate::summary::summary_json(outcome);
    let env = BTreeMap::from([
        ("WS_RUN_ID".to_string(), outcome.run_id.clone()),
        ("WS_EXIT_CODE".to_string(), outcome.exit_code().to_string()),
    ]);
    let spec = Spec {
        argv: vec!["sh".into(), "-c".into(), command.to_string()],
        cwd: cwd.to_path_buf(),
        env,
        stdin: Some(json),
        log: log.to_path_buf(),
        timeout,
        grace: Duration::from_secs(2),
        pgid_file: None,
        procs_dir,
        // The user's own command, not a workstream's: unconfined.
        sandbox: None,
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let why = match process::run(&spec, rx).await {
        Ending::Exited { code: Some(0), .. } => return None,
        Ending::Exited { code: Some(c), .. } => format!("exited with status {c}"),
        Ending::Exited { .. } => "was killed by a signal".to_string(),
        Ending::TimedOut => format!(
            "timed out after {}",
            crate::text::duration(timeout.as_secs_f64())
        ),
        Ending::Cancelled => "was cancelled".to_string(),
        Ending::Stopped(r) => r,
        Ending::SpawnFailed(m) => m,
    };
    Some(format!(
        "the notify command (ws.notifyCommand) {why} (log: {})",
        log.display()
    ))
}
