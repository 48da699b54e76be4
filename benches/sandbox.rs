//! The sandbox's cost per process started (`cargo bench --bench sandbox`): spawning `true`
//! in a pool-like linked worktree with and without the sandbox, the median over many runs.
//! Each start goes through `process::run`, as every command git-ws starts does; "with"
//! includes everything the sandbox adds per command: finding the worktree's paths and
//! settings (`sandbox::for_slot`), building the Landlock ruleset (or the bubblewrap
//! command line), the policy line in the log, and applying it in the child.
//!
//! ```text
//! cargo bench --bench sandbox                 # 300 runs each
//! cargo bench --bench sandbox -- --runs 1000
//! cargo bench --profile dev --bench sandbox   # without an optimised build (an upper bound)
//! ```

use git_ws::{process, sandbox};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use ws_core::sandbox::Mode;

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "b")
        .env("GIT_AUTHOR_EMAIL", "b@x")
        .env("GIT_COMMITTER_NAME", "b")
        .env("GIT_COMMITTER_EMAIL", "b@x")
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "git {args:?} failed");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// Start `true` in `wt` the way git-ws starts every command (`process::run`: its own
/// process group, the parent-death signal set between fork and exec, output to a log) and
/// wait for it, sandboxed in `mode` (`None`: no sandbox at all). The time includes the
/// sandbox's preparation (`sandbox::for_slot`).
async fn spawn_true(wt: &Path, mode: Option<Mode>) -> Duration {
    let t = Instant::now();
    let spec = process::Spec {
        argv: vec!["true".to_string()],
        cwd: wt.to_path_buf(),
        env: BTreeMap::new(),
        stdin: None,
        log: wt.join("..").join("bench.log"),
        timeout: Duration::from_secs(30),
        grace: Duration::from_secs(1),
        pgid_file: None,
        procs_dir: None,
        sandbox: mode.and_then(|m| sandbox::for_slot(wt, Some(m), None)),
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let ending = process::run(&spec, rx).await;
    assert!(ending.success(), "{ending:?}");
    t.elapsed()
}

/// Spawn `true` directly (fork, a no-op step between fork and exec as git-ws always has,
/// exec, wait), with the sandbox prepared and applied or not: the sandbox's own cost
/// without `process::run`'s bookkeeping.
async fn raw_spawn(wt: &Path, sandboxed: bool) -> Duration {
    let t = Instant::now();
    let sb = sandboxed
        .then(|| sandbox::for_slot(wt, Some(Mode::Landlock), None))
        .flatten();
    let mut cmd = tokio::process::Command::new("true");
    cmd.current_dir(wt)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: an empty step, as async-signal-safe as it gets.
    unsafe {
        cmd.pre_exec(|| Ok(()));
    }
    sandbox::write_policy_line(sb.as_ref(), &wt.join("..").join("raw.log"));
    sandbox::apply(&mut cmd, sb.as_ref()).unwrap();
    assert!(cmd.status().await.unwrap().success());
    t.elapsed()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(300usize);
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["commit", "-q", "--allow-empty", "-m", "i"]);
    git(&repo, &["worktree", "add", "-q", "-b", "ws/run/a", "../wt"]);
    let wt = tmp.path().join("wt");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "sandbox: {runs} runs each of `true` in a linked worktree (Landlock ABI {})",
        sandbox::landlock_abi()
    );
    let mut modes: Vec<(&str, Option<Mode>)> =
        vec![("no sandbox", None), ("ws.sandbox=off", Some(Mode::Off))];
    if sandbox::landlock_abi() >= 1 {
        modes.push(("landlock", Some(Mode::Landlock)));
    }
    let bwrap = Command::new("bwrap")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if bwrap {
        modes.push(("bwrap", Some(Mode::Bwrap)));
    }
    // Warm up (the settings are read once per process, as in git-ws).
    for (_, m) in &modes {
        for _ in 0..10 {
            rt.block_on(spawn_true(&wt, *m));
        }
    }
    let mut base = None;
    // Interleaved, so that the machine's load hits every mode alike.
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(runs); modes.len()];
    for _ in 0..runs {
        for (i, (_, m)) in modes.iter().enumerate() {
            times[i].push(rt.block_on(spawn_true(&wt, *m)));
        }
    }
    for ((name, _), t) in modes.iter().zip(times) {
        let m = median(t);
        let extra = match base {
            None => {
                base = Some(m);
                String::new()
            }
            Some(b) => {
                let d = m.as_secs_f64() - b.as_secs_f64();
                format!("  (+{:.3} ms per process)", d * 1000.0)
            }
        };
        println!("  {name:<16} median {}{extra}", ms(m));
    }
    if sandbox::landlock_abi() >= 1 {
        let (mut plain, mut with) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            plain.push(rt.block_on(raw_spawn(&wt, false)));
            with.push(rt.block_on(raw_spawn(&wt, true)));
        }
        let (p, w) = (median(plain), median(with));
        println!(
            "  direct spawn: plain median {}, landlock median {}  (+{:.3} ms per process)",
            ms(p),
            ms(w),
            (w.as_secs_f64() - p.as_secs_f64()) * 1000.0
        );
    }
    let prep: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let sb = sandbox::for_slot(&wt, Some(Mode::Landlock), None);
            drop(sb);
            t.elapsed()
        })
        .collect();
    println!(
        "  landlock set-up alone (for_slot) median {}",
        ms(median(prep))
    );
}
