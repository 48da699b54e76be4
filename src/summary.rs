//! `git ws-run`'s closing summary (terminal text, and the JSON that `--format json` prints
//! and `ws.notifyCommand` reads): renderers over the run's view and what only the finished
//! invocation knows.

use crate::outcome::RunOutcome;

/// `git ws-run --format json`: the run object `git ws-report RUN --format json` prints, plus
/// what only the finished invocation knows.
#[derive(serde::Serialize)]
struct RunSummaryJson<'a> {
    #[serde(flatten)]
    run: &'a crate::view::RunView,
    interrupted: bool,
    report_path: Option<&'a std::path::Path>,
    report_error: Option<&'a str>,
    db_path: &'a crate::db::DbLocation,
    exit_code: i32,
    /// Results the database never took, and where their work is.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    unrecorded: &'a [crate::outcome::Unrecorded],
    /// For a process that worked on a shared run.
    #[serde(skip_serializing_if = "Option::is_none")]
    worker: Option<WorkerJson<'a>>,
    /// A paused run: why, and when to resume it.
    #[serde(skip_serializing_if = "Option::is_none")]
    paused: Option<PausedJson>,
}

/// Why a run paused (`git ws-run --format json`).
#[derive(serde::Serialize)]
struct PausedJson {
    deferred: usize,
    usage_limited: usize,
    /// When the last usage limit resets (RFC 3339), if known.
    reset_at: Option<String>,
    budget_spent: bool,
    resume: String,
}

/// What one process did in a shared run (`git ws-run --format json`).
#[derive(serde::Serialize)]
struct WorkerJson<'a> {
    name: &'a str,
    recorded: Vec<&'a str>,
    returned: &'a [String],
    rejected: &'a [String],
    consolidated_here: bool,
    run_finished: bool,
}

fn summary_view(o: &RunOutcome) -> crate::view::RunView {
    let mut v = crate::view::RunView::build(crate::view::Input {
        consolidated: &o.consolidated,
        results: &o.results,
        merges: None,
        state: if o.interrupted {
            "interrupted"
        } else if o.paused() {
            "paused"
        } else {
            "finished"
        },
    });
    if o.integration.is_some() {
        v.set_integration(o.integration.clone());
    }
    v
}

/// `git ws-run --format json`: the run object and what only the finished invocation knows
/// (also what `ws.notifyCommand` gets on stdin).
pub fn summary_json(o: &RunOutcome) -> String {
    summary_json_of(o, &summary_view(o))
}

fn summary_json_of(o: &RunOutcome, view: &crate::view::RunView) -> String {
    let v = RunSummaryJson {
        run: view,
        interrupted: o.interrupted,
        report_path: o.report_path.as_deref(),
        report_error: o.report_error.as_deref(),
        db_path: &o.db_path,
        exit_code: o.exit_code(),
        unrecorded: &o.unrecorded,
        worker: o.shared.as_ref().map(|w| WorkerJson {
            name: &w.worker,
            recorded: w.ran.iter().map(|r| r.workstream_id.as_str()).collect(),
            returned: &w.returned,
            rejected: &w.rejected,
            consolidated_here: w.consolidated_here,
            run_finished: w.run_finished,
        }),
        paused: o.pause().map(|p| PausedJson {
            deferred: p.deferred,
            usage_limited: p.usage_limited,
            reset_at: p
                .reset
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            budget_spent: p.budget_spent,
            resume: resume_command(o),
        }),
    };
    format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
}

/// `git ws-run`'s closing summary for a terminal: the totals, usage, advice and where the
/// report and database are (a worker that left a shared run early: what it did).
pub fn summary_text(o: &RunOutcome) -> String {
    use crate::text::duration;
    use std::fmt::Write;
    let view = summary_view(o);
    let mut s = String::new();
    if let Some(w) = o.shared.as_ref().filter(|w| !w.run_finished) {
        return render_worker(o, w);
    }
    let _ = writeln!(
        s,
        "{}: {} completed{}, {} failed, {} skipped{} of {} in {} on {}{}",
        view.run_id,
        view.completed_count,
        match o.unrecorded.len() {
            0 => String::new(),
            n => format!(
                " ({} NOT RECORDED)",
                crate::text::plural(n, "result", "results")
            ),
        },
        view.failed_count,
        view.skipped_count,
        match view.deferred_count {
            0 => String::new(),
            n => format!(", {n} deferred"),
        },
        view.total_workstreams,
        duration(view.wall_seconds),
        crate::text::plural(view.agent_count, "agent", "agents"),
        if o.interrupted { " (interrupted)" } else { "" }
    );
    for line in unrecorded_lines(o) {
        let _ = writeln!(s, "{line}");
    }
    for line in unsaved_lines(o).into_iter().chain(paused_lines(o)) {
        let _ = writeln!(s, "{line}");
    }
    let _ = writeln!(
        s,
        "files: {}  commits: {}  errors: {}  warnings: {}{}",
        view.total_files_modified,
        view.total_commits,
        view.total_errors,
        view.total_warnings,
        view.overhead_seconds_per_workstream
            .map(|o| format!("  overhead: {}/workstream", duration(o)))
            .unwrap_or_default()
    );
    if let Some(line) = crate::report::usage_line(&view) {
        let _ = writeln!(s, "{line}");
    }
    if let Some(line) = crate::report::retries_line(&view) {
        let _ = writeln!(s, "{line}");
    }
    for t in &view.tampering {
        let v = |x: &Option<String>| x.clone().unwrap_or_else(|| "(absent)".into());
        let _ = writeln!(
            s,
            "tampering: {} changed: {} -> {} ({})",
            t.change.path,
            v(&t.change.old),
            v(&t.change.new),
            t.attribution
        );
    }
    if o.integration.is_some() {
        let _ = writeln!(s, "{}", crate::report::integration_line(&view));
    }
    for r in &view.recommendations {
        // An interrupted run is finished by --resume, not rerun: the line below says so,
        // with `--remote` for a shared run.
        if o.interrupted && (r.contains("--rerun-failed") || r.contains("--resume")) {
            continue;
        }
        let _ = writeln!(s, "- {r}");
    }
    if o.interrupted {
        let _ = writeln!(s, "interrupted: {} finishes it", resume_command(o));
    }
    match &o.report_path {
        Some(p) => {
            let _ = writeln!(s, "report:   {}", p.display());
        }
        None => {
            let _ = writeln!(s, "report:   not written");
        }
    }
    let _ = writeln!(s, "database: {}", o.db_path.display());
    if let Some(w) = &o.shared {
        let _ = writeln!(
            s,
            "worker:   {} recorded {} of them{}",
            w.worker,
            w.ran.len(),
            if w.consolidated_here {
                " and consolidated the run"
            } else {
                ""
            }
        );
    }
    s
}

/// Failed workstreams whose work could not be committed (a full disk under the git
/// objects): where their uncommitted files were copied, one line each, from the error
/// `ws_git` wrote.
pub fn unsaved_lines(o: &RunOutcome) -> Vec<String> {
    const COPIED: &str = "uncommitted file(s) were copied to ";
    let mut lines = Vec::new();
    for r in &o.results {
        for e in &r.errors {
            let Some(i) = e.message.find(COPIED) else {
                continue;
            };
            let rest = &e.message[i + COPIED.len()..];
            let dir = rest.split(" (branch ").next().unwrap_or(rest);
            lines.push(format!(
                "NOT COMMITTED: {} ({}): the disk refused its commit; its uncommitted files are in {}",
                crate::text::clean(&r.workstream_id),
                r.status,
                crate::text::clean(dir)
            ));
        }
    }
    lines
}

/// The command that continues a paused run (a shared run is not resumed: its deferred
/// workstreams run again as a new shared run).
fn resume_command(o: &RunOutcome) -> String {
    if o.shared.is_some() {
        format!("git ws-run --rerun-failed {} --remote NAME", o.run_id)
    } else {
        format!("git ws-run --resume {}", o.run_id)
    }
}

/// Why the run paused and how to continue it (empty unless it paused): the deferred
/// workstreams, when the usage limit resets, whether the budget was spent, the command.
pub fn paused_lines(o: &RunOutcome) -> Vec<String> {
    let Some(p) = o.pause() else {
        return Vec::new();
    };
    let mut lines = vec![format!(
        "PAUSED: {} deferred, not failed",
        crate::text::plural(p.deferred, "workstream", "workstreams")
    )];
    if p.usage_limited > 0 {
        lines.push(match p.reset {
            Some(t) => format!(
                "  {} hit an agent's usage limit; it resets at {} ({} local), later than ws.maxWait",
                p.usage_limited,
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M")
            ),
            None => format!(
                "  {} hit an agent's usage limit that gave no reset time (see the report for the agent's words)",
                p.usage_limited
            ),
        });
    }
    if p.budget_spent {
        lines.push(
            "  the run's --budget was spent: what had not started is deferred (add --budget USD to the resume for a new budget)"
                .to_string(),
        );
    }
    lines.push(format!(
        "  continue it with: {}{}",
        resume_command(o),
        if p.budget_spent { " --budget USD" } else { "" }
    ));
    lines
}

/// What the run could not record, one line each, and how to record it (empty when all is
/// recorded): in the closing summary, and on stderr whatever `-q` says.
pub fn unrecorded_lines(o: &RunOutcome) -> Vec<String> {
    if o.unrecorded.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![format!(
        "NOT RECORDED: {} never reached the database {}:",
        crate::text::plural(o.unrecorded.len(), "result", "results"),
        o.db_path.display()
    )];
    for u in &o.unrecorded {
        lines.push(format!(
            "  {} ({}): its work is on branch {}{}",
            crate::text::clean(&u.workstream_id),
            u.status,
            u.branch.as_deref().unwrap_or("(none)"),
            u.spool
                .as_ref()
                .map(|p| format!(", its result in {}", p.display()))
                .unwrap_or_else(
                    || ", its result in memory only (the spool could not be written)".into()
                )
        ));
    }
    lines.push(match o.shared {
        Some(_) => format!(
            "  once the database answers again: git ws-run --join {} --remote <the run's remote>, from this repository, records them without running them again",
            o.run_id
        ),
        None => format!(
            "  once the database can be written again: git ws-run --resume {} records them without running them again",
            o.run_id
        ),
    });
    lines
}

/// The closing summary of a worker that left a shared run before it finished.
fn render_worker(o: &RunOutcome, w: &crate::outcome::SharedOutcome) -> String {
    use std::fmt::Write;
    let completed = w
        .ran
        .iter()
        .filter(|r| r.status == crate::model::Status::Completed)
        .count();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: worker {} recorded {}: {} completed, {} failed{}{}{}",
        o.run_id,
        w.worker,
        crate::text::plural(w.ran.len(), "workstream", "workstreams"),
        completed,
        w.ran.len() - completed,
        if w.returned.is_empty() {
            String::new()
        } else {
            format!("; gave {} back to the queue", w.returned.len())
        },
        if w.rejected.is_empty() {
            String::new()
        } else {
            format!(
                "; {} refused",
                crate::text::plural(w.rejected.len(), "late result", "late results")
            )
        },
        if o.interrupted { " (interrupted)" } else { "" }
    );
    let _ = writeln!(
        s,
        "the run goes on with the other workers (one of them consolidates it): git ws-report {}",
        o.run_id
    );
    let _ = writeln!(s, "database: {}", o.db_path.display());
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::fixture;

    #[test]
    fn ws_run_closing_summary_snapshots() {
        let outcome = crate::outcome::RunOutcome {
            integration: None,
            run_id: fixture::RUN.into(),
            consolidated: fixture::consolidated(),
            results: fixture::results(),
            db_path: std::path::PathBuf::from("/repo/.state/multi_agent_consolidated.db").into(),
            report_path: Some(
                format!("/repo/reports/multi_agent_consolidated_{}.md", fixture::RUN).into(),
            ),
            report_error: None,
            interrupted: false,
            notes: vec![],
            shared: None,
            unrecorded: Vec::new(),
        };
        insta::assert_snapshot!("ws_run_human", summary_text(&outcome));
        let json: serde_json::Value = serde_json::from_str(&summary_json(&outcome)).unwrap();
        // The run object of `git ws-report RUN --format json` (nothing merged yet), plus the
        // invocation's own fields.
        let view: serde_json::Value = serde_json::from_str(&crate::report::json_sections(
            &crate::view::RunView::build(crate::view::Input {
                consolidated: &outcome.consolidated,
                results: &outcome.results,
                merges: None,
                state: "finished",
            }),
            &[],
        ))
        .unwrap();
        for (k, v) in view.as_object().unwrap() {
            assert_eq!(&json[k], v, "{k}");
        }
        assert_eq!(json["exit_code"], 1);
        assert_eq!(json["interrupted"], false);
    }
}
