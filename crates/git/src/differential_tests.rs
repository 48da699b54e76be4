//! Differential tests of the in-memory merge ([`super::treemerge`]) against git itself: a
//! deterministic generator makes many branches of a real temporary repository, each with
//! one or two edits of the kinds that make merges interesting (overlapping and adjacent
//! line edits, appends, renames with and without edits, rename onto a taken path, deletes,
//! adds of the same path, a file where another branch makes a directory, mode changes,
//! binary files, symlinks, type changes, directory renames), and every pair is merged both
//! by the engine and by `git merge-tree --write-tree --name-only --no-messages`. Clean or
//! conflicting, and the set of conflicting paths, must agree.
//!
//! `differential_generated_pairs_agree_with_git` runs in the suite. The ignored tests run
//! more seeds against every git found (`GIT_WS_DIFF_SEEDS`, `GIT_WS_DIFF_BRANCHES`) and a
//! real project (`GIT_WS_DIFF_REPO`); `scripts/forecast-differential.sh` runs them.

use super::treemerge::{self, Base, Side};
use git2::{Oid, Repository, Signature};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

/// xorshift64*: deterministic, good enough to pick edits.
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A tree as a map: path → (content, mode).
pub(crate) type Files = BTreeMap<String, (Vec<u8>, u32)>;

pub(crate) fn write_tree(repo: &Repository, files: &Files) -> Oid {
    let mut index = git2::Index::new().unwrap();
    for (path, (data, mode)) in files {
        let oid = repo.blob(data).unwrap();
        let entry = git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode: *mode,
            uid: 0,
            gid: 0,
            file_size: data.len() as u32,
            id: oid,
            flags: path.len().min(0xfff) as u16,
            flags_extended: 0,
            path: path.as_bytes().to_vec(),
        };
        index.add(&entry).unwrap();
    }
    index.write_tree_to(repo).unwrap()
}

pub(crate) fn commit(repo: &Repository, files: &Files, parent: Option<Oid>, msg: &str) -> Oid {
    let tree = repo.find_tree(write_tree(repo, files)).unwrap();
    let sig = Signature::new("Gen", "gen@example.com", &git2::Time::new(1_700_000_000, 0)).unwrap();
    let parents: Vec<git2::Commit<'_>> = parent
        .into_iter()
        .map(|p| repo.find_commit(p).unwrap())
        .collect();
    let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
    repo.commit(None, &sig, &sig, msg, &tree, &refs).unwrap()
}

fn text(lines: usize, tag: &str) -> Vec<u8> {
    (1..=lines)
        .map(|i| format!("{tag} line {i}: some words to keep the file similar\n"))
        .collect::<String>()
        .into_bytes()
}

const REG: u32 = 0o100644;
const EXE: u32 = 0o100755;
const LNK: u32 = 0o120000;

/// The generator's base tree.
pub(crate) fn base_files() -> Files {
    let mut f = Files::new();
    for i in 0..4 {
        f.insert(
            format!("src/mod{i}.py"),
            (text(40, &format!("mod{i}")), REG),
        );
    }
    let mut log = b"# Changelog\n\n".to_vec();
    for i in (1..=8).rev() {
        log.extend(format!("- 0.{i}: release {i}\n").bytes());
    }
    f.insert("CHANGELOG.md".into(), (log, REG));
    f.insert("docs/guide.md".into(), (text(20, "guide"), REG));
    for n in ["a", "b", "c"] {
        f.insert(
            format!("lib/util/{n}.txt"),
            (text(12, &format!("util {n}")), REG),
        );
    }
    f.insert("data/config.ini".into(), (text(6, "config"), REG));
    f.insert(
        "bin/run.sh".into(),
        (b"#!/bin/sh\necho run\n".to_vec(), EXE),
    );
    let mut bin = vec![0u8, 1, 2, 3, 0, 255];
    bin.extend(std::iter::repeat_n(7u8, 64));
    f.insert("assets/logo.bin".into(), (bin, REG));
    f.insert("link".into(), (b"src/mod0.py".to_vec(), LNK));
    f
}

fn lines_of(data: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(data)
        .split_inclusive('\n')
        .map(str::to_string)
        .collect()
}

/// Text files to edit; most of the time only the few "hot" ones, so that branches meet.
fn text_files(rng: &mut Rng, f: &Files) -> Vec<String> {
    let all: Vec<String> = f
        .iter()
        .filter(|(p, (d, m))| *m != LNK && !d.contains(&0) && !p.ends_with(".sh"))
        .map(|(p, _)| p.clone())
        .collect();
    const HOT: [&str; 4] = [
        "CHANGELOG.md",
        "src/mod0.py",
        "lib/util/a.txt",
        "docs/guide.md",
    ];
    let hot: Vec<String> = all
        .iter()
        .filter(|p| HOT.contains(&p.as_str()))
        .cloned()
        .collect();
    if rng.below(3) > 0 && !hot.is_empty() {
        hot
    } else {
        all
    }
}

/// Apply one random edit to `f`; returns a short description.
pub(crate) fn random_edit(rng: &mut Rng, f: &mut Files, tag: &str) -> String {
    let texts = text_files(rng, f);
    if texts.is_empty() {
        return "nothing".into();
    }
    match rng.below(20) {
        0..=3 => {
            // Change lines: a small window, often near another branch's.
            let p = rng.pick(&texts).clone();
            let mut lines = lines_of(&f[&p].0);
            if lines.is_empty() {
                return "nothing".into();
            }
            let at = rng.below(lines.len().min(12)) * 3 % lines.len();
            let n = 1 + rng.below(2);
            for l in lines.iter_mut().skip(at).take(n) {
                *l = format!("{tag} changed this line\n");
            }
            f.get_mut(&p).unwrap().0 = lines.concat().into_bytes();
            format!("modify {p} at {at}")
        }
        4 => {
            let p = if rng.below(2) == 0 {
                "CHANGELOG.md".to_string()
            } else {
                rng.pick(&texts).clone()
            };
            if let Some((d, _)) = f.get_mut(&p) {
                d.extend(format!("- {tag}: appended\n").bytes());
            }
            format!("append {p}")
        }
        5 => {
            let p = "CHANGELOG.md".to_string();
            if let Some((d, _)) = f.get_mut(&p) {
                let mut lines = lines_of(d);
                let at = 2.min(lines.len());
                lines.insert(at, format!("- {tag}: new entry\n"));
                *d = lines.concat().into_bytes();
            }
            format!("insert at top of {p}")
        }
        6 => {
            let p = rng.pick(&texts).clone();
            f.remove(&p);
            format!("delete {p}")
        }
        7 | 8 => {
            // Rename, to one of few names so that two branches pick the same or another.
            let p = rng.pick(&texts).clone();
            let targets = [
                format!("{p}.orig"),
                format!("moved/{}", p.rsplit('/').next().unwrap()),
                format!("{p}2"),
            ];
            let to = rng.pick(&targets).clone();
            if f.contains_key(&to) || f.keys().any(|k| k.starts_with(&format!("{to}/"))) {
                return "nothing".into();
            }
            let (mut d, m) = f.remove(&p).unwrap();
            if rng.below(2) == 0 {
                let mut lines = lines_of(&d);
                if let Some(l) = lines.last_mut() {
                    *l = format!("{tag} edited while renaming\n");
                }
                d = lines.concat().into_bytes();
            }
            f.insert(to.clone(), (d, m));
            format!("rename {p} → {to}")
        }
        9 => {
            // Add a file at one of a few paths, with one of two contents.
            let paths = ["new.txt", "src/new.py", "lib/util/d.txt", "moved/extra.txt"];
            let p = rng.pick(&paths).to_string();
            if f.keys().any(|k| k.starts_with(&format!("{p}/"))) || ancestors_taken(f, &p) {
                return "nothing".into();
            }
            let content = if rng.below(2) == 0 {
                text(3, "shared")
            } else {
                text(3, tag)
            };
            f.insert(p.clone(), (content, REG));
            format!("add {p}")
        }
        10 => {
            // A file where another branch may put a directory, and the other way round.
            let choice = rng.below(4);
            let (p, content) = match choice {
                0 => ("docs/extra".to_string(), text(2, tag)),
                1 => ("docs/extra/page.rst".to_string(), text(2, tag)),
                2 => ("data/config.ini/part.ini".to_string(), text(2, tag)),
                _ => ("lib/util".to_string(), text(2, tag)),
            };
            if choice == 2 {
                f.remove("data/config.ini");
            }
            if choice == 3 {
                f.retain(|k, _| !k.starts_with("lib/util/"));
            }
            if ancestors_taken(f, &p) || f.keys().any(|k| k.starts_with(&format!("{p}/"))) {
                return "nothing".into();
            }
            f.insert(p.clone(), (content, REG));
            format!("file/dir {p}")
        }
        11 => {
            let p = if rng.below(2) == 0 {
                "bin/run.sh".to_string()
            } else {
                rng.pick(&texts).clone()
            };
            if let Some((d, m)) = f.get_mut(&p) {
                *m = if *m == EXE { REG } else { EXE };
                if rng.below(3) == 0 {
                    d.extend(format!("# {tag}\n").bytes());
                }
            }
            format!("chmod {p}")
        }
        12 => {
            if let Some((d, _)) = f.get_mut("assets/logo.bin") {
                let i = 6 + rng.below(3);
                d[i] = (rng.below(3) as u8) + 1;
            }
            "binary edit".into()
        }
        13 => {
            let targets: [&[u8]; 2] = [b"src/mod1.py", b"docs/guide.md"];
            let t = rng.pick(&targets).to_vec();
            if let Some(e) = f.get_mut("link") {
                *e = (t, LNK);
            }
            "retarget link".into()
        }
        14 => {
            // Type change: a file becomes a symlink.
            let p = rng.pick(&texts).clone();
            f.insert(p.clone(), (b"CHANGELOG.md".to_vec(), LNK));
            format!("typechange {p}")
        }
        15 | 16 => {
            // Directory rename: every file of lib/util moves.
            let to = if rng.below(2) == 0 {
                "lib/helpers"
            } else {
                "pkg/util"
            };
            let moving: Vec<String> = f
                .keys()
                .filter(|k| k.starts_with("lib/util/"))
                .cloned()
                .collect();
            if moving.is_empty()
                || f.keys().any(|k| k.starts_with(&format!("{to}/")))
                || ancestors_taken(f, &format!("{to}/x"))
            {
                return "nothing".into();
            }
            for k in moving {
                let v = f.remove(&k).unwrap();
                f.insert(format!("{to}/{}", &k["lib/util/".len()..]), v);
            }
            format!("rename dir lib/util → {to}")
        }
        17 => {
            let p = format!("lib/util/{tag}.txt");
            if ancestors_taken(f, &p) {
                return "nothing".into();
            }
            f.insert(p.clone(), (text(4, tag), REG));
            format!("add {p}")
        }
        18 => {
            f.retain(|k, _| !k.starts_with("lib/util/"));
            "delete lib/util".into()
        }
        _ => {
            // The same change another branch may make.
            if let Some((d, _)) = f.get_mut("docs/guide.md") {
                let mut lines = lines_of(d);
                if lines.len() > 5 {
                    lines[5] = "the same fix everywhere\n".into();
                }
                *d = lines.concat().into_bytes();
            }
            "same fix in docs/guide.md".into()
        }
    }
}

fn ancestors_taken(f: &Files, p: &str) -> bool {
    p.char_indices()
        .filter(|&(_, c)| c == '/')
        .any(|(i, _)| f.contains_key(&p[..i]))
}

/// Hermetic git: no user or system config, fixed identities.
pub(crate) fn git_at(git: &Path, dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(git)
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .expect("failed to run git")
}

/// git's answer: None when clean, else the conflicting paths, with `path~label` (a file
/// moved out of a directory's way) read as `path`.
pub(crate) fn git_merge_tree(git: &Path, dir: &Path, a: &str, b: &str) -> Option<BTreeSet<String>> {
    git_merge_tree_full(git, dir, a, b).0
}

/// git's answer and the tree it wrote.
pub(crate) fn git_merge_tree_full(
    git: &Path,
    dir: &Path,
    a: &str,
    b: &str,
) -> (Option<BTreeSet<String>>, String) {
    let out = git_at(
        git,
        dir,
        &[
            "merge-tree",
            "--write-tree",
            "--name-only",
            "--no-messages",
            a,
            b,
        ],
    );
    let code = out.status.code();
    assert!(
        matches!(code, Some(0) | Some(1)),
        "git merge-tree {a} {b} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let tree = stdout.lines().next().unwrap_or_default().to_string();
    if code == Some(0) {
        return (None, tree);
    }
    let paths = Some(
        stdout
            .lines()
            .skip(1)
            .take_while(|l| !l.is_empty())
            .map(|l| {
                for label in [a, b] {
                    if let Some(p) = l.strip_suffix(&format!("~{label}")) {
                        return p.to_string();
                    }
                }
                l.to_string()
            })
            .collect(),
    );
    (paths, tree)
}

/// Every git binary to compare with: the one on PATH, and any other found.
pub(crate) fn gits() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut seen = BTreeSet::new();
    for p in ["git", "/usr/local/bin/git", "/usr/bin/git"] {
        let o = Command::new(p).arg("--version").output();
        if let Ok(o) = o {
            let v = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if o.status.success() && seen.insert(v) {
                out.push(PathBuf::from(p));
            }
        }
    }
    out
}

/// A generated scenario: a repository with a base commit and branches `g0`, `g1`, ….
pub(crate) struct Scenario {
    pub dir: tempfile::TempDir,
    pub base: Oid,
    /// (branch name, tip, description)
    pub branches: Vec<(String, Oid, String)>,
}

pub(crate) fn scenario(seed: u64, n: usize) -> Scenario {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    let files = base_files();
    let base = commit(&repo, &files, None, "base");
    let mut rng = Rng::new(seed);
    let mut branches = Vec::new();
    for i in 0..n {
        let name = format!("g{i}");
        let mut f = files.clone();
        let mut what = vec![random_edit(&mut rng, &mut f, &name)];
        if rng.below(3) == 0 {
            what.push(random_edit(&mut rng, &mut f, &name));
        }
        if f == files {
            // Every branch changes something.
            f.get_mut("CHANGELOG.md")
                .unwrap()
                .0
                .extend(format!("- {name}\n").bytes());
            what.push("append CHANGELOG.md".into());
        }
        let tip = commit(&repo, &f, Some(base), &name);
        repo.reference(&format!("refs/heads/{name}"), tip, true, "gen")
            .unwrap();
        branches.push((name, tip, what.join("; ")));
    }
    Scenario {
        dir,
        base,
        branches,
    }
}

/// Engine answer for every pair (i < j): None when clean, else the conflicting paths.
pub(crate) fn engine_pairs(
    repo: &Repository,
    base: Oid,
    tips: &[(String, Oid)],
) -> HashMap<(usize, usize), Option<BTreeSet<String>>> {
    let base_tree = repo.find_commit(base).unwrap().tree().unwrap();
    let b = Base::new(base_tree.clone());
    let sides: Vec<Side<'_>> = tips
        .iter()
        .map(|(name, tip)| {
            let tree = repo.find_commit(*tip).unwrap().tree().unwrap();
            Side::from_trees(repo, &base_tree, tree, name).unwrap()
        })
        .collect();
    let mut out = HashMap::new();
    for i in 0..sides.len() {
        for j in i + 1..sides.len() {
            let o = treemerge::merge(repo, &b, &sides[i], &sides[j], false).unwrap();
            let v = (!o.is_clean()).then(|| o.conflict_paths().into_iter().collect());
            out.insert((i, j), v);
        }
    }
    out
}

pub(crate) struct Tally {
    pub pairs: usize,
    pub conflicting: usize,
    pub mismatches: Vec<String>,
    /// Conflicts predicted that git also finds, predicted but clean in git, and missed.
    pub true_conflicts: usize,
    pub false_conflicts: usize,
    pub missed_conflicts: usize,
    /// Clean in both whose merged tree was compared with git's, and how many differ.
    pub trees_compared: usize,
}

impl Tally {
    /// Precision and recall of the engine's conflict prediction against git's (1.0 when
    /// there is nothing to predict).
    pub fn precision_recall(&self) -> (f64, f64) {
        let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
        (
            ratio(
                self.true_conflicts,
                self.true_conflicts + self.false_conflicts,
            ),
            ratio(
                self.true_conflicts,
                self.true_conflicts + self.missed_conflicts,
            ),
        )
    }
}

/// Compare the engine with `git` on every pair of a scenario.
pub(crate) fn compare(s: &Scenario, git: &Path, both_orders: bool) -> Tally {
    compare_with(s, git, both_orders, false)
}

/// The engine's merged tree of `x` and `y` (None when it conflicts), written to the
/// repository so that it can be compared with git's.
fn engine_tree(repo: &Repository, base: Oid, x: &(String, Oid), y: &(String, Oid)) -> Option<Oid> {
    let base_tree = repo.find_commit(base).unwrap().tree().unwrap();
    let b = Base::new(base_tree.clone());
    let side = |(name, tip): &(String, Oid)| {
        let tree = repo.find_commit(*tip).unwrap().tree().unwrap();
        Side::from_trees(repo, &base_tree, tree, name).unwrap()
    };
    let (ours, theirs) = (side(x), side(y));
    let o = treemerge::merge(repo, &b, &ours, &theirs, true).unwrap();
    if !o.is_clean() {
        return None;
    }
    let t = treemerge::apply_to_tree(repo, &ours.tree, &o, |p| ours.at(p, &b)).unwrap();
    Some(t.id())
}

/// Compare the engine with `git` on every pair of a scenario; with `trees`, every merge
/// both find clean must also give git's tree (the merged contents).
pub(crate) fn compare_with(s: &Scenario, git: &Path, both_orders: bool, trees: bool) -> Tally {
    let repo = Repository::open(s.dir.path()).unwrap();
    let tips: Vec<(String, Oid)> = s.branches.iter().map(|(n, t, _)| (n.clone(), *t)).collect();
    let engine = engine_pairs(&repo, s.base, &tips);
    let mut t = Tally {
        pairs: 0,
        conflicting: 0,
        mismatches: Vec::new(),
        true_conflicts: 0,
        false_conflicts: 0,
        missed_conflicts: 0,
        trees_compared: 0,
    };
    for i in 0..tips.len() {
        for j in i + 1..tips.len() {
            let ours = &engine[&(i, j)];
            let orders: &[(usize, usize)] = if both_orders {
                &[(i, j), (j, i)]
            } else {
                &[(i, j)]
            };
            for &(x, y) in orders {
                let (theirs, git_tree) =
                    git_merge_tree_full(git, s.dir.path(), &tips[x].0, &tips[y].0);
                t.pairs += 1;
                if theirs.is_some() {
                    t.conflicting += 1;
                }
                match (ours.is_some(), theirs.is_some()) {
                    (true, true) => t.true_conflicts += 1,
                    (true, false) => t.false_conflicts += 1,
                    (false, true) => t.missed_conflicts += 1,
                    (false, false) if trees => {
                        t.trees_compared += 1;
                        let mine = engine_tree(&repo, s.base, &tips[x], &tips[y]);
                        if mine.map(|o| o.to_string()) != Some(git_tree.clone()) {
                            t.mismatches.push(format!(
                                "{} [{}] × {} [{}]: both clean, engine tree {:?}, {} tree {}",
                                tips[x].0,
                                s.branches[x].2,
                                tips[y].0,
                                s.branches[y].2,
                                mine,
                                git.display(),
                                git_tree
                            ));
                        }
                    }
                    (false, false) => {}
                }
                if *ours != theirs {
                    t.mismatches.push(format!(
                        "{} [{}] × {} [{}]: engine {:?}, {} {:?}",
                        tips[x].0,
                        s.branches[x].2,
                        tips[y].0,
                        s.branches[y].2,
                        ours,
                        git.display(),
                        theirs
                    ));
                }
            }
        }
    }
    t
}

#[test]
fn differential_generated_pairs_agree_with_git() {
    let s = scenario(7, 30);
    let git = PathBuf::from("git");
    let t = compare(&s, &git, false);
    eprintln!(
        "differential: {} generated pairs, {} conflicting per git, {} mismatches",
        t.pairs,
        t.conflicting,
        t.mismatches.len()
    );
    assert!(
        t.mismatches.is_empty(),
        "{} of {} pairs disagree with git:\n{}",
        t.mismatches.len(),
        t.pairs,
        t.mismatches.join("\n")
    );
    assert!(
        t.conflicting > t.pairs / 10,
        "the generator makes too few conflicts: {}",
        t.conflicting
    );
}

/// Many seeds, both orders of every pair, every git found. `GIT_WS_DIFF_SEEDS` (default
/// 20) scenarios of `GIT_WS_DIFF_BRANCHES` (default 30) branches.
#[test]
#[ignore]
fn differential_many_seeds() {
    let seeds: u64 = std::env::var("GIT_WS_DIFF_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let n: usize = std::env::var("GIT_WS_DIFF_BRANCHES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let mut failures = Vec::new();
    for git in gits() {
        let (mut pairs, mut conflicting, mut bad) = (0, 0, 0);
        for seed in 1..=seeds {
            let s = scenario(seed * 1000 + 17, n);
            let t = compare(&s, &git, true);
            pairs += t.pairs;
            conflicting += t.conflicting;
            bad += t.mismatches.len();
            failures.extend(
                t.mismatches
                    .into_iter()
                    .map(|m| format!("seed {seed}: {m}")),
            );
        }
        let v = git_at(&git, Path::new("."), &["--version"]);
        eprintln!(
            "{} ({}): {pairs} ordered pairs, {conflicting} conflicting, {} agree, {bad} disagree",
            git.display(),
            String::from_utf8_lossy(&v.stdout).trim(),
            pairs - bad
        );
        // The attributes (`.gitattributes` checked out, drivers configured), merged trees too.
        let (mut pairs, mut conflicting, mut trees, mut bad) = (0, 0, 0, 0);
        for seed in 1..=seeds {
            let s = attribute_scenario(seed * 1000 + 29, n.min(24));
            let t = compare_with(&s, &git, true, true);
            pairs += t.pairs;
            conflicting += t.conflicting;
            trees += t.trees_compared;
            bad += t.mismatches.len();
            failures.extend(
                t.mismatches
                    .into_iter()
                    .map(|m| format!("attributes seed {seed}: {m}")),
            );
        }
        eprintln!(
            "{} attributes: {pairs} ordered pairs, {conflicting} conflicting, {trees} merged trees compared, {} agree, {bad} disagree",
            git.display(),
            pairs - bad
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The files of a real repository's HEAD (`GIT_WS_DIFF_REPO`), as the base of a scenario.
fn files_of_head(path: &Path) -> Files {
    let repo = Repository::open(path).expect("GIT_WS_DIFF_REPO is a git repository");
    let tree = repo.head().unwrap().peel_to_tree().unwrap();
    let mut files = Files::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, e| {
        if e.kind() == Some(git2::ObjectType::Blob) {
            let blob = repo.find_blob(e.id()).unwrap();
            files.insert(
                format!("{dir}{}", e.name().unwrap()),
                (blob.content().to_vec(), e.filemode() as u32),
            );
        }
        git2::TreeWalkResult::Ok
    })
    .unwrap();
    files
}

/// One realistic edit of a real project: change a line in a function, add a function,
/// add a changelog entry, rename a module, delete or add a file, edit docs.
fn realistic_edit(rng: &mut Rng, f: &mut Files, tag: &str, hot: &[String]) -> String {
    let texts: Vec<String> = f
        .iter()
        .filter(|(_, (d, m))| *m != LNK && !d.contains(&0) && std::str::from_utf8(d).is_ok())
        .map(|(p, _)| p.clone())
        .collect();
    let pick_file = |rng: &mut Rng| -> String {
        if rng.below(5) > 0 {
            rng.pick(hot).clone()
        } else {
            rng.pick(&texts).clone()
        }
    };
    match rng.below(10) {
        0..=3 => {
            // Change a line right after a `def` (or any line), as a bug fix would.
            let p = pick_file(rng);
            let Some((d, _)) = f.get_mut(&p) else {
                return "nothing".into();
            };
            let mut lines = lines_of(d);
            let defs: Vec<usize> = lines
                .iter()
                .enumerate()
                .filter(|(_, l)| {
                    l.trim_start().starts_with("def ")
                        || l.starts_with("## ")
                        || l.starts_with("Version ")
                })
                .map(|(i, _)| i)
                .collect();
            if lines.len() < 3 {
                return "nothing".into();
            }
            let at = if defs.is_empty() {
                rng.below(lines.len())
            } else {
                (rng.pick(&defs) + 1 + rng.below(3)).min(lines.len() - 1)
            };
            let indent: String = lines[at]
                .chars()
                .take_while(|c| c.is_whitespace() && *c != '\n')
                .collect();
            lines[at] = format!("{indent}# {tag}: fixed here\n");
            *d = lines.concat().into_bytes();
            format!("edit {p}:{at}")
        }
        4 => {
            let p = pick_file(rng);
            if let Some((d, _)) = f.get_mut(&p) {
                d.extend(
                    format!("\n\ndef helper_{tag}():\n    return {}\n", rng.below(100)).bytes(),
                );
            }
            format!("add a function to {p}")
        }
        5 => {
            let p = f
                .keys()
                .find(|k| {
                    k.to_lowercase().starts_with("changes")
                        || k.to_lowercase().contains("changelog")
                })
                .cloned()
                .unwrap_or_else(|| hot[0].clone());
            if let Some((d, _)) = f.get_mut(&p) {
                let mut lines = lines_of(d);
                let at = lines
                    .iter()
                    .position(|l| l.trim_start().starts_with("-"))
                    .unwrap_or(0);
                lines.insert(at, format!("-   {tag}: a changelog entry\n"));
                *d = lines.concat().into_bytes();
            }
            format!("changelog entry in {p}")
        }
        6 => {
            let p = pick_file(rng);
            let to = format!("{p}.moved");
            if let Some((mut d, m)) = f.remove(&p) {
                if rng.below(2) == 0 {
                    d.extend(format!("# moved by {tag}\n").bytes());
                }
                f.insert(to.clone(), (d, m));
            }
            format!("rename {p}")
        }
        7 => {
            let p = rng.pick(&texts).clone();
            f.remove(&p);
            format!("delete {p}")
        }
        8 => {
            let p = format!("tests/test_{}.py", ["new", "extra", tag][rng.below(3)]);
            f.insert(
                p.clone(),
                (
                    format!("def test_{tag}():\n    assert True\n").into_bytes(),
                    REG,
                ),
            );
            format!("add {p}")
        }
        _ => {
            let p = pick_file(rng);
            if let Some((d, _)) = f.get_mut(&p) {
                let mut lines = lines_of(d);
                if !lines.is_empty() {
                    let at = rng.below(lines.len());
                    lines.remove(at);
                }
                *d = lines.concat().into_bytes();
            }
            format!("remove a line of {p}")
        }
    }
}

/// Generated realistic edits on a real project (`GIT_WS_DIFF_REPO`), every pair compared
/// with every git found. `GIT_WS_DIFF_BRANCHES` (default 30) branches per scenario,
/// `GIT_WS_DIFF_SEEDS` (default 3) scenarios.
#[test]
#[ignore]
fn differential_real_repository() {
    let Ok(src) = std::env::var("GIT_WS_DIFF_REPO") else {
        eprintln!("GIT_WS_DIFF_REPO not set: skipped");
        return;
    };
    let n: usize = std::env::var("GIT_WS_DIFF_BRANCHES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let seeds: u64 = std::env::var("GIT_WS_DIFF_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let files = files_of_head(Path::new(&src));
    // The most-edited kind of file: the biggest source files, and the changelog.
    let mut by_size: Vec<(&String, usize)> = files
        .iter()
        .filter(|(p, (d, _))| {
            (p.ends_with(".py") || p.ends_with(".rs") || p.ends_with(".rst") || p.ends_with(".md"))
                && !d.contains(&0)
        })
        .map(|(p, (d, _))| (p, d.len()))
        .collect();
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let mut hot: Vec<String> = by_size.iter().take(4).map(|(p, _)| (*p).clone()).collect();
    // Files the project gives a merge attribute (merge=union, …) are edited as often.
    if let Some((data, _)) = files.get(".gitattributes") {
        let rules = super::attributes::parse(data, "", true);
        let mut attributed: Vec<String> = files
            .keys()
            .filter(|p| super::attributes::lookup(&[&rules], p).contains_key("merge"))
            .take(4)
            .cloned()
            .collect();
        eprintln!("{src}: files with a merge attribute edited often: {attributed:?}");
        hot.append(&mut attributed);
    }
    let mut failures = Vec::new();
    for seed in 1..=seeds {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let base = commit(&repo, &files, None, "base");
        // Checked out, as in a user's repository: git reads `.gitattributes` from there.
        repo.set_head_detached(base).unwrap();
        repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
            .unwrap();
        let mut rng = Rng::new(seed * 7919);
        let mut branches = Vec::new();
        for i in 0..n {
            let name = format!("r{i}");
            let mut f = files.clone();
            let mut what = vec![realistic_edit(&mut rng, &mut f, &name, &hot)];
            for _ in 0..rng.below(3) {
                what.push(realistic_edit(&mut rng, &mut f, &name, &hot));
            }
            let tip = commit(&repo, &f, Some(base), &name);
            repo.reference(&format!("refs/heads/{name}"), tip, true, "gen")
                .unwrap();
            branches.push((name, tip, what.join("; ")));
        }
        let s = Scenario {
            dir,
            base,
            branches,
        };
        for git in gits() {
            let t = compare_with(&s, &git, true, true);
            let v = git_at(&git, Path::new("."), &["--version"]);
            let (precision, recall) = t.precision_recall();
            eprintln!(
                "{src} seed {seed}, {}: {} ordered pairs, {} conflicting, {} agree, {} disagree; conflict prediction precision {precision:.2} recall {recall:.2} ({} true, {} false, {} missed); {} clean merged trees compared",
                String::from_utf8_lossy(&v.stdout).trim(),
                t.pairs,
                t.conflicting,
                t.pairs - t.mismatches.len(),
                t.mismatches.len(),
                t.true_conflicts,
                t.false_conflicts,
                t.missed_conflicts,
                t.trees_compared
            );
            failures.extend(t.mismatches);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The attribute scenario's `.gitattributes`: one file per way git merges a file.
const ATTRIBUTES: &str = "\
*.log merge=union
assets/*.dat merge=binary
pinned.txt -merge
notes/*.txt merge=text
*.img binary
drv/*.cfg merge=sorted
drv/*.fail merge=failing
drv/*.nodrv merge=unconfigured
markers/* merge=sorted conflict-marker-size=3
";

/// The attributed files, all text.
const ATTRIBUTED: [&str; 9] = [
    "changes.log",
    "assets/table.dat",
    "pinned.txt",
    "notes/todo.txt",
    "pic.img",
    "drv/app.cfg",
    "drv/app.fail",
    "drv/app.nodrv",
    "markers/m.cfg",
];

/// A repository whose working tree holds [`ATTRIBUTES`] (checked out from the base, as in a
/// user's repository), with two drivers configured: `sorted` (the sorted union of both
/// sides, then a line with the marker size and the path; exit 0) and `failing` (takes
/// theirs, exit 1). Branches `t0`, `t1`, … each make one or two edits to attributed files:
/// appends (which conflict under the text merge), line edits far apart or adjacent.
/// (Two or three edits each, so that about a quarter of the pairs conflict.)
pub(crate) fn attribute_scenario(seed: u64, n: usize) -> Scenario {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    {
        let mut cfg = repo.config().unwrap();
        cfg.set_str(
            "merge.sorted.driver",
            "sort -u %A %B > %A.sorted && echo \"size %L\" %P >> %A.sorted && cat %A.sorted > %A && rm -f %A.sorted",
        )
        .unwrap();
        cfg.set_str("merge.failing.driver", "cat %B > %A; exit 1")
            .unwrap();
    }
    let mut files = Files::new();
    files.insert(
        ".gitattributes".into(),
        (ATTRIBUTES.as_bytes().to_vec(), REG),
    );
    for p in ATTRIBUTED {
        files.insert(p.to_string(), (text(12, p), REG));
    }
    files.insert("plain.txt".into(), (text(12, "plain"), REG));
    let base = commit(&repo, &files, None, "base");
    repo.set_head_detached(base).unwrap();
    repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .unwrap();
    let mut rng = Rng::new(seed);
    let mut branches = Vec::new();
    let mut targets: Vec<&str> = ATTRIBUTED.to_vec();
    targets.push("plain.txt");
    for i in 0..n {
        let name = format!("t{i}");
        let mut f = files.clone();
        let mut what = Vec::new();
        for _ in 0..2 + rng.below(2) {
            let p = *rng.pick(&targets);
            let (d, _) = f.get_mut(p).unwrap();
            let mut lines = lines_of(d);
            match rng.below(4) {
                0 | 1 => {
                    lines.push(format!("{name} appended this\n"));
                    what.push(format!("append {p}"));
                }
                _ => {
                    // Lines 1, 3 (adjacent to 1 and 5) or 9: some pairs conflict.
                    let at = [1, 3, 9][rng.below(3)];
                    lines[at] = format!("{name} changed this line\n");
                    what.push(format!("modify {p}:{at}"));
                }
            }
            *d = lines.concat().into_bytes();
        }
        let tip = commit(&repo, &f, Some(base), &name);
        repo.reference(&format!("refs/heads/{name}"), tip, true, "gen")
            .unwrap();
        branches.push((name, tip, what.join("; ")));
    }
    Scenario {
        dir,
        base,
        branches,
    }
}

/// Each attribute against git: clean or not, the conflicting paths, and, when clean, the
/// merged tree (union's lines, a driver's output with `%L` and `%P`), in both orders.
#[test]
fn differential_attributes_agree_with_git() {
    let s = attribute_scenario(11, 18);
    let git = PathBuf::from("git");
    let t = compare_with(&s, &git, true, true);
    let (precision, recall) = t.precision_recall();
    eprintln!(
        "differential (attributes): {} ordered pairs, {} conflicting per git, {} merged trees compared, precision {precision:.2}, recall {recall:.2}, {} mismatches",
        t.pairs,
        t.conflicting,
        t.trees_compared,
        t.mismatches.len()
    );
    assert!(
        t.mismatches.is_empty(),
        "{} of {} pairs disagree with git:\n{}",
        t.mismatches.len(),
        t.pairs,
        t.mismatches.join("\n")
    );
    assert!(t.conflicting > t.pairs / 10 && t.trees_compared > t.pairs / 4);
    // Every attribute takes part in clean merges and conflicts as git decides: each file's
    // result is checked below on pairs of single edits.
    attribute_cases(&git);
}

/// One pair per attribute, with what git answers spelled out, so that a change in how git
/// (or the engine) treats an attribute shows by name.
fn attribute_cases(git: &Path) {
    let s = attribute_scenario(0, 0);
    let repo = Repository::open(s.dir.path()).unwrap();
    let base_tree = repo.find_commit(s.base).unwrap().tree().unwrap();
    let mut base_files = Files::new();
    base_tree
        .walk(git2::TreeWalkMode::PreOrder, |dir, e| {
            if e.kind() == Some(git2::ObjectType::Blob) {
                let blob = repo.find_blob(e.id()).unwrap();
                base_files.insert(
                    format!("{dir}{}", e.name().unwrap()),
                    (blob.content().to_vec(), e.filemode() as u32),
                );
            }
            git2::TreeWalkResult::Ok
        })
        .unwrap();
    let branch = |name: &str, path: &str| -> (String, Oid) {
        let mut f = base_files.clone();
        f.get_mut(path)
            .unwrap()
            .0
            .extend(format!("{name} appended this\n").bytes());
        let tip = commit(&repo, &f, Some(s.base), name);
        repo.reference(&format!("refs/heads/{name}"), tip, true, "case")
            .unwrap();
        (name.to_string(), tip)
    };
    // Both sides append to the file: only the text merge conflicts on that.
    let expect_clean = [
        ("changes.log", true),
        ("assets/table.dat", false),
        ("pinned.txt", false),
        ("notes/todo.txt", false),
        ("pic.img", false),
        ("drv/app.cfg", true),
        ("drv/app.fail", false),
        ("drv/app.nodrv", false),
        ("markers/m.cfg", true),
        ("plain.txt", false),
    ];
    for (k, (path, clean)) in expect_clean.iter().enumerate() {
        let x = branch(&format!("x{k}"), path);
        let y = branch(&format!("y{k}"), path);
        let (theirs, git_tree) = git_merge_tree_full(git, s.dir.path(), &x.0, &y.0);
        assert_eq!(theirs.is_none(), *clean, "git on {path}: {theirs:?}");
        let mine = engine_tree(&repo, s.base, &x, &y);
        assert_eq!(mine.is_some(), *clean, "engine on {path}");
        if let Some(t) = mine {
            assert_eq!(t.to_string(), git_tree, "merged tree for {path}");
            let blob = repo
                .find_tree(t)
                .unwrap()
                .get_path(Path::new(path))
                .unwrap()
                .id();
            let merged =
                String::from_utf8(repo.find_blob(blob).unwrap().content().to_vec()).unwrap();
            assert!(
                merged.contains(&format!("x{k} appended this\ny{k} appended this\n"))
                    || merged.contains(&format!(
                        "size {}",
                        if path.starts_with("markers") { 3 } else { 7 }
                    )),
                "{path}: {merged}"
            );
            if path.ends_with(".cfg") {
                let size = if path.starts_with("markers") { 3 } else { 7 };
                assert!(
                    merged.ends_with(&format!("size {size} {path}\n")),
                    "{path}: {merged}"
                );
            }
        } else {
            assert_eq!(
                theirs,
                Some(BTreeSet::from([path.to_string()])),
                "git's conflict on {path}"
            );
        }
    }
}

/// Per attributed file, over every ordered pair of branches that both changed it: how many
/// such pairs, how many git finds conflicting there, and how many the engine agrees on
/// (the same verdict for that path and, when both merge cleanly, the same merged file).
pub(crate) fn per_attribute(s: &Scenario, git: &Path) -> BTreeMap<String, (usize, usize, usize)> {
    let repo = Repository::open(s.dir.path()).unwrap();
    let blob_at = |tree: Oid, p: &str| -> Option<Oid> {
        repo.find_tree(tree)
            .ok()?
            .get_path(Path::new(p))
            .ok()
            .map(|e| e.id())
    };
    let tree_of = |c: Oid| repo.find_commit(c).unwrap().tree_id();
    let base_tree = tree_of(s.base);
    let tips: Vec<(String, Oid)> = s.branches.iter().map(|(n, t, _)| (n.clone(), *t)).collect();
    let mut out: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    for x in 0..tips.len() {
        for y in 0..tips.len() {
            if x == y {
                continue;
            }
            let (tx, ty) = (tree_of(tips[x].1), tree_of(tips[y].1));
            let both: Vec<&str> = ATTRIBUTED
                .iter()
                .chain(["plain.txt"].iter())
                .copied()
                .filter(|p| {
                    blob_at(tx, p) != blob_at(base_tree, p)
                        && blob_at(ty, p) != blob_at(base_tree, p)
                })
                .collect();
            if both.is_empty() {
                continue;
            }
            let (theirs, git_tree) = git_merge_tree_full(git, s.dir.path(), &tips[x].0, &tips[y].0);
            let base_tree_obj = repo.find_commit(s.base).unwrap().tree().unwrap();
            let b = Base::new(base_tree_obj.clone());
            let side = |(name, tip): &(String, Oid)| {
                let tree = repo.find_commit(*tip).unwrap().tree().unwrap();
                Side::from_trees(&repo, &base_tree_obj, tree, name).unwrap()
            };
            let (ours_side, theirs_side) = (side(&tips[x]), side(&tips[y]));
            let o = treemerge::merge(&repo, &b, &ours_side, &theirs_side, true).unwrap();
            let mine_paths: BTreeSet<String> = o.conflict_paths().into_iter().collect();
            let mine_tree = o.is_clean().then(|| {
                treemerge::apply_to_tree(&repo, &ours_side.tree, &o, |p| ours_side.at(p, &b))
                    .unwrap()
                    .id()
            });
            let git_tree = Oid::from_str(&git_tree).unwrap();
            for p in both {
                let git_conflict = theirs.as_ref().is_some_and(|c| c.contains(p));
                let agree = git_conflict == mine_paths.contains(p)
                    && match (theirs.is_none(), mine_tree) {
                        (true, Some(t)) => blob_at(t, p) == blob_at(git_tree, p),
                        _ => true,
                    };
                let e = out.entry(p.to_string()).or_default();
                e.0 += 1;
                e.1 += usize::from(git_conflict);
                e.2 += usize::from(agree);
            }
        }
    }
    out
}

/// The attribute scenarios per attributed file, against every git found: the counts a
/// closing note quotes. `GIT_WS_DIFF_SEEDS` (default 5) scenarios of 24 branches.
#[test]
#[ignore]
fn differential_per_attribute() {
    let seeds: u64 = std::env::var("GIT_WS_DIFF_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let mut bad = Vec::new();
    for git in gits() {
        let mut total: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
        for seed in 1..=seeds {
            let s = attribute_scenario(seed * 1000 + 29, 24);
            for (p, (n, c, a)) in per_attribute(&s, &git) {
                let e = total.entry(p).or_default();
                e.0 += n;
                e.1 += c;
                e.2 += a;
            }
        }
        let v = git_at(&git, Path::new("."), &["--version"]);
        for (p, (n, c, a)) in &total {
            let attr = ATTRIBUTES
                .lines()
                .find(|l| {
                    let pat = l.split_whitespace().next().unwrap_or("");
                    super::attributes::wildmatch(
                        pat.trim_start_matches('/').as_bytes(),
                        p.as_bytes(),
                    ) || (!pat.contains('/')
                        && super::attributes::wildmatch(
                            pat.as_bytes(),
                            p.rsplit('/').next().unwrap().as_bytes(),
                        ))
                })
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|| "(none)".to_string());
            eprintln!(
                "{} per attribute: {p} [{attr}]: {n} ordered pairs both changing it, {c} conflicting per git, {a} agree, {} disagree",
                String::from_utf8_lossy(&v.stdout).trim(),
                n - a
            );
            if a != n {
                bad.push(format!("{p}: {} disagree", n - a));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
