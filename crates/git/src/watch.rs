//! The watch's fingerprint: what an agent must not change outside its worktree, read from
//! disk before and after each workstream — every ref outside git-ws's own namespaces
//! ([`OWN_NAMESPACES`]), the main worktree's `HEAD` and index (its entries, not their stat
//! data, so the user's `git status` refreshing it is no change), the repository's config
//! files (`config`, `config.worktree`; entry by entry), the hooks directory and a
//! `core.hooksPath` target, and `info/`. ws-core's `tamper` compares two of them.

use crate::RepoPaths;
use std::path::Path;
use ws_core::tamper::Fingerprint;

/// Ref namespaces git-ws writes itself during a run (workstream branches, run refs,
/// temporary branches): not watched. Nor are their remote-tracking copies
/// (`refs/remotes/<remote>/ws/…`), which a shared run's pushes move ([`own`]).
pub const OWN_NAMESPACES: &[&str] = &["refs/heads/ws/", "refs/ws/", "refs/heads/git-ws-tmp/"];

/// Whether git-ws writes ref `name` itself during a run.
pub fn own(name: &str) -> bool {
    if OWN_NAMESPACES.iter().any(|ns| name.starts_with(ns)) {
        return true;
    }
    // refs/remotes/<remote>/ws/…: the remote's name may hold `/`, so any segment boundary.
    name.strip_prefix("refs/remotes/").is_some_and(|rest| {
        rest.match_indices('/').any(|(i, _)| {
            let branch = &rest[i + 1..];
            branch.starts_with("ws/") || branch.starts_with("git-ws-tmp/")
        })
    })
}

/// At most this many files are fingerprinted per watched directory (a hooks directory
/// holding a whole tree is still watched, up to here).
const MAX_FILES: usize = 2000;

/// The fingerprint of `repo` now. Whatever cannot be read is left out (and shows as a
/// change if it could be read at the other end).
pub fn fingerprint(repo: &RepoPaths) -> Fingerprint {
    let mut fp = Fingerprint::new();
    let common = &repo.common_dir;
    if let Ok(git) = git2::Repository::open(common) {
        refs(&git, &mut fp);
    }
    if let Ok(head) = std::fs::read_to_string(common.join("HEAD")) {
        fp.insert("HEAD".into(), head.trim().to_string());
    }
    if let Some(ix) = index(&common.join("index")) {
        fp.insert("index".into(), ix);
    }
    let mut hooks_path = None;
    for name in ["config", "config.worktree"] {
        let Ok(cfg) = git2::Config::open(&common.join(name)) else {
            continue;
        };
        let Ok(mut entries) = cfg.entries(None) else {
            continue;
        };
        while let Some(Ok(e)) = entries.next() {
            let (Ok(key), value) = (e.name(), e.value().unwrap_or("")) else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            if key == "core.hookspath" {
                hooks_path = Some(value.to_string());
            }
            fp.entry(format!("{name} {key}"))
                .and_modify(|v| {
                    v.push('\n');
                    v.push_str(value);
                })
                .or_insert_with(|| value.to_string());
        }
    }
    files(&common.join("hooks"), "hooks", &mut fp);
    files(&common.join("info"), "info", &mut fp);
    if let Some(p) = hooks_path.filter(|p| !p.is_empty()) {
        let dir = expand_home(&p);
        let dir = if dir.is_relative() {
            repo.root.join(dir)
        } else {
            dir
        };
        files(&dir, &format!("hooksPath {}", dir.display()), &mut fp);
    }
    fp
}

fn refs(git: &git2::Repository, fp: &mut Fingerprint) {
    let Ok(mut all) = git.references() else {
        return;
    };
    while let Some(Ok(r)) = all.next() {
        let Ok(name) = r.name() else { continue };
        if own(name) {
            continue;
        }
        let value = match (r.target(), r.symbolic_target().ok().flatten()) {
            (Some(id), _) => id.to_string(),
            (None, Some(t)) => format!("ref: {t}"),
            (None, None) => continue,
        };
        fp.insert(name.to_string(), value);
    }
}

/// The index's entries (path, mode, object, stage) hashed; `None` when it cannot be read.
fn index(path: &Path) -> Option<String> {
    if !path.is_file() {
        return None;
    }
    let ix = git2::Index::open(path).ok()?;
    let mut buf = Vec::new();
    for e in ix.iter() {
        buf.extend_from_slice(&e.path);
        buf.extend_from_slice(
            format!(" {:o} {} {}\n", e.mode, e.id, (e.flags >> 12) & 3).as_bytes(),
        );
    }
    let id = git2::Oid::hash_object(git2::ObjectType::Blob, &buf).ok()?;
    Some(format!("{} entries, {id}", ix.len()))
}

/// Every file under `dir` (recursively, symlinks not followed), as `<label>/<relative
/// path>` → `<blob id> <mode>` (a symlink: `-> <target>`).
fn files(dir: &Path, label: &str, fp: &mut Fingerprint) {
    let mut stack = vec![dir.to_path_buf()];
    let mut n = 0;
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let rel = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .display()
                .to_string();
            let key = format!("{label}/{rel}");
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            n += 1;
            if n > MAX_FILES {
                return;
            }
            let value = if meta.file_type().is_symlink() {
                let t = std::fs::read_link(&path).unwrap_or_default();
                format!("-> {}", t.display())
            } else {
                use std::os::unix::fs::PermissionsExt;
                let id = git2::Oid::hash_file(git2::ObjectType::Blob, &path)
                    .map_or_else(|_| "unreadable".to_string(), |id| id.to_string());
                format!("{id} {:o}", meta.permissions().mode() & 0o7777)
            };
            fp.insert(key, value);
        }
    }
}

/// `~/x` → `$HOME/x`, as git reads `core.hooksPath`.
fn expand_home(p: &str) -> std::path::PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => p.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use ws_core::tamper::compare;

    fn git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    fn paths(changes: &[ws_core::tamper::Change]) -> Vec<&str> {
        changes.iter().map(|c| c.path.as_str()).collect()
    }

    #[test]
    fn git_ws_s_own_refs_and_their_remote_tracking_copies() {
        assert!(own("refs/heads/ws/run-1/ws-01"));
        assert!(own("refs/ws/run-1/base"));
        assert!(own("refs/remotes/origin/ws/run-1/ws-01"));
        assert!(own("refs/remotes/team/shared/ws/run-1/ws-01"));
        assert!(!own("refs/heads/main"));
        assert!(!own("refs/remotes/origin/main"));
        assert!(!own("refs/remotes/origin/evil"));
        assert!(!own("refs/tags/ws/v1"));
    }

    #[test]
    fn each_watched_thing_shows_its_change_and_own_namespaces_do_not() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        git(root, &["init", "-q", "-b", "main"]);
        std::fs::write(root.join("a.txt"), "a\n").unwrap();
        git(root, &["add", "a.txt"]);
        git(root, &["commit", "-qm", "one"]);
        let repo = RepoPaths::new(root.to_path_buf(), root.join(".git"));
        let before = fingerprint(&repo);
        assert!(before.contains_key("refs/heads/main"), "{before:?}");
        assert!(before.contains_key("HEAD") && before.contains_key("index"));
        // git-ws's own refs and a stat-only index refresh: no change.
        git(root, &["branch", "ws/run-1/ws-01"]);
        git(root, &["update-ref", "refs/ws/run-1/base", "HEAD"]);
        git(root, &["status", "--short"]);
        assert_eq!(compare(&before, &fingerprint(&repo)), vec![]);

        git(root, &["commit", "-q", "--allow-empty", "-m", "two"]);
        git(root, &["config", "core.bare", "true"]);
        git(root, &["config", "core.hooksPath", "/nonexistent-hooks"]);
        std::fs::write(root.join(".git/hooks/pre-commit"), "#!/bin/sh\n").unwrap();
        std::fs::write(root.join(".git/info/exclude"), "x\n").unwrap();
        let changes = compare(&before, &fingerprint(&repo));
        assert_eq!(
            paths(&changes),
            [
                "config core.bare",
                "config core.hookspath",
                "hooks/pre-commit",
                "info/exclude",
                "refs/heads/main"
            ],
            "{changes:?}"
        );
        assert_eq!(changes[0].old.as_deref(), Some("false"));
        assert_eq!(changes[0].new.as_deref(), Some("true"));
        assert_eq!(changes[1].old, None);
        git(root, &["config", "core.bare", "false"]);

        // A staged change is an index change; a deleted branch is gone.
        let before = fingerprint(&repo);
        std::fs::write(root.join("a.txt"), "b\n").unwrap();
        git(root, &["add", "a.txt"]);
        git(root, &["branch", "side"]);
        let mid = fingerprint(&repo);
        git(root, &["branch", "-D", "side"]);
        assert_eq!(paths(&compare(&before, &mid)), ["index", "refs/heads/side"]);
        let gone = compare(&mid, &fingerprint(&repo));
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].new, None);
    }
}
