//! `git ws-merge`: land a run's work on one integration branch. Resolves the run and
//! `--onto`, refuses what it must not touch (before anything is written), takes the run's
//! completed branches in the forecast's order, merges them in memory onto `onto`
//! ([`git::integrate`]), and with a test command tests the combination in a pool worktree,
//! leaving out by bisection each merge that breaks it ([`git::integrate_and_test_each`];
//! with `--jobs K`, K commits at a time in K pool worktrees,
//! [`git::integrate_and_test_parallel`]).
//! Then it writes the branch, optionally fast-forwards `--onto`'s branch (`--ff`), records
//! the attempt with its steps and test runs, and rewrites the run's report.
//!
//! Only finished runs are integrated: a run that is still running, whose coordinator died,
//! or that was interrupted before every workstream had a result is refused (exit 2, naming
//! the workstreams without a result and `git ws-run --resume`), unless `--incomplete` says
//! to integrate what exists; the record then says `incomplete` and lists them.
//!
//! Exit statuses ([`MergeOutcome::exit_code`], [`MergeFailure::exit_code`]): 0 every
//! completed branch integrated (and the tests pass), 1 a completed branch was left out (or
//! an `--incomplete` run had workstreams without a result), 2 nothing written (usage,
//! unknown run, an unfinished run, `--onto` that does not resolve, a test command that
//! cannot start, tests that fail on `onto` itself, a state it refuses to touch), 130
//! interrupted.

use crate::db::{ConsolidationDatabase, DbLocation, MergeRecord};
use crate::error::{Error, EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK};
use crate::git::{self, Integration, Objects};
use crate::layout::Reports;
use crate::model::{
    ErrorType, ForecastStep, IntegrationExclusion, IntegrationRecord, IntegrationTestRun, Status,
    WorkstreamResult,
};
use crate::process::{self, Ending};
use crate::runner::tiptest::{self, merges_text, short, verdict, TipTestError, TipTester};
use crate::workspace::Workspace;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The git config key for the default test command.
pub const TEST_CONFIG_KEY: &str = crate::config::INTEGRATION_TEST;

/// What `git ws-merge` is asked to do.
#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// Where the command runs (the repository is discovered from here; `--onto HEAD` is
    /// this worktree's HEAD).
    pub cwd: PathBuf,
    /// Run id, or `latest`.
    pub run: String,
    /// The revision to integrate onto (`HEAD`).
    pub onto: String,
    /// The branch to create or reset; `None`: `ws/<run-id>/integration`.
    pub into: Option<String>,
    /// The test command; `None`: git config [`TEST_CONFIG_KEY`]; empty: no test.
    pub test: Option<String>,
    /// Time limit of one test run; then SIGTERM to its process group, `grace`, SIGKILL.
    pub timeout: Duration,
    pub grace: Duration,
    /// Print the plan; write nothing.
    pub dry_run: bool,
    /// Fast-forward `--onto`'s local branch to the integration (and the clean worktree it
    /// is checked out in).
    pub ff: bool,
    /// Database (flag); `None`: env, git config, the default.
    pub db: Option<DbLocation>,
    /// Reports directory; `None`: `reports/` at the repository root.
    pub reports_dir: Option<PathBuf>,
    /// Integrate a run that did not finish (`--incomplete`): what has a result, saying so.
    pub incomplete: bool,
    /// Test runs at once, each in its own pool worktree (`--jobs`); `None`: the pool size
    /// (git config `ws.agents`, default 3). 1 tests one commit at a time.
    pub jobs: Option<usize>,
    /// `--fix-up N`: hand each prompt workstream left out as `conflict` or `breaks-tests`
    /// back to its agent ([`crate::runner::fixup`]); `None`: the run's, else `ws.fixUp`.
    pub fix_up: Option<usize>,
    /// Where the workstream files are (read for `--fix-up`); `None`: `workstreams/`.
    pub workstreams_dir: Option<PathBuf>,
}

impl MergeOptions {
    /// The defaults for run `run` from `cwd`.
    pub fn new(cwd: PathBuf, run: &str) -> MergeOptions {
        MergeOptions {
            cwd,
            run: run.to_string(),
            onto: "HEAD".to_string(),
            into: None,
            test: None,
            timeout: crate::runner::DEFAULT_TIMEOUT,
            grace: crate::runner::DEFAULT_GRACE,
            dry_run: false,
            ff: false,
            db: None,
            reports_dir: None,
            incomplete: false,
            jobs: None,
            fix_up: None,
            workstreams_dir: None,
        }
    }
}

/// What `git ws-merge` did (or, for a dry run, would do).
#[derive(Debug, Clone)]
pub struct MergeOutcome {
    /// The JSON object: what was merged and left out.
    pub record: IntegrationRecord,
    /// The forecast's explained order the merges followed.
    pub order: Vec<ForecastStep>,
    /// The run's report, rewritten with the Integration section.
    pub report_path: Option<PathBuf>,
    /// Where it was recorded.
    pub db: DbLocation,
    /// What the post-merge bookkeeping of `--ff` said (`ws: 3 workstreams merged …`).
    pub merges_line: Option<String>,
    /// Problems after the branch was written (report, `--ff`), one sentence each.
    pub notes: Vec<String>,
    /// `--ff` was asked for and could not be done.
    pub ff_failed: bool,
    /// `--fix-up`: per branch left out, what was handed back (or why not), one line each.
    pub fixups: Vec<String>,
}

impl MergeOutcome {
    /// 0 every completed branch integrated (tests passing); 1 something was left out (or
    /// `--ff` failed after the branch was written).
    pub fn exit_code(&self) -> i32 {
        if self.record.all_integrated() && !self.ff_failed {
            EXIT_OK
        } else {
            EXIT_FAILURES
        }
    }
}

/// Why `git ws-merge` stopped without integrating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeFailure {
    /// Nothing was written: a usage error, an unknown run, an `--onto` that does not
    /// resolve, a test command that cannot start, tests failing on `onto`, a state it
    /// refuses to touch (exit 2).
    Refused(Error),
    /// Ctrl-C while testing (exit 130); the test's process group was stopped.
    Interrupted(String),
}

impl MergeFailure {
    pub fn exit_code(&self) -> i32 {
        match self {
            MergeFailure::Refused(e) => e.exit_code(),
            MergeFailure::Interrupted(_) => EXIT_INTERRUPTED,
        }
    }
}

impl std::fmt::Display for MergeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MergeFailure::Refused(e) => write!(f, "{e}"),
            MergeFailure::Interrupted(m) => f.write_str(m),
        }
    }
}

impl From<Error> for MergeFailure {
    fn from(e: Error) -> Self {
        MergeFailure::Refused(e)
    }
}

impl From<git::GitError> for MergeFailure {
    fn from(e: git::GitError) -> Self {
        MergeFailure::Refused(e.into())
    }
}

impl From<TipTestError> for MergeFailure {
    fn from(e: TipTestError) -> Self {
        match e {
            TipTestError::Interrupted(m) => MergeFailure::Interrupted(m),
            TipTestError::Git(e) => MergeFailure::Refused(e.into()),
        }
    }
}

impl From<crate::db::DbError> for MergeFailure {
    fn from(e: crate::db::DbError) -> Self {
        MergeFailure::Refused(e.into())
    }
}

/// Everything resolved before anything is written.
struct Plan {
    ws: Workspace,
    db: ConsolidationDatabase,
    location: DbLocation,
    run_id: String,
    onto: git::Onto,
    branch: String,
    test: Option<String>,
    keep_ignored: Vec<String>,
    /// `--ff`: the branch to move.
    ff_branch: Option<String>,
    /// (workstream id, tip) in the forecast's order.
    ordered: Vec<(String, String)>,
    order: Vec<ForecastStep>,
    /// Completed workstreams whose branch is gone.
    missing: Vec<IntegrationExclusion>,
    not_completed: Vec<IntegrationExclusion>,
    /// Workstream id → its branch name.
    branches: HashMap<String, String>,
    /// `--incomplete` on a run that did not finish: the workstreams without a final result.
    without_result: Option<Vec<String>>,
    /// Verdicts of the test command recorded by earlier integrations, by commit.
    tested: HashMap<String, bool>,
    /// Branches the run's own integration found breaking the same tests: left out again.
    carried: Vec<IntegrationExclusion>,
}

/// Run `git ws-merge`. `progress` gets one line per step worth telling (test runs).
pub fn merge(
    opts: &MergeOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<MergeOutcome, MergeFailure> {
    // What a killed git-ws left running (a test of a killed `git ws-merge`, say) goes
    // first, whatever happens next: nothing runs beside it. A dry run sweeps too: those
    // processes belong to a tool that is gone (their owner's pid and start time say so),
    // they touch a pool worktree a later test would share, and killing them writes nothing
    // to the repository or the database (README, "Guarantees").
    if let Ok(ws) = Workspace::discover(&opts.cwd) {
        let killed = process::reap_abandoned(&ws.layout.procs_dir()).map_err(Error::new)?;
        for note in killed {
            progress(&note);
        }
    }
    let mut plan = plan(opts)?;
    let integrated_at = now_micros();
    if opts.dry_run {
        let it = git::integrate(
            &plan.ws.repo,
            &plan.run_id,
            &plan.onto.sha,
            &plan.ordered,
            Objects::InMemory,
        )?;
        let record = record(&plan, opts, it, Vec::new(), integrated_at, true);
        return Ok(MergeOutcome {
            record,
            order: plan.order,
            report_path: None,
            db: plan.location,
            merges_line: None,
            notes: Vec::new(),
            ff_failed: false,
            fixups: Vec::new(),
        });
    }
    let (it, tests, reused) = match plan.test.clone() {
        Some(cmd) => integrate_tested(&plan, opts, &cmd, progress)?,
        None => (
            git::integrate(
                &plan.ws.repo,
                &plan.run_id,
                &plan.onto.sha,
                &plan.ordered,
                Objects::Write,
            )?,
            Vec::new(),
            0,
        ),
    };
    git::write_integration_branch(&plan.ws.repo, &plan.branch, &it.tip)?;
    let mut record = record(&plan, opts, it, tests, integrated_at, false);
    record.reused_tests = reused;
    let fixups = hand_back_left_out(&mut plan, opts, &mut record, progress)?;
    let mut notes = Vec::new();
    let mut ff_failed = false;
    let mut merges_line = None;
    if let Some(b) = plan.ff_branch.clone() {
        let message = format!("git-ws-merge: fast-forward to {}", plan.branch);
        match git::fast_forward(&plan.ws.repo, &b, &plan.onto.sha, &record.tip, &message) {
            Ok(_) => {
                if record.tip != plan.onto.sha {
                    record.fast_forwarded = Some(b.clone());
                }
                merges_line = record_landed(&mut plan, &record);
            }
            Err(e) => {
                ff_failed = true;
                notes.push(e.to_string());
            }
        }
    }
    plan.db.record_integration(&record)?;
    let reports = match &opts.reports_dir {
        Some(d) => Reports::at(plan.ws.abs(d)),
        None => plan.ws.layout.reports().clone(),
    };
    let report_path = match crate::runner::rewrite_report(&mut plan.db, &plan.run_id, &reports) {
        Ok(p) => Some(p),
        Err(e) => {
            notes.push(e.to_string());
            None
        }
    };
    Ok(MergeOutcome {
        record,
        order: plan.order,
        report_path,
        db: plan.location,
        merges_line,
        notes,
        ff_failed,
        fixups,
    })
}

/// `--fix-up N`: hand each branch left out as `conflict` or `breaks-tests` back to its
/// agent ([`crate::runner::fixup::hand_back`]) from the new tip, saying so (or why not) in
/// the exclusion's detail. One line per branch, for the output.
fn hand_back_left_out(
    plan: &mut Plan,
    opts: &MergeOptions,
    record: &mut IntegrationRecord,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<String>, MergeFailure> {
    use crate::runner::fixup::{hand_back, Integration, LeftOut, Why};
    let max =
        crate::runner::fixup::limit(&mut plan.db, &plan.ws.config, &plan.run_id, opts.fix_up)?;
    if max == 0 {
        return Ok(Vec::new());
    }
    let dir = opts
        .workstreams_dir
        .as_deref()
        .map(|d| plan.ws.abs(d))
        .unwrap_or_else(|| plan.ws.layout.default_workstreams_dir());
    let defs = crate::workstream::load_dir_within(&dir, &plan.ws.repo.root).unwrap_or_else(|e| {
        progress(&format!(
            "warning: --fix-up: failed to read the workstreams directory {}: {e}",
            dir.display()
        ));
        crate::workstream::Loaded::default()
    });
    let tips: HashMap<String, String> = plan.ordered.iter().cloned().collect();
    let it = Integration {
        run_id: &plan.run_id,
        branch: &plan.branch,
        tip: &record.tip,
        max_attempts: max,
    };
    let mut lines = Vec::new();
    for x in &mut record.excluded {
        let why = match x.reason.as_str() {
            IntegrationExclusion::CONFLICT => Why::Conflict {
                paths: x.paths.clone(),
            },
            IntegrationExclusion::BREAKS_TESTS => Why::BreaksTests {
                command: plan.test.clone().unwrap_or_default(),
                broke_with: x.broke_with.clone(),
                tail: x.output_tail.clone().unwrap_or_default(),
            },
            _ => continue,
        };
        let Some(tip) = tips.get(&x.workstream_id) else {
            continue;
        };
        let original = crate::fixup::original_of(&x.workstream_id);
        let def = defs.valid.iter().find(|w| w.id == original);
        let left = LeftOut {
            workstream_id: &x.workstream_id,
            branch_tip: tip,
            why,
        };
        let said = hand_back(&mut plan.db, &plan.ws.repo, &it, &left, def)?
            .sentence(&format!("git ws-run --resume {} runs it", plan.run_id));
        x.detail = format!("{}; {said}", x.detail);
        let line = format!("{}: {said}", x.workstream_id);
        progress(&format!("fix-up: {line}"));
        lines.push(line);
    }
    Ok(lines)
}

/// Resolve everything and refuse what must not be touched; writes nothing.
fn plan(opts: &MergeOptions) -> Result<Plan, MergeFailure> {
    let ws = Workspace::discover(&opts.cwd)?;
    let (repo, config) = (&ws.repo, &ws.config);
    let location = ws.database(opts.db.as_ref())?;
    let mut db = if opts.dry_run {
        ConsolidationDatabase::open_read_only(&location)?
    } else {
        ConsolidationDatabase::open_existing(&location)?
    };
    let run_id = db.resolve_run_id(&opts.run)?;
    if crate::runner::run_is_live(&ws.layout, &run_id) {
        return Err(Error::MergeWhileRunning { run_id }.into());
    }
    let info = db
        .run_info(&run_id)?
        .ok_or_else(|| Error::new(format!("no run {run_id}")))?;
    let results = db.results(&run_id)?;
    let without_result = unfinished(&ws, &info, &results);
    if let Some(ids) = &without_result {
        if !opts.incomplete {
            return Err(Error::new(refusal(&run_id, &info, ids)).into());
        }
    }
    let onto = git::resolve_onto(&opts.cwd, &opts.onto)
        .map_err(|e| Error::new(format!("--onto {}: {e}", opts.onto)))?;
    let branch = integration_branch(opts, repo, &run_id, &onto)?;
    let test = opts
        .test
        .clone()
        .or_else(|| config.integration_test())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let ff_branch = ff_branch(opts, repo, &onto)?;
    let keep_ignored = config.keep_ignored();

    let Candidates {
        mut not_completed,
        missing,
        mut candidates,
        tips,
        branches,
    } = candidates(repo, &results, without_result.as_deref().unwrap_or(&[]))?;
    // A completed fix-up (`<id>~fixK`) is integrated in place of its original and of the
    // earlier attempts.
    let ids: Vec<String> = candidates.iter().map(|(id, _)| id.clone()).collect();
    let superseded = crate::fixup::superseded(&ids);
    candidates.retain(|(id, _)| !superseded.contains(id));
    // What a reviewer left out from `git ws-review` is not merged.
    let left_out = db.left_out(&run_id)?;
    candidates.retain(|(id, _)| {
        let Some(a) = left_out.get(id) else {
            return true;
        };
        not_completed.push(IntegrationExclusion {
            workstream_id: id.clone(),
            reason: IntegrationExclusion::LEFT_OUT_BY_REVIEW.to_string(),
            paths: Vec::new(),
            detail: format!("left out by {} at {} (git ws-review)", a.who, a.at),
            broke_with: Vec::new(),
            output_tail: None,
            at: None,
        });
        false
    });
    not_completed
        .sort_by(|a, b| crate::consolidate::natural_cmp(&a.workstream_id, &b.workstream_id));
    // The order: the forecast's, recomputed from the branches as they are now.
    let base = if !info.base.is_empty() && git::has_commit(repo, &info.base) {
        info.base.clone()
    } else {
        onto.sha.clone()
    };
    let forecast = git::merge_forecast(repo, &base, &candidates)?;
    let mut ordered: Vec<(String, String)> = forecast
        .merge_order
        .iter()
        .filter_map(|s| Some((s.workstream_id.clone(), tips.get(&s.workstream_id)?.clone())))
        .collect();
    let mut carried = Vec::new();
    let tested = match &test {
        Some(cmd) => {
            // The run integrated as it went (`git ws-run --integrate`) onto the same commit:
            // its merges go first, in its order, so the same tips are built again and their
            // recorded verdicts apply.
            if let Some(prev) = db.latest_integration_by(&run_id, IntegrationRecord::MADE_BY_RUN)? {
                if prev.onto == onto.sha {
                    ordered = crate::runner::integrate::run_order_first(&prev, ordered);
                    // What the run found breaking the same tests stays out: its verdict
                    // is reused, not tested again.
                    if prev.test_command.as_deref() == Some(cmd.as_str()) {
                        for x in &prev.excluded {
                            if x.reason == IntegrationExclusion::BREAKS_TESTS
                                && ordered.iter().any(|(id, _)| *id == x.workstream_id)
                            {
                                ordered.retain(|(id, _)| *id != x.workstream_id);
                                let mut x = x.clone();
                                x.detail = format!("{} (found by the run's integration)", x.detail);
                                carried.push(x);
                            }
                        }
                    }
                }
            }
            db.tested_tips(cmd)?
        }
        _ => HashMap::new(),
    };
    Ok(Plan {
        ws,
        db,
        location,
        run_id,
        onto,
        branch,
        test,
        keep_ignored,
        ff_branch,
        ordered,
        order: forecast.merge_order,
        missing,
        not_completed,
        branches,
        without_result,
        tested,
        carried,
    })
}

/// `Some(ids)` when the run did not finish — it is still marked running (a live run was
/// refused before; so its coordinator died, or it runs on another machine), or workstreams
/// it selected have no final result (never recorded, or cancelled by an interruption) —
/// with the workstreams without a final result (maybe none). `None`: a finished run.
fn unfinished(
    ws: &Workspace,
    info: &crate::model::RunInfo,
    results: &[WorkstreamResult],
) -> Option<Vec<String>> {
    // A deferred workstream (a paused run) has no final result either.
    let cancelled = |r: &WorkstreamResult| {
        r.status == Status::Deferred
            || r.errors
                .iter()
                .any(|e| e.error_type == ErrorType::Cancelled)
    };
    let recorded: std::collections::HashSet<&str> = results
        .iter()
        .filter(|r| !cancelled(r))
        .map(|r| r.workstream_id.as_str())
        .collect();
    let selected = crate::runner::read_selection(&ws.layout.run_logs(&info.run_id));
    let mut ids: Vec<String> = selected
        .unwrap_or_default()
        .into_iter()
        .chain(
            results
                .iter()
                .filter(|r| cancelled(r))
                .map(|r| r.workstream_id.clone()),
        )
        .filter(|id| !recorded.contains(id.as_str()))
        .collect();
    ids.sort_by(|a, b| crate::consolidate::natural_cmp(a, b));
    ids.dedup();
    (info.finished_at.is_none() || !ids.is_empty()).then_some(ids)
}

/// The one sentence refusing an unfinished run.
fn refusal(run_id: &str, info: &crate::model::RunInfo, ids: &[String]) -> String {
    let why = if info.finished_at.is_none() {
        "has not finished (no git ws-run is running it here: its coordinator died, or it runs on another machine)"
    } else {
        "was interrupted before every workstream had a result"
    };
    let which = match ids.len() {
        0 => "every workstream has a result, but the run was never consolidated".to_string(),
        1 => format!("{} has no result", ids[0]),
        n => format!("{n} workstreams have no result ({})", ids.join(", ")),
    };
    format!(
        "refusing to integrate run {run_id}: it {why}; {which}. Finish it with `git ws-run --resume {run_id}`, or pass --incomplete to integrate what exists"
    )
}

/// `--into`, or `ws/<run>/integration`: a valid branch name, not the `--onto` branch, not
/// checked out anywhere (it is reset).
fn integration_branch(
    opts: &MergeOptions,
    repo: &git::RepoPaths,
    run_id: &str,
    onto: &git::Onto,
) -> Result<String, MergeFailure> {
    let branch = opts
        .into
        .clone()
        .unwrap_or_else(|| format!("ws/{run_id}/integration"));
    if !git::valid_branch_name(&branch) {
        return Err(Error::new(format!("--into {branch}: not a valid branch name")).into());
    }
    if onto.branch.as_deref() == Some(branch.as_str()) {
        return Err(Error::new(format!(
            "--into {branch} is the --onto branch itself: integrate onto it with another --into, then move it with --ff"
        ))
        .into());
    }
    if let Some(wt) = git::checked_out_in(repo, &branch)? {
        return Err(Error::new(format!(
            "refusing to reset {branch}: it is checked out in {}; switch that worktree to another branch, or pass --into BRANCH",
            wt.display()
        ))
        .into());
    }
    Ok(branch)
}

/// With `--ff`, the local branch `--onto` names, unless it is checked out with
/// uncommitted changes.
fn ff_branch(
    opts: &MergeOptions,
    repo: &git::RepoPaths,
    onto: &git::Onto,
) -> Result<Option<String>, MergeFailure> {
    Ok(if opts.ff {
        let Some(b) = onto.branch.clone() else {
            return Err(Error::new(format!(
                "--ff needs --onto to name a local branch (or HEAD on one); {} is not one",
                opts.onto
            ))
            .into());
        };
        if let Some(wt) = git::checked_out_in(repo, &b)? {
            let dirty = git::dirty_paths(&wt, 5)?;
            if !dirty.is_empty() {
                return Err(Error::new(format!(
                        "refusing --ff: {b} is checked out in {} with uncommitted changes ({}); commit or stash them, or leave out --ff",
                        wt.display(),
                        dirty.join(", ")
                    ))
                    .into());
            }
        }
        Some(b)
    } else {
        None
    })
}

/// The run's results sorted out: completed ones with a branch (the candidates, their tips
/// and branches), and the rest as exclusions.
struct Candidates {
    not_completed: Vec<IntegrationExclusion>,
    missing: Vec<IntegrationExclusion>,
    candidates: Vec<(String, String)>,
    tips: HashMap<String, String>,
    branches: HashMap<String, String>,
}

fn candidates(
    repo: &git::RepoPaths,
    results: &[WorkstreamResult],
    without_result: &[String],
) -> Result<Candidates, MergeFailure> {
    let mut not_completed = Vec::new();
    let mut missing = Vec::new();
    let mut candidates: Vec<(String, String)> = Vec::new();
    let mut tips: HashMap<String, String> = HashMap::new();
    let mut branches = HashMap::new();
    for id in without_result {
        not_completed.push(IntegrationExclusion {
            workstream_id: id.clone(),
            reason: IntegrationExclusion::NO_RESULT.to_string(),
            paths: Vec::new(),
            detail: "no result: the run did not finish (integrated with --incomplete)".to_string(),
            broke_with: Vec::new(),
            output_tail: None,
            at: None,
        });
    }
    for r in results {
        if without_result.contains(&r.workstream_id) {
            continue;
        }
        if r.status != Status::Completed {
            not_completed.push(not_completed_entry(r));
            continue;
        }
        let Some(b) = r.branch.clone() else {
            missing.push(missing_entry(&r.workstream_id, None));
            continue;
        };
        match git::branch_tip(repo, &b)? {
            Some(tip) => {
                tips.insert(r.workstream_id.clone(), tip);
                branches.insert(r.workstream_id.clone(), b.clone());
                candidates.push((r.workstream_id.clone(), b));
            }
            None => missing.push(missing_entry(&r.workstream_id, Some(&b))),
        }
    }
    let by_id = |a: &IntegrationExclusion, b: &IntegrationExclusion| {
        crate::consolidate::natural_cmp(&a.workstream_id, &b.workstream_id)
    };
    not_completed.sort_by(by_id);
    missing.sort_by(by_id);
    Ok(Candidates {
        not_completed,
        missing,
        candidates,
        tips,
        branches,
    })
}

fn missing_entry(ws: &str, branch: Option<&str>) -> IntegrationExclusion {
    IntegrationExclusion {
        workstream_id: ws.to_string(),
        reason: IntegrationExclusion::MISSING_BRANCH.to_string(),
        paths: Vec::new(),
        detail: match branch {
            Some(b) => format!("its branch {b} no longer exists"),
            None => "no branch was recorded for it".to_string(),
        },
        broke_with: Vec::new(),
        output_tail: None,
        at: None,
    }
}

fn not_completed_entry(r: &WorkstreamResult) -> IntegrationExclusion {
    let first = r.errors.first();
    let detail = match (r.status, first) {
        (Status::Skipped, Some(e)) => format!("skipped: {}", e.message),
        (Status::Skipped, None) => "skipped".to_string(),
        (Status::Deferred, e) => format!("deferred: {}", e.map_or("", |e| e.message.as_str())),
        (_, Some(e)) if e.error_type == ErrorType::InvalidWorkstream => {
            format!("invalid workstream file: {}", e.message)
        }
        (_, Some(e)) => format!("failed: {}: {}", e.error_type, e.message),
        (_, None) => "failed".to_string(),
    };
    IntegrationExclusion {
        workstream_id: r.workstream_id.clone(),
        reason: IntegrationExclusion::NOT_COMPLETED.to_string(),
        paths: Vec::new(),
        detail: crate::text::truncate(&crate::text::one_line(&detail), 300),
        broke_with: Vec::new(),
        output_tail: None,
        at: None,
    }
}

fn now_micros() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// The JSON object of an integration.
fn record(
    plan: &Plan,
    opts: &MergeOptions,
    it: Integration,
    tests: Vec<IntegrationTestRun>,
    integrated_at: chrono::DateTime<chrono::Utc>,
    dry_run: bool,
) -> IntegrationRecord {
    let merges = tiptest::merges_of(&it, |_| None);
    let mut excluded = tiptest::exclusions_of(&it, &tests, |_| None);
    excluded.extend(plan.carried.iter().cloned());
    excluded.extend(plan.missing.iter().cloned());
    excluded.extend(plan.not_completed.iter().cloned());
    IntegrationRecord {
        run_id: plan.run_id.clone(),
        onto: plan.onto.sha.clone(),
        onto_rev: opts.onto.clone(),
        branch: plan.branch.clone(),
        tip: it.tip,
        test_command: plan.test.clone(),
        test_runs: tests.len(),
        merged: merges.iter().map(|m| m.workstream_id.clone()).collect(),
        merges,
        excluded,
        tests,
        fast_forwarded: None,
        dry_run,
        integrated_at,
        incomplete: plan.without_result.is_some(),
        without_result: plan.without_result.clone().unwrap_or_default(),
        made_by: None,
        reused_tests: 0,
    }
}

/// With `--ff`: the merged workstreams are now in the onto branch; record them as the
/// post-merge hook would (`ancestor`), since no `git merge` ran.
fn record_landed(plan: &mut Plan, record: &IntegrationRecord) -> Option<String> {
    let now = chrono::Utc::now();
    let records: Vec<MergeRecord> = record
        .merges
        .iter()
        .filter_map(|m| {
            Some(MergeRecord {
                run_id: plan.run_id.clone(),
                workstream_id: m.workstream_id.clone(),
                branch: plan.branches.get(&m.workstream_id)?.clone(),
                tip: m.tip.clone(),
                merge_commit: record.tip.clone(),
                merged_at: now,
                detected_by: Some(git::LandedBy::Ancestor.as_str().to_string()),
            })
        })
        .collect();
    super::hooks::record_new(&mut plan.db, &records)
}

/// Test `onto`, then integrate and bisect with the test command, in a pool worktree.
/// Commits an earlier integration already tested with the same command are not tested
/// again: their recorded verdict is reused. Returns the test runs and how many verdicts
/// were reused.
fn integrate_tested(
    plan: &Plan,
    opts: &MergeOptions,
    cmd: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<(Integration, Vec<IntegrationTestRun>, usize), MergeFailure> {
    let mut t = TipTester::new(
        &plan.ws,
        &plan.run_id,
        &plan.onto.sha,
        cmd,
        opts.timeout,
        opts.grace,
        plan.keep_ignored.clone(),
    )?;
    // Earlier verdicts of the same command (a run's `--integrate`, an earlier ws-merge).
    let recorded = plan.tested.clone();
    t.seen.extend(recorded.iter().map(|(c, p)| (c.clone(), *p)));
    let jobs = match opts.jobs {
        Some(j) => j,
        None => plan
            .ws
            .config
            .agents()?
            .unwrap_or(crate::config::DEFAULT_AGENTS),
    }
    // No more slots than commits there can be at once (onto and each prefix).
    .min(plan.ordered.len() + 1)
    .max(1);
    let mut tester = Tester {
        t,
        opts,
        plan,
        recorded,
        reused: std::collections::HashSet::new(),
    };
    let result = if jobs > 1 {
        integrate_tested_parallel(&mut tester, jobs, progress)
    } else {
        integrate_tested_one(&mut tester, progress)
    };
    let it = result?;
    if !tester.reused.is_empty() {
        progress(&format!(
            "reused {} tested tip{} (recorded verdicts of `{cmd}`)",
            tester.reused.len(),
            if tester.reused.len() == 1 { "" } else { "s" }
        ));
    }
    Ok((it, tester.t.runs, tester.reused.len()))
}

/// [`integrate_tested`] one test run at a time, in one pool worktree.
fn integrate_tested_one(
    tester: &mut Tester<'_>,
    progress: &mut dyn FnMut(&str),
) -> Result<Integration, MergeFailure> {
    let plan = tester.plan;
    let mut slot = tiptest::claim_slot(&plan.ws, &plan.onto.sha)?;
    let result = tester.run_all(&mut slot, progress);
    // The slot goes back to the pool at onto (an overflow slot is removed), whatever
    // happened.
    if let Some(w) = tiptest::give_back(slot, &plan.onto.sha, &tester.t.prepare) {
        progress(&w);
    }
    result
}

/// [`integrate_tested`] with `jobs` test runs at once, each in its own pool worktree: the
/// first batch tests `onto` alone beside the longer candidates, then each batch tests up to
/// `jobs` candidate tips ([`git::integrate_and_test_parallel`]).
fn integrate_tested_parallel(
    tester: &mut Tester<'_>,
    jobs: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<Integration, MergeFailure> {
    let plan = tester.plan;
    let mut slots: Vec<git::AgentSlot> = Vec::new();
    let mut claimed = Ok(());
    for _ in 0..jobs {
        match tiptest::claim_slot(&plan.ws, &plan.onto.sha) {
            Ok(s) => slots.push(s),
            Err(e) => {
                claimed = Err(MergeFailure::from(e));
                break;
            }
        }
    }
    let result = claimed.and_then(|()| tester.run_parallel(&mut slots, progress));
    for slot in slots {
        if let Some(w) = tiptest::give_back(slot, &plan.onto.sha, &tester.t.prepare) {
            progress(&w);
        }
    }
    result
}

/// Runs the test command on commits, recording each run.
struct Tester<'a> {
    t: TipTester,
    opts: &'a MergeOptions,
    plan: &'a Plan,
    /// Verdicts recorded by earlier integrations with the same command.
    recorded: HashMap<String, bool>,
    /// The recorded verdicts used instead of a test run.
    reused: std::collections::HashSet<String>,
}

impl Tester<'_> {
    /// The verdict on `commit` already known (tested in this attempt, or recorded before:
    /// counted as reused).
    fn known(&mut self, commit: &str) -> Option<bool> {
        let v = self.t.seen.get(commit).copied()?;
        if self.recorded.contains_key(commit) && !self.t.runs.iter().any(|r| r.commit == commit) {
            self.reused.insert(commit.to_string());
        }
        Some(v)
    }

    /// Test `commit` in `slot`, or reuse what is known about it.
    fn test(
        &mut self,
        slot: &mut git::AgentSlot,
        commit: &str,
        ids: &[String],
    ) -> Result<(bool, Ending), MergeFailure> {
        Ok(self.t.test(slot, commit, ids)?)
    }

    fn run_all(
        &mut self,
        slot: &mut git::AgentSlot,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Integration, MergeFailure> {
        let plan = self.plan;
        let onto = plan.onto.sha.clone();
        if self.known(&onto) != Some(true) {
            self.test_onto(slot, &onto, progress)?;
        }
        let (it, _) = git::integrate_and_test_each(
            &plan.ws.repo,
            &plan.run_id,
            &onto,
            &plan.ordered,
            |it: &Integration| -> Result<bool, MergeFailure> {
                if let Some(passed) = self.known(&it.tip) {
                    return Ok(passed);
                }
                let ids: Vec<String> = it.merged.iter().map(|s| s.workstream_id.clone()).collect();
                let (passed, ending) = self.test(slot, &it.tip, &ids)?;
                let last = self.t.runs.last().expect("just ran");
                progress(&format!(
                    "test run {}: onto + {}: {} in {}",
                    self.t.runs.len(),
                    merges_text(&ids),
                    verdict(passed, &ending),
                    crate::text::duration(last.duration_seconds)
                ));
                Ok(passed)
            },
        )?;
        Ok(it)
    }

    /// Test `onto` alone: an error when the tests fail there, or cannot start.
    fn test_onto(
        &mut self,
        slot: &mut git::AgentSlot,
        onto: &str,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(), MergeFailure> {
        let onto = onto.to_string();
        let (passed, ending) = self.test(slot, &onto, &[])?;
        let last = self.t.runs.last().expect("just ran");
        progress(&format!(
            "test run 1 on {} ({}) alone: {} in {}",
            short(&onto),
            self.opts.onto,
            verdict(passed, &ending),
            crate::text::duration(last.duration_seconds)
        ));
        if let Ending::SpawnFailed(why) = &ending {
            return Err(Error::new(format!(
                "failed to start the test command `{}`: {why}",
                self.t.cmd
            ))
            .into());
        }
        let log = last.log_path.clone().unwrap_or_default();
        if let Some(code @ (126 | 127)) = ending.exit_code() {
            return Err(Error::new(format!(
                "the test command `{}` cannot start (exit {code}: {}); see {log}:\n{}",
                self.t.cmd,
                if code == 127 {
                    "command not found"
                } else {
                    "not executable"
                },
                process::tail(Path::new(&log), 5, 2048)
            ))
            .into());
        }
        if !passed {
            return Err(Error::new(format!(
                "the tests fail on the --onto commit {} ({}) itself ({}), so no merge can be blamed: fix the tests or the test command, or pick another --onto; nothing was written. The log: {log}\n{}",
                short(&onto),
                self.opts.onto,
                verdict(passed, &ending),
                process::tail(Path::new(&log), 10, 4096)
            ))
            .into());
        }
        Ok(())
    }

    /// [`Self::run_all`] with one batch of test runs at a time, one per slot.
    fn run_parallel(
        &mut self,
        slots: &mut [git::AgentSlot],
        progress: &mut dyn FnMut(&str),
    ) -> Result<Integration, MergeFailure> {
        let plan = self.plan;
        let onto = plan.onto.sha.clone();
        let started = Instant::now();
        let mut batches = 0usize;
        let mut onto_ending: Option<Ending> = None;
        let (it, pb) = git::integrate_and_test_parallel(
            &plan.ws.repo,
            &plan.run_id,
            &onto,
            &plan.ordered,
            slots.len(),
            |its: &[Integration]| -> Result<Vec<bool>, MergeFailure> {
                // Commits already tested (different sets of merges can make the same
                // commit) are not tested again; the same commit twice in a batch once.
                // A candidate under a tip known to pass passes too: not tested.
                tiptest::imply_passes(&mut self.t.seen, its);
                let mut todo: Vec<(String, Vec<String>)> = Vec::new();
                for it in its {
                    if self.known(&it.tip).is_none() && !todo.iter().any(|(c, _)| *c == it.tip) {
                        let ids = it.merged.iter().map(|s| s.workstream_id.clone()).collect();
                        todo.push((it.tip.clone(), ids));
                    }
                }
                if !todo.is_empty() {
                    batches += 1;
                    let first = self.t.runs.len() + 1;
                    let results = self.t.test_batch(slots, &todo)?;
                    for (k, ((commit, ids), (passed, ending))) in
                        todo.iter().zip(&results).enumerate()
                    {
                        let last = &self.t.runs[first - 1 + k];
                        let what = if *commit == onto {
                            onto_ending = Some(ending.clone());
                            format!("{} ({}) alone", short(&onto), self.opts.onto)
                        } else {
                            format!("onto + {}", merges_text(ids))
                        };
                        progress(&format!(
                            "test run {} (batch {batches}): {what}: {} in {}",
                            first + k,
                            verdict(*passed, ending),
                            crate::text::duration(last.duration_seconds)
                        ));
                    }
                }
                Ok(its
                    .iter()
                    .map(|it| self.t.seen.get(&it.tip).copied().unwrap_or(false))
                    .collect())
            },
        )?;
        if pb.base_failed {
            let ending = onto_ending.unwrap_or(Ending::Cancelled);
            let log = self
                .t
                .runs
                .iter()
                .find(|r| r.commit == onto)
                .and_then(|r| r.log_path.clone())
                .unwrap_or_default();
            return Err(self.onto_failure(&onto, &ending, &log));
        }
        progress(&format!(
            "tested with {} slots: {} test runs in {batches} batches, {}",
            slots.len(),
            self.t.runs.len(),
            crate::text::duration(started.elapsed().as_secs_f64())
        ));
        Ok(it)
    }

    /// Why the tests on `onto` itself end the attempt.
    fn onto_failure(&self, onto: &str, ending: &Ending, log: &str) -> MergeFailure {
        if let Ending::SpawnFailed(why) = ending {
            return Error::new(format!(
                "failed to start the test command `{}`: {why}",
                self.t.cmd
            ))
            .into();
        }
        if let Some(code @ (126 | 127)) = ending.exit_code() {
            return Error::new(format!(
                "the test command `{}` cannot start (exit {code}: {}); see {log}:\n{}",
                self.t.cmd,
                if code == 127 {
                    "command not found"
                } else {
                    "not executable"
                },
                process::tail(Path::new(log), 5, 2048)
            ))
            .into();
        }
        Error::new(format!(
            "the tests fail on the --onto commit {} ({}) itself ({}), so no merge can be blamed: fix the tests or the test command, or pick another --onto; nothing was written. The log: {log}\n{}",
            short(onto),
            self.opts.onto,
            verdict(false, ending),
            process::tail(Path::new(log), 10, 4096)
        ))
        .into()
    }
}
