//! `git ws-report`: lists recorded runs and prints a run's summary and sections from the
//! database, as tables, JSON or Markdown; `--record-merges` is what the post-merge hook runs.

use crate::db::{ConsolidationDatabase, DbLocation, RunState, RunSummary};
use crate::error::Error;
use crate::report::{self, render_table, Section};
use clap::{Parser, ValueEnum};
use serde::Serialize;
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
#[command(
    name = "git-ws-report",
    bin_name = "git ws-report",
    version,
    after_help = "Exit status: 0 success; 2 no database, unknown run id, or bad usage."
)]
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
    /// Print the files modified (overlaps flagged)
    #[arg(long)]
    pub files: bool,
    /// Print the execution timeline
    #[arg(long)]
    pub timeline: bool,
    /// Print the integration (what `git ws-merge` merged and left out)
    #[arg(long)]
    pub integration: bool,
    /// Output format (`markdown` without section flags rewrites the report file)
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
    /// Database: an SQLite path or a postgres:// URL [default: env GIT_WS_DATABASE_URL, git
    /// config ws.database, else .state/multi_agent_consolidated.db at the repository root]
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<DbLocation>,
    /// Reports directory for `--format markdown` [default: reports/ at the repository root]
    #[arg(long, value_name = "DIR")]
    pub reports_dir: Option<PathBuf>,
    /// Record which ws/… branches are merged into HEAD (what the post-merge hook runs);
    /// never fails
    #[arg(long, conflicts_with = "run")]
    pub record_merges: bool,
}

/// `git ws-report`: returns the process exit status.
pub fn report_main() -> i32 {
    let args = ReportArgs::parse();
    if args.record_merges {
        if let Some(line) = record_merges(&args) {
            println!("{line}");
        }
        return 0;
    }
    match run(&args) {
        Ok(out) => {
            print!("{out}");
            0
        }
        Err(e) => {
            eprintln!("git ws-report: {e}");
            e.exit_code()
        }
    }
}

struct Paths {
    db: DbLocation,
    reports: PathBuf,
}

fn paths(args: &ReportArgs) -> Result<Paths, Error> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::new(format!("failed to read the current directory: {e}")))?;
    let repo = crate::git::discover(&cwd).ok();
    let db =
        crate::workspace::locate_db(args.db.as_ref(), &cwd, repo.as_ref())?.ok_or_else(|| {
            Error::new("not inside a git repository: pass --db PATH|URL or run from the repository")
        })?;
    let reports = match &args.reports_dir {
        Some(p) => cwd.join(p),
        None => match &repo {
            Some(r) => r.root.join(crate::runner::DEFAULT_REPORTS),
            None => cwd.join(crate::runner::DEFAULT_REPORTS),
        },
    };
    Ok(Paths { db, reports })
}

/// Produce the output for these arguments.
pub fn run(args: &ReportArgs) -> Result<String, Error> {
    let p = paths(args)?;
    let mut db = ConsolidationDatabase::open_existing(&p.db)?;
    let Some(spec) = &args.run else {
        let runs = db.get_all_runs(args.limit)?;
        return Ok(render_list(&runs, args.format));
    };
    let run_id = db.resolve_run_id(spec)?;
    let view = db.run_view(&run_id)?;
    let sections: Vec<Section> = [
        (args.agents, Section::Agents),
        (args.errors, Section::Errors),
        (args.files, Section::Files),
        (args.timeline, Section::Timeline),
        (args.integration, Section::Integration),
    ]
    .into_iter()
    .filter_map(|(on, s)| on.then_some(s))
    .collect();
    match args.format {
        ReportFormat::Json => Ok(report::json_sections(&view, &sections)),
        ReportFormat::Table => Ok(report::tables(&view, &sections)),
        ReportFormat::Markdown if sections.is_empty() => {
            let path = crate::runner::report_path(&p.reports, &run_id);
            crate::runner::make_reports_dir(&p.reports)
                .and_then(|_| std::fs::write(&path, report::markdown(&view)))
                .map_err(|e| {
                    Error::new(format!(
                        "failed to write the report {}: {e}",
                        path.display()
                    ))
                })?;
            Ok(format!("{}\n", path.display()))
        }
        ReportFormat::Markdown => Ok(sections
            .iter()
            .map(|s| report::markdown_section(&view, *s))
            .collect::<Vec<_>>()
            .join("\n")),
    }
}

/// One listed run, as JSON.
#[derive(Serialize)]
struct ListedRun<'a> {
    run_id: &'a str,
    timestamp: &'a str,
    total_workstreams: i64,
    completed_count: i64,
    failed_count: i64,
    skipped_count: i64,
    state: RunState,
    rerun_of: Option<&'a str>,
}

fn render_list(runs: &[RunSummary], format: ReportFormat) -> String {
    if format == ReportFormat::Json {
        let listed: Vec<ListedRun> = runs
            .iter()
            .map(|r| ListedRun {
                run_id: &r.run_id,
                timestamp: &r.timestamp,
                total_workstreams: r.total_workstreams,
                completed_count: r.completed_count,
                failed_count: r.failed_count,
                skipped_count: r.skipped_count,
                state: r.state,
                rerun_of: r.rerun_of.as_deref(),
            })
            .collect();
        let mut s = serde_json::to_string_pretty(&listed).unwrap_or_default();
        s.push('\n');
        return s;
    }
    if runs.is_empty() {
        return "no runs recorded yet: run `git ws-run`\n".to_string();
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.run_id.clone(),
                r.timestamp
                    .chars()
                    .take(19)
                    .collect::<String>()
                    .replace('T', " "),
                r.state.as_str().to_string(),
                r.total_workstreams.to_string(),
                r.completed_count.to_string(),
                r.failed_count.to_string(),
                r.skipped_count.to_string(),
                r.rerun_of.clone().unwrap_or_default(),
            ]
        })
        .collect();
    const HEADERS: [&str; 8] = [
        "run",
        "started (UTC)",
        "state",
        "total",
        "completed",
        "failed",
        "skipped",
        "rerun of",
    ];
    if format == ReportFormat::Markdown {
        report::markdown_table(&HEADERS, &rows)
    } else {
        render_table(&HEADERS, &rows)
    }
}

/// The post-merge hook's work: record newly landed `ws/…` branches (see
/// [`crate::hooks::record_merges`]). Returns the line to print, if any. Never fails.
pub fn record_merges(args: &ReportArgs) -> Option<String> {
    let cwd = std::env::current_dir().ok()?;
    crate::hooks::record_merges(&cwd, args.db.as_ref())
}
