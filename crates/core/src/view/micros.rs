//! Times in JSON: RFC 3339, UTC, microseconds (what the database keeps), so a run reads the
//! same from `git ws-run` and from `git ws-report`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

/// `2026-11-03T10:00:00.123456Z`.
pub fn text(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// `#[serde(with = "micros")]`.
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&text(t))
}

/// `#[serde(with = "micros::option")]`: `null` for None.
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&text(t)),
            None => s.serialize_none(),
        }
    }
}
