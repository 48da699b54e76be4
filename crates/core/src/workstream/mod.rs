//! Workstream task files: parsing and validating `workstreams/*.json` (ids, command/prompt,
//! dependencies, unknown-field warnings). Pure except [`load_dir`], which reads the directory.
//!
//! Every rejection is an [`InvalidWorkstream`] whose message starts with the file name, then
//! either `line:column` (JSON syntax) or the field, then the reason; all problems found in one
//! file are reported together, separated by `; `. Nothing here panics on any input: see the
//! fuzz tests (`fuzz.rs`).
//!
//! This file holds the types and the re-exports; one file per concern does the work, each
//! using only the ones before it: `fields` (one object's fields) → `parse` (one file's
//! bytes) → `cycles` → `validation` (the set of files) → `loading` (a directory).

mod cycles;
mod fields;
#[cfg(test)]
mod fuzz;
mod loading;
mod parse;
mod validation;

pub use crate::text::{parse_duration, MAX_TIMEOUT};
pub use fields::{validate_id, validate_run_id};
pub use loading::{load_dir, load_dir_within, select_only};
pub use parse::parse_workstream;
pub use validation::{empty_backlog, require_agents, validate_set};

use std::collections::BTreeMap;
use std::time::Duration;

/// What a workstream runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `"command": "..."`, run by `sh -c`.
    Shell(String),
    /// `"command": ["prog", "arg", ...]`, run directly.
    Argv(Vec<String>),
    /// `"prompt": "..."`: sent to the agent command on stdin and in `WS_PROMPT`.
    Prompt(String),
}

/// A valid workstream.
#[derive(Debug, Clone, PartialEq)]
pub struct Workstream {
    pub id: String,
    pub title: Option<String>,
    pub action: Action,
    pub test: Option<String>,
    pub timeout: Option<Duration>,
    pub depends_on: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// File name relative to the workstreams directory (e.g. `ws-01.json`).
    pub file: String,
    /// What loading it warned about (unknown fields, …), each naming the file; kept with the
    /// workstream's result so the report shows them.
    pub warnings: Vec<String>,
    /// `"agent"`: the preset that runs its prompt (else `--agent` / `ws.agent`, then the
    /// agent command).
    pub agent: Option<crate::agents::Preset>,
    /// `"retries"`: retries of transient failures (else `--retries`).
    pub retries: Option<u32>,
    /// `"max_cost_usd"`: stop the agent when what it spent passes this.
    pub max_cost_usd: Option<f64>,
    /// `"sandbox"`: this workstream's sandbox mode (else `ws.sandbox`).
    pub sandbox: Option<crate::sandbox::Mode>,
    /// `"stack"` (default true): a workstream with `depends_on` starts from its
    /// dependencies' branches merged onto the base; false: from the base.
    pub stack: bool,
}

/// A workstream file that did not parse or validate. `message` names the file and the
/// line:column (JSON syntax) or the field, and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidWorkstream {
    pub file: String,
    /// The id if one could be read and is itself valid and unique across the directory (so it
    /// can key a database row), else None (see [`InvalidWorkstream::key`]).
    pub id: Option<String>,
    pub message: String,
}

/// What the key of an invalid file without a usable id starts with. `:` is never part of a
/// valid id ([`validate_id`]), so `file:broken.json` cannot collide with a workstream whose
/// id is `broken.json`.
pub const INVALID_FILE_KEY_PREFIX: &str = "file:";

impl InvalidWorkstream {
    /// The workstream id its failed result is recorded under: its id, else
    /// `file:<file name>`, a form no valid id can take, so an invalid file and a valid
    /// workstream never share a row, a line of the summary or of the report.
    pub fn key(&self) -> String {
        match &self.id {
            Some(id) => id.clone(),
            None => format!("{INVALID_FILE_KEY_PREFIX}{}", self.file),
        }
    }
}

/// Result of loading a directory: valid workstreams (sorted by file name), invalid ones,
/// and warnings (unknown fields, …) each naming its file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    pub valid: Vec<Workstream>,
    pub invalid: Vec<InvalidWorkstream>,
    pub warnings: Vec<String>,
}

/// Longest accepted id, in characters.
pub const MAX_ID_LEN: usize = 100;

/// Largest workstream file [`load_dir`] reads (4 MiB); bigger files are rejected unread.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The fields a workstream file may have; anything else is warned about and ignored.
pub const KNOWN_FIELDS: [&str; 13] = [
    "id",
    "title",
    "command",
    "prompt",
    "test",
    "timeout_secs",
    "depends_on",
    "env",
    "agent",
    "retries",
    "max_cost_usd",
    "sandbox",
    "stack",
];

/// What the tests of every concern build workstreams with.
#[cfg(test)]
mod test_util {
    use super::*;

    pub(super) fn ok(file: &str, json: &str) -> (Workstream, Vec<String>) {
        parse_workstream(file, json.as_bytes())
            .unwrap_or_else(|e| panic!("{file} should parse: {}", e.message))
    }

    pub(super) fn err(file: &str, json: &str) -> InvalidWorkstream {
        match parse_workstream(file, json.as_bytes()) {
            Ok(w) => panic!("{file} should be rejected: {w:?}"),
            Err(e) => e,
        }
    }

    pub(super) fn ws(file: &str, id: &str, deps: &[&str]) -> Workstream {
        Workstream {
            id: id.to_string(),
            title: None,
            action: Action::Shell("true".to_string()),
            test: None,
            timeout: None,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            env: BTreeMap::new(),
            file: file.to_string(),
            warnings: Vec::new(),
            agent: None,
            retries: None,
            max_cost_usd: None,
            sandbox: None,
            stack: true,
        }
    }

    pub(super) fn bad(file: &str, id: Option<&str>) -> InvalidWorkstream {
        InvalidWorkstream {
            file: file.to_string(),
            id: id.map(str::to_string),
            message: format!("{file}: field \"test\": must not be empty"),
        }
    }
}
