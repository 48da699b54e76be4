//! Terminal output of `git ws-report`: plain-text aligned tables (widths in terminal
//! columns, so CJK text lines up) over a [`RunView`]; a section without a table of its own
//! is shown as its Markdown.

use super::cells::{agent_cells, render_table, test_totals, AGENT_HEADERS};
use super::markdown;
use super::section::Section;
use super::usage;
use std::fmt::Write as _;
use ws_core::model::Status;
use ws_core::text::{duration, one_line, plural, truncate};
use ws_core::view::RunView;

/// Titles in terminal tables are cut to this many columns.
pub const TABLE_TITLE_COLUMNS: usize = 40;
/// Error messages in the overview's tables are cut to this many columns (`--errors` prints
/// them whole).
const MESSAGE_COLUMNS: usize = 120;

/// The terminal view: the summary and workstreams, or the requested sections.
pub fn tables(v: &RunView, sections: &[Section]) -> String {
    if sections.is_empty() {
        return overview(v);
    }
    let mut s = String::new();
    for (i, section) in sections.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        match section {
            Section::Agents => agents(&mut s, v),
            Section::Errors => errors(&mut s, v),
            Section::Files => files(&mut s, v),
            Section::Timeline => timeline(&mut s, v),
            Section::Integration => {
                integration(&mut s, v);
                fixups(&mut s, v);
            }
            other => markdown::write_section(&mut s, v, *other),
        }
    }
    s
}

fn overview(v: &RunView) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} ({}{})",
        v.run_id,
        v.state,
        v.rerun_of
            .as_ref()
            .map(|r| format!(", rerun of {r}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        s,
        "{}: {} completed, {} failed, {} skipped; {}, {}, {}, {}; {} on {}",
        plural(v.total_workstreams, "workstream", "workstreams"),
        v.completed_count,
        v.failed_count,
        v.skipped_count,
        plural(v.total_files_modified, "file", "files"),
        plural(v.total_commits, "commit", "commits"),
        plural(v.total_errors, "error", "errors"),
        plural(v.total_warnings, "warning", "warnings"),
        duration(v.wall_seconds),
        plural(v.agent_count, "agent", "agents")
    );
    if v.tests.workstreams_tested > 0 {
        let _ = writeln!(s, "tests passed / failed / skipped: {}", test_totals(v));
    }
    usage::table_overview(&mut s, v);
    let _ = writeln!(
        s,
        "merged: {} of {}",
        v.merged_count,
        plural(v.completed_count, "completed branch", "completed branches")
    );
    let _ = writeln!(s, "{}\n", integration_line(v));
    let rows: Vec<Vec<String>> = v
        .workstreams
        .iter()
        .map(|w| {
            vec![
                w.workstream_id.clone(),
                truncate(
                    &one_line(w.title.as_deref().unwrap_or("")),
                    TABLE_TITLE_COLUMNS,
                ),
                w.agent_id.clone(),
                w.status.to_string(),
                w.start_time
                    .map_or("n/a".to_string(), |_| duration(w.duration_seconds)),
                w.files.len().to_string(),
                w.commits_created.len().to_string(),
                if w.merged {
                    "merged".into()
                } else if w.status == Status::Completed {
                    "unmerged".into()
                } else {
                    String::new()
                },
                w.errors
                    .first()
                    .map(|e| first_line(&format!("{}: {}", e.error_type, e.message)))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    s.push_str(&render_table(
        &[
            "workstream",
            "title",
            "agent",
            "status",
            "duration",
            "files",
            "commits",
            "merge",
            "error",
        ],
        &rows,
    ));
    if !v.tampering.is_empty() {
        s.push_str("\ntampering (changed outside the worktrees while workstreams ran):\n");
        for t in &v.tampering {
            let val = |x: &Option<String>| x.as_deref().map_or("(absent)".into(), one_line);
            let _ = writeln!(
                s,
                "- {}: {} -> {} ({})",
                one_line(&t.change.path),
                val(&t.change.old),
                val(&t.change.new),
                one_line(&t.attribution)
            );
        }
    }
    if !v.recommendations.is_empty() {
        s.push_str("\nrecommendations:\n");
        for r in &v.recommendations {
            let _ = writeln!(s, "- {}", one_line(r));
        }
    }
    s
}

/// "integration: ws/<run>/integration at 1a2b3c4 (onto 5d6e7f8): 3 merged, 2 left out
/// (b: conflict, c: breaks-tests); 5 test runs", or how to make one.
fn integration_line(v: &RunView) -> String {
    let Some(it) = &v.integration else {
        return format!("integration: none yet (git ws-merge {})", v.run_id);
    };
    let short = |s: &str| s.chars().take(7).collect::<String>();
    let left: Vec<String> = it
        .excluded
        .iter()
        .filter(|x| x.reason != "not-completed")
        .map(|x| format!("{}: {}", x.workstream_id, x.reason))
        .collect();
    let mut line = format!(
        "integration: {} at {} (onto {}): {} merged, {} left out",
        it.branch,
        short(&it.tip),
        short(&it.onto),
        it.merged.len(),
        left.len()
    );
    if !left.is_empty() {
        let _ = write!(line, " ({})", left.join(", "));
    }
    if it.incomplete {
        line.push_str("; incomplete run (--incomplete)");
    }
    if it.test_command.is_some() {
        let _ = write!(
            line,
            "; {} test run{}",
            it.test_runs,
            if it.test_runs == 1 { "" } else { "s" }
        );
    }
    one_line(&line)
}

/// `--integration` as tables: the one-line summary, how it was tested, then what was merged,
/// what was left out (each with its output tail, indented) and every test run.
fn integration(s: &mut String, v: &RunView) {
    let _ = writeln!(s, "{}", integration_line(v));
    let Some(it) = &v.integration else {
        return;
    };
    let short = |x: &str| x.chars().take(7).collect::<String>();
    match &it.test_command {
        Some(cmd) => {
            let passes = it.tests.iter().any(|t| t.commit == it.tip && t.passed);
            let _ = writeln!(
                s,
                "tested with {}: the tip {}",
                one_line(cmd),
                if passes { "passes" } else { "fails" }
            );
        }
        None => {
            s.push_str("not tested (git ws-merge --test CMD, or git config ws.integrationTest)\n")
        }
    }
    if let Some(b) = &it.fast_forwarded {
        let _ = writeln!(s, "{b} was fast-forwarded to it (--ff)");
    }
    if it.dry_run {
        s.push_str("a plan (--dry-run): nothing was written\n");
    }
    let _ = writeln!(
        s,
        "integrated {}",
        ws_core::view::micros::text(&it.integrated_at)
    );
    if !it.merges.is_empty() {
        s.push_str("\nmerged:\n");
        let mut before = it.onto.as_str();
        let rows: Vec<Vec<String>> = it
            .merges
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let at = if m.merge_commit == before {
                    "already contained".to_string()
                } else {
                    short(&m.merge_commit)
                };
                before = &m.merge_commit;
                vec![(i + 1).to_string(), one_line(&m.workstream_id), at]
            })
            .collect();
        s.push_str(&render_table(&["#", "workstream", "merged at"], &rows));
    }
    if !it.excluded.is_empty() {
        s.push_str("\nleft out:\n");
        let rows: Vec<Vec<String>> = it
            .excluded
            .iter()
            .map(|x| {
                vec![
                    one_line(&x.workstream_id),
                    one_line(&x.reason),
                    one_line(&x.detail),
                ]
            })
            .collect();
        s.push_str(&render_table(&["workstream", "reason", "detail"], &rows));
        for x in &it.excluded {
            let Some(t) = x.output_tail.as_deref().filter(|t| !t.trim().is_empty()) else {
                continue;
            };
            let _ = writeln!(s, "\n{} ({}):", one_line(&x.workstream_id), x.reason);
            for l in t.lines() {
                let _ = writeln!(s, "    {}", one_line(l));
            }
        }
    }
    if !it.tests.is_empty() {
        s.push_str("\ntest runs:\n");
        let rows: Vec<Vec<String>> = it
            .tests
            .iter()
            .enumerate()
            .map(|(i, t)| {
                vec![
                    (i + 1).to_string(),
                    short(&t.commit),
                    if t.workstreams.is_empty() {
                        "none (onto alone)".to_string()
                    } else {
                        one_line(&t.workstreams.join(", "))
                    },
                    if t.passed { "pass" } else { "FAIL" }.to_string(),
                    t.exit_code
                        .map(|c| c.to_string())
                        .or_else(|| t.ending.clone())
                        .unwrap_or_else(|| "n/a".to_string()),
                    duration(t.duration_seconds),
                ]
            })
            .collect();
        s.push_str(&render_table(
            &["#", "commit", "merges", "result", "exit", "duration"],
            &rows,
        ));
    }
}

fn first_line(s: &str) -> String {
    truncate(&one_line(s.lines().next().unwrap_or("")), MESSAGE_COLUMNS)
}

fn agents(s: &mut String, v: &RunView) {
    let rows: Vec<Vec<String>> = v.agents.iter().map(|a| agent_cells(&a.perf)).collect();
    let headers = AGENT_HEADERS.map(str::to_lowercase);
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    s.push_str(&render_table(&headers, &rows));
    usage::table_agents(s, v);
}

/// The errors table, then each error's output tail (indented), then the warnings.
fn errors(s: &mut String, v: &RunView) {
    if v.errors.is_empty() {
        s.push_str("no errors\n");
    } else {
        let rows: Vec<Vec<String>> = v
            .errors
            .iter()
            .map(|e| {
                vec![
                    e.workstream_id.clone(),
                    e.agent_id.clone(),
                    e.error_type.to_string(),
                    // Whole: `--errors` is where a message is read in full.
                    one_line(&e.message),
                ]
            })
            .collect();
        s.push_str(&render_table(
            &["workstream", "agent", "type", "message"],
            &rows,
        ));
    }
    for e in &v.errors {
        let Some(t) = &e.output_tail else { continue };
        let _ = writeln!(
            s,
            "\n{} ({}): {}",
            e.workstream_id,
            e.error_type,
            one_line(&t.caption())
        );
        for l in t.text.lines() {
            let _ = writeln!(s, "    {}", l.replace('\t', "    "));
        }
    }
    if !v.warnings.is_empty() {
        s.push_str("\nwarnings:\n");
        for w in &v.warnings {
            let who = w.workstream_id.as_deref().unwrap_or("run");
            let _ = writeln!(s, "- {who}: {}", one_line(&w.message));
        }
    }
}

fn files(s: &mut String, v: &RunView) {
    if v.files.is_empty() {
        s.push_str("no files modified\n");
        return;
    }
    let rows: Vec<Vec<String>> = v
        .files
        .iter()
        .map(|f| {
            let file = &f.file;
            let mut path = file.path.clone();
            if !file.old_paths.is_empty() {
                let _ = write!(path, " (from {})", file.old_paths.join(", "));
            }
            let kinds: Vec<&str> = file.kinds.iter().map(|k| k.as_str()).collect();
            vec![
                path,
                kinds.join(", "),
                format!("+{} -{}", file.additions, file.deletions),
                file.workstreams.join(", "),
                if f.overlap { "yes" } else { "" }.to_string(),
            ]
        })
        .collect();
    s.push_str(&render_table(
        &["path", "change", "lines", "workstreams", "overlap"],
        &rows,
    ));
}

fn timeline(s: &mut String, v: &RunView) {
    let t = &v.timeline;
    let rows: Vec<Vec<String>> = t
        .bars
        .iter()
        .map(|b| {
            vec![
                format!("+{}", duration(b.start_offset_seconds)),
                format!("+{}", duration(b.end_offset_seconds)),
                duration(b.duration_seconds),
                b.agent_id.clone(),
                b.workstream_id.clone(),
                b.status.to_string(),
            ]
        })
        .collect();
    s.push_str(&render_table(
        &["start", "end", "duration", "agent", "workstream", "status"],
        &rows,
    ));
    if !t.not_started.is_empty() {
        s.push_str("\nnot started:\n");
        for n in &t.not_started {
            let _ = writeln!(s, "- {}: {}", n.workstream_id, one_line(&n.reason));
        }
    }
}

/// `--integration`: each fix-up chain (`--fix-up`) on one line, then each attempt's reason.
fn fixups(s: &mut String, v: &RunView) {
    if v.fixups.is_empty() {
        return;
    }
    s.push_str("\nfix-ups:\n");
    for c in &v.fixups {
        let _ = writeln!(
            s,
            "  {}: {} ({} of at most {} attempt{})",
            one_line(&c.workstream_id),
            c.state,
            c.attempts.len(),
            c.max_attempts,
            if c.max_attempts == 1 { "" } else { "s" }
        );
        let _ = writeln!(s, "    {}", one_line(&super::cells::chain_text(c)));
    }
}
