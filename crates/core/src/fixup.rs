//! Fix-ups (`--fix-up N`): a prompt workstream's branch that `git ws-merge` left out, because
//! it conflicts with the integration or breaks its tests, handed back to its agent as the
//! follow-up workstream `<id>~fixK`. This module owns their ids, their prompt (the original
//! task, the conflict hunks or the failing test tail, and what to do, bounded in size), the
//! record kept of each attempt, and the chains the report shows. Pure.

use crate::model::{ConflictHunk, IntegrationRecord, Status};
use crate::text;
use crate::Invalid;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt::Write as _;

/// The `kind` of a follow-up made by a review (`git ws-review`).
pub const KIND_REVIEW: &str = "review";
/// The `kind` of a follow-up made by `--fix-up`.
pub const KIND_FIXUP: &str = "fix-up";

/// Most bytes of conflict hunks one prompt carries (all paths together).
pub const MAX_HUNK_BYTES: usize = 16 * 1024;
/// Most bytes of one path's hunks.
pub const MAX_HUNK_BYTES_PER_PATH: usize = 4 * 1024;
/// Most bytes of the failing test output a prompt carries (its end).
pub const MAX_TAIL_BYTES: usize = 8 * 1024;
/// Most bytes of the original prompt repeated in a fix-up's prompt.
pub const MAX_ORIGINAL_PROMPT_BYTES: usize = 32 * 1024;

/// The id of attempt `attempt` (1-based) at fixing `original`: `<original>~fix<attempt>`.
pub fn fixup_id(original: &str, attempt: usize) -> String {
    format!("{original}~fix{attempt}")
}

/// `("p1", 2)` for `p1~fix2`; `None` for an id that is not a fix-up's.
pub fn parse_id(id: &str) -> Option<(&str, usize)> {
    let (original, n) = id.rsplit_once("~fix")?;
    if original.is_empty() || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((original, n.parse().ok().filter(|n| *n > 0)?))
}

/// The workstream a fix-up's chain starts from: `p1` for `p1~fix2` and for `p1`.
pub fn original_of(id: &str) -> &str {
    parse_id(id).map_or(id, |(o, _)| o)
}

/// Why a branch is handed back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Reason {
    /// It conflicts with the integration tip: the paths and, per path, both sides.
    Conflict {
        paths: Vec<String>,
        hunks: Vec<ConflictHunk>,
    },
    /// The tests fail with it merged: the command, what it failed together with, and the
    /// end of the failing run's output.
    BreaksTests {
        command: String,
        broke_with: Vec<String>,
        tail: String,
    },
}

impl Reason {
    /// `conflict` or `breaks-tests`, as in the integration's exclusions.
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::Conflict { .. } => "conflict",
            Reason::BreaksTests { .. } => "breaks-tests",
        }
    }

    /// One sentence for the record and the report.
    pub fn summary(&self) -> String {
        match self {
            Reason::Conflict { paths, .. } if paths.is_empty() => {
                "conflicts with the integration".to_string()
            }
            Reason::Conflict { paths, .. } => {
                format!("conflicts with the integration in {}", list(paths, 5))
            }
            Reason::BreaksTests {
                command,
                broke_with,
                ..
            } => {
                let with = if broke_with.is_empty() {
                    String::new()
                } else {
                    format!(" together with {}", list(broke_with, 5))
                };
                format!(
                    "breaks the tests (`{}`){with}",
                    text::truncate(&text::one_line(command), 120)
                )
            }
        }
    }
}

fn list(items: &[String], max: usize) -> String {
    if items.len() <= max {
        items.join(", ")
    } else {
        format!("{} and {} more", items[..max].join(", "), items.len() - max)
    }
}

/// What a fix-up's prompt is made from.
#[derive(Debug, Clone)]
pub struct PromptInput<'a> {
    /// The workstream whose work is handed back (the chain's first id, `p1`).
    pub original_id: &'a str,
    /// Its prompt.
    pub original_prompt: &'a str,
    /// This attempt (1-based) and the most there may be.
    pub attempt: usize,
    pub max_attempts: usize,
    pub reason: &'a Reason,
    /// The integration branch and the tip the fix-up starts from.
    pub integration_branch: &'a str,
    pub tip: &'a str,
}

/// The fix-up's prompt: what happened, where the worktree starts, the conflict hunks per
/// path (both sides, at most [`MAX_HUNK_BYTES`]) or the failing test command and the end of
/// its output (at most [`MAX_TAIL_BYTES`]), what to do, then the original task.
pub fn prompt(p: &PromptInput<'_>) -> String {
    let mut s = String::new();
    let short = &p.tip[..p.tip.len().min(10)];
    let _ = writeln!(
        s,
        "Fix-up {} of {} for workstream {} (git-ws --fix-up).\n",
        p.attempt, p.max_attempts, p.original_id
    );
    let _ = writeln!(
        s,
        "Your earlier work on the task below could not be integrated: it {}.\n",
        p.reason.summary()
    );
    let _ = writeln!(
        s,
        "This worktree starts from the integration tip {short} (branch {}) with your earlier changes applied where they merge cleanly.",
        p.integration_branch
    );
    match p.reason {
        Reason::Conflict { paths, hunks } => {
            let _ = writeln!(
                s,
                "The conflicting paths ({}) hold the integration's version: your side of each conflict is NOT in this worktree.\n",
                list(paths, 10)
            );
            s.push_str("What to do: for each conflict below, change the file so that it keeps the integration's change AND does what your side did (re-apply your side's intent on top of the integration's version; do not drop either). Leave no conflict markers. Run the tests if there are any, then commit.\n\n");
            s.push_str("## The conflicts (integration = the integration tip, base = where your branch started, the other label = your branch)\n\n");
            s.push_str(&hunks_text(paths, hunks));
        }
        Reason::BreaksTests { command, tail, .. } => {
            let _ = writeln!(
                s,
                "With your changes merged, the test command fails here.\n\nWhat to do: run `{}` in this worktree, find why it fails with your changes, fix it (keep the task below done), make it pass, then commit.\n",
                text::one_line(command)
            );
            s.push_str("## The failing test run's output (its end)\n\n```text\n");
            s.push_str(&tail_of(tail, MAX_TAIL_BYTES));
            if !tail.ends_with('\n') {
                s.push('\n');
            }
            s.push_str("```\n\n");
        }
    }
    s.push_str("## The original task\n\n");
    s.push_str(&head_of(p.original_prompt, MAX_ORIGINAL_PROMPT_BYTES));
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// The hunks, one section per path, each at most [`MAX_HUNK_BYTES_PER_PATH`], all at most
/// [`MAX_HUNK_BYTES`]; what is left out is said.
fn hunks_text(paths: &[String], hunks: &[ConflictHunk]) -> String {
    let mut s = String::new();
    let mut used = 0usize;
    let mut shown = 0usize;
    for h in hunks {
        let body = head_of(&h.text, MAX_HUNK_BYTES_PER_PATH);
        if used + body.len() > MAX_HUNK_BYTES && shown > 0 {
            break;
        }
        used += body.len();
        shown += 1;
        let fence = if body.contains("```") { "````" } else { "```" };
        let _ = writeln!(
            s,
            "### {}\n\n{fence}\n{}\n{fence}\n",
            h.path,
            body.trim_end()
        );
    }
    if shown < hunks.len() {
        let rest: Vec<&str> = hunks[shown..].iter().map(|h| h.path.as_str()).collect();
        let _ = writeln!(
            s,
            "({} more conflicting path{} not shown, to keep this prompt short: {})\n",
            rest.len(),
            if rest.len() == 1 { "" } else { "s" },
            rest.join(", ")
        );
    }
    let without: Vec<&String> = paths
        .iter()
        .filter(|p| !hunks.iter().any(|h| &h.path == *p))
        .collect();
    if !without.is_empty() {
        let _ = writeln!(
            s,
            "Also conflicting (no line-level detail): {}\n",
            without
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    s
}

/// The first `max` bytes of `s` (at a character boundary), saying how much was cut.
fn head_of(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n… ({} more bytes not shown)", &s[..end], s.len() - end)
}

/// The last `max` bytes of `s` (from a line start when one is near), saying how much was cut.
fn tail_of(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    if let Some(nl) = s[start..].find('\n') {
        start += nl + 1;
    }
    format!("… ({start} bytes before not shown)\n{}", &s[start..])
}

/// One recorded attempt at a fix-up (a row of the follow-ups of kind [`KIND_FIXUP`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixupRecord {
    /// `<original>~fixK`.
    pub followup_id: String,
    /// The original workstream.
    pub workstream_id: String,
    /// K.
    pub attempt: usize,
    /// The most attempts allowed when it was made (`--fix-up N`).
    pub max_attempts: usize,
    /// `conflict` or `breaks-tests`: why the branch before it was left out.
    pub reason: String,
    /// One sentence ([`Reason::summary`]).
    pub detail: String,
    /// The integration tip it starts from.
    pub integration_tip: String,
    /// When it was made (RFC 3339 UTC).
    pub at: String,
}

/// One attempt in a chain, with what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixupAttempt {
    pub followup_id: String,
    pub attempt: usize,
    /// Why the branch before it was left out: `conflict` or `breaks-tests`.
    pub reason: String,
    pub detail: String,
    pub integration_tip: String,
    pub at: String,
    /// `pending` (not run yet), `failed` (its workstream did not complete), `completed`
    /// (not integrated since), `integrated`, or the reason the last integration left it
    /// out (`conflict`, `breaks-tests`, …).
    pub outcome: String,
}

/// A workstream's fix-ups: original → fix1 → fix2 …
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixupChain {
    pub workstream_id: String,
    pub attempts: Vec<FixupAttempt>,
    /// The most attempts allowed (the latest attempt's `--fix-up N`).
    pub max_attempts: usize,
    /// `integrated`, `pending`, `in progress` (completed, not integrated yet), `failed`,
    /// `exhausted` (the last attempt was left out and no attempt remains), or `left out`.
    pub state: String,
}

impl FixupChain {
    /// "p1 → p1~fix1 (conflict: integrated)".
    pub fn one_line(&self) -> String {
        let mut s = self.workstream_id.clone();
        for a in &self.attempts {
            let _ = write!(s, " → {} ({}; {})", a.followup_id, a.reason, a.outcome);
        }
        s
    }
}

/// The chains of `records` (any order), with each attempt's outcome from the workstreams'
/// statuses and the latest integration. Sorted by original workstream.
pub fn chains(
    records: &[FixupRecord],
    statuses: &HashMap<String, Status>,
    integration: Option<&IntegrationRecord>,
) -> Vec<FixupChain> {
    let mut by_original: Vec<(String, Vec<&FixupRecord>)> = Vec::new();
    for r in records {
        match by_original.iter_mut().find(|(o, _)| *o == r.workstream_id) {
            Some((_, v)) => v.push(r),
            None => by_original.push((r.workstream_id.clone(), vec![r])),
        }
    }
    by_original.sort_by(|a, b| crate::consolidate::natural_cmp(&a.0, &b.0));
    by_original
        .into_iter()
        .map(|(original, mut rs)| {
            rs.sort_by_key(|r| r.attempt);
            let attempts: Vec<FixupAttempt> = rs
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let mut outcome = outcome(&r.followup_id, statuses, integration);
                    // A completed attempt the latest integration no longer mentions was
                    // left out by an earlier one, for the reason the next attempt gives.
                    if let (Some(next), "completed") = (rs.get(i + 1), outcome.as_str()) {
                        outcome = next.reason.clone();
                    }
                    FixupAttempt {
                        followup_id: r.followup_id.clone(),
                        attempt: r.attempt,
                        reason: r.reason.clone(),
                        detail: r.detail.clone(),
                        integration_tip: r.integration_tip.clone(),
                        at: r.at.clone(),
                        outcome,
                    }
                })
                .collect();
            let last = rs.last().expect("a chain has an attempt");
            let max_attempts = last.max_attempts;
            let last_outcome = attempts.last().map_or("", |a| a.outcome.as_str());
            let state = match last_outcome {
                "integrated" | "pending" | "failed" => last_outcome.to_string(),
                "completed" => "in progress".to_string(),
                _ if last.attempt >= max_attempts => "exhausted".to_string(),
                _ => "left out".to_string(),
            };
            FixupChain {
                workstream_id: original,
                attempts,
                max_attempts,
                state,
            }
        })
        .collect()
}

/// What became of one attempt (see [`FixupAttempt::outcome`]).
fn outcome(
    id: &str,
    statuses: &HashMap<String, Status>,
    integration: Option<&IntegrationRecord>,
) -> String {
    match statuses.get(id) {
        None | Some(Status::Deferred) => return "pending".to_string(),
        Some(Status::Completed) => {}
        Some(_) => return "failed".to_string(),
    }
    let Some(it) = integration.filter(|it| !it.dry_run) else {
        return "completed".to_string();
    };
    if it.merged.iter().any(|m| m == id) {
        return "integrated".to_string();
    }
    match it.excluded.iter().find(|x| x.workstream_id == id) {
        Some(x) => x.reason.clone(),
        None => "completed".to_string(),
    }
}

/// Among completed workstream ids, the ones a fix-up supersedes: for each original with a
/// completed fix-up, the original and every earlier attempt (the latest completed attempt
/// is integrated in their place). Ids that are not part of a chain are never superseded.
pub fn superseded(completed: &[String]) -> Vec<String> {
    let mut latest: HashMap<&str, usize> = HashMap::new();
    for id in completed {
        if let Some((o, k)) = parse_id(id) {
            let e = latest.entry(o).or_insert(k);
            *e = (*e).max(k);
        }
    }
    completed
        .iter()
        .filter(|id| {
            let (o, k) = parse_id(id).unwrap_or((id.as_str(), 0));
            latest.get(o).is_some_and(|l| *l > k)
        })
        .cloned()
        .collect()
}

/// Whether `id` may be fixed up (again): the next attempt number for its chain, or why not.
/// `attempts_so_far` is how many fix-ups its original already has.
pub fn next_attempt(id: &str, attempts_so_far: usize, max: usize) -> Result<usize, Invalid> {
    if max == 0 {
        return Err(Invalid::new("fix-ups are off"));
    }
    if id.contains('~') && parse_id(id).is_none() {
        return Err(Invalid::new("a review follow-up is not fixed up"));
    }
    if attempts_so_far >= max {
        return Err(Invalid::new(format!(
            "no fix-up: attempts exhausted ({attempts_so_far} of {max})"
        )));
    }
    Ok(attempts_so_far + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conflict() -> Reason {
        Reason::Conflict {
            paths: vec!["src/a.txt".into(), "bin.dat".into()],
            hunks: vec![ConflictHunk {
                path: "src/a.txt".into(),
                text: "<<<<<<< integration\nmain side\n||||||| base\nold\n=======\nmy side\n>>>>>>> p1".into(),
            }],
        }
    }

    fn input<'a>(reason: &'a Reason) -> PromptInput<'a> {
        PromptInput {
            original_id: "p1",
            original_prompt: "Add a greeting to src/a.txt",
            attempt: 1,
            max_attempts: 2,
            reason,
            integration_branch: "ws/r1/integration",
            tip: "0123456789abcdef0123",
        }
    }

    #[test]
    fn ids_round_trip_and_other_ids_are_not_fix_ups() {
        assert_eq!(fixup_id("p1", 2), "p1~fix2");
        assert_eq!(parse_id("p1~fix2"), Some(("p1", 2)));
        assert_eq!(parse_id("a~b~fix10"), Some(("a~b", 10)));
        for no in ["p1", "p1~review1", "p1~fix", "~fix1", "p1~fix0", "p1~fixx"] {
            assert_eq!(parse_id(no), None, "{no}");
        }
        assert_eq!(original_of("p1~fix3"), "p1");
        assert_eq!(original_of("p1"), "p1");
    }

    #[test]
    fn a_conflict_prompt_carries_both_sides_per_path_and_the_original_task() {
        let r = conflict();
        let p = prompt(&input(&r));
        assert!(p.starts_with("Fix-up 1 of 2 for workstream p1"), "{p}");
        assert!(p.contains("integration tip 0123456789 (branch ws/r1/integration)"));
        assert!(p.contains("### src/a.txt"));
        assert!(p.contains("main side") && p.contains("my side") && p.contains("||||||| base"));
        assert!(p.contains("Also conflicting (no line-level detail): bin.dat"));
        assert!(p.contains("## The original task\n\nAdd a greeting to src/a.txt"));
        assert!(p.contains("conflicts with the integration in src/a.txt, bin.dat"));
        assert!(!p.contains("test command"));
    }

    #[test]
    fn a_test_break_prompt_carries_the_command_and_the_end_of_its_output() {
        let r = Reason::BreaksTests {
            command: "make check".into(),
            broke_with: vec!["p0".into()],
            tail: "ok 1\nnot ok 2 - greeting\n".into(),
        };
        let p = prompt(&input(&r));
        assert!(p.contains("run `make check` in this worktree"), "{p}");
        assert!(p.contains("```text\nok 1\nnot ok 2 - greeting\n```"), "{p}");
        assert!(p.contains("breaks the tests (`make check`) together with p0"));
        assert!(!p.contains("## The conflicts"));
    }

    #[test]
    fn the_prompt_is_bounded_whatever_the_hunks_and_the_tail() {
        let big = "x".repeat(100_000);
        let hunks: Vec<ConflictHunk> = (0..40)
            .map(|i| ConflictHunk {
                path: format!("f{i}"),
                text: big.clone(),
            })
            .collect();
        let r = Reason::Conflict {
            paths: hunks.iter().map(|h| h.path.clone()).collect(),
            hunks,
        };
        let p = prompt(&input(&r));
        assert!(p.len() < MAX_HUNK_BYTES + 4096, "{}", p.len());
        assert!(p.contains("more conflicting paths not shown"));
        let r = Reason::BreaksTests {
            command: "t".into(),
            broke_with: vec![],
            tail: format!("{big}\nLAST LINE\n"),
        };
        let p = prompt(&input(&r));
        assert!(p.len() < MAX_TAIL_BYTES + 4096, "{}", p.len());
        assert!(p.contains("LAST LINE") && p.contains("bytes before not shown"));
    }

    #[test]
    fn attempts_are_bounded_per_original_and_review_follow_ups_are_not_fixed_up() {
        assert_eq!(next_attempt("p1", 0, 2), Ok(1));
        assert_eq!(next_attempt("p1~fix1", 1, 2), Ok(2));
        assert_eq!(
            next_attempt("p1~fix2", 2, 2),
            Err(Invalid::new("no fix-up: attempts exhausted (2 of 2)"))
        );
        assert!(next_attempt("p1", 0, 0).is_err());
        assert!(next_attempt("p1~review1", 0, 3).is_err());
    }

    #[test]
    fn the_latest_completed_attempt_supersedes_the_original_and_earlier_attempts() {
        let ids: Vec<String> = ["p1", "p1~fix1", "p1~fix2", "p2", "p3~review1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(superseded(&ids), vec!["p1", "p1~fix1"]);
        assert!(superseded(&ids[3..]).is_empty());
    }

    #[test]
    fn chains_say_what_became_of_each_attempt() {
        let rec = |id: &str, k: usize, max: usize| FixupRecord {
            followup_id: id.into(),
            workstream_id: "p1".into(),
            attempt: k,
            max_attempts: max,
            reason: "conflict".into(),
            detail: "conflicts with the integration in a".into(),
            integration_tip: "t".into(),
            at: "now".into(),
        };
        let mut st = HashMap::new();
        let c = chains(&[rec("p1~fix1", 1, 1)], &st, None);
        assert_eq!(c[0].state, "pending");
        st.insert("p1~fix1".to_string(), Status::Completed);
        let c = chains(&[rec("p1~fix1", 1, 1)], &st, None);
        assert_eq!(c[0].state, "in progress");
        let mut it = crate::view::fixture::integration();
        it.merged = vec!["p1~fix1".into()];
        let c = chains(&[rec("p1~fix1", 1, 1)], &st, Some(&it));
        assert_eq!(c[0].state, "integrated");
        assert_eq!(c[0].one_line(), "p1 → p1~fix1 (conflict; integrated)");
        it.merged.clear();
        it.excluded[0].workstream_id = "p1~fix1".into();
        it.excluded[0].reason = "conflict".into();
        let c = chains(&[rec("p1~fix1", 1, 1)], &st, Some(&it));
        assert_eq!(c[0].state, "exhausted");
        let c = chains(&[rec("p1~fix1", 1, 2)], &st, Some(&it));
        assert_eq!(c[0].state, "left out");
        st.insert("p1~fix1".to_string(), Status::Failed);
        assert_eq!(
            chains(&[rec("p1~fix1", 1, 2)], &st, None)[0].state,
            "failed"
        );
        // fix1 completed, left out (breaks-tests) then; fix2 pending now.
        st.insert("p1~fix1".to_string(), Status::Completed);
        let mut second = rec("p1~fix2", 2, 2);
        second.reason = "breaks-tests".into();
        let c = chains(&[second, rec("p1~fix1", 1, 2)], &st, None);
        assert_eq!(
            c[0].one_line(),
            "p1 → p1~fix1 (conflict; breaks-tests) → p1~fix2 (breaks-tests; pending)"
        );
        assert_eq!(c[0].state, "pending");
    }
}
