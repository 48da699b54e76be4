//! `git ws-report`: lists recorded runs and prints a run's summary and sections from the
//! database, as tables, JSON or Markdown.

use crate::db::ConsolidationDatabase;
use crate::error::{Error, EXIT_NOTHING_RAN};
use clap::{Parser, ValueEnum};
use std::path::PathBuf;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Markdown,
}

/// Query what git ws-run recorded: list recent runs, or show one run.
#[derive(Debug, Parser)]
#[command(name = "git-ws-report", bin_name = "git ws-report", version)]
pub struct ReportArgs {
    /// Run id to show (`latest` works); without it, list recent runs
    pub run: Option<String>,
    /// How many runs to list
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Print the per-agent breakdown
    #[arg(long)]
    pub agents: bool,
    /// Print the errors
    #[arg(long)]
    pub errors: bool,
    /// Print the files modified
    #[arg(long)]
    pub files: bool,
    /// Print the execution timeline
    #[arg(long)]
    pub timeline: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
    /// Database path [default: .state/multi_agent_consolidated.db at the repository root]
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

/// `git ws-report`: returns the process exit status.
pub fn report_main() -> i32 {
    let args = ReportArgs::parse();
    match run(&args) {
        Ok(out) => {
            print!("{out}");
            0
        }
        Err(e) => {
            eprintln!("git ws-report: {e}");
            EXIT_NOTHING_RAN
        }
    }
}

fn db_path(args: &ReportArgs) -> Result<PathBuf, Error> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::new(format!("failed to read the current directory: {e}")))?;
    if let Some(p) = &args.db {
        return Ok(cwd.join(p));
    }
    let repo = crate::git::discover(&cwd)?;
    Ok(repo.root.join(crate::runner::DEFAULT_DB))
}

/// Produce the output for these arguments.
pub fn run(args: &ReportArgs) -> Result<String, Error> {
    let path = db_path(args)?;
    let mut db = ConsolidationDatabase::open_existing(&path)?;
    match &args.run {
        None => {
            let runs = db.get_all_runs(args.limit)?;
            Ok(match args.format {
                ReportFormat::Json => {
                    let v: Vec<serde_json::Value> = runs
                        .iter()
                        .map(|r| {
                            serde_json::json!({
                                "run_id": r.run_id,
                                "timestamp": r.timestamp,
                                "total_workstreams": r.total_workstreams,
                                "completed_count": r.completed_count,
                                "failed_count": r.failed_count,
                                "skipped_count": r.skipped_count,
                            })
                        })
                        .collect();
                    format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
                }
                _ => {
                    let rows: Vec<Vec<String>> = runs
                        .iter()
                        .map(|r| {
                            vec![
                                r.run_id.clone(),
                                r.timestamp.clone(),
                                r.state.as_str().to_string(),
                                r.total_workstreams.to_string(),
                                r.completed_count.to_string(),
                                r.failed_count.to_string(),
                                r.skipped_count.to_string(),
                            ]
                        })
                        .collect();
                    crate::report::render_table(
                        &[
                            "run",
                            "started",
                            "state",
                            "total",
                            "completed",
                            "failed",
                            "skipped",
                        ],
                        &rows,
                    )
                }
            })
        }
        Some(spec) => {
            let run_id = db.resolve_run_id(spec)?;
            let s = db
                .get_run_summary(&run_id)?
                .ok_or_else(|| Error::new(format!("no run {run_id}")))?;
            Ok(format!(
                "{}: {} completed, {} failed, {} skipped of {} ({})\n",
                s.run_id,
                s.completed_count,
                s.failed_count,
                s.skipped_count,
                s.total_workstreams,
                s.state.as_str()
            ))
        }
    }
}
