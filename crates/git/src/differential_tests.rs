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
    if code == Some(0) {
        return None;
    }
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Some(
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
    )
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
}

/// Compare the engine with `git` on every pair of a scenario.
pub(crate) fn compare(s: &Scenario, git: &Path, both_orders: bool) -> Tally {
    let repo = Repository::open(s.dir.path()).unwrap();
    let tips: Vec<(String, Oid)> = s.branches.iter().map(|(n, t, _)| (n.clone(), *t)).collect();
    let engine = engine_pairs(&repo, s.base, &tips);
    let mut t = Tally {
        pairs: 0,
        conflicting: 0,
        mismatches: Vec::new(),
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
                let theirs = git_merge_tree(git, s.dir.path(), &tips[x].0, &tips[y].0);
                t.pairs += 1;
                if theirs.is_some() {
                    t.conflicting += 1;
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
    let hot: Vec<String> = by_size.iter().take(4).map(|(p, _)| (*p).clone()).collect();
    let mut failures = Vec::new();
    for seed in 1..=seeds {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let base = commit(&repo, &files, None, "base");
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
            let t = compare(&s, &git, true);
            let v = git_at(&git, Path::new("."), &["--version"]);
            eprintln!(
                "{src} seed {seed}, {}: {} ordered pairs, {} conflicting, {} agree, {} disagree",
                String::from_utf8_lossy(&v.stdout).trim(),
                t.pairs,
                t.conflicting,
                t.pairs - t.mismatches.len(),
                t.mismatches.len()
            );
            failures.extend(t.mismatches);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
