//! Command-line front ends: clap definitions for `git ws-run`, `git ws-report` and
//! `git ws-merge`, their conversion into library options, signal handling, and the closing
//! summary.

pub mod docs;
pub mod merge;
pub mod report;
pub mod review;
pub mod signals;

use crate::commands::prune::{self, BranchPrune, Prune, PruneBranches, Pruned};
use crate::commands::run::{self as run_cmd, DryRun, Ran, RunMode, RunOptions};
use crate::error::{Error, EXIT_NOTHING_RAN};
use crate::outcome::RunOutcome;
use crate::workstream;
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Output format of the closing summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    Human,
    Json,
}

/// Run a backlog of workstreams across parallel agents, each in its own git worktree, and
/// consolidate what they did into SQLite and a Markdown report.
#[derive(Debug, Parser)]
#[command(
    name = "git-ws-run",
    bin_name = "git ws-run",
    version,
    after_help = run_after_help()
)]
pub struct RunArgs {
    /// Parallel agents, each in its own git worktree [default: git config ws.agents, else 3]
    #[arg(long, value_name = "N")]
    pub agents: Option<usize>,
    /// Directory of workstream files [default: workstreams/ at the repository root]
    #[arg(long, value_name = "DIR")]
    pub workstreams: Option<PathBuf>,
    /// Commit every workstream starts from
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    pub base: String,
    /// Command for workstreams that give a prompt [default: git config ws.agentCommand]
    #[arg(long, value_name = "CMD")]
    pub agent_cmd: Option<String>,
    /// Coding agent preset for prompt workstreams: claude, codex, aider, gemini [default: git config ws.agent]
    #[arg(long, value_name = "NAME", conflicts_with = "agent_cmd")]
    pub agent: Option<String>,
    /// Stop dispatching once the run's recorded spend reaches USD dollars (the rest is deferred: the run pauses, --resume RUN --budget USD continues)
    #[arg(long, value_name = "USD", value_parser = parse_budget)]
    pub budget: Option<f64>,
    /// Retry transient failures (rate limits, overload) up to N times with backoff [default: git config ws.retries, else 0]
    #[arg(long, value_name = "N", value_parser = parse_retries)]
    pub retries: Option<u32>,
    /// Default per-workstream time limit (90s, 30m, 1h)
    #[arg(long, value_name = "DUR", default_value = "30m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL when stopping a command
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = parse_duration)]
    pub grace: Duration,
    /// Run just these workstream ids (comma-separated)
    #[arg(long, value_name = "ID,…", value_delimiter = ',')]
    pub only: Vec<String>,
    /// A new run of the workstreams that failed or were skipped in RUN
    #[arg(long, value_name = "RUN", num_args = 0..=1, default_missing_value = "latest", conflicts_with_all = ["resume", "only"])]
    pub rerun_failed: Option<String>,
    /// Finish an interrupted run: run only what has no final result yet
    #[arg(long, value_name = "RUN", conflicts_with = "only")]
    pub resume: Option<String>,
    /// Validate every file, print the plan, change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Stop dispatching after the first failure (NO STOP is the default)
    #[arg(long)]
    pub fail_fast: bool,
    /// Hand a branch the integration leaves out (conflict, breaks the tests) back to its agent as <id>~fixK, at most N times; kept for the run [default: git config ws.fixUp, 0 = off]
    #[arg(long, value_name = "N")]
    pub fix_up: Option<usize>,
    /// Merge each completed workstream onto ws/<run>/integration as the run goes, in
    /// memory, testing the tips with --test in spare pool worktrees (git config ws.integrate)
    #[arg(long)]
    pub integrate: bool,
    /// With --integrate: the test command for integration tips [default: git config
    /// ws.integrationTest]
    #[arg(long, value_name = "CMD", requires = "integrate")]
    pub test: Option<String>,
    /// With --integrate: test runs at once when bisecting a failing tip [default: the agents]
    #[arg(long, value_name = "K", requires = "integrate", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: Option<u64>,
    /// Keep this run's agent worktrees as the pool for the next run (the default; git config ws.keepWorktrees)
    #[arg(long, conflicts_with = "remove_worktrees")]
    pub keep_worktrees: bool,
    /// Remove this run's agent worktrees at the end of the run
    #[arg(long)]
    pub remove_worktrees: bool,
    /// Remove every agent worktree of the pool that no live run holds, then exit
    #[arg(long, conflicts_with_all = ["resume", "rerun_failed", "dry_run", "prune_branches"])]
    pub prune_worktrees: bool,
    /// Delete the ws/<run>/… branches of finished runs that are merged, then exit
    #[arg(long, conflicts_with_all = ["resume", "rerun_failed", "dry_run"])]
    pub prune_branches: bool,
    /// With --prune-branches: also delete unmerged branches of runs older than DAYS days
    #[arg(long, value_name = "DAYS", requires = "prune_branches")]
    pub older_than: Option<u64>,
    /// With --prune-branches: delete every branch of every finished run
    #[arg(long, requires = "prune_branches")]
    pub all: bool,
    /// Database: an SQLite path or a postgres:// URL [default: env GIT_WS_DATABASE_URL, git
    /// config ws.database, else .state/multi_agent_consolidated.db at the repository root]
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<crate::db::DbLocation>,
    /// Reports directory [default: reports/ at the repository root]
    #[arg(long, value_name = "DIR")]
    pub reports_dir: Option<PathBuf>,
    /// Share the run through this git remote (and a PostgreSQL --db): other clones join it
    /// with --join; also the remote a joining worker fetches the base from and pushes to
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
    /// Work on a shared run (`latest`: the most recent one still open, waiting for one):
    /// claim and run its workstreams until none are left
    #[arg(long, value_name = "RUN", conflicts_with_all = ["resume", "rerun_failed", "only", "dry_run"], requires = "remote")]
    pub join: Option<String>,
    /// This process's name in a shared run: agent ids become agent-K@NAME [default:
    /// HOSTNAME-PID]
    #[arg(long, value_name = "NAME")]
    pub worker: Option<String>,
    /// Closing summary format on stdout
    #[arg(long, value_enum, default_value = "human")]
    pub format: SummaryFormat,
    /// No progress display on stderr
    #[arg(long, short)]
    pub quiet: bool,
    /// Colour statuses and failures: auto (only on a terminal, and not when NO_COLOR is
    /// set), always, never
    #[arg(long, value_name = "WHEN", value_enum, default_value = "auto")]
    pub color: crate::colour::ColorChoice,
    /// Install the post-merge hook into this repository, then exit
    #[arg(long)]
    pub install_hooks: bool,
    #[command(flatten)]
    pub docs: docs::DocsArgs,
}

/// The end of `git ws-run --help`: exit statuses, the settings (from [`crate::config::KEYS`])
/// and where the pool is.
fn run_after_help() -> String {
    format!(
        "Exit status: 0 every workstream completed; 1 the run finished but something failed or was skipped; 2 nothing ran; 130 interrupted.\n{}\nAgent worktrees live in ../.<repo>.ws-pool/agent-N (git config ws.poolDir) and are kept between runs (the pool); --prune-worktrees removes them.",
        crate::config::help_line(crate::config::Command::Run)
    )
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    workstream::parse_duration(s).map_err(String::from)
}

fn parse_budget(s: &str) -> Result<f64, String> {
    let usd: f64 = s
        .trim()
        .trim_start_matches('$')
        .parse()
        .map_err(|_| format!("{s:?} is not an amount of dollars (e.g. 5 or 2.50)"))?;
    crate::agents::check_budget(usd).map_err(String::from)
}

fn parse_retries(s: &str) -> Result<u32, String> {
    let n: u32 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of retries"))?;
    crate::agents::check_retries(n).map_err(String::from)
}

impl RunArgs {
    /// The library options these flags describe.
    pub fn to_options(&self, cwd: PathBuf) -> RunOptions {
        let mode = match (&self.resume, &self.rerun_failed, &self.join) {
            (_, _, Some(j)) => RunMode::Join(j.clone()),
            (Some(r), _, _) => RunMode::Resume(r.clone()),
            (None, Some(r), _) => RunMode::RerunFailed(r.clone()),
            _ => RunMode::New,
        };
        RunOptions {
            cwd,
            agents: self.agents,
            workstreams_dir: self.workstreams.clone(),
            base: Some(self.base.clone()),
            agent_cmd: self.agent_cmd.clone(),
            timeout: Some(self.timeout),
            grace: Some(self.grace),
            only: self
                .only
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            mode,
            fail_fast: self.fail_fast,
            fix_up: self.fix_up,
            keep_worktrees: if self.remove_worktrees {
                Some(false)
            } else if self.keep_worktrees {
                Some(true)
            } else {
                None
            },
            worktree_expiry: None,
            db_path: self.db.clone(),
            reports_dir: self.reports_dir.clone(),
            keep_ignored: None,
            agent_options: crate::agents::Options {
                agent: self.agent.clone(),
                budget_usd: self.budget,
                retries: self.retries,
            },
            remote: self.remote.clone(),
            worker: self.worker.clone(),
            lease: None,
            integrate: self.integrate.then_some(true),
            integration_test: self.test.clone(),
            integration_jobs: self.jobs.map(|j| j as usize),
        }
    }

    /// What `--prune-worktrees` / `--prune-branches` ask for, if either.
    pub fn to_prune(&self, cwd: &std::path::Path) -> Option<Prune> {
        if self.prune_worktrees {
            return Some(Prune::Worktrees(cwd.to_path_buf()));
        }
        self.prune_branches.then(|| {
            Prune::Branches(PruneBranches {
                cwd: cwd.to_path_buf(),
                db_path: self.db.clone(),
                older_than_days: self.older_than,
                all: self.all,
            })
        })
    }

    /// `--prune-worktrees` / `--prune-branches`: do it, print what was done, and return the
    /// exit status; `None` when neither was asked for.
    pub fn run_maintenance(&self, cwd: &std::path::Path) -> Option<i32> {
        let what = self.to_prune(cwd)?;
        Some(match prune::prune(&what) {
            Ok(Pruned::Worktrees(p)) => {
                print!("{}", render_pool_prune(&p));
                0
            }
            Ok(Pruned::Branches(p)) => {
                print!("{}", render_branch_prune(&p));
                i32::from(!p.failures.is_empty())
            }
            Err(e) => fail(&e),
        })
    }
}

/// What `--prune-worktrees` did, one line per worktree.
pub fn render_pool_prune(p: &crate::git::PoolSweep) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for line in p.removed.iter().chain(&p.repaired) {
        let _ = writeln!(s, "{line}");
    }
    for slot in &p.busy {
        let _ = writeln!(
            s,
            "kept agent worktree {slot}: a running git ws-run holds it"
        );
    }
    for f in &p.failures {
        let _ = writeln!(s, "error: {f}");
    }
    let _ = writeln!(
        s,
        "pruned {}{}",
        crate::text::plural(p.removed.len(), "agent worktree", "agent worktrees"),
        if p.busy.is_empty() {
            String::new()
        } else {
            format!(", kept {} in use", p.busy.len())
        }
    );
    s
}

/// What `--prune-branches` did: each deleted branch with its tip, then a summary of what
/// was kept and why.
pub fn render_branch_prune(p: &BranchPrune) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for (name, tip, why) in &p.deleted {
        let _ = writeln!(
            s,
            "deleted {name} (was {}; {why})",
            &tip[..tip.len().min(12)]
        );
    }
    for f in &p.failures {
        let _ = writeln!(s, "error: {f}");
    }
    let mut reasons: std::collections::BTreeMap<&str, usize> = Default::default();
    for (_, why) in &p.kept {
        *reasons.entry(why.as_str()).or_default() += 1;
    }
    let kept = reasons
        .iter()
        .map(|(why, n)| format!("{n} {why}"))
        .collect::<Vec<_>>()
        .join(", ");
    let refs = p
        .deleted
        .iter()
        .filter(|(name, _, _)| name.starts_with("refs/"))
        .count();
    let _ = writeln!(
        s,
        "deleted {} ws/ branch(es){}; kept {}{}{}",
        p.deleted.len() - refs,
        if refs > 0 {
            format!(" and {refs} fix-up start ref(s)")
        } else {
            String::new()
        },
        p.kept.len(),
        if kept.is_empty() {
            String::new()
        } else {
            format!(" ({kept})")
        },
        if p.kept.iter().any(|(_, w)| w == "not merged") {
            "; --older-than DAYS or --all deletes unmerged ones; the database keeps every commit SHA"
        } else {
            ""
        }
    );
    s
}

/// `git ws-run`: returns the process exit status.
pub fn run_main() -> i32 {
    let args: RunArgs = docs::parse();
    crate::colour::apply(args.color);
    let cwd = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("git ws-run: failed to read the current directory: {e}");
            return EXIT_NOTHING_RAN;
        }
    };
    if let Some(code) = args.docs.run("git ws-run") {
        return code;
    }
    if let Some(code) = args.run_maintenance(&cwd) {
        return code;
    }
    let opts = args.to_options(cwd);
    if args.install_hooks {
        return match crate::commands::hooks::install(&opts.cwd) {
            Ok(msg) => {
                println!("{msg}");
                0
            }
            Err(e) => fail(&e),
        };
    }
    if args.dry_run {
        return match run_cmd::dry_run(&opts) {
            Ok(d) => {
                print!(
                    "{}",
                    crate::colour::paint_text(&render_dry_run(&d), crate::colour::Stream::Stdout)
                );
                if d.loaded.invalid.is_empty() {
                    0
                } else {
                    crate::error::EXIT_FAILURES
                }
            }
            Err(e) => fail(&e),
        };
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&Error::new(format!("failed to start the runtime: {e}"))),
    };
    let format = args.format;
    let quiet = args.quiet;
    rt.block_on(async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        // Installed before the run starts, so an early Ctrl-C winds down instead of killing.
        let run_id = signals::RunIdCell::default();
        match signals::signal_streams() {
            Some(streams) => {
                tokio::spawn(signals::watch_signals(streams, tx, run_id.clone()));
            }
            None => std::mem::forget(tx),
        }
        let observer = Box::new(signals::RunIdObserver {
            inner: crate::progress::for_stderr(quiet),
            run_id,
        });
        // Resolved, loaded and planned once; then run.
        match run_cmd::run(opts, observer, rx).await {
            Ok(Ran::NothingToDo(why)) => {
                eprintln!("git ws-run: {why}");
                0
            }
            Ok(Ran::Run(outcome)) => {
                let summary = render_summary(&outcome, format);
                match format {
                    SummaryFormat::Human => {
                        print!(
                            "{}",
                            crate::colour::paint_text(&summary, crate::colour::Stream::Stdout)
                        )
                    }
                    SummaryFormat::Json => print!("{summary}"),
                }
                if let Some(e) = &outcome.report_error {
                    eprintln!("git ws-run: {e}");
                }
                // Never quiet: results not kept are said on stderr, even with -q.
                for line in crate::summary::unrecorded_lines(&outcome) {
                    let line = format!("git ws-run: {line}");
                    eprintln!(
                        "{}",
                        crate::colour::paint_text(&line, crate::colour::Stream::Stderr)
                    );
                }
                outcome.exit_code()
            }
            Err(e) => fail(&e),
        }
    })
}

fn fail(e: &Error) -> i32 {
    let line = format!("git ws-run: {}", crate::text::clean(&e.to_string()));
    eprintln!("{}", crate::colour::paint_err(&line));
    e.exit_code()
}

/// The dry run's output: problems first, then the plan.
pub fn render_dry_run(d: &DryRun) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "dry run: {}: {} valid, {} invalid; base {}; {}",
        crate::text::plural(
            d.loaded.valid.len() + d.loaded.invalid.len(),
            "workstream file",
            "workstream files"
        ),
        d.loaded.valid.len(),
        d.loaded.invalid.len(),
        &d.base[..d.base.len().min(12)],
        crate::text::plural(d.agents, "agent", "agents")
    );
    for inv in &d.loaded.invalid {
        let _ = writeln!(s, "error: {}", inv.message);
    }
    for w in &d.loaded.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    for sk in &d.skips {
        let _ = writeln!(s, "would skip {}: {}", sk.id, sk.reason);
    }
    if !d.plan.is_empty() {
        let _ = writeln!(
            s,
            "plan (expected start, agent, workstream, expected duration):"
        );
        for step in &d.plan {
            let _ = writeln!(
                s,
                "  +{:>7}  {:<9} {:<24} ~{}",
                crate::text::duration(step.start_secs),
                crate::model::agent_name(step.agent),
                step.id,
                crate::text::duration(step.expected_secs)
            );
        }
    }
    crate::text::clean(&s)
}

/// The closing summary printed on stdout.
pub fn render_summary(o: &RunOutcome, format: SummaryFormat) -> String {
    match format {
        SummaryFormat::Json => crate::summary::summary_json(o),
        SummaryFormat::Human => crate::text::clean(&crate::summary::summary_text(o)),
    }
}
