//! Progress display for `git ws-run`: on a terminal, one indicatif line per agent plus an
//! overall bar with counts and ETA; otherwise one plain line per event on stderr.

use crate::model::{Status, WorkstreamResult};
use crate::runner::events::{Event, Observer};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::time::Duration;

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

/// One line summarising a finished workstream.
pub fn result_line(r: &WorkstreamResult) -> String {
    let mut s = format!("{} {}", r.workstream_id, r.status);
    if r.status != Status::Skipped {
        s.push_str(&format!(" in {:.1}s", r.duration_seconds));
        s.push_str(&format!(
            " ({} file{}, {} commit{})",
            r.files.len(),
            if r.files.len() == 1 { "" } else { "s" },
            r.commits.len(),
            if r.commits.len() == 1 { "" } else { "s" }
        ));
    }
    if let Some(e) = r.errors.first() {
        let msg: String = e
            .message
            .lines()
            .next()
            .unwrap_or("")
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
        "interrupted: not starting {waiting} waiting workstream(s); stopping {running} running (SIGTERM, SIGKILL after {}); then consolidating and removing worktrees (Ctrl-C again to kill everything and exit now)",
        crate::runner::execute::human_duration(grace)
    )
}

impl Observer for Plain {
    fn event(&mut self, event: Event<'_>) {
        let line = match event {
            Event::RunStarted {
                run_id,
                total,
                agents,
            } => format!("ws: {run_id}: {total} workstreams on {agents} agents"),
            Event::WorkstreamStarted { agent, id } => format!("ws: [agent-{agent}] {id} started"),
            Event::WorkstreamFinished { result } => {
                format!("ws: [{}] {}", result.agent_id, result_line(result))
            }
            Event::Cancelling {
                running,
                waiting,
                grace,
            } => format!("ws: {}", winding_down(running, waiting, grace)),
            Event::Consolidating => {
                "ws: consolidating, writing the report and removing agent worktrees".to_string()
            }
            Event::Note(n) => format!("ws: warning: {n}"),
        };
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

/// indicatif bars: one per agent and an overall one.
#[derive(Default)]
pub struct Bars {
    multi: Option<MultiProgress>,
    agents: Vec<ProgressBar>,
    overall: Option<ProgressBar>,
}

impl Bars {
    fn println(&self, s: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(s);
            }
            None => eprintln!("{s}"),
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
            } => {
                let m = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
                let _ = m.println(format!("{run_id}: {total} workstreams on {agents} agents"));
                let style = ProgressStyle::with_template("{spinner} {prefix:>9} {wide_msg}")
                    .expect("valid template");
                for k in 1..=agents {
                    let pb = m.add(ProgressBar::new_spinner());
                    pb.set_style(style.clone());
                    pb.set_prefix(format!("agent-{k}"));
                    pb.set_message("idle");
                    pb.enable_steady_tick(Duration::from_millis(200));
                    self.agents.push(pb);
                }
                let ov = m.add(ProgressBar::new(total as u64));
                ov.set_style(
                    ProgressStyle::with_template(
                        "{bar:30} {pos}/{len} {msg} [{elapsed_precise}, ETA {eta}]",
                    )
                    .expect("valid template"),
                );
                self.overall = Some(ov);
                self.multi = Some(m);
            }
            Event::WorkstreamStarted { agent, id } => {
                if let Some(pb) = self.agents.get(agent - 1) {
                    pb.reset_elapsed();
                    pb.set_style(
                        ProgressStyle::with_template("{spinner} {prefix:>9} {wide_msg} {elapsed}")
                            .expect("valid template"),
                    );
                    pb.set_message(id.to_string());
                }
            }
            Event::WorkstreamFinished { result } => {
                let mark = match result.status {
                    Status::Completed => "ok  ",
                    Status::Failed => "FAIL",
                    Status::Skipped => "skip",
                };
                self.println(&format!(
                    "{mark} [{}] {}",
                    result.agent_id,
                    result_line(result)
                ));
                if let Some(k) = result
                    .agent_id
                    .strip_prefix("agent-")
                    .and_then(|k| k.parse::<usize>().ok())
                {
                    if let Some(pb) = self.agents.get(k - 1) {
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
                for pb in &self.agents {
                    pb.finish_and_clear();
                }
                if let Some(ov) = &self.overall {
                    ov.finish_and_clear();
                }
            }
            Event::Note(n) => self.println(&format!("warning: {n}")),
        }
    }
}
