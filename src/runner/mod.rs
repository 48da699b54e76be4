//! The coordinator: resolves a run's options against the repository, dispatches workstreams
//! to N agent slots from a source of ready work (NO STOP by default), records each result
//! as it finishes, then forecasts merges, consolidates, and writes the totals and the report.
//! A run is local (the in-memory scheduler, [`dispatch::LocalWork`]) or shared by several
//! processes through a database queue and a git remote ([`queue`]): one dispatch loop for
//! both.

mod dispatch;
pub mod events;
pub mod execute;
mod finish;
pub mod lease;
mod maintenance;
pub mod process;
mod queue;
pub mod record;

pub use finish::{make_reports_dir, report_path, REPORTS_GITIGNORE};
pub use maintenance::{prune_branches, prune_worktrees, BranchPrune, PruneBranches};

use crate::consolidate::Consolidated;
use crate::db::{ConsolidationDatabase, DbLocation, RunState};
use crate::error::{Error, EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK};
use crate::git::{self, PoolPolicy, PrepareOptions, RepoPaths};
use crate::model::{ErrorType, RunInfo, Status, WorkstreamResult};
use crate::plan::{self, Scheduler};
use crate::workstream::{self, Loaded, Workstream};
use chrono::Utc;
use dispatch::{Dispatch, Dispatched, LocalWork};
use events::{Event, NoObserver, Observer, Tee};
use execute::RunContext;
use record::{Db, Recorder};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
    /// Work on a run shared through the database and a git remote (`latest`: the most
    /// recent shared run still open; waits for one to be started if there is none).
    Join(String),
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
    /// Share the run through this git remote (and the database): a new run is put in a
    /// queue other clones can `--join`; a joining worker pushes its branches there.
    /// Needed by [`RunMode::Join`].
    pub remote: Option<String>,
    /// This process's name in a shared run (agent ids `agent-K@NAME`); default
    /// `HOSTNAME-PID`.
    pub worker: Option<String>,
    /// How long a claim of a shared run lasts without a heartbeat; default git config
    /// `ws.lease`, else [`lease::DEFAULT_LEASE`]. The run's coordinator decides it for every
    /// worker.
    pub lease: Option<Duration>,
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
    /// For a process that worked on a shared run: what it did there.
    pub shared: Option<SharedOutcome>,
}

/// What one process (coordinator or joining worker) did in a shared run.
#[derive(Debug, Clone, Default)]
pub struct SharedOutcome {
    /// Its worker name.
    pub worker: String,
    /// The results it recorded (accepted as final).
    pub ran: Vec<WorkstreamResult>,
    /// Workstreams it gave back to the queue (Ctrl-C, or a lost lease).
    pub returned: Vec<String>,
    /// Late results of its own the database refused (another worker had taken over).
    pub rejected: Vec<String>,
    /// Whether this process did the run's one consolidation.
    pub consolidated_here: bool,
    /// Whether the run was consolidated when this process ended (then `consolidated` and
    /// `results` are the whole run's; otherwise what the database had so far).
    pub run_finished: bool,
}

impl RunOutcome {
    /// 0 all completed, 1 something failed or was skipped, 130 interrupted. A worker that
    /// left a shared run before it finished answers for the workstreams it ran.
    pub fn exit_code(&self) -> i32 {
        let all_completed = match &self.shared {
            Some(s) if !s.run_finished => s.ran.iter().all(|r| r.status == Status::Completed),
            _ => self.consolidated.all_completed(),
        };
        if self.interrupted {
            EXIT_INTERRUPTED
        } else if all_completed {
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
    /// Whether `--agents` was given (a resume keeps the run's own count otherwise).
    pub agents_given: bool,
    /// How a shared run is reached, when it is one (`--remote`, `--join`).
    pub shared: Option<lease::Shared>,
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
        db_path: crate::workspace::locate_db(opts.db_path.as_ref(), &opts.cwd, Some(&repo))?
            .unwrap_or_else(|| DbLocation::Sqlite(repo.root.join(DEFAULT_DB))),
        reports_dir: opts
            .reports_dir
            .as_deref()
            .map(|p| abs(&opts.cwd, p))
            .unwrap_or_else(|| repo.root.join(DEFAULT_REPORTS)),
        keep_ignored,
        keep_worktrees,
        pool: PoolPolicy { expiry },
        agents_given: opts.agents.is_some(),
        shared: lease::resolve_shared(opts, &config, &repo)?,
        agent_settings: crate::agent_io::resolve_settings(
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
/// `MultiAgentWorkstreamCoordinator`): [`Coordinator::prepare`] resolves the settings,
/// loads the workstreams, opens the database and plans; [`Prepared::execute`] runs it.
/// [`Coordinator::run`] does both.
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

    /// Everything that can be decided before a run starts, once: resolve the options
    /// against the repository and git config, read and validate the workstreams, open the
    /// database (creating it only for a new run), read the history and decide what runs.
    /// Nothing is written to the repository and no run is started; an error here means
    /// nothing ran (exit 2). [`Prepared::nothing_to_do`] says when a resume or rerun has
    /// nothing to do.
    pub fn prepare(self) -> Result<Prepared, Error> {
        let Coordinator {
            opts,
            observer,
            cancel,
        } = self;
        let cancel = cancel.unwrap_or_else(|| {
            let (tx, rx) = watch::channel(false);
            std::mem::forget(tx);
            rx
        });
        let r = resolve(&opts)?;
        let (db, start, nothing) = prepare_start(&opts, &r)?;
        Ok(Prepared {
            opts,
            r,
            db,
            start,
            nothing,
            observer,
            cancel,
        })
    }

    /// Prepare, then execute. Errors only when nothing could run (exit 2), including "nothing
    /// to resume/rerun".
    pub async fn run(self) -> Result<RunOutcome, Error> {
        self.prepare()?.execute().await
    }
}

/// What a prepared run starts from.
enum Start {
    /// A new run of `loaded` (`rerun_of`: the run whose failures it runs again).
    New {
        loaded: Loaded,
        rerun_of: Option<String>,
    },
    /// Finish run `run_id`: `previous` holds what it recorded.
    Resume {
        run_id: String,
        info: RunInfo,
        previous: Vec<WorkstreamResult>,
        loaded: Loaded,
    },
    /// Work on a shared run (`latest`: the most recent open one, waiting for one if need be).
    Join { spec: String },
}

/// A run resolved, loaded and planned, ready to [`execute`](Prepared::execute).
pub struct Prepared {
    opts: RunOptions,
    r: Resolved,
    db: ConsolidationDatabase,
    start: Start,
    nothing: Option<String>,
    observer: Box<dyn Observer>,
    cancel: watch::Receiver<bool>,
}

impl Prepared {
    /// The settings resolved against the repository.
    pub fn resolved(&self) -> &Resolved {
        &self.r
    }

    /// `Some(why)` when a resume or rerun has nothing to do (the command line says why and
    /// exits 0; [`execute`](Prepared::execute) returns the sentence as an error).
    pub fn nothing_to_do(&self) -> Option<&str> {
        self.nothing.as_deref()
    }

    /// Run it: locally, as the coordinator of a run shared through `--remote`, or as a
    /// worker joining one.
    pub async fn execute(self) -> Result<RunOutcome, Error> {
        if let Some(why) = self.nothing {
            return Err(Error::new(why));
        }
        match (&self.start, &self.r.shared) {
            (Start::Join { .. }, _) => queue::join(self).await,
            (Start::New { .. }, Some(_)) => queue::coordinate(self).await,
            _ => self.run_local().await,
        }
    }

    /// A run on this machine only: begin it, take the logs and the pool, dispatch from the
    /// in-memory scheduler with every result recorded as it ends, then consolidate.
    async fn run_local(self) -> Result<RunOutcome, Error> {
        let Prepared {
            opts,
            mut r,
            mut db,
            start,
            mut observer,
            cancel,
            ..
        } = self;
        hide_state_dir(&r.repo.root);
        let resuming = matches!(start, Start::Resume { .. });
        let uncommitted = (!resuming).then(|| warn_uncommitted(&opts.cwd, &r.base));
        let history = db.expected_durations().unwrap_or_default();
        let begun = begin(&mut db, &mut r, start)?;
        let (logs_dir, _lock, mut notes) = take_logs(&r, &begun, resuming, &mut db)?;
        let initial_slots = ready_pool(&r, resuming, &mut notes).await;

        let db = Db::spawn(db);
        let mut recorder = Recorder::start(db.clone());
        let WorkPlan {
            done,
            to_run,
            jobs,
            fail_now,
            total,
        } = work_plan(&begun.loaded, &begun.previous, &history);
        observer.event(Event::RunStarted {
            run_id: &begun.run_id,
            total,
            agents: r.agents,
            jobs: &jobs,
        });
        for w in &begun.loaded.warnings {
            observer.event(Event::Note(w));
        }
        if let Some(warn) = uncommitted {
            if let Some(w) = warn.await.ok().flatten() {
                observer.event(Event::Note(&w));
                notes.push(w);
            }
        }

        let ctx = Arc::new(run_context(&r, &begun.run_id, logs_dir, None, r.timeout));
        let mut work = LocalWork::new(
            &begun.run_id,
            Scheduler::new(jobs),
            &begun.loaded,
            to_run,
            opts.fail_fast,
        )
        .with_budget(r.agent_settings.budget_usd, &begun.previous);
        let known = work.known_failures(&begun.loaded, &fail_now, &done);
        let Dispatched {
            slots,
            interrupted,
            notes: dispatch_notes,
        } = {
            let mut events = Tee(&mut recorder, observer.as_mut());
            for res in &known {
                events.event(Event::WorkstreamFinished { result: res });
            }
            Dispatch::new(ctx, r.agents)
                .run(&mut work, initial_slots, &mut events, cancel)
                .await
        };
        let (results, write_notes) = recorder.finish().await;
        notes.extend(dispatch_notes);
        notes.extend(write_notes);

        // Consolidate everything the run has (including earlier results on resume).
        observer.event(Event::Consolidating);
        let mut outcome = finish::finish_local(finish::Local {
            r,
            info: begun.info,
            kept: begun.previous,
            results,
            notes,
            slots,
            interrupted,
            db,
        })
        .await;
        let notified = crate::agent_io::notify::after_run(&outcome).await;
        outcome.notes.extend(notified);
        for n in &outcome.notes {
            observer.event(Event::Note(n));
        }
        Ok(outcome)
    }
}

/// Open the database and decide what the run starts from; `Some(why)` when a resume or a
/// rerun has nothing to do.
fn prepare_start(
    opts: &RunOptions,
    r: &Resolved,
) -> Result<(ConsolidationDatabase, Start, Option<String>), Error> {
    if let RunMode::Join(spec) = &opts.mode {
        // A worker runs the definitions stored in the queue, not its own files. A worker
        // waiting for the first run (`latest`) may meet a PostgreSQL database no run has
        // written yet: it creates the tables, as the coordinator would.
        let waits = spec == "latest" && r.db_path.sqlite_path().is_none();
        let mut db = if waits {
            ConsolidationDatabase::open(&r.db_path)?
        } else {
            ConsolidationDatabase::open_existing(&r.db_path)?
        };
        let nothing = queue::nothing_to_join(&mut db, spec)?;
        return Ok((db, Start::Join { spec: spec.clone() }, nothing));
    }
    // Everything that can be checked without writing is checked before the database is
    // opened, so a bad invocation leaves no trace.
    let all = load(&r.workstreams_dir)?;
    if opts.mode == RunMode::New {
        let loaded = select(all, &opts.only)?;
        let db = ConsolidationDatabase::open(&r.db_path)?;
        return Ok((
            db,
            Start::New {
                loaded,
                rerun_of: None,
            },
            None,
        ));
    }
    // Resume and rerun read an earlier run: never create a database for them.
    let mut db = ConsolidationDatabase::open_existing(&r.db_path)?;
    if let Some(why) = nothing_to_do_in(&mut db, &opts.mode, &all)? {
        let start = Start::New {
            loaded: Loaded::default(),
            rerun_of: None,
        };
        return Ok((db, start, Some(why)));
    }
    let start = match &opts.mode {
        RunMode::RerunFailed(spec) => {
            let src = db.resolve_run_id(spec)?;
            let only = not_completed(&mut db, &src)?;
            // Ids that no longer exist (or were invalid files) are simply not rerun.
            let (loaded, _unknown) = workstream::select_only(all, &only);
            Start::New {
                loaded,
                rerun_of: Some(src),
            }
        }
        RunMode::Resume(spec) => {
            let run_id = db.resolve_run_id(spec)?;
            if db.shared_run(&run_id)?.is_some() {
                return Err(Error::new(format!(
                    "--resume {run_id}: it is a shared run; join it instead: git ws-run --join {run_id} --remote NAME"
                )));
            }
            let info = db
                .run_info(&run_id)?
                .ok_or_else(|| Error::new(format!("--resume: no run {run_id}")))?;
            let previous = db.results(&run_id)?;
            // The workstreams the run was started with, if it said (else all of them).
            let loaded = match read_selection(&logs_dir_of(&r.repo.root, &run_id)) {
                Some(ids) => workstream::select_only(all, &ids).0,
                None => all,
            };
            Start::Resume {
                run_id,
                info,
                previous,
                loaded,
            }
        }
        RunMode::New | RunMode::Join(_) => unreachable!("handled above"),
    };
    Ok((db, start, None))
}

/// A run begun: its id and facts, what it runs, and what an earlier attempt recorded.
struct Begun {
    run_id: String,
    info: RunInfo,
    loaded: Loaded,
    previous: Vec<WorkstreamResult>,
}

/// Allocate the run's id and write its rows (a new run), or take over the resumed run's
/// settings. The first write of a run.
fn begin(db: &mut ConsolidationDatabase, r: &mut Resolved, start: Start) -> Result<Begun, Error> {
    match start {
        Start::New { loaded, rerun_of } => {
            let started_at = Utc::now();
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
            Ok(Begun {
                run_id,
                info,
                loaded,
                previous: Vec::new(),
            })
        }
        Start::Resume {
            run_id,
            mut info,
            previous,
            loaded,
        } => {
            // The run's own settings, unless the user overrides the agent count.
            if !r.agents_given {
                r.agents = info.agents.max(1);
            }
            info.agents = r.agents;
            info.finished_at = None;
            r.base = info.base.clone();
            Ok(Begun {
                run_id,
                info,
                loaded,
                previous,
            })
        }
        Start::Join { .. } => unreachable!("a worker does not begin a run"),
    }
}

/// The run's logs directory and its lock (held for the whole run: it tells a `--resume`
/// that this run is alive). A resume is refused while another process holds the lock; it
/// kills what the dead coordinator left running and marks the run running again. A new
/// run writes the ids it runs, for a later resume.
fn take_logs(
    r: &Resolved,
    begun: &Begun,
    resuming: bool,
    db: &mut ConsolidationDatabase,
) -> Result<(PathBuf, Option<RunLock>, Vec<String>), Error> {
    let run_id = &begun.run_id;
    let logs_dir = logs_dir_of(&r.repo.root, run_id);
    let _ = std::fs::create_dir_all(&logs_dir);
    let run_lock = RunLock::try_acquire(&logs_dir.join(RUN_LOCK));
    let mut notes = Vec::new();
    if resuming {
        let lock = match run_lock {
            Ok(Some(l)) => l,
            Ok(None) => {
                return Err(Error::ResumeWhileRunning {
                    run_id: run_id.clone(),
                    lock: logs_dir.join(RUN_LOCK),
                })
            }
            Err(e) => return Err(Error::new(format!("failed to resume {run_id}: {e}"))),
        };
        // Processes the dead coordinator left running would write into the worktrees.
        notes.extend(process::reap_orphans(&logs_dir));
        db.set_run_state(run_id, RunState::Running)?;
        return Ok((logs_dir, Some(lock), notes));
    }
    write_selection(&logs_dir, &begun.loaded);
    Ok((logs_dir, run_lock.ok().flatten(), notes))
}

/// The pool: idle worktrees past their expiry go; a crashed run's slots let go of its
/// branches. A resume takes back the crashed run's worktrees now, so every one of them is
/// repaired and, at the end, reset to the base, whether or not an agent needs it.
async fn ready_pool(r: &Resolved, resuming: bool, notes: &mut Vec<String>) -> Vec<git::AgentSlot> {
    notes.extend(sweep_pool(&r.repo, &r.pool).await);
    if !resuming {
        return Vec::new();
    }
    let (slots, more) = take_back_slots(&r.repo, &r.base, r.agents).await;
    notes.extend(more);
    slots
}

/// What every workstream of a run shares.
fn run_context(
    r: &Resolved,
    run_id: &str,
    logs_dir: PathBuf,
    worker: Option<String>,
    timeout: Duration,
) -> RunContext {
    RunContext {
        run_id: run_id.to_string(),
        repo: r.repo.clone(),
        base: r.base.clone(),
        logs_dir,
        agent_cmd: r.agent_cmd.clone(),
        default_timeout: timeout,
        grace: r.grace,
        prepare: PrepareOptions {
            keep_ignored: r.keep_ignored.clone(),
        },
        agent_settings: r.agent_settings.clone(),
        worker,
    }
}

/// In the background: the warning about uncommitted changes in the user's worktree, which
/// the agents will not see (the base is a commit), if there are any.
fn warn_uncommitted(cwd: &Path, base: &str) -> tokio::task::JoinHandle<Option<String>> {
    let (cwd, base) = (cwd.to_path_buf(), base.to_string());
    tokio::task::spawn_blocking(move || {
        let (n, paths) = git::uncommitted_changes(&cwd, 3).ok()?;
        uncommitted_warning(n, &paths, &base)
    })
}

/// The one warning about uncommitted changes (pure).
fn uncommitted_warning(n: usize, paths: &[String], base: &str) -> Option<String> {
    if n == 0 {
        return None;
    }
    let mut list = paths.join(", ");
    if n > paths.len() {
        list.push_str(", …");
    }
    Some(format!(
        "your worktree has uncommitted changes ({n} file{}: {list}) that the base {} does not include: the agents will not see them (commit them first to include them)",
        if n == 1 { "" } else { "s" },
        &base[..base.len().min(12)]
    ))
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
        RunMode::New | RunMode::Join(_) => Ok(None),
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
/// command line then says why and exits 0 without starting a run). The same as
/// [`Prepared::nothing_to_do`], for callers that do not go on to run.
pub fn nothing_to_do(opts: &RunOptions) -> Result<Option<String>, Error> {
    if matches!(opts.mode, RunMode::New | RunMode::Join(_)) {
        return Ok(None);
    }
    Ok(Coordinator::new(opts.clone())
        .prepare()?
        .nothing_to_do()
        .map(str::to_string))
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
