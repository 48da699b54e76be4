//! `git ws-run`'s Ctrl-C and SIGTERM handling: one keypress is one interrupt (signals that
//! arrive within [`COALESCE`] of the first are the same keypress), a later one kills.

use crate::runner::events::{Event, Observer};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Signals within this long of the first interrupt count as that interrupt. A Ctrl-C
/// reaches the whole foreground process group, and git's wrapper (`git ws-run` runs
/// `git-ws-run` as a child) forwards the SIGINT it got to its child again: the copy
/// arrives within milliseconds. One second leaves a wide margin for a loaded machine
/// (the time is taken when the signal task runs, not when the kernel delivers it), and is
/// shorter than a person takes to read the "interrupted:" line and press Ctrl-C again.
pub const COALESCE: Duration = Duration::from_secs(1);

/// What a signal means, given the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The first interrupt: wind down.
    WindDown,
    /// A copy of the first interrupt (same keypress, or git forwarding it): ignore.
    Same,
    /// A genuinely second interrupt: kill everything and exit now.
    Kill,
}

/// The interrupts seen so far (pure: the caller gives the time).
#[derive(Debug, Default)]
pub struct Interrupts {
    first: Option<Instant>,
}

impl Interrupts {
    pub fn signal(&mut self, now: Instant) -> Verdict {
        match self.first {
            None => {
                self.first = Some(now);
                Verdict::WindDown
            }
            Some(t) if now.saturating_duration_since(t) < COALESCE => Verdict::Same,
            Some(_) => Verdict::Kill,
        }
    }
}

/// The id of the run under way, once the coordinator has announced it.
pub type RunIdCell = Arc<Mutex<Option<String>>>;

/// Passes every event on, keeping the run id of `RunStarted` for the signal messages.
pub struct RunIdObserver {
    pub inner: Box<dyn Observer>,
    pub run_id: RunIdCell,
}

impl Observer for RunIdObserver {
    fn event(&mut self, event: Event<'_>) {
        if let Event::RunStarted { run_id, .. } = event {
            *self.run_id.lock().unwrap_or_else(|p| p.into_inner()) = Some(run_id.to_string());
        }
        self.inner.event(event);
    }
}

/// The command that finishes an unfinished run (`git ws-report --list` finds the id when
/// the run had not announced one yet).
pub fn resume_hint(run_id: Option<&str>) -> String {
    match run_id {
        Some(id) => format!("git ws-run --resume {id} finishes it"),
        None => {
            "git ws-run --resume RUN-ID finishes it (git ws-report --list shows the id)".to_string()
        }
    }
}

/// The message of a second interrupt, before exiting.
pub fn killed_message(killed: usize, run_id: Option<&str>) -> String {
    format!(
        "interrupted again: killed {}, exiting now; the run stays unfinished: {}",
        crate::text::plural(killed, "running command", "running commands"),
        resume_hint(run_id)
    )
}

pub type SignalStreams = (tokio::signal::unix::Signal, tokio::signal::unix::Signal);

pub fn signal_streams() -> Option<SignalStreams> {
    use tokio::signal::unix::{signal, SignalKind};
    Some((
        signal(SignalKind::interrupt()).ok()?,
        signal(SignalKind::terminate()).ok()?,
    ))
}

/// First Ctrl-C or SIGTERM: ask the coordinator to wind down; copies within [`COALESCE`]
/// are ignored. A later one: SIGKILL every running command's process group and exit at
/// once (the run stays `running`; `--resume` finishes it).
pub async fn watch_signals(
    (mut int, mut term): SignalStreams,
    tx: tokio::sync::watch::Sender<bool>,
    run_id: RunIdCell,
) {
    let mut seen = Interrupts::default();
    loop {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        match seen.signal(Instant::now()) {
            Verdict::WindDown => {
                let _ = tx.send(true);
            }
            Verdict::Same => {}
            Verdict::Kill => {
                let killed = crate::process::kill_all_groups();
                let id = run_id.lock().unwrap_or_else(|p| p.into_inner()).clone();
                eprintln!("git ws-run: {}", killed_message(killed, id.as_deref()));
                std::process::exit(crate::error::EXIT_INTERRUPTED);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_within_the_window_are_one_interrupt_a_later_one_kills() {
        let t0 = Instant::now();
        let mut i = Interrupts::default();
        assert_eq!(i.signal(t0), Verdict::WindDown);
        assert_eq!(i.signal(t0 + Duration::from_millis(3)), Verdict::Same);
        assert_eq!(i.signal(t0 + Duration::from_millis(900)), Verdict::Same);
        assert_eq!(i.signal(t0 + COALESCE), Verdict::Kill);
    }

    #[test]
    fn messages_name_the_run_and_resume() {
        let m = killed_message(1, Some("ma-run-1"));
        assert_eq!(
            m,
            "interrupted again: killed 1 running command, exiting now; the run stays unfinished: git ws-run --resume ma-run-1 finishes it"
        );
        assert!(!killed_message(2, None).contains("--resume RUN "));
        assert!(killed_message(2, None).contains("2 running commands"));
    }
}
