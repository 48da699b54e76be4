//! Test-output parsing: pulls passed/failed/skipped counts out of the output of cargo test,
//! cargo-nextest, pytest, go test, or a plain `N passed, N failed` line. Pure.

/// Counts found in a test command's output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// Parse test counts from the whole output. Formats are tried from the most to the least
/// specific (nextest summary, cargo `test result:` lines summed over binaries, pytest's
/// closing line, go test's `--- PASS/FAIL/SKIP` lines, the plain line); the first format
/// found wins. `None` when nothing recognisable is there.
pub fn parse_counts(output: &str) -> Option<Counts> {
    let lines: Vec<&str> = output.lines().map(strip_ansi_prefixless).collect();
    nextest(&lines)
        .or_else(|| cargo(&lines))
        .or_else(|| pytest(&lines))
        .or_else(|| go_test(&lines))
        .or_else(|| plain(&lines))
}

fn strip_ansi_prefixless(line: &str) -> &str {
    line.trim_end_matches('\r')
}

/// Remove ANSI colour escapes (pytest and nextest colour their summaries on a terminal).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c2 in chars.by_ref() {
                    if c2.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `<number> <word>` pairs in a comma/semicolon separated summary, e.g.
/// `3 passed, 1 failed, 2 skipped in 0.1s` → [(3,"passed"),(1,"failed"),(2,"skipped")].
fn number_word_pairs(s: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let toks: Vec<&str> = s
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == ':')
        .filter(|t| !t.is_empty())
        .collect();
    for w in toks.windows(2) {
        if let Ok(n) = w[0].parse::<u64>() {
            let word: String = w[1]
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect::<String>()
                .to_ascii_lowercase();
            if !word.is_empty() {
                out.push((n, word));
            }
        }
    }
    out
}

fn counts_from_pairs(pairs: &[(u64, String)]) -> Counts {
    let mut c = Counts::default();
    for (n, w) in pairs {
        match w.as_str() {
            "passed" | "pass" => c.passed += n,
            "failed" | "fail" | "error" | "errors" => c.failed += n,
            "skipped" | "ignored" | "xfailed" | "deselected" => c.skipped += n,
            _ => {}
        }
    }
    c
}

/// nextest: `     Summary [   0.010s] 10 tests run: 9 passed, 1 failed, 2 skipped`.
fn nextest(lines: &[&str]) -> Option<Counts> {
    lines.iter().rev().find_map(|l| {
        let l = strip_ansi(l);
        let t = l.trim_start();
        if !t.starts_with("Summary [") || !t.contains("run:") {
            return None;
        }
        let after = &t[t.find("run:")? + 4..];
        // "(1 slow)" and similar parentheticals are not counts.
        let cleaned: String = strip_parens(after);
        Some(counts_from_pairs(&number_word_pairs(&cleaned)))
    })
}

fn strip_parens(s: &str) -> String {
    let mut depth = 0;
    s.chars()
        .filter(|&c| {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    return false;
                }
                _ => {}
            }
            depth == 0
        })
        .collect()
}

/// cargo test: `test result: ok. 5 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out`,
/// one per test binary, summed.
fn cargo(lines: &[&str]) -> Option<Counts> {
    let mut total: Option<Counts> = None;
    for l in lines {
        let l = strip_ansi(l);
        if let Some(pos) = l.find("test result:") {
            let c = counts_from_pairs(&number_word_pairs(&l[pos + 12..]));
            let t = total.get_or_insert_with(Counts::default);
            t.passed += c.passed;
            t.failed += c.failed;
            t.skipped += c.skipped;
        }
    }
    total
}

/// pytest: `===== 3 passed, 1 failed, 2 skipped in 0.12s =====` (the last such line).
fn pytest(lines: &[&str]) -> Option<Counts> {
    lines.iter().rev().find_map(|l| {
        let l = strip_ansi(l);
        let t = l.trim();
        if !(t.starts_with('=') && t.ends_with('=')) {
            return None;
        }
        let inner = t.trim_matches('=').trim();
        if inner == "no tests ran" || inner.starts_with("no tests ran in") {
            return Some(Counts::default());
        }
        if !inner.contains(" in ") {
            return None;
        }
        let pairs = number_word_pairs(inner);
        if pairs.iter().any(|(_, w)| {
            matches!(
                w.as_str(),
                "passed" | "failed" | "skipped" | "error" | "errors"
            )
        }) {
            Some(counts_from_pairs(&pairs))
        } else {
            None
        }
    })
}

/// go test -v: `--- PASS: TestX (0.00s)`, `--- FAIL: …`, `--- SKIP: …`.
fn go_test(lines: &[&str]) -> Option<Counts> {
    let mut c = Counts::default();
    let mut seen = false;
    for l in lines {
        let t = l.trim_start();
        if t.starts_with("--- PASS:") {
            c.passed += 1;
            seen = true;
        } else if t.starts_with("--- FAIL:") {
            c.failed += 1;
            seen = true;
        } else if t.starts_with("--- SKIP:") {
            c.skipped += 1;
            seen = true;
        }
    }
    if seen {
        return Some(c);
    }
    // Without -v: `ok  \tpkg\t0.01s` / `FAIL\tpkg\t0.01s` per package.
    let mut pkgs = Counts::default();
    for l in lines {
        let mut parts = l.split_whitespace();
        match (parts.next(), parts.next(), parts.next()) {
            (Some("ok"), Some(_pkg), Some(t)) if t.ends_with('s') || t == "(cached)" => {
                pkgs.passed += 1;
                seen = true;
            }
            (Some("FAIL"), Some(_pkg), Some(t)) if t.ends_with('s') => {
                pkgs.failed += 1;
                seen = true;
            }
            _ => {}
        }
    }
    seen.then_some(pkgs)
}

/// The plain line: `N passed, N failed` alone on a line, `, N skipped` optional, one word
/// with a colon optionally before it.
fn plain(lines: &[&str]) -> Option<Counts> {
    lines.iter().rev().find_map(|l| {
        let mut t = l.trim();
        if let Some((word, rest)) = t.split_once(':') {
            if !word.is_empty() && !word.contains(' ') {
                t = rest.trim();
            }
        }
        let parts: Vec<&str> = t.split(',').map(str::trim).collect();
        if parts.len() < 2 || parts.len() > 3 {
            return None;
        }
        let num = |p: &str, word: &str| -> Option<u64> {
            let (n, w) = p.split_once(' ')?;
            (w == word).then(|| n.parse().ok()).flatten()
        };
        let passed = num(parts[0], "passed")?;
        let failed = num(parts[1], "failed")?;
        let skipped = match parts.get(2) {
            Some(p) => num(p, "skipped")?,
            None => 0,
        };
        Some(Counts {
            passed,
            failed,
            skipped,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(passed: u64, failed: u64, skipped: u64) -> Option<Counts> {
        Some(Counts {
            passed,
            failed,
            skipped,
        })
    }

    #[test]
    fn cargo_sums_over_binaries() {
        let out = "running 3 tests\n...\ntest result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\nrunning 2 tests\ntest result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s\n";
        assert_eq!(parse_counts(out), c(4, 1, 1));
    }

    #[test]
    fn nextest_summary_wins_and_ignores_parentheticals() {
        let out = "    PASS [   0.003s] a::b\n------------\n     Summary [   0.010s] 10 tests run: 9 passed (1 slow), 1 failed, 2 skipped\n";
        assert_eq!(parse_counts(out), c(9, 1, 2));
    }

    #[test]
    fn pytest_closing_line() {
        let out = "tests/test_a.py ..F.s\n=========== 1 failed, 3 passed, 1 skipped, 2 warnings in 0.12s ===========\n";
        assert_eq!(parse_counts(out), c(3, 1, 1));
        let coloured = "\u{1b}[32m===== 5 passed in 0.01s =====\u{1b}[0m\n";
        assert_eq!(parse_counts(coloured), c(5, 0, 0));
        assert_eq!(
            parse_counts("==== no tests ran in 0.01s ====\n"),
            c(0, 0, 0)
        );
    }

    #[test]
    fn go_test_verbose_and_package_lines() {
        let out = "=== RUN   TestA\n--- PASS: TestA (0.00s)\n=== RUN   TestB\n--- FAIL: TestB (0.00s)\n--- SKIP: TestC (0.00s)\nFAIL\n";
        assert_eq!(parse_counts(out), c(1, 1, 1));
        let pkgs = "ok  \texample.com/a\t0.012s\nFAIL\texample.com/b\t0.020s\n";
        assert_eq!(parse_counts(pkgs), c(1, 1, 0));
    }

    #[test]
    fn plain_line_with_optional_prefix_and_skipped() {
        assert_eq!(parse_counts("blah\n7 passed, 2 failed\n"), c(7, 2, 0));
        assert_eq!(
            parse_counts("tests: 7 passed, 0 failed, 3 skipped\n"),
            c(7, 0, 3)
        );
        assert_eq!(parse_counts("we passed, 2 failed\n"), None);
    }

    #[test]
    fn nothing_recognisable() {
        assert_eq!(parse_counts(""), None);
        assert_eq!(parse_counts("all good\nexit 0\n"), None);
    }
}
