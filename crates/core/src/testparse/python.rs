//! Python's test runners: pytest's closing line, and the standard library's `unittest`
//! (`python -m unittest`, `unittest.main()`).

use super::counts::{apply, count_items, Counts, Field, Found, Harness};

/// The pytest words and what they count. pytest leaves out categories with no tests, so a
/// summary starts every category at 0. pytest 9's built-in subtests add `N subtests passed`
/// (with `-q`): not tests of their own (a failing or skipped subtest is already counted in
/// `failed` or `skipped`), so they count for nothing.
const WORDS: &[(&str, Option<Field>)] = &[
    ("passed", Some(Field::Passed)),
    ("failed", Some(Field::Failed)),
    ("skipped", Some(Field::Skipped)),
    ("deselected", Some(Field::Deselected)),
    ("xfailed", Some(Field::Xfailed)),
    ("xpassed", Some(Field::Xpassed)),
    ("error", Some(Field::Errors)),
    ("errors", Some(Field::Errors)),
    ("warning", Some(Field::Warnings)),
    ("warnings", Some(Field::Warnings)),
    ("rerun", None),
    ("reruns", None),
    ("subtest passed", None),
    ("subtests passed", None),
    ("subtest failed", None),
    ("subtests failed", None),
    ("subtest skipped", None),
    ("subtests skipped", None),
];

const ALL: &[Field] = &[
    Field::Passed,
    Field::Failed,
    Field::Skipped,
    Field::Errors,
    Field::Deselected,
    Field::Xfailed,
    Field::Xpassed,
    Field::Warnings,
];

/// pytest's closing line, with the `=====` banner (default, `-v`, xdist) or without it
/// (`-q`): `1 failed, 6 passed, 1 deselected, 1 xfailed, 1 warning, 1 error in 0.13s`, or
/// `no tests ran in 0.01s`. Every item must be a pytest count and the line must end in
/// ` in <duration>`, so a parametrised test id or a log line does not pass for it. The run
/// spans from the last `=== test session starts ===` banner before it.
pub(super) fn pytest(lines: &[&str]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut start = None;
    for (i, l) in lines.iter().enumerate() {
        let Some(inner) = unbanner(l) else { continue };
        if inner == "test session starts" {
            start = Some(i);
        } else if let Some(counts) = summary(inner) {
            found.push(Found::new(
                Harness::Pytest,
                start.take().unwrap_or(i),
                i,
                counts,
            ));
        }
    }
    found
}

/// unittest's separator lines: 70 `=` before each failure's header, 70 `-` before `Ran`.
const EQUALS: &str = "======================================================================";
const DASHES: &str = "----------------------------------------------------------------------";

/// `python -m unittest` (any verbosity): `Ran 9 tests in 0.001s` at column 0 right after
/// its 70-dash separator, then (after one blank line) `OK`, `OK (skipped=1, expected
/// failures=2)`, `FAILED (failures=2, errors=1, skipped=1, expected failures=1, unexpected
/// successes=1)` or (Python 3.12+) `NO TESTS RAN`. unittest counts subtest failures one by
/// one (`failures=3` for one test with three failing subtests) and counts an exception in a
/// test as an error; here a test is the unit, as for every runner: `failed` is the number of
/// distinct tests with a `FAIL:` or `ERROR:` report above the summary, `errors` the reports
/// that are no test of the run (a module that failed to import, a failing `setUpClass` or
/// `setUpModule`), and passed = run − failed − import failures − skipped − expected
/// failures − unexpected successes. Without those reports (output cut), the summary's own
/// failures and errors count.
pub(super) fn unittest(lines: &[&str]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut run_start = 0;
    for i in 1..lines.len() {
        if lines[i - 1] != DASHES {
            continue;
        }
        let Some(ran) = ran_line(lines[i]) else {
            continue;
        };
        let Some((j, verdict)) = lines
            .iter()
            .enumerate()
            .skip(i + 1)
            .take(2)
            .find(|(_, l)| !l.trim().is_empty())
        else {
            continue;
        };
        let Some(items) = verdict_items(verdict) else {
            continue;
        };
        let reports = failure_reports(&lines[run_start..i]);
        let first = lines[run_start..i]
            .iter()
            .position(|l| *l == EQUALS)
            .map_or(i, |k| run_start + k);
        if let Some(c) = unittest_counts(ran, &items, &reports) {
            found.push(Found::new(Harness::Unittest, first, j, c));
        }
        run_start = j + 1;
    }
    found
}

/// `Ran 9 tests in 0.001s` / `Ran 1 test in 0.000s` → 9.
fn ran_line(l: &str) -> Option<u64> {
    let rest = l.strip_prefix("Ran ")?;
    let (n, rest) = rest.split_once(' ')?;
    let rest = rest
        .strip_prefix("tests in ")
        .or_else(|| rest.strip_prefix("test in "))?;
    rest.strip_suffix('s')?.parse::<f64>().ok()?;
    n.parse().ok()
}

/// The `key=n` items of `OK`, `OK (…)`, `FAILED (…)`, `NO TESTS RAN`; `None` for any other
/// line or an unknown key.
fn verdict_items(l: &str) -> Option<Vec<(&str, u64)>> {
    let l = l.trim_end();
    let inner = match l {
        "OK" | "NO TESTS RAN" => return Some(Vec::new()),
        _ => ["OK (", "FAILED (", "NO TESTS RAN ("]
            .iter()
            .find_map(|p| l.strip_prefix(p))?
            .strip_suffix(')')?,
    };
    inner
        .split(", ")
        .map(|item| {
            let (k, v) = item.split_once('=')?;
            let known = [
                "failures",
                "errors",
                "skipped",
                "expected failures",
                "unexpected successes",
            ];
            known.contains(&k).then_some(())?;
            Some((k, v.parse().ok()?))
        })
        .collect()
}

/// The failure reports above a summary: distinct failing tests, and errors that are no
/// test's (import failures are counted in `Ran N`; class and module fixtures are not).
#[derive(Debug, Default, PartialEq, Eq)]
struct Reports {
    failed_tests: u64,
    import_failures: u64,
    fixture_errors: u64,
}

fn failure_reports(lines: &[&str]) -> Reports {
    let mut tests = std::collections::BTreeSet::new();
    let mut imports = std::collections::BTreeSet::new();
    let mut fixtures = std::collections::BTreeSet::new();
    for w in lines.windows(2) {
        if w[0] != EQUALS {
            continue;
        }
        let Some((kind, name)) = w[1]
            .strip_prefix("FAIL: ")
            .map(|n| ("FAIL", n))
            .or_else(|| w[1].strip_prefix("ERROR: ").map(|n| ("ERROR", n)))
        else {
            continue;
        };
        // `test_x (mod.Class.test_x) (i=0)`: a subtest of test_x; the test is the key.
        let key = match name.find(')') {
            Some(k) => &name[..=k],
            None => name,
        };
        let fixture = [
            "setUpClass",
            "tearDownClass",
            "setUpModule",
            "tearDownModule",
        ]
        .iter()
        .any(|f| key.starts_with(&format!("{f} (")));
        if kind == "ERROR" && key.contains("loader._FailedTest") {
            imports.insert(key);
        } else if kind == "ERROR" && fixture {
            fixtures.insert(key);
        } else {
            tests.insert(key);
        }
    }
    Reports {
        failed_tests: tests.len() as u64,
        import_failures: imports.len() as u64,
        fixture_errors: fixtures.len() as u64,
    }
}

fn unittest_counts(ran: u64, items: &[(&str, u64)], reports: &Reports) -> Option<Counts> {
    let get = |k: &str| {
        items
            .iter()
            .find(|(key, _)| *key == k)
            .map_or(0, |(_, n)| *n)
    };
    let (failures, errors) = (get("failures"), get("errors"));
    let mut c = Counts::zero(&[
        Field::Failed,
        Field::Skipped,
        Field::Errors,
        Field::Xfailed,
        Field::Xpassed,
    ]);
    c.skipped = Some(get("skipped"));
    c.xfailed = Some(get("expected failures"));
    c.xpassed = Some(get("unexpected successes"));
    let reported = reports.failed_tests + reports.import_failures + reports.fixture_errors;
    let (failed, in_ran_errors, other_errors) = if reported > 0 || failures + errors == 0 {
        (
            reports.failed_tests,
            reports.import_failures,
            reports.fixture_errors,
        )
    } else {
        (failures + errors, 0, 0)
    };
    c.failed = Some(failed);
    c.errors = Some(in_ran_errors + other_errors);
    c.passed = [
        failed,
        in_ran_errors,
        get("skipped"),
        get("expected failures"),
    ]
    .iter()
    .chain(std::iter::once(&get("unexpected successes")))
    .try_fold(ran, |left, n| left.checked_sub(*n));
    Some(c)
}

/// The text between `=== … ===` banners, or the whole line (trimmed) if it has none; `None`
/// for a line with a banner on one side only.
fn unbanner(l: &str) -> Option<&str> {
    let t = l.trim();
    match (t.starts_with('='), t.ends_with('=')) {
        (false, false) => Some(t),
        (true, true) => Some(t.trim_matches('=').trim()),
        _ => None,
    }
}

fn summary(inner: &str) -> Option<Counts> {
    let (items, duration) = inner.rsplit_once(" in ")?;
    // `0.13s`, `61.23s (0:01:01)`
    let secs = duration.split(' ').next()?.strip_suffix('s')?;
    secs.parse::<f64>().ok()?;
    let mut c = Counts::zero(ALL);
    if items == "no tests ran" {
        return Some(c);
    }
    let items = count_items(items, ",")?;
    apply(&mut c, &items, WORDS)?;
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines_with_and_without_banners() {
        let c = summary(unbanner("===== 3 passed, 1 deselected in 0.02s =====").unwrap()).unwrap();
        assert_eq!(
            (c.passed, c.deselected, c.skipped),
            (Some(3), Some(1), Some(0))
        );
        let c = summary(unbanner("4 passed in 0.3s").unwrap()).unwrap();
        assert_eq!((c.passed, c.failed), (Some(4), Some(0)));
        let c = summary("2 passed, 1 warning in 61.23s (0:01:01)").unwrap();
        assert_eq!(c.warnings, Some(1));
        assert_eq!(summary("no tests ran in 0.01s").unwrap().passed, Some(0));
        // pytest 9, -q, with subtests.
        let c = summary("2 failed, 1 passed, 1 skipped, 2 subtests passed in 0.02s").unwrap();
        assert_eq!((c.passed, c.failed, c.skipped), (Some(1), Some(2), Some(1)));
    }

    fn ut(text: &str) -> Vec<Counts> {
        let lines: Vec<&str> = text.lines().collect();
        unittest(&lines).into_iter().map(|f| f.counts).collect()
    }

    #[test]
    fn unittest_summaries() {
        let dashes = DASHES;
        let c = ut(&format!(
            "..s\n{dashes}\nRan 3 tests in 0.001s\n\nOK (skipped=1)\n"
        ));
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].passed, c[0].failed, c[0].skipped, c[0].errors),
            (Some(2), Some(0), Some(1), Some(0))
        );
        // Python 3.12+ with nothing selected.
        let c = ut(&format!(
            "\n{dashes}\nRan 0 tests in 0.000s\n\nNO TESTS RAN\n"
        ));
        assert_eq!(c[0].passed, Some(0));
        // Without its reports (cut output): the summary's own counts.
        let c = ut(&format!(
            "{dashes}\nRan 1 test in 0.1s\n\nFAILED (failures=1, errors=1)\n"
        ));
        assert_eq!((c[0].passed, c[0].failed), (None, Some(2)));
        // Not unittest's: no separator, an unknown key, another verdict.
        assert!(ut("Ran 3 tests in 0.1s\n\nOK\n").is_empty());
        assert!(ut(&format!("{dashes}\nRan 3 tests in 0.1s\n\nOK (frobs=1)\n")).is_empty());
        assert!(ut(&format!("{dashes}\nRan 3 tests in 0.1s\n\nPASSED\n")).is_empty());
        assert!(ut(&format!("{dashes}\nRan three tests in 0.1s\n\nOK\n")).is_empty());
    }

    #[test]
    fn near_misses_are_not_summaries() {
        assert_eq!(unbanner("==== 3 passed in 0.1s"), None);
        assert_eq!(summary("3 passed"), None);
        assert_eq!(summary("3 passed in a hurry"), None);
        assert_eq!(summary("3 passed, and more in 0.1s"), None);
        assert_eq!(summary("3 frobnicated in 0.1s"), None);
        assert_eq!(
            summary("tests/test_a.py::test_x[3 passed] PASSED in 0.1s"),
            None
        );
    }
}
