//! The coordinator: resolves a run's options against the repository, dispatches workstreams
//! to N agent slots from a dependency-aware queue (NO STOP by default), records each result
//! as it finishes, then forecasts merges, consolidates, and writes the totals and the report.

mod dispatch;
pub mod events;
pub mod execute;
mod maintenance;
pub mod process;

pub use maintenance::{prune_branches, prune_worktrees, BranchPrune, PruneBranches};

use crate::consolidate::{self, Consolidated};
use crate::db::{ConsolidationDatabase, DbLocation, RunState};
use crate::error::{Error, EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK};
use crate::git::{self, PoolPolicy, PrepareOptions, RepoPaths};
use crate::model::{ErrorType, RunInfo, Status, WorkstreamResult};
use crate::plan::{self, Scheduler};
use crate::report::{self, ReportModel};
use crate::workstream::{self, Loaded, Workstream};
use chrono::Utc;
use dispatch::{Dispatch, Dispatched, ReadyWork, Recorder};
use events::{Event, NoObserver, Observer};
use execute::RunContext;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Default per-workstream time limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Default grace period between SIGTERM and SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// Default agent count.
pub const DEFAULT_AGENTS: usize = 3;
/// Database path relative to the main worktree root.
pub const DEFAULT_DB: &str = crate::db::DEFAULT_PATH;
/// Reports directory relative to the main worktree root.
pub const DEFAULT_REPORTS: &str = "reports";
/// How long an idle pool worktree is kept (git config `ws.worktreeExpiry`).
pub const DEFAULT_WORKTREE_EXPIRY: Duration = Duration::from_secs(14 * 86_400);

/// Which run to make.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RunMode {
    /// A new run of the selected workstreams.
    #[default]
    New,
    /// Finish an interrupted run: run only what has no final result.
    Resume(String),
    /// A new run of the workstreams that failed or were skipped in this run (`latest` works).
    RerunFailed(String),
}

/// Everything a run needs, as the library takes it. `None` fields fall back to git config
/// (`ws.agents`, `ws.agentCommand`, `ws.keepIgnored`, `ws.keepWorktrees`,
/// `ws.worktreeExpiry`) and then to the defaults.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Where to look for the repository.
    pub cwd: PathBuf,
    pub agents: Option<usize>,
    /// Relative paths are relative to `cwd`; default `workstreams/` at the repo root.
    pub workstreams_dir: Option<PathBuf>,
    /// Default `HEAD`.
    pub base: Option<String>,
    pub agent_cmd: Option<String>,
    pub timeout: Option<Duration>,
    pub grace: Option<Duration>,
    pub only: Vec<String>,
    pub mode: RunMode,
    pub fail_fast: bool,
    /// Keep this run's agent worktrees as the pool for the next run (the default), or
    /// remove them at the end (`Some(false)`, `--remove-worktrees`).
    pub keep_worktrees: Option<bool>,
    /// Idle pool worktrees older than this are removed at the start of the run; default
    /// git config `ws.worktreeExpiry`, else [`DEFAULT_WORKTREE_EXPIRY`].
    pub worktree_expiry: Option<Duration>,
    /// An SQLite path (relative to `cwd`) or a PostgreSQL URL; default env
    /// `GIT_WS_DATABASE_URL`, git config `ws.database`, else [`DEFAULT_DB`] at the repo root.
    pub db_path: Option<DbLocation>,
    /// Relative paths are relative to `cwd`; default [`DEFAULT_REPORTS`] at the repo root.
    pub reports_dir: Option<PathBuf>,
    /// Ignored top-level paths to keep between workstreams on an agent (build caches).
    pub keep_ignored: Option<Vec<String>>,
    /// `--agent`, `--budget`, `--retries` (the rest from git config: [`crate::agents`]).
    pub agent_options: crate::agents::Options,
}

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_id: String,
    pub consolidated: Consolidated,
    pub results: Vec<WorkstreamResult>,
    pub db_path: DbLocation,
    pub report_path: Option<PathBuf>,
    /// Why the report could not be written, if it could not.
    pub report_error: Option<String>,
    pub interrupted: bool,
    /// Problems that did not stop the run (database writes retried, cleanup failures).
    pub notes: Vec<String>,
}

impl RunOutcome {
    /// 0 all completed, 1 something failed or was skipped, 130 interrupted.
    pub fn exit_code(&self) -> i32 {
        if self.interrupted {
            EXIT_INTERRUPTED
        } else if self.consolidated.all_completed() {
            EXIT_OK
        } else {
            EXIT_FAILURES
        }
    }
}

/// A dry run's findings: every problem, and the plan.
#[derive(Debug, Clone)]
pub struct DryRun {
    pub repo_root: PathBuf,
    pub base: String,
    pub agents: usize,
    pub loaded: Loaded,
    pub plan: Vec<plan::PlannedStep>,
    /// Workstreams that would be skipped because a dependency is invalid.
    pub skips: Vec<plan::Skip>,
}

/// Settings resolved against the repository.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub repo: RepoPaths,
    pub agents: usize,
    pub workstreams_dir: PathBuf,
    pub base_rev: String,
    pub base: String,
    pub agent_cmd: Option<String>,
    pub timeout: Duration,
    pub grace: Duration,
    pub db_path: DbLocation,
    pub reports_dir: PathBuf,
    pub keep_ignored: Vec<String>,
    /// Keep the agent worktrees as the pool after the run.
    pub keep_worktrees: bool,
    pub pool: PoolPolicy,
    /// Presets, budgets, retries, ports, setup (flags and git config).
    pub agent_settings: crate::agents::Settings,
}

fn abs(cwd: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

/// Resolve options: find the repository, apply git config and defaults, check the base.
/// The repository is opened once and its config read once.
pub fn resolve(opts: &RunOptions) -> Result<Resolved, Error> {
    let handle = git::Repo::discover(&opts.cwd)?;
    let config = handle.config()?;
    let repo = handle.paths().clone();
    let agents = match opts.agents {
        Some(n) => n,
        None => match config.string("ws.agents") {
            Some(v) => v.trim().parse().map_err(|_| {
                Error::new(format!(
                    "git config ws.agents = {v:?} is not a whole number of agents"
                ))
            })?,
            None => DEFAULT_AGENTS,
        },
    };
    if agents == 0 {
        return Err(Error::new(
            "--agents must be at least 1 (got 0)".to_string(),
        ));
    }
    let base_rev = opts.base.clone().unwrap_or_else(|| "HEAD".to_string());
    let base = handle
        .resolve_commit(&base_rev)
        .map_err(|e| Error::new(format!("--base {base_rev}: {e}")))?;
    let agent_cmd = opts
        .agent_cmd
        .clone()
        .or_else(|| config.string("ws.agentCommand"))
        .filter(|c| !c.trim().is_empty());
    let keep_ignored = match &opts.keep_ignored {
        Some(k) => k.clone(),
        None => config
            .string("ws.keepIgnored")
            .map(|v| {
                v.split([',', ' '])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    };
    let keep_worktrees = match opts.keep_worktrees {
        Some(k) => k,
        None => config
            .bool("ws.keepWorktrees")
            .map_err(Error::new)?
            .unwrap_or(true),
    };
    let expiry = match opts.worktree_expiry {
        Some(d) => Some(d),
        None => match config.string("ws.worktreeExpiry") {
            Some(v) => parse_expiry(&v)
                .map_err(|e| Error::new(format!("git config ws.worktreeExpiry = {v:?}: {e}")))?,
            None => Some(DEFAULT_WORKTREE_EXPIRY),
        },
    };
    Ok(Resolved {
        agents,
        workstreams_dir: opts
            .workstreams_dir
            .as_deref()
            .map(|p| abs(&opts.cwd, p))
            .unwrap_or_else(|| repo.root.join("workstreams")),
        base_rev,
        base,
        agent_cmd,
        timeout: opts.timeout.unwrap_or(DEFAULT_TIMEOUT),
        grace: opts.grace.unwrap_or(DEFAULT_GRACE),
        db_path: crate::db::locate(opts.db_path.as_ref(), &opts.cwd, Some(&repo))?
            .unwrap_or_else(|| DbLocation::Sqlite(repo.root.join(DEFAULT_DB))),
        reports_dir: opts
            .reports_dir
            .as_deref()
            .map(|p| abs(&opts.cwd, p))
            .unwrap_or_else(|| repo.root.join(DEFAULT_REPORTS)),
        keep_ignored,
        keep_worktrees,
        pool: PoolPolicy { expiry },
        agent_settings: crate::agents::Settings::resolve(
            &opts.agent_options,
            opts.agent_cmd.is_some(),
            &config,
        )?,
        repo,
    })
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
    workstream::parse_duration(t)
        .map(Some)
        .map_err(|e| format!("{e}; or never"))
}

fn load(dir: &Path) -> Result<Loaded, Error> {
    if !dir.is_dir() {
        return Err(Error::new(format!(
            "failed to read workstreams: {} is not a directory (create it with one JSON file per workstream, or pass --workstreams DIR)",
            dir.display()
        )));
    }
    workstream::load_dir(dir).map_err(|e| {
        Error::new(format!(
            "failed to read workstreams directory {}: {e}",
            dir.display()
        ))
    })
}

fn select(loaded: Loaded, only: &[String]) -> Result<Loaded, Error> {
    if only.is_empty() {
        return Ok(loaded);
    }
    let (sel, unknown) = workstream::select_only(loaded, only);
    if !unknown.is_empty() {
        return Err(Error::new(format!(
            "--only: unknown workstream id(s): {}",
            unknown.join(", ")
        )));
    }
    Ok(sel)
}

/// Validate everything and compute the plan; touches neither the repository nor the
/// database (history is read only if the database already exists).
pub fn dry_run(opts: &RunOptions) -> Result<DryRun, Error> {
    let r = resolve(opts)?;
    let loaded = select(load(&r.workstreams_dir)?, &opts.only)?;
    let history = if r.db_path.exists() {
        ConsolidationDatabase::open_existing(&r.db_path)
            .and_then(|mut db| db.expected_durations())
            .unwrap_or_default()
    } else {
        HashMap::new()
    };
    let WorkPlan { jobs, fail_now, .. } = work_plan(&loaded, &[], &history);
    let mut sched = Scheduler::new(jobs.clone());
    let mut skips = Vec::new();
    for id in &fail_now {
        skips.extend(sched.finish(id, false));
    }
    let gone: HashSet<&str> = fail_now
        .iter()
        .map(String::as_str)
        .chain(skips.iter().map(|s| s.id.as_str()))
        .collect();
    let runnable: Vec<plan::Job> = jobs
        .into_iter()
        .filter(|j| !gone.contains(j.id.as_str()))
        .collect();
    let plan = plan::simulate(&runnable, r.agents);
    Ok(DryRun {
        repo_root: r.repo.root.clone(),
        base: r.base,
        agents: r.agents,
        loaded,
        plan,
        skips,
    })
}

/// Runs a configured run and returns the consolidated result (the seed's
/// `MultiAgentWorkstreamCoordinator`).
pub struct Coordinator {
    opts: RunOptions,
    observer: Box<dyn Observer>,
    cancel: Option<watch::Receiver<bool>>,
}

impl Coordinator {
    pub fn new(opts: RunOptions) -> Self {
        Coordinator {
            opts,
            observer: Box::new(NoObserver),
            cancel: None,
        }
    }

    /// Receive progress events.
    pub fn observer(mut self, o: Box<dyn Observer>) -> Self {
        self.observer = o;
        self
    }

    /// Wind the run down when this becomes `true` (Ctrl-C handling lives in the binary).
    pub fn cancel_on(mut self, rx: watch::Receiver<bool>) -> Self {
        self.cancel = Some(rx);
        self
    }

    /// Run to the end. Errors only when nothing could run (exit 2).
    pub async fn run(self) -> Result<RunOutcome, Error> {
        let Coordinator {
            opts,
            mut observer,
            cancel,
        } = self;
        let cancel = cancel.unwrap_or_else(|| {
            let (tx, rx) = watch::channel(false);
            std::mem::forget(tx);
            rx
        });
        let mut r = resolve(&opts)?;
        // Everything that can be checked without writing is checked before the database
        // is opened, so a bad invocation leaves no trace.
        let all = load(&r.workstreams_dir)?;
        let mut db = if opts.mode == RunMode::New {
            select(all.clone(), &opts.only)?;
            ConsolidationDatabase::open(&r.db_path)?
        } else {
            // Resume and rerun read an earlier run: never create a database for them.
            let mut db = ConsolidationDatabase::open_existing(&r.db_path)?;
            if let Some(why) = nothing_to_do_in(&mut db, &opts.mode, &all)? {
                return Err(Error::new(why));
            }
            db
        };
        hide_state_dir(&r.repo.root);

        // What to run, under which run id.
        let started_at = Utc::now();
        let (run_id, loaded, previous, info) = match &opts.mode {
            RunMode::New | RunMode::RerunFailed(_) => {
                let (only, rerun_of) = match &opts.mode {
                    RunMode::RerunFailed(spec) => {
                        let src = db.resolve_run_id(spec)?;
                        (not_completed(&mut db, &src)?, Some(src))
                    }
                    _ => (opts.only.clone(), None),
                };
                let loaded = if rerun_of.is_some() {
                    // Ids that no longer exist (or were invalid files) are simply not rerun.
                    let (sel, _unknown) = workstream::select_only(all, &only);
                    sel
                } else {
                    select(all, &only)?
                };
                let mut info = RunInfo {
                    run_id: format!("ma-run-{}", started_at.format("%Y%m%d-%H%M%S")),
                    started_at,
                    finished_at: None,
                    agents: r.agents,
                    base: r.base.clone(),
                    base_rev: r.base_rev.clone(),
                    repo_root: r.repo.root.display().to_string(),
                    rerun_of,
                };
                let run_id = db.begin_run_avoiding(&info, &run_id_taken(&r.repo))?;
                info.run_id = run_id.clone();
                (run_id, loaded, Vec::new(), info)
            }
            RunMode::Resume(spec) => {
                let run_id = db.resolve_run_id(spec)?;
                let mut info = db
                    .run_info(&run_id)?
                    .ok_or_else(|| Error::new(format!("--resume: no run {run_id}")))?;
                // The run's own settings, unless the user overrides the agent count.
                if opts.agents.is_none() {
                    r.agents = info.agents.max(1);
                }
                info.agents = r.agents;
                info.finished_at = None;
                r.base = info.base.clone();
                let previous = db.results(&run_id)?;
                // The workstreams the run was started with, if it said (else all of them).
                let loaded = match read_selection(&logs_dir_of(&r.repo.root, &run_id)) {
                    Some(ids) => workstream::select_only(all, &ids).0,
                    None => all,
                };
                (run_id, loaded, previous, info)
            }
        };
        let logs_dir = logs_dir_of(&r.repo.root, &run_id);
        let _ = std::fs::create_dir_all(&logs_dir);
        // Held for the whole run: tells a `--resume` that this run is alive.
        let run_lock = RunLock::try_acquire(&logs_dir.join(RUN_LOCK));
        let mut setup_notes = Vec::new();
        if let RunMode::Resume(_) = &opts.mode {
            match &run_lock {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(Error::new(format!(
                        "failed to resume {run_id}: another git ws-run is still running it (it holds {})",
                        logs_dir.join(RUN_LOCK).display()
                    )))
                }
                Err(e) => return Err(Error::new(format!("failed to resume {run_id}: {e}"))),
            }
            // Processes the dead coordinator left running would write into the worktrees.
            setup_notes.extend(process::reap_orphans(&logs_dir));
            db.set_run_state(&run_id, RunState::Running)?;
        } else {
            write_selection(&logs_dir, &loaded);
        }

        // The pool: idle worktrees past their expiry go; a crashed run's slots let go of
        // its branches (a resume then reuses them, caches and all).
        setup_notes.extend(sweep_pool(&r.repo, &r.pool).await);
        // A resume takes back the crashed run's worktrees now, so every one of them is
        // repaired and, at the end, reset to the base, whether or not an agent needs it.
        let initial_slots = if let RunMode::Resume(_) = &opts.mode {
            let (slots, notes) = take_back_slots(&r.repo, &r.base, r.agents).await;
            setup_notes.extend(notes);
            slots
        } else {
            Vec::new()
        };

        let db = Arc::new(Mutex::new(db));
        let mut rec = Recorder {
            db: db.clone(),
            results: Vec::new(),
            notes: setup_notes,
        };

        let history = {
            let mut g = db.lock().unwrap_or_else(|p| p.into_inner());
            g.expected_durations().unwrap_or_default()
        };
        let WorkPlan {
            done,
            to_run,
            jobs,
            fail_now,
            total,
        } = work_plan(&loaded, &previous, &history);
        let kept = previous;
        observer.event(Event::RunStarted {
            run_id: &run_id,
            total,
            agents: r.agents,
            jobs: &jobs,
        });
        for w in &loaded.warnings {
            observer.event(Event::Note(w));
        }

        let mut work = ReadyWork::new(Scheduler::new(jobs));
        let ctx = Arc::new(RunContext {
            run_id: run_id.clone(),
            repo: r.repo.clone(),
            base: r.base.clone(),
            logs_dir,
            agent_cmd: r.agent_cmd.clone(),
            default_timeout: r.timeout,
            grace: r.grace,
            prepare: PrepareOptions {
                keep_ignored: r.keep_ignored.clone(),
            },
            agent_settings: r.agent_settings.clone(),
        });
        let dispatch = Dispatch::new(ctx, &loaded, to_run, r.agents, opts.fail_fast);
        dispatch.settle_known_failures(&mut work, &fail_now, &done, &mut rec, observer.as_mut());
        let Dispatched { slots, interrupted } = dispatch
            .run(work, initial_slots, &mut rec, observer.as_mut(), cancel)
            .await;

        // Consolidate everything the run has (including earlier results on resume).
        observer.event(Event::Consolidating);
        let outcome = finalise(Finalise {
            r,
            info,
            kept,
            rec,
            slots,
            interrupted,
        })
        .await;
        let mut outcome = outcome;
        outcome
            .notes
            .extend(crate::agents::notify::after_run(&outcome).await);
        for n in &outcome.notes {
            observer.event(Event::Note(n));
        }
        Ok(outcome)
    }
}

/// Everything the last phase of a run needs.
struct Finalise {
    r: Resolved,
    info: RunInfo,
    /// Final results of an earlier attempt of this run (resume).
    kept: Vec<WorkstreamResult>,
    rec: Recorder,
    slots: Vec<git::AgentSlot>,
    interrupted: bool,
}

/// Merge forecast, consolidation, the run's totals, the report, and letting go of the agent
/// worktrees (kept as the pool, or removed). Problems here never lose a result: they become
/// notes on the outcome.
async fn finalise(f: Finalise) -> RunOutcome {
    let Finalise {
        r,
        mut info,
        kept,
        mut rec,
        slots,
        interrupted,
    } = f;
    let run_id = info.run_id.clone();
    info.finished_at = Some(Utc::now());
    // The agent worktrees, meanwhile: reset to the base and kept as the pool, or removed
    // (branches stay either way). Nothing below moves a branch.
    let releasing = tokio::spawn(let_go_of_slots(
        slots,
        r.base.clone(),
        r.keep_worktrees,
        r.keep_ignored.clone(),
    ));
    let fresh: HashSet<String> = rec
        .results
        .iter()
        .map(|x| x.workstream_id.clone())
        .collect();
    let mut all = kept;
    all.retain(|x| !fresh.contains(&x.workstream_id));
    all.extend(rec.results.iter().cloned());
    all.sort_by(consolidate::result_order);

    let forecast = {
        let mut completed: Vec<&WorkstreamResult> = all
            .iter()
            .filter(|x| x.status == Status::Completed && !x.files.is_empty())
            .collect();
        completed.sort_by_key(|x| x.end_time);
        let branches: Vec<(String, String)> = completed
            .iter()
            .filter_map(|x| Some((x.workstream_id.clone(), x.branch.clone()?)))
            .collect();
        let (repo, base) = (r.repo.clone(), r.base.clone());
        let res = tokio::task::spawn_blocking(move || git::merge_forecast(&repo, &base, &branches))
            .await
            .map_err(|e| git::GitError(e.to_string()));
        match res {
            Ok(Ok(f)) => f,
            Ok(Err(e)) | Err(e) => {
                rec.notes.push(format!("failed to forecast merges: {e}"));
                Default::default()
            }
        }
    };
    let mut consolidated = consolidate::consolidate(&info, &all, forecast);
    consolidated.notes = rec.notes.clone();
    let state = if interrupted {
        RunState::Interrupted
    } else {
        RunState::Finished
    };
    let (report_path, report_error) = write_report(&r.reports_dir, &consolidated, &all);
    match releasing.await {
        Ok(notes) => rec.notes.extend(notes),
        Err(e) => rec
            .notes
            .push(format!("failed to let go of the agent worktrees: {e}")),
    }
    // Last: the state says `finished` only once everything above is done, so a crash at
    // any earlier instant leaves a run that `--resume` finishes.
    let written = {
        let mut g = rec.db.lock().unwrap_or_else(|p| p.into_inner());
        g.finish_run(&consolidated, state)
    };
    if let Err(e) = written {
        rec.notes.push(format!(
            "failed to write the run totals to the database: {e}"
        ));
    }
    RunOutcome {
        run_id,
        consolidated,
        results: all,
        db_path: r.db_path,
        report_path,
        report_error,
        interrupted,
        notes: rec.notes,
    }
}

/// What a run (or a resumed run) executes. Pure.
struct WorkPlan {
    /// Final results an earlier attempt of this run already has: kept, not rerun.
    done: HashMap<String, Status>,
    /// The valid workstreams to execute.
    to_run: Vec<Workstream>,
    /// Scheduler jobs: `to_run` plus the `fail_now` ones.
    jobs: Vec<plan::Job>,
    /// Invalid files that carry an id, and final failures of an earlier attempt: jobs that
    /// fail at once so their dependents are skipped with the reason.
    fail_now: Vec<String>,
    /// How many results this attempt will record.
    total: usize,
}

fn work_plan(
    loaded: &Loaded,
    previous: &[WorkstreamResult],
    history: &HashMap<String, f64>,
) -> WorkPlan {
    let done: HashMap<String, Status> = previous
        .iter()
        .filter(|x| is_final(x))
        .map(|x| (x.workstream_id.clone(), x.status))
        .collect();
    let to_run: Vec<Workstream> = loaded
        .valid
        .iter()
        .filter(|w| !done.contains_key(&w.id))
        .cloned()
        .collect();
    let mut jobs = plan::jobs_from(&to_run, history);
    let mut fail_now: Vec<String> = loaded
        .invalid
        .iter()
        .filter_map(|inv| inv.id.clone())
        .filter(|id| !done.contains_key(id))
        .chain(
            done.iter()
                .filter(|(_, st)| **st != Status::Completed)
                .map(|(id, _)| id.clone()),
        )
        .collect();
    fail_now.sort();
    fail_now.dedup();
    jobs.extend(fail_now.iter().map(|id| plan::Job {
        id: id.clone(),
        depends_on: vec![],
        expected_secs: None,
    }));
    let total = to_run.len()
        + loaded
            .invalid
            .iter()
            .filter(|i| !done.contains_key(i.id.as_ref().unwrap_or(&i.file)))
            .count();
    WorkPlan {
        done,
        to_run,
        jobs,
        fail_now,
        total,
    }
}

/// Whether a recorded result is final, so `--resume` keeps it: the workstream ran to an
/// end of its own (completed, or failed). Not final: anything stopped or never started
/// because the run was interrupted (`Cancelled`), and skips, which are decided again from
/// the final results of their dependencies.
pub fn is_final(r: &WorkstreamResult) -> bool {
    r.status != Status::Skipped
        && !r
            .errors
            .iter()
            .any(|e| e.error_type == ErrorType::Cancelled)
}

/// The workstreams of a run that did not complete (what `--rerun-failed` runs again).
fn not_completed(db: &mut ConsolidationDatabase, run_id: &str) -> Result<Vec<String>, Error> {
    Ok(db
        .results(run_id)?
        .into_iter()
        .filter(|x| x.status != Status::Completed)
        .map(|x| x.workstream_id)
        .collect())
}

/// Why `--resume`/`--rerun-failed` have nothing to do, if they have not.
fn nothing_to_do_in(
    db: &mut ConsolidationDatabase,
    mode: &RunMode,
    all: &Loaded,
) -> Result<Option<String>, Error> {
    match mode {
        RunMode::New => Ok(None),
        RunMode::RerunFailed(spec) => {
            let src = db.resolve_run_id(spec)?;
            let ids = not_completed(db, &src)?;
            if ids.is_empty() {
                return Ok(Some(format!(
                    "nothing to rerun: every workstream of {src} completed"
                )));
            }
            let (sel, _) = workstream::select_only(all.clone(), &ids);
            Ok((sel.valid.is_empty() && sel.invalid.is_empty()).then(|| {
                format!(
                    "nothing to rerun: the workstreams that did not complete in {src} ({}) are no longer in the workstreams directory",
                    ids.join(", ")
                )
            }))
        }
        RunMode::Resume(spec) => {
            let run_id = db.resolve_run_id(spec)?;
            let finished = db
                .get_run_summary(&run_id)?
                .is_some_and(|s| s.state == RunState::Finished);
            Ok(finished.then(|| {
                format!(
                    "nothing to resume: {run_id} finished (git ws-run --rerun-failed {run_id} runs its failed and skipped workstreams again)"
                )
            }))
        }
    }
}

/// For `--resume` and `--rerun-failed`: `Some(why)` when there is nothing to do (the
/// command line then says why and exits 0 without starting a run). `Coordinator::run`
/// returns the same sentence as an error.
pub fn nothing_to_do(opts: &RunOptions) -> Result<Option<String>, Error> {
    if opts.mode == RunMode::New {
        return Ok(None);
    }
    let r = resolve(opts)?;
    let all = load(&r.workstreams_dir)?;
    let mut db = ConsolidationDatabase::open_existing(&r.db_path)?;
    nothing_to_do_in(&mut db, &opts.mode, &all)
}

/// Sweep the pool before a run (see [`git::sweep_pool`]); returns a note per thing done.
async fn sweep_pool(repo: &RepoPaths, policy: &PoolPolicy) -> Vec<String> {
    let (repo, policy) = (repo.clone(), policy.clone());
    match tokio::task::spawn_blocking(move || git::sweep_pool(&repo, &policy)).await {
        Ok(s) => s
            .removed
            .into_iter()
            .chain(s.repaired)
            .chain(s.failures)
            .collect(),
        Err(e) => vec![format!("failed to sweep the agent worktree pool: {e}")],
    }
}

/// Claim the existing pool slots `agent-1..=agents` (see [`git::claim_existing_slot`]).
async fn take_back_slots(
    repo: &RepoPaths,
    base: &str,
    agents: usize,
) -> (Vec<git::AgentSlot>, Vec<String>) {
    let (repo, base) = (repo.clone(), base.to_string());
    let res = tokio::task::spawn_blocking(move || {
        let mut slots = Vec::new();
        let mut notes = Vec::new();
        for k in 1..=agents {
            match git::claim_existing_slot(&repo, k, &base) {
                Ok(Some(mut s)) => {
                    notes.extend(s.repairs.drain(..).map(|r| format!("agent-{k}: {r}")));
                    slots.push(s);
                }
                Ok(None) => {}
                Err(e) => notes.push(format!("failed to take back agent worktree {k}: {e}")),
            }
        }
        (slots, notes)
    })
    .await;
    res.unwrap_or_else(|e| {
        (
            Vec::new(),
            vec![format!("failed to take back the agent worktrees: {e}")],
        )
    })
}

/// At the end of a run, every agent at once: reset its worktree to the base and keep it as
/// the pool, or remove it (`keep` false, and always for overflow slots, so the pool stays
/// at the largest `--agents` used). Returns a note per failure.
async fn let_go_of_slots(
    slots: Vec<git::AgentSlot>,
    base: String,
    keep: bool,
    keep_ignored: Vec<String>,
) -> Vec<String> {
    let mut tasks = tokio::task::JoinSet::new();
    for slot in slots {
        let base = base.clone();
        let opts = PrepareOptions {
            keep_ignored: keep_ignored.clone(),
        };
        tasks.spawn_blocking(move || {
            let name = slot.name.clone();
            let res = if keep && !slot.overflow {
                slot.release(&base, &opts)
            } else {
                slot.remove()
            };
            res.err()
                .map(|e| format!("failed to let go of agent worktree {name}: {e}"))
        });
    }
    let mut notes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Some(note)) => notes.push(note),
            Ok(None) => {}
            Err(e) => notes.push(format!("failed to let go of an agent worktree: {e}")),
        }
    }
    notes
}

/// Whether a run id is already in use in this repository by a run another database
/// recorded: its logs directory exists or it has `ws/<id>/…` branches.
fn run_id_taken(repo: &RepoPaths) -> impl Fn(&str) -> bool + '_ {
    let with_branches: HashSet<String> = git::Repo::open(repo)
        .and_then(|h| h.ws_branches())
        .map(|b| b.into_iter().map(|b| b.run_id).collect())
        .unwrap_or_default();
    move |id: &str| with_branches.contains(id) || logs_dir_of(&repo.root, id).exists()
}

/// `.state/logs/<run-id>`: the run's logs, its lock and the list of its workstreams.
fn logs_dir_of(root: &Path, run_id: &str) -> PathBuf {
    root.join(".state").join("logs").join(run_id)
}

/// Lock file in a run's logs directory, held by the coordinator running it.
const RUN_LOCK: &str = "run.lock";
/// The ids a run was started with, so `--resume` runs the same selection.
const SELECTION_FILE: &str = "workstreams.json";

fn write_selection(logs_dir: &Path, loaded: &Loaded) {
    let ids: Vec<&str> = loaded
        .valid
        .iter()
        .map(|w| w.id.as_str())
        .chain(loaded.invalid.iter().filter_map(|i| i.id.as_deref()))
        .collect();
    if let Ok(text) = serde_json::to_string(&ids) {
        let _ = std::fs::write(logs_dir.join(SELECTION_FILE), text);
    }
}

fn read_selection(logs_dir: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(logs_dir.join(SELECTION_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// An exclusive lock on a run's lock file, released when dropped or when the process dies
/// (even by SIGKILL).
struct RunLock(#[allow(dead_code)] std::fs::File);

impl RunLock {
    /// `Ok(None)` when another process holds it.
    fn try_acquire(path: &Path) -> Result<Option<RunLock>, String> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| format!("failed to open the run lock {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(RunLock(file))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(format!("failed to lock {}: {e}", path.display()))
            }
        }
    }
}

/// Whether a live `git ws-run` holds run `run_id` (its lock file is locked). A run with
/// no lock file (never started here, or its logs removed) is not live.
pub(crate) fn run_is_live(root: &Path, run_id: &str) -> bool {
    let path = logs_dir_of(root, run_id).join(RUN_LOCK);
    path.is_file() && matches!(RunLock::try_acquire(&path), Ok(None))
}

/// The report's path for a run.
pub fn report_path(reports_dir: &Path, run_id: &str) -> PathBuf {
    reports_dir.join(format!("multi_agent_consolidated_{run_id}.md"))
}

fn write_report(
    dir: &Path,
    c: &Consolidated,
    results: &[WorkstreamResult],
) -> (Option<PathBuf>, Option<String>) {
    let text = report::render_markdown(&ReportModel {
        consolidated: c,
        results,
    });
    let path = report_path(dir, &c.run.run_id);
    let res = std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&path, text));
    match res {
        Ok(()) => (Some(path), None),
        Err(e) => (
            None,
            Some(format!(
                "failed to write the report {}: {e}",
                path.display()
            )),
        ),
    }
}

/// Keep `.state/` out of `git status` without touching the user's `.gitignore`.
fn hide_state_dir(root: &Path) {
    let state = root.join(".state");
    let gi = state.join(".gitignore");
    if !gi.exists() && std::fs::create_dir_all(&state).is_ok() {
        let _ = std::fs::write(
            gi,
            "# written by git-ws: run state, logs and the database\n*\n",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::WsError;

    fn result(status: Status, error: Option<ErrorType>) -> WorkstreamResult {
        let mut r = WorkstreamResult::new("run", "agent-1", "w", status);
        if let Some(t) = error {
            r.errors.push(WsError::new(t, "why"));
        }
        r
    }

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
    fn only_results_that_ran_to_their_own_end_are_final() {
        assert!(is_final(&result(Status::Completed, None)));
        assert!(is_final(&result(
            Status::Failed,
            Some(ErrorType::CommandFailed)
        )));
        assert!(is_final(&result(Status::Failed, Some(ErrorType::Timeout))));
        assert!(is_final(&result(
            Status::Failed,
            Some(ErrorType::InvalidWorkstream)
        )));
        assert!(!is_final(&result(
            Status::Failed,
            Some(ErrorType::Cancelled)
        )));
        assert!(!is_final(&result(
            Status::Skipped,
            Some(ErrorType::Cancelled)
        )));
        assert!(!is_final(&result(
            Status::Skipped,
            Some(ErrorType::DependencyFailed)
        )));
    }
}
