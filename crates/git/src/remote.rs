//! The shared remote of a run several machines work on: pushing and fetching through the
//! `git` program, and the few ref reads and writes around them. [`run_git`] is the one place
//! git-ws starts `git`: a push or fetch needs the user's own transports, credential helpers
//! and ssh set-up, which the built-in libgit2 is built without. Everything else stays on
//! git2.
//!
//! Refs on the remote, per run: `refs/ws/<run>/base` (the base commit), the branches
//! `refs/heads/ws/<run>/<id>`, and while a result is being recorded
//! `refs/ws/<run>/attempts/<id>/<attempt>` (its commits, pushed before the database accepts
//! the result, so an accepted result's commits are on the remote even if its worker dies
//! right after).

use super::repo::{open_main, parse_oid, Ctx};
use super::{GitError, RepoPaths};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one push or fetch may take before it is stopped.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(300);

/// Environment variables git sets for hooks and subcommands that would point a child's git
/// (the `git` program, or a workstream's command) at another repository.
pub const GIT_ENV_TO_CLEAR: [&str; 6] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_PREFIX",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
];

/// Run `git ARGS` in `dir`, never prompting (no terminal prompt, stdin closed), stopped
/// after `timeout`. Its stdout, or an error naming the command and git's own message.
pub fn run_git(dir: &Path, args: &[&str], timeout: Duration) -> Result<String, GitError> {
    let what = format!("git {}", args.join(" "));
    let fail = |why: String| GitError::Other(format!("failed to run {what}: {why}"));
    let mut cmd = Command::new("git");
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C");
    for v in GIT_ENV_TO_CLEAR {
        cmd.env_remove(v);
    }
    let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            text
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("no answer within {}s", timeout.as_secs())));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(fail(e.to_string())),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if status.success() {
        Ok(stdout)
    } else {
        let msg: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        Err(fail(if msg.is_empty() {
            status.to_string()
        } else {
            msg.join("; ")
        }))
    }
}

/// The URL of remote `name` (`.` is this repository itself: several workers in one clone).
/// An error naming the remote when it is not configured.
pub fn remote_url(repo: &RepoPaths, name: &str) -> Result<String, GitError> {
    if name == "." {
        return Ok(repo.root.display().to_string());
    }
    let git = open_main(repo)?;
    let remote = git.find_remote(name).map_err(|_| {
        GitError::Other(format!(
            "--remote {name}: this repository has no remote named {name} (git remote add {name} URL)"
        ))
    })?;
    remote
        .url()
        .ok()
        .map(str::to_string)
        .ok_or_else(|| GitError::Other(format!("--remote {name}: the remote has no URL")))
}

/// `git push --atomic REMOTE REFSPEC…`: all or none.
pub fn push(repo: &RepoPaths, remote: &str, refspecs: &[String]) -> Result<(), GitError> {
    if refspecs.is_empty() {
        return Ok(());
    }
    let mut args = vec!["push", "--quiet", "--atomic", "--no-verify", remote];
    args.extend(refspecs.iter().map(String::as_str));
    run_git(&repo.root, &args, GIT_TIMEOUT).map(|_| ())
}

/// `git fetch --no-tags REMOTE REFSPEC…`.
pub fn fetch(repo: &RepoPaths, remote: &str, refspecs: &[String]) -> Result<(), GitError> {
    let mut args = vec![
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        "--no-auto-gc",
        remote,
    ];
    args.extend(refspecs.iter().map(String::as_str));
    run_git(&repo.root, &args, GIT_TIMEOUT).map(|_| ())
}

/// Whether the repository has the commit `sha`.
pub fn has_commit(repo: &RepoPaths, sha: &str) -> bool {
    let Ok(oid) = parse_oid(sha) else {
        return false;
    };
    open_main(repo).is_ok_and(|g| g.find_commit(oid).is_ok())
}

/// Refs whose names start with `prefix`, with the commits they point at.
pub fn refs_under(repo: &RepoPaths, prefix: &str) -> Result<Vec<(String, String)>, GitError> {
    let git = open_main(repo)?;
    let mut out = Vec::new();
    let refs = git
        .references_glob(&format!("{prefix}*"))
        .ctx(|| format!("list the refs under {prefix}"))?;
    for r in refs.flatten() {
        if let (Ok(name), Some(target)) = (r.name(), r.target()) {
            out.push((name.to_string(), target.to_string()));
        }
    }
    out.sort();
    Ok(out)
}

/// Delete local refs (missing ones are fine).
pub fn delete_refs(repo: &RepoPaths, names: &[String]) -> Result<(), GitError> {
    let git = open_main(repo)?;
    for name in names {
        if let Ok(mut r) = git.find_reference(name) {
            r.delete().ctx(|| format!("delete ref {name}"))?;
        }
    }
    Ok(())
}

/// The commit branch `ws/<run>/<id>` (short name) points at, if it exists.
pub fn branch_tip(repo: &RepoPaths, branch: &str) -> Option<String> {
    let git = open_main(repo).ok()?;
    let r = git.find_reference(&format!("refs/heads/{branch}")).ok()?;
    r.target().map(|o| o.to_string())
}

/// `refs/ws/<run>/base`.
pub fn base_ref(run_id: &str) -> String {
    format!("refs/ws/{run_id}/base")
}

/// `refs/ws/<run>/attempts/`: where results' commits wait while they are recorded.
pub fn attempts_prefix(run_id: &str) -> String {
    format!("refs/ws/{run_id}/attempts/")
}

/// `refs/ws/<run>/attempts/<id>/<attempt>`.
pub fn attempt_ref(run_id: &str, ws_id: &str, attempt: i64) -> String {
    format!("{}{ws_id}/{attempt}", attempts_prefix(run_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names() {
        assert_eq!(base_ref("ma-run-1"), "refs/ws/ma-run-1/base");
        assert_eq!(
            attempt_ref("ma-run-1", "ws-01", 2),
            "refs/ws/ma-run-1/attempts/ws-01/2"
        );
        assert!(git2::Reference::is_valid_name(&attempt_ref(
            "r", "a.b_c-1", 10
        )));
    }

    #[test]
    fn git_failures_name_the_command_and_say_what_git_said() {
        let dir = tempfile::tempdir().unwrap();
        let e = run_git(dir.path(), &["rev-parse", "HEAD"], GIT_TIMEOUT).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("failed to run git rev-parse HEAD: "),
            "{e}"
        );
        assert!(e.to_string().contains("not a git repository"), "{e}");
        let out = run_git(dir.path(), &["--version"], GIT_TIMEOUT).unwrap();
        assert!(out.starts_with("git version"), "{out}");
    }
}
