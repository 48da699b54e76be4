//! Persistence: the SQLite database through diesel with embedded migrations (the seed's
//! three tables plus normalised extras), per-connection PRAGMAs, and every query the tool
//! and the library API make.

use crate::consolidate::Consolidated;
use crate::model::{Forecast, RunInfo, WorkstreamResult};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// A database failure, one sentence naming the path and what failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError(pub String);

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

/// Lifecycle of a run, kept in the `ws_runs` table beside the seed's `consolidated_runs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Started and not finalised (still going, or the coordinator died).
    Running,
    /// Finished and consolidated.
    Finished,
    /// Stopped by a signal, consolidated.
    Interrupted,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Finished => "finished",
            RunState::Interrupted => "interrupted",
        }
    }
}

/// One run as listed by `get_all_runs` / returned by `get_run_summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_id: String,
    pub timestamp: String,
    pub total_workstreams: i64,
    pub completed_count: i64,
    pub failed_count: i64,
    pub skipped_count: i64,
    pub total_files_modified: i64,
    pub total_commits: i64,
    pub total_errors: i64,
    pub total_warnings: i64,
    pub recommendations: Vec<String>,
    /// The `execution_summary` JSON (a serialised [`Consolidated`]), `null` until finished.
    pub execution_summary: serde_json::Value,
    pub state: RunState,
    pub rerun_of: Option<String>,
}

/// The consolidation database (`.state/multi_agent_consolidated.db` by default).
pub struct ConsolidationDatabase {
    _private: (),
}

impl ConsolidationDatabase {
    /// Open or create the database at `path` (creating parent directories), set the
    /// PRAGMAs and run pending migrations. Errors (file left byte-for-byte untouched): the
    /// file is not SQLite; its schema is newer than this binary knows.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let _ = path;
        todo!()
    }

    /// Open an existing database for reading (error naming the path if it does not exist).
    pub fn open_existing(path: &Path) -> Result<Self, DbError> {
        let _ = path;
        todo!()
    }

    /// Allocate the run id (`info.run_id`, or with `-2`, `-3`, … appended if taken) and
    /// insert the run rows (`consolidated_runs` with zero totals, `ws_runs` in state
    /// `running`), in one immediate transaction. Returns the id actually used.
    pub fn begin_run(&mut self, info: &RunInfo) -> Result<String, DbError> {
        let _ = info;
        todo!()
    }

    /// Persist one finished workstream in one immediate transaction: its `agent_results` row
    /// (replacing any earlier row for the same run and workstream), its
    /// `consolidated_errors` rows, and its normalised file rows.
    pub fn record_result(&mut self, result: &WorkstreamResult) -> Result<(), DbError> {
        let _ = result;
        todo!()
    }

    /// Write the consolidated totals, `execution_summary`, `recommendations` and forecast,
    /// and set the run's state.
    pub fn finish_run(&mut self, c: &Consolidated, state: RunState) -> Result<(), DbError> {
        let _ = (c, state);
        todo!()
    }

    /// The run's static facts, if the run exists.
    pub fn run_info(&mut self, run_id: &str) -> Result<Option<RunInfo>, DbError> {
        let _ = run_id;
        todo!()
    }

    /// Every recorded result of a run, ordered by start time (unstarted last), then id.
    pub fn results(&mut self, run_id: &str) -> Result<Vec<WorkstreamResult>, DbError> {
        let _ = run_id;
        todo!()
    }

    /// The stored forecast of a run (empty if none).
    pub fn forecast(&mut self, run_id: &str) -> Result<Forecast, DbError> {
        let _ = run_id;
        todo!()
    }

    /// Expected duration per workstream id from history: the most recent non-skipped
    /// result's `duration_seconds`.
    pub fn expected_durations(&mut self) -> Result<HashMap<String, f64>, DbError> {
        todo!()
    }

    /// `latest` → the most recent run; an exact id → itself; otherwise an error naming up
    /// to three closest known ids.
    pub fn resolve_run_id(&mut self, spec: &str) -> Result<String, DbError> {
        let _ = spec;
        todo!()
    }

    /// The seed's `get_run_summary`.
    pub fn get_run_summary(&mut self, run_id: &str) -> Result<Option<RunSummary>, DbError> {
        let _ = run_id;
        todo!()
    }

    /// The seed's `get_all_runs`: most recent first.
    pub fn get_all_runs(&mut self, limit: usize) -> Result<Vec<RunSummary>, DbError> {
        let _ = limit;
        todo!()
    }
}
