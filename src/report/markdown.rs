//! The Markdown run report: one writer per section, each appending to one `String`.

use super::escape::{escape_inline as esc, fenced_with, mermaid_name};
use super::table::{md_header, md_row};
use super::{ReportModel, Section};
use crate::consolidate::{agent_order, natural_cmp, ordered_results, Consolidated};
use crate::model::{ErrorType, PairForecast, Status, WorkstreamResult};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// Long tables (files, commits, tests, timeline) show at most this many rows.
pub const MAX_TABLE_ROWS: usize = 500;
/// At most this many errors (and warnings) are shown in detail.
pub const MAX_ERROR_DETAILS: usize = 200;
/// At most this many conflicting pairs are shown with their hunks.
pub const MAX_CONFLICT_DETAILS: usize = 100;
/// Output tails in the error analysis keep at most this many last lines …
pub const MAX_TAIL_LINES: usize = 60;
/// … and at most this many bytes.
pub const MAX_TAIL_BYTES: usize = 8_000;

/// Seconds as `12.3 s`, `2m 05s` or `1h 02m 03s`.
pub fn fmt_secs(s: f64) -> String {
    let s = if s.is_finite() { s.max(0.0) } else { 0.0 };
    if s < 60.0 {
        return format!("{s:.1} s");
    }
    let t = s.round() as u64;
    let (h, m, sec) = (t / 3600, t / 60 % 60, t % 60);
    if h > 0 {
        format!("{h}h {m:02}m {sec:02}s")
    } else {
        format!("{m}m {sec:02}s")
    }
}

fn pct(n: usize, total: usize) -> String {
    if total == 0 {
        "0.0%".to_string()
    } else {
        format!("{:.1}%", n as f64 * 100.0 / total as f64)
    }
}

fn short_sha(s: &str) -> String {
    esc(&s.chars().take(7).collect::<String>())
}

fn status_marker(s: Status) -> &'static str {
    match s {
        Status::Completed => "ok",
        Status::Failed => "**FAILED**",
        Status::Skipped => "skipped",
    }
}

/// Items to show in a capped table: all of them when they fit, otherwise the `important`
/// ones first (in their order), then the rest, up to `cap`.
fn capped<T>(items: &[T], cap: usize, important: impl Fn(&T) -> bool) -> Vec<&T> {
    if items.len() <= cap {
        return items.iter().collect();
    }
    let mut v: Vec<&T> = items.iter().filter(|x| important(x)).take(cap).collect();
    let room = cap - v.len();
    v.extend(items.iter().filter(|x| !important(x)).take(room));
    v
}

fn cap_note(out: &mut String, shown: usize, total: usize, what: &str, first: &str) {
    if shown < total {
        let _ = writeln!(
            out,
            "\n_Showing {shown} of {total} {what}{first}; the database has them all._"
        );
    }
}

fn last_lines(s: &str) -> &str {
    let mut start = s.len().saturating_sub(MAX_TAIL_BYTES);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    let s = &s[start..];
    let trimmed = s.trim_end_matches('\n');
    match trimmed.rmatch_indices('\n').nth(MAX_TAIL_LINES - 1) {
        Some((i, _)) => &trimmed[i + 1..],
        None => trimmed,
    }
}

/// Title line and one-line verdict.
pub(super) fn write_title(out: &mut String, m: &ReportModel<'_>) {
    let c = m.consolidated;
    let _ = writeln!(out, "# Multi-agent run {}\n", esc(&c.run.run_id));
    let conflicts = c
        .forecast
        .pairs
        .iter()
        .filter(|p| !p.conflict_paths.is_empty())
        .count();
    let verdict = if c.total_workstreams == 0 {
        "no workstreams ran.".to_string()
    } else if c.all_completed() && conflicts == 0 {
        format!(
            "all {} workstreams completed; ready for merge.",
            c.total_workstreams
        )
    } else if c.all_completed() {
        format!(
            "all {} workstreams completed; {} conflicting pairs to resolve while merging (see Merge forecast).",
            c.total_workstreams, conflicts
        )
    } else {
        format!(
            "{} of {} workstreams completed; {} failed, {} skipped.",
            c.completed, c.total_workstreams, c.failed, c.skipped
        )
    };
    let _ = writeln!(out, "**Verdict:** {verdict}\n");
}

pub(super) fn write_section(out: &mut String, m: &ReportModel<'_>, s: Section) {
    let _ = writeln!(out, "## {}\n", s.title());
    match s {
        Section::Summary => summary(out, m.consolidated),
        Section::Agents => agents(out, m),
        Section::Workstreams => workstreams(out, m),
        Section::Errors => errors(out, m),
        Section::Files => files(out, m.consolidated),
        Section::Commits => commits(out, m.consolidated),
        Section::Tests => tests(out, m),
        Section::Forecast => forecast(out, m.consolidated),
        Section::Recommendations => recommendations(out, m.consolidated),
        Section::Timeline => timeline(out, m),
    }
    out.push('\n');
}

fn summary(out: &mut String, c: &Consolidated) {
    let t = c.total_workstreams;
    let tests = &c.tests;
    let speedup = if c.wall_seconds > 0.0 {
        format!("{:.2}x", c.speedup())
    } else {
        "n/a".to_string()
    };
    let mut rows: Vec<(&str, String)> = vec![
        ("Workstreams", t.to_string()),
        (
            "Completed",
            format!("{} ({})", c.completed, pct(c.completed, t)),
        ),
        ("Failed", format!("{} ({})", c.failed, pct(c.failed, t))),
        ("Skipped", format!("{} ({})", c.skipped, pct(c.skipped, t))),
        ("Unique files modified", c.files.len().to_string()),
        (
            "Files touched by more than one workstream",
            c.overlaps.len().to_string(),
        ),
        ("Commits", c.commits.len().to_string()),
        ("Errors", c.total_errors.to_string()),
        ("Warnings", c.total_warnings.to_string()),
        (
            "Tests passed / failed / skipped",
            format!(
                "{} / {} / {} ({} of {} tested workstreams passing)",
                tests.passed,
                tests.failed,
                tests.skipped,
                tests.workstreams_passed,
                tests.workstreams_tested
            ),
        ),
        ("Wall time", fmt_secs(c.wall_seconds)),
        ("Busy time (sum of durations)", fmt_secs(c.busy_seconds)),
        ("Parallel speed-up (busy / wall)", speedup),
        (
            "Coordinator overhead per workstream",
            c.overhead_seconds.map_or("n/a".to_string(), |o| {
                format!(
                    "{:.0} ms (branch, git, database; outside the commands)",
                    o * 1000.0
                )
            }),
        ),
        (
            "Base commit",
            format!("{} ({})", short_sha(&c.run.base), esc(&c.run.base_rev)),
        ),
        ("Agents", c.run.agents.to_string()),
        (
            "Started",
            c.run.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        ),
    ];
    if let Some(f) = c.run.finished_at {
        rows.push(("Finished", f.format("%Y-%m-%d %H:%M:%S UTC").to_string()));
    }
    if let Some(r) = &c.run.rerun_of {
        rows.push(("Rerun of", esc(r)));
    }
    md_header(out, &["Metric", "Value"]);
    for (k, v) in rows {
        md_row(out, &[k, v.as_str()]);
    }
}

/// Results grouped by agent id, each group in result order.
fn by_agent<'a>(results: &[&'a WorkstreamResult]) -> HashMap<&'a str, Vec<&'a WorkstreamResult>> {
    let mut g: HashMap<&str, Vec<&WorkstreamResult>> = HashMap::new();
    for r in results {
        g.entry(r.agent_id.as_str()).or_default().push(r);
    }
    g
}

/// Agent ids in display order: the consolidated agents, then any others in the results.
fn agent_ids<'a>(c: &'a Consolidated, present: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut ids: Vec<&str> = c.agents.iter().map(|a| a.agent_id.as_str()).collect();
    let known: HashSet<&str> = ids.iter().copied().collect();
    let mut extra: Vec<&str> = present.filter(|k| !known.contains(k)).collect();
    extra.sort_by(|a, b| agent_order(a, b));
    ids.extend(extra);
    ids
}

fn agents(out: &mut String, m: &ReportModel<'_>) {
    let c = m.consolidated;
    md_header(
        out,
        &[
            "Agent",
            "Workstreams",
            "Completed",
            "Failed",
            "Skipped",
            "Busy",
            "Utilisation",
            "Avg duration",
        ],
    );
    for a in &c.agents {
        md_row(
            out,
            &[
                esc(&a.agent_id),
                a.total.to_string(),
                a.completed.to_string(),
                a.failed.to_string(),
                a.skipped.to_string(),
                fmt_secs(a.busy_seconds),
                format!("{:.1}%", a.utilisation * 100.0),
                fmt_secs(a.avg_duration),
            ],
        );
    }
    let ordered = ordered_results(m.results);
    let groups = by_agent(&ordered);
    if groups.is_empty() {
        return;
    }
    out.push_str("\n### Workstreams per agent\n\n");
    for id in agent_ids(c, groups.keys().copied()) {
        let list = groups.get(id).map(Vec::as_slice).unwrap_or(&[]);
        let _ = write!(out, "- **{}** ({}): ", esc(id), list.len());
        if list.is_empty() {
            out.push_str("idle");
        }
        for (i, r) in list.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&esc(&r.workstream_id));
            if r.status != Status::Completed {
                let _ = write!(out, " ({})", r.status);
            }
        }
        out.push('\n');
    }
}

fn workstreams(out: &mut String, m: &ReportModel<'_>) {
    if m.results.is_empty() {
        out.push_str("No workstreams.\n");
        return;
    }
    md_header(
        out,
        &[
            "ID", "Title", "Agent", "Status", "Duration", "Files", "Commits", "Branch",
        ],
    );
    for r in ordered_results(m.results) {
        let dur = if r.start_time.is_some() {
            fmt_secs(r.duration_seconds)
        } else {
            "n/a".to_string()
        };
        md_row(
            out,
            &[
                esc(&r.workstream_id),
                esc(r.title.as_deref().unwrap_or("")),
                esc(&r.agent_id),
                status_marker(r.status).to_string(),
                dur,
                r.files.len().to_string(),
                r.commits.len().to_string(),
                esc(r.branch.as_deref().unwrap_or("")),
            ],
        );
    }
}

fn errors(out: &mut String, m: &ReportModel<'_>) {
    let c = m.consolidated;
    if c.total_errors == 0 && c.total_warnings == 0 {
        out.push_str("No errors or warnings.\n");
        return;
    }
    if c.errors_by_type.is_empty() {
        out.push_str("No errors.\n");
    } else {
        md_header(out, &["Error type", "Count"]);
        for (t, n) in &c.errors_by_type {
            md_row(out, &[esc(t), n.to_string()]);
        }
    }
    let ordered = ordered_results(m.results);
    let mut shown = 0;
    let mut total = 0;
    for r in ordered.iter().filter(|r| !r.errors.is_empty()) {
        for (i, e) in r.errors.iter().enumerate() {
            total += 1;
            if shown >= MAX_ERROR_DETAILS {
                continue;
            }
            if shown == 0 {
                out.push_str("\n### Errors\n");
            }
            shown += 1;
            let _ = writeln!(
                out,
                "\n**{}** (agent {}), {}: {}",
                esc(&r.workstream_id),
                esc(&r.agent_id),
                e.error_type,
                esc(&e.message)
            );
            let trace = e.stack_trace.as_deref().or(
                if i == 0
                    && matches!(
                        e.error_type,
                        ErrorType::CommandFailed | ErrorType::Timeout | ErrorType::TestFailed
                    )
                {
                    r.output_tail.as_deref()
                } else {
                    None
                },
            );
            if let Some(t) = trace.map(last_lines).filter(|t| !t.trim().is_empty()) {
                out.push('\n');
                out.push_str(&fenced_with("text", t));
            }
        }
    }
    cap_note(out, shown, total, "errors", "");
    let warned: Vec<&&WorkstreamResult> =
        ordered.iter().filter(|r| !r.warnings.is_empty()).collect();
    if !warned.is_empty() {
        out.push_str("\n### Warnings\n\n");
        let mut shown = 0;
        for r in warned {
            for w in &r.warnings {
                if shown < MAX_ERROR_DETAILS {
                    let _ = writeln!(out, "- **{}**: {}", esc(&r.workstream_id), esc(w));
                    shown += 1;
                }
            }
        }
        cap_note(out, shown, c.total_warnings, "warnings", "");
    }
}

fn files(out: &mut String, c: &Consolidated) {
    if c.files.is_empty() {
        out.push_str("No files were modified.\n");
        return;
    }
    let _ = writeln!(
        out,
        "{} unique files; {} touched by more than one workstream.\n",
        c.files.len(),
        c.overlaps.len()
    );
    md_header(out, &["Path", "Change", "+/-", "Workstreams", "Overlap"]);
    let rows = capped(&c.files, MAX_TABLE_ROWS, |f| f.workstreams.len() > 1);
    for f in &rows {
        let mut path = esc(&f.path);
        if !f.old_paths.is_empty() {
            let olds: Vec<String> = f.old_paths.iter().map(|p| esc(p)).collect();
            let _ = write!(path, " (from {})", olds.join(", "));
        }
        let kinds: Vec<&str> = f.kinds.iter().map(|k| k.as_str()).collect();
        let ws: Vec<String> = f.workstreams.iter().map(|w| esc(w)).collect();
        md_row(
            out,
            &[
                path,
                kinds.join(", "),
                format!("+{} / -{}", f.additions, f.deletions),
                ws.join(", "),
                if f.workstreams.len() > 1 {
                    "overlap"
                } else {
                    ""
                }
                .to_string(),
            ],
        );
    }
    cap_note(
        out,
        rows.len(),
        c.files.len(),
        "files",
        ", overlapping files first",
    );
}

fn commits(out: &mut String, c: &Consolidated) {
    if c.commits.is_empty() {
        out.push_str("No commits were created.\n");
        return;
    }
    md_header(out, &["#", "Commit", "Workstream"]);
    let rows = capped(&c.commits, MAX_TABLE_ROWS, |_| false);
    for (i, k) in rows.iter().enumerate() {
        md_row(
            out,
            &[
                (i + 1).to_string(),
                short_sha(&k.sha),
                esc(&k.workstream_id),
            ],
        );
    }
    cap_note(out, rows.len(), c.commits.len(), "commits", "");
}

fn opt(n: Option<u64>) -> String {
    n.map_or_else(|| "n/a".to_string(), |n| n.to_string())
}

fn tests(out: &mut String, m: &ReportModel<'_>) {
    let t = &m.consolidated.tests;
    if t.workstreams_tested == 0 {
        out.push_str("No workstream ran tests.\n");
        return;
    }
    let _ = writeln!(
        out,
        "{} of {} tested workstreams passed; {} tests passed, {} failed, {} skipped.\n",
        t.workstreams_passed, t.workstreams_tested, t.passed, t.failed, t.skipped
    );
    let tested: Vec<&WorkstreamResult> = ordered_results(m.results)
        .into_iter()
        .filter(|r| r.test_results.is_some())
        .collect();
    md_header(
        out,
        &[
            "Workstream",
            "Command",
            "Passed",
            "Failed",
            "Skipped",
            "Exit code",
            "Result",
        ],
    );
    let rows = capped(&tested, MAX_TABLE_ROWS, |r| {
        r.test_results.as_ref().is_some_and(|t| !t.succeeded())
    });
    for r in &rows {
        let Some(tr) = &r.test_results else { continue };
        md_row(
            out,
            &[
                esc(&r.workstream_id),
                esc(&tr.command),
                opt(tr.passed),
                opt(tr.failed),
                opt(tr.skipped),
                tr.exit_code
                    .map_or_else(|| "n/a".to_string(), |c| c.to_string()),
                if tr.succeeded() { "ok" } else { "**FAILED**" }.to_string(),
            ],
        );
    }
    cap_note(
        out,
        rows.len(),
        tested.len(),
        "tested workstreams",
        ", failing ones first",
    );
}

fn esc_list(items: &[String]) -> String {
    items.iter().map(|s| esc(s)).collect::<Vec<_>>().join(", ")
}

fn forecast(out: &mut String, c: &Consolidated) {
    let fc = &c.forecast;
    let mut pairs: Vec<&PairForecast> = fc.pairs.iter().collect();
    pairs.sort_by(|x, y| natural_cmp(&x.a, &y.a).then_with(|| natural_cmp(&x.b, &y.b)));
    let (conflicting, clean): (Vec<&PairForecast>, Vec<&PairForecast>) = pairs
        .into_iter()
        .partition(|p| !p.conflict_paths.is_empty());
    if conflicting.is_empty() && clean.is_empty() {
        out.push_str("No overlapping workstreams.\n");
        if !c.overlaps.is_empty() {
            let _ = writeln!(
                out,
                "\n{} files were touched by more than one workstream, but the forecast merges only completed branches and found no overlap among them.",
                c.overlaps.len()
            );
        }
    }
    if !conflicting.is_empty() {
        out.push_str("### Conflicts\n");
        for p in conflicting.iter().take(MAX_CONFLICT_DETAILS) {
            let _ = writeln!(
                out,
                "\n**{}** and **{}** conflict in {}.",
                esc(&p.a),
                esc(&p.b),
                esc_list(&p.conflict_paths)
            );
            for h in &p.hunks {
                let _ = writeln!(out, "\n{}:\n", esc(&h.path));
                out.push_str(&fenced_with("diff", &h.text));
            }
        }
        if conflicting.len() > MAX_CONFLICT_DETAILS {
            let _ = writeln!(
                out,
                "\n_{} more conflicting pairs are not shown._",
                conflicting.len() - MAX_CONFLICT_DETAILS
            );
        }
        out.push('\n');
    }
    if !clean.is_empty() {
        out.push_str("### Overlaps that merge cleanly\n\n");
        md_header(out, &["Workstreams", "Common paths"]);
        let rows = capped(&clean, MAX_TABLE_ROWS, |_| false);
        for p in &rows {
            md_row(
                out,
                &[
                    format!("{}, {}", esc(&p.a), esc(&p.b)),
                    esc_list(&p.common_paths),
                ],
            );
        }
        cap_note(out, rows.len(), clean.len(), "clean pairs", "");
        out.push('\n');
    }
    if !fc.merge_order.is_empty() {
        // For each step, the earlier steps it conflicts with.
        let conflict_of: HashSet<(&str, &str)> = fc
            .pairs
            .iter()
            .filter(|p| !p.conflict_paths.is_empty())
            .flat_map(|p| [(p.a.as_str(), p.b.as_str()), (p.b.as_str(), p.a.as_str())])
            .collect();
        let partners: HashMap<&str, Vec<&str>> = {
            let mut h: HashMap<&str, Vec<&str>> = HashMap::new();
            for (a, b) in &conflict_of {
                h.entry(a).or_default().push(b);
            }
            h
        };
        let position: HashMap<&str, usize> = fc
            .merge_order
            .iter()
            .enumerate()
            .map(|(i, s)| (s.workstream_id.as_str(), i))
            .collect();
        out.push_str("### Suggested merge order\n\n");
        for (i, s) in fc.merge_order.iter().enumerate() {
            let _ = write!(out, "{}. {}: ", i + 1, esc(&s.workstream_id));
            if s.clean {
                out.push_str("clean");
            } else {
                let mut after: Vec<&str> = partners
                    .get(s.workstream_id.as_str())
                    .map(|v| {
                        v.iter()
                            .copied()
                            .filter(|p| position.get(p).is_some_and(|&j| j < i))
                            .collect()
                    })
                    .unwrap_or_default();
                after.sort_by(|a, b| position[a].cmp(&position[b]));
                out.push_str("needs rebase");
                if !after.is_empty() {
                    let names: Vec<String> = after.iter().map(|a| esc(a)).collect();
                    let _ = write!(out, " after {}", names.join(", "));
                }
                if !s.conflict_paths.is_empty() {
                    let _ = write!(out, " (conflicts in {})", esc_list(&s.conflict_paths));
                }
            }
            out.push('\n');
        }
    }
}

fn recommendations(out: &mut String, c: &Consolidated) {
    if c.recommendations.is_empty() {
        out.push_str("No recommendations.\n");
    }
    for r in &c.recommendations {
        let _ = writeln!(out, "- {}", super::escape::escape_with_code_spans(r));
    }
}

fn timeline(out: &mut String, m: &ReportModel<'_>) {
    let c = m.consolidated;
    let started: Vec<&WorkstreamResult> = ordered_results(m.results)
        .into_iter()
        .filter(|r| r.start_time.is_some())
        .collect();
    if started.is_empty() {
        out.push_str("No workstream started.\n");
        return;
    }
    let shown = capped(&started, MAX_TABLE_ROWS, |_| false);
    let ms = |r: &WorkstreamResult| {
        let s = r.start_time.map_or(0, |t| t.timestamp_millis());
        let e = r.end_time.map_or_else(
            || s + (r.duration_seconds.max(0.0) * 1000.0) as i64,
            |t| t.timestamp_millis(),
        );
        (s, e.max(s + 1))
    };
    let origin = shown
        .iter()
        .map(|r| ms(r).0)
        .min()
        .unwrap_or(0)
        .min(c.run.started_at.timestamp_millis());

    // Gantt chart: one section per agent; completed `done`, failed `crit`, skipped omitted.
    let _ = writeln!(
        out,
        "```mermaid\ngantt\n    title {}\n    dateFormat x\n    axisFormat %H:%M:%S",
        mermaid_name(&format!("Run {}", c.run.run_id))
    );
    let mut groups: HashMap<&str, Vec<(usize, &WorkstreamResult)>> = HashMap::new();
    for (i, r) in shown.iter().enumerate() {
        if r.status != Status::Skipped {
            groups.entry(r.agent_id.as_str()).or_default().push((i, r));
        }
    }
    for id in agent_ids(c, groups.keys().copied()) {
        let Some(list) = groups.get(id) else { continue };
        let _ = writeln!(out, "    section {}", mermaid_name(id));
        for (i, r) in list {
            let (s, e) = ms(r);
            let tag = if r.status == Status::Failed {
                "crit"
            } else {
                "done"
            };
            let _ = writeln!(
                out,
                "    {} :{tag}, t{i}, {s}, {e}",
                mermaid_name(&r.workstream_id)
            );
        }
    }
    out.push_str("```\n\n");

    md_header(
        out,
        &["Start", "End", "Duration", "Agent", "Workstream", "Status"],
    );
    for r in &shown {
        let (s, e) = ms(r);
        md_row(
            out,
            &[
                format!("+{}", fmt_secs((s - origin) as f64 / 1000.0)),
                format!("+{}", fmt_secs((e - origin) as f64 / 1000.0)),
                fmt_secs(r.duration_seconds),
                esc(&r.agent_id),
                esc(&r.workstream_id),
                status_marker(r.status).to_string(),
            ],
        );
    }
    cap_note(out, shown.len(), started.len(), "started workstreams", "");
}

#[cfg(test)]
mod tests {
    use super::super::{render_markdown, render_section_markdown, ReportModel, Section};
    use super::*;
    use crate::consolidate::consolidate;
    use crate::model::{
        ChangeKind, ConflictHunk, FileChange, Forecast, MergeStep, RunInfo, TestResults, WsError,
        UNASSIGNED_AGENT,
    };
    use chrono::{DateTime, Duration, TimeZone, Utc};

    const HOSTILE: &str = "evil | title ``` </details> <script>x</script>\n# heading\n[x](javascript:alert(1)) *b* _i_ 1. a";

    fn t0() -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_732_400_000_000).unwrap()
    }

    fn run(agents: usize) -> RunInfo {
        RunInfo {
            run_id: "ma-run-20241123-221320".into(),
            started_at: t0(),
            finished_at: Some(t0() + Duration::seconds(30)),
            agents,
            base: "0123456789abcdef0123456789abcdef01234567".into(),
            base_rev: "HEAD".into(),
            repo_root: "/repo".into(),
            rerun_of: Some("ma-run-20241122-101010".into()),
        }
    }

    fn res(id: &str, agent: &str, st: Status, start: i64, dur: i64) -> WorkstreamResult {
        let mut r = WorkstreamResult::new("ma-run-20241123-221320", agent, id, st);
        r.start_time = Some(t0() + Duration::seconds(start));
        r.end_time = Some(t0() + Duration::seconds(start + dur));
        r.duration_seconds = dur as f64;
        r.branch = Some(format!("ws/ma-run-20241123-221320/{id}"));
        r
    }

    fn fixture() -> (Vec<WorkstreamResult>, Forecast) {
        let mut a = res("ws-01", "agent-1", Status::Completed, 0, 5);
        a.title = Some("Add retries".into());
        a.files = vec![
            FileChange {
                path: "src/a|b.rs".into(),
                old_path: None,
                kind: ChangeKind::Modified,
                additions: 3,
                deletions: 1,
            },
            FileChange {
                path: "new.rs".into(),
                old_path: Some("old`s.rs".into()),
                kind: ChangeKind::Renamed,
                additions: 0,
                deletions: 0,
            },
        ];
        a.commits = vec!["a".repeat(40)];
        a.test_results = Some(TestResults {
            command: "cargo test | tee".into(),
            exit_code: Some(0),
            passed: Some(7),
            failed: Some(0),
            skipped: None,
            ..TestResults::default()
        });
        a.warnings = vec!["committed | uncommitted\nchanges".into()];
        let mut b = res("ws:#;x", "agent-2", Status::Failed, 1, 10);
        b.title = Some(HOSTILE.into());
        b.files = vec![FileChange {
            path: "src/a|b.rs".into(),
            old_path: None,
            kind: ChangeKind::Modified,
            additions: 1,
            deletions: 1,
        }];
        b.commits = vec!["b".repeat(40)];
        b.errors = vec![WsError::new(ErrorType::CommandFailed, HOSTILE)
            .with_trace("| not a table\n```\n</details>\n# not a heading\n````")];
        let mut c2 = res("ws-03", "agent-1", Status::Completed, 6, 4);
        c2.files = vec![FileChange {
            path: "src/a|b.rs".into(),
            old_path: None,
            kind: ChangeKind::Modified,
            additions: 2,
            deletions: 0,
        }];
        let mut s = WorkstreamResult::new("r", UNASSIGNED_AGENT, "ws-04", Status::Skipped);
        s.errors = vec![WsError::new(
            ErrorType::DependencyFailed,
            "dependency ws:#;x failed",
        )];
        let f = Forecast {
            pairs: vec![crate::model::PairForecast {
                a: "ws-01".into(),
                b: "ws-03".into(),
                common_paths: vec!["src/a|b.rs".into()],
                conflict_paths: vec!["src/a|b.rs".into()],
                hunks: vec![ConflictHunk {
                    path: "src/a|b.rs".into(),
                    text: "<<<<<<< ws-01\n```\n=======\n| x |\n>>>>>>> ws-03\n".into(),
                }],
            }],
            merge_order: vec![
                MergeStep {
                    workstream_id: "ws-01".into(),
                    clean: true,
                    conflict_paths: vec![],
                },
                MergeStep {
                    workstream_id: "ws-03".into(),
                    clean: false,
                    conflict_paths: vec!["src/a|b.rs".into()],
                },
            ],
        };
        (vec![s, c2, b, a], f)
    }

    fn unescaped_pipes(line: &str) -> usize {
        let b = line.as_bytes();
        let mut n = 0;
        for i in 0..b.len() {
            if b[i] == b'|' {
                let slashes = b[..i].iter().rev().take_while(|&&c| c == b'\\').count();
                if slashes % 2 == 0 {
                    n += 1;
                }
            }
        }
        n
    }

    /// Lines outside fenced blocks, asserting every fence closes; also returns the number
    /// of fenced blocks and their info strings.
    fn outside_fences(md: &str) -> (Vec<&str>, Vec<String>) {
        let mut outside = Vec::new();
        let mut infos = Vec::new();
        let mut open: Option<usize> = None;
        for line in md.lines() {
            let ticks = line.bytes().take_while(|&c| c == b'`').count();
            match open {
                None if ticks >= 3 => {
                    open = Some(ticks);
                    infos.push(line[ticks..].to_string());
                }
                None => outside.push(line),
                Some(n) if ticks >= n && line[ticks..].trim().is_empty() => open = None,
                Some(_) => {}
            }
        }
        assert!(open.is_none(), "unclosed fence");
        (outside, infos)
    }

    /// Every table keeps one column count on every row.
    fn assert_tables_intact(md: &str) {
        let (outside, _) = outside_fences(md);
        let mut expected: Option<usize> = None;
        for line in outside {
            if line.starts_with('|') {
                let n = unescaped_pipes(line);
                match expected {
                    None => expected = Some(n),
                    Some(e) => assert_eq!(n, e, "row breaks its table: {line}"),
                }
            } else {
                expected = None;
            }
        }
    }

    fn render(results: &[WorkstreamResult], f: Forecast, agents: usize) -> String {
        let c = consolidate(&run(agents), results, f);
        render_markdown(&ReportModel {
            consolidated: &c,
            results,
        })
    }

    #[test]
    fn report_has_every_section_in_order() {
        let (rs, f) = fixture();
        let md = render(&rs, f, 3);
        assert!(md.starts_with(
            "# Multi-agent run ma-run-20241123-221320\n\n**Verdict:** 2 of 4 workstreams completed; 1 failed, 1 skipped.\n"
        ));
        let (outside, infos) = outside_fences(&md);
        let h2: Vec<&str> = outside
            .iter()
            .filter(|l| l.starts_with("## "))
            .copied()
            .collect();
        let want: Vec<String> = Section::ALL
            .iter()
            .map(|s| format!("## {}", s.title()))
            .collect();
        assert_eq!(h2, want);
        // Only our own headings start a line with '#'.
        for l in &outside {
            if l.starts_with('#') {
                assert!(
                    l.starts_with("# Multi-agent") || l.starts_with("## ") || l.starts_with("### "),
                    "{l}"
                );
            }
        }
        assert_eq!(infos, ["text", "diff", "mermaid"]);
        assert!(!md.ends_with("\n\n") && md.ends_with('\n'));
    }

    #[test]
    fn hostile_content_cannot_break_the_markdown() {
        let (rs, f) = fixture();
        let md = render(&rs, f, 3);
        assert_tables_intact(&md);
        let (outside, _) = outside_fences(&md);
        let joined = outside.join("\n");
        assert!(!joined.contains("</details>"));
        assert!(!joined.contains("<script>"));
        assert!(!joined.contains("[x](javascript"));
        assert!(joined.contains("\\[x\\](javascript"));
        assert!(!joined.contains("| not a table"));
        // The hostile title survives, escaped, in the workstreams table.
        let esc_title = esc(HOSTILE);
        assert!(md.contains(&format!("| ws:#;x | {esc_title} | agent-2 | **FAILED** |")));
        // The trace is fenced with a fence longer than its own ```` run.
        assert!(md
            .contains("`````text\n| not a table\n```\n</details>\n# not a heading\n````\n`````\n"));
        assert!(
            md.contains("src/a&#124;b.rs:\n\n````diff\n<<<<<<< ws-01\n```\n"),
            "{md}"
        );
    }

    #[test]
    fn summary_agents_files_tests_forecast() {
        let (rs, f) = fixture();
        let md = render(&rs, f, 3);
        for row in [
            "| Workstreams | 4 |",
            "| Completed | 2 (50.0%) |",
            "| Failed | 1 (25.0%) |",
            "| Unique files modified | 2 |",
            "| Commits | 2 |",
            "| Tests passed / failed / skipped | 7 / 0 / 0 (1 of 1 tested workstreams passing) |",
            "| Wall time | 30.0 s |",
            "| Busy time (sum of durations) | 19.0 s |",
            "| Parallel speed-up (busy / wall) | 0.63x |",
            "| Base commit | 0123456 (HEAD) |",
            "| Rerun of | ma-run-20241122-101010 |",
            "| agent-1 | 2 | 2 | 0 | 0 | 9.0 s | 30.0% | 4.5 s |",
            "| agent-3 | 0 | 0 | 0 | 0 | 0.0 s | 0.0% | 0.0 s |",
            "- **agent-1** (2): ws-01, ws-03",
            "- **agent-3** (0): idle",
            "- **unassigned** (1): ws-04 (skipped)",
            "| src/a&#124;b.rs | modified | +6 / -2 | ws-01, ws-03, ws:#;x | overlap |",
            "| new.rs (from old\\`s.rs) | renamed | +0 / -0 | ws-01 |  |",
            "| 1 | aaaaaaa | ws-01 |",
            "| ws-01 | cargo test &#124; tee | 7 | 0 | n/a | 0 | ok |",
            "**ws-01** and **ws-03** conflict in src/a&#124;b.rs.",
            "1. ws-01: clean\n2. ws-03: needs rebase after ws-01 (conflicts in src/a&#124;b.rs)\n",
            "- ws-01 and ws-03 conflict in src/a&#124;b.rs: merge ws-01, then rebase ws-03.",
            "- **ws-01**: committed &#124; uncommitted<br>changes",
            "| CommandFailed | 1 |",
        ] {
            assert!(md.contains(row), "missing {row:?} in\n{md}");
        }
    }

    #[test]
    fn mermaid_timeline() {
        let (rs, f) = fixture();
        let md = render(&rs, f, 3);
        let start = md.find("```mermaid\n").unwrap();
        let end = start + md[start..].find("\n```\n").unwrap();
        let chart = &md[start..end];
        assert_eq!(
            chart,
            "```mermaid\ngantt\n    title Run ma-run-20241123-221320\n    dateFormat x\n    axisFormat %H:%M:%S\n\
             \x20   section agent-1\n\
             \x20   ws-01 :done, t0, 1732400000000, 1732400005000\n\
             \x20   ws-03 :done, t2, 1732400006000, 1732400010000\n\
             \x20   section agent-2\n\
             \x20   ws___x :crit, t1, 1732400001000, 1732400011000"
        );
        assert!(md.contains("| +1.0 s | +11.0 s | 10.0 s | agent-2 | ws:#;x | **FAILED** |"));
        // The unstarted skipped workstream is in neither the chart nor the timeline table.
        let timeline = &md[md.find("## Execution timeline").unwrap()..];
        assert!(!timeline.contains("ws-04"));
    }

    #[test]
    fn output_is_deterministic_and_sections_are_shared() {
        let (mut rs, f) = fixture();
        let md1 = render(&rs, f.clone(), 3);
        rs.reverse();
        let md2 = render(&rs, f.clone(), 3);
        assert_eq!(md1, md2);
        let c = consolidate(&run(3), &rs, f);
        let m = ReportModel {
            consolidated: &c,
            results: &rs,
        };
        for s in Section::ALL {
            let sec = render_section_markdown(&m, s);
            assert!(sec.starts_with(&format!("## {}\n\n", s.title())));
            assert!(md1.contains(sec.trim_end()), "{s:?}");
        }
    }

    #[test]
    fn empty_run() {
        let mut info = run(2);
        info.finished_at = None;
        let c = consolidate(&info, &[], Forecast::default());
        let md = render_markdown(&ReportModel {
            consolidated: &c,
            results: &[],
        });
        assert!(md.contains("**Verdict:** no workstreams ran."));
        assert!(md.contains("## Merge forecast\n\nNo overlapping workstreams.\n"));
        assert!(md.contains("No errors or warnings."));
        assert!(md.contains("No workstream started."));
        assert!(md.contains("| Parallel speed-up (busy / wall) | n/a |"));
        assert!(md.contains("| Completed | 0 (0.0%) |"));
        assert_tables_intact(&md);
    }

    #[test]
    fn ten_thousand_workstreams() {
        let n = 10_000usize;
        let rs: Vec<WorkstreamResult> = (0..n)
            .map(|i| {
                let st = if i % 10 == 0 {
                    Status::Failed
                } else {
                    Status::Completed
                };
                let mut r = res(
                    &format!("ws-{i}"),
                    &format!("agent-{}", i % 4 + 1),
                    st,
                    (i / 4) as i64,
                    1,
                );
                r.title = Some(format!("task | {i}"));
                r.files = vec![FileChange {
                    path: format!("f/{}", i / 2),
                    old_path: None,
                    kind: ChangeKind::Modified,
                    additions: 1,
                    deletions: 0,
                }];
                r.commits = vec![format!("{i:040x}")];
                if st == Status::Failed {
                    r.errors
                        .push(WsError::new(ErrorType::CommandFailed, "boom").with_trace("tail"));
                }
                r
            })
            .collect();
        let md = render(&rs, Forecast::default(), 4);
        assert_tables_intact(&md);
        let ws_rows = md
            .lines()
            .filter(|l| l.starts_with("| ws-") && l.contains("| task &#124;"))
            .count();
        assert_eq!(ws_rows, n);
        assert!(md.contains(
            "_Showing 500 of 5000 files, overlapping files first; the database has them all._"
        ));
        assert!(md.contains("_Showing 500 of 10000 commits; the database has them all._"));
        assert!(md.contains("_Showing 200 of 1000 errors; the database has them all._"));
        assert!(
            md.contains("_Showing 500 of 10000 started workstreams; the database has them all._")
        );
        let tasks = md
            .lines()
            .filter(|l| l.contains(" :done, t") || l.contains(" :crit, t"))
            .count();
        assert_eq!(tasks, 500);
    }

    #[test]
    fn durations_and_tails() {
        assert_eq!(fmt_secs(0.0), "0.0 s");
        assert_eq!(fmt_secs(59.94), "59.9 s");
        assert_eq!(fmt_secs(125.0), "2m 05s");
        assert_eq!(fmt_secs(3723.0), "1h 02m 03s");
        assert_eq!(fmt_secs(f64::NAN), "0.0 s");
        let long: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let t = last_lines(&long);
        assert!(t.starts_with("line 40\n") && t.ends_with("line 99"), "{t}");
        let big = "é".repeat(10_000);
        assert!(last_lines(&big).len() <= MAX_TAIL_BYTES);
    }
}
