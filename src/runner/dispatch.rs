//! The dispatch loop: hands ready workstreams to idle agents, records every result the
//! moment it is final (through [`Recorder`]), skips the dependents of failures, hands a
//! workstream whose agent could not prepare a worktree to another agent, and winds down on
//! cancellation or `--fail-fast`.

use super::events::{Event, Observer};
use super::execute::{self, Executed, RunContext};
use crate::db::ConsolidationDatabase;
use crate::git::AgentSlot;
use crate::model::{ErrorType, Status, WorkstreamResult, WsError, UNASSIGNED_AGENT};
use crate::plan::{self, Scheduler};
use crate::workstream::{Loaded, Workstream};
use chrono::Utc;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Writes each result to the database the moment it is final, and keeps it in memory.
pub(super) struct Recorder {
    pub db: Arc<Mutex<ConsolidationDatabase>>,
    pub results: Vec<WorkstreamResult>,
    pub notes: Vec<String>,
}

impl Recorder {
    pub fn record(&mut self, res: WorkstreamResult, observer: &mut dyn Observer) {
        observer.event(Event::WorkstreamFinished { result: &res });
        // The write is synchronous (diesel); on a multi-threaded runtime let the other tasks
        // move to another worker while it (and any retry after a lock) waits.
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread {
            tokio::task::block_in_place(|| self.write(&res));
        } else {
            self.write(&res);
        }
        self.results.push(res);
    }

    /// Write one result, retrying twice if the database stays locked past its busy timeout.
    fn write(&mut self, res: &WorkstreamResult) {
        let mut last_err = None;
        for attempt in 0..3 {
            let r = {
                let mut g = self.db.lock().unwrap_or_else(|p| p.into_inner());
                g.record_result(res)
            };
            match r {
                Ok(()) => {
                    last_err = None;
                    break;
                }
                Err(e) => {
                    last_err = Some(e);
                    std::thread::sleep(Duration::from_millis(200 * (attempt + 1)));
                }
            }
        }
        if let Some(e) = last_err {
            self.notes.push(format!(
                "failed to record {} in the database (kept in the report): {e}",
                res.workstream_id
            ));
        }
    }
}

/// What the loop leaves behind.
pub(super) struct Dispatched {
    /// The agents' slots, for the end of the run to release (kept as the pool) or remove.
    pub slots: Vec<AgentSlot>,
    /// Whether the run was cancelled.
    pub interrupted: bool,
}

/// How many agents may fail to prepare a worktree for one workstream before it is recorded
/// as failed (a `GitError` that says it was git-ws's fault).
const MAX_HANDOVERS: usize = 3;
/// An agent whose worktree failed this many times in a row stops taking work.
const MAX_AGENT_FAILURES: usize = 2;

/// Where an idle agent's next workstream comes from: first a workstream another agent
/// handed back (its worktree could not be prepared) that this agent has not tried, then
/// the scheduler's ready queue. The one place another source of ready work plugs in.
pub(super) struct ReadyWork {
    sched: Scheduler,
    /// Handed back: (workstream id, the agents that tried it, the last error).
    handed_back: Vec<(String, BTreeSet<usize>, String)>,
}

impl ReadyWork {
    pub fn new(sched: Scheduler) -> Self {
        ReadyWork {
            sched,
            handed_back: Vec::new(),
        }
    }

    /// The next workstream for agent `k`, if any is ready for it.
    fn next_for(&mut self, k: usize) -> Option<String> {
        if let Some(i) = self
            .handed_back
            .iter()
            .position(|(_, tried, _)| !tried.contains(&k))
        {
            return Some(self.handed_back.remove(i).0);
        }
        self.sched.next_ready()
    }

    /// A workstream that did not start on agent `k` goes back, for another agent.
    fn hand_back(&mut self, id: String, tried: BTreeSet<usize>, error: String) {
        self.handed_back.push((id, tried, error));
    }

    /// Handed-back workstreams no agent in `alive` may still try.
    fn stranded(&mut self, alive: &BTreeSet<usize>) -> Vec<(String, String)> {
        let (stuck, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.handed_back)
            .into_iter()
            .partition(|(_, tried, _)| alive.is_subset(tried));
        self.handed_back = keep;
        stuck.into_iter().map(|(id, _, e)| (id, e)).collect()
    }

    fn finish(&mut self, id: &str, ok: bool) -> Vec<plan::Skip> {
        self.sched.finish(id, ok)
    }

    /// Everything not started: pending in the scheduler, then handed back (failed in the
    /// scheduler, so nothing waits for them).
    fn drain(&mut self) -> Vec<String> {
        let mut ids = self.sched.drain_pending();
        for (id, _, _) in std::mem::take(&mut self.handed_back) {
            // Its dependents were pending and are drained above already.
            self.sched.finish(&id, false);
            ids.push(id);
        }
        ids
    }

    fn waiting(&self) -> usize {
        self.sched.pending() + self.handed_back.len()
    }
}

/// The message recorded when no agent could prepare a worktree for a workstream.
fn pool_failure_message(id: &str, tried: usize, error: &str) -> String {
    format!(
        "git-ws could not prepare a worktree for {id} on {tried} agent(s); this is a fault of git-ws, not of the workstream. Last error: {error}. Run `git ws-run --prune-worktrees`, then `git ws-run --rerun-failed`"
    )
}

/// One run's dispatch.
pub(super) struct Dispatch<'a> {
    ctx: Arc<RunContext>,
    loaded: &'a Loaded,
    /// The workstreams this run executes, by id.
    to_run: HashMap<String, Workstream>,
    /// Every valid workstream by id, for titles and files of skipped ones.
    valid: HashMap<&'a str, &'a Workstream>,
    agents: usize,
    fail_fast: bool,
}

impl<'a> Dispatch<'a> {
    pub fn new(
        ctx: Arc<RunContext>,
        loaded: &'a Loaded,
        to_run: Vec<Workstream>,
        agents: usize,
        fail_fast: bool,
    ) -> Self {
        Dispatch {
            ctx,
            loaded,
            to_run: to_run.into_iter().map(|w| (w.id.clone(), w)).collect(),
            valid: loaded.valid.iter().map(|w| (w.id.as_str(), w)).collect(),
            agents,
            fail_fast,
        }
    }

    /// Before anything runs: record invalid files (unless an earlier attempt of this run
    /// already holds a final result for them) and fail the `fail_now` jobs so their
    /// dependents are skipped with the reason.
    pub fn settle_known_failures(
        &self,
        work: &mut ReadyWork,
        fail_now: &[String],
        done: &HashMap<String, Status>,
        rec: &mut Recorder,
        observer: &mut dyn Observer,
    ) {
        let run_id = &self.ctx.run_id;
        for inv in &self.loaded.invalid {
            let ws_id = inv.id.clone().unwrap_or_else(|| inv.file.clone());
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
            rec.record(res, observer);
        }
        for id in fail_now {
            for skip in work.finish(id, false) {
                rec.record(
                    self.skipped(&skip.id, &skip.reason, ErrorType::DependencyFailed),
                    observer,
                );
            }
        }
    }

    /// Record a final result and what it settles: dependents skipped, `--fail-fast`.
    fn settle(
        &self,
        res: WorkstreamResult,
        work: &mut ReadyWork,
        stop: &mut Option<(String, ErrorType)>,
        rec: &mut Recorder,
        observer: &mut dyn Observer,
    ) {
        let ok = res.status == Status::Completed;
        let id = res.workstream_id.clone();
        rec.record(res, observer);
        for skip in work.finish(&id, ok) {
            rec.record(
                self.skipped(&skip.id, &skip.reason, ErrorType::DependencyFailed),
                observer,
            );
        }
        if !ok && self.fail_fast && stop.is_none() {
            *stop = Some((
                format!("not started: --fail-fast after {id} failed"),
                ErrorType::DependencyFailed,
            ));
        }
        if stop.is_none() {
            let budget = self.ctx.agent_settings.budget_usd;
            if let Some(why) = crate::agents::budget_spent(budget, &rec.results) {
                *stop = Some((why, ErrorType::BudgetExceeded));
            }
        }
    }

    /// Run until nothing is pending or running. Every workstream the scheduler held ends
    /// with a recorded result. A workstream whose agent could not prepare a worktree (the
    /// pool's fault) goes to another agent; only when [`MAX_HANDOVERS`] agents (or every
    /// agent still working) failed is it recorded as a `GitError`.
    pub async fn run(
        self,
        mut work: ReadyWork,
        initial: Vec<AgentSlot>,
        rec: &mut Recorder,
        observer: &mut dyn Observer,
        cancel: watch::Receiver<bool>,
    ) -> Dispatched {
        let mut slots: Vec<Option<AgentSlot>> = (0..=self.agents).map(|_| None).collect();
        for s in initial {
            let k = s.k;
            if k <= self.agents {
                slots[k] = Some(s);
            }
        }
        let mut idle: Vec<usize> = (1..=self.agents).rev().collect();
        let mut alive: BTreeSet<usize> = (1..=self.agents).collect();
        let mut agent_failures: Vec<usize> = vec![0; self.agents + 1];
        let mut tried: HashMap<String, BTreeSet<usize>> = HashMap::new();
        let mut running: JoinSet<(usize, Option<AgentSlot>, Executed)> = JoinSet::new();
        // Why nothing more is started, and the error type its skips carry.
        let mut stop: Option<(String, ErrorType)> = None;
        let mut interrupted = false;
        let mut cancel_rx = cancel.clone();

        loop {
            if *cancel_rx.borrow() && !interrupted {
                interrupted = true;
                observer.event(Event::Cancelling {
                    running: running.len(),
                    waiting: work.waiting(),
                    grace: self.ctx.grace,
                });
                stop = Some((
                    "not started: the run was interrupted".to_string(),
                    ErrorType::Cancelled,
                ));
            }
            // Dispatch to idle agents (each takes what is ready for it).
            if stop.is_none() {
                let mut still_idle = Vec::new();
                while let Some(k) = idle.pop() {
                    let Some(id) = work.next_for(k) else {
                        still_idle.push(k);
                        continue;
                    };
                    let Some(ws) = self.to_run.get(&id).cloned() else {
                        // A fail-now job can never be dispatched; finish defensively.
                        work.finish(&id, false);
                        still_idle.push(k);
                        continue;
                    };
                    observer.event(Event::WorkstreamStarted { agent: k, id: &id });
                    let slot = slots[k].take();
                    let ctx = self.ctx.clone();
                    let c = cancel.clone();
                    running.spawn(async move {
                        let (slot, executed) = execute::execute(ctx, k, slot, ws, c).await;
                        (k, slot, executed)
                    });
                }
                still_idle.reverse();
                idle = still_idle;
            }
            if let Some((reason, etype)) = &stop {
                for id in work.drain() {
                    rec.record(self.skipped(&id, reason, *etype), observer);
                }
            }
            if running.is_empty() {
                break;
            }
            tokio::select! {
                joined = running.join_next() => {
                    let Some(joined) = joined else { break };
                    let (k, mut slot, executed) = match joined {
                        Ok(v) => v,
                        Err(e) => {
                            // A panicking task lost its workstream id; note it and go on.
                            rec.notes.push(format!("an agent task failed unexpectedly: {e}"));
                            continue;
                        }
                    };
                    if let Some(s) = slot.as_mut() {
                        rec.notes.extend(s.repairs.drain(..).map(|r| format!("agent-{k}: {r}")));
                    }
                    slots[k] = slot;
                    match executed {
                        Executed::Done(res) => {
                            agent_failures[k] = 0;
                            idle.push(k);
                            tried.remove(&res.workstream_id);
                            self.settle(*res, &mut work, &mut stop, rec, observer);
                        }
                        Executed::NotStarted { ws, error } => {
                            agent_failures[k] += 1;
                            rec.notes.push(format!(
                                "agent-{k} could not prepare a worktree for {}; handing it to another agent: {error}",
                                ws.id
                            ));
                            if agent_failures[k] >= MAX_AGENT_FAILURES && alive.len() > 1 {
                                alive.remove(&k);
                                rec.notes.push(format!(
                                    "agent-{k} stopped taking work: its worktree failed {} times in a row",
                                    agent_failures[k]
                                ));
                            } else {
                                idle.push(k);
                            }
                            let t = tried.entry(ws.id.clone()).or_default();
                            t.insert(k);
                            if t.len() >= MAX_HANDOVERS.min(self.agents) {
                                let res = self.pool_failed(&ws, k, t.len(), &error);
                                tried.remove(&ws.id);
                                self.settle(res, &mut work, &mut stop, rec, observer);
                            } else {
                                let t = t.clone();
                                work.hand_back(ws.id.clone(), t, error);
                            }
                            for (id, error) in work.stranded(&alive) {
                                let n = tried.remove(&id).map_or(0, |t| t.len());
                                if let Some(ws) = self.to_run.get(&id) {
                                    let res = self.pool_failed(ws, k, n, &error);
                                    self.settle(res, &mut work, &mut stop, rec, observer);
                                }
                            }
                        }
                    }
                }
                _ = cancel_rx.changed(), if !interrupted => {}
            }
        }

        // Nothing is left pending silently (a dependency that could never be satisfied).
        for id in work.drain() {
            rec.record(
                self.skipped(
                    &id,
                    "never became ready: its dependencies did not complete",
                    ErrorType::DependencyFailed,
                ),
                observer,
            );
        }
        Dispatched {
            slots: slots.into_iter().flatten().collect(),
            interrupted,
        }
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
            &execute::agent_id(k),
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

    /// The result of a workstream that never started.
    fn skipped(&self, id: &str, reason: &str, etype: ErrorType) -> WorkstreamResult {
        let mut res =
            WorkstreamResult::new(&self.ctx.run_id, UNASSIGNED_AGENT, id, Status::Skipped);
        if let Some(w) = self.valid.get(id) {
            res.title = w.title.clone();
            res.source_file = Some(w.file.clone());
            res.warnings = w.warnings.clone();
        }
        res.errors.push(WsError::new(etype, reason.to_string()));
        res.end_time = Some(Utc::now());
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(ids: &[&str]) -> ReadyWork {
        ReadyWork::new(Scheduler::new(
            ids.iter()
                .map(|id| plan::Job {
                    id: id.to_string(),
                    depends_on: vec![],
                    expected_secs: None,
                })
                .collect(),
        ))
    }

    fn set(ks: &[usize]) -> BTreeSet<usize> {
        ks.iter().copied().collect()
    }

    #[test]
    fn a_handed_back_workstream_goes_first_to_an_agent_that_has_not_tried_it() {
        let mut w = work(&["a", "b"]);
        let first = w.next_for(1).unwrap();
        w.hand_back(first.clone(), set(&[1]), "broken".into());
        // Agent 1 tried it: it gets the other one; agent 2 gets the handed-back one.
        let other = w.next_for(1).unwrap();
        assert_ne!(other, first);
        assert_eq!(w.next_for(2), Some(first));
        assert_eq!(w.next_for(3), None);
    }

    #[test]
    fn stranded_when_every_agent_still_working_has_tried_it() {
        let mut w = work(&["a"]);
        let id = w.next_for(1).unwrap();
        w.hand_back(id.clone(), set(&[1, 2]), "e".into());
        assert!(w.stranded(&set(&[1, 2, 3])).is_empty());
        assert_eq!(w.stranded(&set(&[1, 2])), vec![(id, "e".to_string())]);
        assert_eq!(w.waiting(), 0);
    }

    #[test]
    fn drain_returns_pending_and_handed_back_work() {
        let mut w = work(&["a", "b", "c"]);
        let id = w.next_for(1).unwrap();
        w.hand_back(id.clone(), set(&[1]), "e".into());
        assert_eq!(w.waiting(), 3);
        let mut drained = w.drain();
        drained.sort();
        assert_eq!(drained, vec!["a", "b", "c"]);
        assert_eq!(w.waiting(), 0);
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
