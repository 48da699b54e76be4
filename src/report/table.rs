//! Table writers: plain-text aligned tables for the terminal, and Markdown table rows for
//! the report (cells there are escaped by the caller).

use std::fmt::Write as _;

/// One cell made safe for a terminal: control characters (escape sequences, newlines,
/// tabs) become spaces.
fn terminal_cell(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A plain-text table with aligned columns (widths counted in chars), a dashed rule under
/// the headers and two spaces between columns; no trailing spaces. Rows shorter than the
/// headers are padded with empty cells; extra cells are dropped.
pub fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let n = headers.len();
    let clean: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            (0..n)
                .map(|i| r.get(i).map(|c| terminal_cell(c)).unwrap_or_default())
                .collect()
        })
        .collect();
    let header_cells: Vec<String> = headers.iter().map(|h| terminal_cell(h)).collect();
    let mut widths: Vec<usize> = header_cells.iter().map(|h| h.chars().count()).collect();
    for r in &clean {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
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
                let pad = widths[i] - c.chars().count();
                l.extend(std::iter::repeat_n(' ', pad));
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
pub(crate) fn md_header(out: &mut String, headers: &[&str]) {
    md_row(out, headers);
    out.push('|');
    for _ in headers {
        out.push_str(" --- |");
    }
    out.push('\n');
}

/// Write one Markdown table row; cells must already be escaped.
pub(crate) fn md_row<S: AsRef<str>>(out: &mut String, cells: &[S]) {
    out.push('|');
    for c in cells {
        let _ = write!(out, " {} |", c.as_ref());
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_columns_without_trailing_spaces() {
        let t = render_table(
            &["Agent", "Done", "Busy"],
            &[
                vec!["agent-1".into(), "3".into(), "12.0 s".into()],
                vec!["agent-10".into(), "12".into()],
            ],
        );
        assert_eq!(
            t,
            "Agent     Done  Busy\n\
             --------  ----  ------\n\
             agent-1   3     12.0 s\n\
             agent-10  12\n"
        );
    }

    #[test]
    fn terminal_cells_lose_control_characters() {
        let t = render_table(&["x"], &[vec!["a\u{1b}[2Jb\nc".into()]]);
        assert_eq!(t, "x\n--------\na [2Jb c\n");
    }

    #[test]
    fn markdown_rows() {
        let mut s = String::new();
        md_header(&mut s, &["a", "b"]);
        md_row(&mut s, &["1", ""]);
        assert_eq!(s, "| a | b |\n| --- | --- |\n| 1 |  |\n");
    }
}
