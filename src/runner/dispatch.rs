//! The dispatch loop: hands ready workstreams to idle agents, records every result the
//! moment it is final (through [`Recorder`]), skips the dependents of failures, and winds
//! down on cancellation or `--fail-fast`.

use super::events::{Event, Observer};
use super::execute::{self, RunContext};
use crate::db::ConsolidationDatabase;
use crate::git::AgentSlot;
use crate::model::{ErrorType, Status, WorkstreamResult, WsError, UNASSIGNED_AGENT};
use crate::plan::Scheduler;
use crate::workstream::{Loaded, Workstream};
use chrono::Utc;
use std::collections::HashMap;
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
    /// The agents' worktrees, to remove (or keep with `--keep-worktrees`).
    pub slots: Vec<Option<AgentSlot>>,
    /// Whether the run was cancelled.
    pub interrupted: bool,
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
        sched: &mut Scheduler,
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
            for skip in sched.finish(id, false) {
                rec.record(
                    self.skipped(&skip.id, &skip.reason, ErrorType::DependencyFailed),
                    observer,
                );
            }
        }
    }

    /// Run until nothing is pending or running. Every workstream the scheduler held ends
    /// with a recorded result.
    pub async fn run(
        self,
        mut sched: Scheduler,
        rec: &mut Recorder,
        observer: &mut dyn Observer,
        cancel: watch::Receiver<bool>,
    ) -> Dispatched {
        let mut slots: Vec<Option<AgentSlot>> = (0..=self.agents).map(|_| None).collect();
        let mut idle: Vec<usize> = (1..=self.agents).rev().collect();
        let mut running: JoinSet<(usize, Option<AgentSlot>, WorkstreamResult)> = JoinSet::new();
        // Why nothing more is started, and the error type its skips carry.
        let mut stop: Option<(String, ErrorType)> = None;
        let mut interrupted = false;
        let mut cancel_rx = cancel.clone();

        loop {
            if *cancel_rx.borrow() && !interrupted {
                interrupted = true;
                observer.event(Event::Cancelling {
                    running: running.len(),
                    waiting: sched.pending(),
                    grace: self.ctx.grace,
                });
                stop = Some((
                    "not started: the run was interrupted".to_string(),
                    ErrorType::Cancelled,
                ));
            }
            // Dispatch to idle agents.
            while stop.is_none() && !idle.is_empty() {
                let Some(id) = sched.next_ready() else { break };
                let Some(ws) = self.to_run.get(&id).cloned() else {
                    // A fail-now job can never be dispatched; finish defensively.
                    sched.finish(&id, false);
                    continue;
                };
                let k = idle.pop().expect("checked non-empty");
                observer.event(Event::WorkstreamStarted { agent: k, id: &id });
                let slot = slots[k].take();
                let ctx = self.ctx.clone();
                let c = cancel.clone();
                running.spawn(async move {
                    let (slot, res) = execute::execute(ctx, k, slot, ws, c).await;
                    (k, slot, res)
                });
            }
            if let Some((reason, etype)) = &stop {
                for id in sched.drain_pending() {
                    rec.record(self.skipped(&id, reason, *etype), observer);
                }
            }
            if running.is_empty() {
                break;
            }
            tokio::select! {
                joined = running.join_next() => {
                    let Some(joined) = joined else { break };
                    let (k, slot, res) = match joined {
                        Ok(v) => v,
                        Err(e) => {
                            // A panicking task lost its workstream id; note it and go on.
                            rec.notes.push(format!("an agent task failed unexpectedly: {e}"));
                            continue;
                        }
                    };
                    slots[k] = slot;
                    idle.push(k);
                    let ok = res.status == Status::Completed;
                    let id = res.workstream_id.clone();
                    rec.record(res, observer);
                    for skip in sched.finish(&id, ok) {
                        rec.record(
                            self.skipped(&skip.id, &skip.reason, ErrorType::DependencyFailed),
                            observer,
                        );
                    }
                    if !ok && self.fail_fast && stop.is_none() {
                        stop = Some((
                            format!("not started: --fail-fast after {id} failed"),
                            ErrorType::DependencyFailed,
                        ));
                    }
                }
                _ = cancel_rx.changed(), if !interrupted => {}
            }
        }

        // Nothing is left pending silently (a dependency that could never be satisfied).
        for id in sched.drain_pending() {
            rec.record(
                self.skipped(
                    &id,
                    "never became ready: its dependencies did not complete",
                    ErrorType::DependencyFailed,
                ),
                observer,
            );
        }
        Dispatched { slots, interrupted }
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
