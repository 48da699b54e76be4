//! Hardening of text that came from agents (titles, messages, output tails, warnings) and
//! the few display formats every renderer shares: terminal escapes stripped, carriage
//! returns resolved, long lines capped, widths counted in terminal columns, durations
//! shown and read ([`duration`], [`parse_duration`]), user text quoted for a message
//! ([`quote`]). The bottom of the core: it imports no other module of it.

use crate::Invalid;
use std::cmp::Ordering;
use std::time::Duration;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Output tails keep at most this many last lines …
pub const TAIL_LINES: usize = 40;
/// … each cut to at most this many characters, so one huge line cannot push out the real
/// error printed just before it.
pub const TAIL_LINE_CHARS: usize = 400;

/// What ends a line [`cap_lines`] cut: `… [N characters cut]`.
const CUT_SUFFIX: &str = " characters cut]";
const CUT_PREFIX: &str = " … [";

/// Characters that change how the text around them is shown without being seen: the
/// bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069, which
/// can make a file name read backwards) and the zero-width ones (U+200B–U+200D, U+2060,
/// U+FEFF, which make two different names look alike). [`clean`] drops them.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'
            | '\u{FEFF}'
    )
}

/// Text as a terminal would show it, without the terminal: ANSI/OSC/DCS escape sequences
/// removed (OSC-8 hyperlinks keep their visible text), `\r\n` read as `\n`, a bare `\r`
/// overwriting its line the way progress bars use it, other control characters except
/// newline and tab dropped, and the invisible characters of [`is_invisible`] dropped. The
/// one sanitiser of user-controlled text (file names, ids, titles, output tails, git
/// messages) on its way to a terminal, the report or a table.
pub fn clean(s: &str) -> String {
    // Most text has nothing to clean.
    if !s
        .chars()
        .any(|c| (c.is_control() && c != '\n' && c != '\t') || is_invisible(c))
    {
        return s.to_string();
    }
    let stripped = console::strip_ansi_codes(s);
    let mut out = String::with_capacity(stripped.len());
    for (i, line) in stripped.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        // What is left visible after the last carriage return that something followed.
        let visible = line
            .rsplit('\r')
            .find(|seg| !seg.is_empty())
            .unwrap_or_default();
        out.extend(
            visible
                .chars()
                .filter(|&c| (c == '\t' || !c.is_control()) && !is_invisible(c)),
        );
    }
    out
}

/// [`clean`] text on one line: every run of whitespace (newlines and tabs included)
/// becomes one space, and the ends are trimmed.
pub fn one_line(s: &str) -> String {
    let c = clean(s);
    let tidy = !c.starts_with(' ')
        && !c.ends_with(' ')
        && !c.contains("  ")
        && !c.contains(|ch: char| ch.is_whitespace() && ch != ' ');
    if tidy {
        return c;
    }
    c.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Display width in terminal columns (CJK characters count two).
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` cut to at most `max` terminal columns, ending in `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > max {
            break;
        }
        w += cw;
        out.push(c);
    }
    out.push('…');
    out
}

/// The last `max_lines` lines of `s`, each longer than `max_chars` characters cut to its
/// first `max_chars` and marked `… [N characters cut]`. Used when the tail is captured and
/// again when it is shown, so it is idempotent.
pub fn cap_lines(s: &str, max_lines: usize, max_chars: usize) -> String {
    let trimmed = s.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() || max_lines == 0 {
        return String::new();
    }
    let lines: Vec<&str> = trimmed.split('\n').collect();
    if lines.len() <= max_lines && lines.iter().all(|l| l.len() <= max_chars) {
        return trimmed.to_string();
    }
    let from = lines.len().saturating_sub(max_lines);
    let mut out = String::with_capacity(trimmed.len().min(max_lines * (max_chars + 32)));
    for (i, line) in lines[from..].iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match line.char_indices().nth(max_chars) {
            Some((cut, _)) if !is_cut(line) => {
                let rest = line[cut..].chars().count();
                out.push_str(&line[..cut]);
                out.push_str(CUT_PREFIX);
                out.push_str(&rest.to_string());
                out.push_str(CUT_SUFFIX);
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// Whether a line already carries the mark of [`cap_lines`].
fn is_cut(line: &str) -> bool {
    line.ends_with(CUT_SUFFIX) && line.contains(CUT_PREFIX)
}

/// The last lines of a command's output, made safe to show: cleaned, at most
/// [`TAIL_LINES`] lines of at most [`TAIL_LINE_CHARS`] characters each.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutputTail {
    pub text: String,
    /// Lines in `text`.
    pub lines: usize,
    /// Lines that were cut to [`TAIL_LINE_CHARS`] characters (marked in `text`).
    pub cut_lines: usize,
    /// The whole output.
    pub log_path: Option<String>,
}

impl OutputTail {
    /// None when nothing visible is left.
    pub fn new(raw: &str, log_path: Option<&str>) -> Option<OutputTail> {
        let text = cap_lines(&clean(raw), TAIL_LINES, TAIL_LINE_CHARS);
        if text.trim().is_empty() {
            return None;
        }
        let lines = text.split('\n').count();
        let cut_lines = text.split('\n').filter(|l| is_cut(l)).count();
        Some(OutputTail {
            text,
            lines,
            cut_lines,
            log_path: log_path.map(str::to_string),
        })
    }

    /// "last 12 lines of output (2 long lines cut); the whole log: PATH" — plain text.
    pub fn caption(&self) -> String {
        let mut s = format!(
            "last {} line{} of output",
            self.lines,
            if self.lines == 1 { "" } else { "s" }
        );
        if self.cut_lines > 0 {
            s.push_str(&format!(
                " ({} long line{} cut)",
                self.cut_lines,
                if self.cut_lines == 1 { "" } else { "s" }
            ));
        }
        if let Some(p) = &self.log_path {
            s.push_str("; the whole log: ");
            s.push_str(p);
        }
        s
    }
}

/// A duration the way the flags take it: `0ms`, `250ms`, `12.3s`, `1m30s`, `30m`, `1h5s`. The one
/// duration format of every output.
pub fn duration(secs: f64) -> String {
    let secs = if secs.is_finite() { secs.max(0.0) } else { 0.0 };
    if secs < 1.0 {
        return format!("{}ms", (secs * 1000.0).round() as u64);
    }
    if secs < 59.95 {
        return format!("{secs:.1}s");
    }
    let t = secs.round() as u64;
    let (h, m, s) = (t / 3600, t / 60 % 60, t % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// Whether a result's warning is only a note: git-ws committing what an agent left
/// uncommitted ("uncommitted changes (3 files) were committed on ws/… by git-ws") is the
/// normal end of every agent workstream, recorded with the result but neither counted
/// among the warnings nor listed under them.
pub fn is_note(warning: &str) -> bool {
    warning.starts_with("uncommitted changes (") && warning.ends_with(" by git-ws")
}

/// Every one of `n` things: `the 1 workstream`, `all 3 workstreams` ("all 1 workstream"
/// reads wrong).
pub fn all_of(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("the 1 {one}")
    } else {
        format!("all {n} {many}")
    }
}

/// `n` with the singular or plural noun: `1 workstream`, `3 workstreams`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Natural order for ids: digit runs compare as numbers (`ws-2` < `ws-10`), ties broken by
/// byte order so the order is total (`ws-01` < `ws-1`).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < x.len() && j < y.len() {
        if x[i].is_ascii_digit() && y[j].is_ascii_digit() {
            let (si, sj) = (i, j);
            while i < x.len() && x[i].is_ascii_digit() {
                i += 1;
            }
            while j < y.len() && y[j].is_ascii_digit() {
                j += 1;
            }
            let na = trim_zeros(&x[si..i]);
            let nb = trim_zeros(&y[sj..j]);
            let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            if x[i] != y[j] {
                return x[i].cmp(&y[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (x.len() - i).cmp(&(y.len() - j)).then_with(|| a.cmp(b))
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|&&c| c == b'0').count();
    &d[n..]
}

/// Longest accepted time limit (a workstream's `timeout_secs`, [`parse_duration`]): 365 days. Larger values
/// are certainly mistakes, and they would overflow deadline arithmetic.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// A user-supplied string for a message: JSON-quoted (control characters escaped) and cut to
/// 60 characters so a huge value cannot make a huge message.
pub fn quote(s: &str) -> String {
    const MAX: usize = 60;
    match s.char_indices().nth(MAX) {
        None => serde_json::to_string(s).unwrap_or_default(),
        Some((cut, _)) => {
            let q = serde_json::to_string(&s[..cut]).unwrap_or_default();
            format!("{}…\"", &q[..q.len() - 1])
        }
    }
}

/// Seconds (from JSON or a duration string) to a Duration: positive, at least 1 ms, at most
/// [`MAX_TIMEOUT`]. The error completes a sentence about the value ("… must be positive").
pub(crate) fn secs_to_duration(secs: f64) -> Result<Duration, String> {
    if secs.is_nan() || secs <= 0.0 {
        return Err("must be positive".to_string());
    }
    if secs > MAX_TIMEOUT.as_secs_f64() {
        return Err(format!(
            "is too long (at most {} seconds = 365 days)",
            MAX_TIMEOUT.as_secs()
        ));
    }
    let d = Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())?;
    if d < Duration::from_millis(1) {
        return Err("is too short (at least 1 ms)".to_string());
    }
    Ok(d)
}

/// Parse a duration: a sequence of `<number><unit>` parts (`90s`, `30m`, `2h`, `1h30m`,
/// `1h 30m`, `500ms`, `1d`), units `ms`, `s`, `m`, `h`, `d`; numbers may have a decimal part
/// (`1.5s`, `0.5h`); a bare number is seconds (`90`, `2.5`). The total must be positive, at
/// least 1 ms and at most [`MAX_TIMEOUT`] (365 days).
pub fn parse_duration(s: &str) -> Result<Duration, Invalid> {
    let bad = |reason: &str| Invalid::new(format!("invalid duration {}: {reason}", quote(s)));
    let text = s.trim();
    if text.is_empty() {
        return Err(Invalid::new(
            "invalid duration \"\": empty (expected e.g. 90s, 30m, 2h, 1h30m or 500ms)",
        ));
    }
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut total = 0.0f64;
    let mut parts = 0;
    while pos < bytes.len() {
        while pos < bytes.len() && bytes[pos] == b' ' {
            pos += 1;
        }
        let num_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos < bytes.len() && bytes[pos] == b'.' {
            pos += 1;
            let frac_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            if pos == frac_start {
                return Err(bad("expected digits after '.'"));
            }
        }
        if pos == num_start || bytes[num_start] == b'.' {
            return Err(bad(
                "expected a number (e.g. 90s, 30m, 2h, 1h30m, 500ms or a bare number of seconds)",
            ));
        }
        let number: f64 = text[num_start..pos]
            .parse()
            .map_err(|_| bad("number out of range"))?;
        while pos < bytes.len() && bytes[pos] == b' ' {
            pos += 1;
        }
        let unit_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
            pos += 1;
        }
        let unit = &text[unit_start..pos];
        let scale = match unit {
            "" if parts == 0 && pos == bytes.len() => 1.0,
            "" => return Err(bad("every number needs a unit (ms, s, m, h or d)")),
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            other => {
                return Err(bad(&format!(
                    "unknown unit {} (use ms, s, m, h or d)",
                    quote(other)
                )))
            }
        };
        total += number * scale;
        parts += 1;
        if pos < bytes.len() && !bytes[pos].is_ascii_digit() && bytes[pos] != b' ' {
            return Err(bad(&format!(
                "unexpected {} (expected e.g. 90s, 30m, 2h, 1h30m or 500ms)",
                quote(&text[pos..].chars().take(1).collect::<String>())
            )));
        }
    }
    secs_to_duration(total).map_err(|e| bad(&e))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_and_all_of() {
        assert_eq!(plural(1, "warning", "warnings"), "1 warning");
        assert_eq!(plural(0, "warning", "warnings"), "0 warnings");
        assert_eq!(all_of(1, "workstream", "workstreams"), "the 1 workstream");
        assert_eq!(all_of(3, "workstream", "workstreams"), "all 3 workstreams");
    }

    #[test]
    fn only_git_ws_committing_leftovers_is_a_note() {
        assert!(is_note(
            "uncommitted changes (1 file) were committed on ws/r/a by git-ws"
        ));
        assert!(!is_note("a.json: unknown field \"x\" (ignored)"));
        assert!(!is_note(
            "your worktree has uncommitted changes (2 files: a, b)"
        ));
    }

    #[test]
    fn clean_drops_escapes_bidi_overrides_and_zero_width_characters() {
        let hostile =
            "evil\u{1b}]0;owned\u{7}\u{1b}[2Jname\u{202E}nosj.\u{200B}x\u{2066}\u{FEFF}.json";
        assert_eq!(clean(hostile), "evilnamenosj.x.json");
        assert_eq!(one_line(hostile), "evilnamenosj.x.json");
        for c in [
            '\u{202A}', '\u{202D}', '\u{2069}', '\u{200C}', '\u{200D}', '\u{2060}',
        ] {
            assert_eq!(clean(&format!("a{c}b")), "ab", "{:?}", c);
        }
        // Ordinary non-ASCII text is kept.
        assert_eq!(clean("café — 日本"), "café — 日本");
    }

    #[test]
    fn escapes_are_stripped_and_carriage_returns_resolved() {
        assert_eq!(clean("\u{1b}[31mred title \u{1b}[0m"), "red title ");
        // OSC-8 hyperlink, both terminators: the visible text stays.
        assert_eq!(
            clean("see \u{1b}]8;;https://x.test/\u{1b}\\the docs\u{1b}]8;;\u{1b}\\ now"),
            "see the docs now"
        );
        assert_eq!(clean("\u{1b}]0;window title\u{7}after"), "after");
        assert_eq!(clean("a\r\nb\r\n"), "a\nb\n");
        assert_eq!(clean("10%\r50%\r100%\ndone\r"), "100%\ndone");
        assert_eq!(clean("bell\u{7} nul\0 tab\tkept"), "bell nul tab\tkept");
        assert_eq!(clean("lone \u{1b} escape"), "lone  escape");
        assert_eq!(one_line("  a\n\tb  \r\n c "), "a b c");
    }

    #[test]
    fn widths_count_columns_and_truncation_respects_them() {
        assert_eq!(width("日本語"), 6);
        assert_eq!(truncate("日本語テキスト", 7), "日本語…");
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("abcdefghij", 5), "abcd…");
        assert_eq!(width(&truncate(&"x".repeat(3000), 80)), 80);
    }

    #[test]
    fn huge_last_line_cannot_hide_the_error_before_it() {
        let raw = format!(
            "compiling\nerror: the real reason\n{}\n",
            "z".repeat(14_000)
        );
        let t = cap_lines(&raw, 40, 400);
        assert!(t.contains("error: the real reason"), "{t}");
        assert!(
            t.ends_with(" … [13600 characters cut]"),
            "{}",
            &t[t.len() - 40..]
        );
        assert!(t.len() < 500);
        // Idempotent: capping again changes nothing.
        assert_eq!(cap_lines(&t, 40, 400), t);
        let many: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let t = cap_lines(&many, 3, 400);
        assert_eq!(t, "line 97\nline 98\nline 99");
        let tail = OutputTail::new(&raw, Some("/l/x.log")).unwrap();
        assert_eq!((tail.lines, tail.cut_lines), (3, 1));
        assert_eq!(
            tail.caption(),
            "last 3 lines of output (1 long line cut); the whole log: /l/x.log"
        );
        assert_eq!(OutputTail::new("\u{1b}[0m\n\n", None), None);
    }

    #[test]
    fn one_duration_format() {
        assert_eq!(duration(0.0), "0ms");
        assert_eq!(duration(0.25), "250ms");
        assert_eq!(duration(12.34), "12.3s");
        assert_eq!(duration(59.94), "59.9s");
        assert_eq!(duration(59.96), "1m");
        assert_eq!(duration(90.0), "1m30s");
        assert_eq!(duration(1800.0), "30m");
        assert_eq!(duration(3605.0), "1h5s");
        assert_eq!(duration(3723.4), "1h2m3s");
        assert_eq!(duration(f64::NAN), "0ms");
        assert_eq!(plural(1, "pair", "pairs"), "1 pair");
    }

    #[test]
    fn duration_grammar() {
        let secs = |s: &str| {
            parse_duration(s)
                .map(|d| d.as_secs_f64())
                .map_err(String::from)
        };
        assert_eq!(secs("90s"), Ok(90.0));
        assert_eq!(secs("30m"), Ok(1800.0));
        assert_eq!(secs("2h"), Ok(7200.0));
        assert_eq!(secs("1h30m"), Ok(5400.0));
        assert_eq!(secs("1h 30m"), Ok(5400.0));
        assert_eq!(secs(" 90 s "), Ok(90.0));
        assert_eq!(secs("500ms"), Ok(0.5));
        assert_eq!(secs("1.5s"), Ok(1.5));
        assert_eq!(secs("0.5h"), Ok(1800.0));
        assert_eq!(secs("1d"), Ok(86400.0));
        assert_eq!(secs("90"), Ok(90.0));
        assert_eq!(secs("2.5"), Ok(2.5));
        assert_eq!(secs("1m30s500ms"), Ok(90.5));
        for (input, reason) in [
            ("", "invalid duration \"\": empty (expected e.g. 90s, 30m, 2h, 1h30m or 500ms)"),
            ("0", "invalid duration \"0\": must be positive"),
            ("0s", "invalid duration \"0s\": must be positive"),
            ("0ms", "invalid duration \"0ms\": must be positive"),
            ("5x", "invalid duration \"5x\": unknown unit \"x\" (use ms, s, m, h or d)"),
            ("1h30", "invalid duration \"1h30\": every number needs a unit (ms, s, m, h or d)"),
            ("-5s", "invalid duration \"-5s\": expected a number (e.g. 90s, 30m, 2h, 1h30m, 500ms or a bare number of seconds)"),
            ("s", "invalid duration \"s\": expected a number (e.g. 90s, 30m, 2h, 1h30m, 500ms or a bare number of seconds)"),
            ("1.s", "invalid duration \"1.s\": expected digits after '.'"),
            (".5s", "invalid duration \".5s\": expected a number (e.g. 90s, 30m, 2h, 1h30m, 500ms or a bare number of seconds)"),
            ("5s!", "invalid duration \"5s!\": unexpected \"!\" (expected e.g. 90s, 30m, 2h, 1h30m or 500ms)"),
            ("400d", "invalid duration \"400d\": is too long (at most 31536000 seconds = 365 days)"),
            ("0.1ms", "invalid duration \"0.1ms\": is too short (at least 1 ms)"),
        ] {
            assert_eq!(
                parse_duration(input),
                Err(Invalid::new(reason)),
                "for {input:?}"
            );
        }
        let huge = format!("{}s", "9".repeat(400));
        assert!(parse_duration(&huge)
            .unwrap_err()
            .as_str()
            .contains("too long"));
        assert!(parse_duration("nan").is_err());
        assert!(parse_duration("inf").is_err());
    }
}
