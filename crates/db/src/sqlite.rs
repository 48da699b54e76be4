//! Opening the SQLite backend: refuse a file that is not SQLite (before writing anything),
//! create parent directories, and set the per-connection PRAGMAs (`busy_timeout`, WAL,
//! `synchronous = NORMAL`, foreign keys); or open an existing file read-only for a reader
//! (`mode=ro`, `query_only`), which writes nothing, not even a journal.

use super::error::DbError;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

/// The first 16 bytes of every SQLite database file.
pub(super) const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// `Ok` for a missing or empty file or one that starts with the SQLite header.
pub(crate) fn check_file(path: &Path) -> Result<(), String> {
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

/// `PRAGMA journal_mode = WAL`, retried while the database is locked: when several
/// connections open a fresh file at once, the switch to WAL can fail with "database is
/// locked" at once instead of waiting for `busy_timeout`.
fn set_wal(conn: &mut SqliteConnection, busy: Duration) -> QueryResult<()> {
    let start = Instant::now();
    loop {
        match conn.batch_execute("PRAGMA journal_mode = WAL;") {
            Err(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("locked") && start.elapsed() < busy =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Open (creating) the file at `path` and set the PRAGMAs; `busy` is how long a statement
/// waits for another connection's lock. Errors name the path.
pub fn connect(path: &Path, busy: Duration) -> Result<SqliteConnection, DbError> {
    let fail = |why: &dyn std::fmt::Display| {
        let why = why.to_string();
        DbError::failed(
            format!("failed to open database {}: {why}", path.display()),
            &why,
        )
    };
    check_file(path).map_err(|e| fail(&e))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            let sentence = format!(
                "failed to create directory {} for database {}: {e}",
                parent.display(),
                path.display()
            );
            DbError::failed(sentence, &e.to_string())
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
    Ok(conn)
}

/// `path` as an SQLite URI that opens it read-only: `file:` and the path with `%`, `?` and
/// `#` percent-encoded, then `?mode=ro`, and `&immutable=1` when `immutable`. Pure.
pub(crate) fn read_only_uri(path: &str, immutable: bool) -> String {
    let mut uri = String::from("file:");
    for c in path.chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?mode=ro");
    if immutable {
        uri.push_str("&immutable=1");
    }
    uri
}

/// Whether the file is a WAL database that no connection has open: its header says WAL
/// (bytes 18 and 19 are 2) and there is no `-wal` file beside it. Opening such a file even
/// read-only creates `-wal` and `-shm` files, which a reader must not leave behind.
fn closed_wal_database(path: &Path) -> bool {
    let mut head = Vec::with_capacity(20);
    let wal_header = std::fs::File::open(path)
        .and_then(|f| f.take(20).read_to_end(&mut head))
        .is_ok_and(|_| head.len() == 20 && head[18] == 2 && head[19] == 2);
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    wal_header && !Path::new(&wal).exists()
}

/// Open the existing file at `path` read-only (`SQLITE_OPEN_READONLY` through `mode=ro`,
/// then `PRAGMA query_only`): nothing is created, migrated or journaled. A WAL database no
/// connection has open is read as `immutable` (no `-wal`/`-shm` created; a writer that
/// starts meanwhile checkpoints into the file only after a thousand pages or on closing, far
/// beyond a reader's few queries). `busy` as in [`connect`]. Errors name the path.
pub fn connect_read_only(path: &Path, busy: Duration) -> Result<SqliteConnection, DbError> {
    let fail = |why: &dyn std::fmt::Display| {
        let why = why.to_string();
        DbError::failed(
            format!("failed to open database {}: {why}", path.display()),
            &why,
        )
    };
    check_file(path).map_err(|e| fail(&e))?;
    let text = path
        .to_str()
        .ok_or_else(|| fail(&"the path is not valid UTF-8"))?;
    let mut conn = SqliteConnection::establish(&read_only_uri(text, closed_wal_database(path)))
        .map_err(|e| fail(&e))?;
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {}; PRAGMA query_only = ON;",
        busy.as_millis()
    ))
    .map_err(|e| fail(&e))?;
    Ok(conn)
}
