//! RSpec summaries.

use super::counts::{count_items, Counts, Field, Found, Harness};

/// RSpec: `6 examples, 1 failure, 3 pending` (and `, 1 error occurred outside of
/// examples` for files that failed to load) within two lines after
/// `Finished in 0.03 seconds (files took 0.19 seconds to load)`. Pending examples (`xit`,
/// `pending`, no block) are skipped; passed = examples − failures − pending.
pub(super) fn rspec(lines: &[&str]) -> Vec<Found> {
    let mut found = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if !l.starts_with("Finished in ") {
            continue;
        }
        for (j, next) in lines.iter().enumerate().skip(i + 1).take(2) {
            if let Some(c) = summary(next.trim()) {
                found.push(Found::new(Harness::Rspec, i, j, c));
                break;
            }
        }
    }
    found
}

fn summary(t: &str) -> Option<Counts> {
    let items = count_items(t, ",")?;
    let mut examples = None;
    let mut c = Counts::zero(&[Field::Failed, Field::Skipped, Field::Errors]);
    for (n, word) in items {
        match word {
            "example" | "examples" => examples = Some(n),
            "failure" | "failures" => c.failed = Some(n),
            "pending" => c.skipped = Some(n),
            "error occurred outside of examples" | "errors occurred outside of examples" => {
                c.errors = Some(n)
            }
            _ => return None,
        }
    }
    let examples = examples?;
    c.passed = examples
        .checked_sub(c.failed.unwrap_or(0))
        .and_then(|n| n.checked_sub(c.skipped.unwrap_or(0)));
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line() {
        let c = summary("6 examples, 1 failure, 3 pending").unwrap();
        assert_eq!((c.passed, c.failed, c.skipped), (Some(2), Some(1), Some(3)));
        let c = summary("0 examples, 0 failures, 1 error occurred outside of examples").unwrap();
        assert_eq!((c.passed, c.errors), (Some(0), Some(1)));
        assert_eq!(summary("1 failure"), None);
        assert_eq!(summary("3 examples, 1 surprise"), None);
        assert_eq!(summary("1 example, 2 failures").unwrap().passed, None);
    }
}
