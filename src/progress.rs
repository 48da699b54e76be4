//! Progress display for `git ws-run`: on a terminal, one indicatif line per agent plus an
//! overall bar with counts and an ETA from the workstreams' expected durations; otherwise
//! one plain line per event on stderr.

use crate::model::{agent_name, agent_number, Status, WorkstreamResult};
use crate::plan::Job;
use crate::runner::events::{Event, Observer};
use crate::text::{duration, one_line};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Time left in a run, estimated from the expected durations the scheduler planned with:
/// the running workstreams' expected remainders and the waiting ones placed, longest first,
/// on the agent that frees up first. A workstream without history counts as the mean of
/// those with one (or of those finished so far); with no durations at all it is unknown.
#[derive(Debug, Clone, Default)]
pub struct Eta {
    agents: usize,
    expected: HashMap<String, f64>,
    waiting: HashSet<String>,
    running: HashMap<String, Instant>,
    finished: Vec<f64>,
}

impl Eta {
    /// For a run of `jobs` on `agents` agents.
    pub fn new(jobs: &[Job], agents: usize) -> Eta {
        Eta {
            agents: agents.max(1),
            expected: jobs
                .iter()
                .filter_map(|j| Some((j.id.clone(), j.expected_secs.filter(|s| *s >= 0.0)?)))
                .collect(),
            waiting: jobs.iter().map(|j| j.id.clone()).collect(),
            running: HashMap::new(),
            finished: Vec::new(),
        }
    }

    pub fn started(&mut self, id: &str, at: Instant) {
        self.waiting.remove(id);
        self.running.insert(id.to_string(), at);
    }

    pub fn finished(&mut self, id: &str, seconds: f64) {
        self.waiting.remove(id);
        if self.running.remove(id).is_some() {
            self.finished.push(seconds.max(0.0));
        }
    }

    /// The duration to assume for a workstream without history.
    fn fallback(&self) -> Option<f64> {
        let mean = |v: &mut dyn Iterator<Item = f64>| {
            let (sum, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
            (n > 0).then(|| sum / n as f64)
        };
        mean(&mut self.expected.values().copied())
            .or_else(|| mean(&mut self.finished.iter().copied()))
    }

    /// Estimated time until the last workstream ends; None when nothing is known.
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        if self.waiting.is_empty() && self.running.is_empty() {
            return Some(Duration::ZERO);
        }
        let fallback = self.fallback()?;
        let guess = |id: &str| self.expected.get(id).copied().unwrap_or(fallback);
        // When each agent frees up: running work first (an overrun is assumed to go on a
        // quarter as long again), idle agents now.
        let mut free: Vec<f64> = self
            .running
            .iter()
            .map(|(id, at)| {
                let ran = now.saturating_duration_since(*at).as_secs_f64();
                (guess(id) - ran).max(ran * 0.25)
            })
            .collect();
        free.resize(free.len().max(self.agents), 0.0);
        let mut waiting: Vec<f64> = self.waiting.iter().map(|id| guess(id)).collect();
        waiting.sort_by(|a, b| b.total_cmp(a));
        for d in waiting {
            let first = free
                .iter_mut()
                .min_by(|a, b| a.total_cmp(b))
                .expect("at least one agent");
            *first += d;
        }
        let end = free.into_iter().fold(0.0, f64::max);
        Some(Duration::from_secs_f64(end))
    }

    /// `12s`, or `?` when unknown.
    pub fn text(&self, now: Instant) -> String {
        self.remaining(now)
            .map_or("?".to_string(), |d| duration(d.as_secs_f64().round()))
    }
}

/// Picks the display for the current stderr.
pub fn for_stderr(quiet: bool) -> Box<dyn Observer> {
    if quiet {
        Box::new(crate::runner::events::NoObserver)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bars::default())
    } else {
        Box::new(Plain)
    }
}

/// One line per event, for logs and CI.
pub struct Plain;

/// One line summarising a finished workstream (its id cleaned: an invalid file's key holds
/// its file name).
pub fn result_line(r: &WorkstreamResult) -> String {
    let mut s = format!("{} {}", one_line(&r.workstream_id), r.status);
    if r.status != Status::Skipped {
        s.push_str(&format!(" in {}", duration(r.duration_seconds)));
        s.push_str(&format!(
            " ({} file{}, {} commit{})",
            r.files.len(),
            if r.files.len() == 1 { "" } else { "s" },
            r.commits.len(),
            if r.commits.len() == 1 { "" } else { "s" }
        ));
    }
    if let Some(e) = r.errors.first() {
        let msg: String = one_line(e.message.lines().next().unwrap_or(""))
            .chars()
            .take(160)
            .collect();
        s.push_str(&format!(": {} {}", e.error_type, msg));
    }
    s
}

/// What the run does after the first Ctrl-C or SIGTERM, in one line.
pub fn winding_down(running: usize, waiting: usize, grace: Duration) -> String {
    format!(
        "interrupted: not starting {waiting} waiting workstream(s); stopping {running} running (SIGTERM, SIGKILL after {}); then consolidating and releasing the worktrees (Ctrl-C again to kill everything and exit now)",
        crate::runner::execute::human_duration(grace)
    )
}

/// `RUN: 3 workstreams on 2 agents`, in the singular where it is one.
fn run_started(run_id: &str, total: usize, agents: usize) -> String {
    format!(
        "{run_id}: {} on {}",
        crate::text::plural(total, "workstream", "workstreams"),
        crate::text::plural(agents, "agent", "agents")
    )
}

impl Observer for Plain {
    fn event(&mut self, event: Event<'_>) {
        let line = match event {
            Event::RunStarted {
                run_id,
                total,
                agents,
                ..
            } => format!("ws: {}", run_started(run_id, total, agents)),
            Event::WorkstreamStarted { agent, id } => {
                format!("ws: [{}] {id} started", agent_name(agent))
            }
            Event::WorkstreamFinished { result } => {
                format!("ws: [{}] {}", result.agent_id, result_line(result))
            }
            Event::Cancelling {
                running,
                waiting,
                grace,
            } => format!("ws: {}", winding_down(running, waiting, grace)),
            Event::Consolidating => {
                "ws: consolidating, writing the report and releasing the agent worktrees (kept in the pool unless ws.keepWorktrees is false)".to_string()
            }
            Event::Note(n) => format!("ws: warning: {n}"),
            Event::Integration(line) => format!("ws: {line}"),
        };
        let line =
            crate::colour::paint_text(&crate::text::clean(&line), crate::colour::Stream::Stderr);
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

/// indicatif bars: one per agent and an overall one.
#[derive(Default)]
pub struct Bars {
    multi: Option<MultiProgress>,
    agents: Vec<ProgressBar>,
    overall: Option<ProgressBar>,
    /// `--integrate`'s line (merged N, left out M, testing …), once it says something.
    integration: Option<ProgressBar>,
    eta: Arc<Mutex<Eta>>,
}

impl Bars {
    fn println(&self, s: &str) {
        let s = crate::colour::paint_text(&crate::text::clean(s), crate::colour::Stream::Stderr);
        match &self.multi {
            Some(m) => {
                let _ = m.println(s);
            }
            None => eprintln!("{s}"),
        }
    }
}

/// The recorder's warnings (a result the database refused, say: shown even with `-q`) go
/// above `m`'s bars, each a whole line, instead of into the middle of a bar being drawn.
fn route_warnings_to(m: &MultiProgress) {
    let m = m.clone();
    crate::runner::record::route_warnings(Some(Box::new(move |line: &str| {
        if m.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = m.println(line);
        }
    })));
}

impl Drop for Bars {
    fn drop(&mut self) {
        if self.multi.is_some() {
            crate::runner::record::route_warnings(None);
        }
    }
}

impl Observer for Bars {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::RunStarted {
                run_id,
                total,
                agents,
                jobs,
            } => {
                *self.eta.lock().unwrap_or_else(|p| p.into_inner()) = Eta::new(jobs, agents);
                let m = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
                route_warnings_to(&m);
                let _ = m.println(run_started(run_id, total, agents));
                let style = ProgressStyle::with_template("{spinner} {prefix:>9} {wide_msg}")
                    .expect("valid template");
                for k in 1..=agents {
                    let pb = m.add(ProgressBar::new_spinner());
                    pb.set_style(style.clone());
                    pb.set_prefix(agent_name(k));
                    pb.set_message("idle");
                    pb.enable_steady_tick(Duration::from_millis(200));
                    self.agents.push(pb);
                }
                let ov = m.add(ProgressBar::new(total as u64));
                let eta = self.eta.clone();
                ov.set_style(
                    ProgressStyle::with_template(
                        "{bar:30} {pos}/{len} {msg} [{elapsed_precise}, ETA {plan_eta}]",
                    )
                    .expect("valid template")
                    .with_key(
                        "plan_eta",
                        move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let e = eta.lock().unwrap_or_else(|p| p.into_inner());
                            let _ = w.write_str(&e.text(Instant::now()));
                        },
                    ),
                );
                ov.enable_steady_tick(Duration::from_millis(500));
                self.overall = Some(ov);
                self.multi = Some(m);
            }
            Event::WorkstreamStarted { agent, id } => {
                self.eta
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .started(id, Instant::now());
                if let Some(pb) = self.agents.get(agent - 1) {
                    pb.reset_elapsed();
                    pb.set_style(
                        ProgressStyle::with_template("{spinner} {prefix:>9} {wide_msg} {elapsed}")
                            .expect("valid template"),
                    );
                    pb.set_message(one_line(id));
                }
            }
            Event::WorkstreamFinished { result } => {
                let mark = match result.status {
                    Status::Completed => "ok  ",
                    Status::Failed => "FAIL",
                    Status::Skipped => "skip",
                    Status::Deferred => "wait",
                };
                self.println(&format!(
                    "{mark} [{}] {}",
                    result.agent_id,
                    result_line(result)
                ));
                self.eta
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .finished(&result.workstream_id, result.duration_seconds);
                if let Some(k) = agent_number(&result.agent_id) {
                    if let Some(pb) = self.agents.get(k.wrapping_sub(1)) {
                        pb.set_style(
                            ProgressStyle::with_template("{spinner} {prefix:>9} {wide_msg}")
                                .expect("valid template"),
                        );
                        pb.set_message("idle");
                    }
                }
                if let Some(ov) = &self.overall {
                    ov.inc(1);
                }
            }
            Event::Cancelling {
                running,
                waiting,
                grace,
            } => {
                self.println(&winding_down(running, waiting, grace));
                if let Some(ov) = &self.overall {
                    ov.set_message("winding down");
                }
            }
            Event::Consolidating => {
                crate::runner::record::route_warnings(None);
                for pb in self.agents.iter().chain(&self.integration) {
                    pb.finish_and_clear();
                }
                if let Some(ov) = &self.overall {
                    ov.finish_and_clear();
                }
            }
            Event::Note(n) => self.println(&format!("warning: {n}")),
            Event::Integration(line) => match (&self.multi, &self.integration) {
                (_, Some(pb)) if !pb.is_finished() => pb.set_message(one_line(line)),
                (Some(m), None) => {
                    let pb = m.add(ProgressBar::new_spinner());
                    pb.set_style(
                        ProgressStyle::with_template("{spinner} {wide_msg}")
                            .expect("valid template"),
                    );
                    pb.enable_steady_tick(Duration::from_millis(200));
                    pb.set_message(one_line(line));
                    self.integration = Some(pb);
                }
                _ => self.println(line),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_line_reads_in_the_singular_for_one() {
        assert_eq!(run_started("r", 1, 1), "r: 1 workstream on 1 agent");
        assert_eq!(run_started("r", 5, 2), "r: 5 workstreams on 2 agents");
    }

    fn job(id: &str, secs: Option<f64>) -> Job {
        Job {
            id: id.into(),
            depends_on: vec![],
            expected_secs: secs,
        }
    }

    #[test]
    fn eta_counts_down_through_a_known_workstream() {
        let t0 = Instant::now();
        let mut eta = Eta::new(&[job("slow", Some(7.0))], 3);
        assert_eq!(eta.remaining(t0), Some(Duration::from_secs(7)));
        eta.started("slow", t0);
        let at = |s: u64| {
            eta.remaining(t0 + Duration::from_secs(s))
                .unwrap()
                .as_secs()
        };
        assert_eq!((at(0), at(2), at(6)), (7, 5, 1));
        // Overrun: never 0 while it still runs.
        assert_eq!(at(20), 5);
        eta.finished("slow", 20.0);
        assert_eq!(eta.remaining(t0), Some(Duration::ZERO));
    }

    #[test]
    fn eta_places_waiting_work_on_the_first_free_agent() {
        let t0 = Instant::now();
        let jobs = [
            job("a", Some(10.0)),
            job("b", Some(4.0)),
            job("c", Some(4.0)),
            job("d", None),
        ];
        // 2 agents: a (10) | b (4) + c (4) + d (mean 6) = 14.
        let eta = Eta::new(&jobs, 2);
        assert_eq!(eta.remaining(t0), Some(Duration::from_secs(14)));
        assert_eq!(eta.text(t0), "14.0s");
        // Nothing known yet: unknown, not zero.
        let mut blind = Eta::new(&[job("x", None), job("y", None)], 1);
        assert_eq!(blind.text(t0), "?");
        blind.started("x", t0);
        blind.finished("x", 3.0);
        assert_eq!(blind.remaining(t0), Some(Duration::from_secs(3)));
    }

    /// A terminal that records what indicatif does to it, one entry per call.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<Vec<String>>>);

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            80
        }
        fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
            self.0.lock().unwrap().push(format!("up {n}"));
            Ok(())
        }
        fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
            self.0.lock().unwrap().push(format!("down {n}"));
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push(format!("line {s}"));
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push(format!("str {s}"));
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.0.lock().unwrap().push("clear".into());
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn recorder_warnings_go_above_the_bars_as_whole_lines() {
        let screen = Screen::default();
        let m = MultiProgress::with_draw_target(ProgressDrawTarget::term_like(Box::new(
            screen.clone(),
        )));
        let pb = m.add(ProgressBar::new(10));
        pb.set_style(ProgressStyle::with_template("{msg} {pos}/{len}").unwrap());
        pb.set_message("agent-1 busy");
        pb.tick();
        route_warnings_to(&m);
        let line =
            "git ws-run: warning: failed to record ws-2 in the database (disk full); retrying";
        assert!(crate::runner::record::warn(line), "the bars' sink took it");
        crate::runner::record::route_warnings(None);
        let ops = screen.0.lock().unwrap().clone();
        let at = ops
            .iter()
            .position(|o| o == &format!("line {line}") || o == &format!("str {line}"))
            .unwrap_or_else(|| panic!("the warning is not one whole line: {ops:?}"));
        // The bar was drawn before, cleared for the line, and drawn again below it.
        assert!(
            ops[..at].iter().any(|o| o.contains("agent-1 busy")),
            "{ops:?}"
        );
        assert!(
            ops[at + 1..].iter().any(|o| o.contains("agent-1 busy")),
            "{ops:?}"
        );
        let warnings = ops.iter().filter(|o| o.contains("warning")).count();
        assert_eq!(warnings, 1, "the warning is written once, whole: {ops:?}");
        // With no bars drawn, a warning goes straight to stderr.
        assert!(!crate::runner::record::warn("git ws-run: warning: plain"));
    }
}
