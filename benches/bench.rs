//! The git-ws benchmark harness (`cargo bench --bench bench`): overhead against the
//! per-task-worktree approach, parallel efficiency, database and report costs, and the
//! coordinator's peak memory. Everything it creates lives in temporary directories.
//!
//! ```text
//! cargo bench --bench bench                       # every section, 5 repetitions
//! cargo bench --bench bench -- overhead --files 50000 --reps 3
//! cargo bench --bench bench -- --quick            # smoke test: small sizes, 1 repetition
//! ```
//!
//! Sections: `overhead`, `scale` (the overhead section at `--scale-files`, 50,000 by
//! default), `git`, `include` (`.worktreeinclude` on prepare), `parallel`, `db`, `html` (the HTML page and diff renderers), `memory`. With no section named, all but `scale` run; `all`
//! runs every one. Options: `--reps N`, `--files N`, `--scale-files N`, `--scale-reps N`,
//! `--quick`, `--keep` (keep the temporary directories), `--no-baseline` (skip the
//! per-task-worktree script), `--old-bin PATH` (an older git-ws-run, run side by side). The
//! same options can be given in `GIT_WS_BENCH_ARGS` (split on spaces).

use git_ws::consolidate;
use git_ws::model::{
    ChangeKind, ErrorType, FileChange, Forecast, RunInfo, Status, TestResults, WorkstreamResult,
    WsError,
};
use git_ws::report::{self, ReportModel};
use git_ws::ConsolidationDatabase;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Options

#[derive(Debug, Clone)]
struct Opts {
    sections: Vec<String>,
    reps: usize,
    files: usize,
    scale_files: usize,
    scale_reps: usize,
    quick: bool,
    keep: bool,
    /// Skip the per-task-worktree baseline (the overhead figures do not need it).
    no_baseline: bool,
    /// An older `git-ws-run` to run side by side with this one (warm runs, with
    /// `--keep-worktrees`), for before/after figures.
    old_bin: Option<PathBuf>,
}

const SECTIONS: [&str; 8] = [
    "overhead", "scale", "git", "include", "parallel", "db", "html", "memory",
];

fn parse_opts() -> Opts {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if let Ok(extra) = std::env::var("GIT_WS_BENCH_ARGS") {
        args.extend(extra.split_whitespace().map(str::to_string));
    }
    let mut o = Opts {
        sections: Vec::new(),
        reps: 5,
        files: 5_000,
        scale_files: 50_000,
        scale_reps: 3,
        quick: false,
        keep: false,
        no_baseline: false,
        old_bin: None,
    };
    let mut reps = None;
    let mut files = None;
    let mut it = args.into_iter();
    let num = |flag: &str, v: Option<String>| -> usize {
        v.and_then(|s| s.replace('_', "").parse().ok())
            .unwrap_or_else(|| die(&format!("{flag} needs a whole number")))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            // cargo passes --bench to harness = false benches.
            "--bench" => {}
            "--quick" => o.quick = true,
            "--keep" => o.keep = true,
            "--no-baseline" => o.no_baseline = true,
            "--old-bin" => {
                o.old_bin =
                    Some(PathBuf::from(it.next().unwrap_or_else(|| {
                        die("--old-bin needs the path of a git-ws-run")
                    })))
            }
            "--reps" => reps = Some(num("--reps", it.next()).max(1)),
            "--files" => files = Some(num("--files", it.next()).max(50)),
            "--scale-files" => o.scale_files = num("--scale-files", it.next()).max(50),
            "--scale-reps" => o.scale_reps = num("--scale-reps", it.next()).max(1),
            "-h" | "--help" => {
                println!(
                    "{}",
                    include_str!("bench.rs")
                        .lines()
                        .take(17)
                        .collect::<Vec<_>>()
                        .join("\n")
                );
                std::process::exit(0);
            }
            "all" => o.sections.extend(SECTIONS.iter().map(|s| s.to_string())),
            s if SECTIONS.contains(&s) => o.sections.push(s.to_string()),
            s if s.starts_with('-') => die(&format!("unknown option {s} (see --help)")),
            // A cargo-style name filter: run the sections whose name contains it.
            s => o.sections.extend(
                SECTIONS
                    .iter()
                    .filter(|n| n.contains(s))
                    .map(|n| n.to_string()),
            ),
        }
    }
    if o.sections.is_empty() {
        o.sections = SECTIONS
            .iter()
            .filter(|s| **s != "scale")
            .map(|s| s.to_string())
            .collect();
    }
    o.sections.dedup();
    if o.quick {
        o.reps = 1;
        o.files = 500;
        o.scale_files = 2_000;
        o.scale_reps = 1;
    }
    if let Some(r) = reps {
        o.reps = r;
    }
    if let Some(f) = files {
        o.files = f;
    }
    o
}

fn die(msg: &str) -> ! {
    eprintln!("bench: {msg}");
    std::process::exit(2);
}

// ---------------------------------------------------------------------------------------
// Small statistics and output helpers

fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn spread(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if v.len() < 2 {
        String::new()
    } else {
        format!(" (min {}, max {})", secs(lo), secs(hi))
    }
}

fn secs(s: f64) -> String {
    if s < 0.001 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "MET"
    } else {
        "NOT MET"
    }
}

/// Summary lines collected for the closing table.
#[derive(Default)]
struct Summary(Vec<String>);

impl Summary {
    fn add(&mut self, line: String) {
        println!("  {line}");
        self.0.push(line);
    }
}

// ---------------------------------------------------------------------------------------
// Processes and git

struct Env {
    git_ws_run: PathBuf,
    git_ws_report: PathBuf,
    /// HOME for every child, so no user configuration leaks in.
    home: PathBuf,
}

impl Env {
    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "bench")
            .env("GIT_AUTHOR_EMAIL", "bench@example.com")
            .env("GIT_COMMITTER_NAME", "bench")
            .env("GIT_COMMITTER_EMAIL", "bench@example.com")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE");
        c
    }

    fn git(&self, dir: &Path, args: &[&str]) -> String {
        let out = self
            .cmd("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| die(&format!("failed to run git {args:?}: {e}")));
        if !out.status.success() {
            die(&format!(
                "git {args:?} in {} failed: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run to completion; returns wall seconds; dies on an unexpected exit status.
    fn timed(&self, mut c: Command, ok_codes: &[i32], what: &str) -> f64 {
        let t = Instant::now();
        let out = c
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| die(&format!("failed to start {what}: {e}")));
        let dt = t.elapsed().as_secs_f64();
        let code = out.status.code().unwrap_or(-1);
        if !ok_codes.contains(&code) {
            die(&format!(
                "{what} exited with {code}:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        dt
    }
}

fn locate_binaries() -> (PathBuf, PathBuf) {
    // `cargo bench` builds the binaries in the bench (release) profile and tells us where.
    let run = PathBuf::from(env!("CARGO_BIN_EXE_git-ws-run"));
    let rep = PathBuf::from(env!("CARGO_BIN_EXE_git-ws-report"));
    if !run.is_file() || !rep.is_file() {
        die(&format!(
            "{} or {} is missing: run `cargo build --release --bins` first",
            run.display(),
            rep.display()
        ));
    }
    // A stale binary would measure old code: warn when the sources are newer.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let newest_src = walk_mtime(&manifest.join("src"));
    let bin_time = std::fs::metadata(&run).and_then(|m| m.modified()).ok();
    if let (Some(src), Some(bin)) = (newest_src, bin_time) {
        if src > bin {
            eprintln!(
                "bench: warning: {} is older than the sources; run `cargo build --release --bins`",
                run.display()
            );
        }
    }
    (run, rep)
}

fn walk_mtime(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        let t = if p.is_dir() {
            walk_mtime(&p)
        } else {
            e.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(t);
    }
    newest
}

/// A deterministic pseudo-random generator (splitmix64), so every run uses the same workload.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Path of generated file `i` (100 files per directory).
fn file_path(i: usize) -> String {
    format!("src/d{:04}/f{:06}.txt", i / 100, i)
}

/// A repository with `n` committed text files (~10 lines each) and a `.gitignore`.
fn make_repo(env: &Env, dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    env.git(dir, &["init", "-q", "-b", "main"]);
    let mut body = String::new();
    for i in 0..n {
        let p = dir.join(file_path(i));
        if i % 100 == 0 {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        }
        body.clear();
        for l in 0..10 {
            let _ = writeln!(body, "file {i} line {l}: lorem ipsum dolor sit amet");
        }
        std::fs::write(&p, &body).unwrap();
    }
    std::fs::write(dir.join(".gitignore"), "target/\nnode_modules/\n.env\n").unwrap();
    env.git(dir, &["add", "-A"]);
    env.git(dir, &["commit", "-q", "-m", "generated repository"]);
    // Packed, and no automatic `git gc` in the middle of a measurement (libgit2 never runs
    // one; the git CLI would, at random, once enough loose objects pile up).
    env.git(dir, &["config", "gc.auto", "0"]);
    env.git(dir, &["repack", "-adq"]);
    env.git(dir, &["prune-packed"]);
}

/// Write `workstreams/*.json` (outside the repository) for (id, command) pairs.
fn write_workstreams(dir: &Path, items: &[(String, String)]) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    for (id, command) in items {
        let v = serde_json::json!({"id": id, "title": format!("bench {id}"), "command": command});
        std::fs::write(dir.join(format!("{id}.json")), v.to_string()).unwrap();
    }
}

/// Delete every branch under the given prefixes and prune worktrees (between repetitions).
fn delete_branches(env: &Env, repo: &Path, prefixes: &[&str]) {
    let mut args = vec!["for-each-ref", "--format=delete %(refname)"];
    args.extend(prefixes);
    let list = env.git(repo, &args);
    if !list.trim().is_empty() {
        let mut child = env
            .cmd("git")
            .arg("-C")
            .arg(repo)
            .args(["update-ref", "--stdin"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(list.as_bytes())
            .unwrap();
        child.wait().unwrap();
    }
    env.git(repo, &["worktree", "prune"]);
}

struct WsRun<'a> {
    env: &'a Env,
    repo: &'a Path,
    workstreams: &'a Path,
    db: &'a Path,
    reports: &'a Path,
    agents: usize,
}

impl WsRun<'_> {
    fn command(&self, extra: &[&str]) -> Command {
        let mut c = self.env.cmd(&self.env.git_ws_run);
        c.current_dir(self.repo)
            .arg("--agents")
            .arg(self.agents.to_string())
            .arg("--quiet")
            .arg("--workstreams")
            .arg(self.workstreams)
            .arg("--db")
            .arg(self.db)
            .arg("--reports-dir")
            .arg(self.reports)
            .args(extra);
        c
    }

    /// Run once; wall seconds and the run's results (read back from the database).
    fn run(&self, extra: &[&str]) -> (f64, Vec<WorkstreamResult>) {
        let wall = self.env.timed(self.command(extra), &[0], "git ws-run");
        let mut db = ConsolidationDatabase::open_existing(self.db).unwrap();
        let run_id = db.resolve_run_id("latest").unwrap();
        (wall, db.results(&run_id).unwrap())
    }
}

/// First start to last end of the started results, in seconds.
fn makespan(results: &[WorkstreamResult]) -> f64 {
    let starts = results.iter().filter_map(|r| r.start_time).min();
    let ends = results.iter().filter_map(|r| r.end_time).max();
    match (starts, ends) {
        (Some(s), Some(e)) => (e - s).num_microseconds().unwrap_or(0) as f64 / 1e6,
        _ => f64::NAN,
    }
}

// ---------------------------------------------------------------------------------------
// Section: overhead against per-task worktrees

const PEER_SCRIPT: &str = r#"#!/bin/sh
# One task the way the peers do it: a fresh worktree and branch, the command, commit,
# diff, remove the worktree. Concurrent `git worktree add`/`remove` can race inside git
# ("failed to read .git/worktrees/<id>/commondir"); a failed task is cleaned up and
# retried, and each retry is logged to $RETRIES.
id=$1
file=$2
wt="$WTROOT/$id"
task() {
    git -C "$REPO" worktree add -q -b "peer/$id" "$wt" HEAD &&
    (cd "$wt" &&
        sh -c "echo 'line from $id' >> '$file'" &&
        git commit -q -a -m "$id" &&
        git diff --stat HEAD~1 HEAD > /dev/null) &&
    git -C "$REPO" worktree remove --force "$wt"
}
n=0
until task; do
    n=$((n + 1))
    [ "$n" -ge 5 ] && exit 1
    echo "$id" >> "$RETRIES"
    rm -rf "$wt" "$REPO/.git/worktrees/$id"
    git -C "$REPO" branch -D -q "peer/$id" 2>/dev/null
    sleep 0.1
done
"#;

struct OverheadFigures {
    files: usize,
    peers: Vec<f64>,
    cold: Vec<f64>,
    warm: Vec<f64>,
    cmd_makespan: f64,
    warm_results: Vec<WorkstreamResult>,
}

fn overhead(
    env: &Env,
    tmp: &Path,
    n_files: usize,
    reps: usize,
    opts: &Opts,
    sum: &mut Summary,
) -> OverheadFigures {
    const N_WS: usize = 45;
    const AGENTS: usize = 3;
    println!("\n## Overhead vs per-task worktrees: {n_files} files, {N_WS} one-line workstreams, 3 at a time");
    let root = tmp.join(format!("overhead-{n_files}"));
    let repo = root.join("repo");
    let t = Instant::now();
    make_repo(env, &repo, n_files);
    println!(
        "  generated the repository in {}",
        secs(t.elapsed().as_secs_f64())
    );

    // Workstream i appends a line to its own file, spread over the repository.
    let tasks: Vec<(String, String)> = (0..N_WS)
        .map(|i| (format!("ws-{:02}", i + 1), file_path(i * (n_files / N_WS))))
        .collect();
    let wsdir = root.join("workstreams");
    write_workstreams(
        &wsdir,
        &tasks
            .iter()
            .map(|(id, f)| (id.clone(), format!("echo 'line from {id}' >> '{f}'")))
            .collect::<Vec<_>>(),
    );
    let script = root.join("peer.sh");
    std::fs::write(&script, PEER_SCRIPT).unwrap();
    let task_list = root.join("tasks.txt");
    std::fs::write(
        &task_list,
        tasks
            .iter()
            .map(|(id, f)| format!("{id} {f}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let wtroot = root.join("peer-worktrees");
    let retries = root.join("peer-retries.log");
    std::fs::create_dir_all(&wtroot).unwrap();
    let db = root.join("state/bench.db");
    let reports = root.join("reports");
    let ws = WsRun {
        env,
        repo: &repo,
        workstreams: &wsdir,
        db: &db,
        reports: &reports,
        agents: AGENTS,
    };

    // The commands alone: each one through `sh -c` in a scratch copy of its file.
    let scratch = root.join("scratch");
    let mut cmd_total = 0.0;
    for (id, f) in &tasks {
        let p = scratch.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::copy(repo.join(f), &p).unwrap();
        let mut c = env.cmd("sh");
        c.current_dir(&scratch)
            .arg("-c")
            .arg(format!("echo 'line from {id}' >> '{f}'"));
        cmd_total += env.timed(c, &[0], "a workstream command");
    }
    let cmd_makespan = cmd_total / AGENTS as f64;

    let peers_once = || {
        let mut c = env.cmd("sh");
        c.arg("-c")
            .arg(format!(
                "xargs -P{AGENTS} -L1 sh '{}' < '{}'",
                script.display(),
                task_list.display()
            ))
            .env("REPO", &repo)
            .env("WTROOT", &wtroot)
            .env("RETRIES", &retries);
        let dt = env.timed(c, &[0], "the per-task-worktree script");
        delete_branches(env, &repo, &["refs/heads/peer"]);
        dt
    };

    let (mut peers, mut cold, mut warm, mut old) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // The older git-ws-run, if given: its own database and a clone of the repository, so
    // its worktrees and history stay apart; warm (it keeps its worktrees).
    let old_ws = opts.old_bin.as_ref().map(|bin| {
        let old_repo = root.join("old-repo");
        env.git(
            &root,
            &[
                "clone",
                "-q",
                repo.to_str().unwrap(),
                old_repo.to_str().unwrap(),
            ],
        );
        env.git(&old_repo, &["config", "gc.auto", "0"]);
        (bin.clone(), old_repo)
    });
    let old_once = |ws_bin: &Path, old_repo: &Path| -> f64 {
        let mut c = env.cmd(ws_bin);
        c.current_dir(old_repo)
            .args([
                "--agents",
                "3",
                "--quiet",
                "--keep-worktrees",
                "--workstreams",
            ])
            .arg(&wsdir)
            .arg("--db")
            .arg(root.join("state/old.db"))
            .arg("--reports-dir")
            .arg(root.join("old-reports"));
        let dt = env.timed(c, &[0], "the older git ws-run");
        delete_branches(env, old_repo, &["refs/heads/ws"]);
        dt
    };
    if let Some((bin, old_repo)) = &old_ws {
        old_once(bin, old_repo);
    }
    let mut warm_results = Vec::new();
    let prune = || {
        let mut c = env.cmd(&env.git_ws_run);
        c.current_dir(&repo).arg("--prune-worktrees");
        env.timed(c, &[0], "git ws-run --prune-worktrees");
    };
    let check = |res: &[WorkstreamResult]| {
        let completed = res.iter().filter(|r| r.status == Status::Completed).count();
        if completed != N_WS {
            die(&format!("only {completed} of {N_WS} workstreams completed"));
        }
    };
    // Warm-up of the page cache (and a first pool, pruned again below).
    ws.run(&[]);
    delete_branches(env, &repo, &["refs/heads/ws"]);
    for rep in 0..reps {
        // Interleaved, so machine noise hits both sides alike. The cold run comes right
        // after the baseline, which has just added and removed 45 worktrees: on this disk
        // creating files is slow for a while after many were deleted, and both pay that.
        let p = if opts.no_baseline {
            f64::NAN
        } else {
            peers_once()
        };
        if let Some((bin, old_repo)) = &old_ws {
            old.push(old_once(bin, old_repo));
        }
        prune();
        let (c, res_c) = ws.run(&[]);
        delete_branches(env, &repo, &["refs/heads/ws"]);
        let (w, res) = ws.run(&[]);
        delete_branches(env, &repo, &["refs/heads/ws"]);
        check(&res_c);
        check(&res);
        println!(
            "  rep {}: per-task worktrees {}, ws-run cold (creates the pool) {}, ws-run warm (the pool exists) {}",
            rep + 1,
            secs(p),
            secs(c),
            secs(w)
        );
        peers.push(p);
        warm.push(w);
        cold.push(c);
        warm_results = res;
    }

    let (mp, mw, mc) = (median(&peers), median(&warm), median(&cold));
    let n_retries = std::fs::read_to_string(&retries)
        .map(|s| s.lines().count())
        .unwrap_or(0);
    if n_retries > 0 {
        println!("  the per-task-worktree script hit git's concurrent worktree race and retried {n_retries} task(s) in {reps} repetition(s)");
    }
    let per_ws = |wall: f64| (wall - cmd_makespan) / N_WS as f64;
    let agent_per_ws = |wall: f64| (wall - cmd_makespan) * AGENTS as f64 / N_WS as f64;
    println!("  medians over {reps} repetition(s):");
    sum.add(format!(
        "[{n_files} files] per-task worktrees (git CLI, xargs -P3): {}{}",
        secs(mp),
        spread(&peers)
    ));
    sum.add(format!(
        "[{n_files} files] git ws-run --agents 3, warm (the pool exists): {}{} = {:.3}x the baseline (target <= 0.03x: {})",
        secs(mw),
        spread(&warm),
        mw / mp,
        verdict(mw / mp <= 0.03)
    ));
    sum.add(format!(
        "[{n_files} files] git ws-run --agents 3, cold (creates the 3 pool worktrees): {}{} = {:.3}x the baseline (target <= 0.10x: {})",
        secs(mc),
        spread(&cold),
        mc / mp,
        verdict(mc / mp <= 0.10)
    ));
    if !old.is_empty() {
        let mo = median(&old);
        sum.add(format!(
            "[{n_files} files] the older git-ws-run side by side (warm, --keep-worktrees): {}{}; overhead per workstream {} (this one: {}, {:.2}x)",
            secs(mo),
            spread(&old),
            secs(per_ws(mo)),
            secs(per_ws(mw)),
            per_ws(mw) / per_ws(mo)
        ));
    }
    sum.add(format!(
        "[{n_files} files] the 45 commands alone: {} in total, makespan on 3 agents {}",
        secs(cmd_total),
        secs(cmd_makespan)
    ));
    let target = if n_files <= 5_000 { 0.020 } else { 0.060 };
    sum.add(format!(
        "[{n_files} files] coordinator overhead per workstream, (wall - command makespan)/45: warm {}, cold {} (target <= {} warm: {}); in agent time, x3: warm {}, cold {}",
        secs(per_ws(mw)),
        secs(per_ws(mc)),
        secs(target),
        verdict(per_ws(mw) <= target),
        secs(agent_per_ws(mw)),
        secs(agent_per_ws(mc)),
    ));
    let durs: Vec<f64> = warm_results.iter().map(|r| r.duration_seconds).collect();
    let span = makespan(&warm_results);
    sum.add(format!(
        "[{n_files} files] inside the last warm run: median workstream {} (prepare + command + collect), first start to last end {}, start-up + consolidation + report + pool release {}",
        secs(median(&durs)),
        secs(span),
        secs(warm.last().copied().unwrap_or(f64::NAN) - span)
    ));
    OverheadFigures {
        files: n_files,
        peers,
        cold,
        warm,
        cmd_makespan,
        warm_results,
    }
}

// ---------------------------------------------------------------------------------------
// Section: the git hot path, in process

/// CPU time (user + system) of the calling thread, in seconds.
fn thread_cpu() -> f64 {
    // SAFETY: getrusage fills the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// `.worktreeinclude` on prepare_branch: one reused agent worktree in a repository with
/// `n_files` tracked files and an ignored `node_modules/` of `n_files` more, timed with no
/// list, with `/.env` (anchored: only the root is read) and with `.env` (a bare name matches
/// at any depth, so the whole tree is walked).
fn include_on_prepare(env: &Env, tmp: &Path, n_files: usize, reps: usize, sum: &mut Summary) {
    use git_ws::git;
    let n_ws = if reps <= 1 { 10 } else { 30 };
    println!(
        "\n## .worktreeinclude on prepare_branch: {n_files} tracked + {n_files} ignored files"
    );
    let repo_dir = tmp.join(format!("include-{n_files}")).join("repo");
    make_repo(env, &repo_dir, n_files);
    for i in 0..n_files {
        let p = repo_dir.join(format!("node_modules/p{:04}/f{i:06}.js", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        }
        std::fs::write(p, "module.exports = 1;\n").unwrap();
    }
    std::fs::write(repo_dir.join(".env"), "TOKEN=1\n").unwrap();
    let repo = git::discover(&repo_dir).unwrap();
    let base = git::Repo::open(&repo)
        .unwrap()
        .resolve_commit("HEAD")
        .unwrap();
    let mut slot = git::claim_agent_slot(&repo, 1, &base).unwrap();
    let opts = git::PrepareOptions::default();
    let list = repo_dir.join(git::WORKTREE_INCLUDE);
    let configs = [
        ("no list", None),
        ("`/.env`", Some("/.env\n")),
        ("`.env`", Some(".env\n")),
    ];
    // Interleaved, so a change in the machine's load hits every configuration alike.
    let mut times = vec![Vec::new(); configs.len()];
    for i in 0..n_ws {
        for (k, (_, content)) in configs.iter().enumerate() {
            match content {
                Some(c) => std::fs::write(&list, c).unwrap(),
                None => {
                    let _ = std::fs::remove_file(&list);
                    let _ = std::fs::remove_file(slot.path.join(".env"));
                }
            }
            let branch = format!("ws/bench-include/{k}-{i:03}");
            let start = Instant::now();
            slot.prepare(&branch, &base, &opts).unwrap();
            times[k].push(start.elapsed().as_secs_f64());
            assert_eq!(slot.path.join(".env").exists(), content.is_some());
        }
    }
    let mut line = format!("[{n_files}+{n_files} files] prepare_branch median");
    for ((label, _), t) in configs.iter().zip(&times) {
        let _ = write!(line, ", {label} {}", secs(median(t)));
    }
    slot.remove().unwrap();
    sum.add(line);
}

/// prepare and collect on one reused agent worktree, timed phase by phase: what one
/// workstream costs the coordinator in git, at a given repository size.
fn git_hot_path(env: &Env, tmp: &Path, n_files: usize, reps: usize, sum: &mut Summary) {
    use git_ws::git;
    let n_ws = if reps <= 1 { 10 } else { 30 };
    println!(
        "\n## git hot path in process: {n_files} files, {n_ws} workstreams on one reused worktree"
    );
    let root = tmp.join(format!("git-{n_files}"));
    let repo_dir = root.join("repo");
    make_repo(env, &repo_dir, n_files);
    let repo = git::discover(&repo_dir).unwrap();
    let base = git::Repo::open(&repo)
        .unwrap()
        .resolve_commit("HEAD")
        .unwrap();
    let t = Instant::now();
    let mut slot = git::claim_agent_slot(&repo, 1, &base).unwrap();
    let claim = t.elapsed().as_secs_f64();
    let opts = git::PrepareOptions::default();
    let (mut prep, mut coll, mut edit) = (Vec::new(), Vec::new(), Vec::new());
    let (mut prep_cpu, mut coll_cpu) = (Vec::new(), Vec::new());
    for i in 0..n_ws {
        let branch = format!("ws/bench-git/ws-{i:03}");
        let (t, cpu) = (Instant::now(), thread_cpu());
        slot.prepare(&branch, &base, &opts).unwrap();
        prep.push(t.elapsed().as_secs_f64());
        prep_cpu.push(thread_cpu() - cpu);
        // What an agent does: change one file, add one, leave it uncommitted.
        let t = Instant::now();
        let f = slot.path.join(file_path((i * 7919) % n_files));
        let mut text = std::fs::read_to_string(&f).unwrap();
        text.push_str("one more line\n");
        std::fs::write(&f, text).unwrap();
        std::fs::write(slot.path.join(format!("new-{i}.txt")), "new\n").unwrap();
        edit.push(t.elapsed().as_secs_f64());
        let (t, cpu) = (Instant::now(), thread_cpu());
        let c = slot.collect(&branch, &base, "ws").unwrap();
        coll.push(t.elapsed().as_secs_f64());
        coll_cpu.push(thread_cpu() - cpu);
        assert_eq!(c.files.len(), 2, "collect saw {:?}", c.files);
    }
    let t = Instant::now();
    slot.release(&base, &opts).unwrap();
    let release = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let slot = git::claim_agent_slot(&repo, 1, &base).unwrap();
    let reclaim = t.elapsed().as_secs_f64();
    let t = Instant::now();
    slot.remove().unwrap();
    let remove = t.elapsed().as_secs_f64();
    sum.add(format!(
        "[{n_files} files] git in process per workstream (wall / CPU): prepare {} / {}, collect (auto-commit of 2 files + commits + diff) {} / {}; once per agent and run: claim from the pool {}, release to the base {}; create the worktree {}, remove it {}",
        secs(median(&prep)),
        secs(median(&prep_cpu)),
        secs(median(&coll)),
        secs(median(&coll_cpu)),
        secs(reclaim),
        secs(release),
        secs(claim),
        secs(remove)
    ));
}

// ---------------------------------------------------------------------------------------
// Section: parallel efficiency

/// Greedy list scheduling: each job, in order, goes to the agent that frees up first.
fn list_schedule(durations: &[f64], agents: usize) -> f64 {
    let mut free = vec![0.0f64; agents];
    for d in durations {
        let (i, _) = free
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.partial_cmp(b.1).unwrap())
            .unwrap();
        free[i] += d;
    }
    free.into_iter().fold(0.0, f64::max)
}

/// The seed's static round-robin: agent i gets workstreams i, i+N, i+2N, …
fn round_robin(durations: &[f64], agents: usize) -> f64 {
    let mut load = vec![0.0f64; agents];
    for (i, d) in durations.iter().enumerate() {
        load[i % agents] += d;
    }
    load.into_iter().fold(0.0, f64::max)
}

fn parallel(
    env: &Env,
    tmp: &Path,
    reps: usize,
    sum: &mut Summary,
) -> Vec<(f64, Vec<WorkstreamResult>)> {
    const N_WS: usize = 54;
    const AGENTS: usize = 3;
    println!(
        "\n## Parallel efficiency: {N_WS} workstreams sleeping 0.05-0.6 s (seed 54), 3 agents"
    );
    let root = tmp.join("parallel");
    let repo = root.join("repo");
    make_repo(env, &repo, 200);
    let mut rng = Rng(54);
    let durations: Vec<f64> = (0..N_WS)
        .map(|_| ((0.05 + 0.55 * rng.unit()) * 1000.0).round() / 1000.0)
        .collect();
    let wsdir = root.join("workstreams");
    write_workstreams(
        &wsdir,
        &durations
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("ws-{:02}", i + 1), format!("sleep {d:.3}")))
            .collect::<Vec<_>>(),
    );
    let db = root.join("state/bench.db");
    let reports = root.join("reports");
    let ws = WsRun {
        env,
        repo: &repo,
        workstreams: &wsdir,
        db: &db,
        reports: &reports,
        agents: AGENTS,
    };
    let total: f64 = durations.iter().sum();
    let longest = durations.iter().copied().fold(0.0, f64::max);
    let lb = (total / AGENTS as f64).max(longest);
    let rr = round_robin(&durations, AGENTS);
    let mut sorted = durations.clone();
    sorted.sort_by(|a, b| b.partial_cmp(a).unwrap());
    let lpt = list_schedule(&sorted, AGENTS);

    // First run: no history yet (the order is the files' order).
    let (w0, r0) = ws.run(&[]);
    let first_span = makespan(&r0);
    let mut runs = Vec::new();
    let (mut walls, mut spans) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        let (w, r) = ws.run(&[]);
        let s = makespan(&r);
        println!(
            "  rep {}: wall {}, makespan (first start to last end) {}",
            rep + 1,
            secs(w),
            secs(s)
        );
        walls.push(w);
        spans.push(s);
        runs.push((w, r));
    }
    // Measured per-workstream durations of the last run (sleep + git + process overhead).
    let last = &runs.last().unwrap().1;
    let measured: Vec<f64> = (0..N_WS)
        .map(|i| {
            let id = format!("ws-{:02}", i + 1);
            last.iter()
                .find(|r| r.workstream_id == id)
                .map(|r| r.duration_seconds)
                .unwrap_or(f64::NAN)
        })
        .collect();
    let m_total: f64 = measured.iter().sum();
    let m_lb = (m_total / AGENTS as f64).max(measured.iter().copied().fold(0.0, f64::max));
    let ms = median(&spans);
    let mw = median(&walls);
    sum.add(format!(
        "sleeps: total {}, longest {}; lower bound max(total/3, longest) = {}",
        secs(total),
        secs(longest),
        secs(lb)
    ));
    sum.add(format!(
        "history-ordered runs (longest first), median of {reps}: makespan {}{} = {:.3}x the lower bound (target <= 1.05x: {}); wall {} = {:.3}x",
        secs(ms),
        spread(&spans),
        ms / lb,
        verdict(ms / lb <= 1.05),
        secs(mw),
        mw / lb
    ));
    sum.add(format!(
        "the same runs against the bound from their own measured durations (sleep + per-workstream overhead, {} in total): {} = {:.3}x",
        secs(m_total),
        secs(m_lb),
        ms / m_lb
    ));
    sum.add(format!(
        "first run, no history (file order): makespan {} = {:.3}x the bound; wall {}",
        secs(first_span),
        first_span / lb,
        secs(w0)
    ));
    sum.add(format!(
        "the seed's round-robin (agent i gets i, i+3, ...), COMPUTED from the same sleeps, zero overhead: {} = {:.3}x the bound; with the measured durations: {}",
        secs(rr),
        rr / lb,
        secs(round_robin(&measured, AGENTS))
    ));
    sum.add(format!(
        "longest-first list scheduling COMPUTED from the sleeps, zero overhead: {} = {:.3}x the bound",
        secs(lpt),
        lpt / lb
    ));
    runs
}

// ---------------------------------------------------------------------------------------
// Section: database and report

fn run_info(run_id: &str, t: chrono::DateTime<chrono::Utc>) -> RunInfo {
    RunInfo {
        run_id: run_id.to_string(),
        started_at: t,
        finished_at: Some(t + chrono::Duration::seconds(60)),
        agents: 3,
        base: "1".repeat(40),
        base_rev: "HEAD".into(),
        repo_root: "/tmp/bench-repo".into(),
        rerun_of: None,
    }
}

/// A plausible result: 1-3 files out of `pool`, one or two commits, a test result, and for
/// one in 20 a failure with an output tail.
fn synthetic_result(
    rng: &mut Rng,
    run_id: &str,
    i: usize,
    agents: usize,
    pool: usize,
    t0: chrono::DateTime<chrono::Utc>,
) -> WorkstreamResult {
    let failed = i % 20 == 7;
    let mut r = WorkstreamResult::new(
        run_id,
        &format!("agent-{}", i % agents + 1),
        &format!("ws-{:05}", i + 1),
        if failed {
            Status::Failed
        } else {
            Status::Completed
        },
    );
    let start = t0 + chrono::Duration::milliseconds((i / agents) as i64 * 1500);
    let dur = 0.5 + rng.unit() * 2.0;
    r.title = Some(format!(
        "Synthetic workstream {i} with a `title` | and *markup*"
    ));
    r.start_time = Some(start);
    r.end_time = Some(start + chrono::Duration::milliseconds((dur * 1000.0) as i64));
    r.duration_seconds = dur;
    for _ in 0..1 + (rng.next() % 3) as usize {
        r.files.push(FileChange {
            path: file_path((rng.next() % pool as u64) as usize),
            old_path: None,
            kind: ChangeKind::Modified,
            additions: rng.next() % 40,
            deletions: rng.next() % 10,
        });
    }
    for c in 0..1 + (rng.next() % 2) as usize {
        r.commits
            .push(format!("{:040x}", (i as u128) << 8 | c as u128));
    }
    r.branch = Some(format!("ws/{run_id}/ws-{:05}", i + 1));
    r.base = Some("1".repeat(40));
    r.head = r.commits.last().cloned();
    r.worktree = Some("/tmp/bench-repo/.git/ws/agent-1".into());
    r.log_path = Some(format!("/tmp/bench-repo/.state/logs/{run_id}/ws-{i}.log"));
    r.exit_code = Some(if failed { 1 } else { 0 });
    r.source_file = Some(format!("ws-{:05}.json", i + 1));
    r.test_results = Some(TestResults {
        command: "cargo test -q".into(),
        exit_code: Some(0),
        passed: Some(12),
        failed: Some(0),
        skipped: Some(1),
        ..TestResults::default()
    });
    if failed {
        let tail: String = (0..40)
            .map(|l| format!("error[E0{l:03}]: something went wrong at src/lib.rs:{l}\n"))
            .collect();
        r.output_tail = Some(tail.clone());
        r.errors.push(
            WsError::new(ErrorType::CommandFailed, "command exited with status 1").with_trace(tail),
        );
        r.warnings
            .push("uncommitted changes (1 file) were committed by git-ws".into());
    }
    r
}

fn db_and_report(
    env: &Env,
    tmp: &Path,
    opts: &Opts,
    runs_for_fraction: &[(String, f64, Vec<WorkstreamResult>)],
    sum: &mut Summary,
) {
    println!("\n## Database and report");
    let root = tmp.join("db");
    std::fs::create_dir_all(&root).unwrap();
    let t0 = chrono::Utc::now();

    // 1. Persisting results, as the runner does: one record_result per finished workstream.
    for (label, wall, results) in runs_for_fraction {
        let mut per_rep = Vec::new();
        for rep in 0..opts.reps {
            let path = root.join(format!("persist-{}-{rep}.db", label.replace(' ', "-")));
            let mut db = ConsolidationDatabase::open(&path).unwrap();
            let id = db.begin_run(&run_info("ma-run-bench", t0)).unwrap();
            let mut total = 0.0;
            for r in results {
                let mut r = r.clone();
                r.run_id = id.clone();
                let t = Instant::now();
                db.record_result(&r).unwrap();
                total += t.elapsed().as_secs_f64();
            }
            per_rep.push(total);
        }
        let m = median(&per_rep);
        sum.add(format!(
            "persisting the {} results of the {label} run (record_result each, one immediate transaction): {} = {} per result = {:.2}% of that run's {} wall (target < 1%: {})",
            results.len(),
            secs(m),
            secs(m / results.len().max(1) as f64),
            100.0 * m / wall,
            secs(*wall),
            verdict(m / wall < 0.01)
        ));
    }

    // 2. Consolidating and rendering a 10,000-workstream run.
    let n = if opts.quick { 1_000 } else { 10_000 };
    let mut rng = Rng(10_000);
    let info = run_info("ma-run-bench-10k", t0);
    let results: Vec<WorkstreamResult> = (0..n)
        .map(|i| synthetic_result(&mut rng, &info.run_id, i, 3, n * 2, t0))
        .collect();
    let (mut tc, mut tr, mut len) = (Vec::new(), Vec::new(), 0);
    for _ in 0..opts.reps.max(3) {
        let t = Instant::now();
        let c = consolidate::consolidate(&info, &results, Forecast::default());
        tc.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let text = report::render_markdown(&ReportModel {
            consolidated: &c,
            results: &results,
        });
        tr.push(t.elapsed().as_secs_f64());
        len = text.len();
    }
    let both = median(&tc) + median(&tr);
    sum.add(format!(
        "report for a {n}-workstream run: consolidate {} + render_markdown {} = {} ({} KB of Markdown) (target < 1 s: {})",
        secs(median(&tc)),
        secs(median(&tr)),
        secs(both),
        len / 1024,
        verdict(both < 1.0)
    ));

    // 3. git ws-report against a database of 1,000 runs.
    let n_runs = if opts.quick { 100 } else { 1_000 };
    let per_run = 10;
    let path = root.join("history.db");
    let t = Instant::now();
    {
        let mut db = ConsolidationDatabase::open(&path).unwrap();
        let mut rng = Rng(1_000);
        for k in 0..n_runs {
            let started = t0 - chrono::Duration::minutes((n_runs - k) as i64 * 10);
            let info = run_info(&format!("ma-run-bench-{k:05}"), started);
            let id = db.begin_run(&info).unwrap();
            let info = RunInfo {
                run_id: id.clone(),
                ..info
            };
            let results: Vec<WorkstreamResult> = (0..per_run)
                .map(|i| synthetic_result(&mut rng, &id, i, 3, 500, started))
                .collect();
            for r in &results {
                db.record_result(r).unwrap();
            }
            let c = consolidate::consolidate(&info, &results, Forecast::default());
            db.finish_run(&c, git_ws::db::RunState::Finished).unwrap();
        }
    }
    println!(
        "  populated {n_runs} runs x {per_run} results through the library in {}",
        secs(t.elapsed().as_secs_f64())
    );
    // What every `git ws-run` reads at start-up: the duration history of every run.
    let mut db = ConsolidationDatabase::open_existing(&path).unwrap();
    let mut th = Vec::new();
    for _ in 0..opts.reps.max(3) {
        let t = Instant::now();
        let h = db.expected_durations().unwrap();
        th.push(t.elapsed().as_secs_f64());
        assert!(!h.is_empty());
    }
    sum.add(format!(
        "reading the duration history at run start (expected_durations, {} result rows): {}",
        n_runs * per_run,
        secs(median(&th))
    ));
    drop(db);
    let invocations: [(&str, Vec<&str>); 4] = [
        ("git ws-report (list)", vec![]),
        ("git ws-report latest", vec!["latest"]),
        (
            "git ws-report latest --format json",
            vec!["latest", "--format", "json"],
        ),
        (
            "git ws-report <oldest run> --agents --errors --files --timeline",
            vec![
                "ma-run-bench-00000",
                "--agents",
                "--errors",
                "--files",
                "--timeline",
            ],
        ),
    ];
    let times = (opts.reps * 3).max(5);
    for (label, args) in invocations {
        let mut ts = Vec::new();
        for _ in 0..times {
            let mut c = env.cmd(&env.git_ws_report);
            c.current_dir(&root).arg("--db").arg(&path).args(&args);
            c.stdout(Stdio::null());
            ts.push(env.timed(c, &[0], label));
        }
        let m = median(&ts);
        sum.add(format!(
            "{label} on {n_runs} runs: {}{} per invocation, median of {times} (target < 100 ms: {})",
            secs(m),
            spread(&ts),
            verdict(m < 0.1)
        ));
    }
}

// ---------------------------------------------------------------------------------------
// Section: memory

/// Run `c`, polling VmHWM from /proc while it runs; returns (wall, polled VmHWM KiB,
/// ru_maxrss KiB from wait4).
// The child is reaped with wait4 (for its rusage), not Child::wait.
#[allow(clippy::zombie_processes)]
/// The HTML renderers: a 1,000-workstream run page and a 10,000-line file's diff, each
/// rendered server-side as `git ws-review` and `--format html` do.
fn html_render(opts: &Opts, sum: &mut Summary) {
    let n = 1_000;
    let t0 = chrono::Utc::now();
    let mut rng = Rng(1_000);
    let info = run_info("ma-run-bench-html", t0);
    let results: Vec<WorkstreamResult> = (0..n)
        .map(|i| synthetic_result(&mut rng, &info.run_id, i, 3, n * 2, t0))
        .collect();
    let c = consolidate::consolidate(&info, &results, Forecast::default());
    let view = ReportModel {
        consolidated: &c,
        results: &results,
    }
    .view();
    let reps = opts.reps.max(5);
    let (mut tp, mut len) = (Vec::new(), 0);
    for _ in 0..reps {
        let t = Instant::now();
        let page = report::render_html(&view);
        tp.push(t.elapsed().as_secs_f64());
        len = page.len();
    }
    sum.add(format!(
        "HTML page of a {n}-workstream run: {} median of {reps}, spread {} ({} KB) (target < 200 ms: {})",
        secs(median(&tp)),
        spread(&tp),
        len / 1024,
        verdict(median(&tp) < 0.2)
    ));
    let old: String = (0..10_000)
        .map(|i| format!("    let value_{i} = compute({i}, \"text\");\n"))
        .collect();
    let new: String = (0..10_000)
        .map(|i| {
            if i % 50 == 0 {
                format!("    let value_{i} = compute_more({i}, \"other text\");\n")
            } else {
                format!("    let value_{i} = compute({i}, \"text\");\n")
            }
        })
        .collect();
    let mut td = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let d = report::diff_html(
            "src/big.rs",
            Some(&old),
            Some(&new),
            report::DiffLayout::SideBySide,
        );
        td.push(t.elapsed().as_secs_f64());
        len = d.len();
    }
    sum.add(format!(
        "HTML diff of a 10,000-line file (200 changed lines, side by side, word-level): {} median of {reps}, spread {} ({} KB) (target < 100 ms: {})",
        secs(median(&td)),
        spread(&td),
        len / 1024,
        verdict(median(&td) < 0.1)
    ));
}

// The child is reaped by `wait4` below (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_with_rss(mut c: Command) -> (f64, u64, u64, i32) {
    let t = Instant::now();
    let child = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| die(&format!("failed to start git ws-run: {e}")));
    let pid = child.id() as libc::pid_t;
    let status_path = format!("/proc/{pid}/status");
    let mut hwm = 0u64;
    let mut status = 0i32;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_path) {
            if let Some(kb) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                hwm = hwm.max(kb);
            }
        }
        // SAFETY: waiting on our own child, non-blocking.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let wall = t.elapsed().as_secs_f64();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (wall, hwm, usage.ru_maxrss as u64, code)
}

fn memory(env: &Env, tmp: &Path, opts: &Opts, sum: &mut Summary) {
    println!("\n## Memory: coordinator peak RSS");
    let root = tmp.join("memory");
    let repo = root.join("repo");
    make_repo(env, &repo, 200);
    let sizes: Vec<usize> = if opts.quick {
        vec![10, 100]
    } else {
        vec![10, 100, 1_000]
    };
    for n in sizes {
        let wsdir = root.join(format!("workstreams-{n}"));
        write_workstreams(
            &wsdir,
            &(0..n)
                .map(|i| (format!("ws-{:04}", i + 1), "true".to_string()))
                .collect::<Vec<_>>(),
        );
        let db = root.join(format!("state/bench-{n}.db"));
        let reports = root.join("reports");
        let ws = WsRun {
            env,
            repo: &repo,
            workstreams: &wsdir,
            db: &db,
            reports: &reports,
            agents: 3,
        };
        let reps = if n >= 1_000 {
            opts.reps.min(3)
        } else {
            opts.reps
        };
        let (mut walls, mut hwms, mut maxrss) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..reps {
            let (wall, hwm, rss, code) = run_with_rss(ws.command(&[]));
            if code != 0 {
                die(&format!(
                    "git ws-run with {n} workstreams exited with {code}"
                ));
            }
            delete_branches(env, &repo, &["refs/heads/ws"]);
            walls.push(wall);
            hwms.push(hwm as f64);
            maxrss.push(rss as f64);
        }
        let mb = |kb: f64| kb / 1024.0;
        // VmHWM is the process's own high-water mark after exec. wait4's ru_maxrss is only an
        // upper bound: Linux carries the pre-exec (forked copy of this bench) RSS into it.
        let peak = median(&hwms);
        sum.add(format!(
            "{n} workstreams (`true`), 3 agents: peak RSS {:.1} MB (/proc VmHWM, polled every 5 ms; wait4 ru_maxrss {:.1} MB includes the forked bench's pages) (target < 30 MB: {}); wall {} = {} per workstream",
            mb(median(&hwms)),
            mb(median(&maxrss)),
            if n >= 1_000 { verdict(mb(peak) < 30.0) } else { "-" },
            secs(median(&walls)),
            secs(median(&walls) / n as f64)
        ));
    }
}

// ---------------------------------------------------------------------------------------

fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kb| format!("{:.1} GiB RAM", kb / 1024.0 / 1024.0))
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let git = Command::new("git")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "{cores} cores ({cpu}), {mem}, load average at start {}, {git}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

fn main() {
    let opts = parse_opts();
    let (git_ws_run, git_ws_report) = locate_binaries();
    let tmp = tempfile::Builder::new()
        .prefix("git-ws-bench-")
        .tempdir()
        .unwrap_or_else(|e| die(&format!("failed to create a temporary directory: {e}")));
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let env = Env {
        git_ws_run,
        git_ws_report,
        home,
    };
    println!("# git-ws benchmarks");
    println!("machine: {}", machine());
    println!(
        "sections: {}; repetitions: {}{}",
        opts.sections.join(", "),
        opts.reps,
        if opts.quick { " (quick mode)" } else { "" }
    );
    let started = Instant::now();
    let mut sum = Summary::default();
    let mut fraction_runs: Vec<(String, f64, Vec<WorkstreamResult>)> = Vec::new();
    let has = |s: &str| opts.sections.iter().any(|x| x == s);
    if has("overhead") {
        let f = overhead(&env, tmp.path(), opts.files, opts.reps, &opts, &mut sum);
        let _ = (&f.peers, &f.cold, f.cmd_makespan, f.files);
        fraction_runs.push((
            format!("{}-file overhead", f.files),
            median(&f.warm),
            f.warm_results,
        ));
    }
    if has("scale") {
        overhead(
            &env,
            tmp.path(),
            opts.scale_files,
            opts.scale_reps,
            &opts,
            &mut sum,
        );
    }
    if has("git") {
        git_hot_path(&env, tmp.path(), opts.files, opts.reps, &mut sum);
        if has("scale") {
            git_hot_path(&env, tmp.path(), opts.scale_files, opts.reps, &mut sum);
        }
    }
    if has("include") {
        include_on_prepare(&env, tmp.path(), opts.files, opts.reps, &mut sum);
    }
    if has("parallel") {
        let runs = parallel(&env, tmp.path(), opts.reps, &mut sum);
        if let Some((w, r)) = runs.into_iter().last() {
            fraction_runs.push(("54-workstream parallel".into(), w, r));
        }
    }
    if has("db") {
        if fraction_runs.is_empty() {
            println!("  (run the overhead or parallel section too to relate persistence to a run's wall time)");
        }
        db_and_report(&env, tmp.path(), &opts, &fraction_runs, &mut sum);
    }
    if has("html") {
        html_render(&opts, &mut sum);
    }
    if has("memory") {
        memory(&env, tmp.path(), &opts, &mut sum);
    }
    println!(
        "\n## Summary ({} in all)",
        secs(started.elapsed().as_secs_f64())
    );
    for l in &sum.0 {
        println!("- {l}");
    }
    if opts.keep {
        let p = tmp.keep();
        println!("kept {}", p.display());
    }
}
