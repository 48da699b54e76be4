//! Executing one workstream on one agent, in named steps: choose who runs it
//! ([`choose_driver`]); then, once per attempt, claim and prepare the agent's worktree on a
//! fresh branch at the base ([`prepare`]), run the slot's setup command once per worktree
//! and base ([`setup_slot`]), run the command with what it spends metered and its tests
//! ([`run_attempt`]), and retry a transient failure after a backoff ([`retry_wait`]); then
//! read what it did from git ([`collect`]) and classify the result ([`done`]).

use crate::agent_io::{meter::Meter, setup};
use crate::agents::{self, retry, Driver};
use crate::git::{self, AgentSlot, PrepareError, PrepareOptions, RepoPaths};
use crate::layout::{Layout, RunLogs};
use crate::model::{Attempt, ErrorType, Status, TestResults, Usage, WorkstreamResult, WsError};
use crate::process::{self, Ending, Spec};
use crate::testparse;
use crate::workstream::{Action, Workstream};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Lines of output kept in the database and the report, each capped (see
/// [`crate::text::cap_lines`]) so a huge last line cannot push out the error before it.
const TAIL_LINES: usize = crate::text::TAIL_LINES;
const TAIL_BYTES: u64 = 256 * 1024;
/// How much of a test log is scanned for the summary line(s).
const TEST_SCAN_BYTES: u64 = 4 * 1024 * 1024;
/// How much of an attempt's output is searched for transient-failure messages.
const TRANSIENT_SCAN_BYTES: u64 = 256 * 1024;

/// What every workstream of a run shares.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub run_id: String,
    pub repo: RepoPaths,
    /// Where the pool's setup markers are.
    pub layout: Layout,
    pub base: String,
    /// The run's logs directory.
    pub logs: RunLogs,
    pub agent_cmd: Option<String>,
    pub default_timeout: Duration,
    pub grace: Duration,
    pub prepare: PrepareOptions,
    /// Presets, budgets, retries, ports, setup.
    pub agent_settings: agents::Settings,
    /// The worker's name in a run several machines share: agent ids become `agent-K@NAME`.
    pub worker: Option<String>,
    /// Branch → the commit it starts from instead of `base`: the follow-ups a review created
    /// start from the reviewed workstream's branch.
    pub start_points: std::collections::HashMap<String, String>,
    /// Workstream id → the branch holding its work when that is not `ws/<run>/<id>`: the
    /// completed dependencies a `--rerun-failed` does not run again, which the dependents
    /// it reruns stack on.
    pub dep_branches: std::collections::HashMap<String, String>,
}

impl RunContext {
    /// The commit `branch` starts from: its start point, else the run's base.
    pub fn start_of(&self, branch: &str) -> &str {
        self.start_points.get(branch).unwrap_or(&self.base)
    }

    /// The id of agent `k` as stored and given to commands (`WS_AGENT_ID`).
    pub fn agent_id(&self, k: usize) -> String {
        crate::model::worker_agent_name(k, self.worker.as_deref())
    }
}

/// The branch a workstream runs on. A review's follow-up `<id>~reviewN` runs on
/// `ws/<run>/<id>.reviewN` (`~` cannot be part of a branch name).
pub fn branch_name(run_id: &str, ws_id: &str) -> String {
    format!("ws/{run_id}/{}", ws_id.replace('~', "."))
}

/// How one hand-over of a workstream to an agent ended.
#[derive(Debug)]
pub enum Executed {
    /// The workstream ran (or failed on its own account): its final result.
    Done(Box<WorkstreamResult>),
    /// The agent's worktree could not be made ready, for a reason of git-ws's own, even
    /// after repairs and retries (or its setup command failed): the workstream did not
    /// start and goes to another agent.
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
    mut cancel: watch::Receiver<bool>,
) -> (Option<AgentSlot>, Executed) {
    let started = Instant::now();
    let mut r = new_result(&ctx, k, &ws);
    let Some(branch) = branch_of(&ctx, &ws, &mut r) else {
        return done(r, started, slot);
    };
    let driver = match choose_driver(&ctx, &ws) {
        Ok(x) => x,
        Err(message) => {
            r.errors.push(WsError::new(ErrorType::SpawnError, message));
            return done(r, started, slot);
        }
    };
    r.agent = Some(driver.label().to_string());
    let start = match start_commit(&ctx, &ws, &branch).await {
        Ok(s) => s,
        Err(message) => {
            r.errors
                .push(WsError::new(ErrorType::DependencyFailed, message));
            return done(r, started, slot);
        }
    };
    let log = ctx.logs.workstream(&ws.id);
    r.log_path = Some(log.display().to_string());
    let retries = ws.retries.unwrap_or(ctx.agent_settings.retries);

    // What the agent writes for itself stays off its branch (aider's `.aider*`).
    let own: &[&str] = driver.preset().map_or(&[], |p| p.own_files());
    let prompt = matches!(ws.action, Action::Prompt(_));
    let mut slot = slot;
    let mut spent: Option<Usage> = None;
    let mut waited = Duration::ZERO;
    let mut n: u32 = 0;
    let last = loop {
        n += 1;
        // 1. The agent's worktree, on a fresh branch at the base (again for each retry), and
        // the slot's setup command, once per worktree and base.
        let (s, env) = match ready_slot(
            &ctx,
            k,
            slot.take(),
            &ws,
            (&branch, &start),
            &cancel,
            &mut r,
        )
        .await
        {
            Ok(x) => x,
            Err(NoStart::HandOver(error)) => {
                return (
                    None,
                    Executed::NotStarted {
                        ws: Box::new(ws),
                        error,
                    },
                )
            }
            Err(NoStart::Failed(s, message)) => {
                r.errors.push(WsError::new(ErrorType::GitError, message));
                return done(r, started, s.map(|s| *s));
            }
        };
        slot = Some(s);

        // 2. The command and its tests.
        let earlier = agents::cost(spent.as_ref());
        let mut a = run_attempt(&ctx, &ws, &driver, &log, env, n, earlier, cancel.clone()).await;
        spent = agents::usage::add_attempt(spent.as_ref(), a.attempt.usage.as_ref());
        r.warnings.append(&mut a.warnings);
        // A usage limit is never retried here: the workstream is deferred (agents::limits).
        if let Some(e) = usage_limit(&driver, &a, &log) {
            a.attempt.outcome = e.error_type.to_string();
            a.errors.insert(0, e);
            break a;
        }

        // 3. Another attempt, if this one failed for a transient reason.
        let budget_left = ws
            .max_cost_usd
            .is_none_or(|max| agents::cost(spent.as_ref()) < max);
        let reason = (n <= retries && budget_left && !*cancel.borrow())
            .then(|| retry_reason(&ctx, &driver, &a, &log))
            .flatten();
        let Some(reason) = reason else { break a };
        let wait = retry::backoff(ctx.agent_settings.retry_backoff, n, retry::jitter());
        a.attempt.retry_reason = Some(reason.clone());
        a.attempt.backoff_seconds = Some(wait.as_secs_f64());
        r.attempts.push(a.attempt);
        process::log_note(
            &log,
            &format!(
                "\ngit-ws: attempt {n} failed ({reason}); attempt {} in {} from a clean branch",
                n + 1,
                human_duration(wait)
            ),
        );
        waited += wait;
        if !retry_wait(wait, &mut cancel).await {
            r.errors.push(WsError::new(
                ErrorType::Cancelled,
                format!("cancelled: the run was interrupted while waiting to retry ({reason})"),
            ));
            r.usage = spent;
            return collect(&ctx, r, started, slot, (&branch, &start), own, prompt).await;
        }
    };

    last.record_into(&mut r, waited);
    r.usage = spent;

    // 4. The truth, from git — also for failed work, so partial work is visible.
    collect(&ctx, r, started, slot, (&branch, &start), own, prompt).await
}

/// The workstream's branch `ws/<run>/<id>`, or `None` with the error on `r` when the id
/// does not make a valid branch name.
fn branch_of(ctx: &RunContext, ws: &Workstream, r: &mut WorkstreamResult) -> Option<String> {
    let branch = branch_name(&ctx.run_id, &ws.id);
    if !git::valid_branch_name(&branch) {
        r.errors.push(WsError::new(
            ErrorType::GitError,
            format!(
                "{}: the workstream id {:?} does not make a valid git branch name ({branch}); rename the id",
                ws.file, ws.id
            ),
        ));
        return None;
    }
    r.branch = Some(branch.clone());
    Some(branch)
}

/// The commit `branch` starts from: its start point (a review's follow-up), else, for a
/// workstream stacked on its dependencies (`depends_on` and `"stack"` not false), the
/// base with its dependencies' branches merged in ([`git::stack_start`]), else the base.
/// A conflict among the dependencies is the error.
async fn start_commit(
    ctx: &Arc<RunContext>,
    ws: &Workstream,
    branch: &str,
) -> Result<String, String> {
    if let Some(s) = ctx.start_points.get(branch) {
        return Ok(s.clone());
    }
    if !ws.stack || ws.depends_on.is_empty() {
        return Ok(ctx.base.clone());
    }
    let deps: Vec<(String, String)> = ws
        .depends_on
        .iter()
        .map(|d| {
            let own = branch_name(&ctx.run_id, d);
            let b = ctx.dep_branches.get(d).cloned().unwrap_or(own);
            (d.clone(), b)
        })
        .collect();
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || {
        git::stack_start(&ctx.repo, &ctx.run_id, &ctx.base, &deps).map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(format!("git task panicked: {e}")))
}

/// Why an attempt could not start.
enum NoStart {
    /// The pool's fault, or the slot's setup command's: another agent gets the workstream.
    HandOver(String),
    /// The workstream's own (its branch cannot be made): a failed result.
    Failed(Option<Box<AgentSlot>>, String),
}

/// Agent `k`'s worktree on a fresh `branch` at the base, its setup command run if it is
/// due, and the command's environment.
async fn ready_slot(
    ctx: &Arc<RunContext>,
    k: usize,
    slot: Option<AgentSlot>,
    ws: &Workstream,
    (branch, start): (&str, &str),
    cancel: &watch::Receiver<bool>,
    r: &mut WorkstreamResult,
) -> Result<(AgentSlot, BTreeMap<String, String>), NoStart> {
    let s = match prepare(ctx, k, slot, branch, start).await {
        Preparation::Ready(s) => s,
        Preparation::PoolFault(error) => return Err(NoStart::HandOver(error)),
        Preparation::Failed(s, message) => return Err(NoStart::Failed(s.map(Box::new), message)),
    };
    r.worktree = Some(s.path.display().to_string());
    let (name, path) = (slot_name(&s), s.path.clone());
    let env = command_env(ctx, k, ws, &name, &path, branch, &mut r.warnings);
    match setup_slot(ctx, &name, &path, &env, cancel.clone()).await {
        Ok(ran) => {
            if ran && ctx.prepare.keep_ignored.is_empty() {
                r.warnings.push(format!(
                    "ws.setupCommand ran in {name}, but git config ws.keepIgnored is empty: ignored files it installed are removed before the next workstream on this agent"
                ));
            }
            Ok((s, env))
        }
        // The slot's failure: let go of it (dropped here), and hand the workstream on.
        Err(error) => Err(NoStart::HandOver(error)),
    }
}

/// The result's identity and what is known before anything runs.
fn new_result(ctx: &RunContext, k: usize, ws: &Workstream) -> WorkstreamResult {
    let mut r = WorkstreamResult::new(&ctx.run_id, &ctx.agent_id(k), &ws.id, Status::Failed);
    r.start_time = Some(Utc::now());
    r.title = ws.title.clone();
    r.source_file = Some(ws.file.clone());
    r.warnings.extend(ws.warnings.iter().cloned());
    r.base = Some(ctx.base.clone());
    r
}

/// Who runs the workstream: its command; for a prompt, its own `agent`, else `--agent` /
/// `ws.agent`, else `--agent-cmd` / `ws.agentCommand`.
pub fn choose_driver(ctx: &RunContext, ws: &Workstream) -> Result<Driver, String> {
    match &ws.action {
        Action::Shell(_) | Action::Argv(_) => Ok(Driver::Command),
        Action::Prompt(_) => match (ws.agent, ctx.agent_settings.agent, &ctx.agent_cmd) {
            (Some(p), _, _) | (None, Some(p), _) => Ok(Driver::Preset(p)),
            (None, None, Some(cmd)) => Ok(Driver::AgentCmd(cmd.clone())),
            (None, None, None) => Err(format!(
                "{} gives a \"prompt\" but no agent is set: pass --agent NAME ({}) or --agent-cmd CMD, set git config ws.agent or ws.agentCommand, or give the workstream an \"agent\"",
                ws.file,
                agents::Preset::names()
            )),
        },
    }
}

/// How preparing the worktree went.
enum Preparation {
    Ready(AgentSlot),
    /// git-ws's own fault: the workstream goes to another agent (the sentence says why).
    PoolFault(String),
    /// The workstream's fault (its branch cannot be made).
    Failed(Option<AgentSlot>, String),
}

/// Claim agent `k`'s slot (when `slot` is None) and put a fresh `branch` at the base in its
/// worktree. A slot whose worktree was created by this claim forgets its setup.
async fn prepare(
    ctx: &Arc<RunContext>,
    k: usize,
    slot: Option<AgentSlot>,
    branch: &str,
    start: &str,
) -> Preparation {
    let claimed_now = slot.is_none();
    let (slot, prepared) = {
        let ctx = ctx.clone();
        let branch = branch.to_string();
        let start = start.to_string();
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
            let res = slot.prepare(&branch, &start, &ctx.prepare);
            (Some(slot), res)
        })
        .await
        .unwrap_or_else(|e| {
            (
                None,
                Err(PrepareError {
                    error: git::GitError::Other(format!("git task panicked: {e}")),
                    pool_fault: true,
                }),
            )
        })
    };
    match (prepared, slot) {
        (Ok(()), Some(s)) => {
            if claimed_now && s.created {
                setup::forget(&ctx.layout.setup_marker(&slot_name(&s)));
            }
            Preparation::Ready(s)
        }
        (Ok(()), None) => Preparation::PoolFault(format!(
            "failed to prepare branch {branch}: the worktree was lost"
        )),
        // Let go of the slot: the next claim of it starts with a repair.
        (Err(e), _) if e.pool_fault => {
            Preparation::PoolFault(format!("failed to prepare branch {branch}: {e}"))
        }
        (Err(e), s) => Preparation::Failed(s, format!("failed to prepare branch {branch}: {e}")),
    }
}

/// `agent-1`, `agent-1-2`: the slot's directory name.
fn slot_name(s: &AgentSlot) -> String {
    s.path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| s.name.clone())
}

/// The command's environment: `WS_*`, `WS_PORT` (the slot's block of ports), then the
/// workstream's own `env`.
fn command_env(
    ctx: &RunContext,
    k: usize,
    ws: &Workstream,
    slot: &str,
    worktree: &Path,
    branch: &str,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("WS_RUN_ID".to_string(), ctx.run_id.clone());
    env.insert("WS_ID".to_string(), ws.id.clone());
    env.insert("WS_AGENT_ID".to_string(), ctx.agent_id(k));
    env.insert("WS_BASE".to_string(), ctx.base.clone());
    env.insert("WS_WORKTREE".to_string(), worktree.display().to_string());
    env.insert("WS_BRANCH".to_string(), branch.to_string());
    if let Some(t) = &ws.title {
        env.insert("WS_TITLE".to_string(), t.clone());
    }
    match agents::ports::port_for_slot(ctx.agent_settings.port_base, slot) {
        Ok(p) => {
            env.insert("WS_PORT".to_string(), p.to_string());
        }
        Err(e) => warnings.push(format!("WS_PORT is not set: {e}")),
    }
    env.insert(
        "WS_METRICS".to_string(),
        ctx.logs.metrics(&ws.id).display().to_string(),
    );
    if let Action::Prompt(p) = &ws.action {
        env.insert("WS_PROMPT".to_string(), p.clone());
    }
    env.extend(ws.env.clone());
    env
}

/// Run `ws.setupCommand` in the slot if its worktree was created or its base changed since
/// the last successful setup. `Ok(true)` it ran; `Err` is the slot's failure.
async fn setup_slot(
    ctx: &RunContext,
    name: &str,
    worktree: &Path,
    env: &BTreeMap<String, String>,
    cancel: watch::Receiver<bool>,
) -> Result<bool, String> {
    let Some(command) = &ctx.agent_settings.setup_command else {
        return Ok(false);
    };
    let keep = [
        "WS_RUN_ID",
        "WS_AGENT_ID",
        "WS_BASE",
        "WS_WORKTREE",
        "WS_PORT",
    ];
    let s = setup::Setup {
        command: command.clone(),
        marker: ctx.layout.setup_marker(name),
        log: ctx.logs.setup(name),
        worktree: worktree.to_path_buf(),
        env: env
            .iter()
            .filter(|(k, _)| keep.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        timeout: ctx
            .agent_settings
            .setup_timeout
            .unwrap_or(ctx.default_timeout),
        grace: ctx.grace,
        slot: name.to_string(),
        procs_dir: Some(ctx.layout.procs_dir()),
    };
    setup::ensure(&s, &ctx.base, cancel).await
}

/// One attempt's outcome.
struct Outcome {
    attempt: Attempt,
    errors: Vec<WsError>,
    exit_code: Option<i32>,
    output_tail: Option<String>,
    command_seconds: f64,
    test_results: Option<TestResults>,
    test_seconds: Option<f64>,
    warnings: Vec<String>,
    /// Where this attempt's output starts in the log.
    log_offset: u64,
}

impl Outcome {
    /// The last attempt's outcome onto the result: its errors, exit code, output, tests,
    /// and the agent's time (every attempt's command and the waits between them).
    fn record_into(self, r: &mut WorkstreamResult, waited: Duration) {
        r.errors.extend(self.errors);
        r.exit_code = self.exit_code;
        r.output_tail = self.output_tail;
        r.command_seconds = Some(
            r.attempts.iter().map(|a| a.duration_seconds).sum::<f64>()
                + self.command_seconds
                + waited.as_secs_f64(),
        );
        r.test_seconds = self.test_seconds;
        r.test_results = self.test_results;
        r.attempts.push(self.attempt);
    }
}

/// The command (metered: usage read while it runs, stopped past `max_cost_usd`), then its
/// tests when it succeeded.
#[allow(clippy::too_many_arguments)]
async fn run_attempt(
    ctx: &RunContext,
    ws: &Workstream,
    driver: &Driver,
    log: &Path,
    env: BTreeMap<String, String>,
    n: u32,
    earlier_cost: f64,
    cancel: watch::Receiver<bool>,
) -> Outcome {
    let started_at: DateTime<Utc> = Utc::now();
    let t0 = Instant::now();
    let spec = attempt_spec(ctx, ws, driver, log, env, n, earlier_cost);
    let mut meter = Meter::new(
        log.to_path_buf(),
        driver.preset(),
        ctx.logs.metrics(&ws.id),
        earlier_cost,
        ws.max_cost_usd,
    );
    let log_offset = meter.start_offset();
    let ending = process::run_watched(&spec, cancel.clone(), Some(&mut meter)).await;
    meter.drain();
    let command_seconds = t0.elapsed().as_secs_f64();
    let output_tail = Some(capped_tail(log)).filter(|t| !t.is_empty());
    let trace = output_tail.clone().unwrap_or_default();
    let over_budget = meter.agent_over_budget();
    // What a preset agent's own output says went wrong (agents::failure): a failure behind
    // an exit 0, and the CLI's words for the message.
    let reported = driver.preset().and_then(|p| {
        agents::failure::reported(p, &read_from(log, log_offset, TRANSIENT_SCAN_BYTES))
    });
    let mut errors = command_errors(
        &ending,
        over_budget,
        reported.as_ref(),
        driver,
        ws,
        spec.timeout,
        &trace,
    );
    let passed = ending.success() && errors.is_empty();
    let (test_results, test_seconds) = match (passed, &ws.test) {
        (true, Some(test)) => {
            let (tr, secs, error) = run_tests(ctx, ws, test, &spec, spec.timeout, cancel).await;
            errors.extend(error);
            (Some(tr), Some(secs))
        }
        _ => (None, None),
    };
    let usage = meter.usage();
    let mut warnings = meter_warnings(&meter, usage.is_none(), driver, &ending, log);
    warnings.extend(crate::sandbox::denials(
        spec.sandbox.as_ref(),
        &read_from(log, log_offset, TRANSIENT_SCAN_BYTES),
    ));
    let outcome = errors
        .first()
        .map_or("completed".to_string(), |e| e.error_type.to_string());
    Outcome {
        attempt: Attempt {
            attempt: n,
            started_at: Some(started_at),
            duration_seconds: t0.elapsed().as_secs_f64(),
            outcome,
            exit_code: ending.exit_code(),
            retry_reason: None,
            backoff_seconds: None,
            usage,
        },
        errors,
        exit_code: ending.exit_code(),
        output_tail,
        command_seconds,
        test_results,
        test_seconds,
        warnings,
        log_offset,
    }
}

/// The attempt's command as the process supervisor takes it; its metrics file cleared and,
/// from the second attempt on, a line in the log saying which attempt follows.
fn attempt_spec(
    ctx: &RunContext,
    ws: &Workstream,
    driver: &Driver,
    log: &Path,
    env: BTreeMap<String, String>,
    n: u32,
    earlier_cost: f64,
) -> Spec {
    let _ = std::fs::remove_file(ctx.logs.metrics(&ws.id));
    if n > 1 {
        process::log_note(log, &format!("git-ws: attempt {n}"));
    }
    let remaining = ws.max_cost_usd.map(|m| (m - earlier_cost).max(0.0));
    let (argv, stdin) = command_line(ctx, ws, driver, remaining);
    // What the preset's CLI needs in its environment (agents::Preset::env), unless set.
    let mut env = env;
    if let Some(p) = driver.preset() {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        for (k, v) in p.env(root) {
            if std::env::var_os(k).is_none() {
                env.entry(k.to_string()).or_insert_with(|| v.to_string());
            }
        }
    }
    // A git identity, so that no agent writes one into the repository's shared config.
    let name = git::config::get_string(&ctx.repo, "user.name");
    let email = git::config::get_string(&ctx.repo, "user.email");
    let is_set = |k: &str| std::env::var_os(k).is_some() || env.contains_key(k);
    for (k, v) in agents::preset::identity_env(name.as_deref(), email.as_deref(), is_set) {
        env.insert(k, v);
    }
    let cwd = env.get("WS_WORKTREE").cloned().unwrap_or_default();
    Spec {
        sandbox: crate::sandbox::for_attempt(
            Path::new(&cwd),
            ws.sandbox,
            driver.preset(),
            env.get("WS_METRICS"),
        ),
        argv,
        cwd: PathBuf::from(&cwd),
        env,
        stdin,
        log: log.to_path_buf(),
        timeout: ws.timeout.unwrap_or(ctx.default_timeout),
        grace: ctx.grace,
        pgid_file: Some(ctx.logs.pgid(&ws.id)),
        procs_dir: Some(ctx.layout.procs_dir()),
    }
}

/// The errors of a command that ended so (none when it exited 0, unless the preset's own
/// output reported a failure), each with the output's tail as its trace. `over_budget`: the
/// agent stopped itself at its own budget flag; `reported`: what the agent's output said
/// went wrong (its words end the message). Pure.
fn command_errors(
    ending: &Ending,
    over_budget: bool,
    reported: Option<&agents::failure::Reported>,
    driver: &Driver,
    ws: &Workstream,
    timeout: Duration,
    trace: &str,
) -> Vec<WsError> {
    let error = match ending {
        Ending::Exited { code: Some(0), .. } => match reported.filter(|r| r.failed) {
            Some(r) => WsError::new(
                ErrorType::CommandFailed,
                format!("{} exited 0 but failed: {}", driver.label(), r.message),
            ),
            None => return Vec::new(),
        },
        Ending::Exited { code, .. } if over_budget => WsError::new(
            ErrorType::BudgetExceeded,
            format!(
                "{} stopped itself at its --max-budget-usd (max_cost_usd {}){}",
                driver.label(),
                agents::usd(ws.max_cost_usd.unwrap_or(0.0)),
                code.map(|c| format!(", exit {c}")).unwrap_or_default()
            ),
        ),
        Ending::Exited { code, signal } => {
            let how = match (code, signal) {
                (Some(c), _) => format!("exited with status {c}"),
                (None, Some(s)) => format!("was killed by signal {s}"),
                (None, None) => "ended abnormally".to_string(),
            };
            let said = reported.map(|r| format!(": {}", r.message));
            WsError::new(
                ErrorType::CommandFailed,
                format!("command {how}{}", said.unwrap_or_default()),
            )
        }
        Ending::TimedOut => WsError::new(
            ErrorType::Timeout,
            format!("timed out after {}", human_duration(timeout)),
        ),
        Ending::Cancelled => {
            WsError::new(ErrorType::Cancelled, "cancelled: the run was interrupted")
        }
        Ending::Stopped(reason) => WsError::new(ErrorType::BudgetExceeded, reason.clone()),
        // Nothing ran: no output to show.
        Ending::SpawnFailed(m) => return vec![WsError::new(ErrorType::SpawnError, m.clone())],
    };
    vec![error.with_trace(trace.to_string())]
}

/// What the meter warned about, and that a preset reported no usage although its command
/// succeeded (`no_usage`: the meter read none).
fn meter_warnings(
    meter: &Meter,
    no_usage: bool,
    driver: &Driver,
    ending: &Ending,
    log: &Path,
) -> Vec<String> {
    let mut warnings: Vec<String> = meter.warnings().to_vec();
    if no_usage && driver.preset().is_some() && ending.success() {
        warnings.push(format!(
            "{} reported no usage (no structured output in {})",
            driver.label(),
            log.display()
        ));
    }
    warnings
}

/// The argv and stdin of the command.
fn command_line(
    ctx: &RunContext,
    ws: &Workstream,
    driver: &Driver,
    max_budget_usd: Option<f64>,
) -> (Vec<String>, Option<String>) {
    let sh = |c: &str| vec!["sh".to_string(), "-c".to_string(), c.to_string()];
    match (&ws.action, driver) {
        (Action::Shell(c), _) => (sh(c), None),
        (Action::Argv(a), _) => (a.clone(), None),
        (Action::Prompt(p), Driver::Preset(preset)) => (
            preset.argv(p, &ctx.agent_settings.agent_args, max_budget_usd),
            None,
        ),
        (Action::Prompt(p), Driver::AgentCmd(cmd)) => (sh(cmd), Some(p.clone())),
        // Not chosen for a prompt (see `choose_driver`); fail clearly if it ever is.
        (Action::Prompt(_), Driver::Command) => (
            sh("echo 'git-ws: no agent runs this prompt' >&2; exit 127"),
            None,
        ),
    }
}

/// The workstream's `test` in the same worktree: its parsed results, how long it took, and
/// the error when it did not pass.
async fn run_tests(
    ctx: &RunContext,
    ws: &Workstream,
    test: &str,
    command: &Spec,
    timeout: Duration,
    cancel: watch::Receiver<bool>,
) -> (TestResults, f64, Option<WsError>) {
    let test_log = ctx.logs.test(&ws.id);
    let spec = Spec {
        argv: vec!["sh".to_string(), "-c".to_string(), test.to_string()],
        log: test_log.clone(),
        stdin: None,
        pgid_file: Some(ctx.logs.test_pgid(&ws.id)),
        ..command.clone()
    };
    let t = Instant::now();
    let ending = process::run(&spec, cancel).await;
    let secs = t.elapsed().as_secs_f64();
    let output = process::tail(&test_log, usize::MAX, TEST_SCAN_BYTES);
    let tr = testparse::test_results(test, ending.exit_code(), &output);
    let error = (!tr.succeeded()).then(|| {
        let (etype, msg) = match &ending {
            Ending::TimedOut => (
                ErrorType::Timeout,
                format!("tests timed out after {}", human_duration(timeout)),
            ),
            Ending::Cancelled => (
                ErrorType::Cancelled,
                "tests cancelled: the run was interrupted".to_string(),
            ),
            Ending::Stopped(r) => (ErrorType::BudgetExceeded, r.clone()),
            Ending::SpawnFailed(m) => (ErrorType::SpawnError, m.clone()),
            Ending::Exited { code, .. } => (ErrorType::TestFailed, test_message(&tr, *code)),
        };
        WsError::new(etype, msg).with_trace(capped_tail(&test_log))
    });
    (tr, secs, error)
}

/// Why the attempt should be retried, if it should (see [`retry::retry_reason`]).
fn retry_reason(ctx: &RunContext, driver: &Driver, a: &Outcome, log: &Path) -> Option<String> {
    let first = a.errors.first()?;
    let output = read_from(log, a.log_offset, TRANSIENT_SCAN_BYTES);
    retry::retry_reason(
        &retry::Failure {
            error_type: first.error_type,
            exit_code: a.exit_code,
            output: &output,
        },
        driver.preset(),
        &ctx.agent_settings.transient_patterns,
        ctx.agent_settings.retry_on,
    )
}

/// The usage limit a failed agent attempt's output reports, as the error that defers the
/// workstream (see [`agents::limits`]).
fn usage_limit(driver: &Driver, a: &Outcome, log: &Path) -> Option<WsError> {
    if a.errors.first()?.error_type != ErrorType::CommandFailed || *driver == Driver::Command {
        return None;
    }
    let output = read_from(log, a.log_offset, TRANSIENT_SCAN_BYTES);
    let local = *chrono::Local::now().offset();
    let limit = agents::limits::detect_local(&output, Utc::now(), local)?;
    Some(WsError::new(
        ErrorType::UsageLimit,
        agents::limits::deferral_message(driver.label(), &limit),
    ))
}

/// Wait `d` before the next attempt; false when the run was cancelled meanwhile.
async fn retry_wait(d: Duration, cancel: &mut watch::Receiver<bool>) -> bool {
    let sleep = tokio::time::sleep(d);
    tokio::pin!(sleep);
    loop {
        if *cancel.borrow() {
            return false;
        }
        tokio::select! {
            _ = &mut sleep => return !*cancel.borrow(),
            changed = cancel.changed() => {
                if changed.is_err() {
                    sleep.await;
                    return true;
                }
            }
        }
    }
}

/// Read the branch's commits and files from git, then finish the result.
async fn collect(
    ctx: &Arc<RunContext>,
    mut r: WorkstreamResult,
    started: Instant,
    slot: Option<AgentSlot>,
    (branch, start): (&str, &str),
    own_files: &[&str],
    prompt: bool,
) -> (Option<AgentSlot>, Executed) {
    let Some(mut slot) = slot else {
        return done(r, started, None);
    };
    slot.ignore_own_files(own_files);
    let (slot, collected) = {
        let branch = branch.to_string();
        let start = start.to_string();
        let id = r.workstream_id.clone();
        tokio::task::spawn_blocking(move || {
            let c = slot.collect(&branch, &start, &id);
            (Some(slot), c)
        })
        .await
        .unwrap_or_else(|e| {
            (
                None,
                Err(git::GitError::Other(format!("git task panicked: {e}"))),
            )
        })
    };
    match collected {
        Ok(c) => {
            r.head = Some(c.head);
            r.commits = c.commits;
            r.files = c.files;
            r.warnings.extend(c.warnings);
            // A prompt that ended well but changed nothing: warned, or failed on request.
            if prompt && r.errors.is_empty() && r.commits.is_empty() && r.files.is_empty() {
                match agents::no_changes(branch, ctx.agent_settings.require_changes) {
                    Ok(warning) => r.warnings.push(warning),
                    Err(error) => r.errors.push(error),
                }
            }
        }
        Err(e) => r.errors.push(WsError::new(
            ErrorType::GitError,
            format!("failed to read the results of {branch}: {e}"),
        )),
    }
    done(r, started, slot)
}

/// The last lines of a log, each capped.
fn capped_tail(log: &Path) -> String {
    let t = process::tail(log, TAIL_LINES, TAIL_BYTES);
    crate::text::cap_lines(&t, TAIL_LINES, crate::text::TAIL_LINE_CHARS)
}

/// At most the last `max` bytes of `path` from `offset` on, lossily decoded.
fn read_from(path: &Path, offset: u64, max: u64) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = offset.max(len.saturating_sub(max));
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(start)).is_ok() {
        let _ = f.take(max).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn done(
    mut r: WorkstreamResult,
    started: Instant,
    slot: Option<AgentSlot>,
) -> (Option<AgentSlot>, Executed) {
    r.end_time = Some(Utc::now());
    r.duration_seconds = started.elapsed().as_secs_f64();
    if let Some(log) = r.log_path.as_deref() {
        if crate::logcap::disk_full(Path::new(log)) {
            r.warnings.push(format!(
                "no space left on the disk under {log}: the log may be cut (the result is not)"
            ));
        }
    }
    r.status = if r.errors.is_empty() {
        Status::Completed
    } else if r
        .errors
        .iter()
        .any(|e| e.error_type == ErrorType::UsageLimit)
    {
        Status::Deferred
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

/// `90s`, `30m`, `1h30m`, `250ms`: [`crate::text::duration`].
pub fn human_duration(d: Duration) -> String {
    crate::text::duration(d.as_secs_f64())
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

    #[test]
    fn read_from_starts_at_the_offset_and_keeps_the_end() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l");
        std::fs::write(&p, "first attempt\nsecond attempt\n").unwrap();
        assert_eq!(read_from(&p, 14, 1000), "second attempt\n");
        assert_eq!(read_from(&p, 0, 7), "ttempt\n");
        assert_eq!(read_from(&d.path().join("none"), 0, 10), "");
    }
}
