//! The post-merge hook: installing it into a repository (between marker lines, keeping any
//! existing hook) and what it does after a merge (find which `ws/…` branches landed, and
//! how: merged, squashed or cherry-picked, and record them with how each was detected).

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
    let landed = git::landed_ws_branches(&ws.repo, cwd).ok()?;
    let head = git::head_of(cwd).ok()?;
    let now = chrono::Utc::now();
    let records: Vec<MergeRecord> = landed
        .into_iter()
        .filter_map(|l| {
            let (run_id, workstream_id) = index.get(&l.branch)?.clone();
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
    let what = match fresh.as_slice() {
        [one] => format!("{} of {} merged", one.workstream_id, one.run_id),
        many => {
            let names: Vec<&str> = many
                .iter()
                .take(5)
                .map(|r| r.workstream_id.as_str())
                .collect();
            let more = if many.len() > 5 { ", …" } else { "" };
            format!(
                "{} workstreams merged ({}{more})",
                many.len(),
                names.join(", ")
            )
        }
    };
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
