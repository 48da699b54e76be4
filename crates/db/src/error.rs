//! What the database crate fails with: [`DbError`] for callers, one variant per cause a
//! caller or a test tells apart, each keeping the one sentence the user sees;
//! [`MigrationError`] and [`ConnectFailure`] for the two causes that have kinds of their
//! own; and [`TxError`], the failure inside one transaction, before it is named.

use ws_core::Invalid;

/// A database failure, one sentence naming the path (or the URL, password hidden) and
/// what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    /// No run by that id (or `latest` in a database with no runs). `db` and `closest` are
    /// known when the database was searched: "no run X in DB; closest: a, b".
    #[error("no run {run}{}", searched(.db, .closest))]
    NoSuchRun {
        run: String,
        db: Option<String>,
        closest: Vec<String>,
    },
    /// Reading a database that holds nothing of git-ws's yet: no SQLite file, or no git-ws
    /// tables in the PostgreSQL database.
    #[error("failed to open database {db}: {why}")]
    NothingRecorded { db: String, why: &'static str },
    /// The schema cannot be used: written by a newer git-ws, not git-ws's, or the pending
    /// migrations failed.
    #[error("failed to open database {db}: {cause}")]
    Migration { db: String, cause: MigrationError },
    /// The PostgreSQL server cannot be reached or refuses us (`failure` says which);
    /// `detail` is libpq's message with what it means in front, password hidden.
    #[error("failed to open database {db}: {detail}")]
    Connect {
        db: String,
        failure: ConnectFailure,
        detail: String,
    },
    /// A write failed because the disk (or the database) is full: SQLite's `SQLITE_FULL`,
    /// PostgreSQL's `disk_full`, or the OS's `ENOSPC`. The sentence says what failed.
    #[error("{0}")]
    DiskFull(String),
    /// The database location given (flag, environment, git config) is not one.
    #[error(transparent)]
    Location(#[from] Invalid),
    /// Any other failure: the sentence says what failed and the database's own message.
    #[error("{0}")]
    Other(String),
}

/// " in DB: the database has no runs yet" / " in DB; closest: a, b" / "".
fn searched(db: &Option<String>, closest: &[String]) -> String {
    match db {
        None => String::new(),
        Some(db) if closest.is_empty() => format!(" in {db}: the database has no runs yet"),
        Some(db) => format!(" in {db}; closest: {}", closest.join(", ")),
    }
}

impl DbError {
    /// A failure described by `sentence`, whose cause (the database's or the OS's message)
    /// is `cause`: [`DbError::DiskFull`] when the cause says the disk is full, else
    /// [`DbError::Other`].
    pub(crate) fn failed(sentence: String, cause: &str) -> DbError {
        if says_disk_full(cause) {
            DbError::DiskFull(sentence)
        } else {
            DbError::Other(sentence)
        }
    }
}

/// Whether a message from SQLite, PostgreSQL or the OS says the disk is full: SQLite's
/// `SQLITE_FULL` reads "database or disk is full"; PostgreSQL's `disk_full` (53100) and
/// every OS `ENOSPC` end in `strerror(ENOSPC)`, "No space left on device" (the C locale's
/// text: this process never sets a locale, and a server with other `lc_messages` is not
/// recognised).
pub(crate) fn says_disk_full(msg: &str) -> bool {
    msg.contains("database or disk is full") || msg.contains("No space left on device")
}

/// Why the schema of a database cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigrationError {
    /// It records a migration newer than every one this binary has.
    #[error("it was written by a newer git-ws (schema version {version}); upgrade git-ws")]
    Newer { version: String },
    /// A reader found migrations this binary has and the database lacks: readers never
    /// migrate, a writing command (`git ws-run`) upgrades it.
    #[error(
        "it was written by an older git-ws (schema version {version}); a reader does not upgrade it, the next `git ws-run` will"
    )]
    Older { version: String },
    /// It records migrations this binary does not have and none of ours.
    #[error(
        "it is not a git-ws database (it records schema migrations git-ws does not have, e.g. {version})"
    )]
    Foreign { version: String },
    /// Applying the pending migrations failed.
    #[error("failed to migrate: {0}")]
    Failed(String),
    /// The migrations compiled into this binary could not be read.
    #[error("failed to read the embedded migrations: {0}")]
    Embedded(String),
}

/// How a connection to PostgreSQL failed, as libpq's message says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    /// Refused, timed out, no route, host unknown, the server starting or stopping.
    Unreachable,
    /// Wrong password, no password, no such role, no `pg_hba.conf` entry.
    Authentication,
    /// The server has no database of that name.
    NoSuchDatabase,
    /// TLS was asked for (`sslmode`) and failed: the server does not offer it, its
    /// certificate is not trusted (`sslrootcert`) or is not for the host name.
    Tls,
    /// libpq refused the URL itself.
    BadUrl,
    /// Anything else libpq said.
    Other,
}

impl ConnectFailure {
    /// What the failure means, put in front of libpq's message; `None` for
    /// [`ConnectFailure::Other`].
    pub fn meaning(self) -> Option<&'static str> {
        Some(match self {
            ConnectFailure::Authentication => "authentication failed",
            ConnectFailure::NoSuchDatabase => {
                "the database does not exist (create it first, e.g. with createdb)"
            }
            ConnectFailure::Unreachable => "the server is unreachable",
            ConnectFailure::Tls => {
                "TLS failed (the URL's sslmode asks for it; see the README's Database section)"
            }
            ConnectFailure::BadUrl => "the URL is not valid",
            ConnectFailure::Other => return None,
        })
    }
}

/// A failure inside a transaction: from the database, from decoding what it returned, or
/// a schema that cannot be migrated.
#[derive(Debug, thiserror::Error)]
pub enum TxError {
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error(transparent)]
    Migration(#[from] MigrationError),
    #[error("{0}")]
    Msg(String),
}

impl From<String> for TxError {
    fn from(e: String) -> Self {
        TxError::Msg(e)
    }
}

pub type TxResult<T> = Result<T, TxError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_are_unchanged() {
        let no_run = |db: Option<&str>, closest: &[&str]| DbError::NoSuchRun {
            run: "ma-run-x".into(),
            db: db.map(str::to_string),
            closest: closest.iter().map(|s| s.to_string()).collect(),
        };
        let cases = [
            (no_run(None, &[]), "no run ma-run-x"),
            (
                no_run(Some("/r/db"), &[]),
                "no run ma-run-x in /r/db: the database has no runs yet",
            ),
            (
                no_run(Some("/r/db"), &["ma-run-1", "ma-run-2"]),
                "no run ma-run-x in /r/db; closest: ma-run-1, ma-run-2",
            ),
            (
                DbError::NothingRecorded {
                    db: "/r/db".into(),
                    why: "no such file (no run has been recorded here yet)",
                },
                "failed to open database /r/db: no such file (no run has been recorded here yet)",
            ),
            (
                DbError::Migration {
                    db: "/r/db".into(),
                    cause: MigrationError::Newer {
                        version: "20270101000000".into(),
                    },
                },
                "failed to open database /r/db: it was written by a newer git-ws (schema version 20270101000000); upgrade git-ws",
            ),
            (
                DbError::Connect {
                    db: "postgres://u:***@h/d".into(),
                    failure: ConnectFailure::Authentication,
                    detail: "authentication failed: FATAL: password authentication failed"
                        .into(),
                },
                "failed to open database postgres://u:***@h/d: authentication failed: FATAL: password authentication failed",
            ),
            (DbError::DiskFull("failed to x".into()), "failed to x"),
            (
                DbError::Location(Invalid::new("empty database path")),
                "empty database path",
            ),
            (DbError::Other("failed to y".into()), "failed to y"),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn a_full_disk_is_recognised() {
        // SQLite's SQLITE_FULL, PostgreSQL's disk_full (53100), and the OS's ENOSPC.
        for msg in [
            "database or disk is full",
            "could not extend file \"base/16384/16385\": No space left on device",
            &std::io::Error::from_raw_os_error(libc_enospc()).to_string(),
        ] {
            assert!(says_disk_full(msg), "{msg}");
            assert!(matches!(
                DbError::failed("failed to x".into(), msg),
                DbError::DiskFull(_)
            ));
        }
        assert_eq!(
            DbError::failed("failed to x".into(), "database is locked"),
            DbError::Other("failed to x".into())
        );
    }

    /// ENOSPC on Linux (the crate does not depend on libc for one constant).
    fn libc_enospc() -> i32 {
        28
    }
}
