//! Process supervision: runs one command in its own process group with its output streamed
//! to a log file, enforces the time limit and cancellation (SIGTERM to the group, a grace
//! period, then SIGKILL), and sweeps any process the command left behind in its group.
//! Every command carries a unique tag in its environment, so what leaves the group is found
//! too; the live commands are kept (a second Ctrl-C kills them all at once) and written to a
//! pgid file each, so a resume can kill what a coordinator killed by SIGKILL left behind.
//!
//! Nothing outlives the tool, even when it is killed with SIGKILL:
//! - the command itself gets SIGKILL from the kernel when the thread that started it dies
//!   (`PR_SET_PDEATHSIG`; commands are started on the runtime's worker threads or the main
//!   thread, which live as long as the tool runs);
//! - what it started (grandchildren, which the parent-death signal does not reach) is
//!   recorded in the repository's process registry ([`crate::layout::Layout::procs_dir`]):
//!   one file per live command with its group, its tag, the leader's start time and the
//!   recording tool's pid and start time. Every `git ws-run` and `git ws-merge` sweeps the
//!   registry when it starts ([`reap_abandoned`]) — before it claims any worktree — and
//!   kills the commands of tools that are gone, after checking that each process is still
//!   the one started (its tag, or the leader's start time from `/proc/<pid>/stat`).

use crate::git::remote::GIT_ENV_TO_CLEAR;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// argv; the first element is the program.
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    /// Extra environment, added on top of the inherited environment less what
    /// [`crate::secrets::scrub`] removes (git-ws's own variables, the database password).
    pub env: BTreeMap<String, String>,
    /// Written to stdin, which is then closed; `None` = stdin is /dev/null.
    pub stdin: Option<String>,
    /// Append combined stdout+stderr here.
    pub log: PathBuf,
    pub timeout: Duration,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Holds the command's process group id while it may be alive, so that a coordinator
    /// killed with SIGKILL leaves a trace [`reap_orphans`] can act on. Removed at the end.
    pub pgid_file: Option<PathBuf>,
    /// The repository's process registry ([`crate::layout::Layout::procs_dir`]): while the
    /// command may be alive a file there says whose it is, so that the next `git ws-run` or
    /// `git ws-merge` kills it if this tool died ([`reap_abandoned`]).
    pub procs_dir: Option<PathBuf>,
    /// The sandbox it runs in ([`crate::sandbox`]); `None`: unconfined, no policy line.
    pub sandbox: Option<crate::sandbox::Sandbox>,
}

/// How a supervised command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Exited (code) or was killed by a signal it did not get from us (code None).
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// We stopped it after the time limit.
    TimedOut,
    /// We stopped it because the run was cancelled.
    Cancelled,
    /// We stopped it because its [`Watch`] said so (the reason), like a timeout.
    Stopped(String),
    /// It could not be started.
    SpawnFailed(String),
}

impl Ending {
    pub fn success(&self) -> bool {
        matches!(self, Ending::Exited { code: Some(0), .. })
    }

    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Ending::Exited { code, .. } => *code,
            _ => None,
        }
    }
}

/// Set in every command's environment to a value unique to that command. Everything the
/// command starts inherits it, also what leaves the process group (`setsid`, double fork),
/// so those processes can still be found and killed (on Linux, through `/proc`) unless
/// they scrub their environment.
pub const TAG_VAR: &str = "GIT_WS_COMMAND";

/// Commands running now in this process: process group id → tag.
static LIVE: Mutex<BTreeMap<i32, String>> = Mutex::new(BTreeMap::new());

fn live() -> std::sync::MutexGuard<'static, BTreeMap<i32, String>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// SIGKILL every command this process is running — their process groups and whatever
/// carries their tag — at once (the second Ctrl-C). Returns how many commands.
pub fn kill_all_groups() -> usize {
    let live = live();
    for (&pg, tag) in live.iter() {
        killpg(pg, libc::SIGKILL);
        kill_tagged(tag);
    }
    live.len()
}

fn new_tag() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// How often a [`Watch`] is polled while its command runs.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(200);

/// Looks at a running command from outside (what it spent, say), every [`WATCH_INTERVAL`]:
/// `Some(reason)` stops it like a timeout ([`Ending::Stopped`]).
pub trait Watch: Send {
    fn poll(&mut self) -> Option<String>;
}

/// Run `spec` to completion, timeout or cancellation. Never panics; spawn failures are an
/// [`Ending::SpawnFailed`].
pub async fn run(spec: &Spec, cancel: watch::Receiver<bool>) -> Ending {
    run_watched(spec, cancel, None).await
}

/// [`run`], with `watcher` polled while the command runs. What it writes reaches its log
/// through a pipe, capped at every instant to [`crate::logcap::limit`] (`ws.maxLogBytes`):
/// the log never holds more than the cap and a note, however much the command prints. The
/// log is then stripped of known secrets ([`crate::secrets::redact_log`]); the environment
/// is built by [`crate::secrets::scrub`].
pub async fn run_watched(
    spec: &Spec,
    cancel: watch::Receiver<bool>,
    watcher: Option<&mut dyn Watch>,
) -> Ending {
    let from = std::fs::metadata(&spec.log).map_or(0, |m| m.len());
    let mut streaming = None;
    let ending = run_uncapped(spec, cancel, watcher, &mut streaming).await;
    if let Some(s) = streaming {
        s.end(LOG_LINGER).await;
    }
    crate::secrets::redact_log(&spec.log, from);
    ending
}

/// After a command ended, how long its log may still take in output left in the pipe.
const LOG_LINGER: Duration = Duration::from_secs(2);

async fn run_uncapped(
    spec: &Spec,
    mut cancel: watch::Receiver<bool>,
    mut watcher: Option<&mut dyn Watch>,
    streaming: &mut Option<crate::logcap::Streaming>,
) -> Ending {
    if spec.argv.is_empty() {
        return Ending::SpawnFailed("empty command".into());
    }
    // Interrupted before it started: do not start it.
    if *cancel.borrow() {
        return Ending::Cancelled;
    }
    // The policy line first: the capped writer appends after what the log holds.
    crate::sandbox::write_policy_line(spec.sandbox.as_ref(), &spec.log);
    let log = match crate::logcap::stream(&spec.log, crate::logcap::limit()) {
        Ok((s, w)) => {
            *streaming = Some(s);
            w
        }
        Err(e) => {
            return Ending::SpawnFailed(format!(
                "failed to open log file {}: {e}",
                spec.log.display()
            ))
        }
    };
    let log2 = match log.try_clone() {
        Ok(f) => f,
        Err(e) => return Ending::SpawnFailed(format!("failed to open log file: {e}")),
    };
    let argv = crate::sandbox::argv(spec.sandbox.as_ref(), &spec.argv);
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .current_dir(&spec.cwd)
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .process_group(0);
    for k in GIT_ENV_TO_CLEAR {
        cmd.env_remove(k);
    }
    crate::secrets::scrub(cmd.as_std_mut());
    if let Err(e) = crate::sandbox::apply(&mut cmd, spec.sandbox.as_ref()) {
        return Ending::SpawnFailed(e);
    }
    cmd.envs(&spec.env);
    let tag = new_tag();
    cmd.env(TAG_VAR, &tag);
    let parent = std::process::id() as i32;
    // SAFETY: between fork and exec only async-signal-safe calls (prctl, getppid, raise).
    unsafe {
        cmd.pre_exec(move || {
            // Dies with the thread that forked it: a runtime worker or the main thread.
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            // The tool died before the line above: do not run orphaned.
            if libc::getppid() != parent {
                libc::raise(libc::SIGKILL);
            }
            Ok(())
        });
    }
    // Recorded before the spawn (by its tag), so a SIGKILL of this tool at any instant
    // leaves a trace; completed with the group once it is known.
    let registered = spec
        .procs_dir
        .as_deref()
        .and_then(|d| Registered::new(d, &tag, &spec.cwd));
    let spawned = cmd.spawn();
    // Our copies of the pipe's write end go: the log sees its end when the command's do.
    drop(cmd);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return Ending::SpawnFailed(spawn_failed(&spec.argv[0], &e));
        }
    };
    let pgid = child.id().map(|p| p as i32);
    if let (Some(r), Some(pg)) = (&registered, pgid) {
        r.set_group(pg);
    }
    let _tracked = pgid.map(|pg| Tracked::new(pg, tag, spec.pgid_file.clone(), registered));
    if let (Some(input), Some(mut stdin)) = (spec.stdin.clone(), child.stdin.take()) {
        // Feed stdin concurrently so a child that never reads cannot block us.
        tokio::spawn(async move {
            let _ = stdin.write_all(input.as_bytes()).await;
            let _ = stdin.shutdown().await;
        });
    }
    if *cancel.borrow() {
        return stop(&mut child, pgid, spec.grace, Ending::Cancelled).await;
    }
    let ending = tokio::select! {
        status = child.wait() => match status {
            Ok(s) => ending_of(s),
            Err(e) => Ending::SpawnFailed(format!("failed to wait for `{}`: {e}", spec.argv[0])),
        },
        _ = tokio::time::sleep(spec.timeout) => {
            return stop(&mut child, pgid, spec.grace, Ending::TimedOut).await;
        }
        _ = wait_cancel(&mut cancel) => {
            return stop(&mut child, pgid, spec.grace, Ending::Cancelled).await;
        }
        reason = poll_watch(&mut watcher) => {
            return stop(&mut child, pgid, spec.grace, Ending::Stopped(reason)).await;
        }
    };
    // The command is gone; anything it left running in its group goes too.
    if let Some(pg) = pgid {
        killpg(pg, libc::SIGKILL);
    }
    ending
}

/// A running command: registered for [`kill_all_groups`] and written to the pgid file while
/// it may be alive. When dropped (its group was killed or swept), whatever still carries its
/// tag — processes that left the group — is killed, and both are undone.
struct Tracked {
    pgid: i32,
    tag: String,
    file: Option<PathBuf>,
    /// Its entry in the registry, removed last.
    _registered: Option<Registered>,
}

impl Tracked {
    fn new(pgid: i32, tag: String, file: Option<PathBuf>, reg: Option<Registered>) -> Tracked {
        live().insert(pgid, tag.clone());
        if let Some(f) = &file {
            let _ = std::fs::write(f, format!("{pgid} {tag}\n"));
        }
        Tracked {
            pgid,
            tag,
            file,
            _registered: reg,
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        kill_tagged(&self.tag);
        live().remove(&self.pgid);
        if let Some(f) = &self.file {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// A command's file in the process registry: `<tag>.pgid`, lines `owner <pid> <start>`,
/// `tag <tag>`, `cwd <dir>`, then `group <pgid> <leader start>` once started. Written
/// atomically (a temporary file renamed), removed when dropped.
struct Registered {
    path: PathBuf,
    text: String,
}

impl Registered {
    fn new(dir: &Path, tag: &str, cwd: &Path) -> Option<Registered> {
        let me = std::process::id() as i32;
        let text = format!(
            "owner {me} {}\ntag {tag}\ncwd {}\n",
            start_time(me)?,
            cwd.display()
        );
        let r = Registered {
            path: dir.join(format!("{tag}.pgid")),
            text,
        };
        // The directory goes when its last file does (see Drop): another tool may remove
        // it between our create and our write, so try again.
        (0..5)
            .any(|_| std::fs::create_dir_all(dir).is_ok() && r.write(&r.text))
            .then_some(r)
    }

    fn set_group(&self, pgid: i32) {
        if let Some(start) = start_time(pgid) {
            self.write(&format!("{}group {pgid} {start}\n", self.text));
        }
    }

    fn write(&self, text: &str) -> bool {
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, &self.path))
            .is_ok()
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        // Only when empty: no trace is left behind once nothing runs.
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// A process's start time (clock ticks since boot, field 22 of `/proc/<pid>/stat`): with
/// the pid, it names one process for good. `None` when there is no such process (or it is
/// a zombie).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    // After the comm: state (field 3) … starttime (field 22).
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// The pids whose process group is `pgid` and that are not zombies.
fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| live_in_group(&stat, pgid))
        })
        .collect()
}

fn has_tag(pid: i32, tag: &str) -> bool {
    let marker = format!("{TAG_VAR}={tag}");
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|&b| b == 0).any(|kv| kv == marker.as_bytes()))
}

/// Kill the commands in the process registry `dir` whose tool is gone (killed, say, by
/// SIGKILL): every process carrying the command's tag, and its process group if the group
/// is still the one started: its leader has the recorded start time, or the leader is gone
/// and members remain (a group id is not handed out again while the group has members).
/// Waits (up to a few seconds) until they are gone, so nothing runs beside what the caller
/// starts next. Files of live tools are left alone. Returns a line per command found alive;
/// `Err(sentence)` when some survived SIGKILL (a process stuck in the kernel, say).
pub fn reap_abandoned(dir: &Path) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(found);
    };
    let mut places = Vec::new();
    let mut groups = Vec::new();
    let mut tags = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let ext = path.extension().and_then(|e| e.to_str());
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
                .map(|v| v.split_whitespace().collect::<Vec<_>>())
        };
        let owner_alive = field("owner").is_some_and(|o| {
            let pid = o.first().and_then(|p| p.parse::<i32>().ok());
            let start = o.get(1).and_then(|s| s.parse::<u64>().ok());
            pid.is_some() && pid.and_then(start_time) == start
        });
        if owner_alive {
            continue;
        }
        if ext == Some("tmp") {
            // A half-written entry of a dead tool: its complete twin (if any) says the rest.
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if ext != Some("pgid") {
            continue;
        }
        let tag = field("tag").and_then(|t| t.first().map(|t| t.to_string()));
        let mut n = tag.as_deref().map_or(0, kill_tagged);
        if let Some(g) = field("group") {
            let pgid = g.first().and_then(|p| p.parse::<i32>().ok());
            let start = g.get(1).and_then(|s| s.parse::<u64>().ok());
            if let Some(pgid) = pgid.filter(|&p| p > 1) {
                let members = group_members(pgid);
                let leader = start_time(pgid);
                let same = start.is_some() && leader == start
                    || leader.is_none() && !members.is_empty()
                    || tag
                        .as_deref()
                        .is_some_and(|t| members.iter().any(|&m| has_tag(m, t)));
                if same && !members.is_empty() {
                    killpg(pgid, libc::SIGKILL);
                    n = n.max(members.len());
                    groups.push(pgid);
                }
            }
        }
        if let Some(t) = tag.clone() {
            tags.push(t);
        }
        if n > 0 {
            let cwd = field("cwd").map(|c| c.join(" ")).unwrap_or_default();
            places.push(cwd.clone());
            found.push(format!(
                "killed {n} process(es) left running in {cwd} by a git-ws that was killed"
            ));
        }
        let _ = std::fs::remove_file(&path);
    }
    let _ = std::fs::remove_dir(dir);
    // SIGKILL is not instant: wait until they are gone before anything runs beside them.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline
        && (groups.iter().any(|&g| group_alive(g)) || tags.iter().any(|t| kill_tagged(t) > 0))
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    if groups.iter().any(|&g| group_alive(g)) || tags.iter().any(|t| kill_tagged(t) > 0) {
        return Err(format!(
            "processes a killed git-ws left running in {} are still there 5 s after SIGKILL; nothing was started beside them: try again once they are gone",
            places.join(", ")
        ));
    }
    Ok(found)
}

/// Poll the watcher until it says stop; never returns without one.
async fn poll_watch(w: &mut Option<&mut dyn Watch>) -> String {
    let Some(w) = w else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        if let Some(reason) = w.poll() {
            return reason;
        }
    }
}

async fn wait_cancel(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow() {
            return;
        }
        if rx.changed().await.is_err() {
            // Sender gone: never cancelled.
            std::future::pending::<()>().await;
        }
    }
}

async fn stop(
    child: &mut tokio::process::Child,
    pgid: Option<i32>,
    grace: Duration,
    why: Ending,
) -> Ending {
    if let Some(pg) = pgid {
        killpg(pg, libc::SIGTERM);
        // Give the group the grace period to exit, but end as soon as the leader is gone
        // and no member remains.
        let deadline = tokio::time::Instant::now() + grace;
        let _ = tokio::time::timeout_at(deadline, child.wait()).await;
        while tokio::time::Instant::now() < deadline && group_alive(pg) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        killpg(pg, libc::SIGKILL);
    } else {
        let _ = child.start_kill();
    }
    let _ = child.wait().await;
    why
}

fn ending_of(s: ExitStatus) -> Ending {
    use std::os::unix::process::ExitStatusExt;
    Ending::Exited {
        code: s.code(),
        signal: s.signal(),
    }
}

fn killpg(pgid: i32, sig: i32) {
    // SAFETY: killpg has no memory-safety preconditions; ESRCH (no such group) is fine.
    unsafe {
        libc::killpg(pgid, sig);
    }
}

/// Whether the group still has a member that is not a zombie. Zombies (orphans waiting for
/// init to reap them) count as members for `kill(0)`, which would make every timeout wait
/// out the whole grace period; on Linux `/proc` tells them apart.
fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    if unsafe { libc::killpg(pgid, 0) } != 0 {
        return false;
    }
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return true;
    };
    procs
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .any(|e| {
            std::fs::read_to_string(e.path().join("stat"))
                .is_ok_and(|stat| live_in_group(&stat, pgid))
        })
}

/// Whether the `/proc/<pid>/stat` text `stat` is of a live (not zombie) member of process
/// group `pgid`. "pid (comm) S ppid pgrp …": comm may contain spaces, so split after the
/// last ')'.
fn live_in_group(stat: &str, pgid: i32) -> bool {
    let mut fields = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace();
    let state = fields.next();
    let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
    pgrp == Some(pgid) && state != Some("Z")
}

/// Kill what a dead coordinator left running: for every `*.pgid` file in `dir` (written by
/// [`run`], holding the process group and the tag), every process carrying that command's
/// tag gets SIGKILL — whether or not it is still in the group — and the file is removed.
/// Returns a line per command found alive.
pub fn reap_orphans(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("pgid") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(tag) = text.split_whitespace().nth(1) {
            let n = kill_tagged(tag);
            if n > 0 {
                let name = path.file_stem().unwrap_or_default().to_string_lossy();
                found.push(format!(
                    "killed {n} process(es) of {name} left running by the interrupted coordinator"
                ));
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    found
}

/// SIGKILL every live process whose environment has `TAG_VAR=tag`; returns how many. Linux
/// (`/proc`); elsewhere finds nothing.
fn kill_tagged(tag: &str) -> usize {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let marker = format!("{TAG_VAR}={tag}");
    let mut n = 0;
    for pid in procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        let tagged = std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|&b| b == 0).any(|kv| kv == marker.as_bytes()));
        // A zombie is already dead (and counted when it was killed).
        if tagged && start_time(pid).is_some() {
            // SAFETY: kill has no memory-safety preconditions.
            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                n += 1;
            }
        }
    }
    n
}

/// The last `max_lines` lines (at most `max_bytes` bytes) of a log file, lossily decoded.
pub fn tail(path: &Path, max_lines: usize, max_bytes: u64) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(max_bytes);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let mut text: &str = &text;
    if start > 0 {
        // Drop the partial first line.
        if let Some(i) = text.find('\n') {
            text = &text[i + 1..];
        }
    }
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !crate::sandbox::is_policy_line(l))
        .collect();
    let from = lines.len().saturating_sub(max_lines);
    lines[from..].join("\n")
}

/// Append a header line to a log file (best effort).
pub fn log_note(path: &Path, note: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{note}");
    }
}

/// Why a command could not start, with what to do when the program is missing (the usual
/// case: a coding agent's CLI that is not installed).
fn spawn_failed(program: &str, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        format!(
            "failed to start `{program}`: {e}: `{program}` is not installed or not on PATH; install it, or give the command's full path (for a prompt workstream: another --agent, or --agent-cmd CMD, git config ws.agent or ws.agentCommand)"
        )
    } else {
        format!("failed to start `{program}`: {e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_says_what_to_do() {
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        let m = spawn_failed("claude", &missing);
        assert!(m.starts_with("failed to start `claude`: "), "{m}");
        assert!(
            m.contains("`claude` is not installed or not on PATH"),
            "{m}"
        );
        assert!(m.contains("--agent-cmd"), "{m}");
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(!spawn_failed("x", &denied).contains("not installed"));
    }

    #[test]
    fn a_group_member_is_read_past_a_command_name_with_spaces_and_zombies_are_not_live() {
        let stat = |state: &str| format!("4242 (sh -c x) y) {state} 1 777 777 0 -1");
        assert!(live_in_group(&stat("S"), 777));
        assert!(!live_in_group(&stat("S"), 778));
        assert!(!live_in_group(&stat("Z"), 777));
        assert!(!live_in_group("garbage", 777));
    }

    fn spec(dir: &Path, script: &str, timeout_ms: u64) -> Spec {
        Spec {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            cwd: dir.to_path_buf(),
            env: BTreeMap::from([("WS_X".to_string(), "hello".to_string())]),
            stdin: None,
            log: dir.join("out.log"),
            timeout: Duration::from_millis(timeout_ms),
            grace: Duration::from_millis(300),
            pgid_file: Some(dir.join("cmd.pgid")),
            procs_dir: Some(dir.join("procs")),
            sandbox: None,
        }
    }

    /// Alive and not a zombie waiting for init to reap it.
    fn alive(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
            Err(_) => false,
        }
    }

    fn read_pid(path: &Path) -> i32 {
        std::fs::read_to_string(path)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn no_cancel() -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(false);
        std::mem::forget(tx);
        rx
    }

    #[tokio::test]
    async fn exit_code_env_and_log() {
        let d = tempfile::tempdir().unwrap();
        let s = spec(d.path(), "echo out $WS_X; echo err >&2; exit 3", 10_000);
        let e = run(&s, no_cancel()).await;
        assert_eq!(e.exit_code(), Some(3));
        let log = std::fs::read_to_string(d.path().join("out.log")).unwrap();
        assert!(log.contains("out hello") && log.contains("err"), "{log}");
    }

    #[tokio::test]
    async fn stdin_is_fed_then_closed() {
        let d = tempfile::tempdir().unwrap();
        let mut s = spec(d.path(), "cat", 10_000);
        s.stdin = Some("the prompt\n".into());
        assert!(run(&s, no_cancel()).await.success());
        assert_eq!(tail(&s.log, 10, 1000), "the prompt");
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let d = tempfile::tempdir().unwrap();
        let pidfile = d.path().join("bg.pid");
        let script = format!(
            "sleep 30 & echo $! > '{}'; trap '' TERM; sleep 30",
            pidfile.display()
        );
        let s = spec(d.path(), &script, 300);
        assert_eq!(run(&s, no_cancel()).await, Ending::TimedOut);
        let pid = read_pid(&pidfile);
        assert!(!alive(pid), "background grandchild {pid} survived");
    }

    #[tokio::test]
    async fn leftover_background_process_is_swept_after_exit() {
        let d = tempfile::tempdir().unwrap();
        let pidfile = d.path().join("bg.pid");
        let script = format!("sleep 30 & echo $! > '{}'; exit 0", pidfile.display());
        let s = spec(d.path(), &script, 10_000);
        assert!(run(&s, no_cancel()).await.success());
        let pid = read_pid(&pidfile);
        std::thread::sleep(Duration::from_millis(50));
        assert!(!alive(pid), "leftover {pid} survived");
    }

    #[tokio::test]
    async fn cancel_stops_a_running_command() {
        let d = tempfile::tempdir().unwrap();
        let s = spec(d.path(), "sleep 30", 60_000);
        let (tx, rx) = watch::channel(false);
        let h = tokio::spawn(async move { run(&s, rx).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        tx.send(true).unwrap();
        assert_eq!(h.await.unwrap(), Ending::Cancelled);
    }

    #[tokio::test]
    async fn a_watch_stops_the_group_like_a_timeout() {
        struct After(u32);
        impl Watch for After {
            fn poll(&mut self) -> Option<String> {
                self.0 = self.0.saturating_sub(1);
                (self.0 == 0).then(|| "enough".to_string())
            }
        }
        let d = tempfile::tempdir().unwrap();
        let s = spec(d.path(), "sleep 30", 60_000);
        let mut w = After(2);
        let t = std::time::Instant::now();
        assert_eq!(
            run_watched(&s, no_cancel(), Some(&mut w)).await,
            Ending::Stopped("enough".into())
        );
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn missing_program_is_a_spawn_failure() {
        let d = tempfile::tempdir().unwrap();
        let mut s = spec(d.path(), "", 1000);
        s.argv = vec!["/nonexistent/prog".into()];
        assert!(matches!(
            run(&s, no_cancel()).await,
            Ending::SpawnFailed(m) if m.contains("/nonexistent/prog")
        ));
    }

    #[tokio::test]
    async fn pgid_file_lives_as_long_as_the_group() {
        let d = tempfile::tempdir().unwrap();
        let s = spec(d.path(), "sleep 30", 60_000);
        let pgid_file = s.pgid_file.clone().unwrap();
        let (tx, rx) = watch::channel(false);
        let h = tokio::spawn(async move { run(&s, rx).await });
        let mut pgid = None;
        for _ in 0..100 {
            if let Ok(t) = std::fs::read_to_string(&pgid_file) {
                pgid = t
                    .split_whitespace()
                    .next()
                    .and_then(|p| p.parse::<i32>().ok());
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pgid = pgid.expect("pgid file written while running");
        assert!(alive(pgid));
        assert!(live().contains_key(&pgid));
        tx.send(true).unwrap();
        assert_eq!(h.await.unwrap(), Ending::Cancelled);
        assert!(!pgid_file.exists(), "pgid file removed at the end");
        assert!(!live().contains_key(&pgid));
    }

    #[tokio::test]
    async fn cancelled_before_start_never_spawns() {
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("ran");
        let s = spec(d.path(), &format!("touch '{}'", marker.display()), 10_000);
        let (tx, rx) = watch::channel(true);
        assert_eq!(run(&s, rx).await, Ending::Cancelled);
        drop(tx);
        assert!(!marker.exists());
    }

    #[test]
    fn reap_orphans_kills_only_the_tagged_commands() {
        use std::os::unix::process::CommandExt;
        let d = tempfile::tempdir().unwrap();
        let spawn = |tag: &str| {
            std::process::Command::new("sleep")
                .arg("30")
                .env(TAG_VAR, tag)
                .process_group(0)
                .spawn()
                .unwrap()
        };
        let mut ours = spawn("test-tag-a");
        let mut other = spawn("test-tag-b");
        std::fs::write(
            d.path().join("w1.pgid"),
            format!("{} test-tag-a\n", ours.id()),
        )
        .unwrap();
        let lines = reap_orphans(d.path());
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("w1"), "{lines:?}");
        ours.wait().unwrap();
        assert!(alive(other.id() as i32), "an untagged process was killed");
        assert!(std::fs::read_dir(d.path()).unwrap().next().is_none());
        other.kill().unwrap();
        other.wait().unwrap();
    }

    #[tokio::test]
    async fn a_process_that_leaves_the_group_with_setsid_is_killed_too() {
        let d = tempfile::tempdir().unwrap();
        let pidfile = d.path().join("escaped.pid");
        let script = format!(
            "setsid sleep 30 & echo $! > '{}'; sleep 0.1; exit 0",
            pidfile.display()
        );
        let s = spec(d.path(), &script, 10_000);
        assert!(run(&s, no_cancel()).await.success());
        let pid = read_pid(&pidfile);
        std::thread::sleep(Duration::from_millis(50));
        assert!(!alive(pid), "escaped {pid} survived");
    }

    #[test]
    fn start_time_names_a_live_process() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        assert_eq!(start_time(me), start_time(me));
        assert_eq!(start_time(i32::MAX), None);
    }

    #[tokio::test]
    async fn the_registry_entry_lives_as_long_as_the_command() {
        let d = tempfile::tempdir().unwrap();
        let s = spec(d.path(), "sleep 30", 60_000);
        let procs = s.procs_dir.clone().unwrap();
        let (tx, rx) = watch::channel(false);
        let h = tokio::spawn(async move { run(&s, rx).await });
        let mut text = String::new();
        for _ in 0..100 {
            text = std::fs::read_dir(&procs)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect();
            if text.contains("group ") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(text.contains("owner ") && text.contains("group "), "{text}");
        // Our own entry: a sweep leaves it alone while we live.
        assert!(reap_abandoned(&procs).unwrap().is_empty());
        tx.send(true).unwrap();
        assert_eq!(h.await.unwrap(), Ending::Cancelled);
        assert!(!procs.exists(), "the registry goes with its last entry");
    }

    #[test]
    fn reap_abandoned_kills_a_dead_tools_group_and_only_if_it_is_the_same() {
        use std::os::unix::process::CommandExt;
        let tmp = tempfile::tempdir().unwrap();
        let procs = tmp.path().join("procs");
        std::fs::create_dir(&procs).unwrap();
        let d = procs.as_path();
        let spawn = |tag: &str| {
            std::process::Command::new("sleep")
                .arg("30")
                .env(TAG_VAR, tag)
                .process_group(0)
                .spawn()
                .unwrap()
        };
        // An owner that is gone: pid 1 with a start time it does not have.
        let dead_owner = "owner 1 999999999999\n";
        let mut ours = spawn("reg-a");
        let pg = ours.id() as i32;
        let start = start_time(pg).unwrap();
        std::fs::write(
            d.join("a.pgid"),
            format!("{dead_owner}tag reg-x\ncwd /w\ngroup {pg} {start}\n"),
        )
        .unwrap();
        // Same group id, wrong start time, no member with the tag: a stranger, left alone.
        let mut other = spawn("reg-b");
        let opg = other.id() as i32;
        std::fs::write(
            d.join("b.pgid"),
            format!("{dead_owner}tag reg-y\ncwd /w\ngroup {opg} 1\n"),
        )
        .unwrap();
        let lines = reap_abandoned(d).unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("/w"), "{lines:?}");
        ours.wait().unwrap();
        assert!(
            alive(opg),
            "a process that is not the one recorded was killed"
        );
        assert!(!d.exists(), "the registry goes with its last entry");
        other.kill().unwrap();
        other.wait().unwrap();
    }

    #[test]
    fn reap_abandoned_kills_a_group_whose_leader_is_gone_but_not_its_members() {
        use std::os::unix::process::CommandExt;
        let tmp = tempfile::tempdir().unwrap();
        let procs = tmp.path().join("procs");
        std::fs::create_dir(&procs).unwrap();
        let pidfile = tmp.path().join("member.pid");
        // The leader (sh) exits at once; its untagged background sleep stays in the group.
        let mut leader = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("sleep 30 & echo $! > '{}'", pidfile.display()))
            .process_group(0)
            .spawn()
            .unwrap();
        let pg = leader.id() as i32;
        let start = start_time(pg).unwrap_or(1);
        leader.wait().unwrap();
        let member = read_pid(&pidfile);
        assert!(alive(member));
        std::fs::write(
            procs.join("c.pgid"),
            format!("owner 1 999999999999\ntag none\ncwd /w\ngroup {pg} {start}\n"),
        )
        .unwrap();
        let lines = reap_abandoned(&procs).unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            !alive(member),
            "the member {member} of the dead tool's group survived"
        );
    }

    #[test]
    fn tail_keeps_last_lines_of_big_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("big.log");
        let mut s = String::new();
        for i in 0..100_000 {
            s.push_str(&format!("line {i}\n"));
        }
        std::fs::write(&p, s).unwrap();
        let t = tail(&p, 3, 4096);
        assert_eq!(t, "line 99997\nline 99998\nline 99999");
    }
}
