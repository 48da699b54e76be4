//! The tool's error type and its exit-code mapping. Every error that stops a command before
//! anything ran is one sentence ("failed to …" / names the flag, file or path) and exit 2.

/// Exit status: every workstream completed.
pub const EXIT_OK: i32 = 0;
/// Exit status: the run finished and consolidated, but something failed or was skipped.
pub const EXIT_FAILURES: i32 = 1;
/// Exit status: nothing ran (usage, not a repository, unreadable workstreams, bad database).
pub const EXIT_NOTHING_RAN: i32 = 2;
/// Exit status: interrupted by Ctrl-C/SIGTERM after consolidating what ran.
pub const EXIT_INTERRUPTED: i32 = 130;

/// An error that stops a command before it could do its work. One variant per layer; the
/// exit status of each is decided in one place, [`Error::exit_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Bad input from the user: a flag, a workstream file, a run id, a config value.
    #[error("{0}")]
    Input(String),
    /// git refused or failed.
    #[error(transparent)]
    Git(#[from] crate::git::GitError),
    /// The database could not be opened, migrated, read or written.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

impl Error {
    /// A bad-input error: one sentence naming the flag, file, field or run.
    pub fn new(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }

    /// The process exit status for this error: nothing ran, whichever layer failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) | Error::Git(_) | Error::Db(_) => EXIT_NOTHING_RAN,
        }
    }
}
