//! The watch around each workstream: a fingerprint of what lies outside the worktrees
//! ([`crate::git::watch`]) taken when the workstream is handed to its agent and again when
//! it ends (its setup command, command, tests and collection in between); each change
//! becomes a warning on its result naming the location, the old and new values and every
//! workstream of this process that was running at some time in that window
//! ([`crate::tamper`]). With `ws.sandbox=strict` the workstream also fails
//! (`SandboxViolation`).

use super::execute::Executed;
use crate::git::RepoPaths;
use crate::model::{ErrorType, Status, WsError};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use ws_core::tamper::{self, Fingerprint};

static STRICT: AtomicBool = AtomicBool::new(false);

/// Set this process's `ws.sandbox=strict` (a change fails the workstream).
pub fn set_strict(strict: bool) {
    STRICT.store(strict, Ordering::Relaxed);
}

/// One window: a workstream's id, when it opened and closed (on [`CLOCK`]).
struct Span {
    id: String,
    from: u64,
    to: Option<u64>,
}

static CLOCK: AtomicU64 = AtomicU64::new(0);
static SPANS: Mutex<Vec<Span>> = Mutex::new(Vec::new());

fn spans() -> std::sync::MutexGuard<'static, Vec<Span>> {
    SPANS.lock().unwrap_or_else(|p| p.into_inner())
}

/// A workstream's window: open before it is handed over, closed on its result.
pub struct Window {
    repo: RepoPaths,
    id: String,
    from: u64,
    before: Fingerprint,
}

impl Window {
    /// Fingerprint `repo` now, for workstream `id`.
    pub fn open(repo: &RepoPaths, id: &str) -> Window {
        let before = crate::git::watch::fingerprint(repo);
        let from = CLOCK.fetch_add(1, Ordering::SeqCst);
        spans().push(Span {
            id: id.to_string(),
            from,
            to: None,
        });
        Window {
            repo: repo.clone(),
            id: id.to_string(),
            from,
            before,
        }
    }

    /// Fingerprint again and put every change on the result (a workstream handed back to
    /// the queue keeps nothing: the next window starts from what is there then).
    pub fn close(self, executed: &mut Executed) {
        let after = crate::git::watch::fingerprint(&self.repo);
        let to = CLOCK.fetch_add(1, Ordering::SeqCst);
        let running = {
            let mut all = spans();
            if let Some(s) = all
                .iter_mut()
                .find(|s| s.from == self.from && s.id == self.id)
            {
                s.to = Some(to);
            }
            let mut ids: Vec<String> = all
                .iter()
                .filter(|s| s.from < to && s.to.is_none_or(|t| t > self.from))
                .map(|s| s.id.clone())
                .collect();
            ids.sort();
            ids.dedup();
            // Closed windows that ended before every open one began can overlap no later
            // window: forget them.
            let oldest_open = all.iter().filter(|s| s.to.is_none()).map(|s| s.from).min();
            all.retain(|s| match (s.to, oldest_open) {
                (None, _) => true,
                (Some(t), Some(o)) => t > o,
                (Some(_), None) => false,
            });
            ids
        };
        let changes = tamper::compare(&self.before, &after);
        let Executed::Done(r) = executed else {
            return;
        };
        if changes.is_empty() {
            return;
        }
        for c in &changes {
            r.warnings.push(tamper::warning(c, &running));
        }
        if STRICT.load(Ordering::Relaxed) {
            let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
            r.errors.push(WsError::new(
                ErrorType::SandboxViolation,
                format!(
                    "changed outside the worktrees while it ran (ws.sandbox=strict): {}",
                    paths.join(", ")
                ),
            ));
            r.status = Status::Failed;
        }
    }
}
