//! The post-merge hook: installing it into a repository (between marker lines, keeping any
//! existing hook) and what it does after a merge (find which `ws/…` branches landed, and
//! how: merged, squashed or cherry-picked, and record them with how each was detected).
//! Only what the merge itself brought in counts (not what the HEAD before it had landed,
//! nor a branch without a commit of its own), and the line it prints names each
//! workstream once, grouped by run.

use crate::db::{ConsolidationDatabase, DbLocation, MergeRecord};
use crate::error::Error;
use crate::git;
use crate::workspace::Workspace;
use std::collections::HashMap;
use std::path::Path;

/// The hook as shipped in `hooks/post-merge`.
pub const POST_MERGE: &str = include_str!("../../hooks/post-merge");
const BEGIN: &str = "# >>> git-ws post-merge >>>";
const END: &str = "# <<< git-ws post-merge <<<";

/// The marked block of the shipped hook, markers included.
fn block() -> &'static str {
    let start = POST_MERGE.find(BEGIN).expect("hook has a begin marker");
    let end = POST_MERGE.find(END).expect("hook has an end marker") + END.len();
    &POST_MERGE[start..end]
}

/// The hook file's new content given its current content (None = no hook yet). Pure.
/// An existing hook keeps all of its own lines; our block goes right after its shebang
/// (so a trailing `exit` in the user's hook cannot skip it), or replaces an earlier copy of
/// itself in place.
pub fn merged_hook(existing: Option<&str>) -> String {
    let Some(old) = existing.filter(|s| !s.trim().is_empty()) else {
        return POST_MERGE.to_string();
    };
    if let (Some(s), Some(e)) = (old.find(BEGIN), old.find(END)) {
        if s < e {
            return format!("{}{}{}", &old[..s], block(), &old[e + END.len()..]);
        }
    }
    match old.strip_prefix("#!") {
        Some(_) => {
            let (shebang, rest) = match old.find('\n') {
                Some(i) => (&old[..=i], &old[i + 1..]),
                None => (old, ""),
            };
            let shebang = if shebang.ends_with('\n') {
                shebang.to_string()
            } else {
                format!("{shebang}\n")
            };
            format!("{shebang}{}\n{rest}", block())
        }
        None => format!("#!/bin/sh\n{}\n{old}", block()),
    }
}

/// The `ws/…` branches HEAD of the worktree containing `cwd` has landed, with how each was
/// recognised ([`git::LandedBy`]: `ancestor`, `tree` for a squash merge, `patch-id` for
/// cherry-picks): what the hook records. A squash merge is seen as soon as
/// `git merge --squash` has staged it (the hook runs then), and again once committed.
pub fn landed_branches(cwd: &Path) -> Result<Vec<git::Landed>, Error> {
    let repo = git::discover(cwd)?;
    Ok(git::landed_ws_branches(&repo, cwd)?)
}

/// The post-merge hook's work (`git ws-report --record-merges`): record the `ws/…`
/// branches HEAD of the worktree containing `cwd` has newly landed, each with how it was
/// detected (`ancestor`, `tree`, `patch-id`), in the database `db` (the flag; else env,
/// git config, the default). Returns the line to print, if any. Never fails: every problem
/// ends quietly, or with a one-line note when the database was busy.
pub fn record_merges(cwd: &Path, db: Option<&DbLocation>) -> Option<String> {
    let ws = Workspace::discover(cwd).ok()?;
    let location = ws.database(db).ok()?;
    let mut db = match ConsolidationDatabase::open_for_hook(&location) {
        Ok(Some(db)) => db,
        Ok(None) => return None,
        Err(_) => return Some("ws: database busy or unreadable; merge not recorded".to_string()),
    };
    let index = db.branch_index().ok()?;
    if index.is_empty() {
        return None;
    }
    let landed = git::landed_by_merge(&ws.repo, cwd).ok()?;
    let head = git::head_of(cwd).ok()?;
    let now = chrono::Utc::now();
    // The results of the runs concerned, to leave out branches with no commit of their own.
    let mut results: HashMap<String, Vec<crate::model::WorkstreamResult>> = HashMap::new();
    let records: Vec<MergeRecord> = landed
        .into_iter()
        .filter_map(|l| {
            let (run_id, workstream_id) = index.get(&l.branch)?.clone();
            if !results.contains_key(&run_id) {
                let rs = db.results(&run_id).unwrap_or_default();
                results.insert(run_id.clone(), rs);
            }
            if results[&run_id]
                .iter()
                .any(|r| r.workstream_id == workstream_id && zero_commit(r, &l.tip))
            {
                return None;
            }
            Some(MergeRecord {
                run_id,
                workstream_id,
                branch: l.branch,
                tip: l.tip,
                merge_commit: head.clone(),
                merged_at: now,
                detected_by: Some(l.by.as_str().to_string()),
            })
        })
        .collect();
    record_new(&mut db, &records)
}

/// Whether result `r` left branch tip `tip` without a commit of its own (nothing to land).
fn zero_commit(r: &crate::model::WorkstreamResult, tip: &str) -> bool {
    r.branch.is_some()
        && (r.base.as_deref() == Some(tip)
            || (r.commits.is_empty() && r.head.as_deref() == Some(tip)))
}

/// The line saying what merged, `fresh` sorted by run then workstream, each once:
/// `w1 of RUN merged`, or `3 workstreams merged — RUN: a, b, c · RUN2: d` (at most
/// [`NAMES_PER_RUN`] names per run, then how many more). Pure.
pub(crate) fn merged_line(fresh: &[(&str, &str)]) -> String {
    if let [(run, ws)] = fresh {
        return format!("{ws} of {run} merged");
    }
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for &(run, ws) in fresh {
        match groups.last_mut() {
            Some((r, names)) if *r == run => {
                if !names.contains(&ws) {
                    names.push(ws)
                }
            }
            _ => groups.push((run, vec![ws])),
        }
    }
    let total: usize = groups.iter().map(|g| g.1.len()).sum();
    let parts: Vec<String> = groups
        .iter()
        .map(|(run, names)| {
            let shown = names.len().min(NAMES_PER_RUN);
            let more = match names.len() - shown {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            format!("{run}: {}{more}", names[..shown].join(", "))
        })
        .collect();
    format!(
        "{} merged — {}",
        crate::text::plural(total, "workstream", "workstreams"),
        parts.join(" · ")
    )
}

/// How many workstream names the hook's line shows per run.
const NAMES_PER_RUN: usize = 12;

/// Record `records`, and say in one line what was new (`None`: nothing was).
pub(crate) fn record_new(
    db: &mut ConsolidationDatabase,
    records: &[MergeRecord],
) -> Option<String> {
    // Which of these are new: not yet recorded for their run.
    let mut known: HashMap<String, HashMap<String, MergeRecord>> = HashMap::new();
    for r in records {
        if !known.contains_key(&r.run_id) {
            let m = db.merged(&r.run_id).ok()?;
            known.insert(r.run_id.clone(), m);
        }
    }
    let mut fresh: Vec<&MergeRecord> = records
        .iter()
        .filter(|r| !known[&r.run_id].contains_key(&r.workstream_id))
        .collect();
    if fresh.is_empty() {
        return None;
    }
    fresh.sort_by(|a, b| (&a.run_id, &a.workstream_id).cmp(&(&b.run_id, &b.workstream_id)));
    let new = match db.record_merges(records) {
        Ok(n) => n,
        Err(_) => return Some("ws: database busy; merge not recorded".to_string()),
    };
    if new == 0 {
        return None;
    }
    let unmerged = db.unmerged_completed_count().unwrap_or(0);
    fresh.dedup_by(|a, b| (&a.run_id, &a.workstream_id) == (&b.run_id, &b.workstream_id));
    let pairs: Vec<(&str, &str)> = fresh
        .iter()
        .map(|r| (r.run_id.as_str(), r.workstream_id.as_str()))
        .collect();
    let what = merged_line(&pairs);
    Some(format!(
        "ws: {what}; {unmerged} completed branch{} still unmerged",
        if unmerged == 1 { "" } else { "es" }
    ))
}

/// Install the post-merge hook into the repository containing `cwd` (honouring
/// `core.hooksPath`). Returns a one-line description of what was done.
pub fn install(cwd: &Path) -> Result<String, Error> {
    let ws = Workspace::discover(cwd)?;
    let dir = git::config::hooks_dir(&ws.repo);
    std::fs::create_dir_all(&dir).map_err(|e| {
        Error::new(format!(
            "failed to create hooks directory {}: {e}",
            dir.display()
        ))
    })?;
    let path = dir.join("post-merge");
    let existing = match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Error::new(format!(
                "failed to read existing hook {}: {e}",
                path.display()
            )))
        }
    };
    let new = merged_hook(existing.as_deref());
    let verb = match &existing {
        Some(old) if *old == new => "already installed in",
        Some(_) => "added to the existing hook",
        None => "installed",
    };
    if existing.as_deref() != Some(new.as_str()) {
        std::fs::write(&path, &new)
            .map_err(|e| Error::new(format!("failed to write hook {}: {e}", path.display())))?;
    }
    use std::os::unix::fs::PermissionsExt;
    let mut perm = std::fs::metadata(&path)
        .map_err(|e| Error::new(format!("failed to read hook {}: {e}", path.display())))?
        .permissions();
    perm.set_mode(perm.mode() | 0o755);
    std::fs::set_permissions(&path, perm)
        .map_err(|e| Error::new(format!("failed to make {} executable: {e}", path.display())))?;
    Ok(format!("post-merge hook {verb} {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_each_workstream_once_grouped_by_run() {
        assert_eq!(merged_line(&[("r1", "a")]), "a of r1 merged");
        assert_eq!(
            merged_line(&[("r1", "a"), ("r1", "b"), ("r1", "b"), ("r2", "a")]),
            "3 workstreams merged — r1: a, b · r2: a"
        );
        let many: Vec<String> = (0..14).map(|i| format!("w{i:02}")).collect();
        let pairs: Vec<(&str, &str)> = many.iter().map(|w| ("r", w.as_str())).collect();
        let line = merged_line(&pairs);
        assert!(
            line.starts_with("14 workstreams merged — r: w00, "),
            "{line}"
        );
        assert!(line.ends_with("w11 and 2 more"), "{line}");
    }

    #[test]
    fn fresh_install_is_the_shipped_hook() {
        assert_eq!(merged_hook(None), POST_MERGE);
        assert_eq!(merged_hook(Some("  \n")), POST_MERGE);
    }

    #[test]
    fn existing_hook_is_kept_and_ours_runs_before_its_exit() {
        let old = "#!/bin/bash\necho mine\nexit 0\n";
        let new = merged_hook(Some(old));
        assert!(new.starts_with("#!/bin/bash\n# >>> git-ws"));
        assert!(new.ends_with("\necho mine\nexit 0\n"));
        assert_eq!(new.matches(BEGIN).count(), 1);
    }

    #[test]
    fn idempotent() {
        let old = "#!/bin/sh\necho mine\n";
        let once = merged_hook(Some(old));
        assert_eq!(merged_hook(Some(&once)), once);
        let fresh = merged_hook(None);
        assert_eq!(merged_hook(Some(&fresh)), fresh);
    }

    #[test]
    fn a_hook_without_shebang_gets_one() {
        let new = merged_hook(Some("echo mine\n"));
        assert!(new.starts_with("#!/bin/sh\n# >>> git-ws"));
        assert!(new.ends_with("echo mine\n"));
    }
}
