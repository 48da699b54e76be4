//! The merge forecast: which completed workstream branches conflict, grouped into
//! clusters, and an explained, deterministic merge order. Built on the in-memory merge of
//! [`super::treemerge`], so each pairwise answer is git's (`git merge-tree`).
//!
//! It scales with the work rather than its square: workstreams are grouped into clusters
//! (the same path, and, when many change one text file, overlapping line regions; a file
//! where another makes a directory; a renamed directory another adds to). Every pair is
//! merged only inside small clusters; the order comes from merging the branches one by one
//! onto an accumulated result, each merge looking only at the paths involved.

use super::repo::{open_main, parse_oid, Ctx};
use super::treemerge::{self, Base, Conflict, ConflictKind, Entry, Outcome, Side};
use super::{GitError, RepoPaths};
use git2::{Oid, Repository};
use similar::{Algorithm, DiffTag, TextMerge};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use ws_core::model::{
    ConflictHunk, ForecastCluster, ForecastOverlap, ForecastStep, MergeForecast, PairForecast,
};
use ws_core::text::natural_cmp;

/// Lines of a rendered conflict kept per path.
const MAX_HUNK_LINES: usize = 40;
/// Context lines shown around each conflicting region.
const CONTEXT_LINES: usize = 2;
/// Line regions of one file closer than this are one cluster: git conflicts on adjacent
/// lines, and a different diff alignment can shift a region by a line or two.
const LINE_MARGIN: u64 = 3;

/// How a workstream touches one path.
#[derive(Debug, Clone)]
enum Touch {
    /// Changes these base line ranges (0-based, half-open; an insertion is empty) of a
    /// text file it keeps as a text file with the same mode.
    Lines(Vec<Range<u64>>),
    /// Anything else: add, delete, rename, mode, binary, link, type.
    Whole,
}

struct Branch<'r> {
    ws: String,
    side: Side<'r>,
    touches: BTreeMap<String, Touch>,
    change_size: u64,
    /// The other branches whose work this one holds (its tip descends from theirs: a
    /// workstream stacked on its dependencies). Merging it after them brings nothing of
    /// theirs again, so it never conflicts with them.
    holds: BTreeSet<usize>,
}

/// Forecast the merges of `branches` (workstream id, branch name) made from `base_sha`.
pub(crate) fn merge_forecast(
    repo: &RepoPaths,
    base_sha: &str,
    branches: &[(String, String)],
) -> Result<MergeForecast, GitError> {
    let main = open_main(repo)?;
    // Merged files and trees go to memory, never to the repository.
    let odb = main.odb().ctx(|| "open the object database".to_string())?;
    let _mempack = odb
        .add_new_mempack_backend(1000)
        .ctx(|| "add an in-memory object store".to_string())?;
    let base_oid = parse_oid(base_sha)?;
    let base_tree = main
        .find_commit(base_oid)
        .and_then(|c| c.tree())
        .ctx(|| format!("read base commit {base_sha}"))?;
    let base = Base::new(base_tree.clone());
    let mut sorted: Vec<&(String, String)> = branches.iter().collect();
    sorted.sort_by(|a, b| natural_cmp(&a.0, &b.0).then_with(|| a.1.cmp(&b.1)));
    sorted.dedup_by(|a, b| a.0 == b.0);
    let mut list: Vec<Branch<'_>> = Vec::with_capacity(sorted.len());
    let mut tips = Vec::with_capacity(sorted.len());
    for (ws, branch) in sorted {
        let commit = main
            .revparse_single(&format!("refs/heads/{branch}"))
            .and_then(|o| o.peel_to_commit())
            .ctx(|| format!("read branch {branch} of workstream {ws}"))?;
        tips.push(commit.id());
        let tree = commit
            .tree()
            .ctx(|| format!("read branch {branch} of workstream {ws}"))?;
        let side = Side::from_trees(&main, &base_tree, tree, ws)?;
        let (touches, change_size) = touches(&main, &base, &side)?;
        list.push(Branch {
            ws: ws.clone(),
            side,
            touches,
            change_size,
            holds: BTreeSet::new(),
        });
    }
    for i in 0..list.len() {
        for j in 0..list.len() {
            let (ti, tj) = (tips[i], tips[j]);
            if i != j
                && tj != base_oid
                && !(ti == tj && j > i)
                && (ti == tj || main.graph_descendant_of(ti, tj).unwrap_or(false))
            {
                list[i].holds.insert(j);
            }
        }
    }
    Forecaster {
        repo: &main,
        base: &base,
        list: &list,
    }
    .run()
}

/// Each changed path's kind of touch, and the size of the change.
fn touches(
    repo: &Repository,
    base: &Base<'_>,
    side: &Side<'_>,
) -> Result<(BTreeMap<String, Touch>, u64), GitError> {
    let mut out = BTreeMap::new();
    let mut size = 0u64;
    for (path, now) in &side.changed {
        let before = base.get(path);
        let lines = match (before, now) {
            (Some(b), Some(n)) if b.mode == n.mode && b.mode & 0o170000 == 0o100000 => {
                let old = read(repo, b.oid)?;
                let new = read(repo, n.oid)?;
                match (text(&old), text(&new)) {
                    (Some(o), Some(n)) => Some(line_changes(o, n)),
                    _ => None,
                }
            }
            _ => None,
        };
        match lines {
            Some((ranges, n)) => {
                size += n;
                out.insert(path.clone(), Touch::Lines(ranges));
            }
            None => {
                size += 1;
                out.insert(path.clone(), Touch::Whole);
            }
        }
    }
    Ok((out, size))
}

/// The branches other than `i` that touch a path below the directory `dir`.
fn others_below(by_path: &BTreeMap<&str, Vec<usize>>, dir: &str, i: usize) -> BTreeSet<usize> {
    let lo = format!("{dir}/");
    let hi = format!("{dir}0");
    by_path
        .range(lo.as_str()..hi.as_str())
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|&j| j != i)
        .collect()
}

fn read(repo: &Repository, oid: Oid) -> Result<Vec<u8>, GitError> {
    Ok(repo
        .find_blob(oid)
        .ctx(|| format!("read blob {oid}"))?
        .content()
        .to_vec())
}

fn text(data: &[u8]) -> Option<&str> {
    if super::xmerge::is_binary(data) {
        return None;
    }
    std::str::from_utf8(data).ok()
}

/// The base line ranges a change touches, and lines added plus removed.
fn line_changes(old: &str, new: &str) -> (Vec<Range<u64>>, u64) {
    let o: Vec<&str> = old.split_inclusive('\n').collect();
    let n: Vec<&str> = new.split_inclusive('\n').collect();
    let ops = similar::capture_diff_slices(Algorithm::Histogram, &o, &n);
    let mut ranges = Vec::new();
    let mut size = 0u64;
    for op in ops {
        let (tag, old_r, new_r) = op.as_tag_tuple();
        if tag == DiffTag::Equal {
            continue;
        }
        size += (old_r.len() + new_r.len()) as u64;
        ranges.push(old_r.start as u64..old_r.end as u64);
    }
    (ranges, size)
}

/// A cluster being built: members by index into the branch list.
struct Group {
    path: String,
    kind: &'static str,
    lines: Option<(u64, u64)>,
    members: BTreeSet<usize>,
}

/// Which clusters each branch is in, and how many other branches it overlaps.
struct Membership {
    of_branch: Vec<Vec<usize>>,
    overlapping: Vec<usize>,
}

impl Membership {
    fn of(groups: &[Group], branches: usize) -> Self {
        let mut of_branch: Vec<Vec<usize>> = vec![Vec::new(); branches];
        let mut overlapping = vec![0usize; branches];
        for (g, group) in groups.iter().enumerate() {
            for &m in &group.members {
                of_branch[m].push(g);
                overlapping[m] += group.members.len() - 1;
            }
        }
        Membership {
            of_branch,
            overlapping,
        }
    }
}

struct Forecaster<'a, 'r> {
    repo: &'r Repository,
    base: &'a Base<'r>,
    list: &'a [Branch<'r>],
}

impl<'r> Forecaster<'_, 'r> {
    fn run(&self) -> Result<MergeForecast, GitError> {
        let list = self.list;
        // path → the branches touching it (a rename at both its paths).
        let mut by_path: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, b) in list.iter().enumerate() {
            for p in b.touches.keys() {
                by_path.entry(p.as_str()).or_default().push(i);
            }
        }
        let overlaps: Vec<ForecastOverlap> = by_path
            .iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(p, v)| ForecastOverlap {
                path: p.to_string(),
                workstreams: v.iter().map(|&i| list[i].ws.clone()).collect(),
            })
            .collect();
        let mut groups = self.groups(&by_path);
        groups.sort_by(|x, y| {
            (&x.path, x.lines, x.kind, &x.members).cmp(&(&y.path, y.lines, y.kind, &y.members))
        });
        groups.dedup_by(|x, y| x.path == y.path && x.kind == y.kind && x.members == y.members);
        let m = Membership::of(&groups, list.len());

        // Every pair inside the small clusters.
        let mut pairs: BTreeMap<(usize, usize), PairForecast> = BTreeMap::new();
        for g in groups
            .iter()
            .filter(|g| g.members.len() <= MergeForecast::PAIRWISE_LIMIT)
        {
            let mm: Vec<usize> = g.members.iter().copied().collect();
            for (k, &x) in mm.iter().enumerate() {
                for &y in &mm[k + 1..] {
                    self.pair(&mut pairs, x, y)?;
                }
            }
        }
        let merge_order = self.merge_order(&groups, &m, &mut pairs)?;
        let clusters = self.cluster_rows(&groups, &pairs);
        let mut pairs: Vec<PairForecast> = pairs.into_values().collect();
        pairs.sort_by(|p, q| natural_cmp(&p.a, &q.a).then_with(|| natural_cmp(&p.b, &q.b)));
        Ok(MergeForecast {
            clusters,
            pairs,
            merge_order,
            overlaps,
        })
    }

    /// The order: fewest overlapping workstreams, smallest change, id; each merged in memory
    /// onto the steps before it. Clean steps first, then those that need a rebase, each
    /// with its reason.
    fn merge_order(
        &self,
        groups: &[Group],
        m: &Membership,
        pairs: &mut BTreeMap<(usize, usize), PairForecast>,
    ) -> Result<Vec<ForecastStep>, GitError> {
        let list = self.list;
        let mut order: Vec<usize> = (0..list.len()).collect();
        order.sort_by(|&x, &y| {
            (m.overlapping[x], list[x].change_size)
                .cmp(&(m.overlapping[y], list[y].change_size))
                .then_with(|| natural_cmp(&list[x].ws, &list[y].ws))
        });
        let mut acc = Side {
            label: "the steps before".to_string(),
            tree: self.base.tree.clone(),
            changed: BTreeMap::new(),
            renamed_to: BTreeMap::new(),
            renamed_from: BTreeMap::new(),
        };
        let mut merged: Vec<bool> = vec![false; list.len()];
        let mut clean_steps = Vec::new();
        let mut rebase_steps = Vec::new();
        for &i in &order {
            let b = &list[i];
            let earlier: BTreeSet<usize> = m.of_branch[i]
                .iter()
                .flat_map(|&g| groups[g].members.iter().copied())
                .filter(|&j| j != i && merged[j])
                .collect();
            let mut clusters: Vec<usize> = m.of_branch[i].iter().map(|g| g + 1).collect();
            clusters.sort();
            // A branch holding the work of one merged before it merges relative to that
            // one's tree (their merge base), as git would; one whose work a branch merged
            // before it holds brings nothing new.
            let held_by_merged = (0..list.len()).any(|j| merged[j] && list[j].holds.contains(&i));
            let outcome = match b.holds.iter().find(|&&j| merged[j]) {
                _ if held_by_merged => self.merge_onto(&b.side.tree, &acc, &b.side, true)?,
                Some(&j) => self.merge_onto(&list[j].side.tree, &acc, &b.side, true)?,
                None => treemerge::merge(self.repo, self.base, &acc, &b.side, true)?,
            };
            if outcome.is_clean() {
                acc = self.apply(acc, &outcome)?;
                merged[i] = true;
                clean_steps.push(self.clean_step(i, m, &earlier, clusters));
            } else {
                let paths = outcome.conflict_paths();
                rebase_steps.push(self.rebase_step(i, m, &earlier, clusters, paths, pairs)?);
            }
        }
        clean_steps.extend(rebase_steps);
        Ok(clean_steps)
    }

    /// Sorted workstream ids of `set`.
    fn names(&self, set: &BTreeSet<usize>) -> Vec<String> {
        let mut v: Vec<String> = set.iter().map(|&j| self.list[j].ws.clone()).collect();
        v.sort_by(|a, b| natural_cmp(a, b));
        v
    }

    /// A step that merged cleanly onto the steps before it, and why it is where it is.
    fn clean_step(
        &self,
        i: usize,
        m: &Membership,
        earlier: &BTreeSet<usize>,
        clusters: Vec<usize>,
    ) -> ForecastStep {
        let b = &self.list[i];
        let reason = if m.of_branch[i].is_empty() {
            "changes nothing another workstream changes".to_string()
        } else if earlier.is_empty() {
            format!(
                "overlaps {} in {}; merged before {} (fewer overlaps or a smaller change)",
                plural(m.overlapping[i], "workstream"),
                clusters_label(&clusters),
                if m.overlapping[i] == 1 { "it" } else { "them" }
            )
        } else {
            format!(
                "merges cleanly after {} ({})",
                self.names(earlier).join(", "),
                clusters_label(&clusters)
            )
        };
        ForecastStep {
            workstream_id: b.ws.clone(),
            clean: true,
            conflict_paths: Vec::new(),
            partners: self.names(earlier),
            clusters,
            overlapping: m.overlapping[i],
            change_size: b.change_size,
            reason,
        }
    }

    /// A step that conflicts with the steps before it: which of them it conflicts with, pair
    /// by pair, for its reason.
    fn rebase_step(
        &self,
        i: usize,
        m: &Membership,
        earlier: &BTreeSet<usize>,
        clusters: Vec<usize>,
        paths: Vec<String>,
        pairs: &mut BTreeMap<(usize, usize), PairForecast>,
    ) -> Result<ForecastStep, GitError> {
        let list = self.list;
        let b = &list[i];
        let names = |set: &BTreeSet<usize>| self.names(set);
        // Which earlier steps it conflicts with, pair by pair: those that touch
        // a conflicting path (or a file or directory above or below one), at most
        // PAIRWISE_LIMIT of them, closest in line to its own change first.
        // The conflicting paths, and where its renames came from.
        let mut near: Vec<&str> = paths.iter().map(String::as_str).collect();
        for p in &paths {
            if let Some(old) = b.side.renamed_from.get(p) {
                near.push(old);
            }
        }
        let mut candidates: Vec<(u64, usize)> = earlier
            .iter()
            .filter_map(|&j| {
                let d = near
                    .iter()
                    .filter_map(|p| distance(&b.touches, &list[j].touches, p))
                    .min()?;
                Some((d, j))
            })
            .collect();
        if candidates.is_empty() {
            // Related through a rename the earlier step made: every overlapping one.
            candidates = earlier.iter().map(|&j| (u64::MAX, j)).collect();
        }
        candidates.sort();
        let unchecked = candidates
            .len()
            .saturating_sub(MergeForecast::PAIRWISE_LIMIT);
        let mut partners = BTreeSet::new();
        for &(_, j) in candidates.iter().take(MergeForecast::PAIRWISE_LIMIT) {
            let p = self.pair(pairs, i.min(j), i.max(j))?;
            if !p.conflict_paths.is_empty() {
                partners.insert(j);
            }
        }
        let checked: BTreeSet<usize> = candidates
            .iter()
            .take(MergeForecast::PAIRWISE_LIMIT)
            .map(|&(_, j)| j)
            .collect();
        let more = if unchecked > 0 {
            format!(
                " (checked the {} closest of {} overlapping earlier steps)",
                checked.len(),
                candidates.len()
            )
        } else {
            String::new()
        };
        let shown = if partners.is_empty() {
            &checked
        } else {
            &partners
        };
        let reason = if partners.is_empty() {
            format!(
                "needs a rebase: conflicts in {} with the combination of {}, though with none of them alone{more}",
                paths.join(", "),
                names(&checked).join(", ")
            )
        } else {
            format!(
                "needs a rebase: conflicts with {} in {}{more}",
                names(&partners).join(", "),
                paths.join(", ")
            )
        };
        let shown = names(shown);
        Ok(ForecastStep {
            workstream_id: b.ws.clone(),
            clean: false,
            conflict_paths: paths,
            partners: shown,
            clusters,
            overlapping: m.overlapping[i],
            change_size: b.change_size,
            reason,
        })
    }

    /// The clusters as stored and shown, each with how many of its pairs conflict.
    fn cluster_rows(
        &self,
        groups: &[Group],
        pairs: &BTreeMap<(usize, usize), PairForecast>,
    ) -> Vec<ForecastCluster> {
        let list = self.list;
        groups
            .iter()
            .enumerate()
            .map(|(g, group)| {
                let m: Vec<usize> = group.members.iter().copied().collect();
                // Of the pairs merged inside the cluster, the conflicting ones.
                let conflicting = if m.len() <= MergeForecast::PAIRWISE_LIMIT {
                    m.iter()
                        .enumerate()
                        .flat_map(|(k, &x)| m[k + 1..].iter().map(move |&y| (x.min(y), x.max(y))))
                        .filter(|key| pairs.get(key).is_some_and(|p| !p.conflict_paths.is_empty()))
                        .count()
                } else {
                    pair_keys_in(pairs, &group.members)
                };
                let mut workstreams: Vec<String> = m.iter().map(|&j| list[j].ws.clone()).collect();
                workstreams.sort_by(|a, b| natural_cmp(a, b));
                ForecastCluster {
                    id: g + 1,
                    path: group.path.clone(),
                    kind: group.kind.to_string(),
                    lines: group.lines,
                    workstreams,
                    all_pairs: m.len() <= MergeForecast::PAIRWISE_LIMIT,
                    conflicting_pairs: conflicting,
                }
            })
            .collect()
    }

    /// The clusters, unsorted.
    fn groups(&self, by_path: &BTreeMap<&str, Vec<usize>>) -> Vec<Group> {
        let list = self.list;
        let mut groups = Vec::new();
        for (path, members) in by_path {
            if members.len() < 2 {
                continue;
            }
            let all_lines = members
                .iter()
                .all(|&i| matches!(list[i].touches[*path], Touch::Lines(_)));
            if members.len() <= MergeForecast::PAIRWISE_LIMIT || !all_lines {
                let lines = all_lines.then(|| {
                    let (mut lo, mut hi) = (u64::MAX, 0);
                    for &i in members {
                        if let Touch::Lines(r) = &list[i].touches[*path] {
                            for r in r {
                                lo = lo.min(r.start);
                                hi = hi.max(r.end.max(r.start + 1));
                            }
                        }
                    }
                    (lo + 1, hi)
                });
                groups.push(Group {
                    path: path.to_string(),
                    kind: if all_lines { "lines" } else { "file" },
                    lines,
                    members: members.iter().copied().collect(),
                });
                continue;
            }
            // Many workstreams change lines of one text file: one cluster per region where
            // their changes meet (within LINE_MARGIN lines).
            let mut spans: Vec<(u64, u64, usize)> = Vec::new();
            for &i in members {
                if let Touch::Lines(r) = &list[i].touches[*path] {
                    spans.extend(r.iter().map(|r| (r.start, r.end.max(r.start), i)));
                }
            }
            spans.sort();
            let mut cur: Option<Group> = None;
            let mut reach = 0u64;
            for (start, end, i) in spans {
                match &mut cur {
                    Some(g) if start <= reach + LINE_MARGIN => {
                        g.members.insert(i);
                        reach = reach.max(end);
                        g.lines = Some((g.lines.unwrap().0, reach.max(start + 1)));
                    }
                    _ => {
                        if let Some(g) = cur.take() {
                            if g.members.len() > 1 {
                                groups.push(g);
                            }
                        }
                        reach = end;
                        cur = Some(Group {
                            path: path.to_string(),
                            kind: "lines",
                            lines: Some((start + 1, end.max(start + 1))),
                            members: BTreeSet::from([i]),
                        });
                    }
                }
            }
            if let Some(g) = cur.take() {
                if g.members.len() > 1 {
                    groups.push(g);
                }
            }
        }
        // A file where others write under it as a directory.
        for (i, b) in list.iter().enumerate() {
            for (path, now) in &b.side.changed {
                if now.is_none() {
                    continue;
                }
                let mut members = others_below(by_path, path, i);
                if !members.is_empty() {
                    members.insert(i);
                    groups.push(Group {
                        path: path.clone(),
                        kind: "file/directory",
                        lines: None,
                        members,
                    });
                }
            }
            // A directory it renamed, where others add.
            for dir in treemerge::renamed_away_dirs(&b.side, self.base) {
                let mut members = others_below(by_path, &dir, i);
                if !members.is_empty() {
                    members.insert(i);
                    groups.push(Group {
                        path: dir,
                        kind: "directory rename",
                        lines: None,
                        members,
                    });
                }
            }
        }
        groups
    }

    /// The pairwise forecast of branches `x < y`, computed once.
    fn pair<'p>(
        &self,
        pairs: &'p mut BTreeMap<(usize, usize), PairForecast>,
        x: usize,
        y: usize,
    ) -> Result<&'p PairForecast, GitError> {
        if let std::collections::btree_map::Entry::Vacant(slot) = pairs.entry((x, y)) {
            let (bx, by) = (&self.list[x], &self.list[y]);
            // Name the pair in id order.
            let (a, b) = if natural_cmp(&bx.ws, &by.ws).is_le() {
                (bx, by)
            } else {
                (by, bx)
            };
            let outcome = self.merge_pair(a, b)?;
            let mut common: BTreeSet<String> = a
                .touches
                .keys()
                .filter(|p| b.touches.contains_key(*p))
                .cloned()
                .collect();
            common.extend(
                outcome
                    .conflicts
                    .iter()
                    .filter(|c| {
                        c.kind == ConflictKind::FileDirectory
                            || c.kind == ConflictKind::FileLocation
                    })
                    .map(|c| c.path.clone()),
            );
            let hunks = outcome
                .conflicts
                .iter()
                .map(|c| {
                    Ok(ConflictHunk {
                        path: c.path.clone(),
                        text: self.describe(c, &a.ws, &b.ws)?,
                    })
                })
                .collect::<Result<Vec<_>, GitError>>()?;
            slot.insert(PairForecast {
                a: a.ws.clone(),
                b: b.ws.clone(),
                common_paths: common.into_iter().collect(),
                conflict_paths: outcome.conflict_paths(),
                hunks,
            });
        }
        Ok(&pairs[&(x, y)])
    }

    /// A conflict for people: a diff3-style hunk for text, a sentence otherwise.
    fn describe(&self, c: &Conflict, a: &str, b: &str) -> Result<String, GitError> {
        Ok(match c.kind {
            ConflictKind::Content | ConflictKind::AddAdd => {
                let get = |e: Option<Entry>| -> Result<Vec<u8>, GitError> {
                    e.map_or(Ok(Vec::new()), |e| read(self.repo, e.oid))
                };
                let (o, x, y) = (get(c.base)?, get(c.ours)?, get(c.theirs)?);
                match (text(&o), text(&x), text(&y)) {
                    (Some(o), Some(x), Some(y)) => render_text_conflict(o, x, y, a, b),
                    _ => format!("binary file changed in both {a} and {b}"),
                }
            }
            ConflictKind::Binary => format!("binary file changed in both {a} and {b}"),
            ConflictKind::ModifyDelete => match c.ours {
                None => format!("deleted in {a}, changed in {b}"),
                Some(_) => format!("changed in {a}, deleted in {b}"),
            },
            ConflictKind::Link => format!("link or submodule changed differently in {a} and {b}"),
            ConflictKind::Mode => format!("executable bit changed differently in {a} and {b}"),
            ConflictKind::FileDirectory => {
                let file_in = if c.ours.is_some() && c.ours != c.base {
                    a
                } else {
                    b
                };
                let dir_in = if file_in == a { b } else { a };
                format!(
                    "{file_in} has a file {} where {dir_in} has a directory",
                    c.path
                )
            }
            _ if !c.note.is_empty() => c.note.clone(),
            k => format!("{} conflict between {a} and {b}", k.label()),
        })
    }

    /// The accumulated side after a clean merge of another branch onto it.
    /// Merge two branches relative to the base; when one holds the other's work (stacked),
    /// relative to the held one's tree, as git would (its tip is their merge base).
    fn merge_pair(&self, a: &Branch<'r>, b: &Branch<'r>) -> Result<Outcome, GitError> {
        let held = |x: &Branch<'r>, y: &Branch<'r>| {
            self.list
                .iter()
                .position(|z| std::ptr::eq(z, y))
                .is_some_and(|k| x.holds.contains(&k))
        };
        let inner = if held(b, a) {
            Some((a, b))
        } else if held(a, b) {
            Some((b, a))
        } else {
            None
        };
        match inner {
            None => treemerge::merge(self.repo, self.base, &a.side, &b.side, false),
            Some((dep, dependent)) => {
                self.merge_onto(&dep.side.tree, &dep.side, &dependent.side, false)
            }
        }
    }

    /// Merge `ours` and `theirs` relative to the tree `base` instead of the run's base.
    fn merge_onto(
        &self,
        base: &git2::Tree<'r>,
        ours: &Side<'r>,
        theirs: &Side<'r>,
        write: bool,
    ) -> Result<Outcome, GitError> {
        let b = Base::new(base.clone());
        let o = Side::from_trees(self.repo, base, ours.tree.clone(), &ours.label)?;
        let t = Side::from_trees(self.repo, base, theirs.tree.clone(), &theirs.label)?;
        treemerge::merge(self.repo, &b, &o, &t, write)
    }

    fn apply(&self, acc: Side<'r>, outcome: &Outcome) -> Result<Side<'r>, GitError> {
        let mut acc = acc;
        let tree =
            treemerge::apply_to_tree(self.repo, &acc.tree, outcome, |p| acc.at(p, self.base))?;
        for (p, e) in &outcome.result {
            if *e == self.base.get(p) {
                acc.changed.remove(p);
            } else {
                acc.changed.insert(p.clone(), *e);
            }
        }
        for (old, new) in &outcome.renames {
            acc.renamed_to.insert(old.clone(), new.clone());
            acc.renamed_from.insert(new.clone(), old.clone());
        }
        acc.tree = tree;
        Ok(acc)
    }
}

/// The conflicting pairs computed among `members` (for large clusters: the pairs the
/// order needed, one pass over the computed pairs).
fn pair_keys_in(
    pairs: &BTreeMap<(usize, usize), PairForecast>,
    members: &BTreeSet<usize>,
) -> usize {
    pairs
        .iter()
        .filter(|((x, y), p)| {
            !p.conflict_paths.is_empty() && members.contains(x) && members.contains(y)
        })
        .count()
}

/// How close two branches' changes are on `path` (or a path above or below it): 0 for a
/// whole-file touch, else the gap in lines between their nearest changed regions; None if
/// the second branch touches nothing there.
fn distance(
    mine: &BTreeMap<String, Touch>,
    theirs: &BTreeMap<String, Touch>,
    path: &str,
) -> Option<u64> {
    let related = |p: &str| {
        p == path || p.starts_with(&format!("{path}/")) || path.starts_with(&format!("{p}/"))
    };
    let theirs_here: Vec<(&String, &Touch)> = theirs.iter().filter(|(p, _)| related(p)).collect();
    if theirs_here.is_empty() {
        return None;
    }
    let gap = |a: &Range<u64>, b: &Range<u64>| {
        if a.end < b.start {
            b.start - a.end
        } else {
            a.start.saturating_sub(b.end)
        }
    };
    let mut best = u64::MAX;
    for (p, t) in theirs_here {
        match (mine.get(p.as_str()), t) {
            (Some(Touch::Lines(x)), Touch::Lines(y)) => {
                for a in x {
                    for b in y {
                        best = best.min(gap(a, b));
                    }
                }
            }
            _ => best = 0,
        }
    }
    Some(best)
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// `cluster #1` or `clusters #1, #2`.
fn clusters_label(ids: &[usize]) -> String {
    format!(
        "{} {}",
        if ids.len() == 1 {
            "cluster"
        } else {
            "clusters"
        },
        join_ids(ids)
    )
}

fn join_ids(ids: &[usize]) -> String {
    ids.iter()
        .map(|i| format!("#{i}"))
        .collect::<Vec<_>>()
        .join(", ")
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
