//! Persistence: the consolidation database through diesel, on SQLite (an embedded file,
//! the default) or PostgreSQL (a server several machines share). Both hold the seed's three
//! tables plus normalised `ws_*` ones with the same columns, created by embedded migrations
//! (one folder per backend); every query the tool and the library API make is written once
//! and runs on either ([`backend`]).
//!
//! **May depend on:** `ws-core` (the model, consolidation and the view it rebuilds from
//! rows), diesel with its migrations (embedded from the top-level `migrations/`), serde.
//! **May not depend on:** git2, the git crate, tokio, clap, or the runtime above it. It
//! never reads git config: the caller hands it a [`DbLocation`].

pub mod backend;
mod error;
pub mod fixup;
pub mod location;
mod postgres;
mod queries;
pub mod queue;
pub mod review;
mod rows;
mod run_view;
pub mod schema;
mod sqlite;
#[cfg(test)]
mod tests;

pub use backend::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
pub use error::{ConnectFailure, DbError, MigrationError};
pub use location::{DbLocation, PgUrl};
pub use queue::{
    Attempt, Claim, ClaimOutcome, Completion, ConsolidationClaim, QueueCounts, QueueItem,
    QueueSettings, SharedRun,
};
pub use review::{ReviewAction, ReviewComment, ReviewFollowup};

use backend::Conn;
use diesel_migrations::EmbeddedMigrations;
use error::{says_disk_full, TxError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;
use ws_core::consolidate::Consolidated;
use ws_core::model::{IntegrationRecord, MergeForecast, RunInfo, WorkstreamResult};

/// The SQLite schema migrations (`migrations/sqlite`); see also [`POSTGRES_MIGRATIONS`].
pub const MIGRATIONS: EmbeddedMigrations = SQLITE_MIGRATIONS;

/// The default database, relative to the main worktree's root.
pub const DEFAULT_PATH: &str = ".state/multi_agent_consolidated.db";

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
    /// Consolidated with deferred workstreams (a usage limit past `ws.maxWait`, a spent
    /// `--budget`): `git ws-run --resume` continues it.
    Paused,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Finished => "finished",
            RunState::Interrupted => "interrupted",
            RunState::Paused => "paused",
        }
    }
}

pub use ws_core::model::MergeRecord;

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

/// The consolidation database (`.state/multi_agent_consolidated.db` by default, or a
/// PostgreSQL database). One connection; `Send`, so a runner can keep it behind a `Mutex`
/// and call it from `spawn_blocking`.
pub struct ConsolidationDatabase {
    conn: Conn,
    location: DbLocation,
}

const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<ConsolidationDatabase>();
};

/// How long opening waits for other connections, like `busy_timeout`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the post-merge hook waits for a lock before giving up.
const HOOK_BUSY_TIMEOUT: Duration = Duration::from_millis(50);

/// What opening may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// Create the database (SQLite file, git-ws tables) if needed.
    Create,
    /// Read what was recorded: refuse a database with no git-ws tables (no file, for SQLite).
    Existing,
    /// The post-merge hook: short waits; "nothing here" is not an error.
    Hook,
    /// A reader (`git ws-report`, `git ws-merge --dry-run`): open read-only, never create,
    /// never migrate; a database without git-ws's tables or with a schema other than this
    /// binary's is refused, the file left byte-identical.
    Read,
}

impl ConsolidationDatabase {
    /// Open or create the database: an SQLite file (creating parent directories and
    /// setting the PRAGMAs) or a PostgreSQL database (which must exist), then run pending
    /// migrations. Errors, one sentence naming the path or the URL (password hidden), with
    /// nothing written: the file is not SQLite; the server is unreachable, refuses the
    /// credentials or has no such database; the schema is newer than this binary knows or
    /// not git-ws's.
    pub fn open(db: impl Into<DbLocation>) -> Result<Self, DbError> {
        let location = db.into();
        Self::open_with(location, Purpose::Create).map(|o| o.expect("created"))
    }

    /// Open for the post-merge hook: waits at most 50 ms for a lock (PostgreSQL: also
    /// connects within 2 s), so a busy database makes the hook give up instead of blocking
    /// the merge. `Ok(None)` when nothing was recorded there yet (no SQLite file, no git-ws
    /// tables).
    pub fn open_for_hook(db: impl Into<DbLocation>) -> Result<Option<Self>, DbError> {
        Self::open_with(db.into(), Purpose::Hook)
    }

    /// Open a database that has recorded runs (an error naming the path or URL if there
    /// is no such file, or no git-ws tables in the PostgreSQL database); pending migrations
    /// are applied as in [`ConsolidationDatabase::open`].
    pub fn open_existing(db: impl Into<DbLocation>) -> Result<Self, DbError> {
        Self::open_with(db.into(), Purpose::Existing).map(|o| o.expect("opened"))
    }

    /// Open a database that has recorded runs for reading only: SQLite read-only (no
    /// journal, no WAL switch, no migration), PostgreSQL in read-only transactions. Errors,
    /// one sentence naming the path or URL, with nothing written: no such file, no git-ws
    /// tables (an empty or foreign file), a schema newer or older than this binary's.
    pub fn open_read_only(db: impl Into<DbLocation>) -> Result<Self, DbError> {
        Self::open_with(db.into(), Purpose::Read).map(|o| o.expect("opened"))
    }

    fn open_with(location: DbLocation, purpose: Purpose) -> Result<Option<Self>, DbError> {
        let db = || location.display().to_string();
        let fail = |why: &dyn fmt::Display| {
            let why = why.to_string();
            DbError::failed(format!("failed to open database {}: {why}", db()), &why)
        };
        let nothing = |why| DbError::NothingRecorded { db: db(), why };
        let schema = |cause: MigrationError| {
            let full = matches!(&cause, MigrationError::Failed(m) if says_disk_full(m));
            let e = DbError::Migration { db: db(), cause };
            if full {
                DbError::DiskFull(e.to_string())
            } else {
                e
            }
        };
        let busy = match purpose {
            Purpose::Hook => HOOK_BUSY_TIMEOUT,
            _ => BUSY_TIMEOUT,
        };
        let mut conn = match &location {
            DbLocation::Sqlite(path) => {
                match std::fs::metadata(path) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => match purpose {
                        Purpose::Create => {}
                        Purpose::Hook => return Ok(None),
                        Purpose::Existing | Purpose::Read => {
                            return Err(nothing("no such file (no run has been recorded here yet)"))
                        }
                    },
                    Err(e) => return Err(fail(&e)),
                }
                if purpose == Purpose::Read {
                    Conn::Sqlite(sqlite::connect_read_only(path, busy)?)
                } else {
                    Conn::Sqlite(sqlite::connect(path, busy)?)
                }
            }
            DbLocation::Postgres(url) if purpose == Purpose::Read => {
                Conn::Postgres(postgres::connect_read_only(url)?)
            }
            DbLocation::Postgres(url) => {
                Conn::Postgres(postgres::connect(url, purpose == Purpose::Hook)?)
            }
        };
        let known = backend::known_versions(&conn).map_err(schema)?;
        let applied = backend::applied_versions(&mut conn).map_err(|e| fail(&e))?;
        backend::check_applied(&applied, &known).map_err(schema)?;
        if applied.is_empty() && purpose == Purpose::Read {
            return Err(nothing(
                "it has no git-ws tables (no run has been recorded here yet)",
            ));
        }
        if applied.is_empty() && matches!(location, DbLocation::Postgres(_)) {
            match purpose {
                Purpose::Create | Purpose::Read => {}
                Purpose::Hook => return Ok(None),
                Purpose::Existing => {
                    return Err(nothing(
                        "it has no git-ws tables (no run has been recorded here yet)",
                    ))
                }
            }
        }
        if purpose == Purpose::Read && !known.is_subset(&applied) {
            let version = applied.last().cloned().unwrap_or_default();
            return Err(schema(MigrationError::Older { version }));
        }
        if !known.is_subset(&applied) {
            // One writer at a time: a second process opening a fresh database waits here,
            // then finds nothing pending.
            backend::migrate(&mut conn, &known).map_err(|e| match e {
                TxError::Migration(cause) => schema(cause),
                other => fail(&other),
            })?;
        }
        Ok(Some(ConsolidationDatabase { conn, location }))
    }

    /// Where this database is.
    pub fn location(&self) -> &DbLocation {
        &self.location
    }

    /// The SQLite file, if the database is one.
    pub fn path(&self) -> Option<&Path> {
        self.location.sqlite_path()
    }

    fn fail(&self, what: &str, e: impl fmt::Display) -> DbError {
        let cause = e.to_string();
        let sentence = format!(
            "failed to {what} in database {}: {cause}",
            self.location.display()
        );
        DbError::failed(sentence, &cause)
    }

    /// Allocate the run id (`info.run_id`, or with `-2`, `-3`, … appended if taken) and
    /// insert the run rows (`consolidated_runs` with zero totals, `ws_runs` in state
    /// `running`), in one immediate transaction. Returns the id actually used.
    pub fn begin_run(&mut self, info: &RunInfo) -> Result<String, DbError> {
        self.begin_run_avoiding(info, &|_| false)
    }

    /// [`begin_run`](Self::begin_run), also skipping every candidate id `taken` says is in
    /// use outside this database (a repository's `ws/<id>/…` branches or logs written by a
    /// run recorded in another database), so two databases never hand out the same id in
    /// one repository.
    pub fn begin_run_avoiding(
        &mut self,
        info: &RunInfo,
        taken: &dyn Fn(&str) -> bool,
    ) -> Result<String, DbError> {
        queries::begin_run(&mut self.conn, info, taken)
            .map_err(|e| self.fail(&format!("start run {}", info.run_id), e))
    }

    /// Persist one finished workstream in one immediate transaction: its `agent_results` row
    /// (replacing any earlier row for the same run and workstream), its
    /// `consolidated_errors` rows, and its normalised file rows.
    pub fn record_result(&mut self, result: &WorkstreamResult) -> Result<(), DbError> {
        queries::record_result(&mut self.conn, result).map_err(|e| {
            self.fail(
                &format!(
                    "record result {} of run {}",
                    result.workstream_id, result.run_id
                ),
                e,
            )
        })
    }

    /// Write the consolidated totals, `execution_summary`, `recommendations` and forecast,
    /// and set the run's state.
    pub fn finish_run(&mut self, c: &Consolidated, state: RunState) -> Result<(), DbError> {
        queries::finish_run(&mut self.conn, c, state)
            .map_err(|e| self.fail(&format!("finish run {}", c.run.run_id), e))
    }

    /// Set one run's state (`finished_at` becomes now unless the state is `running`).
    /// Returns whether the run has a `ws_runs` row.
    pub fn set_run_state(&mut self, run_id: &str, state: RunState) -> Result<bool, DbError> {
        queries::set_run_state(&mut self.conn, run_id, state)
            .map_err(|e| self.fail(&format!("set the state of run {run_id}"), e))
    }

    /// Runs still in state `running` (in progress elsewhere, or their coordinator died),
    /// oldest first.
    pub fn unfinished_runs(&mut self) -> Result<Vec<String>, DbError> {
        queries::unfinished_runs(&mut self.conn).map_err(|e| self.fail("list unfinished runs", e))
    }

    /// Mark every run in state `running` as `interrupted` and return their ids. Only call
    /// this when no other coordinator can be running on this database.
    pub fn mark_interrupted_runs(&mut self) -> Result<Vec<String>, DbError> {
        queries::mark_interrupted_runs(&mut self.conn)
            .map_err(|e| self.fail("mark unfinished runs interrupted", e))
    }

    /// The run's static facts, if the run exists.
    pub fn run_info(&mut self, run_id: &str) -> Result<Option<RunInfo>, DbError> {
        queries::run_info(&mut self.conn, run_id)
            .map_err(|e| self.fail(&format!("read run {run_id}"), e))
    }

    /// Every recorded result of a run, ordered by start time (unstarted last), then id.
    pub fn results(&mut self, run_id: &str) -> Result<Vec<WorkstreamResult>, DbError> {
        queries::results(&mut self.conn, run_id)
            .map_err(|e| self.fail(&format!("read the results of run {run_id}"), e))
    }

    /// The stored forecast of a run (empty if none).
    pub fn forecast(&mut self, run_id: &str) -> Result<MergeForecast, DbError> {
        queries::forecast(&mut self.conn, run_id)
            .map_err(|e| self.fail(&format!("read the forecast of run {run_id}"), e))
    }

    /// Expected duration per workstream id from history: the most recent non-skipped
    /// result's `duration_seconds` (results that never started are ignored).
    pub fn expected_durations(&mut self) -> Result<HashMap<String, f64>, DbError> {
        queries::expected_durations(&mut self.conn)
            .map_err(|e| self.fail("read expected durations", e))
    }

    /// `latest` → the most recent run; an exact id → itself; otherwise an error naming up
    /// to three closest known ids. The id found must pass
    /// [`validate_run_id`](ws_core::workstream::validate_run_id) (a crafted row in a shared
    /// database must not become a path or a ref): else an error, nothing used.
    pub fn resolve_run_id(&mut self, spec: &str) -> Result<String, DbError> {
        let id = self.find_run_id(spec)?;
        ws_core::workstream::validate_run_id(&id).map_err(|e| {
            DbError::Other(format!(
                "failed to use a run of database {}: {e}",
                self.location.display()
            ))
        })?;
        Ok(id)
    }

    fn find_run_id(&mut self, spec: &str) -> Result<String, DbError> {
        let c = &mut self.conn;
        let found = (|| -> Result<Result<String, Vec<String>>, TxError> {
            if spec == "latest" {
                return Ok(queries::run_ids(c, Some(1))?
                    .into_iter()
                    .next()
                    .ok_or_else(Vec::new));
            }
            if queries::run_exists(c, spec)? {
                return Ok(Ok(spec.to_string()));
            }
            Ok(Err(queries::run_ids(c, None)?))
        })()
        .map_err(|e| self.fail(&format!("look up run {spec}"), e))?;
        found.map_err(|known| DbError::NoSuchRun {
            run: spec.to_string(),
            db: Some(self.location.display().to_string()),
            closest: rows::closest(spec, &known, 3)
                .into_iter()
                .map(str::to_string)
                .collect(),
        })
    }

    /// The seed's `get_run_summary`.
    pub fn get_run_summary(&mut self, run_id: &str) -> Result<Option<RunSummary>, DbError> {
        queries::summaries(&mut self.conn, Some(run_id), 1)
            .map(|v| v.into_iter().next())
            .map_err(|e| self.fail(&format!("read the summary of run {run_id}"), e))
    }

    /// The seed's `get_all_runs`: most recent first (`created_at`, then start time, then
    /// insertion order).
    pub fn get_all_runs(&mut self, limit: usize) -> Result<Vec<RunSummary>, DbError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        queries::summaries(&mut self.conn, None, limit).map_err(|e| self.fail("list runs", e))
    }

    /// Record branches found merged, ignoring ones already recorded; returns how many
    /// are new.
    pub fn record_merges(&mut self, merges: &[MergeRecord]) -> Result<usize, DbError> {
        queries::record_merges(&mut self.conn, merges).map_err(|e| self.fail("record merges", e))
    }

    /// The recorded merges of a run, by workstream id.
    pub fn merged(&mut self, run_id: &str) -> Result<HashMap<String, MergeRecord>, DbError> {
        queries::merged(&mut self.conn, run_id)
            .map_err(|e| self.fail(&format!("read the merges of run {run_id}"), e))
    }

    /// Completed results, across all runs, that have a branch and no recorded merge.
    pub fn unmerged_completed_count(&mut self) -> Result<usize, DbError> {
        queries::unmerged_completed_count(&mut self.conn)
            .map_err(|e| self.fail("count unmerged results", e))
    }

    /// Branch name → (run id, workstream id) for every completed result with a branch.
    pub fn branch_index(&mut self) -> Result<HashMap<String, (String, String)>, DbError> {
        queries::branch_index(&mut self.conn).map_err(|e| self.fail("read the branch index", e))
    }

    /// Record one `git ws-merge` (its `ws_integrations` row, its steps and its test runs)
    /// in one transaction; returns the new row's id.
    pub fn record_integration(&mut self, it: &IntegrationRecord) -> Result<i64, DbError> {
        queries::record_integration(&mut self.conn, it)
            .map_err(|e| self.fail(&format!("record the integration of run {}", it.run_id), e))
    }

    /// The run's most recent integration, if it was ever integrated.
    pub fn latest_integration(
        &mut self,
        run_id: &str,
    ) -> Result<Option<IntegrationRecord>, DbError> {
        queries::latest_integration(&mut self.conn, run_id)
            .map_err(|e| self.fail(&format!("read the integration of run {run_id}"), e))
    }

    /// How many integrations of the run were recorded.
    pub fn integration_count(&mut self, run_id: &str) -> Result<usize, DbError> {
        queries::integration_count(&mut self.conn, run_id)
            .map_err(|e| self.fail(&format!("count the integrations of run {run_id}"), e))
    }
}
