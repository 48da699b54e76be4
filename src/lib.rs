//! git-ws: run a backlog of workstreams across parallel coding agents, each in its own git
//! worktree, and consolidate what they did (read from git itself) into one SQLite database
//! and one Markdown report per run.
//!
//! This is the top of the workspace: the runtime (processes, the run engine, the agent
//! runtime, hooks, progress) and one module per command, over the layer crates. **May
//! depend on:** every layer — `ws-core` (the pure core), `ws-report` (renderers), `ws-git`
//! (git) and `ws-db` (the database) — and tokio, clap and indicatif (the last two behind
//! the `cli` feature). **Nothing depends on it**, so the layers never see the runtime: a
//! layer that needs something from here takes it as a value (the database its location,
//! git its paths).
//!
//! The binaries `git-ws-run`, `git-ws-report` and `git-ws-merge` are thin front ends over
//! this library, which has one module per command in [`commands`] ([`commands::merge`]
//! lands a run on an integration branch). The seed design's programmatic usage maps onto
//! [`Coordinator`] (run a configured run and get the consolidated result) and
//! [`ConsolidationDatabase`] (query what was recorded):
//!
//! ```no_run
//! use git_ws::{ConsolidationDatabase, Coordinator, RunOptions};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // Run every workstream in ./workstreams on 3 agents.
//! let outcome = Coordinator::new(RunOptions {
//!     cwd: ".".into(),
//!     agents: Some(3),
//!     ..Default::default()
//! })
//! .run()
//! .await?;
//! println!("{}: {} completed", outcome.run_id, outcome.consolidated.completed);
//!
//! // Query results later.
//! let mut db = ConsolidationDatabase::open_existing(&outcome.db_path)?;
//! if let Some(summary) = db.get_run_summary(&outcome.run_id)? {
//!     println!("Completed: {}", summary.completed_count);
//!     println!("Failed: {}", summary.failed_count);
//!     println!("Total Errors: {}", summary.total_errors);
//! }
//! for run in db.get_all_runs(50)? {
//!     println!("{}: {}/{} completed", run.run_id, run.completed_count, run.total_workstreams);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Consolidation and rendering are pure functions, usable on their own:
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use git_ws::consolidate::consolidate;
//! use git_ws::model::{RunInfo, Status, WorkstreamResult};
//!
//! let run = RunInfo {
//!     run_id: "ma-run-20241202-190000".into(),
//!     started_at: Utc.with_ymd_and_hms(2024, 12, 2, 19, 0, 0).unwrap(),
//!     finished_at: Some(Utc.with_ymd_and_hms(2024, 12, 2, 19, 1, 0).unwrap()),
//!     agents: 2,
//!     base: "0".repeat(40),
//!     base_rev: "HEAD".into(),
//!     repo_root: "/repo".into(),
//!     rerun_of: None,
//! };
//! let ok = WorkstreamResult::new(&run.run_id, "agent-1", "ws-01", Status::Completed);
//! let bad = WorkstreamResult::new(&run.run_id, "agent-2", "ws-02", Status::Failed);
//! let c = consolidate(&run, &[ok, bad], git_ws::model::MergeForecast::default());
//! assert_eq!((c.completed, c.failed), (1, 1));
//! assert!(c.recommendations.iter().any(|r| r.contains("ws-02")));
//! let markdown = git_ws::report::render_markdown(&git_ws::report::ReportModel {
//!     consolidated: &c,
//!     results: &[],
//! });
//! assert!(markdown.contains("## Executive summary"));
//! ```

// Module order, bottom to top: each module imports only from the ones above it in this
// list (and from the layer crates), never from one below it.
//
//   ws_core, ws_report,      the layers (re-exported below under their old names)
//   ws_git, ws_db
//   error                    the error type and the exit codes
//   config                   every ws.* git config key: its default, its meaning, its reader
//   layout                   every path the tool uses (.state/, logs, reports, pool)
//   secrets                  what no child inherits and no stored output keeps (passwords)
//   workspace                the repository a command works in: paths, config, layout
//   logcap                   the size cap of command logs (ws.maxLogBytes)
//   process                  process supervision (process groups, time limits, logs)
//   outcome                  what a finished run produced
//   summary                  the closing summary over an outcome
//   agent_io                 the agent runtime: usage meter, setup and notify commands
//   runner                   the run engine: dispatch, execute, queue, lease, record, finish
//   commands                 one module per command: run, merge, report, prune, hooks
//   progress, cli            (feature `cli`) the progress display; clap and the front ends
pub mod agent_io;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "cli")]
pub mod colour;
pub mod commands;
pub mod config;
pub mod error;
pub mod layout;
pub mod logcap;
pub mod outcome;
pub mod process;
#[cfg(feature = "cli")]
pub mod progress;
pub mod runner;
pub mod sandbox;
pub mod secrets;
pub mod summary;
pub mod workspace;

// The layers below, under the names the runtime and the library API use: the pure core
// (`ws_core`), the renderers (`ws_report`), git (`ws_git`) and the database (`ws_db`).
pub use ws_core::{agents, consolidate, fixup, model, plan, testparse, text, view, workstream};
pub use ws_db as db;
pub use ws_git as git;
pub use ws_report as report;

pub use commands::run::{Coordinator, RunOptions};
pub use db::ConsolidationDatabase;
pub use outcome::RunOutcome;

// The old homes of two commands, kept as public paths.
pub use commands::hooks;
pub use commands::merge as integrate;

/// The seed design's name for the coordinator.
pub type MultiAgentWorkstreamCoordinator = Coordinator;
