//! `git ws-run --integrate`: integration as the run goes. Each workstream that completes
//! with commits is merged onto the run's integration (in memory, the engine `git ws-merge`
//! uses), on a blocking task of its own fed through a channel by the run's events, so no
//! agent ever waits on it. Several branches waiting at once go in the forecast's order. With
//! a test command, the newest integration tip is tested in a spare pool worktree (never an
//! agent's) whenever the tester is free; a passing tip vouches for the merges under it, a
//! failing one is bisected as `git ws-merge` does. At the end of the run the integration is
//! finished (the newest tip tested), written as `ws/<run>/integration` and recorded, so a
//! later `git ws-merge --test` reuses every verdict. A branch left out (conflict, broken
//! tests) goes to [`on_left_out`], the hook fix-ups attach to.

use super::events::{Event, Observer};
use super::tiptest::{self, short, TipTester};
use crate::git::{self, ExclusionReason, Integration};
use crate::model::{IntegrationRecord, Status};
use crate::workspace::Workspace;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What `--integrate` was asked to do.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The test command (`--test`, git config `ws.integrationTest`); `None`: merge only.
    pub test: Option<String>,
    /// Test runs at once when bisecting (`--jobs`), each in its own spare pool worktree.
    pub jobs: usize,
    /// What `--base` said (`HEAD`, a branch): the record's `onto_rev`.
    pub base_rev: String,
    pub timeout: Duration,
    pub grace: Duration,
    /// `--fix-up N` during the run (set by the runner when N > 0).
    pub fixups: Option<FixUps>,
}

/// `--fix-up` during the run: a branch integration leaves out is handed back to its agent at
/// once ([`super::fixup::hand_back`]), as a follow-up the live run picks up
/// ([`super::followups::LiveFollowups`]) and integration takes in its place.
#[derive(Debug, Clone)]
pub struct FixUps {
    /// `--fix-up N`, if given (else the run's stored value, else git config `ws.fixUp`).
    pub flag: Option<usize>,
    /// The run's database (the integration task opens its own connection).
    pub db: crate::db::DbLocation,
    /// The workstreams' definitions (a fix-up is its original's, with a new prompt).
    pub defs: Vec<crate::workstream::Workstream>,
    /// Completions sent to the integration and not yet merged, tested and handed back: the
    /// run does not end while it is above 0, so a fix-up made at the end still runs in it.
    pub in_flight: Arc<AtomicUsize>,
}

/// A branch integration left out: what a fix-up needs to hand it back to its agent.
#[derive(Debug, Clone, PartialEq)]
pub struct LeftOut {
    pub workstream_id: String,
    pub reason: ExclusionReason,
    /// For a conflict: the conflicting paths.
    pub paths: Vec<String>,
    /// One sentence: what it conflicts or breaks the tests with.
    pub detail: String,
    /// For broken tests: the last lines of the failing test run.
    pub test_tail: Option<String>,
    /// The integration tip it was left out of (full SHA).
    pub integration_tip: String,
    pub at: DateTime<Utc>,
}

/// Called once per branch left out. For now it only records; the fix-up (`--fix-up`)
/// attaches here.
pub fn on_left_out(l: &LeftOut, record: &mut Vec<LeftOut>) {
    record.push(l.clone());
}

/// Sets [`FixUps::in_flight`] to 0 when dropped: the run waits for no integration that is
/// over.
struct Release(Arc<AtomicUsize>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.store(0, Ordering::SeqCst);
    }
}

/// What the run hears from integration.
enum Msg {
    Completed { id: String, branch: String },
}

/// Feeds completed workstreams to the integration task (an [`Observer`] of the run).
pub(crate) struct Feed {
    tx: Option<mpsc::Sender<Msg>>,
    /// [`FixUps::in_flight`], when fix-ups are on.
    in_flight: Option<Arc<AtomicUsize>>,
    /// Set when the run was interrupted: nothing more is tested.
    stop: Arc<AtomicBool>,
}

impl Observer for Feed {
    fn event(&mut self, event: Event<'_>) {
        let Event::WorkstreamFinished { result } = event else {
            return;
        };
        if result.status != Status::Completed || result.commits.is_empty() {
            return;
        }
        if let (Some(tx), Some(b)) = (&self.tx, &result.branch) {
            if let Some(n) = &self.in_flight {
                n.fetch_add(1, Ordering::SeqCst);
            }
            let _ = tx.send(Msg::Completed {
                id: result.workstream_id.clone(),
                branch: b.clone(),
            });
        }
    }
}

impl Feed {
    /// No more workstreams: the integration task finishes (merging what came in; testing
    /// the newest tip unless the run was `interrupted`).
    pub fn close(&mut self, interrupted: bool) {
        if interrupted {
            self.stop.store(true, Ordering::SeqCst);
        }
        self.tx = None;
    }
}

/// One line at a time to the progress display.
pub(crate) type Say = Box<dyn FnMut(&str) + Send>;

/// What integration did, at the end of the run.
pub(crate) struct Finished {
    pub record: Option<IntegrationRecord>,
    /// Every branch left out, as [`on_left_out`] saw it (for the fix-up to take over).
    #[allow(dead_code)]
    pub left_out: Vec<LeftOut>,
    /// One line for the summary.
    pub line: String,
    pub notes: Vec<String>,
}

/// Start the integration task of run `run_id` onto `base`.
pub(crate) fn start(
    ws: Workspace,
    run_id: &str,
    base: &str,
    agents: usize,
    settings: Settings,
    keep_ignored: Vec<String>,
    say: Say,
) -> (Feed, tokio::task::JoinHandle<Finished>) {
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let fixups = settings.fixups.clone();
    let in_flight = fixups.as_ref().map(|f| f.in_flight.clone());
    let mut i = Integrator {
        fixups,
        fixup_db: None,
        to_hand_back: Vec::new(),
        stop: stop.clone(),
        branch: format!("ws/{run_id}/integration"),
        it: Integration {
            run_id: run_id.to_string(),
            onto: base.to_string(),
            merged: Vec::new(),
            tip: base.to_string(),
            excluded: Vec::new(),
            test_runs: 0,
        },
        excluded: Vec::new(),
        absent: Vec::new(),
        when: HashMap::new(),
        left_out: Vec::new(),
        tester: None,
        untested: None,
        notes: Vec::new(),
        settings,
        keep_ignored,
        say,
        ws,
        agents,
        spares: Vec::new(),
    };
    let handle = tokio::task::spawn_blocking(move || i.run(rx));
    (
        Feed {
            tx: Some(tx),
            in_flight,
            stop,
        },
        handle,
    )
}

struct Integrator {
    ws: Workspace,
    fixups: Option<FixUps>,
    /// The fix-ups' database connection and `--fix-up N` (opened at the first hand-back).
    fixup_db: Option<(crate::db::ConsolidationDatabase, usize)>,
    /// Indexes in `excluded` left out since the last hand-back (made once the line is
    /// rebuilt, from its new tip).
    to_hand_back: Vec<usize>,
    /// The run was interrupted: test nothing more.
    stop: Arc<AtomicBool>,
    branch: String,
    /// The integration so far (only what is merged; left-out ones are in `excluded`).
    it: Integration,
    excluded: Vec<git::Excluded>,
    /// The branches left out so far with their tips (a stacked dependent of one stays out).
    absent: Vec<(String, String)>,
    /// When each workstream was merged or left out.
    when: HashMap<String, DateTime<Utc>>,
    left_out: Vec<LeftOut>,
    tester: Option<TipTester>,
    /// Why the tips are not tested (the tests fail on the base, a pool worktree failed).
    untested: Option<String>,
    notes: Vec<String>,
    settings: Settings,
    keep_ignored: Vec<String>,
    say: Say,
    /// The run's agent count: the spare slots are `agent-(agents+1)` and on.
    agents: usize,
    /// Spare pool worktrees held for testing (claimed as needed, kept until the end).
    spares: Vec<git::AgentSlot>,
}

impl Integrator {
    /// Hold at least `n` spare pool worktrees (fewer when no more can be made); how many
    /// are held. Never an agent's: the spares are numbered past the agents.
    fn hold_spares(&mut self, n: usize) -> Result<usize, String> {
        let base = self.it.onto.clone();
        while self.spares.len() < n {
            let k = self.agents + 1 + self.spares.len();
            let slot = match git::claim_existing_slot(&self.ws.repo, k, &base) {
                Ok(Some(s)) => Ok(s),
                Ok(None) => git::claim_agent_slot(&self.ws.repo, k, &base),
                Err(e) => Err(e),
            };
            match slot {
                Ok(s) => self.spares.push(s),
                Err(e) if self.spares.is_empty() => return Err(e.to_string()),
                Err(_) => break,
            }
        }
        Ok(self.spares.len().min(n))
    }

    /// Give the spare worktrees back to the pool at the base.
    fn release_spares(&mut self) {
        let base = self.it.onto.clone();
        let prepare = git::PrepareOptions {
            keep_ignored: self.keep_ignored.clone(),
        };
        for s in std::mem::take(&mut self.spares) {
            if let Some(w) = tiptest::give_back(s, &base, &prepare) {
                self.notes.push(format!("integration: {w}"));
            }
        }
    }

    fn run(&mut self, rx: mpsc::Receiver<Msg>) -> Finished {
        // However this ends (a panic included), the run no longer waits for it.
        let _release = self.fixups.as_ref().map(|f| Release(f.in_flight.clone()));
        if let Some(cmd) = self.settings.test.clone() {
            self.start_tester(&cmd);
        }
        let mut open = true;
        while open {
            // Wait for the next completion, then take every one waiting with it.
            let mut waiting = Vec::new();
            match rx.recv() {
                Ok(m) => waiting.push(m),
                Err(_) => open = false,
            }
            while let Ok(m) = rx.try_recv() {
                waiting.push(m);
            }
            let came = waiting.len();
            if !waiting.is_empty() {
                self.merge(waiting);
            }
            // Test the newest tip (while the run goes on; at the end, to finish).
            self.test_newest();
            self.hand_back();
            if let Some(f) = &self.fixups {
                f.in_flight.fetch_sub(came, Ordering::SeqCst);
            }
        }
        self.finish()
    }

    fn tell(&mut self, line: String) {
        (self.say)(&line);
    }

    /// The tester, and the base tested first (the merges are blamed against it).
    fn start_tester(&mut self, cmd: &str) {
        let run_id = self.it.run_id.clone();
        let base = self.it.onto.clone();
        let mut t = match TipTester::new(
            &self.ws,
            &run_id,
            &base,
            cmd,
            self.settings.timeout,
            self.settings.grace,
            self.keep_ignored.clone(),
        ) {
            Ok(t) => t,
            Err(e) => {
                self.untested = Some(e.to_string());
                return;
            }
        };
        self.tell(format!("integration: testing the base {}", short(&base)));
        t.seen.clear();
        self.tester = Some(t);
        match self.test_one(&base, &[]) {
            Ok(true) => {}
            Ok(false) => {
                let log = self
                    .tester
                    .as_ref()
                    .and_then(|t| t.runs.last())
                    .and_then(|r| r.log_path.clone())
                    .unwrap_or_default();
                let why = format!(
                    "the tests fail on the base {} itself, so the integration is not tested (see {log})",
                    short(&base),
                );
                self.tell(format!("integration: {why}"));
                self.untested = Some(why);
            }
            Err(e) => self.untested = Some(e),
        }
    }

    /// Test `commit` in a spare pool worktree; whether it passed.
    fn test_one(&mut self, commit: &str, ids: &[String]) -> Result<bool, String> {
        self.hold_spares(1)?;
        let t = self.tester.as_mut().ok_or("no tester")?;
        let r = t.test(&mut self.spares[0], commit, ids);
        r.map(|(p, _)| p).map_err(|e| e.to_string())
    }

    /// Merge the completed branches (several: in the forecast's order).
    fn merge(&mut self, waiting: Vec<Msg>) {
        let repo = self.ws.repo.clone();
        let mut branches: Vec<(String, String)> = waiting
            .into_iter()
            .map(|Msg::Completed { id, branch }| (id, branch))
            .collect();
        if branches.len() > 1 {
            if let Ok(f) = git::merge_forecast(&repo, &self.it.onto, &branches) {
                let pos: HashMap<&str, usize> = f
                    .merge_order
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (s.workstream_id.as_str(), i))
                    .collect();
                let mut sorted = branches.clone();
                sorted.sort_by_key(|(id, _)| pos.get(id.as_str()).copied().unwrap_or(usize::MAX));
                branches = sorted;
            }
        }
        for (id, branch) in branches {
            let tip = match git::branch_tip(&repo, &branch) {
                Ok(Some(t)) => t,
                Ok(None) => {
                    self.notes
                        .push(format!("integration: the branch {branch} of {id} is gone"));
                    continue;
                }
                Err(e) => {
                    self.notes.push(format!("integration: {id}: {e}"));
                    continue;
                }
            };
            let before = self.it.tip.clone();
            match git::integrate_more(&repo, &self.it, &[(id.clone(), tip)], &self.absent) {
                Ok(mut next) => {
                    let now = tiptest::micros(Utc::now());
                    self.when.insert(id.clone(), now);
                    let excluded = std::mem::take(&mut next.excluded);
                    let left = !excluded.is_empty();
                    for x in excluded {
                        self.leave_out(x, &before, None, now);
                    }
                    self.it = next;
                    // A clean merge is said by the test of the new tip that follows.
                    if left || !self.testing() {
                        let line = self.status_line(None);
                        self.tell(line);
                    }
                }
                Err(e) => self.notes.push(format!("integration: merging {id}: {e}")),
            }
        }
    }

    fn leave_out(&mut self, x: git::Excluded, tip: &str, tail: Option<String>, at: DateTime<Utc>) {
        let l = LeftOut {
            workstream_id: x.workstream_id.clone(),
            reason: x.reason,
            paths: x.paths.clone(),
            detail: x.detail.clone(),
            test_tail: tail,
            integration_tip: tip.to_string(),
            at,
        };
        on_left_out(&l, &mut self.left_out);
        self.to_hand_back.push(self.excluded.len());
        let branch = super::execute::branch_name(&self.it.run_id, &x.workstream_id);
        if let Ok(Some(t)) = git::branch_tip(&self.ws.repo, &branch) {
            self.absent.push((x.workstream_id.clone(), t));
        }
        self.when.insert(x.workstream_id.clone(), at);
        self.excluded.push(x);
    }

    /// Hand the branches left out since the last call back to their agents (`--fix-up`),
    /// each starting from the integration's tip as it is now; the sentence saying what was
    /// done goes into the exclusion's detail and the progress.
    fn hand_back(&mut self) {
        let idx = std::mem::take(&mut self.to_hand_back);
        if idx.is_empty() || self.fixups.is_none() || self.stop.load(Ordering::SeqCst) {
            return;
        }
        if self.fixup_db.is_none() {
            let f = self.fixups.as_ref().expect("fix-ups");
            let opened = crate::db::ConsolidationDatabase::open_existing(f.db.clone())
                .map_err(|e| e.to_string())
                .and_then(|mut db| {
                    super::fixup::limit(&mut db, &self.ws.config, &self.it.run_id, f.flag)
                        .map(|n| (db, n))
                        .map_err(|e| e.to_string())
                });
            match opened {
                Ok(x) => self.fixup_db = Some(x),
                Err(e) => {
                    self.notes.push(format!("integration: no fix-ups: {e}"));
                    self.fixups = None;
                    return;
                }
            }
        }
        let Some((db, max)) = self.fixup_db.as_mut() else {
            return;
        };
        if *max == 0 {
            return;
        }
        let defs = &self.fixups.as_ref().expect("fix-ups").defs;
        let it = super::fixup::Integration {
            run_id: &self.it.run_id,
            branch: &self.branch,
            tip: &self.it.tip,
            max_attempts: *max,
        };
        let mut said = Vec::new();
        for i in idx {
            let Some(x) = self.excluded.get(i) else {
                continue;
            };
            let why = match x.reason {
                ExclusionReason::Conflict => super::fixup::Why::Conflict {
                    paths: x.paths.clone(),
                },
                ExclusionReason::BreaksTests => super::fixup::Why::BreaksTests {
                    command: self.settings.test.clone().unwrap_or_default(),
                    broke_with: x.broke_with.clone(),
                    tail: self
                        .left_out
                        .iter()
                        .rev()
                        .find(|l| l.workstream_id == x.workstream_id)
                        .and_then(|l| l.test_tail.clone())
                        .unwrap_or_default(),
                },
                _ => continue,
            };
            let Some((_, tip)) = self.absent.iter().find(|(id, _)| *id == x.workstream_id) else {
                continue;
            };
            let original = crate::fixup::original_of(&x.workstream_id);
            let def = defs.iter().find(|w| w.id == original);
            let left = super::fixup::LeftOut {
                workstream_id: &x.workstream_id,
                branch_tip: tip,
                why,
            };
            let sentence = match super::fixup::hand_back(db, &self.ws.repo, &it, &left, def) {
                Ok(h) => h.sentence("it runs in this run"),
                Err(e) => format!("no fix-up: {e}"),
            };
            said.push((i, sentence));
        }
        for (i, sentence) in said {
            let x = &mut self.excluded[i];
            x.detail = format!("{}; {sentence}", x.detail);
            let line = format!("integration: fix-up: {}: {sentence}", x.workstream_id);
            self.tell(line);
        }
    }

    /// `integration: merged 12, left out 1, testing 3f2a…` and the like.
    fn status_line(&self, testing: Option<&str>) -> String {
        let mut s = format!(
            "integration: merged {}, left out {}",
            self.it.merged.len(),
            self.excluded.len()
        );
        if let Some(t) = testing {
            s.push_str(&format!(", testing {t}"));
        }
        s
    }

    /// Whether the tips are tested at all.
    fn testing(&mut self) -> bool {
        if self.stop.load(Ordering::SeqCst) && self.untested.is_none() && self.tester.is_some() {
            self.untested = Some("the run was interrupted".to_string());
        }
        self.tester.is_some() && self.untested.is_none()
    }

    /// Test the newest tip unless its verdict is known; bisect when it fails.
    fn test_newest(&mut self) {
        if !self.testing() || self.it.merged.is_empty() {
            return;
        }
        let tip = self.it.tip.clone();
        let t = self.tester.as_mut().expect("testing");
        if t.seen.contains_key(&tip) {
            return;
        }
        let ids: Vec<String> = self
            .it
            .merged
            .iter()
            .map(|s| s.workstream_id.clone())
            .collect();
        let label = format!(
            "{} (+{})",
            short(&tip),
            ids.last().cloned().unwrap_or_default()
        );
        let line = self.status_line(Some(&label));
        self.tell(line);
        match self.test_one(&tip, &ids) {
            Ok(true) => {
                self.vouch();
                let line = format!(
                    "integration: {} passes ({})",
                    short(&tip),
                    crate::text::plural(ids.len(), "merge", "merges")
                );
                self.tell(line);
            }
            Ok(false) => self.bisect(),
            Err(e) => {
                self.tell(format!("integration: testing stopped: {e}"));
                self.untested = Some(e);
            }
        }
    }

    /// A passing tip vouches for every tip under it on the integration line.
    fn vouch(&mut self) {
        if let Some(t) = self.tester.as_mut() {
            for s in &self.it.merged {
                t.seen.insert(s.merge_commit.clone(), true);
            }
        }
    }

    /// The newest tip fails: find the merges that break it, as `git ws-merge` does (with
    /// `jobs` spare pool worktrees), and leave them out.
    fn bisect(&mut self) {
        let repo = self.ws.repo.clone();
        let base = self.it.onto.clone();
        let run_id = self.it.run_id.clone();
        let line: Vec<(String, String)> = self
            .it
            .merged
            .iter()
            .map(|s| (s.workstream_id.clone(), s.tip.clone()))
            .collect();
        let jobs = self.settings.jobs.clamp(1, line.len() + 1);
        let jobs = match self.hold_spares(jobs) {
            Ok(n) => n,
            Err(e) => {
                self.untested = Some(e);
                return;
            }
        };
        self.tell(format!(
            "integration: {} fails; bisecting {} with {}",
            short(&self.it.tip),
            crate::text::plural(line.len(), "merge", "merges"),
            crate::text::plural(jobs, "test slot", "test slots")
        ));
        let slots = &mut self.spares[..jobs];
        let t = self.tester.as_mut().expect("testing");
        let result = git::integrate_and_test_parallel(
            &repo,
            &run_id,
            &base,
            &line,
            slots.len(),
            |its: &[Integration]| -> Result<Vec<bool>, tiptest::TipTestError> {
                tiptest::imply_passes(&mut t.seen, its);
                let mut todo: Vec<(String, Vec<String>)> = Vec::new();
                for it in its {
                    if !t.seen.contains_key(&it.tip) && !todo.iter().any(|(c, _)| *c == it.tip) {
                        let ids = it.merged.iter().map(|s| s.workstream_id.clone()).collect();
                        todo.push((it.tip.clone(), ids));
                    }
                }
                if !todo.is_empty() {
                    t.test_batch(&mut slots[..todo.len()], &todo)?;
                }
                Ok(its
                    .iter()
                    .map(|it| t.seen.get(&it.tip).copied().unwrap_or(false))
                    .collect())
            },
        );
        match result {
            Ok((mut fin, _)) => {
                let now = tiptest::micros(Utc::now());
                let before = self.it.tip.clone();
                let runs = self
                    .tester
                    .as_ref()
                    .map(|t| t.runs.clone())
                    .unwrap_or_default();
                for x in std::mem::take(&mut fin.excluded) {
                    let tail = tiptest::culprit_tail(&runs, &x.workstream_id);
                    self.tell(format!(
                        "integration: left out {} ({}): {}",
                        x.workstream_id,
                        x.reason.as_str(),
                        x.detail
                    ));
                    self.leave_out(x, &before, tail, now);
                }
                fin.test_runs = 0;
                self.it = fin;
                self.vouch();
            }
            Err(e) => {
                self.tell(format!("integration: testing stopped: {e}"));
                self.untested = Some(e.to_string());
            }
        }
    }

    /// Write the branch and make the record.
    fn finish(&mut self) -> Finished {
        self.release_spares();
        let repo = self.ws.repo.clone();
        if let Err(e) = git::write_integration_branch(&repo, &self.branch, &self.it.tip) {
            self.notes.push(format!("integration: {e}"));
        }
        let tests = self
            .tester
            .as_ref()
            .map(|t| t.runs.clone())
            .unwrap_or_default();
        let when = |id: &str| self.when.get(id).copied();
        let mut full = self.it.clone();
        full.excluded = self.excluded.clone();
        let merges = tiptest::merges_of(&full, when);
        let excluded = tiptest::exclusions_of(&full, &tests, when);
        let tested = self
            .tester
            .as_ref()
            .and_then(|t| t.seen.get(&self.it.tip).copied());
        let verdict_text = match (&self.settings.test, tested, &self.untested) {
            (None, _, _) => "untested".to_string(),
            (Some(_), _, Some(why)) => format!("untested: {why}"),
            (Some(_), Some(true), _) => format!("tests pass ({} test runs)", tests.len()),
            (Some(_), Some(false), _) => format!("tests FAIL ({} test runs)", tests.len()),
            (Some(_), None, _) => "nothing to test".to_string(),
        };
        let left: Vec<String> = excluded
            .iter()
            .map(|x| format!("{} {}", x.workstream_id, x.reason))
            .collect();
        let line = format!(
            "integration: {} at {}: merged {}, left out {}{}; {}",
            self.branch,
            short(&self.it.tip),
            merges.len(),
            excluded.len(),
            if left.is_empty() {
                String::new()
            } else {
                format!(" ({})", left.join(", "))
            },
            verdict_text
        );
        let record = IntegrationRecord {
            run_id: self.it.run_id.clone(),
            onto: self.it.onto.clone(),
            onto_rev: self.settings.base_rev.clone(),
            branch: self.branch.clone(),
            tip: self.it.tip.clone(),
            test_command: self.settings.test.clone(),
            test_runs: tests.len(),
            merged: merges.iter().map(|m| m.workstream_id.clone()).collect(),
            merges,
            excluded,
            tests,
            fast_forwarded: None,
            dry_run: false,
            integrated_at: tiptest::micros(Utc::now()),
            incomplete: false,
            without_result: Vec::new(),
            made_by: Some(IntegrationRecord::MADE_BY_RUN.to_string()),
            reused_tests: 0,
        };
        Finished {
            record: Some(record),
            left_out: std::mem::take(&mut self.left_out),
            line,
            notes: std::mem::take(&mut self.notes),
        }
    }
}

/// `ordered` (workstream id, tip) with the merges of `prev` (a run's own integration)
/// first, in its order, then the rest in theirs: how `git ws-merge` builds the same tips the
/// run tested.
pub(crate) fn run_order_first(
    prev: &IntegrationRecord,
    ordered: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let pos: HashMap<&str, usize> = prev
        .merges
        .iter()
        .enumerate()
        .map(|(i, m)| (m.workstream_id.as_str(), i))
        .collect();
    let (mut first, rest): (Vec<_>, Vec<_>) = ordered
        .into_iter()
        .partition(|(id, _)| pos.contains_key(id.as_str()));
    first.sort_by_key(|(id, _)| pos[id.as_str()]);
    first.extend(rest);
    first
}

/// A display shared by the run's loop and the integration task.
pub(crate) struct SharedDisplay(pub Arc<Mutex<Box<dyn Observer>>>);

impl Observer for SharedDisplay {
    fn event(&mut self, event: Event<'_>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .event(event);
    }
}

/// The integration task's lines, shown by `display` as integration progress.
pub(crate) fn say_to(display: Arc<Mutex<Box<dyn Observer>>>) -> Say {
    Box::new(move |line: &str| {
        display
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .event(Event::Integration(line));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ids: &[&str]) -> IntegrationRecord {
        let mut r = crate::view::fixture::integration();
        r.merges = ids
            .iter()
            .map(|id| crate::model::IntegrationMerge {
                workstream_id: id.to_string(),
                tip: "t".to_string(),
                merge_commit: "m".to_string(),
                at: None,
            })
            .collect();
        r
    }

    #[test]
    fn the_runs_merges_go_first_in_its_order_then_the_rest_in_theirs() {
        let ordered: Vec<(String, String)> = ["a", "b", "c", "d"]
            .iter()
            .map(|s| (s.to_string(), format!("{s}-tip")))
            .collect();
        let got = run_order_first(&rec(&["c", "a"]), ordered);
        let ids: Vec<&str> = got.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(ids, ["c", "a", "b", "d"]);
        assert_eq!(got[0].1, "c-tip");
    }

    #[test]
    fn an_integration_that_ends_however_it_ends_holds_the_run_no_longer() {
        let n = Arc::new(AtomicUsize::new(3));
        let m = n.clone();
        let ended = std::thread::spawn(move || {
            let _release = Release(m);
            panic!("the integration task died");
        })
        .join();
        assert!(ended.is_err());
        assert_eq!(n.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_branch_left_out_reaches_the_hook_with_what_a_fix_up_needs() {
        let mut log = Vec::new();
        let l = LeftOut {
            workstream_id: "ws-3".into(),
            reason: ExclusionReason::Conflict,
            paths: vec!["a.txt".into()],
            detail: "conflicts with ws-1 in a.txt".into(),
            test_tail: None,
            integration_tip: "abc".into(),
            at: Utc::now(),
        };
        on_left_out(&l, &mut log);
        assert_eq!(log, vec![l]);
    }
}
