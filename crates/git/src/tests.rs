//! Tests for the git façade over real temporary repositories (set up and inspected with the
//! `git` CLI, hermetic config).

use super::*;
use std::fs;
use std::process::Command;
use std::sync::{Arc, Barrier, Once};
use std::time::{Duration, SystemTime};
use ws_core::model::ChangeKind;

#[path = "include_tests.rs"]
mod include_tests;

/// libgit2 must not read the machine's global/system config in tests (author fallback).
fn hermetic_libgit2() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let empty = tempfile::tempdir().unwrap().keep();
        for level in [
            git2::ConfigLevel::System,
            git2::ConfigLevel::XDG,
            git2::ConfigLevel::Global,
            git2::ConfigLevel::ProgramData,
        ] {
            // SAFETY: called once, before any repository in this test binary reads config.
            unsafe { git2::opts::set_search_path(level, empty.as_os_str()).unwrap() };
        }
    });
}

fn git_cmd(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "Test Author")
        .env("GIT_COMMITTER_EMAIL", "author@example.com")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .expect("failed to run git")
}

/// Run git, assert success, return trimmed stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_cmd(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn numbered(n: usize) -> String {
    (1..=n).map(|i| format!("line {i}\n")).collect()
}

struct TestRepo {
    _dir: tempfile::TempDir,
    root: PathBuf,
    paths: RepoPaths,
}

impl TestRepo {
    fn head(&self) -> String {
        git(&self.root, &["rev-parse", "HEAD"])
    }
    fn branches(&self) -> Vec<String> {
        git(&self.root, &["branch", "--format=%(refname:short)"])
            .lines()
            .map(str::to_string)
            .collect()
    }
    fn worktrees(&self) -> usize {
        git(&self.root, &["worktree", "list", "--porcelain"])
            .lines()
            .filter(|l| l.starts_with("worktree "))
            .count()
    }
    fn gitdir_of(&self, slot: &AgentSlot) -> PathBuf {
        self.paths.common_dir.join("worktrees").join(&slot.name)
    }
}

fn repo() -> TestRepo {
    hermetic_libgit2();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("main");
    fs::create_dir(&root).unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    write(&root, "README.md", "hello\n");
    write(&root, "src/lib.rs", &numbered(10));
    write(&root, "data.txt", &numbered(20));
    write(&root, ".gitignore", "target/\nbuild/\n*.log\n");
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "initial"]);
    let paths = discover(&root).unwrap();
    TestRepo {
        _dir: dir,
        root,
        paths,
    }
}

fn commit_all(dir: &Path, msg: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", msg]);
    git(dir, &["rev-parse", "HEAD"])
}

fn no_opts() -> PrepareOptions {
    PrepareOptions::default()
}

fn change<'a>(c: &'a Collected, path: &str) -> &'a FileChange {
    c.files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("{path} not in {:?}", c.files))
}

// ---------------------------------------------------------------- discovery

#[test]
fn discover_from_subdirectory_and_linked_worktree_gives_main_root() {
    let t = repo();
    let from_sub = discover(&t.root.join("src")).unwrap();
    assert_eq!(canon_p(&from_sub.root), canon_p(&t.root));
    assert_eq!(canon_p(&from_sub.common_dir), canon_p(&t.root.join(".git")));

    let linked = t.root.parent().unwrap().join("linked");
    git(
        &t.root,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "linked",
            linked.to_str().unwrap(),
        ],
    );
    let from_linked = discover(&linked.join("src")).unwrap();
    assert_eq!(canon_p(&from_linked.root), canon_p(&t.root));
    assert_eq!(
        canon_p(&from_linked.common_dir),
        canon_p(&t.root.join(".git"))
    );
}

fn canon_p(p: &Path) -> PathBuf {
    fs::canonicalize(p).unwrap()
}

#[test]
fn discover_errors_are_one_clear_sentence() {
    hermetic_libgit2();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    fs::create_dir(&plain).unwrap();
    let not_repo = discover(&plain).unwrap_err();
    assert!(
        matches!(&not_repo, GitError::NotARepository { cwd } if *cwd == plain),
        "{not_repo:?}"
    );
    let not_repo = not_repo.to_string();
    assert!(
        not_repo.contains("not inside a git repository"),
        "{not_repo}"
    );

    let bare = dir.path().join("bare.git");
    fs::create_dir(&bare).unwrap();
    git(&bare, &["init", "-q", "--bare"]);
    let bare = discover(&bare).unwrap_err();
    assert!(matches!(bare, GitError::BareRepository { .. }), "{bare:?}");
    let bare = bare.to_string();
    assert!(bare.contains("bare repository"), "{bare}");

    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    git(&empty, &["init", "-q"]);
    let unborn = discover(&empty).unwrap_err();
    assert!(
        matches!(&unborn, GitError::UnbornHead { root } if *root == empty),
        "{unborn:?}"
    );
    let unborn = unborn.to_string();
    assert!(unborn.contains("no commits yet"), "{unborn}");
    for msg in [not_repo, bare, unborn] {
        assert!(msg.starts_with("failed to"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
}

#[test]
fn a_claim_with_every_slot_held_is_slots_busy() {
    let t = repo();
    let base = t.head();
    // Other runs hold agent-2 and all its overflow slots (their lock files, nothing else).
    let held: Vec<fs::File> = (1..=64)
        .map(|n| {
            let slot = if n == 1 {
                "agent-2".to_string()
            } else {
                format!("agent-2-{n}")
            };
            let lock = slots::SlotDirs::new(&t.paths, &slot).lock;
            fs::create_dir_all(lock.parent().unwrap()).unwrap();
            slots::try_lock(&lock).unwrap().expect("free")
        })
        .collect();
    let e = claim_agent_slot(&t.paths, 2, &base).unwrap_err();
    let locks = t.paths.common_dir.join("ws").join("locks");
    assert_eq!(
        e,
        GitError::SlotsBusy {
            agent: 2,
            tried: 64,
            locks: locks.clone()
        }
    );
    assert_eq!(
        e.to_string(),
        format!(
            "failed to claim a worktree for agent 2: all 64 slots under {} are held by other runs",
            locks.display()
        )
    );
    drop(held);
    assert_eq!(claim_agent_slot(&t.paths, 2, &base).unwrap().k, 2);
}

#[test]
fn resolve_commit_gives_full_sha_and_names_bad_revs() {
    let t = repo();
    write(&t.root, "second.txt", "2\n");
    let second = commit_all(&t.root, "second");
    assert_eq!(
        Repo::open(&t.paths)
            .unwrap()
            .resolve_commit("HEAD")
            .unwrap(),
        second
    );
    assert_eq!(
        Repo::open(&t.paths)
            .unwrap()
            .resolve_commit("HEAD~1")
            .unwrap(),
        git(&t.root, &["rev-parse", "HEAD~1"])
    );
    assert_eq!(
        Repo::open(&t.paths)
            .unwrap()
            .resolve_commit("main")
            .unwrap(),
        second
    );
    let e = Repo::open(&t.paths)
        .unwrap()
        .resolve_commit("no-such-rev")
        .unwrap_err()
        .to_string();
    assert!(e.contains("'no-such-rev'"), "{e}");
}

// ---------------------------------------------------------------- slots, prepare, collect

#[test]
fn agent_that_commits_itself() {
    let t = repo();
    let base = t.head();
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    assert_eq!(slot.name, "ws-agent-1");
    // In the pool next to the repository, outside `.git` and outside the worktree.
    assert_eq!(
        slot.path,
        t.root.parent().unwrap().join(".main.ws-pool/agent-1")
    );
    // Created detached at base, no stray branch.
    assert_eq!(git(&slot.path, &["rev-parse", "HEAD"]), base);
    assert_eq!(t.branches(), vec!["main"]);

    let branch = "ws/run1/ws-01";
    slot.prepare(branch, &base, &no_opts()).unwrap();
    assert_eq!(
        git(&slot.path, &["symbolic-ref", "HEAD"]),
        format!("refs/heads/{branch}")
    );
    write(&slot.path, "new.txt", "a\nb\n");
    write(&slot.path, "data.txt", &numbered(21));
    let c1 = commit_all(&slot.path, "agent work");

    let c = slot.collect(branch, &base, "ws-01").unwrap();
    assert_eq!(c.head, c1);
    assert_eq!(c.commits, vec![c1.clone()]);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.files.len(), 2);
    let new = change(&c, "new.txt");
    assert_eq!(
        (new.kind, new.additions, new.deletions),
        (ChangeKind::Added, 2, 0)
    );
    let data = change(&c, "data.txt");
    assert_eq!(
        (data.kind, data.additions, data.deletions),
        (ChangeKind::Modified, 1, 0)
    );
    let mut branches = t.branches();
    branches.sort();
    assert_eq!(branches, vec!["main", branch]);
}

#[test]
fn leftovers_are_committed_with_a_warning_and_fallback_author() {
    let t = repo();
    let base = t.head();
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    let branch = "ws/run1/ws-02";
    slot.prepare(branch, &base, &no_opts()).unwrap();
    // modified (unstaged), staged, deleted, untracked in new nested dirs, ignored.
    write(
        &slot.path,
        "data.txt",
        &numbered(20).replace("line 5\n", "LINE FIVE\n"),
    );
    write(&slot.path, "README.md", "hello\nworld\n");
    git(&slot.path, &["add", "README.md"]);
    fs::remove_file(slot.path.join("src/lib.rs")).unwrap();
    write(&slot.path, "newdir/sub/a.txt", "x\ny\nz\n");
    write(&slot.path, "debug.log", "ignored\n");

    let c = slot.collect(branch, &base, "ws-02").unwrap();
    assert_eq!(
        c.warnings,
        vec![format!(
            "uncommitted changes (4 files) were committed on {branch} by git-ws"
        )]
    );
    assert_eq!(c.commits.len(), 1);
    assert_eq!(c.commits[0], git(&t.root, &["rev-parse", branch]));
    assert_eq!(
        git(&t.root, &["log", "-1", "--format=%an <%ae>|%s", branch]),
        "git-ws <git-ws@localhost>|git-ws: uncommitted changes left by ws-02"
    );
    let paths: Vec<_> = c.files.iter().map(|f| (f.path.as_str(), f.kind)).collect();
    assert_eq!(
        paths,
        vec![
            ("README.md", ChangeKind::Modified),
            ("data.txt", ChangeKind::Modified),
            ("newdir/sub/a.txt", ChangeKind::Added),
            ("src/lib.rs", ChangeKind::Deleted),
        ]
    );
    assert_eq!(
        (
            change(&c, "data.txt").additions,
            change(&c, "data.txt").deletions
        ),
        (1, 1)
    );
    assert_eq!(change(&c, "src/lib.rs").deletions, 10);
    assert_eq!(change(&c, "newdir/sub/a.txt").additions, 3);
    // The files are all committed (the ignored one stays, uncommitted); the index file is
    // written by the next checkout, here the release at the end of a run, which leaves the
    // worktree clean and detached at the base.
    assert!(slot.path.join("debug.log").exists());
    let path = slot.path.clone();
    slot.release(&base, &no_opts()).unwrap();
    assert_eq!(git(&path, &["status", "--porcelain"]), "");
    assert_eq!(git(&path, &["rev-parse", "HEAD"]), base);
    assert!(git_cmd(&path, &["symbolic-ref", "-q", "HEAD"])
        .stdout
        .is_empty());
}

#[test]
fn leftover_commit_uses_the_repository_author() {
    let t = repo();
    git(&t.root, &["config", "user.name", "Repo Person"]);
    git(&t.root, &["config", "user.email", "repo@example.com"]);
    let base = t.head();
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    slot.prepare("ws/r/a", &base, &no_opts()).unwrap();
    write(&slot.path, "x.txt", "x\n");
    let c = slot.collect("ws/r/a", &base, "a").unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("(1 file)"), "{:?}", c.warnings);
    assert_eq!(
        git(&t.root, &["log", "-1", "--format=%an <%ae>", "ws/r/a"]),
        "Repo Person <repo@example.com>"
    );
}

#[test]
fn renames_unicode_and_spaces_are_exact() {
    let t = repo();
    let base = t.head();
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    slot.prepare("ws/r/ren", &base, &no_opts()).unwrap();
    // A plain filesystem move, left uncommitted: still detected as a rename.
    fs::create_dir_all(slot.path.join("moved")).unwrap();
    fs::rename(
        slot.path.join("data.txt"),
        slot.path.join("moved/data2.txt"),
    )
    .unwrap();
    write(&slot.path, "dir with space/ünïcødé.txt", "ü\n");
    write(&slot.path, "tab\there \"q\".txt", "t\n");
    let c = slot.collect("ws/r/ren", &base, "ren").unwrap();
    let moved = change(&c, "moved/data2.txt");
    assert_eq!(moved.kind, ChangeKind::Renamed);
    assert_eq!(moved.old_path.as_deref(), Some("data.txt"));
    assert_eq!((moved.additions, moved.deletions), (0, 0));
    assert_eq!(
        change(&c, "dir with space/ünïcødé.txt").kind,
        ChangeKind::Added
    );
    assert_eq!(change(&c, "tab\there \"q\".txt").kind, ChangeKind::Added);
    assert_eq!(c.files.len(), 3, "{:?}", c.files);
}

#[test]
fn binary_files_count_zero_lines() {
    let t = repo();
    let base = t.head();
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    slot.prepare("ws/r/bin", &base, &no_opts()).unwrap();
    fs::write(slot.path.join("blob.bin"), [0u8, 1, 2, 0, 255, 10, 0]).unwrap();
    commit_all(&slot.path, "binary");
    let c = slot.collect("ws/r/bin", &base, "bin").unwrap();
    let b = change(&c, "blob.bin");
    assert_eq!(
        (b.kind, b.additions, b.deletions),
        (ChangeKind::Added, 0, 0)
    );
}

#[test]
fn switching_workstreams_cleans_previous_files_but_not_unchanged_ones() {
    let t = repo();
    let base = t.head();
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    let opts = PrepareOptions {
        keep_ignored: vec!["target".to_string()],
    };
    slot.prepare("ws/r/a", &base, &opts).unwrap();
    write(&slot.path, "README.md", "changed by a\n");
    commit_all(&slot.path, "a");
    write(&slot.path, "scratch/deep/x.txt", "untracked\n");
    write(&slot.path, "build/out.o", "ignored\n");
    write(&slot.path, "debug.log", "ignored\n");
    write(&slot.path, "target/cache.bin", "kept\n");
    write(&slot.path, "data.txt", "uncommitted edit\n");
    // Nested repository left by a tool.
    write(&slot.path, "nested/file.txt", "n\n");
    git(&slot.path.join("nested"), &["init", "-q"]);
    // An unchanged file with an old mtime: it must not be rewritten.
    let old = SystemTime::now() - Duration::from_secs(3600 * 24);
    fs::File::options()
        .write(true)
        .open(slot.path.join("src/lib.rs"))
        .unwrap()
        .set_modified(old)
        .unwrap();

    slot.prepare("ws/r/b", &base, &opts).unwrap();
    assert_eq!(
        git(&slot.path, &["symbolic-ref", "HEAD"]),
        "refs/heads/ws/r/b"
    );
    assert_eq!(git(&slot.path, &["rev-parse", "HEAD"]), base);
    for gone in ["scratch", "build", "debug.log", "nested"] {
        assert!(!slot.path.join(gone).exists(), "{gone} survived");
    }
    assert_eq!(
        fs::read_to_string(slot.path.join("target/cache.bin")).unwrap(),
        "kept\n"
    );
    assert_eq!(
        fs::read_to_string(slot.path.join("README.md")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        fs::read_to_string(slot.path.join("data.txt")).unwrap(),
        numbered(20)
    );
    let mtime = fs::metadata(slot.path.join("src/lib.rs"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(mtime, old, "unchanged file was rewritten");
    assert_eq!(
        git(&slot.path, &["status", "--porcelain", "--ignored"]),
        "!! target/"
    );
    // Branch a keeps its commit.
    assert_ne!(git(&t.root, &["rev-parse", "ws/r/a"]), base);
}

#[test]
fn the_users_worktree_index_and_branch_are_untouched() {
    let t = repo();
    // The user has work in progress.
    write(&t.root, "README.md", "user edit\n");
    write(&t.root, "user-untracked.txt", "mine\n");
    write(&t.root, "src/lib.rs", "staged by user\n");
    git(&t.root, &["add", "src/lib.rs"]);
    let status = git(&t.root, &["status", "--porcelain", "--ignored"]);
    let head = t.head();
    let symref = git(&t.root, &["symbolic-ref", "HEAD"]);
    let index = fs::read(t.root.join(".git/index")).unwrap();

    let mut slot = claim_agent_slot(&t.paths, 1, &head).unwrap();
    for (i, b) in ["ws/r/one", "ws/r/two"].iter().enumerate() {
        slot.prepare(b, &head, &no_opts()).unwrap();
        write(&slot.path, &format!("f{i}.txt"), "x\n");
        commit_all(&slot.path, "c");
        write(&slot.path, "README.md", "agent leftover\n");
        let c = slot.collect(b, &head, b).unwrap();
        assert_eq!(c.commits.len(), 2);
    }
    assert_eq!(t.worktrees(), 2);
    slot.remove().unwrap();

    assert_eq!(
        git(&t.root, &["status", "--porcelain", "--ignored"]),
        status
    );
    assert_eq!(t.head(), head);
    assert_eq!(git(&t.root, &["symbolic-ref", "HEAD"]), symref);
    assert_eq!(fs::read(t.root.join(".git/index")).unwrap(), index);
    assert_eq!(
        fs::read_to_string(t.root.join("README.md")).unwrap(),
        "user edit\n"
    );
    // Worktree gone from disk and from git's list; branches stay; nothing to prune.
    assert_eq!(t.worktrees(), 1);
    assert!(!t.paths.pool_slot_dir("agent-1").exists());
    assert!(!t.paths.common_dir.join("worktrees/ws-agent-1").exists());
    assert_eq!(git(&t.root, &["worktree", "prune", "--dry-run", "-v"]), "");
    let mut branches = t.branches();
    branches.sort();
    assert_eq!(branches, vec!["main", "ws/r/one", "ws/r/two"]);
}

#[test]
fn kept_worktree_is_reused_by_the_next_claim() {
    let t = repo();
    let base = t.head();
    let mut slot = claim_agent_slot(&t.paths, 2, &base).unwrap();
    slot.prepare("ws/r1/a", &base, &no_opts()).unwrap();
    write(&slot.path, "target/keep.bin", "cache\n");
    let path = slot.path.clone();
    drop(slot); // --keep-worktrees: no removal
    let mut again = claim_agent_slot(&t.paths, 2, &base).unwrap();
    assert_eq!(again.path, path);
    assert!(again.path.join("target/keep.bin").exists());
    assert_eq!(t.worktrees(), 2);
    again
        .prepare(
            "ws/r2/a",
            &base,
            &PrepareOptions {
                keep_ignored: vec!["target".into()],
            },
        )
        .unwrap();
    assert!(again.path.join("target/keep.bin").exists());
}

// ---------------------------------------------------------------- hostile agents

#[test]
fn deleted_worktree_is_read_from_the_branch_and_recreated() {
    let t = repo();
    let base = t.head();
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    slot.prepare("ws/r/a", &base, &no_opts()).unwrap();
    write(&slot.path, "a.txt", "a\n");
    let c1 = commit_all(&slot.path, "a");
    fs::remove_dir_all(&slot.path).unwrap();

    let c = slot.collect("ws/r/a", &base, "a").unwrap();
    assert_eq!(c.commits, vec![c1]);
    assert_eq!(c.files.len(), 1);
    assert!(
        c.warnings.iter().any(|w| w.contains("is gone or broken")),
        "{:?}",
        c.warnings
    );

    slot.prepare("ws/r/b", &base, &no_opts()).unwrap();
    assert_eq!(
        git(&slot.path, &["symbolic-ref", "HEAD"]),
        "refs/heads/ws/r/b"
    );
    assert_eq!(git(&slot.path, &["status", "--porcelain"]), "");
    assert_eq!(t.worktrees(), 2);
    assert!(!t
        .branches()
        .iter()
        .any(|b| b.contains("tmp") || b == "ws-agent-1"));
}

#[test]
fn broken_slot_links_and_stale_locks_are_repaired() {
    let t = repo();
    let base = t.head();
    let slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    write(&slot.path, "target/cache", "c\n");
    let gitdir = t.gitdir_of(&slot);
    let path = slot.path.clone();
    drop(slot);
    // `.git` file removed, back link stale, stale lock files.
    fs::remove_file(path.join(".git")).unwrap();
    fs::write(gitdir.join("gitdir"), "/nonexistent/.git\n").unwrap();
    fs::write(gitdir.join("index.lock"), "").unwrap();
    fs::write(gitdir.join("HEAD.lock"), "").unwrap();
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    assert!(!gitdir.join("index.lock").exists() && !gitdir.join("HEAD.lock").exists());
    let common = git(
        &slot.path,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    );
    assert_eq!(canon_p(Path::new(&common)), canon_p(&t.paths.common_dir));
    assert_eq!(
        git(&slot.path, &["rev-parse", "--show-toplevel"]),
        canon_p(&slot.path).display().to_string()
    );
    assert_eq!(git(&t.root, &["worktree", "prune", "--dry-run", "-v"]), "");
    assert!(
        slot.path.join("target/cache").exists(),
        "repair kept the caches"
    );
    slot.prepare("ws/r/a", &base, &no_opts()).unwrap();
    assert_eq!(git(&slot.path, &["status", "--porcelain"]), "");

    // The agent replaced the `.git` file with a repository of its own.
    write(&slot.path, "mine.txt", "m\n");
    fs::remove_file(slot.path.join(".git")).unwrap();
    git(&slot.path, &["init", "-q"]);
    let c = slot.collect("ws/r/a", &base, "a").unwrap();
    assert!(
        c.warnings[0].contains("is gone or broken"),
        "{:?}",
        c.warnings
    );
    slot.prepare("ws/r/b", &base, &no_opts()).unwrap();
    assert_eq!(
        git(&slot.path, &["symbolic-ref", "HEAD"]),
        "refs/heads/ws/r/b"
    );
    assert_eq!(git(&slot.path, &["status", "--porcelain"]), "");
    assert!(!slot.path.join("mine.txt").exists());
    assert_eq!(git(&t.root, &["worktree", "prune", "--dry-run", "-v"]), "");
}

#[test]
fn stale_index_lock_does_not_block_collect_or_prepare() {
    let t = repo();
    let base = t.head();
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    slot.prepare("ws/r/a", &base, &no_opts()).unwrap();
    write(&slot.path, "a.txt", "a\n");
    let gitdir = t.gitdir_of(&slot);
    fs::write(gitdir.join("index.lock"), "").unwrap();
    fs::write(t.paths.common_dir.join("refs/heads/ws/r/a.lock"), "").unwrap();
    let c = slot.collect("ws/r/a", &base, "a").unwrap();
    assert_eq!(c.commits.len(), 1);
    fs::write(gitdir.join("index.lock"), "").unwrap();
    fs::write(gitdir.join("HEAD.lock"), "").unwrap();
    slot.prepare("ws/r/b", &base, &no_opts()).unwrap();
    assert!(!slot.path.join("a.txt").exists());
    assert_eq!(
        git(&slot.path, &["symbolic-ref", "HEAD"]),
        "refs/heads/ws/r/b"
    );
}

#[test]
fn detached_head_on_top_of_base_moves_the_branch() {
    let t = repo();
    let base = t.head();
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    slot.prepare("ws/r/a", &base, &no_opts()).unwrap();
    git(&slot.path, &["checkout", "-q", "--detach"]);
    write(&slot.path, "a.txt", "a\n");
    let c1 = commit_all(&slot.path, "detached work");
    write(&slot.path, "b.txt", "left over\n");
    let c = slot.collect("ws/r/a", &base, "a").unwrap();
    assert!(c.warnings[0].contains("HEAD detached"), "{:?}", c.warnings);
    assert!(c.warnings[1].contains("(1 file)"), "{:?}", c.warnings);
    assert_eq!(c.commits.len(), 2);
    assert_eq!(c.commits[0], c1);
    assert_eq!(
        git(&slot.path, &["symbolic-ref", "HEAD"]),
        "refs/heads/ws/r/a"
    );
}

#[test]
fn another_branch_on_top_of_base_moves_the_branch() {
    let t = repo();
    let base = t.head();
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    slot.prepare("ws/r/a", &base, &no_opts()).unwrap();
    git(&slot.path, &["checkout", "-q", "-b", "agent-own"]);
    write(&slot.path, "a.txt", "a\n");
    let c1 = commit_all(&slot.path, "own branch work");
    let c = slot.collect("ws/r/a", &base, "a").unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].contains("another branch (agent-own)"),
        "{:?}",
        c.warnings
    );
    assert_eq!(c.commits, vec![c1.clone()]);
    assert_eq!(git(&t.root, &["rev-parse", "ws/r/a"]), c1);
    // Next prepare works although the agent's branch is still around.
    slot.prepare("ws/r/b", &base, &no_opts()).unwrap();
}

#[test]
fn head_moved_before_base_leaves_the_branch_alone() {
    let t = repo();
    write(&t.root, "second.txt", "2\n");
    let base = commit_all(&t.root, "second");
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();

    // Detached at an older commit.
    slot.prepare("ws/r/a", &base, &no_opts()).unwrap();
    git(&slot.path, &["checkout", "-q", "--detach", "HEAD~1"]);
    let c = slot.collect("ws/r/a", &base, "a").unwrap();
    assert!(
        c.warnings[0].contains("not on top of the base"),
        "{:?}",
        c.warnings
    );
    assert_eq!(c.head, base);
    assert!(c.commits.is_empty() && c.files.is_empty());

    // `git reset --hard` on the branch itself, after committing.
    slot.prepare("ws/r/b", &base, &no_opts()).unwrap();
    write(&slot.path, "b.txt", "b\n");
    let c1 = commit_all(&slot.path, "b work");
    git(&slot.path, &["reset", "-q", "--hard", "HEAD~2"]);
    write(&slot.path, "after-reset.txt", "x\n");
    let c = slot.collect("ws/r/b", &base, "b").unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("git reset"), "{:?}", c.warnings);
    assert!(
        c.warnings[0].contains(&format!("stays at {}", &c1[..10])),
        "{:?}",
        c.warnings
    );
    assert_eq!(c.head, c1);
    assert_eq!(c.commits, vec![c1]);
    assert_eq!(c.files.len(), 1);
}

#[test]
fn mid_merge_state_and_option_like_names_are_cleaned() {
    let t = repo();
    let base = t.head();
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    slot.prepare("ws/r/a", &base, &no_opts()).unwrap();
    // The agent makes a conflicting merge and walks away.
    git(&slot.path, &["checkout", "-q", "-b", "side"]);
    write(
        &slot.path,
        "data.txt",
        &numbered(20).replace("line 3\n", "side\n"),
    );
    commit_all(&slot.path, "side");
    git(&slot.path, &["checkout", "-q", "ws/r/a"]);
    write(
        &slot.path,
        "data.txt",
        &numbered(20).replace("line 3\n", "ours\n"),
    );
    commit_all(&slot.path, "ours");
    assert!(!git_cmd(&slot.path, &["merge", "-q", "side"])
        .status
        .success());
    for name in ["-rf", "--force", "-n"] {
        write(&slot.path, name, "option-like\n");
    }
    let gitdir = t.gitdir_of(&slot);
    assert!(gitdir.join("MERGE_HEAD").exists());

    let c = slot.collect("ws/r/a", &base, "a").unwrap();
    assert!(
        c.warnings.iter().any(|w| w.contains("uncommitted changes")),
        "{:?}",
        c.warnings
    );
    assert!(c.files.iter().any(|f| f.path == "--force"));
    assert!(!gitdir.join("MERGE_HEAD").exists());

    // Again mid-merge, then prepare without collecting.
    slot.prepare("ws/r/x", &base, &no_opts()).unwrap();
    git(&slot.path, &["reset", "-q", "--hard", "side~1"]);
    write(
        &slot.path,
        "data.txt",
        &numbered(20).replace("line 3\n", "third\n"),
    );
    commit_all(&slot.path, "x");
    assert!(!git_cmd(&slot.path, &["merge", "-q", "side"])
        .status
        .success());
    write(&slot.path, "-rf", "again\n");
    slot.prepare("ws/r/b", &base, &no_opts()).unwrap();
    assert!(!gitdir.join("MERGE_HEAD").exists());
    assert!(!slot.path.join("-rf").exists());
    assert_eq!(git(&slot.path, &["status", "--porcelain"]), "");
    assert_eq!(
        fs::read_to_string(slot.path.join("data.txt")).unwrap(),
        numbered(20)
    );
}

#[test]
fn resume_after_crash_with_branch_checked_out_here() {
    let t = repo();
    let base = t.head();
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    slot.prepare("ws/r/a", &base, &no_opts()).unwrap();
    write(&slot.path, "a.txt", "a\n");
    commit_all(&slot.path, "a");
    // Same branch again: force-reset to base although it is checked out right here.
    slot.prepare("ws/r/a", &base, &no_opts()).unwrap();
    assert_eq!(git(&t.root, &["rev-parse", "ws/r/a"]), base);
    assert!(!slot.path.join("a.txt").exists());
}

#[test]
fn a_branch_checked_out_elsewhere_is_refused() {
    let t = repo();
    let base = t.head();
    git(&t.root, &["branch", "ws/r/taken"]);
    git(&t.root, &["checkout", "-q", "ws/r/taken"]);
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    let e = slot.prepare("ws/r/taken", &base, &no_opts()).unwrap_err();
    assert!(!e.pool_fault, "no agent can fix that: {e}");
    assert!(e.error.to_string().starts_with("failed to"), "{e}");
    assert!(e.error.to_string().contains("main worktree"), "{e}");
    let e = slot.prepare("bad..name", &base, &no_opts()).unwrap_err();
    assert!(!e.pool_fault);
    assert!(e.error.to_string().contains("bad..name"), "{e}");
}

#[test]
fn a_branch_left_checked_out_in_an_idle_slot_is_released_there() {
    let t = repo();
    let base = t.head();
    let mut one = claim_agent_slot(&t.paths, 1, &base).unwrap();
    one.prepare("ws/r/a", &base, &no_opts()).unwrap();
    // A run that died with ws/r/a checked out in agent-1: the slot is idle.
    drop(one);
    let mut two = claim_agent_slot(&t.paths, 2, &base).unwrap();
    two.prepare("ws/r/a", &base, &no_opts()).unwrap();
    assert_eq!(
        git(&two.path, &["symbolic-ref", "HEAD"]),
        "refs/heads/ws/r/a"
    );
    let one_path = t.paths.pool_slot_dir("agent-1");
    assert!(git_cmd(&one_path, &["symbolic-ref", "-q", "HEAD"])
        .stdout
        .is_empty());
    // Held by a live run, it is not taken from there (and another agent may do better).
    let mut held = claim_agent_slot(&t.paths, 1, &base).unwrap();
    held.prepare("ws/r/b", &base, &no_opts()).unwrap();
    let e = two.prepare("ws/r/b", &base, &no_opts()).unwrap_err();
    assert!(e.pool_fault, "{e}");
    assert!(
        e.error.to_string().contains("another git ws-run holds"),
        "{e}"
    );
}

// ---------------------------------------------------------------- concurrency

#[test]
fn concurrent_slots_and_branches_from_threads() {
    let t = repo();
    let base = t.head();
    let paths = Arc::new(t.paths.clone());
    let barrier = Arc::new(Barrier::new(8));
    let mut handles = Vec::new();
    // Six agents plus two threads that both want agent 7.
    for k in [1usize, 2, 3, 4, 5, 6, 7, 7] {
        let (paths, base, barrier) = (paths.clone(), base.clone(), barrier.clone());
        handles.push(std::thread::spawn(move || {
            barrier.wait();
            let mut slot = claim_agent_slot(&paths, k, &base).unwrap();
            let mut collected = Vec::new();
            for n in 0..2 {
                let branch = format!("ws/conc/{}-{n}", slot.name);
                slot.prepare(&branch, &base, &PrepareOptions::default())
                    .unwrap();
                write(&slot.path, &format!("{}-{n}.txt", slot.name), "x\n");
                collected.push(slot.collect(&branch, &base, &branch).unwrap());
            }
            barrier.wait(); // both agent-7 claimants hold their slots at once
            (slot.name.clone(), collected, slot)
        }));
    }
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut names: Vec<_> = results.iter().map(|r| r.0.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ws-agent-1",
            "ws-agent-2",
            "ws-agent-3",
            "ws-agent-4",
            "ws-agent-5",
            "ws-agent-6",
            "ws-agent-7",
            "ws-agent-7-2"
        ]
    );
    for (_, collected, _) in &results {
        for c in collected {
            assert_eq!(c.commits.len(), 1);
            assert_eq!(c.files.len(), 1);
        }
    }
    assert_eq!(t.worktrees(), 9);
    let branches = t.branches();
    assert_eq!(branches.len(), 1 + 16, "{branches:?}");
    for (_, _, slot) in results {
        slot.remove().unwrap();
    }
    assert_eq!(t.worktrees(), 1);
}

/// Run as a child process by `slots_are_exclusive_across_processes` (this test binary
/// re-executed with `--ignored --exact`): claims agent 1 in the given repository, works a
/// few workstreams, and holds the slot until told to let go.
#[test]
#[ignore = "helper: run as a child process by slots_are_exclusive_across_processes"]
fn child_process_holds_agent_1() {
    let (Ok(root), Ok(base), Ok(signal)) = (
        std::env::var("GIT_WS_TEST_REPO"),
        std::env::var("GIT_WS_TEST_BASE"),
        std::env::var("GIT_WS_TEST_SIGNAL_DIR"),
    ) else {
        panic!("only meant to be run by slots_are_exclusive_across_processes");
    };
    hermetic_libgit2();
    let signal = PathBuf::from(signal);
    let paths = discover(Path::new(&root)).unwrap();
    let mut slot = claim_agent_slot(&paths, 1, &base).unwrap();
    fs::write(signal.join("claimed"), &slot.name).unwrap();
    for n in 0..3 {
        let branch = format!("ws/child/{n}");
        slot.prepare(&branch, &base, &PrepareOptions::default())
            .unwrap();
        write(&slot.path, "child.txt", "c\n");
        let c = slot.collect(&branch, &base, "child").unwrap();
        assert_eq!(c.commits.len(), 1);
    }
    for _ in 0..600 {
        if signal.join("release").exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("never released");
}

#[test]
fn slots_are_exclusive_across_processes() {
    let t = repo();
    let base = t.head();
    let signal = tempfile::tempdir().unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tests::child_process_holds_agent_1",
            "--ignored",
            "--quiet",
        ])
        .env("GIT_WS_TEST_REPO", &t.root)
        .env("GIT_WS_TEST_BASE", &base)
        .env("GIT_WS_TEST_SIGNAL_DIR", signal.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let claimed = signal.path().join("claimed");
    for _ in 0..600 {
        // Written by the child after it is created: wait for its contents.
        if fs::read_to_string(&claimed).is_ok_and(|s| !s.is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fs::read_to_string(&claimed).unwrap(), "ws-agent-1");
    // The other process holds agent-1: this one gets agent-1-2, and both work at once.
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    assert_eq!(slot.name, "ws-agent-1-2");
    for n in 0..3 {
        let branch = format!("ws/parent/{n}");
        slot.prepare(&branch, &base, &no_opts()).unwrap();
        write(&slot.path, "parent.txt", "p\n");
        assert_eq!(slot.collect(&branch, &base, "p").unwrap().commits.len(), 1);
    }
    fs::write(signal.path().join("release"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "child failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Its lock died with it: agent-1 is free again.
    drop(slot);
    let again = claim_agent_slot(&t.paths, 1, &base).unwrap();
    assert_eq!(again.name, "ws-agent-1");
    assert_eq!(t.branches().len(), 1 + 6);
}

// ---------------------------------------------------------------- forecast
// (the forecast's own tests are in forecast_tests.rs)

fn branch_with(t: &TestRepo, base: &str, branch: &str, files: &[(&str, &[u8])]) {
    git(&t.root, &["checkout", "-q", "-b", branch, base]);
    for (p, content) in files {
        fs::write(t.root.join(p), content).unwrap();
    }
    commit_all(&t.root, branch);
    git(&t.root, &["checkout", "-q", "main"]);
}

#[test]
fn long_conflicts_are_truncated() {
    let base = numbered(100);
    let ours = base.replace("line ", "ours ");
    let theirs = base.replace("line ", "theirs ");
    let text = forecast::render_text_conflict(&base, &ours, &theirs, "a", "b");
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 41);
    assert_eq!(lines[0], "<<<<<<< a");
    assert_eq!(lines[40], "… (264 more lines)");
}

// ---------------------------------------------------------------- post-merge

#[test]
fn merged_ws_branches_after_a_real_merge() {
    let t = repo();
    let base = t.head();
    branch_with(&t, &base, "ws/m/x", &[("x.txt", b"x\n")]);
    branch_with(&t, &base, "ws/m/y", &[("y.txt", b"y\n")]);
    git(&t.root, &["branch", "ws/m/z", &base]);
    branch_with(&t, &base, "feature", &[("f.txt", b"f\n")]);
    git(
        &t.root,
        &["merge", "-q", "--no-ff", "-m", "merge x", "ws/m/x"],
    );
    git(
        &t.root,
        &["merge", "-q", "--no-ff", "-m", "merge f", "feature"],
    );
    let merged = merged_ws_branches(&t.paths, &t.root).unwrap();
    assert_eq!(
        merged,
        vec![
            ("ws/m/x".to_string(), git(&t.root, &["rev-parse", "ws/m/x"])),
            ("ws/m/z".to_string(), base.clone()),
        ]
    );
}

#[test]
fn merged_ws_branches_is_fast_with_hundreds_of_branches() {
    let t = repo();
    let main = git2::Repository::open(&t.root).unwrap();
    let sig = git2::Signature::now("t", "t@example.com").unwrap();
    let mut head = main.head().unwrap().peel_to_commit().unwrap();
    let base = head.clone();
    let tree = head.tree().unwrap();
    // 200 merged (a linear history on main) and 200 unmerged side commits, each with a branch.
    for i in 0..200 {
        let id = main
            .commit(Some("HEAD"), &sig, &sig, &format!("m{i}"), &tree, &[&head])
            .unwrap();
        head = main.find_commit(id).unwrap();
        main.reference(&format!("refs/heads/ws/bulk/merged-{i}"), id, false, "t")
            .unwrap();
        let side = main
            .commit(None, &sig, &sig, &format!("s{i}"), &tree, &[&base])
            .unwrap();
        main.reference(&format!("refs/heads/ws/bulk/side-{i}"), side, false, "t")
            .unwrap();
    }
    let start = std::time::Instant::now();
    let merged = merged_ws_branches(&t.paths, &t.root).unwrap();
    let took = start.elapsed();
    assert_eq!(merged.len(), 200);
    assert!(merged.iter().all(|(b, _)| b.starts_with("ws/bulk/merged-")));
    eprintln!("merged_ws_branches over 400 branches: {took:?}");
    assert!(took < Duration::from_millis(500), "took {took:?}");
}

#[test]
fn nested_repository_left_by_agent() {
    let t = repo();
    let base = t.head();
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    slot.prepare("ws/r/n", &base, &no_opts()).unwrap();
    write(&slot.path, "scaffold/file.txt", "s\n");
    git(&slot.path.join("scaffold"), &["init", "-q"]);
    write(&slot.path, "plain.txt", "p\n");
    let c = slot.collect("ws/r/n", &base, "n").unwrap();
    assert_eq!(
        c.warnings,
        vec![
            "uncommitted changes (1 file) were committed on ws/r/n by git-ws".to_string(),
            "nested git repositories left in the worktree were not committed: scaffold/"
                .to_string(),
        ]
    );
    assert_eq!(c.files.len(), 1);
    assert_eq!(c.files[0].path, "plain.txt");
    // The next workstream does not inherit it.
    slot.prepare("ws/r/m", &base, &no_opts()).unwrap();
    assert!(!slot.path.join("scaffold").exists());
}

#[test]
fn creating_a_worktree_takes_no_shared_lock_and_makes_no_branch() {
    let t = repo();
    let base = t.head();
    // Locks another process might hold on shared refs and config (what the old creation
    // through a temporary branch needed): creation does not wait for any of them.
    let held = [
        t.paths
            .common_dir
            .join("refs/heads/git-ws-tmp/ws-agent-1.lock"),
        t.paths.common_dir.join("packed-refs.lock"),
        t.paths.common_dir.join("config.lock"),
        t.paths.common_dir.join("HEAD.lock"),
    ];
    for l in &held {
        fs::create_dir_all(l.parent().unwrap()).unwrap();
        fs::write(l, "").unwrap();
    }
    let start = std::time::Instant::now();
    let slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(slot.created);
    assert_eq!(t.branches(), vec!["main"]);
    assert_eq!(git(&slot.path, &["rev-parse", "HEAD"]), base);
    assert_eq!(git(&slot.path, &["status", "--porcelain", "--ignored"]), "");
    for l in &held {
        assert!(l.exists(), "{} was touched", l.display());
        fs::remove_file(l).unwrap();
    }
    // Git sees a detached, locked worktree of git-ws's.
    let list = git(&t.root, &["worktree", "list", "--porcelain"]);
    assert!(list.contains("detached"), "{list}");
    assert!(list.contains(&format!("locked {LOCK_REASON}")), "{list}");
    assert_eq!(git(&t.root, &["worktree", "prune", "--dry-run", "-v"]), "");
}

#[test]
fn retry_gives_up_at_once_on_other_errors() {
    let mut calls = 0;
    let e = repo::retry(
        || "do the thing".to_string(),
        || -> Result<(), git2::Error> {
            calls += 1;
            Err(git2::Error::from_str("boom"))
        },
    )
    .unwrap_err();
    assert_eq!(
        (calls, e.to_string().as_str()),
        (1, "failed to do the thing: boom")
    );
    let mut calls = 0;
    let ok = repo::retry(
        || "lock".to_string(),
        || {
            calls += 1;
            if calls < 3 {
                Err(git2::Error::new(
                    git2::ErrorCode::Locked,
                    git2::ErrorClass::Reference,
                    "failed to lock file 'x.lock' for writing",
                ))
            } else {
                Ok(calls)
            }
        },
    );
    assert_eq!(ok, Ok(3));
}

#[test]
fn temporary_branches_of_older_versions_are_cleaned_by_the_sweep() {
    let t = repo();
    let base = t.head();
    let slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    let path = slot.path.clone();
    drop(slot);
    // As an older git-ws left it after a crash right after `git worktree add`.
    git(&path, &["checkout", "-q", "-b", "git-ws-tmp/ws-agent-1"]);
    let swept = sweep_pool(&t.paths, &PoolPolicy::default());
    assert!(swept.failures.is_empty(), "{swept:?}");
    assert_eq!(t.branches(), vec!["main"]);
    assert_eq!(git(&path, &["rev-parse", "HEAD"]), base);
    assert!(git_cmd(&path, &["symbolic-ref", "-q", "HEAD"])
        .stdout
        .is_empty());
    // And when the worktree is broken too: the half-made slot goes, then the branch.
    git(&path, &["checkout", "-q", "-b", "git-ws-tmp/ws-agent-1"]);
    fs::remove_dir_all(&path).unwrap();
    let swept = sweep_pool(&t.paths, &PoolPolicy::default());
    assert_eq!(swept.removed.len(), 1, "{swept:?}");
    assert_eq!(t.branches(), vec!["main"]);
    let slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    assert_eq!(git(&slot.path, &["rev-parse", "HEAD"]), base);
}

fn prepare_scans() -> usize {
    super::branch::PREPARE_SCANS.with(|n| n.get())
}

#[test]
fn prepare_uses_the_scan_collect_made_unless_the_worktree_changed_since() {
    let t = repo();
    let base = t.head();
    let opts = PrepareOptions {
        keep_ignored: vec!["target".into()],
    };
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    slot.prepare("ws/r/a", &base, &opts).unwrap();
    let scans = prepare_scans();
    write(&slot.path, "a.txt", "a\n");
    write(&slot.path, "build/x.o", "ignored\n");
    write(&slot.path, "target/keep", "cache\n");
    slot.collect("ws/r/a", &base, "a").unwrap();
    slot.prepare("ws/r/b", &base, &opts).unwrap();
    assert_eq!(
        prepare_scans(),
        scans,
        "prepare scanned again after collect"
    );
    assert!(!slot.path.join("a.txt").exists() && !slot.path.join("build").exists());
    assert!(slot.path.join("target/keep").exists());
    assert_eq!(git(&slot.path, &["status", "--porcelain"]), "");

    // Something touched the worktree after collect (the index file changed): scan.
    write(&slot.path, "b.txt", "b\n");
    slot.collect("ws/r/b", &base, "b").unwrap();
    write(&slot.path, "later.txt", "after collect\n");
    git(&slot.path, &["add", "later.txt"]);
    slot.prepare("ws/r/c", &base, &opts).unwrap();
    assert_eq!(prepare_scans(), scans + 1);
    assert!(!slot.path.join("later.txt").exists());

    // The process died between collect and the next prepare: the index file on disk is
    // the agent's, not the committed one. The next claim's prepare sorts it out.
    write(&slot.path, "c.txt", "c\n");
    write(&slot.path, "README.md", "changed\n");
    slot.collect("ws/r/c", &base, "c").unwrap();
    drop(slot);
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    slot.prepare("ws/r/d", &base, &opts).unwrap();
    assert_eq!(git(&slot.path, &["status", "--porcelain"]), "");
    assert_eq!(
        fs::read_to_string(slot.path.join("README.md")).unwrap(),
        "hello\n"
    );
    assert!(!slot.path.join("c.txt").exists());
    assert_eq!(
        git(&t.root, &["show", "ws/r/c:README.md"]),
        "changed",
        "the work is on its branch"
    );
}

fn full_switches() -> usize {
    super::branch::FULL_SWITCHES.with(|n| n.get())
}

fn set_old_mtime(path: &Path) -> SystemTime {
    let old = SystemTime::now() - Duration::from_secs(3600 * 24);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    old
}

#[test]
fn switching_after_collect_touches_only_the_files_that_differ() {
    let t = repo();
    let base = t.head();
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    let before = full_switches();
    slot.prepare("ws/r/a", &base, &no_opts()).unwrap();
    // The agent edits, adds, deletes; collect commits it all.
    write(&slot.path, "README.md", "changed by a\n");
    write(&slot.path, "src/new.rs", "fn new() {}\n");
    fs::remove_file(slot.path.join("data.txt")).unwrap();
    write(&slot.path, "build/out.o", "ignored\n");
    let old = set_old_mtime(&slot.path.join("src/lib.rs"));
    let c = slot.collect("ws/r/a", &base, "a").unwrap();
    assert_eq!(c.files.len(), 3, "{:?}", c.files);

    slot.prepare("ws/r/b", &base, &no_opts()).unwrap();
    assert_eq!(full_switches(), before, "the limited switch fell back");
    assert_eq!(git(&slot.path, &["rev-parse", "HEAD"]), base);
    assert_eq!(
        git(&slot.path, &["symbolic-ref", "HEAD"]),
        "refs/heads/ws/r/b"
    );
    assert_eq!(git(&slot.path, &["status", "--porcelain", "--ignored"]), "");
    assert_eq!(
        fs::read_to_string(slot.path.join("README.md")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        fs::read_to_string(slot.path.join("data.txt")).unwrap(),
        numbered(20)
    );
    assert!(!slot.path.join("src/new.rs").exists());
    assert!(!slot.path.join("build").exists());
    let mtime = fs::metadata(slot.path.join("src/lib.rs"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(mtime, old, "an unchanged file was rewritten");
    // The index matches the base exactly (git's own view, not libgit2's).
    assert_eq!(
        git(&slot.path, &["diff", "--cached", "--name-only", &base]),
        ""
    );
    // Branch a keeps its work.
    assert_eq!(
        git(&t.root, &["diff", "--name-only", &base, "ws/r/a"]),
        "README.md\ndata.txt\nsrc/new.rs"
    );
}

#[test]
fn staged_leftovers_fall_back_to_the_full_checkout() {
    let t = repo();
    let base = t.head();
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    slot.prepare("ws/r/a", &base, &no_opts()).unwrap();
    // Not collected: a staged edit, a staged new file, an unstaged edit.
    write(&slot.path, "README.md", "staged\n");
    write(&slot.path, "staged-new.txt", "new\n");
    git(&slot.path, &["add", "README.md", "staged-new.txt"]);
    write(&slot.path, "src/lib.rs", "unstaged\n");
    let before = full_switches();
    slot.prepare("ws/r/b", &base, &no_opts()).unwrap();
    assert_eq!(full_switches(), before + 1);
    assert_eq!(git(&slot.path, &["status", "--porcelain", "--ignored"]), "");
    assert!(!slot.path.join("staged-new.txt").exists());
    assert_eq!(
        fs::read_to_string(slot.path.join("src/lib.rs")).unwrap(),
        numbered(10)
    );
}

#[test]
fn keep_ignored_keeps_target_and_node_modules_between_workstreams() {
    let t = repo();
    write(
        &t.root,
        ".gitignore",
        "target/\nnode_modules/\nbuild/\n*.log\n",
    );
    let base = commit_all(&t.root, "ignore node_modules");
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    let opts = PrepareOptions {
        keep_ignored: vec!["target".into(), "node_modules/".into()],
    };
    slot.prepare("ws/r/a", &base, &opts).unwrap();
    write(&slot.path, "target/debug/app", "binary\n");
    write(
        &slot.path,
        "node_modules/left-pad/index.js",
        "module.exports = 1;\n",
    );
    write(&slot.path, "build/out.o", "not kept\n");
    write(&slot.path, "debug.log", "not kept\n");
    write(&slot.path, "src/lib.rs", "edited\n");
    let c = slot.collect("ws/r/a", &base, "a").unwrap();
    assert_eq!(
        c.files.len(),
        1,
        "ignored files were committed: {:?}",
        c.files
    );
    for opts_now in [&opts, &no_opts()] {
        slot.prepare("ws/r/b", &base, opts_now).unwrap();
        let kept = opts_now == &opts;
        assert_eq!(slot.path.join("target/debug/app").exists(), kept);
        assert_eq!(
            slot.path.join("node_modules/left-pad/index.js").exists(),
            kept
        );
        assert!(!slot.path.join("build").exists());
        assert!(!slot.path.join("debug.log").exists());
        assert_eq!(
            fs::read_to_string(slot.path.join("src/lib.rs")).unwrap(),
            numbered(10)
        );
    }
}

#[test]
fn worktreeinclude_copies_ignored_untracked_files_only() {
    let t = repo();
    write(&t.root, ".gitignore", "target/\n.env\n*.local\nsecrets/\n");
    write(&t.root, "config/tracked.local", "tracked in base\n");
    git(&t.root, &["add", "-f", "config/tracked.local"]);
    write(
        &t.root,
        ".worktreeinclude",
        "# copied into agent worktrees\n.env\nconfig/*.local\nsecrets\nREADME.md\nmissing.txt\n../escape\n",
    );
    let base = commit_all(&t.root, "worktreeinclude");
    // The user's local, ignored files (and a local edit of tracked ones).
    write(&t.root, ".env", "TOKEN=abc\n");
    write(&t.root, "config/app.local", "local=1\n");
    write(&t.root, "config/tracked.local", "edited locally\n");
    write(&t.root, "secrets/key.pem", "KEY\n");
    write(&t.root, "README.md", "edited locally\n");
    write(&t.root, "../escape", "outside\n");

    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    slot.prepare("ws/r/a", &base, &no_opts()).unwrap();
    let slot_path = slot.path.clone();
    let read = |rel: &str| fs::read_to_string(slot_path.join(rel)).ok();
    assert_eq!(read(".env").as_deref(), Some("TOKEN=abc\n"));
    assert_eq!(read("config/app.local").as_deref(), Some("local=1\n"));
    assert_eq!(read("secrets/key.pem").as_deref(), Some("KEY\n"));
    // Tracked files are never overwritten, ignored pattern or not.
    assert_eq!(
        read("config/tracked.local").as_deref(),
        Some("tracked in base\n")
    );
    assert_eq!(read("README.md").as_deref(), Some("hello\n"));
    assert!(read("missing.txt").is_none());
    assert!(!slot.path.join("../escape").exists() || read("../escape").is_none());
    assert_eq!(git(&slot.path, &["status", "--porcelain"]), "");

    // The agent edits the copy; it is not committed, and the next workstream gets a fresh one.
    write(&slot.path, ".env", "TOKEN=changed-by-agent\n");
    write(&slot.path, "src/lib.rs", "work\n");
    let c = slot.collect("ws/r/a", &base, "a").unwrap();
    assert_eq!(
        c.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
        vec!["src/lib.rs"]
    );
    slot.prepare("ws/r/b", &base, &no_opts()).unwrap();
    assert_eq!(read(".env").as_deref(), Some("TOKEN=abc\n"));
    assert_eq!(read("secrets/key.pem").as_deref(), Some("KEY\n"));
}

// ---------------------------------------------------------------- the pool's place

/// The paths as versions before the move kept the pool: inside `.git` (`<common>/ws`).
fn legacy_paths(t: &TestRepo) -> RepoPaths {
    let mut old = t.paths.clone();
    old.pool = old.common_dir.join("ws");
    old
}

/// Slot `agent-k` as versions before the move made it: `.git/ws/agent-k`, no owner file.
fn legacy_slot(t: &TestRepo, k: usize, base: &str) -> AgentSlot {
    let slot = claim_agent_slot(&legacy_paths(t), k, base).unwrap();
    fs::remove_file(t.paths.ws_dir().join(POOL_OWNER_FILE)).unwrap();
    slot
}

/// `git worktree list` names exactly `paths` besides the main worktree, and `git worktree
/// prune` has nothing to do.
fn assert_worktrees_are(t: &TestRepo, paths: &[&Path]) {
    let mut listed: Vec<PathBuf> = git(&t.root, &["worktree", "list", "--porcelain"])
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .map(PathBuf::from)
        .filter(|p| *p != t.root)
        .collect();
    let mut want: Vec<PathBuf> = paths.iter().map(|p| fs::canonicalize(p).unwrap()).collect();
    listed.sort();
    want.sort();
    assert_eq!(listed, want);
    assert_eq!(git(&t.root, &["worktree", "prune", "--dry-run", "-v"]), "");
}

#[test]
fn a_slot_left_inside_git_by_an_older_version_moves_out_on_its_next_claim_caches_kept() {
    let t = repo();
    let base = t.head();
    let old = legacy_slot(&t, 1, &base);
    assert_eq!(old.path, t.root.join(".git/ws/agent-1"));
    write(&old.path, "target/cache.bin", "built\n");
    drop(old);

    let slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    assert_eq!(slot.path, t.paths.pool_slot_dir("agent-1"));
    assert!(!slot.path.starts_with(&t.paths.common_dir));
    assert!(!slot.created, "moved, not checked out again");
    assert!(
        slot.repairs
            .iter()
            .any(|r| r.contains("moved agent worktree agent-1 out of .git")),
        "{:?}",
        slot.repairs
    );
    assert_eq!(
        fs::read_to_string(slot.path.join("target/cache.bin")).unwrap(),
        "built\n"
    );
    assert!(!t.root.join(".git/ws/agent-1").exists());
    assert_worktrees_are(&t, &[&slot.path]);
    assert_eq!(git(&slot.path, &["status", "--porcelain"]), "");
    assert_eq!(git(&slot.path, &["rev-parse", "HEAD"]), base);
    // The main worktree does not see the pool.
    assert_eq!(git(&t.root, &["status", "--porcelain", "--ignored"]), "");
}

#[test]
fn the_sweep_moves_old_slots_out_of_git_and_the_prune_removes_old_and_new() {
    let t = repo();
    let base = t.head();
    for k in 1..=2 {
        drop(legacy_slot(&t, k, &base));
    }
    let swept = sweep_pool(&t.paths, &PoolPolicy::default());
    assert!(swept.failures.is_empty(), "{swept:?}");
    assert_eq!(swept.repaired.len(), 2, "{swept:?}");
    let ws_dir = t.paths.ws_dir();
    let left: Vec<String> = fs::read_dir(&ws_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("agent-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let one = t.paths.pool_slot_dir("agent-1");
    let two = t.paths.pool_slot_dir("agent-2");
    assert_worktrees_are(&t, &[&one, &two]);

    // One more left in the old place, then a prune: nothing of the pool is left anywhere.
    drop(legacy_slot(&t, 3, &base));
    let pruned = prune_pool(&t.paths);
    assert!(pruned.failures.is_empty(), "{pruned:?}");
    assert_eq!(pruned.removed.len(), 3, "{pruned:?}");
    assert!(!t.paths.pool_dir().exists());
    assert!(!ws_dir.exists());
    assert_worktrees_are(&t, &[]);
}

#[test]
fn ws_pool_dir_places_the_pool_and_two_repositories_never_share_one() {
    let t = repo();
    let base = t.head();
    git(&t.root, &["config", "ws.poolDir", "../pools/mine"]);
    let paths = discover(&t.root).unwrap();
    assert_eq!(paths.pool, t.root.join("../pools/mine"));
    let slot = claim_agent_slot(&paths, 1, &base).unwrap();
    assert_eq!(
        fs::canonicalize(&slot.path).unwrap(),
        fs::canonicalize(t.root.parent().unwrap().join("pools/mine/agent-1")).unwrap()
    );
    drop(slot);

    // A second repository told to use the same directory is refused, not given our slots.
    let other = repo();
    let mut theirs = other.paths.clone();
    theirs.pool = paths.pool.clone();
    let e = claim_agent_slot(&theirs, 1, &other.head()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("belongs to another repository"), "{text}");
    assert!(text.contains("ws.poolDir"), "{text}");
    // By default, two repositories have two pools.
    assert_ne!(
        repo().paths.pool_slot_dir("agent-1"),
        other.paths.pool_slot_dir("agent-1")
    );
    assert_eq!(
        other.paths.pool,
        other.root.parent().unwrap().join(".main.ws-pool")
    );
}

#[test]
fn an_agents_own_files_stay_off_the_branch_and_out_of_the_users_files() {
    let t = repo();
    let base = t.head();
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    slot.prepare("ws/r/aider", &base, &no_opts()).unwrap();
    write(&slot.path, ".aider.chat.history.md", "# chat\n");
    write(&slot.path, ".aider.input.history", "x\n");
    write(&slot.path, ".aider.tags.cache.v4/cache.db", "db\n");
    write(&slot.path, "hello.txt", "hi\n");
    let gitignore = fs::read(slot.path.join(".gitignore")).unwrap();
    let config = fs::read(t.paths.common_dir.join("config")).unwrap();
    slot.ignore_own_files(&[".aider*"]);
    let c = slot.collect("ws/r/aider", &base, "aider").unwrap();
    let paths: Vec<&str> = c.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, vec!["hello.txt"]);
    let on_branch = git(&t.root, &["ls-tree", "-r", "--name-only", "ws/r/aider"]);
    assert!(!on_branch.contains(".aider"), "{on_branch}");
    // Neither the user's `.gitignore`, the repository's config nor info/exclude changed.
    assert_eq!(fs::read(slot.path.join(".gitignore")).unwrap(), gitignore);
    assert_eq!(fs::read(t.paths.common_dir.join("config")).unwrap(), config);
    assert!(
        !t.paths.common_dir.join("info/exclude").exists()
            || !fs::read_to_string(t.paths.common_dir.join("info/exclude"))
                .unwrap()
                .contains(".aider")
    );

    // The next workstream's agent is not aider: such a file is its work, and committed.
    slot.prepare("ws/r/other", &base, &no_opts()).unwrap();
    write(&slot.path, ".aider.conf.yml", "model: x\n");
    slot.ignore_own_files(&[]);
    let c = slot.collect("ws/r/other", &base, "other").unwrap();
    let paths: Vec<&str> = c.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, vec![".aider.conf.yml"]);
}

#[test]
fn agents_making_the_pool_directory_at_once_all_succeed() {
    let t = repo();
    for round in 0..20 {
        let mut paths = t.paths.clone();
        paths.pool = t.root.parent().unwrap().join(format!("pool-{round}"));
        let paths = Arc::new(paths);
        let barrier = Arc::new(Barrier::new(12));
        let handles: Vec<_> = (0..12)
            .map(|_| {
                let (paths, barrier) = (paths.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    slots::ensure_pool_dir(&paths)
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), Ok(()), "round {round}");
        }
        let names: Vec<String> = fs::read_dir(&paths.pool)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![POOL_OWNER_FILE.to_string()], "round {round}");
    }
}

#[test]
fn a_changed_ws_pool_dir_takes_the_slots_along_and_the_prune_finds_them() {
    let t = repo();
    let base = t.head();
    let mut first = t.paths.clone();
    first.pool = t.root.parent().unwrap().join("pool-a");
    let mut second = t.paths.clone();
    second.pool = t.root.parent().unwrap().join("pool-b");
    for k in 1..=2 {
        let slot = claim_agent_slot(&first, k, &base).unwrap();
        write(&slot.path, "target/cache.bin", "built\n");
    }

    let slot = claim_agent_slot(&second, 1, &base).unwrap();
    assert_eq!(slot.path, second.pool_slot_dir("agent-1"));
    assert!(!slot.created, "moved, not checked out again");
    assert!(
        slot.repairs
            .iter()
            .any(|r| r.contains("moved agent worktree agent-1 from")),
        "{:?}",
        slot.repairs
    );
    assert_eq!(
        fs::read_to_string(slot.path.join("target/cache.bin")).unwrap(),
        "built\n"
    );
    assert!(!first.pool_slot_dir("agent-1").exists());
    let two_old = first.pool_slot_dir("agent-2");
    assert_worktrees_are(&t, &[&slot.path, &two_old]);
    drop(slot);

    // agent-2 was not claimed since: the prune of the new pool still finds it.
    let pruned = prune_pool(&second);
    assert!(pruned.failures.is_empty(), "{pruned:?}");
    assert!(!two_old.exists());
    assert!(!second.pool_slot_dir("agent-1").exists());
    assert_worktrees_are(&t, &[]);

    // A pool configured to be the old place inside .git is used as it is, not emptied.
    let mut inside = t.paths.clone();
    inside.pool = t.paths.ws_dir();
    let slot = claim_agent_slot(&inside, 1, &base).unwrap();
    write(&slot.path, "target/cache.bin", "kept\n");
    drop(slot);
    let slot = claim_agent_slot(&inside, 1, &base).unwrap();
    assert!(!slot.created);
    assert_eq!(
        fs::read_to_string(slot.path.join("target/cache.bin")).unwrap(),
        "kept\n"
    );
}
