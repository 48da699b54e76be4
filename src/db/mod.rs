//! Persistence: the SQLite database through diesel with embedded migrations (the seed's
//! three tables plus normalised extras), per-connection PRAGMAs, and every query the tool
//! and the library API make.

mod models;
mod queries;
pub mod schema;
#[cfg(test)]
mod tests;

use crate::consolidate::Consolidated;
use crate::model::{Forecast, RunInfo, WorkstreamResult};
use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use queries::TxError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The schema migrations compiled into this binary (`migrations/`).
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

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

/// A workstream branch the post-merge hook found merged into `HEAD` (`ws_merges`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeRecord {
    pub run_id: String,
    pub workstream_id: String,
    /// `ws/<run-id>/<id>`.
    pub branch: String,
    /// The branch tip (full SHA) found merged.
    pub tip: String,
    /// `HEAD` (full SHA) after the merge that made the tip reachable.
    pub merge_commit: String,
    pub merged_at: DateTime<Utc>,
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

/// The consolidation database (`.state/multi_agent_consolidated.db` by default). One
/// connection; `Send`, so a runner can keep it behind a `Mutex` and call it from
/// `spawn_blocking`.
pub struct ConsolidationDatabase {
    conn: SqliteConnection,
    path: PathBuf,
}

const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<ConsolidationDatabase>();
};

#[derive(QueryableByName)]
struct VersionRow {
    #[diesel(sql_type = Text)]
    version: String,
}

/// `Ok` for a missing or empty file or one that starts with the SQLite header.
fn check_sqlite_file(path: &Path) -> Result<(), String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    if meta.is_dir() {
        return Err("it is a directory".into());
    }
    if meta.len() == 0 {
        return Ok(());
    }
    let mut head = Vec::with_capacity(16);
    std::fs::File::open(path)
        .and_then(|f| f.take(16).read_to_end(&mut head))
        .map_err(|e| e.to_string())?;
    if head.as_slice() == SQLITE_HEADER {
        Ok(())
    } else {
        Err("not an SQLite database".into())
    }
}

/// How long opening waits for other connections, like `busy_timeout`.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `PRAGMA journal_mode = WAL`, retried while the database is locked: when several
/// connections open a fresh file at once, the switch to WAL can fail with "database is
/// locked" at once instead of waiting for `busy_timeout`.
fn set_wal(conn: &mut SqliteConnection, busy: std::time::Duration) -> QueryResult<()> {
    let start = std::time::Instant::now();
    loop {
        match conn.batch_execute("PRAGMA journal_mode = WAL;") {
            Err(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("locked") && start.elapsed() < busy =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Versions recorded in `__diesel_schema_migrations`, without creating that table.
fn applied_versions(conn: &mut SqliteConnection) -> QueryResult<BTreeSet<String>> {
    let exists: Vec<VersionRow> = diesel::sql_query(
        "SELECT name AS version FROM sqlite_master \
         WHERE type = 'table' AND name = '__diesel_schema_migrations'",
    )
    .load(conn)?;
    if exists.is_empty() {
        return Ok(BTreeSet::new());
    }
    let rows: Vec<VersionRow> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations").load(conn)?;
    Ok(rows.into_iter().map(|r| r.version).collect())
}

/// Versions of the migrations embedded in this binary.
fn known_versions() -> Result<BTreeSet<String>, String> {
    let migrations = MigrationSource::<Sqlite>::migrations(&MIGRATIONS)
        .map_err(|e| format!("failed to read the embedded migrations: {e}"))?;
    Ok(migrations
        .iter()
        .map(|m| m.name().version().to_string())
        .collect())
}

/// Refuse a database that recorded a migration this binary does not have.
fn refuse_newer(applied: &BTreeSet<String>, known: &BTreeSet<String>) -> Result<(), String> {
    match applied.iter().filter(|v| !known.contains(*v)).max() {
        Some(v) => Err(format!(
            "it was written by a newer git-ws (schema version {v}); upgrade git-ws"
        )),
        None => Ok(()),
    }
}

impl ConsolidationDatabase {
    /// Open or create the database at `path` (creating parent directories), set the
    /// PRAGMAs and run pending migrations. Errors (file left byte-for-byte untouched): the
    /// file is not SQLite; its schema is newer than this binary knows.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        Self::open_with(path, BUSY_TIMEOUT)
    }

    /// Open an existing database for the post-merge hook: waits at most 50 ms for a lock,
    /// so a busy database makes the hook give up instead of blocking the merge.
    pub fn open_for_hook(path: &Path) -> Result<Self, DbError> {
        if !path.is_file() {
            return Err(DbError(format!(
                "failed to open database {}: no such file",
                path.display()
            )));
        }
        Self::open_with(path, std::time::Duration::from_millis(50))
    }

    fn open_with(path: &Path, busy: std::time::Duration) -> Result<Self, DbError> {
        let fail = |why: &dyn fmt::Display| {
            DbError(format!("failed to open database {}: {why}", path.display()))
        };
        check_sqlite_file(path).map_err(|e| fail(&e))?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                DbError(format!(
                    "failed to create directory {} for database {}: {e}",
                    parent.display(),
                    path.display()
                ))
            })?;
        }
        let text = path
            .to_str()
            .ok_or_else(|| fail(&"the path is not valid UTF-8"))?;
        // SQLite reads `file:` (and diesel `sqlite://`) as a URI: keep relative paths plain.
        let url = if path.is_relative() && (text.starts_with("file:") || text.contains("://")) {
            format!("./{text}")
        } else {
            text.to_string()
        };
        let mut conn = SqliteConnection::establish(&url).map_err(|e| fail(&e))?;
        conn.batch_execute(&format!("PRAGMA busy_timeout = {};", busy.as_millis()))
            .map_err(|e| fail(&e))?;
        set_wal(&mut conn, busy).map_err(|e| fail(&e))?;
        for pragma in ["PRAGMA synchronous = NORMAL;", "PRAGMA foreign_keys = ON;"] {
            conn.batch_execute(pragma).map_err(|e| fail(&e))?;
        }
        let known = known_versions().map_err(|e| fail(&e))?;
        let applied = applied_versions(&mut conn).map_err(|e| fail(&e))?;
        refuse_newer(&applied, &known).map_err(|e| fail(&e))?;
        if !known.is_subset(&applied) {
            // One writer at a time: a second process opening a fresh file waits here, then
            // finds nothing pending.
            conn.immediate_transaction(|c| -> Result<(), TxError> {
                let applied = applied_versions(c)?;
                refuse_newer(&applied, &known)?;
                c.run_pending_migrations(MIGRATIONS)
                    .map_err(|e| TxError::Msg(format!("failed to migrate: {e}")))?;
                Ok(())
            })
            .map_err(|e| fail(&e))?;
        }
        Ok(ConsolidationDatabase {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Open an existing database (error naming the path if it does not exist); pending
    /// migrations are applied as in [`ConsolidationDatabase::open`].
    pub fn open_existing(path: &Path) -> Result<Self, DbError> {
        match std::fs::metadata(path) {
            Ok(_) => Self::open(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DbError(format!(
                "failed to open database {}: no such file (no run has been recorded here yet)",
                path.display()
            ))),
            Err(e) => Err(DbError(format!(
                "failed to open database {}: {e}",
                path.display()
            ))),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn fail(&self, what: &str, e: impl fmt::Display) -> DbError {
        DbError(format!(
            "failed to {what} in database {}: {e}",
            self.path.display()
        ))
    }

    /// Allocate the run id (`info.run_id`, or with `-2`, `-3`, … appended if taken) and
    /// insert the run rows (`consolidated_runs` with zero totals, `ws_runs` in state
    /// `running`), in one immediate transaction. Returns the id actually used.
    pub fn begin_run(&mut self, info: &RunInfo) -> Result<String, DbError> {
        queries::begin_run(&mut self.conn, info)
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
    pub fn forecast(&mut self, run_id: &str) -> Result<Forecast, DbError> {
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
    /// to three closest known ids.
    pub fn resolve_run_id(&mut self, spec: &str) -> Result<String, DbError> {
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
        found.map_err(|known| {
            let db = self.path.display();
            if known.is_empty() {
                DbError(format!(
                    "no run {spec} in {db}: the database has no runs yet"
                ))
            } else {
                let near = models::closest(spec, &known, 3).join(", ");
                DbError(format!("no run {spec} in {db}; closest: {near}"))
            }
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
}
