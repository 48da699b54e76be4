//! Colour on the terminal: the `--color auto|always|never` flag, `NO_COLOR`, and the
//! painters that colour what the binaries print (statuses, failures, warnings, the verdict)
//! after the text is built and cleaned, so JSON, Markdown files and logs never carry colour.

use clap::ValueEnum;
use console::Style;

/// `--color`: when to colour the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorChoice {
    /// Colour when the stream is a terminal and NO_COLOR is unset or empty
    #[default]
    Auto,
    /// Always colour, even through a pipe and with NO_COLOR set
    Always,
    /// Never colour
    Never,
}

/// Whether a stream gets colour: `always` and `never` decide alone; `auto` colours a
/// terminal unless `NO_COLOR` holds a non-empty value (<https://no-color.org>).
pub fn decide(choice: ColorChoice, no_color: Option<&str>, is_tty: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => is_tty && no_color.is_none_or(str::is_empty),
    }
}

/// Sets colour for stdout and stderr from `choice`, `NO_COLOR` and whether each is a
/// terminal. Call once, first thing after parsing the flags.
pub fn apply(choice: ColorChoice) {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").map(|v| v.to_string_lossy().into_owned());
    let no_color = no_color.as_deref();
    console::set_colors_enabled(decide(choice, no_color, std::io::stdout().is_terminal()));
    console::set_colors_enabled_stderr(decide(choice, no_color, std::io::stderr().is_terminal()));
}

/// Which stream a painted text goes to (each has its own on/off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

fn enabled(stream: Stream) -> bool {
    match stream {
        Stream::Stdout => console::colors_enabled(),
        Stream::Stderr => console::colors_enabled_stderr(),
    }
}

fn good() -> Style {
    Style::new().green()
}
fn bad() -> Style {
    Style::new().red().bold()
}
fn warn() -> Style {
    Style::new().yellow()
}

/// `s` in `style`, forced: the caller has already decided colour is on.
fn paint(style: Style, s: &str) -> String {
    style.force_styling(true).apply_to(s).to_string()
}

/// Lines that are a failure or something the user must act on, whole.
fn alarm_line(line: &str) -> bool {
    let t = line.trim_start();
    let t = t
        .strip_prefix("ws: ")
        .or_else(|| t.strip_prefix("git ws-run: "))
        .or_else(|| t.strip_prefix("git ws-merge: "))
        .or_else(|| t.strip_prefix("git ws-report: "))
        .unwrap_or(t);
    [
        "FAIL",
        "error:",
        "NOT RECORDED",
        "NOT COMMITTED",
        "tampering:",
    ]
    .iter()
    .any(|p| t.starts_with(p))
        || t.starts_with("- Review ")
}

/// Lines that are a warning or a pause, whole.
fn warning_line(line: &str) -> bool {
    let t = line.trim_start();
    let t = t.strip_prefix("ws: ").unwrap_or(t);
    t.starts_with("warning:") || t.starts_with("PAUSED") || t.starts_with("interrupted")
}

/// The status words coloured where they stand (a zero count is left plain: "0 failed").
type Painted = (&'static str, fn() -> Style);
const WORDS: &[Painted] = &[
    ("completed", good),
    ("failed", bad),
    ("skipped", warn),
    ("deferred", warn),
    ("interrupted", warn),
];

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// `line` with each whole status word coloured.
fn paint_words(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 16);
    let mut rest = line;
    'scan: while !rest.is_empty() {
        let before = &line[..line.len() - rest.len()];
        let at_boundary = !before.chars().next_back().is_some_and(is_word_char);
        if at_boundary {
            for (word, style) in WORDS {
                if let Some(after) = rest.strip_prefix(word) {
                    if !after.chars().next().is_some_and(is_word_char) {
                        let zero = before.ends_with(" 0 ") || before == "0 ";
                        if zero {
                            out.push_str(word);
                        } else {
                            out.push_str(&paint(style(), word));
                        }
                        rest = after;
                        continue 'scan;
                    }
                }
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Colour one line of a summary, a table or a progress line: alarms red and bold,
/// warnings yellow, otherwise the status words.
fn paint_line(line: &str) -> String {
    if line.trim().is_empty() {
        line.to_string()
    } else if alarm_line(line) {
        paint(bad(), line)
    } else if warning_line(line) {
        paint(warn(), line)
    } else {
        paint_words(line)
    }
}

/// `text` (a closing summary, a report table, progress lines) coloured for `stream`, or
/// unchanged when colour is off for it.
pub fn paint_text(text: &str, stream: Stream) -> String {
    if !enabled(stream) {
        return text.to_string();
    }
    paint_lines(text, paint_line)
}

/// An error line for stderr, red and bold when stderr has colour.
pub fn paint_err(line: &str) -> String {
    if enabled(Stream::Stderr) {
        paint(bad(), line)
    } else {
        line.to_string()
    }
}

fn paint_lines(text: &str, mut f: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&f(line));
    }
    out
}

/// `git ws-merge`'s human output coloured for stdout: the merged list green, the
/// left-out list yellow (their output tails plain), the rest as [`paint_text`].
pub fn paint_merge(text: &str) -> String {
    if !enabled(Stream::Stdout) {
        return text.to_string();
    }
    #[derive(PartialEq)]
    enum In {
        Other,
        Merged,
        LeftOut,
    }
    let mut section = In::Other;
    paint_lines(text, |line| {
        match line {
            "merged:" | "would merge:" => {
                section = In::Merged;
                return paint(good(), line);
            }
            "left out:" | "would leave out:" => {
                section = In::LeftOut;
                return paint(warn(), line);
            }
            _ => {}
        }
        if !line.starts_with("  ") {
            section = In::Other;
        }
        match section {
            In::Merged => paint(good(), line),
            In::LeftOut if !line.trim_start().starts_with('|') => paint(warn(), line),
            In::LeftOut => line.to_string(),
            In::Other => paint_line(line),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_choice_of_every_combination() {
        use ColorChoice::*;
        // (choice, NO_COLOR, tty) -> colour
        let cases = [
            (Auto, None, true, true),
            (Auto, None, false, false),
            (Auto, Some(""), true, true),
            (Auto, Some("1"), true, false),
            (Auto, Some("1"), false, false),
            (Always, None, false, true),
            (Always, Some("1"), false, true),
            (Always, Some("1"), true, true),
            (Never, None, true, false),
            (Never, Some(""), true, false),
            (Never, Some("1"), false, false),
        ];
        for (choice, no_color, tty, want) in cases {
            assert_eq!(
                decide(choice, no_color, tty),
                want,
                "{choice:?} NO_COLOR={no_color:?} tty={tty}"
            );
        }
    }

    #[test]
    fn status_words_are_coloured_whole_and_zero_counts_stay_plain() {
        let s = paint_words("r1: 2 completed, 0 failed, 1 skipped of 3");
        assert!(s.contains(&paint(good(), "completed")), "{s:?}");
        assert!(s.contains(" 0 failed,"), "{s:?}");
        assert!(s.contains(&paint(warn(), "skipped")), "{s:?}");
        assert_eq!(
            console::strip_ansi_codes(&s),
            "r1: 2 completed, 0 failed, 1 skipped of 3"
        );
        // Not inside other words.
        assert_eq!(paint_words("uncompleted failedx"), "uncompleted failedx");
        let t = paint_words("  bad        failed     3s");
        assert!(t.contains(&paint(bad(), "failed")), "{t:?}");
    }

    #[test]
    fn alarms_and_warnings_are_whole_lines() {
        for l in [
            "NOT RECORDED: 1 result never reached the database",
            "NOT COMMITTED: a (x): the disk refused its commit",
            "tampering: ws.agents changed: 1 -> 2 (x)",
            "- Review 1 failed workstream: bad (CommandFailed 1).",
            "git ws-run: error: something",
        ] {
            assert_eq!(paint_line(l), paint(bad(), l), "{l}");
        }
        for l in ["ws: warning: slow", "PAUSED: 1 deferred, not failed"] {
            assert_eq!(paint_line(l), paint(warn(), l), "{l}");
        }
        assert_eq!(paint_line(""), "");
    }

    #[test]
    fn a_bad_value_names_the_flag() {
        use clap::Parser;
        #[derive(Parser)]
        struct A {
            #[arg(long, value_enum, default_value = "auto")]
            color: ColorChoice,
        }
        let e = A::try_parse_from(["x", "--color", "sometimes"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("--color"), "{e}");
        assert!(e.contains("always"), "{e}");
    }
}
