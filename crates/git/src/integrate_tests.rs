//! Integration engine tests on real repositories: conflicts left out, a pair of branches
//! that each pass but break the tests together found by bisection with real test
//! processes, the user's HEAD, index and worktree untouched, deterministic commits, dry runs
//! that write nothing, and writing the branch.

use super::bisect::max_test_runs;
use super::differential_tests::{git_at, Files};
use super::forecast_tests::Fixture;
use super::{integrate, integrate_and_test, write_integration_branch, ExclusionReason, Objects};
use git2::{ObjectType, Repository, TreeWalkMode, TreeWalkResult};
use std::path::Path;
use std::process::Command;

fn file(f: &mut Files, path: &str, text: &str) {
    f.insert(path.to_string(), (text.as_bytes().to_vec(), 0o100644));
}

/// A shell project: `lib.sh` defines greet, `main.sh` calls it, `test.sh` runs every
/// `*-check.sh` and main.sh.
fn project() -> Fixture {
    let mut f = Files::new();
    file(&mut f, "lib.sh", "greet() { echo \"hello $1\"; }\n");
    file(&mut f, "main.sh", ". ./lib.sh\ngreet world\n");
    file(
        &mut f,
        "test.sh",
        "set -e\nsh main.sh >/dev/null\nfor c in *-check.sh; do [ -e \"$c\" ] || continue; sh \"$c\" >/dev/null; done\necho ok\n",
    );
    file(&mut f, "README.md", "# Project\n\nA line everyone edits.\n");
    let t = Fixture::new(f);
    t.branch("docs", |f| file(f, "docs/usage.md", "run main.sh\n"));
    t.branch("readme-a", |f| {
        file(f, "README.md", "# Project\n\nA's version.\n")
    });
    t.branch("readme-b", |f| {
        file(f, "README.md", "# Project\n\nB's version.\n")
    });
    t.branch("rename", |f| {
        file(f, "lib.sh", "say_hello() { echo \"hello $1\"; }\n");
        file(f, "main.sh", ". ./lib.sh\nsay_hello world\n");
    });
    t.branch("caller", |f| {
        file(f, "extra-check.sh", ". ./lib.sh\ngreet extra\n")
    });
    t
}

fn tip_of(t: &Fixture, ws: &str) -> String {
    t.repo
        .refname_to_id(&format!("refs/heads/ws/t/{ws}"))
        .unwrap()
        .to_string()
}

fn order(t: &Fixture) -> Vec<(String, String)> {
    ["docs", "readme-a", "readme-b", "rename", "caller"]
        .iter()
        .map(|w| (w.to_string(), tip_of(t, w)))
        .collect()
}

/// Write the tree of `commit` into `dir` and run `sh test.sh` there.
fn run_tests(repo: &Repository, commit: &str, dir: &Path) -> bool {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let tree = repo
        .find_commit(git2::Oid::from_str(commit).unwrap())
        .unwrap()
        .tree()
        .unwrap();
    tree.walk(TreeWalkMode::PreOrder, |parent, e| {
        if e.kind() == Some(ObjectType::Blob) {
            let p = dir.join(parent).join(e.name().unwrap());
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            let blob = repo.find_blob(e.id()).unwrap();
            std::fs::write(p, blob.content()).unwrap();
        }
        TreeWalkResult::Ok
    })
    .unwrap();
    Command::new("sh")
        .arg("test.sh")
        .current_dir(dir)
        .output()
        .unwrap()
        .status
        .success()
}

fn loose_objects(t: &Fixture) -> usize {
    std::fs::read_dir(t.dir.path().join(".git/objects"))
        .unwrap()
        .flatten()
        .filter(|d| d.file_name().len() == 2)
        .map(|d| std::fs::read_dir(d.path()).unwrap().count())
        .sum()
}

#[test]
fn conflicts_are_left_out_and_commits_name_the_workstream() {
    let t = project();
    let before = loose_objects(&t);
    let onto = t.base.to_string();
    let dry = integrate(&t.paths(), "run-1", &onto, &order(&t), Objects::InMemory).unwrap();
    assert_eq!(loose_objects(&t), before, "a dry run writes nothing");
    let merged: Vec<&str> = dry
        .merged
        .iter()
        .map(|s| s.workstream_id.as_str())
        .collect();
    assert_eq!(merged, ["docs", "readme-a", "rename", "caller"]);
    assert_eq!(dry.excluded.len(), 1);
    let x = &dry.excluded[0];
    assert_eq!(
        (x.workstream_id.as_str(), x.reason),
        ("readme-b", ExclusionReason::Conflict)
    );
    assert_eq!(x.paths, ["README.md"]);
    assert_eq!(x.detail, "conflicts with readme-a in README.md");
    assert_eq!(dry.tip, dry.merged.last().unwrap().merge_commit);

    // For real: the same commits (deterministic), each a merge naming workstream and run.
    let real = integrate(&t.paths(), "run-1", &onto, &order(&t), Objects::Write).unwrap();
    assert_eq!(real, dry);
    let mut parent = onto.clone();
    for step in &real.merged {
        let c = t
            .repo
            .find_commit(git2::Oid::from_str(&step.merge_commit).unwrap())
            .unwrap();
        assert_eq!(
            c.summary().unwrap().unwrap(),
            format!("Merge workstream {} (git-ws run run-1)", step.workstream_id)
        );
        let parents: Vec<String> = c.parent_ids().map(|p| p.to_string()).collect();
        assert_eq!(parents, [parent.clone(), step.tip.clone()]);
        parent = step.merge_commit.clone();
    }
    // git agrees that the integrated tree is the merge of those branches.
    let check = git_at(
        Path::new("git"),
        t.dir.path(),
        &[
            "merge-tree",
            "--write-tree",
            &real.merged[2].merge_commit,
            &tip_of(&t, "caller"),
        ],
    );
    assert!(check.status.success());
    let tree = t
        .repo
        .find_commit(git2::Oid::from_str(&real.tip).unwrap())
        .unwrap()
        .tree_id();
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        tree.to_string()
    );
}

#[test]
fn branches_that_break_the_tests_together_are_found_by_bisection() {
    let t = project();
    let onto = t.base.to_string();
    let head_before = t.repo.head().unwrap().target().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    // Each branch passes on its own.
    for ws in ["rename", "caller"] {
        let one = integrate(
            &t.paths(),
            "r",
            &onto,
            &[(ws.to_string(), tip_of(&t, ws))],
            Objects::Write,
        )
        .unwrap();
        assert!(
            run_tests(&t.repo, &one.tip, scratch.path()),
            "{ws} alone passes"
        );
    }
    let mut runs = 0;
    let (it, bis) =
        integrate_and_test::<super::GitError>(&t.paths(), "run-2", &onto, &order(&t), |tip| {
            runs += 1;
            Ok(run_tests(&t.repo, tip, scratch.path()))
        })
        .unwrap();
    let merged: Vec<&str> = it.merged.iter().map(|s| s.workstream_id.as_str()).collect();
    assert_eq!(merged, ["docs", "readme-a", "rename"]);
    let reasons: Vec<(&str, ExclusionReason, Vec<String>)> = it
        .excluded
        .iter()
        .map(|x| (x.workstream_id.as_str(), x.reason, x.broke_with.clone()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("readme-b", ExclusionReason::Conflict, vec![]),
            (
                "caller",
                ExclusionReason::BreaksTests,
                vec!["rename".to_string()]
            ),
        ]
    );
    assert_eq!(it.test_runs, runs);
    assert_eq!(bis.culprits.len(), 1);
    assert!(runs <= max_test_runs(4, 1), "{runs} test runs");
    eprintln!(
        "bisection over 4 merges: {runs} test runs (bound {})",
        max_test_runs(4, 1)
    );
    // The integrated tip really passes; the user's HEAD and files are untouched.
    assert!(run_tests(&t.repo, &it.tip, scratch.path()));
    assert_eq!(t.repo.head().unwrap().target().unwrap(), head_before);
    assert!(!t.dir.path().join("extra-check.sh").exists());

    // Writing the branch is separate, and idempotent.
    write_integration_branch(&t.paths(), "ws/run-2/integration", &it.tip).unwrap();
    write_integration_branch(&t.paths(), "ws/run-2/integration", &it.tip).unwrap();
    assert_eq!(
        t.repo
            .refname_to_id("refs/heads/ws/run-2/integration")
            .unwrap()
            .to_string(),
        it.tip
    );
    let again =
        integrate_and_test::<super::GitError>(&t.paths(), "run-2", &onto, &order(&t), |tip| {
            Ok(run_tests(&t.repo, tip, scratch.path()))
        })
        .unwrap();
    assert_eq!(again.0.tip, it.tip, "a second run gives the same tip");
    // The checked-out branch is refused.
    assert!(write_integration_branch(&t.paths(), "main", &it.tip)
        .unwrap_err()
        .to_string()
        .contains("checked out"));
}

#[test]
fn integrating_in_the_forecast_order_merges_every_clean_step() {
    // The forecast and the integration share one merge engine: following the forecast's
    // order, every step it calls clean is merged, and only steps it says need a rebase are
    // left out.
    let s = super::differential_tests::scenario(5, 24);
    let paths = super::RepoPaths::new(s.dir.path().to_path_buf(), s.dir.path().join(".git"));
    let branches: Vec<(String, String)> = s
        .branches
        .iter()
        .map(|(n, _, _)| (n.clone(), n.clone()))
        .collect();
    let f = super::merge_forecast(&paths, &s.base.to_string(), &branches).unwrap();
    let tips: Vec<(String, String)> = f
        .merge_order
        .iter()
        .map(|step| {
            let tip = s
                .branches
                .iter()
                .find(|b| b.0 == step.workstream_id)
                .unwrap()
                .1;
            (step.workstream_id.clone(), tip.to_string())
        })
        .collect();
    let it = integrate(&paths, "r", &s.base.to_string(), &tips, Objects::InMemory).unwrap();
    let clean: Vec<&str> = f
        .merge_order
        .iter()
        .filter(|x| x.clean)
        .map(|x| x.workstream_id.as_str())
        .collect();
    let merged: Vec<&str> = it.merged.iter().map(|x| x.workstream_id.as_str()).collect();
    assert_eq!(&merged[..clean.len()], &clean[..]);
    for x in &it.excluded {
        let step = f
            .merge_order
            .iter()
            .find(|s| s.workstream_id == x.workstream_id)
            .unwrap();
        assert!(!step.clean, "{x:?}");
        assert_eq!(x.reason, ExclusionReason::Conflict);
    }
    assert!(!it.excluded.is_empty(), "the scenario has conflicts");
}

#[test]
fn parallel_batches_find_the_same_pair_and_start_with_onto() {
    let t = project();
    let onto = t.base.to_string();
    let scratch = tempfile::tempdir().unwrap();
    let mut batches: Vec<Vec<Vec<String>>> = Vec::new();
    let (it, pb) = super::integrate::integrate_and_test_parallel::<super::GitError>(
        &t.paths(),
        "run-3",
        &onto,
        &order(&t),
        3,
        |its| {
            assert!(its.len() <= 3);
            batches.push(
                its.iter()
                    .map(|i| i.merged.iter().map(|s| s.workstream_id.clone()).collect())
                    .collect(),
            );
            Ok(its
                .iter()
                .map(|i| run_tests(&t.repo, &i.tip, scratch.path()))
                .collect())
        },
    )
    .unwrap();
    assert!(!pb.base_failed);
    // The first batch tests onto alone alongside the longer candidates.
    assert!(batches[0][0].is_empty(), "{batches:?}");
    assert!(batches[0].len() > 1, "{batches:?}");
    let merged: Vec<&str> = it.merged.iter().map(|s| s.workstream_id.as_str()).collect();
    assert_eq!(merged, ["docs", "readme-a", "rename"]);
    let breaker = it
        .excluded
        .iter()
        .find(|x| x.reason == ExclusionReason::BreaksTests)
        .unwrap();
    assert_eq!(breaker.workstream_id, "caller");
    assert_eq!(breaker.broke_with, vec!["rename".to_string()]);
    assert_eq!(pb.rounds, batches.len());
    assert_eq!(it.test_runs, batches.iter().map(Vec::len).sum::<usize>());
    assert!(pb.rounds <= super::bisect::max_rounds(4, 3, 1));
    assert!(run_tests(&t.repo, &it.tip, scratch.path()));
    // Onto failing stops after the first batch.
    let (_, pb) = super::integrate::integrate_and_test_parallel::<super::GitError>(
        &t.paths(),
        "run-3",
        &onto,
        &order(&t),
        3,
        |its| Ok(vec![false; its.len()]),
    )
    .unwrap();
    assert!(pb.base_failed && pb.rounds == 1);
}

/// Branches merged one at a time as they come (`git ws-run --integrate`) make the same
/// commits as one integration of them all, and what conflicts is left out as it comes.
#[test]
fn integrating_one_branch_at_a_time_makes_the_same_commits_as_all_at_once() {
    let t = project();
    let onto = t.base.to_string();
    let all = integrate(&t.paths(), "run-1", &onto, &order(&t), Objects::Write).unwrap();
    let mut it = integrate(&t.paths(), "run-1", &onto, &[], Objects::Write).unwrap();
    let mut left_out = Vec::new();
    for b in order(&t) {
        let mut next = super::integrate_more(&t.paths(), &it, &[b], &[]).unwrap();
        left_out.append(&mut next.excluded);
        it = next;
    }
    assert_eq!(it.merged, all.merged);
    assert_eq!(it.tip, all.tip);
    assert_eq!(left_out, all.excluded);
}
