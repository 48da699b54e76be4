//! Usage limits: whether an agent CLI's output says its account hit a usage limit (a plan's
//! 5-hour or weekly window, a spent quota) rather than a passing rate limit, with the reset
//! time when the CLI gives one; and what a run does about it (wait for the reset within
//! git config `ws.maxWait`, or pause). Pure: the caller passes the output and the time.
//!
//! A limit is recognised by the CLI's own words, never by a bare 429 (those stay transient
//! failures, retried with backoff):
//!
//! - Claude Code: `Claude AI usage limit reached|<epoch seconds>`, "Claude usage limit
//!   reached. Your limit will reset at 9am (America/Chicago).", "You've hit your limit ·
//!   resets 3pm", "5-hour limit reached ∙ resets 3pm".
//! - Codex CLI: "You've hit your usage limit. … try again in 5 days 22 hours 11 minutes.",
//!   "You’ve hit your usage limit. … or try again at 12:18 PM." (0.171.0: a local time);
//!   the OpenAI error `usage_limit_reached` with `resets_in_seconds` / `resets_at`;
//!   `insufficient_quota`.
//! - Gemini CLI: `TerminalQuotaError`, "You have exhausted your daily quota on this model."
//!   (0.61.0, no reset), "You have exhausted your capacity on this model. Your quota will
//!   reset after 2h30m5s.".
//! - aider: litellm's `insufficient_quota` / "You exceeded your current quota".
//!
//! A wall-clock reset with no zone is read in the caller's local offset ([`detect_local`]);
//! one in a named time zone ("resets 3pm (Europe/Paris)") is not converted (no time-zone
//! database in a pure crate): the limit is reported with no reset, and the run pauses
//! instead of guessing. Samples are in `fixtures/agents/*/usage-limit*`.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use std::time::Duration;

/// Default of git config `ws.maxWait`: how long dispatch to a preset may wait for its
/// usage limit to reset before the run pauses. One hour covers per-minute and per-hour
/// quotas and the tail of a 5-hour window, and never holds a run silently for longer: past
/// it the run ends `paused` and says when to `--resume`.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60 * 60);

/// How many times one workstream is held for a reset within a run before its agent's
/// limit counts as unknown (a CLI that keeps reporting a reset already past).
pub const MAX_WAITS: u32 = 3;

/// A usage limit an agent reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// The CLI's own line about it.
    pub message: String,
    /// When the limit resets, if the CLI said.
    pub reset: Option<DateTime<Utc>>,
}

/// Phrases that say an account hit a usage limit or ran out of quota (lowercase).
const MARKERS: &[&str] = &[
    "usage limit reached",
    "hit your usage limit",
    "hit your limit",
    "limit reached ∙ resets",
    "limit reached · resets",
    "usage_limit_reached",
    "insufficient_quota",
    "exceeded your current quota",
    "terminalquotaerror",
    "exhausted your capacity",
    "exhausted your daily quota",
    "quota will reset",
];

/// The usage limit `output` reports, if any; `now` anchors relative resets ("try again in
/// 2 hours"). A wall-clock reset ("try again at 12:18 PM") is read as UTC: see
/// [`detect_local`].
pub fn detect(output: &str, now: DateTime<Utc>) -> Option<Limit> {
    detect_local(output, now, FixedOffset::east_opt(0).expect("UTC"))
}

/// [`detect`], with a wall-clock reset that names no time zone read in `local` (the
/// machine's offset, where the CLI ran): Codex CLI prints "try again at 12:18 PM".
pub fn detect_local(output: &str, now: DateTime<Utc>, local: FixedOffset) -> Option<Limit> {
    let lower = output.to_lowercase();
    let (at, _) = MARKERS
        .iter()
        .filter_map(|m| lower.rfind(m).map(|i| (i, *m)))
        .max_by_key(|(i, _)| *i)?;
    // The line holding the (last) marker, in the CLI's words.
    let start = lower[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = lower[at..].find('\n').map_or(lower.len(), |i| at + i);
    let line = output
        .get(start..end)
        .unwrap_or_default()
        .trim()
        .trim_start_matches(['■', '⎿', '✕', ' ']);
    // The reset: first from the marker's own line, else anywhere after the marker's line
    // begins (a JSON error body, a retry delay printed below).
    let reset =
        reset_in(&lower[start..end], now, local).or_else(|| reset_in(&lower[start..], now, local));
    Some(Limit {
        message: crate::text::truncate(
            &crate::text::one_line(line),
            super::failure::MAX_MESSAGE_CHARS,
        ),
        reset,
    })
}

/// The reset time a (lowercased) text gives, in any of the CLIs' forms.
fn reset_in(text: &str, now: DateTime<Utc>, local: FixedOffset) -> Option<DateTime<Utc>> {
    if let Some(rest) = after(text, "usage limit reached|") {
        if let Some(t) = leading_int(rest).and_then(epoch) {
            return Some(t);
        }
    }
    for key in ["\"resets_at\":", "resets_at="] {
        if let Some(t) = after(text, key).and_then(|r| leading_int(r.trim_start())) {
            if let Some(t) = epoch(t) {
                return Some(t);
            }
        }
    }
    for key in [
        "\"resets_in_seconds\":",
        "resets_in_seconds=",
        "retry-after:",
        "retry-after\":",
    ] {
        if let Some(secs) =
            after(text, key).and_then(|r| leading_int(r.trim_start_matches([' ', '"'])))
        {
            return Some(now + chrono::Duration::seconds(secs));
        }
    }
    if let Some(rest) = after(text, "(reset at ") {
        let token: String = rest.chars().take_while(|c| *c != ')').collect();
        if let Ok(t) = DateTime::parse_from_rfc3339(token.trim().to_uppercase().as_str()) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for key in [
        "try again in ",
        "retry in ",
        "reset after ",
        "resets in ",
        "reset in ",
        "\"retrydelay\": \"",
        "\"retrydelay\":\"",
    ] {
        if let Some(d) = after(text, key).and_then(spelled_duration) {
            return chrono::Duration::from_std(d).ok().map(|d| now + d);
        }
    }
    for key in ["try again at ", "resets at ", "reset at ", "resets "] {
        if let Some(t) = after(text, key).and_then(|r| clock_time(r, now, local)) {
            return Some(t);
        }
    }
    None
}

/// A wall-clock time at the start of `s` ("12:18 pm", "3pm", "9:30 am", "14:05") that names
/// no time zone other than UTC, as its next occurrence after `now` in `local` (UTC when it
/// says so). None for anything else, or a named zone ("3pm (europe/paris)").
fn clock_time(s: &str, now: DateTime<Utc>, local: FixedOffset) -> Option<DateTime<Utc>> {
    let digits = |t: &str| -> (String, usize) {
        let d: String = t.chars().take_while(char::is_ascii_digit).collect();
        let n = d.len();
        (d, n)
    };
    let (h, n) = digits(s);
    let mut hour: u32 = h.parse().ok().filter(|_| (1..=2).contains(&n))?;
    let mut rest = &s[n..];
    let mut minute = 0;
    if let Some(r) = rest.strip_prefix(':') {
        let (m, k) = digits(r);
        minute = m.parse().ok().filter(|_| k == 2)?;
        rest = &r[k..];
    }
    let rest = rest.trim_start();
    let (meridiem, rest) = if let Some(r) = rest.strip_prefix("am") {
        (Some(false), r)
    } else if let Some(r) = rest.strip_prefix("pm") {
        (Some(true), r)
    } else {
        (None, rest)
    };
    if meridiem.is_none() && minute == 0 && !s[..n].is_empty() && !s[n..].starts_with(':') {
        return None; // a bare number ("resets 5 …") is not a time
    }
    match meridiem {
        Some(pm) if (1..=12).contains(&hour) => hour = hour % 12 + if pm { 12 } else { 0 },
        Some(_) => return None,
        None if hour > 23 => return None,
        None => {}
    }
    if minute > 59 {
        return None;
    }
    let rest = rest.trim_start();
    let offset = if let Some(zone) = rest.strip_prefix('(') {
        let zone: String = zone.chars().take_while(|c| *c != ')').collect();
        match zone.trim() {
            "utc" | "etc/utc" | "gmt" | "etc/gmt" => FixedOffset::east_opt(0)?,
            _ => return None,
        }
    } else if rest.starts_with("utc") {
        FixedOffset::east_opt(0)?
    } else {
        local
    };
    let today = now.with_timezone(&offset).date_naive();
    let at = |d: chrono::NaiveDate| {
        d.and_hms_opt(hour, minute, 0)
            .and_then(|t| offset.from_local_datetime(&t).single())
            .map(|t| t.with_timezone(&Utc))
    };
    let t = at(today)?;
    if t > now {
        Some(t)
    } else {
        at(today.succ_opt()?)
    }
}

fn after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.rfind(key).map(|i| &text[i + key.len()..])
}

fn leading_int(s: &str) -> Option<i64> {
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Seconds (or, past year 10000 in seconds, milliseconds) since the epoch.
fn epoch(n: i64) -> Option<DateTime<Utc>> {
    let secs = if n > 100_000_000_000 { n / 1000 } else { n };
    Utc.timestamp_opt(secs, 0).single()
}

/// A duration spelled out at the start of `s`: "5 days 22 hours 11 minutes", "2h30m5s",
/// "36.7s", "1 hour and 5 minutes", "90 seconds". None when it starts with no number and
/// unit.
fn spelled_duration(s: &str) -> Option<Duration> {
    let mut total = 0.0f64;
    let mut parts = 0;
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if parts > 0 {
            rest = rest.strip_prefix("and ").unwrap_or(rest);
        }
        let num: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let Ok(n) = num.parse::<f64>() else { break };
        let after_num = rest[num.len()..].trim_start();
        let unit: String = after_num
            .chars()
            .take_while(char::is_ascii_alphabetic)
            .collect();
        let secs = match unit.as_str() {
            "ms" | "millisecond" | "milliseconds" => 0.001,
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86400.0,
            _ => break,
        };
        total += n * secs;
        parts += 1;
        rest = &after_num[unit.len()..];
    }
    (parts > 0 && total.is_finite()).then(|| Duration::from_secs_f64(total))
}

/// The error message of a deferred workstream: the CLI's words and, when known, the reset
/// in a form [`reset_of`] reads back (from the database, on `--resume`).
pub fn deferral_message(agent: &str, l: &Limit) -> String {
    match l.reset {
        Some(t) => format!(
            "usage limit of {agent}: {} (reset at {})",
            l.message,
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => format!(
            "usage limit of {agent}: {} (the CLI gave no reset time)",
            l.message
        ),
    }
}

/// The reset a [`deferral_message`] carries.
pub fn reset_of(message: &str) -> Option<DateTime<Utc>> {
    let rest = &message[message.rfind("(reset at ")? + "(reset at ".len()..];
    let token = rest.split(')').next()?;
    DateTime::parse_from_rfc3339(token.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// What dispatch does about a preset whose usage limit was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Hold its workstreams until then (the reset, or now when it has passed), then retry.
    Until(DateTime<Utc>),
    /// The reset is unknown or further away than `ws.maxWait`: the run pauses.
    Pause,
}

/// Whether to wait for `reset` (within `max_wait` of `now`) or pause.
pub fn decide(reset: Option<DateTime<Utc>>, now: DateTime<Utc>, max_wait: Duration) -> Wait {
    let Some(reset) = reset else {
        return Wait::Pause;
    };
    if reset <= now {
        return Wait::Until(now);
    }
    match (reset - now).to_std() {
        Ok(d) if d <= max_wait => Wait::Until(reset),
        _ => Wait::Pause,
    }
}

/// The latest of the resets of a paused run's deferred workstreams (None when one is not
/// known): when a `--resume` may run them all.
pub fn latest_reset(
    resets: impl IntoIterator<Item = Option<DateTime<Utc>>>,
) -> Option<DateTime<Utc>> {
    let mut latest: Option<DateTime<Utc>> = None;
    for r in resets {
        let r = r?;
        latest = Some(latest.map_or(r, |l| l.max(r)));
    }
    latest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap()
    }

    fn fixture(path: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/agents")
            .join(path);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn claude_code_says_the_reset_as_an_epoch_or_a_clock_time() {
        let l = detect(&fixture("claude/usage-limit-epoch.jsonl"), now()).unwrap();
        assert_eq!(l.reset, Some(Utc.timestamp_opt(1765108800, 0).unwrap()));
        assert!(l.message.contains("usage limit reached"), "{}", l.message);
        // A wall clock in a named zone is not guessed.
        let l = detect(&fixture("claude/usage-limit-clock.txt"), now()).unwrap();
        assert_eq!(l.reset, None);
        assert!(l.message.contains("resets 3pm"), "{}", l.message);
    }

    #[test]
    fn codex_says_try_again_in_a_spelled_duration_or_resets_in_seconds() {
        let l = detect(&fixture("codex/usage-limit.jsonl"), now()).unwrap();
        assert_eq!(
            l.reset,
            Some(now() + chrono::Duration::seconds(5 * 86400 + 22 * 3600 + 11 * 60))
        );
        assert!(
            l.message.contains("You've hit your usage limit"),
            "{}",
            l.message
        );
        let l = detect(&fixture("codex/usage-limit-reached-body.txt"), now()).unwrap();
        assert_eq!(l.reset, Some(now() + chrono::Duration::seconds(7200)));
    }

    #[test]
    fn codex_0_171_says_try_again_at_a_wall_clock_time() {
        // Captured from codex 0.171.0 at 10:18 UTC, its reset two hours ahead.
        let out = fixture("codex/usage-limit-0.171.0.jsonl");
        let at = Utc.with_ymd_and_hms(2026, 12, 7, 10, 18, 5).unwrap();
        let l = detect(&out, at).unwrap();
        assert!(l.message.contains("hit your usage limit"), "{}", l.message);
        assert_eq!(
            l.reset,
            Some(Utc.with_ymd_and_hms(2026, 12, 7, 12, 18, 0).unwrap())
        );
        // The same words printed where the clock is UTC+2: 12:18 there is 10:18 UTC, past
        // at 10:18:05, so tomorrow's.
        let plus2 = FixedOffset::east_opt(2 * 3600).unwrap();
        assert_eq!(
            detect_local(&out, at, plus2).unwrap().reset,
            Some(Utc.with_ymd_and_hms(2026, 12, 8, 10, 18, 0).unwrap())
        );
    }

    #[test]
    fn gemini_0_61_says_its_daily_quota_is_exhausted_without_a_reset() {
        let l = detect(&fixture("gemini/usage-limit-0.61.0.txt"), now()).unwrap();
        assert!(
            l.message.contains("exhausted your daily quota"),
            "{}",
            l.message
        );
        assert_eq!(l.reset, None);
    }

    #[test]
    fn clock_times_are_read_in_the_local_offset_unless_a_zone_is_named() {
        let utc = FixedOffset::east_opt(0).unwrap();
        let c = |s: &str| clock_time(s, now(), utc);
        assert_eq!(
            c("12:18 pm."),
            Some(Utc.with_ymd_and_hms(2026, 12, 7, 12, 18, 0).unwrap())
        );
        assert_eq!(
            c("3pm (utc)"),
            Some(Utc.with_ymd_and_hms(2026, 12, 7, 15, 0, 0).unwrap())
        );
        assert_eq!(
            c("9am"),
            Some(Utc.with_ymd_and_hms(2026, 12, 8, 9, 0, 0).unwrap())
        );
        assert_eq!(
            c("14:05"),
            Some(Utc.with_ymd_and_hms(2026, 12, 7, 14, 5, 0).unwrap())
        );
        assert_eq!(c("3pm (europe/paris)"), None);
        assert_eq!(c("5 days"), None);
        assert_eq!(c("13pm"), None);
    }

    #[test]
    fn gemini_says_its_quota_resets_after() {
        let l = detect(&fixture("gemini/usage-limit.txt"), now()).unwrap();
        assert_eq!(
            l.reset,
            Some(now() + chrono::Duration::seconds(2 * 3600 + 30 * 60 + 5))
        );
        assert!(l.message.contains("TerminalQuotaError"), "{}", l.message);
    }

    #[test]
    fn aider_reports_a_spent_quota_without_a_reset() {
        let l = detect(&fixture("aider/insufficient-quota.txt"), now()).unwrap();
        assert_eq!(l.reset, None);
        assert!(
            l.message.contains("exceeded your current quota"),
            "{}",
            l.message
        );
    }

    #[test]
    fn passing_rate_limits_and_other_failures_are_not_usage_limits() {
        for f in [
            "claude/rate-limited-429.jsonl",
            "codex/rate-limited-429.jsonl",
            "codex/rate-limited.jsonl",
            "gemini/rate-limited-429.txt",
            "gemini/rate-limited.jsonl",
            "aider/rate-limit-exhausted.txt",
            "aider/rate-limited.txt",
            "claude/auth-failed-401.jsonl",
            "codex/at-capacity-503.jsonl",
        ] {
            assert_eq!(detect(&fixture(f), now()), None, "{f}");
        }
    }

    #[test]
    fn durations_are_read_as_the_clis_spell_them() {
        let d = |s: &str| spelled_duration(s).map(|d| d.as_secs_f64());
        assert_eq!(d("5 days 22 hours 11 minutes."), Some(511860.0));
        assert_eq!(d("2h30m5s"), Some(9005.0));
        assert_eq!(d("36.7s\""), Some(36.7));
        assert_eq!(d("1 hour and 5 minutes"), Some(3900.0));
        assert_eq!(d("a while"), None);
    }

    #[test]
    fn the_deferral_message_carries_the_reset_back() {
        let l = Limit {
            message: "You've hit your usage limit.".into(),
            reset: Some(now()),
        };
        let m = deferral_message("codex", &l);
        assert_eq!(
            m,
            "usage limit of codex: You've hit your usage limit. (reset at 2026-12-07T10:00:00Z)"
        );
        assert_eq!(reset_of(&m), Some(now()));
        let unknown = deferral_message("claude", &Limit { reset: None, ..l });
        assert_eq!(reset_of(&unknown), None);
        // The message read back is itself a limit with its reset (a fake CLI may print it).
        assert_eq!(detect(&m, now()).unwrap().reset, Some(now()));
    }

    #[test]
    fn dispatch_waits_for_a_reset_within_max_wait_and_pauses_otherwise() {
        let max = Duration::from_secs(1800);
        let soon = now() + chrono::Duration::seconds(600);
        let late = now() + chrono::Duration::seconds(3600);
        assert_eq!(decide(Some(soon), now(), max), Wait::Until(soon));
        assert_eq!(decide(Some(late), now(), max), Wait::Pause);
        assert_eq!(decide(None, now(), max), Wait::Pause);
        let past = now() - chrono::Duration::seconds(5);
        assert_eq!(
            decide(Some(past), now(), Duration::ZERO),
            Wait::Until(now())
        );
        assert_eq!(decide(Some(soon), now(), Duration::ZERO), Wait::Pause);
        assert_eq!(latest_reset([Some(soon), Some(late)]), Some(late));
        assert_eq!(latest_reset([Some(soon), None]), None);
    }
}
