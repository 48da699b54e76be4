//! A three-way merge of trees with git's rules (merge-ort with one merge base), in memory,
//! over what each side changed rather than over whole trees.
//!
//! Each side is the diff base → side with rename detection (libgit2, git's defaults: 50 %
//! similarity, exact renames first). The merge then follows merge-ort: renames are paired
//! across sides (rename/modify merges content at the new path, rename/delete, rename/rename
//! to one or two paths, rename/add collisions), directories renamed on one side carry the
//! other side's new files along (`merge.directoryRenames=conflict`, git's default, so such a
//! file is a "file location" conflict), a file where the merged tree has a directory is a
//! file/directory conflict, modes merge as git merges them, and file contents merge with
//! git's own xdiff routine ([`super::xmerge`]). Conflicts are reported at the paths `git
//! merge-tree --write-tree --name-only` lists, except that git names a file moved out of a
//! directory's way `path~branch` where this reports `path`.
//!
//! Only the paths either side changed, and the paths related to them (rename partners,
//! parent and child paths, directories renamed), are looked at: a merge costs in proportion
//! to the changes, not to the size of the repository.

use super::attributes::Attributes;
use super::mergedriver::{self, Labels};
use super::repo::Ctx;
use super::xmerge::TextMerge;
use super::GitError;
use git2::{Delta, DiffFindOptions, DiffOptions, ObjectType, Oid, Repository, Tree};
use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

const TYPE_MASK: u32 = 0o170000;
const REGULAR: u32 = 0o100000;
/// git's default `merge.renameLimit` for merge-ort.
const RENAME_LIMIT: usize = 7000;

/// One tree entry that is not a directory: a blob (file or symlink) or a gitlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Entry {
    pub oid: Oid,
    pub mode: u32,
}

impl Entry {
    fn kind(&self) -> u32 {
        self.mode & TYPE_MASK
    }
}

/// Why a path conflicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum ConflictKind {
    /// Both sides changed the same lines of a text file.
    Content,
    /// Both sides added the file with different contents.
    AddAdd,
    /// Both sides changed a binary file differently.
    Binary,
    /// Both sides changed a symlink's target, or a submodule's commit, differently.
    Link,
    /// Both sides changed the executable bit differently.
    Mode,
    /// One side deleted the file, the other changed it.
    ModifyDelete,
    /// The two sides made it different kinds of thing (file, symlink, submodule).
    DistinctTypes,
    /// One side renamed the file, the other deleted it.
    RenameDelete,
    /// The two sides renamed the file to different paths.
    RenameRename,
    /// Two files ended up at one path (a rename onto a path the other side added, or two
    /// renames onto one path).
    Collision,
    /// One side has a file where the merged tree has a directory.
    FileDirectory,
    /// A file added in a directory the other side renamed (git moves it, and asks).
    FileLocation,
}

impl ConflictKind {
    /// The label git prints in its `CONFLICT (…)` message.
    pub fn label(self) -> &'static str {
        match self {
            ConflictKind::Content => "content",
            ConflictKind::AddAdd => "add/add",
            ConflictKind::Binary => "binary",
            ConflictKind::Link => "link",
            ConflictKind::Mode => "mode",
            ConflictKind::ModifyDelete => "modify/delete",
            ConflictKind::DistinctTypes => "distinct types",
            ConflictKind::RenameDelete => "rename/delete",
            ConflictKind::RenameRename => "rename/rename",
            ConflictKind::Collision => "rename/add",
            ConflictKind::FileDirectory => "file/directory",
            ConflictKind::FileLocation => "file location",
        }
    }
}

/// One conflict of a merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Conflict {
    /// Where the conflict is (the new path of a rename).
    pub path: String,
    pub kind: ConflictKind,
    /// Further paths git lists for this conflict (rename/rename: the source and the other
    /// side's target).
    pub also: Vec<String>,
    /// The base, ours and theirs versions involved (for showing the conflict).
    pub base: Option<Entry>,
    pub ours: Option<Entry>,
    pub theirs: Option<Entry>,
    /// A sentence for the kinds that have no line-level detail.
    pub note: String,
}

/// The result of a merge.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    /// Sorted by path.
    pub conflicts: Vec<Conflict>,
    /// The merged state of every path the merge looked at (None = absent). Paths not listed
    /// are as on the first side (ours).
    pub result: BTreeMap<String, Option<Entry>>,
    /// Renames (old → new) whose result the merged tree holds.
    pub renames: Vec<(String, String)>,
}

impl Outcome {
    pub fn is_clean(&self) -> bool {
        self.conflicts.is_empty()
    }

    /// Every path git lists as conflicted, sorted and distinct.
    pub fn conflict_paths(&self) -> Vec<String> {
        let mut set = BTreeSet::new();
        for c in &self.conflicts {
            set.insert(c.path.clone());
            set.extend(c.also.iter().cloned());
        }
        set.into_iter().collect()
    }
}

/// The merge base, with cached lookups.
pub(crate) struct Base<'r> {
    pub tree: Tree<'r>,
    entries: RefCell<HashMap<String, Option<Entry>>>,
    files_under: RefCell<HashMap<String, usize>>,
    /// The repository's merge attributes, read on the first content merge.
    attrs: OnceCell<Attributes>,
}

impl<'r> Base<'r> {
    pub fn new(tree: Tree<'r>) -> Self {
        Base {
            tree,
            entries: RefCell::default(),
            files_under: RefCell::default(),
            attrs: OnceCell::new(),
        }
    }

    /// The merge attributes, as `git merge-tree` in `repo` reads them.
    fn attributes(&self, repo: &Repository) -> &Attributes {
        self.attrs.get_or_init(|| Attributes::load(repo))
    }

    /// The file (or link) at `path`, if any.
    pub fn get(&self, path: &str) -> Option<Entry> {
        if let Some(e) = self.entries.borrow().get(path) {
            return *e;
        }
        let e = file_at(&self.tree, path);
        self.entries.borrow_mut().insert(path.to_string(), e);
        e
    }

    fn is_dir(&self, path: &str) -> bool {
        dir_at(&self.tree, path)
    }

    /// How many files the base has under directory `dir` (0 if it is not a directory).
    fn count_files_under(&self, repo: &Repository, dir: &str) -> usize {
        if let Some(n) = self.files_under.borrow().get(dir) {
            return *n;
        }
        let n = match self.tree.get_path(Path::new(dir)) {
            Ok(e) if e.kind() == Some(ObjectType::Tree) => repo
                .find_tree(e.id())
                .map(|t| {
                    let mut n = 0usize;
                    let _ = t.walk(git2::TreeWalkMode::PreOrder, |_, e| {
                        if e.kind() != Some(ObjectType::Tree) {
                            n += 1;
                        }
                        git2::TreeWalkResult::Ok
                    });
                    n
                })
                .unwrap_or(0),
            _ => 0,
        };
        self.files_under.borrow_mut().insert(dir.to_string(), n);
        n
    }
}

fn file_at(tree: &Tree<'_>, path: &str) -> Option<Entry> {
    let e = tree.get_path(Path::new(path)).ok()?;
    if e.kind() == Some(ObjectType::Tree) {
        return None;
    }
    Some(Entry {
        oid: e.id(),
        mode: e.filemode() as u32,
    })
}

fn dir_at(tree: &Tree<'_>, path: &str) -> bool {
    matches!(tree.get_path(Path::new(path)), Ok(e) if e.kind() == Some(ObjectType::Tree))
}

/// What one side did relative to the base.
pub(crate) struct Side<'r> {
    /// The side's name in messages (a workstream id, "integration").
    pub label: String,
    /// The side's tree.
    pub tree: Tree<'r>,
    /// The new state of every path the side changed (None = deleted; a rename's old path is
    /// listed as deleted, its new path as added).
    pub changed: BTreeMap<String, Option<Entry>>,
    /// Renames old → new.
    pub renamed_to: BTreeMap<String, String>,
    /// Renames new → old.
    pub renamed_from: BTreeMap<String, String>,
}

impl<'r> Side<'r> {
    /// Diff `base` → `tree` with git's rename detection. Subtrees with the same id on both
    /// sides are skipped, so this costs what changed, not the size of the tree; rename
    /// detection (libgit2, 50 %) runs on the changed paths only, when some were deleted and
    /// others added.
    pub fn from_trees(
        repo: &'r Repository,
        base: &Tree<'r>,
        tree: Tree<'r>,
        label: &str,
    ) -> Result<Self, GitError> {
        let what = || format!("diff the merge base against {label}");
        let mut side = Side {
            label: label.to_string(),
            tree,
            changed: BTreeMap::new(),
            renamed_to: BTreeMap::new(),
            renamed_from: BTreeMap::new(),
        };
        let mut changes: Vec<(String, Option<Entry>, Option<Entry>)> = Vec::new();
        tree_changes(repo, "", Some(base), Some(&side.tree), &mut changes).ctx(what)?;
        let (mut deleted, mut added) = (false, false);
        for (path, old, new) in &changes {
            side.changed.insert(path.clone(), *new);
            deleted |= new.is_none();
            added |= old.is_none();
        }
        if !(deleted && added) {
            return Ok(side);
        }
        let mut opts = DiffOptions::new();
        opts.include_typechange(true).disable_pathspec_match(true);
        for (path, _, _) in &changes {
            opts.pathspec(path);
        }
        let mut diff = repo
            .diff_tree_to_tree(Some(base), Some(&side.tree), Some(&mut opts))
            .ctx(what)?;
        let mut find = DiffFindOptions::new();
        find.renames(true)
            .rename_threshold(50)
            .rename_limit(RENAME_LIMIT);
        diff.find_similar(Some(&mut find)).ctx(what)?;
        let path = |f: &git2::DiffFile<'_>| {
            f.path_bytes()
                .map(|p| String::from_utf8_lossy(p).into_owned())
        };
        for d in diff.deltas() {
            if d.status() == Delta::Renamed {
                if let (Some(o), Some(n)) = (path(&d.old_file()), path(&d.new_file())) {
                    side.renamed_to.insert(o.clone(), n.clone());
                    side.renamed_from.insert(n, o);
                }
            }
        }
        Ok(side)
    }

    /// The side's file at `path`.
    pub fn at(&self, path: &str, base: &Base<'_>) -> Option<Entry> {
        match self.changed.get(path) {
            Some(e) => *e,
            None => base.get(path),
        }
    }

    fn touches_under(&self, dir: &str) -> impl Iterator<Item = &String> {
        under(&self.changed, dir)
    }
}

/// The files that differ between two trees (path, before, after), skipping subtrees whose
/// ids are equal. A file replaced by a directory (or the other way round) is a deletion
/// and additions.
pub(crate) fn tree_changes(
    repo: &Repository,
    prefix: &str,
    a: Option<&Tree<'_>>,
    b: Option<&Tree<'_>>,
    out: &mut Vec<(String, Option<Entry>, Option<Entry>)>,
) -> Result<(), git2::Error> {
    type Slot = (Option<(Oid, u32, bool)>, Option<(Oid, u32, bool)>);
    let mut names: BTreeMap<Vec<u8>, Slot> = BTreeMap::new();
    for (tree, second) in [(a, false), (b, true)] {
        let Some(tree) = tree else { continue };
        for e in tree.iter() {
            let is_tree = e.kind() == Some(ObjectType::Tree);
            let v = (e.id(), e.filemode() as u32, is_tree);
            let slot = names.entry(e.name_bytes().to_vec()).or_default();
            if second {
                slot.1 = Some(v);
            } else {
                slot.0 = Some(v);
            }
        }
    }
    for (name, (x, y)) in names {
        if x.is_some() && x == y {
            continue;
        }
        let path = format!("{prefix}{}", String::from_utf8_lossy(&name));
        let file = |v: Option<(Oid, u32, bool)>| {
            v.filter(|v| !v.2).map(|(oid, mode, _)| Entry { oid, mode })
        };
        let subtree = |v: Option<(Oid, u32, bool)>| -> Result<Option<Tree<'_>>, git2::Error> {
            match v {
                Some((oid, _, true)) => repo.find_tree(oid).map(Some),
                _ => Ok(None),
            }
        };
        let (fx, fy) = (file(x), file(y));
        if fx.is_some() || fy.is_some() {
            out.push((path.clone(), fx, fy));
        }
        let (tx, ty) = (subtree(x)?, subtree(y)?);
        if tx.is_some() || ty.is_some() {
            tree_changes(repo, &format!("{path}/"), tx.as_ref(), ty.as_ref(), out)?;
        }
    }
    Ok(())
}

/// Keys of `map` strictly under directory `dir`.
fn under<'m, V>(map: &'m BTreeMap<String, V>, dir: &str) -> impl Iterator<Item = &'m String> {
    let lo = format!("{dir}/");
    let hi = format!("{dir}0"); // '0' sorts right after '/'
    map.range(lo..hi).map(|(k, _)| k)
}

/// `a/b/c` → `a/b`, `a/b` → `a`, `a` → nothing.
fn ancestors(p: &str) -> impl Iterator<Item = &str> {
    p.char_indices()
        .rev()
        .filter(|&(_, c)| c == '/')
        .map(move |(i, _)| &p[..i])
}

/// Directories one side renamed: `old dir → new dir`, by merge-ort's rule. A rename
/// `a/b/x → c/d/x` votes for its own directory's move `a/b → c/d` if `a/b` no longer exists
/// on the side, and for each parent's move while the trailing components agree (`a → c` if
/// `b` and `d` were equal) if that parent no longer exists on the side and the other side
/// added a file directly in it. Each old directory goes where most of its files went (a
/// tie: nowhere). `added_by_other` holds the directories the other side added files in.
fn directory_renames(
    side: &Side<'_>,
    base: &Base<'_>,
    added_by_other: &BTreeSet<String>,
) -> BTreeMap<String, String> {
    let mut votes: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut removed: HashMap<String, bool> = HashMap::new();
    let mut is_removed = |d: &str| -> bool {
        *removed
            .entry(d.to_string())
            .or_insert_with(|| base.is_dir(d) && !dir_at(&side.tree, d))
    };
    for (old, new) in &side.renamed_to {
        let mut od: Vec<&str> = old.split('/').collect();
        let mut nd: Vec<&str> = new.split('/').collect();
        od.pop();
        nd.pop();
        let mut first = true;
        loop {
            if od.is_empty() {
                break;
            }
            let o = od.join("/");
            if !is_removed(&o) {
                break;
            }
            if first || added_by_other.contains(&o) {
                *votes.entry(o).or_default().entry(nd.join("/")).or_default() += 1;
            } else if !first {
                break;
            }
            first = false;
            if nd.is_empty() || od.pop() != nd.pop() {
                break;
            }
        }
    }
    let mut out = BTreeMap::new();
    for (old, targets) in votes {
        let max = targets.values().copied().max().unwrap_or(0);
        let mut best = targets.iter().filter(|(_, &n)| n == max);
        if let (Some((dir, _)), None) = (best.next(), best.next()) {
            out.insert(old, dir.clone());
        }
    }
    out
}

/// Directories a side removed that files were renamed out of (every level): where the
/// other side's new files may be moved by a directory rename. A superset of what
/// [`merge`] moves, for grouping workstreams that may interact.
pub(crate) fn renamed_away_dirs(side: &Side<'_>, base: &Base<'_>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for old in side.renamed_to.keys() {
        for d in ancestors(old) {
            if out.contains(d) || !base.is_dir(d) || dir_at(&side.tree, d) {
                break;
            }
            out.insert(d.to_string());
        }
    }
    out
}

/// The directories a side added files in (added, or renamed into), for
/// [`directory_renames`] of the other side.
fn dirs_added_in(side: &Side<'_>, base: &Base<'_>) -> BTreeSet<String> {
    side.changed
        .iter()
        .filter(|(p, e)| e.is_some() && base.get(p).is_none())
        .filter_map(|(p, _)| p.rfind('/').map(|i| p[..i].to_string()))
        .collect()
}

/// The deepest directory of `path` that `renames` moves, and where `path` goes.
fn relocate(path: &str, renames: &BTreeMap<String, String>) -> Option<String> {
    ancestors(path).find_map(|d| {
        renames.get(d).map(|to| {
            let rest = &path[d.len() + 1..];
            if to.is_empty() {
                rest.to_string()
            } else {
                format!("{to}/{rest}")
            }
        })
    })
}

#[derive(Debug, Clone)]
struct Item {
    base: Option<Entry>,
    ours: Option<Entry>,
    theirs: Option<Entry>,
    /// Decided before content: a rename/delete or rename/rename conflict.
    forced: Option<(ConflictKind, Vec<String>, String)>,
    /// A second file that landed on this path (rename/add, two renames onto one path).
    collision: Option<Box<Item>>,
    /// Moved here by the other side's directory rename (from this path).
    moved_from: Option<String>,
    /// The side (0 ours, 1 theirs) that alone brought this path into being (an add, or a
    /// rename only it made): the file the other side's directory renames carry along.
    added_by: Option<usize>,
}

impl Item {
    fn new(base: Option<Entry>, ours: Option<Entry>, theirs: Option<Entry>) -> Self {
        Item {
            base,
            ours,
            theirs,
            forced: None,
            collision: None,
            moved_from: None,
            added_by: None,
        }
    }
}

/// Merges file contents; `write` stores merged blobs in the object database (needed when
/// the result becomes a tree), otherwise only their ids are computed.
struct Contents<'a> {
    repo: &'a Repository,
    write: bool,
    attrs: &'a Attributes,
    ours: &'a str,
    theirs: &'a str,
}

impl Contents<'_> {
    fn blob(&self, e: Option<Entry>) -> Result<Vec<u8>, GitError> {
        match e {
            None => Ok(Vec::new()),
            Some(e) => Ok(self
                .repo
                .find_blob(e.oid)
                .ctx(|| format!("read blob {}", e.oid))?
                .content()
                .to_vec()),
        }
    }

    fn store(&self, data: &[u8]) -> Result<Oid, GitError> {
        if self.write {
            self.repo
                .blob(data)
                .ctx(|| "write a merged file".to_string())
        } else {
            Oid::hash_object(ObjectType::Blob, data).ctx(|| "hash a merged file".to_string())
        }
    }

    /// merge-ort's three-way resolution of one path: the result, and the conflict if any.
    fn resolve(
        &self,
        path: &str,
        o: Option<Entry>,
        a: Option<Entry>,
        b: Option<Entry>,
    ) -> Result<(Option<Entry>, Option<ConflictKind>), GitError> {
        if a == b {
            return Ok((a, None));
        }
        if a == o {
            return Ok((b, None));
        }
        if b == o {
            return Ok((a, None));
        }
        let (a, b) = match (a, b) {
            (Some(a), Some(b)) => (a, b),
            (Some(x), None) | (None, Some(x)) => {
                return Ok((Some(x), Some(ConflictKind::ModifyDelete)))
            }
            (None, None) => unreachable!("a == b handled above"),
        };
        if a.kind() != b.kind() {
            return Ok((Some(a), Some(ConflictKind::DistinctTypes)));
        }
        let o_mode = o.map_or(0, |e| e.mode);
        let (mode, mode_clean) = if a.mode == b.mode || a.mode == o_mode {
            (b.mode, true)
        } else {
            (a.mode, b.mode == o_mode)
        };
        let o_oid = o.map(|e| e.oid);
        let (oid, content_conflict) = if a.oid == b.oid || Some(a.oid) == o_oid {
            (b.oid, None)
        } else if Some(b.oid) == o_oid {
            (a.oid, None)
        } else if a.kind() == REGULAR {
            let base = self.blob(o)?;
            let (ours, theirs) = (self.blob(Some(a))?, self.blob(Some(b))?);
            let attrs = self.attrs.of(self.repo, path);
            let labels = Labels {
                base: "base",
                ours: self.ours,
                theirs: self.theirs,
            };
            let run_dir = &self.attrs.run_dir;
            match mergedriver::merge_file(&attrs, run_dir, path, &base, &ours, &theirs, &labels) {
                TextMerge::Clean(merged) => (self.store(&merged)?, None),
                TextMerge::Conflict if o.is_none() => (a.oid, Some(ConflictKind::AddAdd)),
                TextMerge::Conflict => (a.oid, Some(ConflictKind::Content)),
                TextMerge::Binary => (a.oid, Some(ConflictKind::Binary)),
            }
        } else {
            (a.oid, Some(ConflictKind::Link))
        };
        let conflict = content_conflict.or((!mode_clean).then_some(ConflictKind::Mode));
        Ok((Some(Entry { oid, mode }), conflict))
    }
}

/// The paths the merge must look at: everything the second side (the one merged in)
/// changed, closed under "related" (the same path on the first side, rename partners,
/// parent files and child paths, paths under a directory either side renamed, where such
/// paths move to). What the first side changed elsewhere stays as it is, unexamined, so a
/// merge onto a large accumulated result costs what the merged branch changed.
fn universe(
    sides: [&Side<'_>; 2],
    dir_renames: [&BTreeMap<String, String>; 2],
) -> BTreeSet<String> {
    let (big, small) = (sides[0], sides[1]);
    let mut set: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<String> = small.changed.keys().cloned().collect();
    for (i, renames) in dir_renames.iter().enumerate() {
        let other = sides[1 - i];
        for dir in renames.keys() {
            todo.extend(other.touches_under(dir).cloned());
        }
    }
    while let Some(p) = todo.pop() {
        if !set.insert(p.clone()) {
            continue;
        }
        for s in [small, big] {
            if s.changed.contains_key(&p) {
                if let Some(n) = s.renamed_to.get(&p) {
                    todo.push(n.clone());
                }
                if let Some(o) = s.renamed_from.get(&p) {
                    todo.push(o.clone());
                }
            }
            for a in ancestors(&p) {
                if s.changed.contains_key(a) {
                    todo.push(a.to_string());
                }
            }
            todo.extend(s.touches_under(&p).filter(|q| !set.contains(*q)).cloned());
        }
        for renames in dir_renames {
            if let Some(to) = relocate(&p, renames) {
                if !set.contains(&to) {
                    todo.push(to);
                }
            }
        }
    }
    set
}

/// Merge `ours` and `theirs` (both relative to `base`) as git would.
pub(crate) fn merge(
    repo: &Repository,
    base: &Base<'_>,
    ours: &Side<'_>,
    theirs: &Side<'_>,
    write: bool,
) -> Result<Outcome, GitError> {
    let contents = Contents {
        repo,
        write,
        attrs: base.attributes(repo),
        ours: &ours.label,
        theirs: &theirs.label,
    };
    let (dr_ours, dr_theirs) = one_sided_directory_renames(base, ours, theirs);
    let paths = universe([ours, theirs], [&dr_ours, &dr_theirs]);
    let mut pairing = pair_renames(base, ours, theirs, &paths);
    add_unrenamed_paths(&mut pairing, base, ours, theirs, &paths);
    let Pairing {
        mut items,
        renames_done: mut renames,
        ..
    } = pairing;
    let location_conflicts =
        follow_directory_renames(&mut items, base, ours, theirs, [&dr_ours, &dr_theirs]);
    let (result, mut conflicts) = resolve_items(&contents, &items, location_conflicts)?;
    for c in file_directory_conflicts(repo, base, ours, theirs, &items, &result) {
        conflicts.retain(|x| x.path != c.path);
        conflicts.push(c);
    }
    conflicts.sort_by(|x, y| x.path.cmp(&y.path));
    renames.retain(|(_, n)| result.get(n).is_some_and(|e| e.is_some()));
    Ok(Outcome {
        conflicts,
        result,
        renames,
    })
}

/// Directory renames of each side; a directory renamed on both sides is left to the file
/// renames.
fn one_sided_directory_renames(
    base: &Base<'_>,
    ours: &Side<'_>,
    theirs: &Side<'_>,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut dr_ours = directory_renames(ours, base, &dirs_added_in(theirs, base));
    let mut dr_theirs = directory_renames(theirs, base, &dirs_added_in(ours, base));
    let both: Vec<String> = dr_ours
        .keys()
        .filter(|d| dr_theirs.contains_key(*d))
        .cloned()
        .collect();
    for d in &both {
        dr_ours.remove(d);
        dr_theirs.remove(d);
    }
    (dr_ours, dr_theirs)
}

/// Every path's three versions, as renames pair them up so far.
struct Pairing {
    items: BTreeMap<String, Item>,
    /// Old paths of renames already paired.
    consumed: BTreeSet<String>,
    renames_done: Vec<(String, String)>,
}

/// Pair each rename with the other side's version of the file: ours first, then theirs
/// (those not already paired with one of ours).
fn pair_renames(
    base: &Base<'_>,
    ours: &Side<'_>,
    theirs: &Side<'_>,
    paths: &BTreeSet<String>,
) -> Pairing {
    let mut items: BTreeMap<String, Item> = BTreeMap::new();
    let mut consumed: BTreeSet<String> = BTreeSet::new();
    let mut renames_done: Vec<(String, String)> = Vec::new();
    let mut kept_in_place: Vec<(String, Entry)> = Vec::new();
    for (first, second, ours_first) in [(ours, theirs, true), (theirs, ours, false)] {
        for (old, new) in &first.renamed_to {
            if !paths.contains(old) || consumed.contains(old) {
                continue;
            }
            consumed.insert(old.clone());
            let o = base.get(old);
            let mine = first.at(new, base);
            let (mut item, other_new) = match second.renamed_to.get(old) {
                Some(new2) if new2 == new => (Item::new(o, mine, second.at(new, base)), None),
                Some(new2) => {
                    let mut it = Item::new(o, mine, None);
                    it.forced = Some((
                        ConflictKind::RenameRename,
                        vec![old.clone()],
                        format!(
                            "{old} renamed to {new} in {} and to {new2} in {}",
                            first.label, second.label
                        ),
                    ));
                    (it, Some(new2.clone()))
                }
                None => match second.at(old, base) {
                    // merge-ort does not merge a rename with a change of type: the other
                    // side's new kind of thing stays at the old path, the rename conflicts.
                    Some(changed) if o.is_some_and(|o| o.kind() != changed.kind()) => {
                        let mut it = Item::new(o, mine, None);
                        it.forced = Some((
                            ConflictKind::DistinctTypes,
                            Vec::new(),
                            format!(
                                "{old} renamed to {new} in {}, but made a different kind of file in {}",
                                first.label, second.label
                            ),
                        ));
                        kept_in_place.push((old.clone(), changed));
                        (it, None)
                    }
                    Some(theirs_old) => (Item::new(o, mine, Some(theirs_old)), None),
                    None => {
                        let mut it = Item::new(o, mine, None);
                        it.forced = Some((
                            ConflictKind::RenameDelete,
                            Vec::new(),
                            format!(
                                "{old} renamed to {new} in {}, but deleted in {}",
                                first.label, second.label
                            ),
                        ));
                        (it, None)
                    }
                },
            };
            if second.renamed_to.get(old) != Some(new) {
                item.added_by = Some(if ours_first { 0 } else { 1 });
            }
            if !ours_first {
                std::mem::swap(&mut item.ours, &mut item.theirs);
            }
            // The other side's own file at the new path: an add, or its rename onto it.
            let other_here = match second.renamed_from.get(new) {
                Some(src) if src != old => {
                    let other_o = base.get(src);
                    let mut it = Item::new(other_o, first.at(src, base), second.at(new, base));
                    if !ours_first {
                        std::mem::swap(&mut it.ours, &mut it.theirs);
                    }
                    consumed.insert(src.clone());
                    Some(it)
                }
                Some(_) => None,
                None => match second.changed.get(new) {
                    Some(Some(e)) if second.renamed_to.get(old) != Some(new) => {
                        let mut it = Item::new(None, None, Some(*e));
                        if !ours_first {
                            std::mem::swap(&mut it.ours, &mut it.theirs);
                        }
                        Some(it)
                    }
                    _ => None,
                },
            };
            item.collision = other_here.map(Box::new);
            if let Some(new2) = other_new {
                // The other side's copy stays at its own new path, also in conflict.
                let mut it = Item::new(o, None, second.at(&new2, base));
                if !ours_first {
                    std::mem::swap(&mut it.ours, &mut it.theirs);
                }
                it.forced = Some((ConflictKind::RenameRename, Vec::new(), String::new()));
                it.added_by = Some(if ours_first { 1 } else { 0 });
                items.insert(new2, it);
            }
            renames_done.push((old.clone(), new.clone()));
            items.insert(new.clone(), item);
        }
    }
    for (old, e) in kept_in_place {
        items.insert(old, Item::new(Some(e), Some(e), Some(e)));
    }
    Pairing {
        items,
        consumed,
        renames_done,
    }
}

/// A renamed file's old path (unless something else took it), and every other path: base,
/// ours and theirs as they are.
fn add_unrenamed_paths(
    pairing: &mut Pairing,
    base: &Base<'_>,
    ours: &Side<'_>,
    theirs: &Side<'_>,
    paths: &BTreeSet<String>,
) {
    let Pairing {
        items, consumed, ..
    } = pairing;
    for old in consumed.iter() {
        if !items.contains_key(old) {
            items.insert(old.clone(), Item::new(base.get(old), None, None));
        }
    }
    for p in paths {
        if consumed.contains(p) || items.contains_key(p) {
            continue;
        }
        let mut it = Item::new(base.get(p), ours.at(p, base), theirs.at(p, base));
        if it.base.is_none() {
            it.added_by = match (it.ours.is_some(), it.theirs.is_some()) {
                (true, false) => Some(0),
                (false, true) => Some(1),
                _ => None,
            };
        }
        items.insert(p.clone(), it);
    }
}

/// Files one side added (or renamed) into a directory the other side renamed move along,
/// as a conflict (git's default `merge.directoryRenames=conflict`). Returns the files that
/// could not move because their new place is taken.
fn follow_directory_renames(
    items: &mut BTreeMap<String, Item>,
    base: &Base<'_>,
    ours: &Side<'_>,
    theirs: &Side<'_>,
    [dr_ours, dr_theirs]: [&BTreeMap<String, String>; 2],
) -> Vec<Conflict> {
    let mut moves: Vec<(String, String)> = Vec::new();
    for (p, it) in items.iter() {
        let renamed_by_other = match it.added_by {
            Some(0) => dr_theirs,
            Some(_) => dr_ours,
            None => continue,
        };
        if let Some(to) = relocate(p, renamed_by_other) {
            moves.push((p.clone(), to));
        }
    }
    let mut location_conflicts: Vec<Conflict> = Vec::new();
    for (from, to) in moves {
        let occupied = items
            .get(&to)
            .is_some_and(|t| t.ours.is_some() || t.theirs.is_some())
            || ours.at(&to, base).is_some()
            || theirs.at(&to, base).is_some();
        let mut it = items.remove(&from).expect("listed above");
        if occupied {
            // Two files for one place: leave it where it was, in conflict.
            location_conflicts.push(Conflict {
                path: from.clone(),
                kind: ConflictKind::FileLocation,
                also: Vec::new(),
                base: it.base,
                ours: it.ours,
                theirs: it.theirs,
                note: format!(
                    "{from} would move into a renamed directory, onto {to}, which is taken"
                ),
            });
            items.insert(from, it);
            continue;
        }
        it.moved_from = Some(from.clone());
        items.insert(from.clone(), Item::new(None, None, None));
        items.insert(to, it);
    }
    location_conflicts
}

/// Each path of the merged tree, `None` where it is deleted.
type MergedTree = BTreeMap<String, Option<Entry>>;

/// Resolve each path's contents; forced conflicts (renames), collisions and moved files
/// override what the content merge says.
fn resolve_items(
    contents: &Contents<'_>,
    items: &BTreeMap<String, Item>,
    location_conflicts: Vec<Conflict>,
) -> Result<(MergedTree, Vec<Conflict>), GitError> {
    let mut result: BTreeMap<String, Option<Entry>> = BTreeMap::new();
    let mut conflicts: Vec<Conflict> = location_conflicts;
    for (p, it) in items {
        let (mut entry, mut kind) = contents.resolve(p, it.base, it.ours, it.theirs)?;
        let mut also = Vec::new();
        let mut note = String::new();
        if let Some((k, extra, n)) = &it.forced {
            kind = Some(*k);
            also = extra.clone();
            note = n.clone();
            entry = it.ours.or(it.theirs);
        }
        if let Some(other) = &it.collision {
            let (e2, k2) = contents.resolve(p, other.base, other.ours, other.theirs)?;
            if kind.is_some() || k2.is_some() || entry != e2 {
                kind = Some(ConflictKind::Collision);
                note = format!("two different files end up at {p}");
            }
        }
        if let Some(from) = &it.moved_from {
            kind = kind.or(Some(ConflictKind::FileLocation));
            note = format!(
                "{from} was added inside a directory the other side renamed; git suggests {p}"
            );
        }
        result.insert(p.clone(), entry);
        if let Some(kind) = kind {
            conflicts.push(Conflict {
                path: p.clone(),
                kind,
                also,
                base: it.base,
                ours: it.ours,
                theirs: it.theirs,
                note,
            });
        }
    }
    Ok((result, conflicts))
}

/// A file where the merged tree still has a directory.
fn file_directory_conflicts(
    repo: &Repository,
    base: &Base<'_>,
    ours: &Side<'_>,
    theirs: &Side<'_>,
    items: &BTreeMap<String, Item>,
    result: &MergedTree,
) -> Vec<Conflict> {
    let mut df: Vec<Conflict> = Vec::new();
    for (p, e) in result {
        if e.is_none() {
            continue;
        }
        let mut files_below = under(result, p).filter(|q| result[*q].is_some());
        let dir_remains = files_below.next().is_some() || {
            let in_base = base.count_files_under(repo, p);
            in_base > 0 && in_base > under(result, p).filter(|q| base.get(q).is_some()).count()
        };
        if dir_remains {
            let it = &items[p];
            df.push(Conflict {
                path: p.clone(),
                kind: ConflictKind::FileDirectory,
                also: Vec::new(),
                base: it.base,
                ours: it.ours,
                theirs: it.theirs,
                note: format!(
                    "a file in {}, a directory in {}",
                    if it.ours.is_some() && it.ours != it.base {
                        &ours.label
                    } else {
                        &theirs.label
                    },
                    if it.ours.is_some() && it.ours != it.base {
                        &theirs.label
                    } else {
                        &ours.label
                    },
                ),
            });
        }
    }
    df
}

/// `tree` (the first side's) with a clean merge's results written in. Costs in proportion
/// to the paths that change. Removals go first (including a directory where a file
/// lands), then additions, so a file may replace a directory and the other way round.
pub(crate) fn apply_to_tree<'r>(
    repo: &'r Repository,
    tree: &Tree<'r>,
    outcome: &Outcome,
    current: impl Fn(&str) -> Option<Entry>,
) -> Result<Tree<'r>, GitError> {
    let what = || "write the merged tree".to_string();
    let mut removals = git2::build::TreeUpdateBuilder::new();
    let mut upserts = git2::build::TreeUpdateBuilder::new();
    let (mut any_removal, mut any_upsert) = (false, false);
    for (p, e) in &outcome.result {
        if current(p) == *e {
            continue;
        }
        match e {
            Some(e) => {
                if dir_at(tree, p) {
                    removals.remove(p.as_str());
                    any_removal = true;
                }
                upserts.upsert(p.as_str(), e.oid, file_mode(e.mode));
                any_upsert = true;
            }
            None => {
                removals.remove(p.as_str());
                any_removal = true;
            }
        }
    }
    let mut out = tree.clone();
    if any_removal {
        let id = removals.create_updated(repo, &out).ctx(what)?;
        out = repo.find_tree(id).ctx(what)?;
    }
    if any_upsert {
        let id = upserts.create_updated(repo, &out).ctx(what)?;
        out = repo.find_tree(id).ctx(what)?;
    }
    Ok(out)
}

fn file_mode(mode: u32) -> git2::FileMode {
    match mode {
        0o100755 => git2::FileMode::BlobExecutable,
        0o120000 => git2::FileMode::Link,
        0o160000 => git2::FileMode::Commit,
        0o100664 => git2::FileMode::BlobGroupWritable,
        _ => git2::FileMode::Blob,
    }
}
