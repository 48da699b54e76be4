//! A throwaway PostgreSQL cluster for the tests of one test process: started once from the
//! machine's own binaries (`pg_config --bindir`: initdb, pg_ctl; as the `postgres` user when
//! the tests run as root, since PostgreSQL refuses root) in a temporary directory on a free
//! loopback port, with a fresh database per test (`CREATE DATABASE`), and stopped
//! (`pg_ctl stop -m immediate`, directory removed) by a reaper process as soon as the test
//! process is gone, however it ended. Also used by `benches/pg.rs`.
//!
//! No PostgreSQL binaries: [`cluster`] prints one line (once per process, past the output
//! capture) and returns `None`, so the tests skip; unless `GIT_WS_REQUIRE_PG=1` (set by
//! `.ci/run`), which turns the skip into a failure.
//! `GIT_WS_PG_BINDIR` names the binaries' directory explicitly.

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The superuser's password; TCP connections must give it (scram-sha-256), so the tests
/// exercise real authentication and password redaction.
pub const PASSWORD: &str = "git-ws-test-pw";

/// A running cluster.
pub struct Cluster {
    /// Temporary directory holding `data/`, the socket and `log`.
    pub root: PathBuf,
    pub port: u16,
    pub bindir: PathBuf,
    /// `runuser -u postgres --` when running as root.
    as_postgres: bool,
    /// More server options (`-c ssl=on …`), kept by [`Cluster::restart`].
    extra: String,
}

enum Outcome {
    Ready(Cluster),
    /// No binaries: skip (or fail under `GIT_WS_REQUIRE_PG=1`).
    Missing(String),
    /// Binaries found but the cluster did not start: always a failure.
    Broken(String),
}

/// Whether a missing PostgreSQL fails the tests instead of skipping them.
pub fn required() -> bool {
    std::env::var("GIT_WS_REQUIRE_PG").is_ok_and(|v| v == "1")
}

/// The process's cluster, started on first use; `None` (after printing why) when there are
/// no PostgreSQL binaries and `GIT_WS_REQUIRE_PG` is not `1`.
pub fn cluster() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Outcome> = OnceLock::new();
    match CLUSTER.get_or_init(|| start(false)) {
        Outcome::Ready(c) => Some(c),
        Outcome::Missing(why) if !required() => {
            // Once per process, past libtest's output capture (which only takes print!).
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "skipping the PostgreSQL tests: {why} (GIT_WS_REQUIRE_PG=1 makes this a failure)"
                );
            });
            None
        }
        Outcome::Missing(why) => panic!("GIT_WS_REQUIRE_PG=1 and {why}"),
        Outcome::Broken(why) => panic!("failed to start a throwaway PostgreSQL cluster: {why}"),
    }
}

/// Start a cluster of its own (for benchmarks): `durable` keeps PostgreSQL's default
/// fsync/synchronous_commit settings, which the tests' cluster turns off for speed.
pub fn start_own(durable: bool) -> Result<Cluster, String> {
    match start(durable) {
        Outcome::Ready(c) => Ok(c),
        Outcome::Missing(why) | Outcome::Broken(why) => Err(why),
    }
}

/// A cluster of its own with more server options (`extra`, e.g. `-c ssl=on -c
/// ssl_cert_file=…`); `Ok(None)` when there are no PostgreSQL binaries (the caller skips,
/// as [`cluster`] does).
pub fn start_with(extra: &str) -> Result<Option<Cluster>, String> {
    let Some(bindir) = find_bindir() else {
        return Ok(None);
    };
    start_in(&bindir, false, extra).map(Some)
}

/// Whether this process runs PostgreSQL as the `postgres` user (it runs as root): files the
/// server reads must then belong to that user. Its uid and gid.
pub fn server_owner() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        postgres_ids()
    } else {
        None
    }
}

/// The directory holding initdb and pg_ctl: `GIT_WS_PG_BINDIR`, `pg_config --bindir`, the
/// newest `/usr/lib/postgresql/*/bin`, or PATH.
pub fn find_bindir() -> Option<PathBuf> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(d) = std::env::var_os("GIT_WS_PG_BINDIR") {
        return Some(PathBuf::from(d)).filter(|d| has(d));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has(&d) {
            return Some(d);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| has(d))
        .collect();
    versions.sort();
    if let Some((_, d)) = versions.pop() {
        return Some(d);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).find(|d| has(d))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

fn postgres_ids() -> Option<(u32, u32)> {
    let name = std::ffi::CString::new("postgres").unwrap();
    // SAFETY: getpwnam returns a pointer to static storage or null; read at once.
    unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        (!pw.is_null()).then(|| ((*pw).pw_uid, (*pw).pw_gid))
    }
}

fn start(durable: bool) -> Outcome {
    let Some(bindir) = find_bindir() else {
        return Outcome::Missing(
            "no PostgreSQL binaries found (initdb, pg_ctl: pg_config --bindir, \
             /usr/lib/postgresql/*/bin, PATH)"
                .into(),
        );
    };
    match start_in(&bindir, durable, "") {
        Ok(c) => Outcome::Ready(c),
        Err(e) => Outcome::Broken(e),
    }
}

fn start_in(bindir: &Path, durable: bool, extra: &str) -> Result<Cluster, String> {
    // SAFETY: geteuid has no preconditions.
    let as_postgres = unsafe { libc::geteuid() } == 0;
    let root = tempfile::Builder::new()
        .prefix("git-ws-pg-")
        .tempdir()
        .map_err(|e| format!("failed to create a temporary directory: {e}"))?
        .keep();
    let pwfile = root.join("pwfile");
    std::fs::write(&pwfile, format!("{PASSWORD}\n")).map_err(|e| e.to_string())?;
    if as_postgres {
        let (uid, gid) = postgres_ids()
            .ok_or("running as root and there is no `postgres` user to run PostgreSQL as")?;
        for p in [&root, &pwfile] {
            std::os::unix::fs::chown(p, Some(uid), Some(gid))
                .map_err(|e| format!("failed to chown {}: {e}", p.display()))?;
        }
    }
    let cluster = Cluster {
        root: root.clone(),
        port: 0,
        bindir: bindir.to_path_buf(),
        as_postgres,
        extra: extra.to_string(),
    };
    // The reaper first, so nothing outlives this process even if initdb or start fails.
    spawn_reaper(&cluster);
    let data = root.join("data");
    let out = cluster
        .tool("initdb")
        .args(["-D", data.to_str().unwrap(), "-U", "postgres", "-E", "UTF8"])
        .args(["--no-locale", "--no-sync", "--no-instructions"])
        .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .output()
        .map_err(|e| format!("failed to run initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let speed = if durable {
        ""
    } else {
        " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    };
    let mut last = String::new();
    for _ in 0..3 {
        let port = free_port();
        let out = cluster
            .tool("pg_ctl")
            .args(["-D", data.to_str().unwrap(), "-l"])
            .arg(root.join("log"))
            .arg("-o")
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200{speed} {extra}",
                root.display()
            ))
            .args(["-w", "-t", "60", "start"])
            .stdout(Stdio::null())
            .output()
            .map_err(|e| format!("failed to run pg_ctl: {e}"))?;
        if out.status.success() {
            return Ok(Cluster { port, ..cluster });
        }
        last = format!(
            "pg_ctl start failed: {}; log: {}",
            String::from_utf8_lossy(&out.stderr).trim(),
            std::fs::read_to_string(root.join("log")).unwrap_or_default()
        );
    }
    Err(last)
}

/// A detached shell (own process group, no inherited pipes) that waits for this process to
/// end, then stops the cluster and removes its directory.
fn spawn_reaper(c: &Cluster) {
    let stop = format!(
        "{} '{}' -D '{}' stop -m immediate",
        if c.as_postgres {
            "runuser -u postgres --"
        } else {
            ""
        },
        c.bindir.join("pg_ctl").display(),
        c.root.join("data").display()
    );
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; \
         [ -f '{data}/postmaster.pid' ] && {stop}; rm -rf '{root}'",
        pid = std::process::id(),
        data = c.root.join("data").display(),
        root = c.root.display(),
    );
    // `( … ) &` in a shell that exits at once: the reaper is orphaned to init right away,
    // so nothing here waits for it and no zombie is left.
    let started = Command::new("sh")
        .args(["-c", &format!("( {script} ) &")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .status()
        .expect("spawn the cluster reaper");
    assert!(started.success(), "the cluster reaper did not start");
}

impl Cluster {
    /// One of the cluster's programs, run as `postgres` when we are root, with no
    /// inherited output pipes for the server it may start.
    fn tool(&self, name: &str) -> Command {
        let program = self.bindir.join(name);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        c.current_dir(&self.root)
            .stdin(Stdio::null())
            .env_remove("PGDATA")
            .process_group(0);
        c
    }

    /// Stop the server at once (`pg_ctl stop -m immediate`), as a crash would.
    pub fn stop(&self) {
        let out = self
            .tool("pg_ctl")
            .args(["-D", self.root.join("data").to_str().unwrap()])
            .args(["-w", "stop", "-m", "immediate"])
            .stdout(Stdio::null())
            .output()
            .expect("run pg_ctl stop");
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Start a stopped server again on the same port (`durable`: as [`start_own`]).
    pub fn restart(&self, durable: bool) {
        let speed = if durable {
            ""
        } else {
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        };
        let out = self
            .tool("pg_ctl")
            .args(["-D", self.root.join("data").to_str().unwrap(), "-l"])
            .arg(self.root.join("log"))
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200{speed} {}",
                self.port,
                self.root.display(),
                self.extra
            ))
            .args(["-w", "-t", "60", "start"])
            .stdout(Stdio::null())
            .output()
            .expect("run pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `postgres://postgres:PASSWORD@127.0.0.1:PORT/DB`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// A new, empty database named after `label` (unique in this process); its URL.
    pub fn database(&self, label: &str) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let clean: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let name = format!("t{n}_{clean}");
        psql(&self.url("postgres"), &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        self.url(&name)
    }
}

/// The `psql` client: the cluster's own, else the one on PATH.
pub fn psql_program() -> PathBuf {
    find_bindir()
        .map(|d| d.join("psql"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("psql"))
}

/// Run `sql` (one statement, or several: the last one's rows come back) through the real
/// `psql` client; every value as text, `NULL` for null.
pub fn psql(url: &str, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let out = Command::new(psql_program())
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(["-F", "\x1f", "-P", "null=NULL", "-d", url, "-c", sql])
        .env_remove("PGPASSWORD")
        .env_remove("PGSERVICE")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("failed to run psql: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\x1f').map(str::to_string).collect())
        .collect())
}
