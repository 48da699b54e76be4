//! Process supervision: runs one command in its own process group with its output streamed
//! to a log file, enforces the time limit and cancellation (SIGTERM to the group, a grace
//! period, then SIGKILL), and sweeps any process the command left behind in its group.
//! Every command carries a unique tag in its environment, so what leaves the group is found
//! too; the live commands are kept (a second Ctrl-C kills them all at once) and written to a
//! pgid file each, so a resume can kill what a coordinator killed by SIGKILL left behind.

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
    /// Extra environment (added on top of the inherited environment).
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

/// [`run`], with `watcher` polled while the command runs. What it wrote to its log is then
/// capped to [`crate::logcap::limit`] (`ws.maxLogBytes`).
pub async fn run_watched(
    spec: &Spec,
    cancel: watch::Receiver<bool>,
    watcher: Option<&mut dyn Watch>,
) -> Ending {
    let from = std::fs::metadata(&spec.log).map_or(0, |m| m.len());
    let ending = run_uncapped(spec, cancel, watcher).await;
    crate::logcap::cap(&spec.log, from, crate::logcap::limit());
    ending
}

async fn run_uncapped(
    spec: &Spec,
    mut cancel: watch::Receiver<bool>,
    mut watcher: Option<&mut dyn Watch>,
) -> Ending {
    if spec.argv.is_empty() {
        return Ending::SpawnFailed("empty command".into());
    }
    // Interrupted before it started: do not start it.
    if *cancel.borrow() {
        return Ending::Cancelled;
    }
    let log = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
    {
        Ok(f) => f,
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
    let mut cmd = tokio::process::Command::new(&spec.argv[0]);
    cmd.args(&spec.argv[1..])
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
    cmd.envs(&spec.env);
    let tag = new_tag();
    cmd.env(TAG_VAR, &tag);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Ending::SpawnFailed(format!("failed to start `{}`: {e}", spec.argv[0]));
        }
    };
    let pgid = child.id().map(|p| p as i32);
    let _tracked = pgid.map(|pg| Tracked::new(pg, tag, spec.pgid_file.clone()));
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
}

impl Tracked {
    fn new(pgid: i32, tag: String, file: Option<PathBuf>) -> Tracked {
        live().insert(pgid, tag.clone());
        if let Some(f) = &file {
            let _ = std::fs::write(f, format!("{pgid} {tag}\n"));
        }
        Tracked { pgid, tag, file }
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
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                return false;
            };
            // "pid (comm) S ppid pgrp …": comm may contain spaces, so split after the last ')'.
            let mut fields = stat
                .rsplit_once(')')
                .map_or("", |(_, r)| r)
                .split_whitespace();
            let state = fields.next();
            let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
            pgrp == Some(pgid) && state != Some("Z")
        })
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
        if tagged {
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
    let lines: Vec<&str> = text.lines().collect();
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

#[cfg(test)]
mod tests {
    use super::*;

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
