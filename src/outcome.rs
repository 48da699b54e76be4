//! What a finished `git ws-run` produced ([`RunOutcome`], with [`SharedOutcome`] for a
//! process that worked on a shared run) and its exit status. Below the runner that makes it
//! and the closing summary and notify command that read it.

use crate::agents::limits;
use crate::consolidate::Consolidated;
use crate::db::DbLocation;
use crate::error::{EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK, EXIT_PAUSED, EXIT_UNRECORDED};
use crate::model::{ErrorType, Status, WorkstreamResult};
use std::path::PathBuf;

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
    /// Results the database never took (full disk, database gone): the run exits
    /// [`EXIT_UNRECORDED`] and says where their work is.
    pub unrecorded: Vec<Unrecorded>,
    /// What `--integrate` did (the run's own integration), if it was on.
    pub integration: Option<crate::model::IntegrationRecord>,
}

/// A finished workstream whose result is not in the database: where its work and its
/// result are.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Unrecorded {
    pub workstream_id: String,
    pub status: Status,
    /// Its branch `ws/<run>/<id>`, which holds its commits.
    pub branch: Option<String>,
    /// The spool file that holds the result, if it could be written.
    pub spool: Option<PathBuf>,
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
    /// 3 a result is not recorded (before anything else: never 0 for work not kept), 130
    /// interrupted, 4 paused (deferred workstreams), 0 all completed, 1 something failed or
    /// was skipped, or something outside the worktrees changed (a tampering warning). A
    /// worker that left
    /// a shared run before it finished answers for the workstreams it ran.
    pub fn exit_code(&self) -> i32 {
        if !self.unrecorded.is_empty() {
            return EXIT_UNRECORDED;
        }
        let (all_completed, mine) = match &self.shared {
            Some(s) if !s.run_finished => {
                (s.ran.iter().all(|r| r.status == Status::Completed), &s.ran)
            }
            _ => (self.consolidated.all_completed(), &self.results),
        };
        // Something outside the worktrees changed (the watch): never 0.
        let tampered = mine
            .iter()
            .any(|r| r.warnings.iter().any(|w| ws_core::tamper::is_tampering(w)));
        let all_completed = all_completed && !tampered;
        if self.interrupted {
            EXIT_INTERRUPTED
        } else if self.paused() {
            EXIT_PAUSED
        } else if all_completed {
            EXIT_OK
        } else {
            EXIT_FAILURES
        }
    }

    /// Whether the run paused: it has deferred workstreams (see [`RunOutcome::pause`]).
    pub fn paused(&self) -> bool {
        match &self.shared {
            Some(s) if !s.run_finished => s.ran.iter().any(|r| r.status == Status::Deferred),
            _ => self.consolidated.deferred > 0,
        }
    }

    /// Why a paused run paused, for its summary: the deferred workstreams, when their
    /// agents' usage limits reset (`None`: one is not known), and whether `--budget` was
    /// spent.
    pub fn pause(&self) -> Option<Pause> {
        if !self.paused() {
            return None;
        }
        let deferred: Vec<&WorkstreamResult> = self
            .results
            .iter()
            .filter(|r| r.status == Status::Deferred)
            .collect();
        let limited: Vec<&WorkstreamResult> = deferred
            .iter()
            .copied()
            .filter(|r| {
                r.errors
                    .iter()
                    .any(|e| e.error_type == ErrorType::UsageLimit)
            })
            .collect();
        let reset = (!limited.is_empty())
            .then(|| {
                limits::latest_reset(limited.iter().map(|r| {
                    r.errors
                        .iter()
                        .find(|e| e.error_type == ErrorType::UsageLimit)
                        .and_then(|e| limits::reset_of(&e.message))
                }))
            })
            .flatten();
        Some(Pause {
            deferred: deferred.len(),
            usage_limited: limited.len(),
            reset,
            budget_spent: deferred.iter().any(|r| {
                r.errors
                    .iter()
                    .any(|e| e.error_type == ErrorType::BudgetExceeded)
            }),
        })
    }
}

/// Why a run paused.
#[derive(Debug, Clone, PartialEq)]
pub struct Pause {
    pub deferred: usize,
    /// Deferred by an agent's usage limit.
    pub usage_limited: usize,
    /// When the last of those limits resets (`None`: one gave no reset time, or none).
    pub reset: Option<chrono::DateTime<chrono::Utc>>,
    /// Deferred because `--budget` was spent.
    pub budget_spent: bool,
}
