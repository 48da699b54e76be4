//! Rendering: the Markdown run report, the `git ws-report` terminal tables and the JSON —
//! thin, pure renderers over one [`RunView`](crate::view::RunView). Writing files is the
//! caller's job. Output is deterministic for the same input.
//!
//! Everything shown in Markdown goes through [`escape_inline`] or [`fenced`], so nothing
//! that came from agents or files can break it; terminal cells are reduced to one line of
//! printable text.

mod escape;
mod json;
mod markdown;
mod table;
mod usage;

use crate::consolidate::Consolidated;
use crate::model::WorkstreamResult;
use crate::view::{Input, RunView};

pub use escape::{fenced_with, mermaid_name};
pub use json::{json, json_sections};
pub use markdown::{MAX_CONFLICT_DETAILS, MAX_ERROR_DETAILS, MAX_TABLE_ROWS, MAX_TITLE_COLUMNS};
pub use table::{render_table, tables, TABLE_TITLE_COLUMNS};
pub use usage::{fmt_count, fmt_usd, retries_line, usage_line};

/// The per-agent table, shared by the report and the terminal: headers and plain cells.
pub(crate) const AGENT_HEADERS: [&str; 8] = [
    "Agent",
    "Workstreams",
    "Completed",
    "Failed",
    "Skipped",
    "Busy",
    "Utilisation",
    "Avg duration",
];

pub(crate) fn agent_cells(p: &crate::consolidate::AgentPerf) -> Vec<String> {
    use crate::text::duration;
    vec![
        p.agent_id.clone(),
        p.total.to_string(),
        p.completed.to_string(),
        p.failed.to_string(),
        p.skipped.to_string(),
        duration(p.busy_seconds),
        format!("{:.1}%", p.utilisation * 100.0),
        duration(p.avg_duration),
    ]
}

/// A Markdown table of plain-text cells (each escaped with [`escape_inline`]).
pub fn markdown_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    table::md_header(&mut out, headers);
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| escape_inline(c)).collect();
        table::md_row(&mut out, &cells);
    }
    out
}

/// What a report is rendered from when there is no database to ask (a run that just
/// finished: nothing merged yet).
#[derive(Debug, Clone)]
pub struct ReportModel<'a> {
    pub consolidated: &'a Consolidated,
    pub results: &'a [WorkstreamResult],
}

impl ReportModel<'_> {
    /// The view of this run.
    pub fn view(&self) -> RunView {
        let state = if self.consolidated.run.finished_at.is_some() {
            "finished"
        } else {
            "running"
        };
        RunView::build(Input {
            consolidated: self.consolidated,
            results: self.results,
            merges: None,
            state,
        })
    }
}

/// A section of the report (an H2), usable on its own by `git ws-report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    /// Executive summary: totals, rates, times, speed-up, base, agents.
    Summary,
    /// Per-agent breakdown and each agent's workstreams.
    Agents,
    /// One row per workstream.
    Workstreams,
    /// Error counts by type, each error with its output tail, warnings.
    Errors,
    /// Files modified, with the workstreams that touched each and overlaps flagged.
    Files,
    /// Every commit created.
    Commits,
    /// Test totals and per-workstream test results.
    Tests,
    /// Merge forecast: clusters, conflicts with hunks, clean overlaps, the explained merge
    /// order.
    Forecast,
    /// What `git ws-merge` merged onto the integration branch and what it left out.
    Integration,
    /// The recommendations.
    Recommendations,
    /// Mermaid gantt chart and timeline table.
    Timeline,
}

impl Section {
    /// Every section, in report order.
    pub const ALL: [Section; 11] = [
        Section::Summary,
        Section::Agents,
        Section::Workstreams,
        Section::Errors,
        Section::Files,
        Section::Commits,
        Section::Tests,
        Section::Forecast,
        Section::Integration,
        Section::Recommendations,
        Section::Timeline,
    ];

    /// The section's H2 heading text.
    pub fn title(self) -> &'static str {
        match self {
            Section::Summary => "Executive summary",
            Section::Agents => "Per-agent breakdown",
            Section::Workstreams => "Workstreams",
            Section::Errors => "Error analysis",
            Section::Files => "Files modified",
            Section::Commits => "Commits",
            Section::Tests => "Test results",
            Section::Forecast => "Merge forecast",
            Section::Integration => "Integration",
            Section::Recommendations => "Recommendations",
            Section::Timeline => "Execution timeline",
        }
    }
}

/// The full Markdown report (`reports/multi_agent_consolidated_<run_id>.md`).
pub fn render_markdown(m: &ReportModel<'_>) -> String {
    markdown::report(&m.view())
}

/// The full Markdown report of a view.
pub fn markdown(v: &RunView) -> String {
    markdown::report(v)
}

/// One section of the report as Markdown, starting with its `## ` heading; the same text
/// [`markdown`] contains for it.
pub fn markdown_section(v: &RunView, section: Section) -> String {
    let mut out = String::new();
    markdown::write_section(&mut out, v, section);
    out
}

/// Escape agent-produced text for a Markdown table cell or inline text (pipes, backticks,
/// HTML, leading `#`/`>`/list markers, newlines, terminal escapes).
pub fn escape_inline(s: &str) -> String {
    escape::escape_inline(s)
}

/// Put agent-produced text in a fenced code block that its content cannot close.
pub fn fenced(s: &str) -> String {
    escape::fenced(s)
}

#[cfg(test)]
mod tests;
