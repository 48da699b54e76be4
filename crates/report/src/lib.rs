//! Rendering: the Markdown run report, the `git ws-report` terminal tables, the JSON and the HTML
//! page — thin, pure renderers over one [`RunView`]. Writing files is the caller's job. Output is
//! deterministic for the same input.
//!
//! Everything shown in Markdown goes through [`escape_inline`] or [`fenced`], so nothing
//! that came from agents or files can break it; terminal cells are reduced to one line of
//! printable text.
//!
//! The files import only those before them: `escape`, `section` → `cells` (table layouts
//! and cells every renderer shares) → `usage` → `markdown` → `table` (which shows the
//! sections it has no table for as Markdown) → `json` → `diff` (one file's change as HTML) → `html`
//! (the page of a run) → this file, the public face
//! (`layers_test.rs` fails on an import that runs up that order).
//!
//! **May depend on:** `ws-core` (the view, the model, text helpers) and serde_json.
//! **May not depend on:** git, the database, tokio, clap, or the runtime above it. It is its
//! own crate so that a change to a renderer rebuilds neither the git nor the database crate.

mod cells;
mod diff;
mod escape;
mod html;
mod json;
mod markdown;
mod section;
mod table;
mod usage;

use ws_core::consolidate::Consolidated;
use ws_core::model::WorkstreamResult;
use ws_core::view::{Input, RunView};

pub use cells::render_table;
pub use diff::{diff_html, DiffLayout, CONTEXT_LINES, MAX_DIFF_BYTES};
pub use escape::html as escape_html;
pub use escape::{fenced_with, mermaid_name};
pub use html::{
    foot as html_foot, head as html_head, page_with as render_html_with, url_segment,
    workstream_page, CommitRow, FileDiff, PageOptions, WorkstreamPage, CSP, MAX_HTML_TITLE_COLUMNS,
};
pub use html::{
    plan_page, FollowupNotice, FollowupState, ReviewEntry, ReviewForms, COMMENT_FORMAT,
};
pub use json::{json, json_sections};
pub use markdown::{
    MAX_CONFLICT_DETAILS, MAX_ERROR_DETAILS, MAX_FULL_TITLE_COLUMNS, MAX_TABLE_ROWS,
    MAX_TITLE_COLUMNS,
};
pub use section::Section;
pub use table::{integration_line, tables, TABLE_TITLE_COLUMNS};
pub use usage::{fmt_count, fmt_usd, retries_line, usage_line};

/// A Markdown table of plain-text cells (each escaped with [`escape_inline`]).
pub fn markdown_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    cells::md_header(&mut out, headers);
    for r in rows {
        let escaped: Vec<String> = r.iter().map(|c| escape_inline(c)).collect();
        cells::md_row(&mut out, &escaped);
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

/// The run as one self-contained HTML page (`reports/multi_agent_consolidated_<run_id>.html`,
/// `git ws-report RUN --format html`): inline CSS and SVG, no script, nothing from elsewhere.
pub fn render_html(view: &RunView) -> String {
    html::page(view)
}

/// A page with one table of plain-text cells (`git ws-report --format html` without a run:
/// the list of runs).
pub fn render_html_list(title: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    html::list_page(title, headers, rows)
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
mod layers_test;
#[cfg(test)]
mod tests;
