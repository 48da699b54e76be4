//! Escaping of agent- and file-produced text for Markdown (inline text, table cells, fenced
//! blocks) and for Mermaid gantt charts.

/// Escape text for a Markdown table cell or inline text so it renders literally: HTML
/// specials become entities (`|` too, so no table row can gain a column), Markdown
/// punctuation is backslash-escaped, a leading block marker (`#`, `-`, `+`, `=`, `1.`, `1)`)
/// is neutralised, newlines become `<br>`, terminal escape sequences are dropped and other
/// control characters become a space.
pub fn escape_inline(s: &str) -> String {
    let s = if s.contains('\u{1b}') {
        console::strip_ansi_codes(s)
    } else {
        std::borrow::Cow::Borrowed(s)
    };
    let mut out = String::with_capacity(s.len() + s.len() / 8 + 4);
    let mut at_start = true;
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if at_start && c != ' ' && c != '\t' {
            at_start = false;
            match c {
                '#' | '-' | '+' | '=' => {
                    out.push('\\');
                    out.push(c);
                    continue;
                }
                d if d.is_ascii_digit() => {
                    out.push(d);
                    while let Some(&n) = it.peek() {
                        if n.is_ascii_digit() {
                            out.push(n);
                            it.next();
                        } else {
                            break;
                        }
                    }
                    if let Some(&p) = it.peek() {
                        if p == '.' || p == ')' {
                            out.push('\\');
                            out.push(p);
                            it.next();
                        }
                    }
                    continue;
                }
                _ => {}
            }
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("&#124;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\r' => {
                if it.peek() == Some(&'\n') {
                    it.next();
                }
                out.push_str("<br>");
            }
            '\n' => out.push_str("<br>"),
            c if c.is_control() => out.push(' '),
            c if ws_core::text::is_invisible(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Like [`escape_inline`], but keeps balanced `` `code` `` spans as code spans (their
/// content renders literally anyway; control characters become spaces). Used for text we
/// compose ourselves, such as recommendations, that quote commands and paths.
pub fn escape_with_code_spans(s: &str) -> String {
    if !s.matches('`').count().is_multiple_of(2) {
        return escape_inline(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 0 {
            out.push_str(&escape_inline(part));
        } else {
            out.push('`');
            out.extend(
                part.chars()
                    .filter(|&c| !ws_core::text::is_invisible(c))
                    .map(|c| if c.is_control() { ' ' } else { c }),
            );
            out.push('`');
        }
    }
    out
}

/// Put agent-produced text in a fenced code block that its content cannot close: the fence
/// is a run of backticks longer than any run inside (at least three). Ends with a newline.
pub fn fenced(s: &str) -> String {
    fenced_with("", s)
}

/// [`fenced`](crate::fenced) with an info string (e.g. `diff`, `text`); the info string is reduced to
/// letters, digits, `-` and `_`.
pub fn fenced_with(info: &str, s: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for b in s.bytes() {
        if b == b'`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat((longest + 1).max(3));
    let info: String = info
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let body: String = s
        .chars()
        .filter(|&c| !ws_core::text::is_invisible(c))
        .map(|c| if c == '\0' { '\u{FFFD}' } else { c })
        .collect();
    let mut out = String::with_capacity(body.len() + 2 * fence.len() + info.len() + 3);
    out.push_str(&fence);
    out.push_str(&info);
    out.push('\n');
    out.push_str(&body);
    if !body.is_empty() && !body.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&fence);
    out.push('\n');
    out
}

/// Mermaid keywords that would be misread at the start of a gantt line.
const MERMAID_KEYWORDS: &[&str] = &[
    "section",
    "title",
    "dateformat",
    "axisformat",
    "tickinterval",
    "excludes",
    "includes",
    "todaymarker",
    "weekday",
    "weekend",
    "click",
    "acctitle",
    "accdescr",
    "inclusiveenddates",
    "topaxis",
    "gantt",
    "displaymode",
];

/// A name safe for a Mermaid gantt task, section or title: letters, digits, space, `-`,
/// `_`, `.`, `/` kept, anything else (`:`, `#`, `;`, newlines, …) becomes `_`; never empty
/// and never starting with a gantt keyword.
pub fn mermaid_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | '/') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = out.trim();
    if trimmed.len() != out.len() {
        out = trimmed.to_string();
    }
    let lower = out.to_ascii_lowercase();
    if out.is_empty() || MERMAID_KEYWORDS.iter().any(|k| lower.starts_with(k)) {
        out.insert(0, '_');
    }
    out
}

/// Escape text for HTML, as element text or inside a double-quoted attribute: first
/// [`ws_core::text::clean`] (terminal escapes, control, bidirectional and zero-width
/// characters go), then `&`, `<`, `>`, `"` and `'` become entities. Newlines stay, for `<pre>`.
pub fn html(s: &str) -> String {
    let c = ws_core::text::clean(s);
    let mut out = String::with_capacity(c.len() + c.len() / 8);
    for ch in c.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn code_spans_survive_and_the_rest_is_escaped() {
        assert_eq!(
            escape_with_code_spans("raise `timeout_secs` in a_b.json <x>"),
            "raise `timeout_secs` in a\\_b.json &lt;x&gt;"
        );
        // Unbalanced backticks: everything escaped.
        assert_eq!(escape_with_code_spans("a ` b"), "a \\` b");
        assert_eq!(escape_with_code_spans("`x\ny`"), "`x y`");
    }
    use super::*;

    #[test]
    fn inline_escapes_markdown_and_html() {
        assert_eq!(escape_inline("a|b"), "a&#124;b");
        assert_eq!(escape_inline("</details>"), "&lt;/details&gt;");
        assert_eq!(escape_inline("a & b"), "a &amp; b");
        assert_eq!(
            escape_inline("[x](javascript:alert(1))"),
            "\\[x\\](javascript:alert(1))"
        );
        assert_eq!(
            escape_inline("*a* _b_ `c` ~d~"),
            "\\*a\\* \\_b\\_ \\`c\\` \\~d\\~"
        );
        assert_eq!(escape_inline("a\\|b"), "a\\\\&#124;b");
        assert_eq!(escape_inline("l1\nl2\r\nl3\rl4"), "l1<br>l2<br>l3<br>l4");
        assert_eq!(escape_inline("a\u{1b}[31mb\tc"), "ab c");
        assert_eq!(escape_inline("a\u{1b}b"), "a b");
        assert_eq!(escape_inline("plain ws-01.txt"), "plain ws-01.txt");
    }

    #[test]
    fn inline_neutralises_leading_block_markers() {
        assert_eq!(escape_inline("# heading"), "\\# heading");
        assert_eq!(escape_inline("  # heading"), "  \\# heading");
        assert_eq!(escape_inline("> quote"), "&gt; quote");
        assert_eq!(escape_inline("- item"), "\\- item");
        assert_eq!(escape_inline("+ item"), "\\+ item");
        assert_eq!(escape_inline("12. item"), "12\\. item");
        assert_eq!(escape_inline("3) item"), "3\\) item");
        assert_eq!(escape_inline("2024 was"), "2024 was");
        // Only at the start.
        assert_eq!(escape_inline("a # b - c 1. d"), "a # b - c 1. d");
    }

    #[test]
    fn fence_is_longer_than_any_backtick_run() {
        assert_eq!(fenced("x"), "```\nx\n```\n");
        assert_eq!(fenced(""), "```\n```\n");
        assert_eq!(fenced("a\n"), "```\na\n```\n");
        let hostile = "before\n```\n# not a heading\n`````\nafter";
        let f = fenced_with("text", hostile);
        assert!(f.starts_with("``````text\n"), "{f}");
        assert!(f.ends_with("\nafter\n``````\n"), "{f}");
        assert_eq!(fenced_with("di`ff x", "y"), "```diffx\ny\n```\n");
    }

    #[test]
    fn mermaid_names_are_sanitised() {
        assert_eq!(mermaid_name("ws-01"), "ws-01");
        assert_eq!(mermaid_name("a:b#c;d\ne"), "a_b_c_d_e");
        assert_eq!(mermaid_name(""), "_");
        assert_eq!(mermaid_name("section x"), "_section x");
        assert_eq!(mermaid_name("Title"), "_Title");
        assert_eq!(mermaid_name(" x "), "x");
    }
}
