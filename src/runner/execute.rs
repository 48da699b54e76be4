//! Executing one workstream on one agent: prepare its branch in the agent's worktree, run the
//! command (and its test), read what it did from git, and classify the result.

use super::process::{self, Ending, Spec};
use crate::git::{self, AgentSlot, PrepareError, PrepareOptions, RepoPaths};
use crate::model::{ErrorType, Status, TestResults, WorkstreamResult, WsError};
use crate::testparse;
use crate::workstream::{Action, Workstream};
use chrono::Utc;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Lines of output kept in the database and the report, each capped (see
/// [`crate::view::text::cap_lines`]) so a huge last line cannot push out the error before it.
const TAIL_LINES: usize = crate::view::text::TAIL_LINES;
const TAIL_BYTES: u64 = 256 * 1024;
/// How much of a test log is scanned for the summary line(s).
const TEST_SCAN_BYTES: u64 = 4 * 1024 * 1024;

/// What every workstream of a run shares.
#[derive(Debug)]
pub struct RunContext {
    pub run_id: String,
    pub repo: RepoPaths,
    pub base: String,
    pub logs_dir: PathBuf,
    pub agent_cmd: Option<String>,
    pub default_timeout: Duration,
    pub grace: Duration,
    pub prepare: PrepareOptions,
    /// The worker's name in a run several machines share: agent ids become `agent-K@NAME`.
    pub worker: Option<String>,
}

impl RunContext {
    /// The id of agent `k` as stored and given to commands (`WS_AGENT_ID`).
    pub fn agent_id(&self, k: usize) -> String {
        crate::model::worker_agent_name(k, self.worker.as_deref())
    }
}

/// The branch a workstream runs on.
pub fn branch_name(run_id: &str, ws_id: &str) -> String {
    format!("ws/{run_id}/{ws_id}")
}

/// Agent id as stored (`agent-1`).
pub fn agent_id(k: usize) -> String {
    crate::model::agent_name(k)
}

/// How one hand-over of a workstream to an agent ended.
#[derive(Debug)]
pub enum Executed {
    /// The workstream ran (or failed on its own account): its final result.
    Done(Box<WorkstreamResult>),
    /// The agent's worktree could not be made ready, for a reason of git-ws's own, even
    /// after repairs and retries: the workstream did not start and goes to another agent.
    NotStarted { ws: Box<Workstream>, error: String },
}

/// Run one workstream on agent `k` (1-based). Returns the slot (claimed now if `slot` was
/// None and claiming worked; `None` after the pool failed to prepare it) and how it ended.
/// Never panics on bad input; every failure of the workstream becomes an error on the
/// result, and every failure of the pool a [`Executed::NotStarted`].
pub async fn execute(
    ctx: Arc<RunContext>,
    k: usize,
    slot: Option<AgentSlot>,
    ws: Workstream,
    cancel: watch::Receiver<bool>,
) -> (Option<AgentSlot>, Executed) {
    let started = Instant::now();
    let mut r = WorkstreamResult::new(&ctx.run_id, &ctx.agent_id(k), &ws.id, Status::Failed);
    r.start_time = Some(Utc::now());
    r.title = ws.title.clone();
    r.source_file = Some(ws.file.clone());
    r.warnings.extend(ws.warnings.iter().cloned());
    r.base = Some(ctx.base.clone());
    let branch = branch_name(&ctx.run_id, &ws.id);
    r.branch = Some(branch.clone());
    if !git::valid_branch_name(&branch) {
        r.branch = None;
        r.errors.push(WsError::new(
            ErrorType::GitError,
            format!(
                "{}: the workstream id {:?} does not make a valid git branch name ({branch}); rename the id",
                ws.file, ws.id
            ),
        ));
        return done(r, started, slot);
    }

    // 1. The agent's worktree, on a fresh branch at the base.
    let (slot, prepared) = {
        let ctx = ctx.clone();
        let branch = branch.clone();
        tokio::task::spawn_blocking(move || {
            let mut slot = match slot {
                Some(s) => s,
                None => match git::claim_agent_slot(&ctx.repo, k, &ctx.base) {
                    Ok(s) => s,
                    Err(error) => {
                        return (
                            None,
                            Err(PrepareError {
                                error,
                                pool_fault: true,
                            }),
                        )
                    }
                },
            };
            let res = slot.prepare(&branch, &ctx.base, &ctx.prepare);
            (Some(slot), res)
        })
        .await
        .unwrap_or_else(|e| {
            (
                None,
                Err(PrepareError {
                    error: git::GitError(format!("git task panicked: {e}")),
                    pool_fault: true,
                }),
            )
        })
    };
    match prepared {
        Ok(()) => {}
        Err(e) if e.pool_fault => {
            // Let go of the slot: the next claim of it starts with a repair.
            drop(slot);
            return (
                None,
                Executed::NotStarted {
                    ws: Box::new(ws),
                    error: format!("failed to prepare branch {branch}: {e}"),
                },
            );
        }
        Err(e) => {
            r.errors.push(WsError::new(
                ErrorType::GitError,
                format!("failed to prepare branch {branch}: {e}"),
            ));
            return done(r, started, slot);
        }
    }
    let worktree = slot
        .as_ref()
        .map(|s| s.path.clone())
        .expect("prepared implies a slot");
    r.worktree = Some(worktree.display().to_string());

    // 2. The command.
    let log = ctx.logs_dir.join(format!("{}.log", ws.id));
    r.log_path = Some(log.display().to_string());
    let mut env = BTreeMap::new();
    env.insert("WS_RUN_ID".to_string(), ctx.run_id.clone());
    env.insert("WS_ID".to_string(), ws.id.clone());
    env.insert("WS_AGENT_ID".to_string(), ctx.agent_id(k));
    env.insert("WS_BASE".to_string(), ctx.base.clone());
    env.insert("WS_WORKTREE".to_string(), worktree.display().to_string());
    env.insert("WS_BRANCH".to_string(), branch.clone());
    if let Some(t) = &ws.title {
        env.insert("WS_TITLE".to_string(), t.clone());
    }
    let (argv, stdin) = match &ws.action {
        Action::Shell(c) => (vec!["sh".to_string(), "-c".to_string(), c.clone()], None),
        Action::Argv(a) => (a.clone(), None),
        Action::Prompt(p) => match &ctx.agent_cmd {
            Some(cmd) => {
                env.insert("WS_PROMPT".to_string(), p.clone());
                (
                    vec!["sh".to_string(), "-c".to_string(), cmd.clone()],
                    Some(p.clone()),
                )
            }
            None => {
                r.errors.push(WsError::new(
                    ErrorType::SpawnError,
                    format!(
                        "{} gives a \"prompt\" but no agent command is set: pass --agent-cmd or set git config ws.agentCommand",
                        ws.file
                    ),
                ));
                return done(r, started, slot);
            }
        },
    };
    env.extend(ws.env.clone());
    let timeout = ws.timeout.unwrap_or(ctx.default_timeout);
    let spec = Spec {
        argv,
        cwd: worktree.clone(),
        env: env.clone(),
        stdin,
        log: log.clone(),
        timeout,
        grace: ctx.grace,
        pgid_file: Some(ctx.logs_dir.join(format!("{}.pgid", ws.id))),
    };
    let t_cmd = Instant::now();
    let ending = process::run(&spec, cancel.clone()).await;
    r.command_seconds = Some(t_cmd.elapsed().as_secs_f64());
    r.exit_code = ending.exit_code();
    r.output_tail = Some(capped_tail(&log)).filter(|t| !t.is_empty());
    let trace = r.output_tail.clone().unwrap_or_default();
    match &ending {
        Ending::Exited { code: Some(0), .. } => {}
        Ending::Exited { code, signal } => {
            let how = match (code, signal) {
                (Some(c), _) => format!("exited with status {c}"),
                (None, Some(s)) => format!("was killed by signal {s}"),
                (None, None) => "ended abnormally".to_string(),
            };
            r.errors.push(
                WsError::new(ErrorType::CommandFailed, format!("command {how}"))
                    .with_trace(trace.clone()),
            );
        }
        Ending::TimedOut => r.errors.push(
            WsError::new(
                ErrorType::Timeout,
                format!("timed out after {}", human_duration(timeout)),
            )
            .with_trace(trace.clone()),
        ),
        Ending::Cancelled => r.errors.push(
            WsError::new(ErrorType::Cancelled, "cancelled: the run was interrupted")
                .with_trace(trace.clone()),
        ),
        Ending::SpawnFailed(m) => r
            .errors
            .push(WsError::new(ErrorType::SpawnError, m.clone())),
    }

    // 3. Its tests, only when the command succeeded.
    if let (true, Some(test)) = (ending.success(), &ws.test) {
        let test_log = ctx.logs_dir.join(format!("{}.test.log", ws.id));
        let spec = Spec {
            argv: vec!["sh".to_string(), "-c".to_string(), test.clone()],
            log: test_log.clone(),
            stdin: None,
            pgid_file: Some(ctx.logs_dir.join(format!("{}.test.pgid", ws.id))),
            ..spec.clone()
        };
        let t_test = Instant::now();
        let t_ending = process::run(&spec, cancel.clone()).await;
        r.test_seconds = Some(t_test.elapsed().as_secs_f64());
        let output = process::tail(&test_log, usize::MAX, TEST_SCAN_BYTES);
        let tr = testparse::test_results(test, t_ending.exit_code(), &output);
        if !tr.succeeded() {
            let tail = capped_tail(&test_log);
            let (etype, msg) = match &t_ending {
                Ending::TimedOut => (
                    ErrorType::Timeout,
                    format!("tests timed out after {}", human_duration(timeout)),
                ),
                Ending::Cancelled => (
                    ErrorType::Cancelled,
                    "tests cancelled: the run was interrupted".to_string(),
                ),
                Ending::SpawnFailed(m) => (ErrorType::SpawnError, m.clone()),
                Ending::Exited { code, .. } => (ErrorType::TestFailed, test_message(&tr, *code)),
            };
            r.errors.push(WsError::new(etype, msg).with_trace(tail));
        }
        r.test_results = Some(tr);
    }

    // 4. The truth, from git — also for failed work, so partial work is visible.
    let (slot, collected) = {
        let ctx = ctx.clone();
        let branch = branch.clone();
        let id = ws.id.clone();
        let mut slot = slot.expect("prepared implies a slot");
        tokio::task::spawn_blocking(move || {
            let c = slot.collect(&branch, &ctx.base, &id);
            (Some(slot), c)
        })
        .await
        .unwrap_or_else(|e| (None, Err(git::GitError(format!("git task panicked: {e}")))))
    };
    match collected {
        Ok(c) => {
            r.head = Some(c.head);
            r.commits = c.commits;
            r.files = c.files;
            r.warnings.extend(c.warnings);
        }
        Err(e) => r.errors.push(WsError::new(
            ErrorType::GitError,
            format!("failed to read the results of {branch}: {e}"),
        )),
    }
    done(r, started, slot)
}

/// The last lines of a log, each capped.
fn capped_tail(log: &std::path::Path) -> String {
    let t = process::tail(log, TAIL_LINES, TAIL_BYTES);
    crate::view::text::cap_lines(&t, TAIL_LINES, crate::view::text::TAIL_LINE_CHARS)
}

fn done(
    mut r: WorkstreamResult,
    started: Instant,
    slot: Option<AgentSlot>,
) -> (Option<AgentSlot>, Executed) {
    r.end_time = Some(Utc::now());
    r.duration_seconds = started.elapsed().as_secs_f64();
    r.status = if r.errors.is_empty() {
        Status::Completed
    } else {
        Status::Failed
    };
    (slot, Executed::Done(Box::new(r)))
}

fn test_message(tr: &TestResults, code: Option<i32>) -> String {
    let code = code.map_or("no exit code".to_string(), |c| format!("exit {c}"));
    match (tr.passed, tr.failed, tr.skipped) {
        (Some(p), Some(f), Some(s)) => {
            format!("tests failed: {f} failed, {p} passed, {s} skipped ({code})")
        }
        _ => format!("tests failed ({code})"),
    }
}

/// `90s`, `30m`, `1h30m`, `250ms`: [`crate::view::text::duration`].
pub fn human_duration(d: Duration) -> String {
    crate::view::text::duration(d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_flags() {
        assert_eq!(human_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(human_duration(Duration::from_secs(1800)), "30m");
        assert_eq!(human_duration(Duration::from_secs(3600 + 5)), "1h5s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn test_messages_carry_counts() {
        let tr = TestResults {
            command: "t".into(),
            exit_code: Some(1),
            passed: Some(3),
            failed: Some(2),
            skipped: Some(0),
            ..TestResults::default()
        };
        assert_eq!(
            test_message(&tr, Some(1)),
            "tests failed: 2 failed, 3 passed, 0 skipped (exit 1)"
        );
    }
}
