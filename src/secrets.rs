//! What no child process receives and no stored output keeps: the environment of every
//! command git-ws starts is built by [`scrub`] (an explicit deny-list), and the secret values
//! this process knows (database passwords) are replaced by [`MASK`] in each command's log
//! ([`redact_log`], called where the log is captured) and in any text ([`redact`]).
//!
//! Deny-list, applied to the inherited environment before git-ws adds the variables it means
//! the command to have (`WS_*`, its tag [`crate::process::TAG_VAR`], a preset's variables):
//! - every `GIT_WS_*` variable (git-ws's own configuration, `GIT_WS_DATABASE_URL` among them);
//! - `PGPASSWORD` (libpq's password variable);
//! - any variable whose value contains a known secret (a copy of the URL under another name),
//!   except the essential ones ([`ESSENTIAL`], `LC_*`).

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Prefix of git-ws's own variables, none of which a child inherits.
pub const OWN_PREFIX: &str = "GIT_WS_";

/// Other inherited variables no child receives.
pub const DENIED: &[&str] = &["PGPASSWORD"];

/// Never removed for their value (a password such as `postgres` would otherwise take
/// `PATH=/usr/lib/postgresql/…` with it); their names are not secrets either.
pub const ESSENTIAL: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "TMPDIR", "TERM", "LANG",
];

/// Shorter values are not treated as secrets: they would mask ordinary words (a password
/// `pass` would turn a test runner's "3 passed" into "3 ***ed").
pub const MIN_SECRET_LEN: usize = 6;

static KNOWN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn known() -> std::sync::MutexGuard<'static, BTreeSet<String>> {
    KNOWN.lock().unwrap_or_else(|p| p.into_inner())
}

/// Remember `value` as a secret of this process (ignored when shorter than
/// [`MIN_SECRET_LEN`] bytes).
pub fn remember(value: &str) {
    if value.len() >= MIN_SECRET_LEN {
        known().insert(value.to_string());
    }
}

/// Remember the secrets a database location carries: a PostgreSQL URL's password, as
/// written and percent-decoded.
pub fn remember_db(db: &ws_db::location::DbLocation) {
    if let ws_db::location::DbLocation::Postgres(url) = db {
        for p in url.passwords() {
            remember(&p);
        }
    }
}

/// Remember the secrets of this process's environment: the password of
/// `GIT_WS_DATABASE_URL` (whether or not it is the database used) and `PGPASSWORD`.
pub fn remember_env() {
    if let Ok(v) = std::env::var(ws_db::location::ENV_VAR) {
        if let Ok(db) = ws_db::location::DbLocation::parse(v.trim()) {
            remember_db(&db);
        }
    }
    if let Ok(v) = std::env::var("PGPASSWORD") {
        remember(&v);
    }
}

/// The secrets known now, longest first (so a secret holding another is masked whole).
fn secrets() -> Vec<String> {
    let mut v: Vec<String> = known().iter().cloned().collect();
    v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    v
}

/// `text` with every known secret replaced by [`MASK`].
pub fn redact(text: &str) -> String {
    redact_with(text, &secrets())
}

/// `text` with each of `secrets` replaced by [`MASK`]. Pure.
pub fn redact_with(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= MIN_SECRET_LEN) {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

/// Whether a child must not inherit variable `key` = `value` (see the module's deny-list).
/// Pure given `secrets`.
pub fn denied(key: &str, value: &str, secrets: &[String]) -> bool {
    key.starts_with(OWN_PREFIX)
        || DENIED.contains(&key)
        || (!ESSENTIAL.contains(&key)
            && !key.starts_with("LC_")
            && secrets
                .iter()
                .any(|s| s.len() >= MIN_SECRET_LEN && value.contains(s.as_str())))
}

/// The inherited variables `cmd` must not pass on, by the deny-list.
pub fn denied_vars() -> Vec<String> {
    let secrets = secrets();
    std::env::vars_os()
        .filter_map(|(k, v)| {
            let k = k.to_string_lossy().into_owned();
            denied(&k, &v.to_string_lossy(), &secrets).then_some(k)
        })
        .collect()
}

/// Build the environment of a child process: remove every inherited variable of the
/// deny-list. Call before adding the variables meant for the child. The one place git-ws
/// decides what a child inherits.
pub fn scrub(cmd: &mut std::process::Command) {
    for k in denied_vars() {
        cmd.env_remove(k);
    }
}

/// Mask the known secrets in what was appended to the log at `path` from byte `from` on
/// (one command's output), rewriting that part in place. Does nothing when no secret is
/// known, none occurs, or the file cannot be read.
pub fn redact_log(path: &Path, from: u64) {
    let secrets = secrets();
    if secrets.is_empty() {
        return;
    }
    let _ = try_redact_log(path, from, &secrets);
}

fn try_redact_log(path: &Path, from: u64, secrets: &[String]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    f.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    if !secrets.iter().any(|s| text.contains(s.as_str())) {
        return Ok(());
    }
    let clean = redact_with(&text, secrets);
    f.seek(SeekFrom::Start(from))?;
    f.write_all(clean.as_bytes())?;
    f.set_len(from + clean.len() as u64)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deny_list() {
        let s = vec!["hunter2".to_string()];
        assert!(denied("GIT_WS_DATABASE_URL", "x.db", &s));
        assert!(denied("GIT_WS_ANYTHING", "", &s));
        assert!(denied("PGPASSWORD", "x", &s));
        assert!(denied("DATABASE_URL", "postgres://u:hunter2@h/d", &s));
        assert!(!denied("PATH", "/usr/bin", &s));
        assert!(!denied("WS_WORKTREE", "/tmp/w", &s));
        assert!(!denied("PGHOST", "localhost", &s));
        // A weak password never takes PATH away.
        let weak = vec!["postgres".to_string()];
        assert!(!denied(
            "PATH",
            "/usr/lib/postgresql/15/bin:/usr/bin",
            &weak
        ));
        assert!(denied("OTHER_URL", "postgres://x", &weak));
        // Too short to be told from ordinary text: not a secret.
        assert!(!denied("X", "pass", &["pass".to_string()]));
    }

    #[test]
    fn secrets_are_masked_longest_first() {
        let s = vec!["secret-long".to_string(), "secret".to_string()];
        let mut sorted = s.clone();
        sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
        assert_eq!(
            redact_with("a secret-long and secret-x", &sorted),
            "a *** and ***-x"
        );
        assert_eq!(redact_with("nothing", &sorted), "nothing");
    }

    #[test]
    fn a_log_is_redacted_from_the_command_s_start() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        std::fs::write(&log, "earlier s3cret\nURL=postgres://u:s3cret@h/d\nend\n").unwrap();
        let from = "earlier s3cret\n".len() as u64;
        try_redact_log(&log, from, &["s3cret".to_string()]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "earlier s3cret\nURL=postgres://u:***@h/d\nend\n"
        );
    }
}
