//! The start commit of a fix-up (`--fix-up N`): the current integration tip with a left-out
//! branch's own changes applied where they merge cleanly, built in memory with the merge
//! engine's rules ([`super::treemerge`], `.gitattributes` included) and kept under a ref so
//! a later `git ws-run --resume` starts the fix-up from it; plus the conflict hunks (both
//! sides) its prompt carries.
//!
//! **Conflicting paths keep the integration tip's content**, not a file with conflict
//! markers: the start commit is then always a tree that builds and tests as the integration
//! does, and an agent that overlooks a conflict cannot commit markers into the integration;
//! the agent sees its own side of every conflict in its prompt (the diff3-style hunks), and
//! re-applies it on top of the integration's version. The start commit has one parent, the
//! tip: the fix-up's branch does not hold the left-out branch's commits, so the merge engine
//! never treats it as stacked on the workstream that was left out.

use super::forecast::render_text_conflict;
use super::repo::{open_main, parse_oid, Ctx};
use super::treemerge::{self, Base, Conflict, ConflictKind, Entry, Side};
use super::{GitError, RepoPaths};
use git2::{Repository, Signature, Time};
use ws_core::model::ConflictHunk;

/// The label of the integration's side in conflict hunks.
pub const INTEGRATION_LABEL: &str = "integration";

/// Where a fix-up starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixupStart {
    /// The start commit (full SHA), written to the repository and pointed at by the ref.
    pub commit: String,
    /// The paths that conflict with the tip (they hold the tip's content).
    pub paths: Vec<String>,
    /// Per conflicting path: a diff3-style hunk (`<<<<<<< integration`, `||||||| base`,
    /// `=======`, `>>>>>>> <workstream>`) for text, a sentence otherwise.
    pub hunks: Vec<ConflictHunk>,
}

/// `refs/ws/<run>/fixup/<branch-safe id>`: where the start of fix-up `followup_id` is kept
/// (`~` is not allowed in a ref name; it becomes `.` as in the workstream branches).
pub fn start_ref(run_id: &str, followup_id: &str) -> String {
    format!("refs/ws/{run_id}/fixup/{}", followup_id.replace('~', "."))
}

/// Merge `branch_tip` (workstream `ws`'s branch) onto the integration tip `tip` in memory;
/// write the start commit (the tip's tree with the clean part of the merge, conflicting
/// paths as on the tip; parent: the tip) and point `refname` at it. A branch the tip
/// already contains starts at the tip itself. With several merge bases (criss-cross
/// history) or none, the branch's changes are not applied: the start is the tip, and the
/// conflicting paths are named without hunks.
pub fn build_start(
    repo: &RepoPaths,
    tip: &str,
    branch_tip: &str,
    ws: &str,
    refname: &str,
) -> Result<FixupStart, GitError> {
    let main = open_main(repo)?;
    let what = || format!("build the fix-up start of {ws}");
    let tip_oid = parse_oid(tip)?;
    let theirs_oid = parse_oid(branch_tip)?;
    let acc = main.find_commit(tip_oid).ctx(what)?;
    let theirs = main.find_commit(theirs_oid).ctx(what)?;
    let mut start = FixupStart {
        commit: tip.to_string(),
        paths: Vec::new(),
        hunks: Vec::new(),
    };
    let contained =
        tip_oid == theirs_oid || main.graph_descendant_of(tip_oid, theirs_oid).ctx(what)?;
    if !contained {
        let bases: Vec<git2::Oid> = match main.merge_bases(tip_oid, theirs_oid) {
            Ok(b) => b.iter().copied().collect(),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Vec::new(),
            Err(e) => return Err(e).ctx(what),
        };
        if let [b] = bases.as_slice() {
            let base_tree = main.find_commit(*b).and_then(|c| c.tree()).ctx(what)?;
            let base = Base::new(base_tree.clone());
            let acc_tree = acc.tree().ctx(what)?;
            let ours = Side::from_trees(&main, &base_tree, acc_tree.clone(), INTEGRATION_LABEL)?;
            let side = Side::from_trees(&main, &base_tree, theirs.tree().ctx(what)?, ws)?;
            let mut outcome = treemerge::merge(&main, &base, &ours, &side, true)?;
            start.paths = outcome.conflict_paths();
            for c in &outcome.conflicts {
                start.hunks.push(ConflictHunk {
                    path: c.path.clone(),
                    text: describe(&main, c, ws)?,
                });
            }
            // Conflicting paths are left as on the tip (a path the result does not list is
            // as on the first side).
            for p in &start.paths {
                outcome.result.remove(p);
            }
            let tree = treemerge::apply_to_tree(&main, &acc_tree, &outcome, |p| ours.at(p, &base))?;
            if tree.id() != acc_tree.id() {
                start.commit = commit(&main, &acc, &theirs, &tree, ws, &start.paths)?;
            }
        } else {
            let index = main.merge_commits(&acc, &theirs, None).ctx(what)?;
            if index.has_conflicts() {
                let mut paths = std::collections::BTreeSet::new();
                for c in index.conflicts().ctx(what)? {
                    let c = c.ctx(what)?;
                    if let Some(e) = c.our.or(c.their).or(c.ancestor) {
                        paths.insert(String::from_utf8_lossy(&e.path).into_owned());
                    }
                }
                start.paths = paths.into_iter().collect();
            }
        }
    }
    main.reference(
        refname,
        parse_oid(&start.commit)?,
        true,
        &format!("git-ws: fix-up start of {ws}"),
    )
    .ctx(|| format!("write {refname}"))?;
    Ok(start)
}

/// The full SHA `refname` points at, if it exists.
pub fn ref_tip(repo: &RepoPaths, refname: &str) -> Result<Option<String>, GitError> {
    let main = open_main(repo)?;
    Ok(main.refname_to_id(refname).ok().map(|o| o.to_string()))
}

/// The start commit: the merged tree on the tip, deterministic (its time is the later of
/// the two commits'), its message naming the workstream, the branch tip and the conflicts.
fn commit(
    repo: &Repository,
    acc: &git2::Commit<'_>,
    theirs: &git2::Commit<'_>,
    tree: &git2::Tree<'_>,
    ws: &str,
    paths: &[String],
) -> Result<String, GitError> {
    let what = || format!("write the fix-up start of {ws}");
    let cfg = repo.config().ok();
    let get = |k: &str| cfg.as_ref().and_then(|c| c.get_string(k).ok());
    let when = acc
        .committer()
        .when()
        .seconds()
        .max(theirs.committer().when().seconds());
    let sig = Signature::new(
        &get("user.name").unwrap_or_else(|| "git-ws".to_string()),
        &get("user.email").unwrap_or_else(|| "git-ws@localhost".to_string()),
        &Time::new(when, 0),
    )
    .ctx(what)?;
    let mut message = format!(
        "Fix-up start for workstream {ws} (git-ws)\n\nThe integration tip {} with {ws}'s branch {} merged where it merges cleanly.\n",
        acc.id(),
        theirs.id()
    );
    if !paths.is_empty() {
        message.push_str(&format!(
            "Conflicting paths keep the integration's content: {}.\n",
            paths.join(", ")
        ));
    }
    let id = repo
        .commit(None, &sig, &sig, &message, tree, &[acc])
        .ctx(what)?;
    Ok(id.to_string())
}

/// A conflict for the agent: a diff3-style hunk for text, a sentence otherwise.
fn describe(repo: &Repository, c: &Conflict, ws: &str) -> Result<String, GitError> {
    let a = INTEGRATION_LABEL;
    Ok(match c.kind {
        ConflictKind::Content | ConflictKind::AddAdd => {
            let get = |e: Option<Entry>| -> Result<Vec<u8>, GitError> {
                match e {
                    None => Ok(Vec::new()),
                    Some(e) => Ok(repo
                        .find_blob(e.oid)
                        .ctx(|| format!("read blob {}", e.oid))?
                        .content()
                        .to_vec()),
                }
            };
            let (o, x, y) = (get(c.base)?, get(c.ours)?, get(c.theirs)?);
            let text = |d: &[u8]| -> Option<String> {
                (!super::xmerge::is_binary(d))
                    .then(|| std::str::from_utf8(d).ok().map(str::to_string))
                    .flatten()
            };
            match (text(&o), text(&x), text(&y)) {
                (Some(o), Some(x), Some(y)) => render_text_conflict(&o, &x, &y, a, ws),
                _ => format!("binary file changed in both the {a} and {ws}"),
            }
        }
        ConflictKind::Binary => format!("binary file changed in both the {a} and {ws}"),
        ConflictKind::ModifyDelete => match c.ours {
            None => format!("deleted in the {a}, changed in {ws}"),
            Some(_) => format!("changed in the {a}, deleted in {ws}"),
        },
        ConflictKind::Mode => format!("executable bit changed differently in the {a} and {ws}"),
        ConflictKind::Link => {
            format!("link or submodule changed differently in the {a} and {ws}")
        }
        _ if !c.note.is_empty() => c.note.clone(),
        k => format!("{} conflict between the {a} and {ws}", k.label()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn write(dir: &Path, f: &str, s: &str) {
        std::fs::write(dir.join(f), s).unwrap();
    }

    /// main: a.txt, b.txt; `tip` changes line 2 of a.txt; `ws` changes line 2 of a.txt
    /// differently and adds c.txt and changes b.txt (both clean).
    fn repo() -> (tempfile::TempDir, RepoPaths, String, String) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        git(p, &["init", "-q", "-b", "main"]);
        git(p, &["config", "user.name", "t"]);
        git(p, &["config", "user.email", "t@t"]);
        write(p, "a.txt", "one\ntwo\nthree\n");
        write(p, "b.txt", "b\n");
        git(p, &["add", "."]);
        git(p, &["commit", "-qm", "base"]);
        git(p, &["checkout", "-qb", "ws"]);
        write(p, "a.txt", "one\nTWO from ws\nthree\n");
        write(p, "b.txt", "b\nmore b\n");
        write(p, "c.txt", "new\n");
        git(p, &["add", "."]);
        git(p, &["commit", "-qm", "ws work"]);
        let ws = git(p, &["rev-parse", "HEAD"]);
        git(p, &["checkout", "-q", "main"]);
        write(p, "a.txt", "one\nTWO from main\nthree\n");
        git(p, &["commit", "-qam", "main work"]);
        let tip = git(p, &["rev-parse", "HEAD"]);
        let paths = crate::discover(p).unwrap();
        (d, paths, tip, ws)
    }

    #[test]
    fn the_start_holds_the_clean_changes_and_the_tips_content_where_they_conflict() {
        let (d, repo, tip, ws) = repo();
        let p = d.path();
        let r = start_ref("r1", "p1~fix1");
        assert_eq!(r, "refs/ws/r1/fixup/p1.fix1");
        let s = build_start(&repo, &tip, &ws, "p1", &r).unwrap();
        assert_eq!(s.paths, vec!["a.txt"]);
        assert_eq!(s.hunks.len(), 1);
        let h = &s.hunks[0].text;
        assert!(h.contains("<<<<<<< integration\nTWO from main"), "{h}");
        assert!(h.contains("||||||| base\ntwo"), "{h}");
        assert!(h.contains("=======\nTWO from ws\n>>>>>>> p1"), "{h}");
        assert_eq!(
            ref_tip(&repo, &r).unwrap().as_deref(),
            Some(s.commit.as_str())
        );
        // One parent, the tip; the clean changes applied; the conflict as on the tip.
        assert_eq!(git(p, &["rev-parse", &format!("{}^@", s.commit)]), tip);
        assert_eq!(
            git(p, &["show", &format!("{}:a.txt", s.commit)]),
            "one\nTWO from main\nthree"
        );
        assert_eq!(
            git(p, &["show", &format!("{}:b.txt", s.commit)]),
            "b\nmore b"
        );
        assert_eq!(git(p, &["show", &format!("{}:c.txt", s.commit)]), "new");
        // What git itself merges cleanly agrees.
        let out = Command::new("git")
            .args(["merge-tree", "--write-tree", "--name-only", &tip, &ws])
            .current_dir(p)
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == "a.txt"));
    }

    #[test]
    fn a_clean_branch_starts_with_all_its_changes_and_a_contained_one_at_the_tip() {
        let (d, repo, tip, _) = repo();
        let p = d.path();
        git(p, &["checkout", "-qb", "clean", &tip]);
        write(p, "d.txt", "d\n");
        git(p, &["add", "."]);
        git(p, &["commit", "-qm", "clean"]);
        let clean = git(p, &["rev-parse", "HEAD"]);
        git(p, &["checkout", "-q", "main"]);
        // Built on the tip: contained after a fast-forward; here the branch is ahead.
        let s = build_start(&repo, &tip, &clean, "p2", "refs/ws/r1/fixup/p2.fix1").unwrap();
        assert!(s.paths.is_empty() && s.hunks.is_empty());
        assert_eq!(git(p, &["show", &format!("{}:d.txt", s.commit)]), "d");
        let s = build_start(&repo, &clean, &tip, "p3", "refs/ws/r1/fixup/p3.fix1").unwrap();
        assert_eq!(
            s.commit, clean,
            "a branch the tip contains starts at the tip"
        );
    }
}
