//! Test-output parsing: reads the closing summaries of cargo test (libtest), cargo-nextest,
//! pytest, Python's unittest, go test (`-v`, plain and `-json`), jest, vitest, mocha, node's test runner,
//! RSpec, TAP streams, `prove`, and the plain `N passed, N failed` line, and turns them into
//! one set of counts. Pure: text in, counts out.
//!
//! Rules, in the order they apply:
//! - ANSI escapes and carriage-return overwrites are removed first, so coloured output
//!   parses like plain output.
//! - Each runner's parser accepts only its own exact summary format, anchored where the
//!   runner prints it (libtest's `test result:` at column 0, jest's `Tests:` right after
//!   `Test Suites:`, RSpec's counts right after `Finished in`, …), so a test *named*
//!   "3 passed" or an indented log line is not a summary.
//! - A summary printed inside another runner's output (between libtest's `running N tests`
//!   and its `test result:`, inside pytest's session, a TAP stream, a `prove` run, …) is
//!   that runner's captured output, not a run of its own, and is ignored.
//! - Per runner, the last summary wins, except where one run prints several: libtest's
//!   result lines (one per test binary and doc-tests), go's packages and TAP streams are
//!   summed.
//! - Summaries of different runners (a script running `cargo test` then `pytest`) are
//!   summed, and [`Summary::harnesses`] names each.
//! - The plain `N passed, N failed[, N skipped]` line (one word and a colon may precede it)
//!   is the fallback: it counts only when no runner's summary was found; the last one wins.
//! - A count the output does not tell is `None`, never 0: a runner that omits zero counts
//!   (pytest, jest, mocha, …) gets 0 for what it left out, but a category the runner has no
//!   notion of (xfailed in libtest) or does not print (passed tests in non-verbose go test)
//!   stays `None`. When runners are summed, `None` adds as nothing.
//!
//! Its files import only those before them: `counts` (what every parser shares) → one file
//! per language's runners → this file, which combines what they found.

mod counts;
mod go;
mod js;
mod python;
mod ruby;
mod rust;
mod tap;

#[cfg(test)]
mod corpus;

pub use counts::{Counts, Harness};

use crate::model::TestResults;
use counts::{count_items, Found};

/// What a test command's output said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The harnesses whose summaries were counted, in order of first appearance.
    pub harnesses: Vec<Harness>,
    pub counts: Counts,
}

impl Summary {
    /// `cargo-test`, or `cargo-test+pytest` when several runners were summed.
    pub fn label(&self) -> String {
        self.harnesses
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join("+")
    }
}

/// Parse the test counts from a test command's whole output (stdout and stderr together).
/// `None` when no summary of any known runner is there.
pub fn parse(output: &str) -> Option<Summary> {
    let clean = console::strip_ansi_codes(output);
    let lines: Vec<&str> = clean.lines().map(overwritten).collect();
    let mut found = Vec::new();
    found.extend(rust::libtest(&lines));
    found.extend(rust::nextest(&lines));
    found.extend(python::pytest(&lines));
    found.extend(python::unittest(&lines));
    found.extend(go::go_test(&lines));
    found.extend(js::jest(&lines));
    found.extend(js::vitest(&lines));
    found.extend(js::mocha(&lines));
    found.extend(js::node_test(&lines));
    found.extend(ruby::rspec(&lines));
    found.extend(tap::tap(&lines));
    found.extend(tap::prove(&lines));
    let summary = combine(found);
    summary.or_else(|| {
        plain(&lines).map(|counts| Summary {
            harnesses: vec![Harness::Plain],
            counts,
        })
    })
}

/// The `test_results` of a test command from its output and exit code.
pub fn test_results(command: &str, exit_code: Option<i32>, output: &str) -> TestResults {
    let summary = parse(output);
    let c = summary.as_ref().map(|s| s.counts).unwrap_or_default();
    TestResults {
        command: command.to_string(),
        exit_code,
        passed: c.passed,
        failed: c.failed,
        skipped: c.skipped,
        errors: c.errors,
        deselected: c.deselected,
        xfailed: c.xfailed,
        xpassed: c.xpassed,
        warnings: c.warnings,
        runner: summary.map(|s| s.label()),
    }
}

/// What a terminal would show of a line with `\r` in it: the text after the last one.
fn overwritten(line: &str) -> &str {
    let line = line.strip_suffix('\r').unwrap_or(line);
    match line.rfind('\r') {
        Some(i) => &line[i + 1..],
        None => line,
    }
}

/// Drop summaries nested in another runner's output, keep the last (or the sum) per runner,
/// and add the runners up.
fn combine(found: Vec<Found>) -> Option<Summary> {
    let kept: Vec<&Found> = found
        .iter()
        .filter(|f| !found.iter().any(|g| g.encloses(f)))
        .collect();
    let mut per_harness: Vec<(usize, Harness, Counts)> = Vec::new();
    for f in kept {
        match per_harness.iter_mut().find(|(_, r, _)| *r == f.harness) {
            Some((_, _, c)) if f.harness.sums_its_summaries() => *c += f.counts,
            Some((first, _, c)) => {
                // Later summary of the same runner: it replaces the earlier one.
                *first = (*first).min(f.line);
                *c = f.counts;
            }
            None => per_harness.push((f.line, f.harness, f.counts)),
        }
    }
    if per_harness.is_empty() {
        return None;
    }
    per_harness.sort_by_key(|(first, _, _)| *first);
    let mut counts = Counts::default();
    for (_, _, c) in &per_harness {
        counts += *c;
    }
    Some(Summary {
        harnesses: per_harness.iter().map(|(_, r, _)| *r).collect(),
        counts,
    })
}

/// The plain line: `N passed, N failed` alone on a line, `, N skipped` optional, one word
/// with a colon optionally before it. The last one wins.
fn plain(lines: &[&str]) -> Option<Counts> {
    lines.iter().rev().find_map(|l| {
        let mut t = l.trim();
        if let Some((word, rest)) = t.split_once(':') {
            if !word.is_empty() && !word.contains(char::is_whitespace) {
                t = rest.trim();
            }
        }
        let items = count_items(t, ",")?;
        let mut c = Counts::default();
        match items.as_slice() {
            [(p, "passed"), (f, "failed")] => {
                c.passed = Some(*p);
                c.failed = Some(*f);
            }
            [(p, "passed"), (f, "failed"), (s, "skipped")] => {
                c.passed = Some(*p);
                c.failed = Some(*f);
                c.skipped = Some(*s);
            }
            _ => return None,
        }
        Some(c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(passed: u64, failed: u64, skipped: Option<u64>) -> Counts {
        Counts {
            passed: Some(passed),
            failed: Some(failed),
            skipped,
            ..Counts::default()
        }
    }

    #[test]
    fn plain_line_with_optional_prefix_and_skipped() {
        let s = parse("blah\n7 passed, 2 failed\n").unwrap();
        assert_eq!(s.harnesses, vec![Harness::Plain]);
        assert_eq!(s.counts, counts(7, 2, None));
        let s = parse("tests: 7 passed, 0 failed, 3 skipped\n").unwrap();
        assert_eq!(s.counts, counts(7, 0, Some(3)));
        assert_eq!(parse("we passed, 2 failed\n"), None);
        assert_eq!(parse("two words: 1 passed, 2 failed\n"), None);
        assert_eq!(parse("1 passed, 2 failed, 3 skipped, 4 more\n"), None);
    }

    #[test]
    fn nothing_recognisable_is_none() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("all good\nexit 0\n"), None);
        let tr = test_results("make check", Some(0), "all good\n");
        assert_eq!(
            (tr.passed, tr.failed, tr.skipped, tr.runner),
            (None, None, None, None)
        );
    }

    #[test]
    fn carriage_return_overwrites_and_escapes_are_removed() {
        let out = "progress 10%\rprogress 100%\r\n\u{1b}[32m7 passed, 0 failed\u{1b}[0m\r\n";
        assert_eq!(parse(out).unwrap().counts, counts(7, 0, None));
        let out = "working...\r4 passed, 1 failed\n";
        assert_eq!(parse(out).unwrap().counts, counts(4, 1, None));
    }

    #[test]
    fn runners_are_summed_and_none_adds_as_nothing() {
        let out = "running 2 tests\n\
                   test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out; finished in 0.00s\n\
                   3 passed, 1 xfailed in 0.05s\n";
        let s = parse(out).unwrap();
        assert_eq!(s.harnesses, vec![Harness::Libtest, Harness::Pytest]);
        assert_eq!(s.label(), "cargo-test+pytest");
        assert_eq!(s.counts.passed, Some(5));
        assert_eq!(s.counts.deselected, Some(1));
        assert_eq!(s.counts.xfailed, Some(1));
        assert_eq!(
            s.counts.errors,
            Some(0),
            "pytest reports errors, libtest does not"
        );
    }

    #[test]
    fn test_results_carry_every_count_and_the_runner() {
        let tr = test_results(
            "pytest -q",
            Some(1),
            "1 failed, 2 passed, 3 deselected, 1 error in 0.2s\n",
        );
        assert_eq!(tr.command, "pytest -q");
        assert_eq!(tr.exit_code, Some(1));
        assert_eq!(
            (tr.passed, tr.failed, tr.skipped),
            (Some(2), Some(1), Some(0))
        );
        assert_eq!((tr.errors, tr.deselected), (Some(1), Some(3)));
        assert_eq!(tr.runner.as_deref(), Some("pytest"));
    }
}
