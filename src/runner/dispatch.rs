//! The dispatch loop: hands ready workstreams to idle agents from a source of ready work
//! ([`WorkSource`]: the in-memory scheduler of a local run, [`LocalWork`], or the shared
//! queue of a run several machines work on, `super::queue::QueueWork`), reports every final
//! result as an event (the recorder and the display consume them), hands a workstream whose
//! agent could not prepare a worktree to another agent, stops single workstreams when their
//! source says so (a lost lease), and winds down on cancellation or `--fail-fast`.

use super::events::{Event, Observer};
use super::execute::{self, Executed, RunContext};
use crate::agents::limits::{self, Wait};
use crate::git::AgentSlot;
use crate::model::{ErrorType, Status, WorkstreamResult, WsError, UNASSIGNED_AGENT};
use crate::plan::Scheduler;
use crate::workstream::{Loaded, Workstream};
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What a result a source was given settles.
#[derive(Debug, Default)]
pub(super) struct Settled {
    /// Final results to report, in order (the result itself, then what it skipped).
    pub records: Vec<WorkstreamResult>,
    /// Stop starting work (`--fail-fast`), with the reason and error type of the skips.
    pub stop: Option<(String, ErrorType)>,
    pub notes: Vec<String>,
}

/// A future the loop waits on beside its running workstreams.
pub(super) type Wake = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A workstream handed back: the agents that tried it, and the last error.
pub(super) type HandedBack = (Workstream, BTreeSet<usize>, String);

/// Where idle agents' work comes from, and where what they did goes back: the one place a
/// run's kind (local, or shared through a queue) shows in the loop.
pub(super) trait WorkSource: Send {
    /// The next workstream for idle agent `k`, if one is ready for it now.
    fn next_for(&mut self, k: usize) -> impl Future<Output = Option<Workstream>> + Send;
    /// Workstreams that did not start because an agent's worktree could not be prepared:
    /// each with the agents that tried it and the last error.
    fn handed_back(&mut self) -> &mut Vec<HandedBack>;
    /// A workstream that did not start on agent `k` goes back, for another agent here.
    fn hand_back(&mut self, ws: Workstream, tried: BTreeSet<usize>, error: String) {
        self.handed_back().push((ws, tried, error));
    }
    /// Handed-back workstreams no agent in `alive` may still try.
    fn stranded(&mut self, alive: &BTreeSet<usize>) -> Vec<(Workstream, String)> {
        let list = self.handed_back();
        let (stuck, keep): (Vec<_>, Vec<_>) = std::mem::take(list)
            .into_iter()
            .partition(|(_, tried, _)| alive.is_subset(tried));
        *list = keep;
        stuck.into_iter().map(|(ws, _, e)| (ws, e)).collect()
    }
    /// A workstream that ran here ended with `res`; `interrupted`: the run is winding down.
    fn settle(&mut self, res: WorkstreamResult, interrupted: bool) -> Settled;
    /// Nothing more starts here: the results that settles (local: every waiting
    /// workstream, skipped with `reason`).
    fn drain(&mut self, reason: &str, etype: ErrorType) -> Vec<WorkstreamResult>;
    /// Workstreams waiting to start (for the cancellation message).
    fn waiting(&self) -> usize;
    /// Whether the loop may end once nothing runs here.
    fn exhausted(&self) -> bool;
    /// Resolves when there may be new work or news (never, for a local run).
    fn wake(&self) -> Wake;
    /// Running workstreams to stop now (`None`: all of them), each with why.
    fn take_stops(&mut self) -> Vec<(Option<String>, String)>;
    /// Notes gathered since the last call.
    fn take_notes(&mut self) -> Vec<String>;
    /// Once a turn, after idle agents got work: look for work recorded for the run since
    /// (a live local run: follow-ups in the database). `running`: workstreams running now
    /// (none: the loop is about to end unless this finds work); `stopping`: nothing more
    /// starts. Resolves to whether it found work.
    fn refresh(&mut self, running: usize, stopping: bool) -> impl Future<Output = bool> + Send {
        let _ = (running, stopping);
        std::future::ready(false)
    }
    /// The branch workstream `id` runs on and the commit it starts from, when the run's
    /// context does not know it (a follow-up picked up while the run is live).
    fn start_point(&self, id: &str) -> Option<(String, String)> {
        let _ = id;
        None
    }
    /// At the very end: results for what could never start.
    fn leftovers(&mut self) -> Vec<WorkstreamResult>;
}

/// What the loop leaves behind.
pub(super) struct Dispatched {
    /// The agents' slots, for the end of the run to release (kept as the pool) or remove.
    pub slots: Vec<AgentSlot>,
    /// Whether the run was cancelled.
    pub interrupted: bool,
    /// Problems that did not stop the run (hand-overs, repairs, …).
    pub notes: Vec<String>,
}

/// How many agents may fail to prepare a worktree for one workstream before it is recorded
/// as failed (a `GitError` that says it was git-ws's fault).
const MAX_HANDOVERS: usize = 3;
/// An agent whose worktree failed this many times in a row stops taking work.
const MAX_AGENT_FAILURES: usize = 2;

/// The result of a workstream that never started.
pub(super) fn skipped_result(
    run_id: &str,
    id: &str,
    ws: Option<&Workstream>,
    reason: &str,
    etype: ErrorType,
) -> WorkstreamResult {
    let mut res = WorkstreamResult::new(run_id, UNASSIGNED_AGENT, id, Status::Skipped);
    if let Some(w) = ws {
        res.title = w.title.clone();
        res.source_file = Some(w.file.clone());
        res.warnings = w.warnings.clone();
    }
    res.errors.push(WsError::new(etype, reason.to_string()));
    res.end_time = Some(Utc::now());
    res
}

/// The ready work of a local run: first a workstream another agent handed back (its
/// worktree could not be prepared) that this agent has not tried, then the scheduler's
/// ready queue. Settles results in memory: the dependents of a failure are skipped with the
/// reason, `--fail-fast` stops the rest.
pub(super) struct LocalWork {
    run_id: String,
    sched: Scheduler,
    /// The workstreams this run executes, by id.
    to_run: HashMap<String, Workstream>,
    /// Every valid workstream by id, for the titles and files of skipped ones.
    valid: HashMap<String, Workstream>,
    fail_fast: bool,
    /// Handed back: (workstream, the agents that tried it, the last error).
    handed_back: Vec<(Workstream, BTreeSet<usize>, String)>,
    /// `--budget`: once the recorded spend reaches it, nothing more starts.
    budget_usd: Option<f64>,
    /// What this attempt's results spent, in dollars; `None` while nothing reported a
    /// cost. (A `--resume` gets a new `--budget`: earlier attempts do not count.)
    spent: Option<f64>,
    /// git config `ws.maxWait`.
    max_wait: std::time::Duration,
    /// Each workstream's agent (its driver's label), for usage limits.
    labels: HashMap<String, String>,
    /// Agents whose usage limit was hit, by label.
    limited: HashMap<String, Limited>,
    /// Workstreams handed out while their agent was limited: held until its reset, or
    /// deferred at the end when the run pauses.
    held: Vec<Workstream>,
    /// How often each workstream waited for a reset (a CLI that keeps saying so is not
    /// waited for forever: [`limits::MAX_WAITS`]).
    waits: HashMap<String, u32>,
    /// The follow-ups recorded for the run while it is live, when it looks for them.
    live: Option<super::followups::LiveFollowups>,
    /// See [`LocalWork::with_integration_hold`].
    integration_hold: Option<Arc<std::sync::atomic::AtomicUsize>>,
    /// Follow-ups picked up while live, waiting for an agent (they depend on nothing).
    picked: std::collections::VecDeque<Workstream>,
    /// A picked-up follow-up's id → its branch and start commit.
    picked_starts: HashMap<String, (String, String)>,
    notes: Vec<String>,
}

/// An agent's usage limit, as dispatch sees it.
#[derive(Debug, Clone)]
struct Limited {
    /// Wait for it until then; `None`: past `ws.maxWait` or unknown, the run pauses.
    until: Option<DateTime<Utc>>,
    /// The deferral message (with the reset, when known).
    message: String,
}

impl LocalWork {
    pub fn new(
        run_id: &str,
        sched: Scheduler,
        loaded: &Loaded,
        to_run: Vec<Workstream>,
        fail_fast: bool,
    ) -> Self {
        LocalWork {
            run_id: run_id.to_string(),
            sched,
            to_run: to_run.into_iter().map(|w| (w.id.clone(), w)).collect(),
            valid: loaded
                .valid
                .iter()
                .map(|w| (w.id.clone(), w.clone()))
                .collect(),
            fail_fast,
            handed_back: Vec::new(),
            budget_usd: None,
            spent: None,
            max_wait: limits::DEFAULT_MAX_WAIT,
            labels: HashMap::new(),
            limited: HashMap::new(),
            held: Vec::new(),
            waits: HashMap::new(),
            live: None,
            integration_hold: None,
            picked: std::collections::VecDeque::new(),
            picked_starts: HashMap::new(),
            notes: Vec::new(),
        }
    }

    /// Look for follow-ups recorded for the run while it is live, and run them before the
    /// run ends ([`super::followups::LiveFollowups`]).
    /// `--integrate --fix-up`: completions the integration has not finished with (merged,
    /// tested, handed back); the run does not end while there are any, so a fix-up made
    /// for the last of them still runs here.
    pub fn with_integration_hold(mut self, hold: Arc<std::sync::atomic::AtomicUsize>) -> Self {
        self.integration_hold = Some(hold);
        self
    }

    /// Whether the integration still works on completions (see
    /// [`with_integration_hold`](Self::with_integration_hold)).
    fn integrating(&self) -> bool {
        self.integration_hold
            .as_ref()
            .is_some_and(|h| h.load(std::sync::atomic::Ordering::SeqCst) > 0)
    }

    pub fn with_live_followups(mut self, live: super::followups::LiveFollowups) -> Self {
        self.live = Some(live);
        self
    }

    /// Nothing runs, waits or may become ready: the loop ends unless work is found now.
    fn nothing_left(&self, running: usize) -> bool {
        running == 0 && self.picked.is_empty() && self.next_reset().is_none() && !self.integrating()
    }

    /// Stop starting work once this attempt's recorded spend reaches `budget_usd`; what has
    /// not started is deferred.
    pub fn with_budget(mut self, budget_usd: Option<f64>) -> Self {
        self.budget_usd = budget_usd;
        self
    }

    /// Usage limits: each workstream's agent (`labels`), how long to wait for a reset
    /// (`max_wait`), and the limits earlier attempts of the run met (`earlier`: their
    /// deferred results), so a `--resume` waits for the reset or pauses again.
    pub fn with_limits(
        mut self,
        labels: HashMap<String, String>,
        max_wait: std::time::Duration,
        earlier: &[WorkstreamResult],
    ) -> Self {
        self.labels = labels;
        self.max_wait = max_wait;
        let now = Utc::now();
        for r in earlier.iter().filter(|r| r.status == Status::Deferred) {
            let Some(e) = r
                .errors
                .iter()
                .find(|e| e.error_type == ErrorType::UsageLimit)
            else {
                continue;
            };
            let label = r.agent.clone().unwrap_or_default();
            let message = e.message.trim_start_matches("not started: ").to_string();
            self.limit(label, limits::reset_of(&e.message), message, now);
        }
        self
    }

    /// Agent `label` hit its usage limit: wait for `reset` (within `ws.maxWait`) or pause.
    fn limit(
        &mut self,
        label: String,
        reset: Option<DateTime<Utc>>,
        message: String,
        now: DateTime<Utc>,
    ) {
        let until = match limits::decide(reset, now, self.max_wait) {
            Wait::Until(t) => Some(t),
            Wait::Pause => None,
        };
        let entry = self.limited.entry(label).or_insert(Limited {
            until,
            message: message.clone(),
        });
        // The later reset wins; a pause wins over a wait.
        if entry.until.is_some() && until.is_none_or(|t| entry.until.is_some_and(|u| t > u)) {
            *entry = Limited { until, message };
        }
    }

    /// The limit of `ws`'s agent, while it holds.
    fn limit_of(&self, ws: &Workstream, now: DateTime<Utc>) -> Option<&Limited> {
        let l = self.limited.get(self.labels.get(&ws.id)?)?;
        l.until.is_none_or(|t| t > now).then_some(l)
    }

    /// The deferred result of `id` and of everything that waits for it.
    fn defer(&mut self, id: &str, reason: &str) -> Vec<WorkstreamResult> {
        let mut out = vec![self.deferred_result(id, reason)];
        for skip in self.sched.finish(id, false) {
            let why = format!(
                "not started: its dependency {} was deferred",
                skip.dependency
            );
            out.push(self.deferred_result(&skip.id, &why));
        }
        out
    }

    fn deferred_result(&self, id: &str, reason: &str) -> WorkstreamResult {
        let etype = if reason.contains("--budget") {
            ErrorType::BudgetExceeded
        } else {
            ErrorType::UsageLimit
        };
        let mut res = skipped_result(&self.run_id, id, self.valid.get(id), reason, etype);
        res.status = Status::Deferred;
        res.agent = self.labels.get(id).cloned();
        res
    }

    fn skipped(&self, id: &str, reason: &str, etype: ErrorType) -> WorkstreamResult {
        skipped_result(&self.run_id, id, self.valid.get(id), reason, etype)
    }

    /// Before anything runs: the invalid files (unless an earlier attempt of this run
    /// already holds a final result for them) as failed results, and the `fail_now` jobs
    /// failed so their dependents are skipped with the reason.
    pub fn known_failures(
        &mut self,
        loaded: &Loaded,
        fail_now: &[String],
        done: &HashMap<String, Status>,
    ) -> Vec<WorkstreamResult> {
        let mut out = invalid_results(&self.run_id, loaded, done);
        for id in fail_now {
            for skip in self.sched.finish(id, false) {
                out.push(self.skipped(&skip.id, &skip.reason, ErrorType::DependencyFailed));
            }
        }
        out
    }

    #[cfg(test)]
    fn next_id(&mut self, k: usize) -> Option<String> {
        if let Some(i) = self
            .handed_back
            .iter()
            .position(|(_, tried, _)| !tried.contains(&k))
        {
            return Some(self.handed_back.remove(i).0.id);
        }
        self.sched.next_ready()
    }
}

/// The failed results of a run's invalid workstream files (keyed by
/// [`InvalidWorkstream::key`](crate::workstream::InvalidWorkstream::key)), except those
/// `done` already holds.
pub(super) fn invalid_results(
    run_id: &str,
    loaded: &Loaded,
    done: &HashMap<String, Status>,
) -> Vec<WorkstreamResult> {
    let mut out = Vec::new();
    for inv in &loaded.invalid {
        let ws_id = inv.key();
        if done.contains_key(&ws_id) {
            continue;
        }
        let mut res = WorkstreamResult::new(run_id, UNASSIGNED_AGENT, &ws_id, Status::Failed);
        res.source_file = Some(inv.file.clone());
        res.errors.push(WsError::new(
            ErrorType::InvalidWorkstream,
            inv.message.clone(),
        ));
        let now = Utc::now();
        res.start_time = Some(now);
        res.end_time = Some(now);
        out.push(res);
    }
    out
}

impl WorkSource for LocalWork {
    fn next_for(&mut self, k: usize) -> impl Future<Output = Option<Workstream>> + Send {
        let now = Utc::now();
        let next = loop {
            // A workstream held for its agent's usage limit, once the limit has reset.
            if let Some(i) = self
                .held
                .iter()
                .position(|w| self.limit_of(w, now).is_none())
            {
                break Some(self.held.remove(i));
            }
            let ws = if let Some(i) = self
                .handed_back
                .iter()
                .position(|(_, tried, _)| !tried.contains(&k))
            {
                self.handed_back.remove(i).0
            } else if let Some(id) = self.sched.next_ready() {
                match self.to_run.get(&id) {
                    Some(ws) => ws.clone(),
                    // A fail-now job can never be dispatched; finish it defensively.
                    None => {
                        self.sched.finish(&id, false);
                        continue;
                    }
                }
            } else if let Some(ws) = self.picked.pop_front() {
                // Follow-ups picked up while live, after the run's own ready work.
                ws
            } else {
                break None;
            };
            // Its agent's usage limit holds: other agents' work goes on meanwhile.
            if self.limit_of(&ws, now).is_some() {
                self.held.push(ws);
                continue;
            }
            break Some(ws);
        };
        std::future::ready(next)
    }

    fn handed_back(&mut self) -> &mut Vec<HandedBack> {
        &mut self.handed_back
    }

    fn settle(&mut self, res: WorkstreamResult, interrupted: bool) -> Settled {
        let ok = res.status == Status::Completed;
        let id = res.workstream_id.clone();
        if let Some(cost) = res.usage.as_ref().and_then(|u| u.cost_usd) {
            self.spent = Some(self.spent.unwrap_or(0.0) + cost);
        }
        let mut notes = Vec::new();
        let mut records = vec![res];
        if records[0].status == Status::Deferred && !interrupted {
            if let Some(held) = self.usage_limited(&records[0]) {
                // Held for the reset: no result yet, it runs again after it.
                return Settled {
                    records: Vec::new(),
                    stop: None,
                    notes: vec![held],
                };
            }
            let why = format!("not started: its dependency {id} was deferred");
            for skip in self.sched.finish(&id, false) {
                records.push(self.deferred_result(&skip.id, &why));
            }
            notes.push(format!(
                "{id} deferred: {}",
                records[0].errors.first().map_or("", |e| e.message.as_str())
            ));
        } else {
            for skip in self.sched.finish(&id, ok) {
                records.push(self.skipped(&skip.id, &skip.reason, ErrorType::DependencyFailed));
            }
        }
        let stop = (!ok && self.fail_fast)
            .then(|| {
                (
                    format!("not started: --fail-fast after {id} failed"),
                    ErrorType::DependencyFailed,
                )
            })
            .or_else(|| {
                crate::agents::budget_reached(self.budget_usd, self.spent)
                    .map(|why| (why, ErrorType::BudgetExceeded))
            });
        Settled {
            records,
            stop,
            notes,
        }
    }

    /// Everything not started: pending in the scheduler, then handed back (failed in the
    /// scheduler, so nothing waits for them).
    /// A spent `--budget` defers them (`--resume --budget X` runs them); anything else
    /// skips them with `reason`.
    fn drain(&mut self, reason: &str, etype: ErrorType) -> Vec<WorkstreamResult> {
        let mut ids = self.sched.drain_pending();
        ids.extend(std::mem::take(&mut self.picked).into_iter().map(|w| w.id));
        let held = std::mem::take(&mut self.held);
        let back = std::mem::take(&mut self.handed_back)
            .into_iter()
            .map(|h| h.0);
        for ws in held.into_iter().chain(back) {
            // Its dependents were pending and are drained above already.
            self.sched.finish(&ws.id, false);
            ids.push(ws.id);
        }
        ids.iter()
            .map(|id| {
                if etype == ErrorType::BudgetExceeded {
                    self.deferred_result(id, reason)
                } else {
                    self.skipped(id, reason, etype)
                }
            })
            .collect()
    }

    fn waiting(&self) -> usize {
        self.sched.pending() + self.handed_back.len() + self.held.len() + self.picked.len()
    }

    /// Not while a workstream waits for a usage limit to reset, nor while a follow-up
    /// picked up while live waits for an agent.
    fn exhausted(&self) -> bool {
        self.next_reset().is_none() && self.picked.is_empty() && !self.integrating()
    }

    /// At the next reset a held workstream waits for, or the next look for follow-ups.
    fn wake(&self) -> Wake {
        let reset = self
            .next_reset()
            .map(|t| (t - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(20));
        let look = self.live.as_ref().map(|l| {
            l.next_due()
                .saturating_duration_since(std::time::Instant::now())
        });
        // While the integration works on completions: look again soon.
        let hold = self.integrating().then_some(Duration::from_millis(100));
        let look = match (look, hold) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (reset, look) {
            (None, None) => Box::pin(std::future::pending()),
            (a, b) => Box::pin(tokio::time::sleep(
                a.into_iter().chain(b).min().unwrap_or_default(),
            )),
        }
    }

    fn take_stops(&mut self) -> Vec<(Option<String>, String)> {
        Vec::new()
    }

    fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// A live run looks for follow-ups every [`super::followups::LIVE_POLL`], and once more
    /// when it is about to end, after saying it takes no more: one recorded before that
    /// runs here, one recorded after it waits for `--resume` (never lost: it stays in the
    /// database without a result). Once stopping, it takes none.
    async fn refresh(&mut self, running: usize, stopping: bool) -> bool {
        let ending = self.nothing_left(running);
        let Some(live) = self.live.as_mut() else {
            return false;
        };
        if stopping || ending {
            live.close();
        }
        if stopping {
            return false;
        }
        let (picked, notes) = live.poll(&self.valid, ending).await;
        self.notes.extend(notes);
        let found = !picked.is_empty();
        for p in picked {
            if let Some(label) = self.labels.get(&p.of).cloned() {
                self.labels.insert(p.ws.id.clone(), label);
            }
            self.picked_starts
                .insert(p.ws.id.clone(), (p.branch, p.tip));
            self.valid.insert(p.ws.id.clone(), p.ws.clone());
            self.to_run.insert(p.ws.id.clone(), p.ws.clone());
            self.picked.push_back(p.ws);
        }
        found
    }

    fn start_point(&self, id: &str) -> Option<(String, String)> {
        self.picked_starts.get(id).cloned()
    }

    /// Held workstreams whose agent's limit outlasts `ws.maxWait` are deferred (the run
    /// pauses); nothing is left pending silently (a dependency that could never be
    /// satisfied).
    fn leftovers(&mut self) -> Vec<WorkstreamResult> {
        let mut out = Vec::new();
        let now = Utc::now();
        for ws in std::mem::take(&mut self.held) {
            let why = self.limit_of(&ws, now).map_or_else(
                || "not started: the run ended while it waited for its agent's usage limit to reset".to_string(),
                |l| format!("not started: {}", l.message),
            );
            out.extend(self.defer(&ws.id, &why));
        }
        out.extend(self.drain(
            "never became ready: its dependencies did not complete",
            ErrorType::DependencyFailed,
        ));
        out
    }
}

impl LocalWork {
    /// The earliest reset a held workstream waits for (none past `ws.maxWait`).
    fn next_reset(&self) -> Option<DateTime<Utc>> {
        let now = Utc::now();
        self.held
            .iter()
            .filter_map(|w| self.limit_of(w, now))
            .filter_map(|l| l.until)
            .min()
    }

    /// A workstream deferred by its agent's usage limit: `Some(note)` when it is held to
    /// run again after the reset (within `ws.maxWait`), `None` when the run will pause
    /// (every later workstream of that agent is deferred too).
    fn usage_limited(&mut self, res: &WorkstreamResult) -> Option<String> {
        let e = res
            .errors
            .iter()
            .find(|e| e.error_type == ErrorType::UsageLimit)?;
        let id = res.workstream_id.clone();
        let label = res
            .agent
            .clone()
            .or_else(|| self.labels.get(&id).cloned())
            .unwrap_or_default();
        let now = Utc::now();
        let waits = self.waits.entry(id.clone()).or_default();
        *waits += 1;
        let reset = if *waits > limits::MAX_WAITS {
            None
        } else {
            limits::reset_of(&e.message)
        };
        self.limit(label.clone(), reset, e.message.clone(), now);
        let until = self.limited.get(&label).and_then(|l| l.until)?;
        let ws = self.to_run.get(&id)?.clone();
        self.held.push(ws);
        Some(format!(
            "{id}: {}; waiting until {} (within ws.maxWait) to run it again",
            e.message,
            until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ))
    }
}

/// The message recorded when no agent could prepare a worktree for a workstream.
fn pool_failure_message(id: &str, tried: usize, error: &str) -> String {
    format!(
        "git-ws could not prepare a worktree for {id} on {tried} agent(s); this is a fault of git-ws, not of the workstream. Last error: {error}. Run `git ws-run --prune-worktrees`, then `git ws-run --rerun-failed`"
    )
}

/// One run's dispatch over `agents` agents.
pub(super) struct Dispatch {
    ctx: Arc<RunContext>,
    agents: usize,
}

/// The agents' state inside the loop.
struct Agents {
    slots: Vec<Option<AgentSlot>>,
    idle: Vec<usize>,
    alive: BTreeSet<usize>,
    failures: Vec<usize>,
}

/// What a running workstream's task gives back: its agent, the agent's slot, how it ended.
type Joined = (usize, Option<AgentSlot>, Executed);

/// The loop's state from one turn to the next.
struct Turns {
    agents: Agents,
    /// Workstream id → the agents that could not prepare a worktree for it.
    tried: HashMap<String, BTreeSet<usize>>,
    running: JoinSet<Joined>,
    /// Each running workstream's own stop switch (a lost lease stops just that one).
    switches: HashMap<String, watch::Sender<bool>>,
    /// Why nothing more is started, and the error type its skips carry.
    stop: Option<(String, ErrorType)>,
    notes: Vec<String>,
    interrupted: bool,
}

impl Turns {
    /// `agents` idle agents, those with a slot in `initial` holding it already.
    fn new(agents: usize, initial: Vec<AgentSlot>) -> Turns {
        let mut a = Agents {
            slots: (0..=agents).map(|_| None).collect(),
            idle: (1..=agents).rev().collect(),
            alive: (1..=agents).collect(),
            failures: vec![0; agents + 1],
        };
        for s in initial {
            let k = s.k;
            if k <= agents {
                a.slots[k] = Some(s);
            }
        }
        Turns {
            agents: a,
            tried: HashMap::new(),
            running: JoinSet::new(),
            switches: HashMap::new(),
            stop: None,
            notes: Vec::new(),
            interrupted: false,
        }
    }

    /// Stop the running workstreams the source says to stop (a lost lease: that one; lost
    /// contact with the database: all of them), saying why.
    fn apply_stops<S: WorkSource>(&mut self, work: &mut S, observer: &mut dyn Observer) {
        for (which, why) in work.take_stops() {
            for (id, s) in &self.switches {
                if which.as_deref().is_none_or(|w| w == id) {
                    let _ = s.send(true);
                }
            }
            observer.event(Event::Note(&why));
            self.notes.push(why);
        }
    }
}

impl Dispatch {
    pub fn new(ctx: Arc<RunContext>, agents: usize) -> Self {
        Dispatch { ctx, agents }
    }

    /// Run until nothing is running and the source is exhausted (or the run stops). Every
    /// workstream the source hands out ends with a settled result. A workstream whose agent
    /// could not prepare a worktree (the pool's fault) goes to another agent; only when
    /// [`MAX_HANDOVERS`] agents (or every agent still working) failed is it recorded as a
    /// `GitError`.
    pub async fn run<S: WorkSource>(
        self,
        work: &mut S,
        initial: Vec<AgentSlot>,
        observer: &mut dyn Observer,
        mut cancel: watch::Receiver<bool>,
    ) -> Dispatched {
        let mut t = Turns::new(self.agents, initial);
        loop {
            if *cancel.borrow() && !t.interrupted {
                self.wind_down(&mut t, work, observer);
            }
            t.apply_stops(work, observer);
            if t.stop.is_none() {
                self.start_idle(work, &mut t, observer).await;
            }
            if let Some((reason, etype)) = &t.stop {
                for res in work.drain(reason, *etype) {
                    observer.event(Event::WorkstreamFinished { result: &res });
                }
            }
            if work.refresh(t.running.len(), t.stop.is_some()).await {
                // New work: give it to the idle agents first.
                t.notes.extend(work.take_notes());
                continue;
            }
            t.notes.extend(work.take_notes());
            if t.running.is_empty() && (t.stop.is_some() || work.exhausted()) {
                break;
            }
            let wake = work.wake();
            let joined = tokio::select! {
                joined = t.running.join_next(), if !t.running.is_empty() => joined,
                _ = cancel.changed(), if !t.interrupted => None,
                _ = wake => None,
            };
            if let Some(joined) = joined {
                self.finished(joined, &mut t, work, observer);
            }
        }
        for res in work.leftovers() {
            observer.event(Event::WorkstreamFinished { result: &res });
        }
        t.notes.extend(work.take_notes());
        Dispatched {
            slots: t.agents.slots.into_iter().flatten().collect(),
            interrupted: t.interrupted,
            notes: t.notes,
        }
    }

    /// Ctrl-C or SIGTERM: nothing more starts (what waits is skipped as cancelled), and every
    /// running workstream is told to stop.
    fn wind_down<S: WorkSource>(&self, t: &mut Turns, work: &S, observer: &mut dyn Observer) {
        t.interrupted = true;
        observer.event(Event::Cancelling {
            running: t.running.len(),
            waiting: work.waiting(),
            grace: self.ctx.grace,
        });
        t.stop = Some((
            "not started: the run was interrupted".to_string(),
            ErrorType::Cancelled,
        ));
        for s in t.switches.values() {
            let _ = s.send(true);
        }
    }

    /// Give every idle agent the next workstream ready for it.
    async fn start_idle<S: WorkSource>(
        &self,
        work: &mut S,
        t: &mut Turns,
        observer: &mut dyn Observer,
    ) {
        let mut still_idle = Vec::new();
        while let Some(k) = t.agents.idle.pop() {
            let Some(ws) = work.next_for(k).await else {
                still_idle.push(k);
                continue;
            };
            observer.event(Event::WorkstreamStarted {
                agent: k,
                id: &ws.id,
            });
            let (switch, stopped) = watch::channel(false);
            t.switches.insert(ws.id.clone(), switch);
            let slot = t.agents.slots[k].take();
            let ctx = match work.start_point(&ws.id) {
                Some((branch, tip)) => {
                    let mut c = RunContext::clone(&self.ctx);
                    c.start_points.insert(branch, tip);
                    Arc::new(c)
                }
                None => self.ctx.clone(),
            };
            t.running.spawn(async move {
                let window = super::tampering::Window::open(&ctx.repo, &ws.id);
                let (slot, mut executed) = execute::execute(ctx, k, slot, ws, stopped).await;
                window.close(&mut executed);
                (k, slot, executed)
            });
        }
        still_idle.reverse();
        t.agents.idle = still_idle;
    }

    /// A workstream's task ended: its agent gets its slot back, and the result is settled
    /// with the source (or, when the agent could not prepare a worktree, the workstream is
    /// handed to another agent); what that settles is reported.
    fn finished<S: WorkSource>(
        &self,
        joined: Result<Joined, tokio::task::JoinError>,
        t: &mut Turns,
        work: &mut S,
        observer: &mut dyn Observer,
    ) {
        let (k, mut slot, executed) = match joined {
            Ok(v) => v,
            Err(e) => {
                // A panicking task lost its workstream id; note it and go on.
                t.notes
                    .push(format!("an agent task failed unexpectedly: {e}"));
                return;
            }
        };
        if let Some(s) = slot.as_mut() {
            t.notes
                .extend(s.repairs.drain(..).map(|r| format!("agent-{k}: {r}")));
        }
        t.agents.slots[k] = slot;
        let settled = match executed {
            Executed::Done(res) => {
                t.agents.failures[k] = 0;
                t.agents.idle.push(k);
                t.tried.remove(&res.workstream_id);
                t.switches.remove(&res.workstream_id);
                work.settle(*res, t.interrupted)
            }
            Executed::NotStarted { ws, error } => {
                t.switches.remove(&ws.id);
                self.not_started(k, *ws, error, t, work)
            }
        };
        for res in &settled.records {
            observer.event(Event::WorkstreamFinished { result: res });
        }
        t.notes.extend(settled.notes);
        if t.stop.is_none() {
            t.stop = settled.stop;
        }
    }

    /// Agent `k` could not prepare a worktree for `ws`: hand it to another agent, or, when
    /// enough have tried, settle it as the pool's failure.
    fn not_started<S: WorkSource>(
        &self,
        k: usize,
        ws: Workstream,
        error: String,
        t: &mut Turns,
        work: &mut S,
    ) -> Settled {
        let agents = &mut t.agents;
        agents.failures[k] += 1;
        t.notes.push(format!(
            "agent-{k} could not prepare a worktree for {}; handing it to another agent: {error}",
            ws.id
        ));
        if agents.failures[k] >= MAX_AGENT_FAILURES && agents.alive.len() > 1 {
            agents.alive.remove(&k);
            t.notes.push(format!(
                "agent-{k} stopped taking work: its worktree failed {} times in a row",
                agents.failures[k]
            ));
        } else {
            agents.idle.push(k);
        }
        let mut settled = Settled::default();
        let tried = t.tried.entry(ws.id.clone()).or_default();
        tried.insert(k);
        if tried.len() >= MAX_HANDOVERS.min(self.agents) {
            let n = tried.len();
            t.tried.remove(&ws.id);
            let res = self.pool_failed(&ws, k, n, &error);
            merge(&mut settled, work.settle(res, t.interrupted));
        } else {
            let tried = tried.clone();
            work.hand_back(ws, tried, error);
        }
        for (ws, error) in work.stranded(&t.agents.alive) {
            let n = t.tried.remove(&ws.id).map_or(0, |t| t.len());
            let res = self.pool_failed(&ws, k, n, &error);
            merge(&mut settled, work.settle(res, t.interrupted));
        }
        settled
    }

    /// The final result of a workstream no agent could prepare a worktree for.
    fn pool_failed(
        &self,
        ws: &Workstream,
        k: usize,
        tried: usize,
        error: &str,
    ) -> WorkstreamResult {
        let mut res = WorkstreamResult::new(
            &self.ctx.run_id,
            &self.ctx.agent_id(k),
            &ws.id,
            Status::Failed,
        );
        res.title = ws.title.clone();
        res.source_file = Some(ws.file.clone());
        res.base = Some(self.ctx.base.clone());
        res.errors.push(WsError::new(
            ErrorType::GitError,
            pool_failure_message(&ws.id, tried, error),
        ));
        let now = Utc::now();
        res.start_time = Some(now);
        res.end_time = Some(now);
        res
    }
}

fn merge(into: &mut Settled, more: Settled) {
    into.records.extend(more.records);
    into.notes.extend(more.notes);
    if into.stop.is_none() {
        into.stop = more.stop;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan;
    use crate::workstream::Action;

    fn ws(id: &str) -> Workstream {
        Workstream {
            id: id.to_string(),
            title: None,
            action: Action::Shell("true".into()),
            test: None,
            timeout: None,
            depends_on: Vec::new(),
            env: Default::default(),
            file: format!("{id}.json"),
            warnings: Vec::new(),
            agent: None,
            retries: None,
            max_cost_usd: None,
            sandbox: None,
            stack: true,
        }
    }

    fn work(ids: &[&str]) -> LocalWork {
        let loaded = Loaded {
            valid: ids.iter().map(|id| ws(id)).collect(),
            ..Loaded::default()
        };
        let sched = Scheduler::new(
            ids.iter()
                .map(|id| plan::Job {
                    id: id.to_string(),
                    depends_on: vec![],
                    expected_secs: None,
                })
                .collect(),
        );
        let to_run = loaded.valid.clone();
        LocalWork::new("run", sched, &loaded, to_run, false)
    }

    fn set(ks: &[usize]) -> BTreeSet<usize> {
        ks.iter().copied().collect()
    }

    #[test]
    fn a_handed_back_workstream_goes_first_to_an_agent_that_has_not_tried_it() {
        let mut w = work(&["a", "b"]);
        let first = w.next_id(1).unwrap();
        w.hand_back(ws(&first), set(&[1]), "broken".into());
        // Agent 1 tried it: it gets the other one; agent 2 gets the handed-back one.
        let other = w.next_id(1).unwrap();
        assert_ne!(other, first);
        assert_eq!(w.next_id(2), Some(first));
        assert_eq!(w.next_id(3), None);
    }

    #[test]
    fn stranded_when_every_agent_still_working_has_tried_it() {
        let mut w = work(&["a"]);
        let id = w.next_id(1).unwrap();
        w.hand_back(ws(&id), set(&[1, 2]), "e".into());
        assert!(w.stranded(&set(&[1, 2, 3])).is_empty());
        let stuck = w.stranded(&set(&[1, 2]));
        assert_eq!(stuck.len(), 1);
        assert_eq!((stuck[0].0.id.as_str(), stuck[0].1.as_str()), ("a", "e"));
        assert_eq!(w.waiting(), 0);
    }

    #[test]
    fn drain_returns_pending_and_handed_back_work() {
        let mut w = work(&["a", "b", "c"]);
        let id = w.next_id(1).unwrap();
        w.hand_back(ws(&id), set(&[1]), "e".into());
        assert_eq!(w.waiting(), 3);
        let drained = w.drain("stop", ErrorType::Cancelled);
        let mut ids: Vec<&str> = drained.iter().map(|r| r.workstream_id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, vec!["a", "b", "c"]);
        assert!(drained.iter().all(|r| r.status == Status::Skipped
            && r.errors[0].error_type == ErrorType::Cancelled
            && r.source_file.is_some()));
        assert_eq!(w.waiting(), 0);
    }

    #[test]
    fn a_failure_settles_its_dependents_and_fail_fast_stops() {
        let loaded = Loaded {
            valid: vec![
                ws("a"),
                Workstream {
                    depends_on: vec!["a".into()],
                    ..ws("b")
                },
            ],
            ..Loaded::default()
        };
        let jobs = plan::jobs_from(&loaded.valid, &HashMap::new());
        let mut w = LocalWork::new(
            "run",
            Scheduler::new(jobs),
            &loaded,
            loaded.valid.clone(),
            true,
        );
        assert_eq!(w.next_id(1).as_deref(), Some("a"));
        let res = WorkstreamResult::new("run", "agent-1", "a", Status::Failed);
        let s = w.settle(res, false);
        let got: Vec<(&str, Status)> = s
            .records
            .iter()
            .map(|r| (r.workstream_id.as_str(), r.status))
            .collect();
        assert_eq!(got, [("a", Status::Failed), ("b", Status::Skipped)]);
        assert_eq!(s.records[1].errors[0].message, "dependency a failed");
        assert_eq!(
            s.stop,
            Some((
                "not started: --fail-fast after a failed".to_string(),
                ErrorType::DependencyFailed
            ))
        );
    }

    fn next(w: &mut LocalWork, k: usize) -> Option<String> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(w.next_for(k))
            .map(|ws| ws.id)
    }

    /// `ids` with their agents, `ws.maxWait` one hour.
    fn limited_work(ids: &[(&str, &str)]) -> LocalWork {
        let names: Vec<&str> = ids.iter().map(|(id, _)| *id).collect();
        let labels = ids
            .iter()
            .map(|(id, agent)| (id.to_string(), agent.to_string()))
            .collect();
        work(&names).with_limits(labels, std::time::Duration::from_secs(3600), &[])
    }

    fn hit_limit(id: &str, agent: &str, reset_in_secs: i64) -> WorkstreamResult {
        let mut r = WorkstreamResult::new("run", "agent-1", id, Status::Deferred);
        r.agent = Some(agent.to_string());
        let reset = Utc::now() + chrono::Duration::seconds(reset_in_secs);
        r.errors.push(WsError::new(
            ErrorType::UsageLimit,
            limits::deferral_message(
                agent,
                &limits::Limit {
                    message: "Claude AI usage limit reached".into(),
                    reset: Some(reset),
                },
            ),
        ));
        r
    }

    #[test]
    fn a_usage_limit_within_max_wait_holds_that_agents_work_and_not_the_others() {
        let mut w = limited_work(&[("a", "claude"), ("b", "claude"), ("c", "codex")]);
        let first = next(&mut w, 1).unwrap();
        let s = w.settle(hit_limit(&first, "claude", 600), false);
        assert!(s.records.is_empty(), "held, not recorded: {:?}", s.records);
        assert!(s.notes[0].contains("waiting until"), "{:?}", s.notes);
        // The other claude workstream is held too; codex's goes on.
        let mut got = Vec::new();
        while let Some(id) = next(&mut w, 2) {
            got.push(id);
        }
        assert_eq!(got, ["c"]);
        assert_eq!(w.held.len(), 2);
        assert!(!w.exhausted(), "it waits for the reset");
        assert!(w.next_reset().is_some());
    }

    #[test]
    fn a_usage_limit_past_max_wait_defers_that_agents_work() {
        let mut w = limited_work(&[("a", "claude"), ("b", "claude")]);
        let first = next(&mut w, 1).unwrap();
        let s = w.settle(hit_limit(&first, "claude", 7200), false);
        assert_eq!(s.records.len(), 1);
        assert_eq!(s.records[0].status, Status::Deferred);
        assert_eq!(next(&mut w, 1), None, "the other claude workstream is held");
        assert!(w.exhausted(), "nothing to wait for: the run pauses");
        let left = w.leftovers();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].status, Status::Deferred);
        assert_eq!(left[0].errors[0].error_type, ErrorType::UsageLimit);
        assert!(
            limits::reset_of(&left[0].errors[0].message).is_some(),
            "{}",
            left[0].errors[0].message
        );
    }

    #[test]
    fn a_spent_budget_defers_what_has_not_started() {
        let mut w = work(&["a", "b"]);
        let drained = w.drain(
            "not started: the run's --budget of $1.00 was spent",
            ErrorType::BudgetExceeded,
        );
        assert_eq!(drained.len(), 2);
        assert!(drained
            .iter()
            .all(|r| r.status == Status::Deferred
                && r.errors[0].error_type == ErrorType::BudgetExceeded));
        let mut w = work(&["a"]);
        let cancelled = w.drain("stop", ErrorType::Cancelled);
        assert_eq!(cancelled[0].status, Status::Skipped);
    }

    #[test]
    fn a_picked_up_follow_up_runs_after_the_ready_work_keeps_the_loop_going_and_is_drained() {
        let mut w = work(&["a"]);
        w.picked.push_back(ws("a~review1"));
        w.picked_starts.insert(
            "a~review1".into(),
            ("ws/run/a.review1".into(), "c0ffee".into()),
        );
        assert!(!w.exhausted(), "a picked-up follow-up keeps the run going");
        assert_eq!(w.waiting(), 2);
        assert_eq!(next(&mut w, 1).as_deref(), Some("a"));
        assert_eq!(next(&mut w, 2).as_deref(), Some("a~review1"));
        assert!(w.exhausted());
        assert_eq!(
            w.start_point("a~review1"),
            Some(("ws/run/a.review1".to_string(), "c0ffee".to_string()))
        );
        let mut w = work(&[]);
        w.picked.push_back(ws("b~review1"));
        let drained = w.drain("stop", ErrorType::Cancelled);
        assert_eq!(drained.len(), 1);
        assert_eq!(drained[0].workstream_id, "b~review1");
        assert!(w.exhausted());
    }

    #[test]
    fn the_pool_failure_message_names_the_fault_and_the_way_out() {
        let m = pool_failure_message("w1", 3, "failed to lock x");
        assert!(m.contains("w1 on 3 agent(s)"), "{m}");
        assert!(
            m.contains("a fault of git-ws, not of the workstream"),
            "{m}"
        );
        assert!(m.contains("git ws-run --prune-worktrees"), "{m}");
    }
}
