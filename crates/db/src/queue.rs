//! The shared queue of a run that several processes (on one machine or many) work on
//! (`git ws-run --remote`, `--join`): the run's workstream definitions, their dependency
//! edges, claims with leases and an attempt counter (the fencing token), the fenced
//! completion that records a result and settles its dependents in one transaction, and the
//! one guarded consolidation.
//!
//! Every statement is written once for both backends; only the pick of the next claim
//! differs: on PostgreSQL it locks the row it takes with `FOR UPDATE SKIP LOCKED`, so
//! concurrent claimers never wait for each other; SQLite serialises writers anyway
//! (`BEGIN IMMEDIATE`). Lease times are milliseconds since the epoch on the database's own
//! clock, so the workers' clocks never matter.

use super::backend::{on_conn, Conn};
use super::error::{TxError, TxResult};
use super::queries;
use super::rows::fmt_ts;
use super::schema::{
    ws_queue, ws_queue_attempts, ws_queue_deps, ws_queue_runs, ws_queue_workers, ws_usage,
};
use super::{ConsolidationDatabase, DbError, RunState};
use chrono::Utc;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::dsl::sql;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::sqlite::SqliteConnection;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use ws_core::consolidate::Consolidated;
use ws_core::model::{Status, WorkstreamResult};
use ws_core::plan;

/// What every worker of a shared run follows, whatever its own flags say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueSettings {
    /// The default per-workstream time limit (`--timeout` of the coordinator).
    pub timeout_secs: f64,
    /// `--fail-fast`: the first failure skips everything still queued.
    pub fail_fast: bool,
    /// How long a claim lasts without a heartbeat, in milliseconds.
    pub lease_ms: i64,
}

/// A shared run, as its `ws_queue_runs` row holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedRun {
    pub run_id: String,
    /// The remote's URL as the coordinator knew it (for messages; each worker uses its own
    /// `--remote`).
    pub remote: String,
    /// The base commit (full SHA), pushed to `refs/ws/<run>/base` on the remote.
    pub base: String,
    pub settings: QueueSettings,
    /// When the one consolidation finished, if it has.
    pub consolidated_at: Option<String>,
    /// The worker consolidating, or that consolidated.
    pub consolidator: Option<String>,
    /// How many consolidations completed (1 once finished; never more).
    pub consolidations: i64,
}

/// One workstream to put in the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueItem {
    pub id: String,
    /// The file it came from, relative to the workstreams directory.
    pub file: String,
    /// The file's JSON as the coordinator read it: every worker runs this definition.
    pub definition: String,
    pub depends_on: Vec<String>,
    /// Expected critical path in seconds ([`plan::priorities`]): higher is claimed first.
    pub priority: f64,
    pub expected_secs: Option<f64>,
}

/// A workstream this worker now holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub workstream_id: String,
    pub file: String,
    pub definition: String,
    /// This claim's attempt number: its fencing token.
    pub attempt: i64,
    pub expected_secs: Option<f64>,
    /// The worker whose expired lease this claim took over, if any.
    pub took_over: Option<String>,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimOutcome {
    Claimed(Claim),
    /// Nothing is ready now; `unfinished` workstreams have no final result yet (queued
    /// behind dependencies, or held by other workers).
    Nothing {
        unfinished: i64,
    },
}

/// What a fenced completion did.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// The result is the workstream's final one. `skipped`: the dependents (or, after
    /// `--fail-fast`, everything queued) it settled as skipped, recorded in the same
    /// transaction. `unfinished`: workstreams of the run still without a final result.
    Accepted {
        skipped: Vec<String>,
        unfinished: i64,
    },
    /// The claim was no longer this worker's (its lease expired and another worker took
    /// the workstream over, or it was already settled): nothing was written.
    Rejected {
        /// Who holds or settled it now, and with which attempt.
        holder: Option<String>,
        attempt: i64,
    },
}

/// `consolidated_at`, `consolidator`, `consolidation_token`, `consolidation_expires`.
type ConsolidationRow = (Option<String>, Option<String>, i64, Option<i64>);

/// Who consolidates a shared run.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsolidationClaim {
    /// This worker: finish with this token.
    Mine { token: i64 },
    /// Another worker is consolidating (its lease has not expired).
    Busy { by: String },
    /// It is done.
    Done { by: Option<String> },
    /// Workstreams are still without a final result.
    NotReady { unfinished: i64 },
}

/// Counts of a shared run's queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub queued: i64,
    pub claimed: i64,
    pub done: i64,
}

impl QueueCounts {
    pub fn unfinished(&self) -> i64 {
        self.queued + self.claimed
    }
}

/// One claim and how it ended (`ws_queue_attempts`).
#[derive(Debug, Clone, PartialEq, Queryable)]
pub struct Attempt {
    pub workstream_id: String,
    pub attempt: i64,
    pub worker: String,
    pub agent_id: String,
    /// `completed`, `failed`, `expired`, `released`, `rejected`; `None` while it runs.
    pub outcome: Option<String>,
}

/// Builds the result of a workstream the queue settles as skipped: `(id, file, definition,
/// reason)`.
pub type SkipResult<'a> = &'a dyn Fn(&str, &str, &str, &str) -> WorkstreamResult;

const QUEUED: &str = "queued";
const CLAIMED: &str = "claimed";
const DONE: &str = "done";

/// The database's clock, in milliseconds since the epoch.
trait Clock {
    const NOW_MS: &'static str;
}

impl Clock for SqliteConnection {
    const NOW_MS: &'static str =
        "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS BIGINT)";
}

impl Clock for PgConnection {
    const NOW_MS: &'static str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";
}

fn now_ms<C>(c: &mut C) -> QueryResult<i64>
where
    C: Connection + Clock,
    diesel::dsl::select<diesel::expression::SqlLiteral<BigInt>>:
        diesel::query_dsl::LoadQuery<'static, C, i64>,
{
    diesel::select(sql::<BigInt>(C::NOW_MS)).get_result(c)
}

/// A row the claim considers.
type Pickable = (String, String, String, i64, Option<f64>, Option<String>);

/// The next claimable row of a run: ready and queued, by priority; or (`expired`) a claim
/// whose lease ran out before `now`, by priority.
macro_rules! pick_query {
    ($run:expr, false, $now:expr) => {
        pick_query!(@select $run)
            .filter(ws_queue::state.eq(QUEUED))
            .filter(ws_queue::blocked.eq(0))
    };
    ($run:expr, true, $now:expr) => {
        pick_query!(@select $run)
            .filter(ws_queue::state.eq(CLAIMED))
            .filter(ws_queue::lease_expires.lt($now))
    };
    (@select $run:expr) => {
        ws_queue::table
            .filter(ws_queue::run_id.eq($run))
            .select((
                ws_queue::workstream_id,
                ws_queue::file,
                ws_queue::definition,
                ws_queue::attempt,
                ws_queue::expected_secs,
                ws_queue::worker,
            ))
            .order((ws_queue::priority.desc(), ws_queue::seq.asc()))
            .limit(1)
    };
}

/// Taking the next row to claim: the one statement that differs between the backends.
trait Pick {
    fn pick(&mut self, run: &str, expired: bool, now: i64) -> QueryResult<Option<Pickable>>;
}

impl Pick for PgConnection {
    fn pick(&mut self, run: &str, expired: bool, now: i64) -> QueryResult<Option<Pickable>> {
        if expired {
            pick_query!(run, true, now)
                .for_update()
                .skip_locked()
                .first(self)
                .optional()
        } else {
            pick_query!(run, false, now)
                .for_update()
                .skip_locked()
                .first(self)
                .optional()
        }
    }
}

impl Pick for SqliteConnection {
    fn pick(&mut self, run: &str, expired: bool, now: i64) -> QueryResult<Option<Pickable>> {
        if expired {
            pick_query!(run, true, now).first(self).optional()
        } else {
            pick_query!(run, false, now).first(self).optional()
        }
    }
}

/// Run `f` in one write transaction on either backend (SQLite: `BEGIN IMMEDIATE`;
/// PostgreSQL: read-write); the queries it calls that open their own write transaction
/// (recording a result, finishing a run) become savepoints inside it.
fn in_write_tx<T>(conn: &mut Conn, f: impl FnOnce(&mut Conn) -> TxResult<T>) -> TxResult<T> {
    match conn {
        Conn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?,
        Conn::Postgres(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN TRANSACTION READ WRITE")?
        }
    }
    match f(conn) {
        Ok(v) => {
            on_conn!(conn, |c| AnsiTransactionManager::commit_transaction(c))?;
            Ok(v)
        }
        Err(e) => {
            let _ = on_conn!(conn, |c| AnsiTransactionManager::rollback_transaction(c));
            Err(e)
        }
    }
}

fn unfinished_count(conn: &mut Conn, run: &str) -> TxResult<i64> {
    Ok(on_conn!(conn, |c| ws_queue::table
        .filter(ws_queue::run_id.eq(run))
        .filter(ws_queue::state.ne(DONE))
        .count()
        .get_result::<i64>(c))?)
}

fn settings_from(text: &str, run: &str) -> TxResult<QueueSettings> {
    serde_json::from_str(text)
        .map_err(|e| TxError::Msg(format!("bad ws_queue_runs.settings of run {run}: {e}")))
}

type SharedRunRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
);

fn shared_run_from(row: SharedRunRow) -> TxResult<SharedRun> {
    let (run_id, remote, base, settings, consolidated_at, consolidator, consolidations) = row;
    Ok(SharedRun {
        settings: settings_from(&settings, &run_id)?,
        run_id,
        remote,
        base,
        consolidated_at,
        consolidator,
        consolidations,
    })
}

macro_rules! shared_run_columns {
    () => {
        (
            ws_queue_runs::run_id,
            ws_queue_runs::remote,
            ws_queue_runs::base,
            ws_queue_runs::settings,
            ws_queue_runs::consolidated_at,
            ws_queue_runs::consolidator,
            ws_queue_runs::consolidations,
        )
    };
}

/// [`on_conn!`] with a body of its own (`return` and `?` leave the body, not the caller):
/// `on_conn_fn!(conn, |c| -> TxResult<T> { … })`.
macro_rules! on_conn_fn {
    ($conn:expr, |$c:ident| -> $t:ty $body:block) => {
        match $conn {
            Conn::Sqlite($c) => (|| -> $t { $body })(),
            Conn::Postgres($c) => (|| -> $t { $body })(),
        }
    };
}

/// Set the outcome of one attempt that has none yet (a statement for `.execute(c)`).
macro_rules! set_outcome {
    ($run:expr, $ws:expr, $attempt:expr, $outcome:expr, $stamp:expr) => {
        diesel::update(
            ws_queue_attempts::table
                .filter(ws_queue_attempts::run_id.eq($run))
                .filter(ws_queue_attempts::workstream_id.eq($ws))
                .filter(ws_queue_attempts::attempt.eq($attempt))
                .filter(ws_queue_attempts::outcome.is_null()),
        )
        .set((
            ws_queue_attempts::outcome.eq($outcome),
            ws_queue_attempts::ended_at.eq($stamp),
        ))
    };
}

/// The dependents a failure of `failed` skips, transitively, among the `queued` ones, each
/// with the reason (as a local run words it). Pure.
fn skips_after_failure(
    failed: &str,
    queued: &HashSet<String>,
    edges: &[(String, String)],
) -> Vec<plan::Skip> {
    let mut deps: HashMap<&str, Vec<String>> = HashMap::new();
    for (ws, on) in edges {
        if queued.contains(ws) {
            deps.entry(ws.as_str()).or_default().push(on.clone());
        }
    }
    let mut ids: Vec<&String> = queued.iter().collect();
    ids.sort();
    let mut jobs = vec![plan::Job {
        id: failed.to_string(),
        depends_on: Vec::new(),
        expected_secs: None,
    }];
    jobs.extend(ids.into_iter().map(|id| plan::Job {
        id: id.clone(),
        depends_on: deps.remove(id.as_str()).unwrap_or_default(),
        expected_secs: None,
    }));
    let mut sched = plan::Scheduler::new(jobs);
    sched.finish(failed, false)
}

// ---------------------------------------------------------------------------------------
// The steps of a fenced completion (`ConsolidationDatabase::complete`), each inside its one
// transaction.

/// The fencing check: mark the workstream done with the result's status if `attempt`
/// still holds its claim. `false`: the claim is no longer this attempt's.
fn settle_claim(conn: &mut Conn, result: &WorkstreamResult, attempt: i64) -> TxResult<bool> {
    let (run_id, ws) = (result.run_id.as_str(), result.workstream_id.as_str());
    let n = on_conn!(conn, |c| diesel::update(
        ws_queue::table
            .filter(ws_queue::run_id.eq(run_id))
            .filter(ws_queue::workstream_id.eq(ws))
            .filter(ws_queue::attempt.eq(attempt))
            .filter(ws_queue::state.eq(CLAIMED)),
    )
    .set((
        ws_queue::state.eq(DONE),
        ws_queue::status.eq(result.status.as_str()),
        ws_queue::lease_expires.eq(None::<i64>),
    ))
    .execute(c))?;
    Ok(n > 0)
}

/// A late result: its attempt's outcome becomes `rejected`, and who holds the workstream
/// now (with which attempt) is reported; nothing else is written.
fn reject_late(
    conn: &mut Conn,
    run_id: &str,
    ws: &str,
    attempt: i64,
    stamp: &str,
) -> TxResult<Completion> {
    let (holder, current) = on_conn_fn!(conn, |c| -> TxResult<(Option<String>, i64)> {
        set_outcome!(run_id, ws, attempt, "rejected", stamp).execute(c)?;
        let row: Option<(Option<String>, i64)> = ws_queue::table
            .filter(ws_queue::run_id.eq(run_id))
            .filter(ws_queue::workstream_id.eq(ws))
            .select((ws_queue::worker, ws_queue::attempt))
            .first(c)
            .optional()?;
        Ok(row.unwrap_or((None, 0)))
    })?;
    Ok(Completion::Rejected {
        holder,
        attempt: current,
    })
}

/// The accepted result: its attempt's outcome, and the result itself.
fn record_final(
    conn: &mut Conn,
    result: &WorkstreamResult,
    attempt: i64,
    stamp: &str,
) -> TxResult<()> {
    let (run_id, ws) = (result.run_id.as_str(), result.workstream_id.as_str());
    on_conn!(conn, |c| set_outcome!(
        run_id,
        ws,
        attempt,
        result.status.as_str(),
        stamp
    )
    .execute(c))?;
    queries::record_result(conn, result)
}

/// A completed workstream: each of its dependents waits for one dependency less.
fn unblock_dependents(conn: &mut Conn, run_id: &str, ws: &str) -> TxResult<()> {
    on_conn!(conn, |c| {
        let dependents = ws_queue_deps::table
            .filter(ws_queue_deps::run_id.eq(run_id))
            .filter(ws_queue_deps::depends_on.eq(ws))
            .select(ws_queue_deps::workstream_id);
        diesel::update(
            ws_queue::table
                .filter(ws_queue::run_id.eq(run_id))
                .filter(ws_queue::workstream_id.eq_any(dependents)),
        )
        .set(ws_queue::blocked.eq(ws_queue::blocked - 1))
        .execute(c)
    })?;
    Ok(())
}

/// A workstream that did not complete: skip its queued dependents, transitively (with
/// `fail_fast`, everything still queued), each recorded through `skip`. Returns the ids
/// skipped.
fn skip_after_failure(
    conn: &mut Conn,
    run_id: &str,
    failed: &str,
    fail_fast: bool,
    skip: SkipResult<'_>,
) -> TxResult<Vec<String>> {
    let (queued, edges) = queued_with_edges(conn, run_id)?;
    let ids: HashSet<String> = queued.iter().map(|q| q.0.clone()).collect();
    let defs: HashMap<&str, (&str, &str)> = queued
        .iter()
        .map(|(id, f, d)| (id.as_str(), (f.as_str(), d.as_str())))
        .collect();
    let mut skipped = Vec::new();
    for (id, reason) in skips_for(failed, &ids, &edges, fail_fast) {
        if take_queued(conn, run_id, &id)? {
            let (file, def) = defs.get(id.as_str()).copied().unwrap_or(("", ""));
            queries::record_result(conn, &skip(&id, file, def, &reason))?;
            skipped.push(id);
        }
    }
    Ok(skipped)
}

/// A queued workstream: id, file, definition.
type Queued = (String, String, String);
/// A dependency edge: workstream, the one it depends on.
type Edge = (String, String);

/// The run's queued workstreams and every dependency edge.
fn queued_with_edges(conn: &mut Conn, run_id: &str) -> TxResult<(Vec<Queued>, Vec<Edge>)> {
    on_conn_fn!(conn, |c| -> TxResult<_> {
        let queued: Vec<Queued> = ws_queue::table
            .filter(ws_queue::run_id.eq(run_id))
            .filter(ws_queue::state.eq(QUEUED))
            .select((
                ws_queue::workstream_id,
                ws_queue::file,
                ws_queue::definition,
            ))
            .load(c)?;
        let edges: Vec<Edge> = ws_queue_deps::table
            .filter(ws_queue_deps::run_id.eq(run_id))
            .select((ws_queue_deps::workstream_id, ws_queue_deps::depends_on))
            .load(c)?;
        Ok((queued, edges))
    })
}

/// What a failure of `failed` skips among the `queued` ids, with the reasons: its
/// dependents, transitively, then (with `fail_fast`) the rest in id order. Pure.
fn skips_for(
    failed: &str,
    queued: &HashSet<String>,
    edges: &[Edge],
    fail_fast: bool,
) -> Vec<(String, String)> {
    let mut skips: Vec<(String, String)> = skips_after_failure(failed, queued, edges)
        .into_iter()
        .map(|s| (s.id, s.reason))
        .collect();
    if fail_fast {
        let mut rest: Vec<&String> = queued
            .iter()
            .filter(|id| !skips.iter().any(|(s, _)| s == *id))
            .collect();
        rest.sort();
        let why = format!("not started: --fail-fast after {failed} failed");
        skips.extend(rest.into_iter().map(|id| (id.clone(), why.clone())));
    }
    skips
}

/// Settle queued workstream `id` as skipped; `false` when it is no longer queued.
fn take_queued(conn: &mut Conn, run_id: &str, id: &str) -> TxResult<bool> {
    take_queued_as(conn, run_id, id, Status::Skipped)
}

/// [`take_queued`], settled with `status`.
fn take_queued_as(conn: &mut Conn, run_id: &str, id: &str, status: Status) -> TxResult<bool> {
    let n = on_conn!(conn, |c| diesel::update(
        ws_queue::table
            .filter(ws_queue::run_id.eq(run_id))
            .filter(ws_queue::workstream_id.eq(id))
            .filter(ws_queue::state.eq(QUEUED)),
    )
    .set((
        ws_queue::state.eq(DONE),
        ws_queue::status.eq(status.as_str()),
    ))
    .execute(c))?;
    Ok(n == 1)
}

impl ConsolidationDatabase {
    fn queue_fail(&self, what: &str, e: impl std::fmt::Display) -> DbError {
        self.fail(what, e)
    }

    /// Make run `run.run_id` (begun with [`begin_run`](Self::begin_run)) a shared run: its
    /// `ws_queue_runs` row, one queued row per item (blocked by its dependencies inside the
    /// run), the dependency edges, and the results already known (`settled`: invalid files
    /// and what they skip), all in one transaction. Items with a settled result are queued
    /// as done.
    pub fn create_shared_run(
        &mut self,
        run: &SharedRun,
        items: &[QueueItem],
        settled: &[WorkstreamResult],
    ) -> Result<(), DbError> {
        let settings = serde_json::to_string(&run.settings)
            .map_err(|e| self.queue_fail("encode the queue settings", e))?;
        let now = fmt_ts(&Utc::now());
        let done: HashMap<&str, Status> = settled
            .iter()
            .map(|r| (r.workstream_id.as_str(), r.status))
            .collect();
        let queued: HashSet<&str> = items
            .iter()
            .map(|i| i.id.as_str())
            .filter(|id| !done.contains_key(id))
            .collect();
        let rid = run.run_id.as_str();
        in_write_tx(&mut self.conn, |conn| {
            on_conn!(conn, |c| {
                diesel::insert_into(ws_queue_runs::table)
                    .values((
                        ws_queue_runs::run_id.eq(rid),
                        ws_queue_runs::remote.eq(&run.remote),
                        ws_queue_runs::base.eq(&run.base),
                        ws_queue_runs::settings.eq(&settings),
                        ws_queue_runs::created_at.eq(&now),
                        ws_queue_runs::consolidation_token.eq(0i64),
                        ws_queue_runs::consolidations.eq(0i64),
                    ))
                    .execute(c)?;
                for (seq, item) in items.iter().enumerate() {
                    let status = done.get(item.id.as_str());
                    let mut deps: Vec<&String> = item
                        .depends_on
                        .iter()
                        .filter(|d| queued.contains(d.as_str()) && **d != item.id)
                        .collect();
                    deps.sort();
                    deps.dedup();
                    diesel::insert_into(ws_queue::table)
                        .values((
                            ws_queue::run_id.eq(rid),
                            ws_queue::workstream_id.eq(&item.id),
                            ws_queue::seq.eq(seq as i64),
                            ws_queue::file.eq(&item.file),
                            ws_queue::definition.eq(&item.definition),
                            ws_queue::priority.eq(item.priority),
                            ws_queue::expected_secs.eq(item.expected_secs),
                            ws_queue::blocked.eq(deps.len() as i64),
                            ws_queue::state.eq(if status.is_some() { DONE } else { QUEUED }),
                            ws_queue::attempt.eq(0i64),
                            ws_queue::status.eq(status.map(|s| s.as_str())),
                        ))
                        .execute(c)?;
                    for d in deps {
                        diesel::insert_into(ws_queue_deps::table)
                            .values((
                                ws_queue_deps::run_id.eq(rid),
                                ws_queue_deps::workstream_id.eq(&item.id),
                                ws_queue_deps::depends_on.eq(d),
                            ))
                            .execute(c)?;
                    }
                }
                Ok::<_, TxError>(())
            })?;
            for r in settled {
                queries::record_result(conn, r)?;
            }
            Ok(())
        })
        .map_err(|e| self.queue_fail(&format!("enqueue the workstreams of run {rid}"), e))
    }

    /// The shared run `run_id`, if it is one.
    pub fn shared_run(&mut self, run_id: &str) -> Result<Option<SharedRun>, DbError> {
        (|| -> TxResult<Option<SharedRun>> {
            let row: Option<SharedRunRow> = on_conn!(&mut self.conn, |c| ws_queue_runs::table
                .filter(ws_queue_runs::run_id.eq(run_id))
                .select(shared_run_columns!())
                .first(c)
                .optional())?;
            row.map(shared_run_from).transpose()
        })()
        .map_err(|e| self.queue_fail(&format!("read shared run {run_id}"), e))
    }

    /// The most recently created shared run that is not consolidated yet.
    pub fn latest_open_shared_run(&mut self) -> Result<Option<String>, DbError> {
        on_conn!(&mut self.conn, |c| ws_queue_runs::table
            .filter(ws_queue_runs::consolidated_at.is_null())
            .order((
                ws_queue_runs::created_at.desc(),
                ws_queue_runs::run_id.desc()
            ))
            .select(ws_queue_runs::run_id)
            .first::<String>(c)
            .optional())
        .map_err(|e| self.queue_fail("look up the latest open shared run", e))
    }

    /// Record that `worker` works on the run with `agents` agents (again, if it rejoins).
    pub fn register_worker(
        &mut self,
        run_id: &str,
        worker: &str,
        agents: usize,
    ) -> Result<(), DbError> {
        let now = fmt_ts(&Utc::now());
        in_write_tx(&mut self.conn, |conn| {
            on_conn!(conn, |c| {
                let n = diesel::update(
                    ws_queue_workers::table
                        .filter(ws_queue_workers::run_id.eq(run_id))
                        .filter(ws_queue_workers::worker.eq(worker)),
                )
                .set((
                    ws_queue_workers::agents.eq(agents as i64),
                    ws_queue_workers::left_at.eq(None::<String>),
                ))
                .execute(c)?;
                if n == 0 {
                    diesel::insert_into(ws_queue_workers::table)
                        .values((
                            ws_queue_workers::run_id.eq(run_id),
                            ws_queue_workers::worker.eq(worker),
                            ws_queue_workers::agents.eq(agents as i64),
                            ws_queue_workers::joined_at.eq(&now),
                        ))
                        .execute(c)?;
                }
                Ok(())
            })
        })
        .map_err(|e| self.queue_fail(&format!("register worker {worker} of run {run_id}"), e))
    }

    /// Record that `worker` left the run.
    pub fn leave(&mut self, run_id: &str, worker: &str) -> Result<(), DbError> {
        let now = fmt_ts(&Utc::now());
        on_conn!(&mut self.conn, |c| diesel::update(
            ws_queue_workers::table
                .filter(ws_queue_workers::run_id.eq(run_id))
                .filter(ws_queue_workers::worker.eq(worker)),
        )
        .set(ws_queue_workers::left_at.eq(&now))
        .execute(c))
        .map(|_| ())
        .map_err(|e| self.queue_fail(&format!("record that {worker} left run {run_id}"), e))
    }

    /// The agents of every worker that joined the run, added up.
    pub fn worker_agents(&mut self, run_id: &str) -> Result<usize, DbError> {
        on_conn!(&mut self.conn, |c| ws_queue_workers::table
            .filter(ws_queue_workers::run_id.eq(run_id))
            .select(ws_queue_workers::agents)
            .load::<i64>(c))
        .map(|v| v.into_iter().map(|n| n.max(0) as usize).sum())
        .map_err(|e| self.queue_fail(&format!("count the agents of run {run_id}"), e))
    }

    /// Claim the next workstream of the run for `agent_id` of `worker`: the ready one with
    /// the highest priority, else one whose lease expired (its attempt is marked
    /// `expired`). The claim gets the next attempt number and a lease of `lease_ms`.
    pub fn claim(
        &mut self,
        run_id: &str,
        worker: &str,
        agent_id: &str,
        lease_ms: i64,
    ) -> Result<ClaimOutcome, DbError> {
        let stamp = fmt_ts(&Utc::now());
        in_write_tx(&mut self.conn, |conn| {
            let picked = on_conn_fn!(conn, |c| -> TxResult<Option<(Pickable, bool, i64)>> {
                let now = now_ms(c)?;
                if let Some(p) = c.pick(run_id, false, now)? {
                    return Ok(Some((p, false, now)));
                }
                Ok(c.pick(run_id, true, now)?.map(|p| (p, true, now)))
            })?;
            let Some(((ws, file, definition, attempt, expected_secs, holder), expired, now)) =
                picked
            else {
                return Ok(ClaimOutcome::Nothing {
                    unfinished: unfinished_count(conn, run_id)?,
                });
            };
            let next = attempt + 1;
            on_conn_fn!(conn, |c| -> TxResult<()> {
                diesel::update(
                    ws_queue::table
                        .filter(ws_queue::run_id.eq(run_id))
                        .filter(ws_queue::workstream_id.eq(&ws)),
                )
                .set((
                    ws_queue::state.eq(CLAIMED),
                    ws_queue::attempt.eq(next),
                    ws_queue::worker.eq(worker),
                    ws_queue::agent_id.eq(agent_id),
                    ws_queue::lease_expires.eq(now + lease_ms),
                ))
                .execute(c)?;
                if expired {
                    set_outcome!(run_id, &ws, attempt, "expired", &stamp).execute(c)?;
                }
                diesel::insert_into(ws_queue_attempts::table)
                    .values((
                        ws_queue_attempts::run_id.eq(run_id),
                        ws_queue_attempts::workstream_id.eq(&ws),
                        ws_queue_attempts::attempt.eq(next),
                        ws_queue_attempts::worker.eq(worker),
                        ws_queue_attempts::agent_id.eq(agent_id),
                        ws_queue_attempts::claimed_at.eq(&stamp),
                    ))
                    .execute(c)?;
                Ok(())
            })?;
            Ok(ClaimOutcome::Claimed(Claim {
                workstream_id: ws,
                file,
                definition,
                attempt: next,
                expected_secs,
                took_over: if expired { holder } else { None },
            }))
        })
        .map_err(|e| self.queue_fail(&format!("claim a workstream of run {run_id}"), e))
    }

    /// Renew the leases of `claims` (workstream id, attempt) held by `worker` for another
    /// `lease_ms`. Returns the claims that are no longer this worker's (taken over after
    /// their lease expired, or settled).
    pub fn renew(
        &mut self,
        run_id: &str,
        worker: &str,
        claims: &[(String, i64)],
        lease_ms: i64,
    ) -> Result<Vec<String>, DbError> {
        in_write_tx(&mut self.conn, |conn| {
            on_conn_fn!(conn, |c| -> TxResult<Vec<String>> {
                let now = now_ms(c)?;
                let mut lost = Vec::new();
                for (ws, attempt) in claims {
                    let n = diesel::update(
                        ws_queue::table
                            .filter(ws_queue::run_id.eq(run_id))
                            .filter(ws_queue::workstream_id.eq(ws))
                            .filter(ws_queue::attempt.eq(attempt))
                            .filter(ws_queue::state.eq(CLAIMED))
                            .filter(ws_queue::worker.eq(worker)),
                    )
                    .set(ws_queue::lease_expires.eq(now + lease_ms))
                    .execute(c)?;
                    if n == 0 {
                        lost.push(ws.clone());
                    }
                }
                Ok(lost)
            })
        })
        .map_err(|e| self.queue_fail(&format!("renew the leases of {worker} in run {run_id}"), e))
    }

    /// Give a claim back to the queue (Ctrl-C on a worker): the workstream is queued again
    /// for any worker; the attempt is marked `released`. Returns whether the claim was
    /// still this attempt's.
    pub fn release(&mut self, run_id: &str, ws: &str, attempt: i64) -> Result<bool, DbError> {
        let stamp = fmt_ts(&Utc::now());
        in_write_tx(&mut self.conn, |conn| {
            on_conn_fn!(conn, |c| -> TxResult<bool> {
                let n = diesel::update(
                    ws_queue::table
                        .filter(ws_queue::run_id.eq(run_id))
                        .filter(ws_queue::workstream_id.eq(ws))
                        .filter(ws_queue::attempt.eq(attempt))
                        .filter(ws_queue::state.eq(CLAIMED)),
                )
                .set((
                    ws_queue::state.eq(QUEUED),
                    ws_queue::worker.eq(None::<String>),
                    ws_queue::agent_id.eq(None::<String>),
                    ws_queue::lease_expires.eq(None::<i64>),
                ))
                .execute(c)?;
                set_outcome!(run_id, ws, attempt, "released", &stamp).execute(c)?;
                Ok(n == 1)
            })
        })
        .map_err(|e| self.queue_fail(&format!("give {ws} of run {run_id} back to the queue"), e))
    }

    /// Record `result` as the final result of its workstream if `attempt` still holds the
    /// claim (the fencing check), and settle what it decides, in one transaction: a
    /// completed workstream unblocks its dependents; any other result skips its queued
    /// dependents transitively (and, with `fail_fast`, everything still queued), each
    /// recorded through `skip`. A late result (the claim was taken over) is rejected and
    /// nothing but its attempt's outcome is written.
    pub fn complete(
        &mut self,
        result: &WorkstreamResult,
        attempt: i64,
        fail_fast: bool,
        skip: SkipResult<'_>,
    ) -> Result<Completion, DbError> {
        let run_id = result.run_id.as_str();
        let ws = result.workstream_id.as_str();
        let stamp = fmt_ts(&Utc::now());
        in_write_tx(&mut self.conn, |conn| {
            if !settle_claim(conn, result, attempt)? {
                return reject_late(conn, run_id, ws, attempt, &stamp);
            }
            record_final(conn, result, attempt, &stamp)?;
            let skipped = if result.status == Status::Completed {
                unblock_dependents(conn, run_id, ws)?;
                Vec::new()
            } else {
                skip_after_failure(conn, run_id, ws, fail_fast, skip)?
            };
            Ok(Completion::Accepted {
                skipped,
                unfinished: unfinished_count(conn, run_id)?,
            })
        })
        .map_err(|e| {
            self.queue_fail(
                &format!("record result {ws} (attempt {attempt}) of run {run_id}"),
                e,
            )
        })
    }

    /// What every worker of the run recorded as spent, in dollars: the sum of the costs of
    /// its results (`ws_usage.cost_usd`); `None` while none reported a cost. One sum for a
    /// shared run's `--budget`, whichever worker spent it.
    pub fn run_spent(&mut self, run_id: &str) -> Result<Option<f64>, DbError> {
        use diesel::dsl::sum;
        on_conn!(&mut self.conn, |c| ws_usage::table
            .filter(ws_usage::run_id.eq(run_id))
            .select(sum(ws_usage::cost_usd))
            .first::<Option<f64>>(c))
        .map_err(|e| self.queue_fail(&format!("sum the spend of run {run_id}"), e))
    }

    /// Settle every still-queued workstream of the run as deferred (a spent `--budget`),
    /// each recorded through `defer` (given id, file, definition), in one transaction.
    /// Returns the ids deferred.
    pub fn defer_queued(
        &mut self,
        run_id: &str,
        defer: SkipResult<'_>,
        reason: &str,
    ) -> Result<Vec<String>, DbError> {
        in_write_tx(&mut self.conn, |conn| {
            let (queued, _) = queued_with_edges(conn, run_id)?;
            let mut out = Vec::new();
            for (id, file, def) in &queued {
                if take_queued_as(conn, run_id, id, Status::Deferred)? {
                    queries::record_result(conn, &defer(id, file, def, reason))?;
                    out.push(id.clone());
                }
            }
            Ok(out)
        })
        .map_err(|e| self.queue_fail(&format!("defer the queued workstreams of run {run_id}"), e))
    }

    /// How many workstreams of the run are queued, claimed, done.
    pub fn queue_counts(&mut self, run_id: &str) -> Result<QueueCounts, DbError> {
        on_conn!(&mut self.conn, |c| ws_queue::table
            .filter(ws_queue::run_id.eq(run_id))
            .group_by(ws_queue::state)
            .select((ws_queue::state, diesel::dsl::count_star()))
            .load::<(String, i64)>(c))
        .map(|rows| {
            let mut n = QueueCounts::default();
            for (state, count) in rows {
                match state.as_str() {
                    QUEUED => n.queued = count,
                    CLAIMED => n.claimed = count,
                    _ => n.done += count,
                }
            }
            n
        })
        .map_err(|e| self.queue_fail(&format!("count the queue of run {run_id}"), e))
    }

    /// Every claim of the run and how it ended, by workstream and attempt.
    pub fn attempts(&mut self, run_id: &str) -> Result<Vec<Attempt>, DbError> {
        on_conn!(&mut self.conn, |c| ws_queue_attempts::table
            .filter(ws_queue_attempts::run_id.eq(run_id))
            .order((
                ws_queue_attempts::workstream_id.asc(),
                ws_queue_attempts::attempt.asc(),
            ))
            .select((
                ws_queue_attempts::workstream_id,
                ws_queue_attempts::attempt,
                ws_queue_attempts::worker,
                ws_queue_attempts::agent_id,
                ws_queue_attempts::outcome,
            ))
            .load(c))
        .map_err(|e| self.queue_fail(&format!("read the attempts of run {run_id}"), e))
    }

    /// Take the run's consolidation for `worker` if every workstream has its final result
    /// and nobody holds it (or its holder's lease of `lease_ms` expired): exactly one
    /// worker gets [`ConsolidationClaim::Mine`] at a time.
    pub fn claim_consolidation(
        &mut self,
        run_id: &str,
        worker: &str,
        lease_ms: i64,
    ) -> Result<ConsolidationClaim, DbError> {
        in_write_tx(&mut self.conn, |conn| {
            let unfinished = unfinished_count(conn, run_id)?;
            on_conn_fn!(conn, |c| -> TxResult<ConsolidationClaim> {
                let now = now_ms(c)?;
                let row: Option<ConsolidationRow> = ws_queue_runs::table
                    .filter(ws_queue_runs::run_id.eq(run_id))
                    .select((
                        ws_queue_runs::consolidated_at,
                        ws_queue_runs::consolidator,
                        ws_queue_runs::consolidation_token,
                        ws_queue_runs::consolidation_expires,
                    ))
                    .first(c)
                    .optional()?;
                let Some((done_at, holder, token, expires)) = row else {
                    return Err(TxError::Msg(format!("run {run_id} is not a shared run")));
                };
                if done_at.is_some() {
                    return Ok(ConsolidationClaim::Done { by: holder });
                }
                if unfinished > 0 {
                    return Ok(ConsolidationClaim::NotReady { unfinished });
                }
                if let (Some(by), Some(until)) = (&holder, expires) {
                    if until > now && by != worker {
                        return Ok(ConsolidationClaim::Busy { by: by.clone() });
                    }
                }
                let n = diesel::update(
                    ws_queue_runs::table
                        .filter(ws_queue_runs::run_id.eq(run_id))
                        .filter(ws_queue_runs::consolidation_token.eq(token))
                        .filter(ws_queue_runs::consolidated_at.is_null()),
                )
                .set((
                    ws_queue_runs::consolidator.eq(worker),
                    ws_queue_runs::consolidation_token.eq(token + 1),
                    ws_queue_runs::consolidation_expires.eq(now + lease_ms),
                ))
                .execute(c)?;
                if n == 1 {
                    Ok(ConsolidationClaim::Mine { token: token + 1 })
                } else {
                    Ok(ConsolidationClaim::Busy {
                        by: "another worker".to_string(),
                    })
                }
            })
        })
        .map_err(|e| self.queue_fail(&format!("take the consolidation of run {run_id}"), e))
    }

    /// Extend the consolidation lease held with `token`; false when it is no longer held.
    pub fn renew_consolidation(
        &mut self,
        run_id: &str,
        token: i64,
        lease_ms: i64,
    ) -> Result<bool, DbError> {
        in_write_tx(&mut self.conn, |conn| {
            on_conn_fn!(conn, |c| -> TxResult<bool> {
                let now = now_ms(c)?;
                let n = diesel::update(
                    ws_queue_runs::table
                        .filter(ws_queue_runs::run_id.eq(run_id))
                        .filter(ws_queue_runs::consolidation_token.eq(token))
                        .filter(ws_queue_runs::consolidated_at.is_null()),
                )
                .set(ws_queue_runs::consolidation_expires.eq(now + lease_ms))
                .execute(c)?;
                Ok(n == 1)
            })
        })
        .map_err(|e| self.queue_fail(&format!("renew the consolidation of run {run_id}"), e))
    }

    /// The one consolidation's last step, fenced by `token`: in one transaction, mark the
    /// shared run consolidated, set the run's agent count to every worker's agents, and
    /// write the totals and state ([`finish_run`](Self::finish_run)). False (and nothing
    /// written) when the consolidation is no longer held with `token`.
    pub fn finish_consolidation(
        &mut self,
        token: i64,
        consolidated: &Consolidated,
    ) -> Result<bool, DbError> {
        let run_id = consolidated.run.run_id.as_str();
        let stamp = fmt_ts(&Utc::now());
        let agents = consolidated.run.agents as i64;
        in_write_tx(&mut self.conn, |conn| {
            let n = on_conn!(conn, |c| diesel::update(
                ws_queue_runs::table
                    .filter(ws_queue_runs::run_id.eq(run_id))
                    .filter(ws_queue_runs::consolidation_token.eq(token))
                    .filter(ws_queue_runs::consolidated_at.is_null()),
            )
            .set((
                ws_queue_runs::consolidated_at.eq(&stamp),
                ws_queue_runs::consolidations.eq(ws_queue_runs::consolidations + 1),
            ))
            .execute(c))?;
            if n == 0 {
                return Ok(false);
            }
            on_conn!(conn, |c| diesel::update(
                super::schema::ws_runs::table.find(run_id)
            )
            .set(super::schema::ws_runs::agents.eq(agents))
            .execute(c))?;
            // Deferred workstreams (a spent shared budget) leave the run paused.
            let state = if consolidated.deferred > 0 {
                RunState::Paused
            } else {
                RunState::Finished
            };
            queries::finish_run(conn, consolidated, state)?;
            Ok(true)
        })
        .map_err(|e| self.queue_fail(&format!("finish the consolidation of run {run_id}"), e))
    }

    /// Whether the connection still answers (a cheap round trip).
    pub fn ping(&mut self) -> Result<(), DbError> {
        on_conn!(&mut self.conn, |c| diesel::select(sql::<BigInt>("1"))
            .get_result::<i64>(c))
        .map(|_| ())
        .map_err(|e| self.queue_fail("reach the database", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ws_core::model::{ErrorType, RunInfo, WsError, UNASSIGNED_AGENT};

    fn set(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn edges(e: &[(&str, &str)]) -> Vec<(String, String)> {
        e.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn a_failure_skips_its_queued_dependents_transitively_with_the_local_reasons() {
        let skips = skips_after_failure(
            "a",
            &set(&["b", "c", "d"]),
            &edges(&[("b", "a"), ("c", "b"), ("d", "x")]),
        );
        let got: Vec<(&str, &str)> = skips
            .iter()
            .map(|s| (s.id.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("b", "dependency a failed"),
                ("c", "dependency b was skipped (a failed)")
            ]
        );
    }

    const RUN: &str = "ma-run-20261201-120000";

    /// A fresh SQLite database with a shared run of `items` (id, dependencies, priority).
    fn shared(items: &[(&str, &[&str], f64)]) -> (tempfile::TempDir, ConsolidationDatabase) {
        let dir = tempfile::tempdir().unwrap();
        let mut db = ConsolidationDatabase::open(dir.path().join("q.db")).unwrap();
        let info = RunInfo {
            run_id: RUN.into(),
            started_at: Utc::now(),
            finished_at: None,
            agents: 2,
            base: "b".repeat(40),
            base_rev: "HEAD".into(),
            repo_root: "/r".into(),
            rerun_of: None,
        };
        assert_eq!(db.begin_run(&info).unwrap(), RUN);
        let items: Vec<QueueItem> = items
            .iter()
            .map(|(id, deps, p)| QueueItem {
                id: id.to_string(),
                file: format!("{id}.json"),
                definition: format!("{{\"id\": \"{id}\", \"command\": \"true\"}}"),
                depends_on: deps.iter().map(|d| d.to_string()).collect(),
                priority: *p,
                expected_secs: Some(*p),
            })
            .collect();
        let run = SharedRun {
            run_id: RUN.into(),
            remote: "/remote.git".into(),
            base: "b".repeat(40),
            settings: QueueSettings {
                timeout_secs: 60.0,
                fail_fast: false,
                lease_ms: 30_000,
            },
            consolidated_at: None,
            consolidator: None,
            consolidations: 0,
        };
        db.create_shared_run(&run, &items, &[]).unwrap();
        (dir, db)
    }

    fn claim(db: &mut ConsolidationDatabase, worker: &str, lease_ms: i64) -> Option<Claim> {
        match db
            .claim(RUN, worker, &format!("agent-1@{worker}"), lease_ms)
            .unwrap()
        {
            ClaimOutcome::Claimed(c) => Some(c),
            ClaimOutcome::Nothing { .. } => None,
        }
    }

    fn result(ws: &str, worker: &str, status: Status) -> WorkstreamResult {
        let mut r = WorkstreamResult::new(RUN, &format!("agent-1@{worker}"), ws, status);
        if status == Status::Failed {
            r.errors
                .push(WsError::new(ErrorType::CommandFailed, "exit 1"));
        }
        r
    }

    fn skip(id: &str, file: &str, _def: &str, reason: &str) -> WorkstreamResult {
        let mut r = WorkstreamResult::new(RUN, UNASSIGNED_AGENT, id, Status::Skipped);
        r.source_file = Some(file.to_string());
        r.errors.push(WsError::new(
            ErrorType::DependencyFailed,
            reason.to_string(),
        ));
        r
    }

    #[test]
    fn claims_go_by_priority_and_wait_for_dependencies() {
        let (_d, mut db) = shared(&[("a", &[], 1.0), ("b", &["a"], 9.0), ("c", &[], 5.0)]);
        // b has the highest priority but waits for a.
        let first = claim(&mut db, "w1", 30_000).unwrap();
        assert_eq!((first.workstream_id.as_str(), first.attempt), ("c", 1));
        let second = claim(&mut db, "w2", 30_000).unwrap();
        assert_eq!(second.workstream_id, "a");
        assert_eq!(claim(&mut db, "w1", 30_000), None);
        let done = db
            .complete(&result("a", "w2", Status::Completed), 1, false, &skip)
            .unwrap();
        assert_eq!(
            done,
            Completion::Accepted {
                skipped: vec![],
                unfinished: 2
            }
        );
        assert_eq!(claim(&mut db, "w2", 30_000).unwrap().workstream_id, "b");
        assert_eq!(
            db.queue_counts(RUN).unwrap(),
            QueueCounts {
                queued: 0,
                claimed: 2,
                done: 1
            }
        );
    }

    #[test]
    fn an_expired_lease_is_taken_over_and_the_late_result_is_rejected() {
        let (_d, mut db) = shared(&[("a", &[], 1.0), ("b", &["a"], 1.0)]);
        // A zero lease expires at once: the next claim takes it over with attempt 2.
        let dead = claim(&mut db, "dead", 0).unwrap();
        assert_eq!(dead.attempt, 1);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let live = claim(&mut db, "live", 30_000).unwrap();
        assert_eq!(
            (
                live.workstream_id.as_str(),
                live.attempt,
                live.took_over.as_deref()
            ),
            ("a", 2, Some("dead"))
        );
        // The dead worker's late result and its heartbeat are refused.
        assert_eq!(
            db.renew(RUN, "dead", &[("a".into(), 1)], 30_000).unwrap(),
            ["a"]
        );
        let late = db
            .complete(&result("a", "dead", Status::Completed), 1, false, &skip)
            .unwrap();
        assert_eq!(
            late,
            Completion::Rejected {
                holder: Some("live".into()),
                attempt: 2
            }
        );
        assert!(db.results(RUN).unwrap().is_empty(), "nothing recorded");
        // The live one renews, completes, and b becomes claimable.
        assert!(db
            .renew(RUN, "live", &[("a".into(), 2)], 30_000)
            .unwrap()
            .is_empty());
        let ok = db
            .complete(&result("a", "live", Status::Completed), 2, false, &skip)
            .unwrap();
        assert!(matches!(ok, Completion::Accepted { unfinished: 1, .. }));
        // A second completion of the same attempt is rejected: one final result.
        let again = db
            .complete(&result("a", "live", Status::Failed), 2, false, &skip)
            .unwrap();
        assert!(matches!(again, Completion::Rejected { .. }), "{again:?}");
        let rows = db.results(RUN).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].status, Status::Completed);
        let outcomes: Vec<(String, i64, Option<String>)> = db
            .attempts(RUN)
            .unwrap()
            .into_iter()
            .map(|a| (a.workstream_id, a.attempt, a.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("a".to_string(), 1, Some("expired".to_string())),
                ("a".to_string(), 2, Some("completed".to_string()))
            ]
        );
    }

    #[test]
    fn a_failure_skips_dependents_in_the_same_transaction_and_fail_fast_skips_the_rest() {
        let (_d, mut db) = shared(&[
            ("a", &[], 3.0),
            ("b", &["a"], 1.0),
            ("c", &["b"], 1.0),
            ("d", &[], 2.0),
            ("e", &[], 1.0),
        ]);
        let a = claim(&mut db, "w", 30_000).unwrap();
        assert_eq!(a.workstream_id, "a");
        let done = db
            .complete(&result("a", "w", Status::Failed), a.attempt, false, &skip)
            .unwrap();
        assert_eq!(
            done,
            Completion::Accepted {
                skipped: vec!["b".into(), "c".into()],
                unfinished: 2
            }
        );
        let rows = db.results(RUN).unwrap();
        let c = rows.iter().find(|r| r.workstream_id == "c").unwrap();
        assert_eq!(c.status, Status::Skipped);
        assert_eq!(c.errors[0].message, "dependency b was skipped (a failed)");
        assert_eq!(c.source_file.as_deref(), Some("c.json"));
        // --fail-fast: d fails, e (still queued) is skipped.
        let d = claim(&mut db, "w", 30_000).unwrap();
        let done = db
            .complete(&result("d", "w", Status::Failed), d.attempt, true, &skip)
            .unwrap();
        assert_eq!(
            done,
            Completion::Accepted {
                skipped: vec!["e".into()],
                unfinished: 0
            }
        );
        let rows = db.results(RUN).unwrap();
        let e = rows.iter().find(|r| r.workstream_id == "e").unwrap();
        assert_eq!(
            e.errors[0].message,
            "not started: --fail-fast after d failed"
        );
    }

    #[test]
    fn a_released_claim_goes_back_to_the_queue() {
        let (_d, mut db) = shared(&[("a", &[], 1.0)]);
        let a = claim(&mut db, "w1", 30_000).unwrap();
        assert!(db.release(RUN, "a", a.attempt).unwrap());
        assert!(!db.release(RUN, "a", a.attempt).unwrap(), "only once");
        let again = claim(&mut db, "w2", 30_000).unwrap();
        assert_eq!((again.workstream_id.as_str(), again.attempt), ("a", 2));
        assert_eq!(again.took_over, None);
        let late = db
            .complete(
                &result("a", "w1", Status::Completed),
                a.attempt,
                false,
                &skip,
            )
            .unwrap();
        assert!(matches!(late, Completion::Rejected { .. }));
    }

    #[test]
    fn exactly_one_consolidation() {
        let (_d, mut db) = shared(&[("a", &[], 1.0)]);
        assert_eq!(
            db.claim_consolidation(RUN, "w1", 30_000).unwrap(),
            ConsolidationClaim::NotReady { unfinished: 1 }
        );
        let a = claim(&mut db, "w1", 30_000).unwrap();
        db.complete(
            &result("a", "w1", Status::Completed),
            a.attempt,
            false,
            &skip,
        )
        .unwrap();
        let ConsolidationClaim::Mine { token } = db.claim_consolidation(RUN, "w1", 30_000).unwrap()
        else {
            panic!("w1 consolidates")
        };
        assert_eq!(
            db.claim_consolidation(RUN, "w2", 30_000).unwrap(),
            ConsolidationClaim::Busy { by: "w1".into() }
        );
        // w1 stalls past a zero lease: w2 takes it over; w1's finish is then refused.
        assert!(db.renew_consolidation(RUN, token, 0).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(5));
        let ConsolidationClaim::Mine { token: t2 } =
            db.claim_consolidation(RUN, "w2", 30_000).unwrap()
        else {
            panic!("w2 takes over")
        };
        assert!(t2 > token);
        let info = db.run_info(RUN).unwrap().unwrap();
        let c = ws_core::consolidate::consolidate(
            &info,
            &db.results(RUN).unwrap(),
            ws_core::model::MergeForecast::default(),
        );
        assert!(!db.finish_consolidation(token, &c).unwrap());
        assert!(db.finish_consolidation(t2, &c).unwrap());
        assert!(!db.finish_consolidation(t2, &c).unwrap(), "only once");
        assert_eq!(
            db.claim_consolidation(RUN, "w1", 30_000).unwrap(),
            ConsolidationClaim::Done {
                by: Some("w2".into())
            }
        );
        let run = db.shared_run(RUN).unwrap().unwrap();
        assert_eq!(run.consolidations, 1);
        assert!(run.consolidated_at.is_some());
        assert_eq!(
            db.get_run_summary(RUN).unwrap().unwrap().state,
            RunState::Finished
        );
        assert_eq!(db.latest_open_shared_run().unwrap(), None);
    }

    #[test]
    fn workers_register_and_their_agents_add_up() {
        let (_d, mut db) = shared(&[("a", &[], 1.0)]);
        db.register_worker(RUN, "w1", 2).unwrap();
        db.register_worker(RUN, "w2", 3).unwrap();
        db.register_worker(RUN, "w1", 2).unwrap();
        assert_eq!(db.worker_agents(RUN).unwrap(), 5);
        db.leave(RUN, "w2").unwrap();
        assert_eq!(db.latest_open_shared_run().unwrap().as_deref(), Some(RUN));
        db.ping().unwrap();
    }
}
