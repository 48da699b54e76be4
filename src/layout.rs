//! Where everything the tool reads and writes lives, named once: `.state/` (its own
//! `.gitignore`, the default database, the logs of each run: [`RunLogs`]), the reports
//! directory and each run's report file ([`Reports`]), the default workstreams directory,
//! and the agent worktree pool (outside `.git`; its directories are ws-git's:
//! [`ws_git::RepoPaths::pool_dir`]) with git-ws's own state about it under the git common
//! dir ([`ws_git::RepoPaths::ws_dir`]). Nothing else joins these names.

use crate::db::DbLocation;
use crate::git::RepoPaths;
use std::path::{Path, PathBuf};

/// The state directory at the main worktree's root: logs and the database.
pub const STATE_DIR: &str = ".state";
/// The default reports directory, relative to the main worktree's root.
pub const DEFAULT_REPORTS: &str = "reports";
/// The default workstreams directory, relative to the main worktree's root.
pub const DEFAULT_WORKSTREAMS: &str = "workstreams";
/// The default database, relative to the main worktree's root.
pub const DEFAULT_DB: &str = crate::db::DEFAULT_PATH;

/// What `.state/.gitignore` says: keep all of it out of `git status`.
const STATE_GITIGNORE: &str = "# written by git-ws: run state, logs and the database\n*\n";

/// What a reports directory git-ws creates says about itself: ignore everything here, so it
/// stays out of `git status` (as `.state/` does). A directory the user made is left as it is.
pub const REPORTS_GITIGNORE: &str =
    "# written by git-ws: run reports (delete this file to commit them)\n*\n";

/// The paths of one repository, as the tool uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    repo: RepoPaths,
    reports: Reports,
}

impl Layout {
    /// The layout of `repo`, with the reports in their default place.
    pub fn new(repo: &RepoPaths) -> Layout {
        Layout {
            reports: Reports::default_in(&repo.root),
            repo: repo.clone(),
        }
    }

    /// The same layout with the reports in `dir` (`--reports-dir`, made absolute).
    pub fn with_reports_dir(mut self, dir: PathBuf) -> Layout {
        self.reports = Reports::at(dir).with_html(self.reports.html);
        self
    }

    /// The same layout, writing the HTML page beside each report or not (`ws.htmlReport`).
    pub fn with_html_report(mut self, on: bool) -> Layout {
        self.reports = self.reports.with_html(on);
        self
    }

    /// The main worktree's root.
    pub fn root(&self) -> &Path {
        &self.repo.root
    }

    /// `.state/` at the root.
    pub fn state_dir(&self) -> PathBuf {
        self.repo.root.join(STATE_DIR)
    }

    /// Keep `.state/` out of `git status` without touching the user's `.gitignore`: it gets
    /// a `.gitignore` of its own (best effort).
    pub fn hide_state_dir(&self) {
        let state = self.state_dir();
        let gi = state.join(".gitignore");
        if !gi.exists() && std::fs::create_dir_all(&state).is_ok() {
            let _ = std::fs::write(gi, STATE_GITIGNORE);
        }
    }

    /// The database when nothing names one: [`DEFAULT_DB`] at the root.
    pub fn default_db(&self) -> DbLocation {
        DbLocation::Sqlite(self.repo.root.join(DEFAULT_DB))
    }

    /// `workstreams/` at the root.
    pub fn default_workstreams_dir(&self) -> PathBuf {
        self.repo.root.join(DEFAULT_WORKSTREAMS)
    }

    /// `.state/logs/<run-id>`: the logs of a run.
    pub fn run_logs(&self, run_id: &str) -> RunLogs {
        RunLogs {
            dir: self.state_dir().join("logs").join(run_id),
        }
    }

    /// `.state/spool/<run-id>.jsonl`: results of run `run_id` the database refused, kept
    /// until a later `git ws-run` on that database records them (JSON lines).
    pub fn spool(&self, run_id: &str) -> PathBuf {
        self.spool_dir().join(format!("{run_id}.jsonl"))
    }

    /// `.state/spool/`: every run's spool file.
    pub fn spool_dir(&self) -> PathBuf {
        self.state_dir().join("spool")
    }

    /// Where reports go.
    pub fn reports(&self) -> &Reports {
        &self.reports
    }

    /// The agent worktree of pool slot `agent-k` (in the pool, `git config ws.poolDir` or
    /// `.<name>.ws-pool` next to the repository).
    pub fn pool_slot(&self, k: usize) -> PathBuf {
        self.repo.pool_slot_dir(&format!("agent-{k}"))
    }

    /// The process registry (`<common dir>/ws/procs`): a file per command a git-ws tool is
    /// running now, so that the next tool kills what a killed one left running
    /// ([`crate::process::reap_abandoned`]); removed when its last file goes.
    pub fn procs_dir(&self) -> PathBuf {
        self.repo.ws_dir().join("procs")
    }

    /// The marker of pool slot `slot`'s setup command: the base and command it last
    /// succeeded for (`<common dir>/ws/setup/<slot>`).
    pub fn setup_marker(&self, slot: &str) -> PathBuf {
        self.repo.ws_dir().join("setup").join(slot)
    }
}

/// A reports directory and the report files in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reports {
    dir: PathBuf,
    /// Write the HTML page beside each Markdown report (`ws.htmlReport`).
    html: bool,
}

impl Reports {
    /// Reports in `dir`.
    pub fn at(dir: PathBuf) -> Reports {
        Reports { dir, html: true }
    }

    /// The same directory, with or without the HTML page beside each report.
    pub fn with_html(mut self, on: bool) -> Reports {
        self.html = on;
        self
    }

    /// Whether the HTML page is written beside each report (`ws.htmlReport`).
    pub fn html(&self) -> bool {
        self.html
    }

    /// The HTML page of run `run_id`: `multi_agent_consolidated_<run-id>.html`.
    pub fn html_file(&self, run_id: &str) -> PathBuf {
        self.dir
            .join(format!("multi_agent_consolidated_{run_id}.html"))
    }

    /// Reports in [`DEFAULT_REPORTS`] under `base` (the repository root; outside a
    /// repository, the current directory).
    pub fn default_in(base: &Path) -> Reports {
        Reports::at(base.join(DEFAULT_REPORTS))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The report of run `run_id`: `multi_agent_consolidated_<run-id>.md`.
    pub fn file(&self, run_id: &str) -> PathBuf {
        self.dir
            .join(format!("multi_agent_consolidated_{run_id}.md"))
    }

    /// Create the directory if it does not exist, with its own `.gitignore`
    /// ([`REPORTS_GITIGNORE`]); a directory that exists is left as it is.
    pub fn make_dir(&self) -> std::io::Result<()> {
        if self.dir.is_dir() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)?;
        // Best effort: the report matters more than keeping `git status` quiet. On a full
        // disk, no empty file is left behind.
        let gi = self.dir.join(".gitignore");
        if std::fs::write(&gi, REPORTS_GITIGNORE).is_err() {
            let _ = std::fs::remove_file(gi);
        }
        Ok(())
    }
}

/// The logs directory of one run (`.state/logs/<run-id>`) and the files in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLogs {
    dir: PathBuf,
}

impl RunLogs {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Create the directory (best effort: a log that cannot be written shows up where it is
    /// opened).
    pub fn create(&self) {
        let _ = std::fs::create_dir_all(&self.dir);
    }

    pub fn exists(&self) -> bool {
        self.dir.exists()
    }

    /// The lock the process running the run holds.
    pub fn lock(&self) -> PathBuf {
        self.dir.join("run.lock")
    }

    /// Written by a live run's coordinator once it takes no more follow-ups (it is about to
    /// finish or winding down): a follow-up recorded after that waits for `--resume`.
    pub fn followups_closed(&self) -> PathBuf {
        self.dir.join("followups-closed")
    }

    /// The ids the run was started with, so `--resume` runs the same selection.
    pub fn selection(&self) -> PathBuf {
        self.dir.join("workstreams.json")
    }

    /// A workstream's output (every attempt).
    pub fn workstream(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.log"))
    }

    /// A workstream's `$WS_METRICS` file.
    pub fn metrics(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.metrics.json"))
    }

    /// The process group of a workstream's running command.
    pub fn pgid(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.pgid"))
    }

    /// A workstream's test output.
    pub fn test(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.test.log"))
    }

    /// The process group of a workstream's running test.
    pub fn test_pgid(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.test.pgid"))
    }

    /// The setup command's output in pool slot `slot`.
    pub fn setup(&self, slot: &str) -> PathBuf {
        self.dir.join(format!("setup-{slot}.log"))
    }

    /// The notify command's output.
    pub fn notify(&self) -> PathBuf {
        self.dir.join("notify.log")
    }

    /// The test runs of one `git ws-merge` attempt (`integration-<stamp>/`).
    pub fn integration(&self, stamp: &str) -> IntegrationLogs {
        IntegrationLogs {
            dir: self.dir.join(format!("integration-{stamp}")),
        }
    }
}

/// The logs of one `git ws-merge --test` attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationLogs {
    dir: PathBuf,
}

impl IntegrationLogs {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The output of test run `n` (1-based).
    pub fn test(&self, n: usize) -> PathBuf {
        self.dir.join(format!("test-{n}.log"))
    }

    /// The process group of test run `n`.
    pub fn test_pgid(&self, n: usize) -> PathBuf {
        self.dir.join(format!("test-{n}.pgid"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout::new(&RepoPaths::new("/repo".into(), "/repo/.git".into()))
    }

    #[test]
    fn every_path_the_tool_uses() {
        let l = layout();
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(l.state_dir(), p("/repo/.state"));
        assert_eq!(
            l.default_db(),
            DbLocation::Sqlite(p("/repo/.state/multi_agent_consolidated.db"))
        );
        assert_eq!(l.default_workstreams_dir(), p("/repo/workstreams"));
        let logs = l.run_logs("ma-run-1");
        assert_eq!(logs.dir(), Path::new("/repo/.state/logs/ma-run-1"));
        assert_eq!(logs.lock(), p("/repo/.state/logs/ma-run-1/run.lock"));
        assert_eq!(logs.workstream("w"), p("/repo/.state/logs/ma-run-1/w.log"));
        assert_eq!(logs.test("w"), p("/repo/.state/logs/ma-run-1/w.test.log"));
        assert_eq!(
            logs.setup("agent-2"),
            p("/repo/.state/logs/ma-run-1/setup-agent-2.log")
        );
        assert_eq!(
            logs.integration("20261124-031500.000").test(3),
            p("/repo/.state/logs/ma-run-1/integration-20261124-031500.000/test-3.log")
        );
        assert_eq!(l.reports().dir(), Path::new("/repo/reports"));
        assert_eq!(
            l.reports().file("ma-run-1"),
            p("/repo/reports/multi_agent_consolidated_ma-run-1.md")
        );
        let moved = l.clone().with_reports_dir(p("/elsewhere"));
        assert_eq!(
            moved.reports().file("r"),
            p("/elsewhere/multi_agent_consolidated_r.md")
        );
        assert_eq!(l.pool_slot(2), p("/.repo.ws-pool/agent-2"));
        assert_eq!(l.procs_dir(), p("/repo/.git/ws/procs"));
        assert_eq!(
            l.setup_marker("agent-1-2"),
            p("/repo/.git/ws/setup/agent-1-2")
        );
    }

    #[test]
    fn a_reports_directory_the_tool_creates_ignores_itself_and_an_existing_one_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let made = Reports::at(tmp.path().join("a/reports"));
        made.make_dir().unwrap();
        assert_eq!(
            std::fs::read_to_string(made.dir().join(".gitignore")).unwrap(),
            REPORTS_GITIGNORE
        );
        let own = tmp.path().join("mine");
        std::fs::create_dir(&own).unwrap();
        Reports::at(own.clone()).make_dir().unwrap();
        assert!(!own.join(".gitignore").exists());
    }
}
