//! What every parser shares: the harnesses it can recognise, the counts it reads, the summary
//! it found (with the lines its run spans) and the word tables that turn `3 passed` into
//! a count.

use std::ops::AddAssign;

/// The test harnesses whose closing summaries are recognised: the part of a test runner
/// that prints the counts (libtest, nextest, pytest, …), a TAP stream and its `prove`
/// harness, or the harness-neutral plain line. Its [`as_str`](Harness::as_str) is what
/// `TestResults::runner` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Harness {
    /// `cargo test` (libtest, doc-tests included).
    Libtest,
    /// `cargo nextest run`.
    Nextest,
    Pytest,
    /// Python's `unittest` (`python -m unittest`, `unittest.main()`).
    Unittest,
    /// `go test`, plain, `-v` or `-json`.
    GoTest,
    Jest,
    Vitest,
    /// mocha's spec and dot reporters (its TAP reporter is read as TAP).
    Mocha,
    /// `node --test` with the spec reporter (its TAP reporter is read as TAP).
    NodeTest,
    Rspec,
    /// A raw TAP stream (Perl's Test::More, `node --test --test-reporter=tap`, mocha's TAP).
    Tap,
    /// Perl's `prove` harness summary.
    Prove,
    /// The language-neutral `N passed, N failed` line.
    Plain,
}

impl Harness {
    pub fn as_str(self) -> &'static str {
        match self {
            Harness::Libtest => "cargo-test",
            Harness::Nextest => "nextest",
            Harness::Pytest => "pytest",
            Harness::Unittest => "unittest",
            Harness::GoTest => "go-test",
            Harness::Jest => "jest",
            Harness::Vitest => "vitest",
            Harness::Mocha => "mocha",
            Harness::NodeTest => "node-test",
            Harness::Rspec => "rspec",
            Harness::Tap => "tap",
            Harness::Prove => "prove",
            Harness::Plain => "plain",
        }
    }

    /// Whether one run of this runner prints several summaries that add up (test binaries,
    /// packages, TAP streams) rather than one closing summary.
    pub(super) fn sums_its_summaries(self) -> bool {
        matches!(self, Harness::Libtest | Harness::GoTest | Harness::Tap)
    }
}

/// Test counts. `None` = the output does not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: Option<u64>,
    pub failed: Option<u64>,
    /// Tests that were selected but not run: skipped, ignored, pending, todo.
    pub skipped: Option<u64>,
    /// Problems outside any one test: collection/import errors, suites that failed to load,
    /// packages that failed to build, test binaries that crashed, unhandled errors.
    pub errors: Option<u64>,
    /// Tests left out by a filter (`pytest -k/-m`, libtest's "filtered out").
    pub deselected: Option<u64>,
    /// Expected failures (pytest xfail, vitest `test.fails`).
    pub xfailed: Option<u64>,
    /// Tests expected to fail that passed (pytest xpass).
    pub xpassed: Option<u64>,
    pub warnings: Option<u64>,
}

impl Counts {
    /// Every count this runner reports, starting at 0 (for runners that omit zero counts).
    pub(super) fn zero(fields: &[Field]) -> Counts {
        let mut c = Counts::default();
        for f in fields {
            *c.field(*f) = Some(0);
        }
        c
    }

    pub(super) fn field(&mut self, f: Field) -> &mut Option<u64> {
        match f {
            Field::Passed => &mut self.passed,
            Field::Failed => &mut self.failed,
            Field::Skipped => &mut self.skipped,
            Field::Errors => &mut self.errors,
            Field::Deselected => &mut self.deselected,
            Field::Xfailed => &mut self.xfailed,
            Field::Xpassed => &mut self.xpassed,
            Field::Warnings => &mut self.warnings,
        }
    }

    /// Add `n` to a field (a `None` field becomes `Some(n)`).
    pub(super) fn add(&mut self, f: Field, n: u64) {
        let slot = self.field(f);
        *slot = Some(slot.unwrap_or(0) + n);
    }
}

impl AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        fn sum(a: &mut Option<u64>, b: Option<u64>) {
            if let Some(b) = b {
                *a = Some(a.unwrap_or(0) + b);
            }
        }
        sum(&mut self.passed, o.passed);
        sum(&mut self.failed, o.failed);
        sum(&mut self.skipped, o.skipped);
        sum(&mut self.errors, o.errors);
        sum(&mut self.deselected, o.deselected);
        sum(&mut self.xfailed, o.xfailed);
        sum(&mut self.xpassed, o.xpassed);
        sum(&mut self.warnings, o.warnings);
    }
}

/// A count's meaning, for the parsers' word tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Passed,
    Failed,
    Skipped,
    Errors,
    Deselected,
    Xfailed,
    Xpassed,
    Warnings,
}

/// One summary found in the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Found {
    pub(super) harness: Harness,
    /// Line of the summary itself (where it ends).
    pub(super) line: usize,
    /// Lines `start..=end` that belong to this run: anything of another runner strictly
    /// inside is this run's captured output.
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) counts: Counts,
}

impl Found {
    pub(super) fn new(harness: Harness, start: usize, line: usize, counts: Counts) -> Found {
        Found {
            harness,
            line,
            start: start.min(line),
            end: line,
            counts,
        }
    }

    pub(super) fn encloses(&self, other: &Found) -> bool {
        self.harness != other.harness && self.start < other.line && other.line < self.end
    }
}

/// `<n> <words>` items split by `sep`, every item a count: `3 passed; 1 failed` with `;`.
/// `None` when any item is not `<number> <words>`.
pub(super) fn count_items<'a>(s: &'a str, sep: &str) -> Option<Vec<(u64, &'a str)>> {
    s.split(sep)
        .map(|item| {
            let (n, word) = item.trim().split_once(' ')?;
            Some((n.parse().ok()?, word.trim()))
        })
        .collect()
}

/// Apply `(n, word)` items to counts through a word table; `None` on an unknown word.
pub(super) fn apply(
    counts: &mut Counts,
    items: &[(u64, &str)],
    table: &[(&str, Option<Field>)],
) -> Option<()> {
    for (n, word) in items {
        let (_, field) = table.iter().find(|(w, _)| w == word)?;
        if let Some(f) = field {
            counts.add(*f, *n);
        }
    }
    Some(())
}

/// A whole line that is a number: `  12 ` → 12.
pub(super) fn number(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}
