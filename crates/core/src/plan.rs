//! Scheduling: the pure dispatch queue (dependencies first, then longest expected duration
//! first), dependency-failure skipping, and the simulated plan printed by `--dry-run`.
//!
//! Priority is the critical path ("bottom level"): a job's expected duration plus the longest
//! chain of expected durations of its transitive dependents, so work that unblocks long
//! chains starts first; with no dependencies this is exactly longest-expected-first. Every
//! operation is O(log n) per job plus its edges (binary heap, dependency counters): no rescans.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};

/// A node of the schedule: id, dependencies, expected duration in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: String,
    pub depends_on: Vec<String>,
    /// Expected duration from history; None when unknown.
    pub expected_secs: Option<f64>,
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Running,
    Finished,
    Skipped,
    Drained,
}

/// A ready job in the heap: highest priority first, then lowest input index.
#[derive(Debug, Clone, Copy)]
struct Ready {
    priority: f64,
    index: usize,
}

impl Ord for Ready {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .total_cmp(&other.priority)
            .then_with(|| other.index.cmp(&self.index))
    }
}
impl PartialOrd for Ready {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Ready {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ready {}

/// The dispatch queue. Dependencies not among the jobs count as satisfied.
/// Ready jobs come out by priority: expected duration plus the longest chain of expected
/// durations of the jobs that (transitively) depend on it. Unknown durations are treated as
/// the mean of the known ones (or 0 when none are known); ties are broken by input order.
///
/// Robustness: a repeated id keeps only its first job; self-dependencies are ignored; jobs
/// on a dependency cycle (rejected earlier by `validate_set`) never become ready — a caller
/// that sees `next_ready() == None` with `running() == 0` and `pending() > 0` can
/// [`drain_pending`](Scheduler::drain_pending) them.
#[derive(Debug)]
pub struct Scheduler {
    ids: Vec<String>,
    index: HashMap<String, usize>,
    deps: Vec<Vec<usize>>,
    dependents: Vec<Vec<usize>>,
    /// Dependencies not yet finished OK.
    waiting: Vec<usize>,
    state: Vec<State>,
    priority: Vec<f64>,
    /// Position in a topological order (dependencies first); cycle members come last.
    topo_pos: Vec<usize>,
    ready: BinaryHeap<Ready>,
    pending: usize,
    running: usize,
}

/// A job skipped because a dependency failed or was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub id: String,
    /// e.g. "dependency ws-01 failed" / "dependency ws-02 was skipped (ws-01 failed)".
    pub reason: String,
    /// The dependency that caused it.
    pub dependency: String,
}

/// Usable known durations: finite and not negative.
fn known_secs(job: &Job) -> Option<f64> {
    job.expected_secs.filter(|s| s.is_finite() && *s >= 0.0)
}

impl Scheduler {
    pub fn new(jobs: Vec<Job>) -> Scheduler {
        let mut index: HashMap<String, usize> = HashMap::with_capacity(jobs.len());
        let mut kept: Vec<Job> = Vec::with_capacity(jobs.len());
        for job in jobs {
            if !index.contains_key(&job.id) {
                index.insert(job.id.clone(), kept.len());
                kept.push(job);
            }
        }
        let n = kept.len();

        let mut deps: Vec<Vec<usize>> = Vec::with_capacity(n);
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, job) in kept.iter().enumerate() {
            let mut mine: Vec<usize> = Vec::new();
            for d in &job.depends_on {
                if let Some(&j) = index.get(d) {
                    if j != i && !mine.contains(&j) {
                        mine.push(j);
                        dependents[j].push(i);
                    }
                }
            }
            deps.push(mine);
        }
        let waiting: Vec<usize> = deps.iter().map(Vec::len).collect();

        // Topological order (Kahn); whatever is left sits on or behind a cycle.
        let mut order: Vec<usize> = Vec::with_capacity(n);
        let mut left = waiting.clone();
        let mut queue: VecDeque<usize> = (0..n).filter(|&i| left[i] == 0).collect();
        while let Some(v) = queue.pop_front() {
            order.push(v);
            for &w in &dependents[v] {
                left[w] -= 1;
                if left[w] == 0 {
                    queue.push_back(w);
                }
            }
        }
        if order.len() < n {
            order.extend((0..n).filter(|&i| left[i] > 0));
        }
        let mut topo_pos = vec![0; n];
        for (pos, &v) in order.iter().enumerate() {
            topo_pos[v] = pos;
        }

        // Durations: unknown = mean of known, 0 if none.
        let known: Vec<f64> = kept.iter().filter_map(known_secs).collect();
        let mean = if known.is_empty() {
            0.0
        } else {
            known.iter().sum::<f64>() / known.len() as f64
        };
        let mut priority: Vec<f64> = kept.iter().map(|j| known_secs(j).unwrap_or(mean)).collect();
        // Bottom level: dependents come later in `order`, so walk it backwards.
        for &v in order.iter().rev() {
            let longest = dependents[v]
                .iter()
                .map(|&w| priority[w])
                .fold(0.0f64, f64::max);
            priority[v] += longest;
        }

        let ready: BinaryHeap<Ready> = (0..n)
            .filter(|&i| waiting[i] == 0)
            .map(|i| Ready {
                priority: priority[i],
                index: i,
            })
            .collect();
        Scheduler {
            ids: kept.into_iter().map(|j| j.id).collect(),
            index,
            deps,
            dependents,
            waiting,
            state: vec![State::Pending; n],
            priority,
            topo_pos,
            ready,
            pending: n,
            running: 0,
        }
    }

    /// Take the next ready job (all dependencies completed), if any.
    pub fn next_ready(&mut self) -> Option<String> {
        while let Some(Ready { index, .. }) = self.ready.pop() {
            // Entries of jobs finished, skipped or drained while queued are stale.
            if self.state[index] == State::Pending && self.waiting[index] == 0 {
                self.state[index] = State::Running;
                self.pending -= 1;
                self.running += 1;
                return Some(self.ids[index].clone());
            }
        }
        None
    }

    /// Record that `id` finished — a running job, or a pending one that will never run (an
    /// invalid workstream). When `ok` is false every transitive dependent still pending is
    /// removed and returned as skipped, in dependency order (a skip comes after the skip of
    /// the dependency named in its reason). Finishing an unknown, already finished, skipped
    /// or drained id does nothing and returns nothing.
    pub fn finish(&mut self, id: &str, ok: bool) -> Vec<Skip> {
        let Some(&root) = self.index.get(id) else {
            return Vec::new();
        };
        match self.state[root] {
            State::Pending => self.pending -= 1,
            State::Running => self.running -= 1,
            State::Finished | State::Skipped | State::Drained => return Vec::new(),
        }
        self.state[root] = State::Finished;
        if ok {
            for k in 0..self.dependents[root].len() {
                let w = self.dependents[root][k];
                self.waiting[w] -= 1;
                if self.waiting[w] == 0 && self.state[w] == State::Pending {
                    self.ready.push(Ready {
                        priority: self.priority[w],
                        index: w,
                    });
                }
            }
            return Vec::new();
        }

        // Every pending job reachable through dependents.
        let mut affected: Vec<usize> = Vec::new();
        let mut seen: HashSet<usize> = HashSet::new();
        let mut queue: VecDeque<usize> = VecDeque::from([root]);
        while let Some(v) = queue.pop_front() {
            for &w in &self.dependents[v] {
                if self.state[w] == State::Pending && seen.insert(w) {
                    affected.push(w);
                    queue.push_back(w);
                }
            }
        }
        affected.sort_by_key(|&v| self.topo_pos[v]);
        for &v in &affected {
            self.state[v] = State::Skipped;
        }
        self.pending -= affected.len();

        let root_id = &self.ids[root];
        affected
            .into_iter()
            .map(|v| {
                let id = self.ids[v].clone();
                if self.deps[v].contains(&root) {
                    Skip {
                        id,
                        reason: format!("dependency {root_id} failed"),
                        dependency: root_id.clone(),
                    }
                } else {
                    // It was reached through some dependency skipped just now.
                    let via = self.deps[v]
                        .iter()
                        .copied()
                        .filter(|d| seen.contains(d))
                        .min_by_key(|&d| self.topo_pos[d])
                        .unwrap_or(root);
                    let via_id = &self.ids[via];
                    Skip {
                        id,
                        reason: format!("dependency {via_id} was skipped ({root_id} failed)"),
                        dependency: via_id.clone(),
                    }
                }
            })
            .collect()
    }

    /// Remove every job not yet dispatched and return their ids, in input order (for
    /// cancellation and fail-fast). Running jobs stay running until finished.
    pub fn drain_pending(&mut self) -> Vec<String> {
        let mut drained = Vec::with_capacity(self.pending);
        for (i, state) in self.state.iter_mut().enumerate() {
            if *state == State::Pending {
                *state = State::Drained;
                drained.push(self.ids[i].clone());
            }
        }
        self.pending = 0;
        self.ready.clear();
        drained
    }

    /// Jobs neither finished nor dispatched.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Jobs dispatched and not yet finished.
    pub fn running(&self) -> usize {
        self.running
    }

    /// No job pending and none running.
    pub fn is_done(&self) -> bool {
        self.pending() == 0 && self.running() == 0
    }

    /// The priority `id` is dispatched by (its critical path in expected seconds), if known.
    pub fn priority(&self, id: &str) -> Option<f64> {
        self.index.get(id).map(|&i| self.priority[i])
    }
}

/// One line of a simulated plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStep {
    /// 1-based agent number.
    pub agent: usize,
    pub id: String,
    pub start_secs: f64,
    pub expected_secs: f64,
}

/// A running job in the simulation, earliest end first, then lowest agent.
#[derive(Debug)]
struct Busy {
    end: f64,
    agent: usize,
    id: String,
}
impl Ord for Busy {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .end
            .total_cmp(&self.end)
            .then_with(|| other.agent.cmp(&self.agent))
    }
}
impl PartialOrd for Busy {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Busy {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Busy {}

/// Simulate the scheduler with `agents` slots (at least 1) assuming every job succeeds and
/// takes its expected duration (unknown = 1 s in the timeline; the dispatch order is the
/// [`Scheduler`]'s own), to show which agent would take what, in which order. An idle agent
/// takes the next ready job; agents freed at the same instant are all freed before any
/// dispatch, lowest-numbered agent first. Jobs that can never become ready (dependency
/// cycles) are left out. Sorted by start time, then agent. O((n + edges) log n).
pub fn simulate(jobs: &[Job], agents: usize) -> Vec<PlannedStep> {
    let agents = agents.max(1);
    let mut duration: HashMap<&str, f64> = HashMap::with_capacity(jobs.len());
    for job in jobs {
        duration
            .entry(job.id.as_str())
            .or_insert_with(|| known_secs(job).unwrap_or(1.0));
    }
    let mut scheduler = Scheduler::new(jobs.to_vec());
    let mut idle: BinaryHeap<Reverse<usize>> = (1..=agents).map(Reverse).collect();
    let mut busy: BinaryHeap<Busy> = BinaryHeap::new();
    let mut steps = Vec::with_capacity(jobs.len());
    let mut now = 0.0f64;
    loop {
        while let Some(&Reverse(agent)) = idle.peek() {
            let Some(id) = scheduler.next_ready() else {
                break;
            };
            idle.pop();
            let expected = duration.get(id.as_str()).copied().unwrap_or(1.0);
            steps.push(PlannedStep {
                agent,
                id: id.clone(),
                start_secs: now,
                expected_secs: expected,
            });
            busy.push(Busy {
                end: now + expected,
                agent,
                id,
            });
        }
        let Some(first) = busy.pop() else {
            break;
        };
        now = first.end;
        let mut done = vec![first];
        while busy.peek().is_some_and(|b| b.end == now) {
            done.extend(busy.pop());
        }
        for b in done {
            scheduler.finish(&b.id, true);
            idle.push(Reverse(b.agent));
        }
    }
    steps.sort_by(|a, b| {
        a.start_secs
            .total_cmp(&b.start_secs)
            .then(a.agent.cmp(&b.agent))
    });
    steps
}

/// Build jobs from workstreams and a history of expected durations (by workstream id).
pub fn jobs_from(ws: &[crate::workstream::Workstream], history: &HashMap<String, f64>) -> Vec<Job> {
    ws.iter()
        .map(|w| Job {
            id: w.id.clone(),
            depends_on: w.depends_on.clone(),
            expected_secs: history.get(&w.id).copied(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, deps: &[&str], secs: Option<f64>) -> Job {
        Job {
            id: id.to_string(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            expected_secs: secs,
        }
    }

    fn drain_ready(s: &mut Scheduler) -> Vec<String> {
        std::iter::from_fn(|| s.next_ready()).collect()
    }

    fn skip(id: &str, reason: &str, dependency: &str) -> Skip {
        Skip {
            id: id.into(),
            reason: reason.into(),
            dependency: dependency.into(),
        }
    }

    #[test]
    fn dependencies_come_first() {
        let mut s = Scheduler::new(vec![
            job("c", &["b"], Some(100.0)),
            job("b", &["a"], Some(100.0)),
            job("a", &[], Some(1.0)),
        ]);
        assert_eq!((s.pending(), s.running()), (3, 0));
        assert_eq!(drain_ready(&mut s), vec!["a"]);
        assert_eq!((s.pending(), s.running()), (2, 1));
        assert_eq!(s.finish("a", true), vec![]);
        assert_eq!(drain_ready(&mut s), vec!["b"]);
        s.finish("b", true);
        assert_eq!(drain_ready(&mut s), vec!["c"]);
        assert!(!s.is_done());
        s.finish("c", true);
        assert!(s.is_done());
        assert_eq!(s.next_ready(), None);
    }

    #[test]
    fn longest_expected_first_with_mean_for_unknown_and_input_order_ties() {
        let mut s = Scheduler::new(vec![
            job("five", &[], Some(5.0)),
            job("ten", &[], Some(10.0)),
            job("unknown", &[], None), // mean of 5, 10, 1, 5 = 5.25
            job("one", &[], Some(1.0)),
            job("five-again", &[], Some(5.0)),
        ]);
        assert_eq!(s.priority("unknown"), Some(5.25));
        assert_eq!(
            drain_ready(&mut s),
            vec!["ten", "unknown", "five", "five-again", "one"]
        );
        // Nothing known: every job is 0, so input order.
        let mut s = Scheduler::new(vec![job("x", &[], None), job("y", &[], None)]);
        assert_eq!(drain_ready(&mut s), vec!["x", "y"]);
    }

    #[test]
    fn critical_path_beats_a_longer_single_job() {
        // a(1) -> b(1) -> c(10): a unblocks 12 s of work, x is only 5 s.
        let mut s = Scheduler::new(vec![
            job("x", &[], Some(5.0)),
            job("c", &["b"], Some(10.0)),
            job("b", &["a"], Some(1.0)),
            job("a", &[], Some(1.0)),
        ]);
        assert_eq!(s.priority("a"), Some(12.0));
        assert_eq!(s.priority("b"), Some(11.0));
        assert_eq!(s.priority("x"), Some(5.0));
        assert_eq!(drain_ready(&mut s), vec!["a", "x"]);
    }

    #[test]
    fn dependencies_outside_the_jobs_are_satisfied() {
        let mut s = Scheduler::new(vec![job("a", &["elsewhere"], None), job("b", &["b"], None)]);
        assert_eq!(
            drain_ready(&mut s),
            vec!["a", "b"],
            "self-dependency ignored"
        );
    }

    #[test]
    fn failure_skips_a_chain_in_order() {
        let mut s = Scheduler::new(vec![
            job("d", &["c"], None),
            job("c", &["b"], None),
            job("b", &["a"], None),
            job("a", &[], None),
            job("other", &[], None),
        ]);
        assert_eq!(s.next_ready().as_deref(), Some("a"));
        let skips = s.finish("a", false);
        assert_eq!(
            skips,
            vec![
                skip("b", "dependency a failed", "a"),
                skip("c", "dependency b was skipped (a failed)", "b"),
                skip("d", "dependency c was skipped (a failed)", "c"),
            ]
        );
        assert_eq!(s.pending(), 1);
        assert_eq!(drain_ready(&mut s), vec!["other"]);
        s.finish("other", true);
        assert!(s.is_done());
    }

    #[test]
    fn failure_skips_diamonds_once_in_dependency_order() {
        // a -> b -> c -> d and a -> d directly; a -> e; d and e -> f; g independent of a.
        let mut s = Scheduler::new(vec![
            job("f", &["e", "d"], None),
            job("d", &["c", "a"], None),
            job("c", &["b"], None),
            job("b", &["a"], None),
            job("e", &["a", "g"], None),
            job("a", &[], None),
            job("g", &[], None),
        ]);
        assert_eq!(drain_ready(&mut s), vec!["a", "g"]);
        s.finish("g", true);
        let skips = s.finish("a", false);
        let ids: Vec<&str> = skips.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(ids, vec!["b", "e", "c", "d", "f"]);
        assert_eq!(skips[1], skip("e", "dependency a failed", "a"));
        assert_eq!(skips[3], skip("d", "dependency a failed", "a"));
        assert_eq!(
            skips[4],
            skip("f", "dependency e was skipped (a failed)", "e")
        );
        // Every skip comes after the skip it names.
        for (k, sk) in skips.iter().enumerate() {
            if sk.dependency != "a" {
                assert!(ids[..k].contains(&sk.dependency.as_str()));
            }
        }
        assert!(s.is_done());
    }

    #[test]
    fn finishing_pending_jobs_unknown_ids_and_twice() {
        let mut s = Scheduler::new(vec![
            job("ws-01", &[], Some(100.0)), // invalid file: finished before dispatch
            job("ws-02", &["ws-01"], None),
            job("ws-03", &[], Some(1.0)),
            job("ws-04", &["ws-03"], None),
        ]);
        assert_eq!(
            s.finish("ws-01", false),
            vec![skip("ws-02", "dependency ws-01 failed", "ws-01")]
        );
        assert_eq!(s.pending(), 2);
        assert_eq!(s.finish("ws-01", false), vec![], "twice is a no-op");
        assert_eq!(s.finish("ws-01", true), vec![]);
        assert_eq!(s.finish("ws-02", true), vec![], "skipped jobs stay skipped");
        assert_eq!(s.finish("nope", false), vec![]);
        assert_eq!(s.pending(), 2);
        // A pending job finished OK releases its dependents without ever running.
        s.finish("ws-03", true);
        assert_eq!(drain_ready(&mut s), vec!["ws-04"]);
        s.finish("ws-04", false);
        s.finish("ws-04", false);
        assert_eq!((s.pending(), s.running()), (0, 0));
        assert!(s.is_done());
    }

    #[test]
    fn drain_removes_everything_not_dispatched() {
        let mut s = Scheduler::new(vec![
            job("a", &[], Some(9.0)),
            job("b", &["a"], None),
            job("c", &[], Some(1.0)),
            job("d", &[], Some(0.5)),
        ]);
        assert_eq!(s.next_ready().as_deref(), Some("a"));
        assert_eq!(s.drain_pending(), vec!["b", "c", "d"]);
        assert_eq!((s.pending(), s.running()), (0, 1));
        assert_eq!(s.next_ready(), None);
        assert_eq!(
            s.finish("a", false),
            vec![],
            "drained dependents are not skipped again"
        );
        assert!(s.is_done());
        assert_eq!(s.drain_pending(), Vec::<String>::new());
    }

    #[test]
    fn cycles_stay_pending_and_can_be_drained() {
        let mut s = Scheduler::new(vec![
            job("a", &["b"], None),
            job("b", &["a"], None),
            job("c", &[], None),
        ]);
        assert_eq!(drain_ready(&mut s), vec!["c"]);
        s.finish("c", true);
        assert_eq!((s.next_ready(), s.running(), s.pending()), (None, 0, 2));
        assert_eq!(s.drain_pending(), vec!["a", "b"]);
        assert!(s.is_done());
    }

    #[test]
    fn simulate_matches_hand_computed_plan() {
        // Priorities: A 4+2=6, B 3+1=4, F unknown = mean(4,3,2,2,1) = 2.4, D 2, E 1, C 2.
        // Timeline (F takes 1 s): t=0 A->1, B->2, F->3; t=1 D->3; t=3 B,D end: E->2;
        // t=4 A,E end: C->1.
        let jobs = vec![
            job("A", &[], Some(4.0)),
            job("B", &[], Some(3.0)),
            job("C", &["A"], Some(2.0)),
            job("D", &[], Some(2.0)),
            job("E", &["B"], Some(1.0)),
            job("F", &[], None),
        ];
        let step = |agent, id: &str, start_secs, expected_secs| PlannedStep {
            agent,
            id: id.into(),
            start_secs,
            expected_secs,
        };
        assert_eq!(
            simulate(&jobs, 3),
            vec![
                step(1, "A", 0.0, 4.0),
                step(2, "B", 0.0, 3.0),
                step(3, "F", 0.0, 1.0),
                step(3, "D", 1.0, 2.0),
                step(2, "E", 3.0, 1.0),
                step(1, "C", 4.0, 2.0),
            ]
        );
        // One agent runs everything in dispatch order; zero agents means one.
        let order: Vec<String> = simulate(&jobs, 0).into_iter().map(|p| p.id).collect();
        // After A: C (2, released) ties with D (2) and wins by input order.
        assert_eq!(order, vec!["A", "B", "F", "C", "D", "E"]);
        assert_eq!(simulate(&[], 3), vec![]);
    }

    fn makespan(steps: &[PlannedStep]) -> f64 {
        steps
            .iter()
            .map(|p| p.start_secs + p.expected_secs)
            .fold(0.0, f64::max)
    }

    /// The seed's distribution: workstream i goes to agent i mod N, each agent runs its list
    /// in order.
    fn round_robin_makespan(jobs: &[Job], agents: usize) -> f64 {
        let mut load = vec![0.0; agents];
        for (i, j) in jobs.iter().enumerate() {
            load[i % agents] += j.expected_secs.unwrap_or(1.0);
        }
        load.into_iter().fold(0.0, f64::max)
    }

    #[test]
    fn beats_round_robin_on_a_skewed_workload() {
        // ws-01, ws-04, ws-07 are long: round-robin puts all three on agent 1.
        let jobs: Vec<Job> = (1..=9)
            .map(|i| {
                let secs = if i % 3 == 1 { 600.0 } else { 30.0 };
                job(&format!("ws-{i:02}"), &[], Some(secs))
            })
            .collect();
        let rr = round_robin_makespan(&jobs, 3);
        let ours = makespan(&simulate(&jobs, 3));
        assert_eq!(rr, 1800.0);
        assert_eq!(ours, 660.0);
        assert!(ours <= rr);
    }

    #[test]
    fn simulate_ten_thousand_jobs_with_chains() {
        // 100 chains of 100 jobs each, interleaved, with varied durations.
        let n = 10_000;
        let jobs: Vec<Job> = (0..n)
            .map(|i| {
                let deps = if i >= 100 {
                    vec![format!("j{}", i - 100)]
                } else {
                    vec![]
                };
                Job {
                    id: format!("j{i}"),
                    depends_on: deps,
                    expected_secs: if i % 7 == 0 {
                        None
                    } else {
                        Some((i % 13) as f64 + 0.5)
                    },
                }
            })
            .collect();
        let plan = simulate(&jobs, 8);
        assert_eq!(plan.len(), n);
        let by_id: HashMap<&str, &PlannedStep> = plan.iter().map(|p| (p.id.as_str(), p)).collect();
        assert_eq!(by_id.len(), n);
        for j in &jobs {
            let me = by_id[j.id.as_str()];
            for d in &j.depends_on {
                let dep = by_id[d.as_str()];
                assert!(dep.start_secs + dep.expected_secs <= me.start_secs);
            }
        }
        let mut per_agent: HashMap<usize, Vec<&PlannedStep>> = HashMap::new();
        for p in &plan {
            assert!((1..=8).contains(&p.agent));
            per_agent.entry(p.agent).or_default().push(p);
        }
        for steps in per_agent.values() {
            for w in steps.windows(2) {
                assert!(w[0].start_secs + w[0].expected_secs <= w[1].start_secs);
            }
        }
        assert!(plan.windows(2).all(|w| w[0].start_secs <= w[1].start_secs));
    }

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n.max(1) as u64) as usize
        }
    }

    /// Random DAGs, random failures, random early finishes of pending jobs: every job ends
    /// exactly once (finished, skipped), dispatch waits for successful dependencies, and
    /// every skip names a dependency that failed or was skipped.
    #[test]
    fn random_runs_keep_the_invariants() {
        let mut rng = Rng(7);
        for _ in 0..300 {
            let n = 1 + rng.below(30);
            let jobs: Vec<Job> = (0..n)
                .map(|i| {
                    let deps: Vec<String> = (0..rng.below(3))
                        .filter(|_| i > 0)
                        .map(|_| format!("j{}", rng.below(i)))
                        .collect();
                    let secs = (rng.below(4) > 0).then(|| rng.below(50) as f64);
                    Job {
                        id: format!("j{i}"),
                        depends_on: deps,
                        expected_secs: secs,
                    }
                })
                .collect();
            let mut s = Scheduler::new(jobs.clone());
            let mut outcome: HashMap<String, &str> = HashMap::new();
            // Some jobs are "invalid": finished as failed before anything runs.
            for j in &jobs {
                if rng.below(10) == 0 {
                    for sk in s.finish(&j.id, false) {
                        assert!(outcome.insert(sk.id, "skipped").is_none());
                    }
                    if !outcome.contains_key(&j.id) {
                        outcome.insert(j.id.clone(), "failed");
                    }
                }
            }
            let mut running: Vec<String> = Vec::new();
            while !s.is_done() {
                while let Some(id) = s.next_ready() {
                    let j = jobs.iter().find(|j| j.id == id).unwrap();
                    for d in &j.depends_on {
                        assert_eq!(outcome.get(d), Some(&"completed"), "{id} before {d}");
                    }
                    assert!(!outcome.contains_key(&id));
                    running.push(id);
                }
                assert!(!running.is_empty(), "stuck with {} pending", s.pending());
                let id = running.swap_remove(rng.below(running.len()));
                let ok = rng.below(4) > 0;
                let skips = s.finish(&id, ok);
                outcome.insert(id.clone(), if ok { "completed" } else { "failed" });
                for sk in skips {
                    let cause = outcome.get(&sk.dependency).copied();
                    assert!(matches!(cause, Some("failed") | Some("skipped")), "{sk:?}");
                    assert!(outcome.insert(sk.id, "skipped").is_none());
                }
            }
            assert_eq!(outcome.len(), n);
        }
    }
}
