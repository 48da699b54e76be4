//! `git ws-run`, the command: its options ([`RunOptions`], [`RunMode`]), resolving them
//! against the repository and its git config ([`resolve`]), reading and selecting the
//! workstreams and deciding what a run starts from (new, resume, rerun, join), the dry run,
//! and the entry points: [`run`] for the command line, [`Coordinator`] for programs (the
//! seed design's `MultiAgentWorkstreamCoordinator`). Running is the engine's
//! ([`crate::runner`]).

use crate::config::DEFAULT_AGENTS;
use crate::db::{ConsolidationDatabase, DbLocation, RunState};
use crate::error::Error;
use crate::git::{self, PoolPolicy, RepoPaths};
use crate::model::Status;
use crate::outcome::RunOutcome;
use crate::plan;
use crate::runner::events::{NoObserver, Observer};
use crate::runner::lease::{self, Shared};
use crate::runner::{
    nothing_to_join, read_selection, simulate, Prepared, Resolved, Start, DEFAULT_GRACE,
    DEFAULT_TIMEOUT,
};
use crate::workspace::Workspace;
use crate::workstream::{self, Loaded};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

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
    /// git config `ws.worktreeExpiry`, else [`crate::config::DEFAULT_WORKTREE_EXPIRY`].
    pub worktree_expiry: Option<Duration>,
    /// An SQLite path (relative to `cwd`) or a PostgreSQL URL; default env
    /// `GIT_WS_DATABASE_URL`, git config `ws.database`, else [`crate::layout::DEFAULT_DB`]
    /// at the repo root.
    pub db_path: Option<DbLocation>,
    /// Relative paths are relative to `cwd`; default [`crate::layout::DEFAULT_REPORTS`] at
    /// the repo root.
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
    /// `--fix-up N`: hand branches the integration leaves out back to their agents, at
    /// most N times each; kept for the run (`--resume`, `--integrate`, `git ws-merge`).
    pub fix_up: Option<usize>,
    /// `--integrate`; `None`: git config `ws.integrate`, default off.
    pub integrate: Option<bool>,
    /// `--test` (with `--integrate`); `None`: git config `ws.integrationTest`.
    pub integration_test: Option<String>,
    /// `--jobs` (with `--integrate`); `None`: the agent count.
    pub integration_jobs: Option<usize>,
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

/// What `git ws-run` did: a run, or nothing because a resume or rerun had nothing to do
/// (the sentence says why; the command line prints it and exits 0).
#[derive(Debug)]
pub enum Ran {
    Run(Box<RunOutcome>),
    NothingToDo(String),
}

/// `git ws-run`: prepare the run (an error here means nothing ran), then run it, reporting
/// progress to `observer` and winding down when `cancel` becomes `true`.
pub async fn run(
    opts: RunOptions,
    observer: Box<dyn Observer>,
    cancel: watch::Receiver<bool>,
) -> Result<Ran, Error> {
    let prepared = Coordinator::new(opts)
        .observer(observer)
        .cancel_on(cancel)
        .prepare()?;
    if let Some(why) = prepared.nothing_to_do() {
        return Ok(Ran::NothingToDo(why.to_string()));
    }
    Ok(Ran::Run(Box::new(prepared.execute().await?)))
}

/// Resolve options: find the repository, apply git config and defaults, check the base.
/// The repository is opened once and its config read once.
pub fn resolve(opts: &RunOptions) -> Result<Resolved, Error> {
    let handle = git::Repo::discover(&opts.cwd)?;
    let mut ws = Workspace::of(&opts.cwd, &handle)?;
    if let Some(dir) = &opts.reports_dir {
        let dir = ws.abs(dir);
        ws.layout = ws.layout.with_reports_dir(dir);
    }
    let config = &ws.config;
    let agents = match opts.agents {
        Some(n) => n,
        None => config.agents()?.unwrap_or(DEFAULT_AGENTS),
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
        .or_else(|| config.agent_command())
        .filter(|c| !c.trim().is_empty());
    let keep_ignored = match &opts.keep_ignored {
        Some(k) => k.clone(),
        None => config.keep_ignored(),
    };
    let keep_worktrees = match opts.keep_worktrees {
        Some(k) => k,
        None => config.keep_worktrees()?,
    };
    let expiry = match opts.worktree_expiry {
        Some(d) => Some(d),
        None => config.worktree_expiry()?,
    };
    // A pool directory (ws.poolDir) another repository owns: refused before anything runs.
    git::check_pool_owner(&ws.repo)?;
    crate::logcap::set_limit(config.max_log_bytes()?);
    crate::runner::tampering::set_strict(config.sandbox_strict()?);
    let integrate = match opts.integrate {
        Some(on) => on,
        None => config.integrate()?,
    };
    if integrate && (opts.remote.is_some() || matches!(opts.mode, RunMode::Join(_))) {
        return Err(Error::new(
            "--integrate (git config ws.integrate) works on a local run only: a shared run (--remote, --join) is integrated afterwards with git ws-merge RUN --test CMD".to_string(),
        ));
    }
    let shared = resolve_shared(opts, config, &ws.repo)?;
    let integrate = if integrate {
        if shared.is_some() {
            return Err(Error::new(
                "--integrate (git config ws.integrate) works on a local run only: a shared run (--remote, --join) is integrated afterwards with git ws-merge RUN --test CMD".to_string(),
            ));
        }
        Some(crate::runner::integrate::Settings {
            test: opts
                .integration_test
                .clone()
                .or_else(|| config.integration_test())
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty()),
            jobs: opts.integration_jobs.unwrap_or(agents).max(1),
            base_rev: base_rev.clone(),
            timeout: opts.timeout.unwrap_or(DEFAULT_TIMEOUT),
            grace: opts.grace.unwrap_or(DEFAULT_GRACE),
            fixups: None,
        })
    } else {
        None
    };
    Ok(Resolved {
        agents,
        workstreams_dir: opts
            .workstreams_dir
            .as_deref()
            .map(|p| ws.abs(p))
            .unwrap_or_else(|| ws.layout.default_workstreams_dir()),
        base_rev,
        base,
        agent_cmd,
        timeout: opts.timeout.unwrap_or(DEFAULT_TIMEOUT),
        grace: opts.grace.unwrap_or(DEFAULT_GRACE),
        db_path: ws.database(opts.db_path.as_ref())?,
        keep_ignored,
        keep_worktrees,
        pool: PoolPolicy { expiry },
        agents_given: opts.agents.is_some(),
        fail_fast: opts.fail_fast,
        fix_up: opts.fix_up,
        shared,
        integrate,
        agent_settings: config.agent_settings(&opts.agent_options, opts.agent_cmd.is_some())?,
        ws,
    })
}

/// Load the workstreams directory; symbolic links in it may point anywhere in the
/// repository (`root`) when the directory is inside it, else only inside the directory.
fn load(dir: &Path, root: &Path) -> Result<Loaded, Error> {
    if !dir.is_dir() {
        return Err(Error::new(format!(
            "failed to read workstreams: {} is not a directory (create it with one JSON file per workstream, or pass --workstreams DIR)",
            dir.display()
        )));
    }
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let within = if canonical(dir).starts_with(canonical(root)) {
        root
    } else {
        dir
    };
    workstream::load_dir_within(dir, within).map_err(|e| {
        Error::new(format!(
            "failed to read workstreams directory {}: {e}",
            dir.display()
        ))
    })
}

/// [`load`] for a new run or a dry run: a directory with no workstream file at all (empty,
/// or only misnamed files such as `*.JSON`, `*.json.bak`) is an error (exit 2) in one
/// sentence naming the directory and what it holds, so no empty run is recorded; and a
/// `prompt` workstream with no agent to run it is invalid
/// ([`workstream::require_agents`]).
fn load_checked(r: &Resolved) -> Result<Loaded, Error> {
    let loaded = load(&r.workstreams_dir, &r.ws.repo.root)?;
    let names: Vec<String> = match std::fs::read_dir(&r.workstreams_dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect(),
        Err(_) => Vec::new(),
    };
    let shown = r
        .workstreams_dir
        .strip_prefix(&r.ws.repo.root)
        .map(|p| format!("{}/", p.display()))
        .unwrap_or_else(|_| r.workstreams_dir.display().to_string());
    let any = !loaded.valid.is_empty() || !loaded.invalid.is_empty();
    if let Some(sentence) = workstream::empty_backlog(&shown, &names, any) {
        return Err(Error::new(sentence));
    }
    Ok(require_agents(loaded, r))
}

/// [`workstream::require_agents`] with this run's settings.
fn require_agents(loaded: Loaded, r: &Resolved) -> Loaded {
    let default_agent = r.agent_settings.agent.is_some() || r.agent_cmd.is_some();
    workstream::require_agents(loaded, default_agent, &crate::agents::Preset::names())
}

fn select(loaded: Loaded, only: &[String]) -> Result<Loaded, Error> {
    if only.is_empty() {
        return Ok(loaded);
    }
    let (sel, unknown) = workstream::select_only(loaded, only);
    if !unknown.is_empty() {
        return Err(Error::new(format!(
            "--only: unknown workstream {}: {}",
            if unknown.len() == 1 { "id" } else { "ids" },
            unknown.join(", ")
        )));
    }
    Ok(sel)
}

/// Validate everything and compute the plan; touches neither the repository nor the
/// database (history is read only if the database already exists).
pub fn dry_run(opts: &RunOptions) -> Result<DryRun, Error> {
    let r = resolve(opts)?;
    let loaded = select(load_checked(&r)?, &opts.only)?;
    let history = if r.db_path.exists() {
        ConsolidationDatabase::open_read_only(&r.db_path)
            .and_then(|mut db| db.expected_durations())
            .unwrap_or_default()
    } else {
        HashMap::new()
    };
    let (plan, skips) = simulate(&loaded, &history, r.agents);
    Ok(DryRun {
        repo_root: r.ws.repo.root.clone(),
        base: r.base,
        agents: r.agents,
        loaded,
        plan,
        skips,
    })
}

/// The shared-run settings of `opts`, checked: `--remote` names a configured remote,
/// `--join` comes with one, `--worker` is a usable name, the lease is long enough.
fn resolve_shared(
    opts: &RunOptions,
    config: &crate::config::Config,
    repo: &RepoPaths,
) -> Result<Option<Shared>, Error> {
    let join = matches!(opts.mode, RunMode::Join(_));
    let Some(remote) = &opts.remote else {
        if join {
            return Err(Error::new(
                "--join needs --remote NAME: the git remote the shared run's base and branches go through",
            ));
        }
        if let Some(w) = &opts.worker {
            return Err(Error::new(format!(
                "--worker {w}: a worker name is for a shared run (--remote NAME, or --join RUN)"
            )));
        }
        return Ok(None);
    };
    if matches!(opts.mode, RunMode::Resume(_)) {
        return Err(Error::new(
            "--resume cannot be combined with --remote: a shared run is finished by joining it (git ws-run --join RUN --remote NAME)",
        ));
    }
    let remote_url = git::remote::remote_url(repo, remote)?;
    let worker = match &opts.worker {
        Some(w) => {
            lease::validate_worker_name(w)
                .map_err(|e| Error::new(format!("--worker {w:?}: {e}")))?;
            w.clone()
        }
        None => lease::default_worker_name(),
    };
    let lease = match opts.lease {
        Some(l) => l,
        None => config.lease()?,
    };
    if lease < lease::MIN_LEASE {
        return Err(Error::new(format!(
            "the lease ({}) must be at least {}ms",
            crate::text::duration(lease.as_secs_f64()),
            lease::MIN_LEASE.as_millis()
        )));
    }
    Ok(Some(Shared {
        remote: remote.clone(),
        remote_url,
        worker,
        lease,
    }))
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
        Ok(Prepared::new(r, db, start, nothing, observer, cancel))
    }

    /// Prepare, then execute. Errors only when nothing could run (exit 2), including "nothing
    /// to resume/rerun".
    pub async fn run(self) -> Result<RunOutcome, Error> {
        self.prepare()?.execute().await
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
        let nothing = nothing_to_join(&mut db, spec)?;
        return Ok((db, Start::Join { spec: spec.clone() }, nothing));
    }
    // Everything that can be checked without writing is checked before the database is
    // opened, so a bad invocation leaves no trace.
    if opts.mode == RunMode::New {
        let all = load_checked(r)?;
        let loaded = select(all, &opts.only)?;
        let mut db = ConsolidationDatabase::open(&r.db_path)?;
        replay_spool(r, &mut db);
        return Ok((
            db,
            Start::New {
                loaded,
                rerun_of: None,
            },
            None,
        ));
    }
    let all = require_agents(load(&r.workstreams_dir, &r.ws.repo.root)?, r);
    // Resume and rerun read an earlier run: never create a database for them.
    let mut db = ConsolidationDatabase::open_existing(&r.db_path)?;
    replay_spool(r, &mut db);
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
            let mut loaded = match read_selection(&r.ws.layout.run_logs(&run_id)) {
                Some(ids) => workstream::select_only(all.clone(), &ids).0,
                None => all.clone(),
            };
            // What a review sent back (git ws-review) runs too.
            let start_points =
                crate::runner::followups::add(&mut db, &r.ws.repo, &run_id, &all, &mut loaded)?;
            Start::Resume {
                run_id,
                info,
                previous,
                loaded,
                start_points: start_points.into_iter().collect(),
            }
        }
        RunMode::New | RunMode::Join(_) => unreachable!("handled above"),
    };
    Ok((db, start, None))
}

/// Record the results an earlier run kept in `.state/spool/` because this database refused
/// them, before anything reads the database (a `--resume` then sees them as final).
fn replay_spool(r: &Resolved, db: &mut ConsolidationDatabase) {
    for note in crate::runner::spool::replay(&r.ws.layout, db) {
        eprintln!("git ws-run: {note}");
    }
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
            // A finished run with review follow-ups not yet run resumes to run them.
            let previous = db.results(&run_id)?;
            let followups = crate::runner::followups::pending(db, &run_id, &previous)?;
            Ok((finished && followups.is_empty()).then(|| {
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
