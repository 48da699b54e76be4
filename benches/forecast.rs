//! Benchmarks of the merge forecast and the integration engine (`cargo bench --bench
//! forecast`). Everything lives in a temporary directory.
//!
//! ```text
//! cargo bench --bench forecast                          # all sections, 5 repetitions
//! cargo bench --bench forecast -- dense --sizes 200,500,1000 --reps 3
//! cargo bench --bench forecast -- integrate --files 5000
//! cargo bench --bench forecast -- merge --files 5000 --reps 5
//! ```
//!
//! Sections:
//! - `dense`: N workstreams that all append to CHANGELOG.md (and each add a file of its
//!   own) in a repository of `--files` files: forecast wall time (median), the peak RSS of a
//!   process that does only the forecast (VmHWM), and the size of what would be stored
//!   (the forecast as JSON) and rendered, for each N in `--sizes`.
//! - `pairwise`: the cost of one pairwise merge, side by side: the forecast's engine (what
//!   `git_ws::git::merge_forecast` runs per pair) against libgit2's `merge_commits` (what
//!   the first forecast ran for every pair), on 200 pairs of the dense branches, interleaved.
//! - `integrate`: 45 one-line workstreams (each edits one file and adds one) merged in
//!   memory onto the base of a `--files` repository, median wall time.
//! - `merge`: the command itself, `git ws-merge` (release binaries, as processes), on a
//!   real `git ws-run` of 45 one-line workstreams in a `--files` repository, two of which
//!   edit the same line (a conflict) and two of which break a test only together: the
//!   median wall time without `--test`, and with `--test` the number of test runs against
//!   the bound and the wall time.

use git2::{Oid, Repository, Signature, Time};
use git_ws::git::{self, Objects};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

struct Opts {
    sections: Vec<String>,
    sizes: Vec<usize>,
    reps: usize,
    files: usize,
}

fn opts() -> Opts {
    let mut o = Opts {
        sections: Vec::new(),
        sizes: vec![200, 500, 1000],
        reps: 5,
        files: 5000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bench" => {}
            "--reps" => o.reps = it.next().and_then(|v| v.parse().ok()).expect("--reps N"),
            "--files" => o.files = it.next().and_then(|v| v.parse().ok()).expect("--files N"),
            "--sizes" => {
                o.sizes = it
                    .next()
                    .expect("--sizes N,N")
                    .split(',')
                    .map(|s| s.parse().expect("--sizes N,N"))
                    .collect()
            }
            s if !s.starts_with('-') => o.sections.push(s.to_string()),
            s => panic!("unknown option {s}"),
        }
    }
    o
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn sig() -> Signature<'static> {
    Signature::new("bench", "bench@example.com", &Time::new(1_700_000_000, 0)).unwrap()
}

/// A repository of `files` files plus CHANGELOG.md, committed on `main`.
fn base_repo(dir: &Path, files: usize) -> (Repository, Oid) {
    let repo = Repository::init(dir).unwrap();
    let mut index = git2::Index::new().unwrap();
    let mut add = |path: String, data: Vec<u8>| {
        let id = repo.blob(&data).unwrap();
        let e = git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode: 0o100644,
            uid: 0,
            gid: 0,
            file_size: data.len() as u32,
            id,
            flags: path.len().min(0xfff) as u16,
            flags_extended: 0,
            path: path.into_bytes(),
        };
        index.add(&e).unwrap();
    };
    for i in 0..files {
        let body: String = (0..20).map(|l| format!("file {i} line {l}\n")).collect();
        add(format!("src/d{}/f{i}.txt", i % 50), body.into_bytes());
    }
    let log: String = std::iter::once("# Changelog\n\n".to_string())
        .chain((1..=20).rev().map(|v| format!("- 0.{v}: a release\n")))
        .collect();
    add("CHANGELOG.md".into(), log.into_bytes());
    let tree = index.write_tree_to(&repo).unwrap();
    let base = {
        let t = repo.find_tree(tree).unwrap();
        repo.commit(Some("refs/heads/main"), &sig(), &sig(), "base", &t, &[])
            .unwrap()
    };
    repo.set_head("refs/heads/main").unwrap();
    (repo, base)
}

/// Branch `ws/bench/<id>` from `base`: CHANGELOG.md with one line appended, and a new file.
fn dense_branch(repo: &Repository, base: Oid, id: &str) {
    let base_c = repo.find_commit(base).unwrap();
    let tree = base_c.tree().unwrap();
    let log = repo
        .find_blob(tree.get_path(Path::new("CHANGELOG.md")).unwrap().id())
        .unwrap();
    let mut data = log.content().to_vec();
    data.extend(format!("- {id}: what this workstream did\n").bytes());
    let mut u = git2::build::TreeUpdateBuilder::new();
    u.upsert(
        "CHANGELOG.md",
        repo.blob(&data).unwrap(),
        git2::FileMode::Blob,
    );
    u.upsert(
        format!("notes/{id}.md"),
        repo.blob(format!("{id}\n").as_bytes()).unwrap(),
        git2::FileMode::Blob,
    );
    let t = repo
        .find_tree(u.create_updated(repo, &tree).unwrap())
        .unwrap();
    repo.commit(
        Some(&format!("refs/heads/ws/bench/{id}")),
        &sig(),
        &sig(),
        id,
        &t,
        &[&base_c],
    )
    .unwrap();
}

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn branches(n: usize) -> Vec<(String, String)> {
    (1..=n)
        .map(|i| {
            let id = format!("ws-{i:04}");
            (id.clone(), format!("ws/bench/{id}"))
        })
        .collect()
}

/// Child mode: forecast once and print "seconds hwm_kb json_bytes compat_json_bytes".
fn child(dir: &str, n: usize, base: &str) {
    let repo = git::discover(Path::new(dir)).unwrap();
    let t = Instant::now();
    let f = git::merge_forecast(&repo, base, &branches(n)).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let json = serde_json::to_string(&f).unwrap().len();
    let compat = git_ws::model::Forecast::from_merge_forecast(&f);
    let compat_json = serde_json::to_string(&compat).unwrap().len();
    println!(
        "{secs} {} {json} {compat_json} {} {} {}",
        vm_hwm_kb(),
        f.pairs.len(),
        f.clusters.len(),
        f.merge_order.iter().filter(|s| !s.clean).count()
    );
}

fn dense(o: &Opts) {
    println!(
        "## dense: N workstreams appending to CHANGELOG.md, {} files, median of {}",
        o.files, o.reps
    );
    println!("| N | pairs computed | clusters | rebase steps | forecast | peak RSS (VmHWM) | forecast JSON | first-shape JSON |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for &n in &o.sizes {
        let tmp = tempfile::tempdir().unwrap();
        let (repo, base) = base_repo(tmp.path(), o.files);
        for (id, _) in branches(n) {
            dense_branch(&repo, base, &id);
        }
        drop(repo);
        let exe = std::env::current_exe().unwrap();
        let mut times = Vec::new();
        let mut last = Vec::new();
        for _ in 0..o.reps {
            let out = Command::new(&exe)
                .args([
                    "--child",
                    tmp.path().to_str().unwrap(),
                    &n.to_string(),
                    &base.to_string(),
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let v: Vec<f64> = line.split(' ').map(|x| x.parse().unwrap()).collect();
            times.push(v[0]);
            last = v;
        }
        println!(
            "| {n} | {} | {} | {} | {:.3} s | {:.1} MB | {:.0} KB | {:.0} KB |",
            last[4],
            last[5],
            last[6],
            median(times),
            last[1] / 1024.0,
            last[2] / 1024.0,
            last[3] / 1024.0
        );
    }
}

fn pairwise(o: &Opts) {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, base) = base_repo(tmp.path(), o.files);
    let n = 21;
    for (id, _) in branches(n) {
        dense_branch(&repo, base, &id);
    }
    let paths = git::discover(tmp.path()).unwrap();
    let tips: Vec<git2::Commit<'_>> = branches(n)
        .iter()
        .map(|(_, b)| repo.revparse_single(b).unwrap().peel_to_commit().unwrap())
        .collect();
    let (mut engine, mut libgit2) = (Vec::new(), Vec::new());
    for _ in 0..o.reps {
        // The engine: a forecast of two branches is one pairwise merge plus the order.
        let t = Instant::now();
        for k in 0..10 {
            let two = &branches(n)[2 * k..2 * k + 2];
            git::merge_forecast(&paths, &base.to_string(), two).unwrap();
        }
        engine.push(t.elapsed().as_secs_f64() / 10.0);
        let t = Instant::now();
        for k in 0..10 {
            let idx = repo
                .merge_commits(&tips[2 * k], &tips[2 * k + 1], None)
                .unwrap();
            assert!(idx.has_conflicts());
        }
        libgit2.push(t.elapsed().as_secs_f64() / 10.0);
    }
    let (e, l) = (median(engine), median(libgit2));
    println!(
        "## pairwise: one merge of two dense branches in a {}-file repository, median of {}: forecast of the pair {:.2} ms (engine, order included) vs libgit2 merge_commits {:.2} ms: {:.3}x",
        o.files,
        o.reps,
        e * 1000.0,
        l * 1000.0,
        e / l
    );
}

fn integrate(o: &Opts) {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, base) = base_repo(tmp.path(), o.files);
    let base_c = repo.find_commit(base).unwrap();
    let tree = base_c.tree().unwrap();
    let mut list = Vec::new();
    for i in 0..45 {
        let k = (i * 97) % o.files;
        let p = format!("src/d{}/f{k}.txt", k % 50);
        let old = repo.find_blob(tree.get_path(Path::new(&p)).unwrap().id());
        let mut data = old.map(|b| b.content().to_vec()).unwrap_or_default();
        data.extend(format!("edited by ws-{i}\n").bytes());
        let mut u = git2::build::TreeUpdateBuilder::new();
        u.upsert(p.as_str(), repo.blob(&data).unwrap(), git2::FileMode::Blob);
        u.upsert(
            format!("added/ws-{i}.txt"),
            repo.blob(b"new\n").unwrap(),
            git2::FileMode::Blob,
        );
        let t = repo
            .find_tree(u.create_updated(&repo, &tree).unwrap())
            .unwrap();
        let c = repo
            .commit(None, &sig(), &sig(), "ws", &t, &[&base_c])
            .unwrap();
        list.push((format!("ws-{i:02}"), c.to_string()));
    }
    let paths = git::discover(tmp.path()).unwrap();
    let mut times = Vec::new();
    let mut merged = 0;
    for _ in 0..o.reps {
        let t = Instant::now();
        let it =
            git::integrate(&paths, "bench", &base.to_string(), &list, Objects::InMemory).unwrap();
        times.push(t.elapsed().as_secs_f64());
        merged = it.merged.len();
    }
    println!(
        "## integrate: 45 one-line workstreams onto a {}-file repository, in memory: {merged} merged, median {:.3} s of {}",
        o.files,
        median(times),
        o.reps
    );
}

/// A hermetic git / git-ws command in `dir` with the release binaries first on PATH.
fn tool(dir: &Path, program: &str) -> Command {
    let bins = Path::new(env!("CARGO_BIN_EXE_git-ws-merge"))
        .parent()
        .unwrap();
    let mut c = Command::new(program);
    c.current_dir(dir)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bins.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("HOME", dir.parent().unwrap())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .env_remove("GIT_WS_DATABASE_URL");
    c
}

fn run_ok(c: &mut Command) -> (String, f64, i32) {
    let t = Instant::now();
    let out = c.output().unwrap();
    let secs = t.elapsed().as_secs_f64();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "{c:?}: exit {code}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        secs,
        code,
    )
}

fn merge(o: &Opts) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    std::fs::create_dir_all(&dir).unwrap();
    let (repo, _) = base_repo(&dir, o.files);
    repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .unwrap();
    drop(repo);
    std::fs::create_dir_all(dir.join("workstreams")).unwrap();
    let n = 45;
    for i in 0..n {
        let k = (i * 97) % o.files;
        let path = format!("src/d{}/f{k}.txt", k % 50);
        let command = match i {
            // ws-01 and ws-02 rewrite a file nobody else touches: a textual conflict.
            1 | 2 => format!("printf 'ws-{i:02} was here\\n' > src/d1/f1.txt"),
            _ => format!("printf 'edited by ws-{i:02}\\n' >> {path} && mkdir -p added && echo new > added/ws-{i:02}.txt"),
        };
        std::fs::write(
            dir.join(format!("workstreams/ws-{i:02}.json")),
            serde_json::json!({"id": format!("ws-{i:02}"), "command": command}).to_string(),
        )
        .unwrap();
    }
    let (_, run_secs, _) = run_ok(tool(&dir, "git").args(["ws-run", "--agents", "3", "-q"]));
    // The test fails only when ws-10 and ws-30 are both merged.
    let test = "! { [ -e added/ws-10.txt ] && [ -e added/ws-30.txt ]; }";
    let mut plain = Vec::new();
    let mut tested = Vec::new();
    let (mut merged, mut left, mut runs) = (0, 0, 0);
    for _ in 0..o.reps {
        let (out, secs, _) = run_ok(tool(&dir, "git").args(["ws-merge", "--format", "json"]));
        plain.push(secs);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        merged = v["merged"].as_array().unwrap().len();
        left = v["excluded"].as_array().unwrap().len();
        let (out, secs, _) =
            run_ok(tool(&dir, "git").args(["ws-merge", "--format", "json", "-q", "--test", test]));
        tested.push(secs);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        runs = v["test_runs"].as_u64().unwrap() as usize;
        let culprits: Vec<&str> = v["excluded"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["reason"] == "breaks-tests")
            .map(|x| x["workstream_id"].as_str().unwrap())
            .collect();
        assert_eq!(culprits.len(), 1, "{v}");
    }
    // The bisection runs over the merges left after the conflict; one culprit.
    let merges = merged;
    let bound = git::bisect::max_test_runs(merges, 1);
    println!(
        "## merge: git ws-merge on a real run of {n} one-line workstreams, {} files (the run itself: {:.2} s), median of {}",
        o.files, run_secs, o.reps
    );
    println!(
        "- without --test: {:.3} s ({merged} merged, {left} left out: the conflict)",
        median(plain)
    );
    println!(
        "- with --test (one pair breaks the test only together): {:.3} s, {runs} test runs: 1 on onto alone + {} for {merges} merges (bound: 1 + 2*ceil(log2 {merges}) for the culprit + 1 passing run of the final tip = {bound})",
        median(tested),
        runs - 1,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--make") {
        // Make a dense repository to profile the child on: --make DIR N FILES.
        let (repo, base) = base_repo(Path::new(&args[2]), args[4].parse().unwrap());
        for (id, _) in branches(args[3].parse().unwrap()) {
            dense_branch(&repo, base, &id);
        }
        println!("{base}");
        return;
    }
    if args.get(1).map(String::as_str) == Some("--child") {
        child(&args[2], args[3].parse().unwrap(), &args[4]);
        return;
    }
    let o = opts();
    let all = o.sections.is_empty();
    if all || o.sections.iter().any(|s| s == "dense") {
        dense(&o);
    }
    if all || o.sections.iter().any(|s| s == "pairwise") {
        pairwise(&o);
    }
    if all || o.sections.iter().any(|s| s == "integrate") {
        integrate(&o);
    }
    if all || o.sections.iter().any(|s| s == "merge") {
        merge(&o);
    }
}
