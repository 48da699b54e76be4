//! `git ws-report`: lists recorded runs and prints a run's summary and sections from the
//! database, as tables, JSON or Markdown; `--record-merges` is what the post-merge hook runs.

use crate::consolidate::{self, Consolidated};
use crate::db::{ConsolidationDatabase, DbLocation, MergeRecord, RunState, RunSummary};
use crate::error::{Error, EXIT_NOTHING_RAN};
use crate::model::{Status, WorkstreamResult};
use crate::report::{self, render_table, ReportModel, Section};
use clap::{Parser, ValueEnum};
use std::collections::HashMap;
use std::fmt::Write;
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
            EXIT_NOTHING_RAN
        }
    }
}

struct Paths {
    db: DbLocation,
    reports: PathBuf,
    repo: Option<crate::git::RepoPaths>,
}

fn paths(args: &ReportArgs) -> Result<Paths, Error> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::new(format!("failed to read the current directory: {e}")))?;
    let repo = crate::git::discover(&cwd).ok();
    let db = crate::db::locate(args.db.as_ref(), &cwd, repo.as_ref())?.ok_or_else(|| {
        Error::new("not inside a git repository: pass --db PATH|URL or run from the repository")
    })?;
    let reports = match &args.reports_dir {
        Some(p) => cwd.join(p),
        None => match &repo {
            Some(r) => r.root.join(crate::runner::DEFAULT_REPORTS),
            None => cwd.join(crate::runner::DEFAULT_REPORTS),
        },
    };
    Ok(Paths { db, reports, repo })
}

/// Produce the output for these arguments.
pub fn run(args: &ReportArgs) -> Result<String, Error> {
    let p = paths(args)?;
    let mut db = ConsolidationDatabase::open_existing(&p.db)?;
    match &args.run {
        None => {
            let runs = db.get_all_runs(args.limit)?;
            Ok(render_list(&runs, args.format))
        }
        Some(spec) => {
            let run_id = db.resolve_run_id(spec)?;
            let view = RunView::load(&mut db, &run_id)?;
            let sections: Vec<Section> = [
                (args.agents, Section::Agents),
                (args.errors, Section::Errors),
                (args.files, Section::Files),
                (args.timeline, Section::Timeline),
            ]
            .into_iter()
            .filter_map(|(on, s)| on.then_some(s))
            .collect();
            match args.format {
                ReportFormat::Json => Ok(format!(
                    "{}\n",
                    serde_json::to_string_pretty(&view.json()).unwrap_or_default()
                )),
                ReportFormat::Markdown if sections.is_empty() => {
                    let text = report::render_markdown(&view.model());
                    let path = crate::runner::report_path(&p.reports, &run_id);
                    std::fs::create_dir_all(&p.reports)
                        .and_then(|_| std::fs::write(&path, text))
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
                    .map(|s| report::render_section_markdown(&view.model(), *s))
                    .collect::<Vec<_>>()
                    .join("\n")),
                ReportFormat::Table => {
                    let _ = &p.repo;
                    Ok(view.tables(&sections))
                }
            }
        }
    }
}

fn render_list(runs: &[RunSummary], format: ReportFormat) -> String {
    match format {
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
                        "state": r.state.as_str(),
                        "rerun_of": r.rerun_of,
                    })
                })
                .collect();
            format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
        }
        _ => {
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
    }
}

/// Everything recorded about one run, consolidated afresh from its rows (so an unfinished
/// run shows what it has so far).
struct RunView {
    consolidated: Consolidated,
    results: Vec<WorkstreamResult>,
    merged: HashMap<String, MergeRecord>,
    state: RunState,
}

impl RunView {
    fn load(db: &mut ConsolidationDatabase, run_id: &str) -> Result<RunView, Error> {
        let info = db
            .run_info(run_id)?
            .ok_or_else(|| Error::new(format!("no run {run_id}")))?;
        let results = db.results(run_id)?;
        let forecast = db.forecast(run_id)?;
        let merged = db.merged(run_id)?;
        let state = db
            .get_run_summary(run_id)?
            .map(|s| s.state)
            .unwrap_or(RunState::Running);
        let consolidated = consolidate::consolidate(&info, &results, forecast);
        Ok(RunView {
            consolidated,
            results,
            merged,
            state,
        })
    }

    fn model(&self) -> ReportModel<'_> {
        ReportModel {
            consolidated: &self.consolidated,
            results: &self.results,
        }
    }

    /// The JSON contract documented in the README.
    fn json(&self) -> serde_json::Value {
        let c = &self.consolidated;
        let agents: Vec<serde_json::Value> = c
            .agents
            .iter()
            .map(|a| {
                serde_json::json!({
                    "agent_id": a.agent_id,
                    "total": a.total,
                    "completed": a.completed,
                    "failed": a.failed,
                    "busy_seconds": a.busy_seconds,
                })
            })
            .collect();
        let workstreams: Vec<serde_json::Value> = consolidate::ordered_results(&self.results)
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "workstream_id": r.workstream_id,
                    "agent_id": r.agent_id,
                    "status": r.status,
                    "duration_seconds": r.duration_seconds,
                    "files_modified": r.files.iter().map(|f| f.path.clone()).collect::<Vec<_>>(),
                    "commits_created": r.commits,
                    "branch": r.branch,
                    "merged": self.merged.contains_key(&r.workstream_id),
                })
            })
            .collect();
        let overlaps: Vec<serde_json::Value> = c
            .overlaps
            .iter()
            .map(|o| serde_json::json!({"path": o.path, "workstreams": o.workstreams}))
            .collect();
        let conflicts: Vec<serde_json::Value> = c
            .forecast
            .pairs
            .iter()
            .filter(|p| !p.conflict_paths.is_empty())
            .map(|p| serde_json::json!({"workstreams": [p.a, p.b], "paths": p.conflict_paths}))
            .collect();
        serde_json::json!({
            "run_id": c.run.run_id,
            "timestamp": c.run.started_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "state": self.state.as_str(),
            "rerun_of": c.run.rerun_of,
            "base": c.run.base,
            "total_workstreams": c.total_workstreams,
            "completed_count": c.completed,
            "failed_count": c.failed,
            "skipped_count": c.skipped,
            "total_files_modified": c.files.len(),
            "total_commits": c.commits.len(),
            "total_errors": c.total_errors,
            "total_warnings": c.total_warnings,
            "wall_seconds": c.wall_seconds,
            "recommendations": c.recommendations,
            "agents": agents,
            "workstreams": workstreams,
            "overlaps": overlaps,
            "conflicts": conflicts,
        })
    }

    /// Plain-text tables: the summary (and the workstreams) or the requested sections.
    fn tables(&self, sections: &[Section]) -> String {
        let c = &self.consolidated;
        let mut s = String::new();
        if sections.is_empty() {
            let _ = writeln!(
                s,
                "{} ({}{})",
                c.run.run_id,
                self.state.as_str(),
                c.run
                    .rerun_of
                    .as_ref()
                    .map(|r| format!(", rerun of {r}"))
                    .unwrap_or_default()
            );
            let _ = writeln!(
                s,
                "{} workstreams: {} completed, {} failed, {} skipped; {} files, {} commits, {} errors, {} warnings; {:.1}s on {} agents",
                c.total_workstreams,
                c.completed,
                c.failed,
                c.skipped,
                c.files.len(),
                c.commits.len(),
                c.total_errors,
                c.total_warnings,
                c.wall_seconds,
                c.run.agents
            );
            let merged = self.merged.len();
            let completed = c.completed;
            let _ = writeln!(s, "merged: {merged} of {completed} completed branches\n");
            let rows: Vec<Vec<String>> = consolidate::ordered_results(&self.results)
                .into_iter()
                .map(|r| {
                    vec![
                        r.workstream_id.clone(),
                        r.agent_id.clone(),
                        r.status.to_string(),
                        format!("{:.1}s", r.duration_seconds),
                        r.files.len().to_string(),
                        r.commits.len().to_string(),
                        if self.merged.contains_key(&r.workstream_id) {
                            "merged".into()
                        } else if r.status == Status::Completed {
                            "unmerged".into()
                        } else {
                            String::new()
                        },
                        r.errors
                            .first()
                            .map(|e| format!("{}: {}", e.error_type, first_line(&e.message)))
                            .unwrap_or_default(),
                    ]
                })
                .collect();
            s.push_str(&render_table(
                &[
                    "workstream",
                    "agent",
                    "status",
                    "duration",
                    "files",
                    "commits",
                    "merge",
                    "error",
                ],
                &rows,
            ));
            if !c.recommendations.is_empty() {
                s.push_str("\nrecommendations:\n");
                for r in &c.recommendations {
                    let _ = writeln!(s, "- {r}");
                }
            }
            return s;
        }
        for (i, section) in sections.iter().enumerate() {
            if i > 0 {
                s.push('\n');
            }
            match section {
                Section::Agents => {
                    let rows: Vec<Vec<String>> = c
                        .agents
                        .iter()
                        .map(|a| {
                            vec![
                                a.agent_id.clone(),
                                a.total.to_string(),
                                a.completed.to_string(),
                                a.failed.to_string(),
                                a.skipped.to_string(),
                                format!("{:.1}s", a.busy_seconds),
                                format!("{:.0}%", a.utilisation * 100.0),
                                format!("{:.1}s", a.avg_duration),
                            ]
                        })
                        .collect();
                    s.push_str(&render_table(
                        &[
                            "agent",
                            "workstreams",
                            "completed",
                            "failed",
                            "skipped",
                            "busy",
                            "utilisation",
                            "avg",
                        ],
                        &rows,
                    ));
                }
                Section::Errors => {
                    let mut rows = Vec::new();
                    for r in consolidate::ordered_results(&self.results) {
                        for e in &r.errors {
                            rows.push(vec![
                                r.workstream_id.clone(),
                                r.agent_id.clone(),
                                e.error_type.to_string(),
                                first_line(&e.message),
                            ]);
                        }
                    }
                    if rows.is_empty() {
                        s.push_str("no errors\n");
                    } else {
                        s.push_str(&render_table(
                            &["workstream", "agent", "type", "message"],
                            &rows,
                        ));
                    }
                }
                Section::Files => {
                    let rows: Vec<Vec<String>> = c
                        .files
                        .iter()
                        .map(|f| {
                            vec![
                                f.path.clone(),
                                format!("+{} -{}", f.additions, f.deletions),
                                f.workstreams.join(", "),
                                if f.workstreams.len() > 1 {
                                    "overlap".into()
                                } else {
                                    String::new()
                                },
                            ]
                        })
                        .collect();
                    if rows.is_empty() {
                        s.push_str("no files modified\n");
                    } else {
                        s.push_str(&render_table(&["path", "lines", "workstreams", ""], &rows));
                    }
                }
                Section::Timeline => {
                    let t0 = c.run.started_at;
                    let rows: Vec<Vec<String>> = consolidate::ordered_results(&self.results)
                        .into_iter()
                        .filter_map(|r| {
                            let (st, en) = (r.start_time?, r.end_time?);
                            let off = |t: chrono::DateTime<chrono::Utc>| {
                                format!("+{:.1}s", (t - t0).num_milliseconds() as f64 / 1000.0)
                            };
                            Some(vec![
                                off(st),
                                off(en),
                                format!("{:.1}s", r.duration_seconds),
                                r.agent_id.clone(),
                                r.workstream_id.clone(),
                                r.status.to_string(),
                            ])
                        })
                        .collect();
                    s.push_str(&render_table(
                        &["start", "end", "duration", "agent", "workstream", "status"],
                        &rows,
                    ));
                }
                other => s.push_str(&report::render_section_markdown(&self.model(), *other)),
            }
        }
        s
    }
}

fn first_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or("");
    if l.chars().count() > 120 {
        format!("{}…", l.chars().take(119).collect::<String>())
    } else {
        l.to_string()
    }
}

/// The post-merge hook's work: record newly merged `ws/…` branches. Returns the line to
/// print, if any. Never fails: every problem ends quietly (or with a one-line note).
pub fn record_merges(args: &ReportArgs) -> Option<String> {
    let p = paths(args).ok()?;
    let repo = p.repo?;
    let mut db = match ConsolidationDatabase::open_for_hook(&p.db) {
        Ok(Some(db)) => db,
        Ok(None) => return None,
        Err(_) => return Some("ws: database busy or unreadable; merge not recorded".to_string()),
    };
    let index = db.branch_index().ok()?;
    if index.is_empty() {
        return None;
    }
    let cwd = std::env::current_dir().ok()?;
    let merged = crate::git::merged_ws_branches(&repo, &cwd).ok()?;
    let head = crate::git::head_of(&cwd).ok()?;
    let now = chrono::Utc::now();
    let records: Vec<MergeRecord> = merged
        .into_iter()
        .filter_map(|(branch, tip)| {
            let (run_id, workstream_id) = index.get(&branch)?.clone();
            Some(MergeRecord {
                run_id,
                workstream_id,
                branch,
                tip,
                merge_commit: head.clone(),
                merged_at: now,
            })
        })
        .collect();
    // Which of these are new: not yet recorded for their run.
    let mut known: HashMap<String, HashMap<String, MergeRecord>> = HashMap::new();
    for r in &records {
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
    let new = match db.record_merges(&records) {
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
