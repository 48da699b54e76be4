//! The tool's error type and its exit-code mapping. Every error that stops a command before
//! anything ran is one sentence ("failed to …" / names the flag, file or path) and exit 2.

use std::fmt;

/// Exit status: every workstream completed.
pub const EXIT_OK: i32 = 0;
/// Exit status: the run finished and consolidated, but something failed or was skipped.
pub const EXIT_FAILURES: i32 = 1;
/// Exit status: nothing ran (usage, not a repository, unreadable workstreams, bad database).
pub const EXIT_NOTHING_RAN: i32 = 2;
/// Exit status: interrupted by Ctrl-C/SIGTERM after consolidating what ran.
pub const EXIT_INTERRUPTED: i32 = 130;

/// An error that stops a command before it could do its work (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl Error {
    pub fn new(msg: impl Into<String>) -> Self {
        Error(msg.into())
    }

    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        EXIT_NOTHING_RAN
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<crate::git::GitError> for Error {
    fn from(e: crate::git::GitError) -> Self {
        Error(e.0)
    }
}

impl From<crate::db::DbError> for Error {
    fn from(e: crate::db::DbError) -> Self {
        Error(e.0)
    }
}
