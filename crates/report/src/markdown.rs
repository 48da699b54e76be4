//! The Markdown run report: one writer per section over a [`RunView`], each appending to
//! one `String`.

use super::cells::{agent_cells, md_header, md_row, test_totals, AGENT_HEADERS};
use super::escape::{escape_inline as esc, escape_with_code_spans, fenced_with, mermaid_name};
use super::section::Section;
use super::usage;
use std::fmt::Write as _;
use ws_core::model::{ForecastCluster, Status};
use ws_core::text::{duration, plural, truncate};
use ws_core::view::{MergeStepRow, OutputTail, RunView, TestsRow};

/// Long tables (files, commits, tests, timeline) show at most this many rows.
pub const MAX_TABLE_ROWS: usize = 500;
/// At most this many errors (and warnings) are shown in detail.
pub const MAX_ERROR_DETAILS: usize = 200;
/// At most this many conflicting pairs are shown with their hunks.
pub const MAX_CONFLICT_DETAILS: usize = 100;
/// Titles in the workstreams table are cut to this many columns (the full text follows it).
pub const MAX_TITLE_COLUMNS: usize = 60;
/// A title in the report's list of full titles is cut to this many columns too (the JSON
/// has every character), so no title makes a line of thousands.
pub const MAX_FULL_TITLE_COLUMNS: usize = 300;

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
        Status::Deferred => "deferred",
    }
}

fn esc_list(items: &[String]) -> String {
    items.iter().map(|s| esc(s)).collect::<Vec<_>>().join(", ")
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

/// The whole report.
pub(super) fn report(v: &RunView) -> String {
    let mut out = String::with_capacity(4096 + v.workstreams.len() * 400);
    let _ = writeln!(out, "# Multi-agent run {}\n", esc(&v.run_id));
    let _ = writeln!(out, "**Verdict:** {}\n", esc(&v.verdict));
    tampering(&mut out, v);
    for s in Section::ALL {
        write_section(&mut out, v, s);
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// What changed outside the worktrees while workstreams ran, first (nothing when nothing
/// did): each location with its old and new value and who may have changed it.
fn tampering(out: &mut String, v: &RunView) {
    if v.tampering.is_empty() {
        return;
    }
    out.push_str("## Tampering\n\n");
    out.push_str(
        "Changed outside the worktrees while workstreams ran (the user's refs, HEAD, index, \
         git config, hooks, info/):\n\n",
    );
    md_header(out, &["Location", "Before", "After", "Seen by", "Who"]);
    let val = |x: &Option<String>| x.as_deref().map_or("(absent)".to_string(), code_span);
    for t in &v.tampering {
        md_row(
            out,
            &[
                code_span(&t.change.path),
                val(&t.change.old),
                val(&t.change.new),
                esc_list(&t.change.seen_by),
                esc(&t.attribution),
            ],
        );
    }
    out.push('\n');
}

pub(super) fn write_section(out: &mut String, v: &RunView, s: Section) {
    if s == Section::Errors && !out.contains("## Tampering\n") {
        // Asked for alone (`--errors`): what changed outside the worktrees comes with it.
        tampering(out, v);
    }
    let _ = writeln!(out, "## {}\n", s.title());
    match s {
        Section::Summary => summary(out, v),
        Section::Agents => agents(out, v),
        Section::Workstreams => workstreams(out, v),
        Section::Errors => errors(out, v),
        Section::Files => files(out, v),
        Section::Commits => commits(out, v),
        Section::Tests => tests(out, v),
        Section::Forecast => forecast(out, v),
        Section::Integration => {
            integration(out, v);
            fixups(out, v);
        }
        Section::Recommendations => recommendations(out, v),
        Section::Timeline => timeline(out, v),
    }
    out.push('\n');
}

fn summary(out: &mut String, v: &RunView) {
    let t = v.total_workstreams;
    let mut rows: Vec<(&str, String)> = vec![
        ("Workstreams", t.to_string()),
        (
            "Completed",
            format!("{} ({})", v.completed_count, pct(v.completed_count, t)),
        ),
        (
            "Failed",
            format!("{} ({})", v.failed_count, pct(v.failed_count, t)),
        ),
        (
            "Skipped",
            format!("{} ({})", v.skipped_count, pct(v.skipped_count, t)),
        ),
        ("Unique files modified", v.total_files_modified.to_string()),
        (
            "Files touched by more than one workstream",
            v.overlapping_files.to_string(),
        ),
        ("Commits", v.total_commits.to_string()),
        ("Errors", v.total_errors.to_string()),
        ("Warnings", v.total_warnings.to_string()),
        ("Tests passed / failed / skipped", test_totals(v)),
    ];
    rows.extend(usage::summary_rows(v));
    rows.extend(vec![
        ("Wall time", duration(v.wall_seconds)),
        ("Busy time (sum of durations)", duration(v.busy_seconds)),
        (
            "Parallel speed-up (busy / wall)",
            v.speedup.map_or("n/a".to_string(), |s| format!("{s:.2}x")),
        ),
        (
            "Coordinator overhead per workstream",
            v.overhead_seconds_per_workstream
                .map_or("n/a".to_string(), |o| {
                    format!(
                        "{} (branch, git, database; outside the commands)",
                        duration(o)
                    )
                }),
        ),
        (
            "Base commit",
            format!("{} ({})", short_sha(&v.base), esc(&v.base_rev)),
        ),
        ("Agents", v.agent_count.to_string()),
        ("Started", v.timestamp[..19].replace('T', " ") + " UTC"),
    ]);
    if let Some(f) = v.finished_at {
        rows.push(("Finished", f.format("%Y-%m-%d %H:%M:%S UTC").to_string()));
    }
    if let Some(r) = &v.rerun_of {
        rows.push(("Rerun of", esc(r)));
    }
    md_header(out, &["Metric", "Value"]);
    for (k, val) in rows {
        md_row(out, &[k, val.as_str()]);
    }
}

fn agents(out: &mut String, v: &RunView) {
    md_header(out, &AGENT_HEADERS);
    for a in &v.agents {
        let mut cells = agent_cells(&a.perf);
        cells[0] = esc(&cells[0]);
        md_row(out, &cells);
    }
    usage::markdown_agents(out, v);
    if v.workstreams.is_empty() {
        return;
    }
    out.push_str("\n### Workstreams per agent\n\n");
    for a in &v.agents {
        let _ = write!(
            out,
            "- **{}** ({}): ",
            esc(&a.perf.agent_id),
            a.workstreams.len()
        );
        if a.workstreams.is_empty() {
            out.push_str("idle");
        }
        for (i, w) in a.workstreams.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&esc(&w.workstream_id));
            if w.status != Status::Completed {
                let _ = write!(out, " ({})", w.status);
            }
        }
        out.push('\n');
    }
}

fn workstreams(out: &mut String, v: &RunView) {
    if v.workstreams.is_empty() {
        out.push_str("No workstreams.\n");
        return;
    }
    let with_cost = v.usage.is_some();
    let mut headers = vec![
        "ID", "Title", "Agent", "Status", "Duration", "Files", "+/-", "Commits", "Branch",
    ];
    if with_cost {
        headers.push("Cost");
    }
    md_header(out, &headers);
    let mut long_titles = Vec::new();
    for w in &v.workstreams {
        let title = ws_core::text::one_line(w.title.as_deref().unwrap_or(""));
        let shown = truncate(&title, MAX_TITLE_COLUMNS);
        if shown != title {
            long_titles.push((&w.workstream_id, title.clone()));
        }
        let mut cells = vec![
            esc(&w.workstream_id),
            esc(&shown),
            esc(&w.agent_id),
            status_marker(w.status).to_string(),
            w.start_time
                .map_or("n/a".to_string(), |_| duration(w.duration_seconds)),
            w.files.len().to_string(),
            format!("+{} / -{}", w.additions, w.deletions),
            w.commits_created.len().to_string(),
            esc(w.branch.as_deref().unwrap_or("")),
        ];
        if with_cost {
            cells.push(usage::cost_cell(w.usage.as_ref()));
        }
        md_row(out, &cells);
    }
    if !long_titles.is_empty() {
        out.push_str("\nFull titles:\n\n");
        for (id, title) in long_titles.iter().take(MAX_ERROR_DETAILS) {
            let shown = truncate(title, MAX_FULL_TITLE_COLUMNS);
            if shown == *title {
                let _ = writeln!(out, "- **{}**: {}", esc(id), esc(title));
            } else {
                let _ = writeln!(
                    out,
                    "- **{}**: {} _({} characters; the full title is in the JSON)_",
                    esc(id),
                    esc(&shown),
                    title.chars().count()
                );
            }
        }
    }
}

/// An output tail: a caption line and the fenced text.
fn write_tail(out: &mut String, t: &OutputTail) {
    let _ = writeln!(out, "\n_{}_\n", esc(&t.caption()));
    out.push_str(&fenced_with("text", &t.text));
}

fn errors(out: &mut String, v: &RunView) {
    if v.errors.is_empty() && v.warnings.is_empty() {
        out.push_str("No errors or warnings.\n");
        usage::markdown_retries(out, v);
        return;
    }
    if v.errors_by_type.is_empty() {
        out.push_str("No errors.\n");
    } else {
        md_header(out, &["Error type", "Count"]);
        for (t, n) in &v.errors_by_type {
            md_row(out, &[esc(t), n.to_string()]);
        }
    }
    for (i, e) in v.errors.iter().take(MAX_ERROR_DETAILS).enumerate() {
        if i == 0 {
            out.push_str("\n### Errors\n");
        }
        let _ = writeln!(
            out,
            "\n**{}** (agent {}), {}: {}",
            esc(&e.workstream_id),
            esc(&e.agent_id),
            e.error_type,
            esc(&e.message)
        );
        if let Some(t) = &e.output_tail {
            write_tail(out, t);
        }
    }
    cap_note(
        out,
        v.errors.len().min(MAX_ERROR_DETAILS),
        v.errors.len(),
        "errors",
        "",
    );
    usage::markdown_retries(out, v);
    if !v.warnings.is_empty() {
        out.push_str("\n### Warnings\n\n");
        for w in v.warnings.iter().take(MAX_ERROR_DETAILS) {
            let who = w.workstream_id.as_deref().map_or("run".to_string(), esc);
            let _ = writeln!(out, "- **{who}**: {}", esc(&w.message));
        }
        cap_note(
            out,
            v.warnings.len().min(MAX_ERROR_DETAILS),
            v.warnings.len(),
            "warnings",
            "",
        );
    }
}

fn files(out: &mut String, v: &RunView) {
    if v.files.is_empty() {
        out.push_str("No files were modified.\n");
        return;
    }
    let _ = writeln!(
        out,
        "{} unique files; {} touched by more than one workstream.\n",
        v.total_files_modified, v.overlapping_files
    );
    md_header(out, &["Path", "Change", "+/-", "Workstreams", "Overlap"]);
    let rows = capped(&v.files, MAX_TABLE_ROWS, |f| f.overlap);
    for f in &rows {
        let f = &f.file;
        let mut path = esc(&f.path);
        if !f.old_paths.is_empty() {
            let _ = write!(path, " (from {})", esc_list(&f.old_paths));
        }
        if !f.renamed_to.is_empty() {
            let _ = write!(path, " (renamed to {})", esc_list(&f.renamed_to));
        }
        let kinds: Vec<&str> = f.kinds.iter().map(|k| k.as_str()).collect();
        md_row(
            out,
            &[
                path,
                kinds.join(", "),
                format!("+{} / -{}", f.additions, f.deletions),
                esc_list(&f.workstreams),
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
        v.files.len(),
        "files",
        ", overlapping files first",
    );
}

fn commits(out: &mut String, v: &RunView) {
    if v.commits.is_empty() {
        out.push_str("No commits were created.\n");
        return;
    }
    md_header(out, &["#", "Commit", "Workstream"]);
    let rows = capped(&v.commits, MAX_TABLE_ROWS, |_| false);
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
    cap_note(out, rows.len(), v.commits.len(), "commits", "");
}

/// A test count, or n/a when the output had none.
fn count(n: Option<u64>) -> String {
    n.map_or_else(|| "n/a".to_string(), |n| n.to_string())
}

/// Counts beyond passed/failed/skipped that the test results carry (deselected, xfailed,
/// …), as "3 deselected, 1 xfailed"; whatever optional counts exist are shown.
pub(super) fn other_counts(t: &TestsRow) -> String {
    const SHOWN: [&str; 6] = [
        "command",
        "exit_code",
        "passed",
        "failed",
        "skipped",
        "succeeded",
    ];
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(t) else {
        return String::new();
    };
    map.iter()
        .filter(|(k, _)| !SHOWN.contains(&k.as_str()))
        .filter_map(|(k, v)| v.as_u64().map(|n| format!("{n} {k}")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn tests(out: &mut String, v: &RunView) {
    let t = &v.tests;
    if t.workstreams_tested == 0 {
        out.push_str("No workstream ran tests.\n");
        return;
    }
    let totals = if t.workstreams_counted == 0 {
        "no test counts could be read from their output".to_string()
    } else {
        format!(
            "{} tests passed, {} failed, {} skipped",
            t.passed, t.failed, t.skipped
        )
    };
    let _ = writeln!(
        out,
        "{} of {} tested workstreams passed; {totals}.\n",
        t.workstreams_passed, t.workstreams_tested
    );
    let tested: Vec<(&String, &TestsRow)> = v
        .workstreams
        .iter()
        .filter_map(|w| Some((&w.workstream_id, w.tests.as_ref()?)))
        .collect();
    md_header(
        out,
        &[
            "Workstream",
            "Command",
            "Passed",
            "Failed",
            "Skipped",
            "Other",
            "Exit code",
            "Result",
        ],
    );
    let rows = capped(&tested, MAX_TABLE_ROWS, |(_, t)| !t.succeeded);
    for (id, tr) in &rows {
        let r = &tr.results;
        md_row(
            out,
            &[
                esc(id),
                esc(&r.command),
                count(r.passed),
                count(r.failed),
                count(r.skipped),
                esc(&other_counts(tr)),
                r.exit_code
                    .map_or_else(|| "n/a".to_string(), |c| c.to_string()),
                if tr.succeeded { "ok" } else { "**FAILED**" }.to_string(),
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

fn forecast(out: &mut String, v: &RunView) {
    if v.clusters.is_empty() && v.conflicts.is_empty() && v.clean_overlaps.is_empty() {
        no_overlaps(out, v);
    }
    clusters(out, v);
    conflicts(out, v);
    clean_overlaps(out, v);
    merge_order(out, v);
}

/// The forecast found nothing to say about overlaps, and why when files were shared.
fn no_overlaps(out: &mut String, v: &RunView) {
    out.push_str("No overlapping workstreams.\n");
    if v.overlapping_files > 0 {
        let _ = writeln!(
            out,
            "\n{} touched by more than one workstream, but the forecast merges only completed branches and found no overlap among them.",
            plural(v.overlapping_files, "file was", "files were")
        );
    }
}

/// Where completed branches change the same thing, one row per cluster.
fn clusters(out: &mut String, v: &RunView) {
    if v.clusters.is_empty() {
        return;
    }
    out.push_str("### Clusters\n\n");
    out.push_str("Where completed branches change the same thing; two workstreams that share no cluster merge cleanly.\n\n");
    md_header(
        out,
        &[
            "#",
            "Path",
            "Kind",
            "Lines",
            "Workstreams",
            "Conflicting pairs",
        ],
    );
    let rows = capped(&v.clusters, MAX_TABLE_ROWS, |c| c.conflicting_pairs > 0);
    for c in &rows {
        md_row(
            out,
            &[
                c.id.to_string(),
                esc(&c.path),
                esc(&c.kind),
                c.lines
                    .map_or_else(String::new, |(a, b)| format!("{a}–{b}")),
                esc_list(&c.workstreams),
                conflicting_pairs(c),
            ],
        );
    }
    cap_note(
        out,
        rows.len(),
        v.clusters.len(),
        "clusters",
        ", conflicting ones first",
    );
    out.push('\n');
}

/// "2 of 3", or how many conflicted when only the pairs the order needed were merged.
fn conflicting_pairs(c: &ForecastCluster) -> String {
    if c.all_pairs {
        let n = c.workstreams.len();
        format!("{} of {}", c.conflicting_pairs, n * (n - 1) / 2)
    } else {
        format!(
            "{} (only the pairs the order needed were merged)",
            c.conflicting_pairs
        )
    }
}

/// Each conflicting pair with its hunks, up to [`MAX_CONFLICT_DETAILS`].
fn conflicts(out: &mut String, v: &RunView) {
    if v.conflicts.is_empty() {
        return;
    }
    out.push_str("### Conflicts\n");
    for p in v.conflicts.iter().take(MAX_CONFLICT_DETAILS) {
        let _ = writeln!(
            out,
            "\n**{}** and **{}** conflict in {}.",
            esc(&p.workstreams[0]),
            esc(&p.workstreams[1]),
            esc_list(&p.paths)
        );
        for h in &p.hunks {
            let _ = writeln!(out, "\n{}:\n", esc(&h.path));
            out.push_str(&fenced_with("diff", &h.text));
        }
    }
    if v.conflicts.len() > MAX_CONFLICT_DETAILS {
        let _ = writeln!(
            out,
            "\n_{} more conflicting pairs are not shown._",
            v.conflicts.len() - MAX_CONFLICT_DETAILS
        );
    }
    out.push('\n');
}

/// Pairs that touch the same paths but merge cleanly.
fn clean_overlaps(out: &mut String, v: &RunView) {
    if v.clean_overlaps.is_empty() {
        return;
    }
    out.push_str("### Overlaps that merge cleanly\n\n");
    md_header(out, &["Workstreams", "Common paths"]);
    let rows = capped(&v.clean_overlaps, MAX_TABLE_ROWS, |_| false);
    for p in &rows {
        md_row(out, &[esc_list(&p.workstreams), esc_list(&p.paths)]);
    }
    cap_note(out, rows.len(), v.clean_overlaps.len(), "clean pairs", "");
    out.push('\n');
}

/// The suggested merge order, each step with why it is there.
fn merge_order(out: &mut String, v: &RunView) {
    if v.merge_order.is_empty() {
        return;
    }
    out.push_str("### Suggested merge order\n\n");
    out.push_str("Fewest overlapping workstreams first, then the smallest change, then the id; those that need a rebase last.\n\n");
    for s in v.merge_order.iter().take(MAX_TABLE_ROWS) {
        let _ = write!(out, "{}. {}: ", s.position, esc(&s.workstream_id));
        merge_step(out, s);
        out.push('\n');
    }
    cap_note(
        out,
        v.merge_order.len().min(MAX_TABLE_ROWS),
        v.merge_order.len(),
        "steps",
        "",
    );
}

/// One step's explanation: its reason, else clean, else what it must be rebased after.
fn merge_step(out: &mut String, s: &MergeStepRow) {
    if !s.reason.is_empty() {
        out.push_str(&esc(&s.reason));
    } else if s.clean {
        out.push_str("clean");
    } else {
        out.push_str("needs rebase");
        if !s.rebase_after.is_empty() {
            let _ = write!(out, " after {}", esc_list(&s.rebase_after));
        }
        if !s.conflict_paths.is_empty() {
            let _ = write!(out, " (conflicts in {})", esc_list(&s.conflict_paths));
        }
    }
}

/// `s` as an inline code span that renders it literally (no entities or backslashes, which a
/// code span would show as typed): fenced by more backticks than any run inside, padded when
/// it starts or ends with one; control characters become spaces. Not for table cells.
fn code_span(s: &str) -> String {
    let (mut longest, mut run) = (0, 0);
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let body: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let pad = if body.starts_with('`') || body.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{body}{pad}{fence}")
}

fn integration(out: &mut String, v: &RunView) {
    let Some(it) = &v.integration else {
        let _ = writeln!(
            out,
            "Not integrated yet: `git ws-merge {}` merges the completed branches in the suggested order onto one branch, leaving out conflicts; with `--test CMD` it also leaves out what breaks the tests.",
            esc(&v.run_id)
        );
        return;
    };
    let completed = it.merged.len()
        + it.excluded
            .iter()
            .filter(|x| x.reason != "not-completed" && x.reason != "no-result")
            .count();
    let _ = writeln!(
        out,
        "{} of {} integrated onto {} ({}) as {} at {}{}.",
        it.merged.len(),
        plural(completed, "completed workstream", "completed workstreams"),
        short_sha(&it.onto),
        esc(&it.onto_rev),
        code_span(&it.branch),
        short_sha(&it.tip),
        if it.dry_run {
            " (a plan: nothing written)"
        } else {
            ""
        }
    );
    if it.incomplete {
        let _ = writeln!(
            out,
            "\n**Incomplete run**: integrated with `--incomplete` before the run finished; {}.",
            if it.without_result.is_empty() {
                "every workstream had a result, but the run was never consolidated".to_string()
            } else {
                format!(
                    "without a result, so not integrated: {}",
                    it.without_result
                        .iter()
                        .map(|w| esc(w))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
    match &it.test_command {
        Some(cmd) => {
            let passes = it.tests.iter().any(|t| t.commit == it.tip && t.passed);
            let _ = writeln!(
                out,
                "\nTested with {}: {}; the tip {}.",
                code_span(cmd),
                plural(it.test_runs, "test run", "test runs"),
                if passes { "passes" } else { "fails" }
            );
        }
        None => out.push_str(
            "\nNot tested (`git ws-merge --test CMD` or git config `ws.integrationTest`).\n",
        ),
    }
    if let Some(b) = &it.fast_forwarded {
        let _ = writeln!(out, "\n{} was fast-forwarded to it (`--ff`).", code_span(b));
    }
    let _ = writeln!(
        out,
        "\n_Integrated {}._\n",
        ws_core::view::micros::text(&it.integrated_at)
    );
    if !it.merges.is_empty() {
        md_header(out, &["#", "Workstream", "Merged at"]);
        let mut before = it.onto.as_str();
        for (i, m) in it.merges.iter().enumerate() {
            let at = if m.merge_commit == before {
                "already contained".to_string()
            } else {
                short_sha(&m.merge_commit)
            };
            before = &m.merge_commit;
            md_row(out, &[(i + 1).to_string(), esc(&m.workstream_id), at]);
        }
    }
    if !it.excluded.is_empty() {
        out.push_str("\n### Left out\n\n");
        for x in &it.excluded {
            let _ = write!(
                out,
                "- **{}** ({}): {}",
                esc(&x.workstream_id),
                esc(&x.reason),
                esc(&x.detail)
            );
            out.push('\n');
            if let Some(t) = x.output_tail.as_deref().filter(|t| !t.trim().is_empty()) {
                out.push('\n');
                out.push_str(&fenced_with("text", t));
                out.push('\n');
            }
        }
    }
    if !it.tests.is_empty() {
        out.push_str("\n### Test runs\n\n");
        md_header(
            out,
            &["#", "Commit", "Merges", "Result", "Exit", "Duration"],
        );
        for (i, t) in it.tests.iter().enumerate() {
            let merges = if t.workstreams.is_empty() {
                "none (onto alone)".to_string()
            } else {
                esc_list(&t.workstreams)
            };
            md_row(
                out,
                &[
                    (i + 1).to_string(),
                    short_sha(&t.commit),
                    merges,
                    if t.passed { "pass" } else { "**FAIL**" }.to_string(),
                    t.exit_code
                        .map(|c| c.to_string())
                        .or_else(|| t.ending.clone())
                        .unwrap_or_else(|| "n/a".to_string()),
                    duration(t.duration_seconds),
                ],
            );
        }
    }
}

fn recommendations(out: &mut String, v: &RunView) {
    if v.recommendations.is_empty() {
        out.push_str("No recommendations.\n");
    }
    for r in &v.recommendations {
        let _ = writeln!(out, "- {}", escape_with_code_spans(r));
    }
}

fn timeline(out: &mut String, v: &RunView) {
    let t = &v.timeline;
    if t.bars.is_empty() && t.not_started.is_empty() {
        out.push_str("No workstream started.\n");
        return;
    }
    let shown = capped(&t.bars, MAX_TABLE_ROWS, |_| false);
    if !shown.is_empty() {
        // Gantt chart: one section per agent; completed `done`, failed `crit`.
        let _ = writeln!(
            out,
            "```mermaid\ngantt\n    title {}\n    dateFormat x\n    axisFormat {}\n    tickInterval {}",
            mermaid_name(&format!("Run {}", v.run_id)),
            t.axis_format,
            t.tick_interval
        );
        for a in &v.agents {
            let mut bars = shown
                .iter()
                .enumerate()
                .filter(|(_, b)| b.agent_id == a.perf.agent_id)
                .peekable();
            if bars.peek().is_none() {
                continue;
            }
            let _ = writeln!(out, "    section {}", mermaid_name(&a.perf.agent_id));
            for (i, b) in bars {
                let tag = if b.status == Status::Failed {
                    "crit"
                } else {
                    "done"
                };
                let (s, e) = b.chart_ms;
                let _ = writeln!(
                    out,
                    "    {} :{tag}, t{i}, {s}, {e}",
                    mermaid_name(&b.workstream_id)
                );
            }
        }
        out.push_str("```\n\n");
    }
    if !t.not_started.is_empty() {
        out.push_str("Not started:\n\n");
        for n in t.not_started.iter().take(MAX_TABLE_ROWS) {
            let _ = writeln!(out, "- **{}**: {}", esc(&n.workstream_id), esc(&n.reason));
        }
        cap_note(
            out,
            t.not_started.len().min(MAX_TABLE_ROWS),
            t.not_started.len(),
            "workstreams that did not start",
            "",
        );
        out.push('\n');
    }
    if shown.is_empty() {
        return;
    }
    md_header(
        out,
        &["Start", "End", "Duration", "Agent", "Workstream", "Status"],
    );
    for b in &shown {
        md_row(
            out,
            &[
                format!("+{}", duration(b.start_offset_seconds)),
                format!("+{}", duration(b.end_offset_seconds)),
                duration(b.duration_seconds),
                esc(&b.agent_id),
                esc(&b.workstream_id),
                status_marker(b.status).to_string(),
            ],
        );
    }
    cap_note(out, shown.len(), t.bars.len(), "started workstreams", "");
}

/// The fix-up chains (`--fix-up`): original → `~fix1` (reason; outcome) → …, with each
/// attempt's reason in full.
fn fixups(out: &mut String, v: &RunView) {
    if v.fixups.is_empty() {
        return;
    }
    out.push_str("\n### Fix-ups\n\n");
    for c in &v.fixups {
        let _ = writeln!(
            out,
            "- **{}**: {} — {} ({} of at most {} attempt{})",
            esc(&c.workstream_id),
            esc(&super::cells::chain_text(c)),
            esc(&c.state),
            c.attempts.len(),
            c.max_attempts,
            if c.max_attempts == 1 { "" } else { "s" }
        );
        let skip = c
            .attempts
            .len()
            .saturating_sub(super::cells::MAX_SHOWN_ATTEMPTS);
        for a in &c.attempts[skip..] {
            let _ = writeln!(
                out,
                "  - {}: {} (from integration tip {}); {}",
                esc(&a.followup_id),
                esc(&a.detail),
                short_sha(&a.integration_tip),
                esc(&a.outcome)
            );
        }
    }
}

#[cfg(test)]
mod code_span_tests {
    use super::code_span;

    #[test]
    fn code_spans_show_commands_as_typed() {
        assert_eq!(code_span("a && b | c_d"), "`a && b | c_d`");
        assert_eq!(code_span("tee `x`"), "`` tee `x` ``");
        assert_eq!(code_span("a ``b``"), "``` a ``b`` ```");
        assert_eq!(code_span("x\ny"), "`x y`");
    }
}
