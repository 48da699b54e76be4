//! `.worktreeinclude`: ignored files (such as `.env`) copied from the main worktree into an
//! agent worktree when a workstream's branch is prepared. The file at the main worktree's
//! root lists paths or globs, one per line (`#` comments; `*` and `?` match within one path
//! component, `**` any number of directories). A match is copied only if it exists, is
//! ignored by git in the main worktree and is not tracked; a path tracked in the agent's
//! worktree is never overwritten.

use super::repo::Ctx;
use super::slots::remove_path;
use super::{GitError, RepoPaths};
use git2::Repository;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// The file's name, at the main worktree's root.
pub const WORKTREE_INCLUDE: &str = ".worktreeinclude";

/// Most paths one pattern may match (a `**` pattern over a huge tree stops here).
const MAX_MATCHES: usize = 10_000;

/// Copy what `.worktreeinclude` lists into `worktree`. Nothing to do (and no cost beyond one
/// `stat`) when the file does not exist. Copies are skipped when the destination already
/// has the same size and modification time.
pub(crate) fn copy_worktree_includes(repo: &RepoPaths, worktree: &Path) -> Result<(), GitError> {
    let list = repo.root.join(WORKTREE_INCLUDE);
    let text = match fs::read_to_string(&list) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(GitError(format!("failed to read {}: {e}", list.display()))),
    };
    let patterns = parse(&text);
    if patterns.is_empty() {
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
    let mut matches = Vec::new();
    for p in &patterns {
        expand(&repo.root, p, &mut matches);
    }
    matches.sort();
    matches.dedup();
    for rel in matches {
        let ignored = main.is_path_ignored(&rel).unwrap_or(false);
        if !ignored || main_index.get_path(&rel, 0).is_some() {
            continue;
        }
        copy_tree(&repo.root, worktree, &rel, &|r: &Path| {
            wt_index.get_path(r, 0).is_some()
        })?;
    }
    Ok(())
}

/// Patterns as path components; blank lines, comments and lines escaping the root are
/// dropped. A leading `/` anchors nothing more than a bare pattern does (both are relative
/// to the root).
pub(crate) fn parse(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let l = l.trim_start_matches('/').trim_end_matches('/');
            let parts: Vec<String> = Path::new(l)
                .components()
                .map(|c| match c {
                    Component::Normal(n) => n.to_str().map(str::to_string),
                    _ => None,
                })
                .collect::<Option<_>>()?;
            (!parts.is_empty() && parts.iter().all(|p| p != ".git")).then_some(parts)
        })
        .collect()
}

/// `*` and `?` within one component.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// Existing paths under `root` (relative) matching `pattern`, never inside `.git`.
fn expand(root: &Path, pattern: &[String], out: &mut Vec<PathBuf>) {
    fn walk(root: &Path, rel: &Path, pattern: &[String], out: &mut Vec<PathBuf>) {
        if out.len() >= MAX_MATCHES {
            return;
        }
        let Some((first, rest)) = pattern.split_first() else {
            if !rel.as_os_str().is_empty() {
                out.push(rel.to_path_buf());
            }
            return;
        };
        let dir = root.join(rel);
        if first == "**" {
            // Zero directories, then one more directory and `**` again.
            walk(root, rel, rest, out);
            for (name, is_dir) in entries(&dir) {
                if is_dir {
                    walk(root, &rel.join(&name), pattern, out);
                }
            }
        } else if has_glob(first) {
            for (name, _) in entries(&dir) {
                if glob_match(first, &name) {
                    walk(root, &rel.join(&name), rest, out);
                }
            }
        } else if fs::symlink_metadata(dir.join(first)).is_ok() {
            walk(root, &rel.join(first), rest, out);
        }
    }
    walk(root, Path::new(""), pattern, out);
}

/// Names in `dir` (not `.git`), with whether each is a real directory.
fn entries(dir: &Path) -> Vec<(String, bool)> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<(String, bool)> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let is_dir = e.file_type().ok()?.is_dir();
            (name != ".git").then_some((name, is_dir))
        })
        .collect();
    v.sort();
    v
}

/// Copy `rel` (a file, symlink or directory) from `from` to `to`, skipping anything
/// `tracked` says is a tracked file in the destination, and files whose copy is already current.
fn copy_tree(
    from: &Path,
    to: &Path,
    rel: &Path,
    tracked: &dyn Fn(&Path) -> bool,
) -> Result<(), GitError> {
    let src = from.join(rel);
    let dst = to.join(rel);
    let Ok(meta) = fs::symlink_metadata(&src) else {
        return Ok(());
    };
    if meta.is_dir() {
        if rel.file_name().is_some_and(|n| n == ".git") {
            return Ok(());
        }
        for (name, _) in entries(&src) {
            copy_tree(from, to, &rel.join(name), tracked)?;
        }
        return Ok(());
    }
    if index_tracks(rel, tracked) {
        return Ok(());
    }
    let fail = |e: std::io::Error| {
        GitError(format!(
            "failed to copy {} into the agent worktree {} (listed in {WORKTREE_INCLUDE}): {e}",
            src.display(),
            to.display()
        ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_within_a_component() {
        assert!(glob_match(".env", ".env"));
        assert!(glob_match(".env*", ".env.local"));
        assert!(glob_match("*.local", "config.local"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "abbc"));
        assert!(!glob_match("*.local", "config.local.bak"));
        assert!(glob_match("*", "anything"));
    }

    #[test]
    fn patterns_drop_comments_and_escapes() {
        let p = parse("# secrets\n.env\n\n/config/*.local\n../outside\n.git/config\n!neg\n");
        assert_eq!(
            p,
            vec![
                vec![".env".to_string()],
                vec!["config".to_string(), "*.local".to_string()]
            ]
        );
    }
}
