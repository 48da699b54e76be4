//! Scheduling: the pure dispatch queue (dependencies first, then longest expected duration
//! first), dependency-failure skipping, and the simulated plan printed by `--dry-run`.

use std::collections::HashMap;

/// A node of the schedule: id, dependencies, expected duration in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: String,
    pub depends_on: Vec<String>,
    /// Expected duration from history; None when unknown.
    pub expected_secs: Option<f64>,
}

/// The dispatch queue. Dependencies not among the jobs count as satisfied.
/// Ready jobs come out longest-expected-first (unknown durations are treated as the mean of
/// the known ones, or 0 when none are known), ties broken by input order.
#[derive(Debug)]
pub struct Scheduler {
    _private: (),
}

/// A job skipped because a dependency failed or was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub id: String,
    /// e.g. "dependency ws-01 failed" / "dependency ws-01 was skipped".
    pub reason: String,
    /// The dependency that caused it.
    pub dependency: String,
}

impl Scheduler {
    pub fn new(jobs: Vec<Job>) -> Scheduler {
        let _ = jobs;
        todo!()
    }

    /// Take the next ready job (all dependencies completed), if any.
    pub fn next_ready(&mut self) -> Option<String> {
        todo!()
    }

    /// Record that `id` finished. When `ok` is false every transitive dependent still
    /// pending is removed and returned as skipped (in dependency order).
    pub fn finish(&mut self, id: &str, ok: bool) -> Vec<Skip> {
        let _ = (id, ok);
        todo!()
    }

    /// Remove every job not yet dispatched and return their ids (for cancellation and
    /// fail-fast).
    pub fn drain_pending(&mut self) -> Vec<String> {
        todo!()
    }

    /// Jobs neither finished nor dispatched.
    pub fn pending(&self) -> usize {
        todo!()
    }

    /// Jobs dispatched and not yet finished.
    pub fn running(&self) -> usize {
        todo!()
    }

    /// No job pending and none running.
    pub fn is_done(&self) -> bool {
        self.pending() == 0 && self.running() == 0
    }
}

/// One line of a simulated plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStep {
    /// 1-based agent number.
    pub agent: usize,
    pub id: String,
    pub start_secs: f64,
    pub expected_secs: f64,
}

/// Simulate the scheduler with `agents` slots assuming every job succeeds and takes its
/// expected duration (unknown = 1 s, for ordering purposes), to show which agent would take
/// what, in which order. Sorted by start time, then agent.
pub fn simulate(jobs: &[Job], agents: usize) -> Vec<PlannedStep> {
    let _ = (jobs, agents);
    todo!()
}

/// Build jobs from workstreams and a history of expected durations (by workstream id).
pub fn jobs_from(ws: &[crate::workstream::Workstream], history: &HashMap<String, f64>) -> Vec<Job> {
    ws.iter()
        .map(|w| Job {
            id: w.id.clone(),
            depends_on: w.depends_on.clone(),
            expected_secs: history.get(&w.id).copied(),
        })
        .collect()
}
