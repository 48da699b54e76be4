//! A run several processes share, on one machine or many, through the database (the queue)
//! and a git remote (the base and every branch):
//!
//! - [`coordinate`]: `git ws-run --remote NAME` begins the run, pushes the base to
//!   `refs/ws/<run>/base`, puts the workstreams (their definitions as read here) in the
//!   queue, then works on them like any worker and waits for the one consolidation.
//! - [`join`]: `git ws-run --join RUN|latest --remote NAME` fetches the base and works on the
//!   run until every workstream has its final result.
//!
//! A worker is the dispatch loop over [`QueueWork`] (claims with leases, renewed by a
//! heartbeat) and a [`Completer`] that consumes the loop's events: it pushes each result's
//! commits, records the result only if its claim still holds (the attempt is the fencing
//! token), then pushes the branch. The process that records the last final result does the
//! run's one consolidation, guarded in the database; if it dies, another takes it over once
//! its lease expires.

use super::dispatch::{
    invalid_results, skipped_result, Dispatch, Dispatched, HandedBack, Settled, Wake, WorkSource,
};
use super::events::{Event, Observer, Tee};
use super::execute::RunContext;
use super::finish::{self, let_go_of_slots, write_report};
use super::lease::{self, Contact, ContactNews, Shared};
use super::record::Db;
use super::{
    begin, ready_pool, run_context, warn_uncommitted, work_plan, write_selection, Prepared,
    Resolved, RunOutcome, SharedOutcome, Start, WorkPlan,
};
use crate::consolidate;
use crate::db::{
    ClaimOutcome, Completion, ConsolidationClaim, QueueItem, QueueSettings, RunState, SharedRun,
};
use crate::error::Error;
use crate::git::{self, remote, RepoPaths};
use crate::layout::RunLogs;
use crate::model::{ErrorType, RunInfo, Status, WorkstreamResult, WsError};
use crate::plan::Scheduler;
use crate::workstream::{self, Loaded, Workstream};
use chrono::Utc;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;

/// The claims a worker holds: workstream id → attempt (its fencing token). Shared by the
/// source that claims, the heartbeat that renews and the completer that settles.
type Claims = Arc<Mutex<HashMap<String, i64>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn lease_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What every part of one worker shares.
#[derive(Clone)]
struct Worker {
    db: Db,
    repo: RepoPaths,
    /// The remote's name (`.`: this repository; nothing is pushed or fetched).
    remote: String,
    run_id: String,
    name: String,
    lease: Duration,
    settings: QueueSettings,
    claims: Claims,
    /// Woken when a result is accepted (a dependent may be ready now).
    notify: Arc<Notify>,
    /// Set when an accepted result left nothing unfinished in the run.
    run_done: Arc<AtomicBool>,
    /// Set when the database refused a final result for longer than [`GIVE_UP_AFTER`]: the
    /// worker claims nothing more, keeps the result in the spool and exits 3.
    gave_up: Arc<AtomicBool>,
}

/// How long a worker keeps trying to record a final result the database refuses before it
/// spools it, stops taking work and leaves the run (exit 3, `--join` records it later).
const GIVE_UP_AFTER: Duration = Duration::from_secs(10);

impl Worker {
    fn lease_ms(&self) -> i64 {
        lease_ms(self.lease)
    }

    fn pushes(&self) -> bool {
        self.remote != "."
    }

    /// `git push --atomic` with up to three tries.
    async fn push(&self, refspecs: Vec<String>) -> Result<(), git::GitError> {
        if !self.pushes() || refspecs.is_empty() {
            return Ok(());
        }
        let mut last = None;
        for attempt in 0..3 {
            let (repo, remote, specs) = (self.repo.clone(), self.remote.clone(), refspecs.clone());
            let res = tokio::task::spawn_blocking(move || remote::push(&repo, &remote, &specs))
                .await
                .unwrap_or_else(|e| Err(git::GitError::Other(e.to_string())));
            match res {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(lease::backoff(attempt, lease::MAX_BACKOFF)).await;
        }
        Err(last.expect("tried"))
    }

    async fn fetch(&self, refspecs: Vec<String>) -> Result<(), git::GitError> {
        if !self.pushes() {
            return Ok(());
        }
        let (repo, remote) = (self.repo.clone(), self.remote.clone());
        tokio::task::spawn_blocking(move || remote::fetch(&repo, &remote, &refspecs))
            .await
            .unwrap_or_else(|e| Err(git::GitError::Other(e.to_string())))
    }
}

// ---------------------------------------------------------------------------------------
// Starting and joining

/// `git ws-run --remote NAME`: begin a shared run, push its base, fill the queue, then work
/// on it and wait for its consolidation.
pub(super) async fn coordinate(p: Prepared) -> Result<RunOutcome, Error> {
    let Prepared {
        mut r,
        mut db,
        start,
        mut observer,
        cancel,
        ..
    } = p;
    let shared = r.shared.clone().expect("a shared run");
    r.ws.layout.hide_state_dir();
    let uncommitted = warn_uncommitted(&r.ws.cwd, &r.base);
    let history = db.expected_durations().unwrap_or_default();
    let begun = begin(&mut db, &mut r, start)?;
    let run_id = begun.run_id.clone();
    let logs = r.ws.layout.run_logs(&run_id);
    logs.create();
    write_selection(&logs, &begun.loaded);

    // The base, for every worker to fetch.
    if shared.remote != "." {
        let (repo, remote_name) = (r.ws.repo.clone(), shared.remote.clone());
        let spec = format!("{}:{}", r.base, remote::base_ref(&run_id));
        let pushed =
            tokio::task::spawn_blocking(move || remote::push(&repo, &remote_name, &[spec]))
                .await
                .unwrap_or_else(|e| Err(git::GitError::Other(e.to_string())));
        if let Err(e) = pushed {
            let _ = db.set_run_state(&run_id, RunState::Interrupted);
            return Err(Error::new(format!(
                "failed to push the base of {run_id} to remote {}: {e}",
                shared.remote
            )));
        }
    }

    let settings = QueueSettings {
        timeout_secs: r.timeout.as_secs_f64(),
        fail_fast: r.fail_fast,
        lease_ms: lease_ms(shared.lease),
    };
    let (items, settled) = queue_items(&r, &run_id, &begun.loaded, &history);
    db.create_shared_run(
        &SharedRun {
            run_id: run_id.clone(),
            remote: shared.remote_url.clone(),
            base: r.base.clone(),
            settings: settings.clone(),
            consolidated_at: None,
            consolidator: None,
            consolidations: 0,
        },
        &items,
        &settled,
    )?;
    observer.event(Event::Note(&format!(
        "{run_id} is shared through remote {}: other clones join it with `git ws-run --join {run_id} --remote NAME --db URL`",
        shared.remote
    )));
    let mut notes = Vec::new();
    if let Some(w) = uncommitted.await.ok().flatten() {
        observer.event(Event::Note(&w));
        notes.push(w);
    }
    for w in &begun.loaded.warnings {
        observer.event(Event::Note(w));
    }
    for res in &settled {
        observer.event(Event::WorkstreamFinished { result: res });
    }
    run_worker(WorkerRun {
        r,
        db: Db::spawn(db),
        run_id,
        info: begun.info,
        settings,
        shared,
        observer,
        cancel,
        notes,
        logs,
        coordinator: true,
        total: items.len(),
    })
    .await
}

/// The queue items of a run's valid workstreams (their definitions read again from their
/// files, which is what every worker runs) with their priorities from `history`, and the
/// results known before anything runs: invalid files, and what they skip.
fn queue_items(
    r: &Resolved,
    run_id: &str,
    loaded: &Loaded,
    history: &HashMap<String, f64>,
) -> (Vec<QueueItem>, Vec<WorkstreamResult>) {
    let WorkPlan {
        done,
        to_run,
        jobs,
        fail_now,
        ..
    } = work_plan(loaded, &[], history);
    let mut sched = Scheduler::new(jobs);
    let priority: HashMap<String, f64> = to_run
        .iter()
        .map(|w| (w.id.clone(), sched.priority(&w.id).unwrap_or(0.0)))
        .collect();
    let mut settled = invalid_results(run_id, loaded, &done);
    let mut invalid_now: Vec<(String, String)> = Vec::new();
    let mut items = Vec::new();
    for w in &to_run {
        match std::fs::read_to_string(r.workstreams_dir.join(&w.file)) {
            Ok(definition) => items.push(QueueItem {
                id: w.id.clone(),
                file: w.file.clone(),
                definition,
                depends_on: w.depends_on.clone(),
                priority: priority.get(&w.id).copied().unwrap_or(0.0),
                expected_secs: history.get(&w.id).copied(),
            }),
            Err(e) => invalid_now.push((
                w.id.clone(),
                format!("{}: failed to read file: {e}", w.file),
            )),
        }
    }
    let valid: HashMap<&str, &Workstream> =
        loaded.valid.iter().map(|w| (w.id.as_str(), w)).collect();
    for (id, why) in &invalid_now {
        let mut res =
            WorkstreamResult::new(run_id, crate::model::UNASSIGNED_AGENT, id, Status::Failed);
        res.source_file = valid.get(id.as_str()).map(|w| w.file.clone());
        res.errors
            .push(WsError::new(ErrorType::InvalidWorkstream, why.clone()));
        settled.push(res);
    }
    for id in fail_now.iter().chain(invalid_now.iter().map(|(id, _)| id)) {
        for skip in sched.finish(id, false) {
            settled.push(skipped_result(
                run_id,
                &skip.id,
                valid.get(skip.id.as_str()).copied(),
                &skip.reason,
                ErrorType::DependencyFailed,
            ));
        }
    }
    (items, settled)
}

/// Which shared run `--join SPEC` means, now: `Ok(None)` when `latest` has none yet.
async fn find_run(db: &Db, spec: &str) -> Result<Option<String>, Error> {
    if spec == "latest" {
        return Ok(db.call(|db| db.latest_open_shared_run()).await?);
    }
    let spec = spec.to_string();
    Ok(Some(db.call(move |db| db.resolve_run_id(&spec)).await?))
}

/// Why `--join SPEC` has nothing to do, if it has not: the run finished. An error when the
/// run is not a shared one.
pub(crate) fn nothing_to_join(
    db: &mut crate::db::ConsolidationDatabase,
    spec: &str,
) -> Result<Option<String>, Error> {
    if spec == "latest" {
        return Ok(None);
    }
    let run_id = db.resolve_run_id(spec)?;
    match db.shared_run(&run_id)? {
        None => Err(Error::new(format!(
            "--join {run_id}: it is not a shared run (start one with git ws-run --remote NAME)"
        ))),
        Some(run) if run.consolidated_at.is_some() => Ok(Some(format!(
            "nothing to join: {run_id} finished (git ws-report {run_id} shows it)"
        ))),
        Some(_) => Ok(None),
    }
}

/// `git ws-run --join RUN|latest --remote NAME`: fetch the run's base and work on it until
/// every workstream has its final result.
pub(super) async fn join(p: Prepared) -> Result<RunOutcome, Error> {
    let Prepared {
        mut r,
        db,
        start,
        mut observer,
        cancel,
        ..
    } = p;
    let Start::Join { spec } = start else {
        unreachable!("join starts from Start::Join")
    };
    let shared = r.shared.clone().expect("--join has a remote");
    let db = Db::spawn(db);
    let run_id = wait_for_run(&db, &spec, &cancel, observer.as_mut()).await?;
    let id = run_id.clone();
    let run = db
        .call(move |db| db.shared_run(&id))
        .await?
        .ok_or_else(|| {
            Error::new(format!(
                "--join {run_id}: it is not a shared run (start one with git ws-run --remote NAME)"
            ))
        })?;
    if run.consolidated_at.is_some() {
        return Err(Error::new(format!(
            "nothing to join: {run_id} finished (git ws-report {run_id} shows it)"
        )));
    }
    // The run's base, from the remote.
    r.base = run.base.clone();
    fetch_base(&r.ws.repo, &shared, &run).await?;
    r.ws.layout.hide_state_dir();
    let id = run_id.clone();
    let info = db
        .call(move |db| db.run_info(&id))
        .await?
        .ok_or_else(|| Error::new(format!("--join: no run {run_id}")))?;
    let id = run_id.clone();
    let counts = db.call(move |db| db.queue_counts(&id)).await?;
    let logs = r.ws.layout.run_logs(&run_id);
    logs.create();
    run_worker(WorkerRun {
        r,
        db,
        run_id,
        info,
        settings: run.settings,
        shared,
        observer,
        cancel,
        notes: Vec::new(),
        logs,
        coordinator: false,
        total: counts.unfinished().max(0) as usize,
    })
    .await
}

/// `--join SPEC`: the run to join, once there is one (`latest` waits for a shared run to be
/// started, saying so once; Ctrl-C stops the wait).
async fn wait_for_run(
    db: &Db,
    spec: &str,
    cancel: &watch::Receiver<bool>,
    observer: &mut dyn Observer,
) -> Result<String, Error> {
    let mut said = false;
    loop {
        if let Some(id) = find_run(db, spec).await? {
            return Ok(id);
        }
        if !said {
            observer.event(Event::Note(
                "no shared run is open in the database yet: waiting for one (Ctrl-C stops)",
            ));
            said = true;
        }
        let mut c = cancel.clone();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = c.changed() => {}
        }
        if *cancel.borrow() {
            return Err(Error::new(
                "interrupted while waiting for a shared run to join",
            ));
        }
    }
}

/// Fetch the base of shared run `run` from the remote (unless the remote is this
/// repository), and check it is here.
async fn fetch_base(repo: &RepoPaths, shared: &Shared, run: &SharedRun) -> Result<(), Error> {
    let run_id = &run.run_id;
    if shared.remote != "." {
        let (repo, remote_name) = (repo.clone(), shared.remote.clone());
        let base = remote::base_ref(run_id);
        let spec = format!("+{base}:{base}");
        let fetched =
            tokio::task::spawn_blocking(move || remote::fetch(&repo, &remote_name, &[spec]))
                .await
                .unwrap_or_else(|e| Err(git::GitError::Other(e.to_string())));
        if let Err(e) = fetched {
            return Err(Error::new(format!(
                "failed to fetch the base of {run_id} from remote {}: {e}",
                shared.remote
            )));
        }
    }
    if !remote::has_commit(repo, &run.base) {
        return Err(Error::new(format!(
            "failed to join {run_id}: its base {} is not in this repository (is remote {} the run's remote, {}?)",
            &run.base[..run.base.len().min(12)],
            shared.remote,
            run.remote
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// One worker

struct WorkerRun {
    r: Resolved,
    db: Db,
    run_id: String,
    info: RunInfo,
    settings: QueueSettings,
    shared: Shared,
    observer: Box<dyn Observer>,
    cancel: watch::Receiver<bool>,
    notes: Vec<String>,
    logs: RunLogs,
    /// The process that started the run: it waits for the consolidation.
    coordinator: bool,
    /// Workstreams for the progress display.
    total: usize,
}

/// Work on a shared run until nothing is left (or Ctrl-C), then take part in its
/// consolidation: do it if it falls to this process; the coordinator also waits for it.
async fn run_worker(w: WorkerRun) -> Result<RunOutcome, Error> {
    let WorkerRun {
        r,
        db,
        run_id,
        info,
        settings,
        shared,
        mut observer,
        cancel,
        notes,
        logs,
        coordinator,
        total,
    } = w;
    let worker = Worker::new(db, &r, &run_id, &shared, settings);
    worker.register(r.agents).await?;
    let mut notes = notes;
    adopt_spooled(&worker, &r, &mut notes).await;
    observer.event(Event::RunStarted {
        run_id: &run_id,
        total,
        agents: r.agents,
        jobs: &[],
    });
    let (beat, news) = Heartbeat::start(&worker);
    let timeout = Duration::from_secs_f64(worker.settings.timeout_secs.max(0.001));
    let ctx = Arc::new(run_context(
        &r,
        &run_id,
        logs,
        Some(worker.name.clone()),
        timeout,
    ));
    let mut shift = Shift {
        work: QueueWork::new(worker.clone(), ctx.clone(), news),
        completer: Completer::start(worker.clone()),
        consolidation: beat.consolidation.clone(),
        w: worker,
        r,
        info,
        observer,
        cancel,
        coordinator,
        notes,
        ctx,
    };
    let ended = shift.work_until_done().await;
    beat.stop().await;
    Ok(shift.clock_out(ended).await)
}

impl Worker {
    /// Worker `shared.worker` of run `run_id`, under the run's queue settings.
    fn new(db: Db, r: &Resolved, run_id: &str, shared: &Shared, settings: QueueSettings) -> Worker {
        Worker {
            db,
            repo: r.ws.repo.clone(),
            remote: shared.remote.clone(),
            run_id: run_id.to_string(),
            name: shared.worker.clone(),
            lease: Duration::from_millis(settings.lease_ms.max(1) as u64),
            settings,
            claims: Arc::new(Mutex::new(HashMap::new())),
            notify: Arc::new(Notify::new()),
            run_done: Arc::new(AtomicBool::new(false)),
            gave_up: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Sign this worker up for the run, with its agent count.
    async fn register(&self, agents: usize) -> Result<(), Error> {
        let (id, name) = (self.run_id.clone(), self.name.clone());
        self.db
            .call(move |db| db.register_worker(&id, &name, agents))
            .await?;
        Ok(())
    }
}

/// The heartbeat task ([`heartbeat`]): renews the claims, and the consolidation while it is
/// held.
struct Heartbeat {
    /// The consolidation's token while this worker holds it.
    consolidation: Arc<Mutex<Option<i64>>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Heartbeat {
    /// Start beating for `w`; the receiver gets its news (lost claims, lost contact).
    fn start(w: &Worker) -> (Heartbeat, mpsc::UnboundedReceiver<News>) {
        let consolidation = Arc::new(Mutex::new(None));
        let (news_tx, news_rx) = mpsc::unbounded_channel();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(heartbeat(
            w.clone(),
            consolidation.clone(),
            news_tx,
            stopped,
        ));
        let beat = Heartbeat {
            consolidation,
            stop,
            task,
        };
        (beat, news_rx)
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// How a worker's time on a shared run ended.
#[derive(Default)]
struct Ended {
    interrupted: bool,
    /// The whole run, consolidated, when it finished while this worker was on it.
    finished: Option<RunOutcome>,
    /// Whether this worker did the consolidation.
    consolidated_here: bool,
}

/// One worker's time on a shared run: what its turns of dispatching and consolidating
/// share.
struct Shift {
    w: Worker,
    r: Resolved,
    info: RunInfo,
    observer: Box<dyn Observer>,
    cancel: watch::Receiver<bool>,
    /// The process that started the run: it waits for the consolidation.
    coordinator: bool,
    notes: Vec<String>,
    ctx: Arc<RunContext>,
    work: QueueWork,
    completer: Completer,
    /// The consolidation's token while this worker holds it (the heartbeat renews it).
    consolidation: Arc<Mutex<Option<i64>>>,
}

impl Shift {
    /// Turns of dispatching (until the queue has nothing more for this worker) and of asking
    /// for the consolidation, until the run is finished, this worker leaves it, or Ctrl-C.
    async fn work_until_done(&mut self) -> Ended {
        loop {
            if self.dispatch_turn().await {
                return Ended {
                    interrupted: true,
                    ..Ended::default()
                };
            }
            // Every result of this worker recorded before asking who consolidates.
            self.completer.flush().await;
            if self.w.gave_up.load(Ordering::SeqCst) {
                // The database refuses this worker's results: leave with them spooled.
                return Ended::default();
            }
            if let Some(ended) = self.consolidation_turn().await {
                return ended;
            }
        }
    }

    /// One turn of the dispatch loop over the queue, then the agents' worktrees let go of
    /// (the branches must not stay checked out here while the consolidation fetches).
    /// Whether the run was interrupted.
    async fn dispatch_turn(&mut self) -> bool {
        let initial = ready_pool(&self.r, false, &mut self.notes).await;
        let Dispatched {
            slots,
            interrupted,
            notes,
        } = {
            let mut events = Tee(&mut self.completer, self.observer.as_mut());
            Dispatch::new(self.ctx.clone(), self.r.agents)
                .run(&mut self.work, initial, &mut events, self.cancel.clone())
                .await
        };
        self.notes.extend(notes);
        let r = &self.r;
        self.notes.extend(
            let_go_of_slots(
                slots,
                r.base.clone(),
                r.keep_worktrees,
                r.keep_ignored.clone(),
            )
            .await,
        );
        interrupted
    }

    /// Ask who consolidates the run and act on the answer: consolidate it here, read it
    /// back when another worker did, or leave. `None`: workstreams became unfinished again
    /// (given back): work on.
    async fn consolidation_turn(&mut self) -> Option<Ended> {
        let turn = take_consolidation(
            &self.w,
            self.coordinator,
            &self.cancel,
            self.observer.as_mut(),
        )
        .await;
        Some(match turn {
            Turn::Mine(token) => {
                *lock(&self.consolidation) = Some(token);
                self.observer.event(Event::Consolidating);
                let out =
                    consolidate_shared(&self.w, &self.r, &mut self.info, token, &mut self.notes)
                        .await;
                *lock(&self.consolidation) = None;
                let consolidated_here = out.is_some();
                let finished = match out {
                    // Another worker finished it after all: read it.
                    None if self.coordinator => load_finished(&self.w, &self.r).await.ok(),
                    out => out,
                };
                Ended {
                    interrupted: false,
                    finished,
                    consolidated_here,
                }
            }
            Turn::Done => Ended {
                finished: load_finished(&self.w, &self.r).await.ok(),
                ..Ended::default()
            },
            Turn::Leave => Ended::default(),
            Turn::Interrupted => Ended {
                interrupted: true,
                ..Ended::default()
            },
            Turn::Again => return None,
        })
    }

    /// Leave the run: every result recorded, the claims handed back here returned to the
    /// queue, the worker signed off; then the outcome (the whole run's when it finished,
    /// else the run so far), with the notify command run and every note shown.
    async fn clock_out(self, ended: Ended) -> RunOutcome {
        let Shift {
            w,
            r,
            info,
            mut observer,
            mut notes,
            mut work,
            completer,
            ..
        } = self;
        let mut done = completer.finish().await;
        notes.extend(work.finish().await);
        notes.extend(std::mem::take(&mut done.notes));
        let unrecorded = spool_refused(&w, &r, &info, std::mem::take(&mut done.unrecorded));
        let shared = SharedOutcome {
            worker: w.name.clone(),
            ran: done.accepted,
            returned: std::mem::take(&mut work.returned),
            rejected: done.rejected,
            consolidated_here: ended.consolidated_here,
            run_finished: ended.finished.is_some(),
        };
        let (id, name) = (w.run_id.clone(), w.name.clone());
        let _ = w.db.call(move |db| db.leave(&id, &name)).await;
        let mut outcome = match ended.finished {
            Some(o) => o,
            None => run_so_far(&w, &r, &info, ended.interrupted).await,
        };
        outcome.interrupted = ended.interrupted;
        outcome.unrecorded = unrecorded;
        notes.append(&mut outcome.notes);
        outcome.notes = notes;
        outcome.shared = Some(shared);
        let notified = crate::agent_io::notify::after_run(&outcome).await;
        outcome.notes.extend(notified);
        for n in &outcome.notes {
            observer.event(Event::Note(n));
        }
        outcome
    }
}

/// Keep the final results the database refused in the run's spool file (with their
/// attempts, beside what an earlier worker here kept), said on stderr; what the outcome
/// says about them (the run exits 3).
fn spool_refused(
    w: &Worker,
    r: &Resolved,
    info: &RunInfo,
    refused: Vec<(WorkstreamResult, i64)>,
) -> Vec<crate::outcome::Unrecorded> {
    if refused.is_empty() {
        return Vec::new();
    }
    let layout = &r.ws.layout;
    let path = layout.spool(&w.run_id);
    let db = w.db.location().display().to_string();
    let mut entries: Vec<super::spool::Entry> = super::spool::read(&path)
        .into_iter()
        .filter(|e| {
            !refused
                .iter()
                .any(|(x, _)| x.workstream_id == e.result.workstream_id)
        })
        .collect();
    entries.extend(refused.iter().map(|(res, attempt)| super::spool::Entry {
        db: db.clone(),
        run: info.clone(),
        result: res.clone(),
        attempt: Some(*attempt),
    }));
    let spool = match super::spool::save(layout, &w.run_id, &entries) {
        Ok(p) => Some(p),
        Err(e) => {
            super::record::say(&format!(
                "failed to write the spool file {} ({e}): the unrecorded results are kept in memory only",
                path.display()
            ));
            None
        }
    };
    refused
        .into_iter()
        .map(|(res, _)| crate::outcome::Unrecorded {
            workstream_id: res.workstream_id,
            status: res.status,
            branch: res.branch,
            spool: spool.clone(),
        })
        .collect()
}

/// Before taking work: record the results an earlier worker of this run in this repository
/// kept in the spool because the database refused them, with their attempts (accepted while
/// no other worker took the claim over since), so a `--join` adopts them instead of running
/// them again. What is recorded, or taken over by another worker meanwhile, leaves the
/// spool; what the database still refuses stays.
async fn adopt_spooled(w: &Worker, r: &Resolved, notes: &mut Vec<String>) {
    let path = r.ws.layout.spool(&w.run_id);
    let here = w.db.location().display().to_string();
    let entries = super::spool::read(&path);
    if entries.is_empty() {
        return;
    }
    let mut left = Vec::new();
    for e in entries {
        let Some(attempt) = e.attempt.filter(|_| e.db == here) else {
            left.push(e);
            continue;
        };
        let id = e.result.workstream_id.clone();
        lock(&w.claims).insert(id.clone(), attempt);
        let mut said = Vec::new();
        match complete_one(w, &e.result, &mut said).await {
            Ok(Completion::Accepted { .. }) => {
                // Said like the replay of a local run's spool, whatever the display.
                super::record::warn(&format!(
                    "git ws-run: recorded {id} from the spool {} (the database had refused it): adopted, not run again",
                    path.display()
                ));
            }
            Ok(Completion::Rejected { .. }) => {
                notes.append(&mut said);
            }
            Err(NotRecorded::Refused { .. }) | Err(NotRecorded::Unclaimed(_)) => {
                notes.append(&mut said);
                left.push(e);
            }
        }
    }
    w.gave_up.store(false, Ordering::SeqCst);
    if let Err(e) = super::spool::save(&r.ws.layout, &w.run_id, &left) {
        notes.push(format!("failed to update {}: {e}", path.display()));
    }
}

/// A worker left before the end: the run so far, as the database has it.
async fn run_so_far(w: &Worker, r: &Resolved, info: &RunInfo, interrupted: bool) -> RunOutcome {
    let (id, inf) = (w.run_id.clone(), info.clone());
    let results =
        w.db.call(move |db| db.results(&id))
            .await
            .unwrap_or_default();
    let consolidated =
        consolidate::consolidate(&inf, &results, crate::model::MergeForecast::default());
    RunOutcome {
        integration: None,
        run_id: w.run_id.clone(),
        consolidated,
        results,
        db_path: r.db_path.clone(),
        report_path: None,
        report_error: None,
        interrupted,
        notes: Vec::new(),
        shared: None,
        unrecorded: Vec::new(),
    }
}

/// Whose turn it is to consolidate, from this worker's point of view.
enum Turn {
    /// This worker's, with this token.
    Mine(i64),
    /// Done (by another worker).
    Done,
    /// Someone else's, and this worker does not wait for it.
    Leave,
    /// Workstreams became unfinished again (given back): work on.
    Again,
    Interrupted,
}

/// Ask for the consolidation: a joining worker takes it or leaves; the coordinator waits
/// until it is done, and takes it over if its holder's lease expires.
async fn take_consolidation(
    w: &Worker,
    coordinator: bool,
    cancel: &watch::Receiver<bool>,
    observer: &mut dyn Observer,
) -> Turn {
    let mut said = false;
    let mut failures = 0u32;
    loop {
        let (run, name, ms) = (w.run_id.clone(), w.name.clone(), w.lease_ms());
        match w
            .db
            .call(move |db| db.claim_consolidation(&run, &name, ms))
            .await
        {
            Ok(ConsolidationClaim::Mine { token }) => return Turn::Mine(token),
            Ok(ConsolidationClaim::Done { .. }) => return Turn::Done,
            Ok(ConsolidationClaim::NotReady { .. }) => return Turn::Again,
            Ok(ConsolidationClaim::Busy { by }) => {
                if !coordinator {
                    return Turn::Leave;
                }
                if !said {
                    observer.event(Event::Note(&format!(
                        "waiting for worker {by} to consolidate the run"
                    )));
                    said = true;
                }
                failures = 0;
            }
            Err(e) => {
                if !coordinator {
                    observer.event(Event::Note(&format!(
                        "failed to ask who consolidates the run (another worker will): {e}"
                    )));
                    return Turn::Leave;
                }
                if failures == 0 {
                    observer.event(Event::Note(&format!(
                        "failed to reach the database to consolidate the run; retrying: {e}"
                    )));
                }
                failures += 1;
            }
        }
        let pause = if failures > 0 {
            lease::backoff(failures, lease::MAX_BACKOFF)
        } else {
            lease::poll_every(w.lease) * 2
        };
        let mut c = cancel.clone();
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = c.changed() => {}
        }
        if *cancel.borrow() {
            return Turn::Interrupted;
        }
    }
}

// ---------------------------------------------------------------------------------------
// The heartbeat

/// What the heartbeat tells the dispatch loop.
#[derive(Debug)]
enum News {
    /// These claims are no longer this worker's.
    Lost(Vec<String>),
    /// No answer from the database for longer than the lease.
    ContactLost(Duration, String),
    ContactRestored,
}

/// Renew this worker's leases (and the consolidation's, while held) three times per lease;
/// report lost claims and lost or restored contact with the database.
async fn heartbeat(
    w: Worker,
    consolidation: Arc<Mutex<Option<i64>>>,
    news: mpsc::UnboundedSender<News>,
    mut stop: watch::Receiver<bool>,
) {
    let every = lease::heartbeat_every(w.lease);
    let mut contact = Contact::new(w.lease, Instant::now());
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let held: Vec<(String, i64)> = lock(&w.claims)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let token = *lock(&consolidation);
        let (run, name, ms) = (w.run_id.clone(), w.name.clone(), w.lease_ms());
        let call = w.db.call(move |db| {
            let lost = db.renew(&run, &name, &held, ms)?;
            if let Some(t) = token {
                db.renew_consolidation(&run, t, ms)?;
            }
            Ok(lost)
        });
        // A call stuck on a dead connection counts as a miss.
        let answer = match tokio::time::timeout(every, call).await {
            Ok(a) => a.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {}ms", every.as_millis())),
        };
        let now = Instant::now();
        match answer {
            Ok(lost) => {
                if contact.reached(now) == ContactNews::Restored {
                    let _ = news.send(News::ContactRestored);
                }
                if !lost.is_empty() {
                    let _ = news.send(News::Lost(lost));
                }
            }
            Err(e) => {
                if let ContactNews::Lost(silent) = contact.missed(now) {
                    let _ = news.send(News::ContactLost(silent, e));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The source of ready work: the queue

/// The ready work of a shared run: claims from the database queue (the highest priority
/// among the ready ones, or one whose lease expired), held under a lease the heartbeat
/// renews. Results are settled by the database when the [`Completer`] records them; a
/// workstream stopped by Ctrl-C or a lost lease goes back to the queue.
pub(super) struct QueueWork {
    w: Worker,
    ctx: Arc<RunContext>,
    news: mpsc::UnboundedReceiver<News>,
    /// The last claim found nothing: ask again at the next turn of the loop.
    dry: bool,
    /// No contact with the database: claim nothing until it is back.
    outage: bool,
    /// What the last empty claim said is still without a final result in the run.
    unfinished: Option<i64>,
    /// Whether the last failed claim was said already.
    said_unreachable: bool,
    /// Claims lost while their workstream ran here.
    lost: HashSet<String>,
    stops: Vec<(Option<String>, String)>,
    notes: Vec<String>,
    handed_back: Vec<(Workstream, BTreeSet<usize>, String)>,
    /// Workstreams given back to the queue.
    returned: Vec<String>,
    /// Database calls still on their way (claims given back, unusable definitions).
    pending: JoinSet<Option<String>>,
    /// This worker deferred the queue once the shared `--budget` was spent.
    budget_deferred: bool,
}

impl QueueWork {
    /// A stacked workstream starts from its dependencies' branches, which other workers
    /// pushed: fetch them first (a failure is a note; the start then lacks that work).
    /// A dependency's completion is recorded before its branch is pushed; until then its
    /// commits are on the remote under its attempt ref, pushed before the completion. So
    /// both are fetched (as globs: what is not there is no error), and a dependency whose
    /// branch is not there yet gets it here from its newest attempt ref — the completed one:
    /// a dependent is claimed only once its dependencies completed.
    async fn fetch_dependencies(&mut self, ws: &Workstream) {
        if !ws.stack || ws.depends_on.is_empty() || !self.w.pushes() {
            return;
        }
        let run = self.w.run_id.clone();
        let mut specs = Vec::new();
        for d in &ws.depends_on {
            let b = super::execute::branch_name(&run, d);
            specs.push(format!("+refs/heads/{b}*:refs/heads/{b}*"));
            let a = format!("{}{d}/", remote::attempts_prefix(&run));
            specs.push(format!("+{a}*:{a}*"));
        }
        if let Err(e) = self.w.fetch(specs).await {
            self.notes.push(format!(
                "failed to fetch the branches of {}'s dependencies from remote {}: {e}",
                ws.id, self.w.remote
            ));
            return;
        }
        let (repo, deps) = (self.w.repo.clone(), ws.depends_on.clone());
        let made = tokio::task::spawn_blocking(move || branches_from_attempts(&repo, &run, &deps))
            .await
            .unwrap_or_else(|e| vec![format!("git task panicked: {e}")]);
        self.notes.extend(made);
    }

    fn new(w: Worker, ctx: Arc<RunContext>, news: mpsc::UnboundedReceiver<News>) -> QueueWork {
        QueueWork {
            w,
            ctx,
            news,
            dry: false,
            outage: false,
            unfinished: None,
            said_unreachable: false,
            lost: HashSet::new(),
            stops: Vec::new(),
            notes: Vec::new(),
            handed_back: Vec::new(),
            returned: Vec::new(),
            pending: JoinSet::new(),
            budget_deferred: false,
        }
    }

    /// Give a claim back to the queue, in the background.
    fn give_back(&mut self, id: &str, why: &str) {
        let attempt = lock(&self.w.claims).remove(id);
        self.returned.push(id.to_string());
        self.notes
            .push(format!("{id} went back to the queue ({why})"));
        if let Some(a) = attempt {
            let (db, run, id) = (self.w.db.clone(), self.w.run_id.clone(), id.to_string());
            self.pending.spawn(async move {
                let ws = id.clone();
                db.call(move |db| db.release(&run, &ws, a))
                    .await
                    .err()
                    .map(|e| format!("failed to give {id} back to the queue (its lease will expire instead): {e}"))
            });
        }
    }

    /// A claimed definition this binary cannot read: record it as invalid, fenced like any
    /// result.
    fn unusable(&mut self, id: String, file: String, attempt: i64, why: String) {
        let mut res = WorkstreamResult::new(
            &self.w.run_id,
            crate::model::UNASSIGNED_AGENT,
            &id,
            Status::Failed,
        );
        res.source_file = Some(file);
        res.errors
            .push(WsError::new(ErrorType::InvalidWorkstream, why));
        let now = Utc::now();
        res.start_time = Some(now);
        res.end_time = Some(now);
        let (db, fail_fast, run) = (
            self.w.db.clone(),
            self.w.settings.fail_fast,
            self.w.run_id.clone(),
        );
        self.pending.spawn(async move {
            db.call(move |db| {
                db.complete(&res, attempt, fail_fast, &|i, f, d, why| {
                    skip_result(&run, i, f, d, why)
                })
            })
            .await
            .err()
            .map(|e| format!("failed to record {id} as invalid: {e}"))
        });
    }

    /// Wait for the database calls still on their way; their notes.
    async fn finish(&mut self) -> Vec<String> {
        // Claims handed back and never started go back too.
        for (ws, _, _) in std::mem::take(&mut self.handed_back) {
            self.give_back(&ws.id, "this worker stopped");
        }
        let mut notes = std::mem::take(&mut self.notes);
        while let Some(done) = self.pending.join_next().await {
            if let Ok(Some(n)) = done {
                notes.push(n);
            }
        }
        notes
    }
}

impl QueueWork {
    /// A shared run's `--budget` is one sum from the database, every worker's recorded
    /// costs: once it is spent, what is still queued is deferred (once per worker; a
    /// failed read claims as before).
    async fn defer_if_budget_spent(&mut self) {
        let Some(budget) = self.ctx.agent_settings.budget_usd else {
            return;
        };
        if self.budget_deferred {
            return;
        }
        let run = self.w.run_id.clone();
        let Ok(spent) = self.w.db.call(move |db| db.run_spent(&run)).await else {
            return;
        };
        let Some(why) = crate::agents::budget_reached(Some(budget), spent) else {
            return;
        };
        self.budget_deferred = true;
        let run = self.w.run_id.clone();
        let deferred = self
            .w
            .db
            .call(move |db| {
                db.defer_queued(&run, &|i, f, d, why| defer_result(&run, i, f, d, why), &why)
            })
            .await;
        match deferred {
            Ok(ids) if !ids.is_empty() => self.notes.push(format!(
                "the run's --budget was spent (one sum over every worker): deferred {}",
                ids.join(", ")
            )),
            Ok(_) => {}
            Err(e) => self
                .notes
                .push(format!("failed to defer the queued workstreams: {e}")),
        }
    }
}

/// The deferred result the queue records for a workstream a spent budget did not start.
fn defer_result(
    run_id: &str,
    id: &str,
    file: &str,
    definition: &str,
    reason: &str,
) -> WorkstreamResult {
    let mut res = skip_result(run_id, id, file, definition, reason);
    res.status = Status::Deferred;
    for e in &mut res.errors {
        e.error_type = ErrorType::BudgetExceeded;
    }
    res
}

/// The skipped result the queue records for a dependent of a failure.
fn skip_result(
    run_id: &str,
    id: &str,
    file: &str,
    definition: &str,
    reason: &str,
) -> WorkstreamResult {
    let ws = workstream::parse_workstream(file, definition.as_bytes())
        .ok()
        .map(|(w, _)| w);
    let mut res = skipped_result(run_id, id, ws.as_ref(), reason, ErrorType::DependencyFailed);
    if res.source_file.is_none() && !file.is_empty() {
        res.source_file = Some(file.to_string());
    }
    res
}

impl WorkSource for QueueWork {
    async fn next_for(&mut self, k: usize) -> Option<Workstream> {
        {
            if let Some(i) = self
                .handed_back
                .iter()
                .position(|(_, tried, _)| !tried.contains(&k))
            {
                return Some(self.handed_back.remove(i).0);
            }
            loop {
                if self.dry || self.outage || self.w.gave_up.load(Ordering::SeqCst) {
                    return None;
                }
                self.defer_if_budget_spent().await;
                let (run, name, agent, ms) = (
                    self.w.run_id.clone(),
                    self.w.name.clone(),
                    self.ctx.agent_id(k),
                    self.w.lease_ms(),
                );
                let claimed = self
                    .w
                    .db
                    .call(move |db| db.claim(&run, &name, &agent, ms))
                    .await;
                let claim = match claimed {
                    Ok(ClaimOutcome::Claimed(c)) => {
                        self.said_unreachable = false;
                        c
                    }
                    Ok(ClaimOutcome::Nothing { unfinished }) => {
                        self.said_unreachable = false;
                        self.unfinished = Some(unfinished);
                        self.dry = true;
                        return None;
                    }
                    Err(e) => {
                        if !self.said_unreachable {
                            self.notes.push(format!(
                                "failed to claim work from the database; retrying: {e}"
                            ));
                            self.said_unreachable = true;
                        }
                        self.dry = true;
                        return None;
                    }
                };
                lock(&self.w.claims).insert(claim.workstream_id.clone(), claim.attempt);
                if let Some(from) = &claim.took_over {
                    self.notes.push(format!(
                        "took over {} from worker {from}: its lease expired (attempt {})",
                        claim.workstream_id, claim.attempt
                    ));
                }
                match workstream::parse_workstream(&claim.file, claim.definition.as_bytes()) {
                    Ok((ws, _)) if ws.id == claim.workstream_id => {
                        self.fetch_dependencies(&ws).await;
                        return Some(ws);
                    }
                    Ok((ws, _)) => {
                        let why = format!(
                            "{}: the queued definition has id {:?}, not {:?}",
                            claim.file, ws.id, claim.workstream_id
                        );
                        self.unusable(claim.workstream_id, claim.file, claim.attempt, why);
                    }
                    Err(bad) => {
                        self.unusable(claim.workstream_id, claim.file, claim.attempt, bad.message);
                    }
                }
            }
        }
    }

    fn handed_back(&mut self) -> &mut Vec<HandedBack> {
        &mut self.handed_back
    }

    fn settle(&mut self, res: WorkstreamResult, interrupted: bool) -> Settled {
        let id = res.workstream_id.clone();
        let lost = self.lost.remove(&id);
        let stopped_here = res
            .errors
            .iter()
            .any(|e| e.error_type == ErrorType::Cancelled);
        if stopped_here && (interrupted || lost) {
            let why = if lost {
                "its lease was lost; another worker runs it"
            } else {
                "this worker was interrupted"
            };
            self.give_back(&id, why);
            return Settled::default();
        }
        // Final: the completer records it if the claim still holds.
        Settled {
            records: vec![res],
            ..Settled::default()
        }
    }

    fn drain(&mut self, _reason: &str, _etype: ErrorType) -> Vec<WorkstreamResult> {
        // What is queued stays queued, for the other workers.
        Vec::new()
    }

    fn waiting(&self) -> usize {
        self.handed_back.len()
    }

    fn exhausted(&self) -> bool {
        self.w.run_done.load(Ordering::SeqCst)
            || self.unfinished == Some(0)
            || self.w.gave_up.load(Ordering::SeqCst)
    }

    fn wake(&self) -> Wake {
        let notify = self.w.notify.clone();
        let poll = lease::poll_every(self.w.lease);
        Box::pin(async move {
            tokio::select! {
                _ = notify.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        })
    }

    fn take_stops(&mut self) -> Vec<(Option<String>, String)> {
        // A new turn of the loop: the queue may have work again.
        self.dry = false;
        while let Ok(news) = self.news.try_recv() {
            match news {
                News::Lost(ids) => {
                    for id in ids {
                        let held = lock(&self.w.claims).contains_key(&id);
                        if held {
                            self.stops.push((
                                Some(id.clone()),
                                format!("lost the claim of {id}: its lease expired and another worker took it over; stopping it here"),
                            ));
                            self.lost.insert(id);
                        }
                    }
                }
                News::ContactLost(silent, e) => {
                    self.outage = true;
                    let held: Vec<String> = lock(&self.w.claims).keys().cloned().collect();
                    self.lost.extend(held.iter().cloned());
                    self.stops.push((
                        None,
                        format!(
                            "cannot reach the database for {} (longer than the {} lease): stopping the {} running workstream(s) here, which other workers take over; last error: {e}",
                            crate::text::duration(silent.as_secs_f64().round()),
                            crate::text::duration(self.w.lease.as_secs_f64()),
                            held.len()
                        ),
                    ));
                }
                News::ContactRestored => {
                    self.outage = false;
                    self.notes
                        .push("the database answers again: taking work again".to_string());
                }
            }
        }
        std::mem::take(&mut self.stops)
    }

    fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    fn leftovers(&mut self) -> Vec<WorkstreamResult> {
        Vec::new()
    }
}

// ---------------------------------------------------------------------------------------
// Recording: the completer

/// One result's recording: the result, the database's answer (or why there was none), notes.
type Recorded = (
    WorkstreamResult,
    Result<Completion, NotRecorded>,
    Vec<String>,
);

/// Why a result was not recorded.
#[derive(Debug)]
enum NotRecorded {
    /// This worker holds no claim on it (nothing to record).
    Unclaimed(String),
    /// The database refused it for [`GIVE_UP_AFTER`]: kept in the spool, with its attempt.
    Refused { attempt: i64, why: String },
}

/// What the completer did.
#[derive(Debug, Default)]
struct Completed {
    accepted: Vec<WorkstreamResult>,
    rejected: Vec<String>,
    notes: Vec<String>,
    /// Final results the database refused, with their attempts (spooled by `clock_out`).
    unrecorded: Vec<(WorkstreamResult, i64)>,
}

/// Records the final results of a worker, as a consumer of the dispatch loop's events:
/// pushes each result's commits under an attempt ref, records the result if its claim
/// still holds (retrying while the database is away: a finished result is never dropped),
/// then pushes its branch. Results are recorded concurrently; none waits for another.
pub(super) struct Completer {
    w: Worker,
    tasks: JoinSet<Recorded>,
    done: Completed,
}

impl Completer {
    fn start(w: Worker) -> Completer {
        Completer {
            w,
            tasks: JoinSet::new(),
            done: Completed::default(),
        }
    }

    fn collect(&mut self, joined: Result<Recorded, tokio::task::JoinError>) {
        match joined {
            Ok((res, outcome, notes)) => {
                self.done.notes.extend(notes);
                match outcome {
                    Ok(Completion::Accepted { .. }) => self.done.accepted.push(res),
                    Ok(Completion::Rejected { .. }) => self.done.rejected.push(res.workstream_id),
                    Err(NotRecorded::Unclaimed(e)) => self.done.notes.push(e),
                    Err(NotRecorded::Refused { attempt, why }) => {
                        self.done.notes.push(why);
                        self.done.unrecorded.push((res, attempt));
                    }
                }
            }
            Err(e) => self
                .done
                .notes
                .push(format!("recording a result failed unexpectedly: {e}")),
        }
    }

    /// Wait until every result handed over so far is recorded.
    async fn flush(&mut self) {
        while let Some(j) = self.tasks.join_next().await {
            self.collect(j);
        }
    }

    async fn finish(mut self) -> Completed {
        self.flush().await;
        self.done
    }
}

impl Observer for Completer {
    fn event(&mut self, event: Event<'_>) {
        let Event::WorkstreamFinished { result } = event else {
            return;
        };
        while let Some(j) = self.tasks.try_join_next() {
            self.collect(j);
        }
        let w = self.w.clone();
        let res = result.clone();
        self.tasks.spawn(async move {
            let mut notes = Vec::new();
            let outcome = complete_one(&w, &res, &mut notes).await;
            (res, outcome, notes)
        });
    }
}

/// For each of `deps` whose branch of run `run_id` is not here: the branch, made at its
/// newest attempt ref (fetched from the remote). Notes on what could not be made.
fn branches_from_attempts(repo: &RepoPaths, run_id: &str, deps: &[String]) -> Vec<String> {
    let mut notes = Vec::new();
    for d in deps {
        let branch = super::execute::branch_name(run_id, d);
        let have = matches!(git::branch_tip(repo, &branch), Ok(Some(_)));
        let prefix = format!("{}{d}/", remote::attempts_prefix(run_id));
        let fetched = remote::refs_under(repo, &prefix).unwrap_or_default();
        // Fetched only to read: the attempt refs stay the remote's (the consolidation
        // deletes them there).
        let names: Vec<String> = fetched.iter().map(|(n, _)| n.clone()).collect();
        let _ = remote::delete_refs(repo, &names);
        let newest = fetched
            .into_iter()
            .filter_map(|(name, sha)| {
                let n: i64 = name.strip_prefix(&prefix)?.parse().ok()?;
                Some((n, sha))
            })
            .max_by_key(|(n, _)| *n);
        if have {
            continue;
        }
        if let Some((_, sha)) = newest {
            if let Err(e) = git::write_integration_branch(repo, &branch, &sha) {
                notes.push(format!(
                    "failed to make the branch {branch} of dependency {d} from its pushed attempt: {e}"
                ));
            }
        }
    }
    notes
}

/// Record one final result of this worker: its commits to the remote under an attempt
/// ref, the fenced completion (retried until the database answers), then its branch.
async fn complete_one(
    w: &Worker,
    res: &WorkstreamResult,
    notes: &mut Vec<String>,
) -> Result<Completion, NotRecorded> {
    let id = res.workstream_id.clone();
    let Some(attempt) = lock(&w.claims).get(&id).copied() else {
        return Err(NotRecorded::Unclaimed(format!(
            "the result of {id} was not recorded: this worker holds no claim on it"
        )));
    };
    let mut res = res.clone();
    let waiting_ref = remote::attempt_ref(&w.run_id, &id, attempt);
    let mut pushed = false;
    if let Some(head) = res.head.clone() {
        match w.push(vec![format!("{head}:{waiting_ref}")]).await {
            Ok(()) => pushed = w.pushes(),
            Err(e) => res.warnings.push(format!(
                "the commits of {id} could not be pushed to remote {}: {e}",
                w.remote
            )),
        }
    }
    let mut tries = 0u32;
    let first_refusal = Instant::now();
    let completion = loop {
        let (r, ff, run) = (res.clone(), w.settings.fail_fast, w.run_id.clone());
        let answer =
            w.db.call(move |db| {
                db.complete(&r, attempt, ff, &|i, f, d, why| {
                    skip_result(&run, i, f, d, why)
                })
            })
            .await;
        match answer {
            Ok(c) => break c,
            Err(e) => {
                if tries == 0 {
                    // Said at once, whatever the display: losing a result is never quiet.
                    super::record::say(&format!(
                        "failed to record {id} in the database ({e}); keeping it and retrying for {}",
                        crate::text::duration(GIVE_UP_AFTER.as_secs_f64())
                    ));
                } else if first_refusal.elapsed() >= GIVE_UP_AFTER {
                    lock(&w.claims).remove(&id);
                    w.gave_up.store(true, Ordering::SeqCst);
                    w.notify.notify_one();
                    let why = format!(
                        "the database refused the result of {id} for {}: kept in the spool; this worker takes no more work (last error: {e})",
                        crate::text::duration(GIVE_UP_AFTER.as_secs_f64())
                    );
                    super::record::say(&why);
                    return Err(NotRecorded::Refused { attempt, why });
                }
                tokio::time::sleep(lease::backoff(tries, lease::MAX_BACKOFF)).await;
                tries += 1;
            }
        }
    };
    lock(&w.claims).remove(&id);
    match &completion {
        Completion::Accepted { unfinished, .. } => {
            if let (Some(head), Some(branch)) = (&res.head, &res.branch) {
                let mut specs = vec![format!("+{head}:refs/heads/{branch}")];
                if pushed {
                    specs.push(format!(":{waiting_ref}"));
                }
                if let Err(e) = w.push(specs).await {
                    notes.push(format!(
                        "failed to push branch {branch} to remote {} (the consolidation pushes it from {waiting_ref}): {e}",
                        w.remote
                    ));
                }
            }
            if *unfinished == 0 {
                w.run_done.store(true, Ordering::SeqCst);
            }
            w.notify.notify_one();
        }
        Completion::Rejected {
            holder,
            attempt: now,
        } => {
            if pushed {
                let _ = w.push(vec![format!(":{waiting_ref}")]).await;
            }
            notes.push(format!(
                "the result of {id} came too late and was not recorded: its lease had expired and attempt {now}{} replaced it",
                holder
                    .as_deref()
                    .map(|h| format!(" by worker {h}"))
                    .unwrap_or_default()
            ));
        }
    }
    Ok(completion)
}

// ---------------------------------------------------------------------------------------
// The one consolidation

/// Consolidate the shared run (this worker holds the consolidation with `token`): fetch
/// every branch, make sure each recorded result's commits are on its remote branch, then
/// forecast, consolidate, write the report and, fenced by the token, the totals. `None`
/// when another worker finished it meanwhile.
async fn consolidate_shared(
    w: &Worker,
    r: &Resolved,
    info: &mut RunInfo,
    token: i64,
    notes: &mut Vec<String>,
) -> Option<RunOutcome> {
    let run_id = w.run_id.clone();
    let fetched = w
        .fetch(vec![
            format!("+refs/heads/ws/{run_id}/*:refs/heads/ws/{run_id}/*"),
            format!("+{p}*:{p}*", p = remote::attempts_prefix(&run_id)),
        ])
        .await;
    if let Err(e) = fetched {
        notes.push(format!(
            "failed to fetch the branches of {run_id} from remote {}: {e}",
            w.remote
        ));
    }
    let id = run_id.clone();
    let read =
        w.db.call(move |db| Ok((db.results(&id)?, db.run_info(&id)?, db.worker_agents(&id)?)))
            .await;
    let (results, stored, agents) = match read {
        Ok(v) => v,
        Err(e) => {
            notes.push(format!(
                "failed to read the results of {run_id} to consolidate: {e}"
            ));
            return None;
        }
    };
    if let Some(s) = stored {
        *info = s;
    }
    info.agents = agents.max(1);
    info.finished_at = Some(Utc::now());
    notes.extend(repair_branches(w, &results).await);
    let (forecast, note) = finish::forecast(&w.repo, &info.base, &results).await;
    notes.extend(note);
    let mut consolidated = consolidate::consolidate(info, &results, forecast);
    consolidated.notes = notes.clone();
    let (report_path, report_error) = write_report(r.ws.layout.reports(), &consolidated, &results);
    let totals = consolidated.clone();
    let finished =
        w.db.call(move |db| db.finish_consolidation(token, &totals))
            .await;
    match finished {
        Ok(true) => Some(RunOutcome {
            integration: None,
            run_id,
            consolidated,
            results,
            db_path: r.db_path.clone(),
            report_path,
            report_error,
            interrupted: false,
            notes: Vec::new(),
            shared: None,
            unrecorded: Vec::new(),
        }),
        Ok(false) => {
            notes.push("another worker finished the consolidation".to_string());
            None
        }
        Err(e) => {
            notes.push(format!("failed to write the totals of {run_id}: {e}"));
            None
        }
    }
}

/// Make every recorded result's branch on the remote point at its recorded head (a worker
/// may have died between recording a result and pushing its branch: its commits wait under
/// an attempt ref), then delete the run's attempt refs. Notes for what could not be done.
async fn repair_branches(w: &Worker, results: &[WorkstreamResult]) -> Vec<String> {
    let mut notes = Vec::new();
    if !w.pushes() {
        return notes;
    }
    let mut specs = Vec::new();
    for res in results {
        let (Some(head), Some(branch)) = (&res.head, &res.branch) else {
            continue;
        };
        if remote::branch_tip(&w.repo, branch).as_deref() == Some(head.as_str()) {
            continue;
        }
        if !remote::has_commit(&w.repo, head) {
            notes.push(format!(
                "the commits of {} ({}) are on no remote ref: its branch could not be pushed",
                res.workstream_id,
                &head[..head.len().min(12)]
            ));
            continue;
        }
        let (repo, b, h) = (w.repo.clone(), branch.clone(), head.clone());
        let set = tokio::task::spawn_blocking(move || git::write_integration_branch(&repo, &b, &h))
            .await
            .unwrap_or_else(|e| Err(git::GitError::Other(e.to_string())));
        match set {
            Ok(()) => specs.push(format!("+{head}:refs/heads/{branch}")),
            Err(e) => notes.push(format!(
                "failed to set branch {branch} to its recorded head: {e}"
            )),
        }
    }
    let prefix = remote::attempts_prefix(&w.run_id);
    let waiting: Vec<String> = remote::refs_under(&w.repo, &prefix)
        .map(|v| v.into_iter().map(|(name, _)| name).collect())
        .unwrap_or_default();
    specs.extend(waiting.iter().map(|name| format!(":{name}")));
    if let Err(e) = w.push(specs).await {
        notes.push(format!(
            "failed to push the run's branches to remote {}: {e}",
            w.remote
        ));
    } else if let Err(e) = remote::delete_refs(&w.repo, &waiting) {
        notes.push(e.to_string());
    }
    notes
}

/// A shared run another worker consolidated, read back from the database; its report
/// written here too.
async fn load_finished(w: &Worker, r: &Resolved) -> Result<RunOutcome, Error> {
    let id = w.run_id.clone();
    let (info, results, forecast, summary) =
        w.db.call(move |db| {
            Ok((
                db.run_info(&id)?,
                db.results(&id)?,
                db.forecast(&id)?,
                db.get_run_summary(&id)?,
            ))
        })
        .await?;
    let info = info.ok_or_else(|| Error::new(format!("no run {}", w.run_id)))?;
    let mut consolidated = consolidate::consolidate(&info, &results, forecast);
    consolidated.notes = summary
        .and_then(|s| s.execution_summary.get("notes").cloned())
        .and_then(|n| serde_json::from_value(n).ok())
        .unwrap_or_default();
    let (report_path, report_error) = write_report(r.ws.layout.reports(), &consolidated, &results);
    Ok(RunOutcome {
        integration: None,
        run_id: w.run_id.clone(),
        consolidated,
        results,
        db_path: r.db_path.clone(),
        report_path,
        report_error,
        interrupted: false,
        notes: Vec::new(),
        shared: None,
        unrecorded: Vec::new(),
    })
}
