//! JavaScript runners: jest, vitest, mocha (spec and dot reporters), node's test runner
//! (spec reporter). Their TAP reporters are read by the TAP parser.

use super::counts::{apply, count_items, number, Counts, Field, Found, Harness};

/// jest: `Tests:       1 failed, 1 skipped, 1 todo, 3 passed, 6 total` at column 0, right
/// after `Test Suites: …`. Todo tests count as skipped; each `● Test suite failed to run`
/// (a suite that could not load, whose tests are in no count) is an error. The run spans
/// from the first `PASS`/`FAIL <file>` line after the previous summary.
pub(super) fn jest(lines: &[&str]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut start = None;
    let mut suite_errors = 0;
    for (i, l) in lines.iter().enumerate() {
        if start.is_none() && (l.starts_with("PASS ") || l.starts_with("FAIL ")) {
            start = Some(i);
        }
        if l.trim() == "● Test suite failed to run" {
            suite_errors += 1;
        }
        let Some(rest) = l.strip_prefix("Tests:") else {
            continue;
        };
        if i == 0 || !lines[i - 1].starts_with("Test Suites:") {
            continue;
        }
        let Some(items) = count_items(rest, ",") else {
            continue;
        };
        let mut c = Counts::zero(&[Field::Passed, Field::Failed, Field::Skipped]);
        let table = [
            ("passed", Some(Field::Passed)),
            ("failed", Some(Field::Failed)),
            ("skipped", Some(Field::Skipped)),
            ("todo", Some(Field::Skipped)),
            ("total", None),
        ];
        if apply(&mut c, &items, &table).is_none() {
            continue;
        }
        c.errors = Some(suite_errors);
        found.push(Found::new(
            Harness::Jest,
            start.take().unwrap_or(i - 1),
            i,
            c,
        ));
        suite_errors = 0;
    }
    found
}

/// vitest: ` Test Files  1 failed | 1 passed (2)` followed by
/// `      Tests  1 failed | 3 passed | 1 expected fail | 1 skipped | 1 todo (7)` and
/// optionally `     Errors  1 error`. Expected failures (`test.fails`) are xfailed, todo
/// tests skipped. Errors are the unhandled errors plus the files in `Failed Suites N` (test
/// files that failed to load). The run spans from ` RUN  v<version>` to the summary.
pub(super) fn vitest(lines: &[&str]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut start = None;
    let mut failed_suites = 0;
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim();
        if t.starts_with("RUN  v") {
            start = Some(i);
            failed_suites = 0;
            continue;
        }
        if let Some(n) = failed_suites_header(t) {
            failed_suites += n;
            continue;
        }
        let Some(rest) = t.strip_prefix("Tests  ") else {
            continue;
        };
        if i == 0 || !lines[i - 1].trim_start().starts_with("Test Files  ") {
            continue;
        }
        let mut c = Counts::zero(&[Field::Passed, Field::Failed, Field::Skipped, Field::Xfailed]);
        if rest.trim() != "no tests" {
            // Drop the total: `… | 1 todo (7)`.
            let Some((items, _total)) = rest.rsplit_once(" (") else {
                continue;
            };
            let Some(items) = count_items(items, "|") else {
                continue;
            };
            let table = [
                ("passed", Some(Field::Passed)),
                ("failed", Some(Field::Failed)),
                ("skipped", Some(Field::Skipped)),
                ("todo", Some(Field::Skipped)),
                ("expected fail", Some(Field::Xfailed)),
            ];
            if apply(&mut c, &items, &table).is_none() {
                continue;
            }
        }
        let unhandled = lines
            .get(i + 1)
            .and_then(|n| n.trim().strip_prefix("Errors  "))
            .and_then(|e| count_items(e, "|"))
            .map_or(0, |items| items.iter().map(|(n, _)| n).sum());
        c.errors = Some(unhandled + failed_suites);
        let end = if unhandled > 0 { i + 1 } else { i };
        found.push(Found::new(
            Harness::Vitest,
            start.take().unwrap_or(i - 1),
            end,
            c,
        ));
        failed_suites = 0;
    }
    found
}

/// `⎯⎯⎯ Failed Suites 2 ⎯⎯⎯` → 2.
fn failed_suites_header(t: &str) -> Option<u64> {
    let inner = t.trim_matches('⎯').trim();
    (inner.len() < t.len()).then_some(())?;
    number(inner.strip_prefix("Failed Suites ")?)
}

/// mocha (spec, dot and other human reporters): `  2 passing (8ms)`, then optionally
/// `  2 pending` and `  2 failing`. Pending tests are skipped. The last such block wins.
pub(super) fn mocha(lines: &[&str]) -> Vec<Found> {
    let mut found = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(passed) = passing(l) else { continue };
        let mut c = Counts::zero(&[Field::Passed, Field::Failed, Field::Skipped]);
        c.passed = Some(passed);
        let mut end = i;
        for (j, next) in lines.iter().enumerate().skip(i + 1).take(2) {
            let t = next.trim();
            if let Some(n) = t.strip_suffix(" pending").and_then(number) {
                c.skipped = Some(n);
            } else if let Some(n) = t.strip_suffix(" failing").and_then(number) {
                c.failed = Some(n);
            } else {
                break;
            }
            end = j;
        }
        found.push(Found::new(Harness::Mocha, i, end, c));
    }
    found
}

/// `  3 passing (10ms)` → 3 (mocha indents it by two spaces).
fn passing(l: &str) -> Option<u64> {
    let t = l.strip_prefix("  ")?.trim_end();
    let (n, rest) = t.split_once(" passing (")?;
    let time = rest.strip_suffix(')')?;
    let digits = time.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    (digits.len() < time.len() && digits.parse::<f64>().is_ok()).then_some(())?;
    number(n)
}

/// node's test runner, spec reporter: the `ℹ tests 6`, `ℹ pass 3`, `ℹ fail 1`,
/// `ℹ cancelled 0`, `ℹ skipped 1`, `ℹ todo 1` block. Cancelled tests are failures, todo
/// tests skipped (node counts them in neither pass nor fail).
pub(super) fn node_test(lines: &[&str]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].starts_with("ℹ tests ") {
            i += 1;
            continue;
        }
        let start = i;
        let mut c = Counts::zero(&[Field::Passed, Field::Failed, Field::Skipped]);
        let mut seen = 0;
        while let Some(rest) = lines.get(i).and_then(|l| l.strip_prefix("ℹ ")) {
            let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
            let field = match key {
                "pass" => Some(Field::Passed),
                "fail" | "cancelled" => Some(Field::Failed),
                "skipped" | "todo" => Some(Field::Skipped),
                _ => None,
            };
            if let (Some(f), Some(n)) = (field, number(value)) {
                c.add(f, n);
                seen += 1;
            }
            i += 1;
        }
        if seen >= 2 {
            found.push(Found::new(Harness::NodeTest, start, i - 1, c));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mocha_passing_line() {
        assert_eq!(passing("  3 passing (10ms)"), Some(3));
        assert_eq!(passing("  12 passing (2s)"), Some(12));
        assert_eq!(passing("    ✔ 3 passing (10ms)"), None);
        assert_eq!(passing("  3 passing (soon)"), None);
    }

    #[test]
    fn vitest_failed_suites_header() {
        assert_eq!(
            failed_suites_header("⎯⎯⎯⎯⎯⎯ Failed Suites 1 ⎯⎯⎯⎯⎯⎯⎯"),
            Some(1)
        );
        assert_eq!(failed_suites_header("Failed Suites 1"), None);
        assert_eq!(failed_suites_header("⎯⎯⎯ Failed Tests 1 ⎯⎯⎯"), None);
    }
}
