//! Retries: which failed attempts are worth another one (transient failures: a preset's
//! rate-limit and overload messages, git config `ws.transientPattern`; timeouts and failed
//! tests only when `ws.retryOn` says so), and how long to wait before it (exponential
//! backoff with jitter from a base, git config `ws.retryBackoff`). Pure.

use super::preset::Preset;
use crate::model::ErrorType;
use crate::Invalid;
use regex_automata::meta::Regex;
use std::time::Duration;

/// Default base of the backoff (git config `ws.retryBackoff`).
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(10);
/// No wait is longer than this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10 * 60);
/// Most retries a workstream may ask for.
pub const MAX_RETRIES: u32 = 20;

/// A pattern from git config `ws.transientPattern` (a regular expression).
#[derive(Debug, Clone)]
pub struct Pattern {
    pub text: String,
    re: Regex,
}

impl Pattern {
    /// Compile `text` (byte-oriented: `(?i)` folds ASCII case, `\w` is ASCII).
    pub fn new(text: &str) -> Result<Pattern, Invalid> {
        use regex_automata::util::syntax;
        Regex::builder()
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .build(text)
            .map(|re| Pattern {
                text: text.to_string(),
                re,
            })
            .map_err(|e| Invalid::new(format!("not a valid regular expression: {e}")))
    }

    pub fn is_match(&self, haystack: &str) -> bool {
        self.re.is_match(haystack)
    }
}

/// Failures retried besides transient ones (git config `ws.retryOn`: `timeout`, `tests`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryOn {
    pub timeout: bool,
    pub tests: bool,
}

impl RetryOn {
    /// `timeout,tests`, `timeout`, `none`, `` (nothing).
    pub fn parse(text: &str) -> Result<RetryOn, Invalid> {
        let mut r = RetryOn::default();
        for part in text
            .split([',', ' '])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            match part.to_ascii_lowercase().as_str() {
                "timeout" | "timeouts" => r.timeout = true,
                "test" | "tests" => r.tests = true,
                "none" => {}
                other => {
                    return Err(Invalid::new(format!(
                        "unknown failure {other:?} (use timeout, tests or none)"
                    )))
                }
            }
        }
        Ok(r)
    }
}

/// How an attempt failed, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure<'a> {
    pub error_type: ErrorType,
    pub exit_code: Option<i32>,
    /// The attempt's output (its tail).
    pub output: &'a str,
}

/// Why this failed attempt should be retried, if it should: never for a budget, a
/// cancellation, an invalid workstream or a git error; timeouts and failed tests only when
/// `retry_on` asks; a failed command when its preset (if any) or a `ws.transientPattern`
/// recognises its output as transient.
pub fn retry_reason(
    f: &Failure<'_>,
    preset: Option<Preset>,
    patterns: &[Pattern],
    retry_on: RetryOn,
) -> Option<String> {
    match f.error_type {
        ErrorType::Timeout if retry_on.timeout => Some("timed out (ws.retryOn timeout)".into()),
        ErrorType::TestFailed if retry_on.tests => Some("tests failed (ws.retryOn tests)".into()),
        ErrorType::CommandFailed => preset
            .and_then(|p| p.transient(f.exit_code, f.output))
            .or_else(|| {
                patterns
                    .iter()
                    .find(|p| p.is_match(f.output))
                    .map(|p| format!("output matched ws.transientPattern {:?}", p.text))
            }),
        _ => None,
    }
}

/// The wait before retry number `retry` (1 = the first retry): `base · 2^(retry−1)`, capped
/// at [`MAX_BACKOFF`], then jittered down by up to half (`jitter` in 0..1), so agents that
/// failed together do not come back together.
pub fn backoff(base: Duration, retry: u32, jitter: f64) -> Duration {
    let exp = retry.saturating_sub(1).min(30);
    let full = base
        .checked_mul(1u32 << exp)
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF);
    let j = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    full.mul_f64(1.0 - 0.5 * j)
}

/// A number in 0..1 that differs from call to call (for jitter; not for anything secret).
pub fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(t: ErrorType, code: Option<i32>, out: &str) -> Option<String> {
        let pats = vec![Pattern::new("(?i)connection reset").unwrap()];
        retry_reason(
            &Failure {
                error_type: t,
                exit_code: code,
                output: out,
            },
            Some(Preset::Codex),
            &pats,
            RetryOn::default(),
        )
    }

    #[test]
    fn only_transient_failures_are_retried_by_default() {
        assert!(failed(ErrorType::CommandFailed, Some(1), "429 Too Many Requests").is_some());
        assert_eq!(
            failed(
                ErrorType::CommandFailed,
                Some(1),
                "Connection RESET by peer"
            )
            .as_deref(),
            Some("output matched ws.transientPattern \"(?i)connection reset\"")
        );
        assert_eq!(
            failed(ErrorType::CommandFailed, Some(1), "syntax error"),
            None
        );
        for t in [
            ErrorType::Timeout,
            ErrorType::TestFailed,
            ErrorType::BudgetExceeded,
            ErrorType::Cancelled,
            ErrorType::GitError,
        ] {
            assert_eq!(failed(t, None, "429 Too Many Requests"), None, "{t}");
        }
    }

    #[test]
    fn timeouts_and_tests_when_asked() {
        let on = RetryOn::parse("timeout, tests").unwrap();
        let f = |t| Failure {
            error_type: t,
            exit_code: None,
            output: "",
        };
        assert!(retry_reason(&f(ErrorType::Timeout), None, &[], on).is_some());
        assert!(retry_reason(&f(ErrorType::TestFailed), None, &[], on).is_some());
        assert!(retry_reason(&f(ErrorType::BudgetExceeded), None, &[], on).is_none());
        assert_eq!(RetryOn::parse("none"), Ok(RetryOn::default()));
        assert!(RetryOn::parse("crashes")
            .unwrap_err()
            .as_str()
            .contains("crashes"));
    }

    #[test]
    fn backoff_doubles_caps_and_jitters_down_by_at_most_half() {
        let b = Duration::from_secs(10);
        assert_eq!(backoff(b, 1, 0.0), Duration::from_secs(10));
        assert_eq!(backoff(b, 2, 0.0), Duration::from_secs(20));
        assert_eq!(backoff(b, 3, 1.0), Duration::from_secs(20));
        assert_eq!(backoff(b, 40, 0.0), MAX_BACKOFF);
        assert_eq!(backoff(Duration::ZERO, 5, 0.3), Duration::ZERO);
        assert_eq!(backoff(b, 1, f64::NAN), Duration::from_secs(10));
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }

    #[test]
    fn bad_patterns_say_why() {
        assert!(Pattern::new("(unclosed")
            .unwrap_err()
            .as_str()
            .contains("regular expression"));
    }
}
