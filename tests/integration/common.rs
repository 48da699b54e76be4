//! Test harness: hermetic temporary git repositories, the built binaries on PATH so that
//! `git ws-run` dispatch itself is exercised, and a raw SQLite reader for asserting on rows.

#![allow(dead_code)]

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary repository with one commit on `main`.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub repo: PathBuf,
    pub home: PathBuf,
}

/// Directory holding the built `git-ws-run` and `git-ws-report`.
pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_git-ws-run"))
        .parent()
        .unwrap()
        .to_path_buf()
}

impl Env {
    pub fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&repo).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let env = Env { tmp, repo, home };
        env.git(&["init", "-q", "-b", "main"]);
        // The sandbox is on by default; the tests write markers and pid files beside the
        // repository, so its temporary directory stays writable (tests/integration/sandbox.rs
        // takes this away to test the sandbox itself).
        env.git(&[
            "config",
            "ws.sandbox.allowWrite",
            &env.tmp.path().display().to_string(),
        ]);
        env.write("README.md", "# demo\n");
        env.write(
            "src/lib.txt",
            "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\n",
        );
        env.write("docs/guide.txt", "guide\n");
        env.git(&["add", "-A"]);
        env.git(&["commit", "-q", "-m", "initial"]);
        env
    }

    /// A command with the hermetic environment and the binaries first on PATH.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        let path = format!(
            "{}:{}",
            bin_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.current_dir(&self.repo)
            .env("PATH", path)
            .env("HOME", &self.home)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test Author")
            .env("GIT_AUTHOR_EMAIL", "author@example.com")
            .env("GIT_COMMITTER_NAME", "Test Author")
            .env("GIT_COMMITTER_EMAIL", "author@example.com")
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_WS_DATABASE_URL")
            .env_remove("NO_COLOR");
        c
    }

    /// Run git in the repository; panics with its stderr on failure; returns stdout.
    pub fn git(&self, args: &[&str]) -> String {
        let out = self.command("git").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `git ws-run ARGS` through git's own dispatch.
    pub fn ws_run(&self, args: &[&str]) -> Run {
        let out = self
            .command("git")
            .arg("ws-run")
            .args(args)
            .output()
            .unwrap();
        Run::from(out)
    }

    /// `git ws-report ARGS` through git's own dispatch.
    pub fn ws_report(&self, args: &[&str]) -> Run {
        let out = self
            .command("git")
            .arg("ws-report")
            .args(args)
            .output()
            .unwrap();
        Run::from(out)
    }

    pub fn write(&self, rel: &str, contents: &str) {
        let p = self.repo.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }

    /// Write `workstreams/<id>.json` with the given JSON.
    pub fn ws(&self, id: &str, json: serde_json::Value) {
        self.write(
            &format!("workstreams/{id}.json"),
            &serde_json::to_string_pretty(&json).unwrap(),
        );
    }

    /// Write a shell command workstream.
    pub fn ws_cmd(&self, id: &str, command: &str) {
        self.ws(id, serde_json::json!({"id": id, "command": command}));
    }

    pub fn db_path(&self) -> PathBuf {
        self.repo.join(".state/multi_agent_consolidated.db")
    }

    /// Rows of a query against the run database, every value as text ("NULL" for null).
    pub fn sql(&self, query: &str) -> Vec<Vec<String>> {
        sql(&self.db_path(), query)
    }

    /// A scratch path outside the repository.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

/// The output of a finished command.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// The run id from the human summary's first line.
    pub fn run_id(&self) -> String {
        self.stdout
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .trim_end_matches(':')
            .to_string()
    }

    pub fn expect(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit {} (wanted {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// Run a query with SQLite's C API directly (no diesel involved), every value as text.
pub fn sql(db: &Path, query: &str) -> Vec<Vec<String>> {
    use libsqlite3_sys as ffi;
    let path = CString::new(db.to_str().unwrap()).unwrap();
    let q = CString::new(query).unwrap();
    let mut rows = Vec::new();
    // SAFETY: straightforward use of the SQLite C API with checked return codes; every
    // handle is finalised/closed before returning.
    unsafe {
        let mut conn = std::ptr::null_mut();
        let rc = ffi::sqlite3_open_v2(
            path.as_ptr(),
            &mut conn,
            ffi::SQLITE_OPEN_READONLY,
            std::ptr::null(),
        );
        assert_eq!(rc, ffi::SQLITE_OK, "open {}", db.display());
        let mut stmt = std::ptr::null_mut();
        let rc = ffi::sqlite3_prepare_v2(conn, q.as_ptr(), -1, &mut stmt, std::ptr::null_mut());
        if rc != ffi::SQLITE_OK {
            let msg = CStr::from_ptr(ffi::sqlite3_errmsg(conn))
                .to_string_lossy()
                .into_owned();
            ffi::sqlite3_close(conn);
            panic!("failed to prepare {query}: {msg}");
        }
        let n = ffi::sqlite3_column_count(stmt);
        loop {
            let rc = ffi::sqlite3_step(stmt);
            if rc == ffi::SQLITE_DONE {
                break;
            }
            assert_eq!(rc, ffi::SQLITE_ROW, "step {query}");
            let mut row = Vec::new();
            for i in 0..n {
                if ffi::sqlite3_column_type(stmt, i) == ffi::SQLITE_NULL {
                    row.push("NULL".to_string());
                } else {
                    let t = ffi::sqlite3_column_text(stmt, i);
                    row.push(CStr::from_ptr(t as *const _).to_string_lossy().into_owned());
                }
            }
            rows.push(row);
        }
        ffi::sqlite3_finalize(stmt);
        ffi::sqlite3_close(conn);
    }
    rows
}

/// Is this pid alive (and not a zombie)?
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// One JSON column of `agent_results` for a workstream, parsed.
pub fn result_json(env: &Env, run: &str, ws: &str, column: &str) -> serde_json::Value {
    let rows = env.sql(&format!(
        "SELECT {column} FROM agent_results WHERE run_id = '{run}' AND workstream_id = '{ws}'"
    ));
    assert_eq!(rows.len(), 1, "one row for {ws} in {run}");
    serde_json::from_str(&rows[0][0]).unwrap_or(serde_json::Value::Null)
}

/// The status of a workstream in a run.
pub fn status(env: &Env, run: &str, ws: &str) -> String {
    let rows = env.sql(&format!(
        "SELECT status FROM agent_results WHERE run_id = '{run}' AND workstream_id = '{ws}'"
    ));
    assert_eq!(rows.len(), 1, "one row for {ws} in {run}: {rows:?}");
    rows[0][0].clone()
}

/// Execute statements against a database with write access (to set up fixtures).
pub fn sql_exec(db: &Path, statements: &str) {
    use libsqlite3_sys as ffi;
    let path = CString::new(db.to_str().unwrap()).unwrap();
    let q = CString::new(statements).unwrap();
    // SAFETY: plain SQLite C API use; the connection is closed before returning.
    unsafe {
        let mut conn = std::ptr::null_mut();
        let rc = ffi::sqlite3_open_v2(
            path.as_ptr(),
            &mut conn,
            ffi::SQLITE_OPEN_READWRITE,
            std::ptr::null(),
        );
        assert_eq!(rc, ffi::SQLITE_OK, "open {}", db.display());
        let mut err = std::ptr::null_mut();
        let rc = ffi::sqlite3_exec(conn, q.as_ptr(), None, std::ptr::null_mut(), &mut err);
        let msg = if err.is_null() {
            String::new()
        } else {
            let m = CStr::from_ptr(err).to_string_lossy().into_owned();
            ffi::sqlite3_free(err as *mut _);
            m
        };
        ffi::sqlite3_close(conn);
        assert_eq!(rc, ffi::SQLITE_OK, "{statements}: {msg}");
    }
}

/// Poll `cond` every 20 ms until it holds; panics with `what` after `timeout`.
pub fn wait_until(timeout: std::time::Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Send `sig` to `pid`.
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid as i32, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

/// Send `sig` to the process group `pgid` (a child started with `process_group(0)`); a
/// group that is already gone is fine.
pub fn signal_group(pgid: u32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(-(pgid as i32), sig) };
}

/// A `git-ws-run` started directly (so the test has its pid), stderr going to a file.
pub struct Spawned {
    pub child: std::process::Child,
    pub stderr_path: PathBuf,
}

impl Spawned {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Wait at most `timeout` for it to exit (SIGKILL and panic after that).
    pub fn wait(mut self, timeout: std::time::Duration) -> Run {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stdout = String::new();
                if let Some(mut out) = self.child.stdout.take() {
                    use std::io::Read;
                    let _ = out.read_to_string(&mut stdout);
                }
                return Run {
                    code: status.code().unwrap_or(-1),
                    stdout,
                    stderr: self.stderr(),
                };
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "git-ws-run did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Env {
    /// Start `git-ws-run ARGS` (the binary itself, not through git) in the repository.
    pub fn spawn_run(&self, args: &[&str]) -> Spawned {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let stderr_path = self.scratch(&format!("ws-run-{n}.stderr"));
        let child = self
            .command(bin_dir().join("git-ws-run").to_str().unwrap())
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        Spawned { child, stderr_path }
    }

    /// `git worktree list --porcelain` paths.
    pub fn worktrees(&self) -> Vec<String> {
        self.git(&["worktree", "list", "--porcelain"])
            .lines()
            .filter_map(|l| l.strip_prefix("worktree "))
            .map(str::to_string)
            .collect()
    }
}

/// Like [`sql`], for polling a database another process is writing: waits up to 2 s for
/// locks and returns `None` instead of panicking when the query cannot run (yet).
pub fn try_sql(db: &Path, query: &str) -> Option<Vec<Vec<String>>> {
    use libsqlite3_sys as ffi;
    if !db.exists() {
        return None;
    }
    let path = CString::new(db.to_str()?).ok()?;
    let q = CString::new(query).ok()?;
    let mut rows = Vec::new();
    // SAFETY: plain SQLite C API use; every handle is finalised/closed before returning.
    unsafe {
        let mut conn = std::ptr::null_mut();
        if ffi::sqlite3_open_v2(
            path.as_ptr(),
            &mut conn,
            ffi::SQLITE_OPEN_READONLY,
            std::ptr::null(),
        ) != ffi::SQLITE_OK
        {
            ffi::sqlite3_close(conn);
            return None;
        }
        ffi::sqlite3_busy_timeout(conn, 2000);
        let mut stmt = std::ptr::null_mut();
        if ffi::sqlite3_prepare_v2(conn, q.as_ptr(), -1, &mut stmt, std::ptr::null_mut())
            != ffi::SQLITE_OK
        {
            ffi::sqlite3_close(conn);
            return None;
        }
        let n = ffi::sqlite3_column_count(stmt);
        let ok = loop {
            match ffi::sqlite3_step(stmt) {
                ffi::SQLITE_DONE => break true,
                ffi::SQLITE_ROW => {
                    let row = (0..n)
                        .map(|i| {
                            let t = ffi::sqlite3_column_text(stmt, i);
                            if t.is_null() {
                                "NULL".to_string()
                            } else {
                                CStr::from_ptr(t as *const _).to_string_lossy().into_owned()
                            }
                        })
                        .collect();
                    rows.push(row);
                }
                _ => break false,
            }
        };
        ffi::sqlite3_finalize(stmt);
        ffi::sqlite3_close(conn);
        ok.then_some(rows)
    }
}

/// Iterations of a loop: `GIT_WS_LOOPS` if set, else `default`.
pub fn loops(default: usize) -> usize {
    std::env::var("GIT_WS_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator for the kill loops (xorshift64*), seeded from
/// `GIT_WS_CRASH_SEED` or the clock; the seed is printed (after `what`) so a failure can be
/// replayed.
pub struct Rng(u64);

impl Rng {
    pub fn from_env(what: &str) -> (Rng, u64) {
        let seed = std::env::var("GIT_WS_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{what}: GIT_WS_CRASH_SEED={seed}");
        (Rng(seed | 1), seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}
