//! `git ws-report`'s front end: its clap definition and the conversion into
//! [`ReportOptions`] (the command itself is [`crate::commands::report`]);
//! `--record-merges` is what the post-merge hook runs.

use crate::commands::report::{report, Format, ReportOptions};
use crate::db::DbLocation;
use crate::error::EXIT_NOTHING_RAN;
use crate::report::Section;
use clap::{Parser, ValueEnum};
use std::path::PathBuf;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Markdown,
    /// The whole run as one self-contained HTML page, on stdout
    Html,
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
    /// Output format, on stdout (`markdown` without section flags prints the whole report;
    /// `html` prints the run's page: redirect it to a file)
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
    /// With `--format markdown` and a run: rewrite the run's report file in the reports
    /// directory instead, and print its path
    #[arg(long)]
    pub write: bool,
    /// Database: an SQLite path or a postgres:// URL [default: env GIT_WS_DATABASE_URL, git
    /// config ws.database, else .state/multi_agent_consolidated.db at the repository root]
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<DbLocation>,
    /// Reports directory for `--write` [default: reports/ at the repository root]
    #[arg(long, value_name = "DIR")]
    pub reports_dir: Option<PathBuf>,
    /// Record which ws/… branches are merged into HEAD (what the post-merge hook runs);
    /// never fails
    #[arg(long, conflicts_with = "run")]
    pub record_merges: bool,
    /// Colour the table's statuses and failures: auto (only on a terminal, and not when
    /// NO_COLOR is set), always, never; JSON, Markdown and HTML are never coloured
    #[arg(long, value_name = "WHEN", value_enum, default_value = "auto")]
    pub color: crate::colour::ColorChoice,
    #[command(flatten)]
    pub docs: super::docs::DocsArgs,
}

/// `git ws-report`: returns the process exit status.
pub fn report_main() -> i32 {
    let args: ReportArgs = super::docs::parse();
    crate::colour::apply(args.color);
    if let Some(code) = args.docs.run("git ws-report") {
        return code;
    }
    if args.record_merges {
        if let Some(line) = record_merges(&args) {
            println!("{line}");
        }
        return 0;
    }
    let cwd = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("git ws-report: failed to read the current directory: {e}");
            return EXIT_NOTHING_RAN;
        }
    };
    match report(&args.to_options(cwd)) {
        Ok(out) => {
            // Only the table is for a terminal; --write prints a path.
            if args.format == ReportFormat::Table && !args.write {
                print!(
                    "{}",
                    crate::colour::paint_text(&out, crate::colour::Stream::Stdout)
                );
            } else {
                print!("{out}");
            }
            0
        }
        Err(e) => {
            let line = format!("git ws-report: {}", crate::text::clean(&e.to_string()));
            eprintln!("{}", crate::colour::paint_err(&line));
            e.exit_code()
        }
    }
}

impl ReportArgs {
    /// The library options these flags describe.
    pub fn to_options(&self, cwd: PathBuf) -> ReportOptions {
        let sections: Vec<Section> = [
            (self.agents, Section::Agents),
            (self.errors, Section::Errors),
            (self.files, Section::Files),
            (self.timeline, Section::Timeline),
            (self.integration, Section::Integration),
        ]
        .into_iter()
        .filter_map(|(on, s)| on.then_some(s))
        .collect();
        ReportOptions {
            cwd,
            run: self.run.clone(),
            limit: self.limit,
            sections,
            format: match self.format {
                ReportFormat::Table => Format::Table,
                ReportFormat::Json => Format::Json,
                ReportFormat::Markdown => Format::Markdown,
                ReportFormat::Html => Format::Html,
            },
            db: self.db.clone(),
            reports_dir: self.reports_dir.clone(),
            write: self.write,
        }
    }
}

/// The post-merge hook's work: record newly landed `ws/…` branches (see
/// [`crate::commands::hooks::record_merges`]). Returns the line to print, if any. Never
/// fails.
pub fn record_merges(args: &ReportArgs) -> Option<String> {
    let cwd = std::env::current_dir().ok()?;
    crate::commands::hooks::record_merges(&cwd, args.db.as_ref())
}
