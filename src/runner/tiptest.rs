//! Testing integration tips: runs the test command on a commit checked out in a pool
//! worktree (one at a time, or a batch in several worktrees at once), records each run, and
//! remembers the verdicts by commit. Shared by `git ws-merge --test` and
//! `git ws-run --integrate --test`.

use crate::error::Error;
use crate::git::{self, AgentSlot};
use crate::layout::IntegrationLogs;
use crate::model::IntegrationTestRun;
use crate::process::{self, Ending, Spec};
use crate::workspace::Workspace;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Lines of a failing test run's output kept with the merge it is blamed on.
pub(crate) const TAIL_LINES: usize = 30;
pub(crate) const TAIL_BYTES: u64 = 16 * 1024;

/// Why testing stopped.
#[derive(Debug)]
pub(crate) enum TipTestError {
    /// Ctrl-C while testing: the test's process group was stopped.
    Interrupted(String),
    /// A pool worktree could not be prepared.
    Git(git::GitError),
}

impl From<git::GitError> for TipTestError {
    fn from(e: git::GitError) -> Self {
        TipTestError::Git(e)
    }
}

impl std::fmt::Display for TipTestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TipTestError::Interrupted(m) => f.write_str(m),
            TipTestError::Git(e) => write!(f, "{e}"),
        }
    }
}

/// Runs the test command on commits, recording each run and its verdict.
pub(crate) struct TipTester {
    pub cmd: String,
    pub run_id: String,
    /// The commit integrated onto (`WS_ONTO`).
    pub onto: String,
    pub logs: IntegrationLogs,
    pub timeout: Duration,
    pub grace: Duration,
    pub procs_dir: PathBuf,
    pub prepare: git::PrepareOptions,
    runtime: tokio::runtime::Runtime,
    /// Every run, in order.
    pub runs: Vec<IntegrationTestRun>,
    /// Verdicts by commit: tested here, recorded earlier, or implied (an ancestor on the
    /// integration line of a passing tip).
    pub seen: HashMap<String, bool>,
}

impl TipTester {
    /// A tester whose logs go to a new directory under the run's logs.
    pub fn new(
        ws: &Workspace,
        run_id: &str,
        onto: &str,
        cmd: &str,
        timeout: Duration,
        grace: Duration,
        keep_ignored: Vec<String>,
    ) -> Result<TipTester, Error> {
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S%.3f").to_string();
        let logs = ws.layout.run_logs(run_id).integration(&stamp);
        std::fs::create_dir_all(logs.dir()).map_err(|e| {
            Error::new(format!(
                "failed to create the log directory {}: {e}",
                logs.dir().display()
            ))
        })?;
        Ok(TipTester {
            cmd: cmd.to_string(),
            run_id: run_id.to_string(),
            onto: onto.to_string(),
            logs,
            timeout,
            grace,
            procs_dir: ws.layout.procs_dir(),
            prepare: git::PrepareOptions { keep_ignored },
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::new(format!("failed to start the runtime: {e}")))?,
            runs: Vec::new(),
            seen: HashMap::new(),
        })
    }

    /// Check out `commit` in the slot and run the test command there.
    pub fn test(
        &mut self,
        slot: &mut AgentSlot,
        commit: &str,
        workstreams: &[String],
    ) -> Result<(bool, Ending), TipTestError> {
        slot.check_out(commit, &self.prepare)?;
        let n = self.runs.len() + 1;
        let spec = self.spec(slot, commit, n);
        let started = Instant::now();
        let at = chrono::Utc::now();
        let ending = self.runtime.block_on(async {
            let (tx, rx) = tokio::sync::watch::channel(false);
            let run = process::run(&spec, rx);
            tokio::pin!(run);
            tokio::select! {
                e = &mut run => e,
                _ = tokio::signal::ctrl_c() => {
                    let _ = tx.send(true);
                    run.await
                }
            }
        });
        if ending == Ending::Cancelled {
            return Err(TipTestError::Interrupted(format!(
                "interrupted while testing {}: the test command was stopped; nothing was written",
                short(commit)
            )));
        }
        let passed = self.record_run(commit, workstreams, &ending, at, started.elapsed(), &spec);
        Ok((passed, ending))
    }

    /// The test command's process for `commit` checked out in `slot`, as test run `n`.
    fn spec(&self, slot: &AgentSlot, commit: &str, n: usize) -> Spec {
        let env = BTreeMap::from([
            ("WS_RUN_ID".to_string(), self.run_id.clone()),
            ("WS_WORKTREE".to_string(), slot.path.display().to_string()),
            ("WS_ONTO".to_string(), self.onto.clone()),
            ("WS_INTEGRATION_COMMIT".to_string(), commit.to_string()),
        ]);
        Spec {
            argv: vec!["sh".to_string(), "-c".to_string(), self.cmd.clone()],
            cwd: slot.path.clone(),
            env,
            stdin: None,
            log: self.logs.test(n),
            timeout: self.timeout,
            grace: self.grace,
            pgid_file: Some(self.logs.test_pgid(n)),
            procs_dir: Some(self.procs_dir.clone()),
            sandbox: crate::sandbox::for_slot(&slot.path, None, None),
        }
    }

    /// Record one finished test run; whether it passed.
    fn record_run(
        &mut self,
        commit: &str,
        workstreams: &[String],
        ending: &Ending,
        at: chrono::DateTime<chrono::Utc>,
        took: Duration,
        spec: &Spec,
    ) -> bool {
        let passed = ending.success();
        self.seen.insert(commit.to_string(), passed);
        self.runs.push(IntegrationTestRun {
            commit: commit.to_string(),
            workstreams: workstreams.to_vec(),
            passed,
            exit_code: ending.exit_code(),
            duration_seconds: took.as_secs_f64(),
            ending: match ending {
                Ending::TimedOut => Some("timeout".to_string()),
                Ending::SpawnFailed(_) => Some("spawn-failed".to_string()),
                Ending::Exited {
                    signal: Some(s), ..
                } => Some(format!("signal {s}")),
                _ => None,
            },
            log_path: Some(spec.log.display().to_string()),
            started_at: Some(micros(at)),
        });
        passed
    }

    /// Test up to one commit per slot at once: (commit, its workstreams) each; whether each
    /// passed, and how it ended.
    pub fn test_batch(
        &mut self,
        slots: &mut [AgentSlot],
        batch: &[(String, Vec<String>)],
    ) -> Result<Vec<(bool, Ending)>, TipTestError> {
        // Each slot checks out its commit in a thread of its own.
        let prepare = &self.prepare;
        let checked: Vec<Result<(), git::GitError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = slots
                .iter_mut()
                .zip(batch)
                .map(|(slot, (commit, _))| scope.spawn(move || slot.check_out(commit, prepare)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(git::GitError::Other(
                            "a checkout thread panicked".to_string(),
                        ))
                    })
                })
                .collect()
        });
        for c in checked {
            c?;
        }
        let mut specs = Vec::with_capacity(batch.len());
        for (i, (commit, _)) in batch.iter().enumerate() {
            specs.push(self.spec(&slots[i], commit, self.runs.len() + 1 + i));
        }
        let owned = specs.clone();
        let at = chrono::Utc::now();
        let endings: Vec<(Ending, Duration)> = self.runtime.block_on(async move {
            let (tx, rx) = tokio::sync::watch::channel(false);
            let local = tokio::task::LocalSet::new();
            local
                .run_until(async move {
                    let handles: Vec<_> = owned
                        .into_iter()
                        .map(|spec| {
                            let rx = rx.clone();
                            tokio::task::spawn_local(async move {
                                let started = Instant::now();
                                let e = process::run(&spec, rx).await;
                                (e, started.elapsed())
                            })
                        })
                        .collect();
                    let all = async {
                        let mut out = Vec::with_capacity(handles.len());
                        for h in handles {
                            out.push(h.await.unwrap_or_else(|e| {
                                (
                                    Ending::SpawnFailed(format!("test task failed: {e}")),
                                    Duration::ZERO,
                                )
                            }));
                        }
                        out
                    };
                    tokio::pin!(all);
                    tokio::select! {
                        r = &mut all => r,
                        _ = tokio::signal::ctrl_c() => {
                            let _ = tx.send(true);
                            all.await
                        }
                    }
                })
                .await
        });
        if endings.iter().any(|(e, _)| *e == Ending::Cancelled) {
            return Err(TipTestError::Interrupted(format!(
                "interrupted while testing {}: the test commands were stopped; nothing was written",
                batch
                    .iter()
                    .map(|(c, _)| short(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut out = Vec::with_capacity(batch.len());
        for (((commit, ids), (ending, took)), spec) in batch.iter().zip(endings).zip(&specs) {
            let passed = self.record_run(commit, ids, &ending, at, took, spec);
            out.push((passed, ending));
        }
        Ok(out)
    }
}

/// A free pool worktree: an existing idle one (warm caches), else a new one. Never one an
/// agent holds (each slot is a file lock).
pub(crate) fn claim_slot(ws: &Workspace, onto: &str) -> Result<AgentSlot, git::GitError> {
    for k in 1..=64 {
        match git::claim_existing_slot(&ws.repo, k, onto) {
            Ok(Some(slot)) => return Ok(slot),
            Ok(None) => {
                if !ws.layout.pool_slot(k).exists() {
                    break;
                }
            }
            Err(e) => return Err(e),
        }
    }
    git::claim_agent_slot(&ws.repo, 1, onto)
}

/// Give a slot back to the pool at `base` (an overflow slot is removed); a warning line
/// when that fails.
pub(crate) fn give_back(
    slot: AgentSlot,
    base: &str,
    prepare: &git::PrepareOptions,
) -> Option<String> {
    let back = if slot.overflow {
        slot.remove()
    } else {
        slot.release(base, prepare)
    };
    back.err().map(|e| format!("warning: {e}"))
}

/// The output of the last failing test run that ended with `ws` merged: the smallest
/// combination it was found to break.
pub(crate) fn culprit_tail(tests: &[IntegrationTestRun], ws: &str) -> Option<String> {
    let t = tests
        .iter()
        .rev()
        .find(|t| !t.passed && t.workstreams.last().map(String::as_str) == Some(ws))?;
    let log = t.log_path.as_deref()?;
    let tail = process::tail(Path::new(log), TAIL_LINES, TAIL_BYTES);
    (!tail.trim().is_empty()).then_some(tail)
}

/// "a, b, c" for a few merges; "12 merges (a, b, …, l)" for many.
pub(crate) fn merges_text(ids: &[String]) -> String {
    match ids.len() {
        0 => "nothing".to_string(),
        1..=4 => ids.join(", "),
        n => format!("{n} merges ({}, {}, …, {})", ids[0], ids[1], ids[n - 1]),
    }
}

/// `pass`, `FAIL (exit 1)`, …
pub(crate) fn verdict(passed: bool, ending: &Ending) -> String {
    match ending {
        _ if passed => "pass".to_string(),
        Ending::TimedOut => "FAIL (timed out)".to_string(),
        Ending::SpawnFailed(why) => format!("cannot start ({why})"),
        Ending::Exited { code: Some(c), .. } => format!("FAIL (exit {c})"),
        Ending::Exited {
            signal: Some(s), ..
        } => format!("FAIL (signal {s})"),
        _ => "FAIL".to_string(),
    }
}

pub(crate) fn short(sha: &str) -> &str {
    &sha[..sha.len().min(10)]
}

/// `now`, to the microsecond (what the database keeps).
pub(crate) fn micros(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// The merges of an integration as recorded, each with when it was merged (`at`).
pub(crate) fn merges_of(
    it: &git::Integration,
    at: impl Fn(&str) -> Option<chrono::DateTime<chrono::Utc>>,
) -> Vec<crate::model::IntegrationMerge> {
    it.merged
        .iter()
        .map(|s| crate::model::IntegrationMerge {
            workstream_id: s.workstream_id.clone(),
            tip: s.tip.clone(),
            merge_commit: s.merge_commit.clone(),
            at: at(&s.workstream_id),
        })
        .collect()
}

/// What an integration left out, as recorded: a test breaker with the tail of the failing
/// test run that found it; each with when it was left out (`at`).
pub(crate) fn exclusions_of(
    it: &git::Integration,
    tests: &[IntegrationTestRun],
    at: impl Fn(&str) -> Option<chrono::DateTime<chrono::Utc>>,
) -> Vec<crate::model::IntegrationExclusion> {
    it.excluded
        .iter()
        .map(|x| crate::model::IntegrationExclusion {
            workstream_id: x.workstream_id.clone(),
            reason: x.reason.as_str().to_string(),
            paths: x.paths.clone(),
            detail: x.detail.clone(),
            broke_with: x.broke_with.clone(),
            output_tail: (x.reason == git::ExclusionReason::BreaksTests)
                .then(|| culprit_tail(tests, &x.workstream_id))
                .flatten(),
            at: at(&x.workstream_id),
        })
        .collect()
}

/// Candidates under a tip known to pass (their merges a prefix of its merges) pass too, as
/// the bisection assumes: their verdict is set in `seen` instead of testing them.
pub(crate) fn imply_passes(seen: &mut HashMap<String, bool>, its: &[git::Integration]) {
    let ids = |it: &git::Integration| -> Vec<String> {
        it.merged.iter().map(|s| s.workstream_id.clone()).collect()
    };
    let passing: Vec<Vec<String>> = its
        .iter()
        .filter(|it| seen.get(&it.tip) == Some(&true))
        .map(ids)
        .collect();
    for it in its {
        if !seen.contains_key(&it.tip) && passing.iter().any(|p| p.starts_with(&ids(it))) {
            seen.insert(it.tip.clone(), true);
        }
    }
}
