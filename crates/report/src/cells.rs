//! The pieces every renderer lays out the same way: plain-text aligned tables and Markdown
//! table rows, the per-agent cells, the test totals. Shared by the Markdown report, the
//! terminal tables and the usage lines, so none of them imports another for these.

use std::fmt::Write as _;
use ws_core::consolidate::AgentPerf;
use ws_core::text::{duration, one_line, width};
use ws_core::view::RunView;

/// A plain-text table with aligned columns (widths counted in terminal columns), a dashed
/// rule under the headers and two spaces between columns; no trailing spaces. Cells are
/// reduced to one line of printable text. Rows shorter than the headers are padded with
/// empty cells; extra cells are dropped.
pub fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let n = headers.len();
    let clean: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            (0..n)
                .map(|i| r.get(i).map(|c| one_line(c)).unwrap_or_default())
                .collect()
        })
        .collect();
    let header_cells: Vec<String> = headers.iter().map(|h| one_line(h)).collect();
    let mut widths: Vec<usize> = header_cells.iter().map(|h| width(h)).collect();
    for r in &clean {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(width(c));
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            l.push_str(c);
            if i + 1 < cells.len() {
                l.extend(std::iter::repeat_n(' ', widths[i] - width(c)));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, &header_cells);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&mut out, &rule);
    for r in &clean {
        line(&mut out, r);
    }
    out
}

/// Write a Markdown table header and its delimiter row.
pub(super) fn md_header(out: &mut String, headers: &[&str]) {
    md_row(out, headers);
    out.push('|');
    for _ in headers {
        out.push_str(" --- |");
    }
    out.push('\n');
}

/// Write one Markdown table row; cells must already be escaped.
pub(super) fn md_row<S: AsRef<str>>(out: &mut String, cells: &[S]) {
    out.push('|');
    for c in cells {
        let _ = write!(out, " {} |", c.as_ref());
    }
    out.push('\n');
}

/// The per-agent table, shared by the report and the terminal: headers and plain cells.
pub(super) const AGENT_HEADERS: [&str; 8] = [
    "Agent",
    "Workstreams",
    "Completed",
    "Failed",
    "Skipped",
    "Busy",
    "Utilisation",
    "Avg duration",
];

pub(super) fn agent_cells(p: &AgentPerf) -> Vec<String> {
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

/// "34 / 1 / 0 (4 of 5 tested workstreams passing)", with n/a for counts nobody printed.
pub(super) fn test_totals(v: &RunView) -> String {
    let t = &v.tests;
    let counts = if t.workstreams_counted == 0 {
        "n/a".to_string()
    } else {
        format!("{} / {} / {}", t.passed, t.failed, t.skipped)
    };
    let mut s = format!(
        "{counts} ({} of {} tested workstreams passing",
        t.workstreams_passed, t.workstreams_tested
    );
    if t.workstreams_counted < t.workstreams_tested && t.workstreams_counted > 0 {
        let _ = write!(s, "; counts from {} of them", t.workstreams_counted);
    }
    s.push(')');
    s
}

/// "p1 → p1~fix1 (conflict; integrated) → …", the attempts bounded to
/// [`MAX_SHOWN_ATTEMPTS`] (the latest ones).
pub(crate) fn chain_text(c: &ws_core::fixup::FixupChain) -> String {
    let skip = c.attempts.len().saturating_sub(MAX_SHOWN_ATTEMPTS);
    let mut t = c.workstream_id.clone();
    if skip > 0 {
        let _ = write!(t, " → … ({skip} earlier attempts)");
    }
    for a in &c.attempts[skip..] {
        let _ = write!(t, " → {} ({}; {})", a.followup_id, a.reason, a.outcome);
    }
    t
}

/// Most attempts of one fix-up chain shown.
pub(crate) const MAX_SHOWN_ATTEMPTS: usize = 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_columns_without_trailing_spaces() {
        let t = render_table(
            &["Agent", "Done", "Busy"],
            &[
                vec!["agent-1".into(), "3".into(), "12.0s".into()],
                vec!["agent-10".into(), "12".into()],
            ],
        );
        assert_eq!(
            t,
            "Agent     Done  Busy\n\
             --------  ----  -----\n\
             agent-1   3     12.0s\n\
             agent-10  12\n"
        );
    }

    #[test]
    fn wide_characters_line_up_and_escapes_vanish() {
        let t = render_table(
            &["path", "n"],
            &[
                vec!["日本語.md".into(), "1".into()],
                vec!["\u{1b}[31mred\u{1b}[0m\nx".into(), "2".into()],
            ],
        );
        assert_eq!(
            t,
            "path       n\n\
             ---------  -\n\
             日本語.md  1\n\
             red x      2\n"
        );
    }

    #[test]
    fn markdown_rows() {
        let mut s = String::new();
        md_header(&mut s, &["a", "b"]);
        md_row(&mut s, &["1", ""]);
        assert_eq!(s, "| a | b |\n| --- | --- |\n| 1 |  |\n");
    }
}
