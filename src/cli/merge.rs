//! `git ws-merge`: its clap definition, the conversion into [`MergeOptions`], and the
//! human and JSON output of what it did.

use crate::commands::merge::{self, MergeOptions, MergeOutcome};
use crate::error::EXIT_NOTHING_RAN;
use crate::text::{duration, one_line, truncate};
use clap::{Parser, ValueEnum};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MergeFormat {
    Human,
    Json,
}

/// Land a run: merge its completed workstream branches, in the merge forecast's order and
/// in memory, onto one integration branch, leaving out those that conflict; with --test,
/// test the combination and leave out (by bisection) each merge that breaks it.
#[derive(Debug, Parser)]
#[command(
    name = "git-ws-merge",
    bin_name = "git ws-merge",
    version,
    after_help = merge_after_help()
)]
pub struct MergeArgs {
    /// Run id to integrate (`latest` works)
    #[arg(default_value = "latest")]
    pub run: String,
    /// Commit to integrate onto
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    pub onto: String,
    /// Branch to create or reset [default: ws/<run-id>/integration]
    #[arg(long, value_name = "BRANCH")]
    pub into: Option<String>,
    /// Test command (run by `sh -c` in a pool worktree); a merge that makes it fail is left
    /// out [default: git config ws.integrationTest]
    #[arg(long, value_name = "CMD", conflicts_with = "no_test")]
    pub test: Option<String>,
    /// Do not test, even if ws.integrationTest is set
    #[arg(long)]
    pub no_test: bool,
    /// Time limit of one test run (90s, 30m, 1h); then its process group is stopped
    #[arg(long, value_name = "DUR", default_value = "30m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Test runs at once, each in its own pool worktree; a failure is bisected that many
    /// ways at once [default: the pool size, git config ws.agents, 3]
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: Option<u64>,
    /// Time between SIGTERM and SIGKILL when stopping a test run
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = parse_duration)]
    pub grace: Duration,
    /// Print the plan and what would be merged and left out; write nothing (no tests run)
    #[arg(long)]
    pub dry_run: bool,
    /// Fast-forward --onto's local branch to the integration (its worktree too, when it is
    /// checked out there and clean); refused for a dirty worktree
    #[arg(long)]
    pub ff: bool,
    /// Integrate a run that did not finish (still marked running, its coordinator dead, or
    /// interrupted) anyway: what has a result is integrated, the workstreams without one
    /// are left out as no-result, and the JSON and the report say "incomplete" [default:
    /// such a run is refused, exit 2]
    #[arg(long)]
    pub incomplete: bool,
    /// Hand each prompt workstream's branch left out as a conflict or a test breaker back to
    /// its agent as follow-up <id>~fixK (git ws-run --resume RUN runs it; the next git
    /// ws-merge integrates it in its place), at most N times per workstream [default: the
    /// run's --fix-up, else git config ws.fixUp, else 0 = off]
    #[arg(long, value_name = "N")]
    pub fix_up: Option<usize>,
    /// Directory of the workstream files, read for --fix-up [default: workstreams/ at the
    /// repository root]
    #[arg(long, value_name = "DIR")]
    pub workstreams: Option<PathBuf>,
    /// Output format on stdout
    #[arg(long, value_enum, default_value = "human")]
    pub format: MergeFormat,
    /// No progress lines on stderr
    #[arg(long, short)]
    pub quiet: bool,
    /// Database: an SQLite path or a postgres:// URL [default: env GIT_WS_DATABASE_URL, git
    /// config ws.database, else .state/multi_agent_consolidated.db at the repository root]
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<crate::db::DbLocation>,
    /// Reports directory (the run's report is rewritten) [default: reports/ at the
    /// repository root]
    #[arg(long, value_name = "DIR")]
    pub reports_dir: Option<PathBuf>,
    /// Colour what was merged and left out: auto (only on a terminal, and not when NO_COLOR
    /// is set), always, never; JSON is never coloured
    #[arg(long, value_name = "WHEN", value_enum, default_value = "auto")]
    pub color: crate::colour::ColorChoice,
    #[command(flatten)]
    pub docs: super::docs::DocsArgs,
}

/// The end of `git ws-merge --help`: what it never touches, exit statuses, the settings
/// (from [`crate::config::KEYS`]).
fn merge_after_help() -> String {
    format!(
        "Your worktree, index and HEAD are never touched (only --ff moves --onto's branch, and the clean worktree it is checked out in). The tests run in a worktree of the agent pool (<pool>/agent-N).\nOnly finished runs are integrated: a run still running, whose coordinator died or that was interrupted before every workstream had a result is refused (finish it with git ws-run --resume RUN, or pass --incomplete).\nExit status: 0 every completed branch integrated (and the tests pass); 1 a completed branch was left out (conflict, breaks-tests, missing-branch), or --incomplete left out workstreams without a result; 2 nothing written: bad usage, unknown run, an unfinished run without --incomplete, --onto that does not resolve, a test command that cannot start, tests failing on --onto itself, a branch it refuses to reset or move; 130 interrupted.\n{}",
        crate::config::help_line(crate::config::Command::Merge)
    )
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::workstream::parse_duration(s).map_err(String::from)
}

impl MergeArgs {
    /// The library options these flags describe.
    pub fn to_options(&self, cwd: PathBuf) -> MergeOptions {
        MergeOptions {
            cwd,
            run: self.run.clone(),
            onto: self.onto.clone(),
            into: self.into.clone(),
            test: if self.no_test {
                Some(String::new())
            } else {
                self.test.clone()
            },
            timeout: self.timeout,
            grace: self.grace,
            dry_run: self.dry_run,
            ff: self.ff,
            db: self.db.clone(),
            reports_dir: self.reports_dir.clone(),
            incomplete: self.incomplete,
            jobs: self.jobs.map(|j| j as usize),
            fix_up: self.fix_up,
            workstreams_dir: self.workstreams.clone(),
        }
    }
}

/// `git ws-merge`: returns the process exit status.
pub fn merge_main() -> i32 {
    let args: MergeArgs = super::docs::parse();
    crate::colour::apply(args.color);
    if let Some(code) = args.docs.run("git ws-merge") {
        return code;
    }
    let cwd = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("git ws-merge: failed to read the current directory: {e}");
            return EXIT_NOTHING_RAN;
        }
    };
    let opts = args.to_options(cwd);
    let quiet = args.quiet;
    let mut progress = |line: &str| {
        if !quiet {
            eprintln!("git ws-merge: {}", crate::text::clean(line));
        }
    };
    match merge::merge(&opts, &mut progress) {
        Ok(outcome) => {
            let out = render(&outcome, args.format);
            match args.format {
                MergeFormat::Human => print!("{}", crate::colour::paint_merge(&out)),
                MergeFormat::Json => print!("{out}"),
            }
            for n in &outcome.notes {
                let line = format!("git ws-merge: {}", crate::text::clean(n));
                eprintln!(
                    "{}",
                    crate::colour::paint_text(&line, crate::colour::Stream::Stderr)
                );
            }
            outcome.exit_code()
        }
        Err(e) => {
            let line = format!("git ws-merge: {}", crate::text::clean(&e.to_string()));
            eprintln!("{}", crate::colour::paint_err(&line));
            e.exit_code()
        }
    }
}

/// What `git ws-merge` prints on stdout.
pub fn render(o: &MergeOutcome, format: MergeFormat) -> String {
    match format {
        MergeFormat::Json => {
            /// The record with the JSON contract's version first, as every git-ws JSON
            /// object carries it.
            #[derive(serde::Serialize)]
            struct Versioned<'a> {
                schema: u32,
                #[serde(flatten)]
                record: &'a crate::model::IntegrationRecord,
            }
            let out = Versioned {
                schema: crate::view::SCHEMA,
                record: &o.record,
            };
            let mut s = serde_json::to_string_pretty(&out).unwrap_or_default();
            s.push('\n');
            s
        }
        MergeFormat::Human => crate::text::clean(&human(o)),
    }
}

fn short(s: &str) -> String {
    s.chars().take(10).collect()
}

fn human(o: &MergeOutcome) -> String {
    let r = &o.record;
    let mut s = String::new();
    // The counts add up to the lists below: left out (conflict, breaks-tests, …) plus
    // not completed is every listed exclusion.
    let not_completed = r
        .excluded
        .iter()
        .filter(|x| x.reason == "not-completed")
        .count();
    let left = r.excluded.len() - not_completed;
    let _ = writeln!(
        s,
        "{}{}: {} (onto {} {}): {} {}, {} {}{}{}",
        if r.dry_run { "dry run: " } else { "" },
        r.run_id,
        r.branch,
        short(&r.onto),
        r.onto_rev,
        r.merged.len(),
        if r.dry_run { "to merge" } else { "merged" },
        left,
        if r.dry_run {
            "to leave out"
        } else {
            "left out"
        },
        match not_completed {
            0 => String::new(),
            n => format!(", {n} not completed"),
        },
        match &r.test_command {
            Some(cmd) if r.dry_run => format!("; would test with `{}`", one_line(cmd)),
            Some(cmd) => format!(
                "; tested with `{}` ({} test run{})",
                one_line(cmd),
                r.test_runs,
                if r.test_runs == 1 { "" } else { "s" }
            ),
            None => String::new(),
        }
    );
    // A dry run's tip exists only in memory: nothing to show.
    if !r.dry_run {
        let _ = writeln!(s, "tip: {}", r.tip);
    }
    if r.incomplete {
        let _ = writeln!(
            s,
            "incomplete: the run did not finish (--incomplete); without a result: {}",
            if r.without_result.is_empty() {
                "none".to_string()
            } else {
                r.without_result.join(", ")
            }
        );
    }
    if r.dry_run && !o.order.is_empty() {
        s.push_str("\nplan (the merge forecast's order):\n");
        for (i, step) in o.order.iter().enumerate() {
            let _ = writeln!(
                s,
                "  {:>3}. {:<24} {}",
                i + 1,
                step.workstream_id,
                truncate(&one_line(&step.reason), 110)
            );
        }
    }
    if !r.merges.is_empty() {
        let _ = writeln!(s, "\n{}:", if r.dry_run { "would merge" } else { "merged" });
        let mut before = r.onto.as_str();
        for (i, m) in r.merges.iter().enumerate() {
            let at = if m.merge_commit == before {
                "already contained".to_string()
            } else {
                short(&m.merge_commit)
            };
            before = &m.merge_commit;
            let _ = writeln!(s, "  {:>3}. {:<24} {at}", i + 1, m.workstream_id);
        }
    }
    if !r.excluded.is_empty() {
        let _ = writeln!(
            s,
            "\n{}:",
            if r.dry_run {
                "would leave out"
            } else {
                "left out"
            }
        );
        for x in &r.excluded {
            let _ = writeln!(
                s,
                "  {:<24} {:<14} {}",
                x.workstream_id,
                x.reason,
                truncate(&one_line(&x.detail), 120)
            );
            if let Some(t) = &x.output_tail {
                let lines: Vec<&str> = t.lines().collect();
                for l in &lines[lines.len().saturating_sub(6)..] {
                    let _ = writeln!(s, "  {:<24} | {}", "", truncate(&one_line(l), 110));
                }
            }
        }
    }
    if !o.fixups.is_empty() {
        s.push_str("\nfix-ups:\n");
        for l in &o.fixups {
            let _ = writeln!(s, "  {}", truncate(&one_line(l), 150));
        }
    }
    if !r.tests.is_empty() {
        let total: f64 = r.tests.iter().map(|t| t.duration_seconds).sum();
        let _ = writeln!(
            s,
            "\ntest runs: {} in {} (the first on the onto commit alone)",
            r.tests.len(),
            duration(total)
        );
    }
    if let Some(b) = &r.fast_forwarded {
        let _ = writeln!(s, "\nfast-forwarded {b} to {}", short(&r.tip));
    }
    if let Some(line) = &o.merges_line {
        let _ = writeln!(s, "{line}");
    }
    if r.dry_run {
        s.push_str("\nnothing was written (dry run)\n");
    } else {
        if r.fast_forwarded.is_none() && r.tip != r.onto {
            let _ = writeln!(
                s,
                "\nnext: git merge --ff-only {}   (or git ws-merge --ff)",
                r.branch
            );
        }
        if let Some(p) = &o.report_path {
            let _ = writeln!(s, "report:   {}", p.display());
        }
        let _ = writeln!(s, "database: {}", o.db.display());
    }
    s
}
