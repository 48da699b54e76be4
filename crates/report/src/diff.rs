//! One file's change as HTML: a unified or side-by-side diff with word-level changes marked,
//! computed with `similar` from the two texts. Pure: the caller reads the blobs.

use super::escape::html;
use similar::{ChangeTag, TextDiff};
use std::fmt::Write as _;

/// How a diff is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffLayout {
    /// One column: removed lines, then added lines, with their old and new numbers.
    Unified,
    /// Old on the left, new on the right.
    SideBySide,
}

/// Lines of context around each change.
pub const CONTEXT_LINES: usize = 3;
/// A side longer than this many bytes is not diffed line by line (the page says so).
pub const MAX_DIFF_BYTES: usize = 8 << 20;

/// One rendered line of a diff, before layout.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    tag: ChangeTag,
    old: Option<usize>,
    new: Option<usize>,
    /// The line's HTML, with `<mark>` around the words that changed.
    html: String,
}

/// The HTML of one file's diff: a `<table class="diff">` with a caption naming the file, or a
/// sentence when a side is binary or too large. `old` is `None` for an added file, `new`
/// for a deleted one.
pub fn diff_html(path: &str, old: Option<&str>, new: Option<&str>, layout: DiffLayout) -> String {
    let (o, n) = (old.unwrap_or(""), new.unwrap_or(""));
    let caption = format!(
        "<caption>{}{}</caption>",
        html(path),
        match (old, new) {
            (None, Some(_)) => " (added)",
            (Some(_), None) => " (deleted)",
            _ => "",
        }
    );
    if o.len() > MAX_DIFF_BYTES || n.len() > MAX_DIFF_BYTES {
        return format!(
            "<table class=\"diff\">{caption}<tbody><tr><td class=\"note\">This file is larger \
             than {} MiB; its diff is not shown.</td></tr></tbody></table>",
            MAX_DIFF_BYTES >> 20
        );
    }
    if o.contains('\0') || n.contains('\0') {
        return format!(
            "<table class=\"diff\">{caption}<tbody><tr><td class=\"note\">Binary file; its \
             diff is not shown.</td></tr></tbody></table>"
        );
    }
    let diff = TextDiff::configure()
        .algorithm(similar::Algorithm::Patience)
        .timeout(std::time::Duration::from_secs(2))
        .diff_lines(o, n);
    let mut out = String::with_capacity((o.len() + n.len()) / 2 + 256);
    let _ = write!(
        out,
        "<table class=\"diff {}\">{caption}{}",
        match layout {
            DiffLayout::Unified => "unified",
            DiffLayout::SideBySide => "split",
        },
        // Fixed widths for the line numbers, the rest for the code.
        match layout {
            DiffLayout::Unified => "<colgroup><col class=\"ln\"><col class=\"ln\"><col></colgroup>\
                 <thead class=\"sr\"><tr><th scope=\"col\">Old line</th><th scope=\"col\">New line</th>\
                 <th scope=\"col\">Change</th></tr></thead>",
            DiffLayout::SideBySide => {
                "<colgroup><col class=\"ln\"><col><col class=\"ln\"><col></colgroup>\
                 <thead class=\"sr\"><tr><th scope=\"col\">Old line</th><th scope=\"col\">Before</th>\
                 <th scope=\"col\">New line</th><th scope=\"col\">After</th></tr></thead>"
            }
        }
    );
    let groups = diff.grouped_ops(CONTEXT_LINES);
    if groups.is_empty() {
        out.push_str("<tbody><tr><td class=\"note\">No change in content.</td></tr></tbody>");
    }
    for group in &groups {
        let lines = group_lines(&diff, group);
        let first = group
            .first()
            .map(|op| op.old_range().start + 1)
            .unwrap_or(1);
        let first_new = group
            .first()
            .map(|op| op.new_range().start + 1)
            .unwrap_or(1);
        let _ = write!(
            out,
            "<tbody><tr class=\"hunk\"><th colspan=\"{}\" scope=\"rowgroup\">@@ -{first} +{first_new} @@</th></tr>",
            if layout == DiffLayout::Unified { 3 } else { 4 }
        );
        match layout {
            DiffLayout::Unified => unified(&mut out, &lines),
            DiffLayout::SideBySide => side_by_side(&mut out, &lines),
        }
        out.push_str("</tbody>");
    }
    out.push_str("</table>");
    out
}

fn group_lines<'a>(diff: &TextDiff<'a, 'a, str>, group: &[similar::DiffOp]) -> Vec<Line> {
    let mut lines = Vec::new();
    for op in group {
        for change in diff.iter_inline_changes(op) {
            let mut h = String::new();
            for (emphasized, value) in change.iter_strings_lossy() {
                let text = value.trim_end_matches(['\n', '\r']);
                if text.is_empty() {
                    continue;
                }
                if emphasized {
                    let _ = write!(h, "<mark>{}</mark>", html(text));
                } else {
                    h.push_str(&html(text));
                }
            }
            lines.push(Line {
                tag: change.tag(),
                old: change.old_index().map(|i| i + 1),
                new: change.new_index().map(|i| i + 1),
                html: h,
            });
        }
    }
    lines
}

fn num(n: Option<usize>) -> String {
    n.map(|n| n.to_string()).unwrap_or_default()
}

fn class(tag: ChangeTag) -> (&'static str, &'static str) {
    match tag {
        ChangeTag::Equal => ("ctx", " "),
        ChangeTag::Delete => ("del", "-"),
        ChangeTag::Insert => ("ins", "+"),
    }
}

fn unified(out: &mut String, lines: &[Line]) {
    for l in lines {
        let (cls, sign) = class(l.tag);
        let _ = write!(
            out,
            "<tr class=\"{cls}\"><td class=\"ln\">{}</td><td class=\"ln\">{}</td>\
             <td class=\"code\"><span class=\"sign\" aria-hidden=\"true\">{sign}</span>{}</td></tr>",
            num(l.old),
            num(l.new),
            l.html
        );
    }
}

/// Deleted and inserted lines of one change are paired row by row; context spans both.
fn side_by_side(out: &mut String, lines: &[Line]) {
    let mut i = 0;
    while i < lines.len() {
        if lines[i].tag == ChangeTag::Equal {
            let l = &lines[i];
            let _ = write!(
                out,
                "<tr class=\"ctx\"><td class=\"ln\">{}</td><td class=\"code\">{}</td>\
                 <td class=\"ln\">{}</td><td class=\"code\">{}</td></tr>",
                num(l.old),
                l.html,
                num(l.new),
                l.html
            );
            i += 1;
            continue;
        }
        let dels: Vec<&Line> = lines[i..]
            .iter()
            .take_while(|l| l.tag == ChangeTag::Delete)
            .collect();
        let ins: Vec<&Line> = lines[i + dels.len()..]
            .iter()
            .take_while(|l| l.tag == ChangeTag::Insert)
            .collect();
        for k in 0..dels.len().max(ins.len()) {
            out.push_str("<tr>");
            match dels.get(k) {
                Some(l) => {
                    let _ = write!(
                        out,
                        "<td class=\"ln del\">{}</td><td class=\"code del\">{}</td>",
                        num(l.old),
                        l.html
                    );
                }
                None => out.push_str("<td class=\"ln\"></td><td class=\"code empty\"></td>"),
            }
            match ins.get(k) {
                Some(l) => {
                    let _ = write!(
                        out,
                        "<td class=\"ln ins\">{}</td><td class=\"code ins\">{}</td>",
                        num(l.new),
                        l.html
                    );
                }
                None => out.push_str("<td class=\"ln\"></td><td class=\"code empty\"></td>"),
            }
            out.push_str("</tr>");
        }
        i += dels.len() + ins.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_word_is_marked_and_both_line_numbers_shown() {
        let h = diff_html(
            "a.txt",
            Some("one\ntwo three\nfour\n"),
            Some("one\ntwo THREE\nfour\n"),
            DiffLayout::Unified,
        );
        assert!(h.contains("<caption>a.txt</caption>"), "{h}");
        assert!(h.contains("<mark>THREE</mark>"), "{h}");
        assert!(h.contains("<mark>three</mark>"), "{h}");
        assert!(
            h.contains("<td class=\"ln\">2</td><td class=\"ln\"></td>"),
            "{h}"
        );
        assert!(
            h.contains("<td class=\"ln\"></td><td class=\"ln\">2</td>"),
            "{h}"
        );
    }

    #[test]
    fn side_by_side_pairs_removed_and_added_lines() {
        let h = diff_html(
            "f",
            Some("a\nb\n"),
            Some("a\nc\nd\n"),
            DiffLayout::SideBySide,
        );
        assert!(h.contains("class=\"diff split\""));
        // b pairs with c on one row; d has an empty left side.
        assert!(h.contains("<td class=\"ln del\">2</td>"), "{h}");
        assert!(
            h.contains(
                "<td class=\"ln\"></td><td class=\"code empty\"></td><td class=\"ln ins\">3</td>"
            ),
            "{h}"
        );
    }

    #[test]
    fn file_content_is_escaped_and_binary_or_unchanged_files_say_so() {
        let h = diff_html(
            "<x>.html",
            None,
            Some("<script>alert(1)</script>\n\u{202E}evil\n"),
            DiffLayout::Unified,
        );
        assert!(!h.contains("<script"), "{h}");
        assert!(h.contains("&lt;script&gt;"));
        assert!(!h.contains('\u{202E}'));
        assert!(h.contains("&lt;x&gt;.html (added)"));
        assert!(
            diff_html("b", Some("a\0b"), Some("c"), DiffLayout::Unified).contains("Binary file")
        );
        assert!(
            diff_html("s", Some("same\n"), Some("same\n"), DiffLayout::Unified)
                .contains("No change in content")
        );
    }

    #[test]
    fn a_ten_thousand_line_file_diffs_with_every_change_shown() {
        let old: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        let new: String = (0..10_000)
            .map(|i| {
                if i % 100 == 0 {
                    format!("line {i} changed\n")
                } else {
                    format!("line {i}\n")
                }
            })
            .collect();
        let h = diff_html("big", Some(&old), Some(&new), DiffLayout::Unified);
        assert_eq!(
            h.matches("<mark>").count(),
            100,
            "one marked word per changed line"
        );
    }
}
