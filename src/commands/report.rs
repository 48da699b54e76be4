//! `git ws-report`, the command: list the recorded runs, or print one run's summary and
//! sections from the database as tables, JSON or Markdown (`markdown` without sections
//! prints the whole report; with `write`, it rewrites the run's report file instead). Works
//! outside a repository when given a database.

use crate::db::{ConsolidationDatabase, DbLocation, RunState, RunSummary};
use crate::error::Error;
use crate::layout::Reports;
use crate::report::{self, render_table, Section};
use crate::workspace::Workspace;
use serde::Serialize;
use std::path::PathBuf;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
    Markdown,
    /// The run's page (the whole run: no sections).
    Html,
}

/// What `git ws-report` is asked for.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Where the command runs (the repository, if any, is found from here).
    pub cwd: PathBuf,
    /// Run id to show (`latest` works); `None`: list recent runs.
    pub run: Option<String>,
    /// How many runs to list.
    pub limit: usize,
    /// The sections to print (none: the run's summary).
    pub sections: Vec<Section>,
    pub format: Format,
    /// Database (flag); `None`: env, git config, the default.
    pub db: Option<DbLocation>,
    /// Reports directory for `write`; `None`: `reports/` at the repository root.
    pub reports_dir: Option<PathBuf>,
    /// `--write`: with `Format::Markdown` and no sections, rewrite the run's report file
    /// and return its path instead of the report.
    pub write: bool,
}

struct Paths {
    db: DbLocation,
    reports: Reports,
}

fn paths(opts: &ReportOptions) -> Result<Paths, Error> {
    let cwd = &opts.cwd;
    let found = Workspace::discover(cwd);
    let ws = found.as_ref().ok();
    let db = match crate::workspace::locate_db(opts.db.as_ref(), cwd, ws)? {
        Some(db) => db,
        // A repository in an odd state (bare, an orphan or deleted current branch, no
        // commits) says so; only outside any repository is it "not inside".
        None => match found {
            Err(Error::Git(crate::git::GitError::NotARepository { .. })) | Ok(_) => {
                return Err(Error::new(
                    "not inside a git repository: pass --db PATH|URL or run from the repository",
                ))
            }
            // An odd repository or an unusable setting says so.
            Err(e) => return Err(e),
        },
    };
    let ws = ws.cloned();
    let reports = match (&opts.reports_dir, &ws) {
        (Some(p), _) => Reports::at(cwd.join(p)),
        (None, Some(w)) => w.layout.reports().clone(),
        (None, None) => Reports::default_in(cwd),
    };
    Ok(Paths { db, reports })
}

/// `git ws-report`: the output for these options.
pub fn report(opts: &ReportOptions) -> Result<String, Error> {
    let p = paths(opts)?;
    let mut db = ConsolidationDatabase::open_read_only(&p.db)?;
    let Some(spec) = &opts.run else {
        let runs = db.get_all_runs(opts.limit)?;
        return Ok(render_list(&runs, opts.format));
    };
    let run_id = db.resolve_run_id(spec)?;
    let view = db.run_view(&run_id)?;
    let sections = &opts.sections;
    if opts.write && (opts.format != Format::Markdown || !sections.is_empty()) {
        return Err(Error::new(
            "--write rewrites the run's Markdown report: use it with --format markdown and no section flags",
        ));
    }
    match opts.format {
        Format::Json => Ok(report::json_sections(&view, sections)),
        Format::Table => Ok(report::tables(&view, sections)),
        Format::Markdown if sections.is_empty() && !opts.write => Ok(report::markdown(&view)),
        Format::Markdown if sections.is_empty() => {
            crate::workstream::validate_run_id(&run_id)?;
            let path = p.reports.file(&run_id);
            p.reports
                .make_dir()
                .and_then(|_| std::fs::write(&path, report::markdown(&view)))
                .map_err(|e| {
                    Error::new(format!(
                        "failed to write the report {}: {e}",
                        path.display()
                    ))
                })?;
            Ok(format!("{}\n", path.display()))
        }
        Format::Html if !sections.is_empty() => Err(Error::new(
            "--format html shows the whole run: drop the section flags (--agents, --errors, …)",
        )),
        Format::Html => Ok(report::render_html(&view)),
        Format::Markdown => Ok(sections
            .iter()
            .map(|s| report::markdown_section(&view, *s))
            .collect::<Vec<_>>()
            .join("\n")),
    }
}

/// One listed run, as JSON.
#[derive(Serialize)]
struct ListedRun<'a> {
    /// The JSON contract's version ([`crate::view::SCHEMA`]), on every object.
    schema: u32,
    run_id: &'a str,
    timestamp: &'a str,
    total_workstreams: i64,
    completed_count: i64,
    failed_count: i64,
    skipped_count: i64,
    state: RunState,
    rerun_of: Option<&'a str>,
}

fn render_list(runs: &[RunSummary], format: Format) -> String {
    if format == Format::Json {
        let listed: Vec<ListedRun> = runs
            .iter()
            .map(|r| ListedRun {
                schema: crate::view::SCHEMA,
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
    if format == Format::Markdown {
        report::markdown_table(&HEADERS, &rows)
    } else if format == Format::Html {
        report::render_html_list("git-ws runs", &HEADERS, &rows)
    } else {
        render_table(&HEADERS, &rows)
    }
}
