//! What the shared queue costs (`cargo bench --bench queue`): its own throwaway PostgreSQL
//! cluster (the integration tests' harness, durable defaults, loopback).
//!
//! ```text
//! cargo bench --bench queue                 # 1000 queued, 3 whole-run reps per worker count
//! cargo bench --bench queue -- --quick      # smoke test
//! cargo bench --bench queue -- makespan --sleep 8 --reps 1   # only the makespan, longer tasks
//! ```
//!
//! 1. Claim latency with 1,000 workstreams queued: one client claiming (and completing)
//!    them one by one, then 6 clients at once (6 agents competing for the same rows, as
//!    `FOR UPDATE SKIP LOCKED` has to handle). p50/p99 per claim, and per completion.
//! 2. Makespan of a shared run of sleep workstreams with 1, 2 and 3 workers (`git ws-run
//!    --remote` plus `--join latest` in other clones of a bare remote, 2 agents each),
//!    against the lower bound for that many agents (rounds × the sleep).

#[path = "../tests/integration/pgcluster.rs"]
mod pgcluster;

use chrono::Utc;
use git_ws::db::{ClaimOutcome, DbLocation, QueueItem, QueueSettings, SharedRun};
use git_ws::model::{RunInfo, Status, WorkstreamResult, UNASSIGNED_AGENT};
use git_ws::ConsolidationDatabase;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Instant;

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(s: f64) -> String {
    format!("{:.2} ms", s * 1000.0)
}

/// A shared run of `n` independent workstreams (priorities all different) in `url`.
fn queued_run(url: &str, run_id: &str, n: usize) {
    let mut db = ConsolidationDatabase::open(DbLocation::parse(url).unwrap()).unwrap();
    let info = RunInfo {
        run_id: run_id.into(),
        started_at: Utc::now(),
        finished_at: None,
        agents: 6,
        base: "b".repeat(40),
        base_rev: "HEAD".into(),
        repo_root: "/bench".into(),
        rerun_of: None,
    };
    let run_id = db.begin_run(&info).unwrap();
    let items: Vec<QueueItem> = (0..n)
        .map(|i| QueueItem {
            id: format!("ws-{i:04}"),
            file: format!("ws-{i:04}.json"),
            definition: format!("{{\"id\": \"ws-{i:04}\", \"command\": \"true\"}}"),
            depends_on: Vec::new(),
            priority: (i % 97) as f64,
            expected_secs: Some(1.0),
        })
        .collect();
    let run = SharedRun {
        run_id: run_id.clone(),
        remote: "/bench.git".into(),
        base: "b".repeat(40),
        settings: QueueSettings {
            timeout_secs: 60.0,
            fail_fast: false,
            lease_ms: 30_000,
        },
        consolidated_at: None,
        consolidator: None,
        consolidations: 0,
    };
    db.create_shared_run(&run, &items, &[]).unwrap();
}

fn skip(id: &str, _file: &str, _def: &str, _why: &str) -> WorkstreamResult {
    WorkstreamResult::new("unused", UNASSIGNED_AGENT, id, Status::Skipped)
}

/// Claim and complete everything in `run_id` as `worker`; (claim, complete) seconds each.
fn drain(url: &str, run_id: &str, worker: &str, start: &Barrier) -> (Vec<f64>, Vec<f64>) {
    let mut db = ConsolidationDatabase::open_existing(DbLocation::parse(url).unwrap()).unwrap();
    let agent = format!("agent-1@{worker}");
    let (mut claims, mut completes) = (Vec::new(), Vec::new());
    start.wait();
    loop {
        let t = Instant::now();
        let got = db.claim(run_id, worker, &agent, 30_000).unwrap();
        claims.push(t.elapsed().as_secs_f64());
        let ClaimOutcome::Claimed(c) = got else { break };
        let r = WorkstreamResult::new(run_id, &agent, &c.workstream_id, Status::Completed);
        let t = Instant::now();
        db.complete(&r, c.attempt, false, &skip).unwrap();
        completes.push(t.elapsed().as_secs_f64());
    }
    (claims, completes)
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let (n_queued, mut reps, n_ws, mut sleep) = if quick {
        (200, 1, 6, 0.5)
    } else {
        (1000, 3, 24, 1.0)
    };
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(|v| {
                v.parse::<f64>()
                    .unwrap_or_else(|_| panic!("{flag} takes a number, not {v:?}"))
            })
    };
    if let Some(s) = value("--sleep") {
        sleep = s;
    }
    if let Some(r) = value("--reps") {
        reps = r as usize;
    }
    let makespan_only = args.iter().any(|a| a == "makespan");
    let cluster = match pgcluster::start_own(true) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bench queue: cannot start PostgreSQL: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "# The shared queue on PostgreSQL (server: {}, fsync on, loopback)",
        cluster.bindir.display()
    );

    // 1. Claim latency with n_queued queued.
    let claim_clients: &[usize] = if makespan_only { &[] } else { &[1, 6] };
    for &clients in claim_clients {
        let url = cluster.database(&format!("bench_claim_{clients}"));
        let run_id = format!("ma-run-bench-{clients}");
        queued_run(&url, &run_id, n_queued);
        let start = Arc::new(Barrier::new(clients));
        let t = Instant::now();
        let handles: Vec<_> = (0..clients)
            .map(|k| {
                let (url, run_id, start) = (url.clone(), run_id.clone(), start.clone());
                std::thread::spawn(move || drain(&url, &run_id, &format!("w{k}"), &start))
            })
            .collect();
        let (mut claims, mut completes) = (Vec::new(), Vec::new());
        for h in handles {
            let (c, d) = h.join().unwrap();
            claims.extend(c);
            completes.extend(d);
        }
        let wall = t.elapsed().as_secs_f64();
        assert_eq!(completes.len(), n_queued, "every workstream once");
        println!(
            "\n## {n_queued} queued, {clients} client(s) claiming and completing until empty ({wall:.2} s)"
        );
        println!(
            "  claim     p50 {}  p99 {}  max {}",
            ms(percentile(&claims, 0.5)),
            ms(percentile(&claims, 0.99)),
            ms(percentile(&claims, 1.0))
        );
        println!(
            "  complete  p50 {}  p99 {}  max {}",
            ms(percentile(&completes, 0.5)),
            ms(percentile(&completes, 0.99)),
            ms(percentile(&completes, 1.0))
        );
    }

    // 2. Makespan with 1, 2, 3 workers of 2 agents each.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("workstreams")).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    std::fs::write(src.join("README.md"), "bench\n").unwrap();
    for i in 0..n_ws {
        std::fs::write(
            src.join(format!("workstreams/ws-{i:02}.json")),
            format!(r#"{{"id": "ws-{i:02}", "command": "sleep {sleep}; echo {i} > out-{i}.txt"}}"#),
        )
        .unwrap();
    }
    git(&src, &["add", "-A"]);
    git(
        &src,
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@e",
            "commit",
            "-qm",
            "bench",
        ],
    );
    let bare = tmp.path().join("remote.git");
    git(tmp.path(), &["clone", "-q", "--bare", "src", "remote.git"]);
    let clones: Vec<_> = (0..3)
        .map(|k| {
            let dir = tmp.path().join(format!("clone-{k}"));
            git(
                tmp.path(),
                &["clone", "-q", bare.to_str().unwrap(), dir.to_str().unwrap()],
            );
            dir
        })
        .collect();
    let bin = env!("CARGO_BIN_EXE_git-ws-run");
    let spawn = |dir: &Path, args: &[&str]| {
        Command::new(bin)
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "bench")
            .env("GIT_AUTHOR_EMAIL", "bench@example.com")
            .env("GIT_COMMITTER_NAME", "bench")
            .env("GIT_COMMITTER_EMAIL", "bench@example.com")
            .env_remove("GIT_WS_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    println!(
        "\n## Makespan: {n_ws} workstreams of `sleep {sleep}`, workers of 2 agents each (bare remote, clones on this machine)"
    );
    println!("  workers  agents  lower bound  makespan (reps)                  median  over bound");
    for workers in 1..=3usize {
        let agents = 2 * workers;
        let bound = (n_ws as f64 / agents as f64).ceil() * sleep;
        let mut times = Vec::new();
        for rep in 0..reps {
            let url = cluster.database(&format!("bench_make_{workers}_{rep}"));
            let common = [
                "--agents", "2", "--quiet", "--db", &url, "--remote", "origin",
            ];
            let t = Instant::now();
            let mut kids = vec![spawn(
                &clones[0],
                &[&common[..], &["--worker", "w0"]].concat(),
            )];
            for (k, dir) in clones.iter().enumerate().take(workers).skip(1) {
                let name = format!("w{k}");
                kids.push(spawn(
                    dir,
                    &[&common[..], &["--join", "latest", "--worker", &name]].concat(),
                ));
            }
            for k in kids {
                let out = k.wait_with_output().unwrap();
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "a worker failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            times.push(t.elapsed().as_secs_f64());
        }
        let med = percentile(&times, 0.5);
        println!(
            "  {workers:>7}  {agents:>6}  {bound:>9.2} s  {:<32} {med:>5.2} s  {:>+6.1} %",
            times
                .iter()
                .map(|t| format!("{t:.2}"))
                .collect::<Vec<_>>()
                .join(" "),
            100.0 * (med - bound) / bound
        );
    }
}
