//! Run events: what the coordinator reports while it works. The progress display, any
//! library user and the recorder (which writes each final result to the database) consume
//! the same stream through [`Observer`].

use crate::model::WorkstreamResult;
use std::time::Duration;

/// Something that happened during a run.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// The run is about to dispatch `total` workstreams over `agents` agents; `jobs` are
    /// what it schedules, with their expected durations (for an ETA).
    RunStarted {
        run_id: &'a str,
        total: usize,
        agents: usize,
        jobs: &'a [crate::plan::Job],
    },
    /// Agent `agent` (1-based) started a workstream.
    WorkstreamStarted { agent: usize, id: &'a str },
    /// A workstream reached its final result (completed, failed or skipped).
    WorkstreamFinished { result: &'a WorkstreamResult },
    /// The run is winding down after Ctrl-C or SIGTERM: `waiting` workstreams will not
    /// start; the `running` ones get SIGTERM, then SIGKILL after `grace`.
    Cancelling {
        running: usize,
        waiting: usize,
        grace: Duration,
    },
    /// Consolidating, writing the database totals and the report.
    Consolidating,
    /// A warning or note for the user (one line).
    Note(&'a str),
    /// What `--integrate` is doing (one line: merged N, left out M, testing …).
    Integration(&'a str),
}

/// Receives run events. Called from the coordinator's task; keep it quick.
pub trait Observer: Send {
    fn event(&mut self, event: Event<'_>);
}

/// Ignores every event (the library default).
pub struct NoObserver;

impl Observer for NoObserver {
    fn event(&mut self, _: Event<'_>) {}
}

/// Two consumers of the same events, in order: what records the run, then the display.
pub struct Tee<'a>(pub &'a mut dyn Observer, pub &'a mut dyn Observer);

impl Observer for Tee<'_> {
    fn event(&mut self, event: Event<'_>) {
        self.0.event(event);
        self.1.event(event);
    }
}
