//! Watching what an attempt spends while it runs: new lines of its log go to its preset's
//! parser, and the `$WS_METRICS` file is re-read when it changes. When the workstream's
//! spend (earlier attempts included) passes its `max_cost_usd`, the command is stopped,
//! like a timeout. Polled by [`crate::process::run_watched`].

use crate::agents::{metrics, usage, Preset};
use crate::model::Usage;
use crate::process::Watch;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::SystemTime;

/// Bytes of log read per poll at most (the rest waits for the next poll, or the drain).
const READ_CHUNK: usize = 8 * 1024 * 1024;

/// One attempt's meter.
#[derive(Debug)]
pub struct Meter {
    log: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    /// Inside a line too long to parse: skip to its end.
    skipping: bool,
    parser: Option<usage::Parser>,
    metrics: PathBuf,
    metrics_stamp: Option<(u64, Option<SystemTime>)>,
    metrics_usage: Option<Usage>,
    warnings: Vec<String>,
    /// Spent by earlier attempts of the same workstream.
    earlier_cost: f64,
    max_cost: Option<f64>,
}

impl Meter {
    /// A meter for output appended to `log` from now on, parsed as `preset`'s (None: only
    /// the metrics file counts).
    pub fn new(
        log: PathBuf,
        preset: Option<Preset>,
        metrics: PathBuf,
        earlier_cost: f64,
        max_cost: Option<f64>,
    ) -> Meter {
        let offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        Meter {
            log,
            offset,
            partial: Vec::new(),
            skipping: false,
            parser: preset.map(usage::Parser::new),
            metrics,
            metrics_stamp: None,
            metrics_usage: None,
            warnings: Vec::new(),
            earlier_cost,
            max_cost,
        }
    }

    /// Where this attempt's output starts in the log.
    pub fn start_offset(&self) -> u64 {
        self.offset
    }

    /// Read everything left (the command has ended), the metrics file with its warnings.
    pub fn drain(&mut self) {
        while self.read_log() {}
        if !self.partial.is_empty() && !self.skipping {
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned();
            self.feed(&line);
        }
        if let Some(p) = self.parser.as_mut() {
            p.finish();
        }
        // The file as the command left it; if it was stopped mid-write, the last good
        // reading stands.
        match metrics::read(&self.metrics) {
            (Some(u), w) => {
                self.metrics_usage = Some(u);
                self.warnings = w;
            }
            (None, w) if self.metrics_usage.is_none() => self.warnings = w,
            (None, _) => {}
        }
    }

    /// The attempt's usage: the preset's output, overlaid by the metrics file.
    pub fn usage(&self) -> Option<Usage> {
        usage::overlay(
            self.parser.as_ref().and_then(|p| p.usage()),
            self.metrics_usage.clone(),
        )
    }

    /// Warnings about the metrics file (after [`Meter::drain`]).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Whether the agent stopped itself for its budget.
    pub fn agent_over_budget(&self) -> bool {
        self.parser.as_ref().is_some_and(|p| p.over_budget())
    }

    /// The reason to stop, when the spend passed `max_cost_usd`.
    pub fn over_budget(&self) -> Option<String> {
        let max = self.max_cost?;
        let now = self.usage().and_then(|u| u.cost_usd)?;
        let total = self.earlier_cost + now;
        (total > max).then(|| {
            format!(
                "spent {}, more than its max_cost_usd of {}: stopped",
                crate::agents::usd(total),
                crate::agents::usd(max)
            )
        })
    }

    /// Read the next chunk of new log bytes; false at the end.
    fn read_log(&mut self) -> bool {
        let Ok(mut f) = std::fs::File::open(&self.log) else {
            return false;
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return false;
        }
        let mut buf = Vec::new();
        let n = match f.take(READ_CHUNK as u64).read_to_end(&mut buf) {
            Ok(n) => n,
            Err(_) => return false,
        };
        if n == 0 {
            return false;
        }
        self.offset += n as u64;
        let mut rest: &[u8] = &buf;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(i);
            rest = &tail[1..];
            if self.skipping {
                self.skipping = false;
                self.partial.clear();
                continue;
            }
            self.partial.extend_from_slice(head);
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned();
            self.feed(&line);
        }
        if !self.skipping {
            self.partial.extend_from_slice(rest);
            if self.partial.len() > usage::MAX_LINE_BYTES {
                self.partial.clear();
                self.skipping = true;
            }
        }
        n == READ_CHUNK
    }

    fn feed(&mut self, line: &str) {
        if let Some(p) = self.parser.as_mut() {
            p.line(line.trim_end_matches('\r'));
        }
    }

    /// Re-read the metrics file if it changed; a half-written file is tried again later.
    fn read_metrics(&mut self) {
        let Ok(m) = std::fs::metadata(&self.metrics) else {
            return;
        };
        let stamp = (m.len(), m.modified().ok());
        if self.metrics_stamp == Some(stamp) {
            return;
        }
        self.metrics_stamp = Some(stamp);
        if let (Some(u), _) = metrics::read(&self.metrics) {
            self.metrics_usage = Some(u);
        }
    }
}

impl Watch for Meter {
    fn poll(&mut self) -> Option<String> {
        while self.read_log() {}
        self.read_metrics();
        self.over_budget()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_only_what_was_appended_and_stops_over_budget() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("w.log");
        std::fs::write(
            &log,
            "Tokens: 1 sent, 1 received. Cost: $9.00 message, $9.00 session.\n",
        )
        .unwrap();
        let mut m = Meter::new(
            log.clone(),
            Some(Preset::Aider),
            d.path().join("m.json"),
            0.25,
            Some(1.0),
        );
        assert_eq!(
            m.poll(),
            None,
            "the earlier attempt's lines are not this one's"
        );
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        write!(
            f,
            "Tokens: 10 sent, 2 received. Cost: $0.50 message, $0.50 ses"
        )
        .unwrap();
        assert_eq!(m.poll(), None, "half a line waits");
        writeln!(f, "sion.").unwrap();
        assert_eq!(m.poll(), None, "0.25 + 0.50 is within 1.00");
        writeln!(
            f,
            "Tokens: 10 sent, 2 received. Cost: $0.30 message, $0.80 session."
        )
        .unwrap();
        let why = m.poll().unwrap();
        assert_eq!(
            why,
            "spent $1.05, more than its max_cost_usd of $1.00: stopped"
        );
        m.drain();
        let u = m.usage().unwrap();
        assert_eq!((u.input_tokens, u.cost_usd), (Some(20), Some(0.8)));
    }

    #[test]
    fn the_metrics_file_counts_and_warns_at_the_end() {
        let d = tempfile::tempdir().unwrap();
        let metrics = d.path().join("m.json");
        let mut m = Meter::new(
            d.path().join("none.log"),
            None,
            metrics.clone(),
            0.0,
            Some(0.1),
        );
        assert_eq!(m.poll(), None);
        std::fs::write(&metrics, r#"{"cost_usd": 0.2, "model": "x"}"#).unwrap();
        assert!(m.poll().is_some());
        // Stopped mid-write: the last good reading stands.
        std::fs::write(&metrics, r#"{"cost_usd": "#).unwrap();
        m.drain();
        assert_eq!(m.usage().unwrap().cost_usd, Some(0.2));
        assert!(m.warnings().is_empty());
        // Never a good one: a warning.
        let mut m = Meter::new(d.path().join("none.log"), None, metrics, 0.0, None);
        m.drain();
        assert!(m.usage().is_none());
        assert!(m.warnings()[0].contains("not valid JSON"));
    }
}
