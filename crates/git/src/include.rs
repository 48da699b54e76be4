//! `.worktreeinclude`: ignored files (such as `.env`) copied from the main worktree into an
//! agent worktree when a workstream's branch is prepared. The file at the main worktree's
//! root uses `.gitignore` syntax with its full semantics (the `ignore` crate's gitignore
//! matcher): `#` comments, `!` negation (the last matching line wins), a leading or middle
//! `/` anchors to the root while a bare name matches at any depth, `*`, `?`, `[...]`
//! classes, `**`, and a trailing `/` for directories only; as in git, a file inside a
//! listed directory cannot be re-included by a later `!` line. A match is copied only if
//! it exists, is ignored by git in the main worktree and is not tracked (in the main
//! worktree's index or the agent's); a tracked path in the agent's worktree is never
//! overwritten. `.git` and the tool's own `.state/` are never walked.

use super::error::io_disk_full;
use super::repo::Ctx;
use super::slots::remove_path;
use super::{GitError, RepoPaths};
use git2::{Index, Repository};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::fs;
use std::path::{Path, PathBuf};

/// The file's name, at the main worktree's root.
pub const WORKTREE_INCLUDE: &str = ".worktreeinclude";

/// Copy what `.worktreeinclude` lists into `worktree`. Nothing to do (and no cost beyond one
/// `stat`) when the file does not exist. Copies are skipped when the destination already
/// has the same size and modification time. A pattern the matcher rejects is an error
/// naming the file and line.
pub(crate) fn copy_worktree_includes(repo: &RepoPaths, worktree: &Path) -> Result<(), GitError> {
    let list = repo.root.join(WORKTREE_INCLUDE);
    let text = match fs::read_to_string(&list) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(GitError::Other(format!(
                "failed to read {}: {e}",
                list.display()
            )))
        }
    };
    let include = Include::parse(&list, &text)?;
    if include.matcher.is_empty() {
        return Ok(());
    }
    let mut matches = Vec::new();
    include.walk(&repo.root, Path::new(""), &mut matches);
    if matches.is_empty() {
        return Ok(());
    }
    let main = Repository::open(&repo.root)
        .ctx(|| format!("open the main worktree {}", repo.root.display()))?;
    let main_index = main
        .index()
        .ctx(|| format!("read the index of {}", repo.root.display()))?;
    let wt = Repository::open(worktree).ctx(|| format!("open worktree {}", worktree.display()))?;
    let wt_index = wt
        .index()
        .ctx(|| format!("read the index of worktree {}", worktree.display()))?;
    let tracked = |r: &Path| tracks(&main_index, r) || tracks(&wt_index, r);
    for rel in matches {
        // Everything inside a directory git ignores is ignored; otherwise ask per file.
        let dir_ignored = main.is_path_ignored(&rel).unwrap_or(false);
        let wanted =
            |r: &Path| !tracked(r) && (dir_ignored || main.is_path_ignored(r).unwrap_or(false));
        copy_tree(&repo.root, worktree, &rel, &wanted, &|r: &Path| {
            tracks(&wt_index, r)
        })?;
    }
    Ok(())
}

fn tracks(index: &Index, rel: &Path) -> bool {
    index.get_path(rel, 0).is_some()
}

/// The parsed `.worktreeinclude`: the matcher, and which directories can hold a match.
pub(crate) struct Include {
    matcher: Gitignore,
    /// Literal leading directories of each anchored pattern (`config/*.local` → `config`);
    /// `None` when some pattern can match at any depth, so every directory is walked.
    anchored_prefixes: Option<Vec<Vec<String>>>,
}

impl Include {
    /// Build the matcher from the file's text; `list` names it in errors.
    pub(crate) fn parse(list: &Path, text: &str) -> Result<Include, GitError> {
        let root = list.parent().unwrap_or(Path::new(""));
        let mut builder = GitignoreBuilder::new(root);
        let mut anchored_prefixes = Some(Vec::new());
        for (n, line) in text.lines().enumerate() {
            builder
                .add_line(Some(list.to_path_buf()), line)
                .map_err(|e| {
                    GitError::Other(format!(
                        "invalid pattern on line {} of {}: {e}",
                        n + 1,
                        list.display()
                    ))
                })?;
            match reach(line) {
                Reach::Nothing => {}
                Reach::Under(prefix) => {
                    if let Some(p) = anchored_prefixes.as_mut() {
                        p.push(prefix);
                    }
                }
                Reach::Anywhere => anchored_prefixes = None,
            }
        }
        let matcher = builder
            .build()
            .map_err(|e| GitError::Other(format!("invalid patterns in {}: {e}", list.display())))?;
        Ok(Include {
            matcher,
            anchored_prefixes,
        })
    }

    /// Whether `rel` (a path relative to the root) is listed, as [`Include::walk`] decides
    /// it: a listed parent directory lists everything inside, whatever later lines say.
    #[cfg(test)]
    pub(crate) fn is_listed(&self, rel: &Path, is_dir: bool) -> bool {
        let parents: Vec<&Path> = rel.ancestors().skip(1).collect();
        parents
            .iter()
            .rev()
            .filter(|p| !p.as_os_str().is_empty())
            .any(|p| self.matcher.matched(p, true).is_ignore())
            || self.matcher.matched(rel, is_dir).is_ignore()
    }

    /// Whether a match can lie below the directory `rel`.
    pub(crate) fn may_hold_matches(&self, rel: &Path) -> bool {
        let Some(prefixes) = &self.anchored_prefixes else {
            return true;
        };
        let dir: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
        prefixes.iter().any(|p| {
            let n = dir.len().min(p.len());
            dir[..n].iter().zip(&p[..n]).all(|(a, b)| a == b)
        })
    }

    /// Existing paths below `root/rel` that the patterns list, in sorted order. A listed
    /// directory is returned whole, not walked.
    fn walk(&self, root: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = fs::read_dir(root.join(rel)) else {
            return;
        };
        let mut entries: Vec<(std::ffi::OsString, bool)> = rd
            .flatten()
            .filter_map(|e| Some((e.file_name(), e.file_type().ok()?.is_dir())))
            .collect();
        entries.sort();
        for (name, is_dir) in entries {
            if name == ".git" || (rel.as_os_str().is_empty() && name == ".state") {
                continue;
            }
            let path = rel.join(&name);
            if self.matcher.matched(&path, is_dir).is_ignore() {
                out.push(path);
            } else if is_dir && self.may_hold_matches(&path) {
                self.walk(root, &path, out);
            }
        }
    }
}

/// Where a `.worktreeinclude` line can match.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Blank, comment or negation (a `!` line only takes matches away).
    Nothing,
    /// Only at or below these literal leading directories.
    Under(Vec<String>),
    /// At any depth (a bare name, a leading `**`, or escapes this check does not read).
    Anywhere,
}

pub(crate) fn reach(line: &str) -> Reach {
    let t = line.trim_end();
    if t.is_empty() || t.starts_with('#') || t.starts_with('!') {
        return Reach::Nothing;
    }
    let t = t.trim_end_matches('/');
    if t.contains('\\') || t.starts_with("**") {
        return Reach::Anywhere;
    }
    let anchored = t.starts_with('/') || t.contains('/');
    if !anchored {
        return Reach::Anywhere;
    }
    let prefix: Vec<String> = t
        .trim_start_matches('/')
        .split('/')
        .take_while(|c| !c.contains(['*', '?', '[']))
        .map(str::to_string)
        .collect();
    Reach::Under(prefix)
}

/// Copy `rel` (a file, symlink or directory) from `from` to `to`: the files `wanted`
/// accepts, except where `tracked` says the destination tracks the path or one of its
/// parent directories, and except files whose copy is already current.
fn copy_tree(
    from: &Path,
    to: &Path,
    rel: &Path,
    wanted: &dyn Fn(&Path) -> bool,
    tracked: &dyn Fn(&Path) -> bool,
) -> Result<(), GitError> {
    let src = from.join(rel);
    let dst = to.join(rel);
    let Ok(meta) = fs::symlink_metadata(&src) else {
        return Ok(());
    };
    if meta.is_dir() {
        let Ok(rd) = fs::read_dir(&src) else {
            return Ok(());
        };
        let mut names: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
        names.sort();
        for name in names.into_iter().filter(|n| n != ".git") {
            copy_tree(from, to, &rel.join(name), wanted, tracked)?;
        }
        return Ok(());
    }
    if !wanted(rel) || index_tracks(rel, tracked) {
        return Ok(());
    }
    let fail = |e: std::io::Error| {
        let sentence = format!(
            "failed to copy {} into the agent worktree {} (listed in {WORKTREE_INCLUDE}): {e}",
            src.display(),
            to.display()
        );
        GitError::failed(sentence, io_disk_full(&e))
    };
    if let Ok(existing) = fs::symlink_metadata(&dst) {
        let same = existing.file_type() == meta.file_type()
            && existing.len() == meta.len()
            && existing.modified().ok() == meta.modified().ok();
        if same {
            return Ok(());
        }
        remove_path(&dst)?;
    }
    if let Some(parent) = dst.parent() {
        // A tracked file where a parent directory should be: leave it alone.
        if fs::symlink_metadata(parent).is_ok_and(|m| !m.is_dir()) {
            return Ok(());
        }
        fs::create_dir_all(parent).map_err(fail)?;
    }
    if meta.file_type().is_symlink() {
        let target = fs::read_link(&src).map_err(fail)?;
        std::os::unix::fs::symlink(target, &dst).map_err(fail)?;
        return Ok(());
    }
    fs::copy(&src, &dst).map_err(fail)?;
    if let Ok(mtime) = meta.modified() {
        let _ = fs::File::options()
            .write(true)
            .open(&dst)
            .and_then(|f| f.set_modified(mtime));
    }
    Ok(())
}

/// `rel` or one of its parent directories is a tracked file in the destination.
fn index_tracks(rel: &Path, tracked: &dyn Fn(&Path) -> bool) -> bool {
    rel.ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .any(tracked)
}
