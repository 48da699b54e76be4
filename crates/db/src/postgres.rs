//! Opening the PostgreSQL backend through diesel's libpq driver: a bounded connect timeout,
//! the session settings git-ws relies on (UTC timestamps, no notices, short lock waits for
//! the post-merge hook), and libpq's failures turned into one sentence that says what went
//! wrong (server unreachable, authentication failed, database missing) and names the URL
//! with its password hidden.

use super::error::{ConnectFailure, DbError};
use super::location::PgUrl;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;

/// Seconds libpq waits for a connection, unless the URL sets `connect_timeout`.
const CONNECT_TIMEOUT_SECS: u32 = 10;
/// The same for the post-merge hook (libpq's minimum: 2 s).
const HOOK_CONNECT_TIMEOUT_SECS: u32 = 2;

/// Connect to `url` and configure the session. `hook`: give up quickly (connect within
/// 2 s, wait at most 50 ms for a lock) so a merge is never held up.
pub fn connect(url: &PgUrl, hook: bool) -> Result<PgConnection, DbError> {
    connect_as(url, hook, false)
}

/// [`connect`] for a reader: every transaction of the session is read-only
/// (`default_transaction_read_only`), so nothing can be written or migrated.
pub fn connect_read_only(url: &PgUrl) -> Result<PgConnection, DbError> {
    connect_as(url, false, true)
}

fn connect_as(url: &PgUrl, hook: bool, read_only: bool) -> Result<PgConnection, DbError> {
    let fail = |why: String| {
        let sentence = format!("failed to open database {url}: {why}");
        DbError::failed(sentence, &why)
    };
    let mut target = url.clone();
    if !target.has_param("connect_timeout") {
        let secs = if hook {
            HOOK_CONNECT_TIMEOUT_SECS
        } else {
            CONNECT_TIMEOUT_SECS
        };
        target = target.with_param("connect_timeout", &secs.to_string());
    }
    if !target.has_param("application_name") {
        target = target.with_param("application_name", "git-ws");
    }
    let mut conn = PgConnection::establish(target.secret()).map_err(|e| {
        let libpq = scrub(&e.to_string(), url);
        DbError::Connect {
            db: url.to_string(),
            failure: classify(&libpq),
            detail: describe_failure(&libpq),
        }
    })?;
    let mut session = String::from("SET TIME ZONE 'UTC'; SET client_min_messages = warning;");
    if hook {
        session.push_str(" SET lock_timeout = '50ms'; SET statement_timeout = '2s';");
    }
    if read_only {
        session.push_str(" SET default_transaction_read_only = on;");
    }
    conn.batch_execute(&session)
        .map_err(|e| fail(one_line(&scrub(&e.to_string(), url))))?;
    Ok(conn)
}

/// `text` with the URL's password (if any) replaced by `***`.
fn scrub(text: &str, url: &PgUrl) -> String {
    url.passwords()
        .iter()
        .filter(|p| !p.is_empty())
        .fold(text.to_string(), |t, p| t.replace(p.as_str(), "***"))
}

/// libpq's message on one line: whitespace runs (its messages span lines) become one space.
fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A connection failure as reported by libpq, prefixed with what it means. Pure.
pub fn describe_failure(libpq: &str) -> String {
    let msg = one_line(libpq);
    match classify(&msg).meaning() {
        Some(kind) => format!("{kind}: {msg}"),
        None => msg,
    }
}

/// What a libpq connection failure means. Pure.
pub fn classify(libpq: &str) -> ConnectFailure {
    let m = one_line(libpq).to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| m.contains(n));
    if any(&[
        "password authentication failed",
        "no password supplied",
        "authentication failed",
        "no pg_hba.conf entry",
        "pg_hba.conf rejects",
    ]) || (m.contains("role \"") && m.contains("does not exist"))
    {
        ConnectFailure::Authentication
    } else if m.contains("database \"") && m.contains("does not exist") {
        ConnectFailure::NoSuchDatabase
    } else if any(&["ssl", "certificate", "tls"])
        && !m.contains("connection refused")
        && !m.contains("could not translate host name")
    {
        ConnectFailure::Tls
    } else if any(&[
        "connection refused",
        "could not connect",
        "timeout expired",
        "could not translate host name",
        "no route to host",
        "network is unreachable",
        "no such file or directory",
        "server closed the connection",
        "the database system is starting up",
        "the database system is shutting down",
    ]) {
        ConnectFailure::Unreachable
    } else if any(&[
        "invalid uri",
        "invalid connection option",
        "invalid integer value",
        "invalid port",
        "missing \"=\"",
        "invalid percent-encoded",
        "invalid value",
    ]) {
        ConnectFailure::BadUrl
    } else {
        ConnectFailure::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real libpq messages (diesel's `ConnectionError` text), captured against the
    /// integration tests' throwaway PostgreSQL 15 server; one per paragraph, the first line
    /// naming the description we expect.
    const SAMPLES: &str = include_str!("../../../fixtures/libpq-errors.txt");

    #[test]
    fn libpq_failures_are_named() {
        let mut n = 0;
        let samples = SAMPLES.split("\n\n").filter(|b| {
            b.lines()
                .any(|l| !l.starts_with('#') && !l.trim().is_empty())
        });
        for block in samples {
            let (want, msg) = block.trim().split_once('\n').unwrap();
            let want = want.strip_prefix("# ").unwrap();
            let got = describe_failure(msg);
            assert!(got.starts_with(want), "{want:?} for {msg:?}: got {got:?}");
            assert!(!got.contains('\n'), "{got:?}");
            let kind = classify(msg).meaning().unwrap_or_default();
            assert!(
                kind.starts_with(want),
                "{want:?} for {msg:?}: classified {kind:?}"
            );
            n += 1;
        }
        assert!(n >= 5, "{n} samples");
        assert_eq!(
            describe_failure("something else\n\tentirely"),
            "something else entirely"
        );
        assert_eq!(classify("something else"), ConnectFailure::Other);
    }

    #[test]
    fn passwords_are_scrubbed_from_messages() {
        let url = PgUrl::parse("postgres://u:hunter2@h/d").unwrap();
        assert_eq!(scrub("bad hunter2 here", &url), "bad *** here");
        let url = PgUrl::parse("postgres://u@h/d?password=pw9").unwrap();
        assert_eq!(scrub("x pw9", &url), "x ***");
    }
}
