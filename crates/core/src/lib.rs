//! The pure core of git-ws: what a run is and how it is read, planned, consolidated and
//! shown, with no I/O library underneath.
//!
//! **May depend on:** the standard library and small data crates (serde, serde_json,
//! chrono, thiserror, regex-automata, unicode-width, console, strsim). **May not depend
//! on:** git2, diesel, tokio, clap, indicatif, or any other git-ws crate. Everything here
//! is a value in and a value out, so it is unit-tested in microseconds; the few reads of a
//! file (workstream files, an agent's `WS_METRICS` file) take a path and return values.
//!
//! - [`model`]: the records a run produces (results, errors, usage, merges).
//! - [`text`]: hardening and formatting of text and durations that every layer shares.
//! - [`workstream`]: workstream files, parsed and validated; [`plan`]: their order.
//! - [`consolidate`]: totals, overlaps, recommendations.
//! - [`testparse`]: test runner output into counts.
//! - [`agents`]: agent presets, usage parsing, retry and budget rules.
//! - [`view`]: the one typed view of a run; [`report`]: its renderers (Markdown, tables,
//!   JSON).
//!
//! What the core refuses crosses the crate boundary as [`Invalid`], never as a bare
//! `String`.

pub mod agents;
pub mod consolidate;
mod invalid;
pub mod model;
pub mod plan;
pub mod report;
pub mod testparse;
pub mod text;
pub mod view;
pub mod workstream;

pub use invalid::Invalid;
