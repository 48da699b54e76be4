//! The agent worktree pool (in [`RepoPaths::pool`], outside `.git`): claiming a slot (a file lock per slot),
//! creating its linked worktree by hand — git's admin files written detached at the base,
//! then a checkout through git2, with no branch involved — repairing it, keeping it between
//! runs (locked in git's sense, so `git worktree prune` leaves it alone), and sweeping or
//! pruning idle slots.
//!
//! A slot `agent-k` is: the worktree directory `<pool>/agent-k`, git's admin dir
//! `<common>/worktrees/ws-agent-k` (`HEAD`, `commondir`, `gitdir`, `locked`, plus git-ws's
//! `git-ws-slot` state file), and the lock file `<common>/ws/locks/agent-k.lock`. A
//! `git-ws-creating` marker in the admin dir exists from the moment creation (or removal)
//! starts until it is complete, so a crash at any instant leaves a slot that is either
//! whole or marked half-made.
//!
//! Slots made by older versions under `<common>/ws/agent-k` (inside `.git`, where coding
//! agents refuse to edit) are moved into the pool on their next claim, sweep or prune
//! ([`migrate_legacy`]); the pool directory names its repository in [`POOL_OWNER_FILE`],
//! so two repositories configured with one `ws.poolDir` are refused instead of sharing
//! slots.

use super::error::io_disk_full;
use super::repo::{canon, open_main, parse_oid, retry, short, write_lock, Ctx};
use super::{AgentSlot, GitError, RepoPaths, POOL_OWNER_FILE};
use git2::build::CheckoutBuilder;
use git2::{BranchType, Oid, Repository};
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How many `agent-k-N` alternatives to try before giving up.
const MAX_SLOT_ALTERNATIVES: usize = 64;

/// The reason written to a pool worktree's `locked` file: `git worktree list` shows it,
/// and `git worktree prune` leaves locked worktrees alone.
pub const LOCK_REASON: &str =
    "git-ws agent worktree pool (remove with: git ws-run --prune-worktrees)";

/// Marker in the admin dir while a slot is being created or removed.
const CREATING: &str = "git-ws-creating";
/// git-ws's state file in the admin dir: the base the worktree was last reset to, and when
/// it was last used.
const STATE: &str = "git-ws-slot";

/// What the pool keeps and for how long.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolPolicy {
    /// Idle worktrees older than this are removed by the sweep at the start of a run;
    /// `None` keeps them forever.
    pub expiry: Option<Duration>,
}

/// What a sweep or prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolSweep {
    /// One line per worktree removed, e.g. "removed agent-3 (idle 15 days)".
    pub removed: Vec<String>,
    /// Slots a live run holds (left alone).
    pub busy: Vec<String>,
    /// One line per other repair (a crashed run's branch released, a legacy branch deleted).
    pub repaired: Vec<String>,
    /// Failures, one sentence each (the sweep never stops on one).
    pub failures: Vec<String>,
}

/// The files that make up one slot.
pub(crate) struct SlotDirs {
    /// `agent-1`, `agent-1-2`.
    pub slot: String,
    /// Git's worktree name: `ws-agent-1`.
    pub name: String,
    /// `<pool>/agent-1`.
    pub path: PathBuf,
    /// `<common>/ws/agent-1`: where older versions kept it.
    pub legacy: PathBuf,
    /// `<common>/worktrees/ws-agent-1`.
    pub admin: PathBuf,
    /// `<common>/ws/locks/agent-1.lock`.
    pub lock: PathBuf,
}

impl SlotDirs {
    pub(crate) fn new(repo: &RepoPaths, slot: &str) -> SlotDirs {
        let name = format!("ws-{slot}");
        SlotDirs {
            path: repo.pool_slot_dir(slot),
            legacy: repo.legacy_slot_dir(slot),
            admin: repo.common_dir.join("worktrees").join(&name),
            lock: locks_dir(repo).join(format!("{slot}.lock")),
            slot: slot.to_string(),
            name,
        }
    }

    /// `agent-k` for n = 1, else `agent-k-n`.
    fn numbered(repo: &RepoPaths, k: usize, n: usize) -> SlotDirs {
        if n == 1 {
            SlotDirs::new(repo, &format!("agent-{k}"))
        } else {
            SlotDirs::new(repo, &format!("agent-{k}-{n}"))
        }
    }

    /// Whether this is an overflow slot (`agent-k-n`).
    fn overflow(&self) -> bool {
        parse_slot(&self.slot).is_some_and(|(_, n)| n > 1)
    }
}

/// `agent-3` → (3, 1); `agent-3-2` → (3, 2).
pub(crate) fn parse_slot(slot: &str) -> Option<(usize, usize)> {
    let rest = slot.strip_prefix("agent-")?;
    let mut parts = rest.splitn(2, '-');
    let k = parts.next()?.parse().ok().filter(|&k| k > 0)?;
    let n = match parts.next() {
        Some(n) => n.parse().ok().filter(|&n| n > 1)?,
        None => 1,
    };
    Some((k, n))
}

fn locks_dir(repo: &RepoPaths) -> PathBuf {
    repo.ws_dir().join("locks")
}

/// Refuse a pool directory another repository owns: its [`POOL_OWNER_FILE`] names a git
/// common dir that exists and is not ours. Writes nothing.
pub(crate) fn check_owner(repo: &RepoPaths) -> Result<(), GitError> {
    let pool = repo.pool_dir();
    let Ok(text) = fs::read_to_string(pool.join(POOL_OWNER_FILE)) else {
        return Ok(());
    };
    let owner = PathBuf::from(text.trim());
    if owner.exists() && canon(&owner) != canon(&repo.common_dir) {
        return Err(GitError::Other(format!(
            "the agent worktree pool {} belongs to another repository ({}); give each \
             repository its own (git config {})",
            pool.display(),
            owner.display(),
            super::POOL_DIR_KEY
        )));
    }
    Ok(())
}

/// Create the pool directory if needed and make sure it is this repository's
/// ([`check_owner`]), naming our common dir in its [`POOL_OWNER_FILE`].
pub(crate) fn ensure_pool_dir(repo: &RepoPaths) -> Result<(), GitError> {
    let pool = repo.pool_dir();
    fs::create_dir_all(&pool).ctx(|| {
        format!(
            "create the agent worktree pool {} (set git config {} to put it elsewhere)",
            pool.display(),
            super::POOL_DIR_KEY
        )
    })?;
    check_owner(repo)?;
    let owner_file = pool.join(POOL_OWNER_FILE);
    let ours = canon(&repo.common_dir);
    let recorded = fs::read_to_string(&owner_file).ok();
    if recorded.is_none_or(|t| canon(Path::new(t.trim())) != ours) {
        // New, or its repository is gone: the pool is ours now. Agents claim their slots in
        // parallel, so each writes its own temporary file before the rename.
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = pool.join(format!(
            "{POOL_OWNER_FILE}.{}.{n}.git-ws-tmp",
            std::process::id()
        ));
        fs::write(&tmp, format!("{}\n", ours.display()))
            .and_then(|_| fs::rename(&tmp, &owner_file))
            .ctx(|| format!("write {}", owner_file.display()))
            .inspect_err(|_| {
                let _ = fs::remove_file(&tmp);
            })?;
    }
    Ok(())
}

/// Move slot `d` from where older versions kept it (`<common>/ws/agent-k`, inside `.git`)
/// into the pool, fixing git's link back to it; when it cannot be moved (the new place is
/// taken, another filesystem), it is removed and the next claim checks it out afresh. The
/// caller holds the slot's lock. A line saying what was done, if anything.
pub(crate) fn migrate_legacy(repo: &RepoPaths, d: &SlotDirs) -> Result<Option<String>, GitError> {
    // Not there, or the pool is configured to be that very place (`ws.poolDir = .git/ws`).
    if fs::symlink_metadata(&d.legacy).is_err() || canon(&d.legacy) == canon(&d.path) {
        return Ok(None);
    }
    let moved =
        !d.path.exists() && ensure_pool_dir(repo).is_ok() && fs::rename(&d.legacy, &d.path).is_ok();
    if !moved {
        remove_path(&d.legacy)?;
        // git's admin dir pointed at the old place: a claim builds the slot again.
        if fs::read_to_string(d.admin.join("gitdir"))
            .is_ok_and(|s| Path::new(s.trim()).starts_with(canon(&repo.ws_dir())))
        {
            remove_path(&d.admin)?;
        }
        return Ok(Some(format!(
            "removed agent worktree {} from its old place inside .git ({})",
            d.slot,
            d.legacy.display()
        )));
    }
    if d.admin.is_dir() {
        let back = d.admin.join("gitdir");
        fs::write(
            &back,
            format!("{}\n", canon(&d.path).join(".git").display()),
        )
        .ctx(|| format!("write {}", back.display()))?;
    }
    Ok(Some(format!(
        "moved agent worktree {} out of .git to {}",
        d.slot,
        d.path.display()
    )))
}

/// Where git's admin dir says slot `d`'s worktree is, when that is another directory (the
/// pool before `ws.poolDir` changed) whose `.git` file points back at the admin dir: a
/// worktree of ours left in another place.
fn elsewhere(d: &SlotDirs) -> Option<PathBuf> {
    let text = fs::read_to_string(d.admin.join("gitdir")).ok()?;
    let old = Path::new(text.trim()).parent()?.to_path_buf();
    if canon(&old) == canon(&d.path) || canon(&old) == canon(&d.legacy) || !old.is_dir() {
        return None;
    }
    let points_back = fs::read_to_string(old.join(".git"))
        .ok()
        .and_then(|s| s.strip_prefix("gitdir:").map(|r| r.trim().to_string()))
        .is_some_and(|target| canon(&old.join(target)) == canon(&d.admin));
    points_back.then_some(old)
}

/// Move slot `d` from a pool it was left in when `ws.poolDir` changed (see [`elsewhere`])
/// into the pool, caches and all; removed when it cannot be moved. The caller holds the
/// slot's lock. A line saying what was done, if anything.
pub(crate) fn follow_pool_dir(repo: &RepoPaths, d: &SlotDirs) -> Result<Option<String>, GitError> {
    let Some(old) = elsewhere(d) else {
        return Ok(None);
    };
    let moved =
        !d.path.exists() && ensure_pool_dir(repo).is_ok() && fs::rename(&old, &d.path).is_ok();
    if !moved {
        remove_path(&old)?;
        return Ok(Some(format!(
            "removed agent worktree {} from its earlier pool ({})",
            d.slot,
            old.display()
        )));
    }
    let back = d.admin.join("gitdir");
    fs::write(
        &back,
        format!("{}\n", canon(&d.path).join(".git").display()),
    )
    .ctx(|| format!("write {}", back.display()))?;
    Ok(Some(format!(
        "moved agent worktree {} from {} to {}",
        d.slot,
        old.display(),
        d.path.display()
    )))
}

pub(crate) fn claim(repo: &RepoPaths, k: usize, base_sha: &str) -> Result<AgentSlot, GitError> {
    let base = parse_oid(base_sha)?;
    let locks = locks_dir(repo);
    fs::create_dir_all(&locks).ctx(|| format!("create the lock directory {}", locks.display()))?;
    for n in 1..=MAX_SLOT_ALTERNATIVES {
        let d = SlotDirs::numbered(repo, k, n);
        let Some(lock) = try_lock_briefly(&d.lock)? else {
            continue;
        };
        return open_claimed(repo, k, d, lock, base);
    }
    Err(GitError::SlotsBusy {
        agent: k,
        tried: MAX_SLOT_ALTERNATIVES,
        locks,
    })
}

/// Claim pool slot `agent-k` only if it exists and no one holds it (a resume taking back
/// the crashed run's worktrees); repaired like any claim.
pub(crate) fn claim_existing(
    repo: &RepoPaths,
    k: usize,
    base_sha: &str,
) -> Result<Option<AgentSlot>, GitError> {
    let base = parse_oid(base_sha)?;
    let d = SlotDirs::numbered(repo, k, 1);
    if !d.path.exists() && !d.admin.exists() && !d.legacy.exists() {
        return Ok(None);
    }
    let Some(lock) = try_lock_briefly(&d.lock)? else {
        return Ok(None);
    };
    open_claimed(repo, k, d, lock, base).map(Some)
}

/// A slot whose lock we hold: made whole (see [`ensure`]) and opened once.
fn open_claimed(
    repo: &RepoPaths,
    k: usize,
    d: SlotDirs,
    lock: fs::File,
    base: Oid,
) -> Result<AgentSlot, GitError> {
    // Not under the in-process write lock: creating a worktree is a full checkout, and
    // agents populate theirs in parallel. Creation touches no shared ref.
    let ensured = ensure(repo, &d, base)?;
    let previous_base = read_state(&d.admin).0;
    let wt = Repository::open(&d.path).ctx(|| format!("open worktree {}", d.path.display()))?;
    Ok(AgentSlot {
        k,
        overflow: d.overflow(),
        name: d.name,
        path: d.path,
        created: ensured.created,
        previous_base,
        repairs: ensured.repairs,
        paths: repo.clone(),
        wt: Some(wt),
        scan: None,
        own_files: Vec::new(),
        _lock: lock,
    })
}

/// [`try_lock`], retried for a few milliseconds: a child process forked by another
/// thread of this process shares our lock file's description until it execs, so a slot
/// just released can look held for an instant. A slot held by another run stays held.
fn try_lock_briefly(path: &Path) -> Result<Option<fs::File>, GitError> {
    for _ in 0..5 {
        if let Some(f) = try_lock(path)? {
            return Ok(Some(f));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    try_lock(path)
}

/// Open (creating) `path` and take an exclusive non-blocking lock on it; `None` when
/// another open file description (another process, or another thread of this one) holds
/// it. The lock is only taken on the file that is at `path` afterwards, so a lock file
/// may be deleted by whoever holds it (the prune does).
pub(crate) fn try_lock(path: &Path) -> Result<Option<fs::File>, GitError> {
    loop {
        let mut file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .ctx(|| format!("open the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => {
                let disk_full = io_disk_full(&e);
                let sentence = format!("failed to lock {}: {e}", path.display());
                return Err(GitError::failed(sentence, disk_full));
            }
        }
        let ours = file.metadata().ok().map(|m| (m.dev(), m.ino()));
        let there = fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
        if ours.is_some() && ours == there {
            // Who holds it, for humans looking at a stuck slot; failure here is harmless.
            let _ = file
                .set_len(0)
                .and_then(|_| writeln!(file, "{}", std::process::id()));
            return Ok(Some(file));
        }
        // Deleted (or replaced) between our open and our lock: lock the new one.
    }
}

/// Remove lock files left in the worktree's admin dir (`index.lock`, `HEAD.lock`, …); git's
/// `locked` marker is not one of them. Only called while holding the slot's lock, so any
/// lock there is stale. Returns how many were removed.
pub(crate) fn clear_stale_locks(admin: &Path) -> Result<usize, GitError> {
    let Ok(entries) = fs::read_dir(admin) else {
        return Ok(0);
    };
    let mut n = 0;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().ends_with(".lock") {
            remove_path(&entry.path())?;
            n += 1;
        }
    }
    Ok(n)
}

/// Remove a file, symlink or directory tree (never following symlinks); absent is fine.
pub(crate) fn remove_path(path: &Path) -> Result<(), GitError> {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(());
    };
    let res = if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match res {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(GitError::Other(format!(
            "failed to remove {}: {e}",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Write `contents` to `path` atomically (a temporary file renamed over it).
fn write_atomic(path: &Path, contents: &str) -> Result<(), GitError> {
    let tmp = path.with_extension("git-ws-tmp");
    fs::write(&tmp, contents)
        .and_then(|_| fs::rename(&tmp, path))
        .ctx(|| format!("write {}", path.display()))
}

/// The slot's recorded base and last use.
fn read_state(admin: &Path) -> (Option<String>, Option<SystemTime>) {
    let Ok(text) = fs::read_to_string(admin.join(STATE)) else {
        return (None, None);
    };
    let mut base = None;
    let mut used = None;
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("base", v)) if Oid::from_str(v.trim()).is_ok() => {
                base = Some(v.trim().to_string())
            }
            Some(("used", v)) => {
                used = v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
            }
            _ => {}
        }
    }
    (base, used)
}

/// Record the base the slot was reset to and that it was used now.
pub(crate) fn write_state(admin: &Path, base: Oid) -> Result<(), GitError> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    write_atomic(&admin.join(STATE), &format!("base {base}\nused {now}\n"))
}

/// When the slot was last used: the state file, else the admin dir's or the worktree's
/// modification time.
fn last_used(d: &SlotDirs) -> Option<SystemTime> {
    read_state(&d.admin).1.or_else(|| {
        [&d.admin, &d.path]
            .iter()
            .filter_map(|p| fs::metadata(p).and_then(|m| m.modified()).ok())
            .max()
    })
}

/// Whether the slot is missing a part, or a creation or removal did not finish.
fn half_made(d: &SlotDirs) -> bool {
    d.admin.join(CREATING).exists()
        || !d.admin.join("HEAD").is_file()
        || !d.path.join(".git").is_file()
}

pub(crate) struct Ensured {
    pub created: bool,
    pub repairs: Vec<String>,
}

/// Make sure the slot is a working linked worktree of this repository: reuse it (clearing
/// stale locks and fixing its links), finish a half-made one in place, or create it
/// detached at `base`. The caller holds the slot's lock.
pub(crate) fn ensure(repo: &RepoPaths, d: &SlotDirs, base: Oid) -> Result<Ensured, GitError> {
    let mut repairs = Vec::new();
    ensure_pool_dir(repo)?;
    repairs.extend(migrate_legacy(repo, d)?);
    repairs.extend(follow_pool_dir(repo, d)?);
    if !half_made(d) {
        let n = clear_stale_locks(&d.admin)?;
        if n > 0 {
            repairs.push(format!("removed {n} stale lock file(s) of {}", d.slot));
        }
        if repair_links(repo, d, &mut repairs)? {
            return Ok(Ensured {
                created: false,
                repairs,
            });
        }
    }
    let existed = d.path.is_dir();
    build(repo, d, base)?;
    if existed {
        repairs.push(format!(
            "repaired the broken worktree {} (checked out again at {})",
            d.slot,
            short(base)
        ));
    }
    Ok(Ensured {
        created: !existed,
        repairs,
    })
}

/// Make sure the admin dir is locked, and the two-way link between the worktree and its
/// admin dir is right; true when the worktree then opens as a linked worktree of this
/// repository.
fn repair_links(
    repo: &RepoPaths,
    d: &SlotDirs,
    repairs: &mut Vec<String>,
) -> Result<bool, GitError> {
    let admin_c = canon(&d.admin);
    let path_c = canon(&d.path);
    let locked = d.admin.join("locked");
    if !locked.is_file() {
        fs::write(&locked, format!("{LOCK_REASON}\n"))
            .ctx(|| format!("write {}", locked.display()))?;
    }
    let dotgit = d.path.join(".git");
    let file_ok = fs::read_to_string(&dotgit)
        .ok()
        .and_then(|s| s.strip_prefix("gitdir:").map(|r| r.trim().to_string()))
        .is_some_and(|target| canon(&d.path.join(target)) == admin_c);
    if !file_ok {
        remove_path(&dotgit)?;
        fs::write(&dotgit, format!("gitdir: {}\n", admin_c.display()))
            .ctx(|| format!("write {}", dotgit.display()))?;
        repairs.push(format!("rewrote the .git file of {}", d.slot));
    }
    let back = d.admin.join("gitdir");
    let want_back = path_c.join(".git");
    let back_ok = fs::read_to_string(&back).is_ok_and(|s| Path::new(s.trim()) == want_back);
    if !back_ok {
        fs::write(&back, format!("{}\n", want_back.display()))
            .ctx(|| format!("write {}", back.display()))?;
    }
    let commondir = d.admin.join("commondir");
    if !commondir.is_file() {
        fs::write(&commondir, "../..\n").ctx(|| format!("write {}", commondir.display()))?;
    }
    Ok(match Repository::open(&d.path) {
        Ok(wt) => wt.is_worktree() && canon(wt.commondir()) == canon(&repo.common_dir),
        Err(_) => false,
    })
}

/// Create the slot's worktree, or finish a half-made one in place, detached at `base`:
/// the admin files by hand (the `git-ws-creating` marker first, `locked` next, so neither a
/// crash nor `git worktree prune` can leave an unmarked half), then a forced checkout of
/// the base through git2, which writes the files and the index. Files already in the
/// directory are reused where they match, and ignored ones (build caches) are kept.
pub(crate) fn build(repo: &RepoPaths, d: &SlotDirs, base: Oid) -> Result<(), GitError> {
    let worktrees = repo.common_dir.join("worktrees");
    fs::create_dir_all(&worktrees).ctx(|| format!("create {}", worktrees.display()))?;
    ensure_pool_dir(repo)?;
    let marker = d.admin.join(CREATING);
    if !marker.exists() {
        // Whatever is in the admin dir belongs to a broken worktree: start it afresh.
        remove_path(&d.admin)?;
        fs::create_dir(&d.admin).ctx(|| format!("create {}", d.admin.display()))?;
        fs::write(&marker, "").ctx(|| format!("write {}", marker.display()))?;
    }
    clear_stale_locks(&d.admin)?;
    let admin_c = canon(&d.admin);
    let write = |name: &str, text: String| {
        let p = d.admin.join(name);
        fs::write(&p, text).ctx(|| format!("write {}", p.display()))
    };
    write("locked", format!("{LOCK_REASON}\n"))?;
    write("commondir", "../..\n".to_string())?;
    // A worktree directory that is a file or a symlink is not ours to reuse.
    if fs::symlink_metadata(&d.path).is_ok_and(|m| !m.is_dir()) {
        remove_path(&d.path)?;
    }
    fs::create_dir_all(&d.path).ctx(|| format!("create {}", d.path.display()))?;
    write(
        "gitdir",
        format!("{}\n", canon(&d.path).join(".git").display()),
    )?;
    write("HEAD", format!("{base}\n"))?;
    let dotgit = d.path.join(".git");
    remove_path(&dotgit)?;
    fs::write(&dotgit, format!("gitdir: {}\n", admin_c.display()))
        .ctx(|| format!("write {}", dotgit.display()))?;

    let what = || {
        format!(
            "check out {} in the new worktree {}",
            short(base),
            d.path.display()
        )
    };
    let wt = Repository::open(&d.path).ctx(what)?;
    let tree = wt.find_commit(base).and_then(|c| c.tree()).ctx(what)?;
    let mut co = CheckoutBuilder::new();
    co.force().remove_untracked(true).remove_ignored(false);
    retry(what, || wt.checkout_tree(tree.as_object(), Some(&mut co)))?;
    write_state(&d.admin, base)?;
    remove_path(&marker)
}

/// Remove a slot's worktree and admin dir (the caller holds its lock). The marker goes in
/// first, so a crash halfway leaves a slot marked half-made, which the next claim rebuilds
/// and the next sweep removes.
pub(crate) fn remove_files(repo: &RepoPaths, d: &SlotDirs) -> Result<(), GitError> {
    if d.admin.is_dir() {
        fs::write(d.admin.join(CREATING), "")
            .ctx(|| format!("mark {} for removal", d.admin.display()))?;
    }
    if let Some(old) = elsewhere(d) {
        remove_path(&old)?;
    }
    remove_path(&d.path)?;
    remove_path(&d.legacy)?;
    remove_path(&d.admin)?;
    // Tidy git's directories when they are left empty (ignore failures: not empty).
    let _ = fs::remove_dir(repo.common_dir.join("worktrees"));
    Ok(())
}

impl AgentSlot {
    /// The slot's files.
    pub(crate) fn dirs(&self) -> SlotDirs {
        SlotDirs::new(
            &self.paths,
            self.path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default(),
        )
    }

    /// Remove the worktree (directory and git's admin dir) and let go of the slot;
    /// branches stay.
    pub fn remove(self) -> Result<(), GitError> {
        let d = self.dirs();
        let AgentSlot {
            paths, wt, _lock, ..
        } = self;
        drop(wt);
        remove_files(&paths, &d)?;
        // Holding the lock: the lock file may go too (see `try_lock`).
        let _ = fs::remove_file(&d.lock);
        drop(_lock);
        Ok(())
    }
}

/// Every slot name present on disk: worktree directories in the pool and in the old place
/// under `<common>/ws/`, git admin dirs named `ws-agent-*` and lock files.
fn slot_names(repo: &RepoPaths) -> Vec<String> {
    let mut names = Vec::new();
    let list = |dir: &Path, f: &dyn Fn(&str) -> Option<String>, out: &mut Vec<String>| {
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd.flatten() {
                if let Some(n) = e.file_name().to_str().and_then(f) {
                    out.push(n);
                }
            }
        }
    };
    let plain = |n: &str| parse_slot(n).map(|_| n.to_string());
    list(&repo.pool_dir(), &plain, &mut names);
    list(&repo.ws_dir(), &plain, &mut names);
    list(
        &repo.common_dir.join("worktrees"),
        &|n: &str| n.strip_prefix("ws-").and_then(plain),
        &mut names,
    );
    list(
        &locks_dir(repo),
        &|n: &str| n.strip_suffix(".lock").and_then(plain),
        &mut names,
    );
    names.sort_by_key(|n| parse_slot(n));
    names.dedup();
    names
}

/// Days, rounded down, for messages.
fn days(d: Duration) -> u64 {
    d.as_secs() / 86_400
}

pub(crate) fn sweep(repo: &RepoPaths, policy: &PoolPolicy) -> PoolSweep {
    let mut out = PoolSweep::default();
    let now = SystemTime::now();
    for slot in slot_names(repo) {
        let d = SlotDirs::new(repo, &slot);
        let Some(lock) = lock_idle_slot(&d, &slot, &mut out) else {
            continue;
        };
        for moved in [migrate_legacy(repo, &d), follow_pool_dir(repo, &d)] {
            match moved {
                Ok(Some(line)) => out.repaired.push(line),
                Ok(None) => {}
                Err(e) => out.failures.push(e.to_string()),
            }
        }
        let exists = d.path.exists() || d.admin.exists();
        let idle = last_used(&d).and_then(|t| now.duration_since(t).ok());
        let why = if !exists {
            None
        } else if d.overflow() {
            Some("an overflow worktree of an earlier concurrent run".to_string())
        } else if half_made(&d) {
            Some("half-made (a crash during its creation or removal)".to_string())
        } else {
            match (policy.expiry, idle) {
                (Some(limit), Some(idle)) if idle > limit => Some(format!(
                    "idle {} days, longer than ws.worktreeExpiry",
                    days(idle)
                )),
                _ => None,
            }
        };
        match why {
            Some(why) => match remove_files(repo, &d) {
                Ok(()) => {
                    out.removed
                        .push(format!("removed agent worktree {slot}: {why}"));
                    let _ = fs::remove_file(&d.lock);
                }
                Err(e) => out.failures.push(e.to_string()),
            },
            None if !exists => {
                // A lock file without a worktree.
                let _ = fs::remove_file(&d.lock);
            }
            None => match detach_if_attached(repo, &d, &write_lock()) {
                Ok(Some(line)) => out.repaired.push(line),
                Ok(None) => {}
                Err(e) => out.failures.push(e.to_string()),
            },
        }
        drop(lock);
    }
    match delete_legacy_tmp_branches(repo) {
        Ok(n) => out.note_legacy_branches(n),
        Err(e) => out.failures.push(e.to_string()),
    }
    out
}

/// Take an idle slot's lock; a busy slot (or one whose lock cannot be taken) is noted in
/// `out` and skipped.
fn lock_idle_slot(d: &SlotDirs, slot: &str, out: &mut PoolSweep) -> Option<fs::File> {
    match try_lock(&d.lock) {
        Ok(Some(l)) => Some(l),
        Ok(None) => {
            out.busy.push(slot.to_string());
            None
        }
        Err(e) => {
            out.failures.push(e.to_string());
            None
        }
    }
}

impl PoolSweep {
    fn note_legacy_branches(&mut self, n: usize) {
        if n > 0 {
            self.repaired.push(format!(
                "deleted {n} temporary git-ws-tmp/* branch(es) left by an older git-ws"
            ));
        }
    }
}

pub(crate) fn prune(repo: &RepoPaths) -> PoolSweep {
    let mut out = PoolSweep::default();
    for slot in slot_names(repo) {
        let d = SlotDirs::new(repo, &slot);
        let Some(lock) = lock_idle_slot(&d, &slot, &mut out) else {
            continue;
        };
        let existed = d.path.exists() || d.admin.exists() || d.legacy.exists();
        match remove_files(repo, &d) {
            Ok(()) => {
                if existed {
                    out.removed.push(format!(
                        "removed agent worktree {slot} ({})",
                        d.path.display()
                    ));
                }
                let _ = fs::remove_file(&d.lock);
            }
            Err(e) => out.failures.push(e.to_string()),
        }
        drop(lock);
    }
    if out.busy.is_empty() {
        let _ = fs::remove_dir(locks_dir(repo));
        let _ = fs::remove_dir(repo.ws_dir());
        remove_empty_pool(repo);
    }
    if let Ok(n) = delete_legacy_tmp_branches(repo) {
        out.note_legacy_branches(n);
    }
    out
}

/// Remove the pool directory when nothing but its owner file is left in it.
fn remove_empty_pool(repo: &RepoPaths) {
    let pool = repo.pool_dir();
    let only_owner =
        fs::read_dir(&pool).is_ok_and(|rd| rd.flatten().all(|e| e.file_name() == POOL_OWNER_FILE));
    if only_owner {
        let _ = fs::remove_file(pool.join(POOL_OWNER_FILE));
        let _ = fs::remove_dir(&pool);
    }
}

/// A crashed run leaves its slots on its workstreams' branches, and a branch can be checked
/// out in one worktree only: detach an idle slot's HEAD at the commit it is on (files,
/// index and caches stay exactly as they are). The caller holds the slot's lock and the
/// in-process [`write_lock`].
pub(crate) fn detach_if_attached(
    repo: &RepoPaths,
    d: &SlotDirs,
    _write_lock: &std::sync::MutexGuard<'static, ()>,
) -> Result<Option<String>, GitError> {
    let head = fs::read_to_string(d.admin.join("HEAD")).unwrap_or_default();
    let Some(target) = head.trim().strip_prefix("ref:").map(str::trim) else {
        return Ok(None);
    };
    let target = target.to_string();
    let wt = Repository::open(&d.path).ctx(|| format!("open worktree {}", d.path.display()))?;
    let at = wt.refname_to_id(&target).ok();
    clear_stale_locks(&d.admin)?;
    match at {
        Some(commit) => retry(
            || format!("detach HEAD in worktree {}", d.path.display()),
            || wt.set_head_detached(commit),
        )?,
        // On a branch that no longer exists: point HEAD at the recorded base, or the main
        // HEAD; the next prepare puts the files right.
        None => {
            let fallback = read_state(&d.admin)
                .0
                .and_then(|b| Oid::from_str(&b).ok())
                .or_else(|| open_main(repo).ok()?.head().ok()?.target());
            if let Some(c) = fallback {
                retry(
                    || format!("detach HEAD in worktree {}", d.path.display()),
                    || wt.set_head_detached(c),
                )?;
            }
        }
    }
    Ok(Some(format!(
        "released {} from agent worktree {} (left there by a run that did not finish)",
        target.strip_prefix("refs/heads/").unwrap_or(&target),
        d.slot
    )))
}

/// Older versions of git-ws created worktrees through a temporary branch `git-ws-tmp/…`;
/// a crash could leave one behind. Delete those no worktree has checked out.
fn delete_legacy_tmp_branches(repo: &RepoPaths) -> Result<usize, GitError> {
    let has_loose = repo.common_dir.join("refs/heads/git-ws-tmp").exists();
    let packed = fs::read_to_string(repo.common_dir.join("packed-refs"))
        .is_ok_and(|s| s.contains("refs/heads/git-ws-tmp/"));
    if !has_loose && !packed {
        return Ok(0);
    }
    let main = open_main(repo)?;
    let names: Vec<String> = main
        .branches(Some(BranchType::Local))
        .ctx(|| "list branches".to_string())?
        .filter_map(Result::ok)
        .filter_map(|(b, _)| b.name().ok().flatten().map(str::to_string))
        .filter(|n| n.starts_with("git-ws-tmp/"))
        .collect();
    let _guard = write_lock();
    let mut n = 0;
    for name in names {
        if let Ok(mut b) = main.find_branch(&name, BranchType::Local) {
            // Refused while checked out somewhere: then it stays, and so does its worktree.
            if b.delete().is_ok() {
                n += 1;
            }
        }
    }
    Ok(n)
}
