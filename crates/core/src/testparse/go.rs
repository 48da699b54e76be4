//! go test summaries: `-v`, plain and `-json`.

use super::counts::{Counts, Field, Found, Harness};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};

/// One `go test -json` event (test2json).
#[derive(Deserialize)]
struct Event {
    #[serde(rename = "Action")]
    action: String,
    #[serde(rename = "Package", default)]
    package: Option<String>,
    #[serde(rename = "Test", default)]
    test: Option<String>,
}

/// go test prints no totals, so tests are counted one by one, subtests included (as
/// `go test -json` and gotestsum count them), and each package is one summary (summed):
/// - `-json`: the `pass`/`fail`/`skip` events of tests that had a `run` event; a package that fails with no
///   failing test (a `TestMain` that exits, a panic outside tests) is an error.
/// - `-v`: `--- PASS/FAIL/SKIP: Name` lines, counted only for a test that had a
///   `=== RUN   Name` line, so a test printing such a line is not counted.
/// - plain (no `-v`): only failures are printed, so `failed` is known and `passed` and
///   `skipped` are not (`None`).
///
/// Package lines close a package: `ok  <pkg> 0.01s`, `FAIL <pkg> 0.01s`, and
/// `FAIL <pkg> [build failed]` (an error, printed as text even with `-json` by older Go);
/// a `FAIL <pkg>` with no failing test before it is an error too.
pub(super) fn go_test(lines: &[&str]) -> Vec<Found> {
    let mut found = Vec::new();
    let verbose = lines.iter().any(|l| l.starts_with("=== RUN   "));
    let mut ran: HashSet<&str> = HashSet::new();
    // The package being read: its first line and counts.
    let mut start: Option<usize> = None;
    let mut pkg = Counts::default();
    // -json: per package, its counts and first line.
    let mut json: HashMap<String, JsonPackage> = HashMap::new();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with('{') {
            if let Some(f) = json_event(l, i, &mut json) {
                found.push(f);
            }
            continue;
        }
        if let Some(name) = l.strip_prefix("=== RUN   ") {
            ran.insert(name.trim());
            start.get_or_insert(i);
            continue;
        }
        if let Some((field, name)) = result_line(l) {
            if verbose && !ran.contains(name) {
                continue;
            }
            if verbose || field == Field::Failed {
                pkg.add(field, 1);
                start.get_or_insert(i);
            }
            continue;
        }
        if let Some(failed_pkg) = package_line(l) {
            let mut c = Counts {
                passed: verbose.then_some(pkg.passed.unwrap_or(0)),
                failed: Some(pkg.failed.unwrap_or(0)),
                skipped: verbose.then_some(pkg.skipped.unwrap_or(0)),
                errors: Some(0),
                ..Counts::default()
            };
            if failed_pkg && c.failed == Some(0) {
                c.errors = Some(1);
            }
            found.push(Found::new(Harness::GoTest, start.take().unwrap_or(i), i, c));
            pkg = Counts::default();
        }
    }
    found
}

/// A package being read from `-json` events.
struct JsonPackage {
    start: usize,
    counts: Counts,
    /// Tests with a `run` event.
    ran: HashSet<String>,
}

/// A `-json` event; returns the package's summary on its package-level `pass`/`fail`.
/// As with `-v`, a test result counts only for a test that had a `run` event: test2json
/// turns a `--- PASS: Name` line that a test prints into an event of its own.
fn json_event(l: &str, i: usize, packages: &mut HashMap<String, JsonPackage>) -> Option<Found> {
    let ev: Event = serde_json::from_str(l).ok()?;
    let package = ev.package?;
    let pkg = packages
        .entry(package.clone())
        .or_insert_with(|| JsonPackage {
            start: i,
            counts: Counts::zero(&[Field::Passed, Field::Failed, Field::Skipped]),
            ran: HashSet::new(),
        });
    let field = match ev.action.as_str() {
        "run" => {
            pkg.ran.extend(ev.test);
            return None;
        }
        "pass" => Field::Passed,
        "fail" => Field::Failed,
        "skip" => Field::Skipped,
        _ => return None,
    };
    if let Some(test) = ev.test {
        if pkg.ran.contains(&test) {
            pkg.counts.add(field, 1);
        }
        return None;
    }
    let mut c = pkg.counts;
    c.errors = Some(u64::from(field == Field::Failed && c.failed == Some(0)));
    let start = pkg.start;
    packages.remove(&package);
    Some(Found::new(Harness::GoTest, start, i, c))
}

/// `--- PASS: TestX (0.00s)` (indented for subtests) → (Passed, "TestX").
fn result_line(l: &str) -> Option<(Field, &str)> {
    let t = l.trim_start().strip_prefix("--- ")?;
    let (field, rest) = if let Some(r) = t.strip_prefix("PASS: ") {
        (Field::Passed, r)
    } else if let Some(r) = t.strip_prefix("FAIL: ") {
        (Field::Failed, r)
    } else if let Some(r) = t.strip_prefix("SKIP: ") {
        (Field::Skipped, r)
    } else {
        return None;
    };
    let (name, time) = rest.rsplit_once(" (")?;
    time.ends_with("s)").then_some((field, name))
}

/// `ok  \t<pkg>\t0.01s`, `FAIL\t<pkg>\t0.01s`, `FAIL\t<pkg> [build failed]` → whether the
/// package failed.
fn package_line(l: &str) -> Option<bool> {
    let (status, rest) = l.split_once([' ', '\t'])?;
    let failed = match status {
        "ok" => false,
        "FAIL" => true,
        _ => return None,
    };
    let mut parts = rest.split_whitespace();
    let _pkg = parts.next()?;
    let what = parts.next()?;
    let time_like = what
        .strip_suffix('s')
        .is_some_and(|s| s.parse::<f64>().is_ok());
    let known =
        time_like || what == "(cached)" || (failed && (what == "[build" || what == "[setup"));
    known.then_some(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_and_package_lines() {
        assert_eq!(
            result_line("    --- FAIL: TestA/sub_1 (0.00s)"),
            Some((Field::Failed, "TestA/sub_1"))
        );
        assert_eq!(result_line("--- PASS: TestA"), None);
        assert_eq!(package_line("ok  \texample.com/a\t0.012s"), Some(false));
        assert_eq!(package_line("ok  \texample.com/a\t(cached)"), Some(false));
        assert_eq!(
            package_line("FAIL\texample.com/b [build failed]"),
            Some(true)
        );
        assert_eq!(package_line("FAIL"), None);
        assert_eq!(package_line("ok so far"), None);
    }
}
