//! git-ws: run a backlog of workstreams across parallel coding agents, each in its own git
//! worktree, and consolidate what they did (read from git itself) into one SQLite database
//! and one Markdown report per run.

pub mod consolidate;
pub mod db;
pub mod error;
pub mod git;
pub mod model;
pub mod plan;
pub mod report;
pub mod runner;
pub mod testparse;
pub mod workstream;

pub use db::ConsolidationDatabase;
pub use runner::{Coordinator, RunOptions, RunOutcome};
pub mod cli;
pub mod hooks;
pub mod progress;
