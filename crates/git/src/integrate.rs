//! The integration engine: merge a run's workstream branches one by one onto a commit, in
//! memory (no checkout: the user's worktree, index and HEAD are untouched), each as a merge
//! commit naming the workstream and the run, leaving out the branches that conflict with
//! what is already integrated; with a test callback, leave out the merges that break the
//! tests too ([`super::bisect`]). Writing the branch is a separate step
//! ([`write_branch`]), so a dry run writes nothing.

use super::bisect::{self, Bisection};
use super::repo::{open_main, parse_oid, Ctx};
use super::treemerge::{self, Base, Side};
use super::{GitError, RepoPaths};
use git2::{Commit, Oid, Repository, Signature, Time};
use serde::{Deserialize, Serialize};

/// Why a workstream was left out of the integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExclusionReason {
    /// It conflicts with what was integrated before it.
    Conflict,
    /// The tests fail with it (alone or together with an earlier merge).
    BreaksTests,
    /// Its workstream did not complete (decided by the caller, recorded here).
    NotCompleted,
    /// Its branch contains the commits of a workstream left out before it (a stacked
    /// dependency): merging it would bring that work in.
    DependencyLeftOut,
}

impl ExclusionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExclusionReason::Conflict => "conflict",
            ExclusionReason::BreaksTests => "breaks-tests",
            ExclusionReason::NotCompleted => "not-completed",
            ExclusionReason::DependencyLeftOut => "dependency-left-out",
        }
    }
}

/// A workstream left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    pub workstream_id: String,
    pub reason: ExclusionReason,
    /// For `conflict`: the conflicting paths.
    pub paths: Vec<String>,
    /// One sentence: what it conflicts with, or what it breaks the tests with.
    pub detail: String,
    /// For `breaks-tests`: the workstreams it broke the tests with (empty: on its own).
    pub broke_with: Vec<String>,
}

/// One merge of the integration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegratedStep {
    pub workstream_id: String,
    /// The branch tip merged (full SHA).
    pub tip: String,
    /// The merge commit made (full SHA): the integration's tip after this step.
    pub merge_commit: String,
}

/// The result of an integration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Integration {
    pub run_id: String,
    /// The commit integrated onto (full SHA).
    pub onto: String,
    /// In merge order.
    pub merged: Vec<IntegratedStep>,
    /// The final tip (full SHA): the last merge commit, or `onto` when nothing merged.
    pub tip: String,
    /// In the order they were met.
    pub excluded: Vec<Excluded>,
    /// How many times the tests ran (0 without a test).
    pub test_runs: usize,
}

/// Where objects go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objects {
    /// Into the repository's object database (a real integration).
    Write,
    /// Into memory only, dropped at the end (a dry run: nothing is written).
    InMemory,
}

/// Merge `branches` (workstream id, tip SHA), in the given order, onto `onto` (a commit
/// SHA). Each clean merge becomes a merge commit (parents: the integration so far, the
/// tip) whose message names the workstream and the run; a branch that conflicts with what
/// is integrated so far is left out with reason `conflict` and the paths. The commits are
/// deterministic (their time is the later of their parents'), so integrating the same
/// branches onto the same commit again gives the same SHAs.
pub fn integrate(
    repo: &RepoPaths,
    run_id: &str,
    onto: &str,
    branches: &[(String, String)],
    objects: Objects,
) -> Result<Integration, GitError> {
    let main = open_main(repo)?;
    let odb = main.odb().ctx(|| "open the object database".to_string())?;
    let _mempack = match objects {
        Objects::InMemory => Some(
            odb.add_new_mempack_backend(1000)
                .ctx(|| "add an in-memory object store".to_string())?,
        ),
        Objects::Write => None,
    };
    let mut engine = Engine::new(&main, run_id, onto)?;
    let mut excluded = Vec::new();
    for (ws, tip) in branches {
        if let Some(x) = engine.merge(ws, tip)? {
            excluded.push(x);
        }
    }
    Ok(engine.finish(excluded, 0))
}

/// Integrate as [`integrate`], then test the tip with `test(tip SHA)` (true: the tests
/// pass) and, while it fails, leave out the first merge that makes it fail (reason
/// `breaks-tests`, naming the earlier merge it fails with, if any), re-integrate the rest
/// and test again. The test runs at most `1 + 2⌈log2 n⌉` times per merge left out, plus
/// once when it passes ([`bisect::max_test_runs`]). Objects are written to the repository
/// (the tips must exist to be checked out and tested).
pub fn integrate_and_test<E: From<GitError>>(
    repo: &RepoPaths,
    run_id: &str,
    onto: &str,
    branches: &[(String, String)],
    mut test: impl FnMut(&str) -> Result<bool, E>,
) -> Result<(Integration, Bisection), E> {
    integrate_and_test_each(repo, run_id, onto, branches, |it| test(&it.tip))
}

/// [`integrate_and_test`], with the whole integration under test handed to `test` (its
/// tip, and which merges it holds).
pub fn integrate_and_test_each<E: From<GitError>>(
    repo: &RepoPaths,
    run_id: &str,
    onto: &str,
    branches: &[(String, String)],
    mut test: impl FnMut(&Integration) -> Result<bool, E>,
) -> Result<(Integration, Bisection), E> {
    let first = integrate(repo, run_id, onto, branches, Objects::Write)?;
    let merged: Vec<(String, String)> = first
        .merged
        .iter()
        .map(|s| (s.workstream_id.clone(), s.tip.clone()))
        .collect();
    let bisection = bisect::bisect(merged.len(), |seq| {
        let subset: Vec<(String, String)> = seq.iter().map(|&i| merged[i].clone()).collect();
        let it = integrate_from(repo, run_id, onto, None, &subset, &absent(&merged, seq))?;
        if !it.excluded.is_empty() {
            // Leaving a merge out made a later one conflict: this combination cannot be
            // built, so it cannot pass.
            return Ok(false);
        }
        test(&it)
    })?;
    let fin = conclude(repo, run_id, onto, first, &merged, &bisection)?;
    Ok((fin, bisection))
}

/// [`integrate_and_test_each`] with `jobs` tests at once: `test(integrations)` tests up to
/// `jobs` integrations in parallel (the first batch holds `onto` alone, with no merge) and
/// says which pass ([`bisect::bisect_parallel`]). When `onto` alone fails, the returned
/// bisection says `base_failed` and the integration is the untested first one.
pub fn integrate_and_test_parallel<E: From<GitError>>(
    repo: &RepoPaths,
    run_id: &str,
    onto: &str,
    branches: &[(String, String)],
    jobs: usize,
    mut test: impl FnMut(&[Integration]) -> Result<Vec<bool>, E>,
) -> Result<(Integration, bisect::ParallelBisection), E> {
    let first = integrate(repo, run_id, onto, branches, Objects::Write)?;
    let merged: Vec<(String, String)> = first
        .merged
        .iter()
        .map(|s| (s.workstream_id.clone(), s.tip.clone()))
        .collect();
    // Integrations built so far, by the merges they hold: a candidate continues from the
    // longest one it extends (the commits are deterministic, so this is the commit a build
    // from `onto` would make). The first integration's prefixes are known already.
    let mut built: std::collections::HashMap<Vec<usize>, Integration> =
        std::collections::HashMap::new();
    for i in 1..=first.merged.len() {
        built.insert(
            (0..i).collect(),
            Integration {
                run_id: first.run_id.clone(),
                onto: first.onto.clone(),
                merged: first.merged[..i].to_vec(),
                tip: first.merged[i - 1].merge_commit.clone(),
                excluded: Vec::new(),
                test_runs: 0,
            },
        );
    }
    let pb = bisect::bisect_parallel(merged.len(), jobs, true, |sets| -> Result<Vec<bool>, E> {
        let mut results: Vec<Option<bool>> = vec![None; sets.len()];
        let mut buildable: Vec<(usize, Integration)> = Vec::new();
        for (k, seq) in sets.iter().enumerate() {
            let from = (1..=seq.len())
                .rev()
                .find(|&l| built.contains_key(&seq[..l]));
            let more: Vec<(String, String)> = seq[from.unwrap_or(0)..]
                .iter()
                .map(|&i| merged[i].clone())
                .collect();
            let prev = from.map(|l| &built[&seq[..l]]);
            let it = integrate_from(repo, run_id, onto, prev, &more, &absent(&merged, seq))?;
            if it.excluded.is_empty() {
                built.insert(seq.clone(), it.clone());
                buildable.push((k, it));
            } else {
                // Leaving a merge out made a later one conflict: it cannot pass.
                results[k] = Some(false);
            }
        }
        let its: Vec<Integration> = buildable.iter().map(|(_, it)| it.clone()).collect();
        let passed = test(&its)?;
        for ((k, _), p) in buildable.iter().zip(passed) {
            results[*k] = Some(p);
        }
        Ok(results.into_iter().map(|r| r.unwrap_or(false)).collect())
    })?;
    if pb.base_failed {
        return Ok((first, pb));
    }
    let fin = conclude(repo, run_id, onto, first, &merged, &pb.bisection)?;
    Ok((fin, pb))
}

/// [`integrate`] of `more` onto `prev`, an integration onto `onto` (what was left out of
/// `prev` stays out and is not repeated; `absent`: the branches left out so far, with their
/// tips, so a stacked dependent of one is left out as `dependency-left-out`): integration as
/// branches come in, one after another. The commits are the ones [`integrate`] of all the
/// merged branches makes.
pub fn integrate_more(
    repo: &RepoPaths,
    prev: &Integration,
    more: &[(String, String)],
    absent: &[(String, String)],
) -> Result<Integration, GitError> {
    let mut base = prev.clone();
    base.excluded.clear();
    integrate_from(repo, &prev.run_id, &prev.onto, Some(&base), more, absent)
}

/// The merges of `merged` a bisection's candidate `seq` leaves out.
fn absent(merged: &[(String, String)], seq: &[usize]) -> Vec<(String, String)> {
    (0..merged.len())
        .filter(|i| !seq.contains(i))
        .map(|i| merged[i].clone())
        .collect()
}

/// [`integrate`] of `more` onto `prev` (an integration onto `onto` without exclusions), or
/// onto `onto` when there is none, with the merges `absent` taken as left out: a branch
/// of `more` holding the work of one of them (a stacked dependent) is left out
/// (`dependency-left-out`), so a candidate without a dependency never brings it in
/// through its dependent.
fn integrate_from(
    repo: &RepoPaths,
    run_id: &str,
    onto: &str,
    prev: Option<&Integration>,
    more: &[(String, String)],
    absent: &[(String, String)],
) -> Result<Integration, GitError> {
    let main = open_main(repo)?;
    let mut engine = Engine::new(&main, run_id, onto)?;
    for (ws, tip) in absent {
        engine.left_out.push((ws.clone(), parse_oid(tip)?));
    }
    if let Some(prev) = prev {
        engine.acc = main
            .find_commit(parse_oid(&prev.tip)?)
            .ctx(|| format!("read the integration commit {}", prev.tip))?;
        engine.merged = prev.merged.clone();
    }
    let mut excluded = Vec::new();
    for (ws, tip) in more {
        if let Some(x) = engine.merge(ws, tip)? {
            excluded.push(x);
        }
    }
    Ok(engine.finish(excluded, 0))
}

/// The final integration of what a bisection kept, with the culprits left out.
fn conclude(
    repo: &RepoPaths,
    run_id: &str,
    onto: &str,
    first: Integration,
    merged: &[(String, String)],
    bisection: &Bisection,
) -> Result<Integration, GitError> {
    let kept: Vec<(String, String)> = bisection.kept.iter().map(|&i| merged[i].clone()).collect();
    let mut fin = integrate(repo, run_id, onto, &kept, Objects::Write)?;
    let mut excluded = first.excluded;
    let main = open_main(repo)?;
    let mut gone: Vec<(String, Oid)> = Vec::new();
    for c in &bisection.culprits {
        let ws = merged[c.index].0.clone();
        let tip = parse_oid(&merged[c.index].1)?;
        // A culprit stacked on a merge left out before it holds that work: that is why.
        let mut holds = None;
        for (dep, dep_tip) in &gone {
            if *dep_tip == tip
                || main
                    .graph_descendant_of(tip, *dep_tip)
                    .ctx(|| format!("compare {ws} with {dep}"))?
            {
                holds = Some(dep.clone());
                break;
            }
        }
        gone.push((ws.clone(), tip));
        if let Some(dep) = holds {
            excluded.push(Excluded {
                workstream_id: ws,
                reason: ExclusionReason::DependencyLeftOut,
                paths: Vec::new(),
                detail: format!(
                    "its branch holds the work of {dep}, which was left out (it is stacked on it)"
                ),
                broke_with: Vec::new(),
            });
            continue;
        }
        let with: Vec<String> = c
            .broke_with
            .map(|j| merged[j].0.clone())
            .into_iter()
            .collect();
        let detail = match with.first() {
            Some(w) => format!(
                "the tests fail when {ws} is merged after {w}; each passes without the other"
            ),
            None => format!("the tests fail with {ws} merged onto {}", short(onto)),
        };
        excluded.push(Excluded {
            workstream_id: ws,
            reason: ExclusionReason::BreaksTests,
            paths: Vec::new(),
            detail,
            broke_with: with,
        });
    }
    excluded.append(&mut fin.excluded);
    fin.excluded = excluded;
    fin.test_runs = bisection.test_runs;
    Ok(fin)
}

/// Point `refs/heads/<branch>` at `tip` (creating or resetting it), with a reflog entry.
/// Refuses a branch checked out in any worktree (resetting it would leave that worktree
/// out of date).
pub fn write_branch(repo: &RepoPaths, branch: &str, tip: &str) -> Result<(), GitError> {
    let main = open_main(repo)?;
    let oid = parse_oid(tip)?;
    let name = format!("refs/heads/{branch}");
    if !git2::Reference::is_valid_name(&name) {
        return Err(GitError::Other(format!(
            "failed to write branch {branch}: not a valid branch name"
        )));
    }
    if let Ok(b) = main.find_branch(branch, git2::BranchType::Local) {
        if b.is_head() || checked_out_elsewhere(&main, &name) {
            return Err(GitError::Other(format!(
                "failed to write branch {branch}: it is checked out in a worktree"
            )));
        }
    }
    main.reference(
        &name,
        oid,
        true,
        &format!("git-ws: integration at {}", short(tip)),
    )
    .ctx(|| format!("write branch {branch}"))?;
    Ok(())
}

fn checked_out_elsewhere(main: &Repository, refname: &str) -> bool {
    let Ok(names) = main.worktrees() else {
        return false;
    };
    names.iter().flatten().flatten().any(|n| {
        main.find_worktree(n)
            .ok()
            .and_then(|w| Repository::open_from_worktree(&w).ok())
            .and_then(|r| {
                r.head()
                    .ok()
                    .and_then(|h| h.name().ok().map(str::to_string))
            })
            .is_some_and(|h| h == refname)
    })
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(10)]
}

/// The running integration.
struct Engine<'r> {
    repo: &'r Repository,
    run_id: String,
    onto: Oid,
    acc: Commit<'r>,
    merged: Vec<IntegratedStep>,
    /// The workstreams left out so far, with their tips: a later branch that contains one
    /// of them is left out too.
    left_out: Vec<(String, Oid)>,
    sig_name: String,
    sig_email: String,
}

impl<'r> Engine<'r> {
    fn new(repo: &'r Repository, run_id: &str, onto: &str) -> Result<Self, GitError> {
        let onto_oid = parse_oid(onto)?;
        let acc = repo
            .find_commit(onto_oid)
            .ctx(|| format!("read the commit to integrate onto, {onto}"))?;
        let cfg = repo.config().ok();
        let get = |k: &str| cfg.as_ref().and_then(|c| c.get_string(k).ok());
        Ok(Engine {
            repo,
            run_id: run_id.to_string(),
            onto: onto_oid,
            acc,
            merged: Vec::new(),
            left_out: Vec::new(),
            sig_name: get("user.name").unwrap_or_else(|| "git-ws".to_string()),
            sig_email: get("user.email").unwrap_or_else(|| "git-ws@localhost".to_string()),
        })
    }

    /// Merge one branch; Some(exclusion) when it conflicts, or when it contains the work of
    /// a workstream left out before it (its stacked dependency: reason
    /// `dependency-left-out`, naming it).
    fn merge(&mut self, ws: &str, tip: &str) -> Result<Option<Excluded>, GitError> {
        let tip_oid = parse_oid(tip)?;
        let what = || format!("merge workstream {ws}");
        let mut holds = None;
        for (dep, dep_tip) in &self.left_out {
            let brings = (*dep_tip == tip_oid
                || self.repo.graph_descendant_of(tip_oid, *dep_tip).ctx(what)?)
                && *dep_tip != self.acc.id()
                && !self
                    .repo
                    .graph_descendant_of(self.acc.id(), *dep_tip)
                    .ctx(what)?;
            if brings {
                holds = Some(dep.clone());
                break;
            }
        }
        let x = match holds {
            Some(dep) => Some(Excluded {
                workstream_id: ws.to_string(),
                reason: ExclusionReason::DependencyLeftOut,
                paths: Vec::new(),
                detail: format!(
                    "its branch holds the work of {dep}, which was left out (it is stacked on it)"
                ),
                broke_with: Vec::new(),
            }),
            None => self.merge_one(ws, tip)?,
        };
        if x.is_some() {
            self.left_out.push((ws.to_string(), tip_oid));
        }
        Ok(x)
    }

    /// Merge one branch; Some(exclusion) when it conflicts. A branch the integration
    /// already contains (landed earlier, e.g. `onto` was fast-forwarded to an earlier
    /// integration) is a step without a new commit.
    fn merge_one(&mut self, ws: &str, tip: &str) -> Result<Option<Excluded>, GitError> {
        let repo = self.repo;
        let tip_oid = parse_oid(tip)?;
        let theirs = repo
            .find_commit(tip_oid)
            .ctx(|| format!("read the tip {tip} of workstream {ws}"))?;
        let what = || format!("merge workstream {ws}");
        let acc_id = self.acc.id();
        if acc_id == tip_oid || repo.graph_descendant_of(acc_id, tip_oid).ctx(what)? {
            self.merged.push(IntegratedStep {
                workstream_id: ws.to_string(),
                tip: tip.to_string(),
                merge_commit: acc_id.to_string(),
            });
            return Ok(None);
        }
        let bases: Vec<Oid> = match repo.merge_bases(self.acc.id(), tip_oid) {
            Ok(b) => b.iter().copied().collect(),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Vec::new(),
            Err(e) => return Err(e).ctx(what),
        };
        let conflict = |paths: Vec<String>, detail: String| Excluded {
            workstream_id: ws.to_string(),
            reason: ExclusionReason::Conflict,
            paths,
            detail,
            broke_with: Vec::new(),
        };
        let tree = match bases.as_slice() {
            [] => {
                return Ok(Some(conflict(
                    Vec::new(),
                    format!("{ws} shares no history with the integration"),
                )))
            }
            [b] => {
                let base_tree = repo.find_commit(*b).and_then(|c| c.tree()).ctx(what)?;
                let base = Base::new(base_tree.clone());
                let acc_tree = self.acc.tree().ctx(what)?;
                let ours = Side::from_trees(repo, &base_tree, acc_tree.clone(), "integration")?;
                let side = Side::from_trees(repo, &base_tree, theirs.tree().ctx(what)?, ws)?;
                let outcome = treemerge::merge(repo, &base, &ours, &side, true)?;
                if !outcome.is_clean() {
                    let paths = outcome.conflict_paths();
                    let with: Vec<&str> = self.partners(&outcome.conflict_paths(), &base_tree)?;
                    let detail = if with.is_empty() {
                        format!("conflicts with the integration in {}", paths.join(", "))
                    } else {
                        format!("conflicts with {} in {}", with.join(", "), paths.join(", "))
                    };
                    return Ok(Some(conflict(paths, detail)));
                }
                treemerge::apply_to_tree(repo, &acc_tree, &outcome, |p| ours.at(p, &base))?
            }
            _ => {
                // Several merge bases (criss-cross history): libgit2's recursive merge.
                let index = repo.merge_commits(&self.acc, &theirs, None).ctx(what)?;
                if index.has_conflicts() {
                    let mut paths = std::collections::BTreeSet::new();
                    for c in index.conflicts().ctx(what)? {
                        let c = c.ctx(what)?;
                        if let Some(e) = c.our.or(c.their).or(c.ancestor) {
                            paths.insert(String::from_utf8_lossy(&e.path).into_owned());
                        }
                    }
                    let paths: Vec<String> = paths.into_iter().collect();
                    let detail = format!("conflicts with the integration in {}", paths.join(", "));
                    return Ok(Some(conflict(paths, detail)));
                }
                let mut index = index;
                let id = index.write_tree_to(repo).ctx(what)?;
                repo.find_tree(id).ctx(what)?
            }
        };
        let when = self
            .acc
            .committer()
            .when()
            .seconds()
            .max(theirs.committer().when().seconds());
        let sig = Signature::new(&self.sig_name, &self.sig_email, &Time::new(when, 0)).ctx(what)?;
        let message = format!(
            "Merge workstream {ws} (git-ws run {})\n\nBranch tip {tip}.\n",
            self.run_id
        );
        let id = repo
            .commit(None, &sig, &sig, &message, &tree, &[&self.acc, &theirs])
            .ctx(what)?;
        self.acc = repo.find_commit(id).ctx(what)?;
        self.merged.push(IntegratedStep {
            workstream_id: ws.to_string(),
            tip: tip.to_string(),
            merge_commit: id.to_string(),
        });
        Ok(None)
    }

    /// The integrated workstreams that changed any of `paths` (what a conflict is with).
    fn partners(
        &self,
        paths: &[String],
        base_tree: &git2::Tree<'r>,
    ) -> Result<Vec<&str>, GitError> {
        let mut out = Vec::new();
        for step in &self.merged {
            let tree = self
                .repo
                .find_commit(parse_oid(&step.tip)?)
                .and_then(|c| c.tree())
                .ctx(|| format!("read the tip of {}", step.workstream_id))?;
            let side = Side::from_trees(self.repo, base_tree, tree, &step.workstream_id)?;
            let touches = paths.iter().any(|p| {
                side.changed.contains_key(p)
                    || side
                        .changed
                        .keys()
                        .any(|k| k.starts_with(&format!("{p}/")) || p.starts_with(&format!("{k}/")))
            });
            if touches {
                out.push(step.workstream_id.as_str());
            }
        }
        Ok(out)
    }

    fn finish(self, excluded: Vec<Excluded>, test_runs: usize) -> Integration {
        let tip = self.acc.id().to_string();
        Integration {
            run_id: self.run_id,
            onto: self.onto.to_string(),
            merged: self.merged,
            tip,
            excluded,
            test_runs,
        }
    }
}
