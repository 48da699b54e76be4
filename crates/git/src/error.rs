//! [`GitError`]: what a git operation of this crate can fail with, one variant per cause a
//! caller or a test tells apart, each keeping the one sentence the user sees.

use std::path::PathBuf;

/// A git failure, with a sentence saying what failed ("failed to create branch …: …").
/// The variants name the causes a caller may act on; everything else is [`GitError::Other`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitError {
    /// `cwd` is not inside a git repository.
    #[error(
        "failed to find a git repository: {} is not inside a git repository",
        cwd.display()
    )]
    NotARepository { cwd: PathBuf },
    /// The repository has no working tree (and `cwd` is in no linked worktree of it).
    #[error(
        "failed to use the repository at {}: it is a bare repository, and git-ws needs a working tree",
        common_dir.display()
    )]
    BareRepository { common_dir: PathBuf },
    /// HEAD names a branch that has no commit yet.
    #[error(
        "failed to use the repository at {}: it has no commits yet (make a first commit)",
        root.display()
    )]
    UnbornHead { root: PathBuf },
    /// HEAD names a branch with no commit in a repository that has commits elsewhere: a
    /// new orphan branch (`git checkout --orphan`) or a current branch that was deleted.
    #[error(
        "failed to use the repository at {}: the current branch {branch} has no commits (a new orphan branch, or a branch that was deleted); check out a branch that has commits",
        root.display()
    )]
    BranchWithoutCommits { root: PathBuf, branch: String },
    /// Every pool slot of agent `agent` (`agent-k`, `agent-k-2`, …) is held by another
    /// live run.
    #[error(
        "failed to claim a worktree for agent {agent}: all {tried} slots under {} are held by other runs",
        locks.display()
    )]
    SlotsBusy {
        agent: usize,
        tried: usize,
        locks: PathBuf,
    },
    /// A write failed because the disk is full (ENOSPC): the sentence says what failed.
    #[error("{0}")]
    DiskFull(String),
    /// Any other failure: the sentence says what failed and git's own message.
    #[error("{0}")]
    Other(String),
}

impl GitError {
    /// A failure described by `sentence`: [`GitError::DiskFull`] when `disk_full`, else
    /// [`GitError::Other`].
    pub(crate) fn failed(sentence: String, disk_full: bool) -> GitError {
        if disk_full {
            GitError::DiskFull(sentence)
        } else {
            GitError::Other(sentence)
        }
    }
}

/// Whether an OS error says the disk is full.
pub(crate) fn io_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(libc::ENOSPC)
}

/// Whether a libgit2 error says the disk is full: libgit2 appends the OS's `strerror` to
/// its OS-class messages ("failed to write …: No space left on device"), and the process
/// never sets a locale, so that text is the C locale's.
pub(crate) fn git2_disk_full(e: &git2::Error) -> bool {
    e.message().contains("No space left on device")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn sentences_are_unchanged() {
        let cases = [
            (
                GitError::NotARepository {
                    cwd: "/tmp/x".into(),
                },
                "failed to find a git repository: /tmp/x is not inside a git repository",
            ),
            (
                GitError::BareRepository {
                    common_dir: "/r.git".into(),
                },
                "failed to use the repository at /r.git: it is a bare repository, and git-ws needs a working tree",
            ),
            (
                GitError::UnbornHead { root: "/r".into() },
                "failed to use the repository at /r: it has no commits yet (make a first commit)",
            ),
            (
                GitError::SlotsBusy {
                    agent: 2,
                    tried: 64,
                    locks: Path::new("/r/.git/ws/locks").into(),
                },
                "failed to claim a worktree for agent 2: all 64 slots under /r/.git/ws/locks are held by other runs",
            ),
            (GitError::DiskFull("failed to x: y".into()), "failed to x: y"),
            (GitError::Other("failed to z".into()), "failed to z"),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn a_full_disk_is_recognised() {
        let enospc = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(io_disk_full(&enospc));
        assert!(!io_disk_full(&std::io::Error::from_raw_os_error(
            libc::EACCES
        )));
        // What writing to /dev/full gives: the real ENOSPC path.
        let mut full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let e = std::io::Write::write_all(&mut full, b"x")
            .and_then(|()| std::io::Write::flush(&mut full))
            .unwrap_err();
        assert!(io_disk_full(&e), "{e:?}");
        let g = git2::Error::new(
            git2::ErrorCode::GenericError,
            git2::ErrorClass::Os,
            "failed to write to file '/r/.git/objects/ab/cd': No space left on device",
        );
        assert!(git2_disk_full(&g));
        let g = git2::Error::new(
            git2::ErrorCode::GenericError,
            git2::ErrorClass::Os,
            "failed to open '/r': Permission denied",
        );
        assert!(!git2_disk_full(&g));
        assert_eq!(
            GitError::failed("failed to write".into(), true),
            GitError::DiskFull("failed to write".into())
        );
    }
}
