//! Tests of the merge forecast over real temporary repositories: pairs, clusters, the
//! explained order (checked against git's own sequential merges), file/directory clashes,
//! renames, determinism, and the shape of a dense run.

use super::differential_tests::{base_files, commit, git_at, git_merge_tree, scenario, Files};
use super::{merge_forecast, RepoPaths};
use git2::{Oid, Repository};
use std::path::{Path, PathBuf};
use ws_core::model::MergeForecast;
use ws_core::text::natural_cmp;

pub(crate) struct Fixture {
    pub dir: tempfile::TempDir,
    pub repo: Repository,
    pub base: Oid,
    pub files: Files,
}

impl Fixture {
    pub fn new(files: Files) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let base = commit(&repo, &files, None, "base");
        repo.reference("refs/heads/main", base, true, "t").unwrap();
        repo.set_head("refs/heads/main").unwrap();
        Fixture {
            dir,
            repo,
            base,
            files,
        }
    }

    pub fn paths(&self) -> RepoPaths {
        RepoPaths::new(self.dir.path().to_path_buf(), self.dir.path().join(".git"))
    }

    /// Branch `ws/t/<ws>` from the base with `edit` applied to the base files.
    pub fn branch(&self, ws: &str, edit: impl FnOnce(&mut Files)) -> Oid {
        let mut f = self.files.clone();
        edit(&mut f);
        let tip = commit(&self.repo, &f, Some(self.base), ws);
        self.repo
            .reference(&format!("refs/heads/ws/t/{ws}"), tip, true, "t")
            .unwrap();
        tip
    }

    pub fn forecast(&self, ids: &[&str]) -> MergeForecast {
        let branches: Vec<(String, String)> = ids
            .iter()
            .map(|w| (w.to_string(), format!("ws/t/{w}")))
            .collect();
        merge_forecast(&self.paths(), &self.base.to_string(), &branches).unwrap()
    }

    fn objects(&self) -> usize {
        let mut n = 0;
        for d in std::fs::read_dir(self.dir.path().join(".git/objects")).unwrap() {
            let d = d.unwrap();
            if d.file_name().len() == 2 {
                n += std::fs::read_dir(d.path()).unwrap().count();
            }
        }
        n
    }
}

pub(crate) fn lines(n: usize, tag: &str) -> Vec<u8> {
    (1..=n)
        .map(|i| format!("{tag} {i}\n"))
        .collect::<String>()
        .into_bytes()
}

fn set(f: &mut Files, path: &str, data: &[u8]) {
    let mode = f.get(path).map_or(0o100644, |e| e.1);
    f.insert(path.to_string(), (data.to_vec(), mode));
}

fn replace_line(f: &mut Files, path: &str, n: usize, with: &str) {
    let text = String::from_utf8(f[path].0.clone()).unwrap();
    let mut l: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    l[n - 1] = format!("{with}\n");
    set(f, path, l.concat().as_bytes());
}

fn small_base() -> Files {
    let mut f = Files::new();
    f.insert("shared.txt".into(), (lines(30, "line"), 0o100644));
    f.insert("other.txt".into(), (b"other\n".to_vec(), 0o100644));
    f.insert("bin.dat".into(), (vec![0, 1, 2, 3], 0o100644));
    f.insert("x/old.txt".into(), (lines(20, "old"), 0o100644));
    f
}

#[test]
fn pairs_clusters_and_an_explained_order() {
    let t = Fixture::new(small_base());
    t.branch("a", |f| {
        replace_line(f, "shared.txt", 2, "A two");
        set(f, "bin.dat", &[0, 9, 9]);
    });
    t.branch("b", |f| {
        replace_line(f, "shared.txt", 2, "B two");
        set(f, "bin.dat", &[0, 8, 8]);
    });
    t.branch("c", |f| replace_line(f, "shared.txt", 25, "C twenty-five"));
    t.branch("d", |f| set(f, "other.txt", b"changed\n"));
    let before = t.objects();
    let f = t.forecast(&["b", "a", "c", "d"]);

    let pairs: Vec<(&str, &str, usize)> = f
        .pairs
        .iter()
        .map(|p| (p.a.as_str(), p.b.as_str(), p.conflict_paths.len()))
        .collect();
    assert_eq!(pairs, vec![("a", "b", 2), ("a", "c", 0), ("b", "c", 0)]);
    let ab = &f.pairs[0];
    assert_eq!(ab.conflict_paths, vec!["bin.dat", "shared.txt"]);
    assert_eq!(ab.hunks[0].text, "binary file changed in both a and b");
    assert_eq!(
        ab.hunks[1].text,
        "line 1\n<<<<<<< a\nA two\n||||||| base\nline 2\n=======\nB two\n>>>>>>> b\nline 3\nline 4"
    );

    let clusters: Vec<(&str, &str, Vec<&str>)> = f
        .clusters
        .iter()
        .map(|c| {
            (
                c.path.as_str(),
                c.kind.as_str(),
                c.workstreams.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        clusters,
        vec![
            ("bin.dat", "file", vec!["a", "b"]),
            ("shared.txt", "lines", vec!["a", "b", "c"]),
        ]
    );
    assert_eq!(f.clusters[1].lines, Some((2, 25)));
    assert!(f.clusters.iter().all(|c| c.all_pairs));

    // d overlaps nothing; c overlaps two; a and b three each, a first by id; b needs a
    // rebase onto a and says so.
    let order: Vec<(&str, bool, Vec<&str>)> = f
        .merge_order
        .iter()
        .map(|s| {
            (
                s.workstream_id.as_str(),
                s.clean,
                s.partners.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        order,
        vec![
            ("d", true, vec![]),
            ("c", true, vec![]),
            ("a", true, vec!["c"]),
            ("b", false, vec!["a"]),
        ]
    );
    assert_eq!(
        f.merge_order[0].reason,
        "changes nothing another workstream changes"
    );
    assert_eq!(
        f.merge_order[2].reason,
        "merges cleanly after c (clusters #1, #2)"
    );
    assert_eq!(
        f.merge_order[3].reason,
        "needs a rebase: conflicts with a in bin.dat, shared.txt"
    );
    assert_eq!(
        f.merge_order[3].conflict_paths,
        vec!["bin.dat", "shared.txt"]
    );

    // Deterministic whatever the input order; nothing written to the repository.
    assert_eq!(t.forecast(&["d", "c", "b", "a"]), f);
    assert_eq!(t.objects(), before);
    // The first shape keeps the order.
    let compat = ws_core::model::Forecast::from_merge_forecast(&f);
    assert_eq!(compat.merge_order.len(), 4);
    assert!(!compat.merge_order[3].clean);
}

#[test]
fn a_file_where_another_makes_a_directory_names_its_partner() {
    let mut base = small_base();
    base.insert("docs/index.md".into(), (b"docs\n".to_vec(), 0o100644));
    let t = Fixture::new(base);
    t.branch("file", |f| set(f, "docs/extra", b"a file\n"));
    t.branch("dir", |f| set(f, "docs/extra/page.rst", b"a page\n"));
    let f = t.forecast(&["file", "dir"]);
    assert_eq!(f.pairs.len(), 1);
    assert_eq!(f.pairs[0].conflict_paths, vec!["docs/extra"]);
    assert_eq!(f.pairs[0].common_paths, vec!["docs/extra"]);
    assert_eq!(
        f.pairs[0].hunks[0].text,
        "file has a file docs/extra where dir has a directory"
    );
    assert_eq!(f.clusters.len(), 1);
    assert_eq!(f.clusters[0].kind, "file/directory");
    let last = f.merge_order.last().unwrap();
    assert!(!last.clean);
    assert_eq!(last.conflict_paths, vec!["docs/extra"]);
    assert_eq!(last.partners.len(), 1);
    assert!(last.reason.contains("conflicts with"), "{}", last.reason);
}

#[test]
fn a_rename_and_an_edit_of_the_old_path_overlap() {
    let t = Fixture::new(small_base());
    t.branch("mv", |f| {
        let e = f.remove("x/old.txt").unwrap();
        f.insert("x/new.txt".into(), e);
    });
    t.branch("edit", |f| replace_line(f, "x/old.txt", 5, "edited"));
    t.branch("clash", |f| replace_line(f, "x/old.txt", 5, "clashing"));
    let f = t.forecast(&["mv", "edit", "clash"]);
    assert_eq!(f.overlaps.len(), 1);
    assert_eq!(f.overlaps[0].path, "x/old.txt");
    assert_eq!(f.overlaps[0].workstreams, vec!["clash", "edit", "mv"]);
    let pair = |a: &str, b: &str| {
        f.pairs
            .iter()
            .find(|p| p.a == a && p.b == b)
            .unwrap_or_else(|| panic!("no pair {a} {b}: {:?}", f.pairs))
    };
    // The edit follows the rename.
    assert!(pair("edit", "mv").conflict_paths.is_empty());
    assert_eq!(pair("edit", "mv").common_paths, vec!["x/old.txt"]);
    assert_eq!(pair("clash", "edit").conflict_paths, vec!["x/old.txt"]);
    // A conflicting edit of a renamed file conflicts at the new path only, as in git.
    let t2 = Fixture::new(small_base());
    t2.branch("mv", |f| {
        let mut e = f.remove("x/old.txt").unwrap();
        let text = String::from_utf8(e.0)
            .unwrap()
            .replace("old 5\n", "moved 5\n");
        e.0 = text.into_bytes();
        f.insert("x/new.txt".into(), e);
    });
    t2.branch("edit", |f| replace_line(f, "x/old.txt", 5, "edited"));
    let f2 = t2.forecast(&["mv", "edit"]);
    assert_eq!(f2.pairs[0].conflict_paths, vec!["x/new.txt"]);
    assert_eq!(
        git_merge_tree(Path::new("git"), t2.dir.path(), "ws/t/mv", "ws/t/edit")
            .map(|s| s.into_iter().collect::<Vec<_>>()),
        Some(vec!["x/new.txt".to_string()])
    );
}

/// Replay the forecast's order with git: in sort-key order, `git merge-tree` each branch
/// onto the accumulated merges; a clean step must merge cleanly, a rebase step must not.
#[test]
fn the_order_agrees_with_sequential_git_merges() {
    let git = PathBuf::from("git");
    let mut steps_checked = 0;
    for seed in [3u64, 11, 19, 27, 35] {
        let s = scenario(seed, 24);
        let paths = RepoPaths::new(s.dir.path().to_path_buf(), s.dir.path().join(".git"));
        let branches: Vec<(String, String)> = s
            .branches
            .iter()
            .map(|(n, _, _)| (n.clone(), n.clone()))
            .collect();
        let f = merge_forecast(&paths, &s.base.to_string(), &branches).unwrap();
        assert_eq!(f.merge_order.len(), 24);
        let mut replay = f.merge_order.clone();
        replay.sort_by(|x, y| {
            (x.overlapping, x.change_size)
                .cmp(&(y.overlapping, y.change_size))
                .then_with(|| natural_cmp(&x.workstream_id, &y.workstream_id))
        });
        let mut acc = s.base.to_string();
        for step in &replay {
            let out = git_at(
                &git,
                s.dir.path(),
                &["merge-tree", "--write-tree", &acc, &step.workstream_id],
            );
            let clean = out.status.code() == Some(0);
            assert_eq!(
                clean,
                step.clean,
                "seed {seed}: {} ({}): git says clean={clean}: {}",
                step.workstream_id,
                step.reason,
                String::from_utf8_lossy(&out.stdout)
            );
            if clean {
                let tree = String::from_utf8_lossy(&out.stdout).trim().to_string();
                let c = git_at(
                    &git,
                    s.dir.path(),
                    &[
                        "-c",
                        "user.name=t",
                        "-c",
                        "user.email=t@t",
                        "commit-tree",
                        &tree,
                        "-p",
                        &acc,
                        "-p",
                        &step.workstream_id,
                        "-m",
                        "step",
                    ],
                );
                assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
                acc = String::from_utf8_lossy(&c.stdout).trim().to_string();
            } else {
                assert!(!step.partners.is_empty(), "{step:?}");
            }
            steps_checked += 1;
        }
        // Clean steps come first, rebase steps last.
        let first_rebase = f.merge_order.iter().position(|s| !s.clean).unwrap_or(24);
        assert!(f.merge_order[first_rebase..].iter().all(|s| !s.clean));
    }
    eprintln!("forecast order: {steps_checked} steps agree with git's sequential merges");
}

#[test]
fn a_dense_run_stays_linear() {
    // Every workstream appends to CHANGELOG.md: one cluster, one clean step, the rest
    // rebase onto it, and one pair per rebase, not every pair.
    let n = 3 * MergeForecast::PAIRWISE_LIMIT;
    let t = Fixture::new(base_files());
    let ids: Vec<String> = (1..=n).map(|i| format!("ws-{i:02}")).collect();
    for id in &ids {
        t.branch(id, |f| {
            f.get_mut("CHANGELOG.md")
                .unwrap()
                .0
                .extend(format!("- {id}\n").bytes())
        });
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let f = t.forecast(&refs);
    assert_eq!(f.clusters.len(), 1);
    assert!(!f.clusters[0].all_pairs);
    assert_eq!(f.clusters[0].workstreams.len(), n);
    assert_eq!(f.pairs.len(), n - 1);
    assert_eq!(f.clusters[0].conflicting_pairs, n - 1);
    assert!(f.merge_order[0].clean);
    assert_eq!(f.merge_order[0].workstream_id, "ws-01");
    for s in &f.merge_order[1..] {
        assert!(!s.clean);
        assert_eq!(s.partners, vec!["ws-01"]);
        assert_eq!(s.conflict_paths, vec!["CHANGELOG.md"]);
    }
    assert_eq!(f.overlaps.len(), 1);
}
