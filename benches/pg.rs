//! What the PostgreSQL backend costs, side by side with SQLite (`cargo bench --bench pg`).
//! Starts its own throwaway PostgreSQL cluster from the machine's binaries (the harness of
//! the integration tests), with PostgreSQL's durable defaults (fsync on), on loopback.
//!
//! ```text
//! cargo bench --bench pg                 # 400 results per backend, 5 whole runs each
//! cargo bench --bench pg -- --quick      # smoke test
//! ```
//!
//! 1. `record_result` per finished workstream, as the runner calls it: median and p99
//!    per result, SQLite and PostgreSQL interleaved.
//! 2. Opening an existing database: connect, authenticate, check the schema.
//! 3. A whole `git ws-run` of sleep workstreams on each backend, interleaved: wall time and
//!    the difference, against the run's length.

#[path = "../tests/integration/pgcluster.rs"]
mod pgcluster;

use git_ws::db::DbLocation;
use git_ws::model::{ChangeKind, FileChange, RunInfo, Status, TestResults, WorkstreamResult};
use git_ws::ConsolidationDatabase;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[((s.len() - 1) as f64 * p).round() as usize]
}

fn ms(s: f64) -> String {
    format!("{:.2} ms", s * 1e3)
}

fn info(run_id: &str) -> RunInfo {
    RunInfo {
        run_id: run_id.into(),
        started_at: chrono::Utc::now(),
        finished_at: None,
        agents: 3,
        base: "1".repeat(40),
        base_rev: "HEAD".into(),
        repo_root: "/tmp/bench-repo".into(),
        rerun_of: None,
    }
}

/// A plausible result: 3 files, 2 commits, a test result, metadata.
fn result(run_id: &str, i: usize) -> WorkstreamResult {
    let mut r = WorkstreamResult::new(run_id, "agent-1", &format!("ws-{i:05}"), Status::Completed);
    let now = chrono::Utc::now();
    r.title = Some(format!("Synthetic workstream {i}"));
    r.start_time = Some(now);
    r.end_time = Some(now);
    r.duration_seconds = 1.5;
    r.files = (0..3)
        .map(|f| FileChange {
            path: format!("src/module_{i}_{f}.rs"),
            old_path: None,
            kind: ChangeKind::Modified,
            additions: 12,
            deletions: 3,
        })
        .collect();
    r.commits = vec![format!("{i:040x}"), format!("{:040x}", i + 1_000_000)];
    r.branch = Some(format!("ws/{run_id}/ws-{i:05}"));
    r.test_results = Some(TestResults {
        command: "cargo test -q".into(),
        exit_code: Some(0),
        passed: Some(12),
        failed: Some(0),
        skipped: Some(1),
        ..TestResults::default()
    });
    r
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (n_results, n_runs, n_ws) = if quick { (50, 1, 6) } else { (400, 5, 12) };
    let cluster = match pgcluster::start_own(true) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bench pg: cannot start PostgreSQL: {e}");
            std::process::exit(2);
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    println!(
        "# PostgreSQL backend (server: {}, fsync on, loopback; durable SQLite: WAL, synchronous = NORMAL)",
        cluster.bindir.display()
    );

    // 1. record_result, interleaved.
    let pg_url = cluster.database("bench_persist");
    let mut pg = ConsolidationDatabase::open(DbLocation::parse(&pg_url).unwrap()).unwrap();
    let mut lite = ConsolidationDatabase::open(tmp.path().join("bench.db")).unwrap();
    let pg_run = pg.begin_run(&info("ma-run-bench")).unwrap();
    let lite_run = lite.begin_run(&info("ma-run-bench")).unwrap();
    let (mut tp, mut ts) = (Vec::new(), Vec::new());
    for i in 0..n_results {
        let r = result(&pg_run, i);
        let t = Instant::now();
        pg.record_result(&r).unwrap();
        tp.push(t.elapsed().as_secs_f64());
        let r = result(&lite_run, i);
        let t = Instant::now();
        lite.record_result(&r).unwrap();
        ts.push(t.elapsed().as_secs_f64());
    }
    println!("\n## record_result, {n_results} results each (3 files, 2 commits), interleaved");
    for (name, v) in [("SQLite", &ts), ("PostgreSQL", &tp)] {
        println!(
            "  {name:<10}  median {}  p99 {}  max {}",
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.99)),
            ms(percentile(v, 1.0))
        );
    }
    let per = percentile(&tp, 0.5);
    println!(
        "  PostgreSQL per result = {:.3}% of a 1 s workstream, {:.4}% of a 1 min one",
        100.0 * per / 1.0,
        100.0 * per / 60.0
    );

    // 2. Opening an existing database (what every command pays first), interleaved.
    drop((pg, lite));
    let (mut op, mut os) = (Vec::new(), Vec::new());
    let pg_loc = DbLocation::parse(&pg_url).unwrap();
    for _ in 0..if quick { 5 } else { 30 } {
        let t = Instant::now();
        drop(ConsolidationDatabase::open_existing(&pg_loc).unwrap());
        op.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        drop(ConsolidationDatabase::open_existing(tmp.path().join("bench.db")).unwrap());
        os.push(t.elapsed().as_secs_f64());
    }
    println!("\n## open_existing (connect, authenticate, session settings, schema check)");
    println!("  SQLite      median {}", ms(percentile(&os, 0.5)));
    println!(
        "  PostgreSQL  median {} (scram-sha-256 password authentication)",
        ms(percentile(&op, 0.5))
    );

    // 3. Whole runs, interleaved.
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("workstreams")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "bench\n").unwrap();
    for i in 0..n_ws {
        std::fs::write(
            repo.join(format!("workstreams/ws-{i:02}.json")),
            format!(r#"{{"id": "ws-{i:02}", "command": "sleep 0.5; echo {i} > out-{i}.txt"}}"#),
        )
        .unwrap();
    }
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "bench"]);
    let bin = env!("CARGO_BIN_EXE_git-ws-run");
    let run_url = cluster.database("bench_runs");
    let lite_path = tmp.path().join("runs.db");
    let run = |db: &str| -> f64 {
        let t = Instant::now();
        let out = Command::new(bin)
            .args(["--agents", "3", "--quiet", "--db", db])
            .current_dir(&repo)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "bench")
            .env("GIT_AUTHOR_EMAIL", "bench@example.com")
            .env("GIT_COMMITTER_NAME", "bench")
            .env("GIT_COMMITTER_EMAIL", "bench@example.com")
            .env_remove("GIT_WS_DATABASE_URL")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let dt = t.elapsed().as_secs_f64();
        // Exit 1 (a workstream failed, e.g. a git race of the runner's) still timed a whole
        // run; anything else is a broken bench.
        let code = out.status.code();
        assert!(matches!(code, Some(0 | 1)), "{out:?}");
        if code == Some(1) {
            eprintln!(
                "  note: a run on {} had a failed workstream: {}",
                DbLocation::parse(db).unwrap().display(),
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .nth(2)
                    .unwrap_or("")
            );
        }
        dt
    };
    // Warm the worktree pool once so neither backend pays for checkouts.
    run(lite_path.to_str().unwrap());
    let (mut wp, mut ws) = (Vec::new(), Vec::new());
    for _ in 0..n_runs {
        ws.push(run(lite_path.to_str().unwrap()));
        wp.push(run(&run_url));
    }
    let (mp, msq) = (percentile(&wp, 0.5), percentile(&ws, 0.5));
    println!(
        "\n## git ws-run, {n_ws} workstreams of 0.5 s on 3 agents, {n_runs} runs each, interleaved"
    );
    println!("  SQLite      median {:.3} s", msq);
    println!("  PostgreSQL  median {:.3} s", mp);
    println!(
        "  difference  {:+.1} ms = {:+.2}% of the run (connect, migrate check, {n_ws} results, totals)",
        (mp - msq) * 1e3,
        100.0 * (mp - msq) / msq
    );
}
