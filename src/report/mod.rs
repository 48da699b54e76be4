//! Rendering: the Markdown run report, and the table and JSON views `git ws-report` prints.
//! Pure functions over a [`ReportModel`]; writing files is the caller's job.

use crate::consolidate::Consolidated;
use crate::model::WorkstreamResult;

/// What a report is rendered from.
#[derive(Debug, Clone)]
pub struct ReportModel<'a> {
    pub consolidated: &'a Consolidated,
    pub results: &'a [WorkstreamResult],
}

/// The full Markdown report (`reports/multi_agent_consolidated_<run_id>.md`).
pub fn render_markdown(m: &ReportModel<'_>) -> String {
    let _ = m;
    todo!()
}

/// Escape agent-produced text for a Markdown table cell or inline text (pipes, backticks,
/// HTML, leading `#`/`>`/list markers, newlines).
pub fn escape_inline(s: &str) -> String {
    let _ = s;
    todo!()
}

/// Put agent-produced text in a fenced code block that its content cannot close.
pub fn fenced(s: &str) -> String {
    let _ = s;
    todo!()
}

/// Plain-text table with aligned columns.
pub fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let _ = (headers, rows);
    todo!()
}
