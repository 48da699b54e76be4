//! The pure core of git-ws: what a run is and how it is read, planned, consolidated and
//! shown, with no I/O library underneath.
//!
//! **May depend on:** the standard library and small data crates (serde, serde_json,
//! chrono, thiserror, regex-automata, unicode-width, console, strsim). **May not depend
//! on:** git2, diesel, tokio, clap, indicatif, or any other git-ws crate. Everything here
//! is a value in and a value out, so it is unit-tested in microseconds; the few reads of a
//! file (workstream files, an agent's `WS_METRICS` file) take a path and return values.
//!
//! The modules, bottom first; each imports only the ones before it, and inside a folder
//! module each file only the files before it (`layers_test.rs` reads the sources and fails
//! on an import that runs up, so the order cannot grow a circle):
//!
//! 1. [`text`]: hardening and formatting of text and durations that every layer shares,
//!    and the duration grammar of the flags and files.
//! 2. [`model`]: the records a run produces (results, errors, usage, merges).
//! 3. [`agents`]: agent presets, usage parsing, retry and budget rules.
//! 4. [`testparse`]: test runner output into counts.
//! 5. [`workstream`]: workstream files, parsed and validated.
//! 6. [`plan`]: their order.
//! 7. [`consolidate`]: totals, overlaps, recommendations.
//! 8. [`fixup`]: fix-ups (`--fix-up N`): their ids, prompt and chains.
//! 9. [`view`]: the one typed view of a run (its renderers are the `ws-report` crate).
//!
//! What the core refuses crosses the crate boundary as [`Invalid`], never as a bare
//! `String`.

pub mod agents;
pub mod consolidate;
pub mod fixup;
mod invalid;
pub mod model;
pub mod plan;
pub mod review;
pub mod sandbox;
pub mod tamper;
pub mod testparse;
pub mod text;
pub mod view;
pub mod workstream;

#[cfg(test)]
mod layers_test;
pub use invalid::Invalid;
