//! The spool: results the database refused (a full disk, a database removed or locked too
//! long), kept as JSON lines in `.state/spool/<run-id>.jsonl` (a path of [`Layout`]) until a
//! later `git ws-run` on the same database records them ([`replay`]). Every write of a
//! spool file, and of a report, goes to a temporary file in the same directory that is then
//! renamed ([`write_atomic`]): a failed write leaves the old file or none, never 0 bytes.

use crate::db::ConsolidationDatabase;
use crate::layout::Layout;
use crate::model::{RunInfo, WorkstreamResult};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One spooled result: the database it is for, the run (so a database that lost the run's
/// row gets it back) and the result.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub db: String,
    pub run: RunInfo,
    pub result: WorkstreamResult,
    /// For a shared run: the claim's attempt, the fencing token the result is recorded
    /// with (by the next `--join` of the run from this repository, never by [`replay`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i64>,
}

/// Write `bytes` to `path` through a temporary file in the same directory, flushed to disk
/// and renamed over `path`. On failure the temporary file is removed and `path` is as it
/// was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Replace run `run`'s spool file with `entries` (removed when there are none).
pub fn save(layout: &Layout, run: &str, entries: &[Entry]) -> std::io::Result<PathBuf> {
    let path = layout.spool(run);
    if entries.is_empty() {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => return Ok(path),
        }
    }
    let mut text = String::new();
    for e in entries {
        text.push_str(&serde_json::to_string(e).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    std::fs::create_dir_all(layout.spool_dir())?;
    write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

/// The entries of one spool file; lines that do not parse are left out.
pub fn read(path: &Path) -> Vec<Entry> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Record every spooled result meant for `db`, then remove what was recorded. Returns a
/// note per spool file replayed or still refused. Entries for another database stay.
pub fn replay(layout: &Layout, db: &mut ConsolidationDatabase) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(layout.spool_dir()) else {
        return Vec::new();
    };
    let here = db.location().display().to_string();
    let mut notes = Vec::new();
    let mut files: Vec<PathBuf> = dir
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    for path in files {
        let entries = read(&path);
        let run = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (mine, other): (Vec<Entry>, Vec<Entry>) = entries
            .into_iter()
            .partition(|e| e.db == here && e.attempt.is_none());
        if mine.is_empty() {
            continue;
        }
        let mut left = other;
        let mut recorded = Vec::new();
        for e in mine {
            match record(db, &e) {
                Ok(()) => recorded.push(e.result.workstream_id.clone()),
                Err(why) => {
                    notes.push(format!(
                        "failed to record the spooled result {} of {run} from {}: {why}",
                        e.result.workstream_id,
                        path.display()
                    ));
                    left.push(e);
                }
            }
        }
        if !recorded.is_empty() {
            notes.push(format!(
                "recorded {} result(s) of {run} kept in {} since the database refused them: {}",
                recorded.len(),
                path.display(),
                recorded.join(", ")
            ));
        }
        if let Err(e) = save(layout, &run, &left) {
            notes.push(format!("failed to update {}: {e}", path.display()));
        }
    }
    notes
}

/// One spooled result into `db`, its run's row first if the database lost it.
pub fn record(db: &mut ConsolidationDatabase, e: &Entry) -> Result<(), crate::db::DbError> {
    if db.run_info(&e.run.run_id)?.is_none() {
        db.begin_run(&e.run)?;
    }
    db.record_result(&e.result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    #[test]
    fn an_atomic_write_replaces_the_file_or_leaves_it() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.md");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        // A directory in the way of the rename: the write fails, nothing is left behind.
        let blocked = d.path().join("dir");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("x"), "x").unwrap();
        assert!(write_atomic(&blocked, b"three").is_err());
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }

    #[test]
    fn spooled_results_are_replayed_into_their_database_only() {
        let d = tempfile::tempdir().unwrap();
        let repo = ws_git::RepoPaths::new(d.path().to_path_buf(), d.path().join(".git"));
        let layout = Layout::new(&repo);
        let mut db = ConsolidationDatabase::open(d.path().join("a.db")).unwrap();
        let run = RunInfo {
            run_id: "ma-run-1".into(),
            started_at: chrono::Utc::now(),
            finished_at: None,
            agents: 1,
            base: "a".repeat(40),
            base_rev: "HEAD".into(),
            repo_root: "/r".into(),
            rerun_of: None,
        };
        let entry = |db: &str, id: &str| Entry {
            db: db.into(),
            run: run.clone(),
            result: WorkstreamResult::new("ma-run-1", "agent-1", id, Status::Completed),
            attempt: None,
        };
        let here = db.location().display().to_string();
        save(
            &layout,
            "ma-run-1",
            &[entry(&here, "a"), entry("/elsewhere.db", "b")],
        )
        .unwrap();
        let notes = replay(&layout, &mut db);
        assert_eq!(notes.len(), 1, "{notes:?}");
        let ids: Vec<String> = db
            .results("ma-run-1")
            .unwrap()
            .into_iter()
            .map(|r| r.workstream_id)
            .collect();
        assert_eq!(ids, ["a"]);
        let left = read(&layout.spool("ma-run-1"));
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].result.workstream_id, "b");
    }
}
