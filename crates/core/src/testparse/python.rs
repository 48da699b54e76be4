//! pytest summaries.

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
