//! Recommendations: typed advice computed from a consolidated run, each value carrying the
//! evidence it rests on, and the one sentence each renders to. Thresholds are the named
//! constants below; every rule is a small named step of [`recommend`].

use super::consolidated::{AgentPerf, Consolidated, Overlap, WsNote};
use crate::model::{PairForecast, UNASSIGNED_AGENT};
use crate::text::{all_of, plural};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};

/// "Consider a system review" fires when at least this many workstreams failed …
pub const REVIEW_MIN_FAILED: usize = 3;
/// … and they are at least this share of the run (0..=1): a rate, not a count.
pub const REVIEW_MIN_FAILED_RATE: f64 = 0.5;
/// Imbalance advice needs enough work to balance: at least this many started workstreams
/// per agent.
pub const IMBALANCE_MIN_PER_AGENT: usize = 2;
/// Workload advice (imbalance, idle agents) needs a run at least this long (wall time, in
/// seconds). Below a minute the most rebalancing could save is seconds, less than it costs
/// to re-split workstreams or change `--agents`; and on short runs the fixed costs of each
/// workstream (worktree, git, database, process start: tenths of a second) are a large part
/// of every agent's busy time, so the differences say little about the work itself.
pub const WORKLOAD_MIN_WALL_SECS: f64 = 60.0;
/// Imbalance: the busiest agent worked more than this many times the least busy one …
pub const IMBALANCE_RATIO: f64 = 2.0;
/// … and the gap is more than this share of the run's wall time.
pub const IMBALANCE_MIN_WALL_SHARE: f64 = 0.10;
/// Slow agent: only agents with at least this many workstreams are compared …
pub const SLOW_AGENT_MIN_WORKSTREAMS: usize = 2;
/// … an agent is slow when its average exceeds this factor times the median of the others'
/// averages …
pub const SLOW_AGENT_FACTOR: f64 = 2.0;
/// … and exceeds it by at least this many seconds (so sub-second noise is not "slow").
pub const SLOW_AGENT_MIN_GAP_SECS: f64 = 1.0;
/// Recommendations list at most this many names before "and N more".
pub const MAX_NAMES: usize = 10;
/// At most this many "A and B conflict" lines; the rest are summarised in one line.
pub const MAX_CONFLICT_LINES: usize = 20;

/// A workstream named by a piece of advice, with a short detail (an error type, a count)
/// and how long it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Named {
    pub workstream_id: String,
    pub detail: String,
    pub duration_seconds: f64,
}

/// One step of a merge order, as advice quotes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderStep {
    pub workstream_id: String,
    pub rebase_first: bool,
}

/// Two workstreams and the paths they share (or conflict in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairPaths {
    pub workstreams: [String; 2],
    pub paths: Vec<String>,
}

/// How much one agent worked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentLoad {
    pub agent_id: String,
    pub busy_seconds: f64,
    pub workstreams: usize,
}

/// One recommendation and its evidence. [`Advice::text`] is the sentence shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Advice {
    /// The run had no workstreams.
    NothingToMerge,
    /// Everything completed; with conflicts, the order to merge in.
    ReadyForMerge {
        workstreams: usize,
        conflicting_pairs: usize,
        merge_order: Vec<OrderStep>,
    },
    /// A high share of the workstreams failed.
    SystemReview {
        failed: usize,
        total: usize,
        failed_rate: f64,
        errors: usize,
        errors_by_type: BTreeMap<String, usize>,
    },
    /// Failed workstreams, with their first error's type.
    ReviewFailures {
        workstreams: Vec<String>,
        first_error_types: BTreeMap<String, usize>,
    },
    /// Workstreams that hit their time limit (detail: how long they ran).
    Timeouts { workstreams: Vec<Named> },
    /// Workstreams whose tests failed (detail: failed count or exit code).
    TestFailures { workstreams: Vec<Named> },
    /// Workstreams that never started, for a reason other than an interrupt.
    Skipped {
        workstreams: Vec<String>,
        run_id: String,
    },
    /// Workstreams the interrupt of the run stopped or never started: `--resume` runs them.
    Interrupted {
        workstreams: Vec<String>,
        run_id: String,
    },
    /// A conflicting pair: merge one, then rebase the other.
    Conflict {
        #[serde(flatten)]
        pair: PairPaths,
        merge_first: String,
        then_rebase: String,
    },
    /// Conflicting pairs beyond the ones listed one by one.
    MoreConflicts { pairs: usize },
    /// Pairs that share files but merge cleanly.
    CleanOverlaps { pairs: Vec<PairPaths> },
    /// Files touched by more than one workstream that the forecast did not merge.
    SharedFiles { files: Vec<Overlap> },
    /// One agent was busy much longer than another.
    Imbalance {
        busiest: AgentLoad,
        least: AgentLoad,
        wall_seconds: f64,
    },
    /// Agents that ran nothing while another ran several workstreams.
    IdleAgents {
        idle: Vec<String>,
        busiest: AgentLoad,
        working_agents: usize,
    },
    /// An agent much slower per workstream than the others.
    SlowAgent {
        agent_id: String,
        average_seconds: f64,
        others_median_seconds: f64,
    },
}

/// "a, b, c and 4 more" for at most [`MAX_NAMES`] items.
pub fn name_list<S: AsRef<str>>(items: impl ExactSizeIterator<Item = S>) -> String {
    let n = items.len();
    let mut out = String::new();
    for (i, s) in items.take(MAX_NAMES).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(s.as_ref());
    }
    if n > MAX_NAMES {
        out.push_str(&format!(" and {} more", n - MAX_NAMES));
    }
    out
}

fn counts(m: &BTreeMap<String, usize>) -> String {
    m.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn named(list: &[Named]) -> String {
    name_list(
        list.iter()
            .map(|n| format!("{} ({})", n.workstream_id, n.detail)),
    )
}

fn ws_count(n: usize) -> String {
    plural(n, "workstream", "workstreams")
}

impl Advice {
    /// The sentence shown in the report, the tables and the JSON `recommendations`.
    pub fn text(&self) -> String {
        match self {
            Advice::NothingToMerge => "Nothing to merge: the run had no workstreams.".into(),
            Advice::ReadyForMerge {
                workstreams,
                conflicting_pairs: 0,
                ..
            } => format!(
                "Ready for merge: {} completed.",
                all_of(*workstreams, "workstream", "workstreams")
            ),
            Advice::ReadyForMerge {
                workstreams,
                conflicting_pairs,
                merge_order,
            } => format!(
                "Ready for merge: {} completed, but {}: merge in this order: {}.",
                all_of(*workstreams, "workstream", "workstreams"),
                plural(*conflicting_pairs, "pair conflicts", "pairs conflict"),
                name_list(merge_order.iter().map(|s| if s.rebase_first {
                    format!("{} (rebase first)", s.workstream_id)
                } else {
                    s.workstream_id.clone()
                }))
            ),
            Advice::SystemReview { .. }
            | Advice::ReviewFailures { .. }
            | Advice::Timeouts { .. }
            | Advice::TestFailures { .. }
            | Advice::Skipped { .. }
            | Advice::Interrupted { .. } => self.failure_text(),
            Advice::Conflict {
                pair,
                merge_first,
                then_rebase,
            } => format!(
                "{} and {} conflict in {}: merge {merge_first}, then rebase {then_rebase}.",
                pair.workstreams[0],
                pair.workstreams[1],
                name_list(pair.paths.iter())
            ),
            Advice::MoreConflicts { pairs } => format!(
                "{pairs} more conflicting pairs: see the merge forecast in the report."
            ),
            Advice::CleanOverlaps { pairs } => format!(
                "{} the same files but {} cleanly: {}.",
                plural(pairs.len(), "workstream pair touches", "workstream pairs touch"),
                if pairs.len() == 1 { "merges" } else { "merge" },
                name_list(pairs.iter().map(|p| format!(
                    "{} + {} ({})",
                    p.workstreams[0],
                    p.workstreams[1],
                    name_list(p.paths.iter())
                )))
            ),
            Advice::SharedFiles { files } => format!(
                "{} touched by more than one workstream: {}.",
                plural(files.len(), "file was", "files were"),
                name_list(
                    files
                        .iter()
                        .map(|o| format!("{} ({})", o.path, o.workstreams.join(", ")))
                )
            ),
            Advice::Imbalance {
                busiest,
                least,
                wall_seconds,
            } => format!(
                "Redistribute workload: {} was busy {:.1} s ({}) but {} only {:.1} s ({}) in a {:.1} s run: split long workstreams so agents finish together.",
                busiest.agent_id,
                busiest.busy_seconds,
                ws_count(busiest.workstreams),
                least.agent_id,
                least.busy_seconds,
                ws_count(least.workstreams),
                wall_seconds
            ),
            Advice::IdleAgents {
                idle,
                busiest,
                working_agents,
            } => format!(
                "Redistribute workload: {} ran no workstreams while {} ran {}: use `--agents {working_agents}` or loosen `depends_on` chains so more can run at once.",
                name_list(idle.iter()),
                busiest.agent_id,
                busiest.workstreams
            ),
            Advice::SlowAgent {
                agent_id,
                average_seconds,
                others_median_seconds,
            } => format!(
                "Investigate slow agent {agent_id}: average {average_seconds:.1} s per workstream vs {others_median_seconds:.1} s for the others."
            ),
        }
    }

    /// The sentences about failures: review, timeouts, tests, skips.
    fn failure_text(&self) -> String {
        match self {
            Advice::SystemReview {
                failed,
                total,
                failed_rate,
                errors,
                errors_by_type,
            } => format!(
                "Consider a system review: {failed} of {total} workstreams failed ({:.0}%), with {} of {} ({}).",
                failed_rate * 100.0,
                plural(*errors, "error", "errors"),
                plural(errors_by_type.len(), "type", "types"),
                counts(errors_by_type)
            ),
            Advice::ReviewFailures {
                workstreams,
                first_error_types,
            } => format!(
                "Review {}: {} ({}).",
                plural(workstreams.len(), "failed workstream", "failed workstreams"),
                name_list(workstreams.iter()),
                counts(first_error_types)
            ),
            Advice::Timeouts { workstreams } => format!(
                "{} timed out: {}: raise `timeout_secs` in their workstream files (or `--timeout`) if they need more time.",
                ws_count(workstreams.len()),
                named(workstreams)
            ),
            Advice::TestFailures { workstreams } => format!(
                "Tests failed in {}: {}.",
                ws_count(workstreams.len()),
                named(workstreams)
            ),
            Advice::Skipped {
                workstreams,
                run_id,
            } => format!(
                "{} skipped ({}): fix what stopped them, then rerun with `git ws-run --rerun-failed {run_id}`.",
                plural(workstreams.len(), "workstream was", "workstreams were"),
                name_list(workstreams.iter())
            ),
            Advice::Interrupted {
                workstreams,
                run_id,
            } => format!(
                "The run was interrupted before {} finished ({}): continue it with `git ws-run --resume {run_id}`.",
                plural(workstreams.len(), "workstream", "workstreams"),
                name_list(workstreams.iter())
            ),
            // `text` routes only the variants above here.
            _ => String::new(),
        }
    }
}

/// The seed's recommendation rules plus overlaps and conflicts, in a fixed order: merge
/// readiness, system review, failures, timeouts, test failures, skips, conflicts, clean
/// overlaps, overlaps without a forecast, workload imbalance, slow agents.
pub fn recommend(c: &Consolidated) -> Vec<Advice> {
    let mut out = Vec::new();
    out.extend(merge_readiness(c));
    out.extend(system_review(c));
    out.extend(failures(c));
    out.extend(conflicts(c));
    out.extend(clean_overlaps(c));
    out.extend(shared_files(c));
    out.extend(workload(c));
    out.extend(slow_agents(c));
    out
}

fn merge_readiness(c: &Consolidated) -> Option<Advice> {
    if c.total_workstreams == 0 {
        return Some(Advice::NothingToMerge);
    }
    if !c.all_completed() {
        return None;
    }
    let conflicting = c.forecast.conflicting().len();
    let merge_order = if conflicting == 0 {
        Vec::new()
    } else {
        c.forecast
            .merge_order
            .iter()
            .map(|s| OrderStep {
                workstream_id: s.workstream_id.clone(),
                rebase_first: !s.clean,
            })
            .collect()
    };
    Some(Advice::ReadyForMerge {
        workstreams: c.total_workstreams,
        conflicting_pairs: conflicting,
        merge_order,
    })
}

/// Fires on a high failure *rate* (and enough failures for the rate to mean something),
/// not on a count of errors or of error types.
fn system_review(c: &Consolidated) -> Option<Advice> {
    if c.total_workstreams == 0 {
        return None;
    }
    let rate = c.failed as f64 / c.total_workstreams as f64;
    (c.failed >= REVIEW_MIN_FAILED && rate >= REVIEW_MIN_FAILED_RATE).then(|| {
        Advice::SystemReview {
            failed: c.failed,
            total: c.total_workstreams,
            failed_rate: rate,
            errors: c.total_errors,
            errors_by_type: c.errors_by_type.iter().cloned().collect(),
        }
    })
}

fn notes(list: &[WsNote]) -> Vec<Named> {
    list.iter()
        .map(|n| Named {
            workstream_id: n.workstream_id.clone(),
            detail: n.detail.clone(),
            duration_seconds: n.duration_seconds,
        })
        .collect()
}

fn ids(list: &[WsNote]) -> Vec<String> {
    list.iter().map(|n| n.workstream_id.clone()).collect()
}

/// Failures, timeouts, test failures and skips.
fn failures(c: &Consolidated) -> Vec<Advice> {
    let mut out = Vec::new();
    if !c.failed_workstreams.is_empty() {
        let mut first_error_types = BTreeMap::new();
        for n in &c.failed_workstreams {
            *first_error_types.entry(n.detail.clone()).or_default() += 1;
        }
        out.push(Advice::ReviewFailures {
            workstreams: ids(&c.failed_workstreams),
            first_error_types,
        });
    }
    if !c.timed_out_workstreams.is_empty() {
        out.push(Advice::Timeouts {
            workstreams: notes(&c.timed_out_workstreams),
        });
    }
    if !c.test_failures.is_empty() {
        out.push(Advice::TestFailures {
            workstreams: notes(&c.test_failures),
        });
    }
    // What the interrupt stopped is finished by `--resume`; the rest of the skips (a failed
    // dependency) need a fix and `--rerun-failed`.
    let interrupted: HashSet<&str> = c
        .interrupted_workstreams
        .iter()
        .map(String::as_str)
        .collect();
    let skipped: Vec<String> = ids(&c.skipped_workstreams)
        .into_iter()
        .filter(|id| !interrupted.contains(id.as_str()))
        .collect();
    if !skipped.is_empty() {
        out.push(Advice::Skipped {
            workstreams: skipped,
            run_id: c.run.run_id.clone(),
        });
    }
    if !c.interrupted_workstreams.is_empty() {
        out.push(Advice::Interrupted {
            workstreams: c.interrupted_workstreams.clone(),
            run_id: c.run.run_id.clone(),
        });
    }
    out
}

fn pair_paths(p: &PairForecast, paths: &[String]) -> PairPaths {
    PairPaths {
        workstreams: [p.a.clone(), p.b.clone()],
        paths: paths.to_vec(),
    }
}

/// One line per conflicting pair (the one earlier in the merge order is merged first).
fn conflicts(c: &Consolidated) -> Vec<Advice> {
    let conflicting = c.forecast.conflicting();
    let positions = c.forecast.positions();
    let mut out: Vec<Advice> = conflicting
        .iter()
        .take(MAX_CONFLICT_LINES)
        .map(|p| {
            let (first, second) = p.merge_first(&positions);
            Advice::Conflict {
                pair: pair_paths(p, &p.conflict_paths),
                merge_first: first.to_string(),
                then_rebase: second.to_string(),
            }
        })
        .collect();
    if conflicting.len() > MAX_CONFLICT_LINES {
        out.push(Advice::MoreConflicts {
            pairs: conflicting.len() - MAX_CONFLICT_LINES,
        });
    }
    out
}

fn clean_overlaps(c: &Consolidated) -> Option<Advice> {
    let clean = c.forecast.clean_overlaps();
    (!clean.is_empty()).then(|| Advice::CleanOverlaps {
        pairs: clean
            .iter()
            .map(|p| pair_paths(p, &p.common_paths))
            .collect(),
    })
}

/// Overlaps the forecast says nothing about.
fn shared_files(c: &Consolidated) -> Option<Advice> {
    let covered: HashSet<&str> = c
        .forecast
        .pairs
        .iter()
        .flat_map(|p| p.common_paths.iter().chain(p.conflict_paths.iter()))
        .map(String::as_str)
        .collect();
    let files: Vec<Overlap> = c
        .overlaps
        .iter()
        .filter(|o| !covered.contains(o.path.as_str()))
        .cloned()
        .collect();
    (!files.is_empty()).then_some(Advice::SharedFiles { files })
}

fn load(a: &AgentPerf) -> AgentLoad {
    AgentLoad {
        agent_id: a.agent_id.clone(),
        busy_seconds: a.busy_seconds,
        workstreams: a.total,
    }
}

/// Workload imbalance, only when there was enough work to balance: a run of at least
/// [`WORKLOAD_MIN_WALL_SECS`], at least [`IMBALANCE_MIN_PER_AGENT`] workstreams per agent,
/// and a busiest agent that ran more than one (a single long workstream cannot be moved to
/// another agent).
fn workload(c: &Consolidated) -> Option<Advice> {
    if c.wall_seconds < WORKLOAD_MIN_WALL_SECS {
        return None;
    }
    let real: Vec<&AgentPerf> = c
        .agents
        .iter()
        .filter(|a| a.agent_id != UNASSIGNED_AGENT)
        .collect();
    let started: usize = real.iter().map(|a| a.total).sum();
    if real.is_empty() || started < IMBALANCE_MIN_PER_AGENT * real.len() {
        return None;
    }
    let workers: Vec<&AgentPerf> = real.iter().copied().filter(|a| a.total > 0).collect();
    // The first agent with the most (least) busy time.
    let busiest = workers.iter().copied().reduce(|m, a| {
        if a.busy_seconds > m.busy_seconds {
            a
        } else {
            m
        }
    })?;
    let least = workers.iter().copied().reduce(|m, a| {
        if a.busy_seconds < m.busy_seconds {
            a
        } else {
            m
        }
    })?;
    let gap = busiest.busy_seconds - least.busy_seconds;
    if workers.len() >= 2
        && busiest.total >= 2
        && busiest.busy_seconds > IMBALANCE_RATIO * least.busy_seconds
        && gap > IMBALANCE_MIN_WALL_SHARE * c.wall_seconds
    {
        return Some(Advice::Imbalance {
            busiest: load(busiest),
            least: load(least),
            wall_seconds: c.wall_seconds,
        });
    }
    let idle: Vec<String> = real
        .iter()
        .filter(|a| a.total == 0)
        .map(|a| a.agent_id.clone())
        .collect();
    // The first agent with the most workstreams.
    let most = workers
        .iter()
        .copied()
        .reduce(|m, a| if a.total > m.total { a } else { m })?;
    (!idle.is_empty() && most.total >= 2).then(|| Advice::IdleAgents {
        idle,
        busiest: load(most),
        working_agents: workers.len(),
    })
}

/// Agents whose average exceeds [`SLOW_AGENT_FACTOR`] times the median of the others'.
fn slow_agents(c: &Consolidated) -> Vec<Advice> {
    let compared: Vec<&AgentPerf> = c
        .agents
        .iter()
        .filter(|a| a.agent_id != UNASSIGNED_AGENT && a.total >= SLOW_AGENT_MIN_WORKSTREAMS)
        .collect();
    if compared.len() < 2 {
        return Vec::new();
    }
    let mut avgs: Vec<f64> = compared.iter().map(|a| a.avg_duration).collect();
    avgs.sort_by(f64::total_cmp);
    let m = avgs.len();
    compared
        .iter()
        .filter_map(|a| {
            // Median of the others: the sorted averages without one copy of this one's.
            let i = avgs.partition_point(|x| x.total_cmp(&a.avg_duration) == Ordering::Less);
            let at = |k: usize| if k < i { avgs[k] } else { avgs[k + 1] };
            let n = m - 1;
            let median = if n % 2 == 1 {
                at(n / 2)
            } else {
                (at(n / 2 - 1) + at(n / 2)) / 2.0
            };
            (a.avg_duration > SLOW_AGENT_FACTOR * median
                && a.avg_duration - median >= SLOW_AGENT_MIN_GAP_SECS)
                .then(|| Advice::SlowAgent {
                    agent_id: a.agent_id.clone(),
                    average_seconds: a.avg_duration,
                    others_median_seconds: median,
                })
        })
        .collect()
}
