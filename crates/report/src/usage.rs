//! What the agents spent and which workstreams were retried, in every output: summary rows
//! and a per-agent table in Markdown, lines and a table in the terminal, one line in the
//! closing summary. Nothing at all when nothing reported usage (never a row of zeros).

use super::cells::{md_header, md_row, render_table};
use super::escape::escape_inline as esc;
use std::fmt::Write as _;
use ws_core::model::Usage;
use ws_core::text::{duration, one_line};
use ws_core::view::{RetryRow, RunView};

/// `$0.4213` under a dollar, `$12.35` from one up.
pub fn fmt_usd(x: f64) -> String {
    if x.abs() >= 1.0 {
        format!("${x:.2}")
    } else {
        format!("${x:.4}")
    }
}

/// `1,234,567`.
pub fn fmt_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn opt_usd(u: &Usage) -> String {
    u.cost_usd
        .map_or("n/a".to_string(), |c| approx(u) + &fmt_usd(c))
}

/// `≈` before a cost read from a rounded number (aider prints its costs rounded).
fn approx(u: &Usage) -> String {
    if ws_core::agents::usage::cost_is_rounded(u) {
        "≈".to_string()
    } else {
        String::new()
    }
}

fn opt_count(n: Option<u64>) -> String {
    n.map_or("n/a".to_string(), fmt_count)
}

/// `12,345 in / 2,345 out` (what is known).
fn tokens(u: &Usage) -> Option<String> {
    match (u.input_tokens, u.output_tokens) {
        (None, None) => None,
        (i, o) => Some(format!("{} in / {} out", opt_count(i), opt_count(o))),
    }
}

/// The closing summary's line: `cost: $0.42 (claude $0.30, codex n/a); tokens: 12,345 in /
/// 2,345 out`; None when nothing reported usage.
pub fn usage_line(v: &RunView) -> Option<String> {
    let u = v.usage.as_ref()?;
    let mut s = format!("cost: {}", opt_usd(&u.total));
    let per: Vec<String> = u
        .by_agent
        .iter()
        .map(|a| format!("{} {}", a.agent, opt_usd(&a.usage)))
        .collect();
    let _ = write!(s, " ({})", per.join(", "));
    if let Some(t) = tokens(&u.total) {
        let _ = write!(s, "; tokens: {t}");
    }
    Some(s)
}

/// The closing summary's retry line: `retried: ws-a (3 attempts, flaky), ws-b (2 attempts)`.
pub fn retries_line(v: &RunView) -> Option<String> {
    if v.retries.is_empty() {
        return None;
    }
    let items: Vec<String> = v.retries.iter().take(10).map(retry_brief).collect();
    let more = v.retries.len().saturating_sub(10);
    Some(format!(
        "retried: {}{}",
        items.join(", "),
        if more > 0 {
            format!(", and {more} more")
        } else {
            String::new()
        }
    ))
}

fn retry_brief(r: &RetryRow) -> String {
    format!(
        "{} ({} attempts{})",
        r.workstream_id,
        r.attempts,
        if r.flaky { ", flaky" } else { "" }
    )
}

/// Rows for the executive summary.
pub(super) fn summary_rows(v: &RunView) -> Vec<(&'static str, String)> {
    let Some(u) = &v.usage else {
        return Vec::new();
    };
    let mut rows = vec![(
        "Cost (reported by the agents)",
        format!(
            "{} ({} of {} reported usage)",
            opt_usd(&u.total),
            u.workstreams,
            ws_core::text::plural(v.total_workstreams, "workstream", "workstreams")
        ),
    )];
    if let Some(t) = tokens(&u.total) {
        rows.push(("Tokens", t));
    }
    if !v.retries.is_empty() {
        rows.push((
            "Retried / flaky workstreams",
            format!(
                "{} / {}",
                v.retries.len(),
                v.retries.iter().filter(|r| r.flaky).count()
            ),
        ));
    }
    rows
}

pub(super) const AGENT_USAGE_HEADERS: [&str; 7] = [
    "Coding agent",
    "Workstreams",
    "Cost",
    "Input tokens",
    "Output tokens",
    "Turns",
    "Models",
];

pub(super) fn agent_usage_rows(v: &RunView) -> Vec<Vec<String>> {
    let Some(u) = &v.usage else {
        return Vec::new();
    };
    u.by_agent
        .iter()
        .map(|a| {
            vec![
                a.agent.clone(),
                a.workstreams.to_string(),
                opt_usd(&a.usage),
                opt_count(a.usage.input_tokens),
                opt_count(a.usage.output_tokens),
                opt_count(a.usage.turns),
                a.usage.model.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

/// The Markdown per-agent usage table (in the per-agent section).
pub(super) fn markdown_agents(out: &mut String, v: &RunView) {
    let rows = agent_usage_rows(v);
    if rows.is_empty() {
        return;
    }
    out.push_str("\n### Usage per coding agent\n\n");
    md_header(out, &AGENT_USAGE_HEADERS);
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| esc(c)).collect();
        md_row(out, &cells);
    }
}

/// The Markdown list of retried workstreams (in the error analysis).
pub(super) fn markdown_retries(out: &mut String, v: &RunView) {
    if v.retries.is_empty() {
        return;
    }
    out.push_str("\n### Retried workstreams\n\n");
    for r in &v.retries {
        let _ = writeln!(
            out,
            "- **{}**{}: {} attempts, {}{}; waited {}; retried after: {}",
            esc(&r.workstream_id),
            r.agent
                .as_deref()
                .map(|a| format!(" ({})", esc(a)))
                .unwrap_or_default(),
            r.attempts,
            r.status,
            if r.flaky { " (flaky)" } else { "" },
            duration(r.backoff_seconds),
            esc(&r.reasons.join("; "))
        );
    }
}

/// The workstream table's cost cell, when the run has usage.
pub(super) fn cost_cell(u: Option<&Usage>) -> String {
    u.and_then(|u| u.cost_usd.map(|c| approx(u) + &fmt_usd(c)))
        .unwrap_or_default()
}

/// Terminal: the overview's usage and retry lines.
pub(super) fn table_overview(s: &mut String, v: &RunView) {
    if let Some(line) = usage_line(v) {
        let _ = writeln!(s, "{}", one_line(&line));
    }
    if let Some(line) = retries_line(v) {
        let _ = writeln!(s, "{}", one_line(&line));
    }
}

/// Terminal: the per-agent usage table (after the slots' table).
pub(super) fn table_agents(s: &mut String, v: &RunView) {
    let rows = agent_usage_rows(v);
    if rows.is_empty() {
        return;
    }
    s.push('\n');
    let headers = AGENT_USAGE_HEADERS.map(str::to_lowercase);
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    s.push_str(&render_table(&headers, &rows));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_counts_read_well() {
        assert_eq!(fmt_usd(0.42131), "$0.4213");
        assert_eq!(fmt_usd(12.345), "$12.35");
        assert_eq!(fmt_usd(0.0), "$0.0000");
        assert_eq!(fmt_count(0), "0");
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_count(1000), "1,000");
        assert_eq!(fmt_count(1234567), "1,234,567");
    }

    #[test]
    fn a_cost_read_from_a_rounded_number_says_so() {
        let mut u = Usage {
            cost_usd: Some(0.0134),
            ..Usage::default()
        };
        assert_eq!(opt_usd(&u), "$0.0134");
        u.extra
            .insert("rounded".into(), serde_json::json!(["cost_usd"]));
        assert_eq!(opt_usd(&u), "≈$0.0134");
        assert_eq!(cost_cell(Some(&u)), "≈$0.0134");
        u.extra
            .insert("rounded".into(), serde_json::json!(["input_tokens"]));
        assert_eq!(cost_cell(Some(&u)), "$0.0134");
    }
}
