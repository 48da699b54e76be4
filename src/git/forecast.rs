//! The merge forecast (pairwise in-memory merges of workstream branches, diff3-style conflict
//! hunks, a suggested merge order) and the post-merge query for merged `ws/…` branches.

use super::repo::{open_main, parse_oid, short, Ctx};
use super::{GitError, RepoPaths};
use crate::model::{ConflictHunk, Forecast, MergeStep, PairForecast};
use git2::build::TreeUpdateBuilder;
use git2::{Commit, FileMode, Index, IndexConflict, IndexEntry, Oid, Repository};
use similar::TextMerge;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

/// Lines of a rendered conflict kept per path.
const MAX_HUNK_LINES: usize = 40;
/// Context lines shown around each conflicting region.
const CONTEXT_LINES: usize = 2;
const GITLINK_MODE: u32 = 0o160000;

struct Tip<'r> {
    ws: String,
    commit: Commit<'r>,
}

pub(crate) fn forecast(
    repo: &RepoPaths,
    base_sha: &str,
    branches: &[(String, String)],
) -> Result<Forecast, GitError> {
    let main = open_main(repo)?;
    let base = parse_oid(base_sha)?;
    let base_tree = main
        .find_commit(base)
        .and_then(|c| c.tree())
        .ctx(|| format!("read base commit {}", short(base)))?;
    let mut tips = Vec::with_capacity(branches.len());
    for (ws, branch) in branches {
        let commit = main
            .revparse_single(&format!("refs/heads/{branch}"))
            .and_then(|o| o.peel_to_commit())
            .ctx(|| format!("read branch {branch} of workstream {ws}"))?;
        tips.push(Tip {
            ws: ws.clone(),
            commit,
        });
    }

    // path → the branches touching it; pairs come only from shared paths.
    let mut by_path: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut touched = Vec::with_capacity(tips.len());
    for (i, tip) in tips.iter().enumerate() {
        let paths = touched_paths(&main, &base_tree, &tip.commit)?;
        for path in &paths {
            by_path.entry(path.clone()).or_default().push(i);
        }
        touched.push(paths);
    }
    let mut shared: BTreeMap<(usize, usize), BTreeSet<String>> = BTreeMap::new();
    for (path, idxs) in &by_path {
        for (n, &x) in idxs.iter().enumerate() {
            for &y in &idxs[n + 1..] {
                if tips[x].ws == tips[y].ws {
                    continue;
                }
                let key = if tips[x].ws < tips[y].ws {
                    (x, y)
                } else {
                    (y, x)
                };
                shared.entry(key).or_default().insert(path.clone());
            }
        }
    }

    let mut pairs = Vec::with_capacity(shared.len());
    for ((x, y), common) in shared {
        let (a, b) = (&tips[x], &tips[y]);
        let index = main
            .merge_commits(&a.commit, &b.commit, None)
            .ctx(|| format!("merge workstreams {} and {} in memory", a.ws, b.ws))?;
        let (conflict_paths, hunks) = describe_conflicts(&main, &index, &a.ws, &b.ws)?;
        pairs.push(PairForecast {
            a: a.ws.clone(),
            b: b.ws.clone(),
            common_paths: common.into_iter().collect(),
            conflict_paths,
            hunks,
        });
    }
    pairs.sort_by(|p, q| (&p.a, &p.b).cmp(&(&q.a, &q.b)));

    // Merge order: accumulate clean merges onto the base, in the given order. A branch whose
    // paths are disjoint from everything merged so far (no path in common, no path that is
    // a directory of another) merges cleanly by construction: its files are written onto
    // the accumulated tree directly, at a cost in proportion to its changes. Only a branch
    // that overlaps gets a real three-way merge of the whole trees.
    let mut merge_order = Vec::with_capacity(tips.len());
    let mut acc = base_tree.clone();
    let mut merged = MergedPaths::default();
    for (tip, paths) in tips.iter().zip(&touched) {
        let what = || format!("merge workstream {} onto the forecast", tip.ws);
        let tree = tip.commit.tree().ctx(what)?;
        if !merged.overlaps(paths) {
            let mut update = TreeUpdateBuilder::new();
            for p in paths {
                match tree.get_path(Path::new(p)) {
                    Ok(e) => {
                        update.upsert(p.as_str(), e.id(), file_mode(e.filemode()));
                    }
                    Err(_) => {
                        update.remove(p.as_str());
                    }
                }
            }
            let id = update.create_updated(&main, &acc).ctx(what)?;
            acc = main.find_tree(id).ctx(what)?;
            merged.add(paths);
            merge_order.push(MergeStep {
                workstream_id: tip.ws.clone(),
                clean: true,
                conflict_paths: Vec::new(),
            });
            continue;
        }
        let mut index = main.merge_trees(&base_tree, &acc, &tree, None).ctx(what)?;
        if index.has_conflicts() {
            merge_order.push(MergeStep {
                workstream_id: tip.ws.clone(),
                clean: false,
                conflict_paths: conflict_paths(&index)?,
            });
        } else {
            let id = index.write_tree_to(&main).ctx(what)?;
            acc = main.find_tree(id).ctx(what)?;
            merged.add(paths);
            merge_order.push(MergeStep {
                workstream_id: tip.ws.clone(),
                clean: true,
                conflict_paths: Vec::new(),
            });
        }
    }
    Ok(Forecast { pairs, merge_order })
}

/// The paths of the branches merged so far, and their parent directories.
#[derive(Default)]
struct MergedPaths {
    files: HashSet<String>,
    dirs: HashSet<String>,
}

fn parents(p: &str) -> impl Iterator<Item = &str> {
    p.char_indices()
        .filter(|&(_, c)| c == '/')
        .map(move |(i, _)| &p[..i])
}

impl MergedPaths {
    /// Whether merging a branch touching `paths` could interact with what was merged: a
    /// common path, or one branch's file where the other has a directory.
    fn overlaps(&self, paths: &BTreeSet<String>) -> bool {
        paths.iter().any(|p| {
            self.files.contains(p)
                || self.dirs.contains(p)
                || parents(p).any(|d| self.files.contains(d))
        })
    }

    fn add(&mut self, paths: &BTreeSet<String>) {
        for p in paths {
            self.dirs.extend(parents(p).map(str::to_string));
            self.files.insert(p.clone());
        }
    }
}

fn file_mode(mode: i32) -> FileMode {
    match mode {
        0o100755 => FileMode::BlobExecutable,
        0o120000 => FileMode::Link,
        0o160000 => FileMode::Commit,
        0o040000 => FileMode::Tree,
        0o100664 => FileMode::BlobGroupWritable,
        _ => FileMode::Blob,
    }
}

/// Every path a branch touches relative to the base (both sides of a rename).
fn touched_paths(
    main: &Repository,
    base_tree: &git2::Tree<'_>,
    tip: &Commit<'_>,
) -> Result<BTreeSet<String>, GitError> {
    let what = || format!("diff the base against {}", short(tip.id()));
    let tree = tip.tree().ctx(what)?;
    let diff = main
        .diff_tree_to_tree(Some(base_tree), Some(&tree), None)
        .ctx(what)?;
    let mut paths = BTreeSet::new();
    for delta in diff.deltas() {
        for file in [delta.old_file(), delta.new_file()] {
            if let Some(p) = file.path_bytes() {
                paths.insert(String::from_utf8_lossy(p).into_owned());
            }
        }
    }
    Ok(paths)
}

fn entry_path(c: &IndexConflict) -> String {
    let e = c.our.as_ref().or(c.their.as_ref()).or(c.ancestor.as_ref());
    e.map(|e| String::from_utf8_lossy(&e.path).into_owned())
        .unwrap_or_default()
}

fn conflict_paths(index: &Index) -> Result<Vec<String>, GitError> {
    let mut paths = BTreeSet::new();
    for c in index
        .conflicts()
        .ctx(|| "list merge conflicts".to_string())?
    {
        paths.insert(entry_path(&c.ctx(|| "read a merge conflict".to_string())?));
    }
    Ok(paths.into_iter().collect())
}

fn describe_conflicts(
    main: &Repository,
    index: &Index,
    a: &str,
    b: &str,
) -> Result<(Vec<String>, Vec<ConflictHunk>), GitError> {
    if !index.has_conflicts() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut by_path = BTreeMap::new();
    for c in index
        .conflicts()
        .ctx(|| format!("list conflicts between {a} and {b}"))?
    {
        let c = c.ctx(|| format!("read a conflict between {a} and {b}"))?;
        let path = entry_path(&c);
        let text = render_conflict(main, &c, a, b)?;
        by_path.entry(path).or_insert(text);
    }
    let paths = by_path.keys().cloned().collect();
    let hunks = by_path
        .into_iter()
        .map(|(path, text)| ConflictHunk { path, text })
        .collect();
    Ok((paths, hunks))
}

fn blob(main: &Repository, e: Option<&IndexEntry>) -> Result<Option<Vec<u8>>, GitError> {
    match e {
        None => Ok(None),
        Some(e) => Ok(Some(
            main.find_blob(e.id)
                .ctx(|| format!("read blob {} of {}", e.id, String::from_utf8_lossy(&e.path)))?
                .content()
                .to_vec(),
        )),
    }
}

fn render_conflict(
    main: &Repository,
    c: &IndexConflict,
    a: &str,
    b: &str,
) -> Result<String, GitError> {
    let (ours, theirs) = match (&c.our, &c.their) {
        (None, None) => return Ok("conflict (no content on either side)".to_string()),
        (None, Some(_)) => return Ok(format!("deleted in {a}, changed in {b}")),
        (Some(_), None) => return Ok(format!("changed in {a}, deleted in {b}")),
        (Some(o), Some(t)) => (o, t),
    };
    if [Some(ours), Some(theirs), c.ancestor.as_ref()]
        .into_iter()
        .flatten()
        .any(|e| e.mode == GITLINK_MODE)
    {
        return Ok(format!("submodule changed differently in {a} and {b}"));
    }
    if ours.path != theirs.path {
        return Ok(format!(
            "renamed differently: {} in {a}, {} in {b}",
            String::from_utf8_lossy(&ours.path),
            String::from_utf8_lossy(&theirs.path)
        ));
    }
    let base = blob(main, c.ancestor.as_ref())?.unwrap_or_default();
    let o = blob(main, Some(ours))?.unwrap_or_default();
    let t = blob(main, Some(theirs))?.unwrap_or_default();
    let as_text = |v: &[u8]| {
        (!v.contains(&0))
            .then(|| std::str::from_utf8(v).ok())
            .flatten()
            .map(str::to_string)
    };
    match (as_text(&base), as_text(&o), as_text(&t)) {
        (Some(base), Some(o), Some(t)) => Ok(render_text_conflict(&base, &o, &t, a, b)),
        _ => Ok(format!("binary file changed in both {a} and {b}")),
    }
}

/// The conflicting regions of a three-way merge in diff3 style (`<<<<<<< a`, `||||||| base`,
/// `=======`, `>>>>>>> b`) with a little context, truncated to [`MAX_HUNK_LINES`].
pub(crate) fn render_text_conflict(
    base: &str,
    ours: &str,
    theirs: &str,
    a: &str,
    b: &str,
) -> String {
    let merge = TextMerge::from_lines(base, ours, theirs);
    let regions: Vec<_> = merge.conflicts().collect();
    if regions.is_empty() {
        return format!("both {a} and {b} changed adjacent lines; git reports a conflict that a line merge resolves");
    }
    let line = |s: Option<&str>| s.unwrap_or("").trim_end_matches(['\n', '\r']).to_string();
    let mut out: Vec<String> = Vec::new();
    let mut shown_until = 0usize; // ours lines already printed as context
    for (n, region) in regions.iter().enumerate() {
        let o = region.ours_range();
        let ctx_start = o.start.saturating_sub(CONTEXT_LINES).max(shown_until);
        if n > 0 && ctx_start > shown_until {
            out.push("…".to_string());
        }
        out.extend((ctx_start..o.start).map(|i| line(merge.ours_line(i))));
        out.push(format!("<<<<<<< {a}"));
        out.extend(o.clone().map(|i| line(merge.ours_line(i))));
        out.push("||||||| base".to_string());
        out.extend(region.base_range().map(|i| line(merge.base_line(i))));
        out.push("=======".to_string());
        out.extend(region.theirs_range().map(|i| line(merge.theirs_line(i))));
        out.push(format!(">>>>>>> {b}"));
        let next_start = regions
            .get(n + 1)
            .map_or(merge.ours_len(), |r| r.ours_range().start);
        let ctx_end = (o.end + CONTEXT_LINES)
            .min(next_start)
            .min(merge.ours_len());
        out.extend((o.end..ctx_end).map(|i| line(merge.ours_line(i))));
        shown_until = ctx_end;
    }
    if out.len() > MAX_HUNK_LINES {
        let more = out.len() - MAX_HUNK_LINES;
        out.truncate(MAX_HUNK_LINES);
        out.push(format!("… ({more} more lines)"));
    }
    out.join("\n")
}

pub(crate) fn merged_ws_branches(
    repo: &RepoPaths,
    worktree: &Path,
) -> Result<Vec<(String, String)>, GitError> {
    // The worktree the merge happened in (HEAD is per worktree; the branches are shared).
    let main = git2::Repository::discover(worktree)
        .or_else(|_| git2::Repository::open(&repo.root))
        .ctx(|| format!("open the repository at {}", worktree.display()))?;
    let head = main
        .head()
        .and_then(|h| h.peel_to_commit())
        .ctx(|| format!("read HEAD of {}", worktree.display()))?
        .id();
    let mut branches = Vec::new();
    for r in main
        .references_glob("refs/heads/ws/*")
        .ctx(|| "list ws/ branches".to_string())?
    {
        let r = r.ctx(|| "read a ws/ branch".to_string())?;
        if let (Ok(name), Some(tip)) = (r.name(), r.target()) {
            if let Some(short_name) = name.strip_prefix("refs/heads/") {
                branches.push((short_name.to_string(), tip));
            }
        }
    }
    if branches.is_empty() {
        return Ok(Vec::new());
    }
    let contained = contained_in(&main, head, branches.iter().map(|b| b.1))?;
    let mut out: Vec<_> = branches
        .into_iter()
        .filter(|(_, tip)| contained.contains(tip))
        .map(|(name, tip)| (name, tip.to_string()))
        .collect();
    out.sort();
    Ok(out)
}

/// Which of `tips` are reachable from `head`, in one pass: with `b` the common ancestor of
/// HEAD and every tip, a tip is contained iff it is `b` or in `reach(head) \ reach(b)`.
fn contained_in(
    main: &Repository,
    head: Oid,
    tips: impl Iterator<Item = Oid>,
) -> Result<HashSet<Oid>, GitError> {
    let tips: HashSet<Oid> = tips.collect();
    let mut all: Vec<Oid> = vec![head];
    all.extend(tips.iter().copied());
    let Ok(b) = main.merge_base_octopus(&all) else {
        // Unrelated histories: ask per tip.
        return Ok(tips
            .into_iter()
            .filter(|&t| t == head || main.graph_descendant_of(head, t).unwrap_or(false))
            .collect());
    };
    let what = || "walk the history of HEAD".to_string();
    let mut walk = main.revwalk().ctx(what)?;
    walk.push(head).ctx(what)?;
    walk.hide(b).ctx(what)?;
    let mut found: HashSet<Oid> = HashSet::new();
    if tips.contains(&b) {
        found.insert(b);
    }
    for oid in walk {
        let oid = oid.ctx(what)?;
        if tips.contains(&oid) {
            found.insert(oid);
            if found.len() == tips.len() {
                break;
            }
        }
    }
    Ok(found)
}
