//! TAP streams and Perl's `prove` harness summary.

use super::counts::{Counts, Field, Found, Harness};

/// A raw TAP stream (Test::More, `node --test --test-reporter=tap`, mocha's TAP reporter):
/// test points `ok 1 - name`, `not ok 2 - name`, with `# SKIP` / `# TODO` directives.
/// Only leaf test points count: a test point right after a deeper-indented block (TAP 14
/// subtests, node's suites) summarises that block and is not a test of its own. SKIP and
/// TODO tests are skipped (TODO failures are expected, not failures); each `Bail out!` is
/// an error. A stream ends at a new `TAP version` line, or when a test point numbered 1 or
/// a plan comes after the stream already had one; streams are summed.
pub(super) fn tap(lines: &[&str]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut stream: Option<Stream> = None;
    for (i, l) in lines.iter().enumerate() {
        let indent = l.len() - l.trim_start().len();
        let t = l.trim_start();
        if indent == 0 && (t.starts_with("TAP version ") || t.starts_with("Bail out!")) {
            if t.starts_with("TAP version ") {
                found.extend(stream.take().and_then(Stream::finish));
            }
            let s = stream.get_or_insert_with(|| Stream::new(i));
            if t.starts_with("Bail out!") {
                s.counts.add(Field::Errors, 1);
                s.end = i;
            }
            continue;
        }
        if let Some(point) = test_point(t) {
            if indent == 0 {
                let restart = stream
                    .as_ref()
                    .is_some_and(|s| s.points > 0 && point.number == 1);
                if restart {
                    found.extend(stream.take().and_then(Stream::finish));
                }
            }
            let s = stream.get_or_insert_with(|| Stream::new(i));
            let parent = s.last_indent.is_some_and(|d| d > indent);
            s.last_indent = Some(indent);
            s.end = i;
            if indent == 0 {
                s.points += 1;
            }
            if !parent {
                s.counts.add(point.field, 1);
            }
            continue;
        }
        if is_plan(t) {
            if indent == 0 && stream.as_ref().is_some_and(|s| s.plan) {
                found.extend(stream.take().and_then(Stream::finish));
            }
            let s = stream.get_or_insert_with(|| Stream::new(i));
            s.last_indent = Some(indent);
            s.end = i;
            if indent == 0 {
                s.plan = true;
            }
        }
    }
    found.extend(stream.and_then(Stream::finish));
    found
}

struct Stream {
    start: usize,
    end: usize,
    /// Top-level test points so far.
    points: u64,
    /// A top-level plan was seen.
    plan: bool,
    /// Indentation of the last test point or plan.
    last_indent: Option<usize>,
    counts: Counts,
}

impl Stream {
    fn new(start: usize) -> Stream {
        Stream {
            start,
            end: start,
            points: 0,
            plan: false,
            last_indent: None,
            counts: Counts::zero(&[Field::Passed, Field::Failed, Field::Skipped, Field::Errors]),
        }
    }

    fn finish(self) -> Option<Found> {
        (self.points > 0).then(|| Found::new(Harness::Tap, self.start, self.end, self.counts))
    }
}

struct TestPoint {
    number: u64,
    field: Field,
}

/// `ok 3 - name # SKIP reason` → (3, Skipped). A number is required, so `ok` alone or go's
/// `ok  <package>` is not a test point.
fn test_point(t: &str) -> Option<TestPoint> {
    let (ok, rest) = match t.strip_prefix("not ok ") {
        Some(r) => (false, r),
        None => (true, t.strip_prefix("ok ")?),
    };
    let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
    let number = digits.parse().ok()?;
    let after = &rest[digits.len()..];
    if !(after.is_empty() || after.starts_with(' ')) {
        return None;
    }
    let directive = after
        .rsplit_once(" # ")
        .map(|(_, d)| d.trim_start().to_ascii_lowercase());
    let field = match directive {
        Some(d) if d.starts_with("skip") || d.starts_with("todo") => Field::Skipped,
        _ if ok => Field::Passed,
        _ => Field::Failed,
    };
    Some(TestPoint { number, field })
}

/// `1..5` (optionally `1..0 # SKIP reason`).
fn is_plan(t: &str) -> bool {
    t.strip_prefix("1..").is_some_and(|r| {
        let n = r.split(' ').next().unwrap_or("");
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// prove: `Files=2, Tests=6,  0 wallclock secs (…)` followed by `Result: PASS|FAIL`. The
/// failures come from the `Test Summary Report` entries
/// (`t/basic.t (Wstat: 256 (exited 1) Tests: 5 Failed: 1)`); an entry with no failed test
/// but a non-zero exit or parse errors (a script that died) is an error. prove does not
/// print how many tests were skipped: they are counted in `passed`, and `skipped` is
/// `None`. The run spans from the first `<file> ..` line, so a `prove -v` TAP stream is
/// not counted again.
pub(super) fn prove(lines: &[&str]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut start = None;
    let mut failed = 0;
    let mut errors = 0;
    for (i, l) in lines.iter().enumerate() {
        if start.is_none() && is_file_line(l) {
            start = Some(i);
        }
        if let Some(n) = report_entry(l) {
            failed += n;
            let problems = lines[i + 1..]
                .iter()
                .take_while(|n| n.starts_with("  "))
                .any(|n| {
                    let n = n.trim_start();
                    n.starts_with("Non-zero exit status:") || n.starts_with("Parse errors:")
                });
            if n == 0 && problems {
                errors += 1;
            }
            continue;
        }
        let Some(total) = files_line(l) else { continue };
        if !lines.get(i + 1).is_some_and(|n| n.starts_with("Result: ")) {
            continue;
        }
        let c = Counts {
            passed: total.checked_sub(failed),
            failed: Some(failed),
            errors: Some(errors),
            ..Counts::default()
        };
        found.push(Found::new(
            Harness::Prove,
            start.take().unwrap_or(i),
            i + 1,
            c,
        ));
        failed = 0;
        errors = 0;
    }
    found
}

/// `t/basic.t .. ok`, `t/basic.t .. `, `t/x.t ... skipped: no db` (prove's per-file line).
fn is_file_line(l: &str) -> bool {
    let Some((file, rest)) = l.split_once(' ') else {
        return false;
    };
    let after = rest.trim_start_matches('.');
    let dots = rest.len() - after.len();
    let status = after.trim();
    !file.is_empty()
        && dots >= 2
        && (after.is_empty() || after.starts_with(' '))
        && (status.is_empty() || status == "ok" || status.starts_with("skipped"))
}

/// `t/basic.t (Wstat: 256 (exited 1) Tests: 5 Failed: 1)` → 1.
fn report_entry(l: &str) -> Option<u64> {
    if l.starts_with(' ') || !l.contains(" (Wstat: ") {
        return None;
    }
    let inner = l.trim_end().strip_suffix(')')?;
    let (_, failed) = inner.rsplit_once(" Failed: ")?;
    failed.parse().ok()
}

/// `Files=2, Tests=6,  0 wallclock secs …` → 6.
fn files_line(l: &str) -> Option<u64> {
    let rest = l.strip_prefix("Files=")?;
    let (_, after) = rest.split_once(", Tests=")?;
    after.split(',').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_points_and_plans() {
        let p = test_point("ok 3 # skip not today").unwrap();
        assert_eq!((p.number, p.field), (3, Field::Skipped));
        let p = test_point("not ok 4 - still broken # TODO known bug").unwrap();
        assert_eq!(p.field, Field::Skipped);
        assert_eq!(test_point("not ok 5 - fails").unwrap().field, Field::Failed);
        assert_eq!(
            test_point("ok 2 - 3 passed, 0 failed").unwrap().field,
            Field::Passed
        );
        assert!(test_point("ok  \texample.com/a\t0.01s").is_none());
        assert!(test_point("ok").is_none());
        assert!(test_point("ok 12abc").is_none());
        assert!(is_plan("1..5"));
        assert!(is_plan("1..0 # SKIP no database"));
        assert!(!is_plan("1..x"));
    }

    #[test]
    fn prove_lines() {
        assert!(is_file_line("t/basic.t .. ok"));
        assert!(is_file_line("t/dies.t ... "));
        assert!(!is_file_line("Files=2, Tests=6"));
        assert!(!is_file_line("wait .. what"));
        assert_eq!(
            report_entry("t/basic.t (Wstat: 256 (exited 1) Tests: 5 Failed: 1)"),
            Some(1)
        );
        assert_eq!(
            files_line("Files=2, Tests=6,  0 wallclock secs ( 0.04 usr )"),
            Some(6)
        );
    }
}
