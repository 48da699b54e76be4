//! cargo test (libtest) and cargo-nextest summaries.

use super::counts::{apply, count_items, Counts, Field, Found, Harness};

/// libtest: each test binary (and the doc-tests) prints `running N tests` … `test result:
/// ok. 3 passed; 0 failed; 1 ignored; 0 measured; 2 filtered out; finished in 0.00s` at
/// column 0. A result line counts when it closes the `running N` block it belongs to
/// (passed + failed + ignored + measured = N); blocks opened inside an open block are a
/// test's captured output (a test that ran cargo itself) and are not counted. A binary
/// that dies without a result line (cargo prints `error: test failed, to rerun pass …`)
/// counts as one error. "filtered out" is deselected, "ignored" skipped.
pub(super) fn libtest(lines: &[&str]) -> Vec<Found> {
    let mut found = Vec::new();
    // Open blocks: (line of `running N tests`, N).
    let mut open: Vec<(usize, u64)> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(n) = running(l) {
            open.push((i, n));
        } else if let Some((counts, total)) = result(l) {
            match open.last() {
                // A result line with no `running` before it (the start of the output was
                // cut off): nothing to check it against, take it.
                None => found.push(Found::new(Harness::Libtest, i, i, counts)),
                Some(&(start, n)) if n == total => {
                    open.pop();
                    if open.is_empty() {
                        found.push(Found::new(Harness::Libtest, start, i, counts));
                    }
                }
                // A line that looks like a result but does not close the block.
                Some(_) => {}
            }
        } else if l.starts_with("error: test failed, to rerun pass ") {
            // The binary of the outermost open block died before its result line.
            if let Some(&(start, _)) = open.first() {
                open.clear();
                let counts = Counts {
                    errors: Some(1),
                    ..Counts::default()
                };
                found.push(Found::new(Harness::Libtest, start, i, counts));
            }
        }
    }
    found
}

/// `running 3 tests` / `running 1 test` → 3 / 1.
fn running(l: &str) -> Option<u64> {
    let rest = l.strip_prefix("running ")?;
    let n = rest
        .strip_suffix(" tests")
        .or_else(|| rest.strip_suffix(" test"))?;
    n.parse().ok()
}

/// A libtest result line: its counts and passed + failed + ignored + measured.
fn result(l: &str) -> Option<(Counts, u64)> {
    let rest = l
        .strip_prefix("test result: ok. ")
        .or_else(|| l.strip_prefix("test result: FAILED. "))?;
    // Everything before `; finished in …` is counts.
    let counts_part = match rest.find("; finished in ") {
        Some(i) => &rest[..i],
        None => rest,
    };
    let items = count_items(counts_part, ";")?;
    let mut c = Counts::default();
    apply(
        &mut c,
        &items,
        &[
            ("passed", Some(Field::Passed)),
            ("failed", Some(Field::Failed)),
            ("ignored", Some(Field::Skipped)),
            ("measured", None),
            ("filtered out", Some(Field::Deselected)),
        ],
    )?;
    let (passed, failed, skipped) = (c.passed?, c.failed?, c.skipped?);
    let measured = items
        .iter()
        .find(|(_, w)| *w == "measured")
        .map_or(0, |(n, _)| *n);
    Some((c, passed + failed + skipped + measured))
}

/// nextest: `     Summary [   0.053s] 7 tests run: 6 passed, 1 timed out, 2 skipped`
/// (`4/7 tests run` after a fail-fast stop). Parentheticals such as `(1 slow)` or
/// `(1 leaky)` qualify the count before them. Timed-out tests are failures, `exec failed`
/// (the test binary could not run) is an error; nextest's "skipped" covers both ignored and
/// filtered-out tests. The run spans from `Starting N tests across …` to the summary.
pub(super) fn nextest(lines: &[&str]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut start = None;
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        if t.starts_with("Starting ") && t.contains(" across ") {
            start = Some(i);
        } else if let Some(counts) = summary(t) {
            found.push(Found::new(
                Harness::Nextest,
                start.take().unwrap_or(i),
                i,
                counts,
            ));
        }
    }
    found
}

fn summary(t: &str) -> Option<Counts> {
    let rest = t.strip_prefix("Summary [")?;
    let rest = rest[rest.find(']')? + 1..].trim_start();
    let (head, items) = rest.split_once(" run: ")?;
    // `7 tests` or `4/7 tests`
    let n = head
        .strip_suffix(" tests")
        .or_else(|| head.strip_suffix(" test"))?;
    if !n.split('/').all(|p| p.parse::<u64>().is_ok()) {
        return None;
    }
    let without_parens: String = {
        let mut depth = 0usize;
        items
            .chars()
            .filter(|&c| {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth = depth.saturating_sub(1);
                        return false;
                    }
                    _ => {}
                }
                depth == 0
            })
            .collect()
    };
    let items = count_items(&without_parens, ",")?;
    let mut c = Counts::zero(&[Field::Passed, Field::Failed, Field::Skipped]);
    apply(
        &mut c,
        &items,
        &[
            ("passed", Some(Field::Passed)),
            ("failed", Some(Field::Failed)),
            ("timed out", Some(Field::Failed)),
            ("skipped", Some(Field::Skipped)),
            ("exec failed", Some(Field::Errors)),
        ],
    )?;
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_and_result_lines() {
        assert_eq!(running("running 3 tests"), Some(3));
        assert_eq!(running("running 1 test"), Some(1));
        assert_eq!(running("    running 1 test"), None);
        assert_eq!(running("running tests"), None);
        let (c, total) = result(
            "test result: FAILED. 2 passed; 1 failed; 1 ignored; 1 measured; 3 filtered out; finished in 0.27s",
        )
        .unwrap();
        assert_eq!(
            (c.passed, c.failed, c.skipped, c.deselected),
            (Some(2), Some(1), Some(1), Some(3))
        );
        assert_eq!(total, 5);
        assert_eq!(result("    test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s"), None);
        assert_eq!(result("test result: ok. lots passed"), None);
    }

    #[test]
    fn nested_cargo_output_is_not_counted_and_a_fake_result_is_skipped() {
        let out = [
            "running 2 tests",
            "test a ... FAILED",
            "---- a stdout ----",
            "running 5 tests",
            "test result: ok. 5 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s",
            "test result: ok. 9 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s",
            "test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s",
        ];
        let found = libtest(&out);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].counts.passed, found[0].counts.failed),
            (Some(1), Some(1))
        );
        assert_eq!((found[0].start, found[0].end), (0, 6));
    }

    #[test]
    fn nextest_summary_words() {
        let c = summary("Summary [   0.010s] 10 tests run: 8 passed (1 slow, 1 leaky), 1 failed, 1 timed out, 2 skipped").unwrap();
        assert_eq!((c.passed, c.failed, c.skipped), (Some(8), Some(2), Some(2)));
        assert_eq!(c.errors, None);
        let c = summary("Summary [   0.517s] 4/7 tests run: 2 passed, 1 exec failed, 2 skipped")
            .unwrap();
        assert_eq!((c.passed, c.failed, c.errors), (Some(2), Some(0), Some(1)));
        assert_eq!(
            summary("Summary [ 0.1s] 7 tests run: 6 passed, 1 exploded"),
            None
        );
    }
}
