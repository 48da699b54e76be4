//! What a reviewer reads of one branch: its commits since the base and each changed file's
//! old and new text, as `git ws-review` shows them.

use super::repo::{Ctx, Repo};
use super::GitError;
use git2::{Delta, DiffFindOptions, Oid, Sort};

/// One changed file: its texts on both sides (`None`: absent on that side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTexts {
    pub path: String,
    /// The path before a rename.
    pub old_path: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
    /// A side is not text (it has a NUL byte, or is not UTF-8): no line diff.
    pub binary: bool,
}

/// One commit of the branch, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitLine {
    pub sha: String,
    pub summary: String,
    pub author: String,
    /// Seconds since the epoch.
    pub time: i64,
}

/// A blob larger than this is shown as too large, not read.
pub const MAX_BLOB_BYTES: usize = 8 << 20;

impl Repo {
    /// The files `tip` changes since its merge base with `base` (renames found), at most
    /// `limit` of them, each with both texts.
    pub fn file_texts(
        &self,
        base: &str,
        tip: &str,
        limit: usize,
    ) -> Result<Vec<FileTexts>, GitError> {
        let git = self.git();
        let (base_id, tip_id) = self.ends(base, tip)?;
        let from = git.merge_base(base_id, tip_id).unwrap_or(base_id);
        let tree = |id: Oid| git.find_commit(id).and_then(|c| c.tree());
        let old_tree = tree(from).ctx(|| format!("read the tree of {from}"))?;
        let new_tree = tree(tip_id).ctx(|| format!("read the tree of {tip}"))?;
        let mut diff = git
            .diff_tree_to_tree(Some(&old_tree), Some(&new_tree), None)
            .ctx(|| format!("diff {from}..{tip}"))?;
        diff.find_similar(Some(DiffFindOptions::new().renames(true)))
            .ctx(|| format!("find renames in {from}..{tip}"))?;
        let mut out = Vec::new();
        for delta in diff.deltas().take(limit) {
            let text = |id: Oid, present: bool| -> (Option<String>, bool) {
                if !present || id.is_zero() {
                    return (None, false);
                }
                match git.find_blob(id) {
                    Ok(b) if b.size() > MAX_BLOB_BYTES => (None, true),
                    Ok(b) => match std::str::from_utf8(b.content()) {
                        Ok(s) if !s.contains('\0') => (Some(s.to_string()), false),
                        _ => (None, true),
                    },
                    Err(_) => (None, true),
                }
            };
            let status = delta.status();
            let (old, old_bin) = text(delta.old_file().id(), status != Delta::Added);
            let (new, new_bin) = text(delta.new_file().id(), status != Delta::Deleted);
            let path_of = |f: git2::DiffFile| f.path().map(|p| p.to_string_lossy().into_owned());
            let path = path_of(delta.new_file())
                .or_else(|| path_of(delta.old_file()))
                .unwrap_or_default();
            let old_path = path_of(delta.old_file()).filter(|p| *p != path);
            out.push(FileTexts {
                path,
                old_path,
                old,
                new,
                binary: old_bin || new_bin,
            });
        }
        Ok(out)
    }

    /// The commits on `tip` that `base` does not have, newest first, at most `limit`.
    pub fn commits_since(
        &self,
        base: &str,
        tip: &str,
        limit: usize,
    ) -> Result<Vec<CommitLine>, GitError> {
        let git = self.git();
        let (base_id, tip_id) = self.ends(base, tip)?;
        let mut walk = git.revwalk().ctx(|| "walk the history".to_string())?;
        walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)
            .and_then(|_| walk.push(tip_id))
            .and_then(|_| walk.hide(base_id))
            .ctx(|| format!("walk {base}..{tip}"))?;
        let mut out = Vec::new();
        for id in walk.take(limit) {
            let id = id.ctx(|| format!("walk {base}..{tip}"))?;
            let c = git.find_commit(id).ctx(|| format!("read commit {id}"))?;
            out.push(CommitLine {
                sha: id.to_string(),
                summary: String::from_utf8_lossy(c.summary_bytes().unwrap_or_default())
                    .into_owned(),
                author: String::from_utf8_lossy(c.author().name_bytes()).into_owned(),
                time: c.time().seconds(),
            });
        }
        Ok(out)
    }

    /// Lines `line - radius ..= line + radius` (1-based) of `path` as `rev` has it, each
    /// with its number; empty when the file is absent, not text, or shorter.
    pub fn context_lines(
        &self,
        rev: &str,
        path: &str,
        line: usize,
        radius: usize,
    ) -> Result<Vec<(usize, String)>, GitError> {
        let git = self.git();
        let commit = git
            .revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .ctx(|| format!("resolve '{rev}' to a commit"))?;
        let tree = commit.tree().ctx(|| format!("read the tree of {rev}"))?;
        let Ok(entry) = tree.get_path(std::path::Path::new(path)) else {
            return Ok(Vec::new());
        };
        let Ok(blob) = git.find_blob(entry.id()) else {
            return Ok(Vec::new());
        };
        if blob.size() > MAX_BLOB_BYTES || blob.content().contains(&0) {
            return Ok(Vec::new());
        }
        let Ok(text) = std::str::from_utf8(blob.content()) else {
            return Ok(Vec::new());
        };
        let first = line.saturating_sub(radius).max(1);
        Ok(text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.to_string()))
            .filter(|(n, _)| *n >= first && *n <= line + radius)
            .collect())
    }

    fn ends(&self, base: &str, tip: &str) -> Result<(Oid, Oid), GitError> {
        let id = |rev: &str| {
            self.git()
                .revparse_single(rev)
                .and_then(|o| o.peel_to_commit())
                .map(|c| c.id())
                .ctx(|| format!("resolve '{rev}' to a commit"))
        };
        Ok((id(base)?, id(tip)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .current_dir(dir)
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "T")
            .env("GIT_AUTHOR_EMAIL", "t@e")
            .env("GIT_COMMITTER_NAME", "T")
            .env("GIT_COMMITTER_EMAIL", "t@e")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn a_branch_shows_its_commits_and_both_texts_of_each_file() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        git(d, &["init", "-q", "-b", "main"]);
        std::fs::write(d.join("a.txt"), "one\ntwo\n").unwrap();
        std::fs::write(d.join("old.txt"), "moved\ncontent\nhere\n").unwrap();
        std::fs::write(d.join("gone.txt"), "bye\n").unwrap();
        git(d, &["add", "-A"]);
        git(d, &["commit", "-qm", "base"]);
        git(d, &["checkout", "-qb", "ws/r/x"]);
        std::fs::write(d.join("a.txt"), "one\nTWO\n").unwrap();
        std::fs::write(d.join("bin.dat"), b"\0\x01\x02").unwrap();
        git(d, &["mv", "old.txt", "new.txt"]);
        git(d, &["rm", "-q", "gone.txt"]);
        git(d, &["add", "-A"]);
        git(d, &["commit", "-qm", "change things"]);
        // main moves on: the diff is from the merge base, not main's tip.
        git(d, &["checkout", "-q", "main"]);
        std::fs::write(d.join("later.txt"), "x\n").unwrap();
        git(d, &["add", "-A"]);
        git(d, &["commit", "-qm", "later"]);
        let repo = Repo::discover(d).unwrap();
        let files = repo.file_texts("main", "ws/r/x", 100).unwrap();
        let by = |p: &str| files.iter().find(|f| f.path == p).unwrap();
        assert_eq!(files.len(), 4, "{files:?}");
        assert_eq!(by("a.txt").old.as_deref(), Some("one\ntwo\n"));
        assert_eq!(by("a.txt").new.as_deref(), Some("one\nTWO\n"));
        assert!(by("bin.dat").binary && by("bin.dat").old.is_none());
        assert_eq!(by("new.txt").old_path.as_deref(), Some("old.txt"));
        assert_eq!(by("gone.txt").new, None);
        assert!(files.iter().all(|f| f.path != "later.txt"));
        assert_eq!(repo.file_texts("main", "ws/r/x", 2).unwrap().len(), 2);
        let commits = repo.commits_since("main", "ws/r/x", 10).unwrap();
        assert_eq!(commits.len(), 1);
        assert_eq!(commits[0].summary, "change things");
        assert!(repo.file_texts("main", "no-such-branch", 1).is_err());
        let ctx = repo.context_lines("ws/r/x", "a.txt", 2, 1).unwrap();
        assert_eq!(ctx, vec![(1, "one".to_string()), (2, "TWO".to_string())]);
        assert_eq!(
            repo.context_lines("main", "a.txt", 2, 0).unwrap()[0].1,
            "two"
        );
        assert!(repo
            .context_lines("ws/r/x", "bin.dat", 1, 3)
            .unwrap()
            .is_empty());
        assert!(repo
            .context_lines("ws/r/x", "nope.txt", 1, 3)
            .unwrap()
            .is_empty());
    }
}
