//! The execution timeline: one bar per workstream that started, on an axis whose tick
//! interval and label format follow the run's length, and the workstreams that never
//! started.

use crate::consolidate::Consolidated;
use crate::model::{Status, WorkstreamResult};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A bar is at least this share of the run's span wide, so a zero-length failure shows.
pub const MIN_BAR_SHARE: f64 = 0.01;

/// Tick steps the axis chooses from (ms) and their Mermaid `tickInterval` spelling.
const STEPS: [(i64, &str); 20] = [
    (100, "100millisecond"),
    (200, "200millisecond"),
    (500, "500millisecond"),
    (1_000, "1second"),
    (2_000, "2second"),
    (5_000, "5second"),
    (10_000, "10second"),
    (15_000, "15second"),
    (30_000, "30second"),
    (60_000, "1minute"),
    (120_000, "2minute"),
    (300_000, "5minute"),
    (600_000, "10minute"),
    (900_000, "15minute"),
    (1_800_000, "30minute"),
    (3_600_000, "1hour"),
    (7_200_000, "2hour"),
    (21_600_000, "6hour"),
    (43_200_000, "12hour"),
    (86_400_000, "1day"),
];
/// At most about this many ticks on the axis.
const MAX_TICKS: i64 = 8;

/// The timeline of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    /// Offsets are counted from here: the run's start, or an earlier workstream start.
    #[serde(with = "super::micros")]
    pub origin: DateTime<Utc>,
    /// From the origin to the last end.
    pub span_seconds: f64,
    /// Mermaid/d3 label format for the axis (`%M:%S`, `%H:%M`, …).
    pub axis_format: String,
    /// Mermaid `tickInterval` (`1second`, `5minute`, …).
    pub tick_interval: String,
    /// Workstreams that started, in result order.
    pub bars: Vec<Bar>,
    /// Workstreams that never started, and why.
    pub not_started: Vec<NotStarted>,
}

/// One workstream on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bar {
    pub workstream_id: String,
    pub agent_id: String,
    pub status: Status,
    pub start_offset_seconds: f64,
    pub end_offset_seconds: f64,
    pub duration_seconds: f64,
    /// Where the chart draws it (epoch ms), at least `MIN_BAR_SHARE` of the span wide.
    #[serde(skip)]
    pub chart_ms: (i64, i64),
}

/// A workstream that never started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotStarted {
    pub workstream_id: String,
    pub reason: String,
}

/// Start and end (epoch ms) of a result that started; the end is at least the start.
fn ms(r: &WorkstreamResult) -> Option<(i64, i64)> {
    let s = r.start_time?.timestamp_millis();
    let e = r.end_time.map_or_else(
        || s + (r.duration_seconds.max(0.0) * 1000.0) as i64,
        |t| t.timestamp_millis(),
    );
    Some((s, e.max(s)))
}

/// The axis for a span: the smallest step giving at most [`MAX_TICKS`] ticks, labelled
/// finely enough that no two ticks read the same.
pub fn axis(span_ms: i64) -> (&'static str, &'static str) {
    let (step, interval) = STEPS
        .iter()
        .copied()
        .find(|(step, _)| span_ms <= step * MAX_TICKS)
        .unwrap_or(STEPS[STEPS.len() - 1]);
    let format = if step < 1_000 {
        "%M:%S.%L"
    } else if step < 60_000 && span_ms < 3_600_000 {
        "%M:%S"
    } else if step < 60_000 {
        "%H:%M:%S"
    } else if step < 86_400_000 {
        "%H:%M"
    } else {
        "%b %d"
    };
    (format, interval)
}

impl Timeline {
    /// From the results in result order.
    pub fn build(c: &Consolidated, ordered: &[&WorkstreamResult]) -> Timeline {
        let started: Vec<(&WorkstreamResult, (i64, i64))> =
            ordered.iter().filter_map(|r| Some((*r, ms(r)?))).collect();
        let run_start = c.run.started_at.timestamp_millis();
        let origin = started
            .iter()
            .map(|(_, (s, _))| *s)
            .min()
            .map_or(run_start, |s| s.min(run_start));
        let last = started.iter().map(|(_, (_, e))| *e).max().unwrap_or(origin);
        let span = (last - origin).max(1);
        let min_width = ((span as f64 * MIN_BAR_SHARE) as i64).max(1);
        let (axis_format, tick_interval) = axis(span);
        let secs = |t: i64| (t - origin) as f64 / 1000.0;
        Timeline {
            origin: DateTime::from_timestamp_millis(origin).unwrap_or(c.run.started_at),
            span_seconds: span as f64 / 1000.0,
            axis_format: axis_format.to_string(),
            tick_interval: tick_interval.to_string(),
            bars: started
                .iter()
                .map(|(r, (s, e))| Bar {
                    workstream_id: r.workstream_id.clone(),
                    agent_id: r.agent_id.clone(),
                    status: r.status,
                    start_offset_seconds: secs(*s),
                    end_offset_seconds: secs(*e),
                    duration_seconds: r.duration_seconds,
                    chart_ms: (*s, (*e).max(s + min_width)),
                })
                .collect(),
            not_started: ordered
                .iter()
                .filter(|r| r.start_time.is_none())
                .map(|r| NotStarted {
                    workstream_id: r.workstream_id.clone(),
                    reason: r
                        .errors
                        .first()
                        .map(|e| crate::text::one_line(&e.message))
                        .unwrap_or_else(|| r.status.to_string()),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_follows_the_run_length() {
        assert_eq!(axis(4_000), ("%M:%S.%L", "500millisecond"));
        assert_eq!(axis(1), ("%M:%S.%L", "100millisecond"));
        assert_eq!(axis(30_000), ("%M:%S", "5second"));
        assert_eq!(axis(10 * 60_000), ("%H:%M", "2minute"));
        assert_eq!(axis(2 * 3_600_000 - 1), ("%H:%M", "15minute"));
        assert_eq!(axis(30 * 86_400_000), ("%b %d", "1day"));
        // Never more than MAX_TICKS ticks below a day's step.
        for span in [1, 999, 4_000, 61_000, 3_599_999, 86_400_000] {
            let (_, interval) = axis(span);
            let step = STEPS.iter().find(|(_, i)| *i == interval).unwrap().0;
            assert!(span / step <= MAX_TICKS, "{span} {interval}");
        }
    }
}
