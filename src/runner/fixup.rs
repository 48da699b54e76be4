//! Hand a branch the integration left out back to its agent (`--fix-up N`, git config
//! `ws.fixUp`): [`hand_back`] builds the fix-up's start commit (the integration tip with the
//! branch's clean changes, [`git::fixup_start`]), its prompt ([`crate::fixup::prompt`]) and
//! records it as follow-up `<id>~fixK` of kind `fix-up`, which `git ws-run --resume` runs
//! like a review's follow-up ([`super::followups`]). `git ws-merge --fix-up` and the run's
//! own integration (`--integrate`) both call it.

use crate::db::ConsolidationDatabase;
use crate::error::Error;
use crate::fixup::{self, FixupRecord, PromptInput, Reason};
use crate::git::{self, RepoPaths};
use crate::model::Status;
use crate::workstream::{Action, Workstream};

/// Why a branch was left out of the integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// It conflicts with the integration tip (the hunks are computed again against the
    /// tip, by the start commit's merge).
    Conflict { paths: Vec<String> },
    /// The tests fail with it: the command, what it failed together with, the end of the
    /// failing run's output.
    BreaksTests {
        command: String,
        broke_with: Vec<String>,
        tail: String,
    },
}

/// One branch left out, to hand back.
#[derive(Debug, Clone)]
pub struct LeftOut<'a> {
    /// The workstream left out: an original (`p1`) or a fix-up (`p1~fix1`).
    pub workstream_id: &'a str,
    /// Its branch tip.
    pub branch_tip: &'a str,
    pub why: Why,
}

/// Where the integration stands.
#[derive(Debug, Clone)]
pub struct Integration<'a> {
    pub run_id: &'a str,
    /// The integration branch (for the prompt) and its current tip (the fix-up's start).
    pub branch: &'a str,
    pub tip: &'a str,
    /// `--fix-up N`: the most fix-ups per original workstream (0: off).
    pub max_attempts: usize,
}

/// What [`hand_back`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandBack {
    /// The fix-up was recorded; `--resume` runs it from `start` (kept under `start_ref`).
    Created {
        record: FixupRecord,
        start: String,
        start_ref: String,
    },
    /// Not handed back: one sentence why (a command workstream, attempts exhausted, …).
    Declined(String),
}

impl HandBack {
    /// One sentence for the exclusion's detail and the progress line; `runs_it` says who
    /// runs a created fix-up (`git ws-run --resume RUN runs it`, `it runs in this run`).
    pub fn sentence(&self, runs_it: &str) -> String {
        match self {
            HandBack::Created { record, .. } => format!(
                "handed back to its agent as {} (attempt {} of {}; {runs_it})",
                record.followup_id, record.attempt, record.max_attempts
            ),
            HandBack::Declined(why) => why.clone(),
        }
    }
}

/// Hand `left` back to its agent as the next fix-up of its original workstream, whose
/// definition is `original` (`None`: its workstream file is gone). Declines, saying why,
/// for a command workstream, when the attempts are spent, for a review follow-up, and when a
/// later attempt of the chain already exists.
pub fn hand_back(
    db: &mut ConsolidationDatabase,
    repo: &RepoPaths,
    it: &Integration<'_>,
    left: &LeftOut<'_>,
    original: Option<&Workstream>,
) -> Result<HandBack, Error> {
    let original_id = fixup::original_of(left.workstream_id);
    let Some(def) = original else {
        return Ok(HandBack::Declined(format!(
            "no fix-up: the workstream {original_id} is no longer in the workstreams directory"
        )));
    };
    let Action::Prompt(original_prompt) = &def.action else {
        return Ok(HandBack::Declined(
            "no fix-up: a command workstream has no agent to hand it back to".to_string(),
        ));
    };
    let so_far: Vec<FixupRecord> = db
        .fixups(it.run_id)?
        .into_iter()
        .filter(|r| r.workstream_id == original_id)
        .collect();
    let this = fixup::parse_id(left.workstream_id).map_or(0, |(_, k)| k);
    if let Some(later) = so_far
        .iter()
        .filter(|r| r.attempt > this)
        .max_by_key(|r| r.attempt)
    {
        // A later attempt that has not run, or that completed (the next integration takes
        // it in this one's place), is where this one went; one that failed does not stop
        // another.
        let status = db
            .results(it.run_id)?
            .into_iter()
            .find(|r| r.workstream_id == later.followup_id)
            .map(|r| r.status);
        match status {
            None | Some(Status::Deferred) => {
                return Ok(HandBack::Declined(format!(
                    "already handed back as {} (not run yet: git ws-run --resume {} runs it)",
                    later.followup_id, it.run_id
                )))
            }
            Some(Status::Completed) => {
                return Ok(HandBack::Declined(format!(
                    "already handed back as {} (completed: the next git ws-merge integrates it in its place)",
                    later.followup_id
                )))
            }
            Some(Status::Failed | Status::Skipped) => {}
        }
    }
    let attempt = match fixup::next_attempt(left.workstream_id, so_far.len(), it.max_attempts) {
        Ok(k) => k,
        Err(why) => return Ok(HandBack::Declined(why.into())),
    };
    let id = fixup::fixup_id(original_id, attempt);
    let start_ref = git::fixup_start_ref(it.run_id, &id);
    let start = git::fixup_start(
        repo,
        it.tip,
        left.branch_tip,
        left.workstream_id,
        &start_ref,
    )?;
    let reason = match &left.why {
        Why::Conflict { paths } => Reason::Conflict {
            paths: if start.paths.is_empty() {
                paths.clone()
            } else {
                start.paths.clone()
            },
            hunks: start.hunks.clone(),
        },
        Why::BreaksTests {
            command,
            broke_with,
            tail,
        } => Reason::BreaksTests {
            command: command.clone(),
            broke_with: broke_with.clone(),
            tail: tail.clone(),
        },
    };
    let prompt = fixup::prompt(&PromptInput {
        original_id,
        original_prompt,
        attempt,
        max_attempts: it.max_attempts,
        reason: &reason,
        integration_branch: it.branch,
        tip: it.tip,
    });
    let record = FixupRecord {
        followup_id: id,
        workstream_id: original_id.to_string(),
        attempt,
        max_attempts: it.max_attempts,
        reason: reason.as_str().to_string(),
        detail: reason.summary(),
        integration_tip: it.tip.to_string(),
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    db.add_fixup(it.run_id, &record, &start_ref, &prompt)?;
    Ok(HandBack::Created {
        record,
        start: start.commit,
        start_ref,
    })
}

/// The `--fix-up N` in force for run `run_id`: the flag, else what the run was started
/// with (`git ws-run --fix-up`), else git config `ws.fixUp`, else 0 (off).
pub fn limit(
    db: &mut ConsolidationDatabase,
    config: &crate::config::Config,
    run_id: &str,
    flag: Option<usize>,
) -> Result<usize, Error> {
    if let Some(n) = flag {
        return Ok(n);
    }
    if let Some(n) = db.fixup_limit(run_id)? {
        return Ok(n);
    }
    Ok(config.fix_up()?.unwrap_or(0))
}
