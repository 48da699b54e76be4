//! The run engine `commands::run` drives: given a run resolved and planned ([`Prepared`]),
//! it begins the run, takes its logs and the agent worktree pool, dispatches workstreams to
//! N agent slots from a source of ready work (NO STOP by default), records each result as it
//! finishes, then forecasts merges, consolidates, and writes the totals and the report. A
//! run is local (the in-memory scheduler, [`dispatch::LocalWork`]) or shared by several
//! processes through a database queue and a git remote ([`queue`]): one dispatch loop for
//! both. The options, their resolution and the choice of what a run starts from are the
//! command's ([`crate::commands::run`]).

mod dispatch;
pub mod events;
pub mod execute;
mod finish;
pub mod fixup;
pub(crate) mod followups;
pub mod lease;
pub use crate::process;
pub mod integrate;
mod queue;
pub mod record;
pub(crate) mod spool;
pub mod tampering;
pub(crate) mod tiptest;

pub use crate::config::{parse_expiry, DEFAULT_AGENTS, DEFAULT_WORKTREE_EXPIRY};
pub use crate::layout::{DEFAULT_DB, DEFAULT_REPORTS};
pub use crate::outcome::{RunOutcome, SharedOutcome};
pub(crate) use finish::rewrite_report;
pub(crate) use queue::nothing_to_join;

use crate::db::{ConsolidationDatabase, DbLocation, RunState};
use crate::error::Error;
use crate::git::{self, PoolPolicy, PrepareOptions, RepoPaths};
use crate::layout::{Layout, RunLogs};
use crate::model::{ErrorType, RunInfo, Status, WorkstreamResult};
use crate::plan::{self, Scheduler};
use crate::workspace::Workspace;
use crate::workstream::{Loaded, Workstream};
use chrono::Utc;
use dispatch::{Dispatch, Dispatched, LocalWork};
use events::{Event, Observer, Tee};
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

/// Settings resolved against the repository.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The repository, its config and its layout (the reports where `--reports-dir` says).
    pub ws: Workspace,
    pub agents: usize,
    pub workstreams_dir: PathBuf,
    pub base_rev: String,
    pub base: String,
    pub agent_cmd: Option<String>,
    pub timeout: Duration,
    pub grace: Duration,
    pub db_path: DbLocation,
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
    /// `--fail-fast`: stop dispatching after the first failure.
    pub fail_fast: bool,
    /// `--fix-up N`: kept for the run ([`fixup::limit`] reads it back).
    pub fix_up: Option<usize>,
    /// `--integrate` (git config `ws.integrate`): integrate as workstreams complete.
    pub integrate: Option<integrate::Settings>,
}

/// What a prepared run starts from.
pub(crate) enum Start {
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
        /// Branch → start commit of the review follow-ups it runs (see
        /// [`RunContext::start_points`](execute::RunContext)).
        start_points: Vec<(String, String)>,
    },
    /// Work on a shared run (`latest`: the most recent open one, waiting for one if need be).
    Join { spec: String },
}

/// A run resolved, loaded and planned, ready to [`execute`](Prepared::execute).
pub struct Prepared {
    r: Resolved,
    db: ConsolidationDatabase,
    start: Start,
    nothing: Option<String>,
    observer: Box<dyn Observer>,
    cancel: watch::Receiver<bool>,
}

impl Prepared {
    /// A run `commands::run` resolved, loaded and planned.
    pub(crate) fn new(
        r: Resolved,
        db: ConsolidationDatabase,
        start: Start,
        nothing: Option<String>,
        observer: Box<dyn Observer>,
        cancel: watch::Receiver<bool>,
    ) -> Prepared {
        Prepared {
            r,
            db,
            start,
            nothing,
            observer,
            cancel,
        }
    }

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
            mut r,
            mut db,
            start,
            mut observer,
            cancel,
            ..
        } = self;
        r.ws.layout.hide_state_dir();
        let resuming = matches!(start, Start::Resume { .. });
        let uncommitted = (!resuming).then(|| warn_uncommitted(&r.ws.cwd, &r.base));
        let history = db.expected_durations().unwrap_or_default();
        let mut begun = begin(&mut db, &mut r, start)?;
        // Before the dead coordinator's processes are reaped (and their pgid files go):
        // which workstreams were still running when it died.
        let was_running = if resuming {
            running_at_crash(&r.ws.layout.run_logs(&begun.run_id), &begun.loaded)
        } else {
            HashSet::new()
        };
        let (logs, _lock, mut notes) = take_logs(&r, &begun, resuming, &mut db)?;
        let adopted = if resuming {
            adopt_from_git(&r, &begun, &logs, &was_running).await
        } else {
            Vec::new()
        };
        let initial_slots = ready_pool(&r, resuming, &mut notes).await;

        let db = Db::spawn(db);
        let recorder = Recorder::start(
            db.clone(),
            record::SpoolTo {
                layout: r.ws.layout.clone(),
                run: begun.info.clone(),
                kept: begun.previous.clone(),
            },
        );
        // Finished workstreams the database never heard of: recorded as they were, kept as
        // final results, never run again.
        for a in adopted {
            let note = format!(
                "{} finished before the run stopped but its result was never recorded: adopted from its branch {} ({} commit{}), not run again",
                a.workstream_id,
                a.branch.as_deref().unwrap_or("?"),
                a.commits.len(),
                if a.commits.len() == 1 { "" } else { "s" }
            );
            observer.event(Event::Note(&note));
            notes.push(note);
            recorder.adopt(a.clone());
            begun.previous.push(a);
        }
        let mut recorder = recorder;
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

        let mut ctx = run_context(&r, &begun.run_id, logs, None, r.timeout);
        ctx.start_points = std::mem::take(&mut begun.start_points);
        ctx.dep_branches = std::mem::take(&mut begun.dep_branches);
        let ctx = Arc::new(ctx);
        let mut work = LocalWork::new(
            &begun.run_id,
            Scheduler::new(jobs),
            &begun.loaded,
            to_run,
            r.fail_fast,
        )
        .with_budget(r.agent_settings.budget_usd)
        .with_limits(
            agent_labels(&ctx, &begun.loaded),
            r.agent_settings.max_wait,
            &begun.previous,
        )
        // Follow-ups recorded while the run goes on (git ws-review) run before it ends.
        .with_live_followups(followups::LiveFollowups::new(
            db.clone(),
            r.ws.repo.clone(),
            &r.ws.layout.run_logs(&begun.run_id),
            &begun.run_id,
        ));
        let known = work.known_failures(&begun.loaded, &fail_now, &done);
        // `--integrate`: the display is shared with the integration task, which the run's
        // events feed (after the recorder, before the display).
        let display: Arc<std::sync::Mutex<Box<dyn Observer>>> =
            Arc::new(std::sync::Mutex::new(observer));
        let mut observer: Box<dyn Observer> = Box::new(integrate::SharedDisplay(display.clone()));
        // `--integrate --fix-up N`: what integration leaves out goes back to its agent in
        // this run, which does not end while integration may still hand something back.
        let fixups = match &r.integrate {
            Some(_) => {
                let run = begun.run_id.clone();
                let stored = db.call(move |d| d.fixup_limit(&run)).await.ok().flatten();
                let n = r
                    .fix_up
                    .or(stored)
                    .or_else(|| r.ws.config.fix_up().ok().flatten())
                    .unwrap_or(0);
                (n > 0).then(|| integrate::FixUps {
                    flag: r.fix_up,
                    db: r.db_path.clone(),
                    defs: begun.loaded.valid.clone(),
                    in_flight: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
                })
            }
            None => None,
        };
        if let Some(f) = &fixups {
            work = work.with_integration_hold(f.in_flight.clone());
        }
        let mut integration = r.integrate.clone().map(|mut s| {
            s.fixups = fixups.clone();
            integrate::start(
                r.ws.clone(),
                &begun.run_id,
                &r.base,
                r.agents,
                s,
                r.keep_ignored.clone(),
                integrate::say_to(display.clone()),
            )
        });
        let Dispatched {
            slots,
            interrupted,
            notes: dispatch_notes,
        } = {
            let feed = integration.as_mut().map(|(f, _)| f);
            let mut none = events::NoObserver;
            let fed: &mut dyn Observer = match feed {
                Some(f) => f,
                None => &mut none,
            };
            // A resumed run's earlier completed workstreams are integrated first.
            for res in &begun.previous {
                fed.event(Event::WorkstreamFinished { result: res });
            }
            let mut display_and_feed = Tee(fed, observer.as_mut());
            let mut events = Tee(&mut recorder, &mut display_and_feed);
            for res in &known {
                events.event(Event::WorkstreamFinished { result: res });
            }
            Dispatch::new(ctx, r.agents)
                .run(&mut work, initial_slots, &mut events, cancel)
                .await
        };
        let (results, written) = recorder.finish().await;
        notes.extend(dispatch_notes);
        notes.extend(written.notes);
        // Integration finishes what came in (the newest tip tested) and is recorded before
        // the run's report is written.
        let integrated = match integration {
            Some((mut feed, task)) => {
                feed.close(interrupted);
                drop(feed);
                match task.await {
                    Ok(f) => Some(f),
                    Err(e) => {
                        notes.push(format!("integration failed unexpectedly: {e}"));
                        None
                    }
                }
            }
            None => None,
        };
        if let Some(f) = &integrated {
            notes.extend(f.notes.iter().cloned());
            if let Some(rec) = f.record.clone() {
                if let Err(e) = db.call(move |db| db.record_integration(&rec)).await {
                    notes.push(format!("failed to record the integration: {e}"));
                }
            }
        }

        // Consolidate everything the run has (including earlier results on resume).
        observer.event(Event::Consolidating);
        let db_after = db.clone();
        let reports = r.ws.layout.reports().clone();
        let mut outcome = finish::finish_local(finish::Local {
            r,
            info: begun.info,
            kept: begun.previous,
            results,
            notes,
            slots,
            interrupted,
            db,
            unrecorded: written.unrecorded,
            spool: written.spool,
        })
        .await;
        if let Some(f) = &integrated {
            // The report again, now with the Integration section (from the database).
            if f.record.is_some() && outcome.report_error.is_none() {
                let run_id = outcome.run_id.clone();
                let rewritten = db_after
                    .call(move |db| Ok(rewrite_report(db, &run_id, &reports)))
                    .await;
                if let Ok(Err(e)) = rewritten {
                    outcome.notes.push(e.to_string());
                }
            }
            observer.event(Event::Integration(&f.line));
            outcome.integration = f.record.clone();
        }
        let notified = crate::agent_io::notify::after_run(&outcome).await;
        outcome.notes.extend(notified);
        for n in &outcome.notes {
            observer.event(Event::Note(n));
        }
        Ok(outcome)
    }
}

/// A run begun: its id and facts, what it runs, and what an earlier attempt recorded.
struct Begun {
    run_id: String,
    info: RunInfo,
    loaded: Loaded,
    previous: Vec<WorkstreamResult>,
    /// Branch → start commit (review follow-ups of a resumed run).
    start_points: HashMap<String, String>,
    /// Workstream id → the branch of its completed result in the run this one reruns (see
    /// [`RunContext::dep_branches`](execute::RunContext)).
    dep_branches: HashMap<String, String>,
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
                repo_root: r.ws.repo.root.display().to_string(),
                rerun_of,
            };
            let dep_branches = match &info.rerun_of {
                Some(src) => completed_branches(db, src)?,
                None => HashMap::new(),
            };
            let run_id = db.begin_run_avoiding(&info, &run_id_taken(&r.ws))?;
            info.run_id = run_id.clone();
            if let Some(n) = r.fix_up {
                db.set_fixup_limit(&run_id, n)?;
            }
            Ok(Begun {
                run_id,
                info,
                loaded,
                previous: Vec::new(),
                start_points: HashMap::new(),
                dep_branches,
            })
        }
        Start::Resume {
            run_id,
            mut info,
            previous,
            loaded,
            start_points,
        } => {
            // The run's own settings, unless the user overrides the agent count.
            if !r.agents_given {
                r.agents = info.agents.max(1);
            }
            info.agents = r.agents;
            info.finished_at = None;
            if let Some(n) = r.fix_up {
                db.set_fixup_limit(&run_id, n)?;
            }
            r.base = info.base.clone();
            Ok(Begun {
                run_id,
                info,
                loaded,
                previous,
                start_points: start_points.into_iter().collect(),
                dep_branches: HashMap::new(),
            })
        }
        Start::Join { .. } => unreachable!("a worker does not begin a run"),
    }
}

/// The branch of each workstream's latest completed result along the chain of reruns that
/// ends at run `src` (`--rerun-failed` of a rerun finds the work of the first run too): where
/// a rerun dependent stacks on a dependency that is not run again.
fn completed_branches(
    db: &mut ConsolidationDatabase,
    src: &str,
) -> Result<HashMap<String, String>, Error> {
    let mut out = HashMap::new();
    let mut next = Some(src.to_string());
    let mut seen = std::collections::HashSet::new();
    while let Some(run) = next.take() {
        if !seen.insert(run.clone()) {
            break;
        }
        for res in db.results(&run)? {
            if res.status == Status::Completed {
                if let Some(b) = res.branch {
                    out.entry(res.workstream_id).or_insert(b);
                }
            }
        }
        next = db.run_info(&run)?.and_then(|i| i.rerun_of);
    }
    Ok(out)
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
) -> Result<(RunLogs, Option<RunLock>, Vec<String>), Error> {
    let run_id = &begun.run_id;
    let logs = r.ws.layout.run_logs(run_id);
    logs.create();
    let run_lock = RunLock::try_acquire(&logs.lock());
    let mut notes = Vec::new();
    if resuming {
        let lock = match run_lock {
            Ok(Some(l)) => l,
            Ok(None) => {
                return Err(Error::ResumeWhileRunning {
                    run_id: run_id.clone(),
                    lock: logs.lock(),
                })
            }
            Err(e) => return Err(Error::new(format!("failed to resume {run_id}: {e}"))),
        };
        // Processes the dead coordinator left running would write into the worktrees.
        notes.extend(process::reap_orphans(logs.dir()));
        db.set_run_state(run_id, RunState::Running)?;
        return Ok((logs, Some(lock), notes));
    }
    write_selection(&logs, &begun.loaded);
    Ok((logs, run_lock.ok().flatten(), notes))
}

/// The pool: first, what a killed git-ws tool left running is killed (before any slot is
/// claimed, so nothing of it runs beside an agent); idle worktrees past their expiry go; a
/// crashed run's slots let go of its branches. A resume takes back the crashed run's worktrees now, so every one of them is
/// repaired and, at the end, reset to the base, whether or not an agent needs it.
async fn ready_pool(r: &Resolved, resuming: bool, notes: &mut Vec<String>) -> Vec<git::AgentSlot> {
    match process::reap_abandoned(&r.ws.layout.procs_dir()) {
        Ok(killed) => notes.extend(killed),
        Err(e) => notes.push(e),
    }
    notes.extend(sweep_pool(&r.ws.repo, &r.pool).await);
    if !resuming {
        return Vec::new();
    }
    let (slots, more) = take_back_slots(&r.ws.repo, &r.base, r.agents).await;
    notes.extend(more);
    slots
}

/// What every workstream of a run shares.
fn run_context(
    r: &Resolved,
    run_id: &str,
    logs: RunLogs,
    worker: Option<String>,
    timeout: Duration,
) -> RunContext {
    RunContext {
        run_id: run_id.to_string(),
        repo: r.ws.repo.clone(),
        layout: r.ws.layout.clone(),
        base: r.base.clone(),
        logs,
        agent_cmd: r.agent_cmd.clone(),
        default_timeout: timeout,
        grace: r.grace,
        prepare: PrepareOptions {
            keep_ignored: r.keep_ignored.clone(),
        },
        agent_settings: r.agent_settings.clone(),
        worker,
        start_points: HashMap::new(),
        dep_branches: HashMap::new(),
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

/// What a dry run of `loaded` on `agents` agents would do: the simulated plan (with the
/// expected durations of `history`), and the workstreams it would skip because a dependency
/// is invalid. Pure.
pub(crate) fn simulate(
    loaded: &Loaded,
    history: &HashMap<String, f64>,
    agents: usize,
) -> (Vec<plan::PlannedStep>, Vec<plan::Skip>) {
    let WorkPlan { jobs, fail_now, .. } = work_plan(loaded, &[], history);
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
    (plan::simulate(&runnable, agents), skips)
}

/// The workstreams of `loaded` whose command or test was still running when the run's
/// coordinator died: their process-group files are still in the run's logs.
fn running_at_crash(logs: &RunLogs, loaded: &Loaded) -> HashSet<String> {
    loaded
        .valid
        .iter()
        .filter(|w| logs.pgid(&w.id).exists() || logs.test_pgid(&w.id).exists())
        .map(|w| w.id.clone())
        .collect()
}

/// `--resume`: the workstreams that finished in the dead attempt but whose result never
/// reached the database, rebuilt from git. A workstream qualifies when it has no recorded
/// result at all, nothing of it was running when the coordinator died, and its branch
/// `ws/<run>/<id>` exists and has moved from the base: its commits and files are read from
/// the branch, its status is completed (failed when its test log shows failures), and its
/// log is pointed at. Nothing is written to git: the branch stays where it is.
async fn adopt_from_git(
    r: &Resolved,
    begun: &Begun,
    logs: &RunLogs,
    was_running: &HashSet<String>,
) -> Vec<WorkstreamResult> {
    // Any recorded result, final or not (a cancelled workstream's branch may hold partial
    // work), rules adoption out: only what the database never heard of is adopted.
    let known: HashSet<&str> = begun
        .previous
        .iter()
        .map(|x| x.workstream_id.as_str())
        .collect();
    let candidates: Vec<Workstream> = begun
        .loaded
        .valid
        .iter()
        .filter(|w| !known.contains(w.id.as_str()) && !was_running.contains(&w.id))
        .cloned()
        .collect();
    let (repo, base, run_id, logs) = (
        r.ws.repo.clone(),
        r.base.clone(),
        begun.run_id.clone(),
        logs.clone(),
    );
    let agents = r.agents;
    tokio::task::spawn_blocking(move || {
        candidates
            .iter()
            .filter_map(|w| adopt_one(&repo, &base, &run_id, &logs, agents, w))
            .collect()
    })
    .await
    .unwrap_or_default()
}

fn adopt_one(
    repo: &RepoPaths,
    base: &str,
    run_id: &str,
    logs: &RunLogs,
    agents: usize,
    w: &Workstream,
) -> Option<WorkstreamResult> {
    let branch = execute::branch_name(run_id, &w.id);
    // A stacked workstream's own work is what it added to its dependencies' work.
    let start = if w.stack && !w.depends_on.is_empty() {
        let deps: Vec<(String, String)> = w
            .depends_on
            .iter()
            .map(|d| (d.clone(), execute::branch_name(run_id, d)))
            .collect();
        git::stack_start(repo, run_id, base, &deps).ok()?
    } else {
        base.to_string()
    };
    let c = git::read_branch(repo, &branch, &start).ok().flatten()?;
    if c.head == start || c.commits.is_empty() {
        return None;
    }
    let agent = if agents == 1 { "agent-1" } else { "agent-?" };
    let mut res = WorkstreamResult::new(run_id, agent, &w.id, Status::Completed);
    res.title = w.title.clone();
    res.source_file = Some(w.file.clone());
    res.base = Some(base.to_string());
    res.branch = Some(branch.clone());
    res.head = Some(c.head);
    res.commits = c.commits;
    res.files = c.files;
    let log = logs.workstream(&w.id);
    let ended = std::fs::metadata(&log)
        .and_then(|m| m.modified())
        .ok()
        .map(chrono::DateTime::<Utc>::from);
    if log.is_file() {
        res.log_path = Some(log.display().to_string());
    }
    res.end_time = ended;
    res.warnings.push(format!(
        "adopted by --resume: the workstream finished but its result never reached the database; commits and files were read from {branch}, times and exit code are not known"
    ));
    if let Some(test) = &w.test {
        let test_log = logs.test(&w.id);
        let out = process::tail(&test_log, usize::MAX, 64 * 1024);
        let tr = crate::testparse::test_results(test, None, &out);
        if tr.failed.is_some_and(|f| f > 0) {
            res.status = Status::Failed;
            res.errors.push(crate::model::WsError::new(
                ErrorType::TestFailed,
                format!(
                    "tests failed (read from {} by --resume)",
                    test_log.display()
                ),
            ));
        }
        res.test_results = Some(tr);
    }
    Some(res)
}

/// Each valid workstream's agent (its driver's label: the preset's name), for usage limits.
fn agent_labels(ctx: &RunContext, loaded: &Loaded) -> HashMap<String, String> {
    loaded
        .valid
        .iter()
        .filter_map(|w| {
            execute::choose_driver(ctx, w)
                .ok()
                .map(|d| (w.id.clone(), d.label().to_string()))
        })
        .collect()
}

/// Whether a recorded result is final, so `--resume` keeps it: the workstream ran to an
/// end of its own (completed, or failed). Not final: anything stopped or never started
/// because the run was interrupted (`Cancelled`), deferred workstreams (a usage limit, a
/// spent budget), and skips, which are decided again from the final results of their
/// dependencies.
pub fn is_final(r: &WorkstreamResult) -> bool {
    r.status != Status::Skipped
        && r.status != Status::Deferred
        && !r
            .errors
            .iter()
            .any(|e| e.error_type == ErrorType::Cancelled)
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
fn run_id_taken(ws: &Workspace) -> impl Fn(&str) -> bool + '_ {
    let with_branches: HashSet<String> = git::Repo::open(&ws.repo)
        .and_then(|h| h.ws_branches())
        .map(|b| b.into_iter().map(|b| b.run_id).collect())
        .unwrap_or_default();
    move |id: &str| with_branches.contains(id) || ws.layout.run_logs(id).exists()
}

/// Write the ids a run was started with, so `--resume` runs the same selection.
fn write_selection(logs: &RunLogs, loaded: &Loaded) {
    let ids: Vec<&str> = loaded
        .valid
        .iter()
        .map(|w| w.id.as_str())
        .chain(loaded.invalid.iter().filter_map(|i| i.id.as_deref()))
        .collect();
    if let Ok(text) = serde_json::to_string(&ids) {
        let _ = std::fs::write(logs.selection(), text);
    }
}

pub(crate) fn read_selection(logs: &RunLogs) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(logs.selection()).ok()?;
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
pub(crate) fn run_is_live(layout: &Layout, run_id: &str) -> bool {
    let path = layout.run_logs(run_id).lock();
    path.is_file() && matches!(RunLock::try_acquire(&path), Ok(None))
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
