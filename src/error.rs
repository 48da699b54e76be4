//! The tool's error type and its exit-code mapping, in one place. Every error that stops a
//! command before anything ran is one sentence ("failed to …" / names the flag, file or
//! path) and exit 2, whatever its cause; the causes stay typed ([`Error`] wraps the layers'
//! errors) so callers and tests tell them apart. [`RUN_EXIT_STATUS`],
//! [`REPORT_EXIT_STATUS`] and [`MERGE_EXIT_STATUS`] are the documented codes of each
//! command: the man pages' EXIT STATUS sections are written from them, and a test checks
//! the README's "Exit codes" table against them.

use crate::db::{DbError, MigrationError};
use crate::git::GitError;
use std::path::PathBuf;
use ws_core::Invalid;

/// Exit status: every workstream completed.
pub const EXIT_OK: i32 = 0;
/// Exit status: the run finished and consolidated, but something failed or was skipped, or
/// the watch saw something outside the worktrees change (tampering; no code of its own, so
/// scripts that treat 1 as "look at the report" need no change).
pub const EXIT_FAILURES: i32 = 1;
/// Exit status: nothing ran (usage, not a repository, unreadable workstreams, bad database).
pub const EXIT_NOTHING_RAN: i32 = 2;
/// Exit status: interrupted by Ctrl-C/SIGTERM after consolidating what ran.
pub const EXIT_INTERRUPTED: i32 = 130;
/// Exit status: the run ended with a result the database never took (full disk, database
/// gone); the results are in the spool file and the work on its branch.
pub const EXIT_UNRECORDED: i32 = 3;

/// Exit status: the run paused with deferred workstreams (an agent's usage limit resets
/// later than `ws.maxWait`, or `--budget` was spent); `git ws-run --resume RUN` continues it.
pub const EXIT_PAUSED: i32 = 4;

/// An error that stops a command before it could do its work: bad input, or one of the
/// layers' typed errors, or a run another process still holds. The exit status of each
/// is decided in one place, [`Error::exit_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Bad input from the user: a flag, a workstream file, a run id, a config value, said
    /// where it came from.
    #[error("{0}")]
    Input(String),
    /// A value the core refused, the sentence as the core words it.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// git refused or failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The database could not be opened, migrated, read or written.
    #[error(transparent)]
    Db(#[from] DbError),
    /// `--resume` of a run another `git ws-run` still holds (its lock in the run's logs).
    #[error(
        "failed to resume {run_id}: another git ws-run is still running it (it holds {})",
        lock.display()
    )]
    ResumeWhileRunning { run_id: String, lock: PathBuf },
    /// `git ws-merge` of a run a `git ws-run` is still running.
    #[error(
        "refusing to integrate run {run_id}: a git ws-run is still running it; wait for it to finish"
    )]
    MergeWhileRunning { run_id: String },
}

impl Error {
    /// A bad-input error: one sentence naming the flag, file, field or run.
    pub fn new(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }

    /// The process exit status for this error. Every cause is named here, the layers'
    /// variants included, so a new cause is a decision made in this function; today each
    /// one means nothing ran (2).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) | Error::Invalid(_) => EXIT_NOTHING_RAN,
            Error::ResumeWhileRunning { .. } | Error::MergeWhileRunning { .. } => EXIT_NOTHING_RAN,
            Error::Git(e) => match e {
                GitError::NotARepository { .. }
                | GitError::BareRepository { .. }
                | GitError::UnbornHead { .. }
                | GitError::BranchWithoutCommits { .. }
                | GitError::SlotsBusy { .. }
                | GitError::DiskFull(_)
                | GitError::Other(_) => EXIT_NOTHING_RAN,
            },
            Error::Db(e) => match e {
                DbError::NoSuchRun { .. }
                | DbError::NothingRecorded { .. }
                | DbError::Connect { .. }
                | DbError::DiskFull(_)
                | DbError::Location(_)
                | DbError::Other(_) => EXIT_NOTHING_RAN,
                DbError::Migration { cause, .. } => match cause {
                    MigrationError::Newer { .. }
                    | MigrationError::Older { .. }
                    | MigrationError::Foreign { .. }
                    | MigrationError::Failed(_)
                    | MigrationError::Embedded(_) => EXIT_NOTHING_RAN,
                },
            },
        }
    }
}

/// One documented exit status of a command: the code and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    pub code: i32,
    pub meaning: &'static str,
}

/// `git ws-run`'s exit statuses.
pub const RUN_EXIT_STATUS: &[ExitStatus] = &[
    ExitStatus {
        code: EXIT_OK,
        meaning: "every workstream completed; or there was nothing to do (a finished run to \
                  --resume, nothing to --rerun-failed) or a maintenance flag did its work",
    },
    ExitStatus {
        code: EXIT_FAILURES,
        meaning: "the run finished and consolidated, but at least one workstream failed or \
                  was skipped, or something outside the worktrees changed while workstreams \
                  ran (the report's Tampering section) (--dry-run: a workstream file is \
                  invalid)",
    },
    ExitStatus {
        code: EXIT_NOTHING_RAN,
        meaning: "nothing ran: bad usage, not a git repository, a bare repository or one \
                  with no commits, no workstreams directory, a database that cannot be used \
                  (not SQLite, from a newer git-ws, unreachable, full), a run another git \
                  ws-run still holds (--resume)",
    },
    ExitStatus {
        code: EXIT_UNRECORDED,
        meaning: "a finished workstream's result could not be recorded in the database (full \
                  disk, database gone), even after retries: stderr names each one and its \
                  branch; the result is kept in .state/spool/ and the next git ws-run on \
                  that database (--resume RUN) records it",
    },
    ExitStatus {
        code: EXIT_PAUSED,
        meaning: "the run paused: workstreams were deferred because an agent's usage limit \
                  resets later than ws.maxWait (or gave no reset time) or --budget was spent; \
                  the summary gives the reset time and git ws-run --resume RUN continues it",
    },
    ExitStatus {
        code: EXIT_INTERRUPTED,
        meaning: "interrupted by Ctrl-C or SIGTERM, after consolidating what ran",
    },
];

/// `git ws-report`'s exit statuses.
pub const REPORT_EXIT_STATUS: &[ExitStatus] = &[
    ExitStatus {
        code: EXIT_OK,
        meaning: "the runs, the run or the report were printed or written",
    },
    ExitStatus {
        code: EXIT_NOTHING_RAN,
        meaning: "no database, an unknown run id, a database that cannot be used, bad usage",
    },
];

/// `git ws-merge`'s exit statuses.
pub const MERGE_EXIT_STATUS: &[ExitStatus] = &[
    ExitStatus {
        code: EXIT_OK,
        meaning: "every completed branch integrated (and the tip passes the tests)",
    },
    ExitStatus {
        code: EXIT_FAILURES,
        meaning: "something was left out (conflict, breaks-tests, missing-branch)",
    },
    ExitStatus {
        code: EXIT_NOTHING_RAN,
        meaning: "nothing written: bad usage, an unknown run, a run still running, an --onto \
                  that does not resolve, a test command that cannot start, tests failing on \
                  --onto itself, a branch it refuses to reset or move",
    },
    ExitStatus {
        code: EXIT_INTERRUPTED,
        meaning: "interrupted by Ctrl-C while testing: the test command was stopped and \
                  nothing was written",
    },
];

/// `git ws-review`'s exit statuses (it serves until stopped).
pub const REVIEW_EXIT_STATUS: &[ExitStatus] = &[
    ExitStatus {
        code: EXIT_NOTHING_RAN,
        meaning: "it could not start: no database, a database that cannot be used, a port it \
                  cannot bind, bad usage",
    },
    ExitStatus {
        code: EXIT_INTERRUPTED,
        meaning: "stopped by Ctrl-C (the shell reports the signal)",
    },
];

/// The documented exit statuses of binary `bin` (`git-ws-run`, `git-ws-report`,
/// `git-ws-merge`); empty for any other name.
pub fn exit_statuses(bin: &str) -> &'static [ExitStatus] {
    match bin {
        "git-ws-run" => RUN_EXIT_STATUS,
        "git-ws-report" => REPORT_EXIT_STATUS,
        "git-ws-merge" => MERGE_EXIT_STATUS,
        "git-ws-review" => REVIEW_EXIT_STATUS,
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::ConnectFailure;

    /// One error of every variant, the layers' variants included, with its exit status.
    fn every_variant() -> Vec<(Error, i32)> {
        let p = || PathBuf::from("/r");
        let git = [
            GitError::NotARepository { cwd: p() },
            GitError::BareRepository { common_dir: p() },
            GitError::UnbornHead { root: p() },
            GitError::BranchWithoutCommits {
                root: p(),
                branch: "x".into(),
            },
            GitError::SlotsBusy {
                agent: 1,
                tried: 64,
                locks: p(),
            },
            GitError::DiskFull("failed to write: No space left on device".into()),
            GitError::Other("failed to x".into()),
        ];
        let migration = [
            MigrationError::Newer {
                version: "2".into(),
            },
            MigrationError::Older {
                version: "0".into(),
            },
            MigrationError::Foreign {
                version: "1".into(),
            },
            MigrationError::Failed("x".into()),
            MigrationError::Embedded("x".into()),
        ];
        let db = [
            DbError::NoSuchRun {
                run: "r".into(),
                db: None,
                closest: vec![],
            },
            DbError::NothingRecorded {
                db: "/r/db".into(),
                why: "no such file",
            },
            DbError::Connect {
                db: "postgres://h/d".into(),
                failure: ConnectFailure::Unreachable,
                detail: "the server is unreachable: …".into(),
            },
            DbError::DiskFull("failed to x: database or disk is full".into()),
            DbError::Location(Invalid::new("empty database path")),
            DbError::Other("failed to y".into()),
        ];
        let mut all = vec![
            (Error::new("--agents: 0"), EXIT_NOTHING_RAN),
            (
                Error::Invalid(Invalid::new("invalid duration \"x\"")),
                EXIT_NOTHING_RAN,
            ),
            (
                Error::ResumeWhileRunning {
                    run_id: "r".into(),
                    lock: p(),
                },
                EXIT_NOTHING_RAN,
            ),
            (
                Error::MergeWhileRunning { run_id: "r".into() },
                EXIT_NOTHING_RAN,
            ),
        ];
        all.extend(git.into_iter().map(|e| (Error::Git(e), EXIT_NOTHING_RAN)));
        all.extend(db.into_iter().map(|e| (Error::Db(e), EXIT_NOTHING_RAN)));
        all.extend(migration.into_iter().map(|cause| {
            let e = DbError::Migration {
                db: "/r/db".into(),
                cause,
            };
            (Error::Db(e), EXIT_NOTHING_RAN)
        }));
        all
    }

    #[test]
    fn every_variant_has_its_documented_exit_status() {
        let all = every_variant();
        assert_eq!(all.len(), 22, "one case per variant");
        for (e, code) in &all {
            assert_eq!(e.exit_code(), *code, "{e:?}");
            // Stopping before anything ran is documented as 2 for every command.
            for bin in ["git-ws-run", "git-ws-report", "git-ws-merge"] {
                assert!(
                    exit_statuses(bin).iter().any(|s| s.code == *code),
                    "{bin} does not document exit {code}"
                );
            }
        }
    }

    #[test]
    fn the_sentences_are_unchanged() {
        assert_eq!(
            Error::ResumeWhileRunning {
                run_id: "ma-run-1".into(),
                lock: "/r/.state/logs/ma-run-1/run.lock".into(),
            }
            .to_string(),
            "failed to resume ma-run-1: another git ws-run is still running it (it holds /r/.state/logs/ma-run-1/run.lock)"
        );
        assert_eq!(
            Error::MergeWhileRunning {
                run_id: "ma-run-1".into()
            }
            .to_string(),
            "refusing to integrate run ma-run-1: a git ws-run is still running it; wait for it to finish"
        );
        // The layers' sentences pass through unchanged.
        let e: Error = GitError::UnbornHead { root: "/r".into() }.into();
        assert_eq!(
            e.to_string(),
            "failed to use the repository at /r: it has no commits yet (make a first commit)"
        );
        let e: Error = Invalid::new("\"80\" is not a port").into();
        assert_eq!(e.to_string(), "\"80\" is not a port");
    }

    /// The README's "Exit codes" table is this module's tables, cell for cell.
    #[test]
    fn the_readme_documents_these_exit_codes() {
        let readme = include_str!("../README.md");
        let section = readme
            .split("\n## Exit codes\n")
            .nth(1)
            .expect("README has an \"## Exit codes\" section");
        let section = section.split("\n## ").next().unwrap();
        let rows: Vec<Vec<&str>> = section
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| ---"))
            .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
            .collect();
        assert_eq!(
            rows[0],
            ["code", "`git ws-run`", "`git ws-report`", "`git ws-merge`"]
        );
        let codes: Vec<i32> = rows[1..].iter().map(|r| r[0].parse().unwrap()).collect();
        assert_eq!(
            codes,
            [
                EXIT_OK,
                EXIT_FAILURES,
                EXIT_NOTHING_RAN,
                EXIT_UNRECORDED,
                EXIT_PAUSED,
                EXIT_INTERRUPTED
            ]
        );
        for row in &rows[1..] {
            let code: i32 = row[0].parse().unwrap();
            for (i, bin) in ["git-ws-run", "git-ws-report", "git-ws-merge"]
                .iter()
                .enumerate()
            {
                let want = exit_statuses(bin)
                    .iter()
                    .find(|s| s.code == code)
                    .map_or("—", |s| s.meaning);
                assert_eq!(row[i + 1], want, "exit {code} of {bin}");
            }
        }
    }
}
