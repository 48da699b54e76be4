//! The two backends behind one connection type: [`Conn`] holds an SQLite or a PostgreSQL
//! connection, [`on_conn!`] runs one query body against whichever it is (the body is
//! compiled once per backend, with diesel's native DSL for each), and [`Dialect`] holds the
//! little that differs: how a write transaction starts and the few raw SQL statements.
//! Also the embedded migrations of each backend and the schema-version check they share.
//!
//! PostgreSQL-only work (a queue claimed with `FOR UPDATE SKIP LOCKED`, say) matches
//! `Conn::Postgres` directly and uses the native `PgConnection`.

use super::error::{MigrationError, TxError, TxResult};
use diesel::connection::SimpleConnection;
use diesel::migration::{Migration, MigrationSource};
use diesel::pg::{Pg, PgConnection};
use diesel::prelude::*;
use diesel::query_builder::SqlQuery;
use diesel::query_dsl::LoadQuery;
use diesel::sql_types::Text;
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::collections::BTreeSet;

/// The SQLite schema migrations compiled into this binary (`migrations/sqlite`).
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
/// The PostgreSQL schema migrations compiled into this binary (`migrations/postgres`): the
/// same versions, tables and columns as the SQLite ones.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// One open connection to either backend.
pub enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Run `body` with `$c` bound to the concrete connection (`&mut SqliteConnection` or
/// `&mut PgConnection`): `on_conn!(conn, |c| query.execute(c))`.
macro_rules! on_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::backend::Conn::Sqlite($c) => $body,
            $crate::backend::Conn::Postgres($c) => $body,
        }
    };
}
pub(crate) use on_conn;

/// What differs between the backends for the queries both run.
pub trait Dialect: Connection + Sized {
    /// Run `f` in a transaction that is safe for read-then-write across processes.
    /// SQLite: `BEGIN IMMEDIATE` (the write lock up front, so concurrent writers queue
    /// instead of failing). PostgreSQL: a read-write transaction; the statements' own row
    /// locks and unique constraints order concurrent writers.
    fn write_tx<T>(&mut self, f: impl FnOnce(&mut Self) -> TxResult<T>) -> TxResult<T>;

    /// A tie-breaker for runs created in the same microsecond (SQLite's `rowid`; there is
    /// no insertion order in PostgreSQL, so the run id, whose `-2`, `-3` suffixes sort
    /// after the first).
    const INSERTION_ORDER: &'static str;

    /// `(workstream_id TEXT, duration_seconds DOUBLE)`: per workstream id, the duration of
    /// the most recently started, non-skipped result.
    const EXPECTED_DURATIONS: &'static str;

    /// An expression over alias `r` of `agent_results`: `metadata.branch` when the metadata
    /// is valid JSON with a string there, else NULL.
    const BRANCH_OF_RESULT: &'static str;

    /// `(version TEXT)`: one row when `__diesel_schema_migrations` exists, none otherwise.
    const MIGRATIONS_TABLE: &'static str;

    /// [`Dialect::INSERTION_ORDER`], callable on a connection.
    fn insertion_order(&self) -> &'static str {
        Self::INSERTION_ORDER
    }

    /// [`Dialect::EXPECTED_DURATIONS`], callable on a connection.
    fn expected_durations_sql(&self) -> &'static str {
        Self::EXPECTED_DURATIONS
    }

    /// [`Dialect::BRANCH_OF_RESULT`], callable on a connection.
    fn branch_of_result_sql(&self) -> &'static str {
        Self::BRANCH_OF_RESULT
    }
}

impl Dialect for SqliteConnection {
    fn write_tx<T>(&mut self, f: impl FnOnce(&mut Self) -> TxResult<T>) -> TxResult<T> {
        keep_first_error(self, f, |c, g| {
            if in_transaction(c) {
                return c.transaction(g);
            }
            c.immediate_transaction(g)
        })
    }

    const INSERTION_ORDER: &'static str = "consolidated_runs.rowid";

    // One row per workstream: SQLite takes the bare columns of an aggregate query from the
    // row that holds the MAX, i.e. the most recent start (ties: the latest row).
    const EXPECTED_DURATIONS: &'static str =
        "SELECT workstream_id, duration_seconds, MAX(start_time || printf('%020d', id)) AS latest \
         FROM agent_results \
         WHERE status != 'skipped' AND start_time IS NOT NULL AND duration_seconds IS NOT NULL \
         GROUP BY workstream_id";

    const BRANCH_OF_RESULT: &'static str = "CASE WHEN json_valid(r.metadata) \
         AND json_type(r.metadata, '$.branch') = 'text' \
         THEN json_extract(r.metadata, '$.branch') END";

    const MIGRATIONS_TABLE: &'static str = "SELECT name AS version FROM sqlite_master \
         WHERE type = 'table' AND name = '__diesel_schema_migrations'";
}

impl Dialect for PgConnection {
    fn write_tx<T>(&mut self, f: impl FnOnce(&mut Self) -> TxResult<T>) -> TxResult<T> {
        keep_first_error(self, f, |c, g| {
            if in_transaction(c) {
                return c.transaction(g);
            }
            c.build_transaction().read_write().run(g)
        })
    }

    const INSERTION_ORDER: &'static str = "consolidated_runs.run_id";

    const EXPECTED_DURATIONS: &'static str =
        "SELECT DISTINCT ON (workstream_id) workstream_id, duration_seconds \
         FROM agent_results \
         WHERE status != 'skipped' AND start_time IS NOT NULL AND duration_seconds IS NOT NULL \
         ORDER BY workstream_id, start_time DESC, id DESC";

    // ws_json_text is defined by migrations/postgres (invalid JSON gives NULL, not an error).
    const BRANCH_OF_RESULT: &'static str = "ws_json_text(r.metadata, 'branch')";

    const MIGRATIONS_TABLE: &'static str =
        "SELECT CAST(to_regclass('__diesel_schema_migrations') AS TEXT) AS version \
         WHERE to_regclass('__diesel_schema_migrations') IS NOT NULL";
}

/// Run `body` through `tx` (a transaction) and return `body`'s own error when it fails,
/// even if the rollback that follows fails too. diesel returns the rollback's error then,
/// and SQLite rolls a transaction back by itself on `SQLITE_FULL` ("database or disk is
/// full"), so its `ROLLBACK` fails with "no transaction is active" and the cause would be
/// lost.
fn keep_first_error<C, T>(
    c: &mut C,
    body: impl FnOnce(&mut C) -> TxResult<T>,
    tx: impl FnOnce(&mut C, &mut dyn FnMut(&mut C) -> TxResult<T>) -> TxResult<T>,
) -> TxResult<T> {
    let mut body = Some(body);
    let mut failed = None;
    let res = tx(c, &mut |c| {
        let body = body.take().expect("a transaction body runs once");
        body(c).map_err(|e| {
            failed = Some(e);
            TxError::Msg("the transaction failed".to_string())
        })
    });
    match failed {
        Some(e) => Err(e),
        None => res,
    }
}

/// Whether `c` is inside a transaction already: a write transaction started inside another
/// one (the shared queue's, which records a result as part of its own) becomes a savepoint.
fn in_transaction<C>(c: &mut C) -> bool
where
    C: Connection<TransactionManager = diesel::connection::AnsiTransactionManager>,
{
    use diesel::connection::TransactionManager;
    diesel::connection::AnsiTransactionManager::transaction_manager_status_mut(c)
        .transaction_depth()
        .is_ok_and(|d| d.is_some())
}

#[derive(QueryableByName)]
pub struct VersionRow {
    #[diesel(sql_type = Text)]
    version: String,
}

/// Versions recorded in `__diesel_schema_migrations`, without creating that table.
fn applied_in<C>(c: &mut C) -> QueryResult<BTreeSet<String>>
where
    C: Dialect,
    SqlQuery: for<'a> LoadQuery<'a, C, VersionRow>,
{
    let exists: Vec<VersionRow> = diesel::sql_query(C::MIGRATIONS_TABLE).load(c)?;
    if exists.is_empty() {
        return Ok(BTreeSet::new());
    }
    let rows: Vec<VersionRow> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations").load(c)?;
    Ok(rows.into_iter().map(|r| r.version).collect())
}

/// Versions recorded in `__diesel_schema_migrations`, without creating that table.
pub fn applied_versions(conn: &mut Conn) -> QueryResult<BTreeSet<String>> {
    on_conn!(conn, |c| applied_in(c))
}

fn versions<DB: diesel::backend::Backend>(
    m: &EmbeddedMigrations,
) -> Result<BTreeSet<String>, MigrationError>
where
    EmbeddedMigrations: MigrationSource<DB>,
{
    let migrations: Vec<Box<dyn Migration<DB>>> = MigrationSource::<DB>::migrations(m)
        .map_err(|e| MigrationError::Embedded(e.to_string()))?;
    Ok(migrations
        .iter()
        .map(|m| m.name().version().to_string())
        .collect())
}

/// Versions of the migrations embedded in this binary for this connection's backend.
pub fn known_versions(conn: &Conn) -> Result<BTreeSet<String>, MigrationError> {
    match conn {
        Conn::Sqlite(_) => versions::<Sqlite>(&SQLITE_MIGRATIONS),
        Conn::Postgres(_) => versions::<Pg>(&POSTGRES_MIGRATIONS),
    }
}

/// Refuse a database whose recorded migrations this binary does not have: written by a
/// newer git-ws, or (none of ours applied) by some other program.
pub fn check_applied(
    applied: &BTreeSet<String>,
    known: &BTreeSet<String>,
) -> Result<(), MigrationError> {
    let unknown: Vec<&String> = applied.iter().filter(|v| !known.contains(*v)).collect();
    let Some(newest) = unknown.last() else {
        return Ok(());
    };
    let version = newest.to_string();
    if applied.iter().any(|v| known.contains(v)) || known.iter().all(|k| k < *newest) {
        Err(MigrationError::Newer { version })
    } else {
        Err(MigrationError::Foreign { version })
    }
}

/// Apply the pending migrations of this connection's backend, in one transaction that
/// other git-ws processes wait for (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: an advisory
/// lock), re-checking the applied versions once inside it.
pub fn migrate(conn: &mut Conn, known: &BTreeSet<String>) -> TxResult<()> {
    fn pending<C>(c: &mut C, m: EmbeddedMigrations) -> TxResult<()>
    where
        C: MigrationHarness<<C as Connection>::Backend> + Connection,
        EmbeddedMigrations: MigrationSource<<C as Connection>::Backend>,
    {
        c.run_pending_migrations(m)
            .map(|_| ())
            .map_err(|e| TxError::Migration(MigrationError::Failed(e.to_string())))
    }
    match conn {
        Conn::Sqlite(c) => c.write_tx(|c| {
            check_applied(&applied_in(c)?, known)?;
            pending(c, SQLITE_MIGRATIONS)
        }),
        Conn::Postgres(c) => c.write_tx(|c| {
            // Any 64-bit key: one per purpose, held until this transaction ends.
            c.batch_execute("SELECT pg_advisory_xact_lock(7754002126161660929);")?;
            check_applied(&applied_in(c)?, known)?;
            pending(c, POSTGRES_MIGRATIONS)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn schema_versions() {
        let known = set(&["20261120000001", "20261120000002"]);
        assert!(check_applied(&set(&[]), &known).is_ok());
        assert!(check_applied(&set(&["20261120000001"]), &known).is_ok());
        assert!(check_applied(&known, &known).is_ok());
        let e = check_applied(&set(&["20261120000001", "20270101000000"]), &known).unwrap_err();
        assert_eq!(
            e,
            MigrationError::Newer {
                version: "20270101000000".into()
            }
        );
        assert!(
            e.to_string()
                .contains("newer git-ws (schema version 20270101000000)"),
            "{e}"
        );
        // Only a later version, none of ours: still a newer git-ws (it squashed migrations).
        let e = check_applied(&set(&["20270101000000"]), &known).unwrap_err();
        assert!(matches!(e, MigrationError::Newer { .. }), "{e}");
        assert!(e.to_string().contains("newer git-ws"), "{e}");
        let e = check_applied(&set(&["20190101000000"]), &known).unwrap_err();
        assert!(matches!(e, MigrationError::Foreign { .. }), "{e}");
        assert!(e.to_string().contains("not a git-ws database"), "{e}");
    }

    #[test]
    fn both_backends_embed_the_same_versions() {
        assert_eq!(
            versions::<Sqlite>(&SQLITE_MIGRATIONS).unwrap(),
            versions::<Pg>(&POSTGRES_MIGRATIONS).unwrap()
        );
    }
}
